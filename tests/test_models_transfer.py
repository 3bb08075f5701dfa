"""Specifications of the TransFER assembly (transfer_core/models/transfer.py)."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from transfer_core.config import ModelConfig
from transfer_core.models import TransFER, build_model
from transfer_core.models.encoder import HeadDrop, ReleasedTokenDrop
from transfer_core.models.lanet import LANet

TINY = ModelConfig(stem="small", stem_width=8, image_size=16, embed_dim=16, depth=1, num_heads=4,
                   num_classes=5)


def _params(module) -> int:
    return sum(p.numel() for p in module.parameters())


def _tiny(**changes) -> TransFER:
    torch.manual_seed(0)
    return build_model(dataclasses.replace(TINY, **changes))


@pytest.fixture(scope="module")
def released():
    with torch.device("meta"):  # shapes only: counting 65 M parameters needs no memory or init time
        return build_model(ModelConfig())


def test_transfer_released_config_has_65217869_parameters(released):
    assert _params(released) == 65_217_869


def test_transfer_released_parts_match_reference_sizes(released):
    vit = sum(p.numel() for n, p in released.encoder.named_parameters() if not n.startswith("proj."))
    assert (_params(released.stem), _params(released.local_branch), _params(released.encoder.proj), vit,
            _params(released.head)) == (17_611_968, 8_326, 197_376, 47_394_816, 5_383)


def test_transfer_released_config_costs_15_28_gmacs_per_112px_image():
    """reference/transfer.md §9: convs, linears and attention matmuls (q.k^T, attn.v) of one 112 px forward,
    as torch's flop counter counts them (MACs = FLOPs / 2): 15,280,643,456 = IR-50 stages 1-3 5,467,979,776 +
    LANets 1,611,904 + projection 38,535,168 + ViT 9,772,511,232 + head 5,376. On the meta device (shapes only)
    with the math attention kernel: the counter has no formula for the CPU's fused attention kernel, whose
    matmuls (476,884,992 MACs) it would leave out."""
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode

    with torch.device("meta"):
        model = build_model(ModelConfig()).eval()
        x = torch.empty(1, 3, 112, 112)
    counter = FlopCounterMode(display=False)
    with sdpa_kernel(SDPBackend.MATH), counter, torch.no_grad():
        model(x)
    macs = {name: sum(ops.values()) // 2 for name, ops in counter.get_flop_counts().items()}
    assert macs["TransFER.encoder"] - macs["TransFER.encoder.proj"] == 9_772_511_232        # 8 x (10 T D^2 + 2 T^2 D)
    assert (macs["TransFER.stem"], macs["TransFER.local_branch"], macs["TransFER.encoder.proj"],
            macs["TransFER.head"]) == (5_467_979_776, 1_611_904, 38_535_168, 5_376)
    assert macs["Global"] == 15_280_643_456


def test_transfer_released_config_has_196_tokens_and_two_lanets(released):
    assert released.encoder.pos_embed.shape == (1, 197, 768)
    assert len(released.local_branch.lanets) == 2


def test_transfer_forward_gives_logits_per_class():
    model = _tiny().train()
    assert model(torch.randn(3, 3, 16, 16)).shape == (3, 5)


def test_transfer_head_is_initialised_to_zero():
    model = _tiny()
    assert not model.head.weight.any() and not model.head.bias.any()
    assert not model.eval()(torch.randn(2, 3, 16, 16)).any()


def _biases_before_batchnorm(model) -> set[str]:
    """Conv biases that a BatchNorm follows: in training its batch mean cancels them, so their gradient is
    zero up to rounding (kept as in the released LANet, bias=True; reference/transfer.md §3)."""
    names = set()
    for prefix, module in model.named_modules():
        if isinstance(module, torch.nn.Sequential):
            for (i, layer), (_, after) in zip(list(module.named_children()), list(module.named_children())[1:]):
                if isinstance(layer, torch.nn.Conv2d) and layer.bias is not None and isinstance(
                        after, torch.nn.BatchNorm2d):
                    names.add(f"{prefix}.{i}.bias")
    return names


def test_transfer_gradients_reach_every_parameter_once_the_head_is_nonzero():
    model = _tiny().train()
    torch.nn.init.normal_(model.head.weight)
    model(torch.randn(4, 3, 16, 16)).logsumexp(1).sum().backward()
    cancelled = _biases_before_batchnorm(model)
    assert cancelled == {f"local_branch.lanets.{b}.net.{i}.bias" for b in (0, 1) for i in (0, 3)}
    grads = {n: p.grad for n, p in model.named_parameters()}
    missing = [n for n, g in grads.items() if n not in cancelled and (g is None or not g.abs().sum() > 1e-6)]
    assert missing == []
    assert all(grads[n].abs().max() < 1e-6 for n in cancelled), "a batch mean cancels these biases"


def test_transfer_attention_map_shape_and_range():
    model = _tiny().train()
    m = model.attention_map(torch.randn(3, 3, 16, 16))
    assert m.shape == (3, 1, 4, 4)
    assert m.min() >= 0 and m.max() <= 1


def test_transfer_attention_map_has_no_dropping_and_restores_mode():
    model = _tiny(drop_rate=1.0).train()
    x = torch.randn(3, 3, 16, 16)
    first, second = model.attention_map(x), model.attention_map(x)
    assert torch.equal(first, second)
    assert model.training and all(m.training for m in model.modules())
    assert torch.equal(model.eval().attention_map(x), first)


def test_transfer_attention_map_needs_local_branch():
    model = _tiny(local_branch=False)
    with pytest.raises(ValueError, match="attention_map needs the local branch, but model.local_branch is False"):
        model.attention_map(torch.randn(1, 3, 16, 16))


def test_transfer_no_weight_decay_names_positions_and_cls_token():
    model = _tiny()
    assert model.no_weight_decay() == {"encoder.pos_embed", "encoder.cls_token"}
    assert model.no_weight_decay() <= dict(model.named_parameters()).keys()
    assert _tiny(encoder=False).no_weight_decay() == set()


@pytest.mark.parametrize("changes", [
    {},
    {"local_branch": False},
    {"drop_variant": "none"},
    {"drop_variant": "dropout"},
    {"drop_variant": "dropblock"},
    {"drop_variant": "spatial_dropout"},
    {"encoder": False},
    {"msad_mode": "none"},
    {"msad_mode": "released_token"},
    {"stem": "resnet18", "image_size": 32},
    {"local_branch": False, "encoder": False, "msad_mode": "none"},
], ids=lambda c: ",".join(f"{k}={v}" for k, v in c.items()) or "default")
def test_transfer_component_switches_build_working_models(changes):
    model = _tiny(**changes).train()
    torch.nn.init.normal_(model.head.weight)
    side = model.config.image_size
    out = model(torch.randn(2, 3, side, side))
    assert out.shape == (2, 5)
    out.sum().backward()
    assert all(p.grad is not None for p in model.parameters())


def test_transfer_without_local_branch_has_no_lanets_and_passes_features_unchanged():
    model = _tiny(local_branch=False).eval()
    assert model.local_branch is None and not any(isinstance(m, LANet) for m in model.modules())
    x = torch.randn(2, 3, 16, 16)
    assert torch.equal(model.forward_features(x), model.encoder(model.stem(x)))


def test_transfer_without_encoder_pools_stem_features_into_a_zero_linear_head():
    model = _tiny(encoder=False)
    assert model.encoder is None and not any("encoder" in n for n, _ in model.named_parameters())
    assert model.head.in_features == model.stem.out_channels == 16
    assert not model.head.weight.any() and not model.head.bias.any()


def test_transfer_msad_mode_selects_the_dropping_module():
    assert any(isinstance(m, HeadDrop) for m in _tiny().modules())
    assert any(isinstance(m, ReleasedTokenDrop) for m in _tiny(msad_mode="released_token").modules())
    assert not any(isinstance(m, (HeadDrop, ReleasedTokenDrop)) for m in _tiny(msad_mode="none").modules())


def test_transfer_drop_variant_is_applied_with_config_rate():
    model = _tiny(drop_variant="dropblock", drop_rate=0.25, dropblock_size=5)
    assert "rate=0.25, block_size=5" in repr(model.local_branch.dropping)


def test_transfer_is_reproducible_from_torch_seed():
    model = _tiny(drop_rate=0.6, msad_rate=0.5).train()
    torch.nn.init.normal_(model.head.weight)
    x = torch.randn(8, 3, 16, 16)
    torch.manual_seed(11)
    first = model(x)
    torch.manual_seed(11)
    assert torch.equal(model(x), first)


@pytest.mark.parametrize("variant,mode", [("mad", "head"), ("mad", "released_token"), ("dropout", "head"),
                                           ("dropblock", "head"), ("spatial_dropout", "head")])
def test_transfer_eval_drops_nothing_and_draws_nothing(variant, mode):
    """reference/transfer.md §4, §7: MAD and MSAD act in training only; at eval M is the max of all B maps and
    every head attends. In eval the model at rates 1.0 computes what the same weights compute at rates 0, and
    leaves torch's RNG as it found it (evaluation is deterministic whatever the seed)."""
    model = _tiny(drop_variant=variant, drop_rate=1.0, msad_mode=mode, msad_rate=1.0).eval()
    torch.nn.init.normal_(model.head.weight)
    still = build_model(dataclasses.replace(model.config, drop_rate=0.0, msad_rate=0.0)).eval()
    still.load_state_dict(model.state_dict())
    x = torch.randn(4, 3, 16, 16)
    rng = torch.get_rng_state()
    out = model(x)
    assert torch.equal(torch.get_rng_state(), rng)
    assert torch.equal(out, still(x))
    assert not torch.equal(model.train()(x), still.train()(x))   # the same rates do drop in training


def test_transfer_rejects_image_size_not_divisible_by_stem_stride():
    with pytest.raises(ValueError, match="model.image_size=18 is invalid: expected a multiple of 4, the stride of "
                                         "model.stem='small'"):
        build_model(dataclasses.replace(TINY, image_size=18))


def test_transfer_drop_counts_reach_mad_and_every_blocks_msad():
    model = _tiny(num_lanets=4, mad_drop_maps=3, depth=2, msad_drop_heads=2).train()
    assert model.local_branch.dropping.drop_maps == 3
    assert [b.attn.head_drop.drop_heads for b in model.encoder.blocks] == [2, 2]
    assert model(torch.randn(4, 3, 16, 16)).shape == (4, 5)


def test_transfer_drop_count_of_every_map_is_refused_before_building():
    from transfer_core.config import ConfigError

    with pytest.raises(ConfigError, match=r"model.mad_drop_maps=2 is invalid: expected 1 with model.num_lanets=2: "
                                          r"dropping all 2 maps zeroes the fused map M"):
        build_model(dataclasses.replace(TINY, mad_drop_maps=2))
