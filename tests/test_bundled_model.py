"""The model shipped in sample_data/models: it fits the default settings, still screens held-out scans well (a
renderer, letterbox or network change that silently breaks it fails here), is registered as champion in seconds,
and is refused when damaged rather than skipped."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from screening.reference import held_out, train_reference
from screening.train import REPO_ROOT, bundled_checkpoint, ensure_default_model
from xscreen.errors import ModelError
from xscreen.settings import ModelSettings, Settings

BUNDLED = REPO_ROOT / ModelSettings().bundled  # type: ignore[operator]
VERSION = BUNDLED.parent.name
AUC_FLOOR, CLASS_AP_FLOOR, PEAK_IN_BOX_FLOOR = 0.70, 0.54, 0.78  # measured 0.758, 0.591, 0.818 (v3-soup-tone, 240 scans)
HELD_OUT_SEEDS = {777, 999, 31337, 2718, 4243, 4244}  # the held-out sets of docs/MODEL.md (baseline and styles)


def test_bundled_model_fits_the_default_settings_and_says_how_it_was_made(settings: Settings) -> None:
    ckpt = bundled_checkpoint(settings)
    assert ckpt is not None and ckpt.version == VERSION
    lineage = ckpt.metrics["provenance"]["lineage"]  # from scratch on a GPU, then fine-tuning and averaging on a CPU
    versions = [step["version"] for step in lineage]
    assert versions[0] == "reference-256" and versions[-1] == VERSION and len(set(versions)) == len(versions)
    assert lineage[0]["trained_on"].startswith("cuda") and lineage[0]["data"]["n"] >= 10000
    for i, step in enumerate(lineage[1:], start=1):  # each step is made from the step before it (and earlier ones)
        parents = step["from"] if isinstance(step["from"], list) else [step["from"]]
        assert versions[i - 1] in parents and set(parents) <= set(versions[:i])
    trained = [step["data"]["seed"] for step in lineage if "epochs" in step["train_config"]]
    assert len(set(trained)) == len(trained)  # fresh parcels for every training step...
    assert not HELD_OUT_SEEDS & {step["data"]["seed"] for step in lineage}  # ...and never a held-out set
    # the steps since the 3D-solids renderer trained on the randomised training style family, never a held-out one
    realism = lineage[[s["version"] for s in lineage].index("reference-288-v2") + 1:]
    assert realism and all(step["data"].get("style") == "train" for step in realism)
    assert ckpt.certificate["certified"] and ckpt.certificate["n_cal_threat"] >= 299  # enough for alpha = 1%


@pytest.mark.training  # evaluates the real model on data sets: tens of seconds
def test_bundled_model_screens_held_out_scans(settings: Settings) -> None:
    """Floors a little under the figures measured on 600 scans of this set when the model was made (docs/MODEL.md), so that a renderer,
    letterbox or network change that silently breaks the model fails here. They are far from issue 13's
    targets: the model is weak on the 3D-solids renderer (see the model card)."""
    ckpt = bundled_checkpoint(settings)
    assert ckpt is not None
    r = held_out(ckpt, 240, 777, workers=2)  # the first 240 of the 600 reference-style scans of seed 777
    assert r["any_threat"]["auc"] >= AUC_FLOOR
    assert np.mean([v["ap"] for v in r["classes"].values()]) >= CLASS_AP_FLOOR
    assert r["localisation"]["hit_rate"] >= PEAK_IN_BOX_FLOOR  # the heatmap peak lands in the threat's box


def test_main_job_registers_the_bundled_model_instead_of_training(settings: Settings) -> None:
    record = ensure_default_model(settings, progress=False)
    assert record.version == VERSION and record.state == "champion"
    assert record.train_manifest_sha256 and record.weights_sha256 == (BUNDLED.with_suffix(".sha256").read_text().strip())
    assert not (settings.home / "data").exists()  # nothing rendered, nothing trained
    assert ensure_default_model(settings, progress=False).version == VERSION


def test_predict_on_a_fresh_home_uses_the_bundled_model_without_training(settings: Settings, tmp_path: Path) -> None:
    # `xscreen predict FILE --json` before `demo` or `serve` ever ran (how scans from elsewhere are checked): the
    # bundled model is registered as champion on first use; a home whose settings fit no bundled model says so.
    import json

    from PIL import Image
    from typer.testing import CliRunner

    from cli import app

    grey = tmp_path / "grey.jpg"
    Image.fromarray(np.full((300, 500), 200, np.uint8)).save(grey)
    config = tmp_path / "xscreen.toml"
    config.write_text(f'home = "{settings.home}"\n')
    result = CliRunner().invoke(app, ["--config", str(config), "predict", str(grey), "--json"])
    assert result.exit_code == 0, (result.output, result.exception)
    (row,) = json.loads(result.stdout)  # stdout alone: log lines go to stderr
    assert row["model"] == VERSION and row["verdict"] in ("clear", "uncertain", "inspect")
    assert not (settings.home / "data").exists()  # nothing rendered, nothing trained
    config.write_text(f'home = "{tmp_path / "other"}"\n[model]\nwidth = 16\n')
    result = CliRunner().invoke(app, ["--config", str(config), "predict", str(grey), "--json"])
    assert result.exit_code != 0 and "no bundled model fits the model settings" in str(result.exception)


def test_damaged_bundled_model_is_refused_not_skipped(settings: Settings, tmp_path: Path) -> None:
    copy = tmp_path / "model.pt"
    shutil.copy(BUNDLED, copy)
    shutil.copy(BUNDLED.with_suffix(".sha256"), copy.with_suffix(".sha256"))
    data = bytearray(copy.read_bytes())
    data[len(data) // 2] ^= 0xFF
    copy.write_bytes(bytes(data))
    damaged = settings.model_copy(update={"model": settings.model.model_copy(update={"bundled": copy})})
    with pytest.raises(ModelError, match="checksum mismatch"):
        bundled_checkpoint(damaged)


def test_other_network_settings_or_no_bundle_mean_training_here(settings: Settings, tmp_path: Path) -> None:
    wider = settings.model_copy(update={"model": settings.model.model_copy(update={"width": 16})})
    assert bundled_checkpoint(wider) is None
    missing = settings.model_copy(update={"model": settings.model.model_copy(update={"bundled": tmp_path / "none.pt"})})
    assert bundled_checkpoint(missing) is None
    off = settings.model_copy(update={"model": settings.model.model_copy(update={"bundled": None})})
    assert bundled_checkpoint(off) is None
    from xscreen.settings import load_settings

    assert load_settings(environ={"XSCREEN_MODEL__BUNDLED": ""}, home=settings.home).model.bundled is None


@pytest.mark.training  # evaluates the real model on data sets: tens of seconds
def test_reference_recipe_runs_on_the_product_path(settings: Settings) -> None:
    model = settings.model.model_copy(update={"input_size": 64, "width": 4, "embedding_dim": 8, "seed": 9})
    small = settings.model_copy(update={"model": model})
    ckpt, history = train_reference(small, n_train=60, epochs=1, batch_size=8, lr=3e-3, workers=1)
    assert ckpt.version == "reference-64" and len(history) == 1
    assert ckpt.metrics["provenance"]["data"]["n"] == 60 and ckpt.thresholds["any_threat"]
    # a fine-tuning step on a larger canvas keeps the weights, extends the lineage and names its parent
    bigger = small.model_copy(update={"model": model.model_copy(update={"input_size": 80})})
    # (as bench/device_train.sh runs it: for a wall-clock budget, bfloat16 autocast, both recorded in the lineage)
    tuned, tuned_history = train_reference(bigger, n_train=60, epochs=1, batch_size=8, lr=3e-3, workers=1, seed=10,
                                           parent=ckpt, name="reference-80-ft", budget_s=2.0, amp=True)
    assert tuned.parent == "reference-64" and tuned.config.input_size == 80
    assert [s["version"] for s in tuned.metrics["provenance"]["lineage"]] == ["reference-64", "reference-80-ft"]
    step = tuned.metrics["provenance"]["lineage"][-1]["train_config"]
    assert step["budget_s"] == 2.0 and step["amp"] is True and step["epochs"] == len(tuned_history) >= 1


@pytest.mark.training  # evaluates the real model on data sets: tens of seconds
def test_held_out_sets_can_be_pooled(settings: Settings) -> None:
    from screening.assess import pooled_metrics, score_synthetic
    from screening.classifier import Classifier
    from screening.registry import build_model

    ckpt = bundled_checkpoint(settings)
    assert ckpt is not None
    clf = Classifier(build_model(ckpt), ckpt)
    a, b = score_synthetic(clf, 24, 777), score_synthetic(clf, 24, 999)
    pooled = pooled_metrics(clf, [a, b])
    assert pooled["n"] == 48 and pooled["n_threat"] == int(a[2].sum() + b[2].sum())
    assert pooled["localisation"]["n"] == len(a[4]) + len(b[4])
