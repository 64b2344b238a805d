"""Models: the registry (versions, metrics, thresholds, state), what serving follows now (champion, shadow and
its progress), each model's lineage, champion vs shadow on live traffic, and promotion / rollback for
supervisors, with a confirmation; the store owner writes the audit entry and serving follows within seconds."""

from __future__ import annotations

from datetime import timedelta

import pandas as pd
import streamlit as st

from analytics import accuracy, adaptation, charts
from pages import _common as common

s = common.guard("models")
cfg, store = common.settings(), common.store(s)
st.title("Models")

models = common.attempt(store.list_models) or []
if not models:
    st.info("No model is registered yet (`xscreen train` registers one).")
    st.stop()
registry = pd.DataFrame([{"version": m.version, "state": m.state, "scope": m.scanner_id or "", "parent": m.parent,
                          "created_at": m.created_at,
                          "classes": len(m.classes), **{k: v for k, v in m.metrics.items()
                                                        if isinstance(v, int | float)}} for m in models])
st.dataframe(registry, hide_index=True, key="models_table")
live = common.attempt(store.models_in_force) or []
in_force = {m.role: m for m in live if m.scanner_id is None or m.role == "shadow"}  # fleet champion, the shadow
scoped = {m.scanner_id: m.version for m in live if m.scanner_id is not None and m.role == "champion"}
f1, f2 = st.columns(2)
if "champion" in in_force:
    f1.metric("Champion in force", in_force["champion"].version,
              help=f"thresholds version {in_force['champion'].thresholds_version}; serving follows the store")
progress = common.attempt(store.shadow_progress) if "shadow" in in_force else None
if progress:
    shadow_scope = f"scanner {progress['scanner_id']}'s items" if progress.get("scanner_id") else "all items"
    f2.metric("Shadow", progress["version"], help=f"scoring {shadow_scope} beside the champion, never shown")
    if progress.get("scanner_id"):
        f2.caption(f"Scores scanner {progress['scanner_id']} only.")
    f2.caption(f"{progress['scored']} scans scored, {progress['threats']} of them threats by their truth")
if scoped:
    f1.caption("Scanners with their own champion: " + ", ".join(f"{k} → {v}" for k, v in sorted(scoped.items())))
version = st.selectbox("Model version", [m.version for m in models], key="models_version")
chosen = next(m for m in models if m.version == version)
t1, t2, t3, t4, t5 = st.tabs(["Thresholds", "Metrics", "Calibration certificate", "Lineage", "Gate"])
t1.dataframe(pd.DataFrame(chosen.thresholds).T, key="models_thresholds")
t1.caption(f"Thresholds version {chosen.thresholds_version}: the one copy in force, applied live.")
t2.json(chosen.metrics)
t3.json(chosen.calibration)
lineage = common.attempt(lambda: store.model_lineage(version))
if lineage:
    t4.write(f"Parent chain: {' → '.join([version, *lineage['ancestors']])}")
    t4.write(f"Training-data manifest: `{lineage['train_manifest_sha256'] or '-'}`")
    t4.write(f"Last promoted by {lineage['promoted_by'] or '-'} at {lineage['promoted_at'] or '-'}")
    t4.dataframe(pd.DataFrame(lineage["events"]), hide_index=True, key="models_events")
for line in adaptation.adaptation_lines(chosen.metrics):  # an adapted model: for which scanner, on what it rests
    t4.write(line)
reports = common.attempt(lambda: store.gate_reports(version)) or []
if reports:
    latest = reports[0]
    t5.metric(f"Gate against {latest.champion}", "passed" if latest.passed else "failed",
              help=f"run at {latest.created_at:%Y-%m-%d %H:%M} UTC; {len(reports)} report(s) in all")
    for reason in latest.report.get("reasons", []):  # why it failed, in words (better where the drift is, too)
        t5.error(reason)
    t5.json(latest.report)
else:
    t5.info(f"No gate report for {version} yet (`xscreen gate {version}`).")

st.subheader("Champion vs shadow on live traffic")
hours = st.slider("Window (hours)", 1, 168, 24, key="models_window")
end = common.now()
pairs = common.attempt(lambda: store.champion_shadow(start=(end - timedelta(hours=hours)).isoformat(),
                                           end=end.isoformat()))
if pairs is not None and len(pairs):
    agree = accuracy.verdict_agreement(pairs["champion_verdict"].tolist(), pairs["shadow_verdict"].tolist())
    st.metric("Routing agreement", f"{agree.rate:.1%}",
              help=f"{agree.k}/{agree.n} scans routed the same way; 95% CI {agree.low:.1%}-{agree.high:.1%}")
    st.plotly_chart(charts.model_agreement(pairs), key="models_agreement")
else:
    st.info("No scans scored by both a champion and a shadow in this window.")

st.subheader("Retrain")
base = ", ".join(str(p) for p in cfg.monitoring.retrain_base) or "no base folder (monitoring.retrain_base)"
st.caption(f"Fine-tunes the champion on {base} plus every live label, recalibrates and re-certifies, and registers "
           "a candidate (then: the gate). The supervisor runs requests one at a time, at low priority; alert kinds "
           f"in monitoring.retrain_on request one by themselves ({', '.join(cfg.monitoring.retrain_on) or 'none'}).")
if common.allowed(s, "retrain"):
    r1, r2 = st.columns(2)
    retrain_name = r1.text_input("Candidate name", f"retrain-{common.now():%Y%m%d-%H%M%S}", key="models_retrain_name")
    retrain_why = r2.text_input("Why (kept with the request)", key="models_retrain_reason")
    if st.button("Request retraining", key="models_retrain", disabled=not retrain_why.strip()):
        common.require_action(s, "retrain")
        asked = common.attempt(lambda: store.request_retrain(retrain_name.strip(), retrain_why, s.username))
        if asked is not None:
            st.success(f"Requested {asked.name}: it runs when the supervisor takes it; then `xscreen gate {asked.name}`.")
requests = common.attempt(lambda: store.retrain_requests(limit=20)) or []
if requests:
    st.dataframe(pd.DataFrame([r.model_dump() for r in requests])[
        ["name", "status", "requested_by", "requested_at", "started_at", "finished_at", "reason", "message"]],
        hide_index=True, key="models_retrain_requests")

st.subheader("Change state")
if not common.allowed(s, "promote"):
    st.caption("Only supervisors and admins may promote or roll back models.")
    st.stop()
c1, c2 = st.columns(2)
target = c1.selectbox("New state", ["champion", "shadow", "candidate", "retired"], key="models_state")
reason = c2.text_input("Reason (recorded in the audit log)", key="models_reason")
scanner = c1.text_input("Scanner (a champion or shadow for that scanner only; empty: the whole fleet)",
                        key="models_scanner")
scope = scanner.strip() or None
where = f" for scanner {scope}" if scope else ""
confirm = st.checkbox(f"I confirm: set {version} to {target}{where}", key="models_confirm")
force = st.checkbox("Promote without a passing gate report (recorded in the audit log)", key="models_force")
if st.button("Apply", key="models_apply", disabled=not (confirm and reason), type="primary"):
    common.require_action(s, "promote")
    if common.act(lambda: store.set_model_state(version, target, actor=s.username, reason=reason, force=force,
                                                scanner=scope)):
        st.success(f"{version} is now {target}{where}. Serving follows within seconds, without a restart.")
rb_confirm = st.checkbox(f"I confirm: roll back to the previous champion{where}", key="models_rb_confirm")
if st.button("Roll back", key="models_rollback", disabled=not (rb_confirm and reason)):
    common.require_action(s, "rollback")
    back = common.attempt(lambda: store.rollback(actor=s.username, reason=reason, scanner=scope))
    if back:
        st.success(f"Rolled back{where}: {back} is champion again.")
