"""The application layer, by concern: the ``facestream`` command line (:mod:`facestream.app.cli`), the
local stack that ``up`` and ``demo`` run (:mod:`facestream.app.stack`) and the benchmarks
(:mod:`facestream.app.bench`).

It sits on top of every stage (producer/, gears/, consumer/, models/) and of the core
(:mod:`facestream`); nothing below imports it, and the CLI imports the benchmarks only when asked.
"""
