"""Least-privilege Redis users, one per role, so a leaked camera credential cannot read the gallery.

- ``producer``: XADD to the frame streams, nothing else (a camera box);
- ``worker``: read frames and the gallery, write results/events/dead letters/leases (``facestream work``);
- ``reader``: read-only (dashboard, ``facestream consume`` without ``--group``, ``facestream status``);
- ``admin``: everything under the key prefix but Redis's dangerous commands (enrollment, people, eval).

Rules are Redis ACL rules; :func:`acl_file` writes them as an ``--aclfile`` (docker compose) and
:func:`apply` sends them to a running server with ACL SETUSER. Passwords are generated here and kept
in owner-only files, never printed.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import redis

from facestream.errors import ConfigError
from facestream.keys import Keys

ROLES = ("admin", "worker", "producer", "reader")
_CONNECTION = "+@connection"  # AUTH, HELLO, PING, CLIENT SETINFO/SETNAME: what clients send on connect
#: What redis-py's RedisCluster sends to learn and follow the slot map (harmless on a single server).
_CLUSTER = ["+cluster|slots", "+cluster|shards", "+cluster|nodes", "+asking", "+readonly"]


def rules(role: str, keys: Keys) -> list[str]:
    """The ACL rules of ``role`` for the keys under ``keys.prefix`` (without user name and password)."""
    mine = f"~{keys.prefix}:*"
    by_role = {
        "admin": [mine, "+@all", "-@dangerous", "+info"],
        "worker": [mine, "-@all", "+@read", "+@write", "+@stream", "+@scripting", "+ft.search", "+ft.info", "+ft.create",
                   "+ft._list", "+ft.dropindex", _CONNECTION,  # (sightings: time buckets made, listed, dropped)
                   "+time", "-@dangerous"],  # TIME: the presence sweep's script asks the server's clock
        "producer": [f"~{keys.frames_prefix}*", "-@all", "+xadd", _CONNECTION],
        "reader": [mine, "-@all", "+@read", "+ft.info", "+ft.search", "+ft._list", _CONNECTION, "-@dangerous"],
    }
    if role not in by_role:
        raise ConfigError(f"unknown role {role!r}; choose one of {', '.join(ROLES)}")
    return ["reset", "on", "resetchannels", *by_role[role], *_CLUSTER]


def user_name(role: str, keys: Keys) -> str:
    return f"{keys.prefix}-{role}"


def new_password(path: Path) -> str:
    """Generate a password into ``path`` (owner-only), replacing any there."""
    path.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(path.parent, 0o700)
    password = secrets.token_urlsafe(24)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(password)
    return password


def acl_file(out: Path, keys: Keys, roles: tuple[str, ...] = ROLES) -> Path:
    """Write ``out/users.acl`` (every role, the default user disabled) and ``out/<role>`` password files."""
    lines = ["user default off resetkeys -@all"]
    for role in roles:
        password = new_password(out / role)
        lines.append(" ".join(["user", user_name(role, keys), *rules(role, keys), f">{password}"]))
    path = out / "users.acl"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write("\n".join(lines) + "\n")
    return path


def apply(client: redis.Redis | redis.RedisCluster, keys: Keys, role: str, password_file: Path,
          password: str | None = None) -> str:
    """Create or reset the user of ``role`` on a running server (every node of a cluster), its password
    ``password`` or a new one in ``password_file``."""
    name = user_name(role, keys)
    password = password or new_password(password_file)
    where = {"target_nodes": redis.RedisCluster.ALL_NODES} if isinstance(client, redis.RedisCluster) else {}
    client.execute_command("ACL", "SETUSER", name, *rules(role, keys), f">{password}", **where)
    return name
