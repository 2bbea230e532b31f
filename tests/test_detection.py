"""The detector registry, RetinaFace on onnxruntime, the detection profiles and the scan's regions."""

from __future__ import annotations

import threading

import cv2
import numpy as np
import pytest

from facestream.config import load_settings
from facestream.errors import BackendUnavailable
from facestream.models.vision.analyzer import FaceAnalyzer
from facestream.models.vision.detect import DETECTORS, backend, make_detector
from facestream.models.vision.image import decode
from facestream.models.vision.profile import DetectionProfile
from facestream.models.vision.regions import Region, detect_regions
from facestream.models.vision.runtime import providers


@pytest.fixture(scope="module")
def retina():
    return make_detector("retinaface", load_settings())


def _photo(faces_dir, name: str) -> np.ndarray:
    return decode((faces_dir / "multi" / name).read_bytes())


def test_registry_names_every_backend_and_its_smallest_face():
    assert list(DETECTORS)[0] == "retinaface" == load_settings().detector
    assert backend("hog").min_face_px == 64 and backend("retinaface").min_face_px < 32
    with pytest.raises(BackendUnavailable, match="choose one of retinaface, hog, cnn, mtcnn"):
        backend("yolo")


def test_retinaface_finds_the_faces_of_group_photos_with_landmarks(retina, faces_dir):
    rgb = _photo(faces_dir, "kit_harington_rose_leslie.jpg")
    dets = retina.detect(rgb)
    assert len(dets) == 2, [d.box for d in dets]
    for d in dets:
        left, top, right, bottom = d.box
        lm = d.landmarks
        assert lm is not None and lm.shape == (5, 2)
        assert ((lm[:, 0] >= left) & (lm[:, 0] <= right) & (lm[:, 1] >= top) & (lm[:, 1] <= bottom)).all()
        assert lm[0, 0] < lm[1, 0], "eyes in image order: the face's right eye (image left) first"
        assert lm[2, 1] > lm[:2, 1].max() and lm[3:, 1].min() > lm[2, 1] - 2, "nose below the eyes, mouth below"
    assert len(retina.detect(_photo(faces_dir, "obama_biden_two_people.jpg"))) >= 2


def test_retinaface_sees_no_face_in_noise_or_a_blank_frame(retina):
    rng = np.random.default_rng(0)
    false = sum(len(retina.detect(rng.integers(0, 256, (360, 640, 3), dtype=np.uint8))) for _ in range(10))
    assert false == 0
    assert retina.detect(np.full((1080, 1920, 3), 127, np.uint8)) == []


def test_one_session_serves_every_thread(retina, faces_dir):
    rgb = _photo(faces_dir, "kit_harington_rose_leslie.jpg")
    other = make_detector("retinaface", load_settings())
    assert other._session is retina._session, "the model is loaded once per process"
    want = [d.box for d in retina.detect(rgb)]
    got: list[list] = []
    threads = [threading.Thread(target=lambda: got.append([d.box for d in other.detect(rgb)])) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert got == [want] * 4


def test_provider_choice():
    assert providers("cpu", ["CPUExecutionProvider"]) == ["CPUExecutionProvider"]
    assert providers("auto", ["CPUExecutionProvider"]) == ["CPUExecutionProvider"]
    assert providers("auto", ["CUDAExecutionProvider", "CPUExecutionProvider"]) == ["CUDAExecutionProvider",
                                                                                     "CPUExecutionProvider"]
    with pytest.raises(BackendUnavailable, match="onnxruntime-gpu"):
        providers("cuda", ["CPUExecutionProvider"])
    with pytest.raises(BackendUnavailable, match="needs CUDAExecutionProvider"):
        make_detector("retinaface", load_settings(onnx_providers="cuda", onnx_threads=3))


def test_profiles_scale_by_the_detectors_smallest_face():
    s = load_settings()
    fast, balanced, thorough = (DetectionProfile.of(s.replace(detection=p)) for p in ("fast", "balanced", "thorough"))
    assert fast.frame_scale(1920, 1080) == pytest.approx(s.detect_max_side / 1920) and not fast.scans
    assert balanced.frame_scale(1920, 1080) == pytest.approx(s.scan_coarse_px / 1920) and balanced.scans
    assert balanced.frame_scale(400, 300) == 2.0, "small frames are enlarged"
    assert thorough.frame_scale(1920, 1080) == 1.0, "RetinaFace finds 32 px faces at full resolution"
    hog = DetectionProfile.of(s.replace(detection="thorough", detector="hog"))
    assert hog.frame_scale(1920, 1080) == 2.0, "HOG needs 64 px: a 32 px face is searched at 2x"
    assert DetectionProfile.of(s.replace(detector="hog")).scale_for(48) == pytest.approx(64 / 48)


def test_the_whole_frame_pass_runs_on_every_nth_frame_while_faces_are_tracked():
    from facestream.models.vision.scan import CameraScan

    s = load_settings()
    rgb, face = np.zeros((1080, 1920, 3), np.uint8), (800, 300, 1000, 540)
    scan = CameraScan(DetectionProfile.of(s.replace(scan_coarse_every=3)))
    whole = lambda regions: any(r.box == (0, 0, 1920, 1080) for r in regions)  # noqa: E731
    assert all(whole(scan.regions(rgb)) for _ in range(3)), "nobody tracked: the whole frame, every frame"
    scan.follow([face], 0.0)
    seen = [scan.regions(rgb) for _ in range(6)]
    assert [whole(x) for x in seen] == [True, False, False, True, False, False]
    assert all(any(r.box[0] <= face[0] and r.box[2] >= face[2] for r in x) for x in seen), "the face, every frame"
    tiles = lambda regions: [r.box for r in regions if r.scale == scan.scale]  # noqa: E731 (nothing moves here)
    assert [len(tiles(x)) for x in seen] == [0, 1, 1, 0, 1, 1], "the sweep skips the frames of the whole-frame pass"
    swept = {box for _ in range(10) for box in tiles(scan.regions(rgb))}
    assert len(swept | {box for x in seen for box in tiles(x)}) == 8, "every tile within 8 frames without the pass"
    every = CameraScan(DetectionProfile.of(s.replace(scan_coarse_every=1)))
    every.follow([face], 0.0)
    assert all(whole(r) and len(tiles(r)) == 1 for r in (every.regions(rgb) for _ in range(3))), "1: both, every frame"


def test_regions_cheaper_searched_as_one_are_joined():
    from facestream.models.vision.regions import joined

    tile, inside = Region((0, 0, 500, 560), 0.83), Region((100, 100, 180, 200), 0.5)  # a tracked face in the tile
    a, b = Region((1000, 100, 1100, 220), 0.8), Region((1050, 120, 1160, 230), 0.8)  # two moving areas of a crowd
    far = Region((1700, 900, 1900, 1080), 0.8)
    regions = [tile, inside, a, b, far]
    out = joined(regions)
    assert sorted(out, key=lambda r: r.box) == [tile, Region((1000, 100, 1160, 230), 0.8), far]
    for r in regions:  # whatever was searched is searched still, at least as finely
        assert any(o.scale >= r.scale and all(np.subtract(r.box, o.box) * [1, 1, -1, -1] >= 0) for o in out), r
    assert sum(r.cost for r in out) < sum(r.cost for r in regions)
    apart = [Region((0, 0, 300, 300), 0.8), Region((1500, 700, 1800, 1000), 0.8)]
    assert joined(apart) == apart and joined([]) == [] and joined([far]) == [far]


def test_regions_map_boxes_and_landmarks_back_to_the_frame(retina, faces_dir):
    rgb = _photo(faces_dir, "kit_harington_rose_leslie.jpg")
    whole = sorted(retina.detect(rgb), key=lambda d: d.box)
    h, w = rgb.shape[:2]
    canvas = np.zeros((h + 200, w + 300, 3), np.uint8)
    canvas[200:, 300:] = rgb
    found = sorted(detect_regions(retina, canvas, [Region((250, 150, w + 300, h + 200), 0.7)], 8), key=lambda d: d.box)
    assert len(found) == len(whole)
    for a, b in zip(whole, found):
        assert np.abs(np.array(b.box) - np.array(a.box) - [300, 200, 300, 200]).max() <= 6
        assert np.abs(b.landmarks - a.landmarks - [300, 200]).max() <= 6


def test_small_faces_found_in_a_1080p_frame(faces_dir):
    """A 32 px face pasted into a 1080p frame is found by the thorough profile, and by the balanced one's
    sweep within a sweep cycle (here: every tile searched once)."""
    s = load_settings()
    face = _photo(faces_dir, "kit_harington_rose_leslie.jpg")[74:203, 260:351]
    frame = np.full((1080, 1920, 3), 90, np.uint8)
    small = cv2.resize(face, (round(face.shape[1] * 40 / face.shape[0]), 40), interpolation=cv2.INTER_AREA)
    frame[700:740, 1500:1500 + small.shape[1]] = small
    thorough = FaceAnalyzer(s.replace(detection="thorough"))
    assert any(abs(d.box[0] - 1500) < 20 and abs(d.box[1] - 700) < 20 for d in thorough.detect(frame))


def test_a_face_that_appears_between_whole_frame_passes_is_found_on_its_first_frame(faces_dir):
    """A face that steps out from behind someone (here: pasted in) on a frame without the whole-frame pass, too
    large for the fine moving-area budget and across sweep tiles, is searched where it moved at the coarse scale."""
    from facestream.models.vision.scan import CameraScan

    s = load_settings().replace(scan_coarse_every=30)
    analyzer = FaceAnalyzer(s)
    scan = CameraScan(analyzer.profile)
    crop = _photo(faces_dir, "kit_harington_rose_leslie.jpg")[74:203, 260:351]
    tracked, new = (cv2.resize(crop, (round(91 * k), round(129 * k)), interpolation=cv2.INTER_LINEAR) for k in (1.2, 2.4))
    ramp = np.linspace(60, 160, 1920, dtype=np.uint8)
    background = np.dstack([np.tile(ramp, (1080, 1))] * 3)
    background[200:200 + tracked.shape[0], 200:200 + tracked.shape[1]] = tracked
    for i in range(4):  # the first frame's whole pass finds the tracked face; the next three follow it
        regions = scan.regions(background)
        assert all(r.scale > 0 for r in regions), [r for r in regions if r.scale <= 0]
        scan.follow([d.box for d in analyzer.detect_frame(background, regions)], i / 15)
    frame = background.copy()
    top, left = 540 - new.shape[0] // 2, 1440 - new.shape[1] // 2  # across the corner of four sweep tiles
    frame[top:top + new.shape[0], left:left + new.shape[1]] = new
    regions = scan.regions(frame)
    assert not any(r.box == (0, 0, 1920, 1080) for r in regions), "a frame between whole-frame passes"
    found = analyzer.detect_frame(frame, regions)
    assert any(d.box[0] >= left - 20 and d.box[2] <= left + new.shape[1] + 20 and d.size >= 150 for d in found), \
        f"the new face at x {left}..{left + new.shape[1]}: found {[d.box for d in found]}"


def test_rescale_gives_the_exact_size_and_area_averages_strong_shrinks(faces_dir):
    from facestream.models.vision.image import rescale

    rgb = cv2.resize(_photo(faces_dir, "kit_harington_rose_leslie.jpg"), (617, 551))  # odd sides
    for scale in (0.5, 0.37, 0.2, 0.83, 1.6):
        out = rescale(rgb, scale)
        assert out.shape == (round(551 * scale), round(617 * scale), 3), (scale, out.shape)
        if scale <= 0.5:  # area averaged (or as close), not aliased (sampled)
            area = cv2.resize(rgb, out.shape[1::-1], interpolation=cv2.INTER_AREA).astype(int)
            sampled = cv2.resize(rgb, out.shape[1::-1], interpolation=cv2.INTER_NEAREST)
            assert np.abs(out - area).mean() < np.abs(sampled - area).mean() / 2, scale
