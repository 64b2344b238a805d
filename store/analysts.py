"""Analysts domain: read-only SQL in a sandbox over a recent snapshot, snapshots for notebooks, and what the
store holds (schema, row counts).

SQL: the statement type is checked (one SELECT/EXPLAIN), then a subprocess opens a snapshot `read_only` with
external access disabled (store/sandbox.py), so DuckDB itself refuses file functions, COPY and ATTACH. Snapshots
are written under `paths.snapshots` only, with password and token hashes blanked and first readings still awaiting
their second left out (store/snapshot.py). Audited.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
from pydantic import BaseModel, ConfigDict

from store.audit import audit_row
from store.fetch import first, scalar
from store.ops import Engine, StoreConfig, composite, read
from store.sandbox import run_sandboxed, validate_sql
from store.snapshot import (
    copy_checkpointed,
    default_name,
    export_parquet,
    finish_copy,
    inside,
    snapshot_database,
    temp_beside,
)
from xscreen.errors import XscreenError

INFO_TABLES = ("scans", "verdicts", "decisions", "labels", "models", "users", "alerts", "audit_log")
SQL_SNAPSHOT = "sql-latest.duckdb"  # the shared snapshot analyst SQL reads, refreshed when stale
_sql_snapshot_lock = threading.Lock()


class SqlResult(BaseModel):
    """Analyst SQL result: column names and rows of JSON-compatible values (times as ISO-8601 strings)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    columns: list[str]
    rows: list[list[Any]]
    truncated: bool = False  # more rows existed than the row limit


def _snapshots_dir(cfg: StoreConfig) -> Path:
    return cfg.snapshots_dir or cfg.path.parent / "snapshots"


def snapshot_to(engine: Engine, dest: Path) -> Path:
    """Checkpoint and copy the file while the writer is held, then redact the copy; if a WAL remains,
    COPY FROM DATABASE on a reader (redacted too)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_beside(dest)
    if engine.exclusive(lambda c, now: copy_checkpointed(c, engine.config.path, tmp)) is None:
        return engine.read(snapshot_database, dest)
    return finish_copy(tmp, dest)


@composite(action="run_sql", actor="actor")
def snapshot(engine: Engine, dest: Path | None = None, parquet: bool = False, actor: str = "system") -> Path:
    """Consistent copy for analysts, password and token hashes blanked, first readings awaiting their second left
    out: a DuckDB file or, with parquet, a folder of Parquet files. Written under the snapshots folder (paths.snapshots) only: `dest` is a name or path inside
    it (default: timestamped); a path outside it is refused. Audited."""
    name = default_name(engine.now(), "" if parquet else ".duckdb")
    path = inside(_snapshots_dir(engine.config), dest, name, "snapshots", "Snapshot refused")
    made = engine.read(export_parquet, path) if parquet else snapshot_to(engine, path)
    engine.write(lambda c, now: audit_row(c, now, actor, "snapshot", str(made), parquet=parquet))
    return made


def _sql_snapshot(engine: Engine) -> Path:
    """The shared snapshot analyst SQL reads; refreshed when older than snapshot_max_age_s."""
    path = _snapshots_dir(engine.config) / SQL_SNAPSHOT
    with _sql_snapshot_lock:
        fresh = path.exists() and time.time() - path.stat().st_mtime < engine.config.snapshot_max_age_s
        if not fresh:
            snapshot_to(engine, path)
    return path


@composite(action="run_sql", actor="actor")
def sql(engine: Engine, text: str, limit: int | None = None, actor: str = "system") -> SqlResult:
    """Analyst SQL (one read-only query) in the sandbox over a recent snapshot; audited, refusals too."""
    cfg = engine.config
    row_limit = min(limit or cfg.sql_row_limit, cfg.sql_row_limit)
    try:
        validate_sql(text)
        out = run_sandboxed(_sql_snapshot(engine), text, row_limit, cfg.sql_timeout_s)
    except XscreenError as err:
        reason = str(err)[:500]
        engine.write(lambda c, now: audit_row(c, now, actor, "sql_refused", None, sql=text[:2000], error=reason))
        raise
    engine.write(lambda c, now: audit_row(c, now, actor, "sql", None, sql=text[:2000], rows=len(out["rows"])))
    return SqlResult(**out)


@read()
def info(cur: duckdb.DuckDBPyConnection, *, cfg: StoreConfig) -> dict[str, Any]:
    """Path, schema version and row counts of the main tables."""
    version = first(cur, "SELECT max(version) FROM xscreen_schema")
    counts = {t: int(scalar(cur, f"SELECT count(*) FROM {t}")) for t in INFO_TABLES}
    return {"path": str(cfg.path), "schema_version": version[0] if version else None, "rows": counts}


@read()
def schema(cur: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Tables, views and their columns (for the SQL console's schema browser)."""
    return cur.execute("SELECT table_name, column_name, data_type FROM information_schema.columns "
                       "WHERE table_catalog = current_database() AND table_schema = 'main' "
                       "ORDER BY table_name, ordinal_position").df()
