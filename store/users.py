"""Users domain: local users, sign-in sessions of people and bearer tokens of scanner clients.

Password hashing and verification run in the caller's thread (tens of ms each, store/passwords.py); rows go
through the writer. Tokens are made here and stored as sha256 hashes only (store/tokens.py). Failed sign-ins are
counted per username and per source and lock out (store/ratelimit.py). Who may call which operation over HTTP is
declared on each one and checked by the owner (store/authz.py); these functions trust their caller.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import duckdb

from store import passwords, tokens
from store.audit import audit_row
from store.fetch import dicts
from store.ops import Engine, composite, read, write
from xscreen.errors import NotFoundError, PermissionDenied, XscreenError
from xscreen.records import Principal, PrincipalKind, Role, SessionGrant, TokenRecord, UserRecord

_USER_COLUMNS = "username, role, disabled, created_at"


@composite(action="manage_users", actor="actor")
def add_user(engine: Engine, username: str, password: str, role: Role, actor: str = "system") -> UserRecord:
    """Create a user; WeakPassword names the rule a password breaks, ConflictError a taken username."""
    passwords.check_username(username)
    passwords.check_role(role)
    passwords.check_password(password, username)
    hashed = passwords.hash_password(password)
    return engine.write(lambda c, now: passwords.insert_user(c, username, hashed, role, actor, now))


def _password_change(kwargs: Mapping[str, Any], principal: Principal) -> None:
    """A person changes their own password with the old one; only an admin sets someone's without it."""
    if principal.role == "admin":
        return
    if kwargs.get("username") != principal.name:
        raise PermissionDenied(f"role '{principal.role}' may change only its own password")
    if kwargs.get("old_password") is None:
        raise PermissionDenied("changing your password needs your current password (old_password)")


@composite(actor="actor", check=_password_change)
def set_password(engine: Engine, username: str, password: str, actor: str = "system",
                 old_password: str | None = None) -> None:
    """Set a new password. With `old_password`, only if it is the current one (counted like a failed sign-in
    otherwise). Over HTTP a signed-in person must give it unless an admin acts."""
    passwords.check_password(password, username)
    if old_password is not None:
        _verify(engine, username, old_password, None, action="passwd_check", audit_success=False)
    hashed = passwords.hash_password(password)
    engine.write(lambda c, now: passwords.update_password(c, username, hashed, actor, now))


@write(action="manage_users", actor="actor")
def disable_user(cur: duckdb.DuckDBPyConnection, username: str, actor: str = "system", *, now: datetime) -> None:
    """Disable a user (kept for the audit trail; can no longer sign in) and end their sessions."""
    passwords.disable(cur, username, actor, now)
    tokens.revoke_user_sessions(cur, username, actor, now)


@composite()
def authenticate(engine: Engine, username: str, password: str) -> UserRecord:
    """The user for a correct password; AuthError (generic message) otherwise. Both are audited; failures are
    rate-limited."""
    return _verify(engine, username, password, None)


def _verify(engine: Engine, username: str, password: str, source: str | None, action: str = "login",
            audit_success: bool = True) -> UserRecord:
    now, limiter = engine.now(), engine.login_limiter()
    limiter.check(username, source, now)  # locked: refused before the password is even checked
    try:
        user = passwords.check_login(engine.read(passwords.fetch_login, username), password)
    except XscreenError:
        locked = limiter.failed(username, source, now)
        who = username[:64]
        engine.write(lambda c, now: audit_row(c, now, who, f"{action}_failed", who, source=source, locked=locked))
        raise
    limiter.succeeded(username)
    if audit_success:
        engine.write(lambda c, now: audit_row(c, now, username, action, username, source=source))
    return user


@read()
def get_user(cur: duckdb.DuckDBPyConnection, username: str) -> UserRecord:
    """One user; NotFoundError naming it otherwise."""
    cur.execute(f"SELECT {_USER_COLUMNS} FROM users WHERE username = ?", [username])
    rows = dicts(cur)
    if not rows:
        raise NotFoundError(f"user {username!r} does not exist")
    return UserRecord(**rows[0])


@read()
def list_users(cur: duckdb.DuckDBPyConnection) -> list[UserRecord]:
    """Every user, by name."""
    cur.execute(f"SELECT {_USER_COLUMNS} FROM users ORDER BY username")
    return [UserRecord(**r) for r in dicts(cur)]


@composite()
def login(engine: Engine, username: str, password: str, source: str | None = None) -> SessionGrant:
    """Check the password and open a session: its token (shown once), the user, and when it expires unless used
    again (`app.session_ttl_minutes` after its last use). AuthError with a generic message otherwise. `source`:
    where the attempt came from (a /v1 client's address): failures are also limited per source."""
    user = _verify(engine, username, password, source)
    token, digest, token_id = tokens.new_token()
    ttl = engine.config.session_ttl

    def op(c: duckdb.DuckDBPyConnection, now: datetime) -> datetime:
        expires = now + ttl
        tokens.insert(c, digest, token_id, "user", user.username, None, now, expires)
        return expires

    return SessionGrant(token=token, user=user, expires_at=engine.write(op))


@composite()
def resolve_token(engine: Engine, token: str) -> Principal:
    """Who a session or scanner token stands for; AuthError when unknown, expired, revoked or its user disabled.
    Each use slides a session's expiry (written back at most once a minute)."""
    digest = tokens.token_digest(token)
    row = engine.read(tokens.lookup, digest)
    now, ttl = engine.now(), engine.config.session_ttl
    principal = tokens.principal_of(row, now, ttl)
    assert row is not None  # principal_of refused an unknown token
    if row["last_seen_at"] is None or now - row["last_seen_at"] >= tokens.TOUCH_EVERY:
        expires = None if principal.kind == "scanner" else now + ttl
        engine.write(lambda c, _now: tokens.touch(c, digest, now, expires))
    return principal


@write()
def logout(cur: duckdb.DuckDBPyConnection, token: str, *, now: datetime) -> None:
    """End a session (idempotent: an unknown or ended session is not an error)."""
    tokens.logout(cur, tokens.token_digest(token), now)


@composite(action="manage_users", actor="actor")
def issue_scanner_token(engine: Engine, scanner_id: str, actor: str) -> str:
    """A new bearer token for a scanner client of /v1 (plaintext, returned once; valid until revoked)."""
    tokens.check_scanner_id(scanner_id)
    token, digest, token_id = tokens.new_token()

    def op(c: duckdb.DuckDBPyConnection, now: datetime) -> None:
        tokens.insert(c, digest, token_id, "scanner", None, scanner_id, now, None)
        audit_row(c, now, actor, "token_issue", token_id, scanner_id=scanner_id)

    engine.write(op)
    return token


@write(action="manage_users", actor="actor")
def revoke_token(cur: duckdb.DuckDBPyConnection, token_or_id: str, actor: str, *, now: datetime) -> int:
    """Revoke a token given as plaintext, as its token_id, or every live token of a scanner id; returns how many
    were revoked. NotFoundError when nothing live matches."""
    return tokens.revoke(cur, token_or_id, actor, now)


@read(action="manage_users")
def list_tokens(cur: duckdb.DuckDBPyConnection, kind: PrincipalKind | None = None,
                include_revoked: bool = False) -> list[TokenRecord]:
    """Sessions and scanner tokens (ids and times, never the tokens), oldest first."""
    return tokens.list_tokens(cur, kind, include_revoked)
