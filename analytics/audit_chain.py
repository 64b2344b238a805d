"""The audit log as a hash chain: each row carries `seq`, `prev_hash` and `row_hash` = sha256 of its canonical
encoding (which includes `prev_hash`), so changing, removing or inserting any row breaks every later link.

`audit_head` holds the last row's seq and hash, updated in the same transaction as the row: it is how the
writer finds the previous hash without scanning the log, and how `verify` notices a truncated tail. Someone
who can write the database file could rewrite the whole chain and the head together; `xscreen audit verify`
prints the head so it can be recorded elsewhere and checked later with `--anchor SEQ:HASH`.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

import duckdb
import pyarrow as pa
from pydantic import BaseModel, ConfigDict

from analytics.fetch import first
from xscreen.errors import XscreenError

GENESIS = "0" * 64  # prev_hash of the first row
CHUNK_ROWS = 50_000  # rows hashed per fetched batch when verifying (memory stays bounded)


class ChainReport(BaseModel):
    """The outcome of checking the chain: `ok`, rows checked, the first broken row (seq, audit_id, why), head."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    ok: bool
    rows: int
    first_bad_seq: int | None = None
    first_bad_audit_id: str | None = None
    reason: str | None = None
    head_seq: int = 0
    head_hash: str = GENESIS

    def summary(self) -> str:
        if self.ok:
            return f"audit log intact: {self.rows} rows; head {self.head_seq}:{self.head_hash}"
        return f"audit log broken at row {self.first_bad_seq} (audit_id {self.first_bad_audit_id}): {self.reason}"


def parse_anchor(text: str) -> tuple[int, str]:
    """"SEQ:HASH" (as `xscreen audit verify` prints the head) -> (seq, hash); XscreenError naming the format."""
    seq, _, digest = text.partition(":")
    if not seq.isdigit() or len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
        raise XscreenError(f"anchor {text[:80]!r} must be SEQ:HASH (a row number and 64 hex digits), as "
                           "`xscreen audit verify` prints the head", title="Bad anchor")
    return int(seq), digest


def _time(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def row_hash(seq: int, audit_id: str, logged_at: datetime, actor: str, action: str, target: str | None,
             details: Any, prev_hash: str) -> str:
    """sha256 (hex) of the row's canonical JSON: fixed keys, sorted, compact, times in UTC to the microsecond,
    `details` as parsed JSON (so its stored spelling does not matter). Never change this: stored hashes use it."""
    canonical = json.dumps({"seq": seq, "audit_id": audit_id, "logged_at": _time(logged_at), "actor": actor,
                            "action": action, "target": target, "details": details, "prev_hash": prev_hash},
                           sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _details(stored: str | None) -> Any:
    return None if stored is None else json.loads(stored)


# ---- writing (on the writer's cursor, inside its transaction) -----------------------------------------------

def append(cur: duckdb.DuckDBPyConnection, audit_id: str, logged_at: datetime, actor: str, action: str,
           target: str | None, details_json: str | None) -> None:
    """Append one row to the chain and move the head, in the caller's transaction."""
    head = first(cur, "SELECT seq, row_hash FROM audit_head")
    seq, prev = (int(head[0]) + 1, str(head[1])) if head else (1, GENESIS)
    digest = row_hash(seq, audit_id, logged_at, actor, action, target, _details(details_json), prev)
    cur.execute("INSERT INTO audit_log (audit_id, logged_at, actor, action, target, details, seq, prev_hash, "
                "row_hash) VALUES (?, ?, ?, ?, ?, ?::JSON, ?, ?, ?)",
                [audit_id, logged_at, actor, action, target, details_json, seq, prev, digest])
    cur.execute("INSERT OR REPLACE INTO audit_head VALUES (1, ?, ?)", [seq, digest])


def chain_existing(con: duckdb.DuckDBPyConnection) -> int:
    """Migration 7: give every row already in the log its place in a new chain, in the order written (time,
    then DuckDB's row order). Returns how many rows were chained."""
    rows = con.execute("SELECT rowid, audit_id, logged_at, actor, action, target, details FROM audit_log "
                       "ORDER BY logged_at, rowid").fetchall()
    prev, rids, seqs, prevs, hashes = GENESIS, [], [], [], []
    for seq, (rid, audit_id, logged_at, actor, action, target, details) in enumerate(rows, start=1):
        digest = row_hash(seq, audit_id, logged_at, actor, action, target, _details(details), prev)
        rids.append(rid)
        seqs.append(seq)
        prevs.append(prev)
        hashes.append(digest)
        prev = digest
    if rows:
        con.register("_chain", pa.table({"rid": pa.array(rids, pa.int64()), "seq": pa.array(seqs, pa.int64()),
                                         "prev": pa.array(prevs, pa.string()), "h": pa.array(hashes, pa.string())}))
        try:
            con.execute("UPDATE audit_log SET seq = c.seq, prev_hash = c.prev, row_hash = c.h FROM _chain c "
                        "WHERE audit_log.rowid = c.rid")
        finally:
            con.unregister("_chain")
        con.execute("INSERT INTO audit_head VALUES (1, ?, ?)", [len(rows), prev])
    return len(rows)


# ---- checking ---------------------------------------------------------------------------------------------------

def _broken(rows: int, seq: int | None, audit_id: str | None, reason: str, head: tuple[int, str]) -> ChainReport:
    return ChainReport(ok=False, rows=rows, first_bad_seq=seq, first_bad_audit_id=audit_id, reason=reason,
                       head_seq=head[0], head_hash=head[1])


def _check_row(row: dict[str, Any], expected_seq: int, prev: str) -> str | None:
    """Why this row breaks the chain, or None."""
    if row["seq"] is None or row["row_hash"] is None or row["prev_hash"] is None:
        return "the row has no place in the chain (inserted around the store)"
    if row["seq"] != expected_seq:
        return f"expected row {expected_seq} here: rows {expected_seq}..{row['seq'] - 1} were removed" \
            if row["seq"] > expected_seq else "a row with this number appears twice (inserted or copied)"
    if row["prev_hash"] != prev:
        return "it does not follow the row before it (a row before it was changed, removed or inserted)"
    digest = row_hash(row["seq"], row["audit_id"], row["logged_at"], row["actor"], row["action"], row["target"],
                      _details(row["details"]), row["prev_hash"])
    if digest != row["row_hash"]:
        return "its contents changed after it was written (hash mismatch)"
    return None


def verify(cur: duckdb.DuckDBPyConnection, anchor: tuple[int, str] | None = None) -> ChainReport:
    """Check every row in order, then that the head matches the last row (and `anchor`, a head recorded
    earlier, is still in the chain). The first broken row is reported."""
    found = first(cur, "SELECT seq, row_hash FROM audit_head")
    head = (int(found[0]), str(found[1])) if found else (0, GENESIS)
    reader: pa.RecordBatchReader = cur.sql(
        "SELECT seq, audit_id, logged_at, actor, action, target, details, prev_hash, row_hash FROM audit_log "
        "ORDER BY seq NULLS FIRST, logged_at").to_arrow_reader(CHUNK_ROWS)
    rows, prev, anchored = 0, GENESIS, anchor is None
    for batch in reader:
        for row in batch.to_pylist():
            reason = _check_row(row, rows + 1, prev)
            if reason is not None:
                return _broken(rows, row["seq"], row["audit_id"], reason, head)
            rows, prev = rows + 1, row["row_hash"]
            anchored = anchored or (anchor == (rows, prev))
    if (rows, prev) != head:
        return _broken(rows, rows + 1, None, f"the head says {head[0]} rows but the chain has {rows}: rows at "
                       "the end were removed, or the head was changed", head)
    if not anchored:
        assert anchor is not None
        return _broken(rows, anchor[0], None, f"the recorded head {anchor[0]}:{anchor[1][:16]}... is not in the "
                       "chain: the log was rewritten", head)
    return ChainReport(ok=True, rows=rows, head_seq=head[0], head_hash=head[1])
