"""The stack file of ``facestream up``: cameras, workers, dashboard, gallery and settings in one YAML.

The ``cameras:`` list is the one ``facestream produce --cameras`` and docker compose's producer read
(docker/cameras.example.yaml); ``up`` also reads the keys around it. ``${VAR}`` in a camera's source is
taken from the environment, so RTSP credentials need not be written in the file.
"""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from facestream.config import Settings
from facestream.errors import ConfigError, FacestreamError
from facestream.keys import check_id
from facestream.producer.capture import CAMERA_KEYS, Source, expand_source

TOP_LEVEL = {"cameras", "workers", "dashboard", "gallery", "settings", "mqtt"}
DASHBOARD_KEYS = {"port", "host"}


@dataclass
class Dashboard:
    port: int = 8080
    host: str = "127.0.0.1"  # logins are on whatever the address (facestream users)


@dataclass
class Stack:
    """What ``facestream up`` runs, read from one file."""

    path: Path
    cameras: list[dict[str, Any]] = field(default_factory=list)  # as in the file (sources unexpanded)
    workers: int = 0  # 0: one per camera, at most one per core
    dashboard: Dashboard | None = field(default_factory=Dashboard)
    gallery: list[Path] = field(default_factory=list)
    settings: dict[str, Any] = field(default_factory=dict)
    mqtt: bool = False  # run `facestream mqtt` too (its broker and topics: the mqtt_* settings)

    @property
    def worker_count(self) -> int:
        return self.workers or max(1, min(len(self.cameras), os.cpu_count() or 1))


def read_stack(path: Path) -> Stack:
    """The stack file at ``path``; ConfigError listing every problem of its shape (one line each)."""
    stack, problems = parse_stack(path)
    if problems:
        raise ConfigError(f"{path}:\n" + "\n".join(f"  {p}" for p in problems))
    return stack


def parse_stack(path: Path) -> tuple[Stack, list[str]]:
    """The stack file at ``path`` (its valid parts) and every problem of its shape, one line each."""
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as e:
        return Stack(path), [f"cannot read {path}: {e}"]
    if not isinstance(data, dict):
        return Stack(path), [f"{path} must be a mapping with a 'cameras:' list"]
    problems = [_unknown("key", k, TOP_LEVEL) for k in data if k not in TOP_LEVEL]
    stack = Stack(path)
    cams = data.get("cameras")
    if not isinstance(cams, list) or not cams:
        problems.append("needs a non-empty 'cameras:' list")
        cams = []
    seen: set[str] = set()
    for i, cam in enumerate(cams):
        wrong = _camera_problems(i, cam, seen)
        problems += wrong
        if not wrong:
            stack.cameras.append(cam)
    workers = data.get("workers", 0)
    if not isinstance(workers, int) or workers < 0:
        problems.append(f"workers: {workers!r} is not a number of workers (0: one per camera)")
    else:
        stack.workers = workers
    stack.dashboard, dash_problems = _dashboard(data.get("dashboard", {}))
    problems += dash_problems
    stack.mqtt = data.get("mqtt", False)
    if not isinstance(stack.mqtt, bool):
        problems.append("mqtt: true or false (the broker and topics are the mqtt_* settings)")
        stack.mqtt = False
    stack.gallery = [path.parent / p for p in data.get("gallery") or []]
    problems += [f"gallery: {p} is not a folder" for p in stack.gallery if not p.is_dir()]
    stack.settings = data.get("settings") or {}
    if not isinstance(stack.settings, dict):
        problems.append("settings: must be a mapping of setting: value")
        stack.settings = {}
    unknown = [k for k in stack.settings if k not in Settings.model_fields]
    problems += [f"settings: {_unknown('setting', k, set(Settings.model_fields))}" for k in unknown]
    stack.settings = {k: v for k, v in stack.settings.items() if k not in unknown}
    return stack, problems


def _unknown(kind: str, name: object, known: set[str]) -> str:
    close = difflib.get_close_matches(str(name), sorted(known), n=1)
    return f"{name}: not a {kind}" + (f" (did you mean {close[0]}?)" if close else f" (known: {', '.join(sorted(known))})")


def _camera_problems(i: int, cam: object, seen: set[str]) -> list[str]:
    if not isinstance(cam, dict) or not {"camera", "source"} <= set(cam):
        return [f"camera #{i + 1}: needs 'camera' and 'source'"]
    out = [f"camera {cam['camera']!r}: " + _unknown("camera key", k, CAMERA_KEYS) for k in cam if k not in CAMERA_KEYS]
    try:
        check_id("camera", str(cam["camera"]))
    except ConfigError as e:
        out.append(f"camera #{i + 1}: {e}")
    if str(cam["camera"]) in seen:
        out.append(f"camera {cam['camera']!r}: listed twice")
    seen.add(str(cam["camera"]))
    return out


def _dashboard(raw: object) -> tuple[Dashboard | None, list[str]]:
    if raw is False or raw is None:
        return None, []
    if not isinstance(raw, dict):
        return None, ["dashboard: a mapping (port, host) or false"]
    problems = ["dashboard: " + _unknown("dashboard key", k, DASHBOARD_KEYS) for k in raw if k not in DASHBOARD_KEYS]
    port = raw.get("port", 8080)
    if not isinstance(port, int) or not 0 < port < 65536:
        problems.append(f"dashboard: port {port!r} is not 1-65535")
        port = 8080
    return Dashboard(port, str(raw.get("host", "127.0.0.1"))), problems


def source_problem(cam: dict[str, Any]) -> str | None:
    """Why a camera's source cannot give frames now (None: it opened), one line, credentials masked."""
    try:
        Source(expand_source(cam["source"])).open().release()
    except FacestreamError as e:
        return f"camera {cam['camera']!r}: {e}"
    return None
