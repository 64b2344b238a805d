"""The `xscreen serve` / `xscreen demo` supervisor: starts each service as a child, restarts the ones that die,
stops all of them in order on SIGTERM or SIGINT. It never imports Ray.

Children (each in its own session, so a terminal's Ctrl-C reaches only the supervisor, which stops them in
order):

    store owner     python -c run_owner            network.store_port      restarted alone
    Ray head        ray start --head --block       a free GCS port          restarts the serving worker too
    serving worker  python -m serving.worker       network.metrics_port     Serve app (deployed if missing) +
                                                   (+ Serve on api_port)    watcher + ingest + housekeeping
    [demo] app      streamlit run app.py           network.app_port         restarted alone
    [demo] scanner simulator: a thread of the supervisor

Why this shape: `ray.init` installs Ray's C++ failure-signal handler, which answers SIGTERM by arming a 3 s
abort alarm, so a process that called it cannot stop in order on SIGTERM unless it replaces that handler; the
supervisor never calls it, and the serving worker blocks SIGTERM/SIGINT around `ray.init` and installs its own
handler right after (tests/test_supervision.py proves both). A dead child is restarted at once, then after a
backoff (1 s doubling to 30 s) while it keeps dying young; once it has run for a minute, at once again. The
supervisor cleans up only what it started: the process groups of its children, any process still carrying its
run id in its environment, and its own Ray temp folder; it never runs a host-wide `ray stop`. `HOME/run/serve.json` records its pid, run id and
children, so a later start after a `kill -9` of the supervisor finds them.

A killed supervisor does not take its children with it (with `serving.orphan_exit_s` > 0): the one a service
manager starts again reads serve.json, checks each recorded child (pid, start time, run id in its environment,
same settings) and adopts the live ones, watching them by polling /proc (they are no longer its children), and
starts only what is missing; it keeps the run id, so its sweeps still cover them. Children that nobody adopts
stop by themselves once the supervisor's heartbeat has been silent that long (serving/heartbeat.py). With 0,
each child gets SIGTERM when the supervisor dies (PR_SET_PDEATHSIG) and the next start ends what is left.
"""

from __future__ import annotations

import ctypes
import hashlib
import json
import logging
import os
import shutil
import signal
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from serving.heartbeat import Heartbeat, guarded, heartbeat_path
from serving.parts import Child, absolute_settings, dashboard_argv, drain_spool, settings_env, wait_until
from serving.runs import (
    RUN_ID_ENV,
    RunState,
    end_run,
    free_port,
    kill_run,
    live_children,
    port_open,
    previous_run,
    ray_temp_dir,
    started,
    state_path,
)
from store.identity import ensure_ray_token
from xscreen import atomic
from xscreen.settings import Settings

log = logging.getLogger(__name__)
BACKOFF_MIN_S, BACKOFF_MAX_S, STABLE_S = 1.0, 30.0, 60.0
PR_SET_PDEATHSIG = 1
# Serve's controller checks each HTTP proxy every 10 s and needs 3 failures in a row before it replaces a dead
# one: /v1 was down 27 s after a proxy kill. Checked every second (timeout 2 s), a dead proxy is replaced in ~5 s.
# RAY_AUTH_MODE=token: the head and the worker agree on Ray's token authentication, which a driver joining an
# existing instance otherwise leaves off; the token is the home's (HOME/secrets/ray.token, RAY_AUTH_TOKEN_PATH),
# never ~/.ray/auth_token, which `ray start` does not create: on a fresh machine the head could not start.
# RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 binds every Ray listener to loopback (docs/DEPLOY.md). A SIGTERM'd
# `ray start --block` drains its node for 30 s by default: the worker has already left, so 3 s is plenty.
RAY_SERVE_ENV = {"RAY_SERVE_PROXY_HEALTH_CHECK_PERIOD_S": "1", "RAY_SERVE_PROXY_HEALTH_CHECK_TIMEOUT_S": "2",
                 "RAY_USAGE_STATS_ENABLED": "0", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_AUTH_MODE": "token",
                 "RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S": "3"}
# The port each service holds (an adopted one already holds it), and how much later than the worker each child's
# orphan guard stops it: the worker first (its batch in flight is spooled), then Ray, then the owner, which also
# ends whatever of the run escaped its group.
SERVICE_NAMES = {"owner": "store owner", "ray": "Ray head", "worker": "serving worker", "app": "dashboard"}
PORTS = {"owner": "store_port", "ray": "api_port", "worker": "metrics_port", "app": "app_port"}
ORPHAN_ORDER_S = {"worker": 0.0, "app": 0.0, "ray": 5.0, "owner": 10.0}


def _die_with_parent() -> None:
    """preexec_fn: SIGTERM this child when the supervisor dies (even by kill -9), so nothing is orphaned."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):  # not Linux: the state file's clean-up on the next start remains
        pass


class Service:
    """One supervised child: how to start it, whether it is ready, and its restart backoff."""

    def __init__(self, name: str, make: Callable[[], Child], ready: Callable[[], bool], ready_timeout_s: float,
                 dependents: tuple[str, ...] = ()) -> None:
        self.name, self.make, self.ready, self.ready_timeout_s = name, make, ready, ready_timeout_s
        self.dependents = dependents
        self.child: Child | None = None
        self.started_at = 0.0
        self.backoff_s = 0.0  # the first restart is immediate
        self.restart_at: float | None = None
        self.restarts = 0
        self.preexec: Callable[[], None] | None = _die_with_parent

    def start(self, stopping: Callable[[], bool]) -> None:
        if self.child is not None and self.child.adopted is not None:
            self.wait_adopted(stopping)
        if self.child is None:  # not adopted, or the adopted one died
            self.spawn()
        self.wait_ready(stopping)

    def wait_adopted(self, stopping: Callable[[], bool]) -> None:
        """An adopted child: wait until it is ready. If it dies meanwhile (a kill during the take-over), forget it:
        the caller starts a new one, as the supervision loop would, instead of failing the whole start."""
        child = self.child
        assert child is not None
        wait_until(lambda: self.ready() or stopping() or not child.alive(), self.ready_timeout_s, self.name)
        if not child.alive():
            log.warning("%s died while being adopted: starting a new one", self.name)
            self.stop(timeout_s=1)

    def spawn(self) -> None:
        self.child = self.make()
        self.child.start(preexec=self.preexec)
        self.started_at = time.monotonic()

    def adopt(self, child: Child) -> None:
        self.child = child
        self.started_at = time.monotonic()

    def wait_ready(self, stopping: Callable[[], bool]) -> None:
        assert self.child is not None
        wait_until(lambda: self.ready() or stopping(), self.ready_timeout_s, self.name, self.child.alive,
                   None if self.child.adopted else self.child.log_path)  # an adopted child's output is not ours

    def alive(self) -> bool:
        return self.child is not None and self.child.alive()

    def stop(self, timeout_s: float = 20.0) -> None:
        if self.child is not None:
            self.child.stop(timeout_s)
            self.child = None

    def schedule_restart(self, now: float) -> float:
        """Back off: at once the first time, then 1 s doubling to 30 s while it keeps dying young; at once again
        after a minute of running."""
        if now - self.started_at > STABLE_S:
            self.backoff_s = 0.0
        delay = self.backoff_s
        self.backoff_s = min(BACKOFF_MAX_S, max(BACKOFF_MIN_S, self.backoff_s * 2))
        self.restart_at = now + delay
        return delay


class Supervisor:
    """Starts the services in order, keeps them running, and stops them in reverse order."""

    def __init__(self, settings: Settings, *, address: str | None = None, demo: bool = False,
                 app: bool = False) -> None:
        self.settings = absolute_settings(settings)
        self.address = address or self.settings.serving.ray_address
        self.run_id = uuid.uuid4().hex
        self.ray_dir = ray_temp_dir(self.settings)
        # Our own Ray instance's token (a cluster we join uses its operator's, from the environment).
        self.ray_token = ensure_ray_token(self.settings.home) if self.address is None else None
        self.ray_address: str | None = self.address
        self.services: dict[str, Service] = {}
        self._stop = threading.Event()
        self.store: Any = None
        self._demo, self._app = demo, app
        self.events: list[tuple[float, str, str]] = []  # (time, service, "died"/"restarted"): for tests and logs
        self.monitoring: Any = None  # the monitoring job's MonitorSchedule (monitoring.interval_s > 0)
        self.retraining: Any = None  # serving/retrain_runner.RetrainRunner: requested retrains, one at a time
        self.heartbeat = Heartbeat(heartbeat_path(self.settings.home))
        self.adopted: dict[str, Child] = {}
        self._taken_over = False

    # ---- children ----------------------------------------------------------------------------------
    def child_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("XSCREEN_")}
        env.update(settings_env(self.settings))
        env[RUN_ID_ENV] = self.run_id
        env.update(RAY_SERVE_ENV)
        if self.ray_token is not None:
            env["RAY_AUTH_TOKEN_PATH"] = str(self.ray_token)
            env.pop("RAY_AUTH_TOKEN", None)  # it would win over the file
        return env

    def _owner(self) -> Child:
        argv = [sys.executable, "-c", "from store.owner import run_owner; from xscreen.settings import "
                "load_settings; run_owner(load_settings())"]
        return Child("store owner", self._guarded("owner", argv), self.settings.logs_dir / "store-owner.log",
                     self.child_env())

    def _ray_head(self) -> Child:
        s = self.settings
        port = free_port(s.network.host)
        self.ray_address = f"{s.network.host}:{port}"
        argv = [sys.executable, "-c", "import sys; from ray.scripts.scripts import main; sys.exit(main())",
                "start", "--head", "--block", "--port", str(port), "--node-ip-address", s.network.host,
                "--include-dashboard", "false", "--disable-usage-stats", "--temp-dir", str(self.ray_dir),
                # Its only job is to forward worker logs to drivers, and ours join with log_to_driver=False: one
                # Python process less competing for 2 cores while Ray and Serve start (and restart).
                "--include-log-monitor", "false"]
        if s.serving.ray_num_cpus:
            argv += ["--num-cpus", str(s.serving.ray_num_cpus)]
        return Child("Ray head", self._guarded("ray", argv), s.logs_dir / "ray-head.log", self.child_env())

    def _worker(self) -> Child:
        assert self.ray_address is not None
        argv = [sys.executable, "-m", "serving.worker", "--address", self.ray_address]
        if "ray" not in self.services:
            argv.append("--cluster")  # someone else's cluster: joined as it is, never stopped
        return Child("serving worker", self._guarded("worker", argv), self.settings.logs_dir / "serving-worker.log",
                     self.child_env())

    def _streamlit(self) -> Child:
        s = self.settings
        app_file = Path(__file__).resolve().parents[1] / "dashboard.py"  # the checkout's app.py + cookie routes
        return Child("dashboard", self._guarded("app", dashboard_argv(s, app_file)), s.logs_dir / "streamlit.log",
                     self.child_env())

    def _guarded(self, key: str, argv: list[str]) -> list[str]:
        """The child's command with its orphan guard (none with orphan_exit_s = 0: PR_SET_PDEATHSIG instead)."""
        limit = self.settings.serving.orphan_exit_s
        if not limit:
            return argv
        return guarded(argv, self.heartbeat.path, limit + ORPHAN_ORDER_S[key], sweep_run=key == "owner")

    def _define_services(self) -> None:
        from serving.parts import _http_ok
        from store.client import owner_is_up

        s = self.settings
        net = s.network
        self.services["owner"] = Service("store owner", self._owner, lambda: owner_is_up(s.store_url), 120)
        if self.address is None:  # our own Ray instance; with --address the cluster is someone else's
            self.services["ray"] = Service(
                "Ray head", self._ray_head,
                lambda: self.ray_address is not None and port_open(net.host, int(self.ray_address.rsplit(":", 1)[1])),
                60, dependents=("worker",))
        # Ready once the watcher answers /health (it starts after Serve answered its first call).
        self.services["worker"] = Service(
            "serving worker", self._worker, lambda: _http_ok(f"http://{net.host}:{net.metrics_port}/health"), 240)
        if self._demo and self._app:
            self.services["app"] = Service("dashboard", self._streamlit,
                                           lambda: _http_ok(f"{s.app_url}/_stcore/health"), 90)
        for svc in self.services.values():
            svc.preexec = None if s.serving.orphan_exit_s else _die_with_parent
        for key, child in self.adopted.items():
            self.services[key].adopt(child)

    def fingerprint(self) -> str:
        """What this run is started with: an earlier run's children are adopted only when it is the same."""
        what = {"settings": settings_env(self.settings), "address": self.address, "demo": self._demo,
                "app": self._app}
        return hashlib.sha256(json.dumps(what, sort_keys=True).encode()).hexdigest()[:16]

    def take_over(self) -> str | None:
        """Before the ports are checked: adopt the live children of this home's earlier, dead supervisor when they
        were started with the same settings, or end them all (ConfigError if it is still alive). A console line."""
        if self._taken_over:
            return None
        self._taken_over = True
        state = previous_run(self.settings)
        if state is None:
            return None
        same = state.fingerprint == self.fingerprint() and self.settings.serving.orphan_exit_s > 0
        live = live_children(state) if same else {}
        kept = dict(live)
        if "ray" in state.children and "ray" not in kept:
            kept.pop("worker", None)  # its Ray connection died with the Ray head: both start again
        if not kept:
            return end_run(self.settings, state)
        self.heartbeat.start()  # at once: the adopted children's guards are counting the silence
        self.run_id, self.ray_address = state.run_id, state.ray_address
        self.adopted = {k: Child.adopt(SERVICE_NAMES[k], pid, state.children_started[k]) for k, pid in kept.items()}
        for key in live.keys() - kept.keys():
            Child.adopt(SERVICE_NAMES[key], live[key], state.children_started[key]).stop(timeout_s=5)
        if "ray" in state.children and "ray" not in kept:  # a dead Ray head's helpers and folder
            kill_run(self.run_id, keep_groups=frozenset(kept.values()))
            shutil.rmtree(self.ray_dir, ignore_errors=True)
        return (f"adopted        {', '.join(SERVICE_NAMES[k] for k in kept)} of the run of supervisor pid "
                f"{state.pid} (still serving)")

    def held_ports(self) -> frozenset[str]:
        """Port settings that adopted children already hold (not checked as free before the start)."""
        return frozenset(PORTS[k] for k in self.adopted)

    # ---- life cycle --------------------------------------------------------------------------------
    def start(self, say: Callable[[str], None] = log.info, prepare: Callable[[Any], None] | None = None) -> None:
        """Start every service in order (prepare(store client) runs once the owner answers)."""
        from serving.parts import ensure_champion, store_client

        line = self.take_over()
        if line:
            say(line)
        self.heartbeat.start()
        self._define_services()
        self._write_state()
        s = self.settings
        self._start("owner")
        say(f"store owner      {s.store_url}  (database {s.db_path}, log {s.logs_dir / 'store-owner.log'})")
        self.store = store_client(s)
        if not self.adopted:  # an adopted run, started with these settings, already has its model and users (and
            if prepare is not None:  # importing torch to check would cost a restart ~5 s on 2 busy cores)
                prepare(self.store)
            version = ensure_champion(s)
            if version:
                say(f"model            {version} (bundled model registered as champion)")
        say("starting Ray and the serving worker (Ray Serve deploys in 10-30 s) ...")
        self._start_ray_and_worker()
        if "ray" in self.services:
            say(f"Ray head         {self.ray_address}  (temp {self.ray_dir}, log {s.logs_dir / 'ray-head.log'})")
        say(f"Ray Serve API    {s.api_url}/v1  (/healthz, /metrics, /docs)")
        say(f"watcher          {s.inbox_dir}/<scanner-id>/  (health and metrics http://{s.network.host}:"
            f"{s.network.metrics_port}/health, /metrics; log {s.logs_dir / 'serving-worker.log'})")
        if "app" in self.services:
            self._start("app")
            say(f"dashboard        {s.app_url}")
        self._start_monitoring(say)
        self._start_retraining(say)

    def _start_monitoring(self, say: Callable[[str], None]) -> None:
        """The monitoring job in a thread of the supervisor, against the owner's client (off at interval 0)."""
        interval = self.settings.monitoring.interval_s
        from serving.monitor_status import status_path

        status_path(self.settings.home).unlink(missing_ok=True)  # a killed run's: not this run's schedule
        if interval > 0:
            from serving.monitor_job import MonitorSchedule  # statistics libraries only when monitoring runs

            self.monitoring = MonitorSchedule(self.settings, lambda: self.store, interval)
            self.monitoring.start()
            say(f"monitoring       every {interval:g} s (`xscreen monitor` runs it now)")

    def _start_retraining(self, say: Callable[[str], None]) -> None:
        """Retrains asked for on the Models page or by alerts (monitoring.retrain_on), run one at a time as child
        processes (serving/retrain_runner.py), against the owner's client."""
        from serving.retrain_runner import RetrainRunner

        self.retraining = RetrainRunner(self.settings, lambda: self.store, self.child_env())
        self.retraining.start()
        kinds = ", ".join(self.settings.monitoring.retrain_on) or "no alert kind"
        say(f"retraining       on request (the Models page; {kinds}), logs {self.settings.logs_dir}/retrain-NAME.log")

    def _start_ray_and_worker(self) -> None:
        """Ray head and worker are spawned together: the worker imports torch and the rest while Ray starts, and
        joins it once its GCS port answers (the worker waits for it)."""
        if self._stop.is_set():
            raise KeyboardInterrupt
        ray, worker = self.services.get("ray"), self.services["worker"]
        for svc in (ray, worker):
            if svc is not None and svc.child is not None and svc.child.adopted is not None:
                svc.wait_adopted(self._stop.is_set)
        if ray is not None and ray.child is None and worker.child is not None:
            worker.stop(timeout_s=0.2)  # an adopted Ray head died: its worker's connection died with it
        for svc in (ray, worker):
            if svc is not None and svc.child is None:  # not adopted, or the adopted one died
                svc.spawn()
        self._write_state()
        try:
            if ray is not None:
                ray.wait_ready(self._stop.is_set)
            worker.wait_ready(self._stop.is_set)
        finally:
            self._write_state()
        if self._stop.is_set():
            raise KeyboardInterrupt

    def _start(self, key: str) -> None:
        if self._stop.is_set():
            raise KeyboardInterrupt
        self.services[key].start(self._stop.is_set)
        self._write_state()
        if self._stop.is_set():
            raise KeyboardInterrupt

    def request_stop(self) -> None:
        self._stop.set()

    def run(self, poll_s: float = 0.5) -> None:
        """Supervise until request_stop(): restart each dead service after its backoff (its dependents too)."""
        while not self._stop.wait(poll_s):
            self.check_once()

    def check_once(self) -> None:
        now = time.monotonic()
        for key, svc in self.services.items():
            if svc.child is not None and not svc.alive():
                delay = svc.schedule_restart(now)
                code = svc.child.returncode
                log.error("%s exited (status %s); restarting in %.0f s", svc.name, code, delay)
                self.events.append((time.time(), svc.name, "died"))
                svc.stop(timeout_s=3)
                for dep in svc.dependents:  # the worker's Ray connection died with the Ray head: no drain to wait
                    dependent = self.services[dep]  # for (its files stay in the inbox for the catch-up, and a kill
                    if dependent.child is not None:  # -9 of the worker is a kill round of its own), so no 2 s wait
                        dependent.stop(timeout_s=0.2)
                        dependent.restart_at = now + delay
            if svc.child is None and svc.restart_at is not None and now >= svc.restart_at:
                if key == "worker" and "ray" in self.services and self.services["ray"].child is None:
                    continue  # Ray restarts first and brings the worker with it
                self._restart(key, svc)

    def _restart(self, key: str, svc: Service) -> None:
        together = [svc]
        if key == "ray":
            shutil.rmtree(self.ray_dir, ignore_errors=True)  # the dead instance's sessions: ours, never another's
            worker = self.services["worker"]
            if worker.child is None:
                together.append(worker)  # spawned alongside: it waits for the GCS port
        try:
            for one in together:
                one.spawn()
            self._write_state()
            for one in together:
                one.wait_ready(self._stop.is_set)
        except Exception as exc:  # noqa: BLE001 -- it failed to come up: try again after a longer wait
            log.error("restarting %s failed: %s", svc.name, exc)
            for one in together:
                one.stop(timeout_s=5)
                one.schedule_restart(time.monotonic())
            return
        for one in together:
            one.restart_at = None
            one.restarts += 1
            self.events.append((time.time(), one.name, "restarted"))
            log.warning("%s restarted (restart %d)", one.name, one.restarts)
        self._write_state()

    def stop(self) -> None:
        """Reverse order: dashboard, serving worker (drains its batch in flight), Ray, spool drain, owner."""
        self._stop.set()
        steps: list[tuple[str, Callable[[], None]]] = [
            ("dashboard", lambda: self._stop_service("app")),
            ("serving worker", lambda: self._stop_service("worker", 30)),
            ("monitoring", lambda: self.monitoring.stop() if self.monitoring is not None else None),
            ("retraining", lambda: self.retraining.stop() if self.retraining is not None else None),
            ("Ray head", self._stop_ray),
            ("spool drain", self._drain_spool),
            ("store owner", self._stop_owner),
            ("leftovers", self._kill_leftovers),
        ]
        for name, step in steps:
            try:
                step()
            except Exception:
                log.exception("stopping %s failed", name)
        state_path(self.settings).unlink(missing_ok=True)
        self.heartbeat.stop()

    def _kill_leftovers(self) -> None:
        """Anything still carrying our run id (a Ray worker that escaped its process group) is ours to end."""
        left = kill_run(self.run_id, grace_s=3)
        if left:
            log.warning("%d process(es) of this run needed SIGKILL", left)

    def _stop_service(self, key: str, timeout_s: float = 15.0) -> None:
        svc = self.services.get(key)
        if svc is not None:
            svc.restart_at = None
            svc.stop(timeout_s)

    def _stop_ray(self) -> None:
        self._stop_service("ray", 20)
        if "ray" in self.services:
            shutil.rmtree(self.ray_dir, ignore_errors=True)

    def _drain_spool(self) -> None:
        owner = self.services.get("owner")
        if owner is not None and owner.alive():
            drain_spool(self.settings.spool_dir)

    def _stop_owner(self) -> None:
        if self.store is not None:
            self.store.close()
            self.store = None
        self._stop_service("owner")

    def _write_state(self) -> None:
        children = {k: svc.child.pid for k, svc in self.services.items()
                    if svc.child is not None and svc.child.pid is not None}
        ticks = {k: started(pid) or 0 for k, pid in children.items()}
        state = RunState(os.getpid(), self.run_id, started(os.getpid()) or 0,
                         str(self.ray_dir) if "ray" in self.services else None, self.ray_address, children,
                         ticks, self.fingerprint())
        path = state_path(self.settings)
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic.write_text(path, json.dumps(state.__dict__))


__all__ = ["Service", "Supervisor"]
