"""``facestream bench --cluster``: frames/s of the stream tier on one node vs a 3-master Redis Cluster.

Both run here, in one invocation, from the embedded redis-server on loopback: a single node (no
replica), then 3 masters + 3 replicas (:class:`facestream.app.bench.localcluster.LocalCluster`). Each is driven
the same way: ``clients`` processes, each owning some of the ``cameras``, push synthetic 1080p JPEGs
(:func:`frames_1080p`, ~200 KB like a street camera's) and take them back like a worker does, so one
frame is the stream tier's whole frame path: XADD (MAXLEN ~), XREADGROUP, XACK. Servers, replicas
and clients share this machine's cores, so the ratio says what a cluster costs on one box; the
per-node figure is the paper limit of one node of a cluster spread over machines.
"""

from __future__ import annotations

import multiprocessing as mp
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from facestream.app.bench.localcluster import LocalCluster, free_ports
from facestream.commands import ensure_group
from facestream.config import Settings
from facestream.keys import Keys
from facestream.server import EmbeddedRedis, connect

FRAME_KB = 200


@dataclass
class TierFigures:
    layout: str
    frames_per_s: float
    mb_per_s: float
    frame_kb: float

    def line(self) -> str:
        return (f"stream tier, {self.layout}: {self.frames_per_s:,.0f} frames/s of {self.frame_kb:.0f} KB "
                f"({self.mb_per_s:,.0f} MB/s)")


def frames_1080p(n: int = 8, seed: int = 0) -> list[bytes]:
    """``n`` 1920x1080 JPEGs of ~:data:`FRAME_KB` KB: smooth scenes with fine texture, quality chosen to fit."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        low = rng.integers(0, 255, (27, 48, 3), dtype=np.uint8)
        img = cv2.resize(low, (1920, 1080), interpolation=cv2.INTER_CUBIC)
        img = cv2.add(img, rng.integers(0, 24, img.shape, dtype=np.uint8))
        best = b""
        for q in range(95, 20, -5):
            best = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, q])[1].tobytes()
            if len(best) <= FRAME_KB * 1024:
                break
        out.append(best)
    return out


def _drive(settings: Settings, cameras: list[str], frames: list[bytes], seconds: float, start_at: float,
           done: "mp.Queue[int]") -> None:
    """One client process: round-robin over its cameras, one frame's whole path each, until time is up."""
    r, keys, n = connect(settings), Keys(settings.key_prefix), 0
    streams = [keys.frames(c) for c in cameras]
    for s in streams:
        ensure_group(r, s, "bench")
    time.sleep(max(0.0, start_at - time.time()))
    end = start_at + seconds
    while time.time() < end:
        for i, s in enumerate(streams):
            r.xadd(s, {"jpeg": frames[(n + i) % len(frames)]}, maxlen=200, approximate=True)
            for _, entries in r.xreadgroup("bench", "c", {s: ">"}, count=1) or []:
                r.xack(s, "bench", *[e for e, _ in entries])
            n += 1
    done.put(n)


def tier_rate(settings: Settings, url: str, layout: str, frames: list[bytes], seconds: float, clients: int,
              cameras: int) -> TierFigures:
    """Frames/s through the stream tier at ``url`` with ``clients`` processes over ``cameras`` cameras."""
    s = settings.replace(redis_url=url, key_prefix=settings.key_prefix + "_tierbench")
    ctx = mp.get_context("spawn")
    done: "mp.Queue[int]" = ctx.Queue()
    names = [f"cam{i}" for i in range(cameras)]
    start_at = time.time() + 3.0  # every client connected and ready first
    procs = [ctx.Process(target=_drive, args=(s, names[i::clients], frames, seconds, start_at, done))
             for i in range(clients)]
    for p in procs:
        p.start()
    total = sum(done.get(timeout=seconds + 60) for _ in procs)
    for p in procs:
        p.join(30)
    fps = total / seconds
    kb = float(np.mean([len(f) for f in frames])) / 1024
    return TierFigures(layout, fps, fps * kb / 1024, kb)


def cluster_bench(settings: Settings, seconds: float = 15.0, clients: int = 4, cameras: int = 12,
                  say: Callable[[str], None] = print) -> list[TierFigures]:
    """The same load on one node, then on 3 masters + 3 replicas; both started here and stopped after."""
    frames = frames_1080p()
    with tempfile.TemporaryDirectory(prefix="facestream-tier-") as tmp:
        ports = free_ports(7)
        single = EmbeddedRedis(ports[0], Path(tmp) / "single")
        say(f"one node on port {ports[0]}: {clients} clients, {cameras} cameras, {seconds:.0f} s...")
        try:
            one = tier_rate(settings, single.start(attached=True), "1 node", frames, seconds, clients, cameras)
        finally:
            single.stop()
        say(one.line())
        cluster = LocalCluster(ports[1:], Path(tmp) / "cluster")
        say("3 masters + 3 replicas...")
        try:
            three = tier_rate(settings, cluster.start(), "3 masters + 3 replicas", frames, seconds, clients, cameras)
        finally:
            cluster.stop()
        say(three.line())
    return [one, three]
