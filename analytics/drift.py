"""Drift statistics: population stability index, two-sample KS, flag rate and uncertain share (one pure function each).

Arrays in, a small frozen result out, so a notebook and the Drift page compute the very same numbers.
Scores are probabilities in [0, 1]; the reference window is what "normal" looked like.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
from scipy import stats

from analytics.accuracy import RateEstimate, rate_estimate
from xscreen.errors import XscreenError

# An empty bin would make ln(cur/ref) infinite; evidently and most PSI write-ups clip to a small share.
PSI_EPSILON = 1e-4
DEFAULT_BINS = 10


class DriftInputError(XscreenError):
    """A drift statistic was given unusable data (empty window, values outside [0, 1], ...)."""

    title = "Cannot compute drift"


@dataclass(frozen=True)
class PsiResult:
    psi: float
    edges: tuple[float, ...]
    reference_share: tuple[float, ...]
    current_share: tuple[float, ...]
    drifted: bool


@dataclass(frozen=True)
class KsResult:
    statistic: float
    p_value: float
    drifted: bool


@dataclass(frozen=True)
class ClassDrift:
    """One class's score drift. `ks_q_value` is the Benjamini-Hochberg adjusted KS p-value (None when the
    report was asked for no false-discovery control)."""

    class_name: str
    psi: float
    ks_statistic: float
    ks_p_value: float
    n_reference: int
    n_current: int
    drifted: bool
    ks_q_value: float | None = None


@dataclass(frozen=True)
class DriftReport:
    rows: tuple[ClassDrift, ...]
    psi_alert: float

    @property
    def drifted_classes(self) -> list[str]:
        return [r.class_name for r in self.rows if r.drifted]


@dataclass(frozen=True)
class FlagRate:
    n: int
    flagged: int
    rate: float


def _as_scores(values: Sequence[float] | np.ndarray, what: str) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64).ravel()
    if arr.size == 0:
        raise DriftInputError(f"{what} window is empty")
    if np.isnan(arr).any():
        raise DriftInputError(f"{what} window contains NaN")
    return arr


def reference_quantile_edges(reference: Sequence[float] | np.ndarray, bins: int = DEFAULT_BINS) -> tuple[float, ...]:
    """Bin edges at the reference's 0, 1/bins, ..., 1 quantiles, repeated edges (ties) merged.

    With these edges every bin holds about 1/bins of the reference, which suits calibrated scores that pile up
    near 0 (equal-width bins would put nearly all benign mail in the first bin and see no drift inside it).
    """
    if bins < 1:
        raise DriftInputError(f"bins must be >= 1, got {bins}")
    ref = _as_scores(reference, "reference")
    return tuple(float(e) for e in np.unique(np.quantile(ref, np.linspace(0.0, 1.0, bins + 1))))


def psi(
    reference: Sequence[float] | np.ndarray,
    current: Sequence[float] | np.ndarray,
    bins: int = DEFAULT_BINS,
    threshold: float = 0.2,
    lo: float = 0.0,
    hi: float = 1.0,
    edges: Sequence[float] | None = None,
) -> PsiResult:
    """Population stability index sum((c - r) * ln(c / r)) over bins; shares of empty bins clipped to PSI_EPSILON.

    Bins are `bins` equal-width bins on [lo, hi], or the given ascending `edges` (e.g. reference_quantile_edges).
    Either way values below the first edge or above the last fall in the end bins; bin j holds
    edges[j] <= x < edges[j + 1] (the last bin also holds its upper edge).
    """
    if bins < 1:
        raise DriftInputError(f"bins must be >= 1, got {bins}")
    ref, cur = _as_scores(reference, "reference"), _as_scores(current, "current")
    cuts = np.linspace(lo, hi, bins + 1) if edges is None else np.asarray(edges, dtype=np.float64)
    if cuts.size < 2 or (np.diff(cuts) <= 0).any():
        raise DriftInputError(f"edges must be at least 2 strictly ascending values, got {cuts.tolist()}")
    n_bins = cuts.size - 1
    # searchsorted on the inner edges: bin index in 0..n_bins-1 for any value, outliers in the end bins
    ref_share = np.bincount(np.searchsorted(cuts[1:-1], ref, side="right"), minlength=n_bins) / ref.size
    cur_share = np.bincount(np.searchsorted(cuts[1:-1], cur, side="right"), minlength=n_bins) / cur.size
    r = np.clip(ref_share, PSI_EPSILON, None)
    c = np.clip(cur_share, PSI_EPSILON, None)
    value = float(np.sum((c - r) * np.log(c / r)))
    return PsiResult(
        psi=value,
        edges=tuple(float(e) for e in cuts),
        reference_share=tuple(float(x) for x in ref_share),
        current_share=tuple(float(x) for x in cur_share),
        drifted=value > threshold,
    )


def ks_test(
    reference: Sequence[float] | np.ndarray, current: Sequence[float] | np.ndarray, alpha: float = 0.01
) -> KsResult:
    """Two-sample Kolmogorov-Smirnov: largest gap between the empirical CDFs, and its p-value."""
    res = stats.ks_2samp(_as_scores(reference, "reference"), _as_scores(current, "current"))
    return KsResult(statistic=float(res.statistic), p_value=float(res.pvalue), drifted=float(res.pvalue) < alpha)


def flag_rate(verdicts: Sequence[str] | np.ndarray) -> FlagRate:
    """Share of verdicts sent to an officer (`inspect` or `uncertain`). An empty window has rate 0."""
    arr = np.asarray(verdicts, dtype=object).ravel()
    unknown = set(arr.tolist()) - {"inspect", "clear", "uncertain"}
    if unknown:
        raise DriftInputError(f"unknown verdict values: {sorted(unknown)}")
    flagged = int(np.isin(arr, ["inspect", "uncertain"]).sum())
    return FlagRate(n=int(arr.size), flagged=flagged, rate=flagged / arr.size if arr.size else 0.0)


def class_drift_report(
    reference: Mapping[str, Sequence[float] | np.ndarray],
    current: Mapping[str, Sequence[float] | np.ndarray],
    psi_alert: float = 0.2,
    bins: int = DEFAULT_BINS,
    binning: Literal["equal", "quantile"] = "equal",
    fdr: float | None = None,
) -> DriftReport:
    """PSI and KS of each class's score distribution, current window against the reference window.

    Classes missing from either window, or empty in one, are skipped (nothing to compare). `binning`
    "quantile" puts PSI bins at the reference's quantiles. A class is `drifted` when its PSI exceeds
    `psi_alert` (an effect size) and, when `fdr` is given, also its KS p-value survives Benjamini-Hochberg
    control at that false-discovery rate across the classes (so a small window's fluke is not a drift).
    """
    names = [n for n in sorted(set(reference) & set(current))
             if np.asarray(reference[n]).size and np.asarray(current[n]).size]
    psis, kss = [], []
    for name in names:
        ref = np.asarray(reference[name], dtype=np.float64)
        cur = np.asarray(current[name], dtype=np.float64)
        edges = reference_quantile_edges(ref, bins) if binning == "quantile" else None
        if edges is not None and len(edges) < 2:
            edges = None  # a constant reference has no quantile bins: fall back to equal width
        psis.append(psi(ref, cur, bins=bins, threshold=psi_alert, edges=edges))
        kss.append(ks_test(ref, cur))
    qs: list[float | None] = [None] * len(names)
    if fdr is not None and names:
        qs = [float(q) for q in stats.false_discovery_control([k.p_value for k in kss])]
    rows = tuple(
        ClassDrift(name, p.psi, k.statistic, k.p_value, int(np.asarray(reference[name]).size),
                   int(np.asarray(current[name]).size), p.drifted and (q is None or q < (fdr or 0.0)), q)
        for name, p, k, q in zip(names, psis, kss, qs, strict=True))
    return DriftReport(rows=rows, psi_alert=psi_alert)


def uncertain_share(verdicts: Sequence[str] | np.ndarray, confidence: float = 0.95) -> RateEstimate:
    """Share of verdicts that are `uncertain` (the band officers resolve), with a Wilson interval.

    Compare with the certificate's `expected_uncertain_share`; a rise means scores crowd between the clear and
    inspect thresholds, which costs officer time before it costs accuracy.
    """
    arr = np.asarray(verdicts, dtype=object).ravel()
    unknown = set(arr.tolist()) - {"inspect", "clear", "uncertain"}
    if unknown:
        raise DriftInputError(f"unknown verdict values: {sorted(unknown)}")
    return rate_estimate(int((arr == "uncertain").sum()), int(arr.size), confidence)


def volume_series(counts: pd.DataFrame, scanner_id: str | None = None, model_version: str | None = None) -> pd.DataFrame:
    """Scans and flag rate per bucket from the `verdict_counts` query, summed over the selected scanner/model.

    Returns columns bucket, n, flagged, flag_rate (flagged = inspect + uncertain), buckets ascending.
    """
    df = counts
    if scanner_id is not None:
        df = df[df["scanner_id"] == scanner_id]
    if model_version is not None:
        df = df[df["model_version"] == model_version]
    out = (df.assign(flagged=df["n_inspect"] + df["n_uncertain"]).groupby("bucket", as_index=False)[["n", "flagged"]]
           .sum().sort_values("bucket", ignore_index=True))
    out["flag_rate"] = out["flagged"] / out["n"].where(out["n"] > 0)
    return out


def scores_by_class(samples: pd.DataFrame) -> dict[str, np.ndarray]:
    """Long-form (class_name, score) rows, e.g. from `class_score_sample`, as one score array per class."""
    return {str(name): group["score"].to_numpy(dtype=np.float64) for name, group in samples.groupby("class_name")}


def total_flag_rate(series: pd.DataFrame) -> FlagRate:
    """Flag rate over a whole window from `volume_series` rows (sums, not a mean of bucket rates)."""
    n, flagged = int(series["n"].sum()), int(series["flagged"].sum())
    return FlagRate(n=n, flagged=flagged, rate=flagged / n if n else 0.0)
