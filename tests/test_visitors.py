"""Visitors, search, naming and forgetting on the Hamilton clip with nobody enrolled (real models and server)."""

from __future__ import annotations

import time

import cv2
import pytest

from facestream.gears.step import Step
from facestream.gears.tracks import CameraTracks
from facestream.keys import Keys
from facestream.models.curation.library import find, forget, name_visitor, photo_vector
from facestream.models.evaluation.evaluate import segment_scores
from facestream.models.vision.image import encode_jpeg
from facestream.models.vision.profile import DetectionProfile
from facestream.models.vision.scan import CameraScan
from facestream.records import UNKNOWN, Frame, FrameResult, IdentityEvent

CLIP = "hamilton_white_house_2009.mp4"
LIN = "Lin-Manuel_Miranda"
CLOSE_UP = (3.18, 7.88)  # labels.json: his medium close-up (clip time, s)


def _play(step: Step, faces_dir, camera: str, t0_ms: int) -> list[FrameResult]:
    """The clip on one camera through the worker's default path (scan + tracks), results committed."""
    cap = cv2.VideoCapture(str(faces_dir / "videos" / CLIP))
    fps = cap.get(cv2.CAP_PROP_FPS)
    s, stream = step.s, Keys(step.s.key_prefix).frames(camera)
    tracks, scan, out = CameraTracks.of(s), CameraScan(DetectionProfile.of(s)), []
    while True:
        ok, bgr = cap.read()
        if not ok:
            return out
        seq = len(out) + 1
        frame = Frame(camera, seq, t0_ms + round(seq * 1000 / fps), 640, 360,
                      encode_jpeg(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)))
        entry = f"{int(time.time() * 1000)}-{seq}"  # added just now: on time
        answer = step.finish(step.prepare(stream, entry, frame.to_fields(), scan), tracks, scan)
        step.commit(stream, "", answer)
        out.append(answer.result)


def _his(clip_ms: int, fps: float = 29.97) -> bool:
    """Whether a frame of the clip (ms after its first frame) lies in one of his labelled appearances: the wide
    shot and the close-up (RetinaFace finds him in both; they are two appearances, two visitors)."""
    t = 0.852 + (clip_ms * fps / 1000 - 1) / fps
    return 0.84 <= t < 1.51 or CLOSE_UP[0] <= t < CLOSE_UP[1]


def _in_close_up(seq: int, fps: float = 29.97) -> bool:
    return CLOSE_UP[0] <= 0.852 + (seq - 1) / fps < CLOSE_UP[1]


def _close_up_ids(results: list[FrameResult]) -> list[str]:
    """The visitor ids of the tracked faces of his close-up, in order (a face on one frame only, like his
    profile at the cut, is no part of the continuous appearance)."""
    return [f.visitor for x in results if _in_close_up(x.seq) for f in x.faces if f.visitor and f.track_id is not None]


@pytest.fixture
def step(r, settings):
    from facestream.models.vision.analyzer import FaceAnalyzer

    return Step(settings, FaceAnalyzer(settings), r.execute_command, "t")


def test_a_stranger_keeps_one_visitor_id_is_found_by_photo_named_by_one_command_and_forgotten(
        r, settings, step, faces_dir):
    keys = Keys(settings.key_prefix)
    first = _play(step, faces_dir, "cam1", 1_000_000)
    ids = _close_up_ids(first)
    # One visitor for his close-up: the one it starts with, or, within a few looks, the earlier visitor of his
    # wide shot it turns out to be (merged into it, its sightings relabelled).
    assert ids and len(set(ids[len(ids) // 4:])) == 1, ids
    lin = ids[-1]
    assert set(ids) - {lin} <= {v for v in set(ids) if not r.exists(keys.visitor(v))}, "an id it left was merged"
    assert all(f.person_id == UNKNOWN for x in first for f in x.faces), "nobody is enrolled"
    events = [IdentityEvent.from_fields(f) for _, f in r.xrange(keys.events("cam1"))]
    assert any(e.kind == "appear" and e.person_id == lin and e.camera == "cam1" for e in events), events
    # His separate appearance, on another camera later: the same visitor, within a few looks (his first look
    # there, a turned head at the cut, fits no one; the template of a few looks fits his visitor).
    second = _close_up_ids(_play(step, faces_dir, "cam2", 2_000_000))
    assert second and set(second[len(second) // 4:]) == {lin}, second

    # Search by a gallery photo of him: his sightings come first.
    hits = find(r, settings, photo_vector(faces_dir / "gallery" / LIN / "1.jpg", settings), limit=10, max_distance=4)
    assert hits and hits[0].sighting.visitor == lin and {h.sighting.camera for h in hits[:4]} == {"cam1", "cam2"}
    close = [h for h in hits if h.distance <= settings.search_max_distance]
    assert close and all(_his(h.sighting.ts_ms % 1_000_000) for h in close), [(h.sighting.sighting_id, h.distance)
                                                                             for h in hits]

    # Name him: his next appearance is named.
    named = name_visitor(r, settings, lin, LIN, "Lin-Manuel Miranda")
    assert named.enrolled >= 1 and not r.exists(keys.visitor(lin))
    third = _play(step, faces_dir, "cam3", 3_000_000)
    score = next(x for x in segment_scores(third, faces_dir / "videos" / CLIP) if x.person_id == LIN and x.with_face > 100)
    assert score.share >= 0.8, score.line()

    # Forget him: no key of his is left, nor any presence entry.
    gone = forget(r, settings, LIN)
    assert gone.sightings >= 6 and gone.faces == named.enrolled
    for key in r.scan_iter(match=f"{settings.key_prefix}:*", count=1000):
        kind = r.type(key)
        assert LIN.encode() not in key, key
        if kind == b"hash":
            h = r.hgetall(key)
            assert h.get(b"person_id") != LIN.encode() and LIN.encode() not in h, key
