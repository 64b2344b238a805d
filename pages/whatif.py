"""Threshold what-if: pick a target detection rate or the officers' capacity; see workload, expected misses and
cost at that operating point, from labelled scores, restricted to the champion's certified region."""

from __future__ import annotations

from datetime import timedelta

import streamlit as st

from analytics import charts, whatif
from pages import _common as common

s = common.guard("whatif")
cfg, store = common.settings(), common.store(s)
st.title("Threshold what-if")

champion = common.attempt(store.champion)
if champion is None:
    st.info("No champion model yet.")
    st.stop()
try:
    region: whatif.CertifiedRegion | None = whatif.certified_region(champion.calibration)
except whatif.WhatIfError as err:
    region = None
    st.warning(f"{err} - every threshold is shown, none is certified.")
days = st.slider("Feedback window (days)", 1, 90, 30, key="whatif_days")
end = common.now()
window = {"start": (end - timedelta(days=days)).isoformat(), "end": end.isoformat(), "model_version": champion.version}
data = common.attempt(lambda: store.query("labelled_outcomes", **window))
live = common.attempt(lambda: store.query("class_score_sample", **window))
if data is None or live is None or live.empty:
    st.stop()
threats = data.loc[data["is_threat"].fillna(False).astype(bool), "any_threat"].to_numpy()
scores = live.loc[live["class_name"] == "any_threat", "score"].to_numpy()
st.caption(f"Detection from {len(threats):,} known threats; workload from {len(scores):,} live scans "
           f"of {champion.version}.")

c1, c2, c3 = st.columns(3)
mode = c1.radio("Choose by", ["Target detection rate", "Officer capacity"], key="whatif_mode")
prevalence = c2.number_input("Threat prevalence in live mail", 0.0001, 0.5, 0.01, format="%.4f", key="whatif_prev")
volume = c3.number_input("Items per day", 1, 10_000_000, 10_000, key="whatif_volume")
if mode == "Target detection rate":
    target = st.slider("Target detection rate", 0.5, 1.0, 1 - cfg.screening.alpha, 0.005, key="whatif_target")
    threshold = common.attempt(lambda: whatif.threshold_for_detection(threats, target))
else:
    cap = st.slider("Officer capacity (share of mail)", 0.01, 1.0, cfg.screening.officer_capacity, 0.01,
                    key="whatif_capacity")
    threshold = common.attempt(lambda: whatif.threshold_for_capacity(scores, cap))
if threshold is None:
    st.stop()
if region is not None and not region.contains(threshold):
    st.warning(f"Threshold {threshold:.3f} is outside the certified region (<= {region.high:.3f}, miss rate <= "
               f"{region.alpha:g}); showing the certified limit instead.")
    threshold = region.clamp(threshold)
point = common.attempt(lambda: whatif.operating_point(threats, scores, threshold, prevalence))
if point is None:
    st.stop()
m1, m2, m3, m4 = st.columns(4)
m1.metric("Threshold (any threat)", f"{point.threshold:.3f}")
m2.metric("Workload", f"{point.workload:.1%}")
m3.metric("Detection rate", f"{point.detection_rate:.1%}")
m4.metric("False-alarm rate", f"{point.false_alarm_rate:.1%}")
k1, k2, k3 = st.columns(3)
cost_miss = k1.number_input("Cost of a missed threat", 0.0, 1e9, 50_000.0, key="whatif_cost_miss")
cost_insp = k2.number_input("Cost of an inspection", 0.0, 1e6, 5.0, key="whatif_cost_insp")
cost = whatif.cost_view(point, int(volume), cost_miss, cost_insp)
k3.metric("Expected cost per day", f"{cost.total_cost:,.0f}")
st.table({"per day": {"inspections": f"{cost.inspections:,.1f}", "expected misses": f"{cost.expected_misses:,.2f}",
                      "false alarms": f"{cost.false_alarms:,.1f}", "cost of misses": f"{cost.miss_cost:,.0f}",
                      "cost of false alarms": f"{cost.inspection_cost:,.0f}"}})
curve = common.attempt(lambda: whatif.curve(threats, scores, prevalence))
if curve:
    st.plotly_chart(charts.whatif_curve(curve, point, region), key="whatif_curve")
