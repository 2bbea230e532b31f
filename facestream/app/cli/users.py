"""``facestream users``: the dashboard's logins (viewer and admin roles)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from facestream.app.cli.app import app, settings_of
from facestream.consumer.auth import ROLES, Users
from facestream.errors import ConfigError

users_app = typer.Typer(help="Dashboard logins: add, passwd, list, remove.", no_args_is_help=True)
app.add_typer(users_app, name="users")


def _users(ctx: typer.Context) -> Users:
    return Users.of(settings_of(ctx))


def _password(password_file: Path | None) -> str:
    """The new password: the file's first line, else typed twice (hidden)."""
    if password_file is not None:
        try:
            return password_file.read_text().splitlines()[0] if password_file.read_text() else ""
        except OSError as e:
            raise ConfigError(f"cannot read {password_file}: {e.strerror}") from None
    return typer.prompt("new password", hide_input=True, confirmation_prompt=True)


PasswordFile = Annotated[Optional[Path], typer.Option(help="Read the password from this file's first line instead of the terminal.")]


@users_app.command("add")
def users_add(ctx: typer.Context, name: str,
              role: Annotated[str, typer.Option(help=f"One of {', '.join(ROLES)}.")] = "viewer",
              password_file: PasswordFile = None) -> None:
    """Create a dashboard user (viewer: live page and search; admin: also changes the gallery)."""
    users = _users(ctx)
    if name in {u.name for u in users.list()}:
        raise ConfigError(f"{name!r} exists: use facestream users passwd")
    users.set(name, _password(password_file), role)
    typer.echo(f"added {name} ({role})")


@users_app.command("passwd")
def users_passwd(ctx: typer.Context, name: str, password_file: PasswordFile = None) -> None:
    """Set a user's password (the generated admin password stops working and its file is removed)."""
    users = _users(ctx)
    users.set(name, _password(password_file))
    typer.echo(f"password of {name} changed (sessions already open stay open until the dashboard restarts)")


@users_app.command("list")
def users_list(ctx: typer.Context) -> None:
    """Every dashboard user and their role."""
    for u in _users(ctx).list():
        typer.echo(f"{u.name:24} {u.role}")


@users_app.command("remove")
def users_remove(ctx: typer.Context, name: str) -> None:
    """Remove a dashboard user."""
    _users(ctx).remove(name)
    typer.echo(f"removed {name}")
