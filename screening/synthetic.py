"""Synthetic training sets rendered straight into memory: render -> pseudo-colour -> letterbox -> uint8 canvas.

The default model needs no PNG files: encoding and decoding 3,000 PNGs cost more than rendering them. Image i is
rendered from rng([seed, i]) exactly as `xray.dataset.write_dataset_impl` renders it (same parcel, same palette), so a
set is reproducible from (seed, n, scenario, classes), which is what its manifest records.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from screening.data import LabelledSet, LabelRow, _manifest_hash, targets
from screening.preprocess import Geometry, letterbox_one

log = logging.getLogger(__name__)
Box = tuple[float, float, float, float]


def _render_one(args: tuple[int, int, int, tuple[str, ...], str, int, tuple[int, int] | None]) -> tuple[np.ndarray, Geometry, list[str], list[tuple[str, Box]]]:
    """(canvas (3, S, S) uint8, geometry, labels, threat boxes as image fractions) of image i."""
    seed, i, n, classes, scenario, size, image_size = args
    from xray.palettes import pseudo_colour
    from xray.synth import render_parcel

    parcel = render_parcel(np.random.default_rng([seed, i]), classes=classes, scenario=scenario,
                           progress=i / (n - 1) if n > 1 else 0.0, size=image_size)
    rgb = pseudo_colour(parcel.high, parcel.low, parcel.palette)
    canvas, geo = letterbox_one(rgb, size)
    h, w = parcel.high.shape
    boxes = [(str(o.class_name), (o.box[0] / w, o.box[1] / h, o.box[2] / w, o.box[3] / h))
             for o in parcel.objects if o.is_threat and o.class_name]
    return (canvas * 255).round_().to(torch.uint8).numpy(), geo, list(parcel.labels), boxes


def _init_worker() -> None:
    torch.set_num_threads(1)  # one process per core: threads inside each would only fight


def render_set(n: int, seed: int, classes: Sequence[str], size: int, *, scenario: str = "baseline",
               workers: int | None = None, image_size: tuple[int, int] | None = None,
               progress: bool = True) -> tuple[LabelledSet, dict[str, list[tuple[str, Box]]]]:
    """n rendered scans as a LabelledSet (files are virtual names `scan_00000`...) and their threat boxes by name.

    `size` is the canvas side; `image_size` the rendered (width, height) (None: 512 wide, as write_dataset).
    """
    workers = workers or min(os.cpu_count() or 1, 4)
    jobs = [(seed, i, n, tuple(classes), scenario, size, image_size) for i in range(n)]
    canvases = torch.empty((n, 3, size, size), dtype=torch.uint8)
    geos: list[Geometry] = []
    rows: list[LabelRow] = []
    boxes: dict[str, list[tuple[str, Box]]] = {}
    if workers > 1:
        pool = ProcessPoolExecutor(workers, initializer=_init_worker)
        results = pool.map(_render_one, jobs, chunksize=16)
    else:
        pool, results = None, map(_render_one, jobs)
    try:
        for i, (canvas, geo, labels, bx) in enumerate(tqdm(results, total=n, desc="rendering scans", unit="img",
                                                            disable=not progress, leave=False)):
            name = f"scan_{i:05d}"
            canvases[i] = torch.from_numpy(canvas)
            geos.append(geo)
            rows.append(LabelRow(Path(name), tuple(labels)))
            if bx:
                boxes[name] = bx
    finally:
        if pool is not None:
            pool.shutdown()
    any_y, cls_y = targets(rows, classes)
    files = [r.path for r in rows]
    digest = hashlib.sha256(json.dumps(manifest(n, seed, classes, scenario, size)).encode()).hexdigest()
    data = LabelledSet(list(classes), files, canvases, None, geos, any_y, cls_y,
                       _manifest_hash(files, cls_y, [f"{digest}:{p.name}" for p in files]), boxes)
    return data, boxes


def manifest(n: int, seed: int, classes: Sequence[str], scenario: str, size: int) -> dict[str, object]:
    """What rebuilds a rendered set: the record written beside the default model's training data."""
    return {"source": "xray.synth.render_parcel", "n": n, "seed": seed, "classes": list(classes),
            "scenario": scenario, "input_size": size}
