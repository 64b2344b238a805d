"""Drift statistics against numbers worked out by hand."""

import math

import numpy as np
import pandas as pd
import pytest

from analytics import drift


def test_psi_of_two_bins_swapped_is_ln3() -> None:
    # shares (0.75, 0.25) -> (0.25, 0.75): 2 * 0.5 * ln(3) = ln 3
    res = drift.psi([0.1, 0.2, 0.3, 0.7], [0.1, 0.6, 0.7, 0.8], bins=2)
    assert res.psi == pytest.approx(math.log(3))
    assert res.reference_share == (0.75, 0.25) and res.current_share == (0.25, 0.75)
    assert res.drifted


def test_psi_of_identical_windows_is_zero_and_not_drifted() -> None:
    x = np.linspace(0, 1, 50)
    res = drift.psi(x, x)
    assert res.psi == pytest.approx(0.0) and not res.drifted


def test_psi_clips_empty_bins_instead_of_infinity() -> None:
    # current all in bin 0: (1 - 0.5) ln(1/0.5) + (1e-4 - 0.5) ln(1e-4/0.5)
    expected = 0.5 * math.log(2) + (1e-4 - 0.5) * math.log(1e-4 / 0.5)
    assert drift.psi([0.1, 0.9], [0.1, 0.2], bins=2).psi == pytest.approx(expected)


def test_ks_statistic_is_largest_cdf_gap() -> None:
    res = drift.ks_test([0.1, 0.2, 0.3, 0.4], [0.3, 0.4, 0.5, 0.6])
    assert res.statistic == pytest.approx(0.5)
    assert drift.ks_test([1, 2, 3], [4, 5, 6]).statistic == pytest.approx(1.0)


def test_flag_rate_counts_inspect_and_uncertain() -> None:
    res = drift.flag_rate(["inspect", "clear", "uncertain", "clear"])
    assert (res.n, res.flagged, res.rate) == (4, 2, 0.5)
    assert drift.flag_rate([]).rate == 0.0


def test_flag_rate_rejects_unknown_verdicts() -> None:
    with pytest.raises(drift.DriftInputError, match="maybe"):
        drift.flag_rate(["inspect", "maybe"])


def test_empty_window_is_a_typed_error() -> None:
    with pytest.raises(drift.DriftInputError, match="current window is empty"):
        drift.psi([0.5], [])


def test_class_report_flags_only_the_shifted_class() -> None:
    rng = np.random.default_rng(0)
    ref = {"knife": rng.beta(2, 8, 500), "firearm": rng.beta(2, 8, 500)}
    cur = {"knife": rng.beta(2, 8, 500), "firearm": rng.beta(8, 2, 500), "extra": [0.5]}
    report = drift.class_drift_report(ref, cur, psi_alert=0.2)
    assert [r.class_name for r in report.rows] == ["firearm", "knife"]
    assert report.drifted_classes == ["firearm"]


def test_volume_series_sums_selected_scanner_buckets() -> None:
    counts = pd.DataFrame({
        "bucket": [1, 1, 2, 2], "scanner_id": ["s1", "s2", "s1", "s1"], "model_version": ["m", "m", "m", "n"],
        "n": [10, 5, 4, 6], "n_inspect": [1, 5, 0, 3], "n_uncertain": [1, 0, 2, 0], "n_clear": [8, 0, 2, 3]})
    all_ = drift.volume_series(counts)
    assert all_["n"].tolist() == [15, 10] and all_["flag_rate"].tolist() == pytest.approx([7 / 15, 5 / 10])
    s1m = drift.volume_series(counts, scanner_id="s1", model_version="m")
    assert s1m["flagged"].tolist() == [2, 2] and s1m["flag_rate"].tolist() == pytest.approx([0.2, 0.5])


def test_scores_by_class_splits_long_rows() -> None:
    got = drift.scores_by_class(pd.DataFrame({"class_name": ["a", "b", "a"], "score": [0.1, 0.2, 0.3]}))
    assert got["a"].tolist() == [0.1, 0.3] and got["b"].tolist() == [0.2]


def test_total_flag_rate_weights_buckets_by_volume() -> None:
    series = pd.DataFrame({"n": [90, 10], "flagged": [9, 10]})
    assert drift.total_flag_rate(series) == drift.FlagRate(n=100, flagged=19, rate=0.19)


def test_reference_quantile_edges_split_the_reference_evenly_and_merge_ties() -> None:
    assert drift.reference_quantile_edges([1, 2, 3, 4, 5], bins=4) == (1.0, 2.0, 3.0, 4.0, 5.0)
    assert drift.reference_quantile_edges([0, 0, 0, 1], bins=4) == (0.0, 0.25, 1.0)  # quantiles 0, 0, 0, .25, 1


def test_psi_over_given_edges_puts_outliers_in_the_end_bins() -> None:
    # edges 0 | 1 | 2: reference (0.5, 1.5) -> shares (.5, .5); current (-3, 0.5, 0.7, 9) -> (.75, .25)
    # PSI = (.75 - .5) ln(1.5) + (.25 - .5) ln(.5) = .25 ln 3
    res = drift.psi([0.5, 1.5], [-3, 0.5, 0.7, 9], edges=[0, 1, 2])
    assert res.current_share == (0.75, 0.25)
    assert res.psi == pytest.approx(0.25 * math.log(3))


def test_psi_refuses_edges_that_do_not_ascend() -> None:
    with pytest.raises(drift.DriftInputError, match="ascending"):
        drift.psi([0.5], [0.5], edges=[0, 1, 1])


def test_quantile_bins_see_drift_that_equal_width_bins_miss() -> None:
    # benign scores pile up under 0.1: equal-width bins put both windows in the first bin (PSI ~ 0)
    rng = np.random.default_rng(1)
    ref, cur = rng.uniform(0, 0.05, 2000), rng.uniform(0.04, 0.09, 2000)
    assert drift.psi(ref, cur).psi == pytest.approx(0.0)
    assert drift.psi(ref, cur, edges=drift.reference_quantile_edges(ref)).psi > 1.0


def test_class_report_with_fdr_needs_both_an_effect_and_a_discovery() -> None:
    # tiny windows: a big PSI on 5 scores is not a discovery after Benjamini-Hochberg across classes
    ref = {"knife": [0.1, 0.2, 0.3, 0.4, 0.5], "firearm": np.random.default_rng(0).beta(2, 8, 500)}
    cur = {"knife": [0.5, 0.6, 0.7, 0.8, 0.9], "firearm": np.random.default_rng(1).beta(8, 2, 500)}
    report = drift.class_drift_report(ref, cur, psi_alert=0.2, binning="quantile", fdr=0.01)
    rows = {r.class_name: r for r in report.rows}
    assert rows["knife"].psi > 0.2 and rows["knife"].ks_q_value is not None and rows["knife"].ks_q_value > 0.01
    assert report.drifted_classes == ["firearm"]
    # BH by hand: two p-values p1 <= p2 -> q1 = min(2 p1, p2), q2 = p2
    p = sorted([rows["knife"].ks_p_value, rows["firearm"].ks_p_value])
    assert sorted(r.ks_q_value or 0 for r in report.rows) == pytest.approx([min(2 * p[0], p[1]), p[1]])


def test_uncertain_share_with_wilson_interval() -> None:
    est = drift.uncertain_share(["uncertain", "clear", "inspect", "clear"] * 5)
    assert (est.k, est.n, est.rate) == (5, 20, 0.25)
    assert est.low < 0.25 < est.high
