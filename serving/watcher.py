"""Watch the scanner drop folders and hand each finished image file, batched, to an injected callable.

A file is *finished* when its writer is done with it: it was renamed into place (Moved, or a Created that no
writer opened), its writer closed it (Closed), or, for writers whose close we never see, its size and mtime
stayed unchanged for `size_stable_s`. Temp names, dotfiles and sidecar `.json` files are never handed on (a
sidecar is read alongside its image by the ingest). Files that become ready together go on in one call of
up to `batch_max` paths, so the model sees batches formed at the source. No Ray here.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from watchdog.events import (
    DirCreatedEvent,
    FileClosedEvent,
    FileCreatedEvent,
    FileDeletedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileOpenedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers import Observer

from serving.scanfile import within

log = logging.getLogger(__name__)

PathsHandler = Callable[[list[Path]], object]
TEMP_SUFFIXES = (".tmp", ".part", ".partial", ".crdownload", ".swp", "~")
SIDECAR_SUFFIX = ".json"
# inotify queues IN_CREATE and the writer's IN_OPEN from one open(O_CREAT) call back to back; a Created
# with no Opened this long after it was a rename from outside the watched tree (already complete).
RENAME_GRACE_S = 0.02
TICK_S = 0.01
HANDED_TTL_S = 3600.0  # how long a handed-on path is remembered for the final sweep at stop


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


def scan_folder(root: Path) -> list[Path]:
    """Every candidate file under `root` (one level of scanner folders plus the root), oldest first."""
    found: list[tuple[float, Path]] = []
    if not root.is_dir():
        return []
    for entry in _walk(root, depth=2):
        if is_candidate(entry):
            try:
                found.append((entry.lstat().st_mtime, entry))
            except OSError:
                continue  # removed while listing
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


@dataclass
class _Pending:
    """A file seen being created or written whose writer may not be done yet."""

    seen_at: float
    writer_open: bool
    size: int
    mtime_ns: int
    stable_since: float


class _Events(FileSystemEventHandler):
    """Translates watchdog callbacks (observer thread) into calls on the Watcher."""

    def __init__(self, watcher: Watcher) -> None:
        self._w = watcher

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.is_directory:
            return
        if isinstance(event, FileMovedEvent):
            self._w._on_moved(Path(os.fsdecode(event.src_path)), Path(os.fsdecode(event.dest_path)))
        elif isinstance(event, FileCreatedEvent):
            self._w._on_created(Path(os.fsdecode(event.src_path)))
        elif isinstance(event, FileOpenedEvent):
            self._w._on_opened(Path(os.fsdecode(event.src_path)))
        elif isinstance(event, FileModifiedEvent):
            self._w._on_modified(Path(os.fsdecode(event.src_path)))
        elif isinstance(event, FileClosedEvent):
            self._w._ready(Path(os.fsdecode(event.src_path)))
        elif isinstance(event, FileDeletedEvent):
            self._w._forget(Path(os.fsdecode(event.src_path)))


class Watcher:
    """Notices finished files under `inbox/<scanner-id>/` and calls `handler(list_of_paths)` from one thread.

    `handler` is whatever should process the files (a test passes `list.append`, production the ingest
    pipeline); it is called with at most `batch_max` paths, from at most `concurrency` threads at once (two
    let the next batch be read and hashed while the model scores the previous one; 1 = strictly in order).
    """

    def __init__(
        self,
        inbox: Path,
        handler: PathsHandler,
        *,
        batch_max: int = 32,
        size_stable_s: float = 0.5,
        concurrency: int = 2,
        move_pairing_s: float = 0.02,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.inbox = inbox
        self._move_pairing_s = move_pairing_s
        self._handler = handler
        self._batch_max = batch_max
        self._size_stable_s = size_stable_s
        self._clock = clock
        self._lock = threading.Lock()
        self._pending: dict[Path, _Pending] = {}
        self._ready_q: queue.Queue[Path] = queue.Queue()
        self._queued: set[Path] = set()  # ready but not yet handed on: avoid double hand-off
        self._stop = threading.Event()
        self._observer: Observer | None = None  # type: ignore[valid-type]
        self._threads: list[threading.Thread] = []
        self.handled = 0
        self._concurrency = max(1, concurrency)
        self._slots = threading.Semaphore(self._concurrency)
        self._pool: ThreadPoolExecutor | None = None
        self._handed: dict[Path, float] = {}  # path -> when handed on (pruned after HANDED_TTL_S)
        self._started_wall = time.time()

    # ---- life cycle -------------------------------------------------------------------------------
    def start(self, *, reconcile: bool = True) -> None:
        """Start watching; with `reconcile`, first hand on every file already in the folders."""
        self.inbox.mkdir(parents=True, exist_ok=True)
        self._stop.clear()
        set_move_pairing_window(self._move_pairing_s)
        observer = Observer()
        observer.schedule(
            _Events(self),
            str(self.inbox),
            recursive=True,
            event_filter=[FileCreatedEvent, FileMovedEvent, FileClosedEvent, FileOpenedEvent,
                          FileModifiedEvent, FileDeletedEvent, DirCreatedEvent],
        )
        observer.start()  # watch first, then list: a file arriving in between is seen at least once
        self._observer = observer
        if reconcile:
            self.reconcile()
        self._pool = ThreadPoolExecutor(self._concurrency, thread_name_prefix="xscreen-ingest")
        self._started_wall = time.time()
        self._threads = [
            threading.Thread(target=self._tick_loop, name="xscreen-watcher-tick", daemon=True),
            threading.Thread(target=self._dispatch_loop, name="xscreen-watcher-dispatch", daemon=True),
        ]
        for thread in self._threads:
            thread.start()
        log.info("watching %s", self.inbox)

    def stop(self, timeout: float = 10.0) -> None:
        """Stop watching. Every finished file that arrived before the stop is handed on before this returns."""
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(timeout)
            self._observer = None
            self._final_sweep()
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout)
        self._threads = []
        if self._pool is not None:
            self._pool.shutdown(wait=True)  # batches already handed on finish (and are spooled)
            self._pool = None

    def __enter__(self) -> Watcher:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _final_sweep(self) -> None:
        """Hand on files whose events were still in flight when the observer stopped (a clean stop loses none).

        Only files written since the watcher started and never handed on; a file whose writer is still busy
        is left for the next start's reconcile rather than read half-written.
        """
        with self._lock:
            busy = {p for p, pend in self._pending.items() if pend.writer_open}
            handed = set(self._handed)
        since = max(self._started_wall, time.time() - HANDED_TTL_S) - 1.0  # handed-on paths older are forgotten
        for path in scan_folder(self.inbox):
            try:
                recent = path.lstat().st_mtime >= since
            except OSError:
                continue
            if recent and path not in handed and path not in busy:
                self._ready(path)

    def backlog(self) -> int:
        """Finished files not yet handed on (a metrics gauge)."""
        return self._ready_q.qsize()

    def reconcile(self) -> int:
        """Queue every candidate file already in the folders (the ingest skips content the store has seen)."""
        files = scan_folder(self.inbox)
        for path in files:
            self._ready(path)
        log.info("reconcile: %d file(s) already in %s", len(files), self.inbox)
        return len(files)

    # ---- event handling (observer thread) ---------------------------------------------------------
    def _on_created(self, path: Path) -> None:
        if not is_candidate(path):
            return
        stat = _stat(path)
        if stat is None:
            return
        now = self._clock()
        with self._lock:
            self._pending[path] = _Pending(now, False, stat[0], stat[1], now)

    def _on_opened(self, path: Path) -> None:
        with self._lock:
            pending = self._pending.get(path)
            if pending is not None:
                pending.writer_open = True  # written in place: wait for Closed or a stable size

    def _on_modified(self, path: Path) -> None:
        if not is_candidate(path):
            return
        with self._lock:
            pending = self._pending.get(path)
            if pending is not None:
                pending.writer_open = True
                return
        stat = _stat(path)
        if stat is not None and path not in self._queued:
            now = self._clock()
            with self._lock:  # rewritten in place without a Created: treat like a new writer
                self._pending[path] = _Pending(now, True, stat[0], stat[1], now)

    def _on_moved(self, src: Path, dest: Path) -> None:
        self._forget(src)
        if within(dest, self.inbox):
            self._ready(dest)

    def _forget(self, path: Path) -> None:
        with self._lock:
            self._pending.pop(path, None)

    def _ready(self, path: Path) -> None:
        if not is_candidate(path):
            return
        with self._lock:
            self._pending.pop(path, None)
            if path in self._queued:
                return
            self._queued.add(path)
        self._ready_q.put(path)

    # ---- threads ----------------------------------------------------------------------------------
    def _tick_loop(self) -> None:
        last_prune = self._clock()
        while not self._stop.wait(TICK_S):
            for path in self._due():
                self._ready(path)
            if self._clock() - last_prune > 60:
                last_prune = self._clock()
                with self._lock:
                    self._handed = {p: t for p, t in self._handed.items() if last_prune - t < HANDED_TTL_S}

    def _due(self) -> list[Path]:
        """Pending files whose writer is done: renamed in (no writer seen) or size-stable long enough."""
        now = self._clock()
        due: list[Path] = []
        with self._lock:
            items = list(self._pending.items())
        for path, p in items:
            stat = _stat(path)
            if stat is None:
                self._forget(path)
                continue
            if (stat[0], stat[1]) != (p.size, p.mtime_ns):
                p.size, p.mtime_ns, p.stable_since, p.writer_open = stat[0], stat[1], now, True
                continue
            if not p.writer_open and now - p.seen_at >= RENAME_GRACE_S:
                due.append(path)
            elif p.writer_open and now - p.stable_since >= self._size_stable_s:
                due.append(path)
        return due

    def _dispatch_loop(self) -> None:
        while True:
            try:
                first = self._ready_q.get(timeout=0.05)
            except queue.Empty:
                if self._stop.is_set():
                    return
                continue
            self._slots.acquire()  # wait for a free worker first: meanwhile the batch keeps growing
            batch = [first]
            while len(batch) < self._batch_max:  # whatever else is already ready goes in the same call
                try:
                    batch.append(self._ready_q.get_nowait())
                except queue.Empty:
                    break
            now = self._clock()
            with self._lock:
                self._queued.difference_update(batch)
                self._handed.update((p, now) for p in batch)
            assert self._pool is not None
            self._pool.submit(self._hand_on, batch)

    def _hand_on(self, batch: list[Path]) -> None:
        try:
            self._handler(batch)
            with self._lock:
                self.handled += len(batch)
        except Exception:  # a failing handler must not stop the stream; files stay for the next reconcile
            log.exception("handler failed on %d file(s); they stay in the inbox for the next reconcile", len(batch))
        finally:
            self._slots.release()


def _stat(path: Path) -> tuple[int, int] | None:
    try:
        st = path.lstat()
    except OSError:
        return None
    return st.st_size, st.st_mtime_ns

