"""Realized accuracy from officers' decisions: precision and detection rate with binomial intervals, rates per
group (window, scanner, class), and how long labels take to arrive.

One pure function per statistic; counts or boolean arrays in, a frozen result out. Rates are in [0, 1].
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy import stats

from xscreen.errors import XscreenError

IntervalMethod = Literal["wilson", "clopper_pearson"]
# Decisions that mean "a threat was there": the officer found it.
THREAT_DECISIONS = frozenset({"confirmed", "seized"})
# `refer` asks for a second opinion: not an outcome yet, so it counts neither way.
OUTCOME_DECISIONS = frozenset({"confirmed", "seized", "cleared"})


class AccuracyInputError(XscreenError):
    """An accuracy statistic was given impossible counts (k > n, negative, confidence outside (0, 1))."""

    title = "Cannot compute accuracy"


@dataclass(frozen=True)
class Interval:
    low: float
    high: float


@dataclass(frozen=True)
class RateEstimate:
    """k successes out of n, the point rate k/n (NaN when n = 0) and its interval."""

    k: int
    n: int
    rate: float
    low: float
    high: float
    method: IntervalMethod
    confidence: float


def _check_counts(k: int, n: int, confidence: float) -> None:
    if n < 0 or k < 0 or k > n:
        raise AccuracyInputError(f"need 0 <= k <= n, got k={k}, n={n}")
    if not 0 < confidence < 1:
        raise AccuracyInputError(f"confidence must be in (0, 1), got {confidence}")


def wilson_interval(k: int, n: int, confidence: float = 0.95) -> Interval:
    """Wilson score interval for a binomial proportion; (0, 1) when n = 0."""
    _check_counts(k, n, confidence)
    if n == 0:
        return Interval(0.0, 1.0)
    z = float(stats.norm.ppf(0.5 + confidence / 2))
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return Interval(max(0.0, centre - half), min(1.0, centre + half))


def clopper_pearson_interval(k: int, n: int, confidence: float = 0.95) -> Interval:
    """Exact (Clopper-Pearson) interval from beta quantiles; never narrower than the truth needs."""
    _check_counts(k, n, confidence)
    if n == 0:
        return Interval(0.0, 1.0)
    a = 1 - confidence
    low = 0.0 if k == 0 else float(stats.beta.ppf(a / 2, k, n - k + 1))
    high = 1.0 if k == n else float(stats.beta.ppf(1 - a / 2, k + 1, n - k))
    return Interval(low, high)


def rate_estimate(k: int, n: int, confidence: float = 0.95, method: IntervalMethod = "wilson") -> RateEstimate:
    """k/n with the chosen interval."""
    fn = wilson_interval if method == "wilson" else clopper_pearson_interval
    iv = fn(k, n, confidence)
    return RateEstimate(k, n, k / n if n else float("nan"), iv.low, iv.high, method, confidence)


def realized_precision(
    decisions: Sequence[str] | np.ndarray, confidence: float = 0.95, method: IntervalMethod = "wilson"
) -> RateEstimate:
    """Share of decided flagged items where the officer found a threat (confirmed or seized).

    `decisions` are the officers' decisions on items the model flagged; `refer` is not an outcome and is left out.
    """
    arr = np.asarray(decisions, dtype=object).ravel()
    outcome = np.isin(arr, list(OUTCOME_DECISIONS))
    k = int(np.isin(arr[outcome], list(THREAT_DECISIONS)).sum())
    return rate_estimate(k, int(outcome.sum()), confidence, method)


def detection_rate(
    flagged: Sequence[bool] | np.ndarray,
    is_threat: Sequence[bool] | np.ndarray,
    confidence: float = 0.95,
    method: IntervalMethod = "wilson",
) -> RateEstimate:
    """Share of items known to hold a threat that the model flagged (inspect or uncertain).

    Ground truth comes from decisions on flagged items plus audits/labels of cleared ones, so the estimate
    is only as unbiased as the audit sampling of cleared items.
    """
    f = np.asarray(flagged, dtype=bool).ravel()
    t = np.asarray(is_threat, dtype=bool).ravel()
    if f.shape != t.shape:
        raise AccuracyInputError(f"flagged has {f.size} items but is_threat has {t.size}")
    return rate_estimate(int((f & t).sum()), int(t.sum()), confidence, method)


def verdict_agreement(
    champion: Sequence[str] | np.ndarray, shadow: Sequence[str] | np.ndarray, confidence: float = 0.95
) -> RateEstimate:
    """Share of scans where champion and shadow agree on sending the item to an officer (inspect/uncertain)."""
    a = np.isin(np.asarray(champion, dtype=object), ["inspect", "uncertain"])
    b = np.isin(np.asarray(shadow, dtype=object), ["inspect", "uncertain"])
    if a.shape != b.shape:
        raise AccuracyInputError(f"{a.size} champion verdicts but {b.size} shadow verdicts")
    return rate_estimate(int((a == b).sum()), int(a.size), confidence)


@dataclass(frozen=True)
class LabelDelay:
    """How long verdicts wait for a label (hours). Quantiles are Kaplan-Meier estimates that count the items still
    unlabelled as censored at `now`; NaN when not reached yet (e.g. fewer than half labelled so far)."""

    n_items: int
    n_labelled: int
    labelled_share: float
    median_hours: float
    p90_hours: float


def rates_by_group(frame: pd.DataFrame, by: Sequence[str], outcome: str, confidence: float = 0.95,
                   method: IntervalMethod = "wilson") -> pd.DataFrame:
    """k/n of a 0/1 `outcome` column per group (e.g. by=["scanner_id", "class_name"], or a window column), with
    intervals. Rows whose outcome is missing (NaN/None: not known yet) are left out of n.

    Returns the `by` columns then k, n, rate, low, high, one row per group, sorted by the groups.
    """
    missing = [c for c in [*by, outcome] if c not in frame.columns]
    if missing:
        raise AccuracyInputError(f"columns not in the frame: {missing}")
    known = frame[frame[outcome].notna()]
    rows = []
    for key, group in known.groupby(list(by), sort=True):
        values = group[outcome].astype(bool)
        est = rate_estimate(int(values.sum()), int(values.size), confidence, method)
        rows.append((*(key if isinstance(key, tuple) else (key,)), est.k, est.n, est.rate, est.low, est.high))
    return pd.DataFrame(rows, columns=[*by, "k", "n", "rate", "low", "high"])


def _km_quantile(result: Any, q: float) -> float:  # scipy.stats.ecdf's result
    """Smallest time whose Kaplan-Meier CDF reaches q."""
    probs, times = result.cdf.probabilities, result.cdf.quantiles
    reached = np.nonzero(probs >= q - 1e-12)[0]
    return float(times[reached[0]]) if reached.size else float("nan")


def label_delay_summary(scored_at: Sequence[pd.Timestamp] | pd.Series, labelled_at: Sequence[pd.Timestamp] | pd.Series,
                        now: pd.Timestamp) -> LabelDelay:
    """Delay from verdict to label, honest about the items still waiting (times in UTC).

    `labelled_at` is NaT where no label has arrived; those items are right-censored at `now` (they will take at
    least that long), so the median is not the optimistic median of the labels that happen to be back already.
    """
    scored, labelled = pd.to_datetime(pd.Series(scored_at), utc=True), pd.to_datetime(pd.Series(labelled_at), utc=True)
    if len(scored) != len(labelled):
        raise AccuracyInputError(f"{len(scored)} verdict times but {len(labelled)} label times")
    if len(scored) == 0:
        return LabelDelay(0, 0, float("nan"), float("nan"), float("nan"))
    now_ts = pd.Timestamp(now).tz_convert("UTC") if pd.Timestamp(now).tzinfo else pd.Timestamp(now, tz="UTC")
    done = labelled.notna().to_numpy()
    hours = ((labelled.where(done, now_ts) - scored).dt.total_seconds() / 3600).to_numpy()
    if (hours < 0).any():
        raise AccuracyInputError("a label (or now) is earlier than its verdict")
    if not done.any():
        return LabelDelay(len(hours), 0, 0.0, float("nan"), float("nan"))
    km = stats.ecdf(stats.CensoredData(uncensored=hours[done], right=hours[~done]))
    return LabelDelay(len(hours), int(done.sum()), float(done.mean()), _km_quantile(km, 0.5), _km_quantile(km, 0.9))
