"""Named queries used by the dashboard pages (registered with @named_query; owned by the app engineer)."""

from __future__ import annotations

from typing import Any

import duckdb
import pandas as pd

from store.queries import named_query

# Windows are [start, end) as ISO-8601 UTC strings or datetimes; a None filter means "all". Samples keep the
# pages fast at millions of verdicts and REPEATABLE keeps them stable between refreshes; sample sizes are
# int()-ed into the SQL because DuckDB accepts only constants there.

_VERDICT_FILTER = ("scored_at >= ?::TIMESTAMPTZ AND scored_at < ?::TIMESTAMPTZ "
                   "AND (?::VARCHAR IS NULL OR scanner_id = ?) AND (?::VARCHAR IS NULL OR model_version = ?)")


def _window(start: Any, end: Any, scanner_id: str | None, model_version: str | None) -> list[Any]:
    return [start, end, scanner_id, scanner_id, model_version, model_version]


@named_query("class_score_sample")
def class_score_sample(con: duckdb.DuckDBPyConnection, start: Any, end: Any, scanner_id: str | None = None,
                       model_version: str | None = None, limit: int = 20000) -> pd.DataFrame:
    """Every class's score (plus any_threat) of up to `limit` sampled champion verdicts, long form: class_name, score.

    One call for all classes (score_samples in store.queries returns one class per call)."""
    return con.execute(f"""
        WITH s AS (SELECT scan_id, any_threat, scores FROM champion_verdicts WHERE {_VERDICT_FILTER}
                   USING SAMPLE reservoir({int(limit)} ROWS) REPEATABLE (7))
        SELECT 'any_threat' AS class_name, any_threat AS score FROM s
        UNION ALL
        SELECT unnest(map_keys(scores)) AS class_name, unnest(map_values(scores)) AS score FROM s""",
        _window(start, end, scanner_id, model_version)).df()


@named_query("labelled_outcomes")
def labelled_outcomes(con: duckdb.DuckDBPyConnection, start: Any, end: Any, scanner_id: str | None = None,
                      model_version: str | None = None) -> pd.DataFrame:
    """Champion verdicts whose truth is known: flagged, any_threat, final decision, current labels, is_threat.

    Truth: the current label if any (non-empty = threat), else the final decision (confirmed/seized = threat,
    cleared = benign). `refer` alone is not an outcome, so such scans are left out.
    """
    return con.execute(f"""
        SELECT v.scan_id, v.scanner_id, v.model_version, v.verdict, v.any_threat,
               v.verdict IN ('inspect', 'uncertain') AS flagged, d.decision, l.labels,
               coalesce(len(l.labels) > 0, d.decision IN ('confirmed', 'seized')) AS is_threat
        FROM (SELECT * FROM champion_verdicts WHERE {_VERDICT_FILTER}) v
        LEFT JOIN final_decisions d USING (scan_id) LEFT JOIN current_labels l USING (scan_id)
        WHERE d.decision IS NOT NULL OR l.labels IS NOT NULL ORDER BY v.scored_at""",
        _window(start, end, scanner_id, model_version)).df()


@named_query("champion_shadow")
def champion_shadow(con: duckdb.DuckDBPyConnection, start: Any, end: Any, limit: int = 5000) -> pd.DataFrame:
    """Scans scored by both the champion and a shadow: any-threat scores and verdicts side by side."""
    return con.execute("""
        SELECT c.scan_id, s.model_version AS shadow_version, c.any_threat AS champion, s.any_threat AS shadow,
               c.verdict AS champion_verdict, s.verdict AS shadow_verdict
        FROM verdicts c JOIN verdicts s ON c.scan_id = s.scan_id AND s.role = 'shadow'
        WHERE c.role = 'champion' AND c.scored_at >= ?::TIMESTAMPTZ AND c.scored_at < ?::TIMESTAMPTZ
        ORDER BY c.scored_at DESC LIMIT ?""", [start, end, int(limit)]).df()


@named_query("verdicts_by_day")
def verdicts_by_day(con: duckdb.DuckDBPyConnection, start: Any, end: Any) -> pd.DataFrame:
    """Champion verdicts per UTC day, scanner and top class: n and flagged."""
    return con.execute("""
        SELECT CAST(timezone('UTC', scored_at) AS DATE) AS day, scanner_id, coalesce(top_class, 'none') AS top_class,
               count(*) AS n, count(*) FILTER (WHERE verdict IN ('inspect', 'uncertain')) AS flagged
        FROM champion_verdicts WHERE scored_at >= ?::TIMESTAMPTZ AND scored_at < ?::TIMESTAMPTZ
        GROUP BY ALL ORDER BY day, scanner_id, top_class""", [start, end]).df()


@named_query("filter_options")
def filter_options(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Distinct scanner ids and model versions seen in verdicts: columns kind ('scanner'|'model'), value."""
    return con.execute("""
        SELECT DISTINCT 'scanner' AS kind, scanner_id AS value FROM verdicts WHERE scanner_id IS NOT NULL
        UNION SELECT DISTINCT 'model', model_version FROM verdicts ORDER BY kind, value""").df()


@named_query("training_labels")
def training_labels(con: duckdb.DuckDBPyConnection, limit: int = 100_000) -> pd.DataFrame:
    """Every scan with a current label (canaries excluded): scan_id, source_path, labels, source, created_at."""
    return con.execute("""
        SELECT l.scan_id, s.source_path, l.labels, l.source, l.created_at
        FROM current_labels l JOIN scans s USING (scan_id) WHERE NOT s.is_canary
        ORDER BY l.created_at LIMIT ?""", [int(limit)]).df()
