"""`Stack`: the serving stack inside one process, with Ray: store owner (a child process) -> Ray + Serve app ->
ingest + watcher (+ metrics/health port); stop runs in reverse, the watcher's in-flight batch is spooled and the
spool drained before the owner stops.

The serving worker (serving/worker.py) is a Stack joined to the supervisor's Ray head; tests and
bench/bench_serving.py use it whole. `xscreen serve` itself is serving/supervisor.py, which never imports Ray.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from typing import Any

from serving import deployments
from serving.housekeeping import Housekeeper, clean_spool_temp
from serving.ingest import Ingest, ScoreFn
from serving.parts import (
    Child,
    absolute_settings,
    drain_spool,
    ensure_champion,
    make_housekeeper,
    make_ingest,
    make_watcher,
    settings_env,
    store_client,
    wait_until,
)
from serving.watcher import Watcher
from store.client import owner_is_up
from xscreen.settings import Settings

log = logging.getLogger(__name__)


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
        s = self.settings
        argv = [sys.executable, "-c", "from store.owner import run_owner; from xscreen.settings import "
                "load_settings; run_owner(load_settings())"]
        self.owner = Child("store owner", argv, s.logs_dir / "store-owner.log", self.child_env())
        self.owner.start()
        wait_until(lambda: owner_is_up(s.store_url), 60, "store owner", self.owner.alive, self.owner.log_path)
        self.store = store_client(s)
        return f"store owner      {s.store_url}  (database {s.db_path}, log {self.owner.log_path})"

    def start_serving(self, after_ray_init: Callable[[], None] | None = None) -> str:
        s = self.settings
        ensure_champion(s)
        # Resolve the models first: a missing champion is a one-line error before Ray spends 10-20 s starting.
        model = deployments.resolve_model(s, s.model.name)
        deployments.start_ray(s, self.address, own=self.own_ray)
        self.ray_started = True
        if after_ray_init is not None:
            after_ray_init()
        deployments.start_serve(s)
        self.classifier = deployments.ensure_deployed(s, model)
        timeout = s.serving.score_timeout_s
        self.score = deployments.handle_scorer(self.classifier, timeout)
        shadow = s.serving.shadow_slot
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
        self.housekeeper = make_housekeeper(s, ingest, self.store)
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


__all__ = ["Stack"]
