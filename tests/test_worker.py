"""The gear step and the consumer-group runner, against the real embedded Redis and real models."""

from __future__ import annotations

import ast
import json
import multiprocessing as mp
import os
import signal
import time
from pathlib import Path

import cv2
import numpy as np
import pytest

from facestream.feed import newest
from facestream.gears.step import FrameEntry, Step
from facestream.gears.worker import Worker
from facestream.keys import Keys
from facestream.models.curation.enroll import enroll, plan
from facestream.models.store.gallery import Gallery
from facestream.models.vision.analyzer import FaceAnalyzer
from facestream.models.vision.image import encode_jpeg
from facestream.records import DeadLetter, Frame, FrameResult, IdentityEvent
from facestream.server import connect

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def analyzer():
    from facestream.config import load_settings

    return FaceAnalyzer(load_settings())


def clip_frames(faces_dir: Path, every: int = 1, limit: int | None = None) -> list[np.ndarray]:
    cap = cv2.VideoCapture(str(faces_dir / "videos" / "hamilton_white_house_2009.mp4"))
    frames, i = [], 0
    while limit is None or len(frames) < limit:
        ok, bgr = cap.read()
        if not ok:
            break
        if i % every == 0:
            frames.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
        i += 1
    return frames


def put(r, keys: Keys, camera: str, rgb: np.ndarray, seq: int) -> str:
    h, w = rgb.shape[:2]
    f = Frame(camera, seq, int(time.time() * 1000), w, h, encode_jpeg(rgb))
    return r.xadd(keys.frames(camera), f.to_fields()).decode()


def results(r, keys: Keys) -> list[FrameResult]:
    """Every camera's results, oldest first."""
    return [FrameResult.from_fields(e.fields) for e in reversed(newest(r, keys, "results", 10**6))]


def deadletters(r, keys: Keys) -> list[DeadLetter]:
    return [DeadLetter.from_fields(e.fields) for e in reversed(newest(r, keys, "deadletter", 10**6))]


def test_garbage_frames_are_dead_lettered_and_good_frames_answered(r, settings, analyzer, faces_dir):
    keys = Keys(settings.key_prefix)
    good = clip_frames(faces_dir, every=25, limit=8)
    stream = keys.frames("cam1")
    rng = np.random.default_rng(0)
    bad_ids, good_ids = [], []
    for i in range(200):
        kind = i % 5
        fields = {"camera": "cam1", "seq": str(i), "ts_ms": str(int(time.time() * 1000)), "jpeg": b""}
        if kind == 0:
            fields["jpeg"] = rng.bytes(500)  # random garbage
        elif kind == 1:
            fields["jpeg"] = encode_jpeg(good[0])[:300]  # truncated JPEG
        elif kind == 2:
            del fields["jpeg"]  # missing field
        elif kind == 3:
            fields["ts_ms"] = "yesterday"
        # kind 4: empty jpeg
        bad_ids.append(r.xadd(stream, fields).decode())
        if i % 25 == 0:
            good_ids.append(put(r, keys, "cam1", good[len(good_ids) % len(good)], 1000 + i))
    w = Worker(r, settings.model_copy(update={"block_ms": 100}), analyzer, name="w1")
    counts = w.run(max_idle_s=1.0)
    assert counts.deadletters == 200 and counts.results == len(good_ids) and counts.errors == 0
    dl = {d.entry_id: d for d in deadletters(r, keys)}
    assert set(dl) == set(bad_ids)
    assert all(d.reason for d in dl.values())
    assert {x.frame_id for x in results(r, keys)} == set(good_ids)
    assert r.xpending(stream, settings.group)["pending"] == 0


def test_replay_is_idempotent_and_empty_frames_get_a_result(r, settings, analyzer):
    keys = Keys(settings.key_prefix)
    step = Step(settings, analyzer, r.execute_command, "w")
    blank = np.full((120, 160, 3), 90, np.uint8)
    fid = put(r, keys, "camx", blank, 1)
    fields = r.xrange(keys.frames("camx"))[0][1]
    assert step.handle(FrameEntry(keys.frames("camx"), fid, fields)).kind == "result"
    assert step.handle(FrameEntry(keys.frames("camx"), fid, fields)).kind == "duplicate"
    (res,) = results(r, keys)
    assert res.frame_id == fid and res.faces == [] and {"decode", "detect", "embed", "search", "total", "queue"} <= set(res.timings)
    raw = r.xrange(keys.results("camx"))[0][1]
    text = {k.decode(): v.decode("utf-8") for k, v in raw.items()}  # readable in redis-cli: no binary
    assert json.loads(text["faces"]) == [] and json.loads(text["timings"])["total"] > 0


def _visitor_state(r, keys: Keys) -> dict:
    """Every visitor and sighting key with what it holds (vectors, looks, thumbnails), to compare whole."""
    keys_now = [*r.scan_iter(match=keys.visitor("*")), *r.scan_iter(match=keys.sighting("*"))]
    return {k: r.hgetall(k) for k in keys_now if r.type(k) == b"hash"}


def test_a_frame_answered_twice_joins_its_visitor_and_stores_its_sightings_once(r, settings, analyzer, faces_dir):
    """Side writes come after the atomic commit, and only when it wrote: a redelivered frame (a worker that
    died after its commit, a takeover) is a duplicate and changes no visitor and no sighting. A new frame of
    the same stranger does join his visitor, so the comparison can see a change."""
    keys = Keys(settings.key_prefix)
    step = Step(settings, analyzer, r.execute_command, "w")
    stranger = cv2.cvtColor(cv2.imread(str(sorted((faces_dir / "probes" / "_unknown").iterdir())[0])), cv2.COLOR_BGR2RGB)
    fid = put(r, keys, "door", stranger, 1)
    entry = FrameEntry(keys.frames("door"), fid, r.xrange(keys.frames("door"), fid, fid)[0][1])
    assert step.handle(entry).kind == "result"
    (face,) = results(r, keys)[0].faces
    assert face.visitor and r.hget(keys.visitor(face.visitor), "looks") == b"1", face
    before = _visitor_state(r, keys)
    assert any(k.startswith(keys.sighting("").encode()) for k in before), "the look was kept as a sighting"

    redelivered = FrameEntry(entry.stream, entry.entry_id, entry.fields, deliveries=2)
    assert step.handle(redelivered).kind == "duplicate"
    assert _visitor_state(r, keys) == before, "a duplicate answer wrote visitors or sightings again"
    assert len(results(r, keys)) == 1

    later = put(r, keys, "door", stranger, 2)
    assert step.handle(FrameEntry(keys.frames("door"), later, r.xrange(keys.frames("door"), later, later)[0][1])).kind == "result"
    assert r.hget(keys.visitor(face.visitor), "looks") == b"2", "a new frame of him joins his visitor"


def test_a_side_write_refused_after_the_commit_is_counted_and_the_answer_stands(r, settings, analyzer, faces_dir):
    """The visitor write comes after the commit: when Redis refuses it (here a key of the wrong type where the
    new visitor goes), the frame keeps its result and is acked, and the refused writes are counted."""
    keys = Keys(settings.key_prefix)
    step = Step(settings, analyzer, r.execute_command, "w")
    r.set(keys.visitor("v-000001"), "not a visitor")  # the id the first stranger gets
    stranger = cv2.cvtColor(cv2.imread(str(sorted((faces_dir / "probes" / "_unknown").iterdir())[0])), cv2.COLOR_BGR2RGB)
    fid = put(r, keys, "door", stranger, 1)
    outcome = step.handle(FrameEntry(keys.frames("door"), fid, r.xrange(keys.frames("door"), fid, fid)[0][1]))
    assert outcome.kind == "result" and outcome.unstored >= 1, outcome
    (res,) = results(r, keys)
    assert res.faces[0].visitor == "v-000001" and r.get(keys.visitor("v-000001")) == b"not a visitor"


def test_a_camera_whose_lease_is_lost_leaves_with_its_tracks_and_scan(r, settings, analyzer):
    """With tracking, what a worker keeps of a camera (its tracks, its scan) goes when another worker holds
    the camera's lease: the camera's state lives where its frames are read."""
    s = settings.replace(camera_lease_ms=60_000)
    keys = Keys(s.key_prefix)
    put(r, keys, "cam1", np.full((120, 160, 3), 90, np.uint8), 1)
    w = Worker(r, s, analyzer, name="w1")
    try:
        w.discover()
        w.heartbeat()
        w.lease_cameras()
        cam = w.cameras[keys.frames("cam1")]
        assert cam.tracks is not None and cam.scan is not None and w.reading == [keys.frames("cam1")]
        r.set(keys.lease("cam1"), "w2")  # w1 stalled past its lease; w2 took the camera
        w.lease_cameras()
        assert w.cameras == {} and w.reading == []
    finally:
        w.stop()
        w.run()


def _worker_proc(url: str, prefix: str, name: str, ready) -> None:
    from facestream.config import load_settings

    s = load_settings(redis_url=url, key_prefix=prefix, block_ms=100, claim_idle_ms=1500, read_count=1,
                      camera_lease_ms=1500)
    w = Worker(connect(s), s, FaceAnalyzer(s), name=name)
    ready.set()
    w.run(max_idle_s=6.0)


def test_kill_9_of_one_worker_loses_nothing(r, settings, faces_dir):
    """Two worker processes, one killed mid-clip: every frame still gets exactly one result or dead letter."""
    keys = Keys(settings.key_prefix)
    ctx = mp.get_context("spawn")
    ready = [ctx.Event(), ctx.Event()]
    procs = [ctx.Process(target=_worker_proc, args=(settings.redis_url, settings.key_prefix, f"w{i}", ready[i]))
             for i in range(2)]
    for p in procs:
        p.start()
    for e in ready:
        assert e.wait(60)
    frames = clip_frames(faces_dir, every=3, limit=60)
    ids = [put(r, keys, "cam1", f, i) for i, f in enumerate(frames)]
    deadline = time.time() + 60
    while r.xlen(keys.results("cam1")) < 8 and time.time() < deadline:
        time.sleep(0.05)
    os.kill(procs[0].pid, signal.SIGKILL)
    for p in procs:
        p.join(120)
    assert procs[1].exitcode == 0
    answered = [x.frame_id for x in results(r, keys)] + [d.entry_id for d in deadletters(r, keys)]
    assert sorted(answered) == sorted(ids), "every frame answered exactly once"
    assert r.xpending(keys.frames("cam1"), settings.group)["pending"] == 0


def test_presence_events_appear_and_leave(r, settings, analyzer, faces_dir):
    keys = Keys(settings.key_prefix)
    items, _ = plan([faces_dir / "gallery" / "Barack_Obama"], person="obama", name="Barack Obama")
    enroll(Gallery(r, settings), items, settings)
    obama = (faces_dir / "probes" / "Barack_Obama")
    face = cv2.cvtColor(cv2.imread(str(sorted(obama.iterdir())[0])), cv2.COLOR_BGR2RGB)
    blank = np.full_like(face, 128)
    s = settings.model_copy(update={"absent_after_s": 1.0, "block_ms": 100})
    step = Step(s, analyzer, r.execute_command, "w")
    t0 = int(time.time() * 1000)
    for i, (img, dt) in enumerate([(face, 0), (face, 500), (blank, 900), (blank, 2000)]):
        fr = Frame("lobby", i, t0 + dt, img.shape[1], img.shape[0], encode_jpeg(img))
        fid = r.xadd(keys.frames("lobby"), fr.to_fields()).decode()
        assert step.handle(FrameEntry(keys.frames("lobby"), fid, r.xrange(keys.frames("lobby"), fid, fid)[0][1])).kind == "result"
    events = [IdentityEvent.from_fields(f) for _, f in r.xrange(keys.events("lobby"))]
    assert [(e.kind, e.person_id, e.name) for e in events] == [("appear", "obama", "Barack Obama"),
                                                               ("leave", "obama", "Barack Obama")]


def test_gear_script_registration_and_in_server_path(r, settings, analyzer, faces_dir):
    """Run the rendered gear script with a recorder for GB and redis-py standing in for Gears' execute().

    Checks the register() arguments that matter and that a Gears-style record (str keys, bytearray
    binary) is answered through the same step, with a corrupt frame dead-lettered, not raised.
    """
    from facestream.gears.loader import render

    src = render(settings)
    ast.parse(src, feature_version=(3, 7))
    calls = {}

    class GB:
        def __init__(self, reader):
            calls["reader"] = reader
            self.ops = []

        def foreach(self, f):
            calls["foreach"] = f
            return self

        def filter(self, f):
            calls["filter"] = f
            return self

        def register(self, **kw):
            calls["register"] = kw

    exec(compile(src, "gear_script.py", "exec"), {"GB": GB, "execute": r.execute_command, "__name__": "gear"})
    kw = calls["register"]
    assert calls["reader"] == "StreamReader"
    assert kw["prefix"] == f"{settings.key_prefix}:frames:*" and kw["mode"] == "async_local"
    assert (kw["convertToStr"], kw["collect"], kw["trimStream"]) == (False, False, False)
    assert calls["filter"]({}) is False
    keys = Keys(settings.key_prefix)
    frame = clip_frames(faces_dir, every=100, limit=1)[0]
    good = put(r, keys, "g1", frame, 1)
    bad = r.xadd(keys.frames("g1"), {"camera": "g1", "ts_ms": "1", "jpeg": b"\xff\xd8garbage"}).decode()
    for entry_id in (good, bad):
        value = {k.decode(): (bytearray(v) if k == b"jpeg" else v.decode()) for k, v in
                 r.xrange(keys.frames("g1"), entry_id, entry_id)[0][1].items()}
        calls["foreach"]({"key": keys.frames("g1"), "id": entry_id, "value": value})
    assert [x.frame_id for x in results(r, keys)] == [good]
    assert [d.entry_id for d in deadletters(r, keys)] == [bad]


def test_gears_load_on_a_server_without_gears_says_what_to_do(r, settings):
    from facestream.errors import FacestreamError
    from facestream.gears.loader import load

    with pytest.raises(FacestreamError, match="no RedisGears"):
        load(r, settings)


def test_latest_policy_skips_backlog_and_counts_it(r, settings, analyzer):
    keys = Keys(settings.key_prefix)
    blank = np.full((90, 120, 3), 70, np.uint8)
    ids = [put(r, keys, "live", blank, i) for i in range(60)]
    s = settings.model_copy(update={"lag_policy": "latest", "max_lag_frames": 5, "block_ms": 100})
    counts = Worker(r, s, analyzer, name="w").run(max_idle_s=1.0)
    answered = {x.frame_id for x in results(r, keys)}
    assert counts.skipped == 55 and counts.results == 5
    assert answered == set(ids[-5:])  # the newest frames, not the oldest
    assert r.hget(keys.worker("w"), "skipped") is None  # heartbeat removed on a clean exit


def test_sigterm_stops_a_worker_cleanly(settings):
    import subprocess
    import sys

    env = {**os.environ, "FACESTREAM_REDIS_URL": settings.redis_url, "FACESTREAM_KEY_PREFIX": settings.key_prefix,
           "FACESTREAM_BLOCK_MS": "200"}
    client = connect(settings)
    keys = Keys(settings.key_prefix)
    client.xadd(keys.frames("sig"), {"camera": "sig", "ts_ms": "1", "jpeg": b"x"})
    p = subprocess.Popen([sys.executable, "-m", "facestream", "work", "--name", "sigw"], env=env,
                         stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 60
        while client.xlen(keys.deadletter("sig")) < 1 and time.time() < deadline:
            time.sleep(0.1)
        assert client.xlen(keys.deadletter("sig")) == 1
        p.send_signal(signal.SIGTERM)
        assert p.wait(20) == 0
    finally:
        p.kill()
    assert "stopped: 0 results, 1 dead letters" in p.stderr.read()
    assert client.xinfo_consumers(keys.frames("sig"), settings.group) == []


def test_metrics_endpoint_and_status_summary(r, settings, analyzer):
    import urllib.request

    from conftest import free_port

    from facestream.gears import metrics
    from facestream.status import read_status

    keys = Keys(settings.key_prefix)
    blank = np.full((90, 120, 3), 70, np.uint8)
    for i in range(3):
        put(r, keys, "metcam", blank, i)
    r.xadd(keys.frames("metcam"), {"camera": "metcam", "ts_ms": "1", "jpeg": b"junk"})
    port = free_port()
    metrics.serve(port)
    w = Worker(r, settings.model_copy(update={"block_ms": 100}), analyzer, name="mw")
    w.run_once()  # joins the group, reads
    while w.run_once():
        pass
    w.heartbeat()
    body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    assert 'facestream_frames_out_total{camera="metcam",outcome="result"} 3.0' in body
    assert 'facestream_frames_out_total{camera="metcam",outcome="deadletter"} 1.0' in body
    assert 'facestream_stage_seconds_count{stage="detect"}' in body
    assert 'facestream_group_pending{camera="metcam"} 0.0' in body
    st = read_status(r, settings)
    (cam,) = [c for c in st.cameras if c.camera == "metcam"]
    assert (cam.frames, cam.lag, cam.pending) == (4, 0, 0)
    assert st.results == 3 and st.deadletters == 1 and st.workers["mw"]["results"] == "3"
    assert any("metcam" in line for line in st.lines())
