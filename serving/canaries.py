"""Known-answer canaries: project a library threat into a live AI-cleared scan, score it with the live model as a
hidden test item, and record the result apart from mail (store/ground_truth.py).

A canary is drawn for each champion `clear` verdict with probability `monitoring.canary_rate`. Its threat comes
from the library's canary part (xray.tip.ARTICLE_PARTS: articles never used for training or certification) and is
projected physically (xray.tip): into the raw high/low transmissions of a dual-energy scan, or, for a pseudo-colour
scan, through the inverted reference palette. A share of canaries instead projects a signature cut from a real
seizure in the library's canary part (serving/canary_seizures.py; article `seizure:<id>`), so a scanner's
known-answer detection rate also covers real threats. The projected image exists only in memory: no file, no scan
row, no verdict, nothing in the officers' queue (unless drawn as an officer TIP test, monitoring.officer_tip_share:
then its image is written under `<home>/tips` and it waits in the queue as store/tips.py describes), so volume and
drift statistics never see it. A failure here (rendering, scoring, the store) is logged and counted, never allowed
to hold up the mail it rode on.
"""

from __future__ import annotations

import hashlib
import logging
import queue
import threading
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from serving.canary_seizures import (
    CanarySeizure,
    ListSeizuresFn,
    SeizureCanaries,
    project_transmission_canary,
)
from serving.follow import with_scanners
from xray.canary import Projected, project_canary, project_signature
from xscreen.records import CanaryRecord, OfficerTipRecord, ScanRecord, VerdictRecord, utcnow

log = logging.getLogger(__name__)

RecordFn = Callable[[list[CanaryRecord]], Any]
RecordTipsFn = Callable[[list[OfficerTipRecord]], Any]
# score(images) -> fields, or score(images, scanners=...) for a scorer that routes by scanner (serving/follow.py)
ScoreFn = Callable[..., Sequence[Mapping[str, Any]]]
Item = tuple[ScanRecord, VerdictRecord, Any]  # a scan, its champion verdict and its decoded image


def project_seizure(image: Any, seizure: CanarySeizure, rng: np.random.Generator) -> Projected:
    """A copy of the decoded scan `image` with a canary-part seizure signature projected in at a random place: a
    log-attenuation one as a rendered threat is, a transmission map pasted into its own scanner's pixels (reduced
    when it does not fit). The article is `seizure:<seizure id>`."""
    entry = seizure.entry
    if entry.kind == "attenuation":
        return project_signature(image, entry.signature(), seizure.article, rng)
    out, top_left = project_transmission_canary(image, entry, rng)
    return Projected(out, entry.class_name, seizure.article, top_left)


def tip_image(image: Any) -> tuple[bytes, str]:
    """File bytes and format of a projected canary image for an officer TIP item, in the form a real scan of its
    kind arrives in (dual energy: raw uint16 planes as npz; else the colour image as png), so it opens alike."""
    from xray.writers import encode_npz, encode_png, to_uint16

    if image.dual_energy and image.low is not None:
        return encode_npz(to_uint16(image.high), to_uint16(image.low)), "npz"
    return encode_png(image.rgb8), "png"


class CanaryFeed:
    """Draws canaries among cleared items, projects, scores and records them. `rng` and `clock` are injected so
    tests control them; `classes` are the model's threat classes the library can render. With `officer_share`
    > 0, that share of canaries is also written to `tips_dir` and queued for officers as TIP items
    (`record_tips`, store/tips.py). With `seizures`, a `seizure_share` of canaries whose scanner has usable
    canary-part seizure signatures projects one of those (drawn uniformly) instead of a rendered threat."""

    def __init__(self, *, rate: float, classes: Sequence[str], score: ScoreFn, record: RecordFn,
                 rng: np.random.Generator | None = None, clock: Callable[[], datetime] = utcnow,
                 officer_share: float = 0.0, tips_dir: Path | None = None,
                 record_tips: RecordTipsFn | None = None, seizures: SeizureCanaries | None = None,
                 seizure_share: float = 0.0) -> None:
        from xray.threats import THREAT_CLASSES

        if officer_share > 0 and (tips_dir is None or record_tips is None):
            raise ValueError("officer TIP tests need a tips_dir and a record_tips function")
        self.officer_share = officer_share
        self._tips_dir = tips_dir
        self._record_tips = record_tips
        self.rate = rate
        self.classes = [c for c in classes if c in THREAT_CLASSES]
        self.scorer = score  # as given (the mail's scorer); the feed calls it through _score_with_scanners
        self._record = record
        self._rng = rng or np.random.default_rng()
        self._clock = clock
        self.seizures = seizures
        self.seizure_share = seizure_share
        self.failures = 0
        # A scanner with its own champion scores its mail with it (serving/follow.py), so its canaries must be
        # scored by that model too, or its canary detection rate would measure the fleet champion instead.
        self._score_with_scanners = with_scanners(score)

    @classmethod
    def from_settings(cls, settings: Any, *, score: ScoreFn, record: RecordFn,
                      record_tips: RecordTipsFn | None = None,
                      list_seizures: ListSeizuresFn | None = None) -> CanaryFeed | None:
        """None when monitoring.canary_rate is 0 (no canaries). monitoring.officer_tip_share of them go to
        officers too (images under `<home>/tips`) when `record_tips` is given; monitoring.canary_seizure_share
        of them project a canary-part seizure signature (`<paths.library>/seizures`) when `list_seizures` is."""
        from xray.seizures import seizures_dir

        m = settings.monitoring
        if m.canary_rate <= 0:
            return None
        share = m.officer_tip_share if record_tips is not None else 0.0
        seizures = None if list_seizures is None or m.canary_seizure_share <= 0 else SeizureCanaries(
            list_seizures, seizures_dir(settings.library_dir), refresh_s=60.0 * m.canary_seizure_refresh_min)
        return cls(rate=m.canary_rate, classes=settings.model.classes, score=score, record=record,
                   officer_share=share, tips_dir=Path(settings.home) / "tips", record_tips=record_tips,
                   seizures=seizures, seizure_share=m.canary_seizure_share)

    def draw(self, verdicts: Sequence[VerdictRecord]) -> list[int]:
        """Indices of champion `clear` verdicts drawn to carry a canary."""
        return [i for i, v in enumerate(verdicts)
                if v.role == "champion" and v.verdict == "clear" and self.classes and self._rng.random() < self.rate]

    def __call__(self, items: Sequence[Item]) -> list[CanaryRecord]:
        """Make, score and record canaries for the drawn items of one batch (scan, champion verdict, image)."""
        return self.process(self.choose(items))

    def choose(self, items: Sequence[Item]) -> list[Item]:
        """The items of one batch drawn to carry a canary (cheap: no projection, no scoring)."""
        return [items[i] for i in self.draw([v for _, v, _ in items])]

    def process(self, chosen: Sequence[Item]) -> list[CanaryRecord]:
        """Project, score and record canaries for items already chosen; [] (and a counted failure) on error."""
        if not chosen:
            return []
        try:
            if self.seizures is not None:
                self.seizures.refresh()  # a store read at most every refresh_s, never one per canary
            made = [(scan, self._project(scan, image)) for scan, _, image in chosen]
            fields = self._score_with_scanners([p.image for _, p in made], [scan.scanner_id for scan, _ in made])
            records = [self._canary(scan, p, f) for (scan, p), f in zip(made, fields, strict=True)]
            self._record(records)
            if self.officer_share > 0:
                self._officer_tips([(p, f, r) for (_, p), f, r in zip(made, fields, records, strict=True)])
        except Exception:  # noqa: BLE001 -- a canary must never hold up the mail it rode on
            self.failures += 1
            log.exception("canary feed failed for %d item(s); mail is unaffected", len(chosen))
            return []
        return records

    def _project(self, scan: ScanRecord, image: Any) -> Projected:
        """A seizure signature usable for the scan's scanner (seizure_share of the time, when there is one), else
        a rendered canary-part threat of a class drawn uniformly."""
        if self.seizures is not None and self._rng.random() < self.seizure_share:
            dual = bool(image.dual_energy and image.low is not None)
            pool = self.seizures.usable(scan.scanner_id, dual_energy=dual, classes=self.classes)
            if pool:
                return project_seizure(image, pool[int(self._rng.integers(len(pool)))], self._rng)
        return project_canary(image, str(self._rng.choice(self.classes)), self._rng)

    def _officer_tips(self, scored: Sequence[tuple[Projected, Mapping[str, Any], CanaryRecord]]) -> None:
        """Write the drawn share of canaries' images and queue them for officers as TIP items."""
        assert self._tips_dir is not None and self._record_tips is not None  # checked in __init__
        tips = []
        for p, f, rec in scored:
            if self._rng.random() >= self.officer_share:
                continue
            tip_id = hashlib.sha256(f"tip|{rec.canary_id}".encode()).hexdigest()[:16]  # looks like a scan id
            data, fmt = tip_image(p.image)
            self._tips_dir.mkdir(parents=True, exist_ok=True)
            path = self._tips_dir / f"{tip_id}.{fmt}"
            path.write_bytes(data)
            scores = {str(k): float(v) for k, v in (f.get("scores") or {}).items()}
            tips.append(OfficerTipRecord(
                tip_id=tip_id, canary_id=rec.canary_id, source_scan_id=rec.source_scan_id,
                scanner_id=rec.scanner_id, class_name=rec.class_name, article=rec.article,
                model_version=rec.model_version, verdict=rec.verdict, any_threat=rec.any_threat, scores=scores,
                top_class=f.get("top_class") or (max(scores, key=scores.__getitem__) if scores else None),
                image_path=str(path), file_format=fmt, created_at=rec.scored_at,
                heatmap_size=int(f.get("heatmap_size") or 0), heatmaps=dict(f.get("heatmaps") or {}),
                peak_boxes={str(c): [float(v) for v in b] for c, b in (f.get("peak_boxes") or {}).items()}))
        if tips:
            self._record_tips(tips)

    def _canary(self, scan: ScanRecord, p: Projected, f: Mapping[str, Any]) -> CanaryRecord:
        key = f"{scan.scan_id}|{p.article}|{p.top_left}".encode()
        scores = f.get("scores") or {}
        return CanaryRecord(canary_id=hashlib.sha256(key).hexdigest()[:16], scanner_id=scan.scanner_id,
                            source_scan_id=scan.scan_id, class_name=p.class_name, article=p.article,
                            model_version=str(f["model_version"]), verdict=f["verdict"],
                            any_threat=float(f["any_threat"]), class_score=scores.get(p.class_name),
                            scored_at=self._clock())


class BackgroundCanaries:
    """Runs a CanaryFeed off the scoring path: the ingest only draws (microseconds) and enqueues; one daemon thread
    projects, scores and records. The queue is bounded (`max_pending` batches): when canaries fall behind, the
    newest are dropped and counted rather than letting memory grow or a batch of mail wait for them. Canaries
    are a sample, so a dropped one loses a little statistical power, never a verdict."""

    def __init__(self, feed: CanaryFeed, *, max_pending: int = 8) -> None:
        self.feed = feed
        self.dropped = 0
        self._pending: queue.Queue[list[Item] | None] = queue.Queue(maxsize=max_pending)
        self._thread = threading.Thread(target=self._run, name="canaries", daemon=True)
        self._thread.start()

    @property
    def failures(self) -> int:
        return self.feed.failures

    @property
    def pending(self) -> int:
        """Batches of canaries queued and not yet taken by the thread."""
        return self._pending.qsize()

    def __call__(self, items: Sequence[Item]) -> int:
        """Enqueue the canaries drawn from one batch; returns how many were queued (0 when none or dropped)."""
        chosen = self.feed.choose(items)
        if not chosen:
            return 0
        try:
            self._pending.put_nowait(chosen)
        except queue.Full:
            self.dropped += len(chosen)
            log.warning("canary queue full: dropped %d canaries (%d so far); mail is unaffected",
                        len(chosen), self.dropped)
            return 0
        return len(chosen)

    def _run(self) -> None:
        while (chosen := self._pending.get()) is not None:
            try:
                self.feed.process(chosen)
            finally:
                self._pending.task_done()
        self._pending.task_done()

    def join(self) -> None:
        """Wait until every queued canary is recorded (tests, and a clean stop)."""
        self._pending.join()

    def close(self, timeout_s: float = 10.0) -> None:
        """Finish the queued canaries and stop the thread (bounded by timeout_s)."""
        self._pending.put(None, timeout=timeout_s)
        self._thread.join(timeout_s)
