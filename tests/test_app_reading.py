"""The Relabelling page's blind double reading, adjudication and agreement tabs under AppTest, against a real store
owner with seeded data (the style of tests/test_app_pages.py)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from store import readings
from store.client import StoreClient
from store.engine import Store
from tests.app_harness import PASSWORD, ServingApi, app_as, point_app_at, user
from tests.conftest import make_settings
from tests.seeding import seed_store
from xscreen.records import DecisionRecord
from xscreen.settings import Settings


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    # uncertain items scored 0.5 or more are high risk; no drift share, so the queue is stable
    return make_settings(tmp_path / "home", labelling={"double_read_min_score": 0.5, "drift_share": 0.0})


@pytest.fixture
def risky(owner: tuple[StoreClient, Store], settings: Settings, now: datetime, monkeypatch: pytest.MonkeyPatch,
          tmp_path: Path) -> Iterator[str]:
    """A high-risk item of today's queue; users ann, bob (officers), sue, sam (supervisors)."""
    client, store = owner
    point_app_at(monkeypatch, settings)
    monkeypatch.setenv("XSCREEN_LABELLING__DRIFT_SHARE", "0")
    for name, role in (("ann", "officer"), ("bob", "officer"), ("sue", "supervisor"), ("sam", "supervisor")):
        client.add_user(name, PASSWORD, role)  # type: ignore[arg-type]
    seed_store(client, n_scans=120, seed=3, now=now)
    queue = client.relabel_queue(limit=50)
    with ServingApi(settings, client, tmp_path / "serving"):
        yield str(queue[queue["any_threat"] >= 0.5]["scan_id"].iloc[0])


def _read(name: str, role: str, now: datetime, scan_id: str, labels: list[str]):  # type: ignore[no-untyped-def]
    at = app_as(user(name, role, now), now).run()  # type: ignore[arg-type]
    at.switch_page("pages/relabel.py").run()
    at.selectbox(key="relabel_pick").set_value(scan_id).run()
    assert not at.exception
    assert "relabel_save" not in [b.key for b in at.button]  # no single label on a high-risk item
    assert all("author" not in d.value.columns for d in at.dataframe)  # nor its label history
    at.multiselect(key="relabel_reading_labels").set_value(labels).run()
    at.button(key="relabel_read").click().run()
    assert not at.exception
    return at


def test_two_blind_readings_then_a_supervisor_adjudicates_and_sees_agreement(
        risky: str, now: datetime, owner: tuple[StoreClient, Store]) -> None:
    client, store = owner
    ann = _read("ann", "officer", now, risky, ["knife"])
    assert ann.success[0].value == f"Reading saved on {risky}: {readings.AWAITING}."
    assert [t.label for t in ann.tabs] == []  # officers see the queue only
    bob = app_as(user("bob", "officer", now), now).run()
    bob.switch_page("pages/relabel.py").run()
    bob.selectbox(key="relabel_pick").set_value(risky).run()
    shown = " ".join(m.value for m in bob.markdown) + " ".join(str(i.value) for i in bob.info)
    assert "knife" not in shown and "1 of 2 readings" in shown  # bob reads blind
    row = bob.dataframe[0].value.set_index("scan_id").loc[risky]
    assert row["reading"] == readings.AWAITING and row["current_labels"] is None
    bob = _read("bob", "officer", now, risky, ["firearm"])
    assert bob.success[0].value.endswith(f"{readings.DISPUTED}.")
    assert risky not in set(store.training_labels()["scan_id"])

    sue = app_as(user("sue", "supervisor", now), now).run()
    sue.switch_page("pages/relabel.py").run()
    assert [t.label for t in sue.tabs] == ["Queue", "Adjudication", "Agreement"]
    assert sue.tabs[1].dataframe[0].value["scan_id"].tolist() == [risky]
    said = [m.value for m in sue.tabs[1].markdown]
    assert "**ann** read: knife" in said and "**bob** read: firearm" in said
    sue.multiselect(key="relabel_adjudication_labels").set_value(["firearm"]).run()
    sue.button(key="relabel_adjudication_save").click().run()
    assert not sue.exception and sue.success[0].value == f"Adjudicated {risky}: firearm."
    assert client.get_scan(risky)["current_labels"] == ["firearm"]
    assert store.audit_log(action="adjudicate")[0].actor == "sue"
    kappa = sue.tabs[2].dataframe[0].value.set_index("reader")
    assert kappa.loc["ann", "n"] == 1 and kappa.loc["ann", "n_adjudicated"] == 1
    assert kappa.loc["ann", "kappa_adjudicated"] == pytest.approx(0.0)  # knife against firearm


def test_an_item_the_officer_decided_at_triage_is_not_in_their_reading_queue(
        risky: str, now: datetime, owner: tuple[StoreClient, Store]) -> None:
    _, store = owner
    store.record_decision(DecisionRecord(decision_id="d-ann", scan_id=risky, officer="ann", decision="cleared",
                                         decided_at=now))
    ann = app_as(user("ann", "officer", now), now).run()
    ann.switch_page("pages/relabel.py").run()
    assert not ann.exception
    assert risky not in ann.dataframe[0].value["scan_id"].tolist()
    assert risky not in ann.selectbox(key="relabel_pick").options
    bob = app_as(user("bob", "officer", now), now).run()
    bob.switch_page("pages/relabel.py").run()
    assert risky in bob.dataframe[0].value["scan_id"].tolist()
