"""Layering is checked by tools: import-linter contracts, and a fresh interpreter importing analytics alone."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent

IMPORT_ALL_ANALYTICS_AND_STORE = """
import importlib, pkgutil, sys, json
import analytics, store
names = [m.name for pkg in (analytics, store) for m in pkgutil.iter_modules(pkg.__path__, pkg.__name__ + ".")]
for name in names:
    importlib.import_module(name)
heavy = sorted({m.split(".")[0] for m in sys.modules} & {"torch", "ray", "streamlit"})
print(json.dumps({"modules": names, "heavy": heavy}))
"""


def test_import_linter_contracts_are_kept() -> None:
    out = subprocess.run([str(BIN / "lint-imports")], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    assert "broken" in out.stdout and " 0 broken" in out.stdout


def test_importing_every_analytics_and_store_module_pulls_no_torch_ray_or_streamlit() -> None:
    import json

    out = subprocess.run([sys.executable, "-c", IMPORT_ALL_ANALYTICS_AND_STORE], cwd=ROOT, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert {"store.engine", "store.owner", "store.client", "store.sandbox"} <= set(result["modules"])
    assert result["heavy"] == []


def test_xscreen_help_works_and_loads_no_heavy_library() -> None:
    code = ("import sys\nfrom xscreen import cli\nsys.argv = ['xscreen', '--help']\n"
            "try:\n    cli.app()\nexcept SystemExit:\n    pass\n"
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'ray', 'streamlit'}))")
    env = {k: v for k, v in os.environ.items() if not k.startswith("XSCREEN_")}
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120, env=env)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "store-owner" in out.stdout and "sql" in out.stdout
    assert out.stdout.strip().splitlines()[-1] == "[]"
