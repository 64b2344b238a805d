"""Store contents for the browser test, the notebooks test and the app benchmark: seeded verdicts whose scans
point at real rendered dual-energy images, a champion with a conformal certificate, officer decisions, an alert.

Built on tests.seeding (same verdict distribution); only the image paths, the models and the feedback are added.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from tests import monitor_seed
from tests.monitor_seed import Drift
from tests.seeding import CHAMPION, SHADOW, make_batch, model_record
from xscreen.records import AlertRecord, DecisionRecord, VerdictRecord, encode_heatmap
from xscreen.settings import DEFAULT_CLASSES

CERTIFICATE = {"alpha": 0.05, "delta": 0.05, "certified": True, "officer_capacity": 0.1,
               "thresholds": {"any_threat": {"clear": 0.35, "inspect": 0.6}}}


HEAT = 16  # heatmap grid side (cells over the whole image: xscreen.records' frame)


@dataclass(frozen=True)
class Rendered:
    path: Path
    heatmap: str  # HEAT x HEAT grid over the image (encode_heatmap), hot on the parcel's threats


def _image_heat(boxes: list[tuple[int, int, int, int]], width: int, height: int) -> str:
    """Where the threats are, as a model heatmap would say: the share of each grid cell the boxes cover."""
    img = np.zeros((height, width), dtype=np.float32)
    for x0, y0, x1, y1 in boxes:
        img[y0:y1, x0:x1] = 1.0
    rows, cols = np.array_split(np.arange(height), HEAT), np.array_split(np.arange(width), HEAT)
    grid = np.array([[img[np.ix_(r, c)].mean() for c in cols] for r in rows])  # (HEAT, HEAT)
    return encode_heatmap(grid / max(float(grid.max()), 1e-6) * 0.9)


def render_images(folder: Path, n: int, seed: int) -> list[Rendered]:
    """n dual-energy parcels (npz, mostly with threats) rendered by xray's synthesiser, with matching heatmaps."""
    from xray.synth import render_parcel
    from xray.writers import encode

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        parcel = render_parcel(rng, classes=DEFAULT_CLASSES, threat_rate=0.8, size=(384, 256))
        path = folder / f"parcel-{i}.npz"
        path.write_bytes(encode("npz", parcel.high, parcel.low))
        boxes = [o.box for o in parcel.objects if o.is_threat]
        out.append(Rendered(path, _image_heat(boxes, parcel.high.shape[1], parcel.high.shape[0])))
    return out


def _with_heatmap(v: VerdictRecord, image: Rendered) -> VerdictRecord:
    if not v.heatmaps or v.top_class is None:
        return v
    return v.model_copy(update={"heatmaps": {v.top_class: image.heatmap}, "heatmap_size": HEAT})


def seed_demo(store: Any, n_scans: int, seed: int, now: datetime, images: list[Rendered], decisions: int = 40,
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
        image_of = {s.scan_id: images[i % len(images)] for i, s in enumerate(batch.scans, start=start)}
        scans = [s.model_copy(update={"source_path": str(image_of[s.scan_id].path), "file_format": "npz",
                                      "dual_energy": True, "width": 384, "height": 256}) for s in batch.scans]
        verdicts = [_with_heatmap(v, image_of[v.scan_id]) for v in batch.verdicts]
        store.ingest(batch.model_copy(update={"scans": scans, "verdicts": verdicts}))
        flagged += [(v.scan_id, v.any_threat, v.top_class) for v in batch.verdicts
                    if v.role == "champion" and v.verdict != "clear"]
    for i, (scan_id, risk, top) in enumerate(flagged[:decisions]):
        threat = risk > 0.8 or i % 4 == 0  # some alarms are real, most are not
        store.record_decision(DecisionRecord(
            decision_id=f"seed-decision-{i}", scan_id=scan_id, officer="seed:officer",  # a harness: a process name
            decision="confirmed" if threat else "cleared", threat_class=top if threat else None,
            decided_at=now - timedelta(minutes=5 * i)))
    return [f[0] for f in flagged[decisions:]]


def seed_monitoring(store: Any, settings: Any, now: datetime) -> list[AlertRecord]:
    """Two more scanners of the champion's mail over the last 40 minutes, scanner-east ageing (noise and
    attenuation moving) for its last 60 scans, then the real monitoring job over the whole store: its
    measurements and the alerts it raises are what the Drift & accuracy page shows (nothing hand-written)."""
    from serving.monitor_job import run_monitor

    rng = np.random.default_rng(7)
    t = now - timedelta(minutes=40)
    for scanner in ("scanner-east", "scanner-west"):
        b, threats = monitor_seed.batch(rng, scanner, 0, 150, t, model=CHAMPION)
        store.ingest(b)
        monitor_seed.decide_flagged(store, b, threats, t + timedelta(seconds=301))
    t = t + timedelta(seconds=302)
    for scanner, drift in (("scanner-east", Drift(noise=3.0, attenuation=1.0)), ("scanner-west", Drift())):
        b, threats = monitor_seed.batch(rng, scanner, 1000, 60, t, drift, model=CHAMPION)
        store.ingest(b)
        monitor_seed.decide_flagged(store, b, threats, t + timedelta(seconds=121))
    # Windows of 60 scans and fewer permutations and bootstrap draws than in production: seconds, not minutes.
    quick = settings.monitoring.model_copy(update={"drift_window": 60, "drift_arl_items": 6000.0,
                                                   "mmd_permutations": 120, "cbpe_bootstrap": 20})
    return run_monitor(settings.model_copy(update={"monitoring": quick}), store, now=t + timedelta(seconds=125)).raised
