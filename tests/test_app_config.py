"""The dashboard's effective Streamlit configuration, as Streamlit's own CLI parser and config loader resolve it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from serving.runtime import dashboard_argv
from xscreen.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
# Runs in a child process: loading Streamlit's config is process-global and would leak into the AppTests.
PROBE = """
import json, sys
from streamlit import config
from streamlit.web import bootstrap, cli
ctx = cli.main_run.make_context("run", json.loads(sys.argv[1]))
bootstrap.load_config_options(flag_options={k: v for k, v in ctx.params.items() if k not in ("target", "args")})
print(json.dumps({o: config.get_option(o) for o in ("server.fileWatcherType", "server.runOnSave", "server.address",
                                                    "server.port", "browser.gatherUsageStats")}))
"""


def effective(run_args: list[str], cwd: Path) -> dict[str, object]:
    """Streamlit's configuration for `streamlit run <run_args>` started in `cwd`."""
    out = subprocess.run([sys.executable, "-c", PROBE, json.dumps(run_args)], cwd=cwd, capture_output=True,
                         text=True, timeout=120, check=True)
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def test_dashboard_started_by_xscreen_serve_watches_no_files_from_any_folder(
        settings: Settings, tmp_path: Path) -> None:
    argv = dashboard_argv(settings, ROOT / "dashboard.py")
    assert argv[1:4] == ["-m", "streamlit", "run"]
    cfg = effective(argv[4:], cwd=tmp_path)  # a folder without .streamlit/config.toml: only the flags count
    assert cfg["server.fileWatcherType"] == "none" and cfg["server.runOnSave"] is False
    assert (cfg["server.address"], cfg["server.port"]) == ("127.0.0.1", settings.network.app_port)
    assert cfg["browser.gatherUsageStats"] is False


@pytest.mark.parametrize("script", ["app.py", "dashboard.py"])
def test_streamlit_run_from_the_checkout_watches_no_files(script: str) -> None:
    cfg = effective([script], cwd=ROOT)  # `streamlit run app.py` as docs/APP.md shows it
    assert cfg["server.fileWatcherType"] == "none" and cfg["server.address"] == "127.0.0.1"
