"""``facestream bench --memory N,...``: Redis memory with N 1080p cameras pushing at full speed, against their budget.

Each camera is a real producer playing the synthetic 1080p camera (:mod:`facestream.app.bench.detection`, scenes
of the shared faces) as fast as it can encode, into its own stream under a scratch prefix, with no worker
reading: the worst case, where only the frame budget (``frames_max_mb``, MAXLEN derived from the frame sizes)
holds memory. It runs until every camera has sent twice what its budget holds (or ``seconds``), sampling
``used_memory`` every half second; the figures are the peak over the server's memory before, and the
streams' own ``MEMORY USAGE``, beside ``cameras x frames_max_mb``.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Callable

from facestream.app.bench.clip import scratch
from facestream.app.bench.detection import synthetic, write_video
from facestream.config import Settings
from facestream.producer.capture import Producer

MB = 1024 * 1024


@dataclass
class MemoryFigures:
    cameras: int
    sent: int  # frames, all cameras
    seconds: float
    frame_kb: float  # mean JPEG size
    budget_mb: float  # cameras x frames_max_mb
    streams_mb: float  # MEMORY USAGE of the frame streams at the end
    peak_mb: float  # peak used_memory over the memory before the run

    def line(self) -> str:
        return (f"{self.cameras} camera(s): {self.sent} frames of {self.frame_kb:.0f} KB in {self.seconds:.0f} s; frame "
                f"streams {self.streams_mb:.0f} MB, peak Redis memory +{self.peak_mb:.0f} MB, budget {self.budget_mb:.0f} MB")


def memory_bench(settings: Settings, cameras: list[int], seconds: float = 300,
                 say: Callable[[str], None] = print) -> list[MemoryFigures]:
    video = settings.data_dir / "cache" / "synthetic-1080p.mp4"
    if not video.is_file():
        say("writing the synthetic 1080p camera (once)")
        write_video(synthetic(settings, settings.faces_dir, 150)[0], video)
    out = []
    for n in cameras:
        with scratch(settings) as (s, _, client, keys, _):
            before = int(client.info("memory")["used_memory"])
            producers = [Producer(client, s, f"mem{i}", str(video), loop=True, realtime=False) for i in range(n)]
            threads = [threading.Thread(target=p.run, daemon=True) for p in producers]
            start, peak = time.monotonic(), before
            for t in threads:
                t.start()
            while time.monotonic() - start < seconds and not all(_twice_over(p, s) for p in producers):
                time.sleep(0.5)
                peak = max(peak, int(client.info("memory")["used_memory"]))
            for p in producers:
                p.stop()
            for t in threads:
                t.join(30)
            streams = sum(int(client.memory_usage(keys.frames(f"mem{i}")) or 0) for i in range(n))
            sent = sum(p.stats.sent for p in producers)
            out.append(MemoryFigures(n, sent, time.monotonic() - start, sum(p.budget.mean for p in producers) / n / 1024,
                                     n * s.frames_max_mb, streams / MB, (peak - before) / MB))
            say(out[-1].line())
    return out


def _twice_over(p: Producer, s: Settings) -> bool:
    """Whether ``p`` has sent twice the frames its budget holds (its stream has been trimmed for a while)."""
    return p.budget.mean > 0 and p.stats.sent * p.budget.mean >= 2 * s.frames_max_mb * MB
