"""Fast adaptation on a CPU: re-estimate the frozen trunk's BatchNorm statistics on the new data (AdaBN), cache
its features once, and fine-tune only the last stages and the heads on the cache, within a deadline.

Why: a full fine-tuning step of the 288-pixel network costs the whole forward and backward pass; the stem and the
first stages are half the forward work at full resolution and hold generic edge and texture filters that a new
scanner does not need changed, only re-normalised (its palette and tone curve shift their activation statistics,
which is what AdaBN corrects, Li et al. 2016). Frozen, their output is a fixed function of the canvas, so it is
computed once per image and view, and each training step runs only the tail (the last stage, the context
blocks and the heads: about half the forward work and none of the trunk's backward).
Augmentation happens before caching: every image is cached as it is and in `views - 1` augmented views (flips,
gain, colour jitter, blur, noise: screening.augment.photometric), and each step picks one view per image.
"""

from __future__ import annotations

import copy
import logging
import time
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from tqdm import tqdm

from screening.augment import apply_flips, photometric, random_flips
from screening.data import LabelledSet, balanced_weights
from screening.network import ScreeningNet
from screening.train import DenseTargets, TrainConfig, loss_fn, validation_aps
from xscreen.errors import ConfigError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TailConfig:
    """What is frozen and how the cache is made (defaults: the `adapt` settings)."""

    frozen_stages: int = 3  # stages after the stem kept frozen (and cached); the rest and the heads are trained
    views: int = 2  # cached views per image: as it is, plus views - 1 augmented ones
    adabn: bool = True  # re-estimate the trunk's BatchNorm statistics on the adaptation data first
    batch: int = 32  # images per forward pass while estimating statistics and caching
    adabn_images: int = 512  # most images the statistics are estimated on (a random share of the set)
    distill_weight: float = 1.0  # weight of the loss keeping the parent's outputs on anchor images (fit_tail; needs a teacher)


def trunk_modules(net: ScreeningNet, frozen_stages: int) -> list[nn.Module]:
    """The modules `net.trunk(x, frozen_stages)` runs: the stem and the first `frozen_stages` stages."""
    if not 0 <= frozen_stages <= len(net.stages):
        raise ConfigError(f"adapt.frozen_stages {frozen_stages} is outside 0..{len(net.stages)}: this network has "
                          f"{len(net.stages)} stages after the stem")
    return [net.stem, *list(net.stages)[:frozen_stages]]


def freeze_trunk(net: ScreeningNet, frozen_stages: int) -> list[nn.Parameter]:
    """Freeze the trunk (no gradients; its BatchNorm layers stay in eval mode when the tail trains) and return
    the parameters left to train."""
    frozen = {id(p) for m in trunk_modules(net, frozen_stages) for p in m.parameters()}
    for m in trunk_modules(net, frozen_stages):
        m.requires_grad_(False)
    return [p for p in net.parameters() if id(p) not in frozen]


def adabn(net: ScreeningNet, data: LabelledSet, frozen_stages: int, batch: int = 32) -> None:
    """AdaBN: replace the running mean and variance of every BatchNorm layer of the trunk by their cumulative
    average over `data` (each layer normalised by the batch's own statistics meanwhile, as in training)."""
    bns = [m for mod in trunk_modules(net, frozen_stages) for m in mod.modules() if isinstance(m, nn.BatchNorm2d)]
    saved = [m.momentum for m in bns]
    net.eval()
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # cumulative moving average: every batch counts equally
        m.train()
    with torch.no_grad():
        for i in range(0, len(data), batch):
            net.trunk(data.float_canvases(slice(i, i + batch)).contiguous(memory_format=torch.channels_last),
                      frozen_stages)
    for m, mom in zip(bns, saved, strict=True):
        m.momentum = mom
        m.eval()


@dataclass
class FeatureCache:
    """Trunk features of a set: (V, N, C, h, w) float16, and per view the dense box targets (or None)."""

    features: torch.Tensor
    maps: torch.Tensor | None  # (V, N, K, g, g) float16 coverage
    known: torch.Tensor | None  # (N,) bool: the image's box targets are known
    # The parent's logits (any-threat first, then the classes) on the same view of each anchor image, (V, N, 1 + K)
    # float32, and which images are anchors (N,) bool; None when nothing is distilled.
    teacher: torch.Tensor | None = None
    anchored: torch.Tensor | None = None


def cache_features(net: ScreeningNet, data: LabelledSet, tcfg: TailConfig, cfg: TrainConfig,
                   boxes: tuple[torch.Tensor, torch.Tensor] | None, seed: int,
                   bar: tqdm | None = None, teacher: ScreeningNet | None = None,
                   anchored: np.ndarray | None = None) -> FeatureCache:
    """Features of `data` through the frozen trunk: view 0 as it is, later views flipped and photometrically
    augmented (box targets flipped alike). With a `teacher` (the parent, its own BatchNorm statistics) and an
    `anchored` mask, also the teacher's logits on the same views of the anchored images."""
    gen = torch.Generator().manual_seed(seed)
    net.eval()
    feats: list[list[torch.Tensor]] = [[] for _ in range(tcfg.views)]
    maps: list[list[torch.Tensor]] = [[] for _ in range(tcfg.views)]
    distil = teacher is not None and anchored is not None and bool(np.any(anchored))
    anchor_t = torch.as_tensor(anchored if distil else np.zeros(len(data), dtype=bool))
    taught = torch.full((tcfg.views, len(data), 1 + len(data.classes)), float("nan")) if distil else None
    if teacher is not None:
        teacher.eval()
    with torch.inference_mode():
        for i in range(0, len(data), tcfg.batch):
            x = data.float_canvases(slice(i, i + tcfg.batch))  # (B, 3, S, S)
            m = boxes[0][i:i + tcfg.batch] if boxes is not None else None
            rows = anchor_t[i:i + tcfg.batch]
            for v in range(tcfg.views):
                xv, mv = x, m
                if v > 0:
                    flips = random_flips(len(x), gen)
                    xv = photometric(x, cfg.augment, gen, flips=flips)
                    mv = apply_flips(m, flips) if m is not None else None
                xv = xv.contiguous(memory_format=torch.channels_last)
                feats[v].append(net.trunk(xv, tcfg.frozen_stages).half())
                if mv is not None:
                    maps[v].append(mv)
                if taught is not None and teacher is not None and bool(rows.any()):
                    o = teacher(xv[rows])
                    taught[v, i + torch.where(rows)[0]] = torch.cat([o.any_logit[:, None], o.class_logits], 1)
            if bar is not None:
                bar.update(len(x))
    f = torch.stack([torch.cat(fv) for fv in feats])  # (V, N, C, h, w)
    return FeatureCache(f.contiguous(), torch.stack([torch.cat(mv) for mv in maps]) if boxes is not None else None,
                        boxes[1] if boxes is not None else None, taught, anchor_t if distil else None)


def distillation_loss(any_logit: torch.Tensor, class_logits: torch.Tensor, teacher_logits: torch.Tensor) -> torch.Tensor:
    """How far a batch of anchor images' outputs, (B,) and (B, K) logits, are from the parent's (B, 1 + K)
    (Learning without Forgetting, Li and Hoiem 2016): BCE against the parent's probabilities, any-threat plus the
    mean over classes. Zero gradient where the outputs equal the parent's."""
    soft = torch.sigmoid(teacher_logits)
    return (F.binary_cross_entropy_with_logits(any_logit, soft[:, 0])
            + F.binary_cross_entropy_with_logits(class_logits, soft[:, 1:]))


def plan_epochs(remaining_s: float | None, per_step_s: float, steps_per_epoch: int, epochs: int) -> tuple[int, int]:
    """(epochs, steps per epoch) that fit `remaining_s` at `per_step_s` a step: all epochs when they fit, else
    fewer, else one shorter epoch (at least 4 steps, so the heads move at all). None: no limit."""
    if remaining_s is None:
        return epochs, steps_per_epoch
    steps = max(0.0, remaining_s) / max(per_step_s, 1e-6)
    if steps >= steps_per_epoch:
        return int(min(epochs, steps // steps_per_epoch)), steps_per_epoch
    return 1, int(max(4, min(steps_per_epoch, steps)))


def _step_seconds(net: ScreeningNet, params: list[nn.Parameter], cache: FeatureCache, stage: int,
                  batch: int) -> float:
    """Wall seconds of one training step of the tail (median of three, on cached features)."""
    x = cache.features[0, :batch].float()
    times = []
    _tail_train_mode(net, stage)
    for _ in range(3):
        t0 = time.perf_counter()
        o = net.resume(x, stage)
        (o.any_logit.sum() + o.class_logits.sum()).backward()
        times.append(time.perf_counter() - t0)
    for p in params:
        p.grad = None
    return float(np.median(times))


def _tail_train_mode(net: ScreeningNet, frozen_stages: int) -> None:
    net.train()
    for m in trunk_modules(net, frozen_stages):
        m.eval()  # the trunk keeps its (AdaBN) statistics


def fit_tail(net: ScreeningNet, params: list[nn.Parameter], train: LabelledSet, cache: FeatureCache,
             val: LabelledSet, val_cache: FeatureCache, cfg: TrainConfig, frozen_stages: int, *,
             lr: float, deadline: float | None, distill_weight: float = 0.0) -> list[dict[str, float]]:
    """Train the tail in place on cached features (balanced sampling, one random view per image and step, the
    dense box loss where boxes are known); keeps the epoch with the best validation any-threat + class AP. Epochs
    are planned to end by `deadline` (time.perf_counter() seconds; None: no limit), and checked again before each.
    With `distill_weight` > 0 and a cache that holds the parent's logits, anchor images also pull their outputs
    towards the parent's (distillation_loss): the tail learns the new scanner without unlearning the old ones."""
    torch.manual_seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    weights = torch.as_tensor(balanced_weights(train.any_labels, train.class_labels))
    per_step = _step_seconds(net, params, cache, frozen_stages, cfg.batch_size)
    steps_full = max(1, len(train) // cfg.batch_size)
    remaining = None if deadline is None else deadline - time.perf_counter() - _val_seconds(per_step, len(val), cfg)
    epochs, steps = plan_epochs(remaining, per_step * 1.15, steps_full, cfg.epochs)  # + sampling and optimiser
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=cfg.weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=epochs * steps, pct_start=0.15)
    history: list[dict[str, float]] = []
    best: tuple[float, dict[str, torch.Tensor], int] | None = None
    for epoch in range(1, epochs + 1):
        t0 = time.perf_counter()
        total = _epoch(net, train, cache, weights, steps, cfg, frozen_stages, opt, sched, gen, epoch, epochs,
                       distill_weight)
        row = {"epoch": epoch, "loss": total / steps, "steps": steps, "seconds": time.perf_counter() - t0,
               **_validate(net, val, val_cache, frozen_stages)}
        history.append(row)
        log.info("adapt epoch %d/%d: loss %.4f  val any-threat AP %.4f  val mean class AP %.4f", epoch, epochs,
                 row["loss"], row["val_any_ap"], row["val_class_ap"])
        parts = [v for v in (row["val_any_ap"], row["val_class_ap"]) if np.isfinite(v)]
        score = float(np.sum(parts)) if parts else -row["loss"]
        if best is None or score > best[0]:
            best = (score, copy.deepcopy(net.state_dict()), epoch)
        if deadline is not None and time.perf_counter() + row["seconds"] > deadline and epoch < epochs:
            log.warning("time budget: stopping fine-tuning after epoch %d of %d", epoch, epochs)
            break
    assert best is not None
    net.load_state_dict(best[1])
    net.eval()
    return history


def _val_seconds(per_step: float, n_val: int, cfg: TrainConfig) -> float:
    return per_step / 3 * n_val / cfg.batch_size  # a forward is about a third of a training step


def _epoch(net: ScreeningNet, train: LabelledSet, cache: FeatureCache, weights: torch.Tensor, steps: int,
           cfg: TrainConfig, stage: int, opt: torch.optim.Optimizer, sched: torch.optim.lr_scheduler.LRScheduler,
           gen: torch.Generator, epoch: int, epochs: int, distill_weight: float) -> float:
    _tail_train_mode(net, stage)
    total = 0.0
    for _ in tqdm(range(steps), desc=f"adapt epoch {epoch}/{epochs}", unit="batch", disable=not cfg.progress,
                  leave=False):
        idx = torch.multinomial(weights, cfg.batch_size, replacement=True, generator=gen)
        view = torch.randint(0, cache.features.shape[0], (len(idx),), generator=gen)
        x = cache.features[view, idx].float()  # (B, C, h, w)
        dense = None
        if cache.maps is not None and cache.known is not None:
            dense = DenseTargets(cache.maps[view, idx], cache.known[idx], net.class_bias, net.any_bias,
                                 cfg.box_weight, cfg.box_pos_weight)
        any_y = torch.as_tensor(train.any_labels[idx.numpy()])
        cls_y = torch.as_tensor(train.class_labels[idx.numpy()])
        o = net.resume(x, stage)
        loss = loss_fn(o, any_y, cls_y, dense)
        if distill_weight > 0 and cache.teacher is not None and cache.anchored is not None:
            rows = cache.anchored[idx]
            if bool(rows.any()):
                loss = loss + distill_weight * distillation_loss(o.any_logit[rows], o.class_logits[rows],
                                                                 cache.teacher[view[rows], idx[rows]])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        total += loss.item()
    return total


def _validate(net: ScreeningNet, val: LabelledSet, cache: FeatureCache, stage: int) -> dict[str, float]:
    net.eval()
    anys, clss = [], []
    with torch.inference_mode():
        for i in range(0, len(val), 64):
            o = net.resume(cache.features[0, i:i + 64].float(), stage)
            anys.append(o.any_logit.numpy())
            clss.append(o.class_logits.numpy())
    return validation_aps(val, np.concatenate(anys), np.concatenate(clss))
