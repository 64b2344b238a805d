"""The ingest pipeline: good files scored once in one call, bad files quarantined with reasons, batches spooled."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from serving.ingest import Ingest
from tests.serving_fakes import STATS, FakeScorer, ListSpool, fake_reader, png_bytes


@pytest.fixture
def home(tmp_path: Path) -> Path:
    for name in ("inbox/scanner-a", "quarantine", "spool", "archive"):
        (tmp_path / name).mkdir(parents=True)
    return tmp_path


def make_ingest(home: Path, scorer: FakeScorer, spool: ListSpool, **kw: Any) -> Ingest:
    defaults: dict[str, Any] = dict(
        inbox=home / "inbox", quarantine_dir=home / "quarantine", score=scorer, spool_write=spool,
        reader=fake_reader, stats=lambda im: STATS, suffixes=[".png", ".tif"], max_bytes=200_000,
        max_pixels=10_000, truncated_wait_s=0.0,
    )
    defaults.update(kw)
    return Ingest(**defaults)


def put(home: Path, name: str, data: bytes, scanner: str = "scanner-a", sidecar: dict | None = None) -> Path:
    folder = home / "inbox" / scanner
    folder.mkdir(parents=True, exist_ok=True)
    if sidecar is not None:
        (folder / (Path(name).stem + ".json")).write_text(json.dumps(sidecar))
    (folder / name).write_bytes(data)
    return folder / name


def test_good_files_are_scored_in_one_call_and_spooled_with_sidecar_metadata(home: Path) -> None:
    scorer, spool = FakeScorer(), ListSpool(home / "spool")
    ingest = make_ingest(home, scorer, spool)
    side = {"item_id": "RR123456789CH", "scanner_id": "scanner-a", "scanned_at": "2026-01-01T10:00:00+00:00",
            "declared_contents": [{"description": "book", "quantity": 1}]}
    paths = [put(home, "a.png", png_bytes(10), sidecar=side), put(home, "b.png", png_bytes(200))]
    report = ingest(paths)
    assert scorer.calls == [2]
    assert len(report.scored) == 2 and not report.quarantined
    (batch,) = spool.batches
    assert [s.scanner_id for s in batch.scans] == ["scanner-a", "scanner-a"]
    assert batch.scans[0].item_id == "RR123456789CH"
    assert batch.scans[0].declared_contents == [{"description": "book", "quantity": 1}]
    assert batch.scans[0].stats.metal_fraction == 0.1
    assert [v.verdict for v in batch.verdicts] == ["clear", "inspect"]
    assert all(v.role == "champion" and v.latency_ms is not None for v in batch.verdicts)
    assert paths[0].exists()  # left in place when archiving is off


def test_re_delivered_file_is_not_scored_twice(home: Path) -> None:
    scorer, spool = FakeScorer(), ListSpool(home / "spool")
    ingest = make_ingest(home, scorer, spool)
    ingest([put(home, "a.png", png_bytes(10))])
    again = put(home, "a-again.png", png_bytes(10), scanner="scanner-b")  # same content, other name
    report = ingest([again, again])
    assert scorer.calls == [1]
    assert report.duplicates == [again] and not report.scored


def test_content_the_store_already_has_is_skipped(home: Path) -> None:
    scorer, spool = FakeScorer(), ListSpool(home / "spool")
    seen: list[list[str]] = []

    def known(hashes: list[str]) -> set[str]:
        seen.append(hashes)
        return set(hashes[:1])

    ingest = make_ingest(home, scorer, spool, known_hashes=known)
    report = ingest([put(home, "a.png", png_bytes(1)), put(home, "b.png", png_bytes(2))])
    assert len(seen[0]) == 2
    assert scorer.calls == [1] and len(report.scored) == 1 and len(report.duplicates) == 1


@pytest.mark.parametrize(
    ("name", "data", "code"),
    [
        ("zero.png", b"", "zero_byte"),
        ("text.png", b"hello, this is not an image at all", "not_image"),
        ("trunc.png", png_bytes(50, 64)[:60], "not_image"),
        ("notes.txt", b"a text file", "unsupported_format"),
        ("giant.png", png_bytes(50, 128), "too_many_pixels"),
        ("huge.png", b"\x89PNG" + b"0" * 300_000, "too_large"),
    ],
)
def test_bad_files_are_quarantined_with_a_reason(home: Path, name: str, data: bytes, code: str) -> None:
    scorer, spool = FakeScorer(), ListSpool(home / "spool")
    ingest = make_ingest(home, scorer, spool)
    bad = put(home, name, data, sidecar={"item_id": "X1"})
    good = put(home, "good.png", png_bytes(99))
    report = ingest([bad, good])
    assert [q.reason_code for q in report.quarantined] == [code]
    q = report.quarantined[0]
    assert q.reason and q.scanner_id == "scanner-a" and q.source_path == str(bad)
    assert not bad.exists() and Path(q.quarantined_path or "").is_file()
    assert (home / "quarantine" / "scanner-a" / (Path(name).stem + ".json")).is_file()  # sidecar moved along
    assert len(report.scored) == 1  # the stream goes on
    assert spool.batches[0].quarantines == report.quarantined


def test_symlink_pointing_outside_the_scanner_root_is_quarantined_not_read(home: Path, tmp_path: Path) -> None:
    secret = tmp_path / "secret.png"
    secret.write_bytes(png_bytes(1))
    link = home / "inbox" / "scanner-a" / "link.png"
    link.symlink_to(secret)
    scorer, spool = FakeScorer(), ListSpool(home / "spool")
    report = make_ingest(home, scorer, spool)([link])
    assert [q.reason_code for q in report.quarantined] == ["symlink_escape"]
    assert scorer.calls == [] and secret.exists()
    assert (home / "quarantine" / "scanner-a" / "link.png").is_symlink()  # the link moved, not its target


def test_unknown_scanner_id_is_quarantined(home: Path) -> None:
    scorer, spool = FakeScorer(), ListSpool(home / "spool")
    ingest = make_ingest(home, scorer, spool, scanner_ids=["scanner-a"])
    report = ingest([put(home, "x.png", png_bytes(3), scanner="rogue"), put(home, "y.png", png_bytes(4))])
    assert [(q.reason_code, q.scanner_id) for q in report.quarantined] == [("unknown_scanner", "rogue")]
    assert "rogue" in report.quarantined[0].reason
    assert len(report.scored) == 1


def test_file_at_the_inbox_root_takes_its_scanner_from_the_sidecar(home: Path) -> None:
    scorer, spool = FakeScorer(), ListSpool(home / "spool")
    (home / "inbox" / "loose.json").write_text(json.dumps({"scanner_id": "scanner-z"}))
    (home / "inbox" / "loose.png").write_bytes(png_bytes(5))
    (home / "inbox" / "orphan.png").write_bytes(png_bytes(6))
    report = make_ingest(home, scorer, spool)([home / "inbox" / "loose.png", home / "inbox" / "orphan.png"])
    assert spool.batches[0].scans[0].scanner_id == "scanner-z"
    assert [q.reason_code for q in report.quarantined] == ["unknown_scanner"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode; see the next test")
def test_unreadable_file_is_quarantined(home: Path) -> None:
    path = put(home, "locked.png", png_bytes(7))
    path.chmod(0)
    report = make_ingest(home, FakeScorer(), ListSpool(home / "spool"))([path])
    assert [q.reason_code for q in report.quarantined] == ["unreadable"]


def test_permission_error_while_reading_is_quarantined(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Root ignores file modes, so the permission failure is injected where the file is opened."""
    import builtins

    path = put(home, "locked.png", png_bytes(7))
    real_open = builtins.open

    def deny(file: Any, *a: Any, **k: Any) -> Any:
        if str(file) == str(path):
            raise PermissionError(13, "Permission denied")
        return real_open(file, *a, **k)

    monkeypatch.setattr(builtins, "open", deny)
    report = make_ingest(home, FakeScorer(), ListSpool(home / "spool"))([path])
    assert [q.reason_code for q in report.quarantined] == ["unreadable"]


def test_scoring_failure_leaves_files_retriable_and_the_next_attempt_scores_them(home: Path) -> None:
    spool = ListSpool(home / "spool")
    failing = make_ingest(home, FakeScorer(fail_times=1), spool)  # one attempt per call: the watcher backs off
    path = put(home, "b.png", png_bytes(9))
    report = failing([path])
    assert report.retry == [path] and not report.scored and path.exists()
    assert failing.health.report().status == "degraded" and failing.health.report().scoring_failures == 1
    assert len(failing([path]).scored) == 1  # not mistaken for a duplicate on the next attempt
    assert failing.health.report().status == "ok"


def test_any_known_hash_failure_still_scores_and_is_reported(home: Path) -> None:
    from xscreen.errors import StoreError

    def broken(hashes: list[str]) -> set[str]:
        raise StoreError("ResourceInUseException: cursor busy")  # what the owner's 500 became

    spool = ListSpool(home / "spool")
    ingest = make_ingest(home, FakeScorer(), spool, known_hashes=broken)
    report = ingest([put(home, "a.png", png_bytes(3))])
    assert len(report.scored) == 1 and not report.retry  # the old code let the error escape: batch dropped
    health = ingest.health.report()
    assert health.status == "degraded" and "store owner" in health.reasons[0] and "cursor busy" in health.reasons[0]


def test_shadow_verdicts_are_stored_with_the_shadow_role(home: Path) -> None:
    spool = ListSpool(home / "spool")
    ingest = make_ingest(home, FakeScorer("champ"), spool, shadow_score=FakeScorer("cand"))
    ingest([put(home, "a.png", png_bytes(8))])
    roles = sorted((v.role, v.model_version) for v in spool.batches[0].verdicts)
    assert roles == [("champion", "champ"), ("shadow", "cand")]


def test_processed_files_are_archived_and_the_scan_records_where_the_image_is(home: Path) -> None:
    spool = ListSpool(home / "spool")
    ingest = make_ingest(home, FakeScorer(), spool, archive_dir=home / "archive")
    path = put(home, "a.png", png_bytes(8), sidecar={"item_id": "I"})
    ingest([path])
    assert not path.exists()
    (scan,) = spool.batches[0].scans
    kept = Path(scan.source_path)  # the store is told the archive place, so the app can still show the image
    day = scan.received_at.date().isoformat()
    assert kept == home / "archive" / "scanner-a" / day / f"{scan.scan_id}_a.png" and kept.is_file()
    assert kept.with_name(f"{scan.scan_id}_a.json").is_file()


def test_a_crash_between_spool_and_archive_is_repaired_to_the_same_place(home: Path) -> None:
    spool = ListSpool(home / "spool")
    ingest = make_ingest(home, FakeScorer(), spool, archive_dir=home / "archive")
    path = put(home, "a.png", png_bytes(8))
    ingest._archive = lambda cand: None  # type: ignore[method-assign]  # "crashed" before the move
    ingest([path])
    recorded = Path(spool.batches[0].scans[0].source_path)
    assert path.exists() and not recorded.exists()
    restarted = make_ingest(home, FakeScorer(), spool, archive_dir=home / "archive",
                            known_hashes=lambda hashes: set(hashes))
    report = restarted([path])  # the catch-up after the restart: a duplicate, moved where the store says
    assert report.duplicates == [path] and recorded.is_file() and not path.exists()


def test_archive_day_folders_past_the_retention_are_deleted(tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from serving.housekeeping import expire_archive

    for day in ("2026-01-01", "2026-01-29", "2026-01-30"):  # 30 days before the "now" below: 2026-01-30 12:00
        folder = tmp_path / "scanner-a" / day
        folder.mkdir(parents=True)
        (folder / "x.png").write_bytes(b"x")
    removed = expire_archive(tmp_path, 30, datetime(2026, 3, 1, 12, tzinfo=UTC))
    assert [p.name for p in removed] == ["2026-01-01", "2026-01-29"]  # days wholly older than 30 days
    assert (tmp_path / "scanner-a" / "2026-01-30" / "x.png").exists()
    assert expire_archive(tmp_path, 0, datetime(2030, 1, 1, tzinfo=UTC)) == []  # 0 keeps everything


def test_bad_upload_is_recorded_and_good_upload_scored(home: Path) -> None:
    scorer, spool = FakeScorer(), ListSpool(home / "spool")
    ingest = make_ingest(home, scorer, spool)
    bad = ingest.ingest_bytes(b"nope", name="u.png", scanner_id="scanner-a")
    assert [q.reason_code for q in bad.quarantined] == ["not_image"]
    big = ingest.ingest_bytes(b"0" * 300_000, name="u.png", scanner_id="scanner-a")
    assert [q.reason_code for q in big.quarantined] == ["too_large"] and big.quarantined[0].quarantined_path is None
    good = ingest.ingest_bytes(png_bytes(42), name="u.png", scanner_id="scanner-a", item_id="IT1")
    assert len(good.scored) == 1 and good.scans[0].file_format == "upload" and good.scans[0].item_id == "IT1"


def _png_ihdr_only(width: int, height: int, depth: int, colour: int) -> bytes:
    """A PNG signature + IHDR chunk (valid CRC) and nothing else: what a header-lying or cut file starts with."""
    import struct
    import zlib

    body = b"IHDR" + struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + body + struct.pack(">I", zlib.crc32(body))


def _noise_png() -> bytes:
    import io

    import numpy as np
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


@pytest.mark.parametrize(
    ("name", "data", "code"),
    [
        ("zero.png", b"", "zero_byte"),
        ("text.png", b"hello, this is not an image at all" * 4, "not_image"),
        ("cut.png", _noise_png()[:1500], "truncated"),
        ("rgb16.png", _png_ihdr_only(64, 64, 16, 2), "bad_bit_depth"),
        ("bomb.png", _png_ihdr_only(100_000, 100_000, 8, 2), "too_large"),
    ],
)
def test_real_reader_refusals_are_quarantined_with_its_reason_codes(home: Path, name: str, data: bytes,
                                                                   code: str) -> None:
    from xray.formats import SUPPORTED_SUFFIXES, image_stats, read_scan

    spool = ListSpool(home / "spool")
    ingest = make_ingest(home, FakeScorer(), spool, reader=read_scan, stats=image_stats,
                         suffixes=SUPPORTED_SUFFIXES, max_pixels=1_000_000)
    report = ingest([put(home, name, data), put(home, "ok.png", png_bytes(120, 32))])
    assert [q.reason_code for q in report.quarantined] == [code], report.quarantined
    assert len(report.scored) == 1
    assert spool.batches[0].scans[0].stats.dynamic_range >= 0
