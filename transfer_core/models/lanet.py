"""The local branch of TransFER (ICCV 2021): B LANets, a dropping variant, max fusion, reweighting.

reference/transfer.md §3-4 (confirmed from the authors' `la_max.py`):
- One LANet: Conv1x1(C -> C/ratio, bias) -> BN -> ReLU -> Conv1x1(-> 1, bias) -> BN -> Sigmoid,
  giving a map (N, 1, h, w) in [0, 1]. B LANets with separate weights.
- The maps are stacked (N, B, h, w), passed through the dropping variant (MAD by default, see
  dropping.py), fused by an element-wise max over B (keepdim) into M (N, 1, h, w), and the stem
  features are reweighted: X * M, broadcast over the C channels.
- The released code's diversity loss is off (weight 0) and is not implemented here.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["LANet", "LocalBranch"]


class LANet(nn.Module):
    """One local attention network: (N, C, h, w) -> attention map (N, 1, h, w) in [0, 1]."""

    def __init__(self, in_channels: int, ratio: int = 16) -> None:
        super().__init__()
        hidden = max(1, in_channels // ratio)
        self.net = nn.Sequential(
            nn.Conv2d(in_channels, hidden, kernel_size=1, bias=True),
            nn.BatchNorm2d(hidden),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, 1, kernel_size=1, bias=True),
            nn.BatchNorm2d(1),
            nn.Sigmoid(),
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)  # (N, 1, h, w)


class LocalBranch(nn.Module):
    """B LANets + a dropping variant on their stacked maps + max fusion; returns X * M."""

    def __init__(self, in_channels: int, num_lanets: int, ratio: int, dropping: nn.Module) -> None:
        super().__init__()
        self.lanets = nn.ModuleList(LANet(in_channels, ratio) for _ in range(num_lanets))
        self.dropping = dropping

    def maps(self, x: Tensor) -> Tensor:
        """The B attention maps, stacked, before any dropping: (N, B, h, w)."""
        return torch.cat([lanet(x) for lanet in self.lanets], dim=1)  # (N, B, h, w)

    def fused_map(self, x: Tensor) -> Tensor:
        """M = max over the (dropped, when training) maps: (N, 1, h, w)."""
        maps = self.dropping(self.maps(x))                      # (N, B, h, w)
        return maps.amax(dim=1, keepdim=True)                   # (N, 1, h, w)

    def forward(self, x: Tensor) -> Tensor:
        return x * self.fused_map(x)                            # (N, C, h, w)

