"""Loading face.evoLVe IR-50 (MS1M) weights into the TransFER stem (reference/transfer.md §2).

face.evoLVe's IR-50 state dict has `input_layer.*`, `body.{0..23}.*` (one flat Sequential: 0-2 stage
1, 3-6 stage 2, 7-20 stage 3, 21-23 stage 4) and `output_layer.*`. TransFER uses stages 1-3, so we
load `input_layer.*` and `body.0`-`20` and ignore `body.21`-`23` and `output_layer.*`. Our IR50Stem
keeps face.evoLVe's module names, so the keys map one to one.

Strict by design (POSTER_V2's renamed stages silently loaded nothing): every other unexpected key,
every missing key and every shape mismatch is a CheckpointError naming the file and the keys. The
one tolerance: BatchNorm `num_batches_tracked` buffers may be absent (checkpoints saved by old
PyTorch lack them; BatchNorm fills them in, and they do not affect the weights).
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

__all__ = ["CheckpointError", "LoadReport", "load_ir50_checkpoint"]

log = logging.getLogger(__name__)

_IGNORED = re.compile(r"^(body\.(21|22|23)\.|output_layer\.)")
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


def _read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise CheckpointError(f"IR-50 checkpoint {str(path)!r} does not exist or is not a file")
    try:
        raw = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - any failure to read is reported with the path
        raise CheckpointError(f"IR-50 checkpoint {str(path)!r} could not be read: {err}") from err
    if isinstance(raw, Mapping) and isinstance(raw.get("state_dict"), Mapping):
        raw = raw["state_dict"]
    if not isinstance(raw, Mapping) or not raw or not all(
            isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in raw.items()):
        raise CheckpointError(f"IR-50 checkpoint {str(path)!r} is not a state dict (a dict of "
                              "parameter names to tensors, optionally wrapped as {'state_dict': ...})")
    return {k.removeprefix("module."): v for k, v in raw.items()}


def load_ir50_checkpoint(stem: nn.Module, path: str | os.PathLike) -> LoadReport:
    """Copy a face.evoLVe IR-50 checkpoint's stages 1-3 into `stem` (an IR50Stem); strict."""
    path = Path(path)
    state = _read_state_dict(path)
    expected = stem.state_dict()
    ignored = sorted(k for k in state if _IGNORED.match(k))
    used = {k: v for k, v in state.items() if not _IGNORED.match(k)}

    unexpected = sorted(k for k in used if k not in expected)
    missing = sorted(k for k in expected if k not in used and not k.endswith("num_batches_tracked"))
    mismatched = sorted(f"{k} (checkpoint {tuple(used[k].shape)}, model {tuple(v.shape)})"
                        for k, v in expected.items() if k in used and used[k].shape != v.shape)
    problems = []
    if unexpected:
        problems.append(f"unexpected keys: {_listing(unexpected)}")
    if missing:
        problems.append(f"missing keys: {_listing(missing)}")
    if mismatched:
        problems.append(f"shape mismatches: {_listing(mismatched)}")
    if problems:
        raise CheckpointError(f"IR-50 checkpoint {str(path)!r} does not fit the ir50 stem: "
                              + "; ".join(problems))

    stem.load_state_dict(used, strict=False)
    log.info("loaded %d tensors from IR-50 checkpoint %s into the stem; ignored %d (stage 4, output_layer)",
             len(used), path, len(ignored))
    return LoadReport(loaded=len(used), ignored=tuple(ignored))
