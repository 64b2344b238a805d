"""The audit log is a hash chain (issue 12, item 6): an edit, a removal, an insertion or a cut tail made directly
in the DuckDB file is found by `xscreen audit verify`, which names the first broken row; `xscreen check` reads
every table and checks the store's invariants."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest

from analytics.client import StoreClient
from analytics.migrations import migrate
from analytics.store import Store
from tests.seeding import seed_store
from tests.test_cli_store import run
from xscreen.errors import XscreenError
from xscreen.settings import load_settings

PASSWORD = "correct-horse-battery"
T0 = datetime(2026, 1, 2, 3, 4, tzinfo=UTC)


def _home_with_history(tmp_path: Path) -> tuple[Path, list[tuple[int, str]]]:
    """A stopped home whose audit log has a few rows; returns it and (seq, audit_id) of each row."""
    home = tmp_path / "home"
    with Store.from_settings(load_settings(environ={}, home=home)) as store:
        store.add_user("ann", PASSWORD, "officer")
        for _ in range(2):
            store.authenticate("ann", PASSWORD)
        store.audit("note", target="x", details={"n": 1.5, "when": "today"}, actor="cli:tester")
        store.disable_user("ann", actor="cli:tester")
        with store.reader() as cur:
            rows = cur.execute("SELECT seq, audit_id FROM audit_log ORDER BY seq").fetchall()
    return home, rows


def _tamper(home: Path, *statements: str) -> None:
    con = duckdb.connect(str(home / "xscreen.duckdb"))  # what someone with the file (owner stopped) can do
    for sql in statements:
        con.execute(sql)
    con.close()


def test_rows_written_by_the_store_form_an_unbroken_chain(tmp_path: Path) -> None:
    home, rows = _home_with_history(tmp_path)
    assert [seq for seq, _ in rows] == [1, 2, 3, 4, 5]
    out = run(home, "audit", "verify")
    assert out.returncode == 0 and out.stdout.startswith("audit log intact: 5 rows; head 5:"), out.stderr


@pytest.mark.parametrize(("tamper", "bad_seq", "why"), [
    ("UPDATE audit_log SET actor = 'mallory' WHERE seq = 3", 3, "contents changed"),
    ("UPDATE audit_log SET details = '{\"n\": 2.5, \"when\": \"today\"}' WHERE seq = 4", 4, "contents changed"),
    ("UPDATE audit_log SET logged_at = logged_at - INTERVAL 1 DAY WHERE seq = 2", 2, "contents changed"),
    ("DELETE FROM audit_log WHERE seq = 2", 3, "rows 2..2 were removed"),
    ("INSERT INTO audit_log (audit_id, logged_at, actor, action) VALUES ('forged', now(), 'ann', 'decision')",
     None, "no place in the chain"),
])
def test_an_edit_in_the_file_is_found_and_the_first_broken_row_named(tmp_path: Path, tamper: str,
                                                                     bad_seq: int | None, why: str) -> None:
    home, rows = _home_with_history(tmp_path)
    _tamper(home, tamper)
    out = run(home, "audit", "verify")
    assert out.returncode == 1 and why in out.stdout, out.stdout + out.stderr
    audit_id = dict(rows).get(bad_seq, "forged") if bad_seq else "forged"
    assert f"row {bad_seq} (audit_id {audit_id})" in out.stdout


def test_a_cut_tail_and_a_rewritten_chain_are_found(tmp_path: Path) -> None:
    home, _ = _home_with_history(tmp_path)
    head = run(home, "audit", "verify").stdout.split("head ")[1].strip()
    _tamper(home, "DELETE FROM audit_log WHERE seq = 5")
    cut = run(home, "audit", "verify")
    assert cut.returncode == 1 and "head says 5 rows but the chain has 4" in cut.stdout
    # Someone who recomputes the whole chain and the head is caught by a head recorded elsewhere earlier.
    from analytics import audit_chain

    con = duckdb.connect(str(home / "xscreen.duckdb"))
    con.execute("DELETE FROM audit_head")
    con.execute("ALTER TABLE audit_log DROP COLUMN seq")
    con.execute("ALTER TABLE audit_log DROP COLUMN prev_hash")
    con.execute("ALTER TABLE audit_log DROP COLUMN row_hash")
    for column, kind in (("seq", "BIGINT"), ("prev_hash", "VARCHAR"), ("row_hash", "VARCHAR")):
        con.execute(f"ALTER TABLE audit_log ADD COLUMN {column} {kind}")
    audit_chain.chain_existing(con)
    con.close()
    assert run(home, "audit", "verify").returncode == 0  # self-consistent again ...
    anchored = run(home, "audit", "verify", "--anchor", head)
    assert anchored.returncode == 1 and "is not in the chain" in anchored.stdout  # ... but not the chain recorded
    bad = run(home, "audit", "verify", "--anchor", "5:abc")
    assert bad.returncode == 2 and "SEQ:HASH" in bad.stderr


def test_migration_chains_rows_written_before_the_chain_in_order(tmp_path: Path) -> None:
    path = tmp_path / "old.duckdb"
    con = duckdb.connect(str(path))
    migrate(con, upto=6)
    for i, (actor, action) in enumerate([("ann", "login"), ("ann", "decision"), ("bob", "relabel")]):
        con.execute("INSERT INTO audit_log VALUES (?, ?, ?, ?, 'x', ?::JSON)",
                    [f"a{i}", T0.replace(minute=i), actor, action, json.dumps({"i": i})])
    con.close()
    with Store.open(path, clock=lambda: T0.replace(hour=9)) as store:
        assert store.verify_audit().ok and store.verify_audit().rows == 3
        store.audit("note", actor="cli:tester")
        log = store.audit_log()
        assert [(r.seq, r.audit_id) for r in log[1:]] == [(3, "a2"), (2, "a1"), (1, "a0")]
        assert log[0].seq == 4 and store.verify_audit().rows == 4


def test_integrity_check_reads_everything_and_names_a_broken_invariant(tmp_path: Path, now: datetime) -> None:
    home = tmp_path / "home"
    with Store.from_settings(load_settings(environ={}, home=home), clock=lambda: now) as store:
        seeded = seed_store(store, 60, seed=3, now=now)
        report = store.integrity_check()
    assert report.ok and report.rows["verdicts"] == 120 and report.rows["scans"] == 60, report.problems
    assert run(home, "check").stdout.startswith("store intact:")
    scan = seeded.flagged[0]
    _tamper(home, f"INSERT INTO decisions VALUES ('x1', '{scan}', 'ann', 'cleared', NULL, NULL, now(), 'm')",
            f"INSERT INTO decisions VALUES ('x2', '{scan}', 'bob', 'seized', NULL, NULL, now(), 'm')",
            "UPDATE models SET state = 'champion'")
    out = run(home, "check")
    assert out.returncode == 1
    assert "at most one final decision per scan: 1 rows" in out.stdout and "at most one champion" in out.stdout


def test_checks_run_through_the_owner(owner: tuple[StoreClient, Store], now: datetime) -> None:
    client, store = owner
    seed_store(store, 10, seed=4, now=now)
    report = client.integrity_check()
    assert report.ok and report.rows["scans"] == 10
    assert client.verify_audit().rows == len(store.audit_log(limit=1000)) > 0
    with pytest.raises(XscreenError, match="SEQ:HASH"):
        client.verify_audit("nonsense")
