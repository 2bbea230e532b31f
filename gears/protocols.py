"""What the gear step needs from its collaborators, as structural types.

Both runners satisfy them: ``facestream work`` passes
:class:`facestream.models.vision.analyzer.FaceAnalyzer` and :class:`facestream.gears.tracks.CameraTracks`,
the in-server gear the same analyzer and :class:`facestream.gears.track.NoTracks`. The step's settings
are :class:`facestream.config.Settings` itself (the gear passes a namespace of every field). Only
imported for type checking: RedisGears 1.2 runs Python 3.7, which has no ``typing.Protocol``.
"""

from __future__ import annotations

from typing import Protocol, Sequence

import numpy as np

from facestream.gears.track import Kept
from facestream.models.matcher import Match
from facestream.models.protocols import Embedder
from facestream.models.types import Detection
from facestream.models.vision.profile import DetectionProfile
from facestream.models.vision.regions import Region


class Analyzer(Protocol):
    embedder: Embedder
    profile: DetectionProfile

    def detect_frame(self, rgb: np.ndarray, regions: list[Region] | None = None) -> list[Detection]: ...


class Scan(Protocol):
    size: tuple[int, int]
    quiet: bool

    def unchanged(self, jpeg: bytes, ts_s: float) -> bool: ...

    def regions(self, rgb: np.ndarray, late_ms: float = 0.0) -> list[Region]: ...

    def follow(self, boxes: list[tuple[int, int, int, int]], ts_s: float) -> None: ...


class Tracks(Protocol):
    last_ts: float

    def update(self, detections: Sequence[Detection], ts_s: float, rgb: np.ndarray | None = None) -> list[int | None]: ...

    def due(self, track_id: int | None, detection: Detection, ts_s: float) -> bool: ...

    def first_look(self, track_id: int | None) -> bool: ...

    def looked_at(self, track_id: int | None) -> float: ...

    def template(self, track_id: int | None, vector: np.ndarray) -> np.ndarray: ...

    def record(self, track_id: int | None, detection: Detection, ts_s: float, vector: np.ndarray,
               match: Match, name: str) -> Kept: ...

    def kept(self, track_id: int | None) -> Kept | None: ...

    def voted(self, track_id: int | None) -> Match | None: ...

    def called(self, track_id: int | None, match: Match | None) -> Match | None: ...
