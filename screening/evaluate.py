"""Evaluation metrics of a model's calibrated scores on a labelled set, and the plots people read.

`metrics(...)` returns the dict `xscreen evaluate --json` prints, keys exactly:
n, n_threat, any_threat.{auc, ap, pd_at_far {"0.01", "0.05"}, far_at_pd_95, ece},
classes.<name>.{ap, auc} (classes without both positives and negatives omitted), operating_point.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve

from screening.calibration import OperatingPoint, expected_calibration_error, verdicts, workload
from xscreen.errors import XscreenError

FAR_LEVELS = (0.01, 0.05)
PD_TARGET = 0.95


class EvaluationError(XscreenError):
    """An evaluation set that cannot give meaningful metrics (empty, or one class only)."""

    title = "Cannot evaluate"


def pd_at_far(scores: np.ndarray, labels: np.ndarray, far: float) -> float:
    """Highest probability of detection (TPR) at a threshold whose false-alarm rate (FPR) is <= far."""
    fpr, tpr, _ = roc_curve(labels, scores)
    ok = fpr <= far + 1e-12
    return float(tpr[ok].max())


def far_at_pd(scores: np.ndarray, labels: np.ndarray, pd: float = PD_TARGET) -> float:
    """Lowest false-alarm rate at a threshold that detects at least `pd` of the threats."""
    fpr, tpr, _ = roc_curve(labels, scores)
    return float(fpr[tpr >= pd - 1e-12].min())


def _check_two_classes(labels: np.ndarray, what: str) -> None:
    if len(labels) == 0:
        raise EvaluationError(f"{what}: the evaluation set is empty")
    n_pos = int((labels == 1).sum())
    if n_pos == 0 or n_pos == len(labels):
        kind = "threat" if n_pos else "benign"
        raise EvaluationError(f"{what}: all {len(labels)} items are {kind}; AUC/AP need both threat and benign items")


def class_metrics(class_scores: np.ndarray, class_labels: np.ndarray, classes: list[str]) -> dict[str, dict[str, float]]:
    """AP and AUC per class over items whose class label is known (-1 = unknown); one-sided classes omitted."""
    out: dict[str, dict[str, float]] = {}
    for j, c in enumerate(classes):
        known = class_labels[:, j] >= 0
        y, s = class_labels[known, j], class_scores[known, j]
        if len(y) and 0 < y.sum() < len(y):
            out[c] = {
                "ap": float(average_precision_score(y, s)),
                "auc": float(roc_auc_score(y, s)),
                "n_pos": int(y.sum()),
            }
    return out


def metrics(
    any_scores: np.ndarray,
    any_labels: np.ndarray,
    class_scores: np.ndarray,
    class_labels: np.ndarray,
    classes: list[str],
    point: OperatingPoint,
) -> dict[str, Any]:
    """All metrics of one evaluation. Scores are calibrated probabilities; class_labels (N, K) with -1 = unknown."""
    s, y = np.asarray(any_scores, float), np.asarray(any_labels).astype(int)
    _check_two_classes(y, "any_threat")
    cs, cl = np.asarray(class_scores, float), np.asarray(class_labels).astype(int)
    v = verdicts(s, cs, classes, point)
    load = workload(v, y)
    per_class = class_metrics(cs, cl, classes)
    return {
        "n": int(len(y)),
        "n_threat": int(y.sum()),
        "any_threat": {
            "auc": float(roc_auc_score(y, s)),
            "ap": float(average_precision_score(y, s)),
            "pd_at_far": {f"{f:g}": pd_at_far(s, y, f) for f in FAR_LEVELS},
            "far_at_pd_95": far_at_pd(s, y, PD_TARGET),
            "ece": expected_calibration_error(s, y),
        },
        "classes": per_class,
        "mean_class_ap": float(np.mean([m["ap"] for m in per_class.values()])) if per_class else None,
        "operating_point": {
            "thresholds": point.thresholds,
            "pd": load["pd"],
            "far": load["far"],
            "uncertain_share": load["uncertain_share"],
            "inspect_share": load["inspect_share"],
            "benign_routed": load["benign_routed"],
            "confusion": confusion(v, y),
        },
    }


def confusion(verdict: np.ndarray, any_labels: np.ndarray) -> dict[str, dict[str, int]]:
    """Counts of verdict by truth: {"threat": {"inspect": n, "uncertain": n, "clear": n}, "benign": {...}}."""
    out: dict[str, dict[str, int]] = {}
    for truth, val in (("threat", 1), ("benign", 0)):
        sel = np.asarray(any_labels) == val
        out[truth] = {k: int(np.sum(np.asarray(verdict)[sel] == k)) for k in ("inspect", "uncertain", "clear")}
    return out


def reliability_points(probs: np.ndarray, labels: np.ndarray, n_bins: int = 10) -> list[tuple[float, float, int]]:
    """(mean predicted, observed frequency, count) per non-empty fixed bin, for the reliability diagram."""
    p, y = np.asarray(probs, float), np.asarray(labels, float)
    bins = np.minimum((p * n_bins).astype(int), n_bins - 1)
    return [(float(p[bins == b].mean()), float(y[bins == b].mean()), int((bins == b).sum())) for b in range(n_bins) if (bins == b).any()]


def save_plots(any_scores: np.ndarray, any_labels: np.ndarray, out_dir: Path, title: str) -> list[Path]:
    """Reliability diagram and ROC of any_threat as HTML (and PNG when kaleido is installed). Returns the files."""
    import plotly.graph_objects as go

    out_dir.mkdir(parents=True, exist_ok=True)
    pts = reliability_points(any_scores, any_labels)
    rel = go.Figure(
        [
            go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name="perfect", line={"dash": "dash"}),
            go.Scatter(x=[p[0] for p in pts], y=[p[1] for p in pts], mode="lines+markers", name="model",
                       text=[f"n={p[2]}" for p in pts]),
        ]
    )
    rel.update_layout(title=f"Reliability of any_threat: {title}", xaxis_title="predicted probability",
                      yaxis_title="observed threat frequency")
    fpr, tpr, _ = roc_curve(any_labels, any_scores)
    roc = go.Figure([go.Scatter(x=fpr, y=tpr, mode="lines", name="any_threat")])
    roc.update_layout(title=f"ROC of any_threat: {title}", xaxis_title="false-alarm rate", yaxis_title="probability of detection",
                      xaxis_type="log", xaxis_range=[-3, 0])
    files = []
    for name, fig in (("reliability", rel), ("roc", roc)):
        html = out_dir / f"{name}.html"
        fig.write_html(html, include_plotlyjs="cdn")
        files.append(html)
        try:
            import kaleido  # noqa: F401  (optional; we do not add it as a dependency)

            fig.write_image(out_dir / f"{name}.png")
            files.append(out_dir / f"{name}.png")
        except Exception:  # kaleido missing or without a browser: HTML is enough
            pass
    return files
