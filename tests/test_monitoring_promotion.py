"""The promotion gate's decision on hand-built pairs: rates, McNemar and the reasons a candidate fails."""

from __future__ import annotations

import math

import numpy as np
import pytest

from analytics.monitoring.errors import MonitoringInputError
from analytics.monitoring.promotion import GateCriteria, gate_report

N_KNIFE, N_FIREARM, N_BENIGN = 20, 20, 60


def _truth() -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Items 0-19 knives, 20-39 firearms, 40-99 benign; 3 of the knives also ammunition."""
    n = N_KNIFE + N_FIREARM + N_BENIGN
    knife, firearm, ammo = np.zeros(n, int), np.zeros(n, int), np.zeros(n, int)
    knife[:20], firearm[20:40], ammo[:3] = 1, 1, 1
    return np.arange(n) < 40, {"knife": knife, "firearm": firearm, "ammunition": ammo}


def _flags(missed: list[int], false_alarms: int) -> np.ndarray:
    flags = np.arange(100) < 40
    flags[missed] = False
    flags[40 : 40 + false_alarms] = True
    return flags


def test_a_better_candidate_passes_with_its_rates_computed_by_hand() -> None:
    truth, classes = _truth()
    # 20 items per class bound a paired difference only to about +-0.1-0.16: a 5-point margin cannot be shown
    # on so few, and the default criteria say so; a 20-point margin can.
    assert not gate_report(truth, classes, _flags([0, 1], 6), _flags([0], 5), certified_miss=0.05)["passed"]
    report = gate_report(truth, classes, _flags([0, 1], 6), _flags([0], 5), certified_miss=0.05,
                         criteria=GateCriteria(margin=0.2), sources={"benchmark": 100})
    assert report["passed"] and report["reasons"] == []
    assert report["champion"] == {"detection": 38 / 40, "false_alarms": 6 / 60}
    assert report["candidate"] == {"detection": 39 / 40, "false_alarms": 5 / 60}
    assert report["candidate_miss"] == pytest.approx(1 / 40)
    assert (report["mcnemar"]["b"], report["mcnemar"]["c"], report["mcnemar"]["p_value"]) == (0, 2, 1.0)
    assert report["classes"]["knife"]["champion_detection"] == 18 / 20
    assert report["classes"]["ammunition"]["non_inferior"] is None  # 3 items: reported, not judged
    assert report["classes"]["firearm"]["non_inferior"] is True and report["sources"] == {"benchmark": 100}


def test_a_candidate_blind_to_one_class_fails_for_each_reason() -> None:
    truth, classes = _truth()
    report = gate_report(truth, classes, _flags([0, 1], 6), _flags(list(range(20, 40)), 6), certified_miss=0.05,
                         criteria=GateCriteria(margin=0.2))
    assert not report["passed"]
    # b = 20 firearms the champion caught and the candidate missed, c = the 2 knives the reverse:
    # P(X <= 2 | 22, 1/2) = (1 + 22 + 231) / 2**22
    assert (report["mcnemar"]["b"], report["mcnemar"]["c"]) == (20, 2)
    assert math.isclose(report["mcnemar"]["p_value"], 254 / 2**22, rel_tol=1e-9)
    reasons = " | ".join(report["reasons"])
    assert "misses 50.0% of threats, above its certified 5.0%" in reasons
    assert "firearm: detection may drop by 100.0%, beyond the 20.0% margin" in reasons and "knife:" not in reasons
    assert "McNemar p = 6.06e-05" in reasons


def test_an_uncertified_candidate_or_no_threats_fail_and_bad_arrays_are_refused() -> None:
    truth, classes = _truth()
    assert "no certified miss rate" in gate_report(truth, classes, truth, truth, certified_miss=None)["reasons"][0]
    benign = np.zeros(10, bool)
    assert not gate_report(benign, {}, benign, benign, certified_miss=0.05)["passed"]
    with pytest.raises(MonitoringInputError, match="equal, non-empty"):
        gate_report(truth, classes, truth[:5], truth, certified_miss=0.05)
    strict = gate_report(truth, classes, _flags([], 0), _flags([0, 1, 2], 0), certified_miss=0.1,
                         criteria=GateCriteria(margin=0.01, min_class_items=50))
    assert strict["classes"]["knife"]["non_inferior"] is None and strict["any_threat"]["non_inferior"] is False


def test_where_the_drift_is_the_candidate_must_be_right_more_often_than_the_champion() -> None:
    truth, classes = _truth()
    focus = np.zeros(100, bool)
    focus[:20], focus[40:60] = True, True  # the knives (the drift) and 20 benign items of the same mail
    champion, candidate = _flags(list(range(10)), 0), _flags([0], 0)  # the champion misses 10 knives, the candidate 1
    report = gate_report(truth, classes, champion, candidate, certified_miss=0.05,
                         criteria=GateCriteria(margin=0.2), focus=focus)
    where = report["focus"]
    assert (where["n"], where["n_threat"], where["champion_errors"], where["candidate_errors"]) == (40, 20, 10, 1)
    # c = 9 knives only the candidate finds, b = 0: P(X >= 9 | 9, 1/2) = 1 / 2**9
    assert (where["mcnemar"]["b"], where["mcnemar"]["c"]) == (0, 9)
    assert math.isclose(where["mcnemar"]["p_value"], 1 / 2**9, rel_tol=1e-9)
    assert where["better"] and report["passed"], report["reasons"]
    assert where["candidate"] == {"detection": 19 / 20, "false_alarms": 0.0}

    # No better there (the same knives missed): fails with the counts, however it does elsewhere.
    same = gate_report(truth, classes, champion, champion, certified_miss=0.5, criteria=GateCriteria(margin=0.2),
                       focus=focus)
    assert not same["passed"] and not same["focus"]["better"]
    assert same["reasons"] == ["not better where the drift is: 10 errors against the champion's 10 on 40 items "
                               "(right where the champion is wrong on 0, the reverse on 0; McNemar p = 1, needs < 0.05)"]
    # Two knives better is not evidence (P(X >= 2 | 2, 1/2) = 1/4)
    slight = gate_report(truth, classes, champion, _flags(list(range(8)), 0), certified_miss=0.5,
                         criteria=GateCriteria(margin=0.2), focus=focus)
    assert math.isclose(slight["focus"]["mcnemar"]["p_value"], 0.25) and not slight["focus"]["better"]


def test_without_focus_items_the_drift_criterion_is_not_applied_and_a_bad_mask_is_refused() -> None:
    truth, classes = _truth()
    flags = _flags([], 0)
    for focus in (None, np.zeros(100, bool)):
        report = gate_report(truth, classes, flags, flags, certified_miss=0.05, criteria=GateCriteria(margin=0.2),
                             focus=focus)
        assert report["focus"] is None and report["passed"], report["reasons"]
    with pytest.raises(MonitoringInputError, match="focus mask has 5 items"):
        gate_report(truth, classes, flags, flags, certified_miss=0.05, focus=np.ones(5, bool))
