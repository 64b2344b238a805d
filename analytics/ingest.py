"""Idempotent bulk ingest of IngestBatches into scans/verdicts/heatmaps/quarantine, as Arrow appends.

Called by the Store's writer thread inside its open transaction with every ingest waiting in one group commit,
so thousands of verdicts cost one anti-join and one append per table (executemany would be ~1,500 rows/s).
Identity: batches by batch_id, scans by sha256, verdicts by (scan_id, model_version), quarantine by id.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import duckdb
import pyarrow as pa
from pydantic_core import to_json

from analytics.api import IngestResult
from analytics.records import IngestBatch, QuarantineRecord, ScanRecord, VerdictRecord

TS = pa.timestamp("us", tz="UTC")

SCAN_SCHEMA = pa.schema([
    ("scan_id", pa.string()), ("sha256", pa.string()), ("scanner_id", pa.string()), ("item_id", pa.string()),
    ("source_path", pa.string()), ("file_format", pa.string()), ("width", pa.int32()), ("height", pa.int32()),
    ("bit_depth", pa.int32()), ("dual_energy", pa.bool_()), ("received_at", TS), ("scanned_at", TS),
    ("declared_contents", pa.string()), ("mean_attenuation", pa.float64()), ("noise_level", pa.float64()),
    ("dynamic_range", pa.float64()), ("organic_fraction", pa.float64()), ("inorganic_fraction", pa.float64()),
    ("metal_fraction", pa.float64()), ("is_canary", pa.bool_()), ("canary_labels", pa.list_(pa.string())),
    ("batch_id", pa.string()),
])
VERDICT_SCHEMA = pa.schema([
    ("scan_id", pa.string()), ("model_version", pa.string()), ("role", pa.string()), ("scanner_id", pa.string()),
    ("verdict", pa.string()), ("any_threat", pa.float64()), ("scores", pa.map_(pa.string(), pa.float64())),
    ("top_class", pa.string()), ("thresholds", pa.string()), ("embedding", pa.list_(pa.float32())),
    ("heatmap_size", pa.int32()), ("scored_at", TS), ("latency_ms", pa.float64()), ("batch_id", pa.string()),
])
HEATMAP_SCHEMA = pa.schema([
    ("scan_id", pa.string()), ("model_version", pa.string()), ("class_name", pa.string()), ("size", pa.int32()),
    ("grid", pa.string()), ("peak_box", pa.list_(pa.float64())),
])
QUARANTINE_SCHEMA = pa.schema([
    ("quarantine_id", pa.string()), ("sha256", pa.string()), ("scanner_id", pa.string()),
    ("source_path", pa.string()), ("quarantined_path", pa.string()), ("reason_code", pa.string()),
    ("reason", pa.string()), ("quarantined_at", TS), ("batch_id", pa.string()),
])
# Columns stored as JSON text: cast on insert so analysts can use ->> on them.
JSON_COLUMNS = {"scans": ["declared_contents"], "verdicts": ["thresholds"]}


def _json(value: Any) -> str | None:
    return None if value is None else to_json(value).decode()  # Rust encoder: ~10x json.dumps


def _scan_row(scan: ScanRecord, batch_id: str) -> dict[str, Any]:
    row = dict(scan.__dict__)  # the validated fields, without model_dump's per-field serialisation
    del row["stats"]
    row.update(scan.stats.__dict__)
    row["declared_contents"] = _json(scan.declared_contents)
    row["batch_id"] = batch_id
    return row


def _verdict_row(v: VerdictRecord, scanner_id: str | None, batch_id: str) -> dict[str, Any]:
    return {
        "scan_id": v.scan_id, "model_version": v.model_version, "role": v.role, "scanner_id": scanner_id,
        "verdict": v.verdict, "any_threat": v.any_threat, "scores": list(v.scores.items()),
        "top_class": v.top_class, "thresholds": _json(v.thresholds), "embedding": v.embedding,
        "heatmap_size": v.heatmap_size, "scored_at": v.scored_at, "latency_ms": v.latency_ms, "batch_id": batch_id,
    }


def _heatmap_rows(v: VerdictRecord) -> list[dict[str, Any]]:
    classes = list(dict.fromkeys([*v.heatmaps, *v.peak_boxes]))
    return [
        {"scan_id": v.scan_id, "model_version": v.model_version, "class_name": c, "size": v.heatmap_size,
         "grid": v.heatmaps.get(c), "peak_box": v.peak_boxes.get(c)}
        for c in classes
    ]


def _existing(cur: duckdb.DuckDBPyConnection, sql: str, keys: list[Any], key_type: pa.DataType) -> set[Any]:
    """Which of `keys` are already stored: one semi-join against an Arrow table of the keys."""
    if not keys:
        return set()
    cur.register("_keys", pa.table({"k": pa.array(keys, type=key_type)}))
    try:
        return {tuple(r) if len(r) > 1 else r[0] for r in cur.execute(sql).fetchall()}
    finally:
        cur.unregister("_keys")


def _append(cur: duckdb.DuckDBPyConnection, table: str, rows: list[dict[str, Any]], schema: pa.Schema) -> None:
    if not rows:
        return
    cur.register("_rows", pa.Table.from_pylist(rows, schema=schema))
    try:
        cols = ", ".join(f"{c}::JSON AS {c}" if c in JSON_COLUMNS.get(table, []) else c for c in schema.names)
        cur.execute(f"INSERT INTO {table} BY NAME SELECT {cols} FROM _rows")
    finally:
        cur.unregister("_rows")


@dataclass
class Prepared:
    """An IngestBatch turned into table rows, keyed for deduplication. Built in the caller's thread, so the
    writer thread only filters and appends."""

    batch_id: str
    scans: list[tuple[str, dict[str, Any]]]  # (sha256, row)
    verdicts: list[tuple[tuple[str, str], dict[str, Any], list[dict[str, Any]]]]  # (key, row, heatmap rows)
    quarantines: list[tuple[str, dict[str, Any]]]  # (quarantine_id, row)


def prepare(batch: IngestBatch) -> Prepared:
    scanner_of = {s.scan_id: s.scanner_id for s in batch.scans}
    return Prepared(
        batch_id=batch.batch_id,
        scans=[(s.sha256, _scan_row(s, batch.batch_id)) for s in batch.scans],
        verdicts=[((v.scan_id, v.model_version), _verdict_row(v, scanner_of.get(v.scan_id), batch.batch_id),
                   _heatmap_rows(v)) for v in batch.verdicts],
        quarantines=[(q.quarantine_id, _quarantine_row(q, batch.batch_id)) for q in batch.quarantines],
    )


class _Plan:
    """The rows a group of batches will add, deduplicated against the store and within the group."""

    def __init__(self) -> None:
        self.scans: list[dict[str, Any]] = []
        self.verdicts: list[dict[str, Any]] = []
        self.heatmaps: list[dict[str, Any]] = []
        self.quarantines: list[dict[str, Any]] = []
        self.batches: list[dict[str, Any]] = []


def _fill_scanner_ids(cur: duckdb.DuckDBPyConnection, rows: list[dict[str, Any]]) -> None:
    """Verdicts whose scan came in an earlier batch take its scanner_id from the scans table."""
    missing = list({r["scan_id"] for r in rows if r["scanner_id"] is None})
    if not missing:
        return
    cur.register("_keys", pa.table({"k": pa.array(missing, type=pa.string())}))
    try:
        known = dict(cur.execute("SELECT scan_id, scanner_id FROM scans WHERE scan_id IN (SELECT k FROM _keys)")
                     .fetchall())
    finally:
        cur.unregister("_keys")
    for r in rows:
        if r["scanner_id"] is None:
            r["scanner_id"] = known.get(r["scan_id"])


def ingest_batches(cur: duckdb.DuckDBPyConnection, batches: list[Prepared], now: datetime) -> list[IngestResult]:
    """Write every batch inside the caller's transaction; one IngestResult per batch, in order."""
    seen_batches = _existing(cur, "SELECT batch_id FROM ingest_batches WHERE batch_id IN (SELECT k FROM _keys)",
                             list({b.batch_id for b in batches}), pa.string())
    seen_sha = _existing(cur, "SELECT sha256 FROM scans WHERE sha256 IN (SELECT k FROM _keys)",
                         list({k for b in batches for k, _ in b.scans}), pa.string())
    seen_verdicts = _existing(
        cur, "SELECT scan_id, model_version FROM verdicts WHERE scan_id IN (SELECT k FROM _keys)",
        list({k[0] for b in batches for k, _, _ in b.verdicts}), pa.string())
    seen_quarantine = _existing(cur, "SELECT quarantine_id FROM quarantine WHERE quarantine_id IN (SELECT k FROM _keys)",
                                list({k for b in batches for k, _ in b.quarantines}), pa.string())
    plan = _Plan()
    results = [_plan_batch(plan, b, now, seen_batches, seen_sha, seen_verdicts, seen_quarantine) for b in batches]
    _fill_scanner_ids(cur, plan.verdicts)
    _append(cur, "scans", plan.scans, SCAN_SCHEMA)
    _append(cur, "verdicts", plan.verdicts, VERDICT_SCHEMA)
    _append(cur, "heatmaps", plan.heatmaps, HEATMAP_SCHEMA)
    _append(cur, "quarantine", plan.quarantines, QUARANTINE_SCHEMA)
    if plan.batches:
        cur.register("_rows", pa.Table.from_pylist(plan.batches))
        cur.execute("INSERT INTO ingest_batches BY NAME SELECT * FROM _rows")
        cur.unregister("_rows")
    return results


def _plan_batch(plan: _Plan, batch: Prepared, now: datetime, seen_batches: set[Any], seen_sha: set[Any],
                seen_verdicts: set[Any], seen_quarantine: set[Any]) -> IngestResult:
    """Add one batch's new rows to the plan (marking them seen, so a later batch in the group skips them)."""
    if batch.batch_id in seen_batches:
        return IngestResult(batch_id=batch.batch_id, duplicate_batch=True,
                            duplicate_scans=len(batch.scans), duplicate_verdicts=len(batch.verdicts),
                            duplicate_quarantines=len(batch.quarantines))
    seen_batches.add(batch.batch_id)
    new_scans = [row for key, row in batch.scans if key not in seen_sha and not seen_sha.add(key)]  # type: ignore[func-returns-value]
    new_verdicts = [(row, hm) for key, row, hm in batch.verdicts
                    if key not in seen_verdicts and not seen_verdicts.add(key)]  # type: ignore[func-returns-value]
    new_quarantines = [row for key, row in batch.quarantines
                       if key not in seen_quarantine and not seen_quarantine.add(key)]  # type: ignore[func-returns-value]
    plan.scans += new_scans
    plan.verdicts += [row for row, _ in new_verdicts]
    plan.heatmaps += [h for _, hm in new_verdicts for h in hm]
    plan.quarantines += new_quarantines
    plan.batches.append({"batch_id": batch.batch_id, "received_at": now, "n_scans": len(new_scans),
                         "n_verdicts": len(new_verdicts), "n_quarantines": len(new_quarantines)})
    return IngestResult(
        batch_id=batch.batch_id, new_scans=len(new_scans), new_verdicts=len(new_verdicts),
        new_quarantines=len(new_quarantines), duplicate_scans=len(batch.scans) - len(new_scans),
        duplicate_verdicts=len(batch.verdicts) - len(new_verdicts),
        duplicate_quarantines=len(batch.quarantines) - len(new_quarantines),
    )


def _quarantine_row(q: QuarantineRecord, batch_id: str) -> dict[str, Any]:
    row = q.model_dump()
    row["batch_id"] = batch_id
    return row
