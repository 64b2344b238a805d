"""Officer TIP domain: canaries shown to officers as test items (threat image projection, as at airports), their
place in the queue, what the triage page shows of them, and the officers' TIP results.

A share of canaries (`monitoring.officer_tip_share`, default 0) is stored here with its projected image
(serving/canaries.py). Such an item waits in the officers' queue and opens on the triage page exactly as a real
flagged item does: the scanner, item, arrival time, declared contents and image size are its source scan's, the
risk and class scores the canary's, and nothing an officer can read says "canary". Its decision is a TIP outcome (`tip_outcomes`:
hit = anything but clearing it), never a decision or a label, so it feeds no label, no retraining and no realised
accuracy; only after deciding may the officer read what it was (`tip_reveal`). Supervisors read the outcomes
(`tip_results`) for the TIP hit rate per officer and class (analytics/officers.py).
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

import duckdb
import pandas as pd

from store.audit import audit_row, loads, to_json
from store.fetch import dicts, first, in_window
from store.ops import read, write
from xscreen.errors import ConflictError
from xscreen.records import DecisionRecord, OfficerTipRecord, ScanDetail, TipReveal

# Pending TIP items in queue_pending's shape, and TIP items in the scans' (received_at, item_id) shape: the queue
# (store/triage.py) reads both beside real mail.
# A TIP item waits once its source scan is stored (serving records canaries before the spool delivers the mail) and
# never when its source was audited (an officer must not meet an item and its TIP twin).
PENDING_TIPS_SQL = """SELECT t.tip_id AS scan_id, t.model_version, t.scanner_id, t.verdict, t.any_threat, t.top_class,
                             t.created_at AS scored_at
                      FROM officer_tips t ANTI JOIN tip_outcomes o USING (tip_id)
                      WHERE t.source_scan_id NOT IN (SELECT scan_id FROM audit_selections)
                        AND t.source_scan_id IN (SELECT scan_id FROM scans)"""
TIP_ITEMS_SQL = """SELECT t.tip_id AS scan_id, s.received_at, s.item_id
                   FROM officer_tips t JOIN scans s ON s.scan_id = t.source_scan_id"""


@write(process_only=True, weight=lambda kw: len(kw["tips"]))
def add_officer_tips(cur: duckdb.DuckDBPyConnection, tips: list[OfficerTipRecord]) -> int:
    """Store canaries as officer TIP items (serving); known tip_ids are skipped. Returns how many were new. Each
    waits in the queue once its source scan is stored, unless that scan was audited (PENDING_TIPS_SQL)."""
    n = 0
    for t in tips:
        if first(cur, "SELECT 1 FROM officer_tips WHERE tip_id = ?", [t.tip_id]):
            continue
        cur.execute("INSERT INTO officer_tips VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?::JSON, ?, ?, ?, ?, ?, ?::JSON, "
                    "?::JSON)",
                    [t.tip_id, t.canary_id, t.source_scan_id, t.scanner_id, t.class_name, t.article, t.model_version,
                     t.verdict, t.any_threat, to_json(t.scores), t.top_class, t.image_path, t.file_format,
                     t.created_at, t.heatmap_size, to_json(t.heatmaps), to_json(t.peak_boxes)])
        n += 1
    return n


def tip_row(cur: duckdb.DuckDBPyConnection, scan_id: str) -> dict[str, Any] | None:
    """The officer_tips row of an id shown in the queue, or None for a real scan."""
    cur.execute("SELECT * FROM officer_tips WHERE tip_id = ?", [scan_id])
    rows = dicts(cur)
    return rows[0] if rows else None


def tip_detail(cur: duckdb.DuckDBPyConnection, tip: dict[str, Any], scan_columns: str) -> ScanDetail:
    """A TIP item as `get_scan` returns a scan: the source scan's fields under the TIP's id, the canary's verdict,
    its image, no decisions or labels, and nothing that says canary."""
    cur.execute(f"SELECT {scan_columns} FROM scans WHERE scan_id = ?", [tip["source_scan_id"]])
    scan = dicts(cur)[0]
    source = first(cur, "SELECT embedding, thresholds FROM verdicts WHERE scan_id = ? ORDER BY role = 'champion' "
                        "DESC, model_version = ? DESC LIMIT 1", [tip["source_scan_id"], tip["model_version"]])
    tid = tip["tip_id"]
    # What real mail always shows must hold here too, or an officer's session could tell a test from mail: the
    # scan id is the first 16 digits of the content hash (serving/scanfile.py), the item arrived when its source
    # did, latency_ms is received_at -> scored_at, and the verdict carries the operating point in force.
    digest = hashlib.sha256(tid.encode()).hexdigest()
    latency = (tip["created_at"] - scan["received_at"]).total_seconds() * 1000.0
    scan.update(scan_id=tid, sha256=tid + digest[len(tid):], source_path=tip["image_path"],
                file_format=tip["file_format"], is_canary=False, canary_labels=None,
                declared_contents=loads(scan["declared_contents"]))
    scan["verdicts"] = [{
        "scan_id": tid, "model_version": tip["model_version"], "role": "champion", "scanner_id": tip["scanner_id"],
        "verdict": tip["verdict"], "any_threat": tip["any_threat"], "scores": loads(tip["scores"]) or {},
        "top_class": tip["top_class"], "thresholds": loads(source[1]) if source else {},
        "embedding": list((source or [None])[0] or []), "heatmaps": loads(tip["heatmaps"]) or {},
        "heatmap_size": int(tip["heatmap_size"] or 0), "peak_boxes": loads(tip["peak_boxes"]) or {},
        "scored_at": tip["created_at"], "latency_ms": max(latency, 0.0)}]
    scan["decisions"], scan["labels"], scan["current_labels"] = [], [], None
    cur.execute("SELECT officer, expires_at FROM claims WHERE scan_id = ?", [tid])
    claims = dicts(cur)
    scan["claim"] = claims[0] if claims else None
    scan["image"] = {"state": "kept", "path": tip["image_path"], "since": tip["created_at"], "reason": None}
    return scan  # type: ignore[return-value]


def tip_decided(cur: duckdb.DuckDBPyConnection, tip_id: str) -> tuple[str, str] | None:
    """(officer, decision) of a TIP item already decided, else None."""
    row = first(cur, "SELECT officer, decision FROM tip_outcomes WHERE tip_id = ?", [tip_id])
    return (row[0], row[1]) if row else None


def record_tip_outcome(cur: duckdb.DuckDBPyConnection, d: DecisionRecord, now: datetime) -> None:
    """An officer's decision on a TIP item: a TIP outcome (hit unless cleared) and an audit row; no decision, no
    label. Any decision ends the test, a referral included (the officer did not let it pass)."""
    decided = tip_decided(cur, d.scan_id)
    if decided:
        raise ConflictError(f"scan {d.scan_id} was already decided ({decided[1]}) by {decided[0]}")
    cur.execute("INSERT INTO tip_outcomes VALUES (?, ?, ?, ?, ?, ?, ?)",
                [d.scan_id, d.decision_id, d.officer, d.decision, d.threat_class, d.decision != "cleared",
                 d.decided_at])
    cur.execute("DELETE FROM claims WHERE scan_id = ?", [d.scan_id])
    audit_row(cur, now, d.officer, "tip_decision", d.scan_id, decision=d.decision, decision_id=d.decision_id)


@read(action="decide", actor="officer")
def tip_reveal(cur: duckdb.DuckDBPyConnection, scan_id: str, officer: str) -> TipReveal | None:
    """After `officer` decided `scan_id`: what the TIP item was (None for a real item, or before they decided it,
    so the question cannot tell a test from mail)."""
    row = first(cur, """SELECT o.tip_id, o.officer, t.class_name, o.decision, o.hit, o.decided_at
                        FROM tip_outcomes o JOIN officer_tips t USING (tip_id)
                        WHERE o.tip_id = ? AND o.officer = ?""", [scan_id, officer])
    if row is None:
        return None
    return TipReveal(tip_id=row[0], officer=row[1], class_name=row[2], decision=row[3], hit=row[4],
                     decided_at=row[5])


@read(action="read_officer_analytics")
def tip_results(cur: duckdb.DuckDBPyConnection, start: Any = None, end: Any = None) -> pd.DataFrame:
    """Officer TIP outcomes decided in [start, end) (default: the last 7 days), oldest first: tip_id, officer,
    scanner_id, class_name, decision, hit, decided_at. Supervisors only."""
    return cur.execute(f"""SELECT o.tip_id, o.officer, t.scanner_id, t.class_name, o.decision, o.hit, o.decided_at
                           FROM tip_outcomes o JOIN officer_tips t USING (tip_id)
                           WHERE {in_window("o.decided_at")} ORDER BY o.decided_at, o.tip_id""",
                       {"start": start, "end": end}).df()

