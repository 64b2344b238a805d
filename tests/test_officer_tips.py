"""Officer TIP tests: a canary shown to officers waits in the queue and opens like flagged mail, its decision is a
TIP outcome (never a decision or a label), the officer is told afterwards, and supervisors see hit rates."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from store.client import StoreClient
from store.engine import Store
from tests.app_harness import PASSWORD, app_as, point_app_at, user
from tests.test_store_ground_truth import batch, scan_and_verdict
from xray.writers import encode_png
from xscreen.errors import ConflictError, PermissionDenied
from xscreen.records import DecisionRecord, IngestBatch, OfficerTipRecord
from xscreen.settings import Settings


def seed(store: Store, now: datetime, folder: Path) -> tuple[str, str, str]:
    """A flagged real item, an AI-cleared one, and a TIP item (a knife projected into the cleared one, scored 0.95:
    first in the queue). Returns (real id, source id, tip id)."""
    at = now - timedelta(hours=1)
    flagged = batch("fl", "scanner-a", 1, at, verdict="inspect", score=0.9)
    cleared = batch("cl", "scanner-a", 1, at)
    store.ingest(flagged)
    store.ingest(cleared)
    folder.mkdir(parents=True, exist_ok=True)
    image = folder / "tip-1.png"
    image.write_bytes(encode_png(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)))
    source = cleared.scans[0].scan_id
    tip = OfficerTipRecord(tip_id="5e1f0c2a9b7d4e61", canary_id="c1", source_scan_id=source, scanner_id="scanner-a",
                           class_name="knife", article="knife:0:1", model_version="m-1", verdict="inspect",
                           any_threat=0.95, scores={"knife": 0.95}, top_class="knife", image_path=str(image),
                           file_format="png", created_at=now - timedelta(minutes=30))
    assert store.add_officer_tips([tip, tip]) == 1  # known ids are skipped
    return flagged.scans[0].scan_id, source, tip.tip_id


def decision(did: str, scan_id: str, officer: str, what: str, now: datetime) -> DecisionRecord:
    return DecisionRecord(decision_id=did, scan_id=scan_id, officer=officer, decision=what,  # type: ignore[arg-type]
                          threat_class="knife" if what == "confirmed" else None, decided_at=now)


def test_a_tip_item_queues_like_mail_and_its_decision_is_a_tip_outcome_not_a_decision_or_label(
        owner: tuple[StoreClient, Store], now: datetime, tmp_path: Path) -> None:
    client, store = owner
    real, source, tip = seed(store, now, tmp_path / "tips")
    store.add_user("olga", PASSWORD, "officer")
    store.add_user("sue", PASSWORD, "supervisor")
    olga = client.as_user(client.login("olga", PASSWORD).token)
    queue = olga.queue("olga")
    assert queue["scan_id"].tolist() == [tip, real] and queue["waiting"].iloc[0] == 2
    row = queue.set_index("scan_id").loc[tip]
    assert row["item_id"] == store.get_scan(source)["item_id"] and row["verdict"] == "inspect"
    shown = olga.get_scan(tip)  # what the triage page opens: the source's fields, nothing says canary
    assert shown.keys() == olga.get_scan(real).keys()
    assert not shown["is_canary"] and shown["canary_labels"] is None and shown["image"]["path"].endswith("tip-1.png")
    assert shown["verdicts"][0]["any_threat"] == 0.95 and shown["width"] == 64
    assert olga.tip_reveal(tip, "olga") is None  # before deciding, asking cannot tell a test from mail
    olga.claim(tip, "olga")
    olga.record_decision(decision("d1", tip, "olga", "confirmed", now))
    olga.record_decision(decision("d1", tip, "olga", "confirmed", now))  # re-sent: a no-op
    with pytest.raises(ConflictError, match="already decided"):
        store.record_decision(decision("d2", tip, "ann", "cleared", now))
    reveal = olga.tip_reveal(tip, "olga")
    assert reveal is not None and reveal.hit and reveal.class_name == "knife"
    assert "This was a test image" in reveal.message and "knife" in reveal.message
    assert olga.queue("olga")["scan_id"].tolist() == [real]
    # never a real decision: no decision row, no label, nothing in officer analytics' decisions
    assert store.get_scan(tip)["decisions"] == [] and store.get_scan(tip)["current_labels"] is None
    sue = client.as_user(client.login("sue", PASSWORD).token)
    assert sue.officer_decisions(start=now - timedelta(days=1), end=now + timedelta(minutes=1)).empty
    results = sue.tip_results(start=now - timedelta(days=1), end=now + timedelta(minutes=1))
    assert results[["officer", "class_name", "decision", "hit"]].values.tolist() == [["olga", "knife", "confirmed",
                                                                                      True]]
    with pytest.raises(PermissionDenied, match="may not read officer analytics"):
        olga.tip_results()
    with pytest.raises(PermissionDenied):
        olga.add_officer_tips([])  # serving only


def test_an_audited_source_never_has_its_tip_twin_in_the_queue(tmp_path: Path, now: datetime) -> None:
    from store.audit_sampling import AuditDesign

    with Store.open(tmp_path / "t.duckdb", clock=lambda: now, audit=AuditDesign(default_rate=1.0, key="k")) as s:
        s.ingest(batch("cl", "scanner-a", 1, now - timedelta(hours=1)))
        source = batch("cl", "scanner-a", 1, now - timedelta(hours=1)).scans[0].scan_id
        tip = OfficerTipRecord(tip_id="t1", canary_id="c1", source_scan_id=source, scanner_id="scanner-a",
                               class_name="knife", model_version="m-1", verdict="clear", any_threat=0.1,
                               image_path="x.png", file_format="png", created_at=now)
        assert s.add_officer_tips([tip]) == 1 and s.queue("ann")["scan_id"].tolist() == [source]


def test_the_officer_is_told_after_deciding_a_tip_item_that_it_was_a_test(
        owner: tuple[StoreClient, Store], settings: Settings, now: datetime, monkeypatch: pytest.MonkeyPatch,
        tmp_path: Path) -> None:
    client, store = owner
    point_app_at(monkeypatch, settings)
    real, _, tip = seed(store, now, tmp_path / "tips")
    client.add_user("ann", PASSWORD, "officer")
    at = app_as(user("ann", "officer", now), now).run()
    assert at.dataframe[0].value["scan"].tolist() == [tip, real]
    at.button(key="triage_next").click().run()
    assert at.session_state["triage_current"] == tip and not at.exception and not at.error
    assert not at.warning  # nothing gives it away while it is open
    at.button(key="triage_cleared").click().run()
    assert not at.exception
    assert "This was a test image (TIP): a knife was projected into this scan; you cleared it" in at.warning[0].value
    assert at.dataframe[0].value["scan"].tolist() == [real]
    at.button(key="triage_next").click().run()
    at.button(key="triage_confirmed").click().run()  # real mail: no reveal
    assert not at.warning and store.get_scan(real)["decisions"][-1]["decision"] == "confirmed"
    assert store.tip_results(start=now - timedelta(days=1), end=now + timedelta(minutes=1))["hit"].tolist() == [False]


def test_supervisors_see_the_tip_hit_rate_per_officer_and_class(
        owner: tuple[StoreClient, Store], settings: Settings, now: datetime, monkeypatch: pytest.MonkeyPatch,
        tmp_path: Path) -> None:
    client, store = owner
    point_app_at(monkeypatch, settings)
    real, _, tip = seed(store, now, tmp_path / "tips")
    store.record_decision(decision("d1", tip, "ann", "confirmed", now - timedelta(minutes=5)))
    store.record_decision(decision("d2", real, "ann", "confirmed", now - timedelta(minutes=4)))
    client.add_user("sue", PASSWORD, "supervisor")
    at = app_as(user("sue", "supervisor", now), now, script="pages/officers.py").run()
    assert not at.exception
    table = next(d.value for d in at.dataframe if "class_name" in d.value.columns)
    assert table[["officer", "class_name", "k", "n"]].values.tolist() == [["ann", "knife", 1, 1]]
    assert [m.value for m in at.metric] == ["1", "1", "0"]  # the TIP decision is not counted as a decision


def test_a_tip_item_keeps_the_invariants_of_real_mail_in_the_api(owner: tuple[StoreClient, Store], now: datetime,
                                                                 tmp_path: Path) -> None:
    """What an officer's session can read of a TIP item holds the relations every real scan's does: the scan id is
    the first 16 digits of its content hash (serving names scans so), the verdict carries the operating point in
    force, and latency_ms is received_at -> scored_at. Any of them broken tells a test from mail."""
    client, store = owner
    at = now - timedelta(hours=1)
    flagged, cleared = scan_and_verdict("fl-x", "scanner-a", "inspect", 0.9, at), scan_and_verdict(
        "cl-x", "scanner-a", "clear", 0.005, at)
    ops = {"knife": {"clear": 0.1, "inspect": 0.6}}
    verdicts = [v.model_copy(update={"thresholds": ops, "latency_ms": 250.0,
                                     "scored_at": at + timedelta(milliseconds=250)}) for v in (flagged[1], cleared[1])]
    store.ingest(IngestBatch(batch_id="b", scans=[flagged[0], cleared[0]], verdicts=verdicts))
    tip = OfficerTipRecord(tip_id="5e1f0c2a9b7d4e61", canary_id="c1", source_scan_id=cleared[0].scan_id,
                           scanner_id="scanner-a", class_name="knife", model_version="m-1", verdict="inspect",
                           any_threat=0.95, scores={"knife": 0.95}, top_class="knife", image_path="t.png",
                           file_format="png", created_at=at + timedelta(seconds=2))
    store.add_officer_tips([tip])
    store.add_user("olga", PASSWORD, "officer")
    olga = client.as_user(client.login("olga", PASSWORD).token)
    real, shown = olga.get_scan(flagged[0].scan_id), olga.get_scan(tip.tip_id)
    for scan in (real, shown):
        verdict = scan["verdicts"][0]
        assert scan["sha256"][:16] == scan["scan_id"]
        assert verdict["thresholds"] == ops
        latency = (verdict["scored_at"] - scan["received_at"]).total_seconds() * 1000
        assert verdict["latency_ms"] is not None and abs(verdict["latency_ms"] - latency) < 1, scan["scan_id"]
    queued = olga.queue("olga").set_index("scan_id")
    assert queued.loc[tip.tip_id, "received_at"] == shown["received_at"]


def test_the_queues_count_of_waiting_items_counts_only_items_it_can_show(store: Store, now: datetime) -> None:
    """A TIP item waits once its source scan is stored: before that, it is no more in `waiting` than in the rows
    (an officer would see 'N items waiting' above fewer than N rows), nor does it take a place on the page that
    real mail then cannot have."""
    at = now - timedelta(hours=1)
    store.ingest(batch("fl", "scanner-a", 2, at, verdict="inspect", score=0.9))
    early = OfficerTipRecord(tip_id="77aa0c2a9b7d4e61", canary_id="c2", source_scan_id="not-yet-stored",
                             scanner_id="scanner-a", class_name="knife", model_version="m-1", verdict="inspect",
                             any_threat=0.95, image_path="t.png", file_format="png", created_at=at)
    store.add_officer_tips([early])
    queue = store.queue("ann", limit=1)
    assert len(queue) == 1 and queue["scan_id"][0] != early.tip_id
    assert store.queue("ann")["waiting"].tolist() == [2, 2]
