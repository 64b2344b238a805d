"""Streams of scans and verdicts for the monitoring tests: one scanner's mail, its image statistics, embeddings and
scores drawn from stated distributions, so a test can move one of them (noise, embeddings, routed share) and say
which signal must notice. Written through the store's real `ingest` operation (a Store or a StoreClient)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from xscreen.records import DecisionRecord, ImageStats, IngestBatch, ModelRecord, ScanRecord, VerdictRecord

CLASSES = ["knife", "narcotics"]
OFFICER = "sim:officer"  # a process name: with auth.require_sessions only a session may name a person
MODEL = "m-watch-1"
# What the model's certificate promises (screening.calibration.certificate's keys): ~3% of benign mail routed.
CERTIFICATE = {"alpha": 0.05, "delta": 0.1, "expected_benign_routed": 0.03, "expected_pd": 0.95,
               "expected_miss_rate": 0.05, "expected_workload": 0.1, "expected_uncertain_share": 0.02}
# Calibrated streams (Drift.calibrated): any-threat scores ~ Beta(*CALIBRATED_BETA), truth ~ Bernoulli(score),
# verdict `clear` below ROUTED_FROM (then `uncertain`, `inspect` from 0.6): routed = score >= ROUTED_FROM.
CALIBRATED_BETA = (0.3, 3.0)
ROUTED_FROM = 0.2


@dataclass(frozen=True)
class Drift:
    """How far this stretch of one scanner's mail is from baseline (0 = baseline)."""

    routed: float = 0.03  # share of benign items the model routes to officers
    noise: float = 0.0  # detector noise, in reference SDs of noise_level
    attenuation: float = 0.0  # mean attenuation, in reference SDs
    embedding: float = 0.0  # shift of every embedding along one direction, in embedding SDs
    prevalence: float = 0.1
    detection: float = 0.95  # share of threats (canaries included) the model routes
    calibrated: bool = False  # scores first (Beta(0.3, 3)), truth ~ Bernoulli(score): for CBPE against the truth


def model_record(now: datetime, version: str = MODEL) -> ModelRecord:
    return ModelRecord(version=version, parent=None, state="champion", created_at=now - timedelta(days=30),
                       classes=CLASSES, architecture={}, train_manifest_sha256="0" * 64, metrics={}, thresholds={},
                       calibration={"certificate": CERTIFICATE}, weights_path=f"models/{version}.pt",
                       weights_sha256="0" * 64)


def _stats(rng: np.random.Generator, d: Drift) -> ImageStats:
    return ImageStats(mean_attenuation=float(rng.normal(1.0 + 0.1 * d.attenuation, 0.1)),
                      noise_level=float(abs(rng.normal(0.02 + 0.005 * d.noise, 0.005))),
                      dynamic_range=float(rng.normal(3.0, 0.3)), organic_fraction=float(rng.uniform(0.2, 0.6)),
                      inorganic_fraction=float(rng.uniform(0.05, 0.3)), metal_fraction=float(rng.uniform(0, 0.1)))


def _scores(rng: np.random.Generator, threat: bool, routed: bool) -> tuple[str, float, dict[str, float]]:
    """A calibrated-looking any-threat score consistent with the verdict (clear < 0.2 <= uncertain < 0.6)."""
    if not routed:
        any_threat = float(rng.uniform(0.0, 0.2))  # cleared: a missed threat scores low too
    else:
        any_threat = float(rng.uniform(0.6, 0.99) if threat or rng.random() < 0.7 else rng.uniform(0.2, 0.6))
    verdict = "inspect" if any_threat >= 0.6 else "uncertain" if any_threat >= 0.2 else "clear"
    cls = CLASSES[int(rng.integers(len(CLASSES)))]
    return verdict, any_threat, {c: any_threat if c == cls else any_threat * 0.1 for c in CLASSES}


def batch(rng: np.random.Generator, scanner: str, start: int, n: int, t0: datetime, drift: Drift = Drift(),
          *, model: str = MODEL, step: timedelta = timedelta(seconds=2), canary: bool = False,
          dim: int = 16) -> tuple[IngestBatch, list[bool]]:
    """n scans of `scanner` received every `step` from t0, with champion verdicts of `model`; returns the batch
    and which scans hold a threat. Canaries always hold one and are routed with probability `drift.detection`."""
    scans, verdicts, threats = [], [], []
    direction = np.ones(dim) / np.sqrt(dim)
    for i in range(start, start + n):
        sha = hashlib.sha256(f"{scanner}-{i}-{canary}".encode()).hexdigest()
        at = t0 + step * (i - start)
        if drift.calibrated:
            any_threat = float(rng.beta(*CALIBRATED_BETA))
            threat = canary or bool(rng.random() < any_threat)
            verdict = "inspect" if any_threat >= 0.6 else "uncertain" if any_threat >= ROUTED_FROM else "clear"
            scores = {c: any_threat if j == 0 else any_threat * 0.1 for j, c in enumerate(CLASSES)}
        else:
            threat = canary or bool(rng.random() < drift.prevalence)
            routed = rng.random() < (drift.detection if threat else drift.routed)
            verdict, any_threat, scores = _scores(rng, threat, routed)
        scans.append(ScanRecord(scan_id=sha[:16], sha256=sha, scanner_id=scanner, source_path=f"{scanner}/{i}.png",
                                file_format="png", width=64, height=64, bit_depth=8, dual_energy=True,
                                received_at=at, stats=_stats(rng, drift), is_canary=canary,
                                canary_labels=["knife"] if canary else None))
        emb = rng.normal(size=dim) + drift.embedding * direction
        verdicts.append(VerdictRecord(scan_id=sha[:16], model_version=model, role="champion", verdict=verdict,  # type: ignore[arg-type]
                                      any_threat=any_threat, scores=scores, top_class=max(scores, key=scores.get),  # type: ignore[arg-type]
                                      thresholds={}, embedding=[float(x) for x in emb], heatmaps={}, heatmap_size=0,
                                      scored_at=at + timedelta(milliseconds=50), latency_ms=5.0))
        threats.append(threat)
    return IngestBatch(batch_id=f"{scanner}-{start}-{canary}", scans=scans, verdicts=verdicts), threats


def decide(store: Any, scan_id: str, threat: bool, at: datetime) -> None:
    """An officer decides one item by its truth: confirmed when it holds a threat, else cleared."""
    store.record_decision(DecisionRecord(decision_id=f"d-{scan_id}", scan_id=scan_id, officer=OFFICER,
                                         decision="confirmed" if threat else "cleared",
                                         threat_class="knife" if threat else None, decided_at=at))


def decide_flagged(store: Any, b: IngestBatch, threats: list[bool], at: datetime) -> int:
    """An officer decides every flagged item of the batch: confirmed when it holds a threat, else cleared."""
    n = 0
    for v, threat in zip(b.verdicts, threats, strict=True):
        if v.verdict != "clear":
            decide(store, v.scan_id, threat, at)
            n += 1
    return n
