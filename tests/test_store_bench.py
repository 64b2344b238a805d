"""The store benchmark still runs (tiny sizes): its generated rows feed the same queries the dashboard uses."""

from __future__ import annotations

from bench.bench_store import main


def test_store_bench_runs_at_tiny_size() -> None:
    out = main(["--ingest-verdicts", "500", "--rows", "4000", "--runs", "1", "--skip-owner"])
    assert out["ingest"]["in_process_verdicts_per_s"] > 0 and out["ingest"]["in_process_verdicts_per_cpu_s"] > 0
    queries = out["queries_4000"]
    assert set(queries) >= {"queue_top50_ms", "flag_rate_week_hourly_by_scanner_ms", "score_sample_knife_week_ms",
                            "get_scan_ms", "snapshot_s"}
