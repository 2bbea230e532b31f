"""The face library: enrolled faces shown and deletable one by one, suggestions for strangers ("this is X",
"not X"), the recent unknown faces with their reasons; through the endpoints and in headless Chromium."""

from __future__ import annotations

import time

import pytest
from test_cli import run  # noqa: F401 - the command-line fixture
from test_dashboard import CHROMIUM_FLAGS, chromium, client, log_in, login, serving, web

from facestream.consumer.dashboard import create_app
from facestream.gears.step import FrameEntry, Step
from facestream.keys import Keys
from facestream.models.curation.library import enroll
from facestream.models.store.cohort import Cohort
from facestream.models.store.gallery import FaceEntry, Gallery
from facestream.models.vision.analyzer import FaceAnalyzer
from facestream.models.vision.image import decode, encode_jpeg
from facestream.records import UNKNOWN, Frame, FrameResult

BIDEN, MONDALE = "Joseph_Biden", "Walter_Mondale"


@pytest.fixture(scope="module")
def analyzer() -> FaceAnalyzer:
    from facestream.config import load_settings

    return FaceAnalyzer(load_settings())


def _answer(r, step: Step, camera: str, photo, seq: int) -> FrameResult:
    """One photo as a frame of ``camera``, answered by the worker's step; its result."""
    keys = Keys(step.s.key_prefix)
    frame = Frame(camera, seq, int(time.time() * 1000), 0, 0, encode_jpeg(decode(photo.read_bytes())))
    fid = r.xadd(keys.frames(camera), frame.to_fields()).decode()
    assert step.handle(FrameEntry(keys.frames(camera), fid, r.xrange(keys.frames(camera), fid, fid)[0][1])).kind == "result"
    return FrameResult.from_fields(r.xrevrange(keys.results(camera), count=1)[0][1])


def _photo(faces_dir, kind: str, who: str, n: int = 0):
    return sorted((faces_dir / kind / who).iterdir())[n]


def _visitor(r, step, faces_dir, who: str, camera: str, seq: int) -> str:
    (face,) = _answer(r, step, camera, _photo(faces_dir, "probes", who), seq).faces
    assert face.person_id == UNKNOWN and face.visitor, face
    return face.visitor


def test_enrolled_faces_suggestions_recent_faces_and_roles_through_the_endpoints(r, settings, analyzer, faces_dir, tmp_path):
    keys, step = Keys(settings.key_prefix), Step(settings, analyzer, r.execute_command, "w")
    vid = _visitor(r, step, faces_dir, BIDEN, "door", 1)  # nobody enrolled: a stranger
    enroll(r, settings, [_photo(faces_dir, "gallery", BIDEN)], BIDEN, "Joseph Biden")
    s = web(settings, tmp_path)
    with client(create_app(s.redis_url, s)) as c:
        log_in(c, "viewer")
        (person,) = c.get("/api/people").json()
        assert person["enrolled"] == [1] and person["photo"] is None, "the enrolled face shows with no sighting"
        assert c.get(f"/face/{BIDEN}/1.jpg").content[:2] == b"\xff\xd8"
        assert c.get(f"/face/{BIDEN}/9.jpg").status_code == 404 and c.get("/face/no%20one/1.jpg").status_code in (400, 404)
        (face,) = c.get(f"/api/people/{BIDEN}/faces").json()["faces"]
        assert face["quality"]["size"] > 40 and face["strangers_near"] == 0 and face["thumb"]
        (v,) = c.get("/api/visitors").json()
        first = v["suggestions"][0]
        assert (v["visitor"], first["person_id"], first["name"]) == (vid, BIDEN, "Joseph Biden")
        assert 0 < first["distance"] < 4 and first["blocked"] and v["reasons"] == {"below_threshold": 1}
        (recent,) = c.get("/api/recent").json()
        assert (recent["camera"], recent["visitor"], recent["reason"]) == ("door", vid, "below_threshold")
        assert recent["suggestions"][0]["person_id"] == BIDEN
        for method, path, body in (("POST", f"/api/visitors/{vid}/not", {"person_id": BIDEN}),
                                   ("POST", f"/api/sightings/{recent['sighting_id']}/name", {"as": BIDEN}),
                                   ("DELETE", f"/api/people/{BIDEN}/faces/1", None)):
            assert c.request(method, path, json=body).status_code == 403, f"a viewer may not {method} {path}"

        log_in(c, "admin")
        assert "no person" in c.post(f"/api/visitors/{vid}/not", json={"person_id": "nobody"}).json()["error"]
        assert "no visitor" in c.post("/api/visitors/v-999999/not", json={"person_id": BIDEN}).json()["error"]
        assert c.post(f"/api/visitors/{vid}/not", json={"person_id": BIDEN}).json()["cohort_faces"] == 1
        assert c.get("/api/visitors").json()[0]["suggestions"] == [], "not X: X leaves the suggestions"
        near = c.get(f"/api/people/{BIDEN}/faces").json()["faces"][0]["strangers_near"]
        Cohort(r, settings).add([FaceEntry(Gallery(r, settings).face_vector(BIDEN, 1), "twin")])
        assert c.get(f"/api/people/{BIDEN}/faces").json()["faces"][0]["strangers_near"] == near + 1, "a twin stranger"
        assert c.post(f"/api/sightings/{recent['sighting_id']}/name", json={"as": BIDEN}).json()["enrolled"] == 1
        assert r.hget(keys.sighting(recent["sighting_id"]), "person_id") == BIDEN.encode()
        assert [f["face"] for f in c.get(f"/api/people/{BIDEN}/faces").json()["faces"]] == [1, 2]
        assert c.delete(f"/api/people/{BIDEN}/faces/1").json() == {"person_id": BIDEN, "removed": 1, "faces": 1}
        assert c.delete(f"/api/people/{BIDEN}/faces/1").status_code == 400, "gone"
        assert not r.exists(keys.face(BIDEN, 1)) and Gallery(r, settings).size() == 1
        trail = [(x["action"], x["target"]) for x in c.get("/api/audit").json()]
        assert trail == [("remove-face", BIDEN), ("name", BIDEN), ("not", BIDEN)]


def test_the_face_library_in_chromium(r, settings, analyzer, faces_dir, tmp_path):
    """The issue's must-show: a stranger visitor of an enrolled person gets them as first suggestion, one click
    adds it and later frames are named; "not X" removes X; a face deleted from the card leaves the index and
    the audit names it; a viewer sees the suggestions but no button to act on them."""
    from playwright.sync_api import sync_playwright

    browser_path = chromium()
    keys, step = Keys(settings.key_prefix), Step(settings, analyzer, r.execute_command, "w")
    enroll(r, settings, [_photo(faces_dir, "gallery", MONDALE)], MONDALE, "Walter Mondale")
    biden = _visitor(r, step, faces_dir, BIDEN, "door", 1)
    stranger = _visitor(r, step, faces_dir, "_unknown", "yard", 1)
    enroll(r, settings, [_photo(faces_dir, "gallery", BIDEN)], BIDEN, "Joseph Biden")
    s = web(settings, tmp_path / "data")
    with serving(s) as port, sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=browser_path, args=CHROMIUM_FLAGS)
        page = browser.new_page()
        login(page, port)
        page.goto(f"http://127.0.0.1:{port}/library")
        card = page.locator("#people-list .person", has_text=BIDEN)
        card.locator("img").first.wait_for(timeout=20_000)
        assert page.evaluate(f"document.querySelector(\"img[src='/face/{BIDEN}/1.jpg']\").naturalWidth") > 0
        visitor = page.locator("#visitors-list .visitor", has_text=biden)
        first = visitor.locator(".suggestion").first
        first.wait_for(timeout=20_000)
        assert "Joseph Biden" in first.inner_text() and "d=0." in first.inner_text()
        first.locator("button", has_text="this is Joseph Biden").click()
        visitor.wait_for(state="detached", timeout=30_000)
        assert Gallery(r, settings).count_faces(BIDEN) == 2, "his look joined his gallery"
        assert _answer(r, step, "door", _photo(faces_dir, "probes", BIDEN), 2).faces[0].person_id == BIDEN

        other = page.locator("#visitors-list .visitor", has_text=stranger)
        nearest = other.locator(".suggestion").first
        nearest.wait_for(timeout=20_000)
        who = "Joseph Biden" if "Joseph Biden" in nearest.inner_text() else "Walter Mondale"
        nearest.locator("button", has_text=f"not {who}").click()
        page.wait_for_function(f"""() => [...document.querySelectorAll('#visitors-list .visitor')]
            .some(c => c.textContent.includes('{stranger}') && !c.textContent.includes('{who} ('))""", timeout=30_000)
        recent = page.locator("#recent-list .recent", has_text="yard")
        recent.wait_for(timeout=20_000)
        assert "unknown:" in recent.inner_text()

        card.locator("button", has_text="faces").click()
        page.locator("#person-faces .face").first.wait_for(timeout=20_000)
        before = Gallery(r, settings).size()
        page.locator("#person-faces .face", has_text="#1 ").locator("button", has_text="delete this face").click()
        page.wait_for_function("() => !document.querySelector('#person-faces').textContent.includes('#1 ')",
                               timeout=30_000)
        assert not r.exists(keys.face(BIDEN, 1)) and Gallery(r, settings).size() == before - 1
        page.locator("#audit-list tr.change", has_text="remove-face").wait_for(timeout=20_000)
        assert BIDEN in page.locator("#audit-list tr.change", has_text="remove-face").inner_text()
        page.screenshot(path=str(tmp_path / "face-library.png"), full_page=True)

        viewer = browser.new_page()
        login(viewer, port, "viewer")
        viewer.goto(f"http://127.0.0.1:{port}/library")
        viewer.locator("#visitors-list .suggestion").first.wait_for(timeout=20_000)
        assert viewer.locator("button:visible", has_text="this is").count() == 0
        assert viewer.locator("button:visible", has_text="not ").count() == 0
        assert viewer.locator("button:visible", has_text="delete").count() == 0
        browser.close()


def test_the_face_library_on_the_command_line(run, r, settings, analyzer, faces_dir):
    step = Step(settings, analyzer, r.execute_command, "w")
    vid = _visitor(r, step, faces_dir, BIDEN, "door", 1)
    assert "nobody enrolled comes near" in run("visitors", "show", vid).stdout
    enroll(r, settings, [_photo(faces_dir, "gallery", BIDEN, n) for n in (0, 1)], BIDEN, "Joseph Biden")
    shown = run("visitors", "show", vid).stdout.split("nearest enrolled people:")[1]
    assert shown.split()[0] == BIDEN and "distance 0." in shown
    faces = run("people", "faces", BIDEN)
    assert [line.split()[0] for line in faces.stdout.splitlines()] == ["1", "2"] and "strangers near" in faces.stdout
    assert "remove-face" in faces.stderr
    assert "1 look(s) joined the cohort" in run("visitors", "not", vid, BIDEN).stdout
    assert "nobody enrolled comes near" in run("visitors", "show", vid).stdout
    assert "no person" in run("visitors", "not", vid, "nobody", ok=False).stderr
    assert "1 left" in run("people", "remove-face", BIDEN, "1").stdout
    assert "has no face 1" in run("people", "remove-face", BIDEN, "1", ok=False).stderr
    assert not r.exists(Keys(settings.key_prefix).face(BIDEN, 1)) and Gallery(r, settings).size() == 1


def test_not_marks_leave_with_the_person_the_visitor_and_a_naming(r, settings):
    """"not X" leaves no trace of X once X is forgotten, none of the visitor once it is forgotten, and a visitor
    named after all takes its "not" looks out of the cohort (else they would veto its own name)."""
    import numpy as np

    from test_dashboard import _everything

    from facestream.models.curation.library import forget, name_visitor
    from facestream.models.curation.suggest import not_person
    from facestream.models.store.sightings import SightingIndexes
    from facestream.models.store.visitors import Visitors
    from facestream.records import Sighting

    keys, eye = Keys(settings.key_prefix), np.eye(128, dtype=np.float32)
    Gallery(r, settings).add_person("ann-42", "Annabel Zed", [FaceEntry(eye[0], "ann.jpg")])
    Gallery(r, settings).add_person("bob", "Bob", [FaceEntry(eye[1], "bob.jpg")])
    visitors, now = Visitors(r.execute_command, keys, settings.visitor_distance, 600_000), int(time.time() * 1000)
    seen = []
    for i, camera in ((2, "door"), (3, "yard")):
        vid = visitors.create(eye[i], camera, now)
        SightingIndexes(r.execute_command, keys).write(Sighting(f"{camera}-1-0", camera, now, visitor=vid, quality={
            "size": 120, "sharpness": 80.0, "yaw": 0.0}, vector=eye[i].astype("<f4").tobytes()), 600_000)
        seen.append(vid)
    for vid in seen:
        assert not_person(r, settings, vid, "ann-42") == 1 and not_person(r, settings, vid, "bob") == 1
    assert r.hget(keys.visitor(seen[0]), "not_of") == b"ann-42,bob"
    forget(r, settings, "ann-42")
    assert r.hget(keys.visitor(seen[0]), "not_of") == b"bob"
    assert b"ann-42" not in repr(_everything(r, settings.key_prefix)).encode()
    sources = lambda: sorted(src for _, src in Cohort(r, settings).sources())  # noqa: E731
    assert sources() == [f"visitor:{v}/{c}-1-0" for v, c in zip(seen, ("door", "yard")) for _ in (0, 1)]
    forget(r, settings, seen[0])
    name_visitor(r, settings, seen[1], "bob", None)
    assert sources() == [], "neither the forgotten visitor's looks nor the named one's stay in the cohort"
