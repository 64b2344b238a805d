"""`Store`: the one in-process owner of the DuckDB file and every operation on it (`analytics.api.StoreAPI`).

Writes go through one `GroupCommitWriter` (analytics/writer.py): each call blocks until its transaction has
COMMITted. Each read runs on a fresh cursor that is closed when the read returns, so no read can leave a result
(and the read transaction under it) open behind it; reads see committed data only. The SQL of each operation lives in
analytics/reads.py, writes.py, ingest.py and auth.py; this class wires them to the writer and the cursors.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import duckdb
import pandas as pd

from analytics import audit_chain, integrity, reads, writes
from analytics.accounts import Accounts
from analytics.api import IngestResult, SqlResult
from analytics.audit_chain import ChainReport
from analytics.backup import BackupManifest, write_backup
from analytics.fetch import first
from analytics.ingest import Prepared, prepare
from analytics.integrity import IntegrityReport
from analytics.migrations import migrate, preflight
from analytics.ratelimit import LoginLimiter, LoginLimits
from analytics.records import (
    AlertRecord,
    AlertStatus,
    AuditRecord,
    DecisionRecord,
    IngestBatch,
    LabelRecord,
    MeasurementRecord,
    ModelRecord,
    ModelState,
    utcnow,
)
from analytics.snapshot import copy_checkpointed, export_parquet, finish_copy, snapshot_database, temp_beside
from analytics.writer import GroupCommitWriter, Op
from xscreen.errors import StoreError, WrongStore, XscreenError

log = logging.getLogger(__name__)
Clock = Callable[[], datetime]
HOME_ID_KEY = "home_id"  # settings_kv key of the home this file belongs to
T = TypeVar("T")


@dataclass
class SqlOptions:
    """Where and how analyst SQL runs (see analytics.sandbox)."""

    snapshots_dir: Path | None = None
    snapshot_max_age_s: float = 30.0
    row_limit: int = 10_000
    timeout_s: float = 30.0


def inside(root: Path, dest: Path | None, default: str, setting: str, title: str) -> Path:
    """`dest` resolved inside `root` (a relative one is taken from there; default name when None); a path that
    resolves outside it is refused: the owner writes files only where its settings say."""
    root = root.resolve()
    root.mkdir(parents=True, exist_ok=True)
    path = (root / (dest if dest is not None else default)).resolve()  # an absolute dest replaces root, then is checked
    if root not in path.parents:
        raise XscreenError(f"{setting} are written under {root} (paths.{setting}) only, not {dest}", title=title)
    return path


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


class Store(Accounts):
    """The live store. Use `Store.open(...)` (migrates) and `close()` / `with`; thread-safe."""

    def __init__(self, con: duckdb.DuckDBPyConnection, path: Path, *, write_batch_max: int,
                 write_batch_wait_ms: float, claim_ttl_s: float, clock: Clock, sql: SqlOptions,
                 session_ttl_minutes: float = 480.0, home_id: str | None = None,
                 login_limits: LoginLimits | None = None, backups_dir: Path | None = None,
                 models_dir: Path | None = None) -> None:
        self.path = path
        self._backups_dir = backups_dir or path.parent / "backups"
        self._models_dir = models_dir
        self.home_id = home_id
        self._con = con
        self._clock = clock
        self._claim_ttl_s = claim_ttl_s
        self._session_ttl = timedelta(minutes=session_ttl_minutes)
        self._limiter = LoginLimiter(login_limits or LoginLimits())
        self._sql = sql
        self._snapshot_lock = threading.Lock()
        self._closed = False
        self._writer = GroupCommitWriter(con, write_batch_max, write_batch_wait_ms / 1000.0, clock)

    # ---- lifecycle --------------------------------------------------------------------------------------------

    @classmethod
    def open(cls, path: Path, *, write_batch_max: int = 5000, write_batch_wait_ms: float = 5.0,
             checkpoint_wal_mb: float = 4.0, claim_ttl_s: float = 600.0, session_ttl_minutes: float = 480.0,
             clock: Clock = utcnow, sql: SqlOptions | None = None, home_id: str | None = None,
             login_limits: LoginLimits | None = None, backups_dir: Path | None = None,
             models_dir: Path | None = None) -> Store:
        """Open (creating if absent) and migrate the database. SchemaError for a foreign/corrupt/newer file,
        which is left untouched: it is validated read-only before it is ever opened for writing.

        `home_id`: the identity of the home this file belongs to (analytics.identity). Recorded in the file the
        first time; a file that records another home's id is refused (WrongStore)."""
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
            # were watchdog's move-event pairing, not checkpoints: see analytics/spool.py, BENCHMARKS "Serving".)
            con.execute(f"SET checkpoint_threshold = '{int(checkpoint_wal_mb * 1024)}KiB'")
            migrate(con)
            if home_id is not None:
                bind_home(con, path, home_id)
        except StoreError:
            con.close()
            raise
        return cls(con, path, write_batch_max=write_batch_max, write_batch_wait_ms=write_batch_wait_ms,
                   claim_ttl_s=claim_ttl_s, clock=clock, sql=sql or SqlOptions(snapshots_dir=path.parent / "snapshots"),
                   session_ttl_minutes=session_ttl_minutes, home_id=home_id, login_limits=login_limits,
                   backups_dir=backups_dir, models_dir=models_dir)

    @classmethod
    def from_settings(cls, settings: Any, clock: Clock = utcnow, fresh_snapshots: bool = False) -> Store:
        """Open the store at settings.db_path with the store.* settings, bound to this home's identity.

        `fresh_snapshots`: analyst SQL never reuses a snapshot (a short-lived CLI process should see its data)."""
        from analytics.identity import ensure_home_id

        s = settings.store
        max_age = 0.0 if fresh_snapshots else s.snapshot_max_age_s
        return cls.open(settings.db_path, write_batch_max=s.write_batch_max, write_batch_wait_ms=s.write_batch_wait_ms,
                        checkpoint_wal_mb=s.checkpoint_wal_mb, claim_ttl_s=s.claim_ttl_s,
                        session_ttl_minutes=settings.app.session_ttl_minutes, clock=clock,
                        sql=SqlOptions(settings.snapshots_dir, max_age, s.sql_row_limit, s.sql_timeout_s),
                        home_id=ensure_home_id(settings.home), login_limits=LoginLimits.from_settings(settings.auth),
                        backups_dir=settings.backups_dir, models_dir=settings.models_dir)

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

    # ---- the writer -------------------------------------------------------------------------------------------

    def _write(self, fn: Callable[[duckdb.DuckDBPyConnection, datetime], Any], weight: int = 1) -> Any:
        return self._writer.submit(Op(fn=fn, weight=weight))

    # ---- readers ----------------------------------------------------------------------------------------------

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

    def _read(self, fn: Callable[..., T], *args: Any) -> T:
        """Run the read function `fn(cursor, *args)` on a fresh cursor (see `reader`)."""
        with self.reader() as cur:
            return fn(cur, *args)

    # ---- ingest -----------------------------------------------------------------------------------------------

    def ingest(self, batch: IngestBatch | Prepared) -> IngestResult:
        """Write a batch idempotently. Also takes a `Prepared` (a batch decoded from the binary wire/spool format,
        already columnar): nothing is turned back into records."""
        prepared = prepare(batch)  # Arrow tables, built in the caller's thread
        return self._writer.submit(Op(fn=None, batch=prepared, weight=prepared.weight))  # type: ignore[no-any-return]

    def known_hashes(self, hashes: list[str]) -> set[str]:
        return self._read(reads.known_hashes, hashes)

    # ---- triage -----------------------------------------------------------------------------------------------

    def get_scan(self, scan_id: str) -> dict[str, Any]:
        return self._read(reads.get_scan, scan_id)

    def queue(self, officer: str, limit: int = 50, scanner_id: str | None = None) -> pd.DataFrame:
        return self._read(reads.queue, officer, limit, scanner_id, self._clock())

    def claim(self, scan_id: str, officer: str) -> datetime:
        return self._write(lambda c, now: writes.claim(c, scan_id, officer, now, self._claim_ttl_s))  # type: ignore[no-any-return]

    def release(self, scan_id: str, officer: str) -> None:
        self._write(lambda c, now: writes.release(c, scan_id, officer))

    def record_decision(self, decision: DecisionRecord) -> None:
        self._write(lambda c, now: writes.record_decision(c, decision, now))

    def similar_items(self, scan_id: str, k: int = 8) -> pd.DataFrame:
        return self._read(reads.similar_items, scan_id, k)

    # ---- labels -----------------------------------------------------------------------------------------------

    def add_labels(self, labels: list[LabelRecord]) -> int:
        return self._write(lambda c, now: writes.add_labels(c, labels, now), weight=len(labels))  # type: ignore[no-any-return]

    def relabel_queue(self, limit: int = 100) -> pd.DataFrame:
        return self._read(reads.relabel_queue, limit)

    # ---- models -----------------------------------------------------------------------------------------------

    def register_model(self, model: ModelRecord, actor: str = "system") -> None:
        self._write(lambda c, now: writes.register_model(c, model, actor, now))

    def set_model_state(self, version: str, state: ModelState, actor: str, reason: str | None = None) -> None:
        self._write(lambda c, now: writes.set_model_state(c, version, state, actor, reason, now))

    def champion(self) -> ModelRecord | None:
        return self._read(reads.champion)

    def get_model(self, version: str) -> ModelRecord:
        return self._read(reads.get_model, version)

    def list_models(self) -> list[ModelRecord]:
        return self._read(reads.list_models)

    def rollback(self, actor: str, reason: str | None = None) -> str:
        return self._write(lambda c, now: writes.rollback(c, actor, reason, now))  # type: ignore[no-any-return]

    # ---- monitoring -------------------------------------------------------------------------------------------

    def add_measurements(self, measurements: list[MeasurementRecord]) -> int:
        return self._write(lambda c, now: writes.add_measurements(c, measurements), weight=len(measurements))  # type: ignore[no-any-return]

    def raise_alert(self, alert: AlertRecord) -> bool:
        return self._write(lambda c, now: writes.raise_alert(c, alert))  # type: ignore[no-any-return]

    def set_alert_status(self, alert_id: str, status: AlertStatus, actor: str) -> None:
        self._write(lambda c, now: writes.set_alert_status(c, alert_id, status, actor, now))

    def list_alerts(self, status: AlertStatus | None = None, limit: int = 200) -> list[AlertRecord]:
        return self._read(reads.list_alerts, status, limit)

    def get_setting(self, key: str) -> Any:
        return self._read(reads.get_setting, key)

    def put_setting(self, key: str, value: Any, actor: str) -> None:
        """Set a setting in force (audited). Keys the store keeps itself (champion, thresholds, home_id) are
        refused: promote a model instead."""
        writes.check_setting_key(key)
        self._write(lambda c, now: writes.change_setting(c, key, value, actor, now))

    # ---- audit ------------------------------------------------------------------------------------------------

    def audit(self, action: str, target: str | None = None, details: dict[str, Any] | None = None,
              actor: str = "system") -> None:
        """Append an audit row stamped with the store's clock (callers choose neither the time nor, when signed
        in, the actor). Actions the store records itself (login, decision, promote, ...) are refused."""
        writes.check_audit_action(action)
        self._write(lambda c, now: writes.audit_row(c, now, actor, action, target, **(details or {})))

    def audit_log(self, limit: int = 200, actor: str | None = None, action: str | None = None) -> list[AuditRecord]:
        return self._read(reads.audit_log, limit, actor, action)

    def verify_audit(self, anchor: str | None = None) -> ChainReport:
        """Check the audit log's hash chain from its first row; the first broken row is reported. `anchor`:
        a head printed by an earlier check ("SEQ:HASH"), which must still be in the chain."""
        return self._read(audit_chain.verify, audit_chain.parse_anchor(anchor) if anchor else None)

    def integrity_check(self) -> IntegrityReport:
        """Read every table whole and check the uniqueness invariants and the audit chain (analytics/integrity.py)."""
        return self._read(integrity.check)

    # ---- analysts ---------------------------------------------------------------------------------------------

    def query(self, name: str, **params: Any) -> pd.DataFrame:
        from analytics import dashboard_queries, queries  # noqa: F401  (importing registers the named queries)

        return self._read(queries.run_named, name, params)

    def snapshot(self, dest: Path | None = None, parquet: bool = False, actor: str = "system") -> Path:
        """Consistent copy for analysts, password and token hashes blanked: a DuckDB file or, with parquet, a
        folder of Parquet files. Written under the snapshots folder (paths.snapshots) only: `dest` is a name
        or path inside it (default: timestamped); a path outside it is refused. Audited."""
        path = self._snapshot_dest(dest, parquet)
        made = self._read(export_parquet, path) if parquet else self._snapshot_to(path)
        self._write(lambda c, now: writes.audit_row(c, now, actor, "snapshot", str(made), parquet=parquet))
        return made

    def _snapshot_dest(self, dest: Path | None, parquet: bool) -> Path:
        assert self._sql.snapshots_dir is not None
        suffix = "" if parquet else ".duckdb"
        return inside(self._sql.snapshots_dir, dest, self._default_name(suffix), "snapshots", "Snapshot refused")

    def _default_name(self, suffix: str) -> str:
        return f"xscreen-{self._clock().strftime('%Y%m%dT%H%M%SZ')}-{uuid.uuid4().hex[:6]}{suffix}"

    def backup(self, name: str | None = None, actor: str = "system") -> BackupManifest:
        """A backup folder under the backups folder (paths.backups; `name` inside it, default timestamped): the
        database copied after a CHECKPOINT while the writer is held (one committed state, even while serving),
        the model weights, and a manifest of checksums (analytics/backup.py). Audited."""
        dest = inside(self._backups_dir, Path(name) if name else None, self._default_name(""), "backups",
                      "Backup refused")

        def copy(target: Path) -> None:
            copied = self._writer.submit(Op(fn=lambda c, now: copy_checkpointed(c, self.path, target),
                                            exclusive=True))
            if copied is None:
                self._read(snapshot_database, target, False)

        manifest = write_backup(copy, dest, self.home_id, self._models_dir, self._clock())
        self._write(lambda c, now: writes.audit_row(c, now, actor, "backup", str(dest),
                                                    audit_head=manifest.audit_head, db_sha256=manifest.db_sha256))
        return manifest

    def _snapshot_to(self, dest: Path) -> Path:
        """Checkpoint and copy the file while the writer is held, then redact the copy; if a WAL remains,
        COPY FROM DATABASE on a reader (redacted too)."""
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = temp_beside(dest)
        copied = self._writer.submit(Op(fn=lambda c, now: copy_checkpointed(c, self.path, tmp), exclusive=True))
        if copied is None:
            return self._read(snapshot_database, dest)
        return finish_copy(tmp, dest)

    def _sql_snapshot(self) -> Path:
        """The shared snapshot analyst SQL reads; refreshed when older than snapshot_max_age_s."""
        assert self._sql.snapshots_dir is not None
        path = self._sql.snapshots_dir / "sql-latest.duckdb"
        with self._snapshot_lock:
            fresh = path.exists() and time.time() - path.stat().st_mtime < self._sql.snapshot_max_age_s
            if not fresh:
                self._snapshot_to(path)
        return path

    def sql(self, text: str, limit: int | None = None, actor: str = "system") -> SqlResult:
        """Analyst SQL (one read-only query) in the sandbox over a recent snapshot; audited, refusals too."""
        from analytics.sandbox import run_sandboxed, validate_sql

        row_limit = min(limit or self._sql.row_limit, self._sql.row_limit)
        try:
            validate_sql(text)
            out = run_sandboxed(self._sql_snapshot(), text, row_limit, self._sql.timeout_s)
        except XscreenError as err:
            reason = str(err)[:500]
            self._write(lambda c, now: writes.audit_row(c, now, actor, "sql_refused", None, sql=text[:2000],
                                                        error=reason))
            raise
        self._write(lambda c, now: writes.audit_row(c, now, actor, "sql", None, sql=text[:2000],
                                                    rows=len(out["rows"])))
        return SqlResult(**out)

    def info(self) -> dict[str, Any]:
        """Path, schema version and row counts of the main tables."""
        return {"path": str(self.path), **self._read(reads.info)}
