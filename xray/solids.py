"""3D convex solids and their exact chord lengths along the beam: the thickness a parallel X-ray beam crosses.

A solid lives in its own frame (millimetres, centred on the origin) as an intersection of slab pairs
(|n·q - m| <= h), half-spaces (n·q <= c) and at most one quadric (an ellipsoid, or an elliptic cylinder along the
local z axis). Posed by a rotation Q (local -> world), the beam is the world z axis, and along the ray through
an image point (X, Y) each constraint is an interval [t_in, t_out] whose ends are affine (planes) or
affine ± sqrt(quadratic) (quadrics) in (X, Y); the chord is max(0, min t_out - max t_in). Everything is
evaluated vectorised over the solid's own pixel window.

Anti-aliasing: a face seen almost edge-on (its ramp across the image under one pixel, e.g. the sides of a flat
box or of a coin lying flat, both faces of a blade on its edge) would make the thickness jump between two pixels;
such a face is turned into a coverage factor from its signed distance in pixels instead of an interval end
(for a slab pair, the exact area of a sub-pixel strip). Small solids (under SUPERSAMPLE_PX across) are evaluated
on a 3 x 3 sub-pixel grid. Rods thinner than a pixel are better drawn as wires (xray.wires).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

STEEP = 0.03  # tangent of the angle from vertical within which a face is an anti-aliased edge (1.7 degrees)
SUPERSAMPLE_PX = 10.0  # solids smaller than this (pixels, largest side) are averaged over 3 x 3 sub-pixels
_SUB = np.array([-1 / 3, 0.0, 1 / 3], dtype=np.float32)
Vec3 = tuple[float, float, float]


def rot_x(a: float) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])


def rot_y(a: float) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])


def rot_z(a: float) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])


@dataclass(frozen=True)
class Solid:
    """A convex solid in its own frame (mm). `half` bounds it: |q_i| <= half[i]."""

    half: Vec3
    pairs: tuple[tuple[Vec3, float, float], ...] = ()  # (unit normal, centre m, half-width h): |n.q - m| <= h
    planes: tuple[tuple[Vec3, float], ...] = ()  # (unit normal, c): n.q <= c
    quadric: str | None = None  # "ellipsoid" | "cylinder" (elliptic, along local z)
    radii: Vec3 = (0.0, 0.0, 0.0)  # semi-axes of the quadric (cylinder: rx, ry, unused)

    def volume_hint(self) -> float:
        """An upper bound of the volume (mm^3): the bounding box."""
        return 8.0 * self.half[0] * self.half[1] * self.half[2]


def box(hx: float, hy: float, hz: float) -> Solid:
    """A rectangular block with half-sizes hx, hy, hz."""
    return Solid((hx, hy, hz), pairs=(((1.0, 0.0, 0.0), 0.0, hx), ((0.0, 1.0, 0.0), 0.0, hy),
                                      ((0.0, 0.0, 1.0), 0.0, hz)))


def cylinder(r: float, hz: float, ry: float | None = None) -> Solid:
    """A (elliptic if ry) cylinder of radius r and half-length hz along the local z axis."""
    ry = r if ry is None else ry
    return Solid((r, ry, hz), pairs=(((0.0, 0.0, 1.0), 0.0, hz),), quadric="cylinder", radii=(r, ry, 0.0))


def rod(r: float, hx: float) -> Solid:
    """A cylinder lying along the local x axis (half-length hx): a rod, a barrel, a cell on its side."""
    return Solid((hx, r, r), pairs=(((1.0, 0.0, 0.0), 0.0, hx),), quadric="cylinder_x", radii=(r, r, 0.0))


def ellipsoid(a: float, b: float, c: float) -> Solid:
    return Solid((a, b, c), quadric="ellipsoid", radii=(a, b, c))


def dome(a: float, b: float, c: float) -> Solid:
    """The upper half (z >= 0) of an ellipsoid, centred on its base: a lens, a bullet nose, a button."""
    return Solid((a, b, c), planes=(((0.0, 0.0, -1.0), 0.0),), quadric="ellipsoid", radii=(a, b, c))


def prism(polygon: np.ndarray | list[tuple[float, float]], hz: float, bevel: float = 0.0,
          both: bool = False) -> Solid:
    """A convex polygon (x, y in mm, any winding) extruded to half-height hz along z.

    `bevel` > 0 grinds every edge whose outward normal points to -y (`both`: also +y) into a V of that width
    (mm): the cutting edge of a blade, thin at the edge and full thickness at the spine.
    """
    pts = np.asarray(polygon, dtype=float)
    if _signed_area(pts) < 0:
        pts = pts[::-1]
    planes: list[tuple[Vec3, float]] = []
    for (x0, y0), (x1, y1) in zip(pts, np.roll(pts, -1, axis=0), strict=True):
        nx, ny = y1 - y0, -(x1 - x0)  # outward normal of a counter-clockwise polygon
        norm = float(np.hypot(nx, ny))
        if norm < 1e-9:
            continue
        nx, ny = nx / norm, ny / norm
        c = nx * x0 + ny * y0
        planes.append(((float(nx), float(ny), 0.0), float(c)))
        if bevel > 0 and (ny < -0.3 or (both and ny > 0.3)):  # two grinding planes meeting at the edge
            for sz in (1.0, -1.0):
                g = np.array([nx * hz, ny * hz, sz * bevel])
                g /= np.linalg.norm(g)
                planes.append(((float(g[0]), float(g[1]), float(g[2])), float(g[0] * x0 + g[1] * y0)))
    half = (float(np.abs(pts[:, 0]).max()), float(np.abs(pts[:, 1]).max()), hz)
    return Solid(half, pairs=(((0.0, 0.0, 1.0), 0.0, hz),), planes=tuple(planes))


def _signed_area(pts: np.ndarray) -> float:
    x, y = pts[:, 0], pts[:, 1]
    return 0.5 * float(np.dot(x, np.roll(y, -1)) - np.dot(np.roll(x, -1), y))


def world_half(solid: Solid, q: np.ndarray) -> tuple[float, float, float]:
    """Half-extents (mm) of the posed solid's world bounding box (exact for ellipsoids)."""
    if solid.quadric == "ellipsoid":
        e = np.sqrt(((q * np.asarray(solid.radii)) ** 2).sum(axis=1))
        return float(e[0]), float(e[1]), float(e[2])
    e = np.abs(q) @ np.asarray(solid.half)
    return float(e[0]), float(e[1]), float(e[2])


def chord(solid: Solid, q: np.ndarray, x: np.ndarray, y: np.ndarray, px_mm: float,
          wh: tuple[float, float, float] | None = None) -> np.ndarray:
    """Thickness (mm, float32, shape (len(y), len(x))) of `solid` posed by rotation `q` along the world z rays
    through (x[j], y[i]) mm from its centre; `px_mm` is the pixel size used for edge anti-aliasing; `wh` the
    posed solid's world half-extents if already known (world_half)."""
    wh = wh or world_half(solid, q)
    if 2.0 * max(wh[0], wh[1]) < SUPERSAMPLE_PX * px_mm:
        sub = _SUB * px_mm
        xs, ys = (x[:, None] + sub).ravel(), (y[:, None] + sub).ravel()
        fine = _chord(solid, q, xs, ys, px_mm / 3.0, wh[2])
        return fine.reshape(len(y), 3, len(x), 3).mean(axis=(1, 3), dtype=np.float32)
    return _chord(solid, q, x, y, px_mm, wh[2])


def _chord(solid: Solid, q: np.ndarray, x: np.ndarray, y: np.ndarray, px_mm: float, half_z: float) -> np.ndarray:
    # Coefficients are a handful of numbers per face: plain Python floats are several times faster than numpy
    # on such tiny arrays; the pixel grids are numpy, in as few whole-array operations as possible.
    # A face within STEEP of vertical is an edge of coverage. The test depends on the face's direction alone, so
    # that a cavity's face lying on its solid's face is treated alike in both (else the cavity pokes out).
    (q00, q01, q02), (q10, q11, q12), (q20, q21, q22) = q.tolist()
    lows: list[tuple[float, float, float]] = []  # (c0, cx, cy): t >= c0 + cx x + cy y
    highs: list[tuple[float, float, float]] = []
    strips: list[tuple[float, float, float, float]] = []  # edge-on slab pairs (nx, ny, m, h)
    edges: list[tuple[float, float, float]] = []  # edge-on half-planes (nx, ny, c)
    for (n0, n1, n2), m, h in solid.pairs:
        nx, ny, a = q00 * n0 + q01 * n1 + q02 * n2, q10 * n0 + q11 * n1 + q12 * n2, q20 * n0 + q21 * n1 + q22 * n2
        if abs(a) < STEEP * (nx * nx + ny * ny) ** 0.5:
            strips.append((nx, ny, m, h))
            continue
        g0, gx, gy, w = m / a, -nx / a, -ny / a, h / abs(a)  # the slab crosses the ray over g ± w
        lows.append((g0 - w, gx, gy))
        highs.append((g0 + w, gx, gy))
    for (n0, n1, n2), c in solid.planes:
        nx, ny, a = q00 * n0 + q01 * n1 + q02 * n2, q10 * n0 + q11 * n1 + q12 * n2, q20 * n0 + q21 * n1 + q22 * n2
        if abs(a) < STEEP * (nx * nx + ny * ny) ** 0.5:
            edges.append((nx, ny, c))
        else:  # n.(x, y, t) <= c  ->  t <= (c - n.xy) / a, or >= when a < 0
            (highs if a > 0 else lows).append((c / a, -nx / a, -ny / a))
    # bounds from faces parallel to the image (a box lying exactly flat) are constants: no arrays for them
    const_lo = max((r[0] for r in lows if r[1] == 0.0 and r[2] == 0.0), default=None)
    const_hi = min((r[0] for r in highs if r[1] == 0.0 and r[2] == 0.0), default=None)
    lows = [r for r in lows if r[1] != 0.0 or r[2] != 0.0]
    highs = [r for r in highs if r[1] != 0.0 or r[2] != 0.0]
    covers = []
    if strips:
        covers.append(_strip_cover(strips, x, y, px_mm))
    if edges:
        covers.append(_edge_cover(edges, x, y, px_mm))
    if not lows and not highs and solid.quadric is None:  # a flat-lying box or prism: depth times coverage
        depth_c = 2.0 * half_z if const_lo is None or const_hi is None else max(const_hi - const_lo, 0.0)
        return _covered(np.float32(depth_c), covers, (len(y), len(x)))
    lo = _reduce(_affine(lows, x, y), np.maximum) if lows else None
    hi = _reduce(_affine(highs, x, y), np.minimum) if highs else None
    if solid.quadric is not None:
        lo, hi, rim = _quadric(solid, q, x, y, px_mm, lo, hi)
        if rim is not None:
            covers.append(rim)
    if const_lo is not None:
        lo = np.full((len(y), len(x)), const_lo, np.float32) if lo is None else np.maximum(lo, const_lo, out=lo)
    if const_hi is not None:
        hi = np.full((len(y), len(x)), const_hi, np.float32) if hi is None else np.minimum(hi, const_hi, out=hi)
    if lo is None or hi is None:  # every face edge-on: a solid far under a pixel; spread its depth by coverage
        return _covered(np.float32(2.0 * half_z), covers, (len(y), len(x)))
    out = np.subtract(hi, lo, out=hi)
    np.maximum(out, 0.0, out=out)
    for cov in covers:
        out *= cov
    return out


def _covered(depth: np.float32, covers: list[np.ndarray], shape: tuple[int, int]) -> np.ndarray:
    """A constant depth times the product of the edge coverages."""
    if not covers:
        return np.full(shape, depth, np.float32)
    out = np.multiply(covers[0], depth, out=covers[0])
    for cov in covers[1:]:
        out *= cov
    return out


def _affine(rows: list[tuple[float, float, float]], x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """c0 + cx * x + cy * y for every row (c0, cx, cy), on the grid: (k, len(y), len(x)) float32."""
    c = np.array(rows, dtype=np.float32)
    by_row = c[:, 0:1] + c[:, 2:3] * y[None, :]  # (k, h)
    return by_row[:, :, None] + (c[:, 1:2] * x[None, :])[:, None, :]


def _strip_cover(strips: list[tuple[float, float, float, float]], x: np.ndarray, y: np.ndarray,
                 px_mm: float) -> np.ndarray:
    """Coverage of strips |n.xy - m| <= h seen edge-on: exact area for strips thinner than a pixel."""
    rows, tops, caps = [], [], []
    for nx, ny, m, h in strips:
        k = 1.0 / (px_mm * max((nx * nx + ny * ny) ** 0.5, 1e-6))  # pixels per mm across the strip
        rows.append((-m * k, nx * k, ny * k))
        tops.append(0.5 + h * k)
        caps.append(min(1.0, 2.0 * h * k))
    cov = np.abs(_affine(rows, x, y))
    np.subtract(np.array(tops, dtype=np.float32)[:, None, None], cov, out=cov)
    np.maximum(cov, 0.0, out=cov)
    np.minimum(cov, np.array(caps, dtype=np.float32)[:, None, None], out=cov)
    return _reduce(cov, np.multiply)


def _edge_cover(edges: list[tuple[float, float, float]], x: np.ndarray, y: np.ndarray, px_mm: float) -> np.ndarray:
    """Coverage of half-planes n.xy <= c seen edge-on: 0.5 + signed distance inside, in pixels, clipped."""
    rows = []
    for nx, ny, c in edges:
        k = 1.0 / (px_mm * max((nx * nx + ny * ny) ** 0.5, 1e-6))
        rows.append((0.5 + c * k, -nx * k, -ny * k))
    d = _affine(rows, x, y)
    np.maximum(d, 0.0, out=d)
    np.minimum(d, 1.0, out=d)
    return _reduce(d, np.multiply)


def _reduce(stack: np.ndarray, op: np.ufunc) -> np.ndarray:
    """op over the first axis, in place into stack[0] (a loop of k - 1 whole-array ops beats ufunc.reduce)."""
    out = stack[0]
    for k in range(1, len(stack)):
        op(out, stack[k], out=out)
    return out


def _quadric(solid: Solid, q: np.ndarray, x: np.ndarray, y: np.ndarray, px_mm: float, lo: np.ndarray | None,
             hi: np.ndarray | None) -> tuple[np.ndarray | None, np.ndarray | None, np.ndarray | None]:
    """Ellipsoid or elliptic cylinder: |S (o + t d)|^2 <= 1 on the scaled (and, for cylinders, projected)
    coordinates; the root interval is -B/A ± sqrt(B^2 - A C)/A with B affine and C quadratic in (x, y).
    Returns the narrowed (lo, hi) and, for a cylinder standing on its end, a rim coverage instead."""
    rx, ry, rz = solid.radii
    rows: tuple[int, ...]
    scale: tuple[float, ...]
    if solid.quadric == "ellipsoid":
        rows, scale = (0, 1, 2), (rx, ry, rz)
    elif solid.quadric == "cylinder":
        rows, scale = (0, 1), (rx, ry)
    else:  # cylinder along local x
        rows, scale = (1, 2), (rx, ry)
    inv = 1.0 / np.asarray(scale)
    ex, ey, ed = (q[r, list(rows)] * inv for r in (0, 1, 2))  # d(scaled local)/d(world x, y, t)
    A = float(ed @ ed)
    cxx, cxy, cyy = float(ex @ ex), 2.0 * float(ex @ ey), float(ey @ ey)
    axis_z = q[2, 2] if solid.quadric == "cylinder" else q[2, 0]  # world z of the cylinder's axis
    upright = np.sqrt(max(1.0 - axis_z**2, 0.0)) < STEEP  # its wall within STEEP of vertical: a rim edge
    if solid.quadric != "ellipsoid" and upright:
        # a cylinder standing on its end: its wall is vertical, so its rim is an edge of coverage
        d = np.sqrt(_quadratic(cxx, cxy, cyy, 0.0, x, y))
        d -= 1.0
        d *= -min(scale) / px_mm
        d += 0.5
        np.maximum(d, 0.0, out=d)
        return lo, hi, np.minimum(d, 1.0, out=d)
    bx, by = float(ex @ ed), float(ey @ ed)  # B = bx x + by y ; C = cxx x^2 + cxy x y + cyy y^2 - 1
    disc = _quadratic(bx * bx - A * cxx, 2 * bx * by - A * cxy, by * by - A * cyy, A, x, y)  # B^2 - A C
    np.maximum(disc, 0.0, out=disc)
    half = np.sqrt(disc, out=disc)
    half *= 1.0 / A
    if lo is None and hi is None:
        if solid.quadric == "ellipsoid":  # a lone ellipsoid: the chord is 2 * half
            return np.negative(half), half, None
    mid = np.add.outer(y * (-by / A), x * (-bx / A))
    new_lo, new_hi = mid - half, np.add(mid, half, out=mid)
    lo = new_lo if lo is None else np.maximum(lo, new_lo, out=lo)
    hi = new_hi if hi is None else np.minimum(hi, new_hi, out=hi)
    return lo, hi, None


def _axis_half(solid: Solid) -> float:
    return solid.half[2] if solid.quadric == "cylinder" else solid.half[0]


def _quadratic(cxx: float, cxy: float, cyy: float, c0: float, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """c0 + cxx x^2 + cxy x y + cyy y^2 on the grid (float32)."""
    out = np.multiply.outer(y * cxy, x)
    out += (x * x * cxx)[None, :]
    out += (y * y * cyy + c0)[:, None]
    return out
