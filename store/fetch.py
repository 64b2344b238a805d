"""Reading results in store code: `first()` and `dicts()` always fetch to the end (never `fetchone()`), the
shared time-window clause, and `over_arrow()` for statements over Arrow tables."""

from __future__ import annotations

from typing import Any

import duckdb
import pyarrow as pa

from xscreen.errors import StoreError


def first(cur: duckdb.DuckDBPyConnection, sql: str, params: Any = None) -> tuple[Any, ...] | None:
    """The first row of a query, or None; the result is always fetched to its end.

    Never `fetchone()` in store code: it leaves the rest of the result, and the transaction under it, open on the
    cursor, which then refuses `register()` (ResourceInUseException) and keeps DuckDB from checkpointing
    (issue 12). Every query here returns at most a few rows."""
    rows = cur.execute(sql, params).fetchall() if params is not None else cur.execute(sql).fetchall()
    return rows[0] if rows else None


def scalar(cur: duckdb.DuckDBPyConnection, sql: str, params: Any = None) -> Any:
    """The first column of the first row of a query that always returns one (an aggregate)."""
    row = first(cur, sql, params)
    if row is None:
        raise StoreError(f"no row from {sql[:80]}")
    return row[0]


def dicts(cur: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    """Every row of the cursor's last result as a dict of its columns (fetched to the end)."""
    names = [d[0] for d in cur.description or []]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


# A time window [start, end) as query parameters `$start`/`$end` (datetimes or ISO-8601 strings, UTC); either
# left out (None) means the last 7 days up to now. One parameter style everywhere: named `$` parameters.
WINDOW_START = "coalesce($start::TIMESTAMPTZ, now() - INTERVAL 7 DAY)"
WINDOW_END = "coalesce($end::TIMESTAMPTZ, now())"


def in_window(column: str) -> str:
    """`column` lies in the window [$start, $end)."""
    return f"{column} >= {WINDOW_START} AND {column} < {WINDOW_END}"


def over_arrow(cur: duckdb.DuckDBPyConnection, sql: str, **tables: pa.Table) -> pa.Table:
    """Run one statement (an INSERT) over Arrow tables registered under their keyword names; its RETURNING rows
    (an empty table when it has none)."""
    for name, table in tables.items():
        cur.register(name, table)
    try:
        if "RETURNING" in sql:
            return cur.sql(sql).to_arrow_table()  # a DML relation runs once, here
        cur.execute(sql)
        return pa.table({})
    finally:
        for name in tables:
            cur.unregister(name)
