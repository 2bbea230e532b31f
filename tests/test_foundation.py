"""The embedded server, configuration and record encodings."""

from __future__ import annotations

import subprocess
import sys

import pytest
import redis
from conftest import free_port

from facestream.config import load_settings
from facestream.errors import BadFrame, ConfigError, ServerError
from facestream.keys import Keys
from facestream.records import DeadLetter, Face, Frame, FrameResult, IdentityEvent
from facestream.server import EmbeddedRedis


def test_embedded_server_has_search_and_aof(redis_server: EmbeddedRedis):
    r = redis.Redis.from_url(redis_server.url, protocol=2)
    modules = {m[1].decode() for m in r.execute_command("MODULE", "LIST")}
    assert "search" in modules
    assert r.execute_command("FT._LIST") is not None
    assert r.config_get("appendonly")["appendonly"] == "yes"


def test_second_start_on_same_port_is_refused_clearly(redis_server: EmbeddedRedis):
    with pytest.raises(ServerError, match="already running"):
        EmbeddedRedis(redis_server.port, redis_server.data_dir).start()


def test_port_taken_by_another_program_is_refused(redis_server: EmbeddedRedis, tmp_path):
    with pytest.raises(ServerError, match="in use by another program"):
        EmbeddedRedis(redis_server.port, tmp_path).start()


def test_cli_start_stop_and_double_start_message(tmp_path):
    port = free_port()
    env_args = [sys.executable, "-m", "facestream", "redis", "--port", str(port)]
    env = {"FACESTREAM_DATA_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"}
    first = subprocess.run(env_args, capture_output=True, text=True, env=env, timeout=60)
    assert first.returncode == 0, first.stderr
    assert first.stdout.strip() == f"redis://127.0.0.1:{port}/0"
    try:
        second = subprocess.run(env_args, capture_output=True, text=True, env=env, timeout=60)
        assert second.returncode == 1
        assert "already running" in second.stderr and "Traceback" not in second.stderr
    finally:
        stop = subprocess.run(env_args + ["--stop"], capture_output=True, text=True, env=env, timeout=60)
    assert "stopped" in stop.stdout
    assert not EmbeddedRedis(port, tmp_path).is_running()


def test_cli_help_lists_subcommands():
    out = subprocess.run([sys.executable, "-m", "facestream", "--help"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0
    for name in ("redis",):
        assert name in out.stdout


def test_bad_config_names_the_field(monkeypatch, tmp_path):
    with pytest.raises(ConfigError, match="frames_maxlen"):
        load_settings(frames_maxlen=-1)
    monkeypatch.setenv("FACESTREAM_LAG_POLICY", "sometimes")
    with pytest.raises(ConfigError, match="lag_policy"):
        load_settings()
    monkeypatch.delenv("FACESTREAM_LAG_POLICY")
    bad = tmp_path / "c.yaml"
    bad.write_text("detector: [unclosed")
    monkeypatch.setenv("FACESTREAM_CONFIG", str(bad))
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_settings()
    bad.write_text("no_such_setting: 1")
    with pytest.raises(ConfigError, match="no_such_setting"):
        load_settings()


def test_config_file_and_env_precedence(monkeypatch, tmp_path):
    f = tmp_path / "c.toml"
    f.write_text('frames_maxlen = 500\ndetector = "cnn"\n')
    monkeypatch.setenv("FACESTREAM_CONFIG", str(f))
    monkeypatch.setenv("FACESTREAM_FRAMES_MAXLEN", "700")
    s = load_settings()
    assert (s.frames_maxlen, s.detector) == (700, "cnn")


def test_keys_reject_ids_that_would_need_escaping():
    k = Keys("fs")
    assert k.frames("cam_1") == "fs:frames:{cam_1}"  # the camera's keys share a cluster slot (hash tag)
    assert {k.results("cam_1"), k.events("cam_1"), k.presence("cam_1"), k.answered(k.frames("cam_1"), "1-0")} == \
        {"fs:results:{cam_1}", "fs:events:{cam_1}", "fs:present:{cam_1}", "fs:answered:{cam_1}:1-0"}
    assert k.camera_of(k.frames("cam-2")) == "cam-2"
    with pytest.raises(ConfigError):
        k.frames("cam 1")
    with pytest.raises(ConfigError):
        k.person("a:b")


def test_frame_roundtrip_and_gears_style_values():
    f = Frame("cam1", 7, 1700000000123, 640, 360, b"\xff\xd8jpeg")
    fields = f.to_fields()
    assert Frame.from_fields({k.encode(): (v if isinstance(v, bytes) else v.encode()) for k, v in fields.items()}, 10**6) == f
    # RedisGears delivers str field names, str text values and bytearray binary values.
    gears = {k: (bytearray(v) if isinstance(v, bytes) else v) for k, v in fields.items()}
    assert Frame.from_fields(gears, 10**6) == f


@pytest.mark.parametrize(
    "fields, reason",
    [
        ({}, "empty entry"),
        ({"camera": "c", "ts_ms": "1"}, "missing field"),
        ({"camera": "c", "ts_ms": "x", "jpeg": b"\xff"}, "bad numeric"),
        ({"camera": "c", "ts_ms": "1", "jpeg": b""}, "empty jpeg"),
        ({"camera": "c", "ts_ms": "1", "jpeg": b"x" * 2000}, "over max_frame_bytes"),
    ],
)
def test_bad_frames_say_why(fields, reason):
    with pytest.raises(BadFrame, match=reason):
        Frame.from_fields(fields, max_bytes=1000)


def test_result_event_deadletter_roundtrip_are_readable_text():
    res = FrameResult("1-0", "cam1", 3, 99, [Face((1, 2, 3, 4), 0.9, "p1", "Pat", 0.1, 0.7)], {"total": 12.345}, "w1", 640, 360)
    fields = res.to_fields()
    assert all(isinstance(v, str) for v in fields.values())
    assert fields["names"] == "Pat"
    back = FrameResult.from_fields(fields)
    assert back.faces == res.faces and back.timings == {"total": 12.35}
    assert (back.frame_id, back.camera, back.seq, back.ts_ms, back.width, back.height) == ("1-0", "cam1", 3, 99, 640, 360)
    ev = IdentityEvent("appear", "cam1", "p1", "Pat", 99, "1-0")
    assert IdentityEvent.from_fields(ev.to_fields()) == ev
    dl = DeadLetter("fs:frames:cam1", "1-0", "corrupt", "cam1", 2, "w1")
    assert DeadLetter.from_fields(dl.to_fields()) == dl
