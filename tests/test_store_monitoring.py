"""Monitoring's records in the store: measurements written once and read back by kind, scanner and window, the
same in-process and over HTTP."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from store.client import StoreClient
from store.engine import Store
from tests import monitor_seed
from tests.conftest import OwnerThread, make_settings
from tests.monitor_seed import Drift
from xscreen.errors import PermissionDenied
from xscreen.records import AlertRecord, MeasurementRecord


def measurement(i: int, kind: str, scanner: str, at: datetime) -> MeasurementRecord:
    return MeasurementRecord(measurement_id=f"m{i}", measured_at=at, kind=kind, scanner_id=scanner,
                             model_version="m-1", value=0.1 * i, details={"n": i})


def test_measurements_are_listed_newest_first_by_kind_scanner_and_window(owner: tuple[StoreClient, Store],
                                                                         now: datetime) -> None:
    client, store = owner
    rows = [measurement(1, "psi_any_threat", "scanner-a", now - timedelta(hours=3)),
            measurement(2, "psi_any_threat", "scanner-b", now - timedelta(hours=2)),
            measurement(3, "canary_detection_rate", "scanner-a", now - timedelta(hours=1)),
            measurement(4, "psi_any_threat", "scanner-a", now - timedelta(days=9))]
    assert client.add_measurements(rows) == 4 and client.add_measurements(rows[:1]) == 0  # ids are unique
    window = {"start": now - timedelta(days=1), "end": now}
    for side in (store, client):
        assert [m.measurement_id for m in side.list_measurements(**window)] == ["m3", "m2", "m1"]
        psi = side.list_measurements("psi_any_threat", scanner_id="scanner-a", **window)
        assert psi == [rows[0]] and psi[0].details == {"n": 1} and psi[0].measured_at == rows[0].measured_at
        assert [m.measurement_id for m in side.list_measurements(start=now - timedelta(days=10), end=now,
                                                                 limit=2)] == ["m3", "m2"]


def alert(alert_id: str, kind: str, scanner: str | None, at: datetime) -> AlertRecord:
    return AlertRecord(alert_id=alert_id, raised_at=at, severity="page", kind=kind, message=f"{kind} on {scanner}",
                       details={"scanner_id": scanner, "model_version": "m-1"})


def test_latest_measurement_of_each_kind_scanner_and_model_whenever_taken(owner: tuple[StoreClient, Store],
                                                                         now: datetime) -> None:
    client, store = owner
    rows = [measurement(1, "certificate_watch", "scanner-a", now - timedelta(days=40)),  # old, still the latest
            measurement(2, "certificate_watch", "scanner-b", now - timedelta(hours=2)),
            measurement(3, "certificate_watch", "scanner-b", now - timedelta(hours=1)),
            measurement(4, "embedding_mmd", "scanner-b", now - timedelta(hours=3))]
    client.add_measurements(rows)
    for side in (store, client):
        assert [m.measurement_id for m in side.latest_measurements("certificate_watch")] == ["m1", "m3"]
        assert [m.measurement_id for m in side.latest_measurements()] == ["m1", "m3", "m4"]


def test_an_alert_is_raised_once_while_one_of_its_kind_scanner_and_model_is_active(
        owner: tuple[StoreClient, Store], now: datetime) -> None:
    client, store = owner
    assert client.raise_alert_once(alert("a1", "certificate", "scanner-a", now))
    assert not client.raise_alert_once(alert("a2", "certificate", "scanner-a", now))  # open: not again
    assert client.raise_alert_once(alert("a3", "certificate", "scanner-b", now))  # another scanner
    assert client.raise_alert_once(alert("a4", "scanner_drift", "scanner-a", now))  # another kind
    assert client.raise_alert_once(alert("a5", "content_drift", None, now))
    assert not store.raise_alert_once(alert("a6", "content_drift", None, now))  # fleet-wide: scanner None
    store.set_alert_status("a1", "acknowledged", "cli:sue")
    assert not client.raise_alert_once(alert("a7", "certificate", "scanner-a", now))  # acknowledged is active
    store.set_alert_status("a1", "resolved", "cli:sue")
    assert client.raise_alert_once(alert("a8", "certificate", "scanner-a", now))  # resolved: a new one may come
    assert {a.alert_id for a in client.list_alerts(status="open")} == {"a3", "a4", "a5", "a8"}


def test_benign_resolutions_list_real_mail_in_scoring_order_with_what_officers_decided(
        owner: tuple[StoreClient, Store], now: datetime) -> None:
    client, store = owner
    rng = np.random.default_rng(3)
    b, threats = monitor_seed.batch(rng, "scanner-a", 0, 60, now - timedelta(hours=1))
    canaries, _ = monitor_seed.batch(rng, "scanner-a", 0, 5, now - timedelta(hours=1), canary=True)
    client.ingest(b)
    client.ingest(canaries)
    flagged = [i for i, v in enumerate(b.verdicts) if v.verdict != "clear"]
    half = b.model_copy(update={"verdicts": [b.verdicts[i] for i in flagged[: len(flagged) // 2]]})
    monitor_seed.decide_flagged(client, half, [threats[i] for i in flagged[: len(flagged) // 2]],
                                now - timedelta(minutes=10))
    window = {"start": now - timedelta(days=1), "end": now}
    for side in (store, client):
        df = side.benign_resolutions(**window)
        assert list(df["scan_id"]) == [v.scan_id for v in b.verdicts]  # scoring order, canaries left out
        assert list(df["routed"]) == [v.verdict != "clear" for v in b.verdicts]
        assert list(df.index[df["pending"]]) == flagged[len(flagged) // 2:]
        assert list(df["threat"]) == [i in flagged[: len(flagged) // 2] and threats[i] for i in range(60)]
        assert len(side.benign_resolutions(start=now - timedelta(minutes=30), end=now)) == 0


def test_canary_outcomes_say_which_known_threats_the_model_cleared(owner: tuple[StoreClient, Store],
                                                                  now: datetime) -> None:
    client, store = owner
    rng = np.random.default_rng(4)
    canaries, _ = monitor_seed.batch(rng, "scanner-b", 0, 40, now - timedelta(hours=1), canary=True)
    client.ingest(canaries)
    client.ingest(monitor_seed.batch(rng, "scanner-b", 0, 10, now - timedelta(hours=1))[0])
    df = store.known_threat_outcomes(start=now - timedelta(days=1), end=now)
    assert list(df["scan_id"]) == [v.scan_id for v in canaries.verdicts]
    assert list(df["missed"]) == [v.verdict == "clear" for v in canaries.verdicts]
    assert list(df["canary_labels"].iloc[0]) == ["knife"]
    assert client.known_threat_outcomes(start=now - timedelta(days=1), end=now).equals(df)


def test_monitor_windows_are_the_oldest_and_newest_scans_of_each_scanner_never_overlapping(
        owner: tuple[StoreClient, Store], now: datetime) -> None:
    client, store = owner
    rng = np.random.default_rng(5)
    t0 = now - timedelta(hours=2)
    a, _ = monitor_seed.batch(rng, "scanner-a", 0, 50, t0)
    b, _ = monitor_seed.batch(rng, "scanner-b", 0, 12, t0)
    client.ingest(a)
    client.ingest(b)
    df = client.monitor_windows(start=now - timedelta(days=1), end=now, per_window=20)
    ids_a = [s.scan_id for s in a.scans]
    a_rows = df[df["scanner_id"] == "scanner-a"]
    assert list(a_rows.loc[a_rows["window"] == "reference", "scan_id"]) == ids_a[:20]
    assert list(a_rows.loc[a_rows["window"] == "current", "scan_id"]) == ids_a[-20:]
    b_rows = df[df["scanner_id"] == "scanner-b"]  # fewer than 2 x 20: halves
    assert list(b_rows["window"]) == ["reference"] * 6 + ["current"] * 6
    row = a_rows.iloc[0]
    assert len(row["embedding"]) == 16 and json.loads(row["scores"]).keys() == set(monitor_seed.CLASSES)
    assert row["noise_level"] == a.scans[0].stats.noise_level
    assert store.monitor_windows(start=now - timedelta(days=1), end=now, per_window=20).shape == df.shape


def test_miss_evidence_lists_real_mail_with_each_audit_pi_and_what_officers_decided(
        tmp_path: Path, now: datetime) -> None:
    """The accuracy page's input: every real-mail item in scoring order, the audit's pi on audited cleared items,
    pending until an officer decides a flagged or audited item, threat once confirmed; officers may not read it
    (it tells audits apart)."""
    settings = make_settings(tmp_path / "home", screening={"audit_rate": 0.3})
    rng = np.random.default_rng(11)
    b, threats = monitor_seed.batch(rng, "scanner-a", 0, 80, now - timedelta(hours=1), Drift(prevalence=0.3))
    canaries, _ = monitor_seed.batch(rng, "scanner-a", 0, 5, now - timedelta(hours=1), canary=True)
    window = {"start": now - timedelta(days=1), "end": now}
    with Store.from_settings(settings, clock=lambda: now) as store, OwnerThread(store, settings), \
            StoreClient.from_settings(settings) as client:
        client.ingest(b)
        client.ingest(canaries)
        audited = set(client.audit_outcomes(**window)["scan_id"])
        assert audited and all(v.verdict == "clear" for v in b.verdicts if v.scan_id in audited)
        work = [i for i, v in enumerate(b.verdicts) if v.verdict != "clear" or v.scan_id in audited]
        done = work[: len(work) // 2]
        for i in done:
            monitor_seed.decide(client, b.verdicts[i].scan_id, threats[i], now - timedelta(minutes=5))
        for side in (store, client):
            df = side.miss_evidence(**window)
            assert list(df["scan_id"]) == [v.scan_id for v in b.verdicts]  # scoring order, canaries left out
            assert list(df["flagged"]) == [v.verdict != "clear" for v in b.verdicts]
            pis = [0.3 if v.scan_id in audited else None for v in b.verdicts]
            assert [None if np.isnan(x) else x for x in df["inclusion"]] == pis
            assert list(df.index[df["pending"]]) == work[len(work) // 2:]
            assert list(df["threat"]) == [i in done and threats[i] for i in range(80)]
        store.add_user("olga", "correct horse battery staple 42", "officer")
        olga = client.as_user(client.login("olga", "correct horse battery staple 42").token)
        with pytest.raises(PermissionDenied, match="may not read ground truth"):
            olga.miss_evidence(**window)
