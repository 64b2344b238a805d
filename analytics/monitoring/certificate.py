"""Certificate watch: is a scanner still routing presumed-benign mail to officers at the rate its certificate expects?

A model's certificate (screening.calibration.certificate) promises a miss rate <= alpha on threats exchangeable
with its calibration threats, and records what the operating point cost on the calibration split, among it
`expected_benign_routed`: the share of benign items sent to an officer (inspect or uncertain). On a scanner the
model does not know, scores of benign items rise and that share jumps (90-95% on an unseen scanner style against
~3% certified): the promise was made about other images. The watch runs a `bernoulli_watch` e-detector on
"this presumed-benign item was routed" per scanner, against the certified share plus a tolerance.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from analytics.monitoring.errors import MonitoringInputError
from analytics.monitoring.sequential import DetectorState, WatchResult, tolerance_watch


@dataclass(frozen=True)
class CertificateWatch:
    """One scanner's certificate watch after an update. Rates are shares in [0, 1]; statistic/threshold are logs.

    `items` counts presumed-benign items fed since the detector started; `recent_items` / `recent_rate` describe
    the stretch since the detector's change-point estimate. Alarm = the certificate does not hold here.
    """

    scanner_id: str
    statistic: float
    threshold: float
    alarm: bool
    items: int
    recent_items: int
    recent_rate: float
    certified_rate: float
    tolerated_rate: float
    prevalence: float | None
    message: str
    state: DetectorState


def certified_benign_routed(calibration: Mapping[str, Any]) -> float:
    """The certificate's `expected_benign_routed` share, from a model's registry `calibration` dict or the
    certificate itself; MonitoringInputError when the model has none (trained before certificates recorded it)."""
    cert = calibration.get("certificate", calibration)
    value = cert.get("expected_benign_routed") if isinstance(cert, Mapping) else None
    if value is None or not 0.0 <= float(value) <= 1.0:
        raise MonitoringInputError("the model's certificate records no expected_benign_routed share in [0, 1]")
    return float(value)


def benign_routed_from_flag_rate(flag_rate: float, *, prevalence: float, detection_rate: float) -> float:
    """Label-free share of benign mail routed: (flag_rate - prevalence * detection) / (1 - prevalence), in [0, 1].

    Use where officers' outcomes are too delayed to mark items benign; prevalence from `estimation.bbse`.
    """
    for name, v in (("flag rate", flag_rate), ("prevalence", prevalence), ("detection rate", detection_rate)):
        if not 0.0 <= v <= 1.0:
            raise MonitoringInputError(f"{name} must be in [0, 1], got {v}")
    if prevalence >= 1.0:
        raise MonitoringInputError("prevalence 1 leaves no benign mail to measure")
    return float(np.clip((flag_rate - prevalence * detection_rate) / (1.0 - prevalence), 0.0, 1.0))


def certificate_watch(routed: Sequence[bool] | np.ndarray, *, scanner_id: str, certified_rate: float,
                      margin: float, arl: float, state: DetectorState | None = None,
                      prevalence: float | None = None) -> CertificateWatch:
    """Feed one scanner's presumed-benign items (True = routed to an officer) in the order they were scored.

    AI-cleared items count as not routed (False), flagged items an officer cleared as routed (True); confirmed
    threats are left out. Feed only the items scored before the oldest flagged item still waiting for an
    officer: fed as decisions come, routed items would arrive in bursts (a queue cleared in one go) that read as
    a change. Items still waiting for an officer are not fed yet: counting them as routed benign would add up to pi * d /
    (1 - pi) to the rate (prevalence pi, detection d), harmless at real mail prevalence (~0.1%) but a false
    alarm at the demo's 15%. H0: routed share <= certified_rate + margin; mean run length between false
    alarms >= `arl` items (sequential.py). Pass the detector `state` of the previous run to continue it.
    """
    if certified_rate + margin >= 1.0:
        return _unbreakable(routed, scanner_id, certified_rate, arl, prevalence, state)
    res = tolerance_watch(routed, certified_rate=certified_rate, margin=margin, arl=arl, state=state)
    tolerated = res.null_rate
    overall = res.n_events / res.n_items if res.n_items else float("nan")
    message = _message(scanner_id, res, overall, certified_rate, tolerated)
    return CertificateWatch(scanner_id, res.statistic, res.threshold, res.alarm, res.n_items, res.recent_items,
                            res.recent_rate, certified_rate, tolerated, prevalence, message, res.state)


def _unbreakable(routed: Sequence[bool] | np.ndarray, scanner_id: str, certified_rate: float, arl: float,
                 prevalence: float | None, before: DetectorState | None) -> CertificateWatch:
    """The watch of a certificate that already tolerates routing all benign mail (a weak model certified at its
    miss rate routes nearly everything): no stream can breach it, so it never alarms and says why, rather than
    failing the monitoring run for every other scanner and statistic."""
    n = len(routed) + (before.n_items if before else 0)
    k = int(np.sum(np.asarray(routed, dtype=bool))) + (before.n_events if before else 0)
    state = DetectorState(null_rate=1.0, alternatives=(), weights=(), log_cusum=(), since=(), events_since=(),
                          n_items=n, n_events=k)
    message = (f"{scanner_id}: the certificate expects {certified_rate:.0%} of benign mail routed, so with the "
               f"margin nothing can breach it; not watched (a model that routes everything needs retraining)")
    return CertificateWatch(scanner_id, 0.0, float(np.log(arl)), False, n, 0, float("nan"), certified_rate, 1.0,
                            prevalence, message, state)


def _message(scanner_id: str, res: WatchResult, overall: float, certified: float, tolerated: float) -> str:
    limits = f"certificate expects {certified:.0%} (tolerated up to {tolerated:.0%})"
    if res.alarm:
        return (f"{scanner_id} routes {res.recent_rate:.0%} of presumed-benign mail over its last {res.recent_items}"
                f" items, {limits}: adapt with `xscreen adapt --scanner {scanner_id}`")
    return f"{scanner_id} routes {overall:.0%} of {res.n_items} presumed-benign items; {limits}: holds"
