"""bench/content_breadth.py changes the renderer's threat split inside its process only: the moved variants leave
the held-out split for the duration, and the split is restored afterwards, also when the body fails."""

from __future__ import annotations

import numpy as np
import pytest

import xray.threats as threats
from bench.content_breadth import MOVED, held_out


def test_moved_variants_train_inside_the_block_and_the_split_is_restored_after() -> None:
    before = dict(threats.HELDOUT_VARIANTS)
    assert all(v in before[cls] for cls, v in MOVED.items())  # the bench names real held-out variants
    with pytest.raises(RuntimeError), held_out(True):
        for cls, v in MOVED.items():
            assert v in threats.variants_in_split(cls, "train") and v not in threats.variants_in_split(cls, "heldout")
        rng = np.random.default_rng(0)
        drawn = {threats.pick_variant(rng, "knife", split="heldout") for _ in range(50)}
        assert drawn == set(before["knife"]) - {MOVED["knife"]}  # held-out draws: only the kinds still unseen
        raise RuntimeError("the body fails")
    assert threats.HELDOUT_VARIANTS == before
    with held_out(False):
        assert threats.HELDOUT_VARIANTS == before
