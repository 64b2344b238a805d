"""Models domain: the registry of model versions, their states, promotion and rollback, and the champion and
shadow side by side on live traffic.

Exactly one `champion`: promoting retires the old one in the same transaction, records `model_events`, and sets
`settings_kv['champion']` and `['thresholds']`; `rollback` re-promotes the previous champion from `model_events`.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Any

import duckdb
import pandas as pd

from store.audit import audit_row, loads, to_json
from store.fetch import dicts, first, in_window
from store.ops import read, write
from store.settings_kv import set_value
from xscreen.errors import ConflictError, NotFoundError
from xscreen.records import ModelRecord, ModelState

CHAMPION_KEY = "champion"
THRESHOLDS_KEY = "thresholds"
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
    cur.execute("INSERT INTO models VALUES (?, ?, 'candidate', ?, ?, ?::JSON, ?, ?::JSON, ?::JSON, ?::JSON, ?, ?)",
                [m.version, m.parent, m.created_at, m.classes, to_json(m.architecture), m.train_manifest_sha256,
                 to_json(m.metrics), to_json(m.thresholds), to_json(m.calibration), m.weights_path, m.weights_sha256])
    _event(cur, m.version, None, "candidate", actor, "registered", now)
    audit_row(cur, now, actor, "model_register", m.version, weights_sha256=m.weights_sha256)
    if m.state != "candidate":
        set_model_state(cur, m.version, m.state, actor, "registered", now=now)


@write(action="promote", actor="actor")
def set_model_state(cur: duckdb.DuckDBPyConnection, version: str, state: ModelState, actor: str,
                    reason: str | None = None, *, now: datetime) -> None:
    """Move a model to `state`. Promoting to champion retires the old champion in the same transaction."""
    old = _model_state(cur, version)
    if old == state:
        return
    if state == "champion":
        for (prev,) in cur.execute("SELECT version FROM models WHERE state = 'champion'").fetchall():
            cur.execute("UPDATE models SET state = 'retired' WHERE version = ?", [prev])
            _event(cur, prev, "champion", "retired", actor, f"replaced by {version}", now)
        thresholds = first(cur, "SELECT thresholds FROM models WHERE version = ?", [version])
        set_value(cur, CHAMPION_KEY, version, actor, now)
        set_value(cur, THRESHOLDS_KEY, json.loads(thresholds[0]) if thresholds and thresholds[0] else {}, actor, now)
    elif old == "champion":
        cur.execute("DELETE FROM settings_kv WHERE key = ?", [CHAMPION_KEY])
    cur.execute("UPDATE models SET state = ? WHERE version = ?", [state, version])
    _event(cur, version, old, state, actor, reason, now)
    audit_row(cur, now, actor, "promote" if state == "champion" else "model_state", version,
              from_state=old, to_state=state, reason=reason)


@write(action="rollback", actor="actor")
def rollback(cur: duckdb.DuckDBPyConnection, actor: str, reason: str | None = None, *, now: datetime) -> str:
    """Put the champion before the current one back in force; returns its version."""
    current = first(cur, "SELECT version FROM models WHERE state = 'champion'")
    rows = cur.execute("SELECT version FROM model_events WHERE to_state = 'champion' ORDER BY changed_at DESC").fetchall()
    previous = next((r[0] for r in rows if current is None or r[0] != current[0]), None)
    if previous is None:
        raise NotFoundError("no previous champion to roll back to")
    set_model_state(cur, previous, "champion", actor, reason or "rollback", now=now)
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
