"""Whether the monitoring job is running, told to /healthz: the schedule (in the supervisor process) writes a small
status file after every run; the API (in a Ray replica, another process) reads it. No statistics imports here.

Monitoring that stops (a run failing every time, a thread that died, a supervisor killed) does not stop screening,
so it never makes /healthz "down"; it makes it "degraded" with a reason, because accuracy that nobody watches can
decline quietly, which is what the monitoring is for.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from xscreen import atomic
from xscreen.health import HealthReport

STALE_RUNS = 3  # runs missed (interval_s each) before a schedule that stopped completing runs is reported
STALE_SLACK_S = 120.0  # and at least this long: one run may take a while on a busy store


def status_path(home: Path) -> Path:
    return Path(home) / "run" / "monitoring.json"


def write_status(path: Path, status: dict[str, Any]) -> None:
    """Replace the status file whole (temp file + rename), so a reader never sees half of it. `status`: the
    schedule's interval_s, started_at, last_ok_at (epoch seconds), failures (in a row) and last_error."""
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic.write_text(path, json.dumps({**status, "written_at": time.time()}))


def judge(status: dict[str, Any] | None, now: float) -> HealthReport:
    """ok when there is no status (monitoring off, or this home never ran it) or the schedule completes its runs;
    degraded naming why when its last runs failed or no run completed for STALE_RUNS intervals."""
    if not status:
        return HealthReport("ok")
    interval = float(status.get("interval_s") or 0)
    failures = int(status.get("failures") or 0)
    if failures:
        return HealthReport("degraded", [f"monitoring job failed {failures} run(s) in a row: "
                                         f"{status.get('last_error') or 'unknown error'}"])
    since = status.get("last_ok_at") or status.get("started_at")
    allowed = max(STALE_RUNS * interval, interval + STALE_SLACK_S)
    if interval > 0 and since is not None and now - float(since) > allowed:
        what = "completed a run" if status.get("last_ok_at") else "completed a first run since it started"
        return HealthReport("degraded", [f"monitoring job has not {what} for {now - float(since):.0f} s "
                                         f"(every {interval:g} s expected): drift and accuracy are not being watched"])
    return HealthReport("ok")


def monitoring_health(home: Path, now: float | None = None) -> HealthReport:
    """`judge` of the home's status file; an unreadable file is itself a reason."""
    path = status_path(home)
    try:
        status = json.loads(path.read_text())
    except FileNotFoundError:
        return HealthReport("ok")
    except (OSError, ValueError) as exc:
        return HealthReport("degraded", [f"monitoring status {path} unreadable: {exc}"])
    return judge(status, time.time() if now is None else now)


__all__ = ["judge", "monitoring_health", "status_path", "write_status"]
