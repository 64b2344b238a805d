"""Who may call which store method over HTTP, and under which name it is recorded (used by the owner only).

Two kinds of caller reach the owner, both holding the owner token (analytics/identity.py):
- a host process acting as itself (CLI `cli:<os user>`, serving, setup): trusted like the OS user that runs
  xscreen, who could open the database file anyway; the actor it names is recorded;
- a process acting for a signed-in person, with `X-Xscreen-Session: <token>`: the owner resolves the token to a
  `Principal`, checks that the person's role may call the method, and records the person as the actor. An
  `actor`/`officer`/`author` argument naming someone else is refused (PermissionDenied), one left at its
  default is replaced.
Scanner tokens are for /v1 only: forwarded to the owner, they may call nothing. With `auth.require_sessions`, a
caller without a session may act only under a process name (`cli:<user>`, `system`, ...), never a person's.
"""

from __future__ import annotations

import inspect
from typing import Any

from analytics.api import StoreAPI
from analytics.auth import is_process_name
from analytics.records import DecisionRecord, LabelRecord, Principal, Role
from analytics.session import ACTION_ROLES
from xscreen.errors import PermissionDenied

# The argument of each method that names who acts.
ACTOR_ARG: dict[str, str] = {
    "register_model": "actor", "set_model_state": "actor", "rollback": "actor", "set_alert_status": "actor",
    "put_setting": "actor", "add_user": "actor", "set_password": "actor", "disable_user": "actor",
    "sql": "actor", "issue_scanner_token": "actor", "revoke_token": "actor", "audit": "actor", "snapshot": "actor",
    "backup": "actor",
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
    "sql": "run_sql", "snapshot": "run_sql", "audit_log": "read_audit", "verify_audit": "read_audit",
    "integrity_check": "read_audit", "backup": "back_up",
}
# Only host processes: a person never ingests scans.
PROCESS_ONLY = frozenset({"ingest"})


def _default(method: str, arg: str) -> Any:
    return inspect.signature(getattr(StoreAPI, method)).parameters[arg].default


def _same_person(principal: Principal, given: Any, what: str) -> None:
    """PermissionDenied unless `given` (an actor, officer or author) is the signed-in person."""
    if given != principal.name:
        raise PermissionDenied(f"signed in as {principal.name}, so {what} must be {principal.name}, not {given!r}")


def check_role(method: str, role: Role | None) -> None:
    """PermissionDenied unless `role` may call `method` (set_password is checked by the store: self or admin)."""
    action = METHOD_ACTION.get(method)
    if method in PROCESS_ONLY:
        raise PermissionDenied(f"{method} is for the serving processes, not for a signed-in person")
    if action is not None and role not in ACTION_ROLES[action]:
        raise PermissionDenied(f"role '{role}' may not {action.replace('_', ' ')}")


def _names_in(method: str, kwargs: dict[str, Any]) -> list[tuple[str, Any]]:
    """(what, name) of everyone the arguments say is acting: actor/officer, a decision's officer, authors."""
    names = []
    arg = ACTOR_ARG.get(method)
    if arg is not None:
        names.append((arg, kwargs.get(arg, _default(method, arg))))
    decision = kwargs.get("decision")
    if method == "record_decision" and isinstance(decision, DecisionRecord):
        names.append(("the decision's officer", decision.officer))
    if method == "add_labels":
        names += [("a label's author", r.author) for r in kwargs.get("labels", []) if isinstance(r, LabelRecord)]
    return names


def _as_process(method: str, kwargs: dict[str, Any]) -> None:
    """With auth.require_sessions: a caller without a session may act only under a process name."""
    for what, name in _names_in(method, kwargs):
        if isinstance(name, str) and not is_process_name(name):
            raise PermissionDenied(f"{what} {name!r} names a person: act for a person with their session "
                                   "(X-Xscreen-Session), or as a process (cli:<user>, system, serving)")


def _password_change(kwargs: dict[str, Any], principal: Principal) -> None:
    """A person changes their own password with the old one; only an admin sets someone's without it."""
    if principal.role == "admin":
        return
    if kwargs.get("username") != principal.name:
        raise PermissionDenied(f"role '{principal.role}' may change only its own password")
    if kwargs.get("old_password") is None:
        raise PermissionDenied("changing your password needs your current password (old_password)")


def bind(method: str, kwargs: dict[str, Any], principal: Principal | None,
         require_sessions: bool = False) -> dict[str, Any]:
    """The arguments to call `method` with for `principal` (None: a host process acting as itself)."""
    if principal is None:
        if require_sessions:
            _as_process(method, kwargs)
        return kwargs
    if principal.kind != "user":
        raise PermissionDenied(f"a scanner token may not call {method} on the store")
    check_role(method, principal.role)
    if method == "set_password":
        _password_change(kwargs, principal)
    arg = ACTOR_ARG.get(method)
    for what, name in _names_in(method, kwargs):
        if not (what == arg and name == _default(method, arg)):  # a default actor is replaced, not refused
            _same_person(principal, name, what)
    return {**kwargs, arg: principal.name} if arg is not None else kwargs
