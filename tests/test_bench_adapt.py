"""bench/bench_adapt.py's paired change: after - before on the same scans with a bootstrap standard error."""

from __future__ import annotations

import numpy as np
import torch

from bench.bench_adapt import model_scores, paired_change
from screening import registry
from screening.classifier import Classifier
from tests.serving_fakes import tiny_model

CLASSES = ["firearm", "knife"]


def _clf(seed: int) -> Classifier:
    ckpt = tiny_model(CLASSES, f"tiny-{seed}", seed)
    return Classifier(registry.build_model(ckpt), ckpt, "cpu")


def _set(n: int) -> tuple[torch.Tensor, list[list[str]]]:
    rng = np.random.default_rng(1)
    canvases = torch.from_numpy(rng.integers(0, 256, (n, 3, 64, 64), dtype=np.uint8))
    labels = [[] if i % 2 else [CLASSES[(i // 2) % 2]] for i in range(n)]
    return canvases, labels


def test_a_model_against_itself_changes_nothing_with_no_spread() -> None:
    clf = _clf(0)
    canvases, labels = _set(40)
    scores = model_scores(clf, canvases)
    out = paired_change(scores, scores, labels, CLASSES, n_boot=30)
    assert out == {"pd_at_far5": 0.0, "pd_at_far5_se": 0.0, "mean_class_ap": 0.0, "mean_class_ap_se": 0.0}


def test_two_models_differ_by_their_figures_and_the_spread_is_positive() -> None:
    from screening.evaluate import pd_at_far

    before, after = _clf(0), _clf(1)
    canvases, labels = _set(40)
    out = paired_change(model_scores(before, canvases), model_scores(after, canvases), labels, CLASSES, n_boot=30)
    y = np.array([int(bool(lab)) for lab in labels])
    with torch.inference_mode():
        p_b = before.scores(canvases.float().div(255.0))[0]
        p_a = after.scores(canvases.float().div(255.0))[0]
    assert out["pd_at_far5"] == round(pd_at_far(p_a, y, 0.05) - pd_at_far(p_b, y, 0.05), 4)
    assert out["mean_class_ap_se"] > 0 and out["pd_at_far5_se"] >= 0
