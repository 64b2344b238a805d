"""labels.csv parsing (partial labels, unknown classes), splits, balanced sampling, masked loss, augmentation."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from screening.augment import AugmentConfig, photometric
from screening.data import LabelError, balanced_weights, read_labels, split_indices, targets
from screening.train import loss_fn

CLASSES = ["knife", "firearm"]


def _folder(tmp_path: Path, rows: list[tuple[str, str]]) -> Path:
    for name, _ in rows:
        (tmp_path / name).write_bytes(b"not read here")
    (tmp_path / "labels.csv").write_text("file,labels\n" + "".join(f"{n},{lab}\n" for n, lab in rows))
    return tmp_path


def test_partial_labels_become_any_threat_only_targets(tmp_path: Path) -> None:
    rows = read_labels(_folder(tmp_path, [("a.png", ""), ("b.png", "knife|firearm"), ("c.png", "threat")]), CLASSES)
    any_y, cls_y = targets(rows, CLASSES)
    assert any_y.tolist() == [0, 1, 1]
    assert cls_y.tolist() == [[0, 0], [1, 1], [-1, -1]]


def test_unknown_class_names_file_and_line(tmp_path: Path) -> None:
    folder = _folder(tmp_path, [("a.png", ""), ("b.png", "knife|bazooka")])
    with pytest.raises(LabelError, match=r"line 3 \(b.png\): unknown class 'bazooka'"):
        read_labels(folder, CLASSES)


def test_missing_file_and_missing_csv_are_named(tmp_path: Path) -> None:
    with pytest.raises(LabelError, match="no labels.csv"):
        read_labels(tmp_path, CLASSES)
    (tmp_path / "labels.csv").write_text("file,labels\nghost.png,knife\n")
    with pytest.raises(LabelError, match="'ghost.png' does not exist"):
        read_labels(tmp_path, CLASSES)


def test_masked_loss_ignores_unknown_classes() -> None:
    out = SimpleNamespace(any_logit=torch.zeros(2), class_logits=torch.tensor([[5.0, -5.0], [100.0, -100.0]]))
    known = loss_fn(out, torch.tensor([1, 1]), torch.tensor([[1, 0], [-1, -1]]))
    only_first = loss_fn(SimpleNamespace(any_logit=torch.zeros(1), class_logits=out.class_logits[:1]),
                         torch.tensor([1]), torch.tensor([[1, 0]]))
    assert known.item() == pytest.approx(only_first.item())  # the class-unknown row adds no class loss


def test_split_is_deterministic_disjoint_and_stratified() -> None:
    y = np.array([0] * 60 + [1] * 40)
    a = split_indices(y, [0.15, 0.2], seed=3)
    b = split_indices(y, [0.15, 0.2], seed=3)
    assert all(np.array_equal(p, q) for p, q in zip(a, b, strict=True))
    assert sorted(np.concatenate(a).tolist()) == list(range(100))
    assert [len(p) for p in a] == [65, 15, 20] and y[a[2]].sum() == 8


def test_balanced_weights_keep_benign_share_and_equalise_threat_classes() -> None:
    any_y = np.array([0] * 6 + [1] * 4)
    cls_y = np.array([[0, 0]] * 6 + [[1, 0]] * 3 + [[0, 1]])
    w = balanced_weights(any_y, cls_y)
    assert w[:6].sum() == pytest.approx(0.6)
    assert w[6:9].sum() == pytest.approx(0.2) and w[9] == pytest.approx(0.2)


def test_photometric_augmentation_is_seeded_and_in_range() -> None:
    x = torch.rand(4, 3, 16, 16)
    a = photometric(x, AugmentConfig(), torch.Generator().manual_seed(1))
    b = photometric(x, AugmentConfig(), torch.Generator().manual_seed(1))
    assert torch.equal(a, b) and a.min() >= 0 and a.max() <= 1 and not torch.equal(a, x)
