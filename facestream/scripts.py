"""Lua scripts sent by their SHA1 (``EVALSHA``), the body only when the server does not have it yet.

A frame's commit runs one script per frame: sending its ~2.6 KB body every time costs the worker a larger
write and the server a SHA1 of it per call. Through any command caller (redis-py's ``execute_command``, a
cluster's, or RedisGears' ``execute``: kept valid Python 3.7), so the worker and the in-server gear share it.
"""

from __future__ import annotations

import hashlib
from typing import Any, Callable, Dict, Sequence

_SHAS = {}  # type: Dict[str, str]


def run(call: Callable[..., Any], lua: str, keys: Sequence[Any], args: Sequence[Any]) -> Any:
    """``EVALSHA`` of ``lua`` with ``keys`` and ``args``; ``EVAL`` (which loads it) if the server answers NOSCRIPT
    (a new or restarted server, another cluster node, ``SCRIPT FLUSH``)."""
    sha = _SHAS.get(lua)
    if sha is None:
        sha = _SHAS[lua] = hashlib.sha1(lua.encode()).hexdigest()
    try:
        return call("EVALSHA", sha, len(keys), *keys, *args)
    except Exception as e:  # redis-py's NoScriptError (its text: "No matching script"), or the gear's "NOSCRIPT ..."
        if "NOSCRIPT" not in str(e) and "no matching script" not in str(e).lower():
            raise
    return call("EVAL", lua, len(keys), *keys, *args)
