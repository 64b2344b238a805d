"""Materials and the dual-energy Beer–Lambert model: linear attenuation at a low and a high effective energy.

Transmission through a stack of materials is T(E) = exp(-sum_i mu_i(E) * t_i). We keep two log-attenuation
accumulators (low, high) per image; the ratio a_low / a_high rises with effective atomic number, which is
what a dual-energy scanner uses to colour organic (Z~6-8), inorganic/light metals (Z~10-14) and metals (Z>20).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Detector floor: the smallest transmission a detector resolves above its dark current. Anything denser
# saturates here (shown black), which is why thick steel or lead hides what lies behind it.
TRANSMISSION_FLOOR = 1e-3
MAX_ATTENUATION = float(-np.log(TRANSMISSION_FLOOR))

E_LOW_KEV = 60.0
E_HIGH_KEV = 120.0


@dataclass(frozen=True)
class Material:
    """A material with mass-attenuation coefficients (cm^2/g) at the two effective energies and a density."""

    name: str
    family: str  # organic | inorganic | metal: the colour class a screening station should show
    mass_att_low: float
    mass_att_high: float
    density: float  # g/cm^3 (bulk density for fabrics and powders)

    @property
    def mu_low(self) -> float:
        """Linear attenuation at the low energy, per millimetre."""
        return self.mass_att_low * self.density / 10.0

    @property
    def mu_high(self) -> float:
        """Linear attenuation at the high energy, per millimetre."""
        return self.mass_att_high * self.density / 10.0

    @property
    def ratio(self) -> float:
        """a_low / a_high, independent of thickness: the dual-energy material signature."""
        return self.mass_att_low / self.mass_att_high


# Mass attenuation (cm^2/g, with coherent scattering) read off NIST XCOM near 60 keV and 120 keV, rounded.
# Lead is the exception: its K-edge (88 keV) makes a monochromatic 60/120 keV pair call it "organic", while a
# real polychromatic tube and integrating detector see it as the densest metal; we use 40/150 keV values.
_TABLE = [
    # name, family, mu/rho low, mu/rho high, density
    ("cotton", "organic", 0.197, 0.156, 0.35),  # folded fabric, bulk density
    ("paper", "organic", 0.197, 0.156, 0.80),
    ("cardboard", "organic", 0.197, 0.156, 0.25),  # corrugated board, bulk
    ("polyethylene", "organic", 0.194, 0.162, 0.94),
    ("rubber", "organic", 0.190, 0.158, 1.10),
    ("water", "organic", 0.206, 0.163, 1.00),  # liquids, food, cosmetics
    ("food", "organic", 0.200, 0.159, 0.90),
    ("wood", "organic", 0.195, 0.156, 0.60),
    ("narcotic", "organic", 0.191, 0.158, 1.05),  # cocaine/heroin HCl powder compressed, C17H21NO4
    ("glass", "inorganic", 0.251, 0.153, 2.50),
    ("salt", "inorganic", 0.300, 0.152, 1.20),  # table salt (NaCl), bulk: a classic inorganic false alarm
    ("aluminium", "inorganic", 0.278, 0.155, 2.70),
    ("circuit_board", "inorganic", 0.236, 0.155, 1.90),  # FR4: epoxy + glass fibre
    ("li_cell", "inorganic", 0.380, 0.180, 2.60),  # electrode stack: graphite, Cu/Al foils, LiCoO2, electrolyte
    ("steel", "metal", 1.205, 0.279, 7.87),
    ("copper", "metal", 1.593, 0.331, 8.96),
    ("brass", "metal", 1.660, 0.340, 8.50),
    ("zinc_alloy", "metal", 1.800, 0.352, 6.60),
    ("lead", "metal", 14.36, 2.014, 11.35),
    ("silver", "metal", 2.900, 0.580, 10.49),
    ("mno2", "metal", 0.760, 0.220, 2.80),  # alkaline cell cathode paste (MnO2 + graphite), effective
]

MATERIALS: dict[str, Material] = {row[0]: Material(*row) for row in _TABLE}

# Ratio boundaries between colour families (a_low / a_high), used by palettes and image_stats.
RATIO_ORGANIC_MAX = 1.45
RATIO_METAL_MIN = 2.6


def material(name: str) -> Material:
    """The material called `name`; KeyError names the known ones (a programming error, not user input)."""
    try:
        return MATERIALS[name]
    except KeyError:
        raise KeyError(f"unknown material {name!r}; known: {', '.join(sorted(MATERIALS))}") from None


def transmission(thickness_mm: np.ndarray, name: str) -> tuple[np.ndarray, np.ndarray]:
    """(T_high, T_low) through `thickness_mm` of one material, clipped at the detector floor."""
    mat = material(name)
    t = np.asarray(thickness_mm, dtype=np.float32)
    high = np.exp(-mat.mu_high * t).astype(np.float32)
    low = np.exp(-mat.mu_low * t).astype(np.float32)
    return np.maximum(high, TRANSMISSION_FLOOR), np.maximum(low, TRANSMISSION_FLOOR)


def attenuation(trans: np.ndarray) -> np.ndarray:
    """-ln(T) in float32, with T clipped to [TRANSMISSION_FLOOR, 1] first."""
    t = np.clip(np.asarray(trans, dtype=np.float32), TRANSMISSION_FLOOR, 1.0)
    return -np.log(t)
