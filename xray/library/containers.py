"""Containers: envelopes, padded bags, poly mailers, cartons of many sizes, soft bags, backpacks, suitcases with
trolley rails, wheels, frames, zips and rivets; tube mailers and hard cases are held out. Each chooses its own
size within the scanner's field of view and says how many items it tends to hold."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from xray.library.common import rivets, zip_line
from xray.shapes import Piece, Thing, bar, block, cyl, polyline, shell, thing, tube


@dataclass(frozen=True)
class Container:
    thing: Thing
    inner: tuple[float, float]  # usable width (across) and length (along), mm
    items: tuple[int, int]  # how many items it holds: low, high (inclusive)
    max_item: float  # the largest item side (mm) that fits


def _u(rng: np.random.Generator, a: float, b: float) -> float:
    return float(rng.uniform(a, b))


def _size(rng: np.random.Generator, w: tuple[float, float], length: tuple[float, float], max_w: float,
          max_l: float) -> tuple[float, float]:
    return min(_u(rng, *w), max_w), min(_u(rng, *length), max_l)


def envelope(rng: np.random.Generator, max_w: float, max_l: float) -> Container:
    w, length = _size(rng, (110, 260), (160, 360), max_w, max_l)
    parts: list[Piece] = [block("paper", w, length, 0.25)]
    if rng.random() < 0.3:
        parts.append(block("polyethylene", w * 0.4, length * 0.25, 0.05, (0, length * 0.2, 0)))
    return Container(thing("container:envelope", parts, "paper"), (w * 0.8, length * 0.8), (1, 3), min(w, length) * 0.9)


def padded_bag(rng: np.random.Generator, max_w: float, max_l: float) -> Container:
    w, length = _size(rng, (150, 300), (200, 400), max_w, max_l)
    parts: list[Piece] = [block("paper", w, length, 0.5), block("polyethylene", w - 6, length - 6, 1.6,
                                                                texture=("grain", 0.6))]  # two plies of bubbles
    return Container(thing("container:padded_bag", parts, "paper"), (w * 0.8, length * 0.8), (1, 4), min(w, length))


def poly_mailer(rng: np.random.Generator, max_w: float, max_l: float) -> Container:
    w, length = _size(rng, (200, 420), (250, 520), max_w, max_l)
    return Container(thing("container:poly_mailer", [block("polyethylene", w, length, 0.15)], "polyethylene"),
                     (w * 0.8, length * 0.8), (1, 5), min(w, length))


def carton(rng: np.random.Generator, max_w: float, max_l: float) -> Container:
    """A corrugated box (walls seen edge-on make dark outlines), closing flaps and tape; any size."""
    w, length = _size(rng, (120, 560), (150, 650), max_w, max_l)
    depth = _u(rng, 0.2, 0.7) * min(w, length) + 40
    wall = _u(rng, 3, 7)
    parts: list[Piece] = [*shell("cardboard", w, length, depth, wall),
                          block("cardboard", w - 2 * wall, length - 2 * wall, wall, (0, 0, depth / 2 - wall * 1.5)),
                          block("polyethylene", 50, length + 60, 0.15, (0, 0, depth / 2))]
    n_hi = 3 + int(w * length / 18_000)
    return Container(thing("container:carton", parts, "cardboard"), (w * 0.85, length * 0.85), (1, min(n_hi, 22)),
                     max(w, length))


def soft_bag(rng: np.random.Generator, max_w: float, max_l: float) -> Container:
    """A holdall: fabric with folds, a zip along the top, webbing handles, metal strap hooks, feet."""
    w, length = _size(rng, (250, 450), (400, 700), max_w, max_l)
    parts: list[Piece] = [*shell("cotton", w, length, 220, 3.0), block("cotton", w, length, 4.0, texture=("folds", 0.7)),
                          block("polyethylene", w * 0.9, length * 0.9, 3.0, (0, 0, -105)),
                          *zip_line([(0, -length * 0.45), (0, length * 0.45)], 110)]
    for s in (-1, 1):
        parts.append(block("polyethylene", 30, length * 0.6, 3, (s * w * 0.2, 0, 112)))
        parts.append(block("zinc_alloy", 20, 30, 8, (s * w * 0.45, s * length * 0.48, 0)))
    parts.append(rivets([(x * w * 0.4, y * length * 0.42, -112.0) for x in (-1, 1) for y in (-1, 1)], "steel", 12))
    return Container(thing("container:soft_bag", parts, "cotton"), (w * 0.85, length * 0.85), (5, 20), max(w, length))


def backpack(rng: np.random.Generator, max_w: float, max_l: float) -> Container:
    w, length = _size(rng, (260, 340), (380, 520), max_w, max_l)
    parts: list[Piece] = [*shell("cotton", w, length, 180, 2.5), block("cotton", w, length, 3.0, texture=("folds", 0.7)),
                          block("polyethylene", w * 0.8, length * 0.8, 10, (0, 0, -85)),
                          *zip_line([(-w * 0.4, -length * 0.4), (-w * 0.45, length * 0.1), (0, length * 0.45),
                                     (w * 0.45, length * 0.1), (w * 0.4, -length * 0.4)], 90),
                          *zip_line([(-w * 0.35, -length * 0.1), (w * 0.35, -length * 0.1)], 90)]
    if rng.random() < 0.4:  # aluminium frame stays
        for s in (-1, 1):
            parts.append(block("aluminium", 20, length * 0.85, 2.5, (s * w * 0.25, 0, -85)))
    for s in (-1, 1):  # strap buckles
        parts.append(block("polyethylene", 40, 25, 8, (s * w * 0.3, -length * 0.45, -95)))
    return Container(thing("container:backpack", parts, "cotton"), (w * 0.85, length * 0.85), (4, 15), max(w, length))


def suitcase(rng: np.random.Generator, max_w: float, max_l: float) -> Container:
    """A trolley case: hard or soft shell, two telescopic aluminium rails, a handle, wheels with steel axles,
    a steel frame wire round the rim, zips, rivets and a lock."""
    w, length = _size(rng, (340, 520), (480, 780), max_w, max_l)
    depth = _u(rng, 200, 300)
    hard = rng.random() < 0.5
    parts: list[Piece] = [*shell("polyethylene" if hard else "cotton", w, length, depth, 3.0 if hard else 2.0)]
    if not hard:
        parts.append(block("cotton", w, length, 3.0, texture=("folds", 0.7)))
    rail_x = _u(rng, 0.22, 0.35) * w
    rail = length * 0.85
    sx, sy = _u(rng, 12, 22), _u(rng, 18, 32)
    for s in (-1, 1):  # telescopic rails: two nested rectangular tubes each side
        for k, (scale, off) in enumerate(((1.0, 0.0), (0.75, 0.04 * length))):
            at = (s * rail_x, off - length * 0.04, -depth / 2 + 18)
            parts += shell("aluminium", sx * scale, sy * scale, rail * (1 - 0.1 * k), 1.2, at, rot=_along_y(), rim=True)
    parts += shell("aluminium", 2 * rail_x + 30, 30, 25, 1.5, (0, -length / 2 + 15, -depth / 2 + 18))  # handle
    parts.append(block("polyethylene", 2 * rail_x + 40, 45, 5.0, (0, length / 2 - 30, -depth / 2 + 12)))  # base
    parts.append(block("steel", 2 * rail_x, 20, 0.8, (0, length / 2 - 30, -depth / 2 + 12)))  # its stiffener
    n_wheels = 4 if rng.random() < 0.6 else 2
    wheel_d = _u(rng, 45, 75)
    for k in range(n_wheels):
        x = (-1 if k % 2 == 0 else 1) * (w / 2 - 30)
        y = length / 2 - 25 if k < 2 else -length / 2 + 25
        if n_wheels == 2 and k >= 2:
            continue
        parts.append(cyl("rubber", wheel_d, 20, (x, y, -depth / 2 + 10), "x"))
        parts.append(bar("steel", 6, 30, (x, y, -depth / 2 + 10)))  # axle
        parts.append(block("polyethylene", 50, 60, 40, (x, y, -depth / 2 + 30)))
    frame = [(-w / 2 + 5, -length / 2 + 5), (w / 2 - 5, -length / 2 + 5), (w / 2 - 5, length / 2 - 5),
             (-w / 2 + 5, length / 2 - 5), (-w / 2 + 5, -length / 2 + 5)]
    if not hard:
        parts.append(polyline(np.c_[np.asarray(frame), np.full(5, depth / 2 - 10)], [("steel", 2.0)]))
    parts += zip_line(frame, 0.0, metal=rng.random() < 0.7)
    parts.append(rivets([(x, y, -depth / 2) for x in (-rail_x, rail_x) for y in (-length * 0.3, length * 0.35)], "steel", 8))
    parts.append(block("zinc_alloy", 35, 20, 15, (0, -length / 2 + 40, 0)))  # combination lock
    parts.append(block("polyethylene", 25, 120, 25, (w / 2 - 12, 0, 0)))  # side handle
    return Container(thing("container:suitcase", parts, "polyethylene"), (w * 0.8, length * 0.85), (8, 30),
                     max(w, length))


def _along_y() -> np.ndarray:
    from xray.solids import rot_x

    return rot_x(np.pi / 2)


def tube_mailer(rng: np.random.Generator, max_w: float, max_l: float) -> Container:
    d, length = min(_u(rng, 60, 120), max_w), min(_u(rng, 300, 800), max_l)
    parts: list[Piece] = [*tube("cardboard", d, 2.5, length, axis="y"),
                          cyl("polyethylene", d, 20, (0, length / 2, 0), "y", copies=((0.0, -length, 0.0),))]
    return Container(thing("container:tube_mailer", parts, "cardboard"), (d * 0.5, length * 0.8), (1, 2), length * 0.8)


def hard_case(rng: np.random.Generator, max_w: float, max_l: float) -> Container:
    """A tool or instrument case: plastic shell, aluminium edge extrusions (dense outlines), hinges, latches."""
    w, length = _size(rng, (250, 420), (320, 600), max_w, max_l)
    depth = _u(rng, 80, 160)
    parts: list[Piece] = [*shell("polyethylene", w, length, depth, 3.0),
                          *shell("aluminium", w, length, 20, 2.0, (0, 0, 0), rim=True),
                          block("polyethylene", w - 10, length - 10, depth * 0.3, (0, 0, -depth * 0.25), texture=("grain", 0.3))]
    for s in (-1, 1):
        parts.append(block("steel", 40, 15, 20, (w / 2, s * length * 0.3, 0)))  # hinges
        parts.append(block("zinc_alloy", 40, 25, 20, (-w / 2, s * length * 0.25, 0)))  # latches
    return Container(thing("container:hard_case", parts, "polyethylene"), (w * 0.8, length * 0.8), (3, 10),
                     max(w, length))
