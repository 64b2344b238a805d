"""Every store read finishes its result: reads that fetched one row never block the next read on any thread.

Issue 12, item 1: `fetchone()` left a thread's DuckDB cursor with an unfinished result, and the next
`known_hashes` on that thread raised ResourceInUseException (HTTP 500): serving dropped the batch.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any

from store.client import StoreClient
from store.engine import Store
from tests.seeding import make_batch
from xscreen.errors import XscreenError

PASSWORD = "correct-horse-battery"


def _known_scan_hashes(store: Store, now: datetime, n: int = 20) -> list[str]:
    import numpy as np

    batch = make_batch(np.random.default_rng(3), 0, n, now, ["knife"])
    store.ingest(batch)
    return [s.sha256 for s in batch.scans]


def test_a_read_that_fetched_one_row_does_not_block_the_next_read_in_the_same_thread(store: Store,
                                                                                   now: datetime) -> None:
    hashes = _known_scan_hashes(store, now)
    store.put_setting("greeting", {"hello": 1}, actor="cli:test")
    store.add_user("ann", PASSWORD, "officer")
    for first in (lambda: store.get_setting("greeting"), lambda: store.authenticate("ann", PASSWORD),
                  lambda: store.get_user("ann"), lambda: store.info()):
        first()
        assert store.known_hashes(hashes) == set(hashes)


def _run_threads(jobs: list[Callable[[], Any]], rounds: int) -> list[str]:
    failures: list[str] = []

    def loop(job: Callable[[], Any]) -> None:
        for _ in range(rounds):
            try:
                job()
            except XscreenError as exc:  # collected, and the test asserts there are none
                failures.append(f"{type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=loop, args=(job,)) for job in jobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    return failures


def test_logins_and_settings_reads_interleaved_with_known_hashes_never_fail_over_http(
        owner: tuple[StoreClient, Store], now: datetime) -> None:
    client, store = owner
    hashes = _known_scan_hashes(store, now)
    store.put_setting("greeting", {"hello": 1}, actor="cli:test")
    store.add_user("ann", PASSWORD, "officer")
    seen: list[set[str]] = []
    jobs: list[Callable[[], Any]] = [
        lambda: client.authenticate("ann", PASSWORD),
        lambda: client.get_setting("greeting"),
        lambda: client.set_password("ann", PASSWORD, actor="cli:test"),
        lambda: client.get_user("ann"),
        lambda: seen.append(client.known_hashes(hashes)),
        lambda: seen.append(client.known_hashes(hashes)),
        lambda: seen.append(client.known_hashes(hashes)),
    ]
    assert _run_threads(jobs, rounds=12) == []
    assert len(seen) == 36 and all(s == set(hashes) for s in seen)


def test_store_code_never_leaves_a_result_half_read() -> None:
    # The structural rule behind the fix: `store.fetch.first()` fetches to the end; `.fetchone()` does not.
    from pathlib import Path

    import store

    offenders = [p.name for p in Path(store.__file__).parent.glob("*.py") if ".fetchone(" in p.read_text()]
    assert offenders == []


def test_cleared_images_are_a_scanners_recent_benign_scans_newest_first(owner: tuple[StoreClient, Store],
                                                                       now: datetime) -> None:
    """What `xscreen adapt --scanner` reads: only that scanner, only scans the champion cleared (or an officer
    did), newest first, with where the image is."""
    from tests.seeding import SCANNERS, seed_store

    client, store = owner
    seeded = seed_store(store, 60, seed=3, now=now)
    mine = {sid for i, sid in enumerate(seeded.scan_ids) if SCANNERS[i % len(SCANNERS)] == "scanner-a"}
    expected = mine - set(seeded.flagged)
    for side in (store, client):
        df = side.cleared_images("scanner-a", limit=1000)
        assert set(df["scan_id"]) == expected and len(df) == len(expected)
        assert list(df["scored_at"]) == sorted(df["scored_at"], reverse=True)
        assert all(p.startswith("inbox/scanner-a/") for p in df["path"])
        assert len(side.cleared_images("scanner-a", limit=3)) == 3
