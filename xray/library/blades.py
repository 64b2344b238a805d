"""Knives of many kinds: kitchen (chef, paring, bread, boning), folding (open or closed), utility cutters, bare
blades, daggers, hunting knives in a sheath; cleavers and butterfly knives are held out of training.

Object frame: x along the knife (point at +x), y across the blade (edge at -y), z through the flat of the blade
(a knife lies flat; on its edge it is a thin dense line)."""

from __future__ import annotations

import numpy as np

from xray.library.common import rivets
from xray.shapes import Piece, Thing, block, cyl, moved, plate, rot, thing

KNIFE_POSES = (0.6, 0.27, 0.12, 0.01)


def _u(rng: np.random.Generator, a: float, b: float) -> float:
    return float(rng.uniform(a, b))


def _blade(length: float, width: float, thick: float, belly: float = 0.3, clip: float = 0.0, double: bool = False,
           at: float = 0.0) -> list[Piece]:
    """A steel blade from its heel (x = at) to the point, ground to an edge: two convex plates (heel block and
    the tapering point) so that the outline can curve; `clip` drops the spine near the point."""
    heel = length * 0.55
    y_spine = width / 2
    y_edge = -width / 2
    spine_tip = y_spine * (1 - clip) if not double else 0.0
    lower = y_edge if not double else -width / 2
    bevel = min(width * 0.45, 6.0)
    body = plate("steel", [(0, lower), (heel, lower), (heel, y_spine), (0, y_spine)], thick, (at, 0, 0), bevel=bevel)
    tip_y = lower + width * belly if not double else 0.0
    point = plate("steel", [(heel, lower), (length, tip_y), (heel, spine_tip if clip else y_spine)], thick, (at, 0, 0),
                  bevel=bevel)
    if double:  # daggers: ground on both sides
        point = plate("steel", [(heel, lower), (length, 0.0), (heel, y_spine)], thick, (at, 0, 0), bevel=bevel,
                      both=True)
    return [body, point]


def _scales(mat: str, length: float, width: float, thick: float, x: float, tang: bool) -> list[Piece]:
    """A handle: two scales (or a moulded grip) round a full steel tang, with rivets."""
    parts: list[Piece] = [block(mat, length, width, thick, (x, 0, 0), texture=("grain", 0.05) if mat == "wood" else None)]
    if tang:
        parts.append(block("steel", length * 0.95, width * 0.6, 2.5, (x, 0, 0)))
        parts.append(rivets([(x + k * length * 0.3, 0.0, 0.0) for k in (-1, 0, 1)], "brass", 5))
    return parts


def kitchen(rng: np.random.Generator) -> Thing:
    """A kitchen knife (chef, paring, bread, boning, santoku), handle scales round a tang, a bolster."""
    kind = str(rng.choice(["chef", "paring", "bread", "boning", "santoku"]))
    length = {"chef": _u(rng, 160, 250), "paring": _u(rng, 70, 110), "bread": _u(rng, 180, 250),
              "boning": _u(rng, 120, 170), "santoku": _u(rng, 150, 190)}[kind]
    width = {"chef": _u(rng, 35, 50), "paring": _u(rng, 14, 22), "bread": _u(rng, 22, 30), "boning": _u(rng, 14, 22),
             "santoku": _u(rng, 38, 48)}[kind]
    handle = _u(rng, 95, 135)
    parts: list[Piece] = _blade(length, width, _u(rng, 1.5, 2.8), belly=0.45 if kind == "chef" else 0.2)
    parts += _scales(str(rng.choice(["wood", "polyethylene", "polyethylene", "steel"])), handle, width * 0.55 + 8,
                     _u(rng, 14, 22), -handle / 2, rng.random() < 0.6)
    parts.append(block("steel", 8, width * 0.55 + 10, 10, (0, 0, 0)))  # bolster
    return thing("knife:kitchen", parts, "steel", poses=KNIFE_POSES)


def folding(rng: np.random.Generator) -> Thing:
    """A pocket knife, open or closed (the blade then lies inside the handle between steel liners)."""
    length, width = _u(rng, 60, 100), _u(rng, 14, 26)
    handle = length * _u(rng, 1.05, 1.3)
    closed = rng.random() < 0.4
    mat = str(rng.choice(["polyethylene", "aluminium", "wood", "steel"]))
    parts: list[Piece] = [block(mat, handle, width + 6, 10 if mat != "steel" else 3, (-handle / 2, 0, 0)),
                          block("steel", handle, width + 2, 2.0, (-handle / 2, 0, 0))]  # liners
    blade = _blade(length, width, _u(rng, 2.2, 3.5), belly=0.3, clip=_u(rng, 0, 0.4))
    if closed:
        blade = moved(blade, (-8.0, 0.0, 0.0), rot(az=np.pi))
    parts += blade
    parts.append(cyl("steel", 8, 12, (-4, 0, 0)))  # pivot
    parts.append(block("steel", 50, 8, 1.5, (-handle * 0.5, width / 2 + 4, 6)))  # pocket clip
    return thing("knife:folding", parts, "steel", poses=KNIFE_POSES)


def utility_cutter(rng: np.random.Generator) -> Thing:
    """A box cutter: a thin snap-off or trapezoid blade in a plastic or metal body with a steel channel."""
    length = _u(rng, 130, 175)
    body = "polyethylene" if rng.random() < 0.6 else "zinc_alloy"
    parts: list[Piece] = [block(body, length, 20, 14 if body == "polyethylene" else 8),
                          block("steel", length * 0.9, 14, 1.0, (0, 0, 0)),
                          plate("steel", [(0, -6), (length * 0.55, -6), (length * 0.45, 6), (0, 6)], 0.6,
                                (length * _u(rng, 0.1, 0.35), 0, 0))]
    return thing("knife:utility_cutter", parts, "steel", poses=KNIFE_POSES)


def bare_blade(rng: np.random.Generator) -> Thing:
    """A blade without its handle: a blank, a replacement blade, a tang still attached."""
    length, width = _u(rng, 70, 220), _u(rng, 16, 45)
    parts: list[Piece] = _blade(length, width, _u(rng, 1.5, 4.0), belly=_u(rng, 0.1, 0.45))
    parts.append(block("steel", _u(rng, 40, 100), width * 0.35, 3.0, (-30, 0, 0)))
    return thing("knife:bare_blade", parts, "steel", poses=KNIFE_POSES)


def dagger(rng: np.random.Generator) -> Thing:
    """A double-edged dagger with a guard, grip and pommel."""
    length, width = _u(rng, 100, 200), _u(rng, 22, 34)
    parts: list[Piece] = _blade(length, width, _u(rng, 3, 5), double=True)
    parts.append(block("steel", 10, width * 2.2, 12, (0, 0, 0)))  # guard
    grip = _u(rng, 90, 120)
    parts += _scales(str(rng.choice(["wood", "rubber", "steel"])), grip, 24, 20, -grip / 2 - 5, True)
    parts.append(cyl("steel", 26, 18, (-grip - 12, 0, 0), "x"))  # pommel
    return thing("knife:dagger", parts, "steel", poses=KNIFE_POSES)


def hunting(rng: np.random.Generator) -> Thing:
    """A fixed-blade hunting or survival knife, often in a leather or plastic sheath with a steel clip."""
    length, width = _u(rng, 100, 180), _u(rng, 25, 38)
    parts: list[Piece] = _blade(length, width, _u(rng, 3.5, 5.5), belly=0.4, clip=_u(rng, 0.0, 0.5))
    handle = _u(rng, 100, 130)
    parts += _scales(str(rng.choice(["wood", "rubber", "polyethylene"])), handle, width * 0.7, 22, -handle / 2, True)
    if rng.random() < 0.6:
        parts.append(plate("rubber", [(-5, -width * 0.7), (length + 8, -width * 0.2), (length + 8, width * 0.2),
                                      (-5, width * 0.7)], 8, (0, 0, 0), core=False))
        parts.append(block("steel", 40, 20, 1.5, (-10, 0, 6), core=False))
    return thing("knife:hunting", parts, "steel", poses=KNIFE_POSES)


def cleaver(rng: np.random.Generator) -> Thing:
    """Held out: a rectangular, heavy blade."""
    length, width = _u(rng, 150, 210), _u(rng, 70, 100)
    parts: list[Piece] = [plate("steel", [(0, -width / 2), (length, -width / 2), (length, width / 2), (0, width / 2)],
                                _u(rng, 3, 6), bevel=8)]
    parts.append(cyl("steel", 12, 6, (length * 0.85, width * 0.3, 0)))
    parts.append(cyl("steel", 9, 6, (length * 0.85, width * 0.3, 0), sign=-1.0))
    handle = _u(rng, 100, 130)
    parts += _scales(str(rng.choice(["wood", "polyethylene"])), handle, 26, 22, -handle / 2, True)
    return thing("knife:cleaver", parts, "steel", poses=KNIFE_POSES)


def balisong(rng: np.random.Generator) -> Thing:
    """Held out: a butterfly knife, two channel handles swinging on pivots, open or closed."""
    length, width = _u(rng, 80, 110), _u(rng, 16, 24)
    handle = length * 1.15
    opened = rng.random() < 0.5
    parts: list[Piece] = _blade(length, width, 3.0, belly=0.25)
    for s in (-1, 1):
        a = np.pi if not opened else np.pi + s * 0.05
        parts += moved([block("steel", handle, 8, 10, (handle / 2, 0, 0)),
                        block("steel", handle - 4, 5, 7, (handle / 2, 0, 0), sign=-1.0)],
                       (0.0, s * (width / 2 + 2), 0.0), rot(az=a))
    parts.append(cyl("steel", 6, 12, (0, 0, 0), copies=((0.0, width, 0.0),)))
    return thing("knife:balisong", parts, "steel", poses=KNIFE_POSES)
