"""Realistic synthetic store contents for tests and benchmarks: `seed_store(store_or_client, n_scans, seed, now)`.

Builds ScanRecord + VerdictRecord rows the way serving would: several scanners, two model versions (a champion
and a shadow), a mix of inspect / uncertain / clear, per-class scores, random unit embeddings and a heatmap for
the top class of flagged items. Deterministic for a given seed. Works with a Store or a StoreClient.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np

from xscreen.records import ImageStats, IngestBatch, ModelRecord, ScanRecord, VerdictRecord
from xscreen.settings import DEFAULT_CLASSES

SCANNERS = ["scanner-a", "scanner-b", "scanner-c"]
CHAMPION = "m-2026-01"
SHADOW = "m-2026-02"


@dataclass(frozen=True)
class Seeded:
    """What seed_store wrote: scan ids in order, the flagged ones (champion inspect/uncertain), versions."""

    scan_ids: list[str]
    flagged: list[str]
    champion: str
    shadow: str
    classes: list[str]


def model_record(version: str, classes: list[str], now: datetime, state: str = "candidate",
                 parent: str | None = None) -> ModelRecord:
    """A registry entry with plausible fields (weights path need not exist for store tests)."""
    thresholds = {c: {"clear": 0.2, "inspect": 0.6} for c in classes}
    return ModelRecord(
        version=version, parent=parent, state=state, created_at=now, classes=classes,  # type: ignore[arg-type]
        architecture={"width": 8, "embedding_dim": 16}, train_manifest_sha256="0" * 64,
        metrics={"auroc": 0.95}, thresholds=thresholds, calibration={"temperature": 1.3},
        weights_path=f"models/{version}.pt", weights_sha256=hashlib.sha256(version.encode()).hexdigest(),
    )


def make_batch(rng: np.random.Generator, start: int, n: int, now: datetime, classes: list[str],
               embedding_dim: int = 16, shadow: bool = True, batch_id: str | None = None,
               span: timedelta = timedelta(days=7)) -> IngestBatch:
    """Scans start..start+n-1 (ids deterministic from the index) with champion (+ shadow) verdicts."""
    scans, verdicts = [], []
    for i in range(start, start + n):
        sha = hashlib.sha256(f"scan-{i}".encode()).hexdigest()
        scan_id = sha[:16]
        received = now - span * float(rng.random())
        scanner = SCANNERS[i % len(SCANNERS)]
        stats = ImageStats(mean_attenuation=float(rng.normal(1.0, 0.1)), noise_level=float(abs(rng.normal(0.02, 0.005))),
                           dynamic_range=float(rng.normal(3.0, 0.3)), organic_fraction=float(rng.random() * 0.6),
                           inorganic_fraction=float(rng.random() * 0.3), metal_fraction=float(rng.random() * 0.1))
        scans.append(ScanRecord(scan_id=scan_id, sha256=sha, scanner_id=scanner, item_id=f"RR{i:09d}CH",
                                source_path=f"inbox/{scanner}/{i}.png", file_format="png", width=640, height=480,
                                bit_depth=8, dual_energy=bool(i % 2), received_at=received, stats=stats,
                                declared_contents=[{"description": "books", "quantity": 1}]))
        for version, role in [(CHAMPION, "champion")] + ([(SHADOW, "shadow")] if shadow else []):
            verdicts.append(_verdict(rng, scan_id, version, role, received, classes, embedding_dim))
    return IngestBatch(batch_id=batch_id or f"seed-{start}-{n}", scans=scans, verdicts=verdicts)


def _verdict(rng: np.random.Generator, scan_id: str, version: str, role: str, received: datetime,
             classes: list[str], embedding_dim: int) -> VerdictRecord:
    # Most parcels are benign (low scores everywhere); about 12% carry one threat the model scores high.
    raw = rng.beta(0.3, 12.0, size=len(classes))
    if rng.random() < 0.12:
        raw[rng.integers(len(classes))] = rng.beta(5.0, 2.0)
    scores = {c: float(s) for c, s in zip(classes, raw, strict=True)}
    any_threat = float(1 - np.prod([1 - s for s in scores.values()]))
    verdict = "inspect" if any_threat >= 0.6 else "uncertain" if any_threat >= 0.35 else "clear"
    top = max(scores, key=scores.__getitem__)
    emb = rng.normal(size=embedding_dim)
    emb = emb / np.linalg.norm(emb)
    flagged = verdict != "clear"
    grid = base64.b64encode(rng.integers(0, 256, size=64, dtype=np.uint8).tobytes()).decode() if flagged else None
    return VerdictRecord(
        scan_id=scan_id, model_version=version, role=role, verdict=verdict, any_threat=any_threat,  # type: ignore[arg-type]
        scores=scores, top_class=top if scores[top] >= 0.2 else None,
        thresholds={c: {"clear": 0.2, "inspect": 0.6} for c in classes}, embedding=[float(x) for x in emb],
        heatmaps={top: grid} if grid else {}, heatmap_size=8 if grid else 0,
        peak_boxes={top: [0.1, 0.2, 0.3, 0.4]} if grid else {},
        scored_at=received + timedelta(milliseconds=float(rng.uniform(20, 200))),
        latency_ms=float(rng.uniform(20, 200)),
    )


def seed_store(store, n_scans: int, seed: int, now: datetime, classes: list[str] | None = None,  # type: ignore[no-untyped-def]
               batch_size: int = 500, register_models: bool = True) -> Seeded:
    """Write n_scans scans with champion + shadow verdicts (and, optionally, the two models) into the store.

    `store` is a Store or StoreClient. Scans are received within the 7 days before `now`.
    """
    classes = list(classes or DEFAULT_CLASSES)
    rng = np.random.default_rng(seed)
    if register_models:
        store.register_model(model_record(CHAMPION, classes, now - timedelta(days=30), state="champion"))
        store.register_model(model_record(SHADOW, classes, now - timedelta(days=1), state="shadow", parent=CHAMPION))
    scan_ids, flagged = [], []
    for start in range(0, n_scans, batch_size):
        batch = make_batch(rng, start, min(batch_size, n_scans - start), now, classes, batch_id=f"seed-{seed}-{start}")
        store.ingest(batch)
        scan_ids += [s.scan_id for s in batch.scans]
        flagged += [v.scan_id for v in batch.verdicts if v.role == "champion" and v.verdict != "clear"]
    return Seeded(scan_ids=scan_ids, flagged=flagged, champion=CHAMPION, shadow=SHADOW, classes=classes)


# metrics.adaptation of a model made by `xscreen adapt` (screening.adapt writes it), for pages and analytics tests
ADAPTATION_SUMMARY = {
    "scanner": "scanner-4", "source": "store: recent cleared scans of scanner-4", "images": 500, "kept": 475,
    "adaptation_backgrounds": 333, "held_out_backgrounds": 142, "certification_projections": 142,
    "library_version": "lib-3", "library_articles": {"training": 48, "certification": 48},
    "seizure_signatures": {"training": 33, "certification": 8},
    "before": {"pd_at_far": {"0.05": 0.149}, "auc": 0.62}, "after": {"pd_at_far": {"0.05": 0.254}, "auc": 0.708},
    "seconds": 64.2,
    "config": {"epochs": 2, "frozen_stages": 3, "adabn": True, "synthetic_images": 600, "distill_weight": 1.0}}
