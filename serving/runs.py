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
    children_started: dict[str, int] = field(default_factory=dict)  # name -> start time (clock ticks since boot)
    fingerprint: str | None = None  # what the run was started with (settings, mode): adopted only when equal


def read_state(settings: Settings) -> RunState | None:
    """HOME/run/serve.json, or None when there is none (or it cannot be read: then nothing is adopted)."""
    try:
        return RunState(**json.loads(state_path(settings).read_text()))
    except (OSError, ValueError, TypeError):
        return None


def previous_run(settings: Settings) -> RunState | None:
    """The record of an earlier supervisor of this home that is gone (killed or crashed), or None. Refuses
    (ConfigError) when that supervisor is still running."""
    from xscreen.errors import ConfigError

    state = read_state(settings)
    if state is None:
        return None
    if state.pid != os.getpid() and alive(state.pid) and started(state.pid) == state.pid_started:
        raise ConfigError(f"xscreen serve is already running for {settings.home} (pid {state.pid})")
    return state


def live_children(state: RunState) -> dict[str, int]:
    """The recorded children that still run as that run's processes: same pid, same start time, and the run id in
    their environment (a recycled pid fails the first two, another program the last)."""
    mine = set(processes_with_run_id(state.run_id))
    return {name: pid for name, pid in state.children.items()
            if pid in mine and alive(pid) and started(pid) == state.children_started.get(name)}


def ray_temp_dir(settings: Settings) -> Path:
    """A short, per-home Ray temp folder (Unix socket paths must stay under ~107 bytes, so not under HOME)."""
    digest = hashlib.sha256(str(Path(settings.home).resolve()).encode()).hexdigest()[:10]
    return Path(tempfile.gettempdir()) / f"xscreen-ray-{os.getuid()}-{digest}"


def free_port(host: str) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def free_port_in(host: str, first: int, count: int) -> int:
    """The first port of first..first+count-1 that binds now on `host` (a fixed low range keeps it out of Ray's
    worker and ephemeral ranges, where Ray's own random ports could take it before its server binds)."""
    for port in range(first, first + count):
        with socket.socket() as sock:
            try:
                sock.bind((host, port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {first}-{first + count - 1}")


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


def kill_run(run_id: str, grace_s: float = 5.0, keep_groups: frozenset[int] = frozenset()) -> int:
    """SIGTERM every process of a run, then SIGKILL what is left after `grace_s`; returns how many there were.
    Processes in `keep_groups` (process group ids: adopted children) are left alone."""
    pids = [p for p in processes_with_run_id(run_id) if _group(p) not in keep_groups]
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


def _group(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except OSError:
        return None


def clean_previous_run(settings: Settings) -> str | None:
    """After a crash of an earlier supervisor of this home: stop what it started and free its Ray folder.
    Refuses (ConfigError) when that supervisor is still running. Returns a line for the console, or None."""
    state = previous_run(settings)
    if state is None:
        return None
    return end_run(settings, state)


def end_run(settings: Settings, state: RunState) -> str | None:
    """End every process of a dead supervisor's run, remove its Ray folder and its record; a console line."""
    leftovers = processes_with_run_id(state.run_id)
    kill_run(state.run_id)
    if state.ray_temp_dir:
        shutil.rmtree(state.ray_temp_dir, ignore_errors=True)
    state_path(settings).unlink(missing_ok=True)
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


__all__ = ["RUN_ID_ENV", "RunState", "alive", "clean_previous_run", "end_run", "free_port", "kill_run",
           "live_children", "port_open", "previous_run", "processes_with_run_id", "ray_temp_dir", "read_state",
           "started", "state_path"]
