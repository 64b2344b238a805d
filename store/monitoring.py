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
from store.scans import rows_in_window
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
