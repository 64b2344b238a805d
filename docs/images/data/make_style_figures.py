"""Pictures of the scanner styles (xray.styles) for docs/DATA.md: the palette family, the training family on a few
parcels, each detector / geometry / codec effect alone, and the held-out style with its grey and JPEG variants.

`.venv/bin/python docs/images/data/make_style_figures.py` (about half a minute)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from xray.palettes import PALETTES, Palette, palette_lut
from xray.styles import (
    REFERENCE_STYLE,
    DetectorModel,
    DisplayMapping,
    ImageGeometry,
    ScannerStyle,
    StyledScan,
    apply_style,
    render_styled,
    sample_palette,
    sample_style,
    style_rng,
)
from xray.synth import Parcel, render_parcel
from xscreen.settings import DEFAULT_CLASSES

OUT = Path(__file__).parent
TILE = 220  # longest side of a tile, pixels


def _tile(scan: StyledScan, label: str, boxes: bool = True) -> Image.Image:
    img = Image.fromarray(scan.image).convert("RGB")
    if boxes:
        draw = ImageDraw.Draw(img)
        for o in scan.objects:
            if o.is_threat:
                draw.rectangle([o.box[0], o.box[1], o.box[2] - 1, o.box[3] - 1], outline=(230, 0, 0), width=2)
    img.thumbnail((TILE, TILE))
    framed = Image.new("RGB", (TILE, TILE + 16), (235, 235, 235))
    framed.paste(img, ((TILE - img.width) // 2, 16 + (TILE - img.height) // 2))
    ImageDraw.Draw(framed).text((3, 2), label, fill=(0, 0, 0))
    return framed


def _sheet(tiles: list[Image.Image], cols: int) -> Image.Image:
    rows = (len(tiles) + cols - 1) // cols
    w, h = tiles[0].size
    sheet = Image.new("RGB", (cols * (w + 4), rows * (h + 4)), (235, 235, 235))
    for k, t in enumerate(tiles):
        sheet.paste(t, ((k % cols) * (w + 4), (k // cols) * (h + 4)))
    return sheet


def _save(img: Image.Image, name: str) -> None:
    img.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(OUT / name, optimize=True)


def _swatch(p: Palette, label: str) -> Image.Image:
    """The palette's lookup table: material ratio down (organic at the top), attenuation across."""
    lut = palette_lut(p)[:, ::2]  # (96, 128, 3)
    img = Image.fromarray(np.ascontiguousarray(lut)).resize((128, 72), Image.Resampling.NEAREST)
    framed = Image.new("RGB", (128, 88), (235, 235, 235))
    framed.paste(img, (0, 16))
    ImageDraw.Draw(framed).text((2, 2), label[:21], fill=(0, 0, 0))
    return framed


def palette_family_figure() -> None:
    swatches = [_swatch(p, name) for name, p in PALETTES.items()]
    rng = np.random.default_rng(3)
    drawn = [sample_palette(rng) for _ in range(40)]
    swatches += [_swatch(p, "train draw") for p in drawn if p.name == "styled"][:8]
    swatches += [_swatch(sample_style(style_rng(5, i), "heldout").display.palette, "held out")  # type: ignore[arg-type]
                 for i in range(4)]
    _sheet(swatches, 8).save(OUT / "styles_palettes.png", optimize=True)  # smooth ramps: not quantised


def _parcel(i: int) -> Parcel:
    return render_parcel(np.random.default_rng([21, i]), classes=DEFAULT_CLASSES, threat_rate=1.0)


def train_family_figure() -> None:
    tiles = []
    for i in range(16):
        style = sample_style(style_rng(21, i), "train")
        _, scan = render_styled(np.random.default_rng([21, i]), style, classes=DEFAULT_CLASSES, threat_rate=0.7)
        d, g = style.display, style.geometry
        what = "grey" if d.mode != "colour" else (d.palette.name if d.palette else "")
        tiles.append(_tile(scan, f"{what} {g.field} {scan.image.shape[1]}x{scan.image.shape[0]}"
                                 f"{' q' + str(style.jpeg_quality) if style.jpeg_quality else ''}"))
    _save(_sheet(tiles, 4), "styles_train.png")


def effects_figure() -> None:
    parcel = _parcel(10)  # a suitcase with a handgun
    crop = ImageGeometry("parcel", (0.02, 0.02, 0.02, 0.02))  # detector and display effects shown close up
    base = ScannerStyle("figure", display=DisplayMapping("colour", PALETTES["reference"]), geometry=crop)
    det = lambda **kw: replace(base, detector=DetectorModel(**kw))  # noqa: E731
    geo = lambda **kw: replace(base, geometry=ImageGeometry(**kw))  # noqa: E731
    cases = [("reference palette (cropped)", base), ("afterglow 0.3", det(afterglow=0.3)),
             ("blur 1.5 px", det(blur_belt=1.5, blur_across=1.5)), ("noise 0.03", det(noise=0.03)),
             ("streaks, dead lines", det(streaks=0.02, dead_lines=((0.3, 0.0), (0.7, 1.0)))),
             ("line banding 2%", det(row_banding=0.02)), ("edge enhancement", det(unsharp_amount=1.5, unsharp_sigma=3.0)),
             ("grey, gamma 0.6", replace(base, display=DisplayMapping("grey", grey_gamma=0.6))),
             ("grey inverted", replace(base, display=DisplayMapping("grey_inverted"))),
             ("the whole belt (reference)", REFERENCE_STYLE),
             ("padded (objects smaller)", geo(field="padded", margin=(0.4, 0.4, 0.4, 0.4))),
             ("aspect 1.3, 160 px, JPEG q20", replace(geo(aspect=1.3, long_side=160), jpeg_quality=20))]
    _save(_sheet([_tile(apply_style(parcel, style), label) for label, style in cases], 4), "styles_effects.png")


def heldout_figure() -> None:
    tiles = []
    for i in range(4):
        for family in ("heldout", "heldout-grey", "heldout-jpeg"):
            style = sample_style(style_rng(31, i), family)
            _, scan = render_styled(np.random.default_rng([31, i]), style, classes=DEFAULT_CLASSES, threat_rate=1.0)
            tiles.append(_tile(scan, f"{family} {scan.image.shape[1]}x{scan.image.shape[0]}"))
    _save(_sheet(tiles, 6), "styles_heldout.png")


if __name__ == "__main__":
    palette_family_figure()
    train_family_figure()
    effects_figure()
    heldout_figure()
    for path in sorted(OUT.glob("styles_*.png")):
        print(f"{path} {path.stat().st_size // 1024} KiB")
