"""`make bench`: every benchmark at a size that fits a 2-core machine, one after another, each in its own process.

Usage: .venv/bin/python -m bench.run_all [--only NAME ...] [--out var/bench]
Each benchmark writes its JSON figures to OUT/<name>.json (those that take --json) and its console output to
OUT/<name>.log; a summary table (status, minutes) is printed at the end and the exit status is 1 if any failed.
The full-size runs behind docs/BENCHMARKS.md are the commands written there; these are the same programs with
smaller sizes. bench.eval_synthetic is left out: it needs a home with a registered champion (see its docstring).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

# name -> arguments (sizes chosen to finish in minutes on the 2-core VM; the docs give the full-size commands)
BENCHMARKS: dict[str, list[str]] = {
    "bench_model": ["--runs", "3"],
    "bench_render": ["--runs", "3", "--images", "30"],
    "bench_store": ["--ingest-verdicts", "20000", "--rows", "200000", "--runs", "3", "--json", "{out}/bench_store.json"],
    "bench_app": ["--rows", "200000", "--runs", "3", "--json", "{out}/bench_app.json"],
    "bench_serving": ["--rate", "10", "--duration", "15", "--burst", "200"],
    "soak": ["--rounds", "8", "--fuzz-files", "2000", "--fuzz-requests", "1000", "--json", "{out}/soak.json"],
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", default=None, choices=sorted(BENCHMARKS))
    parser.add_argument("--out", type=Path, default=Path("var/bench"))
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    results: list[tuple[str, int, float]] = []
    for name, template in BENCHMARKS.items():
        if args.only and name not in args.only:
            continue
        argv_b = [a.format(out=args.out) for a in template]
        print(f"== {name} {' '.join(argv_b)}", flush=True)
        began = time.monotonic()
        with open(args.out / f"{name}.log", "w") as log:
            status = subprocess.run([sys.executable, "-m", f"bench.{name}", *argv_b], stdout=log,
                                    stderr=subprocess.STDOUT).returncode
        took = time.monotonic() - began
        results.append((name, status, took))
        print(f"   {'ok' if status == 0 else f'FAILED ({status})'} in {took / 60:.1f} min; output "
              f"{args.out / (name + '.log')}", flush=True)
    print("\nbenchmark        status   minutes")
    for name, status, took in results:
        print(f"{name:<16} {'ok' if status == 0 else 'FAILED':<8} {took / 60:6.1f}")
    return 1 if any(status for _, status, _ in results) else 0


if __name__ == "__main__":
    sys.exit(main())
