"""The store's schema history: numbered, append-only migrations and `migrate()`, which applies the missing ones.

Never edit a step that has shipped; add a new one. `migrate()` refuses a database newer than this code and a
file that is not an xscreen database, in both cases without writing to it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from store.fetch import first
from xscreen.errors import SchemaError, StoreError

log = logging.getLogger(__name__)

VERSION_TABLE = "xscreen_schema"
DUCKDB_MAGIC = b"DUCK"  # bytes 8..12 of every DuckDB database file
HEADER_SIZE = 4096  # a main header and two database headers precede the data blocks

Step = Callable[[duckdb.DuckDBPyConnection], None] | str

# Migration 1 is the original schema. Times are TIMESTAMPTZ (UTC); free-form dicts are JSON; per-class scores are
# a MAP so `scores['knife']` is one lookup; embeddings are FLOAT[] for list_cosine_similarity.
_M1_ORIGINAL = """
CREATE TABLE xscreen_schema (version INTEGER PRIMARY KEY, name VARCHAR NOT NULL, applied_at TIMESTAMPTZ NOT NULL);
CREATE TABLE ingest_batches (
    batch_id VARCHAR PRIMARY KEY, received_at TIMESTAMPTZ NOT NULL,
    n_scans INTEGER NOT NULL, n_verdicts INTEGER NOT NULL, n_quarantines INTEGER NOT NULL);
CREATE TABLE scans (
    scan_id VARCHAR PRIMARY KEY, sha256 VARCHAR NOT NULL UNIQUE, scanner_id VARCHAR NOT NULL, item_id VARCHAR,
    source_path VARCHAR NOT NULL, file_format VARCHAR NOT NULL, width INTEGER NOT NULL, height INTEGER NOT NULL,
    bit_depth INTEGER NOT NULL, dual_energy BOOLEAN NOT NULL, received_at TIMESTAMPTZ NOT NULL,
    scanned_at TIMESTAMPTZ, declared_contents JSON,
    mean_attenuation DOUBLE, noise_level DOUBLE, dynamic_range DOUBLE,
    organic_fraction DOUBLE, inorganic_fraction DOUBLE, metal_fraction DOUBLE,
    is_canary BOOLEAN NOT NULL, canary_labels VARCHAR[], batch_id VARCHAR);
CREATE TABLE verdicts (
    scan_id VARCHAR NOT NULL, model_version VARCHAR NOT NULL, role VARCHAR NOT NULL, scanner_id VARCHAR,
    verdict VARCHAR NOT NULL, any_threat DOUBLE NOT NULL, scores MAP(VARCHAR, DOUBLE) NOT NULL,
    top_class VARCHAR, thresholds JSON, embedding FLOAT[], heatmap_size INTEGER NOT NULL,
    scored_at TIMESTAMPTZ NOT NULL, latency_ms DOUBLE, batch_id VARCHAR,
    PRIMARY KEY (scan_id, model_version));
CREATE TABLE heatmaps (
    scan_id VARCHAR NOT NULL, model_version VARCHAR NOT NULL, class_name VARCHAR NOT NULL,
    size INTEGER NOT NULL, grid VARCHAR, peak_box DOUBLE[]);
CREATE TABLE quarantine (
    quarantine_id VARCHAR PRIMARY KEY, sha256 VARCHAR, scanner_id VARCHAR, source_path VARCHAR NOT NULL,
    quarantined_path VARCHAR, reason_code VARCHAR NOT NULL, reason VARCHAR NOT NULL,
    quarantined_at TIMESTAMPTZ NOT NULL, batch_id VARCHAR);
CREATE TABLE decisions (
    decision_id VARCHAR PRIMARY KEY, scan_id VARCHAR NOT NULL, officer VARCHAR NOT NULL, decision VARCHAR NOT NULL,
    threat_class VARCHAR, note VARCHAR, decided_at TIMESTAMPTZ NOT NULL, model_version VARCHAR);
CREATE TABLE labels (
    label_id VARCHAR PRIMARY KEY, scan_id VARCHAR NOT NULL, labels VARCHAR[] NOT NULL, source VARCHAR NOT NULL,
    author VARCHAR NOT NULL, created_at TIMESTAMPTZ NOT NULL, note VARCHAR);
CREATE TABLE claims (
    scan_id VARCHAR NOT NULL, officer VARCHAR NOT NULL, claimed_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL);
CREATE TABLE models (
    version VARCHAR PRIMARY KEY, parent VARCHAR, state VARCHAR NOT NULL, created_at TIMESTAMPTZ NOT NULL,
    classes VARCHAR[] NOT NULL, architecture JSON, train_manifest_sha256 VARCHAR, metrics JSON, thresholds JSON,
    calibration JSON, weights_path VARCHAR, weights_sha256 VARCHAR);
CREATE TABLE model_events (
    event_id VARCHAR NOT NULL, version VARCHAR NOT NULL, from_state VARCHAR, to_state VARCHAR NOT NULL,
    actor VARCHAR NOT NULL, reason VARCHAR, changed_at TIMESTAMPTZ NOT NULL);
CREATE TABLE measurements (
    measurement_id VARCHAR PRIMARY KEY, measured_at TIMESTAMPTZ NOT NULL, kind VARCHAR NOT NULL,
    scanner_id VARCHAR, model_version VARCHAR, window_start TIMESTAMPTZ, window_end TIMESTAMPTZ,
    value DOUBLE NOT NULL, details JSON);
CREATE TABLE alerts (
    alert_id VARCHAR PRIMARY KEY, raised_at TIMESTAMPTZ NOT NULL, severity VARCHAR NOT NULL, kind VARCHAR NOT NULL,
    message VARCHAR NOT NULL, status VARCHAR NOT NULL, details JSON);
CREATE TABLE audit_log (
    audit_id VARCHAR NOT NULL, logged_at TIMESTAMPTZ NOT NULL, actor VARCHAR NOT NULL, action VARCHAR NOT NULL,
    target VARCHAR, details JSON);
CREATE TABLE users (
    username VARCHAR PRIMARY KEY, password_hash VARCHAR NOT NULL, role VARCHAR NOT NULL,
    disabled BOOLEAN NOT NULL, created_at TIMESTAMPTZ NOT NULL);
CREATE TABLE settings_kv (key VARCHAR PRIMARY KEY, value JSON, updated_at TIMESTAMPTZ NOT NULL, updated_by VARCHAR);
"""

# Migration 2: views analysts and the app read instead of re-deriving "current" state from event rows.
_M2_VIEWS = """
CREATE VIEW current_labels AS
    SELECT * EXCLUDE (rn) FROM (
        SELECT *, row_number() OVER (PARTITION BY scan_id ORDER BY created_at DESC, label_id DESC) AS rn FROM labels)
    WHERE rn = 1;
CREATE VIEW final_decisions AS
    SELECT * EXCLUDE (rn) FROM (
        SELECT *, row_number() OVER (PARTITION BY scan_id ORDER BY decided_at DESC, decision_id DESC) AS rn
        FROM decisions WHERE decision <> 'refer')
    WHERE rn = 1;
CREATE VIEW champion_verdicts AS SELECT * FROM verdicts WHERE role = 'champion';
"""


def _m3_alert_history(con: duckdb.DuckDBPyConnection) -> None:
    """Alerts learn who changed their status and when (existing rows: the raise time, nobody)."""
    con.execute("ALTER TABLE alerts ADD COLUMN updated_at TIMESTAMPTZ")
    con.execute("ALTER TABLE alerts ADD COLUMN updated_by VARCHAR")
    con.execute("UPDATE alerts SET updated_at = raised_at")


# Migration 4: point lookups by scan (the triage page's get_scan) probe an index instead of scanning verdicts.
_M4_INDEXES = """
CREATE INDEX verdicts_scan_id ON verdicts (scan_id);
CREATE INDEX heatmaps_scan_id ON heatmaps (scan_id);
CREATE INDEX labels_scan_id ON labels (scan_id);
CREATE INDEX decisions_scan_id ON decisions (scan_id);
"""

# Migration 5: two small tables the writer keeps in step with verdicts/decisions, so the two hottest dashboard
# reads cost the same at 10M verdicts as at 10k: the officers' queue reads only items still waiting, and volume /
# flag-rate charts read hourly counts. Back-filled from the rows already stored.
_M5_TABLES = """
CREATE TABLE queue_pending (
    scan_id VARCHAR PRIMARY KEY, model_version VARCHAR NOT NULL, scanner_id VARCHAR, verdict VARCHAR NOT NULL,
    any_threat DOUBLE NOT NULL, top_class VARCHAR, scored_at TIMESTAMPTZ NOT NULL);
CREATE TABLE verdict_hourly (
    hour TIMESTAMPTZ NOT NULL, scanner_id VARCHAR NOT NULL, model_version VARCHAR NOT NULL, role VARCHAR NOT NULL,
    verdict VARCHAR NOT NULL, n BIGINT NOT NULL, PRIMARY KEY (hour, scanner_id, model_version, role, verdict));
"""
# Used by migration 5 and by rebuild_rollups(): a change here changes what migration 5 did, so don't; add a step.
_FILL_ROLLUPS = """
INSERT INTO queue_pending
    SELECT scan_id, arg_max(model_version, scored_at), arg_max(scanner_id, scored_at), arg_max(verdict, scored_at),
           arg_max(any_threat, scored_at), arg_max(top_class, scored_at), max(scored_at)
    FROM verdicts
    WHERE role = 'champion' AND verdict IN ('inspect', 'uncertain')
      AND scan_id NOT IN (SELECT scan_id FROM decisions WHERE decision <> 'refer')
    GROUP BY scan_id;
INSERT INTO verdict_hourly
    SELECT date_trunc('hour', scored_at), coalesce(scanner_id, ''), model_version, role, verdict, count(*)
    FROM verdicts GROUP BY ALL;
"""


def _m5_rollups(con: duckdb.DuckDBPyConnection) -> None:
    _apply(con, _M5_TABLES)
    _apply(con, _FILL_ROLLUPS)


def rebuild_rollups(con: duckdb.DuckDBPyConnection) -> None:
    """Re-derive queue_pending and verdict_hourly from verdicts/decisions (after bulk loads done in plain SQL)."""
    con.execute("DELETE FROM queue_pending")
    con.execute("DELETE FROM verdict_hourly")
    _apply(con, _FILL_ROLLUPS)
    has_audits = first(con, "SELECT 1 FROM information_schema.tables WHERE table_name = 'audit_selections'")
    if has_audits:  # items drawn for audit and not decided yet wait in the queue too (by table: the step may move)
        con.execute("""INSERT INTO queue_pending
            SELECT v.scan_id, v.model_version, v.scanner_id, v.verdict, v.any_threat, v.top_class, v.scored_at
            FROM audit_selections a JOIN verdicts v ON v.scan_id = a.scan_id AND v.model_version = a.model_version
            WHERE a.scan_id NOT IN (SELECT scan_id FROM decisions WHERE decision <> 'refer')
            ON CONFLICT (scan_id) DO NOTHING""")


# Migration 6: bearer tokens of sessions and scanner clients, kept only as sha256 hashes (store/tokens.py).
_M6_TOKENS = """
CREATE TABLE auth_tokens (
    token_sha256 VARCHAR PRIMARY KEY, token_id VARCHAR NOT NULL UNIQUE, kind VARCHAR NOT NULL,
    username VARCHAR, scanner_id VARCHAR, created_at TIMESTAMPTZ NOT NULL, last_seen_at TIMESTAMPTZ,
    expires_at TIMESTAMPTZ, revoked_at TIMESTAMPTZ, revoked_by VARCHAR);
"""

def _m7_audit_chain(con: duckdb.DuckDBPyConnection) -> None:
    """The audit log becomes a hash chain (store/audit_chain.py): existing rows are chained in the order
    they were written, and audit_head holds the last link."""
    from store.audit_chain import chain_existing

    for column, kind in (("seq", "BIGINT"), ("prev_hash", "VARCHAR"), ("row_hash", "VARCHAR")):
        con.execute(f"ALTER TABLE audit_log ADD COLUMN {column} {kind}")
    con.execute("CREATE TABLE audit_head (id INTEGER PRIMARY KEY, seq BIGINT NOT NULL, row_hash VARCHAR NOT NULL)")
    chain_existing(con)


# Migration 8: where each scan's image is now. A scan's image is at `scans.source_path` (where serving filed it)
# until an event says otherwise: kept elsewhere (a move the record did not foresee) or expired (deleted under
# retention). Appended, never updated; `scan_images` resolves the current state of every scan.
_M8_IMAGES = """
CREATE TABLE image_events (
    scan_id VARCHAR NOT NULL, changed_at TIMESTAMPTZ NOT NULL, state VARCHAR NOT NULL, path VARCHAR, reason VARCHAR);
CREATE INDEX image_events_scan_id ON image_events (scan_id);
CREATE VIEW scan_images AS
    SELECT s.scan_id, coalesce(e.state, 'kept') AS state,
           CASE WHEN e.scan_id IS NULL THEN s.source_path ELSE e.path END AS path,
           coalesce(e.changed_at, s.received_at) AS since, e.reason
    FROM scans s LEFT JOIN (
        SELECT * EXCLUDE (rn) FROM (
            SELECT *, row_number() OVER (PARTITION BY scan_id ORDER BY changed_at DESC, state = 'expired' DESC) AS rn
            FROM image_events)
        WHERE rn = 1) e USING (scan_id);
"""

# Migration 9: the thresholds in force live in one place, the champion's (or shadow's) `models` row, versioned by
# `thresholds_version` so serving applies a change without reloading weights. The copies in settings_kv
# (`champion`, `thresholds`), written on promotion and read by nobody, go.
_M9_THRESHOLDS_VERSION = """
ALTER TABLE models ADD COLUMN thresholds_version INTEGER DEFAULT 1;
UPDATE models SET thresholds_version = 1;
DELETE FROM settings_kv WHERE key IN ('champion', 'thresholds');
"""

# Migration 10: the promotion gate's reports (a candidate against the champion on the same items), kept whole.
_M10_GATE_REPORTS = """
CREATE TABLE gate_reports (
    report_id VARCHAR PRIMARY KEY, candidate VARCHAR NOT NULL, champion VARCHAR NOT NULL,
    created_at TIMESTAMPTZ NOT NULL, actor VARCHAR NOT NULL, passed BOOLEAN NOT NULL, report JSON NOT NULL);
CREATE INDEX gate_reports_candidate ON gate_reports (candidate);
"""

# Migration 11: the monitoring's ground truth. `audit_selections`: each AI-cleared champion verdict the random audit
# sent to officers, with the stratum and the inclusion probability pi it was drawn with (store/audit_sampling.py),
# the verdict's scored_at and when the writer drew it,
# so the Horvitz-Thompson estimate never has to guess a past rate. `canaries`: known-answer items (a library threat
# projected into a live benign scan, scored by the live model), kept apart from scans and verdicts so they never
# count as mail in volume, flag-rate or drift statistics.
_M11_GROUND_TRUTH = """
CREATE TABLE audit_selections (
    scan_id VARCHAR PRIMARY KEY, model_version VARCHAR NOT NULL, scanner_id VARCHAR, stratum VARCHAR NOT NULL,
    inclusion DOUBLE NOT NULL, any_threat DOUBLE NOT NULL, scored_at TIMESTAMPTZ NOT NULL,
    selected_at TIMESTAMPTZ NOT NULL);
CREATE TABLE canaries (
    canary_id VARCHAR PRIMARY KEY, scanner_id VARCHAR NOT NULL, source_scan_id VARCHAR NOT NULL,
    class_name VARCHAR NOT NULL, article VARCHAR, model_version VARCHAR NOT NULL, verdict VARCHAR NOT NULL,
    any_threat DOUBLE NOT NULL, class_score DOUBLE, detected BOOLEAN NOT NULL, scored_at TIMESTAMPTZ NOT NULL);
CREATE INDEX canaries_scored_at ON canaries (scored_at);
"""

# Migration 12: blind double reading of high-risk relabel items (store/readings.py). `readings`: one person's
# independent label of one scan, at most two per scan by two people, never shown to the other reader. The view
# `double_reads` pairs them per scan (the first and the second, numbered by the writer) with the newest adjudication label and resolves
# the status: awaiting the second reading, agreed (the store then appends a `double_read` label), disputed (two
# readings differ and no adjudication came after the second: the item waits for a supervisor, and the training
# export leaves it out), or adjudicated.
_M12_READINGS = """
CREATE TABLE readings (
    reading_id VARCHAR PRIMARY KEY, scan_id VARCHAR NOT NULL, reading INTEGER NOT NULL, reader VARCHAR NOT NULL,
    labels VARCHAR[] NOT NULL, note VARCHAR, read_at TIMESTAMPTZ NOT NULL, UNIQUE (scan_id, reading));
CREATE VIEW double_reads AS
    WITH adj AS (SELECT * EXCLUDE (rn) FROM (
                SELECT scan_id, labels, author, created_at,
                       row_number() OVER (PARTITION BY scan_id ORDER BY created_at DESC, label_id DESC) AS rn
                FROM labels WHERE source = 'adjudication') WHERE rn = 1)
    SELECT a.scan_id, a.reader AS reader_1, a.labels AS labels_1, a.note AS note_1, a.read_at AS read_at_1,
           b.reader AS reader_2, b.labels AS labels_2, b.note AS note_2, b.read_at AS read_at_2,
           CASE WHEN adj.created_at >= b.read_at THEN adj.labels END AS adjudicated_labels,
           CASE WHEN adj.created_at >= b.read_at THEN adj.author END AS adjudicator,
           CASE WHEN adj.created_at >= b.read_at THEN adj.created_at END AS adjudicated_at,
           CASE WHEN b.scan_id IS NULL THEN 'awaiting second reading'
                WHEN list_sort(a.labels) = list_sort(b.labels) THEN 'agreed'
                WHEN adj.created_at >= b.read_at THEN 'adjudicated'
                ELSE 'disputed' END AS status
    FROM (SELECT * FROM readings WHERE reading = 1) a
    LEFT JOIN (SELECT * FROM readings WHERE reading = 2) b USING (scan_id)
    LEFT JOIN adj USING (scan_id);
"""

# Migration 13: officer TIP tests. `officer_tips`: canaries shown to officers (a share of them, monitoring.
# officer_tip_share), each under an id that looks like a scan id, with its projected image's path and the canary's
# verdict; the rest of what officers see is the source scan's. `tip_outcomes`: an officer's decision on one, kept
# apart from decisions and labels (never a real decision, never a training label). Neither is mail.
_M13_OFFICER_TIPS = """
CREATE TABLE officer_tips (
    tip_id VARCHAR PRIMARY KEY, canary_id VARCHAR NOT NULL, source_scan_id VARCHAR NOT NULL,
    scanner_id VARCHAR NOT NULL, class_name VARCHAR NOT NULL, article VARCHAR, model_version VARCHAR NOT NULL,
    verdict VARCHAR NOT NULL, any_threat DOUBLE NOT NULL, scores JSON NOT NULL, top_class VARCHAR,
    image_path VARCHAR NOT NULL, file_format VARCHAR NOT NULL, created_at TIMESTAMPTZ NOT NULL);
CREATE TABLE tip_outcomes (
    tip_id VARCHAR PRIMARY KEY, decision_id VARCHAR NOT NULL UNIQUE, officer VARCHAR NOT NULL,
    decision VARCHAR NOT NULL, threat_class VARCHAR, hit BOOLEAN NOT NULL, decided_at TIMESTAMPTZ NOT NULL);
"""

# Migration 14: seizures. The region an officer marked on a confirmed or seized threat (image pixels, end-exclusive),
# with its provenance; the signature cut from it lies at <paths.library>/seizures/<seizure_id>.npz.
_M14_SEIZURES = """
CREATE TABLE seizures (
    seizure_id VARCHAR PRIMARY KEY, scan_id VARCHAR NOT NULL, scanner_id VARCHAR NOT NULL,
    decision_id VARCHAR NOT NULL, class_name VARCHAR NOT NULL, x0 INTEGER NOT NULL, y0 INTEGER NOT NULL,
    x1 INTEGER NOT NULL, y1 INTEGER NOT NULL, kind VARCHAR NOT NULL, officer VARCHAR NOT NULL,
    created_at TIMESTAMPTZ NOT NULL);
"""

# Migration 15: a champion for one scanner. models.scanner_id is the scope of a champion (NULL: the whole fleet;
# set only while the model is a scanner's champion); model_events.scanner_id the scope each change was made in, so
# a rollback follows one scope's history.
_M15_CHAMPION_SCOPE = """
ALTER TABLE models ADD COLUMN scanner_id VARCHAR;
ALTER TABLE model_events ADD COLUMN scanner_id VARCHAR;
"""

# Migration 16: an officer TIP item keeps the canary's heatmaps and peak boxes (class -> base64 grid / box, as the
# heatmaps table holds them for mail), so it opens with the heatmap every flagged item shows: a TIP item without
# one told the officer it was a test. TIP items stored before this have none (heatmap_size 0).
_M16_TIP_HEATMAPS = """
ALTER TABLE officer_tips ADD COLUMN heatmap_size INTEGER DEFAULT 0;
ALTER TABLE officer_tips ADD COLUMN heatmaps JSON;
ALTER TABLE officer_tips ADD COLUMN peak_boxes JSON;
"""

# Migration 17: retraining requested from the Models page or by an alert, run by the supervisor one at a time
# (serving/retrain_runner.py): pending -> running -> done | failed, with the end of the run's output.
_M17_RETRAIN_REQUESTS = """
CREATE TABLE retrain_requests (
    request_id VARCHAR PRIMARY KEY, name VARCHAR NOT NULL, reason VARCHAR NOT NULL, requested_by VARCHAR NOT NULL,
    requested_at TIMESTAMPTZ NOT NULL, status VARCHAR NOT NULL, started_at TIMESTAMPTZ, finished_at TIMESTAMPTZ,
    message VARCHAR);
"""

# Append only: (version, name, SQL script or function of the connection).
MIGRATIONS: list[tuple[int, str, Step]] = [
    (1, "original schema", _M1_ORIGINAL),
    (2, "views current_labels, final_decisions, champion_verdicts", _M2_VIEWS),
    (3, "alerts.updated_at and updated_by", _m3_alert_history),
    (4, "indexes on scan_id of verdicts, heatmaps, labels, decisions", _M4_INDEXES),
    (5, "queue_pending and verdict_hourly, kept by the writer", _m5_rollups),
    (6, "auth_tokens: session and scanner tokens as sha256 hashes", _M6_TOKENS),
    (7, "audit_log hash chain (seq, prev_hash, row_hash) and audit_head", _m7_audit_chain),
    (8, "image_events and the view scan_images: where each scan's image is now", _M8_IMAGES),
    (9, "models.thresholds_version; settings_kv loses its champion and thresholds copies", _M9_THRESHOLDS_VERSION),
    (10, "gate_reports: the promotion gate's reports", _M10_GATE_REPORTS),
    (11, "audit_selections (with each audit's inclusion probability) and canaries", _M11_GROUND_TRUTH),
    (12, "readings (blind double reading) and the view double_reads", _M12_READINGS),
    (13, "officer_tips and tip_outcomes: canaries shown to officers as TIP tests", _M13_OFFICER_TIPS),
    (14, "seizures: regions officers marked on confirmed threats, the threat library's real signatures", _M14_SEIZURES),
    (15, "models.scanner_id and model_events.scanner_id: a champion for one scanner", _M15_CHAMPION_SCOPE),
    (16, "officer_tips.heatmap_size, heatmaps and peak_boxes: a TIP item opens with its heatmap", _M16_TIP_HEATMAPS),
    (17, "retrain_requests: retraining asked for in the app or by an alert, run by the supervisor", _M17_RETRAIN_REQUESTS),
]

LATEST_VERSION = MIGRATIONS[-1][0]


def check_file(path: Path) -> None:
    """Refuse, without touching it, a file that exists but is not a DuckDB database (text, truncated header)."""
    if not path.exists() or path.stat().st_size == 0:
        if path.exists():
            raise SchemaError(f"{path} is an empty file, not an xscreen database; refusing to use it")
        return
    with path.open("rb") as fh:
        header = fh.read(3 * HEADER_SIZE)
    if len(header) < 12 or header[8:12] != DUCKDB_MAGIC:
        raise SchemaError(f"{path} is not a DuckDB database (bad header); refusing to use it")


def current_version(con: duckdb.DuckDBPyConnection, label: str = "database") -> int:
    """Schema version of an open database: 0 if empty; SchemaError if it has tables but is not xscreen's."""
    tables = {r[0] for r in con.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_catalog = current_database()").fetchall()}
    if not tables:
        return 0
    if VERSION_TABLE not in tables:
        raise SchemaError(
            f"{label} has tables ({', '.join(sorted(tables)[:5])}) but no {VERSION_TABLE} table: "
            "it is not an xscreen database; refusing to modify it")
    row = first(con, f"SELECT max(version) FROM {VERSION_TABLE}")
    return int(row[0]) if row and row[0] is not None else 0


def check_compatible(version: int, label: str = "database") -> None:
    """SchemaError when the database is newer than the code (we cannot know what its new columns mean)."""
    if version > LATEST_VERSION:
        raise SchemaError(
            f"{label} has schema version {version} but this code knows only up to version {LATEST_VERSION}; "
            "upgrade xscreen before opening it")


def preflight(path: Path) -> int:
    """Validate an existing file read-only before anyone opens it read-write; returns its schema version."""
    check_file(path)
    if not path.exists():
        return 0
    try:
        con = duckdb.connect(str(path), read_only=True)
    except (duckdb.ConnectionException, duckdb.IOException) as exc:
        if isinstance(exc, duckdb.ConnectionException) or "lock" in str(exc).lower():
            raise StoreError(f"{path} is in use by another store owner ({exc})", title="Database locked") from None
        raise SchemaError(f"{path} cannot be opened as a DuckDB database ({exc}); refusing to use it") from None
    except duckdb.Error as exc:
        raise SchemaError(f"{path} cannot be opened as a DuckDB database ({exc}); refusing to use it") from None
    try:
        _check_size(con, path)
        version = current_version(con, str(path))
    except duckdb.Error as exc:
        raise SchemaError(f"{path} is corrupt ({exc}); refusing to use it") from None
    finally:
        con.close()
    check_compatible(version, str(path))
    return version


def _check_size(con: duckdb.DuckDBPyConnection, path: Path) -> None:
    """SchemaError when the file is shorter than the blocks DuckDB's own metadata says are in use (truncated).

    DuckDB may trim free blocks off the end of a file, so the header's block count is not a lower bound; the
    used-block count is."""
    row = first(con, "SELECT block_size, used_blocks FROM pragma_database_size() "
                     "WHERE database_name = current_database()")
    if row is None:
        return
    needed = 3 * HEADER_SIZE + int(row[0]) * int(row[1])
    size = path.stat().st_size
    if size < needed:
        raise SchemaError(f"{path} is truncated ({size} bytes, but {row[1]} blocks of {row[0]} bytes are in use); "
                          "refusing to use it")


def _apply(con: duckdb.DuckDBPyConnection, step: Step) -> None:
    if callable(step):
        step(con)
        return
    for statement in duckdb.extract_statements(step):
        con.execute(statement)


def migrate(con: duckdb.DuckDBPyConnection, upto: int | None = None) -> int:
    """Apply every missing migration (up to `upto`), each in its own transaction; returns the version reached."""
    version = current_version(con)
    check_compatible(version)
    target = LATEST_VERSION if upto is None else upto
    for number, name, step in MIGRATIONS:
        if number <= version or number > target:
            continue
        con.execute("BEGIN TRANSACTION")
        try:
            _apply(con, step)
            con.execute(f"INSERT INTO {VERSION_TABLE} VALUES (?, ?, ?)", [number, name, datetime.now(UTC)])
            con.execute("COMMIT")
        except Exception:
            con.execute("ROLLBACK")
            raise
        log.info("applied migration %d: %s", number, name)
        version = number
    return version
