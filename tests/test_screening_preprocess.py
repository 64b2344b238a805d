"""The uint8 letterbox, PreparedScans and batched heatmaps: same geometry and (within one grey level) the same
canvases as the float path; the batched heatmaps equal the per-image ones; predict gives the same answer for
raw images and for scans prepared where they were decoded."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from screening.classifier import Classifier, batch_heatmaps, image_heatmap
from screening.network import NetConfig, build_network
from screening.preprocess import (
    PreparedScan,
    _as_chw,
    _place,
    canvas_batch,
    fit_geometry,
    letterbox_one,
    letterbox_uint8,
    prepare,
)
from screening.registry import Checkpoint
from xscreen.errors import BadScanError

CLASSES = ("knife", "firearm", "battery", "narcotics")
TINY = NetConfig(classes=CLASSES, input_size=64, width=4, embedding_dim=8)


def _image(h: int, w: int, seed: int = 0) -> np.ndarray:
    """Smooth shapes plus noise and sharp edges: a fair test of a resize filter."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    base = 128 + 100 * np.sin(xx / 7.0)[:, :, None] * np.cos(yy / 11.0)[:, :, None] * np.array([1.0, 0.6, -0.8])
    base[h // 3 : h // 2, w // 4 : w // 2] = (20, 200, 90)
    return np.clip(base + rng.normal(0, 12, (h, w, 3)), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("shape,size", [((553, 512), 256), ((300, 1000), 256), ((80, 90), 256), ((512, 512), 64),
                                        ((37, 200), 64)])
def test_uint8_letterbox_matches_the_float_path_within_one_grey_level(shape: tuple[int, int], size: int) -> None:
    img = _image(*shape)
    canvas, geo = letterbox_uint8(img, size)
    ref, ref_geo = _place(_as_chw(img, 0), size)  # the float32 torch path (F.interpolate, antialias=True)
    assert geo == ref_geo == fit_geometry(*shape, size)
    assert canvas.dtype == np.uint8 and canvas.shape == (3, size, size)
    diff = np.abs(canvas.astype(np.float32) - ref.numpy() * 255)
    assert diff.max() <= 1.0 + 1e-3, diff.max()  # rounding to uint8, nothing more
    assert diff.mean() < 0.3


def test_padding_is_empty_beam_and_the_image_fills_its_geometry() -> None:
    canvas, geo = letterbox_uint8(np.zeros((100, 200, 3), np.uint8), 64)
    inside = np.zeros((64, 64), bool)
    inside[geo.top : geo.top + geo.new_h, geo.left : geo.left + geo.new_w] = True
    assert (canvas[:, inside] == 0).all() and (canvas[:, ~inside] == 255).all()
    assert (geo.new_h, geo.new_w, geo.top, geo.left) == (32, 64, 16, 0)


def test_a_thin_wire_survives_a_four_fold_reduction() -> None:
    """Antialiasing: a 1-pixel dark wire in a 1024-pixel scan still darkens the 256-pixel canvas, on every row."""
    img = np.full((1024, 1024, 3), 230, np.uint8)
    img[:, 512] = 0  # a vertical wire one pixel wide, between the sampling points of a plain 4x decimation
    canvas, _ = letterbox_uint8(img, 256)
    assert canvas[0].min(axis=1).max() < 200  # every row shows the wire (plain bilinear sampling would miss it)


def test_gray_uint8_is_repeated_to_three_channels() -> None:
    gray = _image(90, 120)[:, :, 0]
    canvas, geo = letterbox_uint8(gray, 64)
    assert (canvas[0] == canvas[1]).all() and (canvas[1] == canvas[2]).all()
    rgb_canvas, rgb_geo = letterbox_uint8(np.repeat(gray[:, :, None], 3, axis=2), 64)
    assert geo == rgb_geo and np.array_equal(canvas, rgb_canvas)


def test_letterbox_one_takes_the_uint8_path_and_refuses_bad_shapes_as_before() -> None:
    img = _image(120, 90)
    canvas, geo = letterbox_one(img, 64)
    assert canvas.dtype == torch.float32 and canvas.shape == (3, 64, 64)
    np.testing.assert_array_equal(canvas.numpy(), letterbox_uint8(img, 64)[0] / np.float32(255))
    with pytest.raises(BadScanError) as info:
        letterbox_one(np.zeros((8, 8, 4), np.uint8), 64, index=3)
    assert info.value.reason_code == "bad_shape" and "image[3]" in str(info.value)


def test_prepare_keeps_8bit_sources_uint8_and_refuses_a_canvas_of_another_size() -> None:
    img = _image(70, 50)
    scan = type("Scan", (), {"rgb8": img, "rgb": img / np.float32(255)})()
    assert prepare(scan, 64).canvas.dtype == np.uint8
    float_prep = prepare(img / np.float32(255), 64)
    assert float_prep.canvas.dtype == np.float32
    assert np.abs(float_prep.canvas * 255 - prepare(img, 64).canvas).max() <= 1.0 + 1e-3
    with pytest.raises(ValueError, match="prepared for a 64-pixel canvas"):
        prepare(prepare(img, 64), 32)


def test_canvas_batch_is_channels_last_float_in_unit_range() -> None:
    preps = [prepare(_image(60 + 10 * i, 80, i), 64) for i in range(3)]
    x = canvas_batch(preps)
    assert x.shape == (3, 3, 64, 64) and x.dtype == torch.float32
    assert x.is_contiguous(memory_format=torch.channels_last)
    np.testing.assert_array_equal(x.numpy(), np.stack([p.canvas for p in preps]) / np.float32(255))
    mixed = canvas_batch([preps[0], PreparedScan(preps[1].canvas / np.float32(255), preps[1].geometry)])
    np.testing.assert_allclose(mixed.numpy(), x.numpy()[:2], atol=1e-7)


@pytest.mark.parametrize("cam,size,grid", [(4, 64, 8), (16, 256, 32), (8, 256, 32), (16, 256, 7)])
def test_batched_heatmaps_equal_the_per_image_ones(cam: int, size: int, grid: int) -> None:
    shapes = [(100, 200), (100, 200), (300, 90), (64, 64), (553, 512), (17, 400), (300, 90), (4000, 3000)]
    geos = [fit_geometry(h, w, size) for h, w in shapes]
    cams = torch.randn(len(geos), cam, cam)
    cams[3] = 0.0  # a flat map: no peak to scale by
    batched = batch_heatmaps(cams, geos, grid)
    assert batched.shape == (len(geos), grid, grid) and batched.dtype == np.float32
    for i, geo in enumerate(geos):
        np.testing.assert_allclose(batched[i], image_heatmap(cams[i], geo, grid), rtol=0, atol=3e-6)  # a few float32 ulps


def _classifier(heatmap_classes: int = 2) -> Classifier:
    net = build_network(TINY, seed=0).eval()
    th = {c: {"clear": 0.2, "inspect": 0.6} for c in [*CLASSES, "any_threat"]}
    ckpt = Checkpoint("v1", TINY, net.state_dict(), {"any_threat": 1.5}, th, {}, {})
    return Classifier(net, ckpt, heatmap_size=8, heatmap_classes=heatmap_classes, batch_size=4)


def test_predict_on_prepared_scans_equals_predict_on_raw_images() -> None:
    clf = _classifier()
    images = [_image(90 + 7 * i, 120, i) for i in range(6)]
    raw = clf.predict(images)
    prepared = clf.predict([prepare(im, clf.input_size) for im in images])
    for a, b in zip(raw, prepared, strict=True):
        assert a.scores == b.scores and a.verdict == b.verdict and a.top_class == b.top_class
        assert a.heatmaps.keys() == b.heatmaps.keys() and len(a.heatmaps) == 2
        for c in a.heatmaps:
            np.testing.assert_array_equal(a.heatmaps[c], b.heatmaps[c])
        assert a.peak_boxes == b.peak_boxes


def test_stored_heatmaps_are_those_of_the_top_classes_as_computed_one_by_one() -> None:
    """The batched path picks the same classes and maps as the former per-image loop."""
    clf = _classifier(heatmap_classes=3)
    images = [_image(100, 60 + 20 * i, i) for i in range(5)]
    preps = [prepare(im, clf.input_size) for im in images]
    with torch.inference_mode():
        _, p_cls, out = clf.scores(canvas_batch(preps))
    for b, pred in enumerate(clf.predict(images)):
        order = np.argsort(-p_cls[b])[:3]
        assert list(pred.heatmaps) == [CLASSES[j] for j in order]
        for j in order:
            expected = image_heatmap(out.class_cams[b, j].float(), preps[b].geometry, 8)
            np.testing.assert_allclose(pred.heatmaps[CLASSES[j]], expected, rtol=0, atol=1e-6)
