"""Decoding: JPEG bytes or image files → one RGB uint8 array. The only place channel order is handled.

dlib and every backend here expect RGB; OpenCV decodes to BGR. A frame passed in the wrong order
silently yields zero faces, so nothing else in facestream calls ``cv2.imdecode``.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from facestream.errors import BadFrame

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}


def decode(data: bytes | bytearray | memoryview, max_pixels: int = 4096 * 4096) -> np.ndarray:
    """Decode an encoded image (JPEG, PNG, ...) to an RGB array; raise BadFrame if it is not one."""
    buf = np.frombuffer(data, dtype=np.uint8)
    if buf.size == 0:
        raise BadFrame("empty image data")
    # Read the header first so a decompression bomb is refused before it is decoded.
    ok, w, h = _peek_size(buf)
    if ok and w * h > max_pixels:
        raise BadFrame(f"image is {w}x{h}, over max_frame_pixels={max_pixels}")
    bgr = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    if bgr is None:
        raise BadFrame("data is not a decodable image (corrupt or truncated JPEG?)")
    if bgr.shape[0] * bgr.shape[1] > max_pixels:
        raise BadFrame(f"image is {bgr.shape[1]}x{bgr.shape[0]}, over max_frame_pixels={max_pixels}")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def load(path: str | Path) -> np.ndarray:
    """Read an image file as RGB; raise BadFrame naming the file if it cannot be read."""
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise BadFrame(f"cannot read {path}: {e.strerror}") from None
    return decode(data)


def encode_jpeg(rgb: np.ndarray, quality: int = 85) -> bytes:
    """RGB array → JPEG bytes."""
    return encode_bgr(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), quality)


def encode_bgr(bgr: np.ndarray, quality: int = 85) -> bytes:
    """BGR array (OpenCV's own order, as cameras deliver it) → JPEG bytes; BadFrame if it cannot be encoded."""
    try:
        ok, buf = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, quality])
    except cv2.error as e:
        raise BadFrame(f"JPEG encoding failed: {e}") from None
    if not ok:
        raise BadFrame("JPEG encoding failed")
    return buf.tobytes()


def resize_max_side(rgb: np.ndarray, max_side: int) -> tuple[np.ndarray, float]:
    """Downscale so the longest side is at most ``max_side``; return the image and the scale used
    (any channel order)."""
    h, w = rgb.shape[:2]
    scale = min(1.0, max_side / max(h, w))
    if scale == 1.0:
        return rgb, 1.0
    return cv2.resize(rgb, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA), scale


def _peek_size(buf: np.ndarray) -> tuple[bool, int, int]:
    """Width/height from a JPEG SOF marker without decoding (False if not found)."""
    b = buf.tobytes()[:65536]
    if not b.startswith(b"\xff\xd8"):
        return False, 0, 0
    i = 2
    while i + 9 < len(b):
        if b[i] != 0xFF:
            return False, 0, 0
        marker, length = b[i + 1], int.from_bytes(b[i + 2 : i + 4], "big")
        if marker in (0xC0, 0xC1, 0xC2):
            return True, int.from_bytes(b[i + 7 : i + 9], "big"), int.from_bytes(b[i + 5 : i + 7], "big")
        i += 2 + length
    return False, 0, 0
