"""Time to adapt the champion to a held-out scanner from N of its unlabelled scans, and before/after per class.

    .venv/bin/python bench/bench_adapt.py --images 500 [--home var/bench-adapt] [--budget-s 900] [--eval 200]

The "scanner" is one draw of the held-out style family (seed 31); its adaptation scans, the evaluation benign
scans and the evaluation threat scans are three separate renders (seeds 41 / 42 / 43). The champion is the
bundled model (registered into a fresh home). Prints one JSON object: seconds (rendering apart), the adapted
certificate's figures, and on the independent evaluation renders any-threat PD at FAR 5%, share of benign and
of threats routed to officers at each model's certified point, and per-class AP, before and after.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

import numpy as np
from sklearn.metrics import average_precision_score

from screening import registry
from screening.adapt import AdaptConfig, adapt_model, scored_any
from screening.classifier import Classifier
from screening.evaluate import pd_at_far
from screening.train import register_bundled
from xray.styles import render_styled, sample_style, style_rng
from xscreen.settings import load_settings


def _render(style: object, seed: int, n: int, classes: list[str], rate: float) -> tuple[list[np.ndarray], list[list[str]]]:
    out = [render_styled(np.random.default_rng([seed, i]), style, classes=classes, threat_rate=rate)[1]  # type: ignore[arg-type]
           for i in range(n)]
    return [s.image for s in out], [s.labels for s in out]


def _figures(clf: Classifier, benign: list[np.ndarray], threats: list[np.ndarray], labels: list[list[str]]) -> dict[str, object]:
    import torch

    from screening.preprocess import letterbox_uint8

    pb, pt = scored_any(clf, benign), scored_any(clf, threats)
    clear = clf.ckpt.thresholds["any_threat"]["clear"]
    with torch.inference_mode():
        canv = torch.stack([torch.from_numpy(letterbox_uint8(im, clf.input_size)[0].copy()) for im in benign + threats])
        p_cls = np.concatenate([clf.scores(canv[i:i + 32].float().div_(255.0))[1] for i in range(0, len(canv), 32)])
    ap = {}
    for j, c in enumerate(clf.classes):
        y = np.array([0] * len(benign) + [int(c in lab) for lab in labels])
        if 0 < y.sum() < len(y):
            ap[c] = round(float(average_precision_score(y, p_cls[:, j])), 3)
    return {"pd_at_far5": round(pd_at_far(np.r_[pb, pt], np.r_[np.zeros(len(pb)), np.ones(len(pt))], 0.05), 3),
            "benign_routed": round(float((pb >= clear).mean()), 3), "threats_routed": round(float((pt >= clear).mean()), 3),
            "class_ap": ap}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--images", type=int, default=500)
    ap.add_argument("--eval", type=int, default=200)
    ap.add_argument("--home", type=Path, default=Path("var/bench-adapt"))
    ap.add_argument("--budget-s", type=float, default=900.0)
    args = ap.parse_args()
    shutil.rmtree(args.home, ignore_errors=True)
    settings = load_settings(environ={}, home=args.home)
    if register_bundled(settings) is None:
        raise SystemExit("the bundled model does not fit the model settings")
    classes = list(settings.model.classes)
    style = sample_style(style_rng(31, 0), "heldout")
    t0 = time.perf_counter()
    images, _ = _render(style, 41, args.images, classes, 0.02)
    benign, _ = _render(style, 42, args.eval, classes, 0.0)
    threats, labels = _render(style, 43, args.eval, classes, 1.0)
    render_s = time.perf_counter() - t0
    _, parent = registry.load_registered(settings, "champion")
    before = _figures(Classifier(registry.build_model(parent), parent), benign, threats, labels)
    a = settings.adapt
    cfg = AdaptConfig(epochs=a.epochs, synthetic_images=a.synthetic_images, time_budget_s=args.budget_s,
                      library_articles=a.library_articles, library_poses=a.library_poses, seed=settings.model.seed)
    t1 = time.perf_counter()
    result = adapt_model(settings, images, "adapted-bench", scanner="heldout-31", cfg=cfg, source="bench")
    adapt_s = time.perf_counter() - t1
    ck = result.checkpoint
    after = _figures(Classifier(registry.build_model(ck), ck), benign, threats, labels)
    print(json.dumps({"images": args.images, "render_s": round(render_s, 1), "adapt_s": round(adapt_s, 1),
                      "epochs_run": len(ck.metrics["history"]), "independent_eval": {"before": before, "after": after},
                      "certification_set": {k: result.summary[k] for k in ("before", "after")},
                      "certificate_expected_workload": ck.certificate["expected_workload"]}, indent=1, default=str))


if __name__ == "__main__":
    main()
