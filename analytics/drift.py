"""Drift statistics: population stability index, two-sample KS and flag rate (one pure function each).

Arrays in, a small frozen result out, so a notebook and the Drift page compute the very same numbers.
Scores are probabilities in [0, 1]; the reference window is what "normal" looked like.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

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
    class_name: str
    psi: float
    ks_statistic: float
    ks_p_value: float
    n_reference: int
    n_current: int
    drifted: bool


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


def psi(
    reference: Sequence[float] | np.ndarray,
    current: Sequence[float] | np.ndarray,
    bins: int = DEFAULT_BINS,
    threshold: float = 0.2,
    lo: float = 0.0,
    hi: float = 1.0,
) -> PsiResult:
    """Population stability index sum((c - r) * ln(c / r)) over `bins` equal-width bins on [lo, hi].

    Shares of empty bins are clipped to PSI_EPSILON. Values outside [lo, hi] fall in the end bins.
    """
    if bins < 1:
        raise DriftInputError(f"bins must be >= 1, got {bins}")
    ref = np.clip(_as_scores(reference, "reference"), lo, hi)
    cur = np.clip(_as_scores(current, "current"), lo, hi)
    edges = np.linspace(lo, hi, bins + 1)
    ref_share = np.histogram(ref, bins=edges)[0] / ref.size
    cur_share = np.histogram(cur, bins=edges)[0] / cur.size
    r = np.clip(ref_share, PSI_EPSILON, None)
    c = np.clip(cur_share, PSI_EPSILON, None)
    value = float(np.sum((c - r) * np.log(c / r)))
    return PsiResult(
        psi=value,
        edges=tuple(float(e) for e in edges),
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
) -> DriftReport:
    """PSI and KS of each class's score distribution, current window against the reference window.

    Classes missing from either window, or empty in one, are skipped (nothing to compare).
    A class is `drifted` when its PSI exceeds `psi_alert`.
    """
    rows = []
    for name in sorted(set(reference) & set(current)):
        ref = np.asarray(reference[name], dtype=np.float64)
        cur = np.asarray(current[name], dtype=np.float64)
        if ref.size == 0 or cur.size == 0:
            continue
        p = psi(ref, cur, bins=bins, threshold=psi_alert)
        k = ks_test(ref, cur)
        rows.append(ClassDrift(name, p.psi, k.statistic, k.p_value, int(ref.size), int(cur.size), p.drifted))
    return DriftReport(rows=tuple(rows), psi_alert=psi_alert)


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
