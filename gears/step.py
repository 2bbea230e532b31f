"""The gear step: one frame-stream entry → one result (or one dead letter), written atomically.

:meth:`Step.run` is the pure part (decode → detect → embed → KNN → open-set decision);
:meth:`Step.commit_result` / :meth:`Step.commit_deadletter` write its outcome with one Lua script
that, in a single atomic step,

1. sets an idempotency marker keyed on the source entry id (a replayed frame writes nothing new),
2. appends the result to the camera's ``fs:results:{cam}`` (or the dead letter to ``fs:deadletter:{cam}``),
3. updates who is present on the camera and appends ``appear`` / ``leave`` events to ``fs:events:{cam}``, and
4. XACKs the frame (when it was read through a consumer group).

Every key it touches is the camera's (one hash tag), so it is one script on a Redis Cluster too.

The step takes ``call(*args)`` functions that run one Redis command: redis-py's ``execute_command``
in ``facestream work``, RedisGears' ``execute`` in the in-server gear; ``index_call`` for the index
tier (gallery, cohort, sightings, policy), ``call`` for the stream tier (the commit). So both runners
share this code, and it is kept valid Python 3.7 (RedisGears 1.2's interpreter; checked by a test).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Optional

import numpy as np

from facestream.errors import BadFrame
from facestream.gears.memory import Memory
from facestream.keys import Keys
from facestream.models.matcher import NOT_EMBEDDED, TOO_SMALL, Match, Policy, StoredPolicy, decide, unnamed
from facestream.models.store.knn import nearest_stranger, search_with
from facestream.models.store.sightings import Kept
from facestream.models.store.stamp import ModelStamp, claim
from facestream.models.vision.image import decode_frame
from facestream.models.vision.profile import LATE_MS
from facestream.records import UNKNOWN, DeadLetter, Face, Fields, Frame, FrameResult
from facestream.replies import text

if TYPE_CHECKING:
    from facestream.gears.protocols import Analyzer, Scan, StepSettings, Tracks
    from facestream.models.types import Detection, Quality

Call = Callable[..., Any]
#: At most this many first looks per frame get ``probe_views`` views (the largest faces); the others one:
#: a crowd of new faces at 1080p must not add hundreds of ms to one frame.
MAX_VIEWED = 2
#: A frame already LATE_MS late looks again at this many of its tracked faces (the largest due), besides
#: its new faces: it costs little, and the worker catches up while tracks still converge on their names.
LATE_LOOKS = 1

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
                   'person_id', present[i], 'name', name, 'ts_ms', ARGV[6], 'frame_id', ARGV[9])
      end
    end
  end
end
if ARGV[3] ~= '' then redis.call('XACK', KEYS[5], ARGV[3], ARGV[4]) end
return wrote
"""


class Names:
    """person_id → display name, re-read from Redis at most every ``ttl_s`` (renames show up quickly)."""

    def __init__(self, call: Call, keys: Keys, ttl_s: float = 5.0):
        self.call, self.keys, self.ttl_s = call, keys, ttl_s
        self._names: dict[str, str] = {}
        self._at = -1e9

    def get(self, person_id: str) -> str:
        if time.monotonic() - self._at > self.ttl_s:
            self._names, self._at = {}, time.monotonic()
        if person_id not in self._names:
            name = self.call("HGET", self.keys.person(person_id), "name")
            self._names[person_id] = text(name) if name is not None else person_id
        return self._names[person_id]


def entry_ms(entry_id: str) -> int:
    """Milliseconds part of a stream entry id (the time Redis appended it)."""
    return int(entry_id.split("-", 1)[0])


class Step:
    """What one process needs to answer frames: settings, the analyzer (models loaded once), name cache."""

    def __init__(self, settings: StepSettings, analyzer: Analyzer, call: Call, worker: str,
                 index_call: Optional[Call] = None):
        self.s = settings
        self.keys = Keys(settings.key_prefix)
        self.analyzer = analyzer
        self.call = call  # the stream tier
        self.icall = index_call or call  # the index tier
        self.worker = worker
        self.names = Names(self.icall, self.keys)
        self.policy = StoredPolicy(self.icall, self.keys.policy, self.keys.index, Policy.of(settings))
        embedder = analyzer.embedder  # refused at start if the gallery holds another model's vectors
        claim(self.icall, self.keys, ModelStamp(embedder.model_id, embedder.dim))
        self.memory = Memory(settings, self.keys, self.icall, embedder.dim)
        self.last_timings: dict[str, float] = {}

    def prepare(self, stream: str, entry_id: str, fields: Fields, scan: Scan | None = None) -> Prepared:
        """Parse, decode and detect one frame entry; raise BadFrame for input that can never be processed.

        ``scan``: the camera's :class:`facestream.models.vision.scan.CameraScan` (balanced profile), which says where to
        look; without one the whole frame is searched. Safe to run for several frames at once in
        threads (dlib's detector and OpenCV's decoder release the GIL); :meth:`finish` must then see
        a camera's frames in order.
        """
        t0 = time.perf_counter()
        queue_ms = max(0.0, time.time() * 1000 - entry_ms(entry_id))
        frame = Frame.from_fields(fields, self.s.max_frame_bytes)
        if frame.camera != self.keys.camera_of(stream):
            raise BadFrame(f"camera field {frame.camera!r} does not match stream {stream}")
        rgb = decode_frame(frame.jpeg, self.s.max_frame_pixels)
        t1 = time.perf_counter()
        detections = self.analyzer.detect_frame(rgb, scan.regions(rgb, queue_ms) if scan is not None else None)
        t2 = time.perf_counter()
        timings = {"queue": queue_ms, "decode": (t1 - t0) * 1e3, "detect": (t2 - t1) * 1e3}
        return Prepared(entry_id, frame, rgb, detections, timings)

    def finish(self, p: Prepared, tracks: Tracks | None = None, scan: Scan | None = None) -> FrameResult:
        """Embed, search and decide the faces of a prepared frame.

        With ``tracks`` (a camera's :class:`facestream.gears.tracks.CameraTracks`), only faces that are new or
        due for a fresh look are embedded; the others take their track's voted name. A face's first look is
        embedded from ``probe_views`` views (the :data:`MAX_VIEWED` largest of a frame), later looks from one.
        A frame already :data:`LATE_MS` late embeds its new faces from one view each and at most
        :data:`LATE_LOOKS` of its tracked faces.
        """
        t0 = time.perf_counter()
        ts_s = p.frame.ts_ms / 1000
        late = time.time() * 1000 - entry_ms(p.entry_id) > LATE_MS
        if tracks is None or ts_s < tracks.last_ts:  # not tracked, or older than a frame already tracked (a retry)
            tracks = NoTracks()
        track_ids = tracks.update(p.detections, ts_s)
        policy = self.policy.get()
        decided: dict[int, tuple[Match, Optional[Quality]]] = {}
        viewed, once = self._looks(p.detections, tracks, track_ids, ts_s, policy, late, decided)
        embedded = self._embed(p.rgb, p.detections, viewed, self.s.probe_views)
        embedded.update(self._embed(p.rgb, p.detections, once, 1))
        t1 = time.perf_counter()
        kept: dict[int, Kept] = {}
        for i, (vec, quality) in embedded.items():
            tid = track_ids[i]
            probe = tracks.template(tid, vec)
            m = self._decide(probe, quality, policy)
            decided[i] = (m, quality)
            kept[i] = tracks.record(tid, p.detections[i], ts_s, vec, m, self._name(m))
            called = tracks.voted(tid) or m
            self.memory.note(kept[i], called.person_id, m, probe, vec, p.frame.camera, p.frame.ts_ms)
        faces = [self._face(det, decided.get(i), track_ids[i], tracks, kept.get(i))
                 for i, det in enumerate(p.detections)]
        for i, (vec, quality) in embedded.items():
            self.memory.keep(kept[i], faces[i], i, vec, quality, p.rgb, p.frame.camera, p.frame.ts_ms)
        if scan is not None:
            scan.follow([d.box for d in p.detections], ts_s)
        t2 = time.perf_counter()
        timings = {**p.timings, "embed": (t1 - t0) * 1e3, "search": (t2 - t1) * 1e3,
                   "total": (t2 - t0) * 1e3 + p.timings["decode"] + p.timings["detect"]}
        h, w = p.rgb.shape[:2]
        return FrameResult(p.entry_id, p.frame.camera, p.frame.seq, p.frame.ts_ms, faces, timings, self.worker, w, h,
                           embedded=len(embedded))

    @staticmethod
    def _looks(detections: list[Detection], tracks: Tracks, track_ids: list[Optional[int]], ts_s: float,
               policy: Policy, late: bool, decided: dict) -> tuple[list[int], list[int]]:
        """Which faces to embed now: (from ``probe_views`` views, from one). Faces too small to name are
        decided here (``too_small``); the others wait until their track is due for a look."""
        new, again = [], []
        for i, d in enumerate(detections):
            if not tracks.due(track_ids[i], d, ts_s):
                continue
            if d.size < policy.min_face_px:  # too small to name: not worth a network pass
                decided[i] = (unnamed(TOO_SMALL), None)
            else:
                (new if tracks.first_look(track_ids[i]) else again).append(i)
        new.sort(key=lambda i: -detections[i].size)  # the largest new faces: most nameable
        if late:  # catching up: every new face once, one view; of the tracked ones only the largest due
            return [], new + sorted(again, key=lambda i: -detections[i].size)[:LATE_LOOKS]
        return new[:MAX_VIEWED], new[MAX_VIEWED:] + again

    def _embed(self, rgb: np.ndarray, detections: list[Detection], which: list[int],
               views: int) -> dict[int, tuple[np.ndarray, Quality]]:
        """face index -> (vector, Quality) for the faces ``which``, in one batch."""
        if not which:
            return {}
        out = self.analyzer.embedder.embed(rgb, [detections[i] for i in which], views)
        return {i: (out.vectors[k], out.quality[k]) for k, i in enumerate(which)}

    def _decide(self, vec: np.ndarray, quality: Quality, policy: Policy) -> Match:
        """The open-set decision for one embedded face: gallery KNN, nearest cohort face, quality gates."""
        nn = search_with(self.icall, self.keys.index, vec, self.s.knn_k, self.s.hnsw_ef_runtime)
        stranger = None
        if nn and policy.cohort_margin > -4:
            stranger = nearest_stranger(self.icall, self.keys.cohort_index, vec, self.s.hnsw_ef_runtime)
        return decide(nn, policy, stranger, policy.gate(quality.size, quality.sharpness, quality.yaw))

    def _name(self, m: Match) -> str:
        return self.names.get(m.person_id) if m.person_id != UNKNOWN else UNKNOWN

    def _face(self, det: Detection, decided: Optional[tuple[Match, Optional[Quality]]], track_id: Optional[int],
              tracks: Tracks, kept: Optional[Kept]) -> Face:
        """The face record: its track's vote (this frame's decision included), else this frame's decision;
        an unknown face carries its track's visitor id."""
        m, quality = decided if decided is not None else (None, None)
        m = tracks.voted(track_id) or m or unnamed(NOT_EMBEDDED)
        kept = kept or tracks.kept(track_id)
        visitor = kept.visitor if kept is not None and m.person_id == UNKNOWN else ""
        return Face(det.box, round(det.score, 3), m.person_id, self._name(m),
                    None if m.distance is None else round(m.distance, 4), round(m.confidence, 3), track_id,
                    m.reason, quality.to_json() if quality is not None else None, visitor)

    def run(self, stream: str, entry_id: str, fields: Fields) -> FrameResult:
        """Analyse one frame entry on its own (every face embedded); raise BadFrame for bad input."""
        return self.finish(self.prepare(stream, entry_id, fields))

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
                fields: dict[str, str], people: Optional[list[tuple[str, str]]], ts_ms: int) -> bool:
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
        return bool(self.call("EVAL", COMMIT_LUA, len(keys), *keys, *args, *pairs, *flat))

    def handle(self, stream: str, entry_id: str, fields: Fields, group: str = "", deliveries: int = 1,
               prepared: Prepared | Exception | None = None, tracks: Tracks | None = None,
               scan: Scan | None = None) -> str:
        """Run and commit one entry; a bad frame is dead-lettered at once. Returns 'result'/'deadletter'/'duplicate'.

        ``prepared``: the entry's :meth:`prepare` outcome, or the BadFrame it raised, when the runner
        prepared it ahead (in a thread). Any other exception propagates: the frame stays pending and
        is retried (then dead-lettered after ``max_deliveries``) by the runner.
        """
        try:
            if prepared is None:
                prepared = self.prepare(stream, entry_id, fields, scan)
            elif isinstance(prepared, Exception):  # what prepare() raised in the runner's thread
                raise prepared
            result = self.finish(prepared, tracks, scan)
        except BadFrame as e:
            letter = DeadLetter(stream, entry_id, str(e), self.keys.camera_of(stream), deliveries, self.worker)
            return "deadletter" if self.commit_deadletter(stream, group, letter) else "duplicate"
        self.last_timings = result.timings
        return "result" if self.commit_result(stream, group, result) else "duplicate"


class NoTracks:
    """The tracks of a step that does not track (``tracking: false``, the in-server gear, a retried frame
    answered on its own): every face is a first look, embedded and decided on its own."""

    last_ts = -1e18

    def update(self, detections: list[Detection], ts_s: float) -> list[Optional[int]]:
        return [None] * len(detections)

    def due(self, track_id: Optional[int], detection: Detection, ts_s: float) -> bool:
        return True

    def first_look(self, track_id: Optional[int]) -> bool:
        return True

    def template(self, track_id: Optional[int], vector: np.ndarray) -> np.ndarray:
        return vector

    def record(self, track_id: Optional[int], detection: Detection, ts_s: float, vector: np.ndarray,
               match: Match, name: str) -> Kept:
        return Kept(tracked=False)

    def kept(self, track_id: Optional[int]) -> Optional[Kept]:
        return None

    def voted(self, track_id: Optional[int]) -> Optional[Match]:
        return None


@dataclass
class Prepared:
    """A decoded frame and its detections, waiting for :meth:`Step.finish`."""

    entry_id: str
    frame: Frame
    rgb: np.ndarray  # the decoded image, RGB
    detections: list[Detection]
    timings: dict[str, float]  # ms: queue, decode, detect
