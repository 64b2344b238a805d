"""Who may call which store method over HTTP, and under which name it is recorded (used by the owner only).

Two kinds of caller reach the owner, both holding the owner token (analytics/identity.py):
- a host process acting as itself (CLI `cli:<os user>`, serving, setup): trusted like the OS user that runs
  xscreen, who could open the database file anyway; the actor it names is recorded;
- a process acting for a signed-in person, with `X-Xscreen-Session: <token>`: the owner resolves the token to a
  `Principal`, checks that the person's role may call the method, and records the person as the actor. An
  `actor`/`officer`/`author` argument naming someone else is refused (PermissionDenied), one left at its
  default is replaced.
Scanner tokens are for /v1 only: forwarded to the owner, they may call nothing.
"""

from __future__ import annotations

import inspect
from typing import Any

from analytics.api import StoreAPI
from analytics.records import DecisionRecord, LabelRecord, Principal, Role
from analytics.session import ACTION_ROLES
from xscreen.errors import PermissionDenied

# The argument of each method that names who acts.
ACTOR_ARG: dict[str, str] = {
    "register_model": "actor", "set_model_state": "actor", "rollback": "actor", "set_alert_status": "actor",
    "put_setting": "actor", "add_user": "actor", "set_password": "actor", "disable_user": "actor",
    "sql": "actor", "issue_scanner_token": "actor", "revoke_token": "actor",
    "queue": "officer", "claim": "officer", "release": "officer",
}

# The action (analytics.session.ACTION_ROLES) a person's role must allow to call a method. Methods not listed
# are reads any signed-in person may make, or the session calls themselves.
METHOD_ACTION: dict[str, str] = {
    "queue": "decide", "claim": "decide", "release": "decide", "record_decision": "decide",
    "add_labels": "relabel",
    "register_model": "promote", "set_model_state": "promote", "rollback": "rollback",
    "put_setting": "change_settings", "set_alert_status": "handle_alerts",
    "add_user": "manage_users", "disable_user": "manage_users", "issue_scanner_token": "manage_users",
    "revoke_token": "manage_users", "list_tokens": "manage_users",
    "sql": "run_sql", "snapshot": "run_sql", "audit_log": "read_audit",
}
# Only host processes: a person never ingests scans.
PROCESS_ONLY = frozenset({"ingest"})


def _default(method: str, arg: str) -> Any:
    return inspect.signature(getattr(StoreAPI, method)).parameters[arg].default


def _same_person(principal: Principal, given: Any, what: str) -> None:
    if given != principal.name:
        raise PermissionDenied(f"signed in as {principal.name}, so {what} must be {principal.name}, not {given!r}")


def check_role(method: str, role: Role | None) -> None:
    """PermissionDenied unless `role` may call `method` (set_password is checked by the store: self or admin)."""
    action = METHOD_ACTION.get(method)
    if method in PROCESS_ONLY:
        raise PermissionDenied(f"{method} is for the serving processes, not for a signed-in person")
    if action is not None and role not in ACTION_ROLES[action]:
        raise PermissionDenied(f"role '{role}' may not {action.replace('_', ' ')}")


def bind(method: str, kwargs: dict[str, Any], principal: Principal | None) -> dict[str, Any]:
    """The arguments to call `method` with for `principal` (None: a host process acting as itself)."""
    if principal is None:
        return kwargs
    if principal.kind != "user":
        raise PermissionDenied(f"a scanner token may not call {method} on the store")
    check_role(method, principal.role)
    out = dict(kwargs)
    arg = ACTOR_ARG.get(method)
    if arg is not None:
        if out.get(arg, _default(method, arg)) != _default(method, arg):
            _same_person(principal, out[arg], arg)
        out[arg] = principal.name
    decision = out.get("decision")
    if method == "record_decision" and isinstance(decision, DecisionRecord):
        _same_person(principal, decision.officer, "the decision's officer")
    if method == "add_labels":
        for label in out.get("labels", []):
            if isinstance(label, LabelRecord):
                _same_person(principal, label.author, "a label's author")
    return out
