"""What the monitoring job says and the app shows: alert sentences (what moved, where, since when, how sure, what
to do), their severity, the label-free prevalence from the certificate, and the tables of latest measurements.

Pure functions of the statistics' results and of plain records, so the scheduled job, `xscreen monitor` and the
Drift & accuracy page word and shape the same numbers the same way.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from analytics.monitoring.errors import MonitoringInputError
from analytics.monitoring.shift import ScannerShift

# Alert kinds. Paging kinds say "harm is likely now"; the others explain what moved.
CERTIFICATE, ACCURACY = "certificate", "accuracy"
SCANNER_DRIFT, CONTENT_DRIFT, SCORE_DRIFT = "scanner_drift", "content_drift", "score_drift"
PAGING_KINDS = frozenset({CERTIFICATE, ACCURACY})


@dataclass(frozen=True)
class AlertText:
    """One alert as the job raises it: kind, severity ("page" or "warning") and its sentence."""

    kind: str
    severity: str
    message: str


def severity(kind: str, *, page_on_drift: bool) -> str:
    """"page" for harm (certificate watch, accuracy page), and for drift only when configured; else "warning"."""
    return "page" if kind in PAGING_KINDS or page_on_drift else "warning"


def prevalence_from_flag_rate(flag_rate: float, *, detection_rate: float, benign_routed: float) -> float:
    """Threat prevalence from the live flag rate by black-box shift estimation with two labels (threat, benign)
    and two predictions (routed, cleared), the confusion shares taken from the certificate:
    flag = pi * pd + (1 - pi) * br, so pi = (flag - br) / (pd - br), clipped to [0, 1]. Assumes label shift
    (P(routed | label) as certified): on an unseen scanner it reads more routing as more threats."""
    for name, v in (("flag rate", flag_rate), ("detection rate", detection_rate), ("benign routed", benign_routed)):
        if not 0.0 <= v <= 1.0 or np.isnan(v):
            raise MonitoringInputError(f"{name} must be in [0, 1], got {v}")
    if detection_rate <= benign_routed:
        raise MonitoringInputError("the certificate's detection rate must exceed its benign routed share")
    return float(np.clip((flag_rate - benign_routed) / (detection_rate - benign_routed), 0.0, 1.0))


def _moves(shift: ScannerShift, kind: str | None = None) -> str:
    moved = sorted((s for s in shift.stats if s.moved and (kind is None or s.kind == kind)),
                   key=lambda s: -abs(s.smd))
    return ", ".join(f"{s.name} {s.smd:+.1f} SD (q={s.q_value:.1g})" for s in moved) or "no single statistic"


def scanner_drift_text(shift: ScannerShift, *, since: datetime, n_current: int, page_on_drift: bool) -> AlertText:
    """A scanner whose detector statistics moved alone: call maintenance (retraining would learn a fault)."""
    message = (f"{shift.scanner_id}: detector statistics moved over its last {n_current} scans (since "
               f"{since:%Y-%m-%d %H:%M} UTC): {_moves(shift, 'scanner')}; content effect only "
               f"{shift.content_effect:.1f} SD. Scanner drift: call maintenance (check gain, noise, calibration); "
               "do not retrain on these scans")
    return AlertText(SCANNER_DRIFT, severity(SCANNER_DRIFT, page_on_drift=page_on_drift), message)


def content_drift_text(scanners: Iterable[str], shifts: Mapping[str, ScannerShift], embedding: Mapping[str, str],
                       *, since: datetime, page_on_drift: bool) -> AlertText:
    """The mail itself changed (several scanners, or one scanner's content statistics or embeddings): retrain."""
    parts = []
    for scanner in sorted(scanners):
        what = [x for x in (_moves(shifts[scanner]) if scanner in shifts and shifts[scanner].moved else "",
                            embedding.get(scanner, "")) if x]
        parts.append(f"{scanner} ({'; '.join(what) or 'embeddings'})")
    message = (f"content drift since {since:%Y-%m-%d %H:%M} UTC on {', '.join(parts)}: the mail changed, not the "
               "scanners. Retrain or fine-tune on recent labelled mail; watch realised accuracy meanwhile")
    return AlertText(CONTENT_DRIFT, severity(CONTENT_DRIFT, page_on_drift=page_on_drift), message)


def score_drift_text(scanner_id: str, model_version: str, drifted: Mapping[str, float], *, since: datetime,
                     page_on_drift: bool) -> AlertText:
    """Per-class score distributions moved (PSI over the alert level and KS significant after BH)."""
    classes = ", ".join(f"{c} PSI {v:.2f}" for c, v in sorted(drifted.items(), key=lambda kv: -kv[1]))
    message = (f"{scanner_id}, model {model_version}: score distributions moved since {since:%Y-%m-%d %H:%M} UTC "
               f"({classes}). Read beside input drift: scanner drift calls maintenance, content drift retraining")
    return AlertText(SCORE_DRIFT, severity(SCORE_DRIFT, page_on_drift=page_on_drift), message)


def latest_table(measurements: Iterable[Any]) -> pd.DataFrame:
    """Latest measurements (MeasurementRecord-like: kind, scanner_id, model_version, value, measured_at, details)
    as one row per (scanner, model) and one column per kind, values rounded to 4 places; `alarm` columns name
    the kinds whose details say alarm or moved."""
    rows: dict[tuple[str, str], dict[str, Any]] = {}
    for m in measurements:
        key = (m.scanner_id or "(fleet)", m.model_version or "")
        row = rows.setdefault(key, {"scanner": key[0], "model": key[1], "alarms": []})
        row[m.kind] = round(float(m.value), 4) if np.isfinite(m.value) else None
        if m.details.get("alarm") or m.details.get("moved"):
            row["alarms"].append(m.kind)
    frame = pd.DataFrame(list(rows.values()))
    if len(frame):
        frame["alarms"] = frame["alarms"].map(lambda a: ", ".join(sorted(a)))
    return frame.sort_values(["scanner", "model"], ignore_index=True) if len(frame) else frame


# The windowed input-drift checks, each an effect size with its floor and a p-value with its level: (measurement
# kind, what the app calls it, the details key of its p-value).
INPUT_DRIFT_CHECKS = (("image_stats_shift", "image statistics, largest |d|", "least_q"),
                      ("embedding_mmd", "embeddings, MMD²", "p_value"),
                      ("embedding_domain_auc", "embeddings, domain classifier AUC", "p_value"))


def input_drift_table(measurements: Iterable[Any]) -> pd.DataFrame:
    """Each scanner's latest windowed input-drift checks, one row per check: scanner, model, check, effect
    (the statistic), floor (the least effect that counts), p (the test's p-value; for image statistics the least
    Benjamini-Hochberg q-value), level (the p it must be under: drift_window / drift_arl_items, shared by the
    two embedding tests), moved (both), scans (reference / current). A measurement stored before the levels were
    recorded shows blanks there."""
    names = {kind: (i, label, p_key) for i, (kind, label, p_key) in enumerate(INPUT_DRIFT_CHECKS)}
    rows = []
    for m in sorted(measurements, key=lambda m: (m.scanner_id or "(fleet)", m.model_version or "",
                                                 names.get(m.kind, (0,))[0])):
        if m.kind not in names:
            continue
        _, label, p_key = names[m.kind]
        d = m.details
        rows.append({"scanner": m.scanner_id or "(fleet)", "model": m.model_version or "", "check": label,
                     "effect": round(float(m.value), 4) if np.isfinite(m.value) else None,
                     "floor": d.get("threshold"), "p": d.get(p_key), "level": d.get("alpha"),
                     "moved": bool(d.get("moved")),
                     "scans": f"{d.get('n_reference', '?')} / {d.get('n_current', '?')}"})
    return pd.DataFrame(rows, columns=["scanner", "model", "check", "effect", "floor", "p", "level", "moved", "scans"])


def summary_table(measurements: Iterable[Any]) -> pd.DataFrame:
    """One row per measurement for a terminal: scanner ("(fleet)" when none), model, kind, value (4 significant
    digits, blank when not a number) and flag ("ALARM" / "moved" from the details, else blank)."""
    rows = [{"scanner": m.scanner_id or "(fleet)", "model": m.model_version or "", "kind": m.kind,
             "value": f"{m.value:.4g}" if np.isfinite(m.value) else "",
             "flag": "ALARM" if m.details.get("alarm") else "moved" if m.details.get("moved") else ""}
            for m in measurements]
    frame = pd.DataFrame(rows, columns=["scanner", "model", "kind", "value", "flag"])
    return frame.sort_values(["scanner", "model", "kind"], ignore_index=True)


def accuracy_table(measurements: Iterable[Any]) -> pd.DataFrame:
    """Realised against label-free accuracy per scanner: realised detection (officers and labels, Wilson
    interval) beside CBPE's estimate (bootstrap interval), from `realised_detection` and `cbpe_detection`."""
    out: dict[str, dict[str, Any]] = {}
    for m in measurements:
        if m.kind not in ("realised_detection", "cbpe_detection"):
            continue
        row = out.setdefault(m.scanner_id or "(fleet)", {"scanner": m.scanner_id or "(fleet)"})
        prefix = "realised" if m.kind.startswith("realised") else "cbpe"
        row[prefix] = m.value
        row[f"{prefix}_low"], row[f"{prefix}_high"] = m.details.get("low"), m.details.get("high")
        row[f"{prefix}_n"] = m.details.get("n")
    return pd.DataFrame(list(out.values())).sort_values("scanner", ignore_index=True) if out else pd.DataFrame()


def alert_table(alerts: Iterable[Any]) -> pd.DataFrame:
    """Alerts (AlertRecord-like) for a table: raised, severity, kind, scanner, status, message, alert_id."""
    rows = [{"raised": a.raised_at, "severity": a.severity, "kind": a.kind,
             "scanner": a.details.get("scanner_id") or "(fleet)", "status": a.status, "message": a.message,
             "alert_id": a.alert_id} for a in alerts]
    return pd.DataFrame(rows, columns=["raised", "severity", "kind", "scanner", "status", "message", "alert_id"])
