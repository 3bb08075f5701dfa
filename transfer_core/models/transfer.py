"""TransFER (Xue, Wang, Guo, ICCV 2021, arXiv 2108.11116), assembled from a ModelConfig.

Stem CNN -> local branch (B LANets, MAD, max fusion, X * M) -> 1x1 projection into tokens -> encoder
with MSAD -> final-LN CLS token -> Linear head (weight and bias initialised to 0, as the release's
LinearClsHead). `build_model(ModelConfig())` is the released configuration: IR-50 stages 1-3,
B = 2, p1 = 0.6, D = 768, depth 8, 8 heads, MLP 3, p2 = 0.3, 7 classes: 65,217,869 parameters
(reference/transfer.md §9).

Where we differ from the paper or the release:
- MSAD drops one head by default (the paper's intent); the release's token-indexing behaviour is
  `msad_mode="released_token"` (encoder.py).
- `mad_drop_maps` / `msad_drop_heads` (default 1, as released) drop that many DISTINCT maps / heads, for
  the paper's "dropping two or more" ablation; the release's MAD cap draws with replacement (dropping.py).
- Component switches reproduce the rows of the paper's Table 1 from configs alone:
  `local_branch=False` (no LANets, the stem features pass unchanged), `drop_variant="none"`,
  `encoder=False` (global average pooling of the stem features + Linear head), `msad_mode="none"`.
- The Table 2 regularisers replace MAD on the stacked maps (our reading; dropping.py).

Submodules match the parts of the §9 size table: `stem`, `local_branch` (None when off),
`encoder.proj` (the 1x1 projection), the rest of `encoder` (the ViT) and `head`.
"""

from __future__ import annotations

import dataclasses
import logging
import warnings
from typing import Mapping

import torch
from torch import Tensor, nn

from transfer_core.config import ModelConfig, check_drop_counts, check_stem_stride
from transfer_core.models.checkpoint import CheckpointError, load_ir50_checkpoint, load_vit_checkpoint
from transfer_core.models.dropping import DROPPING
from transfer_core.models.encoder import Encoder
from transfer_core.models.lanet import LocalBranch
from transfer_core.models.stems import STEMS

__all__ = ["TransFER", "build_model", "check_pretrained"]

log = logging.getLogger(__name__)


class TransFER(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        check_stem_stride(cfg)
        check_drop_counts(cfg)
        self.config = cfg
        self.stem = STEMS.get(cfg.stem)(cfg)
        channels, stride = self.stem.out_channels, self.stem.stride
        self.grid = cfg.image_size // stride

        self.local_branch: LocalBranch | None = None
        if cfg.local_branch:
            dropping = DROPPING.get(cfg.drop_variant)(cfg.drop_rate, cfg.num_lanets, cfg.dropblock_size,
                                                      cfg.mad_drop_maps)
            self.local_branch = LocalBranch(channels, cfg.num_lanets, cfg.lanet_ratio, dropping)

        self.encoder: Encoder | None = None
        if cfg.encoder:
            self.encoder = Encoder(channels, self.grid * self.grid, cfg.embed_dim, cfg.depth, cfg.num_heads,
                                   cfg.mlp_ratio, cfg.msad_mode, cfg.msad_rate, cfg.msad_drop_heads)
            features = cfg.embed_dim
        else:
            features = channels
        self.head = nn.Linear(features, cfg.num_classes)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def forward_features(self, x: Tensor) -> Tensor:
        """(N, 3, S, S) -> the pre-head feature (N, D), or (N, C) without the encoder."""
        x = self.stem(x)                                   # (N, C, h, w)
        if self.local_branch is not None:
            x = self.local_branch(x)                       # (N, C, h, w), reweighted by M
        if self.encoder is not None:
            return self.encoder(x)                         # (N, D) the CLS token
        return x.mean(dim=(2, 3))                          # (N, C) global average pooling

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.forward_features(x))         # (N, num_classes)

    def attention_map(self, x: Tensor) -> Tensor:
        """The fused LANet map M (N, 1, h, w) in [0, 1], as in eval: no dropping, BatchNorm running stats.

        The stem and local branch are switched to eval for the call and restored afterwards (so
        the call also leaves BatchNorm's running statistics untouched). Gradients are not disabled.
        """
        if self.local_branch is None:
            raise ValueError("attention_map needs the local branch, but model.local_branch is False: "
                             "there are no LANet maps")
        modes = {m: m.training for m in (*self.stem.modules(), *self.local_branch.modules())}
        try:
            self.stem.eval()
            self.local_branch.eval()
            maps = self.local_branch.maps(self.stem(x))    # (N, B, h, w)
            return maps.amax(dim=1, keepdim=True)          # (N, 1, h, w)
        finally:
            for m, training in modes.items():
                m.training = training

    def no_weight_decay(self) -> set[str]:
        """Full parameter names (as in named_parameters) that should get no weight decay."""
        if self.encoder is None:
            return set()
        return {"encoder.pos_embed", "encoder.cls_token"}


def build_model(cfg: ModelConfig) -> TransFER:
    """The TransFER network for `cfg`; loads cfg.stem_checkpoint into the ir50 stem and cfg.encoder_checkpoint
    into the encoder (where there is one) when set."""
    model = TransFER(cfg)
    _load_pretrained(model, cfg)
    log.debug("built TransFER: %d parameters", sum(p.numel() for p in model.parameters()))
    return model


# the ModelConfig keys that decide whether a checkpoint fits the network (the stem's, the encoder's dims, the token
# grid the positions are resampled to): what a search's space may draw is checked at each of them (sweeps.runner)
PRETRAINED_FIT_KEYS = ("model.stem", "model.encoder", "model.embed_dim", "model.depth", "model.num_heads",
                       "model.mlp_ratio")


def check_pretrained(cfg: ModelConfig) -> None:
    """CheckpointError now where a checkpoint `cfg` names is missing or does not fit its network (a key, a shape,
    too few blocks), as build_model would raise it inside every trial; its message starts with the config key
    (`model.encoder_checkpoint: ViT checkpoint '...' does not fit ...`). The network is built on the meta
    device (no memory, no initialisation), so what costs is reading the files."""
    if cfg.stem_checkpoint is None and (cfg.encoder_checkpoint is None or not cfg.encoder):
        return
    with torch.device("meta"):
        model = TransFER(cfg)
    with warnings.catch_warnings():   # meta tensors take no values: the copy is a no-op, of which torch warns
        warnings.filterwarnings("ignore", message=".*copying from a non-meta parameter")
        _load_pretrained(model, cfg, name_key=True)


def _load_pretrained(model: TransFER, cfg: ModelConfig, name_key: bool = False) -> None:
    """cfg's checkpoints into the stem and the encoder (where there is one); with `name_key`, a CheckpointError
    starts with the config key of the file at fault (the driver's check: a trial's error names the file)."""
    loads = [("model.stem_checkpoint", load_ir50_checkpoint, model.stem, cfg.stem_checkpoint),
             ("model.encoder_checkpoint", load_vit_checkpoint, model.encoder, cfg.encoder_checkpoint)]
    for key, load, module, path in loads:
        if path is None or module is None:
            continue
        try:
            report = load(module, path)
        except CheckpointError as err:
            if not name_key:
                raise
            raise CheckpointError(f"{key}: {err}") from None
        log.info("%s initialised from %s (%d tensors)", key, path, report.loaded)


def trained_model(cfg: ModelConfig, state: Mapping[str, Tensor]) -> TransFER:
    """The network of `cfg` holding the weights `state` (a model state dict as checkpoints and logged
    models hold it; torch.compile's `_orig_mod.` prefixes are dropped), in eval mode, on the state's
    device. cfg.stem_checkpoint and cfg.encoder_checkpoint are not read: every weight comes from `state`, and
    the files may not exist where a trained model is looked at."""
    state = {k.removeprefix("_orig_mod."): v for k, v in state.items()}
    model = build_model(dataclasses.replace(cfg, stem_checkpoint=None, encoder_checkpoint=None))
    model.load_state_dict(state)
    if state:
        model.to(next(iter(state.values())).device)
    return model.eval()
