"""Batches for training and evaluation from a DecodedSplit.

A batch is gathered from the uint8 array by index (one fancy-index per batch, no per-sample
collate) and transformed as a batch (transforms.BatchTransform): x float32 (B, 3, S, S)
normalised, y int64 (B,). The last batch may be short (drop_last=False).

Sampling (cfg.sampler): "shuffle" = a random permutation per epoch; "balanced" =
WeightedRandomSampler(1 / count[y], num_samples = cfg.epoch_samples or len(split),
replacement=True), i.e. ufoym's ImbalancedDatasetSampler; "auto" = balanced for AffectNet,
shuffle otherwise.

Exact resume: with cfg.num_workers == 0 every random draw of an epoch (order and augmentation)
comes from torch's global RNG in this process, so restoring `torch.get_rng_state()` replays the
epoch bit for bit. With workers, each epoch draws one seed from the global RNG for a
torch.Generator that drives the sampler and the workers' seeds (DataLoader semantics), which is
just as reproducible.
"""

from __future__ import annotations

import logging
import math
import sys
from typing import Iterator

import numpy as np
import torch
from torch.utils.data import BatchSampler, DataLoader, Dataset, RandomSampler, Sampler, SequentialSampler
from torch.utils.data import WeightedRandomSampler

from transfer_core.config import DataConfig, sampler_kind
from transfer_core.data.base import DataError, DecodedSplit
from transfer_core.data.transforms import BatchTransform

log = logging.getLogger(__name__)


class BatchDataset(Dataset):
    """Indexed by a list of indices (from a BatchSampler): returns one transformed batch."""

    def __init__(self, split: DecodedSplit, transform: BatchTransform) -> None:
        self.images, self.labels, self.transform = split.images, split.labels, transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, indices: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        idx = np.asarray(indices, dtype=np.int64)
        x = torch.from_numpy(np.ascontiguousarray(self.images[idx])).permute(0, 3, 1, 2)  # (B, 3, H, W) uint8
        y = torch.from_numpy(np.asarray(self.labels[idx], dtype=np.int64))
        return self.transform(x), y


def balanced_weights(labels: np.ndarray) -> torch.Tensor:
    """1 / count[y] per sample (float64), the inverse class frequency."""
    counts = np.bincount(labels)
    return torch.from_numpy(1.0 / counts[labels].astype(np.float64))


# Workers are forked where the platform allows: a forked worker shares the decoded uint8 array copy-on-write
# and starts at once, where a spawned (or forkserver) one is sent a pickled copy of the whole split and
# imports torch again (~1 s each, three loaders an epoch). Python's default is not fork in every process:
# it is spawn in a process started by spawn, and forkserver from Python 3.14.
WORKER_START_METHOD = "fork" if sys.platform.startswith("linux") else None


def _worker_init(_: int) -> None:
    torch.set_num_threads(1)                        # workers are the parallelism; no oversubscription


class _Loader:
    """Re-iterable batches; each epoch's randomness is drawn when iteration starts."""

    def __init__(self, split: DecodedSplit, transform: BatchTransform, batch_size: int, num_workers: int,
                 mode: str, num_samples: int, pin_memory: bool = False) -> None:
        if batch_size < 1:
            raise DataError(f"batch_size={batch_size!r} is invalid: expected an integer >= 1")
        self.dataset = BatchDataset(split, transform)
        self.batch_size, self.num_workers = batch_size, num_workers
        self.mode, self.num_samples, self.pin_memory = mode, num_samples, pin_memory
        self._weights = balanced_weights(split.labels) if mode == "balanced" else None

    def _sampler(self, generator: torch.Generator | None) -> Sampler:
        n = len(self.dataset)
        if self.mode == "sequential":
            return SequentialSampler(range(n))
        if self.mode == "balanced":
            return WeightedRandomSampler(self._weights, self.num_samples, replacement=True, generator=generator)
        return RandomSampler(range(n), generator=generator)

    def __len__(self) -> int:
        return math.ceil(self.num_samples / self.batch_size)

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        if self.num_workers == 0:
            # everything in this process, from torch's global RNG (the samplers draw from it
            # when no generator is given, the transforms always do)
            for indices in BatchSampler(self._sampler(None), self.batch_size, drop_last=False):
                x, y = self.dataset[indices]
                yield (x.pin_memory(), y.pin_memory()) if self.pin_memory else (x, y)
            return
        generator = torch.Generator()
        if self.mode == "sequential":
            generator.manual_seed(0)                    # evaluation must not consume the global RNG
        else:
            generator.manual_seed(int(torch.empty((), dtype=torch.int64).random_().item()))
        loader = DataLoader(self.dataset, batch_size=None,
                            sampler=BatchSampler(self._sampler(generator), self.batch_size, drop_last=False),
                            num_workers=self.num_workers, generator=generator, worker_init_fn=_worker_init,
                            pin_memory=self.pin_memory, multiprocessing_context=WORKER_START_METHOD)
        yield from loader


def build_train_loader(split: DecodedSplit, cfg: DataConfig, image_size: int, batch_size: int,
                       pin_memory: bool = False) -> _Loader:
    """Shuffled (or class-balanced) augmented batches (x float32 (B, 3, S, S), y int64 (B,)).

    pin_memory: page-locked batches, so that copies to a CUDA device are truly asynchronous."""
    if len(split) == 0:
        raise DataError("the training split is empty: expected at least one training image")
    mode = sampler_kind(cfg)
    num_samples = (cfg.epoch_samples or len(split)) if mode == "balanced" else len(split)
    transform = BatchTransform(cfg.augment, image_size, cfg.normalize)
    log.debug("train loader: %d images, sampler %s, %s", len(split), mode, transform)
    return _Loader(split, transform, batch_size, cfg.num_workers, mode, num_samples, pin_memory)


def build_eval_loader(split: DecodedSplit, cfg: DataConfig, image_size: int, batch_size: int,
                      pin_memory: bool = False) -> _Loader:
    """Batches in split order, normalised only (no augmentation, no randomness)."""
    transform = BatchTransform("none", image_size, cfg.normalize)
    return _Loader(split, transform, batch_size, cfg.num_workers, "sequential", len(split), pin_memory)
