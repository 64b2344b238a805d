"""Officer analytics through the store and the app: `officer_decisions` joins each decision to its verdict, its
audit and any adjudication, for supervisors only; the Officers page shows the per-officer tables."""

from __future__ import annotations

from datetime import datetime, timedelta

import pandas as pd
import pytest

from analytics.officers import officer_report
from store.client import StoreClient
from store.engine import Store
from tests.app_harness import PASSWORD, app_as, point_app_at, user
from tests.test_store_ground_truth import batch
from xscreen.errors import PermissionDenied
from xscreen.records import DecisionRecord, LabelRecord
from xscreen.settings import Settings


def seed_decisions(store: Store, now: datetime) -> list[str]:
    """Two flagged items and one cleared one; ann confirms one, clears the other flagged item (which a supervisor
    then adjudicates as a threat), bob refers then clears the cleared item."""
    at = now - timedelta(hours=2)
    flagged = batch("fl", "scanner-a", 2, at, verdict="inspect", score=0.9)
    store.ingest(flagged)
    store.ingest(batch("cl", "scanner-a", 1, at))
    a, b = (s.scan_id for s in flagged.scans)
    c = batch("cl", "scanner-a", 1, at).scans[0].scan_id
    decide = [("d1", a, "ann", "confirmed", 10), ("d2", b, "ann", "cleared", 40),
              ("d3", c, "bob", "refer", 20), ("d4", c, "ann", "cleared", 50)]
    for did, scan, officer, decision, minutes in decide:
        store.record_decision(DecisionRecord(decision_id=did, scan_id=scan, officer=officer, decision=decision,  # type: ignore[arg-type]
                                             threat_class="knife" if decision == "confirmed" else None,
                                             decided_at=at + timedelta(minutes=minutes)))
    store.add_labels([LabelRecord(label_id="adj", scan_id=b, labels=["knife"], source="adjudication", author="sue",
                                  created_at=now - timedelta(minutes=5))])
    return [a, b, c]


def test_officer_decisions_join_verdicts_and_adjudications_for_supervisors_only(
        owner: tuple[StoreClient, Store], now: datetime) -> None:
    client, store = owner
    a, b, c = seed_decisions(store, now)
    store.add_user("olga", PASSWORD, "officer")
    store.add_user("sue", PASSWORD, "supervisor")
    with pytest.raises(PermissionDenied, match="role 'officer' may not read officer analytics"):
        client.as_user(client.login("olga", PASSWORD).token).officer_decisions()
    sue = client.as_user(client.login("sue", PASSWORD).token)
    frame = sue.officer_decisions(start=now - timedelta(days=1), end=now)
    assert frame["decision_id"].tolist() == ["d1", "d3", "d2", "d4"]  # by decision time
    rows = frame.set_index("decision_id")
    assert bool(rows.loc["d2", "adjudicated_threat"]) and pd.isna(rows.loc["d1", "adjudicated_threat"])
    assert rows.loc["d1", "verdict"] == "inspect" and rows.loc["d4", "verdict"] == "clear"
    report = officer_report(frame)
    with_ai = report.ai_agreement.set_index("officer")
    assert (with_ai.loc["ann", "k"], with_ai.loc["ann", "n"]) == (2, 3)  # d1 agrees, d2 does not, d4 agrees
    adj = report.adjudicated_agreement.set_index("officer")
    assert (adj.loc["ann", "k"], adj.loc["ann", "n"]) == (0, 1)  # cleared what was adjudicated a threat
    assert report.throughput.set_index("officer").loc["bob", "decisions"] == 1


def test_the_officers_page_shows_supervisors_the_tables_and_refuses_officers(
        owner: tuple[StoreClient, Store], settings: Settings, now: datetime, monkeypatch: pytest.MonkeyPatch) -> None:
    client, store = owner
    point_app_at(monkeypatch, settings)
    seed_decisions(store, now)
    client.add_user("ann", PASSWORD, "officer")
    client.add_user("sue", PASSWORD, "supervisor")
    officer = app_as(user("ann", "officer", now), now, script="pages/officers.py").run()
    assert "may not open the officers page" in officer.error[0].value and not officer.dataframe
    at = app_as(user("sue", "supervisor", now), now).run()
    at.switch_page("pages/officers.py").run()
    assert not at.exception
    assert [m.value for m in at.metric] == ["4", "2", "0"]
    throughput, with_ai, with_adjudication = (d.value for d in at.dataframe)
    assert throughput["officer"].tolist() == ["ann", "bob"] and throughput["decisions"].tolist() == [3, 1]
    assert with_ai["n"].tolist() == [3] and with_adjudication["n"].tolist() == [1]
