"""The screening network: a compact CNN with multi-label + any-threat heads, class activation maps and an embedding.

Read bottom-up: ConvBN -> Block -> ScreeningNet. The class heads are 1x1 convolutions applied to the last feature
map *before* pooling, so the per-class activation map (CAM) is the head itself: heatmaps cost nothing extra at
inference and need no backward pass. Pooling is log-sum-exp (a smooth max) rather than a plain average, because a
threat is usually a small part of a parcel: averaging would drown a knife in a suitcase of clothes.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class NetConfig:
    """Arguments that rebuild the network; stored in every checkpoint."""

    classes: tuple[str, ...]
    input_size: int = 256  # side of the square letterboxed canvas (pixels)
    width: int = 32  # channels of the stem and first stage; each later stage doubles it
    embedding_dim: int = 64
    stages: int = 3  # stride-2 stages after the stem: output stride = 2 ** (stages + 1)
    pool_r: float = 4.0  # sharpness of log-sum-exp pooling (large -> max, small -> mean)
    dropout: float = 0.0  # on the last features; 0 since box supervision: the default model underfits (train AP = test AP)
    # dilations of residual 3x3 convolutions after the last stage: they widen the receptive field of each heatmap
    # cell (a cell must see a whole brick or pistol to tell it from a book or a phone) at the last map's cost
    context: tuple[int, ...] = ()
    arch: str = field(default="xscreen-cnn-v1")  # bumped whenever the module layout changes

    def __post_init__(self) -> None:
        object.__setattr__(self, "classes", tuple(self.classes))
        object.__setattr__(self, "context", tuple(int(d) for d in self.context))
        if not self.classes:
            raise ValueError("NetConfig.classes is empty")
        if self.input_size % (2 ** (self.stages + 1)):
            raise ValueError(f"input_size {self.input_size} is not a multiple of {2 ** (self.stages + 1)}")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["classes"] = list(self.classes)
        d["context"] = list(self.context)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> NetConfig:
        return cls(**{**d, "classes": tuple(d["classes"]), "context": tuple(d.get("context", ()))})

    @property
    def feature_size(self) -> int:
        """Side of the last feature map, i.e. of the raw CAM grid."""
        return self.input_size // 2 ** (self.stages + 1)


class NetOutput(NamedTuple):
    class_logits: torch.Tensor  # (B, K)
    any_logit: torch.Tensor  # (B,)
    class_cams: torch.Tensor  # (B, K, h, w) per-class evidence before pooling (logit units, bias excluded)
    any_cam: torch.Tensor  # (B, h, w)
    embedding: torch.Tensor  # (B, D), L2-normalised


class ConvBN(nn.Sequential):
    """3x3 convolution, batch norm, ReLU."""

    def __init__(self, cin: int, cout: int, stride: int = 1) -> None:
        super().__init__(
            nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU(inplace=True),
        )


class Block(nn.Module):
    """Downsampling stage: a stride-2 conv that widens, then a residual 3x3 conv at the new resolution."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.down = ConvBN(cin, cout, stride=2)
        self.conv = nn.Sequential(
            nn.Conv2d(cout, cout, 3, padding=1, bias=False),
            nn.BatchNorm2d(cout),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.down(x)
        return F.relu(x + self.conv(x), inplace=True)


class ContextBlock(nn.Module):
    """Residual dilated 3x3 conv at the last resolution: more context per heatmap cell without losing resolution."""

    def __init__(self, c: int, dilation: int) -> None:
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(c, c, 3, padding=dilation, dilation=dilation, bias=False),
            nn.BatchNorm2d(c),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(x + self.conv(x), inplace=True)


def lse_pool(cam: torch.Tensor, r: float) -> torch.Tensor:
    """Log-mean-exp over the spatial grid: (B, K, h, w) -> (B, K). Equals the mean for r->0 and the max for r->inf."""
    flat = cam.flatten(2)  # (B, K, h*w)
    return (torch.logsumexp(r * flat, dim=2) - math.log(flat.shape[2])) / r


class ScreeningNet(nn.Module):
    """Image canvas (B, 3, S, S) in [0, 1] -> class logits, any-threat logit, CAMs and embedding."""

    def __init__(self, config: NetConfig) -> None:
        super().__init__()
        self.config = config
        w = config.width
        # The stem halves the resolution at once: X-ray parcels are large, flat regions and full-resolution
        # convolutions would cost most of the CPU budget for little gain.
        self.stem = ConvBN(3, w, stride=2)
        widths = [w] + [w * 2**i for i in range(config.stages)]  # stem, then stages w, 2w, 4w, ...
        c = widths[-1]
        self.stages = nn.Sequential(*[Block(widths[i], widths[i + 1]) for i in range(config.stages)],
                                    *[ContextBlock(c, d) for d in config.context])
        self.dropout = nn.Dropout2d(config.dropout)
        # CAM-compatible heads: a 1x1 conv is a per-pixel linear classifier; biases are kept apart so that the
        # CAM shows evidence only (pooling commutes with adding a constant).
        self.class_head = nn.Conv2d(c, len(config.classes), 1, bias=False)
        self.class_bias = nn.Parameter(torch.zeros(len(config.classes)))
        self.any_head = nn.Conv2d(c, 1, 1, bias=False)
        self.any_bias = nn.Parameter(torch.zeros(1))
        self.embed = nn.Linear(c, config.embedding_dim)

    def forward(self, x: torch.Tensor) -> NetOutput:
        return self.resume(self.trunk(x, 0), 0)

    def trunk(self, x: torch.Tensor, stages: int) -> torch.Tensor:
        """The stem and the first `stages` stages: (B, 3, S, S) canvas -> (B, C_k, h_k, w_k) features. Adaptation
        (screening.adapt_tail) freezes and caches this part and trains only what `resume` runs."""
        # Centre the input on the empty-beam value: most of a parcel image is 1.0 (nothing in the beam).
        return self.stages[:stages](self.stem(x - 0.5))

    def resume(self, f: torch.Tensor, stage: int) -> NetOutput:
        """The rest of the network from the output of `trunk(x, stage)`: forward(x) == resume(trunk(x, k), k)."""
        f = self.stages[stage:](f)  # (B, C, h, w)
        fd = self.dropout(f)
        class_cams = self.class_head(fd)  # (B, K, h, w)
        any_cam = self.any_head(fd)[:, 0]  # (B, h, w)
        r = self.config.pool_r
        class_logits = lse_pool(class_cams, r) + self.class_bias  # (B, K)
        any_logit = lse_pool(any_cam[:, None], r)[:, 0] + self.any_bias  # (B,)
        emb = self.embed(f.mean(dim=(2, 3)))  # (B, D)
        return NetOutput(class_logits, any_logit, class_cams, any_cam, F.normalize(emb, dim=1))


def build_network(config: NetConfig, seed: int | None = None) -> ScreeningNet:
    """A freshly initialised network; `seed` makes the initial weights reproducible without touching global RNG."""
    if seed is None:
        return ScreeningNet(config)
    state = torch.random.get_rng_state()
    try:
        torch.manual_seed(seed)
        return ScreeningNet(config)
    finally:
        torch.random.set_rng_state(state)
