"""Face detectors: RGB image → :class:`Detection` boxes. Pick one with the ``detector`` setting.

- ``hog`` (default): dlib's HOG + linear SVM. Fast on CPU (~14 ms per 640x360 frame at upsample 0),
  frontal faces of ~80 px and up (~40 px with upsample 1).
- ``cnn``: dlib's MMOD CNN (weights from face_recognition_models). More robust to pose, far slower on CPU.
- ``mtcnn``: MTCNN on TensorFlow (``pip install 'facestream[mtcnn]'``); finds small and turned faces.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from facestream.errors import BackendUnavailable
from facestream.models.types import Detection

if TYPE_CHECKING:
    from facestream.models.protocols import Detector


def _clip(box: tuple[int, int, int, int], shape: tuple[int, ...]) -> tuple[int, int, int, int]:
    h, w = shape[:2]
    left, top, right, bottom = box
    return max(0, left), max(0, top), min(w, right), min(h, bottom)


class HogDetector:
    """dlib's frontal HOG detector."""

    name = "hog"

    def __init__(self, upsample: int = 1):
        import dlib

        self._det = dlib.get_frontal_face_detector()
        self.upsample = upsample

    def detect(self, rgb: np.ndarray, upsample: int | None = None) -> list[Detection]:
        rects, scores, _ = self._det.run(rgb, self.upsample if upsample is None else upsample, 0.0)
        return [
            Detection(_clip((r.left(), r.top(), r.right(), r.bottom()), rgb.shape), float(s))
            for r, s in zip(rects, scores)
        ]


class CnnDetector:
    """dlib's MMOD CNN detector (mmod_human_face_detector.dat from face_recognition_models)."""

    name = "cnn"

    def __init__(self, upsample: int = 1):
        import dlib
        import face_recognition_models as frm

        self._det = dlib.cnn_face_detection_model_v1(frm.cnn_face_detector_model_location())
        self.upsample = upsample

    def detect(self, rgb: np.ndarray, upsample: int | None = None) -> list[Detection]:
        out = []
        for d in self._det(rgb, self.upsample if upsample is None else upsample):
            r = d.rect
            out.append(Detection(_clip((r.left(), r.top(), r.right(), r.bottom()), rgb.shape), float(d.confidence)))
        return out


class MtcnnDetector:
    """MTCNN (the PyPI ``mtcnn`` package ships its weights) on TensorFlow; an optional extra."""

    name = "mtcnn"

    def __init__(self, min_score: float = 0.9):
        try:
            from mtcnn import MTCNN
        except ImportError:
            raise BackendUnavailable(
                "detector 'mtcnn' needs the optional extra: pip install 'facestream[mtcnn]' "
                "(or scripts/setup.sh --mtcnn)"
            ) from None
        self._det = MTCNN()
        self.min_score = min_score

    def detect(self, rgb: np.ndarray, upsample: int | None = None) -> list[Detection]:
        """MTCNN has its own image pyramid (down to 20 px faces); ``upsample`` does not apply."""
        out = []
        for f in self._det.detect_faces(rgb):
            if f["confidence"] < self.min_score:
                continue
            x, y, w, h = f["box"]
            kp = f["keypoints"]
            lm = np.array([kp[k] for k in ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")], float)
            out.append(Detection(_clip((x, y, x + w, y + h), rgb.shape), float(f["confidence"]), lm))
        return out


def make_detector(name: str, upsample: int = 1) -> Detector:
    """The detector backend called ``name`` (hog, cnn, mtcnn)."""
    if name == "hog":
        return HogDetector(upsample)
    if name == "cnn":
        return CnnDetector(upsample)
    if name == "mtcnn":
        return MtcnnDetector()
    raise BackendUnavailable(f"unknown detector {name!r}; choose hog, cnn or mtcnn")
