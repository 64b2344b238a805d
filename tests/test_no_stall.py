"""No silent stall: store errors, scoring outages and logins interleaved with a live stream on a real owner.

Every file is scored within seconds once the failing part recovers; meanwhile health says degraded with the
reason and the metrics show the backlog and the oldest file's wait. (Before issue 12, a known-hash call that
failed with anything but StoreUnavailable dropped its whole batch until the next restart, silently.)
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from analytics.client import StoreClient
from analytics.spool import SpoolIngester, SpoolWriter
from analytics.store import Store
from serving.health import PipelineHealth
from serving.ingest import Ingest
from serving.metrics import ServingMetrics
from serving.runtime import make_watcher
from tests.serving_fakes import FakeScorer
from tests.serving_procs import drop, noise_png, wait_for
from xscreen.errors import StoreError
from xscreen.settings import Settings


class FlakyStore:
    """The real client, except that `known_hashes` fails while `failing` is set (like the owner's 500s)."""

    def __init__(self, client: StoreClient) -> None:
        self.client = client
        self.failing = threading.Event()
        self.failures = 0

    def known_hashes(self, hashes: list[str]) -> set[str]:
        if self.failing.is_set():
            self.failures += 1
            raise StoreError("ResourceInUseException: a cursor of this thread has an unfinished result")
        return self.client.known_hashes(hashes)


class SwitchableScorer(FakeScorer):
    def __init__(self) -> None:
        super().__init__("m-stall")
        self.down = threading.Event()

    def __call__(self, images: list[Any]) -> list[dict[str, Any]]:
        if self.down.is_set():
            raise TimeoutError("classifier did not answer within serving.score_timeout_s")
        return super().__call__(images)


@pytest.fixture
def pipeline(owner: tuple[StoreClient, Store], settings: Settings) -> Iterator[dict[str, Any]]:
    client, store = owner
    settings.serving.retry_base_s, settings.serving.retry_max_s = 0.1, 0.5
    flaky, scorer = FlakyStore(client), SwitchableScorer()
    health = PipelineHealth(stall_after_s=0.5)
    metrics = ServingMetrics()
    ingest = Ingest.from_settings(settings, score=scorer, spool_write=SpoolWriter(settings.spool_dir).write,
                                  known_hashes=flaky.known_hashes, on_batch=metrics.observe, health=health)
    watcher = make_watcher(settings, ingest)
    health.track_backlog(watcher.pending)
    metrics.track_backlog(watcher.pending)
    spool = SpoolIngester(settings.spool_dir, store.ingest)
    spool.start()
    watcher.start()
    try:
        yield {"client": client, "flaky": flaky, "scorer": scorer, "health": health, "metrics": metrics,
               "watcher": watcher, "inbox": settings.inbox_dir}
    finally:
        watcher.stop()
        spool.stop()


def _all_stored(client: StoreClient, shas: set[str]) -> bool:
    return client.known_hashes(sorted(shas)) == shas


def _champion_verdicts(client: StoreClient, sha: str) -> int:
    """Champion verdicts stored for one scan (read live, not from an analyst snapshot)."""
    return sum(1 for v in client.get_scan(sha[:16])["verdicts"] if v["role"] == "champion")


def test_store_errors_and_logins_interleaved_with_a_stream_stall_nothing(pipeline: dict[str, Any]) -> None:
    client, flaky, inbox = pipeline["client"], pipeline["flaky"], pipeline["inbox"]
    client.add_user("olga", "a long enough password 1", "officer", actor="test")
    stop = threading.Event()

    def logins() -> None:  # what made the owner's cursors fail known_hashes before issue 12
        while not stop.is_set():
            client.authenticate("olga", "a long enough password 1")
            client.get_setting("thresholds")

    login_thread = threading.Thread(target=logins, daemon=True)
    login_thread.start()
    data = [noise_png(i) for i in range(30)]
    try:
        for i, blob in enumerate(data):
            if i == 5:
                flaky.failing.set()  # the owner fails every known-hash call from here ...
            if i == 20:
                flaky.failing.clear()  # ... until here
            drop(inbox, f"scanner-{i % 2}", f"s{i}.png", blob)
            time.sleep(0.05)
            if i == 12:
                report = pipeline["health"].report()
                assert report.status == "degraded" and any("store owner" in r for r in report.reasons), report
    finally:
        stop.set()
        login_thread.join(10)
    shas = {hashlib.sha256(b).hexdigest() for b in data}
    assert flaky.failures > 0
    assert wait_for(lambda: _all_stored(client, shas), timeout=15), "files left unscored"
    assert all(_champion_verdicts(client, s) == 1 for s in shas)  # exactly one champion verdict each
    assert wait_for(lambda: pipeline["health"].report().status == "ok", timeout=5)


def test_a_scoring_outage_shows_in_health_and_metrics_and_every_file_is_scored_after(pipeline: dict[str, Any]
                                                                                     ) -> None:
    client, scorer, inbox = pipeline["client"], pipeline["scorer"], pipeline["inbox"]
    scorer.down.set()
    data = [noise_png(100 + i) for i in range(12)]
    for i, blob in enumerate(data):
        drop(inbox, "scanner-a", f"o{i}.png", blob)
    assert wait_for(lambda: pipeline["watcher"].pending()[1] > 0.8, timeout=10)
    report = pipeline["health"].report()
    assert report.status == "degraded" and report.backlog == len(data) and report.scoring_failures > 0
    assert any("scoring failing" in r for r in report.reasons)
    assert any("oldest unscored file has waited" in r for r in report.reasons)
    from prometheus_client.parser import text_string_to_metric_families

    values = {s.name: s.value for f in text_string_to_metric_families(pipeline["metrics"].render().decode())
              for s in f.samples}
    backlog, oldest = values["xscreen_ingest_backlog"], values["xscreen_oldest_pending_seconds"]
    assert backlog == len(data) and oldest > 0.8
    recovered = time.monotonic()
    scorer.down.clear()
    shas = {hashlib.sha256(b).hexdigest() for b in data}
    assert wait_for(lambda: _all_stored(client, shas), timeout=10), "outage files left unscored"
    assert time.monotonic() - recovered < 5.0  # the retry backoff is capped at retry_max_s (0.5 s here)
    assert pipeline["watcher"].pending()[0] == 0 and pipeline["health"].report().status == "ok"
    assert all(_champion_verdicts(client, s) == 1 for s in shas)
