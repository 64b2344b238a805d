"""Benign goods by family: the registry the scenarios weight, over the content library (xray.library).

`vape` and `smartwatch` are the new goods of the `new_goods` scenario: they exist here but baseline mail never
contains them. HELDOUT_BENIGN families are never drawn for the "train" content split.
"""

from __future__ import annotations

from xray.library.catalogue import BENIGN, NEW_GOODS
from xray.shapes import Generator

BENIGN_ITEMS: dict[str, Generator] = {name: f.make for name, f in BENIGN.items()}
BENIGN_WEIGHTS: dict[str, float] = {name: f.weight for name, f in BENIGN.items()}  # the baseline mix
HELDOUT_BENIGN: tuple[str, ...] = tuple(name for name, f in BENIGN.items() if f.heldout)
LOOKALIKES: dict[str, str] = {name: f.resembles for name, f in BENIGN.items() if f.resembles}

__all__ = ["BENIGN_ITEMS", "BENIGN_WEIGHTS", "HELDOUT_BENIGN", "LOOKALIKES", "NEW_GOODS"]
