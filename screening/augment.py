"""Training augmentation on cached canvases: palette change, flips, rescaling inside the letterbox, gain, colour
jitter (hue, saturation, channel gamma, grey), blur, noise, JPEG, and threat image projection.

Every random draw comes from a torch.Generator or numpy Generator passed in, so a seed reproduces a run.
Gain is applied as a power of the image (x ** g): for transmission T = exp(-mu t), T ** g is the same parcel g
times thicker or denser, which is what a differently calibrated scanner or a heavier parcel looks like.
The colour operations keep white white (air, and the letterbox padding): hue turns about the grey axis,
saturation mixes with the grey level, and a power leaves 1 at 1; so padding never becomes a cue.
They remove what the rendered scanner styles (xray.styles) leave as shortcuts: a hue, a saturation, a tone, a
sharpness, a compression or an apparent scale that the threats of the training set happen to share.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch

from screening.augment_ops import (
    AugmentConfig,
    channel_gains,
    colour_jitter,
    jpeg_choices,
    jpeg_one,
    jpeg_some,
    random_blur,
    random_tone,
    rescale_in_canvas,
)

if TYPE_CHECKING:
    from xray.palettes import Palette

__all__ = ["AugmentConfig", "TipBank", "apply_flips", "colour_jitter", "jpeg_choices", "jpeg_one", "jpeg_some",
           "photometric", "random_blur", "random_flips", "random_palette", "random_tone", "repalette", "rescale_in_canvas"]


def random_palette(rng: np.random.Generator) -> Palette:
    """A palette of the training style family (xray.styles.sample_palette): the four named vendor palettes and
    the continuous family around them."""
    from xray.styles import sample_palette

    return sample_palette(rng)


def repalette(planes: torch.Tensor, rng: np.random.Generator, p: float) -> dict[int, torch.Tensor]:
    """Re-render some dual-energy samples with a random training-family palette: {batch index: (3, S, S) float32}."""
    from xray.palettes import pseudo_colour

    out: dict[int, torch.Tensor] = {}
    for b in range(planes.shape[0]):
        hl = planes[b].float()  # (2, S, S)
        if rng.random() >= p or torch.isnan(hl).any():
            continue
        rgb = pseudo_colour(hl[0].numpy(), hl[1].numpy(), random_palette(rng))  # (S, S, 3) uint8
        out[b] = torch.from_numpy(rgb).permute(2, 0, 1).float().div_(255.0)  # (3, S, S)
    return out


def random_flips(b: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """(horizontal, vertical) flip decisions (B,) bool: a parcel may lie either way round on the belt."""
    return torch.rand(b, generator=gen) < 0.5, torch.rand(b, generator=gen) < 0.5


def apply_flips(t: torch.Tensor, flips: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    """Flip each (B, C, H, W) sample as decided; used on canvases and on their heatmap targets alike."""
    hflip, vflip = (f.to(t.device) for f in flips)
    b = t.shape[0]
    t = torch.where(hflip.view(b, 1, 1, 1), t.flip(3), t)
    return torch.where(vflip.view(b, 1, 1, 1), t.flip(2), t)


def photometric(x: torch.Tensor, cfg: AugmentConfig, gen: torch.Generator,
                flips: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
    """Flips (drawn here, or the given ones), gain, tone curve, colour jitter, blur and noise on a float batch (B, 3, S, S)
    in [0, 1]; a new tensor."""
    b = x.shape[0]
    if flips is not None:
        x = apply_flips(x, flips)
    elif cfg.flip:
        x = apply_flips(x, random_flips(b, gen))
    x = x.clamp(1e-4, 1.0) ** channel_gains(b, cfg.gain_log_range, cfg.channel_gamma_log_range, gen).to(x.device)
    x = random_tone(x, cfg, gen)
    x = colour_jitter(x, cfg, gen)
    x = random_blur(x, cfg.blur_p, cfg.blur_max, gen)
    sigma = (torch.rand(b, generator=gen) * cfg.noise_max).view(b, 1, 1, 1)
    x = x + sigma.to(x.device) * torch.randn(x.shape, generator=_generator_on(x.device, gen), device=x.device)
    return x.clamp_(0.0, 1.0)


def _generator_on(device: torch.device, gen: torch.Generator) -> torch.Generator:
    """`gen` itself on its own device; elsewhere (a batch on the GPU) a generator there seeded from `gen`, so a
    seed still reproduces a run and the per-pixel noise is drawn where the batch lives, not on the CPU."""
    if device.type == gen.device.type:
        return gen
    seed = int(torch.randint(0, 2**62, (1,), generator=gen))
    return torch.Generator(device=device).manual_seed(seed)


class TipBank:
    """Pre-rendered threat signatures at canvas scale, projected into benign dual-energy samples (TIP).

    Projection is physical (xray.tip.project_threat: log-attenuations add), then the sample is re-coloured with a
    palette, so the model sees the threat as a scanner would show it behind the benign clutter.
    """

    def __init__(self, classes: list[str], canvas: int, per_class: int, seed: int) -> None:
        from xray.tip import render_threat

        rng = np.random.default_rng(seed)
        # A letterboxed parcel spans most of the canvas across the belt: render at that pixel scale.
        self.classes = classes
        self.bank = {c: [render_threat(rng, c, image_width=int(canvas * 0.9)) for _ in range(per_class)] for c in classes}

    def project(self, planes: torch.Tensor, rng: np.random.Generator, palette: str | Palette) -> tuple[torch.Tensor, int]:
        """planes (2, S, S) float -> canvas (3, S, S) float with one projected threat, and that class's index."""
        from xray.palettes import pseudo_colour
        from xray.tip import project_threat, random_top_left

        j = int(rng.integers(len(self.classes)))
        sig = self.bank[self.classes[j]][int(rng.integers(len(self.bank[self.classes[j]])))]
        high, low = planes[0].float().numpy(), planes[1].float().numpy()
        top_left = random_top_left(rng, high.shape, sig, margin=0.2)
        high, low = project_threat(high, low, sig.att_high, sig.att_low, top_left)
        rgb = pseudo_colour(high, low, palette)  # (S, S, 3) uint8
        return torch.from_numpy(rgb).permute(2, 0, 1).float().div_(255.0), j
