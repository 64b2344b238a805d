"""Sequential tests on 0/1 outcome streams: a mixture-CUSUM e-detector (paging) and a Ville-bounded e-value.

Both test H0: "the rate of 1s is at most `null_rate`" against "it is higher", one outcome at a time, and both
hold their error rate however often they are looked at (no peeking penalty):

- `bernoulli_watch` is an e-detector (Shin, Ramdas and Rinaldo, "E-detectors", 2023): for each alternative
  rate q in a small grid it keeps Page's CUSUM of likelihood ratios, M_t(q) = e_t(q) * max(M_{t-1}(q), 1) with
  e_t(q) = (q / p0)^x ((1 - q) / (1 - p0))^(1 - x), and alarms when the weighted mean over the grid reaches `arl`.
  For any rate p <= p0, E[e_t(q)] <= 1 when q > p0, so the weighted Shiryaev-Roberts sum R_t (which bounds the
  CUSUM mean from above) has R_t - t a supermartingale; optional stopping gives mean run length >= `arl`
  outcomes between false alarms. Evidence before a change does not slow detection after it (CUSUM restarts).
- `rate_e_value` is the one-shot test since a fixed start (for example since a model was promoted): a beta
  mixture of likelihood ratios over q in [p0, 1], a non-negative supermartingale under H0, so by Ville's
  inequality P(it ever reaches 1/alpha) <= alpha.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
from scipy import special, stats

from analytics.monitoring.errors import MonitoringInputError

# Alternatives as steps in log-odds above the null rate: small (x1.6 odds) to large (x55 odds) shifts, so one
# detector reacts to a scanner that doubles its false alarms and to one that routes nearly everything.
DEFAULT_LOG_ODDS_STEPS = (0.5, 1.0, 1.5, 2.5, 4.0)
# Bets of `bet_watch` as shares of the largest safe bet, 1/2000 to 1/2 in eight log steps. The growth-optimal share
# for the audit-weighted miss increments (analytics.monitoring.harm) is about pi * (m1 - m0) / (1 - m0): 0.001 for
# a miss rate of 12% against 8% tolerated audited at 2%, 0.57 for 60% audited at 100%; the grid spans both and
# costs at most ln 8 = 2.1 of the ln(arl) = 11.5 the statistic must climb.
DEFAULT_BET_FRACTIONS = tuple(float(f) for f in np.geomspace(0.0005, 0.5, 8))


@dataclass(frozen=True)
class DetectorState:
    """What one e-detector carries from one monitoring run to the next (all plain numbers, JSON-friendly).

    `log_cusum[k]` is ln M_t(q_k); `since[k]` / `events_since[k]` count outcomes (and 1s) since M_t(q_k) last
    started afresh (was <= 1): the detector's estimate of when the change began.
    """

    null_rate: float
    alternatives: tuple[float, ...]
    weights: tuple[float, ...]
    log_cusum: tuple[float, ...]
    since: tuple[int, ...]
    events_since: tuple[int, ...]
    n_items: int = 0
    n_events: int = 0


@dataclass(frozen=True)
class WatchResult:
    """The detector after one update. `statistic` and `threshold` are natural logs (alarm: statistic >= threshold).

    `alarm_at` is the 1-based position, counted from the detector's start, of the first outcome at which the
    statistic crossed during this update (None when it did not). `recent_rate` is the share of 1s since the
    estimated change point (`recent_items` outcomes ago).
    """

    statistic: float
    threshold: float
    alarm: bool
    alarm_at: int | None
    n_items: int
    n_events: int
    recent_items: int
    recent_rate: float
    null_rate: float
    state: DetectorState


@dataclass(frozen=True)
class EValue:
    """An anytime-valid e-value for H0 'rate <= null_rate' from k ones in n outcomes; reject when e >= 1/alpha."""

    e_value: float
    log_e_value: float
    k: int
    n: int
    null_rate: float
    alpha: float
    reject: bool


def _check_rate(name: str, value: float, open_interval: bool = True) -> None:
    ok = 0.0 < value < 1.0 if open_interval else 0.0 <= value <= 1.0
    if not ok or np.isnan(value):
        raise MonitoringInputError(f"{name} must be in {'(0, 1)' if open_interval else '[0, 1]'}, got {value}")


def _outcomes(values: Sequence[bool] | Sequence[int] | np.ndarray, what: str) -> np.ndarray:
    arr = np.asarray(values).ravel()
    if arr.size and not np.isin(arr, [0, 1]).all():
        raise MonitoringInputError(f"{what} must be 0/1 or booleans")
    return arr.astype(np.float64)


def default_alternatives(null_rate: float, steps: Sequence[float] = DEFAULT_LOG_ODDS_STEPS) -> tuple[float, ...]:
    """Alternative rates above `null_rate`: logit(q) = logit(p0) + step for each step (> 0)."""
    _check_rate("null rate", null_rate)
    if not steps or min(steps) <= 0:
        raise MonitoringInputError(f"log-odds steps must be positive, got {list(steps)}")
    return tuple(float(special.expit(special.logit(null_rate) + s)) for s in steps)


def start_detector(null_rate: float, alternatives: Sequence[float] | None = None,
                   weights: Sequence[float] | None = None) -> DetectorState:
    """A fresh e-detector for H0 'rate <= null_rate'. Alternatives must lie in (null_rate, 1); weights sum to 1."""
    _check_rate("null rate", null_rate)
    alts = tuple(float(q) for q in (alternatives if alternatives is not None else default_alternatives(null_rate)))
    if not alts or any(not null_rate < q < 1 for q in alts):
        raise MonitoringInputError(f"alternatives must lie in ({null_rate}, 1), got {list(alts)}")
    w = np.full(len(alts), 1.0 / len(alts)) if weights is None else np.asarray(weights, dtype=np.float64)
    if w.shape != (len(alts),) or (w <= 0).any() or not np.isclose(w.sum(), 1.0):
        raise MonitoringInputError("weights must be positive, one per alternative, and sum to 1")
    k = len(alts)
    return DetectorState(null_rate, alts, tuple(float(x) for x in w), (0.0,) * k, (0,) * k, (0,) * k)


def _log_cusum_path(inc: np.ndarray, state: DetectorState) -> tuple[np.ndarray, np.ndarray]:
    """ln M_t for every outcome and alternative (T, K), given the log e-values `inc` (T, K), and the Lindley walk
    W_t = max(ln M_t, 0) it restarts from.

    ln M_t = inc_t + W_{t-1} with W_t = max(W_{t-1} + inc_t, 0); the Lindley recursion has the closed form
    W_t = C_t - min(0, min_{s<=t} C_s) with C_t = W_0 + cumsum(inc), so no Python loop over outcomes.
    """
    w0 = np.maximum(np.asarray(state.log_cusum), 0.0)  # (K,)
    c = w0 + np.cumsum(inc, axis=0)  # (T, K)
    walk = c - np.minimum(np.minimum.accumulate(c, axis=0), 0.0)  # (T, K) W_t
    previous = np.vstack([w0[None, :], walk[:-1]])  # (T, K) W_{t-1}
    return inc + previous, walk


def _since_counts(x: np.ndarray, walk: np.ndarray, state: DetectorState) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Outcomes and 1s since each alternative's walk last touched zero (its change-point estimate)."""
    t = len(x)
    since, events = [], []
    ones = np.concatenate([[0.0], np.cumsum(x)])
    for k in range(walk.shape[1]):
        zeros = np.nonzero(walk[:, k] <= 0.0)[0]
        if zeros.size:
            last = int(zeros[-1]) + 1  # outcomes up to and including this one are before the change
            since.append(t - last)
            events.append(int(ones[t] - ones[last]))
        else:
            since.append(state.since[k] + t)
            events.append(state.events_since[k] + int(ones[t]))
    return tuple(since), tuple(events)


def bernoulli_watch(outcomes: Sequence[bool] | Sequence[int] | np.ndarray, *, arl: float,
                    null_rate: float | None = None, state: DetectorState | None = None) -> WatchResult:
    """Feed outcomes (1 = the bad event: a routed benign item, a missed threat) in arrival order to an e-detector.

    Give `null_rate` to start a fresh detector, or `state` from the previous run to continue it. `arl` is the
    guaranteed mean number of in-distribution outcomes between false alarms (>= 1); threshold = ln(arl).
    The statistic keeps growing after an alarm: start a new detector once the alarm is handled.
    """
    if arl <= 1:
        raise MonitoringInputError(f"arl (outcomes between false alarms) must be > 1, got {arl}")
    if state is None:
        if null_rate is None:
            raise MonitoringInputError("give a null_rate for a new detector or the state of a running one")
        state = start_detector(null_rate)
    x = _outcomes(outcomes, "outcomes")
    p0, q = state.null_rate, np.asarray(state.alternatives)
    inc = np.where(x[:, None] == 1, np.log(q / p0), np.log((1 - q) / (1 - p0)))  # (T, K) log e-values
    return _advance(state, inc, x, arl)


def _advance(state: DetectorState, inc: np.ndarray, events: np.ndarray, arl: float) -> WatchResult:
    """Feed log e-values `inc` (T, K), one row per outcome, to the mixture CUSUM; `events` (T,) are the 0/1
    outcomes the change-point estimate counts (a 1 = a bad event seen)."""
    threshold = float(np.log(arl))
    log_w = np.log(np.asarray(state.weights))
    if events.size == 0:
        stat = float(special.logsumexp(np.asarray(state.log_cusum) + log_w))
        return _result(state, stat, threshold, None)
    path, walk = _log_cusum_path(inc, state)
    stats_path = special.logsumexp(path + log_w, axis=1)  # (T,) ln of the weighted mean of M_t
    crossed = np.nonzero(stats_path >= threshold)[0]
    since, counted = _since_counts(events, walk, state)
    new = replace(state, log_cusum=tuple(float(v) for v in path[-1]), since=since, events_since=counted,
                  n_items=state.n_items + int(events.size), n_events=state.n_events + int(events.sum()))
    alarm_at = state.n_items + int(crossed[0]) + 1 if crossed.size else None
    return _result(new, float(stats_path[-1]), threshold, alarm_at)


def start_bet_detector(null_rate: float, fractions: Sequence[float] = DEFAULT_BET_FRACTIONS) -> DetectorState:
    """A fresh betting e-detector (`bet_watch`) for a null about `null_rate` (carried, so a caller can check that
    a continued state tests what it means to test). `fractions` in (0, 1): each bet as a share of the largest
    safe bet 1 / |lower|; equal weights."""
    _check_rate("null rate", null_rate)
    f = tuple(float(x) for x in fractions)
    if not f or any(not 0.0 < x < 1.0 for x in f):
        raise MonitoringInputError(f"bet fractions must lie in (0, 1), got {list(f)}")
    k = len(f)
    return DetectorState(null_rate, f, (1.0 / k,) * k, (0.0,) * k, (0,) * k, (0,) * k)


def bet_watch(increments: Sequence[float] | np.ndarray, *, lower: float, arl: float,
              state: DetectorState) -> WatchResult:
    """Feed increments x_t >= `lower` (< 0), in arrival order, to a betting e-detector of H0 "E[x_t | past] <= 0".

    Bet k stakes lambda_k = fractions_k / |lower| on x being positive: e_t = 1 + lambda_k x_t >= 1 - fractions_k
    > 0, and E[e_t | past] = 1 + lambda_k E[x_t | past] <= 1 under H0, however large x may be. So these are
    e-values as `bernoulli_watch`'s likelihood ratios are, and the same mixture CUSUM over the bets keeps a mean
    run length >= `arl` items between false alarms; threshold ln(arl). `n_events` counts positive increments.
    """
    if arl <= 1:
        raise MonitoringInputError(f"arl (items between false alarms) must be > 1, got {arl}")
    if not lower < 0:
        raise MonitoringInputError(f"the increments' lower bound must be negative, got {lower}")
    x = np.asarray(increments, dtype=np.float64).ravel()
    if x.size and (not np.isfinite(x).all() or x.min() < lower * (1 + 1e-12)):
        raise MonitoringInputError(f"increments must be finite and >= the lower bound {lower}")
    bets = np.asarray(state.alternatives) / -lower  # (K,)
    inc = np.log1p(np.maximum(x[:, None] * bets[None, :], -1.0 + 1e-12))  # (T, K) ln(1 + lambda x)
    return _advance(state, inc, (x > 0).astype(np.float64), arl)


def tolerance_watch(outcomes: Sequence[bool] | Sequence[int] | np.ndarray, *, certified_rate: float,
                    margin: float, arl: float, state: DetectorState | None = None) -> WatchResult:
    """`bernoulli_watch` against H0 'rate <= certified_rate + margin' (what a certificate or a held-out figure
    promises, plus the tolerance), refusing a carried `state` that tests some other rate."""
    if not 0.0 <= certified_rate < 1.0 or margin <= 0 or certified_rate + margin >= 1.0:
        raise MonitoringInputError(f"need 0 <= certified rate ({certified_rate}) and certified + margin "
                                   f"({margin}) in (0, 1)")
    tolerated = certified_rate + margin
    if state is not None and not np.isclose(state.null_rate, tolerated):
        raise MonitoringInputError(f"the detector state tests {state.null_rate}, not certified + margin {tolerated}")
    return bernoulli_watch(outcomes, arl=arl, null_rate=tolerated, state=state)


def _result(state: DetectorState, stat: float, threshold: float, alarm_at: int | None) -> WatchResult:
    best = int(np.argmax(np.asarray(state.log_cusum) + np.log(np.asarray(state.weights))))
    recent = state.since[best]
    rate = state.events_since[best] / recent if recent else float("nan")
    return WatchResult(stat, threshold, stat >= threshold, alarm_at, state.n_items, state.n_events, recent, rate,
                       state.null_rate, state)


def _log_mixture_e(k: np.ndarray, n: np.ndarray, p0: float, a: float, b: float) -> np.ndarray:
    """ln E for arrays of (k, n); see `rate_e_value`."""
    return np.asarray(special.betaln(a + k, b + n - k) - special.betaln(a, b)
                      + stats.beta.logsf(p0, a + k, b + n - k) - stats.beta.logsf(p0, a, b)
                      - k * np.log(p0) - (n - k) * np.log1p(-p0), dtype=np.float64)


def _check_prior(prior: tuple[float, float]) -> None:
    if prior[0] <= 0 or prior[1] <= 0:
        raise MonitoringInputError(f"beta prior parameters must be positive, got {prior}")


def rate_e_value(k: int, n: int, *, null_rate: float, alpha: float, prior: tuple[float, float] = (1.0, 1.0)
                 ) -> EValue:
    """Beta-mixture likelihood ratio for k ones in n outcomes against H0 'rate <= null_rate' (Ville-valid).

    E = int_{p0}^1 q^k (1-q)^(n-k) dBeta(q; a, b) / [(1 - I_{p0}(a, b)) p0^k (1-p0)^(n-k)]: the prior is the
    Beta(a, b) restricted to [p0, 1], so every mixed ratio has mean <= 1 under any rate <= p0. Reject at level
    alpha when E >= 1/alpha; that holds however often E is recomputed as outcomes arrive.
    """
    _check_rate("null rate", null_rate)
    _check_rate("alpha", alpha)
    _check_prior(prior)
    if n < 0 or not 0 <= k <= n:
        raise MonitoringInputError(f"need 0 <= k <= n, got k={k}, n={n}")
    log_e = float(_log_mixture_e(np.asarray(k), np.asarray(n), null_rate, *prior))
    return EValue(float(np.exp(min(log_e, 700.0))), log_e, k, n, null_rate, alpha, bool(log_e >= -np.log(alpha)))


def rate_e_value_path(outcomes: Sequence[bool] | Sequence[int] | np.ndarray, *, null_rate: float,
                      prior: tuple[float, float] = (1.0, 1.0)) -> np.ndarray:
    """ln of `rate_e_value` after each outcome of a stream (for charts and for checking Ville's bound)."""
    _check_rate("null rate", null_rate)
    _check_prior(prior)
    x = _outcomes(outcomes, "outcomes")
    return _log_mixture_e(np.cumsum(x), np.arange(1, x.size + 1, dtype=np.float64), null_rate, *prior)


def run_lengths(rate: float, *, null_rate: float, arl: float, n_streams: int, max_items: int,
                rng: np.random.Generator, change_at: int = 0, base_rate: float | None = None) -> np.ndarray:
    """Simulated outcomes from `change_at` to the first alarm of a fresh `bernoulli_watch`, one per stream.

    Outcomes are Bernoulli(`base_rate`, default `rate`) before item `change_at` and Bernoulli(`rate`) from it
    on. Returns alarm position minus `change_at` (so 1 = alarmed on the first changed outcome; <= 0 = alarmed
    before the change, a false alarm), or +inf when no alarm came within `max_items` (censored). For benchmarks.
    """
    before = rate if base_rate is None else base_rate
    p = np.where(np.arange(max_items) < change_at, before, rate)
    out = np.full(n_streams, np.inf)
    for i in range(n_streams):
        res = bernoulli_watch(rng.random(max_items) < p, arl=arl, null_rate=null_rate)
        if res.alarm_at is not None:
            out[i] = res.alarm_at - change_at
    return out
