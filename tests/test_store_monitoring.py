"""Monitoring's records in the store: measurements written once and read back by kind, scanner and window, the
same in-process and over HTTP."""

from __future__ import annotations

from datetime import datetime, timedelta

from store.client import StoreClient
from store.engine import Store
from xscreen.records import MeasurementRecord


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
