"""The health report the app shows (serving.health.fetch_serving_health): down, degraded with reasons, ok."""

from __future__ import annotations

from serving.health import HealthReport, PipelineHealth, fetch_serving_health, merge
from serving.metrics import ServingMetrics
from xscreen.settings import Settings


def test_nothing_running_is_down(settings: Settings) -> None:
    report = fetch_serving_health(settings, timeout_s=0.5)
    assert report["status"] == "down" and "not running" in report["reasons"][0]


def test_the_watcher_alone_answers_degraded_naming_the_api(settings: Settings) -> None:
    health = PipelineHealth(stall_after_s=1.0)
    health.track_backlog(lambda: (7, 12.5))  # 7 files waiting, the oldest for 12.5 s
    health.failed("scoring", TimeoutError("classifier did not answer"))
    server = ServingMetrics().serve("127.0.0.1", settings.network.metrics_port,
                                    health=lambda: health.report().as_dict())
    try:
        report = fetch_serving_health(settings, timeout_s=2.0)
    finally:
        server.shutdown()
        server.server_close()
    assert report["status"] == "degraded" and report["backlog"] == 7 and report["oldest_pending_s"] == 12.5
    reasons = " | ".join(report["reasons"])
    assert "scoring failing" in reasons and "oldest unscored file has waited 12 s" in reasons
    assert "/v1 API" in reasons and report["scoring_failures"] == 1


def test_one_success_clears_a_failure_and_merge_keeps_the_worst() -> None:
    health = PipelineHealth()
    health.failed("store", "HTTP 500")
    assert health.report().status == "degraded"
    health.succeeded("store")
    assert health.report() == HealthReport("ok")
    merged = merge(HealthReport("ok", backlog=2), {"status": "degraded", "reasons": ["x"], "backlog": 3})
    assert merged["status"] == "degraded" and merged["backlog"] == 5 and merged["reasons"] == ["x"]
