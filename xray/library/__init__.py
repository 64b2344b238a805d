"""The content library: parametric families of containers, goods, look-alikes and threats, and their split.

Each family is a generator rng -> Thing (xray.shapes) with continuous parameters (sizes, makes, materials, how
many of what), registered with its kind, threat class, default weight and whether it is held out: a held-out
family is never drawn for the "train" content split, so a model can be measured on shapes it never saw
(docs/DATA.md lists them).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np

from xray.shapes import Thing

Kind = Literal["container", "benign", "threat"]


@dataclass(frozen=True)
class Family:
    name: str  # benign/container: the family (`laptop`); threat: the variant within its class (`revolver`)
    kind: Kind
    make: Callable[[np.random.Generator], Thing]
    weight: float  # default weight among its kind (benign, container) or within its class (threat)
    class_name: str | None = None  # threats only
    heldout: bool = False
    resembles: str | None = None  # benign look-alike of this threat class
    group: str = ""  # for documentation: electronics, metalware, clothing, ...
    about: str = ""  # one line for docs/DATA.md


def in_split(family: Family, split: str) -> bool:
    """Whether `family` may be drawn for content split `split` (train: not held out; heldout, all: any)."""
    return split != "train" or not family.heldout
