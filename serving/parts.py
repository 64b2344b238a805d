"""The serving stack's parts, without Ray: settings for child processes, the production ingest, watcher and
housekeeping, probes of the watcher process, `Child` (a supervised process), the spool drain and the pre-start
checks. The supervisor (no Ray), the Serve deployments and the one-process `Stack` (serving/runtime.py) are all
built from these.
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
    from store.client import StoreClient

    return StoreClient.from_settings(settings, timeout_s=30.0)


def make_ingest(settings: Settings, score: ScoreFn, shadow: ScoreFn | None, store: Any) -> tuple[Ingest, ServingMetrics]:
    """The production ingest: xray reader, durable spool, the store's known hashes, metrics and health."""
    from serving.canaries import BackgroundCanaries, CanaryFeed
    from store.spool import SpoolWriter

    feed = CanaryFeed.from_settings(settings, score=score, record=store.record_canaries,
                                    record_tips=store.add_officer_tips, list_seizures=store.list_seizures)
    metrics = ServingMetrics()
    health = PipelineHealth(stall_after_s=settings.serving.stall_alert_s)
    ingest = Ingest.from_settings(settings, score=score, spool_write=SpoolWriter(settings.spool_dir).write,
                                  known_hashes=store.known_hashes, record_moves=store.move_images,
                                  shadow_score=shadow, on_batch=metrics.observe, health=health,
                                  canaries=None if feed is None else BackgroundCanaries(feed))
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


def make_housekeeper(settings: Settings, ingest: Ingest, store: Any, expire_every_s: float = 600.0,
                     shadow_every_s: float = 30.0) -> Housekeeper:
    """Every 2 s: rescore quarantined files their writer completed; every 30 s: stop a shadow that has seen
    enough threat items; every 10 min: retention of the archive and of kept uploads (the store is told first
    which images expire), spool temps."""
    from xscreen.records import utcnow

    s = settings.serving

    def forget(folder: Path) -> None:
        store.expire_images(str(folder), reason="retention")

    def retention() -> None:
        expire_archive(settings.archive_dir, s.archive_retention_days, utcnow(), forget)
        expire_archive(settings.uploads_dir, s.archive_retention_days, utcnow(), forget, s.uploads_max_bytes)
        clean_spool_temp(settings.spool_dir)

    shadow_check = Every(shadow_every_s, lambda: store.end_shadow_when_done(s.shadow_threat_items, actor="system",
                                                                             auto_promote=s.auto_promote))
    slow_tasks = Every(expire_every_s, retention)
    return Housekeeper([ingest.rechecks.run, shadow_check, slow_tasks])


class Every:
    """Run `task` when called at most once every `period_s` seconds (a housekeeper task on a slower beat)."""

    def __init__(self, period_s: float, task: Callable[[], Any]) -> None:
        self._period_s = period_s
        self._task = task
        self._last = -float("inf")

    def __call__(self) -> None:
        if time.monotonic() - self._last >= self._period_s:
            self._last = time.monotonic()
            self._task()


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
                          threat_rate=sim.threat_rate, stop_event=stop, formats=sim.formats,
                          scanner_scenarios=sim.scanner_scenarios)
        except Exception:
            log.exception("scanner simulator stopped with an error")

    thread = threading.Thread(target=run, name="xscreen-simulator", daemon=True)
    thread.start()
    drifting = "".join(f", {k} plays {v!r}" for k, v in sim.scanner_scenarios.items())
    return thread, (f"simulator        {sim.scanners} scanner(s) at {sim.rate:g} scans/s, formats "
                    f"{'/'.join(sim.formats)}, scenario {sim.scenario!r}{drifting}")


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


def last_log_line(path: Path | None, limit: int = 300) -> str | None:
    """The last non-empty line of a child's log (for a Python child that died, its exception), or None."""
    if path is None:
        return None
    try:
        with open(path, "rb") as fh:
            fh.seek(max(0, fh.seek(0, os.SEEK_END) - 8192))
            lines = [line.strip() for line in fh.read().decode("utf-8", "replace").splitlines()]
    except OSError:
        return None
    found = next((line for line in reversed(lines) if line), None)
    return found if found is None or len(found) <= limit else found[:limit] + "..."


def wait_until(check: Callable[[], bool], timeout_s: float, what: str, alive: Callable[[], bool] = lambda: True,
               log_path: Path | None = None) -> None:
    """Poll `check` until true; StoreUnavailable naming `what` on timeout or when `alive` turns false (then with
    its log's path and last line, so the reason is on the operator's screen, not only in the file)."""
    deadline = time.monotonic() + timeout_s
    while not check():
        if not alive():
            last = last_log_line(log_path)
            where = f"; its log {log_path}" if log_path is not None else " (see its log)"
            raise StoreUnavailable(f"{what} exited during start-up{where}" + (f" ends: {last}" if last else ""))
        if time.monotonic() > deadline:
            raise StoreUnavailable(f"{what} did not come up within {timeout_s:.0f} s")
        time.sleep(0.1)


class Child:
    """A supervised child process with its own process group and a log file under settings.logs_dir: one this
    supervisor started (`start`), or one an earlier, killed supervisor of the same run started (`adopt`): not our
    child, so it is watched through /proc (pid and start time) instead of waitpid."""

    def __init__(self, name: str, argv: list[str], log_path: Path, env: dict[str, str]) -> None:
        self.name, self.argv, self.log_path, self.env = name, argv, log_path, env
        self.proc: subprocess.Popen[bytes] | None = None
        self.adopted: tuple[int, int] | None = None  # (pid, start time in clock ticks) of an adopted process

    @classmethod
    def adopt(cls, name: str, pid: int, started_ticks: int) -> Child:
        child = cls(name, [], Path(os.devnull), {})
        child.adopted = (pid, started_ticks)
        return child

    def start(self, preexec: Callable[[], None] | None = None) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log_file:
            # Own session: a terminal Ctrl-C reaches only us, and we stop children in the right order.
            self.proc = subprocess.Popen(self.argv, stdout=log_file, stderr=subprocess.STDOUT, env=self.env,
                                         start_new_session=True, preexec_fn=preexec)

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else (self.adopted[0] if self.adopted else None)

    @property
    def returncode(self) -> int | None:
        return self.proc.returncode if self.proc is not None else None  # an adopted process's is its reaper's

    def alive(self) -> bool:
        from serving.runs import alive, started

        if self.adopted is not None:
            pid, ticks = self.adopted
            return alive(pid) and started(pid) == ticks
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout_s: float = 15.0) -> None:
        """SIGTERM the group, wait, then SIGKILL; always reaps. Whatever is left of the group once its leader has
        exited (a helper the leader started) is killed too, so no port stays held."""
        pid = self.pid
        if pid is None:
            return
        if self.alive():
            _signal_group(pid, signal.SIGTERM)
            if not self._wait(timeout_s):
                log.warning("%s did not stop in %.0f s: killing it", self.name, timeout_s)
                _signal_group(pid, signal.SIGKILL)
                self._wait(5)
        if self.alive() or self.proc is not None:  # an adopted leader gone: its pid (= pgid) may be reused
            _signal_group(pid, signal.SIGKILL)  # the group outlives its leader only by our mistake
        self.proc, self.adopted = None, None

    def _wait(self, timeout_s: float) -> bool:
        if self.proc is not None:
            try:
                self.proc.wait(timeout_s)
                return True
            except subprocess.TimeoutExpired:
                return False
        deadline = time.monotonic() + timeout_s
        while self.alive():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.1)
        return True


def _signal_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        pass


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
    from store.spool import spool_files

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


def preflight(settings: Settings, *, app: bool, held: frozenset[str] = frozenset()) -> None:
    """ConfigError before anything starts: ports taken or home not writable. `held`: ports (setting names) that
    adopted children of this home's earlier run already serve."""
    from xscreen.settings import check_port_free, ensure_home

    ensure_home(settings)
    for which in ("api_port", "store_port", "metrics_port", *(("app_port",) if app else ())):
        if which not in held:
            check_port_free(settings, which)  # type: ignore[arg-type]
    if not settings.serving.api_auth:
        log.warning("serving.api_auth is off: anyone who can reach %s may post scans, read the queue and record "
                    "decisions under any name", settings.api_url)
    if settings.network.host not in ("127.0.0.1", "localhost", "::1"):
        log.warning("network.host is %s: the API and store owner are reachable from other machines",
                    settings.network.host)


__all__ = ["Child", "absolute_settings", "dashboard_argv", "drain_spool", "ensure_champion", "make_housekeeper",
           "make_ingest", "make_watcher", "preflight", "settings_env", "start_simulator", "store_client", "wait_until",
           "watcher_health", "watcher_metrics"]
