"""Signed-in sessions and role checks as pure functions: the app calls them on every page and action.

A page or action is allowed by role, never by whether its link is shown. Sessions themselves live in the store
(`StoreAPI.login` / `resolve_token` / `logout`); the app keeps the token, and `CookieHandoff` lets a browser keep
it in an HttpOnly cookie across a refresh. The clock is an argument.
"""

from __future__ import annotations

import secrets
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from analytics.records import Principal, Role, SessionGrant
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
    "back_up": frozenset({"admin"}),
}


@dataclass(frozen=True)
class Session:
    """A signed-in person as the app knows them. The store owns the session behind `token` (sliding expiry after
    `app.session_ttl_minutes`, revocation at sign-out or when the user is disabled); the app re-checks the token
    on every page run and sends it with every store call, so the store records this person as the actor."""

    username: str
    role: Role
    token: str = field(repr=False)


def from_grant(grant: SessionGrant) -> Session:
    """The app's session for a successful `StoreAPI.login`; refuses a disabled user."""
    if grant.user.disabled:
        raise AuthError(f"user {grant.user.username} is disabled")
    return Session(grant.user.username, grant.user.role, grant.token)


def from_principal(principal: Principal, token: str) -> Session:
    """The app's session for a token the store resolved (a refreshed page, a restored cookie); only a person's
    session opens the app, never a scanner's token."""
    if principal.kind != "user" or principal.role is None:
        raise AuthError("this token is not a person's session; please sign in")
    return Session(principal.name, principal.role, token)


class CookieHandoff:
    """One-time codes that let the browser collect its session cookie without the session token appearing in the
    page: the app issues a code for the token, the page's script posts the code to the dashboard's cookie route,
    which redeems it (once, within `ttl_s`) and sets an HttpOnly cookie. Thread-safe; the clock is an argument."""

    def __init__(self, ttl_s: float = 60.0, clock: Callable[[], float] = time.monotonic, max_pending: int = 10_000):
        self._ttl_s, self._clock, self._max = ttl_s, clock, max_pending
        self._codes: dict[str, tuple[str, float]] = {}  # code -> (token, issued at)
        self._lock = threading.Lock()

    def issue(self, token: str) -> str:
        with self._lock:
            now = self._clock()
            self._codes = {c: v for c, v in self._codes.items() if now - v[1] < self._ttl_s}  # drop the stale
            if len(self._codes) >= self._max:
                raise AuthError("too many sign-ins waiting for their cookie; try again in a minute")
            code = secrets.token_urlsafe(24)
            self._codes[code] = (token, now)
            return code

    def pending(self, code: str) -> bool:
        """True while `code` waits to be redeemed (issued, not yet used, not expired)."""
        with self._lock:
            got = self._codes.get(code)
            return got is not None and self._clock() - got[1] < self._ttl_s

    def redeem(self, code: str) -> str | None:
        """The token for `code`, once; None when unknown, already used or expired."""
        with self._lock:
            got = self._codes.pop(code, None)
        if got is None or self._clock() - got[1] >= self._ttl_s:
            return None
        return got[0]


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
