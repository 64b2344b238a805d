"""Scans domain: one scan with everything known about it, and the volumes over scans and verdicts that the
dashboards and notebooks read (per time bucket, day, scanner; image statistics; the filter choices).

Times are UTC; windows are [start, end) and default to the last 7 days (store/fetch.py).
"""

from __future__ import annotations

from typing import Any

import duckdb
import pandas as pd

from store.audit import loads
from store.fetch import dicts, first, in_window
from store.ops import read
from xscreen.errors import NotFoundError, QueryRefused

BUCKETS = ("minute", "hour", "day", "week")
IMAGE_STATS = ("mean_attenuation", "noise_level", "dynamic_range", "organic_fraction", "inorganic_fraction",
               "metal_fraction")


@read()
def get_scan(cur: duckdb.DuckDBPyConnection, scan_id: str) -> dict[str, Any]:
    """The scan with its verdicts (each with heatmaps), decisions, labels (newest first) and current label."""
    cur.execute("SELECT * FROM scans WHERE scan_id = ?", [scan_id])
    rows = dicts(cur)
    if not rows:
        raise NotFoundError(f"scan {scan_id} does not exist")
    scan = rows[0]
    scan["declared_contents"] = loads(scan["declared_contents"])
    cur.execute("SELECT * FROM verdicts WHERE scan_id = ? ORDER BY role = 'champion' DESC, scored_at", [scan_id])
    verdicts = dicts(cur)
    cur.execute("SELECT * FROM heatmaps WHERE scan_id = ?", [scan_id])
    heatmaps = dicts(cur)
    for v in verdicts:
        v["thresholds"] = loads(v["thresholds"])
        v["embedding"] = list(v["embedding"] or [])
        mine = [h for h in heatmaps if h["model_version"] == v["model_version"]]
        v["heatmaps"] = {h["class_name"]: h["grid"] for h in mine if h["grid"] is not None}
        v["peak_boxes"] = {h["class_name"]: h["peak_box"] for h in mine if h["peak_box"] is not None}
    scan["verdicts"] = verdicts
    cur.execute("SELECT * FROM decisions WHERE scan_id = ? ORDER BY decided_at", [scan_id])
    scan["decisions"] = dicts(cur)
    cur.execute("SELECT * FROM labels WHERE scan_id = ? ORDER BY created_at DESC, label_id DESC", [scan_id])
    scan["labels"] = dicts(cur)
    scan["current_labels"] = scan["labels"][0]["labels"] if scan["labels"] else None
    cur.execute("SELECT officer, expires_at FROM claims WHERE scan_id = ?", [scan_id])
    claims = dicts(cur)
    scan["claim"] = claims[0] if claims else None
    return scan


def _bucket(bucket: str) -> str:
    if bucket not in BUCKETS:
        raise QueryRefused(f"bucket {bucket!r} is not one of {', '.join(BUCKETS)}")
    return bucket


@read()
def verdict_counts(cur: duckdb.DuckDBPyConnection, start: Any = None, end: Any = None, bucket: str = "hour",
                   role: str = "champion") -> pd.DataFrame:
    """Verdicts per time bucket, scanner and model version: n, n_inspect, n_uncertain, n_clear, flag_rate.

    hour/day/week buckets read the hourly rollup `verdict_hourly` (cost independent of the number of verdicts;
    the window is taken in whole UTC hours: those whose start lies in [start, end)); minute reads verdicts."""
    if _bucket(bucket) == "minute":
        source = f"""SELECT time_bucket(INTERVAL 1 minute, scored_at) AS bucket, scanner_id, model_version, verdict,
                            1 AS n FROM verdicts WHERE role = $role AND {in_window("scored_at")}"""
    else:
        source = f"""SELECT time_bucket(INTERVAL 1 {bucket}, hour) AS bucket, nullif(scanner_id, '') AS scanner_id,
                            model_version, verdict, n FROM verdict_hourly WHERE role = $role AND {in_window("hour")}"""
    sql = f"""
    SELECT bucket, scanner_id, model_version, sum(n)::BIGINT AS n,
           (sum(n) FILTER (verdict = 'inspect'))::BIGINT AS n_inspect,
           (sum(n) FILTER (verdict = 'uncertain'))::BIGINT AS n_uncertain,
           (sum(n) FILTER (verdict = 'clear'))::BIGINT AS n_clear,
           (sum(n) FILTER (verdict <> 'clear'))::DOUBLE / sum(n) AS flag_rate
    FROM ({source}) GROUP BY ALL ORDER BY bucket, scanner_id, model_version"""
    df = cur.execute(sql, {"start": start, "end": end, "role": role}).df()
    for col in ("n_inspect", "n_uncertain", "n_clear"):  # FILTER over no rows is NULL: it means zero
        df[col] = df[col].fillna(0).astype("int64")
    df["flag_rate"] = df["flag_rate"].fillna(0.0)
    return df


def rows_in_window(cur: duckdb.DuckDBPyConnection, start: Any = None, end: Any = None,
                   model_version: str | None = None, scanner_id: str | None = None) -> int:
    """Verdicts scored in [start, end) (whole UTC hours), from the hourly rollup: no scan of verdicts."""
    row = first(cur, f"""
        SELECT coalesce(sum(n), 0) FROM verdict_hourly WHERE {in_window("hour")}
          AND ($model_version::VARCHAR IS NULL OR model_version = $model_version::VARCHAR)
          AND ($scanner_id::VARCHAR IS NULL OR scanner_id = $scanner_id::VARCHAR)""",
        {"start": start, "end": end, "model_version": model_version, "scanner_id": scanner_id})
    return int(row[0]) if row else 0


@read()
def verdicts_by_day(cur: duckdb.DuckDBPyConnection, start: Any = None, end: Any = None) -> pd.DataFrame:
    """Champion verdicts per UTC day, scanner and top class: n and flagged."""
    return cur.execute(f"""
        SELECT CAST(timezone('UTC', scored_at) AS DATE) AS day, scanner_id, coalesce(top_class, 'none') AS top_class,
               count(*) AS n, count(*) FILTER (WHERE verdict IN ('inspect', 'uncertain')) AS flagged
        FROM champion_verdicts WHERE {in_window("scored_at")}
        GROUP BY ALL ORDER BY day, scanner_id, top_class""", {"start": start, "end": end}).df()


@read()
def image_stats(cur: duckdb.DuckDBPyConnection, start: Any = None, end: Any = None,
                scanner_id: str | None = None) -> pd.DataFrame:
    """Per scanner: n and mean / p05 / p50 / p95 of each image statistic over scans received in the window."""
    cols = ", ".join(f"avg({s}) AS {s}_mean, quantile_cont({s}, [0.05, 0.5, 0.95]) AS {s}_q" for s in IMAGE_STATS)
    sql = f"""
    SELECT scanner_id, count(*) AS n, {cols} FROM scans
    WHERE {in_window("received_at")} AND ($scanner_id::VARCHAR IS NULL OR scanner_id = $scanner_id::VARCHAR)
    GROUP BY scanner_id ORDER BY scanner_id"""
    df = cur.execute(sql, {"start": start, "end": end, "scanner_id": scanner_id}).df()
    for s in IMAGE_STATS:  # split the quantile lists into plain columns
        q = df.pop(f"{s}_q")
        for i, name in enumerate(("p05", "p50", "p95")):
            df[f"{s}_{name}"] = [row[i] if row is not None else None for row in q]
    return df


@read()
def filter_options(cur: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Distinct scanner ids and model versions seen in verdicts: columns kind ('scanner'|'model'), value."""
    return cur.execute("""
        SELECT DISTINCT 'scanner' AS kind, scanner_id AS value FROM verdicts WHERE scanner_id IS NOT NULL
        UNION SELECT DISTINCT 'model', model_version FROM verdicts ORDER BY kind, value""").df()
