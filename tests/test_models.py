"""Face models, the gallery in the real embedded Redis, enrollment and the open-set decision."""

from __future__ import annotations

import numpy as np
import pytest

from facestream.config import load_settings
from facestream.errors import BackendUnavailable, BadFrame, GalleryError
from facestream.models.curation.enroll import Options, enroll, plan
from facestream.models.matcher import Policy, decide
from facestream.models.store.gallery import FaceEntry, Gallery
from facestream.models.vision.analyzer import FaceAnalyzer, main_face
from facestream.models.vision.detect import DETECTORS, make_detector
from facestream.models.vision.dlib_detect import CnnDetector, HogDetector
from facestream.models.vision.embed import make_embedder, predictor_box
from facestream.models.vision.image import decode, encode_jpeg
from facestream.models.vision.retinaface import RetinaFaceDetector
from facestream.records import UNKNOWN


@pytest.fixture(scope="module")
def analyzer() -> FaceAnalyzer:
    return FaceAnalyzer(load_settings())


def unit(rng: np.random.Generator, n: int) -> np.ndarray:
    v = rng.standard_normal((n, 128)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_backend_selection():
    s = load_settings()
    assert s.detector == "retinaface" and isinstance(make_detector("retinaface", s), RetinaFaceDetector)
    assert isinstance(make_detector("hog", s), HogDetector)
    assert isinstance(make_detector("cnn", s), CnnDetector)
    assert {d: make_detector(d, s).name for d in ("retinaface", "hog", "cnn")} == {d: d for d in ("retinaface", "hog", "cnn")}
    assert make_embedder(load_settings(embedder="dlib")).dim == make_embedder(s).dim == 128
    with pytest.raises(BackendUnavailable, match="unknown detector 'yolo'; choose one of " + ", ".join(DETECTORS)):
        FaceAnalyzer(load_settings(detector="yolo"))  # at start-up, not on the first frame


def test_mtcnn_missing_names_the_extra():
    try:
        import mtcnn  # noqa: F401
    except ImportError:
        with pytest.raises(BackendUnavailable, match=r"facestream\[mtcnn\]"):
            make_detector("mtcnn", load_settings())
    else:
        assert make_detector("mtcnn", load_settings()).name == "mtcnn"


def test_decode_keeps_rgb_order_and_refuses_garbage():
    rgb = np.zeros((64, 64, 3), np.uint8)
    rgb[..., 0] = 200  # pure red
    back = decode(encode_jpeg(rgb, 95))
    assert back[..., 0].mean() > 180 and back[..., 2].mean() < 30
    with pytest.raises(BadFrame, match="not a decodable image"):
        decode(b"\xff\xd8\xff\xe0 this is not a jpeg")
    with pytest.raises(BadFrame, match="empty"):
        decode(b"")


def test_huge_frame_is_refused_before_decoding():
    big = encode_jpeg(np.zeros((600, 800, 3), np.uint8))
    with pytest.raises(BadFrame, match="over max_frame_pixels"):
        decode(big, max_pixels=800 * 599)


def test_embedding_equals_face_recognition_reference(analyzer, faces_dir):
    """Our decode + align + embed path gives face_recognition's own vector (so channel order is right)."""
    face_recognition = pytest.importorskip("face_recognition")
    path = next((faces_dir / "gallery" / "Barack_Obama").iterdir())
    rgb = decode(path.read_bytes())
    dets = analyzer.detect(rgb)
    assert len(dets) >= 1
    vec = analyzer.embedder.embed(rgb, dets[:1]).vectors[0]
    left, top, right, bottom = predictor_box(dets[0])  # RetinaFace's box, re-cut as dlib's detector cuts one
    ref = np.asarray(face_recognition.face_encodings(rgb, [(top, right, bottom, left)])[0], np.float32)
    assert np.allclose(vec, ref / np.linalg.norm(ref), atol=1e-4)
    # The same image in BGR order gives a clearly different vector: the order matters and is handled once.
    bgr_vec = analyzer.embedder.embed(np.ascontiguousarray(rgb[..., ::-1]), dets[:1]).vectors[0]
    assert ((bgr_vec - vec) ** 2).sum() > 1e-3
    # More views average nearby vectors: close to the single view, not equal, still unit length.
    for views in (2, 4):
        more = analyzer.embedder.embed(rgb, dets[:1], views)
        assert 1e-4 < ((more.vectors[0] - vec) ** 2).sum() < 0.05
        assert np.linalg.norm(more.vectors[0]) == pytest.approx(1.0, abs=1e-5)
    q = analyzer.embedder.embed(rgb, dets[:1]).quality[0]
    assert q.size == dets[0].size and q.sharpness > 5 and abs(q.yaw) < 0.3  # a sharp frontal portrait


def test_decide_threshold_margin_cohort_and_reasons():
    nn = [("ann", 0.20), ("ann", 0.25), ("bob", 0.22)]
    m = decide(nn, Policy(0.3))
    assert (m.person_id, m.reason) == ("ann", "named")
    assert decide(nn, Policy(0.1)).reason == "below_threshold"
    m = decide(nn, Policy(0.3, margin=0.05))  # bob is only 0.02 behind
    assert (m.person_id, m.reason) == (UNKNOWN, "ambiguous") and m.runner_up == pytest.approx(0.22)
    # A cohort face as close as ann: this face looks like a stranger, not like ann.
    m = decide(nn, Policy(0.3, cohort_margin=0.0), stranger=0.19)
    assert (m.person_id, m.reason, m.stranger) == (UNKNOWN, "like_a_stranger", 0.19)
    assert decide(nn, Policy(0.3, cohort_margin=0.0), stranger=0.21).person_id == "ann"
    assert decide(nn, Policy(0.3), stranger=0.01).person_id == "ann"  # the default never consults the cohort
    assert decide(nn, Policy(0.3), quality_reason="turned").reason == "turned"
    assert decide([], Policy(0.3)).distance is None
    assert 0 < decide([("ann", 0.1)], Policy(0.3)).confidence < 1


def test_policy_gates_and_stored_calibration():
    p = Policy(0.13, 0.03, 0.0, min_face_px=32, min_sharpness=5, max_yaw=0.45)
    assert p.gate(31) == "too_small" and p.gate(40, 4.0, 0.0) == "blurry" and p.gate(40, 50.0, -0.5) == "turned"
    assert p.gate(40, 50.0, 0.1) is None
    stored = p.calibrated(Policy(0.11, 0.0, 0.01, source="cal").to_json(far=0.01))
    assert (stored.threshold, stored.margin, stored.cohort_margin, stored.source) == (0.11, 0.0, 0.01, "cal")
    assert stored.min_face_px == 32  # the gates stay the settings'
    for bad in ("{", "[]", '{"threshold": 0.1}', '{"threshold": 9, "margin": 0, "cohort_margin": 0}'):
        with pytest.raises(ValueError, match="policy"):
            p.calibrated(bad)


def test_gallery_roundtrip_and_delete_removes_every_vector(r, settings):
    g = Gallery(r, settings)
    v = unit(np.random.default_rng(0), 5)
    g.add_person("ann", "Ann", [FaceEntry(v[i], f"a{i}") for i in range(3)], meta={"team": "red"})
    g.add_person("bob", "Bob", [FaceEntry(v[3], "b0")])
    assert [(p.person_id, p.faces) for p in g.people()] == [("ann", 3), ("bob", 1)]
    assert g.person("ann").meta == {"team": "red"}
    assert g.search(v[1], k=1) == [("ann", pytest.approx(0.0, abs=1e-5))]
    g.rename("ann", "Ann Lee")
    g.add_person("ann", "folder name", [FaceEntry(v[4], "a4")])
    assert g.person("ann").name == "Ann Lee" and g.size() == 5
    assert g.delete("ann") == 4
    assert g.size() == 1
    assert {pid for pid, _ in g.search(v[0], k=10)} == {"bob"}
    with pytest.raises(GalleryError, match="no person"):
        g.person("ann")
    with pytest.raises(GalleryError, match="reserved"):
        g.add_person(UNKNOWN, None, [FaceEntry(v[0], "x")])


def test_index_dimension_mismatch_is_refused(r, settings):
    Gallery(r, settings, dim=128).ensure_index()
    Gallery(r, settings, dim=128).ensure_index()  # idempotent
    with pytest.raises(GalleryError, match="128-d L2 .* 64-d"):
        Gallery(r, settings, dim=64).ensure_index()


def test_empty_gallery_answers_unknown(r, settings):
    assert Gallery(r, settings).search(unit(np.random.default_rng(1), 1)[0]) == []


def test_enroll_folder_reports_bad_files_and_unknown_face_stays_unknown(r, settings, faces_dir, tmp_path):
    src = faces_dir / "gallery"
    people = ["Barack_Obama", "Angela_Merkel"]
    for p in people:
        (tmp_path / p).mkdir()
        for f in sorted((src / p).iterdir())[:2]:
            (tmp_path / p / f.name).write_bytes(f.read_bytes())
    (tmp_path / "Angela_Merkel" / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0garbage")
    (tmp_path / "Angela_Merkel" / "notes.txt").write_text("not an image")
    items, skipped = plan([tmp_path])
    g = Gallery(r, settings)
    summary = enroll(g, items, settings, Options(), workers=1)
    reasons = dict(skipped + summary.skipped)
    assert "not an image" in reasons[str(tmp_path / "Angela_Merkel" / "notes.txt")]
    assert reasons[str(tmp_path / "Angela_Merkel" / "corrupt.jpg")].startswith("unreadable")
    assert set(summary.enrolled) == set(people) and sum(summary.enrolled.values()) >= 3
    analyzer = FaceAnalyzer(settings)

    def named(path):  # the live path on a photo: detect, embed the main face, KNN, decide
        rgb = decode(path.read_bytes())
        dets = analyzer.detect(rgb)
        assert dets, f"no face in {path}"
        vec = analyzer.embedder.embed(rgb, [dets[main_face(dets, rgb.shape)]]).vectors[0]
        return decide(g.search(vec), Policy.of(settings)).person_id

    assert named(next((faces_dir / "probes" / "_unknown").iterdir())) == UNKNOWN
    assert named(next((faces_dir / "probes" / "Barack_Obama").iterdir())) == "Barack_Obama"


def test_enroll_video_keeps_diverse_faces(r, settings, faces_dir):
    clip = faces_dir / "videos" / "hamilton_white_house_2009.mp4"
    g = Gallery(r, settings)
    items, _ = plan([clip], person="clip_person")
    summary = enroll(g, items, settings, Options(video_every_s=0.5, max_per_video=5), workers=1)
    assert 1 <= summary.enrolled["clip_person"] <= 5
    assert g.count_faces("clip_person") == summary.enrolled["clip_person"]


def test_without_a_calibration_the_threshold_follows_the_target_as_the_gallery_grows():
    """The shipped impostor model turns max_false_accepts into a threshold per gallery size: tighter for more
    faces, never looser than match_threshold, and at it the model expects the target share of strangers near."""
    from facestream.config import Settings
    from facestream.models.impostors import impostor_tail

    s = Settings()
    base = Policy.of(s, "dlib-resnet-v1")
    assert impostor_tail("dlib-resnet-v1") and base.max_false_accepts == s.max_false_accepts
    thresholds = [base.for_gallery(n).threshold for n in (10, 100, 1_000, 10_000, 100_000)]
    assert thresholds == sorted(thresholds, reverse=True) and thresholds[0] == s.match_threshold
    assert thresholds[-1] < thresholds[2] < s.match_threshold
    for n in (1_000, 10_000):
        assert base.for_gallery(n).near_strangers(n) == pytest.approx(s.max_false_accepts, rel=0.05)
    assert "1000 gallery faces" in base.for_gallery(1_000).describe()
    # An embedder with no shipped model decides with the fixed threshold, and says so.
    own = Policy.of(s, "my-arcface")
    assert own.for_gallery(100_000).threshold == s.match_threshold and "no impostor model" in own.source
    # A stored calibration is the user's own measurement: the shipped target no longer applies to it.
    calibrated = base.calibrated(Policy(0.11, 0.02, 0.0, source="cal").to_json())
    assert calibrated.max_false_accepts == 0 and calibrated.for_gallery(100_000).threshold == 0.11
