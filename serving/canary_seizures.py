"""Seizure signatures for known-answer canaries: the canary part of the threat library's real seizures, read from
the store once and re-read at most every `monitoring.canary_seizure_refresh_min`, and projected into a live scan of
a scanner each may be projected into (xray.seizures.usable_for).

Only the canary part (xray.seizures.seizure_part) is ever loaded: the training and certification parts teach and
certify the model, so a canary drawn from them would measure what the model has seen. A signature whose file is
missing or unreadable is logged and skipped (and tried again at the next refresh); a store that does not answer
keeps the signatures already loaded. Only the canary thread calls this, so the mail never waits for it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from xscreen.errors import ConfigError
from xscreen.records import SeizureRecord

if TYPE_CHECKING:
    from xray.threat_library import LibraryEntry

log = logging.getLogger(__name__)

ListSeizuresFn = Callable[[], Sequence[SeizureRecord]]


@dataclass(frozen=True)
class CanarySeizure:
    """One loaded canary-part seizure signature and the record it was cut for."""

    record: SeizureRecord
    entry: LibraryEntry

    @property
    def article(self) -> str:
        """The canary's provenance in the `canaries` table: `seizure:<seizure id>` (rendered ones: class:variant:k)."""
        return f"seizure:{self.record.seizure_id}"


class SeizureCanaries:
    """The canary-part seizure signatures, loaded from `folder` for the records `list_seizures` returns, at the
    first `refresh()` and then at most once every `refresh_s` seconds of `clock` (injected so tests control it)."""

    def __init__(self, list_seizures: ListSeizuresFn, folder: Path, *, refresh_s: float,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._list = list_seizures
        self._folder = folder
        self.refresh_s = refresh_s
        self._clock = clock
        self._due: float | None = None  # None: never read
        self._loaded: dict[str, CanarySeizure] = {}

    def refresh(self) -> None:
        """Re-read the records and load new signatures when the last read is `refresh_s` old (else nothing)."""
        from xray.seizures import seizure_part

        now = self._clock()
        if self._due is not None and now < self._due:
            return
        self._due = now + self.refresh_s
        try:
            records = [r for r in self._list() if seizure_part(r.scan_id) == "canary"]
        except Exception:  # noqa: BLE001 -- the store being away must not stop canaries: keep what is loaded
            log.exception("could not list seizures for canaries; keeping the %d loaded", len(self._loaded))
            return
        loaded = {}
        for rec in records:
            got = self._loaded.get(rec.seizure_id) or self._load(rec)
            if got is not None:
                loaded[rec.seizure_id] = got
        self._loaded = loaded

    def _load(self, rec: SeizureRecord) -> CanarySeizure | None:
        from xray.seizures import load_seizure

        try:
            return CanarySeizure(rec, load_seizure(self._folder, rec.seizure_id))
        except ConfigError as exc:
            log.warning("canary seizure skipped (tried again in %.0f s): %s", self.refresh_s, exc)
            return None

    def usable(self, scanner: str, *, dual_energy: bool, classes: Collection[str]) -> list[CanarySeizure]:
        """Loaded signatures of `classes` that may go into a scan of `scanner`: log-attenuation ones into any,
        colour/grey transmission maps only into their own scanner's pseudo-colour or grey scans."""
        from xray.seizures import usable_for

        return [s for s in self._loaded.values() if s.record.class_name in classes and usable_for(s.record, scanner)
                and (s.entry.kind == "attenuation" or not dual_energy)]


def fitted(entry: LibraryEntry, shape: tuple[int, int]) -> LibraryEntry:
    """A transmission map reduced (xray.seizures.rescaled) so that it lies inside an image of `shape` (H, W);
    as it is when it already does (a scanner's own images share its pitch: no resampling)."""
    from xray.seizures import rescaled

    (H, W), (h, w) = shape, entry.shape
    if entry.kind != "transmission" or (h <= H and w <= W):
        return entry
    return rescaled(entry, min(H / h, W / w))


def project_transmission_canary(image: Any, entry: LibraryEntry, rng: np.random.Generator,
                                ) -> tuple[Any, tuple[int, int]]:
    """A pseudo-colour or grey scan (xray.formats.ScanImage) with a seizure's transmission map pasted in at a random
    place, and the top-left (y, x) of the threat's mask box."""
    from xray.formats import ScanImage
    from xray.projection import project_transmission
    from xray.seizures import scan_pixels

    pixels = scan_pixels(image)  # (H, W, 3) colour or (H, W) grey uint8
    new, (x0, y0, _, _), _ = project_transmission(pixels, fitted(entry, pixels.shape[:2]), rng)
    if new.ndim == 2:
        out = ScanImage(None, None, None, image.source_format, 8, False, np.repeat(new[:, :, None], 3, axis=2), new)
    else:
        out = ScanImage(None, None, None, image.source_format, 8, False, new, new.max(axis=2))
    return out, (y0, x0)
