"""Presence that ends when a camera goes silent.

Who is in view on a camera is decided as its frames are answered (the commit script in
:mod:`facestream.gears.step`): someone unseen for ``absent_after_s`` of camera time leaves. A camera whose
frames stop being answered (its producer dead, the camera unreachable, every worker gone) answers no frame
that could say so: without more, its people would stay in view for ever (and "Alice is home" with them).

So :func:`sweep` ends it: when a camera's last answer (the id of the newest entry of its results stream,
Redis's clock) is older than ``absent_after_s``, everyone listed on it leaves, with ``reason``
``camera_silent`` and the camera time they were last seen. One script does the check, the removal and the
events, so a sweep run by several parties at once (every worker's heartbeat, the MQTT bridge) makes each
leave exactly once; a camera that comes back makes its people appear again. Its keys share the camera's
hash tag: one slot, also on a Redis Cluster.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterable

from facestream.keys import Keys
from facestream.scripts import run as run_script

#: Why someone left: unseen on the camera's frames for ``absent_after_s``, or the camera fell silent.
UNSEEN, CAMERA_SILENT = "unseen", "camera_silent"

# KEYS: presence hash, events stream, results stream. ARGV: silent_ms, camera, events_maxlen.
# Returns {people who left, ms since the camera's last answer (-1: never answered)}.
SWEEP_LUA = """
local now = redis.call('TIME')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local newest = redis.call('XREVRANGE', KEYS[3], '+', '-', 'COUNT', 1)
local age = -1
if #newest > 0 then age = now_ms - tonumber(string.match(newest[1][1], '^(%d+)-')) end
if age >= 0 and age <= tonumber(ARGV[1]) then return {0, age} end
local present = redis.call('HGETALL', KEYS[1])
local left = 0
for i = 1, #present, 2 do
  redis.call('HDEL', KEYS[1], present[i])
  local last_ts, name = string.match(present[i + 1], '^(%d+)|(.*)$')
  if tonumber(last_ts) then
    redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[3], '*', 'kind', 'leave', 'camera', ARGV[2],
               'person_id', present[i], 'name', name, 'ts_ms', last_ts, 'frame_id', '', 'reason', 'camera_silent')
    left = left + 1
  end
end
return {left, age}
"""


@dataclass(frozen=True)
class Swept:
    camera: str
    left: int  # people who left because the camera fell silent (this sweep)
    age_ms: int  # since the camera's last answered frame (-1: never answered)
    silent_ms: int

    @property
    def online(self) -> bool:
        """Whether the camera's frames are being answered (its producer and a worker alive)."""
        return 0 <= self.age_ms <= self.silent_ms


def sweep(call: Callable[..., Any], keys: Keys, cameras: Iterable[str], absent_after_s: float,
          events_maxlen: int) -> list[Swept]:
    """End the presence of everyone on each of ``cameras`` that fell silent (see the module doc); ``call`` runs
    one command (redis-py's ``execute_command``, on one server or a cluster)."""
    silent_ms, out = int(absent_after_s * 1000), []
    for camera in cameras:
        left, age = run_script(call, SWEEP_LUA, [keys.presence(camera), keys.events(camera), keys.results(camera)],
                                [silent_ms, camera, events_maxlen])
        out.append(Swept(camera, int(left), int(age), silent_ms))
    return out
