"""Live triage: the queue (highest risk first, refreshed in place), the selected scan, one-action decisions."""

from __future__ import annotations

import uuid
from functools import partial
from typing import Any

import pandas as pd
import streamlit as st

from analytics import charts, triage
from pages import _common as common
from pages import _region as region
from pages import _viewer as viewer
from xscreen.records import DecisionRecord, ScanDetail, seizure_box_problem

CURRENT = "triage_current"
REVEAL = "triage_tip_reveal"  # an officer TIP test just decided: what it was, shown once (store/tips.py)
MARKED = "triage_marked"  # (saved, message) about the region just marked, shown once after the rerun
# decision, button label, keyboard shortcut (Streamlit reserves C and R). Audit samples come through the same
# queue and look the same.
DECISIONS = [("cleared", "Clear", "1"), ("confirmed", "Confirm", "2"), ("seized", "Seize", "3"), ("refer", "Refer", "4")]
HELP = {"cleared": "false alarm", "confirmed": "threat found (class on the left)", "seized": "threat seized",
        "refer": "second opinion: leaves your queue and waits for another officer or a supervisor"}
# Streamlit's shortcuts ignore plain keys typed in a text field (so the note box types digits), and Esc does not
# leave a field by itself: this makes Esc drop the focus, so "type a note, Esc, 1" decides without the mouse.
ESC_LEAVES_FIELDS = """<script>
if (!window.xsEscLeavesFields) {
  window.xsEscLeavesFields = true;
  document.addEventListener("keydown", (e) => {
    const t = e.target;
    if (e.key === "Escape" && t && (t.tagName === "INPUT" || t.tagName === "TEXTAREA")) { t.blur(); }
  }, true);
}
</script>"""
QUEUE_COLUMNS = {"scan": st.column_config.TextColumn(width=135), "risk": st.column_config.TextColumn(width=75),
                 "class": st.column_config.TextColumn(width=110), "age": st.column_config.TextColumn(width=95)}
SIMILAR_SLOTS = 6  # thumbnails in the similar-items strip; fewer neighbours leave slots empty, never stretched

s = common.guard("triage")
cfg, store = common.settings(), common.store(s)
st.title("Live triage")


def open_item(scan_id: str) -> None:
    """Claim the item so no other officer works it, then show it."""
    if common.attempt(lambda: store.claim(scan_id, s.username)) is not None:
        st.session_state[CURRENT] = scan_id
        st.rerun()


def queue_table(df: pd.DataFrame) -> pd.DataFrame:
    """What the officer sees of each waiting item: no verdict text, so audit samples are indistinguishable. The age
    fits the narrow panel where a timestamp was cut off; the viewer shows the scanner and the received time."""
    now = common.now()
    out = pd.DataFrame({"scan": df["scan_id"], "risk": [triage.risk_text(p) for p in df["any_threat"]],
                        "class": df["top_class"],
                        "age": [triage.age_text(triage.as_utc(t), now) for t in df["received_at"]]})
    out["note"] = [f"referred by {r}" if isinstance(r, str) else ("yours" if c == s.username else "")
                   for r, c in zip(df["referred_by"], df["claimed_by"], strict=True)]
    return out


@st.fragment(run_every=cfg.app.refresh_s)
def queue_panel() -> None:
    df = common.attempt(lambda: store.queue(s.username, limit=cfg.app.queue_page_size))
    if df is None:
        return
    waiting = int(df["waiting"].iloc[0]) if len(df) else 0
    shown = f", the {len(df)} highest risk shown" if len(df) < waiting else ", highest risk first"
    st.caption(f"{waiting} item{'' if waiting == 1 else 's'} waiting{shown}")
    st.dataframe(queue_table(df), hide_index=True, height=420, key="triage_queue", column_config=QUEUE_COLUMNS)
    ids = df["scan_id"].tolist()
    if st.button("Open next", key="triage_next", shortcut="n", disabled=not ids, type="primary"):
        open_item(ids[0])
    pick = st.selectbox("Open item", ids, index=None, key="triage_pick", placeholder="scan id")
    # Act on a new choice only: after Release the same id is still selected and must not be re-opened.
    if pick and pick != st.session_state.get("triage_last_pick"):
        st.session_state["triage_last_pick"] = pick
        open_item(pick)


def record(scan: ScanDetail, decision: str, threat_class: str | None, note: str,
           box: region.Box | None) -> None:
    scan_id = scan["scan_id"]
    box = box if decision in ("confirmed", "seized") else None  # a region belongs to a threat found
    if box is not None and (problem := seizure_box_problem(box, scan["width"], scan["height"])):
        st.error(f"Fix the marked region first (nothing was recorded): {problem}")
        return
    rec = DecisionRecord(decision_id=uuid.uuid4().hex, scan_id=scan_id, officer=s.username, decision=decision,
                         threat_class=threat_class if decision in ("confirmed", "seized") else None,
                         note=note or None, decided_at=common.now())  # type: ignore[arg-type]
    common.require_action(s, "decide")
    if not common.act(lambda: store.record_decision(rec)):
        return
    st.session_state.pop(CURRENT, None)
    reveal = common.attempt(lambda: store.tip_reveal(scan_id, s.username))  # None for real mail
    if reveal is not None:
        st.session_state[REVEAL] = reveal.message
    elif box is not None and threat_class is not None:  # a TIP test's projected threat is no seizure
        st.session_state[MARKED] = region.save(store, cfg, s.username, scan, rec.decision_id, threat_class, box)
    st.toast(f"{scan_id}: {decision}")
    st.rerun()


def decision_bar(scan: ScanDetail, verdict: dict[str, Any], box: region.Box | None) -> None:
    scan_id = scan["scan_id"]
    classes = list(cfg.model.classes)
    top = verdict.get("top_class")
    c1, c2 = st.columns([1, 2])
    threat_class = c1.selectbox("Threat class", classes, index=classes.index(top) if top in classes else 0,
                                key="triage_class")
    note = c2.text_input("Note (optional)", key="triage_note", help="Esc leaves the box; then 1-4 decide.")
    st.html(ESC_LEAVES_FIELDS, unsafe_allow_javascript=True)
    if viewer.readable(scan) is not None:
        region.inputs(scan)
    for col, (decision, label, key) in zip(st.columns(len(DECISIONS)), DECISIONS, strict=True):
        if col.button(label, key=f"triage_{decision}", shortcut=key, help=HELP[decision], width="stretch"):
            record(scan, decision, threat_class, note, box)
    if st.button("Release", key="triage_release", help="give the item back to the queue undecided"):
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
    m1.metric("Risk (any threat)", triage.risk_text(verdict["any_threat"]) if verdict else "-")
    received = triage.as_utc(scan["received_at"])
    m2.markdown(f"**Scanner** {scan['scanner_id']}  \n**Received** {received:%Y-%m-%d %H:%M:%S} UTC "
                f"({triage.age_text(received, common.now())})  \n"
                f"**Model** {verdict['model_version'] if verdict else '-'}")
    box = region.current(scan, verdict, st.session_state.get("triage_class") or (verdict or {}).get("top_class"))
    viewer.show(scan, verdict, "triage", region=box)
    if verdict:
        st.plotly_chart(charts.class_scores(verdict["scores"], verdict.get("thresholds") or {}), key="triage_scores")
        decision_bar(scan, verdict, box)
    st.markdown(f"**Item** {scan.get('item_id') or '-'} · **declared contents**")
    st.dataframe(pd.DataFrame(scan.get("declared_contents") or []), hide_index=True)
    similar_strip(scan_id)


def similar_strip(scan_id: str) -> None:
    """Nearest decided/labelled items by embedding, with their outcome; drawn last so it never delays a decision."""
    similar = common.attempt(lambda: store.similar_items(scan_id, k=SIMILAR_SLOTS))
    if similar is None or not len(similar):
        return
    st.markdown("**Similar items and their outcomes**")
    slots = [col for _ in range(SIMILAR_SLOTS // 3) for col in st.columns(3)]  # rows of three
    for col, row in zip(slots, similar.itertuples(), strict=False):
        other = common.attempt(partial(store.get_scan, row.scan_id))
        thumb = viewer.thumbnail(other) if other else None
        if thumb is not None:
            col.image(thumb, width="stretch")
        col.caption(f"**{triage.outcome_text(row.decision, row.current_labels)}**  \nsimilarity {row.similarity:.2f}")


left, right = st.columns([1, 1])
with left:
    queue_panel()
with right:
    if REVEAL in st.session_state:
        st.warning(st.session_state.pop(REVEAL), icon=":material/target:")
    if MARKED in st.session_state:
        saved, message = st.session_state.pop(MARKED)
        (st.success if saved else st.error)(message)
    current = st.session_state.get(CURRENT)
    if current:
        detail(current)
    else:
        st.info("Open the next item (N) or pick one from the queue.")
