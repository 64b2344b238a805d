"""The accuracy page on real mail: an anytime-valid test of "the miss rate is worse than certified" from random audits
of AI-cleared mail and officers' confirmations of flagged mail, weighted by Horvitz-Thompson.

Officers see only what the model flags, so every threat they confirm is a detection; a threat the model cleared is
seen only when the random audit sent that cleared item to an officer, with the known probability pi stored for it
(store/audit_sampling.py). Per real-mail item, in scoring order, once resolved:

    Z = (1 / pi) * [audited cleared item, officer confirmed a threat] - c * [flagged item, officer confirmed a threat]

with c = m0 / (1 - m0) and m0 = certified alpha + margin (the tolerated miss rate); every other item gives Z = 0.
With m the share of threats the model clears and p the prevalence, E[Z] = p * (m - c * (1 - m)), which is <= 0
exactly when m <= m0: the audit's 1/pi undoes its sampling (each missed threat counts 1 on average, seen or not).
Z >= -c, so the betting e-values 1 + lambda * Z (0 <= lambda < 1/c) have mean <= 1 under H0 and
`sequential.bet_watch` runs the same mixture-CUSUM e-detector as the other pages on them: at most one false page
per `arl` real-mail items on average, threshold ln(arl), state carried run to run. The test is about the whole
threat mix of that scanner's mail; per class, canaries (analytics.monitoring.canary) are the sharper tool.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from analytics.monitoring.errors import MonitoringInputError
from analytics.monitoring.estimation import audit_estimate
from analytics.monitoring.sequential import DetectorState, bet_watch, start_bet_detector


@dataclass(frozen=True)
class MissEstimate:
    """Share of threats the model cleared, by Horvitz-Thompson: missed = sum(1/pi) over audited threats found,
    share = missed / (missed + detected), with the Korn-Graubard interval of the audit mapped through it
    (estimation.audit_estimate). NaN (and interval (0, 1)) while no threat was seen."""

    items: int
    detected: int
    audited: int
    misses_found: int
    missed: float
    miss_rate: float
    low: float
    high: float


@dataclass(frozen=True)
class MissRatePage:
    """The audit-and-feedback accuracy detector of one stream (`label`, e.g. "real mail on scanner-2") after an
    update. statistic/threshold are natural logs; `items` counts resolved real-mail items fed since the detector
    started, `misses_found` the audited misses among them; `recent_items` is its change-point estimate;
    `alarm_at` the 1-based item (counted from the detector's start) at which it first crossed in this update."""

    label: str
    statistic: float
    threshold: float
    alarm: bool
    alarm_at: int | None
    items: int
    misses_found: int
    recent_items: int
    certified_miss_rate: float
    tolerated_miss_rate: float
    state: DetectorState


def tolerated(certified_miss_rate: float, margin: float) -> float:
    """m0 = certified + margin, refused unless in (0, 1)."""
    if not 0.0 <= certified_miss_rate < 1.0 or margin <= 0 or certified_miss_rate + margin >= 1.0:
        raise MonitoringInputError(f"need 0 <= certified miss rate ({certified_miss_rate}) and certified + margin "
                                   f"({margin}) in (0, 1)")
    return certified_miss_rate + margin


def _arrays(flagged: Sequence[bool] | np.ndarray, threat: Sequence[bool] | np.ndarray,
            inclusion: Sequence[float] | np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    f = np.asarray(flagged, dtype=bool).ravel()
    t = np.asarray(threat, dtype=bool).ravel()
    pi = np.asarray(inclusion, dtype=np.float64).ravel()  # NaN: the item was not audited
    if not f.size == t.size == pi.size:
        raise MonitoringInputError(f"{f.size} flags, {t.size} threat outcomes and {pi.size} inclusion "
                                   "probabilities: one of each per item")
    audited = ~np.isnan(pi)
    if ((pi[audited] <= 0) | (pi[audited] > 1)).any():
        raise MonitoringInputError("inclusion probabilities of audited items must be in (0, 1]")
    if (f & audited).any():
        raise MonitoringInputError("an item is either flagged or an audited cleared item, not both")
    return f, t, pi


def miss_increments(flagged: Sequence[bool] | np.ndarray, threat: Sequence[bool] | np.ndarray,
                    inclusion: Sequence[float] | np.ndarray, *, tolerated_miss_rate: float) -> np.ndarray:
    """Z per resolved item (module docstring): 1/pi for an audited cleared item found to hold a threat, -c for a
    flagged item an officer confirmed, 0 otherwise. `inclusion` is the item's audit pi, NaN when not audited
    (a cleared item nobody audited says nothing: its Z is 0 whatever it held)."""
    f, t, pi = _arrays(flagged, threat, inclusion)
    m0 = tolerated_miss_rate
    if not 0.0 < m0 < 1.0:
        raise MonitoringInputError(f"tolerated miss rate must be in (0, 1), got {m0}")
    z = np.zeros(f.size)
    found = ~f & t & ~np.isnan(pi)
    z[found] = 1.0 / pi[found]
    z[f & t] = -m0 / (1.0 - m0)
    return z


def miss_estimate(flagged: Sequence[bool] | np.ndarray, threat: Sequence[bool] | np.ndarray,
                  inclusion: Sequence[float] | np.ndarray, confidence: float = 0.95) -> MissEstimate:
    """Horvitz-Thompson share of threats missed over these resolved items (one stretch of one scanner)."""
    f, t, pi = _arrays(flagged, threat, inclusion)
    audited = ~f & ~np.isnan(pi)
    detected = int((f & t).sum())
    cleared = int((~f).sum())
    if not audited.any():
        return MissEstimate(int(f.size), detected, 0, 0, float("nan"), float("nan"), 0.0, 1.0)
    est = audit_estimate(t[audited], pi[audited], n_cleared=cleared, detected=detected, confidence=confidence)
    if est.missed_of_threats is None or est.missed_of_threats_interval is None:
        return MissEstimate(int(f.size), detected, est.n_audited, 0, 0.0, float("nan"), 0.0, 1.0)
    low, high = est.missed_of_threats_interval
    return MissEstimate(int(f.size), detected, est.n_audited, est.threats_found, est.missed, est.missed_of_threats,
                        low, high)


def miss_rate_page(flagged: Sequence[bool] | np.ndarray, threat: Sequence[bool] | np.ndarray,
                   inclusion: Sequence[float] | np.ndarray, *, label: str, certified_miss_rate: float,
                   margin: float, arl: float, state: DetectorState | None = None) -> MissRatePage:
    """Feed resolved real-mail items in scoring order (flagged, officer-confirmed threat, audit pi or NaN); alarm
    when the evidence says more than certified + margin of threats are cleared. Continue with `state`."""
    m0 = tolerated(certified_miss_rate, margin)
    if state is None:
        state = start_bet_detector(m0)
    elif not np.isclose(state.null_rate, m0):
        raise MonitoringInputError(f"the detector state tests {state.null_rate}, not certified + margin {m0}")
    z = miss_increments(flagged, threat, inclusion, tolerated_miss_rate=m0)
    res = bet_watch(z, lower=-m0 / (1.0 - m0), arl=arl, state=state)
    return MissRatePage(label, res.statistic, res.threshold, res.alarm, res.alarm_at, res.n_items, res.n_events,
                        res.recent_items, certified_miss_rate, m0, res.state)


def page_message(page: MissRatePage, estimate: MissEstimate, *, since: str) -> str:
    """The alert's or the measurement's sentence: which evidence, how many, the estimated miss rate with its
    interval, since when, and what to do."""
    limits = f"certified {page.certified_miss_rate:.0%}, tolerated up to {page.tolerated_miss_rate:.0%}"
    evidence = (f"random audits + officer feedback on {estimate.items} resolved items since {since}: "
                f"{estimate.detected} threats confirmed among flagged mail, {estimate.misses_found} found among "
                f"{estimate.audited} audited cleared items")
    rate = ("no threat seen yet" if np.isnan(estimate.miss_rate) else
            f"estimated miss rate {estimate.miss_rate:.0%} (95% {estimate.low:.0%}-{estimate.high:.0%})")
    if page.alarm:
        return (f"{page.label}: accuracy is worse than certified ({limits}); {evidence}; {rate}. Retrain or adapt "
                "the model; raise the audit rate on this scanner and check the missed items meanwhile")
    return f"{page.label}: {evidence}; {rate} ({limits}): holds"
