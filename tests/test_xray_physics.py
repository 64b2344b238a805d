"""Physics of the renderer: Beer–Lambert, material separation, TIP additivity and saturation, palette colours."""

from __future__ import annotations

import numpy as np
import pytest

from xray.materials import (
    MATERIALS,
    RATIO_METAL_MIN,
    RATIO_ORGANIC_MAX,
    TRANSMISSION_FLOOR,
    attenuation,
    transmission,
)
from xray.palettes import PALETTES, UnknownPaletteError, pseudo_colour
from xray.tip import estimate_dual_energy, project_threat, project_threat_rgb, random_top_left, render_threat


@pytest.mark.parametrize("name", sorted(MATERIALS))
def test_attenuation_is_monotone_in_thickness_at_both_energies(name: str) -> None:
    thickness = np.linspace(0.0, 5.0, 50)  # mm: thin enough that no material saturates
    high, low = transmission(thickness, name)
    assert np.all(np.diff(high) < 0) or MATERIALS[name].mu_high * 5 > -np.log(TRANSMISSION_FLOOR)
    assert np.all(np.diff(high) <= 0) and np.all(np.diff(low) <= 0)
    assert high[0] == pytest.approx(1.0) and low[0] == pytest.approx(1.0)


def test_low_energy_is_attenuated_more_than_high_energy() -> None:
    for name in MATERIALS:
        high, low = transmission(np.array([2.0]), name)
        assert low[0] < high[0], name


def test_dual_energy_ratio_is_independent_of_thickness_and_sorts_families() -> None:
    for name, mat in MATERIALS.items():
        high, low = transmission(np.array([0.5, 1.0, 2.0]), name)
        ratios = attenuation(low) / attenuation(high)
        unsaturated = (high > 2 * TRANSMISSION_FLOOR) & (low > 2 * TRANSMISSION_FLOOR)
        np.testing.assert_allclose(ratios[unsaturated], mat.ratio, rtol=1e-3)
        if mat.family == "organic":
            assert mat.ratio < RATIO_ORGANIC_MAX, name
        elif mat.family == "metal":
            assert mat.ratio >= RATIO_METAL_MIN, name
        else:
            assert RATIO_ORGANIC_MAX <= mat.ratio < RATIO_METAL_MIN, name


def test_metal_and_organic_pixels_are_separable_by_ratio_under_detector_noise() -> None:
    rng = np.random.default_rng(0)
    # a 20 mm plastic block and a 1.5 mm steel sheet absorb about the same at high energy
    organic = transmission(np.full(2000, 20.0), "polyethylene")
    metal = transmission(np.full(2000, 1.5), "steel")
    assert abs(float(organic[0].mean()) - float(metal[0].mean())) < 0.25

    def ratio(pair: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
        noisy = [np.clip(t + 0.01 * rng.standard_normal(t.shape), TRANSMISSION_FLOOR, 1) for t in pair]
        return attenuation(noisy[1]) / attenuation(noisy[0])

    threshold = (RATIO_ORGANIC_MAX + RATIO_METAL_MIN) / 2
    accuracy = ((ratio(organic) < threshold).mean() + (ratio(metal) > threshold).mean()) / 2
    assert accuracy > 0.99


def test_tip_adds_log_attenuations_where_not_saturated() -> None:
    rng = np.random.default_rng(1)
    benign_h = rng.uniform(0.3, 1.0, (64, 64)).astype(np.float32)
    benign_l = (benign_h**1.3).astype(np.float32)
    att_h = rng.uniform(0.0, 1.0, (20, 30)).astype(np.float32)
    att_l = att_h * 1.8
    high, low = project_threat(benign_h, benign_l, att_h, att_l, top_left=(10, 5))
    region = (slice(10, 30), slice(5, 35))
    np.testing.assert_allclose(attenuation(high[region]), attenuation(benign_h[region]) + att_h, atol=1e-5)
    np.testing.assert_allclose(attenuation(low[region]), attenuation(benign_l[region]) + att_l, atol=1e-5)
    outside = np.ones_like(benign_h, dtype=bool)
    outside[region] = False
    np.testing.assert_array_equal(high[outside], benign_h[outside])
    assert benign_h.min() >= 0.3  # inputs untouched


def test_tip_clips_at_the_detector_floor_and_cuts_at_the_image_edge() -> None:
    benign = np.full((32, 32), 0.01, dtype=np.float32)
    att = np.full((10, 10), 20.0, dtype=np.float32)  # far denser than the detector can resolve
    high, low = project_threat(benign, benign, att, att, top_left=(-5, 27))
    assert np.all(high[:5, 27:] == np.float32(TRANSMISSION_FLOOR))
    assert np.all(high[5:, :] == np.float32(0.01))
    with pytest.raises(ValueError, match="outside"):
        project_threat(benign, benign, att, att, top_left=(40, 40))


def test_rendered_threat_signature_projects_into_a_benign_scan() -> None:
    rng = np.random.default_rng(2)
    sig = render_threat(rng, "firearm", image_width=256)
    assert sig.mask.shape == sig.shape and sig.mask.any() and sig.class_name == "firearm"
    benign = np.ones((256, 256), dtype=np.float32)
    tl = random_top_left(rng, benign.shape, sig)
    high, low = project_threat(benign, benign, sig.att_high, sig.att_low, tl)
    assert high.min() < 0.2  # a steel slide is dense
    rgb = pseudo_colour(high, low, "reference").astype(int)
    dense = attenuation(high) > 1.0
    metal_looking = (rgb[..., 2] >= rgb[..., 0])[dense]  # blue, or black where even the low energy saturates
    assert metal_looking.mean() > 0.8


def _family_colour(palette: str, name: str, thickness: float) -> np.ndarray:
    high, low = transmission(np.full((4, 4), thickness), name)
    return pseudo_colour(high, low, palette)[0, 0].astype(int)


def test_reference_palette_shows_orange_organic_green_inorganic_blue_metal_white_air_black_saturation() -> None:
    r, g, b = _family_colour("reference", "paper", 40.0)
    assert r > g > b  # orange
    r, g, b = _family_colour("reference", "aluminium", 6.0)
    assert g > r and g > b  # green
    r, g, b = _family_colour("reference", "steel", 2.0)
    assert b > r and b > g  # blue
    assert list(_family_colour("reference", "paper", 0.0)) == [255, 255, 255]
    assert list(_family_colour("reference", "lead", 30.0)) == [0, 0, 0]
    assert sum(_family_colour("reference", "paper", 80.0)) < sum(_family_colour("reference", "paper", 20.0))


def test_swapped_palette_exchanges_inorganic_and_metal_colours() -> None:
    r, g, b = _family_colour("swapped", "aluminium", 6.0)
    assert b > g and b > r
    r, g, b = _family_colour("swapped", "steel", 2.0)
    assert g > b and g > r
    assert len(PALETTES) >= 4
    with pytest.raises(UnknownPaletteError, match="known"):
        pseudo_colour(np.ones((2, 2)), np.ones((2, 2)), "nope")


def test_tip_on_pseudo_colour_changes_only_the_threat_box_and_keeps_colours_consistent() -> None:
    rng = np.random.default_rng(4)
    high, low = transmission(np.full((120, 120), 30.0), "paper")
    rgb = pseudo_colour(high, low, "reference")
    sig = render_threat(rng, "knife", image_width=256, angle=0.0)
    tl = (10, 10)
    out = project_threat_rgb(rgb, sig, tl, "reference")
    h, w = sig.shape
    changed = np.any(out != rgb, axis=2)
    assert changed.any()
    assert not changed[tl[0] + h:, :].any() and not changed[:, tl[1] + w:].any()
    est_h, _ = estimate_dual_energy(rgb[:4, :4], "reference")
    assert np.allclose(est_h, high[0, 0], atol=0.05)  # palette inversion recovers the transmission roughly
