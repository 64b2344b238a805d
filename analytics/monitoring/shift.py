"""Input drift told apart by cause: per-scanner image-statistic effect sizes and the scanner-or-content rule.

Image statistics are those of xscreen.records.ImageStats (xray.formats.image_stats), one value per scan.
Two kinds: *scanner* statistics describe the detector (noise, gain as mean attenuation, dynamic range) and
*content* statistics describe what is in the parcels (organic / inorganic / metal pixel fractions, clutter).
Each is compared with the same scanner's reference window by effect sizes, because with hundreds of scans
per window a KS p-value calls every harmless wobble significant:
- standardised mean difference d = (mean_cur - mean_ref) / sqrt((var_ref + var_cur) / 2) (Cohen's d);
- Wasserstein-1 distance in units of the reference standard deviation;
- KS D (largest gap between the two empirical CDFs), with its p-value and a Benjamini-Hochberg q-value.
A statistic *moved* when |d| >= the effect threshold and q < fdr: big enough to matter and not a fluke.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

from analytics.monitoring.errors import MonitoringInputError

SCANNER_STATS = ("mean_attenuation", "noise_level", "dynamic_range")
CONTENT_STATS = ("organic_fraction", "inorganic_fraction", "metal_fraction", "clutter")
# Statistics no change of mail moves (bench.monitor_stats: |d| <= 0.17 for new goods, new concealment and the
# seasonal mix), so a lone scanner on which one moved is a scanner problem whatever its content statistics do.
DETECTOR_STATS = ("noise_level",)


@dataclass(frozen=True)
class StatShift:
    """One image statistic of one scanner, current window against reference. `wasserstein` is in reference SDs."""

    name: str
    kind: str  # "scanner" or "content"
    n_reference: int
    n_current: int
    smd: float
    wasserstein: float
    ks_statistic: float
    ks_p_value: float
    q_value: float
    moved: bool


@dataclass(frozen=True)
class ScannerShift:
    """All statistics of one scanner. `scanner_effect` / `content_effect`: largest |d| of each kind (0 if none)."""

    scanner_id: str
    stats: tuple[StatShift, ...]
    scanner_effect: float
    content_effect: float

    @property
    def moved(self) -> bool:
        return any(s.moved for s in self.stats)

    @property
    def moved_stats(self) -> list[str]:
        return [s.name for s in self.stats if s.moved]


@dataclass(frozen=True)
class DriftCause:
    """Which scanners drifted as scanners (call maintenance) and whether content drifted (retrain), and why."""

    scanner_drift: tuple[str, ...]
    content_drift: bool
    content_scanners: tuple[str, ...]
    stable: tuple[str, ...]
    message: str
    fleet_scanners: tuple[str, ...] = ()  # the scanners that moved together (the fleet rule): retrain, not repair


def _column(values: Sequence[float] | np.ndarray, what: str) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64).ravel()
    if arr.size < 2:
        raise MonitoringInputError(f"{what} needs at least 2 values, got {arr.size}")
    if not np.isfinite(arr).all():
        raise MonitoringInputError(f"{what} contains NaN or infinite values")
    return arr


def standardised_mean_difference(reference: Sequence[float] | np.ndarray, current: Sequence[float] | np.ndarray
                                 ) -> float:
    """Cohen's d: (mean_cur - mean_ref) / sqrt((var_ref + var_cur) / 2), sample variances (ddof 1).

    Two constant windows give 0 when equal and +-inf when not (any move of a constant is infinitely many SDs).
    """
    r, c = _column(reference, "reference"), _column(current, "current")
    diff = float(c.mean() - r.mean())
    pooled = float(np.sqrt((r.var(ddof=1) + c.var(ddof=1)) / 2))
    if pooled == 0.0:
        return 0.0 if diff == 0.0 else float(np.copysign(np.inf, diff))
    return diff / pooled


def _kind(name: str, kinds: Mapping[str, str]) -> str:
    if name not in kinds:
        raise MonitoringInputError(f"unknown image statistic {name!r}: say whether it is 'scanner' or 'content'")
    return kinds[name]


def scanner_shift(reference: Mapping[str, Sequence[float] | np.ndarray],
                  current: Mapping[str, Sequence[float] | np.ndarray], *, scanner_id: str,
                  effect_threshold: float = 0.5, fdr: float = 0.01,
                  kinds: Mapping[str, str] | None = None) -> ScannerShift:
    """Effect sizes of every statistic present in both windows of one scanner (statistic name -> per-scan values).

    `kinds` maps a statistic to "scanner" or "content" (default: SCANNER_STATS and CONTENT_STATS). KS p-values
    are adjusted together with Benjamini-Hochberg (scipy.stats.false_discovery_control).
    """
    kinds = kinds or {**dict.fromkeys(SCANNER_STATS, "scanner"), **dict.fromkeys(CONTENT_STATS, "content")}
    names = sorted(set(reference) & set(current))
    if not names:
        raise MonitoringInputError(f"{scanner_id}: no image statistic is present in both windows")
    rows = []
    for name in names:
        r, c = _column(reference[name], f"{name} reference"), _column(current[name], f"{name} current")
        sd = float(r.std(ddof=1))
        ks = stats.ks_2samp(r, c)
        w = float(stats.wasserstein_distance(r, c))
        rows.append((name, _kind(name, kinds), r.size, c.size, standardised_mean_difference(r, c),
                     w / sd if sd > 0 else w, float(ks.statistic), float(ks.pvalue)))
    q = stats.false_discovery_control([row[-1] for row in rows])
    shifts = tuple(StatShift(*row, float(qv), bool(abs(row[4]) >= effect_threshold and qv < fdr))
                   for row, qv in zip(rows, q, strict=True))
    return ScannerShift(scanner_id, shifts, _largest(shifts, "scanner"), _largest(shifts, "content"))


def _largest(shifts: Sequence[StatShift], kind: str) -> float:
    return max((abs(s.smd) for s in shifts if s.kind == kind), default=0.0)


def drift_cause(shifts: Sequence[ScannerShift], *, embedding_moved: Mapping[str, bool] | None = None,
                fleet_share: float = 0.5, dominance: float = 2.0,
                detector_stats: Sequence[str] = DETECTOR_STATS) -> DriftCause:
    """Tell scanner drift from content drift across the fleet.

    A scanner *moved* when one of its image statistics moved or (if given) its embeddings did. Content changes
    reach every scanner, a failing detector only its own, and a change of mail moves the same thing the same way
    everywhere: when at least two scanners and at least `fleet_share` of them moved *together* (the same content
    statistic in the same direction, or their embeddings), the cause is content across the fleet. Scanners that
    moved apart (one aged, another with a chance wobble of a different statistic) are not a fleet: a 400-scan
    stream of a stable held-out scanner beside an ageing one once read as fleet content drift
    (tests/test_monitor_e2e.py). The scanners not in the fleet group are judged on their own:
    scanner drift when one of its `detector_stats` moved (a statistic the mail cannot move: detector noise), or
    when its largest scanner-statistic effect is at least `dominance` times its largest content effect (detector
    physics moved, the material mix did not); else content drift local to that scanner. The first part is needed
    because a gain change moves the material fractions too: scanner ageing on the 3D-solids renderer moved noise
    by d = +1.1 and the organic fraction by +1.1 (tests/test_monitor_e2e.py), where dominance alone says content.
    """
    if not shifts:
        raise MonitoringInputError("no scanner to judge")
    emb = embedding_moved or {}
    moved = [s for s in shifts if s.moved or emb.get(s.scanner_id, False)]
    moved_ids = {s.scanner_id for s in moved}
    stable = tuple(s.scanner_id for s in shifts if s.scanner_id not in moved_ids)
    fleet = _moved_together(moved, emb)
    fleet = fleet if len(fleet) >= 2 and len(fleet) >= fleet_share * len(shifts) else ()
    rest = [s for s in moved if s.scanner_id not in fleet]
    scanner = tuple(s.scanner_id for s in rest if set(s.moved_stats) & set(detector_stats)
                    or (s.scanner_effect >= dominance * s.content_effect and s.scanner_effect > 0))
    local = tuple(s.scanner_id for s in rest if s.scanner_id not in scanner)
    content = tuple(s.scanner_id for s in moved if s.scanner_id in fleet or s.scanner_id in local)
    message = "; ".join(m for m in (
        f"content drift on {len(fleet)} of {len(shifts)} scanners ({', '.join(fleet)}): the mail changed; "
        "consider retraining" if fleet else "", _message(rest, scanner, local) if rest or not fleet else "") if m)
    return DriftCause(scanner, bool(content), content, stable, message, fleet)


def _moved_together(moved: Sequence[ScannerShift], embedding_moved: Mapping[str, bool]) -> tuple[str, ...]:
    """The largest group of moved scanners sharing one sign of change: a content statistic moved in the same
    direction, or the embeddings moved (ties: the first such sign in name order). Scanner order is kept."""
    signs: dict[tuple[str, int], list[str]] = {}
    for s in moved:
        marks = {(st.name, int(np.sign(st.smd))) for st in s.stats if st.moved and st.kind == "content"}
        if embedding_moved.get(s.scanner_id, False):
            marks.add(("embeddings", 0))
        for mark in marks:
            signs.setdefault(mark, []).append(s.scanner_id)
    if not signs:
        return ()
    best = max(sorted(signs), key=lambda mark: len(signs[mark]))
    return tuple(signs[best])


def _message(moved: Sequence[ScannerShift], scanner: Sequence[str], content: Sequence[str]) -> str:
    if not moved:
        return "no input drift: image statistics and embeddings are stable on every scanner"
    parts = []
    for s in moved:
        what = ", ".join(f"{st.name} d={st.smd:+.1f}" for st in s.stats if st.moved) or "embeddings"
        if s.scanner_id in scanner:
            parts.append(f"scanner drift on {s.scanner_id} ({what}): call maintenance for {s.scanner_id}")
        else:
            parts.append(f"content drift on {s.scanner_id} only ({what}): check what this scanner receives")
    return "; ".join(parts)


def max_abs_smd(reference: np.ndarray, current: np.ndarray) -> float:
    """Largest |d| over the columns of two (items, statistics) arrays: the image-statistic drift score that
    `thresholds.calibrate_window_threshold` calibrates."""
    r, c = np.atleast_2d(np.asarray(reference, np.float64)), np.atleast_2d(np.asarray(current, np.float64))
    if r.shape[1] != c.shape[1]:
        raise MonitoringInputError(f"reference has {r.shape[1]} statistics, current {c.shape[1]}")
    return max(abs(standardised_mean_difference(r[:, j], c[:, j])) for j in range(r.shape[1]))
