"""The training loop's GPU-lease options on a tiny rendered set: a wall-clock budget with a one-cycle schedule that
follows time, batches made in a background thread and canvases kept on the device (the same batches as without),
bfloat16 autocast, and a rendering budget sized by a probe."""

from __future__ import annotations

import time
import types

import numpy as np
import pytest
import torch

from screening.augment import AugmentConfig
from screening.data import LabelledSet
from screening.network import NetConfig, build_network
from screening.synthetic import render_set
from screening.train import TrainConfig, fit, one_cycle_lr, split_for_training
from xscreen.errors import ModelError
from xscreen.settings import DEFAULT_CLASSES

TINY = NetConfig(classes=tuple(DEFAULT_CLASSES), input_size=64, width=4, embedding_dim=8, context=(2,))


@pytest.fixture(scope="module")
def tiny_splits() -> tuple[LabelledSet, LabelledSet, LabelledSet]:
    data, _ = render_set(80, 21, list(DEFAULT_CLASSES), 64, workers=1, progress=False, style="train", for_training=True)
    return split_for_training(data, TrainConfig(seed=3))


def test_one_cycle_lr_follows_torchs_one_cycle_schedule() -> None:
    max_lr, total = 3e-3, 400
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=max_lr)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=max_lr, total_steps=total, pct_start=0.15)
    torch_lrs = []
    for _ in range(total):
        torch_lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    ours = [one_cycle_lr(k / (total - 1), max_lr) for k in range(total)]
    # The same curve; torch ends its warm-up a step earlier (at pct_start * total - 1), hence the tolerance.
    assert np.max(np.abs(np.array(ours) - np.array(torch_lrs))) < 0.03 * max_lr
    assert one_cycle_lr(0.0, max_lr) == pytest.approx(max_lr / 25)
    assert one_cycle_lr(0.15, max_lr) == pytest.approx(max_lr)
    assert one_cycle_lr(1.0, max_lr) == pytest.approx(max_lr / 25 / 1e4)
    assert one_cycle_lr(2.0, max_lr) == one_cycle_lr(1.0, max_lr)  # past the end: stays at the end


def test_a_budget_ends_training_when_spent_with_the_schedule_annealed(
        tiny_splits: tuple[LabelledSet, ...], monkeypatch: pytest.MonkeyPatch) -> None:
    import screening.train as train_module

    # A clock that moves 10 ms each time it is read, so that the budget is spent after the same steps on any
    # machine (a real 2 s budget was one epoch or five depending on the neighbours).
    ticks = iter(range(10**9))
    monkeypatch.setattr(train_module, "time", types.SimpleNamespace(
        perf_counter=lambda: next(ticks) * 0.01, process_time=time.process_time))
    train, val, _ = tiny_splits
    steps_per_epoch = len(train) // 8
    net = build_network(TINY, seed=3)
    budget, max_lr = 1.0, 3e-3
    history = fit(net, train, val, TrainConfig(epochs=1, batch_size=8, lr=max_lr, seed=3, progress=False,
                                               budget_s=budget))
    # epochs=1 is ignored under a budget: it trains epoch after epoch until the budget is spent, the last one cut
    # short (100 clock readings: one a step, two an epoch)...
    assert len(history) > 1
    assert all(h["steps"] == steps_per_epoch for h in history[:-1])
    assert 1 <= history[-1]["steps"] <= steps_per_epoch
    assert 60 <= sum(h["steps"] for h in history) < 100
    # ...and the learning rate followed one cycle over the budget: up to its peak, down to nearly nothing.
    assert max(h["lr"] for h in history) > 0.5 * max_lr
    assert history[-1]["lr"] < 0.01 * max_lr
    assert all(np.isfinite(h["loss"]) for h in history)


def test_a_budget_that_is_not_positive_is_refused(tiny_splits: tuple[LabelledSet, ...]) -> None:
    train, val, _ = tiny_splits
    with pytest.raises(ModelError, match="budget"):
        fit(build_network(TINY, seed=3), train, val, TrainConfig(budget_s=0.0, progress=False))


def test_prefetched_batches_and_resident_canvases_train_exactly_the_same_weights(
        tiny_splits: tuple[LabelledSet, ...]) -> None:
    # What a GPU run turns on (batches made in a thread, canvases kept on the device and gathered there, only the
    # JPEG'd ones crossing over) must train the very network the plain loop trains: same draws, same pixels.
    train, val, _ = tiny_splits
    augment = AugmentConfig(jpeg_p=0.5, tone_p=0.5)
    weights = []
    for prefetch, resident in ((False, False), (True, False), (True, True)):
        net = build_network(TINY, seed=3)
        fit(net, train, val, TrainConfig(epochs=2, batch_size=8, seed=3, progress=False, augment=augment,
                                         prefetch=prefetch, resident=resident))
        weights.append(net.state_dict())
    for other in weights[1:]:
        for name, w in weights[0].items():
            assert torch.equal(w, other[name]), name


def test_an_error_making_a_batch_in_the_background_reaches_the_training_loop(
        tiny_splits: tuple[LabelledSet, ...], monkeypatch: pytest.MonkeyPatch) -> None:
    import screening.train as train_module

    def broken_batch(*args: object, **kwargs: object) -> None:
        raise RuntimeError("canvas store unreadable")

    monkeypatch.setattr(train_module, "_batch", broken_batch)
    train, val, _ = tiny_splits
    with pytest.raises(RuntimeError, match="canvas store unreadable"):
        fit(build_network(TINY, seed=3), train, val, TrainConfig(epochs=1, batch_size=8, progress=False, prefetch=True))


def test_bfloat16_autocast_trains_to_finite_losses(tiny_splits: tuple[LabelledSet, ...]) -> None:
    train, val, _ = tiny_splits
    net = build_network(TINY, seed=3)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    history = fit(net, train, val, TrainConfig(epochs=2, batch_size=8, seed=3, progress=False, amp=True))
    assert all(np.isfinite(h["loss"]) for h in history)
    assert any(not torch.equal(before[k], v) for k, v in net.state_dict().items() if v.is_floating_point())
    assert all(v.dtype == before[k].dtype for k, v in net.state_dict().items())  # master weights stay float32


def test_a_render_budget_sizes_the_training_set_from_a_probe_within_its_cap() -> None:
    from screening.reference import parcels_for

    classes = list(DEFAULT_CLASSES)
    # An hour of rendering is more than the cap on any machine; a microsecond is less than the probe itself.
    assert parcels_for(3600.0, 64, classes, "train", 1, cap=30, probe=4) == 30
    assert parcels_for(1e-6, 64, classes, "train", 1, cap=30, probe=4) == 4
