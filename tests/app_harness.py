"""AppTest harness: runs app.py / a page against a real store owner, configured through XSCREEN_* variables.

The app builds its settings from the environment (as in production), so a test points it at the owner of the
`owner_client` fixture with XSCREEN_HOME and XSCREEN_NETWORK__STORE_PORT, and pins the app's clock to the
store's fixed `now` through session_state["xs_now"].
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from analytics.records import Role, UserRecord
from analytics.session import new_session
from xscreen.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
PASSWORD = "correct-Horse-7"


def point_app_at(monkeypatch: pytest.MonkeyPatch, settings: Settings) -> None:
    monkeypatch.setenv("XSCREEN_HOME", str(settings.home))
    monkeypatch.setenv("XSCREEN_NETWORK__STORE_PORT", str(settings.network.store_port))
    monkeypatch.chdir(ROOT)


def app_as(user: UserRecord | None, now: datetime, script: str = "app.py") -> AppTest:
    """An AppTest of `script` signed in as `user` (None: signed out) with the clock at `now`."""
    at = AppTest.from_file(str(ROOT / script), default_timeout=60)
    at.session_state["xs_now"] = now
    if user is not None:
        at.session_state["xs_session"] = new_session(user, now, ttl_minutes=60)
    return at


def user(username: str, role: Role, now: datetime) -> UserRecord:
    return UserRecord(username=username, role=role, created_at=now)
