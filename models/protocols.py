"""The detector and embedder interfaces every backend implements (structural types).

Only imported for type checking, so that the modules the in-server gear imports stay valid on
RedisGears 1.2's Python 3.7, which has no ``typing.Protocol``.
"""

from __future__ import annotations

from typing import Protocol, Sequence

import numpy as np

from models.detect import Detection


class Detector(Protocol):
    name: str

    def detect(self, rgb: np.ndarray, upsample: int | None = None) -> list[Detection]:
        """All faces in an RGB uint8 image (``upsample``: passes for this call, default the detector's)."""


class Embedder(Protocol):
    name: str
    dim: int

    def embed(self, rgb: np.ndarray, detections: Sequence[Detection], augment: bool = False) -> np.ndarray:
        """float32 array of shape (len(detections), dim), rows of unit length.

        ``augment``: average several views of each face (slower, a steadier vector for enrollment).
        """
