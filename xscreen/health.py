"""The health contract between serving and whoever shows it: one small report (ok, degraded or down, with the
reasons, the backlog and how long the oldest file has waited), how reports from several parts merge, and how to
ask a running system for it (`fetch_serving_health`). Serving produces it (serving/health.py, `/healthz`); the
app's banner and the CLI read it. It lives in the kernel because both sides need it and neither may import the
other.
"""

from __future__ import annotations

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


__all__ = ["HealthReport", "Status", "fetch_serving_health", "merge"]
