"""Waiting in loops that must outlive a Redis restart or a dropped camera: backoff, and chores due every so often."""

from __future__ import annotations

import logging
import time
from typing import Callable

import redis
from redis.exceptions import ClusterError, SlotNotCoveredError, TryAgainError

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
