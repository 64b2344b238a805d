"""The paging signals of a monitoring run: the certificate watch per scanner and model, the accuracy page on
known-answer canaries, and the accuracy page on real mail (random audits + officers' confirmations). Each
continues its e-detector from the state the previous run stored (serving.monitor_context)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from analytics import accuracy
from analytics.monitoring import canary, certificate, harm, report
from serving.monitor_context import MAX_PENDING, Context, Key, cursor, new_items, previous, state_of


def _per_certified_model(ctx: Context, frame: pd.DataFrame, prev: dict[Key, dict[str, Any]], needs: str
                         ) -> Iterator[tuple[Key, pd.DataFrame, dict[str, Any], dict[str, Any]]]:
    """(key, its rows, its model's certificate, the previous run's details) per (scanner, model) of `frame`, for
    the models whose certificate records `needs` (the others are named in the run's notes by certificate_of)."""
    for (scanner, model), items in frame.groupby(["scanner_id", "model_version"], sort=True):
        cert = ctx.certificate_of(str(model))
        if cert is None or needs not in cert:
            continue
        key = (str(scanner), str(model))
        yield key, items, cert, prev.get(key, {})


def _resolved(items: pd.DataFrame, now: datetime) -> pd.DataFrame:
    """The resolved items of one scanner that can be fed, in scoring order: those scored before its oldest item
    still waiting for an officer (one waiting longer than MAX_PENDING is passed over, so it cannot stall the
    detector for ever, and is never counted)."""
    waiting = items["pending"] & (items["scored_at"] > pd.Timestamp(now - MAX_PENDING))
    if waiting.any():
        items = items.iloc[: int(np.argmax(waiting.to_numpy()))]
    return items[~items["pending"]]


def _resolved_prefix(items: pd.DataFrame, now: datetime) -> pd.DataFrame:
    """`_resolved` presumed-benign items: confirmed threats are left out."""
    items = _resolved(items, now)
    return items[~items["threat"]]


def certificate_watch(ctx: Context, now: datetime) -> None:
    prev = previous(ctx.store, "certificate_watch", report.CERTIFICATE, ctx.active)
    frame = ctx.store.benign_resolutions(start=ctx.start, end=now)
    for key, items, cert, before in _per_certified_model(ctx, frame, prev, "expected_benign_routed"):
        new = new_items(_resolved_prefix(items, now), "scored_at", before)
        w = certificate.certificate_watch(new["routed"].to_numpy(bool), scanner_id=key[0],
                                          certified_rate=float(cert["expected_benign_routed"]),
                                          margin=ctx.cfg.certificate_margin, arl=ctx.cfg.page_arl,
                                          state=state_of(before))
        details = {"alarm": w.alarm, "threshold": w.threshold, "items": w.items, "recent_items": w.recent_items,
                   "recent_rate": w.recent_rate, "certified_rate": w.certified_rate,
                   "tolerated_rate": w.tolerated_rate, "message": w.message, "state": asdict(w.state),
                   **cursor(new, "scored_at", before)}
        ctx.run.measure("certificate_watch", key, w.statistic, details)
        if w.alarm:
            ctx.alert(report.AlertText(report.CERTIFICATE, "page", w.message), key,
                      {"statistic": w.statistic, "threshold": w.threshold, "recent_rate": w.recent_rate,
                       "recent_items": w.recent_items, "action": f"xscreen adapt --scanner {key[0]}"})


def canary_page(ctx: Context, now: datetime) -> None:
    prev = previous(ctx.store, "accuracy_page", report.ACCURACY, ctx.active)
    frame = ctx.store.known_threat_outcomes(start=ctx.start, end=now)
    for key, items, cert, before in _per_certified_model(ctx, frame, prev, "alpha"):
        new = new_items(items, "scored_at", before)
        p = canary.accuracy_page(new["missed"].to_numpy(bool), label=f"canaries on {key[0]}",
                                 certified_miss_rate=float(cert["alpha"]), margin=ctx.cfg.accuracy_margin,
                                 arl=ctx.cfg.page_arl, state=state_of(before))
        details = {"alarm": p.alarm, "threshold": p.threshold, "outcomes": p.outcomes, "misses": p.misses,
                   "recent_outcomes": p.recent_outcomes, "recent_miss_rate": p.recent_miss_rate,
                   "message": p.message, "state": asdict(p.state), **cursor(new, "scored_at", before)}
        ctx.run.measure("accuracy_page", key, p.statistic, details)
        rate = accuracy.rate_estimate(int(items["missed"].sum()), len(items))
        ctx.run.measure("canary_miss_rate", key, rate.rate, {"k": rate.k, "n": rate.n, "low": rate.low,
                                                              "high": rate.high, "method": rate.method})
        if p.alarm:
            ctx.alert(report.AlertText(report.ACCURACY, "page", p.message), key,
                      {"statistic": p.statistic, "recent_miss_rate": p.recent_miss_rate})


def miss_rate_page(ctx: Context, now: datetime) -> None:
    """Accuracy page on real mail: officers' confirmations of flagged items and the random audit's findings among
    cleared ones (weight 1/pi), per scanner and model, in scoring order up to the first item still waiting."""
    prev = previous(ctx.store, "miss_rate_page", report.ACCURACY, ctx.active)
    frame = ctx.store.miss_evidence(start=ctx.start, end=now)
    for key, items, cert, before in _per_certified_model(ctx, frame, prev, "alpha"):
        fed = _resolved(items, now)
        new = new_items(fed, "scored_at", before)
        p = harm.miss_rate_page(new["flagged"].to_numpy(bool), new["threat"].to_numpy(bool),
                                new["inclusion"].to_numpy(float), label=f"real mail on {key[0]}",
                                certified_miss_rate=float(cert["alpha"]), margin=ctx.cfg.accuracy_margin,
                                arl=ctx.cfg.page_arl, state=state_of(before))
        # The estimate over the detector's change-point stretch when it alarms (what moved), else the look-back.
        stretch = fed.iloc[len(fed) - min(p.recent_items, len(fed)):] if p.alarm and p.recent_items else fed
        est = harm.miss_estimate(stretch["flagged"].to_numpy(bool), stretch["threat"].to_numpy(bool),
                                 stretch["inclusion"].to_numpy(float))
        since = f"{stretch['scored_at'].min():%Y-%m-%d %H:%M} UTC" if len(stretch) else "the start"
        message = harm.page_message(p, est, since=since)
        details = {"alarm": p.alarm, "threshold": p.threshold, "items": p.items, "misses_found": p.misses_found,
                   "recent_items": p.recent_items, "since": since, "miss_rate": est.miss_rate, "low": est.low,
                   "high": est.high, "detected": est.detected, "audited": est.audited,
                   "tolerated_rate": p.tolerated_miss_rate, "message": message, "state": asdict(p.state),
                   **cursor(new, "scored_at", before)}
        ctx.run.measure("miss_rate_page", key, p.statistic, details)
        if p.alarm:
            ctx.alert(report.AlertText(report.ACCURACY, "page", message), key,
                      {"statistic": p.statistic, "evidence": "audits + feedback", "miss_rate": est.miss_rate,
                       "low": est.low, "high": est.high, "since": since,
                       "action": "retrain or adapt; raise the audit rate on this scanner meanwhile"})
