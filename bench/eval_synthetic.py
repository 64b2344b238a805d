"""Score a registered model on held-out synthetic sets rendered in memory: the figures of docs/MODEL.md.

Each set is rendered with `screening.synthetic.render_set` (pixel-identical to what `xscreen synth --seed S
[--style F]` writes, without the file round trip) and scored with the code `xscreen evaluate` runs
(`screening.assess.score_set` and `screening.evaluate.metrics`), including heatmap localisation against the
generator's boxes.

    XSCREEN_HOME=<home> XSCREEN_NETWORK__STORE_PORT=<free port> .venv/bin/python -m bench.eval_synthetic \\
        --model champion --baseline 2000 --scenarios 250 [--more-baseline-seeds 999] --json out.json

Issue 13's "Done when", side by side (in-domain: the reference rendering and the training style family; a scanner
never seen: the held-out style and its grey-only and JPEG-only variants; the same parcels in every column), and the
benign-only invariance report (scores against image size, padding, hue calibration, grey, JPEG):

    .venv/bin/python -m bench.eval_synthetic --model champion --baseline 0 --scenarios 0 \\
        --styles all --style-n 1000 --style-seed 4243 --invariance 300 --json styles.json
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

import numpy as np

from screening.assess import (
    STYLE_SETS,
    Scored,
    format_side_by_side,
    pooled_metrics,
    score_synthetic,
    style_report,
)
from screening.classifier import Classifier
from screening.invariance import format_report, invariance_report
from xray.scenarios import SCENARIOS
from xscreen.settings import load_settings


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="champion")
    ap.add_argument("--checkpoint", default=None, help="score this model.pt instead of a registered --model (no store "
                    "needed), e.g. sample_data/models/reference-288-v2/model.pt")
    ap.add_argument("--baseline", type=int, default=2000, help="baseline images (seed --seed)")
    ap.add_argument("--scenarios", type=int, default=250, help="images per drift scenario (seed --seed + 1); 0 = skip")
    ap.add_argument("--seed", type=int, default=777)
    ap.add_argument("--more-baseline-seeds", default="",
                    help="comma-separated seeds of further baseline sets of --baseline images: each is reported, and "
                         "all baseline sets pooled (AP differs by about 0.01 between two 2,000-scan sets)")
    ap.add_argument("--styles", default="", help="comma-separated style families (or `all`: "
                    f"{','.join(STYLE_SETS)}) scored side by side on --style-n parcels of --style-seed")
    ap.add_argument("--style-n", type=int, default=1000)
    ap.add_argument("--style-seed", type=int, default=4243)
    ap.add_argument("--invariance", type=int, default=0, help="benign parcels for the invariance report; 0 = skip")
    ap.add_argument("--invariance-seed", type=int, default=4244)
    ap.add_argument("--json", default=None, help="also write all results to this file")
    args = ap.parse_args()
    clf = (Classifier.from_checkpoint(args.checkpoint) if args.checkpoint
           else Classifier.from_registry(load_settings(), args.model))
    results: dict[str, Any] = _scenario_sets(clf, args) if args.baseline else {"model": clf.version}
    if args.styles:
        styles = STYLE_SETS if args.styles == "all" else tuple(x.strip() for x in args.styles.split(","))
        t0 = time.perf_counter()
        results["styles"] = style_report(clf, args.style_n, args.style_seed, styles)
        print(f"\n{clf.version} on {args.style_n} parcels of seed {args.style_seed} in each style "
              f"({time.perf_counter() - t0:.0f} s):\n{format_side_by_side(results['styles'])}", flush=True)
    if args.invariance:
        t0 = time.perf_counter()
        report = invariance_report(clf, args.invariance, args.invariance_seed)
        results["invariance"] = {k: vars(v) for k, v in report.shifts.items()}
        print(f"\n{clf.version}: {args.invariance} benign parcels of seed {args.invariance_seed}, any-threat scores "
              f"against the base presentation ({time.perf_counter() - t0:.0f} s):\n{format_report(report)}", flush=True)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(results, f, indent=2, default=float)


def _scenario_sets(clf: Classifier, args: argparse.Namespace) -> dict[str, Any]:
    """The baseline set(s) and drift scenarios of the reference rendering (the original figures of MODEL.md)."""
    extra = [int(x) for x in args.more_baseline_seeds.split(",") if x.strip()]
    # (label, scenario, n, seed)
    sets = [("baseline", "baseline", args.baseline, args.seed)]
    sets += [(f"baseline_seed{x}", "baseline", args.baseline, x) for x in extra]
    if args.scenarios:
        sets += [(s, s, args.scenarios, args.seed + 1) for s in SCENARIOS if s != "baseline"]
    results: dict[str, Any] = {"model": clf.version}
    baselines: list[Scored] = []
    for label, scenario, n, seed in sets:
        t0 = time.perf_counter()
        scored = score_synthetic(clf, n, seed, scenario)
        results[label] = pooled_metrics(clf, [scored])
        _report(label, results[label], time.perf_counter() - t0)
        if scenario == "baseline":
            baselines.append(scored)
            if len(baselines) == 1 + len(extra) > 1:
                results["baseline_pooled"] = pooled_metrics(clf, baselines)
                _report("baseline_pooled", results["baseline_pooled"], 0.0)
    return results


def _report(label: str, r: dict[str, Any], seconds: float) -> None:
    a = r["any_threat"]
    cls_ap = np.mean([v["ap"] for v in r["classes"].values()])
    print(f"{label:16s} n={r['n']:5d} ({r['n_threat']}) any AUC {a['auc']:.3f} AP {a['ap']:.3f} "
          f"PD@1% {a['pd_at_far']['0.01']:.3f} PD@5% {a['pd_at_far']['0.05']:.3f} FAR@PD95 {a['far_at_pd_95']:.3f} "
          f"ECE {a['ece']:.3f} mean class AP {cls_ap:.3f} peak-in-box {r['localisation']['hit_rate']:.3f} "
          f"of {r['localisation']['n']}  ({seconds:.0f} s)", flush=True)
    print("   " + "  ".join(f"{c} {v['ap']:.3f}/{v['auc']:.3f}" for c, v in r["classes"].items()), flush=True)


if __name__ == "__main__":
    main()
