"""Officer analytics, against figures worked out by hand: decisions per active hour, time to decision, agreement
with the AI and with adjudicated outcomes (Wilson intervals)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from analytics.accuracy import rate_estimate
from analytics.officers import OfficerInputError, agreement, officer_report, throughput

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def row(officer: str, decision: str, decided_min: float, wait_min: float, verdict: str,
        adjudicated: bool | None = None) -> dict[str, object]:
    decided = T0 + timedelta(minutes=decided_min)
    return {"officer": officer, "decision": decision, "decided_at": decided,
            "scored_at": decided - timedelta(minutes=wait_min), "verdict": verdict, "adjudicated_threat": adjudicated}


FRAME = pd.DataFrame([
    # ann: 4 decisions in the 09:00 hour and 1 at 11:10 -> 2 active hours, 2.5 per hour
    row("ann", "confirmed", 5, 2, "inspect", True),     # agrees with AI, agrees with adjudication
    row("ann", "cleared", 15, 4, "inspect", False),     # disagrees with AI, agrees with adjudication
    row("ann", "cleared", 25, 6, "clear"),              # an audited clear: agrees with AI
    row("ann", "seized", 35, 8, "uncertain", False),    # no AI call; disagrees with adjudication
    row("ann", "cleared", 130, 10, "uncertain"),        # no AI call, no adjudication
    # bob: 2 decisions in one hour, plus a referral (work, not a call)
    row("bob", "cleared", 10, 1, "inspect"),            # disagrees with AI
    row("bob", "refer", 20, 3, "inspect", True),        # left out of both agreements
    row("bob", "confirmed", 30, 5, "inspect", True),    # agrees with both
])


def test_throughput_counts_decisions_per_active_hour_and_minutes_from_verdict_to_decision() -> None:
    t = throughput(FRAME).set_index("officer")
    assert t.loc["ann", "decisions"] == 5 and t.loc["ann", "active_hours"] == 2 and t.loc["ann", "per_hour"] == 2.5
    assert t.loc["ann", "median_minutes"] == 6.0
    assert t.loc["ann", "p90_minutes"] == pytest.approx(8 + 0.6 * 2)  # linear between 8 and 10 at 0.9 of 4 steps
    assert t.loc["bob", "decisions"] == 3 and t.loc["bob", "active_hours"] == 1 and t.loc["bob", "per_hour"] == 3.0
    assert t.loc["bob", "median_minutes"] == 3.0


def test_agreement_leaves_out_uncertain_verdicts_referrals_and_unadjudicated_items() -> None:
    with_ai, with_adj = (x.set_index("officer") for x in agreement(FRAME))
    assert (with_ai.loc["ann", "k"], with_ai.loc["ann", "n"]) == (2, 3)
    assert (with_ai.loc["bob", "k"], with_ai.loc["bob", "n"]) == (1, 2)
    assert (with_adj.loc["ann", "k"], with_adj.loc["ann", "n"]) == (2, 3)
    assert (with_adj.loc["bob", "k"], with_adj.loc["bob", "n"]) == (1, 1)
    wilson = rate_estimate(2, 3, 0.95, "wilson")
    assert (with_ai.loc["ann", "low"], with_ai.loc["ann", "high"]) == pytest.approx((wilson.low, wilson.high))
    assert with_ai.loc["ann", "low"] == pytest.approx(0.2077, abs=1e-4)  # Wilson 2/3 by hand


def test_a_nullable_boolean_column_from_the_store_gives_the_same_agreement() -> None:
    nullable = FRAME.assign(adjudicated_threat=FRAME["adjudicated_threat"].astype("boolean"))  # None -> pd.NA
    assert agreement(nullable)[1].equals(agreement(FRAME)[1])


def test_an_empty_window_gives_empty_tables_and_a_missing_column_is_named() -> None:
    report = officer_report(FRAME.iloc[:0])
    assert report.throughput.empty and report.ai_agreement.empty and report.adjudicated_agreement.empty
    with pytest.raises(OfficerInputError, match="adjudicated_threat"):
        throughput(FRAME.drop(columns=["adjudicated_threat"]))


def test_tip_hit_rate_per_officer_and_class_with_wilson_intervals_by_hand() -> None:
    from analytics.officers import tip_hit_rates

    frame = pd.DataFrame({"officer": ["ann"] * 4 + ["bob"] * 3,
                          "class_name": ["knife"] * 4 + ["gun", "gun", "knife"],
                          "hit": [True, True, False, True, False, False, True]})
    out = tip_hit_rates(frame).set_index(["officer", "class_name"])
    assert out.index.tolist() == [("ann", "knife"), ("bob", "gun"), ("bob", "knife")]
    # Wilson 95%, z = 1.96: 3 of 4 -> centre (0.75 + z^2/8) / (1 + z^2/4) = 0.6275, half-width 0.3269
    assert (out.loc[("ann", "knife"), "k"], out.loc[("ann", "knife"), "n"]) == (3, 4)
    assert out.loc[("ann", "knife"), ["rate", "low", "high"]].tolist() == pytest.approx([0.75, 0.300642, 0.954413],
                                                                                        abs=1e-5)
    # 0 of 2 -> [0, z^2 / (2 + z^2)] = [0, 0.6576]; 1 of 1 -> [1 / (1 + z^2), 1] = [0.2065, 1]
    assert out.loc[("bob", "gun"), ["rate", "low", "high"]].tolist() == pytest.approx([0.0, 0.0, 0.65762], abs=1e-5)
    assert out.loc[("bob", "knife"), ["low", "high"]].tolist() == pytest.approx([0.206549, 1.0], abs=1e-5)
    with pytest.raises(OfficerInputError, match="class_name"):
        tip_hit_rates(frame.drop(columns="class_name"))
