"""Ingest domain: serving's batches written idempotently (scans, verdicts, heatmaps, quarantine) as columnar
Arrow appends, and the known-content check serving makes before it scores.

A batch arrives as a `Prepared` (store/wire.py); the writer thread writes every ingest waiting in one group commit
with one INSERT ... SELECT FROM arrow per table, so thousands of verdicts cost a handful of statements
(executemany would be ~1,500 rows/s). Identity: batches by batch_id, scans by scan_id/sha256, verdicts by
(scan_id, model_version), quarantine by id; duplicates are skipped by the unique indexes (ON CONFLICT DO NOTHING;
the first copy in a group wins).
"""

from __future__ import annotations

from datetime import datetime

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import BaseModel, ConfigDict

from store.audit_sampling import AuditDesign
from store.fetch import over_arrow as _insert
from store.ground_truth import select_audits
from store.ops import Engine, composite, read
from store.wire import TS, Prepared, prepare
from xscreen.records import IngestBatch


class IngestResult(BaseModel):
    """What one IngestBatch added. Duplicates (re-delivered batch, known sha256, known verdict) are not errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    batch_id: str
    duplicate_batch: bool = False
    new_scans: int = 0
    duplicate_scans: int = 0
    new_verdicts: int = 0
    duplicate_verdicts: int = 0
    new_quarantines: int = 0
    duplicate_quarantines: int = 0


@composite(process_only=True)
def ingest(engine: Engine, batch: IngestBatch) -> IngestResult:
    """Write a batch idempotently; returns after COMMIT. In-process it also takes a `Prepared` (decoded from the
    binary wire/spool format, already columnar): nothing is turned back into records. Over HTTP the batch travels
    in that binary format (store/wire.py)."""
    prepared = prepare(batch)  # Arrow tables, built in the caller's thread
    result: IngestResult = engine.write_batch(prepared, prepared.weight)
    return result


@read()
def known_hashes(cur: duckdb.DuckDBPyConnection, hashes: list[str]) -> set[str]:
    """Which sha256 values are already stored (serving skips re-delivered files)."""
    if not hashes:
        return set()
    cur.register("_hashes", pa.table({"h": pa.array(hashes, type=pa.string())}))
    try:
        return {r[0] for r in cur.execute("SELECT sha256 FROM scans WHERE sha256 IN (SELECT h FROM _hashes)").fetchall()}
    finally:
        cur.unregister("_hashes")


# ---- the writer's side ----------------------------------------------------------------------------------------

def _group_table(batches: list[Prepared], kind: str) -> pa.Table:
    """The fresh batches' tables of one kind, concatenated, with a batch_id column."""
    tables = [getattr(b, kind).append_column("batch_id", pa.array([b.batch_id] * getattr(b, kind).num_rows,
                                                                  pa.string())) for b in batches]
    return pa.concat_tables(tables)


def _counts(returned: pa.Table) -> dict[str, int]:
    if returned.num_rows == 0:
        return {}
    vc = pc.value_counts(returned.column("batch_id")).to_pylist()
    return {d["values"]: d["counts"] for d in vc}


def _seen_batches(cur: duckdb.DuckDBPyConnection, ids: list[str]) -> set[str]:
    return {r[0] for r in cur.execute("SELECT batch_id FROM ingest_batches WHERE batch_id IN ?", [ids]).fetchall()}


SCAN_INSERT = ("INSERT INTO scans BY NAME SELECT * REPLACE (declared_contents::JSON AS declared_contents) FROM _s "
               "ON CONFLICT (scan_id) DO NOTHING RETURNING batch_id")
VERDICT_INSERT = (  # {scanner}/{join}: verdicts that came without their scan take its scanner_id from _k
    "INSERT INTO verdicts BY NAME SELECT v.* REPLACE ({scanner} AS scanner_id, v.thresholds::JSON AS thresholds, "
    "v.embedding::FLOAT[] AS embedding) FROM _v v {join} ON CONFLICT (scan_id, model_version) DO NOTHING "
    "RETURNING scan_id, model_version, batch_id, scanner_id, role, verdict, any_threat, top_class, scored_at")
HEATMAP_INSERT = (
    "INSERT INTO heatmaps BY NAME SELECT DISTINCT ON (h.scan_id, h.model_version, h.batch_id, h.class_name) "
    "h.scan_id, h.model_version, h.class_name, h.size, h.grid, h.peak_box FROM _h h "
    "SEMI JOIN _n n ON h.scan_id = n.scan_id AND h.model_version = n.model_version AND h.batch_id = n.batch_id")
PENDING_INSERT = (
    "INSERT INTO queue_pending BY NAME SELECT scan_id, model_version, scanner_id, verdict, any_threat, top_class, "
    "scored_at FROM _n WHERE role = 'champion' AND verdict IN ('inspect', 'uncertain') ON CONFLICT (scan_id) DO NOTHING")
HOURLY_INSERT = (  # the writer's session time zone is UTC (Store.open), so date_trunc gives UTC hours
    "INSERT INTO verdict_hourly BY NAME SELECT date_trunc('hour', scored_at) AS hour, "
    "coalesce(scanner_id, '') AS scanner_id, model_version, role, verdict, count(*) AS n FROM _n GROUP BY ALL "
    "ON CONFLICT DO UPDATE SET n = n + excluded.n")
QUARANTINE_INSERT = "INSERT INTO quarantine BY NAME SELECT * FROM _q ON CONFLICT (quarantine_id) DO NOTHING RETURNING batch_id"


def _insert_verdicts(cur: duckdb.DuckDBPyConnection, verdicts: pa.Table) -> pa.Table:
    """Insert the group's verdicts; those without a scanner_id (their scan came in an earlier batch) take it from
    the scans table (index lookups, and a join only when there are any). The new verdicts' key columns."""
    missing = pc.unique(pc.filter(verdicts.column("scan_id"), pc.is_null(verdicts.column("scanner_id"))))
    if len(missing) == 0:
        return _insert(cur, VERDICT_INSERT.format(scanner="v.scanner_id", join=""), _v=verdicts)
    rows = cur.execute("SELECT scan_id, scanner_id FROM scans WHERE scan_id IN ?", [missing.to_pylist()]).fetchall()
    known = pa.table({"scan_id": pa.array([r[0] for r in rows], pa.string()),
                      "scanner_id": pa.array([r[1] for r in rows], pa.string())})
    sql = VERDICT_INSERT.format(scanner="coalesce(v.scanner_id, k.scanner_id)", join="LEFT JOIN _k k USING (scan_id)")
    return _insert(cur, sql, _v=verdicts, _k=known)


def _insert_group(cur: duckdb.DuckDBPyConnection, sql: str, fresh: list[Prepared], kind: str,
                  **extra: pa.Table) -> pa.Table:
    """One INSERT of the fresh batches' rows of `kind` (registered as its first letter); skipped when empty, since
    each statement costs ~1-2 ms of planning whatever its size."""
    table = _group_table(fresh, kind)
    if table.num_rows == 0:
        return pa.table({"batch_id": pa.array([], pa.string())})
    return _insert(cur, sql, **{f"_{kind[0]}": table}, **extra)


def ingest_batches(cur: duckdb.DuckDBPyConnection, batches: list[Prepared], now: datetime,
                   audit: AuditDesign | None = None) -> list[IngestResult]:
    """Write every batch inside the caller's transaction; one IngestResult per batch, in order. New champion
    `clear` verdicts are drawn for the random audit under `audit` (store/ground_truth.py)."""
    taken = _seen_batches(cur, list({b.batch_id for b in batches}))
    fresh: list[Prepared] = []
    for b in batches:
        if b.batch_id not in taken:
            taken.add(b.batch_id)
            fresh.append(b)
    if not fresh:
        return [_result(b, None) for b in batches]
    new_scans = _counts(_insert_group(cur, SCAN_INSERT, fresh, "scans"))
    verdicts = _group_table(fresh, "verdicts")
    new = _insert_verdicts(cur, verdicts) if verdicts.num_rows else pa.table({"batch_id": pa.array([], pa.string())})
    if new.num_rows:
        _insert_group(cur, HEATMAP_INSERT, fresh, "heatmaps", _n=new)
        _insert(cur, PENDING_INSERT, _n=new)
        if audit is not None and audit.enabled:
            select_audits(cur, new, audit, now)
        _insert(cur, HOURLY_INSERT, _n=new)
    new_verdicts = _counts(new)
    new_quarantines = _counts(_insert_group(cur, QUARANTINE_INSERT, fresh, "quarantines"))
    counts = {b.batch_id: [new_scans.get(b.batch_id, 0), new_verdicts.get(b.batch_id, 0),
                           new_quarantines.get(b.batch_id, 0)] for b in fresh}
    rows = pa.table({"batch_id": [b.batch_id for b in fresh], "received_at": pa.array([now] * len(fresh), TS),
                     "n_scans": [counts[b.batch_id][0] for b in fresh],
                     "n_verdicts": [counts[b.batch_id][1] for b in fresh],
                     "n_quarantines": [counts[b.batch_id][2] for b in fresh]})
    _insert(cur, "INSERT INTO ingest_batches BY NAME SELECT * FROM _b", _b=rows)
    fresh_ids = {id(b) for b in fresh}
    return [_result(b, counts[b.batch_id] if id(b) in fresh_ids else None) for b in batches]


def _result(batch: Prepared, counts: list[int] | None) -> IngestResult:
    n_scans, n_verdicts, n_quarantines = batch.scans.num_rows, batch.verdicts.num_rows, batch.quarantines.num_rows
    if counts is None:  # the batch_id was already ingested: everything in it is a duplicate
        return IngestResult(batch_id=batch.batch_id, duplicate_batch=True, duplicate_scans=n_scans,
                            duplicate_verdicts=n_verdicts, duplicate_quarantines=n_quarantines)
    return IngestResult(
        batch_id=batch.batch_id, new_scans=counts[0], new_verdicts=counts[1], new_quarantines=counts[2],
        duplicate_scans=n_scans - counts[0], duplicate_verdicts=n_verdicts - counts[1],
        duplicate_quarantines=n_quarantines - counts[2])
