"""The failure paths the README promises to survive, each forced deterministically on the real server:
retries, dead letters after max_deliveries, frames trimmed while pending, a lease holder killed with
frames in hand."""

from __future__ import annotations

import os
import signal
import time

import cv2
from conftest import NoFaces
from corpus import jpeg

from facestream.app.stack.local import LocalPipeline
from facestream.gears.worker import Worker
from facestream.keys import Keys
from facestream.records import DeadLetter, Frame, FrameResult


class FailsOn(NoFaces):
    """Detection raises on its first ``times`` calls (a model failing on a frame), then finds nothing."""

    def __init__(self, times: int):
        self.times, self.calls = times, 0

    def detect_frame(self, rgb, regions=None) -> list:
        self.calls += 1
        if self.calls <= self.times:
            raise RuntimeError("model failure on this frame")
        return []


def _frame(camera: str, seq: int) -> dict:
    return Frame(camera, seq, int(time.time() * 1000), 64, 48, jpeg(64, 48, seed=seq)).to_fields()


def _run_until(worker: Worker, done, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    worker.run_once()  # joins the group and reads
    while not done():
        assert time.monotonic() < deadline, f"within {timeout_s:.0f} s: {what}"
        worker.run_once()
    worker.flush()


def test_a_failing_frame_is_retried_then_dead_lettered_after_max_deliveries(r, settings):
    s = settings.replace(claim_idle_ms=100, max_deliveries=2, block_ms=50, tracking=False)
    keys = Keys(s.key_prefix)
    entry = r.xadd(keys.frames("cam"), _frame("cam", 200)).decode()
    w = Worker(r, s, FailsOn(times=99), name="w")
    _run_until(w, lambda: r.xlen(keys.deadletter("cam")) == 1, 30, "the frame is dead-lettered after 2 failed deliveries")
    (letter,) = [DeadLetter.from_fields(f) for _, f in r.xrange(keys.deadletter("cam"))]
    assert letter.entry_id == entry and "not answered after 2 deliveries" in letter.reason
    assert w.counts.errors == 2 and r.xlen(keys.results("cam")) == 0
    assert r.xpending(keys.frames("cam"), s.group)["pending"] == 0


def test_a_worker_exception_leaves_the_frame_pending_and_a_retry_answers_it(r, settings):
    s = settings.replace(claim_idle_ms=100, block_ms=50, tracking=False)
    keys = Keys(s.key_prefix)
    entry = r.xadd(keys.frames("cam"), _frame("cam", 201)).decode()
    w = Worker(r, s, FailsOn(times=1), name="w")
    _run_until(w, lambda: r.xlen(keys.results("cam")) == 1, 30, "the retried frame gets its result")
    (res,) = [FrameResult.from_fields(f) for _, f in r.xrange(keys.results("cam"))]
    assert res.frame_id == entry and w.counts.errors == 1 and r.xlen(keys.deadletter("cam")) == 0
    assert r.xpending(keys.frames("cam"), s.group)["pending"] == 0


def test_frames_trimmed_while_pending_are_dead_lettered_with_the_reason(r, settings):
    s = settings.replace(claim_idle_ms=100, block_ms=50, tracking=False)
    keys = Keys(s.key_prefix)
    stream = keys.frames("cam")
    ids = [r.xadd(stream, _frame("cam", i)).decode() for i in range(3)]
    w = Worker(r, s, FailsOn(times=3), name="w")
    _run_until(w, lambda: r.xpending(stream, s.group)["pending"] == 3, 30, "all three frames delivered and failed")
    later = r.xadd(stream, _frame("cam", 3)).decode()
    r.xtrim(stream, minid=later)  # e.g. a producer's MAXLEN while the worker struggled with them
    _run_until(w, lambda: r.xlen(keys.deadletter("cam")) == 3 and r.xlen(keys.results("cam")) == 1, 30,
               "the trimmed pending frames are dead-lettered, the next frame answered")
    letters = {d.entry_id: d.reason for d in (DeadLetter.from_fields(f) for _, f in r.xrange(keys.deadletter("cam")))}
    assert set(letters) == set(ids) and all("trimmed" in reason for reason in letters.values())
    assert r.xpending(stream, s.group)["pending"] == 0


def test_kill_9_of_the_lease_holder_with_frames_pending_loses_nothing(r, settings, faces_dir):
    """Two worker processes; the one holding the camera's lease is killed while it holds unanswered frames."""
    s = settings.replace(camera_lease_ms=1500, claim_idle_ms=1500, block_ms=100)
    keys = Keys(s.key_prefix)
    stream = keys.frames("cam1")
    cap = cv2.VideoCapture(str(faces_dir / "videos" / "hamilton_white_house_2009.mp4"))
    frames = []
    while len(frames) < 200:
        ok, bgr = cap.read()
        if not ok:
            break
        frames.append(Frame("cam1", len(frames), int(time.time() * 1000), 640, 360,
                            cv2.imencode(".jpg", bgr)[1].tobytes()).to_fields())
    first = r.xadd(stream, frames[0]).decode()
    with LocalPipeline(s, s.redis_url, "kill", workers=2) as local:
        local.wait_ready(r, "cam1")
        holder = r.get(keys.lease("cam1")).decode()
        victim = local.worker_pids[int(holder.rsplit("-", 1)[1])]
        ids = [r.xadd(stream, f).decode() for f in frames[1:]]
        deadline = time.monotonic() + 60
        while True:  # the holder has read frames it has not answered yet
            held = {c["name"].decode(): c["pending"] for c in r.xinfo_consumers(stream, s.group)}.get(holder, 0)
            if held > 0:
                break
            assert time.monotonic() < deadline, "the lease holder never held pending frames"
            time.sleep(0.005)
        os.kill(victim, signal.SIGKILL)
        total = len(frames)
        deadline = time.monotonic() + 120
        while r.xlen(keys.results("cam1")) + r.xlen(keys.deadletter("cam1")) < total:
            assert time.monotonic() < deadline, f"only {r.xlen(keys.results('cam1'))} of {total} frames answered"
            time.sleep(0.2)
        pending = r.xpending(stream, s.group)["pending"]
        survivor = r.get(keys.lease("cam1")).decode()
    answered = [FrameResult.from_fields(f).frame_id for _, f in r.xrange(keys.results("cam1"))]
    assert held > 0 and survivor != holder
    assert sorted(answered) == sorted([first, *ids]), "every frame answered, each exactly once"
    assert r.xlen(keys.deadletter("cam1")) == 0 and pending == 0


def test_kill_9_of_a_worker_blocked_inside_its_commit_loses_nothing(r, settings):
    """The lease holder is killed while its commit (the Lua script) waits on the server: CLIENT PAUSE WRITE
    holds every write, so the kill lands between sending the commit and its reply. Each frame is answered once."""
    s = settings.replace(camera_lease_ms=1500, claim_idle_ms=1500, block_ms=100)
    keys = Keys(s.key_prefix)
    stream = keys.frames("cam2")
    frames = [Frame("cam2", i, int(time.time() * 1000), 64, 48, jpeg(64, 48, seed=i)).to_fields() for i in range(400)]
    with LocalPipeline(s, s.redis_url, "commit", workers=2) as local:
        ids = [r.xadd(stream, frames[0]).decode()]
        local.wait_ready(r, "cam2")
        holder = r.get(keys.lease("cam2")).decode()
        victim = local.worker_pids[int(holder.rsplit("-", 1)[1])]
        ids += [r.xadd(stream, f).decode() for f in frames[1:]]  # a backlog: the holder commits frame after frame
        deadline = time.monotonic() + 60
        while True:
            r.execute_command("CLIENT", "PAUSE", 5000, "WRITE")
            time.sleep(0.2)
            if any(c.get("cmd") in ("eval", "evalsha") for c in r.client_list()):  # a commit is held on the server
                break
            r.execute_command("CLIENT", "UNPAUSE")  # it was between commits: let it go on, try again
            assert time.monotonic() < deadline, "the holder was never caught inside a commit"
            time.sleep(0.05)
        os.kill(victim, signal.SIGKILL)
        time.sleep(0.2)
        r.execute_command("CLIENT", "UNPAUSE")
        deadline = time.monotonic() + 120
        while r.xlen(keys.results("cam2")) + r.xlen(keys.deadletter("cam2")) < len(frames):
            assert time.monotonic() < deadline, f"only {r.xlen(keys.results('cam2'))} of {len(frames)} frames answered"
            time.sleep(0.2)
        pending = r.xpending(stream, s.group)["pending"]
    answered = [FrameResult.from_fields(f).frame_id for _, f in r.xrange(keys.results("cam2"))]
    assert sorted(answered) == sorted(ids), "every frame answered, each exactly once"
    assert r.xlen(keys.deadletter("cam2")) == 0 and pending == 0
