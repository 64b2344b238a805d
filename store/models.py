"""Models domain: the registry of model versions, their states, promotion and rollback, and the champion and
shadow side by side on live traffic.

Exactly one `champion` and at most one `shadow`: promoting retires the old champion (and marking a shadow sends
the old shadow back to `candidate`) in the same transaction, and records `model_events`; `rollback` re-promotes
the previous champion from `model_events`. The thresholds in force live in one place, the model's row, versioned
by `thresholds_version` (`set_thresholds`); serving follows `models_in_force` live (serving/follow.py).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import duckdb
import pandas as pd

from store.audit import audit_row, loads, to_json
from store.fetch import dicts, first, in_window
from store.ops import read, write
from xscreen.errors import ConflictError, NotFoundError, XscreenError
from xscreen.records import ANY_THREAT, GateReportRecord, ModelInForce, ModelRecord, ModelState

LIVE_ROLES = ("champion", "shadow")  # the states serving follows, at most one model each
_MODEL_JSON = ("architecture", "metrics", "thresholds", "calibration")


def _model(row: dict[str, Any]) -> ModelRecord:
    for key in _MODEL_JSON:
        row[key] = loads(row[key]) or {}
    return ModelRecord(**row)


@read()
def list_models(cur: duckdb.DuckDBPyConnection) -> list[ModelRecord]:
    """The registry, oldest first."""
    cur.execute("SELECT * FROM models ORDER BY created_at, version")
    return [_model(r) for r in dicts(cur)]


@read()
def get_model(cur: duckdb.DuckDBPyConnection, version: str) -> ModelRecord:
    """One registered version; NotFoundError naming it otherwise."""
    cur.execute("SELECT * FROM models WHERE version = ?", [version])
    rows = dicts(cur)
    if not rows:
        raise NotFoundError(f"model version {version!r} is not registered")
    return _model(rows[0])


@read()
def champion(cur: duckdb.DuckDBPyConnection) -> ModelRecord | None:
    """The model in force, or None before the first promotion."""
    cur.execute("SELECT * FROM models WHERE state = 'champion'")
    rows = dicts(cur)
    return _model(rows[0]) if rows else None


def _model_state(cur: duckdb.DuckDBPyConnection, version: str) -> str:
    row = first(cur, "SELECT state FROM models WHERE version = ?", [version])
    if row is None:
        raise NotFoundError(f"model version {version!r} is not registered")
    return str(row[0])


def _event(cur: duckdb.DuckDBPyConnection, version: str, old: str | None, new: str, actor: str,
           reason: str | None, now: datetime) -> None:
    cur.execute("INSERT INTO model_events VALUES (?, ?, ?, ?, ?, ?, ?)",
                [uuid.uuid4().hex, version, old, new, actor, reason, now])


@write(action="promote", actor="actor")
def register_model(cur: duckdb.DuckDBPyConnection, model: ModelRecord, actor: str = "system", *,
                   now: datetime) -> None:
    """Add a registry entry. Re-registering the same weights is a no-op; other weights under that name conflict.
    A state other than `candidate` is then applied (and audited) as by `set_model_state`."""
    m = model
    row = first(cur, "SELECT weights_sha256 FROM models WHERE version = ?", [m.version])
    if row is not None:
        if row[0] == m.weights_sha256:
            return
        raise ConflictError(f"model version {m.version!r} is already registered with other weights")
    cur.execute("INSERT INTO models (version, parent, state, created_at, classes, architecture, train_manifest_sha256, "
                "metrics, thresholds, calibration, weights_path, weights_sha256, thresholds_version) "
                "VALUES (?, ?, 'candidate', ?, ?, ?::JSON, ?, ?::JSON, ?::JSON, ?::JSON, ?, ?, 1)",
                [m.version, m.parent, m.created_at, m.classes, to_json(m.architecture), m.train_manifest_sha256,
                 to_json(m.metrics), to_json(m.thresholds), to_json(m.calibration), m.weights_path, m.weights_sha256])
    _event(cur, m.version, None, "candidate", actor, "registered", now)
    audit_row(cur, now, actor, "model_register", m.version, weights_sha256=m.weights_sha256)
    if m.state != "candidate":  # registering straight into a live state is an explicit promotion: no gate
        set_model_state(cur, m.version, m.state, actor, "registered", force=True, now=now)


@write(action="promote", actor="actor")
def set_model_state(cur: duckdb.DuckDBPyConnection, version: str, state: ModelState, actor: str,
                    reason: str | None = None, force: bool = False, *, now: datetime) -> None:
    """Move a model to `state`. A new champion retires the old one, a new shadow sends the old one back to
    `candidate`, in the same transaction: serving follows exactly one model per live role. Replacing a champion
    needs a passing gate report of `version` against it (`record_gate_report`) unless `force` (audited)."""
    old = _model_state(cur, version)
    if old == state:
        return
    if state == "champion" and not force:
        _require_gate(cur, version)
    if state in LIVE_ROLES:
        step_down = "retired" if state == "champion" else "candidate"
        for (prev,) in cur.execute("SELECT version FROM models WHERE state = ?", [state]).fetchall():
            cur.execute("UPDATE models SET state = ? WHERE version = ?", [step_down, prev])
            _event(cur, prev, state, step_down, actor, f"replaced by {version}", now)
    cur.execute("UPDATE models SET state = ? WHERE version = ?", [state, version])
    _event(cur, version, old, state, actor, reason, now)
    audit_row(cur, now, actor, "promote" if state == "champion" else "model_state", version,
              from_state=old, to_state=state, reason=reason, forced=force)


def _require_gate(cur: duckdb.DuckDBPyConnection, version: str) -> None:
    """ConflictError unless `version` passed the gate against the champion in force (none: nothing to beat)."""
    current = first(cur, "SELECT version FROM models WHERE state = 'champion'")
    if current is None:
        return
    passed = first(cur, "SELECT count(*) FROM gate_reports WHERE candidate = ? AND champion = ? AND passed",
                   [version, current[0]])
    if not passed or not passed[0]:
        raise ConflictError(f"{version} has no passing gate report against the champion {current[0]}: run "
                            f"`xscreen gate {version}`, or force the promotion (recorded in the audit log)")


@write(action="promote", actor="actor")
def record_gate_report(cur: duckdb.DuckDBPyConnection, report: GateReportRecord, actor: str, *,
                       now: datetime) -> None:
    """Keep a gate report (both models must be registered); audited with its outcome."""
    for version in (report.candidate, report.champion):
        _model_state(cur, version)  # NotFoundError naming an unregistered one
    cur.execute("INSERT INTO gate_reports VALUES (?, ?, ?, ?, ?, ?, ?::JSON)",
                [report.report_id, report.candidate, report.champion, report.created_at, actor, report.passed,
                 to_json(report.report)])
    audit_row(cur, now, actor, "gate", report.candidate, champion=report.champion, passed=report.passed,
              report_id=report.report_id)


@read()
def gate_reports(cur: duckdb.DuckDBPyConnection, version: str) -> list[GateReportRecord]:
    """The gate reports of a candidate, newest first."""
    cur.execute("SELECT report_id, candidate, champion, created_at, passed, report FROM gate_reports "
                "WHERE candidate = ? ORDER BY created_at DESC, report_id", [version])
    rows = dicts(cur)
    for row in rows:
        row["report"] = loads(row["report"]) or {}
    return [GateReportRecord(**row) for row in rows]


@write(action="promote", actor="actor")
def set_thresholds(cur: duckdb.DuckDBPyConnection, version: str, thresholds: dict[str, Any], actor: str,
                   reason: str | None = None, *, now: datetime) -> int:
    """Change the operating point of a model (champion or not): its row's thresholds, the one copy in force,
    with `thresholds_version` bumped so serving applies it without reloading; returns the new version.
    `any_threat` and every class of the model need {"clear": t_lo, "inspect": t_hi} with 0 <= t_lo <= t_hi <= 1."""
    row = first(cur, "SELECT classes, thresholds, thresholds_version FROM models WHERE version = ?", [version])
    if row is None:
        raise NotFoundError(f"model version {version!r} is not registered")
    check_thresholds(thresholds, [ANY_THREAT, *row[0]])
    new_version = int(row[2] or 1) + 1
    cur.execute("UPDATE models SET thresholds = ?::JSON, thresholds_version = ? WHERE version = ?",
                [to_json(thresholds), new_version, version])
    audit_row(cur, now, actor, "thresholds", version, old=loads(row[1]), new=thresholds,
              thresholds_version=new_version, reason=reason)
    return new_version


def check_thresholds(thresholds: dict[str, Any], classes: list[str]) -> None:
    """XscreenError naming the first class whose thresholds are missing or out of order."""
    for cls in classes:
        t = thresholds.get(cls)
        if not isinstance(t, dict) or not {"clear", "inspect"} <= set(t):
            raise XscreenError(f"thresholds: class {cls!r} needs 'clear' and 'inspect'", title="Bad thresholds")
        if not 0.0 <= float(t["clear"]) <= float(t["inspect"]) <= 1.0:
            raise XscreenError(f"thresholds: class {cls!r} needs 0 <= clear <= inspect <= 1, got {t}",
                               title="Bad thresholds")


@read()
def models_in_force(cur: duckdb.DuckDBPyConnection) -> list[ModelInForce]:
    """The champion and the shadow (when there is one): what serving polls every few seconds. One small read."""
    cur.execute("SELECT state AS role, version, weights_path, weights_sha256, thresholds, "
                "coalesce(thresholds_version, 1) AS thresholds_version FROM models "
                "WHERE state IN ('champion', 'shadow') ORDER BY state")
    rows = dicts(cur)
    for row in rows:
        row["thresholds"] = loads(row["thresholds"]) or {}
    return [ModelInForce(**row) for row in rows]


@write(action="rollback", actor="actor")
def rollback(cur: duckdb.DuckDBPyConnection, actor: str, reason: str | None = None, *, now: datetime) -> str:
    """Put the champion before the current one back in force; returns its version."""
    current = first(cur, "SELECT version FROM models WHERE state = 'champion'")
    # rowid breaks ties: two promotions within one clock tick (one group commit) still roll back in order
    rows = cur.execute("SELECT version FROM model_events WHERE to_state = 'champion' "
                       "ORDER BY changed_at DESC, rowid DESC").fetchall()
    previous = next((r[0] for r in rows if current is None or r[0] != current[0]), None)
    if previous is None:
        raise NotFoundError("no previous champion to roll back to")
    set_model_state(cur, previous, "champion", actor, reason or "rollback", force=True, now=now)  # it served before
    audit_row(cur, now, actor, "rollback", previous, replaced=current[0] if current else None)
    return str(previous)


@read()
def champion_shadow(cur: duckdb.DuckDBPyConnection, start: Any = None, end: Any = None,
                    limit: int = 5000) -> pd.DataFrame:
    """Scans scored by both the champion and a shadow: any-threat scores and verdicts side by side."""
    return cur.execute(f"""
        SELECT c.scan_id, s.model_version AS shadow_version, c.any_threat AS champion, s.any_threat AS shadow,
               c.verdict AS champion_verdict, s.verdict AS shadow_verdict
        FROM verdicts c JOIN verdicts s ON c.scan_id = s.scan_id AND s.role = 'shadow'
        WHERE c.role = 'champion' AND {in_window("c.scored_at")}
        ORDER BY c.scored_at DESC LIMIT $limit""", {"start": start, "end": end, "limit": int(limit)}).df()


_SHADOW_PROGRESS = """
    SELECT m.version, count(v.scan_id) AS scored,
           count(*) FILTER (WHERE coalesce(len(l.labels) > 0, d.decision IN ('confirmed', 'seized'))) AS threats,
           min(v.scored_at) AS since
    FROM models m LEFT JOIN verdicts v ON v.model_version = m.version AND v.role = 'shadow'
    LEFT JOIN final_decisions d ON d.scan_id = v.scan_id LEFT JOIN current_labels l ON l.scan_id = v.scan_id
    WHERE m.state = 'shadow' GROUP BY m.version"""


@read()
def shadow_progress(cur: duckdb.DuckDBPyConnection) -> dict[str, Any] | None:
    """The shadow in force, or None: its version, the scans it has scored (`scored`), how many of them are
    threats by their truth (current label, else the officer's final decision: `threats`), and since when."""
    rows = dicts(cur.execute(_SHADOW_PROGRESS))
    return rows[0] if rows else None


@write(action="promote", actor="actor")
def end_shadow_when_done(cur: duckdb.DuckDBPyConnection, threat_items: int, actor: str = "system",
                         auto_promote: bool = False, *, now: datetime) -> str | None:
    """End the shadow once it has scored `threat_items` threat items (enough for its certificate). With
    `auto_promote` (setting serving.auto_promote) it becomes champion when it holds a passing gate report against
    the champion in force, in the same transaction (serving follows within a poll; the audit row and the model
    event say it was automatic and which report allowed it); otherwise, or without such a report, it goes back
    to `candidate` and waits for the gate and a person's promotion. Returns its version when it ended it."""
    rows = dicts(cur.execute(_SHADOW_PROGRESS))
    if not rows or int(rows[0]["threats"]) < threat_items:
        return None
    version = str(rows[0]["version"])
    done = f"shadow complete: {rows[0]['threats']} threat items scored (target {threat_items})"
    report = _passing_report(cur, version) if auto_promote else None
    if report is not None:
        set_model_state(cur, version, "champion", actor, f"automatic promotion: {done}; gate report {report} passed",
                        now=now)
    else:
        set_model_state(cur, version, "candidate", actor, done, now=now)
    return version


def _passing_report(cur: duckdb.DuckDBPyConnection, version: str) -> str | None:
    """The newest passing gate report of `version` against the champion in force (None: none, or no champion)."""
    row = first(cur, """SELECT g.report_id FROM gate_reports g JOIN models m ON m.version = g.champion
                        WHERE m.state = 'champion' AND g.candidate = ? AND g.passed
                        ORDER BY g.created_at DESC LIMIT 1""", [version])
    return str(row[0]) if row else None


@read()
def model_lineage(cur: duckdb.DuckDBPyConnection, version: str) -> dict[str, Any]:
    """One model's history in one call: its ancestors (parent first, up the chain), training-data manifest,
    metrics, certificate, thresholds version, every state change (who, when, why) and when it was last made
    champion and by whom. NotFoundError naming an unknown version."""
    record = get_model(cur, version)
    ancestors: list[str] = []
    parent = record.parent
    while parent is not None and parent not in ancestors and parent != version:  # a cycle must not hang it
        ancestors.append(parent)
        row = first(cur, "SELECT parent FROM models WHERE version = ?", [parent])
        parent = row[0] if row else None
    cur.execute("SELECT from_state, to_state, actor, reason, changed_at FROM model_events WHERE version = ? "
                "ORDER BY changed_at, rowid", [version])  # rowid: insertion order within one commit
    events = dicts(cur)
    promotions = [e for e in events if e["to_state"] == "champion"]
    return {
        "version": version, "state": record.state, "parent": record.parent, "ancestors": ancestors,
        "train_manifest_sha256": record.train_manifest_sha256, "metrics": record.metrics,
        "certificate": record.calibration.get("certificate", {}), "thresholds_version": record.thresholds_version,
        "events": events, "promoted_by": promotions[-1]["actor"] if promotions else None,
        "promoted_at": promotions[-1]["changed_at"] if promotions else None,
    }
