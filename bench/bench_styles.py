"""Cost of scanner styles (xray.styles) on one core: the style step alone, and the pipelines it sits in.

Usage: OMP_NUM_THREADS=1 .venv/bin/python -m bench.bench_styles [--runs 5] [--images 40] [--canvas 288]
For each style family, over `images` parcels (default classes, threat rate 0.5, baseline, 512 wide): render
(`xray.synth.render_parcel`), then either the training path (`screening.synthetic.render_set(for_training=True)`:
the style at no more than 1.25 x the canvas side, letterboxed to the canvas) or the file path (`xscreen synth
--style`: the style at its own sizes, encoded as PNG or JPEG). Process CPU time, median over runs, printed as
milliseconds per image and images per second per core.

`--augment N`: also the cost of one training batch's augmentation (`screening.train._batch`, batch 8 on a
rendered train-style set with box targets, one torch thread), with and without the style-shortcut removers of
`screening.augment` (hue, saturation, grey, channel gamma, blur, JPEG, rescaling), median over N batches.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # one core: numpy/scipy must not fan out

import numpy as np  # noqa: E402

from screening.preprocess import letterbox_uint8  # noqa: E402
from screening.synthetic import TRAINING_WORK  # noqa: E402
from xray.styles import FAMILIES, apply_style, sample_style, style_rng  # noqa: E402
from xray.synth import render_parcel  # noqa: E402
from xscreen.settings import DEFAULT_CLASSES  # noqa: E402


def run_once(family: str, n: int, seed: int, canvas: int) -> dict[str, float]:
    """CPU milliseconds per image of each stage over n parcels."""
    cpu = time.process_time
    t = dict.fromkeys(("render_ms", "train_style_ms", "letterbox_ms", "file_style_ms", "encode_ms"), 0.0)
    for i in range(n):
        t0 = cpu()
        parcel = render_parcel(np.random.default_rng([seed, i]), classes=DEFAULT_CLASSES, threat_rate=0.5)
        style = sample_style(style_rng(seed, i), family)
        t1 = cpu()
        scan = apply_style(parcel, style, max_side=round(TRAINING_WORK * canvas))
        t2 = cpu()
        letterbox_uint8(scan.image, canvas)
        t3 = cpu()
        scan = apply_style(parcel, style)
        t4 = cpu()
        scan.encode()
        t5 = cpu()
        for key, dt in zip(t, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4), strict=True):
            t[key] += dt
    out = {k: 1000 * v / n for k, v in t.items()}
    out["training_path_per_s"] = 1000 / (out["render_ms"] + out["train_style_ms"] + out["letterbox_ms"])
    out["file_path_per_s"] = 1000 / (out["render_ms"] + out["file_style_ms"] + out["encode_ms"])
    return out


def augment_cost(batches: int, canvas: int) -> dict[str, float]:
    """Median CPU ms of one augmented training batch of 8, without and with the shortcut removers."""
    import torch

    from screening.augment import AugmentConfig
    from screening.boxes import box_targets
    from screening.synthetic import render_set
    from screening.train import TrainConfig, _batch

    torch.set_num_threads(1)
    data, _ = render_set(64, 5, DEFAULT_CLASSES, canvas, workers=1, progress=False, style="train", for_training=True)
    boxes = box_targets(data.files, data.geometries, data.class_labels, data.boxes, data.classes, canvas // 16)
    off = AugmentConfig(hue_deg=0, saturation_log_range=0, channel_gamma_log_range=0, grey_p=0, blur_p=0, jpeg_p=0,
                        rescale_p=0)
    out = {}
    for name, aug in (("batch_ms_without", off), ("batch_ms_with", AugmentConfig())):
        gen, rng, times = torch.Generator().manual_seed(0), np.random.default_rng(0), []
        for k in range(batches):
            t0 = time.process_time()
            _batch(data, np.arange(8) + (k % 8) * 8, TrainConfig(augment=aug), gen, rng, None, boxes,
                   torch.device("cpu"))
            times.append(1000 * (time.process_time() - t0))
        out[name] = round(statistics.median(times), 1)
    from screening.network import NetConfig, build_network  # for scale: the step these batches feed

    net = build_network(NetConfig(classes=tuple(DEFAULT_CLASSES), input_size=canvas, context=(2, 4)), seed=0).train()
    x = torch.rand(8, 3, canvas, canvas).contiguous(memory_format=torch.channels_last)
    net = net.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
    times = []
    for _ in range(max(3, batches // 8)):
        t0 = time.process_time()
        o = net(x)
        (o.any_logit.sum() + o.class_logits.sum()).backward()
        times.append(1000 * (time.process_time() - t0))
    out["network_step_ms"] = round(statistics.median(times), 1)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--images", type=int, default=40)
    ap.add_argument("--canvas", type=int, default=288)
    ap.add_argument("--families", default=",".join(FAMILIES))
    ap.add_argument("--augment", type=int, default=0, help="also time N augmented training batches (0 = skip)")
    args = ap.parse_args()
    if args.augment:
        print("augmentation", augment_cost(args.augment, args.canvas), flush=True)
    run_once("train", 4, 0, args.canvas)  # warm caches (noise banks, palette tables)
    report = {}
    for family in args.families.split(","):
        runs = [run_once(family, args.images, seed=r, canvas=args.canvas) for r in range(args.runs)]
        report[family] = {k: round(statistics.median(r[k] for r in runs), 1) for k in runs[0]}
        print(family, report[family], flush=True)
    print(json.dumps({"images_per_run": args.images, "runs": args.runs, "canvas": args.canvas, "median": report},
                     indent=1))


if __name__ == "__main__":
    main()
