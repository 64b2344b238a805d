"""Label conflicts and the training-set export (read back by screening's own reader)."""

import csv
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analytics import labelling


def _row(author: str, labels: list[str], source: str = "relabel") -> dict:
    return {"author": author, "labels": labels, "source": source}


def test_two_authors_disagreeing_is_a_conflict() -> None:
    assert labelling.label_conflict([_row("ann", ["knife"]), _row("bob", [])])
    # bob's newest label agrees with ann: his older one does not count
    assert not labelling.label_conflict([_row("ann", ["knife"]), _row("bob", ["knife"]), _row("bob", [])])


def test_adjudication_settles_a_conflict() -> None:
    history = [_row("sup", ["knife"], "adjudication"), _row("ann", ["knife"]), _row("bob", [])]
    assert not labelling.label_conflict(history)


def test_export_writes_labels_csv_and_images_and_names_missing(tmp_path: Path) -> None:
    img = tmp_path / "a.PNG"
    img.write_bytes(b"png-bytes")
    rows = pd.DataFrame({"scan_id": ["s1", "s2", "s3"], "source_path": [str(img), str(img), str(tmp_path / "gone.png")],
                         "labels": [["knife", "ammunition"], [], ["threat"]]})
    res = labelling.export_training_set(rows, tmp_path / "out", make_zip=True)
    assert (res.exported, res.missing) == (2, ("s3",))
    with res.labels_csv.open() as fh:
        assert list(csv.reader(fh)) == [["file", "labels"], ["images/s1.png", "ammunition|knife"], ["images/s2.png", ""]]
    assert (tmp_path / "out" / "images" / "s1.png").read_bytes() == b"png-bytes"
    assert res.archive is not None and res.archive.is_file()


def test_export_of_nothing_is_refused(tmp_path: Path) -> None:
    with pytest.raises(labelling.ExportError, match="no labelled scans"):
        labelling.export_training_set(pd.DataFrame({"scan_id": [], "source_path": [], "labels": []}), tmp_path)


def test_export_folder_is_one_new_plain_name_under_the_root(tmp_path: Path) -> None:
    root = tmp_path / "exports"
    assert labelling.export_folder(root, "week-47_v2.1") == root / "week-47_v2.1"
    for bad in ["../up", "/abs/path", "a/b", "a\\b", "..", ".hidden", "", "x" * 101, "a..b", "name with space"]:
        with pytest.raises(labelling.ExportError, match=f"is not allowed.*exports are written under {root}"):
            labelling.export_folder(root, bad)
    (root / "taken").mkdir(parents=True)
    with pytest.raises(labelling.ExportError, match="already exists"):
        labelling.export_folder(root, "taken")


def _frame(ids: list[str], reason: str) -> pd.DataFrame:
    return pd.DataFrame({"scan_id": ids, "reason": reason})


def test_active_queue_keeps_the_random_slice_within_the_budget_and_each_scan_once() -> None:
    priority = _frame([f"p{i}" for i in range(20)] + ["r0"], "model uncertain")
    suspects = _frame(["s0", "p3"], labelling.SUSPECT_REASON)
    random = _frame([f"r{i}" for i in range(10)], "")
    queue = labelling.active_queue(priority, suspects, random, budget=10, random_share=0.25)
    assert len(queue) == 10 and queue["scan_id"].is_unique
    assert list(queue["scan_id"][:3]) == ["s0", "p3", "p0"]  # suspects first, then the priority order
    assert list(queue["reason"][:2]) == [labelling.SUSPECT_REASON] * 2
    assert list(queue["scan_id"][-3:]) == ["r0", "r1", "r2"]  # ceil(10 * 0.25) random places, always kept
    assert set(queue["reason"][-3:]) == {labelling.RANDOM_REASON}
    no_random = labelling.active_queue(priority, suspects, random.head(0), budget=10, random_share=0.25)
    assert len(no_random) == 10 and labelling.RANDOM_REASON not in set(no_random["reason"])


def test_label_suspects_finds_the_labels_the_scores_contradict() -> None:
    rng = np.random.default_rng(0)
    threat = np.arange(100) < 50
    scores = np.where(threat, rng.uniform(0.85, 0.99, 100), rng.uniform(0.01, 0.15, 100))
    flipped = [3, 4, 5, 70, 71, 72]  # threats called benign and the reverse
    truth = threat.copy()
    truth[flipped] = ~truth[flipped]
    outcomes = pd.DataFrame({"scan_id": [f"s{i}" for i in range(100)], "any_threat": scores, "is_threat": truth,
                             "verdict": "inspect", "labels": [[]] * 100})
    found = set(labelling.label_suspects(outcomes, limit=10)["scan_id"])
    # confident learning prunes by its estimated noise rate: no clean label is accused, most flips are found
    assert found <= {f"s{i}" for i in flipped} and len(found) >= 4
    assert labelling.label_suspects(outcomes.head(5), limit=10).empty  # too few to judge


def test_todays_queue_reads_the_store_within_the_budget_with_a_random_slice(store, now) -> None:  # type: ignore[no-untyped-def]
    from tests.seeding import seed_store

    seed_store(store, 300, seed=4, now=now)
    queue = labelling.todays_queue(store, budget=20, random_share=0.2, now=now)
    assert 0 < len(queue) <= 20 and queue["scan_id"].is_unique
    assert (queue["reason"] == labelling.RANDOM_REASON).sum() == 4  # ceil(20 * 0.2), drawn for the day
    again = labelling.todays_queue(store, budget=20, random_share=0.2, now=now)
    assert list(again["scan_id"]) == list(queue["scan_id"])  # the same queue all day


def test_the_queue_offers_cleared_items_nobody_looked_at_nearest_their_threshold(store, now) -> None:  # type: ignore[no-untyped-def]
    """Flagged items are labelled by their decisions; the misses hide among cleared items no one looked at."""
    from tests.test_store_ground_truth import scan_and_verdict
    from xscreen.records import DecisionRecord, IngestBatch, LabelRecord

    point = {"any_threat": {"clear": 0.30, "inspect": 0.60}}
    pairs = [scan_and_verdict(f"b{i}", "scanner-a", "clear", score, now) for i, score in
             enumerate([0.29, 0.05, 0.20, 0.28, 0.27])]
    pairs.append(scan_and_verdict("flagged", "scanner-a", "inspect", 0.9, now))
    scans = [p[0] for p in pairs]
    verdicts = [v.model_copy(update={"thresholds": point}) for _, v in pairs]
    store.ingest(IngestBatch(batch_id="b", scans=scans, verdicts=verdicts))
    ids = [s.scan_id for s in scans]
    store.record_decision(DecisionRecord(decision_id="d0", scan_id=ids[0], officer="ann", decision="cleared",
                                         decided_at=now))  # an audited clear: an officer looked at it
    store.add_labels([LabelRecord(label_id="l3", scan_id=ids[3], labels=[], source="relabel", author="ann",
                                  created_at=now)])
    shown = store.borderline_cleared(limit=10)
    assert list(shown["scan_id"]) == [ids[4], ids[2], ids[1]]  # 0.27, 0.20, 0.05: nearest the 0.30 threshold first
    assert shown["margin"].round(2).tolist() == [0.03, 0.10, 0.25]
    queue = labelling.todays_queue(store, budget=4, random_share=0.0, now=now, borderline_share=0.5)
    offered = queue.set_index("scan_id")["reason"]
    assert offered[ids[4]] == offered[ids[2]] == labelling.BORDERLINE_REASON  # ceil(4 * 0.5) places
    assert ids[0] not in offered and ids[3] not in offered
    off = labelling.todays_queue(store, budget=4, random_share=0.0, now=now)
    assert labelling.BORDERLINE_REASON not in set(off["reason"])
