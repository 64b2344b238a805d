"""The label-free estimate (CBPE) with a real model on rendered mail: detection and false-alarm rate at the
model's certified operating point estimated from its calibrated scores alone, against the realised rates on the
same parcels (issue 16: "CBPE within 3 points of true accuracy on baseline"). bench/monitor_e2e.py measures the
same on simulated streams; this measures it on the bundled network's own scores, in-domain and under shift.

    .venv/bin/python -m bench.cbpe_model --checkpoint sample_data/models/v3-soup-tone/model.pt --n 400 \\
        --seeds 4251,4252 --styles reference,train,heldout:train,heldout

Columns are style families as in bench.eval_synthetic (`family` or `family:content split`). The rendered sets hold
about as many threats as benign parcels, like the calibration split the temperatures were fitted on; at another
prevalence the scores would need re-weighting first (docs/MONITORING.md, label-free accuracy).
"""

from __future__ import annotations

import argparse
import json
from typing import Any

import numpy as np

from analytics.monitoring.estimation import cbpe
from screening.assess import score_synthetic
from screening.calibration import verdicts
from screening.classifier import Classifier
from xscreen.settings import ModelSettings


def measure(clf: Classifier, style: str, n: int, seed: int) -> dict[str, Any]:
    """CBPE against the realised rates on n parcels of `seed` in `style`."""
    family, _, split = style.partition(":")
    p_any, p_cls, any_y, _, _ = score_synthetic(clf, n, seed, style=family, content_split=split or None)
    routed = verdicts(p_any, p_cls, clf.classes, clf.point) != "clear"
    est = cbpe(p_any, routed, n_boot=200, seed=seed)
    threat = any_y == 1
    real_pd, real_far = float(routed[threat].mean()), float(routed[~threat].mean())
    return {"style": style, "seed": seed, "n": n, "prevalence": float(threat.mean()),
            "detection_estimated": est.detection, "detection_realised": real_pd,
            "detection_error_points": 100 * (est.detection - real_pd),
            "false_alarm_estimated": est.false_alarm, "false_alarm_realised": real_far,
            "false_alarm_error_points": 100 * (est.false_alarm - real_far)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", default=str(ModelSettings().bundled), help="default: the bundled model")
    ap.add_argument("--n", type=int, default=400, help="parcels per set")
    ap.add_argument("--seeds", default="4251,4252")
    ap.add_argument("--styles", default="reference,train,heldout:train,heldout")
    ap.add_argument("--json", default=None, help="also write the rows to this file")
    args = ap.parse_args()
    clf = Classifier.from_checkpoint(args.checkpoint)
    rows = []
    for style in args.styles.split(","):
        for seed in (int(s) for s in args.seeds.split(",")):
            r = measure(clf, style.strip(), args.n, seed)
            rows.append(r)
            print(f"{r['style']:14s} seed {seed}: detection estimated {r['detection_estimated']:.3f}, realised "
                  f"{r['detection_realised']:.3f} ({r['detection_error_points']:+.1f} points); false alarms "
                  f"estimated {r['false_alarm_estimated']:.3f}, realised {r['false_alarm_realised']:.3f} "
                  f"({r['false_alarm_error_points']:+.1f} points)", flush=True)
    for style in dict.fromkeys(r["style"] for r in rows):
        errors = [abs(r[k]) for r in rows if r["style"] == style
                  for k in ("detection_error_points", "false_alarm_error_points")]
        print(f"{style}: mean absolute error {np.mean(errors):.1f} points, largest {np.max(errors):.1f}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(rows, f, indent=2)


if __name__ == "__main__":
    main()
