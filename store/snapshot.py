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
import uuid
from datetime import datetime
from pathlib import Path

import duckdb

from store.fetch import scalar
from xscreen.errors import StoreError, XscreenError

_counter = itertools.count()

# Secrets blanked in every snapshot made for analysts (SQL sandbox, `xscreen snapshot`, Parquet exports):
# (table, column, SQL expression that replaces it). Backups (store/backup.py) keep them.
REDACTED: tuple[tuple[str, str, str], ...] = (
    ("users", "password_hash", "''"),
    ("auth_tokens", "token_sha256", "'redacted-' || token_id"),  # a primary key: stays unique
)
# Rows withheld from the same snapshots: (table, condition on the table's own rows). A first reading whose second
# is still to come (status 'awaiting second reading', store/readings.py) must stay unseen by the second reader, who
# may also be an analyst; completed pairs stay (agreement and audits need them). The view double_reads, built on
# `readings`, then shows nothing of such an item either.
WITHHELD: tuple[tuple[str, str], ...] = (
    ("readings", "scan_id NOT IN (SELECT scan_id FROM readings WHERE reading = 2)"),
)


def inside(root: Path, dest: Path | None, default: str, setting: str, title: str) -> Path:
    """`dest` resolved inside `root` (a relative one is taken from there; default name when None); a path that
    resolves outside it is refused: the owner writes files only where its settings say."""
    root = root.resolve()
    root.mkdir(parents=True, exist_ok=True)
    path = (root / (dest if dest is not None else default)).resolve()  # an absolute dest replaces root, then is checked
    if root not in path.parents:
        raise XscreenError(f"{setting} are written under {root} (paths.{setting}) only, not {dest}", title=title)
    return path


def default_name(now: datetime, suffix: str) -> str:
    """A new snapshot's or backup's name: its time and a random tag."""
    return f"xscreen-{now.strftime('%Y%m%dT%H%M%SZ')}-{uuid.uuid4().hex[:6]}{suffix}"


def redact(db_file: Path) -> None:
    """Blank password and token hashes and drop withheld rows (pending first readings) in a snapshot file (a
    separate database: never the live one)."""
    con = duckdb.connect(str(db_file))
    try:
        tables = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
        for table, column, expr in REDACTED:
            if table in tables:
                con.execute(f"UPDATE {table} SET {column} = {expr}")
        for table, withheld in WITHHELD:
            if table in tables:
                con.execute(f"DELETE FROM {table} WHERE {withheld}")
        con.execute("CHECKPOINT")
    finally:
        con.close()


def _rewrite_parquet(con: duckdb.DuckDBPyConnection, folder: Path, table: str, select: str) -> None:
    """Replace `table`'s exported file with `select` (a query over a view named `table` of that file), whole."""
    path = folder / f"{table}.parquet"
    if not path.exists():
        return
    tmp = path.with_name(f".{path.name}.tmp")
    con.execute(f"CREATE OR REPLACE TEMP VIEW {table} AS SELECT * FROM read_parquet('{_sql_path(path)}')")
    con.execute(f"COPY ({select}) TO '{_sql_path(tmp)}' (FORMAT parquet)")
    os.replace(tmp, path)


def _redact_parquet(folder: Path) -> None:
    """Rewrite the exported files of tables with secrets, blanked, or withheld rows, dropped (each file is
    rewritten whole)."""
    con = duckdb.connect()
    try:
        for table, column, expr in REDACTED:
            _rewrite_parquet(con, folder, table, f"SELECT * REPLACE ({expr} AS {column}) FROM {table}")
        for table, withheld in WITHHELD:
            _rewrite_parquet(con, folder, table, f"SELECT * FROM {table} WHERE ({withheld}) IS NOT TRUE")
    finally:
        con.close()


def finish_copy(tmp: Path, dest: Path, redacted: bool = True) -> Path:
    """Redact the copied file `tmp` (unless not `redacted`) and rename it to `dest`; the temporary files go
    whatever happens."""
    try:
        if redacted:
            redact(tmp)
        os.replace(tmp, dest)
    except (duckdb.Error, OSError) as exc:
        raise StoreError(f"snapshot to {dest} failed: {exc}", title="Snapshot failed") from None
    finally:
        _remove_temp(tmp)
    return dest


def _remove_temp(tmp: Path) -> None:
    for leftover in (tmp, tmp.with_name(tmp.name + ".wal")):
        leftover.unlink(missing_ok=True)


def temp_beside(dest: Path) -> Path:
    """A hidden temporary name next to `dest`, renamed over it once complete."""
    return dest.with_name(f".{dest.name}.{os.getpid()}.{next(_counter)}.tmp")


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _sql_path(path: Path) -> str:
    return str(path).replace("'", "''")


def snapshot_database(cur: duckdb.DuckDBPyConnection, dest: Path, redacted: bool = True) -> Path:
    """Copy the whole database (tables, views, data) to the DuckDB file `dest`, replacing it atomically;
    `redacted`: with password and token hashes blanked and WITHHELD rows dropped (analysts' copies)."""
    dest = dest.resolve()
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_beside(dest)
    alias = f"snap_{os.getpid()}_{next(_counter)}"
    source = scalar(cur, "SELECT current_database()")
    try:
        cur.execute(f"ATTACH '{_sql_path(tmp)}' AS {alias}")
        try:
            cur.execute(f"COPY FROM DATABASE {_ident(source)} TO {alias}")  # file stem: may hold '-', spaces
        finally:
            cur.execute(f"DETACH {alias}")
    except duckdb.Error as exc:
        _remove_temp(tmp)
        raise StoreError(f"snapshot to {dest} failed: {exc}", title="Snapshot failed") from None
    return finish_copy(tmp, dest, redacted)


def copy_checkpointed(cur: duckdb.DuckDBPyConnection, db_path: Path, dest: Path) -> Path | None:
    """Fast copy: CHECKPOINT, then copy the file to `dest` (a temporary name: the caller redacts and renames
    it). Only valid while no write can happen, so the Store runs it as an exclusive op of its writer. Returns
    None (caller falls back to COPY FROM DATABASE) if the checkpoint left a WAL behind (DuckDB may defer it
    while other transactions run)."""
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
    try:
        shutil.copyfile(db_path, dest)
    except OSError as exc:
        dest.unlink(missing_ok=True)
        raise StoreError(f"snapshot to {dest} failed: {exc}", title="Snapshot failed") from None
    return dest


def export_parquet(cur: duckdb.DuckDBPyConnection, dest_dir: Path) -> Path:
    """Export every table as Parquet (+ schema.sql/load.sql) into `dest_dir`, which must be empty or absent;
    password and token hashes blanked, WITHHELD rows dropped."""
    dest_dir = dest_dir.resolve()
    if dest_dir.exists() and any(dest_dir.iterdir()):
        raise StoreError(f"{dest_dir} is not empty; choose a new folder for the Parquet export",
                         title="Snapshot failed")
    tmp = dest_dir.with_name(f".{dest_dir.name}.{os.getpid()}.{next(_counter)}.tmp")
    try:
        cur.execute(f"EXPORT DATABASE '{_sql_path(tmp)}' (FORMAT parquet)")
        _redact_parquet(tmp)
        if dest_dir.exists():
            dest_dir.rmdir()
        os.replace(tmp, dest_dir)
    except (duckdb.Error, OSError) as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise StoreError(f"Parquet export to {dest_dir} failed: {exc}", title="Snapshot failed") from None
    return dest_dir
