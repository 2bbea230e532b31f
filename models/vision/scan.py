"""Where to look for faces in one camera's next frame, so the detection budget goes where faces can be.

Searching a whole 1080p frame for its smallest faces costs ~160 ms of RetinaFace on one core (~300 ms
of HOG for 48 px faces); a camera sends 15 frames a second. So each frame of the ``balanced`` profile
(:class:`facestream.models.vision.profile.DetectionProfile`) gets:

1. a **coarse pass** over the whole frame at a scale that finds large faces cheaply;
2. **tracked faces**: the faces of the last second, grown, at a scale that keeps them found;
3. **the sweep**: the next tile of a grid of ``1 / sweep_share`` tiles over the frame, round robin,
   searched for small faces on each frame without a scheduled coarse pass (so the two costs do not add up on
   one frame): at ``coarse_every`` 3, every part of the frame is searched every ``1.5 / sweep_share`` frames;
4. **motion**: boxes where OpenCV's background subtractor (MOG2) sees change, smallest first,
   searched for small faces within a budget of half a tile's area: a face that walks in is moving. On a frame
   without the coarse pass (``coarse_every``), the moving areas beyond that budget are searched at the coarse
   pass's scale, within a quarter of its cost: a face that appears between coarse passes is found at once.

So every frame's cost is bounded (coarse pass or a quarter of it, tracked faces, about one and a half tiles
at the small-face scale), and so is its latency. Regions cheaper searched as one (a tracked face inside the
tile, the moving areas of one crowd) are joined (:func:`facestream.models.vision.regions.joined`): a busy
frame's 20-30 small regions cost a detector call each. One instance per camera; its methods may be called from
the worker's detection threads (a lock orders them).

**Still scenes cost nothing** (:meth:`CameraScan.unchanged`): a frame that differs from the camera's last
searched frame by less than ``still_share`` of its pixels, when that frame was searched and had no face (nor
had the second before it), is not decoded nor searched: it is answered with no face and counted as
unchanged, for up to ``still_s`` of camera time, after which one frame is searched again (the sweep goes on,
slowly; the frames read while it is searched are answered as those before it, not searched too). The
comparison runs on JPEG's 1/8 DCT-scaled greyscale decode (~0.8 ms for 1080p, against ~5-10 ms for the full
decode and ~60-150 ms of detection), and not at all on a JPEG byte for byte the same as one already found
unchanged (facestream's producer sends a still scene's last JPEG again instead of encoding it anew). A person
walking in changes far more than that share, so their frame is searched as on a busy camera.
"""

from __future__ import annotations

import threading

import cv2
import numpy as np
import supervision as sv

from facestream.models.types import Box
from facestream.models.vision.image import scene_changed, scene_thumb
from facestream.models.vision.profile import DetectionProfile
from facestream.models.vision.regions import Region, grid, grow, joined

MOTION_WIDTH = 480  # the background model runs on a copy this wide: ~1.5 ms a frame
#: Between whole-frame passes, what moved beyond the fine budget is searched at the coarse scale within this share
#: of the whole-frame pass's cost: per-frame recall of faces that appear as with a pass on every frame (synthetic
#: camera: 0.97-1.00 by size), for ~8% more detector pixels on a busy 1080p stage clip (a half: 16%, an eighth misses
#: large faces again).
ROUGH_SHARE = 1 / 4


class CameraScan:
    """One camera's background model, sweep position and latest face boxes."""

    def __init__(self, profile: DetectionProfile):
        self.profile = profile
        self.scale = profile.scale_for(profile.min_face_px)
        self._mog = cv2.createBackgroundSubtractorMOG2(history=150, varThreshold=32, detectShadows=False)
        self._kernel = np.ones((5, 5), np.uint8)
        self._tiles: list[Box] = []
        self._next_tile = 0
        self._frames = 0  # frames searched: the whole-frame pass runs on every profile.coarse_every-th
        self._faces: list[tuple[Box, float]] = []  # (box, camera time last seen)
        self._lock = threading.Lock()
        self._thumbs: dict[float, tuple[np.ndarray, bytes]] = {}  # frames being searched (scene thumb, JPEG) by time
        self._still: tuple[float, np.ndarray] | None = None  # the last searched frame with no face, if it is the latest
        self._known = b""  # a JPEG known to show that still scene: its own, or one found unchanged since
        self._recheck: float | None = None  # camera time of the unchanged frame being searched again (still_s)
        self.size = (0, 0)  # the camera's frame size (width, height), as last decoded

    @property
    def quiet(self) -> bool:
        """Whether the camera's next frame may go unsearched (no face followed, a still frame to compare with): a
        hint for where to glance at it (:meth:`unchanged` decides)."""
        return self.profile.still_s > 0 and not self._faces and self._still is not None

    def unchanged(self, jpeg: bytes, ts_s: float) -> bool:
        """Whether the frame (its JPEG, its camera time) may go unsearched: see the module doc."""
        if self.profile.still_s <= 0:
            return False
        with self._lock:
            if self._faces:
                return False
            still, known = self._still, self._known
        if still is not None and jpeg == known:  # the very bytes of a frame of that scene (a producer re-sending it)
            thumb, same = still[1], True
        else:
            thumb = scene_thumb(jpeg)
            if thumb is None:
                return False  # the full decode says what is wrong with it
            same = still is not None and not scene_changed(thumb, still[1], self.profile.still_share)
        with self._lock:
            if same and still is not None:
                if 0 <= ts_s - still[0] < self.profile.still_s or (self._recheck is not None and self._recheck < ts_s):
                    if self._still is still:
                        self._known = jpeg  # its copies are known unchanged without a decode
                    return True  # (while a frame of this scene is searched again: answered as the frames before it)
                self._recheck = ts_s
            self._thumbs[ts_s] = (thumb, jpeg)
        return False

    def follow(self, boxes: list[Box], ts_s: float, keep_s: float = 1.0) -> None:
        """The faces of the latest finished frame: searched close up on the next frames. A face missed
        on a frame (turned, blurred) is still searched where it was for ``keep_s``."""
        with self._lock:
            older = [(b, t) for b, t in self._faces if ts_s - t <= keep_s]
            if older and boxes:  # a face found again is followed at its new box, not twice
                iou = sv.box_iou_batch(np.array([b for b, _ in older], np.float32), np.array(boxes, np.float32))
                older = [o for o, row in zip(older, iou) if row.max() <= 0.3]
            self._faces = [(b, ts_s) for b in boxes] + older[:16]
            thumb = self._thumbs.pop(ts_s, None)
            if self._recheck is not None and ts_s >= self._recheck:
                self._recheck = None
            for t in [t for t in self._thumbs if t < ts_s]:  # frames answered without a search (or dead-lettered)
                del self._thumbs[t]
            if self._faces:
                self._still = None
            elif thumb is not None:
                self._still, self._known = (ts_s, thumb[0]), thumb[1]

    def regions(self, rgb: np.ndarray, late_ms: float = 0.0) -> list[Region]:
        """Where to search ``rgb`` (the camera's next frame) and at which scale. A frame already
        ``late_ms`` behind by more than the profile's ``late_ms`` skips motion and sweep: the worker catches up."""
        h, w = rgb.shape[:2]
        self.size = (w, h)
        coarse = self.profile.frame_scale(w, h)
        finer = self.scale > coarse  # sweep and moving areas search finer than the coarse pass (not on small frames)
        moving = self._motion(rgb) if finer else []
        with self._lock:
            faces = [b for b, _ in self._faces]
            if self.profile.sweep_share > 0 and (not self._tiles or self._tiles[-1][2:] != (w, h)):
                # Faces too small for the coarse pass, up to 2 x overlap, lie whole inside some tile.
                overlap = int(self.profile.detector_min_face / coarse / 2)
                self._tiles, self._next_tile = grid(w, h, round(1 / self.profile.sweep_share), overlap), 0
            due = self._frames % self.profile.coarse_every == 0  # the scheduled whole-frame pass
            whole = due or not finer or not faces  # nobody tracked: look everywhere
            sweep = not due or self.profile.coarse_every == 1
            self._frames += 1
        out = [Region((0, 0, w, h), coarse)] if whole else []
        for box in faces:  # keep tracked faces found, small or turned: searched close up every frame (those the
            # coarse pass sees at least as large go in joined(): a region inside a finer one)
            scale = min(self.scale, 1.6 * self.profile.scale_for(min(box[2] - box[0], box[3] - box[1])))
            out.append(Region(grow(box, 0.6, 8, w, h), scale))
        if self.profile.sweep_share > 0 and late_ms <= self.profile.late_ms and finer:
            out += self._budgeted(moving, w, h, 0.0 if whole else coarse, sweep)
        return joined(out)

    def _motion(self, rgb: np.ndarray) -> list[Box]:
        """Boxes (frame pixels) of what moved since the background model's last frames."""
        h, w = rgb.shape[:2]
        if self.profile.sweep_share <= 0:
            return []
        f = MOTION_WIDTH / w
        small = cv2.resize(rgb, (MOTION_WIDTH, max(1, round(h * f))), interpolation=cv2.INTER_AREA)
        with self._lock:
            mask = self._mog.apply(cv2.cvtColor(small, cv2.COLOR_RGB2GRAY))
        if w <= MOTION_WIDTH:
            return []
        mask = cv2.dilate(cv2.morphologyEx(mask, cv2.MORPH_OPEN, self._kernel), self._kernel, iterations=2)
        n, _, stats, _ = cv2.connectedComponentsWithStats(mask)
        boxes = []
        for x, y, bw, bh, area in stats[1:n]:
            if area >= 12:
                boxes.append(grow((int(x / f), int(y / f), int((x + bw) / f), int((y + bh) / f)), 0.2, 16, w, h))
        return boxes

    def _budgeted(self, moving: list[Box], w: int, h: int, coarse: float, sweep: bool) -> list[Region]:
        """The next sweep tile (if ``sweep``), then moving areas (smallest first) within half a tile's worth; on a
        frame without the whole-frame pass (``coarse``: its scale, else 0), the moving areas beyond that at the coarse
        scale, within a quarter of that pass's worth: a face that appears (steps out from behind someone, turns to the
        camera) is found on its first frame, as the whole-frame pass would have found it."""
        out = []
        if sweep:
            with self._lock:
                out.append(Region(self._tiles[self._next_tile], self.scale))
                self._next_tile = (self._next_tile + 1) % len(self._tiles)
        fine, rough = self.profile.sweep_share / 2 * w * h * self.scale**2, w * h * coarse**2 * ROUGH_SHARE
        for box in sorted(moving, key=lambda b: (b[2] - b[0]) * (b[3] - b[1])):
            region = Region(box, self.scale)
            if region.cost > fine:
                region = Region(box, coarse)
                if not coarse or region.cost > rough:  # (a frame with the whole-frame pass: it sees them)
                    break
                rough -= region.cost
            else:
                fine -= region.cost
            out.append(region)
        return out
