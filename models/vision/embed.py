"""Face embedders: RGB image + boxes → L2-normalised vectors (one row per box) and a quality estimate.

The default is dlib's ResNet (the face_recognition model, 128-d, 99.38% on LFW), fed faces
aligned with dlib's 5-point shape predictor. Vectors are unit length, so the squared L2
distance RediSearch returns is ``2 - 2·cos``.

A face can be embedded from several *views* (the aligned chip cut with other paddings, and mirrored),
averaged into one vector: steadier, at the cost of one network pass per view (~16 ms on this CPU).
Measured on ../shared (README, "Naming"): views of the probe are the largest single gain in naming.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

import numpy as np

from facestream.errors import BackendUnavailable
from facestream.models.types import Detection, Embeddings, Quality

if TYPE_CHECKING:
    from facestream.models.protocols import Embedder

#: View sets by size, chosen on ../shared (README, "Naming"): 1 is dlib's own chip (padding 0.25); 2 that
#: chip and its mirror image (LFW pairs: 1 view 0.983, 2 views 0.993); 4 the chip cut with paddings 0.2
#: and 0.3 and their mirrors (known probes named at 1% false accepts: 1 view 0.80, 4 views 0.85).
VIEWS = {1: ((0.25, False),), 2: ((0.25, False), (0.25, True)),
         4: ((0.2, False), (0.3, False), (0.2, True), (0.3, True))}
CHIP_PX = 150


class DlibEmbedder:
    """dlib's face_recognition_model_v1 with 5-point alignment; models load once per instance."""

    name = "dlib"
    dim = 128

    def __init__(self) -> None:
        import cv2
        import dlib
        import face_recognition_models as frm

        self._cv2, self._dlib = cv2, dlib
        self._shape = dlib.shape_predictor(frm.pose_predictor_five_point_model_location())
        self._net = dlib.face_recognition_model_v1(frm.face_recognition_model_location())

    def embed(self, rgb: np.ndarray, detections: Sequence[Detection], views: int = 1) -> Embeddings:
        """One vector per detection, the mean of ``views`` (1, 2 or 4) network passes, one batch for all."""
        if views not in VIEWS:
            raise ValueError(f"views must be one of {sorted(VIEWS)}, not {views}")
        if not detections:
            return Embeddings(np.zeros((0, self.dim), np.float32), [])
        chips, quality = [], []
        for d in detections:
            shape = self._shape(rgb, self._dlib.rectangle(*predictor_box(d)))
            cut = {pad: self._dlib.get_face_chip(rgb, shape, CHIP_PX, pad) for pad, _ in VIEWS[views]}
            chips += [np.ascontiguousarray(cut[pad][:, ::-1]) if mirror else cut[pad] for pad, mirror in VIEWS[views]]
            quality.append(Quality(d.size, self._sharpness(next(iter(cut.values()))), _yaw(shape)))
        out = np.asarray(self._net.compute_face_descriptor(chips), dtype=np.float32)
        return Embeddings(normalize(out.reshape(len(detections), views, self.dim).sum(axis=1)), quality)

    def _sharpness(self, chip: np.ndarray) -> float:
        grey = self._cv2.cvtColor(chip, self._cv2.COLOR_RGB2GRAY)
        return float(self._cv2.Laplacian(grey, self._cv2.CV_64F).var())


def predictor_box(d: Detection) -> tuple[int, int, int, int]:
    """The box dlib's 5-point predictor is given: its own detector's kind of box (square, brows to lip).

    RetinaFace's boxes are taller (forehead to chin) and the predictor, trained on dlib's boxes, places
    its points worse in them; a detection with landmarks gets a dlib-like box cut around its eyes and
    mouth instead (fitted on 333 shared photos where both found one face: centre and size within ~5%).
    """
    if d.landmarks is None:
        return d.box
    lm = np.asarray(d.landmarks, np.float64)
    eye, mouth = (lm[0] + lm[1]) / 2, (lm[3] + lm[4]) / 2
    size = 1.36 * np.linalg.norm(lm[1] - lm[0]) + 1.02 * np.linalg.norm(mouth - eye)
    cx, cy = eye[0] + 0.30 * (mouth[0] - eye[0]), eye[1] + 0.49 * (mouth[1] - eye[1])
    return round(cx - size / 2), round(cy - size / 2), round(cx + size / 2), round(cy + size / 2)


def _yaw(shape) -> float:  # dlib.full_object_detection (no stubs)
    """Signed head turn from dlib's 5 points (0-1 and 2-3: the corners of each eye, 4: below the nose)."""
    p = np.array([(shape.part(i).x, shape.part(i).y) for i in range(5)], np.float64)
    e1, e2 = p[0:2].mean(axis=0), p[2:4].mean(axis=0)
    axis = e2 - e1
    dist = float(np.linalg.norm(axis))
    if dist < 1e-6:
        return 1.0
    return float(np.dot(p[4] - (e1 + e2) / 2, axis / dist) / dist)


def normalize(vecs: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm."""
    norms = np.linalg.norm(vecs, axis=1, keepdims=True)
    return (vecs / np.maximum(norms, 1e-12)).astype(np.float32)


def make_embedder(name: str) -> Embedder:
    """The embedder backend called ``name``."""
    if name == "dlib":
        return DlibEmbedder()
    raise BackendUnavailable(f"unknown embedder {name!r}; available: dlib")
