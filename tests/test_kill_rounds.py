"""Kill -9 rounds in CI: every component of a running `xscreen serve` killed once, in a seeded random order,
while scans stream in at 5 files/s and an officer decides. Nothing is lost or doubled, every acknowledged
decision is kept, the database stays consistent, each component is back without a person, and SIGTERM to the
process group then stops everything (bench/soak.py runs more rounds; figures in docs/RELIABILITY.md)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.chaos import COMPONENTS, Chaos

pytestmark = pytest.mark.slow


def test_every_component_killed_during_a_stream_loses_and_doubles_nothing(tmp_path: Path) -> None:
    with Chaos(tmp_path / "home", seed=20261130) as chaos:
        for component in chaos.plan(len(COMPONENTS)):
            result = chaos.round(component)
            assert result.pids, f"found no {component} process to kill"
            assert result.recovered_s is not None, f"{component} did not come back on its own"
        assert chaos.drain(), "files left unscored after the rounds"
        verdict = chaos.verify()
        assert verdict.streamed > 50 and verdict.lost == [] and verdict.duplicates == []
        assert verdict.decisions_acked > 0 and verdict.decisions_missing == []
        assert verdict.integrity == []
        status, _ = chaos.stop_serve()  # SIGTERM to the whole process group
        assert status == 0
    assert {r.component for r in chaos.rounds} == set(COMPONENTS)
