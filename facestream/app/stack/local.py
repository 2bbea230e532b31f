"""A whole pipeline on this machine: enrollment, worker (and dashboard) processes with logs, and
waiting for every frame's answer. The one helper behind ``facestream demo``, ``facestream bench``
and the end-to-end tests."""

from __future__ import annotations

import os
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import redis

from facestream.app.stack.supervisor import Child, Supervisor
from facestream.config import Settings
from facestream.errors import FacestreamError
from facestream.keys import Keys
from facestream.models.curation.enroll import enroll, plan
from facestream.models.store.gallery import Gallery
from facestream.records import FrameResult
from facestream.replies import text


def enroll_people(gallery: Gallery, people: list[Path], settings: Settings, say: Callable[[str], None]) -> None:
    """Enroll one folder of photos per person (one process: a handful of people)."""
    if not people:
        return
    items, _ = plan(people)
    summary = enroll(gallery, items, settings, workers=1)
    say(f"enrolled {sum(summary.enrolled.values())} faces of {', '.join(sorted(summary.enrolled))}")


def settings_env(settings: Settings, url: str) -> dict[str, str]:
    """This process's environment plus every setting as FACESTREAM_*: children run with exactly these."""
    values = {f"FACESTREAM_{k.upper()}": str(v) for k, v in settings.model_dump().items() if v is not None}
    return {**os.environ, **values, "FACESTREAM_REDIS_URL": url}


@dataclass
class Answers:
    """What came back for one camera: results (with the ms their entry was appended) and dead letters."""

    results: list[tuple[int, FrameResult]] = field(default_factory=list)
    deadletters: int = 0

    def __len__(self) -> int:
        return len(self.results) + self.deadletters


def answers(client: redis.Redis, keys: Keys, camera: str, since: str = "-") -> Answers:
    """Every result and dead letter of ``camera`` appended since entry id ``since``."""
    out = Answers()
    for entry_id, f in client.xrange(keys.results(camera), since):
        out.results.append((int(text(entry_id).split("-")[0]), FrameResult.from_fields(f)))
    out.deadletters = len(client.xrange(keys.deadletter(camera), since))
    return out


class LocalPipeline:
    """``workers`` ``facestream work`` processes (and a dashboard on ``dashboard_port``, 0: none) as
    children of this process, logging to ``<data_dir>/<label>-*.log``; a context manager that stops them.
    The children are :class:`~facestream.app.stack.supervisor.Child` processes: ``facestream up`` starts and
    stops its own the same way (and restarts them; here a child that exits is an error)."""

    def __init__(self, settings: Settings, url: str, label: str, workers: int = 1, dashboard_port: int = 0):
        self.s, self.url, self.label = settings, url, label
        self.logs = settings.data_dir.resolve()
        commands = [(f"worker-{i}", ["work", "--name", f"{label}-{i}"]) for i in range(workers)]
        if dashboard_port:
            commands.append(("dashboard", ["dashboard", "--port", str(dashboard_port)]))
        self.children = [Child(name, args, self.log_of(name), name) for name, args in commands]
        self._supervisor = Supervisor(self.children, {}, lambda _line: None)

    def log_of(self, name: str) -> Path:
        return self.logs / f"{self.label}-{name}.log"

    @property
    def procs(self) -> list[subprocess.Popen]:
        return [c.proc for c in self.children if c.proc is not None]

    @property
    def worker_pids(self) -> list[int]:
        return [c.proc.pid for c in self.children if c.name.startswith("worker") and c.proc is not None]

    def __enter__(self) -> LocalPipeline:
        for c in self.children:
            c.log.unlink(missing_ok=True)  # this run's log only
        self._supervisor.env = settings_env(self.s, self.url)
        self._supervisor.start_all()
        return self

    def __exit__(self, *_: object) -> None:
        self._supervisor.stop()  # workers finish the frames in hand

    def check_alive(self) -> None:
        """Raise, naming the log, if a child has exited."""
        for c in self.children:
            if c.proc is not None and c.proc.poll() is not None:
                raise FacestreamError(f"{self.label} {c.name} exited with {c.proc.returncode}; see {c.log}")

    def wait_ready(self, client: redis.Redis, camera: str, timeout_s: float = 120) -> None:
        """Until every worker beats (models loaded) and, with tracking, ``camera`` is leased."""
        keys = Keys(self.s.key_prefix)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            self.check_alive()
            beats = sum(1 for _ in client.scan_iter(match=keys.worker_pattern, count=1000))
            if beats >= len(self.worker_pids) and (not self.s.tracking or client.exists(keys.lease(camera))):
                return
            time.sleep(0.1)
        raise FacestreamError(f"{self.label} workers did not start within {timeout_s:.0f} s; see {self.logs}")

    def wait_answers(self, client: redis.Redis, camera: str, sent: int, since: str = "-",
                     timeout_s: float = 600) -> Answers:
        """Until all ``sent`` frames of ``camera`` are answered, every worker has exited, or the time is up."""
        return wait_answers(client, Keys(self.s.key_prefix), camera, sent, since, timeout_s,
                            lambda: any(p.poll() is None for p in self.procs))


def wait_answers(client: redis.Redis, keys: Keys, camera: str, sent: int, since: str = "-", timeout_s: float = 600,
                 running: Callable[[], bool] = lambda: True) -> Answers:
    """Until all ``sent`` frames of ``camera`` are answered, ``running`` says no one is left to answer them,
    or the time is up."""
    deadline = time.monotonic() + timeout_s
    got = answers(client, keys, camera, since)
    while len(got) < sent and time.monotonic() < deadline and running():
        time.sleep(0.2)
        got = answers(client, keys, camera, since)
    return got
