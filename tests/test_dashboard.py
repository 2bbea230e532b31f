"""The dashboard: logins and roles, and end to end in real headless Chromium while frames flow."""

from __future__ import annotations

import os
import shutil
import stat
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import numpy as np
import pytest
import uvicorn
from conftest import REPO, free_port
from starlette.testclient import TestClient

from facestream.consumer.auth import Users
from facestream.consumer.dashboard import check_bind, create_app
from facestream.errors import ConfigError
from facestream.gears.worker import Worker
from facestream.keys import Keys
from facestream.models.curation.enroll import enroll, plan
from facestream.models.store.gallery import FaceEntry, Gallery
from facestream.models.vision.analyzer import FaceAnalyzer
from facestream.producer.capture import Producer

ARTIFACTS = Path(os.environ.get("FACESTREAM_ARTIFACTS", REPO / "test-artifacts"))
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]


ORIGIN = "http://localhost"
USERS = {"admin": ("boss", "admin-password-1"), "viewer": ("guest", "viewer-password-1")}


def web(settings, tmp_path: Path):
    """``settings`` with a data dir of this test's own, holding an admin and a viewer (:data:`USERS`)."""
    s = settings.replace(data_dir=tmp_path)
    for role, (name, password) in USERS.items():
        Users(tmp_path / "dashboard").set(name, password, role)
    return s


def client(app) -> TestClient:
    """A client of ``app`` sending requests as its own pages do (from this origin)."""
    return TestClient(app, base_url=ORIGIN, headers={"Origin": ORIGIN})


def log_in(c: TestClient, role: str) -> None:
    name, password = USERS[role]
    assert c.post("/login", json={"user": name, "password": password}).status_code == 200


def login(page, port: int, role: str = "admin") -> None:
    """Log ``page`` in through the login page, as a person would."""
    name, password = USERS[role]
    page.goto(f"http://127.0.0.1:{port}/")  # not logged in: sent to the login page
    page.wait_for_url(f"http://127.0.0.1:{port}/login")
    page.fill("#user", name)
    page.fill("#password", password)
    page.click("#go")
    page.wait_for_url(f"http://127.0.0.1:{port}/")


def test_no_auth_only_on_loopback():
    check_bind("127.0.0.1", False)
    with pytest.raises(ConfigError, match="only on 127.0.0.1"):
        check_bind("0.0.0.0", False)
    check_bind("0.0.0.0", True)


def test_without_login_nothing_answers_and_a_token_is_a_header(settings, tmp_path):
    s = web(settings, tmp_path)
    app = create_app(s.redis_url, s, token="s3cret")
    with client(app) as c:
        front = c.get("/", follow_redirects=False)
        assert front.status_code == 303 and front.headers["location"] == "/login"
        for path in ("/library", "/api/people", "/api/visitors", "/api/audit", "/api/me", "/stream", "/frame/x.jpg",
                     "/sighting/door-1-0.jpg"):
            assert c.get(path, follow_redirects=False).status_code in (303, 401), path
        assert c.get("/?token=s3cret", follow_redirects=False).status_code == 303  # never in URLs
        assert c.get("/api/people", headers={"Authorization": "Bearer s3cret"}).status_code == 200
        assert c.get("/api/people", headers={"Authorization": "Bearer %C3%A9t%C3%A9"}).status_code == 401
        assert c.post("/login", json={"user": "boss", "password": "wrong"}).status_code == 401
        assert c.get("/login").status_code == 200 and c.get("/api/me").status_code == 401


class _Server(uvicorn.Server):
    def install_signal_handlers(self) -> None:  # running in a thread
        pass


@contextmanager
def serving(settings, token: str | None = None) -> Iterator[int]:
    """The dashboard on a free port in a thread, for the length of the block; yields the port."""
    port = free_port()
    server = _Server(uvicorn.Config(create_app(settings.redis_url, settings, token), host="127.0.0.1", port=port,
                                    log_level="warning"))
    assert (Path(settings.data_dir) / "dashboard" / "users.json").exists(), "serve web(settings): users made first"
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


def test_dashboard_shows_a_named_face_in_chromium(r, settings, faces_dir, tmp_path):
    from playwright.sync_api import sync_playwright

    browser_path = chromium()
    items, _ = plan([faces_dir / "gallery" / "Lin-Manuel_Miranda"])
    enroll(Gallery(r, settings), items, settings)
    s = web(settings, tmp_path).model_copy(update={"block_ms": 200})
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
                login(page, port, "viewer")
            page.wait_for_selector("#pipeline tbody tr", timeout=10_000)
            page.wait_for_selector(".cam .names:has-text('Lin-Manuel Miranda')", timeout=60_000)
            # The "appear" event is committed with that result but reaches the page as its own message.
            page.wait_for_selector("#events:has-text('Lin-Manuel Miranda')", timeout=10_000)
            # The operating point the workers name with: one enrolled person, so the ceiling, from the shipped model.
            page.wait_for_selector("#naming:has-text('threshold 0.1300')", timeout=10_000)
            assert "stranger faces expected within it" in page.inner_text("#naming")
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


def test_hostile_names_and_stream_keys_render_as_text_in_chromium(r, settings, tmp_path):
    """Display names come from whoever enrolls people; stream keys from whoever can XADD: text only."""
    from corpus import jpeg
    from playwright.sync_api import sync_playwright

    from facestream.keys import Keys
    from facestream.records import Face, Frame, FrameResult, IdentityEvent

    browser_path = chromium()
    keys = Keys(settings.key_prefix)
    r.xadd(keys.frames_prefix.encode() + HOSTILE.encode(), {"x": "1"})
    with serving(web(settings, tmp_path)) as port, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=browser_path, args=CHROMIUM_FLAGS)
        # CSP bypassed here: the escaping alone must stop the markup (CSP is the second line of defence),
        # and page.evaluate needs it to look for the injected code's effect.
        context = browser.new_context(bypass_csp=True)
        page = context.new_page()
        login(page, port)
        page.wait_for_selector("#health:has-text('ignored streams 1')", timeout=20_000)
        fid = r.xadd(keys.frames("lobby"), Frame("lobby", 1, 1, 96, 72, jpeg()).to_fields()).decode()
        face = Face((10, 10, 50, 50), person_id="p1", name=HOSTILE, confidence=0.5)
        r.xadd(keys.results("lobby"), FrameResult(fid, "lobby", 1, int(time.time() * 1000), [face]).to_fields())
        r.xadd(keys.events("lobby"), IdentityEvent("appear", "lobby", "p1", HOSTILE, int(time.time() * 1000), fid).to_fields())
        page.wait_for_selector("#events div", timeout=20_000)
        page.wait_for_selector(".cam .names", timeout=20_000)
        page.wait_for_timeout(500)
        assert HOSTILE in page.inner_text(".cam .names") and HOSTILE in page.inner_text("#events")
        assert page.evaluate("window.pwned === undefined")
        assert page.locator("img[src='x']").count() == 0
        # A page opened later is sent what is known so far (each camera's latest result) before live ones.
        late = context.new_page()  # the same browser: the session cookie is there
        late.goto(f"http://127.0.0.1:{port}/")
        late.wait_for_selector(".cam .names", timeout=20_000)
        assert HOSTILE in late.inner_text(".cam .names") and late.evaluate("window.pwned === undefined")
        browser.close()


def test_roles_audit_and_what_a_request_must_carry(r, settings, tmp_path):
    s = web(settings, tmp_path)
    Gallery(r, s).add_person("ann", "Ann", [FaceEntry(np.eye(128, dtype=np.float32)[0], "x")])
    app = create_app(s.redis_url, s, token="s3cret")
    with client(app) as viewer, client(app) as admin:
        log_in(viewer, "viewer")
        log_in(admin, "admin")
        assert viewer.get("/api/people").status_code == 200 and viewer.get("/api/me").json()["role"] == "viewer"
        refused = viewer.post("/api/people/ann/rename", json={"name": "Eve"})
        assert refused.status_code == 403 and "viewer" in refused.json()["error"]
        assert viewer.delete("/api/people/ann").status_code == 403 and viewer.get("/api/audit").status_code == 403
        assert admin.post("/api/people/ann/rename", json={"name": "Ann B"}).json()["name"] == "Ann B"
        change = admin.get("/api/audit").json()[0]
        assert (change["user"], change["action"], change["target"], change["detail"]) == ("boss", "rename", "ann", "Ann B")
        assert change["address"] == "testclient"  # the client's address, as the server saw it
        assert r.xlen(Keys(s.key_prefix).audit) == 1  # a stream redis-cli can read
        # What no page of another origin can send: the wrong Content-Type, another Origin, no Origin at all.
        assert admin.post("/api/people/ann/rename", content=b'{"name":"X"}',
                          headers={"Content-Type": "text/plain"}).status_code == 415
        for origin in ("http://localhost:9999", "http://evil.example", "null"):
            assert admin.post("/api/people/ann/rename", json={"name": "X"}, headers={"Origin": origin}).status_code == 403
        assert admin.post("/api/people/ann/rename", json={"name": "X"}, headers={"Sec-Fetch-Site": "same-site"}).status_code == 403
        no_origin = TestClient(app, base_url=ORIGIN, cookies=admin.cookies)
        assert no_origin.post("/api/people/ann/rename", json={"name": "X"}).status_code == 403
        # A script with the token (no browser, no Origin) may; a foreign Host name is refused before anything.
        assert no_origin.post("/api/people/ann/rename", json={"name": "Ann"}, headers={"Authorization": "Bearer s3cret"}).status_code == 200
        assert admin.get("/api/people", headers={"Host": "rebound.example"}).status_code == 400
        assert admin.delete("/api/people/a*").status_code == 400 and admin.post("/api/people/%2A/rename", json={}).status_code == 400
        assert admin.options("/api/people").status_code in (400, 405) and "access-control-allow-origin" not in admin.options("/api/people").headers
        assert admin.post("/logout").status_code == 200 and admin.get("/api/people").status_code == 401
    assert Gallery(r, s).person("ann").name == "Ann"


def test_first_run_admin_password_is_owner_only_and_not_printed(settings, tmp_path):
    s = settings.replace(data_dir=tmp_path)
    app = create_app(s.redis_url, s)
    users = Users(tmp_path / "dashboard")
    password = users.first_password.read_text().strip()
    for path in (users.path, users.first_password):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    assert password not in users.path.read_text()  # stored hashed
    with client(app) as c:
        assert c.post("/login", json={"user": "admin", "password": password}).json() == {"user": "admin", "role": "admin"}
        cookie = c.post("/login", json={"user": "admin", "password": password}).headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie
        for _ in range(10):
            c.post("/login", json={"user": "admin", "password": "guess-guess"})
        assert c.post("/login", json={"user": "admin", "password": password}).status_code == 429  # slowed down
    users.set("admin", "a-new-password")
    assert not users.first_password.exists() and users.check("admin", password) is None


def test_pages_of_another_origin_change_nothing_and_read_nothing_in_chromium(r, settings, tmp_path):
    """The admin is logged in; a page on another port of the same host (same site, other origin) sends every
    kind of request a page can send without a CORS preflight to every state-changing endpoint."""
    from playwright.sync_api import sync_playwright

    browser_path = chromium()
    s = web(settings, tmp_path)
    Gallery(r, s).add_person("ann", "Ann", [FaceEntry(np.eye(128, dtype=np.float32)[0], "x")])
    before = _everything(r, s.key_prefix)
    with serving(s) as port, _hostile_site(port) as evil, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=browser_path, args=CHROMIUM_FLAGS)
        context = browser.new_context()  # one browser: the admin's session cookie is in it
        page = context.new_page()
        login(page, port)
        attack = context.new_page()
        attack.goto(evil)
        attack.wait_for_function("document.title.startsWith('done')", timeout=30_000)
        assert attack.title() == "done: read nothing", attack.title()
        browser.close()
    assert _everything(r, s.key_prefix) == before, "the gallery changed"


ENDPOINTS = ["/api/people/ann/rename", "/api/people?person_id=ann&name=Mallory", "/api/visitors/merge",
             "/api/visitors/v-000001/name", "/login", "/logout"]


@contextmanager
def _hostile_site(port: int) -> Iterator[str]:
    """A page on another port that tries: fetch no-cors with each simple Content-Type, sendBeacon, a
    form posted into a frame, DELETE; then reads the gallery with fetch (CORS) and a frame."""
    import http.server
    import json as json_module

    target = f"http://127.0.0.1:{port}"
    html = """<!doctype html><title>working</title><iframe name="f"></iframe><script>
const T = %s, paths = %s;
async function go() {
  for (const p of paths) {
    for (const type of ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data"]) {
      await fetch(T + p, {method: "POST", mode: "no-cors", credentials: "include", headers: {"Content-Type": type},
                          body: '{"name":"Mallory","into":"ann","other":"v-000001","as":"ann"}'}).catch(() => 0);
    }
    const fd = new FormData(); fd.append("name", "Mallory");
    await fetch(T + p, {method: "POST", mode: "no-cors", credentials: "include", body: fd}).catch(() => 0);
    navigator.sendBeacon(T + p, new Blob(['{"name":"Mallory"}'], {type: "text/plain"}));
    const form = document.createElement("form"); form.method = "POST"; form.action = T + p; form.target = "f";
    form.enctype = "text/plain"; const i = document.createElement("input"); i.name = '{"name":"Mallory","x":"'; i.value = '"}';
    form.appendChild(i); document.body.appendChild(form); form.submit();
    await new Promise(r => setTimeout(r, 150));
  }
  await fetch(T + "/api/people/ann", {method: "DELETE", mode: "no-cors", credentials: "include"}).catch(() => 0);
  let read = [];
  for (const p of ["/api/people", "/api/audit", "/api/me", "/library"]) {
    try { const r = await fetch(T + p, {credentials: "include"}); read.push(p + ":" + (await r.text()).slice(0, 40)); } catch (e) {}
  }
  document.title = "done: " + (read.length ? "read " + read.join(" | ") : "read nothing");
}
setTimeout(go, 100);
</script>""" % (json_module.dumps(target), json_module.dumps(ENDPOINTS))

    class Page(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
            body = html.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), Page)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()


def _everything(r, prefix: str) -> dict[bytes, object]:
    """Every key under ``prefix`` with its whole content (hashes, streams, strings, sets)."""
    out: dict[bytes, object] = {}
    for key in r.scan_iter(match=f"{prefix}:*", count=1000):
        kind = r.type(key)
        out[key] = {b"hash": lambda: r.hgetall(key), b"stream": lambda: r.xrange(key), b"string": lambda: r.get(key),
                    b"set": lambda: r.smembers(key), b"zset": lambda: r.zrange(key, 0, -1, withscores=True),
                    b"list": lambda: r.lrange(key, 0, -1)}.get(kind, lambda: kind)()
    return out


def test_https_dashboard_gives_a_secure_cookie(settings, tmp_path):
    """`facestream dashboard --certfile --keyfile` serves HTTPS, and its session cookie is then Secure."""
    import json
    import ssl
    import subprocess
    import sys
    import urllib.request

    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl not installed (to make a test certificate)")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run([openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    s = web(settings, tmp_path)
    port = free_port()
    env = {**os.environ, "FACESTREAM_REDIS_URL": s.redis_url, "FACESTREAM_KEY_PREFIX": s.key_prefix,
           "FACESTREAM_DATA_DIR": str(tmp_path)}
    proc = subprocess.Popen([sys.executable, "-m", "facestream", "dashboard", "--port", str(port), "--certfile", str(cert),
                             "--keyfile", str(key)], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    insecure = ssl.create_default_context()
    insecure.check_hostname, insecure.verify_mode = False, ssl.CERT_NONE  # our own throw-away certificate
    base = f"https://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"{base}/login", context=insecure, timeout=2)
                break
            except OSError:
                assert time.monotonic() < deadline and proc.poll() is None, proc.stdout.read() if proc.poll() is not None else "no answer"
                time.sleep(0.2)
        name, password = USERS["admin"]
        req = urllib.request.Request(f"{base}/login", json.dumps({"user": name, "password": password}).encode(),
                                     {"Content-Type": "application/json", "Origin": base}, method="POST")
        cookie = urllib.request.urlopen(req, context=insecure, timeout=5).headers["set-cookie"].lower()
        assert "secure" in cookie and "httponly" in cookie and "samesite=strict" in cookie
    finally:
        proc.terminate()
        proc.wait(20)


def test_a_full_redis_is_a_503_that_says_why(r, settings, tmp_path):
    """A change the dashboard cannot write while Redis memory is full: 503 and the reason, no 500, no traceback;
    it goes through once memory is freed."""
    s = web(settings, tmp_path)
    Gallery(r, s).add_person("ann", "Ann", [FaceEntry(np.eye(128, dtype=np.float32)[0], "x")])
    app = create_app(s.redis_url, s, token="s3cret")
    scripted = {"Authorization": "Bearer s3cret"}
    with TestClient(app, base_url=ORIGIN) as c:
        r.config_set("maxmemory", 1)
        try:
            full = c.post("/api/people/ann/rename", json={"name": "Ann B"}, headers=scripted)
            assert full.status_code == 503 and "memory is full" in full.json()["error"], full.text
            assert c.get("/api/people", headers=scripted).status_code == 200  # reads are still answered
        finally:
            r.config_set("maxmemory", 0)
        assert c.post("/api/people/ann/rename", json={"name": "Ann B"}, headers=scripted).status_code == 200
    assert Gallery(r, s).person("ann").name == "Ann B"
