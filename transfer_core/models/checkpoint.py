"""Loading pretrained weights: face.evoLVe IR-50 (MS1M) into the stem (reference/transfer.md §2), and timm's
legacy ImageNet ViT-S into the encoder (§6).

face.evoLVe's IR-50 state dict has `input_layer.*`, `body.{0..23}.*` (one flat Sequential: 0-2 stage
1, 3-6 stage 2, 7-20 stage 3, 21-23 stage 4) and `output_layer.*`. TransFER uses stages 1-3, so we
load `input_layer.*` and `body.0`-`20` and ignore `body.21`-`23` and `output_layer.*`. Our IR50Stem
keeps face.evoLVe's module names, so the keys map one to one.

Strict by design (POSTER_V2's renamed stages silently loaded nothing): every other unexpected key,
every missing key and every shape mismatch is a CheckpointError naming the file and the keys. The
one tolerance: BatchNorm `num_batches_tracked` buffers may be absent (checkpoints saved by old
PyTorch lack them; BatchNorm fills them in, and they do not affect the weights).

The encoder's ViT part has the dims of timm's legacy `vit_small_patch16_224` (768-d, 8 blocks of 8 heads,
MLP 3, no qkv bias; weights `vit_small_p16_224-15ec54c9.pth`, ImageNet-1k), from which APViT initialises and
TransFER likely did (§6, §10.1), and our module names are timm's (`cls_token`, `pos_embed`,
`blocks.N.{norm1,attn.qkv,attn.proj,norm2,mlp.fc1,mlp.fc2}`, `norm`). Loaded: all of those. Not: timm's
`patch_embed` (TransFER's tokens come from the 1x1 projection of the stem's features, which keeps its own
initialisation) and `head` (ImageNet's 1000 classes). A shallower encoder (the depth ablation) takes the first
blocks; its positions are resampled (bicubic, as timm does) where the token grid is not timm's 14 x 14. timm
trained with the attention scale 768^-0.5, TransFER's is head_dim^-0.5: the weights load, the scale is ours.
"""

from __future__ import annotations

import logging
import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

__all__ = ["CheckpointError", "LoadReport", "load_ir50_checkpoint", "load_vit_checkpoint"]

log = logging.getLogger(__name__)

_IGNORED = re.compile(r"^(body\.(21|22|23)\.|output_layer\.)")
_VIT_IGNORED = re.compile(r"^(patch_embed\.|head\.|pre_logits\.)")
_VIT_BLOCK = re.compile(r"^blocks\.(\d+)\.")
IR50_FILE = "backbone_ir50_ms1m_epoch120.pth"   # face.evoLVe's MS1M release
VIT_FILE = "vit_small_p16_224-15ec54c9.pth"
_MAX_LISTED = 20


class CheckpointError(ValueError):
    """A checkpoint file is missing, unreadable or does not fit the module; names the file and keys."""


@dataclass(frozen=True)
class LoadReport:
    loaded: int                 # tensors copied into the stem
    ignored: tuple[str, ...]    # checkpoint keys deliberately not used (stage 4, output_layer)


def _listing(keys: list[str]) -> str:
    shown = ", ".join(keys[:_MAX_LISTED])
    more = len(keys) - _MAX_LISTED
    return shown + (f", ... and {more} more" if more > 0 else "")


def _read_state_dict(path: Path, what: str = "IR-50 checkpoint") -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise CheckpointError(f"{what} {str(path)!r} does not exist or is not a file")
    try:
        raw = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any failure to read is reported with the path
        raise CheckpointError(f"{what} {str(path)!r} could not be read: {err}") from err
    for wrapper in ("state_dict", "model"):   # {'state_dict': ...} (Lightning, face.evoLVe), {'model': ...} (DeiT)
        if isinstance(raw, Mapping) and isinstance(raw.get(wrapper), Mapping):
            raw = raw[wrapper]
            break
    if not isinstance(raw, Mapping) or not raw or not all(
            isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in raw.items()):
        raise CheckpointError(f"{what} {str(path)!r} is not a state dict (a dict of "
                              "parameter names to tensors, optionally wrapped as {'state_dict': ...} or {'model': ...})")
    return {k.removeprefix("module."): v for k, v in raw.items()}


def _misfits(used: Mapping[str, torch.Tensor], expected: Mapping[str, torch.Tensor],
             may_miss: Callable[[str], bool]) -> list[str]:
    """What keeps a state dict from fitting a module: keys it has that the module lacks, keys the module has
    that it lacks (but those `may_miss` allows), and shapes that differ."""
    unexpected = sorted(k for k in used if k not in expected)
    missing = sorted(k for k in expected if k not in used and not may_miss(k))
    mismatched = sorted(f"{k} (checkpoint {tuple(used[k].shape)}, model {tuple(v.shape)})"
                        for k, v in expected.items() if k in used and used[k].shape != v.shape)
    return [f"{what}: {_listing(keys)}" for what, keys in
            (("unexpected keys", unexpected), ("missing keys", missing), ("shape mismatches", mismatched)) if keys]


def load_ir50_checkpoint(stem: nn.Module, path: str | os.PathLike) -> LoadReport:
    """Copy a face.evoLVe IR-50 checkpoint's stages 1-3 into `stem` (an IR50Stem); strict."""
    path = Path(path).expanduser()   # --set model.x=~/w.pth: no shell expands that ~
    state = _read_state_dict(path)
    expected = stem.state_dict()
    ignored = sorted(k for k in state if _IGNORED.match(k))
    used = {k: v for k, v in state.items() if not _IGNORED.match(k)}

    problems = _misfits(used, expected, lambda k: k.endswith("num_batches_tracked"))
    if problems:
        raise CheckpointError(f"IR-50 checkpoint {str(path)!r} does not fit the ir50 stem: "
                              + "; ".join(problems))

    stem.load_state_dict(used, strict=False)
    log.info("loaded %d tensors from IR-50 checkpoint %s into the stem; ignored %d (stage 4, output_layer)",
             len(used), path, len(ignored))
    return LoadReport(loaded=len(used), ignored=tuple(ignored))


def _resample_positions(pos_embed: torch.Tensor, tokens: int, path: Path) -> torch.Tensor:
    """timm's (1, 1 + g*g, D) positions for `tokens` grid tokens: the CLS position kept, the g x g grid's
    resampled bicubically to the model's square grid (timm's resample_abs_pos_embed)."""
    grid_in, grid_out = math.isqrt(pos_embed.shape[1] - 1), math.isqrt(tokens)
    if grid_in * grid_in != pos_embed.shape[1] - 1 or grid_out * grid_out != tokens:
        raise CheckpointError(f"ViT checkpoint {str(path)!r}: pos_embed {tuple(pos_embed.shape)} cannot be resampled "
                              f"to {tokens} tokens: both must be a CLS position and a square grid")
    cls, grid = pos_embed[:, :1], pos_embed[:, 1:]
    grid = grid.reshape(1, grid_in, grid_in, -1).permute(0, 3, 1, 2).float()
    grid = nn.functional.interpolate(grid, size=(grid_out, grid_out), mode="bicubic", align_corners=False)
    grid = grid.permute(0, 2, 3, 1).reshape(1, tokens, -1).to(pos_embed.dtype)
    return torch.cat((cls, grid), dim=1)


def load_vit_checkpoint(encoder: nn.Module, path: str | os.PathLike) -> LoadReport:
    """Copy timm's legacy ImageNet ViT-S (vit_small_p16_224-15ec54c9.pth) into `encoder` (an Encoder): every
    tensor but the 1x1 projection; strict, as the IR-50 loader is (module docstring)."""
    path = Path(path).expanduser()   # --set model.x=~/w.pth: no shell expands that ~
    state = _read_state_dict(path, "ViT checkpoint")
    expected = {k: v for k, v in encoder.state_dict().items() if not k.startswith("proj.")}
    depth = len(encoder.blocks)
    blocks = {int(m.group(1)) for k in state if (m := _VIT_BLOCK.match(k))}

    def unused(key: str) -> bool:
        block = _VIT_BLOCK.match(key)
        return bool(_VIT_IGNORED.match(key)) or (block is not None and int(block.group(1)) >= depth)

    ignored = sorted(k for k in state if unused(k))
    used = {k: v for k, v in state.items() if not unused(k)}
    resampled = False
    if "pos_embed" in used and used["pos_embed"].ndim == 3 and "pos_embed" in expected \
            and used["pos_embed"].shape[1] != expected["pos_embed"].shape[1] \
            and used["pos_embed"].shape[2] == expected["pos_embed"].shape[2]:
        used["pos_embed"] = _resample_positions(used["pos_embed"], expected["pos_embed"].shape[1] - 1, path)
        resampled = True

    problems, beyond = [], None
    if blocks and max(blocks) + 1 < depth:   # said once, not as every missing key of those blocks
        beyond = max(blocks)
        problems.append(f"it has {beyond + 1} block{'s' if beyond else ''}, the encoder {depth} "
                        "(model.depth): the blocks beyond would keep their random initialisation")
    problems += _misfits(used, expected, lambda k: beyond is not None and (m := _VIT_BLOCK.match(k)) is not None
                         and int(m.group(1)) > beyond)
    if problems:
        raise CheckpointError(f"ViT checkpoint {str(path)!r} does not fit the encoder: " + "; ".join(problems)
                              + f". Expected timm's legacy vit_small_patch16_224 ({VIT_FILE}: 768-d, 8 blocks of 8 "
                              "heads, MLP 3, no qkv bias; current timm's vit_small is 384-d) and an encoder of "
                              "those dims (model.embed_dim 768, model.mlp_ratio 3, model.depth <= 8)")

    encoder.load_state_dict(used, strict=False)
    log.info("loaded %d tensors from ViT checkpoint %s into the encoder%s; ignored %d (%s)", len(used), path,
             " (positions resampled to the token grid)" if resampled else "", len(ignored),
             "patch_embed, head" + (f", blocks {depth}-{max(blocks)}" if blocks and max(blocks) >= depth else ""))
    return LoadReport(loaded=len(used), ignored=tuple(ignored))
