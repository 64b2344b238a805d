"""The model maintenance loop end to end on small data, on the real stack (store owner, local Ray + Serve, /v1):
baseline mail, then `new_concealment` ramps in on both scanners while the monitoring job runs after each part;
simulated officers decide what the model flags and label today's active relabel queue from the generator's ground
truth within a budget; `retrain` fine-tunes a candidate from the champion on the base data and every live label;
the gate compares them on fresh scenario renders and the labelled live scans and stores its report; the candidate
scores live traffic in shadow (stored, never the verdict), is promoted under streaming requests and rolled back
under streaming requests, with no failed request.

Not asserted, and why (measured, docs/MONITORING.md "The maintenance loop"): that an alert fires and that
detection on the scenario recovers. A model this test can train in seconds (4 channels, 64 px, 120 scans) scores
threats at chance (any-threat AUC 0.50-0.54 on fresh renders), and new_concealment lowers the detection of
neither it nor a 300-scan model (bench/bench_maintenance.py); it does lower the bundled model's (AUC 0.59 -> 0.50
on narcotics mail since concealment replaces the host's material), but from near chance. So there is no drop for
the monitoring job to page on, and a "recovered" figure would be a coin flip. The figures are bench/bench_maintenance.py's; the test checks
that the loop ran on what the officers gave it (every relabel in the candidate's training export, the labelled
live scans among the gate's items).

The second run of the issue (an unseen-style scanner's certificate page -> `xscreen adapt --scanner` -> the
adapted candidate promoted, its certificate holding on that scanner's next scans) needs a champion whose
certificate the unseen scanner breaks; this tiny one routes all mail everywhere, so that run is in
tests/test_monitor_e2e.py, on the bundled model.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.conftest import make_settings
from tests.maintenance_loop import TINY, Officers, Rendered, render, upload, write_folder
from tests.serving_procs import free_low_port
from tests.test_e2e_stream import wait_for
from tests.test_live_promotion import SCANNER as TRAFFIC_SCANNER
from tests.test_live_promotion import Stream
from xscreen.records import utcnow

if TYPE_CHECKING:  # Ray is imported by the fixture only: collecting this file stays cheap
    from serving.runtime import Stack

pytestmark = pytest.mark.slow
SCANNERS = ["scanner-1", "scanner-2"]
BUDGET = 60  # labels the officers may give from the queue
ACTOR = "cli:test"


@dataclass
class Loop:
    stack: Stack
    base: Path  # the champion's training folder, also retrain's base data

    def token(self, scanner: str) -> str:
        return str(self.stack.store.issue_scanner_token(scanner, actor=ACTOR))


@pytest.fixture(scope="module")
def loop(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Loop]:
    root = tmp_path_factory.mktemp("loop")
    settings = make_settings(
        root / "home", model=TINY, screening={"alpha": 0.3, "delta": 0.3},
        serving={"scanner_ids": [*SCANNERS, TRAFFIC_SCANNER], "ray_num_cpus": 4, "model_poll_s": 0.5,
                 "shadow_threat_items": 1000},
        monitoring={"drift_window": 20, "drift_arl_items": 2000.0, "cbpe_bootstrap": 0, "mmd_permutations": 50,
                    "interval_s": 0})
    settings.network.api_port = free_low_port()
    from xscreen.settings import ensure_home

    ensure_home(settings)
    base = write_folder(root / "base", render("baseline", 120, 1, threat_rate=0.5))
    from screening.train import TrainConfig, train_model
    from serving.runtime import Stack

    st = Stack(settings)
    try:
        st.start_owner()
        train_model(st.settings, [base], "loop-champion", cfg=TrainConfig(epochs=3, seed=7, progress=False),
                    actor=ACTOR)  # the first model: champion
        st.start_serving()
        yield Loop(st, base)
    finally:
        st.stop()


def stream(loop: Loop, officers: Officers, per_scanner: dict[str, list[Rendered]]) -> None:
    """Upload each scanner's scans through /v1 and have the officers decide what was flagged."""
    api = loop.stack.settings.api_url
    for scanner, items in per_scanner.items():
        answers = upload(api, loop.token(scanner), scanner, items)
        officers.decide_flagged(loop.stack.store, items, answers)


def monitor(loop: Loop) -> list[tuple[str, str]]:
    from serving.monitor_job import run_monitor

    run = run_monitor(loop.stack.settings, loop.stack.store, now=utcnow() + timedelta(seconds=1))
    return [(a.kind, a.severity) for a in run.raised]


def sql(loop: Loop, text: str) -> list[list[Any]]:
    return loop.stack.store.sql(text, actor=ACTOR).rows


def test_drift_relabel_retrain_gate_shadow_promote_and_roll_back_live(loop: Loop, tmp_path: Path) -> None:
    st, settings, officers = loop.stack, loop.stack.settings, Officers()
    stream(loop, officers, {s: render("baseline", 30, 10 + k, threat_rate=0.3) for k, s in enumerate(SCANNERS)})
    assert not [a for a in monitor(loop) if a[1] == "page"]

    raised: list[tuple[str, str]] = []
    ramps = {s: render("new_concealment", 45, 20 + k, threat_rate=0.3) for k, s in enumerate(SCANNERS)}
    for part in range(3):  # new_concealment ramps in over 45 scans per scanner, the job after each third
        stream(loop, officers, {s: items[part * 15:(part + 1) * 15] for s, items in ramps.items()})
        raised += monitor(loop)
    # No alert is asserted (module docstring): the loop is started by hand, as `xscreen retrain` is, or by
    # `monitoring.retrain_on` (tests/test_gate.py).

    labelled = officers.label_queue(st.store, budget=BUDGET, random_share=settings.app.relabel_random_share,
                                    borderline_share=settings.labelling.borderline_share)
    assert 0 < labelled <= BUDGET

    from screening.retrain import retrain
    from screening.train import TrainConfig

    result = retrain(settings, [loop.base], "loop-candidate", cfg=TrainConfig(epochs=3, seed=8, progress=False),
                     live_days=1, actor=ACTOR)
    assert result.record is not None and (result.record.state, result.record.parent) == ("candidate", "loop-champion")
    exported = (settings.exports_dir / "retrain-loop-candidate" / "labels.csv").read_text()
    assert all(f"images/{i}.png" in exported for i in officers.labelled)  # trained on every relabel given

    from analytics.monitoring.promotion import GateCriteria
    from screening.gate import run_gate

    bench = write_folder(tmp_path / "gate", render("new_concealment", 30, 30, threat_rate=0.5, progress=1.0))
    gate = run_gate(settings, "loop-candidate", [bench], live_days=1, criteria=GateCriteria(margin=0.2),
                    actor=ACTOR)
    assert [r.report_id for r in st.store.gate_reports("loop-candidate")] == [gate.report_id]
    assert gate.report["sources"]["benchmark"] == 30 and gate.report["sources"]["live"] >= labelled

    # shadow: the candidate scores live traffic beside the champion, never the verdict
    st.store.set_model_state("loop-candidate", "shadow", actor=ACTOR, reason="gate report " + gate.report_id)
    from serving.deployments import shadow_handle

    assert wait_for(lambda: shadow_handle().info.remote().result(timeout_s=30)["model_version"] == "loop-candidate", 60)
    shadowed = render("new_concealment", 6, 40, threat_rate=0.5, progress=1.0)
    answers = upload(settings.api_url, loop.token(SCANNERS[0]), SCANNERS[0], shadowed)
    assert {a["model_version"] for a in answers} == {"loop-champion"}
    ids = ", ".join(f"'{r.scan_id}'" for r in shadowed)
    assert wait_for(lambda: sql(loop, f"SELECT count(*) FROM verdicts WHERE scan_id IN ({ids}) AND role = 'shadow' "
                                      "AND model_version = 'loop-candidate'")[0][0] == len(shadowed), 90)

    # promote, then roll back, each under streaming requests
    with Stream(settings.api_url, loop.token(TRAFFIC_SCANNER)) as traffic:
        assert wait_for(lambda: traffic.served("loop-champion"), 60)
        st.store.set_model_state("loop-candidate", "champion", actor=ACTOR, reason="retrained on relabels",
                                 force=not gate.passed)
        assert wait_for(lambda: traffic.served("loop-candidate"), 60), traffic.answers[-5:]
        st.store.rollback(actor=ACTOR, reason="rollback drill")
        assert wait_for(lambda: traffic.served("loop-champion"), 60), traffic.answers[-5:]
    statuses = [s for s, _ in traffic.answers]
    assert statuses and set(statuses) == {201}, f"failed requests: {[s for s in statuses if s != 201]}"
    assert {v for _, v in traffic.answers} == {"loop-champion", "loop-candidate"}
    assert st.store.champion().version == "loop-champion"
