"""Analyst SQL: only one read-only query; DuckDB itself refuses file access in the sandbox; limits; audit."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from analytics.sandbox import run_sandboxed, validate_sql
from analytics.store import SqlOptions, Store
from tests.seeding import seed_store
from xscreen.errors import QueryRefused


@pytest.mark.parametrize("sql,message", [
    ("CREATE TABLE x (a INTEGER)", "CREATE statement"),
    ("DROP TABLE scans", "DROP statement"),
    ("INSERT INTO users VALUES ('eve', 'x', 'admin', false, now())", "INSERT statement"),
    ("UPDATE users SET role = 'admin'", "UPDATE statement"),
    ("DELETE FROM decisions", "DELETE statement"),
    ("COPY scans TO '/tmp/out.csv'", "COPY statement"),
    ("ATTACH '/tmp/other.duckdb' AS o", "ATTACH statement"),
    ("INSTALL httpfs", "LOAD statement"),
    ("SET enable_external_access = true", "SET statement"),
    ("SELECT 1; DROP TABLE scans", "only one statement"),
    ("   ", "empty"),
    ("SELEC nonsense", "does not parse"),
])
def test_statements_other_than_one_query_are_refused_with_a_clear_message(sql: str, message: str) -> None:
    with pytest.raises(QueryRefused, match=message):
        validate_sql(sql)


@pytest.fixture(scope="module")
def snapshot_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from datetime import UTC

    folder = tmp_path_factory.mktemp("sandbox")
    now = datetime(2026, 11, 20, 12, tzinfo=UTC)
    with Store.open(folder / "live.duckdb", clock=lambda: now) as store:
        seed_store(store, 50, seed=1, now=now)
        return store.snapshot(Path("snap.duckdb"))  # under the store's snapshots folder


@pytest.mark.parametrize("sql", [
    "SELECT * FROM read_csv('/etc/passwd')",
    "SELECT * FROM read_text('/etc/hostname')",
    "SELECT * FROM read_parquet('/tmp/*.parquet')",
    "SELECT * FROM glob('/etc/*')",
    "WITH x AS (SELECT * FROM read_json_auto('/etc/os-release')) SELECT * FROM x",
])
def test_file_functions_are_refused_by_duckdb_itself(snapshot_db: Path, sql: str) -> None:
    with pytest.raises(QueryRefused, match="not allowed"):
        run_sandboxed(snapshot_db, sql, limit=10, timeout_s=30)


def test_a_query_returns_columns_rows_and_respects_the_row_limit(snapshot_db: Path) -> None:
    out = run_sandboxed(snapshot_db, "SELECT scan_id, received_at, scores FROM scans JOIN verdicts USING (scan_id) "
                                     "ORDER BY scan_id", limit=7, timeout_s=30)
    assert out["columns"] == ["scan_id", "received_at", "scores"]
    assert len(out["rows"]) == 7 and out["truncated"] is True
    assert out["rows"][0][1].endswith("+00:00")  # times as ISO-8601 UTC


def test_a_slow_query_is_stopped_after_the_timeout(snapshot_db: Path) -> None:
    with pytest.raises(QueryRefused, match="stopped after"):
        run_sandboxed(snapshot_db, "SELECT count(*) FROM range(10000000000) a, range(1000) b", limit=1,
                      timeout_s=0.5)


def test_store_sql_is_audited_including_refusals(tmp_path: Path, now: datetime) -> None:
    options = SqlOptions(snapshots_dir=tmp_path / "snaps", snapshot_max_age_s=60, row_limit=3, timeout_s=30)
    with Store.open(tmp_path / "db.duckdb", clock=lambda: now, sql=options) as store:
        seed_store(store, 20, seed=2, now=now)
        result = store.sql("SELECT scan_id FROM scans", actor="ana")
        assert len(result.rows) == 3 and result.truncated  # the store's row limit caps the caller's
        with pytest.raises(QueryRefused):
            store.sql("SELECT * FROM read_csv('/etc/passwd')", actor="ana")
        actions = [a.action for a in store.audit_log(actor="ana")]
    assert sorted(actions) == ["sql", "sql_refused"]  # one clock tick: order within it is not defined


def test_the_snapshot_is_reused_while_young_and_the_live_file_is_never_read(tmp_path: Path, now: datetime) -> None:
    options = SqlOptions(snapshots_dir=tmp_path / "snaps", snapshot_max_age_s=3600)
    with Store.open(tmp_path / "db.duckdb", clock=lambda: now, sql=options) as store:
        seed_store(store, 10, seed=3, now=now)
        assert store.sql("SELECT count(*) FROM scans").rows == [[10]]
        seed_store(store, 20, seed=4, now=now, register_models=False)
        assert store.sql("SELECT count(*) FROM scans").rows == [[10]]  # same young snapshot
