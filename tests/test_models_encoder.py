"""Specifications of the encoder and MSAD (transfer_core/models/encoder.py)."""

from __future__ import annotations

import math

import pytest
import torch

from transfer_core.models.encoder import Attention, Block, Encoder, HeadDrop, ReleasedTokenDrop, msad_head_drop


def _capture(module):
    """Record (input, output) of every forward call of `module`."""
    seen = []
    module.register_forward_hook(lambda m, args, out: seen.append((args[0].detach(), out.detach())))
    return seen


def _attention(mode, rate, dim=16, heads=4, seed=0):
    torch.manual_seed(seed)
    return Attention(dim, heads, mode, rate)


def test_encoder_returns_cls_feature_and_passes_gradients():
    torch.manual_seed(0)
    enc = Encoder(in_channels=8, num_tokens=9, embed_dim=16, depth=2, num_heads=4, mlp_ratio=3.0).train()
    x = torch.randn(3, 8, 3, 3, requires_grad=True)
    out = enc(x)
    assert out.shape == (3, 16)
    # not out.sum(): a LayerNorm's output (weight 1, bias 0 at init) sums to 0 whatever its input, so its
    # gradient is 0 but for rounding, which the thread count decides
    (out * torch.randn(16)).sum().backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 1e-6
    assert all(p.grad is not None for p in enc.parameters())


def test_encoder_has_cls_token_and_learnable_positions_for_every_token():
    enc = Encoder(8, 9, 16, 1, 4, 3.0)
    assert enc.cls_token.shape == (1, 1, 16) and enc.pos_embed.shape == (1, 10, 16)
    assert enc.pos_embed.requires_grad and enc.pos_embed.std() < 0.05


def test_encoder_rejects_a_different_token_count():
    enc = Encoder(8, 9, 16, 1, 4, 3.0)
    with pytest.raises(ValueError, match="built for 9 tokens but got 16"):
        enc(torch.randn(1, 8, 4, 4))


def test_encoder_block_has_released_parameter_count():
    with torch.device("meta"):
        block = Block(768, 8, 3.0, "head", 0.3)
    assert sum(p.numel() for p in block.parameters()) == 5_905_152
    assert block.attn.qkv.bias is None and block.attn.proj.bias is not None
    assert block.norm1.eps == 1e-6 and block.mlp.fc1.out_features == 2304


def test_attention_matches_softmax_with_head_dim_scale():
    attn = _attention("none", 0.0).eval()
    x = torch.randn(2, 5, 16)
    q, k, v = attn.qkv(x).reshape(2, 5, 3, 4, 4).permute(2, 0, 3, 1, 4)   # 3 x (N, heads, T, head_dim)
    weights = (q @ k.transpose(-2, -1) * 4 ** -0.5).softmax(-1)            # (N, heads, T, T)
    manual = attn.proj((weights @ v).transpose(1, 2).reshape(2, 5, 16))
    assert torch.allclose(attn(x), manual, atol=1e-5)


def test_msad_head_mode_zeroes_exactly_one_head_in_about_p_of_samples():
    n, p = 4000, 0.3
    attn = _attention("head", p).train()
    seen = _capture(attn.head_drop)
    attn(torch.randn(n, 3, 16))
    before, after = seen[0]                                   # (N, heads, T, head_dim) each
    zero_heads = (after == 0).flatten(2).all(-1)              # (N, heads)
    per_sample = zero_heads.sum(1)
    assert per_sample.max() <= 1
    keep = ~zero_heads
    assert torch.equal(after[keep], before[keep])             # no rescaling of the other heads
    fraction = (per_sample == 1).float().mean().item()
    assert abs(fraction - p) < 3 * math.sqrt(p * (1 - p) / n)


def test_msad_head_mode_picks_heads_uniformly():
    n, heads = 4000, 4
    out = HeadDrop(1.0).train()(torch.ones(n, heads, 2, 3))
    counts = (out == 0).flatten(2).all(-1).sum(0).float()     # (heads,)
    sigma = math.sqrt(n * 0.25 * 0.75)
    assert ((counts - n / heads).abs() < 3 * sigma).all()


def test_msad_released_token_mode_zeroes_qkv_of_one_token_below_num_heads():
    n, p, heads, tokens = 4000, 0.3, 4, 10
    attn = _attention("released_token", p, heads=heads).train()
    seen = _capture(attn.qkv_drop)
    attn(torch.randn(n, tokens, 16))
    before, after = seen[0]                                   # (N, T, 3, heads, head_dim) each
    zero_tokens = (after == 0).flatten(2).all(-1)             # (N, T): q, k and v of the token all zero
    per_sample = zero_tokens.sum(1)
    assert per_sample.max() <= 1
    assert not zero_tokens[:, heads:].any()                   # only tokens with index < num_heads
    assert zero_tokens[:, :heads].any(0).all()                # and every such index occurs
    keep = ~zero_tokens
    assert torch.equal(after[keep], before[keep])
    fraction = (per_sample == 1).float().mean().item()
    assert abs(fraction - p) < 3 * math.sqrt(p * (1 - p) / n)


def test_msad_released_token_mode_ignores_index_beyond_token_count():
    torch.manual_seed(0)
    qkv = torch.ones(500, 2, 3, 4, 2)                         # T = 2 < heads = 4
    out = ReleasedTokenDrop(1.0).train()(qkv)
    zero_tokens = (out == 0).flatten(2).all(-1)
    assert 0 < zero_tokens.any(1).float().mean() < 1          # index 0 or 1 dropped, 2 or 3: nothing


@pytest.mark.parametrize("mode", ["head", "released_token"])
def test_msad_is_identity_in_eval(mode):
    torch.manual_seed(0)
    block = Block(16, 4, 3.0, mode, 0.9)
    off = Block(16, 4, 3.0, "none", 0.9)
    off.load_state_dict(block.state_dict())
    x = torch.randn(6, 5, 16)
    assert torch.equal(block.eval()(x), off.eval()(x))


def test_msad_none_is_identity_in_training():
    torch.manual_seed(0)
    block = Block(16, 4, 3.0, "none", 0.9)
    x = torch.randn(6, 5, 16)
    assert torch.equal(block.train()(x), block.eval()(x))


def test_msad_randomness_comes_from_torch_rng():
    attn = _attention("head", 0.5).train()
    x = torch.randn(64, 3, 16)
    torch.manual_seed(3)
    first = attn(x)
    torch.manual_seed(3)
    assert torch.equal(attn(x), first)


def test_msad_rejects_unknown_mode():
    with pytest.raises(ValueError, match="msad_mode='heads' is invalid: expected one of head, released_token, none"):
        Attention(16, 4, "heads", 0.3)


def test_msad_extra_repr_shows_rate():
    assert "rate=0.3" in repr(_attention("head", 0.3)) and "rate=0.3" in repr(_attention("released_token", 0.3))


# --------------------------------------------------------------------------- MSAD dropping k heads (drop_heads)

@pytest.mark.parametrize("k", [2, 3])
def test_msad_head_mode_drop_heads_zeroes_exactly_k_distinct_heads_in_about_p_of_samples(k):
    n, p = 4000, 0.3
    torch.manual_seed(0)
    attn = Attention(16, 4, "head", p, k).train()
    seen = _capture(attn.head_drop)
    attn(torch.randn(n, 3, 16))
    before, after = seen[0]                                   # (N, heads, T, head_dim) each
    zero_heads = (after == 0).flatten(2).all(-1)              # (N, heads)
    per_sample = zero_heads.sum(1)
    assert set(per_sample.unique().tolist()) == {0, k}
    keep = ~zero_heads
    assert torch.equal(after[keep], before[keep])             # the other heads untouched, not rescaled
    fraction = (per_sample == k).float().mean().item()
    assert abs(fraction - p) < 3 * math.sqrt(p * (1 - p) / n)


def test_msad_drop_heads_picks_each_set_of_k_heads_uniformly():
    n, heads = 6000, 4
    torch.manual_seed(1)
    out = HeadDrop(1.0, 2).train()(torch.ones(n, heads, 2, 3))
    hit = (out == 0).flatten(2).all(-1)                       # (N, heads)
    codes = (hit.long() * (2 ** torch.arange(heads))).sum(1)  # the set of dropped heads as a bit mask
    counts = torch.bincount(codes, minlength=2 ** heads).float()
    pairs = [sum(2 ** i for i in pair) for pair in ((0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3))]
    assert counts[pairs].sum() == n
    assert ((counts[pairs] - n / 6).abs() < 3 * math.sqrt(n * (1 / 6) * (5 / 6))).all()


def test_msad_drop_heads_is_identity_in_eval():
    torch.manual_seed(0)
    block = Block(16, 4, 3.0, "head", 0.9, 3)
    off = Block(16, 4, 3.0, "none", 0.9)
    off.load_state_dict(block.state_dict())
    x = torch.randn(6, 5, 16)
    assert torch.equal(block.eval()(x), off.eval()(x))


def test_msad_one_head_draws_as_before_the_count_existed():
    # k = 1, drawn from torch's RNG as before drop_heads existed: seeded runs reproduce bit for bit
    import torch.nn.functional as F

    heads = torch.randn(64, 4, 3, 2)
    torch.manual_seed(5)
    dropped = torch.rand(64) < 0.3
    hit = F.one_hot(torch.randint(4, (64,)), 4).bool() & dropped[:, None]
    before, state_before = heads * (~hit).float()[:, :, None, None], torch.get_rng_state()
    torch.manual_seed(5)
    assert torch.equal(msad_head_drop(heads, 0.3, True), before)
    assert torch.equal(torch.get_rng_state(), state_before)


@pytest.mark.parametrize("k, heads, expected", [(4, 4, "from 1 to 3"), (2, 2, "1")])
def test_msad_refuses_dropping_every_head(k, heads, expected):
    with pytest.raises(ValueError, match=rf"msad_drop_heads={k} is invalid with {heads} heads: expected {expected} "
                                         r"\(dropping every head leaves the block only its residual\)"):
        Attention(16, heads, "head", 0.3, k)


def test_msad_refuses_a_count_below_one():
    with pytest.raises(ValueError, match=r"msad_drop_heads=0 is invalid: expected an integer >= 1"):
        HeadDrop(0.3, 0)


@pytest.mark.parametrize("mode", ["released_token", "none"])
def test_msad_modes_other_than_head_refuse_a_count_of_heads(mode):
    # released_token zeroes one token (the release's single draw), never a head: a count has no meaning there
    with pytest.raises(ValueError, match=rf"msad_drop_heads=2 is invalid with msad_mode='{mode}': expected 1 "
                                         r"\(only mode head drops a number of heads\)"):
        Attention(16, 4, mode, 0.3, 2)


def test_msad_one_head_of_one_is_allowed_as_released():
    torch.manual_seed(0)
    out = HeadDrop(1.0, 1).train()(torch.ones(8, 1, 2, 3))
    assert (out == 0).all()


def test_msad_extra_repr_shows_the_count():
    assert "rate=0.3, drop_heads=2" in repr(Attention(16, 4, "head", 0.3, 2))
