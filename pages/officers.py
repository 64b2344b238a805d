"""Officers (supervisors only): decisions per hour, time to decision, agreement with the AI and with adjudicated
outcomes, per officer, from analytics/officers.py over the store's `officer_decisions`; officer TIP hit rates
per officer and class over `tip_results`."""

from __future__ import annotations

from datetime import timedelta

import streamlit as st

from analytics import officers
from pages import _common as common

s = common.guard("officers")
store = common.store(s)
st.title("Officers")

days = st.slider("Window (days)", 1, 90, 7, key="officers_days")
end = common.now()
frame = common.attempt(lambda: store.officer_decisions(start=end - timedelta(days=days), end=end))
if frame is None:
    st.stop()
if frame.empty:
    st.info("No decisions in this window.")
    st.stop()
report = officers.officer_report(frame)
m1, m2, m3 = st.columns(3)
m1.metric("Decisions", f"{len(frame):,}")
m2.metric("Officers", f"{frame['officer'].nunique()}")
m3.metric("Audited items decided", f"{int(frame['audited'].sum()):,}")

st.subheader("Throughput")
st.caption("Decisions per active hour (clock hours with at least one decision); time to decision runs from the "
           "verdict to the officer's decision (queue wait plus handling), in minutes.")
st.dataframe(report.throughput, hide_index=True, key="officers_throughput")

st.subheader("Agreement with the AI")
st.caption("Share of decisions whose threat call matches the AI's (`inspect` = threat, `clear` = none; `uncertain` "
           "items and referrals are left out), with 95% Wilson intervals.")
st.dataframe(report.ai_agreement, hide_index=True, key="officers_ai")

st.subheader("Agreement with adjudicated outcomes")
if report.adjudicated_agreement.empty:
    st.info("No adjudicated items in this window.")
else:
    st.dataframe(report.adjudicated_agreement, hide_index=True, key="officers_adjudicated")

st.subheader("TIP tests (officer hit rate)")
tips = common.attempt(lambda: store.tip_results(start=end - timedelta(days=days), end=end))
if tips is None or tips.empty:
    st.info("No officer TIP tests decided in this window (monitoring.officer_tip_share sets how many canaries "
            "officers see).")
else:
    st.caption("Share of projected test threats each officer did not clear (confirmed, seized or referred), per "
               "class, with 95% Wilson intervals. TIP results are never decisions or labels.")
    st.dataframe(officers.tip_hit_rates(tips), hide_index=True, key="officers_tips")
