"""``facestream produce``: one camera source → JPEG frame records in ``fs:frames:<camera>``.

A source is a video file, an RTSP/HTTP URL or a webcam (index or /dev/videoN). Files keep their
own timing unless ``as_fast_as_possible``; live sources reconnect with exponential backoff when
they drop or stall (OpenCV's FFmpeg open/read timeouts bound every call). The stream is capped
with ``MAXLEN ~`` so Redis memory stays bounded whatever the workers do.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

# FFmpeg and OpenCV write their own lines to stderr (a failed RTSP connect, a missing file) that can
# hold a source URL with its password; the producer reports errors itself, redacted.
os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # AV_LOG_QUIET
os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")

import cv2  # noqa: E402 - after the log levels above
import numpy as np
import redis

from facestream.config import Settings
from facestream.errors import BadFrame, FacestreamError
from facestream.keys import Keys, check_id
from facestream.models.vision.image import encode_bgr, resize_max_side, scene_changed, scene_thumb_bgr
from facestream.records import Frame
from facestream.redaction import redact
from facestream.refusals import Refusals, condition
from facestream.retry import Backoff

log = logging.getLogger("facestream.producer")

#: Frames larger than this (longest side) are downscaled before they are sent: 1080p is kept whole
#: (the balanced profile looks for 48 px faces in it), 4K is halved (4x fewer bytes in Redis).
MAX_SIDE = 1920
#: FFmpeg's decoding threads per camera: one decodes a 1080p H.264 frame in ~1.8 ms of CPU, FFmpeg's default (one
#: per core) in ~2.3 (threads handing frames over); a camera's rate needs no more than one.
DECODE_THREADS = 1
OPEN_TIMEOUT_MS = 5000
READ_TIMEOUT_MS = 5000


class SourceError(FacestreamError):
    """A source that cannot be opened (a file that is not a video, a bad device)."""


class Source:
    """Where frames come from: a file (finite, has its own fps), or a live URL / webcam (reconnect)."""

    def __init__(self, spec: str):
        self.spec = spec
        if spec.isdigit() or spec.startswith("/dev/video"):
            self.kind = "webcam"
        elif "://" in spec:
            self.kind = "url"
        elif Path(spec).is_file():
            self.kind = "file"
        else:
            raise SourceError(f"{redact(spec)!r} is not a file, a URL (rtsp://, http://) or a webcam index/device")

    @property
    def shown(self) -> str:
        """The source for logs and errors: credentials in the URL masked."""
        return redact(self.spec)

    @property
    def is_live(self) -> bool:
        return self.kind != "file"

    def open(self) -> cv2.VideoCapture:
        if self.kind == "webcam":
            cap = cv2.VideoCapture(int(self.spec) if self.spec.isdigit() else self.spec)
        elif self.kind == "url":
            cap = cv2.VideoCapture(self.spec, cv2.CAP_FFMPEG, [
                cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, OPEN_TIMEOUT_MS, cv2.CAP_PROP_READ_TIMEOUT_MSEC, READ_TIMEOUT_MS,
                cv2.CAP_PROP_N_THREADS, DECODE_THREADS])
        else:
            cap = cv2.VideoCapture(self.spec, cv2.CAP_FFMPEG, [cv2.CAP_PROP_N_THREADS, DECODE_THREADS])
        if not cap.isOpened():
            cap.release()
            raise SourceError(f"cannot open {self.shown}" + ("" if self.is_live else " (not a readable video?)"))
        return cap


@dataclass
class ProducerStats:
    read: int = 0  # frames read from the source
    sent: int = 0
    dropped: int = 0  # frames not sent: over the --fps cap, not encodable, or Redis away or refusing
    refused: int = 0  # of those, the frames Redis was away for or refused (memory full, a replica, ...); one whose
    # reply was lost as Redis went away may have been added all the same (and is then answered)
    reconnects: int = 0
    resent: int = 0  # of the frames sent, those of a still scene sent as the last JPEG again (not encoded anew)


class StillScene:
    """A camera's still scene, as its producer sees it: a frame whose scene has not changed since the last frame
    encoded (the workers' measure, :func:`facestream.models.vision.image.scene_changed`) is sent as that frame's
    JPEG again instead of being encoded anew (~4 ms of a 1080p frame; its scene thumbnail costs ~0.1 ms), so the
    worker knows it unchanged without decoding it either. A frame is encoded anew at least every ``refresh_s``
    (half of ``still_recheck_s``): the worker's periodic look at a still scene sees it as it is now. Only with
    the balanced detection profile (the only one that answers still frames unsearched)."""

    def __init__(self, settings: Settings):
        on = settings.detection == "balanced" and settings.still_recheck_s > 0
        self.share, self.refresh_s = settings.still_changed_share, settings.still_recheck_s / 2 if on else 0.0
        self._last: tuple[float, np.ndarray, bytes] | None = None  # the last frame encoded: time, thumbnail, JPEG

    def jpeg(self, bgr: np.ndarray, now: float, encode: Callable[[np.ndarray], bytes]) -> tuple[bytes, bool]:
        """``bgr``'s JPEG: the last one again if it shows the same scene (True), else ``encode(bgr)`` (False; its
        errors are the caller's)."""
        if self.refresh_s <= 0:
            return encode(bgr), False
        thumb, last = scene_thumb_bgr(bgr), self._last
        if last is not None and now - last[0] < self.refresh_s and not scene_changed(thumb, last[1], self.share):
            return last[2], True
        jpeg = encode(bgr)
        self._last = (now, thumb, jpeg)
        return jpeg, False


class StreamBudget:
    """A camera stream's cap in entries, from its budget in bytes: ``frames_max_mb`` over the mean size of its
    recent frames (a 1080p JPEG is ~20x a 360p one), never more than ``frames_maxlen`` nor fewer than 10."""

    def __init__(self, settings: Settings):
        self.budget, self.cap = settings.frames_max_mb * 1024 * 1024, settings.frames_maxlen
        self.mean = 0.0

    def maxlen(self, size: int) -> int:
        """The cap for a stream whose newest frame is ``size`` bytes (a moving mean over ~20 frames)."""
        self.mean = float(size) if not self.mean else self.mean + (size - self.mean) / 20
        return max(10, min(self.cap, int(self.budget / max(self.mean, 1.0))))


class Producer:
    """Reads one source and appends its frames to one camera stream."""

    def __init__(self, client: redis.Redis, settings: Settings, camera: str, source: str, fps: float | None = None,
                 realtime: bool = True, loop: bool = False, quality: int = 80, max_side: int = MAX_SIDE,
                 sleep: Callable[[float], object] | None = None):
        self.r = client
        self.s = settings
        self.camera = check_id("camera", camera)
        self.stream = Keys(settings.key_prefix).frames(camera)
        self.source = Source(source)
        self.fps = fps
        self.realtime = realtime
        self.loop = loop
        self.quality = quality
        self.max_side = max_side
        self._stopped = threading.Event()
        self.sleep = sleep or self._stopped.wait  # a stop (Ctrl-C) ends any wait at once: no 30 s backoff to sit out
        self.stats = ProducerStats()
        self.budget = StreamBudget(settings)
        self.still = StillScene(settings)
        self.refusals = Refusals(log, f"camera {camera} (frames dropped and counted meanwhile)")
        self._seq = 0
        self._unsent: tuple[int, int] | None = None  # the first and last frame refused since Redis last accepted one

    def stop(self, *_: object) -> None:
        self._stopped.set()

    @property
    def _stop(self) -> bool:
        return self._stopped.is_set()

    def run(self, max_frames: int | None = None) -> ProducerStats:
        """Produce until the file ends (unless looping), ``max_frames`` are sent, or stopped."""
        backoff = Backoff(1.0, 30.0, self.sleep)
        while not self._stop:
            try:
                cap = self.source.open()
            except SourceError as e:
                if not self.source.is_live:
                    raise
                self.stats.reconnects += 1
                backoff.wait(log, e)
                continue
            backoff.reset()
            read_before = self.stats.read
            try:
                finished = self._pump(cap, max_frames)
            finally:
                cap.release()
            if not self.source.is_live and self.stats.read == read_before and not self._stop:
                raise SourceError(f"{self.source.shown}: no frame could be read (not a video?)")
            if finished or (not self.source.is_live and not self.loop):
                break
            if self.source.is_live:
                log.warning("%s stopped delivering frames; reconnecting", self.source.shown)
                self.stats.reconnects += 1
        self._say_unsent()
        return self.stats

    def _pump(self, cap: cv2.VideoCapture, max_frames: int | None) -> bool:
        """Send frames from an open capture; True when max_frames was reached."""
        src_fps = cap.get(cv2.CAP_PROP_FPS) or 30.0
        min_gap = 1.0 / self.fps if self.fps else 0.0
        start = time.monotonic()
        next_due = 0.0  # when the next frame may be sent: on a schedule of min_gap, so a 25 fps source capped at
        # 15 sends 15 a second (every frame 1/15 s after the last would send every second one: 12.5)
        n = 0
        last_report = time.monotonic()
        while not self._stop:
            if not cap.grab():  # decoded, not yet converted: a frame not sent costs no colour conversion
                return False
            n += 1
            self.stats.read += 1
            now = time.monotonic()
            if not self.source.is_live and self.realtime:  # keep the file's own timing
                due = start + (n - 1) / src_fps
                if max(due, now) >= next_due - 1e-4 and due > now:  # a frame it will not send is not waited for
                    self.sleep(due - now)  # (each wait is a wake-up: ~1 ms of CPU on a small VM, 25 a second)
                now = max(due, time.monotonic())
            if now < next_due - 1e-4:
                self.stats.dropped += 1
                continue
            ok, bgr = cap.retrieve()
            if not ok:
                return False
            # on schedule while less than a gap behind it; after a stall, a new schedule from now (no burst)
            next_due = next_due + min_gap if now - next_due < min_gap else now + min_gap
            self._send(bgr)
            if max_frames is not None and self.stats.sent >= max_frames:
                return True
            if now - last_report >= 5:
                log.info("%s: sent %d frames (%d of a still scene, not encoded again), dropped %d (Redis refused %d), "
                         "%.1f fps", self.camera, self.stats.sent, self.stats.resent, self.stats.dropped,
                         self.stats.refused, n / (now - start))
                last_report = now
        return True

    def _send(self, bgr: np.ndarray) -> None:
        bgr, _ = resize_max_side(bgr, self.max_side)
        h, w = bgr.shape[:2]
        try:
            jpeg, resent = self.still.jpeg(bgr, time.monotonic(), lambda b: encode_bgr(b, self.quality))
        except BadFrame as e:  # a frame the encoder refuses: count it, keep capturing
            self.stats.dropped += 1
            log.warning("%s: frame not sent: %s", self.camera, e)
            return
        self._seq += 1
        frame = Frame(self.camera, self._seq, int(time.time() * 1000), w, h, jpeg)
        try:
            self.r.xadd(self.stream, frame.to_fields(), maxlen=self.budget.maxlen(len(jpeg)), approximate=True)
            self.stats.sent += 1
            self.stats.resent += resent
            self._say_unsent()
            self.refusals.accepted()
        except Exception as e:  # noqa: BLE001 - Redis away or refusing: drop this frame, count it, keep capturing
            if self.refusals.refused(e) is None:
                raise
            self.stats.dropped += 1
            self.stats.refused += 1
            self._unsent = (self._unsent or (self._seq, self._seq))[0], self._seq
            if condition(e) == "UNREACHABLE":
                self.sleep(0.5)  # each try may wait out a connect timeout: not one per frame

    def _say_unsent(self) -> None:
        """Which frames (sequence numbers) Redis refused, once it accepts again or the producer stops."""
        if self._unsent is not None:
            log.warning("%s: frames %d-%d not sent (Redis away or refusing); counted as dropped", self.camera,
                        *self._unsent)
            self._unsent = None


#: What a camera entry of a cameras (stack) file may hold.
CAMERA_KEYS = frozenset({"camera", "source", "fps", "loop", "quality", "max_side", "as_fast_as_possible"})
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def expand_source(source: str) -> str:
    """``source`` with each ``${VAR}`` taken from the environment (credentials stay out of camera files);
    FacestreamError naming a variable that is not set."""
    def value(m: re.Match[str]) -> str:
        if m.group(1) not in os.environ:
            raise FacestreamError(f"source {redact(source)!r} uses ${{{m.group(1)}}}, which is not set")
        return os.environ[m.group(1)]

    return _VAR.sub(value, str(source))


def load_cameras(path: Path) -> list[dict]:
    """Camera entries (camera, source, and optional fps/loop/quality/max_side) from a YAML file."""
    import yaml

    try:
        data = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as e:
        raise FacestreamError(f"cannot read cameras file {path}: {e}") from None
    cams = data.get("cameras") if isinstance(data, dict) else None
    if not isinstance(cams, list) or not cams:
        raise FacestreamError(f"{path} must have a non-empty 'cameras:' list")
    for i, c in enumerate(cams):
        if not isinstance(c, dict) or not {"camera", "source"} <= set(c):
            raise FacestreamError(f"{path}: camera #{i + 1} needs 'camera' and 'source'")
        if set(c) - CAMERA_KEYS:
            raise FacestreamError(f"{path}: camera {c['camera']!r} has unknown keys {sorted(set(c) - CAMERA_KEYS)}")
        check_id("camera", str(c["camera"]))
    return cams


def producers_from(client: redis.Redis, settings: Settings, cams: list[dict]) -> list[Producer]:
    return [
        Producer(client, settings, str(c["camera"]), expand_source(c["source"]), c.get("fps"),
                 not c.get("as_fast_as_possible", False), bool(c.get("loop", False)),
                 int(c.get("quality", 80)), int(c.get("max_side", MAX_SIDE)))
        for c in cams
    ]
