"""Exponential backoff for loops that must outlive a Redis restart or a dropped camera."""

from __future__ import annotations

import logging
import time
from typing import Callable


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
