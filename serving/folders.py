"""Which files in the scanner folders are scans, and listing them: the naming rules the live watcher and the
start-up catch-up share (so both see the same files, at any depth, skipping hidden folders), and the
rename-pairing window of watchdog's inotify emitter. No Ray here.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from pathlib import Path

from serving.scanfile import TEMP_SUFFIXES

SIDECAR_SUFFIX = ".json"


def set_move_pairing_window(seconds: float) -> None:
    """How long watchdog's inotify emitter holds an IN_MOVED_FROM to pair it with its IN_MOVED_TO (process-wide).

    A writer that renames `.x.tmp` to `x.png` inside a drop folder (the simulator, many scanners) makes that pair.
    watchdog (7.x) holds the first half for 0.5 s, and when its reader thread takes the first half alone its
    queue *sleeps* out the whole delay even though the second half arrives microseconds later (DelayedQueue.get
    sleeps rather than waiting on its condition), so every later event of every scanner waits behind it: the
    0.5-0.8 s latency outliers of the serving benchmark. Both halves come from one rename(2), so a window of
    milliseconds pairs them as well; a half left unpaired is still reported (as a creation or a deletion), and
    the watcher treats a created final name like a rename into place. Applies to watches scheduled afterwards.
    """
    try:
        from watchdog.observers.inotify_move_event_grouper import InotifyMoveEventGrouper
    except ImportError:  # not Linux, or a watchdog without the grouper: nothing is held
        return
    InotifyMoveEventGrouper.delay = seconds


def is_candidate(path: Path) -> bool:
    """True for a file name the ingest should see: not a dotfile/temp name, not a sidecar."""
    name = path.name
    if not name or name.startswith(".") or name.endswith(TEMP_SUFFIXES):
        return False
    return not name.lower().endswith(SIDECAR_SUFFIX)


def is_leftover(path: Path) -> bool:
    """A hidden or temporary name (not a sidecar): handed on only once it has lain unchanged a long while."""
    return bool(path.name) and not is_candidate(path) and not path.name.lower().endswith(SIDECAR_SUFFIX)


def in_hidden_folder(path: Path, root: Path) -> bool:
    """True when a folder between `root` and `path` is hidden (a scanner's staging area): never handed on."""
    try:
        parts = path.relative_to(root).parts[:-1]
    except ValueError:
        return True
    return any(part.startswith(".") for part in parts)


MAX_DEPTH = 16  # folder levels under the inbox the catch-up walks (the live watch is recursive too)


def scan_folder(root: Path, *, leftovers_older_than: float | None = None) -> list[Path]:
    """Every candidate file under `root`, at any depth outside hidden folders (what the live watch sees), oldest
    first; with `leftovers_older_than` (seconds), also hidden/temporary names not modified for that long."""
    found: list[tuple[float, Path]] = []
    if not root.is_dir():
        return []
    now = time.time()
    for entry in _walk(root, depth=MAX_DEPTH):
        wanted = is_candidate(entry)
        if not wanted and leftovers_older_than is None:
            continue
        try:
            mtime = entry.lstat().st_mtime
        except OSError:
            continue  # removed while listing
        if wanted or (is_leftover(entry) and now - mtime >= leftovers_older_than):  # type: ignore[operator]
            found.append((mtime, entry))
    return [p for _, p in sorted(found)]


def _walk(folder: Path, depth: int) -> Iterable[Path]:
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return
    for entry in entries:
        if entry.is_dir(follow_symlinks=False):
            if depth > 1 and not entry.name.startswith("."):
                yield from _walk(Path(entry.path), depth - 1)
        else:
            yield Path(entry.path)  # files and symlinks alike: the ingest judges symlinks


__all__ = ["MAX_DEPTH", "in_hidden_folder", "is_candidate", "is_leftover", "scan_folder", "set_move_pairing_window"]
