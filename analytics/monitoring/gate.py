"""Statistical primitives of the promotion gate: paired tests of a candidate against the champion, officers'
agreement, and label-error suspects by confident learning.

Paired means the same items scored by both models, so item difficulty cancels and only the items on which
they disagree (discordant pairs) carry evidence.
"""

from __future__ import annotations

import itertools
import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
from scipy import stats
from sklearn.metrics import cohen_kappa_score

from analytics.accuracy import wilson_interval
from analytics.monitoring.errors import MonitoringInputError


@dataclass(frozen=True)
class McNemar:
    """Exact McNemar test. b = items the champion got right and the candidate wrong, c = the reverse."""

    b: int
    c: int
    p_value: float
    alternative: str


@dataclass(frozen=True)
class NonInferiority:
    """Paired detection rates on one class's threat items at the operating point, candidate minus champion.

    (low, high) is Newcombe's hybrid score interval for a paired difference (method 10); the candidate is
    non-inferior when low > -margin. Rates in [0, 1].
    """

    class_name: str
    n: int
    champion_rate: float
    candidate_rate: float
    difference: float
    low: float
    high: float
    margin: float
    confidence: float
    non_inferior: bool


@dataclass(frozen=True)
class PairAgreement:
    """Cohen's kappa of two officers on the items both labelled (NaN when it is undefined: one label only)."""

    officer_a: str
    officer_b: str
    n: int
    observed_agreement: float
    kappa: float


def _paired(a: Sequence[bool] | np.ndarray, b: Sequence[bool] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x, y = np.asarray(a, dtype=bool).ravel(), np.asarray(b, dtype=bool).ravel()
    if x.shape != y.shape or x.size == 0:
        raise MonitoringInputError(f"need two equal, non-empty outcome arrays, got {x.size} and {y.size}")
    return x, y


def mcnemar_exact(champion_correct: Sequence[bool] | np.ndarray, candidate_correct: Sequence[bool] | np.ndarray,
                  alternative: Literal["two-sided", "greater", "less"] = "two-sided") -> McNemar:
    """Binomial test of c out of b + c discordant items at 1/2 (scipy.stats.binomtest).

    "greater": the candidate is right more often than the champion on the items they disagree on.
    No discordant item: p = 1 (no evidence either way).
    """
    champ, cand = _paired(champion_correct, candidate_correct)
    b, c = int((champ & ~cand).sum()), int((~champ & cand).sum())
    p = 1.0 if b + c == 0 else float(stats.binomtest(c, b + c, 0.5, alternative=alternative).pvalue)
    return McNemar(b, c, p, alternative)


def detection_non_inferiority(champion_detected: Sequence[bool] | np.ndarray,
                              candidate_detected: Sequence[bool] | np.ndarray, *, margin: float,
                              confidence: float = 0.95, class_name: str = "any_threat") -> NonInferiority:
    """Is the candidate's detection rate on these threat items at most `margin` below the champion's?

    Newcombe (1998, Stat Med 17:2635) method 10: Wilson intervals (l1, u1) of the candidate's rate p1 and
    (l2, u2) of the champion's p2, joined with the phi correlation of the paired 2x2 table:
    low = (p1 - p2) - sqrt((p1 - l1)^2 - 2 phi (p1 - l1)(u2 - p2) + (u2 - p2)^2), high symmetric.
    Chosen over Tango's score interval because it is closed-form (no root finding), built on the Wilson
    interval already used for every rate here, and keeps its coverage near rates of 0.9-1 where detection
    lives; over a Wald interval because that one collapses when few threats are missed. One-sided level of the
    decision: (1 - confidence) / 2.
    """
    champ, cand = _paired(champion_detected, candidate_detected)
    if not 0 < margin < 1:
        raise MonitoringInputError(f"margin must be in (0, 1), got {margin}")
    n = champ.size
    a, b = int((cand & champ).sum()), int((cand & ~champ).sum())
    c, d = int((~cand & champ).sum()), int((~cand & ~champ).sum())
    p1, p2 = (a + b) / n, (a + c) / n
    w1, w2 = wilson_interval(a + b, n, confidence), wilson_interval(a + c, n, confidence)
    denom = (a + b) * (c + d) * (a + c) * (b + d)
    phi = (a * d - b * c) / math.sqrt(denom) if denom > 0 else 0.0
    diff = p1 - p2
    low = diff - math.sqrt(max((p1 - w1.low) ** 2 - 2 * phi * (p1 - w1.low) * (w2.high - p2) + (w2.high - p2) ** 2, 0))
    high = diff + math.sqrt(max((w1.high - p1) ** 2 - 2 * phi * (w1.high - p1) * (p2 - w2.low) + (p2 - w2.low) ** 2, 0))
    return NonInferiority(class_name, n, p2, p1, diff, max(low, -1.0), min(high, 1.0), margin, confidence,
                          low > -margin)


def officer_kappa(decisions: pd.DataFrame, item: str = "scan_id", officer: str = "officer",
                  label: str = "label") -> tuple[PairAgreement, ...]:
    """Cohen's kappa (sklearn.metrics.cohen_kappa_score) for every pair of officers over the items both labelled.

    `decisions` has one row per (item, officer) with the officer's label (its latest, if relabelled). Pairs
    with no shared item are left out.
    """
    missing = [col for col in (item, officer, label) if col not in decisions.columns]
    if missing:
        raise MonitoringInputError(f"columns not in the decisions frame: {missing}")
    wide = decisions.drop_duplicates([item, officer], keep="last").pivot(index=item, columns=officer, values=label)
    out = []
    for a, b in itertools.combinations(sorted(wide.columns), 2):
        both = wide[[a, b]].dropna()
        if both.empty:
            continue
        x, y = both[a].astype(str).to_numpy(), both[b].astype(str).to_numpy()
        with warnings.catch_warnings():  # one shared label value: sklearn warns and returns NaN; NaN is the answer
            warnings.simplefilter("ignore", RuntimeWarning)
            kappa = float(cohen_kappa_score(x, y))
        out.append(PairAgreement(str(a), str(b), len(both), float((x == y).mean()), kappa))
    return tuple(out)


def label_issue_suspects(labels: Sequence[int] | np.ndarray, pred_probs: np.ndarray) -> np.ndarray:
    """Indices of items whose label is probably wrong, most suspicious first (cleanlab, confident learning).

    `pred_probs` (items, classes) must be out-of-fold: each row from a model that did not train on that item
    (sklearn cross_val_predict), or every training label looks right. Wraps cleanlab.filter.find_label_issues
    (prune by noise rate, ranked by self-confidence); cleanlab's own errors become MonitoringInputError.
    """
    y = np.asarray(labels).ravel()
    probs = np.asarray(pred_probs, dtype=np.float64)
    if probs.ndim != 2 or probs.shape[0] != y.size:
        raise MonitoringInputError(f"pred_probs must be (items, classes) for {y.size} labels, got {probs.shape}")
    from cleanlab.filter import find_label_issues  # imported here: 2.5 s, needed only by the relabel queue

    try:
        # n_jobs=1: by default cleanlab forks a multiprocessing.Pool (one process per core) on Linux. This runs in
        # the dashboard's script thread, and forking a process with other threads running (Streamlit's, an
        # OpenMP pool that scikit-learn started) can leave the child waiting forever on a lock nobody will
        # release: the Relabelling page hung that way in CI, twice. A day's labelled items take milliseconds here.
        found = find_label_issues(y, probs, filter_by="prune_by_noise_rate",
                                  return_indices_ranked_by="self_confidence", n_jobs=1)
    except (ValueError, TypeError) as err:
        raise MonitoringInputError(f"cleanlab refused the labels: {err}") from err
    return np.asarray(found, dtype=np.int64)
