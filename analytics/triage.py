"""The triage page's pure parts: the viewer's image operations (numpy: window/level, energy and material views,
heatmap overlay and which class it shows first, zoom) and the text an officer reads in the queue (risk, age,
similar items' outcomes). Heatmaps are decoded and placed with xscreen.records' one frame and codec.

Inputs follow xray.formats.ScanImage: `rgb` float (H, W, 3) in [0, 1]; `high`/`low` transmission (H, W) in
[0, 1] (1 = nothing in the beam). Outputs are uint8 arrays ready for st.image. No xray import here: the
import-linter contract keeps analytics usable from a notebook with nothing else.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from xscreen.errors import XscreenError
from xscreen.records import decode_heatmap, heatmap_on_image

# Dual-energy ratio R = ln(T_low) / ln(T_high): photo-electric absorption grows with atomic number, so
# heavier materials attenuate relatively more at low energy. Defaults equal xray.materials' RATIO_ORGANIC_MAX
# and RATIO_METAL_MIN (the viewer passes those explicitly; analytics may not import xray).
ORGANIC_MAX_RATIO = 1.45
INORGANIC_MAX_RATIO = 2.6
# Below this attenuation nothing is in the beam: the ratio would be noise over noise.
MIN_ATTENUATION = 0.05
_EPS = 1e-6


class ViewerError(XscreenError):
    """An image or heatmap given to the viewer has the wrong shape or encoding."""

    title = "Cannot display scan"


@dataclass(frozen=True)
class MaterialMasks:
    organic: np.ndarray  # (H, W) bool
    inorganic: np.ndarray
    metal: np.ndarray


def window_level(image: np.ndarray, window: float, level: float) -> np.ndarray:
    """Map [level - window/2, level + window/2] linearly onto [0, 1], clipping outside. Shape unchanged."""
    if window <= 0:
        raise ViewerError(f"window must be > 0, got {window}")
    lo = level - window / 2
    return np.clip((np.asarray(image, dtype=np.float32) - lo) / window, 0.0, 1.0)


def to_uint8(image: np.ndarray) -> np.ndarray:
    """[0, 1] floats to uint8 0..255 (rounded)."""
    return np.round(np.clip(image, 0.0, 1.0) * 255).astype(np.uint8)


def attenuation(transmission: np.ndarray) -> np.ndarray:
    """-ln(T): 0 where nothing is in the beam, larger for denser/thicker material."""
    return -np.log(np.clip(np.asarray(transmission, dtype=np.float32), _EPS, 1.0))


def energy_view(transmission: np.ndarray) -> np.ndarray:
    """One energy channel as a grey (H, W, 3) image in [0, 1]; dark = attenuating, as scanners show it."""
    t = np.clip(np.asarray(transmission, dtype=np.float32), 0.0, 1.0)
    if t.ndim != 2:
        raise ViewerError(f"an energy channel must be (H, W), got shape {t.shape}")
    return np.repeat(t[:, :, None], 3, axis=2)


def material_masks(
    high: np.ndarray,
    low: np.ndarray,
    organic_max: float = ORGANIC_MAX_RATIO,
    inorganic_max: float = INORGANIC_MAX_RATIO,
) -> MaterialMasks:
    """Organic / inorganic / metal pixels from the dual-energy ratio; empty (air) pixels are in none."""
    if np.shape(high) != np.shape(low):
        raise ViewerError(f"high {np.shape(high)} and low {np.shape(low)} energy images differ in shape")
    mu_h, mu_l = attenuation(high), attenuation(low)
    present = mu_h > MIN_ATTENUATION
    ratio = mu_l / np.maximum(mu_h, _EPS)
    organic = present & (ratio <= organic_max)
    inorganic = present & (ratio > organic_max) & (ratio <= inorganic_max)
    return MaterialMasks(organic, inorganic, present & (ratio > inorganic_max))


def material_only(rgb: np.ndarray, mask: np.ndarray, background: float = 1.0) -> np.ndarray:
    """The pseudo-colour image where `mask` is set and a blank background elsewhere (officer's 'organic only')."""
    img = _check_rgb(rgb)
    if mask.shape != img.shape[:2]:
        raise ViewerError(f"mask {mask.shape} does not match image {img.shape[:2]}")
    return np.where(mask[:, :, None], img, np.float32(background))


def overlay_default(verdict: Mapping[str, Any]) -> list[str]:
    """The heatmap an officer sees first: the verdict's top class when it has a map, else its highest-scoring
    class that has one (never the alphabetically first, never the previous item's choice)."""
    maps = verdict.get("heatmaps") or {}
    if not maps:
        return []
    top = verdict.get("top_class")
    if top in maps:
        return [str(top)]
    scores = verdict.get("scores") or {}
    return [max(maps, key=lambda c: scores.get(c, 0.0))]


def class_heat(verdict: Mapping[str, Any], classes: Iterable[str]) -> np.ndarray | None:
    """The strongest of the chosen classes' stored heatmaps (g, g) in [0, 1], in the image frame of
    xscreen.records (no cropping: it already covers exactly the image); None when none was chosen or stored."""
    maps = verdict.get("heatmaps") or {}
    grids = [decode_heatmap(maps[c], int(verdict["heatmap_size"])) for c in classes if c in maps]
    return np.max(grids, axis=0) if grids else None


def heatmap_overlay(rgb: np.ndarray, heat: np.ndarray, opacity: float = 0.45) -> np.ndarray:
    """Blend a [0, 1] heatmap grid (in the image frame of xscreen.records) as red onto the image."""
    img = _check_rgb(rgb)
    if not 0 <= opacity <= 1:
        raise ViewerError(f"opacity must be in [0, 1], got {opacity}")
    h = heatmap_on_image(np.clip(heat, 0, 1), img.shape[0], img.shape[1])[:, :, None]  # (H, W, 1)
    red = np.array([1.0, 0.1, 0.0], dtype=np.float32)
    alpha = opacity * h  # cold regions stay untouched so the officer still sees the X-ray
    return (img * (1 - alpha) + red * alpha).astype(np.float32)


def region_default(peak_box: Sequence[float] | None, width: int, height: int) -> tuple[int, int, int, int]:
    """The region offered when an officer starts marking a threat: the model's peak box for the class (image
    fractions, xscreen.records' frame) in image pixels, or the middle half of the image where there is none."""
    fx0, fy0, fx1, fy1 = peak_box if peak_box is not None and len(peak_box) == 4 else (0.25, 0.25, 0.75, 0.75)
    x0, y0 = int(np.floor(fx0 * width)), int(np.floor(fy0 * height))
    x1, y1 = int(np.ceil(fx1 * width)), int(np.ceil(fy1 * height))
    return max(0, x0), max(0, y0), min(width, max(x1, x0 + 1)), min(height, max(y1, y0 + 1))


def outline(rgb: np.ndarray, box: Sequence[int], colour: Sequence[float] = (0.0, 1.0, 0.3),
            thickness: int | None = None) -> np.ndarray:
    """The image with the rectangle `box` (x0, y0, x1, y1: image pixels, end-exclusive) drawn as a frame just
    inside its edges, `thickness` pixels wide (default: 1/200 of the longer side, at least 1); the box is clipped
    to the image."""
    img = _check_rgb(rgb).copy()
    hgt, wid = img.shape[:2]
    t = thickness or max(1, max(hgt, wid) // 200)
    x0, y0 = max(0, int(box[0])), max(0, int(box[1]))
    x1, y1 = min(wid, int(box[2])), min(hgt, int(box[3]))
    if x1 <= x0 or y1 <= y0:
        return img
    c = np.asarray(colour, dtype=np.float32)
    img[y0:min(y0 + t, y1), x0:x1] = c
    img[max(y1 - t, y0):y1, x0:x1] = c
    img[y0:y1, x0:min(x0 + t, x1)] = c
    img[y0:y1, max(x1 - t, x0):x1] = c
    return img


def zoom(image: np.ndarray, factor: float, cx: float = 0.5, cy: float = 0.5) -> np.ndarray:
    """Crop around (cx, cy) (image fractions) to 1/factor of each side; factor >= 1."""
    if factor < 1:
        raise ViewerError(f"zoom factor must be >= 1, got {factor}")
    hgt, wid = image.shape[:2]
    ch, cw = max(1, round(hgt / factor)), max(1, round(wid / factor))
    y0 = int(np.clip(round(cy * hgt - ch / 2), 0, hgt - ch))
    x0 = int(np.clip(round(cx * wid - cw / 2), 0, wid - cw))
    return image[y0 : y0 + ch, x0 : x0 + cw]


def _check_rgb(rgb: np.ndarray) -> np.ndarray:
    img = np.asarray(rgb, dtype=np.float32)
    if img.ndim != 3 or img.shape[2] != 3:
        raise ViewerError(f"expected an (H, W, 3) image, got shape {img.shape}")
    return img


# ---- what the officer reads in the queue --------------------------------------------------------------------

def risk_text(p: float) -> str:
    """A calibrated any-threat probability in [0, 1] as a percentage with as many decimals as it takes to tell
    near-certain items apart ('87 %', '99.4 %', '99.97 %'), never rounded up to a false '100 %' or down to '0 %'."""
    if not 0.0 <= p <= 1.0 or math.isnan(p):
        raise ValueError(f"a probability must be in [0, 1], got {p}")
    if p >= 0.9999:
        return "> 99.99 %"
    if p < 0.001:
        return "< 0.1 %"
    for decimals, below in ((0, 0.99), (1, 0.999)):
        if p < below:
            return f"{p * 100:.{decimals}f} %"
    return f"{p * 100:.2f} %"


def age_text(received: datetime, now: datetime) -> str:
    """How long ago an item was received, as an officer says it: 'just now', '45 s ago', '12 min ago',
    '3 h 5 min ago', '2 d 4 h ago'. Both times timezone-aware; a time after `now` (clock skew) is 'just now'."""
    seconds = int((now - received).total_seconds())
    if seconds < 5:
        return "just now"
    if seconds < 60:
        return f"{seconds} s ago"
    minutes, hours, days = seconds // 60, seconds // 3600, seconds // 86400
    if hours == 0:
        return f"{minutes} min ago"
    if days == 0:
        return f"{hours} h {minutes % 60} min ago" if minutes % 60 else f"{hours} h ago"
    return f"{days} d {hours % 24} h ago" if hours % 24 else f"{days} d ago"


def _missing(value: object) -> bool:
    """None, NaN or pandas' NA (a scalar); a list or array, even an empty one, is a value."""
    if isinstance(value, list | tuple | np.ndarray):
        return False
    return bool(pd.isna(value))


def outcome_text(decision: object, labels: object) -> str:
    """The outcome of a similar item: its final decision, else 'labelled', then its current labels ('benign' for
    an empty label set). Arrow gives NaN or None for a missing decision and NA, None or an array for the labels:
    none of those may show as 'nan'."""
    head = "labelled" if _missing(decision) else str(decision)
    if _missing(labels) or isinstance(labels, str) or not isinstance(labels, Iterable):
        return head
    names = [str(x) for x in labels]
    return f"{head} · {', '.join(names) if names else 'benign'}"


def as_utc(value: object) -> datetime:
    """A stored time (datetime, pandas Timestamp or ISO string, as JSON or Arrow deliver it) as an aware UTC
    datetime; a naive value is taken to be UTC already (the store writes UTC)."""
    t = pd.Timestamp(value)  # type: ignore[arg-type]
    t = t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")
    return t.to_pydatetime()  # type: ignore[no-any-return]
