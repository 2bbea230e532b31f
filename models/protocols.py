"""The detector and embedder interfaces every backend implements (structural types).

Only imported for type checking, so that the modules the in-server gear imports stay valid on
RedisGears 1.2's Python 3.7, which has no ``typing.Protocol``.
"""

from __future__ import annotations

from typing import Protocol, Sequence

import numpy as np

from facestream.models.types import Aligned, Detection, Embeddings


class Detector(Protocol):
    """A face detector backend (see :mod:`facestream.models.vision.detect` for the registry)."""

    name: str

    def detect(self, rgb: np.ndarray) -> list[Detection]:
        """All faces in an RGB uint8 image, in its pixels (the caller resizes: see DetectionProfile)."""


class Network(Protocol):
    """An embedding network (see :mod:`facestream.models.vision.networks`): aligned chips in, numbers out."""

    model_id: str  # which vectors it makes: a gallery is enrolled with one model only
    dim: int
    size: int  # the chip's side in px

    def __call__(self, chips: Sequence[np.ndarray]) -> np.ndarray:
        """(len(chips), dim) float32 for RGB uint8 chips of ``size`` px, in one batch."""


class Embedder(Protocol):
    name: str
    model_id: str
    dim: int

    def embed(self, rgb: np.ndarray, detections: Sequence[Detection], views: int = 1) -> Embeddings:
        """One unit vector per detection (float32, shape (len(detections), dim)) and its quality.

        ``views``: average this many views of each face (slower, a steadier vector).
        """

    def align(self, rgb: np.ndarray, detections: Sequence[Detection]) -> list[Aligned]:
        """Each face placed for embedding and its quality measured, before any network pass."""

    def vectors(self, faces: Sequence[Aligned], views: Sequence[int]) -> np.ndarray:
        """One unit vector per aligned face, the mean of its own number of views, in one batch."""


class PolicySettings(Protocol):
    """The settings a decision policy is made of (see :meth:`facestream.models.matcher.Policy.of`)."""

    match_threshold: float
    match_margin: float
    cohort_margin: float
    name_min_face_px: int
    name_min_sharpness: float
    name_max_yaw: float
    max_false_accepts: float
