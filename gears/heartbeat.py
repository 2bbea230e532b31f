"""A worker's counters, and the heartbeat that publishes them (``fs:worker:<name>``, read by
``facestream status``) together with the Prometheus gauges of the streams it follows; with each beat the
worker also ends the presence of its cameras that fell silent (:class:`SilentCameras`)."""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass

import redis

from facestream.commands import group_info
from facestream.gears import metrics
from facestream.gears.step import Outcome
from facestream.keys import Keys
from facestream.presence import sweep
from facestream.refusals import condition

log = logging.getLogger("facestream.worker")

#: A heartbeat lives this long: a worker that stops beating drops out of `status` and the lease share.
BEAT_TTL_S = 15


@dataclass
class Counts:
    """What one worker has done since it started."""

    results: int = 0
    deadletters: int = 0
    duplicates: int = 0
    skipped: int = 0  # lag_policy=latest skipped them
    unchanged: int = 0  # answered without a search: the scene had not changed (among the results)
    lost: int = 0  # trimmed from a stream before any worker read them (counted by this worker)
    errors: int = 0  # raised, left pending for a retry
    unstored: int = 0  # visitor/sighting writes skipped or failed (Redis refusing, or an error after the commit)
    refusals: int = 0  # times Redis was out of reach or refused (facestream.refusals), waited out
    bad_streams: int = 0  # keys under the frames prefix that are not valid camera ids (now)

    def add(self, camera: str, outcome: Outcome) -> None:
        """Count one answered frame ('result', 'deadletter' or 'duplicate') and its stage timings."""
        if outcome.kind == "result":
            self.results += 1
            self.unstored += outcome.unstored
            self.unchanged += outcome.unchanged
            metrics.UNSTORED.inc(outcome.unstored)
            if outcome.unchanged:
                metrics.UNCHANGED.labels(camera).inc()
            for stage, ms in outcome.timings.items():
                metrics.STAGE_SECONDS.labels(stage).observe(ms / 1000)
        elif outcome.kind == "deadletter":
            self.deadletters += 1
        else:
            self.duplicates += 1
        metrics.FRAMES_OUT.labels(camera, outcome.kind).inc()


def beat(client: redis.Redis, keys: Keys, name: str, counts: Counts, streams: list[str], group: str,
         policy: str = "") -> None:
    """Publish ``counts`` and the decision in force under the worker's key (expiring if it dies) and refresh
    the stream gauges."""
    key = keys.worker(name)
    client.hset(key, mapping={**asdict(counts), "streams": len(streams), "seen_ms": int(time.time() * 1000),
                              "policy": policy})
    client.expire(key, BEAT_TTL_S)
    for stream in streams:
        g = group_info(client, stream, group)
        if g:
            cam = keys.camera_of(stream)
            metrics.LAG.labels(cam).set(int(g.get("lag") or 0))
            metrics.PENDING.labels(cam).set(int(g["pending"]))
    metrics.DEADLETTERS.set(sum(client.xlen(keys.deadletter(keys.camera_of(s))) for s in streams))


class SilentCameras:
    """Each beat, the people of the worker's cameras that fell silent leave (:func:`facestream.presence.sweep`).
    A refusal of the sweep itself (an ACL of an older release without TIME) is said once, not fatal: frames are
    still answered."""

    def __init__(self, client: redis.Redis, keys: Keys, absent_after_s: float, events_maxlen: int):
        self.r, self.keys, self.absent_after_s, self.events_maxlen = client, keys, absent_after_s, events_maxlen
        self.said = ""

    def sweep(self, streams: list[str]) -> None:
        try:
            sweep(self.r.execute_command, self.keys, [self.keys.camera_of(s) for s in streams], self.absent_after_s,
                  self.events_maxlen)
        except redis.ResponseError as e:
            if condition(e) is not None:
                raise  # Redis refusing writes: waited out by the worker's loop, said once there
            if str(e) != self.said:
                log.warning("cannot end silent cameras' presence (frames are still answered): %s", e)
                self.said = str(e)
