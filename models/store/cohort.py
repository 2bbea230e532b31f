"""The cohort: faces of people who will never be enrolled, kept as vectors only, behind their own index.

The decision (:mod:`facestream.models.matcher`) names a face only if its best enrolled match is clearly closer
than its nearest cohort face: a probe that looks as much like some stranger as like X is not X.
Faces join the cohort from ``facestream cohort add DIR`` (photos of other people), from the
calibration's cohort half, and from feedback ("this was not X"). No image is kept, only its vector
and where it came from (``source``), so a source can be removed again.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Iterable, Sequence

import numpy as np
import redis

from facestream.commands import delete_keys, drop_index, ft_info
from facestream.keys import Keys
from facestream.models.store.gallery import FaceEntry, ensure_vector_index
from facestream.models.store.knn import COHORT, VECTOR_FIELD, nearest_stranger
from facestream.models.store.stamp import prefix_dim
from facestream.replies import text

if TYPE_CHECKING:
    from facestream.config import Settings


class Cohort:
    """The impostor bank in one Redis: ``fs:cohort:<n>`` hashes behind ``fs:idx:cohort``."""

    def __init__(self, client: redis.Redis, settings: Settings, dim: int | None = None):
        self.r, self.s = client, settings
        self.keys = Keys(settings.key_prefix)
        self.dim = dim or prefix_dim(client.execute_command, self.keys)

    def add(self, faces: Sequence[FaceEntry], not_of: str = "") -> int:
        """Store ``faces`` (``not_of``: the person feedback said they are not). Returns faces written."""
        if not faces:
            return 0
        for f in faces:  # before anything is written or numbered
            if f.vector.shape != (self.dim,):
                raise ValueError(f"vector of {f.source} has shape {f.vector.shape}, expected ({self.dim},)")
        ensure_vector_index(self.r, self.s, self.keys.cohort_index, self.keys.cohort_prefix, self.dim)
        first = self.r.incrby(self.keys.cohort_counter, len(faces)) - len(faces)
        now = int(time.time() * 1000)
        with self.r.pipeline(transaction=True) as p:
            for i, f in enumerate(faces):
                p.hset(self.keys.cohort_face(first + i + 1), mapping={
                    "person_id": COHORT, VECTOR_FIELD: np.asarray(f.vector, dtype="<f4").tobytes(),
                    "source": f.source, "not_of": not_of, "created_ms": now,
                })  # fmt: skip
            p.execute()
        return len(faces)

    def nearest(self, vector: np.ndarray) -> float | None:
        """Squared L2 from ``vector`` to the nearest cohort face (None: the cohort is empty)."""
        return nearest_stranger(self.r.execute_command, self.keys.cohort_index, vector, self.s.hnsw_ef_runtime)

    def size(self) -> int:
        info = ft_info(self.r, self.keys.cohort_index)
        return int(text(info["num_docs"])) if info else 0

    def sources(self) -> Iterable[tuple[str, str]]:
        """(key, source) of every cohort face."""
        keys = list(self.r.scan_iter(match=self.keys.cohort_prefix + "*", count=1000))
        with self.r.pipeline(transaction=False) as p:  # one round trip, not one per face
            for key in keys:
                p.hget(key, "source")
            sources = p.execute()
        for key, source in zip(keys, sources):
            yield text(key), text(source or b"")

    def remove(self, source_prefix: str) -> int:
        """Remove the faces whose source starts with ``source_prefix``; returns how many."""
        doomed = [k for k, src in self.sources() if src.startswith(source_prefix)]
        with self.r.pipeline(transaction=False) as p:
            delete_keys(p, doomed)
            p.execute()
        return len(doomed)

    def clear(self) -> None:
        """Drop the cohort index and every cohort face (scratch cohorts)."""
        drop_index(self.r, self.keys.cohort_index, self.keys.cohort_prefix + "*")
        self.r.delete(self.keys.cohort_counter)

