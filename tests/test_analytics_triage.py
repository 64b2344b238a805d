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
