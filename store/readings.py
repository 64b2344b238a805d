"""Readings domain: blind double reading of high-risk relabel items, and supervisor adjudication of disputes.

Rules. A relabel item is high risk when its champion verdict meets `labelling.double_read_*` (store/labels.py:
`high_risk`); it then takes two readings (`add_reading`) by two different people, neither shown the other's
(`reading_status` returns a reader's own reading only; `get_scan` and the relabel queue read labels, and a reading
is not a label). Two readings that agree append a `double_read` label, which becomes current; two that differ
leave the item `disputed` (view `double_reads`): it waits in the supervisors' `adjudication_queue` and the
training export leaves it out until a supervisor who gave neither reading `adjudicate`s it (an `adjudication`
label). Audit rows of readings carry no labels, so a supervisor who is also a reader cannot read the first label
in the audit log, and analysts' snapshots leave out first readings still awaiting their second (store/snapshot.py).
Nobody who decided the scan at triage (any row in `decisions`, a referral too) reads it: they were shown the
model's verdict and gave their own judgement already, so the two readings come from two other people.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import duckdb
import pandas as pd

from store.audit import audit_row
from store.fetch import first
from store.labels import high_risk, insert_label
from store.ops import StoreConfig, read, write
from xscreen.errors import ConflictError, NotFoundError, PermissionDenied
from xscreen.records import LabelRecord

AWAITING, AGREED, DISPUTED, ADJUDICATED = "awaiting second reading", "agreed", "disputed", "adjudicated"
UNREAD, SINGLE = "needs two readings", "single reading"  # no reading yet; not a double-read item
DECIDED = "decided by you at triage"  # this reader may not read it: out of their reading queue


def _readers(cur: duckdb.DuckDBPyConnection, scan_id: str) -> list[str]:
    return [r[0] for r in cur.execute("SELECT reader FROM readings WHERE scan_id = ? ORDER BY reading",
                                      [scan_id]).fetchall()]


def _check_reading(cur: duckdb.DuckDBPyConnection, scan_id: str, reader: str, cfg: StoreConfig) -> list[str]:
    """The readers so far; refuses a scan that is not high risk, a second reading by the same person, a third."""
    readers = _readers(cur, scan_id)
    risk = high_risk(cur, [scan_id], cfg)
    if scan_id not in risk:
        raise NotFoundError(f"scan {scan_id} has no champion verdict")
    if not readers and not risk[scan_id]:  # a started double reading finishes even if the rule changed since
        raise ConflictError(f"scan {scan_id} is not a high-risk item (labelling.double_read_*): label it, a single "
                            "reading is enough")
    if reader in readers:
        raise ConflictError(f"{reader} has already read scan {scan_id}: the second reading must be someone else's")
    decided = first(cur, "SELECT decision FROM decisions WHERE scan_id = ? AND officer = ? "
                         "ORDER BY decided_at DESC LIMIT 1", [scan_id, reader])
    if decided is not None:
        raise PermissionDenied(f"{reader} decided scan {scan_id} at triage ({decided[0]}), having seen the model's "
                               "verdict: its blind readings must come from two people who did not decide it")
    if len(readers) >= 2:
        raise ConflictError(f"scan {scan_id} has had its two readings")
    return readers


def _resent(cur: duckdb.DuckDBPyConnection, reading_id: str, scan_id: str, reader: str,
            labels: list[str]) -> str | None:
    """The item's status now when `reading_id` is already stored as this very reading (a re-sent request whose
    answer was lost); None when the id is new; ConflictError when the id names another reading."""
    row = first(cur, "SELECT scan_id, reader, labels FROM readings WHERE reading_id = ?", [reading_id])
    if row is None:
        return None
    if (row[0], row[1], sorted(row[2])) != (scan_id, reader, labels):
        raise ConflictError(f"reading id {reading_id} is already used by another reading (scan {row[0]}, "
                            f"reader {row[1]}): send a new id for a new reading")
    status = first(cur, "SELECT status FROM double_reads WHERE scan_id = ?", [scan_id])
    return str(status[0]) if status else AWAITING


@write(action="relabel", actor="reader")
def add_reading(cur: duckdb.DuckDBPyConnection, scan_id: str, labels: list[str], reader: str,
                note: str | None = None, *, reading_id: str | None = None, now: datetime, cfg: StoreConfig) -> str:
    """Record `reader`'s blind reading of a high-risk item (labels: class names, [] = benign, `threat` = class
    unknown). Returns the item's status: `awaiting second reading`, `agreed` (a `double_read` label is appended
    and becomes current) or `disputed` (it waits for a supervisor). ConflictError: not high risk, this reader
    already read it, or it has had two readings. `reading_id` (the caller's, one per reading it means to give)
    makes the call idempotent: the same reading sent again returns the item's status instead of "already read"."""
    mine = sorted(set(labels))
    if reading_id is not None and (status := _resent(cur, reading_id, scan_id, reader, mine)) is not None:
        return status
    first_reader = _check_reading(cur, scan_id, reader, cfg)
    cur.execute("INSERT INTO readings VALUES (?, ?, ?, ?, ?, ?, ?)",
                [reading_id or uuid.uuid4().hex, scan_id, len(first_reader) + 1, reader, mine, note, now])
    status = AWAITING
    if first_reader:
        row = first(cur, "SELECT labels FROM readings WHERE scan_id = ? AND reader = ?", [scan_id, first_reader[0]])
        status = AGREED if row is not None and sorted(row[0]) == mine else DISPUTED
    if status == AGREED:
        insert_label(cur, LabelRecord(label_id=f"{scan_id}-double-read", scan_id=scan_id, labels=mine,
                                      source="double_read", author=reader, created_at=now,
                                      note=f"agreed with {first_reader[0]}"))
    audit_row(cur, now, reader, "reading", scan_id, reading=len(first_reader) + 1, status=status)
    return status


STATUS_SQL = """
SELECT i.scan_id, coalesce(d.status, '') AS status, (d.reader_1 IS NOT NULL)::INT + (d.reader_2 IS NOT NULL)::INT
       AS readings, CASE WHEN d.reader_1 = $reader THEN d.labels_1 WHEN d.reader_2 = $reader THEN d.labels_2 END
       AS my_labels,
       EXISTS (SELECT 1 FROM decisions t WHERE t.scan_id = i.scan_id AND t.officer = $reader) AS decided
FROM (SELECT unnest($ids::VARCHAR[]) AS scan_id) i LEFT JOIN double_reads d USING (scan_id)
"""


@read(action="relabel", actor="reader")
def reading_status(cur: duckdb.DuckDBPyConnection, reader: str, scan_ids: list[str], *,
                   cfg: StoreConfig) -> pd.DataFrame:
    """Per scan in `scan_ids` (those without a champion verdict left out), what `reader` may know of its double
    reading: double_read (bool: high risk, or readings already started), readings (0-2), my_labels (the
    reader's own reading, None if none), status (`needs two readings`, `awaiting second reading`, `agreed`,
    `disputed`, `adjudicated`, `single reading` for other items, or `decided by you at triage` for a
    double-read item still open that `reader` may not read: keep it out of their reading queue). The other
    reader's labels are never returned: a person's session may ask only for their own."""
    risk = high_risk(cur, scan_ids, cfg)
    df = cur.execute(STATUS_SQL, {"ids": [i for i in scan_ids if i in risk], "reader": reader}).df()
    df.insert(1, "double_read", [risk[i] or n > 0 for i, n in zip(df["scan_id"], df["readings"], strict=True)])
    df["status"] = [s or (UNREAD if dr else SINGLE) for s, dr in zip(df["status"], df["double_read"], strict=True)]
    barred = df["decided"] & df["double_read"] & df["status"].isin([UNREAD, AWAITING]) & df["my_labels"].isna()
    df.loc[barred, "status"] = DECIDED
    df["readings"] = df["readings"].astype("int64")
    return df[["scan_id", "double_read", "readings", "my_labels", "status"]]


ADJUDICATION_SQL = """
SELECT d.scan_id, v.scanner_id, v.any_threat, v.top_class, d.reader_1, d.labels_1, d.note_1, d.read_at_1,
       d.reader_2, d.labels_2, d.note_2, d.read_at_2
FROM double_reads d
LEFT JOIN (SELECT * FROM champion_verdicts QUALIFY row_number() OVER (PARTITION BY scan_id ORDER BY scored_at DESC) = 1)
    v USING (scan_id)
WHERE d.status = 'disputed' ORDER BY d.read_at_2, d.scan_id LIMIT $limit
"""


@read(action="adjudicate")
def adjudication_queue(cur: duckdb.DuckDBPyConnection, limit: int = 100) -> pd.DataFrame:
    """Disputed double readings waiting for a supervisor, oldest dispute first, with both readings: scan_id,
    scanner_id, any_threat, top_class, reader_1, labels_1, note_1, read_at_1, reader_2, labels_2, note_2,
    read_at_2. Supervisors and admins only."""
    return cur.execute(ADJUDICATION_SQL, {"limit": int(limit)}).df()


@write(action="adjudicate", actor="supervisor")
def adjudicate(cur: duckdb.DuckDBPyConnection, scan_id: str, labels: list[str], supervisor: str,
               note: str | None = None, *, now: datetime) -> None:
    """Record the final label of a disputed double reading (an `adjudication` label, current from now on; the
    item leaves the queue and is exported for training again). ConflictError: the item is not disputed, or
    `supervisor` gave one of its readings (nobody settles their own dispute)."""
    row = first(cur, "SELECT status, reader_1, reader_2 FROM double_reads WHERE scan_id = ?", [scan_id])
    if row is None or row[0] != DISPUTED:
        raise ConflictError(f"scan {scan_id} has no disputed double reading to adjudicate "
                            f"({row[0] if row else 'no readings'})")
    if supervisor in (row[1], row[2]):
        raise PermissionDenied(f"{supervisor} read scan {scan_id}: another supervisor must adjudicate it")
    final = sorted(set(labels))
    insert_label(cur, LabelRecord(label_id=uuid.uuid4().hex, scan_id=scan_id, labels=final, source="adjudication",
                                  author=supervisor, created_at=now, note=note))
    audit_row(cur, now, supervisor, "adjudicate", scan_id, labels=final, readers=[row[1], row[2]])


@read(action="read_officer_analytics")
def double_read_pairs(cur: duckdb.DuckDBPyConnection, since: Any = None) -> pd.DataFrame:
    """Double readings completed (their second reading taken) at or after `since` (None: all), oldest first, for
    per-reader agreement (analytics.agreement): scan_id, reader_1, labels_1, reader_2, labels_2, status,
    adjudicated_labels (None unless a supervisor adjudicated), read_at_2. Supervisors and admins only."""
    return cur.execute("""
        SELECT scan_id, reader_1, labels_1, reader_2, labels_2, status, adjudicated_labels, read_at_2
        FROM double_reads WHERE reader_2 IS NOT NULL AND ($since::TIMESTAMPTZ IS NULL OR read_at_2 >= $since)
        ORDER BY read_at_2, scan_id""", {"since": since}).df()
