"""MTCNN on TensorFlow (the PyPI ``mtcnn`` package ships its weights): an optional extra."""

from __future__ import annotations

import numpy as np

from facestream.errors import BackendUnavailable
from facestream.models.types import Detection

LANDMARKS = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")


class MtcnnDetector:
    """MTCNN with its own image pyramid (faces from 20 px) and 5 landmarks."""

    name = "mtcnn"

    def __init__(self, min_score: float = 0.9):
        try:
            from mtcnn import MTCNN
        except ImportError:
            raise BackendUnavailable("detector 'mtcnn' needs the optional extra: pip install 'facestream[mtcnn]' "
                                     "(or scripts/setup.sh --mtcnn)") from None
        self._det = MTCNN()
        self.min_score = min_score

    def detect(self, rgb: np.ndarray) -> list[Detection]:
        h, w = rgb.shape[:2]
        out = []
        for f in self._det.detect_faces(rgb):
            if f["confidence"] < self.min_score:
                continue
            x, y, bw, bh = f["box"]
            lm = np.array([f["keypoints"][k] for k in LANDMARKS], np.float32)
            box = (max(0, x), max(0, y), min(w, x + bw), min(h, y + bh))
            out.append(Detection(box, float(f["confidence"]), lm))
        return out
