"""bench/monitor_e2e.py's CBPE truth: the stream's own detection rate in closed form, and the measurement on a
short calibrated stream through the real store and job."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bench.monitor_e2e import cbpe_error, population_detection


def test_population_detection_is_the_size_biased_tail() -> None:
    # uniform scores, routed from 0.5: E[s; s >= 0.5] / E[s] = (3/8) / (1/2) = 0.75, by hand
    assert population_detection((1.0, 1.0), 0.5) == pytest.approx(0.75)
    # the stream's own Beta(0.3, 3) against a million draws (threat ~ Bernoulli(score))
    rng = np.random.default_rng(0)
    s = rng.beta(0.3, 3.0, 1_000_000)
    threat = rng.random(s.size) < s
    assert population_detection() == pytest.approx(float((s[threat] >= 0.2).mean()), abs=0.005)


def test_cbpe_error_reports_both_truths_and_the_realised_rates_own_noise(tmp_path: Path) -> None:
    out = cbpe_error(tmp_path, seed=3, n=300)
    assert out["window"] == 150 and out["population_detection"] == pytest.approx(population_detection(), abs=1e-4)
    for row in out["scanners"].values():
        assert row["threats"] > 0
        assert row["error_vs_realised_points"] == pytest.approx(100 * abs(row["estimate"] - row["realised"]), abs=0.02)
        se = 100 * np.sqrt(row["realised"] * (1 - row["realised"]) / row["threats"])
        assert row["realised_se_points"] == pytest.approx(se, abs=0.01)
