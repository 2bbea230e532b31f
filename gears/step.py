"""The gear step: one frame-stream entry → one result (or one dead letter), written atomically.

A frame goes :meth:`Step.prepare` (:meth:`Step.glance`: parse, is the scene unchanged?; :meth:`Step.search`: decode,
detect, safe in threads) → :meth:`Step.finish`
(track, embed, search, decide: one :class:`Look` per face, in the camera's order) → :meth:`Step.commit`,
which writes the :class:`Answer` with one Lua script that, in a single atomic step,

1. sets an idempotency marker keyed on the source entry id (a replayed frame writes nothing new),
2. appends the result to the camera's ``fs:results:{cam}`` (or the dead letter to ``fs:deadletter:{cam}``),
3. updates who is present on the camera and appends ``appear`` / ``leave`` events to ``fs:events:{cam}``, and
4. XACKs the frame (when it was read through a consumer group),

and then, only if it wrote, makes the answer's side writes (visitors, sightings: :mod:`facestream.gears.memory`),
so a frame answered twice changes nothing twice. :meth:`Step.handle` does all three for one entry.
Every key the script touches is the camera's (one hash tag), so it is one script on a Redis Cluster too.

The step takes ``call(*args)`` functions that run one Redis command: redis-py's ``execute_command``
in ``facestream work``, RedisGears' ``execute`` in the in-server gear; ``index_call`` for the index
tier (gallery, cohort, sightings, policy), ``call`` for the stream tier (the commit). So both runners
share this code, and it is kept valid Python 3.7 (RedisGears 1.2's interpreter; checked by a test).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Tuple, Union

import numpy as np

from facestream.errors import BadFrame
from facestream.gears.memory import Memory, Writes
from facestream.gears.track import Kept, NoTracks
from facestream.keys import Keys
from facestream.models.matcher import NOT_EMBEDDED, TOO_SMALL, Match, Policy, StoredPolicy, decide, unnamed
from facestream.models.store.knn import nearest_stranger, search_with
from facestream.models.store.names import Names
from facestream.models.store.stamp import ModelStamp, claim
from facestream.models.vision.image import decode_frame
from facestream.records import UNKNOWN, DeadLetter, Face, Fields, Frame, FrameResult
from facestream.refusals import Refusals
from facestream.scripts import run as run_script

if TYPE_CHECKING:
    from facestream.config import Settings
    from facestream.gears.protocols import Analyzer, Scan, Tracks
    from facestream.models.types import Detection, Quality

log = logging.getLogger("facestream.step")
Call = Callable[..., Any]

# KEYS: marker, output stream, events stream, presence hash, frame stream
# ARGV: marker_ttl_ms, out_maxlen, group, entry_id, events_maxlen, ts_ms, absent_ms, camera, frame_id,
#       n_people, n_fields, then n_people (person_id, name) pairs, then n_fields (field, value) pairs.
COMMIT_LUA = """
-- Validate everything before the first write: Redis does not roll back a script that fails half-way.
local ts, absent, np, nf = tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[10]), tonumber(ARGV[11])
if not (ts and absent and np and nf) or ts < 0 or np < 0 or nf < 1 or #ARGV ~= 12 + 2 * np + 2 * nf then
  return redis.error_reply('ERR facestream commit: malformed arguments (ts_ms must be a non-negative number)')
end
local wrote = 0
if redis.call('SET', KEYS[1], '1', 'NX', 'PX', ARGV[1]) then
  wrote = 1
  local fields = {}
  for i = 13 + 2 * np, 12 + 2 * np + 2 * nf do fields[#fields + 1] = ARGV[i] end
  redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*', unpack(fields))
  if ARGV[12] == '1' then
    for i = 13, 12 + 2 * np, 2 do
      local pid, name = ARGV[i], ARGV[i + 1]
      local last = redis.call('HGET', KEYS[4], pid)
      local last_ts = last and tonumber(string.match(last, '^(%d+)|')) or nil
      if not last_ts then
        redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[5], '*', 'kind', 'appear', 'camera', ARGV[8],
                   'person_id', pid, 'name', name, 'ts_ms', ARGV[6], 'frame_id', ARGV[9])
      end
      if not last_ts or last_ts < ts then redis.call('HSET', KEYS[4], pid, ARGV[6] .. '|' .. name) end
    end
    local present = redis.call('HGETALL', KEYS[4])
    for i = 1, #present, 2 do
      local last_ts, name = string.match(present[i + 1], '^(%d+)|(.*)$')
      if not tonumber(last_ts) then
        redis.call('HDEL', KEYS[4], present[i])  -- not written by us: drop it, say nothing
      elseif tonumber(last_ts) < ts - absent then
        redis.call('HDEL', KEYS[4], present[i])
        redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[5], '*', 'kind', 'leave', 'camera', ARGV[8],
                   'person_id', present[i], 'name', name, 'ts_ms', ARGV[6], 'frame_id', ARGV[9], 'reason', 'unseen')
      end
    end
  end
end
if ARGV[3] ~= '' then redis.call('XACK', KEYS[5], ARGV[3], ARGV[4]) end
return wrote
"""


def entry_ms(entry_id: str) -> int:
    """Milliseconds part of a stream entry id (the time Redis appended it)."""
    return int(entry_id.split("-", 1)[0])


@dataclass
class FrameEntry:
    """One entry of a camera's frame stream as a runner read it: where it is, what it holds, how often it was
    delivered (:class:`facestream.feed.Entry` is an entry of an output stream)."""

    stream: str
    entry_id: str
    fields: Fields
    deliveries: int = 1


@dataclass
class Prepared:
    """A decoded frame and its detections, waiting for :meth:`Step.finish`."""

    entry_id: str
    frame: Frame
    rgb: Optional[np.ndarray]  # the decoded image, RGB (None: not decoded: unchanged, or not searched yet)
    detections: List[Detection]
    timings: Dict[str, float]  # ms: queue, decode, detect
    size: Tuple[int, int] = (0, 0)  # width, height
    unchanged: bool = False  # the scene had not changed: answered unsearched (:meth:`Scan.unchanged`)


@dataclass
class Look:
    """One detected face on its way through :meth:`Step.finish`: what this frame learns of it."""

    detection: Detection
    track_id: Optional[int]
    views: int = 0  # network passes averaged into its embedding on this frame (0: not embedded now)
    vector: Optional[np.ndarray] = None
    quality: Optional[Quality] = None
    match: Optional[Match] = None  # this frame's decision (embedded and searched, or too small to name)
    kept: Optional[Kept] = None  # what its track (or, untracked, the face itself) remembers


@dataclass
class Answer:
    """A frame's result, and the side writes (visitors, sightings) to make once it is committed."""

    result: FrameResult
    writes: Writes = field(default_factory=list)
    unstored: int = 0  # visitor plans Redis refused while answering (the faces keep no visitor this time)


@dataclass
class Outcome:
    """What answering one entry came to: 'result', 'deadletter' or 'duplicate', and its stage timings."""

    kind: str
    timings: Dict[str, float] = field(default_factory=dict)
    unstored: int = 0  # side writes skipped or failed: refused while answering, or after the commit (not retried)
    unchanged: bool = False  # a result for a frame not searched (:attr:`FrameResult.unchanged`)


class Step:
    """What one process needs to answer frames: settings, the analyzer (models loaded once), name cache."""

    def __init__(self, settings: Settings, analyzer: Analyzer, call: Call, worker: str,
                 index_call: Optional[Call] = None):
        self.s = settings
        self.keys = Keys(settings.key_prefix)
        self.analyzer = analyzer
        self.call = call  # the stream tier
        self.icall = index_call or call  # the index tier
        self.worker = worker
        self.names = Names(self.icall, self.keys)
        embedder = analyzer.embedder  # refused at start if the gallery holds another model's vectors
        self.policy = StoredPolicy(self.icall, self.keys.policy, self.keys.site_policy, self.keys.index, Policy.of(settings, embedder.model_id))
        claim(self.icall, self.keys, ModelStamp(embedder.model_id, embedder.dim))
        self.memory = Memory(settings, self.keys, self.icall, embedder.dim)
        self.side_refusals = Refusals(log, "visitors and sightings (side stores: skipped and counted, frames answered)")

    def handle(self, entry: FrameEntry, group: str = "", tracks: Optional[Tracks] = None, scan: Optional[Scan] = None,
               prepared: Optional[Callable[[], Prepared]] = None) -> Outcome:
        """Answer (:meth:`answer`) and commit (:meth:`deliver`) one entry. Any exception but a bad frame
        propagates: the frame stays pending and is retried (then dead-lettered after ``max_deliveries``)."""
        return self.deliver(entry, group, self.answer(entry, tracks, scan, prepared))

    def answer(self, entry: FrameEntry, tracks: Optional[Tracks] = None, scan: Optional[Scan] = None,
               prepared: Optional[Callable[[], Prepared]] = None) -> Union[Answer, DeadLetter]:
        """Prepare (or take ``prepared()``, the runner's detection done ahead in a thread) and finish one entry:
        its answer, or the dead letter of a bad frame. Nothing is written yet: a runner whose commit Redis
        refused delivers the same answer again later (:meth:`deliver`)."""
        try:
            p = prepared() if prepared is not None else self.prepare(entry.stream, entry.entry_id, entry.fields, scan)
            return self.finish(p, tracks, scan)
        except BadFrame as e:
            return DeadLetter(entry.stream, entry.entry_id, str(e), self.keys.camera_of(entry.stream),
                              entry.deliveries, self.worker)

    def deliver(self, entry: FrameEntry, group: str, answer: Union[Answer, DeadLetter]) -> Outcome:
        """Commit an answer (:meth:`commit`) or a dead letter."""
        if isinstance(answer, DeadLetter):
            return Outcome("deadletter" if self.commit_deadletter(entry.stream, group, answer) else "duplicate")
        return self.commit(entry.stream, group, answer)

    def prepare(self, stream: str, entry_id: str, fields: Fields, scan: Optional[Scan] = None) -> Prepared:
        """Parse, decode and detect one frame entry (:meth:`glance`, then :meth:`search` unless it is unchanged);
        raise BadFrame for input that can never be processed.

        ``scan``: the camera's :class:`facestream.models.vision.scan.CameraScan` (balanced profile), which says
        where to look; without one the whole frame is searched.
        """
        p = self.glance(stream, entry_id, fields, scan)
        return p if p.unchanged else self.search(p, scan)

    def glance(self, stream: str, entry_id: str, fields: Fields, scan: Optional[Scan] = None) -> Prepared:
        """Parse one frame entry and ask the camera's ``scan`` whether its scene is unchanged: a Prepared that is
        :attr:`Prepared.unchanged` (answered unsearched, no face) or that needs :meth:`search`. Cheap (~1 ms for
        1080p): a runner glances in the order read, so the camera's frames reach the scan in order."""
        t0 = time.perf_counter()
        queue_ms = max(0.0, time.time() * 1000 - entry_ms(entry_id))
        frame = Frame.from_fields(fields, self.s.max_frame_bytes)
        if frame.camera != self.keys.camera_of(stream):
            raise BadFrame(f"camera field {frame.camera!r} does not match stream {stream}")
        unchanged = scan is not None and scan.unchanged(frame.jpeg, frame.ts_ms / 1000)
        timings = {"queue": queue_ms, "decode": (time.perf_counter() - t0) * 1e3, "detect": 0.0}
        return Prepared(entry_id, frame, None, [], timings, scan.size if scan is not None else (0, 0), unchanged)

    def search(self, p: Prepared, scan: Optional[Scan] = None) -> Prepared:
        """Decode and detect a glanced frame. Safe to run for several frames at once in threads (the detectors and
        OpenCV's decoder release the GIL); :meth:`finish` must then see a camera's frames in order."""
        t0 = time.perf_counter()
        rgb = decode_frame(p.frame.jpeg, self.s.max_frame_pixels)
        t1 = time.perf_counter()
        regions = scan.regions(rgb, p.timings["queue"]) if scan is not None else None
        detections = self.analyzer.detect_frame(rgb, regions)
        t2 = time.perf_counter()
        timings = {**p.timings, "decode": p.timings["decode"] + (t1 - t0) * 1e3, "detect": (t2 - t1) * 1e3}
        return Prepared(p.entry_id, p.frame, rgb, detections, timings, (rgb.shape[1], rgb.shape[0]))

    def finish(self, p: Prepared, tracks: Optional[Tracks] = None, scan: Optional[Scan] = None) -> Answer:
        """Track, embed, search and decide the faces of a prepared frame: one :class:`Look` per face.

        With ``tracks`` (a camera's :class:`facestream.gears.tracks.CameraTracks`), only faces that are new or
        due for a fresh look are embedded (:meth:`_plan`); the others take their track's voted name.
        """
        t0 = time.perf_counter()
        ts_s = p.frame.ts_ms / 1000
        if tracks is None or ts_s < tracks.last_ts:  # not tracked, or older than a frame already tracked (a retry)
            tracks = NoTracks()
        policy = self.policy.get()
        looks = [Look(d, tid) for d, tid in zip(p.detections, tracks.update(p.detections, ts_s, p.rgb))]
        todo = self._plan(looks, tracks, ts_s, policy, p.timings["queue"] > self.s.late_ms)  # late when taken up
        self._embed(p.rgb, todo, policy)
        t1 = time.perf_counter()
        writes: Writes = []
        refused = 0
        for look in todo:
            planned = self._decide(look, tracks, ts_s, policy, p.frame)
            writes += planned if planned is not None else []
            refused += planned is None
        faces = [self._face(look, tracks) for look in looks]
        for i, (look, face) in enumerate(zip(looks, faces)):
            if look.views:
                writes += self.memory.keep(look.kept, face, i, look.vector, look.quality, p.rgb, p.frame.camera,
                                           p.frame.ts_ms)
        if scan is not None:
            scan.follow([d.box for d in p.detections], ts_s)
        t2 = time.perf_counter()
        timings = {**p.timings, "embed": (t1 - t0) * 1e3, "search": (t2 - t1) * 1e3,
                   "total": (t2 - t0) * 1e3 + p.timings["decode"] + p.timings["detect"]}
        result = FrameResult(p.entry_id, p.frame.camera, p.frame.seq, p.frame.ts_ms, faces, timings, self.worker,
                             *p.size, embedded=len(todo), unchanged=p.unchanged)
        return Answer(result, writes, refused)

    def _plan(self, looks: List[Look], tracks: Tracks, ts_s: float, policy: Policy, late: bool) -> List[Look]:
        """The faces to embed now, in order, each with its ``views``: a first look from ``probe_views`` views
        (the ``max_viewed_faces`` largest of the frame), later looks from one, ``looks_per_frame`` at most. A frame
        ``late_ms`` late embeds its new faces from one view each and at most ``late_looks`` of its tracked faces.
        Faces too small to name are decided here (``too_small``); the others wait until their track is due."""
        new, again = [], []
        for look in looks:
            if not tracks.due(look.track_id, look.detection, ts_s):
                continue
            if look.detection.size < policy.min_face_px:  # too small to name: not worth a network pass
                look.match = unnamed(TOO_SMALL)
            else:
                (new if tracks.first_look(look.track_id) else again).append(look)
        new.sort(key=lambda look: -look.detection.size)  # the largest new faces: most nameable
        if late:  # catching up: every new face once, one view; of the tracked ones only the largest due
            viewed, once = [], new + sorted(again, key=lambda look: -look.detection.size)[:self.s.late_looks]
        else:  # a crowd's tracked faces take turns: those looked at longest ago first
            again = sorted(again, key=lambda look: tracks.looked_at(look.track_id))[:self.s.looks_per_frame]
            viewed, once = new[:self.s.max_viewed_faces], new[self.s.max_viewed_faces:] + again
        for look in viewed:
            look.views = self.s.probe_views
        for look in once:
            look.views = 1
        return viewed + once

    def _embed(self, rgb: np.ndarray, todo: List[Look], policy: Policy) -> None:
        """Embed the planned looks in one batch, their faces aligned and their quality measured first: a look the
        quality gates refuse (blurred, turned) names no one however many views it has, so it gets one."""
        faces = self.analyzer.embedder.align(rgb, [look.detection for look in todo])
        for look, face in zip(todo, faces):
            look.quality = q = face.quality
            look.views = 1 if policy.gate(q.size, q.sharpness, q.yaw) else look.views
        for look, vector in zip(todo, self.analyzer.embedder.vectors(faces, [look.views for look in todo])):
            look.vector = vector

    def _decide(self, look: Look, tracks: Tracks, ts_s: float, policy: Policy, frame: Frame) -> Optional[Writes]:
        """The open-set decision for one embedded face (gallery KNN with its track's template, nearest cohort
        face, quality gates), added to its track's vote; returns the visitor writes it calls for (None: Redis
        refused to plan them)."""
        probe = tracks.template(look.track_id, look.vector)
        nn = search_with(self.icall, self.keys.index, probe, self.s.knn_k, self.s.hnsw_ef_runtime)
        stranger = None
        if nn and policy.cohort_margin > -4:
            stranger = nearest_stranger(self.icall, self.keys.cohort_index, probe, self.s.hnsw_ef_runtime)
        q = look.quality
        look.match = decide(nn, policy, stranger, policy.gate(q.size, q.sharpness, q.yaw))
        look.kept = tracks.record(look.track_id, look.detection, ts_s, look.vector, look.match, self._name(look.match))
        called = tracks.voted(look.track_id) or look.match
        try:
            return self.memory.note(look.kept, called.person_id, look.match, probe, look.vector, frame.camera,
                                    frame.ts_ms)
        except Exception as e:  # noqa: BLE001 - Redis refusing (a new visitor's id is a write): no visitor now
            if not self.side_refusals.refused(e):
                raise
            return None

    def _name(self, m: Match) -> str:
        return self.names.get(m.person_id) if m.person_id != UNKNOWN else UNKNOWN

    def _face(self, look: Look, tracks: Tracks) -> Face:
        """The face record: its track's vote (this frame's decision included), else this frame's decision, a
        name once confirmed (:meth:`facestream.gears.tracks.CameraTracks.called`); an unknown face carries its
        track's visitor id."""
        m = tracks.called(look.track_id, look.match) or unnamed(NOT_EMBEDDED)
        kept = look.kept or tracks.kept(look.track_id)
        visitor = kept.visitor if kept is not None and m.person_id == UNKNOWN else ""
        d = look.detection
        return Face(d.box, round(d.score, 3), m.person_id, self._name(m),
                    None if m.distance is None else round(m.distance, 4), round(m.confidence, 3), look.track_id,
                    m.reason, look.quality.to_json() if look.quality is not None else None, visitor)

    def commit(self, stream: str, group: str, answer: Answer) -> Outcome:
        """Commit the result (:meth:`commit_result`), then, only if that wrote it, make its side writes. A
        side write that fails then is counted, not retried: the frame is answered and acked. Redis refusing
        (:mod:`facestream.refusals`) is said once while it lasts; any other failure once per frame."""
        if not self.commit_result(stream, group, answer.result):
            return Outcome("duplicate", answer.result.timings)
        for i, write in enumerate(answer.writes):
            try:
                write()
            except Exception as e:  # noqa: BLE001 - redis-py's or RedisGears' errors alike
                failed = len(answer.writes) - i
                if not self.side_refusals.refused(e):
                    log.warning("%s %s answered, but %d of its visitor/sighting writes were not stored: %s",
                                stream, answer.result.frame_id, failed, e)
                return Outcome("result", answer.result.timings, answer.unstored + failed, answer.result.unchanged)
        if answer.writes:
            self.side_refusals.accepted()
        return Outcome("result", answer.result.timings, answer.unstored, answer.result.unchanged)

    def commit_result(self, stream: str, group: str, result: FrameResult) -> bool:
        """Write the result + presence events and ack the frame, atomically. False if already answered."""
        people = [(f.person_id, f.name) if f.person_id != UNKNOWN else (f.visitor, UNKNOWN)
                  for f in result.faces if f.person_id != UNKNOWN or f.visitor]  # visitors appear and leave too
        return self._commit(stream, group, result.frame_id, "results", self.s.results_maxlen,
                            result.to_fields(), people, result.ts_ms)

    def commit_deadletter(self, stream: str, group: str, letter: DeadLetter) -> bool:
        """Write a dead letter and ack the frame, atomically. False if the frame was already answered."""
        return self._commit(stream, group, letter.entry_id, "deadletter", self.s.deadletter_maxlen,
                            letter.to_fields(), None, 0)

    def _commit(self, stream: str, group: str, entry_id: str, out: str, out_maxlen: int,
                fields: Dict[str, str], people: Optional[List[tuple]], ts_ms: int) -> bool:
        """``out``: the camera's output stream (results / deadletter) taking ``fields``; ``people``: who is
        in view (None: a dead letter, which changes nobody's presence)."""
        camera = self.keys.camera_of(stream)
        flat = [x for kv in fields.items() for x in kv]
        pairs = [x for kv in (people or []) for x in kv]
        keys = [self.keys.answered(stream, entry_id), self.keys.camera_key(out, camera), self.keys.events(camera),
                self.keys.presence(camera), stream]
        args = [int(self.s.answered_ttl_s * 1000), out_maxlen, group, entry_id, self.s.events_maxlen, ts_ms,
                int(self.s.absent_after_s * 1000), camera, entry_id, len(pairs) // 2, len(flat) // 2,
                "0" if people is None else "1"]
        return bool(run_script(self.call, COMMIT_LUA, keys, [*args, *pairs, *flat]))
