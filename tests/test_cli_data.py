"""`xscreen synth` and `xscreen simulate`: real commands on tiny data; bad input is one clear error line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli import app
from cli.data import parse_size, parse_time
from xscreen.errors import ConfigError


@pytest.fixture(autouse=True)
def _fresh_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)  # no stray xscreen.toml
    monkeypatch.setenv("XSCREEN_HOME", str(tmp_path / "home"))


def test_synth_writes_images_labels_and_manifest(tmp_path: Path) -> None:
    out = tmp_path / "ds"
    result = CliRunner().invoke(app, ["synth", "--out", str(out), "--n", "3", "--seed", "1", "--format", "tiff",
                                      "--size", "96x80", "--threat-rate", "1"])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in out.iterdir()) == ["labels.csv", "manifest.parquet", "scan_00000.tiff",
                                                     "scan_00001.tiff", "scan_00002.tiff"]
    rows = (out / "labels.csv").read_text().splitlines()[1:]
    assert all(row.split(",")[1] for row in rows)  # threat rate 1: every scan has a label


def test_simulate_runs_for_its_duration(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["simulate", "--to", str(tmp_path / "inbox"), "--rate", "20", "--duration",
                                      "0.3", "--scanners", "2", "--seed", "4"])
    assert result.exit_code == 0, result.output
    images = list((tmp_path / "inbox").glob("scanner-*/*.png"))
    assert f"wrote {len(images)} scans" in result.output


def test_classes_come_from_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XSCREEN_MODEL__CLASSES", '["knife"]')
    result = CliRunner().invoke(app, ["synth", "--out", str(tmp_path / "k"), "--n", "4", "--size", "96x96",
                                      "--threat-rate", "1"])
    assert result.exit_code == 0, result.output
    assert set((tmp_path / "k" / "labels.csv").read_text().splitlines()[1:]) == {
        f"scan_0000{i}.png,knife" for i in range(4)}


@pytest.mark.parametrize(("args", "message"), [
    (["synth", "--out", "o", "--n", "2", "--scenario", "winter"], "unknown scenario 'winter'"),
    (["simulate", "--to", "i", "--rate", "-2"], "rate must be a positive number"),
])
def test_bad_input_is_one_error_line(tmp_path: Path, args: list[str], message: str) -> None:
    proc = subprocess.run([sys.executable, "-c", "from cli import main; main()", *args], cwd=tmp_path,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0]


def test_unknown_class_in_settings_and_unwritable_folder_are_errors(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "blocker"
    blocker.write_text("")
    result = CliRunner().invoke(app, ["synth", "--out", str(blocker / "sub"), "--n", "1"])
    assert "not writable" in str(result.exception)
    monkeypatch.setenv("XSCREEN_MODEL__CLASSES", '["knife", "bomb"]')  # each invocation builds its own settings
    result = CliRunner().invoke(app, ["synth", "--out", str(tmp_path / "x"), "--n", "1"])
    assert "unknown threat class 'bomb'" in str(result.exception)


def test_size_option_is_parsed_or_refused() -> None:
    assert parse_size("512x384") == (512, 384) and parse_size(None) is None
    with pytest.raises(ConfigError, match="WIDTHxHEIGHT"):
        parse_size("big")


def test_start_time_is_parsed_as_utc_or_refused() -> None:
    assert parse_time("2026-01-05T09:00:00Z") == parse_time("2026-01-05T09:00:00")
    assert parse_time("2026-01-05T10:00:00+01:00") == parse_time("2026-01-05T09:00:00")
    with pytest.raises(ConfigError, match="ISO 8601"):
        parse_time("yesterday")


def test_synth_writes_a_held_out_style_with_the_style_in_the_manifest(tmp_path: Path) -> None:
    import json

    import pandas as pd

    from xray.styles import ScannerStyle

    out = tmp_path / "heldout"
    result = CliRunner().invoke(app, ["synth", "--out", str(out), "--n", "3", "--seed", "2", "--size", "96x96",
                                      "--style", "heldout-jpeg"])
    assert result.exit_code == 0, result.output
    manifest = pd.read_parquet(out / "manifest.parquet")
    assert list(manifest["file"]) == [f"scan_0000{i}.jpg" for i in range(3)] and set(manifest["format"]) == {"jpeg"}
    styles = [ScannerStyle.from_dict(json.loads(s)) for s in manifest["style"]]
    assert {s.family for s in styles} == {"heldout-jpeg"} and len({s.to_json() for s in styles}) == 3
    one = tmp_path / "one"
    result = CliRunner().invoke(app, ["synth", "--out", str(one), "--n", "3", "--size", "96x96", "--style", "train",
                                      "--one-style"])
    assert result.exit_code == 0, result.output
    assert pd.read_parquet(one / "manifest.parquet")["style"].nunique() == 1  # one scanner for the whole set


@pytest.mark.parametrize(("args", "message"), [
    (["--style", "sepia"], "unknown style 'sepia'; known: reference, train, heldout"),
    (["--style", "heldout", "--format", "tiff"], "use --format png (the default), or --style reference for tiff"),
])
def test_bad_style_is_refused(tmp_path: Path, args: list[str], message: str) -> None:
    result = CliRunner().invoke(app, ["synth", "--out", str(tmp_path / "x"), "--n", "1", *args])
    assert message in str(result.exception)
