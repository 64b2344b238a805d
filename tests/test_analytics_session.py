"""Sessions expire, and every page and action checks the role."""

from datetime import UTC, datetime, timedelta

import pytest

from analytics import session
from analytics.records import UserRecord
from xscreen.errors import AuthError, PermissionDenied

T0 = datetime(2026, 1, 1, 8, 0, tzinfo=UTC)


def _user(role: str = "officer", disabled: bool = False) -> UserRecord:
    return UserRecord(username="ann", role=role, disabled=disabled, created_at=T0)  # type: ignore[arg-type]


def test_session_expires_after_ttl_without_activity() -> None:
    s = session.new_session(_user(), T0, ttl_minutes=30)
    s = session.touch(s, T0 + timedelta(minutes=29))  # activity extends it
    session.touch(s, T0 + timedelta(minutes=58))
    with pytest.raises(AuthError, match="expired"):
        session.touch(s, T0 + timedelta(minutes=60))


def test_missing_session_must_sign_in() -> None:
    with pytest.raises(AuthError, match="sign in"):
        session.touch(None, T0)


def test_disabled_user_gets_no_session() -> None:
    with pytest.raises(AuthError, match="disabled"):
        session.new_session(_user(disabled=True), T0, 30)


def test_officer_is_refused_the_models_page_and_promotion() -> None:
    s = session.new_session(_user("officer"), T0, 30)
    session.require_page(s, "triage")
    with pytest.raises(PermissionDenied, match="models"):
        session.require_page(s, "models")
    with pytest.raises(PermissionDenied, match="promote"):
        session.require_action(s, "promote")


def test_supervisor_may_promote_and_admin_may_open_everything() -> None:
    session.require_action(session.new_session(_user("supervisor"), T0, 30), "promote")
    assert session.allowed_pages("admin") == list(session.PAGE_ROLES)
    assert "sql" not in session.allowed_pages("officer")
