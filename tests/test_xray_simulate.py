"""Scanner simulator: atomic drops with sidecars written first, bounded runs, determinism, clear errors."""

from __future__ import annotations

import json
import os
import threading
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from xray.formats import read_scan
from xray.scenarios import UnknownScenarioError
from xray.simulate import OutputError, run_simulator, s10_item_id
from xscreen import atomic
from xscreen.errors import ConfigError
from xscreen.settings import DEFAULT_CLASSES

START = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
SIDECAR_KEYS = {"item_id", "scanner_id", "scanned_at", "declared_contents", "format"}


def _run(to: Path, **kw: object) -> int:
    args: dict[str, object] = {"rate": 40.0, "scanners": 2, "duration": 0.4, "seed": 3, "classes": DEFAULT_CLASSES,
                               "threat_rate": 0.5, "size": (96, 96), "start_at": START}
    args.update(kw)
    return run_simulator(to, **args)  # type: ignore[arg-type]


def test_simulator_writes_images_with_sidecars_and_stops_by_itself(tmp_path: Path) -> None:
    count = _run(tmp_path / "inbox", truth_path=tmp_path / "truth.jsonl")
    images = sorted((tmp_path / "inbox").glob("scanner-*/*.png"))
    assert count == len(images) > 0
    assert {p.parent.name for p in images} == {"scanner-1", "scanner-2"}
    assert not list((tmp_path / "inbox").rglob(".*"))  # no temporary file left behind
    for image in images:
        sidecar = json.loads(image.with_suffix(".json").read_text())
        assert set(sidecar) == SIDECAR_KEYS
        assert sidecar["scanner_id"] == image.parent.name and sidecar["format"] == "png"
        assert datetime.fromisoformat(sidecar["scanned_at"]) >= START
        assert image.name.endswith(sidecar["item_id"] + ".png")
        for line in sidecar["declared_contents"]:
            assert set(line) == {"description", "quantity", "value_usd", "hs_code"} and line["quantity"] >= 1
        assert read_scan(image).rgb.shape == (96, 96, 3)
    truth = [json.loads(x) for x in (tmp_path / "truth.jsonl").read_text().splitlines()]
    assert len(truth) == count and all("labels" in t for t in truth)


def test_sidecar_is_renamed_in_before_the_image_from_a_dot_temp_in_the_same_folder(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    renames: list[tuple[Path, Path]] = []
    real_replace = os.replace

    def spy(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
        renames.append((Path(src), Path(dst)))
        real_replace(src, dst)

    monkeypatch.setattr(atomic.os, "replace", spy)  # every drop file goes through xscreen.atomic
    count = _run(tmp_path, scanners=1, fmt="npz")
    assert len(renames) == 2 * count > 0
    for (src_json, dst_json), (src_img, dst_img) in zip(renames[::2], renames[1::2], strict=True):
        assert dst_json.suffix == ".json" and dst_img.suffix == ".npz" and dst_json.stem == dst_img.stem
        for src, dst in ((src_json, dst_json), (src_img, dst_img)):
            assert src.name.startswith(".") and src.parent == dst.parent


def test_same_seed_same_stream(tmp_path: Path) -> None:
    _run(tmp_path / "a", duration=0.2, rate=30.0)
    _run(tmp_path / "b", duration=0.2, rate=30.0)
    first = {p.relative_to(tmp_path / "a"): p.read_bytes() for p in (tmp_path / "a").rglob("*.*")}
    second = {p.relative_to(tmp_path / "b"): p.read_bytes() for p in (tmp_path / "b").rglob("*.*")}
    assert first and first == second


def test_stop_event_ends_an_unbounded_run(tmp_path: Path) -> None:
    stop = threading.Event()
    timer = threading.Timer(0.3, stop.set)
    timer.start()
    try:
        count = _run(tmp_path, duration=None, rate=5.0, stop_event=stop)
    finally:
        timer.cancel()
    assert stop.is_set() and count < 50


def test_bad_arguments_are_refused_before_anything_is_written(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="rate"):
        _run(tmp_path / "x", rate=-1.0)
    with pytest.raises(ConfigError, match="duration"):
        _run(tmp_path / "x", duration=0.0)
    with pytest.raises(UnknownScenarioError):
        _run(tmp_path / "x", scenario="nope")
    with pytest.raises(ConfigError, match="format"):
        _run(tmp_path / "x", fmt="bmp")
    assert not (tmp_path / "x").exists()
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(OutputError, match="not writable"):
        _run(blocker)


def test_item_ids_follow_the_upu_s10_check_digit() -> None:
    rng = np.random.default_rng(0)
    for _ in range(20):
        item = s10_item_id(rng)
        digits = [int(c) for c in item[2:10]]
        check = 11 - sum(w * d for w, d in zip((8, 6, 4, 2, 3, 5, 9, 7), digits, strict=True)) % 11
        assert int(item[10]) == {10: 0, 11: 5}.get(check, check) and len(item) == 13


def test_each_scanner_streams_its_own_format_and_one_plays_its_own_scenario(tmp_path: Path) -> None:
    """The demo's fleet: scanner-1 pseudo-colour PNG and ageing, scanner-2 raw dual-energy NPZ on baseline."""
    count = _run(tmp_path / "inbox", duration=0.6, formats=("png", "npz"),
                 scanner_scenarios={"scanner-1": "scanner_ageing"}, truth_path=tmp_path / "truth.jsonl")
    inbox = tmp_path / "inbox"
    pngs, npzs = sorted(inbox.glob("scanner-1/*.png")), sorted(inbox.glob("scanner-2/*.npz"))
    assert count == len(pngs) + len(npzs) and pngs and npzs
    assert not list(inbox.glob("scanner-1/*.npz")) and not list(inbox.glob("scanner-2/*.png"))
    dual = read_scan(npzs[0])
    assert dual.dual_energy and dual.low is not None and not read_scan(pngs[0]).dual_energy
    truth = [json.loads(line) for line in (tmp_path / "truth.jsonl").read_text().splitlines()]
    scenarios = {t["file"].split("/")[0]: t["scenario"] for t in truth}
    assert scenarios == {"scanner-1": "scanner_ageing", "scanner-2": "baseline"}


def test_a_scenario_for_a_scanner_that_is_not_simulated_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown scanner.*scanner-3"):
        _run(tmp_path / "inbox", scanner_scenarios={"scanner-3": "scanner_ageing"})
    with pytest.raises(ConfigError, match="unknown format 'bmp'"):
        _run(tmp_path / "inbox", formats=("png", "bmp"))
    assert not list((tmp_path / "inbox").rglob("*.png"))


def test_the_demo_simulator_streams_pseudo_colour_and_dual_energy_scanners_by_default(tmp_path: Path) -> None:
    """`xscreen demo`'s simulator thread (serving.parts.start_simulator) with the default simulator settings."""
    import time

    from serving.parts import start_simulator
    from tests.conftest import make_settings

    settings = make_settings(tmp_path / "home", simulator={"rate": 20.0})
    stop = threading.Event()
    thread, line = start_simulator(settings, stop)
    assert thread is not None and "png/npz" in line and "scanner-1 plays 'scanner_ageing'" in line
    inbox = settings.inbox_dir
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline and not (list(inbox.glob("scanner-1/*.png"))
                                                   and list(inbox.glob("scanner-2/*.npz"))):
            time.sleep(0.2)
    finally:
        stop.set()
        thread.join(timeout=30)
    assert list(inbox.glob("scanner-1/*.png")) and list(inbox.glob("scanner-2/*.npz")) and not thread.is_alive()
