"""`Store`: the one in-process owner of the DuckDB file; it runs every operation the domains declare (store/api.py).

Writes go through one `GroupCommitWriter` (store/writer.py): each call blocks until its transaction has
COMMITted. Each read runs on a fresh cursor that is closed when the read returns, so no read can leave a result
(and the read transaction under it) open behind it; reads see committed data only. The SQL of each operation
lives in its domain module; this class opens the file and wires operations to the writer and the cursors.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import duckdb

from store.api import StoreAPI, operation
from store.audit_sampling import AuditDesign
from store.fetch import first
from store.ingest import IngestResult
from store.migrations import migrate, preflight
from store.ops import StoreConfig
from store.ratelimit import LoginLimiter, LoginLimits
from store.wire import Prepared
from store.writer import GroupCommitWriter, Op
from xscreen.errors import StoreError, WrongStore
from xscreen.records import utcnow

log = logging.getLogger(__name__)
Clock = Callable[[], datetime]
HOME_ID_KEY = "home_id"  # settings_kv key of the home this file belongs to
T = TypeVar("T")


def bind_home(con: duckdb.DuckDBPyConnection, path: Path, home_id: str) -> None:
    """Record `home_id` in the file's settings the first time; WrongStore when it records another home's id."""
    row = first(con, "SELECT value FROM settings_kv WHERE key = ?", [HOME_ID_KEY])
    if row is None:
        con.execute("INSERT INTO settings_kv VALUES (?, to_json(?::VARCHAR), now(), 'system')", [HOME_ID_KEY, home_id])
        return
    recorded = json.loads(row[0])
    if recorded != home_id:
        raise WrongStore(f"{path} belongs to the home with id {recorded}, not to this home ({home_id}); "
                         "copy a database between homes with `xscreen backup` and `xscreen restore`")


class Store(StoreAPI):
    """The live store. Use `Store.open(...)` (migrates) or `Store.from_settings(...)`, and `close()` / `with`;
    thread-safe. Every store operation is a method (`store.queue(officer="ann")`, see store/api.py)."""

    def __init__(self, con: duckdb.DuckDBPyConnection, config: StoreConfig, *, write_batch_max: int,
                 write_batch_wait_ms: float, clock: Clock, login_limits: LoginLimits | None = None) -> None:
        self.config = config
        self._con = con
        self._clock = clock
        self._limiter = LoginLimiter(login_limits or LoginLimits())
        self._closed = False
        self._writer = GroupCommitWriter(con, write_batch_max, write_batch_wait_ms / 1000.0, clock, audit=config.audit)

    @property
    def path(self) -> Path:
        return self.config.path

    @property
    def home_id(self) -> str | None:
        return self.config.home_id

    # ---- lifecycle --------------------------------------------------------------------------------------------

    @classmethod
    def open(cls, path: Path, *, write_batch_max: int = 5000, write_batch_wait_ms: float = 5.0,
             checkpoint_wal_mb: float = 4.0, clock: Clock = utcnow, login_limits: LoginLimits | None = None,
             **config: Any) -> Store:
        """Open (creating if absent) and migrate the database. SchemaError for a foreign/corrupt/newer file,
        which is left untouched: it is validated read-only before it is ever opened for writing.

        `config`: the other StoreConfig fields (claim_ttl_s, session_ttl, snapshots_dir, ...). `home_id`: the
        identity of the home this file belongs to (store/identity.py), recorded in the file the first time; a
        file that records another home's id is refused (WrongStore)."""
        path = Path(path)
        preflight(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            con = duckdb.connect(str(path))
        except duckdb.IOException as exc:
            raise StoreError(f"cannot open {path}: {exc} (is another store owner running?)",
                             title="Database locked") from None
        try:
            con.execute("SET GLOBAL TimeZone = 'UTC'")  # every cursor returns TIMESTAMPTZ in UTC
            # DuckDB checkpoints inside the commit that crosses this WAL size, and every writer waits for it; a
            # smaller threshold makes each wait shorter. (The ~0.55 s commit stalls once seen in the live stream
            # were watchdog's move-event pairing, not checkpoints: see store/spool.py, BENCHMARKS "Serving".)
            con.execute(f"SET checkpoint_threshold = '{int(checkpoint_wal_mb * 1024)}KiB'")
            migrate(con)
            if config.get("home_id") is not None:
                bind_home(con, path, config["home_id"])
        except StoreError:
            con.close()
            raise
        return cls(con, StoreConfig(path=path, **config), write_batch_max=write_batch_max,
                   write_batch_wait_ms=write_batch_wait_ms, clock=clock, login_limits=login_limits)

    @classmethod
    def from_settings(cls, settings: Any, clock: Clock = utcnow, fresh_snapshots: bool = False) -> Store:
        """Open the store at settings.db_path with the store.* settings, bound to this home's identity.

        `fresh_snapshots`: analyst SQL never reuses a snapshot (a short-lived CLI process should see its data)."""
        from store.identity import ensure_home_id

        s = settings.store
        home_id = ensure_home_id(settings.home)
        return cls.open(settings.db_path, write_batch_max=s.write_batch_max, write_batch_wait_ms=s.write_batch_wait_ms,
                        checkpoint_wal_mb=s.checkpoint_wal_mb, clock=clock,
                        login_limits=LoginLimits.from_settings(settings.auth),
                        home_id=home_id, claim_ttl_s=s.claim_ttl_s,
                        session_ttl=timedelta(minutes=settings.app.session_ttl_minutes),
                        snapshots_dir=settings.snapshots_dir,
                        snapshot_max_age_s=0.0 if fresh_snapshots else s.snapshot_max_age_s,
                        sql_row_limit=s.sql_row_limit, sql_timeout_s=s.sql_timeout_s,
                        backups_dir=settings.backups_dir, models_dir=settings.models_dir,
                        audit=AuditDesign.from_settings(settings, key=home_id),
                        double_read_min_score=settings.labelling.double_read_min_score,
                        double_read_classes=tuple(settings.labelling.double_read_classes),
                        threat_classes=tuple(settings.model.classes))

    def close(self) -> None:
        """Finish queued writes, stop the writer, close the file. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._writer.close()
        self._con.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- the API: every declared operation ----------------------------------------------------------------------

    def call(self, name: str, /, **kwargs: Any) -> Any:
        """Run the operation `name` here (NotFoundError when there is none)."""
        return operation(name).run(self, kwargs)

    # ---- what operations run on (store/ops.py Engine) -----------------------------------------------------------

    def now(self) -> datetime:
        return self._clock()

    @contextmanager
    def reader(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A fresh cursor for one read in this thread, closed afterwards (also for tests, benchmarks, queries).

        Why fresh: a DuckDB cursor whose last result was not fetched to the end keeps that result and its read
        transaction open. The next `register()` on it raised ResourceInUseException (a login's fetchone, then
        `known_hashes` on the same owner thread: issue 12), and the open transaction kept DuckDB from
        checkpointing the WAL. Closing the cursor ends both, whatever the read function did."""
        if self._closed:
            raise StoreError("the store is closed")
        cur = self._con.cursor()
        try:
            yield cur
        finally:
            cur.close()

    def read(self, fn: Callable[..., T], *args: Any) -> T:
        """Run the read function `fn(cursor, *args)` on a fresh cursor (see `reader`)."""
        with self.reader() as cur:
            return fn(cur, *args)

    def write(self, fn: Callable[[duckdb.DuckDBPyConnection, datetime], T], weight: int = 1) -> T:
        """Run `fn(cursor, now)` in the writer's next group commit; returns its result after COMMIT."""
        result: T = self._writer.submit(Op(fn=fn, weight=weight))
        return result

    def exclusive(self, fn: Callable[[duckdb.DuckDBPyConnection, datetime], T]) -> T:
        """Run `fn(cursor, now)` alone, outside any transaction, while the writer waits (a checkpointed copy)."""
        result: T = self._writer.submit(Op(fn=fn, exclusive=True))
        return result

    def write_batch(self, batch: Prepared, weight: int) -> IngestResult:
        """Ingest a prepared batch in the next group commit (consecutive ingests merge into one append)."""
        result: IngestResult = self._writer.submit(Op(fn=None, batch=batch, weight=weight))
        return result

    def login_limiter(self) -> LoginLimiter:
        return self._limiter
