"""Viewer image operations on tiny arrays with known answers."""

import base64

import numpy as np
import pytest

from analytics import triage


def test_window_level_maps_window_onto_unit_range() -> None:
    out = triage.window_level(np.array([0, 0.25, 0.5, 0.75, 1.0]), window=0.5, level=0.5)
    assert out.tolist() == [0.0, 0.0, 0.5, 1.0, 1.0]


def test_material_masks_from_dual_energy_ratio() -> None:
    high = np.exp(-np.array([[1.0, 1.0, 1.0, 0.0]]))
    low = np.exp(-np.array([[1.1, 2.0, 3.0, 0.0]]))  # ratios 1.1, 2.0, 3.0 and air
    m = triage.material_masks(high, low)
    assert m.organic.tolist() == [[True, False, False, False]]
    assert m.inorganic.tolist() == [[False, True, False, False]]
    assert m.metal.tolist() == [[False, False, True, False]]


def test_material_only_blanks_other_pixels() -> None:
    rgb = np.zeros((1, 2, 3), dtype=np.float32)
    out = triage.material_only(rgb, np.array([[True, False]]))
    assert out[0, 0].tolist() == [0, 0, 0] and out[0, 1].tolist() == [1, 1, 1]


def test_decode_heatmap_and_wrong_size() -> None:
    enc = base64.b64encode(bytes([0, 255, 51, 102])).decode()
    assert triage.decode_heatmap(enc, 2) == pytest.approx(np.array([[0, 1], [0.2, 0.4]]))
    with pytest.raises(triage.ViewerError, match="expected 3x3"):
        triage.decode_heatmap(enc, 3)


def test_overlay_leaves_cold_pixels_and_reddens_hot_ones() -> None:
    rgb = np.full((2, 2, 3), 0.5, dtype=np.float32)
    out = triage.heatmap_overlay(rgb, np.array([[0.0, 1.0]]), opacity=0.5)
    assert out[0, 0].tolist() == [0.5, 0.5, 0.5]
    assert out[1, 1] == pytest.approx([0.75, 0.3, 0.25])


def test_zoom_crops_centre_and_unletterbox_crops_padding() -> None:
    img = np.arange(16).reshape(4, 4)
    assert triage.zoom(img, 2).tolist() == [[5, 6], [9, 10]]
    assert triage.unletterbox(img, width=4, height=2).tolist() == [[4, 5, 6, 7], [8, 9, 10, 11]]


def test_uint8_conversion_rounds_and_clips() -> None:
    assert triage.to_uint8(np.array([-1, 0.5, 2])).tolist() == [0, 128, 255]
