"""facestream: real-time face recognition on Redis Streams.

The public API, a few names (imported on first use, so that ``import facestream`` stays light for the
in-server gear); the README's example, which its test runs::

    import facestream

    settings = facestream.Settings()               # FACESTREAM_* environment, a config file, or defaults
    r = facestream.connect(settings)               # the embedded Redis unless redis_url is set
    index = facestream.connect_index(settings, r)  # the gallery's server: r itself unless index_url is set
    print(facestream.enroll(index, settings, ["gallery/"]).enrolled)  # gallery/<person_id>/*.jpg
    for hit in facestream.search(index, settings, "photo.jpg", since="24h"):  # every sighting of that face
        print(hit.sighting.camera, hit.sighting.ts_ms, hit.distance)
    for kind, entry_id, result in facestream.follow(r, settings):  # one FrameResult per answered frame, until Ctrl-C
        print(result.camera, result.names, result.to_json()["faces"])

:class:`Producer` pushes a camera's frames, :class:`Worker` answers them (``facestream produce`` and
``facestream work`` run these); the records (:class:`Frame`, :class:`FrameResult`, :class:`Face`,
:class:`IdentityEvent`, :class:`DeadLetter`, :class:`Sighting`) are what flows between them.

Layout: ``facestream`` holds the core (settings, keys, records, the embedded server) and the CLI
(``facestream.app``); the stages are its sub-packages ``facestream.producer``, ``facestream.gears``,
``facestream.consumer`` and ``facestream.models`` (folders ``producer/``, ``gears/``, ``consumer/``,
``models/`` at the top of the repository).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

__version__ = "0.1.0"

#: public name -> the module that defines it
_API = {
    "Settings": "facestream.config",
    "load_settings": "facestream.config",
    "connect": "facestream.server",
    "connect_index": "facestream.server",
    "EmbeddedRedis": "facestream.server",
    "Frame": "facestream.records",
    "FrameResult": "facestream.records",
    "Face": "facestream.records",
    "IdentityEvent": "facestream.records",
    "DeadLetter": "facestream.records",
    "Sighting": "facestream.records",
    "FacestreamError": "facestream.errors",
    "Producer": "facestream.producer.capture",
    "Worker": "facestream.gears.worker",
    "follow": "facestream.consumer.follow",
    "enroll": "facestream.models.curation.library",
    "search": "facestream.models.curation.library",
}
__all__ = ["__version__", *_API]

if TYPE_CHECKING:
    from facestream.config import Settings, load_settings
    from facestream.consumer.follow import follow
    from facestream.errors import FacestreamError
    from facestream.gears.worker import Worker
    from facestream.models.curation.library import enroll, search
    from facestream.producer.capture import Producer
    from facestream.records import DeadLetter, Face, Frame, FrameResult, IdentityEvent, Sighting
    from facestream.server import EmbeddedRedis, connect, connect_index


def __getattr__(name: str) -> object:
    if name not in _API:
        raise AttributeError(f"module 'facestream' has no attribute {name!r}")
    value = getattr(importlib.import_module(_API[name]), name)
    globals()[name] = value
    return value
