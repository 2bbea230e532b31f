"""Reading raw Redis replies: bytes to text, flat ``[k1, v1, k2, v2, ...]`` arrays to dicts.

Pure Python with no redis-py import, because the in-server gear (RedisGears' ``execute``) parses
the same replies as ``facestream work`` does.
"""

from __future__ import annotations

from typing import Any, Sequence


def text(v: Any) -> str:
    """A Redis reply value (bytes, bytearray, str, number) as str."""
    return v if isinstance(v, str) else bytes(v).decode("utf-8") if isinstance(v, (bytes, bytearray)) else str(v)


def as_dict(flat: Sequence[Any] | dict | None, lower: bool = False) -> dict[str, Any]:
    """``[k1, v1, k2, v2, ...]`` (or an already-parsed dict) as ``{text(k): v}``; ``lower``: keys lower-cased."""
    if not flat:
        return {}
    items = flat.items() if isinstance(flat, dict) else zip(flat[0::2], flat[1::2])
    return {(text(k).lower() if lower else text(k)): v for k, v in items}
