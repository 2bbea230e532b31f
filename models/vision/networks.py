"""Embedding networks: a batch of aligned chips in, one row of numbers per chip out.

- :class:`OnnxNetwork` (``embedder: onnx``, the default): any ONNX model on onnxruntime, by default
  dlib's ResNet converted from face_recognition_models' ``.dat`` (:mod:`.dlib_onnx`, once, into
  ``<data_dir>/models``). A model of your own (an ArcFace-style one: 112 px, 512 numbers) plugs in with
  ``embedder_model`` and its input contract (``embedder_align``, ``embedder_colour``, ``embedder_mean``,
  ``embedder_std``); its chip size and output size are read from the model.
- :class:`DlibNetwork` (``embedder: dlib``): dlib's own C++ network, the reference the conversion is
  tested against.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np

from facestream.errors import BackendUnavailable
from facestream.models.vision.dlib_onnx import MODEL_ID, converted_model
from facestream.models.vision.runtime import session

if TYPE_CHECKING:
    from facestream.config import Settings

log = logging.getLogger(__name__)
MAX_BATCH = 32  # chips per onnxruntime call: bounds the activations' memory (~30 MB per 32 dlib chips)
DEFAULT_SIZE = {"dlib": 150, "arcface": 112}  # chip px for a model whose input size is not fixed


class DlibNetwork:
    """dlib's ``face_recognition_model_v1`` (128 numbers from a 150 px dlib chip)."""

    model_id, dim, size = MODEL_ID, 128, 150

    def __init__(self) -> None:
        import dlib
        import face_recognition_models as frm

        self._net = dlib.face_recognition_model_v1(frm.face_recognition_model_location())

    def __call__(self, chips: Sequence[np.ndarray]) -> np.ndarray:
        return np.asarray(self._net.compute_face_descriptor(list(chips)), np.float32).reshape(len(chips), self.dim)


class OnnxNetwork:
    """An ONNX embedding model (input N x 3 x H x W float32, output N x dim) and how its chips are fed:
    colour order, then ``(pixel - mean) / std``."""

    def __init__(self, path: Path, align: str = "dlib", colour: str = "rgb", mean: float = 0.0, std: float = 1.0,
                 threads: int = 1, providers: str = "cpu"):
        if not path.is_file():
            raise BackendUnavailable(f"embedder_model {path}: no such file")
        try:
            self._session = session(str(path.resolve()), path.read_bytes, threads, providers)
        except Exception as e:  # onnxruntime's own errors (not an ONNX file, unsupported ops) name no type to catch
            raise BackendUnavailable(f"embedder_model {path}: onnxruntime cannot load it: {str(e).splitlines()[0]}") from None
        inp = self._session.get_inputs()[0]
        if len(inp.shape) != 4 or inp.shape[1] != 3:
            raise BackendUnavailable(f"embedder_model {path}: input {inp.name} is {inp.shape}; expected N x 3 x H x W")
        h, w = inp.shape[2:]
        fixed = isinstance(h, int) and isinstance(w, int)
        if fixed and h != w:
            raise BackendUnavailable(f"embedder_model {path}: input {h}x{w} is not square")
        self._input, self.size = inp.name, h if fixed else DEFAULT_SIZE[align]
        self._bgr, self._mean, self._std = colour == "bgr", np.float32(mean), np.float32(std)
        self.dim = int(self(np.zeros((1, self.size, self.size, 3), np.uint8)).shape[1])
        meta = self._session.get_modelmeta().custom_metadata_map
        self.model_id = meta.get("facestream.model_id") or f"{path.stem}-{_digest(path)}"

    @classmethod
    def of(cls, s: Settings) -> OnnxNetwork:
        path = Path(s.embedder_model) if s.embedder_model else converted_model(Path(s.data_dir) / "models")
        return cls(path, s.embedder_align, s.embedder_colour, s.embedder_mean, s.embedder_std, s.onnx_threads,
                   s.onnx_providers)

    def __call__(self, chips: Sequence[np.ndarray]) -> np.ndarray:
        x = np.asarray(chips, np.float32)
        if self._bgr:
            x = x[..., ::-1]
        x = ((x - self._mean) / self._std).transpose(0, 3, 1, 2)
        out = [self._session.run(None, {self._input: np.ascontiguousarray(x[i: i + MAX_BATCH])})[0]
               for i in range(0, len(x), MAX_BATCH)]
        return np.concatenate(out).reshape(len(x), -1).astype(np.float32)


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:12]
