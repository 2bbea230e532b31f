"""Waiting in loops that must outlive a Redis restart or a dropped camera: backoff, and chores due every so often."""

from __future__ import annotations

import logging
import time
from typing import Callable, Optional

import redis
from redis.exceptions import ClusterError, SlotNotCoveredError, TryAgainError

from facestream.refusals import Refusals

#: What a loop waits out: Redis down or restarting, or a Redis Cluster between a master's death and its
#: replica's promotion (redis-py's RedisCluster retries a few times, then raises one of the latter).
UNREACHABLE = (redis.ConnectionError, redis.TimeoutError, ClusterError, SlotNotCoveredError, TryAgainError)


class Backoff:
    """Doubling waits from ``start`` up to ``cap`` seconds; ``reset()`` after a success."""

    def __init__(self, start: float = 0.5, cap: float = 10.0, sleep: Callable[[float], None] = time.sleep):
        self.start, self.cap, self.sleep = start, cap, sleep
        self.delay = start

    def wait(self, log: logging.Logger, why: object) -> None:
        log.warning("%s; retrying in %.1f s", why, self.delay)
        self.pause()

    def pause(self) -> None:
        self.sleep(self.delay)
        self.delay = min(self.delay * 2, self.cap)

    def reset(self) -> None:
        self.delay = self.start


class Every:
    """A chore due at most every ``period_s`` seconds of the monotonic clock (due at once the first time)."""

    def __init__(self, period_s: float):
        self.period_s, self.next = period_s, 0.0

    def due(self, now: float) -> bool:
        if now < self.next:
            return False
        self.next = now + self.period_s
        return True


class Patience:
    """How a loop outlasts Redis: a condition (:mod:`facestream.refusals`: Redis out of reach or refusing for a
    while) is said once and waited out with doubling pauses; any other error is not waited out."""

    def __init__(self, log: logging.Logger, what: str, start: float = 0.5, cap: float = 10.0,
                 sleep: Callable[[float], object] = time.sleep):
        self.refusals = Refusals(log, what)
        self.backoff = Backoff(start, cap, sleep)

    def waited(self, error: BaseException) -> Optional[str]:
        """If ``error`` is a condition: count it, say so if it is new, pause, and return its code; else None."""
        code = self.refusals.refused(error)
        if code is not None:
            self.backoff.pause()
        return code

    def ok(self) -> None:
        """Redis answered: pauses start short again, and a condition that was on is said to have ended."""
        self.backoff.reset()
        self.refusals.accepted()
