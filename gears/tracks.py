"""Face tracks on one camera, so a face already named is not embedded again on every frame.

Detections are associated across frames by ByteTrack (roboflow ``trackers``); each track's state is a
:class:`facestream.gears.track.Track`, labelled by a vote over the open-set decisions of the embeddings
made on it. A tracked face is embedded again only when its last embedding is older than
``track_reembed_s`` (a quarter of that while the track is not named: a poor view may hide a known
face; and at the latest after as many frames at ``track_fps``, for files played faster than real time)
or the face grew by half (a better view). A new embedding far from the track's previous one
(``track_split_distance``) means the tracker joined two people (a crossing): the track's votes are
discarded and it starts over. A cut (the whole picture changes at once: a new shot, a PTZ move) ends
every track: a track named after one person must not carry the name onto whoever takes its place in the
next shot (measured on the Hamilton clip: at the cut to the audience, Barack Obama's blurred three-quarter
looks came 0.22 from Lin-Manuel Miranda's last look, inside the split distance, and the track's template
named him Miranda for the rest of the clip).

Frames must be fed in capture order; the worker guarantees that by giving each camera to one worker
at a time (see :mod:`facestream.gears.worker`).
"""

from __future__ import annotations

import warnings
from dataclasses import replace
from typing import Any

import cv2
import numpy as np
import supervision as sv
from trackers import ByteTrackTracker

from facestream.gears.track import Kept, Track
from facestream.models.matcher import CONFIRMING, Match
from facestream.models.types import Detection
from facestream.records import UNKNOWN


class CameraTracks:
    """ByteTrack plus identity votes for one camera's face tracks."""

    def __init__(self, reembed_s: float, split_distance: float, lost_s: float, fps: float, confirm_looks: int = 1,
                 confirm_confidence: float = 1.0, cut_delta: float = 255.0):
        self.reembed_s, self.split_distance, self.fps, self.cut_delta = reembed_s, split_distance, fps, cut_delta
        self.confirm_looks, self.confirm_confidence = confirm_looks, confirm_confidence
        self._tracker = ByteTrackTracker(lost_track_buffer=max(1, round(lost_s * fps)), minimum_consecutive_frames=1,
                                         minimum_iou_threshold=0.3)
        self._tracks: dict[int, Track] = {}
        self._fresh: list[tuple[Detection, Track]] = []  # last frame's untracked faces, to seed their tracks
        self._scene: np.ndarray | None = None  # the previous frame, grey, 64x36 (to see cuts)
        self._base, self._last_id = 0, -1  # track ids after a cut go on from the last one given
        self.last_ts = -1e18
        self.cuts = 0

    @classmethod
    def of(cls, s: Any) -> CameraTracks:
        """A camera's tracks with the ``track_*`` settings of ``s``."""
        return cls(s.track_reembed_s, s.track_split_distance, s.track_lost_s, s.track_fps, s.confirm_looks,
                   s.confirm_confidence, s.track_cut_delta)

    def update(self, detections: list[Detection], ts_s: float, rgb: np.ndarray | None = None) -> list[int | None]:
        """Associate this frame's detections with tracks; the track id of each (None: not tracked yet). ``rgb``:
        the frame, to see a cut (None: not decoded, unchanged)."""
        self.last_ts = ts_s
        if rgb is not None and self._cut(rgb):
            self._tracker.reset()  # ByteTrack numbers from 1 again: ids go on from the last one, never reused
            self._base, self._tracks, self._fresh = self._last_id + 1, {}, []
            self.cuts += 1
        if not detections and not self._tracks and not self._tracker.tracks:  # an empty scene: nothing to age
            self._fresh = []
            return []
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
            ids[int(i)] = self._base + int(tid) if tid >= 0 else None
        self._last_id = max([self._last_id] + [t for t in ids if t is not None])
        self._seed_new_tracks(detections, ids)
        live = {t for t in ids if t is not None}
        for tid in live & self._tracks.keys():
            self._tracks[tid].frames_since += 1
        alive = {self._base + t.tracker_id for t in self._tracker.tracks}
        for tid in [t for t in self._tracks if t not in live and t not in alive]:
            del self._tracks[tid]
        return ids

    def _cut(self, rgb: np.ndarray) -> bool:
        """Whether ``rgb`` is a new picture, not the next frame of the previous one (see the module doc)."""
        scene = cv2.cvtColor(cv2.resize(rgb[::8, ::8], (64, 36), interpolation=cv2.INTER_AREA), cv2.COLOR_RGB2GRAY)
        before, self._scene = self._scene, scene
        return before is not None and float(cv2.absdiff(scene, before).mean()) > self.cut_delta

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
        m = t.label()[2]  # not named, or not yet confirmed: look again soon (maybe just a poor view)
        named = m is not None and m.person_id != UNKNOWN and self._confirmed(t, m)
        every = self.reembed_s if named else self.reembed_s / 4
        return (ts_s - t.embedded_at >= every or t.frames_since >= every * self.fps
                or detection.size >= 1.5 * t.embedded_size)

    def template(self, track_id: int | None, vector: np.ndarray) -> np.ndarray:
        """What to search with: the mean of this face's embeddings on its track so far and ``vector``
        (several looks at one face average out what a single frame gets wrong), or ``vector`` alone for a
        new face or one unlike its track's (the tracker joined two people)."""
        t = self._tracks.get(track_id) if track_id is not None else None
        if t is None or t.vector is None or t.other_face(vector, self.split_distance):
            return vector
        return t.template(vector)

    def looked_at(self, track_id: int | None) -> float:
        """Camera time of this face's last embedding (long ago if never)."""
        t = self._tracks.get(track_id) if track_id is not None else None
        return t.embedded_at if t is not None else -1e18

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
        if t.other_face(vector, self.split_distance):
            t = self._tracks[track_id] = Track()  # a different face took over this track
        t.record(detection, ts_s, vector, match, name)
        return t.kept

    def kept(self, track_id: int | None) -> Kept | None:
        """What a track remembers (None: not a track yet)."""
        t = self._tracks.get(track_id) if track_id is not None else None
        return t.kept if t is not None else None

    def label(self, track_id: int) -> tuple[str, str, Match | None]:
        return self._tracks[track_id].label()

    def called(self, track_id: int | None, match: Match | None) -> Match | None:
        """What a face is published as: its track's vote (an untracked face: its own ``match``), but a name
        only once confirmed, by ``confirm_looks`` looks that named the person or one look at least
        ``confirm_confidence`` inside the threshold; until then unknown, reason ``confirming``."""
        m = self.voted(track_id) or match
        t = self._tracks.get(track_id) if track_id is not None else None
        if m is None or m.person_id == UNKNOWN or self._confirmed(t, m):
            return m
        return replace(m, person_id=UNKNOWN, confidence=0.0, reason=CONFIRMING)

    def _confirmed(self, t: Track | None, m: Match) -> bool:
        """Whether the name ``m`` stands: ``confirm_looks`` of the track's looks said so (an untracked face has
        one), or one was ``confirm_confidence`` inside the threshold."""
        looks = t.votes[m.person_id] if t is not None else 1
        return looks >= self.confirm_looks or m.confidence >= self.confirm_confidence

    def voted(self, track_id: int | None) -> Match | None:
        """The decision a track's vote stands for (None: not a track yet)."""
        t = self._tracks.get(track_id) if track_id is not None else None
        return t.label()[2] if t is not None else None

