"""Who may do what: the pages and the state-changing actions of xscreen, and the roles allowed each.

A page or action is allowed by role, never by whether its link is shown. The app checks these on every page run
and click; the store owner checks the same table for every operation a signed-in person calls (store/authz.py).
"""

from __future__ import annotations

from collections.abc import Iterable

from xscreen.errors import PermissionDenied
from xscreen.records import Role

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
    "officers": frozenset({"supervisor", "admin"}),
}

# Actions that change state, and who may take them.
ACTION_ROLES: dict[str, frozenset[Role]] = {
    "decide": frozenset({"officer", "supervisor", "admin"}),
    "relabel": frozenset({"officer", "supervisor", "analyst", "admin"}),
    "adjudicate": frozenset({"supervisor", "admin"}),
    "export_training_set": frozenset({"supervisor", "analyst", "admin"}),
    "promote": frozenset({"supervisor", "admin"}),
    "retrain": frozenset({"supervisor", "admin"}),
    "rollback": frozenset({"supervisor", "admin"}),
    "change_settings": frozenset({"supervisor", "admin"}),
    "handle_alerts": frozenset({"supervisor", "admin"}),
    "manage_users": frozenset({"admin"}),
    "run_sql": frozenset({"analyst", "supervisor", "admin"}),
    "read_audit": frozenset({"supervisor", "admin"}),
    "back_up": frozenset({"admin"}),
    # which queue items are audits must stay hidden from officers, or they could tell them from flagged ones
    "read_ground_truth": frozenset({"supervisor", "analyst", "admin"}),
    "read_officer_analytics": frozenset({"supervisor", "admin"}),
}


def _require(role: Role | None, allowed: Iterable[Role], what: str) -> None:
    if role not in frozenset(allowed):
        raise PermissionDenied(f"role '{role}' may not {what}")


def require_page(role: Role, page: str) -> None:
    """PermissionDenied unless `role` may open `page` (a key of PAGE_ROLES)."""
    if page not in PAGE_ROLES:
        raise KeyError(f"unknown page {page!r}")
    _require(role, PAGE_ROLES[page], f"open the {page} page")


def require_action(role: Role | None, action: str) -> None:
    """PermissionDenied unless `role` may take `action` (a key of ACTION_ROLES)."""
    if action not in ACTION_ROLES:
        raise KeyError(f"unknown action {action!r}")
    _require(role, ACTION_ROLES[action], action.replace("_", " "))


def allowed_pages(role: Role) -> list[str]:
    """Pages shown in the navigation for a role (the pages re-check on their own)."""
    return [page for page, roles in PAGE_ROLES.items() if role in roles]
