"""`check(cur)`: read every table whole and check the store's invariants (after a crash, a restore, a kill test).

Reading: one aggregate per table over a hash of every column, so DuckDB decodes every block of every column
(a damaged block fails here, not in an officer's query). Invariants: one scan per sha256 and per scan_id, one
verdict per (scan_id, model_version), one row per decision / label / batch id, at most one final decision per
scan, at most one champion, and the audit hash chain.
"""

from __future__ import annotations

import duckdb
from pydantic import BaseModel, ConfigDict

from store import audit_chain
from store.fetch import first

# (what must hold, SQL counting the rows that break it)
INVARIANTS: tuple[tuple[str, str], ...] = (
    ("one scan row per sha256", "SELECT count(*) - count(DISTINCT sha256) FROM scans"),
    ("one scan row per scan_id", "SELECT count(*) - count(DISTINCT scan_id) FROM scans"),
    ("one verdict per (scan_id, model_version)",
     "SELECT count(*) - count(DISTINCT (scan_id, model_version)) FROM verdicts"),
    ("one decision per decision_id", "SELECT count(*) - count(DISTINCT decision_id) FROM decisions"),
    ("one label per label_id", "SELECT count(*) - count(DISTINCT label_id) FROM labels"),
    ("one row per ingest batch", "SELECT count(*) - count(DISTINCT batch_id) FROM ingest_batches"),
    ("at most one final decision per scan",
     "SELECT count(*) FROM (SELECT scan_id FROM decisions WHERE decision <> 'refer' GROUP BY scan_id "
     "HAVING count(*) > 1)"),
    ("at most one champion model per scope (the fleet, each scanner)",
     "SELECT count(*) FROM (SELECT scanner_id FROM models WHERE state = 'champion' GROUP BY scanner_id "
     "HAVING count(*) > 1)"),
)


class IntegrityReport(BaseModel):
    """`ok` when every table read back and every invariant held; `problems` names each one that did not."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    ok: bool
    rows: dict[str, int]
    checksums: dict[str, int]  # per table, a hash of every value (equal tables, equal checksums)
    problems: list[str]
    audit: audit_chain.ChainReport

    def summary(self) -> str:
        total = sum(self.rows.values())
        if self.ok:
            return f"store intact: {len(self.rows)} tables, {total} rows; {self.audit.summary()}"
        return "store damaged: " + "; ".join(self.problems)


def base_tables(cur: duckdb.DuckDBPyConnection) -> list[str]:
    return [r[0] for r in cur.execute("SELECT table_name FROM information_schema.tables WHERE table_type = "
                                      "'BASE TABLE' AND table_catalog = current_database() ORDER BY 1").fetchall()]


def read_table(cur: duckdb.DuckDBPyConnection, table: str) -> tuple[int, int]:
    """(rows, a checksum of every value): forces every column of every row to be read."""
    row = first(cur, f'SELECT count(*), coalesce(bit_xor(hash(COLUMNS(*))), 0) FROM "{table}"')
    assert row is not None
    checksum = 0
    for value in row[1:]:  # COLUMNS(*) expands to one checksum per column
        checksum ^= int(value)
    return int(row[0]), checksum


def check(cur: duckdb.DuckDBPyConnection) -> IntegrityReport:
    """Read every table, check every invariant and the audit chain."""
    rows: dict[str, int] = {}
    checksums: dict[str, int] = {}
    problems: list[str] = []
    for table in base_tables(cur):
        try:
            rows[table], checksums[table] = read_table(cur, table)
        except duckdb.Error as exc:
            problems.append(f"table {table} cannot be read: {exc}")
    for rule, sql in INVARIANTS:
        broken = first(cur, sql)
        if broken and broken[0]:
            problems.append(f"{rule}: {broken[0]} rows break it")
    chain = audit_chain.verify(cur)
    if not chain.ok:
        problems.append(chain.summary())
    return IntegrityReport(ok=not problems, rows=rows, checksums=checksums, problems=problems, audit=chain)
