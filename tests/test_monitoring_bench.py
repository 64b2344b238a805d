"""The monitoring benchmark's detectors, on short streams: the unseen scanner is caught fast, baseline is quiet."""

import numpy as np

from bench import monitor_stats
from xscreen.settings import MonitoringSettings


def test_certificate_watch_catches_an_unseen_scanner_within_500_items_and_stays_quiet_on_baseline() -> None:
    got = monitor_stats.certificate_watch(np.random.default_rng(0), MonitoringSettings(), streams=3, items=20_000)
    unseen = got["items_to_detect: unseen scanner 90%"]
    assert unseen["not_detected"] == 0 and unseen["max"] < 500
    assert got["false_per_10k: baseline 4.5% (worst held-out)"] < 1.0


def test_accuracy_page_is_quiet_on_the_held_out_miss_rate() -> None:
    got = monitor_stats.accuracy_page(np.random.default_rng(1), MonitoringSettings(), streams=2, items=20_000)
    assert got["false_per_10k: baseline 3.8% (worst held-out)"] < 1.0
    assert got["outcomes_to_detect: miss rate 30%"]["not_detected"] == 0


def test_real_mail_accuracy_page_is_quiet_at_the_null_and_catches_a_30_percent_miss_rate_with_20_percent_audits(
        ) -> None:
    got = monitor_stats.miss_rate_page(np.random.default_rng(2), MonitoringSettings(), streams=2, items=10_000,
                                       audits=(0.2,))
    assert got["audit 20%: false_per_10k: at the null rate (worst case)"] == 0.0
    caught = got["audit 20%: items_to_detect: miss rate 30%"]
    assert caught["not_detected"] == 0 and caught["median"] < 5_000, caught
