"""What every page shares: settings and the store client (built once per process), the signed-in session, guards."""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import streamlit as st

from analytics import session as sessions
from analytics.records import Role
from xscreen.errors import AuthError, PermissionDenied, XscreenError
from xscreen.settings import Settings, load_settings

SESSION_KEY = "xs_session"
# Every page of the app by its url path, in navigation order (analytics.session.PAGE_ROLES says who may open it).
PAGE_TITLES = {"triage": "Live triage", "drift": "Drift & accuracy", "relabel": "Relabelling", "models": "Models",
               "sql": "Analyst SQL", "whatif": "Threshold what-if"}
# Test hook: AppTest sets session_state["xs_now"] so windows line up with a store seeded at a fixed time.
# Only server code can write session_state, so a browser cannot move the clock.
CLOCK_KEY = "xs_now"
T = TypeVar("T")


def now() -> datetime:
    fixed = st.session_state.get(CLOCK_KEY)
    return fixed if isinstance(fixed, datetime) else datetime.now(UTC)


@st.cache_resource(show_spinner=False)
def _settings_for(env: tuple[tuple[str, str], ...]) -> Settings:
    # `env` is only the cache key. load_settings(environ=...) would swap os.environ for a moment, which other
    # sessions' threads could observe, so the settings are read from the real environment.
    del env
    return load_settings()


def settings() -> Settings:
    """The app's settings, built once per distinct XSCREEN_* environment (tests run several stores in one process)."""
    env = tuple(sorted((k, v) for k, v in os.environ.items() if k.startswith("XSCREEN_")))
    return _settings_for(env)


@st.cache_resource(show_spinner=False)
def _client_for(url: str) -> Any:
    from analytics.client import StoreClient

    return StoreClient.from_settings(settings())  # `url` is the cache key: one client per store


def client() -> Any:
    """The HTTP client of the store owner at settings.store_url: the app never opens the database file."""
    return _client_for(settings().store_url)


def current_session() -> sessions.Session | None:
    """The signed-in session, refreshed; None (and a message) when absent or expired."""
    try:
        s = sessions.touch(st.session_state.get(SESSION_KEY), now())
    except AuthError as err:
        if st.session_state.get(SESSION_KEY) is not None:
            st.session_state.pop(SESSION_KEY)
            st.warning(str(err))
        return None
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
        sessions.require_page(s, page)
    except PermissionDenied as err:
        st.error(f"{err.title}: {err}")
        st.stop()
    return s


def allowed(s: sessions.Session, action: str) -> bool:
    try:
        sessions.require_action(s, action)
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
        sessions.require_action(s, action)
    except PermissionDenied as err:
        st.error(f"{err.title}: {err}")
        st.stop()


def sign_in(username: str, password: str) -> bool:
    """Authenticate through the store owner and start a session; False (with a message) on failure."""
    user = attempt(lambda: client().authenticate(username, password))
    if user is None:
        return False
    s = attempt(lambda: sessions.new_session(user, now(), settings().app.session_ttl_minutes))
    if s is None:
        return False
    st.session_state[SESSION_KEY] = s
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


def sign_out() -> None:
    st.session_state.clear()


def role_label(role: Role) -> str:
    return role.capitalize()
