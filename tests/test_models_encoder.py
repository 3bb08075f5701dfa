"""Specifications of the encoder and MSAD (transfer_core/models/encoder.py)."""

from __future__ import annotations

import math

import pytest
import torch

from transfer_core.models.encoder import Attention, Block, Encoder, HeadDrop, ReleasedTokenDrop


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
