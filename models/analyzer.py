"""The face analysis every stage (worker, enrollment, evaluation) shares: the detector and embedder,
and how live frames and enrollment photos differ."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

import numpy as np

from models.detect import Detection, Detector, make_detector
from models.embed import Embedder, make_embedder
from models.image import resize_max_side

if TYPE_CHECKING:
    from facestream.config import Settings


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
        self._detector_name = settings.detector
        self._upsample = settings.upsample
        self._small_px = settings.small_frame_px
        self._local = threading.local()
        self.detector  # build it now: a bad backend fails at start-up, not on the first frame
        self.embedder: Embedder = make_embedder(settings.embedder)
        self.max_side = settings.detect_max_side
        self.min_face_px = settings.min_face_px
        self.still_augment = settings.enroll_augment
        self._still_upsample = settings.enroll_upsample
        self._still: list[Detector] | None = None  # built on first use: most processes never see a still
        self._fallback_name = settings.enroll_fallback_detector

    @property
    def detector(self) -> Detector:
        """This thread's live detector."""
        return self._thread_detector(self._upsample)

    def _thread_detector(self, upsample: int) -> Detector:
        cache = self._local.__dict__.setdefault("detectors", {})
        if upsample not in cache:
            cache[upsample] = make_detector(self._detector_name, upsample)
        return cache[upsample]

    @property
    def dim(self) -> int:
        return self.embedder.dim

    def detect(self, rgb: np.ndarray, detector: Detector | None = None) -> list[Detection]:
        """Faces in ``rgb``; large frames are detected on a downscaled copy and boxes mapped back, small
        ones (longest side under ``small_frame_px``) with one more upsampling pass."""
        if detector is None:
            small_frame = max(rgb.shape[:2]) < self._small_px
            detector = self._thread_detector(self._upsample + small_frame) if small_frame else self.detector
        small, scale = resize_max_side(rgb, self.max_side)
        dets = detector.detect(small)
        if scale != 1.0:
            dets = [d.scaled(1 / scale) for d in dets]
        return [d for d in dets if d.size >= self.min_face_px]

    def detect_still(self, rgb: np.ndarray) -> list[Detection]:
        """Detection for enrollment/calibration photos: ``enroll_upsample``, then the fallback detector."""
        if self._still is None:
            self._still = [make_detector(self._detector_name, self._still_upsample)]
            if self._fallback_name != "none":
                self._still.append(make_detector(self._fallback_name, self._still_upsample))
        for detector in self._still:
            dets = self.detect(rgb, detector)
            if dets:
                return dets
        return []

    def embed_still(self, rgb: np.ndarray, detections: list[Detection]) -> np.ndarray:
        """Enrollment-quality vectors (several views of each face when ``enroll_augment`` is on)."""
        return self.embedder.embed(rgb, detections, self.still_augment)
