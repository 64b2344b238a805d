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


def test_predict_scores_a_folder_and_names_the_files_it_cannot_read(cli_env: tuple[Path, Path], tmp_path: Path) -> None:
    """A folder is its scan files at any depth (labels.csv and hidden files are not scans); an unreadable file is
    named on stderr with its reason, the readable ones are still scored, and the exit status says not all were."""
    config, data = cli_env
    _run(config, "train", "--data", str(data), "--out", "folder-model", "--epochs", "1")
    pngs = sorted(data.glob("*.png"))[:3]
    (tmp_path / "bay-2").mkdir()
    (tmp_path / "a.png").write_bytes(pngs[0].read_bytes())
    (tmp_path / "bay-2" / "b.PNG").write_bytes(pngs[1].read_bytes())
    (tmp_path / ".c.png").write_bytes(pngs[2].read_bytes())
    (tmp_path / "cut.png").write_bytes(pngs[2].read_bytes()[:300])
    (tmp_path / "labels.csv").write_text("file,labels\na.png,\n")
    result = CliRunner().invoke(app, ["--config", str(config), "predict", str(tmp_path), "--model", "folder-model",
                                      "--json"])
    assert result.exit_code == 1, result.output
    assert [Path(p["file"]).name for p in json.loads(result.stdout)] == ["a.png", "b.PNG"]
    assert f"{tmp_path / 'cut.png'}: " in result.stderr and "1 of 3 files could not be read" in result.stderr
    empty = tmp_path / "empty"
    empty.mkdir()
    result = CliRunner().invoke(app, ["--config", str(config), "predict", str(empty)])
    assert result.exit_code != 0 and "no scan files in this folder" in str(result.exception)


def test_evaluate_leaves_out_unreadable_images_and_lists_them(cli_env: tuple[Path, Path], tmp_path: Path) -> None:
    """One cut file in a labelled folder does not void the evaluation: the figures rest on the readable images,
    and the JSON and stderr name the file left out and why. Training on the same folder refuses it."""
    config, data = cli_env
    _run(config, "train", "--data", str(data), "--out", "eval-model", "--epochs", "1")
    rows = (data / "labels.csv").read_text().splitlines()
    for line in rows[1:]:
        name = line.split(",")[0]
        (tmp_path / name).write_bytes((data / name).read_bytes())
    cut = rows[1].split(",")[0]
    (tmp_path / cut).write_bytes((data / cut).read_bytes()[:200])
    (tmp_path / "labels.csv").write_text("\n".join(rows) + "\n")
    result = CliRunner().invoke(app, ["--config", str(config), "evaluate", "--model", "eval-model", "--data",
                                      str(tmp_path), "--json"])
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.stdout)
    assert metrics["n"] == len(rows) - 2 and [Path(u["file"]).name for u in metrics["unreadable"]] == [cut]
    assert f"left out, unreadable: {tmp_path / cut}" in result.stderr
    result = CliRunner().invoke(app, ["--config", str(config), "train", "--data", str(tmp_path), "--out", "x",
                                      "--epochs", "1"])
    assert result.exit_code != 0 and f"{tmp_path / cut}: unreadable scan" in str(result.exception)
