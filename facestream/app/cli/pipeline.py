"""Pipeline commands: redis, work, status, gears, produce, consume, dashboard, demo."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated, Optional

import typer

from facestream.app.cli.app import app, say, settings_of
from facestream.consumer.auth import login_hint
from facestream.errors import FacestreamError
from facestream.gearsbuild import GearsBuild
from facestream.producer.capture import MAX_SIDE
from facestream.redaction import configure_logging, redact
from facestream.retry import Patience
from facestream.server import EmbeddedRedis, connect, connect_index, resolve_url


@app.command("redis")
def redis_cmd(
    ctx: typer.Context,
    stop: Annotated[bool, typer.Option("--stop", help="Stop the embedded server instead.")] = False,
    port: Annotated[Optional[int], typer.Option(help="Port (default: embedded_port setting, 6390).")] = None,
    gears: Annotated[bool, typer.Option("--gears", help="Also load the RedisGears 1.2 build of the gears_dir setting "
                                        "(then: facestream gears load).")] = False,
    foreground: Annotated[bool, typer.Option("--foreground", help="Run in this process, logging to stdout (a "
                                             "container's main process).")] = False,
    bind: Annotated[str, typer.Option(help="Address to listen on (0.0.0.0 in a container; it requires its password).")] = "127.0.0.1",
) -> None:
    """Start (or --stop) the embedded Redis 8 + RediSearch server and print its URL."""
    s = settings_of(ctx)
    build = GearsBuild.configured(s.gears_dir) if gears else None
    server = EmbeddedRedis(port or s.embedded_port, s.data_dir, gears=build, max_memory_mb=s.redis_max_memory_mb,
                           bind=bind)
    if stop:
        typer.echo(f"stopped {server.shown_url}" if server.stop() else f"no facestream Redis running on port {server.port}")
        return
    if foreground:
        say(f"redis-server on {bind}:{server.port}, data dir {server.dir}, password in {server.password_file}")
        server.run_foreground()
    server.start()
    typer.echo(server.shown_url)
    say(f"data dir {server.dir} (AOF on, owner-only); password in {server.password_file}; "
        f"redis-cli: REDISCLI_AUTH=$(cat {server.password_file}) redis-cli -p {server.port}")
    say(f"stop with: facestream redis --stop --port {server.port}")


acl_app = typer.Typer(help="Least-privilege Redis users per role: admin, worker, producer, reader.",
                      no_args_is_help=True)
app.add_typer(acl_app, name="acl")


@acl_app.command("write")
def acl_write(ctx: typer.Context, out: Annotated[Path, typer.Argument(help="Folder for users.acl and one password file per role.")]) -> None:
    """Write a Redis ACL file (redis-server --aclfile OUT/users.acl) with every role; default user off."""
    from facestream.acl import acl_file
    from facestream.keys import Keys

    path = acl_file(out, Keys(settings_of(ctx).key_prefix))
    typer.echo(f"wrote {path}; passwords in {out}/<role> (owner-only)")


@acl_app.command("apply")
def acl_apply(
    ctx: typer.Context,
    role: Annotated[str, typer.Argument(help="admin, worker, producer or reader.")],
    password_file: Annotated[Optional[Path], typer.Option(help="Where to keep the new password (default: data_dir/acl/ROLE).")] = None,
) -> None:
    """Create (or reset) ROLE's user on the configured Redis; its password goes to an owner-only file."""
    from facestream.acl import apply
    from facestream.keys import Keys

    s = settings_of(ctx)
    path = password_file or s.data_dir / "acl" / role
    name = apply(connect(s), Keys(s.key_prefix), role, path)
    if s.index_url:  # the same user, with the same password, on the index tier
        apply(connect_index(s), Keys(s.key_prefix), role, path, path.read_text().strip())
    typer.echo(f"user {name}: password in {path}; use FACESTREAM_REDIS_USERNAME={name} "
               f"FACESTREAM_REDIS_PASSWORD_FILE={path}")


@app.command()
def work(
    ctx: typer.Context,
    name: Annotated[Optional[str], typer.Option(help="Consumer name (default: host-pid).")] = None,
    metrics_port: Annotated[Optional[int], typer.Option(help="Serve Prometheus /metrics on this port.")] = None,
    lag_policy: Annotated[Optional[str], typer.Option(help="'all' (answer every frame) or 'latest' (stay live).")] = None,
    exit_when_idle: Annotated[Optional[float], typer.Option(help="Exit after this many seconds with no frame.")] = None,
) -> None:
    """Answer every camera stream through the consumer group (tracking: one worker per camera at a time)."""
    from facestream.gears import metrics
    from facestream.gears.worker import Worker
    from facestream.models.vision.analyzer import FaceAnalyzer

    configure_logging()
    s = settings_of(ctx).replace(lag_policy=lag_policy, metrics_port=metrics_port)
    client, analyzer = connect(s), FaceAnalyzer(s)
    patience, worker = Patience(logging.getLogger("facestream.worker"), "worker start"), None
    while worker is None:  # Redis refusing at start (a replica, memory full, loading): waited out like later ones
        try:
            worker = Worker(client, s, analyzer, name, connect_index(s, client))
        except Exception as e:  # noqa: BLE001
            if patience.waited(e) is None:
                raise
    patience.ok()
    if s.metrics_port:
        metrics.serve(s.metrics_port)
    worker.install_signal_handlers()
    say(f"worker {worker.name}: group {s.group}, lag policy {s.lag_policy}; Ctrl-C to stop")
    c = worker.run(max_idle_s=exit_when_idle)
    say(f"worker {worker.name} stopped: {c.results} results, {c.deadletters} dead letters, "
        f"{c.duplicates} duplicates, {c.skipped} skipped, {c.errors} errors")


@app.command()
def status(ctx: typer.Context, worker_alive: Annotated[Optional[str], typer.Option(
        help="Instead: exit 0 if a worker whose name starts with this beats, else 1 (a container health check).")] = None,
) -> None:
    """Per-camera backlog (lag, pending), live workers, and results/events/dead-letter counts."""
    from facestream.keys import Keys
    from facestream.status import read_status

    s = settings_of(ctx)
    client = connect(s)
    if worker_alive is not None:
        beats = list(client.scan_iter(match=Keys(s.key_prefix).worker(worker_alive + "*"), count=1000))
        typer.echo(f"{len(beats)} worker(s) named {worker_alive}* beating")
        raise typer.Exit(0 if beats else 1)
    for line in read_status(client, s, connect_index(s, client)).lines():
        typer.echo(line)


gears_app = typer.Typer(help="The in-server RedisGears 1.2 variant.", no_args_is_help=True)
app.add_typer(gears_app, name="gears")


@gears_app.command("build")
def gears_build(
    source: Annotated[Optional[Path], typer.Option(help="A RedisGears source archive or folder (default: the vendored "
                                                   "../shared/vendor archive, else a git clone of v1.2.9).")] = None,
    into: Annotated[Optional[Path], typer.Option(help="Where to put the build (default: ~/.cache/facestream/"
                                                 "redisgears-1.2.9, where gears_dir points when unset).")] = None,
) -> None:
    """Build RedisGears 1.2.9 (module, Python plugin, its Python 3.7 and the gear's packages) from source, once."""
    from facestream.app.stack.buildgears import build

    build(source, into, say)


@gears_app.command("load")
def gears_load(ctx: typer.Context) -> None:
    """Register the gear on a RedisGears 1.2 server (RG.PYEXECUTE ... ID facestream UPGRADE)."""
    from facestream.gears.loader import load

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
    max_side: Annotated[int, typer.Option(min=64, help="Downscale frames whose longest side is larger.")] = MAX_SIDE,
    max_frames: Annotated[Optional[int], typer.Option(help="Stop after this many frames.")] = None,
) -> None:
    """Capture a camera or video (or every camera of --cameras) into its frame stream (bounded, MAXLEN ~)."""
    from facestream.producer.capture import Producer, load_cameras, producers_from
    from facestream.producer.fleet import run_all

    configure_logging()
    s = settings_of(ctx)
    if cameras:
        producers = producers_from(connect(s), s, load_cameras(cameras))
    elif source and camera:
        producers = [Producer(connect(s), s, camera, source, fps, not as_fast_as_possible, loop, quality, max_side)]
    else:
        raise typer.BadParameter("give SOURCE and --camera, or --cameras FILE")
    run_all(producers, max_frames)
    for p in producers:
        st = p.stats
        say(f"camera {p.camera}: sent {st.sent} frames ({st.resent} of a still scene, not encoded again), "
            f"dropped {st.dropped}, reconnects {st.reconnects}")


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
    from facestream.consumer.follow import follow, to_json, to_line

    configure_logging()
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
def dashboard(
    ctx: typer.Context,
    host: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 8080,
    token: Annotated[Optional[str], typer.Option(envvar="FACESTREAM_DASHBOARD_TOKEN", help="Scripts: an admin token, sent as 'Authorization: Bearer TOKEN'.")] = None,
    public_name: Annotated[Optional[list[str]], typer.Option(help="A Host name the dashboard answers besides loopback and --host (its name behind a proxy).")] = None,
    certfile: Annotated[Optional[Path], typer.Option(help="Serve HTTPS with this certificate (PEM); with --keyfile.")] = None,
    keyfile: Annotated[Optional[Path], typer.Option(help="The certificate's private key (PEM).")] = None,
    no_auth: Annotated[bool, typer.Option("--no-auth", help="No logins (127.0.0.1 only): anyone on this machine is admin.")] = False,
) -> None:
    """Live web page: each camera's latest frame with names, identity events, pipeline health (SSE); logins
    with viewer and admin roles (facestream users)."""
    import uvicorn

    from facestream.consumer.auth import Users
    from facestream.consumer.dashboard import check_bind, create_app

    check_bind(host, not no_auth)
    if (certfile is None) != (keyfile is None):
        raise FacestreamError("--certfile and --keyfile go together")
    configure_logging()
    s = settings_of(ctx)
    scheme = "https" if certfile else "http"
    app = create_app(resolve_url(s), s, token, not no_auth, host, public_name or [])
    say(f"dashboard: {scheme}://{host}:{port}/  {login_hint(Users.of(s), not no_auth)}")
    uvicorn.run(app, host=host, port=port, log_level="warning", ssl_certfile=certfile, ssl_keyfile=keyfile)


@app.command()
def demo(
    ctx: typer.Context,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes.")] = 1,
    port: Annotated[int, typer.Option(help="Dashboard port (0: no dashboard).")] = 8080,
    once: Annotated[bool, typer.Option("--once", help="Exit after one pass instead of looping live.")] = False,
) -> None:
    """The whole pipeline on a sample video: embedded Redis, enrollment, worker(s), dashboard, producer."""
    import signal

    from facestream.app.stack.demo import run_demo

    def interrupted(*_: object) -> None:
        raise KeyboardInterrupt  # a service manager's stop (SIGTERM) ends the demo as Ctrl-C does

    signal.signal(signal.SIGTERM, interrupted)
    s = settings_of(ctx)
    typer.echo(f"Redis ready at {redact(resolve_url(s))}")
    if not run_demo(s, typer.echo, workers, port, keep_running=not once).complete:
        raise typer.Exit(1)


@app.command()
def mqtt(
    ctx: typer.Context,
    exit_when_idle: Annotated[Optional[float], typer.Option(help="Stop after this many seconds without an event.")] = None,
) -> None:
    """Publish identity events, presence and health on MQTT, with Home Assistant discovery (mqtt_* settings)."""
    import signal

    from facestream.consumer.mqtt import MqttBridge

    configure_logging()
    s = settings_of(ctx)
    client = connect(s)
    bridge = MqttBridge(client, s, connect_index(s, client))
    bridge.connect()
    signal.signal(signal.SIGTERM, bridge.stop)
    signal.signal(signal.SIGINT, bridge.stop)
    say(f"mqtt: publishing {s.key_prefix}'s events under {s.mqtt_topic_prefix}/ on {s.mqtt_host}:{s.mqtt_port}")
    say(f"mqtt: stopped after {bridge.run(exit_when_idle)} messages")
