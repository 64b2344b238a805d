"""Benign mail items of cross-border e-commerce, as procedural shape generators keyed by item type.

Every generator takes an rng and returns an ObjectSpec (see xray.shapes). Dimensions are in millimetres and
vary by item; `BENIGN_ITEMS` is the registry the scenarios weight. `vape` and `smartwatch` are the new goods of
the `new_goods` scenario: they exist here but baseline mail never contains them.
"""

from __future__ import annotations

import numpy as np

from xray.shapes import Frame, Generator, ObjectSpec, Part, texture


def clothing(rng: np.random.Generator) -> ObjectSpec:
    w, h = rng.uniform(160, 320), rng.uniform(120, 260)
    thick = rng.uniform(15, 45)

    def draw(f: Frame) -> list[Part]:
        folds = 1.0 + 0.45 * texture("folds", f.u.shape, rng)
        bulge = 0.55 + 0.45 * f.ellipse(w * 0.55, h * 0.55, 1.0, dome=True)  # folded fabric is thickest inside
        parts = [Part("cotton", f.rect(w, h, thick, r=25) * folds * bulge)]
        seam = f.rect(w - 8, h - 8, 3.0, r=22) - f.rect(w - 14, h - 14, 3.0, r=20)  # hems: doubled fabric
        parts.append(Part("cotton", np.maximum(seam, 0), core=False))
        for bx, by in rng.uniform(-0.35, 0.35, size=(int(rng.integers(0, 6)), 2)) * (w, h):  # buttons
            parts.append(Part("polyethylene", f.ellipse(6, 6, 3, cx=bx, cy=by), core=False))
        if rng.random() < 0.35:  # a zip or press studs
            parts.append(Part("zinc_alloy", f.rect(4, h * 0.7, 1.2, cx=w * rng.uniform(-0.2, 0.2)), core=False))
        return parts

    return ObjectSpec("clothing", (w / 2, h / 2), draw, "cotton")


def shoes(rng: np.random.Generator) -> ObjectSpec:
    length, width = rng.uniform(230, 300), rng.uniform(80, 105)
    gap = width * rng.uniform(1.05, 1.4)

    def draw(f: Frame) -> list[Part]:
        sole = np.zeros_like(f.u)
        upper = np.zeros_like(f.u)
        for side in (-0.5, 0.5):
            sole += f.ellipse(length / 2, width / 2, 30, cy=side * gap)
            upper += f.ellipse(length * 0.42, width * 0.42, 55, cy=side * gap, cx=-length * 0.06, dome=True)
        parts = [Part("rubber", sole), Part("cotton", upper)]
        eyelets = np.zeros_like(f.u)
        for side in (-0.5, 0.5):  # two rows of lace eyelets on each shoe
            for k in range(5):
                for row in (-1, 1):
                    eyelets += f.ellipse(2.5, 2.5, 1.0, cx=length * (0.05 + 0.05 * k), cy=side * gap + row * 12)
        parts.append(Part("brass", eyelets, core=False))
        if rng.random() < 0.3:  # a steel shank in the sole of some shoes
            parts.append(Part("steel", f.rect(60, 8, 1.0, cy=-gap / 2) + f.rect(60, 8, 1.0, cy=gap / 2), core=False))
        return parts

    return ObjectSpec("shoes", (length / 2, gap / 2 + width / 2), draw, "rubber")


def book(rng: np.random.Generator) -> ObjectSpec:
    w, h, t = rng.uniform(130, 240), rng.uniform(180, 300), rng.uniform(12, 45)

    def draw(f: Frame) -> list[Part]:
        return [Part("paper", f.rect(w, h, t, r=2) + f.rect(8, h, t * 0.3, cx=-w / 2 + 4))]

    return ObjectSpec("book", (w / 2, h / 2), draw, "paper")


def cosmetics_bottle(rng: np.random.Generator) -> ObjectSpec:
    length, radius = rng.uniform(90, 170), rng.uniform(18, 35)
    glass = rng.random() < 0.4
    fill = rng.uniform(0.5, 0.95)

    def draw(f: Frame) -> list[Part]:
        wall = f.cylinder(length, radius, inner=radius - (3.0 if glass else 1.2))
        liquid = f.cylinder(length * fill, radius - 3.2, cx=-length * (1 - fill) / 2)
        cap = f.cylinder(length * 0.18, radius * 0.55, cx=length * 0.59)
        pump = f.tube(length * 0.3, 0, length * 0.6, 0, 1.0)  # dip tube spring of a pump bottle
        return [Part("glass" if glass else "polyethylene", wall), Part("water", liquid),
                Part("polyethylene", cap), Part("steel", pump * 0.3, core=False)]

    return ObjectSpec("cosmetics_bottle", (length * 0.7, radius), draw, "water")


def _board(f: Frame, w: float, h: float, rng: np.random.Generator, cx: float = 0.0, cy: float = 0.0) -> list[Part]:
    """A populated circuit board: FR4 plus copper traces and a few chips."""
    parts = [Part("circuit_board", f.rect(w, h, 1.6, cx=cx, cy=cy)),
             Part("copper", f.rect(w * 0.9, h * 0.9, 0.05, cx=cx, cy=cy) * (0.5 + texture("grain", f.u.shape, rng)))]
    for _ in range(int(rng.integers(3, 9))):  # chips: copper lead frames and solder
        px, py = cx + rng.uniform(-0.35, 0.35) * w, cy + rng.uniform(-0.35, 0.35) * h
        parts.append(Part("copper", f.rect(rng.uniform(4, 14), rng.uniform(4, 14), rng.uniform(0.3, 1.0), cx=px,
                                           cy=py)))
    for sx, sy in ((-0.45, -0.45), (0.45, -0.45), (-0.45, 0.45), (0.45, 0.45)):  # steel screws at the corners
        parts.append(Part("steel", f.ellipse(1.5, 1.5, 4.0, cx=cx + sx * w, cy=cy + sy * h)))
    return parts


def phone(rng: np.random.Generator) -> ObjectSpec:
    w, h = rng.uniform(68, 80), rng.uniform(140, 165)

    def draw(f: Frame) -> list[Part]:
        parts = [Part("aluminium", f.rect(w, h, 1.4, r=8)), Part("glass", f.rect(w - 2, h - 2, 1.2, r=8))]
        parts.append(Part("li_cell", f.rect(w * 0.8, h * 0.5, 4.0, cy=h * 0.12, r=2)))  # built-in Li-po pouch
        parts += _board(f, w * 0.7, h * 0.3, rng, cy=-h * 0.3)
        parts.append(Part("steel", f.ellipse(5, 5, 3, cx=w * 0.25, cy=-h * 0.4)))  # camera module
        return parts

    return ObjectSpec("phone", (w / 2, h / 2), draw, "aluminium")


def laptop(rng: np.random.Generator) -> ObjectSpec:
    w, h = rng.uniform(280, 360), rng.uniform(190, 240)

    def draw(f: Frame) -> list[Part]:
        parts = [Part("aluminium", f.rect(w, h, 3.0, r=6)), Part("glass", f.rect(w - 12, h - 20, 1.0))]
        parts.append(Part("li_cell", f.rect(w * 0.75, 55, 7.0, cy=-h * 0.3)))
        parts += _board(f, w * 0.55, h * 0.35, rng, cy=h * 0.12)
        parts.append(Part("copper", f.rect(60, 8, 2.0, cx=w * 0.2, cy=h * 0.05)))  # heat pipe
        return parts

    return ObjectSpec("laptop", (w / 2, h / 2), draw, "aluminium")


def charger(rng: np.random.Generator) -> ObjectSpec:
    w, h = rng.uniform(40, 70), rng.uniform(45, 80)

    def draw(f: Frame) -> list[Part]:
        parts = [Part("polyethylene", f.rect(w, h, 28, r=6))]
        parts += _board(f, w * 0.8, h * 0.7, rng)
        parts.append(Part("steel", f.rect(w * 0.35, h * 0.3, 12)))  # transformer core
        parts.append(Part("copper", f.rect(w * 0.4, h * 0.35, 6)))
        parts.append(Part("brass", f.rect(4, 18, 2, cx=-8, cy=-h / 2 - 6) + f.rect(4, 18, 2, cx=8, cy=-h / 2 - 6)))
        return parts

    return ObjectSpec("charger", (w / 2, h / 2 + 15), draw, "polyethylene")


def toy(rng: np.random.Generator) -> ObjectSpec:
    size = rng.uniform(60, 160)
    blobs = rng.uniform(-0.35, 0.35, size=(int(rng.integers(3, 7)), 2)) * size
    radii = rng.uniform(0.15, 0.3, size=len(blobs)) * size

    def draw(f: Frame) -> list[Part]:
        body = np.zeros_like(f.u)
        for (bx, by), r in zip(blobs, radii, strict=True):
            np.maximum(body, f.ellipse(r, r * 0.8, 6, cx=bx, cy=by), out=body)
        parts = [Part("polyethylene", body)]
        if rng.random() < 0.6:  # screws, a spring or a small motor
            for bx, by in blobs[:3]:
                parts.append(Part("steel", f.rect(2.5, 9, 2.5, cx=bx, cy=by), core=False))
        return parts

    return ObjectSpec("toy", (size * 0.7, size * 0.7), draw, "polyethylene")


def food_pack(rng: np.random.Generator) -> ObjectSpec:
    w, h, t = rng.uniform(80, 180), rng.uniform(100, 220), rng.uniform(20, 55)

    def draw(f: Frame) -> list[Part]:
        grain = 1.0 + 0.35 * texture("grain", f.u.shape, rng)
        bulge = 0.5 + 0.5 * f.ellipse(w * 0.55, h * 0.55, 1.0, dome=True)
        parts = [Part("food", f.rect(w, h, t, r=10) * grain * bulge)]
        if rng.random() < 0.3:  # foil-lined pack
            parts.append(Part("aluminium", f.rect(w, h, 0.02, r=10)))
        return parts

    return ObjectSpec("food_pack", (w / 2, h / 2), draw, "food")


def cable(rng: np.random.Generator) -> ObjectSpec:
    loops, radius = int(rng.integers(2, 6)), rng.uniform(25, 55)
    theta = np.linspace(0, 2 * np.pi * loops, 24 * loops)
    wobble = 1.0 + 0.15 * np.sin(theta * rng.uniform(0.3, 0.7))
    pts = np.stack([radius * wobble * np.cos(theta) + theta * 1.5, radius * wobble * np.sin(theta) * 0.7], axis=1)
    pts -= pts.mean(axis=0)

    def draw(f: Frame) -> list[Part]:
        return [Part("polyethylene", f.polyline(pts, 2.0)), Part("copper", f.polyline(pts, 0.6))]

    ext = np.abs(pts).max(axis=0) + 4
    return ObjectSpec("cable", (float(ext[0]), float(ext[1])), draw, "copper")


def jewellery(rng: np.random.Generator) -> ObjectSpec:
    n = int(rng.integers(1, 4))
    rings = rng.uniform(-15, 15, size=(n, 2))

    def draw(f: Frame) -> list[Part]:
        metal = np.zeros_like(f.u)
        for rx, ry in rings:
            r = rng.uniform(7, 11)
            metal += f.ellipse(r, r, 2.2, cx=rx, cy=ry) - f.ellipse(r - 2, r - 2, 2.2, cx=rx, cy=ry)
        theta = np.linspace(0, np.pi, 30)
        chain = np.stack([40 * np.cos(theta), 25 * np.sin(theta) - 10], axis=1)
        return [Part("silver", np.maximum(metal, 0) + f.polyline(chain, 0.7)), Part("cardboard", f.rect(90, 70, 20))]

    return ObjectSpec("jewellery", (48, 40), draw, "silver")


def vape(rng: np.random.Generator) -> ObjectSpec:
    length, radius = rng.uniform(95, 130), rng.uniform(8, 12)

    def draw(f: Frame) -> list[Part]:
        return [Part("aluminium", f.cylinder(length, radius, inner=radius - 0.8)),
                Part("li_cell", f.cylinder(length * 0.45, radius - 1.5, cx=-length * 0.22)),
                Part("water", f.cylinder(length * 0.3, radius - 2.5, cx=length * 0.22)),
                Part("steel", f.tube(length * 0.08, -2, length * 0.38, 2, 0.6))]  # heating coil

    return ObjectSpec("vape", (length / 2, radius), draw, "aluminium")


def smartwatch(rng: np.random.Generator) -> ObjectSpec:
    w, h = rng.uniform(38, 46), rng.uniform(42, 50)

    def draw(f: Frame) -> list[Part]:
        parts = [Part("aluminium", f.rect(w, h, 4, r=8)), Part("glass", f.rect(w - 3, h - 3, 1.2, r=7)),
                 Part("li_cell", f.rect(w * 0.6, h * 0.5, 3.0, r=2)),
                 Part("rubber", f.rect(w * 0.8, 90, 3, cy=h / 2 + 45) + f.rect(w * 0.8, 90, 3, cy=-h / 2 - 45))]
        parts.append(Part("steel", f.rect(w * 0.6, 6, 3, cy=h / 2 + 88)))  # buckle
        return parts

    return ObjectSpec("smartwatch", (w / 2, h / 2 + 92), draw, "aluminium")


BENIGN_ITEMS: dict[str, Generator] = {
    "clothing": clothing, "shoes": shoes, "book": book, "cosmetics_bottle": cosmetics_bottle, "phone": phone,
    "laptop": laptop, "charger": charger, "toy": toy, "food_pack": food_pack, "cable": cable,
    "jewellery": jewellery, "vape": vape, "smartwatch": smartwatch,
}
NEW_GOODS = ("vape", "smartwatch")
HELDOUT_BENIGN = ("jewellery", "toy")  # never drawn for training: a scanner we never saw sees other goods
