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
    """metrics() of the classifier on the readable labelled images of folders (+ `localisation` where a manifest
    has boxes). Images that cannot be read are left out and listed under `unreadable` (file, reason), so one odd
    file in a folder of real scans does not void the evaluation and the figures say what they rest on.

    Returns (metrics, calibrated any-threat scores, any-threat labels) so callers can plot.
    """
    unreadable: list[tuple[Path, str]] = []
    data = load_folders(folders, clf.classes, clf.input_size, progress=progress,  # reads manifests' boxes too
                        unreadable=unreadable)
    p_any, p_cls, hits = score_set(clf, data, data.boxes)
    result = metrics(p_any, data.any_labels, p_cls, data.class_labels, clf.classes, clf.point)
    result["model_version"] = clf.version
    result["unreadable"] = [{"file": str(path), "reason": reason} for path, reason in unreadable]
    if hits:
        result["localisation"] = localisation(hits, clf.classes)
    return result, p_any, data.any_labels


Scored = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, list[tuple[str, bool]]]


def score_synthetic(clf: Classifier, n: int, seed: int, scenario: str = "baseline",
                    workers: int | None = None, style: str = "reference", content_split: str | None = None) -> Scored:
    """(calibrated any, calibrated classes, any labels, class labels, localisation hits) of n parcels rendered in
    memory, pixel-identical to what `xscreen synth --seed seed --scenario scenario --style style` writes
    (content_split: the renderer's object families, default the style family's)."""
    from screening.synthetic import render_set

    data, _ = render_set(n, seed, clf.classes, clf.input_size, scenario=scenario, workers=workers, progress=False,
                         style=style, content_split=content_split)
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


# The sets issue 13's "Done when" reads, side by side: in-domain (today's reference rendering and the training
# style family, both on fresh seeds, training's object families) and a scanner training never saw (the held-out
# style and its grey-only and JPEG-only variants, with the renderer's held-out object families mixed in).
STYLE_SETS = ("reference", "train", "heldout", "heldout-grey", "heldout-jpeg")


def headline(result: dict[str, Any]) -> dict[str, float]:
    """The figures of one scored set that the targets name: mean class AP, any-threat AUC, PD at FAR <= 5%, the
    shares of benign and of threat items sent to an officer (verdict not `clear`) at the certified operating
    point, and the share of detected threat boxes whose class heatmap peaks inside them."""
    point = result["operating_point"]
    loc = result.get("localisation", {})
    return {
        "n": float(result["n"]), "n_threat": float(result["n_threat"]),
        "mean_class_ap": float(result["mean_class_ap"]) if result["mean_class_ap"] is not None else float("nan"),
        "auc": float(result["any_threat"]["auc"]), "pd_at_far_5": float(result["any_threat"]["pd_at_far"]["0.05"]),
        "benign_routed": float(point["benign_routed"]), "threat_routed": float(point["pd"]),
        "peak_in_box": float(loc.get("hit_rate", float("nan"))),
    }


def style_report(clf: Classifier, n: int, seed: int, styles: Sequence[str] = STYLE_SETS,
                 workers: int | None = None) -> dict[str, dict[str, Any]]:
    """metrics() with localisation of n parcels of `seed` in each style family, named `family` or `family:split`
    (a content split other than the family's own) (each family's own object families,
    pixel pitch and so parcels; the three held-out columns hold the same parcels, so they differ by display or
    compression alone)."""
    out = {}
    for name in styles:  # `family` or `family:content split` (e.g. heldout:train: the held-out scanner alone)
        family, _, split = name.partition(":")
        out[name] = pooled_metrics(clf, [score_synthetic(clf, n, seed, workers=workers, style=family,
                                                         content_split=split or None)])
    return out


def format_side_by_side(results: dict[str, dict[str, Any]]) -> str:
    """A markdown table of headline() figures, one column per set."""
    rows = [("n (threat)", lambda h: f"{h['n']:.0f} ({h['n_threat']:.0f})"),
            ("mean class AP", lambda h: f"{h['mean_class_ap']:.3f}"), ("any-threat AUC", lambda h: f"{h['auc']:.3f}"),
            ("PD at FAR <= 5%", lambda h: f"{h['pd_at_far_5']:.3f}"),
            ("benign sent to an officer", lambda h: f"{h['benign_routed']:.1%}"),
            ("threats sent to an officer", lambda h: f"{h['threat_routed']:.1%}"),
            ("heatmap peak in box", lambda h: f"{h['peak_in_box']:.1%}")]
    heads = {name: headline(r) for name, r in results.items()}
    lines = ["| | " + " | ".join(heads) + " |", "| --- |" + " --- |" * len(heads)]
    lines += [f"| {label} | " + " | ".join(fmt(h) for h in heads.values()) + " |" for label, fmt in rows]
    return "\n".join(lines)
