"""The face analysis every stage (worker, enrollment, evaluation) shares: the detector and embedder,
and how live frames and still photos are searched (the :class:`DetectionProfile`)."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

import numpy as np

from facestream.models.types import Detection, Embeddings
from facestream.models.vision.detect import make_detector
from facestream.models.vision.embed import make_embedder
from facestream.models.vision.image import rescale
from facestream.models.vision.profile import DetectionProfile

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
    threads, so each thread gets its own (they build in milliseconds; RetinaFace's threads share one
    onnxruntime session).
    """

    def __init__(self, settings: Settings):
        self.settings = settings
        self.profile = DetectionProfile.of(settings)
        self._local = threading.local()
        self.detector  # build it now: a bad backend fails at start-up, not on the first frame
        self.embedder: Embedder = make_embedder(settings)
        self.min_face_px = settings.min_face_px
        self.still_views = settings.enroll_views
        self.probe_views = settings.probe_views
        self._fallback_name = settings.enroll_fallback_detector
        self._fallback: Detector | None = None  # built on first use: most photos do not need it

    @property
    def detector(self) -> Detector:
        """This thread's detector."""
        det = getattr(self._local, "detector", None)
        if det is None:
            det = self._local.detector = make_detector(self.profile.detector, self.settings)
        return det

    @property
    def dim(self) -> int:
        return self.embedder.dim

    def detect(self, rgb: np.ndarray, scale: float | None = None, detector: Detector | None = None) -> list[Detection]:
        """Faces in ``rgb``, searched on a copy resized by ``scale`` (default: the profile's whole-frame
        scale) and mapped back to ``rgb``'s pixels."""
        if scale is None:
            scale = self.profile.frame_scale(rgb.shape[1], rgb.shape[0])
        dets = (detector or self.detector).detect(rescale(rgb, scale))
        if scale != 1.0:
            dets = [d.scaled(1 / scale) for d in dets]
        return [d for d in dets if d.size >= self.min_face_px]

    def detect_frame(self, rgb: np.ndarray, regions: list[Region] | None = None) -> list[Detection]:
        """A live frame's faces: in the ``regions`` a camera's scan chose (balanced profile), else by
        :meth:`detect` over the whole frame (fast and thorough profiles, and the in-server gear)."""
        if regions is None:
            return self.detect(rgb)
        from facestream.models.vision.regions import detect_regions  # the gear never plans regions

        return detect_regions(self.detector, rgb, regions, self.min_face_px)

    def detect_still(self, rgb: np.ndarray) -> list[Detection]:
        """Detection for enrollment/search photos, cheapest first: the photo at most 1280 px, then enlarged
        2x, then (nothing found) the ``enroll_fallback_detector`` at that scale."""
        scales = self.profile.still_scales(rgb.shape[1], rgb.shape[0])
        for scale in scales:
            dets = self.detect(rgb, scale)
            if dets:
                return dets
        if self._fallback_name == "none":
            return []
        if self._fallback is None:
            self._fallback = make_detector(self._fallback_name, self.settings)
        return self.detect(rgb, scales[-1], self._fallback)

    def embed_still(self, rgb: np.ndarray, detections: list[Detection]) -> Embeddings:
        """Enrollment-quality vectors (``enroll_views`` views of each face)."""
        return self.embedder.embed(rgb, detections, self.still_views)
