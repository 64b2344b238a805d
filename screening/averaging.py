"""Weight averaging of fine-tuning steps: one network whose weights are the mean of several checkpoints'.

Checkpoints fine-tuned one from another sit in one basin of the loss; the mean of their weights usually scores
better than any of them (stochastic weight averaging, Izmailov et al. 2018; "model soups", Wortsman et al.
2022) and costs nothing at inference: it is the same network. Batch-norm statistics of averaged weights are
not the average of the statistics, so they are re-estimated on training images
(`torch.optim.swa_utils.update_bn`), and the result is calibrated and certified afresh on a calibration split
that none of the averaged steps trained on, exactly as a trained step is (`screening.train.calibrated_checkpoint`).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import torch
from torch.optim.swa_utils import update_bn

from screening import registry
from screening.data import LabelledSet
from screening.network import build_network
from screening.train import TrainConfig, calibrated_checkpoint, split_for_training, training_device
from xscreen.errors import ModelError
from xscreen.settings import Settings

log = logging.getLogger(__name__)


def average_state_dicts(states: Sequence[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Element-wise mean of floating-point tensors; integer buffers (batch-norm step counts) from the last."""
    if not states:
        raise ModelError("nothing to average: no checkpoints given")
    keys = list(states[-1])
    for i, s in enumerate(states):
        if list(s) != keys or any(s[k].shape != states[-1][k].shape for k in keys):
            raise ModelError(f"checkpoint {i + 1} of {len(states)} has other tensors than the last: cannot average")
    return {k: (torch.stack([s[k].float() for s in states]).mean(0).to(states[-1][k].dtype)
                if states[-1][k].is_floating_point() else states[-1][k].clone()) for k in keys}


def refresh_batchnorm(net: torch.nn.Module, data: LabelledSet, *, n: int, seed: int, batch_size: int = 64) -> None:
    """Re-estimate batch-norm running statistics from up to n clean images of `data` (a seeded sample)."""
    idx = np.sort(np.random.default_rng(seed).permutation(len(data))[:n])
    device = training_device()
    # a generator: update_bn makes one pass, and 2,000 float canvases at 288 pixels would hold 2 GB at once
    batches = (data.float_canvases(torch.as_tensor(idx[i:i + batch_size])).contiguous(memory_format=torch.channels_last)
               for i in range(0, len(idx), batch_size))
    net.to(device)
    update_bn(batches, net, device=device)
    net.eval()


def average_checkpoint(settings: Settings, ckpts: Sequence[registry.Checkpoint], data: LabelledSet, out: str, *,
                       cfg: TrainConfig, bn_images: int = 2000) -> registry.Checkpoint:
    """The mean of `ckpts` (same network and classes), batch norm refreshed on the training split of `data` and
    calibrated on its calibration split (split as `train_checkpoint` would with cfg.seed). The parent is the last
    checkpoint; none of them should have trained on `data`'s calibration split."""
    if not ckpts:
        raise ModelError("nothing to average: no checkpoints given")
    config = ckpts[-1].config
    for c in ckpts:
        if c.config != config:
            raise ModelError(f"cannot average {c.version} with {ckpts[-1].version}: networks differ "
                             f"({c.config.to_dict()} vs {config.to_dict()})")
    if list(data.classes) != list(config.classes):
        raise ModelError(f"data classes {list(data.classes)} differ from the model's {list(config.classes)}")
    train, val, cal = split_for_training(data, cfg)
    net = build_network(config, seed=cfg.seed)
    net.load_state_dict(average_state_dicts([c.state_dict for c in ckpts]))
    refresh_batchnorm(net, train, n=bn_images, seed=cfg.seed)
    log.info("averaged %s; batch norm from %d training images, calibrated on %d", [c.version for c in ckpts],
             min(bn_images, len(train)), len(cal))
    return calibrated_checkpoint(settings, net, out, config, train=train, val=val, cal=cal, history=[],
                                 parent=ckpts[-1].version)
