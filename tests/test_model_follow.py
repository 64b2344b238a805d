"""Serving follows the store's models in force without Ray: a promotion, a rollback and a threshold change reach the
follower's `live` model; the role and version it held travel with each verdict into the stored record."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from screening.classifier import Classifier, verdict_fields
from screening.registry import register
from serving.follow import ModelFollower
from serving.ingest import Ingest
from store.engine import Store
from tests.serving_fakes import ListSpool, png_bytes, tiny_model
from xscreen.records import ModelInForce
from xscreen.settings import Settings, ensure_home


def _load(settings: Settings) -> Any:
    def load(m: ModelInForce) -> Classifier:
        return Classifier.from_checkpoint(Path(m.weights_path), expected_sha256=m.weights_sha256,
                                          expected_classes=settings.model.classes, heatmap_size=8)
    return load


@pytest.fixture
def registry(settings: Settings) -> Settings:
    """Two tiny real models registered in a real store file: a champion and a candidate."""
    ensure_home(settings)
    classes = settings.model.classes
    register(settings, tiny_model(classes, "tiny-a", seed=1), state="champion")
    register(settings, tiny_model(classes, "tiny-b", seed=2))
    return settings


def _follower(settings: Settings, role: str = "champion") -> tuple[ModelFollower, Store]:
    store = Store.from_settings(settings)
    return ModelFollower(role, store.models_in_force, _load(settings)), store  # type: ignore[arg-type]


def test_follower_swaps_on_promotion_and_rollback_and_keeps_the_model_it_started_a_batch_with(
        registry: Settings) -> None:
    follower, store = _follower(registry)
    with store:
        assert follower.refresh() and follower.live is not None and follower.live.version == "tiny-a"
        before = follower.live
        assert not follower.refresh()  # nothing changed: no reload
        store.set_model_state("tiny-b", "champion", actor="sue", reason="better", force=True)
        assert follower.refresh()
        assert (follower.live.role, follower.live.version) == ("champion", "tiny-b")
        assert before.model.version == "tiny-a"  # a batch holding the old Live is not changed under it
        store.rollback(actor="sue")
        assert follower.refresh() and follower.live.version == "tiny-a"


def test_new_thresholds_apply_without_reloading_the_weights(registry: Settings) -> None:
    follower, store = _follower(registry)
    loads: list[str] = []
    inner = _load(registry)
    follower._load = lambda m: (loads.append(m.version), inner(m))[1]  # count loads, real loader
    image = np.random.default_rng(0).random((40, 50, 3)).astype(np.float32)
    with store:
        follower.refresh()
        assert follower.live.thresholds_version == 1
        first = follower.live.model.predict([image])[0]
        everything = {c: {"clear": 0.0, "inspect": 0.0} for c in ["any_threat", *registry.model.classes]}
        store.set_thresholds("tiny-a", everything, actor="sue", reason="inspect everything")
        assert follower.refresh()
        assert follower.live.thresholds_version == 2 and loads == ["tiny-a"]  # weights read once only
        again = follower.live.model.predict([image])[0]
    assert again.scores == first.scores  # same network
    assert again.verdict == "inspect" and again.thresholds == everything


def test_shadow_slot_follows_the_shadow_and_stops_when_it_steps_down(registry: Settings) -> None:
    follower, store = _follower(registry, role="shadow")
    with store:
        assert not follower.refresh() and follower.live is None
        store.set_model_state("tiny-b", "shadow", actor="sue", reason="challenger")
        assert follower.refresh() and (follower.live.role, follower.live.version) == ("shadow", "tiny-b")
        store.set_model_state("tiny-b", "candidate", actor="sue", reason="enough")
        assert follower.refresh() and follower.live is None


def test_a_broken_new_checkpoint_keeps_the_old_champion_serving(registry: Settings) -> None:
    follower, store = _follower(registry)
    with store:
        follower.refresh()
        Path(store.get_model("tiny-b").weights_path).write_bytes(b"not a checkpoint")
        store.set_model_state("tiny-b", "champion", actor="sue", force=True)
        assert not follower.refresh()
        assert follower.live.version == "tiny-a" and "checksum mismatch" in (follower.last_error or "")


def test_the_stored_role_and_version_are_the_ones_the_scorer_reports(tmp_path: Path, settings: Settings) -> None:
    """Old code stored every verdict of the champion slot as `champion`, whatever the replica said."""
    clf = Classifier(*_built(settings.model.classes))
    scan_dir = tmp_path / "inbox" / "scanner-a"
    scan_dir.mkdir(parents=True)

    def score(images: list[Any]) -> list[dict[str, Any]]:
        return [{**verdict_fields(p), "role": "shadow"} for p in clf.predict([im.rgb for im in images])]

    from tests.serving_fakes import STATS, fake_reader

    ingest = Ingest(inbox=tmp_path / "inbox", quarantine_dir=tmp_path / "q", score=score,
                    spool_write=ListSpool(tmp_path), reader=fake_reader, stats=lambda _: STATS,
                    scanner_ids=["scanner-a"])
    report = ingest.ingest_bytes(png_bytes(90, 32), name="a.png", scanner_id="scanner-a")
    [verdict] = report.verdicts
    assert (verdict.role, verdict.model_version) == ("shadow", "tiny-x")


def _built(classes: list[str]) -> tuple[Any, Any]:
    from screening.registry import build_model

    ckpt = tiny_model(classes, "tiny-x", seed=3)
    return build_model(ckpt), ckpt


def test_a_just_promoted_shadow_does_not_store_a_second_verdict_of_the_same_version(tmp_path: Path) -> None:
    """For a poll or two after its promotion the shadow slot still holds the new champion: one verdict, not two."""
    from tests.serving_fakes import STATS, FakeScorer, fake_reader

    ingest = Ingest(inbox=tmp_path / "inbox", quarantine_dir=tmp_path / "q", score=FakeScorer("v2"),
                    shadow_score=FakeScorer("v2"), spool_write=ListSpool(tmp_path), reader=fake_reader,
                    stats=lambda _: STATS, scanner_ids=["scanner-a"])
    report = ingest.ingest_bytes(png_bytes(90), name="a.png", scanner_id="scanner-a")
    assert [(v.role, v.model_version) for v in report.verdicts] == [("champion", "v2")]
    ingest._shadow_score = lambda images: []  # no shadow in force: the slot answers nothing
    report = ingest.ingest_bytes(png_bytes(91), name="b.png", scanner_id="scanner-a")
    assert [v.role for v in report.verdicts] == ["champion"]


def test_cli_promotes_rolls_back_and_sets_thresholds_in_the_one_place_serving_reads(
        registry: Settings, tmp_path: Path) -> None:
    import json

    from typer.testing import CliRunner

    from cli import app

    config = tmp_path / "xscreen.toml"
    config.write_text(f'home = "{registry.home}"\n[network]\nstore_port = {registry.network.store_port}\n')

    def run(*args: str) -> str:
        result = CliRunner().invoke(app, ["--config", str(config), *args])
        assert result.exit_code == 0, result.output
        return result.output

    assert "tiny-b is now champion (serving follows within 2 s)" in run("models", "promote", "tiny-b", "--force")
    assert "tiny-a is champion again" in run("models", "rollback")
    everything = {c: {"clear": 0.0, "inspect": 0.0} for c in ["any_threat", *registry.model.classes]}
    (tmp_path / "t.json").write_text(json.dumps(everything))
    assert "tiny-a: thresholds version 2 in force" in run("models", "thresholds", "champion", str(tmp_path / "t.json"))
    (tmp_path / "bad.json").write_text(json.dumps({"any_threat": {"clear": 0.9, "inspect": 0.1}}))
    refused = CliRunner().invoke(app, ["--config", str(config), "models", "thresholds", "tiny-a", str(tmp_path / "bad.json")])
    assert refused.exit_code != 0 and "'any_threat' needs 0 <= clear <= inspect" in str(refused.exception)
    with Store.from_settings(registry) as store:
        [live] = store.models_in_force()
    assert (live.version, live.thresholds, live.thresholds_version) == ("tiny-a", everything, 2)


def test_serving_housekeeper_stops_a_shadow_that_has_seen_enough_threat_items(tmp_path: Path, now: Any) -> None:
    import time
    from types import SimpleNamespace

    from serving.parts import make_housekeeper
    from tests.conftest import make_settings
    from tests.seeding import SHADOW, seed_store
    from xscreen.records import LabelRecord

    settings = make_settings(tmp_path / "home", serving={"shadow_threat_items": 2})
    ensure_home(settings)
    with Store.from_settings(settings) as store:
        seeded = seed_store(store, 20, seed=2, now=now)
        store.add_labels([LabelRecord(label_id=f"t{i}", scan_id=s, labels=["knife"], source="relabel", author="ann",
                                      created_at=now) for i, s in enumerate(seeded.scan_ids[:2])])
        ingest = SimpleNamespace(rechecks=SimpleNamespace(run=lambda: None))
        keeper = make_housekeeper(settings, ingest, store)  # type: ignore[arg-type]
        keeper.start()
        try:
            deadline = time.monotonic() + 20
            while store.get_model(SHADOW).state == "shadow" and time.monotonic() < deadline:
                time.sleep(0.2)
        finally:
            keeper.stop()
        assert store.get_model(SHADOW).state == "candidate"
        [event] = [e for e in store.model_lineage(SHADOW)["events"] if e["to_state"] == "candidate"
                   and e["from_state"] == "shadow"]
        assert event["actor"] == "system" and event["reason"].startswith("shadow complete: 2 threat items")
