"""The README's main job, end to end: `facestream demo --once` on the sample clip."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow


def test_demo_answers_every_frame_and_names_people(settings, faces_dir, tmp_path):
    env = {**os.environ, "FACESTREAM_REDIS_URL": settings.redis_url, "FACESTREAM_KEY_PREFIX": settings.key_prefix,
           "FACESTREAM_DATA_DIR": str(tmp_path), "FACESTREAM_FACES_DIR": str(faces_dir)}
    out = subprocess.run([sys.executable, "-m", "facestream", "demo", "--once", "--workers", "2", "--port", "0"],
                         env=env, capture_output=True, text=True, timeout=400)
    assert out.returncode == 0, out.stdout + out.stderr
    m = re.search(r"frames (\d+): (\d+) results, (\d+) dead letters", out.stdout)
    assert m and int(m[1]) == 275 and int(m[2]) + int(m[3]) == 275
    named = int(re.search(r"Lin-Manuel Miranda: in (\d+) frames", out.stdout)[1])
    assert named >= 100, out.stdout
    assert "appear Lin-Manuel Miranda" in out.stdout
