"""Measured accuracy through the pipeline's own detect → embed → KNN → decide code.

- :func:`verify_pairs`: LFW-style verification on a ``pairs.csv`` (img_a, img_b, same, fold) with the
  k-fold protocol: for each fold, the threshold that is best on the other folds is tested on it.
  Its overall best threshold is what ``match_threshold`` should be set to.
- :func:`segment_scores`: how often each labelled person of a clip is named in their segments.

Open-set identification and its calibration are in :mod:`facestream.models.evaluation.identify`.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from facestream.config import Settings
from facestream.models.curation.enroll import Outcome, embed_files
from facestream.models.matcher import QUALITY_REASONS
from facestream.models.store.gallery import FaceEntry
from facestream.records import UNKNOWN


@dataclass
class Verification:
    pairs: int
    correct: int  # held-out pairs decided right, over all folds
    accuracy: float  # correct / pairs
    accuracy_std: float
    fold_accuracy: list[float]
    threshold: float  # best on all pairs: the value for match_threshold
    far: float  # different-person pairs accepted at ``threshold``
    frr: float  # same-person pairs rejected at ``threshold``
    path: str = ""  # which embedding path both images went through
    no_face: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        folds = ", ".join(f"{a:.4f}" for a in self.fold_accuracy)
        return [
            f"verification on {self.pairs} pairs ({self.path}), {len(self.fold_accuracy)}-fold: "
            f"accuracy {self.accuracy:.4f} ({self.correct}/{self.pairs}) ± {self.accuracy_std:.4f} (folds: {folds})",
            f"threshold (squared L2 on unit vectors) {self.threshold:.4f} -> FAR {self.far:.4f}, FRR {self.frr:.4f}",
            f"images with no face found: {len(self.no_face)}" + (f" ({', '.join(self.no_face)})" if self.no_face else ""),
            "pairs with an image without a face count as 'different'",
        ]


def _accuracy(d: np.ndarray, same: np.ndarray, thr: float) -> float:
    return float(((d <= thr) == same).mean())


def best_threshold(d: np.ndarray, same: np.ndarray) -> float:
    """The threshold with the highest accuracy (midpoint between neighbouring distances)."""
    finite = np.sort(d[np.isfinite(d)])
    cands = np.concatenate([[0.0], (finite[1:] + finite[:-1]) / 2, [finite[-1] + 1e-6]]) if finite.size else np.array([0.0])
    accs = [(_accuracy(d, same, t), -abs(t)) for t in cands]
    return float(cands[int(np.argmax([a for a, _ in accs]))])


def pair_images(pairs_csv: Path) -> list[Path]:
    """Every image a ``pairs.csv`` names (paths relative to it), once."""
    rows = csv.DictReader(pairs_csv.open())
    return sorted({pairs_csv.parent / r[c] for r in rows for c in ("img_a", "img_b")})


def verify_pairs(pairs_csv: Path, settings: Settings, workers: int = 2, still: bool = True,
                 progress: Callable[[Outcome], None] | None = None) -> Verification:
    rows = list(csv.DictReader(pairs_csv.open()))
    root = pairs_csv.parent
    paths = pair_images(pairs_csv)
    faces = embed_files(paths, settings, workers, still, progress)
    vecs = {p: f.vector for p, f in faces.items() if isinstance(f, FaceEntry)}
    d = np.array([
        float(((vecs[root / r["img_a"]] - vecs[root / r["img_b"]]) ** 2).sum())
        if root / r["img_a"] in vecs and root / r["img_b"] in vecs else np.inf
        for r in rows
    ])
    same = np.array([r["same"] == "1" for r in rows])
    folds = np.array([r.get("fold", "1") for r in rows])
    fold_acc = []
    correct = 0
    for f in sorted(set(folds)):
        train = folds != f if len(set(folds)) > 1 else np.ones_like(same)
        thr = best_threshold(d[train], same[train])
        test = folds == f
        correct += int(((d[test] <= thr) == same[test]).sum())
        fold_acc.append(_accuracy(d[test], same[test], thr))
    thr = best_threshold(d, same)
    accept = d <= thr
    return Verification(
        pairs=len(rows),
        correct=correct,
        accuracy=correct / len(rows),  # = the mean over folds for equal folds, without float drift
        accuracy_std=float(np.std(fold_acc)),
        fold_accuracy=fold_acc,
        threshold=thr,
        far=float(accept[~same].mean()) if (~same).any() else 0.0,
        frr=float((~accept[same]).mean()) if same.any() else 0.0,
        path=(f"enrollment path: {settings.detector} + {settings.enroll_fallback_detector} fallback, "
              f"{settings.enroll_views} views" if still else f"live path: {settings.detector}, {settings.probe_views} views"),
        no_face=sorted(str(p.relative_to(root)) for p in faces if p not in vecs),
    )


@dataclass
class SegmentScore:
    start_s: float
    end_s: float
    person_id: str
    named: int  # frames of the segment with a face in which this person was named
    with_face: int  # frames of the segment in which any face was found
    frames: int  # answered frames of the segment
    nameable: int = 0  # frames with a face good enough to name (not too small, blurred or turned)
    misnamed: int = 0  # frames of the segment in which a face was named someone not labelled in it

    @property
    def share(self) -> float:
        return self.named / self.with_face if self.with_face else 0.0

    @property
    def nameable_share(self) -> float:
        """Named among the frames where some face could be named at all: a detector that also finds the
        blurred faces in the background does not lower it."""
        return self.named / self.nameable if self.nameable else 0.0

    def line(self) -> str:
        return (f"{self.start_s:5.2f}-{self.end_s:5.2f}s {self.person_id:20} named in {self.named}/{self.with_face} "
                f"frames with a face ({self.share:.1%}), {self.named}/{self.nameable} with a nameable one "
                f"({self.nameable_share:.1%}); {self.frames} frames in segment, {self.misnamed} with someone else named")


def segment_scores(results: list, clip: Path) -> list[SegmentScore]:
    """How often each labelled person is named in their segments of ``clip`` (labels.json beside it).

    A result's frame ``seq`` (1 = first frame) is mapped to the clip's time with its fps and the
    stream start time labels.json gives (``start <s>`` in ``video_stream``).
    """
    import json
    import re

    import cv2

    meta = json.loads((clip.parent / "labels.json").read_text())[clip.name]
    m = re.search(r"start (\d+\.\d+)", meta.get("video_stream", ""))
    t0 = float(m.group(1)) if m else 0.0
    fps = cv2.VideoCapture(str(clip)).get(cv2.CAP_PROP_FPS)
    by_seq = {r.seq: r for r in results}
    out = []
    for seg in meta["segments"]:
        frames = [r for seq, r in by_seq.items() if seg["start_s"] <= t0 + (seq - 1) / fps < seg["end_s"]]
        with_face = [r for r in frames if r.faces]
        nameable = [r for r in with_face if any(f.reason not in QUALITY_REASONS for f in r.faces)]
        misnamed = sum(1 for r in with_face if {f.person_id for f in r.faces} - {UNKNOWN, *seg["identities"]})
        for who in seg["identities"]:
            named = sum(1 for r in with_face if who in {f.person_id for f in r.faces})
            out.append(SegmentScore(seg["start_s"], seg["end_s"], who, named, len(with_face), len(frames),
                                    len(nameable), misnamed))
    return out
