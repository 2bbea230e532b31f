"""Open-set identification, measured and calibrated through the real Redis index.

Faces of people who are not enrolled play two parts, and one person never plays both: the **cohort**
(the impostor bank the decision compares with, :mod:`facestream.models.store.cohort`) and the **strangers** (who must
stay ``unknown``). :class:`Split` assigns each identity of a labelled folder to one part by a hash of
its name; with ``distractors`` a third part is enrolled as extra people, to see whether a policy holds
on a larger gallery. :func:`collect` enrolls a scratch gallery and cohort, runs every probe through
the live path and the same KNN queries the worker sends; :func:`fit` picks the policy with the most
known probes named at a target false-accept rate; :meth:`Probes.score` applies any policy.
"""

from __future__ import annotations

import csv
import hashlib
import time
from collections import defaultdict
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import redis

from facestream.config import Settings
from facestream.keys import Keys
from facestream.models.curation.enroll import Item, Options, Outcome, Summary, embed_files, enroll, model_stamp, plan
from facestream.models.matcher import Policy, StoredPolicy, by_person, decide
from facestream.models.store.cohort import Cohort
from facestream.models.store.gallery import FaceEntry, Gallery
from facestream.records import UNKNOWN

#: Shares of the labelled strangers' identities: cohort, strangers, then (only with distractors) extra people.
PARTS = ("cohort", "strangers", "distractors", "distractors")
#: Source prefix of the cohort faces a calibration stores (replaced by the next calibration).
CALIBRATE_SOURCE = "calibrate:"
#: Images kept per identity of the cohort and strangers (one famous face must not be half of either).
PER_IDENTITY = 4


@dataclass
class Split:
    """Images of people not in the gallery, by part; no identity is in two parts."""

    cohort: list[Path] = field(default_factory=list)
    strangers: list[Path] = field(default_factory=list)  # probes/_unknown/ and the strangers' part
    distractors: dict[str, list[Path]] = field(default_factory=dict)  # identity -> images

    @classmethod
    def of(cls, root: Path, enrolled: set[str]) -> "Split":
        """Split ``root``'s strangers (``probes/_unknown/`` and ``verification/``) by the identities
        ``manifest.csv`` gives (``identity``, or the source folder for ``_unknown`` rows). Without a
        manifest every unknown probe is a stranger and there is no cohort."""
        split = cls()
        manifest = root / "manifest.csv"
        if not manifest.is_file():
            split.strangers = sorted((root / "probes" / UNKNOWN_DIR).glob("*"))
            return split
        rows = [(root / r["path"], identity_of(r), r["split"]) for r in csv.DictReader(manifest.open())
                if r["split"] in ("unknown", "pair_only")]
        unknown_probes = {who for _, who, kind in rows if kind == "unknown"}  # strangers, so never cohort
        kept: dict[str, int] = defaultdict(int)
        for path, who, kind in rows:
            if who in enrolled or not path.is_file():
                continue
            part = "strangers" if who in unknown_probes else PARTS[_bucket(who)]
            if part == "distractors":
                split.distractors.setdefault(who, []).append(path)
            elif kept[who] < PER_IDENTITY:
                kept[who] += 1
                getattr(split, part).append(path)
        return split


UNKNOWN_DIR = "_unknown"


def identity_of(row: dict[str, str]) -> str:
    """Who a manifest row shows (an unknown probe's identity is its source folder)."""
    if row["identity"] != UNKNOWN_DIR:
        return row["identity"]
    return Path(row.get("source_path") or "").parent.name or row["path"]


def _bucket(identity: str) -> int:
    return int(hashlib.sha1(identity.encode()).hexdigest(), 16) % len(PARTS)


@dataclass
class Probe:
    """One probe image and what the KNN queries answered for its face."""

    path: str
    expected: str  # person id, or UNKNOWN for a stranger
    neighbours: list[tuple[str, float]] = field(default_factory=list)
    stranger: float | None = None  # nearest cohort face
    gate: str | None = None  # the quality reason that forbids naming it
    no_face: str | None = None  # why no face was embedded

    def decide(self, policy: Policy) -> str:
        if self.no_face is not None:
            return UNKNOWN
        return decide(self.neighbours, policy, self.stranger, self.gate).person_id


@dataclass
class Probes:
    """Every probe of one evaluation, and what was enrolled for it."""

    enrolled: Summary
    cohort_faces: list[FaceEntry] = field(default_factory=list)
    items: list[Probe] = field(default_factory=list)

    @property
    def cohort(self) -> int:
        return len(self.cohort_faces)

    @property
    def gallery_faces(self) -> int:
        return sum(self.enrolled.enrolled.values())

    def fold(self, k: int) -> tuple["Probes", "Probes"]:
        """(the other half, half ``k``) of the probes, known ones split by person, strangers by image."""
        def half(p: Probe) -> int:
            return _bucket(p.expected if p.expected != UNKNOWN else p.path) % 2
        return (replace(self, items=[p for p in self.items if half(p) != k]),
                replace(self, items=[p for p in self.items if half(p) == k]))

    @property
    def known(self) -> list[Probe]:
        return [p for p in self.items if p.expected != UNKNOWN]

    @property
    def strangers(self) -> list[Probe]:
        return [p for p in self.items if p.expected == UNKNOWN]

    def score(self, policy: Policy) -> Identification:
        res = Identification(self.enrolled, self.cohort, len(self.known), len(self.strangers))
        for p in self.items:
            got = p.decide(policy)
            if p.no_face is not None:
                res.no_face.append(f"{p.path}: {p.no_face}")
            if p.expected != UNKNOWN:
                res.correct += got == p.expected
                res.closed_set_correct += bool(p.neighbours) and min(p.neighbours, key=lambda n: n[1])[0] == p.expected
                if got != p.expected:
                    res.errors.append(f"{p.path} -> {got}")
            elif got != UNKNOWN:
                res.false_accepts += 1
                res.errors.append(f"{p.path} (stranger) -> {got}")
        return res


@dataclass
class Identification:
    enrolled: Summary
    cohort: int
    known: int
    unknown: int
    correct: int = 0
    closed_set_correct: int = 0  # nearest person right, ignoring the policy
    false_accepts: int = 0
    no_face: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def top1(self) -> float:
        return self.correct / self.known if self.known else 0.0

    @property
    def far(self) -> float:
        return self.false_accepts / self.unknown if self.unknown else 0.0

    def lines(self, policy: Policy) -> list[str]:
        e = self.enrolled
        return [
            f"gallery: {sum(e.enrolled.values())} faces of {len(e.enrolled)} people ({len(e.skipped)} images skipped); "
            f"cohort: {self.cohort} faces",
            f"open-set identification with threshold {policy.threshold:.4f}, margin {policy.margin:.4f}, "
            f"cohort margin {policy.cohort_margin:.4f} ({policy.source}):",
            f"  known probes: top-1 {self.top1:.4f} ({self.correct}/{self.known}); "
            f"closed-set rank-1 {self.closed_set_correct / max(self.known, 1):.4f}",
            f"  strangers accepted as someone: {self.far:.4f} ({self.false_accepts}/{self.unknown})",
            f"  probes with no face found (wrong if known): {len(self.no_face)}",
            *(f"    {p}" for p in self.no_face[:20]),
            *(f"  wrong: {x}" for x in self.errors[:30]),
        ]


def collect(client: redis.Redis, root: Path, settings: Settings, workers: int = 2, distractors: bool = False,
            progress: Callable[[Outcome], None] | None = None) -> Probes:
    """Enroll ``root/gallery`` (plus the distractors) and the cohort under a scratch key prefix, embed every
    probe and stranger like a live face's first look, query both indexes, then remove the scratch keys."""
    s = settings.replace(key_prefix=settings.key_prefix + "_eval")
    gallery, cohort = Gallery(client, s), Cohort(client, s)
    gallery.clear()
    cohort.clear()
    try:
        items, skipped = plan([root / "gallery"])
        split = Split.of(root, {i.person_id for i in items})
        if distractors:
            items += [Item(f"distractor_{n}", who, p) for n, (who, paths) in enumerate(sorted(split.distractors.items()))
                      for p in paths[:1]]
        summary = enroll(gallery, items, s, Options(allow_several=True), workers, progress)
        summary.skipped += skipped
        cohort_faces = list(_faces(split.cohort, s, workers, True, progress))
        cohort.add(cohort_faces)
        known, _ = plan([root / "probes"])
        probes = [(i.path, i.person_id) for i in known if i.person_id != UNKNOWN] + [(p, UNKNOWN) for p in split.strangers]
        faces = embed_files([p for p, _ in probes], s, workers, False, progress)
        out = Probes(summary, cohort_faces)
        for path, expected in probes:
            out.items.append(_probe(gallery, cohort, s, path.relative_to(root), expected, faces[path]))
        return out
    finally:
        gallery.clear()
        cohort.clear()


def _faces(paths: list[Path], s: Settings, workers: int, still: bool,
           progress: Callable[[Outcome], None] | None) -> Iterator[FaceEntry]:
    for path, face in embed_files(paths, s, workers, still, progress).items():
        if isinstance(face, FaceEntry):
            yield replace(face, source=f"{CALIBRATE_SOURCE}{path.name}")


def _probe(gallery: Gallery, cohort: Cohort, s: Settings, rel: Path, expected: str, face: FaceEntry | str) -> Probe:
    if not isinstance(face, FaceEntry):
        return Probe(str(rel), expected, no_face=face)
    q = face.quality
    gate = Policy.of(s).gate(q.size, q.sharpness, q.yaw) if q is not None else None
    return Probe(str(rel), expected, gallery.search(face.vector), cohort.nearest(face.vector), gate)


def fit(probes: Probes, far: float, base: Policy, source: str = "") -> Policy:
    """The policy naming the most known probes with at most ``far`` of the strangers named, by a grid over
    margin × cohort margin, each with the largest threshold the false-accept budget allows (ties: the
    smaller margins)."""
    feats = {kind: _features(getattr(probes, kind)) for kind in ("known", "strangers")}
    (kd1, kd2, kc, kok), (sd1, sd2, sc, _) = feats["known"], feats["strangers"]
    allowed = int(np.floor(far * len(sd1) + 1e-9))
    best: tuple[int, float, float, float] | None = None
    for margin in np.round(np.arange(0.0, 0.101, 0.005), 4):
        for cm in np.round(np.arange(-0.1, 0.101, 0.005), 4) if probes.cohort else [-4.0]:
            ks, ss = (kd2 - kd1 >= margin) & (kc - kd1 >= cm) & kok, (sd2 - sd1 >= margin) & (sc - sd1 >= cm)
            # the largest threshold (4 decimals, as stored) that accepts at most `allowed` strangers
            limit = np.sort(sd1[ss])
            thr = float(np.floor((limit[allowed] - 1e-7) * 1e4) / 1e4) if allowed < len(limit) else 1.0
            named = int((ks & (kd1 <= thr)).sum())
            if best is None or named > best[0]:
                best = (named, thr, float(margin), float(cm))
    assert best is not None
    return replace(base, threshold=max(best[1], 1e-4), margin=best[2], cohort_margin=best[3], source=source or base.source,
                   gallery_faces=probes.gallery_faces, tail=_tail(probes.strangers, probes.gallery_faces))


def _tail(strangers: list[Probe], gallery_faces: int, points: int = 24) -> tuple:
    """((rate, distance), ...): the share of all stranger-to-enrolled-face distances at or under each
    distance, from the strangers' nearest faces (all the low tail holds), on a geometric grid of ranks."""
    dists = np.sort([d for p in strangers if p.no_face is None for _, d in p.neighbours])
    pairs = len([p for p in strangers if p.no_face is None]) * gallery_faces
    if not len(dists) or not pairs:
        return ()
    ranks = np.unique(np.geomspace(1, len(dists), points).astype(int))
    return tuple((round(float(k / pairs), 8), round(float(dists[k - 1]), 5)) for k in ranks)


def _features(items: list[Probe]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per probe: best distance, next person's distance, nearest cohort face, and whether the nearest
    person is the right one (known probes). Probes that cannot be named get distance 9."""
    d1, d2, c, ok = [], [], [], []
    for p in items:
        ranked = by_person(p.neighbours)
        nameable = p.no_face is None and p.gate is None and ranked
        d1.append(ranked[0][1] if nameable else 9.0)
        d2.append(ranked[1][1] if nameable and len(ranked) > 1 else 9.0)
        c.append(p.stranger if p.stranger is not None else 9.0)
        ok.append(bool(nameable) and ranked[0][0] == p.expected)
    return np.array(d1), np.array(d2), np.array(c), np.array(ok)


def cross_validated(probes: Probes, far: float, base: Policy) -> tuple[float, float]:
    """(top-1, false-accept rate) of policies fitted on one half of the probes and scored on the other,
    averaged over both halves: what to expect on people the calibration did not see."""
    scores = []
    for k in (0, 1):
        train, test = probes.fold(k)
        scores.append(test.score(fit(train, far, base)))
    return float(np.mean([r.top1 for r in scores])), float(np.mean([r.far for r in scores]))


@dataclass
class Calibration:
    policy: Policy
    result: Identification  # the policy on the probes it was fitted on
    cv_top1: float  # fitted on one half of the probes, scored on the other (mean of both ways)
    cv_far: float

    def lines(self, far: float) -> list[str]:
        return [*self.result.lines(self.policy)[:5],
                f"cross-validated (fit on half the people, score on the other half): top-1 {self.cv_top1:.4f}, "
                f"strangers accepted {self.cv_far:.4f} (target {far:.4f})"]


def calibrate(client: redis.Redis, root: Path, settings: Settings, far: float, workers: int = 2,
              progress: Callable[[Outcome], None] | None = None) -> Calibration:
    """Fit the decision policy for ``far`` on ``root``'s labelled faces, then make it the one the workers use:
    the policy goes to ``fs:policy`` and the cohort half of the strangers into the live cohort (replacing
    the faces an earlier calibration put there; feedback and ``cohort add`` faces stay)."""
    probes = collect(client, root, settings, workers, False, progress)
    base = Policy.of(settings)
    when = time.strftime("%Y-%m-%d %H:%M", time.localtime())
    policy = fit(probes, far, base, f"calibrated {when} for {far:.2%} false accepts on {root}")
    cv_top1, cv_far = cross_validated(probes, far, base)
    result = probes.score(policy)
    live = Cohort(client, settings)
    live.remove(CALIBRATE_SOURCE)
    live.add(probes.cohort_faces)
    client.set(Keys(settings.key_prefix).policy, policy.to_json(
        far=far, top1=round(result.top1, 4), strangers_accepted=round(result.far, 4),
        cv_top1=round(cv_top1, 4), cv_far=round(cv_far, 4), cohort_faces=probes.cohort))
    return Calibration(policy, result, cv_top1, cv_far)


def policy_of_prefix(client: redis.Redis, settings: Settings) -> Policy:
    """:func:`policy_in_force` for the model the key prefix's vectors were stamped with (the settings' if none)."""
    from facestream.models.store.stamp import stamped

    stamp = stamped(client.execute_command, Keys(settings.key_prefix))
    return policy_in_force(client, settings, model_id=stamp.model_id if stamp else None)


def policy_in_force(client: redis.Redis, settings: Settings, gallery_faces: int | None = None,
                    model_id: str | None = None) -> Policy:
    """The policy the workers decide with: the settings', with a stored calibration's values, for the
    live gallery's size (or for a gallery of ``gallery_faces``); ``model_id``: the embedder's (default: the
    one the settings load)."""
    keys = Keys(settings.key_prefix)
    model = model_id if model_id is not None else model_stamp(settings).model_id
    stored = StoredPolicy(client.execute_command, keys.policy, keys.site_policy, keys.index, Policy.of(settings, model))
    policy = stored.get()
    return policy if gallery_faces is None else stored.unscaled.for_gallery(gallery_faces)
