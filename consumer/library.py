"""The dashboard's People, Visitors and Search pages, and the JSON endpoints behind them.

Everything here calls the same library functions as the command line (:mod:`facestream.models.curation.library`,
:class:`facestream.models.store.gallery.Gallery`, :class:`facestream.models.store.visitors.Visitors`), in a thread, so the event loop
keeps serving the live page. Photos are uploaded as the raw request body (no form parsing); a
dashboard running as the read-only ``reader`` ACL user can list and search but not change anything,
and says so (403).
"""

from __future__ import annotations

import asyncio
import json
import tempfile
from pathlib import Path
from typing import Any, Callable

import redis
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from facestream.commands import cameras
from facestream.config import Settings
from facestream.consumer.guard import IMAGE, JSON, Guard
from facestream.errors import FacestreamError
from facestream.keys import ID_RE, Keys
from facestream.models.curation import audit
from facestream.models.curation import library as curation
from facestream.models.curation.suggest import Advisor, not_person
from facestream.models.store.gallery import Gallery
from facestream.models.store.sightings import Hit, labelled, load

PAGE = Path(__file__).with_name("library.html")
#: Enrolled faces shown on a person's card (the person's page shows them all).
CARD_FACES = 6
READ_ONLY = "this dashboard's Redis user may not change anything (the reader role): use facestream on the command line"


def _hit_json(h: Hit) -> dict[str, Any]:
    x = h.sighting
    return {"sighting_id": x.sighting_id, "camera": x.camera, "ts_ms": x.ts_ms, "distance": round(h.distance, 4),
            "who": x.who}


class Library:
    """The handlers, over one Redis client and the dashboard's settings."""

    def __init__(self, client: redis.Redis, settings: Settings, streams: redis.Redis | redis.RedisCluster | None = None):
        self.r, self.s, self.keys = client, settings, Keys(settings.key_prefix)
        self.streams = streams or client  # forgetting someone also erases their results and events

    def advisor(self) -> Advisor:
        """Suggestions with the policy the workers decide with (the model the prefix's vectors were stamped with)."""
        from facestream.models.evaluation.identify import policy_of_prefix  # the models load late: the page starts fast

        return Advisor(self.r, self.s, policy_of_prefix(self.r, self.s))

    async def call(self, work: Callable[[], Any], status: int = 200) -> Response:
        """Run ``work`` in a thread; its errors as one-line JSON (400 bad input, 403 read-only)."""
        try:
            return JSONResponse(await asyncio.to_thread(work), status_code=status)
        except redis.exceptions.NoPermissionError:
            return JSONResponse({"error": READ_ONLY}, status_code=403)
        except (FacestreamError, ValueError) as e:
            if "no permissions" in str(e):  # a refused write the gallery reported in its own words
                return JSONResponse({"error": READ_ONLY}, status_code=403)
            return JSONResponse({"error": str(e)}, status_code=400)

    def changed(self, request: Request, action: str, target: str, detail: str = "") -> None:
        """Record a change made through the dashboard in the audit trail (who, from where, what)."""
        user = request.state.user
        audit.record(self.r, self.keys, user.name, request.client.host if request.client else "?", action, target, detail)

    async def photo(self, request: Request) -> Path:
        """The uploaded photo (raw body) in a temporary file; FacestreamError if empty or too large (refused
        from its Content-Length, or as soon as more than the limit has arrived: never held whole)."""
        limit = self.s.max_frame_bytes
        declared = request.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise FacestreamError(f"photo of {declared} bytes is over max_frame_bytes={limit}")
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > limit:
                raise FacestreamError(f"photo is over max_frame_bytes={limit}")
        if not body:
            raise FacestreamError("send the photo as the request body")
        f = tempfile.NamedTemporaryFile(suffix=".jpg", delete=False)
        f.write(body)
        f.close()
        return Path(f.name)

    # --- people ----------------------------------------------------------------------------------
    def people(self) -> list[dict[str, Any]]:
        out, gallery = [], Gallery(self.r, self.s)
        for p in gallery.people():
            seen = labelled(self.r.execute_command, self.keys, "person_id", p.person_id, page=1)
            kept = [f.face for f in gallery.faces(p.person_id) if f.thumb]
            out.append({"person_id": p.person_id, "name": p.name, "faces": p.faces,
                        "photo": seen[0] if seen else None, "enrolled": kept[:CARD_FACES]})
        return out

    async def faces(self, request: Request) -> Response:
        pid = request.path_params["person_id"]

        def work() -> dict[str, Any]:
            advisor = self.advisor()
            person = advisor.gallery.person(pid)
            return {"person_id": pid, "name": person.name, "named_within": round(advisor.policy.limit(pid), 4),
                    "faces": [f.to_json() for f in advisor.faces(pid)]}

        return await self.call(work)

    async def face_thumb(self, request: Request) -> Response:
        pid, n = request.path_params["person_id"], request.path_params["face"]
        jpeg = await asyncio.to_thread(Gallery(self.r, self.s).face_thumb, pid, n) if ID_RE.match(pid) else b""
        if not jpeg:
            return Response(status_code=404)
        return Response(jpeg, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=3600"})

    async def remove_face(self, request: Request) -> Response:
        pid, n = request.path_params["person_id"], request.path_params["face"]

        def work() -> dict[str, Any]:
            gallery = Gallery(self.r, self.s)
            source = gallery.remove_face(pid, n)
            self.changed(request, "remove-face", pid, f"face {n} ({source})")
            return {"person_id": pid, "removed": n, "faces": gallery.count_faces(pid)}

        return await self.call(work)

    async def enroll(self, request: Request) -> Response:
        pid, name = request.query_params.get("person_id", ""), request.query_params.get("name") or None
        if not ID_RE.match(pid):
            return JSONResponse({"error": "person_id must be 1-64 characters of A-Z a-z 0-9 _ -"}, status_code=400)
        try:
            path = await self.photo(request)
        except FacestreamError as e:
            return JSONResponse({"error": str(e)}, status_code=400)

        def work() -> dict[str, Any]:
            try:
                enrolled = curation.enroll_photo(self.r, self.s, path, pid, name)
            finally:
                path.unlink(missing_ok=True)
            self.changed(request, "enroll", pid, f"{enrolled} face(s)")
            return {"person_id": pid, "enrolled": enrolled}

        return await self.call(work, 201)

    async def rename(self, request: Request) -> Response:
        pid, body = request.path_params["person_id"], await json_body(request)

        def work() -> dict[str, Any]:
            Gallery(self.r, self.s).rename(pid, str(body.get("name", "")))
            self.changed(request, "rename", pid, str(body.get("name", "")).strip())
            return {"person_id": pid, "name": str(body.get("name", "")).strip()}

        return await self.call(work)

    async def delete(self, request: Request) -> Response:
        pid = request.path_params["person_id"]

        def work() -> dict[str, Any]:
            Gallery(self.r, self.s).person(pid)
            out = curation.forget(self.r, self.s, pid, self.streams)
            self.changed(request, "forget", audit.digest(pid), f"{out.faces} faces, {out.sightings} sightings")
            return {"faces": out.faces, "sightings": out.sightings, "entries": out.entries}

        return await self.call(work)

    # --- visitors ---------------------------------------------------------------------------------
    def visitors(self) -> list[dict[str, Any]]:
        out, advisor = [], self.advisor()
        for v in curation.visitors_of(self.r, self.s).recent(50):
            seen = sorted(labelled(self.r.execute_command, self.keys, "visitor", v.visitor_id))
            try:
                suggestions, reasons = advisor.visitor(v.visitor_id)
            except FacestreamError:  # named, forgotten or expired since it was listed
                continue
            out.append({"visitor": v.visitor_id, "first_ms": v.first_ms, "last_ms": v.last_ms, "looks": v.looks,
                        "cameras": v.cameras, "sightings": seen[:6], "reasons": reasons,
                        "suggestions": [x.to_json() for x in suggestions]})
        return out

    def recent(self) -> list[dict[str, Any]]:
        return [x.to_json() for x in self.advisor().recent(cameras(self.streams, self.keys, "results")[0])]

    async def not_person(self, request: Request) -> Response:
        vid, body = request.path_params["visitor"], await json_body(request)
        pid = str(body.get("person_id", ""))

        def work() -> dict[str, Any]:
            added = not_person(self.r, self.s, vid, pid)
            self.changed(request, "not", pid, f"{vid} is not them: {added} look(s) to the cohort")
            return {"visitor": vid, "not": pid, "cohort_faces": added}

        return await self.call(work)

    async def name_sighting(self, request: Request) -> Response:
        sid, body = request.path_params["sighting"], await json_body(request)
        pid = str(body.get("as", ""))

        def work() -> dict[str, Any]:
            enrolled = curation.name_sighting(self.r, self.s, sid, pid)
            self.changed(request, "name", pid, f"from sighting {sid}: {enrolled} face(s)")
            return {"person_id": pid, "enrolled": enrolled}

        return await self.call(work)

    async def name(self, request: Request) -> Response:
        vid, body = request.path_params["visitor"], await json_body(request)
        new, existing = body.get("name"), body.get("as")

        def work() -> dict[str, Any]:
            if bool(new) == bool(existing):
                raise FacestreamError('send {"name": "New Person"} or {"as": "person_id"}')
            pid = str(existing or body.get("person_id") or curation.person_id_for(str(new)))
            done = curation.name_visitor(self.r, self.s, vid, pid, str(new) if new else None)
            self.changed(request, "name", done.person_id, f"from {vid}: {done.enrolled} face(s)")
            return {"person_id": done.person_id, "enrolled": done.enrolled, "relabelled": done.relabelled}

        return await self.call(work)

    async def merge(self, request: Request) -> Response:
        body = await json_body(request)
        into, other = str(body.get("into", "")), str(body.get("other", ""))

        def work() -> dict[str, Any]:
            relabelled = curation.visitors_of(self.r, self.s).merge(into, other)
            self.changed(request, "merge", into, f"{other} merged in")
            return {"relabelled": relabelled}

        return await self.call(work)

    # --- search and thumbnails ----------------------------------------------------------------------
    async def search(self, request: Request) -> Response:
        q = request.query_params
        try:
            path = await self.photo(request)
            since, limit = curation.since_ms(q.get("since") or None), int(q.get("limit", "20"))
        except (FacestreamError, ValueError) as e:
            return JSONResponse({"error": str(e)}, status_code=400)

        def work() -> list[dict[str, Any]]:
            try:
                vector = curation.photo_vector(path, self.s)
            finally:
                path.unlink(missing_ok=True)
            hits = curation.find(self.r, self.s, vector, max(1, min(limit, 200)), since, q.get("camera") or None)
            return [_hit_json(h) for h in sorted(hits, key=lambda h: h.sighting.ts_ms)]

        return await self.call(work)

    async def thumb(self, request: Request) -> Response:
        sid = request.path_params["sighting"]
        found = await asyncio.to_thread(load, self.r.execute_command, self.keys, sid)
        if found is None or not found.thumb:
            return Response(status_code=404)
        return Response(found.thumb, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=3600"})


async def json_body(request: Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.body() or b"{}")
    except ValueError:
        body = None
    return body if isinstance(body, dict) else {}


def routes(client: redis.Redis, settings: Settings, guard: Guard, page: Callable,
           streams: redis.Redis | redis.RedisCluster | None = None) -> list[Route]:
    """The pages' routes, each behind the dashboard's ``guard`` with the role it needs; ``page`` serves the HTML.
    ``client``: the index tier; ``streams``: the stream tier (default the same server)."""
    lib = Library(client, settings, streams)

    def listing(fn: Callable[[], Any]) -> Callable:
        async def handler(request: Request) -> Response:
            return await lib.call(fn)
        return handler

    def changes() -> list[dict[str, Any]]:
        return [c.to_json() for c in audit.recent(client, lib.keys)]

    return [
        Route("/library", guard(page, page=True)),
        Route("/api/people", guard(listing(lib.people)), methods=["GET"]),
        Route("/api/people", guard(lib.enroll, "admin", IMAGE), methods=["POST"]),
        Route("/api/people/{person_id}/rename", guard(lib.rename, "admin", JSON), methods=["POST"]),
        Route("/api/people/{person_id}", guard(lib.delete, "admin"), methods=["DELETE"]),
        Route("/api/people/{person_id}/faces", guard(lib.faces), methods=["GET"]),
        Route("/api/people/{person_id}/faces/{face:int}", guard(lib.remove_face, "admin"), methods=["DELETE"]),
        Route("/face/{person_id}/{face:int}.jpg", guard(lib.face_thumb)),
        Route("/api/visitors", guard(listing(lib.visitors)), methods=["GET"]),
        Route("/api/visitors/merge", guard(lib.merge, "admin", JSON), methods=["POST"]),
        Route("/api/visitors/{visitor}/name", guard(lib.name, "admin", JSON), methods=["POST"]),
        Route("/api/visitors/{visitor}/not", guard(lib.not_person, "admin", JSON), methods=["POST"]),
        Route("/api/recent", guard(listing(lib.recent)), methods=["GET"]),
        Route("/api/sightings/{sighting}/name", guard(lib.name_sighting, "admin", JSON), methods=["POST"]),
        Route("/api/audit", guard(listing(changes), "admin"), methods=["GET"]),
        Route("/api/search", guard(lib.search, "viewer", IMAGE), methods=["POST"]),
        Route("/sighting/{sighting}.jpg", guard(lib.thumb)),
    ]
