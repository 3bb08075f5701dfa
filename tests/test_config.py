"""TrialConfig: defaults are the released model, flat dicts round-trip, bad keys and values are named."""

import dataclasses

import pytest

from transfer_core.config import (ADDED_KEYS, DECODE_KEYS, ConfigError, DataConfig, ModelConfig, OptimConfig,
                                  TrialConfig, config_hash, config_keys, decode_key, from_flat, parse_value, to_flat)


def test_config_flat_round_trip_is_identity():
    config = TrialConfig(model=ModelConfig(num_lanets=4), optim=OptimConfig(milestones=(3, 7)), seed=5)
    assert from_flat(to_flat(config)) == config


def test_config_flat_keys_are_dotted_sections():
    keys = config_keys()
    assert "model.num_lanets" in keys and "optim.lr" in keys and "data.dataset" in keys and "seed" in keys


def test_from_flat_unknown_key_suggests_the_closest():
    with pytest.raises(ConfigError, match=r"unknown key 'model.num_lanet'\. Did you mean 'model.num_lanets'\?"):
        from_flat({"model.num_lanet": 2})


def test_from_flat_wrong_type_names_key_and_expected_type():
    with pytest.raises(ConfigError, match=r"model.depth='eight' is invalid: expected an integer"):
        from_flat({"model.depth": "eight"})


def test_from_flat_bool_is_not_an_integer():
    with pytest.raises(ConfigError, match=r"optim.epochs=True is invalid: expected an integer"):
        from_flat({"optim.epochs": True})


def test_from_flat_accepts_int_for_float_and_list_for_tuple():
    config = from_flat({"optim.lr": 1, "optim.milestones": [2, 4]})
    assert config.optim.lr == 1.0 and config.optim.milestones == (2, 4)


def test_model_config_out_of_range_names_key_and_range():
    with pytest.raises(ConfigError, match=r"model.drop_rate=1.5 is invalid: expected a number in \[0, 1\]"):
        ModelConfig(drop_rate=1.5)


def test_model_config_unknown_variant_lists_choices():
    with pytest.raises(ConfigError, match=r"model.drop_variant='madd' is invalid: expected one of none, dropout"):
        ModelConfig(drop_variant="madd")


def test_model_config_heads_must_divide_embed_dim():
    with pytest.raises(ConfigError, match=r"model.num_heads=5 is invalid: expected a divisor of model.embed_dim=768"):
        ModelConfig(num_heads=5)


def test_optim_config_warmup_ends_before_the_last_epoch_naming_both():
    # a run that is all warm-up trains at a fraction of optim.lr throughout: no schedule, no error otherwise
    OptimConfig(epochs=3, warmup_epochs=2)
    for warmup in (3, 5):
        with pytest.raises(ConfigError, match=rf"^optim\.warmup_epochs={warmup} is invalid: expected fewer than "
                                              r"optim\.epochs=3: with as many, every epoch is warm-up, so the "
                                              r"learning rate never reaches optim\.lr"):
            OptimConfig(epochs=3, warmup_epochs=warmup)


def test_optim_config_piecewise_milestones_come_after_the_warm_up():
    # a milestone within the warm-up was passed unseen: the lr went from the ramp straight to gamma x lr
    OptimConfig(epochs=10, warmup_epochs=2, milestones=(3, 6))
    OptimConfig(epochs=10, warmup_epochs=4, milestones=(3,), schedule="cosine")   # no milestones read
    with pytest.raises(ConfigError, match=r"^optim\.milestones=\(2, 6\) is invalid: expected epochs after "
                                          r"optim\.warmup_epochs=2: a milestone within the warm-up is passed unseen"):
        OptimConfig(epochs=10, warmup_epochs=2, milestones=(2, 6))


def test_data_config_epoch_samples_with_the_shuffle_sampler_is_refused_naming_the_samplers_that_take_it():
    # shuffle draws each training image once an epoch: the value was ignored without a word
    DataConfig(sampler="balanced", epoch_samples=50)
    DataConfig(sampler="auto", epoch_samples=50)   # balanced on AffectNet: a sweep checks that some cell is (plan)
    with pytest.raises(ConfigError, match=r"^data\.epoch_samples=50 is set but data\.sampler='shuffle', which draws "
                                          r"each training image once an epoch: only the balanced sampler takes "
                                          r"epoch_samples \(data\.sampler=balanced, or auto on AffectNet\)$"):
        DataConfig(sampler="shuffle", epoch_samples=50)


def test_data_config_real_data_set_needs_root():
    with pytest.raises(ConfigError, match=r"data.root is required for data.dataset='rafdb'"):
        DataConfig(dataset="rafdb")


def test_optim_config_milestones_must_increase():
    with pytest.raises(ConfigError, match=r"optim.milestones=\(30, 15\) is invalid"):
        OptimConfig(milestones=(30, 15))


@pytest.mark.parametrize("seed", [-1, 2**63, True])
def test_trial_config_seed_must_be_one_torch_and_int64_columns_take(seed):
    with pytest.raises(ConfigError, match=rf"seed={seed!r} is invalid: expected an integer from 0 to {2**63 - 1}"):
        TrialConfig(seed=seed)


def test_config_hash_ignores_placement_keys_only():
    base = TrialConfig()
    moved = dataclasses.replace(base, num_threads=3, compile="reduce-overhead",
                                data=dataclasses.replace(base.data, cache_dir="/elsewhere", num_workers=5))
    changed = dataclasses.replace(base, seed=1)
    assert config_hash(moved) == config_hash(base)
    assert config_hash(changed) != config_hash(base)


def test_decode_key_changes_with_each_key_that_decides_the_decoded_data_and_with_nothing_else():
    # arms that differ in how they train on the data (augmentation, sampler, ...) share one decoding
    base = from_flat({"data.dataset": "imagefolder", "data.root": "/faces"})
    trains_otherwise = from_flat({**to_flat(base), "data.augment": "none", "data.sampler": "balanced",
                                  "data.normalize": "half", "data.epoch_samples": 100, "data.num_workers": 3,
                                  "data.cache_dir": "/elsewhere", "model.num_lanets": 4, "optim.lr": 0.1, "seed": 9})
    assert decode_key(trains_otherwise) == decode_key(base)
    decoded_otherwise = {"data.dataset": "rafdb", "data.root": "/other", "data.val_fraction": 0.2,
                         "data.split_seed": 1, "data.ferplus_rule": "argmax", "data.affectnet_classes": 8,
                         "data.rafdb_images": "aligned_224", "data.exif_orientation": "applied",
                         "data.synthetic_per_class": 50, "data.synthetic_seed": 1, "model.image_size": 56}
    assert set(decoded_otherwise) == set(DECODE_KEYS)
    for key, value in decoded_otherwise.items():
        assert decode_key(from_flat({**to_flat(base), key: value})) != decode_key(base), key


def test_a_key_added_later_keeps_earlier_cells_hashes_at_the_value_that_computes_as_before():
    # the hash of TrialConfig() before optim.weight_decay_on existed: its cells are still recognised
    base = TrialConfig()
    assert config_hash(base) == "0eea2b7af321"
    assert config_hash(dataclasses.replace(base, optim=OptimConfig(weight_decay_on="all"))) != config_hash(base)


def test_a_key_added_later_defaults_to_the_value_that_computes_as_before():
    # a state or run recorded before the key existed is read with the default: it must be that value
    for key, before in ADDED_KEYS.items():
        assert key in config_keys() and to_flat(TrialConfig())[key] == before


def test_exif_orientation_must_be_stored_or_applied():
    with pytest.raises(ConfigError, match=r"data.exif_orientation='upright' is invalid: expected one of stored, "
                                          r"applied"):
        DataConfig(exif_orientation="upright")
    with pytest.raises(ConfigError, match=r"data.exif_orientation='Applied' is invalid"):
        from_flat({"data.exif_orientation": "Applied"})


def test_exif_orientation_as_stored_keeps_recorded_cells_hashes():
    # images were read as stored before the key existed: cells recorded then are found again at its default
    assert ADDED_KEYS["data.exif_orientation"] == "stored" and DataConfig().exif_orientation == "stored"
    base = from_flat({"data.dataset": "imagefolder", "data.root": "/faces"})
    flat = {k: v for k, v in to_flat(base).items() if k != "data.exif_orientation"}
    assert config_hash(from_flat(flat)) == config_hash(base)
    assert config_hash(from_flat({**flat, "data.exif_orientation": "applied"})) != config_hash(base)


def test_weight_decay_scope_must_be_weights_or_all():
    with pytest.raises(ConfigError, match=r"optim.weight_decay_on='norms' is invalid: expected one of weights, all"):
        OptimConfig(weight_decay_on="norms")


def test_a_misspelled_choice_is_named_with_the_choice_it_is_close_to():
    # a spec's `optim.weight_decay_on: [weights, al]` listed the choices without saying which was meant
    with pytest.raises(ConfigError, match=r"optim.weight_decay_on='al' is invalid: expected one of weights, all\. "
                                          r"Did you mean 'all'\?$"):
        OptimConfig(weight_decay_on="al")
    with pytest.raises(ConfigError, match=r"model.drop_variant='MAD' is invalid: .* Did you mean 'mad'\?$"):
        ModelConfig(drop_variant="MAD")   # in the paper's capitals
    with pytest.raises(ConfigError, match=r"model.stem='IR50' is invalid: .* Did you mean 'ir50'\?$"):
        ModelConfig(stem="IR50")
    with pytest.raises(ConfigError, match=r"compile='fast' is invalid: expected one of off, default, "
                                          r"reduce-overhead$"):   # close to none: no guess
        TrialConfig(compile="fast")


def test_compile_mode_must_be_one_torch_compile_knows():
    with pytest.raises(ConfigError, match=r"compile='fast' is invalid: expected one of off, default, reduce-overhead"):
        TrialConfig(compile="fast")


def test_parse_value_reads_json_and_falls_back_to_text():
    assert parse_value("3") == 3 and parse_value("0.5") == 0.5 and parse_value("true") is True
    assert parse_value("None") is None and parse_value("mad") == "mad" and parse_value("[1, 2]") == [1, 2]


def test_a_list_key_given_a_comma_separated_string_shows_it_as_a_list():
    # --set optim.milestones=3,7 reads as the string "3,7": the error shows what to type instead
    with pytest.raises(ConfigError, match=r"optim.milestones='3,7' is invalid: expected a list, e\.g\. "
                                          r"optim.milestones=\[3,7\]"):
        from_flat({"optim.milestones": "3,7"})


def test_config_rejects_an_even_dropblock_size():
    # torchvision's drop_block2d refuses an even block: it failed at the first training step, not here
    from transfer_core.config import ModelConfig
    with pytest.raises(ConfigError, match=r"model.dropblock_size=4 is invalid: expected an odd integer >= 1"):
        ModelConfig(dropblock_size=4)


# --------------------------------------------------------------------------- how many maps / heads are dropped

def test_drop_counts_default_to_one_map_and_one_head_as_released():
    model = ModelConfig()
    assert (model.mad_drop_maps, model.msad_drop_heads) == (1, 1)


def test_drop_counts_at_one_keep_a_recorded_configs_hash():
    # a config recorded before the counts existed (hash computed then): at 1 they are left out of its identity
    flat = {"model.num_lanets": 4, "model.drop_rate": 0.5, "model.num_heads": 4, "model.msad_rate": 0.2, "seed": 3}
    assert config_hash(from_flat(flat)) == "7861858a5336"
    assert config_hash(from_flat({**flat, "model.mad_drop_maps": 1, "model.msad_drop_heads": 1})) == "7861858a5336"
    assert ADDED_KEYS["model.mad_drop_maps"] == 1 and ADDED_KEYS["model.msad_drop_heads"] == 1
    assert config_hash(from_flat({**flat, "model.mad_drop_maps": 2})) != "7861858a5336"
    assert config_hash(from_flat({**flat, "model.msad_drop_heads": 2})) != "7861858a5336"


@pytest.mark.parametrize("key", ["mad_drop_maps", "msad_drop_heads"])
def test_drop_counts_below_one_are_refused(key):
    with pytest.raises(ConfigError, match=rf"model.{key}=0 is invalid: expected an integer >= 1"):
        ModelConfig(**{key: 0})


def _counts(**changes):
    from transfer_core.config import check_drop_counts

    check_drop_counts(ModelConfig(**changes))


def test_drop_counts_below_every_map_and_head_are_allowed_and_one_always():
    _counts(num_lanets=4, mad_drop_maps=3, num_heads=8, msad_drop_heads=7)
    _counts(num_lanets=1, num_heads=1, embed_dim=8)                 # the release's 1 drops the only one


@pytest.mark.parametrize("changes, message", [
    (dict(num_lanets=4, mad_drop_maps=4),
     r"model.mad_drop_maps=4 is invalid: expected an integer from 1 to 3 with model.num_lanets=4: dropping all 4 "
     r"maps zeroes the fused map M and every feature of the sample"),
    (dict(num_lanets=1, mad_drop_maps=2), r"model.mad_drop_maps=2 is invalid: expected 1 with model.num_lanets=1"),
    (dict(num_lanets=4, mad_drop_maps=2, drop_variant="spatial_dropout"),
     r"model.mad_drop_maps=2 is invalid: expected 1 with model.drop_variant='spatial_dropout': only MAD drops a "
     r"number of maps per sample .*set model.drop_variant=mad, or remove it"),
    (dict(num_lanets=4, mad_drop_maps=2, local_branch=False),
     r"model.mad_drop_maps=2 is invalid: expected 1 with model.local_branch=false: there are no LANet maps to drop"),
    (dict(msad_drop_heads=8),
     r"model.msad_drop_heads=8 is invalid: expected an integer from 1 to 7 with model.num_heads=8: dropping all 8 "
     r"heads leaves each encoder block only its residual"),
    (dict(msad_drop_heads=2, msad_mode="released_token"),
     r"model.msad_drop_heads=2 is invalid: expected 1 with model.msad_mode='released_token': only mode head drops "
     r"heads \('released_token' is the release's HeadDropOut, which zeroes one token and never a head"),
    (dict(msad_drop_heads=2, msad_mode="none"), r"model.msad_drop_heads=2 is invalid: expected 1 with "
                                                r"model.msad_mode='none'"),
    (dict(msad_drop_heads=2, encoder=False),
     r"model.msad_drop_heads=2 is invalid: expected 1 with model.encoder=false: there are no attention heads"),
])
def test_drop_counts_that_drop_everything_or_mean_nothing_are_refused(changes, message):
    from transfer_core.config import ConfigError

    with pytest.raises(ConfigError, match=message):
        _counts(**changes)
