"""One face track's state, defined and changed here only: the decisions of the embeddings made on it
(its vote), its template, and what it keeps (:class:`Kept`: its visitor id and its best views).

:class:`facestream.gears.tracks.CameraTracks` holds one :class:`Track` per ByteTrack id of a camera;
:class:`NoTracks` stands in for a step that does not track. Kept valid Python 3.7 with no third-party
import but numpy: the in-server gear answers frames with :class:`NoTracks`.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

import numpy as np

from facestream.models.matcher import QUALITY_REASONS, Match
from facestream.models.types import Detection
from facestream.records import UNKNOWN


@dataclass
class Kept:
    """What one track (or untracked face) remembers: its visitor id and the sightings it kept."""

    visitor: str = ""
    tracked: bool = True  # False: an untracked face's, whose sightings share a window's allowance (gears.memory)
    young: int = 0  # looks left on which a visitor this track made may still turn out an earlier one
    views: List[Tuple[float, str]] = field(default_factory=list)  # (view score, sighting id), best first

    def keep(self, score: float, sighting_id: str, limit: int) -> Tuple[bool, Optional[str]]:
        """Whether a view of this score is kept, and the sighting it replaces (the worst kept) if any. A
        sighting already kept (the same frame answered again) is not kept twice."""
        if any(sid == sighting_id for _, sid in self.views):
            return False, None
        if len(self.views) < limit:
            self.views.append((score, sighting_id))
            self.views.sort(reverse=True)
            return True, None
        if score <= self.views[-1][0]:
            return False, None
        replaced = self.views[-1][1]
        self.views[-1] = (score, sighting_id)
        self.views.sort(reverse=True)
        return True, replaced

    def still_young(self) -> bool:
        """Whether the visitor this track made may still turn out an earlier one (uses up one look)."""
        if not self.visitor or self.young <= 0:
            return False
        self.young -= 1
        return True

    def call(self, visitor: str, young: int = 0) -> None:
        """The track's faces are now visitor ``visitor``, checked against earlier ones for ``young`` looks."""
        self.visitor, self.young = visitor, young


@dataclass
class Track:
    """What is known about one tracked face: its decisions so far and its latest embedding."""

    votes: Counter = field(default_factory=Counter)  # person_id (or UNKNOWN) -> embeddings that said so
    names: Dict[str, str] = field(default_factory=dict)
    best: Dict[str, Match] = field(default_factory=dict)  # person_id -> closest match seen
    vector: Optional[np.ndarray] = None  # the latest embedding
    total: Optional[np.ndarray] = None  # the sum of the track's good looks' embeddings (its template, unnormalised)
    gated_total: bool = False  # the total is a single poor look (kept until a good one replaces it)
    embedded_at: float = -1e9
    embedded_size: int = 0
    frames_since: int = 0  # frames seen since the last embedding
    kept: Kept = field(default_factory=Kept)  # its visitor id and the sightings kept of it

    def label(self) -> Tuple[str, str, Optional[Match]]:
        """(person_id, name, best match): the person named most often on the track (ties: the closer
        match), as long as they were named at least half as often as the face was not recognised."""
        known = [pid for pid in self.votes if pid != UNKNOWN]
        if not known:
            return UNKNOWN, UNKNOWN, self.best.get(UNKNOWN)

        def rank(pid: str) -> Tuple[int, float]:
            d = self.best[pid].distance
            return self.votes[pid], -(d if d is not None else 9.0)

        pid = max(known, key=rank)
        if 2 * self.votes[pid] < self.votes[UNKNOWN]:
            return UNKNOWN, UNKNOWN, self.best[UNKNOWN]
        return pid, self.names.get(pid, UNKNOWN), self.best[pid]

    def other_face(self, vector: np.ndarray, split_distance: float) -> bool:
        """Whether ``vector`` is too far from the track's latest embedding to be the same face."""
        return self.vector is not None and float(np.sum((self.vector - vector) ** 2)) > split_distance

    def template(self, vector: np.ndarray) -> np.ndarray:
        """The mean of the track's good looks and ``vector``: several looks at one face average out what a
        single frame gets wrong."""
        total = self.total + vector
        return (total / max(float(np.linalg.norm(total)), 1e-12)).astype(np.float32)

    def record(self, detection: Detection, ts_s: float, vector: np.ndarray, match: Match, name: str) -> None:
        """Add one embedding's decision to the vote; a poor view (too small, blurred, turned) is no evidence
        against a name, and does not blur the template."""
        if match.reason not in QUALITY_REASONS:
            self.votes[match.person_id] += 1
        self.names[match.person_id] = name
        prev = self.best.get(match.person_id)
        if prev is None or (match.distance or 9.0) < (prev.distance or 9.0):
            self.best[match.person_id] = match
        if self.total is None or match.reason not in QUALITY_REASONS:
            self.total = vector.copy() if self.total is None or self.gated_total else self.total + vector
            self.gated_total = match.reason in QUALITY_REASONS
        self.vector, self.embedded_at, self.embedded_size, self.frames_since = vector, ts_s, detection.size, 0


class NoTracks:
    """The tracks of a step that does not track (``tracking: false``, the in-server gear, a retried frame
    answered on its own): every face is a first look, embedded and decided on its own."""

    last_ts = -1e18

    def update(self, detections: List[Detection], ts_s: float, rgb: Optional[np.ndarray] = None) -> List[Optional[int]]:
        return [None] * len(detections)

    def due(self, track_id: Optional[int], detection: Detection, ts_s: float) -> bool:
        return True

    def first_look(self, track_id: Optional[int]) -> bool:
        return True

    def looked_at(self, track_id: Optional[int]) -> float:
        return -1e18

    def template(self, track_id: Optional[int], vector: np.ndarray) -> np.ndarray:
        return vector

    def record(self, track_id: Optional[int], detection: Detection, ts_s: float, vector: np.ndarray,
               match: Match, name: str) -> Kept:
        return Kept(tracked=False)

    def kept(self, track_id: Optional[int]) -> Optional[Kept]:
        return None

    def voted(self, track_id: Optional[int]) -> Optional[Match]:
        return None

    def called(self, track_id: Optional[int], match: Optional[Match]) -> Optional[Match]:
        return match  # every look stands alone
