"""/v1 authentication against a real store owner: scanner tokens bound to their scanner, user sessions from
POST /v1/login, decisions recorded as the signed-in person, and the queue as each role may see it.

On the code before issue 12 every one of these requests was accepted from anyone (issue 12 item 4: a
`POST /v1/feedback {"decision":"cleared","officer":"mallory"}` cleared an item flagged at 1.0).
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from analytics.client import StoreClient
from analytics.store import Store
from serving.api import ApiBackend, create_api
from serving.ingest import Ingest
from serving.metrics import ServingMetrics
from tests.seeding import seed_store
from tests.serving_fakes import STATS, FakeScorer, ListSpool, fake_reader, png_bytes
from xscreen.settings import Settings

PASSWORD = "a long enough password 7"


@pytest.fixture
def api(owner: tuple[StoreClient, Store], settings: Settings, tmp_path: Path, now: datetime
        ) -> Iterator[dict[str, Any]]:
    client, store = owner
    seeded = seed_store(client, 60, seed=3, now=now)
    for name, role in (("olga", "officer"), ("sam", "supervisor"), ("ana", "analyst")):
        client.add_user(name, PASSWORD, role, actor="test")
    inbox = tmp_path / "inbox"
    (inbox / "scanner-a").mkdir(parents=True)
    (inbox / "scanner-b").mkdir(parents=True)
    spool = ListSpool(tmp_path)
    ingest = Ingest(inbox=inbox, quarantine_dir=tmp_path / "quarantine", score=FakeScorer(), spool_write=spool,
                    reader=fake_reader, stats=lambda im: STATS, suffixes=[".png"], max_bytes=100_000)
    backend = ApiBackend(ingest=ingest, store=client, metrics=ServingMetrics(), max_upload_bytes=100_000)
    backend.auth._cache_s = 0.0  # revocation takes effect at once here (5 s in production)
    yield {"http": TestClient(create_api(backend)), "client": client, "spool": spool, "seeded": seeded,
           "inbox": inbox}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def login(http: TestClient, username: str) -> str:
    r = http.post("/v1/login", json={"username": username, "password": PASSWORD})
    assert r.status_code == 200, r.text
    return str(r.json()["token"])


def upload(http: TestClient, token: str | None, **form: str) -> Any:
    headers = bearer(token) if token else {}
    return http.post("/v1/scans", files={"file": ("x.png", io.BytesIO(png_bytes(90)), "image/png")}, data=form,
                     headers=headers)


def test_without_a_token_nothing_is_scored_decided_or_read(api: dict[str, Any]) -> None:
    http, seeded = api["http"], api["seeded"]
    flagged = seeded.flagged[0]
    attempts = [
        upload(http, None, scanner_id="scanner-a"),
        http.post("/v1/scans", json={"path": "scanner-a/x.png"}),
        http.post("/v1/feedback", json={"scan_id": flagged, "decision": "cleared", "officer": "mallory"}),
        http.get("/v1/queue"),
        http.get(f"/v1/scans/{flagged}"),
        upload(http, "not-a-token", scanner_id="scanner-a"),
    ]
    assert [r.status_code for r in attempts] == [401] * 6
    assert attempts[0].headers["www-authenticate"] == "Bearer"
    assert api["spool"].batches == []  # nothing scored or recorded
    assert api["client"].get_scan(flagged)["decisions"] == []  # mallory cleared nothing
    assert http.get("/healthz").status_code == 200  # health stays open


def test_a_scanner_token_posts_for_its_own_scanner_only(api: dict[str, Any]) -> None:
    http, client, inbox = api["http"], api["client"], api["inbox"]
    token = client.issue_scanner_token("scanner-a", actor="test")
    ok = upload(http, token)  # no scanner_id in the form: it comes from the token
    assert ok.status_code == 201, ok.text
    assert api["spool"].batches[-1].scans[0].scanner_id == "scanner-a"
    assert upload(http, token, scanner_id="scanner-b").status_code == 403
    (inbox / "scanner-b" / "p.png").write_bytes(png_bytes(4))
    (inbox / "scanner-a" / "p.png").write_bytes(png_bytes(5))
    assert http.post("/v1/scans", json={"path": "scanner-b/p.png"}, headers=bearer(token)).status_code == 403
    assert (inbox / "scanner-b" / "p.png").exists()
    assert http.post("/v1/scans", json={"path": "scanner-a/p.png"}, headers=bearer(token)).status_code == 201
    assert http.post("/v1/feedback", json={"scan_id": "x", "decision": "cleared"},
                     headers=bearer(token)).status_code == 403  # a scanner is not an officer
    officer = login(http, "olga")
    assert upload(http, officer, scanner_id="scanner-a").status_code == 403  # a person is not a scanner
    client.revoke_token("scanner-a", actor="test")
    assert upload(http, token).status_code == 401


def test_a_decision_is_recorded_as_the_signed_in_officer(api: dict[str, Any]) -> None:
    http, client, flagged = api["http"], api["client"], api["seeded"].flagged
    olga = login(http, "olga")
    refused = http.post("/v1/feedback", json={"scan_id": flagged[0], "decision": "cleared", "officer": "mallory"},
                        headers=bearer(olga))
    assert refused.status_code == 403 and "olga" in refused.json()["detail"]
    ok = http.post("/v1/feedback", json={"scan_id": flagged[0], "decision": "confirmed"}, headers=bearer(olga))
    assert ok.status_code == 201, ok.text
    (decision,) = client.get_scan(flagged[0])["decisions"]
    assert decision["officer"] == "olga" and decision["decision"] == "confirmed"
    analyst = login(http, "ana")  # an analyst's role may not decide
    assert http.post("/v1/feedback", json={"scan_id": flagged[1], "decision": "cleared"},
                     headers=bearer(analyst)).status_code == 403
    assert http.post("/v1/logout", headers=bearer(olga)).status_code == 204
    assert http.get("/v1/queue", headers=bearer(olga)).status_code == 401  # signed out


def test_officers_see_the_queue_without_verdicts_or_scores_like_the_triage_page(api: dict[str, Any]) -> None:
    http = api["http"]
    officer = http.get("/v1/queue", headers=bearer(login(http, "olga")))
    supervisor = http.get("/v1/queue", headers=bearer(login(http, "sam")))
    assert officer.status_code == supervisor.status_code == 200
    rows, full = officer.json(), supervisor.json()
    assert rows and len(rows) == len(full)
    assert all("verdict" not in r and "scores" not in r and "model_version" not in r for r in rows)
    assert {"scan_id", "any_threat", "top_class", "received_at"} <= set(rows[0])
    assert "verdict" in full[0]  # a supervisor sees what an officer may not
    scan = http.get(f"/v1/scans/{rows[0]['scan_id']}", headers=bearer(login(http, "olga"))).json()
    assert scan["verdicts"] and all("verdict" not in v and v["role"] == "champion" for v in scan["verdicts"])


def test_a_scanner_reads_only_its_own_scans(api: dict[str, Any]) -> None:
    http, client, seeded = api["http"], api["client"], api["seeded"]
    scan = client.get_scan(seeded.scan_ids[0])
    own = client.issue_scanner_token(scan["scanner_id"], actor="test")
    other = client.issue_scanner_token("scanner-zz", actor="test")
    assert http.get(f"/v1/scans/{scan['scan_id']}", headers=bearer(own)).status_code == 200
    assert http.get(f"/v1/scans/{scan['scan_id']}", headers=bearer(other)).status_code == 404
    assert http.get("/v1/queue", headers=bearer(own)).status_code == 403
