"""Hostile and careless inputs, written for the tests: one generator per class of bad frame.

Each yields (class name, stream fields); every one of them must be dead-lettered with a reason.
"""

from __future__ import annotations

import random
import struct
import zlib
from typing import Iterator

import cv2
import numpy as np

Fields = dict[str, bytes | str]


def jpeg(w: int = 96, h: int = 72, seed: int = 0) -> bytes:
    rng = np.random.default_rng(seed)
    img = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
    ok, buf = cv2.imencode(".jpg", img)
    assert ok
    return buf.tobytes()


def with_size(data: bytes, w: int, h: int) -> bytes:
    """The JPEG with its frame header (SOF) claiming ``w`` x ``h``."""
    i = data.index(b"\xff\xc0")
    return data[: i + 5] + struct.pack(">HH", h, w) + data[i + 9 :]


def comment_first(data: bytes, size: int = 70_000) -> bytes:
    """COM segments (up to 65533 bytes each) between SOI and the rest: pushes SOF past 64 KB."""
    out, left = [data[:2]], size
    while left > 0:
        n = min(left, 65533)
        out.append(b"\xff\xfe" + struct.pack(">H", n + 2) + b"x" * n)
        left -= n
    return b"".join(out) + data[2:]


def png_header(w: int, h: int) -> bytes:
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    return b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + chunk + struct.pack(">I", zlib.crc32(chunk)) + b"\0" * 64


def frame(camera: str, data: bytes | str, ts: str = "1700000000000", **extra: str) -> Fields:
    return {"camera": camera, "seq": "1", "ts_ms": ts, "width": "0", "height": "0", "jpeg": data, **extra}


def bad_frames(camera: str, n: int, seed: int = 1) -> Iterator[tuple[str, Fields]]:
    """``n`` malformed frames for ``camera``'s stream, cycling through every class below."""
    rng = random.Random(seed)
    good = jpeg()
    png = cv2.imencode(".png", np.zeros((40, 40, 3), np.uint8))[1].tobytes()
    classes = [
        ("missing jpeg", lambda: {"camera": camera, "ts_ms": "1"}),
        ("missing camera", lambda: {"ts_ms": "1", "jpeg": good}),
        ("empty jpeg", lambda: frame(camera, b"")),
        ("random bytes", lambda: frame(camera, rng.randbytes(rng.randint(1, 4000)))),
        ("truncated jpeg", lambda: frame(camera, good[: rng.randint(3, 300)])),  # cut before the image data
        ("corrupt scan", lambda: frame(camera, good[:400] + rng.randbytes(200) + good[600:620])),
        ("bomb after a comment", lambda: frame(camera, comment_first(with_size(good, 12000, 12000)))),
        ("absurd size", lambda: frame(camera, with_size(good, 60000, 60000))),
        ("sliver", lambda: frame(camera, with_size(good, 1, 60000))),
        ("zero size", lambda: frame(camera, with_size(good, 0, 0))),
        ("png frame", lambda: frame(camera, png)),
        ("png bomb", lambda: frame(camera, png_header(12000, 12000))),
        ("negative ts", lambda: frame(camera, good, ts=str(-rng.randint(1, 10**6)))),
        ("huge ts", lambda: frame(camera, good, ts="9" * 30)),
        ("text ts", lambda: frame(camera, good, ts="yesterday")),
        ("float ts", lambda: frame(camera, good, ts="1.5e12")),
        ("negative seq", lambda: frame(camera, good, seq="-3")),
        ("camera mismatch", lambda: frame("elsewhere", good)),
        ("camera not text", lambda: frame(b"\xff\xfe\xfd", good)),  # type: ignore[arg-type]
        ("ts not text", lambda: {**frame(camera, good), "ts_ms": b"\xff\x00"}),
        ("no SOF before scan", lambda: frame(camera, b"\xff\xd8\xff\xda\x00\x08" + rng.randbytes(300))),
        ("no SOI", lambda: frame(camera, good[2:])),
    ]
    for i in range(n):
        name, make = classes[i % len(classes)]
        yield name, make()


#: Stream keys under the frames prefix that are not camera ids (each must be skipped, not crash discovery).
BAD_KEY_TAILS = [b"\xff\xfe", b"a b", b"<script>alert(1)</script>", b"x" * 65, b"caf\xc3\xa9", b""]
