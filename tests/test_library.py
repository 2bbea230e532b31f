"""The dashboard's People, Visitors and Search pages: their endpoints, and the pages in headless Chromium."""

from __future__ import annotations

import time

import numpy as np
from test_dashboard import CHROMIUM_FLAGS, HOSTILE, chromium, client, log_in, login, serving, web

from facestream.consumer.dashboard import create_app
from facestream.keys import Keys
from facestream.models.curation.library import photo_vector
from facestream.models.store.gallery import FaceEntry, Gallery
from facestream.models.store.sightings import SightingIndexes
from facestream.models.store.visitors import Visitors
from facestream.models.vision.image import load as load_image
from facestream.models.vision.image import thumbnail
from facestream.records import Sighting

LIN = "Lin-Manuel_Miranda"


def _seen(r, settings, faces_dir, who: str, photo: str, camera: str) -> str:
    """One stranger seen once: a visitor and a sighting (real vector and thumbnail of a shared photo)."""
    path = faces_dir / "gallery" / who / photo
    vec = photo_vector(path, settings)
    rgb = load_image(path)
    vid = Visitors(r.execute_command, Keys(settings.key_prefix), settings.visitor_distance, 600_000).assign(
        vec, camera, int(time.time() * 1000))
    keys = Keys(settings.key_prefix)
    SightingIndexes(r.execute_command, keys).write(Sighting(f"{camera}-1-0", camera, int(time.time() * 1000), visitor=vid,
                                            quality={"size": 120, "sharpness": 80.0, "yaw": 0.0},
                                            vector=vec.astype("<f4").tobytes(),
                                            thumb=thumbnail(rgb, (60, 60, 190, 190), 96)), 600_000)
    return vid


def test_endpoints_list_search_name_and_refuse_bad_input(r, settings, faces_dir, tmp_path):
    vid = _seen(r, settings, faces_dir, LIN, "1.jpg", "door")
    photo = (faces_dir / "gallery" / LIN / "1.jpg").read_bytes()
    jpeg = {"Content-Type": "image/jpeg"}
    s = web(settings, tmp_path)
    with client(create_app(s.redis_url, s)) as c:
        assert c.get("/api/visitors").status_code == 401, "behind the login like every page"
        log_in(c, "admin")
        visitors = c.get("/api/visitors").json()
        assert [v["visitor"] for v in visitors] == [vid] and visitors[0]["sightings"] == ["door-1-0"]
        assert c.get("/sighting/door-1-0.jpg").content[:2] == b"\xff\xd8"
        assert c.get("/sighting/nope.jpg").status_code == 404
        hits = c.post("/api/search?since=24h", content=photo, headers=jpeg).json()
        assert hits and hits[0]["who"] == vid and hits[0]["sighting_id"] == "door-1-0"
        assert c.post("/api/search?since=yesterday", content=photo, headers=jpeg).json()["error"].startswith("--since")
        assert "request body" in c.post("/api/search", content=b"", headers=jpeg).json()["error"]
        assert c.post("/api/search", content=b"not a photo", headers=jpeg).status_code == 400
        assert c.post("/api/search", content=photo, headers={"Content-Type": "text/plain"}).status_code == 415
        big = c.post("/api/search", content=b"\xff" * (s.max_frame_bytes + 1), headers=jpeg)
        assert big.status_code == 400 and "over max_frame_bytes" in big.json()["error"]
        bad = c.post(f"/api/visitors/{vid}/name", json={}).json()["error"]
        assert '{"name"' in bad
        done = c.post(f"/api/visitors/{vid}/name", json={"name": "Lin-Manuel Miranda"}).json()
        assert done == {"person_id": LIN, "enrolled": 1, "relabelled": 1}
        people = c.get("/api/people").json()
        assert people == [{"person_id": LIN, "name": "Lin-Manuel Miranda", "faces": 1, "photo": "door-1-0", "enrolled": [1]}]
        assert [(x["user"], x["action"], x["target"]) for x in c.get("/api/audit").json()] == [("boss", "name", LIN)]
        assert c.delete(f"/api/people/{LIN}").json() == {"faces": 1, "sightings": 1, "entries": 1}  # its naming
        assert not r.exists(Keys(settings.key_prefix).sighting("door-1-0"))
        (change,) = c.get("/api/audit").json()  # the naming is erased with the person; the erasure is kept
        assert change["action"] == "forget" and change["target"].startswith("erased:") and LIN not in str(change)


def test_the_pages_work_in_chromium_and_render_names_as_text(r, settings, faces_dir, tmp_path):
    from playwright.sync_api import sync_playwright

    browser_path = chromium()
    vid = _seen(r, settings, faces_dir, LIN, "1.jpg", "door")
    Gallery(r, settings).add_person("p1", HOSTILE, [FaceEntry(np.eye(128, dtype=np.float32)[0], "x")])
    upload = tmp_path / "lin.jpg"
    upload.write_bytes((faces_dir / "gallery" / LIN / "1.jpg").read_bytes())
    with serving(web(settings, tmp_path / "data")) as port, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=browser_path, args=CHROMIUM_FLAGS)
        page = browser.new_page(bypass_csp=True)  # to look for injected code's effect with page.evaluate
        login(page, port)
        page.goto(f"http://127.0.0.1:{port}/library")
        page.wait_for_selector(f"#visitors-list:has-text('{vid}')", timeout=20_000)
        page.wait_for_selector("#people-list .card", timeout=20_000)
        assert HOSTILE in page.inner_text("#people-list") and page.evaluate("window.pwned === undefined")
        page.set_input_files("#search-photo", str(upload))
        page.click("#search-go")
        page.wait_for_selector("#search-hits tr.hit", timeout=60_000)
        assert vid in page.inner_text("#search-hits") and "door" in page.inner_text("#search-hits")
        page.fill("#visitors-list .visitor input", "Lin-Manuel Miranda")
        page.click("#visitors-list .visitor button:has-text('name as new')")
        page.wait_for_selector("#people-list:has-text('Lin-Manuel Miranda')", timeout=30_000)
        page.screenshot(path=str(tmp_path / "library.png"))
        browser.close()
    assert Gallery(r, settings).person(LIN).faces == 1


def test_after_forget_no_key_field_or_entry_names_the_person(r, settings):
    from test_dashboard import _everything

    from facestream.models.curation import audit
    from facestream.models.curation.library import forget
    from facestream.models.store.cohort import Cohort
    from facestream.records import Face, FrameResult, IdentityEvent

    keys, who, name = Keys(settings.key_prefix), "ann-42", "Annabel Zed"
    vec = np.eye(128, dtype=np.float32)
    Gallery(r, settings).add_person(who, name, [FaceEntry(vec[0], "ann.jpg")])
    Gallery(r, settings).add_person("bob", "Bob", [FaceEntry(vec[1], "bob.jpg")])
    Cohort(r, settings).add([FaceEntry(vec[2], "feedback")], not_of=who)
    now = int(time.time() * 1000)
    r.xadd(keys.results("door"), FrameResult("1-0", "door", 1, now, [Face((0, 0, 9, 9), person_id=who, name=name),
                                                             Face((9, 9, 19, 19), person_id="bob", name="Bob")]).to_fields())
    r.xadd(keys.results("door"), FrameResult("2-0", "door", 2, now, [Face((0, 0, 9, 9), person_id="bob", name="Bob")]).to_fields())
    r.xadd(keys.events("door"), IdentityEvent("appear", "door", who, name, now, "1-0").to_fields())
    r.xadd(keys.events("door"), IdentityEvent("appear", "door", "bob", "Bob", now, "1-0").to_fields())
    r.hset(keys.presence("door"), mapping={who: f"{now}|{name}", "bob": f"{now}|Bob"})
    SightingIndexes(r.execute_command, keys).write(Sighting("door-1-0", "door", now, person_id=who, vector=vec[0].astype("<f4").tobytes()),
          600_000)
    audit.record(r, keys, "boss", "127.0.0.1", "rename", who, name)
    audit.record(r, keys, "boss", "127.0.0.1", "rename", "bob", "Bob")
    out = forget(r, settings, who)
    assert (out.faces, out.sightings, out.presence, out.entries) == (1, 1, 1, 3)  # 1 result, 1 event, 1 audit entry
    dump = repr(_everything(r, settings.key_prefix)).encode()
    assert who.encode() not in dump and name.encode() not in dump
    assert b"Bob" in dump and r.xlen(keys.results("door")) == 1 and r.xlen(keys.events("door")) == 1  # the others' stay
