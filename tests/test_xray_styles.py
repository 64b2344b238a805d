"""Scanner styles (xray.styles): families, serialisation, detector effects, display, geometry, JPEG, ground truth."""

from __future__ import annotations

import colorsys
import json
from dataclasses import replace

import numpy as np
import pytest
from scipy.ndimage import uniform_filter

from xray import scanner_ops as ops
from xray.formats import read_scan
from xray.palettes import PALETTES, box_mean, pseudo_colour, tone_curve
from xray.styles import (
    FAMILIES,
    HELDOUT_HUES,
    REFERENCE_STYLE,
    TRAIN_HUES,
    DetectorModel,
    DisplayMapping,
    ImageGeometry,
    ScannerStyle,
    apply_style,
    rotate_palette_hue,
    sample_style,
    style_rng,
)
from xray.synth import ObjectInfo, Parcel, render_parcel
from xscreen.errors import ConfigError
from xscreen.settings import DEFAULT_CLASSES

AUGMENT_HUE_JITTER = 8.0  # screening.augment.AugmentConfig.hue_deg


def _parcel(i: int = 0, threat_rate: float = 1.0) -> Parcel:
    return render_parcel(np.random.default_rng([11, i]), classes=DEFAULT_CLASSES, threat_rate=threat_rate,
                         size=(160, 144))


def _square_parcel() -> Parcel:
    """A 200 x 160 belt, empty but for one dense threat square at x 60-100, y 50-80 (its mask: all of its box)."""
    high = np.ones((160, 200), np.float32)
    low = np.ones((160, 200), np.float32)
    high[50:80, 60:100], low[50:80, 60:100] = 0.05, 0.01
    obj = ObjectInfo("knife:test", "steel", True, "knife", (60, 50, 100, 80))
    return Parcel(high, low, ["knife"], [obj], {0: np.ones((30, 40), bool)})


def test_reference_style_is_todays_rendering() -> None:
    parcel = _parcel()
    scan = apply_style(parcel, REFERENCE_STYLE)
    assert np.array_equal(scan.image, pseudo_colour(parcel.high, parcel.low, parcel.palette))
    assert scan.objects == parcel.objects and scan.labels == parcel.labels and scan.palette == parcel.palette
    assert sample_style(style_rng(1, 2), "reference") == REFERENCE_STYLE


@pytest.mark.parametrize("family", FAMILIES)
def test_styles_are_reproducible_and_round_trip_through_json(family: str) -> None:
    for i in range(12):
        style = sample_style(style_rng(5, i), family)
        assert style == sample_style(style_rng(5, i), family)
        assert ScannerStyle.from_dict(json.loads(style.to_json())) == style
    parcel = _parcel(3)
    style = sample_style(style_rng(5, 3), family)
    assert np.array_equal(apply_style(parcel, style).image, apply_style(parcel, style).image)


def test_a_damaged_style_record_is_a_clear_error() -> None:
    record = sample_style(style_rng(1, 1), "train").to_dict()
    del record["detector"]["gain"]
    record["detector"]["gane"] = 1.0
    with pytest.raises(ConfigError, match="not a scanner style .*gane"):
        ScannerStyle.from_dict(record)
    with pytest.raises(ConfigError, match="not a scanner style"):
        ScannerStyle.from_dict({"family": "train"})


def test_unknown_family_is_a_clear_error() -> None:
    with pytest.raises(ConfigError, match="unknown scanner style family 'vendor-x'; known: reference, train"):
        sample_style(np.random.default_rng(0), "vendor-x")


def _hue(rgb: tuple[float, float, float]) -> float:
    return colorsys.rgb_to_hsv(*rgb)[0] * 360.0


def _inside(h: float, lo: float, hi: float) -> bool:
    return lo - 1e-6 <= h <= hi + 1e-6


def test_heldout_hues_are_never_drawn_for_training() -> None:
    # the ranges are apart by more than training's hue jitter, for each material
    for (tlo, thi), (hlo, hhi) in zip(TRAIN_HUES, HELDOUT_HUES, strict=True):
        assert hlo - thi > AUGMENT_HUE_JITTER or tlo - hhi > AUGMENT_HUE_JITTER
    organic, metals = TRAIN_HUES[0], (TRAIN_HUES[1], TRAIN_HUES[2])  # vendor B swaps inorganic and metal
    seen_grey = seen_drawn = 0
    for i in range(300):
        style = sample_style(style_rng(9, i), "train")
        p = style.display.palette
        if style.display.mode != "colour":
            seen_grey += 1
            continue
        assert p is not None
        if p.name != "styled":
            assert p == PALETTES[p.name]  # the named palettes, unchanged
            continue
        seen_drawn += 1
        lightest, heaviest = p.anchors[0][1], p.anchors[-1][1]  # organic and heaviest-metal anchors
        assert _inside(_hue(lightest), *organic)
        assert any(_inside(_hue(heaviest), *r) for r in metals)
    assert seen_grey > 30 and seen_drawn > 100
    for i in range(50):
        p = sample_style(style_rng(9, i), "heldout").display.palette
        assert p is not None
        assert _inside(_hue(p.anchors[0][1]), *HELDOUT_HUES[0]) and _inside(_hue(p.anchors[-1][1]), *HELDOUT_HUES[2])


def test_heldout_variants_change_one_thing_each() -> None:
    for i in range(10):
        base = sample_style(style_rng(4, i), "heldout")
        grey = sample_style(style_rng(4, i), "heldout-grey")
        jpeg = sample_style(style_rng(4, i), "heldout-jpeg")
        assert base.jpeg_quality is None and grey.display.mode == "grey" and 20 <= (jpeg.jpeg_quality or 0) <= 40
        assert grey.detector == base.detector == jpeg.detector and grey.geometry == base.geometry == jpeg.geometry
        assert jpeg.display == base.display
        train = sample_style(style_rng(4, i), "train")  # the held-out detector lies beyond training's ranges
        assert base.detector.afterglow > 0.25 > train.detector.afterglow
        assert base.detector.row_banding > 0 == train.detector.row_banding
        assert base.geometry.aspect > 1.2 > train.geometry.aspect


def test_boxes_and_masks_follow_crop_pad_aspect_and_size() -> None:
    parcel = _square_parcel()
    for geo in (ImageGeometry("padded", (0.5, 0.2, 0.1, 0.4), aspect=1.25, long_side=300),
                ImageGeometry("parcel", (0.1, 0.3, 0.2, 0.05), long_side=120),
                ImageGeometry("belt", pixel_mm=6.2, aspect=0.9)):  # a pitch twice the renderer's (3.1 mm)
        # grey display: no material smoothing, so the square's displayed edge is its edge
        scan = apply_style(parcel, ScannerStyle("test", display=DisplayMapping("grey"), geometry=geo))
        dark = scan.image < 128
        rows, cols = np.flatnonzero(dark.any(axis=1)), np.flatnonzero(dark.any(axis=0))
        x0, y0, x1, y1 = scan.objects[0].box
        assert abs(cols[0] - x0) <= 1 and abs(cols[-1] + 1 - x1) <= 1, geo
        assert abs(rows[0] - y0) <= 1 and abs(rows[-1] + 1 - y1) <= 1, geo
        mask = scan.masks[0]
        assert mask.shape == (y1 - y0, x1 - x0) and mask.all()
        assert scan.labels == ["knife"]


def test_parcel_crop_keeps_every_object_and_padding_is_air() -> None:
    parcel = _parcel(2)
    scan = apply_style(parcel, ScannerStyle("test", geometry=ImageGeometry("parcel", (0.02,) * 4)))  # type: ignore[arg-type]
    assert [o.name for o in scan.objects] == [o.name for o in parcel.objects] and scan.labels == parcel.labels
    padded = apply_style(parcel, ScannerStyle("test", geometry=ImageGeometry("padded", (0.5, 0.5, 0.5, 0.5))))
    assert padded.image.shape[:2] == (2 * parcel.high.shape[0], 2 * parcel.high.shape[1])
    assert (padded.image[:20] == 255).all()  # air is white in the reference palette


def test_afterglow_trails_behind_a_dense_edge_by_the_stated_weights() -> None:
    t = np.ones((10, 3), np.float32)
    t[5:] = 0.0  # the belt carries a dense object in from row 5
    y = ops.afterglow(t, 0.5, reverse=False)
    w = np.array([1, 0.5, 0.25, 0.125]) / 1.875
    assert y[5, 0] == pytest.approx(w[1:].sum()) and y[6, 0] == pytest.approx(w[2:].sum())
    assert y[9, 0] == pytest.approx(0.0) and y[4, 0] == pytest.approx(1.0)
    back = ops.afterglow(t, 0.5, reverse=True)  # the other belt direction: the air after the object looks darker
    assert back[4, 0] == pytest.approx(w[0]) and back[3, 0] == pytest.approx(w[:2].sum())
    assert back[5, 0] == pytest.approx(0.0)


def test_detector_noise_streaks_and_dead_lines() -> None:
    flat = np.full((400, 300), 0.25, np.float32)
    rng = np.random.default_rng(3)
    noisy, _ = ops.detector(flat, flat, DetectorModel(noise=0.02), rng)
    assert noisy.std() == pytest.approx(0.02 * 0.5, rel=0.1)  # sigma = noise * sqrt(T)
    streaked, _ = ops.detector(flat, flat, DetectorModel(streaks=0.01), rng)
    assert np.ptp(streaked, axis=0).max() == 0 and streaked.mean(axis=0).std() == pytest.approx(0.0025, rel=0.25)
    dead, _ = ops.detector(flat, flat, DetectorModel(dead_lines=((0.5, 0.0), (0.1, 1.0))), rng)
    assert dead[:, 150].max() == pytest.approx(1e-3) and (dead[:, 30] == 1.0).all()
    assert np.array_equal(np.delete(dead, [30, 150], axis=1), np.delete(flat, [30, 150], axis=1))


def test_edge_enhancement_overshoots_at_edges_and_keeps_flat_areas() -> None:
    t = np.full((40, 40), 0.9, np.float32)
    t[:, 20:] = 0.3
    out = ops.unsharp(t, 1.0, 1.5)
    assert out[20, 19] > 0.9 and out[20, 20] < 0.3  # halos on both sides of the edge
    assert out[20, 2] == pytest.approx(0.9, abs=1e-4) and out[20, 37] == pytest.approx(0.3, abs=1e-4)


def test_grey_display_and_its_inversion() -> None:
    parcel = _parcel(1)
    grey = apply_style(parcel, ScannerStyle("test", display=DisplayMapping("grey")))
    assert grey.image.ndim == 2 and grey.palette == "grey"
    assert np.abs(grey.image.astype(int) - np.round(parcel.high * 255)).max() <= 1  # writers' `gray` format
    inverted = apply_style(parcel, ScannerStyle("test", display=DisplayMapping("grey_inverted")))
    assert np.array_equal(inverted.image, 255 - grey.image)


def test_tone_curves_keep_black_and_white_and_bend_between() -> None:
    v = np.array([0.0, 0.5, 1.0])
    assert np.allclose(tone_curve(v, 2.0), [0.0, 0.25, 1.0])
    s_curve = tone_curve(np.array([0.0, 0.25, 0.5, 0.75, 1.0]), 1.0, 8.0, 0.5)
    assert s_curve[0] == pytest.approx(0.0) and s_curve[-1] == pytest.approx(1.0) and s_curve[2] == pytest.approx(0.5)
    assert s_curve[1] < 0.25 and s_curve[3] > 0.75  # steeper in the middle


def test_hue_calibration_turns_every_anchor() -> None:
    ref = PALETTES["reference"]
    turned = rotate_palette_hue(ref, 30.0)
    for (r0, c0), (r1, c1) in zip(ref.anchors, turned.anchors, strict=True):
        assert r0 == r1 and (_hue(c1) - _hue(c0)) % 360 == pytest.approx(30.0, abs=0.5)
    assert np.allclose(np.array([c for _, c in rotate_palette_hue(ref, 360.0).anchors]),
                       np.array([c for _, c in ref.anchors]), atol=1e-4)


def test_a_palette_object_colours_like_its_name() -> None:
    parcel = _parcel(4)
    for name, p in PALETTES.items():
        assert np.array_equal(pseudo_colour(parcel.high, parcel.low, p), pseudo_colour(parcel.high, parcel.low, name))
    smoother = replace(PALETTES["reference"], smoothing=5)
    assert not np.array_equal(pseudo_colour(parcel.high, parcel.low, smoother), parcel.rgb("reference"))


@pytest.mark.parametrize("size", [3, 5])
def test_box_mean_matches_scipy_uniform_filter(size: int) -> None:
    x = np.random.default_rng(size).random((37, 23), dtype=np.float32)
    assert np.abs(box_mean(x, size) - uniform_filter(x, size)).max() < 1e-6
    assert box_mean(x, 1) is x


def test_jpeg_style_pixels_are_what_a_reader_decodes_from_its_file() -> None:
    parcel = _parcel(5)
    scan = apply_style(parcel, ScannerStyle("test", jpeg_quality=35))
    data = scan.encode()
    assert data[:3] == b"\xff\xd8\xff" and scan.jpeg == data
    decoded = read_scan(data)
    assert np.array_equal(np.round(decoded.rgb * 255).astype(np.uint8), scan.image)
    assert not np.array_equal(scan.image, parcel.rgb())  # compression changed the pixels
