"""Failed sign-ins counted per username and per source, with a lockout: password guessing gets a few tries.

Kept in the owner's memory (a restart forgets it: a guesser still gets at most a few tries per restart, and
restarts are logged). The clock is an argument; the limiter is thread-safe.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from xscreen.errors import AuthError

MAX_KEYS = 100_000  # beyond this many tracked names, stale entries are dropped first (memory stays bounded)


@dataclass(frozen=True)
class LoginLimits:
    """`max_per_user` failures of one username (or `max_per_source` from one source) within `window` lock it
    out for `lockout` after the last failure."""

    max_per_user: int = 5
    max_per_source: int = 20
    window: timedelta = timedelta(minutes=15)
    lockout: timedelta = timedelta(minutes=2)

    @classmethod
    def from_settings(cls, auth: Any) -> LoginLimits:
        """From the `auth` settings section."""
        return cls(auth.max_failed_logins, auth.max_failed_logins_per_source,
                   timedelta(seconds=auth.login_window_s), timedelta(seconds=auth.lockout_s))


class LoginLimiter:
    def __init__(self, limits: LoginLimits) -> None:
        self._limits = limits
        self._failures: dict[str, deque[datetime]] = {}
        self._lock = threading.Lock()

    def _recent(self, key: str, now: datetime) -> deque[datetime]:
        times = self._failures.get(key, deque())
        while times and times[0] <= now - self._limits.window:
            times.popleft()
        return times

    def check(self, username: str, source: str | None, now: datetime) -> None:
        """AuthError ("try again in N s") while the username or the source is locked out."""
        with self._lock:
            for key, limit in self._keys(username, source):
                times = self._recent(key, now)
                if len(times) >= limit and now < times[-1] + self._limits.lockout:
                    wait = (times[-1] + self._limits.lockout - now).total_seconds()
                    raise AuthError(f"too many failed sign-ins; try again in {max(1, round(wait))} s",
                                    title="Sign-in locked")

    def failed(self, username: str, source: str | None, now: datetime) -> bool:
        """Count a failure; True when it locked the username or the source out."""
        with self._lock:
            if len(self._failures) > MAX_KEYS:
                self._prune(now)
            locked = False
            for key, limit in self._keys(username, source):
                times = self._recent(key, now)
                times.append(now)
                self._failures[key] = times
                locked = locked or len(times) == limit
            return locked

    def succeeded(self, username: str) -> None:
        """A correct password clears the username's count (not the source's: one good account must not let a
        source keep guessing others)."""
        with self._lock:
            self._failures.pop(f"user:{username}", None)

    def _keys(self, username: str, source: str | None) -> list[tuple[str, int]]:
        keys = [(f"user:{username}", self._limits.max_per_user)]
        if source:
            keys.append((f"source:{source}", self._limits.max_per_source))
        return keys

    def _prune(self, now: datetime) -> None:
        stale = [k for k, v in self._failures.items() if not v or v[-1] <= now - self._limits.window]
        for key in stale:
            del self._failures[key]
