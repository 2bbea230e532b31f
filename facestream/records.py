"""The record types every stage shares, and their exact stream-field encoding.

A producer writes a :class:`Frame`; a gear step turns it into a :class:`FrameResult` holding one
:class:`Face` per detected face; presence changes become :class:`IdentityEvent`; anything that
cannot be processed becomes a :class:`DeadLetter`. Field values are plain text or JSON so that
``redis-cli XRANGE`` is readable; the only binary field is the frame's ``jpeg``.
"""

from __future__ import annotations

import json
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any, Iterator, Mapping, Union

from facestream.errors import BadFrame, BadRecord, ConfigError
from facestream.keys import check_id
from facestream.replies import text

UNKNOWN = "unknown"
MAX_TS_MS = 2**53  # larger numbers lose precision in Lua and JSON

Fields = Mapping[Union[bytes, str], Union[bytes, bytearray, str]]


@contextmanager
def _parsing(kind: str) -> Iterator[None]:
    """Turn whatever a malformed entry raises while it is read into one BadRecord naming the reason."""
    try:
        yield
    except (KeyError, ValueError, TypeError, AttributeError, UnicodeDecodeError, ConfigError) as e:
        raise BadRecord(f"malformed {kind} entry: {type(e).__name__}: {e}") from None


def _get(fields: Fields, name: str) -> Any:
    """Field lookup that accepts both bytes and str keys (redis-py vs RedisGears records)."""
    v = fields.get(name)
    return fields.get(name.encode()) if v is None else v


@dataclass
class Frame:
    """One JPEG frame from one camera, as written to ``fs:frames:<camera>``."""

    camera: str
    seq: int
    ts_ms: int  # capture time, ms since the epoch (camera clock)
    width: int
    height: int
    jpeg: bytes

    def to_fields(self) -> dict[str, str | bytes]:
        return {
            "camera": self.camera,
            "seq": str(self.seq),
            "ts_ms": str(self.ts_ms),
            "width": str(self.width),
            "height": str(self.height),
            "jpeg": self.jpeg,
        }

    @classmethod
    def from_fields(cls, fields: Fields, max_bytes: int) -> "Frame":
        """Parse a stream entry; raise BadFrame with a reason a human can act on."""
        if not fields:
            raise BadFrame("empty entry (deleted or trimmed before it was read)")
        missing = [n for n in ("camera", "ts_ms", "jpeg") if _get(fields, n) is None]
        if missing:
            raise BadFrame(f"missing field(s): {', '.join(missing)}")
        raw = _get(fields, "jpeg")
        # RedisGears hands over binary values as bytearray, or as str when they happen to be UTF-8.
        jpeg = raw.encode("utf-8", "surrogateescape") if isinstance(raw, str) else bytes(raw)
        if not jpeg:
            raise BadFrame("empty jpeg field")
        if len(jpeg) > max_bytes:
            raise BadFrame(f"jpeg is {len(jpeg)} bytes, over max_frame_bytes={max_bytes}")
        try:
            frame = cls(
                camera=text(_get(fields, "camera")),
                seq=int(text(_get(fields, "seq") or "0")),
                ts_ms=int(text(_get(fields, "ts_ms"))),
                width=int(text(_get(fields, "width") or "0")),
                height=int(text(_get(fields, "height") or "0")),
                jpeg=jpeg,
            )
        except (ValueError, UnicodeDecodeError) as e:
            raise BadFrame(f"bad numeric/text field: {e}") from None
        if not 0 <= frame.ts_ms <= MAX_TS_MS:
            raise BadFrame(f"ts_ms {frame.ts_ms} is not a capture time (ms since 1970, 0..{MAX_TS_MS})")
        if min(frame.seq, frame.width, frame.height) < 0 or max(frame.seq, frame.width, frame.height) > 2**53:
            raise BadFrame("seq, width and height must be non-negative integers")
        return frame


@dataclass
class Face:
    """One detected face: where it is, who it is (or ``unknown``), and how sure."""

    box: tuple[int, int, int, int]  # left, top, right, bottom in frame pixels
    score: float = 1.0  # detector confidence
    person_id: str = UNKNOWN
    name: str = UNKNOWN
    distance: float | None = None  # squared L2 to the best gallery face (None: gallery empty)
    confidence: float = 0.0  # 0..1, how far inside the threshold the match is
    track_id: int | None = None
    reason: str = ""  # why it got its name or stayed unknown (docs/streams.md; "" in results written before)
    quality: dict[str, float] | None = None  # size px, sharpness, yaw of the face's last embedded look
    visitor: str = ""  # an unknown face's visitor id (v-000123: the same stranger keeps it), else ""

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["box"] = list(self.box)
        return d

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> "Face":
        box = tuple(int(v) for v in d["box"])
        if len(box) != 4:
            raise ValueError("a face box has 4 numbers")
        return cls(**{**d, "box": box})


@dataclass
class FrameResult:
    """What a worker found in one frame, written to ``fs:results`` (one per frame, even with no face)."""

    frame_id: str  # entry id of the frame in its camera stream: the idempotency key
    camera: str
    seq: int
    ts_ms: int
    faces: list[Face] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)  # ms: queue, decode, detect, embed, search, total
    worker: str = ""
    width: int = 0
    height: int = 0
    embedded: int = 0  # faces embedded on this frame (the others took their track's name)
    unchanged: bool = False  # not searched: the scene had not changed since a searched frame with no face

    @property
    def names(self) -> list[str]:
        return [f.name for f in self.faces]

    def to_json(self) -> dict[str, Any]:
        """The result as JSON (``facestream consume --json``, the dashboard): its fields, boxes as lists, names."""
        return {**asdict(self), "faces": [f.to_json() for f in self.faces], "names": self.names}

    def to_fields(self) -> dict[str, str]:
        return {
            "frame_id": self.frame_id,
            "camera": self.camera,
            "seq": str(self.seq),
            "ts_ms": str(self.ts_ms),
            "n_faces": str(len(self.faces)),
            "names": ",".join(self.names),
            "faces": json.dumps([f.to_json() for f in self.faces], separators=(",", ":")),
            "timings": json.dumps({k: round(v, 2) for k, v in self.timings.items()}, separators=(",", ":")),
            "worker": self.worker,
            "size": f"{self.width}x{self.height}",
            "embedded": str(self.embedded),
            **({"unchanged": "1"} if self.unchanged else {}),
        }

    @classmethod
    def from_fields(cls, fields: Fields) -> "FrameResult":
        """Parse a results entry; BadRecord if it is not one of ours."""
        with _parsing("results"):
            return cls._parse({text(k): text(v) for k, v in fields.items()})

    @classmethod
    def _parse(cls, f: dict[str, str]) -> "FrameResult":
        w, _, h = f.get("size", "0x0").partition("x")
        faces = [Face.from_json(d) for d in json.loads(f["faces"])]
        timings = json.loads(f["timings"])
        if not isinstance(timings, dict) or not all(isinstance(v, (int, float)) for v in timings.values()):
            raise ValueError("timings must map stage names to milliseconds")
        return cls(
            frame_id=f["frame_id"],
            camera=check_id("camera", f["camera"]),
            seq=int(f["seq"]),
            ts_ms=int(f["ts_ms"]),
            faces=faces,
            timings=timings,
            worker=f.get("worker", ""),
            width=int(w or 0),
            height=int(h or 0),
            embedded=int(f.get("embedded", len(faces))),
            unchanged=f.get("unchanged") == "1",
        )


@dataclass
class Sighting:
    """One kept view of a face (``fs:sighting:<id>``): a track's best looks, searchable by face and time."""

    sighting_id: str  # <camera>-<ts_ms>-<face index>: a replayed frame rewrites the same sighting
    camera: str
    ts_ms: int
    person_id: str = UNKNOWN
    visitor: str = ""
    track_id: int | None = None
    reason: str = ""
    distance: float | None = None  # to the named person's best face (None: nobody enrolled)
    quality: dict[str, float] = field(default_factory=dict)
    vector: bytes = b""  # float32 little-endian, unit length
    thumb: bytes = b""  # JPEG of the face

    @property
    def who(self) -> str:
        """The person id, else the visitor id, else ``unknown``: what a listing shows."""
        return self.person_id if self.person_id != UNKNOWN else self.visitor or UNKNOWN

    def to_fields(self) -> dict[str, str | bytes]:
        return {
            "camera": self.camera, "ts_ms": str(self.ts_ms), "person_id": self.person_id,
            "visitor": self.visitor, "track_id": "" if self.track_id is None else str(self.track_id),
            "reason": self.reason, "distance": "" if self.distance is None else f"{self.distance:.4f}",
            "quality": json.dumps(self.quality, separators=(",", ":")), "vector": self.vector, "thumb": self.thumb,
        }  # fmt: skip

    @classmethod
    def from_fields(cls, sighting_id: str, fields: Fields) -> "Sighting":
        """Parse a sighting hash (any subset of its fields); BadRecord if it is not one of ours."""
        with _parsing("sighting"):
            raw = {text(k): v for k, v in fields.items()}
            f = {k: text(v) for k, v in raw.items() if k not in ("vector", "thumb")}
            return cls(sighting_id, f.get("camera", ""), int(f.get("ts_ms", 0)), f.get("person_id", UNKNOWN),
                       f.get("visitor", ""), int(f["track_id"]) if f.get("track_id") else None,
                       f.get("reason", ""), float(f["distance"]) if f.get("distance") else None,
                       json.loads(f.get("quality") or "{}"), bytes(raw.get("vector", b"")), bytes(raw.get("thumb", b"")))


@dataclass
class IdentityEvent:
    """A person appears on, or leaves, a camera."""

    kind: str  # "appear" | "leave"
    camera: str
    person_id: str
    name: str
    ts_ms: int  # camera time of the frame that caused the event (camera_silent: when they were last seen)
    frame_id: str  # "" for camera_silent (no frame said it)
    reason: str = ""  # a leave's: "unseen" (not on the camera's frames for absent_after_s) or "camera_silent"

    def to_fields(self) -> dict[str, str]:
        return {k: str(v) for k, v in asdict(self).items() if k != "reason" or v}  # an appear has no reason

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_fields(cls, fields: Fields) -> "IdentityEvent":
        """Parse an events entry; BadRecord if it is not one of ours."""
        with _parsing("events"):
            f = {text(k): text(v) for k, v in fields.items()}
            return cls(f["kind"], check_id("camera", f["camera"]), f["person_id"], f["name"], int(f["ts_ms"]),
                       f["frame_id"], f.get("reason", ""))


@dataclass
class DeadLetter:
    """A frame that was not processed, and why. The frame bytes stay in their stream until trimmed."""

    stream: str
    entry_id: str
    reason: str
    camera: str = ""
    deliveries: int = 1
    worker: str = ""

    def to_fields(self) -> dict[str, str]:
        return {k: str(v) for k, v in asdict(self).items()}

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_fields(cls, fields: Fields) -> "DeadLetter":
        """Parse a dead-letter entry; BadRecord if it is not one of ours."""
        with _parsing("deadletter"):
            f = {text(k): text(v) for k, v in fields.items()}
            return cls(f["stream"], f["entry_id"], f["reason"], f.get("camera", ""), int(f.get("deliveries", 1)),
                       f.get("worker", ""))
