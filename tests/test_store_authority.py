"""Who may change what (issue 12, items 5 and 6): passwords, users, audit rows, snapshots, settings, sign-in
guessing, and names in the audit log. Against the real owner over HTTP where a person acts through a session."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest

from analytics.client import StoreClient
from analytics.identity import read_owner_token
from analytics.records import DecisionRecord
from analytics.store import Store
from tests.conftest import OwnerThread, make_settings
from tests.seeding import model_record, seed_store
from xscreen.errors import AuthError, PermissionDenied, XscreenError
from xscreen.settings import Settings

PASSWORD = "correct-horse-battery"
NEW_PASSWORD = "another-long-passphrase"


def _signed_in(client: StoreClient, store: Store, username: str, role: str) -> StoreClient:
    store.add_user(username, PASSWORD, role)  # type: ignore[arg-type]
    return client.as_user(client.login(username, PASSWORD).token)


def test_a_person_changes_only_their_own_password_and_only_with_the_old_one(owner: tuple[StoreClient, Store]) -> None:
    client, store = owner
    olga = _signed_in(client, store, "olga", "officer")
    store.add_user("bob", PASSWORD, "officer")
    with pytest.raises(PermissionDenied, match="current password"):
        olga.set_password("olga", NEW_PASSWORD)
    with pytest.raises(PermissionDenied, match="only its own"):
        olga.set_password("bob", NEW_PASSWORD, old_password=PASSWORD)
    with pytest.raises(AuthError):
        olga.set_password("olga", NEW_PASSWORD, old_password="not-my-password")
    olga.set_password("olga", NEW_PASSWORD, old_password=PASSWORD)
    assert store.authenticate("olga", NEW_PASSWORD).username == "olga"
    ada = _signed_in(client, store, "ada", "admin")
    ada.set_password("bob", NEW_PASSWORD)  # an admin resets someone's password without it
    assert store.audit_log(action="user_passwd", actor="ada")[0].target == "bob"


def test_only_an_admin_session_creates_users(owner: tuple[StoreClient, Store]) -> None:
    client, store = owner
    sam = _signed_in(client, store, "sam", "supervisor")
    with pytest.raises(PermissionDenied, match="manage users"):
        sam.add_user("eve", PASSWORD, "admin")
    ada = _signed_in(client, store, "ada", "admin")
    assert ada.add_user("eve", PASSWORD, "officer").role == "officer"
    assert store.audit_log(action="user_add", actor="ada")[0].target == "eve"
    with pytest.raises(XscreenError, match="reserved"):
        store.add_user("system", PASSWORD, "admin")


def test_audit_rows_take_no_time_and_no_forged_actor_or_action(owner: tuple[StoreClient, Store], now: datetime,
                                                               settings: Settings) -> None:
    client, store = owner
    sam = _signed_in(client, store, "sam", "supervisor")
    sam.audit("note", target="scan-1", details={"text": "called the sender"})
    [row] = store.audit_log(action="note")
    assert (row.actor, row.at, row.details) == ("sam", now, {"text": "called the sender"})
    with pytest.raises(PermissionDenied, match="signed in as sam"):
        sam.audit("note", actor="mallory")
    with pytest.raises(PermissionDenied, match="recorded by the store itself"):
        client.audit("decision", target="scan-1")
    headers = {"authorization": f"Bearer {read_owner_token(settings.home)}", "content-type": "application/json"}
    backdated = httpx.post(f"{settings.store_url}/api/audit", headers=headers,
                           json={"action": "note", "at": "2020-01-01T00:00:00Z"})
    assert backdated.status_code == 400 and "bad argument 'at'" in backdated.json()["message"]
    assert len(store.audit_log(action="note")) == 1


def test_snapshots_go_only_under_the_snapshots_folder(owner: tuple[StoreClient, Store], settings: Settings,
                                                      tmp_path: Path) -> None:
    client, store = owner
    for outside in (tmp_path / "elsewhere.duckdb", Path("../escape.duckdb"), Path("/etc/cron.d/x")):
        with pytest.raises(XscreenError, match="under .* only") as err:
            client.snapshot(outside)
        assert err.value.title == "Snapshot refused"
    made = client.snapshot(Path("mine/copy.duckdb"))
    assert made == settings.snapshots_dir.resolve() / "mine" / "copy.duckdb" and made.exists()
    assert not (tmp_path / "elsewhere.duckdb").exists()
    assert store.audit_log(action="snapshot")[0].target == str(made)


def test_settings_and_model_states_need_authority(owner: tuple[StoreClient, Store], now: datetime) -> None:
    client, store = owner
    store.register_model(model_record("m1", ["knife"], now))
    analyst = _signed_in(client, store, "ann", "analyst")
    with pytest.raises(PermissionDenied):
        analyst.put_setting("psi_alert", 0.3, actor="ann")
    with pytest.raises(PermissionDenied):
        analyst.set_model_state("m1", "champion", actor="ann")
    with pytest.raises(PermissionDenied, match="kept by the store itself"):
        client.put_setting("champion", "m1", actor="cli:root")
    sam = _signed_in(client, store, "sam", "supervisor")
    sam.put_setting("psi_alert", 0.3, actor="sam")
    sam.put_setting("psi_alert", 0.25, actor="sam")
    row = store.audit_log(action="setting")[0]
    assert row.actor == "sam" and row.target == "psi_alert" and row.details in ({"old": 0.3, "new": 0.25},
                                                                                 {"old": None, "new": 0.3})
    assert store.get_setting("psi_alert") == 0.25


def test_failed_sign_ins_lock_the_username_then_let_it_try_again(settings: Settings, now: datetime) -> None:
    clock = [now]
    with Store.from_settings(settings, clock=lambda: clock[0]) as store:
        store.add_user("ann", PASSWORD, "officer")
        for _ in range(settings.auth.max_failed_logins):
            with pytest.raises(AuthError, match="unknown user or wrong password"):
                store.login("ann", "guess-guess-guess")
        with pytest.raises(AuthError, match=r"try again in 120 s") as locked:
            store.login("ann", PASSWORD)  # even the right password waits out the lockout
        assert locked.value.title == "Sign-in locked"
        failed = store.audit_log(action="login_failed")
        assert len(failed) == 5 and sum(r.details["locked"] for r in failed) == 1  # the 6th is not even checked
        clock[0] += timedelta(seconds=settings.auth.lockout_s + 1)
        assert store.login("ann", PASSWORD).user.username == "ann"


def test_one_source_guessing_many_usernames_is_locked_out(owner: tuple[StoreClient, Store],
                                                          settings: Settings) -> None:
    client, store = owner
    store.add_user("ann", PASSWORD, "officer")
    for i in range(settings.auth.max_failed_logins_per_source):
        with pytest.raises(AuthError, match="wrong password"):
            client.login(f"user{i}", PASSWORD, source="203.0.113.9")
    with pytest.raises(AuthError, match="try again"):
        client.login("ann", PASSWORD, source="203.0.113.9")
    assert client.login("ann", PASSWORD, source="198.51.100.1").user.username == "ann"


def test_with_require_sessions_a_process_cannot_act_under_a_persons_name(tmp_path: Path, now: datetime) -> None:
    settings = make_settings(tmp_path / "home", auth={"require_sessions": True})
    with Store.from_settings(settings, clock=lambda: now) as store, OwnerThread(store, settings), \
            StoreClient.from_settings(settings) as client:
        seeded = seed_store(store, 20, seed=2, now=now)
        store.add_user("olga", PASSWORD, "officer")
        decision = DecisionRecord(decision_id="d1", scan_id=seeded.flagged[0], officer="olga", decision="cleared",
                                  decided_at=now)
        with pytest.raises(PermissionDenied, match="names a person"):
            client.record_decision(decision)
        with pytest.raises(PermissionDenied, match="names a person"):
            client.set_model_state(seeded.shadow, "retired", actor="olga")
        client.set_model_state(seeded.shadow, "retired", actor="cli:root")
        client.as_user(client.login("olga", PASSWORD).token).record_decision(decision)
        assert store.audit_log(action="decision")[0].actor == "olga"
