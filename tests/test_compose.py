"""docker-compose.yml validates, and every Dockerfile installs with the README's own command."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from producer.capture import load_cameras

REPO = Path(__file__).resolve().parents[1]


def test_compose_file_validates():
    exe = shutil.which("docker-compose")
    if exe is None:
        pytest.skip("docker-compose (Debian package) not installed; scripts/setup.sh --test installs it as root")
    out = subprocess.run([exe, "-f", str(REPO / "docker-compose.yml"), "--profile", "gears", "--profile", "enroll",
                          "config", "-q"], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert out.returncode == 0, out.stderr


def test_compose_wiring():
    doc = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    svc = doc["services"]
    assert svc["redis"]["image"].startswith("redis:8") and "ports" not in svc["redis"]
    assert "--appendonly" in svc["redis"]["command"] and svc["redis"]["volumes"]
    assert svc["worker"]["command"][0] == "work" and svc["worker"]["stop_signal"] == "SIGTERM"
    assert svc["worker"]["environment"]["FACESTREAM_REDIS_URL"].startswith("redis://redis:")
    assert svc["redis-gears"]["profiles"] == ["gears"]


def test_compose_services_log_in_as_their_least_privileged_role():
    doc = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    svc = doc["services"]
    assert "--aclfile" in svc["redis"]["command"] and svc["redis"]["depends_on"]["acl"]
    assert "acl write /secrets" in " ".join(svc["acl"]["entrypoint"])
    for name, role in (("worker", "worker"), ("producer", "producer"), ("enroll", "admin")):
        env = svc[name]["environment"]
        assert env["FACESTREAM_REDIS_USERNAME"] == f"fs-{role}" and env["FACESTREAM_REDIS_PASSWORD_FILE"] == f"/secrets/{role}"
        assert "secrets:/secrets:ro" in svc[name]["volumes"]
        assert "@" not in env["FACESTREAM_REDIS_URL"], "no password in a URL"


def test_dockerfile_installs_with_the_readme_command():
    readme = (REPO / "README.md").read_text()
    assert "scripts/setup.sh && .venv/bin/facestream demo" in readme
    dockerfile = (REPO / "docker" / "Dockerfile").read_text()
    assert "RUN apt-get update -qq && scripts/setup.sh" in dockerfile
    assert "\nUSER 10001\n" in dockerfile, "the image does not run as root"


def test_example_cameras_file_is_valid():
    cams = load_cameras(REPO / "docker" / "cameras.example.yaml")
    assert [c["camera"] for c in cams] == ["door", "lobby", "sample"]
