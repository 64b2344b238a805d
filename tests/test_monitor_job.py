"""The monitoring job against a real store over the real owner: what it measures on a baseline stream (and that it
pages nobody), and which alert each change raises, once, naming where, since when and what to do."""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pytest

from serving.monitor_job import MonitorSchedule, run_monitor
from store.client import StoreClient
from store.engine import Store
from tests import monitor_seed
from tests.conftest import make_settings
from tests.monitor_seed import Drift
from xscreen.records import utcnow
from xscreen.settings import Settings

SCANNERS = ("scanner-a", "scanner-b", "scanner-c")


@pytest.fixture
def mon_settings(settings: Settings) -> Settings:
    # Small windows and fast tests: 60 scans per drift window, a run length of 6,000 scans between false flags (so
    # each check runs at level 0.01), 120 permutations (the least p-value, 1 / 121, is under it) and 20 bootstrap
    # draws.
    return settings.model_copy(update={"monitoring": settings.monitoring.model_copy(update={
        "drift_window": 60, "drift_arl_items": 6000.0, "mmd_permutations": 120, "cbpe_bootstrap": 20})})


def stream(client: Any, rng: np.random.Generator, t0: datetime, n: int, start: int,
           drifts: dict[str, Drift] | None = None, decide: bool = True) -> datetime:
    """n scans on each scanner from t0 (2 s apart), flagged ones decided by an officer 1 s after the last scan."""
    end = t0 + timedelta(seconds=2 * n)
    for scanner in SCANNERS:
        b, threats = monitor_seed.batch(rng, scanner, start, n, t0, (drifts or {}).get(scanner, Drift()))
        client.ingest(b)
        if decide:
            monitor_seed.decide_flagged(client, b, threats, end + timedelta(seconds=1))
    return end + timedelta(seconds=2)


def kinds(alerts: list[Any], severity: str | None = None) -> list[tuple[str, str | None]]:
    return sorted((a.kind, a.details.get("scanner_id")) for a in alerts if severity in (None, a.severity))


@pytest.fixture
def baseline(owner: tuple[StoreClient, Store], now: datetime) -> tuple[StoreClient, datetime]:
    client, _ = owner
    client.register_model(monitor_seed.model_record(now))
    t = stream(client, np.random.default_rng(1), now - timedelta(hours=3), 150, 0)
    return client, t


def test_a_baseline_stream_is_measured_from_every_angle_and_pages_nobody(
        baseline: tuple[StoreClient, datetime], mon_settings: Settings) -> None:
    client, t = baseline
    run = run_monitor(mon_settings, client, now=t)
    assert run.raised == [] and client.list_alerts() == []
    measured = {(m.kind, m.scanner_id) for m in run.measurements}
    for scanner in SCANNERS:
        for kind in ("certificate_watch", "image_stats_shift", "embedding_mmd", "reconstruction_outliers",
                     "flag_rate", "uncertain_share", "prevalence", "score_psi", "cbpe_detection",
                     "realised_detection", "realised_precision"):
            assert (kind, scanner) in measured, (kind, scanner)
    assert ("drift_cause", None) in measured
    stored = client.latest_measurements("certificate_watch")
    assert [m.scanner_id for m in stored] == list(SCANNERS)
    watch = stored[0].details
    assert not watch["alarm"] and watch["items"] > 100 and watch["tolerated_rate"] == pytest.approx(0.06)
    cbpe = next(m for m in run.measurements if m.kind == "cbpe_detection" and m.scanner_id == "scanner-a")
    assert 0.0 <= cbpe.details["low"] <= cbpe.value <= cbpe.details["high"] <= 1.0


def test_an_unseen_scanner_raises_one_certificate_alert_naming_it_and_proposing_adapt(
        baseline: tuple[StoreClient, datetime], mon_settings: Settings) -> None:
    client, t = baseline
    run_monitor(mon_settings, client, now=t)
    first_items = client.latest_measurements("certificate_watch")[2].details["items"]
    # scanner-c turns into a style the model never saw: 90% of benign mail routed. Within 60 items it must page.
    t2 = stream(client, np.random.default_rng(2), t, 60, 1000, {"scanner-c": Drift(routed=0.9)})
    run = run_monitor(mon_settings, client, now=t2)
    assert kinds(run.raised, "page") == [("certificate", "scanner-c")]
    assert kinds(run.raised) == [("certificate", "scanner-c"), ("score_drift", "scanner-c")]  # explains, no page
    alert = run.raised[0]
    assert alert.severity == "page" and "xscreen adapt --scanner scanner-c" in alert.message
    assert alert.details["action"] == "xscreen adapt --scanner scanner-c" and alert.details["recent_rate"] > 0.5
    watch = client.latest_measurements("certificate_watch")[2].details
    assert watch["alarm"] and first_items < watch["items"] <= first_items + 60  # continued, nothing counted twice
    t3 = stream(client, np.random.default_rng(3), t2, 30, 2000, {"scanner-c": Drift(routed=0.9)})
    assert run_monitor(mon_settings, client, now=t3).raised == []  # still open: not raised again
    assert kinds(client.list_alerts(status="open"), "page") == [("certificate", "scanner-c")]


def test_officers_clearing_their_queue_in_one_go_is_not_a_burst_of_routed_mail(
        owner: tuple[StoreClient, Store], now: datetime, mon_settings: Settings) -> None:
    # 300 baseline items per scanner, all flagged ones decided after the last scan: in decision order the routed
    # items come last, in a run of ~10 (the old feed, by resolution time, paged on every scanner). In scoring
    # order they are the 3% they are.
    client, _ = owner
    client.register_model(monitor_seed.model_record(now))
    t = stream(client, np.random.default_rng(8), now - timedelta(hours=3), 300, 0)
    run = run_monitor(mon_settings, client, now=t)
    assert kinds(run.raised, "page") == []
    # An item still waiting for an officer holds back the items scored after it (their turn comes once decided).
    before = next(m.details["items"] for m in run.measurements
                  if m.kind == "certificate_watch" and m.scanner_id == "scanner-a")
    rng = np.random.default_rng(9)
    clear, _ = monitor_seed.batch(rng, "scanner-a", 5000, 10, t, Drift(routed=0.0, prevalence=0.0))
    mixed, _ = monitor_seed.batch(rng, "scanner-a", 5010, 40, t + timedelta(seconds=20), Drift(routed=0.5))
    for b in (clear, mixed):
        client.ingest(b)  # nobody decides these yet
    run = run_monitor(mon_settings, client, now=t + timedelta(minutes=5))
    after = next(m.details["items"] for m in run.measurements
                 if m.kind == "certificate_watch" and m.scanner_id == "scanner-a")
    first_pending = next(i for i, v in enumerate(clear.verdicts + mixed.verdicts) if v.verdict != "clear")
    assert first_pending >= 10 and after - before == first_pending  # the cleared items before it, no more


def test_a_handled_certificate_alarm_starts_its_detector_afresh(baseline: tuple[StoreClient, datetime],
                                                               mon_settings: Settings, store: Store) -> None:
    client, t = baseline
    t2 = stream(client, np.random.default_rng(2), t, 60, 1000, {"scanner-c": Drift(routed=0.9)})
    alert = next(a for a in run_monitor(mon_settings, client, now=t2).raised if a.kind == "certificate")
    store.set_alert_status(alert.alert_id, "resolved", "cli:sue")
    t3 = stream(client, np.random.default_rng(3), t2, 40, 2000)  # scanner-c repaired
    run = run_monitor(mon_settings, client, now=t3)
    assert kinds(run.raised, "page") == []
    watch = client.latest_measurements("certificate_watch")[2].details
    assert not watch["alarm"] and watch["items"] <= 40


def test_scanner_ageing_is_scanner_drift_on_that_scanner_not_content(baseline: tuple[StoreClient, datetime],
                                                                     mon_settings: Settings) -> None:
    client, t = baseline
    t2 = stream(client, np.random.default_rng(4), t, 60, 1000, {"scanner-a": Drift(noise=3.0, attenuation=1.0)})
    run = run_monitor(mon_settings, client, now=t2)
    assert kinds(run.raised) == [("scanner_drift", "scanner-a")]
    alert = run.raised[0]
    assert alert.severity == "warning"  # drift explains; it pages only when monitoring.page_on_drift
    assert "noise_level +" in alert.message and "call maintenance" in alert.message
    cause = next(m for m in run.measurements if m.kind == "drift_cause")
    assert cause.details["scanner_drift"] == ["scanner-a"] and not cause.details["content_drift"]


def test_embeddings_moving_on_every_scanner_is_content_drift_and_pages_when_configured(
        baseline: tuple[StoreClient, datetime], mon_settings: Settings) -> None:
    client, t = baseline
    t2 = stream(client, np.random.default_rng(5), t, 60, 1000, dict.fromkeys(SCANNERS, Drift(embedding=2.0)))
    cfg = mon_settings.model_copy(update={"monitoring": mon_settings.monitoring.model_copy(
        update={"page_on_drift": True})})
    run = run_monitor(cfg, client, now=t2)
    assert kinds(run.raised) == [("content_drift", None)]
    assert run.raised[0].severity == "page" and "Retrain" in run.raised[0].message
    assert all(m.details["moved"] for m in run.measurements if m.kind == "embedding_mmd")


def test_missed_canaries_page_on_accuracy(baseline: tuple[StoreClient, datetime], mon_settings: Settings,
                                          now: datetime) -> None:
    client, t = baseline
    rng = np.random.default_rng(6)
    good, _ = monitor_seed.batch(rng, "scanner-b", 0, 100, t - timedelta(hours=2), canary=True)
    client.ingest(good)
    assert run_monitor(mon_settings, client, now=t).raised == []
    # A concealment the model no longer sees: canaries on scanner-b cleared half the time. Within 80 canaries.
    bad, _ = monitor_seed.batch(rng, "scanner-b", 500, 80, t, Drift(), canary=True)
    missed = [v.model_copy(update={"verdict": "clear", "any_threat": 0.1}) if i % 2 else v
              for i, v in enumerate(bad.verdicts)]
    client.ingest(bad.model_copy(update={"verdicts": missed, "batch_id": "bad-canaries"}))
    run = run_monitor(mon_settings, client, now=t + timedelta(minutes=10))
    assert kinds(run.raised) == [("accuracy", "scanner-b")]
    assert run.raised[0].severity == "page" and "known threats were missed" in run.raised[0].message


def test_each_new_alert_goes_to_the_webhook_and_a_dead_webhook_changes_nothing(
        baseline: tuple[StoreClient, datetime], mon_settings: Settings, tmp_path: Any) -> None:
    client, t = baseline
    sent: list[tuple[str, dict[str, Any]]] = []
    cfg = mon_settings.model_copy(update={"monitoring": mon_settings.monitoring.model_copy(
        update={"webhook_url": "http://127.0.0.1:9/alerts"})})
    t2 = stream(client, np.random.default_rng(2), t, 60, 1000, {"scanner-c": Drift(routed=0.9)})
    run = run_monitor(cfg, client, now=t2, post=lambda url, payload: sent.append((url, payload)))
    assert [(u, p["kind"], p["details"]["scanner_id"]) for u, p in sent] == [
        ("http://127.0.0.1:9/alerts", k, s) for k, s in kinds(run.raised)]
    assert ("certificate", "scanner-c") in kinds(run.raised)
    t3 = stream(client, np.random.default_rng(7), t2, 60, 3000, {"scanner-a": Drift(noise=3.0)})
    run = run_monitor(cfg, client, now=t3)  # the real POST to a closed port: logged, the alert still stored
    assert kinds(run.raised) == [("scanner_drift", "scanner-a")]
    assert ("scanner_drift", "scanner-a") in kinds(client.list_alerts(status="open"))


def test_a_failing_run_degrades_the_schedule_health_and_never_raises(tmp_path: Any) -> None:
    settings = make_settings(tmp_path / "home")

    def no_store() -> Any:
        raise ConnectionError("owner not answering")

    schedule = MonitorSchedule(settings, no_store, interval_s=0)
    assert schedule.run_once() is None and schedule.run_once() is None
    report = schedule.health()
    assert report.status == "degraded" and "failed 2 run(s) in a row" in report.reasons[0]
    schedule.start()  # interval 0: off, no thread
    assert not schedule.running


def test_healthz_hears_of_a_schedule_whose_runs_fail_or_stop_and_of_nothing_once_it_is_stopped(
        tmp_path: Any) -> None:
    from serving.monitor_status import judge, monitoring_health, status_path

    settings = make_settings(tmp_path / "home")
    assert monitoring_health(settings.home).status == "ok"  # never started (or monitoring off): nothing to say
    failing = {"n": 0}

    def flaky_store() -> Any:
        failing["n"] += 1
        raise ConnectionError("owner not answering")

    schedule = MonitorSchedule(settings, flaky_store, interval_s=0.2)
    schedule.start()
    try:
        deadline = time.monotonic() + 30
        while failing["n"] == 0 and time.monotonic() < deadline:  # bounded: until the first run has failed
            time.sleep(0.05)
        for _ in range(100):
            if monitoring_health(settings.home).status == "degraded":
                break
            time.sleep(0.05)
        seen = monitoring_health(settings.home)
        assert seen.status == "degraded" and "run(s) in a row: ConnectionError: owner not answering" in seen.reasons[0]
    finally:
        schedule.stop()
    assert not status_path(settings.home).exists() and monitoring_health(settings.home).status == "ok"
    # a schedule that stopped completing runs (a dead thread, a killed supervisor) is stale after 3 intervals,
    # and never before interval + 120 s
    ok = {"interval_s": 60.0, "started_at": 1000.0, "last_ok_at": 1000.0, "failures": 0, "last_error": None}
    assert judge(ok, now=1000.0 + 179).status == "ok"
    stale = judge(ok, now=1000.0 + 181)
    assert stale.status == "degraded" and "has not completed a run for 181 s (every 60 s expected)" in stale.reasons[0]
    never = judge({**ok, "interval_s": 600.0, "last_ok_at": None}, now=1000.0 + 1801)
    assert never.status == "degraded" and "completed a first run since it started" in never.reasons[0]
    assert judge({**ok, "interval_s": 600.0}, now=1000.0 + 1799).status == "ok"
    status_path(settings.home).write_text("{half a file")
    assert "unreadable" in monitoring_health(settings.home).reasons[0]


def test_the_supervisor_runs_the_job_on_its_schedule_against_the_owner(
        baseline: tuple[StoreClient, datetime], mon_settings: Settings) -> None:
    from serving.supervisor import Supervisor

    client, _ = baseline
    cfg = mon_settings.model_copy(update={"monitoring": mon_settings.monitoring.model_copy(update={"interval_s": 0.2})})
    supervisor = Supervisor(cfg)
    supervisor.store = client  # what start() holds once the owner answers
    said: list[str] = []
    supervisor._start_monitoring(said.append)
    try:
        deadline = time.monotonic() + 120
        while supervisor.monitoring.last_run is None and time.monotonic() < deadline:
            time.sleep(0.2)
    finally:
        supervisor.monitoring.stop()
    assert said == ["monitoring       every 0.2 s (`xscreen monitor` runs it now)"]
    assert supervisor.monitoring.last_run is not None and supervisor.monitoring.health().status == "ok"
    # (the fixture's stream is older than the look-back of the real clock: nothing to measure, nothing failed)
    assert abs((supervisor.monitoring.last_run.measured_at - utcnow()).total_seconds()) < 120
    from serving.monitor_status import status_path

    status_path(cfg.home).write_text('{"interval_s": 0.2, "started_at": 0, "failures": 0}')  # a killed run's
    off = Supervisor(cfg.model_copy(update={"monitoring": cfg.monitoring.model_copy(update={"interval_s": 0.0})}))
    off._start_monitoring(said.append)
    assert off.monitoring is None and len(said) == 1
    assert not status_path(cfg.home).exists()  # monitoring off now: no stale schedule to report


def test_the_domain_classifier_runs_on_windows_of_200_scans_and_sees_one_scanners_embeddings_move(
        owner: tuple[StoreClient, Store], now: datetime, mon_settings: Settings) -> None:
    client, _ = owner
    client.register_model(monitor_seed.model_record(now))
    cfg = mon_settings.model_copy(update={"monitoring": mon_settings.monitoring.model_copy(
        update={"drift_window": 220})})
    t = stream(client, np.random.default_rng(11), now - timedelta(hours=3), 150, 0)
    assert not [m for m in run_monitor(cfg, client, now=t).measurements if m.kind == "embedding_domain_auc"]  # 75 a side
    t = stream(client, np.random.default_rng(12), t, 300, 150)  # 220 a side: baseline on every scanner
    domain = [m for m in run_monitor(cfg, client, now=t).measurements if m.kind == "embedding_domain_auc"]
    assert sorted(m.scanner_id for m in domain) == list(SCANNERS)
    assert not any(m.details["moved"] for m in domain) and all(m.value < 0.6 for m in domain)
    t = stream(client, np.random.default_rng(13), t, 220, 450, {"scanner-a": Drift(embedding=1.0)})
    run = run_monitor(cfg, client, now=t)
    domain = [m for m in run.measurements if m.kind == "embedding_domain_auc"]
    assert {m.scanner_id: m.details["moved"] for m in domain} == {"scanner-a": True, "scanner-b": False,
                                                                 "scanner-c": False}
    assert all(m.details["n_current"] == 220 and m.details["threshold"] == pytest.approx(0.6) for m in domain)


def test_each_input_drift_check_runs_at_the_level_its_stated_run_length_sets(
        baseline: tuple[StoreClient, datetime], mon_settings: Settings) -> None:
    client, t = baseline
    t2 = stream(client, np.random.default_rng(5), t, 60, 1000, dict.fromkeys(SCANNERS, Drift(embedding=2.0)))
    # 60-scan windows at 6,000 scans between false flags: level 0.01 per check, MMD moves (the test above).
    # At the default 50,000 the level is 0.0012, which 120 permutations cannot reach (least p 1 / 121): MMD
    # stays unmoved and the run says why, rather than alarming more often than the run length allows.
    strict = mon_settings.model_copy(update={"monitoring": mon_settings.monitoring.model_copy(
        update={"drift_arl_items": 50_000.0})})
    run = run_monitor(strict, client, now=t2)
    mmd = [m for m in run.measurements if m.kind == "embedding_mmd"]
    image = [m for m in run.measurements if m.kind == "image_stats_shift"]
    assert len(mmd) == len(image) == 3
    assert all(m.details["alpha"] == pytest.approx(60 / 50_000) for m in mmd + image)
    assert not any(m.details["moved"] for m in mmd) and all(m.details["p_value"] < 0.01 for m in mmd)
    assert any("cannot give p < 0.0012" in n and "lower drift_arl_items" in n for n in run.notes)


def test_a_run_length_shorter_than_one_window_is_refused() -> None:
    from pydantic import ValidationError

    from xscreen.settings import MonitoringSettings
    assert MonitoringSettings(drift_window=500, drift_arl_items=50_000).drift_alpha == pytest.approx(0.01)
    with pytest.raises(ValidationError, match="must exceed drift_window"):
        MonitoringSettings(drift_window=500, drift_arl_items=400)
