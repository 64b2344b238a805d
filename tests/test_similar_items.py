"""similar_items against a brute-force numpy cosine over every candidate, and against the former one-query SQL."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from analytics import reads
from analytics.records import DecisionRecord, LabelRecord
from analytics.store import Store
from tests.seeding import seed_store
from xscreen.errors import NotFoundError

# The query as it was before the candidate ids were fetched first (known outcomes as a sub-query): the reference
# for "same rows, same columns, same values".
FORMER_SIMILAR_SQL = """
WITH me AS (SELECT embedding FROM verdicts WHERE scan_id = $scan_id ORDER BY role = 'champion' DESC LIMIT 1),
known AS (SELECT scan_id FROM decisions UNION SELECT scan_id FROM labels)
SELECT v.scan_id, list_cosine_similarity(v.embedding, me.embedding) AS similarity, v.verdict, v.any_threat,
       v.top_class, fd.decision, cl.labels AS current_labels
FROM verdicts v CROSS JOIN me
LEFT JOIN final_decisions fd ON fd.scan_id = v.scan_id
LEFT JOIN current_labels cl ON cl.scan_id = v.scan_id
WHERE v.role = 'champion' AND v.scan_id <> $scan_id AND v.scan_id IN (SELECT scan_id FROM known)
  AND len(v.embedding) = len(me.embedding)
ORDER BY similarity DESC
LIMIT $k
"""


def _outcomes(store: Store, scan_ids: list[str], now: datetime) -> None:
    """Decisions (refers alone, a refer then a final decision) and labels (some on undecided scans) on the first 40 scans."""
    for i, scan_id in enumerate(scan_ids[:25]):
        decision = ["cleared", "confirmed", "refer"][i % 3]
        store.record_decision(DecisionRecord(decision_id=f"d{i}", scan_id=scan_id, officer="ann", decision=decision,  # type: ignore[arg-type]
                                             threat_class="knife" if decision == "confirmed" else None,
                                             decided_at=now - timedelta(minutes=i)))
    store.record_decision(DecisionRecord(decision_id="d-late", scan_id=scan_ids[2], officer="bob",
                                         decision="seized", threat_class="knife", decided_at=now))
    store.add_labels([LabelRecord(label_id=f"l{i}", scan_id=scan_id, labels=["knife"] if i % 2 else [],
                                  source="relabel", author="sue", created_at=now - timedelta(minutes=i))
                      for i, scan_id in enumerate(scan_ids[20:40])])


def _brute_force(store: Store, scan_id: str, k: int) -> pd.DataFrame:
    """Cosine of the target's champion embedding with every candidate's, in float64 numpy, best first."""
    with store.reader() as cur:
        known = {r[0] for r in cur.execute("SELECT scan_id FROM decisions UNION SELECT scan_id FROM labels").fetchall()}
        champ = cur.execute("SELECT scan_id, embedding FROM verdicts WHERE role = 'champion'").df()
    emb = {s: np.asarray(e, dtype=np.float64) for s, e in zip(champ["scan_id"], champ["embedding"], strict=True)}
    me = emb[scan_id]
    ids = sorted(known - {scan_id})
    mat = np.stack([emb[s] for s in ids])  # (N, D)
    sim = mat @ me / (np.linalg.norm(mat, axis=1) * np.linalg.norm(me))  # (N,)
    order = np.argsort(-sim, kind="stable")[:k]
    return pd.DataFrame({"scan_id": [ids[i] for i in order], "similarity": sim[order]})


@pytest.mark.parametrize("k", [1, 5, 8, 100])
def test_similar_items_matches_brute_force_cosine_over_all_candidates(store: Store, now: datetime, k: int) -> None:
    seeded = seed_store(store, 150, seed=21, now=now)
    _outcomes(store, seeded.scan_ids, now)
    for target in [seeded.scan_ids[0], seeded.scan_ids[30], seeded.scan_ids[120]]:  # decided, labelled, unknown
        got = store.similar_items(target, k=k)
        want = _brute_force(store, target, k)
        assert len(got) == min(k, len(want)) == len(want)
        assert list(got["scan_id"]) == list(want["scan_id"])
        np.testing.assert_allclose(got["similarity"].to_numpy(dtype=np.float64), want["similarity"], rtol=1e-5)


def test_similar_items_returns_what_the_former_single_query_returned(store: Store, now: datetime) -> None:
    seeded = seed_store(store, 150, seed=22, now=now)
    _outcomes(store, seeded.scan_ids, now)
    for target in [seeded.scan_ids[0], seeded.scan_ids[30], seeded.scan_ids[120]]:
        got = store.similar_items(target, k=50)
        with store.reader() as cur:
            former = cur.execute(FORMER_SIMILAR_SQL, {"scan_id": target, "k": 50}).df()
        pd.testing.assert_frame_equal(got, former)
        assert set(got.columns) == {"scan_id", "similarity", "verdict", "any_threat", "top_class", "decision",
                                    "current_labels"}
    first = store.similar_items(seeded.scan_ids[30], k=50).set_index("scan_id")
    assert first.loc[seeded.scan_ids[2], "decision"] == "seized"  # the final decision after a refer
    assert pd.isna(first.loc[seeded.scan_ids[5], "decision"])  # a refer alone is known, but not final
    assert list(first.loc[seeded.scan_ids[39], "current_labels"]) == ["knife"]  # labelled, never decided


def test_similar_items_with_no_known_outcomes_is_empty_with_the_same_columns(store: Store, now: datetime) -> None:
    seeded = seed_store(store, 20, seed=23, now=now)
    got = store.similar_items(seeded.scan_ids[0], k=6)
    with store.reader() as cur:
        former = cur.execute(FORMER_SIMILAR_SQL, {"scan_id": seeded.scan_ids[0], "k": 6}).df()
    assert got.empty and list(got.columns) == list(former.columns)
    with pytest.raises(NotFoundError), store.reader() as cur:
        reads.similar_items(cur, "nope", 6)
