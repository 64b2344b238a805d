"""BBSE, CBPE and the audit estimates against numbers worked out by hand, and CBPE against simulated truth."""

import math

import numpy as np
import pytest
from scipy import stats

from analytics.monitoring import estimation
from analytics.monitoring.errors import MonitoringInputError


def _source() -> tuple[np.ndarray, np.ndarray]:
    # 80 benign (8 flagged: 10% false alarms), 20 threats (18 flagged: 90% detection)
    y = np.r_[np.zeros(80, int), np.ones(20, int)]
    pred = np.r_[np.ones(8, int), np.zeros(72, int), np.ones(18, int), np.zeros(2, int)]
    return y, pred


def test_bbse_recovers_a_prevalence_of_one_half_by_hand() -> None:
    # C = [[0.72, 0.02], [0.08, 0.18]] (rows prediction, columns label). At 50% prevalence the target flags
    # 0.5 * 0.1 + 0.5 * 0.9 = 50%: mu = (0.5, 0.5). Solving C w = mu: w1 = 0.4444 / 0.17778 = 2.5,
    # w0 = (0.5 - 0.02 * 2.5) / 0.72 = 0.625; q = (0.625 * 0.8, 2.5 * 0.2) = (0.5, 0.5)
    y, pred = _source()
    target = np.r_[np.ones(500, int), np.zeros(500, int)]
    res = estimation.bbse(y, pred, target, n_classes=2)
    assert res.weights == pytest.approx((0.625, 2.5))
    assert res.prevalence == pytest.approx((0.5, 0.5))
    assert res.source_prevalence == pytest.approx((0.8, 0.2)) and res.residual == pytest.approx(0.0, abs=1e-12)


def test_bbse_clips_an_impossible_negative_prevalence_to_zero() -> None:
    # no item flagged at all: fewer flags than the source's false alarms alone explain; w1 < 0 is clipped
    y, pred = _source()
    res = estimation.bbse(y, pred, np.zeros(100, int), n_classes=2)
    assert res.prevalence == pytest.approx((1.0, 0.0))


def test_bbse_bootstrap_interval_covers_the_point() -> None:
    y, pred = _source()
    rng = np.random.default_rng(0)
    target = (rng.random(2000) < 0.3 * 0.9 + 0.7 * 0.1).astype(int)  # 30% prevalence
    res = estimation.bbse(y, pred, target, n_classes=2, n_boot=200)
    assert res.low[1] <= res.prevalence[1] <= res.high[1]
    assert res.prevalence[1] == pytest.approx(0.3, abs=0.05)


def test_cbpe_expected_confusion_by_hand() -> None:
    # scores .9 .6 .2 .1, first two routed: E[TP] = 1.5, E[FP] = .5, E[FN] = .3, E[TN] = 1.7
    res = estimation.cbpe([0.9, 0.6, 0.2, 0.1], [True, True, False, False], n_boot=0)
    assert (res.expected_tp, res.expected_fp, res.expected_fn, res.expected_tn) == pytest.approx((1.5, 0.5, 0.3, 1.7))
    assert res.detection == pytest.approx(1.5 / 1.8)
    assert res.false_alarm == pytest.approx(0.5 / 2.2)
    assert res.precision == pytest.approx(0.75)


def test_cbpe_is_within_sampling_error_of_labels_drawn_from_calibrated_scores() -> None:
    # labels drawn from the scores themselves: calibration holds by construction, so CBPE's interval must
    # cover the realised detection rate about 95% of the time, and its mean error (0.8 SD for an unbiased
    # normal error) stays under the bootstrap SD (the half-width / 1.96)
    rng = np.random.default_rng(1)
    covered, errors, sds = 0, [], []
    for rep in range(60):
        s = rng.beta(0.4, 2.5, size=2000)
        y = rng.random(2000) < s
        routed = s >= 0.15
        est = estimation.cbpe(s, routed, n_boot=200, seed=rep)
        truth = (y & routed).sum() / y.sum()
        covered += est.detection_interval[0] <= truth <= est.detection_interval[1]
        errors.append(abs(est.detection - truth))
        sds.append((est.detection_interval[1] - est.detection_interval[0]) / 2 / 1.96)
    assert 52 <= covered <= 60  # 95% of 60 = 57; 52 is 2.6 binomial SDs below
    assert np.mean(errors) < np.mean(sds)


def test_cbpe_by_class_uses_each_class_score() -> None:
    res = estimation.cbpe_by_class({"knife": [0.8, 0.1], "firearm": [0.5, 0.5]}, [True, False], n_boot=0)
    assert list(res) == ["firearm", "knife"]
    assert res["knife"].detection == pytest.approx(0.8 / 0.9) and res["firearm"].detection == pytest.approx(0.5)


def test_horvitz_thompson_audit_estimate_by_hand() -> None:
    # 1000 cleared items; stratum A audited at pi = 0.1 (30 audits, 2 threats), stratum B at 0.01 (7, none).
    # missed = 2 / 0.1 = 20, share 0.02; Var(total) = 2 * 0.9 / 0.01 = 180, Var(share) = 1.8e-4.
    # Korn-Graubard: n_eff = 0.02 * 0.98 / 1.8e-4 = 108.9, capped at the 37 audits: x = 0.74,
    # interval Beta(0.025; 0.74, 37.26), Beta(0.975; 1.74, 36.26). With 150 detected: 20 / 170 of threats.
    y = np.r_[np.ones(2, bool), np.zeros(28, bool), np.zeros(7, bool)]
    pi = np.r_[np.full(30, 0.1), np.full(7, 0.01)]
    res = estimation.audit_estimate(y, pi, n_cleared=1000, detected=150)
    assert (res.missed, res.miss_share, res.variance) == pytest.approx((20.0, 0.02, 1.8e-4))
    assert res.low == pytest.approx(stats.beta.ppf(0.025, 0.74, 37.26))
    assert res.high == pytest.approx(stats.beta.ppf(0.975, 1.74, 36.26))
    assert res.missed_of_threats == pytest.approx(20 / 170)
    assert res.missed_of_threats_interval is not None
    assert res.missed_of_threats_interval[1] == pytest.approx(1000 * res.high / (1000 * res.high + 150))


def test_audit_estimate_is_unbiased_over_repeated_audits() -> None:
    # 5000 cleared items, 40 hidden threats, 30 of them in the high-risk stratum audited at 20%, the rest at 2%
    rng = np.random.default_rng(2)
    threat = np.zeros(5000, bool)
    threat[:30], threat[1000:1010] = True, True
    pi = np.r_[np.full(1000, 0.2), np.full(4000, 0.02)]
    estimates = []
    for _ in range(400):
        drawn = rng.random(5000) < pi
        estimates.append(estimation.audit_estimate(threat[drawn], pi[drawn], n_cleared=5000).missed)
    assert np.mean(estimates) == pytest.approx(40, rel=0.08)  # SE of the mean ~ sqrt(30*4 + 10*49)/20 = 1.2


def test_no_threat_found_gives_an_interval_from_zero() -> None:
    res = estimation.audit_estimate(np.zeros(50, bool), np.full(50, 0.05), n_cleared=1000)
    assert res.miss_share == 0.0 and res.low == 0.0
    assert res.high == pytest.approx(1 - 0.025 ** (1 / 50))  # Clopper-Pearson for 0 of 50


def test_audit_inclusion_neyman_with_floor_by_hand() -> None:
    # A: 100 items, p = 0.04 (sqrt 0.2); B: 900 items, p = 1e-4 (sqrt 0.01). Budget 20:
    # unconstrained pi = 20 * sqrt(p) / (100 * 0.2 + 900 * 0.01) = (0.1379, 0.0069); B is under the floor
    # 0.01 -> pi_B = 0.01 (9 audits), A takes the other 11: pi_A = 0.11
    plan = estimation.audit_inclusion({"A": 100, "B": 900}, {"A": 0.04, "B": 1e-4}, budget=20, floor=0.01)
    assert plan.inclusion == pytest.approx({"A": 0.11, "B": 0.01})
    assert plan.expected_audits == pytest.approx(20)
    free = estimation.audit_inclusion({"A": 100, "B": 900}, {"A": 0.04, "B": 1e-4}, budget=20, floor=0.001)
    assert free.inclusion == pytest.approx({"A": 20 * 0.2 / 29, "B": 20 * 0.01 / 29})


def test_audit_inclusion_caps_at_one_and_shares_the_rest() -> None:
    # budget 60: unconstrained pi_A = 60 * 0.2 / 29 = 0.41 < 1 fine; with A only 10 items: 60*0.2/(2+9) = 1.09
    # -> pi_A = 1 (10 audits), B gets 50 / 900
    plan = estimation.audit_inclusion({"A": 10, "B": 900}, {"A": 0.04, "B": 1e-4}, budget=60, floor=0.001)
    assert plan.inclusion == pytest.approx({"A": 1.0, "B": 50 / 900})


def test_audit_inputs_are_checked() -> None:
    with pytest.raises(MonitoringInputError, match="below the floor"):
        estimation.audit_inclusion({"A": 1000}, {"A": 0.01}, budget=5, floor=0.01)
    with pytest.raises(MonitoringInputError, match=r"\(0, 1\]"):
        estimation.audit_estimate([True], [0.0], n_cleared=10)
    with pytest.raises(MonitoringInputError, match="integers in 0..1"):
        estimation.bbse([0, 2], [0, 1], [0], n_classes=2)
    assert math.isnan(estimation.cbpe([0.0, 0.0], [True, False], n_boot=0).detection)
