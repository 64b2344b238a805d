"""Vendor pseudo-colour palettes: (high, low) transmission -> the 8-bit RGB a screening station shows.

Hue follows the dual-energy ratio R = a_low / a_high (organic orange, inorganic green, metal blue, or a
vendor's variant); colour saturation grows with attenuation (thin things look pale), brightness falls with
attenuation (dense things look dark), air is pure white and a saturated detector is black. Each palette is
baked once into a 2-D lookup table indexed by (R bin, attenuation bin), so colouring is one gather.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from xray.materials import MAX_ATTENUATION, TRANSMISSION_FLOOR
from xscreen.errors import XscreenError

RATIO_MIN, RATIO_MAX = 1.0, 4.5
RATIO_BINS, ATT_BINS = 96, 256
CONFIDENT_ATTENUATION = 0.12  # high-energy attenuation above which the dual-energy ratio is trusted fully
THIN_RATIO = 1.25  # the ratio (organic) assumed for things too thin to classify


class UnknownPaletteError(XscreenError):
    """A palette name that is not in PALETTES."""

    title = "Unknown palette"


@dataclass(frozen=True)
class Palette:
    """One vendor's colour scheme: hue anchors along R and the brightness curve."""

    name: str
    description: str
    anchors: tuple[tuple[float, tuple[float, float, float]], ...]  # (ratio, rgb in [0, 1]), ascending ratio
    saturation_scale: float  # attenuation at which colour reaches 63% of full saturation
    brightness_scale: float  # attenuation at which brightness falls to 1/e
    brightness_gamma: float  # shape of the brightness fall-off (vendors differ)
    air_threshold: float  # attenuation below which a pixel is shown as pure white (air, belt)
    # Display processing (defaults: what the four named palettes do). xray.styles draws these for its continuous
    # family of palettes; the named palettes are points of that family.
    smoothing: int = 3  # side of the neighbourhood the material class (ratio) is computed on: 1 (none), 3, 5
    tone_gamma: float = 1.0  # output tone curve rgb ** tone_gamma (< 1 brightens mid-tones)
    tone_contrast: float = 0.0  # > 0: an S-shaped tone curve (logistic of this slope around tone_mid) instead
    tone_mid: float = 0.5


_ORANGE, _GREEN, _BLUE = (1.0, 0.62, 0.12), (0.25, 0.80, 0.22), (0.16, 0.36, 1.0)

PALETTES: dict[str, Palette] = {
    p.name: p
    for p in (
        Palette("reference", "orange organic, green inorganic, blue metal; the canonical rendering of raw data",
                ((1.22, _ORANGE), (1.75, _GREEN), (3.0, _BLUE)), 0.35, 3.2, 1.0, 0.035),
        Palette("swapped", "vendor B: inorganic blue and metal green (colours of the two swapped)",
                ((1.22, (1.0, 0.58, 0.10)), (1.75, (0.20, 0.45, 1.0)), (3.0, (0.18, 0.72, 0.25))), 0.30, 3.0,
                1.15, 0.04),
        Palette("six_colour", "vendor C: six hues along Z, brighter mid-tones",
                ((1.15, (1.0, 0.85, 0.25)), (1.30, (1.0, 0.52, 0.08)), (1.55, (0.66, 0.72, 0.12)),
                 (1.85, (0.15, 0.75, 0.35)), (2.5, (0.10, 0.62, 0.90)), (3.4, (0.38, 0.22, 0.92))),
                0.40, 3.6, 0.8, 0.03),
        Palette("high_contrast", "vendor D: deeper hues and a steep brightness curve (dense goes dark sooner)",
                ((1.22, (0.95, 0.45, 0.05)), (1.75, (0.05, 0.65, 0.45)), (3.0, (0.10, 0.15, 0.80))), 0.25,
                2.2, 1.4, 0.05),
    )
}
REFERENCE_PALETTE = "reference"


def get_palette(name: str) -> Palette:
    """The palette called `name`; UnknownPaletteError lists the known ones."""
    if name not in PALETTES:
        raise UnknownPaletteError(f"unknown palette {name!r}; known: {', '.join(PALETTES)}")
    return PALETTES[name]


def _hue_along_ratio(p: Palette, ratios: np.ndarray) -> np.ndarray:
    """Piecewise-linear interpolation of the anchor colours: (n,) ratios -> (n, 3) rgb."""
    xs = np.array([a[0] for a in p.anchors])
    cols = np.array([a[1] for a in p.anchors])
    return np.stack([np.interp(ratios, xs, cols[:, c]) for c in range(3)], axis=1)


def ratio_bin_centres() -> np.ndarray:
    return np.linspace(RATIO_MIN, RATIO_MAX, RATIO_BINS)


def att_bin_centres() -> np.ndarray:
    # square-root spacing: fine steps where thin objects live, coarse where everything is dark anyway
    return (np.linspace(0.0, 1.0, ATT_BINS) ** 2) * MAX_ATTENUATION


def tone_curve(v: np.ndarray, gamma: float, contrast: float = 0.0, mid: float = 0.5) -> np.ndarray:
    """A display tone curve on values in [0, 1] that keeps 0 -> 0 and 1 -> 1: a power (contrast 0) or, for
    contrast > 0, a logistic S-curve of that slope centred on `mid`, rescaled to end at 0 and 1."""
    v = np.clip(v, 0.0, 1.0) ** gamma
    if contrast <= 0:
        return v
    lo, hi = (1.0 / (1.0 + np.exp(-contrast * (x - mid))) for x in (0.0, 1.0))
    return (1.0 / (1.0 + np.exp(-contrast * (v - mid))) - lo) / (hi - lo)


def palette_lut(palette: str | Palette) -> np.ndarray:
    """(RATIO_BINS, ATT_BINS, 3) uint8 table of a palette (by name, or any Palette such as xray.styles draws)."""
    return _lut(get_palette(palette) if isinstance(palette, str) else palette)


TONE_LEVELS = 4096  # tone curves are applied to a table through a 1-D lookup of this many input levels


@lru_cache(maxsize=64)
def _lut(p: Palette) -> np.ndarray:
    hue = _hue_along_ratio(p, ratio_bin_centres())  # (R, 3)
    att = att_bin_centres()  # (A,)
    sat = 1.0 - np.exp(-att / p.saturation_scale)
    value = np.exp(-((att / p.brightness_scale) ** p.brightness_gamma))
    # air and belt fade to pure white below the threshold (a soft edge, so noise does not speckle thin film)
    fade = np.clip((att - 0.5 * p.air_threshold) / p.air_threshold, 0.0, 1.0)
    # rgb = (1 - fade) + fade * value * ((1 - sat) + sat * hue): per attenuation bin an offset plus a scale of the hue
    offset = (1.0 - fade) + fade * value * (1.0 - sat)
    scale = fade * value * sat
    saturated = att >= MAX_ATTENUATION * 0.97  # saturated detector: black
    offset[saturated], scale[saturated] = 0.0, 0.0
    rgb = offset[None, :, None] + scale[None, :, None] * hue[:, None, :]  # (R, A, 3)
    if p.tone_gamma != 1.0 or p.tone_contrast > 0:  # drawn palettes: a power per entry costs more than the table
        levels = np.linspace(0.0, 1.0, TONE_LEVELS)
        curve = np.round(tone_curve(levels, p.tone_gamma, p.tone_contrast, p.tone_mid) * 255.0).astype(np.uint8)
        return curve.take((np.clip(rgb, 0.0, 1.0) * (TONE_LEVELS - 1) + 0.5).astype(np.intp))
    return np.clip(np.round(rgb * 255.0), 0, 255).astype(np.uint8)


def box_mean(x: np.ndarray, size: int) -> np.ndarray:
    """Mean over a size x size neighbourhood (odd size; 1 = x itself), mirrored at the border as
    scipy.ndimage.uniform_filter's default: the same values to float32 rounding, 6x faster as slice sums."""
    if size <= 1:
        return x
    r, (H, W) = size // 2, x.shape
    xp = np.pad(x, r, mode="symmetric")  # (H + 2r, W + 2r)
    rows = xp[0:H].copy()
    for d in range(1, size):
        rows += xp[d:d + H]
    out = rows[:, 0:W].copy()
    for d in range(1, size):
        out += rows[:, d:d + W]
    out *= np.float32(1.0 / (size * size))
    return out


def lut_indices(high: np.ndarray, low: np.ndarray, smoothing: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """(ratio bin, attenuation bin) of every pixel; both int arrays shaped like `high`. `smoothing`: side of the
    neighbourhood the material is classified on (1 = per pixel)."""
    hi = np.clip(high, TRANSMISSION_FLOOR, 1.0).astype(np.float32, copy=False)
    lo = np.clip(low, TRANSMISSION_FLOOR, 1.0).astype(np.float32, copy=False)
    a_h = -np.log(hi)
    a_l = -np.log(lo)
    # Display processing as vendors do it: material is classified on a 3x3 neighbourhood (the per-pixel ratio
    # of two noisy signals flickers) and brightness is half denoised, which keeps 1-pixel wires visible.
    mean_h, mean_l = (box_mean(a, smoothing) for a in (a_h, a_l))
    ratio = mean_l / np.maximum(mean_h, np.float32(1e-3))
    # Too little attenuation to tell materials apart: lean towards the organic hue, as stations do, instead of
    # letting noise paint thin cardboard green and white.
    confidence = np.minimum(mean_h * np.float32(1 / CONFIDENT_ATTENUATION), np.float32(1.0))
    ratio = np.float32(THIN_RATIO) + (ratio - np.float32(THIN_RATIO)) * confidence
    a_h = np.float32(0.5) * (a_h + mean_h)
    # a saturated low channel only bounds the ratio from below; only dense metal gets there: show it as metal
    ratio[a_l >= np.float32(MAX_ATTENUATION * 0.97)] = np.float32(RATIO_MAX)
    scale_r = np.float32((RATIO_BINS - 1) / (RATIO_MAX - RATIO_MIN))
    ri = np.clip((ratio - np.float32(RATIO_MIN)) * scale_r, 0, RATIO_BINS - 1).astype(np.intp)
    ai = np.sqrt(np.minimum(a_h * np.float32(1.0 / MAX_ATTENUATION), np.float32(1.0)))
    ai = (ai * np.float32(ATT_BINS - 1) + np.float32(0.5)).astype(np.intp)
    return ri, ai


def pseudo_colour(high: np.ndarray, low: np.ndarray, palette: str | Palette = REFERENCE_PALETTE) -> np.ndarray:
    """uint8 (H, W, 3) pseudo-colour of a dual-energy pair (transmissions in [0, 1], same shape)."""
    if high.shape != low.shape or high.ndim != 2:
        raise ValueError(f"high {high.shape} and low {low.shape} must be equal 2-D shapes")
    p = get_palette(palette) if isinstance(palette, str) else palette
    ri, ai = lut_indices(high, low, p.smoothing)
    flat = ri * ATT_BINS
    flat += ai
    return _lut(p).reshape(-1, 3).take(flat, axis=0)  # (H, W, 3): one gather, 5x faster than lut[ri, ai]
