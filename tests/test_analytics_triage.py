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


def test_the_overlay_starts_on_the_items_top_class_not_the_first_stored_one() -> None:
    grid = base64.b64encode(bytes(4)).decode()
    verdict = {"top_class": "narcotics", "heatmaps": {"currency": grid, "narcotics": grid}, "heatmap_size": 2,
               "scores": {"currency": 0.4, "narcotics": 0.9}}
    assert triage.overlay_default(verdict) == ["narcotics"]  # was ["currency"]: the alphabetically first map
    no_top = {**verdict, "top_class": None}
    assert triage.overlay_default(no_top) == ["narcotics"]  # then the highest score among the stored maps
    assert triage.overlay_default({"heatmaps": {}}) == []


def test_class_heat_is_the_strongest_chosen_map_with_no_crop() -> None:
    a = base64.b64encode(bytes([0, 255, 0, 0])).decode()
    b = base64.b64encode(bytes([51, 0, 0, 102])).decode()
    verdict = {"heatmaps": {"knife": a, "currency": b}, "heatmap_size": 2}
    assert triage.class_heat(verdict, ["knife", "currency"]) == pytest.approx(np.array([[0.2, 1], [0, 0.4]]))
    assert triage.class_heat(verdict, []) is None


def test_overlay_leaves_cold_pixels_and_reddens_hot_ones() -> None:
    rgb = np.full((2, 2, 3), 0.5, dtype=np.float32)
    out = triage.heatmap_overlay(rgb, np.array([[0.0, 1.0]]), opacity=0.5)
    assert out[0, 0].tolist() == [0.5, 0.5, 0.5]
    assert out[1, 1] == pytest.approx([0.75, 0.3, 0.25])


def test_zoom_crops_centre() -> None:
    img = np.arange(16).reshape(4, 4)
    assert triage.zoom(img, 2).tolist() == [[5, 6], [9, 10]]


def test_uint8_conversion_rounds_and_clips() -> None:
    assert triage.to_uint8(np.array([-1, 0.5, 2])).tolist() == [0, 128, 255]


def test_risk_text_tells_near_certain_items_apart_and_never_claims_certainty() -> None:
    got = [triage.risk_text(p) for p in (0.873, 0.994, 0.9987, 0.9994, 0.99996, 1.0, 0.0004, 0.0)]
    assert got == ["87 %", "99.4 %", "99.9 %", "99.94 %", "> 99.99 %", "> 99.99 %", "< 0.1 %", "< 0.1 %"]
    with pytest.raises(ValueError, match="must be in"):
        triage.risk_text(1.2)


def test_age_text_reads_like_an_officer_says_it() -> None:
    from datetime import UTC, datetime, timedelta

    now = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
    ages = [timedelta(seconds=2), timedelta(seconds=45), timedelta(minutes=12, seconds=30), timedelta(hours=3),
            timedelta(hours=3, minutes=5), timedelta(days=2), timedelta(days=2, hours=4), timedelta(seconds=-30)]
    assert [triage.age_text(now - a, now) for a in ages] == [
        "just now", "45 s ago", "12 min ago", "3 h ago", "3 h 5 min ago", "2 d ago", "2 d 4 h ago", "just now"]


def test_outcome_text_never_shows_nan() -> None:
    nan = float("nan")
    assert triage.outcome_text(nan, np.array(["knife"])) == "labelled · knife"
    assert triage.outcome_text(None, None) == "labelled"
    assert triage.outcome_text("cleared", np.array([], dtype=object)) == "cleared · benign"
    assert triage.outcome_text("confirmed", ["firearm", "knife"]) == "confirmed · firearm, knife"
    assert triage.outcome_text("seized", nan) == "seized"


def test_as_utc_reads_json_strings_and_arrow_timestamps_alike() -> None:
    import pandas as pd

    want = triage.as_utc("2026-11-20T12:00:00+00:00")
    assert want.tzinfo is not None and want.hour == 12
    assert triage.as_utc(pd.Timestamp("2026-11-20 13:00", tz="Europe/Paris")) == want
    assert triage.as_utc("2026-11-20 12:00:00") == want  # naive: the store writes UTC


def test_the_region_offered_is_the_models_peak_box_in_pixels_else_the_middle_half() -> None:
    assert triage.region_default([0.1, 0.2, 0.35, 0.5], 384, 256) == (38, 51, 135, 128)  # floor / ceil outward
    assert triage.region_default(None, 400, 200) == (100, 50, 300, 150)
    assert triage.region_default([0.9, 0.9, 1.0, 1.0], 10, 10) == (9, 9, 10, 10)  # stays inside the image


def test_outline_frames_the_region_inside_its_edges_and_leaves_the_rest() -> None:
    img = np.zeros((10, 12, 3), np.float32)
    out = triage.outline(img, (2, 3, 7, 9), colour=(1.0, 1.0, 1.0), thickness=1)
    framed = out[..., 0] > 0
    assert framed[3, 2:7].all() and framed[8, 2:7].all() and framed[3:9, 2].all() and framed[3:9, 6].all()
    assert framed.sum() == 2 * 5 + 2 * 4 and not framed[4:8, 3:6].any() and not img.any()  # a copy
    assert np.array_equal(triage.outline(img, (5, 5, 5, 8)), img)  # an empty box draws nothing
