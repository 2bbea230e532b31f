"""``facestream up``: run and supervise the whole local stack from one stack file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from facestream.app.cli.app import app, say, settings_of
from facestream.redaction import configure_logging


@app.command()
def up(
    ctx: typer.Context,
    stack: Annotated[Path, typer.Argument(help="Stack file: cameras, workers, dashboard, gallery, settings "
                                          "(see docker/cameras.example.yaml).")],
    check: Annotated[bool, typer.Option("--check", help="Only validate the file and open every source; start nothing.")] = False,
    status: Annotated[bool, typer.Option("--status", help="Print the running up's components: state, restarts, last error.")] = False,
) -> None:
    """Start Redis (embedded by default), workers, one producer per camera and the dashboard; restart any that
    exits, Redis included."""
    from facestream.app.stack import up as stack_up

    configure_logging()
    s = settings_of(ctx)
    if status:
        for line in stack_up.status_lines(s.replace(**stack_up.read_stack(stack).settings)):
            typer.echo(line)
        return
    if check:
        problems = stack_up.check(stack, s)
        for line in problems:
            typer.echo(line, err=True)
        if problems:
            raise typer.Exit(1)
        typer.echo(f"{stack}: ok")
        return
    stack_up.up(stack, s, say)
