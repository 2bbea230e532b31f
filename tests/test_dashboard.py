"""The dashboard: token rules, and end to end in real headless Chromium while frames flow."""

from __future__ import annotations

import os
import shutil
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pytest
import uvicorn
from conftest import REPO, free_port
from starlette.testclient import TestClient

from facestream.consumer.dashboard import check_bind, create_app
from facestream.errors import ConfigError
from facestream.gears.worker import Worker
from facestream.models.curation.enroll import enroll, plan
from facestream.models.store.gallery import Gallery
from facestream.models.vision.analyzer import FaceAnalyzer
from facestream.producer.capture import Producer

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
        assert client.get("/stream").status_code == 401 and client.get("/frame/x.jpg").status_code == 401
        assert client.get("/stream", headers={"Authorization": "Bearer nope"}).status_code == 401


class _Server(uvicorn.Server):
    def install_signal_handlers(self) -> None:  # running in a thread
        pass


@contextmanager
def serving(settings, token: str | None = None) -> Iterator[int]:
    """The dashboard on a free port in a thread, for the length of the block; yields the port."""
    port = free_port()
    server = _Server(uvicorn.Config(create_app(settings.redis_url, settings, token), host="127.0.0.1", port=port,
                                    log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while not server.started:
            assert time.monotonic() < deadline, "the dashboard did not start within 20 s"
            time.sleep(0.05)
        yield port
    finally:
        server.should_exit = True
        thread.join(20)


def chromium() -> str:
    """Debian's Chromium for Playwright, or a skip saying how to get it."""
    pytest.importorskip("playwright.sync_api")
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        pytest.skip("Debian chromium not installed (scripts/setup.sh --test installs it as root)")
    return path


def test_dashboard_shows_a_named_face_in_chromium(r, settings, faces_dir):
    from playwright.sync_api import sync_playwright

    browser_path = chromium()
    items, _ = plan([faces_dir / "gallery" / "Lin-Manuel_Miranda"])
    enroll(Gallery(r, settings), items, settings)
    s = settings.model_copy(update={"block_ms": 200})
    worker = Worker(r, s, FaceAnalyzer(s), name="dash-w")
    producer = Producer(r, s, "stage", str(faces_dir / "videos" / "hamilton_white_house_2009.mp4"), fps=5, loop=True)
    threads = [threading.Thread(target=worker.run, daemon=True), threading.Thread(target=producer.run, daemon=True)]
    for t in threads:
        t.start()
    try:
        with serving(s) as port, sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=browser_path, args=CHROMIUM_FLAGS)
            page = browser.new_page(viewport={"width": 1100, "height": 700})
            # The page runs under its Content-Security-Policy: no page.evaluate (it would need 'unsafe-eval').
            with page.expect_response(lambda resp: "/frame/" in resp.url and resp.status == 200, timeout=60_000):
                page.goto(f"http://127.0.0.1:{port}/")
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
        for t in threads:
            t.join(20)


HOSTILE = '<img src=x onerror="window.pwned=1">'


def test_hostile_names_and_stream_keys_render_as_text_in_chromium(r, settings):
    """Display names come from whoever enrolls people; stream keys from whoever can XADD: text only."""
    from corpus import jpeg
    from playwright.sync_api import sync_playwright

    from facestream.keys import Keys
    from facestream.records import Face, Frame, FrameResult, IdentityEvent

    browser_path = chromium()
    keys = Keys(settings.key_prefix)
    r.xadd(keys.frames_prefix.encode() + HOSTILE.encode(), {"x": "1"})
    with serving(settings, token="t0ken") as port, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=browser_path, args=CHROMIUM_FLAGS)
        # CSP bypassed here: the escaping alone must stop the markup (CSP is the second line of defence),
        # and page.evaluate needs it to look for the injected code's effect.
        page = browser.new_page(bypass_csp=True)
        page.goto(f"http://127.0.0.1:{port}/?token=t0ken")  # the page passes it on to /stream and /frame
        page.wait_for_selector("#health:has-text('ignored streams 1')", timeout=20_000)
        fid = r.xadd(keys.frames("lobby"), Frame("lobby", 1, 1, 96, 72, jpeg()).to_fields()).decode()
        face = Face((10, 10, 50, 50), person_id="p1", name=HOSTILE, confidence=0.5)
        r.xadd(keys.results, FrameResult(fid, "lobby", 1, int(time.time() * 1000), [face]).to_fields())
        r.xadd(keys.events, IdentityEvent("appear", "lobby", "p1", HOSTILE, int(time.time() * 1000), fid).to_fields())
        page.wait_for_selector("#events div", timeout=20_000)
        page.wait_for_selector(".cam .names", timeout=20_000)
        page.wait_for_timeout(500)
        assert HOSTILE in page.inner_text(".cam .names") and HOSTILE in page.inner_text("#events")
        assert page.evaluate("window.pwned === undefined")
        assert page.locator("img[src='x']").count() == 0
        # A page opened later is sent what is known so far (each camera's latest result) before live ones.
        late = browser.new_page(bypass_csp=True)
        late.goto(f"http://127.0.0.1:{port}/?token=t0ken")
        late.wait_for_selector(".cam .names", timeout=20_000)
        assert HOSTILE in late.inner_text(".cam .names") and late.evaluate("window.pwned === undefined")
        browser.close()
