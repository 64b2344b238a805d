"""The ingest wire format: an IngestBatch as one Arrow table per target table (`Prepared`), and its binary form.

Serving builds a `Prepared` where it scores (or the owner decodes one from the binary HTTP body or spool file
without building a record per row); the store's writer appends the tables with one INSERT each (store/ingest.py).
The Arrow schemas here are the verdict columns on the wire; tests/test_schema_agreement.py holds them against the
records (xscreen/records.py) and the DDL (store/migrations.py).
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from pydantic_core import to_json

from xscreen.errors import XscreenError
from xscreen.records import IngestBatch, QuarantineRecord, ScanRecord, VerdictRecord

TS = pa.timestamp("us", tz="UTC")

# The columns a batch carries (its wire format too). batch_id is added per row by the writer.
SCAN_SCHEMA = pa.schema([
    ("scan_id", pa.string()), ("sha256", pa.string()), ("scanner_id", pa.string()), ("item_id", pa.string()),
    ("source_path", pa.string()), ("file_format", pa.string()), ("width", pa.int32()), ("height", pa.int32()),
    ("bit_depth", pa.int32()), ("dual_energy", pa.bool_()), ("received_at", TS), ("scanned_at", TS),
    ("declared_contents", pa.string()), ("mean_attenuation", pa.float64()), ("noise_level", pa.float64()),
    ("dynamic_range", pa.float64()), ("organic_fraction", pa.float64()), ("inorganic_fraction", pa.float64()),
    ("metal_fraction", pa.float64()), ("is_canary", pa.bool_()), ("canary_labels", pa.list_(pa.string())),
])
VERDICT_SCHEMA = pa.schema([
    ("scan_id", pa.string()), ("model_version", pa.string()), ("role", pa.string()), ("scanner_id", pa.string()),
    ("verdict", pa.string()), ("any_threat", pa.float64()), ("scores", pa.map_(pa.string(), pa.float64())),
    ("top_class", pa.string()), ("thresholds", pa.string()),
    ("embedding", pa.list_(pa.float64())),  # float64 on the wire so a batch round-trips exactly; stored FLOAT[]
    ("heatmap_size", pa.int32()), ("scored_at", TS), ("latency_ms", pa.float64()),
])
HEATMAP_SCHEMA = pa.schema([
    ("scan_id", pa.string()), ("model_version", pa.string()), ("class_name", pa.string()), ("size", pa.int32()),
    ("grid", pa.string()), ("peak_box", pa.list_(pa.float64())),
])
QUARANTINE_SCHEMA = pa.schema([
    ("quarantine_id", pa.string()), ("sha256", pa.string()), ("scanner_id", pa.string()),
    ("source_path", pa.string()), ("quarantined_path", pa.string()), ("reason_code", pa.string()),
    ("reason", pa.string()), ("quarantined_at", TS),
])
KINDS = ("scans", "verdicts", "heatmaps", "quarantines")
SCHEMAS = dict(zip(KINDS, (SCAN_SCHEMA, VERDICT_SCHEMA, HEATMAP_SCHEMA, QUARANTINE_SCHEMA), strict=True))
# Columns that must not be null (the records' required fields), checked before a decoded batch is accepted.
REQUIRED = {
    "scans": [f.name for f in SCAN_SCHEMA if f.name not in ("item_id", "scanned_at", "declared_contents",
                                                              "canary_labels")],
    "verdicts": ["scan_id", "model_version", "role", "verdict", "any_threat", "scores", "thresholds",
                 "embedding", "heatmap_size", "scored_at"],
    "heatmaps": ["scan_id", "model_version", "class_name", "size"],
    "quarantines": ["quarantine_id", "source_path", "reason_code", "reason", "quarantined_at"],
}
MAGIC = b"XSCREEN-INGEST\x01"  # binary batch: MAGIC, u32 header length, JSON header, 4 x (u64 length, Arrow IPC)


class BadBatch(XscreenError):
    """Bytes that are not a valid binary IngestBatch."""

    def __init__(self, message: str) -> None:
        super().__init__(message, title="Bad request")


def _json(value: Any) -> str | None:
    return None if value is None else to_json(value).decode()  # Rust encoder: ~10x json.dumps


@dataclass(frozen=True)
class Prepared:
    """An IngestBatch as one Arrow table per target table (columns as in the schemas above)."""

    batch_id: str
    scans: pa.Table
    verdicts: pa.Table
    heatmaps: pa.Table
    quarantines: pa.Table

    @property
    def weight(self) -> int:
        return max(1, self.scans.num_rows + self.verdicts.num_rows + self.quarantines.num_rows)


def _table(rows: list[tuple[Any, ...]], schema: pa.Schema) -> pa.Table:
    """Row tuples -> Arrow table, one pa.array per column (no dict per row)."""
    cols = list(zip(*rows, strict=True)) if rows else [()] * len(schema)
    return pa.Table.from_arrays([pa.array(c, type=f.type) for c, f in zip(cols, schema, strict=True)], schema=schema)


def _scan_tuple(s: ScanRecord) -> tuple[Any, ...]:
    st = s.stats
    return (s.scan_id, s.sha256, s.scanner_id, s.item_id, s.source_path, s.file_format, s.width, s.height,
            s.bit_depth, s.dual_energy, s.received_at, s.scanned_at, _json(s.declared_contents),
            st.mean_attenuation, st.noise_level, st.dynamic_range, st.organic_fraction, st.inorganic_fraction,
            st.metal_fraction, s.is_canary, s.canary_labels)


def _verdict_tuple(v: VerdictRecord, scanner_id: str | None) -> tuple[Any, ...]:
    return (v.scan_id, v.model_version, v.role, scanner_id, v.verdict, v.any_threat, list(v.scores.items()),
            v.top_class, _json(v.thresholds), v.embedding, v.heatmap_size, v.scored_at, v.latency_ms)


def _heatmap_tuples(v: VerdictRecord) -> list[tuple[Any, ...]]:
    if not v.heatmaps and not v.peak_boxes:
        return []
    classes = dict.fromkeys([*v.heatmaps, *v.peak_boxes])
    return [(v.scan_id, v.model_version, c, v.heatmap_size, v.heatmaps.get(c), v.peak_boxes.get(c)) for c in classes]


def _quarantine_tuple(q: QuarantineRecord) -> tuple[Any, ...]:
    return (q.quarantine_id, q.sha256, q.scanner_id, q.source_path, q.quarantined_path, q.reason_code, q.reason,
            q.quarantined_at)


def prepare(batch: IngestBatch | Prepared) -> Prepared:
    """The batch as Arrow tables; verdicts take the scanner_id of their scan when it is in the same batch."""
    if isinstance(batch, Prepared):
        return batch
    scanner_of = {s.scan_id: s.scanner_id for s in batch.scans}
    return Prepared(
        batch_id=batch.batch_id,
        scans=_table([_scan_tuple(s) for s in batch.scans], SCAN_SCHEMA),
        verdicts=_table([_verdict_tuple(v, scanner_of.get(v.scan_id)) for v in batch.verdicts], VERDICT_SCHEMA),
        heatmaps=_table([h for v in batch.verdicts for h in _heatmap_tuples(v)], HEATMAP_SCHEMA),
        quarantines=_table([_quarantine_tuple(q) for q in batch.quarantines], QUARANTINE_SCHEMA),
    )


# ---- the binary format (HTTP body and spool file) ----------------------------------------------------------------

def encode(prepared: Prepared) -> bytes:
    """Binary form of a batch: a small JSON header and one Arrow IPC stream per table (no per-value parsing)."""
    header = json.dumps({"batch_id": prepared.batch_id}).encode()
    parts = [MAGIC, struct.pack("<I", len(header)), header]
    for kind in KINDS:
        sink = pa.BufferOutputStream()
        table = getattr(prepared, kind)
        with pa.ipc.new_stream(sink, table.schema) as writer:
            writer.write_table(table)
        buf = sink.getvalue()
        parts += [struct.pack("<Q", buf.size), buf.to_pybytes()]
    return b"".join(parts)


def is_binary(data: bytes) -> bool:
    return data[:len(MAGIC)] == MAGIC


def decode(data: bytes) -> Prepared:
    """A batch from `encode`'s bytes, checked (schemas, required columns, value ranges); BadBatch otherwise."""
    if not is_binary(data):
        raise BadBatch("not a binary IngestBatch (bad magic)")
    try:
        buf = pa.py_buffer(data)
        off = len(MAGIC)
        (hlen,) = struct.unpack_from("<I", data, off)
        header = json.loads(data[off + 4:off + 4 + hlen])
        off += 4 + hlen
        tables = {}
        for kind in KINDS:
            (size,) = struct.unpack_from("<Q", data, off)
            off += 8
            if off + size > len(data):
                raise BadBatch(f"truncated at {kind}")
            tables[kind] = pa.ipc.open_stream(buf.slice(off, size)).read_all()
            off += size
        batch_id = header["batch_id"]
    except (struct.error, ValueError, KeyError, TypeError, pa.ArrowException) as exc:
        raise BadBatch(f"unreadable binary IngestBatch: {exc}") from None
    if not isinstance(batch_id, str) or off != len(data):
        raise BadBatch("bad header or trailing bytes")
    for kind, table in tables.items():
        _check(kind, table)
    return Prepared(batch_id=batch_id, **tables)


def _check(kind: str, table: pa.Table) -> None:
    if not table.schema.equals(SCHEMAS[kind], check_metadata=False):
        raise BadBatch(f"{kind}: columns are {table.schema.names} with other types than expected")
    for col in REQUIRED[kind]:
        if table.column(col).null_count:
            raise BadBatch(f"{kind}.{col}: missing value")
    if kind != "verdicts" or table.num_rows == 0:
        return
    threat = table.column("any_threat")
    if not pc.all(pc.and_(pc.greater_equal(threat, 0.0), pc.less_equal(threat, 1.0))).as_py():
        raise BadBatch("verdicts.any_threat: outside [0, 1]")
    for col, allowed in (("verdict", ["inspect", "clear", "uncertain"]), ("role", ["champion", "shadow"])):
        if not pc.all(pc.is_in(table.column(col), value_set=pa.array(allowed))).as_py():
            raise BadBatch(f"verdicts.{col}: not one of {allowed}")


def to_batch(prepared: Prepared) -> IngestBatch:
    """The IngestBatch a Prepared came from (validated again by pydantic): for readers that want records."""
    stats = ("mean_attenuation", "noise_level", "dynamic_range", "organic_fraction", "inorganic_fraction",
             "metal_fraction")
    scans = []
    for row in prepared.scans.to_pylist():
        row["stats"] = {k: row.pop(k) for k in stats}
        row["declared_contents"] = None if row["declared_contents"] is None else json.loads(row["declared_contents"])
        scans.append(row)
    boxes: dict[tuple[str, str], tuple[dict[str, str], dict[str, list[float]]]] = {}
    for h in prepared.heatmaps.to_pylist():
        grids, peaks = boxes.setdefault((h["scan_id"], h["model_version"]), ({}, {}))
        if h["grid"] is not None:
            grids[h["class_name"]] = h["grid"]
        if h["peak_box"] is not None:
            peaks[h["class_name"]] = h["peak_box"]
    verdicts = []
    for row in prepared.verdicts.to_pylist():
        del row["scanner_id"]
        row["scores"] = dict(row["scores"])
        row["thresholds"] = json.loads(row["thresholds"])
        row["heatmaps"], row["peak_boxes"] = boxes.get((row["scan_id"], row["model_version"]), ({}, {}))
        verdicts.append(row)
    return IngestBatch(batch_id=prepared.batch_id, scans=scans, verdicts=verdicts,
                       quarantines=prepared.quarantines.to_pylist())
