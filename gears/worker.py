"""``facestream work``: runs the gear step over every camera's frame stream through a consumer group.

At-least-once delivery with exactly-once answers: frames are read with XREADGROUP, answered and
XACKed in one atomic commit (see :mod:`facestream.gears.step`), frames left pending by a crashed worker are
taken over with XAUTOCLAIM, and a frame delivered ``max_deliveries`` times without an answer is
dead-lettered. Any number of workers, on any hosts, share the load.

With ``tracking`` on (the default) faces are tracked across frames (:mod:`facestream.gears.tracks`), which
needs a camera's frames in order: each camera is then leased to one worker at a time
(``fs:lease:<camera>``, renewed while the worker lives; cameras are shared out evenly), and that worker
decodes and detects a batch of frames in ``detect_threads`` threads while it tracks, embeds and commits them in order.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
from concurrent.futures import Future, wait
from dataclasses import dataclass
from typing import Any, Optional, Union

import redis

from facestream.commands import cameras, ensure_group
from facestream.config import Settings
from facestream.errors import BadFrame
from facestream.feed import id_key, read
from facestream.gears import metrics
from facestream.gears.heartbeat import Counts, SilentCameras, beat
from facestream.gears.leases import SHORT_LOOK_S, CameraLeases
from facestream.gears.losses import LossCounter, skip_behind
from facestream.gears.step import Answer, FrameEntry, Outcome, Prepared, Step
from facestream.gears.tracks import CameraTracks
from facestream.keys import Keys
from facestream.models.store.strangers import SiteStrangers
from facestream.models.vision.analyzer import FaceAnalyzer, detection_pool
from facestream.models.vision.scan import CameraScan
from facestream.records import DeadLetter
from facestream.replies import text
from facestream.refusals import condition
from facestream.retry import Every, Patience

log = logging.getLogger("facestream.worker")


@dataclass
class InHand:
    """A frame read and not yet delivered: its entry, its detection ahead in a thread (None: done when finished)."""

    entry: FrameEntry
    detected: Optional[Future[Prepared]] = None
    answer: Union[Answer, DeadLetter, None] = None  # once answered (kept while Redis refuses its commit)


@dataclass
class Camera:
    """What this worker keeps of one camera it reads (dropped when its lease moves to another worker)."""

    tracks: Optional[CameraTracks]  # with tracking
    scan: Optional[CameraScan]  # balanced profile


class Worker:
    """One consumer in the group, reading every camera's ``fs:frames:{cam}`` stream (or, with tracking, those it leases)."""

    def __init__(self, client: redis.Redis | redis.RedisCluster, settings: Settings, analyzer: FaceAnalyzer,
                 name: str | None = None, index: redis.Redis | None = None):
        self.r, self.s = client, settings  # the stream tier; ``index``: the index tier's, when it is another server
        self.keys = Keys(settings.key_prefix)
        self.name = name or f"{socket.gethostname()}-{os.getpid()}"
        self.step = Step(settings, analyzer, client.execute_command, self.name, (index or client).execute_command)
        self.streams: list[str] = []  # every camera stream
        self.cameras: dict[str, Camera] = {}  # what it keeps per camera read (with tracking: the cameras it leases)
        self.counts = Counts()
        self._stop, self._stopped = False, threading.Event()
        self._discover = Every(settings.discover_interval_s)
        self._beat = Every(2.0)
        self._lease = Every(settings.camera_lease_ms / 3000)  # three renewals per lease: one may be late
        self._claim = Every(max(0.1, settings.claim_idle_ms / 2000))
        self._account = Every(0.5)  # lost frames and the lag: a few times a second, not every round (~1 ms each)
        self._learn = Every(settings.learn_every_s)
        self.strangers = SiteStrangers((index or client).execute_command, self.keys, settings)
        self._policy_said = ""  # the decision policy last logged
        self._silent = SilentCameras(client, self.keys, settings.absent_after_s, settings.events_maxlen)
        self._bad_keys: set[bytes] = set()
        self.leases = CameraLeases(client, self.keys, self.name, settings.camera_lease_ms)
        self.losses = LossCounter(client, self.keys, settings.group)
        self._in_hand: list[InHand] = []  # in the order read
        self._pool = detection_pool(analyzer, settings.detect_threads)  # models warm: ready means ready

    def camera(self, stream: str) -> Camera:
        """What this worker keeps of ``stream``'s camera. Without tracking it is made on the camera's first
        frame; with tracking when the lease is taken (a frame of a camera no longer leased gets none)."""
        cam = self.cameras.get(stream)
        if cam is None:
            cam = self._new_camera(tracked=False)
            return cam if self.s.tracking else self.cameras.setdefault(stream, cam)
        return cam

    def _new_camera(self, tracked: bool) -> Camera:
        profile = self.step.analyzer.profile
        return Camera(CameraTracks.of(self.s) if tracked else None, CameraScan(profile) if profile.scans else None)

    @property
    def reading(self) -> list[str]:
        """The streams this worker reads: all of them, or with tracking the cameras it leases."""
        return [s for s in self.streams if s in self.cameras] if self.s.tracking else self.streams

    # --- lifecycle ---------------------------------------------------------------------------------
    def stop(self, *_: Any) -> None:
        """Finish the frames in hand, then return from :meth:`run` (SIGTERM/SIGINT handler)."""
        self._stop = True
        self._stopped.set()  # wakes a retry wait at once

    def install_signal_handlers(self) -> None:
        signal.signal(signal.SIGTERM, self.stop)
        signal.signal(signal.SIGINT, self.stop)

    def run(self, max_idle_s: float | None = None) -> Counts:
        """Process frames until stopped (or, with ``max_idle_s``, until no frame came for that long). Redis out
        of reach or refusing (:mod:`facestream.refusals`) is waited out: said once, frames kept in hand."""
        last_work = time.monotonic()
        patience = Patience(log, f"worker {self.name}", sleep=self._stopped.wait)  # a stop ends a pause at once
        while not self._stop:
            try:
                did = self.run_once()
                patience.ok()
            except Exception as e:  # noqa: BLE001 - a condition is waited out; anything else is raised
                code = patience.waited(e)
                if code is None:
                    raise
                self.counts.refusals += 1
                metrics.REFUSALS.labels(code).inc()
                continue
            now = time.monotonic()
            if did:
                last_work = now
            elif max_idle_s is not None and now - last_work > max_idle_s:
                break
        try:
            self.flush()  # the frames in hand (Ctrl-C/SIGTERM: finished, not left for a takeover)
        except Exception as e:  # noqa: BLE001 - refused: said once; the frames in hand stay pending for a takeover
            if patience.refusals.refused(e) is None:
                raise
        self._leave_group()
        if self._pool is not None:
            self._pool.shutdown()
        return self.counts

    def run_once(self) -> int:
        """One round: housekeeping when due, then one blocking read. Returns frames handled."""
        now = time.monotonic()
        if self._discover.due(now):
            self.discover()
        if self._beat.due(now):
            self.heartbeat()
        if self.s.tracking and self._lease.due(now):
            self.lease_cameras()
        if self._learn.due(now):
            self.learn_strangers()
        handled = self.reclaim() if self._claim.due(now) else 0
        streams = self.reading
        if not streams:
            time.sleep(min(self.s.block_ms / 1000, self.s.discover_interval_s))
            return handled
        if self._account.due(now):
            if self.s.lag_policy == "latest":
                self.skip_lag()
            for stream in streams:
                self.count_lost(stream)
        # Frames go to the detection threads as soon as read; this thread finishes them (track, embed, commit) in
        # order as their detection completes, reading in between: a frame arriving meanwhile starts detection at once.
        handled += self._read(streams)
        handled += self._finish_ready()
        return handled

    def _read(self, streams: list[str]) -> int:
        """Read what has arrived (waiting up to ``block_ms`` when nothing is in hand, a few ms while the oldest
        frame in hand is still being detected) and start its detection. Returns frames read."""
        oldest = self._in_hand[0].detected if self._in_hand else None
        if oldest is not None and len(self._in_hand) >= 2 * self.s.detect_threads:
            wait([oldest])  # enough in hand: wait for the oldest instead of reading more
            return 0
        if not self._in_hand:
            block: int | None = self.s.block_ms
        else:  # frames in hand: take what has arrived, or wait a few ms while the oldest is being detected
            block = None if oldest is None or oldest.done() else 5
        reply = read(self.r, {k: ">" for k in streams}, self.s.read_count, block, (self.s.group, self.name))
        for stream, entries in reply:
            for entry_id, fields in entries:
                entry = FrameEntry(text(stream), text(entry_id), fields or {})
                self._in_hand.append(InHand(entry, self._detect_ahead(entry)))
        return sum(len(entries) for _, entries in reply)

    def _finish_ready(self, all_of_them: bool = False) -> int:
        """Finish, in the order read, the frames in hand whose detection is done (``all_of_them``: every one,
        waiting for their detection; without threads: all). A frame leaves the hand once delivered: if Redis
        refuses its commit it stays first, answered, and is delivered when Redis accepts again."""
        done = 0
        while self._in_hand and (all_of_them or self._in_hand[0].detected is None or self._in_hand[0].detected.done()):
            done += self._handle(self._in_hand[0])
            self._in_hand.pop(0)
        return done

    def flush(self) -> int:
        """Finish every frame in hand, in the order read (waiting for their detection)."""
        return self._finish_ready(all_of_them=True)

    def _detect_ahead(self, entry: FrameEntry) -> Future[Prepared] | None:
        """Decode and detect the frame in the thread pool (on a quiet camera, after a glance here in the order read:
        an unchanged frame is not handed over; a bad one is dead-lettered, in order, when finished). None: no pool."""
        if self._pool is None:
            return None
        scan, done = self.camera(entry.stream).scan, Future[Prepared]()
        if scan is None or not scan.quiet:
            return self._pool.submit(self.step.prepare, entry.stream, entry.entry_id, entry.fields, scan)
        try:
            glanced = self.step.glance(entry.stream, entry.entry_id, entry.fields, scan)
            if not glanced.unchanged:
                return self._pool.submit(self.step.search, glanced, scan)
            done.set_result(glanced)
        except BadFrame as e:
            done.set_exception(e)
        return done

    # --- discovery, claiming, lag ------------------------------------------------------------------
    def discover(self) -> None:
        """Join the group on every frame stream, including cameras that appeared since the last look.

        A key under the frames prefix that is not a valid camera id (not UTF-8, odd characters) is
        skipped and counted, never parsed: anyone who can XADD must not be able to stop the workers.
        """
        found_cameras, bad = cameras(self.r, self.keys)
        for raw in set(bad) - self._bad_keys:
            log.warning("ignoring stream %r: not a camera stream %s{<camera id>} (A-Z a-z 0-9 _ -, at most 64)",
                        raw, self.keys.frames_prefix)
        self._bad_keys = set(bad)
        self.counts.bad_streams = len(bad)
        found = [self.keys.frames(c) for c in found_cameras]
        for key in found:
            if key not in self.streams:
                ensure_group(self.r, key, self.s.group)
                log.info("following %s", key)
        self.streams = found
        if not self.s.tracking:  # (with tracking, leases say which cameras it keeps)
            for gone in set(self.cameras) - set(found):
                del self.cameras[gone]
        self.bound_streams()

    def bound_streams(self) -> None:
        """Cap every camera stream (writers other than ours may XADD without MAXLEN) and its dead letters.

        Frames this trims unread are counted by :meth:`count_lost` like any other trimmed frame.
        """
        for key in self.streams:
            self.r.xtrim(key, maxlen=self.s.frames_maxlen, approximate=True)
            self.r.xtrim(self.keys.deadletter(self.keys.camera_of(key)), maxlen=self.s.deadletter_maxlen,
                         approximate=False)

    def count_lost(self, stream: str) -> None:
        """Count the frames of ``stream`` trimmed before any worker read them (status, metrics, log)."""
        n = self.losses.account(stream)
        if n:
            self.counts.lost += n
            metrics.LOST.labels(self.keys.camera_of(stream)).inc(n)
            log.warning("%s: %d frames were trimmed before any worker read them (workers too far behind for "
                        "frames_maxlen=%d); counted as lost", stream, n, self.s.frames_maxlen)

    def lease_cameras(self) -> None:
        """Keep the cameras this worker leases, take free ones up to its fair share, give back extras."""
        lost, taken, short = self.leases.rebalance(list(self.cameras), self.streams)
        if short:  # a camera is about to be given back by a worker over its share: look again soon
            self._lease.next = min(self._lease.next, time.monotonic() + SHORT_LOOK_S)
        for stream in lost:  # its tracks and scan go with it: another worker has the camera now
            if self.cameras.pop(stream, None) is not None:
                log.info("no longer reading %s", stream)
        for stream in taken:
            self.cameras[stream] = self._new_camera(tracked=True)

    def reclaim(self) -> int:
        """Take over frames idle longer than claim_idle_ms (a crashed or stuck worker's), then answer them."""
        handled = 0
        for stream in self.reading:
            cursor = "0-0"
            while True:
                try:
                    cursor, claimed, deleted = self.r.xautoclaim(stream, self.s.group, self.name, self.s.claim_idle_ms,
                                                                 cursor, count=50)
                except redis.ResponseError as e:
                    if "NOGROUP" in str(e):
                        break  # stream deleted and re-created; discover() rejoins
                    raise
                for entry_id in deleted:  # trimmed by MAXLEN while pending: never processed
                    handled += self._dead(stream, text(entry_id), "trimmed from the stream before it was processed", 0)
                handled += self._answer_claimed(stream, [FrameEntry(stream, text(i), f or {}) for i, f in claimed
                                                         if i is not None])
                if text(cursor) == "0-0":
                    break
        return handled

    def _answer_claimed(self, stream: str, claimed: list[FrameEntry]) -> int:
        """Answer taken-over frames, or dead-letter those delivered more than ``max_deliveries`` times."""
        if not claimed:
            return 0
        counts = self._delivery_counts(stream, [e.entry_id for e in claimed])
        handled = 0
        for entry in claimed:
            entry.deliveries = counts.get(entry.entry_id, 1)
            if entry.deliveries > self.s.max_deliveries:
                handled += self._dead(stream, entry.entry_id, f"not answered after {entry.deliveries - 1} "
                                      "deliveries (a worker crashed or failed on it each time)", entry.deliveries - 1)
            else:
                handled += self._handle(InHand(entry))
        return handled

    def _delivery_counts(self, stream: str, ids: list[str]) -> dict[str, int]:
        rows = self.r.xpending_range(stream, self.s.group, min=min(ids, key=id_key), max=max(ids, key=id_key),
                                     count=len(ids) * 2 + 10, consumername=self.name)
        return {text(r["message_id"]): int(r["times_delivered"]) for r in rows}

    def skip_lag(self) -> None:
        """'latest' policy: move the group past frames more than max_lag_frames behind the newest (counted)."""
        for stream in self.reading:
            skipped = skip_behind(self.r, stream, self.s.group, self.s.max_lag_frames)
            if skipped:
                self.counts.skipped += skipped
                metrics.SKIPPED.labels(self.keys.camera_of(stream)).inc(skipped)
                log.warning("%s: skipped %d frames to stay live (lag_policy=latest)", stream, skipped)

    # --- per frame ---------------------------------------------------------------------------------
    def _handle(self, item: InHand) -> int:
        entry = item.entry
        camera = self.keys.camera_of(entry.stream)
        cam = self.camera(entry.stream)
        tracks = cam.tracks if entry.deliveries == 1 else None  # a redelivered frame is out of order
        try:
            if item.answer is None:
                metrics.FRAMES_IN.labels(camera).inc()
                item.answer = self.step.answer(entry, tracks, cam.scan,
                                               item.detected.result if item.detected is not None else None)
            outcome: Outcome = self.step.deliver(entry, self.s.group, item.answer)
        except Exception as e:
            if condition(e) is not None:  # Redis away or refusing: the frame waits in hand (run() waits it out)
                raise
            self.counts.errors += 1  # a bug or a model failure on this frame: left pending, it is retried
            log.exception("frame %s %s failed (delivery %d); it will be retried", entry.stream, entry.entry_id,
                          entry.deliveries)
            metrics.ERRORS.labels(camera, type(e).__name__).inc()
            return 0
        self.counts.add(camera, outcome)
        return 1

    def _dead(self, stream: str, entry_id: str, reason: str, deliveries: int) -> int:
        camera = self.keys.camera_of(stream)
        letter = DeadLetter(stream, entry_id, reason, camera, deliveries, self.name)
        wrote = self.step.commit_deadletter(stream, self.s.group, letter)
        self.counts.add(camera, Outcome("deadletter" if wrote else "duplicate"))
        return 1

    def learn_strangers(self) -> None:
        """Learn the site's recent strangers (one worker a period; the decision policy's log line says what changed)."""
        try:
            self.strangers.learn()
        except redis.ResponseError as e:
            if condition(e) is not None:
                raise  # waited out by run(), said once
            log.warning("learning the site's strangers failed (next try in %.0f s): %s", self.s.learn_every_s, e)

    def heartbeat(self) -> None:
        """Publish this worker's counters (read by `facestream status`); expires if the worker dies. Also
        log the decision policy when it changes (a new calibration, or a stored one that is malformed)."""
        current = self.step.policy.get()
        problem = self.step.policy.problem
        said = f"{problem}; deciding with the settings' policy" if problem else current.describe()
        beat(self.r, self.keys, self.name, self.counts, self.streams, self.s.group, said)
        self._silent.sweep(self.streams)  # a silent camera's people leave, even with no frame to say so
        if said != self._policy_said:
            (log.warning if problem else log.info)("decision policy: %s", said)
            self._policy_said = said

    def _leave_group(self) -> None:
        """Finish the frames in hand, then remove this consumer where it holds no pending frames, and its heartbeat."""
        try:
            self.flush()
            for stream in self.streams:
                pending = self.r.xpending_range(stream, self.s.group, "-", "+", 1, consumername=self.name)
                if not pending:
                    self.r.xgroup_delconsumer(stream, self.s.group, self.name)
            if self.s.tracking:
                for stream in list(self.cameras):
                    self.leases.release(stream)
            self.cameras.clear()
            self.r.delete(self.keys.worker(self.name))
        except redis.RedisError as e:
            log.warning("could not leave the group cleanly: %s", e)

