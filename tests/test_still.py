"""Still scenes cost nothing: a camera whose scene has not changed since a searched frame with no face is
answered unsearched (counted as unchanged), and a person walking in is searched and named at once."""

from __future__ import annotations

import time

import cv2
import numpy as np
import pytest

from facestream.config import Settings
from facestream.errors import BadFrame
from facestream.gears.step import Step
from facestream.gears.tracks import CameraTracks
from facestream.keys import Keys
from facestream.models.curation.enroll import enroll, plan
from facestream.models.store.gallery import Gallery
from facestream.models.vision.analyzer import FaceAnalyzer
from facestream.models.vision.image import encode_jpeg
from facestream.models.vision.profile import DetectionProfile
from facestream.models.vision.scan import CameraScan
from facestream.producer.capture import Producer, StillScene
from facestream.records import Frame, FrameResult

CLIP = "hamilton_white_house_2009.mp4"
PERSON = "Barack_Obama"


def _scene(faces_dir) -> np.ndarray:
    """A 1080p scene without a face: the clip's first frame, enlarged, its people painted over (a wall)."""
    cap = cv2.VideoCapture(str(faces_dir / "videos" / CLIP))
    ok, bgr = cap.read()
    assert ok
    rgb = cv2.resize(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), (1920, 1080))
    rgb[:, 100:1700] = cv2.blur(rgb[:, 100:1700], (151, 151))
    return rgb


def _noisy(rgb: np.ndarray, seed: int) -> bytes:
    """The same scene as a camera sends it again: sensor noise (sigma 3), a JPEG of its own."""
    noise = np.random.default_rng(seed).normal(0, 3, rgb.shape)
    return encode_jpeg(np.clip(rgb + noise, 0, 255).astype(np.uint8))


def _walking_in(rgb: np.ndarray, photo: np.ndarray, x: int) -> np.ndarray:
    """The scene with a person (their photo, ~300 px high) at ``x``."""
    out = rgb.copy()
    h = 300
    person = cv2.resize(photo, (round(photo.shape[1] * h / photo.shape[0]), h))
    out[600:600 + h, x:x + person.shape[1]] = person
    return out


def _photo(faces_dir) -> np.ndarray:
    path = sorted((faces_dir / "probes" / PERSON).iterdir())[0]
    return cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)


def test_an_unchanged_faceless_scene_goes_unsearched_until_the_recheck(faces_dir):
    s = Settings()
    scan, scene = CameraScan(DetectionProfile.of(s)), _scene(faces_dir)
    assert not scan.unchanged(_noisy(scene, 0), 0.0), "nothing searched yet: searched"
    scan.follow([], 0.0)
    assert all(scan.unchanged(_noisy(scene, k), k / 15) for k in range(1, 30)), "noise is no change"
    later = s.still_recheck_s + 0.1
    assert not scan.unchanged(_noisy(scene, 99), later), f"searched again after still_recheck_s ({s.still_recheck_s} s)"
    assert scan.unchanged(_noisy(scene, 98), later + 0.05), "read while the recheck is searched: not searched too"
    scan.follow([], later)
    scan.follow([], later + 0.05)
    assert scan.unchanged(_noisy(scene, 100), later + 0.1)
    assert not scan.unchanged(_noisy(scene, 100), later - 60), "a camera clock gone back: searched, not trusted"
    scan.follow([], later - 60)
    scan.follow([], later)
    walked_in = encode_jpeg(_walking_in(scene, _photo(faces_dir), 900))
    assert not scan.unchanged(walked_in, later + 0.2), "a person walking in is a change"
    scan.follow([(950, 650, 1050, 750)], later + 0.2)
    assert not scan.unchanged(_noisy(scene, 101), later + 0.3), "with a face followed, every frame is searched"
    scan.follow([], later + 0.4)  # the face gone: still scenes may go unsearched again
    assert not scan.unchanged(b"\xff\xd8 not a jpeg", later + 0.5), "a broken JPEG goes to the full decode"
    off = CameraScan(DetectionProfile.of(Settings(still_recheck_s=0)))
    off.follow([], 0.0)
    assert not off.unchanged(_noisy(scene, 0), 0.0) and not off.unchanged(_noisy(scene, 1), 0.1)


def test_a_still_camera_is_answered_unsearched_and_a_person_walking_in_is_named(r, settings, faces_dir):
    """Through the worker's step (scan and tracks, results committed): 3 s of an empty scene, then a person
    enrolled from other photos walks in. The still frames are answered unchanged; the person's face is found on
    the first frame they are in and named on the same frames as with the gate off."""
    items, _ = plan([faces_dir / "gallery" / PERSON])
    enroll(Gallery(r, settings), items, settings, workers=1)
    scene, photo = _scene(faces_dir), _photo(faces_dir)
    frames = [_noisy(scene, k) for k in range(45)] + [encode_jpeg(_walking_in(scene, photo, 200 + 20 * k))
                                                      for k in range(10)]
    analyzer = FaceAnalyzer(settings)

    def play(s: Settings, camera: str) -> tuple[list[FrameResult], float]:
        step, stream = Step(s, analyzer, r.execute_command, "t"), Keys(s.key_prefix).frames(camera)
        tracks, scan, out = CameraTracks.of(s), CameraScan(DetectionProfile.of(s)), []
        cpu = time.process_time()
        for seq, jpeg in enumerate(frames, 1):
            frame = Frame(camera, seq, 1_000_000 + round(seq * 1000 / 15), 1920, 1080, jpeg)
            answer = step.finish(step.prepare(stream, f"{int(time.time() * 1000)}-{seq}", frame.to_fields(), scan),
                                 tracks, scan)
            assert step.commit(stream, "", answer).kind == "result"
            out.append(answer.result)
        return out, time.process_time() - cpu

    gated, gated_cpu = play(settings, "still")
    step, scan = Step(settings, analyzer, r.execute_command, "t"), CameraScan(DetectionProfile.of(settings))
    stream = Keys(settings.key_prefix).frames("still")

    def prepared(seq: int, jpeg: bytes):
        return step.prepare(stream, f"1-{seq}", Frame("still", seq, 1000 + seq, 1920, 1080, jpeg).to_fields(), scan)

    scan.follow([], prepared(1, frames[0]).frame.ts_ms / 1000)
    assert prepared(2, frames[1]).unchanged, "the still camera's gate is on"
    with pytest.raises(BadFrame, match="JPEG"):  # a broken frame on it: a dead letter, not unchanged
        prepared(3, b"\xff\xd8 not a jpeg")
    searched, searched_cpu = play(settings.replace(still_recheck_s=0), "searched")
    stored = [FrameResult.from_fields(f) for _, f in r.xrange(Keys(settings.key_prefix).results("still"))]
    assert [x.unchanged for x in stored] == [x.unchanged for x in gated], "unchanged is in the stored result"
    assert sum(x.unchanged for x in gated[:45]) >= 43, "the still frames (all but the first) went unsearched"
    assert not any(x.unchanged for x in gated[45:]) and not any(x.unchanged for x in searched)
    assert all(x.width == 1920 and x.height == 1080 and not x.faces for x in gated[:45])
    named = [any(f.person_id == PERSON for f in x.faces) for x in gated[45:]]
    assert gated[45].faces and any(named) and named == [any(f.person_id == PERSON for f in x.faces)
                                                        for x in searched[45:]], named
    print(f"still scene: {sum(x.unchanged for x in gated)} of 45 frames unsearched; CPU of the 55 frames "
          f"{gated_cpu:.2f} s gated vs {searched_cpu:.2f} s searched")
    assert gated_cpu < searched_cpu / 2


def test_a_producer_sends_a_still_scene_s_last_jpeg_again_and_the_worker_knows_it_unchanged(r, settings, faces_dir,
                                                                                           tmp_path):
    """A camera file: 2 s of an empty scene with sensor noise, then a person walks in. Its producer encodes the
    still frames once and sends that JPEG again (counted), encodes every frame once the person is in; the worker
    answers the resent frames unchanged and names the person as on frames encoded one by one."""
    items, _ = plan([faces_dir / "gallery" / PERSON])
    enroll(Gallery(r, settings), items, settings, workers=1)
    scene, photo = _scene(faces_dir), _photo(faces_dir)
    noisy = [cv2.imdecode(np.frombuffer(_noisy(scene, k), np.uint8), cv2.IMREAD_COLOR) for k in range(30)]
    walking = [cv2.cvtColor(_walking_in(scene, photo, 200 + 20 * k), cv2.COLOR_RGB2BGR) for k in range(8)]
    video = tmp_path / "camera.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"MJPG"), 15, (1920, 1080))
    for bgr in noisy + walking:
        writer.write(bgr)
    writer.release()
    stats = Producer(r, settings, "resend", str(video), realtime=False).run()
    stream = Keys(settings.key_prefix).frames("resend")
    jpegs = [f[b"jpeg"] for _, f in r.xrange(stream)]
    assert stats.sent == len(jpegs) == 38
    again = [jpegs[i] == jpegs[i - 1] for i in range(1, 38)]
    assert stats.resent == sum(again) >= 25 and all(again[:29]), again  # the still frames: the first JPEG again
    assert not any(again[29:]), "a person walking in: every frame encoded anew"

    step, tracks = Step(settings, FaceAnalyzer(settings), r.execute_command, "t"), CameraTracks.of(settings)
    scan = CameraScan(DetectionProfile.of(settings))
    results = []
    for entry_id, fields in r.xrange(stream):
        answer = step.finish(step.prepare(stream, entry_id.decode(), fields, scan), tracks, scan)
        results.append(answer.result)
    assert sum(x.unchanged for x in results[:30]) == 29 and not any(x.unchanged for x in results[30:])
    assert any(f.person_id == PERSON for x in results[30:] for f in x.faces)

    still, n = StillScene(settings), iter(range(1, 10))  # and a still scene is encoded anew every still_recheck_s / 2
    encode = lambda _bgr: b"encoding %d" % next(n)  # noqa: E731
    assert still.jpeg(noisy[0], 0.0, encode) == (b"encoding 1", False)
    assert still.jpeg(noisy[1], settings.still_recheck_s / 2 - 0.1, encode) == (b"encoding 1", True)
    assert still.jpeg(noisy[2], settings.still_recheck_s / 2 + 0.1, encode) == (b"encoding 2", False)
    fast = StillScene(settings.replace(detection="fast"))
    assert [fast.jpeg(x, 0.0, encode)[1] for x in noisy[:2]] == [False, False], "only balanced answers unsearched"


def test_a_bad_frame_on_a_quiet_camera_is_dead_lettered_in_order_by_a_worker_with_detection_threads(r, settings,
                                                                                                    faces_dir):
    """A quiet camera's frames are glanced at in the worker's main thread: a broken one among them is a dead letter
    with its reason (read once), the still frames around it are answered unchanged, in order, nothing lost."""
    from facestream.gears.worker import Worker

    s = settings.replace(detect_threads=2, block_ms=100)
    keys, scene = Keys(s.key_prefix), _scene(faces_dir)
    stream = keys.frames("quiet")
    for seq in range(1, 31):
        jpeg = b"\xff\xd8 not a jpeg" if seq in (12, 20) else _noisy(scene, seq)
        r.xadd(stream, Frame("quiet", seq, 1_000_000 + seq * 66, 1920, 1080, jpeg).to_fields())
    counts = Worker(r, s, FaceAnalyzer(s), name="wq").run(max_idle_s=1.0)
    assert counts.deadletters == 2 and counts.results == 28 and counts.errors == 0, counts
    results = [FrameResult.from_fields(f) for _, f in r.xrange(keys.results("quiet"))]
    assert [x.seq for x in results] == [k for k in range(1, 31) if k not in (12, 20)], "in order, nothing lost"
    assert sum(x.unchanged for x in results) >= 20, "the still frames went unsearched (but those read before the first was)"
    letters = [f for _, f in r.xrange(keys.deadletter("quiet"))]
    assert len(letters) == 2 and all(b"JPEG" in f[b"reason"] for f in letters), letters
