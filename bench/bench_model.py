"""Throughput of the screening Classifier on this CPU: letterbox + network + calibration + heatmaps, batched.

Usage: .venv/bin/python -m bench.bench_model [--runs 5] [--threads 2] [--model NAME]
Without --model a freshly initialised network of the default config is timed (speed does not depend on weights).
Inputs are synthetic parcels from xray.synth (512 pixels wide, as the renderer makes them).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import numpy as np
import torch

from screening.classifier import Classifier
from screening.network import build_network
from screening.registry import Checkpoint, build_model
from screening.train import default_config
from xscreen.settings import Settings, load_settings


def random_checkpoint(settings: Settings, version: str, clear: float, inspect: float) -> Checkpoint:
    """The default architecture (settings.model) with seeded random weights and flat thresholds: the same compute
    as a trained model, for benchmarks that need no accuracy."""
    config = default_config(settings)
    th = {c: {"clear": clear, "inspect": inspect} for c in [*config.classes, "any_threat"]}
    return Checkpoint(version, config, build_network(config, seed=0).state_dict(), {"any_threat": 1.0}, th)


def default_classifier(settings: Settings) -> Classifier:
    ckpt = random_checkpoint(settings, "bench", clear=0.1, inspect=0.5)
    return Classifier(build_model(ckpt), ckpt, heatmap_size=settings.screening.heatmap_size)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--images", type=int, default=64)
    ap.add_argument("--model", default=None)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    settings = load_settings()
    m = settings.model
    clf = (Classifier.from_registry(settings, args.model) if args.model
           else default_classifier(settings))
    from xray.synth import render_parcel

    rng = np.random.default_rng(99)
    images = [render_parcel(rng, classes=m.classes).rgb().astype(np.float32) / 255.0 for _ in range(args.images)]
    results = {}
    for batch in (1, 8, 32):
        clf.batch_size = batch
        clf.predict(images[:batch])  # warm-up: oneDNN picks kernels on first use
        rates = []
        for _ in range(args.runs):
            t0 = time.perf_counter()
            clf.predict(images)
            rates.append(len(images) / (time.perf_counter() - t0))
        results[f"batch_{batch}"] = {"median_img_per_s": round(statistics.median(rates), 1), "runs": [round(r, 1) for r in rates]}
    n_params = sum(p.numel() for p in clf.net.parameters())
    print(json.dumps({"input_size": clf.input_size, "width": clf.ckpt.config.width, "parameters": n_params,
                      "threads": args.threads, "images": args.images, **results}, indent=2))


if __name__ == "__main__":
    main()
