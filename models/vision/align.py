"""Aligned face chips: the square crops an embedding network is trained on.

Two alignments, as the ``embedder_align`` setting picks:

- ``dlib``: dlib's own chip (``get_face_chip`` from its 5-point shape, 150 px), exactly what dlib's
  ResNet was trained on; ``padding`` widens it (0.25 is dlib's).
- ``arcface``: the 5-point template ArcFace-style models (InsightFace, 112 px) are trained on, fitted to
  the detector's landmarks (eyes, nose tip, mouth corners) by a similarity transform. Detectors without
  landmarks (hog, cnn) give it the eyes and the base of the nose from dlib's predictor instead (3 points:
  approximate; prefer retinaface with such a model).

A chip can be mirrored (a second view of the face, averaged by the embedder).
"""

from __future__ import annotations

import cv2
import numpy as np

#: ArcFace's landmark template for a 112 px chip (InsightFace's ``arcface_dst``): the eyes, the nose tip,
#: the mouth corners, in image order (the image's left eye first).
ARCFACE_112 = np.array([[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366],
                        [41.5493, 92.3655], [70.7299, 92.2041]], np.float32)
DLIB_PADDING = 0.25  # dlib's chip padding; the ArcFace template is taken as cut at this padding


def dlib_chip(rgb: np.ndarray, shape, size: int, padding: float) -> np.ndarray:  # shape: dlib.full_object_detection
    """dlib's aligned chip of ``size`` px."""
    import dlib

    return dlib.get_face_chip(rgb, shape, size, padding)


def arcface_chip(rgb: np.ndarray, points: np.ndarray, size: int, padding: float) -> np.ndarray:
    """The ArcFace-template chip of ``size`` px for 5 landmarks (or 3: eyes and nose); ``padding`` other
    than :data:`DLIB_PADDING` zooms out (more) or in (less) around the template's centre."""
    template = ARCFACE_112 * (size / 112)
    centre = np.float32(size / 2)
    template = centre + (template - centre) * ((1 + DLIB_PADDING) / (1 + padding))
    src = np.asarray(points, np.float32)
    m, _ = cv2.estimateAffinePartial2D(src, template[: len(src)], method=cv2.LMEDS)
    if m is None:  # degenerate points (all in one place): the plain crop around them
        m = np.float32([[1, 0, centre - src[:, 0].mean()], [0, 1, centre - src[:, 1].mean()]])
    return cv2.warpAffine(rgb, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def arcface_points(landmarks: np.ndarray | None, shape) -> np.ndarray:
    """The points the ArcFace template is fitted to: the detector's 5 landmarks, else the eye centres
    and the base of the nose from dlib's 5-point shape (0-1, 2-3: eye corners, 4: under the nose)."""
    if landmarks is not None:
        return np.asarray(landmarks, np.float32)
    p = np.array([(shape.part(i).x, shape.part(i).y) for i in range(5)], np.float32)
    left, right = sorted((p[0:2].mean(axis=0), p[2:4].mean(axis=0)), key=lambda e: e[0])
    return np.array([left, right, p[4]], np.float32)


def mirrored(chip: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(chip[:, ::-1])
