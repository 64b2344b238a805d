"""Embedding drift: kernel two-sample test (MMD), a domain classifier's AUC, and PCA reconstruction error.

Embeddings are the model's per-scan vectors stored with each verdict (rows = scans, columns = dimensions).
- `mmd_test`: subsample, reduce both windows with a PCA fitted on the pooled sample, and compare with the
  unbiased squared maximum mean discrepancy under an RBF kernel whose bandwidth is the median heuristic
  (sigma^2 = median pairwise squared distance of the pooled sample); p-value by permuting window labels.
- `domain_classifier_auc`: can a logistic regression tell current scans from reference scans? Cross-validated
  AUC: 0.5 = indistinguishable, 1 = fully separable. An effect size that does not grow with the sample size.
- `fit_reconstruction` / `reconstruction_errors`: squared distance of a scan to the reference's principal
  subspace; cheap per scan, so it runs online: the share of scans above the reference's q-quantile is a 0/1
  stream for `sequential.bernoulli_watch` with null rate 1 - q.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats
from sklearn.decomposition import PCA
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.metrics.pairwise import euclidean_distances
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from analytics.monitoring.errors import MonitoringInputError


@dataclass(frozen=True)
class MmdResult:
    """Unbiased MMD^2 (kernel units, 0 = same distribution), its permutation p-value, and the kernel used.

    `moved` = mmd2 >= threshold (the calibrated effect size) and p_value < alpha.
    """

    mmd2: float
    p_value: float
    sigma2: float
    n_reference: int
    n_current: int
    n_components: int | None
    n_permutations: int
    moved: bool


@dataclass(frozen=True)
class DomainAuc:
    """Cross-validated AUC of reference-vs-current classification, in [0, 1], and its one-sided p-value against
    0.5; `moved` = auc >= threshold and p_value < alpha."""

    auc: float
    n_reference: int
    n_current: int
    folds: int
    moved: bool
    p_value: float


@dataclass(frozen=True, eq=False)
class ReconstructionModel:
    """Reference mean (d,), principal axes (k, d) and the exceedance threshold: the `quantile` of held-out errors."""

    mean: np.ndarray
    components: np.ndarray
    threshold: float
    quantile: float


def _matrix(values: np.ndarray, what: str, min_rows: int = 2) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[0] < min_rows:
        raise MonitoringInputError(f"{what} must be a 2-D array (scans, dimensions) with >= {min_rows} rows, "
                                   f"got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise MonitoringInputError(f"{what} contains NaN or infinite values")
    return arr


def _pair(reference: np.ndarray, current: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    r, c = _matrix(reference, "reference embeddings"), _matrix(current, "current embeddings")
    if r.shape[1] != c.shape[1]:
        raise MonitoringInputError(f"reference embeddings have {r.shape[1]} dimensions, current {c.shape[1]}")
    return r, c


def _subsample(x: np.ndarray, limit: int, rng: np.random.Generator) -> np.ndarray:
    return x if x.shape[0] <= limit else x[rng.choice(x.shape[0], size=limit, replace=False)]


def _mmd2(k: np.ndarray, x_idx: np.ndarray, y_idx: np.ndarray) -> float:
    """Unbiased MMD^2 from the pooled kernel matrix: diagonal terms left out of the within-window means."""
    n, m = x_idx.size, y_idx.size
    kxx, kyy = k[np.ix_(x_idx, x_idx)], k[np.ix_(y_idx, y_idx)]
    within_x = (kxx.sum() - np.trace(kxx)) / (n * (n - 1))
    within_y = (kyy.sum() - np.trace(kyy)) / (m * (m - 1))
    return float(within_x + within_y - 2.0 * k[np.ix_(x_idx, y_idx)].mean())


def mmd_test(reference: np.ndarray, current: np.ndarray, *, threshold: float, n_components: int | None = 10,
             max_samples: int = 300, n_permutations: int = 200, alpha: float = 0.01, seed: int = 0) -> MmdResult:
    """Kernel two-sample test of two embedding windows (see module docstring). Deterministic for a seed.

    n_components None skips the PCA. Windows larger than `max_samples` are subsampled without replacement.
    The PCA is fitted on both windows pooled, which does not depend on which scan came from which window, so
    the permutation test stays exact; a PCA fitted on the reference alone would fit its noise and make even
    identical distributions look different.
    """
    r, c = _pair(reference, current)
    rng = np.random.default_rng(seed)
    r, c = _subsample(r, max_samples, rng), _subsample(c, max_samples, rng)
    pooled = np.vstack([r, c])  # (n + m, d)
    if n_components is not None:
        pca = PCA(n_components=min(n_components, pooled.shape[0], pooled.shape[1]), random_state=seed)
        pooled = pca.fit_transform(pooled)  # (n + m, k)
    d2 = euclidean_distances(pooled, squared=True)
    sigma2 = float(np.median(d2[np.triu_indices_from(d2, k=1)]))
    k = np.exp(-d2 / (2.0 * sigma2)) if sigma2 > 0 else np.ones_like(d2)
    n = r.shape[0]
    idx = np.arange(pooled.shape[0])
    observed = _mmd2(k, idx[:n], idx[n:])
    perms = [rng.permutation(idx) for _ in range(n_permutations)]
    null = np.array([_mmd2(k, p[:n], p[n:]) for p in perms])
    p_value = float((1 + np.sum(null >= observed)) / (1 + n_permutations))
    comps = None if n_components is None else pooled.shape[1]
    return MmdResult(observed, p_value, sigma2, n, c.shape[0], comps, n_permutations,
                     bool(observed >= threshold and p_value < alpha))


def mann_whitney_auc_sd(n_negative: int, n_positive: int) -> float:
    """Standard deviation of the AUC of scores that do not depend on the label (the Mann-Whitney U statistic
    over n_negative * n_positive pairs, no ties): sqrt((n_n + n_p + 1) / (12 n_n n_p)), whatever the scores'
    distribution."""
    if n_negative < 1 or n_positive < 1:
        raise MonitoringInputError(f"need scans on both sides, got {n_negative} and {n_positive}")
    return float(np.sqrt((n_negative + n_positive + 1) / (12.0 * n_negative * n_positive)))


def domain_classifier_auc(reference: np.ndarray, current: np.ndarray, *, threshold: float, folds: int = 5,
                          max_samples: int = 1000, seed: int = 0, alpha: float = 0.01) -> DomainAuc:
    """Mean held-out-fold AUC of a standardised logistic regression separating current (1) from reference (0)
    scans, and its one-sided p-value against 0.5.

    Each fold's scans are scored by a model that never saw them (stratified folds, seeded), so an AUC above 0.5
    is real separation, not memorisation. Within a fold one model, fitted without those scans, scores them all:
    with nothing moved the fold's AUC is exactly a Mann-Whitney statistic, whose null is known. The folds are not
    independent of each other (each model trained on the other folds' scans), and a p-value from the mean AUC
    with the folds' variances came out too small (13% under 0.05 on windows from one distribution), so the
    p-value is Bonferroni's over the folds: `folds` x the least fold p-value, valid whatever their dependence.
    Moved when the mean AUC reaches `threshold` (the least separation that matters) and the p-value is under
    `alpha` (not chance at this sample size).
    """
    r, c = _pair(reference, current)
    if min(r.shape[0], c.shape[0]) < folds:
        raise MonitoringInputError(f"each window needs at least {folds} scans for {folds}-fold cross-validation")
    rng = np.random.default_rng(seed)
    r, c = _subsample(r, max_samples, rng), _subsample(c, max_samples, rng)
    x = np.vstack([r, c])
    y = np.concatenate([np.zeros(r.shape[0]), np.ones(c.shape[0])])
    aucs, p_folds = [], []
    for train, test in StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed).split(x, y):
        model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)).fit(x[train], y[train])
        aucs.append(roc_auc_score(y[test], model.predict_proba(x[test])[:, 1]))
        sd = mann_whitney_auc_sd(int((y[test] == 0).sum()), int((y[test] == 1).sum()))
        p_folds.append(stats.norm.sf((aucs[-1] - 0.5) / sd))
    auc = float(np.mean(aucs))
    p = float(min(1.0, folds * min(p_folds)))
    return DomainAuc(auc, r.shape[0], c.shape[0], folds, auc >= threshold and p < alpha, p)


def fit_reconstruction(reference: np.ndarray, *, n_components: int = 10, quantile: float = 0.99,
                       seed: int = 0) -> ReconstructionModel:
    """PCA on a random half of the reference; threshold = `quantile` of the errors of the other half.

    Held-out errors, because errors of the scans the PCA was fitted on are optimistically small: a threshold
    taken from them would be exceeded by more than 1 - quantile of in-distribution scans.
    """
    r = _matrix(reference, "reference embeddings", min_rows=4)
    if not 0.5 <= quantile < 1.0:
        raise MonitoringInputError(f"quantile must be in [0.5, 1), got {quantile}")
    order = np.random.default_rng(seed).permutation(r.shape[0])
    fit, held = r[order[: r.shape[0] // 2]], r[order[r.shape[0] // 2:]]
    pca = PCA(n_components=min(n_components, fit.shape[0], fit.shape[1]), random_state=seed).fit(fit)
    model = ReconstructionModel(pca.mean_, pca.components_, 0.0, quantile)
    threshold = float(np.quantile(reconstruction_errors(model, held), quantile))
    return ReconstructionModel(pca.mean_, pca.components_, threshold, quantile)


def reconstruction_errors(model: ReconstructionModel, embeddings: np.ndarray) -> np.ndarray:
    """Squared distance of each scan's embedding to the reference principal subspace (embedding units^2)."""
    x = _matrix(embeddings, "embeddings", min_rows=1)
    if x.shape[1] != model.mean.size:
        raise MonitoringInputError(f"embeddings have {x.shape[1]} dimensions, the model {model.mean.size}")
    centred = x - model.mean  # (N, d)
    projected = centred @ model.components.T @ model.components  # (N, d) back in embedding space
    return np.asarray(((centred - projected) ** 2).sum(axis=1))


def exceedances(model: ReconstructionModel, embeddings: np.ndarray) -> np.ndarray:
    """True where a scan's reconstruction error exceeds the model's threshold: a stream for bernoulli_watch
    with null rate (1 - quantile) plus a margin for the threshold's own sampling error."""
    return reconstruction_errors(model, embeddings) > model.threshold
