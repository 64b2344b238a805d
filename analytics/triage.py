"""The triage page's pure parts: the viewer's image operations (numpy: window/level, energy and material views,
heatmap overlay, zoom) and the text an officer reads in the queue (risk, age, similar items' outcomes).

Inputs follow xray.formats.ScanImage: `rgb` float (H, W, 3) in [0, 1]; `high`/`low` transmission (H, W) in
[0, 1] (1 = nothing in the beam). Outputs are uint8 arrays ready for st.image. No xray import here: the
import-linter contract keeps analytics usable from a notebook with nothing else.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pandas as pd

from xscreen.errors import XscreenError

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


def decode_heatmap(encoded: str, size: int) -> np.ndarray:
    """A stored heatmap (base64 of size*size uint8) as float32 (size, size) in [0, 1]."""
    try:
        raw = base64.b64decode(encoded, validate=True)
    except ValueError as exc:
        raise ViewerError(f"heatmap is not valid base64: {exc}") from None
    if len(raw) != size * size:
        raise ViewerError(f"heatmap has {len(raw)} bytes, expected {size}x{size}={size * size}")
    return np.frombuffer(raw, dtype=np.uint8).reshape(size, size).astype(np.float32) / 255.0


def unletterbox(heat: np.ndarray, width: int, height: int) -> np.ndarray:
    """Crop a square canvas heatmap to the image's area (image centred, long side filling the canvas)."""
    s = heat.shape[0]
    scale = s / max(width, height)
    w, h = max(1, round(width * scale)), max(1, round(height * scale))
    x0, y0 = (s - w) // 2, (s - h) // 2
    return heat[y0 : y0 + h, x0 : x0 + w]


def resize_nearest(grid: np.ndarray, height: int, width: int) -> np.ndarray:
    """Nearest-neighbour resize of a 2-D grid to (height, width)."""
    rows = np.minimum((np.arange(height) * grid.shape[0] / height).astype(int), grid.shape[0] - 1)
    cols = np.minimum((np.arange(width) * grid.shape[1] / width).astype(int), grid.shape[1] - 1)
    return grid[rows[:, None], cols[None, :]]


def heatmap_overlay(rgb: np.ndarray, heat: np.ndarray, opacity: float = 0.45) -> np.ndarray:
    """Blend a [0, 1] heatmap (any grid size, already in image coordinates) as red onto the image."""
    img = _check_rgb(rgb)
    if not 0 <= opacity <= 1:
        raise ViewerError(f"opacity must be in [0, 1], got {opacity}")
    h = resize_nearest(np.clip(heat, 0, 1), img.shape[0], img.shape[1])[:, :, None]  # (H, W, 1)
    red = np.array([1.0, 0.1, 0.0], dtype=np.float32)
    alpha = opacity * h  # cold regions stay untouched so the officer still sees the X-ray
    return (img * (1 - alpha) + red * alpha).astype(np.float32)


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
