"""Accuracy and prevalence without full labels: label-shift estimation (BBSE), confidence-based performance
estimation (CBPE), and the Horvitz-Thompson miss estimate from random audits of AI-cleared mail.

Rates, shares and probabilities are in [0, 1]; scores are calibrated probabilities of a threat.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import optimize, stats

from analytics.monitoring.errors import MonitoringInputError


@dataclass(frozen=True)
class LabelShift:
    """Estimated label distribution of the target window (`prevalence[j]` = share of class j, sums to 1), the
    importance weights q(y)/p(y) it came from, the source distribution, the least-squares residual, and
    per-class percentile bootstrap intervals (equal to the point when n_boot = 0)."""

    prevalence: tuple[float, ...]
    weights: tuple[float, ...]
    source_prevalence: tuple[float, ...]
    residual: float
    low: tuple[float, ...]
    high: tuple[float, ...]


@dataclass(frozen=True)
class Cbpe:
    """Expected confusion counts at the operating point and the rates they imply, with bootstrap intervals.

    detection = E[TP] / (E[TP] + E[FN]); false_alarm = E[FP] / (E[FP] + E[TN]); precision = E[TP] / (E[TP] +
    E[FP]). Each (low, high) is a percentile interval for the *realised* rate of this window.
    """

    n: int
    expected_tp: float
    expected_fp: float
    expected_fn: float
    expected_tn: float
    detection: float
    detection_interval: tuple[float, float]
    false_alarm: float
    false_alarm_interval: tuple[float, float]
    precision: float
    precision_interval: tuple[float, float]


@dataclass(frozen=True)
class AuditEstimate:
    """Horvitz-Thompson estimate from random audits of AI-cleared items.

    `missed` estimates the number of threats among the `n_cleared` cleared items; `miss_share` = missed /
    n_cleared (threats per cleared item) with its variance and a Korn-Graubard interval (`low`, `high`).
    `missed_of_threats` = missed / (missed + detected) when the number of detected threats is given.
    """

    n_cleared: int
    n_audited: int
    threats_found: int
    missed: float
    miss_share: float
    variance: float
    low: float
    high: float
    confidence: float
    missed_of_threats: float | None
    missed_of_threats_interval: tuple[float, float] | None


@dataclass(frozen=True)
class AuditPlan:
    """Inclusion probability per stratum and the expected number of audits it costs (<= budget)."""

    inclusion: dict[str, float]
    expected_audits: float
    budget: float


def _labels(values: Sequence[int] | np.ndarray, what: str, n: int) -> np.ndarray:
    arr = np.asarray(values).ravel()
    if arr.size == 0:
        raise MonitoringInputError(f"{what} is empty")
    if not np.issubdtype(arr.dtype, np.integer) or arr.min() < 0 or arr.max() >= n:
        raise MonitoringInputError(f"{what} must be integers in 0..{n - 1}")
    return arr


def _solve_shift(src_y: np.ndarray, src_pred: np.ndarray, tgt_pred: np.ndarray, k: int, m: int
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    joint = np.zeros((m, k))
    np.add.at(joint, (src_pred, src_y), 1.0)
    joint /= src_y.size  # C[i, j] = P_source(prediction i, label j)
    target = np.bincount(tgt_pred, minlength=m) / tgt_pred.size  # P_target(prediction i)
    weights, residual = optimize.nnls(joint, target)  # C w = mu with w >= 0 (Lipton et al. 2018, clipped)
    source = np.bincount(src_y, minlength=k) / src_y.size
    q = weights * source
    return (q / q.sum() if q.sum() > 0 else source), weights, source, float(residual)


def bbse(source_labels: Sequence[int] | np.ndarray, source_predictions: Sequence[int] | np.ndarray,
         target_predictions: Sequence[int] | np.ndarray, *, n_classes: int, n_predictions: int | None = None,
         n_boot: int = 0, confidence: float = 0.95, seed: int = 0) -> LabelShift:
    """Black-box shift estimation of the target label distribution (e.g. threat prevalence).

    Source = labelled calibration data (labels 0..n_classes-1, the model's discrete prediction for each, e.g.
    0 clear / 1 uncertain / 2 inspect); target = the live window's predictions. Assumes label shift: P(x | y)
    is the same in both, only P(y) moved; under covariate or concept shift the estimate is biased. Bootstrap
    resamples both the source pairs and the target predictions.
    """
    m = n_predictions or n_classes
    y = _labels(source_labels, "source labels", n_classes)
    sp = _labels(source_predictions, "source predictions", m)
    tp = _labels(target_predictions, "target predictions", m)
    if y.size != sp.size:
        raise MonitoringInputError(f"{y.size} source labels but {sp.size} source predictions")
    q, w, src, res = _solve_shift(y, sp, tp, n_classes, m)
    low, high = q, q
    if n_boot > 0:
        rng = np.random.default_rng(seed)
        boots = []
        for _ in range(n_boot):
            i, j = rng.integers(0, y.size, y.size), rng.integers(0, tp.size, tp.size)
            boots.append(_solve_shift(y[i], sp[i], tp[j], n_classes, m)[0])
        a = (1 - confidence) / 2
        low, high = np.quantile(boots, a, axis=0), np.quantile(boots, 1 - a, axis=0)
    as_t = lambda v: tuple(float(x) for x in v)  # noqa: E731
    return LabelShift(as_t(q), as_t(w), as_t(src), res, as_t(low), as_t(high))


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)


def cbpe(scores: Sequence[float] | np.ndarray, routed: Sequence[bool] | np.ndarray, *, n_boot: int = 200,
         confidence: float = 0.95, seed: int = 0) -> Cbpe:
    """Confidence-based performance estimation at the operating point, from calibrated scores alone.

    `scores[i]` = calibrated P(item i holds a threat) (any-threat, or one class for a per-class estimate);
    `routed[i]` = the item went to an officer (verdict not `clear`). If scores are calibrated on this window,
    E[TP] = sum(routed * s), E[FN] = sum(~routed * s), and so on. Intervals: resample items and draw labels
    ~ Bernoulli(score), n_boot times (seeded), percentile interval of the realised rate.
    """
    s = np.asarray(scores, dtype=np.float64).ravel()
    r = np.asarray(routed, dtype=bool).ravel()
    if s.size == 0 or s.shape != r.shape:
        raise MonitoringInputError(f"need equal, non-empty scores and routed arrays, got {s.size} and {r.size}")
    if not ((s >= 0) & (s <= 1)).all():
        raise MonitoringInputError("scores must be calibrated probabilities in [0, 1]")
    tp, fn = float((s * r).sum()), float((s * ~r).sum())
    fp, tn = float(((1 - s) * r).sum()), float(((1 - s) * ~r).sum())
    a = (1 - confidence) / 2
    intervals = [(float("nan"), float("nan"))] * 3
    if n_boot > 0:
        rng = np.random.default_rng(seed)
        idx = rng.integers(0, s.size, size=(n_boot, s.size))  # (B, N) resampled items
        y = rng.random((n_boot, s.size)) < s[idx]  # (B, N) labels drawn from the scores
        rr = r[idx]
        btp, bfn, bfp, btn = ((y & rr).sum(1), (y & ~rr).sum(1), (~y & rr).sum(1), (~y & ~rr).sum(1))
        rates = [_ratio(btp, btp + bfn), _ratio(bfp, bfp + btn), _ratio(btp, btp + bfp)]
        intervals = [(float(np.nanquantile(v, a)), float(np.nanquantile(v, 1 - a))) if np.isfinite(v).any()
                     else (float("nan"), float("nan")) for v in rates]
    point = [_ratio(np.array(tp), np.array(tp + fn)), _ratio(np.array(fp), np.array(fp + tn)),
             _ratio(np.array(tp), np.array(tp + fp))]
    return Cbpe(int(s.size), tp, fp, fn, tn, float(point[0]), intervals[0], float(point[1]), intervals[1],
                float(point[2]), intervals[2])


def cbpe_by_class(class_scores: Mapping[str, Sequence[float] | np.ndarray], routed: Sequence[bool] | np.ndarray,
                  *, n_boot: int = 200, confidence: float = 0.95, seed: int = 0) -> dict[str, Cbpe]:
    """`cbpe` per class: scores are each class's calibrated probability, routing is the item's verdict."""
    return {name: cbpe(s, routed, n_boot=n_boot, confidence=confidence, seed=seed)
            for name, s in sorted(class_scores.items())}


def _korn_graubard(p: float, variance: float, n: int, confidence: float) -> tuple[float, float]:
    """Clopper-Pearson interval at the effective sample size p(1-p)/variance, capped at n (Korn & Graubard 1998)."""
    n_eff = float(n) if variance <= 0 or p in (0.0, 1.0) else min(float(n), p * (1 - p) / variance)
    if n_eff <= 0:
        return 0.0, 1.0
    x, a = n_eff * p, 1 - confidence
    low = 0.0 if x <= 0 else float(stats.beta.ppf(a / 2, x, n_eff - x + 1))
    high = 1.0 if x >= n_eff else float(stats.beta.ppf(1 - a / 2, x + 1, n_eff - x))
    return low, high


def audit_estimate(is_threat: Sequence[bool] | np.ndarray, inclusion: Sequence[float] | np.ndarray, *,
                   n_cleared: int, detected: int | None = None, confidence: float = 0.95) -> AuditEstimate:
    """Horvitz-Thompson estimate of threats among AI-cleared mail from its random audits.

    One entry per audited item: whether the officer found a threat, and the probability `inclusion` (pi, > 0)
    with which that item was drawn for audit (its stratum's rate; each cleared item is drawn independently).
    missed = sum(y / pi) is unbiased; its variance estimate is sum((1 - pi) / pi^2 * y) (Poisson sampling).
    `detected` = threats officers confirmed among flagged items in the same window, for the per-threat share.
    """
    y = np.asarray(is_threat, dtype=bool).ravel()
    pi = np.asarray(inclusion, dtype=np.float64).ravel()
    if y.shape != pi.shape:
        raise MonitoringInputError(f"{y.size} audit outcomes but {pi.size} inclusion probabilities")
    if pi.size and not ((pi > 0) & (pi <= 1)).all():
        raise MonitoringInputError("inclusion probabilities must be in (0, 1]")
    if n_cleared < max(1, y.size):
        raise MonitoringInputError(f"n_cleared ({n_cleared}) must be >= 1 and >= the {y.size} audited items")
    total = float((y / pi).sum())
    var_total = float(((1 - pi) / pi**2 * y).sum())
    share, var = min(total / n_cleared, 1.0), var_total / n_cleared**2
    low, high = _korn_graubard(share, var, int(y.size), confidence)
    of_threats, of_interval = None, None
    if detected is not None and total + detected > 0:
        f = lambda t: t / (t + detected)  # noqa: E731  monotone in t: the interval maps through it
        of_threats, of_interval = f(total), (f(low * n_cleared), f(high * n_cleared))
    return AuditEstimate(n_cleared, int(y.size), int(y.sum()), total, share, var, low, high, confidence,
                         of_threats, of_interval)


def audit_inclusion(cleared: Mapping[str, int], expected_rate: Mapping[str, float], *, budget: float,
                    floor: float) -> AuditPlan:
    """Audit probability per stratum minimising the Horvitz-Thompson variance for `budget` expected audits.

    Stratum h has N_h cleared items expected in the period and an anticipated threat rate p_h among them (e.g.
    the mean calibrated score of its cleared items). For 0/1 outcomes Var = sum_h N_h p_h (1/pi_h - 1), so
    minimising it subject to sum_h N_h pi_h = budget gives pi_h proportional to sqrt(p_h) (Neyman-type);
    every pi_h is then kept in [floor, 1] (floor > 0: every cleared item can be audited, which is what
    makes the estimate unbiased) and the budget left over is shared again among the rest.
    """
    names = sorted(cleared)
    if set(names) != set(expected_rate):
        raise MonitoringInputError("cleared counts and expected rates must name the same strata")
    n = np.array([cleared[h] for h in names], dtype=np.float64)
    p = np.array([expected_rate[h] for h in names], dtype=np.float64)
    if (n < 0).any() or ((p < 0) | (p > 1)).any() or not 0 < floor <= 1:
        raise MonitoringInputError("need counts >= 0, rates in [0, 1] and floor in (0, 1]")
    if budget < floor * n.sum():
        raise MonitoringInputError(f"budget {budget} is below the floor's {floor * n.sum():g} audits")
    pi = np.full(n.size, np.nan)
    for _ in range(n.size + 1):  # each pass fixes at least one stratum at a bound, or finishes
        free = np.isnan(pi)
        left = budget - (n[~free] * pi[~free]).sum()
        weight = (n[free] * np.sqrt(p[free])).sum()
        trial = (left * np.sqrt(p[free]) / weight if weight > 0
                 else np.full(free.sum(), left / max(n[free].sum(), 1.0)))  # no risk anywhere: spread evenly
        idx = np.nonzero(free)[0]
        # strata above 1 first (capping them frees budget for the rest), then those under the floor
        over = trial > 1.0
        under = trial < floor
        if over.any():
            pi[idx[over]] = 1.0
        elif under.any():
            pi[idx[under]] = floor
        else:
            pi[free] = trial
            break
    pi = np.where(np.isnan(pi), floor, pi)
    return AuditPlan({h: float(v) for h, v in zip(names, pi, strict=True)}, float((n * pi).sum()), float(budget))
