"""The TransFER encoder ("ViT-FER") with Multi-head Self-Attention Dropping (MSAD).

reference/transfer.md §5-7 (confirmed from the authors' PaddlePaddle release):
- A 1x1 conv with bias projects the (reweighted) stem features C -> D; space is flattened into
  T = h*w tokens (no patch-embed conv), a learnable CLS token and a learnable absolute position
  embedding (1, T+1, D) are added, both trunc-normal std 0.02.
- `depth` pre-norm blocks: x = x + Attn(LN(x)); x = x + MLP(LN(x)). LN eps 1e-6; qkv without bias,
  output projection with bias; scale head_dim^-0.5; MLP ratio 3 with GELU; no dropout, no
  drop-path. A final LN, then the CLS token is returned (the classifier lives in transfer.py).

MSAD, in every block's attention, training only, per sample with probability `msad_rate`:
- mode "head" (the paper's intent, our default): zero ONE head's output (attn @ v)[i, h], h chosen
  uniformly, before the output projection; no rescaling. For the paper's ablation of dropping two or
  more heads (§7, §12: "no real improvement"), `drop_heads` = k zeroes k DISTINCT heads, uniformly
  among the k-subsets, k below num_heads (all dropped would leave the block only its residual). The
  release draws one index and has no count; k = 1 draws exactly as before the option existed.
- mode "released_token": reproduces the authors' released `HeadDropOut`. It reshapes qkv to
  (N, T, 3, heads, head_dim) and for the chosen sample sets x[i, zero_index] = 0 with zero_index
  uniform in range(num_heads). Axis 1 is the TOKEN axis, so this zeroes q, k and v of one token
  whose index is < num_heads (index 0 is CLS); it does not drop a head (transfer.md §7). If
  zero_index >= T (only when T < num_heads, where the released code would raise IndexError) nothing
  is zeroed. It takes no count: what it zeroes is a token, and the release draws one.
- mode "none": off.
All randomness comes from torch's RNG.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from transfer_core.models.dropping import check_drop_count, per_sample_drops

__all__ = ["MSAD_MODES", "msad_head_drop", "msad_token_drop", "HeadDrop", "ReleasedTokenDrop",
           "Attention", "Mlp", "Block", "Encoder"]

MSAD_MODES = ("head", "released_token", "none")


def _check_rate(rate: float) -> float:
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"msad_rate={rate!r} is invalid: expected a number in [0, 1]")
    return float(rate)


# --------------------------------------------------------------------------- MSAD, pure functions

def _check_drop_heads(drop_heads: int, num_heads: int) -> int:
    return check_drop_count("msad_drop_heads", drop_heads, num_heads, "heads",
                            "dropping every head leaves the block only its residual")


def msad_head_drop(heads: Tensor, rate: float, training: bool = True, drop_heads: int = 1) -> Tensor:
    """Per sample, with probability `rate`, zero `drop_heads` distinct heads' outputs (one by default).
    heads: (N, num_heads, T, head_dim)."""
    if not training or rate == 0.0:
        return heads
    n, h = heads.shape[:2]
    _check_drop_heads(drop_heads, h)
    hit = per_sample_drops(n, h, rate, drop_heads, heads.device)         # (N, heads)
    keep = (~hit).to(heads.dtype)[:, :, None, None]                      # (N, heads, 1, 1)
    return heads * keep


def msad_token_drop(qkv: Tensor, rate: float, training: bool = True) -> Tensor:
    """The released HeadDropOut. qkv: (N, T, 3, num_heads, head_dim); per sample, with probability
    `rate`, zero q/k/v of token `zero_index`, zero_index uniform in range(num_heads)."""
    if not training or rate == 0.0:
        return qkv
    n, t, _, h, _ = qkv.shape
    dropped = torch.rand(n, device=qkv.device) < rate                    # (N,)
    index = torch.randint(h, (n,), device=qkv.device)                    # (N,) a token index < heads
    tokens = torch.arange(t, device=qkv.device)                          # (T,)
    hit = (tokens[None, :] == index[:, None]) & dropped[:, None]         # (N, T)
    keep = (~hit).to(qkv.dtype)[:, :, None, None, None]                  # (N, T, 1, 1, 1)
    return qkv * keep


class HeadDrop(nn.Module):
    """MSAD mode "head" on the per-head attention outputs (N, heads, T, head_dim): `drop_heads` distinct
    heads of a dropped sample (one by default)."""

    def __init__(self, rate: float, drop_heads: int = 1) -> None:
        super().__init__()
        self.rate = _check_rate(rate)
        if drop_heads < 1:
            raise ValueError(f"msad_drop_heads={drop_heads!r} is invalid: expected an integer >= 1")
        self.drop_heads = int(drop_heads)

    def forward(self, heads: Tensor) -> Tensor:
        return msad_head_drop(heads, self.rate, self.training, self.drop_heads)

    def extra_repr(self) -> str:
        return f"rate={self.rate}, drop_heads={self.drop_heads}"


class ReleasedTokenDrop(nn.Module):
    """MSAD mode "released_token" on qkv (N, T, 3, heads, head_dim): the authors' HeadDropOut."""

    def __init__(self, rate: float) -> None:
        super().__init__()
        self.rate = _check_rate(rate)

    def forward(self, qkv: Tensor) -> Tensor:
        return msad_token_drop(qkv, self.rate, self.training)

    def extra_repr(self) -> str:
        return f"rate={self.rate}"


# --------------------------------------------------------------------------- blocks

class Attention(nn.Module):
    """Multi-head self-attention, qkv without bias, with MSAD hooks `qkv_drop` and `head_drop`."""

    def __init__(self, dim: int, num_heads: int, msad_mode: str = "head", msad_rate: float = 0.3,
                 msad_drop_heads: int = 1) -> None:
        super().__init__()
        if dim % num_heads != 0:
            raise ValueError(f"num_heads={num_heads} is invalid: expected a divisor of embed_dim={dim}")
        if msad_mode not in MSAD_MODES:
            raise ValueError(f"msad_mode={msad_mode!r} is invalid: expected one of {', '.join(MSAD_MODES)}")
        if msad_drop_heads != 1 and msad_mode != "head":
            raise ValueError(f"msad_drop_heads={msad_drop_heads!r} is invalid with msad_mode={msad_mode!r}: expected 1 "
                             "(only mode head drops a number of heads)")
        _check_drop_heads(msad_drop_heads, num_heads)
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.scale = self.head_dim ** -0.5
        self.qkv = nn.Linear(dim, 3 * dim, bias=False)
        self.proj = nn.Linear(dim, dim)
        # MSAD: exactly one of these is active (or neither, mode "none"); forward hooks can observe both
        self.qkv_drop: nn.Module = (ReleasedTokenDrop(msad_rate) if msad_mode == "released_token"
                                    else nn.Identity())
        self.head_drop: nn.Module = (HeadDrop(msad_rate, msad_drop_heads) if msad_mode == "head"
                                     else nn.Identity())

    def forward(self, x: Tensor) -> Tensor:
        n, t, d = x.shape                                                  # (N, T, D)
        qkv = self.qkv(x).reshape(n, t, 3, self.num_heads, self.head_dim)  # (N, T, 3, heads, head_dim)
        qkv = self.qkv_drop(qkv)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)                     # 3 x (N, heads, T, head_dim)
        out = F.scaled_dot_product_attention(q, k, v, scale=self.scale)   # (N, heads, T, head_dim)
        out = self.head_drop(out)
        out = out.transpose(1, 2).reshape(n, t, d)                         # (N, T, D)
        return self.proj(out)


class Mlp(nn.Module):
    def __init__(self, dim: int, hidden: int) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(self.act(self.fc1(x)))


class Block(nn.Module):
    """Pre-norm transformer block."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float, msad_mode: str, msad_rate: float,
                 msad_drop_heads: int = 1) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, num_heads, msad_mode, msad_rate, msad_drop_heads)
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


# --------------------------------------------------------------------------- encoder

class Encoder(nn.Module):
    """(N, C, h, w) features -> the final-LN CLS token (N, D).

    `proj` is the 1x1 projection; everything else (cls_token, pos_embed, blocks, norm) is the
    "ViT" part of reference/transfer.md §9.
    """

    def __init__(self, in_channels: int, num_tokens: int, embed_dim: int, depth: int, num_heads: int,
                 mlp_ratio: float, msad_mode: str = "head", msad_rate: float = 0.3, msad_drop_heads: int = 1) -> None:
        super().__init__()
        self.num_tokens = num_tokens
        self.proj = nn.Conv2d(in_channels, embed_dim, kernel_size=1, bias=True)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, num_tokens + 1, embed_dim))
        self.blocks = nn.ModuleList(
            Block(embed_dim, num_heads, mlp_ratio, msad_mode, msad_rate, msad_drop_heads) for _ in range(depth))
        self.norm = nn.LayerNorm(embed_dim, eps=1e-6)
        self._init_weights()

    def _init_weights(self) -> None:
        nn.init.trunc_normal_(self.cls_token, std=0.02)
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        for m in self.blocks.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.LayerNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward(self, x: Tensor) -> Tensor:
        x = self.proj(x)                                        # (N, D, h, w)
        x = x.flatten(2).transpose(1, 2)                        # (N, T, D)
        if x.shape[1] != self.num_tokens:
            raise ValueError(f"the encoder was built for {self.num_tokens} tokens but got {x.shape[1]}: "
                             "the input image size differs from model.image_size")
        cls = self.cls_token.expand(x.shape[0], -1, -1)         # (N, 1, D)
        x = torch.cat((cls, x), dim=1) + self.pos_embed         # (N, T+1, D)
        for block in self.blocks:
            x = block(x)
        return self.norm(x)[:, 0]                               # (N, D)
