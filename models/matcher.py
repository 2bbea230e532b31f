"""The open-set decision: turn the K nearest gallery faces into a name or ``unknown``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from facestream.records import UNKNOWN


@dataclass(frozen=True)
class Match:
    person_id: str  # UNKNOWN when nobody passes
    distance: float | None  # squared L2 of the best gallery face (None: empty gallery)
    confidence: float  # 0 (at the threshold or unknown) .. 1 (identical)
    runner_up: float | None = None  # best distance of the next different person


def decide(neighbours: Sequence[tuple[str, float]], threshold: float, margin: float = 0.0) -> Match:
    """A known person only if their best distance ≤ ``threshold`` and beats the next person by ``margin``.

    ``neighbours`` are (person_id, squared L2) pairs in any order, several per person allowed.
    """
    best: dict[str, float] = {}
    for pid, d in neighbours:
        if d < best.get(pid, float("inf")):
            best[pid] = d
    if not best:
        return Match(UNKNOWN, None, 0.0)
    ranked = sorted(best.items(), key=lambda kv: kv[1])
    pid, d = ranked[0]
    runner_up = ranked[1][1] if len(ranked) > 1 else None
    if d > threshold or (runner_up is not None and runner_up - d < margin):
        return Match(UNKNOWN, d, 0.0, runner_up)
    return Match(pid, d, max(0.0, min(1.0, 1.0 - d / threshold)), runner_up)
