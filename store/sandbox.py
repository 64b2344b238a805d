"""Analyst SQL: one read-only query, run in a short-lived subprocess over a snapshot with file access disabled.

Two guards: the statement type is checked here (clear messages for DDL/DML/COPY/ATTACH/several statements), and
the subprocess opens the snapshot `read_only=True` with `enable_external_access=false` and a locked configuration,
so `read_csv('/etc/passwd')` (which *is* a SELECT) is refused by DuckDB itself. Such a connection cannot live in
the writer's process, hence the subprocess; it is also what enforces the timeout.

Run as `python -m store.sandbox DB LIMIT` with the SQL on stdin; prints one JSON object on stdout.
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import date, datetime, time
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb

from xscreen.errors import QueryRefused

ALLOWED = {duckdb.StatementType.SELECT: "SELECT", duckdb.StatementType.EXPLAIN: "EXPLAIN"}


def validate_sql(text: str) -> str:
    """The single read-only statement in `text`, or QueryRefused saying what is not allowed."""
    try:
        statements = duckdb.extract_statements(text)
    except duckdb.Error as exc:
        raise QueryRefused(f"the query does not parse: {exc}") from None
    if not statements:
        raise QueryRefused("the query is empty")
    if len(statements) > 1:
        raise QueryRefused(f"only one statement is allowed; got {len(statements)}")
    kind = statements[0].type
    if kind not in ALLOWED:
        name = getattr(kind, "name", str(kind))
        raise QueryRefused(f"only read-only queries (SELECT) are allowed; this is a {name} statement")
    return text.strip().rstrip(";")


def run_sandboxed(db_path: Path, text: str, limit: int, timeout_s: float) -> dict[str, Any]:
    """Run the query in a fresh subprocess; returns {"columns", "rows", "truncated"}; QueryRefused on refusal."""
    sql = validate_sql(text)
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "store.sandbox", str(db_path), str(int(limit))],
            input=sql, capture_output=True, text=True, timeout=timeout_s, check=False,
        )
    except subprocess.TimeoutExpired:
        raise QueryRefused(f"the query was stopped after {timeout_s:g} s (store.sql_timeout_s)") from None
    try:
        out = json.loads(proc.stdout)
    except json.JSONDecodeError:
        raise QueryRefused(f"the query failed: {proc.stderr.strip()[-500:] or 'no output'}") from None
    if "error" in out:
        raise QueryRefused(out["error"])
    return dict(out)


def _plain(value: Any) -> Any:
    """JSON-compatible value: times as ISO-8601, decimals as float, maps/lists recursively."""
    if isinstance(value, datetime | date | time):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, bytes):
        return value.hex()
    return value


def _execute(db: str, sql: str, limit: int) -> dict[str, Any]:
    con = duckdb.connect(db, read_only=True, config={"enable_external_access": False, "threads": 2})
    con.execute("SET TimeZone = 'UTC'")
    con.execute("SET lock_configuration = true")  # the query itself cannot re-enable anything
    cur = con.execute(sql)
    columns = [d[0] for d in cur.description or []]
    rows = cur.fetchmany(limit + 1)
    return {"columns": columns, "rows": [_plain(list(r)) for r in rows[:limit]], "truncated": len(rows) > limit}


def main(argv: list[str]) -> int:
    db, limit = argv[0], int(argv[1])
    sql = sys.stdin.read()
    try:
        validate_sql(sql)
        out = _execute(db, sql, limit)
    except QueryRefused as exc:
        out = {"error": str(exc)}
    except duckdb.PermissionException as exc:
        out = {"error": f"the query tried to reach files or settings on the host, which is not allowed ({exc})"}
    except duckdb.Error as exc:
        out = {"error": f"the query failed: {exc}"}
    sys.stdout.write(json.dumps(out, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
