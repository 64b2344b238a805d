"""Synthetic training sets rendered straight into memory: render -> scanner style -> letterbox -> uint8 canvas.

The default model needs no PNG files: encoding and decoding 3,000 PNGs cost more than rendering them. Image i is
rendered from rng([seed, i]) and styled from rng([seed, i, STYLE_STREAM]) exactly as `xscreen synth --seed seed
--style style` renders it (same parcel, same scanner style; a JPEG style is round-tripped through the same JPEG
bytes), so a set is reproducible from (seed, n, scenario, classes, style), which is what its manifest records.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from tqdm import tqdm

from screening.data import LabelledSet, LabelRow, _manifest_hash, targets
from screening.preprocess import Geometry, letterbox_uint8
from xscreen.errors import ConfigError

if TYPE_CHECKING:
    from xray.styles import ScannerStyle

log = logging.getLogger(__name__)
Box = tuple[float, float, float, float]


TRAINING_WORK = 1.25  # training renders styles at most this many times the canvas side (see render_styled_set)


@dataclass(frozen=True)
class _Job:
    """Image i of a set (picklable: it crosses to the worker processes)."""

    seed: int
    i: int
    n: int
    classes: tuple[str, ...]
    scenario: str
    size: int
    image_size: tuple[int, int] | None
    style: str
    for_training: bool
    content_split: str | None


def _render_one(job: _Job) -> tuple[np.ndarray, Geometry, list[str], list[tuple[str, Box]], ScannerStyle]:
    """(canvas (3, S, S) uint8, geometry, labels, threat boxes as image fractions, scanner style) of image i."""
    from xray.styles import render_styled, sample_style, style_rng

    _, scan = render_styled(np.random.default_rng([job.seed, job.i]), sample_style(style_rng(job.seed, job.i), job.style),
                            classes=job.classes, content_split=job.content_split, scenario=job.scenario,
                            progress=job.i / (job.n - 1) if job.n > 1 else 0.0, size=job.image_size,
                            max_side=round(TRAINING_WORK * job.size) if job.for_training else None)
    canvas, geo = letterbox_uint8(scan.image, job.size)
    h, w = scan.image.shape[:2]
    boxes = [(str(o.class_name), (o.box[0] / w, o.box[1] / h, o.box[2] / w, o.box[3] / h))
             for o in scan.objects if o.is_threat and o.class_name]
    return np.ascontiguousarray(canvas), geo, list(scan.labels), boxes, scan.style


def _init_worker() -> None:
    torch.set_num_threads(1)  # one process per core: threads inside each would only fight


def render_set(n: int, seed: int, classes: Sequence[str], size: int, *, scenario: str = "baseline",
               workers: int | None = None, image_size: tuple[int, int] | None = None,
               progress: bool = True, style: str = "reference", for_training: bool = False,
               content_split: str | None = None) -> tuple[LabelledSet, dict[str, list[tuple[str, Box]]]]:
    """n rendered scans as a LabelledSet (files are virtual names `scan_00000`...) and their threat boxes by name.

    `size` is the canvas side; `image_size` the rendered (width, height) (None: 512 wide, as write_dataset);
    `style` the scanner-style family (xray.styles) each image's style is drawn from; `content_split` the
    renderer's object families (default: the style family's); see render_styled_set for `for_training`.
    """
    data, boxes, _ = render_styled_set(n, seed, classes, size, scenario=scenario, workers=workers,
                                       image_size=image_size, progress=progress, style=style,
                                       for_training=for_training, content_split=content_split)
    return data, boxes


def render_styled_set(n: int, seed: int, classes: Sequence[str], size: int, *, scenario: str = "baseline",
                      workers: int | None = None, image_size: tuple[int, int] | None = None, progress: bool = True,
                      style: str = "reference", for_training: bool = False, content_split: str | None = None,
                      ) -> tuple[LabelledSet, dict[str, list[tuple[str, Box]]], list[ScannerStyle]]:
    """render_set plus the scanner style of every image (for the set's manifest).

    `for_training`: the style works at no more than TRAINING_WORK x the canvas side (xray.styles.apply_style's
    max_side): detail finer than that is averaged away by the letterbox anyway, and rendering is training speed on
    a CPU (about half the style's cost at the default sizes). Such a set is the one `xscreen synth --style`
    writes seen by a scanner of coarser pitch, not those files' exact pixels; evaluation sets (the default) are."""
    from xray.styles import FAMILIES

    if style not in FAMILIES:
        raise ConfigError(f"unknown style {style!r}; known: {', '.join(FAMILIES)}")
    workers = workers or min(os.cpu_count() or 1, 4)
    jobs = [_Job(seed, i, n, tuple(classes), scenario, size, image_size, style, for_training, content_split)
            for i in range(n)]
    canvases = torch.empty((n, 3, size, size), dtype=torch.uint8)
    geos: list[Geometry] = []
    rows: list[LabelRow] = []
    styles: list[ScannerStyle] = []
    boxes: dict[str, list[tuple[str, Box]]] = {}
    if workers > 1:
        pool = ProcessPoolExecutor(workers, initializer=_init_worker)
        results = pool.map(_render_one, jobs, chunksize=16)
    else:
        pool, results = None, map(_render_one, jobs)
    try:
        for i, (canvas, geo, labels, bx, st) in enumerate(tqdm(results, total=n, desc="rendering scans", unit="img",
                                                                disable=not progress, leave=False)):
            name = f"scan_{i:05d}"
            canvases[i] = torch.from_numpy(canvas)
            geos.append(geo)
            styles.append(st)
            rows.append(LabelRow(Path(name), tuple(labels)))
            if bx:
                boxes[name] = bx
    finally:
        if pool is not None:
            pool.shutdown()
    any_y, cls_y = targets(rows, classes)
    files = [r.path for r in rows]
    record = manifest(n, seed, classes, scenario, size, style, for_training, content_split)
    digest = hashlib.sha256(json.dumps(record).encode()).hexdigest()
    data = LabelledSet(list(classes), files, canvases, None, geos, any_y, cls_y,
                       _manifest_hash(files, cls_y, [f"{digest}:{p.name}" for p in files]), boxes)
    return data, boxes, styles


def manifest(n: int, seed: int, classes: Sequence[str], scenario: str, size: int, style: str = "reference",
             for_training: bool = False, content_split: str | None = None) -> dict[str, object]:
    """What rebuilds a rendered set: the record written beside the default model's training data. (The style and
    content split appear only when they are not the defaults, so earlier sets' records and digests stay.)"""
    out: dict[str, object] = {"source": "xray.synth.render_parcel", "n": n, "seed": seed, "classes": list(classes),
                              "scenario": scenario, "input_size": size}
    if style != "reference":
        out["style"] = style
        if for_training:
            out["style_max_side"] = round(TRAINING_WORK * size)
    if content_split is not None:
        out["content_split"] = content_split
    return out
