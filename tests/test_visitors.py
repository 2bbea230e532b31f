"""Visitors, search, naming and forgetting on the Hamilton clip with nobody enrolled (real models and server)."""

from __future__ import annotations

import cv2
import pytest

from facestream.gears.step import Step
from facestream.gears.tracks import CameraTracks
from facestream.keys import Keys
from facestream.models.curation.library import find, forget, name_visitor, photo_vector
from facestream.models.evaluation.evaluate import segment_scores
from facestream.models.vision.image import encode_jpeg
from facestream.models.vision.scan import CameraScan, scan_plan
from facestream.records import UNKNOWN, Frame, FrameResult, IdentityEvent

CLIP = "hamilton_white_house_2009.mp4"
LIN = "Lin-Manuel_Miranda"
CLOSE_UP = (3.18, 7.88)  # labels.json: his medium close-up (clip time, s)


def _play(step: Step, faces_dir, camera: str, t0_ms: int) -> list[FrameResult]:
    """The clip on one camera through the worker's default path (scan + tracks), results committed."""
    cap = cv2.VideoCapture(str(faces_dir / "videos" / CLIP))
    fps = cap.get(cv2.CAP_PROP_FPS)
    s, stream = step.s, Keys(step.s.key_prefix).frames(camera)
    tracks, scan, out = CameraTracks(s.track_reembed_s), CameraScan(scan_plan(s)), []
    while True:
        ok, bgr = cap.read()
        if not ok:
            return out
        seq = len(out) + 1
        frame = Frame(camera, seq, t0_ms + round(seq * 1000 / fps), 640, 360,
                      encode_jpeg(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)))
        result = step.finish(step.prepare(stream, f"{seq}-0", frame.to_fields(), scan), tracks, scan)
        step.commit_result(stream, "", result)
        out.append(result)


def _close_up_visitors(results: list[FrameResult], fps: float = 29.97) -> set[str]:
    return {f.visitor for x in results if CLOSE_UP[0] <= 0.852 + (x.seq - 1) / fps < CLOSE_UP[1]
            for f in x.faces if f.visitor}


@pytest.fixture
def step(r, settings):
    from facestream.models.vision.analyzer import FaceAnalyzer

    return Step(settings, FaceAnalyzer(settings), r.execute_command, "t")


def test_a_stranger_keeps_one_visitor_id_is_found_by_photo_named_by_one_command_and_forgotten(
        r, settings, step, faces_dir):
    keys = Keys(settings.key_prefix)
    first = _play(step, faces_dir, "cam1", 1_000_000)
    ids = _close_up_visitors(first)
    assert len(ids) == 1, f"one visitor id for his one continuous appearance, got {ids}"
    (lin,) = ids
    assert all(f.person_id == UNKNOWN for x in first for f in x.faces), "nobody is enrolled"
    events = [IdentityEvent.from_fields(f) for _, f in r.xrange(keys.events)]
    assert any(e.kind == "appear" and e.person_id == lin and e.camera == "cam1" for e in events), events
    # His separate appearance, on another camera later: the same visitor.
    assert _close_up_visitors(_play(step, faces_dir, "cam2", 2_000_000)) == {lin}

    # Search by a gallery photo of him: his sightings come first.
    hits = find(r, settings, photo_vector(faces_dir / "gallery" / LIN / "1.jpg", settings), limit=10, max_distance=4)
    assert hits and hits[0].sighting.visitor == lin and {h.sighting.camera for h in hits[:4]} == {"cam1", "cam2"}
    close = [h for h in hits if h.distance <= settings.search_max_distance]
    assert close and all(h.sighting.visitor == lin for h in close), [(h.sighting.visitor, h.distance) for h in hits]

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
