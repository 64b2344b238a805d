"""Training end to end on a tiny generated set: determinism, registration, fine-tuning, evaluation, localisation."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from screening.assess import evaluate_classifier
from screening.classifier import Classifier
from screening.train import TrainConfig, train_model
from xscreen.errors import XscreenError
from xscreen.settings import Settings

pytestmark = pytest.mark.training  # trains a real model: in `make test`, not in a bare `pytest`

TINY_MODEL = {"input_size": 64, "width": 4, "embedding_dim": 8, "seed": 5}


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A dual-energy training set (TIP and palette augmentation apply) and a pseudo-colour PNG test set."""
    from xray.dataset import write_dataset_impl as write_dataset
    from xscreen.settings import DEFAULT_CLASSES

    root = tmp_path_factory.mktemp("tiny")
    write_dataset(root / "train", n=40, seed=11, classes=DEFAULT_CLASSES, fmt="npz", size=(96, 96), progress_bar=False)
    write_dataset(root / "test", n=24, seed=12, classes=DEFAULT_CLASSES, fmt="png", size=(96, 80), progress_bar=False)
    return {"train": root / "train", "test": root / "test"}


@pytest.fixture
def tiny_settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"model": settings.model.model_copy(update=TINY_MODEL)})


def _cfg() -> TrainConfig:
    return TrainConfig(epochs=2, batch_size=8, seed=5, progress=False)


def test_training_is_deterministic_and_first_model_becomes_champion(tiny_settings: Settings, tiny_data: dict[str, Path]) -> None:
    a = train_model(tiny_settings, [tiny_data["train"]], "a", cfg=_cfg())
    b = train_model(tiny_settings, [tiny_data["train"]], "b", cfg=_cfg())
    assert a.record is not None and b.record is not None
    assert (a.record.state, b.record.state) == ("champion", "candidate")
    sa, sb = a.checkpoint.state_dict, b.checkpoint.state_dict
    assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)
    cert = a.record.calibration["certificate"]
    assert {"alpha", "delta", "n_cal", "n_cal_threat", "calibration_manifest_sha256", "thresholds", "expected_workload",
            "expected_far", "n_threat_needed"} <= set(cert)
    assert cert["n_threat_needed"] == 59  # alpha = delta = 0.05 (settings defaults)
    assert len(a.history) == 2 and np.isfinite(a.history[-1]["loss"])
    assert a.record.train_manifest_sha256 == b.record.train_manifest_sha256 != cert["calibration_manifest_sha256"]


def test_fine_tuning_records_its_parent(tiny_settings: Settings, tiny_data: dict[str, Path]) -> None:
    train_model(tiny_settings, [tiny_data["train"]], "base", cfg=_cfg())
    child = train_model(tiny_settings, [tiny_data["train"]], "child", cfg=_cfg(), from_model="champion")
    assert child.record is not None and child.record.parent == "base" and child.record.state == "candidate"


def test_evaluation_of_a_trained_model_reports_metrics_and_localisation(tiny_settings: Settings, tiny_data: dict[str, Path]) -> None:
    train_model(tiny_settings, [tiny_data["train"]], "m", cfg=_cfg())
    clf = Classifier.from_registry(tiny_settings, "champion")
    result, scores, labels = evaluate_classifier(clf, [tiny_data["test"]], progress=False)
    assert result["n"] == 24 and 0 < result["n_threat"] < 24 and len(scores) == len(labels) == 24
    assert 0 <= result["any_threat"]["auc"] <= 1 and set(result["any_threat"]["pd_at_far"]) == {"0.01", "0.05"}
    if "localisation" in result:  # only threats the tiny model does not clear are measured
        assert 0 <= result["localisation"]["hit_rate"] <= 1 and result["localisation"]["n"] > 0


def test_too_few_images_to_split_is_a_clear_error(tiny_settings: Settings, tmp_path: Path, tiny_data: dict[str, Path]) -> None:
    (tmp_path / "labels.csv").write_text("file,labels\n" + "".join(
        f"{p.name},\n" for p in sorted(tiny_data["test"].glob("*.png"))[:2]))
    for p in sorted(tiny_data["test"].glob("*.png"))[:2]:
        (tmp_path / p.name).write_bytes(p.read_bytes())
    with pytest.raises(XscreenError, match="too few"):
        train_model(tiny_settings, [tmp_path], "x", cfg=_cfg())
