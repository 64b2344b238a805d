"""Watch the scanner drop folders and hand each finished image file, batched, to an injected callable.

A file is *finished* when its writer is done with it: it was renamed into place (Moved, or a Created that no
writer opened), its writer closed it (Closed), or, for writers whose close we never see, its size and mtime
stayed unchanged for `size_stable_s`. Temp names, dotfiles and sidecar `.json` files are never handed on (a
sidecar is read alongside its image by the ingest). Files that become ready together go on in one call of
up to `batch_max` paths, so the model sees batches formed at the source. No Ray here.

Nothing handed on is ever dropped: when the handler raises, or returns a report whose `retry` lists paths
(scoring failed, the store answered 500, a writer is still busy), those files are handed on again after a
backoff (`retry_base_s` doubling up to `retry_max_s`), for as long as they stay in the inbox. The watcher
knows every file noticed and not yet done, so it can say how many wait and how long the oldest has waited.
Files in hidden folders (a scanner's staging area) are never handed on, by the live watch and the start-up
catch-up alike; a hidden or temporary *name* left unchanged for `ignored_after_s` is handed on so the ingest
records it (reason `ignored_name`) instead of it lying there unseen.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections.abc import Callable
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

from serving.folders import (
    in_hidden_folder,
    is_candidate,
    is_leftover,
    scan_folder,
    set_move_pairing_window,
)
from serving.scanfile import within

log = logging.getLogger(__name__)

PathsHandler = Callable[[list[Path]], object]
# inotify queues IN_CREATE and the writer's IN_OPEN from one open(O_CREAT) call back to back; a Created
# with no Opened this long after it was a rename from outside the watched tree (already complete).
RENAME_GRACE_S = 0.02
TICK_S = 0.01
HANDED_TTL_S = 3600.0  # how long a handed-on path is remembered for the final sweep at stop


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
            self._w._on_closed(Path(os.fsdecode(event.src_path)))
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
        retry_base_s: float = 0.5,
        retry_max_s: float = 15.0,
        ignored_after_s: float = 60.0,
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
        self._retry_base_s, self._retry_max_s = retry_base_s, retry_max_s
        self._ignored_after_s = ignored_after_s
        self._noticed: dict[Path, float] = {}  # handed on (or about to be) and not yet done: path -> first seen
        self._retry: dict[Path, float] = {}  # path -> when to hand it on again
        self._attempts: dict[Path, int] = {}  # path -> failed hand-offs so far
        self._leftovers: dict[Path, tuple[int, int, float]] = {}  # hidden/temp names: (size, mtime_ns, since)
        self.retried = 0

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

    def alive(self) -> bool:
        """True while the observer and the watcher's own threads all run (False before start and after stop)."""
        observer = self._observer
        return observer is not None and observer.is_alive() and all(t.is_alive() for t in self._threads)

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
        """Finished files not yet done: queued, being scored, or waiting to be retried (a metrics gauge)."""
        with self._lock:
            return len(self._noticed)

    def pending(self) -> tuple[int, float]:
        """(files not yet done, seconds the oldest of them has waited since it was first noticed)."""
        now = self._clock()
        with self._lock:
            oldest = min(self._noticed.values(), default=now)
            return len(self._noticed), max(0.0, now - oldest)

    def reconcile(self) -> int:
        """Queue every file already in the folders, at any depth (the ingest skips content the store has seen);
        hidden/temporary names that have lain unchanged for `ignored_after_s` go too, to be recorded."""
        files = scan_folder(self.inbox, leftovers_older_than=self._ignored_after_s)
        for path in files:
            self._ready(path, leftover_ok=True)
        log.info("reconcile: %d file(s) already in %s", len(files), self.inbox)
        return len(files)

    # ---- event handling (observer thread) ---------------------------------------------------------
    def _on_created(self, path: Path) -> None:
        if in_hidden_folder(path, self.inbox):
            return
        if not is_candidate(path):
            self._note_leftover(path)
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
        if not is_candidate(path) or in_hidden_folder(path, self.inbox):
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
            if is_leftover(dest) and not in_hidden_folder(dest, self.inbox):
                self._note_leftover(dest)
            self._ready(dest)

    def _on_closed(self, path: Path) -> None:
        if is_leftover(path) and not in_hidden_folder(path, self.inbox):
            self._note_leftover(path)
        self._ready(path)

    def _forget(self, path: Path) -> None:
        """The file is gone (deleted, or moved away by the ingest or its writer): nothing left to do for it."""
        with self._lock:
            self._pending.pop(path, None)
            self._leftovers.pop(path, None)
            if path not in self._queued:  # a queued or in-flight path is settled by its hand-off
                self._retry.pop(path, None)
                self._attempts.pop(path, None)
                self._noticed.pop(path, None)

    def _note_leftover(self, path: Path) -> None:
        stat = _stat(path)
        if stat is not None:
            with self._lock:
                self._leftovers[path] = (stat[0], stat[1], self._clock())

    def _ready(self, path: Path, *, leftover_ok: bool = False) -> None:
        if in_hidden_folder(path, self.inbox) or not (is_candidate(path) or (leftover_ok and is_leftover(path))):
            return
        with self._lock:
            self._pending.pop(path, None)
            self._retry.pop(path, None)  # an event says the file changed: try it now rather than after the backoff
            self._noticed.setdefault(path, self._clock())
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
            for path in self._due_retries():
                self._ready(path, leftover_ok=True)
            for path in self._due_leftovers():
                self._ready(path, leftover_ok=True)
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

    def _due_retries(self) -> list[Path]:
        now = self._clock()
        with self._lock:
            due = [p for p, when in self._retry.items() if when <= now]
            for path in due:
                del self._retry[path]
        return due

    def _due_leftovers(self) -> list[Path]:
        """Hidden/temporary names unchanged for `ignored_after_s`: abandoned, so the ingest records them."""
        now = self._clock()
        with self._lock:
            items = [(p, v) for p, v in self._leftovers.items() if now - v[2] >= self._ignored_after_s]
        due = []
        for path, (size, mtime_ns, _) in items:
            stat = _stat(path)
            with self._lock:
                if stat is None:
                    self._leftovers.pop(path, None)
                elif (stat[0], stat[1]) != (size, mtime_ns):
                    self._leftovers[path] = (stat[0], stat[1], now)  # still being written: start again
                else:
                    self._leftovers.pop(path, None)
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
            result = self._handler(batch)
            retry = set(getattr(result, "retry", None) or ())
        except Exception:  # whatever failed (store 500, timeout, a bug), the files are handed on again later
            log.exception("handler failed on %d file(s); they will be retried", len(batch))
            retry = set(batch)
        try:
            self._settle(batch, retry)
        finally:
            self._slots.release()

    def _settle(self, batch: list[Path], retry: set[Path]) -> None:
        """Done files are forgotten; the others are handed on again after a backoff (never dropped)."""
        now = self._clock()
        with self._lock:
            self.handled += len(batch) - len(retry)
            for path in batch:
                if path not in retry:
                    self._noticed.pop(path, None)
                    self._attempts.pop(path, None)
                    continue
                attempts = self._attempts.get(path, 0) + 1
                self._attempts[path] = attempts
                delay = min(self._retry_max_s, self._retry_base_s * 2 ** (attempts - 1))
                if path not in self._queued:  # an event re-queued it meanwhile: that hand-off comes first
                    self._retry[path] = now + delay
                self.retried += 1
        if retry:
            log.warning("%d file(s) will be handed on again (next in up to %.1f s)", len(retry), self._retry_max_s)


def _stat(path: Path) -> tuple[int, int] | None:
    try:
        st = path.lstat()
    except OSError:
        return None
    return st.st_size, st.st_mtime_ns

