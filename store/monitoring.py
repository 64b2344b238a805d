"""Monitoring domain: measurements and alerts (what the monitoring job records and the app shows), and the score
samples its drift statistics read.

Score samples keep the pages fast at millions of verdicts: at most `limit` rows, repeatable between calls (a
reservoir sample, or above BLOCK_SAMPLE_ABOVE verdicts in the window, whole 2048-row blocks spread over it).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import duckdb
import pandas as pd

from store.audit import audit_row, loads, to_json
from store.fetch import dicts, first, in_window, scalar
from store.ops import read, write
from store.scans import IMAGE_STATS, rows_in_window
from xscreen.errors import NotFoundError
from xscreen.records import AlertRecord, AlertStatus, MeasurementRecord

# Above this many verdicts in a window, score samples are drawn as whole 2048-row blocks (DuckDB system sampling,
# which reads only the sampled blocks' scores) instead of a reservoir over every row (which reads them all).
BLOCK_SAMPLE_ABOVE = 250_000


@write(weight=lambda kw: len(kw["measurements"]))
def add_measurements(cur: duckdb.DuckDBPyConnection, measurements: list[MeasurementRecord]) -> int:
    """Append measurements; known measurement_ids are skipped. Returns how many were new."""
    before = int(scalar(cur, "SELECT count(*) FROM measurements"))
    for m in measurements:
        cur.execute("INSERT INTO measurements VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?::JSON) ON CONFLICT DO NOTHING",
                    [m.measurement_id, m.measured_at, m.kind, m.scanner_id, m.model_version, m.window_start,
                     m.window_end, m.value, to_json(m.details)])
    return int(scalar(cur, "SELECT count(*) FROM measurements")) - before


@read()
def list_measurements(cur: duckdb.DuckDBPyConnection, kind: str | None = None, scanner_id: str | None = None,
                      model_version: str | None = None, start: Any = None, end: Any = None,
                      limit: int = 10_000) -> list[MeasurementRecord]:
    """Measurements taken in [start, end) (default: the last 7 days), newest first, optionally of one kind,
    scanner and model version."""
    cur.execute(f"""SELECT * FROM measurements WHERE {in_window("measured_at")}
                    AND ($kind::VARCHAR IS NULL OR kind = $kind::VARCHAR)
                    AND ($scanner_id::VARCHAR IS NULL OR scanner_id = $scanner_id::VARCHAR)
                    AND ($model_version::VARCHAR IS NULL OR model_version = $model_version::VARCHAR)
                    ORDER BY measured_at DESC, measurement_id LIMIT $limit""",
                {"kind": kind, "scanner_id": scanner_id, "model_version": model_version, "start": start,
                 "end": end, "limit": int(limit)})
    return [MeasurementRecord(**{**r, "details": loads(r["details"]) or {}}) for r in dicts(cur)]


@write()
def raise_alert(cur: duckdb.DuckDBPyConnection, alert: AlertRecord) -> bool:
    """Store an alert; False when that alert_id already exists (monitoring may re-raise the same id)."""
    a = alert
    if first(cur, "SELECT 1 FROM alerts WHERE alert_id = ?", [a.alert_id]):
        return False
    cur.execute("INSERT INTO alerts BY NAME SELECT ? AS alert_id, ? AS raised_at, ? AS severity, ? AS kind, "
                "? AS message, ? AS status, ?::JSON AS details, ? AS updated_at",
                [a.alert_id, a.raised_at, a.severity, a.kind, a.message, a.status, to_json(a.details), a.raised_at])
    return True


@write(action="handle_alerts", actor="actor")
def set_alert_status(cur: duckdb.DuckDBPyConnection, alert_id: str, status: AlertStatus, actor: str, *,
                     now: datetime) -> None:
    """Acknowledge or resolve an alert (audited)."""
    if not first(cur, "SELECT 1 FROM alerts WHERE alert_id = ?", [alert_id]):
        raise NotFoundError(f"alert {alert_id!r} does not exist")
    cur.execute("UPDATE alerts SET status = ?, updated_at = ?, updated_by = ? WHERE alert_id = ?",
                [status, now, actor, alert_id])
    audit_row(cur, now, actor, "alert_status", alert_id, status=status)


@read()
def list_alerts(cur: duckdb.DuckDBPyConnection, status: AlertStatus | None = None,
                limit: int = 200) -> list[AlertRecord]:
    """Alerts, newest first, optionally of one status."""
    cur.execute("SELECT alert_id, raised_at, severity, kind, message, status, details FROM alerts "
                "WHERE $status::VARCHAR IS NULL OR status = $status::VARCHAR ORDER BY raised_at DESC LIMIT $limit",
                {"status": status, "limit": int(limit)})
    return [AlertRecord(**{**r, "details": loads(r["details"]) or {}}) for r in dicts(cur)]


@read()
def score_samples(cur: duckdb.DuckDBPyConnection, class_name: str = "any_threat", start: Any = None,
                  end: Any = None, model_version: str | None = None, scanner_id: str | None = None,
                  limit: int = 20_000) -> pd.DataFrame:
    """Scores of one class (or `any_threat`) in a window: scored_at, scanner_id, model_version, score."""
    score = "any_threat" if class_name == "any_threat" else "scores[$class_name]"
    where = f"""{in_window("scored_at")}
          AND ($model_version::VARCHAR IS NULL OR model_version = $model_version::VARCHAR)
          AND ($scanner_id::VARCHAR IS NULL OR scanner_id = $scanner_id::VARCHAR)"""
    params: dict[str, Any] = {"start": start, "end": end, "model_version": model_version, "scanner_id": scanner_id}
    n = rows_in_window(cur, **params)
    if n > BLOCK_SAMPLE_ABOVE:
        percent = min(100.0, 120.0 * int(limit) / n)  # 20% spare: blocks straddle the window's edges
        sql = f"""SELECT scored_at, scanner_id, model_version, {score} AS score
                  FROM verdicts TABLESAMPLE {percent:.6f}% (system, 7)
                  WHERE {where} AND {score} IS NOT NULL LIMIT {int(limit)}"""
    else:  # sample sizes are int()-ed into the SQL: DuckDB accepts only constants there
        sql = f"""SELECT * FROM (SELECT scored_at, scanner_id, model_version, {score} AS score FROM verdicts
                                 WHERE {where} AND {score} IS NOT NULL) AS w
                  USING SAMPLE reservoir({int(limit)} ROWS) REPEATABLE (7)"""
    if class_name != "any_threat":
        params["class_name"] = class_name
    return cur.execute(sql, params).df().sort_values("scored_at", ignore_index=True)


@read()
def class_score_sample(cur: duckdb.DuckDBPyConnection, start: Any = None, end: Any = None,
                       scanner_id: str | None = None, model_version: str | None = None,
                       limit: int = 20_000) -> pd.DataFrame:
    """Every class's score (plus any_threat) of up to `limit` sampled champion verdicts, long form: class_name,
    score. One call for all classes (score_samples returns one class per call)."""
    return cur.execute(f"""
        WITH s AS (SELECT scan_id, any_threat, scores FROM champion_verdicts
                   WHERE {in_window("scored_at")} AND ($scanner_id::VARCHAR IS NULL OR scanner_id = $scanner_id)
                     AND ($model_version::VARCHAR IS NULL OR model_version = $model_version)
                   USING SAMPLE reservoir({int(limit)} ROWS) REPEATABLE (7))
        SELECT 'any_threat' AS class_name, any_threat AS score FROM s
        UNION ALL
        SELECT unnest(map_keys(scores)) AS class_name, unnest(map_values(scores)) AS score FROM s""",
        {"start": start, "end": end, "scanner_id": scanner_id, "model_version": model_version}).df()


@read()
def latest_measurements(cur: duckdb.DuckDBPyConnection, kind: str | None = None,
                        limit: int = 10_000) -> list[MeasurementRecord]:
    """The newest measurement of each (kind, scanner_id, model_version), whenever it was taken: the monitoring
    job continues its detectors from these, and the app shows them. Optionally of one kind."""
    cur.execute("""SELECT * EXCLUDE (rn) FROM (
                       SELECT *, row_number() OVER (PARTITION BY kind, scanner_id, model_version
                                                    ORDER BY measured_at DESC, measurement_id DESC) AS rn
                       FROM measurements WHERE $kind::VARCHAR IS NULL OR kind = $kind::VARCHAR)
                   WHERE rn = 1 ORDER BY kind, scanner_id NULLS FIRST, model_version LIMIT $limit""",
                {"kind": kind, "limit": int(limit)})
    return [MeasurementRecord(**{**r, "details": loads(r["details"]) or {}}) for r in dicts(cur)]


def _alert_key(details: dict[str, Any]) -> tuple[Any, Any]:
    return details.get("scanner_id"), details.get("model_version")


@write()
def raise_alert_once(cur: duckdb.DuckDBPyConnection, alert: AlertRecord) -> bool:
    """Store an alert unless one of the same kind, details.scanner_id and details.model_version is still open or
    acknowledged (one active alert per kind, scanner and model: a detector that keeps alarming does not flood the
    app). True when stored."""
    scanner, model = _alert_key(alert.details)
    if first(cur, """SELECT 1 FROM alerts WHERE kind = $kind AND status <> 'resolved'
                     AND (details->>'scanner_id') IS NOT DISTINCT FROM $scanner::VARCHAR
                     AND (details->>'model_version') IS NOT DISTINCT FROM $model::VARCHAR""",
             {"kind": alert.kind, "scanner": scanner, "model": model}):
        return False
    return bool(raise_alert(cur, alert))


@read()
def benign_resolutions(cur: duckdb.DuckDBPyConnection, start: Any = None, end: Any = None,
                       model_version: str | None = None, limit: int = 200_000) -> pd.DataFrame:
    """Champion items of real mail (no canaries) scored in [start, end), in the order they were scored: scanner_id,
    model_version, scan_id, scored_at, routed (flagged), pending (flagged, no final decision yet), threat (an
    officer confirmed or seized it). The certificate watch feeds the benign ones in this order, up to the first
    still pending: in the order decisions come, routed items would arrive in bursts (an officer clearing a queue)
    and the detector would read a burst as a change (analytics.monitoring.certificate)."""
    return cur.execute(f"""
        SELECT v.scanner_id, v.model_version, v.scan_id, v.scored_at, v.verdict <> 'clear' AS routed,
               v.verdict <> 'clear' AND d.decision IS NULL AS pending,
               coalesce(d.decision IN ('confirmed', 'seized'), false) AS threat
        FROM champion_verdicts v JOIN scans s USING (scan_id) LEFT JOIN final_decisions d USING (scan_id)
        WHERE NOT s.is_canary AND {in_window("v.scored_at")}
          AND ($model_version::VARCHAR IS NULL OR v.model_version = $model_version::VARCHAR)
        ORDER BY v.scored_at, v.scan_id LIMIT $limit""",
        {"start": start, "end": end, "model_version": model_version, "limit": int(limit)}).df()


@read(action="read_ground_truth")
def miss_evidence(cur: duckdb.DuckDBPyConnection, start: Any = None, end: Any = None,
                  model_version: str | None = None, limit: int = 200_000) -> pd.DataFrame:
    """Champion items of real mail (no canaries) scored in [start, end), in scoring order, with what the accuracy
    page on audits and feedback needs (analytics.monitoring.harm): scanner_id, model_version, scan_id, scored_at,
    flagged (routed to an officer), inclusion (the audit's pi of an audited cleared item, else NULL), pending
    (flagged or audited, no final decision yet) and threat (an officer confirmed or seized it). The job feeds the
    items before the first pending one, as the certificate watch does. Ground truth: it tells audits apart."""
    return cur.execute(f"""
        SELECT v.scanner_id, v.model_version, v.scan_id, v.scored_at, v.verdict <> 'clear' AS flagged,
               CASE WHEN v.verdict = 'clear' THEN a.inclusion END AS inclusion,
               (v.verdict <> 'clear' OR a.scan_id IS NOT NULL) AND d.decision IS NULL AS pending,
               coalesce(d.decision IN ('confirmed', 'seized'), false) AS threat
        FROM champion_verdicts v JOIN scans s USING (scan_id) LEFT JOIN final_decisions d USING (scan_id)
        LEFT JOIN audit_selections a ON a.scan_id = v.scan_id AND a.model_version = v.model_version
        WHERE NOT s.is_canary AND {in_window("v.scored_at")}
          AND ($model_version::VARCHAR IS NULL OR v.model_version = $model_version::VARCHAR)
        ORDER BY v.scored_at, v.scan_id LIMIT $limit""",
        {"start": start, "end": end, "model_version": model_version, "limit": int(limit)}).df()


@read()
def known_threat_outcomes(cur: duckdb.DuckDBPyConnection, start: Any = None, end: Any = None,
                    limit: int = 200_000) -> pd.DataFrame:
    """Known-answer canaries scored in [start, end), oldest first: scanner_id, model_version, scan_id (the
    canary's id), scored_at, canary_labels, missed (the model did not route a scan known to hold a threat). Both
    kinds: hidden canaries (table `canaries`, serving/canaries.py) and canary scans delivered as files
    (`scans.is_canary`, the champion's verdict)."""
    return cur.execute(f"""
        SELECT scanner_id, model_version, canary_id AS scan_id, scored_at, [class_name] AS canary_labels,
               NOT detected AS missed
        FROM canaries WHERE {in_window("scored_at")}
        UNION ALL
        SELECT v.scanner_id, v.model_version, v.scan_id, v.scored_at, s.canary_labels, v.verdict = 'clear'
        FROM champion_verdicts v JOIN scans s USING (scan_id)
        WHERE s.is_canary AND {in_window("v.scored_at")}
        ORDER BY scored_at, scan_id LIMIT $limit""", {"start": start, "end": end, "limit": int(limit)}).df()


@read()
def monitor_windows(cur: duckdb.DuckDBPyConnection, start: Any = None, end: Any = None,
                    per_window: int = 500) -> pd.DataFrame:
    """The two windows each (scanner, champion model) is compared on: `reference` = its oldest `per_window`
    real-mail scans received in [start, end), `current` = its newest (each half of them when there are fewer
    than 2 * per_window, so the windows never overlap). Columns: window, scanner_id, model_version, scan_id,
    received_at, verdict, any_threat, scores (JSON text), embedding, and the image statistics."""
    stats = ", ".join(f"s.{name}" for name in IMAGE_STATS)
    return cur.execute(f"""
        WITH w AS (
            SELECT v.scanner_id, v.model_version, v.scan_id, s.received_at, v.verdict, v.any_threat,
                   to_json(v.scores)::VARCHAR AS scores, v.embedding, {stats},
                   row_number() OVER (PARTITION BY v.scanner_id, v.model_version ORDER BY s.received_at, v.scan_id)
                       AS oldest,
                   row_number() OVER (PARTITION BY v.scanner_id, v.model_version
                                      ORDER BY s.received_at DESC, v.scan_id DESC) AS newest,
                   count(*) OVER (PARTITION BY v.scanner_id, v.model_version) AS n
            FROM champion_verdicts v JOIN scans s USING (scan_id)
            WHERE NOT s.is_canary AND {in_window("s.received_at")})
        SELECT CASE WHEN oldest <= least($per_window, n // 2) THEN 'reference' ELSE 'current' END AS window,
               * EXCLUDE (oldest, newest, n)
        FROM w WHERE oldest <= least($per_window, n // 2) OR newest <= least($per_window, n // 2)
        ORDER BY scanner_id, model_version, received_at, scan_id""",
        {"start": start, "end": end, "per_window": int(per_window)}).df()
