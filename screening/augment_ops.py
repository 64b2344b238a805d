"""Batch operations of training augmentation that remove style shortcuts: colour jitter, blur, JPEG, rescaling.

Float batches are (B, 3, S, S) in [0, 1] on any device; box targets (B, K, g, g) follow the geometric operation.
Random draws come from the torch.Generator (or numpy Generator) passed in, drawn on the CPU, so a seed reproduces
a run wherever the batch lives.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image


@dataclass(frozen=True)
class AugmentConfig:
    flip: bool = True
    gain_log_range: float = 0.25  # gain g = exp(U(-r, r))
    noise_max: float = 0.03  # per-image Gaussian noise sigma ~ U(0, noise_max)
    palette_p: float = 0.3  # share of dual-energy samples re-rendered with another palette
    tip_p: float = 0.3  # share of benign dual-energy samples that receive a projected threat (TIP)
    tip_bank: int = 12  # pre-rendered signatures per class
    # Shortcut removers (0 switches each off). Hue jitter stays below the gap between the training and held-out
    # hue families of xray.styles (TRAIN_HUES / HELDOUT_HUES), so the held-out style stays unseen.
    hue_deg: float = 8.0  # hue turned about the grey axis by U(-h, h) degrees
    saturation_log_range: float = 0.4  # colour saturation x exp(U(-r, r))
    channel_gamma_log_range: float = 0.15  # each channel to the power exp(U(-r, r)): a tone and tint change
    grey_p: float = 0.25  # share of samples shown as grey (luminance): colour is never needed to find a threat (0.1
    # until 2026-11-30: models trained so scored held-out grey scans at chance, AUC 0.50-0.52, docs/MODEL.md)
    blur_p: float = 0.2  # share of samples blurred (Gaussian, sigma U(0.3, blur_max) canvas pixels)
    blur_max: float = 1.2
    jpeg_p: float = 0.15  # share of samples JPEG-compressed at quality U(jpeg_quality)
    jpeg_quality: tuple[int, int] = (40, 95)
    rescale_p: float = 0.35  # share of samples shrunk inside the canvas to U(rescale_min, 1) of its side, placed
    rescale_min: float = 0.55  # at random with white around (threats look smaller; image size is not a cue)
    # An S-shaped display tone curve on a share of samples (off by default, so every recipe's random stream stays
    # as it was; the bundled v3-soup-tone's tone steps ran with 0.5: docs/MODEL.md): slope U(tone_contrast),
    # centre U(tone_mid).
    tone_p: float = 0.0
    tone_contrast: tuple[float, float] = (2.0, 12.0)
    tone_mid: tuple[float, float] = (0.3, 0.7)



LUMA = (0.299, 0.587, 0.114)  # ITU-R BT.601: what "convert to grey" means on most stations and in Pillow
MAP_SUPERSAMPLE = 4  # box-target maps are shifted on a 4x finer grid, so a move of a quarter cell is exact


def _uniform(b: int, lo: float, hi: float, gen: torch.Generator) -> torch.Tensor:
    return lo + (hi - lo) * torch.rand(b, generator=gen)


def random_tone(x: torch.Tensor, cfg: AugmentConfig, gen: torch.Generator) -> torch.Tensor:
    """A share `cfg.tone_p` of the samples through an S-shaped tone curve, the same on every channel: the logistic
    of slope c around m, rescaled so that 0 and 1 stay where they are (white stays white). Scanners' display
    processing differs in this form too (the held-out style family displays through one, xray/styles.py), which
    a power of the image (gain, channel gamma) cannot make. Draws nothing when tone_p is 0, so the random stream
    of every other operation is what it was."""
    if cfg.tone_p <= 0:
        return x
    b = x.shape[0]
    on = (torch.rand(b, generator=gen) < cfg.tone_p).view(b, 1, 1, 1).to(x.device)
    c = _uniform(b, *cfg.tone_contrast, gen).view(b, 1, 1, 1).to(x.device)
    m = _uniform(b, *cfg.tone_mid, gen).view(b, 1, 1, 1).to(x.device)
    lo, hi = torch.sigmoid(-c * m), torch.sigmoid(c * (1 - m))
    return torch.where(on, (torch.sigmoid(c * (x - m)) - lo) / (hi - lo), x)


def hue_rotation(degrees: torch.Tensor) -> torch.Tensor:
    """(B,) angles -> (B, 3, 3) rotations of RGB about the grey axis (1, 1, 1) (Rodrigues): white and greys stay."""
    c = 1.0 / math.sqrt(3.0)
    k = torch.full((3,), c)
    kx = torch.tensor([[0.0, -c, c], [c, 0.0, -c], [-c, c, 0.0]])  # cross-product matrix of k
    t = torch.deg2rad(degrees).view(-1, 1, 1)
    return torch.cos(t) * torch.eye(3) + torch.sin(t) * kx + (1 - torch.cos(t)) * torch.outer(k, k)


def channel_gains(b: int, gain_log_range: float, channel_log_range: float, gen: torch.Generator) -> torch.Tensor:
    """(B, 3, 1, 1) exponents: one gain per sample (a thicker or denser parcel) times one per channel (a tone and
    tint change), so both are a single power of the batch."""
    gain = torch.exp(_uniform(b, -gain_log_range, gain_log_range, gen)).view(b, 1, 1, 1)
    return gain * torch.exp(_uniform(b * 3, -channel_log_range, channel_log_range, gen)).view(b, 3, 1, 1)


def colour_jitter(x: torch.Tensor, cfg: AugmentConfig, gen: torch.Generator) -> torch.Tensor:
    """Hue turn, saturation scale and, for some samples, grey: all linear in RGB, so one 3 x 3 matrix per sample
    (saturation s about the grey level L = luma . rgb is s I + (1 - s) 1 luma^T; grey is s = 0); (B, 3, S, S)."""
    b = x.shape[0]
    hue = _uniform(b, -cfg.hue_deg, cfg.hue_deg, gen)
    sat = torch.exp(_uniform(b, -cfg.saturation_log_range, cfg.saturation_log_range, gen))
    sat = torch.where(torch.rand(b, generator=gen) < cfg.grey_p, 0.0, sat).view(b, 1, 1)
    to_grey = torch.ones(3, 1) @ torch.tensor([LUMA])  # (3, 3): every channel becomes the luma
    m = (sat * torch.eye(3) + (1 - sat) * to_grey) @ hue_rotation(hue)  # (B, 3, 3)
    y = torch.bmm(m.to(x.device), x.reshape(b, 3, -1))  # (B, 3, S*S)
    return y.view_as(x).clamp_(0.0, 1.0)


def random_blur(x: torch.Tensor, p: float, sigma_max: float, gen: torch.Generator) -> torch.Tensor:
    """Separable Gaussian blur of a random share p of the samples (sigma U(0.3, sigma_max) pixels): two grouped
    convolutions over the chosen samples only."""
    b, c, _, _ = x.shape
    on = torch.rand(b, generator=gen) < p
    sigma = _uniform(b, 0.3, max(sigma_max, 0.3), gen)
    chosen = torch.nonzero(on).flatten()
    if len(chosen) == 0:
        return x
    n, r = len(chosen), max(1, math.ceil(2.5 * sigma_max))
    taps = torch.arange(-r, r + 1, dtype=torch.float32)
    k = torch.exp(-(taps.view(1, -1) ** 2) / (2 * sigma[chosen].view(-1, 1) ** 2))
    k = (k / k.sum(dim=1, keepdim=True)).repeat_interleave(c, dim=0).to(x.device)  # (n * C, 2r + 1)
    y = F.pad(x[chosen.to(x.device)].reshape(1, n * c, *x.shape[2:]), (r, r, r, r), mode="replicate")
    y = F.conv2d(y, k.view(n * c, 1, -1, 1), groups=n * c)  # along rows
    y = F.conv2d(y, k.view(n * c, 1, 1, -1), groups=n * c)  # along columns
    x = x.clone()
    x[chosen.to(x.device)] = y.view(n, c, *x.shape[2:])
    return x


def jpeg_choices(b: int, p: float, quality: tuple[int, int], rng: np.random.Generator) -> list[tuple[int, int]]:
    """Which of b samples to JPEG-compress (a random share p) and at what quality (U(quality)): (sample, quality)
    pairs, drawn in the one order every caller shares."""
    chosen = []
    for i in range(b):
        if rng.random() < p:
            chosen.append((i, int(rng.integers(quality[0], quality[1] + 1))))
    return chosen


def jpeg_one(canvas: torch.Tensor, quality: int) -> torch.Tensor:
    """One (3, S, S) CPU canvas through Pillow's JPEG at `quality`: uint8 in, uint8 out; float in [0, 1] is
    compressed as its uint8 pixels and comes back float."""
    as_uint8 = canvas if canvas.dtype == torch.uint8 else (canvas * 255.0).round().clamp_(0, 255).to(torch.uint8)
    buf = io.BytesIO()
    Image.fromarray(as_uint8.permute(1, 2, 0).numpy()).save(buf, format="JPEG", quality=quality)  # (S, S, 3)
    with Image.open(io.BytesIO(buf.getvalue())) as im:
        decoded = torch.from_numpy(np.asarray(im).copy()).permute(2, 0, 1)
    return decoded if canvas.dtype == torch.uint8 else decoded.float().div_(255.0)


def jpeg_some(x: torch.Tensor, p: float, quality: tuple[int, int], rng: np.random.Generator) -> torch.Tensor:
    """JPEG-compress a random share p of a CPU batch in place (jpeg_choices, jpeg_one); returns x. The batch is
    float in [0, 1] or uint8 canvases (then compressed as they are, the same pixels as their float form)."""
    for b, q in jpeg_choices(x.shape[0], p, quality, rng):
        x[b] = jpeg_one(x[b], q)
    return x


def rescale_in_canvas(x: torch.Tensor, maps: torch.Tensor | None, p: float, min_scale: float,
                      gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Shrink a random share p of the canvases to U(min_scale, 1) of their side and place each at a random spot,
    white (empty beam) around; the box-target maps (B, K, g, g) move with them (shifts and sizes on a grid of a
    quarter heatmap cell, so canvas and targets stay aligned exactly). Everything stays inside the canvas, so no
    threat is cut off and every label stays true."""
    b, _, size, _ = x.shape
    on = (torch.rand(b, generator=gen) < p).tolist()
    scale = _uniform(b, min_scale, 1.0, gen).tolist()
    where = torch.rand(b, 2, generator=gen).tolist()
    if not any(on):
        return x, maps
    g = maps.shape[-1] if maps is not None else 1
    fine = g * MAP_SUPERSAMPLE if maps is not None else size
    step = size / fine  # canvas pixels per fine cell (size must be a multiple of it for exact alignment)
    x = x.clone()
    maps = maps.clone() if maps is not None else None
    for i in range(b):
        cells = max(1, round(scale[i] * fine))  # new side, in fine cells
        if not on[i] or cells >= fine:
            continue
        top, left = (round(w * (fine - cells)) for w in where[i])
        side = round(cells * step)
        small = F.interpolate(x[i : i + 1], size=(side, side), mode="bilinear", antialias=True, align_corners=False)
        x[i] = 1.0
        y0, x0 = round(top * step), round(left * step)
        x[i, :, y0 : y0 + side, x0 : x0 + side] = small[0].clamp_(0.0, 1.0)
        if maps is not None:
            up = F.interpolate(maps[i : i + 1].float(), scale_factor=MAP_SUPERSAMPLE, mode="nearest")  # (1, K, f, f)
            shrunk = F.interpolate(up, size=(cells, cells), mode="area")
            canvas = torch.zeros_like(up)
            canvas[..., top : top + cells, left : left + cells] = shrunk
            maps[i] = F.avg_pool2d(canvas, MAP_SUPERSAMPLE)[0].to(maps.dtype)
    return x, maps
