"""Network shapes, letterbox geometry, determinism, and checkpoint save/load refusals."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

from screening.classifier import Classifier, peak_box, verdict_fields
from screening.network import NetConfig, build_network
from screening.preprocess import fit_geometry, letterbox
from screening.registry import Checkpoint, load_checkpoint, save_checkpoint
from xscreen.errors import BadScanError, ModelError
from xscreen.records import decode_heatmap, encode_heatmap

CLASSES = ("knife", "firearm", "battery")
TINY = NetConfig(classes=CLASSES, input_size=64, width=4, embedding_dim=8)


def _ckpt(net: torch.nn.Module, config: NetConfig = TINY, version: str = "v1") -> Checkpoint:
    th = {c: {"clear": 0.2, "inspect": 0.6} for c in [*config.classes, "any_threat"]}
    return Checkpoint(version, config, net.state_dict(), {"any_threat": 1.5}, th, {"alpha": 0.05}, {"auc": 0.9})


def test_network_output_shapes_and_normalised_embedding() -> None:
    out = build_network(TINY, seed=0).eval()(torch.rand(5, 3, 64, 64))
    assert out.class_logits.shape == (5, 3) and out.any_logit.shape == (5,)
    assert out.class_cams.shape == (5, 3, 4, 4) and out.any_cam.shape == (5, 4, 4)
    assert torch.allclose(out.embedding.norm(dim=1), torch.ones(5), atol=1e-5)


def test_same_seed_gives_same_weights_and_outputs() -> None:
    x = torch.rand(2, 3, 64, 64)
    a, b = build_network(TINY, seed=7).eval(), build_network(TINY, seed=7).eval()
    assert torch.equal(a(x).class_logits, b(x).class_logits)
    assert not torch.equal(a(x).class_logits, build_network(TINY, seed=8).eval()(x).class_logits)


def test_letterbox_keeps_aspect_and_pads_with_empty_beam() -> None:
    img = np.zeros((50, 100, 3), np.float32)  # wide, black
    canvas, [geo] = letterbox([img], 64)
    assert canvas.shape == (1, 3, 64, 64)
    assert (geo.new_w, geo.new_h, geo.top, geo.left) == (64, 32, 16, 0)
    assert torch.all(canvas[0, :, :16] == 1.0) and torch.all(canvas[0, :, 17:47] == 0.0)
    assert geo.canvas_box_to_image((0.0, 0.25, 1.0, 0.75)) == pytest.approx((0, 0, 1, 1))
    assert geo.image_box_to_canvas((0.5, 0.5, 1.0, 1.0)) == pytest.approx((0.5, 0.5, 1.0, 0.75))
    gray, [g2] = letterbox([np.full((10, 10), 128, np.uint8)], 64)
    assert gray.shape == (1, 3, 64, 64) and g2 == fit_geometry(10, 10, 64)


def test_letterbox_refuses_bad_arrays_with_typed_error() -> None:
    with pytest.raises(BadScanError, match=r"image\[1\].*shape"):
        letterbox([np.ones((8, 8, 3)), np.ones((8, 8, 4))], 64)
    with pytest.raises(BadScanError, match="NaN"):
        letterbox([np.full((8, 8, 3), np.nan)], 64)


def test_checkpoint_round_trip_predicts_identically(tmp_path: Path) -> None:
    net = build_network(TINY, seed=1)
    path = tmp_path / "v1" / "model.pt"
    save_checkpoint(_ckpt(net), path)
    rng = np.random.default_rng(0)
    imgs = [rng.random((40, 70, 3)).astype(np.float32), rng.random((90, 30, 3)).astype(np.float32)]
    a = Classifier.from_checkpoint(path, expected_classes=list(CLASSES), heatmap_size=8).predict(imgs)
    b = Classifier(net.eval(), _ckpt(net), heatmap_size=8).predict(imgs)
    assert [p.scores for p in a] == [p.scores for p in b]
    p = a[0]
    assert p.verdict in {"inspect", "clear", "uncertain"} and p.model_version == "v1"
    assert len(p.heatmaps) == 2 and all(h.shape == (8, 8) and 0 <= h.min() and h.max() <= 1 for h in p.heatmaps.values())
    assert p.embedding.shape == (8,)
    fields = verdict_fields(p)
    c = next(iter(fields["heatmaps"]))
    assert np.allclose(decode_heatmap(fields["heatmaps"][c], 8), p.heatmaps[c], atol=1 / 255)


def test_checkpoint_mismatches_are_refused_by_name(tmp_path: Path) -> None:
    net = build_network(TINY, seed=1)
    path = tmp_path / "model.pt"
    save_checkpoint(_ckpt(net), path)
    with pytest.raises(ModelError, match="class list"):
        load_checkpoint(path, expected_classes=["knife", "firearm"])
    with pytest.raises(ModelError, match="checksum"):
        load_checkpoint(path, expected_sha256="0" * 64)
    path.write_bytes(path.read_bytes()[:-10] + b"corrupted!")
    with pytest.raises(ModelError, match="checksum"):
        load_checkpoint(path)
    other = dataclasses.replace(TINY, arch="resnet-9000")
    bad = tmp_path / "arch.pt"
    save_checkpoint(_ckpt(net, other), bad)
    with pytest.raises(ModelError, match="architecture 'resnet-9000'"):
        load_checkpoint(bad)
    wider = tmp_path / "wider.pt"
    save_checkpoint(_ckpt(net, dataclasses.replace(TINY, width=8)), wider)
    with pytest.raises(ModelError, match="do not fit the architecture"):
        Classifier.from_checkpoint(wider)


def test_peak_box_and_heatmap_codec() -> None:
    hm = np.zeros((8, 8), np.float32)
    hm[2:4, 5:7] = 1.0
    hm[6, 0] = 0.4
    assert peak_box(hm) == (5 / 8, 2 / 8, 7 / 8, 4 / 8)
    assert decode_heatmap(encode_heatmap(hm), 8)[2, 5] == 1.0


def test_heatmap_maps_canvas_evidence_back_to_image_coordinates() -> None:
    from screening.classifier import image_heatmap

    # A 200 x 100 (w x h) image letterboxed to 64: it fills rows 16..48 of the canvas. Evidence in the canvas cell
    # covering canvas x in [48, 64), y in [32, 48) is the image's right half, lower half.
    _, [geo] = letterbox([np.zeros((100, 200, 3), np.float32)], 64)
    cam = torch.zeros(4, 4)
    cam[2, 3] = 5.0
    hm = image_heatmap(cam, geo, 16)
    r, c = np.unravel_index(int(np.argmax(hm)), hm.shape)
    x, y = (c + 0.5) / 16, (r + 0.5) / 16
    assert 0.75 <= x <= 1.0 and 0.5 <= y <= 1.0
    assert hm.max() == pytest.approx(1.0) and hm.min() == pytest.approx(0.0)


def test_tip_projects_a_labelled_threat_into_benign_planes() -> None:
    from screening.augment import TipBank

    bank = TipBank(["knife", "firearm"], canvas=64, per_class=2, seed=0)
    planes = torch.ones(2, 64, 64)  # an empty beam: any projected threat shows
    canvas, j = bank.project(planes, np.random.default_rng(0), "reference")
    assert canvas.shape == (3, 64, 64) and j in (0, 1)
    assert float(canvas.min()) < 0.9  # something dense was projected onto the white canvas
