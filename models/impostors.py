"""Impostor models of the built-in embedders: how close strangers come to enrolled faces.

For each embedder (by the ``model_id`` its vectors are stamped with), ((share, distance), ...): the share
of stranger-to-enrolled-face pairs whose squared L2 distance is at or under that distance, measured once
at development time on public faces by ``scripts/impostor_table.py`` (the ``verification/`` LFW photos of
the shared faces: a probe embedded like a live face's first look against a face embedded like
enrollment, of two different people). Numbers only: no face and no vector is shipped. Below the smallest
share measured the table follows a straight line of log share against distance (which over-counts how
close strangers come: the safe side). :meth:`facestream.models.matcher.Policy.for_gallery` derives the
threshold for a gallery's size from it. Kept valid Python 3.7 (the in-server gear decides with it).
"""

from __future__ import annotations

from typing import Dict, Tuple

TABLES: Dict[str, Tuple[Tuple[float, float], ...]] = {
    # dlib's ResNet (face_recognition_models), as the onnx and dlib embedders both run it.
    # 2097 faces of 1019 people, 4374274 impostor pairs; measured down to 2.3e-07, extended to 1e-08 along log10(share) = 49.0 x distance -9.4; 2026-12-06
    "dlib-resnet-v1":
        ((1e-08, 0.0281), (3e-08, 0.0379), (1e-07, 0.0485), (2.29e-07, 0.0531), (6.86e-07, 0.0704), (1.6e-06,
         0.0733), (3.2e-06, 0.0806), (6.17e-06, 0.0842), (1.23e-05, 0.0883), (2.38e-05, 0.0940), (4.66e-05,
         0.1001), (9.05e-05, 0.1076), (0.000176, 0.1158), (0.000343, 0.1245), (0.000667, 0.1328), (0.0013,
         0.1418), (0.00252, 0.1517), (0.0049, 0.1623), (0.00952, 0.1738), (0.0185, 0.1867), (0.036, 0.2018),
         (0.07, 0.2195), (0.136, 0.2417), (0.265, 0.2713), (0.514, 0.3168), (1, 0.6804)),
}


def impostor_tail(model_id: str) -> Tuple[Tuple[float, float], ...]:
    """The impostor model shipped for ``model_id``, or () for an embedder without one."""
    return TABLES.get(model_id, ())
