"""Drift & accuracy: volume and flag rate, score distributions against the reference window, image statistics
per scanner, realized precision and detection rate with intervals, and open alerts."""

from __future__ import annotations

import streamlit as st

from analytics import accuracy, charts, drift
from analytics.monitoring import report as monitor_report
from pages import _common as common

s = common.guard("drift")
cfg, store = common.settings(), common.store(s)
st.title("Drift & accuracy")

options = common.attempt(lambda: store.filter_options())
scanners, models = drift.filter_choices(options) if options is not None else ([], [])
c1, c2, c3 = st.columns(3)
hours = c1.slider("Window (hours)", 1, 168, 24, key="drift_window")
scanner = c2.selectbox("Scanner", ["All", *scanners], key="drift_scanner")
model = c3.selectbox("Model version", ["All", *models], key="drift_model")
scanner_id = None if scanner == "All" else scanner
model_version = None if model == "All" else model
w = drift.windows(common.now(), hours, cfg.monitoring.reference_days)
window = {"start": w.start, "end": w.end}

st.subheader("Volume and flag rate")
counts = common.attempt(lambda: store.verdict_counts(bucket=w.bucket, **window))
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
ref = common.attempt(lambda: store.class_score_sample(start=w.reference_start, end=w.start, **filters))
cur = common.attempt(lambda: store.class_score_sample(**window, **filters))
if ref is not None and cur is not None and len(ref) and len(cur):
    ref_scores, cur_scores = drift.scores_by_class(ref), drift.scores_by_class(cur)
    report = drift.class_drift_report(ref_scores, cur_scores, psi_alert=cfg.monitoring.psi_alert)
    st.dataframe(drift.report_table(report), hide_index=True, key="drift_table")
    cls = st.selectbox("Class", [r.class_name for r in report.rows], key="drift_class")
    psi = drift.psi(ref_scores[cls], cur_scores[cls], threshold=cfg.monitoring.psi_alert)
    st.plotly_chart(charts.score_distribution(psi, cls), key="drift_hist")
else:
    st.info("Not enough verdicts in the reference or current window to compare.")

st.subheader("Image statistics per scanner")
stats = common.attempt(lambda: store.image_stats(scanner_id=scanner_id, **window))
if stats is not None and len(stats):
    stat = st.selectbox("Statistic", ["mean_attenuation", "noise_level", "dynamic_range", "organic_fraction",
                                      "inorganic_fraction", "metal_fraction"], key="drift_stat")
    st.plotly_chart(charts.image_stats_by_scanner(stats, stat), key="drift_stats")

st.subheader("Realized accuracy from officers' decisions and labels")
outcomes = common.attempt(lambda: store.labelled_outcomes(**window, **filters))
if outcomes is not None and len(outcomes):
    realized = accuracy.realized_accuracy(outcomes)
    precision, detection = realized.precision, realized.detection
    a1, a2 = st.columns(2)
    a1.metric("Realized precision", f"{precision.rate:.1%}" if precision.n else "-",
              help=f"{precision.k}/{precision.n}, 95% CI {precision.low:.1%}-{precision.high:.1%} (Wilson)")
    a2.metric("Detection rate", f"{detection.rate:.1%}" if detection.n else "-",
              help=f"{detection.k}/{detection.n}, 95% CI {detection.low:.1%}-{detection.high:.1%} (Wilson)")
    st.plotly_chart(charts.rates_with_intervals({"precision": precision, "detection rate": detection},
                                                "Accuracy with 95% intervals"), key="drift_accuracy")
else:
    st.info("No decided or labelled items in this window yet.")

st.subheader("Monitoring: latest measurements per scanner")
st.caption("Written by the monitoring job (`xscreen monitor`, or every monitoring.interval_s under serve); "
           "docs/MONITORING.md explains each statistic and its threshold.")
latest = common.attempt(lambda: store.latest_measurements())
if latest:
    st.dataframe(monitor_report.latest_table(latest), hide_index=True, key="drift_latest")
    checks = monitor_report.input_drift_table(latest)
    if len(checks):
        st.caption("Input-drift checks: moved when the effect reaches its floor and p is under the level, which "
                   "monitoring.drift_arl_items sets (false flags at most once per that many in-distribution scans).")
        st.dataframe(checks, hide_index=True, key="drift_checks")
    acc = monitor_report.accuracy_table(latest)
    if len(acc):
        st.caption("Realised detection (officers and labels, Wilson 95%) beside the label-free CBPE estimate.")
        st.dataframe(acc, hide_index=True, key="drift_cbpe")
else:
    st.info("The monitoring job has not run yet.")

st.subheader("Alerts")
alerts = common.attempt(lambda: [*store.list_alerts(status="open"), *store.list_alerts(status="acknowledged")])
if alerts:
    st.dataframe(monitor_report.alert_table(alerts), hide_index=True, key="drift_alerts")
    if common.allowed(s, "handle_alerts"):
        names = {a.alert_id: f"{a.kind} {a.details.get('scanner_id') or ''} ({a.status})" for a in alerts}
        chosen = st.selectbox("Alert", list(names), key="drift_alert_pick", format_func=names.__getitem__)
        b1, b2 = st.columns(2)
        for col, label, status in ((b1, "Acknowledge", "acknowledged"), (b2, "Resolve", "resolved")):
            if col.button(label, key=f"drift_alert_{status}"):
                common.require_action(s, "handle_alerts")
                if common.act(lambda: store.set_alert_status(chosen, status, actor=s.username)):  # noqa: B023
                    st.success(f"Alert {status}.")
                    st.rerun()
    else:
        st.caption("Supervisors and admins acknowledge and resolve alerts.")
else:
    st.success("No open alerts.")
