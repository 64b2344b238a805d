"""The random audit's design: strata of AI-cleared mail (scanner x score band), their inclusion probabilities pi,
and the draw that decides whether one cleared verdict goes to an officer.

Each champion `clear` verdict is drawn independently (Poisson sampling) with its stratum's pi, so the
Horvitz-Thompson estimate of missed threats (analytics.monitoring.estimation.audit_estimate) is unbiased as long as
every pi > 0 and the pi used is stored with each selection (`audit_selections.inclusion`). The draw is a keyed hash
of the scan id: a uniform number no officer can predict without the key (the home's id), the same however often a
batch is re-delivered, and reproducible in a test that fixes the key.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from xscreen.errors import ConfigError

STRATUM_SEP = "|"  # a stratum is "<scanner_id>|<band>"; rate keys may name both, the scanner alone or the band alone


def band_names(edges: tuple[float, ...]) -> list[str]:
    """Score-band names from increasing edges in (0, 1): (0.01, 0.05) -> ["0-0.01", "0.01-0.05", "0.05-1"]."""
    bounds = (0.0, *edges, 1.0)
    return [f"{lo:g}-{hi:g}" for lo, hi in zip(bounds[:-1], bounds[1:], strict=True)]


@dataclass(frozen=True)
class AuditDesign:
    """Who may be audited and how likely. `default_rate` 0 and no `rates`: audits are off (pi = 0 everywhere).

    `rates`: stratum -> rate, where a key is "scanner|band", "scanner" or "band" (most specific wins, then
    `default_rate`); every pi is raised to `floor`, so no cleared item is unauditable. `band_edges`: increasing
    any_threat scores in (0, 1) cutting cleared mail into bands. `key`: the secret the draws are keyed on."""

    default_rate: float = 0.0
    rates: Mapping[str, float] = field(default_factory=dict)
    floor: float = 0.002
    band_edges: tuple[float, ...] = ()
    key: str = ""

    def __post_init__(self) -> None:
        edges = self.band_edges
        if any(not 0 < e < 1 for e in edges) or any(b <= a for a, b in zip(edges, edges[1:], strict=False)):
            raise ConfigError(f"audit score bands must be increasing scores strictly between 0 and 1, got {list(edges)}")
        bad = {k: v for k, v in self.rates.items() if not 0 <= v <= 1}
        if bad or not 0 <= self.default_rate <= 1 or not 0 < self.floor <= 1:
            raise ConfigError(f"audit rates and floor must be probabilities (floor > 0): {bad or self.default_rate}")
        names = set(band_names(edges))
        for key in self.rates:
            band = key.split(STRATUM_SEP, 1)[1] if STRATUM_SEP in key else None
            if band is not None and band not in names:
                raise ConfigError(f"audit rate key {key!r} names score band {band!r}; the bands are "
                                  f"{', '.join(sorted(names))} (from monitoring.audit_score_bands)")

    @classmethod
    def from_settings(cls, settings: Any, key: str = "") -> AuditDesign:
        """screening.audit_rate as the default, monitoring.audit_rates / audit_floor / audit_score_bands."""
        m = settings.monitoring
        return cls(default_rate=settings.screening.audit_rate, rates=dict(m.audit_rates), floor=m.audit_floor,
                   band_edges=tuple(m.audit_score_bands), key=key)

    @property
    def enabled(self) -> bool:
        return self.default_rate > 0 or any(v > 0 for v in self.rates.values())

    def band(self, score: float) -> str:
        """The score band a cleared item's any_threat score falls in."""
        names = band_names(self.band_edges)
        return names[sum(score >= e for e in self.band_edges)]

    def stratum(self, scanner_id: str | None, score: float) -> str:
        return f"{scanner_id or ''}{STRATUM_SEP}{self.band(score)}"

    def inclusion(self, stratum: str) -> float:
        """pi of a stratum: its most specific rate, raised to the floor; 0 when audits are off."""
        if not self.enabled:
            return 0.0
        scanner, band = stratum.split(STRATUM_SEP, 1)
        for k in (stratum, scanner, band):
            if k in self.rates:
                return max(self.rates[k], self.floor)
        return max(self.default_rate, self.floor)

    def drawn(self, scan_id: str, inclusion: float) -> bool:
        """Whether the scan is audited: its keyed-hash uniform in [0, 1) lies below pi."""
        digest = hashlib.sha256(f"{self.key}{STRATUM_SEP}{scan_id}".encode()).digest()
        return int.from_bytes(digest[:8], "big") / 2.0**64 < inclusion
