"""Specifications of the stems (transfer_core/models/stems.py)."""

from __future__ import annotations

import pytest
import torch

from transfer_core import config
from transfer_core.config import ModelConfig
from transfer_core.models import STEMS
from transfer_core.registry import RegistryError

# small inputs per stem (side divisible by the stride), and the expected (channels, stride)
CASES = {
    "ir50": (ModelConfig(stem="ir50", image_size=16), 256, 8),
    "resnet18": (ModelConfig(stem="resnet18", image_size=32), 256, 16),
    "small": (ModelConfig(stem="small", image_size=16, stem_width=8), 16, 4),
}


@pytest.fixture(scope="module")
def ir50_stem():
    torch.manual_seed(0)
    return STEMS.get("ir50")(ModelConfig())


def _stem(name, ir50_stem):
    cfg = CASES[name][0]
    torch.manual_seed(0)
    return ir50_stem if name == "ir50" else STEMS.get(name)(cfg)


def test_stems_registry_matches_config_choices():
    assert set(STEMS.names()) == set(config.STEMS)


@pytest.mark.parametrize("name", sorted(CASES))
def test_the_config_checks_image_size_against_each_stems_real_stride(name, ir50_stem):
    # checked with the config, so `--set model.image_size=30` fails before a sweep starts, not in every trial
    stride = _stem(name, ir50_stem).stride
    assert config.STEM_STRIDES[name] == stride
    with pytest.raises(config.ConfigError, match=rf"model.image_size={stride * 4 + 2} is invalid: expected a "
                                                 rf"multiple of {stride}, the stride of model.stem='{name}'$"):
        config.check_stem_stride(ModelConfig(stem=name, image_size=stride * 4 + 2))


@pytest.mark.parametrize("name", sorted(CASES))
def test_stems_declare_channels_and_stride(name, ir50_stem):
    stem = _stem(name, ir50_stem)
    assert (stem.out_channels, stem.stride) == CASES[name][1:]


@pytest.mark.parametrize("name", sorted(CASES))
def test_stems_output_shape_and_gradients(name, ir50_stem):
    cfg, channels, stride = CASES[name]
    stem = _stem(name, ir50_stem).train()
    x = torch.randn(2, 3, cfg.image_size, cfg.image_size, requires_grad=True)
    out = stem(x)
    side = cfg.image_size // stride
    assert out.shape == (2, channels, side, side)
    out.square().mean().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    assert all(p.grad is not None for p in stem.parameters())
    stem.zero_grad(set_to_none=True)


def test_stems_ir50_gives_256x14x14_at_112(ir50_stem):
    with torch.no_grad():
        out = ir50_stem.eval()(torch.randn(1, 3, 112, 112))
    assert out.shape == (1, 256, 14, 14)


def test_stems_ir50_has_face_evolve_layout_of_stages_1_to_3(ir50_stem):
    keys = set(ir50_stem.state_dict())
    assert {"input_layer.0.weight", "input_layer.1.running_var", "input_layer.2.weight",
            "body.0.res_layer.1.weight", "body.3.shortcut_layer.1.weight",
            "body.7.shortcut_layer.0.weight", "body.20.res_layer.4.running_mean",
            "body.20.res_layer.2.weight"} <= keys
    assert not any(k.startswith(("body.21.", "body.0.shortcut_layer")) for k in keys)  # 64 -> 64: MaxPool
    assert len(ir50_stem.body) == 21


def test_stems_ir50_has_17611968_parameters(ir50_stem):
    assert sum(p.numel() for p in ir50_stem.parameters()) == 17_611_968


def test_stems_small_width_follows_stem_width():
    stem = STEMS.get("small")(ModelConfig(stem="small", stem_width=24, image_size=16))
    assert stem.out_channels == 48


def test_stems_unknown_name_lists_valid_names():
    with pytest.raises(RegistryError, match=r"unknown stem 'ir51'.*Valid: ir50, resnet18, small"):
        STEMS.get("ir51")
