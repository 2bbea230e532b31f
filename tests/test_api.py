"""The public API in facestream/__init__.py: the README's example, run as a user would run it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

import facestream
from facestream.keys import Keys

REPO = Path(__file__).resolve().parents[1]


def readme_example() -> str:
    """The first Python block under the README's "The public API" heading."""
    readme = (REPO / "README.md").read_text()
    section = readme[readme.index("## The public API"):]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


def docstring_example() -> str:
    """The indented block after ``::`` in facestream's docstring."""
    doc = facestream.__doc__
    block = doc[doc.index("::\n") + 3:].lstrip("\n").split("\n\n")
    lines = []
    for para in block:
        if para.strip() and not para.startswith("    "):
            break
        lines.append(para)
    return textwrap.dedent("\n\n".join(lines)).strip("\n") + "\n"


def test_the_docstring_shows_the_readme_example():
    assert docstring_example() == readme_example()


def test_the_readme_example_runs_enrolls_searches_and_follows(r, settings, faces_dir, tmp_path):
    """The README's block, as a file of its own, in a folder with ``gallery/`` and ``photo.jpg``, with the
    settings in the environment: it enrolls, searches (nothing seen yet) and prints every result added."""
    (tmp_path / "gallery").mkdir()
    (tmp_path / "gallery" / "Lin-Manuel_Miranda").symlink_to(faces_dir / "gallery" / "Lin-Manuel_Miranda")
    (tmp_path / "photo.jpg").symlink_to(faces_dir / "gallery" / "Lin-Manuel_Miranda" / "1.jpg")
    (tmp_path / "example.py").write_text(readme_example())
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("FACESTREAM_")},
           "FACESTREAM_REDIS_URL": settings.redis_url, "FACESTREAM_KEY_PREFIX": settings.key_prefix,
           "FACESTREAM_DATA_DIR": str(Path(settings.data_dir).resolve())}
    proc = subprocess.Popen([sys.executable, "-u", "example.py"], cwd=tmp_path, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    lines: list[str] = []
    threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True).start()
    try:
        deadline = time.monotonic() + 120
        while not any("Lin-Manuel_Miranda" in x for x in lines) and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)
        assert "{'Lin-Manuel_Miranda': 1}" in "".join(lines), "".join(lines)[-2000:]
        face = facestream.Face((10, 10, 60, 60), 0.99, "Lin-Manuel_Miranda", "Lin-Manuel Miranda", 0.08, 0.4)
        sent = facestream.FrameResult("1-0", "stage", 1, int(time.time() * 1000), [face], {"total": 12.5})
        while not any(x.startswith("stage ") for x in lines) and proc.poll() is None and time.monotonic() < deadline:
            r.xadd(Keys(settings.key_prefix).results("stage"), sent.to_fields())  # until its follow has begun
            time.sleep(0.5)
        printed = next((x for x in lines if x.startswith("stage ")), "".join(lines)[-2000:])
        assert printed.startswith("stage ['Lin-Manuel Miranda'] [{") and "'box': [10, 10, 60, 60]" in printed, printed
    finally:
        proc.kill()
        proc.wait(10)


def test_searching_a_photo_that_is_not_there_is_a_one_line_error(r, settings, faces_dir):
    with pytest.raises(facestream.FacestreamError, match="no such file"):
        facestream.search(r, settings, faces_dir / "nobody.jpg")


def test_unknown_names_are_attribute_errors():
    with pytest.raises(AttributeError, match="no attribute 'Gallery'"):
        facestream.Gallery  # noqa: B018 - not part of the public API
    assert set(facestream.__all__) >= {"Settings", "Worker", "Producer", "follow", "enroll", "search"}
