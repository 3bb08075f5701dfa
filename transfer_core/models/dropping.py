"""Dropping on the local branch: MAD (TransFER, ICCV 2021) and the regularisers it is compared with.

TransFER's Multi-Attention Dropping (MAD, reference/transfer.md §4) acts on the stacked LANet
attention maps (N, B, h, w) before they are fused by an element-wise max: in training, for each
sample independently, with probability p it picks ONE of the B maps uniformly and sets all of its
pixels to 0. Survivors are not rescaled.

The paper's Table 2 compares MAD with Dropout, DropBlock and Spatial Dropout. Where the paper
placed those regularisers is not known to us; our reading is that each of them REPLACES MAD at the
same place, on the stacked attention maps, with the same drop probability `rate`. So every variant
here shares one signature, `factory(rate, num_maps, block_size) -> nn.Module` mapping
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

DropFactory = Callable[[float, int, int], nn.Module]

DROPPING: Registry[DropFactory] = Registry("dropping variant")


def _check_rate(rate: float) -> float:
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"dropping rate={rate!r} is invalid: expected a number in [0, 1]")
    return float(rate)


def _check_maps(maps: Tensor) -> None:
    if maps.dim() != 4:
        raise ValueError(f"attention maps must be (N, B, h, w); got shape {tuple(maps.shape)}")


# --------------------------------------------------------------------------- pure functions

def multi_attention_drop(maps: Tensor, rate: float, training: bool = True) -> Tensor:
    """MAD: per sample, with probability `rate`, zero ONE of the B maps (chosen uniformly).

    maps: (N, B, h, w). No rescaling of the survivors. Identity when not training or rate == 0.
    """
    _check_maps(maps)
    if not training or rate == 0.0:
        return maps
    n, b = maps.shape[:2]
    dropped = torch.rand(n, device=maps.device) < rate                    # (N,) which samples drop
    index = torch.randint(b, (n,), device=maps.device)                    # (N,) which map each drops
    hit = F.one_hot(index, b).bool() & dropped[:, None]                   # (N, B)
    keep = (~hit).to(maps.dtype)[:, :, None, None]                        # (N, B, 1, 1)
    return maps * keep


# --------------------------------------------------------------------------- modules

class _MapDropping(nn.Module):
    """Common constructor: (rate, num_maps, block_size); the rate is checked and shown."""

    def __init__(self, rate: float, num_maps: int, block_size: int = 1) -> None:
        super().__init__()
        self.rate = _check_rate(rate)
        if num_maps < 1:
            raise ValueError(f"num_maps={num_maps!r} is invalid: expected an integer >= 1")
        self.num_maps = int(num_maps)
        self.block_size = int(block_size)

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

    def __init__(self, rate: float, num_maps: int, block_size: int = 3) -> None:
        super().__init__(rate, num_maps, block_size)
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
    """MAD (transfer.md §4): per sample, with probability `rate`, zero one map; no rescaling."""

    def forward(self, maps: Tensor) -> Tensor:
        return multi_attention_drop(maps, self.rate, self.training)
