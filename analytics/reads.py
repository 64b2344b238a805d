"""The store's read operations: plain functions of a DuckDB cursor, so a notebook can call them on a snapshot."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import duckdb
import pandas as pd
import pyarrow as pa

from analytics.fetch import first
from analytics.records import AlertRecord, AlertStatus, AuditRecord, ModelRecord, UserRecord
from xscreen.errors import NotFoundError

_MODEL_JSON = ("architecture", "metrics", "thresholds", "calibration")


def _dicts(cur: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    names = [d[0] for d in cur.description or []]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def _loads(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def known_hashes(cur: duckdb.DuckDBPyConnection, hashes: list[str]) -> set[str]:
    """Which sha256 values are already stored (serving skips re-delivered files)."""
    if not hashes:
        return set()
    cur.register("_hashes", pa.table({"h": pa.array(hashes, type=pa.string())}))
    try:
        return {r[0] for r in cur.execute("SELECT sha256 FROM scans WHERE sha256 IN (SELECT h FROM _hashes)").fetchall()}
    finally:
        cur.unregister("_hashes")


def get_scan(cur: duckdb.DuckDBPyConnection, scan_id: str) -> dict[str, Any]:
    """The scan with its verdicts (each with heatmaps), decisions, labels (newest first) and current label."""
    cur.execute("SELECT * FROM scans WHERE scan_id = ?", [scan_id])
    rows = _dicts(cur)
    if not rows:
        raise NotFoundError(f"scan {scan_id} does not exist")
    scan = rows[0]
    scan["declared_contents"] = _loads(scan["declared_contents"])
    cur.execute("SELECT * FROM verdicts WHERE scan_id = ? ORDER BY role = 'champion' DESC, scored_at", [scan_id])
    verdicts = _dicts(cur)
    cur.execute("SELECT * FROM heatmaps WHERE scan_id = ?", [scan_id])
    heatmaps = _dicts(cur)
    for v in verdicts:
        v["thresholds"] = _loads(v["thresholds"])
        v["embedding"] = list(v["embedding"] or [])
        mine = [h for h in heatmaps if h["model_version"] == v["model_version"]]
        v["heatmaps"] = {h["class_name"]: h["grid"] for h in mine if h["grid"] is not None}
        v["peak_boxes"] = {h["class_name"]: h["peak_box"] for h in mine if h["peak_box"] is not None}
    scan["verdicts"] = verdicts
    cur.execute("SELECT * FROM decisions WHERE scan_id = ? ORDER BY decided_at", [scan_id])
    scan["decisions"] = _dicts(cur)
    cur.execute("SELECT * FROM labels WHERE scan_id = ? ORDER BY created_at DESC, label_id DESC", [scan_id])
    scan["labels"] = _dicts(cur)
    scan["current_labels"] = scan["labels"][0]["labels"] if scan["labels"] else None
    cur.execute("SELECT officer, expires_at FROM claims WHERE scan_id = ?", [scan_id])
    claims = _dicts(cur)
    scan["claim"] = claims[0] if claims else None
    return scan


# Top-N over queue_pending (champion inspect/uncertain verdicts without a final decision, kept by the writer), minus
# other officers' live claims and minus items this officer referred (a referral asks someone else for a second
# opinion, so it must not come straight back to the referrer); only the rows that survive the LIMIT are joined to
# scans. `waiting` counts every item that passed the filters, before the LIMIT (the true backlog, not the page).
QUEUE_SQL = """
WITH refs AS (SELECT scan_id, string_agg(DISTINCT officer, ', ' ORDER BY officer) AS referred_by,
                     bool_or(officer = $officer) AS mine
              FROM decisions WHERE decision = 'refer' GROUP BY scan_id),
top AS (
    SELECT p.scan_id, p.scanner_id, p.model_version, p.verdict, p.any_threat, p.top_class, p.scored_at,
           count(*) OVER () AS waiting
    FROM queue_pending p
    WHERE ($scanner::VARCHAR IS NULL OR p.scanner_id = $scanner::VARCHAR)
      AND p.scan_id NOT IN (SELECT scan_id FROM claims WHERE expires_at > $now AND officer <> $officer)
      AND p.scan_id NOT IN (SELECT scan_id FROM refs WHERE mine)
    ORDER BY p.any_threat DESC, p.scored_at
    LIMIT $limit)
SELECT top.*, s.received_at, s.item_id, c.officer AS claimed_by, c.expires_at AS claim_expires_at,
       refs.scan_id IS NOT NULL AS referred, refs.referred_by
FROM top
JOIN scans s USING (scan_id)
LEFT JOIN (SELECT * FROM claims WHERE expires_at > $now) c USING (scan_id)
LEFT JOIN refs USING (scan_id)
ORDER BY top.any_threat DESC, top.scored_at
"""


def queue(cur: duckdb.DuckDBPyConnection, officer: str, limit: int, scanner_id: str | None,
          now: datetime) -> pd.DataFrame:
    """Items waiting for an officer, highest risk first: champion `inspect`/`uncertain` verdicts without a final
    decision, not claimed by another officer (unexpired) and not referred by this officer. `claimed_by` is this
    officer or empty; `referred_by` names who referred the item (empty if nobody); `waiting` (on every row) is
    how many items pass these filters in all, however many `limit` returns."""
    params = {"now": now, "officer": officer, "limit": int(limit), "scanner": scanner_id}
    return cur.execute(QUEUE_SQL, params).df()


RELABEL_SQL = """
WITH champ AS (SELECT * FROM verdicts WHERE role = 'champion'),
fd AS (SELECT * FROM (SELECT *, row_number() OVER (PARTITION BY scan_id ORDER BY decided_at DESC) rn
                      FROM decisions WHERE decision <> 'refer') WHERE rn = 1),
cl AS (SELECT * FROM (SELECT *, row_number() OVER (PARTITION BY scan_id ORDER BY created_at DESC, label_id DESC) rn
                      FROM labels) WHERE rn = 1)
SELECT champ.scan_id, champ.scanner_id, champ.model_version, champ.verdict, champ.any_threat, champ.top_class,
       fd.decision, fd.officer, cl.labels AS current_labels, cl.source AS label_source,
       CASE WHEN fd.decision = 'cleared' AND champ.verdict = 'inspect' THEN 'officer cleared a model alarm'
            WHEN fd.decision IN ('confirmed', 'seized') AND champ.verdict = 'clear' THEN 'model missed a threat'
            ELSE 'model uncertain' END AS reason,
       CASE WHEN champ.verdict = 'uncertain' THEN 1 ELSE 0 END AS priority_group
FROM champ
LEFT JOIN fd USING (scan_id)
LEFT JOIN cl USING (scan_id)
WHERE (fd.decision = 'cleared' AND champ.verdict = 'inspect')
   OR (fd.decision IN ('confirmed', 'seized') AND champ.verdict = 'clear')
   OR champ.verdict = 'uncertain'
ORDER BY priority_group, abs(champ.any_threat - 0.5), champ.scored_at DESC
LIMIT $limit
"""


def relabel_queue(cur: duckdb.DuckDBPyConnection, limit: int) -> pd.DataFrame:
    """Items whose labels help the model most: officer/model disagreements first, then uncertain ones nearest 0.5."""
    return cur.execute(RELABEL_SQL, {"limit": int(limit)}).df().drop(columns=["priority_group"])


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


def similar_items(cur: duckdb.DuckDBPyConnection, scan_id: str, k: int) -> pd.DataFrame:
    """Nearest champion verdicts by cosine similarity of embeddings, among items with a known outcome."""
    if not first(cur, "SELECT 1 FROM verdicts WHERE scan_id = ?", [scan_id]):
        raise NotFoundError(f"scan {scan_id} has no verdict")
    known = [r[0] for r in cur.execute(KNOWN_SQL).fetchall()]
    return cur.execute(SIMILAR_SQL, {"scan_id": scan_id, "k": int(k), "known": known}).df()


def _model(row: dict[str, Any]) -> ModelRecord:
    for key in _MODEL_JSON:
        row[key] = _loads(row[key]) or {}
    return ModelRecord(**row)


def list_models(cur: duckdb.DuckDBPyConnection) -> list[ModelRecord]:
    cur.execute("SELECT * FROM models ORDER BY created_at, version")
    return [_model(r) for r in _dicts(cur)]


def get_model(cur: duckdb.DuckDBPyConnection, version: str) -> ModelRecord:
    cur.execute("SELECT * FROM models WHERE version = ?", [version])
    rows = _dicts(cur)
    if not rows:
        raise NotFoundError(f"model version {version!r} is not registered")
    return _model(rows[0])


def champion(cur: duckdb.DuckDBPyConnection) -> ModelRecord | None:
    cur.execute("SELECT * FROM models WHERE state = 'champion'")
    rows = _dicts(cur)
    return _model(rows[0]) if rows else None


def list_alerts(cur: duckdb.DuckDBPyConnection, status: AlertStatus | None, limit: int) -> list[AlertRecord]:
    cur.execute("SELECT alert_id, raised_at, severity, kind, message, status, details FROM alerts "
                "WHERE $status::VARCHAR IS NULL OR status = $status::VARCHAR ORDER BY raised_at DESC LIMIT $limit",
                {"status": status, "limit": int(limit)})
    return [AlertRecord(**{**r, "details": _loads(r["details"]) or {}}) for r in _dicts(cur)]


def audit_log(cur: duckdb.DuckDBPyConnection, limit: int, actor: str | None, action: str | None) -> list[AuditRecord]:
    """Audit rows, newest first (by their place in the chain)."""
    cur.execute("SELECT * EXCLUDE (logged_at, prev_hash, row_hash), logged_at AS at FROM audit_log "
                "WHERE ($actor::VARCHAR IS NULL OR actor = $actor::VARCHAR) AND "
                "($action::VARCHAR IS NULL OR action = $action::VARCHAR) ORDER BY seq DESC, logged_at DESC "
                "LIMIT $limit", {"actor": actor, "action": action, "limit": int(limit)})
    return [AuditRecord(**{**r, "details": _loads(r["details"]) or {}}) for r in _dicts(cur)]


def list_users(cur: duckdb.DuckDBPyConnection) -> list[UserRecord]:
    cur.execute("SELECT username, role, disabled, created_at FROM users ORDER BY username")
    return [UserRecord(**r) for r in _dicts(cur)]


def get_user(cur: duckdb.DuckDBPyConnection, username: str) -> UserRecord:
    cur.execute("SELECT username, role, disabled, created_at FROM users WHERE username = ?", [username])
    rows = _dicts(cur)
    if not rows:
        raise NotFoundError(f"user {username!r} does not exist")
    return UserRecord(**rows[0])


def get_setting(cur: duckdb.DuckDBPyConnection, key: str) -> Any:
    """The JSON value stored under `key` in settings_kv, or None."""
    row = first(cur, "SELECT value FROM settings_kv WHERE key = ?", [key])
    return _loads(row[0]) if row else None


INFO_TABLES = ("scans", "verdicts", "decisions", "labels", "models", "users", "alerts", "audit_log")


def info(cur: duckdb.DuckDBPyConnection) -> dict[str, Any]:
    """Schema version and row counts of the main tables."""
    version = first(cur, "SELECT max(version) FROM xscreen_schema")
    counts = {t: int(first(cur, f"SELECT count(*) FROM {t}")[0]) for t in INFO_TABLES}  # type: ignore[index]
    return {"schema_version": version[0] if version else None, "rows": counts}
