"""``facestream bench --sightings N``: the sightings index at scale (insert rate, memory, filtered search).

N sightings are written through the step's own write (HSET + expiry in one script) under a scratch
prefix: face vectors clustered like :mod:`facestream.app.bench.knn` (``per_visitor`` looks of each
stranger), capture times spread over the last 72 h (the default retention), 8 cameras, and a
thumbnail of :data:`THUMB_BYTES` (what a 96 px face JPEG weighs). Then fresh looks of those strangers
search the last 24 h, as ``facestream search --since 24h`` does; recall@10 is the share of the exact
10 nearest sightings of that window (numpy over the same vectors) that the index returned.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import numpy as np
import redis

from facestream.app.bench.knn import _faces_near, _wait_indexed, clustered, settle
from facestream.config import Settings
from facestream.keys import Keys
from facestream.models.curation.library import drop_visitors
from facestream.models.store.sightings import SightingIndexes, buckets, search, store

THUMB_BYTES = 3_000
CAMERAS = 8
HOURS = 72


@dataclass
class SightingFigures:
    size: int
    insert_per_s: float
    bytes_per_sighting: float
    p50_ms: float
    p99_ms: float
    recall_at_10: float
    queries: int
    window_share: float  # sightings inside the 24 h filter

    def line(self) -> str:
        return (f"sightings {self.size:,}: insert {self.insert_per_s:,.0f}/s, {self.bytes_per_sighting / 1024:.1f} KB "
                f"each in Redis (thumbnail {THUMB_BYTES / 1024:.1f} KB), search --since 24h ({self.window_share:.0%} of "
                f"them) p50 {self.p50_ms:.1f} ms p99 {self.p99_ms:.1f} ms, recall@10 {self.recall_at_10:.3f} vs exact "
                f"({self.queries} queries)")


def sightings_bench(client: redis.Redis, settings: Settings, size: int, queries: int = 500, per_visitor: int = 20,
                    say: Callable[[str], None] = print) -> SightingFigures:
    keys = Keys(settings.key_prefix + "_sightbench")
    drop_visitors(client, keys, sightings=True)
    rng = np.random.default_rng(7)
    vecs, centres = clustered(size, per_visitor)
    now = int(time.time() * 1000)
    ts = now - rng.integers(0, HOURS * 3_600_000, size)
    thumb = rng.integers(0, 256, THUMB_BYTES, dtype=np.uint8).tobytes()
    try:
        mem0 = int(client.info("memory")["used_memory"])
        indexes = SightingIndexes(client.execute_command, keys, bucket_ms=int(settings.sightings_bucket_h * 3_600_000),
                                  m=settings.sightings_hnsw_m, ef=settings.hnsw_ef_construction)
        for t in range(int(ts.min()), int(ts.max()) + indexes.bucket_ms, indexes.bucket_ms):
            indexes.ensure(t)
        t0 = time.perf_counter()
        for start in range(0, size, 2000):
            with client.pipeline(transaction=False) as p:
                for i in range(start, min(size, start + 2000)):
                    store(p.execute_command, keys.sighting(f"b{i}"), HOURS * 3_600_000 + 3_600_000, {
                        "camera": f"cam{i % CAMERAS}", "ts_ms": int(ts[i]), "person_id": "unknown",
                        "visitor": f"v-{i // per_visitor:06d}", "vector": vecs[i].tobytes(), "thumb": thumb})
                p.execute()
            if start // 2000 % 50 == 0:
                say(f"  wrote {min(size, start + 2000):,}/{size:,} sightings")
        _wait_indexed(client, keys.sightings_index, size)
        for _, _, index in buckets(client.execute_command, keys):
            _wait_indexed(client, index, 0)
        insert_s = time.perf_counter() - t0
        per = (int(client.info("memory")["used_memory"]) - mem0) / size
        settle(client, say)
        return _searches(client, keys, vecs, ts, centres, now, queries, settings.hnsw_ef_runtime, size / insert_s, per)
    finally:
        drop_visitors(client, keys, sightings=True)


def _searches(client: redis.Redis, keys: Keys, vecs: np.ndarray, ts: np.ndarray, centres: np.ndarray, now: int,
              queries: int, ef: int, insert_per_s: float, per: float) -> SightingFigures:
    since = now - 24 * 3_600_000
    window = np.flatnonzero(ts >= since)
    rng = np.random.default_rng(8)
    probes = _faces_near(centres[rng.integers(0, len(centres), queries)], rng)
    inside = vecs[window]
    # The exact answers first: numpy's BLAS threads, busy on both cores between searches, would be timed
    # with the searches (they were: a p99 of 140-210 ms on 2 cores, ~2% of searches descheduled).
    exact = [{f"b{window[j]}" for j in np.argpartition(2 - 2 * inside @ q, 10)[:10]} for q in probes]
    del inside
    lat, recalls = [], []
    for q, best in zip(probes, exact):
        t = time.perf_counter()
        hits = search(client.execute_command, keys, q, 10, ef, since_ms=since)
        lat.append((time.perf_counter() - t) * 1e3)
        recalls.append(len(best & {h.sighting.sighting_id for h in hits}) / 10)
    return SightingFigures(len(vecs), insert_per_s, per, float(np.percentile(lat, 50)), float(np.percentile(lat, 99)),
                           float(np.mean(recalls)), queries, len(window) / len(vecs))
