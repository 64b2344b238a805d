"""Thickness primitives in an object's own frame, and the object specification generators return.

A generator picks an object's parameters with its rng and returns an ObjectSpec: its half-extent (mm) and a
`draw(frame)` that evaluates thickness maps (mm) of each part on the frame's (u, v) grid. The renderer makes the
frame: a pixel grid around the object's centre, rotated by its pose, so rotation costs nothing extra and edges
are anti-aliased by the signed distance in pixels.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np


@dataclass
class Part:
    """One material's thickness map (mm) over the frame; `core` parts define the object's box and mask."""

    material: str
    thickness: np.ndarray
    core: bool = True


@dataclass
class ObjectSpec:
    """What a generator returns: name (e.g. `knife:folding`), size and a drawing function."""

    name: str
    half_extent: tuple[float, float]  # (along u, along v) in mm, before rotation
    draw: Callable[[Frame], list[Part]]
    main_material: str
    meta: dict[str, str] = field(default_factory=dict)


class Frame:
    """(u, v) coordinates in mm of every pixel of an object's box, in the object's rotated frame.

    Each primitive evaluates only inside its own pixel window (a part is usually much smaller than its
    object), and returns a full-frame array that is zero elsewhere.
    """

    def __init__(self, u: np.ndarray, v: np.ndarray, mm_per_px: float, origin: tuple[float, float] = (0.0, 0.0),
                 angle: float = 0.0, tilt: float = 1.0) -> None:
        self.u = u  # (h, w) float32
        self.v = v
        self.aa = np.float32(1.0 / mm_per_px)  # converts a distance in mm into pixels for anti-aliasing
        self._origin = origin  # (row, col) of the object's centre in frame pixels
        self._c, self._s = float(np.cos(angle)), float(np.sin(angle))
        self._tilt = tilt  # the object's v axis is foreshortened by this factor in the image

    def zeros(self) -> np.ndarray:
        return np.zeros(self.u.shape, dtype=np.float32)

    def _win(self, cx: float, cy: float, radius: float) -> tuple[slice, slice] | None:
        """Pixel window of a disc of `radius` mm around the local point (cx, cy); None if off the frame."""
        cy = cy * self._tilt
        dx, dy = self._c * cx - self._s * cy, self._s * cx + self._c * cy  # back to unrotated mm
        row, col = self._origin[0] + dy * self.aa, self._origin[1] + dx * self.aa
        r = radius * float(self.aa) + 2.0
        h, w = self.u.shape
        y0, y1, x0, x1 = max(int(row - r), 0), min(int(row + r) + 1, h), max(int(col - r), 0), min(int(col + r) + 1, w)
        if y1 <= y0 or x1 <= x0:
            return None
        return slice(y0, y1), slice(x0, x1)

    def _edge(self, sd: np.ndarray) -> np.ndarray:
        """Coverage in [0, 1] from a signed distance (mm, negative inside)."""
        return np.clip(np.float32(0.5) - sd * self.aa, 0.0, 1.0)

    def local(self, cx: float, cy: float, angle: float = 0.0,
              win: tuple[slice, slice] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Coordinates relative to a sub-part centred at (cx, cy), turned by `angle` radians."""
        u, v = (self.u, self.v) if win is None else (self.u[win], self.v[win])
        x, y = u - np.float32(cx), v - np.float32(cy)
        if angle == 0.0:
            return x, y
        c, s = np.float32(np.cos(angle)), np.float32(np.sin(angle))
        return c * x + s * y, -s * x + c * y

    def _put(self, win: tuple[slice, slice] | None, values: np.ndarray | None) -> np.ndarray:
        out = self.zeros()
        if win is not None and values is not None:
            out[win] = values
        return out

    def rect(self, w: float, h: float, t: float, cx: float = 0.0, cy: float = 0.0, r: float = 0.0,
             angle: float = 0.0) -> np.ndarray:
        """Slab of thickness t (mm), size w x h, corner radius r."""
        win = self._win(cx, cy, float(np.hypot(w, h)) / 2)
        if win is None:
            return self.zeros()
        x, y = self.local(cx, cy, angle, win)
        qx = np.abs(x) - np.float32(w / 2 - r)
        qy = np.abs(y) - np.float32(h / 2 - r)
        if r > 0:
            ox, oy = np.maximum(qx, 0), np.maximum(qy, 0)
            sd = np.sqrt(ox * ox + oy * oy) + np.minimum(np.maximum(qx, qy), 0) - np.float32(r)
        else:  # the exact distance outside a corner barely matters at one pixel of anti-aliasing
            sd = np.maximum(qx, qy)
        return self._put(win, np.float32(t) * self._edge(sd))

    def carton(self, w: float, h: float, fill: float, wall: float, wall_t: float) -> np.ndarray:
        """A slab of thickness `fill` whose outer `wall` mm are `wall_t` thicker: a box seen from above."""
        sd = np.maximum(np.abs(self.u) - np.float32(w / 2), np.abs(self.v) - np.float32(h / 2))
        outer = self._edge(sd)
        return np.float32(fill) * outer + np.float32(wall_t) * (outer - self._edge(sd + np.float32(wall)))

    def ellipse(self, a: float, b: float, t: float, cx: float = 0.0, cy: float = 0.0, dome: bool = False,
                angle: float = 0.0) -> np.ndarray:
        """Ellipse with half-axes a, b: flat slab of thickness t, or a dome (lens) peaking at t."""
        win = self._win(cx, cy, max(a, b))
        if win is None:
            return self.zeros()
        x, y = self.local(cx, cy, angle, win)
        rr = (x * np.float32(1 / a)) ** 2 + (y * np.float32(1 / b)) ** 2
        cover = self._edge((np.sqrt(rr) - 1.0) * np.float32(min(a, b)))
        if dome:
            return self._put(win, np.float32(t) * np.sqrt(np.maximum(1.0 - rr, 0.0)) * cover)
        return self._put(win, np.float32(t) * cover)

    def cylinder(self, length: float, radius: float, cx: float = 0.0, cy: float = 0.0, angle: float = 0.0,
                 inner: float = 0.0) -> np.ndarray:
        """A cylinder lying along u seen from above: chord length 2*sqrt(R^2 - v^2); hollow if inner > 0."""
        win = self._win(cx, cy, float(np.hypot(length / 2, radius)))
        if win is None:
            return self.zeros()
        x, y = self.local(cx, cy, angle, win)
        y2 = y * y
        chord = 2.0 * np.sqrt(np.maximum(np.float32(radius**2) - y2, 0.0))
        if inner > 0:
            chord = chord - 2.0 * np.sqrt(np.maximum(np.float32(inner**2) - y2, 0.0))
        return self._put(win, chord * self._edge(np.abs(x) - np.float32(length / 2)))

    def _tube_values(self, win: tuple[slice, slice], x0: float, y0: float, x1: float, y1: float,
                     radius: float) -> np.ndarray:
        px, py = self.u[win] - np.float32(x0), self.v[win] - np.float32(y0)
        dx, dy = np.float32(x1 - x0), np.float32(y1 - y0)
        denom = float(dx * dx + dy * dy) or 1e-6
        h = np.clip((px * dx + py * dy) * np.float32(1 / denom), 0.0, 1.0)
        d2 = (px - dx * h) ** 2 + (py - dy * h) ** 2
        return 2.0 * np.sqrt(np.maximum(np.float32(radius**2) - d2, 0.0))

    def tube(self, x0: float, y0: float, x1: float, y1: float, radius: float) -> np.ndarray:
        """A rod from (x0, y0) to (x1, y1) with round section: chord thickness by distance to the axis."""
        win = self._win((x0 + x1) / 2, (y0 + y1) / 2, float(np.hypot(x1 - x0, y1 - y0)) / 2 + radius)
        return self._put(win, None if win is None else self._tube_values(win, x0, y0, x1, y1, radius))

    def polyline(self, points: np.ndarray, radius: float) -> np.ndarray:
        """Union (max) of tubes through consecutive points: cables, chains, wire coils."""
        out = self.zeros()
        for (x0, y0), (x1, y1) in zip(points[:-1], points[1:], strict=False):
            win = self._win((x0 + x1) / 2, (y0 + y1) / 2, float(np.hypot(x1 - x0, y1 - y0)) / 2 + radius)
            if win is not None:
                np.maximum(out[win], self._tube_values(win, float(x0), float(y0), float(x1), float(y1), radius),
                           out=out[win])
        return out

    def taper(self, length: float, width: float, t: float, cx: float = 0.0, cy: float = 0.0, angle: float = 0.0,
              power: float = 1.5) -> np.ndarray:
        """A blade: along u from the heel (width) to a point, edge curve |v| < w*(1-(x/L)^power)."""
        win = self._win(cx, cy, float(np.hypot(length, width)))
        if win is None:
            return self.zeros()
        x, y = self.local(cx, cy, angle, win)
        xn = np.clip(x * np.float32(1 / length), 0.0, 1.0)
        half = np.float32(width) * (1.0 - xn**power)
        sd = np.maximum(np.abs(y) - half, np.maximum(-x, x - np.float32(length)))
        return self._put(win, np.float32(t) * self._edge(sd))


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
        _TILES[kind] = _smooth_noise_tiles(4, 160, sigma, seed={"folds": 11, "grain": 12}[kind])
    tiles = _TILES[kind]
    tile = tiles[int(rng.integers(len(tiles)))]
    oy, ox = (int(x) for x in rng.integers(0, tile.shape[0], size=2))
    ys = (np.arange(shape[0]) + oy) % tile.shape[0]
    xs = (np.arange(shape[1]) + ox) % tile.shape[1]
    return tile[np.ix_(ys, xs)]


Generator = Callable[[np.random.Generator], ObjectSpec]
