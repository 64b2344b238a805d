"""Does training on randomised scanner styles buy generalisation? The same small network trained twice with the same
budget, on reference-style parcels (the four vendor palettes, today's augmentation) and on the training style
family (with the shortcut-removing augmentation), each scored side by side on in-domain and held-out styles.

    .venv/bin/python -m bench.style_ablation [--n-train 2000] [--epochs 8] [--size 160] [--width 16] \\
        [--from MODEL.pt] [--eval-n 500] [--arms ref-old,train-new,train-old,ref-new] [--json out.json]

From scratch, a small network on a small canvas, so that it runs in minutes on two cores (the absolute figures
are far below the bundled model's; the comparison between the two is the point); or, with `--from`, both arms
fine-tuned from the same checkpoint (its network and canvas; `xscreen train --from`'s third of the learning rate).
Both runs use the product's training path (`screening.train.train_checkpoint`: same splits, box supervision,
calibration and certificate).
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from screening.assess import STYLE_SETS, format_side_by_side, style_report
from screening.augment import AugmentConfig
from screening.classifier import Classifier
from screening.network import NetConfig
from screening.registry import build_model, load_checkpoint
from screening.synthetic import render_set
from screening.train import TrainConfig, train_checkpoint
from xscreen.settings import DEFAULT_CLASSES, load_settings

OLD_AUGMENT = AugmentConfig(hue_deg=0, saturation_log_range=0, channel_gamma_log_range=0, grey_p=0, blur_p=0,
                            jpeg_p=0, rescale_p=0)  # what training did before the style family
ARMS = {  # name -> (label, style family of the training parcels, augmentation)
    "ref-old": ("reference styles, old augmentation", "reference", OLD_AUGMENT),
    "train-new": ("training style family, new augmentation", "train", AugmentConfig()),
    "train-old": ("training style family, old augmentation", "train", OLD_AUGMENT),
    "ref-new": ("reference styles, new augmentation", "reference", AugmentConfig()),
}


def run(style: str, augment: AugmentConfig, args: argparse.Namespace) -> dict[str, Any]:
    settings = load_settings(environ={})
    parent = load_checkpoint(args.parent) if args.parent else None
    config = parent.config if parent else NetConfig(classes=tuple(DEFAULT_CLASSES), input_size=args.size,
                                                    width=args.width, context=(2, 4))
    t0 = time.perf_counter()
    data, _ = render_set(args.n_train, args.seed, DEFAULT_CLASSES, config.input_size, workers=args.workers,
                         progress=False, style=style, for_training=True)
    cfg = TrainConfig(seed=args.seed, epochs=args.epochs, augment=augment, progress=False)
    ckpt, history = train_checkpoint(settings, data, f"ablation-{style}", config, cfg=cfg, parent_ckpt=parent)
    seconds = time.perf_counter() - t0
    clf = Classifier(build_model(ckpt), ckpt)
    sets = style_report(clf, args.eval_n, args.eval_seed, STYLE_SETS, workers=args.workers)
    return {"train_seconds": seconds, "history": history, "sets": sets}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n-train", type=int, default=2000)
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--size", type=int, default=160)
    ap.add_argument("--width", type=int, default=16)
    ap.add_argument("--from", dest="parent", default=None, help="fine-tune both arms from this model.pt")
    ap.add_argument("--seed", type=int, default=61)
    ap.add_argument("--eval-n", type=int, default=500)
    ap.add_argument("--eval-seed", type=int, default=4245)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--arms", default="ref-old,train-new", help=f"comma-separated, of {', '.join(ARMS)}")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    results = {}
    for arm in args.arms.split(","):
        label, style, augment = ARMS[arm]
        results[label] = run(style, augment, args)
        print(f"\n{label} ({results[label]['train_seconds']:.0f} s to render and train):\n"
              f"{format_side_by_side(results[label]['sets'])}", flush=True)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(results, f, indent=1, default=float)


if __name__ == "__main__":
    main()
