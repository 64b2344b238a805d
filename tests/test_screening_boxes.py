"""Box supervision: coverage maps from generator boxes, which images get dense targets, flips, and the dense loss."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from screening.augment import apply_flips
from screening.boxes import box_targets, coverage_map
from screening.preprocess import fit_geometry
from screening.train import DenseTargets, loss_fn

CLASSES = ["knife", "firearm"]


def test_coverage_is_the_share_of_each_cell_inside_the_box() -> None:
    geo = fit_geometry(100, 100, 64)  # square image: canvas fractions = image fractions
    cov = coverage_map([("knife", (0.25, 0.5, 0.5, 0.625))], geo, CLASSES, grid=8)  # cells 2..3 x 4 (rows)
    assert cov.shape == (2, 8, 8)
    assert cov[1].sum() == 0  # nothing for the firearm channel
    assert cov[0, 4, 2] == pytest.approx(1.0) and cov[0, 4, 3] == pytest.approx(1.0)
    assert cov[0].sum() == pytest.approx(2.0)  # the box covers exactly two cells
    half = coverage_map([("firearm", (0.0, 0.0, 0.0625, 0.125))], geo, CLASSES, grid=8)
    assert half[1, 0, 0] == pytest.approx(0.5)  # half a cell wide, one cell high


def test_letterbox_offset_moves_the_box_onto_the_canvas() -> None:
    geo = fit_geometry(50, 100, 64)  # wide image: 32 rows of padding split above and below
    cov = coverage_map([("knife", (0.0, 0.0, 1.0, 1.0))], geo, CLASSES, grid=8)
    assert cov[0, 0].sum() == 0 and cov[0, 7].sum() == 0  # padding rows carry no target
    assert cov[0, 2:6].sum() == pytest.approx(32.0)


def test_only_images_with_boxes_for_every_label_get_targets() -> None:
    files = [Path("benign.png"), Path("boxed.png"), Path("unboxed.png"), Path("unknown.png")]
    geos = [fit_geometry(64, 64, 64)] * 4
    labels = np.array([[0, 0], [1, 0], [0, 1], [-1, -1]])
    boxes = {"boxed.png": [("knife", (0.1, 0.1, 0.3, 0.3))]}
    maps, known = box_targets(files, geos, labels, boxes, CLASSES, grid=4)
    assert known.tolist() == [True, True, False, False]
    assert float(maps[0].sum()) == 0.0 and float(maps[1, 0].sum()) > 0


def test_flips_move_targets_with_the_image() -> None:
    x = torch.zeros(1, 1, 4, 4)
    x[0, 0, 0, 0] = 1
    flipped = apply_flips(x, (torch.tensor([True]), torch.tensor([False])))
    assert flipped[0, 0, 0, 3] == 1  # horizontal flip: left column -> right column


def test_dense_loss_prefers_heatmaps_on_the_box() -> None:
    target = torch.zeros(1, 2, 4, 4)
    target[0, 0, 1, 1] = 1.0
    on_box = torch.full((1, 2, 4, 4), -4.0)
    on_box[0, 0, 1, 1] = 4.0
    off_box = torch.full((1, 2, 4, 4), -4.0)
    off_box[0, 0, 3, 3] = 4.0
    dense = DenseTargets(target, torch.tensor([True]), torch.zeros(2), torch.zeros(1), weight=1.0)

    def loss(cams: torch.Tensor) -> float:
        o = SimpleNamespace(any_logit=torch.zeros(1), class_logits=torch.tensor([[2.0, -2.0]]), class_cams=cams,
                            any_cam=cams.amax(dim=1))
        return float(loss_fn(o, torch.tensor([1]), torch.tensor([[1, 0]]), dense))

    assert loss(on_box) < loss(off_box)
    unknown = DenseTargets(target, torch.tensor([False]), torch.zeros(2), torch.zeros(1), weight=1.0)
    o = SimpleNamespace(any_logit=torch.zeros(1), class_logits=torch.tensor([[2.0, -2.0]]), class_cams=off_box,
                        any_cam=off_box.amax(dim=1))
    assert float(loss_fn(o, torch.tensor([1]), torch.tensor([[1, 0]]), unknown)) == pytest.approx(
        float(loss_fn(o, torch.tensor([1]), torch.tensor([[1, 0]]))))  # no known boxes: image loss only
