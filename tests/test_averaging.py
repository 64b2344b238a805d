"""Weight averaging of fine-tuning steps (screening.averaging) on tiny real networks."""

from __future__ import annotations

import pytest
import torch

from screening.averaging import average_checkpoint, average_state_dicts
from screening.reference import average_reference, train_reference
from screening.registry import Checkpoint
from screening.synthetic import render_set
from screening.train import TrainConfig
from xscreen.errors import ModelError
from xscreen.settings import Settings

pytestmark = pytest.mark.training  # trains a real model: in `make test`, not in a bare `pytest`


def _tiny(settings: Settings, size: int = 64) -> Settings:
    model = settings.model.model_copy(update={"input_size": size, "width": 4, "embedding_dim": 8, "seed": 9})
    return settings.model_copy(update={"model": model})


def test_state_dicts_average_elementwise_and_keep_integer_buffers() -> None:
    a = {"w": torch.tensor([1.0, 3.0]), "n": torch.tensor(5)}
    b = {"w": torch.tensor([3.0, 5.0]), "n": torch.tensor(7)}
    mean = average_state_dicts([a, b])
    assert torch.equal(mean["w"], torch.tensor([2.0, 4.0])) and int(mean["n"]) == 7
    with pytest.raises(ModelError, match="other tensors"):
        average_state_dicts([a, {"w": torch.zeros(3), "n": torch.tensor(1)}])
    with pytest.raises(ModelError, match="nothing to average"):
        average_state_dicts([])


def test_averaged_steps_are_one_calibrated_network_with_both_lineages(settings: Settings) -> None:
    small = _tiny(settings)
    parent, _ = train_reference(small, n_train=60, epochs=1, batch_size=8, lr=3e-3, workers=1)
    a, _ = train_reference(small, n_train=60, epochs=1, batch_size=8, lr=3e-3, workers=1, seed=10, parent=parent,
                           name="step-a")
    b, _ = train_reference(small, n_train=60, epochs=1, batch_size=8, lr=3e-3, workers=1, seed=11, parent=a,
                           name="step-b")
    avg = average_reference(small, [a, b], n=80, seed=12, workers=1, name="step-ab")

    plain = average_state_dicts([a.state_dict, b.state_dict])
    conv = next(k for k in plain if k.endswith("weight") and plain[k].dim() == 4)
    assert torch.allclose(avg.state_dict[conv], plain[conv])  # learned weights are the mean...
    bn = next(k for k in plain if k.endswith("running_var"))
    assert not torch.allclose(avg.state_dict[bn], plain[bn])  # ...batch-norm statistics are measured afresh
    assert avg.parent == "step-b" and avg.config == b.config
    assert avg.certificate["n_cal"] > 0 and set(avg.thresholds) >= {"any_threat"}
    lineage = avg.metrics["provenance"]["lineage"]
    assert [s["version"] for s in lineage] == ["reference-64", "step-a", "step-b", "step-ab"]
    assert lineage[-1]["from"] == ["step-a", "step-b"] and lineage[-1]["data"]["seed"] == 12


def test_networks_that_differ_are_not_averaged(settings: Settings) -> None:
    small, larger = _tiny(settings), _tiny(settings, size=80)
    a, _ = train_reference(small, n_train=40, epochs=1, batch_size=8, lr=3e-3, workers=1)
    b, _ = train_reference(larger, n_train=40, epochs=1, batch_size=8, lr=3e-3, workers=1)
    data, _ = render_set(40, 12, list(a.classes), 64, workers=1, progress=False)
    with pytest.raises(ModelError, match="networks differ"):
        average_checkpoint(small, [a, b], data, "ab", cfg=TrainConfig(seed=12, progress=False))
    other = Checkpoint(**{**a.__dict__, "config": a.config.__class__(**{**a.config.__dict__,
                                                                         "classes": ("knife", "firearm")})})
    with pytest.raises(ModelError, match="data classes"):
        average_checkpoint(small, [other], data, "x", cfg=TrainConfig(seed=12, progress=False))
