"""``facestream`` — the one command line over the library. Each subcommand is a thin wrapper."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from facestream.config import CONFIG_ENV, Settings, load_settings
from facestream.errors import FacestreamError

app = typer.Typer(
    help="Real-time face recognition on Redis Streams.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def settings_of(ctx: typer.Context) -> Settings:
    """The validated settings built by the top-level callback."""
    return ctx.obj


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


@app.command("redis")
def redis_cmd(
    ctx: typer.Context,
    stop: Annotated[bool, typer.Option("--stop", help="Stop the embedded server instead.")] = False,
    port: Annotated[Optional[int], typer.Option(help="Port (default: embedded_port setting, 6390).")] = None,
) -> None:
    """Start (or --stop) the embedded Redis 8 + RediSearch server and print its URL."""
    from facestream.server import EmbeddedRedis

    s = settings_of(ctx)
    server = EmbeddedRedis(port or s.embedded_port, s.data_dir)
    if stop:
        typer.echo(f"stopped {server.url}" if server.stop() else f"no facestream Redis running on port {server.port}")
        return
    url = server.start()
    typer.echo(url)
    typer.echo(f"data dir {server.dir} (AOF on); stop with: facestream redis --stop --port {server.port}", err=True)


def main() -> None:
    """Console entry point: library errors become one clear line and exit status 1."""
    try:
        app()
    except FacestreamError as e:
        typer.secho(f"error: {e}", fg=typer.colors.RED, err=True)
        sys.exit(1)
