"""How well visitors group strangers and how well search finds a face: measured with nobody enrolled.

Every photo of a labelled folder (gallery, probes, strangers, pair-only faces; ``manifest.csv`` says who
each one shows, and copies of one source image count once) is played as a stranger, one look each, in a
fixed shuffled order, through the live first-look embedding and the same :class:`facestream.models.store.visitors.Visitors`
the step uses, and stored as a sighting. Then:

- **pairwise precision / recall** of the visitor ids against the true identities (of all pairs of photos
  in one visitor, the share showing one person; of all pairs of photos of one person, the share in one
  visitor), for each ``visitor_distance`` tried;
- **search recall@10**: each probe photo searches the sightings (itself left out); the share of the other
  photos of its person found in the top 10 (of at most 10), averaged over probes whose person has any.
"""

from __future__ import annotations

import csv
import random
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import redis

from facestream.config import Settings
from facestream.errors import FacestreamError
from facestream.keys import Keys
from facestream.models.curation.enroll import Outcome, embed_files
from facestream.models.curation.library import drop_visitors
from facestream.models.evaluation.identify import identity_of
from facestream.models.matcher import Policy
from facestream.models.store.sightings import SightingIndexes, search
from facestream.models.store.visitors import Visitors
from facestream.records import Sighting

SEARCH_K = 10


@dataclass
class Played:
    """The photos played as strangers: who each shows, its vector, and whether it was a probe."""

    identity: list[str]
    vectors: np.ndarray
    probe: list[bool]
    skipped: int  # photos without a face fit to group (no face, too small, blurred, turned)


@dataclass
class Grouping:
    distance: float
    visitors: int
    precision: float
    recall: float

    def line(self, photos: int) -> str:
        return (f"visitor_distance {self.distance:.3f}: {self.visitors} visitors for {photos} photos, pairwise "
                f"precision {self.precision:.3f}, recall {self.recall:.3f}")


def photos_of(root: Path) -> list[tuple[Path, str, bool]]:
    """(path, identity, is a probe) of every labelled photo, one per source image."""
    manifest = root / "manifest.csv"
    if not manifest.is_file():
        raise FacestreamError(f"{manifest} is missing: visitors are measured against its identities")
    seen, out = set(), []
    for row in csv.DictReader(manifest.open()):
        path, source = root / row["path"], row.get("source_path") or row["path"]
        if source in seen or not path.is_file():
            continue
        seen.add(source)
        out.append((path, identity_of(row), row["split"] == "probe"))
    random.Random(0).shuffle(out)
    return out


def embed_strangers(root: Path, s: Settings, workers: int, progress: Callable[[Outcome], None] | None) -> Played:
    photos = photos_of(root)
    got = embed_files([p for p, _, _ in photos], s, workers, still=False, progress=progress)
    policy, ids, vecs, probe, skipped = Policy.of(s), [], [], [], 0
    for path, who, is_probe in photos:
        face = got[path]
        q = getattr(face, "quality", None)
        if isinstance(face, str) or q is None or policy.gate(q.size, q.sharpness, q.yaw):
            skipped += 1
            continue
        ids.append(who)
        vecs.append(face.vector)
        probe.append(is_probe)
    return Played(ids, np.asarray(vecs, np.float32), probe, skipped)


def pairwise(truth: list[str], groups: list[str]) -> tuple[float, float]:
    """Pairwise precision and recall of ``groups`` against ``truth`` (1.0 where there is no pair)."""
    def pairs(counts: Counter) -> int:
        return sum(n * (n - 1) // 2 for n in counts.values())

    both, predicted, actual = pairs(Counter(zip(truth, groups))), pairs(Counter(groups)), pairs(Counter(truth))
    return (both / predicted if predicted else 1.0), (both / actual if actual else 1.0)


def group(r: redis.Redis, s: Settings, played: Played, distance: float) -> Grouping:
    """Assign every played photo to a visitor at ``distance`` (a scratch prefix, emptied first)."""
    keys = Keys(s.key_prefix)
    drop_visitors(r, keys, sightings=False)
    visitors = Visitors(r.execute_command, keys, distance, 3_600_000, s.hnsw_ef_runtime, played.vectors.shape[1])
    ids = [visitors.assign(v, "eval", i) for i, v in enumerate(played.vectors)]
    precision, recall = pairwise(played.identity, ids)
    return Grouping(distance, len(set(ids)), precision, recall)


def search_recall(r: redis.Redis, s: Settings, played: Played) -> tuple[float, int]:
    """Store every photo as a sighting; mean recall@10 of the probes' searches, and how many probes counted."""
    keys = Keys(s.key_prefix)
    drop_visitors(r, keys, sightings=True)
    indexes = SightingIndexes(r.execute_command, keys, played.vectors.shape[1])
    for i, v in enumerate(played.vectors):
        indexes.write(Sighting(str(i), "eval", i, vector=v.astype("<f4").tobytes()), 3_600_000)
    by_identity = defaultdict(set)
    for i, who in enumerate(played.identity):
        by_identity[who].add(str(i))
    recalls = []
    for i, v in enumerate(played.vectors):
        relevant = by_identity[played.identity[i]] - {str(i)}
        if not played.probe[i] or not relevant:
            continue
        hits = [h.sighting.sighting_id for h in search(r.execute_command, keys, v, SEARCH_K + 1, s.hnsw_ef_runtime)]
        top = [h for h in hits if h != str(i)][:SEARCH_K]
        recalls.append(len(relevant & set(top)) / min(SEARCH_K, len(relevant)))
    return (float(np.mean(recalls)) if recalls else 0.0), len(recalls)


@dataclass
class VisitorReport:
    photos: int
    identities: int
    skipped: int
    groupings: list[Grouping]
    search_recall: float
    searches: int

    def lines(self) -> list[str]:
        head = (f"{self.photos} photos of {self.identities} people played as strangers, one look each "
                f"({self.skipped} without a face fit to group)")
        return [head] + [g.line(self.photos) for g in self.groupings] + [
            f"search recall@{SEARCH_K}: {self.search_recall:.3f} over {self.searches} probe photos"]


def evaluate(r: redis.Redis, s: Settings, root: Path, workers: int, distances: list[float],
             progress: Callable[[Outcome], None] | None = None) -> VisitorReport:
    """Group and search ``root``'s photos under a scratch key prefix (removed afterwards)."""
    scratch = s.replace(key_prefix=f"{s.key_prefix}_visitoreval")
    played = embed_strangers(root, scratch, workers, progress)
    if not len(played.identity):
        raise FacestreamError(f"no face fit to group under {root}")
    try:
        groupings = [group(r, scratch, played, d) for d in distances]
        recall, searches = search_recall(r, scratch, played)
    finally:
        drop_visitors(r, Keys(scratch.key_prefix), sightings=True)
    return VisitorReport(len(played.identity), len(set(played.identity)), played.skipped, groupings, recall, searches)
