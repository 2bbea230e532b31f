"""``facestream bench``: measured speed of the pipeline against a naive per-frame loop, in one run.

- :func:`naive_baseline`: face_recognition's own API on every frame of a clip (HOG with its default
  upsample 1, then an encoding per face), no Redis: what a first script would do.
- :func:`pipeline_run`: the real thing on the same clip: a producer appends JPEG frames to a camera
  stream, ``facestream work`` processes answer them, and the figures come from the results stream
  (capture time → commit time of each result) and from sampling the processes (CPU, RSS).

Everything runs under a scratch key prefix (``<key_prefix>_bench``) that is wiped before and after.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import psutil
import redis

from facestream.config import Settings
from facestream.errors import FacestreamError
from facestream.keys import Keys
from facestream.records import FrameResult, text

CAMERA = "bench"


@dataclass
class Figures:
    """What one run measured."""

    label: str
    frames: int = 0
    wall_s: float = 0.0
    latency_ms: list[float] = field(default_factory=list)  # capture → result, per frame
    stages: dict[str, list[float]] = field(default_factory=dict)  # ms per frame, per stage
    faces: int = 0
    embedded: int = 0
    cpu_s: dict[str, float] = field(default_factory=dict)  # CPU seconds per component
    rss_mb: float | None = None  # peak resident memory of one worker process
    lag_max: int | None = None  # most frames waiting in the consumer group at any sample
    deadletters: int = 0
    accuracy: list[str] = field(default_factory=list)

    @property
    def fps(self) -> float:
        return self.frames / self.wall_s if self.wall_s else 0.0

    def pct(self, p: float) -> float:
        return float(np.percentile(self.latency_ms, p)) if self.latency_ms else float("nan")

    def lines(self) -> list[str]:
        out = [f"{self.label}: {self.frames} frames in {self.wall_s:.2f} s = {self.fps:.1f} frames/s answered",
               f"  latency capture→result ms: p50 {self.pct(50):.1f}  p95 {self.pct(95):.1f}  p99 {self.pct(99):.1f}"
               f"  max {max(self.latency_ms, default=float('nan')):.1f}"]
        if self.stages:
            out.append("  per stage ms (mean/p95): " + "  ".join(
                f"{k} {np.mean(v):.1f}/{np.percentile(v, 95):.1f}" for k, v in self.stages.items()))
        out.append(f"  faces {self.faces}, embedded {self.embedded} ({self.embedded / self.wall_s:.1f} faces/s)"
                   if self.wall_s else "  no time measured")
        if self.cpu_s:
            total = sum(self.cpu_s.values())
            out.append(f"  CPU {total:.1f} s = {total / self.wall_s:.2f} cores (" +
                       ", ".join(f"{k} {v:.1f} s" for k, v in self.cpu_s.items()) + ")")
        if self.rss_mb is not None:
            out.append(f"  worker peak RSS {self.rss_mb:.0f} MB")
        if self.lag_max is not None:
            out.append(f"  consumer-group lag: max {self.lag_max} frames; dead letters {self.deadletters}")
        out += [f"  {a}" for a in self.accuracy]
        return out


def read_clip(video: Path, limit: int | None = None) -> list[np.ndarray]:
    """Every frame of ``video`` as BGR arrays (the baseline's input, decoded before timing)."""
    import cv2

    cap = cv2.VideoCapture(str(video))
    frames: list[np.ndarray] = []
    while limit is None or len(frames) < limit:
        ok, bgr = cap.read()
        if not ok:
            break
        frames.append(bgr)
    cap.release()
    if not frames:
        raise FacestreamError(f"{video}: no frames (not a readable video?)")
    return frames


def naive_baseline(frames: list[np.ndarray], tick: Callable[[], None] = lambda: None) -> Figures:
    """face_recognition.face_locations + face_encodings on every frame, one after another."""
    import cv2
    import face_recognition

    fig = Figures("naive baseline (face_recognition per frame, no Redis)")
    cpu0, t0 = time.process_time(), time.perf_counter()
    for bgr in frames:
        t = time.perf_counter()
        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        boxes = face_recognition.face_locations(rgb)
        vecs = face_recognition.face_encodings(rgb, boxes)
        fig.latency_ms.append((time.perf_counter() - t) * 1e3)
        fig.faces += len(boxes)
        fig.embedded += len(vecs)
        tick()
    fig.wall_s = time.perf_counter() - t0
    fig.frames = len(frames)
    fig.cpu_s = {"loop": time.process_time() - cpu0}
    fig.rss_mb = None
    return fig


class Sampler(threading.Thread):
    """Samples worker/Redis processes (CPU, RSS) and the consumer group's lag while a run goes on."""

    def __init__(self, client, keys: Keys, group: str, workers: list[int], redis_pid: int | None):
        super().__init__(daemon=True)
        self.client, self.keys, self.group = client, keys, group
        self.procs = {pid: psutil.Process(pid) for pid in workers}
        self.redis = psutil.Process(redis_pid) if redis_pid else None
        self.redis_cpu0 = _cpu(self.redis)
        self.cpu0 = {pid: _cpu(p) for pid, p in self.procs.items()}  # start-up (loading models) is not counted
        self.cpu: dict[int, float] = {}
        self.rss_max = 0.0
        self.lag_max = 0
        self._done = threading.Event()

    def run(self) -> None:
        from facestream.status import group_info

        while not self._done.wait(0.1):
            for pid, p in self.procs.items():
                try:
                    self.rss_max = max(self.rss_max, p.memory_info().rss / 2**20)
                    self.cpu[pid] = _cpu(p) - self.cpu0[pid]
                except psutil.NoSuchProcess:
                    pass
            g = group_info(self.client, self.keys.frames(CAMERA), self.group)
            if g and g.get("lag") is not None:
                self.lag_max = max(self.lag_max, int(g["lag"]))

    def stop(self) -> None:
        self._done.set()
        self.join()

    @property
    def redis_cpu(self) -> float:
        return _cpu(self.redis) - self.redis_cpu0


def _cpu(p: psutil.Process | None) -> float:
    if p is None:
        return 0.0
    t = p.cpu_times()
    return t.user + t.system


def pipeline_run(settings: Settings, video: Path, people: list[Path], workers: int = 1,
                 fps: float | None = None, max_frames: int | None = None,
                 say: Callable[[str], None] = print) -> Figures:
    """Producer → Redis → ``workers`` worker processes on ``video``; every frame answered.

    ``fps`` None: frames are pushed as fast as the producer can (throughput). Otherwise they are
    paced at ``fps`` (looping the clip up to ``max_frames``), like a camera (latency).
    """
    from facestream.server import connect, resolve_url
    from models.enroll import enroll, plan
    from models.evaluate import segment_scores
    from models.gallery import Gallery
    from producer.capture import Producer

    s = settings.model_copy(update={"key_prefix": settings.key_prefix + "_bench"})
    url = resolve_url(s)
    client = connect(s, url)
    keys = Keys(s.key_prefix)
    gallery = Gallery(client, s)
    _wipe(client, gallery)
    try:
        if people:
            items, _ = plan(people)
            summary = enroll(gallery, items, s, workers=1)
            say(f"enrolled {sum(summary.enrolled.values())} faces of {', '.join(sorted(summary.enrolled))}")
        stream = keys.frames(CAMERA)
        client.xgroup_create(stream, s.group, id="0", mkstream=True)
        env = {**os.environ, **{f"FACESTREAM_{k.upper()}": str(v) for k, v in s.model_dump().items() if v is not None},
               "FACESTREAM_REDIS_URL": url}  # the workers get exactly this run's settings
        logs = s.data_dir.resolve()
        logs.mkdir(parents=True, exist_ok=True)
        log_files = [(logs / f"bench-worker-{i}.log").open("w") for i in range(workers)]
        procs = [subprocess.Popen([sys.executable, "-m", "facestream", "work", "--name", f"bench-{i}"], env=env,
                                  stdout=subprocess.DEVNULL, stderr=f) for i, f in enumerate(log_files)]
        try:
            _wait_ready(client, keys, s, procs, logs)
            sampler = Sampler(client, keys, s.group, [p.pid for p in procs], _redis_pid(client))
            sampler.start()
            cpu0 = time.process_time()
            live = fps is not None
            producer = Producer(client, s, CAMERA, str(video), fps=fps, realtime=live, loop=live)
            sent = producer.run(max_frames).sent
            produce_cpu = time.process_time() - cpu0
            results, dead = _wait_answers(client, keys, sent, procs)
            sampler.stop()
        finally:
            for p in procs:
                p.terminate()
            for p, f in zip(procs, log_files):
                p.wait(30)
                f.close()
        fig = Figures(f"pipeline ({workers} worker{'s' if workers > 1 else ''}, "
                      f"{'tracking' if s.tracking else 'every face embedded'}, "
                      f"{s.detector} upsample {s.upsample}, {s.detect_threads} detect thread"
                      f"{'s' if s.detect_threads > 1 else ''}, "
                      + (f"paced at {fps:g} fps" if live else "frames pushed at full speed") + ")")
        fig.frames = len(results) + dead
        first_ms = min(r.ts_ms for _, r in results)
        last_ms = max(entry_ms for entry_ms, _ in results)
        fig.wall_s = (last_ms - first_ms) / 1000
        fig.latency_ms = [entry_ms - r.ts_ms for entry_ms, r in results]
        for stage in ("queue", "decode", "detect", "embed", "search", "total"):
            fig.stages[stage] = [r.timings.get(stage, 0.0) for _, r in results]
        fig.faces = sum(len(r.faces) for _, r in results)
        fig.embedded = sum(r.embedded for _, r in results)
        fig.cpu_s = {"workers": sum(sampler.cpu.values()), "redis": sampler.redis_cpu, "producer": produce_cpu}
        fig.rss_mb = sampler.rss_max
        fig.lag_max = sampler.lag_max
        fig.deadletters = dead
        if not live and (video.parent / "labels.json").is_file():
            fig.accuracy = [sc.line() for sc in segment_scores([r for _, r in results], video)]
        return fig
    finally:
        _wipe(client, gallery)


def _wipe(client, gallery) -> None:
    gallery.clear()
    batch = list(client.scan_iter(match=f"{gallery.keys.prefix}:*", count=1000))
    for i in range(0, len(batch), 1000):
        client.delete(*batch[i : i + 1000])


def _wait_ready(client, keys: Keys, s: Settings, procs: list[subprocess.Popen], logs: Path) -> None:
    """Until every worker beats (models loaded) and, with tracking, the camera is leased."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        for i, p in enumerate(procs):
            if p.poll() is not None:
                raise FacestreamError(f"bench worker {i} exited with {p.returncode}; see {logs}/bench-worker-{i}.log")
        beats = sum(1 for _ in client.scan_iter(match=keys.worker_pattern, count=1000))
        if beats >= len(procs) and (not s.tracking or client.exists(keys.lease(CAMERA))):
            return
        time.sleep(0.1)
    raise FacestreamError("bench workers did not start within 120 s")


def _wait_answers(client, keys: Keys, sent: int, procs: list[subprocess.Popen],
                  timeout_s: float = 600) -> tuple[list[tuple[int, FrameResult]], int]:
    """(result entry ms, result) of every frame of the bench camera, and the dead-letter count."""
    deadline = time.monotonic() + timeout_s
    results: list[tuple[int, FrameResult]] = []
    dead = 0
    while time.monotonic() < deadline:
        results = [(int(text(i).split("-")[0]), FrameResult.from_fields(f)) for i, f in client.xrange(keys.results)]
        dead = client.xlen(keys.deadletter)
        if len(results) + dead >= sent:
            return results, dead
        if all(p.poll() is not None for p in procs):
            break
        time.sleep(0.2)
    raise FacestreamError(f"only {len(results)} results and {dead} dead letters for {sent} frames")


def _redis_pid(client) -> int | None:
    try:
        pid = int(client.info("server")["process_id"])
        return pid if psutil.pid_exists(pid) else None
    except (redis.RedisError, KeyError, ValueError):  # no INFO access: its CPU is not ours to sample
        return None


@dataclass
class EnrollFigures:
    label: str
    files: int
    faces: int
    wall_s: float

    def line(self) -> str:
        return (f"enrollment ({self.label}): {self.faces} faces from {self.files} files in {self.wall_s:.1f} s = "
                f"{self.faces / self.wall_s:.1f} faces/s")


def enroll_rate(settings: Settings, folder: Path, still: bool, workers: int) -> EnrollFigures:
    """Time enrolling a folder of ``<Person>/`` images into a scratch gallery (then removed)."""
    from facestream.server import connect
    from models.enroll import Options, enroll, plan
    from models.gallery import Gallery

    s = settings.model_copy(update={"key_prefix": settings.key_prefix + "_bench"})
    gallery = Gallery(connect(s), s)
    gallery.clear()
    try:
        items, _ = plan([folder])
        t0 = time.perf_counter()
        summary = enroll(gallery, items, s, Options(allow_several=True, still=still), workers)
        wall = time.perf_counter() - t0
    finally:
        gallery.clear()
    label = ("enrollment quality: CNN second look, 3 views" if still and s.enroll_augment else
             "enrollment path" if still else "live path: 1 view") + f", {workers} processes"
    return EnrollFigures(label, len(items), sum(summary.enrolled.values()), wall)


#: ``--ablation``: the levers one at a time, from the plain per-frame pipeline to the defaults.
ABLATION = [
    {"tracking": False, "upsample": 1, "detect_threads": 1},
    {"tracking": False, "upsample": 0, "detect_threads": 1},
    {"tracking": True, "upsample": 0, "detect_threads": 1},
    {"tracking": True, "upsample": 0, "detect_threads": 2},
]


def ratio_line(pipeline: Figures, baseline: Figures) -> str:
    return (f"ratio pipeline/naive: {pipeline.fps / baseline.fps:.2f}x frames/s "
            f"({pipeline.fps:.1f} vs {baseline.fps:.1f}), p99 latency {pipeline.pct(99):.0f} vs "
            f"{baseline.pct(99):.0f} ms")


def machine_line() -> str:
    """CPU model, cores and the dlib build: what the figures depend on."""
    import platform

    import dlib

    model = platform.processor() or "cpu"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    blas = "with BLAS" if getattr(dlib, "DLIB_USE_BLAS", False) else "no BLAS"
    return f"{os.cpu_count()} × {model}, dlib {dlib.__version__} ({blas}), Python {platform.python_version()}"


def markdown(figs: list[Figures], command: str) -> list[str]:
    """A results table for the README."""
    rows = ["| run | frames/s | latency p50 / p95 / p99 ms | faces embedded/s | CPU cores | worker RSS MB |",
            "|---|---|---|---|---|---|"]
    for f in figs:
        cores = sum(f.cpu_s.values()) / f.wall_s if f.wall_s else 0.0
        rss = "–" if f.rss_mb is None else f"{f.rss_mb:.0f}"
        rows.append(f"| {f.label} | {f.fps:.1f} | {f.pct(50):.0f} / {f.pct(95):.0f} / {f.pct(99):.0f} | "
                    f"{f.embedded / f.wall_s if f.wall_s else 0:.1f} | {cores:.2f} | {rss} |")
    return [f"`{command}` on {machine_line()}, {time.strftime('%Y-%m-%d')}:", "", *rows]


def update_readme(path: Path, name: str, lines: list[str]) -> None:
    """Replace the block between ``<!-- bench:NAME -->`` and ``<!-- /bench:NAME -->`` in ``path``."""
    begin, end = f"<!-- bench:{name} -->", f"<!-- /bench:{name} -->"
    doc = path.read_text()
    if begin not in doc or end not in doc:
        raise FacestreamError(f"{path} has no {begin} ... {end} block to fill")
    head, rest = doc.split(begin, 1)
    _, tail = rest.split(end, 1)
    path.write_text(head + begin + "\n" + "\n".join(lines) + "\n" + end + tail)
