"""What one `xscreen serve` run started, and how to find and end it later: its run id in every child's
environment, HOME/run/serve.json, its own Ray temp folder. Plain Linux /proc reading; no Ray here.

A process belongs to a run when its environment carries `XS_RUN_ID=<run id>` (the supervisor sets it for each
child; Ray passes it on to the processes it starts). Nothing else is ever signalled: another user's or another
home's processes never match, and a recycled supervisor pid is told apart by its start time.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import socket
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from xscreen.settings import Settings

# Every child, and through it every Ray process, carries the supervisor's run id (not XSCREEN_*: settings' prefix).
RUN_ID_ENV = "XS_RUN_ID"


@dataclass
class RunState:
    """HOME/run/serve.json: who is running and what it started (read by the next start after a crash)."""

    pid: int
    run_id: str
    pid_started: int  # the supervisor's start time (clock ticks since boot): a recycled pid has another
    ray_temp_dir: str | None = None
    ray_address: str | None = None
    children: dict[str, int] = field(default_factory=dict)  # name -> pid (= pgid: own session)


def ray_temp_dir(settings: Settings) -> Path:
    """A short, per-home Ray temp folder (Unix socket paths must stay under ~107 bytes, so not under HOME)."""
    digest = hashlib.sha256(str(Path(settings.home).resolve()).encode()).hexdigest()[:10]
    return Path(tempfile.gettempdir()) / f"xscreen-ray-{os.getuid()}-{digest}"


def free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def processes_with_run_id(run_id: str) -> list[int]:
    """Pids whose environment carries this run id (Linux /proc; processes of other users are unreadable)."""
    marker = f"{RUN_ID_ENV}={run_id}".encode()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as fh:
                if marker in fh.read().split(b"\0"):
                    found.append(int(entry))
        except OSError:
            continue
    return found


def kill_run(run_id: str, grace_s: float = 5.0) -> int:
    """SIGTERM every process of a run, then SIGKILL what is left after `grace_s`; returns how many there were."""
    pids = processes_with_run_id(run_id)
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + grace_s
        while time.monotonic() < deadline and any(alive(p) for p in pids):
            time.sleep(0.1)
        pids = [p for p in pids if alive(p)]
        if not pids:
            break
    return len(pids)


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"  # a zombie has exited
    except OSError:
        return False


def clean_previous_run(settings: Settings) -> str | None:
    """After a crash of an earlier supervisor of this home: stop what it started and free its Ray folder.
    Refuses (ConfigError) when that supervisor is still running. Returns a line for the console, or None."""
    from xscreen.errors import ConfigError

    path = state_path(settings)
    try:
        state = RunState(**json.loads(path.read_text()))
    except (OSError, ValueError, TypeError):
        return None
    if state.pid != os.getpid() and alive(state.pid) and started(state.pid) == state.pid_started:
        raise ConfigError(f"xscreen serve is already running for {settings.home} (pid {state.pid})")
    leftovers = processes_with_run_id(state.run_id)
    kill_run(state.run_id)
    if state.ray_temp_dir:
        shutil.rmtree(state.ray_temp_dir, ignore_errors=True)
    path.unlink(missing_ok=True)
    return f"cleaned up     {len(leftovers)} process(es) left by an earlier run (pid {state.pid})" if leftovers \
        else None


def started(pid: int) -> int | None:
    """Start time of a process in clock ticks since boot (field 22 of /proc/PID/stat), None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return int(fh.read().rsplit(")", 1)[1].split()[19])
    except (OSError, ValueError, IndexError):
        return None


def state_path(settings: Settings) -> Path:
    return Path(settings.home) / "run" / "serve.json"

__all__ = ["RUN_ID_ENV", "RunState", "alive", "clean_previous_run", "free_port", "kill_run", "port_open",
           "processes_with_run_id", "ray_temp_dir", "started", "state_path"]
