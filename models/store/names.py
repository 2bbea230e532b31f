"""Enrolled people's display names as the pipeline shows them (``HGET <prefix>:person:<id> name``).

Kept valid on RedisGears 1.2's Python 3.7 (the in-server gear's step reads names through it); ``call``
runs one Redis command (redis-py's ``execute_command``, or the gear's ``execute``).
"""

from __future__ import annotations

import time
from typing import Any, Callable, Dict

from facestream.keys import Keys
from facestream.replies import text


class Names:
    """person_id → display name (the id itself if it has none), re-read from Redis at most every ``ttl_s``
    (renames show up quickly)."""

    def __init__(self, call: Callable[..., Any], keys: Keys, ttl_s: float = 5.0):
        self.call, self.keys, self.ttl_s = call, keys, ttl_s
        self._names: Dict[str, str] = {}
        self._at = -1e9

    def get(self, person_id: str) -> str:
        if time.monotonic() - self._at > self.ttl_s:
            self._names, self._at = {}, time.monotonic()
        if person_id not in self._names:
            name = self.call("HGET", self.keys.person(person_id), "name")
            self._names[person_id] = text(name) if name is not None else person_id
        return self._names[person_id]
