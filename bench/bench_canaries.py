"""Cost of one known-answer canary on one core: render a canary-library threat and project it into a decoded scan
(xray.canary.project_canary), for raw dual-energy (NPZ) and pseudo-colour (PNG) scans of the demo's size.

Usage: OMP_NUM_THREADS=1 .venv/bin/python -m bench.bench_canaries [--runs 5] [--images 30]
Each run renders `images` benign parcels once per format, then times project_canary on each (classes in turn);
the median over runs of the mean milliseconds per canary is printed, wall-clock and process CPU. Scoring the canary
is one more model call per batch that carries one (see Serving in docs/BENCHMARKS.md for a call's cost).
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

from xray.canary import project_canary  # noqa: E402
from xray.formats import read_scan  # noqa: E402
from xray.synth import render_parcel  # noqa: E402
from xray.writers import encode  # noqa: E402
from xscreen.settings import DEFAULT_CLASSES  # noqa: E402


def run_once(n: int, seed: int) -> dict[str, float]:
    """Mean ms per canary (wall, CPU) for each format over n scans."""
    out: dict[str, float] = {}
    rng = np.random.default_rng(seed)
    for fmt in ("npz", "png"):
        scans = []
        for i in range(n):
            parcel = render_parcel(np.random.default_rng([seed, i]), classes=DEFAULT_CLASSES, threat_rate=0.0)
            scans.append(read_scan(encode(fmt, parcel.high, parcel.low, palette=parcel.palette)))
        wall, cpu = time.perf_counter(), time.process_time()
        for i, scan in enumerate(scans):
            project_canary(scan, DEFAULT_CLASSES[i % len(DEFAULT_CLASSES)], rng)
        out[f"{fmt}_canary_ms"] = 1000 * (time.perf_counter() - wall) / n
        out[f"{fmt}_canary_cpu_ms"] = 1000 * (time.process_time() - cpu) / n
        out[f"{fmt}_pixels"] = float(scans[0].width * scans[0].height)
    return out


def main(argv: list[str] | None = None) -> dict[str, float]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--images", type=int, default=30)
    args = parser.parse_args(argv)
    runs = [run_once(args.images, seed=run) for run in range(args.runs)]
    result = {k: round(statistics.median(r[k] for r in runs), 1) for k in runs[0]}
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
