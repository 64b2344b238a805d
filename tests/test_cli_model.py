"""The model CLI end to end on a tiny generated set: train, evaluate --json, predict --json, models list/show/promote/rollback."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli import app
from screening.evaluate import EvaluationError
from tests.conftest import free_port

pytestmark = pytest.mark.training  # trains a real model: in `make test`, not in a bare `pytest`


@pytest.fixture(scope="module")
def cli_env(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    from xray.dataset import write_dataset_impl as write_dataset
    from xscreen.settings import DEFAULT_CLASSES

    root = tmp_path_factory.mktemp("cli")
    write_dataset(root / "data", n=30, seed=21, classes=DEFAULT_CLASSES, size=(96, 80), progress_bar=False)
    config = root / "xscreen.toml"
    config.write_text(f'home = "{root / "home"}"\n[network]\nstore_port = {free_port()}\n'
                      "[model]\ninput_size = 64\nwidth = 4\nembedding_dim = 8\nseed = 3\n")
    return config, root / "data"


def _run(config: Path, *args: str) -> str:
    result = CliRunner().invoke(app, ["--config", str(config), *args])
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    assert result.exit_code == 0, result.output
    return result.output


def test_train_evaluate_predict_and_manage_models(cli_env: tuple[Path, Path]) -> None:
    config, data = cli_env
    assert "registered v1 as champion" in _run(config, "train", "--data", str(data), "--out", "v1", "--epochs", "1")
    assert "registered v2 as candidate" in _run(config, "train", "--data", str(data), "--out", "v2", "--epochs", "1", "--from", "v1")
    metrics = json.loads(_run(config, "evaluate", "--model", "champion", "--data", str(data), "--json"))
    assert metrics["n"] == 30 and metrics["model_version"] == "v1" and "ap" in metrics["any_threat"]
    files = sorted(data.glob("*.png"))[:2]
    preds = json.loads(_run(config, "predict", *map(str, files), "--model", "v2", "--json"))
    assert [p["file"] for p in preds] == list(map(str, files))
    assert all(p["verdict"] in {"inspect", "clear", "uncertain"} and len(p["top_region"]["box"]) == 4 for p in preds)
    assert "v2" in _run(config, "models", "list")
    assert json.loads(_run(config, "models", "show", "v2"))["parent"] == "v1"
    assert "v2 is now champion" in _run(config, "models", "promote", "v2", "--force")
    assert "v1 is champion again" in _run(config, "models", "rollback")
    listing = json.loads(_run(config, "models", "list", "--json"))
    assert [m["version"] for m in listing if m["state"] == "champion"] == ["v1"]


def test_evaluate_refuses_a_single_class_set(cli_env: tuple[Path, Path], tmp_path: Path) -> None:
    config, data = cli_env
    _run(config, "train", "--data", str(data), "--out", "only", "--epochs", "1")
    benign = [line.split(",")[0] for line in (data / "labels.csv").read_text().splitlines()[1:] if line.endswith(",")]
    for name in benign[:3]:
        (tmp_path / name).write_bytes((data / name).read_bytes())
    (tmp_path / "labels.csv").write_text("file,labels\n" + "".join(f"{n},\n" for n in benign[:3]))
    with pytest.raises(EvaluationError, match="all 3 items are benign"):
        _run(config, "evaluate", "--data", str(tmp_path))
