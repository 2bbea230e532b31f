"""Face embedders: RGB image + boxes → L2-normalised vectors (one row per box).

The default is dlib's ResNet (the face_recognition model, 128-d, 99.38% on LFW), fed faces
aligned with dlib's 5-point shape predictor. Vectors are unit length, so the squared L2
distance RediSearch returns is ``2 - 2·cos``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

import numpy as np

from facestream.errors import BackendUnavailable
from models.detect import Detection

if TYPE_CHECKING:
    from models.protocols import Embedder


#: Paddings around the aligned face for the enrollment views (dlib's own default is 0.25). Measured on
#: the LFW pairs of ../shared: 1 view 0.983, these 3 views 0.991 (README, "Models and accuracy").
AUGMENT_PADDINGS = (0.2, 0.25, 0.3)


class DlibEmbedder:
    """dlib's face_recognition_model_v1 with 5-point alignment; models load once per instance."""

    name = "dlib"
    dim = 128

    def __init__(self) -> None:
        import dlib
        import face_recognition_models as frm

        self._dlib = dlib
        self._shape = dlib.shape_predictor(frm.pose_predictor_five_point_model_location())
        self._net = dlib.face_recognition_model_v1(frm.face_recognition_model_location())

    def embed(self, rgb: np.ndarray, detections: Sequence[Detection], augment: bool = False) -> np.ndarray:
        if not detections:
            return np.zeros((0, self.dim), np.float32)
        shapes = self._dlib.full_object_detections()
        for d in detections:
            shapes.append(self._shape(rgb, self._dlib.rectangle(*d.box)))
        if not augment:  # the live path: one pass per face, batched
            return normalize(np.asarray(self._net.compute_face_descriptor(rgb, shapes), dtype=np.float32))
        # Enrollment quality: the mean over the aligned face chip cut with three paddings. Deterministic
        # (dlib's num_jitters draws from a generator shared by the model, so results depend on call order).
        out = []
        for shape in shapes:
            chips = [self._dlib.get_face_chip(rgb, shape, 150, pad) for pad in AUGMENT_PADDINGS]
            out.append(np.asarray(self._net.compute_face_descriptor(chips), dtype=np.float32).sum(axis=0))
        return normalize(np.asarray(out))


def normalize(vecs: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm."""
    norms = np.linalg.norm(vecs, axis=1, keepdims=True)
    return (vecs / np.maximum(norms, 1e-12)).astype(np.float32)


def make_embedder(name: str) -> Embedder:
    """The embedder backend called ``name``."""
    if name == "dlib":
        return DlibEmbedder()
    raise BackendUnavailable(f"unknown embedder {name!r}; available: dlib")
