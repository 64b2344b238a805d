"""Pixels have an owner: the store says where each scan's image is at every moment (filed in the archive, kept as
an upload, moved, expired under retention), on a real store fed by the real ingest and housekeeping."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from serving.housekeeping import expire_archive
from serving.ingest import Ingest
from store.engine import Store
from tests.serving_fakes import STATS, FakeScorer, fake_reader, png_bytes
from xscreen.records import ImageMove, IngestBatch


def ingest_into(store: Store, home: Path, **kw: object) -> Ingest:
    """The real ingest pipeline writing straight into `store` (scores from the fake scorer: no model needed)."""

    def spool_write(batch: IngestBatch) -> Path:
        store.ingest(batch)
        return home / "spool" / f"{batch.batch_id}.batch"

    (home / "inbox" / "scanner-a").mkdir(parents=True, exist_ok=True)
    return Ingest(inbox=home / "inbox", quarantine_dir=home / "quarantine", score=FakeScorer(),
                  spool_write=spool_write, reader=fake_reader, stats=lambda im: STATS, suffixes=[".png"],
                  max_bytes=200_000, max_pixels=10_000, truncated_wait_s=0.0, record_moves=store.move_images,
                  **kw)  # type: ignore[arg-type]


def test_an_archived_scan_is_found_in_the_archive_then_reads_expired(store: Store, tmp_path: Path) -> None:
    ingest = ingest_into(store, tmp_path, archive_dir=tmp_path / "archive")
    path = tmp_path / "inbox" / "scanner-a" / "a.png"
    path.write_bytes(png_bytes(10))
    (scan_id,) = ingest([path]).scored
    image = store.get_scan(scan_id)["image"]
    assert image["state"] == "kept" and Path(image["path"]).is_file()  # before: the inbox path, now empty
    assert Path(image["path"]).parent.parent.parent == tmp_path / "archive" and not path.exists()
    later = datetime.now(UTC) + timedelta(days=40)
    expire_archive(tmp_path / "archive", 30, later, lambda folder: store.expire_images(str(folder)))
    image = store.get_scan(scan_id)["image"]
    assert image["state"] == "expired" and image["reason"] == "retention" and not Path(image["path"]).exists()
    assert any(a.action == "images_expired" for a in store.audit_log(actor="serving"))


def test_an_upload_keeps_its_image_and_a_move_is_followed(store: Store, tmp_path: Path) -> None:
    ingest = ingest_into(store, tmp_path, uploads_dir=tmp_path / "uploads")
    (scan_id,) = ingest.ingest_bytes(png_bytes(77), name="u.png", scanner_id="scanner-a").scored
    kept = Path(store.get_scan(scan_id)["image"]["path"])
    assert kept.read_bytes() == png_bytes(77) and (tmp_path / "uploads") in kept.parents
    assert store.move_images([ImageMove(scan_id=scan_id, path="/elsewhere/u.png"),
                              ImageMove(scan_id="no-such-scan", path="/x")]) == 1
    assert store.get_scan(scan_id)["image"]["path"] == "/elsewhere/u.png"
    assert store.expire_images(str(tmp_path / "uploads")) == 0  # no longer there: nothing to expire
