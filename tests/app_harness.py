"""AppTest harness: runs app.py / a page against a real store owner, configured through XSCREEN_* variables.

The app builds its settings from the environment (as in production), so a test points it at the owner of the
`owner_client` fixture with XSCREEN_HOME and XSCREEN_NETWORK__STORE_PORT, and pins the app's clock to the
store's fixed `now` through session_state["xs_now"]. A signed-in AppTest holds a real store session.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from analytics.client import StoreClient
from analytics.records import Role, UserRecord
from analytics.session import Session, from_grant
from xscreen.settings import Settings, load_settings

ROOT = Path(__file__).resolve().parents[1]
PASSWORD = "correct-Horse-7"


def point_app_at(monkeypatch: pytest.MonkeyPatch, settings: Settings) -> None:
    monkeypatch.setenv("XSCREEN_HOME", str(settings.home))
    monkeypatch.setenv("XSCREEN_NETWORK__STORE_PORT", str(settings.network.store_port))
    monkeypatch.chdir(ROOT)


def app_as(user: UserRecord | None, now: datetime, script: str = "app.py") -> AppTest:
    """An AppTest of `script` signed in as `user` (None: signed out) with the clock at `now`. The user signs in
    for real (StoreAPI.login with PASSWORD), so the app holds a live store session, as after the sign-in form."""
    at = AppTest.from_file(str(ROOT / script), default_timeout=60)
    at.session_state["xs_now"] = now
    if user is not None:
        at.session_state["xs_session"] = signed_in(user.username)
    return at


def signed_in(username: str) -> Session:
    """A live store session for `username` (password PASSWORD) on the store the app is pointed at."""
    with StoreClient.from_settings(load_settings()) as client:
        return from_grant(client.login(username, PASSWORD))


def user(username: str, role: Role, now: datetime) -> UserRecord:
    return UserRecord(username=username, role=role, created_at=now)
