"""``facestream``, the command line: each subcommand parses its options and calls one library function.

- :mod:`.app`: the Typer app, the global options (``--config``, ``--redis-url``) and :func:`main`;
- :mod:`.gallery`: enroll, people, calibrate, eval;
- :mod:`.naming`: cohort, feedback;
- :mod:`.sightings`: search, visitors, forget;
- :mod:`.up`: up (the supervised local stack);
- :mod:`.pipeline`: redis, work, status, gears, produce, consume, dashboard, demo;
- :mod:`.users`: users (the dashboard's logins);
- :mod:`.bench`: bench.
"""

from facestream.app.cli import gallery, naming, sightings, pipeline, users, up, bench  # noqa: F401, I001 - each registers its commands, in this order
from facestream.app.cli.app import app, main

__all__ = ["app", "main"]
