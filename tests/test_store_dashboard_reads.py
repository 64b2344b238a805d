"""The dashboard's read operations on a real migrated DuckDB file with hand-made rows and known answers."""

from pathlib import Path

import duckdb
import pytest

from analytics import drift
from store.api import OPERATIONS
from store.labels import labelled_outcomes
from store.migrations import migrate
from store.models import champion_shadow
from store.monitoring import class_score_sample
from store.scans import filter_options, verdicts_by_day

START, END = "2026-01-01 00:00+00", "2026-01-02 00:00+00"


@pytest.fixture
def con(tmp_path: Path) -> duckdb.DuckDBPyConnection:
    c = duckdb.connect(str(tmp_path / "x.duckdb"))
    migrate(c)
    c.execute("""INSERT INTO verdicts (scan_id, model_version, role, scanner_id, verdict, any_threat, scores,
                                       top_class, heatmap_size, scored_at) VALUES
        ('a', 'm1', 'champion', 's1', 'inspect', 0.9, MAP {'knife': 0.9, 'gun': 0.1}, 'knife', 0, '2026-01-01 10:05+00'),
        ('b', 'm1', 'champion', 's1', 'clear', 0.1, MAP {'knife': 0.1, 'gun': 0.05}, NULL, 0, '2026-01-01 10:35+00'),
        ('c', 'm1', 'champion', 's2', 'uncertain', 0.5, MAP {'knife': 0.2, 'gun': 0.5}, 'gun', 0, '2026-01-01 11:10+00'),
        ('c', 'm2', 'shadow', 's2', 'inspect', 0.7, MAP {'knife': 0.2, 'gun': 0.7}, 'gun', 0, '2026-01-01 11:10+00'),
        ('z', 'm1', 'champion', 's1', 'inspect', 0.8, MAP {'knife': 0.8, 'gun': 0.1}, 'knife', 0, '2026-01-03 10:00+00')""")
    c.execute("""INSERT INTO decisions VALUES
        ('d1', 'a', 'ann', 'confirmed', 'knife', NULL, '2026-01-01 10:10+00', 'm1'),
        ('d2', 'c', 'ann', 'refer', NULL, NULL, '2026-01-01 11:15+00', 'm1'),
        ('d3', 'c', 'bob', 'cleared', NULL, NULL, '2026-01-01 11:20+00', 'm1')""")
    c.execute("INSERT INTO labels VALUES ('l1', 'b', ['knife'], 'audit', 'sue', '2026-01-01 12:00+00', NULL)")
    return c


def test_dashboard_reads_are_declared_read_operations() -> None:
    for fn in (class_score_sample, labelled_outcomes, champion_shadow, verdicts_by_day, filter_options):
        assert OPERATIONS[fn.__name__].fn is fn and OPERATIONS[fn.__name__].kind == "read"


def test_class_score_sample_has_every_class_and_any_threat(con: duckdb.DuckDBPyConnection) -> None:
    by_class = drift.scores_by_class(class_score_sample(con, START, END))
    assert sorted(by_class["any_threat"].tolist()) == [0.1, 0.5, 0.9]  # shadow and next-day rows excluded
    assert sorted(by_class["gun"].tolist()) == [0.05, 0.1, 0.5]


def test_class_score_sample_filters_scanner(con: duckdb.DuckDBPyConnection) -> None:
    df = class_score_sample(con, START, END, scanner_id="s2")
    assert sorted(df["class_name"]) == ["any_threat", "gun", "knife"]


def test_labelled_outcomes_take_labels_over_decisions_and_skip_referrals(con: duckdb.DuckDBPyConnection) -> None:
    df = labelled_outcomes(con, START, END).set_index("scan_id")
    assert df.loc["a", "is_threat"] and df.loc["b", "is_threat"] and not df.loc["c", "is_threat"]
    assert df.loc["c", "decision"] == "cleared"  # the refer before it is not final
    assert df["flagged"].to_dict() == {"a": True, "b": False, "c": True}


def test_champion_shadow_pairs_same_scan(con: duckdb.DuckDBPyConnection) -> None:
    df = champion_shadow(con, START, END)
    assert df[["scan_id", "champion", "shadow"]].values.tolist() == [["c", 0.5, 0.7]]


def test_verdicts_by_day_counts_flagged(con: duckdb.DuckDBPyConnection) -> None:
    df = verdicts_by_day(con, START, "2026-01-04 00:00+00")
    assert df[["scanner_id", "top_class", "n", "flagged"]].values.tolist() == [
        ["s1", "knife", 1, 1], ["s1", "none", 1, 0], ["s2", "gun", 1, 1], ["s1", "knife", 1, 1]]


def test_filter_options_lists_scanners_and_models(con: duckdb.DuckDBPyConnection) -> None:
    df = filter_options(con)
    assert df.values.tolist() == [["model", "m1"], ["model", "m2"], ["scanner", "s1"], ["scanner", "s2"]]
