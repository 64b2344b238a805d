"""Letterboxing: any image size and shape onto a fixed square canvas, so size and aspect are never a cue.

The canvas is filled with the empty-beam value (1.0 = white in pseudo-colour: nothing attenuated the beam), so
the padding looks like the air around a parcel rather than like a dense object. The returned Geometry maps a
point or box on the canvas (where heatmaps live) back to fractions of the original image.

8-bit images (uint8) take a fast path, `letterbox_uint8`: Pillow's antialiased bilinear resize straight to a uint8
canvas (the filter F.interpolate(antialias=True) reproduces, so within one grey level of the float path, ~1.5x
faster). `prepare` turns any image into a PreparedScan (canvas + Geometry) where it is decoded, so that a
serving replica only stacks canvases into a batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from xscreen.errors import BadScanError

EMPTY_BEAM = 1.0
EMPTY_BEAM_U8 = 255


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


def _bad_shape(index: int, shape: tuple[int, ...]) -> BadScanError:
    return BadScanError(f"image[{index}]", "bad_shape", f"expected (H, W, 3) or (H, W) pixels, got shape {shape}")


def letterbox_uint8(image: np.ndarray, size: int, index: int = 0) -> tuple[np.ndarray, Geometry]:
    """uint8 (H, W, 3) RGB or (H, W) gray -> canvas uint8 (3, S, S) padded with 255 (empty beam), and its Geometry.

    Pillow's bilinear resize is antialiased (its triangle filter widens with the reduction, as
    F.interpolate(antialias=True) does, so thin wires and blades survive a 1000 -> 256 pixel reduction).
    The canvas may be a channel-first view of an (S, S, 3) buffer (the layout the network reads, channels-last).
    """
    arr = np.asarray(image)
    if arr.dtype != np.uint8:
        raise TypeError(f"letterbox_uint8 takes uint8 pixels, got {arr.dtype}")
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] != 3) or min(arr.shape[:2]) < 2:
        raise _bad_shape(index, arr.shape)
    geo = fit_geometry(arr.shape[0], arr.shape[1], size)
    pil = Image.fromarray(np.ascontiguousarray(arr), "RGB" if arr.ndim == 3 else "L")
    resized = np.asarray(pil.resize((geo.new_w, geo.new_h), Image.Resampling.BILINEAR))  # (h, w[, 3])
    canvas = np.full((size, size, 3), EMPTY_BEAM_U8, dtype=np.uint8)  # (S, S, 3)
    region = canvas[geo.top : geo.top + geo.new_h, geo.left : geo.left + geo.new_w]
    region[...] = resized if resized.ndim == 3 else resized[:, :, None]
    return canvas.transpose(2, 0, 1), geo  # (3, S, S)


def _as_chw(image: np.ndarray, index: int) -> torch.Tensor:
    """(H, W, 3) or (H, W) array in [0, 1] (or uint8) -> float32 tensor (3, H, W)."""
    arr = np.asarray(image)
    if arr.dtype == np.uint8:
        arr = arr.astype(np.float32) / 255.0
    if arr.ndim == 2:
        arr = np.repeat(arr[:, :, None], 3, axis=2)
    if arr.ndim != 3 or arr.shape[2] != 3 or min(arr.shape[:2]) < 2:
        raise _bad_shape(index, arr.shape)
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
    """One image -> canvas (3, S, S) float32 in [0, 1] and its Geometry. uint8 input takes letterbox_uint8."""
    if isinstance(image, np.ndarray) and image.dtype == np.uint8:
        canvas8, geo = letterbox_uint8(image, size, index)
        return torch.from_numpy(np.ascontiguousarray(canvas8)).float().div_(255.0), geo
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


@dataclass(frozen=True)
class PreparedScan:
    """A letterboxed image ready to batch: canvas (3, S, S), uint8 (8-bit sources) or float32 in [0, 1]."""

    canvas: np.ndarray
    geometry: Geometry


def prepare(image: object, size: int, index: int = 0) -> PreparedScan:
    """Any image (uint8 or float array, an object with .rgb8/.rgb such as xray's ScanImage, or a PreparedScan of
    this size) -> PreparedScan. 8-bit pixels stay uint8 (a quarter of float32's bytes on the wire to a replica)."""
    if isinstance(image, PreparedScan):
        if image.geometry.size != size:
            raise ValueError(f"image[{index}] was prepared for a {image.geometry.size}-pixel canvas, the model "
                             f"reads {size}")
        return image
    arr = image if isinstance(image, np.ndarray) else getattr(image, "rgb8", None)
    if arr is None:
        arr = image.rgb  # type: ignore[attr-defined]
    if arr.dtype == np.uint8:
        return PreparedScan(*letterbox_uint8(arr, size, index))
    canvas, geo = _place(_as_chw(arr, index), size)
    return PreparedScan(canvas.numpy(), geo)


def canvas_batch(scans: Sequence[PreparedScan], device: torch.device | str = "cpu") -> torch.Tensor:
    """PreparedScans -> float32 batch (B, 3, S, S) in [0, 1], channels-last, on `device` (uint8 travels there
    first: a quarter of the bytes to copy to a GPU)."""
    canvases = [s.canvas for s in scans]
    if all(c.dtype == np.uint8 for c in canvases):
        hwc = np.stack([c.transpose(1, 2, 0) for c in canvases])  # (B, S, S, 3): a plain copy of HWC buffers
        x8 = torch.from_numpy(hwc).to(device).permute(0, 3, 1, 2)  # (B, 3, S, S) channels-last view
        return x8.float().div_(255.0)  # .float() keeps the channels-last layout
    x = torch.from_numpy(np.stack([c.astype(np.float32) / 255.0 if c.dtype == np.uint8 else c for c in canvases]))
    return x.to(device).contiguous(memory_format=torch.channels_last)
