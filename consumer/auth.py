"""Who may use the dashboard: users with a role, their passwords hashed in an owner-only file, and
login sessions held in a cookie.

Two roles: ``viewer`` (the live page, search, thumbnails) and ``admin`` (besides: enroll, rename,
delete, name, merge). The first run makes an ``admin`` with a random password, kept in an owner-only
file beside the users file (printed logs are kept by journald and docker; the password is not printed)
until the admin sets their own (``facestream users passwd admin``). Passwords are hashed with scrypt
(stdlib ``hashlib``). A session is a random token in an HttpOnly, SameSite=Strict cookie (Secure
behind TLS), kept in the dashboard's memory: a restart logs everyone out. The ``--token`` of scripts
works as an admin ``Authorization: Bearer`` header, never in URLs.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from facestream.errors import ConfigError

if TYPE_CHECKING:
    from facestream.config import Settings

ROLES = ("viewer", "admin")
COOKIE = "fs_session"
SESSION_S = 12 * 3600
_SCRYPT = {"n": 2**14, "r": 8, "p": 1}  # ~50 ms per check on this CPU: slow to guess, quick to log in
NAME_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")


@dataclass(frozen=True)
class User:
    name: str
    role: str

    @property
    def admin(self) -> bool:
        return self.role == "admin"


def _hash(password: str, salt: bytes) -> bytes:
    return hashlib.scrypt(password.encode(), salt=salt, dklen=32, **_SCRYPT)


def _write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path``, owner-only, atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(path.parent, 0o700)
    tmp = path.with_suffix(path.suffix + ".part")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


class Users:
    """The users file (``<data_dir>/dashboard/users.json``): name -> role, salt, scrypt hash."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.path = self.folder / "users.json"
        self.first_password = self.folder / "admin.password"

    @classmethod
    def of(cls, settings: Settings) -> Users:
        """The users of the dashboard run with ``settings`` (``<data_dir>/dashboard``)."""
        return cls(settings.data_dir / "dashboard")

    def _load(self) -> dict[str, dict[str, str]]:
        if not self.path.exists():
            return {}
        try:
            return json.loads(self.path.read_text())["users"]
        except (ValueError, KeyError, TypeError):
            raise ConfigError(f"{self.path} is not a facestream users file") from None

    def _save(self, users: dict[str, dict[str, str]]) -> None:
        _write_private(self.path, json.dumps({"users": users}, indent=1))

    def ensure_admin(self) -> Path | None:
        """On first run (no users), create ``admin`` with a random password written to an owner-only
        file; returns that file (None when users exist)."""
        if self._load():
            return None
        password = secrets.token_urlsafe(15)
        self.set("admin", password, "admin")
        _write_private(self.first_password, password + "\n")
        return self.first_password

    def set(self, name: str, password: str, role: str | None = None) -> None:
        """Create a user or change their password (and role, when given)."""
        if not name or not set(name) <= NAME_CHARS or len(name) > 64:
            raise ConfigError(f"user name {name!r}: use 1-64 letters, digits, '_', '.', '-'")
        if len(password) < 10:
            raise ConfigError("a dashboard password needs at least 10 characters")
        users = self._load()
        role = role or users.get(name, {}).get("role")
        if role not in ROLES:
            raise ConfigError(f"role {role!r}: choose one of {', '.join(ROLES)}" if role else f"no user {name!r}: "
                              "give --role to create one")
        salt = secrets.token_bytes(16)
        users[name] = {"role": role, "salt": salt.hex(), "hash": _hash(password, salt).hex()}
        self._save(users)
        if name == "admin" and self.first_password.exists():
            self.first_password.unlink()  # the generated password no longer works: no reason to keep it

    def remove(self, name: str) -> None:
        users = self._load()
        if name not in users:
            raise ConfigError(f"no user {name!r}")
        if users[name]["role"] == "admin" and sum(u["role"] == "admin" for u in users.values()) == 1:
            raise ConfigError(f"{name!r} is the last admin")
        del users[name]
        self._save(users)

    def list(self) -> list[User]:
        return [User(n, u["role"]) for n, u in sorted(self._load().items())]

    def check(self, name: str, password: str) -> User | None:
        """The user if ``password`` is theirs (compared in constant time; unknown names cost as much)."""
        u = self._load().get(name)
        salt = bytes.fromhex(u["salt"]) if u else b"\0" * 16
        good = hmac.compare_digest(_hash(password, salt).hex(), u["hash"] if u else "0" * 64)
        return User(name, u["role"]) if u and good else None


class Sessions:
    """Logged-in sessions: random token -> user and expiry, in memory."""

    def __init__(self) -> None:
        self._by_token: dict[str, tuple[User, float]] = {}

    def open(self, user: User) -> str:
        now = time.monotonic()
        self._by_token = {t: v for t, v in self._by_token.items() if v[1] > now}  # forget expired ones
        token = secrets.token_urlsafe(32)
        self._by_token[token] = (user, now + SESSION_S)
        return token

    def user(self, token: str | None) -> User | None:
        entry = self._by_token.get(token or "")
        if entry is None or entry[1] < time.monotonic():
            return None
        return entry[0]

    def close(self, token: str | None) -> None:
        self._by_token.pop(token or "", None)


def login_hint(users: Users, auth: bool) -> str:
    """What to tell someone starting the dashboard about logging in (never the password itself)."""
    if not auth:
        return "WARNING: --no-auth: anyone on this machine is admin"
    if users.first_password.exists():
        return f"log in as admin with the password in {users.first_password} (then: facestream users passwd admin)"
    return "log in with a dashboard user (facestream users list)"
