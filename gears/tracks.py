"""Face tracks on one camera, so a face already named is not embedded again on every frame.

Detections are associated across frames by ByteTrack (roboflow ``trackers``). Each track keeps the
open-set decisions of the embeddings made on it and is labelled by a vote over them. A tracked face
is embedded again only when its last embedding is older than ``reembed_s`` (a quarter of that while
the track is not named: a poor view may hide a known face; and at the latest after as many frames
at 30 fps, for files played faster than real time) or the face grew by half (a better view). A new embedding far from the track's previous one (``split_distance``) means the
tracker joined two people (a cut, a crossing): the track's votes are discarded and it starts over.

Frames must be fed in capture order; the worker guarantees that by giving each camera to one worker
at a time (see :mod:`facestream.gears.worker`).
"""

from __future__ import annotations

import warnings
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import supervision as sv
from trackers import ByteTrackTracker

from facestream.models.matcher import QUALITY_REASONS, Match
from facestream.models.store.sightings import Kept
from facestream.models.types import Detection
from facestream.records import UNKNOWN


@dataclass
class Track:
    """What is known about one tracked face: its decisions so far and its latest embedding."""

    votes: Counter = field(default_factory=Counter)  # person_id (or UNKNOWN) -> embeddings that said so
    names: dict[str, str] = field(default_factory=dict)
    best: dict[str, Match] = field(default_factory=dict)  # person_id -> closest match seen
    vector: np.ndarray | None = None  # the latest embedding
    total: np.ndarray | None = None  # the sum of the track's good looks' embeddings (its template, unnormalised)
    gated_total: bool = False  # the total is a single poor look (kept until a good one replaces it)
    embedded_at: float = -1e9
    embedded_size: int = 0
    frames_since: int = 0  # frames seen since the last embedding
    kept: Kept = field(default_factory=Kept)  # its visitor id and the sightings kept of it

    def label(self) -> tuple[str, str, Match | None]:
        """(person_id, name, best match): the person named most often on the track (ties: the closer
        match), as long as they were named at least half as often as the face was not recognised."""
        known = [pid for pid in self.votes if pid != UNKNOWN]
        if not known:
            return UNKNOWN, UNKNOWN, self.best.get(UNKNOWN)

        def rank(pid: str) -> tuple[int, float]:
            d = self.best[pid].distance
            return self.votes[pid], -(d if d is not None else 9.0)

        pid = max(known, key=rank)
        if 2 * self.votes[pid] < self.votes[UNKNOWN]:
            return UNKNOWN, UNKNOWN, self.best[UNKNOWN]
        return pid, self.names.get(pid, UNKNOWN), self.best[pid]


class CameraTracks:
    """ByteTrack plus identity votes for one camera's face tracks."""

    def __init__(self, reembed_s: float = 0.5, split_distance: float = 0.25, lost_s: float = 1.0):
        self.reembed_s = reembed_s
        self.split_distance = split_distance
        self._tracker = ByteTrackTracker(lost_track_buffer=max(1, round(lost_s * 30)), minimum_consecutive_frames=1,
                                         minimum_iou_threshold=0.3)
        self._tracks: dict[int, Track] = {}
        self._fresh: list[tuple[Detection, Track]] = []  # last frame's untracked faces, to seed their tracks
        self.last_ts = -1e18

    def update(self, detections: list[Detection], ts_s: float) -> list[int | None]:
        """Associate this frame's detections with tracks; the track id of each (None: not tracked yet)."""
        self.last_ts = ts_s
        if detections:
            boxes = np.array([d.box for d in detections], dtype=np.float32)
            dets = sv.Detections(xyxy=boxes, data={"i": np.arange(len(detections))})
        else:
            dets = sv.Detections.empty()
        with warnings.catch_warnings():  # two frames with one capture time (a coarse clock) are fine
            warnings.filterwarnings("ignore", message="ByteTrackTracker: duplicate timestamp")
            out = self._tracker.update(dets, timestamp=ts_s)
        ids: list[int | None] = [None] * len(detections)
        for i, tid in zip(out.data.get("i", []), out.tracker_id):
            ids[int(i)] = int(tid) if tid >= 0 else None
        self._seed_new_tracks(detections, ids)
        live = {t for t in ids if t is not None}
        for tid in live & self._tracks.keys():
            self._tracks[tid].frames_since += 1
        alive = {t.tracker_id for t in self._tracker.tracks}
        for tid in [t for t in self._tracks if t not in live and t not in alive]:
            del self._tracks[tid]
        return ids

    def _seed_new_tracks(self, detections: list[Detection], ids: list[int | None]) -> None:
        """ByteTrack gives a track its id on its second frame: start it with the first frame's look."""
        new = [k for k, tid in enumerate(ids) if tid is not None and tid not in self._tracks]
        if new and self._fresh:
            iou = sv.box_iou_batch(np.array([detections[k].box for k in new], np.float32),
                                   np.array([d.box for d, _ in self._fresh], np.float32))
            for row, k in enumerate(new):
                j = int(iou[row].argmax())
                if iou[row, j] >= 0.3:
                    self._tracks[ids[k]] = self._fresh[j][1]  # type: ignore[index]
                    iou[:, j] = 0.0
        self._fresh = []

    def due(self, track_id: int | None, detection: Detection, ts_s: float) -> bool:
        """Whether this face needs an embedding now (untracked faces always do)."""
        if track_id is None or track_id not in self._tracks:
            return True
        t = self._tracks[track_id]
        every = self.reembed_s if t.label()[0] != UNKNOWN else self.reembed_s / 4  # maybe just a poor view
        return (ts_s - t.embedded_at >= every or t.frames_since >= every * 30
                or detection.size >= 1.5 * t.embedded_size)

    def template(self, track_id: int | None, vector: np.ndarray) -> np.ndarray:
        """What to search with: the mean of this face's embeddings on its track so far and ``vector``
        (several looks at one face average out what a single frame gets wrong), or ``vector`` alone for a
        new face or one unlike its track's (the tracker joined two people)."""
        t = self._tracks.get(track_id) if track_id is not None else None
        if t is None or t.vector is None or self._other_face(t, vector):
            return vector
        total = t.total + vector
        return (total / max(float(np.linalg.norm(total)), 1e-12)).astype(np.float32)

    def _other_face(self, t: Track, vector: np.ndarray) -> bool:
        """Whether ``vector`` is too far from the track's latest embedding to be the same face."""
        return float(np.sum((t.vector - vector) ** 2)) > self.split_distance

    def first_look(self, track_id: int | None) -> bool:
        """Whether this face has not been embedded yet (its embedding is then worth more views)."""
        return track_id is None or track_id not in self._tracks or self._tracks[track_id].vector is None

    def record(self, track_id: int | None, detection: Detection, ts_s: float, vector: np.ndarray,
               match: Match, name: str) -> Kept:
        """Add one embedding's decision to the track's vote (an untracked face's seeds its coming track);
        returns what the track remembers (its visitor, its kept sightings)."""
        if track_id is None:
            t = Track()
            self._fresh.append((detection, t))
        else:
            t = self._tracks.setdefault(track_id, Track())
        if t.vector is not None and self._other_face(t, vector):
            t = self._tracks[track_id] = Track()  # a different face took over this track
        if match.reason not in QUALITY_REASONS:  # a poor view is no evidence against a name
            t.votes[match.person_id] += 1
        t.names[match.person_id] = name
        prev = t.best.get(match.person_id)
        if prev is None or (match.distance or 9.0) < (prev.distance or 9.0):
            t.best[match.person_id] = match
        if t.total is None or match.reason not in QUALITY_REASONS:  # a blurred or turned look would blur it
            t.total = vector.copy() if t.total is None or t.gated_total else t.total + vector
            t.gated_total = match.reason in QUALITY_REASONS
        t.vector, t.embedded_at, t.embedded_size, t.frames_since = vector, ts_s, detection.size, 0
        return t.kept

    def kept(self, track_id: int | None) -> Kept | None:
        """What a track remembers (None: not a track yet)."""
        t = self._tracks.get(track_id) if track_id is not None else None
        return t.kept if t is not None else None

    def label(self, track_id: int) -> tuple[str, str, Match | None]:
        return self._tracks[track_id].label()

    def voted(self, track_id: int | None) -> Match | None:
        """The decision a track's vote stands for (None: not a track yet)."""
        t = self._tracks.get(track_id) if track_id is not None else None
        return t.label()[2] if t is not None else None

