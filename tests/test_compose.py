"""docker-compose.yml validates, and every Dockerfile installs with the README's own command."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from facestream.producer.capture import load_cameras

REPO = Path(__file__).resolve().parents[1]


def _resolved(name: str, *profiles: str) -> dict:
    """``docker-compose config`` of a compose file: the services that run with ``profiles`` enabled."""
    exe = shutil.which("docker-compose")
    if exe is None:
        pytest.skip("docker-compose (Debian package) not installed; scripts/setup.sh --test installs it as root")
    flags = [x for p in profiles for x in ("--profile", p)]
    out = subprocess.run([exe, "-f", str(REPO / name), *flags, "config"], capture_output=True, text=True, cwd=REPO,
                         timeout=120, env={**os.environ, "FACESTREAM_DASHBOARD_TOKEN": "t0ken"})
    assert out.returncode == 0, out.stderr
    services = yaml.safe_load(out.stdout)["services"]
    return {k: v for k, v in services.items() if not v.get("profiles") or set(v["profiles"]) & set(profiles)}


def _redis_of(service: dict) -> str | None:
    url = (service.get("environment") or {}).get("FACESTREAM_REDIS_URL")
    return url.split("//", 1)[1].split(":", 1)[0] if url else None


def test_compose_default_runs_workers_producers_and_dashboard_on_one_redis():
    svc = _resolved("docker-compose.yml")
    assert {"redis", "worker", "producer", "dashboard"} <= set(svc) and "redis-gears" not in svc
    assert {_redis_of(svc[n]) for n in ("worker", "producer", "dashboard")} == {"redis"}
    dash = svc["dashboard"]
    assert dash["environment"]["FACESTREAM_DATA_DIR"] == "/data"  # its users file outlives the container
    assert "FACESTREAM_DASHBOARD_TOKEN" not in dash["environment"]  # logins, not a shared token
    for name in ("redis", "worker", "dashboard"):  # each has a health check, and comes back when it dies
        assert svc[name]["healthcheck"]["test"], name
    assert "--worker-alive" in " ".join(svc["worker"]["healthcheck"]["test"])
    assert {svc[n]["restart"] for n in ("redis", "worker", "producer", "dashboard")} == {"unless-stopped"}
    assert [p.get("host_ip") if isinstance(p, dict) else p.split(":")[0] for p in dash["ports"]] == ["127.0.0.1"]
    assert dash["environment"]["FACESTREAM_REDIS_USERNAME"] == "fs-reader"
    assert "enroll" in _resolved("docker-compose.yml", "enroll")


def test_compose_gears_variant_feeds_the_gears_server_and_runs_no_worker():
    svc = _resolved("docker-compose.gears.yml")
    assert set(svc) == {"redis-gears", "gears-load", "producer", "dashboard"}, "no worker: the gear does the work"
    assert {_redis_of(svc[n]) for n in ("gears-load", "producer", "dashboard")} == {"redis-gears"}
    assert svc["producer"]["command"] == ["produce", "--cameras", "/config/cameras.yaml"]


def test_compose_wiring():
    doc = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    svc = doc["services"]
    assert svc["redis"]["image"].startswith("redis:8") and "ports" not in svc["redis"]
    assert "--appendonly" in svc["redis"]["command"] and svc["redis"]["volumes"]
    assert svc["worker"]["command"][0] == "work" and svc["worker"]["stop_signal"] == "SIGTERM"
    assert svc["worker"]["environment"]["FACESTREAM_REDIS_URL"].startswith("redis://redis:")


def test_compose_services_log_in_as_their_least_privileged_role():
    doc = yaml.safe_load((REPO / "docker-compose.yml").read_text())
    svc = doc["services"]
    assert "--aclfile" in svc["redis"]["command"] and svc["redis"]["depends_on"]["acl"]
    assert "acl write /secrets" in " ".join(svc["acl"]["entrypoint"])
    for name, role in (("worker", "worker"), ("producer", "producer"), ("enroll", "admin"), ("dashboard", "reader")):
        env = svc[name]["environment"]
        assert env["FACESTREAM_REDIS_USERNAME"] == f"fs-{role}" and env["FACESTREAM_REDIS_PASSWORD_FILE"] == f"/secrets/{role}"
        assert "secrets:/secrets:ro" in svc[name]["volumes"]
        assert "@" not in env["FACESTREAM_REDIS_URL"], "no password in a URL"


def test_example_cameras_file_is_valid():
    cams = load_cameras(REPO / "docker" / "cameras.example.yaml")
    assert [c["camera"] for c in cams] == ["door", "lobby", "sample"]
