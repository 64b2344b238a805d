"""Models domain: the registry of model versions, their states, promotion and rollback, and the champion and
shadow side by side on live traffic.

One fleet `champion`, at most one champion per scanner (`scanner_id`, its scope: that scanner's items are scored
by it instead) and at most one `shadow`, fleet-wide or for one scanner (`scanner_id`: it scores that scanner's
items only, as a model adapted to that scanner should be tried): promoting retires the old champion of the same
scope (and marking a shadow sends the old shadow, whatever its scope, back to `candidate`) in the same transaction, and records `model_events`
with the scope; `rollback` re-promotes the previous champion of a scope from `model_events`. The thresholds in force live in one place, the model's row, versioned
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
from xscreen.records import (
    ANY_THREAT,
    GateReportRecord,
    ModelInForce,
    ModelRecord,
    ModelState,
    RetrainRequest,
    is_model_version_name,
)

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
    """The fleet champion in force, or None before the first promotion."""
    cur.execute("SELECT * FROM models WHERE state = 'champion' AND scanner_id IS NULL")
    rows = dicts(cur)
    return _model(rows[0]) if rows else None


def _model_state(cur: duckdb.DuckDBPyConnection, version: str) -> str:
    return _state_and_scope(cur, version)[0]


def _state_and_scope(cur: duckdb.DuckDBPyConnection, version: str) -> tuple[str, str | None]:
    row = first(cur, "SELECT state, scanner_id FROM models WHERE version = ?", [version])
    if row is None:
        raise NotFoundError(f"model version {version!r} is not registered")
    return str(row[0]), row[1]


def _champion_of(cur: duckdb.DuckDBPyConnection, scanner: str | None) -> str | None:
    """The champion of exactly this scope (a scanner, or None: the fleet), or None."""
    row = first(cur, "SELECT version FROM models WHERE state = 'champion' AND scanner_id IS NOT DISTINCT FROM ?",
                [scanner])
    return str(row[0]) if row else None


def _event(cur: duckdb.DuckDBPyConnection, version: str, old: str | None, new: str, actor: str,
           reason: str | None, now: datetime, scanner: str | None = None) -> None:
    cur.execute("INSERT INTO model_events (event_id, version, from_state, to_state, actor, reason, changed_at, "
                "scanner_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [uuid.uuid4().hex, version, old, new, actor, reason, now, scanner])


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
                    reason: str | None = None, force: bool = False, scanner: str | None = None, *,
                    now: datetime) -> None:
    """Move a model to `state`. A new champion retires the old champion of its scope (`scanner`: that scanner
    only, never the fleet champion; None: the fleet), a new shadow sends the old one (of any scope: one shadow at
    a time) back to `candidate`, in the same transaction: serving follows one model per live role and scope. A
    shadow with a `scanner` scores that scanner's items only. Replacing a champion needs a passing gate report of
    `version` against the champion in force for the scope (the scanner's, else the fleet's: `record_gate_report`)
    unless `force` (audited)."""
    if scanner is not None and state not in LIVE_ROLES:
        raise XscreenError(f"a scanner scope applies to a champion or a shadow only, not to {state!r}",
                           title="Bad scope")
    old, old_scope = _state_and_scope(cur, version)
    if old == state and old_scope == scanner:
        return
    if scanner is not None and old == "champion":
        where = "the fleet" if old_scope is None else f"scanner {old_scope}"
        raise ConflictError(f"{version} is the champion of {where}: a model is champion in one scope at a time")
    if state == "champion" and not force:
        _require_gate(cur, version, scanner)
    if state in LIVE_ROLES:
        step_down = "retired" if state == "champion" else "candidate"
        # champions: the one of the same scope; shadows: any (a version changing scope included)
        for (prev,) in cur.execute("SELECT version FROM models WHERE state = ? AND (state = 'shadow' OR "
                                   "scanner_id IS NOT DISTINCT FROM ?)", [state, scanner]).fetchall():
            if prev == version:
                continue
            cur.execute("UPDATE models SET state = ?, scanner_id = NULL WHERE version = ?", [step_down, prev])
            _event(cur, prev, state, step_down, actor, f"replaced by {version}", now, scanner)
    cur.execute("UPDATE models SET state = ?, scanner_id = ? WHERE version = ?", [state, scanner, version])
    _event(cur, version, old, state, actor, reason, now, scanner)
    audit_row(cur, now, actor, "promote" if state == "champion" else "model_state", version,
              from_state=old, to_state=state, reason=reason, forced=force, **_scope(scanner, old_scope))


def _scope(scanner: str | None, old_scope: str | None) -> dict[str, str]:
    """Audit details naming a scanner scope, only when there is one (fleet rows stay as they always were)."""
    return {k: v for k, v in (("scanner_id", scanner), ("from_scanner_id", old_scope)) if v is not None}


def _require_gate(cur: duckdb.DuckDBPyConnection, version: str, scanner: str | None = None) -> None:
    """ConflictError unless `version` passed the gate against the champion in force for the scope: the scanner's
    own champion, else the fleet's (none: nothing to beat)."""
    current = (_champion_of(cur, scanner) if scanner is not None else None) or _champion_of(cur, None)
    if current is None:
        return
    passed = first(cur, "SELECT count(*) FROM gate_reports WHERE candidate = ? AND champion = ? AND passed",
                   [version, current])
    if not passed or not passed[0]:
        where = f" in force for scanner {scanner}" if scanner is not None else ""
        raise ConflictError(f"{version} has no passing gate report against the champion {current}{where}: run "
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
    """The fleet champion, the scanners' own champions (each with its `scanner_id`) and the shadow (when there is
    one): what serving polls every few seconds. One small read; the fleet champion comes first."""
    cur.execute("SELECT state AS role, version, weights_path, weights_sha256, thresholds, "
                "coalesce(thresholds_version, 1) AS thresholds_version, scanner_id FROM models "
                "WHERE state IN ('champion', 'shadow') ORDER BY state, scanner_id NULLS FIRST")
    rows = dicts(cur)
    for row in rows:
        row["thresholds"] = loads(row["thresholds"]) or {}
    return [ModelInForce(**row) for row in rows]


@write(action="rollback", actor="actor")
def rollback(cur: duckdb.DuckDBPyConnection, actor: str, reason: str | None = None, scanner: str | None = None, *,
             now: datetime) -> str:
    """Put the champion before the current one of a scope (`scanner`, or None: the fleet) back in force; returns
    its version. A scanner with no earlier champion of its own that can serve again goes back to the fleet
    champion: its champion is retired, and the fleet champion's version is returned."""
    current = _champion_of(cur, scanner)
    # rowid breaks ties: two promotions within one clock tick (one group commit) still roll back in order
    rows = cur.execute("SELECT version FROM model_events WHERE to_state = 'champion' "
                       "AND scanner_id IS NOT DISTINCT FROM ? ORDER BY changed_at DESC, rowid DESC", [scanner]).fetchall()
    previous = next((r[0] for r in rows if r[0] != current and (scanner is None or not _serving(cur, r[0]))), None)
    if scanner is not None and current is None:
        raise NotFoundError(f"scanner {scanner} has no champion of its own to roll back")
    if previous is None and scanner is None:
        raise NotFoundError("no previous champion to roll back to")
    if previous is None:  # the scanner's first champion: retired, the scanner is back on the fleet champion
        cur.execute("UPDATE models SET state = 'retired', scanner_id = NULL WHERE version = ?", [current])
        _event(cur, str(current), "champion", "retired", actor, reason or "rollback", now, scanner)
        fleet = _champion_of(cur, None) or ""
        audit_row(cur, now, actor, "rollback", fleet, replaced=current, scanner_id=scanner)
        return fleet
    set_model_state(cur, previous, "champion", actor, reason or "rollback", force=True, scanner=scanner,
                    now=now)  # it served before
    audit_row(cur, now, actor, "rollback", previous, replaced=current, **_scope(scanner, None))
    return str(previous)


def _serving(cur: duckdb.DuckDBPyConnection, version: str) -> bool:
    """Whether `version` is a champion of some scope now (it cannot also be a scanner's again)."""
    return _model_state(cur, version) == "champion"


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
    SELECT m.version, any_value(m.scanner_id) AS scanner_id, count(v.scan_id) AS scored,
           count(*) FILTER (WHERE coalesce(len(l.labels) > 0, d.decision IN ('confirmed', 'seized'))) AS threats,
           min(v.scored_at) AS since
    FROM models m LEFT JOIN verdicts v ON v.model_version = m.version AND v.role = 'shadow'
    LEFT JOIN final_decisions d ON d.scan_id = v.scan_id LEFT JOIN current_labels l ON l.scan_id = v.scan_id
    WHERE m.state = 'shadow' GROUP BY m.version"""


@read()
def shadow_progress(cur: duckdb.DuckDBPyConnection) -> dict[str, Any] | None:
    """The shadow in force, or None: its version, its scope (`scanner_id`, None: the fleet), the scans it has
    scored (`scored`), how many of them are threats by their truth (current label, else the officer's final
    decision: `threats`), and since when."""
    rows = dicts(cur.execute(_SHADOW_PROGRESS))
    return rows[0] if rows else None


@write(action="promote", actor="actor")
def end_shadow_when_done(cur: duckdb.DuckDBPyConnection, threat_items: int, actor: str = "system",
                         auto_promote: bool = False, *, now: datetime) -> str | None:
    """End the shadow once it has scored `threat_items` threat items (enough for its certificate). With
    `auto_promote` (setting serving.auto_promote) it becomes champion of its scope (its scanner's, or the
    fleet's) when it holds a passing gate report against the champion in force there, in the same transaction
    (serving follows within a poll; the audit row and the model event say it was automatic and which report
    allowed it); otherwise, or without such a report, it goes back to `candidate` and waits for the gate and a
    person's promotion. Returns its version when it ended it."""
    rows = dicts(cur.execute(_SHADOW_PROGRESS))
    if not rows or int(rows[0]["threats"]) < threat_items:
        return None
    version, scope = str(rows[0]["version"]), rows[0]["scanner_id"]
    done = f"shadow complete: {rows[0]['threats']} threat items scored (target {threat_items})"
    report = _passing_report(cur, version, scope) if auto_promote else None
    if report is not None:
        set_model_state(cur, version, "champion", actor, f"automatic promotion: {done}; gate report {report} passed",
                        scanner=scope, now=now)
    else:
        set_model_state(cur, version, "candidate", actor, done, now=now)
    return version


def _passing_report(cur: duckdb.DuckDBPyConnection, version: str, scanner: str | None = None) -> str | None:
    """The newest passing gate report of `version` against the champion in force for the scope (the scanner's
    own, else the fleet's; None: no such report, or no champion)."""
    current = (_champion_of(cur, scanner) if scanner is not None else None) or _champion_of(cur, None)
    row = first(cur, """SELECT report_id FROM gate_reports WHERE champion = ? AND candidate = ? AND passed
                        ORDER BY created_at DESC LIMIT 1""", [current, version])
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


# ---- retraining requests (the Models page, or an alert kind in monitoring.retrain_on; serving/retrain_runner.py) ----
_RETRAIN_COLUMNS = ("request_id, name, reason, requested_by, requested_at, status, started_at, finished_at, "
                    "message")


@write(action="retrain", actor="actor")
def request_retrain(cur: duckdb.DuckDBPyConnection, name: str, reason: str, actor: str, *,
                    now: datetime) -> RetrainRequest:
    """Ask for the champion to be retrained into candidate `name` (base folders monitoring.retrain_base plus every
    live label); the supervisor runs requests one at a time, oldest first. Audited."""
    if not is_model_version_name(name):
        raise XscreenError(f"model name {name!r} is not allowed: use 1-64 letters, digits, '.', '_' or '-' (and not "
                           "'champion')", title="Bad argument")
    if not reason.strip():
        raise XscreenError("say why the model is retrained (the reason is kept with the request)", title="Bad argument")
    if first(cur, "SELECT 1 FROM models WHERE version = ?", [name]) or first(
            cur, "SELECT 1 FROM retrain_requests WHERE name = ? AND status IN ('pending', 'running')", [name]):
        raise ConflictError(f"model version {name!r} already exists or is already being retrained: choose another name")
    request = RetrainRequest(request_id=uuid.uuid4().hex, name=name, reason=reason.strip(), requested_by=actor,
                             requested_at=now)
    cur.execute(f"INSERT INTO retrain_requests ({_RETRAIN_COLUMNS}) VALUES (?, ?, ?, ?, ?, 'pending', NULL, NULL, "
                "NULL)", [request.request_id, name, request.reason, actor, now])
    audit_row(cur, now, actor, "request_retrain", name, reason=request.reason, request_id=request.request_id)
    return request


@read()
def retrain_requests(cur: duckdb.DuckDBPyConnection, limit: int = 50) -> list[RetrainRequest]:
    """The latest retraining requests, newest first."""
    cur.execute(f"SELECT {_RETRAIN_COLUMNS} FROM retrain_requests ORDER BY requested_at DESC, rowid DESC LIMIT ?",
                [int(limit)])
    return [RetrainRequest(**row) for row in dicts(cur)]


@read()
def retrain_waiting(cur: duckdb.DuckDBPyConnection) -> bool:
    """Whether a request is pending and none runs: what the runner asks every interval before it claims, so that an
    idle runner reads instead of taking the writer for an empty transaction."""
    return first(cur, "SELECT 1 FROM retrain_requests WHERE status = 'pending' AND NOT EXISTS "
                      "(SELECT 1 FROM retrain_requests WHERE status = 'running') LIMIT 1") is not None


@write(process_only=True)
def claim_retrain(cur: duckdb.DuckDBPyConnection, *, now: datetime) -> RetrainRequest | None:
    """The oldest pending request, now `running`; None when none waits or one is already running (one at a time:
    two trainings on one host would halve each other)."""
    if not retrain_waiting(cur):  # the one statement of "pending, and none running"
        return None
    cur.execute(f"SELECT {_RETRAIN_COLUMNS} FROM retrain_requests WHERE status = 'pending' "
                "ORDER BY requested_at, rowid LIMIT 1")  # rowid: the order asked in, within one clock tick
    rows = dicts(cur)
    if not rows:
        return None
    cur.execute("UPDATE retrain_requests SET status = 'running', started_at = ? WHERE request_id = ?",
                [now, rows[0]["request_id"]])
    return RetrainRequest(**{**rows[0], "status": "running", "started_at": now})


@write(process_only=True)
def finish_retrain(cur: duckdb.DuckDBPyConnection, request_id: str, ok: bool, message: str, *,
                   now: datetime) -> None:
    """Close a running request: `done` or `failed`, with the end of the run's output. Audited as the system."""
    row = first(cur, "SELECT name, status FROM retrain_requests WHERE request_id = ?", [request_id])
    if row is None:
        raise NotFoundError(f"no retraining request {request_id!r}")
    if row[1] != "running":
        raise ConflictError(f"retraining request {request_id} is {row[1]}, not running")
    status = "done" if ok else "failed"
    cur.execute("UPDATE retrain_requests SET status = ?, finished_at = ?, message = ? WHERE request_id = ?",
                [status, now, message[-2000:], request_id])
    audit_row(cur, now, "system", f"retrain_{status}", row[0], request_id=request_id)


@write(process_only=True)
def fail_running_retrains(cur: duckdb.DuckDBPyConnection, message: str, *, now: datetime) -> int:
    """Mark every `running` request failed (a supervisor starting finds one its killed predecessor left); returns
    how many."""
    n = first(cur, "SELECT count(*) FROM retrain_requests WHERE status = 'running'")
    cur.execute("UPDATE retrain_requests SET status = 'failed', finished_at = ?, message = ? WHERE status = 'running'",
                [now, message])
    return int(n[0]) if n else 0
