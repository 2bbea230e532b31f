"""Hostile and careless input: nothing stops the pipeline, nothing is lost without being counted,
no credential leaks. Real embedded Redis, real models where frames are involved."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import time

import pytest
import redis
from conftest import NoFaces, free_port
from corpus import BAD_KEY_TAILS, comment_first, jpeg, png_header, with_size
from starlette.testclient import TestClient

from facestream.consumer.dashboard import Hub, create_app
from facestream.consumer.follow import follow
from facestream.errors import BadFrame, ConfigError
from facestream.gears.step import COMMIT_LUA, FrameEntry, Step
from facestream.gears.worker import Worker
from facestream.keys import Keys
from facestream.models.vision.image import decode, decode_frame
from facestream.records import Face, FrameResult
from facestream.redaction import redact
from facestream.server import EmbeddedRedis
from facestream.status import read_status

FACESTREAM = [sys.executable, "-m", "facestream"]


def test_bad_stream_keys_are_skipped_and_counted(r, settings):
    keys = Keys(settings.key_prefix)
    for tail in BAD_KEY_TAILS:
        r.xadd(keys.frames_prefix.encode() + tail, {"x": "1"})
    r.xadd(keys.frames("good"), {"x": "1"})
    w = Worker(r, settings, NoFaces(), name="w")
    w.discover()
    assert w.streams == [keys.frames("good")] and w.counts.bad_streams == len(BAD_KEY_TAILS)
    st = read_status(r, settings)
    assert [c.camera for c in st.cameras] == ["good"] and len(st.bad_streams) == len(BAD_KEY_TAILS)
    assert any("ignored 6 stream key(s)" in line for line in st.lines())


def test_a_camera_frame_decodes_to_the_same_pixels_on_the_fast_path_and_exif_still_turns_it():
    import io

    import cv2
    import numpy as np
    from PIL import Image

    from facestream.models.vision import image

    assert image.simplejpeg is not None, "simplejpeg is a dependency (pyproject.toml): frames take the fast path"
    good = jpeg(640, 360, seed=3)
    opencv = cv2.cvtColor(cv2.imdecode(np.frombuffer(good, np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    assert np.array_equal(decode_frame(good, 10**7), opencv)
    cut = good[: len(good) * 2 // 3]  # truncated inside the image data: OpenCV's decoder's verdict, as before

    def outcome(f):
        try:
            return f(cut, 10**7)
        except BadFrame as e:
            return str(e)

    fast, before = outcome(decode_frame), outcome(decode)
    assert fast == before if isinstance(before, str) else np.array_equal(fast, before)
    turned = io.BytesIO()
    exif = Image.Exif()
    exif[274] = 6  # orientation: shown turned 90 degrees clockwise
    Image.new("RGB", (64, 32), (200, 30, 30)).save(turned, "JPEG", exif=exif.tobytes())
    assert decode_frame(turned.getvalue(), 10**7).shape == (64, 32, 3), "EXIF orientation applied, as OpenCV does"


def test_decoding_is_bounded_by_the_real_header_before_anything_is_decoded():
    good = jpeg(200, 150)
    assert decode_frame(good, 10**6).shape == (150, 200, 3)
    t = time.perf_counter()
    for data in (comment_first(with_size(good, 12000, 12000)), with_size(good, 60000, 60000)):
        with pytest.raises(BadFrame, match="over max_frame_pixels"):
            decode_frame(data, 4096 * 4096)
    with pytest.raises(BadFrame, match="each side"):
        decode_frame(with_size(good, 1, 60000), 4096 * 4096)
    with pytest.raises(BadFrame, match="over max_frame_pixels"):
        decode(png_header(12000, 12000), 4096 * 4096)  # stills (enrollment) accept PNG, sized from IHDR
    with pytest.raises(BadFrame, match="not a JPEG"):
        decode_frame(png_header(100, 100), 4096 * 4096)
    assert time.perf_counter() - t < 0.5, "refused from the header, not by decoding 144 Mpx"


def test_a_bad_timestamp_is_dead_lettered_and_the_commit_script_writes_nothing_half_way(r, settings):
    keys = Keys(settings.key_prefix)
    stream = keys.frames("cam")
    step = Step(settings, NoFaces(), r.execute_command, "w")
    entry = r.xadd(stream, {"camera": "cam", "ts_ms": "-5", "jpeg": jpeg()}).decode()
    assert step.handle(FrameEntry(stream, entry, r.xrange(stream)[0][1])).kind == "deadletter"
    assert r.xlen(keys.results("cam")) == 0 and r.xlen(keys.events("cam")) == 0
    # The script itself refuses a bad ts before its first write (no marker, no result, no event).
    res = FrameResult("1-0", "cam", 1, 1000, [Face((0, 0, 40, 40), person_id="p", name="P")])
    argv = [3600000, 100, "", "1-0", 100, -7, 3000, "cam", "1-0", 1, 1, "1", "p", "P", *res.to_fields()["faces"][:0], "f", "v"]
    keys_ = [keys.answered(stream, "1-0"), keys.results("cam"), keys.events("cam"), keys.presence("cam"), stream]
    with pytest.raises(redis.ResponseError, match="malformed"):
        r.eval(COMMIT_LUA, len(keys_), *keys_, *argv)
    assert not r.exists(keys.answered(stream, "1-0")) and r.xlen(keys.results("cam")) == 0 and r.xlen(keys.events("cam")) == 0


def test_a_backlog_beyond_frames_maxlen_is_answered_or_counted_as_lost(r, settings):
    """lag_policy=all promises every frame: those trimmed before any worker read them are counted."""
    s = settings.replace(frames_maxlen=100, block_ms=50, tracking=False)
    keys = Keys(s.key_prefix)
    stream, frame = keys.frames("busy"), jpeg(64, 48)
    sent = 1000
    for i in range(sent):  # a producer far ahead of the (not yet started) workers
        r.xadd(stream, {"camera": "busy", "seq": str(i), "ts_ms": str(1_700_000_000_000 + i), "jpeg": frame},
               maxlen=s.frames_maxlen, approximate=False)
    w = Worker(r, s, NoFaces(), name="w")
    counts = w.run(max_idle_s=1.0)
    st = read_status(r, s)
    assert counts.results == s.frames_maxlen and counts.lost == sent - s.frames_maxlen
    assert st.lost == sent - s.frames_maxlen and st.results + st.deadletters + st.lost == sent
    assert "lost 900" in st.lines()[0]
    # More trimmed while the worker runs: still every frame answered or counted, each once.
    for i in range(sent, sent + 300):
        r.xadd(stream, {"camera": "busy", "seq": str(i), "ts_ms": str(1_700_000_000_000 + i), "jpeg": frame},
               maxlen=s.frames_maxlen, approximate=False)
    Worker(r, s, NoFaces(), name="w").run(max_idle_s=1.0)
    st = read_status(r, s)
    assert st.results + st.deadletters + st.lost == sent + 300 and st.cameras[0].pending == 0


def test_malformed_output_entries_are_skipped_by_the_dashboard_and_consume(r, settings):
    keys = Keys(settings.key_prefix)
    good = FrameResult("1-0", "cam", 1, 1000, [Face((0, 0, 9, 9), name='<img src=x onerror="alert(1)">')])
    out = keys.results("cam")
    r.xadd(out, {"frame_id": "x"})  # missing fields
    r.xadd(out, {**good.to_fields(), "faces": "not json"})
    r.xadd(out, {**good.to_fields(), "camera": "<script>"})
    r.xadd(out, good.to_fields())
    got = list(follow(r, settings, ("results",), "0", idle_exit_s=0.2, block_ms=50))
    assert [rec.frame_id for _, _, rec in got] == ["1-0"]
    hub = Hub(r, settings)
    for entry_id, fields in r.xrange(out):
        hub.take("results", entry_id, fields)
    assert hub.bad_records == 3 and list(hub.latest) == ["cam"]
    with pytest.raises(ConfigError, match="entry id"):
        next(follow(r, settings, ("results",), "garbage"))


def test_dashboard_sends_a_content_security_policy_and_takes_any_token(settings, tmp_path):
    app = create_app(settings.redis_url, settings.replace(data_dir=tmp_path), token="s3cret")
    with TestClient(app, base_url="http://localhost") as client:
        bearer = {"Authorization": "Bearer s3cret"}
        assert client.get("/api/me", headers={"Authorization": "Bearer \u00e9t\u00e9".encode("latin-1")}).status_code == 401  # not a 500
        page = client.get("/", headers=bearer)
        assert page.status_code == 200
        csp = page.headers["content-security-policy"]
        assert "script-src 'sha256-" in csp and "unsafe-inline" not in csp and "default-src 'none'" in csp
        assert "frame-ancestors 'none'" in csp and page.headers["x-frame-options"] == "DENY"
        assert page.headers["x-content-type-options"] == "nosniff"
        assert client.get("/frame/<script>.jpg", headers=bearer).status_code == 400  # ids are checked first
        assert client.get("/frame/nocam.jpg", headers=bearer).status_code == 404


def test_credentials_are_redacted():
    assert redact("rtsp://admin:hunter2@cam/live and redis://:pw@h:6379/0") == \
        "rtsp://admin:***@cam/live and redis://***@h:6379/0"
    assert "tok" not in redact("rtsp://tok@cam/x unix:///s.sock?password=tok")


def test_a_producer_never_prints_camera_credentials_and_stops_at_once_in_a_backoff(settings, tmp_path):
    env = {**os.environ, "FACESTREAM_REDIS_URL": settings.redis_url, "FACESTREAM_KEY_PREFIX": settings.key_prefix}
    url = f"rtsp://admin:hunter2@127.0.0.1:{free_port()}/live"
    p = subprocess.Popen([*FACESTREAM, "produce", url, "--camera", "door"], env=env, stderr=subprocess.PIPE,
                         stdout=subprocess.PIPE, text=True)
    time.sleep(6)  # a few failed connects: the backoff reaches 4 s
    t = time.monotonic()
    p.send_signal(signal.SIGINT)
    out, err = p.communicate(timeout=20)
    assert time.monotonic() - t < 3, "Ctrl-C ends the reconnect wait at once"
    assert "hunter2" not in out + err and "admin:***@" in err, err


def test_the_embedded_server_needs_its_password_and_keeps_its_files_private(redis_server: EmbeddedRedis):
    with pytest.raises(redis.AuthenticationError):
        redis.Redis(port=redis_server.port).ping()
    assert redis.Redis.from_url(redis_server.url).ping()
    for path in [redis_server.dir, *redis_server.dir.rglob("*")]:
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode & 0o077 == 0, f"{path} is {oct(mode)}"
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    assert redis_server.password() not in ps, "the password is not on a command line"


@pytest.mark.parametrize("args, env, message", [
    (["consume", "--from", "garbage", "--exit-when-idle", "1"], {}, "entry id"),
    (["status"], {"FACESTREAM_REDIS_URL": "redis://host:abc/0"}, "port must be a number"),
    (["status"], {"FACESTREAM_DETECTR": "hog"}, "did you mean FACESTREAM_DETECTOR"),
    (["people", "rename", "nobody", "  "], {}, "display name"),
])
def test_cli_errors_are_one_line_and_exit_1(settings, args, env, message):
    base = {**os.environ, "FACESTREAM_REDIS_URL": settings.redis_url, "FACESTREAM_KEY_PREFIX": settings.key_prefix}
    out = subprocess.run([*FACESTREAM, *args], env={**base, **env}, capture_output=True, text=True, timeout=60)
    assert out.returncode == 1 and message in out.stderr and "Traceback" not in out.stderr, out.stderr


def test_enrolling_nothing_and_producing_a_non_video_fail(settings, tmp_path):
    env = {**os.environ, "FACESTREAM_REDIS_URL": settings.redis_url, "FACESTREAM_KEY_PREFIX": settings.key_prefix}
    (tmp_path / "Ann").mkdir()
    (tmp_path / "Ann" / "notes.txt").write_text("no photo here")
    (tmp_path / "Ann" / "blank.jpg").write_bytes(jpeg(120, 120))
    out = subprocess.run([*FACESTREAM, "enroll", str(tmp_path)], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 1 and "no face was enrolled" in out.stderr and "Traceback" not in out.stderr
    out = subprocess.run([*FACESTREAM, "produce", str(tmp_path / "Ann" / "notes.txt"), "--camera", "c"], env=env,
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 1 and "not a" in out.stderr and "Traceback" not in out.stderr, out.stderr
