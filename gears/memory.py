"""What the gear step remembers of the faces it embeds: a visitor id for each unknown one, and the best
views of every track as sightings (:mod:`facestream.models.store.visitors`, :mod:`facestream.models.store.sightings`).

Without tracking (``tracking: false``, or a redelivered frame answered on its own) there is no track
to bound a face's sightings, so the faces of one person, visitor or unknown on one camera share one
allowance per :data:`UNTRACKED_WINDOW_MS`: a camera filming one stranger for an hour leaves ~1,000
sightings, not 54,000.

Both writes are keyed so that a replayed frame rewrites what it wrote the first time (a sighting's id
is ``<camera>-<ts_ms>-<face index>``), and every key carries the retention period as its expiry.
Kept valid Python 3.7, like :mod:`facestream.gears.step`, which calls it through the same ``call``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from facestream.keys import Keys
from facestream.models.matcher import QUALITY_REASONS, Match
from facestream.models.store.sightings import Kept, SightingIndexes, view_score
from facestream.models.store.visitors import Visitors
from facestream.models.vision.image import thumbnail
from facestream.records import UNKNOWN, Face, Sighting

#: A visitor a track has just made is checked against the earlier visitors on this many of the track's next
#: looks, and merged into one its template fits: the first look of an appearance may be a poor one (a head
#: turning at a cut), and the template of a few looks finds the stranger seen before.
YOUNG_LOOKS = 8
#: Untracked faces with one label on one camera share one track's allowance of sightings per this long.
UNTRACKED_WINDOW_MS = 10_000

if TYPE_CHECKING:
    from facestream.gears.protocols import StepSettings
    from facestream.models.types import Quality


class Memory:
    """Visitors and sightings for one step (off with ``sightings: false``)."""

    def __init__(self, settings: StepSettings, keys: Keys, call: Callable[..., Any], dim: int):
        self.on = bool(settings.sightings)
        self.ttl_ms = int(settings.sightings_retention_h * 3_600_000)
        self.per_track = settings.sightings_per_track
        self.thumb_px = settings.thumb_px
        self.visitors = Visitors(call, keys, settings.visitor_distance, self.ttl_ms, settings.hnsw_ef_runtime,
                                 dim)
        self.indexes = SightingIndexes(call, keys, dim, int(settings.sightings_bucket_h * 3_600_000), self.ttl_ms)
        self._untracked: dict[tuple[str, str], tuple[int, Kept]] = {}  # (camera, label) -> (window start, allowance)

    def note(self, kept: Kept, person_id: str, match: Match, probe: np.ndarray, vector: np.ndarray,
             camera: str, ts_ms: int) -> None:
        """Give an unknown face (``person_id``: what its track is called) its visitor: its track's, with
        this look added (merged into an earlier visitor while young, see :data:`YOUNG_LOOKS`), or the
        nearest visitor to ``probe`` (the track's template), or a new one. A look too poor to name (too
        small, blurred, turned) is too poor to group as well."""
        if not self.on or person_id != UNKNOWN or match.reason in QUALITY_REASONS:
            return
        if kept.visitor and kept.young > 0:  # its track made it: the better template may fit an earlier one
            kept.young -= 1
            earlier = self.visitors.fitting(probe, other_than=kept.visitor)
            if earlier is not None:
                self.visitors.merge(earlier, kept.visitor)  # its looks and sightings go to the earlier visitor
                kept.visitor, kept.young = earlier, 0
        if kept.visitor and self.visitors.join(kept.visitor, vector, camera, ts_ms):
            return
        kept.visitor, new = self.visitors.place(probe, camera, ts_ms)
        kept.young = YOUNG_LOOKS if new else 0

    def keep(self, kept: Kept, face: Face, index: int, vector: np.ndarray, quality: Quality, rgb: np.ndarray,
             camera: str, ts_ms: int) -> None:
        """Store this look as a sighting if it is among its track's ``sightings_per_track`` best (untracked:
        among the best of its label's window on this camera)."""
        if not self.on:
            return
        if not kept.tracked:
            kept = self._window(camera, face.person_id if face.person_id != UNKNOWN else face.visitor or UNKNOWN,
                                ts_ms)
        sid = "%s-%d-%d" % (camera, ts_ms, index)
        keep, replaced = kept.keep(view_score(quality.size, quality.sharpness, quality.yaw), sid, self.per_track)
        if not keep:
            return
        sighting = Sighting(sid, camera, ts_ms, face.person_id, face.visitor, face.track_id, face.reason,
                            face.distance, quality.to_json(), np.asarray(vector, dtype="<f4").tobytes(),
                            thumbnail(rgb, face.box, self.thumb_px))
        self.indexes.write(sighting, self.ttl_ms, replaced)

    def _window(self, camera: str, label: str, ts_ms: int) -> Kept:
        """The allowance untracked faces of ``label`` on ``camera`` share in the current window."""
        start, kept = self._untracked.get((camera, label), (None, None))
        if kept is None or start is None or not 0 <= ts_ms - start < UNTRACKED_WINDOW_MS:
            if len(self._untracked) > 10_000:
                self._untracked.clear()
            start, kept = ts_ms, Kept()
            self._untracked[(camera, label)] = (start, kept)
        return kept
