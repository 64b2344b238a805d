"""The supervisors' health banner: silent when ok, every reason and the backlog otherwise."""

from analytics.health_view import degraded_banner, store_health


def test_ok_shows_no_banner() -> None:
    assert degraded_banner({"status": "ok", "reasons": [], "backlog": 3}) is None


def test_degraded_names_every_reason_and_the_backlog() -> None:
    report = {"status": "degraded", "reasons": ["scoring failing (3 call(s) in a row): boom", "watcher slow"],
              "backlog": 12, "oldest_pending_s": 74.6}
    assert degraded_banner(report) == ("Screening is degraded: scoring failing (3 call(s) in a row): boom; "
                                       "watcher slow (12 files waiting, the oldest for 75 s).")
    assert degraded_banner({"status": "down", "reasons": []}) == "Screening is down: no reason given."


def test_store_health_is_down_when_the_owner_does_not_answer() -> None:
    assert store_health({"status": "ok", "schema_version": 6}, None) == {"status": "ok", "reasons": []}
    down = store_health(None, "store owner at http://127.0.0.1:9 is not reachable")
    assert down["status"] == "down" and "not reachable" in down["reasons"][0]
