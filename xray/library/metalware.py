"""Benign dense metal: cutlery, hand tools, keys, padlocks, coins and coin rolls, jewellery, pens, belts, bike
locks, glasses, AA batteries, screws and nails. Several are deliberate look-alikes of threats (scissors, pliers,
spanners, letter openers, metal pens, coin rolls, AA cells)."""

from __future__ import annotations

import numpy as np

from xray.library.common import cell, spring
from xray.shapes import Piece, Thing, bar, block, cyl, plate, polyline, rot, spread, thing, tube, unrolled

LIES = (0.75, 0.2, 0.05, 0.0)


def _u(rng: np.random.Generator, a: float, b: float) -> float:
    return float(rng.uniform(a, b))


def _handle(rng: np.random.Generator, length: float, width: float, x: float) -> list[Piece]:
    mat = str(rng.choice(["polyethylene", "wood", "steel", "rubber"]))
    thick = 2.5 if mat == "steel" else _u(rng, 10, 22)
    return [block(mat, length, width, thick, (x, 0, 0))]


def cutlery(rng: np.random.Generator) -> Thing:
    """A few forks, spoons and round-tipped table knives, loose or side by side."""
    n = int(rng.integers(1, 7))
    parts: list[Piece] = []
    for i in range(n):
        kind = str(rng.choice(["fork", "spoon", "table_knife", "chopsticks"]))
        length = _u(rng, 150, 230)
        y, a = (i - n / 2) * _u(rng, 15, 30), _u(rng, -0.3, 0.3)
        r = rot(az=a)
        handle = block("steel", length * 0.55, 12, 2.5, (-length * 0.2, 0, 0), r)
        parts.append(_place(handle, y))
        if kind == "fork":
            parts.append(_place(block("steel", length * 0.2, 22, 2.0, (length * 0.2, 0, 0), r), y))
            for k in (-1.5, -0.5, 0.5, 1.5):
                parts.append(_place(block("steel", length * 0.2, 3, 2.0, (length * 0.38, k * 6, 0), r), y))
        elif kind == "spoon":
            parts.append(_place(cyl("steel", 40, 1.5, (length * 0.3, 0, 0), rot=r), y))
        elif kind == "table_knife":  # a blade with a rounded end: not a threat
            parts.append(_place(plate("steel", [(0, -9), (length * 0.42, -9), (length * 0.45, 0), (length * 0.42, 9),
                                                 (0, 9)], 2.0, (length * 0.05, 0, 0), r), y))
        else:
            parts.append(_place(bar("steel", 5, length, (0, 6, 0), r), y))
    return thing("cutlery", parts, "steel", poses=LIES)


def _place(p: Piece, y: float) -> Piece:
    from xray.shapes import moved

    return moved([p], (0.0, y, 0.0))[0]


def screwdriver(rng: np.random.Generator) -> Thing:
    """A screwdriver: a steel shaft in a plastic handle."""
    shaft = _u(rng, 60, 200)
    parts: list[Piece] = [bar("steel", _u(rng, 3, 7), shaft, (shaft / 2, 0, 0)),
                          bar("polyethylene", _u(rng, 22, 32), _u(rng, 80, 110), (-45, 0, 0))]
    return thing("screwdriver", parts, "steel", poses=LIES)


def pliers(rng: np.random.Generator) -> Thing:
    """Look-alike: two forged steel halves crossing at a pivot, plastic-dipped handles."""
    length = _u(rng, 130, 250)
    opening = _u(rng, 0.05, 0.35)
    parts: list[Piece] = []
    for s in (-1, 1):
        r = rot(az=s * opening)
        parts.append(plate("steel", [(0, -5), (length * 0.3, -3), (length * 0.3, 3), (0, 6)], 9, (0, 0, 0), r))
        parts.append(plate("steel", [(-length * 0.65, -5), (0, -5), (0, 5), (-length * 0.65, 3)], 7, (0, s * 4, 0), rot(az=-s * opening)))
        parts.append(block("rubber", length * 0.5, 14, 12, (-length * 0.38, s * (4 + length * 0.2 * opening), 0), rot(az=-s * opening)))
    parts.append(cyl("steel", 12, 12, (0, 0, 0)))
    return thing("pliers", parts, "steel", poses=LIES)


def scissors(rng: np.random.Generator) -> Thing:
    """Look-alike of a knife: two thin steel blades at a screw, two plastic loops."""
    length = _u(rng, 120, 260)
    opening = _u(rng, 0.0, 0.4)
    parts: list[Piece] = []
    for s in (-1, 1):
        r = rot(az=s * opening / 2)
        parts.append(plate("steel", [(0, -7), (length * 0.55, -1), (length * 0.55, 1), (0, 7)], 2.5, (0, 0, s * 1.3), r,
                           bevel=2))
        loop = rot(az=-s * opening / 2)
        parts += tube("polyethylene", 35, 6, 8, (-length * 0.25, s * 14, 0), rot=loop)
        parts.append(block("steel", length * 0.2, 8, 2.5, (-length * 0.1, s * 5, 0), loop))
    parts.append(cyl("steel", 6, 7))
    return thing("scissors", parts, "steel", poses=LIES)


def spanner(rng: np.random.Generator) -> Thing:
    """Look-alike: a forged steel bar with an open jaw and a ring."""
    length = _u(rng, 100, 300)
    w = length * 0.1
    parts: list[Piece] = [block("steel", length * 0.8, w, 5, (0, 0, 0)),
                          *tube("steel", w * 2.2, w * 0.5, 7, (length * 0.45, 0, 0)),
                          cyl("steel", w * 2.4, 6, (-length * 0.45, 0, 0)),
                          cyl("steel", w * 1.2, 6, (-length * 0.5, 0, 0), sign=-1.0)]
    if rng.random() < 0.5:  # an adjustable wrench: thicker head, worm screw
        parts += [block("steel", 30, w * 2.5, 14, (-length * 0.45, 0, 0)), bar("steel", 10, 20, (-length * 0.35, w, 0))]
    return thing("spanner", parts, "steel", poses=LIES)


def hammer(rng: np.random.Generator) -> Thing:
    """A hammer: a steel head on a wooden or plastic handle."""
    length = _u(rng, 250, 350)
    head = _u(rng, 90, 130)
    parts: list[Piece] = [block("steel", 28, head, 25, (length / 2, 0, 0)),
                          block("wood" if rng.random() < 0.5 else "polyethylene", length, 28, 22, (0, 0, 0))]
    return thing("hammer", parts, "steel", poses=LIES)


def tape_measure(rng: np.random.Generator) -> Thing:
    """A tape measure: plastic case round a coiled steel tape."""
    d = _u(rng, 50, 80)
    parts: list[Piece] = [block("polyethylene", d, d, 35, texture=None), cyl("steel", d * 0.8, 20),
                          cyl("steel", d * 0.3, 20, sign=-1.0), block("steel", 10, 25, 2, (d / 2, 0, 0))]
    return thing("tape_measure", parts, "steel")


def toolset(rng: np.random.Generator) -> Thing:
    """A hex key set, a bit set or a socket set in a case: many small dense parts in rows."""
    n = int(rng.integers(6, 15))
    kind = str(rng.choice(["hex", "bits", "sockets"]))
    pitch = _u(rng, 10, 18)
    if kind == "sockets":
        first, rest = spread([((i - n / 2) * (pitch + 8), 0.0, 0.0) for i in range(n)])
        parts: list[Piece] = [*tube("steel", pitch + 6, 2.5, 25, first, copies=rest)]
    else:
        d, length = (4.0, 80.0) if kind == "hex" else (6.5, 25.0)
        first, rest = spread([(0.0, (i - n / 2) * pitch, 0.0) for i in range(n)])
        parts = [bar("steel", d, length, first, copies=rest)]
    parts += [block("polyethylene", n * pitch + 40, 100, 30, texture=None)]
    return thing("toolset", parts, "steel")


def keys(rng: np.random.Generator) -> Thing:
    """A bunch of keys on a steel ring: brass or nickel-silver blades with cut teeth."""
    n = int(rng.integers(1, 7))
    parts: list[Piece] = [*tube("steel", 28, 1.5, 3)]
    for _ in range(n):
        a = _u(rng, 0, 2 * np.pi)
        r = rot(az=a)
        length = _u(rng, 45, 70)
        mat = "brass" if rng.random() < 0.6 else "steel"
        for p in (plate(mat, [(0, -12), (22, -12), (22, 12), (0, 12)], 2.2, (14 + 11, 0, 0)),
                  plate(mat, [(0, -4), (length, -4), (length, 1), (length - 4, 4), (0, 4)], 2.2, (36, 0, 0))):
            from xray.shapes import moved

            parts += moved([p], (0.0, 0.0, 0.0), r)
        if rng.random() < 0.3:  # a car key with a plastic head and a chip
            parts += moved([block("polyethylene", 35, 30, 12, (25, 0, 0)), block("circuit_board", 15, 10, 2, (25, 0, 0))], rot=r)
    return thing("keys", parts, "brass")


def padlock(rng: np.random.Generator) -> Thing:
    """A padlock: a brass or steel body, a cylinder, a steel shackle."""
    w = _u(rng, 30, 60)
    parts: list[Piece] = [block("brass" if rng.random() < 0.5 else "steel", w, w * 0.8, w * 0.35),
                          cyl("steel", 10, w * 0.35, (0, -w * 0.1, 0))]
    t = np.linspace(0, np.pi, 12)
    parts.append(polyline(np.stack([w * 0.3 * np.cos(t), w * 0.4 + w * 0.35 * np.sin(t), 0 * t], axis=1), [("steel", 3.5)]))
    return thing("padlock", parts, "brass")


def coins(rng: np.random.Generator) -> Thing:
    """Loose change: a handful of coins, mostly lying flat, some stacked or on edge."""
    n = int(rng.integers(1, 15))
    parts: list[Piece] = []
    for _ in range(n):
        d = _u(rng, 16, 30)
        mat = str(rng.choice(["brass", "copper", "steel", "zinc_alloy"]))
        tilt = rot(ax=_u(rng, -1.4, 1.4) if rng.random() < 0.3 else 0.0)
        parts.append(cyl(mat, d, _u(rng, 1.5, 2.4), (_u(rng, -40, 40), _u(rng, -40, 40), 0.0), rot=tilt))
    return thing("coins", parts, "brass")


def coin_roll(rng: np.random.Generator) -> Thing:
    """Look-alike of ammunition and cells: coins stacked in a paper roll, a dense cylinder."""
    n = int(rng.integers(1, 4))
    d, length = _u(rng, 17, 30), _u(rng, 50, 100)
    mat = str(rng.choice(["brass", "copper", "steel"]))
    offs = tuple((0.0, i * (d + 2), 0.0) for i in range(1, n))
    parts: list[Piece] = [cyl(mat, d, length, axis="x", copies=offs), *tube("paper", d + 1, 0.5, length, axis="x",
                                                                         copies=offs)]
    return thing("coin_roll", parts, mat)


def jewellery(rng: np.random.Generator) -> Thing:
    """Rings, a chain necklace, earrings in a small box."""
    parts: list[Piece] = [block("cardboard", 80, 65, 30)]
    for _ in range(int(rng.integers(0, 4))):
        parts += tube(str(rng.choice(["silver", "brass"])), _u(rng, 18, 24), 1.8, 2.5,
                      (_u(rng, -25, 25), _u(rng, -20, 20), 0.0))
    t = np.linspace(0, 2 * np.pi, 40)
    r = _u(rng, 20, 35)
    chain = np.stack([r * np.cos(t) * 1.2, r * np.sin(t) * 0.6, 0 * t], axis=1)
    parts.append(polyline(chain, [(str(rng.choice(["silver", "brass"])), _u(rng, 0.4, 1.0))]))
    return thing("jewellery", parts, "silver")


def watch(rng: np.random.Generator) -> Thing:
    """A wrist watch: a steel case, glass, a brass movement, steel or rubber strap."""
    d = _u(rng, 34, 46)
    parts: list[Piece] = [*tube("steel", d, 2.5, 11, closed=True), cyl("glass", d - 4, 1.5, (0, 0, 5)),
                          cyl("brass", d * 0.7, 4), cyl("zinc_alloy", 10, 2, (0, -d * 0.2, -3))]
    band = "steel" if rng.random() < 0.4 else "rubber"
    for s in (-1, 1):
        parts.append(block(band, 80, d * 0.5, 2.0 if band == "steel" else 3.5, (s * (d / 2 + 40), 0, 0)))
    return thing("watch", parts, "steel")


def metal_pen(rng: np.random.Generator) -> Thing:
    """Look-alike of a blade or a cartridge: a brass or steel barrel, spring, refill, clip."""
    n = int(rng.integers(1, 4))
    parts: list[Piece] = []
    for i in range(n):
        length, d = _u(rng, 130, 150), _u(rng, 8, 12)
        at = (0.0, i * 14.0, 0.0)
        mat = "brass" if rng.random() < 0.5 else "steel"
        parts += tube(mat, d, 0.5, length, at, "x", closed=True)
        parts.append(bar("polyethylene", 3, length * 0.8, at))
        parts.append(spring(15, 3.5, 0.4, 6, (length * 0.25, i * 14.0, 0)))
        parts.append(block(mat, 45, 3, 1.0, (length * 0.3, i * 14.0 + d / 2, 0)))
    return thing("metal_pen", parts, "brass")


def letter_opener(rng: np.random.Generator) -> Thing:
    """Look-alike of a knife: a thin, blunt steel or brass blade with a cast handle."""
    length = _u(rng, 180, 240)
    mat = "steel" if rng.random() < 0.6 else "brass"
    parts: list[Piece] = [plate(mat, [(0, -8), (length * 0.55, -3), (length * 0.6, 0), (length * 0.55, 3), (0, 8)], 2.5,
                                (0, 0, 0)),
                          block(mat, length * 0.4, 14, 8, (-length * 0.2, 0, 0))]
    return thing("letter_opener", parts, mat, poses=LIES)


def belt(rng: np.random.Generator) -> Thing:
    """A rolled leather belt with a zinc or steel buckle."""
    d = _u(rng, 70, 110)
    parts: list[Piece] = [*tube("rubber", d, 12, 35), block("zinc_alloy", 40, 55, 6, (d / 2 + 15, 0, 0)),
                          block("zinc_alloy", 30, 45, 6, (d / 2 + 15, 0, 0), sign=-1.0), bar("steel", 3, 30, (d / 2 + 15, 0, 0))]
    return thing("belt", parts, "zinc_alloy")


def bike_lock(rng: np.random.Generator) -> Thing:
    """A heavy chain or cable lock: steel links or a braided cable, and a lock body."""
    t = np.linspace(0, 2 * np.pi * _u(rng, 1.0, 2.0), 60)
    r = _u(rng, 60, 110)
    path = np.stack([r * np.cos(t) + t * 5, r * np.sin(t) * 0.8, 0 * t], axis=1)
    chain = rng.random() < 0.5
    parts: list[Piece] = [polyline(path, [("steel", 4.5 if chain else 3.0), ("rubber", 7.0)]),
                          block("steel", 60, 30, 25, (float(path[0, 0]), float(path[0, 1]), 0.0))]
    return thing("bike_lock", parts, "steel")


def glasses(rng: np.random.Generator) -> Thing:
    """Spectacles: two lenses, wire or plastic rims and temples."""
    w = _u(rng, 125, 145)
    metal = rng.random() < 0.5
    parts: list[Piece] = []
    for s in (-1, 1):
        parts.append(cyl("glass" if rng.random() < 0.3 else "polyethylene", 48, 2.5, (s * w * 0.25, 0, 0)))
        t = np.linspace(0, 2 * np.pi, 24)
        ring = np.stack([s * w * 0.25 + 26 * np.cos(t), 22 * np.sin(t), 0 * t], axis=1)
        parts.append(polyline(ring, [("steel" if metal else "polyethylene", 0.8 if metal else 2.5)]))
        parts.append(polyline([(s * w / 2, 0, 0), (s * w / 2, 130, 0)], [("steel" if metal else "polyethylene", 1.0 if metal else 2.5)]))
    return thing("glasses", parts, "polyethylene")


def aa_batteries(rng: np.random.Generator) -> Thing:
    """Look-alike of lithium cells: alkaline AA/AAA/C cells in a blister pack or loose."""
    kind = str(rng.choice(["AA", "AAA", "C"]))
    n = int(rng.integers(2, 9))
    d = {"AA": 14.5, "AAA": 10.5, "C": 26.5}[kind]
    parts: list[Piece] = [*cell(kind, (0.0, -(n - 1) / 2 * d, 0.0), "x", tuple((0.0, i * d, 0.0) for i in range(1, n)))]
    if rng.random() < 0.6:
        parts.append(block("cardboard", 70, n * d + 20, 1.0, (0, 0, -8)))
        parts.append(block("polyethylene", 56, n * d + 4, 0.5, (0, 0, 8)))
    return thing("aa_batteries", parts, "mno2")


def fasteners(rng: np.random.Generator) -> Thing:
    """A box or bag of screws or nails: many small dense parts, jumbled."""
    n = int(rng.integers(8, 30))
    length = _u(rng, 15, 60)
    parts: list[Piece] = [*[bar("steel", _u(rng, 2.5, 5), length, (_u(rng, -30, 30), _u(rng, -20, 20), 0.0), rot(az=_u(rng, 0, 3.14)))
                            for _ in range(min(n, 10))]]
    first = parts[0]
    if n > 10 and not isinstance(first, type(None)):
        pos = [(_u(rng, -30, 30), _u(rng, -20, 20), 0.0) for _ in range(n - 10)]
        parts.append(bar("steel", 3.5, length, pos[0], rot(az=_u(rng, 0, 3.14)),
                         copies=tuple((p[0] - pos[0][0], p[1] - pos[0][1], 0.0) for p in pos[1:])))
    parts.append(block("cardboard", 90, 60, 35))
    return thing("fasteners", parts, "steel")


def bike_parts(rng: np.random.Generator) -> Thing:
    """Bicycle spares: a brake disc or chainring (a steel ring with holes), a chain coil, a pedal spindle."""
    d = _u(rng, 140, 220)
    parts: list[Piece] = [*tube("steel", d, d * 0.12, _u(rng, 1.8, 3.0))]
    n = int(rng.integers(4, 9))
    # lightening holes through the outer ring (a cavity must lie inside its solid)
    first, rest = spread([(d * 0.44 * np.cos(2 * np.pi * k / n), d * 0.44 * np.sin(2 * np.pi * k / n), 0.0)
                          for k in range(n)])
    parts += unrolled(cyl("steel", d * 0.045, 1.5, first, sign=-1.0, copies=rest))
    parts += tube("steel", d * 0.55, d * 0.12, 2.5)
    if rng.random() < 0.6:
        t = np.linspace(0, 2 * np.pi * 2, 80)
        parts.append(polyline(np.stack([d * 0.35 * np.cos(t) + d * 0.7, d * 0.25 * np.sin(t), 0 * t], axis=1),
                              [("steel", 3.0)]))
    return thing("bike_parts", parts, "steel", poses=(0.7, 0.2, 0.1, 0.0))
