"""Housekeeping of the scan folders: archive layout and retention, rescoring late-completed quarantined files,
the cap on refused uploads, and orphan spool temp files. Plain functions and one thread; no Ray here.

- Archive: a processed scan moves to `archive/<scanner>/<YYYY-MM-DD>/<scan_id>_<name>` (day of receipt, UTC);
  a scored upload's bytes are kept the same way under `uploads/`. The name is a function of the content and the
  file, so a crash between spooling the verdict (which records this location) and the move is repaired by the
  next catch-up: the re-delivery is a duplicate and moves to the same place. Day folders older than
  `serving.archive_retention_days` (and, for uploads, beyond `serving.uploads_max_bytes`) are deleted whole,
  after the store has been told that their images expired.
- Rechecks: a file quarantined as truncated or corrupt may be a slow writer that was still writing (it keeps
  writing into the same inode after the move). While a recheck window lasts, a quarantined file whose size or
  mtime changed is read again; once it decodes, it is moved back to where it came from and scored as usual.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import stat
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)
RECHECK_CODES = frozenset({"truncated", "corrupt"})
TMP_ORPHAN_AGE_S = 300.0  # a spool temp file this old has no writer left (a write takes milliseconds)


def archive_dest(archive_dir: Path, scanner_id: str, scan_id: str, name: str, received_at: datetime) -> Path:
    """Where a processed scan is kept: one folder per scanner and UTC day; the scan id makes the name unique."""
    day = received_at.astimezone(UTC).date().isoformat()
    return archive_dir / scanner_id / day / f"{scan_id}_{name}"


def expire_archive(archive_dir: Path, retention_days: float, now: datetime,
                   forget: Callable[[Path], Any] | None = None, max_bytes: int | None = None) -> list[Path]:
    """Delete day folders entirely older than the retention (0 keeps them forever), then, above `max_bytes`,
    the oldest day folders until under it; returns the folders deleted.

    `forget(folder)` tells the store first that the images under the folder expire: a folder is deleted only
    once the store knows, so the store never shows an image as kept that is gone (a failure leaves the folder
    for the next round)."""
    if not archive_dir.is_dir():
        return []
    days = _day_folders(archive_dir)
    cutoff = (now - timedelta(days=retention_days)).astimezone(UTC).date() if retention_days > 0 else None
    doomed = [d for day, d in days if cutoff is not None and day < cutoff]
    if max_bytes is not None:
        sizes = {d: _folder_bytes(d) for _, d in days}
        total = sum(size for d, size in sizes.items() if d not in doomed)
        for _, d in days:  # oldest day first
            if total <= max_bytes:
                break
            if d not in doomed:
                doomed.append(d)
                total -= sizes[d]
    removed = [d for d in doomed if _expire(d, forget)]
    if removed:
        log.info("%s: deleted %d day folder(s) (retention %g days, cap %s bytes)", archive_dir, len(removed),
                 retention_days, max_bytes)
    return removed


def _day_folders(root: Path) -> list[tuple[date, Path]]:
    """(day, folder) of every `<scanner>/<YYYY-MM-DD>` folder under `root`, oldest first."""
    found = []
    for scanner in (p for p in root.iterdir() if p.is_dir() and not p.is_symlink()):
        for day_dir in (p for p in scanner.iterdir() if p.is_dir() and not p.is_symlink()):
            day = _parse_day(day_dir.name)
            if day is not None:
                found.append((day, day_dir))
    return sorted(found)


def _folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file() and not p.is_symlink())


def _expire(folder: Path, forget: Callable[[Path], Any] | None) -> bool:
    """Tell the store, then delete; False (folder kept) when the store could not be told."""
    if forget is not None:
        try:
            forget(folder)
        except Exception as exc:  # noqa: BLE001 -- the store is down or refused: keep the images for now
            log.warning("could not tell the store that %s expires (%s); keeping it until the next round", folder,
                        exc)
            return False
    shutil.rmtree(folder, ignore_errors=True)
    return True


def _parse_day(text: str) -> date | None:
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None


def clean_spool_temp(spool_dir: Path, older_than_s: float = TMP_ORPHAN_AGE_S) -> int:
    """Delete spool temp files left by a writer that died mid-write (spool/.tmp/*.tmp older than the age)."""
    tmp_dir = spool_dir / ".tmp"
    if not tmp_dir.is_dir():
        return 0
    now, removed = time.time(), 0
    for path in tmp_dir.iterdir():
        try:
            if path.is_file() and not path.is_symlink() and now - path.stat().st_mtime >= older_than_s:
                path.unlink()
                removed += 1
        except OSError:
            continue
    if removed:
        log.info("removed %d orphan spool temp file(s) from %s", removed, tmp_dir)
    return removed


@dataclass
class _Watched:
    origin: Path
    size: int
    mtime_ns: int
    until: float


class Rechecks:
    """Quarantined files that may still be completed by their writer; `run()` restores the ones that now decode."""

    def __init__(self, read: Callable[[bytes, str], Any], window_s: float = 600.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._read = read
        self._window_s = window_s
        self._clock = clock
        self._lock = threading.Lock()
        self._watched: dict[Path, _Watched] = {}

    def watch(self, origin: Path, quarantined: Path) -> None:
        try:
            st = quarantined.stat()
        except OSError:
            return
        with self._lock:
            self._watched[quarantined] = _Watched(origin, st.st_size, st.st_mtime_ns, self._clock() + self._window_s)

    def __len__(self) -> int:
        with self._lock:
            return len(self._watched)

    def run(self) -> list[Path]:
        """Restore each watched file that changed since it was quarantined and now decodes; returns the origins."""
        now = self._clock()
        with self._lock:
            items = list(self._watched.items())
        restored: list[Path] = []
        for path, w in items:
            outcome = self._check(path, w, now)
            if outcome is None:
                continue
            with self._lock:
                self._watched.pop(path, None)
            if outcome:
                restored.append(w.origin)
        return restored

    def _check(self, path: Path, w: _Watched, now: float) -> bool | None:
        """True restored, False given up (gone or window over), None keep watching."""
        try:
            st = path.stat()
        except OSError:
            return False
        if (st.st_size, st.st_mtime_ns) == (w.size, w.mtime_ns):
            return False if now > w.until else None
        w.size, w.mtime_ns = st.st_size, st.st_mtime_ns
        try:
            self._read(path.read_bytes(), path.name)
        except Exception:  # noqa: BLE001 -- still incomplete: keep watching
            return False if now > w.until else None
        dest = w.origin if not w.origin.exists() else w.origin.with_name(f"{w.origin.stem}.rescored{w.origin.suffix}")
        try:
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.replace(path, dest)  # back into the inbox: the watcher hands it on like any new file
        except OSError as exc:
            log.warning("could not restore %s to %s: %s", path, dest, exc)
            return False
        log.warning("quarantined file %s now decodes: restored to %s to be scored", path, dest)
        return True


def cap_folder(folder: Path, max_files: int, max_bytes: int) -> int:
    """Delete the oldest files under `folder` until at most `max_files` files and `max_bytes` bytes remain.
    Returns how many were deleted. Keeps bad uploads (junk up to the upload limit each) from filling the disk."""
    files: list[tuple[float, int, Path]] = []
    for path in folder.rglob("*"):
        try:
            st = path.lstat()
        except OSError:
            continue
        if stat.S_ISREG(st.st_mode):
            files.append((st.st_mtime, st.st_size, path))
    files.sort()
    total = sum(size for _, size, _ in files)
    removed = 0
    while files and (len(files) > max_files or total > max_bytes):
        _, size, path = files.pop(0)
        path.unlink(missing_ok=True)
        total -= size
        removed += 1
    if removed:
        log.info("expired %d oldest refused upload(s) under %s (cap %d files, %d bytes)", removed, folder,
                 max_files, max_bytes)
    return removed


def unique_path(folder: Path, name: str) -> Path:
    """A destination that never overwrites an earlier quarantined/archived file of the same name."""
    dest = folder / name
    if not dest.exists() and not dest.is_symlink():
        return dest
    return folder / f"{Path(name).stem}.{uuid.uuid4().hex[:8]}{Path(name).suffix}"


def move_sidecar(src: Path, dest: Path) -> None:
    sidecar = src.with_name(src.stem + ".json")
    if sidecar.is_file() and not sidecar.is_symlink():
        try:
            os.replace(sidecar, dest.with_name(dest.stem + ".json"))
        except OSError as exc:
            log.warning("could not move sidecar %s: %s", sidecar, exc)


def path_identity(path: Path) -> str:
    try:
        st = path.lstat()
        key = f"{path}|{st.st_size}|{st.st_mtime_ns}"
    except OSError:
        key = f"{path}|gone|{time.time_ns()}"
    return hashlib.sha256(key.encode()).hexdigest()


class Housekeeper:
    """A daemon thread running `tasks` every `interval_s` seconds (each task's failure is logged, never fatal)."""

    def __init__(self, tasks: list[Callable[[], Any]], interval_s: float = 2.0, name: str = "xscreen-housekeeping") -> None:
        self._tasks = tasks
        self._interval_s = interval_s
        self._name = name
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name=self._name, daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None

    def _loop(self) -> None:
        while not self._stop.wait(self._interval_s):
            for task in self._tasks:
                try:
                    task()
                except Exception:
                    log.exception("housekeeping task %s failed", getattr(task, "__name__", task))


__all__ = ["Housekeeper", "RECHECK_CODES", "Rechecks", "archive_dest", "cap_folder", "clean_spool_temp",
           "expire_archive", "move_sidecar", "path_identity", "unique_path"]
