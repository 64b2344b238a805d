"""The /v1 API as a plain FastAPI app: uploads, paths inside the root, refusals with reasons, store routes."""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from analytics.records import DecisionRecord
from serving.api import ApiBackend, create_api, resolve_inbox_path
from serving.ingest import Ingest
from serving.metrics import ServingMetrics
from tests.serving_fakes import STATS, FakeScorer, ListSpool, fake_reader, png_bytes
from xscreen.errors import NotFoundError


class FakeStore:
    def __init__(self) -> None:
        self.decisions: list[DecisionRecord] = []

    def get_scan(self, scan_id: str) -> dict[str, Any]:
        if scan_id != "known":
            raise NotFoundError(f"scan {scan_id!r} does not exist")
        return {"scan_id": scan_id, "verdicts": []}

    def queue(self, officer: str, limit: int = 50, scanner_id: str | None = None) -> pd.DataFrame:
        return pd.DataFrame([{"scan_id": "a", "verdict": "inspect"}] * min(limit, 3))

    def record_decision(self, decision: DecisionRecord) -> None:
        self.decisions.append(decision)


@pytest.fixture
def env(tmp_path: Path) -> tuple[TestClient, ListSpool, FakeStore, Path]:
    inbox = tmp_path / "inbox"
    (inbox / "scanner-a").mkdir(parents=True)
    (tmp_path / "spool").mkdir()
    spool = ListSpool(tmp_path / "spool")
    metrics = ServingMetrics()
    ingest = Ingest(inbox=inbox, quarantine_dir=tmp_path / "quarantine", score=FakeScorer(), spool_write=spool,
                    reader=fake_reader, stats=lambda im: STATS, suffixes=[".png"], max_bytes=100_000,
                    max_pixels=1_000_000, on_batch=metrics.observe)
    store = FakeStore()
    backend = ApiBackend(ingest=ingest, store=store, metrics=metrics, max_upload_bytes=100_000,
                         health=lambda: {"model_version": "m1"}, api_auth=False)  # auth: tests/test_api_auth.py
    return TestClient(create_api(backend)), spool, store, tmp_path


def upload(client: TestClient, data: bytes, **form: str) -> Any:
    return client.post("/v1/scans", files={"file": ("x.png", io.BytesIO(data), "image/png")}, data=form)


def test_upload_is_scored_and_a_repeat_is_a_duplicate(env: Any) -> None:
    client, spool, _, _ = env
    r = upload(client, png_bytes(200), scanner_id="scanner-a", item_id="IT9")
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["verdict"] == "inspect" and body["model_version"] == "m1"
    assert spool.batches[-1].scans[0].item_id == "IT9"
    again = upload(client, png_bytes(200), scanner_id="scanner-a")
    assert again.status_code == 200 and again.json() == {"status": "duplicate", "scan_id": body["scan_id"]}
    metrics = client.get("/metrics").text
    assert 'xscreen_verdicts_total{scanner_id="scanner-a",verdict="inspect"} 1.0' in metrics


def test_bad_and_oversized_uploads_are_refused_with_reasons(env: Any) -> None:
    client, spool, _, _ = env
    bad = upload(client, b"not an image", scanner_id="scanner-a")
    assert bad.status_code == 422 and bad.json()["detail"]["reason_code"] == "not_image"
    big = upload(client, b"0" * 300_000, scanner_id="scanner-a")
    assert big.status_code == 413 and big.json()["detail"]["reason_code"] == "too_large"
    codes = [q.reason_code for b in spool.batches for q in b.quarantines]
    assert codes == ["not_image", "too_large"]  # both refusals are recorded


def test_path_inside_the_root_is_scored(env: Any) -> None:
    client, _, _, tmp = env
    (tmp / "inbox" / "scanner-a" / "p.png").write_bytes(png_bytes(30))
    r = client.post("/v1/scans", json={"path": "scanner-a/p.png"})
    assert r.status_code == 201, r.text
    assert r.json()["verdict"] == "clear"


@pytest.mark.parametrize("text", ["../secret.png", "/etc/passwd", "scanner-a/../../secret.png"])
def test_path_traversal_is_refused_and_recorded(env: Any, text: str) -> None:
    client, spool, _, tmp = env
    (tmp / "secret.png").write_bytes(png_bytes(1))
    r = client.post("/v1/scans", json={"path": text})
    assert r.status_code == 400 and r.json()["detail"]["reason_code"] == "path_traversal"
    assert spool.batches[-1].quarantines[0].reason_code == "path_traversal"
    assert (tmp / "secret.png").exists()


def test_symlinks_leading_out_of_the_root_are_refused(env: Any) -> None:
    client, _, _, tmp = env
    outside = tmp / "outside"
    outside.mkdir()
    (outside / "s.png").write_bytes(png_bytes(1))
    os.symlink(outside, tmp / "inbox" / "linkdir")
    os.symlink(outside / "s.png", tmp / "inbox" / "scanner-a" / "link.png")
    r1 = client.post("/v1/scans", json={"path": "linkdir/s.png"})
    assert r1.status_code == 403 and r1.json()["detail"]["reason_code"] == "symlink_escape"
    r2 = client.post("/v1/scans", json={"path": "scanner-a/link.png"})
    assert r2.status_code == 403 and r2.json()["detail"]["reason_code"] == "symlink_escape"
    assert (outside / "s.png").exists()


def test_resolve_inbox_path_reports_missing_files(tmp_path: Path) -> None:
    path, code, _ = resolve_inbox_path(tmp_path, "scanner-a/none.png")
    assert path is None and code == "not_found"


def test_store_routes(env: Any) -> None:
    client, _, store, _ = env
    assert client.get("/v1/scans/known").json()["scan_id"] == "known"
    missing = client.get("/v1/scans/nope")
    assert missing.status_code == 404 and "nope" in missing.json()["detail"]
    assert len(client.get("/v1/queue", params={"limit": 2}).json()) == 2
    r = client.post("/v1/feedback", json={"scan_id": "known", "officer": "o1", "decision": "cleared"})
    assert r.status_code == 201 and store.decisions[0].officer == "o1"
    bad = client.post("/v1/feedback", json={"scan_id": "known", "officer": "o1", "decision": "maybe"})
    assert bad.status_code == 422
    assert client.get("/healthz").json() == {"status": "ok", "model_version": "m1"}


@pytest.mark.parametrize("text", ["scanner-a", "scanner-a/sub"])
def test_a_folder_is_never_scanned_or_moved(env: Any, text: str) -> None:
    client, spool, _, tmp = env
    victim = tmp / "inbox" / "scanner-a"
    (victim / "sub").mkdir()
    (victim / "keep.png").write_bytes(png_bytes(5))
    r = client.post("/v1/scans", json={"path": text})
    assert r.status_code == 400, r.text
    assert r.json()["detail"]["reason_code"] in ("bad_path", "not_a_file")
    assert (victim / "keep.png").exists() and (victim / "sub").is_dir()  # the old code moved the whole folder
    assert not (tmp / "quarantine").exists() or not any((tmp / "quarantine").rglob("*.png"))


@pytest.mark.parametrize("text", [
    "a" * 300 + "/x.png",                  # a component over NAME_MAX: was a 500 (OSError from stat)
    "scanner-a/" + "b" * 256 + ".png",
    str(Path("/abs/inbox/scanner-a/p.png")),  # absolute paths are refused even when they point inside
    "scanner-a//p.png", "./scanner-a/p.png", "scanner-a/./p.png", "..", "../x", "bad id/p.png",
    "x" * 5000,
])
def test_malformed_paths_are_4xx_with_a_reason_never_500(env: Any, text: str) -> None:
    client, _, _, _ = env
    r = client.post("/v1/scans", json={"path": text})
    assert 400 <= r.status_code < 500, (r.status_code, r.text)
    assert r.json()["detail"]["reason_code"] in ("bad_path", "path_traversal", "bad_scanner_id")


def test_an_oversized_json_body_is_413_before_it_is_read(env: Any) -> None:
    client, _, _, _ = env
    big = '{"path": "' + "a" * 1_000_000 + '"}'
    r = client.post("/v1/scans", content=big, headers={"content-type": "application/json"})
    assert r.status_code == 413 and r.json()["detail"]["reason_code"] == "too_large"

    def chunks() -> Any:  # no Content-Length: counted as it streams
        for _ in range(100):
            yield b"x" * 10_000

    r2 = client.post("/v1/feedback", content=chunks(), headers={"content-type": "application/json"})
    assert r2.status_code == 413


@pytest.mark.parametrize("scanner_id", ["../../x", "/tmp/evil", "..", "a/b", "_unknown", "x" * 65, ""])
def test_an_upload_never_writes_outside_the_quarantine(env: Any, scanner_id: str) -> None:
    client, spool, _, tmp = env
    before = {p for p in tmp.rglob("*")}
    r = upload(client, b"junk, not an image", scanner_id=scanner_id)
    assert r.status_code in (400, 422), r.text
    written = {p for p in tmp.rglob("*")} - before
    quarantine = (tmp / "quarantine").resolve()
    assert all(p.resolve().is_relative_to(quarantine) or p.parent == tmp / "spool" for p in written), written
    if scanner_id:
        assert r.json()["detail"]["reason_code"] == "bad_scanner_id"


def test_refused_uploads_kept_on_disk_are_capped_oldest_first(tmp_path: Path) -> None:
    (tmp_path / "inbox").mkdir()
    spool = ListSpool(tmp_path)
    ingest = Ingest(inbox=tmp_path / "inbox", quarantine_dir=tmp_path / "quarantine", score=FakeScorer(),
                    spool_write=spool, reader=fake_reader, stats=lambda im: STATS, suffixes=[".png"],
                    max_bytes=100_000, upload_quarantine=(5, 10**9))
    for i in range(12):
        ingest.ingest_bytes(f"junk {i}".encode(), name=f"j{i}.png", scanner_id="scanner-a")
        os.utime(max((tmp_path / "quarantine").rglob("j*"), key=os.path.getmtime), (1000 + i, 1000 + i))
    kept = sorted(p.name for p in (tmp_path / "quarantine").rglob("*.png"))
    assert kept == sorted(f"j{i}.png" for i in range(7, 12))
    assert len([q for b in spool.batches for q in b.quarantines]) == 12  # every refusal still recorded


def test_json_nested_thousands_deep_is_a_4xx_not_a_crash(env: Any) -> None:
    client, _, _, _ = env  # found by tests/test_fuzz.py: json.loads raised RecursionError, a 500
    r = client.post("/v1/scans", content=b"[" * 5000 + b"]" * 5000, headers={"content-type": "application/json"})
    assert r.status_code == 422
