"""Adaptation's fast path (screening/adapt_tail.py): the split network is the network, AdaBN moves the frozen
statistics to the new data, the frozen stages stay bitwise unchanged while the tail learns, the deadline holds, and
distillation keeps the anchor images' outputs near the parent's."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch

from screening.adapt import build_set, concat_sets
from screening.adapt_tail import (
    TailConfig,
    adabn,
    cache_features,
    distillation_loss,
    fit_tail,
    freeze_trunk,
    trunk_modules,
)
from screening.data import LabelledSet
from screening.network import NetConfig, ScreeningNet, build_network
from screening.train import TrainConfig
from xscreen.errors import ConfigError

CLASSES = ["firearm", "knife"]


def _net() -> ScreeningNet:
    return build_network(NetConfig(classes=tuple(CLASSES), input_size=32, width=4, embedding_dim=8, context=(2,)),
                         seed=3)


def _set(n: int, seed: int, level: int) -> LabelledSet:
    """`n` 32-pixel scans of grey level about `level`; every third has a bright 'knife' square (boxed)."""
    rng = np.random.default_rng(seed)
    images: list[np.ndarray] = []
    labels: list[tuple[str, ...]] = []
    boxes: list[list[tuple[str, tuple[float, float, float, float]]]] = []
    for i in range(n):
        img = np.clip(rng.normal(level, 20, (32, 32, 3)), 0, 255).astype(np.uint8)
        if i % 3 == 0:
            img[8:16, 8:16] = 20
            labels.append(("knife",))
            boxes.append([("knife", (0.25, 0.25, 0.5, 0.5))])
        else:
            labels.append(())
            boxes.append([])
        images.append(img)
    return build_set(images, labels, boxes, CLASSES, 32, f"s{seed}")


def test_the_split_network_is_the_network() -> None:
    net = _net().eval()
    x = torch.rand(3, 3, 32, 32)
    with torch.no_grad():
        whole = net(x)
        for k in range(len(net.stages) + 1):
            split = net.resume(net.trunk(x, k), k)
            assert torch.equal(split.any_logit, whole.any_logit) and torch.equal(split.class_cams, whole.class_cams)


def test_adabn_moves_the_frozen_statistics_to_the_new_data_and_leaves_the_weights() -> None:
    net = _net().eval()
    weights = {k: v.clone() for k, v in net.state_dict().items() if "running" not in k and "num_batches" not in k}
    target = _set(48, 1, level=60)  # dark scans: the stem's activations shift
    stem_bn = net.stem[1]
    assert isinstance(stem_bn, torch.nn.BatchNorm2d) and stem_bn.running_mean is not None
    with torch.no_grad():
        pre = net.stem[0](target.float_canvases(slice(None)) - 0.5)  # (N, C, H, W) before the stem's BatchNorm
    true_mean = pre.mean(dim=(0, 2, 3))
    before = (stem_bn.running_mean - true_mean).abs().mean()
    adabn(net, target, 2, batch=16)
    after = (stem_bn.running_mean - true_mean).abs().mean()
    assert after < 1e-4 < before, (before, after)  # cumulative average over equal batches: the data's mean
    late = net.state_dict()["stages.2.down.1.running_mean"]  # not in the trunk: untouched
    assert torch.equal(late, _net().state_dict()["stages.2.down.1.running_mean"])
    assert all(torch.equal(v, net.state_dict()[k]) for k, v in weights.items())
    assert not any(m.training for m in net.modules())


def _fit(net: ScreeningNet, deadline: float | None, epochs: int = 3) -> list[dict[str, float]]:
    params = freeze_trunk(net, 2)
    train, val = _set(48, 2, level=170), _set(24, 3, level=170)
    from screening.boxes import box_targets

    cfg = TrainConfig(epochs=epochs, batch_size=8, seed=1, progress=False)
    tcfg = TailConfig(frozen_stages=2, views=2)
    boxes = box_targets(train.files, train.geometries, train.class_labels, train.boxes, train.classes,
                        net.config.feature_size)
    cache = cache_features(net, train, tcfg, cfg, boxes, seed=1)
    assert cache.features.shape[:2] == (2, 48) and cache.maps is not None and cache.maps.shape[:2] == (2, 48)
    assert not torch.equal(cache.features[0], cache.features[1])  # the second view is augmented
    val_cache = cache_features(net, val, TailConfig(frozen_stages=2, views=1), cfg, None, seed=1)
    return fit_tail(net, params, train, cache, val, val_cache, cfg, 2, lr=3e-3, deadline=deadline)


def test_fine_tuning_the_tail_leaves_the_frozen_stages_bitwise_unchanged() -> None:
    net = _net()
    parent = {k: v.clone() for k, v in net.state_dict().items()}
    frozen = {f"{name}.{k}" for name, m in (("stem", net.stem), ("stages.0", net.stages[0]), ("stages.1", net.stages[1]))
              for k in m.state_dict()}
    assert {id(m) for m in trunk_modules(net, 2)} == {id(net.stem), id(net.stages[0]), id(net.stages[1])}
    history = _fit(net, None)
    assert len(history) == 3
    state = net.state_dict()
    assert all(torch.equal(state[k], parent[k]) for k in frozen)  # weights and BatchNorm statistics alike
    assert not torch.equal(state["any_head.weight"], parent["any_head.weight"])
    assert not torch.equal(state["stages.2.conv.0.weight"], parent["stages.2.conv.0.weight"])


def test_a_passed_deadline_leaves_one_short_epoch() -> None:
    history = _fit(_net(), time.perf_counter() - 1.0, epochs=5)
    assert len(history) == 1 and history[0]["steps"] == 4


@pytest.mark.parametrize("k", [-1, 5])
def test_freezing_more_stages_than_the_network_has_is_refused(k: int) -> None:
    with pytest.raises(ConfigError, match=f"adapt.frozen_stages {k} is outside 0..4: this network has 4 stages"):
        trunk_modules(_net(), k)


def test_distillation_loss_has_no_pull_where_the_outputs_are_the_parents() -> None:
    teacher = torch.tensor([[2.0, -1.0, 0.5], [-3.0, 0.0, 1.0]])
    any_logit, class_logits = teacher[:, 0].clone().requires_grad_(), teacher[:, 1:].clone().requires_grad_()
    loss = distillation_loss(any_logit, class_logits, teacher)
    loss.backward()
    assert any_logit.grad is not None and class_logits.grad is not None
    assert torch.allclose(any_logit.grad, torch.zeros(2), atol=1e-7)
    assert torch.allclose(class_logits.grad, torch.zeros(2, 2), atol=1e-7)
    p = torch.sigmoid(teacher)  # at the minimum the loss is the parent's own entropy, by hand:
    entropy = -(p * p.log() + (1 - p) * (1 - p).log())
    assert torch.isclose(loss, entropy[:, 0].mean() + entropy[:, 1:].mean())
    moved = distillation_loss(teacher[:, 0] + 1.0, teacher[:, 1:], teacher)
    assert moved > loss


def _drift_from_parent(distill_weight: float) -> tuple[float, float]:
    """Fine-tune the tail on a dark 'scanner' mixed with bright anchors (labelled, as the synthetic renders are);
    mean |any-threat logit - the parent's| on the anchors and on the dark scans afterwards."""
    net = _net()
    parent = _net().eval()
    params = freeze_trunk(net, 2)
    new, anchors = _set(48, 4, level=60), _set(48, 5, level=170)
    train = concat_sets([new, anchors])
    anchored = np.arange(len(train)) >= len(new)
    cfg = TrainConfig(epochs=4, batch_size=8, seed=1, progress=False)
    tcfg = TailConfig(frozen_stages=2, views=2, distill_weight=distill_weight)
    cache = cache_features(net, train, tcfg, cfg, None, seed=1, teacher=parent, anchored=anchored)
    assert cache.teacher is not None and cache.anchored is not None
    assert torch.equal(cache.anchored, torch.as_tensor(anchored))
    assert torch.isnan(cache.teacher[:, : len(new)]).all() and not torch.isnan(cache.teacher[:, len(new):]).any()
    with torch.no_grad():  # view 0 is the image as it is: the parent's logits on it
        o = parent(anchors.float_canvases(slice(None)))
    assert torch.allclose(cache.teacher[0, len(new):, 0], o.any_logit, atol=1e-5)
    assert torch.allclose(cache.teacher[0, len(new):, 1:], o.class_logits, atol=1e-5)
    val_cache = cache_features(net, train, TailConfig(frozen_stages=2, views=1), cfg, None, seed=1)
    fit_tail(net, params, train, cache, train, val_cache, cfg, 2, lr=3e-3, deadline=None,
             distill_weight=distill_weight)
    with torch.no_grad():
        drift = [(net(s.float_canvases(slice(None))).any_logit - parent(s.float_canvases(slice(None))).any_logit)
                 .abs().mean().item() for s in (anchors, new)]
    return drift[0], drift[1]


def test_distillation_keeps_the_anchor_images_near_the_parent_and_lets_the_new_ones_move() -> None:
    free_anchor, free_new = _drift_from_parent(0.0)
    kept_anchor, kept_new = _drift_from_parent(10.0)
    assert kept_anchor < 0.5 * free_anchor, (kept_anchor, free_anchor)
    # the new scanner's images still learn, and relatively more than the anchors (here they share every feature;
    # with weight 10: anchors keep 27% of their free drift, the new images 41%)
    assert kept_new / free_new > kept_anchor / free_anchor and kept_new > 0.2 * free_new, (kept_new, free_new)
