"""The card's main source, a real RTSP camera: GStreamer's RTSP server (tests/rtsp_server.py) serving the shared
clip on loopback, behind a user and password. `produce` reads it, never prints the credentials, and reconnects
after the server restarts."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from conftest import free_port

from facestream.keys import Keys
from facestream.models.vision.image import decode_frame
from facestream.producer.capture import Producer
from facestream.records import Frame

SERVER = Path(__file__).with_name("rtsp_server.py")
SYSTEM_PYTHON = "/usr/bin/python3"  # Debian's PyGObject and GStreamer RTSP server live there
USER, PASSWORD = "admin", "s3cret-Pa55"


def _has_rtsp_server() -> bool:
    probe = "import gi; gi.require_version('GstRtspServer', '1.0'); from gi.repository import GstRtspServer"
    return os.path.exists(SYSTEM_PYTHON) and subprocess.run([SYSTEM_PYTHON, "-c", probe], capture_output=True).returncode == 0


class Camera:
    """The RTSP server process, which a test can stop and start again on the same port."""

    def __init__(self, clip: Path):
        self.clip, self.port, self.proc = clip, free_port(), None

    @property
    def url(self) -> str:
        return f"rtsp://{USER}:{PASSWORD}@127.0.0.1:{self.port}/cam"

    def start(self) -> None:
        self.proc = subprocess.Popen([SYSTEM_PYTHON, str(SERVER), str(self.port), str(self.clip), USER, PASSWORD],
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        assert self.proc.stdout.readline().strip() == "ready", "the RTSP server did not start"

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait(10)


@pytest.fixture
def camera(faces_dir):
    if not _has_rtsp_server():
        pytest.skip("GStreamer's RTSP server is not installed (scripts/setup.sh --test installs it as root: "
                    "gir1.2-gst-rtsp-server-1.0, gstreamer1.0-plugins-good/-bad)")
    cam = Camera(faces_dir / "videos" / "hamilton_white_house_2009.mp4")
    cam.start()
    yield cam
    cam.stop()


def test_produce_reads_a_camera_with_credentials_and_never_prints_them(camera, r, settings):
    env = {**os.environ, "FACESTREAM_REDIS_URL": settings.redis_url, "FACESTREAM_KEY_PREFIX": settings.key_prefix}
    out = subprocess.run([sys.executable, "-m", "facestream", "produce", camera.url, "--camera", "door",
                          "--max-frames", "20"], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and "camera door: sent 20 frames" in out.stderr, out.stderr
    assert PASSWORD not in out.stdout + out.stderr
    entries = r.xrange(Keys(settings.key_prefix).frames("door"))
    assert len(entries) == 20
    assert decode_frame(Frame.from_fields(entries[-1][1], settings.max_frame_bytes).jpeg, 10**7).shape == (360, 640, 3)


def test_produce_reconnects_after_the_camera_restarts(camera, r, settings, caplog):
    producer = Producer(r, settings, "door", camera.url)
    thread = threading.Thread(target=producer.run, daemon=True)
    thread.start()
    try:
        _wait(lambda: producer.stats.sent >= 10, 30, "frames from the camera")
        camera.stop()
        time.sleep(2)
        camera.start()
        before = producer.stats.sent
        _wait(lambda: producer.stats.sent >= before + 10, 60, "frames again after the camera came back")
    finally:
        producer.stop()
        thread.join(20)
    assert producer.stats.reconnects >= 1 and not thread.is_alive()
    assert PASSWORD not in caplog.text


def _wait(done, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not done():
        assert time.monotonic() < deadline, f"no {what} within {timeout_s:.0f} s"
        time.sleep(0.1)
