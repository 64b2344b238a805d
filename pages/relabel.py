"""Relabelling: the day's active queue (officer/model disagreements, label-error suspects, uncertain items, drifted
regions of embedding space and a random slice, within `app.relabel_budget`); view, set or correct multi-labels,
bulk actions, blind double reading of high-risk items (labelling.double_read_*), supervisor adjudication of
conflicting labels and disputed readings, per-reader agreement, and export of a training set for `xscreen train`."""

from __future__ import annotations

import uuid
from functools import partial
from typing import Any

import pandas as pd
import streamlit as st

from analytics import labelling
from pages import _common as common
from pages import _reading as reading
from pages import _viewer as viewer
from xscreen.records import LabelRecord

FLASH = "relabel_flash"  # the message of a save, shown after the rerun that re-reads the saved labels
s = common.guard("relabel")
cfg, store = common.settings(), common.store(s)
classes = [*cfg.model.classes, "threat"]
st.title("Relabelling")


def done(message: str) -> None:
    st.session_state[FLASH] = message
    st.rerun()  # everything above (current labels, history, the queue) is re-read from the store


def save(scan_ids: list[str], labels: list[str], source: str, note: str | None = None) -> None:
    common.require_action(s, "adjudicate" if source == "adjudication" else "relabel")
    recs = [LabelRecord(label_id=uuid.uuid4().hex, scan_id=i, labels=sorted(labels), source=source,  # type: ignore[arg-type]
                        author=s.username, created_at=common.now(), note=note) for i in scan_ids]
    if common.act(lambda: store.add_labels(recs)):
        done(f"Saved {', '.join(sorted(labels)) or 'benign'} on {len(recs)} item(s) ({source}).")


if FLASH in st.session_state:
    st.success(st.session_state.pop(FLASH))


def active() -> pd.DataFrame:
    """Today's queue within the budget: suspects and disagreements first, uncertain items, cleared items nearest
    their threshold, drifted regions of embedding space, a random slice."""
    d = cfg.labelling
    policy = labelling.DiversityPolicy(share=d.drift_share, recent_days=d.drift_recent_days,
                                       reference_days=d.drift_reference_days, per_window=d.drift_max_scans)
    return labelling.todays_queue(store, budget=cfg.app.relabel_budget, random_share=cfg.app.relabel_random_share,
                                  now=common.now(), diversity=policy, borderline_share=d.borderline_share)


def labels_panel(pick: str, scan: dict[str, Any]) -> None:
    """An item read once: current labels, history, set or correct them; adjudicate when labellers disagree."""
    current = scan.get("current_labels")
    st.markdown(f"**Current labels:** {', '.join(current) if current else ('benign' if current == [] else '-')}")
    history = scan.get("labels") or []
    st.dataframe(pd.DataFrame(history, columns=["created_at", "author", "source", "labels", "note"]),
                 hide_index=True, key="relabel_history")
    chosen = st.multiselect("Labels (none = benign)", classes, default=[c for c in (current or [])
                            if c in classes], key="relabel_labels")
    note = st.text_input("Note", key="relabel_note")
    if st.button("Save labels", key="relabel_save", type="primary"):
        save([pick], chosen, "relabel", note or None)
    if labelling.label_conflict(history):
        st.warning("Labellers disagree on this item.")
        if common.allowed(s, "adjudicate") and st.button("Adjudicate with these labels", key="relabel_adjudicate"):
            save([pick], chosen, "adjudication", note or None)


def queue_tab() -> None:
    """Today's queue (labels of items read twice hidden), bulk labelling, and one item to read or label."""
    queue = common.attempt(active)
    if queue is None or queue.empty:
        st.info("Nothing to relabel: no disagreements, suspects, uncertain or unlabelled items.")
        return
    ids = queue["scan_id"].tolist()
    status = common.attempt(lambda: store.reading_status(s.username, ids))
    if status is None:
        return
    queue, status = reading.readable(queue, status)  # nobody reads an item they decided at triage
    double = status.set_index("scan_id")
    twice = set(double.index[double["double_read"]])
    st.dataframe(reading.blind(queue, status), hide_index=True, key="relabel_table")
    with st.expander("Bulk action on several items (not for items read twice)"):
        bulk = st.multiselect("Items", [i for i in queue["scan_id"] if i not in twice], key="relabel_bulk")
        bulk_labels = st.multiselect("Labels (none = benign)", classes, key="relabel_bulk_labels")
        if st.button("Apply to selected", key="relabel_bulk_apply", disabled=not bulk):
            save(bulk, bulk_labels, "relabel", note="bulk")
    pick = st.selectbox("Item", queue["scan_id"].tolist(), key="relabel_pick")
    scan = common.attempt(lambda: store.get_scan(pick)) if pick else None
    if scan is None:
        return
    verdict = next((v for v in scan["verdicts"] if v["role"] == "champion"), None)
    left, right = st.columns([3, 2])
    with left:
        viewer.show(scan, verdict, "relabel")
    with right:
        if pick in twice:
            reading.read_item(store, s, pick, double.loc[pick], classes, done)
        else:
            labels_panel(pick, scan)


supervisor = common.allowed(s, "adjudicate")
tabs = st.tabs(["Queue", "Adjudication", "Agreement"]) if supervisor else [st.container()]
with tabs[0]:
    queue_tab()
if supervisor:
    with tabs[1]:
        reading.adjudication(store, s, classes, done)
    with tabs[2]:
        reading.agreement_tab(store)

st.subheader("Export a training set")
if common.allowed(s, "export_training_set"):
    root = cfg.exports_dir
    name = st.text_input("Export name", f"labels-{common.now():%Y%m%d-%H%M%S}", key="relabel_export_name",
                         help="One folder name: letters, digits, '.', '_' or '-'.")
    st.caption(f"Exports are written under `{root}` (setting `paths.exports`).")
    as_zip = st.checkbox("Also write a .zip", key="relabel_export_zip")
    if st.button("Export labels.csv + images", key="relabel_export"):
        common.require_action(s, "export_training_set")
        dest = common.attempt(lambda: labelling.export_folder(root, name))
        rows = common.attempt(lambda: store.training_labels()) if dest is not None else None
        res = common.attempt(partial(labelling.export_training_set, rows, dest, as_zip)) \
            if rows is not None and dest is not None else None
        if res is not None:
            st.success(f"Exported {res.exported} images to {res.folder} (train with `xscreen train --data {res.folder}`).")
            if res.missing:
                st.warning(f"{len(res.missing)} image file(s) no longer exist and were skipped.")
else:
    st.caption("Supervisors and analysts may export training sets.")
