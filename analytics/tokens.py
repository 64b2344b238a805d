"""Bearer tokens of people (sessions) and scanner clients: made with `secrets`, stored only as sha256 hashes.

A token is 32 random bytes (urlsafe base64); the table `auth_tokens` keeps its sha256 and a short public
`token_id` (listings, revocation), never the token. Reads are plain functions of a cursor; writes run on the
writer's cursor and check before they write (analytics.writes' rule).
"""

from __future__ import annotations

import hashlib
import re
import secrets
from datetime import datetime, timedelta
from typing import Any

import duckdb

from analytics.fetch import first
from analytics.records import Principal, PrincipalKind, TokenRecord
from analytics.writes import audit_row
from xscreen.errors import AuthError, NotFoundError, XscreenError

TOKEN_BYTES = 32
SCANNER_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
SIGNED_OUT = "the session has expired or was signed out; please sign in again"
# Sliding expiry: last use is written back at most this often per token (a write per request would load the writer).
TOUCH_EVERY = timedelta(seconds=60)
_COLUMNS = "token_id, kind, username, scanner_id, created_at, last_seen_at, expires_at, revoked_at"


def new_token() -> tuple[str, str, str]:
    """(plaintext token, its sha256 hex, its public token_id)."""
    token = secrets.token_urlsafe(TOKEN_BYTES)
    digest = token_digest(token)
    return token, digest, "t-" + digest[:12]


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def check_scanner_id(scanner_id: str) -> None:
    if not SCANNER_ID_RE.match(scanner_id):
        raise XscreenError(f"scanner id {scanner_id!r} must be 1-64 characters of A-Z, a-z, 0-9, '_', '.', '-' "
                           "starting with a letter or digit", title="Invalid scanner id")


# ---- reads --------------------------------------------------------------------------------------------------

def lookup(cur: duckdb.DuckDBPyConnection, digest: str) -> dict[str, Any] | None:
    """The token's row with its user's current role and state (None when unknown)."""
    row = first(cur, "SELECT t.kind, t.username, t.scanner_id, t.last_seen_at, t.expires_at, t.revoked_at, "
                     "u.role, u.disabled FROM auth_tokens t LEFT JOIN users u USING (username) "
                     "WHERE t.token_sha256 = ?", [digest])
    if row is None:
        return None
    keys = ("kind", "username", "scanner_id", "last_seen_at", "expires_at", "revoked_at", "role", "disabled")
    return dict(zip(keys, row, strict=True))


def principal_of(row: dict[str, Any] | None, now: datetime, ttl: timedelta) -> Principal:
    """Who a looked-up token stands for; AuthError when unknown, revoked, expired or its user disabled.

    A user session expires `ttl` after its last use (sliding); a scanner token lasts until revoked."""
    if row is None or row["revoked_at"] is not None:
        raise AuthError(SIGNED_OUT)
    if row["kind"] == "scanner":
        return Principal(kind="scanner", name=f"scanner:{row['scanner_id']}", scanner_id=row["scanner_id"])
    if row["role"] is None or row["disabled"] or row["last_seen_at"] + ttl <= now:
        raise AuthError(SIGNED_OUT)
    return Principal(kind="user", name=row["username"], role=row["role"])


def list_tokens(cur: duckdb.DuckDBPyConnection, kind: PrincipalKind | None, include_revoked: bool) -> list[TokenRecord]:
    cur.execute(f"SELECT {_COLUMNS} FROM auth_tokens WHERE ($kind::VARCHAR IS NULL OR kind = $kind::VARCHAR) "
                "AND ($all OR revoked_at IS NULL) ORDER BY created_at, token_id",
                {"kind": kind, "all": include_revoked})
    names = [d[0] for d in cur.description or []]
    return [TokenRecord(**dict(zip(names, r, strict=True))) for r in cur.fetchall()]


# ---- writes (run on the writer's cursor) --------------------------------------------------------------------

def insert(cur: duckdb.DuckDBPyConnection, digest: str, token_id: str, kind: PrincipalKind, username: str | None,
           scanner_id: str | None, now: datetime, expires_at: datetime | None) -> None:
    cur.execute("INSERT INTO auth_tokens (token_sha256, token_id, kind, username, scanner_id, created_at, "
                "last_seen_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [digest, token_id, kind, username, scanner_id, now, now, expires_at])


def touch(cur: duckdb.DuckDBPyConnection, digest: str, now: datetime, expires_at: datetime | None) -> None:
    """Record a use of a token (sliding expiry of sessions)."""
    cur.execute("UPDATE auth_tokens SET last_seen_at = ?, expires_at = ? WHERE token_sha256 = ? "
                "AND revoked_at IS NULL", [now, expires_at, digest])


def _revoke_where(cur: duckdb.DuckDBPyConnection, where: str, params: list[Any], actor: str,
                  now: datetime) -> list[str]:
    ids = [r[0] for r in cur.execute(f"SELECT token_id FROM auth_tokens WHERE revoked_at IS NULL AND ({where})",
                                     params).fetchall()]
    if ids:
        cur.execute("UPDATE auth_tokens SET revoked_at = ?, revoked_by = ? WHERE list_contains(?, token_id)",
                    [now, actor, ids])
    return ids


def logout(cur: duckdb.DuckDBPyConnection, digest: str, now: datetime) -> None:
    """End a session; unknown or already ended is not an error (signing out twice is harmless)."""
    row = first(cur, "SELECT username, kind FROM auth_tokens WHERE token_sha256 = ? AND revoked_at IS NULL",
                [digest])
    if row is None or row[1] != "user":
        return
    _revoke_where(cur, "token_sha256 = ?", [digest], row[0], now)
    audit_row(cur, now, row[0], "logout", row[0])


def revoke(cur: duckdb.DuckDBPyConnection, token_or_id: str, actor: str, now: datetime) -> int:
    """Revoke a token given as plaintext, as its token_id, or every live token of a scanner id; returns how many.
    NotFoundError when nothing live matches."""
    ids = _revoke_where(cur, "token_sha256 = ? OR token_id = ? OR (kind = 'scanner' AND scanner_id = ?)",
                        [token_digest(token_or_id), token_or_id, token_or_id], actor, now)
    if not ids:
        raise NotFoundError("no live token matches that token, token id or scanner id")
    audit_row(cur, now, actor, "token_revoke", ids[0] if len(ids) == 1 else None, token_ids=ids)
    return len(ids)


def revoke_user_sessions(cur: duckdb.DuckDBPyConnection, username: str, actor: str, now: datetime) -> int:
    """End every live session of a user (disabled accounts)."""
    return len(_revoke_where(cur, "kind = 'user' AND username = ?", [username], actor, now))
