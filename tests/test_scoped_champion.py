"""A champion for one scanner (models.scanner_id): promotion leaves the fleet champion, the gate compares against
the champion in force for the scope, rollback follows one scope's history, serving reads every scope."""

from __future__ import annotations

from datetime import datetime

import pytest

from store.engine import Store
from tests.seeding import model_record
from xscreen.errors import ConflictError, NotFoundError, XscreenError
from xscreen.records import GateReportRecord

CLASSES = ["knife", "firearm"]


def _registered(store: Store, now: datetime, *versions: str) -> None:
    store.register_model(model_record("fleet-1", CLASSES, now, state="champion"))
    for version in versions:
        store.register_model(model_record(version, CLASSES, now, parent="fleet-1"))


def _passed(store: Store, now: datetime, candidate: str, champion: str) -> None:
    store.record_gate_report(GateReportRecord(report_id=f"{candidate}-vs-{champion}", candidate=candidate,
                                              champion=champion, created_at=now, passed=True, report={}), actor="sue")


def _scopes(store: Store) -> dict[str, tuple[str, str | None]]:
    return {m.version: (m.state, m.scanner_id) for m in store.list_models()}


def test_a_scanner_champion_leaves_the_fleet_champion_and_serving_reads_both(store: Store, now: datetime) -> None:
    _registered(store, now, "s4-a", "s5-a")
    store.set_model_state("s4-a", "champion", actor="sue", reason="adapted", force=True, scanner="scanner-4")
    store.set_model_state("s5-a", "champion", actor="sue", force=True, scanner="scanner-5")
    assert _scopes(store) == {"fleet-1": ("champion", None), "s4-a": ("champion", "scanner-4"),
                              "s5-a": ("champion", "scanner-5")}
    assert store.champion().version == "fleet-1"  # type: ignore[union-attr]
    in_force = [(m.role, m.version, m.scanner_id) for m in store.models_in_force()]
    assert in_force == [("champion", "fleet-1", None), ("champion", "s4-a", "scanner-4"),
                        ("champion", "s5-a", "scanner-5")]
    assert store.integrity_check().ok
    promote = [a for a in store.audit_log(actor="sue") if a.action == "promote" and a.target == "s4-a"]
    assert promote[0].details["scanner_id"] == "scanner-4" and promote[0].details["forced"] is True


def test_a_new_scanner_champion_replaces_only_that_scanners(store: Store, now: datetime) -> None:
    _registered(store, now, "s4-a", "s4-b")
    store.set_model_state("s4-a", "champion", actor="sue", force=True, scanner="scanner-4")
    store.set_model_state("s4-b", "champion", actor="sue", force=True, scanner="scanner-4")
    assert _scopes(store) == {"fleet-1": ("champion", None), "s4-a": ("retired", None),
                              "s4-b": ("champion", "scanner-4")}
    with pytest.raises(ConflictError, match="s4-b is the champion of scanner scanner-4"):
        store.set_model_state("s4-b", "champion", actor="sue", force=True, scanner="scanner-5")
    with pytest.raises(ConflictError, match="fleet-1 is the champion of the fleet"):
        store.set_model_state("fleet-1", "champion", actor="sue", force=True, scanner="scanner-4")
    with pytest.raises(XscreenError, match="applies to a champion only"):
        store.set_model_state("s4-a", "shadow", actor="sue", scanner="scanner-4")


def test_the_gate_compares_against_the_champion_in_force_for_the_scope(store: Store, now: datetime) -> None:
    _registered(store, now, "s4-a", "s4-b")
    with pytest.raises(ConflictError, match="against the champion fleet-1 in force for scanner scanner-4"):
        store.set_model_state("s4-a", "champion", actor="sue", scanner="scanner-4")
    _passed(store, now, "s4-a", "fleet-1")  # no scanner champion yet: the fleet's is the one to beat
    store.set_model_state("s4-a", "champion", actor="sue", scanner="scanner-4")
    _passed(store, now, "s4-b", "fleet-1")  # beating the fleet champion is no longer enough for scanner-4
    with pytest.raises(ConflictError, match="against the champion s4-a in force for scanner scanner-4"):
        store.set_model_state("s4-b", "champion", actor="sue", scanner="scanner-4")
    _passed(store, now, "s4-b", "s4-a")
    store.set_model_state("s4-b", "champion", actor="sue", scanner="scanner-4")
    assert _scopes(store)["s4-b"] == ("champion", "scanner-4")


def test_rollback_of_a_scanner_follows_its_own_history_then_returns_to_the_fleet(store: Store, now: datetime) -> None:
    _registered(store, now, "s4-a", "s4-b", "fleet-2", "s5-a")
    store.set_model_state("s4-a", "champion", actor="sue", force=True, scanner="scanner-4")
    store.set_model_state("fleet-2", "champion", actor="sue", force=True)  # the fleet moves on meanwhile
    store.set_model_state("s4-b", "champion", actor="sue", force=True, scanner="scanner-4")
    store.set_model_state("s5-a", "champion", actor="sue", force=True, scanner="scanner-5")
    assert store.rollback(actor="sue", scanner="scanner-4") == "s4-a"  # as for the fleet: the one before
    assert _scopes(store)["s4-a"] == ("champion", "scanner-4") and store.champion().version == "fleet-2"  # type: ignore[union-attr]
    assert _scopes(store)["s5-a"] == ("champion", "scanner-5")  # another scanner is untouched
    assert store.rollback(actor="sue", scanner="scanner-5") == "fleet-2"  # its first champion: back to the fleet
    assert _scopes(store)["s5-a"] == ("retired", None)
    assert [(m.version, m.scanner_id) for m in store.models_in_force()] == [("fleet-2", None), ("s4-a", "scanner-4")]
    with pytest.raises(NotFoundError, match="scanner-5 has no champion of its own"):
        store.rollback(actor="sue", scanner="scanner-5")
    assert store.rollback(actor="sue") == "fleet-1"  # the fleet's history never saw the scanners' champions
    rollbacks = {(a.target, a.details.get("scanner_id")) for a in store.audit_log(actor="sue") if a.action == "rollback"}
    assert rollbacks == {("s4-a", "scanner-4"), ("fleet-2", "scanner-5"), ("fleet-1", None)}
    events = store.model_lineage("s5-a")["events"]
    assert [(e["from_state"], e["to_state"]) for e in events][-1] == ("champion", "retired")
