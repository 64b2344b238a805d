"""Threshold what-if against hand-computed operating points."""

import pytest

from analytics import whatif

THREATS = [0.9, 0.8, 0.4]  # scores of known threats
LIVE = [0.9, 0.8, 0.4, 0.7, 0.3, 0.2, 0.1, 0.05, 0.02, 0.01]  # all recent mail


def test_operating_point_takes_workload_from_live_mail() -> None:
    p = whatif.operating_point(THREATS, LIVE, 0.5, prevalence=0.1)
    assert p.detection_rate == pytest.approx(2 / 3) and p.workload == pytest.approx(0.3)
    assert p.false_alarm_rate == pytest.approx((0.3 - 0.1 * 2 / 3) / 0.9)


@pytest.mark.parametrize(("target", "threshold"), [(1.0, 0.4), (0.6, 0.8), (0.5, 0.8), (0.3, 0.9)])
def test_threshold_for_detection_is_highest_meeting_target(target: float, threshold: float) -> None:
    assert whatif.threshold_for_detection(THREATS, target) == threshold


@pytest.mark.parametrize(("capacity", "threshold"), [(0.2, 0.8), (0.3, 0.7), (1.0, 0.01), (0.0, float("inf"))])
def test_threshold_for_capacity_is_lowest_within_capacity(capacity: float, threshold: float) -> None:
    assert whatif.threshold_for_capacity(LIVE, capacity) == threshold


def test_cost_view_per_thousand_items() -> None:
    point = whatif.operating_point(THREATS, LIVE, 0.5, prevalence=0.1)
    cost = whatif.cost_view(point, volume=1000, cost_miss=10_000, cost_inspection=5)
    assert cost.inspections == pytest.approx(300)
    assert cost.expected_misses == pytest.approx(100 / 3)
    assert cost.false_alarms == pytest.approx(300 - 200 / 3)  # inspections that are not detected threats
    assert cost.total_cost == pytest.approx(10_000 * 100 / 3 + 5 * (300 - 200 / 3))


def test_certified_region_from_certificate() -> None:
    cert = {"alpha": 0.05, "delta": 0.05, "certified": True,
            "thresholds": {"any_threat": {"clear": 0.35, "inspect": 0.8}, "knife": {"clear": 0.3, "inspect": 0.7}}}
    region = whatif.certified_region({"temperature": 1.1, "certificate": cert})
    assert region.contains(0.2) and not region.contains(0.5) and region.clamp(0.9) == 0.35
    assert region.alpha == 0.05


def test_uncertified_model_is_refused() -> None:
    with pytest.raises(whatif.WhatIfError, match="not certified"):
        whatif.certified_region({"certificate": {"alpha": 0.05, "certified": False, "thresholds": {}}})


def test_model_without_certificate_is_a_typed_error() -> None:
    with pytest.raises(whatif.WhatIfError, match="no conformal certificate"):
        whatif.certified_region({"temperature": 1.2})


def test_no_known_threats_is_a_typed_error() -> None:
    with pytest.raises(whatif.WhatIfError, match="no known threat scores"):
        whatif.operating_point([], LIVE, 0.5, 0.1)


def test_inputs_take_known_threats_and_the_live_any_threat_scores() -> None:
    import pandas as pd

    outcomes = pd.DataFrame({"any_threat": [0.9, 0.2, 0.7, 0.4], "is_threat": [True, False, None, True]})
    samples = pd.DataFrame({"class_name": ["any_threat", "knife", "any_threat"], "score": [0.3, 0.8, 0.6]})
    got = whatif.inputs(outcomes, samples)
    assert got.threat_scores.tolist() == [0.9, 0.4] and got.live_scores.tolist() == [0.3, 0.6]
