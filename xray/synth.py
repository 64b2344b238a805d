"""Physics renderer of synthetic dual-energy parcels: materials -> Beer–Lambert -> scanner effects.

A parcel is a container from the content library (an envelope to a packed suitcase) on the belt, turned by a
small angle, holding benign items from dozens of families (many of them dense metal) and, with probability
`threat_rate`, one or two threats, each a 3D assembly posed at random (xray.shapes, xray.stamp). Every part adds
mu(material, E) * chord length to the low- and high-energy log-attenuation images; then the scanner warps
(belt-speed jitter, fan-beam stretch), blurs (line scan), scales (gain, offset, column drift), adds counting
noise and saturates at the detector floor.
Images are H x W with W across the detector (default 512) and H along the belt (variable: parcels differ).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np
from scipy.ndimage import correlate1d, gaussian_filter1d

from xray.items import BENIGN_ITEMS, HELDOUT_BENIGN
from xray.library.catalogue import CONTAINERS
from xray.library.containers import Container
from xray.library.household import in_retail_box
from xray.materials import TRANSMISSION_FLOOR
from xray.palettes import PALETTES, get_palette, pseudo_colour
from xray.scenarios import ScannerState, ScenarioState, get_scenario
from xray.shapes import Thing
from xray.solids import rot_z
from xray.stamp import footprint, random_pose, stamp_thing
from xray.threats import check_classes, make_threat
from xscreen.errors import ConfigError

BELT_WIDTH_MM = 620.0  # the detector line spans the belt: sets pixels per mm from the image width
DEFAULT_WIDTH = 512
PHOTONS_HIGH, PHOTONS_LOW = 10_000.0, 5_000.0  # photons per pixel in air: sets quantum noise
ELECTRONIC_NOISE = 0.002  # transmission units, added in quadrature
BLUR_BELT_PX, BLUR_DETECTOR_PX = 0.7, 0.5  # line-scan blur sigmas (pixels) along the belt and across it
MIN_HEIGHT, MAX_HEIGHT = 384, 704  # rows of a default-size image (the parcel's length decides within these)
RETAIL_BOX_SHARE = 0.2  # benign items that come in their own thin carton
HELDOUT_BENIGN_SHARE = 0.4  # content split "heldout": share of benign items drawn from held-out families
PIXEL_MM_RANGE = (0.3, 4.0)  # accepted mm per pixel across the belt (None: BELT_WIDTH_MM / image width)
ContentSplit = Literal["train", "heldout", "all"]
CONTENT_SPLITS: tuple[ContentSplit, ...] = ("train", "heldout", "all")


@dataclass(frozen=True)
class ObjectInfo:
    name: str  # item type or `class:variant`, e.g. `narcotics:in_book_spine`
    material: str  # main material
    is_threat: bool
    class_name: str | None
    box: tuple[int, int, int, int]  # x0, y0, x1, y1 pixels (x1, y1 exclusive), clipped to the image


@dataclass(frozen=True)
class Parcel:
    high: np.ndarray  # float32 (H, W) transmission in [floor, 1]
    low: np.ndarray  # float32 (H, W)
    labels: list[str]  # sorted unique threat classes; [] = benign
    objects: list[ObjectInfo]
    masks: dict[int, np.ndarray] = field(default_factory=dict)  # objects index -> bool mask of its box (threats)
    scenario: str = "baseline"
    palette: str = "reference"
    seed: int = 0
    scanner_id: str = "scanner-1"
    progress: float = 0.0

    def rgb(self, palette: str | None = None) -> np.ndarray:
        """uint8 (H, W, 3) pseudo-colour with this parcel's palette (or another)."""
        return pseudo_colour(self.high, self.low, palette or self.palette)


def _check_args(classes: Sequence[str], threat_rate: float, progress: float,
                size: tuple[int, int] | None, content_split: str = "train", pixel_mm: float | None = None) -> None:
    check_classes(list(classes))
    if content_split not in CONTENT_SPLITS:
        raise ConfigError(f"content split must be one of {', '.join(CONTENT_SPLITS)}, got {content_split!r}")
    if pixel_mm is not None and not PIXEL_MM_RANGE[0] <= pixel_mm <= PIXEL_MM_RANGE[1]:
        raise ConfigError(f"pixel size must be within {PIXEL_MM_RANGE[0]} to {PIXEL_MM_RANGE[1]} mm, got {pixel_mm}")
    if not 0.0 <= threat_rate <= 1.0:
        raise ConfigError(f"threat rate must be within [0, 1], got {threat_rate}")
    if not 0.0 <= progress <= 1.0:
        raise ConfigError(f"scenario progress must be within [0, 1], got {progress}")
    if size is not None and (size[0] < 64 or size[1] < 64 or size[0] * size[1] > 16_000_000):
        raise ConfigError(f"image size must be at least 64x64 and at most 16 Mpixel, got {size[0]}x{size[1]}")


def _pick(rng: np.random.Generator, weights: dict[str, float], allowed: Sequence[str] | None = None) -> str:
    names = [k for k, w in weights.items() if w > 0 and (allowed is None or k in allowed)]
    if not names:
        names = list(allowed or weights)
    w = np.array([max(weights.get(k, 0.0), 0.0) for k in names])
    w = w / w.sum() if w.sum() > 0 else np.full(len(names), 1.0 / len(names))
    return names[int(rng.choice(len(names), p=w))]


def _pick_container(rng: np.random.Generator, split: ContentSplit) -> str:
    names = [n for n, (_, _, held) in CONTAINERS.items() if split != "train" or not held]
    if split == "heldout" and rng.random() < 0.5:  # an unseen scanner's mail: containers we never trained on
        names = [n for n, (_, _, held) in CONTAINERS.items() if held]
    return _pick(rng, {n: CONTAINERS[n][0] for n in names}, names)


def _layout(rng: np.random.Generator, size: tuple[int, int] | None, pixel_mm: float | None,
            split: ContentSplit) -> tuple[int, int, float, Container]:
    """(H, W, px_per_mm, container): the container fits the field of view and sets the image length."""
    W = size[0] if size else DEFAULT_WIDTH
    px_per_mm = 1.0 / pixel_mm if pixel_mm else W / BELT_WIDTH_MM
    max_h = size[1] if size else MAX_HEIGHT
    kind = _pick_container(rng, split)
    container = CONTAINERS[kind][1](rng, 0.92 * W / px_per_mm, 0.88 * max_h / px_per_mm)
    length_mm = 2.0 * container.thing.half[1]
    # a line scanner's image is as long as the parcel, plus a margin
    H = size[1] if size else int(np.clip(round(length_mm * px_per_mm * 1.15 + 40), MIN_HEIGHT, MAX_HEIGHT))
    return H, W, px_per_mm, container


_NOISE_BANK: np.ndarray | None = None


def _noise(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    """Standard normal noise: a random window of a fixed 4 M-sample bank, sign flipped at random.

    Drawing 2 x 262k fresh normals costs ~5 ms, a quarter of the time budget of one image; a window of a bank
    is free and, at a random offset, no less random for a detector model. Deterministic given `rng`.
    """
    global _NOISE_BANK
    n = shape[0] * shape[1]
    if _NOISE_BANK is None:
        _NOISE_BANK = np.random.default_rng(20240601).standard_normal(1 << 22, dtype=np.float32)
    if n > _NOISE_BANK.size // 2:
        return rng.standard_normal(shape, dtype=np.float32)
    start = int(rng.integers(0, _NOISE_BANK.size - n))
    window = _NOISE_BANK[start:start + n].reshape(shape)
    return -window if rng.random() < 0.5 else window


def _blur(t: np.ndarray, sigma: float, axis: int) -> np.ndarray:
    """Gaussian blur along one axis; a 3-tap kernel when sigma <= 1 (2-4x faster than gaussian_filter1d)."""
    if sigma > 1.0:
        return gaussian_filter1d(t, sigma, axis=axis, truncate=3.0)
    w = np.exp(-1.0 / (2 * sigma * sigma))
    side, mid = np.float32(w / (1 + 2 * w)), np.float32(1 / (1 + 2 * w))
    if axis == 1:  # along rows ndimage is the faster of the two
        return correlate1d(t, np.array([side, mid, side], dtype=np.float32), axis=1, mode="nearest")
    out = t * mid
    out[1:] += side * t[:-1]
    out[:-1] += side * t[1:]
    out[0] += side * t[0]  # nearest-edge border, as ndimage's mode="nearest"
    out[-1] += side * t[-1]
    return out


def _scanner(acc_h: np.ndarray, acc_l: np.ndarray, rng: np.random.Generator,
             sc: ScannerState) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Attenuation -> measured transmission; returns (high, low, row map, column map) of the warp."""
    H, W = acc_h.shape
    speed = 1.0 + 0.04 * np.cumsum(rng.standard_normal(H)) / np.sqrt(H)  # belt speed wanders a little
    pos = np.cumsum(np.clip(speed, 0.8, 1.2))
    rows = np.clip(np.round((pos - pos[0]) / (pos[-1] - pos[0]) * (H - 1)), 0, H - 1).astype(np.intp)
    k = rng.uniform(0.0, 0.08)  # fan-beam: the outer detector columns see a stretched parcel
    xn = (np.arange(W) - W / 2) / (W / 2)
    cols = np.clip(np.round(W / 2 + (W / 2) * xn * (1 + k * xn**2) / (1 + k)), 0, W - 1).astype(np.intp)
    out = []
    for acc, photons in ((acc_h, PHOTONS_HIGH), (acc_l, PHOTONS_LOW)):
        t = acc.take(rows, axis=0).take(cols, axis=1)  # (H, W); two takes are 3x faster than np.ix_ indexing
        np.exp(np.negative(t, out=t), out=t)
        t = _blur(_blur(t, BLUR_BELT_PX * sc.blur_scale, 0), BLUR_DETECTOR_PX * sc.blur_scale, 1)
        column_gain = np.asarray(rng.standard_normal(W, dtype=np.float32)) * np.float32(sc.column_drift) + 1.0
        t *= np.float32(sc.gain) * column_gain[None, :]
        t += np.float32(sc.offset)
        np.maximum(t, 0, out=t)
        sigma = t * np.float32(1.0 / photons)
        sigma += np.float32(ELECTRONIC_NOISE**2)
        np.sqrt(sigma, out=sigma)
        sigma *= _noise(rng, t.shape)
        if sc.noise_scale != 1.0:
            sigma *= np.float32(sc.noise_scale)
        t += sigma
        np.clip(t, TRANSMISSION_FLOOR, 1.0, out=t)
        out.append(t)
    return out[0], out[1], rows, cols


def _jitter(rng: np.random.Generator, sc: ScannerState) -> ScannerState:
    """Units of one model differ a little: noise x0.75-1.35, blur x0.85-1.2, gain +-2% (domain randomisation)."""
    return replace(sc, noise_scale=sc.noise_scale * rng.uniform(0.75, 1.35),
                   blur_scale=sc.blur_scale * rng.uniform(0.85, 1.2), gain=sc.gain * rng.uniform(0.98, 1.02))


def _warp_edges(box: tuple[int, int, int, int], rows: np.ndarray,
                cols: np.ndarray) -> tuple[int, int, int, int] | None:
    """The output pixels whose source lies in the box: rows/cols are non-decreasing, so two searches each."""
    x0, y0, x1, y1 = box
    ya, yb = int(np.searchsorted(rows, y0, "left")), int(np.searchsorted(rows, y1, "left"))
    xa, xb = int(np.searchsorted(cols, x0, "left")), int(np.searchsorted(cols, x1, "left"))
    if yb <= ya or xb <= xa:
        return None
    return xa, ya, xb, yb


def _warp_box(box: tuple[int, int, int, int], mask: np.ndarray, rows: np.ndarray,
              cols: np.ndarray) -> tuple[tuple[int, int, int, int], np.ndarray] | None:
    """Carry a box and its mask through the monotone row/column maps of the scanner warp."""
    x0, y0, x1, y1 = box
    ys = np.flatnonzero((rows >= y0) & (rows < y1))
    xs = np.flatnonzero((cols >= x0) & (cols < x1))
    if ys.size == 0 or xs.size == 0:
        return None
    m = mask[np.ix_(rows[ys] - y0, cols[xs] - x0)]
    rr, cc = np.flatnonzero(m.any(axis=1)), np.flatnonzero(m.any(axis=0))
    if rr.size == 0:
        return None
    m = m[rr[0]:rr[-1] + 1, cc[0]:cc[-1] + 1]
    return (int(xs[cc[0]]), int(ys[rr[0]]), int(xs[cc[-1]]) + 1, int(ys[rr[-1]]) + 1), m


def render_parcel(rng: np.random.Generator, *, classes: Sequence[str], scenario: str = "baseline",
                  progress: float = 0.0, threat_rate: float = 0.5, size: tuple[int, int] | None = None,
                  scanner_id: str = "scanner-1", palette: str | None = None, content_split: ContentSplit = "train",
                  pixel_mm: float | None = None) -> Parcel:
    """Render one parcel. `size` is (width, height) pixels; None = 512 wide, height from the parcel length.

    The parcel is reproducible from `Parcel.seed` alone: render_parcel(np.random.default_rng(seed), ...) with
    the same arguments rebuilds it. `palette` None = drawn from the scenario's vendor mix. `content_split`:
    "train" never draws the held-out object families (docs/DATA.md), "heldout" draws threats from them and
    mixes held-out benign families into the rest, "all" draws everything. `pixel_mm`: mm per pixel across the
    belt (None: the belt's 620 mm span the image width), which sets the apparent size of every object.
    """
    _check_args(classes, threat_rate, progress, size, content_split, pixel_mm)
    if palette is not None:
        get_palette(palette)
    state = get_scenario(scenario).state(progress, scanner_id)
    seed = int(rng.integers(0, 2**31 - 1))
    return _render(np.random.default_rng(seed), seed, list(classes), state, scenario, progress, threat_rate,
                   size, scanner_id, palette, content_split, pixel_mm)


def _benign_item(rng: np.random.Generator, state: ScenarioState, split: ContentSplit, max_side: float) -> Thing | None:
    """A benign item that fits the container (a few redraws, else none)."""
    allowed = [k for k in BENIGN_ITEMS if split != "train" or k not in HELDOUT_BENIGN]
    for _ in range(4):
        weights = state.benign_weights
        if split == "heldout" and rng.random() < HELDOUT_BENIGN_SHARE:
            weights = dict.fromkeys(HELDOUT_BENIGN, 1.0)
        item = BENIGN_ITEMS[_pick(rng, weights, allowed)](rng)
        if 2.0 * max(item.half[0], item.half[1]) > max_side:
            continue
        if rng.random() < RETAIL_BOX_SHARE and item.name != "packing":
            item = in_retail_box(item, rng)
        return item
    return None


def _choose_contents(rng: np.random.Generator, classes: list[str], state: ScenarioState, threat_rate: float,
                     container: Container, split: ContentSplit) -> list[tuple[Thing, str | None]]:
    contents: list[tuple[Thing, str | None]] = []
    lo, hi = container.items
    for _ in range(int(rng.integers(lo, hi + 1))):
        item = _benign_item(rng, state, split, container.max_item * 1.1)
        if item is not None:
            contents.append((item, None))
    if classes and rng.random() < threat_rate:
        first = _pick(rng, state.threat_weights, classes)
        chosen = [first]
        others = [c for c in classes if c != first]
        if others and rng.random() < 0.2:  # some parcels carry two kinds of threat
            chosen.append(_pick(rng, state.threat_weights, others))
        for cls in chosen:
            # a threat takes the place of a benign item: the number of objects must not tell threat parcels apart
            if contents:
                contents.pop()
            threat = make_threat(rng, cls, state.variant_weights.get(cls), split)
            if rng.random() < RETAIL_BOX_SHARE:  # bought online: in its own carton, like the goods
                threat = in_retail_box(threat, rng)
            contents.append((threat, cls))
    order = rng.permutation(len(contents))  # threats are not always on top or at the end
    return [contents[i] for i in order]


def _render(rng: np.random.Generator, seed: int, classes: list[str], state: ScenarioState, scenario: str,
            progress: float, threat_rate: float, size: tuple[int, int] | None, scanner_id: str,
            palette: str | None, split: ContentSplit = "train", pixel_mm: float | None = None) -> Parcel:
    H, W, ppm, container = _layout(rng, size, pixel_mm, split)
    acc = np.zeros((2, H, W), dtype=np.float32)  # log-attenuation at (high, low) energy
    theta = rng.uniform(-0.25, 0.25)  # the parcel lies turned on the belt
    pcx, pcy = W / 2 + rng.uniform(-0.08, 0.08) * W, H / 2 + rng.uniform(-0.04, 0.04) * H
    placed: list[tuple[Thing, str | None, tuple[int, int, int, int], np.ndarray | None]] = []
    hit = stamp_thing(acc, container.thing, rot_z(theta), pcx, pcy, ppm, rng, mask=False, clamp=False)
    if hit:
        placed.append((container.thing, None, *hit))
    c, s = np.cos(theta), np.sin(theta)
    inner_w, inner_l = container.inner
    for thing, cls in _choose_contents(rng, classes, state, threat_rate, container, split):
        pose = rot_z(theta) @ random_pose(rng, thing.poses)
        fx, fy = footprint(thing, pose)
        # inside the container where it fits; threats stay whole, clutter may bulge at the walls
        slack = 1.0 if cls else 0.6
        u = rng.uniform(-1, 1) * max(inner_w / 2 - slack * fx, 0.0)
        v = rng.uniform(-1, 1) * max(inner_l / 2 - slack * fy, 0.0)
        ox, oy = (c * u - s * v) * ppm, (s * u + c * v) * ppm
        hit = stamp_thing(acc, thing, pose, pcx + ox, pcy + oy, ppm, rng, mask=cls is not None)
        if hit:
            placed.append((thing, cls, *hit))
    high, low, rows, cols = _scanner(acc[0], acc[1], rng, _jitter(rng, state.scanner))
    objects: list[ObjectInfo] = []
    masks: dict[int, np.ndarray] = {}
    for thing, cls, box, mask in placed:
        if cls is None:  # benign: the box alone, through the monotone maps (no mask to carry)
            bbox = _warp_edges(box, rows, cols)
            if bbox is not None:
                objects.append(ObjectInfo(thing.name, thing.main_material, False, None, bbox))
            continue
        warped = _warp_box(box, mask, rows, cols) if mask is not None else None
        if warped is None:
            continue
        masks[len(objects)] = warped[1]
        objects.append(ObjectInfo(thing.name, thing.main_material, True, cls, warped[0]))
    labels = sorted({o.class_name for o in objects if o.class_name})
    chosen_palette = palette or _pick(rng, state.palette_weights, list(PALETTES))
    return Parcel(high, low, labels, objects, masks, scenario, chosen_palette, seed, scanner_id, progress)
