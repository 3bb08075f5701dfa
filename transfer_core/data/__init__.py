"""The data layer: decoded splits of the synthetic face set and the FER data sets, and their loaders.

    splits = load_splits(cfg.data, image_size=112)        # decode once (cached), carve val
    train = build_train_loader(splits.train, cfg.data, 112, batch_size=64)
    for x, y in train: ...                                 # x float32 (B, 3, 112, 112), y int64 (B,)

Call `check_layout(cfg)` before any compute: it raises the same DataError `load_splits` would.
"""

from transfer_core.data import affectnet, fer2013, ferplus, imagefolder, rafdb, synthetic  # noqa: F401  (register)
from transfer_core.data.base import DATASETS, DataError, DataSplits, DecodedSplit
from transfer_core.data.splits import (carve_validation, check_layout, class_names_of, fingerprint_of,
                                      fingerprints_alike, listed_facts, load_splits, num_classes_of)

_LOADERS = ("build_eval_loader", "build_train_loader")


def __getattr__(name: str):
    """The loaders, imported on first use: they need torch, while checking and decoding data (a sweep's
    driver, `sweeps run`'s checks) need only numpy and PIL, and torch's import costs ~1.5 s."""
    if name in _LOADERS:
        from transfer_core.data import loaders

        return getattr(loaders, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "DATASETS", "DataError", "DataSplits", "DecodedSplit", "build_eval_loader", "build_train_loader",
    "carve_validation", "check_layout", "class_names_of", "fingerprint_of", "fingerprints_alike",
    "listed_facts", "load_splits", "num_classes_of",
]
