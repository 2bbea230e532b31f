"""The face analysis every stage (worker, enrollment, evaluation) shares: the detector and embedder,
and how live frames and still photos are searched (the :class:`DetectionProfile`)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

import numpy as np

from facestream.models.types import Detection, Embeddings
from facestream.models.vision.detect import make_detector
from facestream.models.vision.embed import make_embedder
from facestream.models.vision.image import rescale
from facestream.models.vision.profile import DetectionProfile

#: The frame size a worker warms up for before its first frame (the common camera's): other sizes are warmed by
#: their first frame.
WARM_FRAME = (1920, 1080)

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

    def warm_up(self, width: int = WARM_FRAME[0], height: int = WARM_FRAME[1], embed: bool = True) -> None:
        """Run this thread's detector at every kind of region a live frame of ``width`` x ``height`` is searched
        at (the whole frame, a sweep tile, faces close up, large and small), and (``embed``) the embedder on
        a frame's worth of first and later looks, on a synthetic frame: onnxruntime sizes its sessions' memory on
        its first runs (RetinaFace's first 1080p frame: 157 ms cold, 64 ms warm), so a worker does this before
        it says it is ready."""
        from facestream.models.vision.regions import Region
        from facestream.models.vision.scan import CameraScan

        rgb = np.random.default_rng(0).integers(0, 256, (height, width, 3), np.uint8)
        if self.profile.scans:
            scan = CameraScan(self.profile)
            regions = scan.regions(rgb)
            for side in (48, 160):  # a small face and a close-up, where the tracked faces are searched
                box = (0, 0, min(width, 4 * side), min(height, 4 * side))
                regions.append(Region(box, min(scan.scale, 1.6 * self.profile.scale_for(side))))
            self.detect_frame(rgb, regions)
        else:
            self.detect_frame(rgb)
        if embed:
            face = Detection((width // 2 - 80, height // 2 - 80, width // 2 + 80, height // 2 + 80), 1.0)
            views = [self.probe_views] * max(1, self.settings.max_viewed_faces) + [1] * self.settings.looks_per_frame
            self.embedder.vectors(self.embedder.align(rgb, [face] * len(views)), views)  # a frame's first and later looks

    def embed_still(self, rgb: np.ndarray, detections: list[Detection]) -> Embeddings:
        """Enrollment-quality vectors (``enroll_views`` views of each face)."""
        return self.embedder.embed(rgb, detections, self.still_views)


def detection_pool(analyzer: FaceAnalyzer, threads: int) -> ThreadPoolExecutor | None:
    """Every model run once in this thread (:meth:`FaceAnalyzer.warm_up`), and ``threads`` detection threads
    (None for fewer than 2), each with its detector built and run once: what a worker does before it says it
    is ready, so its first frame costs what any frame does."""
    analyzer.warm_up()
    if threads < 2:
        return None
    pool = ThreadPoolExecutor(threads, thread_name_prefix="detect", initializer=lambda: analyzer.warm_up(embed=False))
    ready = threading.Barrier(threads)
    for f in [pool.submit(ready.wait) for _ in range(threads)]:
        f.result()
    return pool
