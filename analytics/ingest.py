"""Idempotent bulk ingest of IngestBatches into scans/verdicts/heatmaps/quarantine, as Arrow appends.

Called by the Store's writer thread inside its open transaction with every ingest waiting in one group commit,
so thousands of verdicts cost one anti-join and one append per table (executemany would be ~1,500 rows/s).
Identity: batches by batch_id, scans by sha256, verdicts by (scan_id, model_version), quarantine by id.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
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
HOURLY_SCHEMA = pa.schema([
    ("hour", TS), ("scanner_id", pa.string()), ("model_version", pa.string()), ("role", pa.string()),
    ("verdict", pa.string()), ("n", pa.int64()),
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


def _append(cur: duckdb.DuckDBPyConnection, table: str, rows: list[dict[str, Any]], schema: pa.Schema,
            key: tuple[str, ...] = ()) -> set[Any]:
    """Append rows as one Arrow insert. With `key`, rows whose key is already stored are skipped by the
    table's unique index (ON CONFLICT DO NOTHING: an index probe per row, not a scan of the table) and the keys
    actually inserted are returned."""
    if not rows:
        return set()
    cur.register("_rows", pa.Table.from_pylist(rows, schema=schema))
    try:
        cols = ", ".join(f"{c}::JSON AS {c}" if c in JSON_COLUMNS.get(table, []) else c for c in schema.names)
        sql = f"INSERT INTO {table} BY NAME SELECT {cols} FROM _rows"
        if not key:
            cur.execute(sql)
            return set()
        returned = cur.execute(f"{sql} ON CONFLICT ({', '.join(key)}) DO NOTHING RETURNING {', '.join(key)}").fetchall()
        return {r if len(key) > 1 else r[0] for r in returned}
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
    """The rows a group of batches will add, deduplicated within the group; `owner` maps each key to the index
    of the batch that brought it, so inserted keys can be counted per batch."""

    def __init__(self) -> None:
        self.scans: list[dict[str, Any]] = []
        self.verdicts: list[dict[str, Any]] = []
        self.heatmaps: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self.quarantines: list[dict[str, Any]] = []
        self.owner: dict[tuple[str, Any], int] = {}  # (kind, key) -> batch index

    def add(self, index: int, batch: Prepared) -> None:
        for sha, row in batch.scans:
            if ("scan", sha) not in self.owner:
                self.owner[("scan", sha)] = index
                self.scans.append(row)
        for key, row, heatmaps in batch.verdicts:
            if ("verdict", key) not in self.owner:
                self.owner[("verdict", key)] = index
                self.verdicts.append(row)
                self.heatmaps[key] = heatmaps
        for qid, row in batch.quarantines:
            if ("quarantine", qid) not in self.owner:
                self.owner[("quarantine", qid)] = index
                self.quarantines.append(row)


def _fill_scanner_ids(cur: duckdb.DuckDBPyConnection, rows: list[dict[str, Any]]) -> None:
    """Verdicts whose scan came in an earlier batch take its scanner_id from the scans table (index lookups)."""
    missing = list({r["scan_id"] for r in rows if r["scanner_id"] is None})
    if not missing:
        return
    known = dict(cur.execute("SELECT scan_id, scanner_id FROM scans WHERE scan_id IN ?", [missing]).fetchall())
    for r in rows:
        if r["scanner_id"] is None:
            r["scanner_id"] = known.get(r["scan_id"])


def ingest_batches(cur: duckdb.DuckDBPyConnection, batches: list[Prepared], now: datetime) -> list[IngestResult]:
    """Write every batch inside the caller's transaction; one IngestResult per batch, in order."""
    seen_batches = _existing(cur, "SELECT batch_id FROM ingest_batches WHERE batch_id IN (SELECT k FROM _keys)",
                             list({b.batch_id for b in batches}), pa.string())
    plan = _Plan()
    fresh: list[int] = []
    for i, batch in enumerate(batches):
        if batch.batch_id not in seen_batches:
            seen_batches.add(batch.batch_id)
            fresh.append(i)
            plan.add(i, batch)
    _fill_scanner_ids(cur, plan.verdicts)
    new_scans = _append(cur, "scans", plan.scans, SCAN_SCHEMA, key=("scan_id",))
    new_verdicts = _append(cur, "verdicts", plan.verdicts, VERDICT_SCHEMA, key=("scan_id", "model_version"))
    _append(cur, "heatmaps", [h for k in new_verdicts for h in plan.heatmaps[k]], HEATMAP_SCHEMA)
    _update_rollups(cur, [r for r in plan.verdicts if (r["scan_id"], r["model_version"]) in new_verdicts])
    new_quarantines = _append(cur, "quarantine", plan.quarantines, QUARANTINE_SCHEMA, key=("quarantine_id",))
    new_sha = {row["sha256"] for row in plan.scans if row["scan_id"] in new_scans}
    counts = {i: [0, 0, 0] for i in fresh}
    for kind, keys, slot in (("scan", new_sha, 0), ("verdict", new_verdicts, 1), ("quarantine", new_quarantines, 2)):
        for key in keys:
            counts[plan.owner[(kind, key)]][slot] += 1
    if fresh:
        rows = [{"batch_id": batches[i].batch_id, "received_at": now, "n_scans": counts[i][0],
                 "n_verdicts": counts[i][1], "n_quarantines": counts[i][2]} for i in fresh]
        cur.register("_rows", pa.Table.from_pylist(rows))
        cur.execute("INSERT INTO ingest_batches BY NAME SELECT * FROM _rows")
        cur.unregister("_rows")
    return [_result(b, counts.get(i)) for i, b in enumerate(batches)]


PENDING_COLUMNS = ("scan_id", "model_version", "scanner_id", "verdict", "any_threat", "top_class", "scored_at")
PENDING_SCHEMA = pa.schema([VERDICT_SCHEMA.field(c) for c in PENDING_COLUMNS])


def _utc_hour(ts: datetime) -> datetime:
    """The UTC hour a time falls in (naive times are UTC, as the Arrow insert treats them)."""
    ts = ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)
    return ts.replace(minute=0, second=0, microsecond=0)


def _update_rollups(cur: duckdb.DuckDBPyConnection, verdicts: list[dict[str, Any]]) -> None:
    """Keep queue_pending (champion items waiting for an officer) and verdict_hourly (counts) in step with the
    verdicts just inserted, in the same transaction."""
    if not verdicts:
        return
    pending = [{c: r[c] for c in PENDING_COLUMNS} for r in verdicts
               if r["role"] == "champion" and r["verdict"] in ("inspect", "uncertain")]
    if pending:
        cur.register("_pending", pa.Table.from_pylist(pending, schema=PENDING_SCHEMA))
        cur.execute("INSERT INTO queue_pending BY NAME SELECT * FROM _pending ON CONFLICT (scan_id) DO NOTHING")
        cur.unregister("_pending")
    counts = Counter((_utc_hour(r["scored_at"]), r["scanner_id"] or "",
                      r["model_version"], r["role"], r["verdict"]) for r in verdicts)
    rows = [dict(zip(("hour", "scanner_id", "model_version", "role", "verdict", "n"), (*k, n), strict=True))
            for k, n in counts.items()]
    cur.register("_hourly", pa.Table.from_pylist(rows, schema=HOURLY_SCHEMA))
    cur.execute("INSERT INTO verdict_hourly BY NAME SELECT * FROM _hourly ON CONFLICT DO UPDATE SET n = n + excluded.n")
    cur.unregister("_hourly")


def _result(batch: Prepared, counts: list[int] | None) -> IngestResult:
    if counts is None:  # the batch_id was already ingested: everything in it is a duplicate
        return IngestResult(batch_id=batch.batch_id, duplicate_batch=True, duplicate_scans=len(batch.scans),
                            duplicate_verdicts=len(batch.verdicts), duplicate_quarantines=len(batch.quarantines))
    return IngestResult(
        batch_id=batch.batch_id, new_scans=counts[0], new_verdicts=counts[1], new_quarantines=counts[2],
        duplicate_scans=len(batch.scans) - counts[0], duplicate_verdicts=len(batch.verdicts) - counts[1],
        duplicate_quarantines=len(batch.quarantines) - counts[2])


def _quarantine_row(q: QuarantineRecord, batch_id: str) -> dict[str, Any]:
    row = q.model_dump()
    row["batch_id"] = batch_id
    return row
