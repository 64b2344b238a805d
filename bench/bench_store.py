"""Store benchmark: verdict ingest rate (in-process, over HTTP, through the spool) and dashboard query times.

Usage:
  .venv/bin/python -m bench.bench_store --ingest-verdicts 100000             # ingest only
  .venv/bin/python -m bench.bench_store --rows 1000000 --rows 10000000       # dashboard queries at those sizes
  .venv/bin/python -m bench.bench_store --ingest-verdicts 100000 --rows 1000000 --runs 5 --json out.json

Ingest: batches as serving sends them (one IngestBatch per scored source batch: scans + champion + shadow
verdicts, 64-float embeddings, heatmaps for flagged items), from 8 concurrent callers; records are built before
the clock starts. HTTP and spool runs start a real `xscreen store-owner` subprocess on a temporary home.
Queries: rows are bulk-generated with DuckDB SQL (half as many scans as verdict rows: every scan has a champion
and a shadow verdict) and each query is timed `--runs` times after one warm-up; the median is reported.
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa

from store import monitoring, scans, triage
from store.audit_sampling import AuditDesign
from store.client import StoreClient, owner_is_up
from store.engine import Store
from store.identity import read_home_id, read_owner_token
from store.migrations import migrate, rebuild_rollups
from store.spool import SpoolWriter, spool_files
from xscreen.records import IngestBatch
from xscreen.settings import DEFAULT_CLASSES

NOW = datetime(2026, 11, 20, 12, tzinfo=UTC)
CALLERS = 8
SCANS_PER_BATCH = 125  # -> 250 verdicts (champion + shadow) per IngestBatch


def _batches(n_verdicts: int, embedding_dim: int = 64) -> list[IngestBatch]:
    from tests.seeding import make_batch  # the same realistic records the tests use

    rng = np.random.default_rng(0)
    n_scans = n_verdicts // 2
    return [make_batch(rng, s, min(SCANS_PER_BATCH, n_scans - s), NOW, DEFAULT_CLASSES, embedding_dim,
                       batch_id=f"bench-{s}") for s in range(0, n_scans, SCANS_PER_BATCH)]


def _parallel(ingest: Callable[[IngestBatch], Any], batches: list[IngestBatch]) -> float:
    """Seconds for CALLERS threads to ingest all batches (round-robin split)."""
    parts = [batches[i::CALLERS] for i in range(CALLERS)]
    threads = [threading.Thread(target=lambda p=p: [ingest(b) for b in p]) for p in parts]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.perf_counter() - start


def _cpu_seconds(pid: int | None = None) -> float:
    """User+system CPU seconds of a process (this one by default): contention-independent cost."""
    if pid is None:
        return time.process_time()
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime, stime


def bench_ingest_in_process(batches: list[IngestBatch], folder: Path,
                            audit_rate: float = 0.0) -> tuple[float, float]:
    """(verdicts/s wall clock, verdicts per CPU-second of the whole process) with 8 callers in-process; with
    `audit_rate` > 0 the writer also draws cleared verdicts for the random audit (store/ground_truth.py)."""
    n = sum(len(b.verdicts) for b in batches)
    audit = AuditDesign(default_rate=audit_rate, key="bench")
    with Store.open(folder / f"inproc-{audit_rate:g}.duckdb", audit=audit) as store:
        cpu = _cpu_seconds()
        seconds = _parallel(store.ingest, batches)
        cpu = _cpu_seconds() - cpu
        assert store.info()["rows"]["verdicts"] == n
    return n / seconds, n / cpu


class OwnerProcess:
    """`xscreen store-owner` on a temporary home and free port, as in production."""

    def __init__(self, home: Path) -> None:
        import socket

        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        env = {k: v for k, v in os.environ.items() if not k.startswith("XSCREEN_")}
        env.update(XSCREEN_HOME=str(home), XSCREEN_NETWORK__STORE_PORT=str(self.port), XSCREEN_LOG_LEVEL="WARNING")
        self.url = f"http://127.0.0.1:{self.port}"
        self.home = home
        self.spool = home / "spool"
        home.mkdir(parents=True, exist_ok=True)
        self.log = home / "owner.log"  # a file, not a pipe: an undrained pipe could block the owner
        with self.log.open("wb") as log_file:
            self.proc = subprocess.Popen([sys.executable, "-m", "cli", "store-owner"], env=env,
                                         stdout=subprocess.DEVNULL, stderr=log_file)

    def __enter__(self) -> OwnerProcess:
        deadline = time.monotonic() + 60
        while not owner_is_up(self.url):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"store owner did not start: {self.log.read_text()[-2000:]}")
            time.sleep(0.05)
        return self

    def client(self) -> StoreClient:
        """A client with this home's owner token and identity (created by the owner on start)."""
        return StoreClient(self.url, read_owner_token(self.home), read_home_id(self.home), home=self.home)

    def __exit__(self, *exc: object) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)


def bench_ingest_http(batches: list[IngestBatch], folder: Path) -> tuple[float, float]:
    """(verdicts/s wall clock, verdicts per CPU-second of the owner process) over HTTP from 8 callers."""
    n = sum(len(b.verdicts) for b in batches)
    with OwnerProcess(folder / "http-home") as owner, owner.client() as client:
        cpu = _cpu_seconds(owner.proc.pid)
        seconds = _parallel(client.ingest, batches)
        cpu = _cpu_seconds(owner.proc.pid) - cpu
        assert client.info()["rows"]["verdicts"] == n
    return n / seconds, n / cpu


def bench_ingest_spool(batches: list[IngestBatch], folder: Path) -> tuple[float, float, float]:
    """(verdicts/s from first file written to last committed, verdicts per owner CPU-second,
    median ms from a file's rename to its commit)."""
    n = sum(len(b.verdicts) for b in batches)
    with OwnerProcess(folder / "spool-home") as owner, owner.client() as client:
        writer = SpoolWriter(owner.spool)
        cpu = _cpu_seconds(owner.proc.pid)
        start = time.perf_counter()
        _parallel(writer.write, batches)
        while client.info()["rows"]["verdicts"] < n:
            time.sleep(0.05)
        rate = n / (time.perf_counter() - start)
        per_cpu = n / (_cpu_seconds(owner.proc.pid) - cpu)
        while spool_files(owner.spool):  # committed; let the owner finish deleting before timing latency
            time.sleep(0.05)
        latencies = []
        from tests.seeding import make_batch

        rng = np.random.default_rng(1)
        for i in range(20):  # one new parcel per file, as a quiet scanner delivers them
            path = writer.write(make_batch(rng, 10**8 + i, 1, NOW, DEFAULT_CLASSES, batch_id=f"latency-{i}"))
            t0 = time.perf_counter()
            while path.exists():  # the owner deletes the file right after COMMIT
                time.sleep(0.0005)
            latencies.append((time.perf_counter() - t0) * 1000)
    return rate, per_cpu, statistics.median(latencies)


GENERATE_SCANS = """
INSERT INTO scans BY NAME
SELECT substr(sha256(i::VARCHAR), 1, 16) AS scan_id, sha256(i::VARCHAR) AS sha256, 'scanner-' || (i % 4) AS scanner_id,
       'bench/' || i AS source_path, 'png' AS file_format, 640 AS width, 480 AS height, 8 AS bit_depth,
       i % 2 = 0 AS dual_energy, $now - to_microseconds((random() * 7 * 86400e6)::BIGINT) AS received_at,
       1 + random() * 0.1 AS mean_attenuation, 0.02 AS noise_level, 3 AS dynamic_range, random() * 0.6 AS organic_fraction,
       random() * 0.3 AS inorganic_fraction, random() * 0.1 AS metal_fraction, false AS is_canary, 'bench' AS batch_id
FROM range($n) t(i)
"""

GENERATE_VERDICTS = """
INSERT INTO verdicts BY NAME
SELECT s.scan_id, m.version AS model_version, m.role, s.scanner_id,
       CASE WHEN a >= 0.6 THEN 'inspect' WHEN a >= 0.35 THEN 'uncertain' ELSE 'clear' END AS verdict,
       a AS any_threat, map_from_entries(list_transform($classes, lambda c: {'k': c, 'v': CASE WHEN c = top THEN a
            ELSE random() * 0.05 END})) AS scores,
       CASE WHEN a >= 0.2 THEN top END AS top_class, '{}'::JSON AS thresholds,
       list_transform(range($dim), lambda x: random()::FLOAT) AS embedding, 0 AS heatmap_size,
       s.received_at + INTERVAL 80 MILLISECOND AS scored_at, 80.0 AS latency_ms, 'bench' AS batch_id
FROM (SELECT *, CASE WHEN u < 0.05 THEN 0.6 + 0.4 * random() WHEN u < 0.12 THEN 0.35 + 0.25 * random()
                     ELSE 0.35 * pow(random(), 3) END AS a,
             $classes[1 + (hash(scan_id) % len($classes))::INTEGER] AS top
      FROM (SELECT scan_id, scanner_id, received_at, random() AS u FROM scans)) s
CROSS JOIN (VALUES ('m-champion', 'champion'), ('m-shadow', 'shadow')) m(version, role)
"""


def build_query_db(path: Path, verdict_rows: int, embedding_dim: int) -> None:
    import duckdb

    con = duckdb.connect(str(path))
    con.execute("SET GLOBAL TimeZone = 'UTC'")
    migrate(con)
    con.execute("SELECT setseed(0.42)")
    con.execute(GENERATE_SCANS, {"n": verdict_rows // 2, "now": NOW})
    con.execute(GENERATE_VERDICTS, {"classes": DEFAULT_CLASSES, "dim": embedding_dim})
    # a realistic amount of officer work: 1% of flagged items decided
    con.execute("INSERT INTO decisions SELECT 'd-' || scan_id, scan_id, 'officer-1', 'cleared', NULL, NULL, "
                "scored_at + INTERVAL 5 MINUTE, model_version FROM verdicts "
                "WHERE role = 'champion' AND verdict <> 'clear' USING SAMPLE 1 PERCENT (bernoulli)")
    rebuild_rollups(con)  # rows inserted in plain SQL bypassed the writer that keeps the rollups
    con.execute("CHECKPOINT")
    con.close()


def _median_ms(fn: Callable[[], Any], runs: int) -> float:
    fn()  # warm-up: first touch of the file's blocks
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def bench_queries(folder: Path, verdict_rows: int, runs: int, embedding_dim: int) -> dict[str, float]:
    path = folder / f"query-{verdict_rows}.duckdb"
    t0 = time.perf_counter()
    build_query_db(path, verdict_rows, embedding_dim)
    logging.info("generated %d verdict rows in %.1f s", verdict_rows, time.perf_counter() - t0)
    week_start = datetime(2026, 11, 13, 12, tzinfo=UTC)
    results: dict[str, float] = {}
    with Store.open(path, clock=lambda: NOW) as store, store.reader() as cur:
        results["queue_top50_ms"] = _median_ms(lambda: triage.queue(cur, "officer-2", 50, None, now=NOW), runs)
        results["flag_rate_week_hourly_by_scanner_ms"] = _median_ms(
            lambda: scans.verdict_counts(cur, week_start, NOW, bucket="hour"), runs)
        results["score_sample_knife_week_ms"] = _median_ms(
            lambda: monitoring.score_samples(cur, "knife", week_start, NOW), runs)
        top = triage.queue(cur, "x", 1, None, now=NOW)["scan_id"][0]
        results["get_scan_ms"] = _median_ms(lambda: scans.get_scan(cur, top), runs)
        start = time.perf_counter()
        snap = store.snapshot(Path("snapshot.duckdb"))  # what `xscreen snapshot` and analyst SQL pay
        results["snapshot_s"] = round(time.perf_counter() - start, 2)
        snap.unlink()
    results["file_mb"] = round(path.stat().st_size / 1e6, 1)
    path.unlink()
    return results


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ingest-verdicts", type=int, default=0, help="Verdicts per ingest run (0 = skip ingest).")
    parser.add_argument("--rows", type=int, action="append", default=[], help="Verdict rows for query timing.")
    parser.add_argument("--runs", type=int, default=3, help="Timed runs per figure (median reported).")
    parser.add_argument("--embedding-dim", type=int, default=16, help="Embedding length of generated query rows.")
    parser.add_argument("--audit-rate", type=float, default=0.0,
                        help="Also time in-process ingest with the random audit drawing at this rate (0 = skip).")
    parser.add_argument("--audit-draw", type=int, default=0,
                        help="Time the writer's audit draw alone on this many cleared verdicts (0 = skip).")
    parser.add_argument("--skip-owner", action="store_true", help="Skip the HTTP and spool runs (no subprocess).")
    parser.add_argument("--json", type=Path, help="Also write the results here.")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("store.migrations").setLevel(logging.WARNING)
    out: dict[str, Any] = {"machine": f"{platform.machine()} {os.cpu_count()} CPUs, {platform.platform()}",
                           "python": platform.python_version()}
    with tempfile.TemporaryDirectory(prefix="xscreen-bench-") as tmp:
        folder = Path(tmp)
        if args.ingest_verdicts:
            batches = _batches(args.ingest_verdicts)
            gc.freeze()  # the pre-built records are the bench's, not the store's: keep them out of GC passes
            out["ingest"] = _ingest_runs(batches, folder, args.runs, args.skip_owner, args.audit_rate)
        if args.audit_draw:
            out["audit_draw_cpu_us_per_cleared_verdict"] = bench_audit_draw(args.audit_draw, args.runs)
        for rows in args.rows:
            out[f"queries_{rows}"] = bench_queries(folder, rows, args.runs, args.embedding_dim)
            logging.info("%d rows: %s", rows, out[f"queries_{rows}"])
    print(json.dumps(out, indent=2))
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))
    return out


def bench_audit_draw(n: int, runs: int) -> float:
    """CPU microseconds per cleared verdict of the writer's audit draw (store.ground_truth.select_audits) on a
    RETURNING table of n new champion `clear` verdicts, in an in-memory database; median of `runs`."""
    from store.ground_truth import select_audits
    from store.wire import TS

    rng = np.random.default_rng(0)
    table = pa.table({"scan_id": [f"{i:016x}" for i in range(n)], "model_version": ["m"] * n, "batch_id": ["b"] * n,
                      "scanner_id": [f"scanner-{i % 3}" for i in range(n)], "role": ["champion"] * n,
                      "verdict": ["clear"] * n, "any_threat": rng.random(n) * 0.05, "top_class": [None] * n,
                      "scored_at": pa.array([NOW] * n, TS)})
    design = AuditDesign(default_rate=0.01, band_edges=(0.01,), key="bench")
    times = []
    for _ in range(runs):
        con = duckdb.connect()
        migrate(con)
        cpu = time.process_time()
        select_audits(con, table, design, NOW)
        times.append(time.process_time() - cpu)
        con.close()
    return round(statistics.median(times) / n * 1e6, 2)


def _ingest_runs(batches: list[IngestBatch], folder: Path, runs: int, skip_owner: bool,
                 audit_rate: float = 0.0) -> dict[str, float]:
    """Medians over `runs` fresh databases: verdicts/s (wall clock) and verdicts per CPU-second for each path."""
    figures: dict[str, list[float]] = {}

    def note(name: str, value: float) -> None:
        figures.setdefault(name, []).append(value)

    for i in range(runs):
        run_dir = folder / f"ingest-{i}"
        run_dir.mkdir()
        wall, per_cpu = bench_ingest_in_process(batches, run_dir)
        note("in_process_verdicts_per_s", wall)
        note("in_process_verdicts_per_cpu_s", per_cpu)
        if audit_rate > 0:  # the same, with the writer drawing cleared verdicts for the random audit
            wall, per_cpu = bench_ingest_in_process(batches, run_dir, audit_rate)
            note("in_process_audited_verdicts_per_s", wall)
            note("in_process_audited_verdicts_per_cpu_s", per_cpu)
        if not skip_owner:
            wall, per_cpu = bench_ingest_http(batches, run_dir)
            note("http_verdicts_per_s", wall)
            note("http_verdicts_per_owner_cpu_s", per_cpu)
            wall, per_cpu, latency = bench_ingest_spool(batches, run_dir)
            note("spool_verdicts_per_s", wall)
            note("spool_verdicts_per_owner_cpu_s", per_cpu)
            note("spool_file_to_commit_ms", latency)
        logging.info("ingest run %d: %s", i, {k: round(v[-1], 1) for k, v in figures.items()})
    return {k: round(statistics.median(v), 1) for k, v in figures.items()}


if __name__ == "__main__":
    main()
