"""When Redis says no: one policy for every process (producers, workers, the dashboard, MQTT, the CLI).

A Redis that is alive can still refuse, for a while: memory full under ``maxmemory`` (``OOM``, the
setting of every managed Redis), persistence failing (``MISCONF``, a full disk), a replica that was
promoted or demoted (``READONLY``), a server loading its dataset after a restart (``LOADING``), a slow
script (``BUSY``), a cluster resharding or failing over (``TRYAGAIN``, ``CLUSTERDOWN``, ``MASTERDOWN``),
too few replicas for a write (``NOREPLICAS``). These :data:`CONDITIONS`, and Redis out of reach, are
waited out: the work that met them is retried later (a frame stays pending, a producer drops and counts
the frame it could not send, a side store is skipped and counted), and :class:`Refusals` says so once,
when the condition starts and when it ends, never a line or a traceback per frame. Every other error
(a wrong password, a missing module, a bug) is not a condition: one clear line and an exit code.

Kept valid Python 3.7 and free of redis-py (the in-server gear meets the same refusals, as plain errors
whose text starts with the code).
"""

from __future__ import annotations

import logging
import time
from typing import Dict, Optional

#: The refusals that pass, by Redis error code, with what they mean for the pipeline.
CONDITIONS = {
    "UNREACHABLE": "Redis is out of reach (down, restarting, or the network)",
    "OOM": "Redis memory is full (maxmemory): frames wait until memory is freed or raised",
    "MISCONF": "Redis cannot persist (MISCONF: a full disk, or an unwritable data dir) and refuses writes",
    "READONLY": "this Redis is a read-only replica (READONLY): point facestream at the master",
    "LOADING": "Redis is loading its dataset after a restart",
    "BUSY": "Redis is busy running a script",
    "TRYAGAIN": "the Redis Cluster is moving slots (TRYAGAIN)",
    "CLUSTERDOWN": "the Redis Cluster is down (CLUSTERDOWN)",
    "MASTERDOWN": "the master of this replica is down (MASTERDOWN)",
    "NOREPLICAS": "too few replicas acknowledge writes (NOREPLICAS)",
}
#: Exit status of a command stopped by a condition that passes (sysexits' EX_TEMPFAIL: try again later).
EXIT_TEMPFAIL = 75


def condition(error: BaseException) -> Optional[str]:
    """The code of the condition ``error`` reports (a key of :data:`CONDITIONS`), or None for any other error.

    redis-py keeps the code in ``status_code``; the gear's errors carry it as the first word of their text.
    Connection errors and timeouts (redis-py's, a cluster's) are ``UNREACHABLE``; a refused login is not."""
    code = getattr(error, "status_code", None) or str(error).split(" ", 1)[0]
    if code in CONDITIONS:
        return code
    return "UNREACHABLE" if _unreachable(error) else None


def _unreachable(error: BaseException) -> bool:
    names = {c.__name__ for c in type(error).__mro__}
    return bool(names & {"ConnectionError", "TimeoutError", "ClusterError", "SlotNotCoveredError"}) and not (
        names & {"AuthenticationError", "AuthorizationError"})


def explain(error: BaseException) -> str:
    """One line for a person: what the condition means, and Redis's own words."""
    code = condition(error)
    said = " ".join(str(error).split())[:200]
    return "%s (%s)" % (CONDITIONS[code], said) if code else said


class Refusals:
    """One process's (or one store's) account of Redis refusing: counts by condition, and one log line when a
    condition starts and one when it ends."""

    def __init__(self, log: logging.Logger, what: str):
        self.log, self.what = log, what
        self.counts: Dict[str, int] = {}
        self.current: Optional[str] = None
        self._since, self._during = 0.0, 0

    def refused(self, error: BaseException) -> Optional[str]:
        """Count ``error`` if it is a condition (then said once, at its start) and return its code; None otherwise."""
        code = condition(error)
        if code is None:
            return None
        self.counts[code] = self.counts.get(code, 0) + 1
        if code != self.current:
            self.log.warning("%s: %s; waiting it out (said once: a line when it ends)", self.what, explain(error))
            self.current, self._since, self._during = code, time.monotonic(), 0
        self._during += 1
        return code

    def accepted(self) -> None:
        """Redis answered: if a condition was on, say it ended and what it cost."""
        if self.current is not None:
            self.log.warning("%s: Redis accepts again after %.0f s of %s (%d refusals)", self.what,
                             time.monotonic() - self._since, self.current, self._during)
            self.current = None

    @property
    def total(self) -> int:
        return sum(self.counts.values())
