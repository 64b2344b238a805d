"""`first()`: one row of a query with its result fetched to the end (store code never calls `fetchone()`)."""

from __future__ import annotations

from typing import Any

import duckdb


def first(cur: duckdb.DuckDBPyConnection, sql: str, params: Any = None) -> tuple[Any, ...] | None:
    """The first row of a query, or None; the result is always fetched to its end.

    Never `fetchone()` in store code: it leaves the rest of the result, and the transaction under it, open on the
    cursor, which then refuses `register()` (ResourceInUseException) and keeps DuckDB from checkpointing
    (issue 12). Every query here returns at most a few rows."""
    rows = cur.execute(sql, params).fetchall() if params is not None else cur.execute(sql).fetchall()
    return rows[0] if rows else None
