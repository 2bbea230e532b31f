"""Visitors: unknown faces grouped online, so that the same stranger keeps one id (``v-000123``).

Each visitor is a hash ``fs:visitor:<id>`` holding the sum of its looks' vectors, their mean as a unit
*centroid* (indexed by ``fs:idx:visitors``) and up to :data:`EXEMPLARS` distinct looks. An unknown
track's face joins the nearest visitor if both its centroid and, on average, its exemplars are within
``visitor_distance`` (squared L2), else starts a new one; every later look of the track adds to its
visitor. Comparing with the whole visitor, not with its single nearest face, keeps different people
from being chained together, and the exemplar average keeps a centroid that drifted between two
people from swallowing a third (measured, docs/sightings.md: with the centroid alone,
pairwise precision 0.87 at recall 0.86; with both tests 0.95 at 0.82).

Visitors expire ``sightings_retention_h`` after their last look, like their sightings. Ids come from
one counter, so they stay unique across cameras, workers and restarts. Two workers meeting the same
new stranger at the same moment can make two visitors: ``facestream visitors merge`` joins them.

Called through ``call(*args)`` like :mod:`facestream.models.store.sightings` (the in-server gear uses it too).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, List, Optional, Tuple

import numpy as np

from facestream.keys import Keys
from facestream.models.store.knn import VECTOR_FIELD, knn_command
from facestream.models.store.sightings import ensure_index, labelled, store
from facestream.replies import as_dict, text

Call = Callable[..., Any]
#: Fields of a visitor hash besides its vectors.
INFO = ("first_ms", "last_ms", "looks", "cameras", "near")
#: Distinct looks kept per visitor for the average-distance test; looks closer than DISTINCT to one kept count as it.
EXEMPLARS = 8
DISTINCT = 0.02


@dataclass
class Visitor:
    """One stranger the cameras keep seeing."""

    visitor_id: str
    first_ms: int = 0
    last_ms: int = 0
    looks: int = 0  # embeddings added to the centroid
    cameras: List[str] = field(default_factory=list)
    near: int = 0  # of its looks, those that came within match_threshold of an enrolled face (maybe that person)


def missing(vid: str) -> str:
    """What to say of a visitor id that names no visitor (any more)."""
    return f"no visitor {vid} (expired, named or forgotten? see: facestream visitors list)"


def visitor_id(n: int) -> str:
    return "v-%06d" % n


class Visitors:
    """Assigns unknown faces to visitors in one Redis (``fs:visitor:*`` behind ``fs:idx:visitors``)."""

    def __init__(self, call: Call, keys: Keys, distance: float, retention_ms: int, ef: int = 200, dim: int = 128,
                 m: int = 16, ef_construction: int = 200):
        self.call, self.keys, self.distance, self.retention_ms, self.ef, self.dim = (
            call, keys, distance, retention_ms, ef, dim)
        self.m, self.ef_construction = m, ef_construction
        self._ready = False

    @classmethod
    def of(cls, call: Call, keys: Keys, s: Any, dim: int) -> "Visitors":
        """Visitors as the settings ``s`` shape them (distance, retention, HNSW degree and lists)."""
        return cls(call, keys, s.visitor_distance, int(s.sightings_retention_h * 3_600_000), s.hnsw_ef_runtime, dim,
                   s.sightings_hnsw_m, s.hnsw_ef_construction)

    def ensure_index(self) -> None:
        if not self._ready:
            ensure_index(self.call, self.keys.visitors_index, self.keys.visitor_prefix,
                         ["last_ms", "NUMERIC", "SORTABLE"], self.dim, self.m, self.ef_construction)
            self._ready = True

    def new_id(self) -> str:
        """A visitor id no one has (one counter for every camera, worker and restart)."""
        return visitor_id(int(self.call("INCR", self.keys.visitor_counter)))

    def exists(self, vid: str) -> bool:
        """Whether visitor ``vid`` is still there (not expired, named or forgotten)."""
        return self.call("HEXISTS", self.keys.visitor(vid), "sum") in (1, True, b"1", "1")

    def add(self, vid: str, vector: np.ndarray, camera: str, ts_ms: int, near: bool = False) -> None:
        """One look for visitor ``vid``: joined to it, or its first if it is gone or new. ``near``: the look
        came within ``match_threshold`` of an enrolled face (counted: :class:`Visitor`'s ``near``)."""
        if not self.join(vid, vector, camera, ts_ms, near):
            self.ensure_index()
            total = np.asarray(vector, dtype=np.float32)
            self._store(Visitor(vid, ts_ms, ts_ms, 1, [camera], int(near)), total, total[None, :])

    def nearest(self, vector: np.ndarray, k: int = 1) -> List[tuple]:
        """(visitor id, squared L2 to its centroid), nearest first."""
        self.ensure_index()
        reply = self.call(*knn_command(self.keys.visitors_index, vector, k, max(self.ef, k), returns=()))
        return [(text(reply[i])[len(self.keys.visitor_prefix):], float(text(as_dict(reply[i + 1])["dist"])))
                for i in range(1, len(reply), 2)]

    def fitting(self, vector: np.ndarray, other_than: str = "") -> Optional[str]:
        """The nearest visitor (but ``other_than``) whose centroid and exemplars (on average) are within
        ``distance`` of ``vector``, if any."""
        for vid, dist in self.nearest(vector, 2):
            if vid == other_than:
                continue
            exemplars = self.call("HGET", self.keys.visitor(vid), "exemplars") if dist <= self.distance else None
            fits = exemplars is not None and _mean_distance(_rows(exemplars, self.dim), vector) <= self.distance
            return vid if fits else None
        return None

    def assign(self, vector: np.ndarray, camera: str, ts_ms: int) -> str:
        """The visitor this unknown face belongs to (:meth:`choose`), with this look added."""
        vid, _ = self.choose(vector)
        self.add(vid, vector, camera, ts_ms)
        return vid

    def choose(self, vector: np.ndarray) -> Tuple[str, bool]:
        """The visitor an unknown face belongs to, writing nothing but a new id: the one :meth:`fitting` finds,
        or a new one; and whether it is new."""
        vid = self.fitting(vector)
        return (vid, False) if vid is not None else (self.new_id(), True)

    def create(self, vector: np.ndarray, camera: str, ts_ms: int) -> str:
        vid = self.new_id()
        self.add(vid, vector, camera, ts_ms)
        return vid

    def join(self, vid: str, vector: np.ndarray, camera: str, ts_ms: int, near: bool = False) -> bool:
        """Add one look to a visitor's centroid; False if the visitor is gone (expired, named or forgotten)."""
        raw = self.call("HMGET", self.keys.visitor(vid), "sum", "exemplars", *INFO)
        if raw[0] is None:
            return False
        v = _visitor(vid, raw[2:])
        look = np.asarray(vector, dtype=np.float32)
        total = np.frombuffer(bytes(raw[0]), dtype="<f4") + look
        cameras = v.cameras if camera in v.cameras else v.cameras + [camera]
        self._store(Visitor(vid, min(v.first_ms, ts_ms), max(v.last_ms, ts_ms), v.looks + 1, cameras, v.near + near),
                    total, _with(_rows(raw[1], self.dim), look))
        return True

    def merge(self, into: str, other: str) -> int:
        """Fold visitor ``other`` into ``into`` (centroids, looks, cameras, and its sightings). Returns the
        sightings relabelled; ValueError if either is unknown."""
        a, b = (self.call("HMGET", self.keys.visitor(vid), "sum", "exemplars", *INFO) for vid in (into, other))
        for vid, raw in ((into, a), (other, b)):
            if raw[0] is None:
                raise ValueError(missing(vid))
        va, vb = _visitor(into, a[2:]), _visitor(other, b[2:])
        total = np.frombuffer(bytes(a[0]), dtype="<f4") + np.frombuffer(bytes(b[0]), dtype="<f4")
        exemplars = _rows(a[1], self.dim)
        for look in _rows(b[1], self.dim):
            exemplars = _with(exemplars, look)
        cameras = va.cameras + [c for c in vb.cameras if c not in va.cameras]
        self._store(Visitor(into, min(va.first_ms, vb.first_ms), max(va.last_ms, vb.last_ms), va.looks + vb.looks,
                            cameras, va.near + vb.near), total, exemplars)
        moved = labelled(self.call, self.keys, "visitor", other)
        for sid in moved:
            self.call("HSET", self.keys.sighting(sid), "visitor", into)
        self.call("DEL", self.keys.visitor(other))
        return len(moved)

    def get(self, vid: str) -> Optional[Visitor]:
        raw = self.call("HMGET", self.keys.visitor(vid), *INFO)
        return _visitor(vid, raw) if raw[0] is not None else None

    def recent(self, limit: int = 50, since_ms: int = 0) -> List[Visitor]:
        """The visitors seen most recently (last look since ``since_ms``), newest first."""
        self.ensure_index()
        reply = self.call("FT.SEARCH", self.keys.visitors_index, f"@last_ms:[{int(since_ms)} +inf]",
                          "SORTBY", "last_ms", "DESC", "RETURN", str(len(INFO)), *INFO,
                          "LIMIT", "0", str(limit), "DIALECT", "2", "TIMEOUT", "0")
        out = []
        for i in range(1, len(reply), 2):
            f = as_dict(reply[i + 1])
            out.append(_visitor(text(reply[i])[len(self.keys.visitor_prefix):], [f.get(n) for n in INFO]))
        return out

    def _store(self, v: Visitor, total: np.ndarray, exemplars: np.ndarray) -> None:
        centroid = total / max(float(np.linalg.norm(total)), 1e-12)
        store(self.call, self.keys.visitor(v.visitor_id), self.retention_ms, {
            VECTOR_FIELD: centroid.astype("<f4").tobytes(), "sum": total.astype("<f4").tobytes(),
            "exemplars": exemplars.astype("<f4").tobytes(), "looks": v.looks, "near": v.near,
            "first_ms": v.first_ms, "last_ms": v.last_ms, "cameras": ",".join(v.cameras)})


def _rows(raw: Any, dim: int) -> np.ndarray:
    """Stored exemplars (float32 rows of ``dim``) as an array; none stored: no rows."""
    return np.frombuffer(bytes(raw or b""), dtype="<f4").reshape(-1, dim).astype(np.float32)


def _mean_distance(rows: np.ndarray, vector: np.ndarray) -> float:
    return float(np.mean(np.sum((rows - vector) ** 2, axis=1))) if len(rows) else 0.0


def _with(rows: np.ndarray, look: np.ndarray) -> np.ndarray:
    """``rows`` with ``look`` added if there is room and it is distinct from every row kept."""
    if len(rows) >= EXEMPLARS or (len(rows) and float(np.min(np.sum((rows - look) ** 2, axis=1))) < DISTINCT):
        return rows
    return np.vstack([rows, look[None, :]])


def _visitor(vid: str, values: List[Any]) -> Visitor:
    first, last, looks, cameras, near = (text(v) if v is not None else "" for v in values)
    return Visitor(vid, int(first or 0), int(last or 0), int(looks or 0), [c for c in cameras.split(",") if c],
                   int(near or 0))

