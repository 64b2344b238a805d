"""The monitoring job's accuracy page on real mail (random audits + officers' confirmations, Horvitz-Thompson
weighted) against a real store with the audit on, over the real owner: it pages when the model starts clearing
threats, says on what evidence, counts an item only once an officer resolved it, and continues across runs."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pytest

from serving.monitor_job import run_monitor
from store.audit_sampling import AuditDesign
from store.client import StoreClient
from store.engine import Store
from tests import monitor_seed
from tests.conftest import OwnerThread
from tests.monitor_seed import Drift
from xscreen.settings import Settings

SCANNER = "scanner-a"
BASELINE = Drift(prevalence=0.3)  # 5% of threats cleared: certified 5%, tolerated 5% + 3% = 8%


@pytest.fixture
def audited(settings: Settings, now: datetime) -> Iterator[StoreClient]:
    """A store whose writer sends half of the AI-cleared mail to officers (a fixed key: the same draws each run)."""
    design = AuditDesign(default_rate=0.5, floor=0.01, key="harm-test")
    with Store.open(settings.db_path, clock=lambda: now, audit=design) as store, OwnerThread(store, settings), \
            StoreClient.from_settings(settings) as client:
        client.register_model(monitor_seed.model_record(now))
        yield client


def mail(client: StoreClient, seed: int, start: int, n: int, t0: datetime, drift: Drift = BASELINE,
         hold: str | None = None) -> tuple[datetime, str | None]:
    """n items of scanner-a from t0 (2 s apart); an officer decides every flagged and every audited one by its
    truth, except the first audited cleared item (`hold="audit"`) or the first flagged one (`hold="flagged"`),
    left waiting. Returns when the stream ended and the scan id left waiting."""
    b, threats = monitor_seed.batch(np.random.default_rng(seed), SCANNER, start, n, t0, drift)
    client.ingest(b)
    end = t0 + timedelta(seconds=2 * n)
    audits = set(client.audit_outcomes(start=t0 - timedelta(hours=1), end=end + timedelta(hours=1))["scan_id"])
    flagged = {v.scan_id for v in b.verdicts if v.verdict != "clear"}
    work = [(v.scan_id, threat) for v, threat in zip(b.verdicts, threats, strict=True)
            if v.scan_id in flagged or v.scan_id in audits]
    held = next((s for s, _ in work if s in (audits if hold == "audit" else flagged)), None) if hold else None
    with ThreadPoolExecutor(8) as officers:  # deciding at once: the store's writer commits them in groups
        list(officers.map(lambda item: monitor_seed.decide(client, *item, end + timedelta(seconds=1)),
                          [(scan_id, threat) for scan_id, threat in work if scan_id != held]))
    return end + timedelta(seconds=2), held


def page(client: StoreClient) -> dict[str, Any]:
    return next(m.details for m in client.latest_measurements("miss_rate_page") if m.scanner_id == SCANNER)


def test_threats_cleared_by_the_model_and_found_by_audits_page_on_accuracy_saying_on_what_evidence(
        audited: StoreClient, settings: Settings, now: datetime) -> None:
    client = audited
    t, _ = mail(client, 1, 0, 200, now - timedelta(hours=3))
    assert run_monitor(settings, client, now=t).raised == []
    first = page(client)
    assert first["items"] == 200 and not first["alarm"] and first["message"].endswith("holds")
    assert first["detected"] > 30 and first["audited"] > 40
    # A concealment the model no longer sees: half the threats cleared. Audits find them; within 300 items it pages.
    t2, _ = mail(client, 2, 1000, 300, t, Drift(prevalence=0.3, detection=0.5))
    run = run_monitor(settings, client, now=t2)
    assert [(a.kind, a.severity, a.details["scanner_id"]) for a in run.raised] == [("accuracy", "page", SCANNER)]
    alert = run.raised[0]
    assert "real mail on scanner-a: accuracy is worse than certified" in alert.message
    assert "random audits + officer feedback" in alert.message and "Retrain or adapt" in alert.message
    assert alert.details["evidence"] == "audits + feedback" and alert.details["miss_rate"] > 0.08
    assert alert.details["low"] <= alert.details["miss_rate"] <= alert.details["high"]
    after = page(client)
    assert after["alarm"] and after["items"] == 500 and after["since"] in alert.message  # continued: none twice
    # While the alert is open the detector continues (and stays high); nothing is raised again.
    t3, _ = mail(client, 3, 2000, 40, t2)
    assert run_monitor(settings, client, now=t3).raised == []
    assert page(client)["alarm"] and page(client)["items"] == 540
    # Once handled, it starts afresh.
    client.set_alert_status(alert.alert_id, "resolved", "cli:sue")
    t4, _ = mail(client, 4, 3000, 40, t3)
    assert run_monitor(settings, client, now=t4).raised == []
    assert not page(client)["alarm"] and page(client)["items"] == 40


@pytest.mark.parametrize("hold", ["audit", "flagged"])
def test_an_item_waiting_for_an_officer_holds_back_the_items_scored_after_it_until_decided(
        audited: StoreClient, settings: Settings, now: datetime, hold: str) -> None:
    client = audited
    t0 = now - timedelta(hours=2)
    b, threats = monitor_seed.batch(np.random.default_rng(5), SCANNER, 0, 60, t0, BASELINE)  # the same items
    t, held = mail(client, 5, 0, 60, t0, hold=hold)
    ids = [v.scan_id for v in b.verdicts]
    assert held is not None and ids.index(held) > 0
    run_monitor(settings, client, now=t)
    assert page(client)["items"] == ids.index(held)  # the items scored before it, no more
    monitor_seed.decide(client, held, threats[ids.index(held)], t)
    run_monitor(settings, client, now=t + timedelta(minutes=1))
    assert page(client)["items"] == 60  # decided: the rest is counted, each item once
