"""Realized precision/detection and binomial intervals against textbook values."""

import pytest

from analytics import accuracy


def test_wilson_interval_of_8_of_10() -> None:
    iv = accuracy.wilson_interval(8, 10)
    assert (iv.low, iv.high) == pytest.approx((0.49016, 0.94332), abs=1e-4)


def test_clopper_pearson_of_8_of_10_and_of_zero() -> None:
    iv = accuracy.clopper_pearson_interval(8, 10)
    assert (iv.low, iv.high) == pytest.approx((0.44390, 0.97479), abs=1e-4)
    zero = accuracy.clopper_pearson_interval(0, 10)
    assert zero.low == 0.0 and zero.high == pytest.approx(1 - 0.025 ** (1 / 10))


def test_no_observations_gives_the_whole_unit_interval() -> None:
    est = accuracy.rate_estimate(0, 0)
    assert (est.low, est.high) == (0.0, 1.0)


def test_impossible_counts_are_refused() -> None:
    with pytest.raises(accuracy.AccuracyInputError, match="k=5, n=3"):
        accuracy.wilson_interval(5, 3)


def test_realized_precision_ignores_referrals() -> None:
    est = accuracy.realized_precision(["confirmed", "seized", "cleared", "cleared", "refer"])
    assert (est.k, est.n, est.rate) == (2, 4, 0.5)


def test_detection_rate_counts_flagged_threats_only() -> None:
    est = accuracy.detection_rate([True, False, True, True], [True, True, False, True], method="clopper_pearson")
    assert (est.k, est.n) == (2, 3) and est.rate == pytest.approx(2 / 3)
    assert est.method == "clopper_pearson"


def test_verdict_agreement_compares_flagging_not_labels() -> None:
    # inspect vs uncertain both flag: agree; clear vs inspect: disagree
    est = accuracy.verdict_agreement(["inspect", "clear", "clear", "uncertain"], ["uncertain", "inspect", "clear", "inspect"])
    assert (est.k, est.n) == (3, 4)
