"""A verdict, a scan and a quarantine record are each spelled three times, necessarily: the pydantic record
(xscreen/records.py, what serving builds), the Arrow wire schema (store/wire.py, what the spool and HTTP carry)
and the table (store/migrations.py, what is stored). They must agree, column by column and type by type; so must
the rows `get_scan` returns (xscreen.records.ScanDetail) and the table it reads."""

from __future__ import annotations

import types
import typing
from datetime import datetime
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest
from pydantic import BaseModel

from store.migrations import migrate
from store.wire import HEATMAP_SCHEMA, QUARANTINE_SCHEMA, REQUIRED, SCAN_SCHEMA, VERDICT_SCHEMA
from xscreen.records import (
    ImageStats,
    QuarantineRecord,
    ScanDetail,
    ScanRecord,
    StoredDecision,
    StoredLabel,
    StoredVerdict,
    VerdictRecord,
)

# The wire type each table type is written from (embeddings travel as float64 so a batch round-trips exactly,
# and are stored as FLOAT[]; JSON columns travel as text).
WIRE_OF_DDL = {
    "VARCHAR": pa.string(), "JSON": pa.string(), "DOUBLE": pa.float64(), "INTEGER": pa.int32(),
    "BOOLEAN": pa.bool_(), "TIMESTAMP WITH TIME ZONE": pa.timestamp("us", tz="UTC"),
    "MAP(VARCHAR, DOUBLE)": pa.map_(pa.string(), pa.float64()), "FLOAT[]": pa.list_(pa.float64()),
    "DOUBLE[]": pa.list_(pa.float64()), "VARCHAR[]": pa.list_(pa.string()),
}
# Where the three differ by design: the writer adds batch_id; a verdict's scanner comes from its scan; its heatmaps
# and peak boxes go to their own table; a scan's image statistics are a nested record, flat on the wire and in SQL.
STORE_ONLY = {"batch_id"}


@pytest.fixture(scope="module")
def ddl(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, tuple[str, bool]]]:
    con = duckdb.connect(str(Path(tmp_path_factory.mktemp("db")) / "x.duckdb"))
    migrate(con)
    rows = con.execute("SELECT table_name, column_name, data_type, is_nullable = 'YES' FROM information_schema.columns "
                       "ORDER BY table_name, ordinal_position").fetchall()
    out: dict[str, dict[str, tuple[str, bool]]] = {}
    for table, column, kind, nullable in rows:
        out.setdefault(table, {})[column] = (kind, nullable)
    return out


def _fields(record: type[BaseModel]) -> list[str]:
    return list(record.model_fields)


def _optional(annotation: object) -> bool:
    return isinstance(annotation, types.UnionType) and type(None) in typing.get_args(annotation)


def _check(table: dict[str, tuple[str, bool]], schema: pa.Schema, kind: str) -> None:
    """Wire columns = table columns (less the store's own), same order, matching types; a column the wire may not
    leave empty is NOT NULL in the table, except JSON/list columns the store has always allowed empty."""
    assert [c for c in table if c not in STORE_ONLY] == schema.names
    for f in schema:
        assert WIRE_OF_DDL[table[f.name][0]] == f.type, f"{kind}.{f.name}: {table[f.name][0]} vs {f.type}"
        if not table[f.name][1]:
            assert f.name in REQUIRED[kind], f"{kind}.{f.name} is NOT NULL in SQL but may be empty on the wire"


def test_verdict_record_wire_schema_and_table_agree(ddl: dict[str, dict[str, tuple[str, bool]]]) -> None:
    _check(ddl["verdicts"], VERDICT_SCHEMA, "verdicts")
    record = [f for f in _fields(VerdictRecord) if f not in ("heatmaps", "peak_boxes")]
    assert [n for n in VERDICT_SCHEMA.names if n != "scanner_id"] == record
    _check(ddl["heatmaps"], HEATMAP_SCHEMA, "heatmaps")
    assert set(StoredVerdict.__annotations__) == {*VERDICT_SCHEMA.names, "heatmaps", "peak_boxes"}


def test_scan_record_wire_schema_and_table_agree(ddl: dict[str, dict[str, tuple[str, bool]]]) -> None:
    _check(ddl["scans"], SCAN_SCHEMA, "scans")
    flat = [f for f in _fields(ScanRecord) if f != "stats"]
    flat[flat.index("declared_contents") + 1:flat.index("declared_contents") + 1] = _fields(ImageStats)
    assert flat == SCAN_SCHEMA.names
    hints = typing.get_type_hints(ScanRecord)
    required = [f for f in SCAN_SCHEMA.names if f in hints and not _optional(hints[f])]
    assert set(required) <= set(REQUIRED["scans"])  # what the record requires, the wire refuses to leave empty
    detail = set(typing.get_type_hints(ScanDetail))
    assert detail == {*SCAN_SCHEMA.names, "verdicts", "decisions", "labels", "current_labels", "claim", "image"}


def test_quarantine_record_wire_schema_and_table_agree(ddl: dict[str, dict[str, tuple[str, bool]]]) -> None:
    _check(ddl["quarantine"], QUARANTINE_SCHEMA, "quarantines")
    assert _fields(QuarantineRecord) == QUARANTINE_SCHEMA.names


def test_the_rows_get_scan_returns_are_the_tables_columns(ddl: dict[str, dict[str, tuple[str, bool]]]) -> None:
    assert list(StoredDecision.__annotations__) == list(ddl["decisions"])
    assert list(StoredLabel.__annotations__) == list(ddl["labels"])
    hints = typing.get_type_hints(StoredDecision)
    assert hints["decided_at"] is datetime and ddl["decisions"]["decided_at"][0] == "TIMESTAMP WITH TIME ZONE"
