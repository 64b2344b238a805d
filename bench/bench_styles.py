"""Cost of scanner styles (xray.styles) on one core: the style step alone, and the pipelines it sits in.

Usage: OMP_NUM_THREADS=1 .venv/bin/python -m bench.bench_styles [--runs 5] [--images 40] [--canvas 288]
For each style family, over `images` parcels (default classes, threat rate 0.5, baseline, 512 wide): render
(`xray.synth.render_parcel`), then either the training path (`screening.synthetic.render_set(for_training=True)`:
the style at no more than 1.25 x the canvas side, letterboxed to the canvas) or the file path (`xscreen synth
--style`: the style at its own sizes, encoded as PNG or JPEG). Process CPU time, median over runs, printed as
milliseconds per image and images per second per core.
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--images", type=int, default=40)
    ap.add_argument("--canvas", type=int, default=288)
    ap.add_argument("--families", default=",".join(FAMILIES))
    args = ap.parse_args()
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
