"""What an adapted model is, in sentences for the Models page: the scanner and scans it was adapted from, what
its certificate rests on, how it was fine-tuned, and the parent-against-adapted figures on its certification set
(`metrics.adaptation`, written by screening.adapt). Models that were not adapted have none."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def adaptation_lines(metrics: Mapping[str, Any]) -> list[str]:
    """Sentences about a model's adaptation (empty for a model that was not adapted). Models adapted before a
    field was recorded simply lack that sentence."""
    a = metrics.get("adaptation")
    if not isinstance(a, Mapping):
        return []
    lines = [f"Adapted for scanner {a.get('scanner') or '(unnamed)'} from {a.get('images', '?')} unlabelled scans "
             f"({a.get('source', 'source not recorded')}): {a.get('kept', '?')} kept after dropping the most "
             f"threat-like, {a.get('adaptation_backgrounds', '?')} to fine-tune on, "
             f"{a.get('held_out_backgrounds', '?')} held out to certify with "
             f"{a.get('certification_projections', '?')} projected threats."]
    before, after = a.get("before") or {}, a.get("after") or {}
    pd_b, pd_a = (before.get("pd_at_far") or {}).get("0.05"), (after.get("pd_at_far") or {}).get("0.05")
    if pd_b is not None and pd_a is not None:
        auc = ""
        if before.get("auc") is not None and after.get("auc") is not None:
            auc = f", AUC {before['auc']:.2f} → {after['auc']:.2f}"
        lines.append(f"On its certification set (held-out scans of the scanner with projected certification-part "
                     f"threats), parent → adapted: PD at FAR 5% {pd_b:.2f} → {pd_a:.2f}{auc}.")
    articles, seizures = a.get("library_articles") or {}, a.get("seizure_signatures") or {}
    if articles:
        lines.append(f"Threat library {a.get('library_version', '?')}: {articles.get('training', 0)} training and "
                     f"{articles.get('certification', 0)} certification articles, of which "
                     f"{seizures.get('training', 0)} and {seizures.get('certification', 0)} are cut from real "
                     f"seizures.")
    cfg = a.get("config")
    if isinstance(cfg, Mapping):
        distill = cfg.get("distill_weight")
        lines.append(f"Fine-tuned {cfg.get('epochs', '?')} epoch(s) with {cfg.get('frozen_stages', '?')} frozen "
                     f"stage(s), AdaBN {'on' if cfg.get('adabn') else 'off'}, "
                     f"{cfg.get('synthetic_images', '?')} synthetic renders mixed in"
                     + (f", held near the parent's outputs (distillation weight {distill:g})" if distill else
                        ", without distillation") + ".")
    if a.get("seconds") is not None:
        lines.append(f"Adapting took {a['seconds']:.0f} s.")
    return lines
