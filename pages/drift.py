"""Drift & accuracy: volume and flag rate, score distributions against the reference window, image statistics
per scanner, realized precision and detection rate with intervals, and open alerts."""

from __future__ import annotations

from datetime import timedelta

import pandas as pd
import streamlit as st

from analytics import accuracy, charts, drift
from pages import _common as common

s = common.guard("drift")
cfg, store = common.settings(), common.store(s)
st.title("Drift & accuracy")

options = common.attempt(lambda: store.query("filter_options"))
options = options if options is not None else pd.DataFrame({"kind": [], "value": []})
c1, c2, c3 = st.columns(3)
hours = c1.slider("Window (hours)", 1, 168, 24, key="drift_window")
scanner = c2.selectbox("Scanner", ["All", *options.loc[options["kind"] == "scanner", "value"]], key="drift_scanner")
model = c3.selectbox("Model version", ["All", *options.loc[options["kind"] == "model", "value"]], key="drift_model")
scanner_id = None if scanner == "All" else scanner
model_version = None if model == "All" else model
end = common.now()
start = end - timedelta(hours=hours)
ref_start = start - timedelta(days=cfg.monitoring.reference_days)
window = {"start": start.isoformat(), "end": end.isoformat()}

st.subheader("Volume and flag rate")
bucket = "hour" if hours > 6 else "minute"
counts = common.attempt(lambda: store.query("verdict_counts", bucket=bucket, **window))
if counts is not None and len(counts):
    series = drift.volume_series(counts, scanner_id, model_version)
    total = drift.total_flag_rate(series)
    m1, m2 = st.columns(2)
    m1.metric("Scans in window", f"{total.n:,}")
    m2.metric("Flag rate", f"{total.rate:.1%}")
    st.plotly_chart(charts.volume_and_flag_rate(series), key="drift_volume")
else:
    st.info("No verdicts in this window.")

st.subheader("Score distributions: current window vs reference")
st.caption(f"Reference: the {cfg.monitoring.reference_days:g} days before the window. "
           f"PSI above {cfg.monitoring.psi_alert} is flagged.")
filters = {"scanner_id": scanner_id, "model_version": model_version}
ref = common.attempt(lambda: store.query("class_score_sample", start=ref_start.isoformat(), end=start.isoformat(),
                                         **filters))
cur = common.attempt(lambda: store.query("class_score_sample", **window, **filters))
if ref is not None and cur is not None and len(ref) and len(cur):
    ref_scores, cur_scores = drift.scores_by_class(ref), drift.scores_by_class(cur)
    report = drift.class_drift_report(ref_scores, cur_scores, psi_alert=cfg.monitoring.psi_alert)
    st.dataframe(pd.DataFrame([r.__dict__ for r in report.rows]).round(4), hide_index=True, key="drift_table")
    cls = st.selectbox("Class", [r.class_name for r in report.rows], key="drift_class")
    psi = drift.psi(ref_scores[cls], cur_scores[cls], threshold=cfg.monitoring.psi_alert)
    st.plotly_chart(charts.score_distribution(psi, cls), key="drift_hist")
else:
    st.info("Not enough verdicts in the reference or current window to compare.")

st.subheader("Image statistics per scanner")
stats = common.attempt(lambda: store.query("image_stats", scanner_id=scanner_id, **window))
if stats is not None and len(stats):
    stat = st.selectbox("Statistic", ["mean_attenuation", "noise_level", "dynamic_range", "organic_fraction",
                                      "inorganic_fraction", "metal_fraction"], key="drift_stat")
    st.plotly_chart(charts.image_stats_by_scanner(stats, stat), key="drift_stats")

st.subheader("Realized accuracy from officers' decisions and labels")
outcomes = common.attempt(lambda: store.query("labelled_outcomes", **window, **filters))
if outcomes is not None and len(outcomes):
    flagged = outcomes[outcomes["flagged"]]
    precision = accuracy.realized_precision(flagged["decision"].dropna().tolist())
    detection = accuracy.detection_rate(outcomes["flagged"].tolist(), outcomes["is_threat"].fillna(False).tolist())
    a1, a2 = st.columns(2)
    a1.metric("Realized precision", f"{precision.rate:.1%}" if precision.n else "-",
              help=f"{precision.k}/{precision.n}, 95% CI {precision.low:.1%}-{precision.high:.1%} (Wilson)")
    a2.metric("Detection rate", f"{detection.rate:.1%}" if detection.n else "-",
              help=f"{detection.k}/{detection.n}, 95% CI {detection.low:.1%}-{detection.high:.1%} (Wilson)")
    st.plotly_chart(charts.rates_with_intervals({"precision": precision, "detection rate": detection},
                                                "Accuracy with 95% intervals"), key="drift_accuracy")
else:
    st.info("No decided or labelled items in this window yet.")

st.subheader("Open alerts")
alerts = common.attempt(lambda: store.list_alerts(status="open"))
if alerts:
    st.dataframe(pd.DataFrame([a.model_dump() for a in alerts]), hide_index=True, key="drift_alerts")
else:
    st.success("No open alerts.")
