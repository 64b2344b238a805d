"""App benchmark: the triage page's first view with 1M verdicts in the store (target < 1 s).

Usage:
  .venv/bin/python -m bench.bench_app                       # 1M verdict rows, 5 runs
  .venv/bin/python -m bench.bench_app --rows 200000 --runs 3 --json out.json

Builds the store with bench.bench_store's bulk generator (500k scans, each with a champion and a shadow verdict,
64-float embeddings, 1% of flagged items decided), points every scan at one real rendered dual-energy file and
gives inspect verdicts a heatmap. Then, with the real owner over HTTP on a free 127.0.0.1 port, it times (median
of --runs after one warm-up): the three owner calls behind the first view (queue, get_scan, similar_items), an
AppTest run of the triage page as a fresh session (queue only), opening the top item (claim + scan detail +
image read + render), and, for reference, a full run of the Drift & accuracy page over its default 24 h window.
AppTest adds its own overhead (protobuf round trip, no browser paint), so the page figures are the server-side
time a browser would wait for, give or take the websocket.
"""

from __future__ import annotations

import argparse
import base64
import json
import logging
import os
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from analytics.client import StoreClient
from analytics.store import Store
from bench.bench_store import NOW, build_query_db
from tests.app_harness import app_as, user
from tests.app_seed import render_images
from tests.conftest import OwnerThread, make_settings

ROOT = Path(__file__).resolve().parents[1]
OFFICER = "bench-officer"


def _median_ms(fn: Callable[[], Any], runs: int) -> float:
    fn()  # warm-up: first touch of the file's blocks, imports, caches
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return round(statistics.median(times), 1)


def prepare(db: Path, rows: int, image: Path) -> None:
    """Bulk rows, a real image behind every scan, 8x8 heatmaps on inspect verdicts."""
    import duckdb

    build_query_db(db, rows, embedding_dim=64)
    grid = base64.b64encode(bytes(range(0, 256, 4))).decode()  # 64 cells, a gradient
    con = duckdb.connect(str(db))
    con.execute("UPDATE scans SET source_path = ?, file_format = 'npz', dual_energy = true", [str(image)])
    con.execute("INSERT INTO heatmaps SELECT scan_id, model_version, top_class, 8, ?, NULL FROM verdicts "
                "WHERE verdict = 'inspect' AND top_class IS NOT NULL", [grid])
    con.execute("UPDATE verdicts SET heatmap_size = 8 WHERE verdict = 'inspect' AND top_class IS NOT NULL")
    con.execute("CHECKPOINT")
    con.close()


def first_view_ms(runs: int) -> float:
    def run() -> None:
        at = app_as(user(OFFICER, "officer", NOW), NOW).run()
        assert not at.exception and len(at.dataframe[0].value) == 50, at.exception
    return _median_ms(run, runs)


def page_ms(page: str, role: str, runs: int) -> float:
    """A fresh session's full run of another page (analysts' pages are not on the officer's hot path)."""
    def run() -> None:
        at = app_as(user("bench-" + role, role, NOW), NOW).run()  # type: ignore[arg-type]
        at.switch_page(page).run()
        assert not at.exception, at.exception
    return _median_ms(run, runs)


def open_item_ms(runs: int) -> float:
    times = []
    for i in range(runs + 1):
        at = app_as(user(OFFICER, "officer", NOW), NOW).run()
        start = time.perf_counter()
        at.button(key="triage_next").click().run()
        elapsed = (time.perf_counter() - start) * 1000
        assert not at.exception and not at.error, (at.exception, at.error)
        if i:  # the first is the warm-up
            times.append(elapsed)
    return round(statistics.median(times), 1)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="verdict rows (half as many scans)")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        settings = make_settings(folder / "home")
        settings.db_path.parent.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        prepare(settings.db_path, args.rows, render_images(folder / "images", 1, seed=1)[0].path)
        build_s = time.perf_counter() - t0
        os.environ.update({"XSCREEN_HOME": str(settings.home),
                           "XSCREEN_NETWORK__STORE_PORT": str(settings.network.store_port)})
        os.chdir(ROOT)
        with Store.from_settings(settings, clock=lambda: NOW) as store, OwnerThread(store, settings), \
                StoreClient.from_settings(settings) as client:
            top = client.queue(OFFICER, limit=1)["scan_id"].iloc[0]
            result: dict[str, Any] = {
                "verdict_rows": args.rows, "runs": args.runs, "build_s": round(build_s, 1),
                "queue_top50_http_ms": _median_ms(lambda: client.queue(OFFICER, limit=50), args.runs),
                "get_scan_http_ms": _median_ms(lambda: client.get_scan(top), args.runs),
                "similar_items_http_ms": _median_ms(lambda: client.similar_items(top, k=6), args.runs),
                "triage_first_view_apptest_ms": first_view_ms(args.runs),
                "triage_open_item_apptest_ms": open_item_ms(args.runs),
                "drift_page_apptest_ms": page_ms("pages/drift.py", "supervisor", args.runs),
                "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}",
            }
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
