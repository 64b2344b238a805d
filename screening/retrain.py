"""`xscreen retrain`: a candidate fine-tuned from the champion on the base data plus what officers decided and
relabelled (partial labels allowed: `threat` = class unknown), recalibrated and re-certified by training itself,
registered as a candidate (never promoted here: the gate and a person decide that). Which alerts start one, and
under what name, is here too, and this module loads no torch until it trains: the supervisor's monitoring
schedule asks it (serving/monitor_job.py) without loading the model code."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from analytics.labelling import export_folder, export_training_set
from xscreen.errors import XscreenError
from xscreen.records import THREAT_UNKNOWN_CLASS, AlertRecord, utcnow
from xscreen.settings import Settings

if TYPE_CHECKING:
    from screening import train

log = logging.getLogger(__name__)


def model_labels(labels: Sequence[str], classes: Sequence[str]) -> list[str]:
    """A stored label in the model's vocabulary: a class the model does not screen for becomes `threat` (a threat
    of unknown class), which the training loader accepts; it would refuse the unknown name."""
    return sorted({c if c in classes else THREAT_UNKNOWN_CLASS for c in labels})


def export_live_labels(settings: Settings, name: str, live_days: float | None) -> Path | None:
    """The store's labelled live scans (officers' decisions imply labels; canaries excluded; the
    last `live_days` days, None: all) copied to exports/<name>/ as a training folder; None when there are none."""
    from store.client import open_store

    with open_store(settings) as store:
        rows = store.training_labels()
    if live_days is not None:
        rows = rows[rows["created_at"] >= utcnow() - timedelta(days=live_days)]
    if rows.empty:
        return None
    classes = settings.model.classes
    rows = rows.assign(labels=[model_labels(list(x), classes) for x in rows["labels"]])
    settings.exports_dir.mkdir(parents=True, exist_ok=True)
    result = export_training_set(rows, export_folder(settings.exports_dir, name))
    if result.missing:
        log.warning("retrain: %d labelled scan(s) left out, their images are gone", len(result.missing))
    return result.folder


def retrain(settings: Settings, base: Sequence[Path], out: str, *, cfg: train.TrainConfig,
            live_days: float | None, actor: str) -> train.TrainResult:
    """Fine-tune the champion on `base` + the live labels; register `out` as a candidate whose parent is the
    champion and whose `train_manifest_sha256` hashes every file and label it was trained on."""
    from screening import train
    from screening.registry import weights_path

    if weights_path(settings, out).exists():  # checked before the export, which would be left behind
        raise XscreenError(f"model version {out!r} already exists: choose another --out name", title="Retrain")
    live = export_live_labels(settings, f"retrain-{out}", live_days)
    folders = [*base, *([live] if live else [])]
    if not folders:
        raise XscreenError("nothing to train on: give --base folders or label live scans first", title="Retrain")
    return train.train_model(settings, folders, out, cfg=cfg, from_model="champion", promote=False, actor=actor)


def triggering_kinds(settings: Settings, alerts: Iterable[AlertRecord]) -> list[str]:
    """The kinds among newly raised `alerts` that `monitoring.retrain_on` says start a retrain (sorted)."""
    return sorted({a.kind for a in alerts} & set(settings.monitoring.retrain_on))


def alert_retrain_name(at: datetime) -> str:
    """The candidate an alert-triggered retrain registers: `retrain-<UTC time>`."""
    return f"retrain-{at:%Y%m%d-%H%M%S}"


def retrain_on_alerts(settings: Settings, alerts: Sequence[AlertRecord], *, actor: str,
                      now: datetime | None = None) -> train.TrainResult | None:
    """Retrain (as `xscreen retrain`, default epochs) when a newly raised alert's kind is in
    `monitoring.retrain_on`, on `monitoring.retrain_base` plus every live label; the candidate is named
    `retrain-<UTC time>`. None when no alert asks for it (the setting is empty by default)."""
    kinds = triggering_kinds(settings, alerts)
    if not kinds:
        return None
    from screening import train

    out = alert_retrain_name(now or utcnow())
    log.info("alert(s) %s raised: retraining %s", ", ".join(kinds), out)
    cfg = train.TrainConfig(epochs=settings.model.default_epochs, seed=settings.model.seed,
                            box_weight=settings.model.box_weight, progress=False)
    return retrain(settings, settings.monitoring.retrain_base, out, cfg=cfg, live_days=None, actor=actor)


__all__ = ["alert_retrain_name", "export_live_labels", "model_labels", "retrain", "retrain_on_alerts",
           "triggering_kinds"]
