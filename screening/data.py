"""Labelled image folders (labels.csv) -> an in-memory cache of letterboxed canvases, splits and balanced sampling.

labels.csv has columns `file,labels`: `labels` is `|`-separated class names, empty for benign, or `threat`
(something was there, class unknown: trains any_threat only; every per-class target is masked as unknown = -1).
Images are read through xray.formats.read_scan, letterboxed once and cached as uint8 (a 256-pixel canvas is
192 KiB), so epochs after the first cost only the network. Dual-energy planes are cached too (float16) so that
training can re-render them with another vendor's palette.
"""

from __future__ import annotations

import csv
import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from screening.preprocess import Geometry, letterbox_one, letterbox_planes
from xscreen.errors import BadScanError, XscreenError
from xscreen.records import THREAT_UNKNOWN_CLASS

log = logging.getLogger(__name__)


class LabelError(XscreenError):
    """labels.csv is missing, malformed, or names a class the model does not know."""

    title = "Bad training labels"


@dataclass(frozen=True)
class LabelRow:
    path: Path
    labels: tuple[str, ...]


@dataclass
class LabelledSet:
    """Cached canvases and targets of one or more folders. any_labels (N,) in {0, 1}; class_labels (N, K) in {-1, 0, 1}."""

    classes: list[str]
    files: list[Path]
    canvases: torch.Tensor  # (N, 3, S, S) uint8
    planes: torch.Tensor | None  # (N, 2, S, S) float16 high/low transmission, NaN where the scan has none
    geometries: list[Geometry]
    any_labels: np.ndarray
    class_labels: np.ndarray
    manifest_sha256: str
    # Generator boxes by file name (screening.boxes), for box supervision of the heatmaps; {} when none are known.
    boxes: dict[str, list[tuple[str, tuple[float, float, float, float]]]] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.files)

    def subset(self, idx: np.ndarray) -> LabelledSet:
        ti = torch.as_tensor(idx, dtype=torch.long)
        return LabelledSet(
            self.classes, [self.files[i] for i in idx], self.canvases[ti],
            None if self.planes is None else self.planes[ti], [self.geometries[i] for i in idx],
            self.any_labels[idx], self.class_labels[idx], _manifest_hash([self.files[i] for i in idx], self.class_labels[idx]),
            {self.files[i].name: self.boxes[self.files[i].name] for i in idx if self.files[i].name in self.boxes},
        )

    def float_canvases(self, idx: Sequence[int] | np.ndarray | slice | torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) float32 in [0, 1]."""
        return self.canvases[idx].float().div_(255.0)


def read_labels(folder: Path, classes: Sequence[str]) -> list[LabelRow]:
    """Rows of folder/labels.csv, checked: every file exists and every class name is known."""
    csv_path = folder / "labels.csv"
    if not csv_path.is_file():
        raise LabelError(f"{folder}: no labels.csv (expected columns file,labels)")
    known = set(classes) | {THREAT_UNKNOWN_CLASS}
    rows = []
    with csv_path.open(newline="") as f:
        reader = csv.DictReader(f)
        if not reader.fieldnames or not {"file", "labels"} <= set(reader.fieldnames):
            raise LabelError(f"{csv_path}: header must contain 'file' and 'labels', got {reader.fieldnames}")
        for line, row in enumerate(reader, start=2):
            names = tuple(x.strip() for x in (row["labels"] or "").split("|") if x.strip())
            unknown = [n for n in names if n not in known]
            if unknown:
                raise LabelError(f"{csv_path} line {line} ({row['file']}): unknown class {unknown[0]!r}; known: {sorted(known)}")
            path = folder / row["file"]
            if not path.is_file():
                raise LabelError(f"{csv_path} line {line}: file {row['file']!r} does not exist")
            rows.append(LabelRow(path, names))
    if not rows:
        raise LabelError(f"{csv_path}: no rows")
    return rows


def targets(rows: Sequence[LabelRow], classes: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """(any (N,), per class (N, K)) with -1 where a class is unknown (label `threat`)."""
    any_y = np.array([1 if r.labels else 0 for r in rows], dtype=np.int64)
    cls_y = np.zeros((len(rows), len(classes)), dtype=np.int64)
    for i, r in enumerate(rows):
        if THREAT_UNKNOWN_CLASS in r.labels:
            cls_y[i] = -1  # class unknown: masked out of the per-class loss, still a threat for any_threat
        for j, c in enumerate(classes):
            if c in r.labels:
                cls_y[i, j] = 1
    return any_y, cls_y


def _manifest_hash(files: Sequence[Path], class_labels: np.ndarray, digests: Sequence[str] | None = None) -> str:
    """sha256 over (content digest or file name, labels) in a stable order: identifies a training/calibration set."""
    h = hashlib.sha256()
    keys = digests if digests is not None else [p.name for p in files]
    for key, lab in sorted(zip(keys, (",".join(map(str, r)) for r in class_labels), strict=True)):
        h.update(f"{key}:{lab}\n".encode())
    return h.hexdigest()


def _decode(path: Path, size: int) -> tuple[torch.Tensor, torch.Tensor | None, Geometry, str]:
    from xray.formats import read_scan

    data = path.read_bytes()
    scan = read_scan(data, name=str(path))
    canvas, geo = letterbox_one(scan.rgb, size)
    planes = None
    if scan.dual_energy and scan.low is not None:
        planes = letterbox_planes(np.stack([scan.high, scan.low]), size)
    return (canvas * 255).round_().to(torch.uint8), planes, geo, hashlib.sha256(data).hexdigest()


def load_folders(folders: Sequence[Path], classes: Sequence[str], size: int, *, progress: bool = True,
                 unreadable: list[tuple[Path, str]] | None = None) -> LabelledSet:
    """Read, check and cache every labelled image of `folders`. An unreadable image is a LabelError naming the file
    (training must not quietly lose labelled items), unless an `unreadable` list is given: then it is left out and
    (path, reason) appended there, for the caller to report (evaluation on folders of real scans)."""
    rows = [r for folder in folders for r in read_labels(Path(folder), classes)]
    canvases = torch.empty((len(rows), 3, size, size), dtype=torch.uint8)
    planes = torch.full((len(rows), 2, size, size), float("nan"), dtype=torch.float16)
    keep, geos, digests, n_dual = [], [], [], 0
    for i, row in enumerate(tqdm(rows, desc="reading scans", unit="img", disable=not progress, leave=False)):
        try:
            canvases[i], p, geo, digest = _decode(row.path, size)
        except BadScanError as exc:
            if unreadable is None:
                raise LabelError(f"{row.path}: unreadable scan ({exc.reason})") from None
            unreadable.append((row.path, exc.reason))
            continue
        if p is not None:
            planes[i], n_dual = p.half(), n_dual + 1
        keep.append(i)
        geos.append(geo)
        digests.append(digest)
    if len(keep) < len(rows):
        rows, canvases, planes = [rows[i] for i in keep], canvases[keep], planes[keep]
    any_y, cls_y = targets(rows, classes)
    files = [r.path for r in rows]
    from screening.boxes import load_boxes

    boxes = {}
    for folder in dict.fromkeys(Path(f) for f in folders):  # generator manifests beside labels.csv, where present
        boxes.update(load_boxes(folder))
    return LabelledSet(list(classes), files, canvases, planes if n_dual else None, geos, any_y, cls_y,
                       _manifest_hash(files, cls_y, digests), boxes)


def split_indices(any_labels: np.ndarray, fractions: Sequence[float], seed: int) -> list[np.ndarray]:
    """Stratified (by any_threat) deterministic split into len(fractions) + 1 parts; the remainder comes first."""
    rng = np.random.default_rng(seed)
    parts: list[list[int]] = [[] for _ in range(len(fractions) + 1)]
    for value in (0, 1):
        idx = rng.permutation(np.flatnonzero(any_labels == value))
        cuts = np.cumsum([round(f * len(idx)) for f in fractions])
        rest, *taken = np.split(idx, [len(idx) - int(cuts[-1])] + [len(idx) - int(cuts[-1]) + int(c) for c in cuts[:-1]])
        parts[0].extend(rest)
        for p, t in zip(parts[1:], taken, strict=True):
            p.extend(t)
    return [np.sort(np.array(p, dtype=np.int64)) for p in parts]


def balanced_weights(any_labels: np.ndarray, class_labels: np.ndarray) -> np.ndarray:
    """Sampling weight per item: benign items keep their natural share (so the any-threat prior is unchanged);
    the threat share is split equally between groups (rarest positive class, or class-unknown threat)."""
    n = len(any_labels)
    freq = np.maximum((class_labels == 1).sum(axis=0), 1)
    groups = np.full(n, -1)  # -1 benign, K = class unknown, j = rarest positive class
    for i in range(n):
        pos = np.flatnonzero(class_labels[i] == 1)
        if any_labels[i]:
            groups[i] = pos[np.argmin(freq[pos])] if len(pos) else class_labels.shape[1]
    w = np.zeros(n)
    benign = groups == -1
    w[benign] = benign.mean() / max(benign.sum(), 1)
    threat_groups = [g for g in np.unique(groups) if g >= 0]
    for g in threat_groups:
        sel = groups == g
        w[sel] = (1 - benign.mean()) / len(threat_groups) / sel.sum()
    return w / w.sum()

