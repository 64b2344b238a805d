"""Does breadth of training contents carry over to threat kinds never seen? Two fine-tuning arms from one model,
same budget and seed: `narrow` on the renderer's training split; `broad` on the training split plus one held-out
variant per class moved into training (MOVED). Both, and the starting model, are then scored on the variants
that stay held out (neither arm saw them), with the training scanners and with the held-out scanner, and
in-domain. An experiment, not a product path: the split is changed only inside this process (and the rendering
processes it forks), through xray.threats.HELDOUT_VARIANTS.

    .venv/bin/python -m bench.content_breadth --from sample_data/models/v3-soup-tone/model.pt \\
        --n-train 6000 --epochs 2 --eval-n 400 --out var/breadth --json var/breadth.json

Figures: docs/MODEL.md, "Where its held-out loss comes from".
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import xray.threats as threats
from screening.assess import score_synthetic
from screening.classifier import Classifier
from screening.evaluate import metrics
from screening.reference import train_reference
from screening.registry import load_checkpoint, save_checkpoint
from xscreen.settings import ModelSettings, load_settings

# One held-out variant per class moved into training for the broad arm (lithium_battery has one held-out variant
# only: it stays held out, and measured).
MOVED = {"firearm": "pistol_pocket", "knife": "cleaver", "ammunition": "stripper_clip", "narcotics": "in_tin",
         "currency": "roll"}
EVAL_SETS = (("in-domain", "train", "train", False), ("unseen kinds, training scanners", "train", "heldout", True),
             ("unseen kinds, held-out scanner", "heldout", "heldout", True))


@contextmanager
def held_out(move: bool) -> Iterator[None]:
    """The renderer's threat split with MOVED taken out of the held-out variants (move=True), restored after."""
    original = dict(threats.HELDOUT_VARIANTS)
    for cls, v in MOVED.items():
        if v not in original.get(cls, ()):
            raise SystemExit(f"{cls}/{v} is not a held-out variant any more: update MOVED")
    if move:
        for cls, held in original.items():
            threats.HELDOUT_VARIANTS[cls] = tuple(v for v in held if v != MOVED.get(cls))
    try:
        yield
    finally:
        threats.HELDOUT_VARIANTS.clear()
        threats.HELDOUT_VARIANTS.update(original)


def scores(clf: Classifier, n: int, seed: int) -> dict[str, dict[str, Any]]:
    """Any-threat AUC, PD at FAR 5% and class AP on each evaluation set (held-out sets: the remaining variants), by
    the metrics `xscreen evaluate` reports (screening.evaluate.metrics)."""
    out: dict[str, dict[str, Any]] = {}
    for name, style, content, remaining in EVAL_SETS:
        with held_out(remaining):
            p_any, p_cls, any_y, cls_y, _ = score_synthetic(clf, n, seed, style=style, content_split=content)
        m = metrics(p_any, any_y, p_cls, cls_y, clf.classes, clf.point)
        out[name] = {"auc": m["any_threat"]["auc"], "pd_at_far_5": m["any_threat"]["pd_at_far"]["0.05"],
                     "mean_class_ap": m["mean_class_ap"], "class_ap": {c: v["ap"] for c, v in m["classes"].items()}}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--from", dest="parent", type=Path, default=ModelSettings().bundled, help="default: the bundled model")
    ap.add_argument("--n-train", type=int, default=6000)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--lr", type=float, default=3e-3, help="as screening.reference: fine-tuning uses a third")
    ap.add_argument("--seed", type=int, default=5131)
    ap.add_argument("--eval-n", type=int, default=400)
    ap.add_argument("--eval-seed", type=int, default=4243)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--out", type=Path, default=Path("var/breadth"))
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    settings = load_settings()
    parent = load_checkpoint(args.parent)
    models = {parent.version: Classifier.from_checkpoint(args.parent)}
    for arm, move in (("narrow", False), ("broad", True)):
        t0 = time.perf_counter()
        with held_out(move):
            ckpt, _ = train_reference(settings, args.n_train, args.epochs, 16, args.lr, args.workers, seed=args.seed,
                                      parent=parent, name=f"breadth-{arm}")
        path = args.out / ckpt.version / "model.pt"
        save_checkpoint(ckpt, path)
        print(f"{arm}: trained in {time.perf_counter() - t0:.0f} s -> {path}", flush=True)
        models[ckpt.version] = Classifier.from_checkpoint(path)
    results = {name: scores(clf, args.eval_n, args.eval_seed) for name, clf in models.items()}
    for name, sets in results.items():
        for set_name, r in sets.items():
            print(f"{name:16s} {set_name:32s} AUC {r['auc']:.3f}  PD@FAR5% {r['pd_at_far_5']:.3f}  "
                  f"class AP {r['mean_class_ap']:.3f}  " + " ".join(f"{c} {a:.2f}" for c, a in r["class_ap"].items()))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(results, f, indent=2)


if __name__ == "__main__":
    main()
