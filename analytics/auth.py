"""Local users for the embedded default: argon2id password hashes, a password policy, roles.

Hashing and verifying (~tens of ms each) run in the caller's thread; only the resulting row goes through the
store's writer. The hash never leaves the store: callers get a UserRecord.
"""

from __future__ import annotations

import re
from datetime import datetime
from functools import cache
from typing import Any, get_args

import duckdb
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from analytics.fetch import first
from analytics.records import Role, UserRecord
from analytics.writes import audit_row
from xscreen.errors import AuthError, ConflictError, NotFoundError, XscreenError

MIN_PASSWORD_LENGTH = 10
USERNAME_RE = re.compile(r"^[a-z][a-z0-9_.-]{1,31}$")
ROLES: tuple[str, ...] = get_args(Role)
# A generic message: never tell a caller whether the user exists, is disabled, or only the password was wrong.
LOGIN_FAILED = "unknown user or wrong password"
_COMMON = {"password", "passw0rd", "123456789", "1234567890", "qwertyuiop", "letmein123", "administrator",
           "changeme12", "welcome123", "xscreen123", "password123", "iloveyou12"}

# Names the store's own processes act under in the audit log: never a person's username (analytics/authz.py).
PROCESS_NAMES = frozenset({"system", "serving", "setup", "demo", "monitoring"})

_hasher = PasswordHasher()


class WeakPassword(XscreenError):
    """A new password does not meet the policy."""

    title = "Password too weak"


def check_username(username: str) -> None:
    if not USERNAME_RE.match(username):
        raise XscreenError(f"username {username!r} must be 2-32 characters of a-z, 0-9, '_', '.', '-' "
                           "starting with a letter", title="Invalid username")
    if username in PROCESS_NAMES:
        raise XscreenError(f"username {username!r} is reserved for xscreen's own processes in the audit log",
                           title="Invalid username")


def is_process_name(actor: str) -> bool:
    """True for the names processes act under (`system`, ..., or `<kind>:<name>` such as `cli:root`): no
    username has a ':' or is one of PROCESS_NAMES, so the audit log never confuses the two."""
    return actor in PROCESS_NAMES or (":" in actor and 0 < actor.index(":") < len(actor) - 1)


def check_role(role: str) -> None:
    if role not in ROLES:
        raise XscreenError(f"role {role!r} is not one of {', '.join(ROLES)}", title="Invalid role")


def check_password(password: str, username: str) -> None:
    """WeakPassword naming the rule broken: length, a single repeated character, the username, a common one."""
    if not password:
        raise WeakPassword("password is empty")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise WeakPassword(f"password must have at least {MIN_PASSWORD_LENGTH} characters")
    if len(set(password)) < 4:
        raise WeakPassword("password uses fewer than 4 different characters")
    if username.lower() in password.lower():
        raise WeakPassword("password contains the username")
    if password.lower() in _COMMON:
        raise WeakPassword("password is a commonly used password")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


@cache
def _dummy_hash() -> str:
    """A valid hash to verify against when the user does not exist, so timing does not reveal who exists."""
    return _hasher.hash("not-a-real-password-at-all")


def user_from_row(row: tuple[Any, ...]) -> UserRecord:
    username, role, disabled, created_at = row
    return UserRecord(username=username, role=role, disabled=bool(disabled), created_at=created_at)


def fetch_login(cur: duckdb.DuckDBPyConnection, username: str) -> tuple[str, UserRecord] | None:
    row = first(cur, "SELECT password_hash, username, role, disabled, created_at FROM users WHERE username = ?",
                [username])
    return (row[0], user_from_row(row[1:])) if row else None


def check_login(found: tuple[str, UserRecord] | None, password: str) -> UserRecord:
    """The user if the password matches and the account is enabled; AuthError with a generic message otherwise."""
    if found is None:
        verify_password(_dummy_hash(), password)
        raise AuthError(LOGIN_FAILED)
    password_hash, user = found
    if not verify_password(password_hash, password) or user.disabled:
        raise AuthError(LOGIN_FAILED)
    return user


# ---- writes (run on the writer's cursor) --------------------------------------------------------------------

def insert_user(cur: duckdb.DuckDBPyConnection, username: str, password_hash: str, role: str, actor: str,
                now: datetime) -> UserRecord:
    if first(cur, "SELECT 1 FROM users WHERE username = ?", [username]):
        raise ConflictError(f"user {username!r} already exists")
    cur.execute("INSERT INTO users VALUES (?, ?, ?, false, ?)", [username, password_hash, role, now])
    audit_row(cur, now, actor, "user_add", username, role=role)
    return UserRecord(username=username, role=role, disabled=False, created_at=now)  # type: ignore[arg-type]


def _require_user(cur: duckdb.DuckDBPyConnection, username: str) -> None:
    if not first(cur, "SELECT 1 FROM users WHERE username = ?", [username]):
        raise NotFoundError(f"user {username!r} does not exist")


def update_password(cur: duckdb.DuckDBPyConnection, username: str, password_hash: str, actor: str,
                    now: datetime) -> None:
    _require_user(cur, username)
    cur.execute("UPDATE users SET password_hash = ? WHERE username = ?", [password_hash, username])
    audit_row(cur, now, actor, "user_passwd", username)


def disable(cur: duckdb.DuckDBPyConnection, username: str, actor: str, now: datetime) -> None:
    _require_user(cur, username)
    cur.execute("UPDATE users SET disabled = true WHERE username = ?", [username])
    audit_row(cur, now, actor, "user_disable", username)
