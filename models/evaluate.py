"""Measured accuracy through the pipeline's own detect → embed → KNN → decide code.

- :func:`verify_pairs`: LFW-style verification on a ``pairs.csv`` (img_a, img_b, same, fold) with the
  k-fold protocol: for each fold, the threshold that is best on the other folds is tested on it.
  Its overall best threshold is what ``match_threshold`` should be set to.
- :func:`identify`: open-set identification: enroll ``gallery/<Person>/``, then name every image of
  ``probes/<Person>/`` and ``probes/_unknown/`` (people not enrolled) through the real Redis index.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import redis

from facestream.config import Settings
from facestream.records import UNKNOWN
from models.enroll import Item, Options, Outcome, Summary, analyze_all, enroll, plan
from models.gallery import Gallery
from models.matcher import decide


def embed_files(paths: list[Path], settings: Settings, workers: int, still: bool,
                progress: Callable[[Outcome], None] | None = None) -> dict[Path, np.ndarray | str]:
    """The main face's vector of each image, or the reason there is none.

    ``still``: the enrollment path (fallback detector, 3 views); otherwise exactly the live-frame path.
    """
    items = [Item("eval", "eval", p) for p in paths]
    out: dict[Path, np.ndarray | str] = {}
    for o in analyze_all(items, settings, Options(allow_several=True, still=still), workers, progress):
        out[o.item.path] = o.faces[0].vector if o.faces else (o.skipped or "no face")
    return out


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
    vecs = embed_files(paths, settings, workers, still, progress)
    d = np.array([
        float(((va - vb) ** 2).sum()) if isinstance(va := vecs[root / r["img_a"]], np.ndarray)
        and isinstance(vb := vecs[root / r["img_b"]], np.ndarray) else np.inf
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
              f"{'3 views' if settings.enroll_augment else '1 view'}" if still else f"live path: {settings.detector}, 1 view"),
        no_face=sorted(str(p.relative_to(root)) for p, v in vecs.items() if not isinstance(v, np.ndarray)),
    )


@dataclass
class Identification:
    enrolled: Summary
    known: int = 0
    correct: int = 0
    closed_set_correct: int = 0  # nearest person right, ignoring the threshold
    unknown: int = 0
    false_accepts: int = 0
    no_face: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def top1(self) -> float:
        return self.correct / self.known if self.known else 0.0

    @property
    def far(self) -> float:
        return self.false_accepts / self.unknown if self.unknown else 0.0

    def lines(self, threshold: float, margin: float) -> list[str]:
        e = self.enrolled
        return [
            f"gallery: {sum(e.enrolled.values())} faces of {len(e.enrolled)} people ({len(e.skipped)} images skipped)",
            f"open-set identification at threshold {threshold:.4f}, margin {margin:.4f}:",
            f"  known probes: top-1 {self.top1:.4f} ({self.correct}/{self.known}); "
            f"closed-set rank-1 {self.closed_set_correct / max(self.known, 1):.4f}",
            f"  unknown probes accepted as someone: {self.far:.4f} ({self.false_accepts}/{self.unknown})",
            f"  probes with no face found (counted as wrong if known): {len(self.no_face)}",
            *(f"    {p}" for p in self.no_face),
            *(f"  wrong: {x}" for x in self.errors[:30]),
        ]


def identify(client: redis.Redis, gallery_dir: Path, probes_dir: Path, settings: Settings, workers: int = 2,
             progress: Callable[[Outcome], None] | None = None) -> Identification:
    """Enroll ``gallery_dir`` under a scratch key prefix, name every probe, then remove the scratch keys."""
    eval_settings = settings.model_copy(update={"key_prefix": settings.key_prefix + "_eval"})
    gallery = Gallery(client, eval_settings)
    gallery.clear()
    try:
        items, skipped = plan([gallery_dir])
        summary = enroll(gallery, items, eval_settings, Options(allow_several=True), workers, progress)
        summary.skipped += skipped
        res = Identification(summary)
        probe_items, _ = plan([probes_dir])
        vecs = embed_files([i.path for i in probe_items], settings, workers, False, progress)  # probes: live path
        for it in probe_items:
            expected = it.person_id  # probes/_unknown/ → "unknown"
            is_known = expected != UNKNOWN
            res.known += is_known
            res.unknown += not is_known
            v = vecs[it.path]
            rel = str(it.path.relative_to(probes_dir))
            if not isinstance(v, np.ndarray):
                res.no_face.append(f"{rel}: {v}")
                continue
            nn = gallery.search(v)
            m = decide(nn, settings.match_threshold, settings.match_margin)
            if is_known:
                res.correct += m.person_id == expected
                res.closed_set_correct += bool(nn) and nn[0][0] == expected
                if m.person_id != expected:
                    res.errors.append(f"{rel} -> {m.person_id} (d={m.distance})")
            elif m.person_id != UNKNOWN:
                res.false_accepts += 1
                res.errors.append(f"{rel} (unknown) -> {m.person_id} (d={m.distance:.4f})")
        return res
    finally:
        gallery.clear()


@dataclass
class SegmentScore:
    start_s: float
    end_s: float
    person_id: str
    named: int  # frames of the segment with a face in which this person was named
    with_face: int  # frames of the segment in which any face was found
    frames: int  # answered frames of the segment

    @property
    def share(self) -> float:
        return self.named / self.with_face if self.with_face else 0.0

    def line(self) -> str:
        return (f"{self.start_s:5.2f}-{self.end_s:5.2f}s {self.person_id:20} named in {self.named}/{self.with_face} "
                f"frames with a face ({self.share:.1%}); {self.frames} frames in segment")


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
        for who in seg["identities"]:
            named = sum(1 for r in with_face if who in {f.person_id for f in r.faces})
            out.append(SegmentScore(seg["start_s"], seg["end_s"], who, named, len(with_face), len(frames)))
    return out
