"""Face detectors: one registry, name → how to build the backend and the smallest face it finds.

Pick one with the ``detector`` setting. Every stage builds it through :func:`make_detector` and plans
its scales with the backend's :attr:`Backend.min_face_px` (a region searched for 24 px faces is
enlarged until they reach it; a frame whose smallest wanted face is larger is shrunk). Backends take
an RGB image and return the faces at that image's scale; the caller resizes. Adding a detector: one
module with a class that has ``name`` and ``detect(rgb) -> list[Detection]``, and one line below.

Kept valid Python 3.7 (the in-server gear imports it); backends are imported when built.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Dict

from facestream.errors import BackendUnavailable

if TYPE_CHECKING:
    from facestream.models.protocols import Detector


@dataclass(frozen=True)
class Backend:
    """How to build a detector (from the settings) and what it can find."""

    build: Callable[..., "Detector"]  # (settings) -> Detector
    min_face_px: int  # the smallest face it finds reliably in an image at scale 1
    about: str


def _retinaface(s) -> Detector:
    from facestream.models.vision.retinaface import RetinaFaceDetector

    return RetinaFaceDetector(s.detector_min_score, s.onnx_threads, s.onnx_providers)


def _hog(s) -> Detector:
    from facestream.models.vision.dlib_detect import HogDetector

    return HogDetector()


def _cnn(s) -> Detector:
    from facestream.models.vision.dlib_detect import CnnDetector

    return CnnDetector()


def _mtcnn(s) -> Detector:
    from facestream.models.vision.mtcnn import MtcnnDetector

    return MtcnnDetector()


DETECTORS: Dict[str, Backend] = {
    "retinaface": Backend(_retinaface, 20, "RetinaFace-MobileNet0.25 on onnxruntime: faces from ~20 px, turned "
                          "ones too, 5 landmarks; ~40 ms for a 960x540 image on one core (the default)"),
    "hog": Backend(_hog, 64, "dlib's HOG: frontal faces from ~64 px; no onnxruntime needed"),
    "cnn": Backend(_cnn, 48, "dlib's MMOD CNN: turned faces from ~48 px; seconds per 1080p frame on a CPU"),
    "mtcnn": Backend(_mtcnn, 24, "MTCNN on TensorFlow (scripts/setup.sh --mtcnn): its own pyramid from 20 px"),
}


def backend(name: str) -> Backend:
    """The registry entry of detector ``name``; BackendUnavailable naming the choices if there is none."""
    found = DETECTORS.get(name)
    if found is None:
        raise BackendUnavailable(f"unknown detector {name!r}; choose one of {', '.join(DETECTORS)}")
    return found


def make_detector(name: str, settings) -> Detector:
    """A new detector ``name``, configured from ``settings`` (Settings, or the gear's namespace of them)."""
    return backend(name).build(settings)
