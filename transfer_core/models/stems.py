"""Stem CNNs of TransFER (ICCV 2021): IR-50 stages 1-3, a ResNet-18 alternative and a small CPU stem.

Every stem maps (N, 3, S, S) -> (N, out_channels, S / stride, S / stride) and carries the attributes
`out_channels` and `stride` (as config.STEM_STRIDES declares it, where S is checked); the encoder makes
(S / stride)^2 tokens from its output.

- "ir50": IR-50 (face.evoLVe `backbone/model_irse.py`) truncated after stage 3, as the authors'
  release (`IRSE(num_layers=44)`: units (64,3), (128,4), (256,14), no stage 4), reference/transfer.md
  §2. 256 x 14 x 14 at 112 px, stride 8. Module names follow face.evoLVe exactly (`input_layer`, a
  flat `body` Sequential of bottleneck_IR units with `shortcut_layer` / `res_layer`), so a
  face.evoLVe MS1M checkpoint's `input_layer.*` and `body.0`-`20` keys map onto it unchanged
  (checkpoint.py). Conv weights are xavier-uniform initialised, as in face.evoLVe.
- "resnet18": torchvision's resnet18(weights=None) conv1 .. layer3 (256 channels, stride 16). Not in
  the paper; a cheaper, generic alternative. Never downloads weights.
- "small": ours, a cheap stem for the CPU `quick` profile: conv3x3/2 (3 -> w) + BN + ReLU, a basic
  residual block /2 (w -> 2w), a basic residual block (2w -> 2w); stride 4, out 2w, w =
  model.stem_width.
"""

from __future__ import annotations

from typing import Callable, Sequence

from torch import Tensor, nn

from transfer_core.config import ModelConfig
from transfer_core.registry import Registry

__all__ = ["STEMS", "IR50Stem", "BottleneckIR", "ResNet18Stem", "SmallStem", "IR50_STAGES",
           "IR50_STAGES_FULL"]

StemFactory = Callable[[ModelConfig], nn.Module]

STEMS: Registry[StemFactory] = Registry("stem")

IR50_STAGES: tuple[tuple[int, int], ...] = ((64, 3), (128, 4), (256, 14))   # TransFER's stages 1-3
IR50_STAGES_FULL: tuple[tuple[int, int], ...] = IR50_STAGES + ((512, 3),)    # full IR-50 (24 units)


# --------------------------------------------------------------------------- IR-50

class BottleneckIR(nn.Module):
    """face.evoLVe `bottleneck_IR(in, depth, stride)`; no activation after the sum."""

    def __init__(self, in_channels: int, depth: int, stride: int) -> None:
        super().__init__()
        if in_channels == depth:
            self.shortcut_layer: nn.Module = nn.MaxPool2d(1, stride)
        else:
            self.shortcut_layer = nn.Sequential(
                nn.Conv2d(in_channels, depth, 1, stride, bias=False), nn.BatchNorm2d(depth))
        self.res_layer = nn.Sequential(
            nn.BatchNorm2d(in_channels),
            nn.Conv2d(in_channels, depth, 3, 1, 1, bias=False),
            nn.PReLU(depth),
            nn.Conv2d(depth, depth, 3, stride, 1, bias=False),
            nn.BatchNorm2d(depth))

    def forward(self, x: Tensor) -> Tensor:
        return self.res_layer(x) + self.shortcut_layer(x)


class IR50Stem(nn.Module):
    """IR-50 input layer + bottleneck_IR stages; by default TransFER's stages 1-3 (21 units).

    `stages` is ((depth, units), ...); the first unit of each stage has stride 2. Passing
    IR50_STAGES_FULL builds all 24 units (useful to make face.evoLVe-shaped state dicts).
    """

    def __init__(self, stages: Sequence[tuple[int, int]] = IR50_STAGES, in_width: int = 64) -> None:
        super().__init__()
        self.input_layer = nn.Sequential(
            nn.Conv2d(3, in_width, 3, 1, 1, bias=False), nn.BatchNorm2d(in_width), nn.PReLU(in_width))
        units: list[nn.Module] = []
        channels = in_width
        for depth, count in stages:
            for i in range(count):
                units.append(BottleneckIR(channels, depth, 2 if i == 0 else 1))
                channels = depth
        self.body = nn.Sequential(*units)  # flat, as face.evoLVe: body.0 .. body.{len-1}
        self.out_channels = channels
        self.stride = 2 ** len(stages)
        self._init_weights()

    def _init_weights(self) -> None:
        for m in self.modules():  # face.evoLVe Backbone._initialize_weights
            if isinstance(m, nn.Conv2d):
                nn.init.xavier_uniform_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: Tensor) -> Tensor:
        return self.body(self.input_layer(x))  # (N, out_channels, S/stride, S/stride)


# --------------------------------------------------------------------------- ResNet-18

class ResNet18Stem(nn.Module):
    """torchvision resnet18 conv1 .. layer3 (module names kept, so its weights load by name)."""

    def __init__(self) -> None:
        from torchvision.models import resnet18  # lazily: torchvision's import costs ~1.3 s

        super().__init__()
        net = resnet18(weights=None)
        self.conv1, self.bn1, self.relu, self.maxpool = net.conv1, net.bn1, net.relu, net.maxpool
        self.layer1, self.layer2, self.layer3 = net.layer1, net.layer2, net.layer3
        self.out_channels = 256
        self.stride = 16

    def forward(self, x: Tensor) -> Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))     # (N, 64, S/4, S/4)
        return self.layer3(self.layer2(self.layer1(x)))          # (N, 256, S/16, S/16)


# --------------------------------------------------------------------------- small

class _BasicBlock(nn.Module):
    """conv3x3-BN-ReLU-conv3x3-BN + shortcut (1x1 conv-BN when the shape changes), then ReLU."""

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride, bias=False), nn.BatchNorm2d(out_channels))

    def forward(self, x: Tensor) -> Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + self.shortcut(x))


class SmallStem(nn.Module):
    """A cheap CPU stem: (N, 3, S, S) -> (N, 2w, S/4, S/4)."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.input_layer = nn.Sequential(
            nn.Conv2d(3, width, 3, 2, 1, bias=False), nn.BatchNorm2d(width), nn.ReLU(inplace=True))
        self.stage1 = _BasicBlock(width, 2 * width, stride=2)
        self.stage2 = _BasicBlock(2 * width, 2 * width, stride=1)
        self.out_channels = 2 * width
        self.stride = 4
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: Tensor) -> Tensor:
        x = self.input_layer(x)                 # (N, w, S/2, S/2)
        return self.stage2(self.stage1(x))      # (N, 2w, S/4, S/4)


# --------------------------------------------------------------------------- registry entries

@STEMS.register("ir50")
def ir50(cfg: ModelConfig) -> IR50Stem:
    return IR50Stem(IR50_STAGES)


@STEMS.register("resnet18")
def resnet18_stem(cfg: ModelConfig) -> ResNet18Stem:
    return ResNet18Stem()


@STEMS.register("small")
def small(cfg: ModelConfig) -> SmallStem:
    return SmallStem(cfg.stem_width)
