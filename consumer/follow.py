"""Follow the results and/or events streams: from now, from the beginning, or from an id; alone or
in a consumer group (several consumers split the entries). Survives Redis restarts by resuming
after the last entry it saw.
"""

from __future__ import annotations

import json
import logging
import re
import time
from dataclasses import asdict
from typing import Iterator

import redis

from facestream.commands import ensure_group
from facestream.config import Settings
from facestream.errors import BadRecord, ConfigError
from facestream.keys import Keys
from facestream.records import FrameResult, IdentityEvent
from facestream.replies import text
from facestream.retry import Backoff

log = logging.getLogger("facestream.consumer")

Record = FrameResult | IdentityEvent
START_RE = re.compile(r"^(\$|0|\d{1,20}(-\d{1,20})?)$")


def parse(kind: str, fields: dict) -> Record:
    return FrameResult.from_fields(fields) if kind == "results" else IdentityEvent.from_fields(fields)


def follow(client: redis.Redis, settings: Settings, kinds: tuple[str, ...] = ("results",), start: str = "$",
           camera: str | None = None, group: str | None = None, name: str = "consumer",
           block_ms: int = 1000, idle_exit_s: float | None = None, count: int = 100) -> Iterator[tuple[str, str, Record]]:
    """Yield (kind, entry id, record). ``start``: '$' (new only), '0' (beginning) or an entry id.

    Entries that are not our records are logged and skipped (acknowledged in a group), never fatal.
    """
    if not START_RE.match(start):
        raise ConfigError(f"start {start!r} must be 'now', 'beginning' or a stream entry id like 1712345678901-0")
    keys = Keys(settings.key_prefix)
    streams = {getattr(keys, k): k for k in kinds}
    last = {s: start for s in streams}
    mine = {s: "0-0" for s in streams}  # group mode: where this consumer's pending entries are read from
    caught_up: set[str] = set()
    backoff = Backoff()
    idle_since = time.monotonic()
    while True:
        try:
            if group:
                for s in streams:
                    ensure_group(client, s, group, start)
                # First this consumer's own entries read but not yet handed out (a stop mid-batch, a
                # crash): by history id until there are none; then new ones ('>'). No gap either way.
                ids = {s: (">" if s in caught_up else mine[s]) for s in streams}
                reply = client.xreadgroup(group, name, ids, count=count, block=None if len(caught_up) < len(streams)
                                          else block_ms)
                for stream, entries in reply or []:
                    if ids[text(stream)] != ">" and not entries:
                        caught_up.add(text(stream))
            else:
                if "$" in last.values():  # resolve '$' once so a reconnect resumes where we were
                    for s, i in last.items():
                        if i == "$":
                            top = client.xrevrange(s, count=1)
                            last[s] = text(top[0][0]) if top else "0-0"
                reply = client.xread(last, count=count, block=block_ms)
            backoff.reset()
        except redis.ConnectionError as e:
            caught_up.clear()  # entries read just before the outage may not have been handed out
            backoff.wait(log, f"Redis unreachable ({e})")
            continue
        if not reply:
            if idle_exit_s is not None and time.monotonic() - idle_since > idle_exit_s:
                return
            continue
        idle_since = time.monotonic()
        for stream, entries in reply:
            stream = text(stream)
            for entry_id, fields in entries:
                entry_id = text(entry_id)
                last[stream] = mine[stream] = entry_id
                if group:
                    client.xack(stream, group, entry_id)
                try:
                    rec = parse(streams[stream], fields)
                except BadRecord as e:  # written by someone else: say so, go on with the next
                    log.warning("%s %s skipped: %s", stream, entry_id, e)
                    continue
                if camera is None or rec.camera == camera:
                    yield streams[stream], entry_id, rec


def to_json(kind: str, entry_id: str, rec: Record) -> str:
    d = asdict(rec)
    if isinstance(rec, FrameResult):
        d["names"] = rec.names
    return json.dumps({"kind": kind, "id": entry_id, **d}, separators=(",", ":"))


def to_line(kind: str, entry_id: str, rec: Record) -> str:
    if isinstance(rec, IdentityEvent):
        return f"{rec.ts_ms} {rec.camera:10} {rec.kind:6} {rec.name} ({rec.person_id})"
    faces = ", ".join(f"{f.name}" + (f" d={f.distance:.3f}" if f.distance is not None else "") for f in rec.faces)
    return (f"{rec.ts_ms} {rec.camera:10} seq {rec.seq:6d} {len(rec.faces)} face(s) [{faces or '-'}] "
            f"{rec.timings.get('total', 0):.0f} ms")
