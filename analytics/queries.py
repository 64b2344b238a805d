"""Named read queries: plain functions `fn(con, **params) -> DataFrame`, registered by name for the store owner.

The app and notebooks ask for data by name (`store.query("verdict_counts", start=..., end=...)`), so the same
function runs against the live store (through the owner) and against a snapshot (directly, in a notebook).
Times are UTC; `start`/`end` accept datetimes or ISO-8601 strings and default to the last 7 days.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import duckdb
import pandas as pd

from analytics.fetch import first
from xscreen.errors import NotFoundError, QueryRefused

QueryFn = Callable[..., pd.DataFrame]
NAMED_QUERIES: dict[str, QueryFn] = {}
BUCKETS = ("minute", "hour", "day", "week")

_WINDOW = ("coalesce($start::TIMESTAMPTZ, now() - INTERVAL 7 DAY)", "coalesce($end::TIMESTAMPTZ, now())")


def named_query(name: str) -> Callable[[QueryFn], QueryFn]:
    """Register `fn` under `name` (names are unique across analytics.queries and analytics.dashboard_queries)."""

    def register(fn: QueryFn) -> QueryFn:
        if name in NAMED_QUERIES and NAMED_QUERIES[name] is not fn:
            raise ValueError(f"named query {name!r} is registered twice")
        NAMED_QUERIES[name] = fn
        return fn

    return register


def run_named(con: duckdb.DuckDBPyConnection, name: str, params: dict[str, Any]) -> pd.DataFrame:
    """Run a registered query; NotFoundError for an unknown name, QueryRefused for bad parameters."""
    fn = NAMED_QUERIES.get(name)
    if fn is None:
        raise NotFoundError(f"no named query {name!r} (known: {', '.join(sorted(NAMED_QUERIES))})")
    try:
        return fn(con, **params)
    except TypeError as exc:
        raise QueryRefused(f"named query {name!r}: {exc}") from None
    except (duckdb.ConversionException, duckdb.InvalidInputException, duckdb.BinderException) as exc:
        raise QueryRefused(f"named query {name!r}: bad parameter ({exc})") from None


def _bucket(bucket: str) -> str:
    if bucket not in BUCKETS:
        raise QueryRefused(f"bucket {bucket!r} is not one of {', '.join(BUCKETS)}")
    return bucket


@named_query("verdict_counts")
def verdict_counts(con: duckdb.DuckDBPyConnection, start: Any = None, end: Any = None, bucket: str = "hour",
                   role: str = "champion") -> pd.DataFrame:
    """Verdicts per time bucket, scanner and model version: n, n_inspect, n_uncertain, n_clear, flag_rate.

    hour/day/week buckets read the hourly rollup `verdict_hourly` (cost independent of the number of verdicts;
    the window is taken in whole UTC hours: those whose start lies in [start, end)); minute reads verdicts."""
    if _bucket(bucket) == "minute":
        source = f"""SELECT time_bucket(INTERVAL 1 minute, scored_at) AS bucket, scanner_id, model_version, verdict,
                            1 AS n FROM verdicts
                     WHERE role = $role AND scored_at >= {_WINDOW[0]} AND scored_at < {_WINDOW[1]}"""
    else:
        source = f"""SELECT time_bucket(INTERVAL 1 {bucket}, hour) AS bucket, nullif(scanner_id, '') AS scanner_id,
                            model_version, verdict, n FROM verdict_hourly
                     WHERE role = $role AND hour >= {_WINDOW[0]} AND hour < {_WINDOW[1]}"""
    sql = f"""
    SELECT bucket, scanner_id, model_version, sum(n)::BIGINT AS n,
           (sum(n) FILTER (verdict = 'inspect'))::BIGINT AS n_inspect,
           (sum(n) FILTER (verdict = 'uncertain'))::BIGINT AS n_uncertain,
           (sum(n) FILTER (verdict = 'clear'))::BIGINT AS n_clear,
           (sum(n) FILTER (verdict <> 'clear'))::DOUBLE / sum(n) AS flag_rate
    FROM ({source}) GROUP BY ALL ORDER BY bucket, scanner_id, model_version"""
    df = con.execute(sql, {"start": start, "end": end, "role": role}).df()
    for col in ("n_inspect", "n_uncertain", "n_clear"):  # FILTER over no rows is NULL: it means zero
        df[col] = df[col].fillna(0).astype("int64")
    df["flag_rate"] = df["flag_rate"].fillna(0.0)
    return df


# Above this many verdicts in a window, score samples are drawn as whole 2048-row blocks (DuckDB system sampling,
# which reads only the sampled blocks' scores) instead of a reservoir over every row (which reads them all).
BLOCK_SAMPLE_ABOVE = 250_000


def rows_in_window(con: duckdb.DuckDBPyConnection, start: Any = None, end: Any = None,
                   model_version: str | None = None, scanner_id: str | None = None) -> int:
    """Verdicts scored in [start, end) (whole UTC hours), from the hourly rollup: no scan of verdicts."""
    row = first(con, f"""
        SELECT coalesce(sum(n), 0) FROM verdict_hourly WHERE hour >= {_WINDOW[0]} AND hour < {_WINDOW[1]}
          AND ($model_version::VARCHAR IS NULL OR model_version = $model_version::VARCHAR)
          AND ($scanner_id::VARCHAR IS NULL OR scanner_id = $scanner_id::VARCHAR)""",
        {"start": start, "end": end, "model_version": model_version, "scanner_id": scanner_id})
    return int(row[0]) if row else 0


@named_query("score_samples")
def score_samples(con: duckdb.DuckDBPyConnection, class_name: str = "any_threat", start: Any = None,
                  end: Any = None, model_version: str | None = None, scanner_id: str | None = None,
                  limit: int = 20_000) -> pd.DataFrame:
    """Scores of one class (or `any_threat`) in a window: scored_at, scanner_id, model_version, score.

    At most `limit` rows, repeatable between calls: a uniform reservoir sample, or, above BLOCK_SAMPLE_ABOVE
    verdicts in the window, a sample of 2048-row blocks spread over the window (enough for histograms and PSI)."""
    score = "any_threat" if class_name == "any_threat" else "scores[$class_name]"
    where = f"""scored_at >= {_WINDOW[0]} AND scored_at < {_WINDOW[1]}
          AND ($model_version::VARCHAR IS NULL OR model_version = $model_version::VARCHAR)
          AND ($scanner_id::VARCHAR IS NULL OR scanner_id = $scanner_id::VARCHAR)"""
    params: dict[str, Any] = {"start": start, "end": end, "model_version": model_version, "scanner_id": scanner_id}
    n = rows_in_window(con, **params)
    if n > BLOCK_SAMPLE_ABOVE:
        percent = min(100.0, 120.0 * int(limit) / n)  # 20% spare: blocks straddle the window's edges
        sql = f"""SELECT scored_at, scanner_id, model_version, {score} AS score
                  FROM verdicts TABLESAMPLE {percent:.6f}% (system, 7)
                  WHERE {where} AND {score} IS NOT NULL LIMIT {int(limit)}"""
    else:
        sql = f"""SELECT * FROM (SELECT scored_at, scanner_id, model_version, {score} AS score FROM verdicts
                                 WHERE {where} AND {score} IS NOT NULL) AS w
                  USING SAMPLE reservoir({int(limit)} ROWS) REPEATABLE (7)"""
    if class_name != "any_threat":
        params["class_name"] = class_name
    return con.execute(sql, params).df().sort_values("scored_at", ignore_index=True)


@named_query("image_stats")
def image_stats(con: duckdb.DuckDBPyConnection, start: Any = None, end: Any = None,
                scanner_id: str | None = None) -> pd.DataFrame:
    """Per scanner: n and mean / p05 / p50 / p95 of each image statistic over scans received in the window."""
    stats = ["mean_attenuation", "noise_level", "dynamic_range", "organic_fraction", "inorganic_fraction",
             "metal_fraction"]
    cols = ", ".join(f"avg({s}) AS {s}_mean, quantile_cont({s}, [0.05, 0.5, 0.95]) AS {s}_q" for s in stats)
    sql = f"""
    SELECT scanner_id, count(*) AS n, {cols} FROM scans
    WHERE received_at >= {_WINDOW[0]} AND received_at < {_WINDOW[1]}
      AND ($scanner_id::VARCHAR IS NULL OR scanner_id = $scanner_id::VARCHAR)
    GROUP BY scanner_id ORDER BY scanner_id"""
    df = con.execute(sql, {"start": start, "end": end, "scanner_id": scanner_id}).df()
    for s in stats:  # split the quantile lists into plain columns
        q = df.pop(f"{s}_q")
        for i, name in enumerate(("p05", "p50", "p95")):
            df[f"{s}_{name}"] = [row[i] if row is not None else None for row in q]
    return df


@named_query("decision_outcomes")
def decision_outcomes(con: duckdb.DuckDBPyConnection, start: Any = None, end: Any = None) -> pd.DataFrame:
    """Final officer decisions in the window joined with the champion verdict the officer saw."""
    sql = f"""
    SELECT d.scan_id, d.officer, d.decision, d.threat_class, d.decided_at, v.model_version, v.scanner_id,
           v.verdict, v.any_threat, v.top_class, v.scored_at
    FROM final_decisions d JOIN verdicts v ON v.scan_id = d.scan_id AND v.model_version = d.model_version
    WHERE d.decided_at >= {_WINDOW[0]} AND d.decided_at < {_WINDOW[1]}
    ORDER BY d.decided_at"""
    return con.execute(sql, {"start": start, "end": end}).df()


@named_query("models")
def models(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """The model registry, oldest first."""
    return con.execute("SELECT * FROM models ORDER BY created_at, version").df()


@named_query("alerts")
def alerts(con: duckdb.DuckDBPyConnection, status: str | None = None, limit: int = 200) -> pd.DataFrame:
    """Alerts, newest first, optionally of one status."""
    return con.execute("SELECT * FROM alerts WHERE $status::VARCHAR IS NULL OR status = $status::VARCHAR "
                       "ORDER BY raised_at DESC LIMIT $limit", {"status": status, "limit": int(limit)}).df()


@named_query("audit_log")
def audit_log(con: duckdb.DuckDBPyConnection, limit: int = 200, actor: str | None = None,
              action: str | None = None) -> pd.DataFrame:
    """Audit rows, newest first, optionally of one actor and/or action."""
    return con.execute("SELECT * FROM audit_log WHERE ($actor::VARCHAR IS NULL OR actor = $actor::VARCHAR) AND "
                       "($action::VARCHAR IS NULL OR action = $action::VARCHAR) ORDER BY seq DESC, logged_at DESC "
                       "LIMIT $limit",
                       {"actor": actor, "action": action, "limit": int(limit)}).df()


@named_query("schema")
def schema(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Tables, views and their columns (for the SQL console's schema browser)."""
    return con.execute("SELECT table_name, column_name, data_type FROM information_schema.columns "
                       "WHERE table_catalog = current_database() AND table_schema = 'main' "
                       "ORDER BY table_name, ordinal_position").df()
