"""The records the face models share: a :class:`Detection` (box, score, landmarks), a face
:class:`Aligned` for embedding with its :class:`Quality`, and the :class:`Embeddings` of a batch of faces.

Defined once here, below every implementation (nothing here imports one); the interfaces the backends
implement are in :mod:`facestream.models.protocols`. Kept valid on RedisGears 1.2's Python 3.7 (the
in-server gear imports it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional, Tuple

import numpy as np

Box = Tuple[int, int, int, int]  # left, top, right, bottom, in image pixels


#: The model id of dlib's face ResNet vectors, from dlib itself or its ONNX conversion (the same vectors).
DLIB_MODEL_ID = "dlib-resnet-v1"


@dataclass
class Detection:
    """A face box in image pixels (left, top, right, bottom), the detector's score, optional 5 landmarks."""

    box: Box
    score: float
    landmarks: Optional[np.ndarray] = None  # (5, 2) x,y: eyes, nose, mouth corners, when the detector gives them

    @property
    def size(self) -> int:
        left, top, right, bottom = self.box
        return min(right - left, bottom - top)

    def scaled(self, factor: float) -> "Detection":
        """The same detection in an image ``factor`` times larger."""
        box = tuple(round(v * factor) for v in self.box)
        lm = None if self.landmarks is None else self.landmarks * factor
        return Detection(box, self.score, lm)  # type: ignore[arg-type]

    def shifted(self, dx: int, dy: int) -> "Detection":
        """The same detection in a larger image whose crop started at (``dx``, ``dy``)."""
        left, top, right, bottom = self.box
        lm = None if self.landmarks is None else self.landmarks + np.array([dx, dy], np.float32)
        return Detection((left + dx, top + dy, right + dx, bottom + dy), self.score, lm)


@dataclass(frozen=True)
class Quality:
    """How fit a face is for naming: measured on the aligned chip and the 5 landmarks."""

    size: int  # the detection box's shorter side, frame pixels
    sharpness: float  # variance of the Laplacian of the grey 150 px chip (blur and upscaled tiny faces: low)
    yaw: float  # nose offset from the eyes' midpoint along the eye line, in eye distances: 0 frontal, ±0.5 profile

    def to_json(self) -> dict[str, float]:
        return {"size": self.size, "sharpness": round(self.sharpness, 1), "yaw": round(self.yaw, 3)}

    @classmethod
    def from_json(cls, q: dict[str, float]) -> "Quality":
        return cls(int(q.get("size", 0)), float(q.get("sharpness", 0.0)), float(q.get("yaw", 0.0)))


@dataclass
class Embeddings:
    """The vectors of a batch of faces, one row each, and each face's quality."""

    vectors: np.ndarray  # (n, dim) float32, unit rows
    quality: list[Quality]  # one per row


@dataclass
class Aligned:
    """One face placed for embedding, before any network pass: its image and box, dlib's 5 points and the
    quality measured from them (what the naming gates read)."""

    rgb: np.ndarray
    detection: Detection
    shape: Any  # dlib.full_object_detection (no stubs)
    quality: Quality
    reference: np.ndarray  # dlib's 150 px chip at its own padding: the quality's, and a view's when they coincide
