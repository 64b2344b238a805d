"""Input drift by cause, embedding drift and ARL-calibrated thresholds against numbers worked out by hand."""

import math

import numpy as np
import pytest

from analytics.monitoring import embeddings, shift, thresholds
from analytics.monitoring.errors import MonitoringInputError

STATS = ("mean_attenuation", "noise_level", "dynamic_range", "organic_fraction", "inorganic_fraction",
         "metal_fraction")
BASE = np.linspace(0.0, 1.0, 200)
BASE_SD = float(np.std(BASE, ddof=1))  # 0.2901


def _window(**moves: float) -> dict[str, np.ndarray]:
    return {name: BASE + moves.get(name, 0.0) for name in STATS}


def test_effect_sizes_of_a_shift_by_two_by_hand() -> None:
    # [1, 2, 3] -> [3, 4, 5]: means 2 and 4, both variances 1: d = 2; Wasserstein 2 (in reference SDs: 2 / 1);
    # KS: at x = 3 the reference CDF is 1 and the current 1/3, D = 2/3
    assert shift.standardised_mean_difference([1, 2, 3], [3, 4, 5]) == pytest.approx(2.0)
    res = shift.scanner_shift({"noise_level": [1, 2, 3]}, {"noise_level": [3, 4, 5]}, scanner_id="s")
    (row,) = res.stats
    assert (row.smd, row.wasserstein, row.ks_statistic) == pytest.approx((2.0, 2.0, 2 / 3))
    assert row.kind == "scanner" and not row.moved  # d is large but 3 + 3 scans prove nothing (q >= 0.01)


def test_constant_windows_give_zero_or_infinite_effect() -> None:
    assert shift.standardised_mean_difference([1, 1], [1, 1]) == 0.0
    assert shift.standardised_mean_difference([1, 1], [2, 2]) == math.inf


def test_noise_moving_alone_is_scanner_drift_on_that_scanner() -> None:
    # noise + 2 on scanner-1: d = 2 / BASE_SD = 6.89 (both SDs equal); content identical (d = 0)
    shifts = [shift.scanner_shift(_window(), _window(noise_level=2.0), scanner_id="scanner-1"),
              shift.scanner_shift(_window(), _window(), scanner_id="scanner-2"),
              shift.scanner_shift(_window(), _window(), scanner_id="scanner-3")]
    assert shifts[0].moved_stats == ["noise_level"]
    assert shifts[0].scanner_effect == pytest.approx(2.0 / BASE_SD) and shifts[0].content_effect == 0.0
    cause = shift.drift_cause(shifts)
    assert cause.scanner_drift == ("scanner-1",) and not cause.content_drift
    assert cause.stable == ("scanner-2", "scanner-3")
    assert cause.message == "scanner drift on scanner-1 (noise_level d=+6.9): call maintenance for scanner-1"


def test_material_mix_moving_on_most_scanners_is_content_drift() -> None:
    # metal fraction + 0.3 on two of three scanners: d = 0.3 / 0.2901 = 1.03 >= 0.5, 2 >= half of 3
    shifts = [shift.scanner_shift(_window(), _window(metal_fraction=0.3), scanner_id="a"),
              shift.scanner_shift(_window(), _window(metal_fraction=0.3), scanner_id="b"),
              shift.scanner_shift(_window(), _window(), scanner_id="c")]
    assert shifts[0].content_effect == pytest.approx(0.3 / BASE_SD)
    cause = shift.drift_cause(shifts)
    assert cause.content_drift and cause.content_scanners == ("a", "b") and cause.scanner_drift == ()
    assert cause.fleet_scanners == ("a", "b")
    assert cause.message == "content drift on 2 of 3 scanners (a, b): the mail changed; consider retraining"


def test_scanners_moving_apart_are_not_a_fleet() -> None:
    # a: metal + 0.3 (d = 1.03); b: organic + 0.3; c: metal - 0.3. Two of three moved each time, but no content
    # statistic moved the same way on two scanners: a change of mail would, so each is local content drift.
    apart = [shift.scanner_shift(_window(), _window(metal_fraction=0.3), scanner_id="a"),
             shift.scanner_shift(_window(), _window(organic_fraction=0.3), scanner_id="b"),
             shift.scanner_shift(_window(), _window(), scanner_id="c")]
    cause = shift.drift_cause(apart)
    assert cause.fleet_scanners == () and cause.content_scanners == ("a", "b") and cause.content_drift
    assert cause.message == ("content drift on a only (metal_fraction d=+1.0): check what this scanner receives; "
                             "content drift on b only (organic_fraction d=+1.0): check what this scanner receives")
    opposite = [apart[0], shift.scanner_shift(_window(), _window(metal_fraction=-0.3), scanner_id="c")]
    assert shift.drift_cause(opposite).fleet_scanners == ()
    # the same move on b joins a: the fleet is {a, b}
    together = [apart[0], shift.scanner_shift(_window(), _window(metal_fraction=0.3, organic_fraction=0.3),
                                              scanner_id="b"), apart[2]]
    assert shift.drift_cause(together).fleet_scanners == ("a", "b")


def test_physics_and_mix_moving_together_on_one_scanner_is_local_content_drift() -> None:
    # attenuation d = 0.3 / SD = 1.03 and metal d = 1.03: the scanner effect does not dominate (needs 2x)
    one = shift.scanner_shift(_window(), _window(mean_attenuation=0.3, metal_fraction=0.3), scanner_id="a")
    cause = shift.drift_cause([one, shift.scanner_shift(_window(), _window(), scanner_id="b"),
                               shift.scanner_shift(_window(), _window(), scanner_id="c")])
    assert cause.scanner_drift == () and cause.content_scanners == ("a",)
    # the same scanner with the attenuation move twice as large is scanner drift again
    two = shift.scanner_shift(_window(), _window(mean_attenuation=0.6, metal_fraction=0.3), scanner_id="a")
    assert shift.drift_cause([two]).scanner_drift == ("a",)


def test_detector_noise_moving_on_one_scanner_is_scanner_drift_whatever_the_mix_does() -> None:
    # Scanner ageing on the 3D renderer: noise d = 1.03 and metal d = 1.03 together. Mail cannot move noise, so
    # this is scanner drift; by dominance alone (detector_stats=()) it would read as content on that scanner.
    one = shift.scanner_shift(_window(), _window(noise_level=0.3, metal_fraction=0.3), scanner_id="a")
    fleet = [one, shift.scanner_shift(_window(), _window(), scanner_id="b"),
             shift.scanner_shift(_window(), _window(), scanner_id="c")]
    assert shift.drift_cause(fleet).scanner_drift == ("a",) and not shift.drift_cause(fleet).content_drift
    assert shift.drift_cause(fleet, detector_stats=()).content_scanners == ("a",)


def test_embedding_moves_count_towards_the_fleet_rule() -> None:
    shifts = [shift.scanner_shift(_window(), _window(), scanner_id=s) for s in ("a", "b")]
    cause = shift.drift_cause(shifts, embedding_moved={"a": True, "b": True})
    assert cause.content_drift and cause.content_scanners == ("a", "b")
    assert shift.drift_cause(shifts).message.startswith("no input drift")


def test_unknown_statistic_must_be_given_a_kind() -> None:
    with pytest.raises(MonitoringInputError, match="'glare'"):
        shift.scanner_shift({"glare": [1, 2]}, {"glare": [1, 2]}, scanner_id="s")
    got = shift.scanner_shift({"glare": [1, 2]}, {"glare": [1, 2]}, scanner_id="s", kinds={"glare": "scanner"})
    assert got.stats[0].kind == "scanner"


def test_max_abs_smd_takes_the_largest_column() -> None:
    ref = np.column_stack([[1, 2, 3], [0, 1, 2]])
    cur = np.column_stack([[2, 3, 4], [3, 4, 5]])  # d = 1 and d = 3
    assert shift.max_abs_smd(ref, cur) == pytest.approx(3.0)


def test_mmd_of_four_points_by_hand() -> None:
    # pooled {0, 1, 3, 4}: squared distances 1, 9, 16, 4, 9, 1 -> median sigma^2 = (4 + 9) / 2 = 6.5,
    # k = exp(-d^2 / 13). Within each window one off-diagonal pair at distance 1; across: 9, 16, 4, 9.
    res = embeddings.mmd_test(np.array([[0.0], [1.0]]), np.array([[3.0], [4.0]]), threshold=0.1,
                              n_components=None, n_permutations=50, seed=1)
    cross = (2 * math.exp(-9 / 13) + math.exp(-16 / 13) + math.exp(-4 / 13)) / 4
    assert res.sigma2 == pytest.approx(6.5)
    assert res.mmd2 == pytest.approx(2 * math.exp(-1 / 13) - 2 * cross)
    # 2 of the 6 splits are this extreme: p ~ 1/3, so not moved at alpha 0.01 however large the effect
    assert 0.15 < res.p_value < 0.55 and not res.moved


def test_mmd_tells_a_shifted_window_from_a_fresh_one_and_is_seeded() -> None:
    rng = np.random.default_rng(0)
    ref, same, moved = rng.normal(size=(400, 32)), rng.normal(size=(300, 32)), rng.normal(size=(300, 32)) + 0.3
    quiet = embeddings.mmd_test(ref, same, threshold=0.005, seed=7)
    loud = embeddings.mmd_test(ref, moved, threshold=0.005, seed=7)
    assert not quiet.moved and loud.moved and loud.p_value < 0.01 and loud.mmd2 > quiet.mmd2
    assert embeddings.mmd_test(ref, same, threshold=0.005, seed=7) == quiet


def test_domain_classifier_auc_is_half_on_the_same_distribution() -> None:
    rng = np.random.default_rng(1)
    ref = rng.normal(size=(300, 8))
    same = embeddings.domain_classifier_auc(ref, rng.normal(size=(300, 8)), threshold=0.6)
    apart = embeddings.domain_classifier_auc(ref, rng.normal(size=(300, 8)) + 1.0, threshold=0.6)
    assert abs(same.auc - 0.5) < 0.08 and not same.moved
    assert apart.auc > 0.95 and apart.moved


def test_mann_whitney_sd_by_hand() -> None:
    # 100 a side: sqrt(201 / (12 * 100 * 100)) = 0.040927
    assert embeddings.mann_whitney_auc_sd(100, 100) == pytest.approx(0.040927, abs=1e-6)
    with pytest.raises(MonitoringInputError, match="both sides"):
        embeddings.mann_whitney_auc_sd(0, 10)


def test_domain_classifier_p_value_holds_its_level_on_one_distribution() -> None:
    # 200 pairs of windows from one distribution: a valid p-value is under 0.05 in at most 5% of them, plus two
    # binomial sds for 200 draws (1.5 points each). A p-value from the folds' mean AUC failed this (13%).
    rng = np.random.default_rng(5)
    p = np.array([embeddings.domain_classifier_auc(rng.normal(size=(60, 4)), rng.normal(size=(60, 4)),
                                                   threshold=0.55, seed=i).p_value for i in range(200)])
    assert np.mean(p < 0.05) <= 0.08 and np.mean(p < 0.5) > 0.2  # not stuck at 1 either


def test_a_high_domain_auc_on_few_scans_is_not_moved_until_its_p_value_says_so() -> None:
    rng = np.random.default_rng(2)
    ref, cur = rng.normal(size=(12, 3)), rng.normal(size=(12, 3)) + 0.5
    small = embeddings.domain_classifier_auc(ref, cur, threshold=0.55, alpha=0.001, folds=3)
    assert small.auc >= 0.55 and small.p_value >= 0.001 and not small.moved
    big = embeddings.domain_classifier_auc(rng.normal(size=(300, 3)), rng.normal(size=(300, 3)) + 0.5,
                                           threshold=0.55, alpha=0.001)
    assert big.p_value < 1e-6 and big.moved


def test_reconstruction_error_is_the_squared_distance_to_the_reference_line() -> None:
    # reference on the line y = 2x: (1, 0) lies (2*1 - 0)^2 / (1 + 4) = 0.8 from it; (1, 2) on it
    t = np.linspace(-1, 1, 20)
    model = embeddings.fit_reconstruction(np.column_stack([t, 2 * t]), n_components=1)
    errs = embeddings.reconstruction_errors(model, np.array([[1.0, 0.0], [1.0, 2.0]]))
    assert errs == pytest.approx([0.8, 0.0], abs=1e-12)
    assert embeddings.exceedances(model, np.array([[1.0, 0.0]])).tolist() == [True]


def test_reconstruction_threshold_is_exceeded_at_about_the_stated_rate() -> None:
    rng = np.random.default_rng(2)
    cov = np.diag(np.r_[np.full(4, 9.0), np.ones(28)])
    model = embeddings.fit_reconstruction(rng.multivariate_normal(np.zeros(32), cov, 4000), n_components=4,
                                          quantile=0.95)
    share = embeddings.exceedances(model, rng.multivariate_normal(np.zeros(32), cov, 4000)).mean()
    assert share == pytest.approx(0.05, abs=0.015)


def test_window_threshold_matches_the_normal_quantile() -> None:
    # statistic |mean(window) - mean(fixed half)| on N(0, 1) reference of 2000 rows, window 50:
    # Var = 1/50 (window) + 1/1000 (fixed half) + 1/1000 (pool it is drawn from) = 0.022; arl 1000 checks
    # every 50 scans -> 5% per check -> threshold = 1.96 * sqrt(0.022) = 0.2907
    ref = np.random.default_rng(3).normal(size=2000)
    cal = thresholds.calibrate_window_threshold(
        ref, lambda f, w: float(abs(w.mean() - f.mean())), window=50, arl_items=1000, n_boot=4000,
        rng=np.random.default_rng(4))
    assert cal.quantile == pytest.approx(0.95)
    assert cal.threshold == pytest.approx(1.96 * math.sqrt(0.022), rel=0.1)


def test_window_threshold_refuses_too_few_bootstrap_windows() -> None:
    with pytest.raises(MonitoringInputError, match="at least 500"):
        thresholds.calibrate_window_threshold(np.zeros(100), lambda f, w: 0.0, window=100, arl_items=10_000,
                                              n_boot=100, rng=np.random.default_rng(0))
