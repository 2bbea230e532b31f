"""``facestream bench --capacity``: how many cameras this machine holds, through what ``facestream up`` runs.

For each number of cameras N: N cameras, each a producer process playing the clip looped at ``fps`` (as a
camera: paced, every frame it reads decoded), and ``up``'s workers (one per camera, at most one per core),
built by ``up``'s own :func:`facestream.app.stack.up.children` and kept by its supervisor. The workers are
started and ready (models warm, cameras leased) before the cameras start, like a camera added to a running
``up``. After ``seconds`` the cameras stop and what they sent is given a few seconds to be answered.

Per N it reports each camera's frames answered against what it offered and against its rate, the
capture→result latency of every frame (the first included: p50, p99, max), and the CPU of each component
(producers, workers, Redis) in cores. N holds when every camera is answered at >= 95% of its rate with p99
<= 300 ms (the targets of the capacity issue, on a 2-core machine).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import psutil

from facestream.app.bench.clip import scratch
from facestream.app.bench.sampler import cpu_seconds, redis_pid
from facestream.app.stack.local import answers, enroll_people, settings_env, wait_answers
from facestream.app.stack.stackfile import Stack
from facestream.app.stack.supervisor import Supervisor
from facestream.app.stack.up import children, share_cores
from facestream.commands import ensure_group
from facestream.config import Settings
from facestream.errors import FacestreamError
from facestream.keys import Keys
from facestream.records import UNKNOWN

#: The workers' own CPU (heartbeats, leases, reads that time out) is measured this long before any frame, once
#: they have settled (their first rounds after ready learn strangers, lease, discover: not what idle costs).
SETTLE_S, IDLE_S = 5.0, 10.0
HOLD_RATE, HOLD_P99_MS = 0.95, 300.0  # the bar: each camera answered at >= 95% of its rate, p99 <= 300 ms
DRAIN_S = 5.0  # after the cameras stop: frames still answered within this count (their latency says how late)


@dataclass
class Capacity:
    """One run: ``cameras`` cameras at ``fps`` for ``seconds``."""

    cameras: int
    fps: float
    seconds: float
    workers: int = 0
    detect_threads: int = 0  # per worker
    playing_s: dict[str, float] = field(default_factory=dict)  # each camera's first frame to its stop
    offered: dict[str, int] = field(default_factory=dict)  # frames each camera sent
    answered: dict[str, int] = field(default_factory=dict)  # of them, answered (results and dead letters)
    latency_ms: list[float] = field(default_factory=list)  # capture → result, every answered frame
    unchanged: int = 0  # answered unsearched (still scene)
    faces: int = 0  # faces found in the answered frames (fewer when late frames are searched on the cheap)
    named: int = 0  # of them, named
    cpu_cores: dict[str, float] = field(default_factory=dict)  # producers, workers, redis
    idle_cores: float = 0.0  # the workers', ready and leasing the cameras, before any frame (SETTLE_S, IDLE_S)

    def pct(self, p: float) -> float:
        return float(np.percentile(self.latency_ms, p)) if self.latency_ms else float("nan")

    def per_frame(self, count: int) -> float:
        """``count`` per answered frame."""
        return count / max(1, sum(self.answered.values()))

    @property
    def slowest_rate(self) -> float:
        """The lowest share of its rate (fps over the time it played) any camera was answered at."""
        return min((n / (self.fps * self.playing_s[c]) for c, n in self.answered.items()), default=0.0)

    @property
    def per_camera(self) -> float:
        """The workers' CPU (cores) per camera beyond what they spend with no frame to answer."""
        return max(0.0, self.cpu_cores.get("workers", 0.0) - self.idle_cores) / max(1, self.cameras)

    @property
    def holds(self) -> bool:
        return self.slowest_rate >= HOLD_RATE and self.pct(99) <= HOLD_P99_MS

    def line(self) -> str:
        sent, got = sum(self.offered.values()), sum(self.answered.values())
        cpu = ", ".join(f"{k} {v:.3f}" for k, v in self.cpu_cores.items())
        return (f"{self.cameras} camera(s) at {self.fps:g} fps, {self.workers} worker(s) x {self.detect_threads} "
                f"detection thread(s): answered {got}/{sent} offered "
                f"(slowest camera at {self.slowest_rate:.0%} of its rate), latency ms p50 {self.pct(50):.0f} "
                f"p99 {self.pct(99):.0f} max {max(self.latency_ms, default=float('nan')):.0f}; CPU cores: {cpu} "
                f"(total {sum(self.cpu_cores.values()):.2f}; workers idle {self.idle_cores:.3f}, "
                f"{self.per_camera:.1%} of a core per camera beyond); {self.unchanged} unchanged; "
                f"faces a frame {self.per_frame(self.faces):.2f}, named {self.per_frame(self.named):.2f}; "
                + ("holds" if self.holds else "does not hold"))


def capacity(settings: Settings, clip: Path, people: list[Path], cameras: list[int], fps: float,
             seconds: float, say: Callable[[str], None] = print) -> list[Capacity]:
    """One :class:`Capacity` per number of ``cameras``, each on a wiped scratch prefix."""
    out, chosen = [], settings.model_fields_set
    for n in cameras:
        say(f"capacity: {n} camera(s) at {fps:g} fps for {seconds:g} s...")
        out.append(_run(settings, chosen, clip, people, n, fps, seconds, say))
        say(out[-1].line())
    return out


def _run(settings: Settings, chosen: set[str], clip: Path, people: list[Path], n: int, fps: float, seconds: float,
         say: Callable[[str], None]) -> Capacity:
    with scratch(settings) as (s, url, client, keys, gallery):
        enroll_people(gallery, people, s, say)
        names = [f"cap{i}" for i in range(n)]
        stack = Stack(s.data_dir / "capacity.yaml", [{"camera": c, "source": str(clip), "loop": True, "fps": fps}
                                                     for c in names], dashboard=None)
        s = share_cores(stack, s, chosen)  # as up does
        for c in names:
            ensure_group(client, keys.frames(c), s.group)  # the cameras exist: the workers lease them at once
        kids = children(stack, s, s.data_dir.resolve() / "bench-capacity")
        workers, producers = [k for k in kids if k.what == "worker"], [k for k in kids if k.what != "worker"]
        supervisor = Supervisor(kids, settings_env(s, url), lambda _line: None)
        fig = Capacity(n, fps, seconds, len(workers), s.detect_threads)
        try:
            for k in workers:
                supervisor.start(k)
            _wait_ready(client, keys, names, len(workers), supervisor)
            time.sleep(SETTLE_S)
            idle = _Cpu({"workers": [k.pid for k in workers]})
            time.sleep(IDLE_S)
            fig.idle_cores = idle.cores()["workers"]
            cpu = _Cpu({"workers": [k.pid for k in workers], "redis": [redis_pid(client)]})
            for k in producers:
                supervisor.start(k)
            cpu.add("producers", [k.pid for k in producers])
            time.sleep(seconds)
            stopped_ms = time.time() * 1000
            cpu.stop("producers")
            for k in producers:
                k.proc.terminate()
                k.proc.wait(30)
            fig.offered = _offered(client, keys, names)
            _drain(client, keys, fig.offered)
            fig.cpu_cores = cpu.cores()
        finally:
            supervisor.stop()
        for c in names:
            got = answers(client, keys, c)
            fig.answered[c] = len(got)
            first_ms = min((r.ts_ms for _, r in got.results), default=stopped_ms - 1000 * seconds)
            fig.playing_s[c] = max(1e-3, (stopped_ms - first_ms) / 1000)
            fig.latency_ms += [entry_ms - r.ts_ms for entry_ms, r in got.results]
            fig.unchanged += sum(r.unchanged for _, r in got.results)
            fig.faces += sum(len(r.faces) for _, r in got.results)
            fig.named += sum(f.person_id != UNKNOWN for _, r in got.results for f in r.faces)
        return fig


def _wait_ready(client, keys: Keys, cameras: list[str], workers: int, supervisor: Supervisor,
                timeout_s: float = 180) -> None:
    """Until every worker beats (models loaded and warm) and the cameras are leased, shared out between them."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        dead = [c for c in supervisor.children if c.proc is not None and c.proc.poll() is not None]
        if dead:
            raise FacestreamError(f"{dead[0].name} exited with {dead[0].proc.returncode}; see {dead[0].log}")
        beats = sum(1 for _ in client.scan_iter(match=keys.worker_pattern, count=1000))
        owners = [client.get(keys.lease(c)) for c in cameras]
        if beats >= workers and None not in owners and len(set(owners)) == min(workers, len(cameras)):
            return  # every camera read, shared out between the workers
        time.sleep(0.1)
    raise FacestreamError(f"the workers were not ready within {timeout_s:.0f} s")


def _offered(client, keys: Keys, cameras: list[str]) -> dict[str, int]:
    """Frames each camera sent: its stream's entries ever added (trimming does not lower it)."""
    return {c: int(client.xinfo_stream(keys.frames(c))["entries-added"]) for c in cameras}


def _drain(client, keys: Keys, offered: dict[str, int]) -> None:
    """Until every frame the cameras sent is answered, for at most :data:`DRAIN_S` in all."""
    deadline = time.monotonic() + DRAIN_S
    for camera, sent in offered.items():
        wait_answers(client, keys, camera, sent, timeout_s=max(0.0, deadline - time.monotonic()))


class _Cpu:
    """CPU of groups of processes, each from when it is added until it is stopped (or now), in cores."""

    def __init__(self, groups: dict[str, list[int | None]]):
        self.started: dict[str, tuple[list[psutil.Process], float, float]] = {}
        self.taken: dict[str, float] = {}
        for name, pids in groups.items():
            self.add(name, pids)

    def add(self, name: str, pids: list[int | None]) -> None:
        procs = [psutil.Process(p) for p in pids if p]
        self.started[name] = (procs, _cpu(procs), time.monotonic())

    def stop(self, name: str) -> None:
        """Take ``name``'s figure now (before its processes end)."""
        procs, cpu0, t0 = self.started[name]
        self.taken[name] = (_cpu(procs) - cpu0) / max(1e-9, time.monotonic() - t0)

    def cores(self) -> dict[str, float]:
        for name in self.started.keys() - self.taken.keys():
            self.stop(name)
        return {name: self.taken[name] for name in self.started}


def _cpu(procs: list[psutil.Process]) -> float:
    total = 0.0
    for p in procs:
        try:
            total += cpu_seconds(p)
        except psutil.NoSuchProcess:
            pass
    return total
