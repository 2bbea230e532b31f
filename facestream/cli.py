"""``facestream`` — the one command line over the library. Each subcommand is a thin wrapper."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from facestream.config import CONFIG_ENV, Settings, load_settings
from facestream.errors import FacestreamError

app = typer.Typer(
    help="Real-time face recognition on Redis Streams.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def settings_of(ctx: typer.Context) -> Settings:
    """The validated settings built by the top-level callback."""
    return ctx.obj


@app.callback()
def _root(
    ctx: typer.Context,
    config: Annotated[Optional[Path], typer.Option(help="YAML or TOML config file (or FACESTREAM_CONFIG).")] = None,
    redis_url: Annotated[
        Optional[str], typer.Option(help="Redis 8 / Stack URL (or FACESTREAM_REDIS_URL); default: embedded server.")
    ] = None,
) -> None:
    if config is not None:
        os.environ[CONFIG_ENV] = str(config)
    ctx.obj = load_settings(redis_url=redis_url)


@app.command("redis")
def redis_cmd(
    ctx: typer.Context,
    stop: Annotated[bool, typer.Option("--stop", help="Stop the embedded server instead.")] = False,
    port: Annotated[Optional[int], typer.Option(help="Port (default: embedded_port setting, 6390).")] = None,
) -> None:
    """Start (or --stop) the embedded Redis 8 + RediSearch server and print its URL."""
    from facestream.server import EmbeddedRedis

    s = settings_of(ctx)
    server = EmbeddedRedis(port or s.embedded_port, s.data_dir)
    if stop:
        typer.echo(f"stopped {server.url}" if server.stop() else f"no facestream Redis running on port {server.port}")
        return
    url = server.start()
    typer.echo(url)
    typer.echo(f"data dir {server.dir} (AOF on); stop with: facestream redis --stop --port {server.port}", err=True)


def main() -> None:
    """Console entry point: library errors become one clear line and exit status 1."""
    # One OpenBLAS thread per process (read when dlib loads): on 2 cores, BLAS threads fight the
    # detection threads and the other workers (../shared/docs/perf-notes.md).
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    try:
        app()
    except FacestreamError as e:
        typer.secho(f"error: {e}", fg=typer.colors.RED, err=True)
        sys.exit(1)


# --- gallery ---------------------------------------------------------------------------------------
def _gallery(s: Settings):
    from facestream.server import connect
    from models.gallery import Gallery

    return Gallery(connect(s), s)


def _progress(total: int, desc: str):
    """A tqdm bar on stderr and the callback that advances it."""
    from tqdm import tqdm

    bar = tqdm(total=total, desc=desc, unit="file", file=sys.stderr, dynamic_ncols=True)
    return bar, lambda _outcome: bar.update(1)


@app.command()
def enroll(
    ctx: typer.Context,
    paths: Annotated[list[Path], typer.Argument(help="Folders of <Person>/ images or videos; or files with --person.")],
    person: Annotated[Optional[str], typer.Option(help="Person id for every given file/folder.")] = None,
    name: Annotated[Optional[str], typer.Option(help="Display name (default: the id / folder name).")] = None,
    main_face: Annotated[bool, typer.Option("--main-face", help="Images with several faces: take the one nearest the centre.")] = False,
    every: Annotated[float, typer.Option(help="Videos: seconds between sampled frames.")] = 0.2,
    max_per_video: Annotated[int, typer.Option(help="Videos: keep at most this many diverse faces.")] = 15,
    workers: Annotated[int, typer.Option(help="Processes analysing files.")] = min(2, os.cpu_count() or 1),
) -> None:
    """Enroll faces from folders, images and videos into the gallery (progress bar + per-file summary)."""
    from models.enroll import Options, enroll as run_enroll, plan

    s = settings_of(ctx)
    items, skipped = plan(paths, person, name)
    gallery = _gallery(s)
    bar, tick = _progress(len(items), "enroll")
    with bar:
        summary = run_enroll(gallery, items, s, Options(every, max_per_video, allow_several=main_face), workers, tick)
    summary.skipped = skipped + summary.skipped
    if name and person and summary.enrolled:
        gallery.rename(person, name)
    for line in summary.lines():
        typer.echo(line)
    if summary.interrupted:
        raise typer.Exit(130)


people_app = typer.Typer(help="List, show, rename and delete enrolled people.", no_args_is_help=True)
app.add_typer(people_app, name="people")


@people_app.command("list")
def people_list(ctx: typer.Context) -> None:
    """Every enrolled person: id, faces, name."""
    people = _gallery(settings_of(ctx)).people()
    for p in people:
        typer.echo(f"{p.person_id:32} {p.faces:5d} faces  {p.name}")
    typer.echo(f"{len(people)} people", err=True)


@people_app.command("show")
def people_show(ctx: typer.Context, person_id: str) -> None:
    """One person's name, metadata and face count."""
    import json

    p = _gallery(settings_of(ctx)).person(person_id)
    typer.echo(json.dumps({"person_id": p.person_id, "name": p.name, "faces": p.faces, "meta": p.meta,
                           "created_ms": p.created_ms}, indent=2))


@people_app.command("rename")
def people_rename(ctx: typer.Context, person_id: str, name: str) -> None:
    """Change a person's display name."""
    _gallery(settings_of(ctx)).rename(person_id, name)
    typer.echo(f"{person_id} is now {name!r}")


@people_app.command("delete")
def people_delete(ctx: typer.Context, person_id: str) -> None:
    """Remove a person and every face vector of theirs."""
    n = _gallery(settings_of(ctx)).delete(person_id)
    typer.echo(f"deleted {person_id} and {n} face vectors")


def _faces_dir(path: Optional[Path]) -> Path:
    return path or Path(os.environ.get("FACESTREAM_FACES_DIR", "../shared/data/faces"))


@app.command()
def calibrate(
    ctx: typer.Context,
    pairs: Annotated[Optional[Path], typer.Argument(help="pairs.csv: img_a,img_b,same,fold (paths relative to it).")] = None,
    workers: Annotated[int, typer.Option(help="Processes embedding images.")] = min(2, os.cpu_count() or 1),
    live: Annotated[bool, typer.Option("--live", help="Embed like live frames (no fallback detector, 1 view).")] = False,
) -> None:
    """Compute match_threshold from labelled pairs (k-fold): prints accuracy, threshold, FAR/FRR."""
    from models.evaluate import verify_pairs

    pairs = pairs or _faces_dir(None) / "pairs.csv"
    if not pairs.is_file():
        raise typer.BadParameter(f"{pairs} not found", param_hint="PAIRS")
    import csv

    n_images = len({r[c] for r in csv.DictReader(pairs.open()) for c in ("img_a", "img_b")})
    bar, tick = _progress(n_images, "embed")
    with bar:
        v = verify_pairs(pairs, settings_of(ctx), workers, not live, tick)
    for line in v.lines():
        typer.echo(line)
    typer.echo("this is the best threshold for one-to-one checks; identification against many enrolled people "
               "needs a lower one plus a margin (defaults 0.13 / 0.03): measure yours with `facestream eval`, "
               "then set FACESTREAM_MATCH_THRESHOLD / FACESTREAM_MATCH_MARGIN")


@app.command("eval")
def eval_cmd(
    ctx: typer.Context,
    faces: Annotated[Optional[Path], typer.Argument(help="Folder with gallery/, probes/ (and pairs.csv).")] = None,
    pairs: Annotated[bool, typer.Option(help="Also run pair verification on pairs.csv.")] = True,
    workers: Annotated[int, typer.Option(help="Processes embedding images.")] = min(2, os.cpu_count() or 1),
) -> None:
    """Accuracy of the pipeline's own detect/embed/match path: verification + open-set identification."""
    from facestream.server import connect
    from models.evaluate import identify

    s = settings_of(ctx)
    root = _faces_dir(faces)
    if not (root / "gallery").is_dir() or not (root / "probes").is_dir():
        raise typer.BadParameter(f"{root} needs gallery/ and probes/ folders", param_hint="FACES")
    if pairs and (root / "pairs.csv").is_file():
        ctx.invoke(calibrate, ctx=ctx, pairs=root / "pairs.csv", workers=workers, live=False)
    n = sum(1 for d in ("gallery", "probes") for p in (root / d).rglob("*") if p.is_file())
    bar, tick = _progress(n, "identify")
    with bar:
        res = identify(connect(s), root / "gallery", root / "probes", s, workers, tick)
    for line in res.lines(s.match_threshold, s.match_margin):
        typer.echo(line)


# --- pipeline --------------------------------------------------------------------------------------
@app.command()
def work(
    ctx: typer.Context,
    name: Annotated[Optional[str], typer.Option(help="Consumer name (default: host-pid).")] = None,
    metrics_port: Annotated[Optional[int], typer.Option(help="Serve Prometheus /metrics on this port.")] = None,
    lag_policy: Annotated[Optional[str], typer.Option(help="'all' (answer every frame) or 'latest' (stay live).")] = None,
    exit_when_idle: Annotated[Optional[float], typer.Option(help="Exit after this many seconds with no frame.")] = None,
) -> None:
    """Answer every camera stream through the consumer group (tracking: one worker per camera at a time)."""
    import logging

    from facestream.config import load_settings
    from facestream.server import connect
    from gears import metrics
    from gears.worker import Worker
    from models.analyzer import FaceAnalyzer

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    s = settings_of(ctx)
    if lag_policy or metrics_port is not None:
        s = load_settings(**{**s.model_dump(), "lag_policy": lag_policy or s.lag_policy,
                             "metrics_port": s.metrics_port if metrics_port is None else metrics_port})
    worker = Worker(connect(s), s, FaceAnalyzer(s), name)
    if s.metrics_port:
        metrics.serve(s.metrics_port)
    worker.install_signal_handlers()
    typer.echo(f"worker {worker.name}: group {s.group}, lag policy {s.lag_policy}; Ctrl-C to stop", err=True)
    c = worker.run(max_idle_s=exit_when_idle)
    typer.echo(f"worker {worker.name} stopped: {c.results} results, {c.deadletters} dead letters, "
               f"{c.duplicates} duplicates, {c.skipped} skipped, {c.errors} errors", err=True)


@app.command()
def status(ctx: typer.Context) -> None:
    """Per-camera backlog (lag, pending), live workers, and results/events/dead-letter counts."""
    from facestream.server import connect
    from facestream.status import read_status

    s = settings_of(ctx)
    for line in read_status(connect(s), s).lines():
        typer.echo(line)


gears_app = typer.Typer(help="The in-server RedisGears 1.2 variant.", no_args_is_help=True)
app.add_typer(gears_app, name="gears")


@gears_app.command("load")
def gears_load(ctx: typer.Context) -> None:
    """Register the gear on a RedisGears 1.2 server (RG.PYEXECUTE ... ID facestream UPGRADE)."""
    from facestream.server import connect
    from gears.loader import load

    s = settings_of(ctx)
    typer.echo(load(connect(s), s))


@app.command()
def produce(
    ctx: typer.Context,
    source: Annotated[Optional[str], typer.Argument(help="Video file, rtsp:// or http:// URL, or webcam index / /dev/videoN.")] = None,
    camera: Annotated[Optional[str], typer.Option(help="Camera id (A-Z a-z 0-9 _ -).")] = None,
    cameras: Annotated[Optional[Path], typer.Option(help="YAML file of cameras (see docker/cameras.example.yaml).")] = None,
    fps: Annotated[Optional[float], typer.Option(help="Send at most this many frames per second.")] = None,
    as_fast_as_possible: Annotated[bool, typer.Option("--as-fast-as-possible", help="Files: ignore their timing.")] = False,
    loop: Annotated[bool, typer.Option("--loop", help="Files: start again at the end.")] = False,
    quality: Annotated[int, typer.Option(min=10, max=100, help="JPEG quality.")] = 80,
    max_side: Annotated[int, typer.Option(min=64, help="Downscale frames whose longest side is larger.")] = 1280,
    max_frames: Annotated[Optional[int], typer.Option(help="Stop after this many frames.")] = None,
) -> None:
    """Capture a camera or video (or every camera of --cameras) into its frame stream (bounded, MAXLEN ~)."""
    import logging
    import signal
    import threading

    from facestream.server import connect
    from producer.capture import Producer, load_cameras, producers_from

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    s = settings_of(ctx)
    if cameras:
        producers = producers_from(connect(s), s, load_cameras(cameras))
    elif source and camera:
        producers = [Producer(connect(s), s, camera, source, fps, not as_fast_as_possible, loop, quality, max_side)]
    else:
        raise typer.BadParameter("give SOURCE and --camera, or --cameras FILE")

    def stop(*_: object) -> None:
        for p in producers:
            p.stop()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    if len(producers) == 1:
        producers[0].run(max_frames)  # a bad source is a clear error, exit status 1
    else:

        def run(p: Producer) -> None:
            try:
                p.run(max_frames)
            except FacestreamError as e:
                logging.getLogger("facestream.producer").error("camera %s stopped: %s", p.camera, e)

        threads = [threading.Thread(target=run, args=(p,), name=p.camera) for p in producers]
        for t in threads:
            t.start()
        for t in threads:
            while t.is_alive():
                t.join(0.5)
    for p in producers:
        st = p.stats
        typer.echo(f"camera {p.camera}: sent {st.sent} frames, dropped {st.dropped}, reconnects {st.reconnects}", err=True)


@app.command()
def consume(
    ctx: typer.Context,
    events: Annotated[bool, typer.Option("--events", help="Follow identity events too.")] = False,
    events_only: Annotated[bool, typer.Option("--events-only", help="Follow identity events only.")] = False,
    camera: Annotated[Optional[str], typer.Option(help="Only this camera.")] = None,
    json_lines: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
    start: Annotated[str, typer.Option("--from", help="'now', 'beginning', or an entry id.")] = "now",
    group: Annotated[Optional[str], typer.Option(help="Consumer group: several consumers split the entries.")] = None,
    name: Annotated[str, typer.Option(help="Consumer name within --group.")] = "consumer",
    exit_when_idle: Annotated[Optional[float], typer.Option(help="Exit after this many seconds with nothing new.")] = None,
) -> None:
    """Print identified faces (and identity events) as they arrive."""
    from consumer.follow import follow, to_json, to_line
    from facestream.server import connect

    s = settings_of(ctx)
    kinds = ("events",) if events_only else ("results", "events") if events else ("results",)
    start_id = {"now": "$", "beginning": "0"}.get(start, start)
    fmt = to_json if json_lines else to_line
    try:
        for kind, entry_id, rec in follow(connect(s), s, kinds, start_id, camera, group, name, idle_exit_s=exit_when_idle):
            typer.echo(fmt(kind, entry_id, rec))
    except KeyboardInterrupt:
        pass


@app.command()
def demo(
    ctx: typer.Context,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes.")] = 1,
    port: Annotated[int, typer.Option(help="Dashboard port (0: no dashboard).")] = 8080,
    once: Annotated[bool, typer.Option("--once", help="Exit after one pass instead of looping live.")] = False,
) -> None:
    """The whole pipeline on a sample video: embedded Redis, enrollment, worker(s), dashboard, producer."""
    from facestream.demo import run_demo
    from facestream.server import resolve_url

    s = settings_of(ctx)
    url = resolve_url(s)
    typer.echo(f"Redis ready at {url}  (inspect: redis-cli -u {url} XREVRANGE {s.key_prefix}:results + - COUNT 1)")
    rep = run_demo(s, typer.echo, workers, port, keep_running=not once)
    if not rep.complete:
        raise typer.Exit(1)


@app.command()
def bench(
    ctx: typer.Context,
    video: Annotated[Optional[Path], typer.Argument(help="Clip to play (default: the shared Hamilton clip or the demo sample).")] = None,
    enroll_dir: Annotated[Optional[list[Path]], typer.Option("--enroll", help="Person folders to enroll first (default: the sample's).")] = None,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes.")] = 1,
    live: Annotated[bool, typer.Option("--live", help="Feed at --fps like a camera and report latency (no baseline).")] = False,
    fps: Annotated[float, typer.Option(min=0.1, help="With --live: frames per second fed.")] = 15.0,
    frames: Annotated[Optional[int], typer.Option(min=1, help="Frames to feed (default: the clip once; --live: 300, looping).")] = None,
    baseline: Annotated[bool, typer.Option(help="Also run the naive per-frame baseline on the same clip.")] = True,
    ablation: Annotated[bool, typer.Option("--ablation", help="Run the pipeline once per speed lever, adding one at a time.")] = False,
    knn: Annotated[Optional[str], typer.Option(help="Instead: the gallery KNN at these sizes, e.g. 10000,100000,1000000.")] = None,
    ef: Annotated[Optional[str], typer.Option(help="With --knn: EF_RUNTIME values to sweep, e.g. 200,400,800.")] = None,
    enrollment: Annotated[Optional[Path], typer.Option(help="Instead: time enrolling this folder of <Person>/ images.")] = None,
    readme: Annotated[Optional[Path], typer.Option(help="Write the results table into this file's bench block.")] = None,
) -> None:
    """Frames/s, latency percentiles, per-stage ms, CPU and RSS of the pipeline vs a naive per-frame loop."""
    from facestream.bench import ABLATION, markdown, naive_baseline, pipeline_run, ratio_line, read_clip, update_readme
    from facestream.demo import find_sample

    s = settings_of(ctx)
    if knn:
        _bench_knn(s, knn, ef, readme)
        return
    if enrollment:
        _bench_enrollment(s, enrollment, readme)
        return
    sample = find_sample() if video is None else None
    clip = video or sample.video
    people = list(enroll_dir or (sample.people if sample else []))
    figs = []
    if baseline and not live:
        clip_frames = read_clip(clip, frames)
        bar, tick = _progress(len(clip_frames), "naive baseline")
        with bar:
            figs.append(naive_baseline(clip_frames, lambda: tick(None)))
        del clip_frames  # ~190 MB of decoded frames
    for overrides in ABLATION if ablation else [{}]:
        run_s = load_settings(**{**s.model_dump(), **overrides})
        typer.echo(f"pipeline on {clip.name} {overrides or ''}...", err=True)
        figs.append(pipeline_run(run_s, clip, people, workers, fps if live else None,
                                 frames or (300 if live else None), lambda m: typer.echo(m, err=True)))
    for f in figs:
        for line in f.lines():
            typer.echo(line)
    if baseline and not live:
        typer.echo(ratio_line(figs[-1], figs[0]))
    table = markdown(figs, "facestream " + " ".join(sys.argv[1:]))
    typer.echo("\n".join(table))
    if readme:
        update_readme(readme, "live" if live else "ablation" if ablation else "clip", table)
        typer.echo(f"wrote the table into {readme}", err=True)


def _bench_enrollment(s: Settings, folder: Path, readme: Optional[Path]) -> None:
    from facestream.bench import enroll_rate, machine_line, update_readme

    workers = os.cpu_count() or 1
    rows = [f"`facestream bench --enrollment {folder}` on {machine_line()}:", "",
            "| path | files | faces | seconds | faces/s |", "|---|---|---|---|---|"]
    for still in (True, False):
        f = enroll_rate(s, folder, still, workers)
        typer.echo(f.line())
        rows.append(f"| {f.label} | {f.files} | {f.faces} | {f.wall_s:.1f} | {f.faces / f.wall_s:.1f} |")
    typer.echo("\n".join(rows))
    if readme:
        update_readme(readme, "enrollment", rows)


def _bench_knn(s: Settings, sizes: str, efs: str, readme: Optional[Path]) -> None:
    from facestream.bench import machine_line, update_readme
    from facestream.knnbench import knn_bench
    from facestream.server import connect

    try:
        counts = [int(x.replace("_", "")) for x in sizes.split(",")]
        ef_list = tuple(int(x) for x in efs.split(",")) if efs else (s.hnsw_ef_runtime,)
    except ValueError:
        raise FacestreamError(f"--knn and --ef take numbers like 10000,100000 (got {sizes!r}, {efs!r})") from None
    client = connect(s)
    rows = [f"`facestream {' '.join(sys.argv[1:])}` on {machine_line()}, HNSW M {s.hnsw_m}, EF_CONSTRUCTION "
            f"{s.hnsw_ef_construction}, k {s.knn_k} (the pipeline uses EF_RUNTIME {s.hnsw_ef_runtime}):", "",
            "| faces | EF_RUNTIME | insert/s | query p50 ms | query p99 ms | recall@1 | person recall@1 | Redis MB |",
            "|---|---|---|---|---|---|---|---|"]
    for n in counts:
        for f in knn_bench(client, s, n, efs=ef_list, say=lambda m: typer.echo(m, err=True)):
            typer.echo(f.line())
            rows.append(f"| {f.size:,} | {f.ef} | {f.insert_per_s:,.0f} | {f.p50_ms:.2f} | {f.p99_ms:.2f} | "
                        f"{f.recall_at_1:.4f} | {f.person_recall_at_1:.4f} | {f.memory_mb:.0f} |")
    typer.echo("\n".join(rows))
    if readme:
        update_readme(readme, "knn", rows)


@app.command()
def dashboard(
    ctx: typer.Context,
    host: Annotated[str, typer.Option(help="Address to bind; anything but loopback needs --token.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 8080,
    token: Annotated[Optional[str], typer.Option(envvar="FACESTREAM_DASHBOARD_TOKEN", help="Required as ?token= on every request.")] = None,
) -> None:
    """Live web page: each camera's latest frame with names, identity events, pipeline health (SSE)."""
    import uvicorn

    from consumer.dashboard import check_bind, create_app
    from facestream.server import resolve_url

    check_bind(host, token)
    s = settings_of(ctx)
    app_ = create_app(resolve_url(s), s, token)
    typer.echo(f"dashboard: http://{host}:{port}/" + (f"?token={token}" if token else ""), err=True)
    uvicorn.run(app_, host=host, port=port, log_level="warning")
