"""bench/bench_maintenance.py's probe: a single-class champion is trained for real and measured on baseline and on
each scenario at full strength, with the threats of that class only."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bench.bench_maintenance import probe_class
from tests.maintenance_loop import Officers, render


def test_render_draws_threats_of_the_given_classes_only() -> None:
    items = render("new_goods", 12, 3, threat_rate=1.0, progress=1.0, size=(64, 64), classes=["knife"])
    assert items and all(r.labels == ("knife",) for r in items)


class Recorder:
    """Just the two store operations officers call, kept in lists."""

    def __init__(self) -> None:
        self.decisions: list[Any] = []
        self.labels: list[Any] = []

    def record_decision(self, rec: Any) -> None:
        self.decisions.append(rec)

    def add_labels(self, recs: list[Any]) -> None:
        self.labels += recs


def test_officers_who_err_flip_that_share_of_decisions_and_a_relabel_corrects_them() -> None:
    items = render("baseline", 40, 5, threat_rate=0.5, size=(64, 64), classes=["knife"])
    store, officers = Recorder(), Officers(error_rate=0.25, seed=3, false_class="knife")
    assert officers.decide_flagged(store, items, [{"verdict": "flag"}] * 40) == 40
    truth = {r.scan_id: r.threat for r in items}
    wrong = {d.scan_id for d in store.decisions if (d.decision == "confirmed") != truth[d.scan_id]}
    assert wrong == officers.wrong and 4 <= len(wrong) <= 18  # 25% of 40 = 10, binomial sd 2.7
    assert all(d.threat_class == "knife" for d in store.decisions if d.decision == "confirmed")
    some_wrong, some_right = sorted(wrong)[:3], [r.scan_id for r in items if r.scan_id not in wrong][:2]
    officers.label(store, some_wrong + some_right)
    assert officers.fixed == 3 and all(rec.labels == list(items[[r.scan_id for r in items].index(rec.scan_id)].labels)
                                       for rec in store.labels)
    assert Officers().decide_flagged(Recorder(), items, [{"verdict": "clear"}] * 40) == 0  # nothing flagged
    with pytest.raises(ValueError, match="error_rate"):
        Officers(error_rate=1.0)


@pytest.mark.training
def test_probe_reports_each_scenario_beside_baseline(tmp_path: Path) -> None:
    out = probe_class(tmp_path, "firearm", ["new_goods"], n_base=40, epochs=1, width=4, input_size=32, n_eval=30)
    assert (out["threat"], out["base"], out["width"], out["input"]) == ("firearm", 40, 4, 32)
    for name in ("baseline", "new_goods"):
        row = out[name]
        assert row["threats"] + row["benign"] == 30 and row["threats"] > 0 and row["benign"] > 0
        assert 0.0 <= row["auc"] <= 1.0 and 0.0 <= row["detection"] <= 1.0 and 0.0 <= row["false_alarms"] <= 1.0


@pytest.mark.training
def test_the_loop_runs_for_another_class_and_reports_the_candidate_on_both_sets(tmp_path: Path,
                                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    import bench.bench_maintenance as bench

    monkeypatch.setattr(bench, "STREAM_BASELINE", 12)
    monkeypatch.setattr(bench, "STREAM_DRIFT", 18)
    out = bench.scenario_runs(tmp_path, "new_goods", [4], n_base=30, epochs=1, retrain_epochs=1, threat="knife",
                              width=4, input_size=32, n_eval=20, officer_error=0.3)
    assert out["classes"] == ["knife"] and out["model"] == {"width": 4, "input_size": 32}
    assert out["officer_error"] == 0.3
    for run in out["runs"]:
        assert 0 <= run["errors_fixed"] <= run["officer_errors"] <= run["decided"]
    assert [(r["policy"], r["budget"]) for r in out["runs"]] == [("active", 4), ("random", 4)]
    for run in out["runs"]:
        assert run["labels"] <= 4 and 0 <= run["decided"] <= 30
        assert run["after"]["threats"] + run["after"]["benign"] == 20
        assert run["after_baseline"]["threats"] + run["after_baseline"]["benign"] == 20
