"""The audit trail of gallery changes: one Redis stream (``<prefix>:audit``, ``redis-cli XREVRANGE
fs:audit + - COUNT 20``), one entry per change: when, who, from which address, what, to whom.

Erasing a person (``forget``) deletes the entries that name them and records the erasure under a
digest of the id, so the trail keeps that an erasure happened without keeping whom it was about.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import asdict, dataclass

import redis

from facestream.keys import Keys
from facestream.replies import text

MAXLEN = 10_000


@dataclass(frozen=True)
class Change:
    ts_ms: int
    user: str  # dashboard user, "token", or "cli:<os user>"
    address: str  # the client's address, or "cli"
    action: str  # enroll, rename, delete, name, merge, forget, clear
    target: str  # the person or visitor id changed
    detail: str = ""

    def to_json(self) -> dict[str, str | int]:
        return asdict(self)


def record(r: redis.Redis, keys: Keys, user: str, address: str, action: str, target: str, detail: str = "") -> None:
    """Append one change to the trail."""
    change = Change(int(time.time() * 1000), user, address, action, target, detail)
    r.xadd(keys.audit, {k: str(v) for k, v in asdict(change).items()}, maxlen=MAXLEN, approximate=True)


def recent(r: redis.Redis, keys: Keys, count: int = 50) -> list[Change]:
    """The latest ``count`` changes, newest first."""
    out = []
    for _, fields in r.xrevrange(keys.audit, count=count):
        f = {text(k): text(v) for k, v in fields.items()}
        out.append(Change(int(f.get("ts_ms", 0)), f.get("user", ""), f.get("address", ""), f.get("action", ""),
                          f.get("target", ""), f.get("detail", "")))
    return out


def erased(r: redis.Redis, keys: Keys, who: str) -> int:
    """Delete the trail's entries about ``who``; returns how many."""
    ids = [eid for eid, fields in r.xrange(keys.audit)
           if text(fields.get(b"target", b"")) == who or who in text(fields.get(b"detail", b"")).split()]
    return r.xdel(keys.audit, *ids) if ids else 0


def digest(who: str) -> str:
    """How the trail names someone erased: not their id."""
    return "erased:" + hashlib.sha256(who.encode()).hexdigest()[:12]
