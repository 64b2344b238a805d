"""Offline check of the monitoring thresholds: false pages per 10,000 baseline items and items until detection.

Every paging statistic of analytics.monitoring runs at the threshold its settings give (MonitoringSettings
defaults) on simulated streams, seeded: long in-distribution streams (the detector restarts after each alarm,
so every alarm is counted) and streams that shift at a known item. Rates are the documented ones where they
exist (docs/MODEL.md: certificate 2.7% benign routed, held-out baselines 2.4-4.5%; miss rate certified 5%,
measured 2.2-3.8%, 9.7% under new_concealment; benign routed 27% under new_goods, 6.3% under scanner_ageing,
90-95% on an unseen scanner style, issue 16).

    .venv/bin/python -m bench.monitor_stats [--streams 20] [--baseline-items 100000] [--render 150] [--json out.json]

`--render N` also renders N parcels per scenario (256 px, at full ramp) with the synthetic generator, computes
their image statistics as serving does, and reports what the scanner-or-content rule concludes per scenario
(scanner-1 plays the scenario, scanner-2 stays on baseline). 0 skips it.

Targets (issue 16): detection within 500 items of the shift start; < 1 false page per 10,000 baseline items.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from analytics.monitoring import embeddings, estimation, harm, shift
from analytics.monitoring.sequential import bernoulli_watch
from xscreen.settings import MonitoringSettings

PREVALENCE = 0.15  # the demo simulator's threat rate; real mail is ~0.1%, which only makes benign streams longer
CERTIFIED_BENIGN_ROUTED = 0.027  # reference-288-v2's certificate (calibration split)
CERTIFIED_MISS = 0.05  # its alpha
CHANGE_AT = 5000  # shifted streams: the first shifted item (0-based) of the mail stream


def _alarms(x: np.ndarray, null_rate: float, arl: float) -> int:
    """Alarms on a 0/1 stream, restarting the detector after each one."""
    count, pos = 0, 0
    while pos < x.size:
        res = bernoulli_watch(x[pos:], arl=arl, null_rate=null_rate)
        if res.alarm_at is None:
            break
        count, pos = count + 1, pos + res.alarm_at
    return count


def _first_alarm(x: np.ndarray, null_rate: float, arl: float) -> int | None:
    return bernoulli_watch(x, arl=arl, null_rate=null_rate).alarm_at


def _summary(values: list[float], censored: int) -> dict[str, Any]:
    arr = np.asarray(values, dtype=np.float64)
    out: dict[str, Any] = {"runs": len(values) + censored, "not_detected": censored}
    if arr.size:
        out.update(median=float(np.median(arr)), p90=float(np.quantile(arr, 0.9)), max=float(arr.max()))
    return out


def _detection(make: Callable[[], np.ndarray], change: int, null: float, arl: float, streams: int
               ) -> dict[str, Any]:
    """Items from `change` to the first alarm over `streams` streams from `make` (alarms before it: missed)."""
    delays, missed = [], 0
    for _ in range(streams):
        at = _first_alarm(make(), null, arl)
        if at is None or at <= change:
            missed += 1
        else:
            delays.append(float(at - change))
    return _summary(delays, missed)


def certificate_watch(rng: np.random.Generator, cfg: MonitoringSettings, streams: int, items: int
                      ) -> dict[str, Any]:
    """Mail items: benign with probability 1 - PREVALENCE; the watch sees benign items, routed at `rate`."""
    null = CERTIFIED_BENIGN_ROUTED + cfg.certificate_margin

    def mail(rate_before: float, rate_after: float, n: int) -> tuple[np.ndarray, np.ndarray]:
        benign = rng.random(n) >= PREVALENCE
        rate = np.where(np.arange(n) < CHANGE_AT, rate_before, rate_after)
        return np.nonzero(benign)[0], (rng.random(n) < rate)[benign]

    out: dict[str, Any] = {"null_rate": null, "unit": "mail items (benign and threat)"}
    for name, base in (("baseline 4.5% (worst held-out)", 0.045), ("at the null rate (worst case)", null)):
        alarms = sum(_alarms(mail(base, base, items)[1], null, cfg.page_arl) for _ in range(streams))
        out[f"false_per_10k: {name}"] = 10_000 * alarms / (streams * items)
    for name, after in (("unseen scanner 90%", 0.90), ("new_goods 27%", 0.27), ("scanner_ageing 6.3%", 0.063),
                        ("doubling to 9%", 0.09)):
        delays, missed = [], 0
        for _ in range(streams):
            where, x = mail(0.035, after, CHANGE_AT + 20_000)
            at = _first_alarm(x, null, cfg.page_arl)
            if at is None or where[at - 1] < CHANGE_AT:
                missed += 1
            else:
                delays.append(float(where[at - 1] - CHANGE_AT + 1))
        out[f"items_to_detect: {name}"] = _summary(delays, missed)
    return out


def accuracy_page(rng: np.random.Generator, cfg: MonitoringSettings, streams: int, items: int) -> dict[str, Any]:
    """Threat outcomes (1 = missed) from canaries, audits and thinned confirmations."""
    null = CERTIFIED_MISS + cfg.accuracy_margin
    out: dict[str, Any] = {"null_rate": null, "unit": "known-threat outcomes",
                           "mail_items_per_outcome_at_canary_rate": 1 / cfg.canary_rate}
    for name, base in (("baseline 3.8% (worst held-out)", 0.038), ("at the null rate (worst case)", null)):
        alarms = sum(_alarms(rng.random(items) < base, null, cfg.page_arl) for _ in range(streams))
        out[f"false_per_10k: {name}"] = 10_000 * alarms / (streams * items)
    change = 2000
    for name, after in (("new_concealment 9.7%", 0.097), ("miss rate 15%", 0.15), ("miss rate 30%", 0.30)):
        def make(rates: np.ndarray = np.where(np.arange(change + 20_000) < change, 0.03, after)) -> np.ndarray:
            return rng.random(rates.size) < rates

        out[f"outcomes_to_detect: {name}"] = _detection(make, change, null, cfg.page_arl, streams)
    return out


def _real_mail(rng: np.random.Generator, n: int, miss_before: float, miss_after: float, audit: float,
               change: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """n resolved mail items (flagged, threat, audit pi or NaN): threats at PREVALENCE, each cleared (missed) with
    the miss rate in force, benign items flagged at CERTIFIED_BENIGN_ROUTED, cleared items audited with `audit`."""
    threat = rng.random(n) < PREVALENCE
    miss = np.where(np.arange(n) < change, miss_before, miss_after)
    flagged = np.where(threat, rng.random(n) >= miss, rng.random(n) < CERTIFIED_BENIGN_ROUTED)
    pi = np.where(~flagged & (rng.random(n) < audit), audit, np.nan)
    return flagged, threat, pi


def _page_alarm_at(flagged: np.ndarray, threat: np.ndarray, pi: np.ndarray, cfg: MonitoringSettings
                   ) -> int | None:
    return harm.miss_rate_page(flagged, threat, pi, label="bench", certified_miss_rate=CERTIFIED_MISS,
                               margin=cfg.accuracy_margin, arl=cfg.page_arl).alarm_at


def miss_rate_page(rng: np.random.Generator, cfg: MonitoringSettings, streams: int, items: int,
                   audits: tuple[float, ...] = (0.01, 0.05, 0.2)) -> dict[str, Any]:
    """The accuracy page on real mail (analytics.monitoring.harm): officers' confirmations of flagged threats and
    random audits of cleared mail at rate pi, counted in mail items; restarts after each alarm for false pages."""
    null = CERTIFIED_MISS + cfg.accuracy_margin
    out: dict[str, Any] = {"null_rate": null, "unit": "mail items (benign and threat)", "prevalence": PREVALENCE}
    for audit in audits:
        for name, base in (("baseline 3.8%", 0.038), ("at the null rate (worst case)", null)):
            alarms = 0
            for _ in range(streams):
                f, t, pi = _real_mail(rng, items, base, base, audit, items)
                pos = 0
                while pos < items and (at := _page_alarm_at(f[pos:], t[pos:], pi[pos:], cfg)) is not None:
                    alarms, pos = alarms + 1, pos + at
            out[f"audit {audit:.0%}: false_per_10k: {name}"] = 10_000 * alarms / (streams * items)
        for name, after in (("new_concealment 9.7%", 0.097), ("miss rate 15%", 0.15), ("miss rate 30%", 0.30)):
            delays, missed = [], 0
            for _ in range(streams):
                at = _page_alarm_at(*_real_mail(rng, CHANGE_AT + 20_000, 0.03, after, audit, CHANGE_AT), cfg)
                if at is None or at <= CHANGE_AT:
                    missed += 1
                else:
                    delays.append(float(at - CHANGE_AT))
            out[f"audit {audit:.0%}: items_to_detect: {name}"] = _summary(delays, missed)
    return out


def _embeddings(rng: np.random.Generator, basis: np.ndarray, n: int, noise: float, novel: float = 0.0
                ) -> np.ndarray:
    """Low-rank embeddings: 8 latent factors through a fixed basis plus isotropic noise; `novel` share of items
    gets an offset in directions the reference never used (a new kind of goods)."""
    x = rng.normal(size=(n, basis.shape[0])) @ basis + noise * rng.normal(size=(n, basis.shape[1]))
    new = rng.random(n) < novel
    x[new] += 1.5 * rng.normal(size=basis.shape[1]) * (rng.random(basis.shape[1]) < 0.3)
    return x


def reconstruction(rng: np.random.Generator, cfg: MonitoringSettings, streams: int, items: int) -> dict[str, Any]:
    """PCA reconstruction outliers of simulated 64-d embeddings as a 0/1 stream."""
    basis = rng.normal(size=(8, 64))
    model = embeddings.fit_reconstruction(_embeddings(rng, basis, 4000, 0.3), n_components=8,
                                          quantile=cfg.reconstruction_quantile, seed=1)
    null = 1 - cfg.reconstruction_quantile + cfg.reconstruction_margin
    base = [embeddings.exceedances(model, _embeddings(rng, basis, items, 0.3)) for _ in range(streams)]
    out: dict[str, Any] = {"null_rate": null, "unit": "scans",
                           "baseline_outlier_share": float(np.mean([b.mean() for b in base])),
                           "false_per_10k: baseline": 10_000 * sum(_alarms(b, null, cfg.page_arl) for b in base)
                           / (streams * items)}
    for name, noise, novel in (("detector noise x1.5", 0.45, 0.0), ("detector noise x1.2", 0.36, 0.0),
                               ("new goods in 20% of scans", 0.3, 0.2)):
        def make(noise: float = noise, novel: float = novel) -> np.ndarray:
            x = np.vstack([_embeddings(rng, basis, CHANGE_AT, 0.3), _embeddings(rng, basis, 5000, noise, novel)])
            return embeddings.exceedances(model, x)

        out[f"items_to_detect: {name}"] = _detection(make, CHANGE_AT, null, cfg.page_arl, streams)
    return out


def cbpe_error(rng: np.random.Generator, cfg: MonitoringSettings, streams: int) -> dict[str, Any]:
    """|CBPE detection estimate - realised detection| in points, 2000-scan windows, calibrated and not."""
    out: dict[str, Any] = {"unit": "percentage points of detection rate, 2000-scan windows"}
    for name, temperature in (("calibrated", 1.0), ("overconfident scores (T = 0.5)", 0.5)):
        errors = []
        for _ in range(streams):
            truth_p = rng.beta(0.3, 1.7, size=2000)
            y = rng.random(2000) < truth_p
            logit = np.log(truth_p / (1 - truth_p + 1e-12) + 1e-12) / temperature
            scores = 1 / (1 + np.exp(-logit))
            est = estimation.cbpe(scores, scores >= 0.1, n_boot=0)
            errors.append(100 * abs(est.detection - (y & (scores >= 0.1)).sum() / y.sum()))
        out[name] = {"mean": float(np.mean(errors)), "p95": float(np.quantile(errors, 0.95))}
    return out


def _rendered_stats(scenario: str, n: int, seed: int) -> dict[str, list[float]]:
    from xray.formats import image_stats, read_scan
    from xray.synth import render_parcel
    from xray.writers import encode
    from xscreen.settings import DEFAULT_CLASSES

    rows = []
    for i in range(n):
        p = render_parcel(np.random.default_rng([seed, i]), classes=DEFAULT_CLASSES, scenario=scenario,
                          progress=0.0 if scenario == "baseline" else 1.0, threat_rate=PREVALENCE,
                          size=(256, 256), scanner_id="scanner-1")
        rows.append(image_stats(read_scan(encode("png", p.high, p.low, palette=p.palette))))
    return {k: [r[k] for r in rows] for k in rows[0]}


def image_stat_rule(cfg: MonitoringSettings, n: int) -> dict[str, Any]:
    """The scanner-or-content rule on rendered scans: scanner-1 at the end of each scenario, scanner-2 baseline."""
    reference = _rendered_stats("baseline", n, 1)
    other = shift.scanner_shift(reference, _rendered_stats("baseline", n, 2), scanner_id="scanner-2",
                                effect_threshold=cfg.stat_effect_alert, fdr=cfg.drift_alpha)
    out: dict[str, Any] = {"unit": f"{n} rendered scans per window"}
    for i, scenario in enumerate(("scanner_ageing", "new_goods", "new_concealment", "seasonal_mix", "baseline")):
        one = shift.scanner_shift(reference, _rendered_stats(scenario, n, 10 + i), scanner_id="scanner-1",
                                  effect_threshold=cfg.stat_effect_alert, fdr=cfg.drift_alpha)
        cause = shift.drift_cause([one, other], fleet_share=cfg.fleet_share, dominance=cfg.scanner_dominance)
        out[scenario] = {"smd": {s.name: round(s.smd, 2) for s in one.stats}, "verdict": cause.message}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--streams", type=int, default=20, help="replications per scenario")
    ap.add_argument("--baseline-items", type=int, default=100_000, help="length of each in-distribution stream")
    ap.add_argument("--seed", type=int, default=2026)
    ap.add_argument("--render", type=int, default=150, help="rendered scans per scenario for the cause rule; 0 = skip")
    ap.add_argument("--json", default=None, help="also write the figures here")
    args = ap.parse_args()
    cfg = MonitoringSettings()
    rng = np.random.default_rng(args.seed)
    started = time.perf_counter()
    parts: dict[str, Callable[[], dict[str, Any]]] = {
        "certificate_watch": lambda: certificate_watch(rng, cfg, args.streams, args.baseline_items),
        "accuracy_page": lambda: accuracy_page(rng, cfg, args.streams, args.baseline_items),
        "miss_rate_page": lambda: miss_rate_page(rng, cfg, args.streams, args.baseline_items),
        "reconstruction_outliers": lambda: reconstruction(rng, cfg, args.streams, args.baseline_items // 4),
        "cbpe_error": lambda: cbpe_error(rng, cfg, args.streams * 5),
    }
    if args.render > 0:
        parts["image_stat_rule"] = lambda: image_stat_rule(cfg, args.render)
    report: dict[str, Any] = {"page_arl": cfg.page_arl, "change_at": CHANGE_AT, "streams": args.streams,
                              "baseline_items": args.baseline_items, "seed": args.seed}
    for name, fn in parts.items():
        report[name] = fn()
    report["seconds"] = round(time.perf_counter() - started, 1)
    text = json.dumps(report, indent=1)
    print(text)
    if args.json:
        with open(args.json, "w") as fh:
            fh.write(text)


if __name__ == "__main__":
    main()
