"""What one monitoring run shares: the run's record (`MonitorRun`), its context (store, settings, certificates,
open alerts, alerts to raise) and the detector state carried from run to run in each measurement's details."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from analytics.monitoring import report, sequential
from xscreen.records import AlertRecord, MeasurementRecord
from xscreen.settings import MonitoringSettings

MAX_PENDING = timedelta(hours=24)  # a flagged item waiting longer no longer holds back the certificate watch
Key = tuple[str, str]  # (scanner_id, model_version)


@dataclass
class MonitorRun:
    """What one run measured and raised; `notes` say what was skipped and why."""

    measured_at: datetime
    measurements: list[MeasurementRecord] = field(default_factory=list)
    raised: list[AlertRecord] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def measure(self, kind: str, key: Key | None, value: float, details: dict[str, Any],
                window: tuple[datetime, datetime] | None = None) -> None:
        scanner, model = key if key is not None else (None, None)
        mid = f"{self.measured_at.isoformat()}:{kind}:{scanner}:{model}"
        self.measurements.append(MeasurementRecord(
            measurement_id=mid, measured_at=self.measured_at, kind=kind, scanner_id=scanner, model_version=model,
            window_start=window[0] if window else None, window_end=window[1] if window else None,
            value=float(value) if np.isfinite(value) else float("nan"), details=plain(details)))


def plain(value: Any) -> Any:
    """JSON-safe: numpy numbers to Python, NaN/inf to None, datetimes to ISO text."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, (np.floating, float)):
        return float(value) if np.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, datetime):
        return value.isoformat()
    return value


# ---- detectors carried from run to run -------------------------------------------------------------------------
def state_of(details: dict[str, Any]) -> sequential.DetectorState | None:
    raw = details.get("state")
    if not raw:
        return None
    fields: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in raw.items()}
    return sequential.DetectorState(**fields)


def previous(store: Any, kind: str, alert_kind: str, active: set[tuple[str, Key]]) -> dict[Key, dict[str, Any]]:
    """The last run's details per (scanner, model) of measurement `kind`; a detector whose alarm was handled (no
    active alert of `alert_kind` left for its scanner and model) starts afresh, as the e-detector must after an
    alarm; while its alert is open it continues (and stays high)."""
    out = {}
    for m in store.latest_measurements(kind):
        key = (m.scanner_id, m.model_version)
        if m.details.get("alarm") and (alert_kind, key) not in active:
            out[key] = {"cursor": m.details.get("cursor"), "cursor_ids": m.details.get("cursor_ids", [])}
        else:
            out[key] = m.details
    return out


def new_items(frame: pd.DataFrame, time_col: str, prev: dict[str, Any]) -> pd.DataFrame:
    """Rows after the previous run's cursor (rows at the cursor's instant that it already counted are left out)."""
    if prev.get("cursor"):
        done = set(prev.get("cursor_ids") or [])
        cursor = pd.Timestamp(prev["cursor"])
        frame = frame[(frame[time_col] > cursor) | ((frame[time_col] == cursor) & ~frame["scan_id"].isin(done))]
    return frame


def cursor(frame: pd.DataFrame, time_col: str, prev: dict[str, Any]) -> dict[str, Any]:
    if not len(frame):
        return {"cursor": prev.get("cursor"), "cursor_ids": prev.get("cursor_ids", [])}
    last = frame[time_col].max()
    ids = list(frame.loc[frame[time_col] == last, "scan_id"])
    if prev.get("cursor") and pd.Timestamp(prev["cursor"]) == last:
        ids += list(prev.get("cursor_ids") or [])
    return {"cursor": pd.Timestamp(last).isoformat(), "cursor_ids": ids}


# ---- the run's context ----------------------------------------------------------------------------------------
@dataclass
class Context:
    cfg: MonitoringSettings
    store: Any
    run: MonitorRun
    start: datetime
    certificates: dict[str, dict[str, Any]]
    active: set[tuple[str, Key]]
    alerts: list[tuple[report.AlertText, Key | None, dict[str, Any]]] = field(default_factory=list)

    def certificate_of(self, version: str) -> dict[str, Any] | None:
        if version not in self.certificates:
            try:
                cal = self.store.get_model(version).calibration
            except Exception as exc:  # noqa: BLE001 -- a verdict of a model the registry lost: say so, go on
                self.run.notes.append(f"model {version}: not in the registry ({exc})")
                cal = {}
            cert = cal.get("certificate", cal) if isinstance(cal, dict) else {}
            self.certificates[version] = cert if "expected_benign_routed" in cert else {}
            if not self.certificates[version]:
                self.run.notes.append(f"model {version}: no certificate with expected_benign_routed; "
                                      "certificate watch and accuracy page skipped")
        return self.certificates[version] or None

    def alert(self, text: report.AlertText, key: Key | None, details: dict[str, Any]) -> None:
        self.alerts.append((text, key, details))
