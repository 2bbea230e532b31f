"""Which embedding model made the vectors under a key prefix, so two models' vectors never mix.

Vectors of different models are not comparable, even of one size (two 512-d ArcFace models), so
the first process that writes or searches vectors under a prefix stamps it (``<prefix>:model``,
``"<model id> <dim>"``, readable with ``redis-cli GET``) and every later one with another model is
refused with what to do. Galleries enrolled before the stamp existed hold dlib's vectors and are
taken as stamped so.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from facestream.errors import GalleryError
from facestream.keys import Keys
from facestream.models.types import DLIB_MODEL_ID
from facestream.replies import text

Call = Callable[..., Any]
LEGACY = (DLIB_MODEL_ID, 128)  # what an unstamped gallery with faces holds: every earlier version embedded with dlib


@dataclass(frozen=True)
class ModelStamp:
    model_id: str
    dim: int

    def __str__(self) -> str:
        return f"{self.model_id} {self.dim}"

    @classmethod
    def parse(cls, raw: str) -> ModelStamp:
        model_id, _, dim = raw.rpartition(" ")
        return cls(model_id, int(dim))


def stamped(call: Call, keys: Keys) -> ModelStamp | None:
    """The prefix's stamp; an unstamped prefix whose gallery index exists counts as :data:`LEGACY`."""
    raw = call("GET", keys.model)
    if raw is not None:
        return ModelStamp.parse(text(raw))
    try:
        call("FT.INFO", keys.index)
    except Exception:  # no such index (or no search module): nothing enrolled to protect
        return None
    return ModelStamp(*LEGACY)


def prefix_dim(call: Call, keys: Keys) -> int:
    """The size of the vectors under the prefix: its stamp's, else dlib's 128 (nothing stamped yet)."""
    have = stamped(call, keys)
    return have.dim if have else LEGACY[1]


def check(call: Call, keys: Keys, stamp: ModelStamp) -> None:
    """GalleryError if the vectors under the prefix come from another model than ``stamp``'s (reads only)."""
    have = stamped(call, keys)
    if have is not None and have != stamp:
        raise GalleryError(
            f"the vectors under key prefix {keys.prefix!r} come from model {have.model_id} ({have.dim}-d), this "
            f"embedder is {stamp.model_id} ({stamp.dim}-d): re-enroll with this model (facestream people clear "
            f"--yes, then enroll) or use another key_prefix")


def claim(call: Call, keys: Keys, stamp: ModelStamp) -> None:
    """Stamp the prefix with ``stamp`` unless stamped; GalleryError if its vectors come from another model."""
    check(call, keys, stamp)
    if call("SET", keys.model, str(stamp), "NX") is None:  # stamped before, or by another process just now
        check(call, keys, stamp)
