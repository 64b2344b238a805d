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
schedule's health degraded, never more.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from analytics import accuracy, drift
from analytics.monitoring import canary, certificate, embeddings, estimation, harm, report, sequential, shift
from analytics.monitoring.errors import MonitoringInputError
from serving.housekeeping import Housekeeper
from xscreen.health import HealthReport
from xscreen.records import AlertRecord, MeasurementRecord, utcnow
from xscreen.settings import MonitoringSettings, Settings

log = logging.getLogger(__name__)
MAX_PENDING = timedelta(hours=24)  # a flagged item waiting longer no longer holds back the certificate watch
MIN_WINDOW = 20  # scans per window below which a windowed drift statistic is not computed (too noisy to read)
IMAGE_STATS = (*shift.SCANNER_STATS, *shift.CONTENT_STATS[:3])
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
            value=float(value) if np.isfinite(value) else float("nan"), details=_plain(details)))


def _plain(value: Any) -> Any:
    """JSON-safe: numpy numbers to Python, NaN/inf to None, datetimes to ISO text."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
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
def _state_of(details: dict[str, Any]) -> sequential.DetectorState | None:
    raw = details.get("state")
    if not raw:
        return None
    fields: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in raw.items()}
    return sequential.DetectorState(**fields)


def _previous(store: Any, kind: str, alert_kind: str, active: set[tuple[str, Key]]) -> dict[Key, dict[str, Any]]:
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


def _new_items(frame: pd.DataFrame, time_col: str, prev: dict[str, Any]) -> pd.DataFrame:
    """Rows after the previous run's cursor (rows at the cursor's instant that it already counted are left out)."""
    if prev.get("cursor"):
        done = set(prev.get("cursor_ids") or [])
        cursor = pd.Timestamp(prev["cursor"])
        frame = frame[(frame[time_col] > cursor) | ((frame[time_col] == cursor) & ~frame["scan_id"].isin(done))]
    return frame


def _cursor(frame: pd.DataFrame, time_col: str, prev: dict[str, Any]) -> dict[str, Any]:
    if not len(frame):
        return {"cursor": prev.get("cursor"), "cursor_ids": prev.get("cursor_ids", [])}
    last = frame[time_col].max()
    ids = list(frame.loc[frame[time_col] == last, "scan_id"])
    if prev.get("cursor") and pd.Timestamp(prev["cursor"]) == last:
        ids += list(prev.get("cursor_ids") or [])
    return {"cursor": pd.Timestamp(last).isoformat(), "cursor_ids": ids}


# ---- the run ---------------------------------------------------------------------------------------------------
@dataclass
class _Context:
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
    ctx = _Context(cfg, store, run, now - timedelta(days=cfg.reference_days), {}, active)
    _certificate_watch(ctx, now)
    _canary_page(ctx, now)
    _miss_rate_page(ctx, now)
    _drift(ctx, now)
    _realised_accuracy(ctx, now)
    if run.measurements:
        store.add_measurements(run.measurements)
    for text, key, details in ctx.alerts:
        _raise(ctx, text, key, details, post or _post_webhook, settings)
    log.info("monitoring run: %d measurement(s), %d new alert(s)", len(run.measurements), len(run.raised))
    return run


def _raise(ctx: _Context, text: report.AlertText, key: Key | None, details: dict[str, Any],
           post: Callable[[str, dict[str, Any]], None], settings: Settings) -> None:
    scanner, model = key if key is not None else (None, None)
    alert = AlertRecord(alert_id=f"{text.kind}:{scanner}:{model}:{ctx.run.measured_at.isoformat()}",
                        raised_at=ctx.run.measured_at, severity=text.severity, kind=text.kind,  # type: ignore[arg-type]
                        message=text.message,
                        details=_plain({"scanner_id": scanner, "model_version": model, **details}))
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


def _resolved(items: pd.DataFrame, now: datetime) -> pd.DataFrame:
    """The resolved items of one scanner that can be fed, in scoring order: those scored before its oldest item
    still waiting for an officer (one waiting longer than MAX_PENDING is passed over, so it cannot stall the
    detector for ever, and is never counted)."""
    waiting = items["pending"] & (items["scored_at"] > pd.Timestamp(now - MAX_PENDING))
    if waiting.any():
        items = items.iloc[: int(np.argmax(waiting.to_numpy()))]
    return items[~items["pending"]]


def _resolved_prefix(items: pd.DataFrame, now: datetime) -> pd.DataFrame:
    """`_resolved` presumed-benign items: confirmed threats are left out."""
    items = _resolved(items, now)
    return items[~items["threat"]]


def _certificate_watch(ctx: _Context, now: datetime) -> None:
    prev = _previous(ctx.store, "certificate_watch", report.CERTIFICATE, ctx.active)
    frame = ctx.store.benign_resolutions(start=ctx.start, end=now)
    for (scanner, model), items in frame.groupby(["scanner_id", "model_version"], sort=True):
        cert = ctx.certificate_of(str(model))
        if cert is None:
            continue
        key = (str(scanner), str(model))
        before = prev.get(key, {})
        new = _new_items(_resolved_prefix(items, now), "scored_at", before)
        w = certificate.certificate_watch(new["routed"].to_numpy(bool), scanner_id=key[0],
                                          certified_rate=float(cert["expected_benign_routed"]),
                                          margin=ctx.cfg.certificate_margin, arl=ctx.cfg.page_arl,
                                          state=_state_of(before))
        details = {"alarm": w.alarm, "threshold": w.threshold, "items": w.items, "recent_items": w.recent_items,
                   "recent_rate": w.recent_rate, "certified_rate": w.certified_rate,
                   "tolerated_rate": w.tolerated_rate, "message": w.message, "state": asdict(w.state),
                   **_cursor(new, "scored_at", before)}
        ctx.run.measure("certificate_watch", key, w.statistic, details)
        if w.alarm:
            ctx.alert(report.AlertText(report.CERTIFICATE, "page", w.message), key,
                      {"statistic": w.statistic, "threshold": w.threshold, "recent_rate": w.recent_rate,
                       "recent_items": w.recent_items, "action": f"xscreen adapt --scanner {key[0]}"})


def _canary_page(ctx: _Context, now: datetime) -> None:
    prev = _previous(ctx.store, "accuracy_page", report.ACCURACY, ctx.active)
    frame = ctx.store.known_threat_outcomes(start=ctx.start, end=now)
    for (scanner, model), items in frame.groupby(["scanner_id", "model_version"], sort=True):
        cert = ctx.certificate_of(str(model))
        if cert is None or "alpha" not in cert:
            continue
        key = (str(scanner), str(model))
        before = prev.get(key, {})
        new = _new_items(items, "scored_at", before)
        p = canary.accuracy_page(new["missed"].to_numpy(bool), label=f"canaries on {key[0]}",
                                 certified_miss_rate=float(cert["alpha"]), margin=ctx.cfg.accuracy_margin,
                                 arl=ctx.cfg.page_arl, state=_state_of(before))
        details = {"alarm": p.alarm, "threshold": p.threshold, "outcomes": p.outcomes, "misses": p.misses,
                   "recent_outcomes": p.recent_outcomes, "recent_miss_rate": p.recent_miss_rate,
                   "message": p.message, "state": asdict(p.state), **_cursor(new, "scored_at", before)}
        ctx.run.measure("accuracy_page", key, p.statistic, details)
        rate = accuracy.rate_estimate(int(items["missed"].sum()), len(items))
        ctx.run.measure("canary_miss_rate", key, rate.rate, {"k": rate.k, "n": rate.n, "low": rate.low,
                                                              "high": rate.high, "method": rate.method})
        if p.alarm:
            ctx.alert(report.AlertText(report.ACCURACY, "page", p.message), key,
                      {"statistic": p.statistic, "recent_miss_rate": p.recent_miss_rate})


def _miss_rate_page(ctx: _Context, now: datetime) -> None:
    """Accuracy page on real mail: officers' confirmations of flagged items and the random audit's findings among
    cleared ones (weight 1/pi), per scanner and model, in scoring order up to the first item still waiting."""
    prev = _previous(ctx.store, "miss_rate_page", report.ACCURACY, ctx.active)
    frame = ctx.store.miss_evidence(start=ctx.start, end=now)
    for (scanner, model), items in frame.groupby(["scanner_id", "model_version"], sort=True):
        cert = ctx.certificate_of(str(model))
        if cert is None or "alpha" not in cert:
            continue
        key = (str(scanner), str(model))
        before = prev.get(key, {})
        fed = _resolved(items, now)
        new = _new_items(fed, "scored_at", before)
        p = harm.miss_rate_page(new["flagged"].to_numpy(bool), new["threat"].to_numpy(bool),
                                new["inclusion"].to_numpy(float), label=f"real mail on {key[0]}",
                                certified_miss_rate=float(cert["alpha"]), margin=ctx.cfg.accuracy_margin,
                                arl=ctx.cfg.page_arl, state=_state_of(before))
        # The estimate over the detector's change-point stretch when it alarms (what moved), else the look-back.
        stretch = fed.iloc[len(fed) - min(p.recent_items, len(fed)):] if p.alarm and p.recent_items else fed
        est = harm.miss_estimate(stretch["flagged"].to_numpy(bool), stretch["threat"].to_numpy(bool),
                                 stretch["inclusion"].to_numpy(float))
        since = f"{stretch['scored_at'].min():%Y-%m-%d %H:%M} UTC" if len(stretch) else "the start"
        message = harm.page_message(p, est, since=since)
        details = {"alarm": p.alarm, "threshold": p.threshold, "items": p.items, "misses_found": p.misses_found,
                   "recent_items": p.recent_items, "since": since, "miss_rate": est.miss_rate, "low": est.low,
                   "high": est.high, "detected": est.detected, "audited": est.audited,
                   "tolerated_rate": p.tolerated_miss_rate, "message": message, "state": asdict(p.state),
                   **_cursor(new, "scored_at", before)}
        ctx.run.measure("miss_rate_page", key, p.statistic, details)
        if p.alarm:
            ctx.alert(report.AlertText(report.ACCURACY, "page", message), key,
                      {"statistic": p.statistic, "evidence": "audits + feedback", "miss_rate": est.miss_rate,
                       "low": est.low, "high": est.high, "since": since,
                       "action": "retrain or adapt; raise the audit rate on this scanner meanwhile"})


def _drift(ctx: _Context, now: datetime) -> None:
    """Input and output drift per (scanner, model) on its reference and current windows, then the cause rule."""
    frame = ctx.store.monitor_windows(start=ctx.start, end=now, per_window=ctx.cfg.drift_window)
    shifts: dict[str, shift.ScannerShift] = {}
    emb_moved: dict[str, bool] = {}
    emb_note: dict[str, str] = {}
    since: dict[str, datetime] = {}
    for (scanner, model), rows in frame.groupby(["scanner_id", "model_version"], sort=True):
        key = (str(scanner), str(model))
        ref, cur = rows[rows["window"] == "reference"], rows[rows["window"] == "current"]
        if min(len(ref), len(cur)) < MIN_WINDOW:
            ctx.run.notes.append(f"{key[0]} / {key[1]}: {len(ref) + len(cur)} scans, too few for drift windows")
            continue
        window = (cur["received_at"].min().to_pydatetime(), cur["received_at"].max().to_pydatetime())
        since[key[0]] = window[0]
        shifts[key[0]] = _image_shift(ctx, key, ref, cur, window)
        moved, note = _embedding_drift(ctx, key, ref, cur, window)
        emb_moved[key[0]] = emb_moved.get(key[0], False) or moved
        if moved:
            emb_note[key[0]] = note
        _output_drift(ctx, key, ref, cur, window)
    if shifts:
        _cause(ctx, shifts, emb_moved, emb_note, since)


def _image_shift(ctx: _Context, key: Key, ref: pd.DataFrame, cur: pd.DataFrame,
                 window: tuple[datetime, datetime]) -> shift.ScannerShift:
    cols = [c for c in IMAGE_STATS if ref[c].notna().all() and cur[c].notna().all()]
    s = shift.scanner_shift({c: ref[c].to_numpy(float) for c in cols}, {c: cur[c].to_numpy(float) for c in cols},
                            scanner_id=key[0], effect_threshold=ctx.cfg.stat_effect_alert, fdr=ctx.cfg.stat_fdr)
    ctx.run.measure("image_stats_shift", key, max(s.scanner_effect, s.content_effect), {
        "moved": s.moved, "scanner_effect": s.scanner_effect, "content_effect": s.content_effect,
        "n_reference": len(ref), "n_current": len(cur),
        "stats": {x.name: {"kind": x.kind, "smd": x.smd, "wasserstein": x.wasserstein, "ks": x.ks_statistic,
                           "q": x.q_value, "moved": x.moved} for x in s.stats}}, window)
    return s


def _matrix(frame: pd.DataFrame) -> np.ndarray:
    return np.vstack([np.asarray(e, dtype=np.float64) for e in frame["embedding"]])  # (N, d)


def _embedding_drift(ctx: _Context, key: Key, ref: pd.DataFrame, cur: pd.DataFrame,
                     window: tuple[datetime, datetime]) -> tuple[bool, str]:
    """MMD on PCA-reduced embeddings and the share of reconstruction outliers; (moved, a phrase saying how)."""
    sizes = {len(e) for e in ref["embedding"]} | {len(e) for e in cur["embedding"]}
    if len(sizes) != 1 or 0 in sizes:
        ctx.run.notes.append(f"{key[0]} / {key[1]}: embeddings missing or of mixed sizes; embedding drift skipped")
        return False, ""
    r, c = _matrix(ref), _matrix(cur)
    cfg = ctx.cfg
    few = (f"mmd_permutations {cfg.mmd_permutations} cannot give p < stat_fdr {cfg.stat_fdr} (least p = 1 / "
           f"{cfg.mmd_permutations + 1}): MMD never counts as moved")
    if (cfg.mmd_permutations + 1) * cfg.stat_fdr < 1 and few not in ctx.run.notes:
        ctx.run.notes.append(few)
    mmd = embeddings.mmd_test(r, c, threshold=cfg.mmd_alert, n_components=cfg.mmd_components,
                              max_samples=cfg.mmd_max_samples, n_permutations=cfg.mmd_permutations,
                              alpha=cfg.stat_fdr)
    ctx.run.measure("embedding_mmd", key, mmd.mmd2, {"moved": mmd.moved, "p_value": mmd.p_value,
                                                     "n_reference": mmd.n_reference, "n_current": mmd.n_current,
                                                     "threshold": cfg.mmd_alert}, window)
    # The threshold is a quantile of the reference's held-out half: with few scans there, a high quantile is
    # just its maximum and in-distribution scans exceed it far more often than 1 - quantile. So the quantile is
    # lowered until 5 held-out scans lie above it, and the tolerance widened by two standard errors of it.
    held = r.shape[0] - r.shape[0] // 2
    quantile = min(cfg.reconstruction_quantile, 1.0 - 5.0 / held)
    if quantile < 0.5:
        return mmd.moved, _emb_phrase(mmd, None)
    recon = embeddings.fit_reconstruction(r, n_components=min(cfg.mmd_components, r.shape[1]), quantile=quantile)
    out = embeddings.exceedances(recon, c)
    base = 1.0 - quantile
    null = min(base + max(cfg.reconstruction_margin, 2.0 * np.sqrt(base * (1 - base) / held)), 0.5)
    # A fresh detector over the current window: an explaining signal, not a page (windows overlap run to run).
    watch = sequential.bernoulli_watch(out, arl=cfg.drift_arl_items, null_rate=null)
    ctx.run.measure("reconstruction_outliers", key, float(out.mean()), {
        "moved": watch.alarm, "statistic": watch.statistic, "threshold": watch.threshold, "null_rate": null,
        "quantile": quantile, "n_current": int(out.size)}, window)
    return mmd.moved or watch.alarm, _emb_phrase(mmd, float(out.mean()))


def _emb_phrase(mmd: embeddings.MmdResult, outliers: float | None) -> str:
    tail = f", {outliers:.0%} reconstruction outliers" if outliers is not None else ""
    return f"embeddings MMD² {mmd.mmd2:.3f} (p={mmd.p_value:.2g}){tail}"


def _scores(frame: pd.DataFrame) -> dict[str, np.ndarray]:
    per: dict[str, list[float]] = {"any_threat": list(frame["any_threat"].astype(float))}
    for text in frame["scores"]:
        for name, value in json.loads(text).items():
            per.setdefault(name, []).append(float(value))
    return {k: np.asarray(v) for k, v in per.items()}


def _output_drift(ctx: _Context, key: Key, ref: pd.DataFrame, cur: pd.DataFrame,
                  window: tuple[datetime, datetime]) -> None:
    """Flag rate, uncertain share, prevalence, per-class PSI / KS (BH), CBPE on the current window."""
    cfg = ctx.cfg
    flags = drift.flag_rate(cur["verdict"].to_numpy(object))
    ref_flags = drift.flag_rate(ref["verdict"].to_numpy(object))
    cert = ctx.certificate_of(key[1]) or {}
    ctx.run.measure("flag_rate", key, flags.rate, {"n": flags.n, "flagged": flags.flagged,
                                                   "reference_rate": ref_flags.rate,
                                                   "certified": cert.get("expected_workload")}, window)
    unc = drift.uncertain_share(cur["verdict"].to_numpy(object))
    ctx.run.measure("uncertain_share", key, unc.rate, {"k": unc.k, "n": unc.n, "low": unc.low, "high": unc.high,
                                                       "certified": cert.get("expected_uncertain_share")}, window)
    if cert.get("expected_pd") is not None:
        try:
            pi = report.prevalence_from_flag_rate(flags.rate, detection_rate=float(cert["expected_pd"]),
                                                  benign_routed=float(cert["expected_benign_routed"]))
            ctx.run.measure("prevalence", key, pi, {"method": "bbse-2x2 from the certificate"}, window)
        except MonitoringInputError as exc:
            ctx.run.notes.append(f"{key[0]}: prevalence skipped ({exc})")
    rep = drift.class_drift_report(_scores(ref), _scores(cur), psi_alert=cfg.psi_alert, binning="quantile",
                                   fdr=cfg.stat_fdr)
    drifted = {r.class_name: r.psi for r in rep.rows if r.drifted}
    ctx.run.measure("score_psi", key, max((r.psi for r in rep.rows), default=0.0), {
        "moved": bool(drifted), "classes": {r.class_name: {"psi": r.psi, "ks": r.ks_statistic, "q": r.ks_q_value,
                                                           "drifted": r.drifted} for r in rep.rows}}, window)
    if drifted:
        ctx.alert(report.score_drift_text(key[0], key[1], drifted, since=window[0], page_on_drift=cfg.page_on_drift),
                  key, {"classes": drifted})
    est = estimation.cbpe(cur["any_threat"].to_numpy(float), (cur["verdict"] != "clear").to_numpy(bool),
                          n_boot=cfg.cbpe_bootstrap)
    ctx.run.measure("cbpe_detection", key, est.detection, {
        "n": est.n, "low": est.detection_interval[0], "high": est.detection_interval[1],
        "false_alarm": est.false_alarm, "precision": est.precision}, window)


def _cause(ctx: _Context, shifts: dict[str, shift.ScannerShift], emb_moved: dict[str, bool],
           emb_note: dict[str, str], since: dict[str, datetime]) -> None:
    cfg = ctx.cfg
    cause = shift.drift_cause(list(shifts.values()), embedding_moved=emb_moved, fleet_share=cfg.fleet_share,
                              dominance=cfg.scanner_dominance)
    ctx.run.measure("drift_cause", None, float(len(cause.scanner_drift) + len(cause.content_scanners)), {
        "scanner_drift": list(cause.scanner_drift), "content_drift": cause.content_drift,
        "content_scanners": list(cause.content_scanners), "fleet_scanners": list(cause.fleet_scanners), "stable": list(cause.stable), "message": cause.message,
        "moved": bool(cause.scanner_drift or cause.content_drift)})
    for scanner in cause.scanner_drift:
        s = shifts[scanner]
        text = report.scanner_drift_text(s, since=since[scanner], n_current=max(x.n_current for x in s.stats),
                                         page_on_drift=cfg.page_on_drift)
        ctx.alert(text, (scanner, None), {"stats": s.moved_stats, "action": "call maintenance"})  # type: ignore[arg-type]
    # Retraining is for mail that changed across the fleet. A lone scanner whose content (or only its embeddings)
    # moved is recorded in the drift_cause measurement, not alerted: it is often a scanner fault seen first in
    # its embeddings (scanner ageing moved them one run before its image statistics in tests/test_monitor_e2e.py).
    if cause.fleet_scanners:
        text = report.content_drift_text(cause.fleet_scanners, shifts, emb_note,
                                         since=min(since[s] for s in cause.fleet_scanners),
                                         page_on_drift=cfg.page_on_drift)
        ctx.alert(text, None, {"scanners": list(cause.fleet_scanners), "action": "retrain"})


def _realised_accuracy(ctx: _Context, now: datetime) -> None:
    """Realised detection and precision per scanner and model from officers' decisions and labels (Wilson)."""
    outcomes = ctx.store.labelled_outcomes(start=ctx.start, end=now)
    if not len(outcomes):
        return
    for (scanner, model), rows in outcomes.groupby(["scanner_id", "model_version"], sort=True):
        key = (str(scanner), str(model))
        realised = accuracy.realized_accuracy(rows)
        for kind, r in (("realised_detection", realised.detection), ("realised_precision", realised.precision)):
            if r.n:
                ctx.run.measure(kind, key, r.rate, {"k": r.k, "n": r.n, "low": r.low, "high": r.high,
                                                    "method": r.method, "note": "flagged-only feedback: "
                                                    "detection is biased upwards without random audits"})


# ---- the schedule ----------------------------------------------------------------------------------------------
class MonitorSchedule:
    """Runs `run_monitor` every `interval_s` seconds in a daemon thread; a failed run is logged, counted and
    shown by `health()`, and never stops the schedule or what runs it."""

    def __init__(self, settings: Settings, store: Callable[[], Any], interval_s: float | None = None) -> None:
        self._settings = settings
        self._store = store
        self._interval_s = interval_s if interval_s is not None else settings.monitoring.interval_s
        # run_once catches and counts its own failures, so the loop's "log and go on" is only a backstop.
        self._loop = Housekeeper([self.run_once], self._interval_s, name="xscreen-monitoring")
        self.failures = 0
        self.last_error: str | None = None
        self.last_run: MonitorRun | None = None

    @property
    def running(self) -> bool:
        return self._loop.running

    def start(self) -> None:
        if self._interval_s > 0:
            self._loop.start()

    def stop(self, timeout_s: float = 30.0) -> None:
        self._loop.stop(timeout_s)

    def run_once(self) -> MonitorRun | None:
        try:
            self.last_run = run_monitor(self._settings, self._store())
        except Exception as exc:  # noqa: BLE001 -- monitoring must never take serving down with it
            self.failures += 1
            self.last_error = f"{type(exc).__name__}: {exc}"
            log.exception("monitoring run failed (%d in a row)", self.failures)
            return None
        self.failures, self.last_error = 0, None
        return self.last_run

    def health(self) -> HealthReport:
        if self.failures:
            return HealthReport("degraded", [f"monitoring job failed {self.failures} run(s) in a row: "
                                             f"{self.last_error}"])
        return HealthReport("ok")


__all__ = ["MonitorRun", "MonitorSchedule", "run_monitor"]
