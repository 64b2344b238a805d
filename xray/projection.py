"""Threat projection into an unknown scanner's images, through that scanner's look estimated from its own scans.

Pasting a threat through our reference palette into another vendor's image gives a threat of the wrong hue, tone
and sharpness, and a model taught on such pastes learns the paste. Instead `estimate_look` learns, from a few
dozen of the scanner's own (mostly benign) images and nothing else, how it shows attenuation:

- air: the colour of the image borders;
- materials: the chroma of non-air pixels falls into three hue clusters (grey images: one); the one between the
  other two along the palette's hue path is inorganic, the darker end metal (see _assign_materials);
- tone: per material, the darkness (distance from the air colour) at each quantile of that scanner's pixels is
  paired with the attenuation at the same quantile of the renderer's benign parcels (a monotone map, quantile
  matching), and the median colour of the scanner's pixels at each darkness is its colour table;
- blur: the steepest edges relative to the contrast, against the renderer's (known blur);
- noise: the robust spread of the residual after a 3x3 median;
- scale: the parcels' extent in pixels, against the renderer's at its own pitch (across and along separately).

`project_colour` then inverts the background under the threat to attenuation through that look, adds the
threat's attenuation (blurred and rescaled as that scanner would see it), and maps the sum back: the change is
added to the scanner's own pixels, so their texture, noise and compression survive around and over the threat.
Raw dual-energy images need no estimate: `project_raw` adds log-attenuations per energy (xray.tip).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Literal

import numpy as np
from scipy.ndimage import gaussian_filter, median_filter, zoom

from xray.materials import MAX_ATTENUATION
from xray.palettes import CONFIDENT_ATTENUATION, THIN_RATIO, box_mean
from xray.threat_library import REFERENCE_PIXEL_MM, LibraryEntry
from xray.tip import project_threat
from xscreen.errors import ConfigError

MATERIAL_RATIOS = (1.45, 2.6)  # R = a_low / a_high: organic < 1.45 <= inorganic < 2.6 <= metal (docs/DATA.md)
N_LEVELS = 129  # quantile levels of the tone maps
N_BINS = 48  # darkness bins of the colour tables
AIR_DARKNESS = 0.04  # darker than this (relative distance from the air colour) is an object
AIR_ATTENUATION = 0.04  # the renderer's pixels above this high-energy attenuation are objects
EXTENT_ATTENUATION = 0.15  # a parcel's extent is where the high-energy attenuation exceeds this
REFERENCE_BLUR = 0.6  # the renderer's line-scan blur (sigma 0.7 x 0.5 px, geometric mean)
MIN_IMAGES = 8
LookMode = Literal["colour", "grey"]


@dataclass(frozen=True)
class ScannerLook:
    """How one scanner shows attenuation, estimated from its own images (see the module docstring)."""

    mode: LookMode
    air: np.ndarray  # (3,) float32 air colour (0-255)
    centres: np.ndarray  # (M, 2) unit chroma directions of the material clusters (M = 3 colour, 1 grey)
    dark_q: np.ndarray  # (M, N_LEVELS) darkness of the scanner's pixels of material m at each quantile level
    att_q: np.ndarray  # (M, N_LEVELS) renderer's high-energy attenuation of material m at the same levels
    ratio: np.ndarray  # (M,) typical R of material m (renderer)
    colours: np.ndarray  # (M, N_BINS, 3) median colour of the scanner's pixels of material m per darkness bin
    dark_max: float  # upper end of the darkness bins
    blur_sigma: float  # pixels, of the scanner's image
    noise: float  # grey levels (0-255), spread of one pixel's noise
    scale: tuple[float, float]  # (along, across) the scanner's pixels per renderer pixel
    n_images: int


# ------------------------------------------------------------------------------------------- pixel measures


def as_rgb(image: np.ndarray) -> np.ndarray:
    """(H, W, 3) float32 of a uint8 colour or grey image."""
    if image.ndim == 2:
        image = image[..., None]
    if image.ndim != 3 or image.shape[2] not in (1, 3):
        raise ConfigError(f"a scan must be (H, W) grey or (H, W, 3) colour, got shape {image.shape}")
    img = image.astype(np.float32)
    return np.repeat(img, 3, axis=2) if img.shape[2] == 1 else img


def darkness(rgb: np.ndarray, air: np.ndarray) -> np.ndarray:
    """Distance from the air colour relative to the air colour's own length (0 air, about 1 black)."""
    return np.linalg.norm(rgb - air, axis=-1) / max(float(np.linalg.norm(air)), 1.0)


_U = np.array([1.0, -1.0, 0.0], dtype=np.float32) / np.sqrt(2.0)
_V = np.array([1.0, 1.0, -2.0], dtype=np.float32) / np.sqrt(6.0)


def chroma(rgb: np.ndarray) -> np.ndarray:
    """(..., 2) the colour's component across the grey axis (length = how coloured, angle = hue)."""
    return np.stack([rgb @ _U, rgb @ _V], axis=-1)


def air_colour(images: Sequence[np.ndarray]) -> np.ndarray:
    """Median colour of the two-pixel border of every image: the belt or air around the parcel."""
    rims = []
    for img in images:
        rgb = as_rgb(img)
        rims += [rgb[:2].reshape(-1, 3), rgb[-2:].reshape(-1, 3), rgb[:, :2].reshape(-1, 3), rgb[:, -2:].reshape(-1, 3)]
    return np.median(np.concatenate(rims), axis=0).astype(np.float32)


def edge_ratio(d: np.ndarray) -> float:
    """99th percentile of the gradient over the darkness range: falls as 1 / blur sigma for a blurred step."""
    gy, gx = np.gradient(d)
    g = np.hypot(gx, gy)
    obj = d > AIR_DARKNESS
    if obj.sum() < 50:
        return float("nan")
    span = float(np.percentile(d[obj], 99) - np.percentile(d[obj], 1))
    return float(np.percentile(g[obj], 99)) / max(span, 1e-3)


def extent(obj: np.ndarray) -> tuple[float, float]:
    """(rows, columns) spanned by the middle 98% of the object pixels: the parcel's size in pixels."""
    ys, xs = np.nonzero(obj)
    if ys.size < 50:
        return float("nan"), float("nan")
    return float(np.percentile(ys, 99) - np.percentile(ys, 1)), float(np.percentile(xs, 99) - np.percentile(xs, 1))


def noise_level(rgb: np.ndarray) -> float:
    """Robust noise (grey levels): 1.48 x median |x - median3x3(x)| of the first channel on object pixels."""
    x = rgb[..., 0]
    resid = np.abs(x - median_filter(x, size=3))
    return float(1.4826 * np.median(resid))


# ----------------------------------------------------------------------------------------- renderer reference


@dataclass(frozen=True)
class _Reference:
    att: tuple[np.ndarray, ...]  # per material: sorted high-energy attenuations of object pixels
    ratio: np.ndarray  # (3,)
    share: np.ndarray  # (3,) share of object pixels per material
    extent: tuple[float, float]  # median parcel extent, renderer pixels (rows, columns)
    edge: float  # median edge_ratio of the reference palette's images


def material_of(ratio: np.ndarray) -> np.ndarray:
    """0 organic, 1 inorganic, 2 metal."""
    return np.digitize(ratio, MATERIAL_RATIOS)


def displayed_material(a_h: np.ndarray, a_l: np.ndarray) -> np.ndarray:
    """The material a station shows: R on a 3x3 neighbourhood, leaning to organic where too thin to tell (the
    convention of xray.palettes.lut_indices, which vendors share: thin steel edges are not shown as metal)."""
    mean_h, mean_l = box_mean(a_h.astype(np.float32), 3), box_mean(a_l.astype(np.float32), 3)
    ratio = mean_l / np.maximum(mean_h, 1e-3)
    confidence = np.minimum(mean_h / CONFIDENT_ATTENUATION, 1.0)
    return material_of(THIN_RATIO + (ratio - THIN_RATIO) * confidence)


@lru_cache(maxsize=2)
def reference_statistics(n: int = 24, seed: int = 20261130) -> _Reference:
    """Statistics of the renderer's benign parcels (training content, default pitch): what a scanner's pixels
    are matched against. Cached: the same for every scanner."""
    from xray.synth import render_parcel  # the renderer is only needed here

    atts: list[list[np.ndarray]] = [[], [], []]
    ratios: list[list[np.ndarray]] = [[], [], []]
    extents, edges = [], []
    air = np.array([255.0, 255.0, 255.0], dtype=np.float32)
    for i in range(n):
        p = render_parcel(np.random.default_rng([seed, i]), classes=(), threat_rate=0.0, palette="reference",
                          content_split="all")
        a_h = -np.log(p.high)
        a_l = -np.log(p.low)
        obj = a_h > AIR_ATTENUATION
        r = a_l[obj] / a_h[obj]
        extents.append(extent(a_h > EXTENT_ATTENUATION))
        m = material_of(r)
        for k in range(3):
            atts[k].append(a_h[obj][m == k])
            ratios[k].append(r[m == k])
        edges.append(edge_ratio(darkness(p.rgb().astype(np.float32), air)))
    count = np.array([sum(a.size for a in atts[k]) for k in range(3)], dtype=float)
    return _Reference(tuple(np.sort(np.concatenate(a)) for a in atts),
                      np.array([float(np.median(np.concatenate(r))) for r in ratios]), count / count.sum(),
                      (float(np.nanmedian([e[0] for e in extents])), float(np.nanmedian([e[1] for e in extents]))),
                      float(np.nanmedian(edges)))


# ------------------------------------------------------------------------------------------------ estimation


def _sample_pixels(images: Sequence[np.ndarray], air: np.ndarray, per_image: int,
                   rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(rgb (N, 3), darkness (N,)) of up to `per_image` random object pixels of each image."""
    cols, darks = [], []
    for img in images:
        rgb = as_rgb(img).reshape(-1, 3)
        d = darkness(rgb, air)
        idx = np.flatnonzero(d > AIR_DARKNESS)
        idx = rng.choice(idx, min(per_image, idx.size), replace=False) if idx.size else idx
        cols.append(rgb[idx])
        darks.append(d[idx])
    return np.concatenate(cols), np.concatenate(darks)


def _hue_clusters(rgb: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(centres (3, 2) unit chroma directions, label per pixel (-1: too grey), unit chroma per pixel) of the coloured pixels (k-means on directions)."""
    from sklearn.cluster import KMeans

    c = chroma(rgb)
    mag = np.linalg.norm(c, axis=1)
    coloured = mag > 12.0  # grey levels: below that JPEG and noise decide the hue
    unit = c / np.maximum(mag, 1e-6)[:, None]
    km = KMeans(3, n_init=4, random_state=seed).fit(unit[coloured])
    centres = km.cluster_centers_ / np.linalg.norm(km.cluster_centers_, axis=1, keepdims=True)
    labels = np.full(len(rgb), -1)
    labels[coloured] = km.labels_
    return centres.astype(np.float32), labels, unit


def _assign_materials(unit: np.ndarray, labels: np.ndarray, centres: np.ndarray, dark: np.ndarray) -> tuple[int, int, int]:
    """Which cluster is organic, inorganic, metal. A palette's hue runs organic -> inorganic -> metal along R and
    overlaps mix R, so many pixels lie between organic and inorganic and between inorganic and metal, few between
    organic and metal: the cluster in the middle of the most-populated pairs is inorganic. Of the two ends,
    metal is the darker (median darkness of its pixels)."""
    sim = unit @ centres.T  # (N, 3) cosine to each centre
    order = np.argsort(-sim, axis=1)
    between = np.zeros((3, 3))
    ambiguous = sim[np.arange(len(sim)), order[:, 1]] > 0.5 * sim[np.arange(len(sim)), order[:, 0]]
    for a, b in order[ambiguous & (labels >= 0), :2]:
        between[a, b] += 1
        between[b, a] += 1
    pairs = [(between[a, b], a, b) for a, b in ((0, 1), (0, 2), (1, 2))]
    _, end1, end2 = min(pairs)
    middle = 3 - end1 - end2
    med = [float(np.median(dark[labels == k])) if (labels == k).any() else 0.0 for k in (end1, end2)]
    organic, metal = (end1, end2) if med[0] <= med[1] else (end2, end1)
    return organic, middle, metal


def _colour_table(rgb: np.ndarray, dark: np.ndarray, air: np.ndarray, dark_max: float) -> np.ndarray:
    """(N_BINS, 3) median colour per darkness bin; empty bins interpolated between their neighbours, bin 0 air."""
    edges = np.linspace(0.0, dark_max, N_BINS + 1)
    table = np.full((N_BINS, 3), np.nan, dtype=np.float32)
    idx = np.clip(np.digitize(dark, edges) - 1, 0, N_BINS - 1)
    for b in range(N_BINS):
        sel = idx == b
        if sel.sum() >= 5:
            table[b] = np.median(rgb[sel], axis=0)
    if np.isnan(table[0, 0]):
        table[0] = air
    known = np.flatnonzero(~np.isnan(table[:, 0]))
    for c in range(3):
        table[:, c] = np.interp(np.arange(N_BINS), known, table[known, c])
    return table


def _tone_map(dark: np.ndarray, ref_att: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Darkness and renderer attenuation at the same quantile levels (both non-decreasing)."""
    levels = np.linspace(0.0, 1.0, N_LEVELS)
    d = np.quantile(dark, levels) if dark.size else levels
    a = np.quantile(ref_att, levels) if ref_att.size else levels * MAX_ATTENUATION
    return np.maximum.accumulate(d).astype(np.float32), np.maximum.accumulate(a).astype(np.float32)


def estimate_look(images: Sequence[np.ndarray], *, seed: int = 0, per_image: int = 4000) -> ScannerLook:
    """The look of the scanner that made `images` (uint8 colour or grey, any sizes; mostly benign)."""
    if len(images) < MIN_IMAGES:
        raise ConfigError(f"estimating a scanner's look needs at least {MIN_IMAGES} of its images, got {len(images)}")
    rng = np.random.default_rng(seed)
    ref = reference_statistics()
    air = air_colour(images)
    rgb, dark = _sample_pixels(images, air, per_image, rng)
    if dark.size < 1000:
        raise ConfigError(f"the images hold only {dark.size} object pixels: too few to estimate the scanner's look")
    grey = float(np.median(np.linalg.norm(chroma(rgb), axis=1))) < 6.0
    dark_max = float(np.percentile(dark, 99.9)) * 1.02
    if grey:
        all_att = np.sort(np.concatenate(ref.att))
        d_q, a_q = _tone_map(dark, all_att)
        tables = [_colour_table(rgb, dark, air, dark_max)]
        centres, ratio, dq, aq = np.zeros((1, 2), np.float32), np.ones(1), [d_q], [a_q]
    else:
        hue_centres, labels, unit = _hue_clusters(rgb, seed)
        perm = _assign_materials(unit, labels, hue_centres, dark)
        centres = hue_centres[list(perm)]
        # pixels too grey to have a hue: near black is dense metal, near white is thin stuff, which palettes
        # lean towards the organic hue
        mats = np.array([perm.index(k) for k in range(3)])[np.maximum(labels, 0)]
        mats[labels < 0] = np.where(dark[labels < 0] > 0.5, 2, 0)
        dq, aq, tables = [], [], []
        for m in range(3):
            sel = mats == m
            d_q, a_q = _tone_map(dark[sel], ref.att[m])
            dq.append(d_q)
            aq.append(a_q)
            tables.append(_colour_table(rgb[sel], dark[sel], air, dark_max))
        ratio = ref.ratio
    return ScannerLook("grey" if grey else "colour", air, centres, np.stack(dq), np.stack(aq), np.asarray(ratio),
                       np.stack(tables), dark_max, _blur_of(images, air, ref), _noise_of(images, rng),
                       _scale_of(images, air, ref, float(np.interp(EXTENT_ATTENUATION, aq[0], dq[0]))), len(images))


def _blur_of(images: Sequence[np.ndarray], air: np.ndarray, ref: _Reference) -> float:
    ratios = [edge_ratio(darkness(as_rgb(img), air)) for img in images[:32]]
    r = float(np.nanmedian(ratios))
    return float(np.clip(REFERENCE_BLUR * ref.edge / max(r, 1e-6), 0.3, 6.0))


def _noise_of(images: Sequence[np.ndarray], rng: np.random.Generator) -> float:
    picks = rng.choice(len(images), min(8, len(images)), replace=False)
    return float(np.median([noise_level(as_rgb(images[i])) for i in picks]))


def _scale_of(images: Sequence[np.ndarray], air: np.ndarray, ref: _Reference, threshold: float) -> tuple[float, float]:
    """Parcel extent against the renderer's, both where attenuation exceeds EXTENT_ATTENUATION (here: the
    darkness the organic tone map gives it, `threshold`), so a tinted or noisy background does not count."""
    ext = np.array([extent(darkness(as_rgb(img), air) > threshold) for img in images], dtype=float)
    rows, cols = float(np.nanmedian(ext[:, 0])), float(np.nanmedian(ext[:, 1]))
    return (float(np.clip(rows / ref.extent[0], 0.1, 10.0)), float(np.clip(cols / ref.extent[1], 0.1, 10.0)))


# ------------------------------------------------------------------------------------------------ projection


def _materials(rgb: np.ndarray, d: np.ndarray, look: ScannerLook) -> np.ndarray:
    """Material index of every pixel: the material whose colour at this darkness is nearest (grey: 0)."""
    if look.mode == "grey":
        return np.zeros(d.shape, dtype=np.intp)
    b = np.clip((d / look.dark_max * N_BINS).astype(np.intp), 0, N_BINS - 1)
    dist = np.stack([np.linalg.norm(rgb - look.colours[m][b], axis=-1) for m in range(len(look.colours))])
    return np.argmin(dist, axis=0)


def _to_attenuation(d: np.ndarray, mats: np.ndarray, look: ScannerLook) -> np.ndarray:
    out = np.zeros(d.shape, dtype=np.float32)
    for m in range(len(look.dark_q)):
        sel = mats == m
        out[sel] = np.interp(d[sel], look.dark_q[m], look.att_q[m])
    out[d <= AIR_DARKNESS] = 0.0
    return out


def _to_colour(a_h: np.ndarray, mats: np.ndarray, look: ScannerLook) -> np.ndarray:
    """Colour the scanner shows for attenuation a_h of material `mats` (its tone map, then its colour table)."""
    out = np.zeros((*a_h.shape, 3), dtype=np.float32)
    centres = (np.arange(N_BINS) + 0.5) / N_BINS * look.dark_max
    for m in range(len(look.dark_q)):
        sel = mats == m
        d = np.interp(a_h[sel], look.att_q[m], look.dark_q[m], left=0.0)
        d = np.where(a_h[sel] <= 0.0, 0.0, d)
        for c in range(3):
            out[..., c][sel] = np.interp(d, np.concatenate([[0.0], centres]),
                                         np.concatenate([[look.air[c]], look.colours[m][:, c]]))
    return out


def scaled_signature(entry: LibraryEntry, look: ScannerLook) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(att_high, att_low, mask) resampled to the scanner's pixels and blurred by its blur (padded for the blur)."""
    sig = entry.signature()
    fy, fx = (s * entry.pixel_mm / REFERENCE_PIXEL_MM for s in look.scale)
    pad = int(np.ceil(3 * look.blur_sigma)) + 1
    maps = []
    for a in (sig.att_high, sig.att_low):
        z = zoom(a, (fy, fx), order=1, grid_mode=True, mode="grid-constant")
        maps.append(gaussian_filter(np.pad(z, pad), look.blur_sigma).astype(np.float32))
    m = zoom(sig.mask.astype(np.float32), (fy, fx), order=0, grid_mode=True, mode="grid-constant") > 0.5
    return maps[0], maps[1], np.pad(m, pad)


def project_colour(image: np.ndarray, entry: LibraryEntry, look: ScannerLook, rng: np.random.Generator,
                   top_left: tuple[int, int] | None = None,
                   ) -> tuple[np.ndarray, tuple[int, int, int, int], np.ndarray]:
    """The uint8 image (same shape and kind as `image`) with the library threat projected through the scanner's
    estimated look, the threat's box (x0, y0, x1, y1, end-exclusive) in it and its mask over that box. `top_left` None: a random place that keeps the
    threat inside the image where it fits."""
    t_h, t_l, mask = scaled_signature(entry, look)
    H, W = image.shape[:2]
    h, w = mask.shape
    if top_left is None:
        top_left = (int(rng.integers(0, max(H - h, 0) + 1)), int(rng.integers(0, max(W - w, 0) + 1)))
    y, x = top_left
    iy0, ix0, iy1, ix1 = max(y, 0), max(x, 0), min(y + h, H), min(x + w, W)
    if iy1 <= iy0 or ix1 <= ix0:
        raise ConfigError(f"threat of size {h}x{w} at {top_left} lies outside the {H}x{W} image")
    sy, sx = slice(iy0 - y, iy1 - y), slice(ix0 - x, ix1 - x)
    rgb = as_rgb(image[iy0:iy1, ix0:ix1])
    d = darkness(rgb, look.air)
    mats = _materials(rgb, d, look)
    a_h = _to_attenuation(d, mats, look)
    a_l = a_h * look.ratio[mats].astype(np.float32)
    new_h, new_l = a_h + t_h[sy, sx], a_l + t_l[sy, sx]
    new_mats = displayed_material(new_h, new_l) if look.mode == "colour" else np.zeros_like(mats)
    # the change the threat makes in this scanner's colours, added to its own pixels (texture, noise, JPEG stay)
    delta = _to_colour(new_h, new_mats, look) - _to_colour(a_h, mats, look)
    touched = t_h[sy, sx] > 1e-3
    noise = look.noise * np.minimum(t_h[sy, sx] / 0.1, 1.0)[..., None] * rng.standard_normal(rgb.shape).astype(np.float32)
    out_patch = np.clip(rgb + np.where(touched[..., None], delta + noise, 0.0), 0, 255)
    out = image.copy()
    out[iy0:iy1, ix0:ix1] = np.round(out_patch if image.ndim == 3 else out_patch.mean(axis=2)).astype(np.uint8)
    m = mask[sy, sx]
    rows, cols = np.flatnonzero(m.any(axis=1)), np.flatnonzero(m.any(axis=0))
    if not rows.size:
        return out, (ix0, iy0, ix1, iy1), m
    y0, y1, x0, x1 = int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1
    return out, (ix0 + x0, iy0 + y0, ix0 + x1, iy0 + y1), m[y0:y1, x0:x1]


def project_raw(high: np.ndarray, low: np.ndarray, entry: LibraryEntry, top_left: tuple[int, int],
                pixel_mm: float = REFERENCE_PIXEL_MM) -> tuple[np.ndarray, np.ndarray]:
    """A raw dual-energy scan (transmissions, pitch `pixel_mm`) with the threat added per energy in log space:
    transmissions multiply (xray.tip.project_threat); the signature is resampled to the scan's pitch."""
    sig = entry.signature()
    f = entry.pixel_mm / pixel_mm
    att_h, att_l = (zoom(a, f, order=1, grid_mode=True, mode="grid-constant") if f != 1.0 else a
                    for a in (sig.att_high, sig.att_low))
    return project_threat(high, low, att_h, att_l, top_left)


def paste_transmission(image: np.ndarray, entry: LibraryEntry, top_left: tuple[int, int]) -> np.ndarray:
    """A seizure's per-channel transmission map multiplied into another image of the same scanner (uint8)."""
    if entry.transmission is None:
        raise ConfigError(f"library entry {entry.article} has no transmission map")
    img = as_rgb(image) if entry.transmission.shape[2] == 3 else image.astype(np.float32)[..., None]
    (H, W), (h, w), (y, x) = image.shape[:2], entry.shape, top_left
    if not (0 <= y and 0 <= x and y + h <= H and x + w <= W):
        raise ConfigError(f"a {h}x{w} seizure at {top_left} does not fit inside the {H}x{W} image")
    img[y:y + h, x:x + w] *= entry.transmission
    out = np.round(np.clip(img, 0, 255)).astype(np.uint8)
    return out if image.ndim == 3 else out[..., 0]


def project_transmission(image: np.ndarray, entry: LibraryEntry, rng: np.random.Generator,
                         ) -> tuple[np.ndarray, tuple[int, int, int, int], np.ndarray]:
    """A seizure's transmission map pasted at a random place of another image of its own scanner (as
    project_colour returns: the image, the box x0, y0, x1, y1 of its mask, the mask over that box). A grey map in
    a colour image multiplies every channel; a colour map in a grey image is taken as its mean."""
    if entry.transmission is None:
        raise ConfigError(f"library entry {entry.article} has no transmission map")
    (H, W), (h, w) = image.shape[:2], entry.shape
    if h > H or w > W:
        raise ConfigError(f"a {h}x{w} seizure does not fit inside the {H}x{W} image")
    trans = entry.transmission  # (h, w, C)
    if image.ndim == 3 and trans.shape[2] == 1:
        trans = np.repeat(trans, 3, axis=2)
    elif image.ndim == 2 and trans.shape[2] == 3:
        trans = trans.mean(axis=2, keepdims=True)
    y, x = int(rng.integers(0, H - h + 1)), int(rng.integers(0, W - w + 1))
    out = paste_transmission(image, replace(entry, transmission=trans), (y, x))
    m = entry.mask
    rows, cols = np.flatnonzero(m.any(axis=1)), np.flatnonzero(m.any(axis=0))
    if not rows.size:
        return out, (x, y, x + w, y + h), m
    y0, y1, x0, x1 = int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1
    return out, (x + x0, y + y0, x + x1, y + y1), m[y0:y1, x0:x1]
