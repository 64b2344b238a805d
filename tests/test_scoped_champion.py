"""A champion for one scanner (models.scanner_id): promotion leaves the fleet champion, the gate compares against
the champion in force for the scope, rollback follows one scope's history, serving reads every scope."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from screening.classifier import Classifier, verdict_fields
from screening.registry import register
from serving.canaries import CanaryFeed
from serving.follow import ModelFollower, ScannerImage, score_routed
from serving.ingest import Ingest
from store.engine import Store
from tests.seeding import model_record
from tests.serving_fakes import ListSpool, png_bytes, tiny_model
from xray.formats import read_scan
from xscreen.errors import ConflictError, NotFoundError, XscreenError
from xscreen.records import CanaryRecord, GateReportRecord, ModelInForce, VerdictRole
from xscreen.settings import Settings, ensure_home

CLASSES = ["knife", "firearm"]


def _registered(store: Store, now: datetime, *versions: str) -> None:
    store.register_model(model_record("fleet-1", CLASSES, now, state="champion"))
    for version in versions:
        store.register_model(model_record(version, CLASSES, now, parent="fleet-1"))


def _passed(store: Store, now: datetime, candidate: str, champion: str) -> None:
    store.record_gate_report(GateReportRecord(report_id=f"{candidate}-vs-{champion}", candidate=candidate,
                                              champion=champion, created_at=now, passed=True, report={}), actor="sue")


def _scopes(store: Store) -> dict[str, tuple[str, str | None]]:
    return {m.version: (m.state, m.scanner_id) for m in store.list_models()}


def test_a_scanner_champion_leaves_the_fleet_champion_and_serving_reads_both(store: Store, now: datetime) -> None:
    _registered(store, now, "s4-a", "s5-a")
    store.set_model_state("s4-a", "champion", actor="sue", reason="adapted", force=True, scanner="scanner-4")
    store.set_model_state("s5-a", "champion", actor="sue", force=True, scanner="scanner-5")
    assert _scopes(store) == {"fleet-1": ("champion", None), "s4-a": ("champion", "scanner-4"),
                              "s5-a": ("champion", "scanner-5")}
    assert store.champion().version == "fleet-1"  # type: ignore[union-attr]
    in_force = [(m.role, m.version, m.scanner_id) for m in store.models_in_force()]
    assert in_force == [("champion", "fleet-1", None), ("champion", "s4-a", "scanner-4"),
                        ("champion", "s5-a", "scanner-5")]
    assert store.integrity_check().ok
    promote = [a for a in store.audit_log(actor="sue") if a.action == "promote" and a.target == "s4-a"]
    assert promote[0].details["scanner_id"] == "scanner-4" and promote[0].details["forced"] is True


def test_a_new_scanner_champion_replaces_only_that_scanners(store: Store, now: datetime) -> None:
    _registered(store, now, "s4-a", "s4-b")
    store.set_model_state("s4-a", "champion", actor="sue", force=True, scanner="scanner-4")
    store.set_model_state("s4-b", "champion", actor="sue", force=True, scanner="scanner-4")
    assert _scopes(store) == {"fleet-1": ("champion", None), "s4-a": ("retired", None),
                              "s4-b": ("champion", "scanner-4")}
    with pytest.raises(ConflictError, match="s4-b is the champion of scanner scanner-4"):
        store.set_model_state("s4-b", "champion", actor="sue", force=True, scanner="scanner-5")
    with pytest.raises(ConflictError, match="fleet-1 is the champion of the fleet"):
        store.set_model_state("fleet-1", "champion", actor="sue", force=True, scanner="scanner-4")
    with pytest.raises(XscreenError, match="applies to a champion or a shadow only"):
        store.set_model_state("s4-a", "candidate", actor="sue", scanner="scanner-4")


def test_a_shadow_can_be_scoped_to_one_scanner_and_is_promoted_into_that_scope(store: Store, now: datetime) -> None:
    _registered(store, now, "s4-a", "s4-b")
    store.set_model_state("s4-a", "shadow", actor="sue", reason="adapted to scanner-4", scanner="scanner-4")
    assert [(m.role, m.version, m.scanner_id) for m in store.models_in_force()] == [
        ("champion", "fleet-1", None), ("shadow", "s4-a", "scanner-4")]
    progress = store.shadow_progress()
    assert progress is not None and (progress["version"], progress["scanner_id"]) == ("s4-a", "scanner-4")
    store.set_model_state("s4-b", "shadow", actor="sue")  # one shadow at a time, whatever the scopes
    assert _scopes(store)["s4-a"] == ("candidate", None) and _scopes(store)["s4-b"] == ("shadow", None)
    store.set_model_state("s4-b", "shadow", actor="sue", scanner="scanner-4")  # the same shadow, narrowed
    assert _scopes(store)["s4-b"] == ("shadow", "scanner-4")
    # finished with a passing gate against the champion in force for scanner-4 (the fleet's): champion of scanner-4
    _passed(store, now, "s4-b", "fleet-1")
    assert store.end_shadow_when_done(0, auto_promote=True) == "s4-b"
    assert _scopes(store)["s4-b"] == ("champion", "scanner-4") and _scopes(store)["fleet-1"] == ("champion", None)
    # a scoped shadow against a scanner that has its own champion must beat that champion, not the fleet's
    store.set_model_state("s4-a", "shadow", actor="sue", scanner="scanner-4")
    _passed(store, now, "s4-a", "fleet-1")
    assert store.end_shadow_when_done(0, auto_promote=True) == "s4-a" and _scopes(store)["s4-a"] == ("candidate", None)


def test_the_gate_compares_against_the_champion_in_force_for_the_scope(store: Store, now: datetime) -> None:
    _registered(store, now, "s4-a", "s4-b")
    with pytest.raises(ConflictError, match="against the champion fleet-1 in force for scanner scanner-4"):
        store.set_model_state("s4-a", "champion", actor="sue", scanner="scanner-4")
    _passed(store, now, "s4-a", "fleet-1")  # no scanner champion yet: the fleet's is the one to beat
    store.set_model_state("s4-a", "champion", actor="sue", scanner="scanner-4")
    _passed(store, now, "s4-b", "fleet-1")  # beating the fleet champion is no longer enough for scanner-4
    with pytest.raises(ConflictError, match="against the champion s4-a in force for scanner scanner-4"):
        store.set_model_state("s4-b", "champion", actor="sue", scanner="scanner-4")
    _passed(store, now, "s4-b", "s4-a")
    store.set_model_state("s4-b", "champion", actor="sue", scanner="scanner-4")
    assert _scopes(store)["s4-b"] == ("champion", "scanner-4")


def test_rollback_of_a_scanner_follows_its_own_history_then_returns_to_the_fleet(store: Store, now: datetime) -> None:
    _registered(store, now, "s4-a", "s4-b", "fleet-2", "s5-a")
    store.set_model_state("s4-a", "champion", actor="sue", force=True, scanner="scanner-4")
    store.set_model_state("fleet-2", "champion", actor="sue", force=True)  # the fleet moves on meanwhile
    store.set_model_state("s4-b", "champion", actor="sue", force=True, scanner="scanner-4")
    store.set_model_state("s5-a", "champion", actor="sue", force=True, scanner="scanner-5")
    assert store.rollback(actor="sue", scanner="scanner-4") == "s4-a"  # as for the fleet: the one before
    assert _scopes(store)["s4-a"] == ("champion", "scanner-4") and store.champion().version == "fleet-2"  # type: ignore[union-attr]
    assert _scopes(store)["s5-a"] == ("champion", "scanner-5")  # another scanner is untouched
    assert store.rollback(actor="sue", scanner="scanner-5") == "fleet-2"  # its first champion: back to the fleet
    assert _scopes(store)["s5-a"] == ("retired", None)
    assert [(m.version, m.scanner_id) for m in store.models_in_force()] == [("fleet-2", None), ("s4-a", "scanner-4")]
    with pytest.raises(NotFoundError, match="scanner-5 has no champion of its own"):
        store.rollback(actor="sue", scanner="scanner-5")
    assert store.rollback(actor="sue") == "fleet-1"  # the fleet's history never saw the scanners' champions
    rollbacks = {(a.target, a.details.get("scanner_id")) for a in store.audit_log(actor="sue") if a.action == "rollback"}
    assert rollbacks == {("s4-a", "scanner-4"), ("fleet-2", "scanner-5"), ("fleet-1", None)}
    events = store.model_lineage("s5-a")["events"]
    assert [(e["from_state"], e["to_state"]) for e in events][-1] == ("champion", "retired")


# ---- serving: each item scored by its scanner's champion, else the fleet's ------------------------------------


def _follower(settings: Settings, store: Store, role: VerdictRole = "champion") -> ModelFollower:
    def load(m: ModelInForce) -> Classifier:
        return Classifier.from_checkpoint(Path(m.weights_path), expected_sha256=m.weights_sha256,
                                          expected_classes=settings.model.classes, heatmap_size=8)
    return ModelFollower(role, store.models_in_force, load)


def _predict(model: Any, images: Sequence[Any]) -> list[dict[str, Any]]:
    return [verdict_fields(p) for p in model.predict(images)]


def _routed_scorer(follower: ModelFollower) -> Callable[..., list[dict[str, Any]]]:
    """An in-process scorer that routes each image to its scanner's champion like a replica does."""
    def score(images: list[Any], scanners: Sequence[str]) -> list[dict[str, Any]]:
        assert follower.live is not None
        return score_routed([ScannerImage(sc, im) for sc, im in zip(scanners, images, strict=True)],
                            follower.live, follower.scoped, _predict)
    return score


def _ingest(settings: Settings, follower: ModelFollower, tmp_path: Path) -> Ingest:
    """The real ingest (xray's reader) over the routed scorer."""
    return Ingest.from_settings(settings, score=_routed_scorer(follower), spool_write=ListSpool(tmp_path))


def _put(settings: Settings, scanner: str, value: int) -> Path:
    folder = settings.inbox_dir / scanner
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{scanner}-{value}.png"
    path.write_bytes(png_bytes(value, 48))
    return path


def test_items_of_a_scanner_with_its_own_champion_are_scored_by_it_and_the_rest_by_the_fleet_champion(
        settings: Settings, tmp_path: Path) -> None:
    ensure_home(settings)
    classes = settings.model.classes
    register(settings, tiny_model(classes, "tiny-fleet", seed=1), state="champion")
    register(settings, tiny_model(classes, "tiny-s4", seed=2))
    with Store.from_settings(settings) as store:
        follower = _follower(settings, store)
        ingest = _ingest(settings, follower, tmp_path)
        follower.refresh()
        first = ingest([_put(settings, "scanner-4", 40), _put(settings, "scanner-a", 41)])
        assert {v.model_version for v in first.verdicts} == {"tiny-fleet"}  # no scanner champion yet
        store.set_model_state("tiny-s4", "champion", actor="sue", force=True, scanner="scanner-4")
        assert follower.refresh() and set(follower.scoped) == {"scanner-4"}
        paths = [_put(settings, "scanner-4", 50), _put(settings, "scanner-a", 51), _put(settings, "scanner-4", 52)]
        report = ingest(paths)
        by_scanner = {(s.scanner_id, v.model_version, v.role) for s, v in zip(report.scans, report.verdicts,
                                                                              strict=True)}
        assert by_scanner == {("scanner-4", "tiny-s4", "champion"), ("scanner-a", "tiny-fleet", "champion")}
        store.rollback(actor="sue", scanner="scanner-4")  # its first champion: back to the fleet's
        assert follower.refresh() and not follower.scoped
        again = ingest([_put(settings, "scanner-4", 60)])
        assert [v.model_version for v in again.verdicts] == ["tiny-fleet"]


def test_canaries_on_a_scanner_with_its_own_champion_are_scored_by_that_champion(settings: Settings,
                                                                                 tmp_path: Path) -> None:
    """Otherwise scanner-4's canary detection rate would measure the fleet champion, not the model scoring its mail."""
    ensure_home(settings)
    classes = settings.model.classes
    register(settings, tiny_model(classes, "tiny-fleet", seed=1), state="champion")
    register(settings, tiny_model(classes, "tiny-s4", seed=2))
    with Store.from_settings(settings) as store:
        store.set_model_state("tiny-s4", "champion", actor="sue", force=True, scanner="scanner-4")
        follower = _follower(settings, store)
        follower.refresh()
        ingest = _ingest(settings, follower, tmp_path)
        samples = sorted((Path(__file__).resolve().parents[1] / "sample_data" / "baseline_png").glob("*.png"))[:4]
        paths = []
        for i, src in enumerate(samples):
            folder = settings.inbox_dir / ("scanner-4" if i % 2 else "scanner-a")
            folder.mkdir(parents=True, exist_ok=True)
            paths.append(Path(shutil.copy(src, folder / src.name)))
        images = [read_scan(path) for path in paths]  # before the ingest archives the files
        report = ingest(paths)
        recorded: list[CanaryRecord] = []
        feed = CanaryFeed(rate=1.0, classes=classes, score=_routed_scorer(follower), record=recorded.extend,
                          rng=np.random.default_rng(3))
        items = list(zip(report.scans, report.verdicts, images, strict=True))
        assert len(feed.process(items)) == 4 and feed.failures == 0
        assert {(c.scanner_id, c.model_version) for c in recorded} == {("scanner-4", "tiny-s4"),
                                                                        ("scanner-a", "tiny-fleet")}


def test_a_shadow_for_one_scanner_scores_that_scanners_items_only(settings: Settings, tmp_path: Path) -> None:
    ensure_home(settings)
    classes = settings.model.classes
    register(settings, tiny_model(classes, "tiny-fleet", seed=1), state="champion")
    register(settings, tiny_model(classes, "tiny-s4", seed=2))
    with Store.from_settings(settings) as store:
        champion, shadow = _follower(settings, store), _follower(settings, store, role="shadow")
        champion.refresh()

        def shadow_score(images: list[Any], scanners: Sequence[str]) -> list[dict[str, Any]]:
            live = shadow.live
            return [] if live is None else score_routed(
                [ScannerImage(sc, im) for sc, im in zip(scanners, images, strict=True)], live, {}, _predict)

        ingest = Ingest.from_settings(settings, score=_routed_scorer(champion), shadow_score=shadow_score,
                                      spool_write=ListSpool(tmp_path))
        store.set_model_state("tiny-s4", "shadow", actor="sue", scanner="scanner-4")
        assert shadow.refresh() and shadow.live is not None and shadow.live.scanner_id == "scanner-4"
        report = ingest([_put(settings, "scanner-4", 70), _put(settings, "scanner-a", 71),
                         _put(settings, "scanner-4", 72)])
        scanner_of = {s.scan_id: s.scanner_id for s in report.scans}
        roles = sorted((scanner_of[v.scan_id], v.model_version, v.role) for v in report.verdicts)
        assert roles == [("scanner-4", "tiny-fleet", "champion"), ("scanner-4", "tiny-fleet", "champion"),
                         ("scanner-4", "tiny-s4", "shadow"), ("scanner-4", "tiny-s4", "shadow"),
                         ("scanner-a", "tiny-fleet", "champion")]
        store.set_model_state("tiny-s4", "shadow", actor="sue")  # widened to the fleet: followed without a reload
        assert shadow.refresh() and shadow.live is not None and shadow.live.scanner_id is None
        wide = ingest([_put(settings, "scanner-a", 80)])
        assert sorted(v.role for v in wide.verdicts) == ["champion", "shadow"]


def test_a_scanner_champion_that_cannot_be_loaded_leaves_the_scanner_on_the_fleet_champion(
        settings: Settings, tmp_path: Path) -> None:
    ensure_home(settings)
    classes = settings.model.classes
    register(settings, tiny_model(classes, "tiny-fleet", seed=1), state="champion")
    register(settings, tiny_model(classes, "tiny-s4", seed=2))
    with Store.from_settings(settings) as store:
        Path(store.get_model("tiny-s4").weights_path).write_bytes(b"not a checkpoint")
        store.set_model_state("tiny-s4", "champion", actor="sue", force=True, scanner="scanner-4")
        follower = _follower(settings, store)
        follower.refresh()
        assert follower.live is not None and follower.live.version == "tiny-fleet" and not follower.scoped
        assert "tiny-s4 not loaded" in follower.scoped_errors["scanner-4"]
        assert "scored by the fleet champion" in follower.scoped_errors["scanner-4"]
        assert follower.last_error is None  # the fleet champion follows as ever
        report = _ingest(settings, follower, tmp_path)([_put(settings, "scanner-4", 70)])
        assert [v.model_version for v in report.verdicts] == ["tiny-fleet"]


def test_cli_promotes_and_rolls_back_a_scanners_champion_and_lists_its_scope(settings: Settings, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from cli import app

    ensure_home(settings)
    register(settings, tiny_model(settings.model.classes, "tiny-fleet", seed=1), state="champion")
    register(settings, tiny_model(settings.model.classes, "tiny-s4", seed=2))
    config = tmp_path / "xscreen.toml"
    config.write_text(f'home = "{settings.home}"\n[network]\nstore_port = {settings.network.store_port}\n')

    def run(*args: str) -> str:
        result = CliRunner().invoke(app, ["--config", str(config), *args])
        assert result.exit_code == 0, result.output
        return result.output

    refused = CliRunner().invoke(app, ["--config", str(config), "models", "promote", "tiny-s4", "--scanner", "scanner-4"])
    assert refused.exit_code != 0 and "against the champion tiny-fleet in force for scanner scanner-4" in str(
        refused.exception)
    assert "tiny-s4 is now champion for scanner scanner-4" in run("models", "promote", "tiny-s4", "--scanner",
                                                                   "scanner-4", "--force")
    listed = {line.split()[0]: line for line in run("models", "list").splitlines()}
    assert "scanner=scanner-4" in listed["tiny-s4"] and "scanner=" not in listed["tiny-fleet"]
    assert "scanner scanner-4 is scored by the fleet champion tiny-fleet again" in run(
        "models", "rollback", "--scanner", "scanner-4")
    with Store.from_settings(settings) as store:
        assert [(m.version, m.scanner_id) for m in store.models_in_force()] == [("tiny-fleet", None)]


def test_a_scanner_champion_reading_another_canvas_size_is_refused_with_the_reason(settings: Settings) -> None:
    """Callers letterbox to the fleet champion's canvas: a scanner model of another size could not share a batch."""
    from screening.network import NetConfig, build_network
    from screening.registry import Checkpoint

    ensure_home(settings)
    classes = settings.model.classes
    register(settings, tiny_model(classes, "tiny-fleet", seed=1), state="champion")
    config = NetConfig(classes=tuple(classes), input_size=96, width=4, embedding_dim=8)
    thresholds = {c: {"clear": 0.3, "inspect": 0.7} for c in [*classes, "any_threat"]}
    register(settings, Checkpoint("tiny-96", config, build_network(config, seed=5).state_dict(), {"any_threat": 1.0},
                                  thresholds, {"alpha": 0.05}, {}))
    with Store.from_settings(settings) as store:
        store.set_model_state("tiny-96", "champion", actor="sue", force=True, scanner="scanner-4")
        follower = _follower(settings, store)
        follower.refresh()
        assert not follower.scoped
        assert "reads 96-pixel canvases, the fleet champion 64" in follower.scoped_errors["scanner-4"]
        assert not follower.refresh()  # the same refused version is not read again at every poll
