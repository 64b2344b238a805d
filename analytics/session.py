"""Signed-in sessions and role checks as pure functions: the app calls them on every page and action.

A page or action is allowed by role, never by whether its link is shown. The clock is an argument.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from analytics.records import Role, UserRecord
from xscreen.errors import AuthError, PermissionDenied

ALL_ROLES: frozenset[Role] = frozenset({"officer", "supervisor", "analyst", "admin"})

# Who may open each page. Officers triage; supervisors also relabel and run the model registry;
# analysts read dashboards and SQL; admins may do everything.
PAGE_ROLES: dict[str, frozenset[Role]] = {
    "triage": frozenset({"officer", "supervisor", "admin"}),
    "drift": frozenset({"supervisor", "analyst", "admin"}),
    "relabel": frozenset({"officer", "supervisor", "analyst", "admin"}),
    "models": frozenset({"supervisor", "analyst", "admin"}),
    "sql": frozenset({"analyst", "supervisor", "admin"}),
    "whatif": frozenset({"supervisor", "analyst", "admin"}),
}

# Actions that change state, and who may take them.
ACTION_ROLES: dict[str, frozenset[Role]] = {
    "decide": frozenset({"officer", "supervisor", "admin"}),
    "relabel": frozenset({"officer", "supervisor", "analyst", "admin"}),
    "adjudicate": frozenset({"supervisor", "admin"}),
    "export_training_set": frozenset({"supervisor", "analyst", "admin"}),
    "promote": frozenset({"supervisor", "admin"}),
    "rollback": frozenset({"supervisor", "admin"}),
    "change_settings": frozenset({"supervisor", "admin"}),
    "handle_alerts": frozenset({"supervisor", "admin"}),
    "manage_users": frozenset({"admin"}),
    "run_sql": frozenset({"analyst", "supervisor", "admin"}),
    "read_audit": frozenset({"supervisor", "admin"}),
}


@dataclass(frozen=True)
class Session:
    username: str
    role: Role
    issued_at: datetime
    last_seen: datetime
    ttl: timedelta

    @property
    def expires_at(self) -> datetime:
        return self.last_seen + self.ttl


def new_session(user: UserRecord, now: datetime, ttl_minutes: float) -> Session:
    """A session for a user the store owner has just authenticated; refuses disabled users."""
    if user.disabled:
        raise AuthError(f"user {user.username} is disabled")
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware (UTC)")
    return Session(user.username, user.role, now, now, timedelta(minutes=ttl_minutes))


def touch(session: Session | None, now: datetime) -> Session:
    """The session with its activity time moved to `now`; AuthError when absent or expired."""
    if session is None:
        raise AuthError("please sign in")
    if now >= session.expires_at:
        raise AuthError(f"session of {session.username} expired at {session.expires_at:%H:%M} UTC; please sign in again")
    return replace(session, last_seen=now)


def _require(role: Role, allowed: Iterable[Role], what: str) -> None:
    if role not in frozenset(allowed):
        raise PermissionDenied(f"role '{role}' may not {what}")


def require_page(session: Session, page: str) -> None:
    """PermissionDenied unless the session's role may open `page` (a key of PAGE_ROLES)."""
    if page not in PAGE_ROLES:
        raise KeyError(f"unknown page {page!r}")
    _require(session.role, PAGE_ROLES[page], f"open the {page} page")


def require_action(session: Session, action: str) -> None:
    """PermissionDenied unless the session's role may take `action` (a key of ACTION_ROLES)."""
    if action not in ACTION_ROLES:
        raise KeyError(f"unknown action {action!r}")
    _require(session.role, ACTION_ROLES[action], action.replace("_", " "))


def allowed_pages(role: Role) -> list[str]:
    """Pages shown in the navigation for a role (the pages re-check on their own)."""
    return [page for page, roles in PAGE_ROLES.items() if role in roles]
