"""The Models page's sentences about an adapted model (analytics/adaptation.py)."""

from __future__ import annotations

from analytics.adaptation import adaptation_lines
from tests.seeding import ADAPTATION_SUMMARY as SUMMARY


def test_an_adapted_model_is_told_in_sentences_with_its_figures() -> None:
    lines = adaptation_lines({"adaptation": SUMMARY, "history": []})
    assert lines == [
        "Adapted for scanner scanner-4 from 500 unlabelled scans (store: recent cleared scans of scanner-4): 475 kept "
        "after dropping the most threat-like, 333 to fine-tune on, 142 held out to certify with 142 projected threats.",
        "On its certification set (held-out scans of the scanner with projected certification-part threats), parent "
        "→ adapted: PD at FAR 5% 0.15 → 0.25, AUC 0.62 → 0.71.",
        "Threat library lib-3: 48 training and 48 certification articles, of which 33 and 8 are cut from real "
        "seizures.",
        "Fine-tuned 2 epoch(s) with 3 frozen stage(s), AdaBN on, 600 synthetic renders mixed in, held near the "
        "parent's outputs (distillation weight 1).",
        "Adapting took 64 s.",
    ]


def test_a_model_adapted_before_the_config_was_stored_lacks_only_that_sentence() -> None:
    old = {k: v for k, v in SUMMARY.items() if k != "config"}
    lines = adaptation_lines({"adaptation": old})
    assert len(lines) == 4 and not any(line.startswith("Fine-tuned") for line in lines)
    no_distill = {**SUMMARY, "config": {**SUMMARY["config"], "distill_weight": 0.0}}
    assert adaptation_lines({"adaptation": no_distill})[3].endswith("mixed in, without distillation.")


def test_a_model_that_was_not_adapted_has_no_sentences() -> None:
    assert adaptation_lines({"history": [], "any_threat": {"auc": 0.9}}) == []
    assert adaptation_lines({"adaptation": None}) == []
