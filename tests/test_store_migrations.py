"""Schema migrations: from empty, from the original schema with rows in it, and refusals that leave files alone."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest

from analytics.migrations import LATEST_VERSION, MIGRATIONS, migrate
from analytics.store import Store
from xscreen.errors import SchemaError

T0 = datetime(2026, 1, 2, 3, 4, tzinfo=UTC)


def test_numbers_are_consecutive_from_one() -> None:
    assert [m[0] for m in MIGRATIONS] == list(range(1, len(MIGRATIONS) + 1))


def test_empty_database_migrates_to_latest_with_every_analyst_table(tmp_path: Path) -> None:
    with Store.open(tmp_path / "db.duckdb") as store, store.reader() as cur:
        names = {r[0] for r in cur.execute("SELECT table_name FROM information_schema.tables").fetchall()}
        version = cur.execute("SELECT max(version) FROM xscreen_schema").fetchone()[0]
    assert version == LATEST_VERSION
    assert {"scans", "verdicts", "decisions", "labels", "models", "measurements", "alerts", "audit_log",
            "current_labels", "users", "claims", "quarantine", "settings_kv", "ingest_batches"} <= names


def _original_db_with_rows(path: Path) -> None:
    con = duckdb.connect(str(path))
    assert migrate(con, upto=1) == 1
    con.execute("INSERT INTO labels VALUES ('l1', 's1', ['knife'], 'officer', 'ann', ?, NULL)", [T0])
    con.execute("INSERT INTO labels VALUES ('l2', 's1', [], 'relabel', 'bob', ?, 'was a comb')",
                [T0.replace(hour=5)])
    con.execute("INSERT INTO alerts VALUES ('a1', ?, 'warning', 'psi', 'drift on scanner-a', 'open', '{}')", [T0])
    con.execute("INSERT INTO decisions VALUES ('d1', 's1', 'ann', 'confirmed', 'knife', NULL, ?, 'm1')", [T0])
    con.execute("INSERT INTO audit_log VALUES ('au1', ?, 'ann', 'decision', 's1', '{\"decision\": \"confirmed\"}')",
                [T0])
    con.execute("INSERT INTO scans (scan_id, sha256, scanner_id, source_path, file_format, width, height, bit_depth, "
                "dual_energy, received_at, is_canary) VALUES ('s1', ?, 'sc-1', 'p', 'png', 1, 1, 8, false, ?, false)",
                ["a" * 64, T0])
    con.execute("INSERT INTO scans (scan_id, sha256, scanner_id, source_path, file_format, width, height, bit_depth, "
                "dual_energy, received_at, is_canary) VALUES ('s2', ?, 'sc-1', 'p', 'png', 1, 1, 8, false, ?, false)",
                ["b" * 64, T0])
    for scan_id, verdict, score in [("s1", "inspect", 0.9), ("s2", "uncertain", 0.5)]:
        con.execute("INSERT INTO verdicts (scan_id, model_version, role, scanner_id, verdict, any_threat, scores, "
                    "heatmap_size, scored_at) VALUES (?, 'm1', 'champion', 'sc-1', ?, ?, MAP {'knife': ?}, 0, ?)",
                    [scan_id, verdict, score, score, T0])
    con.close()


def test_database_with_only_the_original_schema_upgrades_and_keeps_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "old.duckdb"
    _original_db_with_rows(path)
    with Store.open(path) as store, store.reader() as cur:
        assert cur.execute("SELECT max(version) FROM xscreen_schema").fetchone()[0] == LATEST_VERSION
        assert cur.execute("SELECT labels FROM current_labels WHERE scan_id = 's1'").fetchone()[0] == []
        assert cur.execute("SELECT decision FROM final_decisions").fetchall() == [("confirmed",)]
        updated = cur.execute("SELECT updated_at FROM alerts WHERE alert_id = 'a1'").fetchone()[0]
    assert updated == T0  # migration 3 back-filled the new column from the raise time
    with Store.open(path, clock=lambda: T0) as store:
        assert store.integrity_check().ok and store.verify_audit().rows == 1  # migration 7 chained the old row
        assert list(store.queue("bob")["scan_id"]) == ["s2"]  # migration 5 back-filled: s1 was already decided
        counts = store.query("verdict_counts", start=T0.replace(hour=0), end=T0.replace(hour=23))
        assert counts[["n", "n_inspect", "n_uncertain"]].values.tolist() == [[2, 1, 1]]


def test_migrate_twice_is_a_no_op(tmp_path: Path) -> None:
    con = duckdb.connect(str(tmp_path / "db.duckdb"))
    assert migrate(con) == LATEST_VERSION
    assert migrate(con) == LATEST_VERSION
    assert con.execute("SELECT count(*) FROM xscreen_schema").fetchone()[0] == LATEST_VERSION


def test_newer_schema_is_refused_naming_both_versions(tmp_path: Path) -> None:
    path = tmp_path / "new.duckdb"
    con = duckdb.connect(str(path))
    migrate(con)
    con.execute("INSERT INTO xscreen_schema VALUES (?, 'from the future', ?)", [LATEST_VERSION + 1, T0])
    con.close()
    before = path.read_bytes()
    with pytest.raises(SchemaError, match=rf"version {LATEST_VERSION + 1}.*up to version {LATEST_VERSION}"):
        Store.open(path)
    assert path.read_bytes() == before


def _foreign_duckdb(path: Path) -> None:
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE invoices (id INTEGER, amount DOUBLE)")
    con.execute("INSERT INTO invoices VALUES (1, 9.5)")
    con.close()


def _text_file(path: Path) -> None:
    path.write_text("name,value\nnot,a database\n")


def _truncated_duckdb(path: Path) -> None:
    con = duckdb.connect(str(path))
    migrate(con)
    con.execute("INSERT INTO users VALUES ('ann', 'x', 'admin', false, now())")
    con.close()
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])


def _empty_file(path: Path) -> None:
    path.write_bytes(b"")


@pytest.mark.parametrize("make", [_foreign_duckdb, _text_file, _truncated_duckdb, _empty_file])
def test_foreign_or_corrupt_file_is_refused_and_left_byte_identical(tmp_path: Path, make) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "db.duckdb"
    make(path)
    before = path.read_bytes()
    siblings = sorted(p.name for p in tmp_path.iterdir())
    with pytest.raises(SchemaError, match=str(path)):
        Store.open(path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == siblings  # no WAL or other file created either


def test_every_table_and_column_is_documented_in_schema_md(tmp_path: Path) -> None:
    import re

    doc = (Path(__file__).resolve().parents[1] / "docs" / "SCHEMA.md").read_text()
    sections = dict(re.findall(r"^### `(\w+)`.*?\n(.*?)(?=^### |^## )", doc, flags=re.S | re.M))
    with Store.open(tmp_path / "db.duckdb") as store, store.reader() as cur:
        columns = cur.execute("SELECT table_name, column_name FROM information_schema.columns "
                              "JOIN information_schema.tables USING (table_name) WHERE table_type = 'BASE TABLE'"
                              ).fetchall()
    missing = []
    for table, column in columns:
        documented = {name.strip() for row in re.findall(r"^\| ([^|]+) \|", sections.get(table, ""), flags=re.M)
                      for name in row.split(",")}
        if column not in documented:
            missing.append(f"{table}.{column}")
    assert missing == [], f"undocumented in docs/SCHEMA.md: {missing}"
