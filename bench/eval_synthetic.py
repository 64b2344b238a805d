"""Score a registered model on held-out synthetic sets rendered in memory: the figures of docs/MODEL.md.

Each set is rendered with `screening.synthetic.render_set` (pixel-identical to what `xscreen synth --seed S`
writes, without the PNG round trip) and scored with the code `xscreen evaluate` runs (`screening.assess.score_set`
and `screening.evaluate.metrics`), including heatmap localisation against the generator's boxes.

    XSCREEN_HOME=<home> XSCREEN_NETWORK__STORE_PORT=<free port> .venv/bin/python -m bench.eval_synthetic \\
        --model champion --baseline 2000 --scenarios 250 [--more-baseline-seeds 999] --json out.json
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

import numpy as np

from screening.assess import Scored, pooled_metrics, score_synthetic
from screening.classifier import Classifier
from xray.scenarios import SCENARIOS
from xscreen.settings import load_settings


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="champion")
    ap.add_argument("--baseline", type=int, default=2000, help="baseline images (seed --seed)")
    ap.add_argument("--scenarios", type=int, default=250, help="images per drift scenario (seed --seed + 1); 0 = skip")
    ap.add_argument("--seed", type=int, default=777)
    ap.add_argument("--more-baseline-seeds", default="",
                    help="comma-separated seeds of further baseline sets of --baseline images: each is reported, and "
                         "all baseline sets pooled (AP differs by about 0.01 between two 2,000-scan sets)")
    ap.add_argument("--json", default=None, help="also write all results to this file")
    args = ap.parse_args()
    settings = load_settings()
    clf = Classifier.from_registry(settings, args.model)
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
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(results, f, indent=2, default=float)


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
