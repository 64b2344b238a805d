"""Regenerates the example pictures of docs/DATA.md: `.venv/bin/python docs/images/data/make_figures.py`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from xray.palettes import PALETTES, pseudo_colour
from xray.scenarios import SCENARIOS
from xray.synth import Parcel, render_parcel
from xray.tip import project_threat, project_threat_rgb, random_top_left, render_threat
from xscreen.settings import DEFAULT_CLASSES

OUT = Path(__file__).parent
TILE = (256, 224)


def _tile(parcel: Parcel, boxes: bool = True, palette: str = "reference") -> Image.Image:
    img = Image.fromarray(parcel.rgb(palette))
    if boxes:
        draw = ImageDraw.Draw(img)
        for obj in parcel.objects:
            if obj.is_threat:
                draw.rectangle([obj.box[0], obj.box[1], obj.box[2] - 1, obj.box[3] - 1], outline=(220, 0, 0))
    return img


def _grid(rows: list[list[Image.Image]], labels: list[str] | None = None, pad: int = 6) -> Image.Image:
    w = max(sum(t.width for t in row) + pad * (len(row) - 1) for row in rows)
    label_h = 18 if labels else 0
    h = sum(max(t.height for t in row) + label_h + pad for row in rows)
    sheet = Image.new("RGB", (w, h), (235, 235, 235))
    draw = ImageDraw.Draw(sheet)
    y = 0
    for r, row in enumerate(rows):
        if labels:
            draw.text((4, y + 3), labels[r], fill=(0, 0, 0))
        x = 0
        for tile in row:
            sheet.paste(tile, (x, y + label_h))
            x += tile.width + pad
        y += max(t.height for t in row) + label_h + pad
    return sheet


def _save(img: Image.Image, name: str, quantise: bool = True) -> None:
    """Palette PNG (256 colours): a third of the size of RGB and alike at this scale (RGB where hues matter)."""
    if not quantise:
        img.save(OUT / name, optimize=True)
        return
    quantised = img.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    quantised.save(OUT / name, optimize=True)


def _parcel(seed: list[int], **kw: object) -> Parcel:
    kw.setdefault("classes", DEFAULT_CLASSES)
    kw.setdefault("size", TILE)
    kw.setdefault("palette", "reference")
    return render_parcel(np.random.default_rng(seed), **kw)  # type: ignore[arg-type]


def classes_figure() -> None:
    rows = [[_tile(_parcel([1, c, i], classes=[name], threat_rate=1.0)) for i in range(3)]
            for c, name in enumerate(DEFAULT_CLASSES)]
    rows.append([_tile(_parcel([2, i], threat_rate=0.0)) for i in range(3)])
    _save(_grid(rows, [*DEFAULT_CLASSES, "benign (no threat)"]), "classes.png")


def palettes_figure() -> None:
    parcel = _parcel([3, 5], classes=["knife", "lithium_battery"], threat_rate=1.0, size=(384, 320))
    tiles = [_tile(parcel, boxes=False, palette=p) for p in PALETTES]
    gray = Image.fromarray(np.round(parcel.high * 255).astype(np.uint8)).convert("RGB")
    _save(_grid([tiles[:3], [*tiles[3:], gray]], [", ".join(list(PALETTES)[:3]),
                                                  f"{list(PALETTES)[3]}, 8-bit single energy (gray)"]), "palettes.png", False)


def scenarios_figure() -> None:
    setups = {"baseline": {}, "new_goods": {"threat_rate": 0.0},
              "new_concealment": {"classes": ["narcotics"], "threat_rate": 1.0},
              "scanner_ageing": {"threat_rate": 0.3}, "seasonal_mix": {"threat_rate": 0.8}}
    rows, labels = [], []
    for s, (name, kw) in enumerate(setups.items()):
        row = [_tile(_parcel([4, s, i], scenario=name, progress=p, **kw))  # type: ignore[arg-type]
               for i, p in enumerate((0.0, 0.0, 1.0, 1.0))]
        rows.append(row)
        labels.append(f"{name}: progress 0, 0 | 1, 1 -- {SCENARIOS[name].description}")
    _save(_grid(rows, labels), "scenarios.png")


def tip_figure() -> None:
    rng = np.random.default_rng(5)
    parcel = _parcel([5, 1], threat_rate=0.0, size=(384, 320))
    sig = render_threat(rng, "firearm", image_width=384)
    while "pistol" not in sig.name:  # a whole handgun shows TIP best; gun parts are drawn too
        sig = render_threat(rng, "firearm", image_width=384)
    top_left = random_top_left(rng, parcel.high.shape, sig, margin=0.2)
    high, low = project_threat(parcel.high, parcel.low, sig.att_high, sig.att_low, top_left)
    rgb_only = project_threat_rgb(parcel.rgb("reference"), sig, top_left, "reference")
    tiles = [Image.fromarray(parcel.rgb("reference")), Image.fromarray(pseudo_colour(high, low, "reference")),
             Image.fromarray(rgb_only)]
    _save(_grid([tiles], ["benign scan | TIP in dual energy (physical) | TIP into the pseudo-colour image only"]),
          "tip.png")


def full_size_figure() -> None:
    parcel = _parcel([6, 2], threat_rate=1.0, size=None, classes=["firearm", "knife", "lithium_battery"])
    _save(_tile(parcel, boxes=False), "full_size.png")


if __name__ == "__main__":
    classes_figure()
    palettes_figure()
    scenarios_figure()
    tip_figure()
    full_size_figure()
    for path in sorted(OUT.glob("*.png")):
        print(f"{path} {path.stat().st_size // 1024} KiB")
