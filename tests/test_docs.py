"""The docs site: it builds with ``mkdocs build --strict`` (broken links and anchors, pages outside the navigation
fail it), its reference pages are what the code generates, and the README stays a front page."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys

from conftest import REPO

from facestream.config import Settings


def _reference():
    spec = importlib.util.spec_from_file_location("reference", REPO / "scripts" / "reference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_site_builds_strictly(tmp_path):
    out = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(tmp_path / "site")],
                         cwd=REPO, capture_output=True, text=True, timeout=300,
                         env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert out.returncode == 0, out.stdout + out.stderr
    pages = [p for p in (REPO / "docs").rglob("*.md")]
    assert len(pages) >= 6 and (tmp_path / "site" / "reference" / "settings" / "index.html").exists()


def test_the_reference_pages_are_the_code_s(tmp_path):
    """A setting, a command's option or a key builder added without running scripts/reference.py fails here."""
    ref = _reference()
    out = subprocess.run([sys.executable, str(REPO / "scripts" / "reference.py"), "--check"], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    settings = ref.settings_page()
    assert all(f"`FACESTREAM_{name.upper()}`" in settings for name in Settings.model_fields)
    cli = ref.cli_page()
    assert "## facestream people remove-face" in cli and "`--docs`" in cli
    keys = ref.keys_page()
    assert "`presence(camera: 'str') -> 'str'`" in keys and "fs:frames:{<camera>}" in keys
    stale = ref.OUT / "settings.md"
    saved = stale.read_text()
    try:
        stale.write_text(saved.replace("`FACESTREAM_TRACK_CUT_DELTA`", "`FACESTREAM_SOMETHING_ELSE`"))
        assert ref.main(check=True) == 1, "a stale page is caught"
    finally:
        stale.write_text(saved)


def test_the_readme_is_a_front_page():
    readme = (REPO / "README.md").read_text()
    assert len(readme.splitlines()) <= 250
    for command in ("scripts/setup.sh && .venv/bin/facestream demo", "scripts/setup.sh --test && .venv/bin/python -m pytest -q"):
        assert command in readme
    assert "<!-- bench:" not in readme, "benchmark tables live in docs/benchmarks.md"
