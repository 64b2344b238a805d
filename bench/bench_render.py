"""Rendering throughput of the synthetic X-ray generator on one core: render, encode, read and statistics.

Usage: OMP_NUM_THREADS=1 .venv/bin/python -m bench.bench_render [--runs 5] [--images 60] [--size 512x512]
Each run renders `images` parcels (default classes, threat rate 0.5, baseline) and times every stage; the
median over runs is printed, as wall-clock and as process CPU time (the CPU figure is what one core delivers
when the machine is shared with other work).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from collections.abc import Callable
from typing import Any

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # one core: numpy/scipy must not fan out

import numpy as np  # noqa: E402

from xray.formats import image_stats, read_scan  # noqa: E402
from xray.synth import render_parcel  # noqa: E402
from xray.writers import encode  # noqa: E402
from xscreen.settings import DEFAULT_CLASSES  # noqa: E402


def _timed(fn: Callable[[int], Any], n: int) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of fn(0..n-1)."""
    wall, cpu = time.perf_counter(), time.process_time()
    for i in range(n):
        fn(i)
    return time.perf_counter() - wall, time.process_time() - cpu


def run_once(n: int, size: tuple[int, int], seed: int) -> dict[str, float]:
    """Per-stage throughput (images/s, wall and CPU) over n parcels."""
    parcels = []

    def render(i: int) -> None:
        parcels.append(render_parcel(np.random.default_rng([seed, i]), classes=DEFAULT_CLASSES, threat_rate=0.5,
                                     size=size))

    out: dict[str, float] = {}
    wall, cpu = _timed(render, n)
    out["render_per_s"], out["render_cpu_per_s"] = n / wall, n / cpu
    for fmt in ("png", "npz"):
        files: list[bytes] = []
        wall, cpu = _timed(lambda i, f=fmt, fs=files: fs.append(encode(f, parcels[i].high, parcels[i].low,  # type: ignore[misc]
                                                                        palette=parcels[i].palette)), n)
        out[f"encode_{fmt}_per_s"], out[f"encode_{fmt}_cpu_per_s"] = n / wall, n / cpu
        scans: list[Any] = []
        wall, cpu = _timed(lambda i, fs=files, sc=scans: sc.append(read_scan(fs[i])), n)  # type: ignore[misc]
        out[f"read_{fmt}_per_s"], out[f"read_{fmt}_cpu_per_s"] = n / wall, n / cpu
        wall, cpu = _timed(lambda i, sc=scans: image_stats(sc[i]), n)  # type: ignore[misc]
        out[f"stats_{fmt}_ms"], out[f"stats_{fmt}_cpu_ms"] = 1000 * wall / n, 1000 * cpu / n
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--images", type=int, default=60)
    ap.add_argument("--size", default="512x512", help="WIDTHxHEIGHT")
    args = ap.parse_args()
    w, h = (int(x) for x in args.size.lower().split("x"))
    render_parcel(np.random.default_rng(0), classes=DEFAULT_CLASSES, size=(w, h))  # warm caches (noise, LUTs)
    runs = [run_once(args.images, (w, h), seed=r) for r in range(args.runs)]
    median = {k: round(statistics.median(r[k] for r in runs), 1) for k in runs[0]}
    print(json.dumps({"size": args.size, "images_per_run": args.images, "runs": args.runs, "median": median},
                     indent=1))


if __name__ == "__main__":
    main()
