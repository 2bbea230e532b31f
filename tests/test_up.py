"""``facestream up``: the whole stack from one file, supervised; ``up --check``."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request

import pytest
import yaml

from facestream.keys import Keys

CLIP = "hamilton_white_house_2009.mp4"
FACESTREAM = [sys.executable, "-m", "facestream"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(settings, tmp_path) -> dict[str, str]:
    return {**os.environ, "FACESTREAM_REDIS_URL": settings.redis_url, "FACESTREAM_KEY_PREFIX": settings.key_prefix,
            "FACESTREAM_DATA_DIR": str(tmp_path / "data")}


class Output:
    """The lines a process prints, collected by a thread."""

    def __init__(self, proc: subprocess.Popen):
        self.lines: list[str] = []
        threading.Thread(target=lambda: self.lines.extend(iter(proc.stdout.readline, "")), daemon=True).start()

    def text(self) -> str:
        return "".join(self.lines)

    def pids(self, name: str) -> list[int]:
        return [int(m.group(1)) for m in re.finditer(rf"^{re.escape(name)}\s+pid (\d+)", self.text(), re.M)]


def _until(what: str, ok, timeout_s: float = 120, out: Output | None = None) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if ok():
            return
        time.sleep(0.3)
    raise AssertionError(f"not within {timeout_s:.0f} s: {what}\n" + (out.text() if out else ""))


def _results(r, keys: Keys, camera: str) -> int:
    return r.xlen(keys.results(camera))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_up_runs_restarts_and_stops_the_stack(r, settings, faces_dir, tmp_path):
    port = _free_port()
    stack = tmp_path / "stack.yaml"
    stack.write_text(yaml.safe_dump({
        "workers": 2, "dashboard": {"port": port},
        "settings": {"claim_idle_ms": 2000, "camera_lease_ms": 2000},  # a killed worker's frames move on quickly
        "cameras": [{"camera": "good", "source": str(faces_dir / "videos" / CLIP), "loop": True, "fps": 5},
                    {"camera": "bad", "source": str(tmp_path / "missing.mp4")}],
    }))
    keys = Keys(settings.key_prefix)
    proc = subprocess.Popen([*FACESTREAM, "up", str(stack)], env=_env(settings, tmp_path), text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    out = Output(proc)
    try:
        _until("both workers beat", lambda: len(list(r.scan_iter(match=keys.worker_pattern))) >= 2, out=out)
        page = urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5)
        assert page.status == 200 and b"<html" in page.read().lower()
        _until("results for the good camera", lambda: _results(r, keys, "good") >= 5, out=out)
        _until("the bad camera's producer retried", lambda: re.search(r"camera-bad\s+exited with 1: .*missing\.mp4.*"
                                                                       r"restart 2 in 2 s", out.text()), 60, out)
        victim = out.pids("worker-0")[-1]
        os.kill(victim, signal.SIGKILL)
        _until("worker-0 restarted", lambda: len(out.pids("worker-0")) == 2, 30, out)
        assert "worker-0         exited with -9" in out.text()
        before = _results(r, keys, "good")
        _until("frames still answered", lambda: _results(r, keys, "good") >= before + 10, 90, out)
        # The killed worker's frames become claimable after claim_idle_ms (2 s) and are then answered at once:
        # none may stay pending longer than that (a live worker holds a frame for well under a second).
        time.sleep(2.5)
        _until("the killed worker's frames taken over", lambda: not r.xpending_range(
            keys.frames("good"), settings.group, min="-", max="+", count=10, idle=1500), 60, out)
    finally:
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(90)
    print(out.text())
    assert rc == 0, out.text()
    assert "stopped" in out.lines[-1]
    children = [pid for name in ("worker-0", "worker-1", "camera-good", "camera-bad", "dashboard") for pid in out.pids(name)]
    assert len(children) >= 6 and not [pid for pid in children if _alive(pid)], "every child is gone"
    assert r.xpending(keys.frames("good"), settings.group)["pending"] == 0, "nothing left pending"
    spec = tmp_path / "data" / "up" / "camera-good.yaml"
    assert oct(spec.stat().st_mode & 0o777) == "0o600"  # the source (maybe with credentials) is owner-only


def test_up_check_says_what_is_wrong_one_line_each(settings, tmp_path):
    stack = tmp_path / "stack.yaml"
    stack.write_text(yaml.safe_dump({
        "settings": {"detecton": "fast"},
        "cameras": [{"camera": "bad id!", "source": "never opened"}, {"camera": "gone", "source": str(tmp_path / "nope.mp4")},
                    {"camera": "door", "source": "rtsp://admin:s3cret@127.0.0.1:1/stream"}],
    }))
    out = subprocess.run([*FACESTREAM, "up", "--check", str(stack)], env=_env(settings, tmp_path),
                         capture_output=True, text=True, timeout=120)
    lines = out.stderr.strip().splitlines()
    assert out.returncode != 0 and "Traceback" not in out.stderr
    assert any("detecton: not a setting (did you mean detection?)" in ln for ln in lines), lines
    assert any("camera #1" in ln and "must be 1-64 characters" in ln for ln in lines), lines
    assert any("camera 'gone'" in ln and "not a file" in ln for ln in lines), lines
    assert any("camera 'door'" in ln and "cannot open" in ln for ln in lines), lines
    assert len(lines) == 4, lines  # one line each
    assert "s3cret" not in out.stderr + out.stdout, "no credential is printed"

def test_up_check_passes_a_good_file(settings, faces_dir, tmp_path):
    if not (faces_dir / "videos" / CLIP).is_file():
        pytest.skip("the shared clip is absent")
    stack = tmp_path / "stack.yaml"
    stack.write_text(yaml.safe_dump({"cameras": [{"camera": "c", "source": str(faces_dir / "videos" / CLIP)}]}))
    out = subprocess.run([*FACESTREAM, "up", "--check", str(stack)], env=_env(settings, tmp_path),
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "ok" in out.stdout, out.stderr


def test_up_check_says_when_the_cameras_do_not_fit_the_embedded_redis(settings, faces_dir, tmp_path):
    """Each camera's frame and results streams at their caps, plus the headroom, against the embedded server's
    maxmemory: one line saying what to change, before anything starts."""
    if not (faces_dir / "videos" / CLIP).is_file():
        pytest.skip("the shared clip is absent")
    stack = tmp_path / "stack.yaml"
    cams = [{"camera": f"c{i}", "source": str(faces_dir / "videos" / CLIP)} for i in range(3)]
    env = {k: v for k, v in _env(settings, tmp_path).items() if k != "FACESTREAM_REDIS_URL"}  # the embedded default
    for limit, fits in ((1024, False), (2048, True)):  # 3 x (64 + 146.5) + 512 = 1143 MB
        stack.write_text(yaml.safe_dump({"cameras": cams, "settings": {"redis_max_memory_mb": limit}}))
        out = subprocess.run([*FACESTREAM, "up", "--check", str(stack)], env=env, capture_output=True, text=True,
                             timeout=120)
        assert (out.returncode == 0) == fits and "Traceback" not in out.stderr, out.stderr
        if not fits:
            assert out.stderr.count("memory: 3 camera(s)") == 1 and "= 1143 MB > redis_max_memory_mb 1024" in out.stderr


def test_up_restarts_a_killed_redis_and_nothing_sent_vanishes(faces_dir, tmp_path):
    """The embedded Redis SIGKILLed twice under `up` with two cameras: results flow again within 15 s of each
    kill, `up` names each outage and recovery, and every frame a producer was told was added is answered."""
    from facestream.config import load_settings
    from facestream.server import EmbeddedRedis, connect

    port, data = _free_port(), tmp_path / "data"
    stack = tmp_path / "stack.yaml"
    clip = str(faces_dir / "videos" / CLIP)
    stack.write_text(yaml.safe_dump({
        "workers": 1, "dashboard": False,
        "settings": {"claim_idle_ms": 2000, "camera_lease_ms": 2000, "frames_maxlen": 100000},
        "cameras": [{"camera": c, "source": clip, "loop": True, "fps": 4, "max_side": 320} for c in ("north", "south")],
    }))
    env = {k: v for k, v in os.environ.items() if k != "FACESTREAM_REDIS_URL"}
    env.update({"FACESTREAM_DATA_DIR": str(data), "FACESTREAM_EMBEDDED_PORT": str(port), "FACESTREAM_KEY_PREFIX": "upr"})
    server = EmbeddedRedis(port, data)
    proc = subprocess.Popen([*FACESTREAM, "up", str(stack)], env=env, text=True, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT)
    out = Output(proc)
    keys = Keys("upr")
    try:
        _until("the embedded Redis answers", server.is_running, 60, out)
        r = connect(load_settings(redis_url=server.url))
        for cam in ("north", "south"):
            _until(f"results for {cam}", lambda: _results_safe(r, keys, cam) >= 3, 180, out)
        for kill in (1, 2):
            before = {cam: _results_safe(r, keys, cam) for cam in ("north", "south")}
            os.kill(server.pid(), signal.SIGKILL)
            killed = time.monotonic()
            _until(f"results flow again after kill {kill}", lambda: all(
                _results_safe(r, keys, cam) > before[cam] for cam in before), 15, out)
            print(f"kill {kill}: results again after {time.monotonic() - killed:.1f} s")
        time.sleep(1)  # a status write after the last recovery
        status = subprocess.run([*FACESTREAM, "up", "--status", str(stack)], env=env, capture_output=True, text=True)
        assert re.search(r"^redis\s+up\s+\d+\s+2 ", status.stdout, re.M), status.stdout + status.stderr
        assert re.search(r"^camera-north\s+up\s+\d+\s+0 ", status.stdout, re.M), status.stdout
        cutoff = {cam: r.xrevrange(keys.frames(cam), count=1)[0][0] for cam in ("north", "south")}
        for cam, last in cutoff.items():  # every frame added up to now, both outages included, gets answered
            ids = [eid for eid, _ in r.xrange(keys.frames(cam), max=last)]
            _until(f"every {cam} frame answered", lambda: all(
                r.exists(keys.answered(keys.frames(cam), eid.decode())) for eid in ids), 60, out)
    finally:
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(90)
    print(out.text())
    assert rc == 0
    assert len(re.findall(r"^redis\s+DOWN at redis://127\.0\.0\.1", out.text(), re.M)) == 2, out.text()
    assert len(re.findall(r"^redis\s+back after [\d.]+ s \(restart \d\)", out.text(), re.M)) == 2, out.text()
    for cam in ("north", "south"):  # nothing vanished: every sequence number is in the stream or was refused
        seqs = {int(f[b"seq"]) for _, f in r.xrange(keys.frames(cam))}
        log = (data / "up" / f"camera-{cam}.log").read_text()
        refused = {n for a, b in re.findall(r"frames (\d+)-(\d+) not sent", log) for n in range(int(a), int(b) + 1)}
        assert set(range(1, max(seqs) + 1)) <= seqs | refused, f"{cam}: frames vanished"
    server.stop()


def _results_safe(r, keys: Keys, camera: str) -> int:
    """Results of ``camera`` so far (0 while Redis is down)."""
    import redis as redis_py

    try:
        return _results(r, keys, camera)
    except redis_py.ConnectionError:
        return 0


def _family_dies_with(args: list[str], env: dict[str, str], ready: str, sig: int, children: int,
                      timeout_s: float = 240) -> None:
    """Start ``facestream *args``; once it printed ``ready`` and has children, send it ``sig``: every
    descendant is gone within 5 s."""
    import psutil

    proc = subprocess.Popen([*FACESTREAM, *args], env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    out = Output(proc)
    try:
        _until(f"{args[0]} printed {ready!r}", lambda: ready in out.text(), timeout_s, out)
        _until(f"{args[0]} has {children} children", lambda: len(psutil.Process(proc.pid).children(recursive=True)) >= children,
               60, out)
        family = psutil.Process(proc.pid).children(recursive=True)
        proc.send_signal(sig)
        gone, alive = psutil.wait_procs(family, timeout=5)
        assert not alive, f"still running 5 s after {signal.Signals(sig).name}: {[p.cmdline() for p in alive]}\n{out.text()}"
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(30)


def test_children_die_with_up_killed_and_demo_and_bench_stopped(settings, faces_dir, tmp_path):
    env = _env(settings, tmp_path)
    stack = tmp_path / "stack.yaml"
    stack.write_text(yaml.safe_dump({"workers": 1, "dashboard": {"port": _free_port()}, "cameras": [
        {"camera": "door", "source": str(faces_dir / "videos" / CLIP), "loop": True, "fps": 2}]}))
    _family_dies_with(["up", str(stack)], env, "dashboard        pid", signal.SIGKILL, 3)
    _family_dies_with(["demo", "--port", str(_free_port())], env, "looping the sample", signal.SIGTERM, 2)
    _family_dies_with(["bench", "--live", "--fps", "5", "--frames", "400", "--no-baseline"], env, "enrolling", signal.SIGKILL, 1)


def test_the_systemd_unit_example_is_valid(tmp_path):
    """docs/facestream.service, with its example paths pointed at this checkout, passes `systemd-analyze verify`."""
    import shutil

    exe = shutil.which("systemd-analyze")
    if exe is None:
        pytest.skip("systemd-analyze not installed (Debian: systemd)")
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    unit = open(os.path.join(repo, "docs", "facestream.service")).read()
    assert "ExecStart=/opt/facestream/.venv/bin/facestream up " in unit and "KillMode=mixed" in unit
    unit = unit.replace("/opt/facestream/.venv/bin/facestream", sys.executable + " -m facestream")
    unit = unit.replace("/opt/facestream", str(tmp_path))
    path = tmp_path / "facestream.service"
    path.write_text(unit)
    out = subprocess.run([exe, "verify", str(path)], capture_output=True, text=True, timeout=60)
    problems = [ln for ln in (out.stdout + out.stderr).splitlines() if "facestream.service" in ln]
    assert out.returncode == 0 and not problems, out.stdout + out.stderr


def _gone(pid: int) -> bool:
    import psutil

    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_the_tests_redis_dies_with_the_test_run(tmp_path):
    """conftest's server is started attached: a SIGKILLed test run leaves no Redis behind."""
    port = _free_port()
    code = ("import sys, time; from pathlib import Path; from facestream.server import EmbeddedRedis; "
            f"s = EmbeddedRedis({port}, Path(sys.argv[1])); s.start(attached=True); print(s.pid(), flush=True); "
            "time.sleep(120)")
    proc = subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE, text=True)
    pid = int(proc.stdout.readline())
    assert not _gone(pid)
    proc.kill()
    proc.wait()
    _until("the server is gone", lambda: _gone(pid), 5)


def test_up_reports_an_external_redis_outage_and_recovery(tmp_path):
    from facestream.app.stack.supervisor import RedisWatch
    from facestream.config import load_settings
    from facestream.server import EmbeddedRedis

    server = EmbeddedRedis(_free_port(), tmp_path)
    url = server.start(attached=True)
    said: list[str] = []
    watch = RedisWatch(load_settings(redis_url=url), url, said.append)
    watch.check(time.monotonic())
    assert said == [] and watch.status()["state"] == "up"
    server.stop()
    watch.check(time.monotonic())
    assert re.match(r"redis\s+DOWN at redis://\*\*\*@127\.0\.0\.1:\d+/0: .*; the children retry until it is back", said[0])
    assert watch.status()["state"] == "down" and not server.is_running(), "an external server is not restarted"
    server.start(attached=True)
    watch.check(time.monotonic())
    assert re.match(r"redis\s+back after [\d.]+ s$", said[1]) and watch.status()["state"] == "up"
    server.stop()


def test_up_shares_the_cores_between_its_workers_unless_detect_threads_is_set(tmp_path):
    from facestream.app.stack.stackfile import Stack
    from facestream.app.stack.up import share_cores
    from facestream.config import load_settings

    cores = os.cpu_count() or 1
    s = load_settings()
    for cameras in (1, 2, 4, 8):
        stack = Stack(tmp_path / "stack.yaml", [{"camera": f"c{i}", "source": "x"} for i in range(cameras)])
        shared = share_cores(stack, s, set())
        assert shared.detect_threads == max(1, cores // stack.worker_count)
        assert stack.worker_count * shared.detect_threads <= max(cores, stack.worker_count), "no more threads than cores"
        assert share_cores(stack, s.replace(detect_threads=3), {"detect_threads"}).detect_threads == 3, "the user's"
