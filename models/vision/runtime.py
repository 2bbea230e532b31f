"""onnxruntime sessions, one per model and process, on the execution providers the ``onnx_providers``
setting picks.

A session is thread-safe (``run`` may be called from every detection thread at once) and costs its
model's memory once, so it is built on first use and shared. ``cpu`` is the default and the only
provider measured here; ``cuda`` / ``tensorrt`` need ``onnxruntime-gpu`` and a GPU, and ``auto``
takes the best one installed.
"""

from __future__ import annotations

import threading
from typing import Callable

from facestream.errors import BackendUnavailable

#: setting -> the onnxruntime providers to ask for, best first (CPU always last: ops a GPU lacks run there)
PROVIDERS = {
    "cpu": ("CPUExecutionProvider",),
    "cuda": ("CUDAExecutionProvider", "CPUExecutionProvider"),
    "tensorrt": ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"),
}

_sessions: dict[tuple[str, int, str], object] = {}
_lock = threading.Lock()


def providers(choice: str, available: list[str] | None = None) -> list[str]:
    """The providers for ``choice`` (cpu, cuda, tensorrt, auto) among those installed; BackendUnavailable
    with what is installed when the choice cannot be had."""
    if available is None:
        import onnxruntime as ort

        available = ort.get_available_providers()
    if choice == "auto":
        return [p for p in PROVIDERS["tensorrt"] if p in available]
    wanted = PROVIDERS.get(choice)
    if wanted is None:
        raise BackendUnavailable(f"onnx_providers {choice!r}: choose one of auto, {', '.join(PROVIDERS)}")
    if wanted[0] not in available:
        raise BackendUnavailable(f"onnx_providers {choice!r} needs {wanted[0]}, which this onnxruntime lacks "
                                 f"(it has {', '.join(available)}; install onnxruntime-gpu for cuda/tensorrt)")
    return list(wanted)


def session(model: str, weights: Callable[[], bytes], threads: int, choice: str):  # -> ort.InferenceSession
    """This process's session of ``model`` (its ONNX bytes from ``weights()``), built once."""
    key = (model, threads, choice)
    with _lock:
        if key not in _sessions:
            import onnxruntime as ort

            opts = ort.SessionOptions()
            opts.intra_op_num_threads = threads
            opts.inter_op_num_threads = 1
            opts.log_severity_level = 3  # warnings about unused initializers are not the user's concern
            _sessions[key] = ort.InferenceSession(weights(), opts, providers=providers(choice))
        return _sessions[key]
