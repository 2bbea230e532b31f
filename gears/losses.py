"""Frames trimmed from a camera stream before any worker read them, or skipped to stay live: counted,
never silent.

A camera stream is capped (``MAXLEN ~ frames_maxlen``); when workers fall further behind than
that, the oldest unread frames are trimmed away and can never be answered. Redis keeps what is
needed to count them exactly: ``entries-added - length`` entries have left the stream, and the
group has read ``entries-read`` of all entries ever added. If more have left than the group has
read, the difference was trimmed unread. :data:`ACCOUNT_LUA` adds it to the camera's ``fs:lost:{cam}`` and moves the group's read counter past them, atomically, so each is counted once.
"""

from __future__ import annotations

import redis

from facestream.commands import group_info
from facestream.keys import Keys

# KEYS: frame stream, the camera's loss counter; ARGV: group. Returns the frames newly counted as lost.
ACCOUNT_LUA = """
local function map(flat)
  local m = {}
  for i = 1, #flat, 2 do m[flat[i]] = flat[i + 1] end
  return m
end
local s = map(redis.call('XINFO', 'STREAM', KEYS[1]))
local g
for _, grp in ipairs(redis.call('XINFO', 'GROUPS', KEYS[1])) do
  local m = map(grp)
  if m['name'] == ARGV[1] then g = m end
end
if not g or type(s['entries-added']) ~= 'number' then return 0 end
local read = g['entries-read']
if type(read) ~= 'number' then
  if g['last-delivered-id'] ~= '0-0' then return 0 end  -- unknown: cannot tell (a group made by another tool)
  read = 0  -- nothing delivered yet
end
local left = s['entries-added'] - s['length']
local lost = left - read
if lost <= 0 then return 0 end
redis.call('XGROUP', 'SETID', KEYS[1], ARGV[1], g['last-delivered-id'], 'ENTRIESREAD', left)
redis.call('INCRBY', KEYS[2], lost)
return lost
"""


class LossCounter:
    """Counts, per camera stream, the frames trimmed before the group read them (see module doc)."""

    def __init__(self, client: redis.Redis, keys: Keys, group: str):
        self.keys, self.group = keys, group
        self._account = client.register_script(ACCOUNT_LUA)

    def account(self, stream: str) -> int:
        """Count the frames of ``stream`` trimmed unread since the last look; returns how many."""
        try:
            return int(self._account(keys=[stream, self.keys.lost(self.keys.camera_of(stream))], args=[self.group]))
        except redis.ResponseError as e:
            if "no such key" in str(e).lower() or "NOGROUP" in str(e):
                return 0  # stream deleted meanwhile; discover() notices
            raise


def skip_behind(client: redis.Redis, stream: str, group: str, max_lag: int) -> int:
    """Move ``group`` past the frames of ``stream`` more than ``max_lag`` behind the newest (lag_policy
    'latest'); returns how many it skipped."""
    g = group_info(client, stream, group)
    lag = g.get("lag") if g else None
    if lag is None or int(lag) <= max_lag:
        return 0
    newest = client.xrevrange(stream, count=max_lag + 1)
    if len(newest) <= max_lag:
        return 0
    added = int(client.xinfo_stream(stream)["entries-added"])
    # ENTRIESREAD keeps the group's read counter exact, so trimmed frames are still counted.
    client.execute_command("XGROUP", "SETID", stream, group, newest[-1][0], "ENTRIESREAD", added - max_lag)
    return int(lag) - max_lag
