"""Registry: weights files + store rows; exactly one champion through promote and rollback; refusals on load."""

from __future__ import annotations

import pytest

from screening import registry
from screening.classifier import Classifier
from screening.network import NetConfig, build_network
from store.client import open_store
from xscreen.errors import ConflictError, ModelError, NotFoundError
from xscreen.settings import Settings


def _ckpt(settings: Settings, version: str, seed: int = 0) -> registry.Checkpoint:
    config = NetConfig(classes=tuple(settings.model.classes), input_size=64, width=4, embedding_dim=8)
    th = {c: {"clear": 0.1, "inspect": 0.5} for c in [*settings.model.classes, "any_threat"]}
    cert = {"alpha": 0.05, "delta": 0.05, "certified": True, "thresholds": th}
    return registry.Checkpoint(version, config, build_network(config, seed=seed).state_dict(), {"any_threat": 1.0}, th, cert,
                               created_at="2026-11-20T12:00:00+00:00")


def _champions(settings: Settings) -> list[str]:
    return [m.version for m in registry.list_models(settings) if m.state == "champion"]


def test_promote_and_rollback_keep_exactly_one_champion_and_are_audited(settings: Settings) -> None:
    with pytest.raises(NotFoundError, match="no champion"):
        registry.resolve(settings, "champion")
    registry.register(settings, _ckpt(settings, "m1"), state="champion")
    rec = registry.register(settings, _ckpt(settings, "m2", seed=1))
    assert rec.state == "candidate" and _champions(settings) == ["m1"]
    with pytest.raises(ConflictError, match="m2 has no passing gate report against the champion m1"):
        registry.set_state(settings, "m2", "champion", "alice", "better AP")
    registry.set_state(settings, "m2", "champion", "alice", "better AP", force=True)
    assert _champions(settings) == ["m2"]
    assert registry.rollback(settings, "bob").version == "m1"
    assert _champions(settings) == ["m1"] and registry.resolve(settings).version == "m1"
    with open_store(settings) as store:
        actions = [(a.actor, a.action) for a in store.audit_log()]
    assert ("alice", "promote") in actions and ("bob", "rollback") in actions


def test_registered_model_loads_verified_and_refuses_tampering(settings: Settings) -> None:
    rec = registry.register(settings, _ckpt(settings, "m1"), state="champion")
    assert rec.weights_path.endswith("m1/model.pt") and len(rec.weights_sha256) == 64
    clf = Classifier.from_registry(settings, "champion")
    assert clf.version == "m1" and clf.classes == settings.model.classes
    with pytest.raises(ModelError, match="already exists"):
        registry.register(settings, _ckpt(settings, "m1", seed=5))
    with pytest.raises(NotFoundError, match="'nope'"):
        Classifier.from_registry(settings, "nope")
    other = settings.model_copy(update={"model": settings.model.model_copy(update={"classes": ["knife"]})})
    with pytest.raises(ModelError, match="class list"):
        Classifier.from_registry(other, "m1")
    path = settings.models_dir / "m1" / "model.pt"
    path.write_bytes(path.read_bytes() + b"x")
    with pytest.raises(ModelError, match="checksum mismatch"):
        Classifier.from_registry(settings, "m1")


def test_bad_version_names_are_refused(settings: Settings) -> None:
    for name in ("champion", "../evil", "", "a b"):
        with pytest.raises(ModelError, match="not allowed"):
            registry.register(settings, _ckpt(settings, name))
