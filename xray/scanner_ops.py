"""The image operations behind `xray.styles`: field of view, resampling, detector effects, grey display, JPEG,
and carrying boxes and masks through the geometry. Plain numpy/scipy/Pillow; every function is pure given its rng.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np
from PIL import Image

from xray.materials import TRANSMISSION_FLOOR
from xray.palettes import Palette, tone_curve
from xray.synth import ObjectInfo
from xray.synth import _blur as blur
from xray.synth import _noise as normal

# blur and normal are the renderer's line-scan blur and noise bank (windows of one fixed bank of normals): one of
# each serves both the renderer's scanner stage and the styles' detector model

# The parameter sets of the detector and display stages live here, beside the operations that read them;
# xray.styles composes them into a scanner style.
DisplayMode = Literal["colour", "grey", "grey_inverted"]


@dataclass(frozen=True)
class DetectorModel:
    """Detector effects added to the renderer's default scanner stage (all 0 / 1: nothing added)."""

    blur_belt: float = 0.0  # extra Gaussian blur sigma (pixels) along the belt (rows)
    blur_across: float = 0.0  # ... and across it (columns)
    afterglow: float = 0.0  # share of the previous line's signal left in a detector (lag along the belt)
    afterglow_reverse: bool = False  # the belt ran the other way: the lag trails upwards
    noise: float = 0.0  # extra quantum-like noise: sigma = noise * sqrt(T) (transmission units)
    row_banding: float = 0.0  # std of a per-line gain error (source ripple): whole lines brighter or darker
    streaks: float = 0.0  # std of a per-column gain error (detector channels that drifted apart)
    dead_lines: tuple[tuple[float, float], ...] = ()  # (column as a fraction of the width, value 0 dead / 1 hot)
    gain: float = 1.0
    offset: float = 0.0
    unsharp_amount: float = 0.0  # vendor edge enhancement on attenuation: a + amount * (a - blur(a, sigma))
    unsharp_sigma: float = 1.5


@dataclass(frozen=True)
class DisplayMapping:
    """Raw pair -> 8-bit display: a pseudo-colour palette, or single-energy grey (possibly inverted)."""

    mode: DisplayMode = "colour"
    palette: Palette | None = None  # colour: None = the parcel's own named palette (reference family)
    grey_low_weight: float = 0.0  # grey: displayed attenuation (1 - w) * a_high + w * a_low
    grey_gamma: float = 1.0  # grey tone curve T ** gamma (or an S-curve when grey_contrast > 0)
    grey_contrast: float = 0.0
    grey_mid: float = 0.5


GREY_LEVELS = 4096  # grey tone curves are 1-D lookup tables over this many transmission levels
__all__ = ["PixelMap", "afterglow", "blur", "carry", "content_box", "detector", "grey", "jpeg_round_trip", "normal",
           "resize", "unsharp", "window"]


@dataclass(frozen=True)
class PixelMap:
    """Rendered pixel (x, y) -> styled pixel ((x - ox) * sx, (y - oy) * sy): the geometry applied so far."""

    ox: float = 0.0
    oy: float = 0.0
    sx: float = 1.0
    sy: float = 1.0

    def then_scale(self, fx: float, fy: float) -> PixelMap:
        return replace(self, sx=self.sx * fx, sy=self.sy * fy)


def content_box(objects: list[ObjectInfo], shape: tuple[int, int]) -> tuple[int, int, int, int]:
    """Union of every object's box (container included): the parcel's extent; the whole image when empty."""
    if not objects:
        return 0, 0, shape[1], shape[0]
    b = np.array([o.box for o in objects])
    return int(b[:, 0].min()), int(b[:, 1].min()), int(b[:, 2].max()), int(b[:, 3].max())


def window(t: np.ndarray, x0: int, y0: int, x1: int, y1: int) -> np.ndarray:
    """t[y0:y1, x0:x1] where the window may reach past the image: air (transmission 1) there."""
    H, W = t.shape
    out = np.ones((y1 - y0, x1 - x0), dtype=np.float32)
    sy0, sx0, sy1, sx1 = max(y0, 0), max(x0, 0), min(y1, H), min(x1, W)
    if sy1 > sy0 and sx1 > sx0:
        out[sy0 - y0:sy1 - y0, sx0 - x0:sx1 - x0] = t[sy0:sy1, sx0:sx1]
    return out


def resize(img: np.ndarray, w: int, h: int) -> np.ndarray:
    """Antialiased resize with Pillow (uint8 or float32): a box filter when reducing both sides, as a coarser
    detector integrates over its pixel; bilinear otherwise."""
    shrinking = w < img.shape[1] and h < img.shape[0]
    method = Image.Resampling.BOX if shrinking else Image.Resampling.BILINEAR
    return np.asarray(Image.fromarray(img).resize((w, h), method))


def afterglow(t: np.ndarray, a: float, reverse: bool) -> np.ndarray:
    """Detector lag along the belt: y[i] = sum_k w_k x[i - k] with w_k ~ a**k (k < 4, normalised), an
    exponential trail truncated where it is under 2% of the signal for a <= 0.4."""
    x = t[::-1] if reverse else t
    w = np.array([a**k for k in range(4)], dtype=np.float32)
    w /= w.sum()
    y = x * w[0]
    for k in range(1, 4):
        y[k:] += w[k] * x[:-k]
        y[:k] += w[k] * x[:1]  # before the first line the detector saw what the first line shows
    return np.ascontiguousarray(y[::-1]) if reverse else y


def unsharp(t: np.ndarray, amount: float, sigma: float) -> np.ndarray:
    """Vendor edge enhancement on attenuation, a + amount * (a - blur(a)): the halos of stations' "enhance"."""
    a = -np.log(np.maximum(t, TRANSMISSION_FLOOR))
    blurred = blur(blur(a, sigma, 0), sigma, 1)
    a += np.float32(amount) * (a - blurred)
    np.maximum(a, 0.0, out=a)
    return np.clip(np.exp(-a, out=a), TRANSMISSION_FLOOR, 1.0, out=a)


def detector(high: np.ndarray, low: np.ndarray, det: DetectorModel,
             rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Lag, blur, gain (per line, per column, overall), offset, noise, dead lines, then edge enhancement."""
    H, W = high.shape
    rows = 1.0 + np.float32(det.row_banding) * normal(rng, (H, 1)) if det.row_banding > 0 else None  # both energies
    out = []
    for t in (high, low):
        t = np.array(t, dtype=np.float32, copy=True)
        if det.afterglow > 0:
            t = afterglow(t, det.afterglow, det.afterglow_reverse)
        for sigma, axis in ((det.blur_belt, 0), (det.blur_across, 1)):
            if sigma > 0.05:
                t = blur(t, sigma, axis)
        gain = np.float32(det.gain) * (1.0 + np.float32(det.streaks) * normal(rng, (1, W)))  # (1, W): channels
        t *= gain if rows is None else gain * rows
        t += np.float32(det.offset)
        if det.noise > 0:
            t += np.float32(det.noise) * np.sqrt(np.maximum(t, 0.0)) * normal(rng, (H, W))
        np.clip(t, TRANSMISSION_FLOOR, 1.0, out=t)
        for frac, value in det.dead_lines:  # a dead (dark) or stuck (white) detector channel: a line along the belt
            t[:, min(int(frac * W), W - 1)] = max(value, TRANSMISSION_FLOOR)
        if det.unsharp_amount > 0:
            t = unsharp(t, det.unsharp_amount, det.unsharp_sigma)
        out.append(t)
    return out[0], out[1]


def grey(high: np.ndarray, low: np.ndarray, d: DisplayMapping) -> np.ndarray:
    """Single-energy grey uint8 (H, W): transmission of (1 - w) a_high + w a_low through the tone curve."""
    t = high
    if d.grey_low_weight > 0:
        a = np.float32(1.0 - d.grey_low_weight) * np.log(np.maximum(high, TRANSMISSION_FLOOR))
        a += np.float32(d.grey_low_weight) * np.log(np.maximum(low, TRANSMISSION_FLOOR))
        t = np.exp(a)
    levels = np.linspace(0.0, 1.0, GREY_LEVELS)
    lut = np.round(tone_curve(levels, d.grey_gamma, d.grey_contrast, d.grey_mid) * 255).astype(np.uint8)
    if d.mode == "grey_inverted":
        lut = 255 - lut
    return lut.take((np.clip(t, 0.0, 1.0) * np.float32(GREY_LEVELS - 1) + np.float32(0.5)).astype(np.intp))


def jpeg_round_trip(image: np.ndarray, quality: int) -> tuple[bytes, np.ndarray]:
    """The JPEG file (Pillow, 4:2:0 for colour) and the pixels a reader decodes from it."""
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="JPEG", quality=int(quality))
    data = buf.getvalue()
    with Image.open(io.BytesIO(data)) as im:
        return data, np.asarray(im)


def carry(objects: list[ObjectInfo], masks: dict[int, np.ndarray], m: PixelMap,
          shape: tuple[int, int]) -> tuple[list[ObjectInfo], dict[int, np.ndarray]]:
    """Boxes (end-exclusive, clipped to the image) and masks (nearest sampling) through the geometry `m`;
    objects that left the image are dropped and the mask indices follow the kept objects."""
    H, W = shape
    kept: list[ObjectInfo] = []
    new_masks: dict[int, np.ndarray] = {}
    for i, o in enumerate(objects):
        x0, y0, x1, y1 = o.box
        nx0, ny0 = max(math.floor((x0 - m.ox) * m.sx), 0), max(math.floor((y0 - m.oy) * m.sy), 0)
        nx1, ny1 = min(math.ceil((x1 - m.ox) * m.sx), W), min(math.ceil((y1 - m.oy) * m.sy), H)
        if nx1 <= nx0 or ny1 <= ny0:
            continue
        if i in masks:
            mask = masks[i]
            cols = np.floor((np.arange(nx0, nx1) + 0.5) / m.sx + m.ox).astype(int) - x0
            rows = np.floor((np.arange(ny0, ny1) + 0.5) / m.sy + m.oy).astype(int) - y0
            new_masks[len(kept)] = mask[np.ix_(np.clip(rows, 0, mask.shape[0] - 1), np.clip(cols, 0, mask.shape[1] - 1))]
        kept.append(replace(o, box=(nx0, ny0, nx1, ny1)))
    return kept, new_masks
