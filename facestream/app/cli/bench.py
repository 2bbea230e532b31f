"""``facestream bench``: the pipeline against the naive loop, the ablation, the KNN and enrollment benches."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from facestream.app.cli.app import app, progress, say, settings_of
from facestream.config import Settings
from facestream.errors import FacestreamError


def _print(rows: list[str], block: str, docs: Path | None) -> None:
    """The table, and into ``docs``' block of that name."""
    from facestream.app.bench import tables

    typer.echo("\n".join(rows))
    if docs:
        tables.update_page(docs, block, rows)
        say(f"wrote the table into {docs}")


def _bench_settings(ctx: typer.Context) -> Settings:
    """The settings, once the bench extra is known to be installed."""
    if importlib.util.find_spec("psutil") is None:
        raise FacestreamError("facestream bench needs its extra: scripts/setup.sh --bench (or pip install 'facestream[bench]')")
    return settings_of(ctx)


def _numbers(option: str, value: str) -> list[int]:
    try:
        return [int(x.replace("_", "")) for x in value.split(",")]
    except ValueError:
        raise FacestreamError(f"{option} takes numbers like 10000,100000 (got {value!r})") from None


@app.command()
def bench(
    ctx: typer.Context,
    video: Annotated[Optional[Path], typer.Argument(help="Clip to play (default: the shared Hamilton clip or the demo sample).")] = None,
    enroll_dir: Annotated[Optional[list[Path]], typer.Option("--enroll", help="Person folders to enroll first (default: the sample's).")] = None,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes.")] = 1,
    live: Annotated[bool, typer.Option("--live", help="Feed at --fps like a camera and report latency (no baseline).")] = False,
    fps: Annotated[float, typer.Option(min=0.1, help="With --live or --capacity: frames per second fed (per camera).")] = 15.0,
    frames: Annotated[Optional[int], typer.Option(min=1, help="Frames to feed (default: the clip once; --live: 300, looping).")] = None,
    baseline: Annotated[bool, typer.Option(help="Also run the naive per-frame baseline on the same clip.")] = True,
    ablation: Annotated[bool, typer.Option("--ablation", help="Run the pipeline once per speed lever, adding one at a time.")] = False,
    knn: Annotated[Optional[str], typer.Option(help="Instead: the gallery KNN at these sizes, e.g. 10000,100000,1000000.")] = None,
    ef: Annotated[Optional[str], typer.Option(help="With --knn: EF_RUNTIME values to sweep, e.g. 200,400,800.")] = None,
    enrollment: Annotated[Optional[Path], typer.Option(help="Instead: time enrolling this folder of <Person>/ images.")] = None,
    sightings: Annotated[Optional[str], typer.Option(help="Instead: the sightings index at these sizes (insert, memory, "
                                                     "24 h search), e.g. 100000,1000000.")] = None,
    embedding: Annotated[bool, typer.Option("--embedding", help="Instead: ms per face embedding, ONNX vs this dlib and each --dlib-wheel, batch 1 and 8.")] = False,
    dlib_wheel: Annotated[Optional[list[Path]], typer.Option("--dlib-wheel", help="With --embedding: another dlib build to time (default: .facestream/wheels/*).")] = None,
    cluster: Annotated[bool, typer.Option("--cluster", help="Instead: frames/s of the stream tier on one node vs a 3-master cluster (both started here, 1080p JPEGs).")] = False,
    gears: Annotated[bool, typer.Option("--gears", help="Instead: the clip through the in-server gear vs the runner (a gear server of the gears_dir build, started here).")] = False,
    strangers: Annotated[Optional[str], typer.Option(help="Instead: a 1080p walk-by of strangers only against galleries of this many people, e.g. 10,100,1000: faces and tracks named.")] = None,
    memory: Annotated[Optional[str], typer.Option(help="Instead: Redis memory with this many 1080p cameras at full speed and no worker, against their frame budget, e.g. 1,8.")] = None,
    detection: Annotated[bool, typer.Option("--detection", help="Instead: what each detection profile finds and costs (synthetic 1080p camera, real frames, live).")] = False,
    capacity: Annotated[Optional[Path], typer.Option(help="Instead: this clip looped on --cameras cameras at --fps each, through what `up` runs: answered, latency, CPU per component.")] = None,
    cameras: Annotated[str, typer.Option(help="With --capacity: numbers of cameras to run, e.g. 1,2,4.")] = "1,2,4",
    seconds: Annotated[float, typer.Option(min=1, help="With --capacity: how long each run's cameras play.")] = 30.0,
    docs: Annotated[Optional[Path], typer.Option(
        help="Write the results table into this page's bench block (docs/benchmarks.md holds them all).")] = None,
) -> None:
    """Frames/s, latency percentiles, per-stage ms, CPU and RSS of the pipeline vs a naive per-frame loop."""

    s = _bench_settings(ctx)
    command = "facestream " + " ".join(sys.argv[1:])
    modes = [  # the first one asked for runs, else the clip bench
        (knn, "knn", lambda: _knn(s, _numbers("--knn", knn), _numbers("--ef", ef) if ef else [], command)),
        (enrollment, "enrollment", lambda: _enrollment(s, enrollment)),
        (sightings, "sightings", lambda: _sightings(s, _numbers("--sightings", sightings), command)),
        (detection, "detection", lambda: _detection(s, frames or 150, command)),
        (strangers, "strangers", lambda: _strangers(s, _numbers("--strangers", strangers), frames or 150, command)),
        (memory, "memory", lambda: _memory(s, _numbers("--memory", memory), command)),
        (embedding, "embedding", lambda: _embedding(s, dlib_wheel, command)),
        (cluster, "cluster", lambda: _cluster(s, command)),
        (capacity, f"capacity-{capacity.stem if capacity else ''}-{fps:g}", lambda: _capacity(s, capacity, enroll_dir, _numbers("--cameras", cameras), fps, seconds,
                                                 command)),
        (gears, "gears", lambda: _gears(s, video, enroll_dir, frames, command)),
        (True, "live" if live else "ablation" if ablation else "clip", lambda: _clip(
            s, video, enroll_dir, workers, fps if live else None, frames, baseline, ablation, command)),
    ]
    block, run = next((name, run) for wanted, name, run in modes if wanted)
    rows = run()
    _print(rows, block, docs)


def _clip(s: Settings, video: Path | None, enroll_dir: list[Path] | None, workers: int, fps: float | None,
          frames: int | None, baseline: bool, ablation: bool, command: str) -> list[str]:
    from facestream.app.bench import tables
    from facestream.app.bench.clip import clip_bench

    clip, people = _clip_and_people(s, video, enroll_dir)
    bar, tick = progress(None, "naive baseline", "frame")
    with bar:
        figs = clip_bench(s, clip, people, workers, fps, frames, baseline, ablation, say, tick)
    for f in figs:
        for line in f.lines():
            typer.echo(line)
    if baseline and fps is None:
        typer.echo(tables.ratio_line(figs[-1], figs[0]))
    return tables.pipeline_table(figs, command)


def _clip_and_people(s: Settings, video: Path | None, enroll_dir: list[Path] | None) -> tuple[Path, list[Path]]:
    """The clip to play and whom to enroll first: --enroll, else the sample's people, else those the clip's
    labels.json names (a clip with no labels: nobody, said so)."""
    from facestream.app.stack.demo import clip_people, find_sample

    sample = find_sample(s.faces_dir) if video is None else None
    clip = video or sample.video
    people = list(enroll_dir or (sample.people if sample else clip_people(clip, s.faces_dir)))
    say(f"enrolling {', '.join(p.name for p in people)}" if people else
        f"nobody to enroll: {clip.name} has no entry in a labels.json beside it; name folders with --enroll")
    return clip, people


def _enrollment(s: Settings, folder: Path) -> list[str]:
    from facestream.app.bench.clip import enroll_rate
    from facestream.app.bench.tables import enrollment_table

    figs = [enroll_rate(s, folder, still, os.cpu_count() or 1) for still in (True, False)]
    for f in figs:
        typer.echo(f.line())
    return enrollment_table(figs, folder)


def _embedding(s: Settings, wheels: list[Path] | None, command: str) -> list[str]:
    from facestream.app.bench.embedding import embedding_bench, found_wheels
    from facestream.app.bench.tables import embedding_table

    return embedding_table(embedding_bench(s, found_wheels() if wheels is None else wheels, say), command)


def _knn(s: Settings, sizes: list[int], efs: list[int], command: str) -> list[str]:
    from facestream.app.bench.knn import knn_bench
    from facestream.app.bench.tables import knn_table
    from facestream.server import connect_index

    client = connect_index(s)
    figs = []
    for n in sizes:
        figs += knn_bench(client, s, n, efs=tuple(efs), say=say)
        for f in figs[-max(1, len(efs)):]:
            typer.echo(f.line())  # as each size finishes: a 1M build takes minutes
    return knn_table(figs, s, command)


def _sightings(s: Settings, sizes: list[int], command: str) -> list[str]:
    from facestream.app.bench.sightings import sightings_bench
    from facestream.app.bench.tables import sightings_table
    from facestream.server import connect_index

    client, figs = connect_index(s), []
    for n in sizes:
        figs.append(sightings_bench(client, s, n, say=say))
        typer.echo(figs[-1].line())
    return sightings_table(figs, s, command)


def _cluster(s: Settings, command: str) -> list[str]:
    from facestream.app.bench.cluster import cluster_bench
    from facestream.app.bench.tables import cluster_table

    return cluster_table(cluster_bench(s, say=say), command)


def _gears(s: Settings, video: Path | None, enroll_dir: list[Path] | None, frames: int | None, command: str) -> list[str]:
    from facestream.app.bench.gears import gear_vs_runner
    from facestream.app.bench.tables import gears_table
    from facestream.gearsbuild import GearsBuild

    build = GearsBuild.configured(s.gears_dir)
    clip, people = _clip_and_people(s, video, enroll_dir)
    comparison = gear_vs_runner(s, build, clip, people, frames, say)
    typer.echo("\n".join(comparison.lines()))
    return gears_table(comparison, command)


def _capacity(s: Settings, clip: Path, enroll_dir: list[Path] | None, cameras: list[int], fps: float, seconds: float,
              command: str) -> list[str]:
    from facestream.app.bench.capacity import capacity
    from facestream.app.bench.tables import capacity_table

    clip, people = _clip_and_people(s, clip, enroll_dir)
    return capacity_table(capacity(s, clip, people, cameras, fps, seconds, say), command)


def _strangers(s: Settings, sizes: list[int], frames: int, command: str) -> list[str]:
    from facestream.app.bench.strangers import strangers_bench
    from facestream.app.bench.tables import strangers_table

    return strangers_table(strangers_bench(s, s.faces_dir, sizes, frames, say), s, command)


def _memory(s: Settings, cameras: list[int], command: str) -> list[str]:
    from facestream.app.bench.memory import memory_bench
    from facestream.app.bench.tables import memory_table

    return memory_table(memory_bench(s, cameras, say=say), s, command)


def _detection(s: Settings, frames: int, command: str) -> list[str]:
    from facestream.app.bench.clip import pipeline_run
    from facestream.app.bench.detection import PROFILES, detection_bench, synthetic, write_video
    from facestream.app.bench.tables import detection_table
    from facestream.app.stack.demo import find_sample

    figs = detection_bench(s, s.faces_dir, PROFILES, frames, say)
    video = write_video(synthetic(s, s.faces_dir, frames)[0], s.data_dir / "cache" / "synthetic-1080p.mp4")
    sample = find_sample(s.faces_dir)
    live = {}
    for label, changes in PROFILES:
        if changes["detection"] == "thorough":
            continue  # not real time at 1080p on a CPU
        p = s.replace(**changes)
        say(f"{label}: live 1080p camera at 15 fps, then the clip at full push...")
        live[label] = [pipeline_run(p, video, [], fps=15.0, max_frames=225, say=say),
                       pipeline_run(p, sample.video, sample.people, say=say)]
        for f in live[label]:
            for line in f.lines():
                typer.echo(line)
    return detection_table(figs, live, command)
