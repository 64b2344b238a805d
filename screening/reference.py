"""Train the bundled reference model: the default network on large synthetic sets, with a budget sized for a GPU.

From scratch (what the GPU did for the shipped model; about two hours on a 2-core CPU):

    XSCREEN_HOME=/tmp/xh python -m screening.reference --out DIR --size 256 --n-train 12000 --epochs 30

Fine-tuning a step further on fresh parcels (what the CPU did next, about 10 minutes a step):

    XSCREEN_HOME=/tmp/xh python -m screening.reference --out DIR --from DIR/reference-256/model.pt \\
        --name reference-256-ft1 --size 256 --seed 4321 --n-train 6000 --epochs 8 --lr 9e-4

Averaging the weights of steps (how the shipped reference-288-v2 was made from its last two fine-tuning steps;
screening.averaging; batch norm and calibration on fresh parcels of --seed, never trained on):

    XSCREEN_HOME=/tmp/xh python -m screening.reference --out DIR --average A/model.pt,B/model.pt \\
        --name reference-288-v2 --seed 4327 --n-train 8000

Training parcels are drawn in the scanner styles of `--style` (default `model.train_style`, `train`: the randomised
style family of xray.styles, rendered at 1.25x the canvas; `reference`: the four vendor palettes alone, as the
shipped reference-288-v2 was trained) with the augmentation defaults of screening.augment.

It runs the product's own path (`screening.train.train_checkpoint`: the same splits, box supervision, calibration
and certificate as `xscreen train`; fine-tuning uses a third of --lr as `xscreen train --from` does), needs no
store (a GPU machine holds only torch and this code), writes DIR/<name>/model.pt with its sha256 sidecar, records
the whole lineage under `metrics.provenance`, and scores the result on the held-out baseline set (seed 777) on
the `xscreen evaluate` code path (DIR/<name>.json). `--size` may differ from the parent's: the network is fully
convolutional, so the same weights run on a larger canvas and the fine-tuning adapts them to it.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from screening.assess import pooled_metrics, score_synthetic
from screening.augment import AugmentConfig
from screening.averaging import average_checkpoint
from screening.classifier import Classifier
from screening.data import LabelledSet
from screening.registry import Checkpoint, build_model, load_checkpoint, save_checkpoint
from screening.synthetic import manifest, render_set
from screening.train import TrainConfig, default_config, train_checkpoint, training_device
from xscreen.settings import Settings, load_settings

log = logging.getLogger(__name__)


def _device_name(device: torch.device) -> str:
    return f"cuda: {torch.cuda.get_device_name(device)}" if device.type == "cuda" else f"cpu: {platform.processor()}"


def train_reference(settings: Settings, n_train: int, epochs: int, batch_size: int, lr: float, workers: int, *,
                    seed: int | None = None, parent: Checkpoint | None = None, name: str | None = None,
                    augment: AugmentConfig | None = None, budget_s: float | None = None,
                    amp: bool = False) -> tuple[Checkpoint, list[dict[str, float]]]:
    """The default network (model settings; the parent's, at the settings' input size, when fine-tuning) trained
    on n_train baseline scans of `seed` (default model.seed) in the scanner styles of model.train_style, with the
    augmentation defaults unless `augment` is given; for `budget_s` seconds instead of `epochs` when given
    (TrainConfig.budget_s), with bfloat16 autocast when `amp`."""
    m = settings.model
    seed = m.seed if seed is None else seed
    config = default_config(settings) if parent is None else dataclasses.replace(parent.config, input_size=m.input_size)
    t_render = time.perf_counter()
    data, _ = render_set(n_train, seed, list(config.classes), config.input_size, workers=workers, progress=False,
                         style=m.train_style, for_training=True)
    t_render = time.perf_counter() - t_render
    log.info("rendered %d parcels in %.0f s (%d processes, %.1f parcels/s)", n_train, t_render, workers,
             n_train / t_render)
    cfg = TrainConfig(seed=seed, epochs=epochs, batch_size=batch_size, lr=lr, box_weight=m.box_weight, progress=False,
                      augment=augment or AugmentConfig(), budget_s=budget_s, amp=amp)
    t0 = time.perf_counter()
    version = name or f"reference-{config.input_size}"
    ckpt, history = train_checkpoint(settings, data, version, config, cfg=cfg, parent_ckpt=parent)
    _record_step(ckpt, [parent] if parent else [], parent.version if parent else None, data, n_train, seed,
                 m.train_style, time.perf_counter() - t0,
                 {"epochs": len(history) if budget_s else epochs, "budget_s": budget_s, "amp": amp,
                  "batch_size": batch_size, "lr": lr / 3 if parent else lr, "box_weight": m.box_weight,
                  "val_fraction": cfg.val_fraction, "cal_fraction": cfg.cal_fraction, "seed": seed,
                  **({"augment": dataclasses.asdict(augment)} if augment is not None else {})})
    return ckpt, history


def _record_step(ckpt: Checkpoint, made_from: list[Checkpoint], parents: str | list[str] | None, data: LabelledSet,
                 n: int, seed: int, style: str, seconds: float, train_config: dict[str, Any]) -> None:
    """Append the step that made `ckpt` (from `made_from`, on n baseline scans of `seed`) to the lineage of the
    checkpoints it was made from, under ckpt.metrics["provenance"]."""
    c = ckpt.config
    step = {
        "version": ckpt.version, "from": parents, "input_size": c.input_size,
        "trained_on": _device_name(training_device()), "torch": torch.__version__, "train_seconds": round(seconds, 1),
        "data": {**manifest(n, seed, list(c.classes), "baseline", c.input_size, style, for_training=True),
                 "manifest_sha256": data.manifest_sha256},
        "train_config": train_config,
    }
    ckpt.metrics["provenance"] = {"lineage": [*merged_lineage(made_from), step], "data": step["data"],
                                  "train_config": train_config}


def merged_lineage(ckpts: list[Checkpoint]) -> list[dict[str, Any]]:
    """The lineage steps of all `ckpts`, each once (by version), in the order first met."""
    seen: dict[str, dict[str, Any]] = {}
    for c in ckpts:
        for step in c.metrics.get("provenance", {}).get("lineage", []):
            seen.setdefault(step["version"], step)
    return list(seen.values())


def average_reference(settings: Settings, ckpts: list[Checkpoint], n: int, seed: int, workers: int, *,
                      name: str | None = None) -> Checkpoint:
    """The weight average of `ckpts` (screening.averaging), batch norm and calibration from n fresh baseline scans
    of `seed`; its lineage is the averaged steps' lineages plus this step."""
    config = ckpts[-1].config
    style = settings.model.train_style
    data, _ = render_set(n, seed, list(config.classes), config.input_size, workers=workers, progress=False, style=style,
                         for_training=True)
    cfg = TrainConfig(seed=seed, progress=False)
    version = name or f"{ckpts[-1].version}-avg"
    t0 = time.perf_counter()
    ckpt = average_checkpoint(settings, ckpts, data, version, cfg=cfg)
    _record_step(ckpt, ckpts, [c.version for c in ckpts], data, n, seed, style, time.perf_counter() - t0,
                 {"how": "screening.averaging.average_checkpoint: mean of the weights of `from`, batch norm "
                         "re-estimated on the training split, calibrated on the calibration split",
                  "val_fraction": cfg.val_fraction, "cal_fraction": cfg.cal_fraction, "seed": seed})
    return ckpt


def parcels_for(seconds: float, size: int, classes: list[str], style: str, workers: int, *, cap: int,
                probe: int | None = None) -> int:
    """How many training parcels `workers` processes render in about `seconds` on this machine (at most `cap`),
    from the rate of a probe set rendered now (seed 0, thrown away): a lease is sized in time, and its machine's
    cores are not this one's."""
    probe = probe or 8 * workers
    t0 = time.perf_counter()
    render_set(probe, 0, classes, size, workers=workers, progress=False, style=style, for_training=True)
    rate = probe / (time.perf_counter() - t0)
    n = max(probe, min(cap, int(rate * seconds)))
    log.info("probe: %d parcels at %.1f/s on %d processes -> %d parcels for %.0f s of rendering",
             probe, rate, workers, n, seconds)
    return n


def held_out(ckpt: Checkpoint, n: int, seed: int, workers: int) -> dict[str, Any]:
    """`xscreen evaluate` metrics (plus heatmap localisation) on n baseline scans of `seed`."""
    clf = Classifier(build_model(ckpt), ckpt, str(training_device()))
    return pooled_metrics(clf, [score_synthetic(clf, n, seed, workers=workers)])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--from", dest="parent", type=Path, default=None, help="fine-tune this model.pt")
    ap.add_argument("--average", type=lambda v: [Path(p) for p in v.split(",")], default=None,
                    help="comma-separated model.pt files to average instead of training (--n-train scans of --seed "
                         "for batch norm and calibration: use a seed none of them trained on)")
    ap.add_argument("--name", default=None, help="version name (default reference-<size>)")
    ap.add_argument("--size", type=int, default=None, help="input size (default: model.input_size)")
    ap.add_argument("--seed", type=int, default=None, help="seed of the training parcels (default: model.seed)")
    ap.add_argument("--n-train", type=int, default=12000)
    ap.add_argument("--render-budget-s", type=float, default=None, help="render as many parcels as this machine "
                    "makes in about this many seconds instead, --n-train at most (a rate probe first)")
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--budget-s", type=float, default=None, help="train for this many wall-clock seconds instead of "
                    "--epochs, the one-cycle schedule following time (a GPU lease: bench/device_train.sh)")
    ap.add_argument("--amp", action="store_true", help="bfloat16 autocast (for a GPU)")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--test", type=int, default=2000, help="held-out baseline scans (seed --test-seed); 0 = skip")
    ap.add_argument("--test-seed", type=int, default=777)
    ap.add_argument("--workers", type=int, default=8, help="rendering processes")
    ap.add_argument("--style", choices=["train", "reference"], default=None,
                    help="scanner-style family of the training parcels (default: model.train_style)")
    ap.add_argument("--tone-p", type=float, default=None, help="share of samples given a random S-shaped tone "
                    "curve (screening.augment_ops.random_tone; default AugmentConfig.tone_p, off)")
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    settings = load_settings()
    model_update: dict[str, Any] = {"input_size": args.size} if args.size else {}
    if args.style:
        model_update["train_style"] = args.style
    if model_update:
        settings = settings.model_copy(update={"model": settings.model.model_copy(update=model_update)})
    history: list[dict[str, float]] = []
    if args.average:
        if args.seed is None:
            ap.error("--average needs --seed: fresh scans that none of the averaged steps trained on")
        ckpt = average_reference(settings, [load_checkpoint(p) for p in args.average], args.n_train, args.seed,
                                 args.workers, name=args.name)
    else:
        parent = load_checkpoint(args.parent) if args.parent else None
        n_train = args.n_train
        if args.render_budget_s:
            classes = list(parent.config.classes if parent else settings.model.classes)
            n_train = parcels_for(args.render_budget_s, settings.model.input_size, classes,
                                  settings.model.train_style, args.workers, cap=args.n_train)
        augment = AugmentConfig(tone_p=args.tone_p) if args.tone_p is not None else None
        ckpt, history = train_reference(settings, n_train, args.epochs, args.batch, args.lr, args.workers,
                                        seed=args.seed, parent=parent, name=args.name, augment=augment,
                                        budget_s=args.budget_s, amp=args.amp)
    for h in history:
        print(f"epoch {h['epoch']:.0f}: loss {h['loss']:.4f} val any-threat AP {h['val_any_ap']:.4f} "
              f"mean class AP {h['val_class_ap']:.4f} ({h['seconds']:.1f} s, {h['steps']:.0f} steps, "
              f"lr {h['lr']:.2e})", flush=True)
    digest = save_checkpoint(ckpt, args.out / ckpt.version / "model.pt")
    print(f"saved {args.out / ckpt.version / 'model.pt'} sha256 {digest}", flush=True)
    if args.test:
        r = held_out(ckpt, args.test, args.test_seed, args.workers)
        a = r["any_threat"]
        print(f"held-out n={r['n']}: any-threat AUC {a['auc']:.4f} PD@5%FAR {a['pd_at_far']['0.05']:.4f} "
              f"mean class AP {np.mean([v['ap'] for v in r['classes'].values()]):.4f} "
              f"heatmap peak in box {r['localisation']['hit_rate']:.4f}", flush=True)
        (args.out / f"{ckpt.version}.json").write_text(json.dumps({"history": history, "held_out": r}, indent=1, default=str))


if __name__ == "__main__":
    main()
