"""``facestream up``: the whole local stack from one stack file, supervised.

Redis (the embedded server unless ``redis_url`` is set), then the gallery folders enrolled, then the
children: ``workers`` × ``facestream work``, one ``facestream produce`` per camera (so one bad source
does not stop the others, and its retries show in its own log) and the dashboard.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path
from typing import Callable

import yaml

from facestream.app.stack.local import enroll_people, settings_env
from facestream.app.stack.stackfile import Stack, parse_stack, read_stack, source_problem
from facestream.app.stack.supervisor import Child, RedisWatch, Supervisor
from facestream.config import Settings
from facestream.consumer.auth import Users, login_hint
from facestream.errors import ConfigError, FacestreamError
from facestream.models.store.gallery import Gallery
from facestream.producer.capture import expand_source
from facestream.redaction import redact
from facestream.server import connect, connect_index, port_in_use, resolve_url


#: Redis memory one answered frame keeps in its camera's results stream: 1,535 bytes measured for a 1080p
#: frame with 5 faces (MEMORY USAGE over 2,000 entries); events and dead letters are far fewer.
RESULT_BYTES = 1536


def check(path: Path, settings: Settings) -> list[str]:
    """Every problem of the stack file at ``path``, one line each (empty: it would start)."""
    stack, problems = parse_stack(path)
    try:
        s = stack_settings(stack, settings)
    except ConfigError as e:
        problems += [f"settings: {ln.strip()}" for ln in str(e).splitlines()[1:]]
        s = settings
    problems += [p for cam in stack.cameras if (p := source_problem(cam))]
    problems += [p for p in [memory_problem(len(stack.cameras), s)] if p]
    return problems


def memory_problem(cameras: int, s: Settings) -> str | None:
    """Why the cameras' streams at their caps may not fit the embedded server's maxmemory (None: they fit, or
    Redis is not the embedded one)."""
    need = memory_need_mb(cameras, s)
    if not need > s.redis_max_memory_mb > 0 or s.redis_url:
        return None
    return (f"memory: {cameras} camera(s) x (frames_max_mb {s.frames_max_mb:g} + results "
            f"{s.results_maxlen * RESULT_BYTES / 2**20:.0f} MB) + memory_headroom_mb {s.memory_headroom_mb} = "
            f"{need:.0f} MB > redis_max_memory_mb {s.redis_max_memory_mb}: raise it, or lower frames_max_mb or "
            "results_maxlen (a full Redis refuses writes: frames are dropped and counted until memory is freed)")


def memory_need_mb(cameras: int, s: Settings) -> float:
    """Redis memory the cameras' streams may fill at their caps, plus the headroom for the rest."""
    return cameras * (s.frames_max_mb + s.results_maxlen * RESULT_BYTES / 2**20) + s.memory_headroom_mb


def stack_settings(stack: Stack, settings: Settings) -> Settings:
    """The settings ``up`` runs ``stack`` with: the stack file's over ``settings``, the cores shared out."""
    return share_cores(stack, settings.replace(**stack.settings), settings.model_fields_set | set(stack.settings))


def share_cores(stack: Stack, s: Settings, chosen: set[str]) -> Settings:
    """``s`` with ``detect_threads`` set to the cores shared out between the stack's workers, unless it is among
    the settings the user ``chosen``: two workers of two detection threads on two cores wait on each other
    (measured, 4 cameras at 5 fps on 2 cores: p99 837 ms with 2 threads each, 569 ms with 1)."""
    if "detect_threads" in chosen:
        return s
    return s.replace(detect_threads=max(1, (os.cpu_count() or 1) // stack.worker_count))


def children(stack: Stack, s: Settings, logs: Path | None = None) -> list[Child]:
    """The processes of ``stack``, logging into ``logs`` (default ``<data_dir>/up``); each camera's entry goes to
    its producer in an owner-only file (a source on a command line would show its credentials to anyone
    running ``ps``)."""
    logs = logs or s.data_dir.resolve() / "up"
    logs.mkdir(parents=True, exist_ok=True)
    out = [Child(f"worker-{i}", ["work", "--name", f"up-{i}"], logs / f"worker-{i}.log", "worker")
           for i in range(stack.worker_count)]
    for cam in stack.cameras:
        entry = {**cam, "source": expand_source(cam["source"])}
        spec = logs / f"camera-{cam['camera']}.yaml"
        fd = os.open(spec, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            yaml.safe_dump({"cameras": [entry]}, f)
        out.append(Child(f"camera-{cam['camera']}", ["produce", "--cameras", str(spec)], logs / f"camera-{cam['camera']}.log",
                         f"producer of {cam['camera']}: {redact(str(cam['source']))}"))
    if stack.mqtt:
        out.append(Child("mqtt", ["mqtt"], logs / "mqtt.log", f"MQTT bridge to {s.mqtt_host}:{s.mqtt_port}"))
    if stack.dashboard is not None:
        d = stack.dashboard
        users = Users.of(s)
        users.ensure_admin()
        out.append(Child("dashboard", ["dashboard", "--host", d.host, "--port", str(d.port)], logs / "dashboard.log",
                         f"dashboard on http://{d.host}:{d.port}/ ({login_hint(users, True)})"))
    return out


def up(path: Path, settings: Settings, say: Callable[[str], None]) -> None:
    """Run the stack at ``path`` until SIGINT/SIGTERM, restarting children that exit."""
    stack = read_stack(path)
    s = stack_settings(stack, settings)
    if stack.dashboard is not None and port_in_use(stack.dashboard.port):
        raise FacestreamError(f"port {stack.dashboard.port} is in use: set dashboard.port in {path} (or dashboard: false)")
    if problem := memory_problem(len(stack.cameras), s):
        say(f"warning: {problem}")
    url = resolve_url(s)  # starts the embedded server if it is the default and not running
    if stack.gallery:
        enroll_people(Gallery(connect_index(s, connect(s, url)), s), stack.gallery, s, say)
    logs = s.data_dir.resolve() / "up"
    supervisor = Supervisor(children(stack, s), settings_env(s, url), say, RedisWatch(s, url, say),
                            logs / "status.json")
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    say(f"facestream up: {len(stack.cameras)} camera(s), {stack.worker_count} worker(s), Redis {redact(url)}; "
        "Ctrl-C stops everything")
    supervisor.start_all()
    try:
        supervisor.run(stop.is_set)
    finally:
        supervisor.stop()


def status_lines(settings: Settings) -> list[str]:
    """``facestream up --status``: each component of the running ``up`` (written every half second)."""
    path = settings.data_dir.resolve() / "up" / "status.json"
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        raise FacestreamError(f"no status at {path}: is facestream up running with this data_dir?") from None
    age = time.time() - data["ts"]
    lines = [f"{'component':16} {'state':6} {'pid':>7} {'restarts':>8}  last error"]
    lines += [f"{c['name']:16} {c['state']:6} {c['pid'] or '-':>7} {c['restarts']:>8}  {c['last_error']}"
              for c in data["components"]]
    if age > 5:
        lines.append(f"(written {age:.0f} s ago: facestream up is not running, or stuck)")
    return lines
