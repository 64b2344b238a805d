"""Marking a confirmed threat's region on the triage page: a toggle, four pixel inputs that start at the model's
peak box and are outlined live on the viewer's image, then the store's seizure record and the signature xray cuts
from it into the threat library (`<paths.library>/seizures/<seizure id>.npz`).

Why inputs and not a drag on the picture: the viewer draws with st.image (every view, window/level and zoom), and
AppTest cannot drive a plotly selection, so a drag would be the one step of a decision no test covers; the inputs
are exact, keyboard-friendly, and start on the model's own box, so most marks are one or two nudges.
"""

from __future__ import annotations

import uuid
from typing import Any

import streamlit as st

from analytics import triage
from pages import _viewer as viewer
from xscreen.errors import XscreenError
from xscreen.records import ScanDetail, StoredVerdict
from xscreen.settings import Settings

MARK = "triage_mark"
SIDES = ("x0", "y0", "x1", "y1")
Box = tuple[int, int, int, int]


def key(scan_id: str, side: str) -> str:
    """Widget key of one side of the region: keyed by the item, so a region never carries over to the next."""
    return f"triage_box_{scan_id}_{side}"


def current(scan: ScanDetail, verdict: StoredVerdict | None, class_name: str | None) -> Box | None:
    """The region being marked, in image pixels (None when the officer is not marking). Called before the inputs
    are drawn, so the viewer outlines what they hold now; they start at the model's peak box for the class."""
    if not st.session_state.get(MARK):
        return None
    peak = (verdict["peak_boxes"] if verdict else {}).get(class_name or "")
    default = triage.region_default(peak, scan["width"], scan["height"])
    for side, value in zip(SIDES, default, strict=True):
        st.session_state.setdefault(key(scan["scan_id"], side), value)
    x0, y0, x1, y1 = (int(st.session_state[key(scan["scan_id"], side)]) for side in SIDES)
    return x0, y0, x1, y1


def inputs(scan: ScanDetail) -> None:
    """The toggle and, when it is on, the four inputs (image pixels; the outline on the image follows them)."""
    width, height = scan["width"], scan["height"]
    if not st.checkbox("Mark the threat's region", key=MARK,
                       help="With Confirm or Seize, the marked region goes to the threat library (real seizures "
                            "teach and certify models adapted to this scanner)."):
        return
    for col, side in zip(st.columns(len(SIDES)), SIDES, strict=True):
        col.number_input(f"{side} (px)", min_value=0, max_value=width if side[0] == "x" else height, step=1,
                         key=key(scan["scan_id"], side))
    st.caption(f"Image pixels of the {width} x {height} scan, from its top-left corner; x1 and y1 are just past "
               "the region's right and bottom edges.")


def save(store: Any, cfg: Settings, officer: str, scan: ScanDetail, decision_id: str, class_name: str,
         box: Box) -> tuple[bool, str]:
    """Record the region in the store, then cut its signature into the library: (done, what to tell the officer,
    naming the step that failed)."""
    from xray.seizures import cut_seizure, save_seizure, seizures_dir

    try:
        rec = store.record_seizure(uuid.uuid4().hex, scan["scan_id"], decision_id, class_name, list(box), officer)
    except XscreenError as exc:
        return False, f"The decision is recorded, the region is not: {exc}"
    try:
        image = viewer.readable(scan)
        if image is None:
            raise XscreenError(f"the image of scan {scan['scan_id']} can no longer be read")
        save_seizure(cut_seizure(image, rec), seizures_dir(cfg.library_dir), rec.seizure_id)
    except XscreenError as exc:
        return False, f"The region is recorded (seizure {rec.seizure_id}) but its signature was not cut: {exc}"
    return True, f"Region {list(box)} added to the threat library (seizure {rec.seizure_id}, {rec.kind})."
