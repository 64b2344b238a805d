"""Turn a batch of scan files (or one upload) into stored records: check, hash, read, score, spool.

For each path: safety checks (symlink escaping the scanner root, unreadable, size, suffix, unknown scanner)
-> sha256 -> skip content already seen (store + in-process recent set) -> read the image -> score every good
image of the batch in ONE call of the injected scorer -> ScanRecord + VerdictRecord(s) -> one IngestBatch to
the durable spool -> optionally archive. The ScanRecord says where the image will be kept (its archive place, or
for an upload the copy kept under `uploads/`); a move that then fails is reported to the store (`record_moves`). A bad file is moved to quarantine with a QuarantineRecord naming the
reason; it never stops the stream. Model, reader, spool and store are injected; no Ray here.

Nothing is dropped: a batch that cannot be finished (scoring failed or timed out, the spool is not writable, a
file still being written) comes back in `IngestReport.retry`, and the caller (the watcher) hands those files
on again after a backoff. A store that fails the known-hash check (500, timeout, down) does not stop scoring:
the owner ingests idempotently, so the only cost is scoring a re-delivered file twice. Every failure is
recorded in the injected `PipelineHealth`, which `/healthz` reports.
"""

from __future__ import annotations

import hashlib
import logging
import os
import stat
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from serving.follow import with_scanners
from serving.health import PipelineHealth
from serving.housekeeping import (
    RECHECK_CODES,
    Rechecks,
    archive_dest,
    cap_folder,
    move_sidecar,
    path_identity,
    unique_path,
)
from serving.scanfile import Candidate, CandidateChecker, scan_record, valid_scanner_id, within
from xscreen import atomic
from xscreen.errors import BadScanError
from xscreen.records import (
    ImageMove,
    IngestBatch,
    QuarantineRecord,
    ScanRecord,
    VerdictRecord,
    VerdictRole,
    utcnow,
)

log = logging.getLogger(__name__)

VerdictFields = Mapping[str, Any]  # VerdictRecord fields a scorer produces (all but scan_id/scored_at/latency; role optional)
# score(images) -> fields; a scorer that also takes `scanners=` (one scanner id per image) is given them, so it can
# score each item with its scanner's own champion (serving/follow.py route)
ScoreFn = Callable[..., Sequence[VerdictFields]]
SpoolFn = Callable[[IngestBatch], Path]
KnownFn = Callable[[list[str]], set[str]]
MovesFn = Callable[[list[ImageMove]], Any]
ReaderFn = Callable[..., Any]
StatsFn = Callable[[Any], Mapping[str, float]]
CanaryFn = Callable[[Sequence[tuple[ScanRecord, VerdictRecord, Any]]], Any]  # serving/canaries.CanaryFeed
UPLOAD_SCORE_ATTEMPTS = 3  # an upload has no watcher to retry it: try a few times before answering 503
UPLOADS_DIR = "_uploads"  # quarantine/_uploads/<scanner>/: bad uploads kept for forensics, capped


class RecentHashes:
    """Bounded LRU of content hashes handled by this process (catches re-deliveries the store hasn't seen yet)."""

    def __init__(self, capacity: int = 200_000) -> None:
        self._items: OrderedDict[str, None] = OrderedDict()
        self._capacity = capacity

    def __contains__(self, sha: object) -> bool:
        return sha in self._items

    def add(self, sha: str) -> None:
        self._items[sha] = None
        self._items.move_to_end(sha)
        while len(self._items) > self._capacity:
            self._items.popitem(last=False)


@dataclass
class IngestReport:
    """What one call did. `scored` are scan ids; `retry` are paths left in place after a scoring failure."""

    scored: list[str] = field(default_factory=list)
    duplicates: list[Path] = field(default_factory=list)
    duplicate_ids: list[str] = field(default_factory=list)  # scan ids of the re-delivered content
    quarantined: list[QuarantineRecord] = field(default_factory=list)
    retry: list[Path] = field(default_factory=list)
    spool_path: Path | None = None
    scans: list[ScanRecord] = field(default_factory=list)
    verdicts: list[VerdictRecord] = field(default_factory=list)


@dataclass
class _Good:
    cand: Candidate
    image: Any
    stats: dict[str, float]


class Ingest:
    """The ingest pipeline; call it with a list of paths (the watcher's handler) or `ingest_bytes` for uploads."""

    def __init__(
        self,
        *,
        inbox: Path,
        quarantine_dir: Path,
        score: ScoreFn,
        spool_write: SpoolFn,
        reader: ReaderFn,
        stats: StatsFn,
        known_hashes: KnownFn | None = None,
        shadow_score: ScoreFn | None = None,
        archive_dir: Path | None = None,
        uploads_dir: Path | None = None,
        record_moves: MovesFn | None = None,
        scanner_ids: Iterable[str] = (),
        suffixes: Iterable[str] | None = None,
        max_bytes: int = 64 * 1024 * 1024,
        max_pixels: int = 40_000_000,
        max_decoded_bytes: int | None = None,
        clock: Callable[[], datetime] = utcnow,
        on_batch: Callable[[IngestReport], None] | None = None,
        health: PipelineHealth | None = None,
        truncated_wait_s: float = 10.0,
        upload_quarantine: tuple[int, int] = (1000, 256 * 2**20),
        canaries: CanaryFn | None = None,
    ) -> None:
        self.inbox = inbox
        self.quarantine_dir = quarantine_dir
        self._score = with_scanners(score)
        self._shadow_score = None if shadow_score is None else with_scanners(shadow_score)
        self._spool_write = spool_write
        self._reader = reader
        self._stats = stats
        self._known = known_hashes
        self._archive_dir = archive_dir
        self._uploads_dir = uploads_dir
        self._record_moves = record_moves
        self._max_bytes = max_bytes
        self._max_pixels = max_pixels
        self._limits: dict[str, int] = {"max_bytes": max_bytes, "max_pixels": max_pixels}
        if max_decoded_bytes is not None:
            self._limits["max_decoded_bytes"] = max_decoded_bytes
        self._clock = clock
        self._on_batch = on_batch
        self.health = health or PipelineHealth()
        self._truncated_wait_s = truncated_wait_s
        self._upload_cap = upload_quarantine
        self._canaries = canaries
        self.rechecks = Rechecks(lambda data, name: self._reader(data, name=name, **self._limits))
        allowed = None if suffixes is None else frozenset(x.lower() for x in suffixes)
        self._checker = CandidateChecker(inbox, set(scanner_ids), max_bytes, allowed)
        self.recent = RecentHashes()
        self._lock = threading.Lock()
        self._inflight: set[str] = set()  # hashes claimed by a batch being scored right now

    @classmethod
    def from_settings(cls, settings: Any, *, score: ScoreFn, spool_write: SpoolFn, **kw: Any) -> Ingest:
        """Wire the pipeline from settings; the image reader and statistics come from xray."""
        from xray.formats import SUPPORTED_SUFFIXES, image_stats, read_scan

        s = settings.serving
        return cls(
            inbox=settings.inbox_dir, quarantine_dir=settings.quarantine_dir, score=score, spool_write=spool_write,
            reader=read_scan, stats=image_stats, archive_dir=settings.archive_dir if s.archive_processed else None,
            uploads_dir=settings.uploads_dir,
            scanner_ids=s.scanner_ids, suffixes=SUPPORTED_SUFFIXES, max_bytes=s.max_upload_bytes,
            max_pixels=s.max_image_pixels, max_decoded_bytes=s.max_decoded_bytes, truncated_wait_s=s.truncated_wait_s,
            upload_quarantine=(s.quarantine_max_files, s.quarantine_max_bytes), **kw,
        )

    # ---- files ----------------------------------------------------------------------------------
    def __call__(self, paths: list[Path]) -> IngestReport:
        """Process finished files; returns what happened. Never raises for a bad file."""
        report = IngestReport()
        candidates: list[Candidate] = []
        for path in dict.fromkeys(paths):  # a path listed twice is one file
            outcome = self._checker.check(path)
            if isinstance(outcome, BadScanError):
                report.quarantined.append(self._quarantine_file(path, outcome, self._checker.scanner_of(path)))
            elif outcome is not None:
                candidates.append(outcome)
        fresh = self._drop_known(candidates, report)
        try:
            good = self._read_all(fresh, report, self._quarantine_cand)
            self._score_and_spool(good, report, attempts=1)  # the watcher retries with backoff
        finally:
            self._release(fresh)
        if report.scored:
            self._report_moves([move for item in good if (move := self._archive(item.cand)) is not None])
            self._feed_canaries(good, report)
        return self._notify(report)

    def _drop_known(self, candidates: list[Candidate], report: IngestReport) -> list[Candidate]:
        """Keep only content neither this process nor the store has seen (and each content once)."""
        known: set[str] = set()
        unseen = [c.sha256 for c in candidates if c.sha256 not in self.recent]
        if self._known is not None and unseen:
            try:
                known = set(self._known(unseen))
                self.health.succeeded("store")
            except Exception as err:  # any failure (down, 500, timeout): the owner ingests idempotently, so
                # scoring a re-delivery twice is the only cost; stopping the stream here is what stalled it
                self.health.failed("store", err)
                log.warning("known-hash check failed (%s: %s); scoring anyway, relying on recent hashes",
                            type(err).__name__, err)
        fresh: list[Candidate] = []
        dupes: list[Candidate] = []
        with self._lock:  # concurrent batches: content claimed by one in flight is a duplicate for the other
            for cand in candidates:
                sha = cand.sha256
                if sha in self.recent or sha in known or sha in self._inflight:
                    dupes.append(cand)
                else:
                    self._inflight.add(sha)
                    fresh.append(cand)
        for cand in dupes:
            report.duplicates.append(cand.path)
            report.duplicate_ids.append(cand.sha256[:16])
            self._archive(cand)
        return fresh

    def _release(self, claimed: list[Candidate]) -> None:
        with self._lock:
            self._inflight.difference_update(c.sha256 for c in claimed)

    def _read_all(self, candidates: list[Candidate], report: IngestReport,
                  quarantine: Callable[[Candidate, BadScanError], QuarantineRecord]) -> list[_Good]:
        good: list[_Good] = []
        for cand in candidates:
            try:
                image = self._reader(cand.data, name=cand.path.name, **self._limits)
                stats = dict(self._stats(image))
            except BadScanError as err:
                if err.reason_code == "truncated" and self._writer_may_be_busy(cand):
                    report.retry.append(cand.path)  # written in place and paused: wait, never quarantine yet
                    continue
                report.quarantined.append(quarantine(cand, err))
                continue
            except Exception as err:  # a reader bug on one file must not stop the stream: quarantine it loudly
                log.exception("reader failed on %s", cand.path)
                bad = BadScanError(str(cand.path), "reader_error", f"reader failed: {type(err).__name__}: {err}")
                report.quarantined.append(quarantine(cand, bad))
                continue
            good.append(_Good(cand, image, stats))
        return good

    def _writer_may_be_busy(self, cand: Candidate) -> bool:
        """A truncated file modified within `truncated_wait_s` may still be growing (size-stable rule)."""
        if cand.origin != "file":
            return False
        try:
            age = time.time() - cand.path.stat().st_mtime
        except OSError:
            return False
        return age < self._truncated_wait_s

    def _quarantine_cand(self, cand: Candidate, err: BadScanError) -> QuarantineRecord:
        return self._quarantine_file(cand.path, err, cand.scanner_id, cand.sha256)

    def _score_and_spool(self, good: list[_Good], report: IngestReport, attempts: int) -> None:
        if not good:
            if report.quarantined:
                report.spool_path = self._write(IngestBatch(batch_id=_batch_id(), quarantines=report.quarantined))
            return
        images = [g.image for g in good]
        fields = self._score_with_retry(images, [g.cand.scanner_id for g in good], attempts)
        if fields is None:
            report.retry.extend(g.cand.path for g in good)
            if report.quarantined:
                report.spool_path = self._write(IngestBatch(batch_id=_batch_id(), quarantines=report.quarantined))
            return
        scored_at = self._clock()
        scans = [scan_record(g.cand, g.image, g.stats, self._location(g.cand)) for g in good]
        verdicts = [_verdict(s, f, "champion", scored_at) for s, f in zip(scans, fields, strict=True)]
        verdicts += self._shadow(images, scans, {v.model_version for v in verdicts})
        batch = IngestBatch(batch_id=_batch_id(), scans=scans, verdicts=verdicts, quarantines=report.quarantined)
        report.spool_path = self._write(batch)
        with self._lock:
            for scan in scans:
                self.recent.add(scan.sha256)
        report.scored = [s.scan_id for s in scans]
        report.scans, report.verdicts = scans, verdicts

    def _score_with_retry(self, images: list[Any], scanners: list[str],
                          attempts: int) -> Sequence[VerdictFields] | None:
        for attempt in range(1, attempts + 1):
            try:
                fields = self._score(images, scanners)
                if len(fields) != len(images):
                    raise RuntimeError(f"scorer returned {len(fields)} results for {len(images)} images")
                self.health.succeeded("scoring")
                return fields
            except Exception as err:
                self.health.failed("scoring", err)
                log.exception("scoring %d image(s) failed (attempt %d/%d)", len(images), attempt, attempts)
                if attempt < attempts:
                    time.sleep(0.2 * attempt)
        log.error("scoring %d image(s) failed; they stay claimed-but-retriable (not marked seen)", len(images))
        return None

    def _shadow(self, images: list[Any], scans: list[ScanRecord], champions: set[str]) -> list[VerdictRecord]:
        """Shadow verdicts are stored, never shown; a failing shadow model never blocks the champion's. An empty
        answer means no shadow is in force. A shadow just promoted may still be the shadow slot's model for a
        poll or two: its verdict as the champion already stands, so the duplicate is dropped."""
        if self._shadow_score is None:
            return []
        try:
            fields = self._shadow_score(images, [s.scanner_id for s in scans])
        except Exception:
            log.exception("shadow scoring failed; champion verdicts are unaffected")
            return []
        if not fields:
            return []
        scored_at = self._clock()
        # empty fields: an item a shadow for another scanner did not score
        return [_verdict(s, f, "shadow", scored_at) for s, f in zip(scans, fields, strict=True)
                if f and f.get("model_version") not in champions]

    def _write(self, batch: IngestBatch) -> Path:
        try:
            path = self._spool_write(batch)
        except Exception as err:  # the caller retries the whole batch; nothing was marked seen
            self.health.failed("spool", err)
            raise
        self.health.succeeded("spool")
        return path

    def record_refusal(self, source: str, reason_code: str, reason: str, scanner_id: str | None = None) -> QuarantineRecord:
        """Record something refused before any file was touched (e.g. an API path outside the scanner root)."""
        record = QuarantineRecord(
            quarantine_id=hashlib.sha256(f"{source}|{reason_code}|{time.time_ns()}".encode()).hexdigest(),
            sha256=None, scanner_id=scanner_id, source_path=source, quarantined_path=None,
            reason_code=reason_code, reason=reason, quarantined_at=self._clock(),
        )
        self._write(IngestBatch(batch_id=_batch_id(), quarantines=[record]))
        return record

    # ---- uploads --------------------------------------------------------------------------------
    def ingest_bytes(
        self, data: bytes, *, name: str, scanner_id: str, item_id: str | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> IngestReport:
        """Score one uploaded image; a bad upload is recorded as a quarantine (bytes kept when small enough)."""
        received_at = self._clock()
        sidecar = dict(metadata or {})  # upload metadata plays the sidecar's role
        if item_id is not None:
            sidecar["item_id"] = item_id
        safe_name = Path(name.replace("\\", "/")).name[:200] or "upload"  # a label only; never a path we write to
        cand = Candidate(Path(f"upload/{scanner_id if valid_scanner_id(scanner_id) else '_invalid'}/{safe_name}"),
                         scanner_id, data, hashlib.sha256(data).hexdigest(), received_at, sidecar, origin="upload")
        problem = self._checker.check_upload(cand)
        report = IngestReport()
        if problem is not None:
            report.quarantined.append(self._quarantine_bytes(cand, problem))
            report.spool_path = self._write(IngestBatch(batch_id=_batch_id(), quarantines=report.quarantined))
            return self._notify(report)
        fresh = self._drop_known([cand], report)
        try:
            good = self._read_all(fresh, report, self._quarantine_bytes)
            for item in good:  # the bytes are kept before the verdict is spooled: its scan says where they are
                item.cand = self._keep_upload(item.cand)
            self._score_and_spool(good, report, attempts=UPLOAD_SCORE_ATTEMPTS)
        finally:
            self._release(fresh)
        return self._notify(report)

    def _notify(self, report: IngestReport) -> IngestReport:
        if self._on_batch is not None:
            try:
                self._on_batch(report)
            except Exception:  # metrics must never lose a verdict
                log.exception("on_batch hook failed")
        return report

    # ---- quarantine and archive -----------------------------------------------------------------
    def _quarantine_file(self, path: Path, err: BadScanError, scanner_id: str | None,
                         sha: str | None = None) -> QuarantineRecord:
        folder = scanner_id if scanner_id and valid_scanner_id(scanner_id) else "_unknown"
        dest_dir = self.quarantine_dir / folder
        dest: Path | None = None
        if self._movable(path):
            target = unique_path(dest_dir, path.name)
            try:
                dest_dir.mkdir(parents=True, exist_ok=True)
                os.replace(path, target)  # a symlink is moved as the link itself, never followed
                move_sidecar(path, target)
                dest = target
            except OSError as exc:
                log.error("could not move %s to quarantine: %s", path, exc)
        if dest is not None and err.reason_code in RECHECK_CODES and not dest.is_symlink():
            self.rechecks.watch(path, dest)  # a slow writer may still complete it: then it is scored after all
        log.warning("quarantined %s: %s (%s)", path, err.reason, err.reason_code)
        return QuarantineRecord(
            quarantine_id=sha or path_identity(path), sha256=sha, scanner_id=scanner_id, source_path=str(path),
            quarantined_path=str(dest) if dest else None, reason_code=err.reason_code, reason=err.reason,
            quarantined_at=self._clock(),
        )

    def _movable(self, path: Path) -> bool:
        """Only a file or link lying inside the scanner root is ever moved: never a folder, never anything outside."""
        try:
            st = os.stat(path, follow_symlinks=False)
        except OSError:
            return False
        if not (stat.S_ISREG(st.st_mode) or stat.S_ISLNK(st.st_mode)):
            return False
        return within(path.parent.resolve(), self.inbox.resolve())

    def _quarantine_bytes(self, cand: Candidate, err: BadScanError) -> QuarantineRecord:
        dest: Path | None = None
        if len(cand.data) <= self._max_bytes:  # keep small bad uploads for forensics; never store an oversized one
            folder = cand.scanner_id if valid_scanner_id(cand.scanner_id) else "_invalid"
            dest_dir = self.quarantine_dir / UPLOADS_DIR / folder
            try:
                dest_dir.mkdir(parents=True, exist_ok=True)
                dest = unique_path(dest_dir, cand.path.name)
                dest.write_bytes(cand.data)
                cap_folder(self.quarantine_dir / UPLOADS_DIR, *self._upload_cap)
            except OSError as exc:  # a full disk loses the forensic copy, never the record
                log.error("could not keep the refused upload %s: %s", cand.path.name, exc)
                dest = None
        return QuarantineRecord(
            quarantine_id=cand.sha256, sha256=cand.sha256, scanner_id=cand.scanner_id, source_path=str(cand.path),
            quarantined_path=str(dest) if dest else None, reason_code=err.reason_code, reason=err.reason,
            quarantined_at=self._clock(),
        )

    def _location(self, cand: Candidate) -> Path | None:
        """Where the image will live once processed: its archive place (recorded with the scan), else None."""
        if self._archive_dir is None or cand.origin == "upload":
            return None
        return archive_dest(self._archive_dir, cand.scanner_id, cand.sha256[:16], cand.path.name, cand.received_at)

    def _archive(self, cand: Candidate) -> ImageMove | None:
        """Move a processed file to its archive place; when that fails, where the image stays instead."""
        dest = self._location(cand)
        if dest is None:
            return None
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.replace(cand.path, dest)  # same content, same name, same day: the same place on a re-delivery
            move_sidecar(cand.path, dest)
        except OSError as exc:  # archiving is housekeeping: the verdict is already safe in the spool
            log.warning("could not archive %s: %s", cand.path, exc)
            return ImageMove(scan_id=cand.sha256[:16], path=str(cand.path))
        return None

    def _feed_canaries(self, good: list[_Good], report: IngestReport) -> None:
        """Hand the batch's cleared items to the canary feed, after their verdicts are safe in the spool: a
        canary is scored and recorded apart from mail, and its failure never touches the batch."""
        if self._canaries is None:
            return
        champion = {v.scan_id: v for v in report.verdicts if v.role == "champion"}
        items = [(scan, champion[scan.scan_id], g.image) for scan, g in zip(report.scans, good, strict=True)
                 if scan.scan_id in champion]
        try:
            self._canaries(items)
        except Exception:  # noqa: BLE001 -- monitoring must never lose a verdict
            log.exception("canary feed failed")

    def _report_moves(self, moves: list[ImageMove]) -> None:
        """Tell the store where images stayed that did not go where their scans say (best effort: logged)."""
        if not moves or self._record_moves is None:
            return
        try:
            self._record_moves(moves)
        except Exception as exc:  # noqa: BLE001 -- the store keeps the planned place; the next catch-up retries
            log.warning("could not tell the store where %d image(s) stayed: %s", len(moves), exc)

    def _keep_upload(self, cand: Candidate) -> Candidate:
        """Keep an upload's bytes under uploads/<scanner>/<day>/ (written to a temp name and renamed in), so a
        flagged upload shows its image; the candidate with that path, or unchanged (a label, no image) when
        they could not be written."""
        if self._uploads_dir is None:
            return cand
        dest = archive_dest(self._uploads_dir, cand.scanner_id, cand.sha256[:16], cand.path.name, cand.received_at)
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
            atomic.write_bytes(dest, cand.data)
        except OSError as exc:  # a full disk loses the picture, never the verdict
            log.error("could not keep the upload %s: %s", cand.path.name, exc)
            return cand
        return replace(cand, path=dest)


def _verdict(scan: ScanRecord, fields: VerdictFields, slot: VerdictRole, scored_at: datetime) -> VerdictRecord:
    """The stored verdict. Its role is the one the model held when it scored (the replica says, with the model
    version: serving/follow.py); `slot` (which scorer answered) only for scorers that do not say."""
    latency = (scored_at - scan.received_at).total_seconds() * 1000.0
    values = dict(fields)
    role = values.pop("role", slot)
    return VerdictRecord(scan_id=scan.scan_id, role=role, scored_at=scored_at, latency_ms=max(latency, 0.0), **values)


def _batch_id() -> str:
    return uuid.uuid4().hex


__all__ = ["Ingest", "IngestReport", "RecentHashes", "ScoreFn"]
