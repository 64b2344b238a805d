"""Is the stream being screened? The pipeline's health as one small report: ok, or degraded with the reasons.

`PipelineHealth` is fed by the ingest (store reachable? scoring failing?) and asked about the watcher's
backlog (files noticed but not yet spooled, and how long the oldest has waited). `report()` turns that into
`HealthReport`, which `/healthz`, the metrics and the app show. `fetch_serving_health(settings)` is what the
app calls: the API's `/healthz`, else the watcher's own `/health`, else "not running". No Ray here.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import httpx

Status = Literal["ok", "degraded", "down"]


@dataclass(frozen=True)
class HealthReport:
    """`status` is "ok" only when `reasons` is empty. Ages in seconds; `backlog` in files."""

    status: Status
    reasons: list[str] = field(default_factory=list)
    backlog: int = 0
    oldest_pending_s: float = 0.0
    scoring_failures: int = 0  # consecutive failed scoring calls (0 once one succeeds)
    store_failures: int = 0  # consecutive failed store calls from the ingest (0 once one succeeds)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


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


def merge(*reports: HealthReport | dict[str, Any]) -> dict[str, Any]:
    """One answer from several parts (the watcher process's and the API's): worst status, all reasons."""
    rank = {"ok": 0, "degraded": 1, "down": 2}
    parts = [r.as_dict() if isinstance(r, HealthReport) else dict(r) for r in reports]
    status = max((p.get("status", "ok") for p in parts), key=lambda s: rank.get(s, 1))
    out: dict[str, Any] = {"status": status, "reasons": [x for p in parts for x in p.get("reasons", [])]}
    for key in ("backlog", "scoring_failures", "store_failures"):
        out[key] = sum(int(p.get(key, 0) or 0) for p in parts)
    out["oldest_pending_s"] = max((float(p.get("oldest_pending_s", 0) or 0) for p in parts), default=0.0)
    return out


def fetch_serving_health(settings: Any, timeout_s: float = 2.0) -> dict[str, Any]:
    """The serving pipeline's health as the app shows it: status ok | degraded | down, reasons, backlog, ages.

    Asks the API's /healthz (which includes the watcher's report); when the API does not answer, asks the
    watcher process directly and says that the API is down; when neither answers, "down"."""
    host = settings.network.host
    try:
        response = httpx.get(f"{settings.api_url}/healthz", timeout=timeout_s)
        if response.status_code in (200, 503):
            return dict(response.json())
    except (httpx.HTTPError, ValueError):
        pass
    try:
        watcher = httpx.get(f"http://{host}:{settings.network.metrics_port}/health", timeout=timeout_s).json()
    except (httpx.HTTPError, ValueError):
        return {"status": "down", "reasons": ["serving is not running (neither the API nor the watcher answers)"],
                "backlog": 0, "oldest_pending_s": 0.0, "scoring_failures": 0, "store_failures": 0}
    return merge(watcher, {"status": "degraded", "reasons": [f"the /v1 API on {settings.api_url} does not answer"]})


__all__ = ["HealthReport", "PipelineHealth", "fetch_serving_health", "merge"]
