"""Fuzz: thousands of malformed frames of every class in tests/corpus.py, mixed with real ones, through a
real ``facestream work`` process. It never dies, dead-letters each bad frame with a reason, answers each
good one, leaves nothing pending, and its peak memory stays bounded."""

from __future__ import annotations

import time
from pathlib import Path

import cv2
import numpy as np
from corpus import BAD_KEY_TAILS, bad_frames

from facestream.app.stack.local import LocalPipeline
from facestream.keys import Keys
from facestream.records import DeadLetter, Frame, FrameResult

#: The worker's memory may grow by this much over its own size once ready while it answers the fuzz (measured:
#: 263-308 MB): the embedder's session made on the first face, the eight 4K frames at the end decoded as one
#: batch (25 MB each), onnxruntime's arena grown to the largest input. Every frame of a batch held at once
#: (64 x 4K) or a leak of 100 KB per bad frame would exceed it. Measured against the worker's own size, not a
#: fixed total, which moved with the models (the old 600 MB cap: 532-613 MB in runs of the same code).
BAD, GOOD_EVERY, GROWTH_LIMIT_MB = 5000, 125, 400


def _clip_jpegs(faces_dir: Path, n: int) -> list[bytes]:
    cap = cv2.VideoCapture(str(faces_dir / "videos" / "hamilton_white_house_2009.mp4"))
    out = []
    while len(out) < n:
        ok, bgr = cap.read()
        if not ok:
            break
        out.append(cv2.imencode(".jpg", bgr)[1].tobytes())
    return out


def _peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def test_fuzzed_frames_never_stop_a_worker(r, settings, faces_dir):
    s = settings.replace(frames_maxlen=100_000, claim_idle_ms=2000, block_ms=100)
    keys = Keys(s.key_prefix)
    stream = keys.frames("fuzz")
    for tail in BAD_KEY_TAILS:
        r.xadd(keys.frames_prefix.encode() + tail, {"camera": "x", "ts_ms": "1", "jpeg": b"\xff\xd8"})
    good_jpegs = _clip_jpegs(faces_dir, BAD // GOOD_EVERY)
    pipe = r.pipeline(transaction=False)
    kinds = []  # per entry: the bad frame's class, or None for a good frame
    for i, (name, fields) in enumerate(bad_frames("fuzz", BAD)):
        pipe.xadd(stream, fields)
        kinds.append(name)
        if i % GOOD_EVERY == 0 and good_jpegs:
            data = good_jpegs[(i // GOOD_EVERY) % len(good_jpegs)]
            pipe.xadd(stream, Frame("fuzz", i, int(time.time() * 1000), 640, 360, data).to_fields())
            kinds.append(None)
    big = cv2.resize(cv2.imdecode(np.frombuffer(good_jpegs[0], np.uint8), cv2.IMREAD_COLOR), (3840, 2160))
    for _ in range(8):  # the largest frames accepted, in a row: a batch of them decoded at once
        pipe.xadd(stream, Frame("fuzz", 0, int(time.time() * 1000), 3840, 2160, cv2.imencode(".jpg", big)[1].tobytes())
                  .to_fields())
        kinds.append(None)
    over = cv2.imencode(".jpg", cv2.resize(big, (4096, 4096)))[1].tobytes()
    pipe.xadd(stream, {"camera": "fuzz", "ts_ms": "1", "jpeg": over})  # a real JPEG just over max_frame_pixels
    kinds.append("over max_frame_pixels")
    oversize = {"camera": "fuzz", "ts_ms": "1", "jpeg": b"\xff\xd8" + b"\0" * (s.max_frame_bytes + 1)}
    for _ in range(3):
        pipe.xadd(stream, oversize)
        kinds.append("oversize")
    ids = [x.decode() for x in pipe.execute()]
    classes = {i: k for i, k in zip(ids, kinds) if k is not None}
    bad_ids = list(classes)
    good_ids = [i for i, k in zip(ids, kinds) if k is None]
    total = len(ids)

    with LocalPipeline(s, s.redis_url, "fuzz", workers=1) as local:
        local.wait_ready(r, "fuzz")
        (pid,) = local.worker_pids
        ready = _peak_rss_mb(pid)  # models loaded, nothing answered yet
        peak = 0.0
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            peak = max(peak, _peak_rss_mb(pid))
            got = r.xlen(keys.results("fuzz")) + r.xlen(keys.deadletter("fuzz"))
            if got >= total:
                break
            local.check_alive()  # 0 worker exits
            time.sleep(0.2)
        time.sleep(s.claim_idle_ms / 1000 + 0.5)  # anything left pending would now be reclaimed
        local.check_alive()
        peak = max(peak, _peak_rss_mb(pid))
        pending = r.xpending(stream, s.group)["pending"]

    letters = {d.entry_id: d for d in (DeadLetter.from_fields(f) for _, f in r.xrange(keys.deadletter("fuzz")))}
    answered = {x.frame_id for x in (FrameResult.from_fields(f) for _, f in r.xrange(keys.results("fuzz")))}
    wrong = sorted({classes[i] for i in set(bad_ids) - set(letters)})
    assert not wrong, f"bad frames not dead-lettered: {wrong}"
    assert set(letters) == set(bad_ids) and all(d.reason for d in letters.values())
    assert answered == set(good_ids) and len(good_ids) >= 30
    assert pending == 0
    print(f"fuzz: {len(bad_ids)} bad frames of {len(set(classes.values()))} classes dead-lettered, "
          f"{len(good_ids)} good answered, worker peak RSS {peak:.0f} MB, {peak - ready:.0f} MB above its "
          f"{ready:.0f} MB when ready")
    assert peak - ready <= GROWTH_LIMIT_MB, f"worker peak RSS {peak:.0f} MB, {peak - ready:.0f} MB above ready"
