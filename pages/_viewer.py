"""The X-ray viewer of the triage and relabelling pages: reads the scan with xray and renders the chosen view.

Pixel operations live in analytics.triage (numpy, tested); this module only wires xray's reader and the
material cut-offs to them and draws the controls. Widgets carry the calling page's key prefix.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import streamlit as st

from analytics import triage
from pages import _common as common
from xscreen.errors import XscreenError

VIEWS_ALWAYS = ["Pseudo-colour", "High energy"]
VIEWS_DUAL = ["Low energy", "Organic only", "Inorganic only", "Metal only"]


@st.cache_resource(max_entries=32, show_spinner=False)
def _read(path: str) -> Any:
    from xray.formats import read_scan

    return read_scan(path)


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


def heat_for(verdict: dict[str, Any], classes: list[str], width: int, height: int) -> np.ndarray | None:
    """The strongest of the chosen classes' heatmaps, cropped from the model's canvas to the image."""
    grids = [triage.decode_heatmap(verdict["heatmaps"][c], int(verdict["heatmap_size"]))
             for c in classes if c in verdict.get("heatmaps", {})]
    if not grids:
        return None
    return triage.unletterbox(np.max(grids, axis=0), width, height)


def show(scan: dict[str, Any], verdict: dict[str, Any] | None, prefix: str) -> None:
    """Viewer controls and the rendered image for one scan (an unreadable file becomes a message)."""
    image = common.attempt(lambda: _read(scan["source_path"]))
    if image is None:
        return
    views = VIEWS_ALWAYS + (VIEWS_DUAL if image.dual_energy else [])
    c1, c2, c3, c4 = st.columns([2, 1, 1, 1])  # the view names ('Inorganic only') need the room
    view = c1.selectbox("View", views, key=f"{prefix}_view")
    window = c2.slider("Window", 0.05, 1.0, 1.0, 0.05, key=f"{prefix}_window")
    level = c3.slider("Level", 0.0, 1.0, 0.5, 0.05, key=f"{prefix}_level")
    factor = c4.slider("Zoom", 1.0, 4.0, 1.0, 0.5, key=f"{prefix}_zoom")
    classes = sorted((verdict or {}).get("heatmaps", {}))
    chosen = st.multiselect("Heatmap overlay", classes, default=classes[:1], key=f"{prefix}_heat")
    img = triage.window_level(_base(image, view), window, level)
    height, width = image.rgb.shape[:2]
    heat = heat_for(verdict, chosen, width, height) if verdict and chosen else None
    if heat is not None:
        img = triage.heatmap_overlay(img, heat)
    cx = cy = 0.5
    if factor > 1:  # pan only makes sense once zoomed in
        p1, p2 = st.columns(2)
        cx = p1.slider("Pan left-right", 0.0, 1.0, 0.5, 0.05, key=f"{prefix}_pan_x")
        cy = p2.slider("Pan up-down", 0.0, 1.0, 0.5, 0.05, key=f"{prefix}_pan_y")
    st.image(triage.to_uint8(triage.zoom(img, factor, cx, cy)), width="stretch")


def thumbnail(source_path: str, side: int = 160) -> np.ndarray | None:
    """A small pseudo-colour picture of a scan for the similar-items strip; None when the file is unreadable."""
    try:
        image = _read(source_path)
    except XscreenError:
        return None
    rgb = np.asarray(image.rgb, dtype=np.float32)
    step = max(1, max(rgb.shape[:2]) // side)  # plain decimation: a thumbnail needs no filtering
    return triage.to_uint8(rgb[::step, ::step])
