"""`xscreen backup DIR` and `xscreen restore DIR`, end to end: a consistent copy while the owner streams, a
restore that verifies first, refuses while the owner runs, keeps what it replaces, and works with the system
down and into another home."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import duckdb
import numpy as np
import pytest

from analytics.backup import BackupManifest, file_sha256, verify
from analytics.client import StoreClient, owner_is_up
from analytics.identity import read_home_id
from analytics.store import Store
from tests.conftest import free_port
from tests.seeding import make_batch, model_record
from tests.test_cli_store import run as run_offline
from xscreen.errors import StoreError, XscreenError
from xscreen.settings import Settings, load_settings

PASSWORD = "correct-horse-battery"
XSCREEN = [sys.executable, "-m", "xscreen.cli"]


def _env(home: Path, port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("XSCREEN_")}
    env.update(XSCREEN_HOME=str(home), XSCREEN_NETWORK__STORE_PORT=str(port), XSCREEN_LOG_LEVEL="WARNING",
               USER="tester")
    return env


def _cli(home: Path, port: int, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*XSCREEN, *args], capture_output=True, text=True, env=_env(home, port), timeout=180,
                          cwd=home.parent)


@contextmanager
def _owner_process(home: Path) -> Iterator[tuple[Settings, StoreClient]]:
    """`xscreen store-owner` on `home` (a real process), its settings and a client; stopped with SIGTERM."""
    port = free_port()
    proc = subprocess.Popen([*XSCREEN, "store-owner"], env=_env(home, port), stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)
    settings = load_settings(environ={}, home=home, network={"store_port": port})
    try:
        deadline = time.monotonic() + 60
        while not owner_is_up(settings.store_url):
            assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read() if proc.stderr else ""
            time.sleep(0.1)
        with StoreClient.from_settings(settings) as client:
            yield settings, client
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)


def _stream(client: StoreClient, now: datetime, start: int, n: int, stop: threading.Event) -> int:
    """Ingest batches of 50 scans (100 verdicts) until told to stop; how many batches went in."""
    rng = np.random.default_rng(start)
    sent = 0
    while not stop.is_set() and sent < n:
        client.ingest(make_batch(rng, start + sent * 50, 50, now, ["knife"], batch_id=f"stream-{start}-{sent}"))
        sent += 1
    return sent


def _counts(db: Path) -> tuple[int, int, int]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        row = con.execute("SELECT (SELECT count(*) FROM ingest_batches), (SELECT count(*) FROM verdicts), "
                          "(SELECT count(*) FROM users)").fetchall()[0]
    finally:
        con.close()
    return int(row[0]), int(row[1]), int(row[2])


def test_backup_while_streaming_then_restore_after_the_owner_stops(tmp_path: Path, now: datetime) -> None:
    home, dest = tmp_path / "home", tmp_path / "backup-1"
    with _owner_process(home) as (settings, client):
        client.add_user("ann", PASSWORD, "officer", actor="cli:tester")
        _stream(client, now, 0, 4, threading.Event())
        stop = threading.Event()
        feeder = threading.Thread(target=_stream, args=(client, now, 10_000, 400, stop))
        feeder.start()
        try:
            made = _cli(home, settings.network.store_port, "backup", str(dest))
        finally:
            stop.set()
            feeder.join(timeout=60)
        assert made.returncode == 0, made.stderr
        refused = _cli(home, settings.network.store_port, "restore", str(dest))
        assert refused.returncode == 2 and "stop it" in refused.stderr
        _stream(client, now, 50_000, 2, threading.Event())  # the live store moves on after the backup
    manifest = verify(dest)
    batches, verdicts, users = _counts(dest / "xscreen.duckdb")
    assert verdicts == 100 * batches and batches >= 4 and users == 1  # one committed state, never half a batch
    assert manifest.tables["verdicts"].rows == verdicts
    live_before = _counts(settings.db_path)
    assert live_before[0] > batches
    restored = _cli(home, settings.network.store_port, "restore", str(dest))
    assert restored.returncode == 0 and "store intact" in restored.stdout, restored.stdout + restored.stderr
    assert _counts(settings.db_path) == (batches, verdicts, 1)
    kept = list(home.glob("xscreen.duckdb.before-restore-*"))
    assert len(kept) == 1 and _counts(kept[0]) == live_before  # what was replaced is kept, not deleted
    with Store.from_settings(settings) as store:
        [last] = store.audit_log(limit=1)
        assert (last.action, last.actor, last.details["audit_head"]) == ("restore", "cli:tester", manifest.audit_head)
        assert store.verify_audit().ok and store.authenticate("ann", PASSWORD).username == "ann"


def test_backup_with_the_system_down_restores_into_another_home(tmp_path: Path, now: datetime) -> None:
    source = tmp_path / "source"
    with Store.from_settings(load_settings(environ={}, home=source), clock=lambda: now) as store:
        store.add_user("ann", PASSWORD, "officer")
        store.ingest(make_batch(np.random.default_rng(1), 0, 30, now, ["knife"]))
        store.register_model(model_record("m1", ["knife"], now))
    weights = source / "models" / "m1" / "model.pt"
    weights.parent.mkdir(parents=True)
    weights.write_bytes(b"weights of m1")
    made = run_offline(source, "backup", str(tmp_path / "b"))
    assert made.returncode == 0 and "1 model files" in made.stdout, made.stderr
    target = tmp_path / "target"
    restored = run_offline(target, "restore", str(tmp_path / "b"))
    assert restored.returncode == 0, restored.stderr
    assert (target / "models" / "m1" / "model.pt").read_bytes() == b"weights of m1"
    with Store.from_settings(load_settings(environ={}, home=target)) as store:  # opens: the ids agree
        assert store.get_setting("home_id") == read_home_id(target) != read_home_id(source)
        assert store.info()["rows"]["scans"] == 30 and store.integrity_check().ok


def _backup(tmp_path: Path, now: datetime) -> tuple[Path, BackupManifest]:
    home = tmp_path / "home"
    with Store.from_settings(load_settings(environ={}, home=home), clock=lambda: now) as store:
        store.ingest(make_batch(np.random.default_rng(2), 0, 20, now, ["knife"]))
        manifest = store.backup("b1", actor="cli:tester")
    return home, manifest


def test_a_damaged_backup_is_refused_and_the_home_left_alone(tmp_path: Path, now: datetime) -> None:
    home, manifest = _backup(tmp_path, now)
    folder = Path(manifest.path)
    db = home / "xscreen.duckdb"
    before = file_sha256(db)
    with (folder / "xscreen.duckdb").open("r+b") as fh:  # one flipped byte
        fh.seek(20_000)
        byte = fh.read(1)
        fh.seek(20_000)
        fh.write(bytes([byte[0] ^ 0xFF]))
    out = run_offline(home, "restore", str(folder))
    assert out.returncode == 2 and "not the file the manifest describes" in out.stderr
    assert file_sha256(db) == before and not list(home.glob("*.before-restore-*"))
    (folder / "manifest.json").unlink()
    assert "is not a backup" in run_offline(home, "restore", str(folder)).stderr


def test_a_backup_whose_rows_were_changed_with_a_matching_file_hash_is_refused(tmp_path: Path,
                                                                               now: datetime) -> None:
    _, manifest = _backup(tmp_path, now)
    folder = Path(manifest.path)
    con = duckdb.connect(str(folder / "xscreen.duckdb"))
    con.execute("UPDATE scans SET scanner_id = 'elsewhere'")
    con.close()
    forged = manifest.model_copy(update={"db_sha256": file_sha256(folder / "xscreen.duckdb"),
                                         "db_bytes": (folder / "xscreen.duckdb").stat().st_size})
    (folder / "manifest.json").write_text(forged.model_dump_json())
    with pytest.raises(StoreError, match=r"differs from its manifest \(tables \['scans'\]"):
        verify(folder)


def test_backups_are_written_only_under_the_backups_folder(owner: tuple[StoreClient, Store],
                                                           settings: Settings) -> None:
    client, _ = owner
    with pytest.raises(XscreenError, match="backups are written under"):
        client.backup("../../elsewhere")
    made = client.backup("nightly")
    assert Path(made.path) == settings.backups_dir.resolve() / "nightly" and verify(Path(made.path)) == made
