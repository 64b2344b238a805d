"""Concurrent writers through the one writer lose nothing: in-process and over HTTP through the owner."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any

from store.client import StoreClient
from store.engine import Store
from xscreen.records import IngestBatch, VerdictRecord

CHUNK = 250  # verdicts per ingest call, as serving sends them (one call per scored batch)


def _verdict_batches(thread: int, n: int, now: datetime) -> list[IngestBatch]:
    verdicts = [
        VerdictRecord(scan_id=f"t{thread}-{i:06d}", model_version="m1", verdict="clear", any_threat=0.01,
                      scores={"knife": 0.01}, top_class=None, thresholds={}, embedding=[0.0] * 4, scored_at=now)
        for i in range(n)
    ]
    return [IngestBatch(batch_id=f"t{thread}-{k}", verdicts=verdicts[k:k + CHUNK]) for k in range(0, n, CHUNK)]


def _hammer(ingest: Callable[[IngestBatch], Any], threads: int, per_thread: int, now: datetime) -> list[Exception]:
    work = [_verdict_batches(t, per_thread, now) for t in range(threads)]
    failures: list[Exception] = []

    def run(batches: list[IngestBatch]) -> None:
        try:
            for batch in batches:
                ingest(batch)
        except Exception as exc:  # collected and asserted empty below
            failures.append(exc)

    workers = [threading.Thread(target=run, args=(b,)) for b in work]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return failures


def test_eight_threads_of_5000_verdicts_store_exactly_40000(store: Store, now: datetime) -> None:
    assert _hammer(store.ingest, threads=8, per_thread=5000, now=now) == []
    with store.reader() as cur:
        assert cur.execute("SELECT count(*), count(DISTINCT scan_id) FROM verdicts").fetchone() == (40_000, 40_000)
        assert cur.execute("SELECT count(*) FROM ingest_batches").fetchone()[0] == 8 * 5000 // CHUNK


def test_concurrent_writers_over_http_lose_nothing(owner: tuple[StoreClient, Store], now: datetime) -> None:
    client, store = owner
    assert _hammer(client.ingest, threads=4, per_thread=1000, now=now) == []
    assert store.info()["rows"]["verdicts"] == 4000
    # and a re-delivery of everything adds nothing
    assert _hammer(client.ingest, threads=4, per_thread=1000, now=now) == []
    assert store.info()["rows"]["verdicts"] == 4000
