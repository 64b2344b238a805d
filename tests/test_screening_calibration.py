"""Calibration, conformal thresholds and metrics, against numbers computed by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from screening.calibration import (
    OperatingPoint,
    certificate,
    clear_threshold,
    conformal_k,
    expected_calibration_error,
    fit_temperature,
    n_threat_needed,
    operating_point,
    sigmoid,
    verdicts,
    workload,
)
from screening.evaluate import EvaluationError, far_at_pd, metrics, pd_at_far


def test_n_threat_needed_for_one_percent_at_95_percent_confidence_is_299() -> None:
    # (0.99)^298 = 0.0500 > 0.05 but (0.99)^299 = 0.0495 <= 0.05
    assert n_threat_needed(0.01, 0.05) == 299
    assert n_threat_needed(0.05, 0.05) == 59  # 0.95^58 = 0.0510, 0.95^59 = 0.0485
    assert n_threat_needed(0.1, 0.1) == 22  # 0.9^21 = 0.109, 0.9^22 = 0.098


def test_conformal_k_matches_binomial_tail_by_hand() -> None:
    # n = 100, alpha = 0.05, delta = 0.05: P(Bin(100, .05) <= 0) = .0059, <= 1: .0371, <= 2: .1183
    assert conformal_k(100, 0.05, 0.05) == 2
    assert conformal_k(58, 0.05, 0.05) == 0  # too few threats: nothing certifiable
    assert conformal_k(59, 0.05, 0.05) == 1


def test_clear_threshold_is_kth_smallest_threat_score_or_zero() -> None:
    scores = np.linspace(0.01, 1.0, 100)[::-1]  # unsorted on purpose
    t, k = clear_threshold(scores, 0.05, 0.05)
    assert k == 2 and t == pytest.approx(0.02)
    assert clear_threshold(scores[:10], 0.05, 0.05) == (0.0, 0)


def test_conformal_threshold_meets_miss_rate_target_on_held_out_data() -> None:
    # Repeat calibrate-then-test on fresh simulated scores: the miss rate exceeds alpha in at most ~delta of runs.
    rng = np.random.default_rng(0)
    alpha, delta, failures, runs = 0.05, 0.1, 0, 200
    for _ in range(runs):
        t, k = clear_threshold(rng.beta(5, 2, 300), alpha, delta)
        assert k > 0
        miss = np.mean(rng.beta(5, 2, 20_000) < t)
        failures += miss > alpha
    assert failures / runs <= delta + 0.05  # binomial slack for 200 runs


def test_temperature_scaling_improves_ece_of_overconfident_model() -> None:
    rng = np.random.default_rng(1)
    true_logit = rng.normal(0, 2, 4000)
    y = (rng.random(4000) < sigmoid(true_logit)).astype(float)
    logits = 3.0 * true_logit  # deliberately overconfident: true temperature 3
    t = fit_temperature(logits[:2000], y[:2000])
    assert t == pytest.approx(3.0, rel=0.15)
    before = expected_calibration_error(sigmoid(logits[2000:]), y[2000:])
    after = expected_calibration_error(sigmoid(logits[2000:] / t), y[2000:])
    assert after < before / 2


def test_fit_temperature_is_one_when_labels_are_constant() -> None:
    assert fit_temperature(np.array([1.0, 2.0]), np.array([1.0, 1.0])) == 1.0


def test_ece_by_hand() -> None:
    # bin [0.1, 0.2): p mean .15, y mean .5 -> .35 * 2/4; bin [0.9, 1.0]: p mean .95, y mean 1 -> .05 * 2/4
    assert expected_calibration_error(np.array([0.1, 0.2 - 1e-9, 0.9, 1.0]), np.array([0, 1, 1, 1])) == pytest.approx(0.2, abs=1e-6)


def test_verdict_rule_and_capacity() -> None:
    point = OperatingPoint({"any_threat": {"clear": 0.2, "inspect": 0.5}, "knife": {"clear": 0.1, "inspect": 0.9}})
    v = verdicts(np.array([0.1, 0.3, 0.6, 0.1]), np.array([[0.0], [0.0], [0.0], [0.95]]), ["knife"], point)
    assert list(v) == ["clear", "uncertain", "inspect", "inspect"]
    any_s = np.array([0.05, 0.3, 0.35, 0.4, 0.45, 0.8] * 20)
    any_y = np.array([0, 1, 0, 0, 1, 1] * 20)
    pt, ks = operating_point(any_s, any_y, np.zeros((120, 1)), -np.ones((120, 1)), ["knife"], alpha=0.2, delta=0.2, capacity=0.2)
    th = pt.thresholds["any_threat"]
    assert ks["any_threat"] > 0 and th["clear"] == pytest.approx(0.3)
    share = workload(verdicts(any_s, np.zeros((120, 1)), ["knife"], pt), any_y)["uncertain_share"]
    assert share <= 0.2 and th["inspect"] == pytest.approx(0.35)  # 0.3 alone is 1/6 of items; 0.3-0.35 would be 1/3


def test_certificate_reports_more_threats_needed() -> None:
    s = np.concatenate([np.full(50, 0.9), np.full(50, 0.1)])
    y = np.concatenate([np.ones(50), np.zeros(50)])
    pt, ks = operating_point(s, y, np.zeros((100, 1)), np.zeros((100, 1)), ["knife"], alpha=0.05, delta=0.05, capacity=0.1)
    cert = certificate(pt, ks, verdicts(s, np.zeros((100, 1)), ["knife"], pt), y, alpha=0.05, delta=0.05, capacity=0.1, manifest_sha256="abc")
    assert cert["certified"] is False and cert["n_cal_threat"] == 50 and cert["n_threat_needed"] == 59
    assert cert["more_threats_needed_for_alpha"]["0.01"] == 299 - 50
    assert pt.thresholds["any_threat"]["clear"] == 0.0 and cert["expected_workload"] == 1.0


def test_pd_at_far_and_far_at_pd_by_hand() -> None:
    s = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1, 0.05])
    y = np.array([1, 1, 0, 1, 0, 0, 0, 0, 0, 0])
    assert pd_at_far(s, y, 0.0) == pytest.approx(2 / 3)
    assert pd_at_far(s, y, 1 / 7) == pytest.approx(1.0)
    assert far_at_pd(s, y, 0.95) == pytest.approx(1 / 7)


def test_metrics_keys_and_errors_on_empty_or_single_class() -> None:
    rng = np.random.default_rng(2)
    y = np.array([0, 1] * 50)
    cl = np.stack([y, -np.ones(100), np.zeros(100)], axis=1)
    point = OperatingPoint({c: {"clear": 0.3, "inspect": 0.6} for c in ["any_threat", "a", "b", "c"]})
    m = metrics(rng.random(100), y, rng.random((100, 3)), cl, ["a", "b", "c"], point)
    assert set(m["any_threat"]) == {"auc", "ap", "pd_at_far", "far_at_pd_95", "ece"}
    assert set(m["any_threat"]["pd_at_far"]) == {"0.01", "0.05"}
    assert set(m["classes"]) == {"a"} and m["n"] == 100 and m["n_threat"] == 50
    assert {"thresholds", "pd", "far", "uncertain_share"} <= set(m["operating_point"])
    assert all(math.isfinite(v) for v in [m["any_threat"]["auc"], m["operating_point"]["far"]])
    with pytest.raises(EvaluationError, match="empty"):
        metrics(np.array([]), np.array([]), np.zeros((0, 3)), np.zeros((0, 3)), ["a", "b", "c"], point)
    with pytest.raises(EvaluationError, match="all 4 items are benign"):
        metrics(np.full(4, 0.1), np.zeros(4), np.zeros((4, 3)), np.zeros((4, 3)), ["a", "b", "c"], point)
