"""Training: fit the network on labelled folders, calibrate on a held-out split, certify, register.

Splits are stratified and seeded: train / validation (early stopping on any-threat AP) / calibration
(temperatures and conformal thresholds: never seen by training or model selection, which the guarantee needs).
"""

from __future__ import annotations

import copy
import itertools
import logging
import math
import queue
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.metrics import average_precision_score
from tqdm import tqdm

from screening import registry
from screening.augment import (
    AugmentConfig,
    TipBank,
    apply_flips,
    jpeg_choices,
    jpeg_one,
    jpeg_some,
    photometric,
    random_flips,
    random_palette,
    repalette,
    rescale_in_canvas,
)
from screening.calibration import certificate, fit_temperature, operating_point, sigmoid, verdicts
from screening.data import LabelledSet, balanced_weights, load_folders, split_indices
from screening.evaluate import EvaluationError, metrics
from screening.network import NetConfig, ScreeningNet, build_network
from xscreen.errors import ModelError, NotFoundError
from xscreen.records import ANY_THREAT, ModelRecord, ModelState, utcnow
from xscreen.settings import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainConfig:
    epochs: int = 12
    batch_size: int = 8  # more, smaller steps: on a CPU a sample costs the same either way, and the short
    # default schedule is limited by the number of updates, not by gradient noise (16 -> 8: mean class AP
    # 0.56 -> 0.60 on a held-out set at the same number of images seen)
    lr: float = 3e-3
    weight_decay: float = 1e-4
    val_fraction: float = 0.15
    cal_fraction: float = 0.2
    patience: int = 4  # epochs without a better validation score (any-threat AP + mean class AP) before stopping...
    min_epochs_fraction: float = 0.5  # ...counted only after this share of the schedule: the one-cycle learning
    # rate peaks early, and stopping there would throw away the annealed epochs that do most of the good
    seed: int = 1234
    box_weight: float = 1.0  # weight of the dense heatmap loss on images whose threat boxes are known (0: off)
    box_pos_weight: float = 3.0  # covered cells are a few percent of a heatmap: weigh them up in the dense loss
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    progress: bool = True
    # A wall-clock budget instead of an epoch count (a GPU lease of a few minutes): the one-cycle learning rate
    # follows the elapsed share of the budget, not of the steps, so the schedule anneals fully whatever the
    # machine's speed; `epochs` and early stopping are then unused (the best epoch is still restored).
    budget_s: float | None = None
    amp: bool = False  # bfloat16 autocast of the forward pass and loss (for a GPU; fp32 master weights either way)
    # Make the next batches in a background thread while the network trains on this one (None: on CUDA only,
    # where the CPU's batch work would otherwise idle the GPU; on a 2-core CPU the two would only compete).
    prefetch: bool | None = None
    # Keep the training set's uint8 canvases on the training device for the whole fit, so that a batch is gathered
    # there rather than copied over (None: on CUDA only; 250 KB a 288-pixel canvas, so 10 GB for 40,000).
    resident: bool | None = None


@dataclass
class TrainResult:
    checkpoint: registry.Checkpoint
    history: list[dict[str, float]]
    record: ModelRecord | None = None


def forward_logits(net: ScreeningNet, data: LabelledSet, batch_size: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """Raw (any (N,), classes (N, K)) logits of a cached set, in eval mode."""
    net.eval()
    anys, clss = [], []
    device = _device(net)
    with torch.inference_mode():
        for i in range(0, len(data), batch_size):
            # uint8 to the device, float there (the pixels of float_canvases): on a GPU, making 64 canvases float
            # on the CPU took longer than scoring them.
            x = data.canvases[i : i + batch_size].to(device).float().div_(255.0)
            x = x.contiguous(memory_format=torch.channels_last)
            o = net(x)
            anys.append(o.any_logit.float().cpu().numpy())
            clss.append(o.class_logits.float().cpu().numpy())
    k = len(data.classes)
    return (np.concatenate(anys) if anys else np.zeros(0)), (np.concatenate(clss) if clss else np.zeros((0, k)))


def _device(net: torch.nn.Module) -> torch.device:
    return next(net.parameters()).device


def training_device() -> torch.device:
    """CUDA when available (augmentation stays on the CPU; batches move over), else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def loss_fn(o: Any, any_y: torch.Tensor, cls_y: torch.Tensor, dense: DenseTargets | None = None) -> torch.Tensor:
    """BCE on any_threat plus BCE on the known per-class targets (-1 = unknown class is masked out), plus the
    dense heatmap loss on images whose boxes are known (`dense`, see screening.boxes)."""
    any_loss = F.binary_cross_entropy_with_logits(o.any_logit, any_y.float())
    known = cls_y >= 0
    per = F.binary_cross_entropy_with_logits(o.class_logits, cls_y.clamp(min=0).float(), reduction="none")
    cls_loss = (per * known).sum() / known.sum().clamp(min=1)
    loss = any_loss + cls_loss
    if dense is not None and dense.weight > 0 and bool(dense.known.any()):
        m = dense.known
        # Each CAM cell is a logit of "a threat of class k covers this cell" (the pooled logit is a smooth max of
        # them); the bias is the heads' own, kept out of the CAM itself so heatmaps show evidence only.
        cells = o.class_cams[m] + dense.class_bias.view(1, -1, 1, 1)
        target = dense.maps[m].float()
        pw = torch.tensor(dense.pos_weight, device=cells.device)
        cell_loss = F.binary_cross_entropy_with_logits(cells, target, pos_weight=pw)
        any_cells = o.any_cam[m] + dense.any_bias.view(1, 1, 1)
        cell_loss = cell_loss + F.binary_cross_entropy_with_logits(any_cells, target.amax(dim=1), pos_weight=pw)
        loss = loss + dense.weight * cell_loss
    return loss


@dataclass
class DenseTargets:
    """Per-batch box targets: maps (B, K, g, g) coverage, known (B,) bool, the heads' biases and the loss weight."""

    maps: torch.Tensor
    known: torch.Tensor
    class_bias: torch.Tensor
    any_bias: torch.Tensor
    weight: float
    pos_weight: float = 1.0


_Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor, tuple[torch.Tensor, torch.Tensor] | None]


def _batch(data: LabelledSet, idx: np.ndarray, cfg: TrainConfig, gen: torch.Generator, rng: np.random.Generator,
           tip: TipBank | None, boxes: tuple[torch.Tensor, torch.Tensor] | None = None,
           device: torch.device | None = None, resident: torch.Tensor | None = None) -> _Batch:
    """Augmented canvases (B, 3, S, S) channels-last on `device`, their (any (B,), class (B, K)) targets and, when
    the set has box targets, (maps (B, K, g, g), known (B,)) flipped with the canvases.

    Palette changes, TIP and JPEG run on the CPU (numpy physics, Pillow's codec); rescaling inside the canvas,
    flips, gain, colour jitter, blur and noise run where the batch is trained: on a GPU the per-pixel work of the
    CPU would otherwise bound the step."""
    ti = torch.as_tensor(idx)
    any_y = torch.as_tensor(data.any_labels[idx]).clone()
    cls_y = torch.as_tensor(data.class_labels[idx]).clone()
    maps, known = (boxes[0][ti], boxes[1][ti].clone()) if boxes is not None else (None, None)
    aug = cfg.augment  # style shortcuts (screening.augment_ops): JPEG on the CPU, rescaling where the batch lives
    if data.planes is None and resident is not None:
        # The set's canvases already live on the device (`resident`, fit's TrainConfig.resident): gathered there;
        # only the few to JPEG cross over, after Pillow on the CPU. The same pixels as the path below.
        x = resident[ti.to(resident.device)]
        for b, q in jpeg_choices(len(idx), aug.jpeg_p, aug.jpeg_quality, rng):
            x[b] = jpeg_one(data.canvases[int(idx[b])], q).to(x.device)
    elif data.planes is None:
        # uint8 canvases (a copy: indexing copies) are JPEG'd as they are and cross to the device at a quarter of
        # the float bytes, made float there: the same pixels as float_canvases would give.
        x = jpeg_some(data.canvases[ti], aug.jpeg_p, aug.jpeg_quality, rng)
    else:
        x = data.float_canvases(ti)  # (B, 3, S, S)
        planes = data.planes[ti]  # (B, 2, S, S), NaN where the scan is not dual-energy
        for b, canvas in repalette(planes, rng, cfg.augment.palette_p).items():
            x[b] = canvas
        if tip is not None:
            for b in range(len(idx)):
                if any_y[b] == 0 and rng.random() < cfg.augment.tip_p and not torch.isnan(planes[b]).any():
                    x[b], j = tip.project(planes[b], rng, random_palette(rng))
                    any_y[b], cls_y[b, j] = 1, 1
                    if known is not None:
                        known[b] = False  # the projected threat has no box target: image-level loss only
        x = jpeg_some(x, aug.jpeg_p, aug.jpeg_quality, rng)
    if device is not None:
        x = x.to(device, non_blocking=True)  # no copy when resident
        maps = maps.to(device, non_blocking=True) if maps is not None else None
    if x.dtype == torch.uint8:
        x = x.float().div_(255.0)
    x, maps = rescale_in_canvas(x, maps, aug.rescale_p, aug.rescale_min, gen)
    flips = random_flips(len(idx), gen) if cfg.augment.flip else None
    x = photometric(x, cfg.augment, gen, flips=flips)
    dense = None
    if maps is not None and known is not None:
        dense = (apply_flips(maps, flips) if flips is not None else maps, known)
    return x.contiguous(memory_format=torch.channels_last), any_y, cls_y, dense


def validation_scores(net: ScreeningNet, val: LabelledSet) -> dict[str, float]:
    """Any-threat AP and mean per-class AP (raw scores: AP does not depend on calibration)."""
    return validation_aps(val, *forward_logits(net, val))


def validation_aps(val: LabelledSet, any_l: np.ndarray, cls_l: np.ndarray) -> dict[str, float]:
    """validation_scores of logits already computed: any (N,), classes (N, K)."""
    out = {"val_any_ap": float("nan"), "val_class_ap": float("nan")}
    if 0 < val.any_labels.sum() < len(val):
        out["val_any_ap"] = float(average_precision_score(val.any_labels, any_l))
    aps = []
    for j in range(len(val.classes)):
        known = val.class_labels[:, j] >= 0
        y = val.class_labels[known, j]
        if 0 < y.sum() < len(y):
            aps.append(average_precision_score(y, cls_l[known, j]))
    if aps:
        out["val_class_ap"] = float(np.mean(aps))
    return out


def one_cycle_lr(frac: float, max_lr: float, *, pct_start: float = 0.15, div_factor: float = 25.0,
                 final_div_factor: float = 1e4) -> float:
    """The learning rate of torch's OneCycleLR (cosine annealing, its defaults) at `frac` in [0, 1] of the
    schedule: up from max_lr / div_factor to max_lr over pct_start, then down to max_lr / div_factor /
    final_div_factor. As a function of a fraction, so a schedule can follow wall time (TrainConfig.budget_s)."""
    start, end = max_lr / div_factor, max_lr / div_factor / final_div_factor
    frac = min(max(frac, 0.0), 1.0)
    if frac <= pct_start:
        a, b, t = start, max_lr, frac / pct_start
    else:
        a, b, t = max_lr, end, (frac - pct_start) / (1.0 - pct_start)
    return b + (a - b) * (1.0 + math.cos(math.pi * t)) / 2.0


def _batch_stream(train: LabelledSet, weights: torch.Tensor, cfg: TrainConfig, gen: torch.Generator,
                  rng: np.random.Generator, tip: TipBank | None, boxes: tuple[torch.Tensor, torch.Tensor] | None,
                  device: torch.device, resident: torch.Tensor | None) -> Iterator[_Batch]:
    """Balanced batches for ever: sample, augment, move (_batch), in the one order the seeds fix."""
    while True:
        idx = torch.multinomial(weights, cfg.batch_size, replacement=True, generator=gen).numpy()
        yield _batch(train, idx, cfg, gen, rng, tip, boxes, device, resident)


class _Prefetched:
    """Iterate `source` in a background thread, up to `depth` items ahead. The thread alone draws from the
    generators the batches use, so the sequence is the one the plain loop would see; an error in it is raised in
    the consumer. close() stops the thread."""

    def __init__(self, source: Iterator[_Batch], depth: int = 3) -> None:
        self._queue: queue.Queue[tuple[bool, Any]] = queue.Queue(depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(source,), name="batch-prefetch", daemon=True)
        self._thread.start()

    def _put(self, item: tuple[bool, Any]) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _run(self, source: Iterator[_Batch]) -> None:
        try:
            for item in source:
                if not self._put((True, item)):
                    return
        except BaseException as exc:  # handed to the training thread, which raises it
            self._put((False, exc))

    def __iter__(self) -> Iterator[_Batch]:
        return self

    def __next__(self) -> _Batch:
        ok, item = self._queue.get()
        if not ok:
            raise item
        return item  # type: ignore[no-any-return]

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


def fit(net: ScreeningNet, train: LabelledSet, val: LabelledSet, cfg: TrainConfig, *, lr: float | None = None) -> list[dict[str, float]]:
    """Train in place with balanced sampling; restores the epoch with the best validation any-threat + class AP.

    cfg.epochs epochs on a one-cycle schedule, or with cfg.budget_s whole epochs and a last partial one until the
    budget is spent, the schedule following wall time."""
    if cfg.budget_s is not None and not cfg.budget_s > 0:
        raise ModelError(f"training budget must be a positive number of seconds, got {cfg.budget_s}")
    torch.manual_seed(cfg.seed)  # dropout draws from the global generator
    gen = torch.Generator().manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    weights = torch.as_tensor(balanced_weights(train.any_labels, train.class_labels))
    steps = max(1, len(train) // cfg.batch_size)
    device = training_device()
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # one canvas size throughout: let cuDNN pick its fastest kernels
    net.to(device, memory_format=torch.channels_last)  # type: ignore[call-overload]
    max_lr = lr or cfg.lr
    opt = torch.optim.AdamW(net.parameters(), lr=max_lr, weight_decay=cfg.weight_decay)
    sched = None
    if cfg.budget_s is None:
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=max_lr, total_steps=cfg.epochs * steps, pct_start=0.15)
    use_tip = train.planes is not None and cfg.augment.tip_p > 0
    tip = TipBank(train.classes, train.canvases.shape[-1], cfg.augment.tip_bank, cfg.seed) if use_tip else None
    boxes = None
    if cfg.box_weight > 0 and train.boxes:
        from screening.boxes import box_targets

        boxes = box_targets(train.files, train.geometries, train.class_labels, train.boxes, train.classes,
                            net.config.feature_size)
        log.info("box targets for %d of %d training images", int(boxes[1].sum()), len(train))
    keep_resident = cfg.resident if cfg.resident is not None else device.type == "cuda"
    resident = train.canvases.to(device) if keep_resident and train.planes is None else None
    stream: Iterator[_Batch] = _batch_stream(train, weights, cfg, gen, rng, tip, boxes, device, resident)
    prefetch = cfg.prefetch if cfg.prefetch is not None else device.type == "cuda"
    if prefetch:
        stream = _Prefetched(stream)
    best: tuple[float, dict[str, torch.Tensor]] | None = None
    history: list[dict[str, float]] = []
    best_epoch = 0
    t_start = time.perf_counter()
    epochs = itertools.count(1) if cfg.budget_s is not None else range(1, cfg.epochs + 1)
    try:
        for epoch in epochs:
            net.train()
            t0, c0, total, done = time.perf_counter(), time.process_time(), 0.0, 0
            label = f"epoch {epoch}" + (f"/{cfg.epochs}" if cfg.budget_s is None else "")
            bar = tqdm(range(steps), desc=label, unit="batch", disable=not cfg.progress, leave=False)
            for _ in bar:
                if cfg.budget_s is not None:
                    frac = (time.perf_counter() - t_start) / cfg.budget_s
                    if frac >= 1.0:
                        break
                    for group in opt.param_groups:
                        group["lr"] = one_cycle_lr(frac, max_lr)
                x, any_y, cls_y, dense = next(stream)
                targets = None if dense is None else DenseTargets(dense[0], dense[1].to(device), net.class_bias,
                                                                   net.any_bias, cfg.box_weight, cfg.box_pos_weight)
                with torch.autocast(device.type, dtype=torch.bfloat16, enabled=cfg.amp):
                    loss = loss_fn(net(x), any_y.to(device), cls_y.to(device), targets)  # _batch put x, maps on device
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                if sched is not None:
                    sched.step()
                value = loss.item()  # one device sync a step
                total += value
                done += 1
                bar.set_postfix(loss=f"{value:.3f}")
            if done == 0:  # the budget ran out exactly at an epoch's end: that epoch was scored already
                break
            scores = validation_scores(net, val)
            # CPU seconds next to wall seconds: on a shared machine wall time says more about the neighbours.
            row = {"epoch": epoch, "loss": total / done, "seconds": time.perf_counter() - t0,
                   "cpu_seconds": time.process_time() - c0, "steps": done,
                   "lr": float(opt.param_groups[0]["lr"]), **scores}
            history.append(row)
            msg = f"epoch {epoch}: loss {row['loss']:.4f}  val any-threat AP {row['val_any_ap']:.4f}  val mean class AP {row['val_class_ap']:.4f}"
            tqdm.write(msg) if cfg.progress else log.info(msg)
            # Selected on any-threat AP plus mean class AP: the verdict rests on the first, naming the threat (and
            # the heatmap officers see) on the second; either alone kept epochs that were poor at the other.
            parts = [v for v in (row["val_any_ap"], row["val_class_ap"]) if np.isfinite(v)]
            score = float(np.sum(parts)) if parts else -row["loss"]
            if best is None or score > best[0]:
                best, best_epoch = (score, copy.deepcopy(net.state_dict())), epoch
            elif (cfg.budget_s is None and epoch - best_epoch >= cfg.patience
                  and epoch >= cfg.min_epochs_fraction * cfg.epochs):
                log.info("early stop after epoch %d: best validation at epoch %d", epoch, best_epoch)
                break
            if done < steps:  # cut short: the budget is spent
                break
    finally:
        if isinstance(stream, _Prefetched):
            stream.close()
    assert best is not None
    net.load_state_dict(best[1])
    return history


def calibrate(net: ScreeningNet, cal: LabelledSet, *, alpha: float, delta: float, capacity: float) -> tuple[dict[str, float], dict[str, Any]]:
    """Temperatures per output and the certified operating point + certificate, from the calibration split."""
    any_l, cls_l = forward_logits(net, cal)
    temps = {ANY_THREAT: fit_temperature(any_l, cal.any_labels.astype(float))}
    for j, c in enumerate(cal.classes):
        known = cal.class_labels[:, j] >= 0
        temps[c] = fit_temperature(cls_l[known, j], cal.class_labels[known, j].astype(float))
    p_any = sigmoid(any_l / temps[ANY_THREAT])
    p_cls = sigmoid(cls_l / np.array([temps[c] for c in cal.classes]))
    point, ks = operating_point(p_any, cal.any_labels, p_cls, cal.class_labels, cal.classes,
                                alpha=alpha, delta=delta, capacity=capacity)
    v = verdicts(p_any, p_cls, cal.classes, point)
    cert = certificate(point, ks, v, cal.any_labels, alpha=alpha, delta=delta, capacity=capacity,
                       manifest_sha256=cal.manifest_sha256)
    return temps, cert


def calibrated_metrics(net: ScreeningNet, data: LabelledSet, temps: dict[str, float], thresholds: dict[str, Any]) -> dict[str, Any]:
    """metrics() of a cached set with the given temperatures and thresholds ({} when the set is one-sided)."""
    from screening.calibration import OperatingPoint

    any_l, cls_l = forward_logits(net, data)
    p_any = sigmoid(any_l / temps[ANY_THREAT])
    p_cls = sigmoid(cls_l / np.array([temps[c] for c in data.classes]))
    try:
        return metrics(p_any, data.any_labels, p_cls, data.class_labels, data.classes, OperatingPoint(thresholds))
    except EvaluationError as exc:
        log.warning("validation metrics skipped: %s", exc)
        return {}


def train_model(
    settings: Settings,
    data_dirs: Sequence[Path],
    out: str,
    *,
    cfg: TrainConfig | None = None,
    from_model: str | None = None,
    promote: bool = False,
    actor: str = "train",
) -> TrainResult:
    """Train, calibrate and register a model version named `out` (champion when none exists or `promote`)."""
    registry.check_version_name(out)
    cfg = cfg or TrainConfig(seed=settings.model.seed, epochs=settings.model.default_epochs,
                             box_weight=settings.model.box_weight)
    classes = list(settings.model.classes)
    parent_ckpt = registry.load_registered(settings, from_model)[1] if from_model else None
    config = parent_ckpt.config if parent_ckpt else default_config(settings)
    data = load_folders(data_dirs, classes, config.input_size, progress=cfg.progress)
    return train_on(settings, data, out, config, cfg=cfg, parent_ckpt=parent_ckpt, promote=promote, actor=actor)


def train_on(settings: Settings, data: LabelledSet, out: str, config: NetConfig, *, cfg: TrainConfig,
             parent_ckpt: registry.Checkpoint | None = None, promote: bool = False, actor: str = "train") -> TrainResult:
    """Split a cached set, train, calibrate and register `out` (see train_model)."""
    ckpt, history = train_checkpoint(settings, data, out, config, cfg=cfg, parent_ckpt=parent_ckpt)
    state: ModelState = "champion" if promote or _no_champion(settings) else "candidate"
    record = registry.register(settings, ckpt, state=state, actor=actor)
    return TrainResult(ckpt, history, record)


def split_for_training(data: LabelledSet, cfg: TrainConfig) -> tuple[LabelledSet, LabelledSet, LabelledSet]:
    """The seeded, stratified (train, validation, calibration) split every training step uses."""
    train_idx, val_idx, cal_idx = split_indices(data.any_labels, [cfg.val_fraction, cfg.cal_fraction], cfg.seed)
    if min(len(train_idx), len(val_idx), len(cal_idx)) == 0:
        raise ModelError(f"{len(data)} labelled images are too few to split into train/validation/calibration")
    return data.subset(train_idx), data.subset(val_idx), data.subset(cal_idx)


def calibrated_checkpoint(settings: Settings, net: ScreeningNet, out: str, config: NetConfig, *, train: LabelledSet,
                          val: LabelledSet, cal: LabelledSet, history: list[dict[str, float]],
                          parent: str | None) -> registry.Checkpoint:
    """Temperatures, certified thresholds and certificate from `cal`, validation metrics from `val`: the trained
    (or averaged) network `net` packaged as checkpoint `out`."""
    s = settings.screening
    temps, cert = calibrate(net, cal, alpha=s.alpha, delta=s.delta, capacity=s.officer_capacity)
    thresholds = cert["thresholds"]
    return registry.Checkpoint(
        version=out, config=config, state_dict=net.state_dict(), temperatures=temps, thresholds=thresholds,  # type: ignore[arg-type]
        certificate=cert, metrics={"validation": calibrated_metrics(net, val, temps, thresholds), "history": history},  # type: ignore[arg-type]
        parent=parent, train_manifest_sha256=train.manifest_sha256, created_at=utcnow().isoformat(),
    )


def train_checkpoint(settings: Settings, data: LabelledSet, out: str, config: NetConfig, *, cfg: TrainConfig,
                     parent_ckpt: registry.Checkpoint | None = None) -> tuple[registry.Checkpoint, list[dict[str, float]]]:
    """Split, train, calibrate: the checkpoint `out` and its epoch history, without touching the store (a GPU
    machine can build a model this way and its model.pt be registered elsewhere)."""
    train, val, cal = split_for_training(data, cfg)
    net = build_network(config, seed=cfg.seed)
    if parent_ckpt is not None:
        net.load_state_dict(parent_ckpt.state_dict)
    log.info("training %s on %d images (%d validation, %d calibration)", out, len(train), len(val), len(cal))
    history = fit(net, train, val, cfg, lr=cfg.lr / 3 if parent_ckpt else None)  # fine-tuning: gentler steps
    ckpt = calibrated_checkpoint(settings, net, out, config, train=train, val=val, cal=cal, history=history,
                                 parent=parent_ckpt.version if parent_ckpt else None)
    return ckpt, history


def default_config(settings: Settings) -> NetConfig:
    """The network a new model gets from the model settings (fine-tuning keeps its parent's instead)."""
    m = settings.model
    return NetConfig(classes=tuple(m.classes), input_size=m.input_size, width=m.width, embedding_dim=m.embedding_dim,
                     context=tuple(m.context_dilations))


def _no_champion(settings: Settings) -> bool:
    try:
        registry.resolve(settings, "champion")
        return False
    except NotFoundError:
        return True


REPO_ROOT = Path(__file__).resolve().parents[1]


def bundled_checkpoint(settings: Settings) -> registry.Checkpoint | None:
    """The shipped model (`model.bundled`), verified, when it fits the model settings; None (and why, logged) when
    there is none or the settings ask for another network. A damaged file (checksum) is a ModelError, never skipped."""
    path = settings.model.bundled
    if path is None:
        return None
    path = path if path.is_absolute() else REPO_ROOT / path
    if not path.is_file():
        log.warning("bundled model %s not found: training a default model here", path)
        return None
    ckpt = registry.load_checkpoint(path)  # verifies the sha256 sidecar and the architecture
    wanted = default_config(settings)
    if ckpt.config != wanted:
        log.warning("bundled model %s is %s, the settings ask for %s: training a default model here",
                    ckpt.version, ckpt.config.to_dict(), wanted.to_dict())
        return None
    return ckpt


def register_bundled(settings: Settings) -> ModelRecord | None:
    """Register the bundled model as champion when it fits the settings (what `serve` and `demo` do on a fresh
    home); None when there is no fitting bundled model. Call only when there is no champion."""
    bundled = bundled_checkpoint(settings)
    if bundled is None:
        return None
    log.info("registering the bundled model %s as champion", bundled.version)
    try:  # registered before (then retired): bring it back rather than copy its weights again
        registry.resolve(settings, bundled.version)
        return registry.set_state(settings, bundled.version, "champion", "setup", "bundled default model")
    except NotFoundError:
        return registry.register(settings, bundled, state="champion", actor="setup")


def champion_or_bundled(settings: Settings) -> ModelRecord:
    """The champion; on a home with none, the bundled model registered as champion (what `predict`, `evaluate`
    and `adapt` use on a fresh home, so that they work before `demo` or `serve` ever ran). Never trains: with no
    fitting bundled model, NotFoundError says what to do."""
    try:
        return registry.resolve(settings, "champion")
    except NotFoundError:
        pass
    bundled = register_bundled(settings)
    if bundled is None:
        raise NotFoundError("no champion model is registered and no bundled model fits the model settings "
                            "(run `xscreen train`, or `xscreen demo` which trains one)")
    return bundled


def ensure_default_model(settings: Settings, *, progress: bool = True) -> ModelRecord:
    """The champion; when there is none, the bundled model if it fits the settings, else a model trained here on a
    synthetic set rendered in memory (its manifest under HOME/data). Either is registered as champion."""
    try:
        return registry.resolve(settings, "champion")
    except NotFoundError:
        pass
    bundled = register_bundled(settings)
    if bundled is not None:
        return bundled
    import json

    from screening.synthetic import manifest, render_styled_set

    m = settings.model
    # Rendered straight into memory (no PNG encode/decode); the manifest beside it says how to rebuild the set,
    # styles.jsonl gives every image's scanner style.
    log.info("rendering %d synthetic training scans in memory (style %s)", m.default_train_images, m.train_style)
    data, _, styles = render_styled_set(m.default_train_images, m.seed, list(m.classes), m.input_size,
                                        progress=progress, style=m.train_style, for_training=True)
    folder = settings.home / "data" / f"default-train-{m.seed}"
    folder.mkdir(parents=True, exist_ok=True)
    record = {**manifest(m.default_train_images, m.seed, list(m.classes), "baseline", m.input_size, m.train_style, True),
              "manifest_sha256": data.manifest_sha256}
    (folder / "manifest.json").write_text(json.dumps(record, indent=2), encoding="utf-8")
    (folder / "styles.jsonl").write_text("".join(f'{{"file": "{f.name}", "style": {st.to_json()}}}\n'
                                                 for f, st in zip(data.files, styles, strict=True)), encoding="utf-8")
    config = default_config(settings)
    cfg = TrainConfig(seed=m.seed, epochs=m.default_epochs, box_weight=m.box_weight, progress=progress)
    result = train_on(settings, data, f"default-{m.seed}", config, cfg=cfg, promote=True, actor="setup")
    assert result.record is not None
    return result.record
