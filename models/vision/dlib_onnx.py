"""dlib's face ResNet as an ONNX graph: converted once from the ``.dat`` face_recognition_models ships.

The graph takes aligned chips as RGB pixel values (float32, N x 3 x 150 x 150, 0-255) and gives dlib's
128 numbers per chip: dlib's input normalisation (mean subtracted, /256) is its first two nodes, so
the file alone says how to feed it. Shapes are fixed by the 150 px input, which lets dlib's
"add tensors of different sizes" (``tt::add``: the smaller one is zero-padded at the end, in channels
and in rows/columns) be written as explicit Pad nodes.

Converted vectors equal dlib's within float rounding (tests/test_onnx_embedder.py: cosine distance
under 1e-4 on every shared gallery face).
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from pathlib import Path

import numpy as np

from facestream.models.types import DLIB_MODEL_ID
from facestream.models.vision.dlib_net import DlibFormatError, Layer, read_net

log = logging.getLogger(__name__)

#: Written into the converted file and the gallery's model stamp: the converted graph and dlib's own
#: network give the same vectors, so a gallery enrolled with either serves both.
MODEL_ID = DLIB_MODEL_ID


class _Graph:
    """ONNX nodes and weights being built, with the shape (channels, rows, columns) of the current output."""

    def __init__(self, size: int):
        self.nodes: list = []
        self.inits: list = []
        self.x, self.shape = "chips", (3, size, size)
        self.tags: dict[int, tuple[str, tuple[int, int, int]]] = {}

    def const(self, value: np.ndarray) -> str:
        from onnx import numpy_helper

        name = f"c{len(self.inits)}"
        self.inits.append(numpy_helper.from_array(np.ascontiguousarray(value), name))
        return name

    def node(self, op: str, inputs: list[str], **attrs) -> str:
        from onnx import helper

        out = f"{op.lower()}{len(self.nodes)}"
        self.nodes.append(helper.make_node(op, inputs, [out], **attrs))
        return out

    def add(self, layer: Layer) -> None:
        """Append ``layer`` (as read by :func:`read_net`) after the current output."""
        w, x, (c, h, wd) = layer.weights, self.x, self.shape
        if layer.kind == "input":  # dlib's normalisation: (pixel - mean) / 256
            x = self.node("Sub", [x, self.const(w["mean"].reshape(1, 3, 1, 1))])
            x = self.node("Mul", [x, self.const(np.array(1 / 256, np.float32))])
        elif layer.kind == "con":
            pad = layer.kernel // 2 if layer.stride == 1 else 0  # dlib's default padding
            x = self.node("Conv", [x, self.const(w["w"]), self.const(w["b"])], kernel_shape=[layer.kernel] * 2,
                          strides=[layer.stride] * 2, pads=[pad] * 4)
            self.shape = (layer.size, _out(h, layer.kernel, layer.stride, pad), _out(wd, layer.kernel, layer.stride, pad))
        elif layer.kind == "affine":
            x = self.node("Mul", [x, self.const(w["gamma"].reshape(1, -1, 1, 1))])
            x = self.node("Add", [x, self.const(w["beta"].reshape(1, -1, 1, 1))])
        elif layer.kind == "relu":
            x = self.node("Relu", [x])
        elif layer.kind in ("max_pool", "avg_pool"):
            x = self.node("MaxPool" if layer.kind == "max_pool" else "AveragePool", [x],
                          kernel_shape=[layer.size] * 2, strides=[layer.stride] * 2)
            self.shape = (c, _out(h, layer.size, layer.stride, 0), _out(wd, layer.size, layer.stride, 0))
        elif layer.kind == "tag":
            self.tags[layer.size] = (x, self.shape)
        elif layer.kind == "skip":
            x, self.shape = self.tags[layer.size]
        elif layer.kind == "add_prev":
            other, other_shape = self.tags[layer.size]
            target = tuple(max(a, b) for a, b in zip(self.shape, other_shape))
            x = self.node("Add", [self._pad_to(x, self.shape, target), self._pad_to(other, other_shape, target)])
            self.shape = target
        elif layer.kind == "avg_pool_all":
            x = self.node("Flatten", [self.node("GlobalAveragePool", [x])])
        elif layer.kind == "fc":
            x = self.node("MatMul", [x, self.const(w["w"])])
        elif layer.kind != "loss":  # the loss only trains
            raise DlibFormatError(f"no ONNX form for layer kind {layer.kind!r}")
        self.x = x

    def _pad_to(self, x: str, shape: tuple[int, ...], target: tuple[int, ...]) -> str:
        """``x`` zero-padded at the end of channels, rows and columns up to ``target`` (dlib's tt::add)."""
        if shape == target:
            return x
        return self.node("Pad", [x, self.const(np.array([0, 0, 0, 0, 0, *(t - s for t, s in zip(target, shape))],
                                                        np.int64))])


def build_graph(net: list[Layer]):  # -> onnx.ModelProto
    """The ONNX model computing ``net`` (layers as :func:`read_net` gives them)."""
    import onnx
    from onnx import TensorProto, helper

    g = _Graph(net[0].size)
    for layer in net:
        g.add(layer)
    g.nodes[-1].output[0] = "embedding"
    size = net[0].size
    graph = helper.make_graph(
        g.nodes, "dlib_face_recognition_resnet_model_v1",
        [helper.make_tensor_value_info("chips", TensorProto.FLOAT, ["batch", 3, size, size])],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["batch", net[-2].size])], g.inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="facestream")
    model.ir_version = 8  # readable by onnxruntime >= 1.10
    helper.set_model_props(model, {"facestream.model_id": MODEL_ID, "source": "dlib_face_recognition_resnet_model_v1.dat"})
    onnx.checker.check_model(model)
    return model


def _out(n: int, window: int, stride: int, pad: int) -> int:
    return (n + 2 * pad - window) // stride + 1


def convert(dat: str | Path, out: str | Path) -> Path:
    """Convert dlib's ``dat`` file to ONNX at ``out`` (written atomically); returns ``out``."""
    import onnx

    model = build_graph(read_net(dat))
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out.parent, suffix=".part")
    os.close(fd)
    try:
        onnx.save(model, tmp)
        os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return out


def converted_model(cache_dir: str | Path) -> Path:
    """The converted dlib model in ``cache_dir``, converted now (~1 s) if it is missing or its source
    changed: the file name carries a hash of the ``.dat`` it came from."""
    import face_recognition_models as frm

    dat = Path(frm.face_recognition_model_location())
    digest = hashlib.sha256(dat.read_bytes()).hexdigest()[:12]
    out = Path(cache_dir) / f"{dat.stem}-{digest}.onnx"
    if not out.exists():
        log.warning("converting dlib's face ResNet to ONNX, once: %s", out)
        convert(dat, out)
    return out
