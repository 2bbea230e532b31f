"""What the gear step remembers of the faces it embeds: a visitor id for each unknown one, and the best
views of every track as sightings (:mod:`facestream.models.store.visitors`, :mod:`facestream.models.store.sightings`).

Memory decides while the frame is answered (reading Redis: which visitor a face fits) and returns the
writes it would make as :data:`Writes`; the step runs them only after its atomic commit stored the
frame's result (:meth:`facestream.gears.step.Step.commit`). A frame answered twice (redelivered,
taken over, replayed) therefore joins its visitor and stores its sightings once: its second answer
is a duplicate, and its writes are dropped.

Without tracking (``tracking: false``, or a redelivered frame answered on its own) there is no track
to bound a face's sightings, so the faces of one person, visitor or unknown on one camera share one
allowance per ``untracked_window_ms``. Every key carries the retention period as its expiry.
Kept valid Python 3.7, like :mod:`facestream.gears.step`, which calls it through the same ``call``.
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Tuple

import numpy as np

from facestream.gears.track import Kept
from facestream.keys import Keys
from facestream.models.matcher import QUALITY_REASONS, Match
from facestream.models.store.sightings import SightingIndexes, view_score
from facestream.models.store.visitors import Visitors
from facestream.models.vision.image import thumbnail
from facestream.records import UNKNOWN, Face, Sighting

if TYPE_CHECKING:
    from facestream.config import Settings
    from facestream.models.types import Quality

#: Writes to run, in order, once the frame's result is committed.
Writes = List[Callable[[], Any]]


class Memory:
    """Visitors and sightings for one step (off with ``sightings: false``)."""

    def __init__(self, settings: Settings, keys: Keys, call: Callable[..., Any], dim: int):
        self.s = settings
        self.on = bool(settings.sightings)
        self.ttl_ms = int(settings.sightings_retention_h * 3_600_000)
        self.visitors = Visitors.of(call, keys, settings, dim)
        self.indexes = SightingIndexes.of(call, keys, settings, dim)
        self._untracked: Dict[Tuple[str, str], Tuple[int, Kept]] = {}  # (camera, label) -> (window start, allowance)

    def note(self, kept: Kept, person_id: str, match: Match, probe: np.ndarray, vector: np.ndarray,
             camera: str, ts_ms: int) -> Writes:
        """Give an unknown face (``person_id``: what its track is called) its visitor: its track's, with
        this look added (merged into an earlier visitor while young, see ``visitor_young_looks``), or the
        nearest visitor to ``probe`` (the track's template), or a new one. A look too poor to name (too
        small, blurred, turned) is too poor to group as well. A look that came within ``match_threshold`` of
        an enrolled face is counted as such (a visitor of many is not learned as a stranger: it may be them)."""
        if not self.on or person_id != UNKNOWN or match.reason in QUALITY_REASONS:
            return []
        near = match.distance is not None and match.distance <= self.s.match_threshold  # maybe that person
        writes: Writes = []
        if kept.still_young():  # its track made it: the better template may fit an earlier one
            earlier = self.visitors.fitting(probe, other_than=kept.visitor)
            if earlier is not None:  # its looks and sightings go to the earlier visitor
                writes.append(partial(self.visitors.merge, earlier, kept.visitor))
                kept.call(earlier)
        if kept.visitor and self.visitors.exists(kept.visitor):
            return writes + [partial(self.visitors.add, kept.visitor, vector, camera, ts_ms, near)]
        vid, new = self.visitors.choose(probe)
        kept.call(vid, self.s.visitor_young_looks if new else 0)
        return writes + [partial(self.visitors.add, kept.visitor, probe, camera, ts_ms, near)]

    def keep(self, kept: Kept, face: Face, index: int, vector: np.ndarray, quality: Quality, rgb: np.ndarray,
             camera: str, ts_ms: int) -> Writes:
        """Store this look as a sighting if it is among its track's ``sightings_per_track`` best (untracked:
        among the best of its label's window on this camera)."""
        if not self.on:
            return []
        if not kept.tracked:
            kept = self._window(camera, face.person_id if face.person_id != UNKNOWN else face.visitor or UNKNOWN,
                                ts_ms)
        sid = "%s-%d-%d" % (camera, ts_ms, index)
        keep, replaced = kept.keep(view_score(quality.size, quality.sharpness, quality.yaw), sid,
                                   self.s.sightings_per_track)
        if not keep:
            return []
        sighting = Sighting(sid, camera, ts_ms, face.person_id, face.visitor, face.track_id, face.reason,
                            face.distance, quality.to_json(), np.asarray(vector, dtype="<f4").tobytes(),
                            thumbnail(rgb, face.box, self.s.thumb_px))
        return [partial(self.indexes.write, sighting, self.ttl_ms, replaced)]

    def _window(self, camera: str, label: str, ts_ms: int) -> Kept:
        """The allowance untracked faces of ``label`` on ``camera`` share in the current window."""
        start, kept = self._untracked.get((camera, label), (None, None))
        if kept is None or start is None or not 0 <= ts_ms - start < self.s.untracked_window_ms:
            if len(self._untracked) > 10_000:
                self._untracked.clear()
            start, kept = ts_ms, Kept()
            self._untracked[(camera, label)] = (start, kept)
        return kept
