"""Threshold what-if: workload, expected misses and cost at an operating point.

An item goes to an officer when its any-threat score >= threshold. Two samples feed it, because officers only
ever label what the model flagged (labelled benign items are biased towards high scores):
- `threat_scores`: scores of items known to hold a threat (officer decisions, audits of cleared items, the
  model's calibration threats) -> detection rate;
- `live_scores`: scores of all recent mail, labelled or not -> workload (share of mail sent to officers).
False alarms are the workload that is not detected threats at the given prevalence. Thresholds are only
offered inside the region the model's conformal certificate covers.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from xscreen.errors import XscreenError


class WhatIfError(XscreenError):
    """The what-if was asked something the data cannot answer (no threats, target outside [0, 1], ...)."""

    title = "Cannot compute the what-if"


@dataclass(frozen=True)
class OperatingPoint:
    threshold: float
    detection_rate: float  # share of threats flagged
    miss_rate: float  # 1 - detection_rate
    false_alarm_rate: float  # share of benign items flagged
    workload: float  # share of all mail sent to officers at `prevalence`
    prevalence: float


@dataclass(frozen=True)
class CostView:
    """Per `volume` items: inspections, expected misses and false alarms, and what they cost."""

    volume: int
    inspections: float
    expected_misses: float
    false_alarms: float
    miss_cost: float
    inspection_cost: float

    @property
    def total_cost(self) -> float:
        return self.miss_cost + self.inspection_cost


@dataclass(frozen=True)
class CertifiedRegion:
    """Thresholds in [low, high] keep the certified miss rate <= alpha with confidence 1 - delta."""

    low: float
    high: float
    alpha: float
    delta: float

    def contains(self, threshold: float) -> bool:
        return self.low <= threshold <= self.high

    def clamp(self, threshold: float) -> float:
        return min(max(threshold, self.low), self.high)


def _scores(values: Sequence[float] | np.ndarray, what: str) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64).ravel()
    if arr.size == 0:
        raise WhatIfError(f"no {what}: the what-if needs at least one")
    return arr


def _check_unit(name: str, value: float) -> None:
    if not 0.0 <= value <= 1.0 or math.isnan(value):
        raise WhatIfError(f"{name} must be in [0, 1], got {value}")


def operating_point(
    threat_scores: Sequence[float] | np.ndarray, live_scores: Sequence[float] | np.ndarray, threshold: float,
    prevalence: float,
) -> OperatingPoint:
    """Detection (on known threats), workload (on live mail) and the implied false-alarm rate at a threshold."""
    _check_unit("prevalence", prevalence)
    det = float((_scores(threat_scores, "known threat scores") >= threshold).mean())
    workload = float((_scores(live_scores, "live scores") >= threshold).mean())
    benign = 1 - prevalence
    far = min(1.0, max(0.0, workload - prevalence * det) / benign) if benign > 0 else 0.0
    return OperatingPoint(threshold, det, 1 - det, far, workload, prevalence)


def threshold_for_detection(threat_scores: Sequence[float] | np.ndarray, target: float) -> float:
    """Highest threshold whose detection rate on the known threats is >= target."""
    _check_unit("target detection rate", target)
    desc = np.sort(_scores(threat_scores, "known threat scores"))[::-1]
    k = max(1, math.ceil(target * desc.size - 1e-9))  # need k threats at or above the threshold
    return float(desc[k - 1])


def threshold_for_capacity(live_scores: Sequence[float] | np.ndarray, capacity: float) -> float:
    """Lowest threshold (best detection) that sends at most `capacity` of live mail to officers."""
    _check_unit("capacity", capacity)
    live = np.sort(_scores(live_scores, "live scores"))
    candidates = np.unique(np.concatenate([live, [np.inf]]))  # ascending; inf sends nothing
    workload = 1 - np.searchsorted(live, candidates, side="left") / live.size
    ok = np.nonzero(workload <= capacity + 1e-12)[0]
    return float(candidates[ok[0]])  # workload falls as the threshold rises; inf always qualifies


def cost_view(
    point: OperatingPoint, volume: int, cost_miss: float, cost_inspection: float
) -> CostView:
    """Cost of a missed threat x prevalence x miss rate + cost of an inspection x false alarms, per `volume` items."""
    if volume < 0 or cost_miss < 0 or cost_inspection < 0:
        raise WhatIfError("volume and costs must be non-negative")
    misses = volume * point.prevalence * point.miss_rate
    false_alarms = volume * (1 - point.prevalence) * point.false_alarm_rate
    return CostView(
        volume=volume,
        inspections=volume * point.workload,
        expected_misses=misses,
        false_alarms=false_alarms,
        miss_cost=cost_miss * misses,
        inspection_cost=cost_inspection * false_alarms,
    )


def certified_region(calibration: Mapping[str, Any]) -> CertifiedRegion:
    """The thresholds a model's conformal certificate covers, from its registry `calibration` dict.

    The certificate (screening.calibration.certificate) guarantees miss rate <= alpha when items scoring
    below its any-threat `clear` threshold are cleared; any lower threshold sends a superset of items to
    officers, so it keeps the guarantee. Reads `calibration["certificate"]` (or the dict itself when it is the
    certificate); WhatIfError names what is missing or says the model is not certified.
    """
    cert = calibration.get("certificate", calibration)
    if not isinstance(cert, Mapping) or "alpha" not in cert:
        raise WhatIfError("the model's calibration has no conformal certificate")
    if cert.get("certified") is False:
        raise WhatIfError("the model's operating point is not certified (too few threats in its calibration set)")
    any_threat = (cert.get("thresholds") or {}).get("any_threat")
    high = any_threat.get("clear") if isinstance(any_threat, Mapping) else cert.get("threshold")
    if high is None:
        raise WhatIfError("the model's certificate names no any-threat clear threshold")
    return CertifiedRegion(low=0.0, high=float(high), alpha=float(cert["alpha"]), delta=float(cert.get("delta", "nan")))


def curve(
    threat_scores: Sequence[float] | np.ndarray, live_scores: Sequence[float] | np.ndarray, prevalence: float,
    points: int = 101,
) -> list[OperatingPoint]:
    """Operating points on an even grid of thresholds in [0, 1], for the trade-off chart."""
    return [operating_point(threat_scores, live_scores, float(t), prevalence) for t in np.linspace(0, 1, points)]


@dataclass(frozen=True)
class WhatIfInputs:
    """What the what-if needs from the store's rows: the any-threat scores of items known to hold a threat (for
    detection) and of live scans (for workload), both in [0, 1]."""

    threat_scores: np.ndarray  # (n_threats,)
    live_scores: np.ndarray  # (n_live,)


def inputs(outcomes: pd.DataFrame, samples: pd.DataFrame) -> WhatIfInputs:
    """From `labelled_outcomes` rows (any_threat, is_threat; an unknown truth counts as not a threat) and
    `class_score_sample` rows (class_name, score): the scores the what-if works on."""
    known = outcomes["is_threat"].astype("boolean").fillna(False).to_numpy(dtype=bool)
    threats = outcomes["any_threat"].to_numpy(dtype=np.float64)[known]
    live = samples.loc[samples["class_name"] == "any_threat", "score"].to_numpy(dtype=np.float64)
    return WhatIfInputs(threats, live)
