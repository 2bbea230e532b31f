"""Decoding: JPEG bytes or image files → one RGB uint8 array. The only place channel order is handled.

dlib and every backend here expect RGB; OpenCV decodes to BGR. A frame passed in the wrong order
silently yields zero faces, so nothing else in facestream calls ``cv2.imdecode``. Camera frames are decoded
by libjpeg-turbo through simplejpeg when it is installed: the same pixels as OpenCV's decoder in about half the
CPU time (3.3 vs 6.0 ms for a 1080p frame: ~5% of a busy worker's CPU). Also the small greyscale scene thumbnails
whose difference says whether a camera's scene changed (:func:`scene_changed`).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from facestream.errors import BadFrame

try:
    import simplejpeg
except ImportError:  # the in-server gear's Python 3.7 has OpenCV's decoder only
    simplejpeg = None

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff"}


def decode(data: bytes | bytearray | memoryview, max_pixels: int = 4096 * 4096) -> np.ndarray:
    """Decode an encoded image (JPEG, PNG, ...) to an RGB array; raise BadFrame if it is not one.

    JPEG and PNG sizes are read from their headers first, so a decompression bomb is refused before
    anything is decoded; other formats are bounded by OpenCV's own pixel cap (set at start-up).
    """
    buf = np.frombuffer(data, dtype=np.uint8)
    if buf.size == 0:
        raise BadFrame("empty image data")
    size = header_size(buf.tobytes())
    if size is not None:
        _check_size(*size, max_pixels)
    try:
        bgr = cv2.imdecode(buf, cv2.IMREAD_COLOR)
    except cv2.error as e:  # OpenCV refuses absurd sizes with an exception, not None
        raise BadFrame(f"image cannot be decoded: {str(e).strip().splitlines()[-1][:200]}") from None
    if bgr is None:
        raise BadFrame("data is not a decodable image (corrupt or truncated JPEG?)")
    _check_size(bgr.shape[1], bgr.shape[0], max_pixels)
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def decode_frame(data: bytes | bytearray | memoryview, max_pixels: int) -> np.ndarray:
    """A camera frame: JPEG only (what producers send), its size read from the header before decoding."""
    head = bytes(data[:3])
    if head[:2] != b"\xff\xd8":
        raise BadFrame("frame is not a JPEG (frames must be JPEG; starts with %r)" % head)
    size = header_size(bytes(data))
    if size is None:
        raise BadFrame("JPEG has no frame header (SOF) before its image data: corrupt or crafted")
    if simplejpeg is not None and bytes(data[:EXIF_WITHIN]).find(b"Exif\0\0") < 0:  # EXIF may turn it: OpenCV's
        _check_size(*size, max_pixels)
        try:
            return simplejpeg.decode_jpeg(data, colorspace="RGB")
        except ValueError:  # truncated, CMYK, ...: OpenCV's decoder gives its own verdict (or the part it can)
            pass
    return decode(data, max_pixels)


#: A frame with an EXIF segment this early may ask to be turned: decoded by OpenCV, which turns it.
EXIF_WITHIN = 64 * 1024
#: Sides outside this range are refused: detectors fail on slivers, and no camera sends them.
MIN_SIDE, MAX_SIDE = 16, 16384


def _check_size(w: int, h: int, max_pixels: int) -> None:
    if w * h > max_pixels:
        raise BadFrame(f"image is {w}x{h}, over max_frame_pixels={max_pixels}")
    if min(w, h) < MIN_SIDE or max(w, h) > MAX_SIDE:
        raise BadFrame(f"image is {w}x{h}: each side must be {MIN_SIDE}-{MAX_SIDE} px")


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


#: Grey levels a pixel of a scene thumbnail may move by and still count as unchanged: JPEG and sensor noise,
#: averaged over the pixels each stands for, stays under this on a still scene.
STILL_DELTA = 16


def scene_thumb(jpeg: bytes) -> np.ndarray | None:
    """A JPEG's scene thumbnail: its 1/8 greyscale, from JPEG's DCT scaling (~0.8 ms for 1080p, against ~8 ms
    for the full decode); None if it cannot be decoded (the full decode then says why)."""
    return cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_REDUCED_GRAYSCALE_8)


def scene_thumb_bgr(bgr: np.ndarray) -> np.ndarray:
    """A raw frame's scene thumbnail, 1/8 of its sides: its green channel (most of the luma), every 4th pixel,
    averaged 2 x 2 (~0.1 ms for 1080p). Compared only with thumbnails made the same way."""
    h, w = bgr.shape[:2]
    green = np.ascontiguousarray(bgr[::4, ::4, 1] if bgr.ndim == 3 else bgr[::4, ::4])
    return cv2.resize(green, (-(-w // 8), -(-h // 8)), interpolation=cv2.INTER_AREA)


def scene_changed(thumb: np.ndarray, before: np.ndarray, share: float) -> bool:
    """Whether more than ``share`` of a scene thumbnail's pixels moved by more than :data:`STILL_DELTA` since
    ``before`` (another size: changed)."""
    if thumb.shape != before.shape:
        return True
    return int(np.count_nonzero(cv2.absdiff(thumb, before) > STILL_DELTA)) > share * thumb.size


def thumbnail(rgb: np.ndarray, box: tuple[int, int, int, int], max_side: int, pad: float = 0.3) -> bytes:
    """A small JPEG of one face (its box grown by ``pad`` on each side): what a sighting shows (~2-4 KB)."""
    h, w = rgb.shape[:2]
    left, top, right, bottom = box
    px, py = round((right - left) * pad), round((bottom - top) * pad)
    crop = rgb[max(0, top - py):min(h, bottom + py), max(0, left - px):min(w, right + px)]
    if crop.size == 0:
        crop = rgb
    if max(crop.shape[:2]) > max_side:
        crop, _ = resize_max_side(crop, max_side)
    return encode_jpeg(np.ascontiguousarray(crop), 80)


def rescale(rgb: np.ndarray, scale: float) -> np.ndarray:
    """``rgb`` resized by ``scale`` (any channel order): area averaging when it at least halves it (bilinear would
    skip pixels: aliasing), bilinear otherwise (as sharp, and ~5x faster than area averaging at 0.83). Not area
    averaging by a whole factor then bilinear (3x faster): it shifts boxes and landmarks by up to a pixel per
    factor, and Miranda's close-up on the Hamilton clip lost 4 of its 121 named frames to it."""
    if scale == 1.0:
        return rgb
    h, w = rgb.shape[:2]
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return cv2.resize(rgb, size, interpolation=cv2.INTER_AREA if scale <= 0.5 else cv2.INTER_LINEAR)


def resize_max_side(rgb: np.ndarray, max_side: int) -> tuple[np.ndarray, float]:
    """Downscale so the longest side is at most ``max_side``; return the image and the scale used."""
    scale = min(1.0, max_side / max(rgb.shape[:2]))
    return rescale(rgb, scale), scale


def header_size(b: bytes) -> tuple[int, int] | None:
    """(width, height) from a JPEG's frame header (walking every segment, however long) or a PNG's
    IHDR; None for other formats, or a JPEG whose image data starts before any frame header."""
    if b.startswith(b"\x89PNG\r\n\x1a\n") and len(b) >= 24 and b[12:16] == b"IHDR":
        return int.from_bytes(b[16:20], "big"), int.from_bytes(b[20:24], "big")
    if not b.startswith(b"\xff\xd8"):
        return None
    i = 2
    while i + 9 < len(b):
        if b[i] != 0xFF:
            return None
        marker = b[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:  # markers without a length
            i += 2
            continue
        if marker in SOF_MARKERS:
            return int.from_bytes(b[i + 7 : i + 9], "big"), int.from_bytes(b[i + 5 : i + 7], "big")
        if marker in (0xDA, 0xD9):  # start of scan / end of image before any frame header
            return None
        i += 2 + int.from_bytes(b[i + 2 : i + 4], "big")
    return None


#: Start-of-frame markers (baseline, progressive, lossless, arithmetic): they carry the image size.
SOF_MARKERS = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
