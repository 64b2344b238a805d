"""The threat library and projection into an unknown scanner: disjoint parts by article, seizure signatures,
storage, and projected threats that look like that scanner's own objects (not like our reference palette)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy.ndimage import binary_erosion

from xray.projection import as_rgb, estimate_look, paste_transmission, project_colour, project_raw
from xray.styles import render_styled, sample_style, style_rng
from xray.threat_library import (
    build_library,
    load_library,
    save_library,
    seizure_from_dual_energy,
    seizure_from_image,
)
from xray.tip import project_threat_rgb
from xscreen.errors import ConfigError


def test_library_parts_are_disjoint_by_article_and_deterministic() -> None:
    lib = build_library(["knife", "currency"], articles=3, poses=2, seed=3)
    parts = {p: {e.article for e in lib.part(p)} for p in ("training", "certification", "canary")}
    assert all(len(a) == 6 for a in parts.values())  # 3 articles x 2 classes per part
    assert not (parts["training"] & parts["certification"]) and not (parts["training"] & parts["canary"])
    assert not (parts["certification"] & parts["canary"])
    assert len(lib.part("training")) == 12  # every article in 2 poses
    again = build_library(["knife", "currency"], articles=3, poses=2, seed=3)
    assert all(np.array_equal(a.att_high, b.att_high) for a, b in zip(lib.entries, again.entries, strict=True))  # type: ignore[arg-type]
    e = lib.part("certification")[0]
    assert e.version == "1" and "render_threat" in e.provenance and e.att_high is not None and e.mask.any()
    with pytest.raises(ConfigError, match="unknown library part"):
        lib.part("test")


def test_library_survives_save_and_load(tmp_path: Path) -> None:
    lib = build_library(["ammunition"], articles=1, poses=1, seed=0, parts=("canary",))
    img = np.full((60, 80, 3), 240, np.uint8)
    img[20:40, 30:50] = (40, 60, 200)
    seized = seizure_from_image(img, (28, 18, 52, 42), "firearm", scan_id="s-1")
    save_library(type(lib)((*lib.entries, seized)), tmp_path / "lib")
    back = load_library(tmp_path / "lib")
    assert [e.article for e in back.entries] == [lib.entries[0].article, "seizure:s-1"]
    assert np.array_equal(back.entries[0].att_low, lib.entries[0].att_low)  # type: ignore[arg-type]
    assert back.entries[1].transmission is not None and back.entries[1].kind == "transmission"
    with pytest.raises(ConfigError, match="no threat library"):
        load_library(tmp_path)


def test_seizure_cut_from_a_pseudo_colour_scan_pastes_the_same_item_into_another_scan() -> None:
    img = np.full((60, 80, 3), 230, np.uint8)
    img[20:40, 30:50] = (46, 92, 184)  # the seized item, over a background of 230 in every channel
    seized = seizure_from_image(img, (28, 18, 52, 42), "knife", scan_id="s-2")
    assert seized.mask.sum() == 400  # exactly the item's pixels
    other = np.full((50, 50, 3), 230, np.uint8)
    out = paste_transmission(other, seized, (5, 5))
    assert tuple(out[5 + 2 + 5, 5 + 2 + 5]) == (46, 92, 184)
    with pytest.raises(ConfigError, match="inside"):
        seizure_from_image(img, (70, 10, 90, 20), "knife", scan_id="s-3")


def test_seizure_from_raw_dual_energy_is_the_log_attenuation_over_the_background() -> None:
    high, low = np.full((40, 40), 0.8, np.float32), np.full((40, 40), 0.7, np.float32)
    high[10:20, 10:20] *= np.exp(-0.5)
    low[10:20, 10:20] *= np.exp(-1.5)
    e = seizure_from_dual_energy(high, low, (8, 8, 22, 22), "firearm", scan_id="s-4")
    assert e.att_high is not None and e.att_low is not None
    assert np.isclose(e.att_high.max(), 0.5, atol=1e-5) and np.isclose(e.att_low.max(), 1.5, atol=1e-5)
    assert e.mask.sum() == 100
    h2, l2 = project_raw(np.ones((30, 30), np.float32), np.ones((30, 30), np.float32), e, (0, 0))
    assert np.isclose(h2.min(), np.exp(-0.5), atol=1e-5) and np.isclose(l2.min(), np.exp(-1.5), atol=1e-5)


def _stats(img: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """(mean R, G, B, 75th percentile of the brightness gradient on the threat's outline) over its pixels."""
    rgb = as_rgb(img)
    gy, gx = np.gradient(rgb.mean(axis=2))
    edge = mask & ~binary_erosion(mask, iterations=2)
    return np.array([*rgb[mask].mean(axis=0), np.percentile(np.hypot(gx, gy)[edge], 75)])


@pytest.mark.slow
def test_projection_into_a_held_out_scanner_looks_like_its_own_threats_not_like_a_reference_paste() -> None:
    """A scanner style training never sees: its look is estimated from 20 of its benign scans; metal threats
    (knives, firearms) projected into 10 other benign scans are compared with threats the renderer draws in that
    same style (the ground truth), and with the same threats pasted through the reference palette (xray.tip)."""
    classes = ["knife", "firearm"]
    style = sample_style(style_rng(31, 0), "heldout")
    bg = [render_styled(np.random.default_rng([1, i]), style, classes=classes, threat_rate=0.0, max_side=256)[1].image
          for i in range(30)]
    look = estimate_look(bg[:20])
    truth, truth_pixels = [], []
    for i in range(20):
        _, sc = render_styled(np.random.default_rng([2, i]), style, classes=classes, threat_rate=1.0, max_side=256)
        for k, m in sc.masks.items():
            x0, y0, x1, y1 = sc.objects[k].box
            full = np.zeros(sc.image.shape[:2], bool)
            full[y0:y1, x0:x1] = m
            truth.append(_stats(sc.image, full))
            truth_pixels.append(as_rgb(sc.image)[full])
    lib = build_library(classes, articles=4, poses=2, seed=0, parts=("training",), split="heldout")  # its families
    rng = np.random.default_rng(0)
    ours, pasted = [], []
    pixels: dict[str, list[np.ndarray]] = {"ours": [], "paste": [], "truth": truth_pixels}
    for i, e in enumerate(lib.entries):
        img = bg[20 + i % 10]
        out, (x0, y0, x1, y1), m = project_colour(img, e, look, rng)
        full = np.zeros(img.shape[:2], bool)
        full[y0:y1, x0:x1] = m
        ours.append(_stats(out, full))
        pixels["ours"].append(as_rgb(out)[full])
        sig = e.signature()
        (H, W), (h, w) = img.shape[:2], sig.shape
        if h < H and w < W:
            tl = ((H - h) // 2, (W - w) // 2)
            full = np.zeros((H, W), bool)
            full[tl[0]:tl[0] + h, tl[1]:tl[1] + w] = sig.mask
            pasted_img = project_threat_rgb(img, sig, tl)
            pasted.append(_stats(pasted_img, full))
            pixels["paste"].append(as_rgb(pasted_img)[full])
    t, o, p = (np.nanmedian(np.array(x), axis=0) for x in (truth, ours, pasted))
    # the colours a threat shows must be colours this scanner shows: the share of threat pixels farther than 20
    # grey levels from every one of its benign pixels (its colour manifold, sampled)
    from scipy.spatial import cKDTree

    manifold = cKDTree(np.concatenate([as_rgb(b).reshape(-1, 3)[::7] for b in bg[:20]]))
    off = {k: float(np.mean(manifold.query(np.concatenate(v))[0] > 20.0)) for k, v in pixels.items()}
    print(t, o, p, off)
    # measured (seed 31's held-out style): its own rendered threats 0%, ours 4.5%, the reference paste 20%
    assert off["ours"] < 0.06 and off["paste"] > 3 * off["ours"], off
