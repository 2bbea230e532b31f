"""Detection inside chosen regions of a frame, each at its own scale.

A camera's scan (:mod:`facestream.models.vision.scan`) says where faces can be and how small they may be
there; this module crops each region, rescales it (so the smallest face wanted there reaches the
detector's smallest, :attr:`Backend.min_face_px`), detects, maps the boxes and landmarks back to frame
pixels and removes the duplicates that overlapping regions produce (supervision's non-max suppression).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from facestream.models.types import Box, Detection
from facestream.models.vision.image import rescale

if TYPE_CHECKING:
    from facestream.models.protocols import Detector


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


def joined(regions: list[Region]) -> list[Region]:
    """``regions``, those cheaper searched as one joined: two become their union box at the finer of their scales
    when that costs fewer detector pixels than both (so a region inside a finer one goes), which also saves a
    detector call (~0.5 ms of onnxruntime and our pre- and post-processing beyond its pixels). A face whole in
    either lies whole in the union, at a scale where it is at least as large."""
    boxes = np.array([r.box for r in regions], np.float64).reshape(-1, 4)
    scales = np.array([r.scale for r in regions], np.float64)
    while len(scales) > 1:
        lt, rb = np.minimum(boxes[:, None, :2], boxes[None, :, :2]), np.maximum(boxes[:, None, 2:], boxes[None, :, 2:])
        finer = np.maximum(scales[:, None], scales[None, :])
        cost = (boxes[:, 2:] - boxes[:, :2]).prod(axis=1) * scales**2
        gain = cost[:, None] + cost[None, :] - (rb - lt).prod(axis=2) * finer**2
        gain[np.tril_indices(len(scales))] = -1.0
        i, j = np.unravel_index(int(np.argmax(gain)), gain.shape)
        if gain[i, j] <= 0:
            break
        boxes[i], scales[i] = (*lt[i, j], *rb[i, j]), finer[i, j]
        boxes, scales = np.delete(boxes, j, axis=0), np.delete(scales, j)
    return [Region((int(b[0]), int(b[1]), int(b[2]), int(b[3])), float(s)) for b, s in zip(boxes, scales)]


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
    """Faces found in any of ``regions`` of ``rgb``, in frame pixels, duplicates merged. A face cut by a
    region's edge inside the frame is left to the region that holds it whole (tiles overlap for that)."""
    h, w = rgb.shape[:2]
    found: list[Detection] = []
    for region in regions:
        left, top, right, bottom = region.box
        crop = rgb[top:bottom, left:right]
        if crop.shape[0] < 16 or crop.shape[1] < 16:
            continue
        for d in detector.detect(rescale(crop, region.scale)):
            d = (d.scaled(1 / region.scale) if region.scale != 1.0 else d).shifted(left, top)
            if not _cut(d.box, region.box, w, h):
                found.append(d)
    found = [d for d in found if d.size >= min_face_px]
    return _merged(found)


def _cut(box: Box, region: Box, width: int, height: int, margin: int = 2) -> bool:
    """Whether ``box`` touches an edge of ``region`` that is not the frame's own edge."""
    return ((box[0] <= region[0] + margin and region[0] > 0) or (box[1] <= region[1] + margin and region[1] > 0)
            or (box[2] >= region[2] - margin and region[2] < width)
            or (box[3] >= region[3] - margin and region[3] < height))


def _merged(dets: list[Detection]) -> list[Detection]:
    """One detection per face where overlapping regions both found it (the higher score kept), and no part
    of a face: a region whose edge cuts a face can find its lower half, which lies inside the whole face's
    box found by another region (faces do not nest)."""
    if len(dets) < 2:
        return dets
    import supervision as sv  # not needed by the in-server gear, which never plans regions

    boxes = np.array([[*d.box, d.score] for d in dets], np.float32)
    keep = sv.box_non_max_suppression(boxes, iou_threshold=0.3)
    dets, boxes = [d for d, k in zip(dets, keep) if k], boxes[keep]
    lt = np.maximum(boxes[:, None, :2], boxes[None, :, :2])
    rb = np.minimum(boxes[:, None, 2:4], boxes[None, :, 2:4])
    inter = np.clip(rb - lt, 0, None).prod(axis=2)
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    inside = (inter / np.maximum(area[:, None], 1) > 0.6) & (area[:, None] < area[None, :])  # row inside column
    return [d for d, part in zip(dets, inside.any(axis=1)) if not part]
