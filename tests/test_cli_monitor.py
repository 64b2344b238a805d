"""`xscreen monitor` as an operator runs it: once, on the store file of a home (no owner running), printing a
summary table and the alerts it raised, and recording both in the store."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import numpy as np

from store.engine import Store
from tests import monitor_seed
from tests.monitor_seed import Drift
from xscreen.records import utcnow
from xscreen.settings import load_settings


def run(home: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("XSCREEN_")}
    env.update(XSCREEN_HOME=str(home), XSCREEN_LOG_LEVEL="WARNING", USER="tester",
               XSCREEN_NETWORK__STORE_PORT="1",  # nothing answers on port 1: the file is opened in-process
               XSCREEN_MONITORING__DRIFT_WINDOW="60", XSCREEN_MONITORING__MMD_PERMUTATIONS="120",
               XSCREEN_MONITORING__CBPE_BOOTSTRAP="20")
    return subprocess.run([sys.executable, "-m", "cli", "monitor"], capture_output=True, text=True, env=env,
                          timeout=180, cwd=home.parent)


def test_monitor_runs_once_prints_a_summary_and_pages_for_the_unseen_scanner(tmp_path: Path) -> None:
    home = tmp_path / "home"
    settings = load_settings(environ={}, home=home)
    rng = np.random.default_rng(11)
    t0 = utcnow() - timedelta(hours=1)
    with Store.from_settings(settings) as store:
        store.register_model(monitor_seed.model_record(t0))
        for scanner, drift in (("scanner-a", Drift()), ("scanner-b", Drift(routed=0.9))):
            b, threats = monitor_seed.batch(rng, scanner, 0, 150, t0, drift)
            store.ingest(b)
            monitor_seed.decide_flagged(store, b, threats, t0 + timedelta(minutes=10))
    out = run(home)
    assert out.returncode == 0, out.stderr
    assert "scanner-a" in out.stdout and "scanner-b" in out.stdout and "certificate_watch" in out.stdout
    assert "| ALARM" in out.stdout.replace("│", "|")  # the certificate watch row
    assert "PAGE certificate: scanner-b routes" in out.stdout and "xscreen adapt --scanner scanner-b" in out.stdout
    assert "new alert(s)" in out.stdout.splitlines()[-1]
    again = run(home)
    assert again.returncode == 0 and "PAGE" not in again.stdout  # the open alert is not raised twice
    with Store.from_settings(settings) as store:
        assert [(a.kind, a.details["scanner_id"]) for a in store.list_alerts() if a.severity == "page"] == [
            ("certificate", "scanner-b")]
        assert len(store.latest_measurements("certificate_watch")) == 2
