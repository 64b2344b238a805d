"""The model maintenance loop driven on small data, shared by tests/test_maintenance_loop.py and
bench/bench_maintenance.py: rendered mail with the generator's ground truth, simulated officers who decide what the
model flags and label what the active relabel queue offers (or a random slice, for the comparison), and the
champion's and a candidate's detection measured on fresh renders of a scenario.

Everything goes through the real code: scans are uploaded to the live /v1 API (Ray Serve scores them, the ingest
stores them through the spool and the owner), decisions and labels are the store's operations, the queue is
analytics.labelling.todays_queue (what the Relabelling page shows), retraining is screening.retrain.retrain.
"""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from xray.synth import render_parcel
from xray.writers import encode
from xscreen.records import DecisionRecord, LabelRecord, utcnow

CLASSES = ["narcotics"]  # the class new_concealment moves: every threat of this mail is one
SIZE = (128, 128)  # rendered scan (width, height) in pixels
TINY = {"classes": CLASSES, "input_size": 64, "width": 4, "embedding_dim": 8, "context_dilations": [],
        "bundled": "", "seed": 7}
OFFICER = "sim:officer"  # a process name: only a session may name a person


@dataclass(frozen=True)
class Rendered:
    """One rendered scan: PNG bytes and the generator's ground truth."""

    data: bytes
    labels: tuple[str, ...]

    @property
    def threat(self) -> bool:
        return bool(self.labels)

    @property
    def scan_id(self) -> str:
        return hashlib.sha256(self.data).hexdigest()[:16]  # how the ingest names a scan


def render(scenario: str, n: int, seed: int, *, threat_rate: float, progress: float | None = None,
           size: tuple[int, int] = SIZE, classes: Sequence[str] = CLASSES) -> list[Rendered]:
    """n scans of `scenario` at `progress` (None: ramping linearly 0 -> 1 over the n scans), `size` (w, h) pixels,
    threats drawn from `classes`."""
    out = []
    for i in range(n):
        p = render_parcel(np.random.default_rng([seed, i]), classes=list(classes), scenario=scenario,
                          progress=(i + 1) / n if progress is None else progress, threat_rate=threat_rate, size=size)
        out.append(Rendered(encode("png", p.high, p.low, palette=p.palette), tuple(p.labels)))
    return out


def write_folder(folder: Path, items: Sequence[Rendered]) -> Path:
    """A labelled training folder (images/ + labels.csv, the format `xscreen train --data` reads)."""
    (folder / "images").mkdir(parents=True, exist_ok=True)
    rows = []
    for i, r in enumerate(items):
        (folder / "images" / f"{i:05d}.png").write_bytes(r.data)
        rows.append((f"images/{i:05d}.png", "|".join(r.labels)))
    with (folder / "labels.csv").open("w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(["file", "labels"])
        out.writerows(rows)
    return folder


def upload(api: str, token: str, scanner: str, items: Sequence[Rendered]) -> list[dict[str, Any]]:
    """Each scan POSTed to /v1/scans in order; the answers (201 each, or AssertionError naming the failure)."""
    answers = []
    with httpx.Client(timeout=60, headers={"Authorization": f"Bearer {token}"}) as client:
        for i, r in enumerate(items):
            resp = client.post(f"{api}/v1/scans", files={"file": (f"m{i}.png", r.data, "image/png")},
                               data={"scanner_id": scanner})
            assert resp.status_code == 201, (resp.status_code, resp.text[:300])
            answers.append(resp.json())
    return answers


class Officers:
    """Simulated officers who know the generator's truth of every scan they were shown.

    At triage they err on a share `error_rate` of the flagged scans they decide (a threat cleared, a benign scan
    confirmed as `false_class`), drawn from `seed`; the scans they got wrong are `wrong`. A relabel (a second,
    careful look: what the relabel queue asks for) always gives the truth, so `fixed` counts the wrong decisions
    a relabelling policy found."""

    def __init__(self, error_rate: float = 0.0, seed: int = 0, false_class: str = CLASSES[0]) -> None:
        if not 0.0 <= error_rate < 1.0:
            raise ValueError(f"error_rate must be in [0, 1), got {error_rate}")
        self.truth: dict[str, Rendered] = {}
        self.labelled: list[str] = []  # scan ids labelled from a relabel queue, in order
        self.decided = 0  # flagged scans decided (each decision is a label too)
        self.wrong: set[str] = set()  # scans whose triage decision contradicts their truth
        self.error_rate, self.false_class = error_rate, false_class
        self._rng = np.random.default_rng(seed)

    @property
    def fixed(self) -> int:
        """Wrong decisions since corrected by a relabel."""
        return len(self.wrong.intersection(self.labelled))

    def decide_flagged(self, store: Any, items: Sequence[Rendered], answers: Sequence[dict[str, Any]]) -> int:
        """Decide every item the model flagged by its truth (confirmed / cleared), wrongly for a share
        `error_rate` of them; how many were decided."""
        n = 0
        for r, a in zip(items, answers, strict=True):
            self.truth[r.scan_id] = r
            if a["verdict"] != "clear":
                threat = r.threat
                if self.error_rate and self._rng.random() < self.error_rate:
                    threat = not threat
                    self.wrong.add(r.scan_id)
                store.record_decision(DecisionRecord(
                    decision_id=f"d-{r.scan_id}", scan_id=r.scan_id, officer=OFFICER,
                    decision="confirmed" if threat else "cleared",
                    threat_class=(r.labels[0] if r.threat else self.false_class) if threat else None,
                    decided_at=utcnow()))
                n += 1
        self.decided += n
        return n

    def label(self, store: Any, scan_ids: Sequence[str]) -> int:
        """Label the given scans by their truth (unknown scans are skipped); how many were labelled."""
        recs = [LabelRecord(label_id=f"l-{i}", scan_id=i, labels=sorted(self.truth[i].labels), source="relabel",
                            author=OFFICER, created_at=utcnow()) for i in scan_ids if i in self.truth]
        if recs:
            store.add_labels(recs)
        self.labelled += [r.scan_id for r in recs]
        return len(recs)

    def label_queue(self, store: Any, *, budget: int, random_share: float, borderline_share: float = 0.0,
                    now: datetime | None = None) -> int:
        """Label what today's active relabel queue offers (the Relabelling page's queue, with `borderline_share`
        of it for cleared items nearest their threshold), within `budget`."""
        from analytics.labelling import todays_queue

        queue = todays_queue(store, budget=budget, random_share=random_share, now=now or utcnow(),
                             borderline_share=borderline_share)
        return self.label(store, list(queue["scan_id"])[:budget])

    def label_random(self, store: Any, *, budget: int, seed: str) -> int:
        """Label a uniform random slice of unlabelled scans of the same size: the baseline active sampling beats."""
        return self.label(store, list(store.random_unlabelled(limit=budget, seed=seed)["scan_id"]))


@dataclass(frozen=True)
class Rates:
    detection: float  # share of threat scans flagged (verdict not `clear`)
    false_alarms: float  # share of benign scans flagged
    threats: int
    benign: int
    auc: float  # of the any-threat score: how well the model separates threats at all, whatever its thresholds


def rates(settings: Any, version: str, items: Sequence[Rendered]) -> Rates:
    """A registered model's detection and false alarms at its own operating point on `items`."""
    from screening.classifier import Classifier
    from xray.formats import read_scan

    clf = Classifier.from_registry(settings, version)
    preds = clf.predict([read_scan(r.data) for r in items])
    flags = np.array([p.verdict != "clear" for p in preds])
    threat = np.array([r.threat for r in items])
    return Rates(float(flags[threat].mean()) if threat.any() else float("nan"),
                 float(flags[~threat].mean()) if (~threat).any() else float("nan"), int(threat.sum()),
                 int((~threat).sum()), auc([p.any_threat for p in preds], items) if 0 < threat.sum() < len(items)
                 else float("nan"))


def auc(scores: Sequence[float], items: Sequence[Rendered]) -> float:
    """Area under the ROC curve of any-threat scores against the truth (0.5: no better than chance)."""
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score([r.threat for r in items], list(scores)))


def bundled_auc(scenario: str, n: int, seed: int, classes: Sequence[str] | None = None) -> dict[str, float]:
    """The bundled model's any-threat AUC on n baseline renders and n renders of `scenario` at full strength, at
    256 px (nearer the size it was trained at than the loop's 128), threats drawn from `classes` (None: all the
    model's): does the scenario hurt a bigger model?"""
    from screening import registry
    from screening.classifier import Classifier
    from screening.train import bundled_checkpoint
    from tests.conftest import make_settings
    from xray.formats import read_scan

    ckpt = bundled_checkpoint(make_settings(Path("/nonexistent")))
    assert ckpt is not None
    clf = Classifier(registry.build_model(ckpt), ckpt, "cpu")
    out = {}
    for name, sc, progress in (("before", "baseline", 0.0), ("under", scenario, 1.0)):
        items = [Rendered(encode("png", p.high, p.low, palette=p.palette), tuple(p.labels)) for p in (
            render_parcel(np.random.default_rng([seed, i]), classes=classes or ckpt.classes, scenario=sc, progress=progress,
                          threat_rate=0.5, size=(256, 256)) for i in range(n))]
        out[name] = auc([p.any_threat for p in clf.predict([read_scan(r.data) for r in items])], items)
    return out
