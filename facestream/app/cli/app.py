"""The Typer app every subcommand registers on, its global options, and the console entry point."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated, Callable, Optional

import redis
import typer
from redis.exceptions import RedisClusterException
from tqdm import tqdm

from facestream.config import Settings, load_settings
from facestream.config_file import CONFIG_ENV
from facestream.errors import FacestreamError
from facestream.redaction import redact
from facestream.refusals import EXIT_TEMPFAIL, condition, explain

app = typer.Typer(
    help="Real-time face recognition on Redis Streams.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

#: Processes for the commands that analyse many images (enroll, calibrate, eval).
DEFAULT_PROCESSES = min(2, os.cpu_count() or 1)


def settings_of(ctx: typer.Context) -> Settings:
    """The validated settings built by the top-level callback."""
    return ctx.obj


def audited(s: Settings, action: str, target: str, detail: str = "") -> None:
    """Record a gallery change made from the command line in the audit trail (who: the OS user)."""
    import getpass

    from facestream.keys import Keys
    from facestream.models.curation import audit
    from facestream.server import connect_index

    audit.record(connect_index(s), Keys(s.key_prefix), f"cli:{getpass.getuser()}", "cli", action, target, detail)


def say(message: str) -> None:
    """Progress and notes go to stderr, so stdout stays the command's output."""
    typer.echo(message, err=True)


def progress(total: int | None, desc: str, unit: str = "file") -> tuple[tqdm, Callable[..., None]]:
    """A tqdm bar on stderr and the callback that advances it by one."""
    bar = tqdm(total=total, desc=desc, unit=unit, file=sys.stderr, dynamic_ncols=True)
    return bar, lambda *_: bar.update(1)


@app.callback()
def _root(
    ctx: typer.Context,
    config: Annotated[Optional[Path], typer.Option(help="YAML or TOML config file (or FACESTREAM_CONFIG).")] = None,
    redis_url: Annotated[
        Optional[str], typer.Option(help="Redis 8 / Stack URL (or FACESTREAM_REDIS_URL); default: embedded server.")
    ] = None,
) -> None:
    if config is not None:
        os.environ[CONFIG_ENV] = str(config)
    ctx.obj = load_settings(redis_url=redis_url)


def main() -> None:
    """Console entry point: library errors become one clear line and exit status 1; Redis refusing for a while
    (:mod:`facestream.refusals`) one line and 75 (try again later); Redis's other errors one line and 1."""
    # One OpenBLAS thread per process (read when dlib loads): on 2 cores, BLAS threads fight the
    # detection threads and the other workers (../shared/docs/perf-notes.md).
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    try:
        app()
    except FacestreamError as e:
        typer.secho(f"error: {redact(str(e))}", fg=typer.colors.RED, err=True)
        sys.exit(1)
    except (redis.RedisError, RedisClusterException) as e:  # a refusal that passes: EX_TEMPFAIL, try again later
        typer.secho(f"error: Redis: {redact(explain(e))}", fg=typer.colors.RED, err=True)
        sys.exit(EXIT_TEMPFAIL if condition(e) else 1)
