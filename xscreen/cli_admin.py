"""CLI commands that look after the store as a whole: audit verify, check, backup, restore (see xscreen/cli.py).

Like the other store commands they go through the running owner when it answers for this home, else open the
database file in-process. A check that finds damage prints what and exits with status 1.
"""

from __future__ import annotations

import typer

from xscreen.cli_store import store_session

audit_app = typer.Typer(help="The audit log: a hash chain of every action.", no_args_is_help=True)


@audit_app.command("verify")
def audit_verify(
    anchor: str | None = typer.Option(None, "--anchor", help="A head printed earlier (SEQ:HASH) that must still "
                                      "be in the chain (detects a rewritten log)."),
) -> None:
    """Check the audit log's hash chain; name the first broken row (exit 1) or print the head."""
    with store_session() as store:
        report = store.verify_audit(anchor)
    typer.echo(report.summary())
    if not report.ok:
        raise typer.Exit(1)


def check() -> None:
    """Read every table and check the store's invariants and the audit chain (exit 1 on damage)."""
    with store_session() as store:
        report = store.integrity_check()
    typer.echo(report.summary())
    if not report.ok:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add this area's commands to the root app."""
    app.add_typer(audit_app, name="audit")
    app.command("check")(check)
