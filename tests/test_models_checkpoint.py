"""Specifications of the pretrained-weight loaders (transfer_core/models/checkpoint.py): face.evoLVe's IR-50 in
the stem, timm's legacy ViT-S in the encoder.

The checkpoints are narrow IR-50s (widths / 8) with face.evoLVe's exact key names, so the tests stay
fast; the key logic does not depend on widths.
"""

from __future__ import annotations

import dataclasses
import logging

import pytest
import torch

from transfer_core.config import ModelConfig
from transfer_core.models import (CheckpointError, build_model, check_pretrained, load_ir50_checkpoint,
                                  load_vit_checkpoint, trained_model)
from transfer_core.models.stems import IR50Stem

NARROW = ((8, 3), (16, 4), (32, 14))                 # stages 1-3, widths / 8
NARROW_FULL = NARROW + ((64, 3),)                    # + stage 4: body.0 .. body.23


def _target() -> IR50Stem:
    torch.manual_seed(0)
    return IR50Stem(NARROW, in_width=8)


def _evolve_state_dict() -> dict[str, torch.Tensor]:
    """A face.evoLVe-layout IR-50 state dict: input_layer, body.0-23, output_layer, random values."""
    torch.manual_seed(1)
    full = IR50Stem(NARROW_FULL, in_width=8)
    state = {k: torch.randn_like(v.float()).to(v.dtype) if v.is_floating_point() else v
             for k, v in full.state_dict().items()}
    for prefix, size in (("output_layer.0", 64), ("output_layer.4", 32)):      # BN2d(512), BN1d(512)
        state.update({f"{prefix}.weight": torch.ones(size), f"{prefix}.bias": torch.zeros(size),
                      f"{prefix}.running_mean": torch.zeros(size), f"{prefix}.running_var": torch.ones(size),
                      f"{prefix}.num_batches_tracked": torch.tensor(0)})
    state["output_layer.3.weight"] = torch.randn(32, 64 * 7 * 7)               # Linear(512*7*7 -> 512)
    state["output_layer.3.bias"] = torch.randn(32)
    return state


def _save(tmp_path, state, name="backbone_ir50_ms1m_epoch120.pth"):
    path = tmp_path / name
    torch.save(state, path)
    return path


def test_checkpoint_loads_input_layer_and_units_0_to_20_and_changes_weights(tmp_path):
    state = _evolve_state_dict()
    stem = _target()
    before = {k: v.clone() for k, v in stem.state_dict().items()}
    report = load_ir50_checkpoint(stem, _save(tmp_path, state))
    after = stem.state_dict()
    assert report.loaded == len(after)
    assert all(torch.equal(after[k], state[k]) for k in after)
    assert not torch.equal(after["body.20.res_layer.3.weight"], before["body.20.res_layer.3.weight"])
    assert not torch.equal(after["input_layer.0.weight"], before["input_layer.0.weight"])


def test_checkpoint_ignores_stage_4_and_output_layer(tmp_path):
    state = _evolve_state_dict()
    report = load_ir50_checkpoint(_target(), _save(tmp_path, state))
    expected = sorted(k for k in state if k.startswith(("body.21.", "body.22.", "body.23.", "output_layer.")))
    assert report.ignored == tuple(expected) and len(expected) > 0


def test_checkpoint_accepts_state_dict_wrapper_and_module_prefix(tmp_path):
    state = _evolve_state_dict()
    wrapped = {"state_dict": {f"module.{k}": v for k, v in state.items()}, "epoch": torch.tensor(120)}
    stem = _target()
    report = load_ir50_checkpoint(stem, _save(tmp_path, wrapped))
    assert report.loaded == len(stem.state_dict())
    assert torch.equal(stem.state_dict()["body.5.res_layer.1.weight"], state["body.5.res_layer.1.weight"])


def test_checkpoint_tolerates_missing_num_batches_tracked(tmp_path):
    state = {k: v for k, v in _evolve_state_dict().items() if not k.endswith("num_batches_tracked")}
    stem = _target()
    assert load_ir50_checkpoint(stem, _save(tmp_path, state)).loaded < len(stem.state_dict())


def test_checkpoint_logs_the_counts(tmp_path, caplog):
    with caplog.at_level(logging.INFO, logger="transfer_core.models.checkpoint"):
        report = load_ir50_checkpoint(_target(), _save(tmp_path, _evolve_state_dict()))
    assert f"loaded {report.loaded} tensors" in caplog.text and f"ignored {len(report.ignored)}" in caplog.text


def test_checkpoint_rejects_foreign_key(tmp_path):
    state = _evolve_state_dict()
    state["body.24.res_layer.0.weight"] = torch.ones(8)
    state["fc.weight"] = torch.ones(2, 2)
    with pytest.raises(CheckpointError, match=r"backbone_ir50_ms1m_epoch120\.pth.*unexpected keys: "
                                              r"body\.24\.res_layer\.0\.weight, fc\.weight"):
        load_ir50_checkpoint(_target(), _save(tmp_path, state))


def test_checkpoint_rejects_missing_key(tmp_path):
    state = _evolve_state_dict()
    del state["body.5.res_layer.1.weight"]
    with pytest.raises(CheckpointError, match=r"epoch120\.pth.*missing keys: body\.5\.res_layer\.1\.weight"):
        load_ir50_checkpoint(_target(), _save(tmp_path, state))


def test_checkpoint_rejects_shape_mismatch(tmp_path):
    state = _evolve_state_dict()
    state["input_layer.0.weight"] = torch.ones(8, 3, 5, 5)
    with pytest.raises(CheckpointError, match=r"epoch120\.pth.*shape mismatches: input_layer\.0\.weight "
                                              r"\(checkpoint \(8, 3, 5, 5\), model \(8, 3, 3, 3\)\)"):
        load_ir50_checkpoint(_target(), _save(tmp_path, state))


def test_checkpoint_rejects_missing_file(tmp_path):
    with pytest.raises(CheckpointError, match=r"nowhere\.pth' does not exist"):
        load_ir50_checkpoint(_target(), tmp_path / "nowhere.pth")


@pytest.mark.parametrize("content", [[1, 2], {"a": 1}, {}])
def test_checkpoint_rejects_file_that_is_not_a_state_dict(tmp_path, content):
    with pytest.raises(CheckpointError, match=r"odd\.pth' is not a state dict"):
        load_ir50_checkpoint(_target(), _save(tmp_path, content, "odd.pth"))


def test_checkpoint_rejects_unreadable_file(tmp_path):
    path = tmp_path / "text.pth"
    path.write_text("not a checkpoint")
    with pytest.raises(CheckpointError, match=r"text\.pth' could not be read"):
        load_ir50_checkpoint(_target(), path)


def test_checkpoint_error_is_a_value_error():
    assert issubclass(CheckpointError, ValueError)


def test_build_model_loads_stem_checkpoint(tmp_path):
    cfg = ModelConfig(image_size=16, embed_dim=8, depth=1, num_heads=1)   # real-width ir50, tiny rest
    torch.manual_seed(0)
    source = build_model(cfg)
    path = _save(tmp_path, source.stem.state_dict(), "ir50.pth")
    torch.manual_seed(1)
    model = build_model(dataclasses.replace(cfg, stem_checkpoint=str(path)))
    assert torch.equal(model.stem.body[20].res_layer[3].weight, source.stem.body[20].res_layer[3].weight)


# --------------------------------------------------------------------------- timm's legacy ViT-S in the encoder
# Narrow encoders (64-d, 8 heads) with timm's exact key names: the loader's logic does not depend on widths.

def _encoder(depth: int = 8, tokens: int = 196, dim: int = 64, seed: int = 0):
    from transfer_core.models.encoder import Encoder

    torch.manual_seed(seed)
    return Encoder(16, tokens, dim, depth, 8, 3.0)


def _timm_state_dict(depth: int = 8, dim: int = 64, qkv_bias: bool = False) -> dict[str, torch.Tensor]:
    """A legacy-timm-layout ViT state dict (vit_small_p16_224's keys): cls_token, pos_embed (1, 197, D),
    patch_embed, blocks.0-7, norm, head (1000 classes), random values."""
    torch.manual_seed(2)
    state = {k: torch.randn_like(v) for k, v in _encoder(depth, dim=dim).state_dict().items()
             if not k.startswith("proj.")}
    state.update({"patch_embed.proj.weight": torch.randn(dim, 3, 16, 16), "patch_embed.proj.bias": torch.randn(dim),
                  "head.weight": torch.randn(1000, dim), "head.bias": torch.randn(1000)})
    if qkv_bias:
        state.update({f"blocks.{i}.attn.qkv.bias": torch.randn(3 * dim) for i in range(depth)})
    return state


def test_vit_checkpoint_loads_everything_but_the_projection_patch_embedding_and_head(tmp_path):
    encoder, state = _encoder(), _timm_state_dict()
    projection = encoder.proj.weight.clone()
    report = load_vit_checkpoint(encoder, _save(tmp_path, state, "vit_small_p16_224-15ec54c9.pth"))
    loaded = encoder.state_dict()
    assert all(torch.equal(loaded[k], v) for k, v in state.items() if k in loaded)
    assert report.loaded == len(loaded) - 2 and torch.equal(encoder.proj.weight, projection), \
        "the 1x1 projection of the stem's features is TransFER's own: it keeps its initialisation"
    assert report.ignored == ("head.bias", "head.weight", "patch_embed.proj.bias", "patch_embed.proj.weight")


def test_a_shallower_encoder_takes_the_first_blocks_of_the_vit(tmp_path):
    encoder, state = _encoder(depth=4), _timm_state_dict()
    report = load_vit_checkpoint(encoder, _save(tmp_path, state))
    assert torch.equal(encoder.blocks[3].mlp.fc2.weight, state["blocks.3.mlp.fc2.weight"])
    assert {k.split(".")[1] for k in report.ignored if k.startswith("blocks.")} == {"4", "5", "6", "7"}


def test_vit_positions_are_resampled_to_another_token_grid_keeping_the_cls_position(tmp_path):
    encoder, state = _encoder(tokens=64), _timm_state_dict()        # an 8 x 8 grid (32 px on the small stem)
    load_vit_checkpoint(encoder, _save(tmp_path, state))
    assert encoder.pos_embed.shape == (1, 65, 64)
    assert torch.equal(encoder.pos_embed[:, 0], state["pos_embed"][:, 0])
    grid = state["pos_embed"][0, 1:].reshape(14, 14, 64)
    assert torch.allclose(encoder.pos_embed[0, 1:].reshape(8, 8, 64).mean((0, 1)), grid.mean((0, 1)), atol=0.1)


@pytest.mark.parametrize("state, message", [
    (_timm_state_dict(dim=32), r"shape mismatches: blocks\.0\.attn\.proj\.bias \(checkpoint \(32,\), model \(64,\)\)"),
    (_timm_state_dict(qkv_bias=True), r"unexpected keys: blocks\.0\.attn\.qkv\.bias"),
    (_timm_state_dict(depth=6), r"it has 6 blocks, the encoder 8 \(model\.depth\)"),
    ({k: v for k, v in _timm_state_dict().items() if k != "norm.weight"}, r"missing keys: norm\.weight"),
], ids=["another_width", "a_qkv_bias", "fewer_blocks", "a_missing_key"])
def test_a_vit_checkpoint_that_does_not_fit_is_refused_naming_the_keys_and_what_fits(tmp_path, state, message):
    with pytest.raises(CheckpointError, match=r"^ViT checkpoint '.*vit\.pth' does not fit the encoder: " + message) as err:
        load_vit_checkpoint(_encoder(), _save(tmp_path, state, "vit.pth"))
    assert "Expected timm's legacy vit_small_patch16_224 (vit_small_p16_224-15ec54c9.pth" in str(err.value)


def test_build_model_loads_the_encoder_checkpoint_where_there_is_an_encoder(tmp_path):
    cfg = ModelConfig(stem="small", stem_width=8, image_size=32, embed_dim=64, depth=8, num_heads=8)
    path = _save(tmp_path, _timm_state_dict(), "vit.pth")
    model = build_model(dataclasses.replace(cfg, encoder_checkpoint=str(path)))
    assert torch.equal(model.encoder.blocks[7].attn.qkv.weight, _timm_state_dict()["blocks.7.attn.qkv.weight"])
    assert build_model(dataclasses.replace(cfg, encoder=False, encoder_checkpoint=str(path))).encoder is None, \
        "Table 1's rows without an encoder: the sweep-wide --set does not stop them"
    path.unlink()   # a trained model's weights are all in its state: the file is not read
    trained = trained_model(dataclasses.replace(cfg, encoder_checkpoint=str(path)), model.state_dict())
    assert torch.equal(trained.encoder.pos_embed, model.encoder.pos_embed)


def test_check_pretrained_reads_the_files_against_the_network_without_building_it(tmp_path):
    cfg = ModelConfig(stem="small", stem_width=8, image_size=32, embed_dim=64, depth=8, num_heads=8)
    check_pretrained(dataclasses.replace(cfg, encoder_checkpoint=str(_save(tmp_path, _timm_state_dict()))))
    with pytest.raises(CheckpointError, match=r"it has 8 blocks, the encoder 9"):
        check_pretrained(dataclasses.replace(cfg, depth=9,
                                             encoder_checkpoint=str(tmp_path / "backbone_ir50_ms1m_epoch120.pth")))


def test_a_checkpoint_path_with_a_tilde_is_read_from_home(tmp_path, monkeypatch):
    # `--set model.stem_checkpoint=~/ir50.pth`: no shell expands that ~; the driver's check found the file, the
    # loader did not, and every trial failed
    monkeypatch.setenv("HOME", str(tmp_path))
    _save(tmp_path, _evolve_state_dict(), "ir50.pth")
    assert load_ir50_checkpoint(_target(), "~/ir50.pth").loaded > 0
