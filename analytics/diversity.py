"""Diversity sampling over drifted regions of embedding space: which recent unlabelled scans to relabel so that new
clusters come first and the picks spread over them.

Two steps, both on the model's L2-normalised embeddings (rows = scans; Euclidean distance on unit vectors is
monotone in cosine distance, the similarity the store's `similar_items` uses):
1. **Drifted items** (a per-item k-nearest-neighbour two-sample test, after Schilling 1986): pool the recent and the
   reference window; a recent item whose `neighbours` nearest pooled neighbours are recent far more often than the
   recent share of the pool says (binomial tail below `alpha`) sits in a region denser now than in the reference:
   a new cluster, or an old one that grew. An isolated outlier has reference neighbours as often as recent ones and
   is not picked; neither is mail like the reference. The test compares shares, so it needs no distance scale
   and behaves alike in 8 or 512 dimensions.
2. **Diverse order** (k-center greedy, Sener & Savarese 2018, with the reference window as centres already
   covered): the next pick is the drifted item farthest from the reference and from every pick so far, its
   distance weighted by how drifted it is (its share of recent neighbours). The item of the region farthest from
   anything seen comes first; the next comes from another new region before a second from the same one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.stats import binom
from sklearn.neighbors import NearestNeighbors
from threadpoolctl import threadpool_limits

from xscreen.errors import XscreenError


class DiversityInputError(XscreenError):
    """The embeddings given to the diversity policy cannot be compared (shapes, dimensions, non-finite values)."""

    title = "Cannot sample for diversity"


@dataclass(frozen=True)
class DriftPicks:
    """The picks, in order: `index` positions in `recent`; `novelty` each pick's distance to its nearest
    reference item (unit vectors: 0..2); `recent_share` the share of its neighbours that are recent (0..1);
    `n_drifted` how many recent items the test called drifted (the picks are the first `k` of them)."""

    index: np.ndarray
    novelty: np.ndarray
    recent_share: np.ndarray
    n_drifted: int


def _unit(x: np.ndarray, name: str) -> np.ndarray:
    arr = np.asarray(x, dtype=np.float64)
    if arr.ndim != 2 or not np.isfinite(arr).all():
        raise DiversityInputError(f"{name} embeddings must be a finite 2-D array (scans x dimensions), "
                                  f"got shape {arr.shape}")
    return arr / np.maximum(np.linalg.norm(arr, axis=1, keepdims=True), 1e-12)


def drift_test(recent: np.ndarray, reference: np.ndarray, neighbours: int = 20,
               alpha: float = 0.01) -> tuple[np.ndarray, np.ndarray]:
    """Per recent item: (share of its `neighbours` nearest pooled neighbours that are recent, drifted = the
    binomial tail of that count under the recent share of the pool is below `alpha`). Unit-normalised rows."""
    n, m = len(recent), len(reference)
    k = min(neighbours, n + m - 1)
    pooled = np.vstack([recent, reference])
    # One thread: a day's windows are a few thousand rows (milliseconds), and this runs inside the dashboard's
    # script thread on hosts where serving and training keep every core busy; OpenMP workers spinning at a
    # barrier for a core they cannot get turn milliseconds into seconds there.
    with threadpool_limits(limits=1):
        idx = NearestNeighbors(n_neighbors=k + 1).fit(pooled).kneighbors(recent)[1]  # (n, k + 1), itself included
    others = np.array([row[row != i][:k] for i, row in enumerate(idx)])  # (n, k): drop the item itself
    hits = (others < n).sum(axis=1)
    p0 = (n - 1) / (n + m - 1)  # chance a neighbour is recent when both windows come from one distribution
    return hits / k, binom.sf(hits - 1, k, p0) < alpha


def drifted_diverse(recent: np.ndarray, reference: np.ndarray, k: int, *, neighbours: int = 20,
                    alpha: float = 0.01) -> DriftPicks:
    """Up to `k` recent items from drifted regions, new clusters first and spread over them (module docstring).

    `recent` (n, d) and `reference` (m, d): embeddings (normalised here). Fewer than `neighbours` reference items,
    or no recent ones: no picks (a drift needs something to drift from)."""
    rec, ref = _unit(recent, "recent"), _unit(reference, "reference")
    if rec.shape[1] != ref.shape[1] and len(rec) and len(ref):
        raise DiversityInputError(f"recent embeddings have {rec.shape[1]} dimensions but the reference "
                                  f"{ref.shape[1]}: compare embeddings of one model")
    empty = DriftPicks(np.array([], dtype=int), np.array([]), np.array([]), 0)
    if k <= 0 or len(rec) < 2 or len(ref) < neighbours:
        return empty
    share, drifted = drift_test(rec, ref, neighbours, alpha)
    cand = np.flatnonzero(drifted)
    if not len(cand):
        return empty
    with threadpool_limits(limits=1):  # as in drift_test
        novelty = NearestNeighbors(n_neighbors=1).fit(ref).kneighbors(rec[cand])[0][:, 0]
    cover = novelty.copy()  # distance to the nearest centre: reference items, then picks too
    picks: list[int] = []
    for _ in range(min(k, len(cand))):
        best = int(np.argmax(np.where(cover >= 0, cover * share[cand], -np.inf)))
        picks.append(best)
        cover = np.minimum(cover, np.linalg.norm(rec[cand] - rec[cand[best]], axis=1))
        cover[best] = -1.0  # taken
    chosen = np.asarray(picks, dtype=int)
    return DriftPicks(cand[chosen], novelty[chosen], share[cand][chosen], len(cand))
