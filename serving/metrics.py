"""Prometheus metrics of the ingest: items scored, verdict counts, quarantines, end-to-end latency, backlog.

Each process keeps its own registry (the watcher/ingest process serves it on network.metrics_port; the
Serve ingress adds the officers' queue depth and re-exports the watcher's metrics at GET /metrics, so one
scrape sees the whole pipeline). Ray Serve's own metrics (request counts, replica latencies, queue lengths)
are exported by Ray on its metrics export port, not here.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from serving.health import PipelineHealth
from serving.ingest import IngestReport

log = logging.getLogger(__name__)
# File closed -> verdict spooled, seconds: fine buckets around the 300 ms target.
LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1.0, 2.5, 5.0, 10.0, 60.0)


class ServingMetrics:
    """Counters and histograms for one process; `observe(report)` is the ingest's on_batch hook."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.items_scored = Counter("xscreen_items_scored", "Scans scored, by verdict role.", ["role"], registry=r)
        self.verdicts = Counter("xscreen_verdicts", "Champion verdicts, by verdict and scanner.",
                                ["verdict", "scanner_id"], registry=r)
        self.quarantined = Counter("xscreen_quarantined", "Files refused, by reason code.", ["reason_code"],
                                   registry=r)
        self.duplicates = Counter("xscreen_duplicates", "Re-delivered files recognised by content hash.",
                                  registry=r)
        self.latency = Histogram("xscreen_scan_to_verdict_seconds",
                                 "File closed (or upload received) to verdict spooled, seconds.",
                                 buckets=LATENCY_BUCKETS, registry=r)
        self.source_batch = Histogram("xscreen_source_batch_size", "Scans per call to the classifier.",
                                      buckets=(1, 2, 4, 8, 16, 32, 64, 128), registry=r)
        self.backlog = Gauge("xscreen_ingest_backlog",
                             "Files noticed and not yet done: queued, being scored, or waiting to be retried.",
                             registry=r)
        self.oldest_pending = Gauge("xscreen_oldest_pending_seconds",
                                    "How long the oldest file not yet done has waited since it was noticed.",
                                    registry=r)
        self.retries = Counter("xscreen_ingest_retries", "Files handed on again after a failed batch.", registry=r)
        self.degraded = Gauge("xscreen_degraded", "1 while the pipeline's health is degraded, else 0.", registry=r)
        self.queue_depth = Gauge("xscreen_queue_depth", "Items waiting in the officers' queue.", registry=r)

    def observe(self, report: IngestReport) -> None:
        """Count one ingest call's outcome."""
        scanner_of = {s.scan_id: s.scanner_id for s in report.scans}
        for verdict in report.verdicts:
            self.items_scored.labels(role=verdict.role).inc()
            if verdict.role == "champion":
                self.verdicts.labels(verdict=verdict.verdict, scanner_id=scanner_of.get(verdict.scan_id, "")).inc()
                if verdict.latency_ms is not None:
                    self.latency.observe(verdict.latency_ms / 1000.0)
        for q in report.quarantined:
            self.quarantined.labels(reason_code=q.reason_code).inc()
        if report.duplicates:
            self.duplicates.inc(len(report.duplicates))
        if report.retry:
            self.retries.inc(len(report.retry))
        if report.scans:
            self.source_batch.observe(len(report.scans))

    def track_backlog(self, pending: Callable[[], tuple[int, float]]) -> None:
        """Read the backlog and the oldest pending age at scrape time (the watcher's `pending()`)."""
        self.backlog.set_function(lambda: float(pending()[0]))
        self.oldest_pending.set_function(lambda: float(pending()[1]))

    def track_health(self, health: PipelineHealth) -> None:
        self.degraded.set_function(lambda: 0.0 if health.report().status == "ok" else 1.0)

    def track_queue_depth(self, depth: Callable[[], float]) -> None:
        """Read the officers' queue depth at scrape time; NaN while the store owner is unreachable."""

        def safe() -> float:
            try:
                return float(depth())
            except Exception as exc:  # a scrape must never fail because the store is restarting
                log.debug("queue depth unavailable: %s", exc)
                return float("nan")

        self.queue_depth.set_function(safe)

    def render(self) -> bytes:
        """The Prometheus text exposition of this registry."""
        return generate_latest(self.registry)

    def serve(self, host: str, port: int, health: Callable[[], dict[str, Any]] | None = None) -> Any:
        """Expose this registry on http://host:port/metrics and `health()` as JSON on /health (a daemon thread);
        returns the server (`shutdown()` then `server_close()` frees the port)."""
        metrics = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                if self.path.split("?")[0] == "/metrics":
                    self._send(200, metrics.render(), "text/plain; version=0.0.4; charset=utf-8")
                elif self.path.split("?")[0] == "/health" and health is not None:
                    self._send(200, json.dumps(health()).encode(), "application/json")
                else:
                    self._send(404, b"not found\n", "text/plain")

            def _send(self, status: int, body: bytes, kind: str) -> None:
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 -- quiet: one line per scrape
                log.debug("metrics: " + format, *args)

        server = ThreadingHTTPServer((host, port), Handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, name="xscreen-metrics", daemon=True).start()
        return server
