"""Sequential tests (e-detector, Ville e-value) and the certificate watch against numbers worked out by hand."""

import math

import numpy as np
import pytest

from analytics.monitoring import certificate, sequential
from analytics.monitoring.errors import MonitoringInputError

LN2, LN_8_9 = math.log(2.0), math.log(0.8 / 0.9)  # log e-values of a 1 and a 0 for q = 0.2 against p0 = 0.1


def test_single_alternative_detector_is_pages_cusum_by_hand() -> None:
    # p0 = 0.1, q = 0.2: a 1 adds ln(0.2/0.1) = ln 2, a 0 adds ln(0.8/0.9).
    # outcomes 1, 1, 0, 1: L = ln2, 2 ln2, 2 ln2 + ln(8/9), 3 ln2 + ln(8/9) = ln(64/9) = 1.9617 >= ln 7 = 1.9459
    state = sequential.start_detector(0.1, alternatives=[0.2], weights=[1.0])
    res = sequential.bernoulli_watch([1, 1, 0, 1], arl=7, state=state)
    assert res.statistic == pytest.approx(math.log(64 / 9))
    assert res.threshold == pytest.approx(math.log(7))
    assert res.alarm and res.alarm_at == 4
    assert (res.n_items, res.n_events) == (4, 3)
    # with arl 8 (ln 8 = 2.079) the same stream has not crossed
    assert not sequential.bernoulli_watch([1, 1, 0, 1], arl=8, state=state).alarm


def test_cusum_restarts_instead_of_carrying_negative_evidence() -> None:
    # 0, 0, 1: L = ln(8/9) < 0, then ln(8/9) + max(L, 0) = ln(8/9), then ln 2 + max(ln(8/9), 0) = ln 2
    state = sequential.start_detector(0.1, alternatives=[0.2], weights=[1.0])
    res = sequential.bernoulli_watch([0, 0, 1], arl=100, state=state)
    assert res.statistic == pytest.approx(LN2)
    assert res.state.log_cusum == pytest.approx((LN2,))
    # the walk max(L, 0) was 0 after item 2: the change-point estimate is "1 item ago, and it was a 1"
    assert (res.recent_items, res.recent_rate) == (1, 1.0)


def test_mixture_statistic_is_the_weighted_mean_of_likelihood_ratios() -> None:
    # one 1 against p0 = 0.1 with q = 0.2 and 0.4, weights 1/2: 0.5 * 2 + 0.5 * 4 = 3
    state = sequential.start_detector(0.1, alternatives=[0.2, 0.4])
    assert sequential.bernoulli_watch([1], arl=10, state=state).statistic == pytest.approx(math.log(3))


def test_feeding_a_stream_in_two_runs_equals_feeding_it_at_once() -> None:
    rng = np.random.default_rng(3)
    x = rng.random(3000) < np.where(np.arange(3000) < 2000, 0.03, 0.2)
    whole = sequential.bernoulli_watch(x, arl=1e5, null_rate=0.06)
    first = sequential.bernoulli_watch(x[:1500], arl=1e5, null_rate=0.06)
    second = sequential.bernoulli_watch(x[1500:], arl=1e5, state=first.state)
    assert second.statistic == pytest.approx(whole.statistic)
    assert second.alarm_at == whole.alarm_at and whole.alarm_at is not None and whole.alarm_at > 2000
    assert second.state.since == whole.state.since and second.n_items == 3000
    # the change-point estimate lands near the true change 1000 items before the end
    assert 900 <= whole.recent_items <= 1050 and whole.recent_rate == pytest.approx(0.2, abs=0.04)


def test_default_alternatives_step_up_in_log_odds() -> None:
    # logit(0.1) + ln 9 = 0: q = 0.5
    assert sequential.default_alternatives(0.1, steps=[math.log(9)]) == pytest.approx((0.5,))


def test_in_distribution_run_length_is_at_least_the_stated_arl() -> None:
    # the guarantee: mean outcomes between false alarms >= arl even with the rate exactly at the null
    runs = sequential.run_lengths(0.05, null_rate=0.05, arl=50, n_streams=200, max_items=5000,
                                  rng=np.random.default_rng(11))
    assert np.minimum(runs, 5000).mean() >= 50


def test_a_large_shift_is_found_within_a_hundred_outcomes() -> None:
    delays = sequential.run_lengths(0.3, null_rate=0.06, arl=1e5, n_streams=20, max_items=3000, change_at=2000,
                                    base_rate=0.03, rng=np.random.default_rng(5))
    assert (delays > 0).all() and np.median(delays) < 100


def test_e_value_of_one_outcome_by_hand() -> None:
    # uniform prior on [p0, 1], density 1/(1 - p0). One 1: int q/p0 dq / (1 - p0) = (1 + p0) / (2 p0) = 10.5
    one = sequential.rate_e_value(1, 1, null_rate=0.05, alpha=0.05)
    assert one.e_value == pytest.approx(10.5) and not one.reject  # 10.5 < 1/0.05 = 20
    # one 0: int (1 - q)/(1 - p0) dq / (1 - p0) = 1/2
    assert sequential.rate_e_value(0, 1, null_rate=0.05, alpha=0.05).e_value == pytest.approx(0.5)


def test_e_value_path_crosses_one_over_alpha_rarely_under_the_null() -> None:
    # Ville: P(ever >= 1/alpha) <= alpha = 0.1; 400 streams -> about 40 at most (+3 SE = 58)
    rng = np.random.default_rng(2)
    crossed = sum(bool((sequential.rate_e_value_path(rng.random(300) < 0.05, null_rate=0.05) >= math.log(10)).any())
                  for _ in range(400))
    assert crossed <= 58
    # and it does cross quickly when the rate is four times the null
    bad = sequential.rate_e_value_path(np.random.default_rng(4).random(300) < 0.2, null_rate=0.05)
    assert (bad >= math.log(10)).any()


def test_bad_inputs_are_named() -> None:
    with pytest.raises(MonitoringInputError, match="0/1"):
        sequential.bernoulli_watch([0, 2], arl=10, null_rate=0.1)
    with pytest.raises(MonitoringInputError, match="arl"):
        sequential.bernoulli_watch([0], arl=1, null_rate=0.1)
    with pytest.raises(MonitoringInputError, match="alternatives"):
        sequential.start_detector(0.3, alternatives=[0.2])


def test_certificate_watch_names_the_scanner_and_the_adapt_command() -> None:
    # certified 3% + margin 3%: an unseen scanner routing ~90% alarms within a few dozen items
    routed = np.random.default_rng(0).random(200) < 0.9
    res = certificate.certificate_watch(routed, scanner_id="scanner-3", certified_rate=0.03, margin=0.03, arl=1e5)
    assert res.alarm and res.tolerated_rate == pytest.approx(0.06)
    assert res.state.n_items == 200 and res.recent_rate > 0.8
    assert res.message.startswith("scanner-3 routes ")
    assert "certificate expects 3% (tolerated up to 6%): adapt with `xscreen adapt --scanner scanner-3`" in res.message


def test_certificate_watch_stays_quiet_on_the_certified_rate() -> None:
    routed = np.zeros(1000, dtype=bool)
    routed[::25] = True  # 4%: above the certified 3%, under the 6% tolerated
    res = certificate.certificate_watch(routed, scanner_id="scanner-1", certified_rate=0.03, margin=0.03, arl=1e5)
    assert not res.alarm
    assert res.message == "scanner-1 routes 4% of 1000 presumed-benign items; certificate expects 3% (tolerated up to 6%): holds"


def test_certificate_watch_refuses_a_state_for_another_rate() -> None:
    state = sequential.start_detector(0.2)
    with pytest.raises(MonitoringInputError, match="not certified"):
        certificate.certificate_watch([True], scanner_id="s", certified_rate=0.03, margin=0.03, arl=100, state=state)


def test_certified_share_is_read_from_the_registry_calibration() -> None:
    assert certificate.certified_benign_routed({"certificate": {"expected_benign_routed": 0.027}}) == 0.027
    with pytest.raises(MonitoringInputError, match="expected_benign_routed"):
        certificate.certified_benign_routed({"alpha": 0.05})


def test_benign_routed_from_flag_rate_by_hand() -> None:
    # 20% flagged, 10% prevalence, 95% detected: (0.2 - 0.095) / 0.9 = 0.11667
    assert certificate.benign_routed_from_flag_rate(0.2, prevalence=0.1, detection_rate=0.95) == pytest.approx(
        0.105 / 0.9)
