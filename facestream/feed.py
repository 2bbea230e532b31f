"""Reading many streams on one Redis or a Redis Cluster, and every camera's output streams as one feed.

On a single Redis one XREAD / XREADGROUP covers any number of streams and can block. On a cluster a
command's keys must share a slot: one camera's streams do (the hash tag of :mod:`facestream.keys`),
different cameras' do not. :func:`read` then sends one call per slot, none blocking, and sleeps a
short poll interval when none had anything: a few calls per slot every 20 ms is nothing next to a
frame's work, and redis-py's ``RedisCluster`` routes each call (MOVED, ASK, fail-over).

:class:`Feed` is what consumers read: the ``results`` / ``events`` / ``deadletter`` streams of every
camera, cameras that appear later included, merged oldest first by entry id.
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass
from typing import Sequence

import redis

from facestream.commands import cameras, ensure_group
from facestream.keys import Keys
from facestream.records import Fields
from facestream.replies import text

POLL_S = 0.02  # on a cluster: the wait between two rounds of non-blocking reads that found nothing
Reply = list[tuple[bytes, list[tuple[bytes, Fields]]]]


def is_cluster(client: object) -> bool:
    return isinstance(client, redis.RedisCluster)


def read(client: redis.Redis | redis.RedisCluster, streams: dict[str, str], count: int, block_ms: int | None,
         group: tuple[str, str] | None = None) -> Reply:
    """XREAD (or XREADGROUP as ``group`` = (group, consumer)) of ``streams`` {key: id}: one call on a single
    Redis; on a cluster one call per slot, waiting up to :data:`POLL_S` when ``block_ms`` and nothing came."""
    if not streams:
        if block_ms:
            time.sleep(block_ms / 1000)
        return []
    if not is_cluster(client):
        return _read(client, streams, count, block_ms, group)
    by_slot: dict[int, dict[str, str]] = defaultdict(dict)
    for key, entry_id in streams.items():
        by_slot[client.keyslot(key)][key] = entry_id
    out: Reply = []
    for part in by_slot.values():
        out += _read(client, part, count, None, group)
    if block_ms and not any(entries for _, entries in out):
        time.sleep(min(block_ms / 1000, POLL_S))
    return out


def _read(client: redis.Redis | redis.RedisCluster, streams: dict[str, str], count: int, block_ms: int | None,
          group: tuple[str, str] | None) -> Reply:
    if group:
        return client.xreadgroup(group[0], group[1], streams, count=count, block=block_ms) or []
    return client.xread(streams, count=count, block=block_ms) or []


def id_key(entry_id: str) -> tuple[int, int]:
    """A stream entry id as a sortable pair (ms, sequence)."""
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


@dataclass
class Entry:
    """One entry of a camera's output stream."""

    kind: str  # results / events / deadletter
    stream: str
    entry_id: str
    fields: Fields
    redelivered: bool = False  # in a group: read again from this consumer's unacknowledged history


def newest(client: redis.Redis | redis.RedisCluster, keys: Keys, kind: str, n: int) -> list[Entry]:
    """The ``n`` newest entries of every camera's ``kind`` stream together, newest first."""
    out = []
    for camera in cameras(client, keys, kind)[0]:
        stream = keys.camera_key(kind, camera)
        out += [Entry(kind, stream, text(i), f) for i, f in client.xrevrange(stream, count=n)]
    return sorted(out, key=lambda e: id_key(e.entry_id), reverse=True)[:n]


class Feed:
    """New entries of the ``kinds`` streams of every camera (or of one), oldest first across cameras.

    ``start``: '$' (what is added from now), '0' (everything kept) or an entry id. Cameras found later
    (SCAN every ``discover_s`` for their output or frame streams: a camera is followed from its first
    frame, before its first result) are read from their first entry: all of it is newer than our start.
    Alone, the feed remembers the last id of each stream, so a reconnect resumes after it. In a
    ``group`` (several consumers split the entries), each stream first gives back this consumer's own
    entries read but not yet acknowledged (a stop mid-batch, a crash), then new ones: no gap, no repeat.
    """

    def __init__(self, client: redis.Redis | redis.RedisCluster, keys: Keys, kinds: Sequence[str], start: str = "$",
                 camera: str | None = None, group: str | None = None, name: str = "consumer", discover_s: float = 2.0):
        # '$' is "from now" for every stream, also those found later: the entry id of this moment, not each
        # stream's last entry when it is found (entries added between the two would be skipped).
        now = f"{int(time.time() * 1000)}-0"
        self.r, self.keys, self.kinds, self.start = client, keys, tuple(kinds), now if start == "$" else start
        self.camera, self.group, self.name, self.discover_s = camera, group, name, discover_s
        self.kind_of: dict[str, str] = {}  # stream -> kind
        self.last: dict[str, str] = {}  # alone: the last id seen; in a group: this consumer's history cursor
        self.caught_up: set[str] = set()  # in a group: streams whose history is read
        self._next_discover = 0.0
        self._started = False

    def discover(self) -> None:
        """Add the streams of cameras not yet read (at start: from ``start``; later: from their beginning)."""
        if time.monotonic() < self._next_discover:
            return
        self._next_discover = time.monotonic() + self.discover_s
        found = [self.camera] if self.camera else sorted(
            {c for kind in {*self.kinds, "frames"} for c in cameras(self.r, self.keys, kind)[0]})
        for kind in self.kinds:
            for camera in found:
                stream = self.keys.camera_key(kind, camera)
                if stream not in self.kind_of:
                    self._add(stream, kind, self.start if not self._started else "0")
        self._started = True

    def _add(self, stream: str, kind: str, start: str) -> None:
        if self.group:  # (and the stream: a camera without outputs yet gets its group before its first entry)
            ensure_group(self.r, stream, self.group, start)
            self.last[stream] = "0-0"
        else:
            self.last[stream] = start
        self.kind_of[stream] = kind

    @property
    def idle(self) -> bool:
        """Nothing of ours left unread from before (in a group: every stream's history handed out)."""
        return not self.group or len(self.caught_up) >= len(self.kind_of)

    def restart(self) -> None:
        """After a lost connection: entries read just before it may not have been handed out."""
        self.caught_up.clear()

    def poll(self, count: int = 100, block_ms: int = 1000) -> list[Entry]:
        """The next entries (at most ``count`` per stream), oldest first; waits up to ``block_ms`` for some."""
        self.discover()
        if not self.group:
            reply = read(self.r, self.last, count, block_ms)
        else:
            ids = {s: (">" if s in self.caught_up else i) for s, i in self.last.items()}
            history = len(self.caught_up) < len(ids)
            reply = read(self.r, ids, count, None if history else block_ms, (self.group, self.name))
            self.caught_up |= {text(s) for s, entries in reply if ids[text(s)] != ">" and not entries}
        again = {s for s, i in self.last.items() if self.group and s not in self.caught_up}
        out = [Entry(self.kind_of[text(s)], text(s), text(i), f, text(s) in again) for s, entries in reply for i, f in entries]
        for e in out:
            self.last[e.stream] = e.entry_id
        return sorted(out, key=lambda e: id_key(e.entry_id))

    def ack(self, entry: Entry) -> None:
        """In a group: the entry is handled (XACK); alone: nothing to do."""
        if self.group:
            self.r.xack(entry.stream, self.group, entry.entry_id)
