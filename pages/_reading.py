"""The Relabelling page's double-reading parts: a reader's blind reading of a high-risk item, the supervisors'
adjudication queue, and per-reader agreement (Cohen's kappa, analytics.agreement). Thin: store reads and writes
through the signed-in person's session, numbers from analytics."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any

import pandas as pd
import streamlit as st

from analytics import agreement
from pages import _common as common
from pages import _session as sessions

OPEN = ("needs two readings", "awaiting second reading")  # statuses in which the reader may still read
BARRED = "decided by you at triage"  # store/readings.py DECIDED: the store refuses this reader's reading


def readable(queue: pd.DataFrame, status: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The queue and its reading statuses without the items this reader may not read (decided at triage)."""
    barred = status["scan_id"][status["status"] == BARRED]
    return queue[~queue["scan_id"].isin(barred)], status[~status["scan_id"].isin(barred)]


def _labels_text(labels: Any) -> str:
    return ", ".join(labels) if labels is not None and len(labels) else "benign"


def blind(queue: pd.DataFrame, status: pd.DataFrame) -> pd.DataFrame:
    """The queue with each item's double-reading status; labels of double-read items hidden (read blind)."""
    merged = queue.merge(status[["scan_id", "double_read", "status"]], on="scan_id", how="left")
    hide = merged["double_read"].fillna(False).astype(bool)
    for col in ("current_labels", "label_source"):
        if col in merged:
            merged[col] = merged[col].where(~hide, None)
    return merged.rename(columns={"status": "reading"})


def read_item(store: Any, s: sessions.Session, scan_id: str, row: pd.Series, classes: Sequence[str],
              done: Callable[[str], None]) -> None:
    """A high-risk item: no label history, no current label; the reader's own reading, or the form to give it."""
    st.markdown(f"**Blind double reading** ({int(row['readings'])} of 2 readings given): earlier labels stay hidden "
                "so that each reading is independent.")
    if row["my_labels"] is not None:
        st.info(f"Your reading: {_labels_text(row['my_labels'])}. Status: {row['status']}.")
        return
    if row["status"] not in OPEN:
        st.info(f"Status: {row['status']}.")
        return
    chosen = st.multiselect("Your reading (none = benign)", list(classes), key="relabel_reading_labels")
    note = st.text_input("Note", key="relabel_reading_note")
    if st.button("Save my reading", key="relabel_read", type="primary"):
        common.require_action(s, "relabel")
        result: list[str] = []
        # One id per item and session: a click sent again after a lost answer is the same reading, not a refusal.
        reading_id = st.session_state.setdefault(f"relabel_reading_id_{scan_id}", uuid.uuid4().hex)
        if common.act(lambda: result.append(store.add_reading(scan_id, sorted(chosen), reader=s.username,
                                                              note=note or None, reading_id=reading_id))):
            done(f"Reading saved on {scan_id}: {result[0]}.")


def adjudication(store: Any, s: sessions.Session, classes: Sequence[str], done: Callable[[str], None]) -> None:
    """Disputed double readings: both readings side by side, and the final label a supervisor records."""
    waiting = common.attempt(lambda: store.adjudication_queue())
    if waiting is None or waiting.empty:
        st.info("No disputed double readings.")
        return
    st.dataframe(waiting, hide_index=True, key="relabel_adjudication_table")
    pick = st.selectbox("Disputed item", waiting["scan_id"].tolist(), key="relabel_adjudication_pick")
    row = waiting.set_index("scan_id").loc[pick]
    for k in ("1", "2"):
        st.markdown(f"**{row[f'reader_{k}']}** read: {_labels_text(row[f'labels_{k}'])}"
                    + (f" ({row[f'note_{k}']})" if row[f"note_{k}"] else ""))
    final = st.multiselect("Final labels (none = benign)", list(classes), key="relabel_adjudication_labels")
    note = st.text_input("Reason", key="relabel_adjudication_note")
    if st.button("Record the final label", key="relabel_adjudication_save", type="primary"):
        common.require_action(s, "adjudicate")
        if common.act(lambda: store.adjudicate(pick, sorted(final), supervisor=s.username, note=note or None)):
            done(f"Adjudicated {pick}: {_labels_text(final)}.")


def agreement_tab(store: Any) -> None:
    """Per-reader Cohen's kappa over the double readings completed in the chosen window."""
    days = st.slider("Double readings completed in the last (days)", 1, 365, 90, key="relabel_agreement_days")
    since = (common.now() - timedelta(days=days)).isoformat()
    pairs = common.attempt(lambda: store.double_read_pairs(since=since))
    if pairs is None or pairs.empty:
        st.info("No completed double readings in this window.")
        return
    st.dataframe(agreement.per_reader(pairs).round(3), hide_index=True, key="relabel_agreement_table")
    st.caption("kappa: each reader against the other reader of the same items; kappa_adjudicated: against the "
               "supervisor's ruling on the items they adjudicated. A reading is its set of labels; intervals are "
               "Cohen's 95 % large-sample ones; an empty kappa means chance explains all agreement (one category).")
