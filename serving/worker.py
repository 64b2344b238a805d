"""The serving worker the supervisor runs (`python -m serving.worker --address HOST:PORT`): joins the Ray
instance, makes sure the Serve application runs, then watches the scanner folders until SIGTERM/SIGINT.

Settings come from the environment (the supervisor passes them as XSCREEN_* variables). The store owner is a
sibling process reached over HTTP. Exit status: 0 after a requested stop, 1 when a part of the worker died
(the watcher's threads, or the Ray connection), so the supervisor restarts it.

Signals: `ray.init` installs Ray's C++ failure-signal handler, which answers SIGTERM by printing
"*** SIGTERM received" and arming a 3 s abort alarm: a stop that drains the batch in flight would end in
SIGABRT. So SIGTERM and SIGINT are blocked while Ray starts, our handler replaces Ray's right after, and only
then are they unblocked (one that arrived meanwhile is delivered to our handler).
"""

from __future__ import annotations

import argparse
import logging
import signal
import socket
import sys
import threading
import time
from types import FrameType

from serving.runtime import Stack, store_client
from xscreen.settings import load_settings

log = logging.getLogger("serving.worker")
STOP_SIGNALS = {signal.SIGTERM, signal.SIGINT}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m serving.worker")
    parser.add_argument("--address", required=True, help="Ray GCS address of the supervisor's Ray head")
    parser.add_argument("--cluster", action="store_true", help="the address is a cluster run by someone else")
    args = parser.parse_args(argv)
    settings = load_settings()
    logging.basicConfig(level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    stop = threading.Event()
    stack = Stack(settings, address=args.address, own_ray=not args.cluster)
    stack.store = store_client(stack.settings)
    def ray_started() -> None:
        _install(stop)  # right after ray.init: replaces Ray's handler (a later sigaction wins) ...
        signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)  # ... and only then lets a stop signal in

    signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)  # Ray's handler must never see a stop signal
    try:
        if not args.cluster:
            _wait_for_gcs(args.address)  # spawned together with the Ray head: join once it answers
        log.info(stack.start_serving(after_ray_init=ray_started))
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP_SIGNALS)
    status = 0
    try:
        if not stop.is_set():
            log.info(stack.start_watcher())
        while not stop.wait(1.0):
            problem = stack.worker_problem()
            if problem:
                log.error("%s: exiting so the supervisor restarts the serving worker", problem)
                status = 1
                break
    finally:
        log.info("stopping: watcher (the batch in flight is spooled), then leaving Ray")
        stack.stop_worker()
        log.info("stopped")
    return status


def _wait_for_gcs(address: str, timeout_s: float = 120.0) -> None:
    host, port = address.rsplit(":", 1)
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            with socket.create_connection((host, int(port)), timeout=1.0):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise SystemExit(f"the Ray head at {address} did not answer within {timeout_s:.0f} s") from None
            time.sleep(0.2)


def _install(stop: threading.Event) -> None:
    def handler(signum: int, frame: FrameType | None) -> None:
        log.info("stop signal %s: stopping in order", signal.Signals(signum).name)
        stop.set()

    for signum in STOP_SIGNALS:
        signal.signal(signum, handler)


if __name__ == "__main__":
    sys.exit(main())
