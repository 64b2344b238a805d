"""Training augmentations that remove style shortcuts: each does what it says, keeps white white, keeps labels true."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from screening.augment import AugmentConfig, photometric, repalette
from screening.augment_ops import (
    LUMA,
    colour_jitter,
    hue_rotation,
    jpeg_some,
    random_blur,
    random_tone,
    rescale_in_canvas,
)
from screening.boxes import box_targets
from screening.synthetic import render_set
from screening.train import TrainConfig, _batch
from xscreen.settings import DEFAULT_CLASSES

OFF = AugmentConfig(flip=False, gain_log_range=0.0, noise_max=0.0, hue_deg=0.0, saturation_log_range=0.0,
                    channel_gamma_log_range=0.0, grey_p=0.0, blur_p=0.0, jpeg_p=0.0, rescale_p=0.0)


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_hue_rotation_keeps_greys_and_a_third_of_a_turn_permutes_the_channels() -> None:
    r = hue_rotation(torch.tensor([120.0, 37.0]))
    assert torch.allclose(r[0] @ torch.tensor([1.0, 0.0, 0.0]), torch.tensor([0.0, 1.0, 0.0]), atol=1e-6)
    grey = torch.tensor([0.3, 0.3, 0.3])
    assert torch.allclose(r[1] @ grey, grey, atol=1e-6) and torch.allclose(r[1] @ torch.ones(3), torch.ones(3), atol=1e-6)


def test_colour_jitter_can_turn_grey_and_leaves_white_white() -> None:
    x = torch.rand(4, 3, 16, 16)
    x[:, :, :4] = 1.0  # air
    grey = colour_jitter(x, AugmentConfig(grey_p=1.0, hue_deg=0.0), _gen())
    luma = (x * torch.tensor(LUMA).view(1, 3, 1, 1)).sum(dim=1)
    assert torch.allclose(grey[:, 0], luma, atol=1e-5) and torch.equal(grey[:, 0], grey[:, 2])
    jittered = colour_jitter(x, AugmentConfig(grey_p=0.0, hue_deg=30.0, saturation_log_range=0.5), _gen(1))
    assert torch.allclose(jittered[:, :, :4], torch.ones(4, 3, 4, 16), atol=1e-5)
    assert not torch.allclose(jittered, x, atol=1e-3)
    assert torch.allclose(colour_jitter(x, OFF, _gen()), x, atol=1e-6)  # all ranges 0: identity


def test_blur_smooths_the_chosen_samples_only() -> None:
    x = torch.rand(6, 3, 32, 32)
    assert torch.equal(random_blur(x, 0.0, 1.2, _gen()), x)
    y = random_blur(x, 1.0, 1.2, _gen())
    tv = lambda t: (t[..., 1:] - t[..., :-1]).abs().mean()  # noqa: E731  total variation
    assert all(tv(y[b]) < 0.8 * tv(x[b]) for b in range(6))
    assert torch.allclose(y.mean(dim=(2, 3)), x.mean(dim=(2, 3)), atol=0.02)  # blur moves no mass


def test_jpeg_changes_pixels_a_little() -> None:
    x = torch.rand(3, 3, 32, 32) * 0.2 + 0.4
    rng = np.random.default_rng(0)
    assert torch.equal(jpeg_some(x.clone(), 0.0, (40, 95), rng), x)
    y = jpeg_some(x.clone(), 1.0, (30, 30), rng)
    diff = (y - x).abs().mean()
    assert 0.0 < diff < 0.1


def test_jpeg_of_uint8_canvases_gives_the_pixels_of_their_float_form() -> None:
    # Training JPEGs uint8 canvases before they cross to the GPU: the result must be what the float path gave.
    canvases = (torch.rand(4, 3, 32, 32) * 255).round().to(torch.uint8)
    as_uint8 = jpeg_some(canvases.clone(), 0.6, (30, 90), np.random.default_rng(4))
    as_float = jpeg_some(canvases.float() / 255.0, 0.6, (30, 90), np.random.default_rng(4))
    assert as_uint8.dtype == torch.uint8
    assert torch.equal(as_uint8.float() / 255.0, as_float)
    assert not torch.equal(as_uint8, canvases)


def test_rescaling_moves_the_box_targets_with_the_canvas() -> None:
    size, g = 64, 8  # 8 canvas pixels per heatmap cell, 2 per quarter cell
    x = torch.ones(5, 3, size, size)
    x[:, :, 16:32, 24:48] = 0.0  # a dense threat covering cells rows 2-3, columns 3-5
    maps = torch.zeros(5, 2, g, g, dtype=torch.float16)
    maps[:, 1, 2:4, 3:6] = 1.0
    y, m = rescale_in_canvas(x, maps, 1.0, 0.5, _gen(3))
    assert m is not None and m.dtype == torch.float16
    for b in range(5):
        dark = y[b, 0] < 0.5
        rows, cols = torch.nonzero(dark.any(dim=1)).flatten(), torch.nonzero(dark.any(dim=0)).flatten()
        cover = m[b, 1].float()
        # the mass of the coverage map sits where the threat now is (centroids in canvas pixels agree)
        cy = float((cover.sum(dim=1) * (torch.arange(g) + 0.5)).sum() / cover.sum()) * size / g
        cx = float((cover.sum(dim=0) * (torch.arange(g) + 0.5)).sum() / cover.sum()) * size / g
        assert abs(cy - float(rows.float().mean() + 0.5)) < 1.0 and abs(cx - float(cols.float().mean() + 0.5)) < 1.0
        side = (rows.max() - rows.min() + 1) / 16.0  # the threat's new scale
        assert float(cover.sum()) == pytest.approx(6.0 * float(side) ** 2, rel=0.15)  # area shrinks as scale^2
        assert float(m[b, 0].abs().sum()) == 0.0 and torch.all(y[b, :, 0] == 1.0)  # white all round the shrunk canvas


def test_photometric_pipeline_keeps_range_and_is_seeded() -> None:
    x = torch.rand(4, 3, 32, 32)
    a = photometric(x, AugmentConfig(grey_p=0.5, blur_p=0.5), _gen(7))
    b = photometric(x, AugmentConfig(grey_p=0.5, blur_p=0.5), _gen(7))
    assert torch.equal(a, b) and a.min() >= 0 and a.max() <= 1


def test_repalette_draws_training_family_palettes() -> None:
    planes = torch.rand(6, 2, 24, 24).half() * 0.8 + 0.1
    out = repalette(planes, np.random.default_rng(0), 1.0)
    assert sorted(out) == list(range(6)) and all(c.shape == (3, 24, 24) for c in out.values())
    assert len({tuple(c.mean(dim=(1, 2)).round(decimals=3).tolist()) for c in out.values()}) > 3  # varied colours


def test_training_batches_of_a_styled_set_keep_labels_and_box_targets() -> None:
    data, _ = render_set(16, 21, DEFAULT_CLASSES, 64, workers=1, image_size=(128, 128), progress=False, style="train")
    boxes = box_targets(data.files, data.geometries, data.class_labels, data.boxes, data.classes, 4)
    idx = np.arange(16)
    x, any_y, cls_y, dense = _batch(data, idx, TrainConfig(), _gen(), np.random.default_rng(0), None, boxes)
    assert x.shape == (16, 3, 64, 64) and torch.equal(any_y, torch.as_tensor(data.any_labels))
    assert dense is not None and dense[0].shape == (16, len(DEFAULT_CLASSES), 4, 4)
    for b in range(16):  # a class's box target is non-empty exactly when the sample holds that class
        for k in range(len(DEFAULT_CLASSES)):
            assert (float(dense[0][b, k].float().sum()) > 0) == bool(cls_y[b, k] == 1) or not dense[1][b]


def test_random_tone_is_an_s_curve_that_keeps_white_and_black_and_draws_nothing_when_off() -> None:
    levels = torch.linspace(0, 1, 101).view(1, 1, 1, 101).repeat(4, 3, 1, 1)  # (B, C, 1, W): every level
    gen = torch.Generator().manual_seed(0)
    out = random_tone(levels, AugmentConfig(tone_p=1.0, tone_contrast=(8.0, 8.0), tone_mid=(0.6, 0.6)), gen)
    assert torch.allclose(out[..., 0], torch.zeros(4, 3, 1), atol=1e-6)  # black stays black
    assert torch.allclose(out[..., -1], torch.ones(4, 3, 1), atol=1e-6)  # white (air, padding) stays white
    assert (out.diff(dim=-1) >= 0).all()  # monotone: darker stays darker
    assert torch.equal(out[:, 0], out[:, 2])  # one curve for every channel
    assert out[0, 0, 0, 30] < 0.3 * 0.5 and out[0, 0, 0, 80] > 0.8  # an S: shadows pressed, highlights lifted
    state = gen.get_state()
    assert random_tone(levels, AugmentConfig(), gen) is levels and torch.equal(gen.get_state(), state)  # off
