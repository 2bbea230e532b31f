"""Child processes kept alive: each ``facestream`` subcommand of a stack runs as a child with its own log;
one that exits is started again after a bounded, growing delay, and the reason is logged. The Redis
they all need is watched too (:class:`RedisWatch`): the embedded one is started again, an external
one's outage and recovery are reported.

Used by ``facestream up``, ``demo`` and the bench. Stopping sends SIGTERM to every child (workers finish
the frames in hand, producers stop capturing), waits, then kills what is left. Children also die with
their parent however it ends (Linux ``PR_SET_PDEATHSIG``): a SIGKILLed ``up`` leaves no orphan retrying.
Each check writes ``status.json`` beside the logs: ``facestream up --status`` prints it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import IO, Callable

import redis

from facestream.errors import ServerError
from facestream.lifetime import die_with_parent
from facestream.redaction import redact
from facestream.server import ONCE, EmbeddedRedis, client_for

#: Restart delays: doubling from FIRST_DELAY_S to MAX_DELAY_S; a child that ran STEADY_S starts over at 1 s.
FIRST_DELAY_S, MAX_DELAY_S, STEADY_S = 1.0, 30.0, 60.0


@dataclass
class Child:
    """One supervised process: ``facestream <args>``, logging to ``log``."""

    name: str
    args: list[str]
    log: Path
    what: str = ""  # one line for the status output (never a credential)
    proc: subprocess.Popen | None = None
    restarts: int = 0
    started_at: float = 0.0
    due_at: float = 0.0  # when to start it again (after an exit)
    delay_s: float = FIRST_DELAY_S
    _log: IO[str] | None = field(default=None, repr=False)

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None and self.proc.poll() is None else None

    def last_line(self) -> str:
        """The last line the child logged: usually why it stopped."""
        try:
            lines = [ln for ln in self.log.read_text(errors="replace").splitlines() if ln.strip()]
        except OSError:
            return ""
        return lines[-1].strip()[:300] if lines else ""


class RedisWatch:
    """The Redis every child needs, checked with the children: the embedded server is started again when it
    dies (its AOF keeps every acknowledged write), an external one is only reported. Says when it goes
    down and when it is back."""

    name = "redis"

    def __init__(self, settings, url: str, say: Callable[[str], None]):  # settings: facestream.config.Settings
        self.s, self.url, self.say = settings, url, say
        self.server = None if settings.redis_url else EmbeddedRedis.from_settings(settings)
        self.down_since: float | None = None
        self.restarts, self.last_error, self.due_at, self.delay_s = 0, "", 0.0, FIRST_DELAY_S
        self._client: redis.Redis | None = None

    def _answers(self) -> bool:
        try:
            if self._client is None:
                self._client = client_for(self.s, self.url, socket_timeout=1, socket_connect_timeout=1, retry=ONCE)
            self._client.ping()
            return True
        except redis.RedisError as e:
            self.last_error = str(e).splitlines()[0][:200] if str(e) else type(e).__name__
            return False

    def check(self, now: float) -> None:
        if self._answers():
            if self.down_since is not None:
                self._back(now)
            return
        if self.down_since is None:
            self.down_since, self.due_at = now, now  # the first restart at once; failed ones back off
            what = "restarting it" if self.server else "the children retry until it is back"
            where = self.server.shown_url if self.server else redact(self.url)
            self.say(f"{self.name:16} DOWN at {where}: {self.last_error}; {what}")
        if self.server is not None and now >= self.due_at:
            try:
                self.server.start()  # returns once it answers
            except ServerError as e:
                self.last_error = str(e)[:200]
                self.due_at, self.delay_s = now + self.delay_s, min(MAX_DELAY_S, self.delay_s * 2)
                self.say(f"{self.name:16} could not start: {self.last_error}; next try in {self.delay_s:.0f} s")
                return
            self.restarts += 1
            self._back(time.monotonic())

    def _back(self, now: float) -> None:
        self.say(f"{self.name:16} back after {now - self.down_since:.1f} s" +
                 (f" (restart {self.restarts})" if self.server else ""))
        self.down_since, self.delay_s = None, FIRST_DELAY_S

    def status(self) -> dict[str, object]:
        return {"name": self.name, "state": "down" if self.down_since is not None else "up", "pid":
                self.server.pid() if self.server else None, "restarts": self.restarts, "last_error": self.last_error}


class Supervisor:
    """Starts children, restarts those that exit (with backoff), watches Redis, stops them all."""

    def __init__(self, children: list[Child], env: dict[str, str], say: Callable[[str], None] = print,
                 redis_watch: RedisWatch | None = None, status_file: Path | None = None):
        self.children, self.env, self.say = children, env, say
        self.redis_watch, self.status_file = redis_watch, status_file

    def start(self, child: Child) -> None:
        child.log.parent.mkdir(parents=True, exist_ok=True)
        if child._log is not None:
            child._log.close()
        child._log = child.log.open("a")
        child.proc = subprocess.Popen([sys.executable, "-m", "facestream", *child.args], env=self.env,
                                      stdout=child._log, stderr=subprocess.STDOUT, start_new_session=True,
                                      preexec_fn=partial(die_with_parent, os.getpid()))
        child.started_at = time.monotonic()
        self.say(f"{child.name:16} pid {child.proc.pid:<7} {child.what}  (log: {child.log})")

    def start_all(self) -> None:
        for child in self.children:
            self.start(child)

    def check(self) -> None:
        """Restart every child that has exited and whose delay has passed; log each exit once; watch Redis."""
        now = time.monotonic()
        if self.redis_watch is not None:
            self.redis_watch.check(now)
        for child in self.children:
            if child.proc is None or child.proc.poll() is None:
                continue
            if child.due_at <= child.started_at:  # a new exit: decide when to try again
                child.delay_s = FIRST_DELAY_S if now - child.started_at >= STEADY_S else child.delay_s
                child.due_at = now + child.delay_s
                self.say(f"{child.name:16} exited with {child.proc.returncode}: {child.last_line() or '(no output)'}; "
                         f"restart {child.restarts + 1} in {child.delay_s:.0f} s")
                child.delay_s = min(MAX_DELAY_S, child.delay_s * 2)
            elif now >= child.due_at:
                child.restarts += 1
                self.start(child)
        self.write_status()

    def write_status(self) -> None:
        """Each component's state, restarts and last error into :attr:`status_file` (for ``up --status``)."""
        if self.status_file is None:
            return
        rows = [self.redis_watch.status()] if self.redis_watch is not None else []
        rows += [{"name": c.name, "state": "up" if c.pid else "down", "pid": c.pid, "restarts": c.restarts,
                  "last_error": "" if c.pid else c.last_line()} for c in self.children]
        tmp = self.status_file.with_suffix(".part")
        tmp.write_text(json.dumps({"ts": time.time(), "components": rows}))
        os.replace(tmp, self.status_file)

    def run(self, stopped: Callable[[], bool], interval_s: float = 0.5) -> None:
        """Check the children every ``interval_s`` until ``stopped()`` says so."""
        while not stopped():
            self.check()
            time.sleep(interval_s)

    def stop(self, grace_s: float = 30.0) -> None:
        """SIGTERM to every child, then SIGKILL to those still running after ``grace_s``."""
        live = [c for c in self.children if c.proc is not None and c.proc.poll() is None]
        for c in live:
            c.proc.terminate()
        deadline = time.monotonic() + grace_s
        for c in live:
            try:
                c.proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.say(f"{c.name:16} did not stop within {grace_s:.0f} s: killed")
                c.proc.kill()
                c.proc.wait()
        for c in self.children:
            if c._log is not None:
                c._log.close()
        self.say(f"stopped {len(live)} processes")
