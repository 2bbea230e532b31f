"""Follow the results and/or events streams: from now, from the beginning, or from an id; alone or
in a consumer group (several consumers split the entries). Survives Redis restarts by resuming
after the last entry it saw.
"""

from __future__ import annotations

import json
import logging
import re
import time
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


class _Cursor:
    """Where one follower is in its streams: alone, the last id seen (a reconnect resumes after it); in a
    group, first its own entries read but not yet handed out (a stop mid-batch, a crash), by history id
    until there are none, then new ones ('>'). No gap, no repeat, either way."""

    def __init__(self, streams: list[str], start: str, group: str | None, name: str):
        self.group, self.name, self.start = group, name, start
        self.last = {s: start for s in streams}
        self.mine = {s: "0-0" for s in streams}
        self.caught_up: set[str] = set()

    def read(self, client: redis.Redis, count: int, block_ms: int) -> list:
        if not self.group:
            for s, i in self.last.items():
                if i == "$":  # resolved once, so a reconnect resumes where we were
                    top = client.xrevrange(s, count=1)
                    self.last[s] = text(top[0][0]) if top else "0-0"
            return client.xread(self.last, count=count, block=block_ms) or []
        for s in self.last:
            ensure_group(client, s, self.group, self.start)
        ids = {s: (">" if s in self.caught_up else self.mine[s]) for s in self.last}
        history = len(self.caught_up) < len(ids)
        reply = client.xreadgroup(self.group, self.name, ids, count=count, block=None if history else block_ms) or []
        self.caught_up |= {text(s) for s, entries in reply if ids[text(s)] != ">" and not entries}
        return [(s, entries) for s, entries in reply if entries]

    def seen(self, client: redis.Redis, stream: str, entry_id: str) -> None:
        self.last[stream] = self.mine[stream] = entry_id
        if self.group:
            client.xack(stream, self.group, entry_id)


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
    cursor = _Cursor(list(streams), start, group, name)
    backoff = Backoff()
    idle_since = time.monotonic()
    while True:
        try:
            reply = cursor.read(client, count, block_ms)
            backoff.reset()
        except redis.ConnectionError as e:
            cursor.caught_up.clear()  # entries read just before the outage may not have been handed out
            backoff.wait(log, f"Redis unreachable ({e})")
            continue
        if not reply:
            if idle_exit_s is not None and time.monotonic() - idle_since > idle_exit_s and \
                    len(cursor.caught_up) >= (len(streams) if group else 0):
                return
            continue
        idle_since = time.monotonic()
        for stream, entries in reply:
            stream = text(stream)
            for entry_id, fields in entries:
                entry_id = text(entry_id)
                cursor.seen(client, stream, entry_id)
                try:
                    rec = parse(streams[stream], fields)
                except BadRecord as e:  # written by someone else: say so, go on with the next
                    log.warning("%s %s skipped: %s", stream, entry_id, e)
                    continue
                if camera is None or rec.camera == camera:
                    yield streams[stream], entry_id, rec


def to_json(kind: str, entry_id: str, rec: Record) -> str:
    """One line of ``facestream consume --json``: the record's own JSON shape, with its stream kind and id."""
    return json.dumps({"kind": kind, "id": entry_id, **rec.to_json()}, separators=(",", ":"))


def to_line(kind: str, entry_id: str, rec: Record) -> str:
    if isinstance(rec, IdentityEvent):
        return f"{rec.ts_ms} {rec.camera:10} {rec.kind:6} {rec.name} ({rec.person_id})"
    faces = ", ".join(f"{f.name}" + (f" {f.visitor}" if f.visitor else "") + (f" d={f.distance:.3f}" if f.distance
                      is not None else "") for f in rec.faces)
    return (f"{rec.ts_ms} {rec.camera:10} seq {rec.seq:6d} {len(rec.faces)} face(s) [{faces or '-'}] "
            f"{rec.timings.get('total', 0):.0f} ms")
