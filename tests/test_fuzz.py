"""Fuzzing (seeded, reproducible): 1,500 mutated PNG/TIFF/JPEG/npz files through the real reader and ingest,
1,200 malformed /v1 requests through the real API over a real store owner. No crash, no hang, no 5xx, and
every bad file ends as a quarantine record with a reason (bench/soak.py runs tens of thousands)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from analytics.client import StoreClient
from analytics.store import Store
from bench.fuzz import run_file_fuzz, run_request_fuzz
from serving.api import ApiBackend, create_api
from serving.ingest import Ingest
from serving.metrics import ServingMetrics
from tests.serving_fakes import FakeScorer, ListSpool
from xray.formats import SUPPORTED_SUFFIXES, image_stats, read_scan


def _ingest(tmp_path: Path) -> Ingest:
    return Ingest(inbox=tmp_path / "inbox", quarantine_dir=tmp_path / "quarantine", score=FakeScorer(),
                  spool_write=ListSpool(tmp_path), reader=read_scan, stats=image_stats,
                  suffixes=SUPPORTED_SUFFIXES, max_bytes=2_000_000, max_pixels=4_000_000,
                  max_decoded_bytes=64 * 2**20, truncated_wait_s=0.0)


def test_fuzzed_files_are_scored_or_quarantined_with_a_reason_never_a_crash(tmp_path: Path) -> None:
    report = run_file_fuzz(_ingest(tmp_path), tmp_path / "inbox", seed=12, n=1500)
    assert report.crashes == [], report.crashes[:10]
    assert report.cases == 1500 and report.scored + report.quarantined == 1500
    assert report.quarantined > 600 and report.scored > 20  # most mutations break files; many JPEGs survive


def test_fuzzed_requests_never_get_a_5xx(owner: tuple[StoreClient, Store], tmp_path: Path) -> None:
    client, _ = owner
    token = client.issue_scanner_token("scanner-a", actor="test")
    (tmp_path / "inbox" / "scanner-a").mkdir(parents=True)
    (tmp_path / "inbox" / "scanner-a" / "x.png").write_bytes(b"not really a png")
    (tmp_path / "inbox" / "scanner-a" / "link").symlink_to("/etc/passwd")
    backend = ApiBackend(ingest=_ingest(tmp_path), store=client, metrics=ServingMetrics(), max_upload_bytes=200_000)
    report = run_request_fuzz(TestClient(create_api(backend)), seed=5, n=1200, token=token)
    assert report.crashes == [], report.crashes[:10]
    assert report.cases == 1200
    assert set(report.answers) <= {200, 201, 204, 400, 401, 403, 404, 405, 409, 413, 415, 422}, report.answers
    assert Path("/etc/passwd").exists()
    outside: Any = [p for p in tmp_path.rglob("*") if p.is_file() and "quarantine" not in p.parts
                    and "inbox" not in p.parts and p.suffix not in (".json", ".duckdb", ".wal")]
    assert all(p.parent == tmp_path or "spool" in p.parts or "home" in p.parts for p in outside), outside[:5]
