"""Electronics: phones, tablets, laptops, chargers, cables, headphones, speakers, watches, vapes, consoles, torches,
cameras, hair clippers and power drills: dense boards, magnets, screws, motors and built-in cells."""

from __future__ import annotations

import numpy as np

from xray.library.common import board, cable_path, cell, corners, screws, spring
from xray.shapes import Piece, Thing, bar, block, cyl, polyline, shell, thing, tube


def _u(rng: np.random.Generator, a: float, b: float) -> float:
    return float(rng.uniform(a, b))


def phone(rng: np.random.Generator) -> Thing:
    """A smartphone: aluminium or steel frame band, glass, a pouch cell, a dense board, camera, magnet, screws."""
    w, h, t = _u(rng, 64, 80), _u(rng, 130, 168), _u(rng, 7.5, 10)
    frame = "aluminium" if rng.random() < 0.7 else "steel"
    parts: list[Piece] = [*shell(frame, h, w, t, 1.5, rim=True), block("glass", h - 1, w - 1, 0.7, (0, 0, t / 2 - 0.5)),
                          block("glass" if rng.random() < 0.6 else "aluminium", h - 1, w - 1, 0.7, (0, 0, -t / 2 + 0.5)),
                          block("li_cell", h * 0.5, w * 0.78, t * 0.45, (-h * 0.1, 0, 0), core=True)]
    parts += board(rng, h * 0.32, w * 0.7, (h * 0.3, 0, 0), dense=2.0)
    parts.append(cyl("steel", 9, 4, (h * 0.38, w * 0.25, 0)))  # camera module and its magnet
    parts.append(block("steel", 10, 6, 2.5, (-h * 0.44, w * 0.2, 0)))  # loudspeaker magnet
    parts.append(screws(corners(h, w, 4), 1.4, 3))
    return thing("phone", parts, frame, poses=(0.7, 0.2, 0.08, 0.02))


def tablet(rng: np.random.Generator) -> Thing:
    """A tablet: aluminium shell, glass, one or two large pouch cells, a board."""
    w, h, t = _u(rng, 140, 200), _u(rng, 200, 280), _u(rng, 6, 9)
    parts: list[Piece] = [*shell("aluminium", h, w, t, 1.0), block("glass", h - 2, w - 2, 0.8, (0, 0, t / 2 - 0.5))]
    n = int(rng.integers(1, 3))
    for i in range(n):  # one or two flat pouch cells side by side
        parts.append(block("li_cell", h * 0.6, w * 0.8 / n, t * 0.5, (-h * 0.05, (i - (n - 1) / 2) * w * 0.82 / n, 0)))
    parts += board(rng, h * 0.22, w * 0.5, (h * 0.36, 0, 0), dense=2.0)
    parts.append(screws(corners(h, w, 5), 1.4, 3))
    return thing("tablet", parts, "aluminium", poses=(0.75, 0.2, 0.05, 0.0))


def laptop(rng: np.random.Generator) -> Thing:
    """A laptop: base and lid shells, glass, keyboard plate, pouch cells or a row of 18650s, board, heat pipe, fan, hinges."""
    w, d, t = _u(rng, 280, 380), _u(rng, 190, 260), _u(rng, 14, 24)
    case = "aluminium" if rng.random() < 0.6 else "polyethylene"
    wall = 1.2 if case == "aluminium" else 2.2
    parts: list[Piece] = [*shell(case, w, d, t * 0.55, wall, (0, 0, -t * 0.2)),
                          *shell(case, w, d, t * 0.35, wall * 0.8, (0, 0, t * 0.28)),  # the lid
                          block("glass", w - 16, d - 18, 0.8, (0, 0, t * 0.3)),
                          block("steel", w * 0.8, d * 0.4, 0.5, (0, d * 0.1, -t * 0.05))]  # keyboard plate
    if rng.random() < 0.7:  # pouch cells along the front edge
        n = int(rng.integers(2, 5))
        for i in range(n):
            parts.append(block("li_cell", w * 0.8 / n - 4, d * 0.3, t * 0.25, ((i - (n - 1) / 2) * w * 0.8 / n, -d * 0.3, -t * 0.2)))
    else:  # an older pack of 18650 cells in a row: six dense cylinders
        n = int(rng.integers(4, 7))
        parts += cell("18650", ((1 - n) / 2 * 67, -d * 0.36, -t * 0.2), "x", tuple((i * 67.0, 0.0, 0.0) for i in range(1, n)))
    parts += board(rng, w * 0.45, d * 0.35, (w * 0.1, d * 0.18, -t * 0.2), dense=2.5)
    parts.append(bar("copper", 6, w * 0.3, (w * 0.15, d * 0.32, -t * 0.2)))  # heat pipe
    parts += tube("aluminium", 50, 8, 6, (w * 0.32, d * 0.25, -t * 0.2))  # fan
    for s in (-1, 1):  # hinges
        parts.append(block("steel", 30, 10, 8, (s * w * 0.35, d / 2 - 6, 0)))
    parts.append(screws([(x * w * 0.45, y * d * 0.45, -t * 0.4) for x in (-1, -0.3, 0.3, 1) for y in (-1, 1)], 2, 4))
    return thing("laptop", parts, case, poses=(0.8, 0.15, 0.05, 0.0))


def charger(rng: np.random.Generator) -> Thing:
    """A wall adapter or a laptop power brick: transformer (steel core, copper coil), board, capacitors."""
    brick = rng.random() < 0.4
    sx, sy, sz = (_u(rng, 90, 140), _u(rng, 50, 70), _u(rng, 25, 35)) if brick else \
        (_u(rng, 35, 60), _u(rng, 35, 55), _u(rng, 22, 30))
    parts: list[Piece] = [*shell("polyethylene", sx, sy, sz, 2.0)]
    parts += board(rng, sx * 0.85, sy * 0.8, (0, 0, -sz * 0.3))
    parts.append(block("steel", sx * 0.25, sy * 0.35, sz * 0.5, (sx * 0.15, 0, 0)))
    parts.append(cyl("copper", sy * 0.4, sz * 0.45, (sx * 0.15, 0, 0)))
    parts.append(cyl("aluminium", 10, sz * 0.5, (-sx * 0.2, sy * 0.2, 0)))
    if not brick:  # mains prongs
        for s in (-1, 1):
            parts.append(block("brass", 18, 4, 1.5, (-sx / 2 - 9, s * 6, 0)))
    else:
        path = cable_path(rng, int(rng.integers(2, 5)), _u(rng, 30, 60))
        parts.append(polyline(path + np.array([sx * 0.2, 0, 0]), [("copper", 0.6), ("polyethylene", 2.0)]))
    return thing("charger", parts, "polyethylene")


def cable(rng: np.random.Generator) -> Thing:
    """A coiled cable with connectors: USB, HDMI or a mains lead."""
    path = cable_path(rng, int(rng.integers(2, 7)), _u(rng, 25, 70))
    core, sheath = (_u(rng, 0.4, 1.0), _u(rng, 1.5, 3.5))
    parts: list[Piece] = [polyline(path, [("copper", core), ("polyethylene", sheath)])]
    for end in (path[0], path[-1]):
        parts.append(block("steel", 12, 8, 4, (float(end[0]), float(end[1]), 0.0)))
        parts.append(block("polyethylene", 25, 12, 8, (float(end[0]), float(end[1]), 0.0)))
    return thing("cable", parts, "copper")


def headphones(rng: np.random.Generator) -> Thing:
    """Over-ear headphones: steel band in plastic, cups with magnets and voice coils, sometimes a cell."""
    span, cup = _u(rng, 140, 190), _u(rng, 55, 85)
    t = np.linspace(0.1, np.pi - 0.1, 30)
    band = np.stack([span / 2 * np.cos(t), span * 0.55 * np.sin(t), np.zeros_like(t)], axis=1)
    parts: list[Piece] = [polyline(band, [("steel", 1.2), ("polyethylene", 4.0)])]
    for s in (-1, 1):
        at = (s * span / 2, 0.0, 0.0)
        parts.append(cyl("polyethylene", cup, 30, at, texture=("grain", 0.2)))
        parts.append(cyl("steel", cup * 0.35, 6, at))  # driver magnet
        parts += tube("copper", cup * 0.3, 1.0, 4, at)  # voice coil
    if rng.random() < 0.5:
        parts.append(block("li_cell", 30, 20, 5, (span / 2, 0, 0)))
    return thing("headphones", parts, "steel")


def earbuds(rng: np.random.Generator) -> Thing:
    """An earbud case: plastic shell, a cell, two buds with magnets and cells."""
    w, h = _u(rng, 45, 65), _u(rng, 40, 55)
    parts: list[Piece] = [*shell("polyethylene", w, h, 24, 1.5), block("li_cell", w * 0.6, h * 0.3, 6, (0, -h * 0.25, 0)),
                          cyl("steel", 8, 5, (-w * 0.2, h * 0.15, 0), copies=((w * 0.4, 0.0, 0.0),)),
                          block("li_cell", 10, 10, 8, (-w * 0.2, h * 0.1, 0), copies=((w * 0.4, 0.0, 0.0),))]
    return thing("earbuds", parts, "polyethylene")


def speaker(rng: np.random.Generator) -> Thing:
    """A Bluetooth speaker: plastic tube, two magnets, one or two 18650 cells, a board."""
    length, d = _u(rng, 120, 220), _u(rng, 55, 90)
    parts: list[Piece] = [*tube("polyethylene", d, 2.5, length, axis="x", closed=True)]
    for s in (-1, 1):
        parts.append(cyl("steel", d * 0.45, 10, (s * length * 0.3, 0, 0), "x"))  # magnets
    n = int(rng.integers(1, 3))
    parts += cell("18650", (0, 0, 0), "x", tuple((0.0, 0.0, 19.0 * i) for i in range(1, n)))
    parts += board(rng, length * 0.3, d * 0.5, (0, 0, -d * 0.3))
    return thing("speaker", parts, "polyethylene", poses=(0.6, 0.2, 0.05, 0.15))


def smartwatch(rng: np.random.Generator) -> Thing:
    """A smart watch: aluminium case, glass, a pouch cell, rubber or steel band and buckle."""
    w, h = _u(rng, 36, 46), _u(rng, 40, 50)
    band = "rubber" if rng.random() < 0.6 else "steel"
    parts: list[Piece] = [*shell("aluminium", h, w, 11, 1.2), block("glass", h - 2, w - 2, 1.0, (0, 0, 5)),
                          block("li_cell", h * 0.5, w * 0.6, 3.5), block("steel", h * 0.2, 4, 3, (h * 0.3, 0, 0))]
    bt = 1.2 if band == "steel" else 3.0
    for s in (-1, 1):
        parts.append(block(band, 85, w * 0.8, bt, (s * (h / 2 + 42), 0, 0)))
    parts.append(block("steel", 6, w * 0.7, 3, (h / 2 + 84, 0, 0)))  # buckle
    return thing("smartwatch", parts, "aluminium")


def vape(rng: np.random.Generator) -> Thing:
    """A vape pen: aluminium tube, a lithium cell, liquid, a heating coil."""
    length, d = _u(rng, 90, 130), _u(rng, 16, 24)
    parts: list[Piece] = [*tube("aluminium", d, 0.8, length, axis="x", closed=True),
                          cyl("li_cell", d - 3, length * 0.45, (-length * 0.22, 0, 0), "x"),
                          cyl("water", d - 5, length * 0.3, (length * 0.22, 0, 0), "x"),
                          spring(length * 0.15, 4, 0.4, 6, (length * 0.22, 0, 0))]
    return thing("vape", parts, "aluminium", poses=(0.7, 0.2, 0.05, 0.05))


def game_controller(rng: np.random.Generator) -> Thing:
    """A game controller: plastic shell with grips, board, two rumble motors, a cell, screws."""
    w, h = _u(rng, 140, 165), _u(rng, 90, 110)
    parts: list[Piece] = [*shell("polyethylene", w, h * 0.6, 35, 2.0),
                          cyl("polyethylene", h * 0.55, 35, (-w * 0.33, -h * 0.15, 0), texture=None),
                          cyl("polyethylene", h * 0.55, 35, (w * 0.33, -h * 0.15, 0))]
    parts += board(rng, w * 0.6, h * 0.4, (0, 0, 0))
    parts.append(cyl("steel", 12, 10, (-w * 0.33, -h * 0.2, 0), copies=((w * 0.66, 0.0, 0.0),)))  # rumble motors
    parts.append(block("li_cell", 40, 25, 8, (0, -h * 0.1, -5)))
    parts.append(screws([(x, y, 0.0) for x in (-w * 0.35, 0.0, w * 0.35) for y in (-h * 0.25, h * 0.2)], 2, 6))
    return thing("game_controller", parts, "polyethylene")


def torch(rng: np.random.Generator) -> Thing:
    """A flashlight: aluminium tube, alkaline or lithium cells in a row, reflector, spring."""
    n = int(rng.integers(1, 4))
    kind = str(rng.choice(["AA", "C", "18650"]))
    cell_len = {"AA": 50.0, "C": 50.0, "18650": 65.0}[kind]
    d = {"AA": 14.2, "C": 26.0, "18650": 18.3}[kind] + 4
    length = n * cell_len + _u(rng, 40, 70)
    parts: list[Piece] = [*tube("aluminium", d, 1.5, length, axis="x", closed=True),
                          cyl("aluminium", d * 1.4, 30, (length / 2 - 15, 0, 0), "x"),
                          spring(12, d * 0.5, 0.8, 5, (-length / 2 + 10, 0, 0))]
    parts += cell(kind, (-length / 2 + 18 + cell_len / 2, 0, 0), "x", tuple((i * cell_len, 0.0, 0.0) for i in range(1, n)))
    return thing("torch", parts, "aluminium", poses=(0.7, 0.2, 0.05, 0.05))


def hair_clipper(rng: np.random.Generator) -> Thing:
    """Look-alike: a steel blade set and a motor in a grip-sized body."""
    length, w = _u(rng, 140, 180), _u(rng, 40, 50)
    parts: list[Piece] = [*shell("polyethylene", length, w, 35, 2.5),
                          block("steel", 8, w * 0.95, 3, (length / 2 - 4, 0, 0)),
                          block("steel", 6, w * 0.9, 2, (length / 2 - 10, 0, 0)),
                          cyl("copper", 22, 30, (length * 0.1, 0, 0), "x"), cyl("steel", 26, 30, (length * 0.1, 0, 0), "x"),
                          block("steel", 40, 10, 10, (-length * 0.1, 0, 0))]
    if rng.random() < 0.6:
        parts += cell("14500", (-length * 0.3, 0, 0), "x")
    return thing("hair_clipper", parts, "steel")


def camera(rng: np.random.Generator) -> Thing:
    """A camera: metal or plastic body, a lens barrel with glass elements, a cell, board, sensor block."""
    w, h, d = _u(rng, 110, 140), _u(rng, 70, 95), _u(rng, 40, 70)
    lens = _u(rng, 50, 75)
    parts: list[Piece] = [*shell("zinc_alloy" if rng.random() < 0.4 else "polyethylene", w, d, h, 1.5),
                          *tube("aluminium", lens, 3, _u(rng, 30, 90), (0, d / 2 + 20, 0), "y")]
    for k in range(3):  # lens elements
        parts.append(cyl("glass", lens - 8, 6, (0, d / 2 + 5 + k * 12, 0), "y"))
    parts.append(block("li_cell", 35, 20, 14, (-w * 0.3, 0, 0)))
    parts += board(rng, w * 0.7, h * 0.7, (0, -d * 0.3, 0))
    parts.append(block("steel", 30, 25, 10, (w * 0.15, 0, 0)))  # sensor and shutter
    return thing("camera", parts, "aluminium")


def power_drill(rng: np.random.Generator) -> Thing:
    """A corded drill: plastic body and grip, steel and copper motor, gearbox, chuck and bit."""
    length = _u(rng, 170, 230)
    parts: list[Piece] = [*shell("polyethylene", length, 60, 65, 3.0),
                          *shell("polyethylene", 55, 45, 120, 3.0, (-length * 0.25, 0, -80)),
                          cyl("steel", 40, 50, (0, 0, 0), "x"), cyl("copper", 34, 40, (0, 0, 0), "x"),
                          cyl("steel", 38, 35, (length * 0.3, 0, 0), "x"),  # gearbox
                          cyl("steel", 30, 45, (length / 2 + 15, 0, 0), "x"),  # chuck
                          bar("steel", 8, 70, (length / 2 + 70, 0, 0))]  # a bit
    return thing("power_drill", parts, "steel")


def router(rng: np.random.Generator) -> Thing:
    """A set-top box, router or hard drive: a case, one big board, a heat sink or platters."""
    w, d, h = _u(rng, 100, 260), _u(rng, 70, 180), _u(rng, 20, 45)
    parts: list[Piece] = [*shell("polyethylene" if rng.random() < 0.6 else "steel", w, d, h, 1.2)]
    parts += board(rng, w * 0.9, d * 0.85, (0, 0, -h * 0.3), dense=2.0)
    if rng.random() < 0.5:
        parts.append(block("aluminium", 40, 40, 12, (w * 0.1, 0, 0)))
    else:  # a 3.5" drive: aluminium platters, steel motor
        parts += [block("aluminium", 146, 101, 20, (0, 0, 0)), cyl("steel", 25, 8, (10, 0, 0)),
                  block("steel", 40, 8, 4, (-40, 20, 6))]
    return thing("router", parts, "circuit_board")


def e_reader(rng: np.random.Generator) -> Thing:
    """An e-reader: plastic shell, glass, a thin cell, a board."""
    w, h = _u(rng, 110, 130), _u(rng, 160, 180)
    parts: list[Piece] = [*shell("polyethylene", h, w, 8, 1.0), block("glass", h - 20, w - 8, 1.0),
                          block("li_cell", 60, 40, 3.5, (-20, 0, -2))]
    parts += board(rng, h * 0.3, w * 0.5, (h * 0.25, 0, -2))
    return thing("e_reader", parts, "polyethylene", poses=(0.8, 0.15, 0.05, 0.0))


def keyboard(rng: np.random.Generator) -> Thing:
    """A keyboard: plastic case, steel plate, board, rows of keycaps."""
    w, d = _u(rng, 280, 440), _u(rng, 110, 150)
    parts: list[Piece] = [*shell("polyethylene", w, d, 25, 2.0), block("steel", w * 0.95, d * 0.9, 0.8),
                          block("circuit_board", w * 0.9, d * 0.85, 1.6, (0, 0, -4))]
    rows = tuple((0.0, j * d * 0.7 / 4, 0.0) for j in range(1, 5))  # key rows (caps merge at this pitch)
    parts.append(block("polyethylene", w * 0.84, d * 0.7 / 5 - 3, 7, (0, -d * 0.35, 6.0), texture=("grain", 0.4),
                       copies=rows))
    return thing("keyboard", parts, "polyethylene", poses=(0.85, 0.1, 0.05, 0.0))



def drone(rng: np.random.Generator) -> Thing:
    """A folding camera drone: plastic body, four motors (steel bell, copper windings), arms, a pack of cells."""
    w = _u(rng, 140, 250)
    parts: list[Piece] = [*shell("polyethylene", w * 0.6, w * 0.35, 45, 2.0),
                          block("li_cell", w * 0.35, w * 0.22, 22, (-w * 0.05, 0, 0))]
    parts += board(rng, w * 0.25, w * 0.2, (w * 0.15, 0, 10))
    for sx in (-1, 1):
        for sy in (-1, 1):
            at = (sx * w * 0.45, sy * w * 0.4, 0.0)
            parts.append(block("polyethylene", w * 0.35, 10, 10, (sx * w * 0.3, sy * w * 0.25, 0.0),
                               rot=np.array([[0.8, -0.6 * sx * sy, 0], [0.6 * sx * sy, 0.8, 0], [0, 0, 1]])))
            parts.append(cyl("steel", 22, 14, at))
            parts.append(cyl("copper", 14, 10, at))
    parts.append(block("steel", 30, 25, 25, (w * 0.3, 0, -15)))  # gimbal camera
    return thing("drone", parts, "polyethylene")
