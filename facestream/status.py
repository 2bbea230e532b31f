"""Pipeline health read from Redis alone: per-camera backlog, worker heartbeats, output stream sizes.

Used by ``facestream status`` (and anything else that wants the same picture without Prometheus).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import redis

from facestream.commands import group_info
from facestream.config import Settings
from facestream.keys import Keys
from facestream.replies import text


@dataclass
class CameraStatus:
    camera: str
    frames: int  # entries now in the stream
    lag: int | None  # entries not yet delivered to the group (None: group missing)
    pending: int  # delivered, not yet answered
    consumers: int
    reader: str | None = None  # with tracking: the worker holding the camera's lease


@dataclass
class Status:
    cameras: list[CameraStatus] = field(default_factory=list)
    workers: dict[str, dict[str, str]] = field(default_factory=dict)
    results: int = 0
    events: int = 0
    deadletters: int = 0

    def lines(self) -> list[str]:
        out = [f"results {self.results}   events {self.events}   dead letters {self.deadletters}",
               f"{'camera':20} {'frames':>8} {'lag':>8} {'pending':>8} {'consumers':>9}  read by"]
        for c in self.cameras:
            out.append(f"{c.camera:20} {c.frames:8d} {('-' if c.lag is None else c.lag):>8} {c.pending:8d} "
                       f"{c.consumers:9d}  {c.reader or '-'}")
        out.append(f"workers alive: {len(self.workers)}")
        for name, w in sorted(self.workers.items()):
            out.append(f"  {name}: results {w.get('results')} dead letters {w.get('deadletters')} "
                       f"skipped {w.get('skipped')} errors {w.get('errors')}")
        return out


def read_status(client: redis.Redis, settings: Settings) -> Status:
    keys = Keys(settings.key_prefix)
    st = Status(results=client.xlen(keys.results), events=client.xlen(keys.events),
                deadletters=client.xlen(keys.deadletter))
    for key in sorted(text(k) for k in client.scan_iter(match=keys.frames_pattern, count=1000, _type="stream")):
        group = group_info(client, key, settings.group)
        camera = keys.camera_of(key)
        reader = client.get(keys.lease(camera))
        st.cameras.append(CameraStatus(
            camera, client.xlen(key),
            None if group is None else int(group.get("lag") or 0),
            0 if group is None else int(group["pending"]),
            0 if group is None else int(group["consumers"]),
            None if reader is None else text(reader),
        ))
    for wkey in client.scan_iter(match=keys.worker_pattern, count=1000):
        st.workers[text(wkey).rsplit(":", 1)[-1]] = {text(k): text(v) for k, v in client.hgetall(wkey).items()}
    return st
