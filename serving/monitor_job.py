"""The monitoring job: reads the recent stream from the store, runs analytics.monitoring's statistics per scanner
and model, writes every result as a measurement and raises the alerts they call for. No Ray; plain Python.

One run (`run_monitor`) does, for the champion model(s) of the last `monitoring.reference_days`:
- certificate watch per scanner and model, continued from the detector state of the previous run (paging);
- accuracy page on known-answer canaries per scanner and model, continued the same way (paging);
- accuracy page on real mail from random audits and officers' confirmations (Horvitz-Thompson weighted, per
  scanner and model), continued the same way (paging);
- input drift per scanner (image statistics by cause, embedding MMD and PCA-reconstruction outliers) and the
  scanner-or-content rule across the fleet; output drift (flag rate, uncertain share, per-class PSI / KS with
  BH control, prevalence from the certificate); realised accuracy (Wilson) and CBPE beside it.
It works the same on an in-process Store and on a StoreClient (every call is a declared store operation).
`MonitorSchedule` runs it every `monitoring.interval_s` in a daemon thread; a failing run is logged and turns the
schedule's health (and the API's /healthz, through serving/monitor_status.py) degraded, never more.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from analytics.monitoring import report
from serving.housekeeping import Housekeeper
from serving.monitor_context import Context, Key, MonitorRun, plain
from serving.monitor_explain import drift_signals, realised_accuracy
from serving.monitor_paging import canary_page, certificate_watch, miss_rate_page
from serving.monitor_status import judge, status_path, write_status
from xscreen.errors import XscreenError
from xscreen.health import HealthReport
from xscreen.records import AlertRecord, utcnow
from xscreen.settings import Settings

log = logging.getLogger(__name__)


def run_monitor(settings: Settings, store: Any, *, now: datetime | None = None,
                post: Callable[[str, dict[str, Any]], None] | None = None) -> MonitorRun:
    """One monitoring run against `store` (Store or StoreClient). Writes measurements and alerts; returns them.

    `post(url, payload)` sends each newly raised alert to `monitoring.webhook_url` (default: httpx, errors logged).
    """
    now = now or utcnow()
    cfg = settings.monitoring
    run = MonitorRun(now)
    active = {(a.kind, (a.details.get("scanner_id"), a.details.get("model_version")))
              for status in ("open", "acknowledged") for a in store.list_alerts(status=status, limit=10_000)}
    ctx = Context(cfg, store, run, now - timedelta(days=cfg.reference_days), {}, active)
    certificate_watch(ctx, now)
    canary_page(ctx, now)
    miss_rate_page(ctx, now)
    drift_signals(ctx, now)
    realised_accuracy(ctx, now)
    if run.measurements:
        store.add_measurements(run.measurements)
    for text, key, details in ctx.alerts:
        _raise(ctx, text, key, details, post or _post_webhook, settings)
    log.info("monitoring run: %d measurement(s), %d new alert(s)", len(run.measurements), len(run.raised))
    return run


def _raise(ctx: Context, text: report.AlertText, key: Key | None, details: dict[str, Any],
           post: Callable[[str, dict[str, Any]], None], settings: Settings) -> None:
    scanner, model = key if key is not None else (None, None)
    alert = AlertRecord(alert_id=f"{text.kind}:{scanner}:{model}:{ctx.run.measured_at.isoformat()}",
                        raised_at=ctx.run.measured_at, severity=text.severity, kind=text.kind,  # type: ignore[arg-type]
                        message=text.message,
                        details=plain({"scanner_id": scanner, "model_version": model, **details}))
    if ctx.store.raise_alert_once(alert):
        ctx.run.raised.append(alert)
        url = settings.monitoring.webhook_url
        if url:
            post(url, alert.model_dump(mode="json"))


def _post_webhook(url: str, payload: dict[str, Any]) -> None:
    """POST one alert; a failure is logged and forgotten (the alert is in the store either way)."""
    import httpx

    try:
        httpx.post(url, json=payload, timeout=5.0).raise_for_status()
    except httpx.HTTPError as exc:
        log.warning("alert webhook %s failed: %s", url, exc)


# ---- the schedule ----------------------------------------------------------------------------------------------
class MonitorSchedule:
    """Runs `run_monitor` every `interval_s` seconds in a daemon thread; a failed run is logged, counted and
    shown by `health()`, and never stops the schedule or what runs it. Once started it keeps a status file
    (serving/monitor_status.py) that the API's /healthz reads: failed runs, or runs that stopped completing,
    show there as "degraded" with the reason; stop() removes it."""

    def __init__(self, settings: Settings, store: Callable[[], Any], interval_s: float | None = None) -> None:
        self._settings = settings
        self._store = store
        self._interval_s = interval_s if interval_s is not None else settings.monitoring.interval_s
        # run_once catches and counts its own failures, so the loop's "log and go on" is only a backstop.
        self._loop = Housekeeper([self.run_once], self._interval_s, name="xscreen-monitoring")
        self.failures = 0
        self.last_error: str | None = None
        self.last_run: MonitorRun | None = None
        self._status = status_path(settings.home)
        self._started_at: float | None = None
        self._last_ok_at: float | None = None

    @property
    def running(self) -> bool:
        return self._loop.running

    def start(self) -> None:
        if self._interval_s > 0:
            self._started_at = time.time()
            self._publish()
            self._loop.start()

    def stop(self, timeout_s: float = 30.0) -> None:
        self._loop.stop(timeout_s)
        if self._started_at is not None:
            self._status.unlink(missing_ok=True)
            self._started_at = None

    def run_once(self) -> MonitorRun | None:
        try:
            self.last_run = run_monitor(self._settings, self._store())
        except Exception as exc:  # noqa: BLE001 -- monitoring must never take serving down with it
            self.failures += 1
            self.last_error = f"{type(exc).__name__}: {exc}"
            log.exception("monitoring run failed (%d in a row)", self.failures)
            self._publish()
            return None
        self.failures, self.last_error, self._last_ok_at = 0, None, time.time()
        self._publish()
        self._request_retraining(self.last_run)
        return self.last_run

    def _request_retraining(self, run: MonitorRun) -> None:
        """A newly raised alert of a kind in monitoring.retrain_on asks for a retrain (run by the supervisor's
        RetrainRunner, never in this thread); a refused request is logged, the run stands."""
        from screening.retrain import alert_retrain_name, triggering_kinds  # torch-free (see there)

        kinds = triggering_kinds(self._settings, run.raised)
        if not kinds:
            return
        name = alert_retrain_name(run.measured_at)
        try:
            self._store().request_retrain(name, f"alert(s) {', '.join(kinds)} raised by monitoring",
                                          "system:monitoring")
        except XscreenError as exc:
            log.error("could not request retraining %s: %s", name, exc)

    def _snapshot(self) -> dict[str, Any]:
        return {"interval_s": self._interval_s, "started_at": self._started_at, "last_ok_at": self._last_ok_at,
                "failures": self.failures, "last_error": self.last_error}

    def _publish(self) -> None:
        """The status /healthz reads (only for a started schedule: `xscreen monitor` runs once and says so)."""
        if self._started_at is None:
            return
        try:
            write_status(self._status, self._snapshot())
        except OSError as exc:  # a full or read-only disk: /healthz then reports the status as stale
            log.error("could not write the monitoring status %s: %s", self._status, exc)

    def health(self) -> HealthReport:
        """What /healthz says of this schedule, judged here from the same state the status file carries."""
        return judge(self._snapshot(), time.time())


__all__ = ["MonitorRun", "MonitorSchedule", "run_monitor"]
