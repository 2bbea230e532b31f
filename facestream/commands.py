"""Redis commands that several stages send the same way, so each has one definition."""

from __future__ import annotations

from typing import Any, Sequence

import redis

from facestream.errors import ConfigError
from facestream.keys import Keys, check_id
from facestream.replies import as_dict, text

CHUNK = 1000  # keys per DEL: bounded argument lists, no long-blocking single command


def delete_keys(client: redis.Redis | redis.client.Pipeline, keys: Sequence[Any]) -> None:
    """DEL ``keys`` in chunks (also queued on a MULTI pipeline)."""
    for i in range(0, len(keys), CHUNK):
        client.delete(*keys[i : i + CHUNK])


def delete_matching(client: redis.Redis, pattern: str) -> int:
    """Delete every key matching a SCAN ``pattern`` (scratch prefixes); returns how many were found."""
    keys = list(client.scan_iter(match=pattern, count=CHUNK))
    delete_keys(client, keys)
    return len(keys)


def drop_index(client: redis.Redis, index: str, *patterns: str) -> None:
    """Drop a RediSearch index (if there is one) and every key matching ``patterns`` (scratch data)."""
    try:
        client.execute_command("FT.DROPINDEX", index)
    except redis.ResponseError:
        pass
    for pattern in patterns:
        delete_matching(client, pattern)


def ensure_group(client: redis.Redis, stream: str, group: str, start: str = "0") -> bool:
    """Create consumer ``group`` on ``stream`` (and the stream) unless it exists; True if created.

    From the beginning, the group's read counter starts at 0 (Redis leaves it unknown otherwise), so
    frames trimmed before any worker read them can be counted (:mod:`facestream.gears.losses`).
    """
    try:
        client.xgroup_create(stream, group, id=start, mkstream=True, entries_read=0 if start == "0" else None)
        return True
    except redis.ResponseError as e:
        if "BUSYGROUP" not in str(e):
            raise
        return False


def group_info(client: redis.Redis, stream: str, group: str) -> dict[str, Any] | None:
    """XINFO GROUPS entry of ``group`` on ``stream`` (name, consumers, pending, lag, ...), or None."""
    return next((g for g in client.xinfo_groups(stream) if text(g["name"]) == group), None)


def ft_info(client: redis.Redis, index: str) -> dict[str, Any] | None:
    """FT.INFO of ``index`` as a dict, or None if there is no such index."""
    try:
        return as_dict(client.execute_command("FT.INFO", index))
    except redis.ResponseError as e:
        msg = str(e).lower()
        if "no such index" in msg or "unknown index" in msg or "not found" in msg:
            return None
        raise


def scan_ids(client: redis.Redis, prefix: str, key_type: str | None = None,
             tagged: bool = False) -> tuple[list[str], list[bytes]]:
    """The ids of the keys ``<prefix><id>`` (``<prefix>{<id>}`` if ``tagged``) of ``key_type``, sorted, and
    the raw keys that are not valid ids (not UTF-8, not ``ID_RE``, not tagged): those are skipped and
    reported, never parsed further. On a Redis Cluster every master is scanned (``RedisCluster.scan_iter``).

    Keys come from anyone who can write to Redis; one bad name must not stop a worker or a page.
    """
    ids, bad = [], []
    for raw in client.scan_iter(match=prefix.encode() + b"*", count=CHUNK, _type=key_type):
        tail = bytes(raw)[len(prefix):]
        if tagged:
            tail = tail[1:-1] if tail[:1] == b"{" and tail[-1:] == b"}" else b" "  # " ": never an id
        try:
            ids.append(check_id("key", tail.decode("ascii")))
        except (UnicodeDecodeError, ConfigError):
            bad.append(bytes(raw))
    return sorted(ids), sorted(bad)


def cameras(client: redis.Redis, keys: Keys, kind: str = "frames") -> tuple[list[str], list[bytes]]:
    """The cameras that have a ``kind`` stream (``frames``, ``results``, ...), and the bad keys met."""
    return scan_ids(client, keys.camera_prefix(kind), "stream", tagged=True)
