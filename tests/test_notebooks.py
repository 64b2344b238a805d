"""The analyst notebooks run top to bottom on a snapshot of a seeded store, so they never rot."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from analytics.store import Store
from tests.app_seed import Rendered, seed_demo
from xscreen.settings import Settings

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))


@pytest.fixture(scope="module")
def snapshot(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    from tests.conftest import make_settings

    home = tmp_path_factory.mktemp("nb")
    settings: Settings = make_settings(home / "home")
    now = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
    with Store.from_settings(settings, clock=lambda: now) as store:
        seed_demo(store, 1500, seed=11, now=now, images=[Rendered(home / "unused.npz", "")])
        yield store.snapshot(Path("snap.duckdb"))  # under HOME/snapshots


def test_there_are_three_notebooks() -> None:
    assert [p.name[:2] for p in NOTEBOOKS] == ["01", "02", "03"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_on_a_snapshot(path: Path, snapshot: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XS_SNAPSHOT", str(snapshot))
    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}).execute()
    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert not [o for o in outputs if o.output_type == "error"]
    assert any("data" in o and "application/vnd.plotly.v1+json" in o["data"] for o in outputs)  # charts drawn
