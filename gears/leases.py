"""Camera leases: with tracking, each camera's frames are read by one worker at a time, in order.

A lease is ``fs:lease:<camera>`` = the worker's name, set with ``SET NX PX camera_lease_ms`` and
renewed by its holder while it lives (every third of the lease). Cameras are shared out evenly:
each worker holds at most ``ceil(cameras / live workers)``, gives back any above that, and takes
free ones up to it; a worker short of its share while another holds more looks again within
:data:`SHORT_LOOK_S`, so a camera given back (a worker started beside it) moves in a fraction of a second,
not a third of a lease. A dead worker's leases expire, and the survivors take its cameras over.
"""

from __future__ import annotations

import logging

import redis

from facestream.keys import Keys

log = logging.getLogger("facestream.worker")
SHORT_LOOK_S = 0.2  # a worker short of its share of cameras looks for a free one this often (a SET NX each)

# KEYS: lease; ARGV: owner, ttl_ms. Extends the lease if this owner holds it; 1 if so.
RENEW_LUA = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""
# KEYS: lease; ARGV: owner. Deletes the lease if this owner holds it.
RELEASE_LUA = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class CameraLeases:
    """The camera streams one worker holds the lease of."""

    def __init__(self, client: redis.Redis, keys: Keys, owner: str, ttl_ms: int):
        self.r, self.keys, self.owner, self.ttl_ms = client, keys, owner, ttl_ms
        self._renew = client.register_script(RENEW_LUA)
        self._release = client.register_script(RELEASE_LUA)

    def key(self, stream: str) -> str:
        return self.keys.lease(self.keys.camera_of(stream))

    def renew(self, stream: str) -> bool:
        """Extend the lease of ``stream``; False if this worker no longer holds it."""
        return bool(self._renew(keys=[self.key(stream)], args=[self.owner, self.ttl_ms]))

    def take(self, stream: str) -> bool:
        """Take the lease of ``stream`` if nobody holds it."""
        return bool(self.r.set(self.key(stream), self.owner, nx=True, px=self.ttl_ms))

    def release(self, stream: str) -> None:
        """Give the lease of ``stream`` back (only if this worker holds it)."""
        self._release(keys=[self.key(stream)], args=[self.owner])

    def rebalance(self, held: list[str], streams: list[str]) -> tuple[list[str], list[str], bool]:
        """Renew ``held``, give back those over the fair share, take free ones up to it.

        Returns (streams no longer held, streams newly taken, whether this worker is short of its share while
        another holds more: that one gives a camera back at its next renewal, so look again soon); the caller
        keeps per-camera state.
        """
        lost = [s for s in held if s not in streams or not self.renew(s)]
        kept = [s for s in held if s not in lost]
        workers = max(1, sum(1 for _ in self.r.scan_iter(match=self.keys.worker_pattern, count=1000)))
        share = -(-len(streams) // workers)
        for stream in kept[share:]:
            self.release(stream)
            log.info("%d workers share %d cameras: gave back %s", workers, len(streams), stream)
        lost += kept[share:]
        kept = kept[:share]
        taken = []
        for stream in streams:
            if len(kept) + len(taken) >= share:
                break
            if stream not in kept and self.take(stream):
                taken.append(stream)
                log.info("reading %s (camera lease held for %d ms, renewed while alive)", stream, self.ttl_ms)
        return lost, taken, len(kept) + len(taken) < share and self._someone_over(streams, share)

    def _someone_over(self, streams: list[str], share: int) -> bool:
        """Whether another worker holds more than ``share`` cameras (it gives one back at its next renewal)."""
        held: dict[bytes, int] = {}
        for owner in [self.r.get(self.key(s)) for s in streams]:  # one key per slot on a cluster: no MGET
            if owner is not None:
                held[owner] = held.get(owner, 0) + 1
        return any(n > share for n in held.values())
