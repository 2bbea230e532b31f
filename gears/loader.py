"""``facestream gears load``: send the in-server gear to a RedisGears 1.2 server with RG.PYEXECUTE.

gearsclient (redisgears-py) is not used: it pins redis==3.5.3 and cloudpickles functions with the
client's Python, which must then equal the server's 3.7. Sending the script text works with any
client and keeps the gear readable.
"""

from __future__ import annotations

import json
from pathlib import Path

import redis

from facestream.config import Settings
from facestream.errors import FacestreamError

SCRIPT = Path(__file__).with_name("gear_script.py")
SESSION_ID = "facestream"


def render(settings: Settings) -> str:
    """The gear script with the given settings baked in (the server has no facestream config)."""
    values = json.loads(settings.model_dump_json(exclude={"redis_url", "data_dir"}))
    values["data_dir"] = ".facestream"  # the server's own, under its working directory (the converted model goes there)
    text = SCRIPT.read_text()
    marker = 'SETTINGS_JSON = "{}"'
    if marker not in text:
        raise FacestreamError(f"{SCRIPT} lost its {marker!r} line")
    return text.replace(marker, f"SETTINGS_JSON = {json.dumps(json.dumps(values))}", 1)


def load(client: redis.Redis, settings: Settings) -> str:
    """Register (or atomically replace) the gear on the server; returns the server's reply."""
    try:
        reply = client.execute_command("RG.PYEXECUTE", render(settings), "ID", SESSION_ID, "UPGRADE")
    except redis.ResponseError as e:
        if "unknown command" in str(e).lower():
            raise FacestreamError(
                "this Redis has no RedisGears 1.x (RG.PYEXECUTE is unknown). Run the in-server variant on the "
                "RedisGears 1.2 + RediSearch 2.6 image (docker compose --profile gears up), "
                "or use the default runner: facestream work"
            ) from None
        raise FacestreamError(f"RG.PYEXECUTE failed: {e}") from None
    return reply.decode() if isinstance(reply, bytes) else str(reply)
