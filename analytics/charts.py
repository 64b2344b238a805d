"""Plotly figures for the pages and notebooks: pure functions, data in, go.Figure out (no Streamlit here)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from analytics.accuracy import RateEstimate
from analytics.drift import PsiResult
from analytics.whatif import CertifiedRegion, OperatingPoint
from xscreen.errors import XscreenError

ChartKind = Literal["bar", "line", "scatter", "histogram", "box"]
CHART_KINDS: tuple[ChartKind, ...] = ("bar", "line", "scatter", "histogram", "box")
_LAYOUT: dict[str, Any] = {"margin": {"l": 40, "r": 20, "t": 40, "b": 40}, "height": 320}


class ChartError(XscreenError):
    """A chart was asked for columns the data does not have."""

    title = "Cannot draw chart"


def class_scores(scores: Mapping[str, float], thresholds: Mapping[str, Any]) -> go.Figure:
    """Horizontal bars of each class's score with its clear/inspect thresholds as markers."""
    names = list(scores)
    fig = go.Figure(go.Bar(x=[scores[n] for n in names], y=names, orientation="h", name="score"))
    for kind, symbol in (("clear", "line-ns-open"), ("inspect", "line-ns")):
        xs = [_threshold(thresholds.get(n), kind) for n in names]
        fig.add_trace(go.Scatter(x=xs, y=names, mode="markers", name=f"{kind} threshold",
                                 marker={"symbol": symbol, "size": 18, "line": {"width": 3}}))
    fig.update_layout(**{**_LAYOUT, "height": 60 + 28 * len(names)}, xaxis={"range": [0, 1], "title": "probability"})
    return fig


def _threshold(value: Any, kind: str) -> float | None:
    if isinstance(value, Mapping):
        got = value.get(kind)
        return float(got) if got is not None else None
    return float(value) if isinstance(value, int | float) and kind == "inspect" else None


def volume_and_flag_rate(df: pd.DataFrame) -> go.Figure:
    """Bars of scans per time bucket and a line of the flag rate (columns bucket, n, flag_rate)."""
    _need(df, ["bucket", "n", "flag_rate"])
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    fig.add_trace(go.Bar(x=df["bucket"], y=df["n"], name="scans"), secondary_y=False)
    fig.add_trace(go.Scatter(x=df["bucket"], y=df["flag_rate"], name="flag rate", mode="lines+markers"),
                  secondary_y=True)
    fig.update_yaxes(title_text="scans", secondary_y=False)
    fig.update_yaxes(title_text="flag rate", range=[0, 1], tickformat=".0%", secondary_y=True)  # as the headline
    fig.update_layout(**_LAYOUT, title="Volume and flag rate")
    return fig


def score_distribution(result: PsiResult, class_name: str) -> go.Figure:
    """Reference vs current share per score bin, titled with the PSI."""
    centres = [(a + b) / 2 for a, b in zip(result.edges[:-1], result.edges[1:], strict=True)]
    fig = go.Figure([
        go.Bar(x=centres, y=result.reference_share, name="reference", opacity=0.6),
        go.Bar(x=centres, y=result.current_share, name="current", opacity=0.6),
    ])
    fig.update_layout(**_LAYOUT, barmode="overlay", title=f"{class_name}: PSI {result.psi:.3f}",
                      xaxis_title="score", yaxis_title="share")
    return fig


def rates_with_intervals(estimates: Mapping[str, RateEstimate], title: str) -> go.Figure:
    """Point estimates with their confidence intervals as error bars (rates in [0, 1])."""
    names = [n for n, e in estimates.items() if e.n > 0]
    rates = [estimates[n].rate for n in names]
    fig = go.Figure(go.Scatter(
        x=names, y=rates, mode="markers", marker={"size": 12},
        error_y={"type": "data", "symmetric": False,
                 "array": [estimates[n].high - estimates[n].rate for n in names],
                 "arrayminus": [estimates[n].rate - estimates[n].low for n in names]},
        text=[f"{estimates[n].k}/{estimates[n].n}" for n in names],
    ))
    fig.update_layout(**_LAYOUT, title=title, yaxis={"range": [0, 1.02]})
    return fig


def image_stats_by_scanner(df: pd.DataFrame, stat: str) -> go.Figure:
    """Median of one image statistic per scanner with its 5-95% range, from the `image_stats` query."""
    _need(df, ["scanner_id", f"{stat}_p05", f"{stat}_p50", f"{stat}_p95"])
    fig = go.Figure(go.Scatter(
        x=df["scanner_id"], y=df[f"{stat}_p50"], mode="markers", marker={"size": 12}, name="median",
        error_y={"type": "data", "symmetric": False, "array": df[f"{stat}_p95"] - df[f"{stat}_p50"],
                 "arrayminus": df[f"{stat}_p50"] - df[f"{stat}_p05"]}))
    fig.update_layout(**_LAYOUT, title=f"{stat} by scanner (median, 5-95%)", xaxis_title="scanner")
    return fig


def whatif_curve(points: Sequence[OperatingPoint], chosen: OperatingPoint, region: CertifiedRegion | None) -> go.Figure:
    """Detection rate against workload over thresholds; the chosen point marked, uncertified part greyed."""
    df = pd.DataFrame([p.__dict__ for p in points])
    certified = df["threshold"].map(region.contains) if region else pd.Series(True, index=df.index)
    fig = go.Figure()
    for ok, name, colour in ((True, "certified", "#1f77b4"), (False, "outside certificate", "#bbbbbb")):
        part = df[certified == ok]
        fig.add_trace(go.Scatter(x=part["workload"], y=part["detection_rate"], mode="markers", name=name,
                                 marker={"color": colour, "size": 5}, customdata=part["threshold"],
                                 hovertemplate="threshold %{customdata:.2f}<br>workload %{x:.1%}<br>detection %{y:.1%}"))
    fig.add_trace(go.Scatter(x=[chosen.workload], y=[chosen.detection_rate], mode="markers", name="chosen",
                             marker={"color": "red", "size": 14, "symbol": "x"}))
    fig.update_layout(**_LAYOUT, xaxis_title="workload (share of mail to officers)", yaxis_title="detection rate")
    return fig


def model_agreement(df: pd.DataFrame) -> go.Figure:
    """Champion vs shadow any-threat scores on the same scans (columns champion, shadow)."""
    _need(df, ["champion", "shadow"])
    fig = px.scatter(df, x="champion", y="shadow", opacity=0.5)
    fig.add_shape(type="line", x0=0, y0=0, x1=1, y1=1, line={"dash": "dot", "color": "grey"})
    fig.update_layout(**_LAYOUT, title="Champion vs shadow any-threat score")
    return fig


def sql_chart(df: pd.DataFrame, kind: ChartKind, x: str, y: str | None = None, color: str | None = None) -> go.Figure:
    """The analyst console's chart builder: one plotly express chart of a query result."""
    _need(df, [c for c in (x, y, color) if c])
    builders = {"bar": px.bar, "line": px.line, "scatter": px.scatter, "histogram": px.histogram, "box": px.box}
    if kind not in builders:
        raise ChartError(f"unknown chart kind {kind!r}; choose one of {', '.join(CHART_KINDS)}")
    fig = builders[kind](df, x=x, y=y, color=color)
    fig.update_layout(**_LAYOUT)
    return fig


def _need(df: pd.DataFrame, columns: list[str]) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ChartError(f"data has no column(s) {', '.join(missing)}; it has {', '.join(map(str, df.columns))}")


def verdicts_by_day(df: pd.DataFrame, by: Literal["scanner_id", "top_class"] = "scanner_id") -> go.Figure:
    """Stacked daily scan counts from the `verdicts_by_day` query, split by scanner or by top class."""
    _need(df, ["day", by, "n"])
    daily = df.groupby(["day", by], as_index=False)["n"].sum()
    fig = px.bar(daily, x="day", y="n", color=by)
    fig.update_layout(**_LAYOUT, title=f"Scans per day by {by.replace('_id', '').replace('_', ' ')}")
    return fig


def default_encoding(df: pd.DataFrame) -> tuple[str, str | None, str | None]:
    """A first guess for the SQL chart builder: x = first column, y = first numeric column after it,
    colour = another non-numeric column (e.g. scanner_id, verdict, n -> x scanner_id, y n, colour verdict)."""
    if df.columns.empty:
        raise ChartError("the result has no columns")
    cols = [str(c) for c in df.columns]
    numeric = [c for c in cols[1:] if pd.api.types.is_numeric_dtype(df[c])]
    others = [c for c in cols[1:] if c not in numeric]
    return cols[0], (numeric[0] if numeric else None), (others[0] if others else None)
