"""Threat classes as a registry of variant generators over the content library: adding a class = a config
entry + its families in xray.library.catalogue.

Each class has variants (make, kind, carrier) with default weights; scenarios may re-weight variants (the
`new_concealment` scenario moves narcotics into book spines and shoe soles). Concealed variants draw their
carrier as non-core parts, so the threat's box and mask cover only the threat itself. Some variants of every
class are held out (HELDOUT_VARIANTS): never drawn for content split "train", the only ones drawn for "heldout".
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from xray.library.catalogue import THREATS
from xray.shapes import Generator, Thing
from xscreen.errors import ConfigError

VariantGenerator = Generator


class UnknownClassError(ConfigError):
    """A threat class in the configuration that has no shape generator."""

    title = "Unknown threat class"


@dataclass(frozen=True)
class ThreatClass:
    name: str
    variants: dict[str, tuple[float, VariantGenerator]]  # variant -> (default weight, generator)


THREAT_CLASSES: dict[str, ThreatClass] = {
    cls: ThreatClass(cls, {name: (f.weight, f.make) for name, f in fams.items()}) for cls, fams in THREATS.items()
}
HELDOUT_VARIANTS: dict[str, tuple[str, ...]] = {
    cls: tuple(name for name, f in fams.items() if f.heldout) for cls, fams in THREATS.items()
}


def check_classes(classes: list[str] | tuple[str, ...]) -> None:
    """UnknownClassError naming the first class without a generator."""
    for name in classes:
        if name not in THREAT_CLASSES:
            raise UnknownClassError(f"unknown threat class {name!r}: no shape generator; "
                                    f"known: {', '.join(THREAT_CLASSES)}")


def variants_in_split(class_name: str, split: str) -> list[str]:
    """The variants of `class_name` that content split `split` may draw (train / heldout / all)."""
    held = HELDOUT_VARIANTS.get(class_name, ())
    return [n for n in THREAT_CLASSES[class_name].variants if split == "all" or (n in held) == (split == "heldout")]


def pick_variant(rng: np.random.Generator, class_name: str, variant_weights: dict[str, float] | None = None,
                 split: str = "all") -> str:
    """A variant of `class_name` drawn by weight (`variant_weights` overrides the defaults) within `split`."""
    check_classes([class_name])
    cls = THREAT_CLASSES[class_name]
    names = variants_in_split(class_name, split)
    weights = np.array([(variant_weights or {}).get(n, cls.variants[n][0]) for n in names], dtype=float)
    if weights.sum() <= 0:
        weights = np.ones(len(names))
    return names[int(rng.choice(len(names), p=weights / weights.sum()))]


def make_threat(rng: np.random.Generator, class_name: str, variant_weights: dict[str, float] | None = None,
                split: str = "all") -> Thing:
    """One threat object of `class_name`; `variant_weights` overrides the class's default variant mix; `split`
    "train" leaves out HELDOUT_VARIANTS, "heldout" keeps only them, "all" draws every variant."""
    variant = pick_variant(rng, class_name, variant_weights, split)
    return THREAT_CLASSES[class_name].variants[variant][1](rng)
