"""The accuracy page on real mail (audits + officer feedback, Horvitz-Thompson weighted betting e-detector): numbers
worked out by hand, and simulated streams for its false-alarm rate under H0 and its power on a doubled miss rate."""

import math

import numpy as np
import pytest

from analytics.monitoring import harm, sequential
from analytics.monitoring.errors import MonitoringInputError

NAN = float("nan")


def test_increments_weight_audited_misses_by_one_over_pi_and_detections_by_minus_c() -> None:
    # m0 = 0.2: c = 0.2 / 0.8 = 0.25. Items: flagged threat, audited (pi 0.5) threat, unaudited cleared item,
    # flagged benign, audited benign (pi 0.1).
    z = harm.miss_increments([True, False, False, True, False], [True, True, True, False, False],
                             [NAN, 0.5, NAN, NAN, 0.1], tolerated_miss_rate=0.2)
    assert z == pytest.approx([-0.25, 2.0, 0.0, 0.0, 0.0])


def test_one_bet_detector_is_the_cusum_of_betting_factors_by_hand() -> None:
    # fraction 0.5 of the largest bet 1/c = 4: lambda = 2. Factors: 1 - 2 * 0.25 = 0.5, 1 + 2 * 2 = 5, 1, 1.
    # CUSUM: 0.5 * max(1, 1) = 0.5, then 5 * max(0.5, 1) = 5, then 5, 5: ln 5 = 1.609 >= ln 4, crossed at item 2.
    state = sequential.start_bet_detector(0.2, fractions=[0.5])
    page = harm.miss_rate_page([True, False, False, True], [True, True, True, False], [NAN, 0.5, NAN, NAN],
                               label="x", certified_miss_rate=0.1, margin=0.1, arl=4, state=state)
    assert page.statistic == pytest.approx(math.log(5))
    assert page.alarm and page.alarm_at == 2 and page.items == 4 and page.misses_found == 1
    assert page.state.log_cusum == pytest.approx((math.log(5),))
    assert not harm.miss_rate_page([True], [True], [NAN], label="x", certified_miss_rate=0.1, margin=0.1, arl=4,
                                   state=state).alarm  # a detection alone: factor 0.5, ln 0.5


def test_the_mixture_is_the_mean_over_bets_and_a_detection_before_restarts_nothing() -> None:
    # bets 2 and 1 (fractions 0.5 and 0.25 of 4): one audited miss at pi 0.5 (Z = 2) gives (5 + 3) / 2 = 4.
    state = sequential.start_bet_detector(0.2, fractions=[0.5, 0.25])
    page = harm.miss_rate_page([False], [True], [0.5], label="x", certified_miss_rate=0.1, margin=0.1, arl=100,
                               state=state)
    assert page.statistic == pytest.approx(math.log(4))
    # continued in two runs equals fed at once
    first = harm.miss_rate_page([True, False], [True, False], [NAN, NAN], label="x", certified_miss_rate=0.1,
                                margin=0.1, arl=100, state=state)
    second = harm.miss_rate_page([False], [True], [0.5], label="x", certified_miss_rate=0.1, margin=0.1, arl=100,
                                 state=first.state)
    whole = harm.miss_rate_page([True, False, False], [True, False, True], [NAN, NAN, 0.5], label="x",
                                certified_miss_rate=0.1, margin=0.1, arl=100, state=state)
    assert second.statistic == pytest.approx(whole.statistic) and second.items == 3
    # the CUSUM restarted at 1 after the detection (0.5 and 0.75 -> 1): the miss after it gives 4 again
    assert whole.statistic == pytest.approx(math.log(4))


def test_the_ht_estimate_by_hand() -> None:
    # 10 items: 4 flagged threats confirmed, 1 flagged benign, 5 cleared of which 2 audited at pi 0.25, one a threat.
    # missed = 1 / 0.25 = 4; miss rate = 4 / (4 + 4) = 0.5.
    flagged = [True] * 5 + [False] * 5
    threat = [True] * 4 + [False] + [True, False, False, False, False]
    pi = [NAN] * 5 + [0.25, 0.25, NAN, NAN, NAN]
    est = harm.miss_estimate(flagged, threat, pi)
    assert (est.items, est.detected, est.audited, est.misses_found) == (10, 4, 2, 1)
    assert est.missed == pytest.approx(4.0) and est.miss_rate == pytest.approx(0.5)
    assert 0.0 <= est.low < 0.5 < est.high <= 1.0
    none = harm.miss_estimate([True, False], [False, False], [NAN, NAN])
    assert math.isnan(none.miss_rate) and none.audited == 0


def test_bad_inputs_are_refused_with_what_was_wrong() -> None:
    with pytest.raises(MonitoringInputError, match="one of each per item"):
        harm.miss_increments([True], [True, False], [NAN], tolerated_miss_rate=0.1)
    with pytest.raises(MonitoringInputError, match=r"\(0, 1\]"):
        harm.miss_increments([False], [True], [0.0], tolerated_miss_rate=0.1)
    with pytest.raises(MonitoringInputError, match="flagged or an audited"):
        harm.miss_increments([True], [True], [0.5], tolerated_miss_rate=0.1)
    with pytest.raises(MonitoringInputError, match="not certified"):
        harm.miss_rate_page([True], [True], [NAN], label="x", certified_miss_rate=0.05, margin=0.03, arl=10,
                            state=sequential.start_bet_detector(0.1))
    with pytest.raises(MonitoringInputError, match="lower bound"):
        sequential.bet_watch([-1.0], lower=-0.5, arl=10, state=sequential.start_bet_detector(0.1))


def _stream(rng: np.random.Generator, n: int, miss: float, pi: float, prevalence: float = 0.15
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Real mail: threats cleared with probability `miss`, 3% of benign mail flagged, cleared items audited at pi."""
    threat = rng.random(n) < prevalence
    flagged = np.where(threat, rng.random(n) >= miss, rng.random(n) < 0.03)
    audited = ~flagged & (rng.random(n) < pi)
    return flagged, threat, np.where(audited, pi, np.nan)


def _alarm_share(rng: np.random.Generator, streams: int, n: int, miss: float, pi: float, arl: float,
                 certified: float = 0.05) -> float:
    hits = [harm.miss_rate_page(*_stream(rng, n, miss, pi), label="sim", certified_miss_rate=certified,
                                margin=0.03, arl=arl).alarm_at is not None for _ in range(streams)]
    return float(np.mean(hits))


def test_false_alarms_at_the_tolerated_miss_rate_stay_under_the_stated_level() -> None:
    # The e-detector's guarantee: P(a false alarm within the first N items) <= N / arl. At exactly the tolerated
    # 8% miss rate, 300 streams of 2,000 items, arl 10,000: stated level 0.2 (observed: none). The same check on
    # streams missing 30% of threats alarms in ~80% of them: it can fail.
    rng = np.random.default_rng(2026)
    level = 2000 / 10_000
    assert _alarm_share(rng, 300, 2000, miss=0.08, pi=0.2, arl=10_000) <= level
    assert _alarm_share(rng, 300, 2000, miss=0.08, pi=0.05, arl=10_000) <= level
    assert _alarm_share(np.random.default_rng(1), 100, 2000, miss=0.3, pi=0.2, arl=10_000) > 3 * level


def test_a_doubled_miss_rate_is_detected() -> None:
    # 16% of threats cleared against 8% tolerated, audits at 20%, 15% prevalence: detected in at least 80% of
    # 30 streams within 20,000 items at arl 100,000 (observed: 90% in a 40-stream run); the median detection
    # comes after ~9,000 items: the audit sees a miss only 1 time in 5.
    assert _alarm_share(np.random.default_rng(7), 30, 20_000, miss=0.16, pi=0.2, arl=100_000) >= 0.8
