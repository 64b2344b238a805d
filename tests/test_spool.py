"""The durable spool: atomic idempotent files, oldest-first reading, corrupt files set aside, live ingest."""

from __future__ import annotations

import os
import time
from datetime import datetime
from pathlib import Path

import numpy as np

from analytics.spool import SpoolIngester, SpoolWriter, iter_spool, spool_name
from analytics.store import Store
from tests.seeding import make_batch


def _batch(now: datetime, start: int, n: int = 5, batch_id: str | None = None):  # type: ignore[no-untyped-def]
    return make_batch(np.random.default_rng(start), start, n, now, ["knife"], batch_id=batch_id)


def _wait_for(predicate, timeout: float = 10.0) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.01)
    return False


def test_writing_the_same_batch_twice_leaves_one_complete_file(tmp_path: Path, now: datetime) -> None:
    writer = SpoolWriter(tmp_path)
    batch = _batch(now, 0, batch_id="b-1")
    assert writer.write(batch) == writer.write(batch) == tmp_path / "b-1.json"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b-1.json"]  # no temp names left behind
    assert [b for _, b in iter_spool(tmp_path)] == [batch]


def test_unsafe_batch_ids_never_become_paths(tmp_path: Path) -> None:
    name = spool_name("../../etc/passwd")
    assert "/" not in name and name.endswith(".json") and not name.startswith(".")


def test_iter_spool_is_oldest_first_and_skips_temp_names(tmp_path: Path, now: datetime) -> None:
    writer = SpoolWriter(tmp_path)
    for i, bid in enumerate(["c", "a", "b"]):
        path = writer.write(_batch(now, i * 10, batch_id=bid))
        os.utime(path, ns=(1_000_000_000 * (i + 1), 1_000_000_000 * (i + 1)))
    (tmp_path / ".half-written.json.tmp").write_text("{")
    assert [b.batch_id for _, b in iter_spool(tmp_path)] == ["c", "a", "b"]


def test_corrupt_spool_file_is_moved_to_bad_with_its_reason(tmp_path: Path, now: datetime) -> None:
    SpoolWriter(tmp_path).write(_batch(now, 0, batch_id="good"))
    (tmp_path / "broken.json").write_text('{"batch_id": "x", "verdicts": [{"scan_id": 1}]}')
    assert [b.batch_id for _, b in iter_spool(tmp_path)] == ["good"]
    assert (tmp_path / "bad" / "broken.json").exists()
    assert "not a valid IngestBatch" in (tmp_path / "bad" / "broken.json.reason").read_text()


def test_owner_ingests_waiting_files_on_start_then_new_ones_live(store: Store, tmp_path: Path, now: datetime) -> None:
    spool = tmp_path / "spool"
    writer = SpoolWriter(spool)
    writer.write(_batch(now, 0, batch_id="before-start"))
    (spool / "garbage.json").write_bytes(b"\x00\x01 not json")
    ingester = SpoolIngester(spool, store.ingest, sweep_s=0.2)
    ingester.start()
    try:
        assert store.info()["rows"]["scans"] == 5  # drained before start() returned
        writer.write(_batch(now, 100, batch_id="live"))
        assert _wait_for(lambda: store.info()["rows"]["scans"] == 10)
        assert _wait_for(lambda: not (spool / "live.json").exists())  # deleted only after commit
    finally:
        ingester.stop()
    assert sorted(p.name for p in spool.iterdir()) == ["bad"]


def test_the_same_spool_file_delivered_twice_is_stored_once(store: Store, tmp_path: Path, now: datetime) -> None:
    spool = tmp_path / "spool"
    writer = SpoolWriter(spool)
    batch = _batch(now, 0, batch_id="twice")
    ingester = SpoolIngester(spool, store.ingest, sweep_s=0.2)
    writer.write(batch)
    assert ingester.drain() == 1
    writer.write(batch)  # re-delivered after the first copy was ingested and deleted
    assert ingester.drain() == 1
    ingester.stop()
    assert store.info()["rows"]["scans"] == 5 and store.info()["rows"]["verdicts"] == 10


def test_file_stays_in_the_spool_while_the_store_refuses_it(tmp_path: Path, now: datetime) -> None:
    from xscreen.errors import StoreUnavailable

    def down(batch: object) -> None:
        raise StoreUnavailable("owner restarting")

    spool = tmp_path / "spool"
    path = SpoolWriter(spool).write(_batch(now, 0, batch_id="kept"))
    ingester = SpoolIngester(spool, down)
    assert ingester.drain() == 0
    ingester.stop()
    assert path.exists()
