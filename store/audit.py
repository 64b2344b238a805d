"""Audit domain: the append-only, hash-chained audit log (store/audit_chain.py) and the whole-store check.

Rows are written only by the store, in the transaction of what they record (`audit_row`, called by the other
domains), stamped with its clock. `audit` lets a process add a row of its own kind; actions the store records
itself are refused, so nobody can add a decision, a login or a promotion that did not happen.
"""

from __future__ import annotations

import json
import re
import uuid
from datetime import datetime
from typing import Any

import duckdb

from store import audit_chain, integrity
from store.audit_chain import ChainReport
from store.integrity import IntegrityReport
from store.ops import read, write
from xscreen.errors import PermissionDenied, XscreenError
from xscreen.records import AuditRecord

# Audit actions the store writes itself, in the transaction of what they record: `audit` refuses them.
STORE_ACTIONS = frozenset({
    "login", "login_failed", "passwd_check_failed", "logout", "decision", "relabel", "model_register",
    "model_state", "promote", "rollback", "user_add", "user_passwd", "user_disable", "alert_status", "setting",
    "sql", "sql_refused", "snapshot", "token_issue", "token_revoke", "backup", "restore", "image_moved",
    "images_expired", "reading", "adjudicate",
})
ACTION_RE = re.compile(r"^[a-z][a-z0-9_]{1,47}$")


def to_json(value: Any) -> str | None:
    """A JSON column value (compact; datetimes and paths as strings)."""
    return None if value is None else json.dumps(value, separators=(",", ":"), default=str)


def loads(value: Any) -> Any:
    """A JSON column as Python (DuckDB returns JSON as text)."""
    return json.loads(value) if isinstance(value, str) else value


def write_audit(cur: duckdb.DuckDBPyConnection, rec: AuditRecord) -> None:
    """Append the row to the audit log's hash chain, in the open transaction."""
    audit_chain.append(cur, rec.audit_id, rec.at, rec.actor, rec.action, rec.target, to_json(rec.details))


def audit_row(cur: duckdb.DuckDBPyConnection, now: datetime, actor: str, action: str, target: str | None,
              **details: Any) -> None:
    """Record `action` by `actor` on `target` at the transaction's time (used by every domain's writes)."""
    write_audit(cur, AuditRecord(audit_id=uuid.uuid4().hex, at=now, actor=actor, action=action, target=target,
                                 details=details))


def check_audit_action(action: str) -> None:
    if not ACTION_RE.match(action):
        raise XscreenError(f"audit action {action!r} must be 2-48 characters of a-z, 0-9, '_'",
                           title="Invalid audit row")
    if action in STORE_ACTIONS:
        raise PermissionDenied(f"audit action {action!r} is recorded by the store itself, with what it records")


@write(actor="actor")
def audit(cur: duckdb.DuckDBPyConnection, action: str, target: str | None = None,
          details: dict[str, Any] | None = None, actor: str = "system", *, now: datetime) -> None:
    """Append an audit row stamped with the store's clock (callers choose neither the time nor, when signed in,
    the actor). Actions the store records itself (login, decision, promote, ...) are refused."""
    check_audit_action(action)
    audit_row(cur, now, actor, action, target, **(details or {}))


@read(action="read_audit")
def audit_log(cur: duckdb.DuckDBPyConnection, limit: int = 200, actor: str | None = None,
              action: str | None = None) -> list[AuditRecord]:
    """Audit rows, newest first (by their place in the chain), optionally of one actor and/or action."""
    cur.execute("SELECT * EXCLUDE (logged_at, prev_hash, row_hash), logged_at AS at FROM audit_log "
                "WHERE ($actor::VARCHAR IS NULL OR actor = $actor::VARCHAR) AND "
                "($action::VARCHAR IS NULL OR action = $action::VARCHAR) ORDER BY seq DESC LIMIT $limit",
                {"actor": actor, "action": action, "limit": int(limit)})
    names = [d[0] for d in cur.description or []]
    return [AuditRecord(**{**dict(zip(names, r, strict=True)), "details": loads(r[names.index("details")]) or {}})
            for r in cur.fetchall()]


@read(action="read_audit")
def verify_audit(cur: duckdb.DuckDBPyConnection, anchor: str | None = None) -> ChainReport:
    """Check the audit log's hash chain from its first row; the first broken row is reported. `anchor`: a head
    printed by an earlier check ("SEQ:HASH"), which must still be in the chain."""
    return audit_chain.verify(cur, audit_chain.parse_anchor(anchor) if anchor else None)


@read(action="read_audit")
def integrity_check(cur: duckdb.DuckDBPyConnection) -> IntegrityReport:
    """Read every table whole and check the uniqueness invariants and the audit chain (store/integrity.py)."""
    return integrity.check(cur)
