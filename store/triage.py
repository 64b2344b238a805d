"""Triage domain: the officers' queue, claims, decisions, and the similar items shown beside a scan.

Rules. The queue is champion `inspect`/`uncertain` verdicts without a final decision (the rollup `queue_pending`,
kept by the writer), minus items another officer holds an unexpired claim on (`store.claim_ttl_s`) and items this
officer referred, highest `any_threat` first. A final decision (cleared/confirmed/seized) on an item already
decided, or held by another officer, is a ConflictError naming that officer. `refer` is not final: the item stays
queued, marked referred, for someone else. A final decision writes, in one transaction, the decision, the label it
implies and an audit row.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

import duckdb
import pandas as pd

from store import tips
from store.audit import audit_row
from store.fetch import dicts, first, in_window
from store.labels import insert_label
from store.ops import StoreConfig, read, write
from xscreen.errors import ConflictError, NotFoundError, XscreenError
from xscreen.records import (
    THREAT_UNKNOWN_CLASS,
    DecisionRecord,
    LabelRecord,
    SeizureRecord,
    seizure_box_problem,
)

FINAL_DECISIONS = ("cleared", "confirmed", "seized")

# Top-N over queue_pending and the officer TIP items waiting (store/tips.py: they must look like mail), minus other officers' live claims and minus items this officer referred (a referral
# asks someone else for a second opinion, so it must not come straight back to the referrer); only the rows that
# survive the LIMIT are joined to scans. `waiting` counts every item that passed the filters, before the LIMIT
# (the true backlog, not the page).
QUEUE_SQL = f"""
WITH refs AS (SELECT scan_id, string_agg(DISTINCT officer, ', ' ORDER BY officer) AS referred_by,
                     bool_or(officer = $officer) AS mine
              FROM decisions WHERE decision = 'refer' GROUP BY scan_id),
top AS (
    SELECT p.scan_id, p.scanner_id, p.model_version, p.verdict, p.any_threat, p.top_class, p.scored_at,
           count(*) OVER () AS waiting
    FROM (SELECT scan_id, model_version, scanner_id, verdict, any_threat, top_class, scored_at FROM queue_pending
          UNION ALL {tips.PENDING_TIPS_SQL}) p
    WHERE ($scanner::VARCHAR IS NULL OR p.scanner_id = $scanner::VARCHAR)
      AND p.scan_id NOT IN (SELECT scan_id FROM claims WHERE expires_at > $now AND officer <> $officer)
      AND p.scan_id NOT IN (SELECT scan_id FROM refs WHERE mine)
    ORDER BY p.any_threat DESC, p.scored_at
    LIMIT $limit)
SELECT top.*, s.received_at, s.item_id, c.officer AS claimed_by, c.expires_at AS claim_expires_at,
       refs.scan_id IS NOT NULL AS referred, refs.referred_by
FROM top
JOIN (SELECT scan_id, received_at, item_id FROM scans UNION ALL {tips.TIP_ITEMS_SQL}) s USING (scan_id)
LEFT JOIN (SELECT * FROM claims WHERE expires_at > $now) c USING (scan_id)
LEFT JOIN refs USING (scan_id)
ORDER BY top.any_threat DESC, top.scored_at
"""


@read(action="decide", actor="officer")
def queue(cur: duckdb.DuckDBPyConnection, officer: str, limit: int = 50, scanner_id: str | None = None, *,
          now: datetime) -> pd.DataFrame:
    """Items waiting for an officer, highest risk first: champion `inspect`/`uncertain` verdicts without a final
    decision, not claimed by another officer (unexpired) and not referred by this officer. `claimed_by` is this
    officer or empty; `referred_by` names who referred the item (empty if nobody); `waiting` (on every row) is
    how many items pass these filters in all, however many `limit` returns."""
    params = {"now": now, "officer": officer, "limit": int(limit), "scanner": scanner_id}
    return cur.execute(QUEUE_SQL, params).df()


def _final_decision(cur: duckdb.DuckDBPyConnection, scan_id: str) -> tuple[str, str] | None:
    if (decided := tips.tip_decided(cur, scan_id)) is not None:
        return decided
    row = first(cur, "SELECT officer, decision FROM decisions WHERE scan_id = ? AND decision IN "
                     "('cleared', 'confirmed', 'seized') ORDER BY decided_at LIMIT 1", [scan_id])
    return (row[0], row[1]) if row else None


def _active_claim(cur: duckdb.DuckDBPyConnection, scan_id: str, now: datetime) -> str | None:
    row = first(cur, "SELECT officer FROM claims WHERE scan_id = ? AND expires_at > ? ORDER BY claimed_at DESC "
                     "LIMIT 1", [scan_id, now])
    return row[0] if row else None


def _champion_version(cur: duckdb.DuckDBPyConnection, scan_id: str) -> str:
    tip = tips.tip_row(cur, scan_id)
    if tip is not None:
        return str(tip["model_version"])
    row = first(cur, "SELECT model_version FROM verdicts WHERE scan_id = ? ORDER BY role = 'champion' DESC, "
                     "scored_at DESC LIMIT 1", [scan_id])
    if row is None:
        raise NotFoundError(f"scan {scan_id} has no verdict")
    return str(row[0])


@write(action="decide", actor="officer")
def claim(cur: duckdb.DuckDBPyConnection, scan_id: str, officer: str, *, now: datetime,
          cfg: StoreConfig) -> datetime:
    """Officer starts working an item; returns the claim's expiry. ConflictError names whoever holds it."""
    _champion_version(cur, scan_id)
    decided = _final_decision(cur, scan_id)
    if decided:
        raise ConflictError(f"scan {scan_id} was already decided ({decided[1]}) by {decided[0]}")
    holder = _active_claim(cur, scan_id, now)
    if holder and holder != officer:
        raise ConflictError(f"scan {scan_id} is being worked by {holder}")
    expires = now + timedelta(seconds=cfg.claim_ttl_s)
    cur.execute("DELETE FROM claims WHERE scan_id = ?", [scan_id])
    cur.execute("INSERT INTO claims VALUES (?, ?, ?, ?)", [scan_id, officer, now, expires])
    return expires


@write(action="decide", actor="officer")
def release(cur: duckdb.DuckDBPyConnection, scan_id: str, officer: str) -> None:
    """Drop the officer's own claim (someone else's claim is left alone)."""
    cur.execute("DELETE FROM claims WHERE scan_id = ? AND officer = ?", [scan_id, officer])


def decision_labels(d: DecisionRecord) -> list[str] | None:
    """The label a decision implies: cleared -> benign, confirmed/seized -> its class or 'threat'; refer -> none."""
    if d.decision == "cleared":
        return []
    if d.decision in ("confirmed", "seized"):
        return [d.threat_class or THREAT_UNKNOWN_CLASS]
    return None


def _decision_officer(kwargs: Mapping[str, Any]) -> list[tuple[str, Any]]:
    decision = kwargs.get("decision")
    return [("the decision's officer", decision.officer)] if isinstance(decision, DecisionRecord) else []


@write(action="decide", people=_decision_officer)
def record_decision(cur: duckdb.DuckDBPyConnection, decision: DecisionRecord, *, now: datetime) -> None:
    """Store a decision + the label it implies + an audit row. Re-sending the same decision_id is a no-op.

    `refer` asks for a second opinion: it is not final, releases the claim and leaves the item in the queue
    (marked referred). A final decision on an item someone already decided is a ConflictError, as is deciding
    an item another officer holds an unexpired claim on.
    """
    d = decision
    if first(cur, "SELECT 1 FROM decisions WHERE decision_id = $id UNION ALL SELECT 1 FROM tip_outcomes "
                  "WHERE decision_id = $id", {"id": d.decision_id}):
        return
    version = _champion_version(cur, d.scan_id)
    decided = _final_decision(cur, d.scan_id)
    if decided and d.decision in FINAL_DECISIONS:
        raise ConflictError(f"scan {d.scan_id} was already decided ({decided[1]}) by {decided[0]}")
    holder = _active_claim(cur, d.scan_id, now)
    if holder and holder != d.officer:
        raise ConflictError(f"scan {d.scan_id} is being worked by {holder}")
    if tips.tip_row(cur, d.scan_id) is not None:  # a TIP test: its outcome, never a decision or a label
        tips.record_tip_outcome(cur, d, now)
        return
    cur.execute("INSERT INTO decisions VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [d.decision_id, d.scan_id, d.officer, d.decision, d.threat_class, d.note, d.decided_at, version])
    if d.decision in FINAL_DECISIONS:
        cur.execute("DELETE FROM queue_pending WHERE scan_id = ?", [d.scan_id])
    labels = decision_labels(d)
    if labels is not None:
        insert_label(cur, LabelRecord(label_id=f"{d.decision_id}-label", scan_id=d.scan_id, labels=labels,
                                      source="officer", author=d.officer, created_at=d.decided_at, note=d.note))
    cur.execute("DELETE FROM claims WHERE scan_id = ?", [d.scan_id])
    audit_row(cur, now, d.officer, "decision", d.scan_id, decision=d.decision, threat_class=d.threat_class,
              decision_id=d.decision_id, model_version=version)


# ------------------------------------------------------------------------------------------------- seizures

SEIZURE_ID = re.compile(r"[0-9a-f]{8,64}")  # also the signature's file name: nothing else may reach a path


def _bad_seizure(message: str) -> XscreenError:
    return XscreenError(message, title="Cannot record the seized item's region")


def _seizure_decision(cur: duckdb.DuckDBPyConnection, decision_id: str, scan_id: str) -> None:
    row = first(cur, "SELECT scan_id, decision FROM decisions WHERE decision_id = ?", [decision_id])
    if row is None:
        raise NotFoundError(f"decision {decision_id} does not exist: record the decision before its seizure region")
    if row[0] != scan_id or row[1] not in ("confirmed", "seized"):
        raise _bad_seizure(f"decision {decision_id} is a {row[1]!r} decision on scan {row[0]}, not a confirmed or "
                           f"seized threat on scan {scan_id}")


def _seizure_scan(cur: duckdb.DuckDBPyConnection, scan_id: str, box: list[int]) -> tuple[str, bool]:
    """The scan's scanner and whether it kept raw dual-energy data; errors for a box off the image or no image."""
    row = first(cur, "SELECT s.scanner_id, s.dual_energy, s.width, s.height, i.state, i.since FROM scans s "
                     "JOIN scan_images i USING (scan_id) WHERE scan_id = ?", [scan_id])
    if row is None:
        raise NotFoundError(f"scan {scan_id} does not exist")
    scanner_id, dual, width, height, state, since = row
    if state == "expired":
        raise _bad_seizure(f"the image of scan {scan_id} expired under retention on {since:%Y-%m-%d}: there are no "
                           "pixels left to cut a signature from")
    if (problem := seizure_box_problem(box, width, height)) is not None:
        raise _bad_seizure(problem)
    return str(scanner_id), bool(dual)


@write(action="decide", actor="officer")
def record_seizure(cur: duckdb.DuckDBPyConnection, seizure_id: str, scan_id: str, decision_id: str,
                   class_name: str, box: list[int], officer: str, *, now: datetime,
                   cfg: StoreConfig) -> SeizureRecord:
    """Record the region (x0, y0, x1, y1: image pixels, end-exclusive) an officer marked on a confirmed or seized
    threat, with its provenance and an audit row; the signature itself is cut by xray (xray/seizures.py) into
    `<paths.library>/seizures/<seizure_id>.npz`. Re-sending the same seizure_id returns the stored record.
    Errors name what was wrong: an id that is not 8-64 lower-case hex digits, a class that is not a threat class,
    no such confirmed/seized decision on this scan, a box outside the image or under 3 pixels a side, an
    expired image."""
    if not SEIZURE_ID.fullmatch(seizure_id):
        raise _bad_seizure(f"seizure id {seizure_id!r} must be 8-64 lower-case hex digits")
    if (known := list_seizures(cur, seizure_id=seizure_id)):
        return known[0]
    if class_name not in cfg.threat_classes:
        raise _bad_seizure(f"class {class_name!r} is not a threat class; known: {', '.join(cfg.threat_classes)}")
    _seizure_decision(cur, decision_id, scan_id)
    scanner_id, dual = _seizure_scan(cur, scan_id, box)
    rec = SeizureRecord(seizure_id=seizure_id, scan_id=scan_id, scanner_id=scanner_id, decision_id=decision_id,
                        class_name=class_name, box=[int(v) for v in box],
                        kind="attenuation" if dual else "transmission", officer=officer, created_at=now)
    cur.execute("INSERT INTO seizures VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [rec.seizure_id, rec.scan_id, rec.scanner_id, rec.decision_id, rec.class_name, *rec.box, rec.kind,
                 rec.officer, rec.created_at])
    audit_row(cur, now, officer, "seizure_region", scan_id, seizure_id=seizure_id, class_name=class_name,
              box=rec.box, decision_id=decision_id, kind=rec.kind)
    return rec


@read()
def list_seizures(cur: duckdb.DuckDBPyConnection, scanner_id: str | None = None,
                  seizure_id: str | None = None) -> list[SeizureRecord]:
    """Recorded seizure regions, oldest first, optionally of one scanner (or the one with `seizure_id`)."""
    cur.execute("SELECT * FROM seizures WHERE ($scanner::VARCHAR IS NULL OR scanner_id = $scanner::VARCHAR) "
                "AND ($id::VARCHAR IS NULL OR seizure_id = $id::VARCHAR) ORDER BY created_at, seizure_id",
                {"scanner": scanner_id, "id": seizure_id})
    return [SeizureRecord(**{k: v for k, v in r.items() if k not in ("x0", "y0", "x1", "y1")},
                          box=[r["x0"], r["y0"], r["x1"], r["y1"]]) for r in dicts(cur)]


# Scans with a known outcome (any decision, refer included, or any label): a few thousand at most, while verdicts
# grows by the million. Fetching their ids first and handing them to SIMILAR_SQL as a constant list lets DuckDB
# filter the verdicts scan on scan_id (bloom filter of the ids) before it reads any embedding; with the ids as a
# sub-query it read the embedding of every champion verdict. `cand` is MATERIALIZED, and filtered on role only
# after, because that plan measured ~20 % faster than pushing role into the same scan. 1M verdicts, in-process:
# ~570 ms before, ~80-100 ms after (docs/BENCHMARKS.md, App). Two statements: a decision committed between them may
# be missed by this one call.
KNOWN_SQL = "SELECT scan_id FROM decisions UNION SELECT scan_id FROM labels"

SIMILAR_SQL = """
WITH me AS (SELECT embedding FROM verdicts WHERE scan_id = $scan_id ORDER BY role = 'champion' DESC LIMIT 1),
cand AS MATERIALIZED (SELECT scan_id, role, verdict, any_threat, top_class, embedding FROM verdicts
                      WHERE scan_id IN (SELECT unnest($known::VARCHAR[])))
SELECT v.scan_id, list_cosine_similarity(v.embedding, me.embedding) AS similarity, v.verdict, v.any_threat,
       v.top_class, fd.decision, cl.labels AS current_labels
FROM cand v CROSS JOIN me
LEFT JOIN final_decisions fd ON fd.scan_id = v.scan_id
LEFT JOIN current_labels cl ON cl.scan_id = v.scan_id
WHERE v.role = 'champion' AND v.scan_id <> $scan_id AND len(v.embedding) = len(me.embedding)
ORDER BY similarity DESC
LIMIT $k
"""


@read()
def similar_items(cur: duckdb.DuckDBPyConnection, scan_id: str, k: int = 8) -> pd.DataFrame:
    """Nearest champion verdicts by cosine similarity of embeddings, among items with a known outcome."""
    tip = tips.tip_row(cur, scan_id)
    scan_id = tip["source_scan_id"] if tip else scan_id  # a TIP item's neighbours are its source scan's
    if not first(cur, "SELECT 1 FROM verdicts WHERE scan_id = ?", [scan_id]):
        raise NotFoundError(f"scan {scan_id} has no verdict")
    known = [r[0] for r in cur.execute(KNOWN_SQL).fetchall()]
    return cur.execute(SIMILAR_SQL, {"scan_id": scan_id, "k": int(k), "known": known}).df()


# One row per decision (refer included: it is work too) with the verdict it answered and, where a supervisor
# adjudicated the item, the adjudicated outcome (the newest adjudication label).
OFFICER_DECISIONS_SQL = f"""
WITH adj AS (SELECT * EXCLUDE (rn) FROM (
                 SELECT scan_id, labels, row_number() OVER (PARTITION BY scan_id ORDER BY created_at DESC,
                                                            label_id DESC) AS rn
                 FROM labels WHERE source = 'adjudication') WHERE rn = 1)
SELECT d.decision_id, d.scan_id, d.officer, d.decision, d.threat_class, d.decided_at, v.scanner_id, v.scored_at,
       v.verdict, v.any_threat, a.scan_id IS NOT NULL AS audited,
       CASE WHEN adj.scan_id IS NULL THEN NULL ELSE len(adj.labels) > 0 END AS adjudicated_threat
FROM decisions d
JOIN verdicts v ON v.scan_id = d.scan_id AND v.model_version = d.model_version
LEFT JOIN audit_selections a ON a.scan_id = d.scan_id
LEFT JOIN adj ON adj.scan_id = d.scan_id
WHERE {in_window("d.decided_at")} AND ($officer::VARCHAR IS NULL OR d.officer = $officer::VARCHAR)
ORDER BY d.decided_at, d.decision_id
"""


@read(action="read_officer_analytics")
def officer_decisions(cur: duckdb.DuckDBPyConnection, start: Any = None, end: Any = None,
                      officer: str | None = None) -> pd.DataFrame:
    """Decisions taken in [start, end) (default: the last 7 days), oldest first, for officer analytics
    (analytics/officers.py): decision_id, scan_id, officer, decision, threat_class, decided_at, scanner_id,
    scored_at, verdict, any_threat, audited, adjudicated_threat (None where nobody adjudicated). Supervisors only."""
    return cur.execute(OFFICER_DECISIONS_SQL, {"start": start, "end": end, "officer": officer}).df()
