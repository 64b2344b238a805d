"""The honest evaluation harness: side-by-side style sets and the benign-only invariance report, on a real model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy.stats import ks_2samp

from screening.assess import format_side_by_side, headline, score_synthetic, style_report
from screening.classifier import Classifier
from screening.invariance import PRESENTATIONS, base_style, benign_images, invariance_report, score_shift
from screening.registry import build_model
from screening.train import REPO_ROOT
from xscreen.settings import ModelSettings


@pytest.fixture(scope="module")
def clf() -> Classifier:
    from screening.registry import load_checkpoint

    ckpt = load_checkpoint(REPO_ROOT / ModelSettings().bundled)  # type: ignore[operator]
    return Classifier(build_model(ckpt), ckpt)


def test_score_shift_against_numbers_computed_by_hand() -> None:
    base = np.array([0.1, 0.2, 0.3, 0.4])
    moved = np.array([0.1, 0.2, 0.3, 0.9])
    s = score_shift("x", base, moved, np.array([False, False, False, True]), np.array([False, False, True, True]))
    # empirical CDFs differ most on [0.4, 0.9): 4/4 of the base against 3/4 of the moved scores
    assert s.ks == pytest.approx(0.25) and s.mean_shift == pytest.approx(0.125)
    assert s.routed_base == pytest.approx(0.25) and s.routed == pytest.approx(0.5) and s.n == 4
    same = score_shift("same", base, base, base > 1, base > 1)
    assert same.ks == 0.0 and same.mean_shift == 0.0 and same.ks_p_value == pytest.approx(1.0)
    with pytest.raises(ValueError, match="paired 1-D score arrays"):
        score_shift("bad", base, moved[:3], base > 0, base > 0)


def test_invariance_report_scores_what_it_says(clf: Classifier) -> None:
    presentations = {"same": lambda s: s, "padded to x2": PRESENTATIONS["padded to x2"],
                     "grey": PRESENTATIONS["grey"], "JPEG q30": PRESENTATIONS["JPEG q30"]}
    report = invariance_report(clf, 10, 31, presentations)
    # an identical presentation gives identical scores: no shift at all
    assert np.array_equal(report.scores["same"], report.base_scores) and report.shifts["same"].ks == 0.0
    base_images, shown = benign_images(10, 31, clf.classes, presentations)
    direct = np.array([p.any_threat for p in clf.predict(base_images)])
    assert np.allclose(direct, report.base_scores, atol=1e-6)  # the serving path gives the same scores
    for name in ("padded to x2", "grey", "JPEG q30"):
        scores, shift = report.scores[name], report.shifts[name]
        assert np.allclose([p.any_threat for p in clf.predict(shown[name])], scores, atol=1e-6)
        assert shift.ks == pytest.approx(ks_2samp(scores, report.base_scores).statistic)
        assert shift.mean_shift == pytest.approx(scores.mean() - report.base_scores.mean())
        assert shift.n == 10 and 0.0 <= shift.routed <= 1.0
    assert base_style().display.palette is not None and base_style().display.palette.name == "reference"
    padded = shown["padded to x2"][0]
    assert np.allclose(padded.shape[:2], (2 * base_images[0].shape[0], 2 * base_images[0].shape[1]), atol=1)


def test_style_sets_report_the_headline_figures_and_held_out_variants_are_paired(clf: Classifier) -> None:
    results = style_report(clf, 24, 4243, styles=("reference", "heldout-grey"))
    colour, grey = (score_synthetic(clf, 24, 4243, style=s) for s in ("heldout", "heldout-grey"))
    assert np.array_equal(colour[2], grey[2]) and np.array_equal(colour[3], grey[3])  # held-out variants: paired
    for r in results.values():
        h = headline(r)
        assert h["n"] == 24 and 0 < h["n_threat"] < 24
        assert all(0.0 <= h[k] <= 1.0 for k in ("auc", "pd_at_far_5", "benign_routed", "threat_routed"))
        assert h["threat_routed"] == r["operating_point"]["pd"] and h["benign_routed"] == r["operating_point"]["benign_routed"]
    table = format_side_by_side(results)
    assert "| | reference | heldout-grey |" in table and "benign sent to an officer" in table



def test_a_held_out_folder_from_xscreen_synth_scores_as_the_in_memory_set(clf: Classifier, tmp_path: Path) -> None:
    from screening.assess import evaluate_classifier, pooled_metrics
    from xray.dataset import write_dataset_impl

    write_dataset_impl(tmp_path, n=16, seed=77, classes=clf.classes, progress_bar=False, style="heldout-jpeg")
    from_files, p_files, y_files = evaluate_classifier(clf, [tmp_path], progress=False)
    scored = score_synthetic(clf, 16, 77, style="heldout-jpeg")
    in_memory = pooled_metrics(clf, [scored])
    # the same images (the JPEG files' own pixels); the folder reader letterboxes floats, the in-memory path 8 bits,
    # so canvases may differ by a grey level and scores by a little
    assert np.array_equal(y_files, scored[2]) and np.allclose(p_files, scored[0], atol=0.02)
    assert from_files["any_threat"]["auc"] == pytest.approx(in_memory["any_threat"]["auc"], abs=0.03)
    assert from_files["localisation"]["n"] == in_memory["localisation"]["n"]
