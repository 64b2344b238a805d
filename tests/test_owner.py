"""The owner's HTTP face: every StoreAPI method reachable, errors re-raised as the same class, DataFrames typed."""

from __future__ import annotations

from datetime import datetime

import pandas as pd
import pytest

from analytics.api import StoreAPI
from analytics.client import StoreClient, open_store
from analytics.owner import METHODS
from analytics.records import DecisionRecord
from analytics.store import Store
from tests.conftest import OwnerThread
from tests.seeding import seed_store
from xscreen.errors import (
    AuthError,
    ConflictError,
    NotFoundError,
    QueryRefused,
    StoreError,
    StoreUnavailable,
    XscreenError,
)
from xscreen.settings import Settings


def test_store_and_client_both_satisfy_the_contract(store: Store, settings: Settings) -> None:
    client = StoreClient.from_settings(settings)
    assert isinstance(store, StoreAPI) and isinstance(client, StoreAPI)
    assert all(hasattr(StoreClient, m) and hasattr(Store, m) for m in METHODS)
    client.close()


def test_errors_come_back_as_the_same_class_with_message_and_title(owner_client: StoreClient, now: datetime) -> None:
    seeded = seed_store(owner_client, 60, seed=1, now=now)
    with pytest.raises(NotFoundError, match="scan zzz does not exist") as info:
        owner_client.get_scan("zzz")
    assert info.value.title == "Not found"
    owner_client.claim(seeded.flagged[0], "ann")
    with pytest.raises(ConflictError, match="ann"):
        owner_client.claim(seeded.flagged[0], "bob")
    with pytest.raises(AuthError):
        owner_client.authenticate("nobody", "whatever-password")
    with pytest.raises(QueryRefused, match="DELETE"):
        owner_client.sql("DELETE FROM scans")


def test_dataframes_travel_as_arrow_with_types_intact(owner: tuple[StoreClient, Store], now: datetime) -> None:
    client, store = owner
    seed_store(client, 120, seed=2, now=now)
    remote, local = client.queue("ann", limit=20), store.queue("ann", limit=20)
    pd.testing.assert_frame_equal(remote, local)
    assert str(remote["scored_at"].dtype) == "datetime64[us, UTC]"
    counts = client.query("verdict_counts", start=now.replace(day=1), end=now, bucket="day")
    assert counts["n"].sum() == 120  # champion verdicts only


def test_decision_over_http_is_committed_before_the_call_returns(owner: tuple[StoreClient, Store], now: datetime) -> None:
    client, store = owner
    seeded = seed_store(client, 60, seed=3, now=now)
    client.record_decision(DecisionRecord(decision_id="d1", scan_id=seeded.flagged[0], officer="ann",
                                          decision="cleared", decided_at=now))
    assert [d["officer"] for d in store.get_scan(seeded.flagged[0])["decisions"]] == ["ann"]


def test_unknown_method_and_bad_arguments_are_clear_errors(owner_client: StoreClient) -> None:
    with pytest.raises(NotFoundError, match="no store method 'drop_everything'"):
        owner_client._call("drop_everything")
    with pytest.raises(XscreenError, match="queue: bad argument 'colour'") as info:
        owner_client._call("queue", officer="ann", colour="red")
    assert info.value.title == "Bad request"
    with pytest.raises(XscreenError, match="bad argument 'limit'"):
        owner_client._call("queue", officer="ann", limit="many")
    with pytest.raises(XscreenError, match="bad argument 'officer'"):
        owner_client._call("queue")


def test_client_says_store_unavailable_when_no_owner_runs(settings: Settings) -> None:
    with StoreClient.from_settings(settings) as client, pytest.raises(StoreUnavailable, match=str(settings.network.store_port)):
        client.health()


def test_open_store_uses_the_owner_when_up_else_the_file(settings: Settings, now: datetime) -> None:
    with open_store(settings) as direct:
        assert isinstance(direct, Store)
    with Store.from_settings(settings) as store, OwnerThread(store, settings):
        with open_store(settings) as via_owner:
            assert isinstance(via_owner, StoreClient)
            assert via_owner.info()["schema_version"] == store.info()["schema_version"]
        with pytest.raises(StoreError, match="another store owner"):  # the file is locked by the owner
            Store.from_settings(settings)


def test_store_owner_process_serves_and_closes_the_file_on_sigterm(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import os
    import signal
    import subprocess
    import sys
    import time

    from analytics.client import owner_is_up
    from analytics.identity import read_home_id, read_owner_token
    from tests.conftest import free_port

    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("XSCREEN_")}
    env.update(XSCREEN_HOME=str(tmp_path / "home"), XSCREEN_NETWORK__STORE_PORT=str(port), XSCREEN_LOG_LEVEL="WARNING")
    proc = subprocess.Popen([sys.executable, "-m", "xscreen.cli", "store-owner"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not owner_is_up(f"http://127.0.0.1:{port}"):
            assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read() if proc.stderr else ""
            time.sleep(0.1)
        home = tmp_path / "home"
        with StoreClient(f"http://127.0.0.1:{port}", read_owner_token(home), read_home_id(home)) as client:
            client.add_user("ann", "correct-horse-battery", "officer")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 128 + signal.SIGTERM
    finally:
        if proc.poll() is None:
            proc.kill()
    home = tmp_path / "home"
    assert not (home / "xscreen.duckdb.wal").exists()  # closed cleanly: everything checkpointed into the file
    with Store.open(home / "xscreen.duckdb") as store:
        assert [u.username for u in store.list_users()] == ["ann"]


def test_ingest_over_http_is_binary_idempotent_and_refuses_a_bad_body(owner: tuple[StoreClient, Store],
                                                                      now: datetime) -> None:
    import numpy as np

    from analytics.client import INGEST_BINARY
    from tests.seeding import make_batch

    client, store = owner
    batch = make_batch(np.random.default_rng(7), 0, 12, now, ["knife", "firearm"], batch_id="http-1")
    first, again = client.ingest(batch), client.ingest(batch)
    assert (first.new_scans, first.new_verdicts) == (12, 24) and again.duplicate_batch
    stored = store.get_scan(batch.scans[0].scan_id)["verdicts"][0]
    sent = next(v for v in batch.verdicts if v.scan_id == batch.scans[0].scan_id and v.model_version == stored["model_version"])
    assert stored["embedding"] == pytest.approx(sent.embedding, abs=1e-6) and stored["scores"] == pytest.approx(sent.scores)
    with pytest.raises(XscreenError, match="not a binary IngestBatch") as info:
        client._request("POST", "/api/ingest", content=b"garbage", headers={"content-type": INGEST_BINARY})
    assert info.value.title == "Bad request"
