"""Labels domain: ground truth for training, appended never updated (the newest label per scan is current), the
relabel queue, the outcomes that realised accuracy is measured on, and the labelled set a training export takes.

Truth of a scan: its current label if any (non-empty = threat), else its final decision (confirmed/seized =
threat, cleared = benign). `refer` alone is not an outcome.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import duckdb
import pandas as pd

from store.audit import audit_row
from store.fetch import in_window
from store.ops import StoreConfig, read, write
from xscreen.errors import ConflictError, PermissionDenied
from xscreen.records import LabelRecord, Principal
from xscreen.roles import require_action

_VERDICT_FILTER = (f"{in_window('scored_at')} AND ($scanner_id::VARCHAR IS NULL OR scanner_id = $scanner_id) "
                   "AND ($model_version::VARCHAR IS NULL OR model_version = $model_version)")


def insert_label(cur: duckdb.DuckDBPyConnection, rec: LabelRecord) -> None:
    cur.execute("INSERT INTO labels VALUES (?, ?, ?, ?, ?, ?, ?)",
                [rec.label_id, rec.scan_id, rec.labels, rec.source, rec.author, rec.created_at, rec.note])


def _authors(kwargs: Mapping[str, Any]) -> list[tuple[str, Any]]:
    return [("a label's author", r.author) for r in kwargs.get("labels", []) if isinstance(r, LabelRecord)]


# The newest champion verdict of each scan in $ids, and whether it makes the scan a high-risk relabel item (its
# any-threat score at least $min, or its top class one of $classes): such items need two blind readings.
HIGH_RISK_SQL = """
SELECT scan_id, any_threat, top_class,
       coalesce(($min::DOUBLE IS NOT NULL AND any_threat >= $min::DOUBLE)
                OR list_contains($classes::VARCHAR[], top_class), false) AS double_read
FROM (SELECT scan_id, any_threat, top_class,
             row_number() OVER (PARTITION BY scan_id ORDER BY scored_at DESC, model_version DESC) AS rn
      FROM champion_verdicts WHERE list_contains($ids::VARCHAR[], scan_id))
WHERE rn = 1
"""


def high_risk(cur: duckdb.DuckDBPyConnection, scan_ids: list[str], cfg: StoreConfig) -> dict[str, bool]:
    """scan_id -> whether it needs two blind readings (labelling.double_read_*); scans without a champion verdict
    are absent."""
    rows = cur.execute(HIGH_RISK_SQL, {"ids": scan_ids, "min": cfg.double_read_min_score,
                                       "classes": list(cfg.double_read_classes)}).fetchall()
    return {r[0]: bool(r[3]) for r in rows}


def _adjudication_needs_a_supervisor(kwargs: Mapping[str, Any], principal: Principal) -> None:
    """A label with source `adjudication` settles a conflict: only roles that may adjudicate may write one."""
    if any(isinstance(r, LabelRecord) and r.source == "adjudication" for r in kwargs.get("labels", [])):
        require_action(principal.role, "adjudicate")


def _no_reader_adjudicates(cur: duckdb.DuckDBPyConnection, labels: list[LabelRecord]) -> None:
    """PermissionDenied for an `adjudication` label by someone who gave one of the scan's blind readings: the rule
    of store/readings.py `adjudicate` (nobody settles their own dispute) holds for this way in too."""
    adj = [r for r in labels if r.source == "adjudication"]
    if not adj:
        return
    rows = cur.execute("SELECT scan_id, reader_1, reader_2 FROM double_reads WHERE list_contains(?, scan_id)",
                       [[r.scan_id for r in adj]]).fetchall()
    readers = {r[0]: (r[1], r[2]) for r in rows}
    for r in adj:
        if r.author in readers.get(r.scan_id, ()):
            raise PermissionDenied(f"{r.author} read scan {r.scan_id}: another supervisor must adjudicate it")


@write(action="relabel", people=_authors, weight=lambda kw: len(kw["labels"]), check=_adjudication_needs_a_supervisor)
def add_labels(cur: duckdb.DuckDBPyConnection, labels: list[LabelRecord], *, now: datetime,
               cfg: StoreConfig) -> int:
    """Append labels (known label_ids are skipped); audit one row per author. Returns how many were new.

    A `relabel` label on a high-risk item (labelling.double_read_*) is refused (ConflictError): such items take
    two blind readings (`add_reading`, store/readings.py). Only a supervisor's session may add `adjudication`."""
    ids = [r.label_id for r in labels]
    known = {r[0] for r in cur.execute("SELECT label_id FROM labels WHERE list_contains(?, label_id)",
                                       [ids]).fetchall()} if ids else set()
    new = [r for r in labels if r.label_id not in known]
    relabels = sorted({r.scan_id for r in new if r.source == "relabel"})
    risky = [i for i, yes in high_risk(cur, relabels, cfg).items() if yes] if relabels else []
    if risky:
        raise ConflictError(f"{len(risky)} item(s) ({', '.join(sorted(risky)[:5])}) are high risk and need two blind "
                            "readings by different people: record a reading instead of a label")
    _no_reader_adjudicates(cur, new)
    for rec in new:
        insert_label(cur, rec)
    for author in sorted({r.author for r in new}):
        mine = [r.scan_id for r in new if r.author == author]
        audit_row(cur, now, author, "relabel", mine[0] if len(mine) == 1 else None, scans=mine[:100], n=len(mine))
    return len(new)


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


@read()
def relabel_queue(cur: duckdb.DuckDBPyConnection, limit: int = 100) -> pd.DataFrame:
    """Items whose labels help the model most: officer/model disagreements first, then uncertain ones nearest 0.5."""
    return cur.execute(RELABEL_SQL, {"limit": int(limit)}).df().drop(columns=["priority_group"])


@read()
def borderline_cleared(cur: duckdb.DuckDBPyConnection, limit: int = 100) -> pd.DataFrame:
    """AI-cleared scans nobody has looked at (no decision, no label; canaries excluded) nearest their clear
    threshold first: where the model's misses are likeliest, and where no officer decision ever labels an item.
    scan_id, scanner_id, model_version, verdict, any_threat, top_class, margin (clear threshold - score)."""
    return cur.execute("""
        SELECT v.scan_id, v.scanner_id, v.model_version, v.verdict, v.any_threat, v.top_class,
               coalesce(TRY_CAST(json_extract_string(v.thresholds, '$.any_threat.clear') AS DOUBLE), 1.0)
                   - v.any_threat AS margin
        FROM champion_verdicts v JOIN scans s USING (scan_id) LEFT JOIN current_labels l USING (scan_id)
        WHERE v.verdict = 'clear' AND l.scan_id IS NULL AND NOT s.is_canary
          AND v.scan_id NOT IN (SELECT scan_id FROM decisions)
        ORDER BY margin, v.scored_at DESC, v.scan_id LIMIT $limit""", {"limit": int(limit)}).df()


@read()
def random_unlabelled(cur: duckdb.DuckDBPyConnection, limit: int = 10, seed: str = "") -> pd.DataFrame:
    """A uniform random slice of champion-scored scans without a label (canaries excluded), the same slice for
    the same `seed` (e.g. the day): scan_id, scanner_id, model_version, verdict, any_threat, top_class."""
    return cur.execute("""
        SELECT v.scan_id, v.scanner_id, v.model_version, v.verdict, v.any_threat, v.top_class
        FROM champion_verdicts v JOIN scans s USING (scan_id) LEFT JOIN current_labels l USING (scan_id)
        WHERE l.scan_id IS NULL AND NOT s.is_canary
        ORDER BY hash(v.scan_id || $seed), v.scan_id LIMIT $limit""", {"limit": int(limit), "seed": seed}).df()


@read()
def labelled_outcomes(cur: duckdb.DuckDBPyConnection, start: Any = None, end: Any = None,
                      scanner_id: str | None = None, model_version: str | None = None) -> pd.DataFrame:
    """Champion verdicts whose truth is known: flagged, any_threat, final decision, current labels, is_threat."""
    return cur.execute(f"""
        SELECT v.scan_id, v.scanner_id, v.model_version, v.verdict, v.any_threat,
               v.verdict IN ('inspect', 'uncertain') AS flagged, d.decision, l.labels,
               coalesce(len(l.labels) > 0, d.decision IN ('confirmed', 'seized')) AS is_threat
        FROM (SELECT * FROM champion_verdicts WHERE {_VERDICT_FILTER}) v
        LEFT JOIN final_decisions d USING (scan_id) LEFT JOIN current_labels l USING (scan_id)
        WHERE d.decision IS NOT NULL OR l.labels IS NOT NULL ORDER BY v.scored_at""",
        {"start": start, "end": end, "scanner_id": scanner_id, "model_version": model_version}).df()


@read(action="export_training_set")
def training_labels(cur: duckdb.DuckDBPyConnection, limit: int = 100_000) -> pd.DataFrame:
    """Every scan with a current label (canaries excluded), except scans whose two blind readings disagree and no
    supervisor has adjudicated yet (view double_reads: the truth is in dispute, so no label of it trains a
    model): scan_id, scanner_id, source_path (where its image is now, or was when it expired), labels, source,
    created_at."""
    return cur.execute("""
        SELECT l.scan_id, s.scanner_id, i.path AS source_path, l.labels, l.source, l.created_at
        FROM current_labels l JOIN scans s USING (scan_id) JOIN scan_images i USING (scan_id) WHERE NOT s.is_canary
          AND l.scan_id NOT IN (SELECT scan_id FROM double_reads WHERE status = 'disputed')
        ORDER BY l.created_at LIMIT $limit""", {"limit": int(limit)}).df()


@read()
def sampling_embeddings(cur: duckdb.DuckDBPyConnection, start: Any, split: Any, end: Any,
                        per_window: int = 2000) -> pd.DataFrame:
    """What the diversity policy compares (analytics.diversity): real-mail champion verdicts of the model that
    scored the newest one in [split, end), in two windows: `reference` = scored in [start, split), `recent` =
    scored in [split, end) and not labelled. At most `per_window` of each, a fixed pseudo-random sample (by hash
    of scan id). Embeddings of one model only: two models' embeddings are different spaces. Columns: window,
    scan_id, scanner_id, model_version, verdict, any_threat, top_class, embedding."""
    return cur.execute("""
        WITH m AS (SELECT arg_max(model_version, scored_at) AS v FROM champion_verdicts
                   WHERE scored_at >= $split::TIMESTAMPTZ AND scored_at < $end::TIMESTAMPTZ),
        w AS (SELECT CASE WHEN v.scored_at >= $split::TIMESTAMPTZ THEN 'recent' ELSE 'reference' END AS "window",
                     v.scan_id, v.scanner_id, v.model_version, v.verdict, v.any_threat, v.top_class, v.embedding
              FROM champion_verdicts v JOIN scans s USING (scan_id) LEFT JOIN current_labels l USING (scan_id)
              WHERE v.model_version = (SELECT v FROM m) AND NOT s.is_canary AND len(v.embedding) > 0
                AND v.scored_at >= $start::TIMESTAMPTZ AND v.scored_at < $end::TIMESTAMPTZ
                AND (v.scored_at < $split::TIMESTAMPTZ OR l.scan_id IS NULL))
        SELECT * FROM w QUALIFY row_number() OVER (PARTITION BY "window" ORDER BY hash(scan_id), scan_id) <= $n
        ORDER BY "window", scan_id""",
        {"start": start, "split": split, "end": end, "n": int(per_window)}).df()
