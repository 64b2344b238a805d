"""The promotion gate's decision: a candidate against the champion on the same items, at each model's operating
point. Pure: arrays of truth and of each model's flags in, a JSON-able report (what the store keeps) out.

A model flags an item when its verdict is not `clear` (inspect or uncertain: an officer looks). The candidate
passes when
- its miss rate on the threat items is within its certified miss rate (the conformal certificate's alpha),
- its detection is non-inferior to the champion's within `margin`, on all threats (whatever their number: too
  few fail, as the interval is wide) and on every class with at least `min_class_items` threat items (Newcombe's paired interval, gate.detection_non_inferiority), and
- it does not make significantly more errors than the champion on the items they disagree on (exact McNemar,
  one-sided "less" at `mcnemar_alpha`), and
- where the drift is (the `focus` items: the drifted scanner's labelled mail, or a benchmark folder of the new
  goods or concealment), it is right significantly more often than the champion (exact McNemar, one-sided
  "greater" at `focus_alpha`). A candidate retrained for a drift that is no better there has not fixed it, however
  well it does elsewhere; without focus items this criterion is not applied (a routine retrain).
Classes with fewer items are reported, not judged: a margin on five items says nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from analytics.monitoring.errors import MonitoringInputError
from analytics.monitoring.gate import detection_non_inferiority, mcnemar_exact


@dataclass(frozen=True)
class GateCriteria:
    """What the candidate must meet. Rates in [0, 1]."""

    margin: float = 0.05  # largest drop of detection rate (candidate - champion) tolerated, per class
    confidence: float = 0.95  # of the non-inferiority intervals
    min_class_items: int = 10  # threat items a class needs to be judged
    mcnemar_alpha: float = 0.05  # significance of "the candidate makes more errors"
    focus_alpha: float = 0.05  # significance of "the candidate makes fewer errors where the drift is"


def _rates(flagged: np.ndarray, threat: np.ndarray) -> dict[str, float | None]:
    benign = ~threat
    return {"detection": float(flagged[threat].mean()) if threat.any() else None,
            "false_alarms": float(flagged[benign].mean()) if benign.any() else None}


def _judge(name: str, champion: np.ndarray, candidate: np.ndarray, c: GateCriteria, min_items: int) -> dict[str, Any]:
    """Detection of both on one class's threat items and the non-inferiority verdict (None: too few items)."""
    entry: dict[str, Any] = {"n": int(champion.size),
                             "champion_detection": float(champion.mean()) if champion.size else None,
                             "candidate_detection": float(candidate.mean()) if candidate.size else None}
    if champion.size >= max(min_items, 1):
        ni = detection_non_inferiority(champion, candidate, margin=c.margin, confidence=c.confidence, class_name=name)
        entry["non_inferiority"] = {k: v for k, v in asdict(ni).items() if k != "class_name"}
        entry["non_inferior"] = ni.non_inferior
    else:
        entry["non_inferior"] = None
    return entry


def _focus(truth: np.ndarray, champ: np.ndarray, cand: np.ndarray, c: GateCriteria) -> dict[str, Any]:
    """Both models on the focus items: rates, the one-sided McNemar that the candidate is right more often, and
    whether that holds at `focus_alpha`."""
    mc = mcnemar_exact(champ == truth, cand == truth, alternative="greater")
    return {"n": int(truth.size), "n_threat": int(truth.sum()), "champion": _rates(champ, truth),
            "candidate": _rates(cand, truth), "champion_errors": int((champ != truth).sum()),
            "candidate_errors": int((cand != truth).sum()),
            "mcnemar": {"b": mc.b, "c": mc.c, "p_value": mc.p_value, "alternative": mc.alternative},
            "better": bool(mc.p_value < c.focus_alpha)}


def gate_report(any_truth: np.ndarray, class_truth: Mapping[str, np.ndarray], champion_flagged: np.ndarray,
                candidate_flagged: np.ndarray, *, certified_miss: float | None,
                criteria: GateCriteria = GateCriteria(), sources: Mapping[str, int] | None = None,
                focus: np.ndarray | None = None) -> dict[str, Any]:
    """The gate's report. any_truth (N,) bool: the item holds a threat; class_truth[c] (N,) in {-1, 0, 1}
    (-1: unknown, left out of that class); *_flagged (N,) bool. `certified_miss`: the candidate's certified
    alpha (None: not certified, which fails). `sources`: items per source, recorded as given. `focus` (N,) bool:
    the items where the drift is (None or none marked: not judged, the report's `focus` is None)."""
    truth = np.asarray(any_truth, dtype=bool)
    champ, cand = np.asarray(champion_flagged, dtype=bool), np.asarray(candidate_flagged, dtype=bool)
    if not truth.size or truth.shape != champ.shape or truth.shape != cand.shape:
        raise MonitoringInputError(f"gate: need equal, non-empty arrays, got {truth.size}, {champ.size}, {cand.size}")
    in_focus = np.zeros(truth.shape, bool) if focus is None else np.asarray(focus, dtype=bool)
    if in_focus.shape != truth.shape:
        raise MonitoringInputError(f"gate: the focus mask has {in_focus.size} items, the truth {truth.size}")
    reasons: list[str] = []
    if not truth.any():
        reasons.append("no threat items: detection cannot be judged")
    # all threats together are always judged: too few of them fail (the interval is wide), they are not skipped
    overall: dict[str, Any] = ({"non_inferior": None} if not truth.any()
                               else _judge("any_threat", champ[truth], cand[truth], criteria, 1))
    classes = {}
    for name, labels in class_truth.items():
        on = np.asarray(labels) == 1
        classes[name] = _judge(name, champ[on], cand[on], criteria, criteria.min_class_items)
    mc = mcnemar_exact(champ == truth, cand == truth, alternative="less")
    miss = 1.0 - float(cand[truth].mean()) if truth.any() else None
    if certified_miss is None:
        reasons.append("the candidate has no certified miss rate")
    elif miss is not None and miss > certified_miss:
        reasons.append(f"candidate misses {miss:.1%} of threats, above its certified {certified_miss:.1%}")
    for name, entry in {"any_threat": overall, **classes}.items():
        if entry["non_inferior"] is False:
            low = entry["non_inferiority"]["low"]
            reasons.append(f"{name}: detection may drop by {-low:.1%}, beyond the {criteria.margin:.1%} margin")
    if mc.p_value < criteria.mcnemar_alpha:
        reasons.append(f"more errors than the champion on discordant items (McNemar p = {mc.p_value:.3g})")
    where = _focus(truth[in_focus], champ[in_focus], cand[in_focus], criteria) if in_focus.any() else None
    if where is not None and not where["better"]:
        m = where["mcnemar"]
        reasons.append(f"not better where the drift is: {where['candidate_errors']} errors against the champion's "
                       f"{where['champion_errors']} on {where['n']} items (right where the champion is wrong on "
                       f"{m['c']}, the reverse on {m['b']}; McNemar p = {m['p_value']:.3g}, needs < "
                       f"{criteria.focus_alpha:g})")
    return {
        "passed": not reasons, "reasons": reasons, "n": int(truth.size), "n_threat": int(truth.sum()),
        "sources": dict(sources or {}), "criteria": asdict(criteria),
        "champion": _rates(champ, truth), "candidate": _rates(cand, truth),
        "certified_miss": certified_miss, "candidate_miss": miss, "any_threat": overall, "classes": classes,
        "mcnemar": {"b": mc.b, "c": mc.c, "p_value": mc.p_value, "alternative": mc.alternative},
        "focus": where,
    }


__all__ = ["GateCriteria", "gate_report"]
