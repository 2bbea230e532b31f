"""Reads dlib's serialised face ResNet (``dlib_face_recognition_resnet_model_v1.dat``) into plain layers.

dlib writes a network as nested templates: each wrapper writes its version, then the network below
it, then its own details on the way back up (``dlib/dnn/core.h``: ``add_layer``, ``add_tag_layer``,
``add_skip_layer``, ``add_loss_layer``). Tags and skips carry no details, so the file alone does not
say where they are: :func:`resnet_v1` spells out the network's type (dlib's
``examples/dnn_face_recognition_ex.cpp``, ``anet_type``) and :func:`read_net` reads the file along
it, checking every layer's kind and shape as it goes. Numbers use dlib's formats
(``dlib/serialize.h``): integers as a size/sign byte then little-endian bytes, tensors as raw
little-endian float32, other floats as a (mantissa, exponent) pair, bools as ``'0'``/``'1'``.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


class DlibFormatError(ValueError):
    """The file is not the network it should be (with where reading stopped)."""


@dataclass
class Layer:
    """One layer, bottom (input) to top: ``kind`` and what it needs to compute."""

    kind: str  # input, con, affine, relu, max_pool, avg_pool, avg_pool_all, tag, skip, add_prev, fc, loss
    size: int = 0  # con: filters; pools: window; fc: outputs; tag/skip/add_prev: the tag id; input: pixels
    stride: int = 1
    kernel: int = 0  # con: its square kernel
    weights: dict[str, np.ndarray] = field(default_factory=dict)


def resnet_v1() -> list[Layer]:
    """dlib's face recognition ResNet (anet_type), input first: 150 px RGB in, 128 numbers out."""
    net = [Layer("input", 150), Layer("con", 32, 2, 7), Layer("affine"), Layer("relu"), Layer("max_pool", 3, 2)]

    def block(n: int, stride: int) -> list[Layer]:
        return [Layer("con", n, stride, 3), Layer("affine"), Layer("relu"), Layer("con", n, 1, 3), Layer("affine")]

    def ares(n: int) -> list[Layer]:  # relu(x + block(x))
        return [Layer("tag", 1), *block(n, 1), Layer("add_prev", 1), Layer("relu")]

    def ares_down(n: int) -> list[Layer]:  # relu(block(x, stride 2) + avg_pool(x)), channels zero-padded
        return [Layer("tag", 1), *block(n, 2), Layer("tag", 2), Layer("skip", 1), Layer("avg_pool", 2, 2),
                Layer("add_prev", 2), Layer("relu")]

    for level in ([32, 32, 32], ["d64", 64, 64, 64], ["d128", 128, 128], ["d256", 256, 256], ["d256"]):
        for unit in level:
            net += ares_down(int(unit[1:])) if isinstance(unit, str) else ares(unit)
    return net + [Layer("avg_pool_all"), Layer("fc", 128), Layer("loss")]


class _Reader:
    """dlib's serialisation primitives over a byte buffer."""

    def __init__(self, data: bytes):
        self.f = io.BytesIO(data)

    def _bytes(self, n: int) -> bytes:
        b = self.f.read(n)
        if len(b) != n:
            raise DlibFormatError(f"file ends early (at byte {self.f.tell()})")
        return b

    def int(self) -> int:
        head = self._bytes(1)[0]
        size = head & 0x0F
        if size > 8:
            raise DlibFormatError(f"bad integer at byte {self.f.tell() - 1}")
        value = int.from_bytes(self._bytes(size), "little") if size else 0
        return -value if head & 0x80 else value

    def bool(self) -> bool:
        c = self._bytes(1)
        if c not in (b"0", b"1"):
            raise DlibFormatError(f"bad bool at byte {self.f.tell() - 1}")
        return c == b"1"

    def string(self) -> str:
        return self._bytes(self.int()).decode("latin-1")

    def float(self) -> float:
        mantissa, exponent = self.int(), self.int()
        return float(np.ldexp(float(mantissa), exponent))

    def version(self, *allowed: int) -> int:
        v = self.int()
        if v not in allowed:
            raise DlibFormatError(f"version {v} where {allowed} was expected (byte {self.f.tell()})")
        return v

    def tensor(self) -> np.ndarray:
        self.version(2)
        shape = [self.int() for _ in range(4)]
        count = int(np.prod(shape))
        return np.frombuffer(self._bytes(4 * count), "<f4").reshape(shape).astype(np.float32)

    def alias(self) -> tuple[int, ...]:
        self.version(1)
        return tuple(self.int() for _ in range(4))


def read_net(path: str | Path, net: list[Layer] | None = None) -> list[Layer]:
    """The layers of ``net`` (default :func:`resnet_v1`) with their weights read from dlib's file ``path``."""
    net = net if net is not None else resnet_v1()
    rd = _Reader(Path(path).read_bytes())
    try:
        top_down = list(reversed(net))
        rd.version(1)  # add_loss_layer
        _details(rd, top_down[0])
        # The descent: each wrapper's version, outermost first. The input has no wrapper of its own: the
        # layer above it is an add_layer that holds it (and writes it first on the way back).
        wrappers = {id(layer): rd.int() for layer in top_down[1:-1]}
        _details(rd, net[0])
        for layer in net[1:-1]:  # the way back up: each real layer's details and its cached tensors
            if layer.kind not in ("tag", "skip"):
                _details(rd, layer)
                _wrapper_tail(rd, layer is net[1], wrappers[id(layer)])
    except DlibFormatError as e:
        raise DlibFormatError(f"{path}: {e}") from None
    if rd.f.read(1):
        raise DlibFormatError(f"{path}: bytes left after the network (not dlib's face ResNet?)")
    return net


def _wrapper_tail(rd: _Reader, is_input: bool, version: int) -> None:
    """What ``add_layer`` writes after its details (flags, and tensors used only in training); the one
    holding the input writes its own set."""
    for _ in range(3):
        rd.bool()
    rd.tensor()  # x_grad
    rd.tensor()  # cached_output
    if is_input:
        rd.tensor()  # grad_final
        if version >= 3:
            rd.int()  # _sample_expansion_factor
    elif version >= 2:
        rd.tensor()  # params_grad


def _expect(found: str, *names: str) -> str:
    if found not in names:
        raise DlibFormatError(f"layer {found!r} where {' or '.join(names)} was expected")
    return found


def _details(rd: _Reader, layer: Layer) -> None:
    """One layer's own fields (``dlib/dnn/layers.h``, ``input.h``, ``loss.h``), checked against ``layer``."""
    read = _READERS.get(layer.kind)
    if read is None:
        raise DlibFormatError(f"no reader for layer kind {layer.kind!r}")
    read(rd, layer, rd.string())


def _input(rd: _Reader, layer: Layer, v: str) -> None:
    _expect(v, "input_rgb_image_sized")
    layer.weights["mean"] = np.array([rd.float() for _ in range(3)], np.float32)
    if (rd.int(), rd.int()) != (layer.size, layer.size):
        raise DlibFormatError(f"input is not {layer.size} px")


def _con(rd: _Reader, layer: Layer, v: str) -> None:
    _expect(v, "con_4", "con_5", "con_6")
    params = rd.tensor().ravel()
    filters, nr, nc, sy, sx, _py, _px = (rd.int() for _ in range(7))
    k = layer.kernel
    if (filters, nr, nc, sy, sx) != (layer.size, k, k, layer.stride, layer.stride):
        raise DlibFormatError(f"con {filters}x{nr}x{nc}/{sy} where {layer.size}x{k}x{k}/{layer.stride} was expected")
    wshape, bshape = rd.alias(), rd.alias()
    for _ in range(4):
        rd.float()  # learning-rate and weight-decay multipliers
    use_bias = rd.bool() if v in ("con_5", "con_6") else True
    if v == "con_6" and rd.bool():
        raise DlibFormatError("con with a fused relu is not supported")
    w = int(np.prod(wshape))
    layer.weights["w"] = params[:w].reshape(wshape)
    layer.weights["b"] = params[w:w + int(np.prod(bshape))] if use_bias else np.zeros(filters, np.float32)


def _relu(rd: _Reader, layer: Layer, v: str) -> None:
    if _expect(v, "relu_", "relu_2") == "relu_2" and rd.bool():
        raise DlibFormatError("disabled relu is not supported")


def _pool(rd: _Reader, layer: Layer, v: str) -> None:
    _expect(v, f"{layer.kind.replace('_all', '')}_2")
    nr, nc, sy, sx, py, px = (rd.int() for _ in range(6))
    want = (0, 0, 1, 1) if layer.kind == "avg_pool_all" else (layer.size, layer.size, layer.stride, layer.stride)
    if (nr, nc, sy, sx, py, px) != (*want, 0, 0):
        raise DlibFormatError(f"{layer.kind} {nr}x{nc}/{sy} pad {py} where {want} was expected")


def _add_prev(rd: _Reader, layer: Layer, v: str) -> None:
    _expect(v, "add_prev_")


def _fc(rd: _Reader, layer: Layer, v: str) -> None:
    _expect(v, "fc_2", "fc_3")
    outputs, inputs = rd.int(), rd.int()
    params = rd.tensor().ravel()
    rd.alias(), rd.alias()
    bias_mode = rd.int()
    for _ in range(4):
        rd.float()
    if v == "fc_3":
        rd.bool()
    if outputs != layer.size or bias_mode != 1:  # 1: FC_NO_BIAS
        raise DlibFormatError(f"fc of {outputs} outputs, bias mode {bias_mode}: expected {layer.size}, no bias")
    layer.weights["w"] = params[: inputs * outputs].reshape(inputs, outputs)


def _loss(rd: _Reader, layer: Layer, v: str) -> None:
    if _expect(v, "loss_metric_", "loss_metric_2") == "loss_metric_2":
        rd.float(), rd.float()


def _affine(rd: _Reader, layer: Layer, version: str) -> None:
    """y = gamma * x + beta per channel; a batch-norm layer is folded into that form as dlib does."""
    _expect(version, "affine_", "affine_2", "bn_con2")
    params = rd.tensor().ravel()
    gshape, _ = rd.alias(), rd.alias()
    n = int(np.prod(gshape))
    gamma, beta = params[:n], params[n: 2 * n]
    if version == "bn_con2":
        for _ in range(2):
            rd.tensor()  # means, invstds of the last training batch
        mean, var = rd.tensor().ravel(), rd.tensor().ravel()
        rd.int(), rd.int()  # num_updates, running_stats_window_size
        for _ in range(4):
            rd.float()
        eps = rd.float()
        gamma = gamma / np.sqrt(var + eps)
        beta = beta - gamma * mean
    else:
        rd.int()  # mode
        if version == "affine_2" and rd.bool():
            raise DlibFormatError("disabled affine layer is not supported")
    layer.weights["gamma"], layer.weights["beta"] = gamma.astype(np.float32), beta.astype(np.float32)


_READERS = {"input": _input, "con": _con, "affine": _affine, "relu": _relu, "max_pool": _pool, "avg_pool": _pool,
            "avg_pool_all": _pool, "add_prev": _add_prev, "fc": _fc, "loss": _loss}
