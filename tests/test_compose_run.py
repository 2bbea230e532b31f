"""`docker compose up`, for real: the images built (from a locally made base, offline from a wheelhouse) and
docker-compose.yml and docker-compose.gears.yml run on a Docker engine of the test's own, every service in
host networking on loopback.

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


def on_host(spec: dict, redis_port: int, dashboard_port: int, clips: Path, **environment: str) -> dict:
    """``spec`` (a compose file, loaded) for host networking on loopback (see the module doc)."""
    for svc in spec["services"].values():
        svc["network_mode"] = "host"
        svc.pop("ports", None)
        if "environment" in svc:
            svc["environment"] = {**svc["environment"], "FACESTREAM_REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
                                  **environment}
        health = svc.get("healthcheck", {}).get("test")
        if health:
            svc["healthcheck"]["test"] = [x.replace("redis-cli ", f"redis-cli -p {redis_port} ")
                                          .replace("8080", str(dashboard_port)) for x in health]
    spec["services"]["dashboard"]["command"] = ["dashboard", "--host", "127.0.0.1", "--port", str(dashboard_port)]
    spec["services"]["producer"]["volumes"] = [*spec["services"]["producer"]["volumes"], f"{clips}:/clips:ro"]
    return spec


def default_on_host(redis_port: int, dashboard_port: int, metrics_port: int, clips: Path) -> dict:
    """docker-compose.yml on loopback: Redis and the worker's metrics on the given ports too."""
    spec = on_host(yaml.safe_load((REPO / "docker-compose.yml").read_text()), redis_port, dashboard_port, clips)
    redis = spec["services"]["redis"]
    redis["command"] = [*redis["command"], "--port", str(redis_port), "--bind", "127.0.0.1"]
    spec["services"]["worker"]["command"] = ["work", "--metrics-port", str(metrics_port)]
    return spec


def gears_on_host(redis_port: int, dashboard_port: int, clips: Path) -> dict:
    """docker-compose.gears.yml on loopback: the server's password is generated under its port's folder."""
    spec = on_host(yaml.safe_load((REPO / "docker-compose.gears.yml").read_text()), redis_port, dashboard_port, clips,
                   FACESTREAM_REDIS_PASSWORD_FILE=f"/gears/redis-{redis_port}/password")
    spec["services"]["redis-gears"]["command"] = ["redis", "--gears", "--port", str(redis_port), "--bind", "127.0.0.1",
                                                  "--foreground"]
    return spec


def file_camera(tmp_path: Path) -> Path:
    """cameras.yaml: the Hamilton clip, looped, as camera ``stage``."""
    cameras = tmp_path / "cameras.yaml"
    cameras.write_text(yaml.safe_dump({"cameras": [{"camera": "stage", "source": f"/clips/{CLIP}", "loop": True}]}))
    return cameras


def health(engine: Engine) -> dict[str, str]:
    """Each running container's health ("" when it has no healthcheck)."""
    names = engine.run("docker", "ps", "--format", "{{.Names}}").stdout.split()
    return {n: engine.run("docker", "inspect", "-f", "{{if .State.Health}}{{.State.Health.Status}}{{end}}",
                          n).stdout.strip() for n in names}


def all_healthy(engine: Engine) -> dict[str, str] | None:
    states = health(engine)
    return states if states and all(v in ("", "healthy") for v in states.values()) else None


def down(engine: Engine, dc: list[str], env: dict[str, str]) -> float:
    """``docker-compose down -v`` (run even when the test failed); the seconds it took."""
    start = time.monotonic()
    engine.run(*dc, "down", "-v", extra_env=env, check=False, timeout=120)
    return time.monotonic() - start


def stopped_in_time(engine: Engine, down_s: float) -> None:
    assert down_s <= 15, f"docker-compose down took {down_s:.0f} s"
    assert not engine.run("docker", "ps", "-q").stdout.strip(), "a container outlived `down`"


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
    compose.write_text(yaml.safe_dump(default_on_host(redis_port, dash_port, metrics_port, faces_dir / "videos")))
    env = {"FACESTREAM_CAMERAS": str(file_camera(tmp_path)), "FACESTREAM_GALLERY": str(faces_dir / "gallery")}
    dc = ["docker-compose", "-f", str(compose), "--project-directory", str(REPO)]

    def redis_cli(user: str, *cmd: str) -> subprocess.CompletedProcess:
        password = engine.run("docker", "exec", "-u", "0", "fstest_dashboard_1", "cat", f"/secrets/{user}").stdout.strip()
        return subprocess.run(["redis-cli", "-p", str(redis_port), "--user", f"fs-{user}", "--pass", password,
                               "--no-auth-warning", *cmd], capture_output=True, text=True, timeout=30)

    start = time.monotonic()
    try:
        engine.run(*dc, "up", "-d", "--no-build", extra_env=env, timeout=300)
        up_s = time.monotonic() - start
        enrolled = engine.run(*dc, "--profile", "enroll", "run", "--rm", "enroll", extra_env=env, timeout=600)
        assert "people" in enrolled.stdout + enrolled.stderr
        results = "fs:results:{stage}"
        _until(lambda: int(redis_cli("reader", "XLEN", results).stdout.strip() or 0) > 20, 180, "no results flow")
        first_s = time.monotonic() - start
        states = _until(lambda: all_healthy(engine), 180, f"not every service healthy: {health(engine)}")
        assert {n for n, v in states.items() if v == "healthy"} >= {"fstest_redis_1", "fstest_worker_1",
                                                                      "fstest_dashboard_1"}, states
        with urllib.request.urlopen(f"http://127.0.0.1:{dash_port}/login", timeout=10) as page:
            assert page.status == 200 and b"password" in page.read().lower()
        for service, own in (("dashboard", "reader"), ("producer", "producer"), ("worker", "worker")):
            readable = {role for role in ("admin", "worker", "producer", "reader") if engine.run(
                "docker", "exec", f"fstest_{service}_1", "cat", f"/secrets/{role}", check=False).returncode == 0}
            assert readable == {own}, f"the {service} can read the password files of {sorted(readable)}"
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
        down_s = down(engine, dc, env)
    stopped_in_time(engine, down_s)


@pytest.fixture(scope="module")
def gears_image(engine):
    """facestream-gears:local, RedisGears built inside it from source (after the default stack's test)."""
    start = time.monotonic()
    engine.gears_image()
    print(f"built: gears image {time.monotonic() - start:.0f} s")


def test_docker_compose_gears_answers_frames_inside_redis(engine, gears_image, faces_dir, tmp_path):
    """docker-compose.gears.yml: the server (Redis 8.2, RediSearch, RedisGears built in the image) turns
    healthy, `gears-load` registers the gear and exits 0, the producer's frames are answered inside Redis (no
    worker runs), the login page answers, and `down` stops everything within 15 s."""
    redis_port, dash_port = free_port(), free_port()
    compose = tmp_path / "compose.yml"
    compose.write_text(yaml.safe_dump(gears_on_host(redis_port, dash_port, faces_dir / "videos")))
    env = {"FACESTREAM_CAMERAS": str(file_camera(tmp_path))}
    dc = ["docker-compose", "-f", str(compose), "--project-directory", str(REPO)]

    def redis_cli(*cmd: str) -> subprocess.CompletedProcess:
        password = engine.run("docker", "exec", "fstest_redis-gears_1", "cat",
                              f"/data/redis-{redis_port}/password").stdout.strip()
        return subprocess.run(["redis-cli", "-p", str(redis_port), "--pass", password, "--no-auth-warning", *cmd],
                              capture_output=True, text=True, timeout=30)

    start = time.monotonic()
    try:
        engine.run(*dc, "up", "-d", "--no-build", extra_env=env, timeout=300)
        up_s = time.monotonic() - start
        results = "fs:results:{stage}"
        _until(lambda: int(redis_cli("XLEN", results).stdout.strip() or 0) > 20, 300,
               f"the gear answered no frames: {engine.run(*dc, 'logs', '--tail', '20', extra_env=env).stdout[-3000:]}")
        first_s = time.monotonic() - start
        loaded = engine.run("docker", "inspect", "-f", "{{.State.Status}} {{.State.ExitCode}}", "fstest_gears-load_1")
        assert loaded.stdout.split() == ["exited", "0"], loaded.stdout
        assert "StreamReader" in redis_cli("RG.DUMPREGISTRATIONS").stdout
        assert not any("worker" in name for name in health(engine)), "a worker runs beside the gear"
        states = _until(lambda: all_healthy(engine), 120, f"not every service healthy: {health(engine)}")
        assert states.get("fstest_redis-gears_1") == "healthy", states
        with urllib.request.urlopen(f"http://127.0.0.1:{dash_port}/login", timeout=10) as page:
            assert page.status == 200
        print(f"compose (gears): up {up_s:.0f} s, first results {first_s:.0f} s after `up`")
    finally:
        down_s = down(engine, dc, env)
    stopped_in_time(engine, down_s)
