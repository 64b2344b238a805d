"""The monitoring's ground truth in the store: the random audit of AI-cleared mail (drawn by the writer with a
known pi per stratum, queued like flagged items, read back with its pi for an unbiased Horvitz-Thompson miss rate)
and known-answer canaries (kept out of scans, verdicts and the queue)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from analytics.monitoring.canary import canary_detection
from analytics.monitoring.estimation import audit_estimate
from store.audit_sampling import AuditDesign
from store.client import StoreClient
from store.engine import Store
from tests.conftest import OwnerThread
from xscreen.errors import ConfigError, PermissionDenied
from xscreen.records import (
    CanaryRecord,
    DecisionRecord,
    ImageStats,
    IngestBatch,
    ScanRecord,
    VerdictRecord,
)
from xscreen.settings import Settings

PASSWORD = "correct horse battery staple 42"
STATS = ImageStats(mean_attenuation=1.0, noise_level=0.02, dynamic_range=3.0, organic_fraction=0.3,
                   inorganic_fraction=0.1, metal_fraction=0.02)


def scan_and_verdict(name: str, scanner: str, verdict: str, score: float, at: datetime) -> tuple[ScanRecord, VerdictRecord]:
    sha = hashlib.sha256(name.encode()).hexdigest()
    scan = ScanRecord(scan_id=sha[:16], sha256=sha, scanner_id=scanner, source_path=f"inbox/{scanner}/{name}.png",
                      file_format="png", width=64, height=64, bit_depth=8, dual_energy=False, received_at=at,
                      stats=STATS)
    v = VerdictRecord(scan_id=sha[:16], model_version="m-1", verdict=verdict, any_threat=score,  # type: ignore[arg-type]
                      scores={"knife": score}, top_class=None, thresholds={}, embedding=[0.0, 1.0], scored_at=at)
    return scan, v


def batch(prefix: str, scanner: str, n: int, at: datetime, verdict: str = "clear", score: float = 0.005) -> IngestBatch:
    pairs = [scan_and_verdict(f"{prefix}-{i}", scanner, verdict, score, at) for i in range(n)]
    return IngestBatch(batch_id=prefix, scans=[p[0] for p in pairs], verdicts=[p[1] for p in pairs])


@pytest.fixture
def audited(tmp_path: Path, now: datetime) -> Iterator[Store]:
    design = AuditDesign(default_rate=0.05, rates={"scanner-b": 0.1, "scanner-b|0.01-1": 0.2}, floor=0.01,
                         band_edges=(0.01,), key="k1")
    with Store.open(tmp_path / "gt.duckdb", clock=lambda: now, audit=design) as s:
        yield s


def test_design_picks_the_most_specific_rate_raised_to_the_floor_and_refuses_bad_settings() -> None:
    d = AuditDesign(default_rate=0.001, rates={"scanner-b": 0.2, "0.01-1": 0.3, "scanner-b|0.01-1": 0.5},
                    floor=0.01, band_edges=(0.01,))
    assert [d.stratum("scanner-b", s) for s in (0.0, 0.009, 0.01, 0.5)] == [
        "scanner-b|0-0.01", "scanner-b|0-0.01", "scanner-b|0.01-1", "scanner-b|0.01-1"]
    assert d.inclusion("scanner-b|0.01-1") == 0.5 and d.inclusion("scanner-b|0-0.01") == 0.2
    assert d.inclusion("scanner-a|0.01-1") == 0.3 and d.inclusion("scanner-a|0-0.01") == 0.01  # floor beats 0.001
    assert not AuditDesign().enabled and AuditDesign().inclusion("x|0-1") == 0.0
    with pytest.raises(ConfigError, match="score band '0-0.5'"):
        AuditDesign(default_rate=0.1, rates={"scanner-a|0-0.5": 0.2}, band_edges=(0.01,))
    with pytest.raises(ConfigError, match="increasing"):
        AuditDesign(band_edges=(0.2, 0.1))


def test_cleared_items_are_drawn_at_their_stratum_rate_and_wait_in_the_queue_like_flagged_ones(
        audited: Store, now: datetime) -> None:
    audited.ingest(batch("a", "scanner-a", 2000, now - timedelta(hours=1)))
    audited.ingest(batch("b", "scanner-b", 1000, now - timedelta(hours=1), score=0.05))
    audited.ingest(batch("f", "scanner-a", 5, now - timedelta(hours=1), verdict="inspect", score=0.9))
    audited.ingest(batch("a", "scanner-a", 2000, now - timedelta(hours=1)))  # re-delivered: nothing new is drawn
    out = audited.audit_outcomes(start=now - timedelta(days=1), end=now)
    by = out.groupby("stratum")["inclusion"].agg(["size", "min", "max"])
    assert set(by.index) == {"scanner-a|0-0.01", "scanner-b|0.01-1"}
    assert by.loc["scanner-a|0-0.01", "min"] == by.loc["scanner-a|0-0.01", "max"] == 0.05
    assert by.loc["scanner-b|0.01-1", "min"] == 0.2
    for stratum, n, pi in (("scanner-a|0-0.01", 2000, 0.05), ("scanner-b|0.01-1", 1000, 0.2)):
        k = by.loc[stratum, "size"]
        assert abs(k - n * pi) < 4 * np.sqrt(n * pi * (1 - pi)), (stratum, k)  # Binomial(n, pi), 4 sigma
    assert not out["decided"].any() and out["is_threat"].isna().all()
    queue = audited.queue(officer="ann", limit=5000)
    assert set(out["scan_id"]) | {s.scan_id for s in batch("f", "scanner-a", 5, now).scans} == set(queue["scan_id"])
    counts = audited.cleared_counts(start=now - timedelta(days=1), end=now).set_index("scanner_id")["n_cleared"]
    assert counts.to_dict() == {"scanner-a": 2000, "scanner-b": 1000}


def test_rebuilt_rollups_keep_undecided_audits_in_the_queue(audited: Store, now: datetime) -> None:
    from store.migrations import rebuild_rollups

    audited.ingest(batch("a", "scanner-a", 400, now - timedelta(hours=1)))
    before = set(audited.queue(officer="ann", limit=1000)["scan_id"])
    assert before
    audited.exclusive(lambda cur, _now: rebuild_rollups(cur))
    assert set(audited.queue(officer="ann", limit=1000)["scan_id"]) == before


def test_horvitz_thompson_interval_from_the_store_covers_the_known_miss_rate(
        audited: Store, settings: Settings, now: datetime) -> None:
    """Two strata: scanner-a audited at 5% misses 8% of its cleared mail, scanner-b audited at 20% misses 1%.
    Officers decide every audited item by the known truth; the estimate read back over HTTP must cover the true
    share of threats in cleared mail (4.5%) and sit above the unweighted share of audited threats (~2.4%), which
    ignores pi. One fixed key (a 95% interval misses for about 1 key in 20: with key "test-key" scanner-a's
    5% sample holds 23 threats where 12 are expected, and the interval starts at 5.5%); that the keyed draws
    cover at the stated rate over many keys is the next test."""
    at = now - timedelta(hours=2)
    a = batch("ha", "scanner-a", 3000, at)
    b = batch("hb", "scanner-b", 3000, at, score=0.05)
    rng = np.random.default_rng(7)
    threats = {s.scan_id for s in a.scans if rng.random() < 0.08} | {s.scan_id for s in b.scans if rng.random() < 0.01}
    audited.ingest(a)
    audited.ingest(b)
    truth = len(threats) / 6000
    with OwnerThread(audited, settings), StoreClient.from_settings(settings) as client:
        out = client.audit_outcomes(start=now - timedelta(days=1), end=now)
        decisions = [DecisionRecord(decision_id=f"d{i}", scan_id=scan_id, officer="ann",
                                    decision="confirmed" if scan_id in threats else "cleared",
                                    threat_class="knife" if scan_id in threats else None, decided_at=now)
                     for i, scan_id in enumerate(out["scan_id"])]
        with ThreadPoolExecutor(8) as pool:  # officers decide concurrently: the writer groups their commits
            list(pool.map(audited.record_decision, decisions))
        out = client.audit_outcomes(start=now - timedelta(days=1), end=now)
        n_cleared = int(client.cleared_counts(start=now - timedelta(days=1), end=now)["n_cleared"].sum())
    assert out["decided"].all() and n_cleared == 6000
    est = audit_estimate(out["is_threat"].astype(bool), out["inclusion"], n_cleared=n_cleared)
    assert est.low <= truth <= est.high, (truth, est)
    naive = float(out["is_threat"].astype(bool).mean())
    assert naive < truth < est.miss_share * 1.5 and naive < est.miss_share, (naive, est)
    assert audited.queue(officer="ann", limit=5000).empty  # decided audits leave the queue


def test_keyed_draws_behave_as_independent_sampling_so_the_interval_covers_at_its_stated_rate() -> None:
    """Over 200 keys, the 95% Horvitz-Thompson interval from the design's keyed draws covers the true miss share
    of a fixed population (two strata as above) in 90-99% of keys, and the estimates average to the truth."""
    rng = np.random.default_rng(11)
    ids = [hashlib.sha256(f"p{i}".encode()).hexdigest()[:16] for i in range(4000)]
    pis = np.where(np.arange(4000) < 2000, 0.05, 0.2)
    threat = np.where(np.arange(4000) < 2000, rng.random(4000) < 0.08, rng.random(4000) < 0.01)
    truth, covered, shares = threat.mean(), 0, []
    for k in range(200):
        design = AuditDesign(default_rate=0.1, key=f"key-{k}")
        drawn = np.array([design.drawn(i, p) for i, p in zip(ids, pis, strict=True)])
        est = audit_estimate(threat[drawn], pis[drawn], n_cleared=4000)
        covered += est.low <= truth <= est.high
        shares.append(est.miss_share)
    assert 0.90 <= covered / 200 <= 0.99, covered
    assert abs(np.mean(shares) - truth) < 3 * np.std(shares) / np.sqrt(200), (np.mean(shares), truth)


def canary(i: int, scanner: str, cls: str, verdict: str, at: datetime) -> CanaryRecord:
    return CanaryRecord(canary_id=f"c{i}", scanner_id=scanner, source_scan_id=f"s{i}", class_name=cls,
                        article=f"{cls}:v:{i}", model_version="m-1", verdict=verdict,  # type: ignore[arg-type]
                        any_threat=0.9 if verdict != "clear" else 0.01, class_score=0.5, scored_at=at)


def test_canaries_are_stored_apart_from_mail_and_give_the_detection_rate_per_scanner_and_class(
        owner: tuple[StoreClient, Store], now: datetime) -> None:
    client, store = owner
    at = now - timedelta(minutes=5)
    rows = [canary(i, "scanner-a", "knife", "inspect" if i < 8 else "clear", at) for i in range(10)]
    rows += [canary(10 + i, "scanner-b", "gun", "uncertain", at) for i in range(3)]
    assert client.record_canaries(rows) == 13 and client.record_canaries(rows[:2]) == 0
    frame = client.canary_outcomes(start=now - timedelta(hours=1), end=now)
    rates = canary_detection(frame).set_index(["scanner_id", "class_name"])
    assert rates.loc[("scanner-a", "knife"), "rate"] == 0.8 and rates.loc[("scanner-b", "gun"), "rate"] == 1.0
    with store.reader() as cur:  # never mail: no scan, no verdict, nothing queued or counted hourly
        counts = [cur.execute(f"SELECT count(*) FROM {t}").fetchone()[0]  # type: ignore[index]
                  for t in ("scans", "verdicts", "queue_pending", "verdict_hourly")]
    assert counts == [0, 0, 0, 0]


def test_officers_may_not_read_which_items_are_audits(owner: tuple[StoreClient, Store], now: datetime) -> None:
    client, store = owner
    store.add_user("olga", PASSWORD, "officer")
    store.add_user("sue", PASSWORD, "supervisor")
    with pytest.raises(PermissionDenied, match="role 'officer' may not read ground truth"):
        client.as_user(client.login("olga", PASSWORD).token).audit_outcomes()
    assert client.as_user(client.login("sue", PASSWORD).token).audit_outcomes().empty


def test_the_store_opened_from_settings_audits_at_the_configured_rates(tmp_path: Path, now: datetime) -> None:
    """screening.audit_rate and monitoring.audit_rates reach the owner's writer; rate 0 everywhere: no audits."""
    from tests.conftest import make_settings

    on = make_settings(tmp_path / "on", screening={"audit_rate": 0.02},
                       monitoring={"audit_rates": {"scanner-b": 0.3}, "audit_floor": 0.01})
    with Store.from_settings(on, clock=lambda: now) as store:
        store.ingest(batch("s", "scanner-b", 500, now - timedelta(hours=1)))
        out = store.audit_outcomes(start=now - timedelta(days=1), end=now)
    assert set(out["inclusion"]) == {0.3} and set(out["stratum"]) == {"scanner-b|0-0.01"}
    assert abs(len(out) - 150) < 4 * np.sqrt(500 * 0.3 * 0.7)
    with Store.from_settings(make_settings(tmp_path / "off"), clock=lambda: now) as store:
        store.ingest(batch("s", "scanner-b", 500, now - timedelta(hours=1)))
        assert store.audit_outcomes(start=now - timedelta(days=1), end=now).empty


def test_bad_audit_settings_are_refused_naming_the_field(tmp_path: Path) -> None:
    from tests.conftest import make_settings

    with pytest.raises(ConfigError, match="audit_score_bands"):
        make_settings(tmp_path, monitoring={"audit_score_bands": [0.2, 0.1]})
    with pytest.raises(ConfigError, match="audit_rates"):
        make_settings(tmp_path, monitoring={"audit_rates": {"scanner-a": 1.5}})
