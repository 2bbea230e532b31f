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

#: Run once before registering: the gear swallows nothing at import time, so a Gears Python without
#: facestream or one of its packages would otherwise fail every frame inside the server, unseen.
PREFLIGHT = """
def check(_shard):
    try:
        import facestream.gears.step, facestream.models.vision.analyzer, facestream.models.vision.retinaface
        return "ok"
    except Exception as e:
        return "%s: %s" % (type(e).__name__, e)
GB("ShardsIDReader").map(check).run()
"""


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
        _preflight(client)
        reply = client.execute_command("RG.PYEXECUTE", render(settings), "ID", SESSION_ID, "UPGRADE")
    except redis.ResponseError as e:
        if "unknown command" in str(e).lower():
            raise FacestreamError(
                "this Redis has no RedisGears 1.x (RG.PYEXECUTE is unknown). Run the in-server variant on the "
                "RedisGears 1.2 + RediSearch 2.6 image (docker compose -f docker-compose.gears.yml up) or on a "
                "RedisGears build of your own (facestream redis --gears), "
                "or use the default runner: facestream work"
            ) from None
        raise FacestreamError(f"RG.PYEXECUTE failed: {e}") from None
    return reply.decode() if isinstance(reply, bytes) else str(reply)


def _preflight(client: redis.Redis) -> None:
    """Refuse in one line if the server's Gears Python cannot import the gear's code and packages."""
    results, errors = client.execute_command("RG.PYEXECUTE", PREFLIGHT)
    said = [x.decode() if isinstance(x, bytes) else str(x) for x in [*results, *errors]]
    if said != ["ok"] * len(results) or not results:
        raise FacestreamError("the server's RedisGears Python cannot run the gear: " + " | ".join(said)[-400:]
                              + " (install facestream's gear packages into it; see docs/gears.md)")
