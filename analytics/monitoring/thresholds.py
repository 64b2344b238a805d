"""Thresholds of windowed drift statistics calibrated for a stated run length between false alarms.

A windowed statistic (max |d| of image statistics, MMD^2, domain AUC, PSI) is checked once per `window` new
scans. If in-distribution windows exceed the threshold with probability f per check, false alarms come every
window / f scans on average. So for a target of `arl_items` scans between false alarms the threshold is the
(1 - window / arl_items) quantile of the statistic over in-distribution windows.

Those windows are bootstrapped from reference data: the reference is split at random into a fixed half (what
the monitor compares with) and a pool half; each bootstrap window is `window` rows drawn with replacement
from the pool and scored against the fixed half. Splitting matters: windows drawn from the very rows they are
compared with look more alike than new scans would, and the threshold would come out too low.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from analytics.monitoring.errors import MonitoringInputError

# Below this many expected exceedances among the bootstrap windows the quantile is mostly noise.
MIN_EXCEEDANCES = 5


@dataclass(frozen=True)
class ThresholdCalibration:
    """The calibrated threshold and how it was obtained; `null_median` shows the statistic's in-distribution level."""

    threshold: float
    quantile: float
    window: int
    arl_items: float
    n_boot: int
    null_median: float


def calibrate_window_threshold(reference: np.ndarray, statistic: Callable[[np.ndarray, np.ndarray], float], *,
                               window: int, arl_items: float, n_boot: int,
                               rng: np.random.Generator) -> ThresholdCalibration:
    """Threshold for `statistic(fixed_reference_half, window_rows)` with >= `arl_items` scans between false alarms.

    `reference` has one row per scan (a 1-D array is one column). Refuses an `n_boot` too small to resolve
    the quantile (fewer than 5 expected exceedances) and a reference too small to split.
    """
    ref = np.asarray(reference, dtype=np.float64)
    ref = ref[:, None] if ref.ndim == 1 else ref
    if ref.ndim != 2 or ref.shape[0] < 4:
        raise MonitoringInputError(f"reference must have at least 4 rows, got shape {ref.shape}")
    if window < 2 or arl_items <= window:
        raise MonitoringInputError(f"need window >= 2 and arl_items > window, got {window} and {arl_items}")
    tail = window / arl_items
    if n_boot * tail < MIN_EXCEEDANCES:
        raise MonitoringInputError(f"{n_boot} bootstrap windows resolve no {1 - tail:.4f} quantile: use at least "
                                   f"{int(np.ceil(MIN_EXCEEDANCES / tail))}")
    order = rng.permutation(ref.shape[0])
    fixed, pool = ref[order[: ref.shape[0] // 2]], ref[order[ref.shape[0] // 2:]]
    null = np.array([statistic(fixed, pool[rng.integers(0, pool.shape[0], size=window)]) for _ in range(n_boot)])
    return ThresholdCalibration(float(np.quantile(null, 1 - tail)), 1 - tail, window, float(arl_items), n_boot,
                                float(np.median(null)))
