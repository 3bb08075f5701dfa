"""The fused LANet map M of a trained model over test faces: the data of the paper's Fig. 3.

`attention_record` is computed where the model is trained (a sweep's trial, from the very weights it
logs), so that drawing the figure later needs neither those weights nor torch; `attention_maps` is also
what draws it from a logged model when no record fits (other faces, more per class).

    record = attention_record(model, cfg, splits)     # {"picks", "faces", "class_names", "per_class", "maps"?}
    save_record(record, path)                          # one .npz; load_record(path) reads and checks it

torch is imported inside the functions: importing this module costs nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Mapping

import numpy as np

if TYPE_CHECKING:
    from transfer_core.config import TrialConfig
    from transfer_core.data.base import DataSplits


def class_examples(labels: np.ndarray, num_classes: int, per_class: int) -> list[int]:
    """The first `per_class` test indices of each class, class by class (deterministic); -1 where a class
    has fewer images."""
    picks = []
    for k in range(num_classes):
        idx = np.flatnonzero(labels == k)[:per_class]
        picks += idx.tolist() + [-1] * (per_class - len(idx))
    return picks


def attention_maps(model, cfg: TrialConfig, faces: np.ndarray) -> np.ndarray:
    """The fused LANet map of each face, upsampled to the face: (n, S, S) in [0, 1].

    faces: uint8 (n, S, S, 3) as DataSplits hold them; they go through the evaluation loader of
    `cfg.data` (the same resizing and normalisation as in training). The model must be in eval mode
    and have the local branch.
    """
    import torch
    import torch.nn.functional as F

    from transfer_core.data import DecodedSplit, build_eval_loader

    split = DecodedSplit(np.ascontiguousarray(faces), np.zeros(len(faces), dtype=np.int64))
    device = next(model.parameters()).device
    x = torch.cat([x for x, _ in build_eval_loader(split, cfg.data, cfg.model.image_size, len(faces))])
    with torch.no_grad():
        m = model.attention_map(x.to(device)).float().cpu()                # (n, 1, h, w) in [0, 1]
        m = F.interpolate(m, size=faces.shape[1:3], mode="bilinear", align_corners=False)
    return m[:, 0].clamp(0, 1).numpy()                                    # (n, S, S)


def attention_record(model, cfg: TrialConfig, splits: DataSplits, per_class: int = 1) -> dict[str, np.ndarray]:
    """Fig. 3's data for one trained model: the first `per_class` test faces of each class and, when the
    model has a local branch, its fused LANet map over each (float16, (n, S, S))."""
    picks = class_examples(splits.test.labels, splits.num_classes, per_class)
    have = [i for i in picks if i >= 0]
    record = {"picks": np.asarray(picks, dtype=np.int64), "faces": splits.test.images[have],
              "class_names": np.asarray(splits.class_names), "per_class": np.asarray(per_class)}
    if cfg.model.local_branch and have:
        record["maps"] = attention_maps(model, cfg, record["faces"]).astype(np.float16)
    return record


RECORD_KEYS = ("picks", "faces", "class_names", "per_class")   # and "maps" where the model has LANets


def save_record(record: Mapping[str, np.ndarray], path: str | Path) -> None:
    """An attention_record as one compressed .npz (plain arrays: it loads without pickle)."""
    np.savez_compressed(path, **record)


def load_record(path: str | Path) -> dict[str, np.ndarray]:
    """A record written by save_record; ValueError naming the file when it is not one."""
    try:
        with np.load(path) as npz:
            record = {k: npz[k] for k in npz.files}
    except (OSError, ValueError, EOFError) as err:
        raise ValueError(f"{path} is not an attention record (.npz): {err}") from err
    missing = [k for k in RECORD_KEYS if k not in record]
    if missing:
        raise ValueError(f"{path} lacks {', '.join(missing)}: expected {', '.join(RECORD_KEYS)} (and maps)")
    maps = record.get("maps")
    if maps is not None and maps.shape != record["faces"].shape[:3]:
        raise ValueError(f"{path}: maps {maps.shape} do not match faces {record['faces'].shape}")
    return record
