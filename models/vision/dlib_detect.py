"""dlib's face detectors (``hog``, ``cnn``): boxes only, no landmarks (the embedder's 5-point predictor
aligns their faces). Instances are not thread-safe: the analyzer keeps one per thread."""

from __future__ import annotations

import numpy as np

from facestream.models.types import Detection


def _clip(left: int, top: int, right: int, bottom: int, shape: tuple[int, ...]) -> tuple[int, int, int, int]:
    h, w = shape[:2]
    return max(0, left), max(0, top), min(w, right), min(h, bottom)


class HogDetector:
    """dlib's frontal HOG + linear SVM: ~14 ms for a 640x360 image, frontal faces from ~64 px."""

    name = "hog"

    def __init__(self) -> None:
        import dlib

        self._det = dlib.get_frontal_face_detector()

    def detect(self, rgb: np.ndarray) -> list[Detection]:
        rects, scores, _ = self._det.run(rgb, 0, 0.0)
        return [Detection(_clip(r.left(), r.top(), r.right(), r.bottom(), rgb.shape), float(s))
                for r, s in zip(rects, scores)]


class CnnDetector:
    """dlib's MMOD CNN (mmod_human_face_detector.dat from face_recognition_models): turned faces too, slow on CPU."""

    name = "cnn"

    def __init__(self) -> None:
        import dlib
        import face_recognition_models as frm

        self._det = dlib.cnn_face_detection_model_v1(frm.cnn_face_detector_model_location())

    def detect(self, rgb: np.ndarray) -> list[Detection]:
        return [Detection(_clip(d.rect.left(), d.rect.top(), d.rect.right(), d.rect.bottom(), rgb.shape),
                          float(d.confidence)) for d in self._det(rgb, 0)]
