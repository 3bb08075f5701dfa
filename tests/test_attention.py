"""transfer_core.attention: the data of the paper's Fig. 3 as a trial records it, and a sweep's driver
that never imports torch (it decodes from the cache, runs Tune and draws the report; the trials train)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from sweeps import trainable
from transfer_core.attention import (attention_maps, attention_record, class_examples, load_record,
                                     save_record)
from transfer_core.config import ModelConfig, TrialConfig, from_flat, to_flat
from transfer_core.data import load_splits
from transfer_core.models import build_model, trained_model


def tiny_config(tmp_path, **model):
    return from_flat({**to_flat(TrialConfig()), "model.stem": "small", "model.image_size": 32, "model.embed_dim": 32,
                      "model.depth": 1, "model.num_heads": 2, "data.synthetic_per_class": 8,
                      "data.cache_dir": str(tmp_path / "cache"), **{f"model.{k}": v for k, v in model.items()}})


def test_attention_maps_shape_and_range(tmp_path):
    cfg = tiny_config(tmp_path)
    torch.manual_seed(0)
    faces = np.random.default_rng(0).integers(0, 256, size=(3, 40, 40, 3), dtype=np.uint8)
    maps = attention_maps(build_model(cfg.model).eval(), cfg, faces)
    assert maps.shape == (3, 40, 40)
    assert 0.0 <= maps.min() and maps.max() <= 1.0 and maps.std() > 0


def test_class_examples_fills_missing_classes():
    assert class_examples(np.array([0, 1, 0, 0]), 3, 2) == [0, 2, 1, -1, -1, -1]


@pytest.mark.parametrize("per_class", [1, 2])
def test_attention_record_holds_the_first_faces_of_each_class_and_a_map_over_each(tmp_path, per_class):
    cfg = tiny_config(tmp_path)
    splits = load_splits(cfg.data, cfg.model.image_size)
    torch.manual_seed(0)
    record = attention_record(build_model(cfg.model).eval(), cfg, splits, per_class=per_class)
    picks = record["picks"]
    assert len(picks) == per_class * splits.num_classes and (picks >= 0).all()
    classes = [k for k in range(splits.num_classes) for _ in range(per_class)]
    assert [int(splits.test.labels[i]) for i in picks] == classes
    assert np.array_equal(record["faces"], splits.test.images[picks])
    assert record["maps"].dtype == np.float16 and record["maps"].shape == record["faces"].shape[:3]
    assert 0.0 <= record["maps"].min() and record["maps"].max() <= 1.0
    assert tuple(record["class_names"]) == splits.class_names and int(record["per_class"]) == per_class


def test_a_saved_record_loads_back_and_a_broken_one_is_named(tmp_path):
    cfg = tiny_config(tmp_path)
    record = attention_record(build_model(cfg.model).eval(), cfg, load_splits(cfg.data, cfg.model.image_size))
    save_record(record, tmp_path / "attention.npz")
    loaded = load_record(tmp_path / "attention.npz")
    assert loaded.keys() == record.keys() and all(np.array_equal(loaded[k], record[k]) for k in record)
    save_record({k: v for k, v in record.items() if k != "faces"}, tmp_path / "no_faces.npz")
    with pytest.raises(ValueError, match=r"no_faces\.npz lacks faces"):
        load_record(tmp_path / "no_faces.npz")
    (tmp_path / "garbage.npz").write_bytes(b"not an npz")
    with pytest.raises(ValueError, match=r"garbage\.npz is not an attention record"):
        load_record(tmp_path / "garbage.npz")


def test_attention_record_of_a_model_without_lanets_has_faces_but_no_maps(tmp_path):
    cfg = tiny_config(tmp_path, local_branch=False)
    record = attention_record(build_model(cfg.model).eval(), cfg, load_splits(cfg.data, cfg.model.image_size))
    assert "maps" not in record and len(record["faces"]) == len(record["picks"])


def test_a_trained_model_loads_without_its_stem_checkpoint_file():
    # the released model, its weights as a checkpoint holds them (compiled: `_orig_mod.` prefixes), looked at
    # on a machine without the IR-50 file it was initialised from
    torch.manual_seed(0)
    state = {f"_orig_mod.{k}": v for k, v in build_model(ModelConfig()).state_dict().items()}
    model = trained_model(ModelConfig(stem_checkpoint="/nowhere/backbone_ir50_ms1m_epoch120.pth"), state)
    assert not model.training
    assert all(torch.equal(v, state[f"_orig_mod.{k}"]) for k, v in model.state_dict().items())


def test_a_trial_whose_attention_record_fails_still_completes_and_says_why(tmp_path, caplog):
    cfg = tiny_config(tmp_path)
    splits = load_splits(cfg.data, cfg.model.image_size)
    wrong = build_model(tiny_config(tmp_path, embed_dim=64).model).state_dict()     # another model's weights
    assert trainable._attention_record(cfg, wrong, splits, "tiny/MAD/seed0") is None
    assert "tiny/MAD/seed0: no attention record" in caplog.text


DRIVER = """
import json, sys
from sweeps import figures, report, runner, trainable   # everything `sweeps run` imports in its own process
from transfer_core.config import from_flat
cfg = from_flat(json.loads(sys.argv[1]))
runner.decode_data([cfg])                                 # a cache hit, as in every sweep but the first
print(json.dumps(sorted(m for m in ("torch", "torchvision") if m in sys.modules)))
"""


def test_the_sweep_driver_decodes_from_the_cache_without_importing_torch(tmp_path):
    cfg = tiny_config(tmp_path)
    load_splits(cfg.data, cfg.model.image_size)               # fills the cache
    out = subprocess.run([sys.executable, "-c", DRIVER, json.dumps(to_flat(cfg), default=str)],
                         capture_output=True, text=True, check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == [], "torch's import costs the driver ~1.5 s"
