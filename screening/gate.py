"""`xscreen gate`: a candidate against the champion on the same items, each at its own operating point: a frozen
benchmark set (labelled folders) and recent labelled live scans whose images are still kept. Items from where the
drift is (labelled folders of the new goods or concealment, `drift_folders`; the live scans of the drifted scanner,
`drift_scanner`) are gate items like the rest and also the focus, where the candidate must be better. Canary items
are known threats in live mail: a canary-part library threat (never trained or certified on) projected into recent
cleared scans of each scanner, as the live canaries are (xray/canary.py); the drifted scanner's are focus items too.
The decision is analytics/monitoring/promotion.py's; the report goes to the store, where promotion asks for it.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np

from analytics.monitoring.promotion import GateCriteria, gate_report
from screening.calibration import verdicts
from screening.classifier import Classifier
from xscreen.errors import BadScanError, XscreenError
from xscreen.records import THREAT_UNKNOWN_CLASS, GateReportRecord, ModelRecord, utcnow
from xscreen.settings import Settings

log = logging.getLogger(__name__)


@dataclass
class Items:
    """Truth of the gate's items and each model's flags on them (verdict not `clear`), in one order."""

    any_truth: list[bool] = field(default_factory=list)
    class_truth: list[list[int]] = field(default_factory=list)  # (N, K) in {-1, 0, 1}
    flags: dict[str, list[bool]] = field(default_factory=dict)  # model version -> (N,)
    focus: list[bool] = field(default_factory=list)  # (N,): the item is from where the drift is

    def extend(self, any_truth: Iterable[Any], class_truth: Iterable[Iterable[Any]],
               flags: Mapping[str, Iterable[Any]], focus: bool | Iterable[Any] = False) -> None:
        """Append items: truth (bool-like), class truth rows (int-like), each model's flags (bool-like), and
        whether they are focus items (one bool for all, or one per item)."""
        before = len(self.any_truth)
        self.any_truth += [bool(x) for x in any_truth]
        added = len(self.any_truth) - before
        self.focus += [bool(focus)] * added if isinstance(focus, bool) else [bool(x) for x in focus]
        self.class_truth += [[int(v) for v in row] for row in class_truth]
        for version, f in flags.items():
            self.flags.setdefault(version, []).extend(bool(x) for x in f)


def benchmark_flags(clf: Classifier, folders: Sequence[Path]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(any truth (N,), class truth (N, K), flags (N,)) of a model on labelled folders, at its operating point."""
    from screening.assess import score_set
    from screening.data import load_folders

    data = load_folders(folders, clf.classes, clf.input_size, progress=False)
    p_any, p_cls, _ = score_set(clf, data, {})
    flagged = verdicts(p_any, p_cls, clf.classes, clf.point) != "clear"
    return data.any_labels.astype(bool), data.class_labels, flagged


def live_truth(labels: Sequence[str], classes: Sequence[str]) -> tuple[bool, list[int]]:
    """A current label as gate truth: [] benign; ["threat"] a threat of unknown class (-1 for every class)."""
    if THREAT_UNKNOWN_CLASS in labels:
        return True, [-1] * len(classes)
    return bool(labels), [int(c in labels) for c in classes]


def _readable(paths: Sequence[str], max_bytes: int, max_pixels: int, what: str) -> Iterator[Any | None]:
    """The decoded scan of each path in turn, or None (logged) where it cannot be read: the gate goes on without
    it."""
    from xray.formats import read_scans

    for path, scan in read_scans((Path(p) for p in paths), max_bytes=max_bytes, max_pixels=max_pixels):
        if isinstance(scan, BadScanError):
            log.info("gate: %s %s left out (%s)", what, path, scan.reason)
            yield None
        else:
            yield scan


BATCH = 32  # images scored per call: a few hundred full-size decoded scans are never held at once


class _Scoring:
    """Items waiting to be scored: every model scores them a batch at a time, then they join `items`."""

    def __init__(self, models: Sequence[Classifier], items: Items) -> None:
        self.models, self.items = models, items
        self.pending: list[tuple[Any, bool, list[int], bool]] = []  # (image, any truth, class truth, focus)

    def __len__(self) -> int:
        return len(self.pending)

    def add(self, image: Any, truth: bool, class_truth: list[int], focus: bool) -> None:
        self.pending.append((image, truth, class_truth, focus))
        if len(self.pending) == BATCH:
            self.flush()

    def flush(self) -> Items:
        if self.pending:
            images = [p[0] for p in self.pending]
            self.items.extend([p[1] for p in self.pending], [p[2] for p in self.pending],
                              {m.version: [v.verdict != "clear" for v in m.predict(images)] for m in self.models},
                              focus=[p[3] for p in self.pending])
            self.pending.clear()
        return self.items


def live_flags(models: Sequence[Classifier], rows: Any, classes: Sequence[str], max_bytes: int,
               max_pixels: int, drift_scanner: str | None = None) -> Items:
    """Score the labelled live scans whose images are still readable (a batch at a time); an unreadable one is
    left out, logged. The scans of `drift_scanner` are focus items."""
    scoring = _Scoring(models, Items())
    listed = list(rows.itertuples())
    for row, image in zip(listed, _readable([r.source_path for r in listed], max_bytes, max_pixels, "live scan"),
                          strict=True):
        if image is not None:
            truth, cls = live_truth(list(row.labels), classes)
            scoring.add(image, truth, cls, drift_scanner is not None and row.scanner_id == drift_scanner)
    return scoring.flush()


def certified_miss(record: ModelRecord) -> float | None:
    """The candidate's certified miss rate (its certificate's alpha), None when it is not certified."""
    cert = record.calibration.get("certificate") or {}
    return float(cert["alpha"]) if cert.get("alpha") is not None and cert.get("certified", True) else None


def canary_flags(settings: Settings, models: Sequence[Classifier], scanners: Sequence[str], per_scanner: int,
                 drift_scanner: str | None, seed: int = 0) -> Items:
    """Known-answer items: into each of the `per_scanner` most recent cleared scans of each scanner (store op
    cleared_images: officer-cleared, or AI-cleared and undecided, never labelled a threat), one canary-part threat
    of a class taken in turn, projected as the live canaries are; every model scores the same images. A scan whose
    image cannot be read is left out, logged. The drifted scanner's canaries are focus items."""
    from store.client import open_store
    from xray.canary import project_canary
    from xray.threats import THREAT_CLASSES

    classes = models[0].classes
    drawable = [c for c in classes if c in THREAT_CLASSES]
    if not drawable:
        raise XscreenError(f"no class of the model ({', '.join(classes)}) has canary articles", title="Gate")
    with open_store(settings) as store:
        frames = [(sc, store.cleared_images(sc, limit=per_scanner)) for sc in scanners]
    rng, s = np.random.default_rng(seed), settings.serving
    scoring = _Scoring(models, Items())
    for scanner, frame in frames:
        for scan in _readable(list(frame["path"]), s.max_upload_bytes, s.max_image_pixels, "canary background"):
            if scan is None:
                continue
            cls = drawable[(len(scoring.items.any_truth) + len(scoring)) % len(drawable)]
            scoring.add(project_canary(scan, cls, rng).image, True, [int(c == cls) for c in classes],
                        scanner == drift_scanner)
    return scoring.flush()


def run_gate(settings: Settings, candidate: str, folders: Sequence[Path], *, live_days: float,
             criteria: GateCriteria, actor: str, drift_folders: Sequence[Path] = (),
             drift_scanner: str | None = None, canaries: int = 0) -> GateReportRecord:
    """Gate `candidate` against the champion, store the report and return it. `drift_folders` and the live scans
    of `drift_scanner` are where the drift is: the candidate must be better there (GateCriteria.focus_alpha).
    `canaries`: that many canary items per scanner (`serving.scanner_ids` and `drift_scanner`)."""
    from screening.registry import resolve
    from store.client import open_store

    cand_rec, champ_rec = resolve(settings, candidate), resolve(settings, "champion")
    if cand_rec.version == champ_rec.version:
        raise XscreenError(f"{candidate} is the champion: gate a candidate against it", title="Bad argument")
    models = [Classifier.from_registry(settings, v) for v in (champ_rec.version, cand_rec.version)]
    items, sources = Items(), {"benchmark": 0, "live": 0}
    for group, focus, key in ((folders, False, "benchmark"), (drift_folders, True, "drift_benchmark")):
        if group:
            scored = [benchmark_flags(m, group) for m in models]
            items.extend(scored[0][0], scored[0][1], {m.version: s[2] for m, s in zip(models, scored, strict=True)},
                         focus=focus)
            sources[key] = len(scored[0][0])
    if live_days > 0:
        with open_store(settings) as store:
            rows = store.training_labels()
        rows = rows[rows["created_at"] >= utcnow() - timedelta(days=live_days)]
        s = settings.serving
        live = live_flags(models, rows, models[0].classes, s.max_upload_bytes, s.max_image_pixels, drift_scanner)
        items.extend(live.any_truth, live.class_truth, live.flags, focus=live.focus)
        sources["live"] = len(live.any_truth)
        if drift_scanner is not None:
            sources[f"live from {drift_scanner}"] = sum(live.focus)
    if canaries > 0:
        scanners = sorted({*settings.serving.scanner_ids, *([drift_scanner] if drift_scanner else [])})
        if not scanners:
            raise XscreenError("canary items need scanners: name --drift-scanner or set serving.scanner_ids",
                               title="Bad argument")
        known = canary_flags(settings, models, scanners, canaries, drift_scanner)
        items.extend(known.any_truth, known.class_truth, known.flags, focus=known.focus)
        sources["canaries"] = len(known.any_truth)
    if not items.any_truth:
        raise XscreenError("the gate has no items: give --data folders or label recent live scans", title="Gate")
    class_truth = np.asarray(items.class_truth).reshape(len(items.any_truth), -1)
    report = gate_report(np.asarray(items.any_truth), {c: class_truth[:, k] for k, c in enumerate(models[0].classes)},
                         np.asarray(items.flags[champ_rec.version]), np.asarray(items.flags[cand_rec.version]),
                         certified_miss=certified_miss(cand_rec), criteria=criteria, sources=sources,
                         focus=np.asarray(items.focus, dtype=bool))
    record = GateReportRecord(report_id=uuid.uuid4().hex, candidate=cand_rec.version, champion=champ_rec.version,
                              created_at=utcnow(), passed=report["passed"], report=report)
    with open_store(settings) as store:
        store.record_gate_report(record, actor=actor)
    return record


__all__ = ["Items", "benchmark_flags", "certified_miss", "live_truth", "run_gate"]
