"""The embedding-drift signals on a real model's embeddings: how large MMD^2 is between two in-distribution windows
of one scanner, against each drift, beside the threshold the monitoring job uses (`monitoring.mmd_alert`), and the
share of PCA-reconstruction outliers (docs/MONITORING.md, embedding drift). The job's thresholds were set on
simulated embeddings; this measures them on the bundled network's own.

    .venv/bin/python -m bench.embedding_drift [--checkpoint sample_data/models/v3-soup-tone/model.pt] [--n 300] \\
        [--splits 100] [--json out.json]

One scanner is one draw of the training style family (a real scanner has one look). Its reference window and a
second in-distribution window are baseline parcels of two seeds; the drift windows are the same scanner under
`new_goods`, `new_concealment` and `scanner_ageing` at full ramp, and a scanner of the held-out family. Each window
is scored as serving scores a scan (Classifier.predict: the embedding stored with every verdict) and compared with
the reference as the job compares them (`embeddings.mmd_test` with the job's settings: PCA to `mmd_components`,
`mmd_max_samples` a side, `mmd_permutations` permutations, moved at MMD^2 >= `mmd_alert` and p under the job's
level for windows of `--n` scans: `--n` / `drift_arl_items`, halved when the domain classifier runs beside it). The
in-distribution null is MMD^2 over `--splits` random halvings of the two baseline windows pooled. The domain
classifier's cross-validated AUC (`embeddings.domain_classifier_auc`, moved at `domain_auc_alert` and p under the
same level; the job runs it on windows of 200 scans or more) is shown beside MMD.
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

import numpy as np

from analytics.monitoring import embeddings
from screening.classifier import Classifier
from serving.monitor_explain import embedding_alpha
from xray.scenarios import AGEING_SCANNER
from xray.styles import render_styled, sample_style, style_rng
from xscreen.settings import ModelSettings, MonitoringSettings

SCANNER_SEED, HELDOUT_SEED = 61, 62  # the style draws of "our scanner" and of the unseen one
WINDOWS = {  # name -> (style family, scenario, parcel seed)
    "baseline (second window)": ("train", "baseline", 1002),
    "new_goods": ("train", "new_goods", 1003),
    "new_concealment": ("train", "new_concealment", 1004),
    "scanner_ageing": ("train", "scanner_ageing", 1005),
    "unseen scanner (held-out family)": ("heldout", "baseline", 1006),
}


def window(clf: Classifier, family: str, scenario: str, seed: int, n: int) -> np.ndarray:
    """(n, D) embeddings of n parcels of one scanner of `family` (its fixed style draw), as serving scores them."""
    style = sample_style(style_rng(SCANNER_SEED if family == "train" else HELDOUT_SEED, 0), family)
    images = [render_styled(np.random.default_rng([seed, i]), style, classes=clf.classes, threat_rate=0.05,
                            scenario=scenario, progress=1.0, scanner_id=AGEING_SCANNER, max_side=512)[1].image
              for i in range(n)]
    return np.vstack([p.embedding for p in clf.predict(images)]).astype(np.float64)  # predict batches itself


def null_statistics(a: np.ndarray, b: np.ndarray, cfg: MonitoringSettings, splits: int) -> np.ndarray:
    """(splits, 2): MMD^2 and domain AUC of random halvings of two in-distribution windows pooled: what the
    statistics are when nothing moved."""
    pooled, rng = np.vstack([a, b]), np.random.default_rng(0)
    half = pooled.shape[0] // 2
    out = []
    for i in range(splits):
        order = rng.permutation(pooled.shape[0])
        x, y = pooled[order[:half]], pooled[order[half:]]
        out.append((embeddings.mmd_test(x, y, threshold=cfg.mmd_alert, n_components=cfg.mmd_components,
                                        max_samples=cfg.mmd_max_samples, n_permutations=0, seed=i).mmd2,
                    embeddings.domain_classifier_auc(x, y, threshold=cfg.domain_auc_alert, seed=i).auc))
    return np.asarray(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", default=str(ModelSettings().bundled), help="default: the bundled model")
    ap.add_argument("--n", type=int, default=300, help="parcels per window")
    ap.add_argument("--splits", type=int, default=100, help="random halvings for the in-distribution null")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    cfg = MonitoringSettings(drift_window=args.n)
    alpha = embedding_alpha(cfg, args.n, args.n)  # the job's level for windows of this size
    clf = Classifier.from_checkpoint(args.checkpoint)
    t0 = time.perf_counter()
    ref = window(clf, "train", "baseline", 1001, args.n)
    recon = embeddings.fit_reconstruction(ref, n_components=cfg.mmd_components, quantile=cfg.reconstruction_quantile)
    rows: list[dict[str, Any]] = []
    second: np.ndarray | None = None
    for name, (family, scenario, seed) in WINDOWS.items():
        cur = window(clf, family, scenario, seed, args.n)
        second = cur if second is None else second
        m = embeddings.mmd_test(ref, cur, threshold=cfg.mmd_alert, n_components=cfg.mmd_components,
                                max_samples=cfg.mmd_max_samples, n_permutations=cfg.mmd_permutations,
                                alpha=alpha)
        dom = embeddings.domain_classifier_auc(ref, cur, threshold=cfg.domain_auc_alert, alpha=alpha)
        rows.append({"window": name, "mmd2": m.mmd2, "p_value": m.p_value, "moved": m.moved,
                     "domain_auc": dom.auc, "domain_p_value": dom.p_value, "domain_moved": dom.moved,
                     "reconstruction_outliers": float(embeddings.exceedances(recon, cur).mean())})
        print(f"{name:34s} MMD² {m.mmd2:.4f}  p {m.p_value:.3f}  moved {m.moved}  domain AUC {dom.auc:.3f}  "
              f"reconstruction outliers {rows[-1]['reconstruction_outliers']:.1%}", flush=True)
    assert second is not None
    null = null_statistics(ref, second, cfg, args.splits)
    summary: dict[str, Any] = {"n": args.n, "splits": args.splits, "alpha": alpha, "mmd_alert": cfg.mmd_alert,
                               "domain_auc_alert": cfg.domain_auc_alert,
                               "reconstruction_null_rate": 1 - cfg.reconstruction_quantile, "windows": rows}
    for j, name in enumerate(("mmd2", "domain_auc")):
        q = {"median": float(np.median(null[:, j])), "q95": float(np.quantile(null[:, j], 0.95)),
             "q99": float(np.quantile(null[:, j], 0.99)), "max": float(null[:, j].max())}
        summary[f"null_{name}"] = q
        print(f"in-distribution null of {name} over {args.splits} halvings: " + ", ".join(
            f"{k} {v:.4f}" for k, v in q.items()), flush=True)
    summary["seconds"] = round(time.perf_counter() - t0, 1)
    print(f"mmd_alert {cfg.mmd_alert}, domain_auc_alert {cfg.domain_auc_alert}; {summary['seconds']} s")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(summary, f, indent=2)


if __name__ == "__main__":
    main()
