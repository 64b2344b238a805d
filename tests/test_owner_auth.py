"""The owner's locked door (issue 12, items 5 and 9): owner token, Content-Type, Host, body size, home identity,
sessions of people and scanner tokens, and the actor taken from the signed-in person. Real owner over HTTP."""

from __future__ import annotations

import stat
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest

from analytics.client import StoreClient, open_store
from analytics.identity import owner_token_path, read_home_id, read_owner_token
from analytics.records import DecisionRecord, IngestBatch
from analytics.store import Store
from tests.conftest import OwnerThread, make_settings
from tests.seeding import model_record, seed_store
from xscreen.errors import AuthError, NotFoundError, PermissionDenied, WrongStore, XscreenError
from xscreen.settings import Settings, load_settings

PASSWORD = "correct-horse-battery"


def _raw(settings: Settings, path: str = "/api/list_users", **kw: object) -> httpx.Response:
    """A request as any program on the host could send it (no StoreClient)."""
    return httpx.post(f"{settings.store_url}{path}", timeout=10, **kw)  # type: ignore[arg-type]


def _auth(settings: Settings) -> dict[str, str]:
    return {"authorization": f"Bearer {read_owner_token(settings.home)}", "content-type": "application/json"}


def test_owner_token_is_private_to_the_user_and_required(owner_client: StoreClient, settings: Settings) -> None:
    path = owner_token_path(settings.home)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert len(read_owner_token(settings.home) or "") >= 43  # 32 random bytes, urlsafe base64
    assert _raw(settings, content=b"{}", headers={"content-type": "application/json"}).status_code == 401
    wrong = _raw(settings, content=b"{}", headers={"content-type": "application/json", "authorization": "Bearer x"})
    assert wrong.status_code == 401 and wrong.json()["error"] == "AuthError"
    assert _raw(settings, content=b"{}", headers=_auth(settings)).status_code == 200
    with StoreClient(settings.store_url, "not-the-token", read_home_id(settings.home)) as intruder, \
            pytest.raises(AuthError):
        intruder.list_users()


def test_what_a_web_page_can_send_is_refused(owner_client: StoreClient, settings: Settings) -> None:
    # A cross-origin page can POST text/plain or a form without a preflight, and may rebind its name to 127.0.0.1.
    for kind in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"):
        resp = _raw(settings, content=b"{}", headers={**_auth(settings), "content-type": kind})
        assert resp.status_code == 415, kind
    port = settings.network.store_port
    evil = _raw(settings, content=b"{}", headers={**_auth(settings), "host": f"attacker.example:{port}"})
    assert evil.status_code == 421
    assert httpx.get(f"{settings.store_url}/health", headers={"host": "attacker.example"}).status_code == 421
    for host in (f"localhost:{port}", f"127.0.0.1:{port}", f"[::1]:{port}"):
        assert _raw(settings, content=b"{}", headers={**_auth(settings), "host": host}).status_code == 200, host


def test_health_tells_identity_and_nothing_secret(owner_client: StoreClient, settings: Settings) -> None:
    health = httpx.get(f"{settings.store_url}/health").json()
    assert set(health) == {"status", "schema_version", "home_id", "db"}
    assert health["home_id"] == read_home_id(settings.home) and health["status"] == "ok"


def test_bodies_over_the_limit_are_refused_413(tmp_path: Path, now: datetime) -> None:
    settings = make_settings(tmp_path / "home", store={"max_request_mb": 0.01})  # ~10 KB
    with Store.from_settings(settings, clock=lambda: now) as store, OwnerThread(store, settings), \
            StoreClient.from_settings(settings) as client:
        big = b'{"limit": 1, "pad": "' + b"x" * 20_000 + b'"}'
        assert _raw(settings, "/api/audit_log", content=big, headers=_auth(settings)).status_code == 413

        def chunks() -> Iterator[bytes]:  # no Content-Length: counted while reading
            yield from (b" " * 4096 for _ in range(5))
            yield b"{}"

        assert _raw(settings, content=chunks(), headers=_auth(settings)).status_code == 413
        assert client.list_users() == []


def test_a_client_refuses_the_owner_of_another_home(owner_client: StoreClient, settings: Settings,
                                                    tmp_path: Path) -> None:
    # A fresh home whose configured port is held by the other home's owner (issue 12 item 9).
    other = load_settings(environ={}, home=tmp_path / "other", network=settings.network.model_dump())
    with pytest.raises(WrongStore, match="serves another home"), open_store(other):
        pass
    with Store.from_settings(other):  # now the other home has its own identity, still not the owner's
        pass
    with StoreClient.from_settings(other) as client, pytest.raises(WrongStore, match=str(read_home_id(other.home))):
        client.champion()
    assert owner_client.list_users() == []  # the right home's client is unaffected


def test_a_database_file_of_another_home_is_refused(settings: Settings, tmp_path: Path) -> None:
    with Store.from_settings(settings):
        pass
    moved = make_settings(tmp_path / "moved", paths={"db": settings.db_path})
    with pytest.raises(WrongStore, match="belongs to the home"):
        Store.from_settings(moved)


def test_login_gives_a_session_whose_person_is_the_actor(owner: tuple[StoreClient, Store], now: datetime) -> None:
    client, store = owner
    store.add_user("sam", PASSWORD, "supervisor")
    store.register_model(model_record("m1", ["knife"], now))
    grant = client.login("sam", PASSWORD)
    assert grant.user.username == "sam" and grant.expires_at > now and grant.token not in str(store.list_tokens())
    principal = client.resolve_token(grant.token)
    assert (principal.kind, principal.name, principal.role) == ("user", "sam", "supervisor")
    sam = client.as_user(grant.token)
    sam.set_model_state("m1", "shadow", actor="sam", reason="try it")
    assert store.audit_log(action="model_state")[0].actor == "sam"
    with pytest.raises(PermissionDenied, match="signed in as sam"):
        sam.set_model_state("m1", "candidate", actor="mallory")
    sam.register_model(model_record("m2", ["knife"], now))  # default actor "system" becomes sam
    assert [a.target for a in store.audit_log(actor="sam", action="model_register")] == ["m2"]
    client.logout(grant.token)
    with pytest.raises(AuthError):
        client.resolve_token(grant.token)
    with pytest.raises(AuthError):
        sam.list_models()


def test_a_role_that_may_not_act_is_refused(owner: tuple[StoreClient, Store], now: datetime) -> None:
    client, store = owner
    seeded = seed_store(store, 40, seed=1, now=now)
    store.add_user("olga", PASSWORD, "officer")
    olga = client.as_user(client.login("olga", PASSWORD).token)
    with pytest.raises(PermissionDenied, match="role 'officer' may not promote"):
        olga.set_model_state(seeded.shadow, "champion", actor="olga")
    with pytest.raises(PermissionDenied):
        olga.add_user("eve", PASSWORD, "admin")
    with pytest.raises(PermissionDenied, match="not for a signed-in person"):
        olga.ingest(IngestBatch(batch_id="x"))
    scan = seeded.flagged[0]
    decision = DecisionRecord(decision_id="d1", scan_id=scan, officer="bob", decision="cleared", decided_at=now)
    with pytest.raises(PermissionDenied, match="officer must be olga"):
        olga.record_decision(decision)
    olga.record_decision(decision.model_copy(update={"officer": "olga"}))
    assert store.audit_log(action="decision")[0].actor == "olga"


def test_sessions_slide_and_expire(settings: Settings, now: datetime) -> None:
    clock = [now]
    with Store.open(settings.db_path, clock=lambda: clock[0], session_ttl_minutes=10) as store:
        store.add_user("ann", PASSWORD, "officer")
        token = store.login("ann", PASSWORD).token
        for _ in range(3):  # used every 8 minutes: still alive after 24 minutes
            clock[0] += timedelta(minutes=8)
            assert store.resolve_token(token).name == "ann"
        clock[0] += timedelta(minutes=11)
        with pytest.raises(AuthError, match="sign in again"):
            store.resolve_token(token)
        second = store.login("ann", PASSWORD).token
        store.disable_user("ann", actor="cli:root")
        with pytest.raises(AuthError):
            store.resolve_token(second)
        with pytest.raises(AuthError):
            store.resolve_token("made-up")


def test_scanner_tokens_are_issued_once_listed_without_secrets_and_revoked(owner: tuple[StoreClient, Store]) -> None:
    client, store = owner
    token = client.issue_scanner_token("scanner-a", actor="cli:root")
    principal = client.resolve_token(token)
    assert (principal.kind, principal.scanner_id, principal.name) == ("scanner", "scanner-a", "scanner:scanner-a")
    [listed] = client.list_tokens(kind="scanner")
    assert listed.scanner_id == "scanner-a" and token not in listed.model_dump_json()
    with store.reader() as cur:
        stored = cur.execute("SELECT * FROM auth_tokens").fetchall()
    assert token not in str(stored)  # only its hash
    with pytest.raises(PermissionDenied, match="scanner token"):
        client.as_user(token).list_models()
    assert client.revoke_token("scanner-a", actor="cli:root") == 1
    with pytest.raises(AuthError):
        client.resolve_token(token)
    with pytest.raises(NotFoundError):
        client.revoke_token("scanner-a", actor="cli:root")
    with pytest.raises(XscreenError, match="scanner id"):
        client.issue_scanner_token("../etc", actor="cli:root")
    assert sorted(a.action for a in store.audit_log(actor="cli:root")) == ["token_issue", "token_revoke"]
