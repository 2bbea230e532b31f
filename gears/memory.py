"""What the gear step remembers of the faces it embeds: a visitor id for each unknown one, and the best
views of every track as sightings (:mod:`models.visitors`, :mod:`models.sightings`).

Both writes are keyed so that a replayed frame rewrites what it wrote the first time (a sighting's id
is ``<camera>-<ts_ms>-<face index>``), and every key carries the retention period as its expiry.
Kept valid Python 3.7, like :mod:`gears.step`, which calls it through the same ``call``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from facestream.keys import Keys
from facestream.records import UNKNOWN, Face, Sighting
from models.image import thumbnail
from models.matcher import QUALITY_REASONS, Match
from models.sightings import Kept, ensure_sightings_index, view_score, write
from models.visitors import Visitors

if TYPE_CHECKING:
    from gears.protocols import StepSettings
    from models.embed import Quality


class Memory:
    """Visitors and sightings for one step (off with ``sightings: false``)."""

    def __init__(self, settings: StepSettings, keys: Keys, call: Callable[..., Any]):
        self.on = bool(settings.sightings)
        self.keys, self.call = keys, call
        self.ttl_ms = int(settings.sightings_retention_h * 3_600_000)
        self.per_track = settings.sightings_per_track
        self.thumb_px = settings.thumb_px
        self.visitors = Visitors(call, keys, settings.visitor_distance, self.ttl_ms, settings.hnsw_ef_runtime)
        self._indexed = False

    def note(self, kept: Kept, person_id: str, match: Match, probe: np.ndarray, vector: np.ndarray,
             camera: str, ts_ms: int) -> None:
        """Give an unknown face (``person_id``: what its track is called) its visitor: its track's, with
        this look added, or the nearest visitor to ``probe`` (the track's template), or a new one.
        A look too poor to name (too small, blurred, turned) is too poor to group as well."""
        if not self.on or person_id != UNKNOWN or match.reason in QUALITY_REASONS:
            return
        if kept.visitor and self.visitors.join(kept.visitor, vector, camera, ts_ms):
            return
        kept.visitor = self.visitors.assign(probe, camera, ts_ms)

    def keep(self, kept: Kept, face: Face, index: int, vector: np.ndarray, quality: Quality, rgb: np.ndarray,
             camera: str, ts_ms: int) -> None:
        """Store this look as a sighting if it is among its track's ``sightings_per_track`` best."""
        if not self.on:
            return
        sid = "%s-%d-%d" % (camera, ts_ms, index)
        keep, replaced = kept.keep(view_score(quality.size, quality.sharpness, quality.yaw), sid, self.per_track)
        if not keep:
            return
        if not self._indexed:
            ensure_sightings_index(self.call, self.keys)
            self._indexed = True
        sighting = Sighting(sid, camera, ts_ms, face.person_id, face.visitor, face.track_id, face.reason,
                            face.distance, quality.to_json(), np.asarray(vector, dtype="<f4").tobytes(),
                            thumbnail(rgb, face.box, self.thumb_px))
        write(self.call, self.keys, sighting, self.ttl_ms, replaced)
