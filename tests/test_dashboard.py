"""The dashboard: token rules, and end to end in real headless Chromium while frames flow."""

from __future__ import annotations

import os
import shutil
import threading
import time
from pathlib import Path

import pytest
import uvicorn
from starlette.testclient import TestClient

from conftest import REPO, free_port
from consumer.dashboard import check_bind, create_app
from facestream.errors import ConfigError
from gears.worker import Worker
from models.analyzer import FaceAnalyzer
from models.enroll import enroll, plan
from models.gallery import Gallery
from producer.capture import Producer

ARTIFACTS = Path(os.environ.get("FACESTREAM_ARTIFACTS", REPO / "test-artifacts"))
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def test_binding_beyond_loopback_needs_a_token():
    check_bind("127.0.0.1", None)
    with pytest.raises(ConfigError, match="token"):
        check_bind("0.0.0.0", None)
    check_bind("0.0.0.0", "s3cret")


def test_token_is_enforced(settings):
    app = create_app(settings.redis_url, settings, token="s3cret")
    with TestClient(app) as client:
        assert client.get("/").status_code == 401
        assert client.get("/?token=nope").status_code == 401
        page = client.get("/?token=s3cret")
        assert page.status_code == 200 and "EventSource" in page.text
        assert client.get("/frame/nocam.jpg?token=s3cret").status_code == 404


class _Server(uvicorn.Server):
    def install_signal_handlers(self) -> None:  # running in a thread
        pass


def test_dashboard_shows_a_named_face_in_chromium(r, settings, faces_dir):
    playwright = pytest.importorskip("playwright.sync_api")
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("Debian chromium not installed (scripts/setup.sh --test installs it as root)")
    items, _ = plan([faces_dir / "gallery" / "Lin-Manuel_Miranda"])
    enroll(Gallery(r, settings), items, settings)
    s = settings.model_copy(update={"block_ms": 200})
    worker = Worker(r, s, FaceAnalyzer(s), name="dash-w")
    producer = Producer(r, s, "stage", str(faces_dir / "videos" / "hamilton_white_house_2009.mp4"), fps=5, loop=True)
    port = free_port()
    server = _Server(uvicorn.Config(create_app(s.redis_url, s), host="127.0.0.1", port=port, log_level="warning"))
    threads = [threading.Thread(target=worker.run, daemon=True), threading.Thread(target=producer.run, daemon=True),
               threading.Thread(target=server.run, daemon=True)]
    for t in threads:
        t.start()
    try:
        while not server.started:
            time.sleep(0.05)
        with playwright.sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=chromium, args=CHROMIUM_FLAGS)
            page = browser.new_page(viewport={"width": 1100, "height": 700})
            page.goto(f"http://127.0.0.1:{port}/")
            page.wait_for_function("document.querySelector('.cam img') && document.querySelector('.cam img').naturalWidth > 0",
                                   timeout=60_000)
            page.wait_for_selector("#pipeline tbody tr", timeout=10_000)
            page.wait_for_selector(".cam .names:has-text('Lin-Manuel Miranda')", timeout=60_000)
            # The "appear" event is committed with that result but reaches the page as its own message.
            page.wait_for_selector("#events:has-text('Lin-Manuel Miranda')", timeout=10_000)
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(ARTIFACTS / "dashboard.png"))
            assert "stage" in page.inner_text("#cams")
            browser.close()
    finally:
        producer.stop()
        worker.stop()
        server.should_exit = True
        for t in threads:
            t.join(20)
