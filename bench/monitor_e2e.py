"""The monitoring job on simulated streams through a real store: items until each signal fires, false pages per
10,000 baseline items, and the label-free (CBPE) estimate against the truth.

    python -m bench.monitor_e2e [--baseline-items 10000] [--seed 7] [--parts scenarios,baseline,cbpe] [--json out.json]

Streams come from tests/monitor_seed.py (scans, image statistics, embeddings and verdicts drawn from stated
distributions, written with the store's `ingest`), officers decide every flagged item, and the real job
(`serving.monitor_job.run_monitor`, default monitoring settings) runs every STEP items per scanner. What is
simulated is the model and the images; the store, the job, its detectors, windows and alerts are the real ones.
The rendered, real-model counterpart is tests/test_monitor_e2e.py.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

from serving.monitor_job import run_monitor
from store.engine import Store
from tests import monitor_seed
from tests.conftest import make_settings
from tests.monitor_seed import Drift
from xscreen.settings import Settings

SCANNERS = ("scanner-a", "scanner-b", "scanner-c")
T0 = datetime(2026, 11, 1, tzinfo=UTC)
STEP_S = 2.0  # seconds between scans of one scanner


class Stream:
    """One store and a clock: feed `n` scans per scanner (some drifted), officers decide, the job runs."""

    def __init__(self, folder: Path, settings: Settings, seed: int) -> None:
        self.settings = settings
        self.store = Store.from_settings(settings, clock=lambda: self.t)
        self.rng = np.random.default_rng(seed)
        self.t = T0
        self.i = 0
        self.store.register_model(monitor_seed.model_record(T0))

    def feed(self, n: int, drifts: dict[str, Drift] | None = None, canaries: dict[str, Drift] | None = None
             ) -> dict[str, list[tuple[str, bool, bool]]]:
        """n scans per scanner (plus n canaries where given); returns per scanner (scan_id, threat, routed)."""
        out: dict[str, list[tuple[str, bool, bool]]] = {}
        for scanner in SCANNERS:
            for canary, spec in ((False, drifts), (True, canaries)):
                if canary and (spec is None or scanner not in spec):
                    continue
                b, threats = monitor_seed.batch(self.rng, scanner, self.i, n, self.t, (spec or {}).get(scanner, Drift()),
                                                canary=canary, step=timedelta(seconds=STEP_S))
                self.store.ingest(b)
                monitor_seed.decide_flagged(self.store, b, threats, self.t + timedelta(seconds=STEP_S * n + 1))
                if not canary:
                    out[scanner] = [(v.scan_id, t, v.verdict != "clear") for v, t in zip(b.verdicts, threats,
                                                                                          strict=True)]
        self.i += n
        self.t += timedelta(seconds=STEP_S * n + 2)
        return out

    def monitor(self) -> list[Any]:
        return run_monitor(self.settings, self.store, now=self.t).raised

    def close(self) -> None:
        self.store.close()


def _stream(root: Path, name: str, seed: int, **monitoring: Any) -> Stream:
    settings = make_settings(root / name)
    if monitoring:
        settings = settings.model_copy(update={"monitoring": settings.monitoring.model_copy(update=monitoring)})
    return Stream(root / name, settings, seed)


def until(stream: Stream, step: int, limit: int, fire: Callable[[list[Any]], bool], **feed: Any) -> int | None:
    """Items per scanner fed (in steps) until the job raises an alert `fire` accepts; None past `limit`."""
    fed = 0
    while fed < limit:
        stream.feed(step, **feed)
        fed += step
        if fire(stream.monitor()):
            return fed
    return None


def _kind(kind: str, scanner: str) -> Callable[[list[Any]], bool]:
    return lambda raised: any(a.kind == kind and a.details.get("scanner_id") == scanner for a in raised)


def scenarios(root: Path, seed: int, warmup: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    s = _stream(root, "unseen", seed)
    s.feed(warmup)
    s.monitor()
    out["unseen scanner (benign routed 3% -> 90%), certificate page"] = until(
        s, 10, 500, _kind("certificate", "scanner-c"), drifts={"scanner-c": Drift(routed=0.9)})
    s.close()
    s = _stream(root, "ageing", seed + 1)
    s.feed(warmup)
    s.monitor()
    out["scanner ageing (noise +3 SD, attenuation +1 SD), scanner drift"] = until(
        s, 50, 1000, _kind("scanner_drift", "scanner-a"), drifts={"scanner-a": Drift(noise=3.0, attenuation=1.0)})
    s.close()
    s = _stream(root, "canaries", seed + 2)
    s.feed(warmup // 5, canaries={"scanner-b": Drift()})
    s.monitor()
    out["canary misses 5% -> 40% (known threats), accuracy page"] = until(
        s, 10, 500, _kind("accuracy", "scanner-b"), canaries={"scanner-b": Drift(detection=0.6)})
    s.close()
    return out


def baseline(root: Path, seed: int, items: int, step: int) -> dict[str, Any]:
    """A long baseline stream: how many paging and explaining alerts the job raises per 10,000 items."""
    s = _stream(root, "baseline", seed)
    pages = warnings = runs = 0
    while s.i * len(SCANNERS) < items:
        s.feed(step)
        raised = s.monitor()
        runs += 1
        pages += sum(a.severity == "page" for a in raised)
        warnings += sum(a.severity != "page" for a in raised)
    total = s.i * len(SCANNERS)
    s.close()
    return {"items": total, "runs": runs, "pages_per_10k": 1e4 * pages / total,
            "warnings_per_10k": 1e4 * warnings / total}


def cbpe_error(root: Path, seed: int, n: int) -> dict[str, Any]:
    """CBPE detection per scanner (current window) against the truth, two ways. The stream's own detection rate
    (`population_detection`: P(routed | threat) of the score distribution that generates it, in closed form) is
    the accuracy CBPE estimates; the realised detection of the window's threats is what officers' labels would
    show, and over the few dozen threats of a window it moves by its binomial standard error on its own, whatever
    the estimate: both errors are reported, and that standard error beside them."""
    s = _stream(root, "cbpe", seed)
    fed = s.feed(n, drifts=dict.fromkeys(SCANNERS, Drift(calibrated=True)))
    run = run_monitor(s.settings, s.store, now=s.t)
    window = s.settings.monitoring.drift_window
    truth = population_detection()
    per: dict[str, dict[str, float]] = {}
    for m in (m for m in run.measurements if m.kind == "cbpe_detection"):
        current = fed[str(m.scanner_id)][-min(window, n // 2):]
        threats = [routed for _, threat, routed in current if threat]
        realised = float(np.mean(threats))
        per[str(m.scanner_id)] = {
            "estimate": round(m.value, 4), "realised": round(realised, 4), "threats": len(threats),
            "realised_se_points": round(100 * np.sqrt(realised * (1 - realised) / len(threats)), 2),
            "error_vs_realised_points": round(100 * abs(m.value - realised), 2),
            "error_vs_population_points": round(100 * abs(m.value - truth), 2)}
    s.close()
    return {"window": min(window, n // 2), "population_detection": round(truth, 4), "scanners": per,
            "mean_error_vs_realised_points": float(np.mean([v["error_vs_realised_points"] for v in per.values()])),
            "mean_error_vs_population_points": float(np.mean([v["error_vs_population_points"]
                                                               for v in per.values()]))}


def population_detection(beta: tuple[float, float] = monitor_seed.CALIBRATED_BETA,
                         routed_from: float = monitor_seed.ROUTED_FROM) -> float:
    """P(routed | threat) of a calibrated stream: scores s ~ Beta(a, b), threat ~ Bernoulli(s), routed at s >= t.
    E[s; s >= t] / E[s] = P(S' >= t) for S' ~ Beta(a + 1, b) (the size-biased Beta)."""
    a, b = beta
    return float(stats.beta(a + 1, b).sf(routed_from))


PARTS = ("scenarios", "baseline", "cbpe")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--baseline-items", type=int, default=10_000)
    ap.add_argument("--warmup", type=int, default=1000, help="baseline scans per scanner before each change")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--parts", default=",".join(PARTS), help=f"comma-separated, of {', '.join(PARTS)}")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    parts = [x.strip() for x in args.parts.split(",") if x.strip()]
    if unknown := sorted(set(parts) - set(PARTS)):
        ap.error(f"unknown part(s) {', '.join(unknown)}; known: {', '.join(PARTS)}")
    started = time.perf_counter()
    result: dict[str, Any] = {"seed": args.seed}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        if "scenarios" in parts:
            result["items_until_detection_per_scanner"] = scenarios(root, args.seed, args.warmup)
        if "baseline" in parts:
            result["baseline"] = baseline(root, args.seed + 10, args.baseline_items, 100)
        if "cbpe" in parts:
            result["cbpe"] = cbpe_error(root, args.seed + 20, 1000)
    result["seconds"] = round(time.perf_counter() - started, 1)
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(text)


if __name__ == "__main__":
    main()
