"""Soft goods and household items: clothing, shoes, books and paper, bottles, cans and tins, food, powders, toys,
cosmetics, umbrellas, flasks and mugs. Mostly organic, with the metal that real ones carry (zips, rivets,
shanks, springs, can walls)."""

from __future__ import annotations

import numpy as np

from xray.library.common import board, cell, rivets, screws, spring, zip_line
from xray.shapes import (
    Piece,
    Thing,
    as_carrier,
    ball,
    bar,
    block,
    cyl,
    polyline,
    rot,
    shell,
    spread,
    thing,
    tube,
)

FLAT = (0.85, 0.12, 0.03, 0.0)  # soft and flat things lie flat


def _u(rng: np.random.Generator, a: float, b: float) -> float:
    return float(rng.uniform(a, b))


def clothing(rng: np.random.Generator) -> Thing:
    """A folded garment: fabric with folds, hems; buttons, rivets, press studs or a zip by kind."""
    kind = str(rng.choice(["tshirt", "jeans", "jacket", "sweater", "dress"]))
    w, h, t = _u(rng, 180, 360), _u(rng, 140, 300), _u(rng, 12, 60)
    dens = {"jeans": 0.6, "jacket": 0.45}.get(kind, 0.3)
    parts: list[Piece] = [block("cotton", w, h, t * 0.75, texture=("folds", 0.6)),
                          ball("cotton", w * 1.05, h * 1.05, t * 0.5, texture=("folds", 0.4))]
    if dens > 0.35:
        parts.append(block("cotton", w * 0.8, h * 0.8, t * 0.3, texture=("folds", 0.5)))
    if kind == "jeans":
        parts.append(rivets([(_u(rng, -0.4, 0.4) * w, _u(rng, -0.4, 0.4) * h, 0.0) for _ in range(6)], "copper", 5))
        parts += zip_line([(-w * 0.1, -h * 0.3), (-w * 0.1, -h * 0.05)])
        parts.append(cyl("brass", 14, 3, (w * 0.05, -h * 0.35, 0)))  # the button
    elif kind == "jacket":
        z = _u(rng, -0.2, 0.2) * w
        parts += zip_line([(z, -h * 0.45), (z, h * 0.45)], metal=rng.random() < 0.6)
        parts.append(rivets([(z + 20, y * h, 0.0) for y in (-0.3, -0.1, 0.1, 0.3)], "brass", 10))
    elif rng.random() < 0.6:  # buttons
        n = int(rng.integers(3, 8))
        x = _u(rng, -0.3, 0.3) * w
        mat = "polyethylene" if rng.random() < 0.8 else "brass"
        parts.append(rivets([(x, (i - n / 2) * h * 0.8 / n, 0.0) for i in range(n)], mat, 12))
    return thing("clothing", parts, "cotton", poses=FLAT)


def shoes(rng: np.random.Generator) -> Thing:
    """A pair: rubber soles, uppers, brass eyelets in rows, and often a steel shank or heel pin."""
    length, width = _u(rng, 220, 310), _u(rng, 75, 110)
    gap = width * _u(rng, 1.05, 1.5)
    boot = rng.random() < 0.25
    parts: list[Piece] = []
    for s in (-0.5, 0.5):
        y = s * gap
        parts.append(block("rubber", length, width, _u(rng, 15, 35), (0, y, -20), texture=("grain", 0.15)))
        parts.append(ball("cotton", length * 0.85, width * 0.9, 110 if boot else 70, (-length * 0.05, y, 10)))
        first = (length * 0.05, y - 12, 10.0)
        rows = tuple((k * 12.0, dy, 0.0) for k in range(5) for dy in (0.0, 24.0) if k or dy)
        parts.append(cyl("brass", 5, 1.5, first, copies=rows))
        if rng.random() < 0.6:
            parts.append(block("steel", 90, 12, 1.5, (-length * 0.1, y, -25)))  # shank
    return thing("shoes", parts, "rubber", poses=(0.6, 0.3, 0.1, 0.0))


def book(rng: np.random.Generator) -> Thing:
    """A hardback or paperback: a paper block, board covers, a spine."""
    w, h, t = _u(rng, 110, 240), _u(rng, 150, 300), _u(rng, 6, 55)
    parts: list[Piece] = [block("paper", w, h, t), block("cardboard", w + 4, h + 4, 2.0, (0, 0, t / 2 + 1)),
                          block("cardboard", w + 4, h + 4, 2.0, (0, 0, -t / 2 - 1)),
                          block("paper", 6, h, t * 0.4, (-w / 2 - 3, 0, 0))]
    return thing("book", parts, "paper", poses=(0.75, 0.15, 0.08, 0.02))


def paper_stack(rng: np.random.Generator) -> Thing:
    """Look-alike of currency: a ream, a bundle of letters or flyers, a stack of cards, often banded."""
    w, h, t = _u(rng, 60, 300), _u(rng, 60, 210), _u(rng, 10, 60)
    parts: list[Piece] = [block("paper", w, h, t)]
    if rng.random() < 0.5:  # paper band or film round the stack
        x = _u(rng, -0.3, 0.3) * w
        parts.append(block("polyethylene", 25, h + 2, t + 2, (x, 0, 0)))
        parts.append(block("polyethylene", 25, h, t, (x, 0, 0), sign=-1.0))
    if rng.random() < 0.3:  # a binder clip or staples
        parts.append(block("steel", 30, 12, 1.0, (0, h / 2, t / 2)))
    return thing("paper_stack", parts, "paper", poses=FLAT)


def notebook(rng: np.random.Generator) -> Thing:
    """A spiral-bound notebook: the steel wire coil is a dense, regular row of loops along one edge."""
    w, h, t = _u(rng, 100, 220), _u(rng, 140, 300), _u(rng, 5, 15)
    parts: list[Piece] = [block("paper", w, h, t), block("cardboard", w, h, 1.5, (0, 0, t / 2))]
    n = int(h / 7)
    tt = np.linspace(0, 2 * np.pi * n, n * 10)
    coil = np.stack([-w / 2 - 3 + 4 * np.cos(tt), tt / tt[-1] * h - h / 2, (t / 2 + 2) * np.sin(tt)], axis=1)
    parts.append(polyline(coil, [("steel", 0.5)]))
    return thing("notebook", parts, "paper", poses=FLAT)


def bottle(rng: np.random.Generator) -> Thing:
    """Drinks, shampoo, perfume, wine: glass or plastic, liquid to a level, a cap, sometimes a pump spring."""
    kind = str(rng.choice(["wine", "shampoo", "perfume", "water", "jar"]))
    length, d = {"wine": (_u(rng, 280, 320), _u(rng, 70, 80)), "shampoo": (_u(rng, 130, 220), _u(rng, 40, 65)),
                 "perfume": (_u(rng, 70, 120), _u(rng, 35, 55)), "water": (_u(rng, 180, 260), _u(rng, 60, 75)),
                 "jar": (_u(rng, 70, 130), _u(rng, 60, 95))}[kind]
    glass = kind in ("wine", "perfume", "jar") or rng.random() < 0.2
    wall = _u(rng, 2.5, 6) if glass else _u(rng, 0.5, 1.2)
    fill = _u(rng, 0.5, 0.97)
    body = length * (0.7 if kind == "wine" else 0.85)
    parts: list[Piece] = [*tube("glass" if glass else "polyethylene", d, wall, body, (-length / 2 + body / 2, 0, 0), "x",
                                closed=True)]
    liq = (body - 2 * wall) * fill
    parts.append(cyl("water" if kind != "jar" else "food", d - 2 * wall, liq, (-length / 2 + wall + liq / 2, 0, 0), "x"))
    neck = length - body
    parts += tube("glass" if glass else "polyethylene", d * 0.35 if kind == "wine" else d * 0.5, wall, neck,
                  (length / 2 - neck / 2, 0, 0), "x")
    parts.append(cyl("aluminium" if kind in ("wine", "perfume") else "polyethylene", d * 0.5, 15, (length / 2, 0, 0), "x"))
    if kind in ("perfume", "shampoo") and rng.random() < 0.6:
        parts.append(spring(12, 5, 0.5, 6, (length / 2 - 8, 0, 0)))
        parts.append(bar("polyethylene", 3, body * 0.8, (0, 0, 0)))
    return thing("bottle", parts, "water", poses=(0.65, 0.2, 0.0, 0.15))


def spray_can(rng: np.random.Generator) -> Thing:
    """An aerosol: a thin aluminium or steel can, liquid, a steel valve, a dip tube."""
    length, d = _u(rng, 120, 240), _u(rng, 45, 66)
    parts: list[Piece] = [*tube("aluminium" if rng.random() < 0.6 else "steel", d, 0.4, length, axis="x", closed=True),
                          cyl("water", d - 2, length * _u(rng, 0.4, 0.8), (-length * 0.1, 0, 0), "x"),
                          cyl("steel", 12, 8, (length / 2, 0, 0), "x"), bar("polyethylene", 3, length * 0.8, (0, 0, 0))]
    return thing("spray_can", parts, "aluminium", poses=(0.7, 0.15, 0.0, 0.15))


def tin(rng: np.random.Generator) -> Thing:
    """A food or tea tin: tinplate steel walls seen edge-on are dense rings; contents fill it."""
    d, h = _u(rng, 60, 110), _u(rng, 40, 120)
    contents = str(rng.choice(["food", "water", "paper"]))
    parts: list[Piece] = [*tube("steel", d, 0.25, h, closed=True), cyl(contents, d - 1, h * _u(rng, 0.7, 0.98),
                                                                     texture=("grain", 0.2))]
    return thing("tin", parts, "steel", poses=(0.5, 0.2, 0.3, 0.0))


def food_pack(rng: np.random.Generator) -> Thing:
    """Snacks, coffee, rice, pasta: grainy organic fill, sometimes foil lined, sometimes a one-way valve."""
    w, h, t = _u(rng, 80, 220), _u(rng, 100, 260), _u(rng, 15, 70)
    parts: list[Piece] = [ball("food", w * 1.05, h * 1.05, t * 0.6, texture=("grain", 0.35)),
                          block("food", w, h, t * 0.55, texture=("grain", 0.35))]
    if rng.random() < 0.35:
        parts.append(block("aluminium", w, h, 0.03))
    if rng.random() < 0.15:
        parts.append(cyl("polyethylene", 20, 5, (0, h * 0.3, t / 2)))
    return thing("food_pack", parts, "food", poses=FLAT)


def powder_bag(rng: np.random.Generator) -> Thing:
    """Look-alike of narcotics: flour, sugar, protein powder, washing powder, salt in bags or tubs."""
    w, h, t = _u(rng, 90, 200), _u(rng, 120, 280), _u(rng, 30, 90)
    mat = str(rng.choice(["food", "food", "salt", "paper"]))  # paper: cellulose-like, as a detergent
    tub = rng.random() < 0.3
    parts: list[Piece] = []
    if tub:
        parts += tube("polyethylene", w, 1.5, h, axis="x", closed=True)
        parts.append(cyl(mat, w - 3, h * 0.85, (-h * 0.06, 0, 0), "x", texture=("grain", 0.08)))
        parts.append(cyl("polyethylene", 30, 3, (0, 0, 0), "x"))  # scoop
    else:
        parts.append(block(mat, w, h, t, texture=("grain", 0.08)))
        parts.append(ball(mat, w, h, t * 0.3, texture=("grain", 0.08)))
    return thing("powder_bag", parts, mat, poses=FLAT)


def toy(rng: np.random.Generator) -> Thing:
    """A plush, a plastic figure, bricks, or a battery toy (motor, gears, AA cells, screws)."""
    kind = str(rng.choice(["plush", "figure", "bricks", "robot"]))
    s = _u(rng, 60, 200)
    parts: list[Piece] = []
    if kind == "plush":
        parts += [ball("cotton", s, s * 0.8, s * 0.5, texture=("folds", 0.3)),
                  ball("cotton", s * 0.6, s * 0.6, s * 0.4, (0, s * 0.6, 0), texture=("folds", 0.3)),
                  cyl("polyethylene", 8, 4, (s * 0.1, s * 0.65, 0), copies=((-s * 0.2, 0.0, 0.0),))]
    elif kind == "bricks":
        n = int(rng.integers(6, 30))
        pos = [(_u(rng, -s, s) * 0.6, _u(rng, -s, s) * 0.6, 0.0) for _ in range(n)]
        parts.append(block("polyethylene", 32, 16, 11, pos[0], copies=tuple((p[0] - pos[0][0], p[1] - pos[0][1], 0.0) for p in pos[1:])))
        parts.append(shell("cardboard", s * 1.6, s * 1.4, 60, 1.0)[0])
    else:
        parts += shell("polyethylene", s, s * 0.6, s * 0.4, 2.0)
        parts += [ball("polyethylene", s * 0.5, s * 0.5, s * 0.4, (0, s * 0.5, 0))]
        if kind == "robot":
            parts += [cyl("steel", 20, 25, (0, 0, 0), "x"), cyl("copper", 15, 20, (0, 0, 0), "x")]
            parts += cell("AA", (-s * 0.2, -s * 0.1, 0), "y", ((14.5, 0.0, 0.0),))
            parts += board(rng, s * 0.4, s * 0.3, (s * 0.2, 0, 0))
        parts.append(screws([(x * s * 0.4, y * s * 0.2, 0.0) for x in (-1, 1) for y in (-1, 1)], 2.5, 8))
    return thing("toy", parts, "polyethylene")


def toy_car(rng: np.random.Generator) -> Thing:
    """A die-cast model car: a zinc alloy body, steel axles, plastic wheels and windows."""
    length = _u(rng, 60, 180)
    w = length * 0.42
    parts: list[Piece] = [*shell("zinc_alloy", length, w, w * 0.6, _u(rng, 1.2, 2.5)),
                          block("polyethylene", length * 0.4, w * 0.8, w * 0.2, (0, 0, w * 0.3))]
    for x in (-0.32, 0.32):
        parts.append(bar("steel", 2, w * 1.1, (x * length, 0, -w * 0.25), rot=rot(az=np.pi / 2)))
        parts.append(cyl("rubber", w * 0.35, w * 0.15, (x * length, -w * 0.5, -w * 0.25), "y",
                         copies=((0.0, w, 0.0),)))
    parts.append(screws([(-length * 0.2, 0, 0), (length * 0.2, 0, 0)], 2, 6))
    return thing("toy_car", parts, "zinc_alloy")


def toy_gun(rng: np.random.Generator) -> Thing:
    """Look-alike of a firearm: a plastic pistol or blaster, with a steel spring and screws, no dense metal mass."""
    length = _u(rng, 140, 320)
    h = length * _u(rng, 0.45, 0.7)
    parts: list[Piece] = [block("polyethylene", length, 30, 28, (0, -h * 0.3, 0)),
                          block("polyethylene", 35, h * 0.7, 26, (-length * 0.3, h * 0.1, 0), rot=rot(az=0.3)),
                          *tube("polyethylene", 30, 3, 20, (-length * 0.05, 0, 0), "z")]
    parts.append(spring(length * 0.4, 10, 1.0, 10, (length * 0.1, -h * 0.3, 0)))
    parts.append(screws([(x * length, -h * 0.2, 0.0) for x in (-0.3, 0.0, 0.3)], 2.5, 10))
    if rng.random() < 0.4:
        parts += cell("AA", (-length * 0.3, h * 0.2, 0), "y", ((15.0, 0.0, 0.0),))
    return thing("toy_gun", parts, "polyethylene")


def lipstick(rng: np.random.Generator) -> Thing:
    """Look-alike of a cartridge: a metal tube with a wax core, alone or a handful of cosmetics."""
    n = int(rng.integers(1, 5))
    d, length = _u(rng, 15, 22), _u(rng, 65, 85)
    mat = "brass" if rng.random() < 0.4 else "aluminium"
    offs = tuple((0.0, i * (d + _u(rng, 0, 20)), 0.0) for i in range(1, n))
    parts: list[Piece] = [*tube(mat, d, 0.6, length, axis="x", closed=True, copies=offs),
                          cyl("food", d - 4, length * 0.5, (length * 0.2, 0, 0), "x", copies=offs)]
    return thing("lipstick", parts, mat)


def cosmetics_kit(rng: np.random.Generator) -> Thing:
    """A wash bag: compact mirror, razor, nail clippers, tweezers, a few bottles in fabric."""
    w, h = _u(rng, 150, 240), _u(rng, 90, 140)
    parts: list[Piece] = [*shell("polyethylene", w, h, 70, 1.0), *zip_line([(-w / 2, h / 2), (w / 2, h / 2)])]
    parts.append(cyl("glass", 60, 3, (-w * 0.25, 0, 0)))
    parts.append(cyl("zinc_alloy", 65, 9, (-w * 0.25, 0, 0)))
    parts.append(cyl("zinc_alloy", 65, 7, (-w * 0.25, 0, 0), sign=-1.0))
    parts.append(block("steel", 40, 4, 0.3, (w * 0.2, -h * 0.2, 0)))  # razor blade
    parts.append(block("polyethylene", 100, 12, 10, (w * 0.15, -h * 0.25, 0)))
    parts.append(block("steel", 55, 10, 3, (w * 0.2, h * 0.2, 0), rot=rot(az=0.4)))  # nail clippers
    parts += tube("polyethylene", 35, 1.0, 90, (0, 0, 0), "x", closed=True)
    parts.append(cyl("water", 32, 60, (-10, 0, 0), "x"))
    return thing("cosmetics_kit", parts, "polyethylene")


def umbrella(rng: np.random.Generator) -> Thing:
    """A folded umbrella: steel shaft tube, a bundle of thin steel ribs, fabric, a plastic or wooden handle."""
    length = _u(rng, 230, 900)
    parts: list[Piece] = [*tube("steel", 9, 0.6, length, axis="x"),
                          ball("cotton", length * 0.75, 45, 45, (length * 0.05, 0, 0), texture=("folds", 0.3))]
    n = int(rng.integers(6, 10))
    for k in range(n):
        a = 2 * np.pi * k / n
        y, z = 12 * np.cos(a), 12 * np.sin(a)
        parts.append(polyline([(-length * 0.3, y * 0.5, z * 0.5), (length * 0.4, y, z)], [("steel", 0.7)]))
    parts.append(bar("polyethylene" if rng.random() < 0.7 else "wood", 28, 110, (-length / 2 - 50, 0, 0)))
    return thing("umbrella", parts, "steel", poses=(0.8, 0.2, 0.0, 0.0))


def thermos(rng: np.random.Generator) -> Thing:
    """A vacuum flask: two steel walls (a double ring seen end-on, two dense lines side-on) and a cap."""
    length, d = _u(rng, 180, 320), _u(rng, 65, 90)
    parts: list[Piece] = [*tube("steel", d, 0.5, length, axis="x", closed=True),
                          *tube("steel", d - 8, 0.4, length - 10, axis="x", closed=True),
                          cyl("polyethylene", d - 4, 45, (length / 2 + 20, 0, 0), "x")]
    return thing("thermos", parts, "steel", poses=(0.75, 0.15, 0.0, 0.1))


def mug(rng: np.random.Generator) -> Thing:
    """A ceramic (glass-like) or steel mug with a handle."""
    d, h = _u(rng, 75, 95), _u(rng, 85, 110)
    mat = "glass" if rng.random() < 0.7 else "steel"
    wall = 5.0 if mat == "glass" else 0.6
    parts: list[Piece] = [*tube(mat, d, wall, h, closed=True)]
    parts.append(block(mat, 12, 30, h * 0.6, (d / 2 + 10, 0, 0)))
    return thing("mug", parts, mat, poses=(0.4, 0.3, 0.3, 0.0))


def candle_jar(rng: np.random.Generator) -> Thing:
    """A candle in a glass jar: wax, a steel wick clip, an aluminium lid."""
    d, h = _u(rng, 70, 110), _u(rng, 70, 120)
    parts: list[Piece] = [*tube("glass", d, 4, h, closed=True), cyl("food", d - 8, h * 0.8), cyl("steel", 10, 1, (0, 0, -h * 0.4)),
                          cyl("aluminium", d, 5, (0, 0, h / 2))]
    return thing("candle_jar", parts, "glass", poses=(0.4, 0.3, 0.3, 0.0))



def packing(rng: np.random.Generator) -> Thing:
    """Packing material: bubble wrap, crumpled paper, air pillows, a foam insert or loose fill: faint organic
    clutter that real parcels are full of."""
    kind = str(rng.choice(["bubble_wrap", "paper", "air_pillows", "foam", "loose_fill"]))
    w, h = _u(rng, 120, 350), _u(rng, 100, 300)
    parts: list[Piece]
    if kind == "bubble_wrap":
        layers = int(rng.integers(1, 5))
        # film plies, and the bubbles' air as next to nothing (a low-density layer with a bubbly grain)
        parts = [block("polyethylene", w, h, 0.12 * layers, texture=("grain", 0.9)),
                 ball("cardboard", w, h, 1.5 * layers, texture=("grain", 0.9))]
    elif kind == "paper":
        parts = [ball("paper", w, h, _u(rng, 30, 90), texture=("folds", 0.9)),
                 block("paper", w * 0.6, h * 0.6, _u(rng, 2, 8), texture=("folds", 0.9))]
    elif kind == "air_pillows":
        n = int(rng.integers(2, 7))
        first, rest = spread([(_u(rng, -w, w) * 0.4, _u(rng, -h, h) * 0.4, 0.0) for _ in range(n)])
        parts = [block("polyethylene", 200, 100, 0.1, first, copies=rest)]
    elif kind == "foam":
        t = _u(rng, 15, 50)
        parts = [block("cardboard", w, h, t), block("cardboard", w * 0.6, h * 0.5, t, sign=-1.0)]  # a cut-out
    else:
        n = int(rng.integers(10, 40))
        first, rest = spread([(_u(rng, -w, w) * 0.45, _u(rng, -h, h) * 0.45, 0.0) for _ in range(n)])
        parts = [ball("cardboard", 30, 12, 12, first, copies=rest)]
    return thing("packing", parts, "polyethylene", poses=FLAT)


def in_retail_box(item: Thing, rng: np.random.Generator) -> Thing:
    """The same item in its own thin carton (a shoebox, a phone box, a knife's gift box): an outline round many
    goods. The box is a carrier (not core): the item's box and mask stay the item's."""
    sx, sy, sz = (2 * v + float(rng.uniform(6, 30)) for v in item.half)
    wall = float(rng.uniform(0.8, 2.5))
    box = as_carrier(shell("cardboard", sx, sy, sz, wall))
    return thing(item.name, [*item.parts, *box], item.main_material, item.poses)


def medicine(rng: np.random.Generator) -> Thing:
    """Look-alike of narcotic pills: one to three blister sheets in a carton, or a pill bottle of tablets."""
    parts: list[Piece]
    if rng.random() < 0.6:
        sheets = int(rng.integers(1, 4))
        nx, ny = int(rng.integers(2, 6)), int(rng.integers(2, 5))
        pitch = _u(rng, 12, 17)
        first, rest = spread([((i - (nx - 1) / 2) * pitch, (j - (ny - 1) / 2) * pitch, 0.0)
                              for j in range(ny) for i in range(nx)])
        d = pitch * _u(rng, 0.5, 0.75)
        w, h = nx * pitch + 8, ny * pitch + 8
        parts = [cyl("food", d, 4.0 * sheets, first, copies=rest), block("aluminium", w, h, 0.02 * sheets),
                 block("polyethylene", w, h, 0.25 * sheets), *shell("cardboard", w + 6, h + 6, 8 * sheets + 10, 0.6)]
    else:
        d, length = _u(rng, 35, 55), _u(rng, 60, 110)
        n = int(rng.integers(10, 60))
        pos = [(_u(rng, -0.4, 0.4) * length, _u(rng, -0.3, 0.3) * d, _u(rng, -0.3, 0.3) * d) for _ in range(n)]
        first, rest = spread(pos)
        parts = [*tube("polyethylene", d, 1.5, length, axis="x", closed=True),
                 ball("food", 10, 10, 5, first, copies=rest), cyl("polyethylene", d + 2, 15, (length / 2, 0, 0), "x")]
    return thing("medicine", parts, "food")


def sewing_kit(rng: np.random.Generator) -> Thing:
    """Needles and pins (fine steel lines), thread spools, a thimble and small scissors in a tin or pouch."""
    w, h = _u(rng, 90, 160), _u(rng, 60, 110)
    parts: list[Piece] = [*shell("steel" if rng.random() < 0.5 else "polyethylene", w, h, 25, 0.3)]
    for _ in range(int(rng.integers(2, 6))):
        y = _u(rng, -0.4, 0.4) * h
        parts.append(polyline([(-w * 0.35, y, 0.0), (w * 0.2, y + _u(rng, -5, 5), 0.0)], [("steel", 0.4)]))
    parts.append(cyl("polyethylene", 25, 20, (w * 0.25, h * 0.2, 0), copies=((0.0, -h * 0.4, 0.0),)))
    parts.append(cyl("paper", 22, 18, (w * 0.25, h * 0.2, 0), copies=((0.0, -h * 0.4, 0.0),)))
    parts += tube("brass", 16, 0.6, 20, (-w * 0.3, h * 0.3, 0), closed=True)
    return thing("sewing_kit", parts, "steel")


def wallet(rng: np.random.Generator) -> Thing:
    """Look-alike of currency: a leather wallet with a few notes, bank cards (chip, antenna), coins."""
    w, h = _u(rng, 95, 120), _u(rng, 75, 100)
    parts: list[Piece] = [block("rubber", w, h, 4, texture=("grain", 0.2)), block("paper", w - 6, h - 8, _u(rng, 0.5, 3))]
    n_cards = int(rng.integers(1, 7))
    parts.append(block("polyethylene", 86, 54, 0.8 * n_cards, (0, 0, 3)))
    parts.append(block("copper", 11, 9, 0.3, (-25, 5, 3), copies=tuple((0.0, 0.0, 0.8 * k) for k in range(1, n_cards))))
    t = np.linspace(0, 2 * np.pi, 9)
    parts.append(polyline(np.stack([30 * np.cos(t) + 10, 18 * np.sin(t), 0 * t + 3], axis=1), [("copper", 0.15)]))
    if rng.random() < 0.5:
        n = int(rng.integers(1, 6))
        first, rest = spread([(_u(rng, -30, 30), _u(rng, -25, 25), 0.0) for _ in range(n)])
        parts.append(cyl("brass", 22, 2.0, first, copies=rest))
    return thing("wallet", parts, "rubber", poses=FLAT)
