"""The serving stack's parts and one-process assembly: settings for children, the production ingest, watcher
and housekeeping, health and metrics helpers, `Child` (a supervised process) and `Stack`.

`Stack` runs the stack inside one process: store owner (child process) -> Ray + Serve app -> ingest + watcher
(+ metrics/health port); stop runs in reverse, the watcher's in-flight batch is spooled and the spool drained
before the owner stops. The serving worker (serving/worker.py) is a Stack joined to the supervisor's Ray head;
tests and bench/bench_serving.py use it whole. `xscreen serve` itself is serving/supervisor.py.
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

from serving.health import PipelineHealth
from serving.housekeeping import Housekeeper, clean_spool_temp, expire_archive
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
    """The production ingest: xray reader, durable spool, the store's known hashes, metrics and health."""
    from analytics.spool import SpoolWriter

    metrics = ServingMetrics()
    health = PipelineHealth(stall_after_s=settings.serving.stall_alert_s)
    ingest = Ingest.from_settings(settings, score=score, spool_write=SpoolWriter(settings.spool_dir).write,
                                  known_hashes=store.known_hashes, shadow_score=shadow, on_batch=metrics.observe,
                                  health=health)
    metrics.track_health(health)
    return ingest, metrics


def make_watcher(settings: Settings, handler: Any) -> Watcher:
    """The scanner-folder watcher with the serving settings (batching, size-stable rule, retry backoff)."""
    s = settings.serving
    return Watcher(settings.inbox_dir, handler, batch_max=s.source_batch_max, size_stable_s=s.size_stable_s,
                   move_pairing_s=s.move_pairing_s, retry_base_s=s.retry_base_s, retry_max_s=s.retry_max_s,
                   ignored_after_s=s.ignored_after_s)


def ensure_champion(settings: Settings) -> str | None:
    """On a home without a champion, register the bundled model (when it fits the settings) so `xscreen serve`
    starts on a fresh home; returns its version, or None when nothing was needed (or nothing fits)."""
    from screening import registry
    from screening.train import register_bundled
    from xscreen.errors import NotFoundError

    if settings.model.name != "champion":
        return None
    try:
        registry.resolve(settings, "champion")
        return None
    except NotFoundError:
        record = register_bundled(settings)
    return record.version if record is not None else None


def make_housekeeper(settings: Settings, ingest: Ingest, expire_every_s: float = 600.0) -> Housekeeper:
    """Every 2 s: rescore quarantined files their writer completed; every 10 min: archive retention, spool temps."""
    from analytics.records import utcnow

    last = [0.0]

    def slow_tasks() -> None:
        if time.monotonic() - last[0] >= expire_every_s:
            last[0] = time.monotonic()
            expire_archive(settings.archive_dir, settings.serving.archive_retention_days, utcnow())
            clean_spool_temp(settings.spool_dir)

    return Housekeeper([ingest.rechecks.run, slow_tasks])


def start_simulator(settings: Settings, stop: threading.Event) -> tuple[threading.Thread | None, str]:
    """The demo's scanner simulator in a daemon thread until `stop` is set; (thread, console line)."""
    try:
        from xray.simulate import run_simulator
    except ImportError as exc:
        return None, f"simulator        skipped: xray.simulate is not available ({exc})"
    sim = settings.simulator
    # A fresh stream on every start: the same seed would replay identical parcels, which the ingest
    # rightly recognises as re-deliveries, and a restarted demo would show nothing new.
    seed = settings.model.seed + int(time.time())

    def run() -> None:
        try:
            run_simulator(settings.inbox_dir, rate=sim.rate, scanners=sim.scanners, scenario=sim.scenario,
                          duration=None, seed=seed, classes=settings.model.classes,
                          threat_rate=sim.threat_rate, stop_event=stop)
        except Exception:
            log.exception("scanner simulator stopped with an error")

    thread = threading.Thread(target=run, name="xscreen-simulator", daemon=True)
    thread.start()
    return thread, f"simulator        {sim.scanners} scanner(s) at {sim.rate:g} scans/s, scenario {sim.scenario!r}"


def watcher_health(settings: Settings) -> dict[str, Any]:
    """The watcher process's health report; "degraded" naming it when it does not answer."""
    try:
        return dict(httpx.get(f"http://{settings.network.host}:{settings.network.metrics_port}/health",
                              timeout=1.0).json())
    except (httpx.HTTPError, ValueError):
        return {"status": "degraded", "reasons": ["the scanner-folder watcher does not answer (restarting?)"]}


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

    def start(self, preexec: Callable[[], None] | None = None) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log_file:
            # Own session: a terminal Ctrl-C reaches only us, and we stop children in the right order.
            self.proc = subprocess.Popen(self.argv, stdout=log_file, stderr=subprocess.STDOUT, env=self.env,
                                         start_new_session=True, preexec_fn=preexec)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout_s: float = 15.0) -> None:
        """SIGTERM the group, wait, then SIGKILL; always reaps. Whatever is left of the group once its leader has
        exited (a helper the leader started) is killed too, so no port stays held."""
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
        _signal_group(self.proc.pid, signal.SIGKILL)  # the group outlives its leader only by our mistake
        self.proc = None


def _signal_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        pass


class Stack:
    """The serve/demo stack. Each start_* returns a line for the console; stop() undoes whatever started."""

    def __init__(self, settings: Settings, address: str | None = None, *, own_ray: bool = False) -> None:
        logging.getLogger("httpx").setLevel(logging.WARNING)  # one INFO line per store call otherwise
        self.settings = absolute_settings(settings)
        self.address = address
        self.own_ray = own_ray  # `address` is the supervisor's own Ray head: loopback hook, but never shut it down
        self.owner: Child | None = None
        self.watcher: Watcher | None = None
        self.housekeeper: Housekeeper | None = None
        self.metrics_server: Any = None
        self.store: Any = None
        self.ray_started = False
        self.classifier: Any = None
        self.score: ScoreFn | None = None
        self.shadow_score: ScoreFn | None = None
        self.ingest: Ingest | None = None

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

    def start_serving(self, after_ray_init: Callable[[], None] | None = None) -> str:
        from serving import deployments

        s = self.settings
        ensure_champion(s)
        # Resolve the models first: a missing champion is a one-line error before Ray spends 10-20 s starting.
        model = deployments.resolve_model(s, s.model.name)
        shadow_model = deployments.resolve_model(s, s.serving.shadow_model) if s.serving.shadow_model else None
        deployments.start_ray(s, self.address, own=self.own_ray)
        self.ray_started = True
        if after_ray_init is not None:
            after_ray_init()
        deployments.start_serve(s)
        self.classifier = deployments.ensure_deployed(s, model, shadow_model)
        timeout = s.serving.score_timeout_s
        self.score = deployments.handle_scorer(self.classifier, timeout)
        shadow = self.settings.serving.shadow_model
        self.shadow_score = deployments.handle_scorer(deployments.shadow_handle(), timeout) if shadow else None
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
        clean_spool_temp(s.spool_dir, older_than_s=60.0)  # a writer that died mid-write left these behind
        self.housekeeper = make_housekeeper(s, ingest)
        self.housekeeper.start()
        self.watcher = make_watcher(s, ingest)
        metrics.track_backlog(self.watcher.pending)
        ingest.health.track_backlog(self.watcher.pending)
        self.metrics_server = metrics.serve(s.network.host, s.network.metrics_port,
                                            health=lambda: ingest.health.report().as_dict())
        self.watcher.start()
        return f"watcher          {s.inbox_dir}/<scanner-id>/  (metrics http://{s.network.host}:{s.network.metrics_port}/metrics)"

    def worker_problem(self) -> str | None:
        """Why this process can no longer screen (a dead watcher thread), or None."""
        if self.watcher is not None and not self.watcher.alive():
            return "a thread of the scanner-folder watcher died"
        return None

    def stop_worker(self) -> None:
        """The serving worker's part of stop(): the watcher (its batch in flight is spooled), then leave Ray."""
        for name, step in (("watcher", self._stop_watcher), ("Ray", self._stop_ray)):
            try:
                step()
            except Exception:
                log.exception("stopping %s failed", name)
        if self.store is not None:
            self.store.close()
            self.store = None

    # ---- stop --------------------------------------------------------------------------------------
    def stop(self) -> None:
        """Reverse order; each step runs even if an earlier one failed."""
        steps: list[tuple[str, Callable[[], None]]] = [
            ("watcher", self._stop_watcher),
            ("Ray Serve", self._stop_ray),
            ("spool drain", self._drain_spool),
            ("store owner", self._stop_owner),
        ]
        for name, step in steps:
            try:
                step()
            except Exception:
                log.exception("stopping %s failed", name)

    def stop_watcher(self) -> None:
        """Stop the watcher and its metrics port (start_watcher starts them again, reconciling first)."""
        self._stop_watcher()

    def _stop_watcher(self) -> None:
        if self.housekeeper is not None:
            self.housekeeper.stop()
            self.housekeeper = None
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

            if self.address or self.settings.serving.ray_address:
                deployments.disconnect()  # a cluster (or the supervisor's Ray head) is not ours to stop
            else:
                deployments.shutdown()
            self.ray_started = False

    def _drain_spool(self) -> None:
        if self.owner is not None and self.owner.alive():
            drain_spool(self.settings.spool_dir)

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


def drain_spool(spool_dir: Path, timeout_s: float = 30.0) -> None:
    """Wait for the (running) owner to commit every spooled batch before it is stopped; leftovers are ingested
    on its next start."""
    from analytics.spool import spool_files

    deadline = time.monotonic() + timeout_s
    while spool_files(spool_dir) and time.monotonic() < deadline:
        time.sleep(0.1)
    left = len(spool_files(spool_dir))
    if left:
        log.warning("%d spool file(s) not yet committed; the owner ingests them on its next start", left)


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
    if not settings.serving.api_auth:
        log.warning("serving.api_auth is off: anyone who can reach %s may post scans, read the queue and record "
                    "decisions under any name", settings.api_url)
    if settings.network.host not in ("127.0.0.1", "localhost", "::1"):
        log.warning("network.host is %s: the API and store owner are reachable from other machines",
                    settings.network.host)


__all__ = ["Child", "Stack", "absolute_settings", "make_ingest", "preflight", "settings_env",
           "store_client", "watcher_metrics"]
