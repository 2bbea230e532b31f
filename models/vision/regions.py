"""Detection inside chosen regions of a frame, each at its own scale.

A camera's scan plan (:mod:`facestream.models.vision.scan`) says where faces can be and how small they may be there;
this module crops each region, rescales it (HOG finds faces from about 64 px, so a region searched
for 48 px faces is enlarged 1.4x), detects, maps the boxes back to frame pixels and removes the
duplicates that overlapping regions produce (supervision's non-max suppression).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import cv2
import numpy as np

from facestream.models.types import Detection

if TYPE_CHECKING:
    from facestream.models.protocols import Detector

Box = tuple[int, int, int, int]  # left, top, right, bottom

#: The smallest face dlib's HOG finds reliably at scale 1 (measured: 54/57 gallery faces at 64 px,
#: 37/57 at 56, 8/57 at 48). A region searched for faces of ``min_face`` px is scaled by 64/min_face.
HOG_MIN_FACE = 64


@dataclass(frozen=True)
class Region:
    """Part of a frame to search: ``box`` in frame pixels, enlarged (or shrunk) by ``scale`` first."""

    box: Box
    scale: float

    @property
    def cost(self) -> float:
        """Pixels the detector scans (what its time is proportional to)."""
        left, top, right, bottom = self.box
        return (right - left) * (bottom - top) * self.scale**2


def scale_for(min_face_px: float) -> float:
    """The resize factor at which a face of ``min_face_px`` becomes one HOG finds."""
    return HOG_MIN_FACE / max(1.0, min_face_px)


def grid(width: int, height: int, tiles: int, overlap_px: int) -> list[Box]:
    """About ``tiles`` tiles covering a frame, in cells of its aspect, each grown by ``overlap_px`` per
    side so that a face up to ``2 * overlap_px`` on a cell border lies whole inside one tile."""
    cols = max(1, round(math.sqrt(tiles * width / height)))
    rows = max(1, math.ceil(tiles / cols))
    out = []
    for r in range(rows):
        for c in range(cols):
            left, right = c * width // cols, (c + 1) * width // cols
            top, bottom = r * height // rows, (r + 1) * height // rows
            out.append((max(0, left - overlap_px), max(0, top - overlap_px),
                        min(width, right + overlap_px), min(height, bottom + overlap_px)))
    return out


def grow(box: Box, by: float, pad: int, width: int, height: int) -> Box:
    """``box`` grown by ``by`` of its size (and ``pad`` px) on each side, clipped to the frame."""
    left, top, right, bottom = box
    dx, dy = (right - left) * by + pad, (bottom - top) * by + pad
    return (max(0, int(left - dx)), max(0, int(top - dy)), min(width, int(right + dx)), min(height, int(bottom + dy)))


def detect_regions(detector: Detector, rgb: np.ndarray, regions: list[Region], min_face_px: int) -> list[Detection]:
    """Faces found in any of ``regions`` of ``rgb``, in frame pixels, duplicates merged."""
    found: list[Detection] = []
    for region in regions:
        left, top, right, bottom = region.box
        crop = rgb[top:bottom, left:right]
        if crop.shape[0] < 16 or crop.shape[1] < 16:
            continue
        if region.scale != 1.0:
            size = (max(1, round(crop.shape[1] * region.scale)), max(1, round(crop.shape[0] * region.scale)))
            crop = cv2.resize(crop, size, interpolation=cv2.INTER_LINEAR if region.scale > 1 else cv2.INTER_AREA)
        for d in detector.detect(crop, 0):
            d = d.scaled(1 / region.scale) if region.scale != 1.0 else d
            found.append(d.shifted(left, top))
    found = [d for d in found if d.size >= min_face_px]
    return _merged(found)


def _merged(dets: list[Detection]) -> list[Detection]:
    """One detection per face where overlapping regions both found it (the higher score kept)."""
    if len(dets) < 2:
        return dets
    import supervision as sv  # not needed by the in-server gear, which never plans regions

    boxes = np.array([[*d.box, d.score] for d in dets], np.float32)
    keep = sv.box_non_max_suppression(boxes, iou_threshold=0.3)
    return [d for d, k in zip(dets, keep) if k]
