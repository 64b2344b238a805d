"""Letterboxing: any image size and shape onto a fixed square canvas, so size and aspect are never a cue.

The canvas is filled with the empty-beam value (1.0 = white in pseudo-colour: nothing attenuated the beam), so
the padding looks like the air around a parcel rather than like a dense object. The returned Geometry maps a
point or box on the canvas (where heatmaps live) back to fractions of the original image.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from xscreen.errors import BadScanError

EMPTY_BEAM = 1.0


@dataclass(frozen=True)
class Geometry:
    """Where the resized image sits on the canvas (pixels of the canvas)."""

    orig_h: int
    orig_w: int
    size: int  # canvas side
    new_h: int
    new_w: int
    top: int
    left: int

    def canvas_box_to_image(self, box: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
        """(x0, y0, x1, y1) in canvas fractions -> image fractions, clipped to [0, 1]."""
        x0, y0, x1, y1 = box
        fx = lambda v: float(np.clip((v * self.size - self.left) / self.new_w, 0.0, 1.0))  # noqa: E731
        fy = lambda v: float(np.clip((v * self.size - self.top) / self.new_h, 0.0, 1.0))  # noqa: E731
        return fx(x0), fy(y0), fx(x1), fy(y1)

    def image_box_to_canvas(self, box: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
        """(x0, y0, x1, y1) in image fractions -> canvas fractions (used by tests and augmentation)."""
        x0, y0, x1, y1 = box
        s = float(self.size)
        return (
            (self.left + x0 * self.new_w) / s,
            (self.top + y0 * self.new_h) / s,
            (self.left + x1 * self.new_w) / s,
            (self.top + y1 * self.new_h) / s,
        )

    def crop_canvas_map(self, grid: np.ndarray) -> np.ndarray:
        """A (g, g) map over the canvas -> the part covering the image (padding removed), same cell scale."""
        g = grid.shape[0]
        r0, r1 = int(np.floor(self.top / self.size * g)), int(np.ceil((self.top + self.new_h) / self.size * g))
        c0, c1 = int(np.floor(self.left / self.size * g)), int(np.ceil((self.left + self.new_w) / self.size * g))
        return grid[r0 : max(r1, r0 + 1), c0 : max(c1, c0 + 1)]


def fit_geometry(h: int, w: int, size: int) -> Geometry:
    """Scale so the longer side fills the canvas, centre the shorter side."""
    scale = size / max(h, w)
    nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
    return Geometry(h, w, size, nh, nw, (size - nh) // 2, (size - nw) // 2)


def _as_chw(image: np.ndarray, index: int) -> torch.Tensor:
    """(H, W, 3) or (H, W) array in [0, 1] (or uint8) -> float32 tensor (3, H, W)."""
    arr = np.asarray(image)
    if arr.dtype == np.uint8:
        arr = arr.astype(np.float32) / 255.0
    if arr.ndim == 2:
        arr = np.repeat(arr[:, :, None], 3, axis=2)
    if arr.ndim != 3 or arr.shape[2] != 3 or min(arr.shape[:2]) < 2:
        raise BadScanError(f"image[{index}]", "bad_shape", f"expected (H, W, 3) or (H, W) pixels, got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise BadScanError(f"image[{index}]", "not_finite", "image contains NaN or infinite pixels")
    t = torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32))
    return t.permute(2, 0, 1).clamp_(0.0, 1.0)  # (3, H, W)


def _place(chw: torch.Tensor, size: int) -> tuple[torch.Tensor, Geometry]:
    """(C, H, W) float32 -> (C, S, S) canvas filled with the empty-beam value, and its Geometry."""
    geo = fit_geometry(chw.shape[1], chw.shape[2], size)
    # antialias=True: downscaling a 1000-pixel scan without it aliases thin wires and blades away.
    resized = F.interpolate(chw[None], size=(geo.new_h, geo.new_w), mode="bilinear", antialias=True, align_corners=False)
    canvas = torch.full((chw.shape[0], size, size), EMPTY_BEAM, dtype=torch.float32)
    canvas[:, geo.top : geo.top + geo.new_h, geo.left : geo.left + geo.new_w] = resized[0].clamp_(0.0, 1.0)
    return canvas, geo


def letterbox_one(image: np.ndarray, size: int, index: int = 0) -> tuple[torch.Tensor, Geometry]:
    """One image -> canvas (3, S, S) float32 in [0, 1] and its Geometry."""
    return _place(_as_chw(image, index), size)


def letterbox_planes(planes: np.ndarray, size: int) -> torch.Tensor:
    """Transmission planes (C, H, W) in [0, 1] -> (C, S, S), padded with 1.0 (nothing in the beam)."""
    return _place(torch.from_numpy(np.ascontiguousarray(planes, dtype=np.float32)), size)[0]


def letterbox(images: Sequence[np.ndarray], size: int) -> tuple[torch.Tensor, list[Geometry]]:
    """Images (H, W, 3) in [0, 1] (any sizes) -> batch (B, 3, S, S) float32 and one Geometry per image."""
    if len(images) == 0:
        return torch.empty((0, 3, size, size)), []
    pairs = [letterbox_one(img, size, i) for i, img in enumerate(images)]
    return torch.stack([c for c, _ in pairs]), [g for _, g in pairs]
