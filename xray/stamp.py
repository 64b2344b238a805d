"""Project a posed 3D object into the log-attenuation images: parts by exact chords, wires by volume splats.

Every part adds mu(material, E) * thickness to the low- and high-energy accumulators inside its own pixel window
(so cost follows the part's size, not the object's), and core parts also add to the object's own map, from
which its box and mask come. Copies of a part reuse its thickness tile at whole-pixel offsets.
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter

from xray.materials import material
from xray.shapes import Part, Thing, Wire, texture
from xray.solids import chord, rot_x, rot_y, rot_z, world_half

CORE_ATTENUATION = 0.002  # a pixel belongs to an object's mask above this high-energy attenuation
Box = tuple[int, int, int, int]


def random_pose(rng: np.random.Generator, poses: tuple[float, float, float, float]) -> np.ndarray:
    """A rotation (object -> world): any in-plane angle; flat (resting on others: a few degrees), tilted
    (10-60 degrees about a random horizontal axis), on an edge (about x) or on an end (about y)."""
    mode = int(rng.choice(4, p=np.asarray(poses) / sum(poses)))
    if mode == 0:
        tilt = rot_x(rng.normal(0, 0.06)) @ rot_y(rng.normal(0, 0.06))
    elif mode == 1:
        axis = rng.uniform(0, np.pi)
        tilt = rot_z(axis) @ rot_x(rng.uniform(0.17, 1.05) * rng.choice((-1, 1))) @ rot_z(-axis)
    elif mode == 2:
        tilt = rot_x(np.pi / 2 + rng.normal(0, 0.1))
    else:
        tilt = rot_y(np.pi / 2 + rng.normal(0, 0.1))
    return rot_z(rng.uniform(0, 2 * np.pi)) @ tilt


def footprint(thing: Thing, pose: np.ndarray) -> tuple[float, float]:
    """Half-extents (mm) across and along the belt of the posed object's bounding box."""
    e = np.abs(pose) @ np.asarray(thing.half)
    return float(e[0]), float(e[1])


_MU: dict[tuple[str, float], np.ndarray] = {}


def _mu(mat: str, sign: float) -> np.ndarray:
    """(2, 1, 1) float32 signed attenuation per mm at (high, low) energy."""
    key = (mat, sign)
    if key not in _MU:
        m = material(mat)
        _MU[key] = np.array([sign * m.mu_high, sign * m.mu_low], dtype=np.float32)[:, None, None]
    return _MU[key]


class _Canvas:
    """Where parts go: the stacked (high, low) accumulator of the image, or of the object's own window (`buf`
    at offset (oy, ox)); the pixel scale; and the object map being built (box and mask)."""

    def __init__(self, acc: np.ndarray, ppm: float, rng: np.random.Generator, buf: np.ndarray | None = None,
                 origin: tuple[int, int] = (0, 0)) -> None:
        self.H, self.W = acc.shape[1:]
        self.acc = acc if buf is None else buf
        self.oy, self.ox = origin
        self.ppm, self.rng = ppm, rng
        self.core: list[tuple[int, int, np.ndarray]] = []  # (y0, x0, high-energy attenuation tile), image pixels

    def add(self, tile: np.ndarray, y0: int, x0: int, mat: str, sign: float, core: bool) -> None:
        """Add thickness `tile` (mm) whose top-left image pixel is (y0, x0), clipped to the accumulator."""
        _, h_acc, w_acc = self.acc.shape
        h, w = tile.shape
        ly, lx = y0 - self.oy, x0 - self.ox  # in accumulator pixels
        ya, xa, yb, xb = max(ly, 0), max(lx, 0), min(ly + h, h_acc), min(lx + w, w_acc)
        if yb <= ya or xb <= xa:
            return
        att = tile[None, ya - ly:yb - ly, xa - lx:xb - lx] * _mu(mat, sign)  # (2, h, w): both energies at once
        self.acc[:, ya:yb, xa:xb] += att
        if core:
            self.core.append((ya + self.oy, xa + self.ox, att[0]))


def stamp_thing(acc: np.ndarray, thing: Thing, pose: np.ndarray, cx: float, cy: float, ppm: float,
                rng: np.random.Generator, mask: bool = True, clamp: bool = True) -> tuple[Box, np.ndarray | None] | None:
    """Add the object posed by `pose` (object -> world rotation) with its centre at pixel (cx, cy) (column, row)
    to `acc`, the (2, H, W) float32 log-attenuation at (high, low) energy; return its core box (x0, y0, x1, y1,
    end-exclusive) and, if `mask`, the box-cropped mask (else None), or None if nothing landed.

    An object with cavities is built in its own window and clamped at zero before it is added (`clamp`): where a
    cavity's edge is anti-aliased a little differently from its solid's (one supersampled, the other not), it
    must not leave negative material behind.
    """
    window = _window(acc, thing, pose, cx, cy, ppm) if clamp and _has_cavity(thing) else None
    if window is not None:
        y0, y1, x0, x1 = window
        buf = np.zeros((2, y1 - y0, x1 - x0), dtype=np.float32)
        canvas = _Canvas(acc, ppm, rng, buf, (y0, x0))
    else:
        canvas = _Canvas(acc, ppm, rng)
    for piece in thing.parts:
        if isinstance(piece, Wire):
            _stamp_wire(canvas, piece, pose, cx, cy)
        else:
            _stamp_part(canvas, piece, pose, cx, cy)
    if window is not None:
        np.maximum(buf, 0.0, out=buf)
        acc[:, y0:y1, x0:x1] += buf
    return _box_and_mask(canvas.core) if mask else _box_only(canvas.core)


def _has_cavity(thing: Thing) -> bool:
    return any(isinstance(p, Part) and p.sign < 0 for p in thing.parts)


def _window(acc: np.ndarray, thing: Thing, pose: np.ndarray, cx: float, cy: float,
            ppm: float) -> tuple[int, int, int, int] | None:
    """(y0, y1, x0, x1) of the posed object's bounding box plus a margin for edges, clipped to the image."""
    e = np.abs(pose) @ np.asarray(thing.half) * ppm + 4.0
    _, H, W = acc.shape
    y0, y1 = max(int(cy - e[1]), 0), min(int(cy + e[1]) + 1, H)
    x0, x1 = max(int(cx - e[0]), 0), min(int(cx + e[0]) + 1, W)
    return (y0, y1, x0, x1) if y1 > y0 and x1 > x0 else None


def _stamp_part(cv: _Canvas, part: Part, pose: np.ndarray, cx: float, cy: float) -> None:
    q = pose @ part.rot
    at = pose @ np.asarray(part.at)
    px_mm = 1.0 / cv.ppm
    wh = world_half(part.solid, q)
    hx, hy = wh[0], wh[1]
    pcx, pcy = cx + at[0] * cv.ppm, cy + at[1] * cv.ppm
    x0, x1 = int(np.floor(pcx - hx * cv.ppm)) - 1, int(np.ceil(pcx + hx * cv.ppm)) + 2
    y0, y1 = int(np.floor(pcy - hy * cv.ppm)) - 1, int(np.ceil(pcy + hy * cv.ppm)) + 2
    H, W = cv.H, cv.W
    shifts = [(0, 0)] + [(int(round(d[1] * cv.ppm)), int(round(d[0] * cv.ppm)))
                         for d in (pose @ np.asarray(c) for c in part.copies)]
    # the tile must cover every copy's visible part: clip it only when there are no copies
    if not part.copies:
        x0, x1, y0, y1 = max(x0, 0), min(x1, W), max(y0, 0), min(y1, H)
        if x1 <= x0 or y1 <= y0:
            return
    xs = (np.arange(x0, x1, dtype=np.float32) - np.float32(pcx)) * np.float32(px_mm)
    ys = (np.arange(y0, y1, dtype=np.float32) - np.float32(pcy)) * np.float32(px_mm)
    tile = chord(part.solid, q, xs, ys, px_mm, wh)
    if part.texture is not None:
        kind, amp = part.texture
        tile = tile * (1.0 + np.float32(amp) * texture(kind, tile.shape, cv.rng))
    for dy, dx in shifts:
        cv.add(tile, y0 + dy, x0 + dx, part.material, part.sign, part.core)


def _stamp_wire(cv: _Canvas, wire: Wire, pose: np.ndarray, cx: float, cy: float) -> None:
    """Splat the wire's volume along its projected path (bilinear, every half pixel), then spread it over the
    round section (a Gaussian of the chord profile's width): exact volume, smooth sub-pixel cross-section."""
    pts = wire.points @ pose.T  # (N, 3) world mm
    seg = np.diff(pts, axis=0)
    length3 = np.sqrt((seg**2).sum(axis=1))
    length2 = np.sqrt((seg[:, :2] ** 2).sum(axis=1)) * cv.ppm  # projected length in pixels
    steps = np.maximum(np.ceil(length2 * 2.0).astype(int), 1)
    t = np.concatenate([(np.arange(n) + 0.5) / n for n in steps])
    idx = np.repeat(np.arange(len(seg)), steps)
    col = cx + (pts[idx, 0] + seg[idx, 0] * t) * cv.ppm
    row = cy + (pts[idx, 1] + seg[idx, 1] * t) * cv.ppm
    vol = np.repeat(length3 / steps, steps)  # mm of wire per sample
    pad = int(np.ceil(2.5 * max(r for _, r in wire.layers) * cv.ppm)) + 2
    x0, y0 = int(np.floor(col.min())) - pad, int(np.floor(row.min())) - pad
    w, h = int(np.ceil(col.max())) + pad + 1 - x0, int(np.ceil(row.max())) + pad + 1 - y0
    c, r = col - x0, row - y0
    ci, ri = np.floor(c).astype(int), np.floor(r).astype(int)
    fc, fr = c - ci, r - ri
    dens = np.zeros(h * w)
    for dr, dc, wt in ((0, 0, (1 - fr) * (1 - fc)), (0, 1, (1 - fr) * fc), (1, 0, fr * (1 - fc)), (1, 1, fr * fc)):
        dens += np.bincount((ri + dr) * w + ci + dc, weights=vol * wt, minlength=h * w)
    length_map = dens.reshape(h, w) * cv.ppm * cv.ppm  # mm of wire per mm^2 of image
    inner = 0.0
    for mat, radius in wire.layers:
        area = np.pi * (radius * radius - inner * inner)  # mm^2 of this layer's section
        sigma = radius * cv.ppm / 2.0  # the chord profile 2 sqrt(r^2 - d^2) has standard deviation r / 2
        tile = (length_map * area).astype(np.float32)
        if sigma > 0.5:
            tile = gaussian_filter(tile, sigma, mode="constant", truncate=2.5)
        cv.add(tile, y0, x0, mat, 1.0, wire.core)
        inner = radius


def _box_only(core: list[tuple[int, int, np.ndarray]]) -> tuple[Box, None] | None:
    """The union of the positive core tiles' footprints (a cavity lies inside its solid: it cannot shrink the box)."""
    x0 = y0 = 1 << 30
    x1 = y1 = -1
    for ya, xa, tile in core:
        on = tile > CORE_ATTENUATION
        rows, cols = np.flatnonzero(on.any(axis=1)), np.flatnonzero(on.any(axis=0))
        if rows.size:
            y0, y1 = min(y0, ya + int(rows[0])), max(y1, ya + int(rows[-1]) + 1)
            x0, x1 = min(x0, xa + int(cols[0])), max(x1, xa + int(cols[-1]) + 1)
    return None if x1 < 0 else ((x0, y0, x1, y1), None)


def _box_and_mask(core: list[tuple[int, int, np.ndarray]]) -> tuple[Box, np.ndarray | None] | None:
    if not core:
        return None
    y0 = min(c[0] for c in core)
    x0 = min(c[1] for c in core)
    y1 = max(c[0] + c[2].shape[0] for c in core)
    x1 = max(c[1] + c[2].shape[1] for c in core)
    acc = np.zeros((y1 - y0, x1 - x0), dtype=np.float32)
    for ya, xa, tile in core:
        acc[ya - y0:ya - y0 + tile.shape[0], xa - x0:xa - x0 + tile.shape[1]] += tile
    mask = acc > CORE_ATTENUATION
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        return None
    by0, by1, bx0, bx1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
    return (x0 + int(bx0), y0 + int(by0), x0 + int(bx1), y0 + int(by1)), mask[by0:by1, bx0:bx1]
