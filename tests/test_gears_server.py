"""The in-server gear on a real RedisGears 1.2 loaded into the embedded redis-server.

RedisGears 1.x is in no package registry: ``facestream gears build`` builds it from source (``scripts/setup.sh
--test`` runs it, once per machine), or FACESTREAM_GEARS_DIR names a build of your own. The refusals around it
need no build.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
import redis

from facestream.app.bench.gears import gear_vs_runner
from facestream.app.bench.localcluster import free_ports
from facestream.errors import ServerError
from facestream.gearsbuild import GearsBuild, link_source
from facestream.models.evaluation.evaluate import segment_scores
from facestream.server import EmbeddedRedis



def _build() -> GearsBuild | None:
    """The build the tests run on: FACESTREAM_GEARS_DIR's, else `facestream gears build`'s; None without one."""
    try:
        return GearsBuild.configured(Path(os.environ["FACESTREAM_GEARS_DIR"]) if os.environ.get("FACESTREAM_GEARS_DIR")
                                     else None)
    except ServerError:
        return None


BUILD = _build()
needs_build = pytest.mark.skipif(BUILD is None, reason="no RedisGears 1.2 build: `facestream gears build` makes one "
                                 "(scripts/setup.sh --test runs it)")


def fake_build(folder: Path, python: str) -> Path:
    """A folder laid out like a build whose Python is ``python`` (the module files are empty)."""
    (folder / "python3_1.2.9" / "bin").mkdir(parents=True)
    for name in ("redisgears.so", "gears_python.so"):
        (folder / name).write_bytes(b"")
    exe = folder / "python3_1.2.9" / "bin" / "python3"
    exe.write_text(f"#!/bin/sh\nexec {python} \"$@\"\n")
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR)
    return folder


def test_a_folder_that_is_not_a_build_is_refused_in_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))  # no `facestream gears build` made here
    (tmp_path / "redisgears.so").write_bytes(b"")
    with pytest.raises(ServerError, match=r"is not a RedisGears 1.2 build: no gears_python.so, python3_<version>"):
        GearsBuild.find(tmp_path)
    with pytest.raises(ServerError, match="run `facestream gears build`"):
        GearsBuild.configured(None)
    with pytest.raises(ServerError, match="is not a folder"):
        GearsBuild.configured(tmp_path / "nowhere")


def test_a_gear_python_without_the_gear_packages_is_refused_before_the_server_starts(tmp_path):
    """A Python 3 with none of the gear's packages (a bare -S interpreter): the server is not started."""
    build = GearsBuild.find(fake_build(tmp_path / "build", "/usr/bin/env python3 -S -I"))
    server = EmbeddedRedis(free_ports(1, 7450)[0], tmp_path / "data", gears=build)
    with pytest.raises(ServerError, match=r"lacks numpy, cv2, onnxruntime, onnx, dlib, face_recognition_models, retinaface"):
        server.start(attached=True)
    assert not server.is_running()


def test_the_gear_source_links_to_this_installation(tmp_path):
    import facestream.gears.step
    import facestream.keys

    root = link_source(tmp_path)
    assert (root / "facestream" / "gears" / "step.py").resolve() == Path(facestream.gears.step.__file__).resolve()
    assert (root / "facestream" / "keys.py").resolve() == Path(facestream.keys.__file__).resolve()
    (root / "facestream" / "__pycache__").mkdir()  # what the gear's Python writes beside the links
    assert link_source(tmp_path) == root  # made again over the old links
    assert (root / "facestream" / "gears" / "step.py").is_file() and Path(facestream.gears.step.__file__).is_file()


@needs_build
def test_the_clip_through_the_gear_is_answered_as_by_the_runner(settings, faces_dir):
    """Every frame of the Hamilton clip answered in the server, Miranda named in his close-up, and each
    frame's faces (boxes, people, reasons, distances) equal to the runner's on the same frames."""
    clip = faces_dir / "videos" / "hamilton_white_house_2009.mp4"
    cmp = gear_vs_runner(settings, BUILD, clip, [faces_dir / "gallery" / "Lin-Manuel_Miranda"],
                         say=lambda _line: None)
    print("\n".join(cmp.lines()))
    assert cmp.gear.frames == cmp.runner.frames == len(cmp.gear_results) > 250
    assert cmp.gear.deadletters == 0
    assert len(cmp.uncompared) <= 0.05 * len(cmp.gear_results), cmp.uncompared
    assert not cmp.differences, "\n".join(cmp.differences[:5])
    closeup = [(g, r) for g, r in zip(segment_scores(cmp.gear_results, clip), segment_scores(cmp.runner_results, clip))
               if g.person_id == "Lin-Manuel_Miranda" and g.start_s == 3.18]
    assert closeup and closeup[0][0].named == closeup[0][1].named >= 0.5 * closeup[0][0].nameable, closeup


@needs_build
def test_only_admin_may_run_python_in_a_gear_server(tmp_path):
    """RG.PYEXECUTE runs any Python inside the server. RedisGears flags its commands 'readonly', but Redis 7+
    gives module commands no ACL category from that, so the worker's and reader's +@read grant none of them:
    they are refused every RG.* command; admin (+@all -@dangerous) loads the gear."""
    from facestream.acl import apply
    from facestream.config import load_settings
    from facestream.keys import Keys
    from facestream.server import connect

    server = EmbeddedRedis(free_ports(1, 7460)[0], tmp_path, gears=BUILD)
    url = server.start(attached=True, wait_s=60)
    try:
        s = load_settings(redis_url=url, key_prefix="acl")
        root = connect(s)
        assert root.command_list(pattern="rg.py*")  # the module is loaded
        python = "GB('ShardsIDReader').map(lambda x: 'ran').run()"
        for role in ("worker", "reader", "admin"):
            name = apply(root, Keys("acl"), role, tmp_path / role)
            client = connect(s.replace(redis_username=name, redis_password_file=tmp_path / role))
            if role == "admin":
                assert client.execute_command("RG.PYEXECUTE", python)[0] == [b"ran"]
                continue
            for command in (("RG.PYEXECUTE", python), ("RG.UNREGISTER", "x"), ("RG.PAUSEREGISTRATIONS",),
                            ("RG.DUMPREGISTRATIONS",)):
                with pytest.raises(redis.exceptions.NoPermissionError):
                    client.execute_command(*command)
    finally:
        server.stop()


@needs_build
def test_a_bad_frame_is_dead_lettered_inside_the_server_and_status_shows_the_gear(tmp_path, faces_dir, monkeypatch):
    """Started as from an activated venv (facestream's venv first on PATH, as in the images), which once left the
    gear's own packages off its Python's path."""
    import sys
    import time

    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}")

    from facestream.config import load_settings
    from facestream.gears.loader import load
    from facestream.keys import Keys
    from facestream.producer.capture import Producer
    from facestream.server import connect
    from facestream.status import read_status

    server = EmbeddedRedis(free_ports(1, 7470)[0], tmp_path, gears=BUILD)
    url = server.start(attached=True, wait_s=60)
    try:
        s = load_settings(redis_url=url, key_prefix="st", data_dir=tmp_path)
        client, keys = connect(s), Keys("st")
        assert read_status(client, s).gear is None  # nothing registered yet
        assert load(client, s) == "OK"
        Producer(client, s, "door", str(faces_dir / "videos" / "hamilton_white_house_2009.mp4"), realtime=False).run(1)
        client.xadd(keys.frames("door"), {"camera": "door", "ts_ms": "1", "jpeg": b"\xff\xd8garbage"})
        deadline = time.monotonic() + 60
        while (client.xlen(keys.results("door")), client.xlen(keys.deadletter("door"))) != (1, 1):
            assert time.monotonic() < deadline, "the gear did not answer both frames"
            time.sleep(0.1)
        letter = client.xrange(keys.deadletter("door"))[0][1]
        assert b"JPEG" in letter[b"reason"] and letter[b"worker"] == b"gears"
        st = read_status(client, s)
        assert st.gear is not None and int(st.gear["numTriggered"]) >= 2 and st.gear["numFailures"] == "0"
        assert f"in-server gear on st:frames:*: {st.gear['numTriggered']} runs, 0 failed, last error: -" in st.lines()
    finally:
        server.stop()
