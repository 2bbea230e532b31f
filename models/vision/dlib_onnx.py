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


def build_graph(net: list[Layer]):  # -> onnx.ModelProto
    """The ONNX model computing ``net`` (layers as :func:`read_net` gives them)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    nodes: list = []
    inits: list = []

    def const(name: str, value: np.ndarray) -> str:
        inits.append(numpy_helper.from_array(np.ascontiguousarray(value), name))
        return name

    def node(op: str, inputs: list[str], **attrs) -> str:
        out = f"{op.lower()}{len(nodes)}"
        nodes.append(helper.make_node(op, inputs, [out], **attrs))
        return out

    size = net[0].size
    x = node("Sub", ["chips", const("mean", net[0].weights["mean"].reshape(1, 3, 1, 1))])
    x = node("Mul", [x, const("scale", np.array(1 / 256, np.float32))])
    shape = (3, size, size)  # channels, rows, columns of x
    tags: dict[int, tuple[str, tuple[int, int, int]]] = {}
    for i, layer in enumerate(net[1:-1], 1):
        w = layer.weights
        if layer.kind == "con":
            pad = layer.kernel // 2 if layer.stride == 1 else 0  # dlib's default padding
            x = node("Conv", [x, const(f"w{i}", w["w"]), const(f"b{i}", w["b"])], kernel_shape=[layer.kernel] * 2,
                     strides=[layer.stride] * 2, pads=[pad] * 4)
            shape = (layer.size, *(_out(n, layer.kernel, layer.stride, pad) for n in shape[1:]))
        elif layer.kind == "affine":
            x = node("Mul", [x, const(f"g{i}", w["gamma"].reshape(1, -1, 1, 1))])
            x = node("Add", [x, const(f"a{i}", w["beta"].reshape(1, -1, 1, 1))])
        elif layer.kind == "relu":
            x = node("Relu", [x])
        elif layer.kind in ("max_pool", "avg_pool"):
            op = "MaxPool" if layer.kind == "max_pool" else "AveragePool"
            x = node(op, [x], kernel_shape=[layer.size] * 2, strides=[layer.stride] * 2)
            shape = (shape[0], *(_out(n, layer.size, layer.stride, 0) for n in shape[1:]))
        elif layer.kind == "tag":
            tags[layer.size] = (x, shape)
        elif layer.kind == "skip":
            x, shape = tags[layer.size]
        elif layer.kind == "add_prev":
            other, other_shape = tags[layer.size]
            target = tuple(max(a, b) for a, b in zip(shape, other_shape))
            x = node("Add", [_pad_to(node, const, x, shape, target, i), _pad_to(node, const, other, other_shape, target, -i)])
            shape = target
        elif layer.kind == "avg_pool_all":
            x = node("Flatten", [node("GlobalAveragePool", [x])])
            shape = (shape[0], 1, 1)
        elif layer.kind == "fc":
            x = node("MatMul", [x, const(f"w{i}", w["w"])])
        else:
            raise DlibFormatError(f"no ONNX form for layer kind {layer.kind!r}")
    nodes[-1].output[0] = "embedding"
    graph = helper.make_graph(
        nodes, "dlib_face_recognition_resnet_model_v1",
        [helper.make_tensor_value_info("chips", TensorProto.FLOAT, ["batch", 3, size, size])],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["batch", net[-2].size])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="facestream")
    model.ir_version = 8  # readable by onnxruntime >= 1.10
    helper.set_model_props(model, {"facestream.model_id": MODEL_ID, "source": "dlib_face_recognition_resnet_model_v1.dat"})
    onnx.checker.check_model(model)
    return model


def _out(n: int, window: int, stride: int, pad: int) -> int:
    return (n + 2 * pad - window) // stride + 1


def _pad_to(node, const, x: str, shape: tuple[int, int, int], target: tuple[int, int, int], i: int) -> str:
    """``x`` zero-padded at the end of channels, rows and columns up to ``target`` (dlib's tt::add)."""
    if shape == target:
        return x
    pads = np.array([0, 0, 0, 0, 0, *(t - s for t, s in zip(target, shape))], np.int64)
    return node("Pad", [x, const(f"pad{i}", pads)])


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
