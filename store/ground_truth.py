"""Ground-truth domain: the random audit of AI-cleared mail and known-answer canaries, the monitoring's unbiased
views of accuracy (docs/MONITORING.md).

Audit. When the writer stores new champion `clear` verdicts, it draws each for audit with its stratum's pi
(store/audit_sampling.py); a drawn item is recorded in `audit_selections` with that pi and joins the officers'
queue (`queue_pending`) exactly as a flagged item does: officers see no verdict text, so they cannot tell. Its
outcome is the officer's label, so `audit_outcomes` gives the Horvitz-Thompson inputs (outcome, pi) and
`cleared_counts` the cleared mail they stand for.

Canaries. Serving scores a threat projected into a live benign scan and records the result here
(`record_canaries`); nothing of a canary enters scans, verdicts or the queue, so volume, flag-rate and drift
statistics never count it. `canary_outcomes` is the one query behind the canary detection rate per class and
scanner.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from store.audit_sampling import AuditDesign
from store.fetch import in_window, over_arrow, scalar
from store.ops import read, write
from store.wire import TS
from xscreen.records import CanaryRecord

AUDIT_INSERT = ("INSERT INTO audit_selections BY NAME SELECT * FROM _a ON CONFLICT (scan_id) DO NOTHING "
                "RETURNING scan_id")
AUDIT_QUEUE_INSERT = (  # an audited item waits in the queue like a flagged one (its verdict text is never shown)
    "INSERT INTO queue_pending BY NAME SELECT n.scan_id, n.model_version, n.scanner_id, n.verdict, n.any_threat, "
    "n.top_class, n.scored_at FROM _n n SEMI JOIN _r r ON n.scan_id = r.scan_id ON CONFLICT (scan_id) DO NOTHING")


def select_audits(cur: duckdb.DuckDBPyConnection, new: pa.Table, design: AuditDesign, now: datetime) -> int:
    """Draw the new champion `clear` verdicts (the writer's RETURNING rows) for audit, inside the writer's
    transaction; record the drawn ones with their pi and queue them. Returns how many were drawn.

    Only the columns the draw needs are turned into Python objects (~4 us per cleared verdict, measured: see
    docs/BENCHMARKS.md, Store); the drawn rows stay Arrow."""
    keep = pc.and_(pc.equal(new.column("role"), "champion"), pc.equal(new.column("verdict"), "clear"))
    cleared = new.filter(keep)
    if cleared.num_rows == 0:
        return 0
    strata = [design.stratum(scanner, score) for scanner, score in
              zip(cleared.column("scanner_id").to_pylist(), cleared.column("any_threat").to_pylist(), strict=True)]
    pi_of = {s: design.inclusion(s) for s in set(strata)}
    pis = [pi_of[s] for s in strata]
    drawn = [pi > 0 and design.drawn(scan_id, pi)
             for scan_id, pi in zip(cleared.column("scan_id").to_pylist(), pis, strict=True)]
    if not any(drawn):
        return 0
    mask = pa.array(drawn)
    picked = cleared.select(["scan_id", "model_version", "scanner_id", "any_threat", "scored_at"]).filter(mask)
    picked = (picked.append_column("stratum", pa.array(strata, pa.string()).filter(mask))
              .append_column("inclusion", pa.array(pis, pa.float64()).filter(mask))
              .append_column("selected_at", pa.array([now] * picked.num_rows, TS)))
    returned = over_arrow(cur, AUDIT_INSERT, _a=picked)
    if returned.num_rows:
        over_arrow(cur, AUDIT_QUEUE_INSERT, _n=cleared, _r=returned)
    return int(returned.num_rows)


# One row per audited item: its pi and, once an officer (or an adjudicator) labelled it, whether it held a threat.
AUDIT_OUTCOMES_SQL = f"""
SELECT a.scan_id, a.scanner_id, a.model_version, a.stratum, a.inclusion, a.any_threat, a.scored_at, a.selected_at,
       l.scan_id IS NOT NULL AS decided,
       CASE WHEN l.scan_id IS NULL THEN NULL ELSE len(l.labels) > 0 END AS is_threat,
       l.labels, l.source AS label_source, l.created_at AS labelled_at
FROM audit_selections a LEFT JOIN current_labels l USING (scan_id)
WHERE {in_window("a.scored_at")} AND ($scanner_id::VARCHAR IS NULL OR a.scanner_id = $scanner_id::VARCHAR)
ORDER BY a.scored_at, a.scan_id
"""


@read(action="read_ground_truth")
def audit_outcomes(cur: duckdb.DuckDBPyConnection, start: Any = None, end: Any = None,
                   scanner_id: str | None = None) -> pd.DataFrame:
    """Audited cleared items whose verdict was scored in [start, end) (default: the last 7 days): scan_id,
    scanner_id, model_version, stratum, inclusion (pi), any_threat, scored_at, selected_at, decided, is_threat
    (None until labelled), labels, label_source, labelled_at. Feed the decided rows' is_threat and inclusion to
    analytics.monitoring.estimation.audit_estimate with n_cleared from `cleared_counts`."""
    return cur.execute(AUDIT_OUTCOMES_SQL, {"start": start, "end": end, "scanner_id": scanner_id}).df()


@read(action="read_ground_truth")
def cleared_counts(cur: duckdb.DuckDBPyConnection, start: Any = None, end: Any = None) -> pd.DataFrame:
    """AI-cleared champion verdicts scored in [start, end) per scanner (scanner_id, n_cleared): the population the
    audit samples from."""
    return cur.execute(f"""SELECT scanner_id, count(*) AS n_cleared FROM champion_verdicts
                           WHERE verdict = 'clear' AND {in_window("scored_at")} GROUP BY scanner_id
                           ORDER BY scanner_id""", {"start": start, "end": end}).df()


@write(process_only=True, weight=lambda kw: len(kw["canaries"]))
def record_canaries(cur: duckdb.DuckDBPyConnection, canaries: list[CanaryRecord]) -> int:
    """Store canary results (serving); known canary_ids are skipped. Returns how many were new."""
    if not canaries:
        return 0
    before = int(scalar(cur, "SELECT count(*) FROM canaries"))
    rows = pa.Table.from_pylist([{**c.model_dump(), "detected": c.detected} for c in canaries])
    over_arrow(cur, "INSERT INTO canaries BY NAME SELECT * FROM _c ON CONFLICT (canary_id) DO NOTHING", _c=rows)
    return int(scalar(cur, "SELECT count(*) FROM canaries")) - before


@read(action="read_ground_truth")
def canary_outcomes(cur: duckdb.DuckDBPyConnection, start: Any = None, end: Any = None,
                    scanner_id: str | None = None) -> pd.DataFrame:
    """Canaries scored in [start, end) (default: the last 7 days), oldest first: canary_id, scanner_id,
    source_scan_id, class_name, article, model_version, verdict, any_threat, class_score, detected, scored_at.
    analytics.monitoring.canary.canary_detection(frame) gives the detection rate per scanner and class."""
    return cur.execute(f"""SELECT * FROM canaries WHERE {in_window("scored_at")}
                           AND ($scanner_id::VARCHAR IS NULL OR scanner_id = $scanner_id::VARCHAR)
                           ORDER BY scored_at, canary_id""",
                       {"start": start, "end": end, "scanner_id": scanner_id}).df()
