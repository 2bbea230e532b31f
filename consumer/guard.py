"""What every dashboard request passes before a handler runs, assuming the browser that sends it also
has hostile pages open.

- **Host**: only loopback names, the bound address and the configured public names (Starlette's
  ``TrustedHostMiddleware``): a DNS-rebound name pointing at 127.0.0.1 gets 400, so a remote page
  cannot read the dashboard as its own origin.
- **Who**: a session cookie (see :mod:`.auth`) or the admin ``Bearer`` token; pages without one
  redirect to the login page, API calls get 401; a viewer changing anything gets 403.
- **Cross-site writes** (CSRF): a state-changing request must carry this dashboard's own ``Origin``
  (``Sec-Fetch-Site: same-origin`` when the browser sends it); without either, only a Bearer token
  (scripts) is accepted. Another port of the same host is another origin. Bodies must have the
  endpoint's ``Content-Type`` (JSON, or an image), which no cross-site form can send without a CORS
  preflight, and the dashboard answers no preflight (CORS stays closed).
- **Headers** on every answer: no framing (clickjacking), no content sniffing, no referrer, no caching
  of API answers.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import secrets
import time
from collections import defaultdict, deque
from typing import Awaitable, Callable
from urllib.parse import urlsplit

from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from facestream.consumer.auth import COOKIE, SESSION_S, Sessions, User, Users
from facestream.refusals import CONDITIONS, Refusals

log = logging.getLogger("facestream.dashboard")

Handler = Callable[[Request], Awaitable[Response]]
UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}
PATH_ID = re.compile(r"[A-Za-z0-9_.-]{1,160}")  # person, visitor, camera and sighting ids (keys.ID_RE and joins of them)
LOOPBACK_NAMES = ["127.0.0.1", "localhost", "::1", "[::1]"]
JSON = ("application/json",)
IMAGE = ("image/jpeg", "image/png", "image/webp", "image/bmp", "application/octet-stream")
HEADERS = [(b"x-frame-options", b"DENY"), (b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"no-referrer"),
           (b"cross-origin-opener-policy", b"same-origin"), (b"cross-origin-resource-policy", b"same-origin")]


def allowed_hosts(bind: str, public_names: list[str]) -> list[str]:
    """Host header values the dashboard answers: loopback, the bound address (unless a wildcard), public names."""
    names = [*LOOPBACK_NAMES, *public_names]
    if bind not in ("0.0.0.0", "::", ""):
        names.append(bind)
    return names


class SecurityHeaders:
    """ASGI middleware adding :data:`HEADERS` to every response (404s and errors included)."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), *HEADERS]
            await send(message)

        await self.app(scope, receive, with_headers)


class Guard:
    """Wraps each handler with the checks its route needs: who may call it and what it accepts."""

    def __init__(self, sessions: Sessions, token: str | None, auth: bool = True):
        self.refusals = Refusals(log, "dashboard (requests answered 503 meanwhile)")
        self.sessions, self.token, self.auth = sessions, token, auth

    def user(self, request: Request) -> User | None:
        if not self.auth:
            return User("local", "admin")
        bearer = request.headers.get("authorization", "")
        if self.token and bearer.startswith("Bearer ") and secrets.compare_digest(
                bearer[7:].encode("utf-8", "surrogateescape"), self.token.encode()):
            return User("token", "admin")
        return self.sessions.user(request.cookies.get(COOKIE))

    @staticmethod
    def same_origin(request: Request) -> bool:
        """True if the browser says the request comes from a page of this dashboard (scheme, host and port)."""
        site = request.headers.get("sec-fetch-site")
        if site is not None and site != "same-origin":
            return False
        origin = request.headers.get("origin")
        if origin is None:
            return False
        o = urlsplit(origin)
        return (o.scheme, o.netloc) == (request.url.scheme, request.headers.get("host", ""))

    def __call__(self, handler: Handler, role: str | None = "viewer", accepts: tuple[str, ...] = (),
                 page: bool = False) -> Handler:
        """``handler`` behind the checks: ``role`` None for public routes (login); ``accepts``: the
        Content-Types its body may have; ``page``: answer a missing login with a redirect to it."""

        async def wrapped(request: Request) -> Response:
            user = self.user(request) if role else None
            if request.method in UNSAFE:
                scripted = user is not None and user.name == "token" and "origin" not in request.headers
                if not (scripted or self.same_origin(request)):
                    return _error(403, "cross-origin request refused")
                ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
                if accepts and ctype not in accepts:
                    return _error(415, f"send the body as {' or '.join(accepts)}")
            if role and user is None:
                return RedirectResponse("/login", status_code=303) if page else _error(401, "log in first")
            if role == "admin" and user is not None and not user.admin:
                return _error(403, f"{user.name} is a viewer: only an admin may change the gallery")
            if not all(PATH_ID.fullmatch(str(v)) for v in request.path_params.values()):
                return _error(400, "ids in paths are letters, digits, '_', '-' and '.'")
            request.state.user = user
            try:
                response = await handler(request)
            except Exception as e:  # noqa: BLE001 - Redis refusing for a while is a 503 saying why, said once in the log
                code = self.refusals.refused(e)
                if code is None:
                    raise
                return _error(503, f"Redis refuses just now: {CONDITIONS[code]}; try again shortly")
            if request.method in UNSAFE:  # a change went through: writes are accepted again
                self.refusals.accepted()
            if not page:
                response.headers.setdefault("cache-control", "no-store")
            return response

        return wrapped


def _error(status: int, message: str) -> Response:
    return JSONResponse({"error": message}, status_code=status)


LOGIN_FAILURES, LOGIN_WINDOW_S = 10, 300.0  # failed logins from one address before it must wait


def login_routes(users: Users, sessions: Sessions, guard: Guard, auth: bool) -> list[Route]:
    """POST /login (JSON user and password: a session cookie), POST /logout, GET /api/me."""
    failures: dict[str, deque[float]] = defaultdict(deque)

    async def login(request: Request) -> Response:
        address = request.client.host if request.client else "?"
        try:
            body = json.loads(await request.body())
            name, password = str(body["user"]), str(body["password"])
        except (ValueError, KeyError, TypeError):
            return _error(400, 'send {"user": ..., "password": ...}')
        recent = failures[address]
        while recent and recent[0] < time.monotonic() - LOGIN_WINDOW_S:
            recent.popleft()
        if len(recent) >= LOGIN_FAILURES:
            return _error(429, "too many failed logins from this address; wait a few minutes")
        user = await asyncio.to_thread(users.check, name, password)
        if user is None:
            recent.append(time.monotonic())
            return _error(401, "wrong user or password")
        response = JSONResponse({"user": user.name, "role": user.role})
        response.set_cookie(COOKIE, sessions.open(user), max_age=SESSION_S, path="/", httponly=True, samesite="strict",
                            secure=request.url.scheme == "https")
        return response

    async def logout(request: Request) -> Response:
        sessions.close(request.cookies.get(COOKIE))
        response = JSONResponse({"logged_out": True})
        response.delete_cookie(COOKIE, path="/")
        return response

    async def me(request: Request) -> Response:
        return JSONResponse({"user": request.state.user.name, "role": request.state.user.role, "auth": auth})

    return [Route("/login", guard(login, None, JSON), methods=["POST"]), Route("/logout", guard(logout), methods=["POST"]),
            Route("/api/me", guard(me))]
