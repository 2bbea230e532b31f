"""Naming: the cohort in the real embedded Redis, the calibration's fit and split, reasons and feedback."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from facestream.errors import FacestreamError
from facestream.gears.step import FrameEntry, Step
from facestream.keys import Keys
from facestream.models.curation.enroll import Summary
from facestream.models.curation.feedback import FaceRef, embed_face, is_person, not_person
from facestream.models.evaluation.identify import Probe, Probes, Split, cross_validated, fit, policy_in_force
from facestream.models.matcher import Policy
from facestream.models.store.cohort import Cohort
from facestream.models.store.gallery import FaceEntry, Gallery
from facestream.models.vision.analyzer import FaceAnalyzer
from facestream.models.vision.image import decode, encode_jpeg
from facestream.records import UNKNOWN, Frame, FrameResult


def unit(rng: np.random.Generator, n: int) -> np.ndarray:
    v = rng.standard_normal((n, 128)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_cohort_nearest_remove_and_clear(r, settings):
    c = Cohort(r, settings)
    v = unit(np.random.default_rng(3), 3)
    assert c.nearest(v[0]) is None  # no cohort yet: nothing vetoes
    c.add([FaceEntry(v[0], "cohort:a.jpg"), FaceEntry(v[1], "feedback:1-0#0")], not_of="ann")
    assert c.size() == 2 and c.nearest(v[0]) == pytest.approx(0.0, abs=1e-5)
    assert c.nearest(v[2]) == pytest.approx(min(((v[2] - v[k]) ** 2).sum() for k in (0, 1)), abs=1e-4)
    assert c.remove("feedback:") == 1 and c.size() == 1
    assert Gallery(r, settings).search(v[0]) == []  # the cohort is not in the gallery's index
    c.clear()
    assert c.size() == 0 and c.nearest(v[0]) is None


def _probes(rng: np.random.Generator) -> Probes:
    """Known probes whose right person is nearest (d1 0.05-0.15), and strangers as close to the gallery
    (d1 0.08-0.20) but closer still to a cohort face: only the cohort tells them apart."""
    items = []
    for k in range(200):
        d1 = rng.uniform(0.05, 0.15)
        items.append(Probe(f"k{k}", f"p{k % 50}", [(f"p{k % 50}", d1), ("other", d1 + 0.1)], d1 + 0.05))
    for k in range(300):
        d1 = rng.uniform(0.08, 0.20)
        items.append(Probe(f"s{k}", UNKNOWN, [(f"p{k % 50}", d1), ("other", d1 + 0.1)], d1 - 0.02))
    return Probes(Summary(), [FaceEntry(np.zeros(128, np.float32), "c")], items)


def test_fit_meets_the_false_accept_target_and_uses_the_cohort():
    probes = _probes(np.random.default_rng(0))
    base = Policy(0.13, 0.03, 0.0)
    raw = fit(Probes(probes.enrolled, [], probes.items), 0.01, base)  # no cohort: only distances
    got = fit(probes, 0.01, base, "test")
    assert probes.score(raw).far <= 0.01 and probes.score(got).far <= 0.01
    assert probes.score(raw).top1 < 0.6  # distances alone cannot separate them at 1%
    assert probes.score(got).top1 == 1.0 and -0.02 < got.cohort_margin <= 0.05 and got.source == "test"
    top1, far = cross_validated(probes, 0.01, base)
    assert top1 > 0.95 and far <= 0.02


def test_split_never_puts_one_person_in_two_parts(tmp_path):
    rows = [("probes/_unknown/1.jpg", "unknown", "_unknown", "lfw/Zed/Zed_0001.jpg"),
            ("gallery/Ann/1.jpg", "gallery", "Ann", "")]
    rows += [(f"verification/{who}_{n}.jpg", "pair_only", who, "") for who in ["Ann", "Zed"] + [f"P{i}" for i in range(40)]
             for n in range(6)]
    for path, *_ in rows:
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_bytes(b"x")
    with (tmp_path / "manifest.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["path", "split", "identity", "source_path"])
        w.writerows(rows)
    split = Split.of(tmp_path, enrolled={"Ann"})
    who = {part: {p.name.split("_")[0] for p in getattr(split, part)} for part in ("cohort", "strangers")}
    who["distractors"] = set(split.distractors)
    assert "Ann" not in set().union(*who.values())  # enrolled people are never strangers
    assert "Zed" in who["strangers"] and "Zed" not in who["cohort"] | who["distractors"]
    assert not (who["cohort"] & who["strangers"]) and not (who["cohort"] | who["strangers"]) & who["distractors"]
    assert who["cohort"] and who["distractors"]
    assert max(sum(1 for p in split.cohort if p.name.startswith(f"{w}_")) for w in who["cohort"]) <= 4


@pytest.fixture(scope="module")
def analyzer() -> FaceAnalyzer:
    from facestream.config import load_settings

    return FaceAnalyzer(load_settings())


def _answer(r, settings, analyzer, jpeg: bytes) -> tuple[str, FrameResult]:
    """Add ``jpeg`` as a frame of camera 'cam', answer it with the worker's step; (results id, result)."""
    keys = Keys(settings.key_prefix)
    step = Step(settings, analyzer, r.execute_command, "test")
    frame_id = r.xadd(keys.frames("cam"), Frame("cam", 1, 1_700_000_000_000, 0, 0, jpeg).to_fields()).decode()
    fields = r.xrange(keys.frames("cam"), frame_id, frame_id)[0][1]
    assert step.handle(FrameEntry(keys.frames("cam"), frame_id, fields)).kind == "result"
    rid, out = r.xrevrange(keys.results("cam"), count=1)[0]
    return rid.decode(), FrameResult.from_fields(out)


def test_feedback_not_x_leaves_the_same_stranger_unknown_with_a_reason(r, settings, analyzer, faces_dir):
    obama = sorted((faces_dir / "gallery" / "Barack_Obama").iterdir())[0]
    rgb = decode(obama.read_bytes())
    vec = analyzer.embed_still(rgb, analyzer.detect_still(rgb)).vectors[0]
    Gallery(r, settings).add_person("obama", "Barack Obama", [FaceEntry(vec, obama.name)])
    probe = encode_jpeg(decode(sorted((faces_dir / "probes" / "Barack_Obama").iterdir())[0].read_bytes()))
    rid, res = _answer(r, settings, analyzer, probe)
    assert [(f.person_id, f.reason) for f in res.faces] == [("obama", "named")]
    assert set(res.faces[0].quality) == {"size", "sharpness", "yaw"}
    face, named = embed_face(r, settings, analyzer, FaceRef.parse(rid))
    assert named == "obama"
    with pytest.raises(FacestreamError, match="no person"):
        not_person(r, settings, face, "nobody")
    not_person(r, settings, face, "obama")  # "this was not Obama"
    _, again = _answer(r, settings, analyzer, probe)
    assert [(f.person_id, f.reason) for f in again.faces] == [(UNKNOWN, "like_a_stranger")]
    # "this was Obama" after all: the face joins his gallery (and wins again over its cohort twin, a tie).
    Cohort(r, settings).remove("feedback:")
    is_person(r, settings, face, "obama")
    assert Gallery(r, settings).count_faces("obama") == 2
    with pytest.raises(FacestreamError, match="not a face"):
        FaceRef.parse("garbage")
    with pytest.raises(FacestreamError, match="no result"):
        embed_face(r, settings, analyzer, FaceRef.parse("1-0#0"))


def test_a_stored_calibration_reaches_the_step_and_a_bad_one_is_ignored(r, settings):
    keys = Keys(settings.key_prefix)
    assert policy_in_force(r, settings).source.startswith("settings, threshold from max_false_accepts")
    r.set(keys.policy, Policy(0.09, 0.01, 0.02, source="calibrated now").to_json())
    p = policy_in_force(r, settings)
    assert (p.threshold, p.margin, p.cohort_margin, p.source) == (0.09, 0.01, 0.02, "calibrated now")
    r.set(keys.policy, "not json")
    assert policy_in_force(r, settings).threshold == settings.match_threshold


def test_a_malformed_stored_policy_is_logged_once_and_frames_are_still_answered(r, settings, caplog):
    from conftest import NoFaces

    from facestream.gears.worker import Worker

    keys = Keys(settings.key_prefix)
    r.set(keys.policy, '{"threshold": "high"}')
    r.xadd(keys.frames("cam"), Frame("cam", 1, 1, 64, 64, encode_jpeg(np.zeros((64, 64, 3), np.uint8))).to_fields())
    with caplog.at_level("INFO", logger="facestream.worker"):
        w = Worker(r, settings.replace(block_ms=50, tracking=False), NoFaces(), name="w")
        assert w.run(max_idle_s=0.5).results == 1
        w.heartbeat()
    said = [rec for rec in caplog.records if "decision policy" in rec.getMessage()]
    assert len(said) == 1 and said[0].levelname == "WARNING" and "not a decision policy" in said[0].getMessage()


def test_status_shows_the_threshold_the_workers_derived_for_the_gallery(r, settings):
    """Uncalibrated, the workers derive the threshold from max_false_accepts for the gallery's size and say so
    in their heartbeat; status prints it with the expected share of strangers near someone."""
    from conftest import NoFaces

    from facestream.gears.worker import Worker
    from facestream.status import read_status

    rng = np.random.default_rng(0)
    gallery = Gallery(r, settings)
    for k in range(300):  # 300 faces: past the ceiling of match_threshold
        v = rng.standard_normal(128).astype(np.float32)
        gallery.add_person(f"p{k}", f"P {k}", [FaceEntry(v / np.linalg.norm(v), "synthetic")])
    w = Worker(r, settings.replace(tracking=False), NoFaces(), name="w")
    try:
        w.heartbeat()
        lines = "\n".join(read_status(r, settings).lines())
    finally:
        w.stop()
        w.run()
    said = next(line for line in lines.splitlines() if line.startswith("workers decide with:"))
    threshold = float(said.split("threshold ")[1].split(",")[0])
    assert threshold < settings.match_threshold and "for 300 gallery faces" in said, said
    assert f"{100 * settings.max_false_accepts:.2f}% of stranger faces expected within it" in said, said
    assert "shipped impostor model of dlib-resnet-v1" in said, said
