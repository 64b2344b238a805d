"""Relabelling helpers: the active relabel queue (disagreements, label-error suspects, uncertain items, AI-cleared
items nearest their threshold, drifted regions of embedding space and a random slice, within a budget), conflicting labels that need a supervisor, and
export of a training set for `xscreen train`.

The queue is composed from pluggable sources (`Source`: a policy's items in its order, a reserved share of the
budget, and whether it fills places others leave): a new sampling policy is one more source in `todays_queue`.

The export writes the format screening.data.read_labels reads: `labels.csv` with columns `file,labels`
(`|`-separated class names, empty = benign, `threat` = class unknown) next to the copied images.
"""

from __future__ import annotations

import csv
import math
import re
import shutil
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from xscreen.errors import XscreenError


class ExportError(XscreenError):
    """The training-set export cannot write its folder or was given nothing to export."""

    title = "Cannot export training set"


@dataclass(frozen=True)
class ExportResult:
    folder: Path
    labels_csv: Path
    exported: int
    missing: tuple[str, ...]  # scan ids whose image file no longer exists
    archive: Path | None = None


RANDOM_REASON = "random slice (unbiased evaluation)"
SUSPECT_REASON = "label may be wrong (confident learning)"
DRIFT_REASON = "new region of embedding space (drift)"
BORDERLINE_REASON = "cleared near the threshold, never looked at (possible miss)"


def label_suspects(outcomes: pd.DataFrame, limit: int) -> pd.DataFrame:
    """Labelled items whose truth (`is_threat`) the champion's any-threat score confidently contradicts, most
    suspicious first (cleanlab via analytics.monitoring.gate.label_issue_suspects): scan_id, reason. Live scores
    are out-of-sample (the champion never trained on live scans), which confident learning needs. Fewer than 10
    items, or one truth only: none."""
    from analytics.monitoring.gate import label_issue_suspects

    if len(outcomes) < 10 or outcomes["is_threat"].nunique() < 2:
        return pd.DataFrame({"scan_id": [], "reason": []})
    p = outcomes["any_threat"].to_numpy(dtype=float)
    found = label_issue_suspects(outcomes["is_threat"].astype(int).to_numpy(), np.column_stack([1 - p, p]))
    picked = outcomes.iloc[found[:limit]]
    keep = [c for c in ("scan_id", "scanner_id", "model_version", "verdict", "any_threat", "decision") if c in picked]
    return picked[keep].assign(current_labels=picked.get("labels"), reason=SUSPECT_REASON).reset_index(drop=True)


@dataclass(frozen=True)
class Source:
    """One sampling policy's offer for the day's queue: `items` (scan_id, ..., reason) in the policy's order of
    preference; `share` of the budget reserved for it (ceil(budget * share) places, when it has the items);
    `fills`: whether it may also take places the reserved shares leave."""

    items: pd.DataFrame
    share: float = 0.0
    fills: bool = True


def compose_queue(sources: Sequence[Source], budget: int) -> pd.DataFrame:
    """At most `budget` items, each scan once: every source first takes its reserved places (in the order given),
    then the sources that fill take what is left, in order. Rows are grouped by source, in source order, each
    source's rows in its own order."""
    taken: list[list[int]] = [[] for _ in sources]
    seen: set[str] = set()

    def take(i: int, limit: int) -> None:
        for pos, scan_id in enumerate(sources[i].items["scan_id"]):
            if len(taken[i]) >= limit or sum(map(len, taken)) >= budget:
                return
            if scan_id not in seen:
                seen.add(scan_id)
                taken[i].append(pos)

    for i, src in enumerate(sources):
        if src.share > 0:
            take(i, math.ceil(budget * src.share))
    for i, src in enumerate(sources):
        if src.fills:
            take(i, budget)
    parts = [src.items.iloc[sorted(pos)] for src, pos in zip(sources, taken, strict=True) if pos]
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame({"scan_id": [], "reason": []})


def active_queue(priority: pd.DataFrame, suspects: pd.DataFrame, random: pd.DataFrame, *, budget: int,
                 random_share: float, drifted: pd.DataFrame | None = None, drift_share: float = 0.0,
                 borderline: pd.DataFrame | None = None, borderline_share: float = 0.0) -> pd.DataFrame:
    """The day's relabel queue: label-error suspects, the store's priority queue (disagreements, then uncertain
    items), AI-cleared items nearest their threshold (`borderline`, which keep ceil(budget * borderline_share)
    places) and drifted items (`drifted`, ceil(budget * drift_share) places) fill `budget` less the random slice,
    which always keeps ceil(budget * random_share) places (when there are random items) and takes no more: each
    scan once, with its `reason`.

    Why the borderline part has places of its own: every flagged item is decided by an officer, and a decision
    already labels it, so disagreements and uncertain items (all flagged) relabel what is known unless an officer
    erred; the model's misses lie among cleared items nobody looked at, and only this part, the drifted part and
    the random slice reach them."""
    sources = [Source(suspects), Source(priority)]
    if borderline is not None:
        sources.append(Source(borderline.assign(reason=BORDERLINE_REASON), share=borderline_share))
    if drifted is not None:
        sources.append(Source(drifted, share=drift_share))
    sources.append(Source(random.assign(reason=RANDOM_REASON), share=random_share, fills=False))
    return compose_queue(sources, budget)


@dataclass(frozen=True)
class DiversityPolicy:
    """The diversity source (analytics.diversity): recent unlabelled scans of the last `recent_days` compared with
    the `reference_days` before them, at most `per_window` scans of each; `share` of the budget reserved."""

    share: float = 0.2
    recent_days: float = 1.0
    reference_days: float = 7.0
    per_window: int = 2000


def drifted_items(store: Any, policy: DiversityPolicy, *, limit: int, now: datetime) -> pd.DataFrame:
    """Up to `limit` recent unlabelled scans from drifted regions of embedding space, new clusters first, read
    through `store` (its `sampling_embeddings`): scan_id, scanner_id, model_version, verdict, any_threat,
    top_class, novelty (distance to the nearest reference scan), reason."""
    from analytics.diversity import drifted_diverse

    split = now - timedelta(days=policy.recent_days)
    rows = store.sampling_embeddings(start=(split - timedelta(days=policy.reference_days)).isoformat(),
                                     split=split.isoformat(), end=now.isoformat(), per_window=policy.per_window)
    recent, reference = rows[rows["window"] == "recent"], rows[rows["window"] == "reference"]
    if recent.empty or reference.empty:
        return pd.DataFrame({"scan_id": [], "reason": []})
    picks = drifted_diverse(np.vstack(recent["embedding"].to_list()), np.vstack(reference["embedding"].to_list()),
                            limit)
    chosen = recent.iloc[picks.index].drop(columns=["window", "embedding"])
    return chosen.assign(novelty=picks.novelty, reason=DRIFT_REASON).reset_index(drop=True)


def todays_queue(store: Any, *, budget: int, random_share: float, now: datetime,
                 lookback_days: float = 30.0, diversity: DiversityPolicy | None = None,
                 borderline_share: float = 0.0) -> pd.DataFrame:
    """The day's active relabel queue read through `store` (a Store or StoreClient: its read operations only):
    label-error suspects among the last `lookback_days` of labelled outcomes, the store's priority queue,
    AI-cleared items nearest their threshold (`borderline_share` of the budget; none at 0), drifted regions of
    embedding space (with `diversity`; none without), and a random slice seeded by the day (the same slice all
    day), within `budget` (see active_queue)."""
    random = store.random_unlabelled(limit=math.ceil(budget * random_share), seed=now.date().isoformat())
    outcomes = store.labelled_outcomes(start=(now - timedelta(days=lookback_days)).isoformat(), end=now.isoformat())
    drifted = drifted_items(store, diversity, limit=budget, now=now) if diversity and diversity.share > 0 else None
    borderline = store.borderline_cleared(limit=budget) if borderline_share > 0 else None
    return active_queue(store.relabel_queue(limit=budget), label_suspects(outcomes, budget), random,
                        budget=budget, random_share=random_share, drifted=drifted,
                        drift_share=diversity.share if diversity else 0.0, borderline=borderline,
                        borderline_share=borderline_share)


def label_conflict(history: Iterable[Mapping[str, Any]]) -> bool:
    """True when the newest label of each author disagree and no adjudication came after them.

    `history` is the scan's label rows newest first (as get_scan returns them): labels, source, author.
    """
    latest: dict[str, frozenset[str]] = {}
    for row in history:
        if row["source"] == "adjudication":
            return False  # a supervisor's ruling, newer than everything below it, settles the matter
        latest.setdefault(str(row["author"]), frozenset(row["labels"] or []))
    return len(set(latest.values())) > 1


# One folder name: starts with a letter or digit, then letters, digits, '.', '_' or '-'; no separators, so no '..'.
_EXPORT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")


def export_folder(root: Path, name: str) -> Path:
    """The folder `root/name` for a new export, after checking that `name` is one plain folder name and that the
    folder does not exist yet (an export never overwrites another). ExportError naming the problem otherwise.

    `root` is the configured exports folder (settings.paths.exports): a request can choose the name, never where.
    """
    if not _EXPORT_NAME.fullmatch(name) or ".." in name:
        raise ExportError(f"export name {name!r} is not allowed: use 1-100 letters, digits, '.', '_' or '-', "
                          f"starting with a letter or digit (no folders); exports are written under {root}")
    dest = root / name
    if dest.resolve().parent != root.resolve():  # belt and braces: the pattern already excludes separators
        raise ExportError(f"export name {name!r} leaves the exports folder {root}")
    if dest.exists() or (root / f"{name}.zip").exists():
        raise ExportError(f"an export named {name!r} already exists in {root}; choose another name")
    return dest


def export_training_set(rows: pd.DataFrame, dest: Path, make_zip: bool = False) -> ExportResult:
    """Copy each scan's image into dest/images and write dest/labels.csv; optionally zip the folder.

    `rows` has columns scan_id, source_path, labels (list of class names). Missing images are skipped and named.
    """
    if rows.empty:
        raise ExportError("no labelled scans to export")
    images = dest / "images"
    try:
        images.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ExportError(f"cannot create {images}: {exc.strerror}") from None
    written, missing = [], []
    for scan_id, source, labels in zip(rows["scan_id"], rows["source_path"], rows["labels"], strict=True):
        src = Path(source)
        if not src.is_file():
            missing.append(str(scan_id))
            continue
        name = f"images/{scan_id}{src.suffix.lower()}"
        shutil.copyfile(src, dest / name)
        written.append((name, "|".join(sorted(labels if labels is not None else []))))
    labels_csv = dest / "labels.csv"
    with labels_csv.open("w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(["file", "labels"])
        out.writerows(written)
    archive = Path(shutil.make_archive(str(dest), "zip", root_dir=dest)) if make_zip else None
    return ExportResult(dest, labels_csv, len(written), tuple(missing), archive)
