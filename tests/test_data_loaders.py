"""Train and eval loaders: shapes, dtypes, normalisation, sampling, and exact replay of an epoch."""

from __future__ import annotations

import dataclasses
import random
import sys

import numpy as np
import pytest
import torch

from transfer_core.config import DataConfig
from transfer_core.data import DataError, DecodedSplit, build_eval_loader, build_train_loader
from transfer_core.data.transforms import NORMALIZATION, light_crop_flip, per_sample_pipeline


def _split(n: int = 20, size: int = 16, labels=None, seed: int = 0) -> DecodedSplit:
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, size=(n, size, size, 3), dtype=np.uint8)
    labels = np.arange(n, dtype=np.int64) % 4 if labels is None else np.asarray(labels, dtype=np.int64)
    return DecodedSplit(images, labels)


def _cfg(**kw) -> DataConfig:
    return DataConfig(**kw)


def _epoch(loader) -> list[tuple[torch.Tensor, torch.Tensor]]:
    return [(x.clone(), y.clone()) for x, y in loader]


@pytest.mark.parametrize("augment", ["released", "apvit", "light", "none"])
def test_train_loader_yields_normalised_float_batches(augment):
    split = _split(10, 16)
    batches = _epoch(build_train_loader(split, _cfg(augment=augment), 16, 4))
    assert [len(y) for _, y in batches] == [4, 4, 2]                       # drop_last=False
    for x, y in batches:
        assert x.dtype == torch.float32 and x.shape[1:] == (3, 16, 16)
        assert y.dtype == torch.int64
    assert sorted(torch.cat([y for _, y in batches]).tolist()) == sorted(split.labels.tolist())


def test_train_loader_resizes_to_the_requested_size():
    x, _ = next(iter(build_train_loader(_split(4, 20), _cfg(augment="light"), 12, 4)))
    assert x.shape == (4, 3, 12, 12)


@pytest.mark.parametrize("norm", ["imagenet", "half"])
def test_eval_loader_normalises_exactly(norm):
    split = _split(5, 8)
    x, y = next(iter(build_eval_loader(split, _cfg(normalize=norm), 8, 5)))
    mean, std = (torch.tensor(v).view(1, 3, 1, 1) for v in NORMALIZATION[norm])
    expected = (torch.from_numpy(split.images).permute(0, 3, 1, 2).float() / 255 - mean) / std
    torch.testing.assert_close(x, expected)
    assert y.tolist() == split.labels.tolist()


def test_eval_loader_keeps_order_and_consumes_no_randomness():
    split = _split(9, 8)
    torch.manual_seed(5)
    state = torch.get_rng_state()
    ys = [y for _, y in build_eval_loader(split, _cfg(), 8, 4)]
    assert torch.cat(ys).tolist() == split.labels.tolist()
    assert torch.equal(torch.get_rng_state(), state)


def test_eval_loader_on_an_empty_split_yields_nothing():
    empty = DecodedSplit(np.empty((0, 8, 8, 3), np.uint8), np.empty(0, np.int64))
    assert list(build_eval_loader(empty, _cfg(), 8, 4)) == []


def test_train_loader_shuffles():
    split = _split(40, 8)
    torch.manual_seed(0)
    ys = torch.cat([y for _, y in build_train_loader(split, _cfg(augment="none"), 8, 40)])
    order = torch.cat([x for x, _ in build_train_loader(split, _cfg(augment="none"), 8, 40)])
    assert sorted(ys.tolist()) == sorted(split.labels.tolist())
    assert not torch.equal(order, next(iter(build_eval_loader(split, _cfg(), 8, 40)))[0])


@pytest.mark.parametrize("augment", ["released", "apvit", "light", "none"])
def test_train_loader_replays_an_epoch_after_reseeding(augment):
    split = _split(12, 16)
    loader = build_train_loader(split, _cfg(augment=augment), 16, 5)
    torch.manual_seed(123)
    first = _epoch(loader)
    torch.manual_seed(123)
    random.seed(99)                                     # Python's and numpy's RNGs must not matter
    np.random.seed(99)
    second = _epoch(loader)
    for (x1, y1), (x2, y2) in zip(first, second, strict=True):
        assert torch.equal(x1, x2) and torch.equal(y1, y2)


def test_train_loader_replays_an_epoch_from_a_restored_rng_state():
    split = _split(12, 16)
    loader = build_train_loader(split, _cfg(augment="released"), 16, 6)
    torch.manual_seed(0)
    _epoch(loader)                                      # epoch 1
    state = torch.get_rng_state()                       # what a checkpoint after epoch 1 holds
    second = _epoch(loader)
    torch.manual_seed(777)
    torch.set_rng_state(state)
    again = _epoch(loader)
    assert all(torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) for a, b in zip(second, again, strict=True))


def test_train_loader_differs_between_epochs():
    split = _split(12, 16)
    loader = build_train_loader(split, _cfg(augment="light"), 16, 12)
    torch.manual_seed(0)
    a, b = _epoch(loader), _epoch(loader)
    assert not torch.equal(a[0][0], b[0][0])


def test_train_loader_with_workers_replays_an_epoch_after_reseeding():
    split = _split(8, 8)
    loader = build_train_loader(split, _cfg(augment="light", num_workers=1), 8, 4)
    torch.manual_seed(3)
    first = _epoch(loader)
    torch.manual_seed(3)
    second = _epoch(loader)
    assert all(torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) for a, b in zip(first, second, strict=True))


def test_loader_asked_to_pin_yields_page_locked_batches(monkeypatch):
    pinned = []

    def pin(tensor):                      # stands in for Tensor.pin_memory, which needs a CUDA driver
        pinned.append(tensor)
        return tensor
    monkeypatch.setattr(torch.Tensor, "pin_memory", pin)
    batches = _epoch(build_eval_loader(_split(6, 8), _cfg(), 8, 4, pin_memory=True))
    assert len(batches) == 2 and len(pinned) == 4, "both tensors of every batch are pinned"
    pinned.clear()
    _epoch(build_eval_loader(_split(6, 8), _cfg(), 8, 4))
    assert pinned == [], "nothing is pinned unless asked (fit asks on CUDA only)"


_SET_IN_THIS_PROCESS: list[str] = []


def _mark_of_the_process(x: torch.Tensor) -> torch.Tensor:
    """A transform that shows whether the worker holds this process's memory (forked) or started afresh."""
    return torch.full(x.shape, float(len(_SET_IN_THIS_PROCESS)))


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="fork is the worker start method on Linux only")
def test_loader_workers_are_forked_even_where_python_would_spawn():
    import multiprocessing

    previous = multiprocessing.get_start_method(allow_none=True)
    multiprocessing.set_start_method("spawn", force=True)   # as in a process started by spawn
    try:
        loader = build_train_loader(_split(8, 8), _cfg(augment="none", num_workers=1), 8, 4)
        loader.dataset.transform = _mark_of_the_process
        _SET_IN_THIS_PROCESS.append("only a forked worker sees this")
        batches = [x for x, _ in loader]
    finally:
        _SET_IN_THIS_PROCESS.clear()
        multiprocessing.set_start_method(previous, force=True)
    assert len(batches) == 2 and all(bool((x == 1).all()) for x in batches), \
        "workers share the parent's memory (the decoded split) instead of starting afresh"


def test_balanced_sampler_draws_rarer_classes_more():
    labels = [0] * 90 + [1] * 10
    split = _split(100, 4, labels=labels)
    torch.manual_seed(0)
    loader = build_train_loader(split, _cfg(sampler="balanced", augment="none"), 4, 50)
    ys = torch.cat([y for _, y in loader])
    assert len(ys) == 100
    share = (ys == 1).float().mean().item()
    assert 0.35 < share < 0.65                                             # 10 % in the data, ~50 % drawn


def test_balanced_sampler_draws_epoch_samples_per_epoch():
    split = _split(10, 4)
    loader = build_train_loader(split, _cfg(sampler="balanced", epoch_samples=23, augment="none"), 4, 10)
    assert len(loader) == 3 and sum(len(y) for _, y in loader) == 23


def test_auto_sampler_is_balanced_for_affectnet_only():
    from transfer_core.data.loaders import sampler_kind

    assert sampler_kind(_cfg(dataset="affectnet", root="/x")) == "balanced"
    assert sampler_kind(_cfg(dataset="rafdb", root="/x")) == "shuffle"
    assert sampler_kind(_cfg()) == "shuffle"


def test_train_loader_on_an_empty_split_is_an_error():
    empty = DecodedSplit(np.empty((0, 8, 8, 3), np.uint8), np.empty(0, np.int64))
    with pytest.raises(DataError, match="training split is empty"):
        build_train_loader(empty, _cfg(), 8, 4)


def test_light_crop_flip_can_mirror_exactly():
    x = torch.rand(64, 3, 8, 8)
    torch.manual_seed(0)
    out = light_crop_flip(x, 8, scale=(1.0, 1.0), ratio=(1.0, 1.0))       # full crop: identity or flip
    for i in range(len(x)):
        assert torch.allclose(out[i], x[i], atol=1e-5) or torch.allclose(out[i], x[i].flip(-1), atol=1e-5)
    flipped = sum(torch.allclose(out[i], x[i].flip(-1), atol=1e-5) for i in range(len(x)))
    assert 16 < flipped < 48


def test_released_recipe_erases_some_images():
    split = DecodedSplit(np.full((64, 16, 16, 3), 200, np.uint8), np.zeros(64, np.int64))
    torch.manual_seed(0)
    x, _ = next(iter(build_train_loader(split, _cfg(augment="released"), 16, 64)))
    erased = (x == 0).all(dim=1).flatten(1).any(dim=1)                     # value 0 after normalising
    assert 10 < int(erased.sum()) < 54


def test_released_randaugment_is_as_strong_as_the_ports():
    # ppcls RandAugment(num_layers=2, magnitude=5) scales each op's maximum by magnitude / max_level
    # (10): rotate 15 deg, shear 0.15, enhance 1 +- 0.45. torchvision's default 31 bins would make
    # magnitude 5 a sixth of the maximum (rotate 5 deg), 3x weaker than the recipe
    from torchvision.transforms import v2

    found, = [t for t in per_sample_pipeline("released", 112, "imagenet").transforms if isinstance(t, v2.RandAugment)]
    space = found._AUGMENTATION_SPACE
    at = {op: float(space[op][0](found.num_magnitude_bins, 112, 112)[found.magnitude])
          for op in ("Rotate", "ShearX", "Brightness")}
    assert found.num_ops == 2
    assert at == pytest.approx({"Rotate": 15.0, "ShearX": 0.15, "Brightness": 0.45})


def test_decoded_split_validates_its_arrays():
    with pytest.raises(DataError, match="uint8"):
        DecodedSplit(np.zeros((2, 4, 4, 3), np.float32), np.zeros(2, np.int64))
    with pytest.raises(DataError, match="int64"):
        DecodedSplit(np.zeros((2, 4, 4, 3), np.uint8), np.zeros(2, np.int32))
    with pytest.raises(DataError, match="2 images but 3 labels"):
        DecodedSplit(np.zeros((2, 4, 4, 3), np.uint8), np.zeros(3, np.int64))
    assert len(DecodedSplit(np.zeros((2, 4, 4, 3), np.uint8), np.zeros(2, np.int64))) == 2


def test_data_splits_is_frozen():
    split = _split(2, 4)
    from transfer_core.data import DataSplits

    splits = DataSplits(split, split, split, ("a", "b"), "synthetic", "ab", {})
    with pytest.raises(dataclasses.FrozenInstanceError):
        splits.dataset = "x"
    assert splits.num_classes == 2


def test_loader_workers_started_by_spawn_as_on_macos_give_the_forked_workers_batches(monkeypatch):
    # macOS has no fork for workers (WORKER_START_METHOD None: Python's spawn there): each worker is sent a pickled
    # copy of the split and transform, and must draw the same augmentation from the same seeds
    import importlib

    import transfer_core.data.loaders as loaders

    monkeypatch.setattr(sys, "platform", "darwin")
    assert importlib.reload(loaders).WORKER_START_METHOD is None
    monkeypatch.undo()
    importlib.reload(loaders)
    split, cfg = _split(12, 16), _cfg(augment="released", num_workers=1)
    epochs = {}
    for method in ("fork", "spawn"):
        monkeypatch.setattr(loaders, "WORKER_START_METHOD", method)
        torch.manual_seed(3)
        epochs[method] = (_epoch(loaders.build_train_loader(split, cfg, 16, 4)),
                          _epoch(loaders.build_eval_loader(split, cfg, 16, 4)))
    for (xf, yf), (xs, ys) in zip(epochs["fork"][0] + epochs["fork"][1], epochs["spawn"][0] + epochs["spawn"][1]):
        assert torch.equal(xf, xs) and torch.equal(yf, ys)
    assert len(epochs["spawn"][0]) == 3
