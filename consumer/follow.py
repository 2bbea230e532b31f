"""Follow every camera's results and/or events streams as one feed: from now, from the beginning, or from an id; alone or
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

from facestream.config import Settings
from facestream.errors import BadRecord, ConfigError
from facestream.feed import Feed
from facestream.keys import Keys
from facestream.records import FrameResult, IdentityEvent
from facestream.refusals import condition
from facestream.retry import Patience

log = logging.getLogger("facestream.consumer")

Record = FrameResult | IdentityEvent
START_RE = re.compile(r"^(\$|0|\d{1,20}(-\d{1,20})?)$")


def parse(kind: str, fields: dict) -> Record:
    return FrameResult.from_fields(fields) if kind == "results" else IdentityEvent.from_fields(fields)


def follow(client: redis.Redis | redis.RedisCluster, settings: Settings, kinds: tuple[str, ...] = ("results",),
           start: str = "$", camera: str | None = None, group: str | None = None, name: str = "consumer",
           block_ms: int = 1000, idle_exit_s: float | None = None, count: int = 100) -> Iterator[tuple[str, str, Record]]:
    """Yield (kind, entry id, record) of every camera's (or one ``camera``'s) ``kinds`` streams, oldest first.
    ``start``: '$' (new only), '0' (beginning) or an entry id (every camera's stream from after it: ids are
    append times in ms, so this resumes the feed where that entry was).

    Entries that are not our records are logged and skipped (acknowledged in a group), never fatal.
    """
    if not START_RE.match(start):
        raise ConfigError(f"start {start!r} must be 'now', 'beginning' or a stream entry id like 1712345678901-0")
    feed = Feed(client, Keys(settings.key_prefix), kinds, start, camera, group, name)
    patience = Patience(log, "following " + ", ".join(kinds))
    idle_since = time.monotonic()
    while True:
        try:
            entries = feed.poll(count, block_ms)
            patience.ok()
        except Exception as e:  # noqa: BLE001 - Redis away or refusing is waited out (said once)
            if condition(e) is None:
                raise
            feed.restart()
            patience.waited(e)
            continue
        if not entries:
            if idle_exit_s is not None and time.monotonic() - idle_since > idle_exit_s and feed.idle:
                return
            continue
        idle_since = time.monotonic()
        for e in entries:
            try:
                feed.ack(e)
            except Exception as err:  # noqa: BLE001 - refused: it stays pending in the group, redelivered later
                if patience.refusals.refused(err) is None:
                    raise
            try:
                rec = parse(e.kind, e.fields)
            except BadRecord as err:  # written by someone else: say so, go on with the next
                log.warning("%s %s skipped: %s", e.stream, e.entry_id, err)
                continue
            yield e.kind, e.entry_id, rec


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
