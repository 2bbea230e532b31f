"""The face analysis every stage (worker, enrollment, evaluation) shares: the detector and embedder,
and how live frames and enrollment photos differ."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

import numpy as np

from facestream.models.types import Detection, Embeddings
from facestream.models.vision.detect import make_detector
from facestream.models.vision.embed import make_embedder
from facestream.models.vision.image import resize_max_side

if TYPE_CHECKING:
    from facestream.config import Settings
    from facestream.models.protocols import Detector, Embedder
    from facestream.models.vision.regions import Region


def main_face(detections: list[Detection], shape: tuple[int, ...]) -> int | None:
    """Index of the subject of a photo: the face nearest the image centre (None if no face)."""
    h, w = shape[:2]

    def off_centre(i: int) -> float:
        left, top, right, bottom = detections[i].box
        return ((left + right) / 2 - w / 2) ** 2 + ((top + bottom) / 2 - h / 2) ** 2

    return min(range(len(detections)), key=off_centre, default=None)


class FaceAnalyzer:
    """Holds the detector and the embedder, loaded once per process (the detector once per thread).

    :meth:`detect` may run in several threads at once: dlib's detectors are not safe to share between
    threads, so each thread gets its own (HOG builds in milliseconds).
    """

    def __init__(self, settings: Settings):
        thorough = settings.detection == "thorough"
        self.settings = settings
        self._detector_name = settings.detector
        self._upsample = 1 if thorough else settings.upsample
        self._small_px = 0 if thorough else settings.small_frame_px
        self._local = threading.local()
        self.detector  # build it now: a bad backend fails at start-up, not on the first frame
        self.embedder: Embedder = make_embedder(settings.embedder)
        self.max_side = 1 << 30 if thorough else settings.detect_max_side  # thorough: full resolution
        self.min_face_px = settings.min_face_px
        self.still_views = settings.enroll_views
        self.probe_views = settings.probe_views
        self._still_upsample = settings.enroll_upsample
        self._fallback_name = settings.enroll_fallback_detector
        self._fallback: Detector | None = None  # built on first use: most photos do not need it

    @property
    def detector(self) -> Detector:
        """This thread's detector (dlib's are not thread-safe; one serves every upsampling level)."""
        det = getattr(self._local, "detector", None)
        if det is None:
            det = self._local.detector = make_detector(self._detector_name, self._upsample)
        return det

    @property
    def dim(self) -> int:
        return self.embedder.dim

    def detect(self, rgb: np.ndarray, detector: Detector | None = None, upsample: int | None = None) -> list[Detection]:
        """Faces in ``rgb``; large frames are detected on a downscaled copy and boxes mapped back, small
        ones (longest side under ``small_frame_px``) with one more upsampling pass than ``upsample``."""
        if upsample is None:
            upsample = self._upsample + (max(rgb.shape[:2]) < self._small_px)
        small, scale = resize_max_side(rgb, self.max_side)
        dets = (detector or self.detector).detect(small, upsample)
        if scale != 1.0:
            dets = [d.scaled(1 / scale) for d in dets]
        return [d for d in dets if d.size >= self.min_face_px]

    def detect_frame(self, rgb: np.ndarray, regions: list[Region] | None = None) -> list[Detection]:
        """A live frame's faces: in the ``regions`` a camera's scan chose (balanced profile), else by
        :meth:`detect` over the whole frame (fast and thorough profiles, and the in-server gear)."""
        if regions is None:
            return self.detect(rgb)
        from facestream.models.vision.regions import (
            detect_regions,  # the gear never plans regions (and has no supervision)
        )

        return detect_regions(self.detector, rgb, regions, self.min_face_px)

    def detect_still(self, rgb: np.ndarray) -> list[Detection]:
        """Detection for enrollment/calibration photos, cheapest first: the detector at upsample 0 (most photos
        show a face of 80 px and more: 7 ms for a 250 px photo), then at ``enroll_upsample`` (4x the cost),
        then the fallback detector."""
        dets = self.detect(rgb, upsample=0)
        if dets or self._still_upsample == 0:
            return dets
        dets = self.detect(rgb, upsample=self._still_upsample)
        if dets or self._fallback_name == "none":
            return dets
        if self._fallback is None:
            self._fallback = make_detector(self._fallback_name, self._still_upsample)
        return self.detect(rgb, self._fallback, self._still_upsample)

    def embed_still(self, rgb: np.ndarray, detections: list[Detection]) -> Embeddings:
        """Enrollment-quality vectors (``enroll_views`` views of each face)."""
        return self.embedder.embed(rgb, detections, self.still_views)
