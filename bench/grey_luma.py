"""Does the model read grey scans? The same rendered parcels scored as their colour image and as its luma (ITU-R
BT.601 grey), per style family: a gap here is greyness itself; the heldout-grey column of bench.eval_synthetic adds
the held-out grey display's tone curve on top (docs/MODEL.md, "Grey scans").

    .venv/bin/python -m bench.grey_luma --checkpoint sample_data/models/v3-soup-tone/model.pt --n 400
"""

from __future__ import annotations

import argparse

import torch
from sklearn.metrics import roc_auc_score

from screening.assess import score_set
from screening.augment_ops import LUMA
from screening.classifier import Classifier
from screening.synthetic import render_set
from xscreen.settings import ModelSettings


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", default=str(ModelSettings().bundled), help="default: the bundled model")
    ap.add_argument("--n", type=int, default=400)
    ap.add_argument("--seed", type=int, default=4243)
    ap.add_argument("--styles", default="train:train,heldout:train,heldout:heldout", help="family:content split")
    args = ap.parse_args()
    clf = Classifier.from_checkpoint(args.checkpoint)
    for name in args.styles.split(","):
        style, _, split = name.strip().partition(":")
        data, _ = render_set(args.n, args.seed, clf.classes, clf.input_size, progress=False, style=style,
                             content_split=split or None)
        colour, _, _ = score_set(clf, data, {})
        c = data.canvases.float()
        luma = (LUMA[0] * c[:, 0] + LUMA[1] * c[:, 1] + LUMA[2] * c[:, 2]).round().clamp(0, 255).to(torch.uint8)
        data.canvases = luma.unsqueeze(1).repeat(1, 3, 1, 1).contiguous()
        grey, _, _ = score_set(clf, data, {})
        print(f"{name}: any-threat AUC colour {roc_auc_score(data.any_labels, colour):.3f}, "
              f"the same parcels as luma grey {roc_auc_score(data.any_labels, grey):.3f}", flush=True)


if __name__ == "__main__":
    main()
