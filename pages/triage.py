"""Live triage: the queue (highest risk first, refreshed in place), the selected scan, one-action decisions."""

from __future__ import annotations

import uuid
from typing import Any

import pandas as pd
import streamlit as st

from analytics import charts
from analytics.records import DecisionRecord
from pages import _common as common
from pages import _viewer as viewer

CURRENT = "triage_current"
# decision, button label, keyboard shortcut (Streamlit reserves C and R). Audit samples come through the same
# queue and look the same.
DECISIONS = [("cleared", "Clear", "1"), ("confirmed", "Confirm", "2"), ("seized", "Seize", "3"), ("refer", "Refer", "4")]
HELP = {"cleared": "false alarm", "confirmed": "threat found (class on the left)", "seized": "threat seized",
        "refer": "second opinion: stays in the queue, marked referred"}

s = common.guard("triage")
cfg, store = common.settings(), common.client()
st.title("Live triage")


def open_item(scan_id: str) -> None:
    """Claim the item so no other officer works it, then show it."""
    if common.attempt(lambda: store.claim(scan_id, s.username)) is not None:
        st.session_state[CURRENT] = scan_id
        st.rerun()


def queue_table(df: pd.DataFrame) -> pd.DataFrame:
    """What the officer sees of each waiting item: no verdict text, so audit samples are indistinguishable."""
    out = pd.DataFrame({"scan": df["scan_id"], "risk": df["any_threat"].round(3), "class": df["top_class"],
                        "scanner": df["scanner_id"], "received": df["received_at"]})
    out["note"] = ["referred" if r else ("yours" if c == s.username else "") for r, c in
                   zip(df["referred"], df["claimed_by"], strict=True)]
    return out


@st.fragment(run_every=cfg.app.refresh_s)
def queue_panel() -> None:
    df = common.attempt(lambda: store.queue(s.username, limit=cfg.app.queue_page_size))
    if df is None:
        return
    st.caption(f"{len(df)} items waiting (highest risk first)")
    st.dataframe(queue_table(df), hide_index=True, height=420)
    ids = df["scan_id"].tolist()
    if st.button("Open next", key="triage_next", shortcut="n", disabled=not ids, type="primary"):
        open_item(ids[0])
    pick = st.selectbox("Open item", ids, index=None, key="triage_pick", placeholder="scan id")
    # Act on a new choice only: after Release the same id is still selected and must not be re-opened.
    if pick and pick != st.session_state.get("triage_last_pick"):
        st.session_state["triage_last_pick"] = pick
        open_item(pick)


def record(scan_id: str, decision: str, threat_class: str | None, note: str) -> None:
    rec = DecisionRecord(decision_id=uuid.uuid4().hex, scan_id=scan_id, officer=s.username, decision=decision,
                         threat_class=threat_class if decision in ("confirmed", "seized") else None,
                         note=note or None, decided_at=common.now())  # type: ignore[arg-type]
    common.require_action(s, "decide")
    if not common.act(lambda: store.record_decision(rec)):
        return
    st.session_state.pop(CURRENT, None)
    st.toast(f"{scan_id}: {decision}")
    st.rerun()


def decision_bar(scan_id: str, verdict: dict[str, Any]) -> None:
    classes = list(cfg.model.classes)
    top = verdict.get("top_class")
    c1, c2 = st.columns([1, 2])
    threat_class = c1.selectbox("Threat class", classes, index=classes.index(top) if top in classes else 0,
                                key="triage_class")
    note = c2.text_input("Note (optional)", key="triage_note")
    cols = st.columns(len(DECISIONS) + 1)
    for col, (decision, label, key) in zip(cols, DECISIONS, strict=False):
        if col.button(label, key=f"triage_{decision}", shortcut=key, help=HELP[decision], width="stretch"):
            record(scan_id, decision, threat_class, note)
    if cols[-1].button("Release", key="triage_release", width="stretch"):
        common.attempt(lambda: store.release(scan_id, s.username))
        st.session_state.pop(CURRENT, None)
        st.rerun()


def detail(scan_id: str) -> None:
    scan = common.attempt(lambda: store.get_scan(scan_id))
    if scan is None:
        st.session_state.pop(CURRENT, None)
        return
    verdict = next((v for v in scan["verdicts"] if v["role"] == "champion"), None)
    st.subheader(f"Scan {scan_id}")
    m1, m2 = st.columns([1, 3])
    m1.metric("Risk (any threat)", f"{verdict['any_threat']:.2f}" if verdict else "-")
    m2.markdown(f"**Scanner** {scan['scanner_id']}  \n**Received** {str(scan['received_at'])[:19]} UTC  \n"
                f"**Model** {verdict['model_version'] if verdict else '-'}")
    viewer.show(scan, verdict, "triage")
    if verdict:
        st.plotly_chart(charts.class_scores(verdict["scores"], verdict.get("thresholds") or {}), key="triage_scores")
        decision_bar(scan_id, verdict)
    st.markdown(f"**Item** {scan.get('item_id') or '-'} · **declared contents**")
    st.dataframe(pd.DataFrame(scan.get("declared_contents") or []), hide_index=True)
    similar_strip(scan_id)


def similar_strip(scan_id: str) -> None:
    """Nearest decided/labelled items by embedding, with their outcome; drawn last so it never delays a decision."""
    similar = common.attempt(lambda: store.similar_items(scan_id, k=6))
    if similar is None or not len(similar):
        return
    st.markdown("**Similar items and their outcomes**")
    for col, row in zip(st.columns(len(similar)), similar.itertuples(), strict=True):
        other = common.attempt(lambda r=row: store.get_scan(r.scan_id))
        thumb = viewer.thumbnail(other["source_path"]) if other else None
        if thumb is not None:
            col.image(thumb, width="stretch")
        known = row.current_labels  # an array from Arrow, or NA when the item has no label
        labels = ", ".join(map(str, known)) if hasattr(known, "__len__") and not isinstance(known, str) else ""
        col.caption(f"**{row.decision or 'labelled'}** {labels}  \nsimilarity {row.similarity:.2f}")


left, right = st.columns([2, 3])
with left:
    queue_panel()
with right:
    current = st.session_state.get(CURRENT)
    if current:
        detail(current)
    else:
        st.info("Open the next item (N) or pick one from the queue.")
