"""Known-answer canaries on the real ingest path: real files (dual-energy NPZ and pseudo-colour PNG) read by the
real reader, scored by a real tiny model, spooled and ingested by a real store; the canaries are projected into
cleared scans, scored by the same model, recorded apart from mail, and never become scans, verdicts or queue items."""

from __future__ import annotations

import shutil
import threading
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from analytics.monitoring.canary import canary_detection
from analytics.triage import class_heat, overlay_default
from screening.classifier import Classifier, verdict_fields
from screening.registry import build_model
from serving.canaries import BackgroundCanaries, CanaryFeed
from serving.ingest import Ingest
from store.engine import Store
from store.spool import SpoolIngester, SpoolWriter
from tests.conftest import make_settings
from tests.serving_fakes import tiny_model
from xray.canary import project_canary
from xray.formats import read_scan

SAMPLES = Path(__file__).resolve().parents[1] / "sample_data"


class RecordingScorer:
    """The real tiny classifier, remembering each call's images (to see what the canaries looked like)."""

    def __init__(self, classes: list[str]) -> None:
        ckpt = tiny_model(classes, "tiny-canary")
        everything_clears = {c: {"clear": 0.999, "inspect": 0.9999} for c in ckpt.thresholds}
        ckpt = replace(ckpt, thresholds=everything_clears)  # an untrained model scores ~0.5: make it clear all
        self.classifier = Classifier(build_model(ckpt), ckpt, heatmap_size=8)
        self.calls: list[list[Any]] = []

    def __call__(self, images: list[Any]) -> list[dict[str, Any]]:
        self.calls.append(list(images))
        return [verdict_fields(p) for p in self.classifier.predict(images)]


def drop(inbox: Path, scanner: str, sources: list[Path]) -> list[Path]:
    folder = inbox / scanner
    folder.mkdir(parents=True, exist_ok=True)
    return [Path(shutil.copy(src, folder / src.name)) for src in sources]


def test_canaries_are_projected_into_cleared_scans_scored_and_kept_out_of_mail(tmp_path: Path, now: datetime) -> None:
    settings = make_settings(tmp_path / "home")
    classes = settings.model.classes
    scorer = RecordingScorer(classes)
    with Store.from_settings(settings, clock=lambda: now) as store:
        feed = CanaryFeed(rate=1.0, classes=classes, score=scorer, record=store.record_canaries,
                          rng=np.random.default_rng(5), clock=lambda: now)
        ingest = Ingest.from_settings(settings, score=scorer, spool_write=SpoolWriter(settings.spool_dir).write,
                                      canaries=feed)
        paths = drop(settings.inbox_dir, "scanner-de", sorted((SAMPLES / "baseline_npz").glob("*.npz"))[:3])
        paths += drop(settings.inbox_dir, "scanner-pc", sorted((SAMPLES / "baseline_png").glob("*.png"))[:3])
        report = ingest(paths)
        assert len(report.scored) == 6 and not report.quarantined
        SpoolIngester(settings.spool_dir, store.ingest).drain()
        frame = store.canary_outcomes(start=now - timedelta(hours=1), end=now + timedelta(hours=1))
        with store.reader() as cur:
            n_scans, n_verdicts, n_queued = (cur.execute(f"SELECT count(*) FROM {t}").fetchone()[0]  # type: ignore[index]
                                             for t in ("scans", "verdicts", "queue_pending"))
    assert (n_scans, n_verdicts, n_queued) == (6, 6, 0)  # canaries are not mail
    assert len(scorer.calls) == 2 and len(scorer.calls[1]) == 6  # one call for the mail, one for its canaries
    assert sorted(frame["source_scan_id"]) == sorted(report.scored)
    by_scan = {s.scan_id: s for s in report.scans}
    assert all(by_scan[r.source_scan_id].scanner_id == r.scanner_id for r in frame.itertuples())
    assert set(frame["class_name"]) <= set(classes) and frame["article"].str.startswith(tuple(classes)).all()
    assert (frame["model_version"] == "tiny-canary").all() and frame["class_score"].between(0, 1).all()
    rates = canary_detection(frame)
    assert rates["n"].sum() == 6 and set(rates["scanner_id"]) == {"scanner-de", "scanner-pc"}
    for mail, canary in zip(scorer.calls[0], scorer.calls[1], strict=True):  # a threat really went in
        assert mail.rgb8.shape == canary.rgb8.shape and (mail.rgb8 != canary.rgb8).any()


def test_a_dual_energy_canary_keeps_raw_planes_and_darkens_only_where_the_threat_lies() -> None:
    image = read_scan(sorted((SAMPLES / "baseline_npz").glob("*.npz"))[0])
    canary = project_canary(image, "knife", np.random.default_rng(1))
    assert canary.image.dual_energy and canary.image.low is not None
    assert (canary.image.high <= image.high + 1e-6).all() and (canary.image.low <= image.low + 1e-6).all()
    changed = np.argwhere(canary.image.high < image.high - 1e-4)
    assert changed.size and canary.article.startswith("knife:") and int(canary.article.rsplit(":", 1)[1]) % 10 == 9
    y, x = canary.top_left
    assert changed[:, 0].min() >= y and changed[:, 1].min() >= x  # nothing moved outside the threat's box


def test_a_failing_canary_feed_never_holds_up_mail(tmp_path: Path, now: datetime) -> None:
    settings = make_settings(tmp_path / "home")
    scorer = RecordingScorer(settings.model.classes)

    def store_down(records: list[Any]) -> None:
        raise ConnectionError("store down")

    feed = CanaryFeed(rate=1.0, classes=settings.model.classes, score=scorer, record=store_down,
                      rng=np.random.default_rng(0))
    ingest = Ingest.from_settings(settings, score=scorer, spool_write=SpoolWriter(settings.spool_dir).write,
                                  canaries=feed)
    report = ingest(drop(settings.inbox_dir, "scanner-pc", sorted((SAMPLES / "baseline_png").glob("*.png"))[:2]))
    assert len(report.scored) == 2 and report.spool_path is not None and feed.failures == 1


def test_background_canaries_never_make_a_batch_wait_and_drop_beyond_their_bound(tmp_path: Path, now: datetime) -> None:
    """The ingest returns while a canary is still being scored (the scorer is held on an event the test sets only
    after the batch returned: the old synchronous feed deadlocks here), and when the bounded queue is full the
    newest canaries are dropped and counted, not queued without limit."""
    settings = make_settings(tmp_path / "home")
    scorer = RecordingScorer(settings.model.classes)
    release = threading.Event()
    recorded: list[Any] = []

    def held_score(images: list[Any]) -> list[dict[str, Any]]:
        if scorer.calls:  # the mail's own call goes through; canary scoring waits for the test
            assert release.wait(30), "the test never released the canary scorer"
        return scorer(images)

    feed = CanaryFeed(rate=1.0, classes=settings.model.classes, score=held_score, record=recorded.extend,
                      rng=np.random.default_rng(3), clock=lambda: now)
    background = BackgroundCanaries(feed, max_pending=1)
    ingest = Ingest.from_settings(settings, score=held_score, spool_write=SpoolWriter(settings.spool_dir).write,
                                  canaries=background)
    pngs = sorted((SAMPLES / "baseline_png").glob("*.png"))
    try:
        first = ingest(drop(settings.inbox_dir, "scanner-pc", pngs[:2]))  # its canaries: taken by the thread, held
        assert len(first.scored) == 2 and not recorded
        for _ in range(200):  # bounded: until the thread has taken the first batch off the queue
            if background.pending == 0:
                break
            threading.Event().wait(0.05)
        images = [read_scan(path) for path in pngs[:2]]
        first_items = list(zip(first.scans, first.verdicts, images, strict=True))
        background(first_items)
        assert background.dropped == 0  # fills the one free slot
        assert background(first_items) == 0 and background.dropped == len(first_items)  # full: dropped, counted
    finally:
        release.set()
    background.join()
    background.close()
    assert len(recorded) >= 2 and {r.source_scan_id for r in recorded} >= set(first.scored)


def test_with_an_officer_share_canaries_also_wait_for_officers_as_tip_items_like_the_scans_they_rode_on(
        tmp_path: Path, now: datetime) -> None:
    settings = make_settings(tmp_path / "home", monitoring={"canary_rate": 1.0, "officer_tip_share": 1.0})
    classes = settings.model.classes
    scorer = RecordingScorer(classes)
    with Store.from_settings(settings, clock=lambda: now) as store:
        feed = CanaryFeed.from_settings(settings, score=scorer, record=store.record_canaries,
                                        record_tips=store.add_officer_tips)
        assert feed is not None and feed.officer_share == 1.0
        ingest = Ingest.from_settings(settings, score=scorer, spool_write=SpoolWriter(settings.spool_dir).write,
                                      canaries=feed)
        paths = drop(settings.inbox_dir, "scanner-de", sorted((SAMPLES / "baseline_npz").glob("*.npz"))[:2])
        paths += drop(settings.inbox_dir, "scanner-pc", sorted((SAMPLES / "baseline_png").glob("*.png"))[:2])
        report = ingest(paths)
        assert store.queue("ann").empty  # the mail is not stored yet: its TIP items wait for it
        SpoolIngester(settings.spool_dir, store.ingest).drain()
        queue = store.queue("ann")
        assert len(queue) == 4 and set(queue["scan_id"]).isdisjoint(report.scored)
        for tip_id in queue["scan_id"]:
            shown = store.get_scan(tip_id)
            image = read_scan(Path(shown["image"]["path"]))  # the viewer's reader opens it
            assert image.dual_energy == (shown["scanner_id"] == "scanner-de") == (shown["file_format"] == "npz")
            assert (image.height, image.width) == (shown["height"], shown["width"]) and not shown["is_canary"]
            # it opens with a heatmap, as every flagged item does (a TIP without one told the officer it was a test)
            verdict = shown["verdicts"][0]
            assert verdict["heatmap_size"] == 8 and verdict["peak_boxes"].keys() == verdict["heatmaps"].keys()
            heat = class_heat(verdict, overlay_default(verdict))
            assert heat is not None and heat.shape == (8, 8) and heat.max() > 0
