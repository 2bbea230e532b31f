"""Measured accuracy on the shared labelled faces, through the pipeline's own code (minutes: real models).

These are the figures the models issue asks for; they run in CI because CI has ../shared beside it.
"""

from __future__ import annotations

import pytest

from models.evaluate import identify, verify_pairs

pytestmark = pytest.mark.slow


def test_verification_on_lfw_pairs(faces_dir, settings):
    v = verify_pairs(faces_dir / "pairs.csv", settings, workers=2)
    print("\n".join(v.lines()))
    assert v.pairs == 1800 and len(v.fold_accuracy) == 3
    assert v.accuracy >= 0.99


def test_open_set_identification(r, faces_dir, settings):
    res = identify(r, faces_dir / "gallery", faces_dir / "probes", settings, workers=2)
    print("\n".join(res.lines(settings.match_threshold, settings.match_margin)))
    assert res.known > 300 and res.unknown > 100
    assert res.top1 >= 0.95
    assert res.far <= 0.02
