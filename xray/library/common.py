"""Sub-assemblies shared by many families: circuit boards, screws, cells, cartridges, zips, springs, coils."""

from __future__ import annotations

import numpy as np

from xray.shapes import Part, Piece, Wire, bar, block, cap, cyl, grid, moved, polyline, spread, tube
from xray.solids import Vec3, rot_y


def board(rng: np.random.Generator, sx: float, sy: float, at: Vec3 = (0.0, 0.0, 0.0), dense: float = 1.0) -> list[Piece]:
    """A populated circuit board: FR4, copper planes, chips (copper lead frames), capacitors, screws."""
    x, y, z = at
    parts: list[Piece] = [block("circuit_board", sx, sy, 1.6, at),
                          block("copper", sx * 0.92, sy * 0.92, rng.uniform(0.05, 0.15), at)]
    n_chips = int(rng.integers(2, 3 + int(dense * sx * sy / 600)))
    for _ in range(min(n_chips, 12)):
        w, h = rng.uniform(3, 16), rng.uniform(3, 16)
        cx, cy = x + rng.uniform(-0.4, 0.4) * (sx - w), y + rng.uniform(-0.4, 0.4) * (sy - h)
        parts.append(block("copper", w, h, rng.uniform(0.2, 0.8), (cx, cy, z + 1.2)))
    if rng.random() < 0.7:  # a row of small parts (resistors, capacitors) as copies of one
        n = int(rng.integers(3, 9))
        first, rest = spread([(x + (i - n / 2) * 3.0, y + sy * rng.uniform(-0.35, 0.35), z + 1.0) for i in range(n)])
        parts.append(block("steel", 1.6, 0.8, 0.6, first, copies=rest))
    if rng.random() < 0.5:  # an electrolytic capacitor or a coil
        parts.append(cyl("aluminium", rng.uniform(5, 10), rng.uniform(6, 14), (x + sx * 0.3, y - sy * 0.2, z + 5)))
    return parts


def screws(positions: list[Vec3], diameter: float = 2.0, length: float = 4.0, mat: str = "steel") -> Part:
    """Identical screws standing upright at `positions` (as copies of one)."""
    first, rest = spread(positions)
    return cyl(mat, diameter, length, first, copies=rest)


def corners(sx: float, sy: float, inset: float, z: float = 0.0) -> list[Vec3]:
    return [(sgx * (sx / 2 - inset), sgy * (sy / 2 - inset), z) for sgx in (-1, 1) for sgy in (-1, 1)]


def cell(kind: str, at: Vec3 = (0.0, 0.0, 0.0), axis: str = "x", copies: tuple[Vec3, ...] = ()) -> list[Part]:
    """A cylindrical cell lying along `axis`: lithium 18650/21700 (steel can + electrode roll + cap) or
    alkaline AA/AAA (steel can, zinc/MnO2 paste, brass pin): the same outline, other materials inside."""
    d, length = {"18650": (18.3, 65.0), "21700": (21.0, 70.0), "AA": (14.2, 50.0), "AAA": (10.3, 44.0),
                 "C": (26.0, 50.0), "14500": (14.2, 50.0)}[kind]
    lithium = kind in ("18650", "21700", "14500")
    core_mat = "li_cell" if lithium else "zinc_alloy"
    core_d = d - 1.0 if lithium else d * 0.45  # alkaline: a zinc-gel core inside MnO2 (inorganic) paste
    parts: list[Part] = [*tube("steel", d, 0.3, length, at, axis, closed=True, copies=copies),
                         cyl(core_mat, core_d, length - 4, at, axis, copies=copies)]
    if not lithium:
        parts.append(cyl("mno2", d - 1.2, length - 4, at, axis, copies=copies))  # MnO2 cathode paste
        parts.append(cyl("brass", 1.5, length - 6, at, axis, copies=copies))  # current collector pin
    else:
        parts.append(cyl("li_cell", 2.5, length - 6, at, axis, sign=-1.0, copies=copies))  # the roll's hollow core
    return parts


def cartridge(calibre: str, at: Vec3 = (0.0, 0.0, 0.0), rot: np.ndarray | None = None,
              copies: tuple[Vec3, ...] = ()) -> list[Piece]:
    """A round along +x (then turned by `rot`, placed at `at`): brass case with a closed base, propellant and a
    lead bullet with an ogive nose; `copies` (object frame) repeat the whole round."""
    d, case_len, bullet_len = CALIBRES[calibre]
    total = case_len + bullet_len * 0.7
    x_case = -total / 2 + case_len / 2
    parts: list[Piece] = [*tube("brass", d, 0.5, case_len, (x_case, 0.0, 0.0), "x", closed=True),
                          cyl("polyethylene", d - 1.2, case_len - 2, (x_case, 0.0, 0.0), "x")]
    x_nose = -total / 2 + case_len - bullet_len * 0.3
    parts.append(cyl("lead", d * 0.9, bullet_len * 0.3, (x_nose + bullet_len * 0.15, 0.0, 0.0), "x"))
    parts.append(cap("lead", d * 0.9, d * 0.9, bullet_len * 0.7, (x_nose + bullet_len * 0.3, 0.0, 0.0),
                     rot=rot_y(np.pi / 2)))
    return with_copies(moved(parts, at, rot), copies)


CALIBRES = {  # case diameter, case length, bullet length (mm)
    "9mm": (9.9, 19.2, 10.0), "45acp": (12.0, 22.8, 12.0), "22lr": (5.7, 15.0, 9.0), "556": (9.6, 44.7, 12.0),
    "762": (11.9, 39.0, 19.0), "38spl": (9.6, 29.3, 10.0), "380": (9.5, 17.3, 8.5),
}


def with_copies(parts: list[Piece], copies: tuple[Vec3, ...]) -> list[Piece]:
    """The same parts, each repeated at `copies` (offsets in the object frame)."""
    if not copies:
        return parts
    return [p if isinstance(p, Wire) else
            Part(p.solid, p.material, p.at, p.rot, p.sign, p.core, p.texture, p.copies + copies) for p in parts]


def zip_line(points: list[tuple[float, float]] | np.ndarray, z: float = 0.0, metal: bool = True) -> list[Piece]:
    """A zip: a chain of teeth (a dense line if metal, faint if plastic) plus its slider at the start."""
    pts = np.asarray(points, dtype=float)
    mat = "zinc_alloy" if metal else "polyethylene"
    parts: list[Piece] = [polyline(np.c_[pts, np.full(len(pts), z)], [(mat, 1.6 if metal else 2.2)])]
    parts.append(block(mat, 12, 8, 5, (float(pts[0, 0]), float(pts[0, 1]), z)))
    return parts


def spring(length: float, diameter: float, wire: float, turns: int, at: Vec3 = (0.0, 0.0, 0.0),
           mat: str = "steel") -> Wire:
    """A helical coil spring along x."""
    t = np.linspace(0, 2 * np.pi * turns, turns * 12 + 1)
    pts = np.stack([t / t[-1] * length - length / 2, diameter / 2 * np.cos(t), diameter / 2 * np.sin(t)], axis=1)
    return polyline(pts + np.asarray(at), [(mat, wire / 2)])


def cable_path(rng: np.random.Generator, loops: int, radius: float, spread_mm: float = 20.0) -> np.ndarray:
    """A loosely coiled cable: loops of varying radius drifting sideways, a little up and down."""
    t = np.linspace(0, 2 * np.pi * loops, 18 * loops)
    wob = 1.0 + 0.2 * np.sin(t * rng.uniform(0.2, 0.6) + rng.uniform(0, 6))
    x = radius * wob * np.cos(t) + t / t[-1] * spread_mm
    y = radius * wob * np.sin(t) * rng.uniform(0.5, 1.0)
    z = 3 * np.sin(t * 0.5)
    pts = np.stack([x, y, z], axis=1)
    return pts - pts.mean(axis=0)


def rivets(positions: list[Vec3], mat: str = "steel", d: float = 4.0) -> Part:
    first, rest = spread(positions)
    return cyl(mat, d, 2.5, first, copies=rest)


def ring(mat: str, outer: float, inner: float, thick: float, at: Vec3 = (0.0, 0.0, 0.0), axis: str = "z") -> list[Part]:
    return tube(mat, outer, (outer - inner) / 2, thick, at, axis)


def handle_bar(mat: str, length: float, d: float, at: Vec3) -> Part:
    return bar(mat, d, length, at)


def copies_grid(nx: int, ny: int, px: float, py: float) -> tuple[Vec3, tuple[Vec3, ...]]:
    return spread(list(grid(nx, ny, px, py)))
