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


def test_rates_by_group_with_unknown_outcomes_left_out() -> None:
    import pandas as pd

    frame = pd.DataFrame({"scanner_id": ["s1", "s1", "s1", "s2", "s2"], "class_name": ["knife"] * 5,
                          "detected": [True, False, None, True, True]})
    got = accuracy.rates_by_group(frame, ["scanner_id", "class_name"], "detected")
    assert got[["scanner_id", "k", "n"]].values.tolist() == [["s1", 1, 2], ["s2", 2, 2]]
    assert got["rate"].tolist() == [0.5, 1.0]
    iv = accuracy.wilson_interval(1, 2)
    assert (got.loc[0, "low"], got.loc[0, "high"]) == pytest.approx((iv.low, iv.high))
    with pytest.raises(accuracy.AccuracyInputError, match="window"):
        accuracy.rates_by_group(frame, ["window"], "detected")


def test_label_delay_counts_waiting_items_as_censored_by_hand() -> None:
    import pandas as pd

    # delays 1 h, 3 h, 4 h labelled; one item scored 3 h after the others still waits at now (censored at 2 h).
    # Kaplan-Meier: S(1) = 3/4; the censored item leaves the risk set at 2; S(3) = 3/4 * 1/2 = 3/8; S(4) = 0.
    # CDF 1/4, 5/8, 1: median 3 h, 90th percentile 4 h.
    t0 = pd.Timestamp("2026-01-01", tz="UTC")
    hours = pd.Timedelta(hours=1)
    scored = [t0, t0 + 3 * hours, t0, t0]
    labelled = [t0 + hours, pd.NaT, t0 + 3 * hours, t0 + 4 * hours]
    got = accuracy.label_delay_summary(scored, labelled, now=t0 + 5 * hours)
    assert (got.n_items, got.n_labelled, got.labelled_share) == (4, 3, 0.75)
    assert (got.median_hours, got.p90_hours) == (3.0, 4.0)


def test_label_delay_median_is_not_reached_while_most_items_wait() -> None:
    import math

    import pandas as pd

    t0 = pd.Timestamp("2026-01-01", tz="UTC")
    got = accuracy.label_delay_summary([t0] * 3, [t0 + pd.Timedelta(hours=1), pd.NaT, pd.NaT],
                                       now=t0 + pd.Timedelta(hours=2))
    assert got.labelled_share == pytest.approx(1 / 3) and math.isnan(got.median_hours)
