"""The face embedder: RGB image + boxes → L2-normalised vectors (one row per box) and a quality estimate.

Each face is aligned (:mod:`.align`: dlib's 5-point chip, or the ArcFace template), then every chip of
the call goes through the network (:mod:`.networks`: ONNX by default, dlib's C++ for reference) in one
batch. Vectors are unit length, so the squared L2 distance RediSearch returns is ``2 - 2·cos``.

A face can be embedded from several *views* (the aligned chip cut with other paddings, and mirrored),
averaged into one vector: steadier, at the cost of one network pass per view. Measured on ../shared
(docs/naming.md): views of the probe are the largest single gain in naming.

Quality (sharpness, head turn) is measured on dlib's chip and 5 points whatever the model, so the
naming gates mean the same with any network.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Sequence

import numpy as np

from facestream.errors import BackendUnavailable
from facestream.models.types import Aligned, Detection, Embeddings, Quality
from facestream.models.vision.align import DLIB_PADDING, arcface_chip, arcface_points, dlib_chip, mirrored
from facestream.models.vision.networks import DlibNetwork, OnnxNetwork

if TYPE_CHECKING:
    from facestream.config import Settings
    from facestream.models.protocols import Network

#: View sets by size, chosen on ../shared (docs/naming.md): 1 is the plain chip (dlib's padding 0.25); 2
#: that chip and its mirror image (LFW pairs: 1 view 0.983, 2 views 0.993); 4 the chip cut with paddings 0.2
#: and 0.3 and their mirrors (known probes named at 1% false accepts: 1 view 0.80, 4 views 0.85).
VIEWS = {1: ((0.25, False),), 2: ((0.25, False), (0.25, True)),
         4: ((0.2, False), (0.3, False), (0.2, True), (0.3, True))}
QUALITY_CHIP_PX = 150  # sharpness is measured on dlib's 150 px chip (name_min_sharpness is in its units)

#: embedder setting -> its network, built from the settings
NETWORKS: dict[str, Callable[[Settings], Network]] = {
    "onnx": OnnxNetwork.of,
    "dlib": lambda s: DlibNetwork(),
}


class FaceEmbedder:
    """Aligns faces the way ``network`` was trained (``align``: dlib or arcface) and embeds them."""

    def __init__(self, network: Network, align: str = "dlib", name: str = "onnx"):
        import cv2
        import dlib
        import face_recognition_models as frm

        self._cv2, self._dlib = cv2, dlib
        self._shape = dlib.shape_predictor(frm.pose_predictor_five_point_model_location())
        self.network, self.alignment, self.name = network, align, name
        self.dim, self.model_id = network.dim, network.model_id

    def embed(self, rgb: np.ndarray, detections: Sequence[Detection], views: int = 1) -> Embeddings:
        """One vector per detection, the mean of ``views`` (1, 2 or 4) network passes, one batch for all."""
        return self.embed_many([(rgb, detections)], views)[0]

    def embed_many(self, images: Sequence[tuple[np.ndarray, Sequence[Detection]]], views: int = 1) -> list[Embeddings]:
        """:meth:`embed` for several images, every chip of every image in one network batch (~15% less
        network time per chip at 16 chips than at 2)."""
        faces = [self.align(rgb, detections) for rgb, detections in images]
        every = [face for found in faces for face in found]
        vectors = self.vectors(every, [views] * len(every))
        out, at = [], 0
        for found in faces:
            out.append(Embeddings(vectors[at: at + len(found)], [face.quality for face in found]))
            at += len(found)
        return out

    def align(self, rgb: np.ndarray, detections: Sequence[Detection]) -> list[Aligned]:
        """Each face's 5 points and quality: all a naming gate needs, before any network pass (~1.5 ms a face)."""
        out = []
        for d in detections:
            shape = self._shape(rgb, self._dlib.rectangle(*predictor_box(d)))
            reference = dlib_chip(rgb, shape, QUALITY_CHIP_PX, DLIB_PADDING)
            out.append(Aligned(rgb, d, shape, Quality(d.size, self._sharpness(reference), _yaw(shape)), reference))
        return out

    def vectors(self, faces: Sequence[Aligned], views: Sequence[int]) -> np.ndarray:
        """One unit vector per aligned face, the mean of its ``views`` (1, 2 or 4 each) network passes; every
        chip in one batch."""
        for v in set(views):
            if v not in VIEWS:
                raise ValueError(f"views must be one of {sorted(VIEWS)}, not {v}")
        chips = [chip for face, v in zip(faces, views) for chip in self._views(face, v)]
        if not chips:
            return np.zeros((0, self.dim), np.float32)
        return normalize(np.add.reduceat(self.network(chips), np.cumsum([0, *views[:-1]]), axis=0))

    def _views(self, face: Aligned, views: int) -> list[np.ndarray]:
        """The chips of one face's ``views``: cut at each padding, and mirrored."""
        reuse = self.alignment == "dlib" and self.network.size == QUALITY_CHIP_PX
        cut = {pad: face.reference if reuse and pad == DLIB_PADDING else self._chip(face, pad)
               for pad, _ in VIEWS[views]}
        return [mirrored(cut[pad]) if mirror else cut[pad] for pad, mirror in VIEWS[views]]

    def _chip(self, face: Aligned, padding: float) -> np.ndarray:
        if self.alignment == "dlib":
            return dlib_chip(face.rgb, face.shape, self.network.size, padding)
        return arcface_chip(face.rgb, arcface_points(face.detection.landmarks, face.shape), self.network.size, padding)

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


def make_network(settings: Settings) -> Network:
    """The network the settings name (``embedder``, and for onnx its model and input contract)."""
    make = NETWORKS.get(settings.embedder)
    if make is None:
        raise BackendUnavailable(f"unknown embedder {settings.embedder!r}; available: {', '.join(NETWORKS)}")
    return make(settings)


def make_embedder(settings: Settings) -> FaceEmbedder:
    """The embedder the settings name: its network, aligned as the network expects."""
    align = settings.embedder_align if settings.embedder == "onnx" else "dlib"
    return FaceEmbedder(make_network(settings), align, settings.embedder)
