"""Restore of a backup (`xscreen restore`): verified first, refused while a store owner holds the home, the
replaced database kept beside it, and the restored file given this home's identity. Runs without an owner.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb

from store import audit_chain
from store.backup import DB_FILE, MODELS, BackupManifest, file_sha256, verify
from store.client import owner_is_up
from store.identity import ensure_home_id, read_home_id
from store.migrations import migrate
from xscreen.errors import StoreError

HOME_ID_KEY = "home_id"


def _refuse_if_in_use(settings: Any) -> None:
    """StoreError when a store owner serves this home or any process holds its database file."""
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

