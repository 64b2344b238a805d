"""Officer analytics for supervisors: decisions per hour, time to decision, and agreement with the AI and with
adjudicated outcomes, per officer, with Wilson intervals (analytics.accuracy.rates_by_group).

Input: one row per decision (store op `officer_decisions`): officer, decision (cleared / confirmed / seized /
refer; a referral counts as work, not as a call), decided_at and scored_at (UTC), the AI's verdict, and `adjudicated_threat` (True / False from a
supervisor's adjudication label, None where nobody adjudicated). An officer calls a threat by `confirmed` or
`seized`; the AI calls one by `inspect` (an `uncertain` verdict or an audited `clear` leaves the call to the
officer, so it is not counted as agreement or disagreement).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from analytics.accuracy import rates_by_group

THREAT_DECISIONS = ("confirmed", "seized")
NEEDED = ("officer", "decision", "decided_at", "scored_at", "verdict", "adjudicated_threat")


class OfficerInputError(ValueError):
    """The decisions frame lacks a column officer analytics need."""


def _check(frame: pd.DataFrame) -> None:
    missing = [c for c in NEEDED if c not in frame.columns]
    if missing:
        raise OfficerInputError(f"decisions frame lacks columns {missing} (needs {list(NEEDED)})")


@dataclass(frozen=True)
class OfficerReport:
    """Per-officer tables: `throughput` (officer, decisions, active_hours, per_hour, median_minutes,
    p90_minutes), `ai_agreement` and `adjudicated_agreement` (officer, k, n, rate, low, high)."""

    throughput: pd.DataFrame
    ai_agreement: pd.DataFrame
    adjudicated_agreement: pd.DataFrame


def throughput(frame: pd.DataFrame) -> pd.DataFrame:
    """Decisions per active hour (clock hours in which the officer decided at least one item) and time to
    decision, verdict to final decision (minutes: the item's wait in the queue plus handling), median and p90."""
    _check(frame)
    cols = ["officer", "decisions", "active_hours", "per_hour", "median_minutes", "p90_minutes"]
    if frame.empty:
        return pd.DataFrame(columns=cols)
    f = frame.assign(hour=pd.to_datetime(frame["decided_at"], utc=True).dt.floor("h"),
                     minutes=(pd.to_datetime(frame["decided_at"], utc=True)
                              - pd.to_datetime(frame["scored_at"], utc=True)).dt.total_seconds() / 60.0)
    g = f.groupby("officer", sort=True)
    out = pd.DataFrame({"decisions": g.size(), "active_hours": g["hour"].nunique(),
                        "median_minutes": g["minutes"].median(),
                        "p90_minutes": g["minutes"].quantile(0.9)}).reset_index()
    out["per_hour"] = out["decisions"] / out["active_hours"]
    return out[cols]


def _matches(calls: pd.Series, truth: pd.Series) -> pd.Series:
    """calls == truth where truth is known (True/False), None where it is missing (None, NaN or pd.NA: a
    nullable boolean column from the store)."""
    known = truth.notna()
    same = calls.to_numpy(dtype=bool) == truth.where(known, False).to_numpy(dtype=bool)
    return pd.Series(np.where(known.to_numpy(), same, None), index=calls.index, dtype=object)


def agreement(frame: pd.DataFrame, confidence: float = 0.95) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(with the AI, with adjudicated outcomes): per officer, the share of decisions whose threat call matches
    the AI's (`inspect` vs `clear`; `uncertain` left out) and the adjudicated label (only adjudicated items)."""
    _check(frame)
    frame = frame[frame["decision"] != "refer"]  # a referral asks a colleague: it calls nothing
    says_threat = frame["decision"].isin(THREAT_DECISIONS)
    ai = frame["verdict"].map({"inspect": True, "clear": False})  # uncertain -> NaN: no call to agree with
    f = frame.assign(with_ai=_matches(says_threat, ai), with_adjudication=_matches(says_threat,
                                                                                     frame["adjudicated_threat"]))
    return (rates_by_group(f, ["officer"], "with_ai", confidence),
            rates_by_group(f, ["officer"], "with_adjudication", confidence))


def tip_hit_rates(frame: pd.DataFrame, confidence: float = 0.95) -> pd.DataFrame:
    """Officer TIP hit rate per officer and class (store op `tip_results`: officer, class_name, hit = the officer
    did not clear the projected threat), with Wilson intervals: officer, class_name, k, n, rate, low, high."""
    missing = [c for c in ("officer", "class_name", "hit") if c not in frame.columns]
    if missing:
        raise OfficerInputError(f"TIP results frame lacks columns {missing}")
    return rates_by_group(frame.assign(hit=frame["hit"].astype(bool)), ["officer", "class_name"], "hit", confidence)


def officer_report(frame: pd.DataFrame, confidence: float = 0.95) -> OfficerReport:
    """All officer tables of one window of decisions."""
    with_ai, with_adjudication = agreement(frame, confidence)
    return OfficerReport(throughput(frame), with_ai, with_adjudication)
