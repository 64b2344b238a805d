"""Consistent copies of the live database for analysts: a DuckDB file or a folder of Parquet files.

The fast path checkpoints and copies the file while the writer is held (no write can land mid-copy). The general
path (`COPY FROM DATABASE` / `EXPORT DATABASE`) runs on a reader cursor inside one read transaction, so it is a
consistent point in time even while the writer keeps committing; it re-encodes everything and is much slower.
"""

from __future__ import annotations

import itertools
import os
import shutil
import time
from pathlib import Path

import duckdb

from analytics.fetch import first
from xscreen.errors import StoreError

_counter = itertools.count()


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _sql_path(path: Path) -> str:
    return str(path).replace("'", "''")


def snapshot_database(cur: duckdb.DuckDBPyConnection, dest: Path) -> Path:
    """Copy the whole database (tables, views, data) to the DuckDB file `dest`, replacing it atomically."""
    dest = dest.resolve()
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.{next(_counter)}.tmp")
    alias = f"snap_{os.getpid()}_{next(_counter)}"
    source = first(cur, "SELECT current_database()")[0]  # type: ignore[index]
    try:
        cur.execute(f"ATTACH '{_sql_path(tmp)}' AS {alias}")
        try:
            cur.execute(f"COPY FROM DATABASE {_ident(source)} TO {alias}")  # file stem: may hold '-', spaces
        finally:
            cur.execute(f"DETACH {alias}")
        os.replace(tmp, dest)
    except (duckdb.Error, OSError) as exc:
        raise StoreError(f"snapshot to {dest} failed: {exc}", title="Snapshot failed") from None
    finally:
        for leftover in (tmp, tmp.with_name(tmp.name + ".wal")):
            leftover.unlink(missing_ok=True)
    return dest


def copy_checkpointed(cur: duckdb.DuckDBPyConnection, db_path: Path, dest: Path) -> Path | None:
    """Fast snapshot: CHECKPOINT, then copy the file. Only valid while no write can happen, so the Store runs it
    as an exclusive op of its writer. Returns None (caller falls back to COPY FROM DATABASE) if the checkpoint
    left a WAL behind (DuckDB may defer it while other transactions run)."""
    for attempt in range(3):
        try:
            cur.execute("CHECKPOINT")
            break
        except duckdb.TransactionException:
            # Another write transaction is still open on the database (e.g. one finishing as we were scheduled):
            # retry briefly, then let the caller take the consistent (slower) COPY FROM DATABASE path.
            if attempt == 2:
                return None
            time.sleep(0.05)
    wal = Path(f"{db_path}.wal")
    if wal.exists() and wal.stat().st_size > 0:
        return None
    dest = dest.resolve()
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.{os.getpid()}.{next(_counter)}.tmp")
    try:
        shutil.copyfile(db_path, tmp)
        os.replace(tmp, dest)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise StoreError(f"snapshot to {dest} failed: {exc}", title="Snapshot failed") from None
    return dest


def export_parquet(cur: duckdb.DuckDBPyConnection, dest_dir: Path) -> Path:
    """Export every table as Parquet (+ schema.sql/load.sql) into `dest_dir`, which must be empty or absent."""
    dest_dir = dest_dir.resolve()
    if dest_dir.exists() and any(dest_dir.iterdir()):
        raise StoreError(f"{dest_dir} is not empty; choose a new folder for the Parquet export",
                         title="Snapshot failed")
    tmp = dest_dir.with_name(f".{dest_dir.name}.{os.getpid()}.{next(_counter)}.tmp")
    try:
        cur.execute(f"EXPORT DATABASE '{_sql_path(tmp)}' (FORMAT parquet)")
        if dest_dir.exists():
            dest_dir.rmdir()
        os.replace(tmp, dest_dir)
    except (duckdb.Error, OSError) as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise StoreError(f"Parquet export to {dest_dir} failed: {exc}", title="Snapshot failed") from None
    return dest_dir
