"""One schema per record: what the Lua commit script writes is what the record types read and write."""

from __future__ import annotations

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
                             (leave, IdentityEvent("leave", "cam", "p1", "P One", later.ts_ms, "9000-0"))):
        assert {text(k): text(v) for k, v in fields.items()} == expected.to_fields()
        assert IdentityEvent.from_fields(fields) == expected


def test_a_result_round_trips_through_its_stream_fields():
    res = FrameResult("5-1", "door", 7, 123, [Face((1, 2, 30, 40), 0.9, "p", "P", 0.1, 0.5, 3)],
                      {"total": 12.5}, "w1", 640, 360, 1)
    assert FrameResult.from_fields(res.to_fields()) == res
