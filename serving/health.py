"""Is the stream being screened? The pipeline's side of the health report (xscreen/health.py): `PipelineHealth`.

It is fed by the ingest (store reachable? scoring failing?) and asked about the watcher's backlog (files noticed
but not yet spooled, and how long the oldest has waited). `report()` turns that into a `HealthReport`, which
`/healthz`, the metrics and the app show. No Ray here.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Literal

from xscreen.health import HealthReport


class PipelineHealth:
    """Thread-safe record of the ingest's recent failures, plus the watcher's backlog read at report time.

    A failure is "recent" while the last success of that kind is older than the last failure: one successful
    call clears it, so a degraded report always describes the present, not the past."""

    def __init__(self, *, stall_after_s: float = 60.0, clock: Callable[[], float] = time.monotonic) -> None:
        self._stall_after_s = stall_after_s
        self._clock = clock
        self._lock = threading.Lock()
        self._failures: dict[str, tuple[int, str]] = {}  # kind -> (consecutive count, last error)
        self._backlog: Callable[[], tuple[int, float]] = lambda: (0, 0.0)

    def track_backlog(self, backlog: Callable[[], tuple[int, float]]) -> None:
        """`backlog()` -> (files pending, age of the oldest in seconds); the watcher provides it."""
        self._backlog = backlog

    def failed(self, kind: Literal["store", "scoring", "spool"], error: BaseException | str) -> None:
        text = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
        with self._lock:
            count = self._failures.get(kind, (0, ""))[0]
            self._failures[kind] = (count + 1, text[:300])

    def succeeded(self, kind: Literal["store", "scoring", "spool"]) -> None:
        with self._lock:
            self._failures.pop(kind, None)

    def report(self, extra: list[str] | None = None) -> HealthReport:
        """Degraded when the store or scoring is failing now, or the oldest pending file waited too long."""
        backlog, oldest = self._backlog()
        with self._lock:
            failures = dict(self._failures)
        reasons = list(extra or [])
        labels = {"store": "store owner unreachable or failing", "scoring": "scoring failing",
                  "spool": "spool not writable"}
        for kind, (count, text) in sorted(failures.items()):
            reasons.append(f"{labels[kind]} ({count} call(s) in a row): {text}")
        if oldest > self._stall_after_s:
            reasons.append(f"oldest unscored file has waited {oldest:.0f} s (over {self._stall_after_s:.0f} s); "
                           f"{backlog} file(s) pending")
        return HealthReport("degraded" if reasons else "ok", reasons, backlog, round(oldest, 3),
                            failures.get("scoring", (0, ""))[0], failures.get("store", (0, ""))[0])


__all__ = ["PipelineHealth"]
