"""Chart builders return figures holding the data they were given, and name missing columns."""

import pandas as pd
import pytest

from analytics import charts, drift, whatif
from analytics.accuracy import rate_estimate


def test_class_scores_carries_scores_and_thresholds() -> None:
    fig = charts.class_scores({"knife": 0.8, "firearm": 0.1}, {"knife": {"clear": 0.2, "inspect": 0.6}})
    assert list(fig.data[0].x) == [0.8, 0.1]
    assert list(fig.data[2].x) == [0.6, None]


def test_volume_chart_needs_its_columns() -> None:
    df = pd.DataFrame({"bucket": [1, 2], "n": [10, 20], "flag_rate": [0.1, 0.2]})
    fig = charts.volume_and_flag_rate(df)
    assert list(fig.data[1].y) == [0.1, 0.2]
    assert fig.layout.yaxis2.tickformat == ".0%"  # percent ticks, like the page's "Flag rate 12.3%" headline
    with pytest.raises(charts.ChartError, match="flag_rate"):
        charts.volume_and_flag_rate(df.drop(columns="flag_rate"))


def test_score_distribution_titles_with_psi() -> None:
    fig = charts.score_distribution(drift.psi([0.1, 0.9], [0.1, 0.2], bins=2), "knife")
    assert fig.layout.title.text.startswith("knife: PSI ")


def test_rate_error_bars_match_interval_and_skip_empty() -> None:
    est = rate_estimate(8, 10)
    fig = charts.rates_with_intervals({"precision": est, "detection": rate_estimate(0, 0)}, "accuracy")
    assert list(fig.data[0].x) == ["precision"]
    assert fig.data[0].error_y.array[0] == pytest.approx(est.high - 0.8)


def test_whatif_curve_greys_uncertified_thresholds() -> None:
    points = whatif.curve([0.9, 0.8], [0.9, 0.8, 0.2, 0.1], prevalence=0.5, points=11)
    region = whatif.CertifiedRegion(0.0, 0.5, 0.05, 0.05)
    fig = charts.whatif_curve(points, points[3], region)
    assert len(fig.data[0].x) == 6 and len(fig.data[1].x) == 5


def test_sql_chart_rejects_unknown_kind_and_column() -> None:
    df = pd.DataFrame({"a": [1, 2], "b": [3, 4]})
    assert charts.sql_chart(df, "bar", "a", "b").data
    with pytest.raises(charts.ChartError, match="no column"):
        charts.sql_chart(df, "bar", "a", "zzz")
    with pytest.raises(charts.ChartError, match="unknown chart kind"):
        charts.sql_chart(df, "pie", "a", "b")  # type: ignore[arg-type]


def test_image_stats_error_bars_span_p05_to_p95() -> None:
    df = pd.DataFrame({"scanner_id": ["s1"], "noise_level_p05": [0.1], "noise_level_p50": [0.2],
                       "noise_level_p95": [0.5]})
    bar = charts.image_stats_by_scanner(df, "noise_level").data[0].error_y
    assert list(bar.array) == pytest.approx([0.3]) and list(bar.arrayminus) == pytest.approx([0.1])


def test_verdicts_by_day_sums_over_the_other_split() -> None:
    df = pd.DataFrame({"day": ["d1", "d1", "d1"], "scanner_id": ["a", "a", "b"], "top_class": ["x", "y", "x"],
                       "n": [1, 2, 4], "flagged": [0, 1, 1]})
    fig = charts.verdicts_by_day(df, by="scanner_id")
    assert {t.name: list(t.y) for t in fig.data} == {"a": [3], "b": [4]}


def test_default_encoding_picks_numeric_y_and_categorical_colour() -> None:
    df = pd.DataFrame({"scanner_id": ["a"], "verdict": ["clear"], "n": [3]})
    assert charts.default_encoding(df) == ("scanner_id", "n", "verdict")
    assert charts.default_encoding(pd.DataFrame({"x": [1]})) == ("x", None, None)
