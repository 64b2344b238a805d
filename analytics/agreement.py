"""Per-reader agreement on blind double readings: Cohen's kappa of each reader against the other reader of the
same items, and against the supervisors' adjudicated outcomes, with the number of items and an interval.

A reading is a set of labels; kappa treats each distinct set as one nominal category (`[]` = benign, `knife`,
`firearm|knife`, ...), so two readings agree exactly when their label sets are equal, the rule the store uses to
call a double reading disputed. The statistic is `sklearn.metrics.cohen_kappa_score`; the interval is Cohen's (1960)
large-sample one, kappa +/- z * sqrt(p_o (1 - p_o) / (n (1 - p_e)^2)), clipped to [-1, 1] (p_o observed, p_e
chance agreement). Where both readers used a single category throughout (p_e = 1) kappa is undefined: NaN.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import norm
from sklearn.metrics import cohen_kappa_score

BENIGN = "benign"


@dataclass(frozen=True)
class Kappa:
    """Cohen's kappa of two readings of the same `n` items (NaN when undefined), its interval at `level`, and the
    observed agreement p_o in [0, 1]."""

    kappa: float
    low: float
    high: float
    n: int
    observed: float
    level: float


def category(labels: Iterable[str] | None) -> str:
    """A reading as one nominal category: its sorted labels joined by `|`, or `benign` for none."""
    names = sorted(set(labels if labels is not None else []))
    return "|".join(names) if names else BENIGN


def cohen_kappa(a: Sequence[str], b: Sequence[str], level: float = 0.95) -> Kappa:
    """Kappa of paired categorical readings `a[i]`, `b[i]` with Cohen's large-sample interval (module docstring)."""
    if len(a) != len(b):
        raise ValueError(f"paired readings differ in length: {len(a)} and {len(b)}")
    n = len(a)
    if n == 0:
        return Kappa(math.nan, math.nan, math.nan, 0, math.nan, level)
    x, y = np.asarray(a, dtype=object), np.asarray(b, dtype=object)
    observed = float(np.mean(x == y))
    cats = sorted(set(x) | set(y))
    expected = float(sum(np.mean(x == c) * np.mean(y == c) for c in cats))
    if expected >= 1.0:  # both readers used one and the same category throughout: chance explains everything
        return Kappa(math.nan, math.nan, math.nan, n, observed, level)
    kappa = float(cohen_kappa_score(x, y, labels=cats))
    half = float(norm.ppf(0.5 + level / 2)) * math.sqrt(observed * (1 - observed) / (n * (1 - expected) ** 2))
    return Kappa(kappa, max(-1.0, kappa - half), min(1.0, kappa + half), n, observed, level)


def _ruled(labels: Any) -> bool:
    """Whether an `adjudicated_labels` cell holds a ruling (None or NaN: nobody adjudicated)."""
    return labels is not None and not (isinstance(labels, float) and math.isnan(labels))


def _reader_rows(pairs: pd.DataFrame) -> pd.DataFrame:
    """Each double reading twice, once per reader: reader, mine, other, outcome (categories; outcome None unless
    a supervisor adjudicated)."""
    rows: list[dict[str, Any]] = []
    for r in pairs.itertuples(index=False):
        outcome = category(r.adjudicated_labels) if _ruled(r.adjudicated_labels) else None
        for me, mine, other in ((r.reader_1, r.labels_1, r.labels_2), (r.reader_2, r.labels_2, r.labels_1)):
            rows.append({"reader": me, "mine": category(mine), "other": category(other), "outcome": outcome})
    return pd.DataFrame(rows, columns=["reader", "mine", "other", "outcome"])


def per_reader(pairs: pd.DataFrame, level: float = 0.95) -> pd.DataFrame:
    """Agreement of each reader, from completed double readings (the store's `double_read_pairs`: reader_1,
    labels_1, reader_2, labels_2, adjudicated_labels). One row per reader, then `all readers` (reader 1 against
    reader 2 over every pair): n, kappa, low, high (against the other reader of the same items), and
    n_adjudicated, kappa_adjudicated, low_adjudicated, high_adjudicated (against the supervisor's ruling on the
    items they adjudicated, NaN where none)."""
    rows = _reader_rows(pairs)
    out = []
    groups: list[tuple[str, pd.DataFrame]] = [(str(k), g) for k, g in rows.groupby("reader", sort=True)]
    overall = pd.DataFrame({"mine": [category(x) for x in pairs["labels_1"]],
                            "other": [category(x) for x in pairs["labels_2"]],
                            "outcome": [None] * len(pairs)})
    for name, g in [*groups, ("all readers", overall)]:
        k = cohen_kappa(list(g["mine"]), list(g["other"]), level)
        ruled = g[g["outcome"].notna()]
        ka = cohen_kappa(list(ruled["mine"]), list(ruled["outcome"]), level)
        out.append({"reader": name, "n": k.n, "kappa": k.kappa, "low": k.low, "high": k.high,
                    "n_adjudicated": ka.n, "kappa_adjudicated": ka.kappa, "low_adjudicated": ka.low,
                    "high_adjudicated": ka.high})
    return pd.DataFrame(out)
