"""The benchmarks' figures as tables for docs/benchmarks.md, and the machine they were measured on."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np

from facestream.app.bench.capacity import HOLD_P99_MS, HOLD_RATE, Capacity
from facestream.app.bench.clip import EnrollFigures, Figures
from facestream.app.bench.cluster import TierFigures
from facestream.app.bench.detection import ProfileFigures
from facestream.app.bench.embedding import EmbedFigures
from facestream.app.bench.gears import GearComparison
from facestream.app.bench.knn import KnnFigures
from facestream.app.bench.memory import MemoryFigures
from facestream.app.bench.sightings import SightingFigures
from facestream.app.bench.strangers import StrangerFigures
from facestream.config import Settings
from facestream.errors import FacestreamError


def ratio_line(pipeline: Figures, baseline: Figures) -> str:
    """The headline: how much faster the pipeline answers frames than the naive loop, in one run."""
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


def pipeline_table(figs: list[Figures], command: str) -> list[str]:
    """A results table for docs/benchmarks.md."""
    rows = ["| run | frames/s | latency p50 / p95 / p99 ms | faces embedded/s | CPU cores | worker RSS MB |",
            "|---|---|---|---|---|---|"]
    for f in figs:
        cores = sum(f.cpu_s.values()) / f.wall_s if f.wall_s else 0.0
        rss = "–" if f.rss_mb is None else f"{f.rss_mb:.0f}"
        rows.append(f"| {f.label} | {f.fps:.1f} | {f.pct(50):.0f} / {f.pct(95):.0f} / {f.pct(99):.0f} | "
                    f"{f.embedded / f.wall_s if f.wall_s else 0:.1f} | {cores:.2f} | {rss} |")
    return [f"`{command}` on {machine_line()}, {time.strftime('%Y-%m-%d')}:", "", *rows]


def update_page(path: Path, name: str, lines: list[str]) -> None:
    """Replace the block between ``<!-- bench:NAME -->`` and ``<!-- /bench:NAME -->`` in ``path``."""
    begin, end = f"<!-- bench:{name} -->", f"<!-- /bench:{name} -->"
    doc = path.read_text()
    if begin not in doc or end not in doc:
        raise FacestreamError(f"{path} has no {begin} ... {end} block to fill")
    head, rest = doc.split(begin, 1)
    _, tail = rest.split(end, 1)
    path.write_text(head + begin + "\n" + "\n".join(lines) + "\n" + end + tail)


def enrollment_table(figs: list[EnrollFigures], folder: Path) -> list[str]:
    """``bench --enrollment``: one row per enrollment path."""
    rows = [f"`facestream bench --enrollment {folder}` on {machine_line()}:", "",
            "| path | files | faces | seconds | faces/s |", "|---|---|---|---|---|"]
    rows += [f"| {f.label} | {f.files} | {f.faces} | {f.wall_s:.1f} | {f.faces / f.wall_s:.1f} |" for f in figs]
    return rows


def embedding_table(figs: list[EmbedFigures], command: str) -> list[str]:
    """``bench --embedding``: ms per face for each runtime, batch 1 and 8, and how many times the slowest."""
    runtimes = list(dict.fromkeys(f.runtime for f in figs))
    ms = {(f.runtime, f.batch): f.ms_per_face for f in figs}
    slowest = max(ms.get((r, 1), 0.0) for r in runtimes)
    rows = [f"`{command}` on {machine_line()}, one thread each, {time.strftime('%Y-%m-%d')}:", "",
            "| runtime | ms/face, batch 1 | ms/face, batch 8 | faster than the slowest (batch 1) |", "|---|---|---|---|"]
    rows += [f"| {r} | {ms[(r, 1)]:.1f} | {ms[(r, 8)]:.1f} | {slowest / ms[(r, 1)]:.1f}x |" for r in runtimes]
    return rows


def knn_table(figs: list[KnnFigures], settings: Settings, command: str) -> list[str]:
    """``bench --knn``: one row per gallery size and EF_RUNTIME."""
    s = settings
    rows = [f"`{command}` on {machine_line()}, HNSW M {s.hnsw_m}, EF_CONSTRUCTION "
            f"{s.hnsw_ef_construction}, k {s.knn_k} (the pipeline uses EF_RUNTIME {s.hnsw_ef_runtime}):", "",
            "| faces | EF_RUNTIME | insert/s | query p50 ms | query p99 ms | recall@1 | person recall@1 | Redis MB |",
            "|---|---|---|---|---|---|---|---|"]
    rows += [f"| {f.size:,} | {f.ef} | {f.insert_per_s:,.0f} | {f.p50_ms:.2f} | {f.p99_ms:.2f} | "
             f"{f.recall_at_1:.4f} | {f.person_recall_at_1:.4f} | {f.memory_mb:.0f} |" for f in figs]
    return rows


def sightings_table(figs: list[SightingFigures], settings: Settings, command: str) -> list[str]:
    """``bench --sightings``: one row per index size."""
    rows = [f"`{command}` on {machine_line()}, time buckets of {settings.sightings_bucket_h:g} h (HNSW M "
            f"{settings.sightings_hnsw_m}, EF_CONSTRUCTION {settings.hnsw_ef_construction} each), EF_RUNTIME {settings.hnsw_ef_runtime}, {time.strftime('%Y-%m-%d')}:", "",
            "| sightings | insert/s | KB each in Redis | 24 h search p50 ms | p99 ms | recall@10 vs exact |",
            "|---|---|---|---|---|---|"]
    rows += [f"| {f.size:,} | {f.insert_per_s:,.0f} | {f.bytes_per_sighting / 1024:.1f} | {f.p50_ms:.1f} | "
             f"{f.p99_ms:.1f} | {f.recall_at_10:.3f} |" for f in figs]
    return rows


def strangers_table(figs: list[StrangerFigures], settings: Settings, command: str) -> list[str]:
    """``bench --strangers``: per gallery size, the strangers' faces and tracks named (every one a false name)."""
    rows = [f"`{command}` on {machine_line()}, detection `{settings.detection}`, tracking "
            f"{'on' if settings.tracking else 'off'}, {time.strftime('%Y-%m-%d')}:", "",
            "| people enrolled (faces) | stranger faces named | share | stranger tracks named | frames |",
            "|---|---|---|---|---|"]
    for f in figs:
        rows.append(f"| {f.people} ({f.gallery_faces}) | {f.named} of {f.faces} | {f.named / max(1, f.faces):.2%} | "
                    f"{f.named_tracks} of {f.tracks} | {f.frames} |")
    return rows


def memory_table(figs: list[MemoryFigures], settings: Settings, command: str) -> list[str]:
    """``bench --memory``: per number of 1080p cameras at full speed, Redis memory against the frame budget."""
    rows = [f"`{command}` on {machine_line()}, frames_max_mb {settings.frames_max_mb:g}, no worker reading, "
            f"{time.strftime('%Y-%m-%d')}:", "",
            "| 1080p cameras | frames sent | mean frame | budget (cameras × frames_max_mb) | frame streams | "
            "peak Redis memory over the start |", "|---|---|---|---|---|---|"]
    for f in figs:
        rows.append(f"| {f.cameras} | {f.sent} in {f.seconds:.0f} s | {f.frame_kb:.0f} KB | {f.budget_mb:.0f} MB | "
                    f"{f.streams_mb:.0f} MB ({f.streams_mb / f.budget_mb:.2f}×) | {f.peak_mb:.0f} MB |")
    return rows


def capacity_table(figs: list[Capacity], command: str) -> list[str]:
    """``bench --capacity``: per number of cameras, what was answered, how fast, and the CPU of each part."""
    rows = [f"`{command}` on {machine_line()}, {time.strftime('%Y-%m-%d')}; holds: every camera answered at "
            f">= {HOLD_RATE:.0%} of its rate, p99 <= {HOLD_P99_MS:.0f} ms:", "",
            "| cameras × fps | workers × detection threads | answered / offered | slowest camera | "
            "latency p50 / p99 / max ms | CPU cores: producers / workers (idle) / Redis | worker CPU per camera "
            "beyond idle | unchanged | faces / named a frame | holds |",
            "|---|---|---|---|---|---|---|---|---|---|"]
    for f in figs:
        c = f.cpu_cores
        rows.append(f"| {f.cameras} × {f.fps:g} | {f.workers} × {f.detect_threads} | "
                    f"{sum(f.answered.values())} / {sum(f.offered.values())} | "
                    f"{f.slowest_rate:.0%} | {f.pct(50):.0f} / {f.pct(99):.0f} / {max(f.latency_ms, default=0):.0f} | "
                    f"{c.get('producers', 0):.2f} / {c.get('workers', 0):.2f} ({f.idle_cores:.2f}) / "
                    f"{c.get('redis', 0):.2f} | {f.per_camera:.1%} | {f.unchanged} | "
                    f"{f.per_frame(f.faces):.2f} / {f.per_frame(f.named):.2f} | {'yes' if f.holds else 'no'} |")
    return rows


def detection_table(figs: list[ProfileFigures], live: dict[str, list[Figures]], command: str) -> list[str]:
    """``bench --detection``: per profile, what it finds (synthetic 1080p, real frames) and what it costs."""
    sizes = sorted({size for f in figs for size in f.found})
    rows = [f"`{command}` on {machine_line()}, {time.strftime('%Y-%m-%d')}:", "",
            "| profile | detect ms/frame 1080p (1 core) p50 / p95 | found within 0.5 s, faces ≥ 32 px | false faces "
            "per frame | " + " | ".join(f"{s} px" for s in sizes) + " | real frames vs the thorough reference | "
            "live 1080p 15 fps: fps, p50 / p99 ms | 640×360 clip, full push: fps |", "|---" * (7 + len(sizes)) + "|"]
    for f in figs:
        cam, clip = live.get(f.profile) or [None, None]
        cam_s = f"{cam.fps:.1f}, {cam.pct(50):.0f} / {cam.pct(99):.0f}" if cam else "not real time"
        clip_s = f"{clip.fps:.1f}" if clip else "–"
        recall = " | ".join(f"{f.found[s][0] / f.found[s][1]:.2f}" if f.found.get(s, [0, 0])[1] else "–" for s in sizes)
        rows.append(f"| {f.profile} | {np.median(f.ms):.0f} / {np.percentile(f.ms, 95):.0f} | {f.within(32):.3f} | "
                    f"{f.false[0] / max(1, f.false[1]):.3f} | {recall} | {f.real[0]}/{f.real[1]} = {f.real[0] / max(1, f.real[1]):.2f} | {cam_s} | {clip_s} |")
    return rows


def cluster_table(figs: list[TierFigures], command: str, fps: float = 15.0) -> list[str]:
    """``bench --cluster``: the stream tier on one node and on a cluster, the ratio, and cameras per node."""
    one, many = figs
    rows = [f"`{command}` on {machine_line()}, {time.strftime('%Y-%m-%d')}:", "",
            "| stream tier | frames/s | MB/s | vs 1 node |", "|---|---|---|---|"]
    rows += [f"| {f.layout} | {f.frames_per_s:,.0f} | {f.mb_per_s:,.0f} | {f.frames_per_s / one.frames_per_s:.2f}x |"
             for f in figs]
    rows += ["", f"One node moves {one.frames_per_s:,.0f} frames/s of {one.frame_kb:.0f} KB: on paper "
             f"{one.frames_per_s / fps:,.0f} cameras at {fps:g} fps per node when each node has cores of its own "
             f"(here all 6 cluster nodes, their replicas and the clients share this machine's cores)."]
    return rows


def gears_table(cmp: GearComparison, command: str) -> list[str]:
    """``bench --gears``: the clip through the runner and through the in-server gear, and whether they agree."""
    rows = [f"`{command}` on {machine_line()}, {time.strftime('%Y-%m-%d')}:", "",
            "| path | frames | frames/s | latency p50 / p99 ms | per frame: detect / embed ms |", "|---|---|---|---|---|"]
    rows += [f"| {f.label} | {f.frames} | {f.fps:.1f} | {f.pct(50):.0f} / {f.pct(99):.0f} | "
             f"{np.mean(f.stages['detect']):.1f} / {np.mean(f.stages['embed']):.1f} |" for f in (cmp.runner, cmp.gear)]
    agreement = cmp.agreement()
    rows += ["", "Both: the clip's frames pushed at full speed, `fast` profile, tracking off (the gear answers each "
             "frame alone); latency includes the wait of the frames pushed ahead.",
             "", agreement[0].upper() + agreement[1:] + "."]
    return rows
