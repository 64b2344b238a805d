"""Objects as assemblies of 3D parts: solids of a material posed in the object's frame, wires, cavities, copies.

An object's frame is in millimetres with z up through its thinnest side (a phone lies on its back, a bottle on
its side). A `Part` places one solid (xray.solids) of one material; `sign=-1` makes it a cavity cut out of the
parts it lies in (the inside of a can, a tube's bore, a revolver's chambers); `copies` repeats the identical
part at further offsets (pills, rounds, rivets, eyelets) for the cost of one evaluation. A `Wire` is a
polyline of layered round section (a cable's copper core and its sheath, a spring, a chain). Library
generators (xray.library) build a `Thing` from their rng; the renderer (xray.stamp) poses and projects it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from xray.solids import Solid, Vec3, box, cylinder, dome, ellipsoid, prism, rod, rot_x, rot_y, rot_z

_EYE = np.eye(3)


@dataclass(frozen=True)
class Part:
    """One solid of one material at `at` (mm, object frame), turned by `rot` (local -> object)."""

    solid: Solid
    material: str
    at: Vec3 = (0.0, 0.0, 0.0)
    rot: np.ndarray = field(default_factory=lambda: _EYE)
    sign: float = 1.0  # -1: a cavity, subtracted from the parts that contain it
    core: bool = True  # core parts make the object's box and mask (a carrier's shell is not core)
    texture: tuple[str, float] | None = None  # ("folds" | "grain", relative amplitude)
    copies: tuple[Vec3, ...] = ()  # more offsets of the same part, relative to `at`


@dataclass(frozen=True)
class Wire:
    """A polyline (N, 3) mm of round section; layers (material, outer radius mm) from the inside out."""

    points: np.ndarray
    layers: tuple[tuple[str, float], ...]
    core: bool = True


Piece = Part | Wire


@dataclass(frozen=True)
class Thing:
    """An object ready to pose: name (`family` or `class:family`), parts and how it tends to lie."""

    name: str
    parts: tuple[Piece, ...]
    main_material: str
    half: Vec3  # bounding half-extents in the object frame (mm)
    # probabilities of lying flat, tilted, on an edge, on an end (xray.stamp.random_pose)
    poses: tuple[float, float, float, float] = (0.55, 0.3, 0.1, 0.05)


def thing(name: str, parts: Sequence[Piece], main_material: str,
          poses: tuple[float, float, float, float] = (0.55, 0.3, 0.1, 0.05)) -> Thing:
    """A Thing whose bounding half-extents are computed from its positive parts."""
    hi = np.zeros(3)
    for p in parts:
        if isinstance(p, Wire):
            hi = np.maximum(hi, np.abs(p.points).max(axis=0) + max(r for _, r in p.layers))
        elif p.sign > 0:
            ext = np.abs(p.rot) @ np.asarray(p.solid.half)
            for off in ((0.0, 0.0, 0.0), *p.copies):
                hi = np.maximum(hi, np.abs(np.asarray(p.at) + np.asarray(off)) + ext)
    return Thing(name, tuple(parts), main_material, (float(hi[0]), float(hi[1]), float(hi[2])), poses)


def unrolled(part: Part) -> list[Part]:
    """One part per copy, each evaluated at its exact position. Copies are pasted at whole-pixel offsets, which
    is harmless for solids but not for a cavity cut into a solid that is not copied with it (a revolver's
    chambers, holes in a disc): half a pixel off, the cavity would poke out of its solid."""
    at = np.asarray(part.at)
    return [Part(part.solid, part.material, _vec(at + np.asarray(off)), part.rot, part.sign, part.core, part.texture)
            for off in ((0.0, 0.0, 0.0), *part.copies)]


def as_carrier(parts: Sequence[Piece]) -> list[Piece]:
    """The same parts marked non-core: a carrier whose box must not count (drugs in a book, cells in a bank)."""
    out: list[Piece] = []
    for p in parts:
        out.append(Wire(p.points, p.layers, core=False) if isinstance(p, Wire) else
                   Part(p.solid, p.material, p.at, p.rot, p.sign, False, p.texture, p.copies))
    return out


def moved(parts: Sequence[Piece], at: Vec3 = (0.0, 0.0, 0.0), rot: np.ndarray | None = None) -> list[Piece]:
    """Parts of a sub-assembly placed at `at`, turned by `rot` (a loaded magazine in a grip, a cell in a pack)."""
    r = _EYE if rot is None else rot
    off = np.asarray(at, dtype=float)
    out: list[Piece] = []
    for p in parts:
        if isinstance(p, Wire):
            out.append(Wire(p.points @ r.T + off, p.layers, p.core))
        else:
            pos = r @ np.asarray(p.at) + off
            copies = tuple(_vec(r @ np.asarray(c)) for c in p.copies)
            out.append(Part(p.solid, p.material, _vec(pos), r @ p.rot, p.sign, p.core, p.texture, copies))
    return out


def _vec(v: np.ndarray) -> Vec3:
    return float(v[0]), float(v[1]), float(v[2])


# ---- builders: sizes are full lengths (mm); `at` is the centre in the object frame ----

def _axis_rot(axis: str) -> np.ndarray:
    return {"z": _EYE, "x": rot_y(np.pi / 2), "y": rot_x(np.pi / 2)}[axis]


def block(mat: str, sx: float, sy: float, sz: float, at: Vec3 = (0.0, 0.0, 0.0), rot: np.ndarray | None = None,
          **kw: Any) -> Part:
    return Part(box(sx / 2, sy / 2, sz / 2), mat, at, _EYE if rot is None else rot, **kw)


def cyl(mat: str, diameter: float, length: float, at: Vec3 = (0.0, 0.0, 0.0), axis: str = "z",
        rot: np.ndarray | None = None, **kw: Any) -> Part:
    """A cylinder along `axis` of the object frame (then turned by `rot`)."""
    r = _axis_rot(axis) if rot is None else rot @ _axis_rot(axis)
    return Part(cylinder(diameter / 2, length / 2), mat, at, r, **kw)


def tube(mat: str, diameter: float, wall: float, length: float, at: Vec3 = (0.0, 0.0, 0.0), axis: str = "z",
         rot: np.ndarray | None = None, closed: bool = False, **kw: Any) -> list[Part]:
    """A pipe (open) or a can (closed: end walls as thick as the side) along `axis`."""
    inner = length - 2 * wall if closed else length
    return [cyl(mat, diameter, length, at, axis, rot, **kw),
            cyl(mat, diameter - 2 * wall, inner, at, axis, rot, sign=-1.0, **kw)]


def shell(mat: str, sx: float, sy: float, sz: float, wall: float, at: Vec3 = (0.0, 0.0, 0.0),
          rot: np.ndarray | None = None, rim: bool = False, **kw: Any) -> list[Part]:
    """A closed box of sheet material (outer block minus inner block), or with `rim` only its side walls (a
    phone's frame band, a tray, a belt of a bag)."""
    inner_z = sz if rim else sz - 2 * wall
    return [block(mat, sx, sy, sz, at, rot, **kw),
            block(mat, sx - 2 * wall, sy - 2 * wall, inner_z, at, rot, sign=-1.0, **kw)]


def ball(mat: str, sx: float, sy: float, sz: float, at: Vec3 = (0.0, 0.0, 0.0), rot: np.ndarray | None = None,
         **kw: Any) -> Part:
    return Part(ellipsoid(sx / 2, sy / 2, sz / 2), mat, at, _EYE if rot is None else rot, **kw)


def cap(mat: str, sx: float, sy: float, height: float, at: Vec3 = (0.0, 0.0, 0.0), rot: np.ndarray | None = None,
        **kw: Any) -> Part:
    """Half an ellipsoid standing on its base at `at` (a bullet nose along +z unless turned)."""
    return Part(dome(sx / 2, sy / 2, height), mat, at, _EYE if rot is None else rot, **kw)


def plate(mat: str, outline: Sequence[tuple[float, float]] | np.ndarray, thick: float, at: Vec3 = (0.0, 0.0, 0.0),
          rot: np.ndarray | None = None, bevel: float = 0.0, both: bool = False, **kw: Any) -> Part:
    """A convex outline (x, y mm) extruded `thick` mm: a blade, a slide, a key bow, a trigger guard piece.
    `bevel` grinds the edges facing -y (and +y if `both`) to a cutting edge that wide (mm)."""
    return Part(prism(np.asarray(outline, dtype=float), thick / 2, bevel, both), mat, at,
                _EYE if rot is None else rot, **kw)


def bar(mat: str, diameter: float, length: float, at: Vec3 = (0.0, 0.0, 0.0), rot: np.ndarray | None = None,
        **kw: Any) -> Part:
    """A round bar along the object's x axis (then turned by `rot`)."""
    return Part(rod(diameter / 2, length / 2), mat, at, _EYE if rot is None else rot, **kw)


def polyline(points: Sequence[Sequence[float]] | np.ndarray, layers: Sequence[tuple[str, float]],
             core: bool = True) -> Wire:
    pts = np.asarray(points, dtype=float)
    if pts.shape[1] == 2:
        pts = np.concatenate([pts, np.zeros((len(pts), 1))], axis=1)
    return Wire(pts, tuple(layers), core)


def grid(nx: int, ny: int, pitch_x: float, pitch_y: float, z: float = 0.0) -> tuple[Vec3, ...]:
    """Offsets of an nx x ny grid centred on the origin (for `copies`; the first is the origin's corner)."""
    return tuple(((i - (nx - 1) / 2) * pitch_x, (j - (ny - 1) / 2) * pitch_y, z) for j in range(ny) for i in range(nx))


def spread(offsets: Sequence[Vec3]) -> tuple[Vec3, tuple[Vec3, ...]]:
    """(first offset, the rest relative to it): turns a list of positions into `at` + `copies`."""
    first = offsets[0]
    rest = tuple((o[0] - first[0], o[1] - first[1], o[2] - first[2]) for o in offsets[1:])
    return first, rest


def rot(ax: float = 0.0, ay: float = 0.0, az: float = 0.0) -> np.ndarray:
    """Rotation about x, then y, then z (radians)."""
    return rot_z(az) @ rot_y(ay) @ rot_x(ax)


def _smooth_noise_tiles(n: int, size: int, sigma: float, seed: int) -> np.ndarray:
    """Precomputed (n, size, size) smooth noise in roughly [-1, 1]: fabric folds, powder texture, food."""
    from scipy.ndimage import gaussian_filter

    rng = np.random.default_rng(seed)
    tiles = np.empty((n, size, size), dtype=np.float32)
    for i in range(n):
        tile = gaussian_filter(rng.standard_normal((size, size)), sigma, mode="wrap")
        tiles[i] = tile / (3.0 * tile.std())
    return tiles


_TILES: dict[str, np.ndarray] = {}


def texture(kind: str, shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """A random crop (tiled if needed) of a precomputed noise texture: `folds` (coarse) or `grain` (fine)."""
    if kind not in _TILES:
        sigma = {"folds": 9.0, "grain": 1.6}[kind]
        # periodic tiles repeated 5 x 5: any crop up to 4 tiles across is a plain slice (no gather)
        _TILES[kind] = np.tile(_smooth_noise_tiles(4, 160, sigma, seed={"folds": 11, "grain": 12}[kind]), (1, 5, 5))
    tiles = _TILES[kind]
    tile = tiles[int(rng.integers(len(tiles)))]
    oy, ox = (int(x) for x in rng.integers(0, 160, size=2))
    if shape[0] + oy <= tile.shape[0] and shape[1] + ox <= tile.shape[1]:
        return tile[oy:oy + shape[0], ox:ox + shape[1]]
    ys = (np.arange(shape[0]) + oy) % tile.shape[0]
    xs = (np.arange(shape[1]) + ox) % tile.shape[1]
    return tile[np.ix_(ys, xs)]


Generator = Callable[[np.random.Generator], Thing]
