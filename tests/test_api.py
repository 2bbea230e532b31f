"""The public API in facestream/__init__.py, used as the README shows it."""

from __future__ import annotations

import time

import pytest

import facestream
from facestream.keys import Keys


def test_the_readme_example_enrolls_follows_and_searches(r, settings, faces_dir):
    summary = facestream.enroll(r, settings, [faces_dir / "gallery" / "Lin-Manuel_Miranda"])
    assert summary.enrolled["Lin-Manuel_Miranda"] >= 1, summary

    face = facestream.Face((10, 10, 60, 60), 0.99, "Lin-Manuel_Miranda", "Lin-Manuel Miranda", 0.08, 0.4)
    sent = facestream.FrameResult("1-0", "stage", 1, int(time.time() * 1000), [face], {"total": 12.5})
    r.xadd(Keys(settings.key_prefix).results("stage"), sent.to_fields())
    kind, entry_id, got = next(iter(facestream.follow(r, settings, start="0", idle_exit_s=2)))
    assert (kind, got) == ("results", sent) and got.to_json()["names"] == ["Lin-Manuel Miranda"]
    assert got.to_json()["faces"][0]["box"] == [10, 10, 60, 60]

    assert facestream.search(r, settings, faces_dir / "gallery" / "Lin-Manuel_Miranda" / "1.jpg") == []  # nothing seen
    with pytest.raises(facestream.FacestreamError, match="no such file"):
        facestream.search(r, settings, faces_dir / "nobody.jpg")


def test_unknown_names_are_attribute_errors():
    with pytest.raises(AttributeError, match="no attribute 'Gallery'"):
        facestream.Gallery  # noqa: B018 - not part of the public API
    assert set(facestream.__all__) >= {"Settings", "Worker", "Producer", "follow", "enroll", "search"}
