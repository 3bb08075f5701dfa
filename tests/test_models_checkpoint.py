"""Specifications of the face.evoLVe IR-50 checkpoint loader (transfer_core/models/checkpoint.py).

The checkpoints are narrow IR-50s (widths / 8) with face.evoLVe's exact key names, so the tests stay
fast; the key logic does not depend on widths.
"""

from __future__ import annotations

import dataclasses
import logging

import pytest
import torch

from transfer_core.config import ModelConfig
from transfer_core.models import CheckpointError, build_model, load_ir50_checkpoint
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
