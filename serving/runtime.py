"""Process supervisor of `xscreen serve` / `xscreen demo`: starts the stack in order and stops it cleanly.

Order: store owner (child process) -> Ray + Serve app -> ingest + watcher (+ metrics port) in this process ->
[demo] scanner simulator thread + Streamlit (child process). Stop runs in reverse: simulator, watcher (its
in-flight batch finishes and is spooled), Serve/Ray, Streamlit, then the owner after the spool has drained,
so no verdict is left uncommitted. Children run in their own process groups and are always reaped.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from serving.ingest import Ingest, ScoreFn
from serving.metrics import ServingMetrics
from serving.watcher import Watcher
from xscreen.errors import StoreUnavailable
from xscreen.settings import Settings, iter_setting_docs

log = logging.getLogger(__name__)


def absolute_settings(settings: Settings) -> Settings:
    """A copy whose home and paths are absolute, so child processes and Ray workers agree on every folder."""
    data = settings.model_dump()
    data["home"] = Path(settings.home).resolve()
    data["paths"] = {k: (Path(v).resolve() if v is not None else None) for k, v in data["paths"].items()}
    return Settings.model_validate(data)


def settings_env(settings: Settings) -> dict[str, str]:
    """XSCREEN_* variables that rebuild `settings` in a child process (None values are the defaults)."""
    import json

    env: dict[str, str] = {}
    dumped = settings.model_dump(mode="json")
    for dotted, _default, _doc in iter_setting_docs():
        value: Any = dumped
        for part in dotted.split("."):
            value = value[part]
        if value is None:
            continue
        key = "XSCREEN_" + dotted.upper().replace(".", "__")
        env[key] = value if isinstance(value, str) else json.dumps(value)
    return env


def store_client(settings: Settings) -> Any:
    from analytics.client import StoreClient

    return StoreClient.from_settings(settings, timeout_s=30.0)


def make_ingest(settings: Settings, score: ScoreFn, shadow: ScoreFn | None, store: Any) -> tuple[Ingest, ServingMetrics]:
    """The production ingest: xray reader, durable spool, the store's known hashes, metrics on every batch."""
    from analytics.spool import SpoolWriter

    metrics = ServingMetrics()
    ingest = Ingest.from_settings(settings, score=score, spool_write=SpoolWriter(settings.spool_dir).write,
                                  known_hashes=store.known_hashes, shadow_score=shadow, on_batch=metrics.observe)
    return ingest, metrics


def watcher_metrics(settings: Settings) -> bytes:
    """The watcher process's metrics page (re-exported by the ingress); empty when it is not running."""
    try:
        return httpx.get(f"http://{settings.network.host}:{settings.network.metrics_port}/metrics", timeout=1.0).content
    except httpx.HTTPError:
        return b""


def wait_until(check: Callable[[], bool], timeout_s: float, what: str, alive: Callable[[], bool] = lambda: True) -> None:
    """Poll `check` until true; StoreUnavailable naming `what` on timeout or when `alive` turns false."""
    deadline = time.monotonic() + timeout_s
    while not check():
        if not alive():
            raise StoreUnavailable(f"{what} exited during start-up (see its log)")
        if time.monotonic() > deadline:
            raise StoreUnavailable(f"{what} did not come up within {timeout_s:.0f} s")
        time.sleep(0.1)


class Child:
    """A supervised child process with its own process group and a log file under settings.logs_dir."""

    def __init__(self, name: str, argv: list[str], log_path: Path, env: dict[str, str]) -> None:
        self.name, self.argv, self.log_path, self.env = name, argv, log_path, env
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log_file:
            # Own session: a terminal Ctrl-C reaches only us, and we stop children in the right order.
            self.proc = subprocess.Popen(self.argv, stdout=log_file, stderr=subprocess.STDOUT, env=self.env,
                                         start_new_session=True)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout_s: float = 15.0) -> None:
        """SIGTERM the group, wait, then SIGKILL; always reaps."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            _signal_group(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                log.warning("%s did not stop in %.0f s: killing it", self.name, timeout_s)
                _signal_group(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        self.proc = None


def _signal_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        pass


class Stack:
    """The serve/demo stack. Each start_* returns a line for the console; stop() undoes whatever started."""

    def __init__(self, settings: Settings, address: str | None = None) -> None:
        logging.getLogger("httpx").setLevel(logging.WARNING)  # one INFO line per store call otherwise
        self.settings = absolute_settings(settings)
        self.address = address
        self.owner: Child | None = None
        self.app: Child | None = None
        self.watcher: Watcher | None = None
        self.metrics_server: Any = None
        self.store: Any = None
        self.ray_started = False
        self.classifier: Any = None
        self.score: ScoreFn | None = None
        self.shadow_score: ScoreFn | None = None
        self.ingest: Ingest | None = None
        self._sim_stop = threading.Event()
        self._sim_thread: threading.Thread | None = None

    def child_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("XSCREEN_")}
        env.update(settings_env(self.settings))
        return env

    # ---- start -------------------------------------------------------------------------------------
    def start_owner(self) -> str:
        from analytics.client import owner_is_up

        s = self.settings
        argv = [sys.executable, "-c", "from analytics.owner import run_owner; from xscreen.settings import "
                "load_settings; run_owner(load_settings())"]
        self.owner = Child("store owner", argv, s.logs_dir / "store-owner.log", self.child_env())
        self.owner.start()
        wait_until(lambda: owner_is_up(s.store_url), 60, "store owner", self.owner.alive)
        self.store = store_client(s)
        return f"store owner      {s.store_url}  (database {s.db_path}, log {self.owner.log_path})"

    def start_serving(self) -> str:
        from serving import deployments

        s = self.settings
        # Resolve the models first: a missing champion is a one-line error before Ray spends 10-20 s starting.
        model = deployments.resolve_model(s, s.model.name)
        shadow_model = deployments.resolve_model(s, s.serving.shadow_model) if s.serving.shadow_model else None
        deployments.start_ray(s, self.address)
        self.ray_started = True
        deployments.start_serve(s)
        self.classifier = deployments.deploy(s, model, shadow_model)
        self.score = deployments.handle_scorer(self.classifier)
        shadow = self.settings.serving.shadow_model
        self.shadow_score = deployments.handle_scorer(deployments.shadow_handle()) if shadow else None
        info = self.classifier.info.remote().result(timeout_s=60)
        return (f"Ray Serve API    {self.settings.api_url}/v1  (model {info['model_version']} on {info['device']}; "
                f"/healthz, /metrics, /docs)")

    def start_watcher(self, score: ScoreFn | None = None, shadow: ScoreFn | None = None) -> str:
        s = self.settings
        scorer = score or self.score
        if scorer is None:
            raise RuntimeError("start_serving() (or an explicit score function) must come before start_watcher()")
        ingest, metrics = make_ingest(s, scorer, shadow or self.shadow_score, self.store)
        self.ingest = ingest
        self.watcher = Watcher(s.inbox_dir, ingest, batch_max=s.serving.source_batch_max,
                               size_stable_s=s.serving.size_stable_s, move_pairing_s=s.serving.move_pairing_s)
        metrics.track_backlog(self.watcher.backlog)
        self.metrics_server = metrics.serve(s.network.host, s.network.metrics_port)
        self.watcher.start()
        return f"watcher          {s.inbox_dir}/<scanner-id>/  (metrics http://{s.network.host}:{s.network.metrics_port}/metrics)"

    def start_simulator(self) -> str:
        try:
            from xray.simulate import run_simulator
        except ImportError as exc:
            return f"simulator        skipped: xray.simulate is not available ({exc})"
        sim = self.settings.simulator
        # A fresh stream on every start: the same seed would replay identical parcels, which the ingest
        # rightly recognises as re-deliveries, and a restarted demo would show nothing new.
        seed = self.settings.model.seed + int(time.time())

        def run() -> None:
            try:
                run_simulator(self.settings.inbox_dir, rate=sim.rate, scanners=sim.scanners, scenario=sim.scenario,
                              duration=None, seed=seed, classes=self.settings.model.classes,
                              threat_rate=sim.threat_rate, stop_event=self._sim_stop)
            except Exception:
                log.exception("scanner simulator stopped with an error")

        self._sim_thread = threading.Thread(target=run, name="xscreen-simulator", daemon=True)
        self._sim_thread.start()
        return f"simulator        {sim.scanners} scanner(s) at {sim.rate:g} scans/s, scenario {sim.scenario!r}"

    def start_app(self, app_file: Path | None = None) -> str:
        s = self.settings
        app_file = app_file or Path(__file__).resolve().parents[1] / "dashboard.py"  # app.py + the cookie routes
        if not app_file.is_file():
            return f"dashboard        skipped: {app_file} does not exist yet"
        self.app = Child("dashboard", dashboard_argv(s, app_file), s.logs_dir / "streamlit.log", self.child_env())
        self.app.start()
        wait_until(lambda: _http_ok(f"{s.app_url}/_stcore/health"), 60, "Streamlit dashboard", self.app.alive)
        return f"dashboard        {s.app_url}"

    def check_children(self) -> str | None:
        """Name of a child that died unexpectedly, if any."""
        for child in (self.owner, self.app):
            if child is not None and child.proc is not None and not child.alive():
                return child.name
        return None

    # ---- stop --------------------------------------------------------------------------------------
    def stop(self) -> None:
        """Reverse order; each step runs even if an earlier one failed."""
        steps: list[tuple[str, Callable[[], None]]] = [
            ("simulator", self._stop_simulator),
            ("watcher", self._stop_watcher),
            ("Ray Serve", self._stop_ray),
            ("dashboard", lambda: self.app.stop() if self.app else None),
            ("spool drain", self._drain_spool),
            ("store owner", self._stop_owner),
        ]
        for name, step in steps:
            try:
                step()
            except Exception:
                log.exception("stopping %s failed", name)

    def _stop_simulator(self) -> None:
        self._sim_stop.set()
        if self._sim_thread is not None:
            self._sim_thread.join(15)

    def stop_watcher(self) -> None:
        """Stop the watcher and its metrics port (start_watcher starts them again, reconciling first)."""
        self._stop_watcher()

    def _stop_watcher(self) -> None:
        if self.watcher is not None:
            self.watcher.stop()
            self.watcher = None
        if self.metrics_server is not None:
            self.metrics_server.shutdown()
            self.metrics_server.server_close()  # release the port: a restarted watcher binds it again
            self.metrics_server = None

    def _stop_ray(self) -> None:
        if self.ray_started:
            from serving import deployments

            deployments.shutdown()
            self.ray_started = False

    def _drain_spool(self, timeout_s: float = 30.0) -> None:
        """Wait for the owner to commit every spooled batch before stopping it (leftovers are ingested next start)."""
        from analytics.spool import spool_files

        if self.owner is None or not self.owner.alive():
            return
        deadline = time.monotonic() + timeout_s
        while spool_files(self.settings.spool_dir) and time.monotonic() < deadline:
            time.sleep(0.1)
        left = len(spool_files(self.settings.spool_dir))
        if left:
            log.warning("%d spool file(s) not yet committed; the owner ingests them on its next start", left)

    def _stop_owner(self) -> None:
        if self.store is not None:
            self.store.close()
            self.store = None
        if self.owner is not None:
            self.owner.stop()
            self.owner = None


def dashboard_argv(settings: Settings, app_file: Path) -> list[str]:
    """The command that starts the Streamlit dashboard. Every option is a flag, because the child may start in
    any folder (the checkout's .streamlit/config.toml applies only when run from the checkout). No file watcher:
    Streamlit would watch the app's folder, which holds var/ with the inbox and the spool, and a stream of scans
    overflowed inotify thousands of times (issue 12)."""
    return [sys.executable, "-m", "streamlit", "run", str(app_file), "--server.address", settings.network.host,
            "--server.port", str(settings.network.app_port), "--server.headless", "true",
            "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none", "--server.runOnSave", "false"]


def _http_ok(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1.0).status_code == 200
    except httpx.HTTPError:
        return False


def preflight(settings: Settings, *, app: bool) -> None:
    """ConfigError before anything starts: ports taken or home not writable."""
    from xscreen.settings import check_port_free, ensure_home

    ensure_home(settings)
    for which in ("api_port", "store_port", "metrics_port", *(("app_port",) if app else ())):
        check_port_free(settings, which)  # type: ignore[arg-type]
    if settings.network.host not in ("127.0.0.1", "localhost", "::1"):
        log.warning("network.host is %s: the API and store owner are reachable from other machines",
                    settings.network.host)


__all__ = ["Child", "Stack", "absolute_settings", "make_ingest", "preflight", "settings_env",
           "store_client", "watcher_metrics"]
