"""The X-ray viewer of the triage and relabelling pages: reads the scan's image where the store says it is now, with
xray, and renders the chosen view.

Pixel operations live in analytics.triage (numpy, tested); this module only wires xray's reader and the
material cut-offs to them and draws the controls. Widgets carry the calling page's key prefix.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import streamlit as st

from analytics import triage
from pages import _common as common
from xscreen.errors import XscreenError
from xscreen.records import ScanDetail, StoredVerdict

VIEWS_ALWAYS = ["Pseudo-colour", "High energy"]
VIEWS_DUAL = ["Low energy", "Organic only", "Inorganic only", "Metal only"]


@st.cache_resource(max_entries=32, show_spinner=False)
def _read(path: str) -> Any:
    from xray.formats import read_scan

    return read_scan(Path(path))


def _base(image: Any, view: str) -> np.ndarray:
    """(H, W, 3) float image in [0, 1] for one view of a ScanImage."""
    if view == "High energy":
        return triage.energy_view(image.high)
    if view == "Low energy":
        return triage.energy_view(image.low)
    if view in ("Organic only", "Inorganic only", "Metal only"):
        from xray.materials import RATIO_METAL_MIN, RATIO_ORGANIC_MAX

        masks = triage.material_masks(image.high, image.low, RATIO_ORGANIC_MAX, RATIO_METAL_MIN)
        mask = {"Organic only": masks.organic, "Inorganic only": masks.inorganic, "Metal only": masks.metal}[view]
        return triage.material_only(image.rgb, mask)
    return np.asarray(image.rgb, dtype=np.float32)


def _image_path(scan: ScanDetail) -> str | None:
    """Where the scan's pixels are now, or None after saying why there are none (expired, moved away)."""
    image = scan["image"]
    if image["state"] == "expired":
        when = f" on {image['since']:%Y-%m-%d}" if image["since"] else ""
        st.info(f"Image expired under retention{when}: the verdict, decisions and labels are kept.",
                icon=":material/history:")
        return None
    if image["path"] is None or not Path(image["path"]).is_file():
        st.error(f"**Image missing**: the image is no longer at {image['path'] or 'its recorded place'} (moved or "
                 "deleted outside xscreen).")
        return None
    return image["path"]


def show(scan: ScanDetail, verdict: StoredVerdict | None, prefix: str,
         region: tuple[int, int, int, int] | None = None) -> None:
    """Viewer controls and the rendered image for one scan (an expired, missing or unreadable file becomes a
    message). The heatmap choice is per item, defaulting to its top class. `region` (image pixels) is outlined:
    the threat region an officer is marking, seen in every view and zoom."""
    path = _image_path(scan)
    image = common.attempt(lambda: _read(path)) if path is not None else None
    if image is None:
        return
    views = VIEWS_ALWAYS + (VIEWS_DUAL if image.dual_energy else [])
    c1, c2, c3, c4 = st.columns([2, 1, 1, 1])  # the view names ('Inorganic only') need the room
    view = c1.selectbox("View", views, key=f"{prefix}_view")
    window = c2.slider("Window", 0.05, 1.0, 1.0, 0.05, key=f"{prefix}_window")
    level = c3.slider("Level", 0.0, 1.0, 0.5, 0.05, key=f"{prefix}_level")
    factor = c4.slider("Zoom", 1.0, 4.0, 1.0, 0.5, key=f"{prefix}_zoom")
    maps = sorted(verdict["heatmaps"]) if verdict else []
    # Keyed by the item: a choice made on one item never carries over to the next.
    chosen = st.multiselect("Heatmap overlay", maps, default=triage.overlay_default(verdict) if verdict else [],
                            key=f"{prefix}_heat_{scan['scan_id']}")
    img = triage.window_level(_base(image, view), window, level)
    heat = triage.class_heat(verdict, chosen) if verdict else None
    if heat is not None:
        img = triage.heatmap_overlay(img, heat)
    if region is not None:
        img = triage.outline(img, region)
    cx = cy = 0.5
    if factor > 1:  # pan only makes sense once zoomed in
        p1, p2 = st.columns(2)
        cx = p1.slider("Pan left-right", 0.0, 1.0, 0.5, 0.05, key=f"{prefix}_pan_x")
        cy = p2.slider("Pan up-down", 0.0, 1.0, 0.5, 0.05, key=f"{prefix}_pan_y")
    st.image(triage.to_uint8(triage.zoom(img, factor, cx, cy)), width="stretch")


def readable(scan: ScanDetail) -> Any:
    """The decoded image of a scan still kept (xray.formats.ScanImage), or None without saying anything."""
    path = scan["image"]["path"]
    if scan["image"]["state"] == "expired" or path is None or not Path(path).is_file():
        return None
    try:
        return _read(path)
    except XscreenError:
        return None


def thumbnail(scan: ScanDetail, side: int = 160) -> np.ndarray | None:
    """A small pseudo-colour picture of a scan for the similar-items strip; None when there is no readable image."""
    path = scan["image"]["path"]
    if scan["image"]["state"] != "kept" or path is None:
        return None
    try:
        image = _read(path)
    except XscreenError:
        return None
    rgb = np.asarray(image.rgb, dtype=np.float32)
    step = max(1, max(rgb.shape[:2]) // side)  # plain decimation: a thumbnail needs no filtering
    return triage.to_uint8(rgb[::step, ::step])
