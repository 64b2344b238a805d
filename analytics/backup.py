"""Backups of a home's store and their restore: a folder with the database file, the model weights and a manifest.

A backup is taken by the store (`Store.backup`): the file is copied after a CHECKPOINT while the writer is held,
so it is one committed state even while serving streams (no hash redaction: it is for restoring, not analysts).
The manifest records, per table, the row count and a checksum of every value, the audit chain's head, the
file's sha256 and each weights file's sha256; it is written last, so a folder without one is not a backup.
`verify` re-reads all of it; `restore` verifies first, refuses while a store owner holds the home, keeps the
database it replaces beside it, and gives the restored file this home's identity.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
from pydantic import BaseModel, ConfigDict, ValidationError

from analytics import audit_chain, integrity
from analytics.migrations import LATEST_VERSION, migrate
from xscreen.errors import StoreError

FORMAT = 1
MANIFEST = "manifest.json"
DB_FILE = "xscreen.duckdb"
MODELS = "models"
HOME_ID_KEY = "home_id"


class TableSum(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    rows: int
    checksum: int


class BackupManifest(BaseModel):
    """What a backup holds; `path` is where it was written."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    format: int = FORMAT
    path: str
    created_at: datetime
    home_id: str | None
    schema_version: int
    db_sha256: str
    db_bytes: int
    tables: dict[str, TableSum]
    audit_head: str  # "SEQ:HASH", as `xscreen audit verify` prints it
    models: dict[str, str]  # path under models/ -> sha256


def damaged(message: str) -> StoreError:
    return StoreError(message, title="Backup damaged")


def file_sha256(path: Path) -> str:
    with path.open("rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def describe(db_file: Path) -> tuple[int, dict[str, TableSum], str]:
    """(schema version, per-table sums, audit head) of a database file, read whole; Backup damaged when it fails
    the integrity check (analytics/integrity.py)."""
    try:
        con = duckdb.connect(str(db_file), read_only=True)
    except duckdb.Error as exc:
        raise damaged(f"{db_file} cannot be opened: {exc}") from None
    try:
        report = integrity.check(con)
        if not report.ok:
            raise damaged(f"{db_file}: " + "; ".join(report.problems))
        sums = {t: TableSum(rows=n, checksum=report.checksums[t]) for t, n in report.rows.items()}
        version = con.execute("SELECT max(version) FROM xscreen_schema").fetchall()[0][0]
    except duckdb.Error as exc:
        raise damaged(f"{db_file} cannot be read: {exc}") from None
    finally:
        con.close()
    return int(version), sums, f"{report.audit.head_seq}:{report.audit.head_hash}"


def _copy_models(models_dir: Path | None, dest: Path) -> dict[str, str]:
    """Copy every weights file (immutable once registered) and return their sha256 by relative path."""
    if models_dir is None or not models_dir.is_dir():
        return {}
    out: dict[str, str] = {}
    for src in sorted(p for p in models_dir.rglob("*") if p.is_file() and not p.name.startswith(".")):
        rel = src.relative_to(models_dir).as_posix()
        target = dest / MODELS / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, target)
        out[rel] = file_sha256(target)
    return out


def write_backup(copy_db: Callable[[Path], None], dest: Path, home_id: str | None, models_dir: Path | None,
                 now: datetime) -> BackupManifest:
    """Make the backup folder `dest` (new): `copy_db(path)` writes a consistent copy of the database there."""
    if dest.exists():
        raise StoreError(f"{dest} already exists; a backup goes to a new folder", title="Backup refused")
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        copy_db(tmp / DB_FILE)
        version, tables, head = describe(tmp / DB_FILE)
        manifest = BackupManifest(path=str(dest), created_at=now, home_id=home_id, schema_version=version,
                                  db_sha256=file_sha256(tmp / DB_FILE), db_bytes=(tmp / DB_FILE).stat().st_size,
                                  tables=tables, audit_head=head, models=_copy_models(models_dir, tmp))
        (tmp / MANIFEST).write_text(manifest.model_dump_json(indent=2))
        os.replace(tmp, dest)
    except OSError as exc:
        raise StoreError(f"backup to {dest} failed: {exc}", title="Backup failed") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return manifest


def verify(folder: Path) -> BackupManifest:
    """Re-read a backup whole and compare it with its manifest; Backup damaged naming the first difference."""
    try:
        manifest = BackupManifest.model_validate_json((folder / MANIFEST).read_text())
    except FileNotFoundError:
        raise damaged(f"{folder} is not a backup (no {MANIFEST})") from None
    except (ValidationError, ValueError) as exc:
        raise damaged(f"{folder / MANIFEST} is not a valid manifest ({str(exc).splitlines()[0]})") from None
    db = folder / DB_FILE
    if not db.is_file() or db.stat().st_size != manifest.db_bytes or file_sha256(db) != manifest.db_sha256:
        raise damaged(f"{db} is missing or not the file the manifest describes (size or sha256 differ)")
    if manifest.schema_version > LATEST_VERSION:
        raise damaged(f"the backup has schema version {manifest.schema_version}; this code knows up to "
                      f"{LATEST_VERSION}: upgrade xscreen first")
    version, tables, head = describe(db)
    if (version, tables, head) != (manifest.schema_version, manifest.tables, manifest.audit_head):
        changed = sorted(t for t in {*tables, *manifest.tables} if tables.get(t) != manifest.tables.get(t))
        raise damaged(f"{db} differs from its manifest (tables {changed or 'none'}, audit head {head})")
    for rel, digest in manifest.models.items():
        path = folder / MODELS / rel
        if not path.is_file() or file_sha256(path) != digest:
            raise damaged(f"model file {rel} is missing or changed")
    return manifest


def _refuse_if_in_use(settings: Any) -> None:
    """StoreError when a store owner serves this home or any process holds its database file."""
    from analytics.client import owner_is_up
    from analytics.identity import read_home_id

    if owner_is_up(settings.store_url):
        import httpx

        theirs = httpx.get(f"{settings.store_url}/health", timeout=2).json().get("home_id")
        if theirs is not None and theirs == read_home_id(settings.home):
            raise StoreError(f"a store owner serves this home on {settings.store_url}; stop it (and `xscreen "
                             "serve`) before restoring", title="Restore refused")
    if settings.db_path.exists():
        try:
            duckdb.connect(str(settings.db_path), read_only=True).close()
        except duckdb.Error as exc:
            if "lock" in str(exc).lower():
                raise StoreError(f"{settings.db_path} is in use by another process; stop it before restoring",
                                 title="Restore refused") from None


def _check_models(manifest: BackupManifest, folder: Path, models_dir: Path) -> list[str]:
    """The weights files to copy in; StoreError when a file of the same name holds other weights."""
    missing = []
    for rel, digest in manifest.models.items():
        target = models_dir / rel
        if not target.exists():
            missing.append(rel)
        elif file_sha256(target) != digest:
            raise StoreError(f"{target} exists with other weights than the backup's {rel}; move it away first",
                             title="Restore refused")
    return missing


def restore(settings: Any, folder: Path, now: datetime, actor: str) -> BackupManifest:
    """Replace this home's database with the backup in `folder` (verified first). The replaced file is kept as
    `<db>.before-restore-<time>`; the restored file is migrated, takes this home's id and gets a `restore` audit
    row at the end of its chain; missing weights files are copied in."""
    from analytics.identity import ensure_home_id

    manifest = verify(folder)
    _refuse_if_in_use(settings)
    missing = _check_models(manifest, folder, settings.models_dir)
    db = Path(settings.db_path)
    db.parent.mkdir(parents=True, exist_ok=True)
    tmp = db.with_name(f".{db.name}.restore.tmp")
    shutil.copyfile(folder / DB_FILE, tmp)
    con = duckdb.connect(str(tmp))
    try:
        migrate(con)
        con.execute("BEGIN TRANSACTION")
        # The restored store now belongs to this home (clients check the id: analytics/identity.py).
        con.execute("INSERT OR REPLACE INTO settings_kv VALUES (?, to_json(?::VARCHAR), ?, ?)",
                    [HOME_ID_KEY, ensure_home_id(settings.home), now, actor])
        details = json.dumps({"backup_created_at": manifest.created_at.isoformat(), "audit_head": manifest.audit_head,
                              "db_sha256": manifest.db_sha256})
        audit_chain.append(con, uuid.uuid4().hex, now, actor, "restore", str(folder), details)
        con.execute("COMMIT")
    finally:
        con.close()
    stamp = now.strftime("%Y%m%dT%H%M%SZ")
    for path in (db, db.with_name(db.name + ".wal")):
        if path.exists():
            os.replace(path, path.with_name(f"{path.name}.before-restore-{stamp}"))
    os.replace(tmp, db)
    for rel in missing:
        target = settings.models_dir / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(folder / MODELS / rel, target)
    return manifest

