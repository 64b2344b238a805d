"""How the app words the screening pipeline's health for supervisors: one banner line, or nothing when all is well.

A report is a mapping as `/healthz` answers it: `status` ok | degraded | down, `reasons` (strings), and optionally
`backlog` (files waiting to be scored) and `oldest_pending_s` (seconds the oldest has waited).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def degraded_banner(report: Mapping[str, Any]) -> str | None:
    """None when the status is ok; else 'Screening is degraded: <reasons>' (or 'down'), with the backlog."""
    status = str(report.get("status", "down"))
    if status == "ok":
        return None
    reasons = [str(r) for r in report.get("reasons") or []] or ["no reason given"]
    text = f"Screening is {'down' if status == 'down' else 'degraded'}: {'; '.join(reasons)}"
    backlog, oldest = int(report.get("backlog") or 0), float(report.get("oldest_pending_s") or 0.0)
    if backlog:
        text += f" ({backlog} file{'' if backlog == 1 else 's'} waiting, the oldest for {oldest:.0f} s)"
    return text + "."


def store_health(answer: Mapping[str, Any] | None, error: str | None) -> dict[str, Any]:
    """A report from the store owner's own `/health` (what the app can ask until the serving health is there):
    ok when it answered ok, else down with why."""
    if answer is not None and answer.get("status") == "ok":
        return {"status": "ok", "reasons": []}
    why = error or f"the store owner reports {answer.get('status') if answer else 'nothing'}"
    return {"status": "down", "reasons": [f"store owner: {why}"]}
