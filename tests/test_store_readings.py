"""Blind double reading of high-risk relabel items and supervisor adjudication (store/readings.py), against a real
store and, where a person acts, the real owner over HTTP with signed-in sessions."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from store import readings
from store.client import StoreClient
from store.engine import Store
from tests.conftest import make_settings
from tests.seeding import seed_store
from xscreen.errors import ConflictError, PermissionDenied
from xscreen.records import DecisionRecord, LabelRecord
from xscreen.settings import Settings

PASSWORD = "correct-horse-battery"
RULE = {"double_read_min_score": 0.6}  # the seed's `inspect` verdicts (any_threat >= 0.6) are high risk


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return make_settings(tmp_path / "home", labelling=RULE)


def _items(store: Store, now: datetime) -> tuple[list[str], list[str]]:
    """(high-risk scan ids, other scan ids) of 200 seeded scans."""
    seed_store(store, 200, seed=7, now=now)
    with store.reader() as cur:
        rows = cur.execute("SELECT scan_id, any_threat >= 0.6 FROM champion_verdicts ORDER BY scan_id").fetchall()
    return [r[0] for r in rows if r[1]], [r[0] for r in rows if not r[1]]


def _signed_in(client: StoreClient, store: Store, username: str, role: str) -> StoreClient:
    store.add_user(username, PASSWORD, role)  # type: ignore[arg-type]
    return client.as_user(client.login(username, PASSWORD).token)


def _label(scan_id: str, labels: list[str], author: str, now: datetime, source: str = "relabel") -> LabelRecord:
    return LabelRecord(label_id=f"{scan_id}-{author}-{source}", scan_id=scan_id, labels=labels, source=source,  # type: ignore[arg-type]
                       author=author, created_at=now)


def test_a_high_risk_item_takes_two_readings_by_two_different_people(store: Store, now: datetime) -> None:
    risky, plain = _items(store, now)
    item = risky[0]
    with pytest.raises(ConflictError, match="high risk and need two blind readings"):
        store.add_labels([_label(item, ["knife"], "ann", now)])
    assert store.add_labels([_label(plain[0], ["knife"], "ann", now)]) == 1  # other items: one label is enough
    with pytest.raises(ConflictError, match="not a high-risk item"):
        store.add_reading(plain[1], ["knife"], reader="ann")
    assert store.add_reading(item, ["knife"], reader="ann", reading_id="r-ann-1") == readings.AWAITING
    # the same reading re-sent (its answer lost) is a no-op; a new reading by the same person is refused
    assert store.add_reading(item, ["knife"], reader="ann", reading_id="r-ann-1") == readings.AWAITING
    with pytest.raises(ConflictError, match="must be someone else's"):
        store.add_reading(item, ["knife"], reader="ann")
    with pytest.raises(ConflictError, match="already used by another reading"):
        store.add_reading(item, ["firearm"], reader="ann", reading_id="r-ann-1")
    assert store.get_scan(item)["current_labels"] is None  # one reading is not a label
    assert store.add_reading(item, ["knife"], reader="bob", note="blade", reading_id="r-bob-1") == readings.AGREED
    assert store.add_reading(item, ["knife"], reader="bob", reading_id="r-bob-1") == readings.AGREED  # re-sent
    scan = store.get_scan(item)
    assert scan["current_labels"] == ["knife"] and scan["labels"][0]["source"] == "double_read"
    with pytest.raises(ConflictError, match="has had its two readings"):
        store.add_reading(item, [], reader="cy")
    assert item in set(store.training_labels()["scan_id"])  # agreeing readings train the model
    status = store.reading_status("bob", [item, risky[1], plain[1], "no-such-scan"])
    assert status.set_index("scan_id")["status"].to_dict() == {
        item: readings.AGREED, risky[1]: readings.UNREAD, plain[1]: readings.SINGLE}
    assert [r.actor for r in store.audit_log(action="reading")] == ["bob", "ann"]


def test_the_second_reader_sees_neither_the_first_reading_nor_asks_for_someone_elses(
        owner: tuple[StoreClient, Store], now: datetime) -> None:
    client, store = owner
    risky, _ = _items(store, now)
    item = risky[0]
    ann, bob = _signed_in(client, store, "ann", "officer"), _signed_in(client, store, "bob", "officer")
    ann.add_reading(item, ["firearm", "knife"], reader="ann")
    mine = bob.reading_status("bob", [item])
    assert mine.to_dict("records") == [{"scan_id": item, "double_read": True, "readings": 1, "my_labels": None,
                                        "status": readings.AWAITING}]
    assert ann.reading_status("ann", [item])["my_labels"][0].tolist() == ["firearm", "knife"]
    with pytest.raises(PermissionDenied, match="signed in as bob"):
        bob.reading_status("ann", [item])
    scan = bob.get_scan(item)  # what the Relabelling page shows of an item: no reading is a label
    assert scan["labels"] == [] and scan["current_labels"] is None
    queue = bob.relabel_queue(limit=500)
    assert not any("firearm" in (labels or []) for labels in queue["current_labels"])
    with pytest.raises(PermissionDenied, match="adjudicate"):
        bob.adjudication_queue()
    with pytest.raises(PermissionDenied):
        bob.double_read_pairs()
    [row] = store.audit_log(action="reading")
    assert row.actor == "ann" and "firearm" not in str(row.details)  # a supervisor-reader cannot peek in the log


def test_disputed_readings_wait_for_another_supervisor_and_stay_out_of_training(
        owner: tuple[StoreClient, Store], now: datetime) -> None:
    client, store = owner
    risky, _ = _items(store, now)
    item = risky[0]
    olga, tom = _signed_in(client, store, "olga", "officer"), _signed_in(client, store, "tom", "officer")
    sam, sue = _signed_in(client, store, "sam", "supervisor"), _signed_in(client, store, "sue", "supervisor")
    tom.record_decision(DecisionRecord(decision_id="d1", scan_id=item, officer="tom", decision="cleared",
                                       decided_at=now - timedelta(hours=1)))
    assert item in set(store.training_labels()["scan_id"])  # the officer's decision implies a label
    olga.add_reading(item, [], reader="olga")
    assert sam.add_reading(item, ["firearm"], reader="sam") == readings.DISPUTED
    assert item not in set(store.training_labels()["scan_id"])  # the truth is in dispute: nothing trains on it
    [row] = sue.adjudication_queue().to_dict("records")
    assert (row["scan_id"], row["reader_1"], list(row["labels_1"]), row["reader_2"], list(row["labels_2"])) == \
        (item, "olga", [], "sam", ["firearm"])
    with pytest.raises(PermissionDenied, match="another supervisor must adjudicate"):
        sam.adjudicate(item, ["firearm"], supervisor="sam")
    with pytest.raises(PermissionDenied, match="signed in as sue"):
        sue.adjudicate(item, ["firearm"], supervisor="sam")
    sue.adjudicate(item, ["firearm"], supervisor="sue", note="barrel visible")
    assert sue.adjudication_queue().empty
    assert store.get_scan(item)["current_labels"] == ["firearm"]
    exported = store.training_labels().set_index("scan_id")
    assert list(exported.loc[item, "labels"]) == ["firearm"] and exported.loc[item, "source"] == "adjudication"
    [audit] = store.audit_log(action="adjudicate")
    assert (audit.actor, audit.target, audit.details["labels"]) == ("sue", item, ["firearm"])
    with pytest.raises(ConflictError, match="no disputed double reading"):
        sue.adjudicate(item, [], supervisor="sue")
    pairs = sue.double_read_pairs(since=now - timedelta(days=1))
    assert sue.double_read_pairs(since=now + timedelta(seconds=1)).empty
    assert pairs[["scan_id", "status"]].values.tolist() == [[item, readings.ADJUDICATED]]
    assert list(pairs["adjudicated_labels"][0]) == ["firearm"]


def test_only_a_supervisor_session_writes_an_adjudication_label(owner: tuple[StoreClient, Store],
                                                                now: datetime) -> None:
    client, store = owner
    _, plain = _items(store, now)
    olga, sam = _signed_in(client, store, "olga", "officer"), _signed_in(client, store, "sam", "supervisor")
    with pytest.raises(PermissionDenied, match="adjudicate"):
        olga.add_labels([_label(plain[0], ["knife"], "olga", now, "adjudication")])
    assert sam.add_labels([_label(plain[0], ["knife"], "sam", now, "adjudication")]) == 1


def test_sampling_embeddings_are_one_models_recent_unlabelled_scans_and_its_reference(store: Store,
                                                                                      now: datetime) -> None:
    _, plain = _items(store, now)
    store.add_labels([_label(plain[0], [], "ann", now)])
    split, start = now - timedelta(days=2), now - timedelta(days=7)
    df = store.sampling_embeddings(start=start, split=split, end=now, per_window=1000)
    with store.reader() as cur:
        truth = dict(cur.execute("SELECT scan_id, scored_at >= ? FROM champion_verdicts", [split]).fetchall())
    assert df["model_version"].nunique() == 1
    assert {w: set(g["scan_id"]) for w, g in df.groupby("window")} == {
        "recent": {i for i, recent in truth.items() if recent} - {plain[0]},
        "reference": {i for i, recent in truth.items() if not recent}}
    assert all(len(e) == 16 for e in df["embedding"])
    few = store.sampling_embeddings(start=start, split=split, end=now, per_window=5)
    assert few["window"].value_counts().to_dict() == {"recent": 5, "reference": 5}
    assert list(few["scan_id"]) == list(store.sampling_embeddings(start=start, split=split, end=now,
                                                                  per_window=5)["scan_id"])  # a fixed sample


def test_an_officer_who_decided_an_item_at_triage_is_not_one_of_its_readers(store: Store, now: datetime) -> None:
    risky, _ = _items(store, now)
    item, other = risky[0], risky[1]
    store.record_decision(DecisionRecord(decision_id="d1", scan_id=item, officer="olga", decision="refer",
                                         decided_at=now - timedelta(hours=2)))  # a referral is a judgement too
    store.record_decision(DecisionRecord(decision_id="d2", scan_id=item, officer="tom", decision="cleared",
                                         decided_at=now - timedelta(hours=1)))
    for officer, decision in (("olga", "refer"), ("tom", "cleared")):
        with pytest.raises(PermissionDenied, match=rf"{officer} decided scan {item} at triage \({decision}\)"):
            store.add_reading(item, ["knife"], reader=officer)
    assert store.reading_status("tom", [item, other]).set_index("scan_id")["status"].to_dict() == {
        item: readings.DECIDED, other: readings.UNREAD}  # out of tom's reading queue, the other item stays in
    assert store.add_reading(item, ["knife"], reader="ann") == readings.AWAITING
    assert store.reading_status("tom", [item])["status"].tolist() == [readings.DECIDED]
    assert store.reading_status("bob", [item])["status"].tolist() == [readings.AWAITING]
    assert store.add_reading(item, ["knife"], reader="bob") == readings.AGREED
    assert store.reading_status("tom", [item])["status"].tolist() == [readings.AGREED]  # closed: nothing to bar
    assert [r.actor for r in store.audit_log(action="reading")] == ["bob", "ann"]  # the refusals wrote nothing


def test_analysts_snapshots_leave_out_first_readings_awaiting_their_second(store: Store, now: datetime) -> None:
    risky, _ = _items(store, now)
    pending, paired = risky[0], risky[1]
    store.add_reading(pending, ["firearm"], reader="ann", note="barrel")
    store.add_reading(paired, ["knife"], reader="ann")
    assert store.add_reading(paired, ["knife"], reader="bob") == readings.AGREED
    out = store.sql("SELECT scan_id, reading, reader, labels, note FROM readings ORDER BY scan_id, reading")
    assert out.rows == [[paired, 1, "ann", ["knife"], None], [paired, 2, "bob", ["knife"], None]]
    pairs = store.sql("SELECT scan_id, labels_1, labels_2, status FROM double_reads ORDER BY scan_id")
    assert pairs.rows == [[paired, ["knife"], ["knife"], readings.AGREED]]
    folder = store.snapshot(Path("pq"), parquet=True)
    con = duckdb.connect()
    try:
        exported = con.execute(f"SELECT scan_id, reading FROM read_parquet('{folder / 'readings.parquet'}') "
                               "ORDER BY reading").fetchall()
    finally:
        con.close()
    assert exported == [(paired, 1), (paired, 2)]
    with store.reader() as cur:  # the live store keeps the pending reading: only the analysts' copies leave it out
        assert cur.execute("SELECT reader FROM readings WHERE scan_id = ?", [pending]).fetchall() == [("ann",)]


def test_a_reader_may_not_settle_their_own_dispute_with_an_adjudication_label(owner: tuple[StoreClient, Store],
                                                                            now: datetime) -> None:
    """add_labels(source='adjudication') is the Relabelling page's other way to adjudicate: it keeps adjudicate's
    rule that nobody settles a dispute they gave a reading in."""
    client, store = owner
    risky, _ = _items(store, now)
    item = risky[0]
    olga, sam = _signed_in(client, store, "olga", "officer"), _signed_in(client, store, "sam", "supervisor")
    sue = _signed_in(client, store, "sue", "supervisor")
    olga.add_reading(item, [], reader="olga")
    assert sam.add_reading(item, ["firearm"], reader="sam") == readings.DISPUTED
    with pytest.raises(PermissionDenied, match="another supervisor must adjudicate"):
        sam.add_labels([_label(item, ["firearm"], "sam", now, "adjudication")])
    assert store.reading_status("sue", [item])["status"][0] == readings.DISPUTED  # nothing was written
    assert sue.add_labels([_label(item, ["firearm"], "sue", now, "adjudication")]) == 1
    assert store.reading_status("sue", [item])["status"][0] == readings.ADJUDICATED
