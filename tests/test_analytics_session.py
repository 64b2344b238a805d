"""The app's sessions come from the store's grants and tokens, one-time cookie codes, and every page and action
checks the role."""

from datetime import UTC, datetime, timedelta

import pytest

from analytics import session
from analytics.records import Principal, SessionGrant, UserRecord
from xscreen.errors import AuthError, PermissionDenied

T0 = datetime(2026, 1, 1, 8, 0, tzinfo=UTC)


def _grant(role: str = "officer", disabled: bool = False) -> SessionGrant:
    user = UserRecord(username="ann", role=role, disabled=disabled, created_at=T0)  # type: ignore[arg-type]
    return SessionGrant(token="tok-ann", user=user, expires_at=T0 + timedelta(hours=8))


def test_session_carries_the_store_token_but_never_prints_it() -> None:
    s = session.from_grant(_grant())
    assert (s.username, s.role, s.token) == ("ann", "officer", "tok-ann")
    assert "tok-ann" not in repr(s)


def test_disabled_user_gets_no_session() -> None:
    with pytest.raises(AuthError, match="disabled"):
        session.from_grant(_grant(disabled=True))


def test_a_scanner_token_opens_no_app_session() -> None:
    assert session.from_principal(Principal(kind="user", name="sue", role="supervisor"), "t").role == "supervisor"
    with pytest.raises(AuthError, match="not a person's session"):
        session.from_principal(Principal(kind="scanner", name="scanner:a", scanner_id="a"), "t")


def test_cookie_code_is_redeemed_once_and_only_in_time() -> None:
    clock = [0.0]
    handoff = session.CookieHandoff(ttl_s=60, clock=lambda: clock[0])
    code = handoff.issue("tok-1")
    assert handoff.pending(code) and handoff.redeem(code) == "tok-1"
    assert not handoff.pending(code) and handoff.redeem(code) is None  # single use
    late = handoff.issue("tok-2")
    clock[0] = 61.0
    assert not handoff.pending(late) and handoff.redeem(late) is None
    assert handoff.redeem("made-up") is None
    assert len({handoff.issue("t") for _ in range(100)}) == 100  # unguessable, never repeated


def test_cookie_codes_waiting_are_bounded() -> None:
    handoff = session.CookieHandoff(ttl_s=60, clock=lambda: 0.0, max_pending=3)
    for _ in range(3):
        handoff.issue("t")
    with pytest.raises(AuthError, match="too many"):
        handoff.issue("t")


def test_officer_is_refused_the_models_page_and_promotion() -> None:
    s = session.from_grant(_grant("officer"))
    session.require_page(s, "triage")
    with pytest.raises(PermissionDenied, match="models"):
        session.require_page(s, "models")
    with pytest.raises(PermissionDenied, match="promote"):
        session.require_action(s, "promote")


def test_supervisor_may_promote_and_admin_may_open_everything() -> None:
    session.require_action(session.from_grant(_grant("supervisor")), "promote")
    assert session.allowed_pages("admin") == list(session.PAGE_ROLES)
    assert "sql" not in session.allowed_pages("officer")
