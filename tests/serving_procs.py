"""Helpers for tests that run `xscreen serve` as a real process: start it on a prepared home, find its pieces,
wait for it, and check that nothing of it is left afterwards."""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from PIL import Image

from serving.parts import absolute_settings, settings_env
from serving.runs import RUN_ID_ENV, free_port_in, processes_with_run_id, ray_temp_dir, state_path
from tests.conftest import make_settings
from tests.serving_fakes import tiny_model
from xscreen.settings import Settings, ensure_home

LOW_PORTS_PER_WORKER = 300


def free_low_port(start: int = 8100) -> int:
    """A free port below Ray's worker and ephemeral ranges, so Ray's own random ports cannot take it first.

    Each pytest-xdist worker (gw0, gw1, ...) searches its own block of LOW_PORTS_PER_WORKER ports: the port is
    only bound later (by Serve's proxy), so two workers scanning one range would both pick its first free port
    (CI saw two Serve proxies of two tests on 8100)."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw")
    first = start + (int(worker) if worker.isdigit() else 0) * LOW_PORTS_PER_WORKER
    return free_port_in("127.0.0.1", first, LOW_PORTS_PER_WORKER)


def serve_home(home: Path, **serving: Any) -> Settings:
    """A home with a tiny champion registered (no owner running: registered in-process), ready for `serve`."""
    from screening.registry import register

    options: dict[str, Any] = {"scanner_ids": [], "ray_num_cpus": 2, "retry_base_s": 0.2, "retry_max_s": 2.0}
    options.update(serving)
    settings = make_settings(home, serving=options, store={"snapshot_max_age_s": 0})
    settings.network.api_port = free_low_port()
    settings = absolute_settings(settings)
    ensure_home(settings)
    register(settings, tiny_model(settings.model.classes, "tiny-serve"), state="champion")
    return settings


def start_serve(settings: Settings, *args: str) -> subprocess.Popen[str]:
    """`xscreen serve` in its own process group (pgid = pid), output to HOME/serve.out."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("XSCREEN_")}
    env.update(settings_env(settings))
    # A user home of its own, as on a fresh machine: nothing of this one's (~/.ray/auth_token, which Ray's token
    # authentication would otherwise find) helps the stack start.
    user_home = Path(settings.home) / "user-home"
    user_home.mkdir(exist_ok=True)
    env["HOME"] = str(user_home)
    for name in ("RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH"):
        env.pop(name, None)
    out = open(Path(settings.home) / "serve.out", "a")  # noqa: SIM115 -- the child writes it for its life
    return subprocess.Popen([sys.executable, "-c", "from cli import main; main()", "serve", *args],
                            stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True, text=True)


def output(settings: Settings) -> str:
    path = Path(settings.home) / "serve.out"
    return path.read_text() if path.exists() else ""


def wait_for(cond: Callable[[], bool], timeout: float, every: float = 0.25) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if cond():
                return True
        except Exception:  # noqa: BLE001 -- not up yet
            pass
        time.sleep(every)
    return False


def healthy(settings: Settings) -> bool:
    """The API answers /healthz ok and the watcher answers /health ok."""
    try:
        api = httpx.get(f"{settings.api_url}/healthz", timeout=2).json()
        watcher = httpx.get(f"http://127.0.0.1:{settings.network.metrics_port}/health", timeout=2).json()
    except (httpx.HTTPError, ValueError):
        return False
    return bool(api.get("status") == "ok" and watcher.get("status") == "ok")


def wait_running(settings: Settings, proc: subprocess.Popen[str], timeout: float = 240) -> None:
    ok = wait_for(lambda: "running;" in output(settings) and healthy(settings), timeout)
    if not ok:
        raise AssertionError(f"serve did not come up (exit {proc.poll()}):\n{output(settings)[-3000:]}")


def run_id(settings: Settings) -> str:
    return str(json.loads(state_path(settings).read_text())["run_id"])


def supervisor_pid(settings: Settings) -> int:
    return int(json.loads(state_path(settings).read_text())["pid"])


def children(settings: Settings) -> dict[str, int]:
    return dict(json.loads(state_path(settings).read_text())["children"])


def run_processes(rid: str) -> list[int]:
    return processes_with_run_id(rid)


def pids_named(rid: str, needle: str) -> list[int]:
    """Processes of this run whose command line contains `needle` (e.g. 'ProxyActor', 'gcs_server')."""
    found = []
    for pid in run_processes(rid):
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if needle in cmd:
            found.append(pid)
    return found


def ports_free(settings: Settings) -> list[str]:
    """Names of this home's ports that are still taken."""
    from xscreen.errors import ConfigError
    from xscreen.settings import check_port_free

    taken = []
    for which in ("api_port", "store_port", "metrics_port"):
        try:
            check_port_free(settings, which)  # type: ignore[arg-type]
        except ConfigError:
            taken.append(which)
    return taken


def _holders(settings: Settings) -> str:
    """Which process listens on each held port (`ss`; another helper's test may have taken a freed low port)."""
    lines = []
    for which in ports_free(settings):
        port = getattr(settings.network, which)
        found = subprocess.run(["ss", "-ltnpH", f"sport = :{port}"], capture_output=True, text=True, check=False)
        lines.append(f"{which} {port}: {found.stdout.strip() or '(no listener: connections closing)'}")
    return "; ".join(lines)


def assert_nothing_left(settings: Settings, rid: str) -> None:
    assert wait_for(lambda: run_processes(rid) == [], 30), f"processes of the run left: {run_processes(rid)}"
    assert wait_for(lambda: ports_free(settings) == [], 15), f"ports still held: {_holders(settings)}"
    assert not ray_temp_dir(settings).exists(), "the run's Ray temp folder was left behind"
    assert not state_path(settings).exists()
    logs = "".join(p.read_text(errors="replace") for p in Path(settings.logs_dir).glob("*.log")) + output(settings)
    assert "*** SIGTERM received" not in logs and "Aborted" not in logs, "Ray's signal handler ran"


def noise_png(seed: int, size: int = 64) -> bytes:
    rng = np.random.default_rng(seed)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (size, size + 8, 3), dtype=np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def drop(inbox: Path, scanner: str, name: str, data: bytes) -> str:
    """Like a scanner: write under a dot-name, rename into place; returns the content hash."""
    folder = inbox / scanner
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".{name}.tmp"
    tmp.write_bytes(data)
    os.replace(tmp, folder / name)
    return hashlib.sha256(data).hexdigest()


__all__ = ["RUN_ID_ENV", "assert_nothing_left", "children", "drop", "healthy", "noise_png", "pids_named",
           "ports_free", "run_id", "run_processes", "serve_home", "start_serve", "supervisor_pid", "wait_for",
           "wait_running"]
