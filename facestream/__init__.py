"""facestream: real-time face recognition on Redis Streams.

The shared pieces live here: :mod:`facestream.config` (settings), :mod:`facestream.keys` (key
names), :mod:`facestream.records` (the frame/result/event/dead-letter records) and
:mod:`facestream.server` (the embedded Redis). The stages are the sibling packages ``producer``,
``gears``, ``consumer`` and ``models``.
"""

__version__ = "0.1.0"
