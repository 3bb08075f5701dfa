"""Dropping on the local branch: MAD (TransFER, ICCV 2021) and the regularisers it is compared with.

TransFER's Multi-Attention Dropping (MAD, reference/transfer.md §4) acts on the stacked LANet
attention maps (N, B, h, w) before they are fused by an element-wise max: in training, for each
sample independently, with probability p it picks ONE of the B maps uniformly and sets all of its
pixels to 0. Survivors are not rescaled.

For the paper's ablation of dropping two or more maps (§12: "no real improvement"), `drop_maps` = k
picks k DISTINCT maps, uniformly among the k-subsets, and k must stay below B (all B dropped would
zero the fused map). The release draws its k (`drop_upper`) with `random.choices`, WITH replacement:
at its k = 1 the two agree (and ours draws exactly as before the option existed), at k > 1 the
release can draw one map twice and drop fewer than k, so its k is an upper bound, not a count. We
follow the paper's "dropping two or more": a row labelled k drops k maps. Only MAD takes a count;
the other variants refuse one other than 1 (they drop each pixel, block or map independently).

The paper's Table 2 compares MAD with Dropout, DropBlock and Spatial Dropout. Where the paper
placed those regularisers is not known to us; our reading is that each of them REPLACES MAD at the
same place, on the stacked attention maps, with the same drop probability `rate`. So every variant
here shares one signature, `factory(rate, num_maps, block_size, drop_maps=1) -> nn.Module` mapping
(N, B, h, w) -> (N, B, h, w), and an ablation is a registry key (`DROPPING.get("dropblock")`).

Every variant is the identity when not training. All randomness comes from torch's RNG, so that
seeding and saving/restoring torch's RNG state reproduce a run exactly.

Style: as timm's `timm/layers/drop.py`, a pure function per regulariser plus a thin Module whose
`extra_repr` shows the rate.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from transfer_core.registry import Registry

__all__ = ["DROPPING", "multi_attention_drop", "MultiAttentionDropping", "MapDropout",
           "MapDropBlock", "MapSpatialDropout", "NoDropping"]

DropFactory = Callable[..., nn.Module]   # (rate, num_maps, block_size, drop_maps=1)

DROPPING: Registry[DropFactory] = Registry("dropping variant")


def _check_rate(rate: float) -> float:
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"dropping rate={rate!r} is invalid: expected a number in [0, 1]")
    return float(rate)


def _check_maps(maps: Tensor) -> None:
    if maps.dim() != 4:
        raise ValueError(f"attention maps must be (N, B, h, w); got shape {tuple(maps.shape)}")


# --------------------------------------------------------------------------- pure functions

def check_drop_count(name: str, count: int, slots: int, noun: str, why: str) -> int:
    """`count`, what MAD (slots: the B maps) or MSAD mode head (slots: the heads) zeroes in a dropped sample: 1 at
    any number of slots, as the release, or distinct slots fewer than all of them (`why`: what all would do)."""
    if count < 1 or (count > 1 and count >= slots):
        most = f"from 1 to {slots - 1}" if slots > 2 else "1"
        raise ValueError(f"{name}={count!r} is invalid with {slots} {noun}: expected {most} ({why})")
    return int(count)


def _check_drop_maps(drop_maps: int, num_maps: int) -> int:
    return check_drop_count("drop_maps", drop_maps, num_maps, "maps", "dropping every map zeroes the fused map")


def multi_attention_drop(maps: Tensor, rate: float, training: bool = True, drop_maps: int = 1) -> Tensor:
    """MAD: per sample, with probability `rate`, zero `drop_maps` distinct maps (ONE by default), chosen
    uniformly.

    maps: (N, B, h, w). No rescaling of the survivors. Identity when not training or rate == 0.
    drop_maps > 1 must be below B (see the module docstring for how the release differs).
    """
    _check_maps(maps)
    if not training or rate == 0.0:
        return maps
    n, b = maps.shape[:2]
    _check_drop_maps(drop_maps, b)
    hit = per_sample_drops(n, b, rate, drop_maps, maps.device)            # (N, B)
    keep = (~hit).to(maps.dtype)[:, :, None, None]                        # (N, B, 1, 1)
    return maps * keep


def per_sample_drops(n: int, slots: int, rate: float, count: int, device: torch.device) -> Tensor:
    """(N, slots) bool, what MAD (slots: the B maps) and MSAD mode head (slots: the heads) zero: per sample,
    with probability `rate`, `count` distinct slots, uniformly among the count-subsets."""
    dropped = torch.rand(n, device=device) < rate                         # (N,) which samples drop
    if count == 1:  # the draw as before counts existed: a seeded run reproduces bit for bit
        index = torch.randint(slots, (n,), device=device)                 # (N,) which slot each drops
        hit = F.one_hot(index, slots).bool()                              # (N, slots)
    else:
        order = torch.rand(n, slots, device=device).argsort(dim=1)        # (N, slots) a random permutation each
        hit = torch.zeros(n, slots, dtype=torch.bool, device=device).scatter_(1, order[:, :count], True)
    return hit & dropped[:, None]


# --------------------------------------------------------------------------- modules

class _MapDropping(nn.Module):
    """Common constructor: (rate, num_maps, block_size, drop_maps); the rate is checked and shown. Only MAD
    drops a count of maps: the others refuse drop_maps other than 1."""

    def __init__(self, rate: float, num_maps: int, block_size: int = 1, drop_maps: int = 1) -> None:
        super().__init__()
        self.rate = _check_rate(rate)
        if num_maps < 1:
            raise ValueError(f"num_maps={num_maps!r} is invalid: expected an integer >= 1")
        self.num_maps = int(num_maps)
        self.block_size = int(block_size)
        if drop_maps != 1 and not isinstance(self, MultiAttentionDropping):
            raise ValueError(f"drop_maps={drop_maps!r} is invalid for {type(self).__name__}: expected 1 (only MAD "
                             "drops a number of maps; this variant drops each pixel, block or map independently "
                             "with its rate)")
        self.drop_maps = _check_drop_maps(drop_maps, self.num_maps)

    def extra_repr(self) -> str:
        return f"rate={self.rate}"


@DROPPING.register("none")
class NoDropping(_MapDropping):
    """No dropping (the paper's "Local CNNs" row of Table 1)."""

    def forward(self, maps: Tensor) -> Tensor:
        _check_maps(maps)
        return maps


@DROPPING.register("dropout")
class MapDropout(_MapDropping):
    """Element-wise dropout on the maps, survivors rescaled by 1 / (1 - rate)."""

    def forward(self, maps: Tensor) -> Tensor:
        _check_maps(maps)
        return F.dropout(maps, self.rate, self.training)


@DROPPING.register("dropblock")
class MapDropBlock(_MapDropping):
    """DropBlock (torchvision.ops.drop_block2d) on each map, standard rescaling.

    The block side is odd (torchvision refuses an even one). It is clipped to the map side: a block
    larger than the map is the whole map, dropped with probability `rate` and rescaled as
    torchvision does; where the map side is even (8 x 8 maps at 32 px on the small stem), that clip
    would give torchvision an even block, so the whole-map drop is computed here.
    """

    def __init__(self, rate: float, num_maps: int, block_size: int = 3, drop_maps: int = 1) -> None:
        super().__init__(rate, num_maps, block_size, drop_maps)
        if block_size < 1 or block_size % 2 == 0:
            raise ValueError(f"block_size={block_size!r} is invalid: expected an odd integer >= 1")

    def forward(self, maps: Tensor) -> Tensor:
        _check_maps(maps)
        if not self.training or self.rate == 0.0:
            return maps
        from torchvision.ops import drop_block2d  # lazily: torchvision's import costs ~1.3 s

        block = min(self.block_size, maps.shape[-2], maps.shape[-1])
        if block % 2 == 1:
            return drop_block2d(maps, self.rate, block, inplace=False, training=True)
        # the block covers an even-sided map: drop_block2d's own result for a whole-map block
        # (gamma = rate, one draw per map, survivors scaled by numel / kept), which it cannot compute
        dropped = torch.rand(maps.shape[0], maps.shape[1], 1, 1, device=maps.device) < self.rate
        keep = (~dropped).to(maps.dtype)                                       # (N, B, 1, 1)
        return maps * keep * (keep.numel() / (1e-6 + keep.sum()))

    def extra_repr(self) -> str:
        return f"rate={self.rate}, block_size={self.block_size}"


@DROPPING.register("spatial_dropout")
class MapSpatialDropout(_MapDropping):
    """Spatial dropout (F.dropout2d): whole maps dropped independently with `rate`, per sample;
    survivors rescaled by 1 / (1 - rate)."""

    def forward(self, maps: Tensor) -> Tensor:
        _check_maps(maps)
        return F.dropout2d(maps, self.rate, self.training)


@DROPPING.register("mad")
class MultiAttentionDropping(_MapDropping):
    """MAD (transfer.md §4): per sample, with probability `rate`, zero `drop_maps` distinct maps (one by
    default, as released); no rescaling."""

    def forward(self, maps: Tensor) -> Tensor:
        return multi_attention_drop(maps, self.rate, self.training, self.drop_maps)

    def extra_repr(self) -> str:
        return f"rate={self.rate}, drop_maps={self.drop_maps}"
