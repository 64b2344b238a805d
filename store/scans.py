"""Scans domain: one scan with everything known about it, where its image is, and the volumes over scans and
verdicts that the dashboards and notebooks read (per time bucket, day, scanner; image statistics; filter choices).

Pixels have an owner: a scan's image is at `source_path` (where serving filed it: the archive, the uploads folder,
or the inbox) until serving reports a move (`move_images`) or the retention job an expiry (`expire_images`), and
`get_scan` says where it is now (view `scan_images`). Times are UTC; windows are [start, end) and default to the
last 7 days (store/fetch.py).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import duckdb
import pandas as pd

from store import tips
from store.audit import audit_row, loads
from store.fetch import dicts, first, in_window
from store.ops import read, write
from xscreen.errors import NotFoundError, QueryRefused
from xscreen.records import ImageMove, ScanDetail

BUCKETS = ("minute", "hour", "day", "week")
IMAGE_STATS = ("mean_attenuation", "noise_level", "dynamic_range", "organic_fraction", "inorganic_fraction",
               "metal_fraction")


_SCAN_COLUMNS = ("scan_id, sha256, scanner_id, item_id, source_path, file_format, width, height, bit_depth, "
                 "dual_energy, received_at, scanned_at, declared_contents, " + ", ".join(IMAGE_STATS) +
                 ", is_canary, canary_labels")
_VERDICT_COLUMNS = ("scan_id, model_version, role, scanner_id, verdict, any_threat, scores, top_class, thresholds, "
                    "embedding, heatmap_size, scored_at, latency_ms")


@read()
def get_scan(cur: duckdb.DuckDBPyConnection, scan_id: str) -> ScanDetail:
    """The scan with its verdicts (champion first, each with heatmaps), decisions, labels (newest first), current
    label, live claim and where its image is now. The declared type is what crosses HTTP, so a client gets
    exactly these keys and types (datetimes stay datetimes)."""
    tip = tips.tip_row(cur, scan_id)
    if tip is not None:  # an officer TIP item opens like any flagged scan (store/tips.py)
        return tips.tip_detail(cur, tip, _SCAN_COLUMNS)
    cur.execute(f"SELECT {_SCAN_COLUMNS} FROM scans WHERE scan_id = ?", [scan_id])
    rows = dicts(cur)
    if not rows:
        raise NotFoundError(f"scan {scan_id} does not exist")
    scan = rows[0]
    scan["declared_contents"] = loads(scan["declared_contents"])
    cur.execute(f"SELECT {_VERDICT_COLUMNS} FROM verdicts WHERE scan_id = ? ORDER BY role = 'champion' DESC, "
                "scored_at", [scan_id])
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
    cur.execute("SELECT state, path, since, reason FROM scan_images WHERE scan_id = ?", [scan_id])
    scan["image"] = dicts(cur)[0]
    return scan  # type: ignore[return-value]  # built key by key above; tests compare it with the HTTP answer


@write(process_only=True, weight=lambda kw: len(kw["moves"]))
def move_images(cur: duckdb.DuckDBPyConnection, moves: list[ImageMove], reason: str = "moved", *,
                now: datetime) -> int:
    """Record that scans' images now lie at new paths (unknown scans are skipped); returns how many."""
    known = {r[0] for r in cur.execute("SELECT scan_id FROM scans WHERE list_contains(?, scan_id)",
                                       [[m.scan_id for m in moves]]).fetchall()} if moves else set()
    rows = [m for m in moves if m.scan_id in known]
    for m in rows:
        cur.execute("INSERT INTO image_events VALUES (?, ?, 'kept', ?, ?)", [m.scan_id, now, m.path, reason])
    if rows:
        audit_row(cur, now, "serving", "image_moved", rows[0].scan_id if len(rows) == 1 else None, n=len(rows),
                  reason=reason, scans=[m.scan_id for m in rows[:100]])
    return len(rows)


@write(process_only=True)
def expire_images(cur: duckdb.DuckDBPyConnection, folder: str, reason: str = "retention", *,
                  now: datetime) -> int:
    """Record that every image kept under `folder` (a day folder about to be deleted) is gone; returns how many
    scans it concerned. Call it before deleting: a failed call leaves the folder for the next round."""
    prefix = folder.rstrip("/") + "/"
    ids = [r[0] for r in cur.execute(
        "INSERT INTO image_events SELECT scan_id, $now, 'expired', path, $reason FROM scan_images "
        "WHERE state = 'kept' AND starts_with(path, $prefix) RETURNING scan_id",
        {"now": now, "reason": reason, "prefix": prefix}).fetchall()]
    if ids:
        audit_row(cur, now, "serving", "images_expired", folder, n=len(ids), reason=reason)
    return len(ids)


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


@read()
def cleared_images(cur: duckdb.DuckDBPyConnection, scanner_id: str, limit: int = 500,
                   max_any_threat: float | None = None) -> pd.DataFrame:
    """The most recent scans of `scanner_id` that count as benign, newest first, with where their image is now:
    officer-cleared ones, and ones the champion cleared that no officer decided otherwise (with `max_any_threat`,
    only those scored at most that). Canaries and expired images are left out. Columns scan_id, path,
    any_threat, decision (None when no officer decided), scored_at. A scan whose current label names a threat is
    never one, whatever its verdict. What `xscreen adapt --scanner` and the gate's canary items read."""
    return cur.execute("""
        SELECT v.scan_id, i.path, v.any_threat, d.decision, v.scored_at
        FROM champion_verdicts v JOIN scans s USING (scan_id) JOIN scan_images i USING (scan_id)
        LEFT JOIN final_decisions d USING (scan_id)
        WHERE v.scanner_id = $scanner_id AND NOT s.is_canary AND i.state <> 'expired' AND i.path IS NOT NULL
          AND (d.decision = 'cleared' OR (d.decision IS NULL AND v.verdict = 'clear'
               AND ($max_any::DOUBLE IS NULL OR v.any_threat <= $max_any::DOUBLE)))
          AND v.scan_id NOT IN (SELECT scan_id FROM current_labels WHERE len(labels) > 0)
        ORDER BY v.scored_at DESC, v.scan_id LIMIT $limit""",
        {"scanner_id": scanner_id, "limit": int(limit), "max_any": max_any_threat}).df()
