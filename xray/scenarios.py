"""Named drift scenarios: how mail and scanners change over time, as a linear ramp over `progress` in [0, 1].

Each scenario is a baseline state plus the state it reaches at progress 1; every weight and scanner setting
is interpolated in between. What each one moves (and the statistic a test checks it moves):

- `baseline`: nothing changes.
- `new_goods`: a surge of benign item types never seen at progress 0 (vapes, smart watches) -> share of parcels
  holding one; more inorganic/metal pixels.
- `new_concealment`: narcotics move from loose packs, cosmetics and food into book spines and shoe soles ->
  share of narcotics objects hidden in books/shoes.
- `scanner_ageing`: on scanner `scanner-1` only, detector gain falls, offset drifts, noise triples, blur grows
  and detector columns drift apart (streaks) -> noise_level up, mean_attenuation shifted.
- `seasonal_mix`: holiday season: more lithium batteries and currency among threats, more toys and electronics
  among benign items -> class proportions of labels and item mix.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from xscreen.errors import ConfigError

AGEING_SCANNER = "scanner-1"


class UnknownScenarioError(ConfigError):
    """A scenario name that is not one of SCENARIOS."""

    title = "Unknown scenario"


def _base_weights() -> tuple[dict[str, float], dict[str, float]]:
    from xray.items import BENIGN_WEIGHTS
    from xray.threats import THREAT_CLASSES

    narcotics = {name: w for name, (w, _) in THREAT_CLASSES["narcotics"].variants.items()}
    return dict(BENIGN_WEIGHTS), narcotics


BENIGN_BASE, NARCOTICS_BASE = _base_weights()  # the library's default mix (new goods and spines/soles at 0)
THREAT_BASE = {"firearm": 1.0, "knife": 1.0, "ammunition": 1.0, "narcotics": 1.0, "currency": 1.0,
               "lithium_battery": 1.0}
PALETTE_BASE = {"reference": 0.55, "swapped": 0.15, "six_colour": 0.15, "high_contrast": 0.15}


@dataclass(frozen=True)
class ScannerState:
    """Detector behaviour: T' = gain * T * (1 + column drift) + offset, plus noise and blur multipliers."""

    gain: float = 1.0
    offset: float = 0.0
    noise_scale: float = 1.0
    blur_scale: float = 1.0
    column_drift: float = 0.003  # std of per-column gain error (detector channels that drifted apart)


@dataclass(frozen=True)
class ScenarioState:
    """Everything the renderer draws from at one moment of a scenario."""

    benign_weights: dict[str, float] = field(default_factory=lambda: dict(BENIGN_BASE))
    threat_weights: dict[str, float] = field(default_factory=lambda: dict(THREAT_BASE))
    # class -> variant -> weight; classes not named use their generator's default mix
    variant_weights: dict[str, dict[str, float]] = field(default_factory=lambda: {"narcotics": dict(NARCOTICS_BASE)})
    palette_weights: dict[str, float] = field(default_factory=lambda: dict(PALETTE_BASE))
    scanner: ScannerState = field(default_factory=ScannerState)
    scanner_ids: tuple[str, ...] | None = None  # scanners the `scanner` change applies to; None = all


def _lerp_dict(a: dict[str, float], b: dict[str, float], p: float) -> dict[str, float]:
    return {k: (1 - p) * a.get(k, 0.0) + p * b.get(k, 0.0) for k in sorted(set(a) | set(b))}


def _lerp_scanner(a: ScannerState, b: ScannerState, p: float) -> ScannerState:
    return ScannerState(*[(1 - p) * getattr(a, f) + p * getattr(b, f) for f in a.__dataclass_fields__])


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    end: ScenarioState  # state at progress 1 (progress 0 is always the baseline state)

    def state(self, progress: float, scanner_id: str = AGEING_SCANNER) -> ScenarioState:
        """The interpolated state at `progress` in [0, 1] as seen by `scanner_id`."""
        if not 0.0 <= progress <= 1.0:
            raise ConfigError(f"scenario progress must be within [0, 1], got {progress}")
        start, p = ScenarioState(), float(progress)
        variants = {c: _lerp_dict(start.variant_weights.get(c, {}), self.end.variant_weights.get(c, {}), p)
                    for c in set(start.variant_weights) | set(self.end.variant_weights)}
        applies = self.end.scanner_ids is None or scanner_id in self.end.scanner_ids
        return ScenarioState(
            benign_weights=_lerp_dict(start.benign_weights, self.end.benign_weights, p),
            threat_weights=_lerp_dict(start.threat_weights, self.end.threat_weights, p),
            variant_weights=variants,
            palette_weights=_lerp_dict(start.palette_weights, self.end.palette_weights, p),
            scanner=_lerp_scanner(start.scanner, self.end.scanner, p) if applies else start.scanner,
        )


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario("baseline", "steady state: the mix the model was trained on", ScenarioState()),
        Scenario("new_goods", "vapes and smart watches, never seen at the start, become a third of benign items",
                 ScenarioState(benign_weights={**BENIGN_BASE, "vape": 10.0, "smartwatch": 8.0})),
        Scenario("new_concealment", "narcotics move into book spines and shoe soles", ScenarioState(
            variant_weights={"narcotics": {**dict.fromkeys(NARCOTICS_BASE, 0.0), "powder_pack": 0.1, "pills": 0.05,
                                           "in_cosmetics": 0.05, "in_book_spine": 0.45, "in_shoe_sole": 0.35}})),
        Scenario("scanner_ageing", f"scanner {AGEING_SCANNER} loses gain, its offset drifts, noise triples, "
                 "blur grows and detector columns drift apart", ScenarioState(
                     scanner=ScannerState(gain=0.9, offset=0.01, noise_scale=3.0, blur_scale=1.8,
                                          column_drift=0.02), scanner_ids=(AGEING_SCANNER,))),
        Scenario("seasonal_mix", "holiday season: more batteries, currency, toys and electronics", ScenarioState(
            benign_weights={**BENIGN_BASE, "toy": 3.0, "toy_car": 1.2, "phone": 2.5, "charger": 2.5,
                            "clothing": 4.0, "laptop": 1.2, "game_controller": 1.2, "tablet": 1.0, "earbuds": 1.0},
            threat_weights={"firearm": 0.4, "knife": 0.6, "ammunition": 0.4, "narcotics": 1.0, "currency": 2.5,
                            "lithium_battery": 3.5})),
    )
}


def get_scenario(name: str) -> Scenario:
    """The scenario called `name`; UnknownScenarioError lists the known ones."""
    if name not in SCENARIOS:
        raise UnknownScenarioError(f"unknown scenario {name!r}; known: {', '.join(SCENARIOS)}")
    return SCENARIOS[name]


def with_scanner(state: ScenarioState, scanner: ScannerState) -> ScenarioState:
    """A copy of `state` with other detector behaviour (used by tests and TIP canaries)."""
    return replace(state, scanner=scanner)
