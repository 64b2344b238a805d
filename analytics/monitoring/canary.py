"""Known-answer canaries and paging on harm: detection rates with intervals, and the accuracy page.

A canary is a library threat projected into a live benign scan of a scanner and scored as a hidden test item,
so its answer is known: `detected` = the model did not clear it. Canary outcomes, random-audit outcomes and
officers' confirmations together say whether the model misses more threats than its certificate allows. The
page is a `sequential.bernoulli_watch` e-detector on "this threat was missed" (1) against the certified miss
rate plus a margin, so false pages come no more often than once per `arl` threat outcomes on average.

The outcome stream must be an unbiased sample of threats: officers only see what the model flags, so their
confirmations alone are all detections. Feed canaries (misses and detections), every threat an audit of
cleared mail found (a miss), and officers' confirmed detections *thinned* to the audit's inclusion
probability (`thin_detections`): then each threat, missed or caught, entered the stream with the same
probability. With several audit strata, run one detector per stratum.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from analytics.accuracy import IntervalMethod, rates_by_group
from analytics.monitoring.certificate import CertificateWatch
from analytics.monitoring.errors import MonitoringInputError
from analytics.monitoring.sequential import DetectorState, tolerance_watch


@dataclass(frozen=True)
class AccuracyPage:
    """The accuracy detector of one stream (`label`, e.g. "narcotics on scanner-2") after an update.

    statistic/threshold are natural logs; `outcomes` counts threat outcomes since the detector started;
    `recent_outcomes` / `recent_miss_rate` describe the stretch since its change-point estimate.
    """

    label: str
    statistic: float
    threshold: float
    alarm: bool
    outcomes: int
    misses: int
    recent_outcomes: int
    recent_miss_rate: float
    certified_miss_rate: float
    tolerated_miss_rate: float
    message: str
    state: DetectorState


@dataclass(frozen=True)
class PagingDecision:
    """Page a person or not, and the sentence of every alarm behind the decision."""

    page: bool
    reasons: tuple[str, ...]


def canary_detection(frame: pd.DataFrame, by: Sequence[str] = ("scanner_id", "class_name"),
                     detected: str = "detected", confidence: float = 0.95,
                     method: IntervalMethod = "wilson") -> pd.DataFrame:
    """Detection rate of canaries per group (default scanner and class) with intervals (accuracy.rates_by_group)."""
    return rates_by_group(frame, list(by), detected, confidence, method)


def thin_detections(n_detected: int, inclusion: float, rng: np.random.Generator) -> int:
    """How many of `n_detected` confirmed detections enter the accuracy stream: Binomial(n, inclusion)."""
    if n_detected < 0 or not 0 < inclusion <= 1:
        raise MonitoringInputError(f"need n_detected >= 0 and inclusion in (0, 1], got {n_detected}, {inclusion}")
    return int(rng.binomial(n_detected, inclusion))


def accuracy_page(missed: Sequence[bool] | np.ndarray, *, label: str, certified_miss_rate: float, margin: float,
                  arl: float, state: DetectorState | None = None) -> AccuracyPage:
    """Feed threat outcomes (True = missed) in arrival order; alarm when misses exceed certified + margin.

    `certified_miss_rate` is the certificate's alpha for the any-threat stream; for one class use that class's
    miss rate measured on held-out data (the certificate covers only any-threat). Split `arl` across parallel
    detectors: k detectors each at k * A keep the fleet to one false page per A outcomes on average.
    """
    res = tolerance_watch(missed, certified_rate=certified_miss_rate, margin=margin, arl=arl, state=state)
    tolerated = res.null_rate
    limits = f"certified {certified_miss_rate:.0%}, tolerated up to {tolerated:.0%}"
    if res.alarm:
        message = (f"{label}: {res.recent_rate:.0%} of the last {res.recent_items} known threats were "
                   f"missed ({limits}): accuracy is worse than certified; retrain or adapt, raise audits meanwhile")
    else:
        overall = res.n_events / res.n_items if res.n_items else float("nan")
        message = f"{label}: {res.n_events} of {res.n_items} known threats missed ({overall:.0%}; {limits}): holds"
    return AccuracyPage(label, res.statistic, res.threshold, res.alarm, res.n_items, res.n_events, res.recent_items,
                        res.recent_rate, certified_miss_rate, tolerated, message, res.state)


def paging_decision(watches: Sequence[AccuracyPage | CertificateWatch]) -> PagingDecision:
    """Page when any accuracy detector or certificate watch alarms; the reasons are their sentences."""
    reasons = tuple(w.message for w in watches if w.alarm)
    return PagingDecision(bool(reasons), reasons)
