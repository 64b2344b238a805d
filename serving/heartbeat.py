"""The supervisor's heartbeat (HOME/run/heartbeat, touched every second) and the guard each child runs: a child
whose supervisor has been silent longer than `serving.orphan_exit_s` stops itself, so a killed supervisor that
nobody restarts leaves nothing running. Plain files and signals; no Ray here.

Why: children outlive a `kill -9` of their supervisor (no PR_SET_PDEATHSIG), so the supervisor a service manager
starts again adopts them instead of starting the whole stack cold (serving/supervisor.py). The guard is a daemon
thread started first thing in the child (`guarded` prefixes its `python -c` code); it signals its own process
group (the child and what it started: the Ray head's GCS and raylet), like the supervisor's own stop would.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path

log = logging.getLogger(__name__)
BEAT_EVERY_S = 1.0
GRACE_S = 20.0  # after SIGTERM, how long a stopping child has before SIGKILL (the worker drains its batch)


def heartbeat_path(home: Path) -> Path:
    return Path(home) / "run" / "heartbeat"


class Heartbeat:
    """Touches the heartbeat file every second from a daemon thread until stop() (which removes it)."""

    def __init__(self, path: Path, every_s: float = BEAT_EVERY_S) -> None:
        self.path, self.every_s = path, every_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is not None:  # already beating
            return
        self.beat()  # before any child starts: a child's guard never sees a missing file from a live supervisor
        self._thread = threading.Thread(target=self._run, name="xscreen-heartbeat", daemon=True)
        self._thread.start()

    def beat(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.touch()
        os.utime(self.path)  # a new mtime every beat, which is all the guards look at

    def _run(self) -> None:
        while not self._stop.wait(self.every_s):
            try:
                self.beat()
            except OSError as exc:  # e.g. a read-only disk: the children stop only after orphan_exit_s of it
                log.error("could not write the heartbeat %s: %s", self.path, exc)

    def stop(self) -> None:
        """Stop beating and remove the file (only a heartbeat this object started: never another supervisor's)."""
        if self._thread is None:
            return
        self._stop.set()
        self._thread.join(5)
        self.path.unlink(missing_ok=True)


def _mtime_ns(path: Path) -> int | None:
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return None


def guard(path: str, exit_after_s: float, sweep_run: bool = False, every_s: float = 1.0) -> threading.Thread:
    """Start the orphan guard of this process (a daemon thread): once the heartbeat at `path` has been silent for
    `exit_after_s`, SIGTERM this process's group, then SIGKILL it after GRACE_S. With `sweep_run`, first end every
    other process still carrying this process's run id (the last child to go collects what escaped its group)."""
    thread = threading.Thread(target=_watch, args=(Path(path), exit_after_s, sweep_run, every_s),
                              name="xscreen-orphan-guard", daemon=True)
    thread.start()
    return thread


def _watch(path: Path, exit_after_s: float, sweep_run: bool, every_s: float) -> None:
    # Stop signals go to the main thread's handler, never to this thread (where a C-level handler such as Ray's
    # would run instead): a process-directed signal is delivered to a thread that does not block it.
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})
    # Silence is measured on this process's monotonic clock since the file last changed, not as wall-clock time
    # minus its mtime: a clock step (NTP, a resumed VM) must not stop a healthy stack.
    seen, changed_at = _mtime_ns(path), time.monotonic()
    while time.monotonic() - changed_at < exit_after_s:
        time.sleep(every_s)
        now = _mtime_ns(path)
        if now is not None and now != seen:
            seen, changed_at = now, time.monotonic()
    print(f"xscreen: the supervisor's heartbeat {path} has been silent for over {exit_after_s:.0f} s: stopping",
          file=sys.stderr, flush=True)
    if sweep_run:
        from serving.runs import RUN_ID_ENV, kill_run

        run_id = os.environ.get(RUN_ID_ENV)
        if run_id:
            kill_run(run_id, grace_s=GRACE_S / 4)
    group = os.getpgid(0)
    os.killpg(group, signal.SIGTERM)
    time.sleep(GRACE_S)
    os.killpg(group, signal.SIGKILL)  # still here: it did not stop on SIGTERM


def guarded(argv: list[str], path: Path, exit_after_s: float, sweep_run: bool = False) -> list[str]:
    """The same Python command with the orphan guard started first: `[python, -c, CODE, *args]` or
    `[python, -m, MODULE, *args]` becomes `[python, -c, GUARD; CODE, *args]` (the arguments, sys.argv[1:], stay)."""
    python, flag, target, *args = argv
    if flag == "-m":
        target = f"import runpy; runpy.run_module({target!r}, run_name='__main__', alter_sys=True)"
    elif flag != "-c":
        raise ValueError(f"guarded() needs `python -c CODE` or `python -m MODULE`, not {argv[:3]}")
    prefix = f"from serving.heartbeat import guard; guard({str(path)!r}, {exit_after_s!r}, sweep_run={sweep_run!r}); "
    return [python, "-c", prefix + target, *args]


__all__ = ["BEAT_EVERY_S", "Heartbeat", "guard", "guarded", "heartbeat_path"]
