"""CLI commands of the store area: store-owner, sql, snapshot, users, db (see xscreen/cli.py for registration).

Each command goes through the running store owner when it answers, else opens the database file in-process
(`analytics.client.open_store`), so they work whether or not the system is running.
"""

from __future__ import annotations

import csv
import getpass
import json
import os
import shutil
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import typer

from xscreen.errors import XscreenError


def _settings() -> Any:
    from xscreen.cli import State  # imported late: xscreen.cli imports this module while it loads

    return State.settings()


@contextmanager
def store_session() -> Iterator[Any]:
    """The running owner's client, or the file opened in-process when no owner answers."""
    from analytics.client import open_store

    with open_store(_settings()) as store:
        yield store


def cli_actor() -> str:
    """The name CLI commands act under in the audit log: `cli:<OS user>` (never a person's username: a
    person acts through a session in the app or /v1)."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry for this uid (some containers)
        user = str(os.getuid())
    return f"cli:{user}"


def store_owner() -> None:
    """Run the store owner in the foreground (the one process that opens the database file)."""
    from analytics.owner import run_owner

    settings = _settings()
    typer.echo(f"store owner: {settings.db_path} on {settings.store_url}; spool {settings.spool_dir} (Ctrl-C stops)")
    run_owner(settings)


def sql(
    query: str = typer.Argument(..., help="One read-only SQL query (SELECT ...)."),
    fmt: str = typer.Option("table", "--format", "-f", help="Output: table, csv or json."),
    limit: int | None = typer.Option(None, "--limit", help="Most rows (capped by store.sql_row_limit)."),
) -> None:
    """Run read-only analyst SQL over a recent snapshot of the store (file access disabled)."""
    if fmt not in ("table", "csv", "json"):
        raise XscreenError(f"--format must be table, csv or json, not {fmt!r}", title="Bad option")
    with store_session() as store:
        result = store.sql(query, limit=limit, actor=cli_actor())
    if fmt == "json":
        typer.echo(json.dumps([dict(zip(result.columns, row, strict=True)) for row in result.rows], default=str))
    elif fmt == "csv":
        writer = csv.writer(sys.stdout)
        writer.writerow(result.columns)
        writer.writerows([json.dumps(v) if isinstance(v, dict | list) else v for v in row] for row in result.rows)
    else:
        _print_table(result.columns, result.rows)
    if result.truncated:
        typer.echo(f"(only the first {len(result.rows)} rows are shown)", err=True)


def _print_table(columns: list[str], rows: list[list[Any]]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(*columns)
    for row in rows:
        table.add_row(*["" if v is None else str(v) for v in row])
    Console().print(table)


def snapshot(
    out: Path | None = typer.Argument(None, help="Where to put the snapshot file (default: it stays in HOME/snapshots)."),
    parquet: Path | None = typer.Option(None, "--parquet", help="Export Parquet files into this new folder instead."),
) -> None:
    """Write a consistent copy of the store (password and token hashes blanked) that notebooks and the duckdb CLI
    can open while the system runs. The store writes it under HOME/snapshots; this command then moves it."""
    if out is not None and parquet is not None:
        raise XscreenError("give either OUT or --parquet DIR, not both", title="Bad option")
    target = parquet or out
    if parquet is not None and parquet.exists() and any(parquet.iterdir()):
        raise XscreenError(f"{parquet} is not empty; choose a new folder for the Parquet export", title="Bad option")
    with store_session() as store:
        made = Path(store.snapshot(None, parquet=parquet is not None, actor=cli_actor()))
    if target is not None:
        if target.is_dir() and parquet is not None:
            target.rmdir()  # empty (checked above): replaced by the export folder
        made = Path(shutil.move(made, target))
    typer.echo(str(made))


users_app = typer.Typer(help="Manage local users (argon2 password hashes, roles).", no_args_is_help=True)
db_app = typer.Typer(help="Database schema and status.", no_args_is_help=True)


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\n")
    return str(typer.prompt("Password", hide_input=True, confirmation_prompt=True))


@users_app.command("add")
def users_add(
    username: str = typer.Argument(..., help="Login name (a-z, 0-9, _ . -)."),
    role: str = typer.Option(..., "--role", help="officer, supervisor, analyst or admin."),
    password_stdin: bool = typer.Option(False, "--password-stdin", help="Read the password from stdin."),
) -> None:
    """Create a user; the password is prompted for (never a default)."""
    password = _read_password(password_stdin)
    with store_session() as store:
        user = store.add_user(username, password, role, actor=cli_actor())  # type: ignore[arg-type]
    typer.echo(f"added {user.username} ({user.role})")


@users_app.command("passwd")
def users_passwd(
    username: str = typer.Argument(...),
    password_stdin: bool = typer.Option(False, "--password-stdin", help="Read the new password from stdin."),
) -> None:
    """Set a new password for a user (as the operator of this host: no old password needed)."""
    password = _read_password(password_stdin)
    with store_session() as store:
        store.set_password(username, password, actor=cli_actor())
    typer.echo(f"password of {username} changed")


@users_app.command("disable")
def users_disable(username: str = typer.Argument(...)) -> None:
    """Disable a user (kept for the audit trail; can no longer sign in) and end their sessions."""
    with store_session() as store:
        store.disable_user(username, actor=cli_actor())
    typer.echo(f"disabled {username}")


@users_app.command("list")
def users_list() -> None:
    """List users with role and state."""
    with store_session() as store:
        users = store.list_users()
    _print_table(["username", "role", "disabled", "created_at"],
                 [[u.username, u.role, u.disabled, u.created_at.isoformat()] for u in users])


@db_app.command("migrate")
def db_migrate() -> None:
    """Create or upgrade the database file to this code's schema (the owner also does this on start)."""
    with store_session() as store:
        info = store.info()
    typer.echo(f"{info['path']}: schema version {info['schema_version']}")


@db_app.command("info")
def db_info() -> None:
    """Path, schema version and row counts."""
    with store_session() as store:
        info = store.info()
    typer.echo(f"path: {info['path']}\nschema version: {info['schema_version']}")
    for table, n in info["rows"].items():
        typer.echo(f"{table}: {n}")


def register(app: typer.Typer) -> None:
    """Add this area's commands to the root app."""
    app.command("store-owner")(store_owner)
    app.command("sql")(sql)
    app.command("snapshot")(snapshot)
    app.add_typer(users_app, name="users")
    app.add_typer(db_app, name="db")
