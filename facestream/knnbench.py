"""``facestream bench --knn``: the gallery's KNN at 10k–1M faces, with the index settings the pipeline uses.

Vectors are clustered like face embeddings, not uniform on the sphere (HNSW's recall on uniform
random 128-d data is misleadingly low): people sit ≈ 0.9 apart (squared L2, like dlib's different
people), each with ``per_person`` faces ≈ 0.06 from their centre (like photos of one person). Queries
are fresh faces of enrolled people. recall@1 is the share of queries whose first hit has the exact
nearest distance (numpy brute force over the same vectors).
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
    insert_per_s: float
    p50_ms: float
    p99_ms: float
    recall_at_1: float
    memory_mb: float
    queries: int

    def line(self) -> str:
        return (f"KNN {self.size:>9,} faces: insert {self.insert_per_s:,.0f}/s, query p50 {self.p50_ms:.2f} ms "
                f"p99 {self.p99_ms:.2f} ms, recall@1 {self.recall_at_1:.4f} ({self.queries} queries), "
                f"+{self.memory_mb:.0f} MB in Redis")


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


def knn_bench(client, settings: Settings, size: int, queries: int = 1000,
              say: Callable[[str], None] = print) -> KnnFigures:
    """Fill a scratch index with ``size`` clustered faces, then time ``queries`` KNN searches."""
    from models.gallery import Gallery, search_with

    s = settings.model_copy(update={"key_prefix": settings.key_prefix + "_knn"})
    gallery = Gallery(client, s)
    gallery.clear()
    try:
        vecs, centres = clustered(size)
        mem0 = int(client.info("memory")["used_memory"])
        gallery.ensure_index()
        t0 = time.perf_counter()
        batch = 2000
        for start in range(0, size, batch):
            pipe = client.pipeline(transaction=False)
            for i in range(start, min(size, start + batch)):
                pid = f"p{i // 5}"
                pipe.hset(gallery.keys.face(pid, i % 5), mapping={"person_id": pid, "vector": vecs[i].tobytes()})
            pipe.execute()
            if start // batch % 50 == 0:
                say(f"  inserted {min(size, start + batch):,}/{size:,}")
        _wait_indexed(client, gallery.keys.index, size)
        insert_s = time.perf_counter() - t0
        memory_mb = (int(client.info("memory")["used_memory"]) - mem0) / 2**20
        rng = np.random.default_rng(1)
        probes = _faces_near(centres[rng.integers(0, len(centres), queries)], rng)
        exact = _nearest(probes, vecs)
        lat, hits = [], 0
        for q, best in zip(probes, exact):
            t = time.perf_counter()
            nn = search_with(client.execute_command, gallery.keys.index, q, s.knn_k, s.hnsw_ef_runtime)
            lat.append((time.perf_counter() - t) * 1e3)
            hits += bool(nn) and abs(nn[0][1] - best) <= 1e-4
        return KnnFigures(size, size / insert_s, float(np.percentile(lat, 50)), float(np.percentile(lat, 99)),
                          hits / queries, memory_mb, queries)
    finally:
        gallery.clear()


def _nearest(a: np.ndarray, b: np.ndarray, chunk: int = 50_000) -> np.ndarray:
    """Exact squared L2 from each row of ``a`` to its nearest row of ``b`` (unit rows: 2 − 2·dot)."""
    best = np.full(len(a), np.inf, np.float32)
    for i in range(0, len(b), chunk):
        best = np.minimum(best, (2 - 2 * a @ b[i : i + chunk].T).min(axis=1))
    return best


def _wait_indexed(client, index: str, size: int, timeout_s: float = 3600) -> None:
    from facestream.records import text

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        raw = client.execute_command("FT.INFO", index)
        info = {text(raw[i]): raw[i + 1] for i in range(0, len(raw), 2)}
        if int(text(info["num_docs"])) >= size and text(info.get("indexing", "0")) in ("0", "0.0"):
            return
        time.sleep(0.2)
    raise FacestreamError(f"index {index} did not reach {size} documents in {timeout_s:.0f} s")
