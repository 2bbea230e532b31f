"""``facestream dashboard``: a live web page of every camera's latest frame with names, the recent
identity events, and the pipeline's health.

One background task follows the results and events streams and fans them out to every open page
over Server-Sent Events; pages never talk to Redis. A frame is fetched, decoded and annotated only
when a page asks for it, and a page asks for the next one only once the previous has loaded, so the
server never decodes more frames than are shown.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections import defaultdict, deque
from contextlib import asynccontextmanager
from dataclasses import asdict
from pathlib import Path
from typing import AsyncIterator, Awaitable, Callable

import numpy as np
import redis
import supervision as sv
import redis.asyncio as aioredis
from sse_starlette.sse import EventSourceResponse
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

from facestream.config import Settings
from facestream.errors import ConfigError
from facestream.keys import Keys
from facestream.records import UNKNOWN, Face, FrameResult, IdentityEvent
from facestream.status import read_status
from models.image import decode, encode_jpeg

PAGE = Path(__file__).with_name("dashboard.html")
LOOPBACK = {"127.0.0.1", "localhost", "::1"}

Handler = Callable[[Request], Awaitable[Response]]


def check_bind(host: str, token: str | None) -> None:
    """Refuse to serve beyond this machine without a token."""
    if host not in LOOPBACK and not token:
        raise ConfigError(f"binding {host} exposes the dashboard beyond this machine: set --token (or FACESTREAM_DASHBOARD_TOKEN)")


class Hub:
    """Follows the output streams once and fans records out to every subscribed page."""

    def __init__(self, url: str, settings: Settings):
        self.url = url
        self.s = settings
        self.keys = Keys(settings.key_prefix)
        self.latest: dict[str, FrameResult] = {}
        self.events: deque[dict] = deque(maxlen=50)
        self.done_at: dict[str, deque[float]] = defaultdict(lambda: deque(maxlen=300))
        self.subscribers: set[asyncio.Queue] = set()

    def publish(self, kind: str, data: dict) -> None:
        for q in list(self.subscribers):
            if q.qsize() < 200:  # a stalled page misses updates instead of growing memory
                q.put_nowait((kind, data))

    async def follow(self) -> None:
        r = aioredis.from_url(self.url, protocol=2)
        last = {self.keys.results: "$", self.keys.events: "$"}
        while True:  # a page opened now still lists who appeared and left recently
            try:
                recent = await r.xrevrange(self.keys.events, count=self.events.maxlen)
                break
            except (redis.ConnectionError, OSError):
                await asyncio.sleep(1.0)
        for entry_id, fields in reversed(recent):
            self.events.appendleft(asdict(IdentityEvent.from_fields(fields)))
        if recent:
            last[self.keys.events] = recent[0][0].decode()
        while True:
            try:
                reply = await r.xread(last, count=200, block=1000)
            except (redis.ConnectionError, OSError):
                await asyncio.sleep(1.0)
                continue
            for stream, entries in reply or []:
                stream = stream.decode()
                for entry_id, fields in entries:
                    last[stream] = entry_id.decode()
                    if stream == self.keys.results:
                        res = FrameResult.from_fields(fields)
                        self.latest[res.camera] = res
                        self.done_at[res.camera].append(time.time())
                        self.publish("result", _result_json(res))
                    else:
                        ev = asdict(IdentityEvent.from_fields(fields))
                        self.events.appendleft(ev)
                        self.publish("event", ev)

    async def health_loop(self) -> None:
        client = redis.Redis.from_url(self.url, protocol=2)
        while True:
            try:
                self.publish("health", await asyncio.to_thread(self.health, client))
            except redis.RedisError:
                self.publish("health", {"error": "Redis unreachable"})
            await asyncio.sleep(2.0)

    def health(self, client: redis.Redis) -> dict:
        st = read_status(client, self.s)
        now = time.time()
        cams = []
        for c in st.cameras:
            recent = [t for t in self.done_at[c.camera] if now - t <= 5]
            latest = self.latest.get(c.camera)
            cams.append({**asdict(c), "fps_out": round(len(recent) / 5, 1),
                         "latency_ms": round(now * 1000 - latest.ts_ms) if latest else None,
                         "total_ms": round(latest.timings.get("total", 0)) if latest else None})
        return {"cameras": cams, "workers": len(st.workers), "results": st.results,
                "events": st.events, "deadletters": st.deadletters}

    def annotated_frame(self, client: redis.Redis, camera: str) -> bytes | None:
        """The latest answered frame of ``camera`` as JPEG with boxes and names drawn."""
        res = self.latest.get(camera)
        if res is None:
            return None
        entries = client.xrange(self.keys.frames(camera), res.frame_id, res.frame_id)
        if not entries or b"jpeg" not in entries[0][1]:
            return None  # trimmed already
        return encode_jpeg(annotate(decode(entries[0][1][b"jpeg"]), res.faces), 80)


#: Named faces green, unknown grey (supervision draws in the image's own channel order: RGB here).
NAMED, UNNAMED = sv.Color(40, 200, 80), sv.Color(120, 120, 120)
_BOXES = sv.BoxAnnotator(sv.ColorPalette([UNNAMED, NAMED]), thickness=2)
_LABELS = sv.LabelAnnotator(sv.ColorPalette([UNNAMED, NAMED]), text_color=sv.Color.BLACK, text_scale=0.5,
                            text_padding=4, smart_position=True)


def annotate(rgb: np.ndarray, faces: list[Face]) -> np.ndarray:
    """A copy of ``rgb`` with each face's box and its name (and confidence when named) drawn."""
    if not faces:
        return rgb
    dets = sv.Detections(xyxy=np.array([f.box for f in faces], np.float32),
                         class_id=np.array([f.person_id != UNKNOWN for f in faces], int))
    labels = [f.name if f.person_id == UNKNOWN else f"{f.name} {f.confidence:.2f}" for f in faces]
    return _LABELS.annotate(_BOXES.annotate(rgb.copy(), dets), dets, labels)


def _result_json(res: FrameResult) -> dict:
    return {"camera": res.camera, "frame_id": res.frame_id, "seq": res.seq, "ts_ms": res.ts_ms,
            "names": res.names, "faces": [f.to_json() for f in res.faces],
            "total_ms": round(res.timings.get("total", 0), 1)}


def token_guard(token: str | None) -> Callable[[Handler], Handler]:
    """Wraps a handler so it answers 401 unless the request carries ``token`` (?token= or Bearer)."""

    def authorized(request: Request) -> bool:
        if not token:
            return True
        given = request.query_params.get("token") or request.headers.get("authorization", "").removeprefix("Bearer ")
        return secrets.compare_digest(given, token)

    def guard(handler: Handler) -> Handler:
        async def wrapped(request: Request) -> Response:
            if not authorized(request):
                return JSONResponse({"error": "missing or wrong token"}, status_code=401)
            return await handler(request)

        return wrapped

    return guard


async def _updates(hub: Hub) -> AsyncIterator[dict[str, str]]:
    """One page's SSE messages: what is known now (recent events, each camera's latest result), then live."""
    q: asyncio.Queue = asyncio.Queue()
    hub.subscribers.add(q)
    try:
        for ev in reversed(hub.events):
            yield {"event": "event", "data": json.dumps(ev)}
        for res in list(hub.latest.values()):
            yield {"event": "result", "data": json.dumps(_result_json(res))}
        while True:
            kind, data = await q.get()
            yield {"event": kind, "data": json.dumps(data)}
    finally:
        hub.subscribers.discard(q)


def create_app(url: str, settings: Settings, token: str | None = None) -> Starlette:
    hub = Hub(url, settings)
    client = redis.Redis.from_url(url, protocol=2)
    guard = token_guard(token)

    async def index(request: Request) -> Response:
        return HTMLResponse(PAGE.read_text())

    async def stream(request: Request) -> Response:
        return EventSourceResponse(_updates(hub), ping=10)

    async def frame(request: Request) -> Response:
        jpeg = await asyncio.to_thread(hub.annotated_frame, client, request.path_params["camera"])
        if jpeg is None:
            return Response(status_code=404)
        return Response(jpeg, media_type="image/jpeg", headers={"Cache-Control": "no-store"})

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        tasks = [asyncio.create_task(hub.follow()), asyncio.create_task(hub.health_loop())]
        yield
        for t in tasks:
            t.cancel()

    return Starlette(routes=[Route("/", guard(index)), Route("/stream", guard(stream)),
                             Route("/frame/{camera}.jpg", guard(frame))], lifespan=lifespan)
