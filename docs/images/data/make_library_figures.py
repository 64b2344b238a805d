"""Pictures of the content library for docs/DATA.md: every family and threat variant alone (two poses each),
every container, the held-out families, and one object in several 3D poses.

`.venv/bin/python docs/images/data/make_library_figures.py` (about a minute)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from xray.library.catalogue import BENIGN, CONTAINERS, THREATS
from xray.palettes import pseudo_colour
from xray.shapes import Thing
from xray.solids import rot_x, rot_y, rot_z
from xray.stamp import random_pose, stamp_thing
from xray.synth import render_parcel
from xscreen.settings import DEFAULT_CLASSES

OUT = Path(__file__).parent
CELL = 150  # pixels per tile
PX_MM = 1.2  # the default scanner's pixel (mm)


def _render(thing: Thing, pose: np.ndarray, rng: np.random.Generator, cell: int = CELL) -> Image.Image:
    """The object alone, scaled down if it would not fit the tile, in the reference palette."""
    extent = 2 * float(np.linalg.norm(thing.half[:2]))
    ppm = min(1 / PX_MM, 0.92 * cell / extent)
    acc = np.zeros((2, cell, cell), np.float32)
    stamp_thing(acc, thing, pose, cell / 2, cell / 2, ppm, rng)
    return Image.fromarray(pseudo_colour(np.exp(-acc[0]), np.exp(-acc[1]), "reference"))


def _sheet(tiles: list[tuple[str, Image.Image]], cols: int, cell: int = CELL, cell_h: int | None = None) -> Image.Image:
    rows = (len(tiles) + cols - 1) // cols
    cell_h = cell_h or cell
    sheet = Image.new("RGB", (cols * (cell + 4), rows * (cell_h + 16)), (235, 235, 235))
    draw = ImageDraw.Draw(sheet)
    for i, (label, tile) in enumerate(tiles):
        x, y = (i % cols) * (cell + 4), (i // cols) * (cell_h + 16)
        sheet.paste(tile, (x, y + 14))
        draw.text((x + 2, y + 1), label, fill=(0, 0, 0))
    return sheet


def _save(img: Image.Image, name: str) -> None:
    img.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(OUT / name, optimize=True)
    print(f"{OUT / name} {(OUT / name).stat().st_size // 1024} KiB")


def _two_poses(name: str, thing_of: object, seed: int) -> list[tuple[str, Image.Image]]:
    out = []
    for k in range(2):
        rng = np.random.default_rng([seed, k])
        thing = thing_of(rng)  # type: ignore[operator]
        pose = rot_z(rng.uniform(0, 6.3)) if k == 0 else random_pose(rng, thing.poses)
        out.append((f"{name}{' *' if k == 0 else ''}", _render(thing, pose, rng)))
    return out


def benign_figure() -> None:
    tiles: list[tuple[str, Image.Image]] = []
    for i, (name, fam) in enumerate(sorted(BENIGN.items())):
        label = name + (" [held out]" if fam.heldout else "") + (f" ~{fam.resembles}" if fam.resembles else "")
        tiles += [(label if k == 0 else "", t) for k, (_, t) in enumerate(_two_poses(name, fam.make, 100 + i))]
    _save(_sheet(tiles, 8), "library_benign.png")


def threats_figure() -> None:
    tiles: list[tuple[str, Image.Image]] = []
    for c, cls in enumerate(DEFAULT_CLASSES):
        for i, (name, fam) in enumerate(THREATS[cls].items()):
            label = f"{cls}:{name}" + (" [held out]" if fam.heldout else "")
            tiles += [(label if k == 0 else "", t) for k, (_, t) in enumerate(_two_poses(name, fam.make, 200 + 20 * c + i))]
    _save(_sheet(tiles, 8), "library_threats.png")


def containers_figure() -> None:
    tiles: list[tuple[str, Image.Image]] = []
    for i, (name, (_, make, held)) in enumerate(CONTAINERS.items()):
        rng = np.random.default_rng([300, i])
        box = make(rng, 560.0, 720.0)
        tiles.append((name + (" [held out]" if held else ""), _render(box.thing, rot_z(0.1), rng, 220)))
    _save(_sheet(tiles, 5, 220), "library_containers.png")


def poses_figure() -> None:
    """One knife, one coin, one cell and one pistol flat, tilted, on an edge and on an end."""
    poses = {"flat": np.eye(3), "tilted 40 deg": rot_x(0.7), "on its edge": rot_x(np.pi / 2),
             "on its end": rot_y(np.pi / 2)}
    makers = [THREATS["knife"]["kitchen"].make, BENIGN["coins"].make, THREATS["lithium_battery"]["loose_cells"].make,
              THREATS["firearm"]["pistol_service"].make]
    tiles = []
    for m, make in enumerate(makers):
        for label, pose in poses.items():
            rng = np.random.default_rng([400, m])
            tiles.append((label if m == 0 else "", _render(make(rng), rot_z(0.5) @ pose, rng)))
    _save(_sheet(tiles, 4), "library_poses.png")


def heldout_figure() -> None:
    """Parcels of the "heldout" content split: held-out threats, containers and goods among the rest."""
    tiles = []
    for i in range(8):
        parcel = render_parcel(np.random.default_rng([500, i]), classes=DEFAULT_CLASSES, threat_rate=0.8,
                               size=(256, 256), palette="reference", content_split="heldout")
        img = Image.fromarray(parcel.rgb())
        draw = ImageDraw.Draw(img)
        for o in parcel.objects:
            if o.is_threat:
                draw.rectangle([o.box[0], o.box[1], o.box[2] - 1, o.box[3] - 1], outline=(220, 0, 0))
        label = ", ".join(o.name.split(":")[-1] for o in parcel.objects if o.is_threat) or "benign"
        tiles.append((label[:34], img))
    _save(_sheet(tiles, 4, 256), "library_heldout.png")


def clutter_figure() -> None:
    """Default-size parcels from a lone envelope to a packed suitcase (train split, mixed threats)."""
    tiles = []
    for i in range(8):
        parcel = render_parcel(np.random.default_rng([600, i]), classes=DEFAULT_CLASSES, threat_rate=0.5,
                               palette="reference")
        img = Image.fromarray(parcel.rgb()).resize((256, round(256 * parcel.high.shape[0] / parcel.high.shape[1])))
        canvas = Image.new("RGB", (256, 352), (255, 255, 255))
        canvas.paste(img, (0, 0))
        tiles.append((f"{parcel.objects[0].name.split(':')[1]}, {len(parcel.objects) - 1} items", canvas))
    _save(_sheet(tiles, 4, 256, 352), "library_parcels.png")


if __name__ == "__main__":
    benign_figure()
    threats_figure()
    containers_figure()
    poses_figure()
    heldout_figure()
    clutter_figure()
