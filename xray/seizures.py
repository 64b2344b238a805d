"""Seizure signatures: cut from the region an officer marked on a confirmed threat (the store's SeizureRecord), kept
as one file per seizure under the library folder, and turned into threat-library entries for the scanners they may
be projected into.

A scan that kept raw dual-energy data gives an `attenuation` signature (log space, projects into any scanner); a
pseudo-colour or grey scan gives a per-channel `transmission` map, which only makes sense in images of the scanner
it came from (its palette, tone curve and blur are baked in). Every seizure of one scan lands in the same library
part (`seizure_part`), so a capture that teaches the model never also certifies it.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import zipfile
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from scipy.ndimage import zoom

from xray.threat_library import LibraryEntry, seizure_from_dual_energy, seizure_from_image
from xray.tip import article_part
from xscreen.errors import ConfigError
from xscreen.records import SeizureRecord

SEIZURE_ID = re.compile(r"[0-9a-f]{8,64}")  # the store's rule too (store/triage.py): nothing else reaches a path
ARRAYS = ("mask", "att_high", "att_low", "transmission")


def seizures_dir(library_dir: Path) -> Path:
    """Where seizure signatures are kept: `<paths.library>/seizures`."""
    return library_dir / "seizures"


def signature_path(folder: Path, seizure_id: str) -> Path:
    """`folder/<seizure_id>.npz`; ConfigError for an id that is not 8-64 lower-case hex digits (no other name,
    and so no other path, can be made from it)."""
    if not SEIZURE_ID.fullmatch(seizure_id):
        raise ConfigError(f"seizure id {seizure_id!r} must be 8-64 lower-case hex digits")
    return folder / f"{seizure_id}.npz"


def seizure_part(scan_id: str) -> str:
    """The library part (training / certification / canary) of every seizure cut from scan `scan_id`: fixed by
    the scan (a hash of its id, split 70/20/10 like rendered articles by xray.tip.article_part), so two regions
    marked on one capture never fall into two parts."""
    return article_part(int(hashlib.sha256(scan_id.encode()).hexdigest()[:12], 16))


def scan_pixels(image: Any) -> np.ndarray:
    """uint8 (H, W, 3) pseudo-colour, or (H, W) where the scan is grey (what xscreen adapt reads too)."""
    rgb = image.rgb8 if image.rgb8 is not None else np.clip(np.round(image.rgb * 255.0), 0, 255).astype(np.uint8)
    grey = bool(np.all(rgb[..., 0] == rgb[..., 1]) and np.all(rgb[..., 1] == rgb[..., 2]))
    return rgb[..., 0].copy() if grey else rgb


def cut_seizure(image: Any, rec: SeizureRecord) -> LibraryEntry:
    """The library entry cut from the decoded scan `image` (xray.formats.ScanImage) of `rec`: log-attenuation from
    the raw high/low planes when the record says `attenuation`, else the pseudo-colour (or grey) transmission."""
    box = (rec.box[0], rec.box[1], rec.box[2], rec.box[3])
    part = seizure_part(rec.scan_id)
    if rec.kind == "attenuation":
        if not image.dual_energy or image.low is None:
            raise ConfigError(f"seizure {rec.seizure_id}: scan {rec.scan_id} has no raw dual-energy planes")
        entry = seizure_from_dual_energy(image.high, image.low, box, rec.class_name, scan_id=rec.scan_id, part=part)
    else:
        entry = seizure_from_image(scan_pixels(image), box, rec.class_name, scan_id=rec.scan_id, part=part)
    meta = {"seizure_id": rec.seizure_id, "scanner_id": rec.scanner_id, "officer": rec.officer,
            "decision_id": rec.decision_id, "created_at": rec.created_at.isoformat()}
    return replace(entry, provenance=f"{entry.provenance}; seizure {rec.seizure_id} of scanner {rec.scanner_id}, "
                                     f"marked by {rec.officer} (decision {rec.decision_id})", meta=meta)


def save_seizure(entry: LibraryEntry, folder: Path, seizure_id: str) -> Path:
    """Write the entry to `folder/<seizure_id>.npz` (a temporary name renamed in: never half a file)."""
    path = signature_path(folder, seizure_id)
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {k: v for k in ARRAYS if (v := getattr(entry, k)) is not None}
    doc = {"kind": entry.kind, "class_name": entry.class_name, "article": entry.article, "part": entry.part,
           "provenance": entry.provenance, "version": entry.version, "pixel_mm": entry.pixel_mm, "meta": entry.meta}
    tmp = folder / f".{seizure_id}.tmp.npz"
    np.savez_compressed(tmp, doc=np.array(json.dumps(doc)), **arrays)  # type: ignore[arg-type]
    os.replace(tmp, path)
    return path


def load_seizure(folder: Path, seizure_id: str) -> LibraryEntry:
    """The entry save_seizure wrote (ConfigError when there is none, or when it cannot be read as one)."""
    path = signature_path(folder, seizure_id)
    if not path.is_file():
        raise ConfigError(f"seizure {seizure_id}: no signature at {path}")
    try:
        with np.load(path, allow_pickle=False) as z:
            doc = json.loads(str(z["doc"]))
            return LibraryEntry(**doc, **{k: z[k] for k in ARRAYS if k in z})
    except (OSError, ValueError, KeyError, TypeError, zipfile.BadZipFile) as exc:  # truncated, foreign, old layout
        raise ConfigError(f"seizure {seizure_id}: unreadable signature {path}: {exc}") from exc


def usable_for(rec: SeizureRecord, scanner: str) -> bool:
    """Whether `rec`'s signature may be projected into images of `scanner`: a log-attenuation signature into any,
    a transmission map only into its own scanner's."""
    return rec.kind == "attenuation" or rec.scanner_id == scanner


def seizure_entries(records: Sequence[SeizureRecord], folder: Path,
                    scanner: str) -> tuple[list[LibraryEntry], list[str]]:
    """Library entries of the recorded seizures usable for `scanner`, each in its part (seizure_part), and why any
    usable one was left out (its signature file is missing)."""
    entries, missing = [], []
    for rec in records:
        if not usable_for(rec, scanner):
            continue
        try:
            entries.append(replace(load_seizure(folder, rec.seizure_id), part=seizure_part(rec.scan_id)))
        except ConfigError as exc:
            missing.append(str(exc))
    return entries, missing


def rescaled(entry: LibraryEntry, factor: float) -> LibraryEntry:
    """A transmission entry at `factor` times its size (the scanner's images were reduced by that factor before
    adaptation); attenuation entries carry their pitch and are resampled when projected, so they are returned
    as they are."""
    if entry.transmission is None or abs(factor - 1.0) < 1e-6:
        return entry
    trans = np.clip(zoom(entry.transmission, (factor, factor, 1), order=1, grid_mode=True, mode="nearest"), 0, 1)
    mask = zoom(entry.mask.astype(np.float32), factor, order=0, grid_mode=True, mode="nearest") > 0.5
    return replace(entry, transmission=trans.astype(np.float32), mask=mask[:trans.shape[0], :trans.shape[1]],
                   pixel_mm=entry.pixel_mm / factor)
