"""`docker compose up`, for real: the images built (from a locally made base, offline from a wheelhouse) and
docker-compose.yml run on a Docker engine of the test's own, every service in host networking on loopback.

What changes for the run (and only that) is what host networking needs: each service on the host's network
(no bridge may be made here), Redis, the dashboard and the worker's metrics on free loopback ports, the URLs
pointing there; `ports:` dropped (host networking has none to publish). The rest is the file as users run it:
the ACL service, the healthchecks, the users per role, restart policies, volumes.
"""

from __future__ import annotations

import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
import yaml
from conftest import free_port
from docker_engine import REPO, Engine

CLIP = "hamilton_white_house_2009.mp4"


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    """dockerd and the images: facestream:local and redis:8 (a stand-in), on a debootstrapped Debian 12 base."""
    import os

    root = tmp_path_factory.mktemp("docker")
    eng = Engine(root / "engine")
    try:
        eng.start()
    except RuntimeError as e:
        if os.environ.get("CI"):
            pytest.fail(str(e))  # CI's machines can run it: a failure to start is a failure
        pytest.skip(str(e))
    try:
        timings = {}
        for what, make in (("base (debootstrap)", eng.base), ("facestream image", eng.facestream_image),
                           ("redis stand-in", eng.redis_standin)):
            start = time.monotonic()
            make(root)
            timings[what] = time.monotonic() - start
        print("built: " + ", ".join(f"{k} {v:.0f} s" for k, v in timings.items()))
        yield eng
    finally:
        eng.stop()


def host_network(compose: Path, redis_port: int, dashboard_port: int, metrics_port: int, clips: Path) -> dict:
    """``compose`` as one file for host networking on loopback (see the module doc)."""
    spec = yaml.safe_load(compose.read_text())
    url = f"redis://127.0.0.1:{redis_port}/0"
    for name, svc in spec["services"].items():
        svc["network_mode"] = "host"
        svc.pop("ports", None)
        if "environment" in svc:
            svc["environment"] = {**svc["environment"], "FACESTREAM_REDIS_URL": url}
    redis = spec["services"]["redis"]
    redis["command"] = [*redis["command"], "--port", str(redis_port), "--bind", "127.0.0.1"]
    redis["healthcheck"]["test"] = [redis["healthcheck"]["test"][0],
                                    redis["healthcheck"]["test"][1].replace("redis-cli ", f"redis-cli -p {redis_port} ")]
    spec["services"]["worker"]["command"] = ["work", "--metrics-port", str(metrics_port)]
    dash = spec["services"]["dashboard"]
    dash["command"] = ["dashboard", "--host", "127.0.0.1", "--port", str(dashboard_port)]
    dash["healthcheck"]["test"] = [x.replace("8080", str(dashboard_port)) for x in dash["healthcheck"]["test"]]
    spec["services"]["producer"]["volumes"] = [*spec["services"]["producer"]["volumes"], f"{clips}:/clips:ro"]
    return spec


def _until(check, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while True:
        got = check()
        if got:
            return got
        assert time.monotonic() < deadline, what
        time.sleep(1)


def test_docker_compose_up_runs_the_pipeline(engine, faces_dir, tmp_path):
    """The default stack with the Hamilton clip looped as its camera and the shared gallery enrolled through
    `docker-compose run --rm enroll`: results flow (read as the reader user), the login page answers on
    loopback, every healthcheck turns healthy, the producer's user cannot read results, a worker that crashes
    is restarted and the frames go on being answered, and `down` stops everything within 15 s."""
    redis_port, dash_port, metrics_port = free_port(), free_port(), free_port()
    compose = tmp_path / "compose.yml"
    compose.write_text(yaml.safe_dump(host_network(REPO / "docker-compose.yml", redis_port, dash_port, metrics_port,
                                                   faces_dir / "videos")))
    cameras = tmp_path / "cameras.yaml"
    cameras.write_text(yaml.safe_dump({"cameras": [{"camera": "stage", "source": f"/clips/{CLIP}", "loop": True}]}))
    env = {"FACESTREAM_CAMERAS": str(cameras), "FACESTREAM_GALLERY": str(faces_dir / "gallery")}
    dc = ["docker-compose", "-f", str(compose), "--project-directory", str(REPO)]

    def redis_cli(user: str, *cmd: str) -> subprocess.CompletedProcess:
        password = engine.run("docker", "exec", "fstest_dashboard_1", "cat", f"/secrets/{user}").stdout.strip()
        return subprocess.run(["redis-cli", "-p", str(redis_port), "--user", f"fs-{user}", "--pass", password,
                               "--no-auth-warning", *cmd], capture_output=True, text=True, timeout=30)

    def health() -> dict[str, str]:
        names = engine.run("docker", "ps", "--format", "{{.Names}}").stdout.split()
        return {n: engine.run("docker", "inspect", "-f", "{{if .State.Health}}{{.State.Health.Status}}{{end}}",
                              n).stdout.strip() for n in names}

    start = time.monotonic()
    try:
        engine.run(*dc, "up", "-d", "--no-build", extra_env=env, timeout=300)
        up_s = time.monotonic() - start
        enrolled = engine.run(*dc, "--profile", "enroll", "run", "--rm", "enroll", extra_env=env, timeout=600)
        assert "people" in enrolled.stdout + enrolled.stderr
        results = "fs:results:{stage}"
        _until(lambda: int(redis_cli("reader", "XLEN", results).stdout.strip() or 0) > 20, 180, "no results flow")
        first_s = time.monotonic() - start
        states = _until(lambda: (lambda h: h if h and all(v in ("", "healthy") for v in h.values()) else None)(health()),
                        180, f"not every service healthy: {health()}")
        assert {n for n, v in states.items() if v == "healthy"} >= {"fstest_redis_1", "fstest_worker_1",
                                                                      "fstest_dashboard_1"}, states
        with urllib.request.urlopen(f"http://127.0.0.1:{dash_port}/login", timeout=10) as page:
            assert page.status == 200 and b"password" in page.read().lower()
        refused = redis_cli("producer", "XRANGE", results, "-", "+", "COUNT", "1")
        assert "NOPERM" in refused.stdout + refused.stderr, refused
        # A worker that crashes (its process killed, not a `docker stop`) comes back and answers again.
        pid = engine.run("docker", "inspect", "-f", "{{.State.Pid}}", "fstest_worker_1").stdout.strip()
        before = int(redis_cli("reader", "XLEN", results).stdout.strip())
        subprocess.run(["kill", "-9", pid], check=True)
        _until(lambda: engine.run("docker", "inspect", "-f", "{{.RestartCount}}", "fstest_worker_1").stdout.strip()
               not in ("", "0"), 60, "the crashed worker was not restarted")
        _until(lambda: int(redis_cli("reader", "XLEN", results).stdout.strip() or 0) > before + 20, 180,
               "no results after the worker's restart")
        print(f"compose: up {up_s:.0f} s, first results {first_s:.0f} s after `up`, worker restarted and answering")
    finally:
        start = time.monotonic()
        engine.run(*dc, "down", "-v", extra_env=env, check=False, timeout=120)
        down_s = time.monotonic() - start
    assert down_s <= 15, f"docker-compose down took {down_s:.0f} s"
    assert not engine.run("docker", "ps", "-q").stdout.strip(), "a container outlived `down`"
