"""One schema per record: what the Lua commit script writes is what the record types read and write."""

from __future__ import annotations

import time

from conftest import NoFaces

from facestream.gears.step import Step
from facestream.keys import Keys
from facestream.records import Face, FrameResult, IdentityEvent
from facestream.replies import text


def test_identity_events_written_by_the_commit_script_match_the_record(r, settings):
    """The script builds event fields itself (Redis cannot call Python): both definitions must agree."""
    keys = Keys(settings.key_prefix)
    stream = keys.frames("cam")
    step = Step(settings, NoFaces(), r.execute_command, "w")  # committing needs no models
    seen = FrameResult("1000-0", "cam", 1, 1000, [Face((0, 0, 40, 40), person_id="p1", name="P One")])
    later = FrameResult("9000-0", "cam", 2, 1000 + int(settings.absent_after_s * 1000) + 1, [])
    assert step.commit_result(stream, "", seen) and step.commit_result(stream, "", later)
    (_, appear), (_, leave) = r.xrange(keys.events("cam"))
    for fields, expected in ((appear, IdentityEvent("appear", "cam", "p1", "P One", 1000, "1000-0")),
                             (leave, IdentityEvent("leave", "cam", "p1", "P One", later.ts_ms, "9000-0", "unseen"))):
        assert {text(k): text(v) for k, v in fields.items()} == expected.to_fields()
        assert IdentityEvent.from_fields(fields) == expected


def test_a_result_round_trips_through_its_stream_fields():
    res = FrameResult("5-1", "door", 7, 123, [Face((1, 2, 30, 40), 0.9, "p", "P", 0.1, 0.5, 3)],
                      {"total": 12.5}, "w1", 640, 360, 1)
    assert FrameResult.from_fields(res.to_fields()) == res


def test_a_silent_camera_s_people_leave_once_however_many_sweep(r, settings):
    from concurrent.futures import ThreadPoolExecutor

    from facestream.presence import CAMERA_SILENT, sweep

    keys = Keys(settings.key_prefix)
    s = settings.replace(absent_after_s=0.5)
    step = Step(s, NoFaces(), r.execute_command, "w")
    seen = FrameResult("1000-0", "cam", 1, 1000, [Face((0, 0, 40, 40), person_id="p1", name="P One"),
                                                  Face((50, 0, 90, 40), visitor="v-000001")])
    assert step.commit_result(keys.frames("cam"), "", seen)
    r.hset(keys.presence("dead"), "p2", "5|P Two")  # listed on a camera that never answered a frame

    def sweeps() -> list:
        return sweep(r.execute_command, keys, ["cam", "dead"], s.absent_after_s, s.events_maxlen)

    first = {x.camera: x for x in sweeps()}
    assert first["cam"].online and first["cam"].left == 0 and r.hlen(keys.presence("cam")) == 2
    assert not first["dead"].online and first["dead"].left == 1 and first["dead"].age_ms == -1
    time.sleep(0.7)  # longer than absent_after_s without an answer
    with ThreadPoolExecutor(4) as pool:  # the workers' heartbeats and the bridge at once
        left = sum(x.left for done in pool.map(lambda _: sweeps(), range(8)) for x in done)
    assert left == 2 and not r.exists(keys.presence("cam")), "each leaves exactly once"
    leaves = [IdentityEvent.from_fields(f) for _, f in r.xrange(keys.events("cam")) if f[b"kind"] == b"leave"]
    assert sorted((e.person_id, e.reason, e.ts_ms, e.frame_id) for e in leaves) == [
        ("p1", CAMERA_SILENT, 1000, ""), ("v-000001", CAMERA_SILENT, 1000, "")]
    assert step.commit_result(keys.frames("cam"), "", FrameResult("2000-0", "cam", 2, 2000, [Face(
        (0, 0, 40, 40), person_id="p1", name="P One")]))
    kinds = [text(f[b"kind"]) for _, f in r.xrange(keys.events("cam"))]
    assert kinds[-1] == "appear", "back on the answered camera: appears again"
