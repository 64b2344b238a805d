"""Time to adapt the champion to a held-out scanner from N of its unlabelled scans, and before/after per class.

    .venv/bin/python bench/bench_adapt.py --images 500 [--style heldout] [--home var/bench-adapt] [--budget-s 900]
        [--eval 200] [--in-domain 300] [--synthetic 600] [--frozen-stages 2] [--views 2] [--no-adabn] [--decoys 0.5]
        [--distill 1] [--draw 31] [--in-domain-seed 44] [--out F.json]

The "scanner" is one draw of a held-out style family (`--style`: heldout, heldout-grey or heldout-jpeg; `--draw`,
default 31); its adaptation scans (seed 41, 2% carry threats, as a real stream might), the evaluation benign scans
(seed 42) and the evaluation threat scans (seed 43) are three separate renders: different parcels and detector
noise, and the evaluation threats are the renderer's own threats in that style, not projections or library
articles. The in-domain set is `--in-domain` renders of the training style family (model.train_style,
`--in-domain-seed`, default 44). The champion is the bundled model, registered into a fresh home. Prints (and
writes to --out) one JSON object: wall and CPU seconds of `adapt_model` (rendering of the bench's own sets apart)
and of each of its stages, the load average, the adapted certificate's figures, and before / after on the
independent held-out renders and on the in-domain set: any-threat PD at FAR 5%, share of benign and of threats
routed to officers at each model's certified point, threats routed per class, and AP per class; and the change in
PD at FAR 5% and mean class AP on each set with its paired bootstrap standard error (`change`).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.metrics import average_precision_score

from screening import registry
from screening.adapt import AdaptConfig, adapt_model
from screening.classifier import Classifier
from screening.data import LabelledSet
from screening.evaluate import pd_at_far
from screening.preprocess import letterbox_uint8
from screening.synthetic import render_set
from screening.train import register_bundled
from xray.styles import render_styled, sample_style, style_rng
from xscreen.settings import load_settings


def _render(style: Any, seed: int, n: int, classes: list[str], rate: float) -> tuple[list[np.ndarray], list[list[str]]]:
    out = [render_styled(np.random.default_rng([seed, i]), style, classes=classes, threat_rate=rate)[1]
           for i in range(n)]
    return [s.image for s in out], [s.labels for s in out]


Scores = tuple[np.ndarray, np.ndarray]  # (any-threat (N,), per class (N, K)) of one model on one set


def model_scores(clf: Classifier, canvases: torch.Tensor) -> Scores:
    with torch.inference_mode():
        parts = [clf.scores(canvases[i:i + 32].float().div_(255.0)) for i in range(0, len(canvases), 32)]
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def _figures(clf: Classifier, scores: Scores, labels: list[list[str]]) -> dict[str, Any]:
    """Figures of one model from its `scores` on scans whose threat labels are `labels` ([] = benign)."""
    p_any, p_cls = scores
    y = np.array([int(bool(lab)) for lab in labels])
    routed = p_any >= clf.ckpt.thresholds["any_threat"]["clear"]  # at or above: an officer sees it
    ap, per_class = {}, {}
    for j, c in enumerate(clf.classes):
        yc = np.array([int(c in lab) for lab in labels])
        if 0 < yc.sum() < len(yc):
            ap[c] = round(float(average_precision_score(yc, p_cls[:, j])), 3)
            per_class[c] = round(float(routed[yc == 1].mean()), 3)
    return {"pd_at_far5": round(pd_at_far(p_any, y, 0.05), 3), "benign_routed": round(float(routed[y == 0].mean()), 3),
            "threats_routed": round(float(routed[y == 1].mean()), 3), "threats_routed_per_class": per_class,
            "class_ap": ap, "mean_class_ap": round(float(np.mean(list(ap.values()))), 3) if ap else None}


def _mean_class_ap(y_cls: np.ndarray, p_cls: np.ndarray) -> float:
    aps = [average_precision_score(y_cls[:, j], p_cls[:, j]) for j in range(y_cls.shape[1])
           if 0 < y_cls[:, j].sum() < len(y_cls)]
    return float(np.mean(aps)) if aps else float("nan")


def paired_change(before: Scores, after: Scores, labels: list[list[str]], classes: list[str],
                  n_boot: int = 300, seed: int = 0) -> dict[str, float]:
    """after - before on the same scans, PD at FAR 5% and mean class AP, with bootstrap standard errors (scans
    resampled with replacement, both models scored on each resample): is a change of a point or two a change?"""
    (pa_b, pc_b), (pa_a, pc_a) = before, after
    y = np.array([int(bool(lab)) for lab in labels])
    y_cls = np.array([[int(c in lab) for c in classes] for lab in labels])

    def change(idx: np.ndarray) -> tuple[float, float]:
        return (pd_at_far(pa_a[idx], y[idx], 0.05) - pd_at_far(pa_b[idx], y[idx], 0.05),
                _mean_class_ap(y_cls[idx], pc_a[idx]) - _mean_class_ap(y_cls[idx], pc_b[idx]))

    rng = np.random.default_rng(seed)
    point = change(np.arange(len(y)))
    boots = np.array([change(rng.integers(0, len(y), len(y))) for _ in range(n_boot)])
    return {"pd_at_far5": round(point[0], 4), "pd_at_far5_se": round(float(np.nanstd(boots[:, 0], ddof=1)), 4),
            "mean_class_ap": round(point[1], 4), "mean_class_ap_se": round(float(np.nanstd(boots[:, 1], ddof=1)), 4)}


def _canvases(images: list[np.ndarray], size: int) -> torch.Tensor:
    return torch.stack([torch.from_numpy(letterbox_uint8(im, size)[0].copy()) for im in images])


def _labels_of(data: LabelledSet) -> list[list[str]]:
    return [[c for j, c in enumerate(data.classes) if data.class_labels[i, j] == 1] or (["?"] if data.any_labels[i] else [])
            for i in range(len(data))]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=500)
    ap.add_argument("--style", default="heldout", choices=["heldout", "heldout-grey", "heldout-jpeg"])
    ap.add_argument("--eval", type=int, default=200)
    ap.add_argument("--in-domain", type=int, default=300)
    ap.add_argument("--home", type=Path, default=Path("var/bench-adapt"))
    ap.add_argument("--budget-s", type=float, default=900.0)
    ap.add_argument("--synthetic", type=int, default=None, help="default: adapt.synthetic_images")
    ap.add_argument("--epochs", type=int, default=None, help="default: adapt.epochs")
    ap.add_argument("--frozen-stages", type=int, default=None, help="default: adapt.frozen_stages")
    ap.add_argument("--views", type=int, default=None, help="default: adapt.views")
    ap.add_argument("--no-adabn", action="store_true")
    ap.add_argument("--decoys", type=float, default=None, help="default: adapt.decoy_share")
    ap.add_argument("--distill", type=float, default=None, help="default: adapt.distill_weight")
    ap.add_argument("--draw", type=int, default=31, help="which draw of the style family is the scanner")
    ap.add_argument("--in-domain-seed", type=int, default=44)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    shutil.rmtree(args.home, ignore_errors=True)
    settings = load_settings(environ={}, home=args.home)
    if register_bundled(settings) is None:
        raise SystemExit("the bundled model does not fit the model settings")
    classes, size = list(settings.model.classes), settings.model.input_size
    style = sample_style(style_rng(args.draw, 0), args.style)
    t0 = time.perf_counter()
    images, _ = _render(style, 41, args.images, classes, 0.02)
    benign, _ = _render(style, 42, args.eval, classes, 0.0)
    threats, t_labels = _render(style, 43, args.eval, classes, 1.0)
    held_out: tuple[torch.Tensor, list[list[str]]] = (_canvases(benign + threats, size), [[] for _ in benign] + t_labels)
    in_dom, _ = render_set(args.in_domain, args.in_domain_seed, classes, size, style=settings.model.train_style, progress=False)
    in_domain = (in_dom.canvases, _labels_of(in_dom))
    render_s = time.perf_counter() - t0
    _, parent = registry.load_registered(settings, "champion")
    clf = Classifier(registry.build_model(parent), parent)
    sets = {"held_out": held_out, "in_domain": in_domain}
    scores_before = {k: model_scores(clf, canvases) for k, (canvases, _) in sets.items()}
    before = {k: _figures(clf, scores_before[k], sets[k][1]) for k in sets}
    a = settings.adapt
    cfg = AdaptConfig.from_settings(
        a, settings.model.seed, epochs=args.epochs or a.epochs, time_budget_s=args.budget_s,
        synthetic_images=a.synthetic_images if args.synthetic is None else args.synthetic,
        frozen_stages=a.frozen_stages if args.frozen_stages is None else args.frozen_stages,
        views=args.views or a.views, adabn=a.adabn and not args.no_adabn,
        decoy_share=a.decoy_share if args.decoys is None else args.decoys,
        distill_weight=a.distill_weight if args.distill is None else args.distill)
    load0, t1, c1 = os.getloadavg()[0], time.perf_counter(), time.process_time()
    result = adapt_model(settings, images, "adapted-bench", scanner=f"{args.style}-{args.draw}", cfg=cfg, source="bench")
    adapt_s, adapt_cpu = time.perf_counter() - t1, time.process_time() - c1
    ck = result.checkpoint
    clf_after = Classifier(registry.build_model(ck), ck)
    scores_after = {k: model_scores(clf_after, canvases) for k, (canvases, _) in sets.items()}
    after = {k: _figures(clf_after, scores_after[k], sets[k][1]) for k in sets}
    change = {k: paired_change(scores_before[k], scores_after[k], sets[k][1], clf.classes) for k in sets}
    report = {"images": args.images, "style": args.style, "eval_benign": len(benign), "eval_threats": len(threats),
              "in_domain_images": len(in_dom), "config": result.summary["config"],
              "render_s": round(render_s, 1), "adapt_s": round(adapt_s, 1), "adapt_cpu_s": round(adapt_cpu, 1),
              "load_avg_1min": [round(load0, 1), round(os.getloadavg()[0], 1)],
              "stage_seconds": result.summary["stage_seconds"],
              "epochs_run": len(ck.metrics["history"]), "history": ck.metrics["history"],
              "before": before, "after": after, "change": change,
              "certification_set": {k: result.summary[k] for k in ("before", "after")},
              "certificate_expected_workload": ck.certificate["expected_workload"],
              "kept": result.summary["kept"], "adaptation_backgrounds": result.summary["adaptation_backgrounds"],
              "held_out_backgrounds": result.summary["held_out_backgrounds"]}
    text = json.dumps(report, indent=1, default=str)
    if args.out:
        args.out.write_text(text, encoding="utf-8")
    print(text)


if __name__ == "__main__":
    main()
