"""Run a Classifier over labelled folders: calibrated metrics, plus heatmap localisation against generator boxes.

Localisation uses the synthetic generator's manifest.parquet (threat boxes in pixels): a detected threat
(verdict not `clear`) counts as localised when the peak of its class heatmap falls inside one of that class's boxes.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from screening.boxes import Boxes
from screening.calibration import verdicts
from screening.classifier import Classifier, image_heatmap
from screening.data import LabelledSet, load_folders
from screening.evaluate import metrics

log = logging.getLogger(__name__)


def _inside(point: tuple[float, float], box: tuple[float, float, float, float]) -> bool:
    return box[0] <= point[0] <= box[2] and box[1] <= point[1] <= box[3]


def score_set(clf: Classifier, data: LabelledSet, boxes: Boxes, batch_size: int = 64) -> tuple[np.ndarray, np.ndarray, list[tuple[str, bool]]]:
    """Calibrated (any (N,), classes (N, K)) of a cached set, and (class, hit) per detected threat box."""
    anys, clss, hits = [], [], []
    with torch.inference_mode():
        for i in range(0, len(data), batch_size):
            p_any, p_cls, o = clf.scores(data.float_canvases(slice(i, i + batch_size)))
            anys.append(p_any)
            clss.append(p_cls)
            v = verdicts(p_any, p_cls, clf.classes, clf.point)
            for b in range(len(p_any)):
                n = i + b
                for cls, box in boxes.get(data.files[n].name, []):
                    if v[b] == "clear" or cls not in clf.classes:
                        continue  # localisation is measured on detected threats
                    hm = image_heatmap(o.class_cams[b, clf.classes.index(cls)].float().cpu(), data.geometries[n], clf.heatmap_size)
                    r, c = np.unravel_index(int(np.argmax(hm)), hm.shape)
                    hits.append((cls, _inside(((c + 0.5) / hm.shape[1], (r + 0.5) / hm.shape[0]), box)))
    return np.concatenate(anys), np.concatenate(clss), hits


def evaluate_classifier(clf: Classifier, folders: Sequence[Path], *, progress: bool = True) -> tuple[dict[str, Any], np.ndarray, np.ndarray]:
    """metrics() of the classifier on labelled folders (+ `localisation` where a manifest has boxes).

    Returns (metrics, calibrated any-threat scores, any-threat labels) so callers can plot.
    """
    data = load_folders(folders, clf.classes, clf.input_size, progress=progress)  # reads manifests' boxes too
    p_any, p_cls, hits = score_set(clf, data, data.boxes)
    result = metrics(p_any, data.any_labels, p_cls, data.class_labels, clf.classes, clf.point)
    result["model_version"] = clf.version
    if hits:
        result["localisation"] = localisation(hits, clf.classes)
    return result, p_any, data.any_labels


Scored = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, list[tuple[str, bool]]]


def score_synthetic(clf: Classifier, n: int, seed: int, scenario: str = "baseline",
                    workers: int | None = None) -> Scored:
    """(calibrated any, calibrated classes, any labels, class labels, localisation hits) of n parcels rendered in
    memory, pixel-identical to what `xscreen synth --seed seed --scenario scenario` writes."""
    from screening.synthetic import render_set

    data, _ = render_set(n, seed, clf.classes, clf.input_size, scenario=scenario, workers=workers, progress=False)
    p_any, p_cls, hits = score_set(clf, data, data.boxes)
    return p_any, p_cls, data.any_labels, data.class_labels, hits


def pooled_metrics(clf: Classifier, scored: Sequence[Scored]) -> dict[str, Any]:
    """metrics() plus heatmap localisation over one or more scored sets, pooled."""
    p_any, p_cls, any_y, cls_y = (np.concatenate([s[i] for s in scored]) for i in range(4))
    result = metrics(p_any, any_y, p_cls, cls_y, clf.classes, clf.point)
    result["localisation"] = localisation([h for s in scored for h in s[4]], clf.classes)
    return result


def localisation(hits: list[tuple[str, bool]], classes: Sequence[str]) -> dict[str, Any]:
    """Share of detected threat boxes whose class heatmap peaks inside them, overall and per class."""
    per_class = {c: [h for k, h in hits if k == c] for c in classes}
    return {
        "hit_rate": float(np.mean([h for _, h in hits])) if hits else float("nan"), "n": len(hits),
        "classes": {c: {"hit_rate": float(np.mean(v)), "n": len(v)} for c, v in per_class.items() if v},
    }
