"""`Accounts`: the Store's operations on users, sign-in sessions and scanner tokens (mixed into `Store`).

Password hashing and verification run in the caller's thread (tens of ms each); rows go through the writer.
Tokens are made here and stored as sha256 hashes (analytics/tokens.py). Who may call which operation over HTTP
is decided by the owner (analytics/authz.py); these methods trust their caller.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, TypeVar

import duckdb

from analytics import auth, reads, tokens, writes
from analytics.ratelimit import LoginLimiter
from analytics.records import Principal, PrincipalKind, Role, SessionGrant, TokenRecord, UserRecord
from xscreen.errors import XscreenError

T = TypeVar("T")


class Accounts:
    """Users, sessions and tokens. Needs `_read`, `_write`, `_clock`, `_session_ttl` and `_limiter` from the
    Store."""

    _session_ttl: timedelta
    _clock: Callable[[], datetime]
    _limiter: LoginLimiter

    def _read(self, fn: Callable[..., T], *args: Any) -> T:
        raise NotImplementedError

    def _write(self, fn: Callable[[duckdb.DuckDBPyConnection, datetime], Any], weight: int = 1) -> Any:
        raise NotImplementedError

    # ---- users ------------------------------------------------------------------------------------------------

    def add_user(self, username: str, password: str, role: Role, actor: str = "system") -> UserRecord:
        auth.check_username(username)
        auth.check_role(role)
        auth.check_password(password, username)
        hashed = auth.hash_password(password)
        return self._write(lambda c, now: auth.insert_user(c, username, hashed, role, actor, now))  # type: ignore[no-any-return]

    def set_password(self, username: str, password: str, actor: str = "system",
                     old_password: str | None = None) -> None:
        """Set a new password. With `old_password`, only if it is the current one (counted like a failed
        sign-in otherwise). Over HTTP a signed-in person must give it unless an admin acts (analytics/authz.py)."""
        auth.check_password(password, username)
        if old_password is not None:
            self._verify(username, old_password, None, action="passwd_check", audit_success=False)
        hashed = auth.hash_password(password)
        self._write(lambda c, now: auth.update_password(c, username, hashed, actor, now))

    def disable_user(self, username: str, actor: str = "system") -> None:
        """Disable a user (kept for the audit trail) and end their sessions."""
        def op(c: duckdb.DuckDBPyConnection, now: datetime) -> None:
            auth.disable(c, username, actor, now)
            tokens.revoke_user_sessions(c, username, actor, now)

        self._write(op)

    def authenticate(self, username: str, password: str) -> UserRecord:
        """The user for a correct password; AuthError (generic message) otherwise. Both are audited; failures
        are rate-limited (analytics/ratelimit.py)."""
        return self._verify(username, password, None)

    def _verify(self, username: str, password: str, source: str | None, action: str = "login",
                audit_success: bool = True) -> UserRecord:
        now = self._clock()
        self._limiter.check(username, source, now)  # locked: refused before the password is even checked
        try:
            user = auth.check_login(self._read(auth.fetch_login, username), password)
        except XscreenError:
            locked = self._limiter.failed(username, source, now)
            who = username[:64]
            self._write(lambda c, now: writes.audit_row(c, now, who, f"{action}_failed", who, source=source,
                                                        locked=locked))
            raise
        self._limiter.succeeded(username)
        if audit_success:
            self._write(lambda c, now: writes.audit_row(c, now, username, action, username, source=source))
        return user

    def get_user(self, username: str) -> UserRecord:
        return self._read(reads.get_user, username)

    def list_users(self) -> list[UserRecord]:
        return self._read(reads.list_users)

    # ---- sessions -----------------------------------------------------------------------------------------------

    def login(self, username: str, password: str, source: str | None = None) -> SessionGrant:
        """Check the password and open a session: its token (shown once), the user, and when it expires unless
        used again (`app.session_ttl_minutes` after its last use). AuthError with a generic message otherwise.
        `source`: where the attempt came from (a /v1 client's address): failures are also limited per source."""
        user = self._verify(username, password, source)
        token, digest, token_id = tokens.new_token()

        def op(c: duckdb.DuckDBPyConnection, now: datetime) -> datetime:
            expires = now + self._session_ttl
            tokens.insert(c, digest, token_id, "user", user.username, None, now, expires)
            return expires

        return SessionGrant(token=token, user=user, expires_at=self._write(op))

    def resolve_token(self, token: str) -> Principal:
        """Who a session or scanner token stands for; AuthError when unknown, expired, revoked or its user
        disabled. Each use slides a session's expiry (written back at most once a minute)."""
        digest = tokens.token_digest(token)
        row = self._read(tokens.lookup, digest)
        now = self._clock()
        principal = tokens.principal_of(row, now, self._session_ttl)
        assert row is not None  # principal_of refused an unknown token
        if row["last_seen_at"] is None or now - row["last_seen_at"] >= tokens.TOUCH_EVERY:
            expires = None if principal.kind == "scanner" else now + self._session_ttl
            self._write(lambda c, _now: tokens.touch(c, digest, now, expires))
        return principal

    def logout(self, token: str) -> None:
        """End a session (idempotent: an unknown or ended session is not an error)."""
        digest = tokens.token_digest(token)
        self._write(lambda c, now: tokens.logout(c, digest, now))

    # ---- scanner tokens -------------------------------------------------------------------------------------------

    def issue_scanner_token(self, scanner_id: str, actor: str) -> str:
        """A new bearer token for a scanner client of /v1 (plaintext, returned once; valid until revoked)."""
        tokens.check_scanner_id(scanner_id)
        token, digest, token_id = tokens.new_token()

        def op(c: duckdb.DuckDBPyConnection, now: datetime) -> None:
            tokens.insert(c, digest, token_id, "scanner", None, scanner_id, now, None)
            writes.audit_row(c, now, actor, "token_issue", token_id, scanner_id=scanner_id)

        self._write(op)
        return token

    def revoke_token(self, token_or_id: str, actor: str) -> int:
        """Revoke a token given as plaintext, as its token_id, or every live token of a scanner id; returns how
        many were revoked. NotFoundError when nothing live matches."""
        return self._write(lambda c, now: tokens.revoke(c, token_or_id, actor, now))  # type: ignore[no-any-return]

    def list_tokens(self, kind: PrincipalKind | None = None, include_revoked: bool = False) -> list[TokenRecord]:
        """Sessions and scanner tokens (ids and times, never the tokens), oldest first."""
        return self._read(tokens.list_tokens, kind, include_revoked)
