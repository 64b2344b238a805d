"""Who is calling the /v1 API: bearer tokens resolved by the store owner, and what each kind of caller may see.

- A scanner token (`xscreen scanners add ID`) may post scans for its own scanner only; the scanner id comes
  from the token, never from the request.
- A user session token (`POST /v1/login`) may read the queue and scans and post decisions as itself, with what
  its role allows (the owner checks the role and records the person as the actor).
- Officers see the queue as the triage page shows it: no verdict and no per-class scores, so an audit sample
  (an AI-cleared item sent for review) looks like a flagged one.
With `serving.api_auth` off (explicitly, with a warning at start) every caller is the anonymous admin `api`.
No Ray here.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pandas as pd

from analytics.records import Principal
from xscreen.errors import AuthError, PermissionDenied

ANONYMOUS = Principal(kind="user", name="api", role="admin")  # serving.api_auth = false
# Queue columns an officer may see: those of the triage page's queue table.
OFFICER_QUEUE_COLUMNS = ("scan_id", "any_threat", "top_class", "scanner_id", "received_at", "referred",
                         "claimed_by")
CACHE_S = 5.0  # a resolved token is trusted this long without asking the owner again (revocation delay)


def bearer_token(authorization: str | None) -> str:
    """The token of an `Authorization: Bearer <token>` header; AuthError naming what is missing otherwise."""
    if not authorization:
        raise AuthError("this route needs 'Authorization: Bearer <token>' (a scanner token or a session from "
                        "POST /v1/login)")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip() or len(token) > 512:
        raise AuthError("the Authorization header must be 'Bearer <token>'")
    return token.strip()


class Authenticator:
    """Resolves bearer tokens through `resolve` (the owner's resolve_token), caching answers for CACHE_S."""

    def __init__(self, resolve: Callable[[str], Principal], enabled: bool = True, cache_s: float = CACHE_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._resolve = resolve
        self.enabled = enabled
        self._cache_s = cache_s
        self._clock = clock
        self._lock = threading.Lock()
        self._cache: dict[str, tuple[float, Principal]] = {}

    def principal(self, authorization: str | None) -> Principal:
        if not self.enabled:
            return ANONYMOUS
        token = bearer_token(authorization)
        now = self._clock()
        with self._lock:
            hit = self._cache.get(token)
        if hit is not None and now - hit[0] < self._cache_s:
            return hit[1]
        principal = self._resolve(token)  # AuthError for unknown, expired or revoked tokens
        with self._lock:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[token] = (now, principal)
        return principal

    def forget(self, token: str) -> None:
        with self._lock:
            self._cache.pop(token, None)


def scanner_for_upload(principal: Principal, requested: str | None) -> str:
    """The scanner id an upload is recorded under: the token's. A different one in the form is refused."""
    if principal is ANONYMOUS:
        return requested or "api"
    if principal.kind != "scanner" or not principal.scanner_id:
        raise PermissionDenied("only a scanner token may post scans (xscreen scanners add ID)")
    if requested and requested != principal.scanner_id:
        raise PermissionDenied(f"this token is for scanner {principal.scanner_id!r}, not {requested!r}")
    return principal.scanner_id


def require_user(principal: Principal) -> Principal:
    if principal.kind != "user":
        raise PermissionDenied("this route needs a signed-in person (POST /v1/login), not a scanner token")
    return principal


def queue_view(frame: pd.DataFrame, principal: Principal) -> pd.DataFrame:
    """The queue as this caller may see it: officers get the triage page's columns only."""
    if principal.role == "officer":
        return frame[[c for c in OFFICER_QUEUE_COLUMNS if c in frame.columns]]
    return frame


def scan_view(scan: dict[str, Any], principal: Principal) -> dict[str, Any]:
    """A scan as this caller may see it: officers do not get verdict text (the triage page hides it); a
    scanner sees only its own scans (others are 'not found', so ids of other scanners are not confirmed)."""
    from xscreen.errors import NotFoundError

    if principal.kind == "scanner" and scan.get("scanner_id") != principal.scanner_id:
        raise NotFoundError(f"scan {scan.get('scan_id')!r} does not exist")
    if principal.role == "officer":
        scan = dict(scan)
        scan["verdicts"] = [{k: v for k, v in verdict.items() if k != "verdict"}
                            for verdict in scan.get("verdicts", []) if verdict.get("role") == "champion"]
    return scan


__all__ = ["ANONYMOUS", "Authenticator", "bearer_token", "queue_view", "require_user", "scan_view",
           "scanner_for_upload"]
