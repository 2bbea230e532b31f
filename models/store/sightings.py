"""Sightings: the best views of every face the cameras saw, searchable by face, time, camera and label.

A sighting (:class:`facestream.records.Sighting`) is one hash ``fs:sighting:<id>`` with the face's
vector, a small JPEG thumbnail and who it was (person id, or ``unknown`` and a visitor id). Two kinds
of index cover them:

- ``fs:idx:sightings``: TAG ``camera`` / ``person_id`` / ``visitor``, NUMERIC ``ts_ms``, no vector: who
  was seen where (forget, visitors, counts);
- one *time bucket* index per ``sightings_bucket_h`` hours, ``fs:idx:sightings:<start ms>:<length ms>``
  (an index FILTER on ``ts_ms``): the HNSW vectors. "This face in the last 24 h" searches the buckets
  the window touches, only the oldest with a time filter, and merges their nearest. Each graph stays
  small (at 1M sightings over 72 h, ~80k each at 6 h), where HNSW is fast and exact, instead of one
  1M graph whose filtered searches had a p99 of 140 ms on 2 cores.

Every sighting key is written with an expiry (``sightings_retention_h``): old sightings disappear,
and leave the indexes, without a sweeper; a bucket's index is dropped once its bucket is older than
the retention. A track keeps at most ``sightings_per_track`` of its views, the best by :func:`view_score`.

Everything here goes through a ``call(*args)`` command function, like :mod:`facestream.models.store.knn`: the worker
and the in-server gear write sightings with the same code (kept valid Python 3.7).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable, List, Optional, Sequence, Tuple

import numpy as np

from facestream.keys import Keys
from facestream.models.store.knn import create_vector_index, knn_command, no_index
from facestream.records import Sighting
from facestream.replies import as_dict, text
from facestream.scripts import run as run_script

Call = Callable[..., Any]
#: Fields a search returns (not the vector or the thumbnail: fetch those for the sightings shown).
LISTED = ("camera", "ts_ms", "person_id", "visitor", "track_id", "reason", "distance", "quality")

# KEYS: the new sighting, the sighting it replaces (or the new one again). ARGV: ttl ms, then field/value pairs.
WRITE_LUA = """
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
redis.call('PEXPIRE', KEYS[1], ARGV[1])
if KEYS[2] ~= KEYS[1] then redis.call('DEL', KEYS[2]) end
return 1
"""


def tag(value: str) -> str:
    """``value`` escaped for a RediSearch TAG query (ids may hold ``-``)."""
    return re.sub(r"([^A-Za-z0-9_])", r"\\\1", value)


def ensure_index(call: Call, index: str, prefix: str, schema: Sequence[str], dim: int, m: int, ef: int,
                 where: Optional[str] = None) -> None:
    """Create an HNSW index over hashes under ``prefix`` (``schema``: the other fields; ``where``: an index
    FILTER) unless it exists."""
    try:
        call("FT.INFO", index)
        return
    except Exception as e:  # redis-py ResponseError or RedisGears' exception: only "no such index" is expected
        if not no_index(e):
            raise
    create_vector_index(call, index, prefix, schema, dim, m, ef, where=where)


LABELS = ["camera", "TAG", "CASESENSITIVE", "person_id", "TAG", "CASESENSITIVE", "visitor", "TAG", "CASESENSITIVE",
          "ts_ms", "NUMERIC", "SORTABLE"]
BUCKET_MS = 6 * 3_600_000


class SightingIndexes:
    """The indexes sightings are written into: the label index, and the time buckets' vector indexes
    (each made when its first sighting comes, each dropped once older than ``ttl_ms``)."""

    def __init__(self, call: Call, keys: Keys, dim: int = 128, bucket_ms: int = BUCKET_MS, ttl_ms: int = 0,
                 m: int = 16, ef: int = 200):
        self.call, self.keys, self.dim, self.bucket_ms, self.ttl_ms, self.m, self.ef = \
            call, keys, dim, int(bucket_ms), int(ttl_ms), m, ef
        self._made = set()  # type: set

    @classmethod
    def of(cls, call: Call, keys: Keys, s: Any, dim: int) -> "SightingIndexes":
        """The indexes as the settings ``s`` shape them (buckets, retention, HNSW degree and build list)."""
        return cls(call, keys, dim, int(s.sightings_bucket_h * 3_600_000), int(s.sightings_retention_h * 3_600_000),
                   s.sightings_hnsw_m, s.hnsw_ef_construction)

    def write(self, sighting: Sighting, ttl_ms: int, replaces: Optional[str] = None) -> None:
        """:func:`write` after making sure the sighting's indexes exist."""
        self.ensure(sighting.ts_ms)
        write(self.call, self.keys, sighting, ttl_ms, replaces)

    def ensure(self, ts_ms: int) -> None:
        """The label index and the vector index of ``ts_ms``'s bucket exist (checked once per process)."""
        start = int(ts_ms) // self.bucket_ms * self.bucket_ms
        if start in self._made:
            return
        if not self._made:
            ensure_label_index(self.call, self.keys)
        name = "%s:%d:%d" % (self.keys.sightings_index, start, self.bucket_ms)
        ensure_index(self.call, name, self.keys.sighting_prefix, LABELS, self.dim, self.m, self.ef,
                     "@ts_ms>=%d && @ts_ms<%d" % (start, start + self.bucket_ms))
        self._made.add(start)
        if self.ttl_ms:
            for old, length, index in buckets(self.call, self.keys):
                if old + length < start - self.ttl_ms:  # every sighting in it has expired
                    self.call("FT.DROPINDEX", index)


def ensure_label_index(call: Call, keys: Keys) -> None:
    """The index of who was seen where and when (no vectors)."""
    try:
        call("FT.INFO", keys.sightings_index)
    except Exception as e:  # redis-py ResponseError or RedisGears' exception: only "no such index" is expected
        if not no_index(e):
            raise
        try:
            call("FT.CREATE", keys.sightings_index, "ON", "HASH", "PREFIX", "1", keys.sighting_prefix, "SCHEMA", *LABELS)
        except Exception as e:
            if "already exists" not in str(e).lower():
                raise


def buckets(call: Call, keys: Keys) -> List[Tuple[int, int, str]]:
    """(start ms, length ms, index name) of every time bucket's vector index, oldest first."""
    head = keys.sightings_index + ":"
    out = []
    for raw in call("FT._LIST") or []:
        name = text(raw)
        parts = name[len(head):].split(":")
        if name.startswith(head) and len(parts) == 2 and all(p.isdigit() for p in parts):
            out.append((int(parts[0]), int(parts[1]), name))
    return sorted(out)


def view_score(size: float, sharpness: float, yaw: float) -> float:
    """How good a view is for finding and naming the face later, 0..1: big, sharp and frontal.

    Size counts up to 112 px (dlib's chip is 150 px), sharpness up to 60 (variance of the Laplacian of
    the chip; the blurriest LFW probes read 6), yaw down to zero at 0.6 (nearly profile).
    """
    return min(size / 112.0, 1.0) * min(sharpness / 60.0, 1.0) * max(0.0, 1.0 - abs(yaw) / 0.6)


def write(call: Call, keys: Keys, sighting: Sighting, ttl_ms: int, replaces: Optional[str] = None) -> None:
    """Store one sighting with its expiry, and drop the one it replaces, atomically."""
    store(call, keys.sighting(sighting.sighting_id), ttl_ms, sighting.to_fields(),
          keys.sighting(replaces) if replaces else None)


def store(call: Call, key: str, ttl_ms: int, fields: dict, replaces: Optional[str] = None) -> None:
    """HSET ``fields`` and set the key's expiry in one step (never a key without its expiry); DEL ``replaces``."""
    flat = [x for kv in fields.items() for x in kv]
    run_script(call, WRITE_LUA, [key, replaces or key], [int(ttl_ms), *flat])


@dataclass
class Hit:
    """One sighting a search found, and how far it is from the query face."""

    sighting: Sighting
    distance: float


def search(call: Call, keys: Keys, vector: np.ndarray, k: int, ef: int, since_ms: Optional[int] = None,
           camera: Optional[str] = None) -> List[Hit]:
    """The ``k`` sightings nearest ``vector`` (squared L2), optionally since a time and on one camera: the
    ``k`` nearest of each time bucket the window touches, merged."""
    hits = []  # type: List[Hit]
    for start, length, index in buckets(call, keys):
        if since_ms is not None and start + length <= since_ms:
            continue
        filters = []
        if since_ms is not None and start < since_ms:  # only the oldest bucket straddles the window's start
            filters.append(f"@ts_ms:[{int(since_ms)} +inf]")
        if camera:
            filters.append(f"@camera:{{{tag(camera)}}}")
        where = "(" + " ".join(filters) + ")" if filters else "*"
        try:
            reply = call(*knn_command(index, vector, k, max(ef, k), where, LISTED))
        except Exception as e:
            if no_index(e):
                continue  # dropped meanwhile (expired)
            raise
        for i in range(1, len(reply), 2):
            fields = as_dict(reply[i + 1])
            sid = text(reply[i])[len(keys.sighting_prefix):]
            hits.append(Hit(Sighting.from_fields(sid, fields), float(text(fields["dist"]))))
    return sorted(hits, key=lambda h: h.distance)[:k]


def labelled(call: Call, keys: Keys, label: str, value: str, page: int = 10_000) -> List[str]:
    """Ids of every sighting whose ``label`` (``person_id`` / ``visitor`` / ``camera``) is ``value``."""
    ids: List[str] = []
    while True:
        try:
            reply = call("FT.SEARCH", keys.sightings_index, f"@{label}:{{{tag(value)}}}", "NOCONTENT",
                         "LIMIT", str(len(ids)), str(page), "DIALECT", "2", "TIMEOUT", "0")
        except Exception as e:
            if no_index(e):
                return ids
            raise
        batch = [text(k)[len(keys.sighting_prefix):] for k in reply[1:]]
        ids.extend(batch)
        if len(batch) < page:
            return ids


def load(call: Call, keys: Keys, sighting_id: str) -> Optional[Sighting]:
    """One sighting, vector and thumbnail included (None: expired or erased)."""
    raw = call("HGETALL", keys.sighting(sighting_id))
    fields = as_dict(raw)
    return Sighting.from_fields(sighting_id, fields) if fields else None


def vector_of(s: Sighting) -> np.ndarray:
    return np.frombuffer(s.vector, dtype="<f4").astype(np.float32)
