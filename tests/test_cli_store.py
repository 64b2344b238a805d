"""The store's CLI commands, run as a user runs them (`xscreen ...` in a subprocess with its own home)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import duckdb

from analytics.migrations import LATEST_VERSION
from analytics.store import Store
from xscreen.settings import load_settings

XSCREEN = [sys.executable, "-m", "xscreen.cli"]


def run(home: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("XSCREEN_")}
    env.update(XSCREEN_HOME=str(home), XSCREEN_LOG_LEVEL="WARNING", USER="tester",
               XSCREEN_NETWORK__STORE_PORT="1")  # nothing answers on port 1: commands open the file in-process
    return subprocess.run([*XSCREEN, *args], input=stdin, capture_output=True, text=True, env=env, timeout=120,
                          cwd=home.parent)


def test_users_add_list_and_weak_password_one_line_error(tmp_path: Path) -> None:
    home = tmp_path / "home"
    added = run(home, "users", "add", "ann", "--role", "admin", "--password-stdin", stdin="correct-horse-battery\n")
    assert added.returncode == 0, added.stderr
    weak = run(home, "users", "add", "bob", "--role", "officer", "--password-stdin", stdin="short\n")
    assert weak.returncode == 2 and weak.stderr.strip() == "error: password must have at least 10 characters"
    listed = run(home, "users", "list")
    assert "ann" in listed.stdout and "admin" in listed.stdout and "bob" not in listed.stdout


def _home_with_user(tmp_path: Path) -> Path:
    """A home whose store has one user, made in-process (faster than another CLI call)."""
    home = tmp_path / "home"
    settings = load_settings(environ={}, home=home)
    with Store.from_settings(settings) as store:
        store.add_user("ann", "correct-horse-battery", "analyst")
    return home


def test_sql_formats_refusals_and_audit(tmp_path: Path) -> None:
    home = _home_with_user(tmp_path)
    out = run(home, "sql", "SELECT username, role FROM users", "--format", "json")
    assert json.loads(out.stdout) == [{"username": "ann", "role": "analyst"}]
    refused = run(home, "sql", "SELECT * FROM read_csv('/etc/passwd')")
    assert refused.returncode == 2 and refused.stderr.startswith("error: the query tried to reach files")
    assert "Traceback" not in refused.stderr
    audit = run(home, "sql", "SELECT action, actor FROM audit_log WHERE action LIKE 'sql%' ORDER BY action",
                "-f", "csv")
    assert audit.stdout.splitlines() == ["action,actor", "sql,cli:tester", "sql_refused,cli:tester"]
    forged = run(home, "sql", "SELECT 1", "--actor", "mallory")  # the caller no longer picks its audit name
    assert forged.returncode == 2 and "--actor" in forged.stderr


def test_analysts_cannot_read_password_or_token_hashes(tmp_path: Path) -> None:
    home = _home_with_user(tmp_path)
    with Store.from_settings(load_settings(environ={}, home=home)) as store:
        store.issue_scanner_token("scanner-a", actor="cli:tester")
        with store.reader() as cur:
            real = cur.execute("SELECT password_hash FROM users UNION ALL SELECT token_sha256 FROM auth_tokens"
                               ).fetchall()
    assert all(len(h) > 40 for (h,) in real)
    out = run(home, "sql", "SELECT password_hash FROM users UNION ALL SELECT token_sha256 FROM auth_tokens",
              "-f", "json")
    rows = [r["password_hash"] for r in json.loads(out.stdout)]
    assert rows[0] == "" and rows[1].startswith("redacted-t-") and len(rows) == 2


def test_snapshot_file_and_parquet_open_without_the_owner(tmp_path: Path) -> None:
    home = _home_with_user(tmp_path)
    snap = tmp_path / "snap.duckdb"
    assert run(home, "snapshot", str(snap)).returncode == 0
    con = duckdb.connect(str(snap), read_only=True)
    assert con.execute("SELECT username, password_hash FROM users").fetchall() == [("ann", "")]
    con.close()
    assert run(home, "snapshot", "--parquet", str(tmp_path / "pq")).returncode == 0
    users = duckdb.connect().execute(f"SELECT username, password_hash FROM '{tmp_path / 'pq' / 'users.parquet'}'")
    assert users.fetchall() == [("ann", "")]
    assert not list((home / "snapshots").glob("xscreen-*"))  # moved where the user asked, not left behind


def test_db_info_reports_schema_version_and_a_corrupt_file_is_one_line(tmp_path: Path) -> None:
    home = tmp_path / "home"
    info = run(home, "db", "info")
    assert f"schema version: {LATEST_VERSION}" in info.stdout
    bad_home = tmp_path / "bad"
    bad_home.mkdir()
    (bad_home / "xscreen.duckdb").write_text("hello")
    refused = run(bad_home, "db", "info")
    assert refused.returncode == 2 and len(refused.stderr.strip().splitlines()) == 1
    assert "not a DuckDB database" in refused.stderr
