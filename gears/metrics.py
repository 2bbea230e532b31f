"""Prometheus metrics of a worker (served by ``facestream work --metrics-port``)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram, start_http_server

FRAMES_IN = Counter("facestream_frames_in_total", "Frames read from a camera stream", ["camera"])
FRAMES_OUT = Counter(
    "facestream_frames_out_total", "Frames answered, by outcome (result, deadletter, duplicate)", ["camera", "outcome"]
)
LOST = Counter("facestream_frames_lost_total", "Frames trimmed from a camera stream before any worker read them",
               ["camera"])
UNCHANGED = Counter("facestream_frames_unchanged_total", "Frames answered without a search: the scene had not "
                    "changed since a searched frame with no face (still_recheck_s)", ["camera"])
SKIPPED = Counter("facestream_frames_skipped_total", "Frames skipped by lag_policy=latest", ["camera"])
REFUSALS = Counter("facestream_redis_refusals_total", "Times Redis was out of reach or refused, waited out "
                   "(condition: UNREACHABLE, OOM, MISCONF, READONLY, LOADING, BUSY, ...)", ["condition"])
UNSTORED = Counter("facestream_side_writes_unstored_total", "Visitor/sighting writes skipped or failed (frames answered)")
ERRORS = Counter("facestream_frame_errors_total", "Frames that raised and were left for retry", ["camera", "error"])
STAGE_SECONDS = Histogram(
    "facestream_stage_seconds",
    "Per-frame time of each stage (queue, decode, detect, embed, search, total)",
    ["stage"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5, 5.0),
)
LAG = Gauge("facestream_group_lag", "Entries not yet delivered to the worker group", ["camera"])
PENDING = Gauge("facestream_group_pending", "Entries delivered but not yet acknowledged", ["camera"])
DEADLETTERS = Gauge("facestream_deadletters", "Length of the dead-letter stream")


def serve(port: int) -> None:
    """Expose /metrics on 0.0.0.0:port in a background thread."""
    start_http_server(port)
