"""The application layer: the ``facestream`` command line, the demo and the benchmarks.

It sits on top of every stage (producer/, gears/, consumer/, models/) and of the core
(:mod:`facestream`); nothing below imports it.
"""
