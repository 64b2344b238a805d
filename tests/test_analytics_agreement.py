"""Per-reader agreement on double readings (analytics/agreement.py): Cohen's kappa against numbers worked by hand."""

import math

import pandas as pd
import pytest

from analytics import agreement


def test_kappa_of_a_two_by_two_table_matches_the_hand_computation() -> None:
    # 50 items: both threat 20, first only 5, second only 10, both benign 15.
    # p_o = 35/50 = 0.7; first says threat 25/50, second 30/50: p_e = 0.5*0.6 + 0.5*0.4 = 0.5
    # kappa = (0.7 - 0.5) / (1 - 0.5) = 0.4; SE = sqrt(0.7*0.3 / (50 * 0.25)) = 0.129615; z(97.5%) = 1.959964
    a = ["knife"] * 25 + ["benign"] * 25
    b = ["knife"] * 20 + ["benign"] * 5 + ["knife"] * 10 + ["benign"] * 15
    k = agreement.cohen_kappa(a, b)
    assert (k.n, k.observed) == (50, pytest.approx(0.7))
    assert k.kappa == pytest.approx(0.4)
    assert (k.low, k.high) == (pytest.approx(0.4 - 0.254041, abs=1e-6), pytest.approx(0.4 + 0.254041, abs=1e-6))


def test_kappa_is_undefined_when_chance_explains_everything_and_empty_without_items() -> None:
    assert math.isnan(agreement.cohen_kappa(["benign"] * 4, ["benign"] * 4).kappa)
    assert agreement.cohen_kappa([], []).n == 0
    with pytest.raises(ValueError, match="differ in length"):
        agreement.cohen_kappa(["a"], [])


def test_a_reading_is_its_label_set_as_one_category() -> None:
    assert agreement.category(["knife", "firearm", "knife"]) == "firearm|knife"
    assert agreement.category([]) == agreement.category(None) == "benign"


def test_per_reader_kappa_against_the_other_reader_and_the_adjudications() -> None:
    pairs = pd.DataFrame({
        "reader_1": ["ann", "ann", "ann", "ann", "cy"],
        "labels_1": [[], ["knife"], [], ["knife"], []],
        "reader_2": ["bob", "bob", "bob", "cy", "bob"],
        "labels_2": [[], ["knife"], ["knife"], ["knife"], []],
        "adjudicated_labels": [None, None, ["knife"], None, None]})
    got = agreement.per_reader(pairs).set_index("reader")
    # ann: (b,b) (k,k) (b,k) (k,k): p_o 3/4; ann b/k 1/2 each, others b 1/4 k 3/4: p_e 1/2 -> kappa 1/2
    # bob: (b,b) (k,k) (k,b) (b,b): p_o 3/4; bob 1/2 each, others b 3/4: p_e 1/2 -> kappa 1/2
    # cy: (k,k) (b,b): p_o 1, p_e 1/2 -> kappa 1, SE 0
    # all: reader 1 vs reader 2 over 5: p_o 4/5; r1 b 3/5, r2 b 2/5: p_e 0.48 -> kappa 0.32/0.52
    assert got.loc[["ann", "bob", "cy", "all readers"], "kappa"].tolist() == pytest.approx([0.5, 0.5, 1.0, 0.32 / 0.52])
    assert got.loc[["ann", "bob", "cy", "all readers"], "n"].tolist() == [4, 4, 2, 5]
    assert (got.loc["cy", "low"], got.loc["cy", "high"]) == (1.0, 1.0)
    # the one adjudicated item: ann said benign, the ruling knife (kappa 0); bob said knife (one category: NaN)
    assert got.loc["ann", "n_adjudicated"] == 1 and got.loc["ann", "kappa_adjudicated"] == pytest.approx(0.0)
    assert got.loc["bob", "n_adjudicated"] == 1 and math.isnan(got.loc["bob", "kappa_adjudicated"])
    assert got.loc["cy", "n_adjudicated"] == 0
