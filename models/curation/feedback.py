"""Feedback on a named (or unnamed) face: "this was not X" and "this was X".

A face is referred to as ``RESULT_ID#N``: the entry id of a result in ``fs:results`` (what ``facestream
consume`` and the dashboard show) and the face's index in it (``#0`` may be left out when the frame had
one face). The face is embedded again from its frame, which must still be in its camera's stream.

- **not X**: the face joins the cohort, marked ``not_of=X``; the decision then finds the same stranger's
  next faces as close to the cohort as to X and leaves them ``unknown`` (reason ``like_a_stranger``).
- **is X**: the face is added to X's gallery, through the same quality gates as enrollment.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import redis

from facestream.commands import cameras
from facestream.config import Settings
from facestream.errors import FacestreamError
from facestream.keys import Keys
from facestream.models.curation.enroll import poor_face
from facestream.models.store.cohort import Cohort
from facestream.models.store.gallery import FaceEntry, Gallery
from facestream.models.types import Detection
from facestream.models.vision.analyzer import FaceAnalyzer
from facestream.models.vision.image import decode_frame, thumbnail
from facestream.records import Frame, FrameResult

REF = re.compile(r"^(\d+-\d+)(?:#(\d+))?$")


@dataclass
class FaceRef:
    result_id: str
    index: int | None

    @classmethod
    def parse(cls, ref: str) -> "FaceRef":
        m = REF.match(ref.strip())
        if not m:
            raise FacestreamError(f"{ref!r} is not a face: give RESULT_ID#N (a results entry id, e.g. 1733050000000-0#1)")
        return cls(m.group(1), None if m.group(2) is None else int(m.group(2)))


def embed_face(client: redis.Redis | redis.RedisCluster, settings: Settings, analyzer: FaceAnalyzer,
               ref: FaceRef) -> tuple[FaceEntry, str]:
    """The face ``ref`` points to (found in whichever camera's results hold its id; ``client``: the stream
    tier), embedded again from its frame (like a first look), and whom it was named."""
    keys = Keys(settings.key_prefix)
    entries = [e for c in cameras(client, keys, "results")[0]
               for e in client.xrange(keys.results(c), ref.result_id, ref.result_id)]
    if not entries:
        raise FacestreamError(f"no result {ref.result_id} in any camera's results stream (trimmed, or a typo)")
    result = FrameResult.from_fields(entries[0][1])
    if ref.index is None and len(result.faces) != 1:
        raise FacestreamError(f"result {ref.result_id} has {len(result.faces)} faces: say which, e.g. {ref.result_id}#0")
    index = ref.index or 0
    if not 0 <= index < len(result.faces):
        raise FacestreamError(f"result {ref.result_id} has faces #0-#{len(result.faces) - 1}, not #{index}")
    frames = client.xrange(keys.frames(result.camera), result.frame_id, result.frame_id)
    if not frames:
        raise FacestreamError(f"frame {result.frame_id} is no longer in {keys.frames(result.camera)} "
                              f"(streams keep about frames_maxlen={settings.frames_maxlen} frames): give feedback sooner")
    rgb = decode_frame(Frame.from_fields(frames[0][1], settings.max_frame_bytes).jpeg, settings.max_frame_pixels)
    face = result.faces[index]
    out = analyzer.embedder.embed(rgb, [Detection(face.box, face.score)], settings.probe_views)
    source = f"feedback:{ref.result_id}#{index}"
    return (FaceEntry(out.vectors[0], source, face.score, out.quality[0], thumbnail(rgb, face.box, settings.thumb_px)),
            face.person_id)


def not_person(client: redis.Redis, settings: Settings, face: FaceEntry, person_id: str) -> None:
    """Remember that ``face`` is not ``person_id``: it joins the cohort."""
    Gallery(client, settings).person(person_id)  # a typo is an error, not a silent no-op
    Cohort(client, settings).add([face], not_of=person_id)


def is_person(client: redis.Redis, settings: Settings, face: FaceEntry, person_id: str) -> None:
    """Add ``face`` to ``person_id``'s gallery if it passes enrollment's quality gates."""
    gallery = Gallery(client, settings)
    gallery.person(person_id)
    poor = poor_face(face.quality, settings) if face.quality is not None else None
    if poor:
        raise FacestreamError(f"not added to {person_id}: {poor}")
    gallery.add_person(person_id, None, [face])
