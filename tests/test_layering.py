"""Layering is checked by tools: the import-linter contracts (every layer, with its reason, and no cycles), every
module placed by them, and fresh interpreters that import a layer and check what came along."""

from __future__ import annotations

import json
import os
import pkgutil
import subprocess
import sys
import tomllib
from pathlib import Path

import serving
import xscreen

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
RAY_MODULES = {"serving.deployments", "serving.runtime", "serving.worker", "serving.ray_loopback"}

IMPORT_AND_LIST_HEAVY = """
import importlib, pkgutil, sys, json
names = []
for package in {packages!r}:
    pkg = importlib.import_module(package)
    names += [m.name for m in pkgutil.iter_modules(pkg.__path__, package + ".") if not m.name.endswith("__main__")]
for name in names + {modules!r}:
    importlib.import_module(name)
print(json.dumps({{"modules": names, "loaded": sorted({{m.split(".")[0] for m in sys.modules}})}}))
"""


def _contracts() -> dict[str, dict[str, object]]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    return {c["name"]: c for c in config["contracts"]}


def _contract(starting: str) -> dict[str, object]:
    return next(c for name, c in _contracts().items() if name.startswith(starting))


def _loaded(packages: list[str], modules: list[str] | None = None) -> dict[str, list[str]]:
    code = IMPORT_AND_LIST_HEAVY.format(packages=packages, modules=modules or [])
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-3000:]
    result: dict[str, list[str]] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def test_import_linter_contracts_are_kept() -> None:
    out = subprocess.run([str(BIN / "lint-imports")], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    assert f"Contracts: {len(_contracts())} kept, 0 broken." in out.stdout


def test_every_module_of_the_kernel_and_of_serving_is_placed_by_a_contract() -> None:
    """A module added later falls under the rules: a kernel module is named in the kernel's contract, and a
    serving module either among serving's Ray modules or in the contract that keeps Ray out of the rest."""
    kernel = set(_contract("The kernel imports nothing")["source_modules"])  # type: ignore[arg-type]
    ours = {m.name for m in pkgutil.iter_modules(xscreen.__path__, "xscreen.")}
    assert ours == kernel
    plain = set(_contract("Ray stays at serving's edge")["source_modules"])  # type: ignore[arg-type]
    modules = {m.name for m in pkgutil.iter_modules(serving.__path__, "serving.")}
    assert modules == plain | RAY_MODULES and not plain & RAY_MODULES


def test_analytics_store_and_the_kernel_load_no_torch_ray_or_streamlit() -> None:
    result = _loaded(["analytics", "store"], ["xscreen.records", "xscreen.settings", "xscreen.health"])
    assert {"store.engine", "store.owner", "store.client", "store.sandbox", "analytics.drift"} <= set(result["modules"])
    assert not {"torch", "ray", "streamlit"} & set(result["loaded"])
    assert "duckdb" not in _loaded(["analytics"])["loaded"]  # statistics for a notebook: no database


def test_the_supervisor_and_the_plain_pipeline_never_load_ray() -> None:
    plain = [m for m in _contract("Ray stays at serving's edge")["source_modules"]]  # type: ignore[union-attr]
    assert "ray" not in _loaded([], plain)["loaded"]  # type: ignore[arg-type]


def test_the_app_loads_no_torch_or_ray() -> None:
    helpers = ["pages._common", "pages._cookie", "pages._viewer", "pages._session", "pages._navigation"]
    loaded = set(_loaded([], helpers)["loaded"])
    assert "streamlit" in loaded and not {"torch", "ray"} & loaded


def test_xscreen_help_works_and_loads_no_heavy_library() -> None:
    code = ("import sys\nimport cli\nsys.argv = ['xscreen', '--help']\n"
            "try:\n    cli.app()\nexcept SystemExit:\n    pass\n"
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'ray', 'streamlit'}))")
    env = {k: v for k, v in os.environ.items() if not k.startswith("XSCREEN_")}
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120, env=env)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "store-owner" in out.stdout and "sql" in out.stdout
    assert out.stdout.strip().splitlines()[-1] == "[]"
