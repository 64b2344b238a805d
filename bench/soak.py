"""Soak: many kill -9 rounds against a running `xscreen serve` under a stream, then tens of thousands of fuzz cases.

Usage:
  .venv/bin/python -m bench.soak                                   # 24 rounds, 10,000 fuzz cases (~20 min, 2 cores)
  .venv/bin/python -m bench.soak --rounds 8 --fuzz-files 2000 --fuzz-requests 1000 --json out.json
  .venv/bin/python -m bench.soak --components supervisor,ray --rounds 4 --fuzz-files 0 --fuzz-requests 0

Reports: rounds, items streamed, items lost (must be 0), duplicates (0), acknowledged decisions kept, database
invariants, time to recover per component (killed -> a new process in its place, a file dropped after it is
stored, /healthz and the watcher ok; target under 15 s without a person), fuzz cases tried and crashes (0).
Exit status 1 when anything was lost, doubled, left unrecovered or crashed. Rounds: bench/chaos.py; fuzz
cases: bench/fuzz.py. Everything runs in a temporary home on free 127.0.0.1 ports and is stopped at the end.
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.chaos import COMPONENTS, Chaos
from bench.fuzz import FuzzReport, run_file_fuzz, run_request_fuzz

TARGET_S = 15.0


def soak_rounds(home: Path, rounds: int, rate: float, seed: int,
                components: tuple[str, ...] = COMPONENTS) -> dict[str, Any]:
    with Chaos(home, seed=seed, rate=rate) as chaos:
        for component in chaos.plan(rounds, components):
            result = chaos.round(component)
            print(f"  round {len(chaos.rounds):>3}: {component:<11} recovered in "
                  f"{result.recovered_s if result.recovered_s is not None else 'NEVER'} s", flush=True)
        drained = chaos.drain()
        verdict = chaos.verify()
        try:
            status, stop_s, left = *chaos.stop_serve(), None
        except AssertionError as exc:  # something outlived the stop: reported, and the figures above still kept
            status, stop_s, left = -1, float("nan"), str(exc)
    per: dict[str, list[float | None]] = {}
    for r in chaos.rounds:
        per.setdefault(r.component, []).append(r.recovered_s)
    recovery = {c: {"rounds": len(v), "median_s": _median(v), "max_s": _max(v),
                    "unrecovered": sum(1 for x in v if x is None)} for c, v in sorted(per.items())}
    return {"rounds": len(chaos.rounds), "streamed": verdict.streamed, "stored": verdict.stored,
            "lost": len(verdict.lost), "duplicates": len(verdict.duplicates), "drained": drained,
            "decisions_acked": verdict.decisions_acked, "decisions_missing": len(verdict.decisions_missing),
            "integrity_problems": verdict.integrity, "recovery": recovery, "sigterm_exit": status,
            "sigterm_stop_s": round(stop_s, 1), "left_after_stop": left}


def _median(values: list[float | None]) -> float | None:
    done = [v for v in values if v is not None]
    return round(statistics.median(done), 2) if done else None


def _max(values: list[float | None]) -> float | None:
    done = [v for v in values if v is not None]
    return round(max(done), 2) if done else None


def soak_fuzz(home: Path, files: int, requests: int, seed: int) -> FuzzReport:
    """File fuzz through the real reader and ingest; request fuzz through the real API over a real owner."""
    from fastapi.testclient import TestClient

    from serving.api import ApiBackend, create_api
    from serving.ingest import Ingest
    from serving.metrics import ServingMetrics
    from store.client import StoreClient
    from store.engine import Store
    from tests.conftest import OwnerThread, make_settings
    from tests.serving_fakes import FakeScorer, ListSpool
    from xray.formats import SUPPORTED_SUFFIXES, image_stats, read_scan

    for noisy in ("serving.ingest", "tifffile", "python_multipart", "python_multipart.multipart"):
        logging.getLogger(noisy).setLevel(logging.CRITICAL)  # one line per refused case otherwise
    settings = make_settings(home)
    (home / "spool-list").mkdir(parents=True, exist_ok=True)
    ingest = Ingest(inbox=home / "fuzz-inbox", quarantine_dir=home / "fuzz-quarantine", score=FakeScorer(),
                    spool_write=ListSpool(home / "spool-list"), reader=read_scan, stats=image_stats,
                    suffixes=SUPPORTED_SUFFIXES, max_bytes=2_000_000, max_pixels=4_000_000,
                    max_decoded_bytes=64 * 2**20, truncated_wait_s=0.0)
    report = run_file_fuzz(ingest, home / "fuzz-inbox", seed=seed, n=files)
    with Store.from_settings(settings) as store, OwnerThread(store, settings), \
            StoreClient.from_settings(settings) as client:
        token = client.issue_scanner_token("scanner-a", actor="bench:soak")
        (home / "fuzz-inbox" / "scanner-a").mkdir(parents=True, exist_ok=True)
        backend = ApiBackend(ingest=ingest, store=client, metrics=ServingMetrics(), max_upload_bytes=200_000)
        report.add(run_request_fuzz(TestClient(create_api(backend)), seed=seed + 1, n=requests, token=token))
    return report


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=24, help="kill rounds (every component at least once)")
    parser.add_argument("--components", default=",".join(COMPONENTS),
                        help=f"comma-separated components to kill (default all: {','.join(COMPONENTS)})")
    parser.add_argument("--rate", type=float, default=5.0, help="files per second streamed during the rounds")
    parser.add_argument("--fuzz-files", type=int, default=6000)
    parser.add_argument("--fuzz-requests", type=int, default=4000)
    parser.add_argument("--seed", type=int, default=20261130)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    components = tuple(c.strip() for c in args.components.split(",") if c.strip())
    unknown = sorted(set(components) - set(COMPONENTS))
    if unknown or not components:
        parser.error(f"--components: unknown {unknown}; choose among {', '.join(COMPONENTS)}")
    logging.basicConfig(level=logging.WARNING)
    began = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="xscreen-soak-") as tmp:
        print(f"soak: {args.rounds} kill rounds at {args.rate:g} files/s ...", flush=True)
        out = soak_rounds(Path(tmp) / "home", args.rounds, args.rate, args.seed, components)
        print(f"fuzz: {args.fuzz_files} files + {args.fuzz_requests} requests ...", flush=True)
        fuzz = soak_fuzz(Path(tmp) / "fuzz", args.fuzz_files, args.fuzz_requests, args.seed)
    out["fuzz"] = {"cases": fuzz.cases, "files_scored": fuzz.scored, "files_quarantined": fuzz.quarantined,
                   "answers": {str(k): v for k, v in sorted(fuzz.answers.items())}, "crashes": len(fuzz.crashes),
                   "crash_examples": fuzz.crashes[:5], "slowest_case_s": round(fuzz.slowest_s, 3)}
    out["wall_s"] = round(time.monotonic() - began, 1)
    slow = {c: r["max_s"] for c, r in out["recovery"].items() if r["max_s"] is None or r["max_s"] > TARGET_S}
    out["over_target"] = slow
    print(json.dumps(out, indent=2))
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))
    failed = out["lost"] or out["duplicates"] or out["decisions_missing"] or out["integrity_problems"] or \
        fuzz.crashes or any(r["unrecovered"] for r in out["recovery"].values()) or out["sigterm_exit"] != 0
    if failed:
        print("SOAK FAILED", file=sys.stderr)
        sys.exit(1)
    return out


if __name__ == "__main__":
    main()
