"""``facestream bench --embedding``: what one face's embedding costs on each runtime, batch 1 and 8.

The ONNX model (the default embedder) and the dlib installed here run in this process; each other
dlib build given as a wheel (``scripts/setup.sh --blas-dlib`` leaves its OpenBLAS build in
``.facestream/wheels``) runs in a child process with the unpacked wheel first on its path, so the
builds are compared in one run on the same chips. Every runtime gets one thread, as the worker gives it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

BATCHES = (1, 8)
SECONDS = 2.0  # per runtime and batch size


@dataclass
class EmbedFigures:
    runtime: str
    batch: int
    ms_per_face: float


def _chips(n: int) -> list[np.ndarray]:
    """Chips of dlib's size; the networks' cost does not depend on what they show."""
    rng = np.random.default_rng(0)
    return [rng.integers(0, 256, (150, 150, 3), dtype=np.uint8) for _ in range(n)]


def time_network(name: str, network: Callable[[Sequence[np.ndarray]], np.ndarray]) -> list[EmbedFigures]:
    """ms per face of ``network`` at each of :data:`BATCHES`, each run for about :data:`SECONDS`."""
    out = []
    for batch in BATCHES:
        chips = _chips(batch)
        network(chips)  # warm-up (allocations, lazy initialisation)
        runs, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < SECONDS:
            network(chips)
            runs += 1
        out.append(EmbedFigures(name, batch, (time.perf_counter() - t0) / runs / batch * 1e3))
    return out


def dlib_label() -> str:
    import dlib

    return f"dlib {dlib.__version__} ({'OpenBLAS' if dlib.DLIB_USE_BLAS else 'dlib-bin, no BLAS'})"


def _this_dlib() -> list[EmbedFigures]:
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    from facestream.models.vision.networks import DlibNetwork

    return time_network(dlib_label(), DlibNetwork())


def _wheel(wheel: Path) -> list[EmbedFigures]:
    """The figures of the dlib in ``wheel``, measured in a child process."""
    with tempfile.TemporaryDirectory() as tmp:
        zipfile.ZipFile(wheel).extractall(tmp)
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([tmp, *sys.path]), "OPENBLAS_NUM_THREADS": "1"}
        done = subprocess.run([sys.executable, "-m", "facestream.app.bench.embedding"], env=env, capture_output=True,
                              text=True, timeout=300)
    if done.returncode != 0:
        raise RuntimeError(f"{wheel.name}: {done.stderr.strip().splitlines()[-1] if done.stderr.strip() else 'failed'}")
    return [EmbedFigures(**f) for f in json.loads(done.stdout)]


def embedding_bench(settings, wheels: Sequence[Path], say: Callable[[str], None] = print) -> list[EmbedFigures]:
    """ONNX (the settings' model, one thread), this dlib, and each wheel's dlib."""
    from facestream.models.vision.networks import OnnxNetwork

    onnx = OnnxNetwork.of(settings.replace(onnx_threads=1))
    figs = time_network(f"onnxruntime ({onnx.model_id})", onnx)
    figs += _this_dlib()
    for wheel in wheels:
        try:
            figs += _wheel(wheel)
        except (RuntimeError, subprocess.TimeoutExpired, zipfile.BadZipFile) as e:
            say(f"skipped {wheel}: {e}")
    return figs


def found_wheels(folder: Path = Path(".facestream/wheels")) -> list[Path]:
    """dlib wheels ``scripts/setup.sh --blas-dlib`` built here."""
    return sorted(folder.glob("dlib-*.whl"))


if __name__ == "__main__":  # the child process of _wheel: this interpreter's dlib, as JSON
    print(json.dumps([asdict(f) for f in _this_dlib()]))
