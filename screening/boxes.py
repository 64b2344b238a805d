"""Threat boxes as dense targets for the class heatmaps (box supervision of the CAM heads).

Where the generator's boxes are known (synthetic sets, generator manifests beside a folder), training does not
only ask "is there a knife in this parcel?" but also "which cells of the heatmap cover it?": every CAM cell gets
a target, the share of its area covered by a box of that class. That turns one label per image into a few
hundred, which is what lets a small network learn the shape of a threat in a CPU-minutes budget, and it teaches
the heatmap to peak on the threat rather than on whatever context correlates with it (a power bank's board next
to its cells). Images without boxes (officer labels, `threat`-only rows, projected TIP samples) simply have no
dense target and train through the image-level loss alone.

Boxes travel as image fractions (x0, y0, x1, y1) keyed by file name, like `xray.dataset` manifests store them.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from screening.preprocess import Geometry

log = logging.getLogger(__name__)

Box = tuple[float, float, float, float]
Boxes = dict[str, list[tuple[str, Box]]]  # file name -> [(class, box as image fractions)]


def load_boxes(folder: Path) -> Boxes:
    """Threat boxes of folder/manifest.parquet (xray.dataset) as image fractions, keyed by file name ({} when absent)."""
    path = Path(folder) / "manifest.parquet"
    if not path.is_file():
        return {}
    import pandas as pd

    df = pd.read_parquet(path, columns=None)
    if not {"file", "width", "height", "objects"} <= set(df.columns):
        log.warning("%s lacks file/width/height/objects columns: no boxes read", path)
        return {}
    out: Boxes = {}
    for file, w, h, objects in zip(df["file"], df["width"], df["height"], df["objects"], strict=True):
        for o in objects:  # one row per image; objects carry pixel boxes (x1, y1 exclusive)
            if o["is_threat"] and o["class_name"]:
                out.setdefault(str(file), []).append((str(o["class_name"]), (o["x0"] / w, o["y0"] / h, o["x1"] / w, o["y1"] / h)))
    return out


def _overlap_1d(lo: float, hi: float, grid: int) -> np.ndarray:
    """Length of [lo, hi] inside each unit cell [i, i + 1) of a grid of `grid` cells."""
    cells = np.arange(grid, dtype=np.float64)
    return np.clip(np.minimum(cells + 1, hi) - np.maximum(cells, lo), 0.0, 1.0)


def coverage_map(boxes: Sequence[tuple[str, Box]], geometry: Geometry, classes: Sequence[str], grid: int) -> np.ndarray:
    """(K, grid, grid) float32: share of each heatmap cell (over the whole canvas) covered by a box of class k.

    Boxes of classes the model does not know are ignored; overlapping boxes of one class take the larger share.
    """
    out = np.zeros((len(classes), grid, grid), dtype=np.float32)
    index = {c: k for k, c in enumerate(classes)}
    for cls, box in boxes:
        k = index.get(cls)
        if k is None:
            continue
        x0, y0, x1, y1 = (v * grid for v in geometry.image_box_to_canvas(box))
        cover = np.outer(_overlap_1d(y0, y1, grid), _overlap_1d(x0, x1, grid)).astype(np.float32)
        np.maximum(out[k], cover, out=out[k])
    return out


def box_targets(files: Sequence[Path], geometries: Sequence[Geometry], class_labels: np.ndarray, boxes: Boxes,
                classes: Sequence[str], grid: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Dense targets of a set: ((N, K, grid, grid) float16 coverage, (N,) bool: this image's targets are known).

    An image's targets are known when it is benign (every cell 0) or every class it is labelled with has at least
    one box; a threat image with a missing box (or an unknown class) is left to the image-level loss.
    """
    maps = torch.zeros((len(files), len(classes), grid, grid), dtype=torch.float16)
    known = torch.zeros(len(files), dtype=torch.bool)
    for i, (f, geo) in enumerate(zip(files, geometries, strict=True)):
        item = boxes.get(Path(f).name, [])
        labelled = {classes[int(j)] for j in np.flatnonzero(class_labels[i] == 1)}
        if (class_labels[i] < 0).any() or not labelled <= {c for c, _ in item}:
            continue
        maps[i] = torch.from_numpy(coverage_map(item, geo, classes, grid))
        known[i] = True
    return maps, known
