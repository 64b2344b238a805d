"""Calibration and certified operating points: temperature scaling, split-conformal thresholds, the certificate.

Pure numpy/scipy: arrays in, small results out. Scores are probabilities in [0, 1]; labels are 0/1 arrays.

The guarantee (split conformal, order-statistic form). Let s_(1) <= ... <= s_(n) be the calibrated any-threat
scores of the n threat items of the calibration split and clear an item when its score < t_lo = s_(k). For a new
threat item exchangeable with them, the miss rate F(s_(k)) is Beta(k, n + 1 - k) distributed, so
P(miss rate > alpha) = P(Binomial(n, alpha) <= k - 1). We take the largest k with that probability <= delta.
If even k = 1 fails ((1 - alpha)^n > delta) there are too few threat items: t_lo = 0 and nothing is cleared by
the model (every item goes to an officer) until more labelled threats arrive; `n_threat_needed` says how many.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import optimize, stats

from xscreen.errors import ModelError

EPS = 1e-7
T_MIN, T_MAX = 0.05, 20.0
HI_DEFAULT = 0.5  # above this calibrated probability a threat is more likely than not: inspect


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(x, -60, 60)))


def binary_nll(logits: np.ndarray, labels: np.ndarray, temperature: float) -> float:
    """Mean binary cross-entropy of sigmoid(logits / T) against 0/1 labels."""
    p = np.clip(sigmoid(np.asarray(logits, dtype=np.float64) / temperature), EPS, 1 - EPS)
    y = np.asarray(labels, dtype=np.float64)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """Temperature T in [0.05, 20] minimising NLL; 1.0 when the labels are all one value (nothing to learn)."""
    logits, labels = np.asarray(logits, dtype=np.float64), np.asarray(labels, dtype=np.float64)
    if logits.shape != labels.shape or logits.ndim != 1:
        raise ModelError(f"fit_temperature: logits {logits.shape} and labels {labels.shape} must be equal 1-D shapes")
    if len(labels) == 0 or labels.min() == labels.max():
        return 1.0
    # Optimise log T: the NLL is smooth and unimodal in it, and the bound keeps T positive.
    res = optimize.minimize_scalar(
        lambda log_t: binary_nll(logits, labels, math.exp(log_t)),
        bounds=(math.log(T_MIN), math.log(T_MAX)),
        method="bounded",
    )
    return float(math.exp(res.x))


def expected_calibration_error(probs: np.ndarray, labels: np.ndarray, n_bins: int = 10) -> float:
    """ECE with fixed equal-width bins on [0, 1]: sum over bins of (bin share) * |mean label - mean prob|."""
    p, y = np.asarray(probs, dtype=np.float64), np.asarray(labels, dtype=np.float64)
    if len(p) == 0:
        raise ModelError("expected_calibration_error: no items")
    bins = np.minimum((p * n_bins).astype(int), n_bins - 1)  # p = 1.0 belongs to the last bin
    ece = 0.0
    for b in range(n_bins):
        in_bin = bins == b
        if in_bin.any():
            ece += in_bin.mean() * abs(y[in_bin].mean() - p[in_bin].mean())
    return float(ece)


def conformal_k(n: int, alpha: float, delta: float) -> int:
    """Largest k in 1..n with P(Binomial(n, alpha) <= k - 1) <= delta, or 0 when no k qualifies."""
    if n <= 0:
        return 0
    ks = np.arange(1, n + 1)
    ok = stats.binom.cdf(ks - 1, n, alpha) <= delta
    return int(ks[ok].max()) if ok.any() else 0


def n_threat_needed(alpha: float, delta: float) -> int:
    """Smallest number of calibration threat items for which any clear threshold is certifiable: (1-a)^n <= d."""
    if not (0 < alpha < 1 and 0 < delta < 1):
        raise ModelError(f"n_threat_needed: alpha {alpha} and delta {delta} must be in (0, 1)")
    n = math.ceil(math.log(delta) / math.log1p(-alpha))
    # Guard against floating-point rounding on exact boundaries.
    while (1 - alpha) ** n > delta:
        n += 1
    while n > 1 and (1 - alpha) ** (n - 1) <= delta:
        n -= 1
    return n


def clear_threshold(threat_scores: np.ndarray, alpha: float, delta: float) -> tuple[float, int]:
    """t_lo = k-th smallest threat score (see module docstring) and k; (0.0, 0) when not certifiable."""
    s = np.sort(np.asarray(threat_scores, dtype=np.float64))
    k = conformal_k(len(s), alpha, delta)
    return (float(s[k - 1]), k) if k > 0 else (0.0, 0)


@dataclass(frozen=True)
class OperatingPoint:
    """Two thresholds per output: clear below `clear`, inspect at or above `inspect`, uncertain between."""

    thresholds: dict[str, dict[str, float]]  # {"any_threat": {"clear": t_lo, "inspect": t_hi}, class: {...}}


def verdicts(any_scores: np.ndarray, class_scores: np.ndarray, classes: list[str], point: OperatingPoint) -> np.ndarray:
    """Verdict per item: inspect if any output reaches its inspect threshold; else clear if any_threat < its clear
    threshold; else uncertain. Only the any-threat score can clear an item, so the certificate holds."""
    th = point.thresholds
    any_scores = np.asarray(any_scores, dtype=np.float64)
    inspect = any_scores >= th["any_threat"]["inspect"]
    for j, c in enumerate(classes):
        inspect |= np.asarray(class_scores)[:, j] >= th[c]["inspect"]
    clear = ~inspect & (any_scores < th["any_threat"]["clear"])
    out = np.full(len(any_scores), "uncertain", dtype=object)
    out[inspect] = "inspect"
    out[clear] = "clear"
    return out


def _capacity_inspect(any_scores: np.ndarray, class_inspect: np.ndarray, t_lo: float, capacity: float) -> float:
    """Largest t_hi in [t_lo, HI_DEFAULT] whose uncertain share (t_lo <= any < t_hi, no class inspect) <= capacity.

    Lowering t_hi moves items from uncertain to inspect: capacity is always met (at t_hi = t_lo the band is empty),
    at the price of more physical inspections. The miss guarantee never depends on t_hi.
    """
    hi = max(t_lo, HI_DEFAULT)
    cand = np.unique(np.concatenate([[t_lo, hi], any_scores[(any_scores > t_lo) & (any_scores < hi)]]))[::-1]
    for t in cand:  # descending: the widest band that fits
        share = np.mean((any_scores >= t_lo) & (any_scores < t) & ~class_inspect) if len(any_scores) else 0.0
        if share <= capacity:
            return float(t)
    return float(t_lo)


def operating_point(
    any_scores: np.ndarray,
    any_labels: np.ndarray,
    class_scores: np.ndarray,
    class_labels: np.ndarray,
    classes: list[str],
    *,
    alpha: float,
    delta: float,
    capacity: float,
) -> tuple[OperatingPoint, dict[str, int]]:
    """Certified thresholds from calibrated scores. class_labels is (N, K) with -1 where unknown.

    Returns the OperatingPoint and k (the order statistic used) per output.
    """
    any_scores, any_labels = np.asarray(any_scores, float), np.asarray(any_labels)
    thresholds: dict[str, dict[str, float]] = {}
    ks: dict[str, int] = {}
    for j, c in enumerate(classes):
        pos = np.asarray(class_labels)[:, j] == 1
        t_lo, k = clear_threshold(np.asarray(class_scores)[pos, j], alpha, delta)
        thresholds[c] = {"clear": t_lo, "inspect": max(t_lo, HI_DEFAULT)}
        ks[c] = k
    class_inspect = np.zeros(len(any_scores), dtype=bool)
    for j, c in enumerate(classes):
        class_inspect |= np.asarray(class_scores)[:, j] >= thresholds[c]["inspect"]
    t_lo, k = clear_threshold(any_scores[any_labels == 1], alpha, delta)
    t_hi = _capacity_inspect(any_scores, class_inspect, t_lo, capacity)
    thresholds["any_threat"] = {"clear": t_lo, "inspect": t_hi}
    ks["any_threat"] = k
    return OperatingPoint(thresholds), ks


def workload(verdict: np.ndarray, any_labels: np.ndarray) -> dict[str, float]:
    """Shares of a labelled set by verdict: inspect/uncertain/officer workload, PD (not cleared), FAR."""
    v, y = np.asarray(verdict), np.asarray(any_labels)
    threat, benign = y == 1, y == 0
    frac = lambda mask, sel: float(np.mean(mask[sel])) if sel.any() else float("nan")  # noqa: E731
    return {
        "inspect_share": float(np.mean(v == "inspect")),
        "uncertain_share": float(np.mean(v == "uncertain")),
        "workload": float(np.mean(v != "clear")),
        "pd": frac(v != "clear", threat),  # a threat is detected when an officer sees it
        "miss_rate": frac(v == "clear", threat),
        "far": frac(v == "inspect", benign),  # benign items sent to physical inspection
        "benign_routed": frac(v != "clear", benign),  # benign items an officer has to look at
    }


def certificate(
    point: OperatingPoint,
    ks: dict[str, int],
    verdict: np.ndarray,
    any_labels: np.ndarray,
    *,
    alpha: float,
    delta: float,
    capacity: float,
    manifest_sha256: str,
) -> dict[str, object]:
    """The operating point's certificate, stored with the model version (JSON-serialisable)."""
    y = np.asarray(any_labels)
    n_threat = int((y == 1).sum())
    tighter = {f"{a:g}": n_threat_needed(a, delta) for a in sorted({alpha, 0.05, 0.02, 0.01, 0.005}) if a <= alpha}
    return {
        "alpha": alpha,
        "delta": delta,
        "officer_capacity": capacity,
        "n_cal": int(len(y)),
        "n_cal_threat": n_threat,
        "calibration_manifest_sha256": manifest_sha256,
        "thresholds": point.thresholds,
        "order_statistic_k": ks,
        "certified": ks.get("any_threat", 0) > 0,
        "n_threat_needed": n_threat_needed(alpha, delta),
        "n_threat_needed_for_alpha": tighter,
        "more_threats_needed_for_alpha": {a: max(0, n - n_threat) for a, n in tighter.items()},
        **{f"expected_{k}": v for k, v in workload(verdict, y).items()},
    }
