"""Specifications of the dropping variants on the stacked LANet maps (transfer_core/models/dropping.py)."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
import torch

from transfer_core.models import DROPPING
from transfer_core.models.dropping import multi_attention_drop
from transfer_core.registry import RegistryError

NAMES = ("none", "dropout", "dropblock", "spatial_dropout", "mad")


def _maps(n=8, b=3, side=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, b, side, side, generator=g) + 0.1  # strictly positive: a zero means dropped


def test_dropping_registry_holds_the_config_variants():
    from transfer_core.config import DROP_VARIANTS

    assert set(DROPPING.names()) == set(NAMES) == set(DROP_VARIANTS)


@pytest.mark.parametrize("name", NAMES)
def test_dropping_keeps_shape_and_passes_gradients(name):
    torch.manual_seed(0)
    drop = DROPPING.get(name)(0.5, 3, 3).train()
    maps = _maps().requires_grad_(True)
    out = drop(maps)
    assert out.shape == maps.shape
    out.sum().backward()
    assert maps.grad is not None and maps.grad.shape == maps.shape and torch.isfinite(maps.grad).all()


@pytest.mark.parametrize("name", NAMES)
def test_dropping_is_identity_in_eval(name):
    drop = DROPPING.get(name)(0.9, 3, 3).eval()
    maps = _maps()
    assert torch.equal(drop(maps), maps)


@pytest.mark.parametrize("name", NAMES)
def test_dropping_extra_repr_shows_rate(name):
    assert "rate=0.25" in repr(DROPPING.get(name)(0.25, 2, 3))


@pytest.mark.parametrize("name", NAMES)
def test_dropping_randomness_comes_from_torch_rng_only(name):
    drop = DROPPING.get(name)(0.5, 3, 3).train()
    torch.manual_seed(7)
    first = drop(_maps())
    random.seed(123)
    np.random.seed(123)
    torch.manual_seed(7)
    assert torch.equal(drop(_maps()), first)
    state = torch.get_rng_state()
    again = drop(_maps())
    torch.set_rng_state(state)
    assert torch.equal(drop(_maps()), again)


@pytest.mark.parametrize("rate", [-0.1, 1.5])
def test_dropping_rejects_rate_outside_unit_interval(rate):
    with pytest.raises(ValueError, match=rf"rate={rate} is invalid: expected a number in \[0, 1\]"):
        DROPPING.get("mad")(rate, 2, 3)


def test_dropping_unknown_variant_lists_valid_names():
    with pytest.raises(RegistryError, match=r"unknown dropping variant 'madd'.*Did you mean 'mad'.*"
                                            r"Valid: none, dropout, dropblock, spatial_dropout, mad"):
        DROPPING.get("madd")


def test_mad_zeroes_exactly_one_map_in_about_p_of_samples():
    n, b, p = 4000, 3, 0.6
    torch.manual_seed(0)
    maps = _maps(n=n, b=b, side=4)
    out = DROPPING.get("mad")(p, b, 3).train()(maps)
    zero_maps = (out == 0).flatten(2).all(-1)                  # (N, B) map entirely zero
    per_sample = zero_maps.sum(1)
    assert per_sample.max() <= 1
    fraction = (per_sample == 1).float().mean().item()
    assert abs(fraction - p) < 3 * math.sqrt(p * (1 - p) / n)


def test_mad_picks_the_dropped_map_uniformly():
    n, b, p = 4000, 4, 1.0
    torch.manual_seed(1)
    out = DROPPING.get("mad")(p, b, 3).train()(_maps(n=n, b=b, side=2))
    counts = (out == 0).flatten(2).all(-1).sum(0).float()      # (B,) drops per map index
    expected, sigma = n / b, math.sqrt(n * (1 / b) * (1 - 1 / b))
    assert ((counts - expected).abs() < 3 * sigma).all()


def test_mad_never_rescales_survivors():
    torch.manual_seed(0)
    maps = _maps(n=500)
    out = DROPPING.get("mad")(0.6, 3, 3).train()(maps)
    kept = (out != 0).flatten(2).all(-1)                        # (N, B) maps that survived
    assert torch.equal(out[kept], maps[kept])


def test_dropout_rescales_survivors_by_one_over_keep():
    torch.manual_seed(0)
    maps = _maps()
    out = DROPPING.get("dropout")(0.5, 3, 3).train()(maps)
    nz = out != 0
    assert torch.allclose(out[nz], maps[nz] * 2.0)
    assert (~nz).any()


def test_spatial_dropout_drops_whole_maps():
    torch.manual_seed(0)
    maps = _maps(n=200)
    out = DROPPING.get("spatial_dropout")(0.5, 3, 3).train()(maps)
    zero = (out == 0).flatten(2)
    all_zero, any_zero = zero.all(-1), zero.any(-1)
    assert torch.equal(all_zero, any_zero) and all_zero.any()


def test_dropblock_clips_block_to_map_side():
    torch.manual_seed(0)
    out = DROPPING.get("dropblock")(0.5, 2, 7).train()(_maps(b=2, side=3))
    assert out.shape == (8, 2, 3, 3) and torch.isfinite(out).all()


def test_dropblock_block_larger_than_an_even_map_drops_whole_maps():
    # 8 x 8 maps (32 px on the small stem): clipping a block of 9 to the side gave torchvision an even
    # block, which it refuses (ValueError mid-trial); the block is the whole map
    torch.manual_seed(0)
    maps = _maps(n=400, b=2, side=8)
    out = DROPPING.get("dropblock")(0.5, 2, 9).train()(maps)
    zero = (out == 0).flatten(2)
    assert out.shape == maps.shape and torch.equal(zero.all(-1), zero.any(-1))
    assert 0.4 < zero.all(-1).float().mean() < 0.6


def test_dropblock_refuses_an_even_block():
    with pytest.raises(ValueError, match=r"block_size=4 is invalid: expected an odd integer >= 1"):
        DROPPING.get("dropblock")(0.1, 2, 4)


# --------------------------------------------------------------------------- MAD dropping k maps (drop_maps)

def _zeroed(out):
    return (out == 0).flatten(2).all(-1)                        # (N, B) map entirely zero


@pytest.mark.parametrize("k", [2, 3])
def test_mad_drop_maps_zeroes_exactly_k_distinct_maps_in_about_p_of_samples(k):
    n, b, p = 4000, 4, 0.6
    torch.manual_seed(0)
    out = DROPPING.get("mad")(p, b, 3, k).train()(_maps(n=n, b=b, side=4))
    per_sample = _zeroed(out).sum(1)                           # distinct maps zeroed, per sample
    assert set(per_sample.unique().tolist()) == {0, k}
    fraction = (per_sample == k).float().mean().item()
    assert abs(fraction - p) < 3 * math.sqrt(p * (1 - p) / n)


def test_mad_drop_maps_picks_each_set_of_k_maps_uniformly():
    # B = 4, k = 2: the 6 pairs equally often (the release's draw with replacement would also give a single map)
    n, b, k = 6000, 4, 2
    torch.manual_seed(2)
    hit = _zeroed(DROPPING.get("mad")(1.0, b, 3, k).train()(_maps(n=n, b=b, side=2)))
    codes = (hit.long() * (2 ** torch.arange(b))).sum(1)       # (N,) the set of dropped maps as a bit mask
    counts = torch.bincount(codes, minlength=2 ** b).float()
    pairs = [sum(2 ** i for i in pair) for pair in ((0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3))]
    assert counts[pairs].sum() == n
    expected, sigma = n / 6, math.sqrt(n * (1 / 6) * (5 / 6))
    assert ((counts[pairs] - expected).abs() < 3 * sigma).all()


def test_mad_drop_maps_leaves_the_other_maps_untouched_and_unscaled():
    torch.manual_seed(0)
    maps = _maps(n=500, b=4)
    out = DROPPING.get("mad")(0.6, 4, 3, 3).train()(maps)
    kept = ~_zeroed(out)
    assert kept.sum(1).min() >= 1                               # never every map
    assert torch.equal(out[kept], maps[kept])


def test_mad_drop_maps_is_identity_in_eval():
    drop = DROPPING.get("mad")(1.0, 4, 3, 3).eval()
    maps = _maps(b=4)
    assert torch.equal(drop(maps), maps)


def test_mad_one_map_draws_as_before_the_count_existed():
    # the release's k = 1, drawn from torch's RNG as before drop_maps existed: seeded runs reproduce bit for bit
    import torch.nn.functional as F

    maps = _maps(n=64, b=3)
    torch.manual_seed(11)
    dropped = torch.rand(64) < 0.6
    hit = F.one_hot(torch.randint(3, (64,)), 3).bool() & dropped[:, None]
    before, state_before = maps * (~hit).float()[:, :, None, None], torch.get_rng_state()
    torch.manual_seed(11)
    assert torch.equal(DROPPING.get("mad")(0.6, 3, 3).train()(maps), before)
    assert torch.equal(torch.get_rng_state(), state_before)


@pytest.mark.parametrize("k, b, expected", [(0, 4, "from 1 to 3"), (4, 4, "from 1 to 3"), (2, 2, "1")])
def test_mad_refuses_a_count_below_one_or_of_every_map(k, b, expected):
    with pytest.raises(ValueError, match=rf"drop_maps={k} is invalid with {b} maps: expected {expected} "
                                         r"\(dropping every map zeroes the fused map\)"):
        DROPPING.get("mad")(0.6, b, 3, k)


def test_mad_one_map_of_one_is_allowed_as_released():
    # B = 1 with the release's k = 1 drops the only map (the num_lanets sweep's B = 1 row)
    torch.manual_seed(0)
    out = DROPPING.get("mad")(1.0, 1, 3, 1).train()(_maps(b=1))
    assert (out == 0).all()


def test_mad_pure_function_refuses_a_count_of_every_map_it_is_given():
    with pytest.raises(ValueError, match=r"drop_maps=3 is invalid with 3 maps"):
        multi_attention_drop(_maps(b=3), 0.6, True, drop_maps=3)


@pytest.mark.parametrize("name", ["none", "dropout", "dropblock", "spatial_dropout"])
def test_dropping_variants_other_than_mad_refuse_a_count_of_maps(name):
    with pytest.raises(ValueError, match=r"drop_maps=2 is invalid for \w+: expected 1 \(only MAD drops a number of "
                                         r"maps"):
        DROPPING.get(name)(0.5, 4, 3, 2)


def test_mad_extra_repr_shows_the_count():
    assert "rate=0.6, drop_maps=2" in repr(DROPPING.get("mad")(0.6, 4, 3, 2))
