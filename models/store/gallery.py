"""The gallery of enrolled people in Redis: person hashes, face-vector hashes and their RediSearch index.

One person (id, display name, free metadata) has many faces; each face is a hash
``fs:face:<person_id>:<n>`` holding a float32 vector, indexed by an HNSW index with the person id
as a TAG. RediSearch's ``L2`` metric is the *squared* Euclidean distance; thresholds are in
those units.

The KNN query itself lives in :mod:`facestream.models.store.knn` (shared with the in-server gear, which has no redis-py).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np
import redis

from facestream.commands import delete_keys, drop_index, ft_info, scan_ids
from facestream.errors import GalleryError
from facestream.keys import VISITOR_RE, Keys, check_id
from facestream.models.store.knn import METRIC, PERSON_SCHEMA, VECTOR_FIELD, create_vector_index, search_with
from facestream.models.store.stamp import ModelStamp, claim, prefix_dim
from facestream.models.store.strangers import SiteStrangers
from facestream.records import UNKNOWN
from facestream.replies import as_dict, text

if TYPE_CHECKING:
    from facestream.config import Settings
    from facestream.models.types import Quality


@dataclass
class Person:
    person_id: str
    name: str
    meta: dict[str, Any] = field(default_factory=dict)
    faces: int = 0
    created_ms: int = 0


@dataclass
class FaceEntry:
    """One face to store: its vector and where it came from."""

    vector: np.ndarray
    source: str
    score: float = 0.0
    quality: Quality | None = None  # what the gates saw (stored with the face, shown on the person's page)
    thumb: bytes = b""  # a small JPEG of the face, so that a user sees what was enrolled (erased with the face)


@dataclass
class EnrolledFace:
    """One stored face of a person, as listed (no vector, no thumbnail)."""

    person_id: str
    face: int  # its number: ``fs:face:<person_id>:<face>``
    source: str
    score: float
    created_ms: int
    quality: dict[str, float] = field(default_factory=dict)
    thumb: bool = False  # a thumbnail was kept (faces enrolled before thumbnails were kept have none)

    def to_json(self) -> dict[str, Any]:
        return {"face": self.face, "source": self.source, "score": self.score, "created_ms": self.created_ms,
                "quality": self.quality, "thumb": self.thumb}


class Gallery:
    """Enrolled people and their face vectors in one Redis, behind one index."""

    def __init__(self, client: redis.Redis, settings: Settings, dim: int | None = None):
        self.r = client
        self.s = settings
        self.keys = Keys(settings.key_prefix)
        self._dim = dim
        self._indexed = False  # ensure_index ran (FT.INFO is not free: once per Gallery, not once per person)

    @property
    def dim(self) -> int:
        """The vectors' size: as given, else the prefix's model stamp's (read once)."""
        if self._dim is None:
            self._dim = prefix_dim(self.r.execute_command, self.keys)
        return self._dim

    def use_model(self, stamp: ModelStamp) -> None:
        """Enroll with ``stamp``'s model: stamp the prefix, or GalleryError if it holds another model's vectors."""
        claim(self.r.execute_command, self.keys, stamp)
        self._dim = stamp.dim

    # --- index -------------------------------------------------------------------------------------
    def ensure_index(self) -> None:
        """Create the vector index if absent; refuse an existing one of another dimension or metric."""
        ensure_vector_index(self.r, self.s, self.keys.index, self.keys.face_prefix(), self.dim)
        self._indexed = True

    def clear(self) -> None:
        """Drop the index and every person and face under this key prefix (scratch galleries)."""
        drop_index(self.r, self.keys.index, self.keys.face_prefix() + "*", self.keys.person_prefix + "*",
                   self.keys.face_counter("*"))
        self._indexed = False

    # --- people ------------------------------------------------------------------------------------
    def add_person(self, person_id: str, name: str | None, faces: Sequence[FaceEntry],
                   meta: dict[str, Any] | None = None) -> int:
        """Add ``faces`` to a person (created if new), all in one transaction. Returns faces written. Strangers
        learned near these faces leave the cohort (:mod:`facestream.models.store.strangers`): they are someone now."""
        check_id("person", person_id)
        if person_id == UNKNOWN:
            raise GalleryError(f"{UNKNOWN!r} is reserved for faces that match nobody; pick another person id")
        if VISITOR_RE.match(person_id):
            raise GalleryError(f"{person_id!r} looks like a visitor id (v-NNNNNN); pick another person id")
        if not self._indexed:
            self.ensure_index()
        for f in faces:
            if f.vector.shape != (self.dim,):
                raise GalleryError(f"vector of {f.source} has shape {f.vector.shape}, expected ({self.dim},)")
        first = self.r.incrby(self.keys.face_counter(person_id), len(faces)) - len(faces) if faces else 0
        now = int(time.time() * 1000)
        with self.r.pipeline(transaction=True) as p:
            pkey = self.keys.person(person_id)
            p.hsetnx(pkey, "created_ms", now)
            p.hsetnx(pkey, "name", display_name(name if name is not None else person_id))  # a later `people rename` is not undone by re-enrolling
            p.hset(pkey, "updated_ms", now)
            if meta is not None:
                p.hset(pkey, "meta", json.dumps(meta))
            for i, f in enumerate(faces):
                p.hset(self.keys.face(person_id, first + i + 1), mapping={
                    "person_id": person_id,
                    VECTOR_FIELD: np.asarray(f.vector, dtype="<f4").tobytes(),
                    "source": f.source,
                    "score": f"{f.score:.3f}",
                    "created_ms": now,
                    "quality": json.dumps(f.quality.to_json() if f.quality is not None else {}),
                    "thumb": f.thumb,
                })  # fmt: skip
            p.execute()
        SiteStrangers(self.r.execute_command, self.keys, self.s).leave_near([f.vector for f in faces])
        return len(faces)

    def people(self) -> list[Person]:
        """Every enrolled person with their face count, sorted by id."""
        ids, _ = scan_ids(self.r, self.keys.person_prefix, "hash")  # keys written by others are not people
        return [self.person(pid) for pid in ids]

    def person(self, person_id: str) -> Person:
        h = self.r.hgetall(self.keys.person(person_id))
        if not h:
            raise _no_such_person(person_id)
        h = {text(k): text(v) for k, v in h.items()}
        return Person(person_id, h.get("name", person_id), json.loads(h.get("meta", "{}")),
                      self.count_faces(person_id), int(h.get("created_ms", 0)))

    def count_faces(self, person_id: str) -> int:
        with self.r.pipeline(transaction=False) as p:
            for n in self._numbers(person_id):
                p.exists(self.keys.face(person_id, n))
            return sum(p.execute())

    def _numbers(self, person_id: str) -> range:
        """Every number a face of the person was given (faces are numbered by a counter; some may be deleted):
        one round trip per person, not a scan of the whole keyspace."""
        return range(1, int(self.r.get(self.keys.face_counter(person_id)) or 0) + 1)

    def _require(self, person_id: str) -> None:
        if not self.r.exists(self.keys.person(person_id)):
            raise _no_such_person(person_id)

    def faces(self, person_id: str) -> list[EnrolledFace]:
        """A person's stored faces, in the order they were enrolled; GalleryError if there is no such person."""
        self._require(person_id)
        numbers = self._numbers(person_id)
        with self.r.pipeline(transaction=False) as p:
            for n in numbers:
                p.hmget(self.keys.face(person_id, n), "person_id", "source", "score", "created_ms", "quality")
                p.hstrlen(self.keys.face(person_id, n), "thumb")
            got = p.execute()
        return [EnrolledFace(person_id, n, text(source or b""), float(score or 0), int(created or 0),
                             json.loads(quality or b"{}"), bool(thumb))
                for n, (pid, source, score, created, quality), thumb in zip(numbers, got[::2], got[1::2])
                if pid is not None]

    def face_thumb(self, person_id: str, face: int) -> bytes:
        """The JPEG kept of one enrolled face (empty: none kept, or no such face)."""
        return self.r.hget(self.keys.face(person_id, face), "thumb") or b""

    def face_vector(self, person_id: str, face: int) -> np.ndarray:
        raw = self.r.hget(self.keys.face(person_id, face), VECTOR_FIELD)
        if raw is None:
            raise _no_such_face(person_id, face)
        return np.frombuffer(raw, dtype="<f4").astype(np.float32)

    def remove_face(self, person_id: str, face: int) -> str:
        """Delete one enrolled face (its vector leaves the index with it) and return where it came from;
        GalleryError if there is no such face."""
        self._require(person_id)
        with self.r.pipeline(transaction=True) as p:
            p.hget(self.keys.face(person_id, face), "source")
            p.delete(self.keys.face(person_id, face))
            source, deleted = p.execute()
        if not deleted:
            raise _no_such_face(person_id, face)
        return text(source or b"")

    def rename(self, person_id: str, name: str) -> None:
        name = display_name(name)
        self._require(person_id)
        self.r.hset(self.keys.person(person_id), "name", name)

    def delete(self, person_id: str) -> int:
        """Remove a person and every one of their face vectors; returns the number of faces removed."""
        self._require(person_id)
        faces = list(self.r.scan_iter(match=self.keys.face_prefix(person_id) + "*", count=1000))
        with self.r.pipeline(transaction=True) as p:
            delete_keys(p, faces)
            p.delete(self.keys.person(person_id), self.keys.face_counter(person_id))
            p.execute()
        return len(faces)

    # --- search ------------------------------------------------------------------------------------
    def search(self, vector: np.ndarray, k: int | None = None) -> list[tuple[str, float]]:
        """The ``k`` nearest enrolled faces as (person_id, squared L2), nearest first."""
        return search_with(self.r.execute_command, self.keys.index, vector, k or self.s.knn_k, self.s.hnsw_ef_runtime)

    def size(self) -> int:
        """Number of indexed face vectors."""
        info = ft_info(self.r, self.keys.index)
        return int(text(info["num_docs"])) if info else 0


def ensure_vector_index(r: redis.Redis, s: Settings, index: str, prefix: str, dim: int) -> None:
    """Create the HNSW index ``index`` over hashes under ``prefix`` (a ``person_id`` TAG and the vector) if
    absent; refuse an existing one of another dimension or metric."""
    info = _vector_field(r, index)
    if info is None:
        try:
            create_vector_index(r.execute_command, index, prefix, PERSON_SCHEMA, dim,
                                s.hnsw_m, s.hnsw_ef_construction, s.hnsw_ef_runtime)
        except redis.ResponseError as e:
            raise GalleryError(f"cannot create index {index}: {e}") from None
        return
    have_dim, metric = info
    if have_dim != dim or metric.upper() != METRIC:
        raise GalleryError(
            f"index {index} holds {have_dim}-d {metric} vectors but the embedder makes {dim}-d "
            f"{METRIC} vectors; use another key_prefix or drop it (FT.DROPINDEX {index} DD)"
        )


def _vector_field(r: redis.Redis, index: str) -> tuple[int, str] | None:
    """(dimension, metric) of ``index``'s vector field; None if there is no such index."""
    try:
        info = ft_info(r, index)
    except redis.ResponseError as e:
        if "unknown command" in str(e).lower():
            raise GalleryError("this Redis has no search module (FT.*); use Redis 8 or Redis Stack") from None
        raise
    if info is None:
        return None
    for attr in info.get("attributes", []):
        a = as_dict(attr[: len(attr) - len(attr) % 2], lower=True)
        if text(a.get("type", "")).upper() == "VECTOR":
            return int(text(a["dim"])), text(a["distance_metric"])
    raise GalleryError(f"index {index} exists but has no vector field")


def display_name(name: str) -> str:
    """A person's display name, stripped; GalleryError if it is empty, too long or has control characters."""
    name = name.strip()
    if not name or len(name) > 200 or any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise GalleryError(f"display name {name!r} must be 1-200 printable characters")
    return name


def _no_such_face(person_id: str, face: int) -> GalleryError:
    return GalleryError(f"{person_id} has no face {face} (see: facestream people faces {person_id})")


def _no_such_person(person_id: str) -> GalleryError:
    return GalleryError(f"no person with id {person_id!r} (see: facestream people list)")
