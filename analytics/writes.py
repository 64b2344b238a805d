"""The store's write operations other than ingest: each runs on the writer's cursor inside its open transaction.

Rule for every function here: check first, raise an XscreenError before writing anything, then write. The
writer relies on it to keep the other writes of the same group commit when one of them is refused.
"""

from __future__ import annotations

import json
import re
import uuid
from datetime import datetime, timedelta
from typing import Any

import duckdb

from analytics import audit_chain
from analytics.fetch import first
from analytics.records import (
    THREAT_UNKNOWN_CLASS,
    AlertRecord,
    AlertStatus,
    AuditRecord,
    DecisionRecord,
    LabelRecord,
    MeasurementRecord,
    ModelRecord,
    ModelState,
)
from xscreen.errors import ConflictError, NotFoundError, PermissionDenied, XscreenError

FINAL_DECISIONS = ("cleared", "confirmed", "seized")
CHAMPION_KEY = "champion"
THRESHOLDS_KEY = "thresholds"


def _json(value: Any) -> str | None:
    return None if value is None else json.dumps(value, separators=(",", ":"), default=str)


def write_audit(cur: duckdb.DuckDBPyConnection, rec: AuditRecord) -> None:
    """Append the row to the audit log's hash chain (analytics/audit_chain.py), in the open transaction."""
    audit_chain.append(cur, rec.audit_id, rec.at, rec.actor, rec.action, rec.target, _json(rec.details))


# Audit actions the store writes itself, in the transaction of what they record: `Store.audit` refuses them, so a
# caller cannot add a decision, a login or a promotion that did not happen.
STORE_ACTIONS = frozenset({
    "login", "login_failed", "passwd_check_failed", "logout", "decision", "relabel", "model_register",
    "model_state", "promote", "rollback", "user_add", "user_passwd", "user_disable", "alert_status", "setting",
    "sql", "sql_refused", "snapshot", "token_issue", "token_revoke", "backup", "restore",
})
ACTION_RE = re.compile(r"^[a-z][a-z0-9_]{1,47}$")
# settings_kv keys the store keeps itself: the champion and its thresholds (set by promotion), the home's id.
STORE_SETTINGS = frozenset({"champion", "thresholds", "home_id"})


def check_audit_action(action: str) -> None:
    if not ACTION_RE.match(action):
        raise XscreenError(f"audit action {action!r} must be 2-48 characters of a-z, 0-9, '_'",
                           title="Invalid audit row")
    if action in STORE_ACTIONS:
        raise PermissionDenied(f"audit action {action!r} is recorded by the store itself, with what it records")


def check_setting_key(key: str) -> None:
    if key in STORE_SETTINGS:
        raise PermissionDenied(f"setting {key!r} is kept by the store itself (promote a model to change the "
                               "champion and its thresholds)")


def audit_row(cur: duckdb.DuckDBPyConnection, now: datetime, actor: str, action: str, target: str | None,
              **details: Any) -> None:
    write_audit(cur, AuditRecord(audit_id=uuid.uuid4().hex, at=now, actor=actor, action=action, target=target,
                                 details=details))


# ---- triage -------------------------------------------------------------------------------------------------

def _final_decision(cur: duckdb.DuckDBPyConnection, scan_id: str) -> tuple[str, str] | None:
    row = first(cur, "SELECT officer, decision FROM decisions WHERE scan_id = ? AND decision IN "
                     "('cleared', 'confirmed', 'seized') ORDER BY decided_at LIMIT 1", [scan_id])
    return (row[0], row[1]) if row else None


def _active_claim(cur: duckdb.DuckDBPyConnection, scan_id: str, now: datetime) -> str | None:
    row = first(cur, "SELECT officer FROM claims WHERE scan_id = ? AND expires_at > ? ORDER BY claimed_at DESC "
                     "LIMIT 1", [scan_id, now])
    return row[0] if row else None


def _champion_version(cur: duckdb.DuckDBPyConnection, scan_id: str) -> str:
    row = first(cur, "SELECT model_version FROM verdicts WHERE scan_id = ? ORDER BY role = 'champion' DESC, "
                     "scored_at DESC LIMIT 1", [scan_id])
    if row is None:
        raise NotFoundError(f"scan {scan_id} has no verdict")
    return str(row[0])


def claim(cur: duckdb.DuckDBPyConnection, scan_id: str, officer: str, now: datetime, ttl_s: float) -> datetime:
    """Officer starts working an item; returns the claim's expiry. ConflictError names whoever holds it."""
    _champion_version(cur, scan_id)
    decided = _final_decision(cur, scan_id)
    if decided:
        raise ConflictError(f"scan {scan_id} was already decided ({decided[1]}) by {decided[0]}")
    holder = _active_claim(cur, scan_id, now)
    if holder and holder != officer:
        raise ConflictError(f"scan {scan_id} is being worked by {holder}")
    expires = now + timedelta(seconds=ttl_s)
    cur.execute("DELETE FROM claims WHERE scan_id = ?", [scan_id])
    cur.execute("INSERT INTO claims VALUES (?, ?, ?, ?)", [scan_id, officer, now, expires])
    return expires


def release(cur: duckdb.DuckDBPyConnection, scan_id: str, officer: str) -> None:
    """Drop the officer's own claim (someone else's claim is left alone)."""
    cur.execute("DELETE FROM claims WHERE scan_id = ? AND officer = ?", [scan_id, officer])


def decision_labels(d: DecisionRecord) -> list[str] | None:
    """The label a decision implies: cleared -> benign, confirmed/seized -> its class or 'threat'; refer -> none."""
    if d.decision == "cleared":
        return []
    if d.decision in ("confirmed", "seized"):
        return [d.threat_class or THREAT_UNKNOWN_CLASS]
    return None


def record_decision(cur: duckdb.DuckDBPyConnection, d: DecisionRecord, now: datetime) -> None:
    """Store a decision + the label it implies + an audit row. Re-sending the same decision_id is a no-op.

    `refer` asks for a second opinion: it is not final, releases the claim and leaves the item in the queue
    (marked referred). A final decision on an item someone already decided is a ConflictError, as is deciding
    an item another officer holds an unexpired claim on.
    """
    if first(cur, "SELECT 1 FROM decisions WHERE decision_id = ?", [d.decision_id]):
        return
    version = _champion_version(cur, d.scan_id)
    decided = _final_decision(cur, d.scan_id)
    if decided and d.decision in FINAL_DECISIONS:
        raise ConflictError(f"scan {d.scan_id} was already decided ({decided[1]}) by {decided[0]}")
    holder = _active_claim(cur, d.scan_id, now)
    if holder and holder != d.officer:
        raise ConflictError(f"scan {d.scan_id} is being worked by {holder}")
    cur.execute("INSERT INTO decisions VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [d.decision_id, d.scan_id, d.officer, d.decision, d.threat_class, d.note, d.decided_at, version])
    if d.decision in FINAL_DECISIONS:
        cur.execute("DELETE FROM queue_pending WHERE scan_id = ?", [d.scan_id])
    labels = decision_labels(d)
    if labels is not None:
        _insert_label(cur, LabelRecord(label_id=f"{d.decision_id}-label", scan_id=d.scan_id, labels=labels,
                                       source="officer", author=d.officer, created_at=d.decided_at, note=d.note))
    cur.execute("DELETE FROM claims WHERE scan_id = ?", [d.scan_id])
    audit_row(cur, now, d.officer, "decision", d.scan_id, decision=d.decision, threat_class=d.threat_class,
              decision_id=d.decision_id, model_version=version)


def _insert_label(cur: duckdb.DuckDBPyConnection, rec: LabelRecord) -> None:
    cur.execute("INSERT INTO labels VALUES (?, ?, ?, ?, ?, ?, ?)",
                [rec.label_id, rec.scan_id, rec.labels, rec.source, rec.author, rec.created_at, rec.note])


def add_labels(cur: duckdb.DuckDBPyConnection, labels: list[LabelRecord], now: datetime) -> int:
    """Append labels (known label_ids are skipped); audit one row per author. Returns how many were new."""
    ids = [r.label_id for r in labels]
    known = {r[0] for r in cur.execute("SELECT label_id FROM labels WHERE list_contains(?, label_id)",
                                       [ids]).fetchall()} if ids else set()
    new = [r for r in labels if r.label_id not in known]
    for rec in new:
        _insert_label(cur, rec)
    for author in sorted({r.author for r in new}):
        mine = [r.scan_id for r in new if r.author == author]
        audit_row(cur, now, author, "relabel", mine[0] if len(mine) == 1 else None, scans=mine[:100], n=len(mine))
    return len(new)


# ---- models -------------------------------------------------------------------------------------------------

def _model_state(cur: duckdb.DuckDBPyConnection, version: str) -> str:
    row = first(cur, "SELECT state FROM models WHERE version = ?", [version])
    if row is None:
        raise NotFoundError(f"model version {version!r} is not registered")
    return str(row[0])


def _event(cur: duckdb.DuckDBPyConnection, version: str, old: str | None, new: str, actor: str,
           reason: str | None, now: datetime) -> None:
    cur.execute("INSERT INTO model_events VALUES (?, ?, ?, ?, ?, ?, ?)",
                [uuid.uuid4().hex, version, old, new, actor, reason, now])


def put_setting(cur: duckdb.DuckDBPyConnection, key: str, value: Any, actor: str, now: datetime) -> None:
    cur.execute("INSERT INTO settings_kv VALUES (?, ?::JSON, ?, ?) ON CONFLICT (key) DO UPDATE SET "
                "value = excluded.value, updated_at = excluded.updated_at, updated_by = excluded.updated_by",
                [key, _json(value), now, actor])


def change_setting(cur: duckdb.DuckDBPyConnection, key: str, value: Any, actor: str, now: datetime) -> None:
    """A setting changed through the API: stored and audited with its old and new value."""
    old = first(cur, "SELECT value FROM settings_kv WHERE key = ?", [key])
    put_setting(cur, key, value, actor, now)
    audit_row(cur, now, actor, "setting", key, old=json.loads(old[0]) if old and old[0] else None, new=value)


def register_model(cur: duckdb.DuckDBPyConnection, m: ModelRecord, actor: str, now: datetime) -> None:
    """Add a registry entry. Re-registering the same weights is a no-op; other weights under that name conflict."""
    row = first(cur, "SELECT weights_sha256 FROM models WHERE version = ?", [m.version])
    if row is not None:
        if row[0] == m.weights_sha256:
            return
        raise ConflictError(f"model version {m.version!r} is already registered with other weights")
    state = m.state
    cur.execute("INSERT INTO models VALUES (?, ?, 'candidate', ?, ?, ?::JSON, ?, ?::JSON, ?::JSON, ?::JSON, ?, ?)",
                [m.version, m.parent, m.created_at, m.classes, _json(m.architecture), m.train_manifest_sha256,
                 _json(m.metrics), _json(m.thresholds), _json(m.calibration), m.weights_path, m.weights_sha256])
    _event(cur, m.version, None, "candidate", actor, "registered", now)
    audit_row(cur, now, actor, "model_register", m.version, weights_sha256=m.weights_sha256)
    if state != "candidate":
        set_model_state(cur, m.version, state, actor, "registered", now)


def set_model_state(cur: duckdb.DuckDBPyConnection, version: str, state: ModelState, actor: str,
                    reason: str | None, now: datetime) -> None:
    """Move a model to `state`. Promoting to champion retires the old champion in the same transaction."""
    old = _model_state(cur, version)
    if old == state:
        return
    if state == "champion":
        for (prev,) in cur.execute("SELECT version FROM models WHERE state = 'champion'").fetchall():
            cur.execute("UPDATE models SET state = 'retired' WHERE version = ?", [prev])
            _event(cur, prev, "champion", "retired", actor, f"replaced by {version}", now)
        thresholds = first(cur, "SELECT thresholds FROM models WHERE version = ?", [version])
        put_setting(cur, CHAMPION_KEY, version, actor, now)
        put_setting(cur, THRESHOLDS_KEY, json.loads(thresholds[0]) if thresholds and thresholds[0] else {},
                    actor, now)
    elif old == "champion":
        cur.execute("DELETE FROM settings_kv WHERE key = ?", [CHAMPION_KEY])
    cur.execute("UPDATE models SET state = ? WHERE version = ?", [state, version])
    _event(cur, version, old, state, actor, reason, now)
    audit_row(cur, now, actor, "promote" if state == "champion" else "model_state", version,
              from_state=old, to_state=state, reason=reason)


def rollback(cur: duckdb.DuckDBPyConnection, actor: str, reason: str | None, now: datetime) -> str:
    """Put the champion before the current one back in force; returns its version."""
    current = first(cur, "SELECT version FROM models WHERE state = 'champion'")
    rows = cur.execute("SELECT version FROM model_events WHERE to_state = 'champion' ORDER BY changed_at DESC").fetchall()
    previous = next((r[0] for r in rows if current is None or r[0] != current[0]), None)
    if previous is None:
        raise NotFoundError("no previous champion to roll back to")
    set_model_state(cur, previous, "champion", actor, reason or "rollback", now)
    audit_row(cur, now, actor, "rollback", previous, replaced=current[0] if current else None)
    return str(previous)


# ---- monitoring ---------------------------------------------------------------------------------------------

def add_measurements(cur: duckdb.DuckDBPyConnection, rows: list[MeasurementRecord]) -> int:
    """Append measurements; known measurement_ids are skipped. Returns how many were new."""
    before = first(cur, "SELECT count(*) FROM measurements")[0]  # type: ignore[index]
    for m in rows:
        cur.execute("INSERT INTO measurements VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?::JSON) ON CONFLICT DO NOTHING",
                    [m.measurement_id, m.measured_at, m.kind, m.scanner_id, m.model_version, m.window_start,
                     m.window_end, m.value, _json(m.details)])
    return int(first(cur, "SELECT count(*) FROM measurements")[0]) - int(before)  # type: ignore[index]


def raise_alert(cur: duckdb.DuckDBPyConnection, a: AlertRecord) -> bool:
    """Store an alert; False when that alert_id already exists (monitoring may re-raise the same id)."""
    if first(cur, "SELECT 1 FROM alerts WHERE alert_id = ?", [a.alert_id]):
        return False
    cur.execute("INSERT INTO alerts BY NAME SELECT ? AS alert_id, ? AS raised_at, ? AS severity, ? AS kind, "
                "? AS message, ? AS status, ?::JSON AS details, ? AS updated_at",
                [a.alert_id, a.raised_at, a.severity, a.kind, a.message, a.status, _json(a.details), a.raised_at])
    return True


def set_alert_status(cur: duckdb.DuckDBPyConnection, alert_id: str, status: AlertStatus, actor: str,
                     now: datetime) -> None:
    if not first(cur, "SELECT 1 FROM alerts WHERE alert_id = ?", [alert_id]):
        raise NotFoundError(f"alert {alert_id!r} does not exist")
    cur.execute("UPDATE alerts SET status = ?, updated_at = ?, updated_by = ? WHERE alert_id = ?",
                [status, now, actor, alert_id])
    audit_row(cur, now, actor, "alert_status", alert_id, status=status)
