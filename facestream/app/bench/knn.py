"""``facestream bench --knn``: the gallery's KNN at 10k–1M faces, with the index settings the pipeline uses.

Vectors are clustered like face embeddings, not uniform on the sphere (HNSW's recall on uniform
random 128-d data is misleadingly low): people sit ≈ 0.9 apart (squared L2, like dlib's different
people), each with ``per_person`` faces ≈ 0.06 from their centre (like photos of one person). Queries
are fresh faces of enrolled people. recall@1 is the share of queries whose first hit has the exact
nearest distance (numpy brute force over the same vectors); person recall@1, the share whose first
hit is a face of the exact nearest face's person (what naming depends on). EF_RUNTIME is a query
parameter, so one index serves a sweep of it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import numpy as np

from facestream.config import Settings
from facestream.errors import FacestreamError

DIM = 128


@dataclass
class KnnFigures:
    size: int
    ef: int
    insert_per_s: float
    p50_ms: float
    p99_ms: float
    recall_at_1: float
    person_recall_at_1: float
    memory_mb: float
    queries: int

    def line(self) -> str:
        return (f"KNN {self.size:>9,} faces, EF_RUNTIME {self.ef}: insert {self.insert_per_s:,.0f}/s, query p50 "
                f"{self.p50_ms:.2f} ms p99 {self.p99_ms:.2f} ms, recall@1 {self.recall_at_1:.4f}, person recall@1 "
                f"{self.person_recall_at_1:.4f} ({self.queries} queries), +{self.memory_mb:.0f} MB in Redis")


def clustered(n: int, per_person: int = 5, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` unit vectors in clusters of ``per_person``; returns (vectors, the cluster centres)."""
    rng = np.random.default_rng(seed)
    people = -(-n // per_person)
    mu = _unit(rng.standard_normal(DIM))
    centres = _unit(mu + 0.9 * rng.standard_normal((people, DIM)) / np.sqrt(DIM))
    faces = np.repeat(centres, per_person, axis=0)[:n]
    return _faces_near(faces, rng), centres


def _faces_near(centres: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return _unit(centres + 0.25 * rng.standard_normal(centres.shape) / np.sqrt(DIM)).astype(np.float32)


def _unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def knn_bench(client, settings: Settings, size: int, queries: int = 1000, efs: tuple[int, ...] = (),
              say: Callable[[str], None] = print) -> list[KnnFigures]:
    """Fill a scratch index with ``size`` clustered faces, then time ``queries`` KNN searches per EF_RUNTIME
    in ``efs`` (default: the pipeline's ``hnsw_ef_runtime``)."""
    from facestream.models.store.gallery import Gallery

    s = settings.model_copy(update={"key_prefix": settings.key_prefix + "_knn"})
    gallery = Gallery(client, s)
    gallery.clear()
    per_person = 5
    try:
        vecs, centres = clustered(size, per_person)
        mem0 = int(client.info("memory")["used_memory"])
        gallery.ensure_index()
        t0 = time.perf_counter()
        batch = 2000
        for start in range(0, size, batch):
            pipe = client.pipeline(transaction=False)
            for i in range(start, min(size, start + batch)):
                pid = f"p{i // per_person}"
                pipe.hset(gallery.keys.face(pid, i % per_person), mapping={"person_id": pid, "vector": vecs[i].tobytes()})
            pipe.execute()
            if start // batch % 50 == 0:
                say(f"  inserted {min(size, start + batch):,}/{size:,}")
        _wait_indexed(client, gallery.keys.index, size)
        insert_s = time.perf_counter() - t0
        memory_mb = (int(client.info("memory")["used_memory"]) - mem0) / 2**20
        settle(client, say)
        rng = np.random.default_rng(1)
        probes = _faces_near(centres[rng.integers(0, len(centres), queries)], rng)
        exact_d, exact_i = _nearest(probes, vecs)
        people = [f"p{i // per_person}" for i in exact_i]
        return [_queries(client, gallery.keys.index, probes, exact_d, people, s.knn_k, ef, size, size / insert_s,
                         memory_mb) for ef in efs or (s.hnsw_ef_runtime,)]
    finally:
        gallery.clear()


def settle(client, say: Callable[[str], None], timeout_s: float = 900) -> None:
    """Until the server has no snapshot or AOF rewrite running: their fork and child would be timed with
    the searches, while in steady state a rewrite comes only when the AOF has doubled."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        p = client.info("persistence")
        if not (p.get("aof_rewrite_in_progress") or p.get("aof_rewrite_scheduled") or p.get("rdb_bgsave_in_progress")):
            say(f"  persistence idle; the last fork took {int(client.info('stats')['latest_fork_usec']) / 1000:.0f} ms")
            return
        time.sleep(1.0)


def _queries(client, index: str, probes: np.ndarray, exact_d: np.ndarray, people: list[str], k: int, ef: int,
             size: int, insert_per_s: float, memory_mb: float) -> KnnFigures:
    from facestream.models.store.knn import search_with

    lat, hits, person_hits = [], 0, 0
    for q, best, person in zip(probes, exact_d, people):
        t = time.perf_counter()
        nn = search_with(client.execute_command, index, q, k, ef)
        lat.append((time.perf_counter() - t) * 1e3)
        hits += bool(nn) and abs(nn[0][1] - best) <= 1e-4
        person_hits += bool(nn) and nn[0][0] == person
    n = len(probes)
    return KnnFigures(size, ef, insert_per_s, float(np.percentile(lat, 50)), float(np.percentile(lat, 99)),
                      hits / n, person_hits / n, memory_mb, n)


def _nearest(a: np.ndarray, b: np.ndarray, chunk: int = 50_000) -> tuple[np.ndarray, np.ndarray]:
    """Exact squared L2 from each row of ``a`` to its nearest row of ``b`` (unit rows: 2 − 2·dot), and that row."""
    best = np.full(len(a), np.inf, np.float32)
    where = np.zeros(len(a), np.int64)
    for i in range(0, len(b), chunk):
        d = 2 - 2 * a @ b[i : i + chunk].T
        j = d.argmin(axis=1)
        dj = d[np.arange(len(a)), j]
        closer = dj < best
        best[closer], where[closer] = dj[closer], j[closer] + i
    return best, where


def _wait_indexed(client, index: str, size: int, timeout_s: float = 3600) -> None:
    from facestream.commands import ft_info
    from facestream.replies import text

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        info = ft_info(client, index) or {"num_docs": 0}
        if int(text(info["num_docs"])) >= size and text(info.get("indexing", "0")) in ("0", "0.0"):
            return
        time.sleep(0.2)
    raise FacestreamError(f"index {index} did not reach {size} documents in {timeout_s:.0f} s")
