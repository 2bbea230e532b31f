"""The README's main job, end to end: `facestream demo --once` on the sample clip."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from facestream.keys import Keys
from facestream.models.evaluation.evaluate import segment_scores
from facestream.records import FrameResult
from facestream.server import connect

pytestmark = pytest.mark.slow
CLIP = "hamilton_white_house_2009.mp4"


def test_demo_answers_every_frame_and_names_people(settings, faces_dir, tmp_path):
    env = {**os.environ, "FACESTREAM_REDIS_URL": settings.redis_url, "FACESTREAM_KEY_PREFIX": settings.key_prefix,
           "FACESTREAM_DATA_DIR": str(tmp_path), "FACESTREAM_FACES_DIR": str(faces_dir)}
    out = subprocess.run([sys.executable, "-m", "facestream", "demo", "--once", "--workers", "2", "--port", "0"],
                         env=env, capture_output=True, text=True, timeout=400)
    assert out.returncode == 0, out.stdout + out.stderr
    m = re.search(r"frames (\d+): (\d+) results, (\d+) dead letters", out.stdout)
    assert m and int(m[1]) == 275 and int(m[2]) + int(m[3]) == 275
    assert "appear Lin-Manuel Miranda" in out.stdout
    client = connect(settings)
    results = [FrameResult.from_fields(f) for _, f in client.xrange(Keys(settings.key_prefix).results("demo"))]
    scores = {(x.start_s, x.person_id): x for x in segment_scores(results, faces_dir / "videos" / CLIP)}
    lmm = scores[(3.18, "Lin-Manuel_Miranda")]  # his medium close-up segment
    print(lmm.line())
    assert lmm.with_face >= 100 and lmm.share >= 0.8
    hint = re.search(r"inspect the results: (.*)", out.stdout)[1]  # the redis-cli line it prints works
    assert "redis-cli" in hint and "XREVRANGE" in hint
    key = re.search(r"'(.+?)'", hint)[1]
    assert key == Keys(settings.key_prefix).results("demo") and client.exists(key)


def test_without_the_shared_faces_the_demo_builds_its_sample_from_what_setup_fetched(tmp_path):
    """A fresh machine has no ../shared: the demo falls back on the photos scripts/setup.sh put in the
    checkout's .facestream/samples (the README's first command on such a machine)."""
    from facestream.app.stack.demo import SAMPLES, find_sample

    repo = Path(__file__).resolve().parents[1]
    assert SAMPLES == repo / ".facestream" / "samples", SAMPLES
    if not (SAMPLES / "test_images" / "obama.jpg").is_file():
        pytest.skip("scripts/setup.sh could not fetch the face_recognition sdist photos here")
    sample = find_sample(tmp_path / "no-shared-faces")
    assert sample.video.is_file() and [p.name for p in sample.people] == ["Barack_Obama", "Joe_Biden"]
