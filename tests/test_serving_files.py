"""Files as scanners really leave them: nested folders, odd names, slow in-place writers, orphan temp files.

A real watcher and ingest with the real image reader; the spool is a list. Each test fails on the code before
issue 12 (catch-up one level deep, `..png` skipped without a record, a 1.5 s pause quarantined as truncated
for good, spool temp files never cleaned).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from serving.housekeeping import clean_spool_temp
from serving.ingest import Ingest
from serving.watcher import Watcher
from tests.serving_fakes import STATS, FakeScorer, ListSpool
from tests.serving_procs import noise_png, wait_for
from xray.formats import SUPPORTED_SUFFIXES, read_scan


@pytest.fixture
def rig(tmp_path: Path) -> Iterator[dict[str, Any]]:
    inbox, spool = tmp_path / "inbox", ListSpool(tmp_path)
    inbox.mkdir()
    ingest = Ingest(inbox=inbox, quarantine_dir=tmp_path / "quarantine", score=FakeScorer(), spool_write=spool,
                    reader=read_scan, stats=lambda im: STATS, suffixes=SUPPORTED_SUFFIXES, max_bytes=10**7,
                    truncated_wait_s=3.0)
    yield {"inbox": inbox, "spool": spool, "ingest": ingest, "tmp": tmp_path}


def _watch(rig: dict[str, Any], **kw: Any) -> Watcher:
    options: dict[str, Any] = {"size_stable_s": 0.3, "retry_base_s": 0.2, "retry_max_s": 0.5}
    options.update(kw)
    return Watcher(rig["inbox"], rig["ingest"], **options)


def scored_names(spool: ListSpool) -> set[str]:
    return {Path(s.source_path).name for b in spool.batches for s in b.scans}


def reasons(spool: ListSpool) -> dict[str, str]:
    return {Path(q.source_path).name: q.reason_code for b in spool.batches for q in b.quarantines}


def test_start_up_catch_up_covers_nested_folders_like_the_live_watcher(rig: dict[str, Any]) -> None:
    inbox = rig["inbox"]
    for rel, seed in (("a/x.png", 1), ("a/2026/01/y.png", 2), ("b/day/z.png", 3), ("a/.staging/hidden.png", 4)):
        (inbox / rel).parent.mkdir(parents=True, exist_ok=True)
        (inbox / rel).write_bytes(noise_png(seed))
    with _watch(rig):  # files dropped while down: the catch-up finds them at any depth
        assert wait_for(lambda: scored_names(rig["spool"]) == {"x.png", "y.png", "z.png"}, 10)
        (inbox / "b" / "day" / "late").mkdir()
        tmp = inbox / "b" / "day" / "late" / ".w.tmp"
        tmp.write_bytes(noise_png(5))
        os.replace(tmp, tmp.with_name("w.png"))  # live, nested: the same rule
        assert wait_for(lambda: "w.png" in scored_names(rig["spool"]), 10)
    assert "hidden.png" not in scored_names(rig["spool"])  # hidden folders are staging areas, never scored
    scanners = {s.scanner_id for b in rig["spool"].batches for s in b.scans}
    assert scanners == {"a", "b"}


def test_hidden_and_temporary_names_left_behind_are_recorded_not_silently_skipped(rig: dict[str, Any]) -> None:
    inbox = rig["inbox"] / "a"
    inbox.mkdir()
    old = inbox / "..png"
    old.write_bytes(noise_png(1))
    os.utime(old, (time.time() - 120, time.time() - 120))  # lying there before the start
    with _watch(rig, ignored_after_s=0.5):
        (inbox / "abandoned.png.part").write_bytes(noise_png(2))  # appears while running, never renamed
        (inbox / ".x.tmp").write_bytes(noise_png(3))
        os.replace(inbox / ".x.tmp", inbox / "x.png")  # a normal atomic drop: its temp name is never recorded
        assert wait_for(lambda: {"..png", "abandoned.png.part"} <= set(reasons(rig["spool"])), 10)
    found = reasons(rig["spool"])
    assert found["..png"] == "ignored_name" and found["abandoned.png.part"] == "ignored_name"
    assert ".x.tmp" not in found and "x.png" in scored_names(rig["spool"])
    assert not old.exists() and (rig["tmp"] / "quarantine" / "a" / "..png").exists()


def test_a_scanner_that_writes_in_place_and_pauses_is_waited_for_not_quarantined(rig: dict[str, Any]) -> None:
    data = noise_png(7, size=200)
    (rig["inbox"] / "a").mkdir()
    with _watch(rig), open(rig["inbox"] / "a" / "slow.png", "wb") as fh:
        fh.write(data[: len(data) // 2])
        fh.flush()
        time.sleep(1.5)  # longer than the size-stable rule: the watcher hands it on half-written
        fh.write(data[len(data) // 2:])
        fh.flush()
        fh.close()
        assert wait_for(lambda: "slow.png" in scored_names(rig["spool"]), 10)
    assert "slow.png" not in reasons(rig["spool"])


def test_a_quarantined_file_that_later_decodes_is_rescored(rig: dict[str, Any]) -> None:
    data = noise_png(8, size=200)
    rig["ingest"]._truncated_wait_s = 0.3  # the writer stays quiet longer than the wait: quarantined
    (rig["inbox"] / "a").mkdir()
    with _watch(rig):
        with open(rig["inbox"] / "a" / "late.png", "wb") as fh:
            fh.write(data[:500])
            fh.flush()
            assert wait_for(lambda: reasons(rig["spool"]).get("late.png") == "truncated", 10)
            fh.write(data[500:])  # the writer's descriptor follows the file into quarantine
        assert wait_for(lambda: rig["ingest"].rechecks.run() != [] or "late.png" in scored_names(rig["spool"]), 10)
        assert wait_for(lambda: "late.png" in scored_names(rig["spool"]), 10)


def test_orphan_spool_temp_files_are_cleaned_on_start(tmp_path: Path) -> None:
    tmp_dir = tmp_path / ".tmp"
    tmp_dir.mkdir()
    orphan, fresh = tmp_dir / "a.batch.1.2.tmp", tmp_dir / "b.batch.1.3.tmp"
    orphan.write_bytes(b"half a batch")
    fresh.write_bytes(b"being written now")
    os.utime(orphan, (time.time() - 3600, time.time() - 3600))
    assert clean_spool_temp(tmp_path) == 1
    assert not orphan.exists() and fresh.exists()  # a writer may still own a young one
