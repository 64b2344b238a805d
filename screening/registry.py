"""Model registry: self-describing checkpoints under settings.models_dir/<version>/model.pt, rows in the store.

A checkpoint carries everything needed to rebuild and trust the model: the NetConfig arguments, the class list,
the version, temperatures, thresholds and conformal certificate. Its sha256 is kept in the store's ModelRecord
(and in a sidecar file for loading without a store); loading verifies checksum, class list and architecture,
and refuses each mismatch with a ModelError naming it. Every store call goes through `_store(settings)`.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import torch

from screening.network import NetConfig, ScreeningNet
from xscreen.errors import ModelError, NotFoundError
from xscreen.records import ModelRecord, ModelState, is_model_version_name, utcnow
from xscreen.settings import Settings

log = logging.getLogger(__name__)
FORMAT = "xscreen-checkpoint/1"
ARCH = "xscreen-cnn-v1"


@dataclass
class Checkpoint:
    """What a model.pt holds, typed."""

    version: str
    config: NetConfig
    state_dict: dict[str, torch.Tensor]
    temperatures: dict[str, float]
    thresholds: dict[str, dict[str, float]]
    certificate: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    parent: str | None = None
    train_manifest_sha256: str = ""
    created_at: str = ""

    @property
    def classes(self) -> list[str]:
        return list(self.config.classes)


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def check_version_name(version: str) -> str:
    if not is_model_version_name(version):
        raise ModelError(
            f"model name {version!r} is not allowed: use 1-64 letters, digits, '.', '_' or '-' (and not 'champion')"
        )
    return version


def save_checkpoint(ckpt: Checkpoint, path: Path) -> str:
    """Write model.pt (temp name + rename) and its .sha256 sidecar; returns the sha256."""
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "format": FORMAT,
        "version": ckpt.version,
        "parent": ckpt.parent,
        "net_config": ckpt.config.to_dict(),
        "classes": ckpt.classes,
        "state_dict": {k: v.detach().cpu() for k, v in ckpt.state_dict.items()},
        "temperatures": ckpt.temperatures,
        "thresholds": ckpt.thresholds,
        # JSON text keeps the nested certificate/metrics loadable with torch.load(weights_only=True).
        "certificate_json": json.dumps(ckpt.certificate),
        "metrics_json": json.dumps(ckpt.metrics),
        "train_manifest_sha256": ckpt.train_manifest_sha256,
        "created_at": ckpt.created_at or utcnow().isoformat(),
    }
    tmp = path.with_suffix(".pt.tmp")
    torch.save(payload, tmp)
    tmp.replace(path)
    digest = sha256_file(path)
    path.with_suffix(".sha256").write_text(digest + "\n")
    return digest


def _read_payload(path: Path, expected_sha256: str | None) -> dict[str, Any]:
    if not path.is_file():
        raise ModelError(f"checkpoint {path} does not exist")
    if expected_sha256 is None and path.with_suffix(".sha256").is_file():
        expected_sha256 = path.with_suffix(".sha256").read_text().strip()
    if expected_sha256 is not None:
        actual = sha256_file(path)
        if actual != expected_sha256:
            raise ModelError(f"checkpoint {path}: checksum mismatch (expected {expected_sha256[:12]}…, file has {actual[:12]}…)")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for corrupt or foreign files
        raise ModelError(f"checkpoint {path} is not a readable xscreen checkpoint ({type(exc).__name__}: {exc})") from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise ModelError(f"checkpoint {path}: unknown format {payload.get('format') if isinstance(payload, dict) else type(payload)!r}")
    return payload


def load_checkpoint(path: Path, *, expected_sha256: str | None = None, expected_classes: list[str] | None = None) -> Checkpoint:
    """Read and verify a checkpoint: checksum, class list (when given) and architecture."""
    p = _read_payload(Path(path), expected_sha256)
    try:
        config = NetConfig.from_dict(p["net_config"])
    except (TypeError, ValueError, KeyError) as exc:
        raise ModelError(f"checkpoint {path}: architecture arguments not understood ({exc})") from None
    if config.arch != ARCH:
        raise ModelError(f"checkpoint {path}: architecture {config.arch!r} is not supported (this code builds {ARCH!r})")
    if expected_classes is not None and list(config.classes) != list(expected_classes):
        raise ModelError(
            f"checkpoint {path}: class list {list(config.classes)} differs from the configured classes {list(expected_classes)}"
        )
    return Checkpoint(
        version=p["version"],
        config=config,
        state_dict=p["state_dict"],
        temperatures={k: float(v) for k, v in p["temperatures"].items()},
        thresholds=p["thresholds"],
        certificate=json.loads(p["certificate_json"]),
        metrics=json.loads(p["metrics_json"]),
        parent=p.get("parent"),
        train_manifest_sha256=p.get("train_manifest_sha256", ""),
        created_at=p.get("created_at", ""),
    )


def build_model(ckpt: Checkpoint) -> ScreeningNet:
    """The network with the checkpoint's weights; a layout mismatch is a ModelError naming the tensors."""
    net = ScreeningNet(ckpt.config)
    try:
        net.load_state_dict(ckpt.state_dict, strict=True)
    except RuntimeError as exc:
        first = str(exc).splitlines()[1].strip() if len(str(exc).splitlines()) > 1 else str(exc)
        raise ModelError(f"model {ckpt.version}: weights do not fit the architecture ({first[:300]})") from None
    return net.eval()


# --- the store ----------------------------------------------------------------------------------------------


@contextmanager
def _store(settings: Settings) -> Iterator[Any]:
    """The one place the registry opens the analytics store."""
    from store.client import open_store

    with open_store(settings) as store:
        yield store


def weights_path(settings: Settings, version: str) -> Path:
    return settings.models_dir / check_version_name(version) / "model.pt"


def register(settings: Settings, ckpt: Checkpoint, *, state: ModelState = "candidate", actor: str = "system") -> ModelRecord:
    """Save the checkpoint under models_dir and add its ModelRecord; state `champion` promotes it at once."""
    path = weights_path(settings, ckpt.version)
    with _store(settings) as store:
        if _exists(store, ckpt.version) or path.exists():  # never overwrite the weights of a registered version
            raise ModelError(f"model version {ckpt.version!r} already exists: choose another --out name")
        digest = save_checkpoint(ckpt, path)
        record = ModelRecord(
            version=ckpt.version,
            parent=ckpt.parent,
            state=state,
            created_at=datetime.fromisoformat(ckpt.created_at) if ckpt.created_at else utcnow(),
            classes=ckpt.classes,
            architecture=ckpt.config.to_dict(),
            train_manifest_sha256=ckpt.train_manifest_sha256,
            metrics=ckpt.metrics,
            thresholds=ckpt.thresholds,
            calibration={"temperatures": ckpt.temperatures, "certificate": ckpt.certificate},
            weights_path=str(path),
            weights_sha256=digest,
        )
        store.register_model(record, actor=actor)  # a state other than candidate is applied (and audited) by the store
        return store.get_model(ckpt.version)


def _exists(store: Any, version: str) -> bool:
    try:
        store.get_model(version)
        return True
    except NotFoundError:
        return False


def resolve(settings: Settings, name: str = "champion") -> ModelRecord:
    """The ModelRecord named by a version or `champion`; NotFoundError when there is none."""
    with _store(settings) as store:
        record = store.champion() if name == "champion" else store.get_model(name)  # get_model: NotFoundError
    if record is None:
        raise NotFoundError("no champion model is registered (run `xscreen train` first)")
    return record


def load_registered(settings: Settings, name: str = "champion") -> tuple[ModelRecord, Checkpoint]:
    """Resolve a name and load its verified checkpoint (checksum from the store row, classes from settings)."""
    record = resolve(settings, name)
    ckpt = load_checkpoint(Path(record.weights_path), expected_sha256=record.weights_sha256, expected_classes=settings.model.classes)
    if ckpt.version != record.version:
        raise ModelError(f"checkpoint {record.weights_path} holds version {ckpt.version!r}, store says {record.version!r}")
    return record, ckpt


def list_models(settings: Settings) -> list[ModelRecord]:
    with _store(settings) as store:
        return list(store.list_models())


def set_state(settings: Settings, version: str, state: ModelState, actor: str, reason: str,
              force: bool = False, scanner: str | None = None) -> ModelRecord:
    """Promote (champion: of the fleet, or of one `scanner`), shadow or retire a version; the store records it in
    the audit log. Replacing a champion needs a passing gate report unless `force`."""
    with _store(settings) as store:
        store.get_model(version)  # NotFoundError naming the version
        store.set_model_state(version, state, actor, reason, force=force, scanner=scanner)
        return store.get_model(version)


def rollback(settings: Settings, actor: str, scanner: str | None = None) -> ModelRecord:
    """Make the previous champion of the fleet (or of one `scanner`: its first one rolled back leaves it on the
    fleet champion, returned) champion again; the store records it in the audit log."""
    with _store(settings) as store:
        # NotFoundError when there was no earlier champion (or the scanner has none of its own)
        version = store.rollback(actor, "rollback from the CLI", scanner=scanner)
        return store.get_model(version)
