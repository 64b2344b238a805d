"""Canary rates, the accuracy page and the promotion-gate primitives against numbers worked out by hand."""

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from analytics.accuracy import wilson_interval
from analytics.monitoring import canary, certificate, gate
from analytics.monitoring.errors import MonitoringInputError


def test_canary_detection_per_scanner_and_class() -> None:
    frame = pd.DataFrame({"scanner_id": ["s1"] * 4 + ["s2"] * 2, "class_name": ["knife"] * 6,
                          "detected": [True, True, True, False, True, False]})
    got = canary.canary_detection(frame)
    assert got[["scanner_id", "k", "n", "rate"]].values.tolist() == [["s1", 3, 4, 0.75], ["s2", 1, 2, 0.5]]


def test_accuracy_page_fires_on_a_tripled_miss_rate_and_says_so() -> None:
    # certified 5% + margin 3%: 25% misses over a few hundred threats is far beyond; 3% is not
    rng = np.random.default_rng(0)
    bad = canary.accuracy_page(rng.random(400) < 0.25, label="narcotics on scanner-2", certified_miss_rate=0.05,
                               margin=0.03, arl=1e5)
    assert bad.alarm and bad.tolerated_miss_rate == pytest.approx(0.08)
    assert bad.message.startswith("narcotics on scanner-2: ")
    assert "known threats were missed (certified 5%, tolerated up to 8%)" in bad.message
    good = canary.accuracy_page(np.r_[np.ones(3, bool), np.zeros(97, bool)], label="any threat",
                                certified_miss_rate=0.05, margin=0.03, arl=1e5)
    assert not good.alarm
    assert good.message == "any threat: 3 of 100 known threats missed (3%; certified 5%, tolerated up to 8%): holds"


def test_paging_decision_collects_every_alarm() -> None:
    quiet = canary.accuracy_page([False] * 10, label="a", certified_miss_rate=0.05, margin=0.03, arl=1e5)
    loud = certificate.certificate_watch([True] * 60, scanner_id="scanner-3", certified_rate=0.03, margin=0.03,
                                         arl=1e5)
    decision = canary.paging_decision([quiet, loud])
    assert decision.page and decision.reasons == (loud.message,)
    assert not canary.paging_decision([quiet]).page


def test_thinning_keeps_detections_at_the_audit_rate() -> None:
    kept = [canary.thin_detections(1000, 0.05, np.random.default_rng(i)) for i in range(200)]
    assert np.mean(kept) == pytest.approx(50, rel=0.05)
    with pytest.raises(MonitoringInputError, match="inclusion"):
        canary.thin_detections(10, 0.0, np.random.default_rng(0))


def test_mcnemar_exact_on_discordant_pairs_by_hand() -> None:
    # b = 1 (champion right, candidate wrong), c = 6: two-sided p = 2 * P(X <= 1 | 7, 1/2) = 2 * 8 / 128
    champ = np.r_[np.ones(10, bool), [True], np.zeros(6, bool)]
    cand = np.r_[np.ones(10, bool), [False], np.ones(6, bool)]
    res = gate.mcnemar_exact(champ, cand)
    assert (res.b, res.c) == (1, 6) and res.p_value == pytest.approx(16 / 128)
    assert gate.mcnemar_exact(champ, cand, alternative="greater").p_value == pytest.approx(8 / 128)
    assert gate.mcnemar_exact([True], [True]).p_value == 1.0


def test_non_inferiority_newcombe_interval_by_hand() -> None:
    # 50 threats: both detect 40, candidate only 5, champion only 3, neither 2.
    # candidate 45/50 = .90, champion 43/50 = .86, difference .04.
    # phi = (40*2 - 5*3) / sqrt(45 * 5 * 43 * 7) = 65 / sqrt(67725)
    cand = np.r_[np.ones(40, bool), np.ones(5, bool), np.zeros(3, bool), np.zeros(2, bool)]
    champ = np.r_[np.ones(40, bool), np.zeros(5, bool), np.ones(3, bool), np.zeros(2, bool)]
    res = gate.detection_non_inferiority(champ, cand, margin=0.05, class_name="knife")
    w1, w2 = wilson_interval(45, 50), wilson_interval(43, 50)
    phi = 65 / math.sqrt(67725)
    low = 0.04 - math.sqrt((0.9 - w1.low) ** 2 - 2 * phi * (0.9 - w1.low) * (w2.high - 0.86) + (w2.high - 0.86) ** 2)
    high = 0.04 + math.sqrt((w1.high - 0.9) ** 2 - 2 * phi * (w1.high - 0.9) * (0.86 - w2.low) + (0.86 - w2.low) ** 2)
    assert (res.candidate_rate, res.champion_rate, res.difference) == pytest.approx((0.9, 0.86, 0.04))
    assert (res.low, res.high) == pytest.approx((low, high))
    assert res.non_inferior == (low > -0.05)
    assert res.low < 0 < res.high  # 50 threats cannot prove either way: the interval straddles 0


def test_non_inferiority_fails_when_the_candidate_misses_many_more() -> None:
    champ = np.ones(300, bool)
    cand = np.r_[np.ones(255, bool), np.zeros(45, bool)]  # 85% against 100%
    res = gate.detection_non_inferiority(champ, cand, margin=0.05)
    assert res.high < -0.05 and not res.non_inferior


def test_officer_kappa_by_hand() -> None:
    # A: threat threat clear clear; B: threat clear clear clear. p_o = 3/4; p_e = .5 * .25 + .5 * .75 = .5;
    # kappa = (.75 - .5) / (1 - .5) = .5. C labelled nothing in common with A.
    rows = [("i1", "A", "threat"), ("i2", "A", "threat"), ("i3", "A", "clear"), ("i4", "A", "clear"),
            ("i1", "B", "threat"), ("i2", "B", "clear"), ("i3", "B", "clear"), ("i4", "B", "clear"),
            ("i9", "C", "clear")]
    got = gate.officer_kappa(pd.DataFrame(rows, columns=["scan_id", "officer", "label"]))
    assert len(got) == 1
    (ab,) = got
    assert (ab.officer_a, ab.officer_b, ab.n, ab.observed_agreement) == ("A", "B", 4, 0.75)
    assert ab.kappa == pytest.approx(0.5)


def test_label_issue_suspects_finds_flipped_labels() -> None:
    # 300 items, confident out-of-fold probabilities; 6 labels flipped against a 0.95 prediction
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 3, 300)
    probs = np.full((300, 3), 0.025)
    probs[np.arange(300), truth] = 0.95
    labels = truth.copy()
    flipped = np.array([3, 50, 99, 150, 200, 250])
    labels[flipped] = (truth[flipped] + 1) % 3
    found = gate.label_issue_suspects(labels, probs)
    assert set(found.tolist()) == set(flipped.tolist())
    with pytest.raises(MonitoringInputError, match="pred_probs"):
        gate.label_issue_suspects(labels, probs[:10])


def test_binomtest_reference_value_used_above() -> None:
    # the by-hand value is the binomial CDF: P(X <= 1 | 7, 1/2) = 8 / 128
    assert stats.binom.cdf(1, 7, 0.5) == pytest.approx(8 / 128)


def test_a_certificate_that_routes_all_benign_mail_is_not_watched_and_says_why() -> None:
    # A weak model certified at its miss rate can route ~100% of benign mail: certified + margin >= 1. The watch
    # once raised MonitoringInputError here, which failed the whole monitoring run for every scanner.
    first = certificate.certificate_watch([True] * 30, scanner_id="scanner-1", certified_rate=1.0, margin=0.03,
                                          arl=1e5)
    assert not first.alarm and first.items == 30 and first.tolerated_rate == 1.0
    assert "nothing can breach it; not watched" in first.message
    later = certificate.certificate_watch([True, False], scanner_id="scanner-1", certified_rate=0.98, margin=0.03,
                                          arl=1e5, state=first.state)
    assert not later.alarm and later.items == 32


def test_label_suspects_never_fork_a_process_pool(monkeypatch: pytest.MonkeyPatch) -> None:
    """cleanlab forks one process per core by default; in the dashboard's script thread a fork beside Streamlit's
    threads and scikit-learn's OpenMP pool hung the Relabelling page. On a many-core host, no Pool may start."""
    import multiprocessing

    import cleanlab.filter as cleanlab_filter

    def no_pool(*args: object, **kwargs: object) -> None:
        raise AssertionError("label_issue_suspects started a multiprocessing.Pool")

    monkeypatch.setattr(multiprocessing, "Pool", no_pool)
    monkeypatch.setattr(multiprocessing, "cpu_count", lambda: 16)
    if getattr(cleanlab_filter, "psutil_exists", False):
        monkeypatch.setattr(cleanlab_filter.psutil, "cpu_count", lambda logical=True: 16)
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 300)
    probs = rng.dirichlet(np.ones(3), 300)
    probs[np.arange(300), labels] += 2.0  # mostly confident in the given label: a few suspects, no error
    found = gate.label_issue_suspects(labels, probs / probs.sum(axis=1, keepdims=True))
    assert found.dtype == np.int64
