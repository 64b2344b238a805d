"""Scanner styles: a continuous family of ways a scanner turns a rendered parcel into an image file.

The renderer (`xray.synth`) gives transmissions with one default detector stage. A real scanner adds its own
detector behaviour, its vendor's display processing (palette, tone curve, edge enhancement), its pixel pitch and
export size, and often JPEG. A `ScannerStyle` holds every one of those choices as explicit numbers (serialisable
to JSON, recorded per image in data set manifests); `sample_style(rng, family)` draws one; `apply_style` turns a
`Parcel` into the pixels and boxes that scanner's file would hold. Families:

- `reference`: today's images, exactly (the parcel's named palette, nothing added);
- `train`: the broad training family (domain randomisation: no hue, tone, scale, size or codec is special);
- `heldout`: a region of style space `train` never draws (hue family, tone curve, detector model; docs/DATA.md),
  the measure of "a scanner we never saw"; `heldout-grey` and `heldout-jpeg` are its grey-only and
  JPEG-compressed variants.
"""

from __future__ import annotations

import colorsys
import io
import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal

import numpy as np
from PIL import Image

from xray import scanner_ops as ops
from xray.palettes import PALETTES, Palette, pseudo_colour
from xray.scanner_ops import DetectorModel, DisplayMapping, DisplayMode
from xray.synth import ObjectInfo, Parcel, render_parcel
from xscreen.errors import ConfigError

FAMILIES = ("reference", "train", "heldout", "heldout-grey", "heldout-jpeg")
Field = Literal["belt", "parcel", "padded"]
STYLE_STREAM = 0x5717E  # third seed word of a style's rng: rng([seed, i, STYLE_STREAM]) beside the parcel's rng([seed, i])

# Hue ranges (degrees) of the continuous palette family. Training draws organic / inorganic / metal anchors from
# TRAIN_HUES (vendor B's swap of inorganic and metal included); the held-out family from HELDOUT_HUES, beyond
# every training range by more than the training augmentation's hue jitter (screening.augment, 8 degrees).
TRAIN_HUES = ((5.0, 40.0), (80.0, 140.0), (195.0, 245.0))
HELDOUT_HUES = ((50.0, 60.0), (150.0, 170.0), (262.0, 285.0))


@dataclass(frozen=True)
class ImageGeometry:
    """Field of view, pixel pitch, aspect and export size."""

    field: Field = "belt"  # the whole belt image, cropped to the parcel, or padded with air around it
    margin: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)  # left, top, right, bottom: share of the side
    # detector pitch across the belt, mm: a render-time setting (render_styled passes it to render_parcel, which
    # fits the parcel to the field it gives, so it sets the apparent size of every object); None: 620 mm / width
    pixel_mm: float | None = None
    aspect: float = 1.0  # pixel height / width: > 1 stretches along the belt (line rate slower than the belt)
    long_side: int | None = None  # exported image's longer side in pixels (None: as acquired)


@dataclass(frozen=True)
class ScannerStyle:
    """Everything one scanner does between attenuation and file. Frozen; `to_dict` / `from_dict` round-trip."""

    family: str
    detector: DetectorModel = field(default_factory=DetectorModel)
    display: DisplayMapping = field(default_factory=DisplayMapping)
    geometry: ImageGeometry = field(default_factory=ImageGeometry)
    jpeg_quality: int | None = None  # None: lossless (PNG)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ScannerStyle:
        """The style `to_dict` wrote (e.g. a manifest's `style` column, JSON-decoded); ConfigError if it is not one."""
        try:
            return cls._from_dict(d)
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(f"not a scanner style ({type(exc).__name__}: {exc})") from None

    @classmethod
    def _from_dict(cls, d: dict[str, Any]) -> ScannerStyle:
        det = dict(d["detector"])
        det["dead_lines"] = tuple(tuple(x) for x in det["dead_lines"])
        disp = dict(d["display"])
        if disp["palette"] is not None:
            p = dict(disp["palette"])
            p["anchors"] = tuple((float(r), tuple(float(c) for c in rgb)) for r, rgb in p["anchors"])
            disp["palette"] = Palette(**p)
        geo = dict(d["geometry"])
        geo["margin"] = tuple(geo["margin"])
        return cls(d["family"], DetectorModel(**det), DisplayMapping(**disp), ImageGeometry(**geo),
                   d["jpeg_quality"])

    @property
    def file_format(self) -> Literal["png", "jpeg"]:
        return "png" if self.jpeg_quality is None else "jpeg"


REFERENCE_STYLE = ScannerStyle("reference")


@dataclass(frozen=True)
class StyledScan:
    """A parcel as one scanner's file holds it: pixels, ground truth carried through the geometry, the style."""

    image: np.ndarray  # uint8 (H, W, 3) colour or (H, W) grey: exactly what decoding the file gives
    labels: list[str]
    objects: list[ObjectInfo]  # boxes in this image's pixels (x1, y1 exclusive)
    masks: dict[int, np.ndarray]  # objects index -> bool mask of its box (threats)
    style: ScannerStyle
    palette: str  # the named palette, or "styled" for a drawn one, or "grey"
    jpeg: bytes | None = None  # the JPEG file when the style compresses (so file bytes and pixels agree)

    def encode(self) -> bytes:
        """The file: the JPEG the style produced, else a PNG (RGB or 8-bit grey) of the pixels."""
        if self.jpeg is not None:
            return self.jpeg
        buf = io.BytesIO()
        Image.fromarray(self.image).save(buf, format="PNG", compress_level=6)
        return buf.getvalue()


# --------------------------------------------------------------------------------------------------- sampling


def _u(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(rng.uniform(lo, hi))


def _log_u(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(math.exp(rng.uniform(math.log(lo), math.log(hi))))


def _hsv(hue_deg: float, s: float, v: float) -> tuple[float, float, float]:
    r, g, b = colorsys.hsv_to_rgb((hue_deg % 360.0) / 360.0, s, v)
    return (round(r, 4), round(g, 4), round(b, 4))


def _anchors(rng: np.random.Generator, hues: tuple[float, float, float],
             six: bool) -> tuple[tuple[float, tuple[float, float, float]], ...]:
    """Organic / inorganic / metal anchors (ratio, rgb) at the given hues; `six` adds in-between anchors."""
    ratios = (_u(rng, 1.15, 1.3), _u(rng, 1.6, 1.95), _u(rng, 2.6, 3.4))
    cols = [_hsv(h, _u(rng, 0.65, 1.0), _u(rng, 0.8, 1.0)) for h in hues]
    anchors = list(zip(ratios, cols, strict=True))
    if six:  # vendor C style: finer steps along Z, colours between the neighbours' (no new hue family)
        mids = []
        for (r0, c0), (r1, c1) in zip(anchors, anchors[1:], strict=False):
            w = _u(rng, 0.35, 0.65)
            mix = (c0[0] + w * (c1[0] - c0[0]), c0[1] + w * (c1[1] - c0[1]), c0[2] + w * (c1[2] - c0[2]))
            mids.append((r0 + w * (r1 - r0), (round(mix[0], 4), round(mix[1], 4), round(mix[2], 4))))
        anchors = sorted(anchors + mids)
    return tuple((round(r, 4), c) for r, c in anchors)


def _palette(rng: np.random.Generator, hue_ranges: tuple[tuple[float, float], ...], *, swap_p: float,
             six_p: float, tone: tuple[float, float, float]) -> Palette:
    hues = [_u(rng, lo, hi) for lo, hi in hue_ranges]
    if rng.random() < swap_p:  # vendor B: inorganic blue, metal green
        hues[1], hues[2] = hues[2], hues[1]
    return Palette(
        "styled", "drawn by xray.styles", _anchors(rng, (hues[0], hues[1], hues[2]), rng.random() < six_p),
        saturation_scale=round(_u(rng, 0.2, 0.5), 4), brightness_scale=round(_u(rng, 2.0, 4.2), 4),
        brightness_gamma=round(_u(rng, 0.7, 1.5), 4), air_threshold=round(_u(rng, 0.02, 0.06), 4),
        smoothing=int(rng.choice([1, 3, 5], p=[0.25, 0.5, 0.25])),
        tone_gamma=round(tone[0], 4), tone_contrast=round(tone[1], 4), tone_mid=round(tone[2], 4),
    )


def _train_detector(rng: np.random.Generator) -> DetectorModel:
    n_dead = int(min(rng.poisson(0.4), 3))
    return DetectorModel(
        blur_belt=_u(rng, 0.0, 1.0) if rng.random() < 0.6 else 0.0,
        blur_across=_u(rng, 0.0, 1.0) if rng.random() < 0.6 else 0.0,
        afterglow=_u(rng, 0.0, 0.2) if rng.random() < 0.4 else 0.0,
        afterglow_reverse=bool(rng.random() < 0.5),
        noise=_log_u(rng, 0.002, 0.03) if rng.random() < 0.7 else 0.0,
        streaks=_u(rng, 0.0, 0.008) if rng.random() < 0.5 else 0.0,
        dead_lines=tuple((round(_u(rng, 0.02, 0.98), 4), float(rng.random() < 0.5)) for _ in range(n_dead)),
        # flat-field calibration keeps air near white: a few percent off (a tinted background) at most
        gain=_u(rng, 0.96, 1.05), offset=_u(rng, -0.005, 0.01),
        unsharp_amount=_u(rng, 0.2, 1.0) if rng.random() < 0.3 else 0.0, unsharp_sigma=_u(rng, 1.0, 2.5),
    )


def _heldout_detector(rng: np.random.Generator) -> DetectorModel:
    """Beyond the training ranges: long afterglow, line banding (never in training), strong wide edge
    enhancement and more blur than any training style."""
    return DetectorModel(
        blur_belt=_u(rng, 1.1, 1.5), blur_across=_u(rng, 1.1, 1.5), afterglow=_u(rng, 0.28, 0.38),
        afterglow_reverse=bool(rng.random() < 0.5), noise=_log_u(rng, 0.004, 0.02), row_banding=_u(rng, 0.01, 0.02),
        streaks=_u(rng, 0.0, 0.01), gain=_u(rng, 0.92, 1.06), offset=_u(rng, -0.01, 0.015),
        unsharp_amount=_u(rng, 1.3, 1.8), unsharp_sigma=_u(rng, 2.6, 3.5),
    )


def _train_geometry(rng: np.random.Generator) -> ImageGeometry:
    kind: Field = str(rng.choice(["belt", "parcel", "padded"], p=[0.35, 0.45, 0.2]))  # type: ignore[assignment]
    if kind == "parcel":  # cropped to the parcel with a little air, as most exported scans are
        margin = tuple(round(_u(rng, 0.01, 0.2), 4) for _ in range(4))
    elif kind == "padded":  # more air than the belt: objects look smaller
        margin = tuple(round(_u(rng, 0.05, 0.4), 4) for _ in range(4))
    else:
        margin = (0.0, 0.0, 0.0, 0.0)
    return ImageGeometry(kind, margin, pixel_mm=round(_log_u(rng, 0.8, 2.0), 4) if rng.random() < 0.7 else None,  # type: ignore[arg-type]
                         aspect=round(_log_u(rng, 0.85, 1.18), 4),
                         long_side=int(_log_u(rng, 192, 768)) if rng.random() < 0.7 else None)


def _grey_mapping(rng: np.random.Generator, heldout: bool) -> DisplayMapping:
    w = float(rng.choice([0.0, 1.0, _u(rng, 0.2, 0.8)], p=[0.6, 0.2, 0.2]))
    if heldout:  # an S-shaped tone curve: a form no training style has
        return DisplayMapping("grey", None, w, 1.0, _u(rng, 7.0, 10.0), _u(rng, 0.55, 0.7))
    mode: DisplayMode = "grey_inverted" if rng.random() < 0.12 else "grey"
    return DisplayMapping(mode, None, w, _log_u(rng, 0.5, 2.0))


def sample_palette(rng: np.random.Generator) -> Palette:
    """A colour palette of the training family: one of the four named vendor palettes (points of the family,
    20%) or one drawn from the continuous family (hues in TRAIN_HUES, swaps, six-colour steps, tone curves)."""
    if rng.random() < 0.2 / 0.78:
        return PALETTES[str(rng.choice(sorted(PALETTES)))]
    return _palette(rng, TRAIN_HUES, swap_p=0.15, six_p=0.2, tone=(_log_u(rng, 0.75, 1.35), 0.0, 0.5))


def _train_style(rng: np.random.Generator) -> ScannerStyle:
    if rng.random() < 0.78:
        display = DisplayMapping("colour", sample_palette(rng))
    else:
        display = _grey_mapping(rng, heldout=False)
    quality = int(rng.integers(45, 96)) if rng.random() < 0.35 else None
    return ScannerStyle("train", _train_detector(rng), display, _train_geometry(rng), quality)


def _heldout_style(rng: np.random.Generator, family: str) -> ScannerStyle:
    """The held-out style; its grey and JPEG variants are the same draw (same detector, palette, geometry) with
    the display turned to grey or the export compressed, so each variant changes one thing."""
    detector = _heldout_detector(rng)
    colour = DisplayMapping("colour", _palette(rng, HELDOUT_HUES, swap_p=0.0, six_p=0.0,
                                               tone=(1.0, _u(rng, 6.0, 9.0), _u(rng, 0.45, 0.6))))
    grey = _grey_mapping(rng, heldout=True)
    geometry = replace(_train_geometry(rng), aspect=round(_u(rng, 1.22, 1.32), 4))
    quality = int(rng.integers(20, 41))
    return ScannerStyle(family, detector, grey if family == "heldout-grey" else colour, geometry,
                        quality if family == "heldout-jpeg" else None)


def sample_style(rng: np.random.Generator, family: str) -> ScannerStyle:
    """One scanner style drawn from `family` (see FAMILIES); ConfigError for an unknown family."""
    if family == "reference":
        return REFERENCE_STYLE
    if family == "train":
        return _train_style(rng)
    if family in ("heldout", "heldout-grey", "heldout-jpeg"):
        return _heldout_style(rng, family)
    raise ConfigError(f"unknown scanner style family {family!r}; known: {', '.join(FAMILIES)}")


def rotate_palette_hue(palette: Palette, degrees: float) -> Palette:
    """The palette with every anchor's hue turned by `degrees` (saturation and value kept): a hue calibration
    off by that much."""
    anchors = []
    for ratio, rgb in palette.anchors:
        h, s, v = colorsys.rgb_to_hsv(*rgb)
        anchors.append((ratio, _hsv(h * 360.0 + degrees, s, v)))
    return replace(palette, name=f"{palette.name}{degrees:+g}deg", anchors=tuple(anchors))


def style_rng(seed: int, index: int) -> np.random.Generator:
    """The rng that draws image `index`'s style in a set of seed `seed` (independent of its parcel's rng)."""
    return np.random.default_rng([seed, index, STYLE_STREAM])


# ------------------------------------------------------------------------------------------------- application


def _field_of_view(parcel: Parcel, geo: ImageGeometry) -> tuple[np.ndarray, np.ndarray, ops.PixelMap]:
    """The belt image, the parcel cropped with a little air, or the belt padded with more air."""
    if geo.field == "belt":
        return parcel.high, parcel.low, ops.PixelMap()
    H, W = parcel.high.shape
    x0, y0, x1, y1 = ops.content_box(parcel.objects, (H, W)) if geo.field == "parcel" else (0, 0, W, H)
    bw, bh = x1 - x0, y1 - y0
    left, top, right, bottom = geo.margin
    wx0, wy0 = x0 - round(left * bw), y0 - round(top * bh)
    wx1, wy1 = max(x1 + round(right * bw), wx0 + 16), max(y1 + round(bottom * bh), wy0 + 16)
    return (ops.window(parcel.high, wx0, wy0, wx1, wy1), ops.window(parcel.low, wx0, wy0, wx1, wy1),
            ops.PixelMap(float(wx0), float(wy0)))


def _sizes(shape: tuple[int, int], geo: ImageGeometry, max_side: int | None) -> tuple[tuple[int, int], tuple[int, int]]:
    """((w, h) the planes are resampled to before the detector, (w, h) of the exported image).

    The exported image is the acquired one (aspect) scaled to `long_side`. Every reduction happens once, on
    the raw planes, before the detector and the display (a coarser detector then integrates each exported pixel:
    a scanner exporting fewer pixels looks the same, and the per-pixel work shrinks with the image); an export
    larger than the acquisition is an 8-bit upscale of the displayed image, as vendor software does it.
    `max_side` caps both (the in-memory training path: finer than ~its canvas is averaged away by the letterbox).
    """
    H, W = shape
    fx, fy = 1.0, 1.0 / geo.aspect
    out = geo.long_side / max(H * fy, W * fx) if geo.long_side else 1.0
    if max_side:
        out = min(out, max_side / max(H * fy, W * fx))
    work = min(out, 1.0)
    size = lambda f: (max(16, round(W * fx * f)), max(16, round(H * fy * f)))  # noqa: E731
    return size(work), size(out)


def _resample(high: np.ndarray, low: np.ndarray, w: int, h: int,
              m: ops.PixelMap) -> tuple[np.ndarray, np.ndarray, ops.PixelMap]:
    H, W = high.shape
    if (w, h) == (W, H):
        return high, low, m
    return ops.resize(high, w, h), ops.resize(low, w, h), m.then_scale(w / W, h / H)


def _display(high: np.ndarray, low: np.ndarray, d: DisplayMapping, palette: str) -> tuple[np.ndarray, str]:
    if d.mode == "colour":
        p = d.palette if d.palette is not None else PALETTES[palette]
        return pseudo_colour(high, low, p), p.name
    return ops.grey(high, low, d), d.mode


def content_split_for(family: str) -> str:
    """The renderer's content split a family's parcels hold: the held-out styles show held-out object families
    too (a scanner we never saw, in mail we never saw); the others the training families."""
    return "heldout" if family.startswith("heldout") else "train"


def render_styled(rng: np.random.Generator, style: ScannerStyle, *, classes: Sequence[str],
                  content_split: str | None = None, max_side: int | None = None,
                  **render: Any) -> tuple[Parcel, StyledScan]:
    """Render a parcel for `style` (its detector pitch; the content split of its family unless given; `render`:
    the other render_parcel arguments) and apply the style: (the parcel, the scan as that scanner exports it)."""
    split = content_split or content_split_for(style.family)
    parcel = render_parcel(rng, classes=classes, pixel_mm=style.geometry.pixel_mm, content_split=split,  # type: ignore[arg-type]
                           **render)
    return parcel, apply_style(parcel, style, max_side=max_side)


def apply_style(parcel: Parcel, style: ScannerStyle, rng: np.random.Generator | None = None, *,
                max_side: int | None = None) -> StyledScan:
    """The parcel as a scanner of `style` exports it. `rng` draws the detector's noise (default: from the
    parcel's seed, so one (parcel, style) pair always gives the same pixels). `max_side` caps the longer side of
    the work and of the export (see _sizes; None: the style's own sizes, what `xscreen synth` writes)."""
    if style == REFERENCE_STYLE:  # today's images exactly: the parcel's own palette, nothing added
        image = pseudo_colour(parcel.high, parcel.low, parcel.palette)
        return StyledScan(image, list(parcel.labels), list(parcel.objects), dict(parcel.masks), style, parcel.palette)
    rng = rng if rng is not None else np.random.default_rng([parcel.seed, STYLE_STREAM])
    high, low, m = _field_of_view(parcel, style.geometry)
    work, export = _sizes(high.shape, style.geometry, max_side)
    high, low, m = _resample(high, low, *work, m)
    if style.detector != DetectorModel():
        high, low = ops.detector(high, low, style.detector, rng)
    image, palette = _display(high, low, style.display, parcel.palette)
    if export != work:
        image, m = ops.resize(image, *export), m.then_scale(export[0] / work[0], export[1] / work[1])
    jpeg = None
    if style.jpeg_quality is not None:
        jpeg, image = ops.jpeg_round_trip(image, style.jpeg_quality)
    objects, masks = ops.carry(list(parcel.objects), parcel.masks, m, image.shape[:2])
    labels = sorted({o.class_name for o in objects if o.is_threat and o.class_name})
    return StyledScan(image, labels, objects, masks, style, palette, jpeg)
