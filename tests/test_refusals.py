"""When Redis says no (a real server each): memory full, persistence failing, a replica. Producers and workers keep
running, say it once (no traceback), and once Redis accepts again every frame sent is answered, dead-lettered or
counted lost, with nothing pending and nothing acknowledged without its answer."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import free_port

from facestream.commands import group_info
from facestream.config import load_settings
from facestream.gears.step import FrameEntry, Step
from facestream.gears.worker import Worker
from facestream.keys import Keys
from facestream.models.store.stamp import ModelStamp, claim
from facestream.models.vision.analyzer import FaceAnalyzer
from facestream.producer.capture import Producer
from facestream.records import DeadLetter, FrameResult, Frame
from facestream.refusals import condition
from facestream.server import EmbeddedRedis, connect

FACESTREAM = [sys.executable, "-m", "facestream"]


@pytest.fixture(scope="module")
def video_1080p(tmp_path_factory) -> Path:
    """A 1080p clip whose JPEGs are large (~0.5 MB: noise over a gradient), to fill memory fast."""
    path = tmp_path_factory.mktemp("clip") / "noise_1080p.avi"
    out = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25, (1920, 1080))
    rng = np.random.default_rng(0)
    base = np.tile(np.linspace(0, 200, 1920, dtype=np.uint8)[None, :, None], (1080, 1, 3))
    for _ in range(12):
        out.write(np.clip(base + rng.integers(0, 56, (1080, 1920, 3), dtype=np.uint8), 0, 255).astype(np.uint8))
    out.release()
    return path


def _accounted(r, s, camera: str, sent: int) -> str:
    """'' if every frame sent is answered (result), dead-lettered or counted lost, and none is pending; else why not."""
    keys = Keys(s.key_prefix)
    g = group_info(r, keys.frames(camera), s.group) or {}
    results = {FrameResult.from_fields(f).frame_id for _, f in r.xrange(keys.results(camera))}
    letters = {DeadLetter.from_fields(f).entry_id for _, f in r.xrange(keys.deadletter(camera))}
    lost = int(r.get(keys.lost(camera)) or 0)
    unanswered = [i.decode() for i, _ in r.xrange(keys.frames(camera)) if i.decode() not in results | letters]
    if int(g.get("pending", 1)) or int(g.get("lag") or 0) or unanswered:
        return f"pending {g.get('pending')}, lag {g.get('lag')}, {len(unanswered)} frames in the stream unanswered"
    if len(results) + len(letters) + lost != sent:
        return f"{len(results)} results + {len(letters)} dead letters + {lost} lost != {sent} sent"
    return ""


def _until(check, timeout: float, what: str) -> None:
    deadline = time.time() + timeout
    while not check():
        assert time.time() < deadline, what
        time.sleep(0.2)


def _tracebacks(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.exc_info]


def test_memory_full_is_waited_out_and_nothing_is_lost_uncounted(tmp_path, video_1080p, caplog):
    """A 1080p camera at full speed into a Redis whose maxmemory is reached (noeviction, as managed Redis ships):
    the producer drops and counts what Redis refuses, the worker keeps its frames in hand; both still run, each
    says so once; once memory is raised every frame sent is accounted for."""
    caplog.set_level(logging.INFO)
    server = EmbeddedRedis(free_port(), tmp_path)
    server.start()
    # The camera's byte budget above the memory left: the stream would grow past maxmemory without the refusals.
    s = load_settings(redis_url=server.url, block_ms=200, claim_idle_ms=2000, frames_max_mb=512, detection="fast")
    r = connect(s)
    producer = Producer(connect(s), s, "door", str(video_1080p), loop=True, realtime=False)
    worker = Worker(connect(s), s, FaceAnalyzer(s), name="oom")
    threads = [threading.Thread(target=producer.run, daemon=True), threading.Thread(target=worker.run, daemon=True)]
    try:
        r.config_set("maxmemory", int(r.info("memory")["used_memory"]) + 40 * 1024 * 1024)
        for t in threads:
            t.start()
        _until(lambda: producer.stats.refused > 20 and worker.counts.refusals > 0, 90, "Redis never refused")
        time.sleep(5)  # memory stays full
        assert all(t.is_alive() for t in threads), "a process died of a full Redis"
        assert "OOM" in producer.refusals.counts and condition(Exception("OOM x")) == "OOM"
        producer.stop()
        threads[0].join(20)
        r.config_set("maxmemory", 0)  # memory freed
        _until(lambda: not _accounted(r, s, "door", producer.stats.sent), 120, _accounted(r, s, "door", producer.stats.sent))
        assert producer.stats.read == producer.stats.sent + producer.stats.dropped
        assert worker.counts.results > 0 and threads[1].is_alive()
    finally:
        producer.stop()
        worker.stop()
        threads[1].join(30) if threads[1].is_alive() else None
        server.stop()
    assert not _tracebacks(caplog), _tracebacks(caplog)
    said = [r.getMessage() for r in caplog.records if "memory is full" in r.getMessage()]
    assert 2 <= len(said) <= 6, said  # once per process (and side store) at the start, not once per frame
    assert any("accepts again" in r.getMessage() for r in caplog.records)


def test_a_side_store_refusing_costs_no_frame_its_answer(r, settings, faces_dir, tmp_path):
    """The index tier full (sightings, visitors) while the stream tier accepts: frames are answered, the visitor
    and sighting writes are skipped and counted."""
    index_server = EmbeddedRedis(free_port(), tmp_path)
    index_server.start()
    try:
        s = settings.replace(index_url=index_server.url)
        index = connect(s, index_server.url)
        claim(index.execute_command, Keys(s.key_prefix), ModelStamp("dlib-resnet-v1", 128))
        step = Step(s, FaceAnalyzer(s), r.execute_command, "side", index.execute_command)
        index.config_set("maxmemory", 1)  # every write refused from now on, reads still answered
        cap = cv2.VideoCapture(str(faces_dir / "videos" / "hamilton_white_house_2009.mp4"))
        stream = Keys(s.key_prefix).frames("stage")
        unstored = answered = 0
        for seq in range(1, 40):
            ok, bgr = cap.read()
            assert ok
            jpeg = cv2.imencode(".jpg", bgr)[1].tobytes()
            fields = Frame("stage", seq, 1_000 + seq * 40, bgr.shape[1], bgr.shape[0], jpeg).to_fields()
            entry = FrameEntry(stream, r.xadd(stream, fields).decode(), fields)
            outcome = step.handle(entry)
            answered += outcome.kind == "result"
            unstored += outcome.unstored
        assert answered == 39 and unstored > 0, (answered, unstored)
        assert step.side_refusals.counts.get("OOM", 0) > 0
    finally:
        index_server.stop()


@pytest.fixture
def tmpfs(tmp_path) -> Path:
    """A 48 MB filesystem of its own, to fill like a full disk (mounting needs root, as CI and this machine run)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=48m", "tmpfs", str(mount)], capture_output=True)
    if done.returncode:
        pytest.skip(f"cannot mount a tmpfs to fill (needs root): {done.stderr.decode().strip()}")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def test_persistence_failing_then_fixed(tmpfs, video_1080p, caplog):
    """The data dir's disk full: Redis cannot append to its AOF and refuses writes (MISCONF); producer and worker
    wait it out; space freed, Redis writes again and every frame is accounted for."""
    caplog.set_level(logging.INFO)
    server = EmbeddedRedis(free_port(), tmpfs / "data")
    server.start()
    s = load_settings(redis_url=server.url, block_ms=200, claim_idle_ms=2000, detection="fast", frames_max_mb=8)
    r = connect(s)
    filler = tmpfs / "filler"
    producer = Producer(connect(s), s, "door", str(video_1080p), loop=True, realtime=False, max_side=640)
    worker = Worker(connect(s), s, FaceAnalyzer(s), name="misconf")
    threads = [threading.Thread(target=producer.run, daemon=True), threading.Thread(target=worker.run, daemon=True)]
    try:
        for t in threads:
            t.start()
        _until(lambda: worker.counts.results >= 3, 60, "no frame answered before the disk filled")
        with filler.open("wb") as f:  # the disk fills up
            try:
                while True:
                    f.write(b"\0" * (1 << 20))
                    f.flush()
            except OSError:
                pass
        _until(lambda: "MISCONF" in producer.refusals.counts and worker.counts.refusals > 0, 60, "no MISCONF seen")
        time.sleep(3)
        assert all(t.is_alive() for t in threads), "a process died of failing persistence"
        producer.stop()
        threads[0].join(20)
        filler.unlink()  # space freed: Redis retries its AOF and accepts writes again
        _until(lambda: not _accounted(r, s, "door", producer.stats.sent), 120, _accounted(r, s, "door", producer.stats.sent))
    finally:
        producer.stop()
        worker.stop()
        threads[1].join(30) if threads[1].is_alive() else None
        filler.unlink(missing_ok=True)
        server.stop()
    assert not _tracebacks(caplog), _tracebacks(caplog)
    assert any("cannot persist" in r.getMessage() for r in caplog.records)


def test_a_worker_started_on_a_replica_waits_until_it_is_promoted(tmp_path, faces_dir):
    """`facestream work` pointed at a read-only replica says READONLY once and waits (no traceback, no exit); the
    replica promoted, it answers the frames the master had."""
    master, replica = EmbeddedRedis(free_port(), tmp_path / "m"), EmbeddedRedis(free_port(), tmp_path / "r")
    master.start()
    replica.start()
    try:
        ms, rs = (load_settings(redis_url=x.url) for x in (master, replica))
        rr = connect(rs)
        rr.config_set("masterauth", master.password())
        rr.replicaof("127.0.0.1", master.port)
        sent = Producer(connect(ms), ms, "hall", str(faces_dir / "videos" / "hamilton_white_house_2009.mp4"),
                        realtime=False, max_side=320).run(max_frames=12).sent
        _until(lambda: rr.info("replication").get("master_link_status") == "up" and rr.exists(Keys("fs").frames("hall")),
               30, "the replica never synced")
        env = {**os.environ, "FACESTREAM_REDIS_URL": replica.url, "FACESTREAM_DATA_DIR": str(tmp_path / "d")}
        proc = subprocess.Popen([*FACESTREAM, "work", "--name", "ro", "--exit-when-idle", "4"], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(8)  # models loaded, the worker meets READONLY
        assert proc.poll() is None, proc.communicate()
        rr.replicaof("NO", "ONE")  # promoted
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0 and "Traceback" not in err, err
        assert err.count("read-only replica") == 1 and "accepts again after" in err, err  # said once, and its end
        assert len(rr.xrange(Keys("fs").results("hall"))) == sent
    finally:
        replica.stop()
        master.stop()


def test_a_command_meeting_a_full_redis_says_so_in_one_line_and_exits_75(tmp_path, faces_dir):
    server = EmbeddedRedis(free_port(), tmp_path)
    server.start()
    try:
        connect(load_settings(redis_url=server.url)).config_set("maxmemory", 1)
        env = {**os.environ, "FACESTREAM_REDIS_URL": server.url, "FACESTREAM_DATA_DIR": str(tmp_path / "d")}
        out = subprocess.run([*FACESTREAM, "enroll", str(faces_dir / "gallery" / "Barack_Obama"), "--person", "obama",
                              "--workers", "1"], env=env, capture_output=True, text=True, timeout=180)
        assert out.returncode == 75 and "Traceback" not in out.stderr, out.stderr
        assert "error: Redis: Redis memory is full (maxmemory)" in out.stderr, out.stderr
        assert server.password() not in out.stderr + out.stdout
    finally:
        server.stop()


def test_a_client_waits_for_a_server_still_loading_its_data(tmp_path, capfd):
    """A restarted server with a large data set answers LOADING until it has read it: a command started then waits
    (said once) instead of failing."""
    import redis

    from facestream.server import find_binaries

    port, exe = free_port(), str(find_binaries().redis_server)
    args = [exe, "--port", str(port), "--bind", "127.0.0.1", "--dir", str(tmp_path), "--save", "", "--appendonly", "no",
            "--dbfilename", "dump.rdb", "--enable-debug-command", "yes"]
    first = subprocess.Popen(args, stdout=subprocess.DEVNULL)
    try:
        c = redis.Redis(port=port, socket_timeout=120)  # redis-py's 5 s may not cover SAVE of 0.5 GB on a slow machine
        deadline = time.monotonic() + 10
        while True:
            try:
                c.ping()
                break
            except redis.ConnectionError:
                assert time.monotonic() < deadline
                time.sleep(0.05)
        c.execute_command("DEBUG", "POPULATE", 4_000_000, "k", 64)  # ~0.5 GB: a second or two to load
        c.save()
    finally:
        first.terminate()
        first.wait(30)
    again = subprocess.Popen(args, stdout=subprocess.DEVNULL)
    try:
        s = load_settings(redis_url=f"redis://127.0.0.1:{port}/0")
        deadline = time.monotonic() + 10
        while True:  # the port opens as soon as the server starts, before it has loaded anything
            try:
                client = connect(s)
                break
            except Exception:  # noqa: BLE001 - refused until the port is open
                assert time.monotonic() < deadline
                time.sleep(0.01)
        assert client.dbsize() == 4_000_000
    finally:
        again.terminate()
        again.wait(30)
    err = capfd.readouterr().err
    assert err.count("is loading its data into memory: waiting") == 1, err
