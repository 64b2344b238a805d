"""The store's one writer: a thread that group-commits queued write operations in single transactions.

`submit(op)` blocks until the transaction containing `op` has COMMITted and returns its result (or raises its
error). The thread takes the first queued op, gathers more for up to `wait_s` or until `batch_max` records are
waiting, and runs them in order in one transaction; consecutive ingests are merged into one Arrow append per
table. Ops check before they write and raise an XscreenError before touching anything (see store/ops.py `write`), so
a refused op does not spoil its group; any other failure rolls the group back and replays each op alone.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import duckdb

from store.audit_sampling import AuditDesign
from store.ingest import ingest_batches
from store.wire import Prepared
from xscreen.errors import StoreError, XscreenError

log = logging.getLogger(__name__)


@dataclass
class Op:
    """One queued write: `fn(cursor, now)`, or for ingest the prepared batch (merged with its neighbours)."""

    fn: Callable[[duckdb.DuckDBPyConnection, datetime], Any] | None
    batch: Prepared | None = None
    weight: int = 1  # records it writes, counted against batch_max
    exclusive: bool = False  # run alone, outside any transaction (CHECKPOINT + file copy for snapshots)
    future: Future[Any] = field(default_factory=Future)


class GroupCommitWriter:
    """Owns the write cursor of `con` and the thread that uses it."""

    def __init__(self, con: duckdb.DuckDBPyConnection, batch_max: int, wait_s: float,
                 clock: Callable[[], datetime], audit: AuditDesign | None = None) -> None:
        self._cursor = con.cursor()
        self._audit = audit or AuditDesign()
        self._batch_max = max(1, batch_max)
        self._wait_s = max(0.0, wait_s)
        self._clock = clock
        self._queue: queue.Queue[Op | None] = queue.Queue()
        self._held: Op | None = None  # an exclusive op met while gathering a group: it runs next, alone
        self._closed = False
        self._thread = threading.Thread(target=self._loop, name="store-writer", daemon=True)
        self._thread.start()

    def submit(self, op: Op) -> Any:
        if self._closed:
            raise StoreError("the store is closed")
        self._queue.put(op)
        return op.future.result()

    def close(self) -> None:
        """Commit what is queued, then stop the thread and close the cursor. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._queue.put(None)
        self._thread.join()
        self._cursor.close()

    def _gather(self, first: Op) -> tuple[list[Op], bool]:
        """First op plus whatever arrives within the wait, up to the batch size; True if asked to stop."""
        group, weight = [first], first.weight
        deadline = time.monotonic() + self._wait_s
        while weight < self._batch_max:
            remaining = deadline - time.monotonic()
            try:
                op = self._queue.get(timeout=remaining) if remaining > 0 else self._queue.get_nowait()
            except queue.Empty:
                break
            if op is None:
                return group, True
            if op.exclusive:
                self._held = op
                break
            group.append(op)
            weight += op.weight
        return group, False

    def _loop(self) -> None:
        stop = False
        while not stop:
            first, self._held = (self._held or self._queue.get()), None
            if first is None:
                break
            if first.exclusive:
                self._run_exclusive(first)
                continue
            group, stop = self._gather(first)
            self._commit(group)
        if self._held is not None:
            self._run_exclusive(self._held)
        while not self._queue.empty():  # what was queued before close: no caller waits forever
            op = self._queue.get_nowait()
            if op is not None:
                self._commit([op])

    def _run_exclusive(self, op: Op) -> None:
        assert op.fn is not None
        try:
            op.future.set_result(op.fn(self._cursor, self._clock()))
        except XscreenError as err:
            op.future.set_exception(err)
        except Exception as exc:
            log.exception("exclusive store operation failed")
            op.future.set_exception(StoreError(f"operation failed: {exc}"))

    def _commit(self, group: list[Op]) -> None:
        cur = self._cursor
        try:
            cur.execute("BEGIN TRANSACTION")
            outcomes = self._run_group(group, self._clock())
            cur.execute("COMMIT")
        except Exception as exc:  # unexpected: undo the group, then give each op its own transaction
            try:
                cur.execute("ROLLBACK")
            except duckdb.Error:
                pass
            if len(group) == 1:
                log.exception("store write failed")
                group[0].future.set_exception(exc if isinstance(exc, XscreenError) else
                                              StoreError(f"write failed: {exc}"))
                return
            for op in group:
                self._commit([op])
            return
        for op, outcome in zip(group, outcomes, strict=True):
            if isinstance(outcome, XscreenError):
                op.future.set_exception(outcome)
            else:
                op.future.set_result(outcome)

    def _run_group(self, group: list[Op], now: datetime) -> list[Any]:
        """Run the ops in order inside the open transaction; runs of ingests become one merged ingest."""
        outcomes: list[Any] = []
        i = 0
        while i < len(group):
            if group[i].batch is not None:
                j = i
                while j < len(group) and group[j].batch is not None:
                    j += 1
                outcomes.extend(ingest_batches(self._cursor, [op.batch for op in group[i:j] if op.batch], now,
                                               audit=self._audit))
                i = j
                continue
            fn = group[i].fn
            assert fn is not None
            try:
                outcomes.append(fn(self._cursor, now))
            except XscreenError as err:  # refused before writing: the rest of the group still commits
                outcomes.append(err)
            i += 1
        return outcomes
