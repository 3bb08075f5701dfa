"""search_spaces.profiles: the shipped compute profiles and their validation."""

from __future__ import annotations

import textwrap

import pytest

from search_spaces import Profile, SpecError, list_profiles, load_profile
from search_spaces import profiles as profiles_module
from transfer_core.config import TrialConfig


@pytest.fixture
def profiles_file(tmp_path, monkeypatch):
    """Point the shipped-profiles loader at a file of the test's own."""
    path = tmp_path / "profiles.yaml"
    monkeypatch.setattr(profiles_module, "_profiles_file", lambda: path)
    profiles_module._shipped.cache_clear()
    yield lambda text: path.write_text(textwrap.dedent(text))
    profiles_module._shipped.cache_clear()


def test_list_profiles_names_smoke_quick_paper_smallest_first_with_descriptions():
    profiles = list_profiles()
    assert [name for name, _ in profiles] == ["smoke", "quick", "paper"]
    assert all(description and "\n" not in description for _, description in profiles)


def test_load_profile_quick_is_a_small_cpu_run_on_synthetic_faces():
    profile = load_profile("quick")
    config = profile.config()
    assert (config.model.stem, config.model.image_size, config.model.embed_dim, config.model.depth,
            config.model.num_heads) == ("small", 32, 64, 2, 4)
    assert (config.optim.optimizer, config.optim.schedule, config.optim.batch_size) == ("adamw", "cosine", 16)
    assert (config.data.dataset, config.data.augment, config.device, config.num_threads) == (
        "synthetic", "none", "auto", None)
    assert (profile.cpus_per_trial, profile.gpus_per_trial) == (1.0, 0.0)


def test_load_profile_smoke_is_the_smallest():
    config = load_profile("smoke").config()
    assert (config.optim.epochs, config.data.synthetic_per_class, config.model.image_size,
            config.model.embed_dim, config.model.depth) == (2, 16, 32, 32, 1)


def test_load_profile_paper_is_the_released_configuration_and_recipe():
    profile = load_profile("paper")
    config = profile.config()
    m, o, d = config.model, config.optim, config.data
    assert (m.stem, m.image_size, m.embed_dim, m.depth, m.num_heads, m.mlp_ratio) == ("ir50", 112, 768, 8, 8, 3.0)
    assert (m.num_lanets, m.drop_variant, m.drop_rate, m.msad_mode, m.msad_rate) == (2, "mad", 0.6, "head", 0.3)
    assert (o.optimizer, o.momentum, o.weight_decay, o.lr, o.schedule, o.milestones, o.gamma, o.epochs,
            o.batch_size) == ("sgd", 0.9, 1e-4, 1e-4, "piecewise", (15, 30), 0.1, 40, 64)
    assert (d.augment, d.normalize, config.device) == ("released", "imagenet", "cuda")
    assert o.weight_decay_on == "all", "ppcls's L2 regulariser decays every parameter of the port"
    assert (profile.gpus_per_trial, profile.cpus_per_trial) == (1.0, 4.0)


def test_load_profile_paper_model_equals_the_transfer_core_defaults():
    assert load_profile("paper").config().model == TrialConfig().model


def test_load_profile_unknown_name_lists_the_shipped_ones():
    with pytest.raises(SpecError, match=r"unknown profile 'quik'\. Did you mean 'quick'\? Valid: smoke, quick, paper"):
        load_profile("quik")


def test_load_profile_returns_a_profile_object_unchanged():
    profile = Profile("mine", "my own", {"optim.epochs": 1})
    assert load_profile(profile) is profile
    assert profile.config().optim.epochs == 1


def test_profile_rejects_reserved_keys_naming_the_profiles_file(profiles_file, tmp_path):
    profiles_file("""
        mine:
          description: x
          overrides: {data.dataset: rafdb}
    """)
    with pytest.raises(SpecError, match=rf"{tmp_path / 'profiles.yaml'} line 4: mine\.overrides\.data\.dataset: "
                                        r"data\.dataset cannot be set here"):
        list_profiles()


def test_profile_rejects_unknown_profile_key(profiles_file):
    profiles_file("""
        mine:
          description: x
          gpus: 1
    """)
    with pytest.raises(SpecError, match=r"line 4: mine\.gpus: unknown key 'gpus'\. Valid keys: description"):
        list_profiles()


def test_profile_rejects_cuda_without_gpus(profiles_file):
    profiles_file("""
        mine:
          description: x
          overrides: {device: cuda}
    """)
    with pytest.raises(SpecError, match=r"mine\.gpus_per_trial: 0 with device: cuda: a trial would see no GPU"):
        list_profiles()


def test_profile_rejects_out_of_range_override(profiles_file):
    profiles_file("""
        mine:
          description: x
          overrides: {optim.epochs: 0}
    """)
    with pytest.raises(SpecError, match=r"line 4: mine\.overrides\.optim\.epochs: optim\.epochs=0 is invalid: "
                                        r"expected an integer >= 1"):
        list_profiles()


def test_profile_rejects_bad_max_concurrent(profiles_file):
    profiles_file("""
        mine:
          description: x
          max_concurrent: 0
    """)
    with pytest.raises(SpecError, match=r"mine\.max_concurrent: 0 is invalid: expected null or an integer >= 1"):
        list_profiles()
