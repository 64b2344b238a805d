"""Threshold what-if: workload, expected misses and cost at an operating point, from labelled scores.

Scores are any-threat probabilities in [0, 1] of items whose truth is known (the model's calibration set
plus recent officer feedback); an item is sent to an officer when its score >= threshold. Rates from the
labelled set are re-weighted to the live `prevalence`, so an enriched calibration set does not inflate
the workload. Thresholds are only offered inside the region the model's conformal certificate covers.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

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


def _labelled(scores: Sequence[float] | np.ndarray, is_threat: Sequence[bool] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    s = np.asarray(scores, dtype=np.float64).ravel()
    t = np.asarray(is_threat, dtype=bool).ravel()
    if s.shape != t.shape:
        raise WhatIfError(f"{s.size} scores but {t.size} labels")
    if not t.any():
        raise WhatIfError("no threat items among the labelled scores: detection rate is undefined")
    if t.all():
        raise WhatIfError("no benign items among the labelled scores: false-alarm rate is undefined")
    return s[t], s[~t]


def _check_unit(name: str, value: float) -> None:
    if not 0.0 <= value <= 1.0 or math.isnan(value):
        raise WhatIfError(f"{name} must be in [0, 1], got {value}")


def operating_point(
    scores: Sequence[float] | np.ndarray, is_threat: Sequence[bool] | np.ndarray, threshold: float, prevalence: float
) -> OperatingPoint:
    """Detection, false-alarm rate and workload when items scoring >= threshold go to officers."""
    _check_unit("prevalence", prevalence)
    threats, benign = _labelled(scores, is_threat)
    det = float((threats >= threshold).mean())
    far = float((benign >= threshold).mean())
    workload = prevalence * det + (1 - prevalence) * far
    return OperatingPoint(threshold, det, 1 - det, far, workload, prevalence)


def threshold_for_detection(
    scores: Sequence[float] | np.ndarray, is_threat: Sequence[bool] | np.ndarray, target: float
) -> float:
    """Highest threshold whose detection rate on the labelled threats is >= target."""
    _check_unit("target detection rate", target)
    threats, _ = _labelled(scores, is_threat)
    desc = np.sort(threats)[::-1]
    k = max(1, math.ceil(target * desc.size - 1e-9))  # need k threats at or above the threshold
    return float(desc[k - 1])


def threshold_for_capacity(
    scores: Sequence[float] | np.ndarray, is_threat: Sequence[bool] | np.ndarray, capacity: float, prevalence: float
) -> float:
    """Lowest threshold (best detection) whose workload at `prevalence` is <= capacity."""
    _check_unit("capacity", capacity)
    _check_unit("prevalence", prevalence)
    threats, benign = _labelled(scores, is_threat)
    candidates = np.unique(np.concatenate([threats, benign, [np.inf]]))  # ascending; inf flags nothing
    det = 1 - np.searchsorted(np.sort(threats), candidates, side="left") / threats.size
    far = 1 - np.searchsorted(np.sort(benign), candidates, side="left") / benign.size
    workload = prevalence * det + (1 - prevalence) * far
    ok = np.nonzero(workload <= capacity + 1e-12)[0]
    return float(candidates[ok[0]])  # workload falls as the threshold rises; inf always qualifies


def cost_view(
    point: OperatingPoint, volume: int, cost_miss: float, cost_inspection: float
) -> CostView:
    """Cost of a missed threat x prevalence x miss rate + cost of an inspection x false alarms, per `volume`."""
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
    scores: Sequence[float] | np.ndarray, is_threat: Sequence[bool] | np.ndarray, prevalence: float, points: int = 101
) -> list[OperatingPoint]:
    """Operating points on an even grid of thresholds in [0, 1], for the trade-off chart."""
    return [operating_point(scores, is_threat, float(t), prevalence) for t in np.linspace(0, 1, points)]
