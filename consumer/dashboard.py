"""``facestream dashboard``: a live web page of every camera's latest frame with names, the recent
identity events, and the pipeline's health; and the People, Visitors and Search pages
(:mod:`facestream.consumer.library`, at ``/library``).

One background task follows every camera's results and events streams and fans them out to every open page
over Server-Sent Events; pages never talk to Redis. A frame is fetched, decoded and annotated only
when a page asks for it, and a page asks for the next one only once the previous has loaded, so the
server never decodes more frames than are shown.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import logging
import re
import time
from collections import defaultdict, deque
from contextlib import asynccontextmanager
from dataclasses import asdict
from pathlib import Path
from typing import AsyncIterator, Awaitable, Callable, Sequence

import numpy as np
import redis
import supervision as sv
from sse_starlette.sse import EventSourceResponse
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from facestream.config import Settings
from facestream.consumer.auth import Sessions, Users
from facestream.consumer.guard import LOOPBACK_NAMES, Guard, SecurityHeaders, allowed_hosts, login_routes
from facestream.consumer.library import PAGE as LIBRARY_PAGE
from facestream.consumer.library import routes as library_routes
from facestream.errors import BadFrame, BadRecord, ConfigError
from facestream.feed import Feed, newest
from facestream.keys import Keys
from facestream.models.vision.image import decode_frame, encode_jpeg
from facestream.records import UNKNOWN, Face, Fields, Frame, FrameResult, IdentityEvent
from facestream.retry import UNREACHABLE
from facestream.server import connect, connect_index
from facestream.status import read_status

log = logging.getLogger("facestream.dashboard")

PAGE = Path(__file__).with_name("dashboard.html")
LOGIN_PAGE = Path(__file__).with_name("login.html")

Handler = Callable[[Request], Awaitable[Response]]


def check_bind(host: str, auth: bool) -> None:
    """Refuse to serve without logins beyond this machine."""
    if host not in LOOPBACK_NAMES and not auth:
        raise ConfigError(f"--no-auth serves the dashboard to anyone who can reach {host}: only on 127.0.0.1")


class Hub:
    """Follows every camera's output streams once and fans records out to every subscribed page."""

    def __init__(self, client: redis.Redis | redis.RedisCluster, settings: Settings, index: redis.Redis | None = None):
        self.r, self.index = client, index or client  # the stream tier, the index tier
        self.s = settings
        self.keys = Keys(settings.key_prefix)
        self.latest: dict[str, FrameResult] = {}
        self.events: deque[dict] = deque(maxlen=50)
        self.done_at: dict[str, deque[float]] = defaultdict(lambda: deque(maxlen=300))
        self.subscribers: set[asyncio.Queue] = set()
        self.bad_records = 0  # output-stream entries that were not ours (skipped, logged)

    def publish(self, kind: str, data: dict) -> None:
        for q in list(self.subscribers):
            if q.qsize() < 200:  # a stalled page misses updates instead of growing memory
                q.put_nowait((kind, data))

    async def follow(self) -> None:
        while True:  # a page opened now still lists who appeared and left recently
            try:
                recent = await asyncio.to_thread(newest, self.r, self.keys, "events", self.events.maxlen)
                break
            except UNREACHABLE:
                await asyncio.sleep(1.0)
        for e in reversed(recent):
            self.take(e.kind, e.entry_id, e.fields, publish=False)
        feed = Feed(self.r, self.keys, ("results", "events"))
        while True:
            try:
                entries = await asyncio.to_thread(feed.poll, 200, 1000)
            except UNREACHABLE:
                feed.restart()
                await asyncio.sleep(1.0)
                continue
            for e in entries:
                self.take(e.kind, e.entry_id, e.fields)

    def take(self, kind: str, entry_id: str, fields: Fields, publish: bool = True) -> None:
        """Keep and fan out one results/events entry; a malformed one is logged, counted and skipped."""
        try:
            if kind == "results":
                res = FrameResult.from_fields(fields)
                self.latest[res.camera] = res
                self.done_at[res.camera].append(time.time())
                kind, data = "result", res.to_json()
            else:
                kind, data = "event", IdentityEvent.from_fields(fields).to_json()
                self.events.appendleft(data)
        except BadRecord as e:
            self.bad_records += 1
            log.warning("%s %s skipped: %s", kind, entry_id, e)
            return
        if publish:
            self.publish(kind, data)

    async def health_loop(self) -> None:
        while True:
            try:
                self.publish("health", await asyncio.to_thread(self.health))
            except UNREACHABLE + (redis.RedisError,):
                self.publish("health", {"error": "Redis unreachable"})
            await asyncio.sleep(2.0)

    def health(self) -> dict:
        st = read_status(self.r, self.s, self.index)
        now = time.time()
        cams = []
        for c in st.cameras:
            recent = [t for t in self.done_at[c.camera] if now - t <= 5]
            latest = self.latest.get(c.camera)
            cams.append({**asdict(c), "fps_out": round(len(recent) / 5, 1),
                         "latency_ms": round(now * 1000 - latest.ts_ms) if latest else None,
                         "total_ms": round(latest.timings.get("total", 0)) if latest else None})
        deciding = sorted({w["policy"] for w in st.workers.values() if w.get("policy")})  # the operating point
        return {"cameras": cams, "workers": len(st.workers), "results": st.results, "events": st.events,
                "deadletters": st.deadletters, "lost": st.lost, "ignored_streams": len(st.bad_streams),
                "bad_records": self.bad_records, "naming": deciding}

    def annotated_frame(self, camera: str) -> bytes | None:
        """The latest answered frame of ``camera`` as JPEG with boxes and names drawn (None: none to show)."""
        res = self.latest.get(camera)
        if res is None:  # also every camera id that is not valid: only valid ids get into latest
            return None
        entries = self.r.xrange(self.keys.frames(camera), res.frame_id, res.frame_id)
        if not entries:
            return None  # trimmed already
        try:
            frame = Frame.from_fields(entries[0][1], self.s.max_frame_bytes)
            rgb = decode_frame(frame.jpeg, self.s.max_frame_pixels)
        except BadFrame:
            return None  # the worker dead-lettered it too: nothing to draw on
        return encode_jpeg(annotate(rgb, res.faces), 80)


#: Named faces green, unknown grey (supervision draws in the image's own channel order: RGB here).
NAMED, UNNAMED = sv.Color(40, 200, 80), sv.Color(120, 120, 120)
_BOXES = sv.BoxAnnotator(sv.ColorPalette([UNNAMED, NAMED]), thickness=2)
_LABELS = sv.LabelAnnotator(sv.ColorPalette([UNNAMED, NAMED]), text_color=sv.Color.BLACK, text_scale=0.5,
                            text_padding=4, smart_position=True)


def annotate(rgb: np.ndarray, faces: list[Face]) -> np.ndarray:
    """A copy of ``rgb`` with each face's box and its name and confidence, or why it stayed unknown."""
    if not faces:
        return rgb
    dets = sv.Detections(xyxy=np.array([f.box for f in faces], np.float32),
                         class_id=np.array([f.person_id != UNKNOWN for f in faces], int))
    labels = [f"{f.name} {f.confidence:.2f}" if f.person_id != UNKNOWN else f"unknown {f.visitor}" if f.visitor else
              f"unknown: {f.reason.replace('_', ' ')}" if f.reason else UNKNOWN for f in faces]
    return _LABELS.annotate(_BOXES.annotate(rgb.copy(), dets), dets, labels)


async def _supervised(loop: Callable[[], Awaitable[None]]) -> None:
    """Run a background loop for the app's life: a bug in one pass is logged and the loop restarted."""
    while True:
        try:
            await loop()
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - the page must keep updating whatever one record does
            log.exception("dashboard task %s failed; restarting it in 1 s", loop.__name__)
            await asyncio.sleep(1.0)


def content_security_policy(page: str) -> str:
    """Only this page's own inline script and style run (by hash); everything else from this origin only."""
    def digest(tag: str) -> str:
        body = re.search(rf"<{tag}>(.*?)</{tag}>", page, re.S)
        return "'sha256-" + base64.b64encode(hashlib.sha256(body[1].encode()).digest()).decode() + "'" if body else ""

    return (f"default-src 'none'; script-src {digest('script')}; style-src {digest('style')}; img-src 'self'; "
            "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")


async def _updates(hub: Hub) -> AsyncIterator[dict[str, str]]:
    """One page's SSE messages: what is known now (recent events, each camera's latest result), then live."""
    q: asyncio.Queue = asyncio.Queue()
    hub.subscribers.add(q)
    try:
        for ev in reversed(hub.events):
            yield {"event": "event", "data": json.dumps(ev)}
        for res in list(hub.latest.values()):
            yield {"event": "result", "data": json.dumps(res.to_json())}
        while True:
            kind, data = await q.get()
            yield {"event": kind, "data": json.dumps(data)}
    finally:
        hub.subscribers.discard(q)


def create_app(url: str, settings: Settings, token: str | None = None, auth: bool = True, bind: str = "127.0.0.1",
               public_names: Sequence[str] = ()) -> Starlette:
    """The dashboard app: logins on (``auth``) unless told otherwise, answering only the Host names
    :func:`facestream.consumer.guard.allowed_hosts` lists."""
    client = connect(settings, url)
    index = connect_index(settings, client)
    hub = Hub(client, settings, index)
    users, sessions = Users.of(settings), Sessions()
    if auth:
        users.ensure_admin()
    guard = Guard(sessions, token, auth)

    def html(name: Path | str) -> Callable[[Request], Awaitable[Response]]:
        page = Path(name).read_text()
        headers = {"Content-Security-Policy": content_security_policy(page)}

        async def serve(request: Request) -> Response:
            return HTMLResponse(page, headers=headers)

        return serve

    async def stream(request: Request) -> Response:
        return EventSourceResponse(_updates(hub), ping=10)

    async def frame(request: Request) -> Response:
        jpeg = await asyncio.to_thread(hub.annotated_frame, request.path_params["camera"])
        if jpeg is None:
            return Response(status_code=404)
        return Response(jpeg, media_type="image/jpeg", headers={"Cache-Control": "no-store"})

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        tasks = [asyncio.create_task(_supervised(hub.follow)), asyncio.create_task(_supervised(hub.health_loop))]
        yield
        for t in tasks:
            t.cancel()

    routes = [Route("/", guard(html(PAGE), page=True)), Route("/login", guard(html(LOGIN_PAGE), None, page=True)),
              *login_routes(users, sessions, guard, auth), Route("/stream", guard(stream)),
              Route("/frame/{camera}.jpg", guard(frame)), *library_routes(index, settings, guard, html(LIBRARY_PAGE), client)]
    middleware = [Middleware(TrustedHostMiddleware, allowed_hosts=allowed_hosts(bind, list(public_names))),
                  Middleware(SecurityHeaders)]
    return Starlette(routes=routes, middleware=middleware, lifespan=lifespan)
