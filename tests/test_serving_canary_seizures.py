"""Known-answer canaries from real seizures (issue 14 item 1, issue 16 item 6) on the real ingest path: seizure
regions recorded in a real store, their signatures cut and saved as `xscreen` does, real sample scans read, scored
by a real tiny model, canaries recorded by the store. Only the library's canary part is ever drawn; a colour map
goes only into its own scanner's scans; a missing or unreadable signature is skipped and the mail goes on."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from serving.canaries import CanaryFeed, project_seizure
from serving.canary_seizures import CanarySeizure, SeizureCanaries
from serving.ingest import Ingest
from store.engine import Store
from store.spool import SpoolIngester, SpoolWriter
from tests.conftest import make_settings
from tests.seeding import make_batch
from tests.test_seizures import _colour_scan, _decide, _raw_scan
from tests.test_serving_canaries import SAMPLES, RecordingScorer, drop
from xray.formats import read_scan
from xray.seizures import cut_seizure, save_seizure, seizure_part, seizures_dir
from xray.writers import encode_png
from xscreen.records import ScanRecord, SeizureRecord
from xscreen.settings import DEFAULT_CLASSES, Settings

# Seeded scans (tests.seeding: scanner a, b, c in turn; odd ones kept raw dual-energy data) by library part
COLOUR_CANARY, RAW_CANARY, COLOUR_CERT, RAW_CERT, COLOUR_TRAIN, RAW_TRAIN = 16, 7, 4, 13, 10, 1  # all scanner-b


def _seizures(store: Store, settings: Settings, now: datetime, tmp_path: Path,
              indices: list[int], *, save: bool = True) -> dict[int, SeizureRecord]:
    """Seed scans 0-16, record a knife seizure region on each of `indices` (confirmed first) and, with `save`,
    cut its signature from a test scan of its kind (colour: a 30x20 blue item; raw: log-attenuation) and save it
    where serving reads it."""
    scans: list[ScanRecord] = make_batch(np.random.default_rng(0), 0, 17, now, DEFAULT_CLASSES).scans
    store.ingest(make_batch(np.random.default_rng(0), 0, 17, now, DEFAULT_CLASSES))
    out = {}
    for i in indices:
        _decide(store, scans[i].scan_id, f"d{i}", now)
        rec = store.record_seizure(f"5e12{i:04d}", scans[i].scan_id, f"d{i}", "knife", [35, 25, 75, 55], "ann")
        source = _raw_scan(tmp_path / f"r{i}.npz") if rec.kind == "attenuation" else _colour_scan(tmp_path / f"c{i}.png")
        if save:
            save_seizure(cut_seizure(read_scan(source), rec), seizures_dir(settings.library_dir), rec.seizure_id)
        out[i] = rec
    return out


def _canaries(settings: Settings, store: Store, feed: CanaryFeed, now: datetime,
              batches: list[list[Path]]) -> pd.DataFrame:
    """Run each batch of mail through the real ingest with `feed`, then the store's canary outcomes."""
    ingest = Ingest.from_settings(settings, score=feed.scorer, spool_write=SpoolWriter(settings.spool_dir).write,
                                  canaries=feed)
    for paths in batches:
        assert len(ingest(paths).scored) == len(paths)  # the mail itself is always scored
    SpoolIngester(settings.spool_dir, store.ingest).drain()
    return store.canary_outcomes(start=now - timedelta(hours=1), end=now + timedelta(hours=1))


def _feed(settings: Settings, store: Store, now: datetime, seizures: SeizureCanaries, seed: int) -> CanaryFeed:
    return CanaryFeed(rate=1.0, classes=settings.model.classes, score=RecordingScorer(settings.model.classes),
                      record=store.record_canaries, rng=np.random.default_rng(seed), clock=lambda: now,
                      seizures=seizures, seizure_share=1.0)


def _pngs(n: int, skip: int = 0) -> list[Path]:
    return sorted((SAMPLES / "baseline_png").glob("*.png"))[skip:skip + n]


def _npzs(n: int) -> list[Path]:
    return sorted((SAMPLES / "baseline_npz").glob("*.npz"))[:n]


def test_a_colour_seizure_of_the_canary_part_goes_into_its_own_scanners_scans_only_and_no_other_part_is_drawn(
        tmp_path: Path, now: datetime) -> None:
    settings = make_settings(tmp_path / "home")
    parts = [COLOUR_CANARY, COLOUR_CERT, RAW_CERT, COLOUR_TRAIN, RAW_TRAIN]
    with Store.from_settings(settings, clock=lambda: now) as store:
        recs = _seizures(store, settings, now, tmp_path, parts)
        assert [seizure_part(recs[i].scan_id) for i in parts] == ["canary", "certification", "certification",
                                                                  "training", "training"]
        pool = SeizureCanaries(store.list_seizures, seizures_dir(settings.library_dir), refresh_s=600)
        feed = _feed(settings, store, now, pool, seed=2)
        own = drop(settings.inbox_dir, "scanner-b", _pngs(3))  # scanner-b: the colour seizure's own scanner
        other = drop(settings.inbox_dir, "scanner-c", _pngs(3, skip=3))  # another pseudo-colour scanner
        raw_own = drop(settings.inbox_dir, "scanner-b", _npzs(2))  # its own scanner, but raw dual-energy scans
        frame = _canaries(settings, store, feed, now, [own + other + raw_own])
    seized = f"seizure:{recs[COLOUR_CANARY].seizure_id}"
    articles = frame.groupby("scanner_id")["article"].apply(sorted).to_dict()
    rendered = frame["article"].str.split(":").str[0].isin(DEFAULT_CLASSES)
    assert len(frame) == 8 and feed.failures == 0
    # scanner-b: its 3 pseudo-colour scans all carry the colour seizure (share 1); its 2 raw scans never do
    assert articles["scanner-b"].count(seized) == 3 and rendered[frame["scanner_id"] == "scanner-b"].sum() == 2
    assert rendered[frame["scanner_id"] == "scanner-c"].all()  # another scanner: never a colour map not its own
    assert rendered.sum() + articles["scanner-b"].count(seized) == 8  # certification/training parts: never drawn
    assert (frame.loc[frame["article"] == seized, "class_name"] == "knife").all()
    images = feed.scorer.calls  # type: ignore[attr-defined]
    for mail, canary in zip(images[0][:3], images[1][:3], strict=True):  # the seized item really went in
        assert mail.rgb8.shape == canary.rgb8.shape and (mail.rgb8 != canary.rgb8).any()


def test_a_raw_seizure_of_the_canary_part_goes_into_any_scanners_scans(tmp_path: Path, now: datetime) -> None:
    settings = make_settings(tmp_path / "home")
    with Store.from_settings(settings, clock=lambda: now) as store:
        recs = _seizures(store, settings, now, tmp_path, [RAW_CANARY, RAW_TRAIN])
        pool = SeizureCanaries(store.list_seizures, seizures_dir(settings.library_dir), refresh_s=600)
        feed = _feed(settings, store, now, pool, seed=4)
        paths = drop(settings.inbox_dir, "scanner-c", _pngs(2)) + drop(settings.inbox_dir, "scanner-d", _npzs(2))
        frame = _canaries(settings, store, feed, now, [paths])
    assert list(frame["article"]) == [f"seizure:{recs[RAW_CANARY].seizure_id}"] * 4 and feed.failures == 0
    assert set(frame["scanner_id"]) == {"scanner-c", "scanner-d"}


def test_a_missing_or_unreadable_signature_is_skipped_the_mail_goes_on_and_the_store_is_read_once_per_refresh(
        tmp_path: Path, now: datetime, caplog: pytest.LogCaptureFixture) -> None:
    settings = make_settings(tmp_path / "home")
    clock = [0.0]
    reads: list[int] = []
    with Store.from_settings(settings, clock=lambda: now) as store:
        recs = _seizures(store, settings, now, tmp_path, [COLOUR_CANARY, 2], save=False)  # 2: scanner-c, canary
        folder = seizures_dir(settings.library_dir)
        folder.mkdir(parents=True)
        (folder / f"{recs[2].seizure_id}.npz").write_bytes(b"PK\x03\x04 not a signature")

        def list_seizures() -> list[SeizureRecord]:
            reads.append(1)
            return store.list_seizures()

        pool = SeizureCanaries(list_seizures, folder, refresh_s=600, clock=lambda: clock[0])
        feed = _feed(settings, store, now, pool, seed=6)
        with caplog.at_level(logging.WARNING, logger="serving.canary_seizures"):
            first = _canaries(settings, store, feed, now, [drop(settings.inbox_dir, "scanner-b", _pngs(2)),
                                                           drop(settings.inbox_dir, "scanner-c", _pngs(2, skip=2))])
        assert len(first) == 4 and feed.failures == 0 and len(reads) == 1  # two batches, one store read
        assert not first["article"].str.startswith("seizure:").any()  # nothing usable: rendered canaries
        logged = " ".join(r.getMessage() for r in caplog.records)
        assert f"{recs[COLOUR_CANARY].seizure_id}: no signature" in logged
        assert f"{recs[2].seizure_id}: unreadable signature" in logged
        entry = cut_seizure(read_scan(_colour_scan(tmp_path / "late.png")), recs[COLOUR_CANARY])
        save_seizure(entry, folder, recs[COLOUR_CANARY].seizure_id)  # its file arrives late
        clock[0] = 601.0  # the next refresh is due: the late file is loaded, the unreadable one still skipped
        later = _canaries(settings, store, feed, now, [drop(settings.inbox_dir, "scanner-b", _pngs(2, skip=4))])
    assert len(reads) == 2 and feed.failures == 0
    assert set(later["article"]) - set(first["article"]) == {f"seizure:{recs[COLOUR_CANARY].seizure_id}"}


def test_a_colour_map_larger_than_the_scan_is_reduced_to_fit(tmp_path: Path, now: datetime) -> None:
    big = np.full((300, 400, 3), 230, np.uint8)
    big[50:250, 50:350] = (46, 92, 184)  # a seized item larger than the scan it will be projected into
    (tmp_path / "big.png").write_bytes(encode_png(big))
    rec = SeizureRecord(seizure_id="abcd0001", scan_id="s", scanner_id="scanner-b", decision_id="d",
                        class_name="knife", box=[40, 40, 360, 260], kind="transmission", officer="ann",
                        created_at=now)
    entry = cut_seizure(read_scan(tmp_path / "big.png"), rec)
    scan = read_scan(_pngs(1)[0])
    assert entry.shape[1] > scan.width or entry.shape[0] > scan.height
    out = project_seizure(scan, CanarySeizure(rec, entry), np.random.default_rng(0))
    assert out.article == "seizure:abcd0001" and out.image.rgb8.shape == scan.rgb8.shape
    assert (out.image.rgb8 != scan.rgb8).any()
