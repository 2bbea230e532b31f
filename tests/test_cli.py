"""Every subcommand through the real entry point (`python -m facestream`): its happy path, with the output
a user reads, and its exit status."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest

from facestream.keys import Keys

FACESTREAM = [sys.executable, "-m", "facestream"]


@pytest.fixture
def run(settings, tmp_path):
    env = {**os.environ, "FACESTREAM_REDIS_URL": settings.redis_url, "FACESTREAM_KEY_PREFIX": settings.key_prefix,
           "FACESTREAM_DATA_DIR": str(tmp_path / "data")}

    def run(*args: str, ok: bool = True, timeout: float = 240) -> subprocess.CompletedProcess:
        out = subprocess.run([*FACESTREAM, *args], env=env, capture_output=True, text=True, timeout=timeout)
        assert (out.returncode == 0) == ok and "Traceback" not in out.stderr, out.stdout + out.stderr
        return out

    return run


def test_gallery_commands(run, faces_dir, tmp_path):
    gallery = tmp_path / "gallery"
    for person in ("Barack_Obama", "Lin-Manuel_Miranda"):
        shutil.copytree(faces_dir / "gallery" / person, gallery / person)
    out = run("enroll", str(gallery), "--workers", "1")
    assert "of 2 people" in out.stdout
    listed = run("people", "list")
    assert "Barack_Obama" in listed.stdout
    # a handful of faces: the threshold is the ceiling; the line says how near strangers come and from what
    assert "faces: threshold 0.1300" in listed.stderr and "of stranger faces expected within it" in listed.stderr
    assert "shipped impostor model" in listed.stderr
    shown = json.loads(run("people", "show", "Barack_Obama").stdout)
    assert shown["faces"] >= 1 and shown["naming"]["named_within"] == shown["naming"]["threshold"] == 0.13  # no wolf
    assert "is now 'President Obama'" in run("people", "rename", "Barack_Obama", "President Obama").stdout
    assert "President Obama" in run("people", "list").stdout
    assert "deleted Barack_Obama" in run("people", "delete", "Barack_Obama").stdout
    assert "no person with id 'Barack_Obama'" in run("people", "show", "Barack_Obama", ok=False).stderr


def test_calibrate_and_eval_on_a_small_set(run, faces_dir, tmp_path):
    root = tmp_path / "faces"
    people = ["Barack_Obama", "Angela_Merkel", "Alex_Lacamoire"]
    for person in people:
        shutil.copytree(faces_dir / "gallery" / person, root / "gallery" / person)
        shutil.copytree(faces_dir / "probes" / person, root / "probes" / person)
    with (root / "pairs.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["img_a", "img_b", "same", "fold"])
        for i, person in enumerate(people):
            a = sorted((root / "gallery" / person).iterdir())[0].relative_to(root)
            b = sorted((root / "probes" / person).iterdir())[0].relative_to(root)
            other = sorted((root / "probes" / people[(i + 1) % 3]).iterdir())[0].relative_to(root)
            w.writerow([a, b, 1, 1 + i % 2])
            w.writerow([a, other, 0, 1 + i % 2])
    out = run("calibrate", str(root / "pairs.csv"), "--workers", "1")
    assert "verification on 6 pairs" in out.stdout and "threshold" in out.stdout
    out = run("eval", str(root), "--no-pairs", "--workers", "1")
    assert "top-1" in out.stdout


def test_pipeline_commands(run, r, settings, faces_dir, tmp_path):
    clip = faces_dir / "videos" / "hamilton_white_house_2009.mp4"
    out = run("produce", str(clip), "--camera", "cli", "--as-fast-as-possible", "--max-frames", "5")
    assert "camera cli: sent 5 frames" in out.stderr
    config = tmp_path / "facestream.yaml"
    config.write_text("facestream:\n  block_ms: 100\n  detection: fast\n")
    out = run("--config", str(config), "work", "--name", "cli-w", "--exit-when-idle", "2")
    assert "worker cli-w stopped: 5 results" in out.stderr
    assert "cli" in run("status").stdout
    assert "0 worker(s) named cli-w* beating" in run("status", "--worker-alive", "cli-w", ok=False).stdout  # it left
    r.hset(Keys(settings.key_prefix).worker("cli-x-1"), "ts_ms", "1")
    assert "1 worker(s)" in run("status", "--worker-alive", "cli-x-").stdout
    lines = run("consume", "--from", "beginning", "--json", "--exit-when-idle", "1").stdout.splitlines()
    assert len(lines) == 5 and all(json.loads(x)["camera"] == "cli" for x in lines)
    cameras = tmp_path / "cameras.yaml"
    cameras.write_text(f"cameras:\n  - camera: a\n    source: {clip}\n    as_fast_as_possible: true\n"
                       f"  - camera: b\n    source: {clip}\n    as_fast_as_possible: true\n")
    out = run("produce", "--cameras", str(cameras), "--max-frames", "3")
    assert "camera a: sent 3" in out.stderr and "camera b: sent 3" in out.stderr
    assert r.xlen(Keys(settings.key_prefix).frames("b")) == 3
    assert "RG.PYEXECUTE is unknown" in run("gears", "load", ok=False).stderr
    assert "only on 127.0.0.1" in run("dashboard", "--host", "0.0.0.0", "--no-auth", ok=False).stderr
    assert "--keyfile go together" in run("dashboard", "--certfile", str(config), ok=False).stderr


def test_cohort_and_feedback_commands(run, faces_dir, settings, r):
    strangers = sorted((faces_dir / "probes" / "_unknown").iterdir())[:2]
    out = run("cohort", "add", *map(str, strangers), "--workers", "1")
    assert "added 2 faces to the cohort from 2 files" in out.stdout
    assert run("cohort", "show").stdout.split() == ["cohort", "2", "faces"]
    status = run("status").stdout
    assert "cohort 2 faces" in status and "decision policy: the settings'" in status
    assert "removed 2 cohort faces" in run("cohort", "remove", "cohort:").stdout
    bad = run("feedback", "garbage", "--not", "x", ok=False)
    assert "is not a face" in bad.stderr and len(bad.stderr.strip().splitlines()) == 1
    assert "no result 1-0" in run("feedback", "1-0#0", "--is", "x", ok=False).stderr
    assert "exactly one of" in run("feedback", "1-0", ok=False).stderr
    r.set(Keys(settings.key_prefix).policy, "{broken")
    assert "malformed (JSONDecodeError), so the settings' is used" in run("status").stdout


def test_sightings_and_visitors_commands(run, r, settings, tmp_path):
    import numpy as np

    from facestream.models.store.sightings import SightingIndexes
    from facestream.models.store.visitors import Visitors
    from facestream.records import Sighting

    keys = Keys(settings.key_prefix)
    indexes = SightingIndexes(r.execute_command, keys)
    rng = np.random.default_rng(0)
    base = rng.standard_normal(128)
    looks = [(base + 0.1 * rng.standard_normal(128)) for _ in range(2)]
    looks = [(v / np.linalg.norm(v)).astype(np.float32) for v in looks]
    visitors = Visitors(r.execute_command, keys, settings.visitor_distance, 600_000)
    a, b = visitors.create(looks[0], "door", 1_000), visitors.create(looks[1], "yard", 2_000)
    for i, (vid, cam) in enumerate([(a, "door"), (b, "yard")]):
        indexes.write(Sighting(f"{cam}-1-0", cam, int(time.time() * 1000) - i, visitor=vid,
                                                quality={"size": 120, "sharpness": 80.0, "yaw": 0.0},
                                                vector=looks[i].tobytes(), thumb=b"\xff\xd8jpeg"), 600_000)
    assert a in run("visitors", "list").stdout and "2 visitor(s)" in run("visitors", "list").stderr
    out = run("search", "--sighting", "door-1-0", "--since", "1h", "--thumbs", str(tmp_path / "t")).stdout
    assert "door-1-0" in out and "yard-1-0" in out and (tmp_path / "t" / "yard-1-0.jpg").read_bytes() == b"\xff\xd8jpeg"
    assert "yard-1-0" not in run("search", "--sighting", "door-1-0", "--camera", "door").stdout
    assert "--since" in run("search", "--sighting", "door-1-0", "--since", "soon", ok=False).stderr
    assert "PHOTO or --sighting" in run("search", ok=False).stderr
    assert "merged" in run("visitors", "merge", a, b).stdout
    assert "yard" in run("visitors", "show", a, "--thumbs", str(tmp_path / "t")).stdout
    assert "no visitor" in run("visitors", "show", b, ok=False).stderr
    out = run("visitors", "name", a, "--new", "Door Person").stdout
    assert "Door_Person" in out and "2 sighting(s) relabelled" in out
    assert "sightings" in run("people", "delete", "Door_Person").stdout
    assert not list(r.scan_iter(match=keys.sighting("*")))
    assert "nothing is kept" in run("forget", "Door_Person", ok=False).stderr


def test_dashboard_users_commands(run, tmp_path):
    pw = tmp_path / "pw"
    pw.write_text("a-long-password\n")
    assert "added alice (viewer)" in run("users", "add", "alice", "--password-file", str(pw)).stdout
    assert "exists" in run("users", "add", "alice", "--password-file", str(pw), ok=False).stderr
    pw.write_text("short\n")
    assert "at least 10 characters" in run("users", "add", "bob", "--role", "admin", "--password-file", str(pw), ok=False).stderr
    pw.write_text("another-long-one\n")
    run("users", "add", "bob", "--role", "admin", "--password-file", str(pw))
    assert run("users", "list").stdout.split() == ["alice", "viewer", "bob", "admin"]
    assert "password of alice changed" in run("users", "passwd", "alice", "--password-file", str(pw)).stdout
    assert "the last admin" in run("users", "remove", "bob", ok=False).stderr
    assert "removed alice" in run("users", "remove", "alice").stdout
    assert "a-long-password" not in (tmp_path / "data" / "dashboard" / "users.json").read_text()


def test_people_clear_asks_for_yes_and_audits(run, r, settings):
    from facestream.models.store.gallery import FaceEntry, Gallery

    Gallery(r, settings).add_person("ann", "Ann", [FaceEntry(np.eye(128, dtype=np.float32)[0], "x")])
    assert "add --yes" in run("people", "clear", ok=False).stderr
    assert "removed 1 people" in run("people", "clear", "--yes").stdout
    keys = Keys(settings.key_prefix)
    assert not r.exists(keys.person("ann"), keys.model)
    (_, change), = r.xrange(keys.audit)
    assert change[b"action"] == b"clear" and change[b"user"].startswith(b"cli:") and change[b"address"] == b"cli"
