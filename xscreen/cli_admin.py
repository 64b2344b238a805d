"""CLI commands that look after the store as a whole: audit verify, check, backup, restore (see xscreen/cli.py).

Like the other store commands they go through the running owner when it answers for this home, else open the
database file in-process. A check that finds damage prints what and exits with status 1.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import typer

from xscreen.cli_store import _settings, cli_actor, store_session
from xscreen.errors import XscreenError

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


def backup(dest: Path = typer.Argument(..., help="New (or empty) folder to hold the backup.")) -> None:
    """Back up the store (database, model weights, manifest of checksums), consistent even while it serves."""
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise XscreenError(f"{dest} exists and is not an empty folder; a backup goes to a new folder",
                           title="Bad option")
    with store_session() as store:
        manifest = store.backup(None, actor=cli_actor())
    if dest.exists():
        dest.rmdir()  # empty (checked above): replaced by the backup folder
    shutil.move(manifest.path, dest)
    rows = sum(t.rows for t in manifest.tables.values())
    typer.echo(f"backup {dest}: {len(manifest.tables)} tables, {rows} rows, {len(manifest.models)} model files; "
               f"audit head {manifest.audit_head}")


def restore(src: Path = typer.Argument(..., help="A folder made by `xscreen backup`.")) -> None:
    """Replace this home's database with a backup (verified first; refused while the store owner runs). The
    replaced database is kept beside it as <db>.before-restore-<time>."""
    from analytics.backup import restore as restore_backup
    from analytics.records import utcnow
    from analytics.store import Store

    settings = _settings()
    manifest = restore_backup(settings, src, utcnow(), cli_actor())
    with Store.from_settings(settings) as store:
        report = store.integrity_check()
    typer.echo(f"restored {settings.db_path} from {src} (backup of {manifest.created_at:%Y-%m-%d %H:%M} UTC); "
               f"{report.summary()}")
    if not report.ok:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add this area's commands to the root app."""
    app.add_typer(audit_app, name="audit")
    app.command("check")(check)
    app.command("backup")(backup)
    app.command("restore")(restore)
