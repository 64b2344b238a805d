"""What the monitoring job says and the app shows: prevalence from the certificate (checked against BBSE), alert
severities and sentences, and the tables of latest measurements, on figures worked out by hand."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest

from analytics.monitoring import estimation, report
from analytics.monitoring.errors import MonitoringInputError
from analytics.monitoring.shift import ScannerShift, StatShift
from xscreen.records import AlertRecord, MeasurementRecord

AT = datetime(2026, 11, 30, 9, 15, tzinfo=UTC)


def test_prevalence_from_the_flag_rate_is_bbse_with_the_certificates_confusion_shares() -> None:
    # flag = pi * 0.95 + (1 - pi) * 0.03 = 0.10  ->  pi = 0.07 / 0.92 = 0.0760869...
    pi = report.prevalence_from_flag_rate(0.10, detection_rate=0.95, benign_routed=0.03)
    assert pi == pytest.approx(0.07 / 0.92)
    # The same from estimation.bbse on a calibration split with exactly those shares (100 threats, 95 routed;
    # 1000 benign, 30 routed) and a live window flagging 100 of 1000.
    labels = np.r_[np.ones(100, int), np.zeros(1000, int)]
    preds = np.r_[np.ones(95, int), np.zeros(5, int), np.ones(30, int), np.zeros(970, int)]
    live = np.r_[np.ones(100, int), np.zeros(900, int)]
    assert estimation.bbse(labels, preds, live, n_classes=2).prevalence[1] == pytest.approx(pi)
    assert report.prevalence_from_flag_rate(0.01, detection_rate=0.95, benign_routed=0.03) == 0.0  # clipped
    with pytest.raises(MonitoringInputError, match="detection rate must exceed"):
        report.prevalence_from_flag_rate(0.1, detection_rate=0.03, benign_routed=0.03)
    with pytest.raises(MonitoringInputError, match="flag rate"):
        report.prevalence_from_flag_rate(1.5, detection_rate=0.9, benign_routed=0.03)


def test_harm_pages_and_drift_pages_only_when_configured() -> None:
    assert report.severity(report.CERTIFICATE, page_on_drift=False) == "page"
    assert report.severity(report.ACCURACY, page_on_drift=False) == "page"
    assert report.severity(report.SCANNER_DRIFT, page_on_drift=False) == "warning"
    assert report.severity(report.CONTENT_DRIFT, page_on_drift=True) == "page"


def stat(name: str, kind: str, smd: float, moved: bool) -> StatShift:
    return StatShift(name, kind, 100, 60, smd, abs(smd), 0.4, 1e-6, 2e-6 if moved else 0.5, moved)


def test_a_scanner_drift_alert_says_what_moved_where_since_when_and_what_to_do() -> None:
    s = ScannerShift("scanner-1", (stat("noise_level", "scanner", 3.29, True), stat("mean_attenuation", "scanner",
                                   1.05, True), stat("organic_fraction", "content", 0.36, False)), 3.29, 0.36)
    text = report.scanner_drift_text(s, since=AT, n_current=60, page_on_drift=False)
    assert text.kind == "scanner_drift" and text.severity == "warning"
    assert text.message == ("scanner-1: detector statistics moved over its last 60 scans (since 2026-11-30 09:15 UTC): "
                            "noise_level +3.3 SD (q=2e-06), mean_attenuation +1.1 SD (q=2e-06); content effect only "
                            "0.4 SD. Scanner drift: call maintenance (check gain, noise, calibration); do not retrain "
                            "on these scans")
    content = report.content_drift_text(["scanner-2", "scanner-1"], {"scanner-1": s}, {"scanner-2": "embeddings MMD"},
                                        since=AT, page_on_drift=False)
    assert content.message.startswith("content drift since 2026-11-30 09:15 UTC on scanner-1 (noise_level +3.3 SD")
    assert "scanner-2 (embeddings MMD)" in content.message and "Retrain" in content.message


def measurement(kind: str, scanner: str | None, value: float, **details: object) -> MeasurementRecord:
    return MeasurementRecord(measurement_id=f"{kind}{scanner}", measured_at=AT, kind=kind, scanner_id=scanner,
                             model_version="m-1" if scanner else None, value=value, details=dict(details))


def test_latest_measurements_become_one_row_per_scanner_with_its_alarms() -> None:
    rows = [measurement("certificate_watch", "scanner-b", 12.34567, alarm=True),
            measurement("flag_rate", "scanner-b", 0.5),
            measurement("certificate_watch", "scanner-a", -0.5, alarm=False),
            measurement("drift_cause", None, 1.0, moved=True),
            measurement("embedding_mmd", "scanner-a", float("nan"), moved=False)]
    table = report.latest_table(rows)
    assert list(table["scanner"]) == ["(fleet)", "scanner-a", "scanner-b"]
    assert table.loc[2, "certificate_watch"] == 12.3457 and table.loc[2, "flag_rate"] == 0.5
    assert list(table["alarms"]) == ["drift_cause", "", "certificate_watch"]
    assert np.isnan(table.loc[1, "embedding_mmd"])  # not a number: blank, not 0
    assert report.latest_table([]).empty


def test_realised_and_label_free_accuracy_side_by_side() -> None:
    rows = [measurement("realised_detection", "scanner-a", 0.9, low=0.8, high=0.95, n=50),
            measurement("cbpe_detection", "scanner-a", 0.93, low=0.88, high=0.97, n=400),
            measurement("flag_rate", "scanner-a", 0.1)]
    table = report.accuracy_table(rows)
    assert table.to_dict("records") == [{"scanner": "scanner-a", "realised": 0.9, "realised_low": 0.8,
                                         "realised_high": 0.95, "realised_n": 50, "cbpe": 0.93, "cbpe_low": 0.88,
                                         "cbpe_high": 0.97, "cbpe_n": 400}]


def test_alerts_table_names_the_scanner_or_the_fleet() -> None:
    alerts = [AlertRecord(alert_id="a1", raised_at=AT, severity="page", kind="certificate", message="m",
                          details={"scanner_id": "scanner-3"}),
              AlertRecord(alert_id="a2", raised_at=AT, severity="warning", kind="content_drift", message="n")]
    table = report.alert_table(alerts)
    assert list(table["scanner"]) == ["scanner-3", "(fleet)"] and list(table["severity"]) == ["page", "warning"]


def test_summary_rows_for_a_terminal() -> None:
    rows = [measurement("flag_rate", "scanner-a", 0.123456), measurement("drift_cause", None, 1.0, moved=True),
            measurement("certificate_watch", "scanner-a", 12.3, alarm=True),
            measurement("embedding_mmd", "scanner-a", float("nan"))]
    assert report.summary_table(rows).values.tolist() == [
        ["(fleet)", "", "drift_cause", "1", "moved"], ["scanner-a", "m-1", "certificate_watch", "12.3", "ALARM"],
        ["scanner-a", "m-1", "embedding_mmd", "", ""], ["scanner-a", "m-1", "flag_rate", "0.1235", ""]]


def test_input_drift_checks_show_effect_floor_p_and_level_side_by_side() -> None:
    rows = [measurement("embedding_domain_auc", "scanner-a", 0.652, moved=True, threshold=0.6, p_value=3e-5,
                        alpha=0.005, n_reference=500, n_current=500),
            measurement("image_stats_shift", "scanner-a", 0.31, moved=False, threshold=0.5, least_q=0.002,
                        alpha=0.01, n_reference=500, n_current=500),
            measurement("embedding_mmd", "scanner-a", 0.004, moved=False, threshold=0.01, p_value=0.04, alpha=0.005,
                        n_reference=300, n_current=300),
            measurement("embedding_mmd", "scanner-b", 0.2, moved=True),  # stored before levels were recorded
            measurement("flag_rate", "scanner-a", 0.5)]
    table = report.input_drift_table(rows)
    assert list(zip(table["scanner"], table["check"], strict=True)) == [
        ("scanner-a", "image statistics, largest |d|"), ("scanner-a", "embeddings, MMD²"),
        ("scanner-a", "embeddings, domain classifier AUC"), ("scanner-b", "embeddings, MMD²")]
    assert table.loc[0, "p"] == 0.002 and table.loc[0, "level"] == 0.01 and not table.loc[0, "moved"]
    assert table.loc[2, "floor"] == 0.6 and table.loc[2, "moved"] and table.loc[1, "scans"] == "300 / 300"
    assert pd.isna(table.loc[3, "level"]) and table.loc[3, "scans"] == "? / ?"
    assert report.input_drift_table([measurement("flag_rate", "scanner-a", 0.5)]).empty

