"""What every page shares: settings and the store client (built once per process), the signed-in session, guards."""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import streamlit as st

from analytics import health_view
from pages import _cookie
from pages import _session as sessions
from xscreen import roles
from xscreen.errors import AuthError, PermissionDenied, XscreenError
from xscreen.health import fetch_serving_health, merge
from xscreen.records import Role
from xscreen.settings import Settings, load_settings

SESSION_KEY = "xs_session"
# Every page of the app by its url path, in navigation order (xscreen.roles.PAGE_ROLES says who may open it).
PAGE_TITLES = {"triage": "Live triage", "drift": "Drift & accuracy", "relabel": "Relabelling", "models": "Models",
               "sql": "Analyst SQL", "whatif": "Threshold what-if", "officers": "Officers"}
# Test hook: AppTest sets session_state["xs_now"] so windows line up with a store seeded at a fixed time.
# Only server code can write session_state, so a browser cannot move the clock.
CLOCK_KEY = "xs_now"
T = TypeVar("T")


def now() -> datetime:
    fixed = st.session_state.get(CLOCK_KEY)
    return fixed if isinstance(fixed, datetime) else datetime.now(UTC)


@st.cache_resource(show_spinner=False)
def _settings_for(env: tuple[tuple[str, str], ...]) -> Settings:
    return load_settings(environ=dict(env))  # reads exactly these variables; the process environment is untouched


def settings() -> Settings:
    """The app's settings, built once per distinct XSCREEN_* environment (tests run several stores in one process)."""
    env = tuple(sorted((k, v) for k, v in os.environ.items() if k.startswith("XSCREEN_")))  # the cache key
    return _settings_for(env)


@st.cache_resource(show_spinner=False)
def _client_for(url: str) -> Any:
    from store.client import StoreClient

    return StoreClient.from_settings(settings())  # `url` is the cache key: one client per store


def _owner() -> Any:
    """The store owner's client acting as the app process itself: only for signing in and out and checking a
    session token. Everything done for a person goes through store(session)."""
    return _client_for(settings().store_url)


def store(s: sessions.Session) -> Any:
    """The store client acting for the signed-in person: every call carries their session, so the store checks
    their role and records them (not the app) as the actor."""
    return _owner().as_user(s.token)


@st.cache_data(ttl=10, show_spinner=False)
def _screening_health(store_url: str, api_url: str) -> dict[str, Any]:
    """The screening pipeline's health as serving reports it (/healthz: watcher backlog, scoring, spool and store
    failures; xscreen.health, the contract both sides share), with the store owner's own answer; cached 10 s
    across sessions (the urls are the cache key)."""
    try:
        answer, error = _owner().health(), None
    except XscreenError as err:
        answer, error = None, str(err)
    return merge(fetch_serving_health(settings()), health_view.store_health(answer, error))


def health_banner(s: sessions.Session) -> None:
    """Supervisors and admins see at the top of every page when screening is degraded or down, and why."""
    if s.role in ("supervisor", "admin"):
        text = health_view.degraded_banner(_screening_health(settings().store_url, settings().api_url))
        if text:
            st.warning(text, icon=":material/warning:")


def current_session() -> sessions.Session | None:
    """The signed-in person: this page's session, else the one the browser's cookie names (a refresh, a new tab,
    a bookmarked page), checked with the store on every run; None (with a message if a session just ended)."""
    s = st.session_state.get(SESSION_KEY)
    token = s.token if s is not None else _cookie.token_from_browser(settings())
    if token is None:
        return None
    try:
        s = sessions.from_principal(_owner().resolve_token(token), token)
    except AuthError as err:  # expired, signed out elsewhere, user disabled: the store said no
        if st.session_state.pop(SESSION_KEY, None) is not None:
            st.warning(f"{err} Please sign in again.")
        _cookie.forget_in_browser(refused=token)
        return None
    except XscreenError as err:  # the store cannot answer now: say so, and keep what this page knew
        st.error(f"**{err.title}**: {err}")
        return s
    st.session_state[SESSION_KEY] = s
    return s


def guard(page: str) -> sessions.Session:
    """Stop the page unless a signed-in user whose role may open it is present (checked server-side). Signed out,
    the page shows the sign-in form instead, so a bookmarked page opens once the user has signed in."""
    s = current_session()
    if s is None:
        sign_in_form(f"Sign in to open **{PAGE_TITLES[page]}**.")
        st.stop()
    try:
        roles.require_page(s.role, page)
    except PermissionDenied as err:
        st.error(f"{err.title}: {err}")
        st.stop()
    health_banner(s)
    return s


def allowed(s: sessions.Session, action: str) -> bool:
    try:
        roles.require_action(s.role, action)
    except PermissionDenied:
        return False
    return True


def attempt(fn: Callable[[], T]) -> T | None:
    """Run a store call; an XscreenError becomes st.error(title, message) and None. Anything else is a bug."""
    try:
        return fn()
    except XscreenError as err:
        st.error(f"**{err.title}**: {err}")
        return None


def act(fn: Callable[[], Any]) -> bool:
    """Run a store write; True when it succeeded, else the error is shown and False returned."""
    try:
        fn()
    except XscreenError as err:
        st.error(f"**{err.title}**: {err}")
        return False
    return True


def require_action(s: sessions.Session, action: str) -> None:
    """Stop with an error unless the role may take `action`: the check runs on the server for every click."""
    try:
        roles.require_action(s.role, action)
    except PermissionDenied as err:
        st.error(f"{err.title}: {err}")
        st.stop()


def sign_in(username: str, password: str) -> bool:
    """Open a store session for the username and password (the store checks them, rate-limits failures and audits
    both); keep its token here and in the browser's cookie. False (with a message) on failure."""
    grant = attempt(lambda: _owner().login(username, password, source=f"dashboard {st.context.ip_address or '-'}"))
    s = attempt(lambda: sessions.from_grant(grant)) if grant is not None else None
    if s is None:
        return False
    st.session_state.pop(_cookie.REFUSED, None)
    st.session_state[SESSION_KEY] = s
    _cookie.keep_in_browser(s.token)
    return True


def sign_in_form(caption: str | None = None) -> None:
    """The sign-in form; on success the script reruns, on the same page, now signed in."""
    st.title("xscreen: sign in")
    if caption:
        st.caption(caption)
    with st.form("login_form"):
        username = st.text_input("Username", key="login_user")
        password = st.text_input("Password", type="password", key="login_password")
        submitted = st.form_submit_button("Sign in", key="login_submit")
    if submitted and sign_in(username, password):
        st.rerun()
    st.caption("Accounts are created by an administrator with `xscreen users add`.")


def sign_out(s: sessions.Session) -> None:
    """End the session in the store (the token is dead everywhere, whatever the browser keeps), forget this page's
    state, and have the browser drop its cookie."""
    attempt(lambda: _owner().logout(s.token))
    st.session_state.clear()
    _cookie.forget_in_browser(refused=s.token)


def role_label(role: Role) -> str:
    return role.capitalize()
