"""`cip users`: the marketers' workspace accounts (`cip users add NAME --role editor`).

The password is asked for twice without echo (or read from standard input with
`--password-stdin`, for scripts); it is never taken as an argument, where shell history and
the process list would keep it.
"""

from __future__ import annotations

import secrets
import sys
from typing import Annotated

import typer
from rich.table import Table

from pipelines.config import Settings
from pipelines.console import console
from serving.workspace import ROLES, UserStore

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    group = typer.Typer(help="Accounts of the marketers' workspace (cip serve, /app).")
    group.command("add")(add)
    group.command("list")(list_users)
    group.command("first-login")(first_login)
    app.add_typer(group, name="users")


def add(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="The user name to sign in with.")],
    role: Annotated[str, typer.Option(help=f"One of: {', '.join(ROLES)}.")] = "viewer",
    password_stdin: Annotated[
        bool, typer.Option("--password-stdin", help="Read the password from standard input.")
    ] = False,
    replace: Annotated[bool, typer.Option(help="Reset an existing user's password.")] = False,
) -> None:
    """Create a workspace account (viewers look, editors also save, run and send segments)."""
    settings: Settings = ctx.obj
    if password_stdin:
        password = sys.stdin.readline().rstrip("\n")
    else:
        password = typer.prompt("Password", hide_input=True, confirmation_prompt=True)
    store = UserStore(path=settings.paths.users)
    try:
        user = store.add(name=name, password=password, role=role, replace=replace)  # type: ignore[arg-type]
    except ValueError as error:
        console.print(f"[red]not added:[/] {error}", markup=True, highlight=False)
        raise typer.Exit(2) from None
    console.print(f"user [bold]{user.name}[/] ({user.role}) saved in {store.path}")


def list_users(ctx: typer.Context) -> None:
    """The workspace's accounts and their roles."""
    settings: Settings = ctx.obj
    table = Table("user", "role")
    for user in UserStore(path=settings.paths.users).users():
        table.add_row(user.name, user.role)
    console.print(table)


FIRST_USER = "marketer"


def first_login(ctx: typer.Context) -> None:
    """Print the workspace's address and a way in: when there is no account yet, an editor
    `marketer` with a new random password, shown this once (the end of `make demo`)."""
    settings: Settings = ctx.obj
    serving = settings.serving
    console.print(
        f"marketers' workspace: [bold]http://{serving.host}:{serving.port}/app[/]"
        " (start it with `make serve`)"
    )
    store = UserStore(path=settings.paths.users)
    if store.users():
        names = ", ".join(user.name for user in store.users())
        console.print(f"sign in as one of: {names} (`cip users add NAME` for more)")
        return
    password = secrets.token_urlsafe(12)
    store.add(name=FIRST_USER, password=password, role="editor")
    console.print(
        f"first login: user [bold]{FIRST_USER}[/], password [bold]{password}[/] "
        f"(shown once; change it with `cip users add {FIRST_USER} --replace`)",
        highlight=False,
    )
