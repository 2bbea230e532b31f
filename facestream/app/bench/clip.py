"""``facestream bench``: measured speed of the pipeline against a naive per-frame loop, in one run.

- :func:`naive_baseline`: face_recognition's own API on every frame of a clip (HOG with its default
  upsample 1, then an encoding per face), no Redis: what a first script would do.
- :func:`pipeline_run`: the real thing on the same clip: a producer appends JPEG frames to a camera
  stream, ``facestream work`` processes answer them, and the figures come from the results stream
  (capture time → commit time of each result) and from sampling the processes (CPU, RSS).

Everything runs under a scratch key prefix (``<key_prefix>_bench``) that is wiped before and after.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import redis

from facestream.app.bench.sampler import Sampler
from facestream.app.stack.local import Answers, LocalPipeline, enroll_people
from facestream.commands import delete_matching, ensure_group
from facestream.config import Settings
from facestream.errors import FacestreamError
from facestream.keys import Keys
from facestream.models.curation.enroll import Options, enroll, plan
from facestream.models.evaluation.evaluate import segment_scores
from facestream.models.store.gallery import Gallery
from facestream.models.vision.profile import STILL_MAX_SIDE, STILL_QUICK_SIDE
from facestream.producer.capture import Producer
from facestream.server import connect, connect_index, resolve_url

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


def pipeline_run(settings: Settings, video: Path, people: list[Path], workers: int = 1,
                 fps: float | None = None, max_frames: int | None = None,
                 say: Callable[[str], None] = print) -> Figures:
    """Producer → Redis → ``workers`` worker processes on ``video``; every frame answered.

    ``fps`` None: frames are pushed as fast as the producer can (throughput). Otherwise they are
    paced at ``fps`` (looping the clip up to ``max_frames``), like a camera (latency).
    """
    with scratch(settings) as (s, url, client, keys, gallery):
        enroll_people(gallery, people, s, say)
        ensure_group(client, keys.frames(CAMERA), s.group)
        live = fps is not None
        with LocalPipeline(s, url, "bench", workers) as local:
            local.wait_ready(client, CAMERA)
            sampler = Sampler(client, keys.frames(CAMERA), s.group, local.worker_pids)
            sampler.start()
            cpu0 = time.process_time()
            sent = Producer(client, s, CAMERA, str(video), fps=fps, realtime=live, loop=live).run(max_frames).sent
            produce_cpu = time.process_time() - cpu0
            got = local.wait_answers(client, CAMERA, sent)
            sampler.stop()
        fig = answered_figures(s, workers, fps, all_answered(got, sent))
        fig.cpu_s = {"workers": sum(sampler.cpu.values()), "redis": sampler.redis_cpu, "producer": produce_cpu}
        fig.rss_mb, fig.lag_max = sampler.rss_max, sampler.lag_max
        if not live and (video.parent / "labels.json").is_file():
            fig.accuracy = [sc.line() for sc in segment_scores([r for _, r in got.results], video)]
        return fig


@contextmanager
def scratch(settings: Settings) -> Iterator[tuple[Settings, str, redis.Redis, Keys, Gallery]]:
    """A bench's own key prefix (``<key_prefix>_bench``) on the configured Redis, wiped before and after: its
    settings, URL, client, keys and gallery."""
    s = settings.replace(key_prefix=settings.key_prefix + "_bench")
    url = resolve_url(s)
    client = connect(s, url)
    gallery = Gallery(connect_index(s, client), s)
    wipe(client, gallery)
    try:
        yield s, url, client, Keys(s.key_prefix), gallery
    finally:
        wipe(client, gallery)


def all_answered(got: Answers, sent: int) -> Answers:
    """``got``, if it answers every one of the ``sent`` frames; else FacestreamError."""
    if len(got) < sent:
        raise FacestreamError(f"only {len(got.results)} results and {got.deadletters} dead letters for {sent} frames")
    return got


def answered_figures(s: Settings, workers: int, fps: float | None, got: Answers) -> Figures:
    """Frames, wall time (first capture → last result), latencies and stage times of one run."""
    results = got.results
    fig = Figures(f"pipeline ({workers} worker{'s' if workers > 1 else ''}, "
                  f"{'tracking' if s.tracking else 'every face embedded'}, "
                  f"{s.detection} {s.detector}, {s.detect_threads} detect thread"
                  f"{'s' if s.detect_threads > 1 else ''}, "
                  + (f"paced at {fps:g} fps" if fps is not None else "frames pushed at full speed") + ")")
    fig.frames = len(got)
    fig.wall_s = (max(entry_ms for entry_ms, _ in results) - min(r.ts_ms for _, r in results)) / 1000
    fig.latency_ms = [entry_ms - r.ts_ms for entry_ms, r in results]
    for stage in ("queue", "decode", "detect", "embed", "search", "total"):
        fig.stages[stage] = [r.timings.get(stage, 0.0) for _, r in results]
    fig.faces = sum(len(r.faces) for _, r in results)
    fig.embedded = sum(r.embedded for _, r in results)
    fig.deadletters = got.deadletters
    return fig


def wipe(client: redis.Redis, gallery: Gallery) -> None:
    gallery.clear()
    delete_matching(client, f"{gallery.keys.prefix}:*")


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
    s = settings.replace(key_prefix=settings.key_prefix + "_bench")
    gallery = Gallery(connect_index(s), s)
    gallery.clear()
    try:
        items, _ = plan([folder])
        t0 = time.perf_counter()
        summary = enroll(gallery, items, s, Options(allow_several=True, still=still), workers)
        wall = time.perf_counter() - t0
    finally:
        gallery.clear()
    label = (f"enrollment path: {s.detector} at <={STILL_QUICK_SIDE} px, <={STILL_MAX_SIDE} px, then 2x, then {s.enroll_fallback_detector}; "
             f"{s.enroll_views} views" if still else f"live path: {s.probe_views} views") + f", {workers} processes"
    return EnrollFigures(label, len(items), sum(summary.enrolled.values()), wall)


#: ``--ablation``: the levers one at a time, from the plain per-frame pipeline to the defaults.
ABLATION = [
    {"detection": "thorough", "tracking": False, "detect_threads": 1},
    {"detection": "fast", "tracking": False, "detect_threads": 1},
    {"detection": "fast", "tracking": True, "detect_threads": 1},
    {"detection": "fast", "tracking": True, "detect_threads": 2},
    {"detection": "balanced", "tracking": True, "detect_threads": 2},
]


def clip_bench(settings: Settings, clip: Path, people: list[Path], workers: int = 1, fps: float | None = None,
               frames: int | None = None, baseline: bool = True, ablation: bool = False,
               say: Callable[[str], None] = print, tick: Callable[[], None] = lambda: None) -> list[Figures]:
    """``facestream bench``: the naive loop (unless ``fps``/not ``baseline``), then the pipeline once, or
    once per :data:`ABLATION` step, on the same clip. ``fps``: paced like a live camera."""
    figs = []
    if baseline and fps is None:
        clip_frames = read_clip(clip, frames)
        figs.append(naive_baseline(clip_frames, tick))
        del clip_frames  # ~190 MB of decoded frames
    for overrides in ABLATION if ablation else [{}]:
        say(f"pipeline on {clip.name} {overrides or ''}...")
        figs.append(pipeline_run(settings.replace(**overrides), clip, people, workers, fps,
                                 frames or (300 if fps is not None else None), say))
    return figs
