"""The durable spool: atomic idempotent files, oldest-first reading, corrupt files set aside, live ingest."""

from __future__ import annotations

import os
import time
from dataclasses import replace
from datetime import datetime
from pathlib import Path

import numpy as np
import pyarrow as pa

from store.engine import Store
from store.spool import SpoolIngester, SpoolWriter, iter_spool, spool_name
from store.wire import decode, encode, prepare
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
    assert writer.write(batch) == writer.write(batch) == tmp_path / "b-1.batch"
    assert sorted(p.name for p in tmp_path.iterdir()) == [".tmp", "b-1.batch"]
    assert list((tmp_path / ".tmp").iterdir()) == []  # no temp files left behind
    assert [b for _, b in iter_spool(tmp_path)] == [batch]


def test_unsafe_batch_ids_never_become_paths(tmp_path: Path) -> None:
    name = spool_name("../../etc/passwd")
    assert "/" not in name and name.endswith(".batch") and not name.startswith(".")


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
        assert _wait_for(lambda: not (spool / "live.batch").exists())  # deleted only after commit
    finally:
        ingester.stop()
    assert sorted(p.name for p in spool.iterdir()) == [".tmp", "bad"]


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


def test_json_spool_files_left_by_an_older_version_are_still_ingested(store: Store, tmp_path: Path,
                                                                      now: datetime) -> None:
    spool = tmp_path / "spool"
    spool.mkdir()
    old = _batch(now, 0, batch_id="from-before-the-upgrade")
    (spool / "from-before-the-upgrade.json").write_text(old.model_dump_json())  # what earlier versions wrote
    SpoolWriter(spool).write(_batch(now, 100, batch_id="new-format"))
    ingester = SpoolIngester(spool, store.ingest)
    assert ingester.drain() == 2
    ingester.stop()
    assert store.info()["rows"]["scans"] == 10 and store.info()["rows"]["verdicts"] == 20
    assert sorted(p.name for p in spool.iterdir()) == [".tmp"]  # only the writer's (empty) temp folder
    assert {v["model_version"] for v in store.get_scan(old.scans[0].scan_id)["verdicts"]} == {
        v.model_version for v in old.verdicts if v.scan_id == old.scans[0].scan_id}


def test_binary_spool_file_reads_back_as_the_same_records(tmp_path: Path, now: datetime) -> None:
    from xscreen.records import QuarantineRecord

    batch = _batch(now, 0, batch_id="rt")
    quarantine = QuarantineRecord(quarantine_id="q1", sha256=None, scanner_id="s", source_path="inbox/x.png",
                                  quarantined_path=None, reason_code="zero_byte", reason="empty", quarantined_at=now)
    batch = batch.model_copy(update={"quarantines": [quarantine]})
    SpoolWriter(tmp_path).write(batch)
    assert [b for _, b in iter_spool(tmp_path)] == [batch]  # embeddings, scores, heatmaps, boxes exact


def test_truncated_or_tampered_binary_file_goes_to_bad(tmp_path: Path, now: datetime) -> None:
    writer = SpoolWriter(tmp_path)
    data = writer.write(_batch(now, 0, batch_id="cut")).read_bytes()
    (tmp_path / "cut.batch").write_bytes(data[: len(data) // 2])
    good = prepare(_batch(now, 10, batch_id="odd"))
    bad_threat = good.verdicts.set_column(5, "any_threat", pa.array([1.5] * good.verdicts.num_rows))
    (tmp_path / "odd.batch").write_bytes(encode(replace(good, verdicts=bad_threat)))
    assert list(iter_spool(tmp_path)) == []
    assert sorted(p.name for p in (tmp_path / "bad").iterdir()) == ["cut.batch", "cut.batch.reason", "odd.batch",
                                                                     "odd.batch.reason"]
    assert "any_threat" in (tmp_path / "bad" / "odd.batch.reason").read_text()
    assert decode(encode(good)).verdicts.equals(good.verdicts)


def test_temp_files_are_renamed_in_from_outside_the_watched_folder(tmp_path: Path, now: datetime) -> None:
    # A rename inside the watched folder makes an IN_MOVED_FROM that watchdog may hold for 0.5 s, stalling every
    # later event (docs/BENCHMARKS.md Serving); from .tmp/ only IN_MOVED_TO reaches the owner's watch.
    writer = SpoolWriter(tmp_path)
    seen: list[Path] = []
    real_replace = os.replace

    def spy(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
        seen.append(Path(src).parent)
        real_replace(src, dst)

    import store.spool as spool_module

    spool_module.os.replace = spy  # type: ignore[assignment]
    try:
        writer.write(_batch(now, 0, batch_id="moved-in"))
    finally:
        spool_module.os.replace = real_replace  # type: ignore[assignment]
    assert seen == [tmp_path / ".tmp"]
