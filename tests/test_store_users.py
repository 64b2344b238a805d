"""Local users: argon2 hashes, password policy, generic login failures, disabled users, audit of logins."""

from __future__ import annotations

import pytest

from store.engine import Store
from store.passwords import WeakPassword
from xscreen.errors import AuthError, ConflictError, NotFoundError, XscreenError

GOOD = "correct-horse-battery"


def test_password_is_stored_as_argon2_and_login_works(store: Store) -> None:
    user = store.add_user("ann", GOOD, "officer")
    assert (user.username, user.role, user.disabled) == ("ann", "officer", False)
    with store.reader() as cur:
        stored = cur.execute("SELECT password_hash FROM users WHERE username = 'ann'").fetchone()[0]
    assert stored.startswith("$argon2id$") and GOOD not in stored
    assert store.authenticate("ann", GOOD).role == "officer"
    assert [a.action for a in store.audit_log(actor="ann")] == ["login"]


def test_a_fresh_process_hashes_at_the_production_cost() -> None:
    """The suite hashes cheaply in its own processes (conftest.cheap_password_hashing); a real process must not:
    argon2id with RFC 9106's second recommended option (64 MiB, 3 passes, 4 lanes) or stronger."""
    import subprocess
    import sys

    code = "from store.passwords import hash_password; print(hash_password('correct-horse-battery'))"
    made = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    params = dict(kv.split("=") for kv in made.split("$")[3].split(","))
    assert made.startswith("$argon2id$") and int(params["m"]) >= 65536 and int(params["t"]) >= 3, made


@pytest.mark.parametrize("username,password", [("ann", "wrong-password-1"), ("nobody", GOOD)])
def test_wrong_password_and_unknown_user_get_the_same_generic_error(store: Store, username: str, password: str) -> None:
    store.add_user("ann", GOOD, "officer")
    with pytest.raises(AuthError) as info:
        store.authenticate(username, password)
    assert str(info.value) == "unknown user or wrong password"
    assert store.audit_log(action="login_failed")[0].target == username


def test_disabled_user_cannot_sign_in(store: Store) -> None:
    store.add_user("bob", GOOD, "analyst")
    store.disable_user("bob", actor="root")
    with pytest.raises(AuthError):
        store.authenticate("bob", GOOD)
    assert store.get_user("bob").disabled


@pytest.mark.parametrize("password,rule", [("", "empty"), ("short1", "at least 10"), ("aaaaaaaaaaaa", "fewer than 4"),
                                           ("my-ann-password", "username"), ("password123", "common")])
def test_weak_passwords_are_refused_naming_the_rule(store: Store, password: str, rule: str) -> None:
    with pytest.raises(WeakPassword, match=rule):
        store.add_user("ann", password, "officer")
    assert store.list_users() == []


def test_duplicate_user_bad_role_and_bad_name_are_refused(store: Store) -> None:
    store.add_user("ann", GOOD, "officer")
    with pytest.raises(ConflictError, match="ann"):
        store.add_user("ann", GOOD + "x", "admin")
    with pytest.raises(XscreenError, match="role 'boss'"):
        store.add_user("cat", GOOD, "boss")  # type: ignore[arg-type]
    with pytest.raises(XscreenError, match="username"):
        store.add_user("Robert'); DROP", GOOD, "officer")


def test_password_change_takes_effect_and_unknown_user_is_not_found(store: Store) -> None:
    store.add_user("ann", GOOD, "supervisor")
    store.set_password("ann", "another-long-secret", actor="ann")
    with pytest.raises(AuthError):
        store.authenticate("ann", GOOD)
    assert store.authenticate("ann", "another-long-secret").username == "ann"
    with pytest.raises(NotFoundError):
        store.set_password("zed", "another-long-secret")
    assert [u.username for u in store.list_users()] == ["ann"]
