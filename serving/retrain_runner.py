"""Runs the retraining people ask for (the Models page) or alerts ask for (`monitoring.retrain_on`), one at a time.

Requests wait in the store (`retrain_requests`, store/models.py). A thread of the supervisor looks every `interval_s`
(a read), claims the oldest pending one and runs `xscreen retrain --out NAME [--base monitoring.retrain_base]` as a child
process with the supervisor's settings, at low CPU priority, its output in `HOME/logs/retrain-NAME.log`; the end
of that output is stored with the request (`done` or `failed`). A child process, not a thread: training holds the
CPU and the GIL for minutes, and the monitoring, restarts and shutdown that this process runs must not wait for it.
The result is a candidate, never a champion: the gate and a person (or serving.auto_promote) decide the rest.

Stopping the supervisor stops a running retrain (its process group, SIGTERM then SIGKILL) and marks it failed; a
supervisor that was killed leaves a `running` request behind, which the next one marks failed when it starts.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from serving.housekeeping import Housekeeper
from xscreen.records import RetrainRequest
from xscreen.settings import Settings

log = logging.getLogger(__name__)

TAIL_CHARS = 2000  # of the run's output, kept with the request
STOPPED = "stopped: the supervisor running it stopped (request it again)"


def retrain_argv(settings: Settings, request: RetrainRequest) -> list[str]:
    """`xscreen retrain` for a request (`python -m cli`: the same console script without its entry point)."""
    argv = [sys.executable, "-m", "cli", "retrain", "--out", request.name]
    base = [str(p) for p in settings.monitoring.retrain_base]
    return [*argv, "--base", ",".join(base)] if base else argv


class RetrainRunner:
    """Claims and runs retraining requests in a daemon thread. `store()` gives the store (the owner's client);
    `env` is the child's environment (the supervisor's child_env: the settings as XSCREEN_* variables); `argv`
    builds the command (default `retrain_argv`)."""

    def __init__(self, settings: Settings, store: Callable[[], Any], env: Mapping[str, str], *,
                 argv: Callable[[Settings, RetrainRequest], list[str]] = retrain_argv, interval_s: float = 10.0) -> None:
        self._settings = settings
        self._store = store
        self._env = dict(env)
        self._argv = argv
        self._loop = Housekeeper([self.run_once], interval_s, name="xscreen-retrain")
        self._lock = threading.Lock()
        self._child: subprocess.Popen[bytes] | None = None
        self._stopping = False

    @property
    def running(self) -> bool:
        return self._loop.running

    def start(self) -> None:
        """Mark what a killed predecessor left running as failed, then claim requests every interval."""
        try:
            left = self._store().fail_running_retrains("failed: the supervisor running it was killed (request it again)")
        except Exception:  # noqa: BLE001 -- the store may be restarting; retraining must never stop serving from starting
            log.exception("could not close retraining requests a killed supervisor left running")
        else:
            if left:
                log.warning("%d retraining request(s) a killed supervisor left running marked failed", left)
        self._loop.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop claiming; stop a running retrain (SIGTERM to its group, SIGKILL after `timeout_s`)."""
        with self._lock:
            self._stopping = True
            child = self._child
        if child is not None and child.poll() is None:
            _signal_group(child, signal.SIGTERM)
            try:
                child.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                _signal_group(child, signal.SIGKILL)
                child.wait(timeout=timeout_s)
        self._loop.stop(timeout_s + 5.0)

    def run_once(self) -> RetrainRequest | None:
        """Claim the oldest pending request and run it to the end; None when none waited (or one runs)."""
        if self._stopping:
            return None
        store = self._store()
        if not store.retrain_waiting():  # a read: most intervals nothing waits, and the writer is the ingest's
            return None
        request = store.claim_retrain()
        if request is None:
            return None
        log_path = Path(self._settings.logs_dir) / f"retrain-{request.name}.log"
        log.info("retraining %s (%s, asked by %s); output in %s", request.name, request.reason,
                 request.requested_by, log_path)
        try:
            code = self._run(request, log_path)
        except OSError as exc:  # no such interpreter, no room for the log: the request fails, the runner goes on
            store.finish_retrain(request.request_id, False, f"could not start the retrain: {exc}")
            return request
        tail = _tail(log_path)
        ok = code == 0
        message = (STOPPED if self._stopping and not ok else tail) or f"exited with status {code}"
        store.finish_retrain(request.request_id, ok, message)
        log.info("retraining %s %s", request.name, "done" if ok else f"failed (exit {code})")
        return request

    def _run(self, request: RetrainRequest, log_path: Path) -> int:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with log_path.open("wb") as out, self._lock:
            if self._stopping:
                return -1
            # its own session, so stop() reaches the training and anything it started; nice: scoring goes first
            self._child = subprocess.Popen(self._argv(self._settings, request), stdout=out, stderr=subprocess.STDOUT,
                                           stdin=subprocess.DEVNULL, env=self._env, start_new_session=True,
                                           preexec_fn=_lower_priority)
        try:
            return self._child.wait()
        finally:
            with self._lock:
                self._child = None


def _tail(path: Path) -> str:
    """The last TAIL_CHARS characters of a run's output, read from the end (a long training log is megabytes)."""
    try:
        with path.open("rb") as fh:
            fh.seek(max(fh.seek(0, os.SEEK_END) - 4 * TAIL_CHARS, 0))
            return fh.read().decode(errors="replace")[-TAIL_CHARS:].strip()
    except OSError:
        return ""


def _lower_priority() -> None:
    os.nice(10)


def _signal_group(child: subprocess.Popen[bytes], sig: int) -> None:
    try:
        os.killpg(child.pid, sig)
    except ProcessLookupError:
        pass
