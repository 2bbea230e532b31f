"""``facestream bench --detection``: what each detection profile finds, and what it costs.

- **Synthetic 1080p camera**: faces cut from ``../shared/data/faces`` photos are pasted, at known
  sizes (32–192 px) and moving, onto real backgrounds (the shared photos and clip frames, their own
  faces painted out), several at a time, generated here at run time. Recall per face size and the
  time from a face's first frame to its first detection are exact.
- **Real frames**: the Hamilton clip (every 5th frame scored, all played in order) and the ``multi/``
  group photos (each held still for a second, like a camera), against reference boxes from the most
  thorough pass we can run (:func:`thorough`: RetinaFace at full resolution plus 2x tiles), computed
  once and cached.
- **False faces**: the synthetic frames' own backgrounds have their faces painted out (by the same
  thorough pass), so every detection that is not a pasted face is a false face.

Each profile runs exactly the live path's detection (its camera scan included), one frame after
another in one thread, so the ms per frame are its detection cost on one core.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import cv2
import numpy as np
import supervision as sv

from facestream.config import Settings
from facestream.models.types import Box, Detection
from facestream.models.vision.analyzer import FaceAnalyzer
from facestream.models.vision.detect import make_detector
from facestream.models.vision.regions import Region, detect_regions, grid, grow
from facestream.models.vision.scan import CameraScan

SIZES = (32, 40, 48, 64, 96, 128, 192)
FPS = 15.0
W, H = 1920, 1080
CLIP = "videos/hamilton_white_house_2009.mp4"


@dataclass
class Face:
    """One pasted face: its picture and where it is on each frame it is on."""

    crop: np.ndarray  # the face with a margin, scaled so the face box is ``size`` px
    box0: Box  # face box within the crop
    size: int
    start: int  # first frame
    frames: int
    x: float
    y: float
    vx: float
    vy: float
    hidden: set[int] = field(default_factory=set)  # frames where a face pasted later covers this one

    def box(self, i: int) -> Box:
        t = i - self.start
        left, top = int(self.x + self.vx * t) + self.box0[0], int(self.y + self.vy * t) + self.box0[1]
        return left, top, left + self.box0[2] - self.box0[0], top + self.box0[3] - self.box0[1]


@dataclass
class ProfileFigures:
    profile: str
    ms: list[float] = field(default_factory=list)  # detection ms per synthetic 1080p frame
    false: list[int] = field(default_factory=lambda: [0, 0])  # detections that are no pasted face, frames
    found: dict[int, list[int]] = field(default_factory=dict)  # size -> [faces-on-frames found, total]
    first_s: dict[int, list[float]] = field(default_factory=dict)  # size -> seconds to first detection
    real: list[int] = field(default_factory=lambda: [0, 0])  # reference faces found, total

    def within(self, min_size: int, limit_s: float = 0.5) -> float:
        waits = [w for s, ws in self.first_s.items() if s >= min_size for w in ws]
        return sum(w <= limit_s for w in waits) / len(waits) if waits else float("nan")

    def line(self) -> str:
        recall = "  ".join(f"{s}px {f / t:.2f}" for s, (f, t) in sorted(self.found.items()) if t)
        return (f"{self.profile:18} detect {np.median(self.ms):6.0f} ms/frame (p95 {np.percentile(self.ms, 95):.0f}) | "
                f"found within 0.5 s: {self.within(32):.3f} of faces >= 32 px | false faces/frame "
                f"{self.false[0] / max(1, self.false[1]):.3f} | real frames {self.real[0]}/{self.real[1]} = "
                f"{self.real[0] / max(1, self.real[1]):.3f} | per frame: {recall}")


def thorough(settings: Settings, rgb: np.ndarray) -> list[Detection]:
    """The most thorough pass we can run: RetinaFace over the whole image at full resolution and over 2x2
    overlapping tiles enlarged 2x (faces down to ~10 px), duplicates merged."""
    det = make_detector("retinaface", settings)
    h, w = rgb.shape[:2]
    regions = [Region((0, 0, w, h), 1.0)] + [Region(b, 2.0) for b in grid(w, h, 4, max(16, min(w, h) // 8))]
    return detect_regions(det, rgb, regions, 8)


def _cut_faces(settings: Settings, faces_dir: Path, n: int) -> list[tuple[np.ndarray, Box]]:
    """Faces (with a margin) and their boxes, from the strangers' photos with exactly one face."""
    det = make_detector("retinaface", settings)
    out = []
    for path in sorted((faces_dir / "probes" / "_unknown").iterdir()):
        bgr = cv2.imread(str(path))
        if bgr is None:
            continue
        rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
        found = det.detect(rgb)
        if len(found) != 1:
            continue
        left, top, right, bottom = found[0].box
        m = (right - left) // 2
        t, lt = max(0, top - m), max(0, left - m)
        crop = rgb[t : bottom + m, lt : right + m]
        out.append((crop, (left - lt, top - t, right - lt, bottom - t)))
        if len(out) == n:
            break
    return out


def _backgrounds(settings: Settings, faces_dir: Path) -> list[np.ndarray]:
    """1920x1080 real scenes (the group photos, clip frames) with their own faces painted out."""
    scenes = [cv2.imread(str(p)) for p in sorted((faces_dir / "multi").glob("*.jpg"))]
    cap = cv2.VideoCapture(str(faces_dir / CLIP))
    for i in range(275):
        ok, bgr = cap.read()
        if ok and i in (30, 120, 250):
            scenes.append(bgr)
    out = []
    for bgr in scenes:
        rgb = cv2.cvtColor(cv2.resize(bgr, (W, H)), cv2.COLOR_BGR2RGB)
        for d in thorough(settings, rgb):  # painted over: a blurred face is still a face to a CNN
            left, top, right, bottom = grow(d.box, 0.25, 0, W, H)
            rgb[top:bottom, left:right] = rgb[top:bottom, left:right].mean(axis=(0, 1))
        out.append(rgb)
    return out


def synthetic(settings: Settings, faces_dir: Path, frames: int = 150,
              seed: int = 0) -> tuple[list[np.ndarray], list[Face]]:
    """A 1080p camera at 15 fps: a background per 50 frames, ~5 faces at a time, each 1.5-4 s, moving."""
    rng = np.random.default_rng(seed)
    cuts, scenes = _cut_faces(settings, faces_dir, max(60, frames // 6)), _backgrounds(settings, faces_dir)
    faces = []
    for k in range(frames // 6):
        crop, box = cuts[k % len(cuts)]
        size = SIZES[k % len(SIZES)]
        f = size / (box[2] - box[0])
        crop = cv2.resize(crop, (max(1, round(crop.shape[1] * f)), max(1, round(crop.shape[0] * f))),
                          interpolation=cv2.INTER_AREA if f < 1 else cv2.INTER_LINEAR)  # as a lens would, not aliased
        box0 = tuple(round(v * f) for v in box)
        n = int(rng.integers(22, 60))
        start = int(rng.integers(0, frames - 15))
        x, y = rng.uniform(0, W - crop.shape[1]), rng.uniform(0, H - crop.shape[0])
        vx, vy = rng.uniform(-4, 4), rng.uniform(-2, 2)
        faces.append(Face(crop, box0, size, start, n, x, y, vx, vy))
    video = []
    for i in range(frames):
        img = scenes[(i // 50) % len(scenes)].copy()
        pasted: list[Face] = []
        for face in faces:
            if drawn(face, i):
                left, top = face.box(i)[0] - face.box0[0], face.box(i)[1] - face.box0[1]
                ch, cw = face.crop.shape[:2]
                img[top : top + ch, left : left + cw] = face.crop
                for below in pasted:  # its crop (face and margin) covers part of a face pasted before
                    if _overlap(below.box(i), (left, top, left + cw, top + ch)) > 0.1:
                        below.hidden.add(i)
                pasted.append(face)
        video.append(img)
    return video, faces


def _overlap(box: Box, cover: Box) -> float:
    """The share of ``box`` that ``cover`` covers."""
    w = min(box[2], cover[2]) - max(box[0], cover[0])
    h = min(box[3], cover[3]) - max(box[1], cover[1])
    return max(0, w) * max(0, h) / max(1, (box[2] - box[0]) * (box[3] - box[1]))


def visible(face: Face, i: int) -> bool:
    """Whether ``face`` can be seen on frame ``i``: drawn, and not covered by a face pasted after it."""
    return drawn(face, i) and i not in face.hidden


def drawn(face: Face, i: int) -> bool:
    """Whether ``face`` is pasted on frame ``i`` (whole: a face that would cross the border is not drawn)."""
    left, top = face.box(i)[0] - face.box0[0], face.box(i)[1] - face.box0[1]
    ch, cw = face.crop.shape[:2]
    return face.start <= i < face.start + face.frames and left >= 0 and top >= 0 and left + cw <= W and top + ch <= H


def run_profile(settings: Settings, frames: list[np.ndarray]) -> tuple[list[list[Detection]], list[float]]:
    """The live detection path over ``frames`` in order: per-frame detections and ms."""
    analyzer = FaceAnalyzer(settings)
    scan = CameraScan(analyzer.profile) if analyzer.profile.scans else None
    out, ms = [], []
    for i, rgb in enumerate(frames):
        t = time.perf_counter()
        dets = analyzer.detect_frame(rgb, scan.regions(rgb) if scan else None)
        ms.append((time.perf_counter() - t) * 1e3)
        if scan:
            scan.follow([d.box for d in dets], i / FPS)
        out.append(dets)
    return out, ms


def _hit(box: Box, dets: list[Detection]) -> bool:
    return bool(dets) and bool(sv.box_iou_batch(np.array([box], np.float32),
                                                np.array([d.box for d in dets], np.float32)).max() >= 0.3)


def score_synthetic(fig: ProfileFigures, faces: list[Face], dets: list[list[Detection]]) -> None:
    for face in faces:
        on = [i for i in range(len(dets)) if visible(face, i)]
        if not on:
            continue
        hits = [i for i in on if _hit(face.box(i), dets[i])]
        found = fig.found.setdefault(face.size, [0, 0])
        found[0] += len(hits)
        found[1] += len(on)
        fig.first_s.setdefault(face.size, []).append((hits[0] - on[0]) / FPS if hits else float("inf"))
    for i, found in enumerate(dets):
        boxes = [face.box(i) for face in faces if drawn(face, i)]
        fig.false[0] += sum(not _hit(d.box, [Detection(b, 1.0) for b in boxes]) for d in found)
        fig.false[1] += 1


def reference(settings: Settings, faces_dir: Path, cache: Path,
              say: Callable[[str], None]) -> list[tuple[str, list[np.ndarray], dict[int, list[Box]]]]:
    """Real sequences and their reference boxes (:func:`thorough`), cached by content."""
    cap = cv2.VideoCapture(str(faces_dir / CLIP))
    clip = []
    while True:
        ok, bgr = cap.read()
        if not ok:
            break
        clip.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    seqs = [("clip", clip, list(range(0, len(clip), 5)))]
    for path in sorted((faces_dir / "multi").glob("*.jpg")):
        rgb = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
        seqs.append((path.name, [rgb] * int(FPS), [int(FPS) - 1]))  # a still camera, scored after 1 s
    key = hashlib.sha256(b"".join(f[i].tobytes()[:4096] for _, f, idx in seqs for i in idx)).hexdigest()[:16]
    path = cache / f"reference-retinaface-{key}.json"
    if path.is_file():
        boxes = json.loads(path.read_text())
    else:
        say(f"reference boxes: RetinaFace at full resolution + 2x tiles on {sum(len(i) for *_, i in seqs)} frames, "
            f"once (cached in {path})")
        boxes = {name: {str(i): [list(d.box) for d in thorough(settings, frames[i])] for i in idx}
                 for name, frames, idx in seqs}
        cache.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(boxes))
    return [(name, frames, {int(i): [tuple(b) for b in bs] for i, bs in boxes[name].items()}) for name, frames, _ in seqs]


#: The rows of ``bench --detection``: a label and the settings it changes (HOG's rows for comparison).
PROFILES = [("fast", {"detection": "fast"}), ("balanced", {"detection": "balanced"}),
            ("thorough", {"detection": "thorough"}),
            ("fast hog", {"detection": "fast", "detector": "hog", "detect_max_side": 1280}),
            ("balanced hog", {"detection": "balanced", "detector": "hog", "scan_min_face_px": 48})]


def detection_bench(settings: Settings, faces_dir: Path, profiles: list[tuple[str, dict]], frames: int = 150,
                    say: Callable[[str], None] = print) -> list[ProfileFigures]:
    """Every profile on the synthetic camera and the real frames (see the module doc)."""
    video, faces = synthetic(settings, faces_dir, frames)
    real = reference(settings, faces_dir, settings.data_dir / "cache", say)
    out = []
    for label, changes in profiles:
        s = settings.replace(**changes)
        fig = ProfileFigures(label)
        dets, fig.ms = run_profile(s, video)
        score_synthetic(fig, faces, dets)
        for _, seq, ref in real:
            found, _ = run_profile(s, seq)
            for i, boxes in ref.items():
                fig.real[0] += sum(_hit(b, found[i]) for b in boxes)
                fig.real[1] += len(boxes)
        say(fig.line())
        out.append(fig)
    return out


def write_video(frames: list[np.ndarray], path: Path) -> Path:
    """The synthetic camera as a 15 fps video file (what ``facestream produce`` plays like a camera)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    out = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), FPS, (W, H))
    for rgb in frames:
        out.write(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    out.release()
    return path
