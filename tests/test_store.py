"""Store behaviour on a real DuckDB file: idempotent ingest, triage queue and claims, decisions, labels, models."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from store.engine import Store
from tests.seeding import CHAMPION, SHADOW, make_batch, model_record, seed_store
from xscreen.errors import ConflictError, NotFoundError, XscreenError
from xscreen.records import AlertRecord, DecisionRecord, GateReportRecord, LabelRecord, MeasurementRecord


def _decision(scan_id: str, officer: str, decision: str, now: datetime, threat_class: str | None = None,
              decision_id: str | None = None) -> DecisionRecord:
    return DecisionRecord(decision_id=decision_id or f"{scan_id}-{officer}-{decision}", scan_id=scan_id,
                          officer=officer, decision=decision, threat_class=threat_class, decided_at=now)  # type: ignore[arg-type]


def test_same_batch_twice_is_stored_once(store: Store, now: datetime) -> None:
    batch = make_batch(np.random.default_rng(1), 0, 20, now, ["knife", "firearm"], batch_id="b1")
    first = store.ingest(batch)
    again = store.ingest(batch)
    assert (first.new_scans, first.new_verdicts, first.duplicate_batch) == (20, 40, False)
    assert again.duplicate_batch and (again.new_scans, again.duplicate_verdicts) == (0, 40)
    assert store.info()["rows"]["verdicts"] == 40


def test_re_delivered_sha256_in_a_new_batch_is_not_stored_twice(store: Store, now: datetime) -> None:
    rng = np.random.default_rng(2)
    store.ingest(make_batch(rng, 0, 10, now, ["knife"], batch_id="b1"))
    result = store.ingest(make_batch(rng, 5, 10, now, ["knife"], batch_id="b2"))  # scans 5..14: 5 known
    assert (result.new_scans, result.duplicate_scans) == (5, 5)
    assert (result.new_verdicts, result.duplicate_verdicts) == (10, 10)
    assert store.known_hashes([s.sha256 for s in make_batch(rng, 12, 6, now, ["knife"]).scans]) == {
        s.sha256 for s in make_batch(rng, 12, 3, now, ["knife"]).scans}


def test_get_scan_returns_verdicts_heatmaps_and_missing_is_not_found(store: Store, now: datetime) -> None:
    seeded = seed_store(store, 60, seed=3, now=now)
    scan = store.get_scan(seeded.flagged[0])
    assert [v["model_version"] for v in scan["verdicts"]] == [CHAMPION, SHADOW]
    champion = scan["verdicts"][0]
    assert champion["heatmaps"] and set(champion["heatmaps"]) == set(champion["peak_boxes"])
    assert scan["mean_attenuation"] is not None and scan["declared_contents"] == [{"description": "books", "quantity": 1}]
    with pytest.raises(NotFoundError, match="nope"):
        store.get_scan("nope")


def test_queue_is_flagged_champion_items_highest_risk_first(store: Store, now: datetime) -> None:
    seeded = seed_store(store, 300, seed=4, now=now)
    q = store.queue("ann", limit=1000)
    assert set(q["scan_id"]) == set(seeded.flagged)
    assert list(q["any_threat"]) == sorted(q["any_threat"], reverse=True)
    assert set(q["verdict"]) <= {"inspect", "uncertain"} and set(q["model_version"]) == {CHAMPION}
    assert len(store.queue("ann", limit=5, scanner_id="scanner-b")) <= 5
    assert set(store.queue("ann", limit=1000, scanner_id="scanner-b")["scanner_id"]) == {"scanner-b"}


def test_claimed_item_leaves_other_officers_queue_until_claim_expires(store: Store, now: datetime) -> None:
    seeded = seed_store(store, 200, seed=5, now=now)
    top = store.queue("ann", limit=1)["scan_id"][0]
    store.claim(top, "ann")
    assert top not in set(store.queue("bob", limit=1000)["scan_id"])
    mine = store.queue("ann", limit=1000)
    assert mine.set_index("scan_id").loc[top, "claimed_by"] == "ann"
    with pytest.raises(ConflictError, match="ann"):
        store.claim(top, "bob")
    store.release(top, "ann")
    store.claim(top, "bob")
    assert len(seeded.flagged) > 1


def test_two_officers_deciding_the_same_item_conflict(store: Store, now: datetime) -> None:
    seeded = seed_store(store, 100, seed=6, now=now)
    scan_id = seeded.flagged[0]
    store.record_decision(_decision(scan_id, "ann", "confirmed", now, threat_class="knife"))
    with pytest.raises(ConflictError, match="already decided .* by ann"):
        store.record_decision(_decision(scan_id, "bob", "cleared", now))
    store.record_decision(_decision(scan_id, "ann", "confirmed", now, threat_class="knife"))  # same id: no-op
    scan = store.get_scan(scan_id)
    assert [d["officer"] for d in scan["decisions"]] == ["ann"]
    assert scan["current_labels"] == ["knife"]
    assert scan_id not in set(store.queue("bob", limit=1000)["scan_id"])
    actions = [(a.actor, a.action, a.target) for a in store.audit_log(actor="ann")]
    assert ("ann", "decision", scan_id) in actions


def test_decision_on_an_item_another_officer_holds_is_refused(store: Store, now: datetime) -> None:
    seeded = seed_store(store, 100, seed=7, now=now)
    scan_id = seeded.flagged[0]
    store.claim(scan_id, "ann")
    with pytest.raises(ConflictError, match="being worked by ann"):
        store.record_decision(_decision(scan_id, "bob", "cleared", now))


def test_refer_keeps_the_item_queued_and_marked_without_a_label(store: Store, now: datetime) -> None:
    seeded = seed_store(store, 100, seed=8, now=now)
    scan_id = seeded.flagged[0]
    store.claim(scan_id, "ann")
    store.record_decision(_decision(scan_id, "ann", "refer", now))
    q = store.queue("sue", limit=1000).set_index("scan_id")
    assert bool(q.loc[scan_id, "referred"]) is True
    assert store.get_scan(scan_id)["current_labels"] is None
    store.record_decision(_decision(scan_id, "sue", "seized", now))
    assert store.get_scan(scan_id)["current_labels"] == ["threat"]


def test_referred_item_leaves_the_referrers_queue_and_waits_for_someone_else(store: Store, now: datetime) -> None:
    seeded = seed_store(store, 100, seed=8, now=now)
    scan_id = store.queue("ann", limit=1)["scan_id"][0]
    store.claim(scan_id, "ann")
    store.record_decision(_decision(scan_id, "ann", "refer", now))
    assert scan_id not in set(store.queue("ann", limit=1000)["scan_id"])  # pressing N again gives ann another item
    assert store.queue("ann", limit=1)["scan_id"][0] != scan_id
    for other in ("bob", "sue"):
        row = store.queue(other, limit=1000).set_index("scan_id").loc[scan_id]
        assert bool(row["referred"]) and row["referred_by"] == "ann"
    store.record_decision(_decision(scan_id, "bob", "refer", now))  # a second opinion may be referred on again
    assert scan_id not in set(store.queue("bob", limit=1000)["scan_id"])
    assert store.queue("sue", limit=1000).set_index("scan_id").loc[scan_id, "referred_by"] == "ann, bob"
    assert len(seeded.flagged) > 1


def test_queue_counts_the_whole_backlog_not_the_page(store: Store, now: datetime) -> None:
    seeded = seed_store(store, 300, seed=4, now=now)
    page = store.queue("ann", limit=5)
    assert len(page) == 5 and set(page["waiting"]) == {len(seeded.flagged)}
    store.claim(seeded.flagged[0], "bob")  # another officer's item is not ann's backlog
    assert set(store.queue("ann", limit=5)["waiting"]) == {len(seeded.flagged) - 1}


def test_labels_are_appended_and_the_newest_is_current(store: Store, now: datetime) -> None:
    seeded = seed_store(store, 50, seed=9, now=now)
    scan_id = seeded.scan_ids[0]
    first = LabelRecord(label_id="l1", scan_id=scan_id, labels=["knife"], source="relabel", author="ann",
                        created_at=now)
    second = LabelRecord(label_id="l2", scan_id=scan_id, labels=["knife", "ammunition"], source="adjudication",
                         author="sue", created_at=now + timedelta(minutes=1))
    assert store.add_labels([first, second]) == 2
    assert store.add_labels([first]) == 0
    scan = store.get_scan(scan_id)
    assert scan["current_labels"] == ["knife", "ammunition"] and len(scan["labels"]) == 2


def test_relabel_queue_puts_officer_model_disagreements_first(store: Store, now: datetime) -> None:
    seeded = seed_store(store, 300, seed=10, now=now)
    q = store.queue("ann", limit=1000)
    alarm = q[q["verdict"] == "inspect"]["scan_id"].iloc[0]
    store.record_decision(_decision(alarm, "ann", "cleared", now))
    rq = store.relabel_queue(limit=50)
    assert rq["scan_id"].iloc[0] == alarm and rq["reason"].iloc[0] == "officer cleared a model alarm"
    assert set(rq["reason"].iloc[1:]) <= {"model uncertain"}
    assert len(seeded.flagged) > 1


def test_promoting_keeps_exactly_one_champion_and_rollback_restores_the_previous(store: Store, now: datetime) -> None:
    classes = ["knife", "firearm"]
    store.register_model(model_record("v1", classes, now, state="champion"))
    store.register_model(model_record("v2", classes, now))
    store.set_model_state("v2", "champion", actor="sue", reason="better recall", force=True)
    states = {m.version: m.state for m in store.list_models()}
    assert states == {"v1": "retired", "v2": "champion"}
    assert store.champion().version == "v2"  # type: ignore[union-attr]
    # the champion pointer and its thresholds live in the models row only, no copy in settings_kv
    assert store.get_setting("champion") is None and store.get_setting("thresholds") is None
    [live] = store.models_in_force()
    assert (live.role, live.version, live.thresholds) == ("champion", "v2", model_record("v2", classes, now).thresholds)
    assert store.rollback(actor="sue") == "v1"
    assert [m.version for m in store.list_models() if m.state == "champion"] == ["v1"]
    assert {a.action for a in store.audit_log(actor="sue")} >= {"promote", "rollback"}
    with pytest.raises(NotFoundError):
        store.set_model_state("v9", "champion", actor="sue")


def test_one_shadow_at_a_time_and_models_in_force_lists_champion_and_shadow(store: Store, now: datetime) -> None:
    classes = ["knife", "firearm"]
    store.register_model(model_record("v1", classes, now, state="champion"))
    store.register_model(model_record("v2", classes, now, state="shadow"))
    store.register_model(model_record("v3", classes, now))
    store.set_model_state("v3", "shadow", actor="sue", reason="challenger")
    assert {m.version: m.state for m in store.list_models()} == {"v1": "champion", "v2": "candidate", "v3": "shadow"}
    assert [(m.role, m.version) for m in store.models_in_force()] == [("champion", "v1"), ("shadow", "v3")]


def test_thresholds_change_in_the_models_row_with_a_version_and_an_audit_entry(store: Store, now: datetime) -> None:
    classes = ["knife", "firearm"]
    store.register_model(model_record("v1", classes, now, state="champion"))
    new = {c: {"clear": 0.1, "inspect": 0.5} for c in ["any_threat", *classes]}
    assert store.set_thresholds("v1", new, actor="sue", reason="more sensitive") == 2
    [live] = store.models_in_force()
    assert (live.thresholds, live.thresholds_version) == (new, 2)
    assert store.get_model("v1").thresholds_version == 2
    [entry] = [a for a in store.audit_log(actor="sue") if a.action == "thresholds"]
    assert entry.target == "v1"
    with pytest.raises(XscreenError, match="'firearm' needs 0 <= clear <= inspect"):
        store.set_thresholds("v1", {**new, "firearm": {"clear": 0.9, "inspect": 0.5}}, actor="sue")
    with pytest.raises(XscreenError, match="'knife' needs 'clear' and 'inspect'"):
        store.set_thresholds("v1", {"any_threat": new["any_threat"]}, actor="sue")
    assert store.models_in_force()[0].thresholds_version == 2  # a refused change changes nothing


def test_registering_other_weights_under_a_known_version_conflicts(store: Store, now: datetime) -> None:
    rec = model_record("v1", ["knife"], now)
    store.register_model(rec)
    store.register_model(rec)  # same weights: no-op
    with pytest.raises(ConflictError, match="v1"):
        store.register_model(rec.model_copy(update={"weights_sha256": "f" * 64}))


def test_measurements_and_alerts_are_idempotent_by_id(store: Store, now: datetime) -> None:
    m = MeasurementRecord(measurement_id="m1", measured_at=now, kind="psi_any_threat", scanner_id="scanner-a",
                          value=0.31, details={"bins": 10})
    assert store.add_measurements([m, m]) == 1
    alert = AlertRecord(alert_id="a1", raised_at=now, severity="warning", kind="drift", message="PSI 0.31")
    assert store.raise_alert(alert) is True and store.raise_alert(alert) is False
    store.set_alert_status("a1", "acknowledged", actor="sue")
    assert [a.status for a in store.list_alerts()] == ["acknowledged"]
    assert store.list_alerts(status="open") == []
    with pytest.raises(NotFoundError):
        store.set_alert_status("zz", "resolved", actor="sue")


def test_similar_items_ranks_known_outcomes_by_embedding(store: Store, now: datetime) -> None:
    seeded = seed_store(store, 80, seed=11, now=now)
    for scan_id in seeded.flagged[1:6]:
        store.record_decision(_decision(scan_id, "ann", "cleared", now))
    sim = store.similar_items(seeded.flagged[0], k=3)
    assert len(sim) == 3 and set(sim["decision"]) == {"cleared"}
    assert list(sim["similarity"]) == sorted(sim["similarity"], reverse=True)
    assert seeded.flagged[0] not in set(sim["scan_id"])


def test_a_refused_write_does_not_sink_the_others_in_its_group_commit(tmp_path, now: datetime) -> None:  # type: ignore[no-untyped-def]
    import threading

    with Store.open(tmp_path / "db.duckdb", write_batch_wait_ms=50, clock=lambda: now) as store:
        seed_store(store, 30, seed=12, now=now, register_models=False)
        errors: list[Exception] = []

        def bad() -> None:
            try:
                store.set_alert_status("missing", "resolved", actor="x")
            except NotFoundError as exc:
                errors.append(exc)

        threads = [threading.Thread(target=bad)] + [
            threading.Thread(target=store.register_model, args=(model_record(f"v{i}", ["knife"], now),))
            for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(errors) == 1 and len(store.list_models()) == 4


def test_hourly_rollup_counts_equal_the_verdicts_they_summarise(store: Store, now: datetime) -> None:
    seeded = seed_store(store, 400, seed=13, now=now)
    store.ingest(make_batch(np.random.default_rng(13), 0, 50, now, seeded.classes, batch_id="again"))  # duplicates
    week = {"start": now - timedelta(days=8), "end": now + timedelta(hours=1)}
    rolled = store.verdict_counts(bucket="day", **week)
    with store.reader() as cur:
        raw = cur.execute("SELECT time_bucket(INTERVAL 1 day, scored_at) AS bucket, scanner_id, model_version, "
                          "count(*) AS n, count(*) FILTER (verdict = 'inspect') AS n_inspect FROM verdicts "
                          "WHERE role = 'champion' GROUP BY ALL ORDER BY ALL").df()
    assert rolled[["n", "n_inspect"]].values.tolist() == raw[["n", "n_inspect"]].values.tolist()
    assert rolled["n"].sum() == 400
    minute = store.verdict_counts(bucket="minute", **week)
    assert minute["n"].sum() == 400 and (minute["flag_rate"] <= 1).all()


def test_snapshot_of_a_file_named_with_dashes_and_spaces_is_consistent(tmp_path, now: datetime) -> None:  # type: ignore[no-untyped-def]
    import duckdb

    with Store.open(tmp_path / "my store-1.duckdb", clock=lambda: now) as store:
        seed_store(store, 30, seed=14, now=now)
        snap = store.snapshot(Path("out/snap.duckdb"))
        parquet = store.snapshot(Path("pq"), parquet=True)
    con = duckdb.connect(str(snap), read_only=True)
    assert con.execute("SELECT count(*) FROM verdicts").fetchone() == (60,)
    assert con.execute("SELECT count(*) FROM queue_pending").fetchone()[0] > 0
    con.close()
    assert (parquet / "verdicts.parquet").exists() and (parquet / "schema.sql").exists()


def test_snapshot_taken_during_ingest_is_one_committed_state(tmp_path, now: datetime) -> None:  # type: ignore[no-untyped-def]
    import threading

    import duckdb

    with Store.open(tmp_path / "live.duckdb", clock=lambda: now) as store:
        batches = [make_batch(np.random.default_rng(i), i * 20, 20, now, ["knife"], shadow=False,
                              batch_id=f"b{i}") for i in range(40)]
        feeder = threading.Thread(target=lambda: [store.ingest(b) for b in batches])
        feeder.start()
        snaps = [store.snapshot(Path(f"snap-{k}.duckdb")) for k in range(3)]
        feeder.join()
    for snap in snaps:
        con = duckdb.connect(str(snap), read_only=True)
        n_batches, n_verdicts, n_hourly = con.execute(
            "SELECT (SELECT count(*) FROM ingest_batches), (SELECT count(*) FROM verdicts), "
            "(SELECT coalesce(sum(n), 0) FROM verdict_hourly)").fetchone()
        con.close()
        assert n_verdicts == 20 * n_batches == n_hourly  # never half a batch, rollup in step


def test_verdict_arriving_after_its_scan_takes_the_scans_scanner(store: Store, now: datetime) -> None:
    from xscreen.records import IngestBatch

    first = make_batch(np.random.default_rng(9), 0, 4, now, ["knife"], shadow=False, batch_id="scans-first")
    store.ingest(first)
    late = [v.model_copy(update={"model_version": "m-late", "role": "shadow"}) for v in first.verdicts]
    result = store.ingest(IngestBatch(batch_id="verdicts-later", verdicts=late))
    assert (result.new_scans, result.new_verdicts) == (0, 4)
    with store.reader() as cur:
        got = dict(cur.execute("SELECT scan_id, scanner_id FROM verdicts WHERE model_version = 'm-late'").fetchall())
    assert got == {s.scan_id: s.scanner_id for s in first.scans}


def test_checkpoint_threshold_follows_the_setting(tmp_path: Path) -> None:
    # Checkpoints hold every writer; a smaller WAL threshold makes each wait short.
    with Store.open(tmp_path / "x.duckdb", checkpoint_wal_mb=2.0) as store:
        with store.reader() as cur:
            (value,) = cur.execute("SELECT current_setting('checkpoint_threshold')").fetchall()[0]
    assert value == "2.0 MiB"


def test_the_shadow_stops_once_it_has_scored_enough_threat_items(store: Store, now: datetime) -> None:
    seeded = seed_store(store, 40, seed=4, now=now)
    assert store.shadow_progress()["threats"] == 0  # type: ignore[index]
    threats = seeded.scan_ids[:3]
    store.add_labels([LabelRecord(label_id=f"t{i}", scan_id=s, labels=["knife"], source="relabel", author="ann",
                                  created_at=now) for i, s in enumerate(threats)]
                     + [LabelRecord(label_id="b", scan_id=seeded.scan_ids[5], labels=[], source="relabel",
                                    author="ann", created_at=now)])
    progress = store.shadow_progress()
    assert (progress["version"], progress["scored"], progress["threats"]) == (SHADOW, 40, 3)  # type: ignore[index]
    assert store.end_shadow_when_done(4) is None and store.get_model(SHADOW).state == "shadow"
    assert store.end_shadow_when_done(3) == SHADOW
    assert store.get_model(SHADOW).state == "candidate" and store.shadow_progress() is None
    assert [m.role for m in store.models_in_force()] == ["champion"]


def test_a_finished_shadow_with_a_passing_gate_is_promoted_when_automatic_promotion_is_on(store: Store,
                                                                                         now: datetime) -> None:
    seeded = seed_store(store, 40, seed=4, now=now)
    store.add_labels([LabelRecord(label_id=f"t{i}", scan_id=s, labels=["knife"], source="relabel", author="ann",
                                  created_at=now) for i, s in enumerate(seeded.scan_ids[:3])])
    # A failed report, or a passing one against another champion, is not enough: it goes back to candidate.
    for rid, champion, passed in (("g-fail", CHAMPION, False), ("g-other", SHADOW, True)):
        store.record_gate_report(GateReportRecord(report_id=rid, candidate=SHADOW, champion=champion,
                                                  created_at=now, passed=passed, report={}), actor="sue")
    assert store.end_shadow_when_done(3, auto_promote=True) == SHADOW
    assert store.get_model(SHADOW).state == "candidate" and store.champion().version == CHAMPION  # type: ignore[union-attr]
    store.set_model_state(SHADOW, "shadow", actor="sue", reason="again")
    store.record_gate_report(GateReportRecord(report_id="g-pass", candidate=SHADOW, champion=CHAMPION,
                                              created_at=now, passed=True, report={}), actor="sue")
    assert store.end_shadow_when_done(3) == SHADOW and store.get_model(SHADOW).state == "candidate"  # off: by hand
    store.set_model_state(SHADOW, "shadow", actor="sue", reason="again")
    assert store.end_shadow_when_done(3, auto_promote=True) == SHADOW
    assert store.champion().version == SHADOW and store.get_model(CHAMPION).state == "retired"  # type: ignore[union-attr]
    (event,) = [e for e in store.model_lineage(SHADOW)["events"] if e["to_state"] == "champion"]
    assert event["actor"] == "system" and "automatic promotion" in event["reason"] and "g-pass" in event["reason"]
    assert store.rollback(actor="sue") == CHAMPION  # one command back, as after any promotion


def test_lineage_names_ancestors_manifest_and_who_promoted_it(store: Store, now: datetime) -> None:
    classes = ["knife", "firearm"]
    store.register_model(model_record("v1", classes, now, state="champion"))
    store.register_model(model_record("v2", classes, now, parent="v1"))
    store.register_model(model_record("v3", classes, now, parent="v2"))
    store.set_model_state("v3", "champion", actor="sue", reason="passed the gate", force=True)
    lineage = store.model_lineage("v3")
    assert lineage["ancestors"] == ["v2", "v1"] and lineage["train_manifest_sha256"] == "0" * 64
    assert (lineage["promoted_by"], lineage["promoted_at"]) == ("sue", now)
    assert [(e["from_state"], e["to_state"]) for e in lineage["events"]] == [(None, "candidate"), ("candidate", "champion")]
    assert store.model_lineage("v1")["promoted_by"] == "system"  # registered straight in as champion
    with pytest.raises(NotFoundError):
        store.model_lineage("v9")


def test_replacing_the_champion_needs_a_passing_gate_report_or_an_audited_force(store: Store, now: datetime) -> None:
    classes = ["knife", "firearm"]
    store.register_model(model_record("v1", classes, now, state="champion"))
    store.register_model(model_record("v2", classes, now, parent="v1"))
    with pytest.raises(ConflictError, match="v2 has no passing gate report against the champion v1"):
        store.set_model_state("v2", "champion", actor="sue")
    failed = GateReportRecord(report_id="g1", candidate="v2", champion="v1", created_at=now, passed=False,
                              report={"reasons": ["knife detection fell"]})
    store.record_gate_report(failed, actor="sue")
    with pytest.raises(ConflictError):
        store.set_model_state("v2", "champion", actor="sue")
    store.record_gate_report(failed.model_copy(update={"report_id": "g2", "passed": True, "report": {}}), actor="sue")
    store.set_model_state("v2", "champion", actor="sue", reason="passed")
    assert {(r.report_id, r.passed) for r in store.gate_reports("v2")} == {("g1", False), ("g2", True)}
    store.register_model(model_record("v3", classes, now))
    store.set_model_state("v3", "champion", actor="sue", reason="emergency", force=True)
    promotions = [a for a in store.audit_log(actor="sue") if a.action == "promote"]
    assert {(a.target, a.details["forced"]) for a in promotions} == {("v2", False), ("v3", True)}
    assert store.rollback(actor="sue") == "v2"  # the previous champion needs no new gate
    with pytest.raises(NotFoundError):
        store.record_gate_report(failed.model_copy(update={"report_id": "g3", "candidate": "v9"}), actor="sue")


def test_random_unlabelled_is_a_repeatable_slice_of_unlabelled_scans(store: Store, now: datetime) -> None:
    seeded = seed_store(store, 60, seed=6, now=now)
    store.add_labels([LabelRecord(label_id="x", scan_id=seeded.scan_ids[0], labels=[], source="relabel",
                                  author="ann", created_at=now)])
    day1 = store.random_unlabelled(limit=10, seed="2026-11-20")
    assert len(day1) == 10 and seeded.scan_ids[0] not in set(day1["scan_id"])
    assert list(store.random_unlabelled(limit=10, seed="2026-11-20")["scan_id"]) == list(day1["scan_id"])
    assert list(store.random_unlabelled(limit=10, seed="2026-11-21")["scan_id"]) != list(day1["scan_id"])
    assert len(store.random_unlabelled(limit=100)) == 59
