"""Impostor models of the built-in embedders: how close strangers come to enrolled faces.

For each embedder (by the ``model_id`` its vectors are stamped with), ((share, distance), ...): the share
of stranger-to-enrolled-face pairs whose squared L2 distance is at or under that distance, measured once
at development time on public faces by ``scripts/impostor_table.py`` (the ``verification/`` LFW photos of
the shared faces: a probe embedded like a live face's first look against a face embedded like
enrollment, of two different people). Numbers only: no face and no vector is shipped. Below the smallest
share measured the table follows a straight line of log share against distance (which over-counts how
close strangers come: the safe side). :meth:`facestream.models.matcher.Policy.for_gallery` derives the
threshold for a gallery's size from it.

A site's own strangers then say how far the table holds there (:func:`learn`): the visitors a site's
cameras saw that stayed far from every enrolled face (:mod:`facestream.models.store.strangers`). If
they come closer to the gallery than the table predicts (another population than LFW's), the per-face
rate is scaled up by what they show, never down; and the people they come nearest to more often than
chance (*wolves*) are tightened on their own. Kept valid Python 3.7 (the in-server gear decides with it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Dict, Iterable, NamedTuple, Tuple

Tail = Tuple[Tuple[float, float], ...]

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


#: One-sided 95% normal quantile: the site figures are lower bounds at this confidence (tighten only on evidence).
Z95 = 1.645


def impostor_tail(model_id: str) -> Tail:
    """The impostor model shipped for ``model_id``, or () for an embedder without one."""
    return TABLES.get(model_id, ())


def rate_at(tail: Tail, distance: float) -> float:
    """The share of stranger-to-enrolled-face distances at or under ``distance`` (linear between points)."""
    return _interp(distance, [d for _, d in tail], [r for r, _ in tail])


def distance_at(tail: Tail, rate: float) -> float:
    """The distance under which ``rate`` of stranger-to-enrolled-face distances fall."""
    return _interp(rate, [r for r, _ in tail], [d for _, d in tail])


def _interp(x: float, xs: list, ys: list) -> float:
    if x <= xs[0]:
        return ys[0]
    for i in range(1, len(xs)):
        if x <= xs[i]:
            return ys[i - 1] + (ys[i] - ys[i - 1]) * (x - xs[i - 1]) / (xs[i] - xs[i - 1])
    return ys[-1]


class Stranger(NamedTuple):
    """A site's stranger as learned: the enrolled person its face came nearest to, how near, out of how many faces."""

    person_id: str
    distance: float
    faces: int  # gallery faces when it was learned


@dataclass(frozen=True)
class SiteModel:
    """What a site's strangers say of the impostor model (all 1: nothing learned, or nothing to correct)."""

    strangers: int = 0  # learned strangers on record
    used: int = 0  # those the figures rest on (beyond ``beyond`` of the gallery then)
    scale: float = 1.0  # they come this much more often near an enrolled face than the table says (>= 1)
    wolves: Dict[str, Tuple[float, int, float]] = field(default_factory=dict)  # person -> (factor, nearest, expected)

    def to_json(self) -> dict:
        return {"strangers": self.strangers, "used": self.used, "scale": self.scale,
                "wolves": {p: list(w) for p, w in self.wolves.items()}}

    @classmethod
    def from_json(cls, data: dict) -> "SiteModel":
        return cls(int(data["strangers"]), int(data["used"]), max(1.0, float(data["scale"])),
                   {str(p): (max(1.0, float(w[0])), int(w[1]), float(w[2])) for p, w in data.get("wolves", {}).items()})


def learn(strangers: Iterable[Stranger], tail: Tail, beyond: float, faces_of: Callable[[str], int],
          min_strangers: int = 30, min_nearest: int = 5) -> SiteModel:
    """The site model from learned strangers, each further than ``beyond`` from every enrolled face.

    Scale: under the table scaled by m, a stranger's hazard beyond ``beyond``, ``faces * -ln(1 - rate(d))``
    minus its value at ``beyond``, is exponential with rate m (memoryless: the cut at ``beyond`` costs
    nothing), so m = ln 2 / median; the 95% lower bound (an upper order statistic for the median) is
    kept, and only above 1. Wolves: a stranger's nearest person is any enrolled face with equal chance
    under the table (``faces_of(person)``: their faces); a person nearest to at least ``min_nearest`` of them
    and more often than expected at 95% (Poisson lower bound) gets that ratio as a factor on their rate.
    """
    pool = list(strangers)
    used = [s for s in pool if s.distance > beyond and s.faces > 0]
    if len(used) < min_strangers or not tail:
        return SiteModel(len(pool), len(used))
    top = 1.0 - 1e-12

    def hazard(d: float, n: int) -> float:
        return -n * math.log(1.0 - min(top, rate_at(tail, d)))

    excess = sorted(hazard(s.distance, s.faces) - hazard(beyond, s.faces) for s in used)
    k = min(len(excess) - 1, int(math.ceil(len(excess) / 2 + Z95 * math.sqrt(len(excess)) / 2)))
    scale = max(1.0, min(1000.0, math.log(2) / max(excess[k], 1e-12)))
    nearest = {}  # type: Dict[str, int]
    for s in used:
        nearest[s.person_id] = nearest.get(s.person_id, 0) + 1
    chances = sum(1.0 / s.faces for s in used)  # a face's expected share of the strangers, per face it has
    wolves = {}
    for pid, c in nearest.items():
        if c < min_nearest:
            continue
        low = c * (1 - 1 / (9 * c) - Z95 / (3 * math.sqrt(c))) ** 3  # Wilson-Hilferty: Poisson mean's lower bound
        e = faces_of(pid) * chances
        if e > 0 and low > e:
            wolves[pid] = (round(low / e, 3), c, round(e, 3))
    return SiteModel(len(pool), len(used), round(scale, 3), wolves)
