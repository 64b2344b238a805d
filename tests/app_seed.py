"""Store contents for the browser test, the notebooks test and the app benchmark: seeded verdicts whose scans
point at real rendered dual-energy images, a champion with a conformal certificate, officer decisions, an alert.

Built on tests.seeding (same verdict distribution); only the image paths, the models and the feedback are added.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from analytics.records import AlertRecord, DecisionRecord
from tests.seeding import CHAMPION, SHADOW, make_batch, model_record
from xscreen.settings import DEFAULT_CLASSES

CERTIFICATE = {"alpha": 0.05, "delta": 0.05, "certified": True, "officer_capacity": 0.1,
               "thresholds": {"any_threat": {"clear": 0.35, "inspect": 0.6}}}


def render_images(folder: Path, n: int, seed: int) -> list[Path]:
    """n dual-energy parcels (npz, with threats) rendered by xray's synthesiser."""
    from xray.synth import render_parcel
    from xray.writers import encode

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = []
    for i in range(n):
        parcel = render_parcel(rng, classes=DEFAULT_CLASSES, threat_rate=0.8, size=(384, 256))
        path = folder / f"parcel-{i}.npz"
        path.write_bytes(encode("npz", parcel.high, parcel.low))
        paths.append(path)
    return paths


def seed_demo(store: Any, n_scans: int, seed: int, now: datetime, images: list[Path], decisions: int = 40,
              batch_size: int = 2000) -> list[str]:
    """Ingest n_scans scans (cycling over `images`) + verdicts, register models, decide some; returns flagged ids."""
    champion = model_record(CHAMPION, DEFAULT_CLASSES, now - timedelta(days=30), state="champion")
    store.register_model(champion.model_copy(update={"calibration": {"temperature": 1.3, "certificate": CERTIFICATE}}))
    store.register_model(model_record(SHADOW, DEFAULT_CLASSES, now - timedelta(days=1), state="shadow",
                                      parent=CHAMPION))
    rng = np.random.default_rng(seed)
    flagged: list[tuple[str, float, str | None]] = []
    for start in range(0, n_scans, batch_size):
        batch = make_batch(rng, start, min(batch_size, n_scans - start), now, DEFAULT_CLASSES,
                           batch_id=f"demo-{seed}-{start}")
        scans = [s.model_copy(update={"source_path": str(images[i % len(images)]), "file_format": "npz",
                                      "dual_energy": True, "width": 384, "height": 256})
                 for i, s in enumerate(batch.scans, start=start)]
        store.ingest(batch.model_copy(update={"scans": scans}))
        flagged += [(v.scan_id, v.any_threat, v.top_class) for v in batch.verdicts
                    if v.role == "champion" and v.verdict != "clear"]
    for i, (scan_id, risk, top) in enumerate(flagged[:decisions]):
        threat = risk > 0.8 or i % 4 == 0  # some alarms are real, most are not
        store.record_decision(DecisionRecord(
            decision_id=f"seed-decision-{i}", scan_id=scan_id, officer="seed-officer",
            decision="confirmed" if threat else "cleared", threat_class=top if threat else None,
            decided_at=now - timedelta(minutes=5 * i)))
    store.raise_alert(AlertRecord(alert_id="seed-alert", raised_at=now - timedelta(hours=2), severity="warning",
                                  kind="psi_any_threat", message="any-threat score PSI 0.24 on scanner-b"))
    return [f[0] for f in flagged[decisions:]]
