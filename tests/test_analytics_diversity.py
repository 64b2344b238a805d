"""Diversity sampling over drifted regions of embedding space (analytics/diversity.py) and its place in the day's
relabel queue (analytics/labelling.py), on synthetic embeddings and on a real store."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import pytest

from analytics import diversity, labelling
from store.engine import Store
from tests.seeding import make_batch

DIM = 16


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def _cloud(rng: np.random.Generator, axis: int, n: int, spread: float) -> np.ndarray:
    """n unit vectors around basis direction `axis` (the model's embeddings are L2-normalised)."""
    return _unit(3 * np.eye(DIM)[axis] + spread * rng.normal(size=(n, DIM)))


def test_new_clusters_come_first_and_the_first_picks_come_from_each_of_them() -> None:
    rng = np.random.default_rng(1)
    reference = _cloud(rng, 0, 400, 1.0)
    recent = np.vstack([_cloud(rng, 0, 200, 1.0), _cloud(rng, 1, 20, 0.5), _cloud(rng, 2, 20, 0.5)])
    cluster = np.repeat(["old", "new A", "new B"], [200, 20, 20])
    picks = diversity.drifted_diverse(recent, reference, 10)
    assert len(picks.index) == 10 and set(cluster[picks.index]) == {"new A", "new B"}  # no reference-like mail
    assert set(cluster[picks.index[:2]]) == {"new A", "new B"}  # one of each new cluster before a second of either
    assert picks.n_drifted >= 38 and (picks.recent_share > 0.6).all()
    assert picks.novelty[0] == pytest.approx(picks.novelty.max())  # the region farthest from the reference first


def test_without_drift_almost_nothing_is_picked_and_an_isolated_outlier_never() -> None:
    rng = np.random.default_rng(2)
    reference = _cloud(rng, 0, 400, 1.0)
    outlier = _unit(np.eye(DIM)[[5]] - 0.1)  # far from everything, but alone: not a new cluster
    recent = np.vstack([_cloud(rng, 0, 200, 1.0), outlier])
    picks = diversity.drifted_diverse(recent, reference, 50)
    assert picks.n_drifted <= 4 and 200 not in picks.index  # alpha = 1 %: a handful of chance hits at most
    assert len(diversity.drifted_diverse(recent, reference[:10], 5).index) == 0  # too little reference to judge


def test_the_neighbour_test_counts_recent_neighbours_by_hand() -> None:
    # 1-D: reference 0..9, recent 100..103 and 4.5. With 3 neighbours, 101's neighbours are 100, 102 and 103 (all
    # recent: share 1) and 4.5's are 4, 5 and 3 or 6 (share 0). Under one distribution a neighbour is recent with
    # p0 = 4/14; P(3 of 3) = (4/14)^3 = 0.023 > alpha 0.01, < alpha 0.05.
    reference = np.c_[np.arange(10.0), np.ones(10)]
    recent = np.c_[[100.0, 101, 102, 103, 4.5], np.ones(5)]
    share, drifted = diversity.drift_test(recent, reference, neighbours=3, alpha=0.05)
    assert share.tolist() == [1.0, 1.0, 1.0, 1.0, 0.0] and drifted.tolist() == [True] * 4 + [False]
    assert not diversity.drift_test(recent, reference, neighbours=3, alpha=0.01)[1].any()


def test_embeddings_of_different_lengths_are_refused() -> None:
    with pytest.raises(diversity.DiversityInputError, match="16 dimensions but the reference 8"):
        diversity.drifted_diverse(np.ones((5, 16)), np.ones((30, 8)), 3)


def test_the_drift_policy_takes_its_share_of_the_queue_and_fills_what_others_leave() -> None:
    import pandas as pd

    def frame(prefix: str, n: int, reason: str) -> pd.DataFrame:
        return pd.DataFrame({"scan_id": [f"{prefix}{i}" for i in range(n)], "reason": reason})

    priority, drifted = frame("p", 20, "model uncertain"), frame("d", 5, labelling.DRIFT_REASON)
    queue = labelling.active_queue(priority, frame("s", 0, ""), frame("r", 10, ""), budget=10, random_share=0.1,
                                   drifted=drifted, drift_share=0.2)
    assert queue["reason"].value_counts().to_dict() == {"model uncertain": 7, labelling.DRIFT_REASON: 2,
                                                        labelling.RANDOM_REASON: 1}
    short = labelling.active_queue(priority.head(3), frame("s", 0, ""), frame("r", 10, ""), budget=10,
                                   random_share=0.1, drifted=drifted, drift_share=0.2)
    assert list(short["scan_id"]) == ["p0", "p1", "p2", "d0", "d1", "d2", "d3", "d4", "r0"]


def _ingest(store: Store, rng: np.random.Generator, start: int, emb: np.ndarray, now: datetime,
            span: timedelta) -> set[str]:
    """Scans start.. with champion verdicts carrying the embeddings `emb`, received within `span` before now."""
    classes = ["firearm", "knife", "ammunition", "narcotics", "currency", "lithium_battery"]
    batch = make_batch(rng, start, len(emb), now, classes, shadow=False, span=span, batch_id=f"b{start}")
    store.ingest(batch.model_copy(update={"verdicts": [
        v.model_copy(update={"embedding": [float(x) for x in e]}) for v, e in zip(batch.verdicts, emb, strict=True)]}))
    return {v.scan_id for v in batch.verdicts}


def test_todays_queue_offers_a_new_cluster_of_recent_scans(store: Store, now: datetime) -> None:
    rng = np.random.default_rng(9)
    usual = _ingest(store, rng, 0, _cloud(rng, 0, 400, 1.0), now, timedelta(days=7))  # the week's mail
    fresh = _ingest(store, rng, 1000, _cloud(rng, 3, 12, 0.3), now, timedelta(hours=12))  # a new kind, today
    policy = labelling.DiversityPolicy(share=0.25, recent_days=1.0, reference_days=6.0)
    queue = labelling.todays_queue(store, budget=20, random_share=0.1, now=now, diversity=policy)
    drifted = queue[queue["reason"] == labelling.DRIFT_REASON]
    assert len(drifted) >= 5 and set(drifted["scan_id"]) <= fresh  # ceil(20 * 0.25) places at least, all new
    assert len(queue) <= 20 and queue["scan_id"].is_unique and usual
    off = labelling.todays_queue(store, budget=20, random_share=0.1, now=now)
    assert labelling.DRIFT_REASON not in set(off["reason"])
