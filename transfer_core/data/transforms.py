"""Batch transforms: uint8 (B, 3, H, W) tensors in, normalised float32 (B, 3, S, S) out.

Recipes (cfg.augment; reference/transfer.md §10):
- "released": the official TransFER port (Paddle TransFER.yaml), per sample: RandomResizedCrop(S,
  scale (0.08, 1), ratio (3/4, 4/3)) -> h-flip 0.5 -> RandAugment(2 ops, magnitude 5 of ppcls's 10) ->
  normalise -> RandomErasing(p 0.5, scale (0.02, 0.4), ratio (0.3, 3.3), value 0). Unlike the port,
  RandomErasing really runs on the normalised CHW tensor (the port's erases almost nothing, §10.1).
- "apvit": APViT's RAF-DB pipeline (§10.3), per sample: RandomRotation(6 deg) with p 0.5 ->
  RandomResizedCrop(S, scale (0.8, 1), ratio 1) -> h-flip 0.5 -> RandomGrayscale 0.2 ->
  ColorJitter(0.4, 0.4, 0.4, 0.1) with p 0.8 -> normalise -> RandomErasing(p 0.5, scale
  (0.02, 0.33), ratio (0.3, 3.3), random fill).
- "light": cheap and vectorised over the batch for CPU profiles: a random resized crop (scale
  (0.7, 1), ratio (3/4, 4/3)) and a horizontal flip, both as one affine grid_sample per batch,
  then normalise.
- "none": normalise only (also what evaluation uses).
Normalisation (cfg.normalize): "imagenet" mean (0.485, 0.456, 0.406) std (0.229, 0.224, 0.225) on
the [0, 1] scale (the port's), or "half" mean = std = 0.5 (face.evoLVe's).

All randomness comes from torch's global RNG (torchvision.transforms.v2 and torch.rand draw from it),
never from Python's `random` or numpy, so restoring torch's RNG state replays an epoch exactly.
"""

from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn.functional as F

NORMALIZATION = {
    "imagenet": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
    "half": ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),
}
AUGMENTS = ("released", "apvit", "light", "none")


def normalize(x: torch.Tensor, kind: str) -> torch.Tensor:
    """float (B, 3, H, W) in [0, 1] -> normalised, per `kind` ("imagenet" or "half")."""
    mean, std = NORMALIZATION[kind]
    mean_t = torch.tensor(mean, dtype=x.dtype).view(1, 3, 1, 1)
    std_t = torch.tensor(std, dtype=x.dtype).view(1, 3, 1, 1)
    return (x - mean_t) / std_t


def to_unit(x: torch.Tensor, image_size: int) -> torch.Tensor:
    """uint8 (B, 3, H, W) -> float32 [0, 1] (B, 3, S, S), resized (antialiased) only if H, W != S."""
    x = x.float().div_(255.0)
    if x.shape[-2:] != (image_size, image_size):
        x = F.interpolate(x, size=(image_size, image_size), mode="bilinear", antialias=True, align_corners=False)
        x = x.clamp_(0.0, 1.0)
    return x


def light_crop_flip(x: torch.Tensor, image_size: int, scale: tuple[float, float] = (0.7, 1.0),
                    ratio: tuple[float, float] = (3 / 4, 4 / 3)) -> torch.Tensor:
    """Random resized crop + h-flip of a whole batch in one grid_sample.

    x: float (B, 3, H, W) in [0, 1] -> (B, 3, S, S). Each sample gets its own crop (area fraction
    in `scale`, aspect in `ratio`, clipped to the image) and a flip with probability 0.5.
    """
    b = x.shape[0]
    area = torch.empty(b).uniform_(*scale)
    aspect = torch.exp(torch.empty(b).uniform_(math.log(ratio[0]), math.log(ratio[1])))
    half_w = torch.sqrt(area * aspect).clamp(max=1.0)                 # half extents in [-1, 1] units
    half_h = torch.sqrt(area / aspect).clamp(max=1.0)
    cx = (torch.rand(b) * 2 - 1) * (1 - half_w)
    cy = (torch.rand(b) * 2 - 1) * (1 - half_h)
    flip = torch.where(torch.rand(b) < 0.5, -1.0, 1.0)
    # the affine grid of an axis-aligned crop, built separably (cheaper than F.affine_grid)
    base = (torch.arange(image_size, dtype=torch.float32) * 2 + 1) / image_size - 1   # pixel centres
    gx = cx[:, None] + (half_w * flip)[:, None] * base                                # (B, S)
    gy = cy[:, None] + half_h[:, None] * base                                         # (B, S)
    grid = torch.stack(torch.broadcast_tensors(gx[:, None, :], gy[:, :, None]), dim=-1)  # (B, S, S, 2)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def per_sample_pipeline(augment: str, image_size: int, norm: str):
    """The v2 pipeline of one uint8 (3, H, W) image for the "released" and "apvit" recipes.

    torchvision is imported here, not at module level: importing it costs ~1.3 s (it pulls in
    torch._dynamo), paid by every fresh trial process even when the recipe is batched."""
    from torchvision.transforms import v2

    mean, std = NORMALIZATION[norm]
    if augment == "released":
        return v2.Compose([
            v2.RandomResizedCrop(image_size, scale=(0.08, 1.0), ratio=(3 / 4, 4 / 3), antialias=True),
            v2.RandomHorizontalFlip(0.5),
            # ppcls RandAugment(magnitude=5) scales each op's maximum by magnitude / max_level = 5 / 10;
            # torchvision indexes magnitude into num_magnitude_bins (31 by default: 5 -> 1/6 of the
            # maximum, 3x weaker). 11 bins put magnitude 5 at exactly 1/2 (rotate 15 deg, shear 0.15,
            # translate 0.23 of the side, enhance +-0.45, solarize at 128), as the port. Still unlike it:
            # posterize keeps 6 bits (ppcls: 2), and the op set has Identity where ppcls has Invert.
            v2.RandAugment(num_ops=2, magnitude=5, num_magnitude_bins=11),
            v2.ToDtype(torch.float32, scale=True),
            v2.Normalize(mean, std),
            v2.RandomErasing(p=0.5, scale=(0.02, 0.4), ratio=(0.3, 3.3), value=0),
        ])
    if augment == "apvit":
        return v2.Compose([
            v2.RandomApply([v2.RandomRotation(6)], p=0.5),
            v2.RandomResizedCrop(image_size, scale=(0.8, 1.0), ratio=(1.0, 1.0), antialias=True),
            v2.RandomHorizontalFlip(0.5),
            v2.RandomGrayscale(0.2),
            v2.RandomApply([v2.ColorJitter(0.4, 0.4, 0.4, 0.1)], p=0.8),
            v2.ToDtype(torch.float32, scale=True),
            v2.Normalize(mean, std),
            v2.RandomErasing(p=0.5, scale=(0.02, 0.33), ratio=(0.3, 3.3), value="random"),
        ])
    raise ValueError(f"augment={augment!r} has no per-sample pipeline: expected 'released' or 'apvit'")


class BatchTransform:
    """uint8 (B, 3, H, W) -> normalised float32 (B, 3, S, S) by one recipe; picklable for workers."""

    def __init__(self, augment: str, image_size: int, norm: str) -> None:
        if augment not in AUGMENTS:
            raise ValueError(f"augment={augment!r}: expected one of {', '.join(AUGMENTS)}")
        if norm not in NORMALIZATION:
            raise ValueError(f"normalize={norm!r}: expected one of {', '.join(NORMALIZATION)}")
        self.augment, self.image_size, self.norm = augment, image_size, norm
        self._one: Callable | None = (per_sample_pipeline(augment, image_size, norm)
                                      if augment in ("released", "apvit") else None)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[0] == 0:
            return torch.empty(0, 3, self.image_size, self.image_size)
        if self._one is not None:
            # tiny per-image ops: intra-op threads only add overhead (30x on a busy 2-core machine)
            threads = torch.get_num_threads()
            torch.set_num_threads(1)
            try:
                return torch.stack([self._one(img) for img in x]).contiguous()
            finally:
                torch.set_num_threads(threads)
        if self.augment == "light":
            x = light_crop_flip(x.float().div_(255.0), self.image_size)
        else:
            x = to_unit(x, self.image_size)
        return normalize(x, self.norm).contiguous()

    def __repr__(self) -> str:
        return f"BatchTransform(augment={self.augment!r}, image_size={self.image_size}, normalize={self.norm!r})"
