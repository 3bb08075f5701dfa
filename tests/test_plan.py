"""search_spaces.plan: spec + profile + data (+ seeds, + --set) -> cells."""

from __future__ import annotations

import json
import pickle
import textwrap

import pytest

from search_spaces import DataChoice, Profile, SpecError, expand, load, load_profile
from search_spaces.spec import load_text
from transfer_core.config import TrialConfig, config_hash

SYNTHETIC = DataChoice("synthetic", "synthetic", None)


def spec_file(tmp_path, text: str):
    path = tmp_path / "spec.yaml"
    path.write_text(textwrap.dedent(text))
    return load(path)


def image_folder(root, classes=("angry", "happy", "sad")):
    from PIL import Image

    for split in ("train", "test"):
        for name in classes:
            folder = root / split / name
            folder.mkdir(parents=True)
            Image.new("RGB", (8, 8)).save(folder / "0.png")
    return DataChoice("imagefolder", "imagefolder", str(root))


@pytest.fixture
def two_arms(tmp_path):
    return spec_file(tmp_path, """
        name: two
        seeds: [0, 1]
        arms:
          - {label: A, set: {model.depth: 1}}
          - {label: B, set: {model.depth: 3}}
    """)


def test_expand_precedence_defaults_profile_base_arm_set_then_seed(tmp_path):
    profile = Profile("p", "test", {"optim.epochs": 3, "optim.lr": 0.01, "model.depth": 3, "optim.batch_size": 16,
                                    "num_threads": 2})
    spec = spec_file(tmp_path, """
        name: s
        seeds: [7]
        base: {optim.lr: 0.02, model.depth: 4, optim.batch_size: 8}
        arms: [{label: A, set: {model.depth: 5, optim.batch_size: 4}}]
    """)
    (cell,) = expand(spec, profile, overrides={"optim.batch_size": 2}).cells
    c = cell.config
    assert (c.model.stem, c.num_threads, c.optim.epochs) == (TrialConfig().model.stem, 2, 3)  # default, profile
    assert (c.optim.lr, c.model.depth, c.optim.batch_size, c.seed) == (0.02, 5, 2, 7)       # base, arm, --set, seed
    assert (c.data.dataset, c.data.root) == ("synthetic", None)


def test_expand_real_data_set_decides_dataset_root_and_num_classes(tmp_path, two_arms):
    data = image_folder(tmp_path / "faces")
    plan = expand(two_arms, "quick", (data,))
    config = plan.cells[0].config
    assert (config.data.dataset, config.data.root, config.model.num_classes) == ("imagefolder", data.root, 3)


def test_expand_explicit_num_classes_conflicting_with_the_data_set_is_refused(tmp_path, two_arms):
    data = image_folder(tmp_path / "faces")
    with pytest.raises(SpecError, match=r"--set model\.num_classes: model\.num_classes=7 conflicts with --data "
                                        r"imagefolder \(3 classes\): the data set decides; remove it"):
        expand(two_arms, "quick", (data,), overrides={"model.num_classes": 7})


def test_an_image_size_is_checked_against_the_stem_each_cell_ends_with_not_the_one_before_its_arm(tmp_path):
    # a base's image size meant for the stem the arms choose: refused at the base layer when ModelConfig checked it
    spec = load_text(textwrap.dedent("""
        name: s
        profile: paper
        base: {model.image_size: 36}
        arms:
          - {label: small, set: {model.stem: small}}
          - {label: small wide, set: {model.stem: small, model.stem_width: 32}}
    """))
    assert [c.config.model.image_size for c in expand(spec, "paper").cells] == [36, 36]
    with pytest.raises(SpecError, match=r"--set model\.image_size: model\.image_size=30 is invalid: expected a "
                                        r"multiple of 4, the stride of model\.stem='small'"):
        expand(spec, "paper", overrides={"model.image_size": 30})


def test_a_drop_count_is_checked_against_the_b_each_cell_ends_with_not_the_one_before_its_arm():
    # a base's count of maps for the B its grid sets: with the profile's B = 2 below the arms, 2 maps are all of them
    spec = load_text(textwrap.dedent("""
        name: s
        profile: quick
        base: {model.mad_drop_maps: 2}
        grid: {model.num_lanets: [3, 4]}
        label: "B={model.num_lanets}"
    """))
    assert [c.config.model.mad_drop_maps for c in expand(spec, "quick").cells] == [2, 2]
    with pytest.raises(SpecError, match=r"--set model\.num_lanets: model\.mad_drop_maps=2 is invalid: expected 1 "
                                        r"with model\.num_lanets=2: dropping all 2 maps"):
        expand(spec, "quick", overrides={"model.num_lanets": 2})


def test_a_drop_count_of_every_head_is_refused_at_the_layer_that_set_it():
    spec = load_text(textwrap.dedent("""
        name: s
        profile: quick
        arms:
          - {label: one head, set: {model.msad_drop_heads: 1}}
          - {label: every head, set: {model.msad_drop_heads: 4}}
    """), source="s.yaml")
    with pytest.raises(SpecError, match=r"s\.yaml line 6: arms\[1\]\.set\.model\.msad_drop_heads: model\.msad_drop_heads=4 "
                                        r"is invalid: expected an integer from 1 to 3 with model\.num_heads=4"):
        expand(spec, "quick")


def test_expand_num_classes_conflicting_with_the_synthetic_set_is_refused_and_its_own_changes_nothing(two_arms):
    # the synthetic set has 7 classes: another number failed in every trial, each retried
    with pytest.raises(SpecError, match=r"--set model\.num_classes: model\.num_classes=3 conflicts with --data "
                                        r"synthetic \(7 classes\): the data set decides; remove it"):
        expand(two_arms, "quick", (), overrides={"model.num_classes": 3})
    assert ([c.cell_id for c in expand(two_arms, "quick", (), overrides={"model.num_classes": 7}).cells]
            == [c.cell_id for c in expand(two_arms, "quick", ()).cells])


def test_expand_data_layer_error_names_the_data_option(tmp_path, two_arms):
    missing = DataChoice("imagefolder", "imagefolder", str(tmp_path / "gone"))
    with pytest.raises(SpecError, match=r"^--data imagefolder: .*gone"):
        expand(two_arms, "quick", (missing,))


def test_expand_cells_are_arms_by_data_by_seeds_with_data_in_run_names(tmp_path, two_arms):
    data = image_folder(tmp_path / "faces")
    plan = expand(two_arms, "quick", (SYNTHETIC, data))
    assert [(c.arm, c.data, c.seed) for c in plan.cells] == [
        ("A", "synthetic", 0), ("A", "synthetic", 1), ("A", "imagefolder", 0), ("A", "imagefolder", 1),
        ("B", "synthetic", 0), ("B", "synthetic", 1), ("B", "imagefolder", 0), ("B", "imagefolder", 1)]
    assert plan.cells[2].run_name == "two/A/seed0/imagefolder"


def test_expand_one_data_set_run_names_have_no_data_suffix(two_arms):
    plan = expand(two_arms, "quick")
    assert [c.run_name for c in plan.cells] == ["two/A/seed0", "two/A/seed1", "two/B/seed0", "two/B/seed1"]
    assert plan.data == (SYNTHETIC,)


def test_expand_cell_id_is_the_config_hash_and_unique(two_arms):
    cells = expand(two_arms, "quick").cells
    assert all(c.cell_id == config_hash(c.config) for c in cells)
    assert len({c.cell_id for c in cells}) == len(cells)


def test_expand_seeds_override_replaces_the_spec_seeds(two_arms):
    plan = expand(two_arms, "quick", seeds=[3, 4, 5])
    assert plan.seeds == (3, 4, 5) and len(plan.cells) == 6
    assert [c.seed for c in plan.cells[:3]] == [3, 4, 5]


def test_expand_bad_seeds_are_refused(two_arms):
    with pytest.raises(SpecError, match=r"--seeds: \[1, 1\] repeats a seed: expected distinct seeds"):
        expand(two_arms, "quick", seeds=[1, 1])


def test_expand_set_that_makes_arms_equal_is_refused_naming_the_option(two_arms):
    with pytest.raises(SpecError, match=r"arms\[1\]\.set: arms 'A' and 'B' give the same configuration on "
                                        r"profile 'quick' \(cell_id \w+\) \(--set model\.depth overrides what the "
                                        r"arms vary\)"):
        expand(two_arms, "quick", overrides={"model.depth": 2})


def test_expand_set_out_of_range_names_the_option(two_arms):
    with pytest.raises(SpecError, match=r"--set optim\.epochs: optim\.epochs=0 is invalid: expected an integer >= 1"):
        expand(two_arms, "quick", overrides={"optim.epochs": 0})


def test_expand_set_unknown_key_suggests_the_close_one(two_arms):
    with pytest.raises(SpecError, match=r"--set optim\.epoch: unknown key 'optim\.epoch'\. Did you mean 'optim\.epochs'\?"):
        expand(two_arms, "quick", overrides={"optim.epoch": 2})


def test_expand_set_of_the_data_set_points_to_the_data_option(two_arms):
    with pytest.raises(SpecError, match=r"--set data\.dataset: data\.dataset cannot be set here: the data set "
                                        r"of a cell comes from --data NAME=PATH"):
        expand(two_arms, "quick", overrides={"data.dataset": "rafdb"})


def test_expand_error_on_another_profile_names_the_spec_file_and_arm(tmp_path):
    spec = spec_file(tmp_path, """
        name: s
        profile: paper
        arms:
          - label: A
            set: {model.num_heads: 6}
    """)
    with pytest.raises(SpecError, match=rf"{tmp_path / 'spec.yaml'} line 6: arms\[0\]\.set\.model\.num_heads: "
                                        r"model\.num_heads=6 is invalid: expected a divisor of model\.embed_dim=64"):
        expand(spec, "quick")


def test_expand_arms_equal_on_this_profile_are_refused(tmp_path):
    spec = spec_file(tmp_path, """
        name: s
        arms:
          - {label: A}
          - {label: B, set: {model.depth: 4}}
    """)
    assert len(expand(spec, "quick").cells) == 2  # quick has depth 2
    with pytest.raises(SpecError, match=r"arms\[1\]\.set: arms 'A' and 'B' give the same configuration on "
                                        r"profile 'deep' \(cell_id \w+\): make them differ"):
        expand(spec, Profile("deep", "depth 4", {"model.depth": 4}))


def test_expand_search_has_no_cells_and_one_base_config_per_data_set(tmp_path):
    plan = expand(load("tune"), "quick")
    assert plan.cells == ()
    assert list(plan.base_configs) == ["synthetic"]
    base = plan.base_configs["synthetic"]
    assert (base.model.encoder, base.model.stem, base.seed) == (True, "small", 0)


def test_expand_search_with_several_seeds_is_refused():
    with pytest.raises(SpecError, match=r"--seeds 2 \(seeds 0, 1\): sweep 'tune' is a search, which trains each "
                                        r"sample once on one seed: give --seeds 1, or leave --seeds out"):
        expand(load("tune"), "quick", seeds=[0, 1])


def test_expand_set_of_a_searched_key_is_refused():
    with pytest.raises(SpecError, match=r"--set optim\.lr: sweep 'tune' searches optim\.lr"):
        expand(load("tune"), "quick", overrides={"optim.lr": 0.1})


def test_expand_search_over_a_stem_whose_stride_misses_the_image_size_is_refused(tmp_path):
    # every trial drawing ir50 (stride 8) at 36 px failed building its model, each retried
    spec = spec_file(tmp_path, """
        name: s
        kind: search
        search:
          space:
            model.stem: [small, ir50]
    """)
    assert expand(spec, "smoke").base_configs, "32 px fits both strides"
    with pytest.raises(SpecError, match=r"search\.space\.model\.stem\.choices\[1\]: a sample can draw "
                                        r"model\.stem='ir50', and then model\.image_size=36 is invalid: expected a "
                                        r"multiple of 8"):
        expand(spec, "smoke", overrides={"model.image_size": 36})


def test_expand_search_drawing_a_b_that_a_drop_count_would_empty_is_refused(tmp_path):
    # 2 maps of a drawn B = 2 (every map) failed building the model in each trial that drew it
    spec = spec_file(tmp_path, """
        name: s
        kind: search
        base: {model.mad_drop_maps: 2}
        search:
          space:
            model.num_lanets: [2, 4]
    """)
    with pytest.raises(SpecError, match=r"search\.space\.model\.num_lanets\.choices\[0\]: a sample can draw "
                                        r"model\.num_lanets=2, and then model\.mad_drop_maps=2 is invalid: expected 1 "
                                        r"with model\.num_lanets=2"):
        expand(spec, "smoke")
    assert expand(spec, "smoke", overrides={"model.mad_drop_maps": 1}).base_configs
    (tmp_path / "wider").mkdir()
    wider = spec_file(tmp_path / "wider", """
        name: s
        kind: search
        base: {model.mad_drop_maps: 2}
        search:
          space:
            model.num_lanets: [3, 4]
    """)
    assert expand(wider, "smoke").base_configs, "the base's own B = 2 is never trained: every sample draws B"


def test_an_encoder_checkpoint_no_cell_has_an_encoder_for_is_refused_and_one_for_table_1s_rows_is_not(tmp_path):
    # with model.encoder false everywhere the ViT weights were never loaded, without a word
    spec = spec_file(tmp_path, """
        name: s
        base: {model.encoder: false}
        arms:
          - {label: A, set: {model.drop_variant: none}}
          - {label: B, set: {model.drop_variant: mad}}
    """)
    with pytest.raises(SpecError, match=r"^--set model\.encoder_checkpoint: model\.encoder_checkpoint='vit\.pth' is "
                                        r"never read: every cell has model\.encoder=false, and only the encoder loads "
                                        r"a ViT checkpoint: set model\.encoder=true, or remove it$"):
        expand(spec, "smoke", overrides={"model.encoder_checkpoint": "vit.pth"})
    plan = expand(load("components"), "smoke", overrides={"model.encoder_checkpoint": "vit.pth"})
    assert {c.config.model.encoder for c in plan.cells} == {False, True}, "the rows with an encoder read it"
    search = spec_file(tmp_path, """
        name: s
        kind: search
        base: {model.encoder_checkpoint: vit.pth}
        search: {space: {model.encoder: [false, true]}}
    """)
    assert expand(search, "smoke").base_configs, "a sample can draw an encoder"
    with pytest.raises(SpecError, match=r"spec\.yaml line 4: base\.model\.encoder_checkpoint: .* is never read"):
        expand(spec_file(tmp_path, search.text.replace("[false, true]", "[false]")), "smoke")


def test_epoch_samples_no_cell_samples_balanced_with_is_refused_and_one_that_some_cells_do_is_not(tmp_path):
    # data.sampler auto is balanced on AffectNet only: elsewhere the value was dropped without a word
    with pytest.raises(SpecError, match=r"^--set data\.epoch_samples: data\.epoch_samples=500 is never read: "
                                        r"data\.sampler auto samples balanced on AffectNet only, and no cell trains "
                                        r"on it; only the balanced sampler takes epoch_samples: set "
                                        r"data\.sampler=balanced, or remove it$"):
        expand(load("mad_vs_dropout"), "smoke", overrides={"data.epoch_samples": 500})
    spec = spec_file(tmp_path, """
        name: s
        arms:
          - {label: auto, set: {model.depth: 1}}
          - {label: balanced, set: {data.sampler: balanced}}
    """)
    plan = expand(spec, "smoke", overrides={"data.epoch_samples": 500})   # a sweep-wide value the balanced arm reads
    assert [c.config.data.epoch_samples for c in plan.cells] == [500, 500]
    search = spec_file(tmp_path, """
        name: s
        kind: search
        base: {data.epoch_samples: 500}
        search: {space: {data.sampler: [auto, balanced]}}
    """)
    assert expand(search, "smoke").base_configs, "a sample can draw the balanced sampler"
    for space in ("{optim.lr: {type: float, low: 0.1, high: 0.2}}", "{data.sampler: [auto]}"):
        with pytest.raises(SpecError, match=r"spec\.yaml line 4: base\.data\.epoch_samples: data\.epoch_samples=500 "
                                            r"is never read"):
            expand(spec_file(tmp_path, search.text.replace("{data.sampler: [auto, balanced]}", space)), "smoke")
    searched = spec_file(tmp_path, search.text.replace("base: {data.epoch_samples: 500}", "base: {optim.lr: 0.1}")
                         .replace("data.sampler: [auto, balanced]", "data.epoch_samples: [100, 500]"))
    with pytest.raises(SpecError, match=r"line 5: search\.space\.data\.epoch_samples: data\.epoch_samples=100 is "
                                        r"never read"):
        expand(searched, "smoke")


def test_a_key_only_one_data_set_reads_set_by_an_arm_or_set_where_no_cell_reads_that_set_is_refused(
        tmp_path):
    # --set data.ferplus_rule=argmax over the synthetic faces was dropped without a word: the researcher thought the
    # cells read FERPlus by argmax
    with pytest.raises(SpecError, match=r"^--set data\.ferplus_rule: data\.ferplus_rule='argmax' is never read: only "
                                        r"ferplus reads it, and this sweep reads synthetic: add --data ferplus=PATH, "
                                        r"or remove it$"):
        expand(load("mad_vs_dropout"), "smoke", overrides={"data.ferplus_rule": "argmax"})
    folder = image_folder(tmp_path / "faces")
    for key, value, dataset in (("data.affectnet_classes", 8, "affectnet"), ("data.rafdb_images", "aligned_224", "rafdb"),
                                ("data.synthetic_per_class", 50, "synthetic"), ("data.synthetic_seed", 3, "synthetic")):
        add = "--data synthetic" if dataset == "synthetic" else f"--data {dataset}=PATH"
        with pytest.raises(SpecError, match=rf"^--set {key}: {key}={value!r} is never read: only {dataset} reads it, "
                                            rf"and this sweep reads imagefolder: add {add}, or remove it$"):
            expand(load("mad_vs_dropout"), "smoke", data=[folder], overrides={key: value})
    # read by the data sets of image files: over the synthetic faces (or FER2013's pixel rows) by none
    with pytest.raises(SpecError, match=r"^--set data\.exif_orientation: data\.exif_orientation='applied' is never "
                                        r"read: only rafdb, ferplus, affectnet and imagefolder read it, and this sweep "
                                        r"reads synthetic: add --data NAME=PATH with NAME one of rafdb, ferplus, "
                                        r"affectnet, imagefolder, or remove it$"):
        expand(load("mad_vs_dropout"), "smoke", overrides={"data.exif_orientation": "applied"})
    assert expand(load("mad_vs_dropout"), "smoke", data=[folder], overrides={"data.exif_orientation": "applied"}).cells
    spec = spec_file(tmp_path, """
        name: s
        base: {data.rafdb_images: aligned_224}
        arms:
          - {label: A, set: {model.depth: 1}}
          - {label: B, set: {data.affectnet_classes: 8}}
    """)
    with pytest.raises(SpecError, match=r"spec\.yaml line 6: arms\[1\]\.set\.data\.affectnet_classes: "
                                        r"data\.affectnet_classes=8 is never read: only affectnet reads it"):
        expand(spec, "smoke")
    # a spec's base says how a set is read when --data gives it: a spec for RAF-DB's aligned_224 runs elsewhere too
    assert expand(spec_file(tmp_path, spec.text.replace("data.affectnet_classes: 8", "model.depth: 2")), "smoke").cells
    # read where a cell reads its set; a profile's own value (smoke's data.synthetic_per_class) is no one's choice
    plan = expand(load("mad_vs_dropout"), "smoke", data=[SYNTHETIC, folder], overrides={"data.synthetic_per_class": 50})
    assert {c.config.data.synthetic_per_class for c in plan.cells} == {50}
    assert expand(load("mad_vs_dropout"), "smoke", data=[folder]).cells


def test_expand_set_of_a_key_arms_vary_wins_over_the_arm(tmp_path):
    spec = spec_file(tmp_path, """
        name: s
        arms:
          - {label: A, set: {model.drop_variant: dropout, model.drop_rate: 0.5}}
          - {label: B, set: {model.drop_variant: mad, model.drop_rate: 0.6}}
    """)
    plan = expand(spec, "quick", overrides={"model.drop_rate": 0.3, "optim.epochs": 2})
    assert [(c.config.model.drop_variant, c.config.model.drop_rate) for c in plan.cells] == [
        ("dropout", 0.3), ("mad", 0.3)]
    assert plan.arms_overridden() == {"model.drop_rate": ("A", "B")}, "what the CLI warns of"


def test_expand_accepts_a_profile_name_or_object(two_arms):
    assert expand(two_arms, "smoke") == expand(two_arms, load_profile("smoke"))


def test_plan_totals_count_epochs(two_arms):
    plan = expand(two_arms, "smoke")
    assert (plan.epochs_per_cell, plan.total_epochs) == (2, 8)
    search = expand(load("tune"), "smoke")
    assert (search.epochs_per_cell, search.total_epochs) == (2, 2 * load("tune").search.num_samples)


def test_a_search_over_its_epochs_budgets_the_most_a_sample_can_train(tmp_path):
    # the base's epochs (the profile's 12) made `sweeps show` promise "at most 24" for samples of 1 or 2 epochs
    path = tmp_path / "s.yaml"
    path.write_text("name: s\nkind: search\nsearch:\n  num_samples: 2\n  space:\n    optim.epochs: [1, 2]\n")
    assert expand(load(str(path)), "quick").total_epochs == 4


def test_plan_to_dict_is_json_serialisable_with_overrides_differing_from_the_profile(two_arms):
    plan = expand(two_arms, "quick", overrides={"optim.epochs": 1})
    out = json.loads(json.dumps(plan.to_dict()))
    assert (out["name"], out["kind"], out["profile"], out["seeds"]) == ("two", "table", "quick", [0, 1])
    assert out["data"] == [{"name": "synthetic", "dataset": "synthetic", "root": None}]
    assert out["overrides"] == {"optim.epochs": 1}
    assert out["cells"][1] == {"arm": "A", "data": "synthetic", "seed": 1, "cell_id": plan.cells[1].cell_id,
                               "run_name": "two/A/seed1", "epochs": 1,
                               "overrides": {"model.depth": 1, "optim.epochs": 1, "seed": 1}}
    assert out["totals"] == {"cells": 4, "epochs_per_cell": 1, "total_epochs": 4}


def test_plan_to_dict_of_a_search_describes_the_space():
    out = json.loads(json.dumps(expand(load("tune"), "quick").to_dict()))
    assert out["search"]["space"]["optim.lr"] == {"type": "float", "low": 1e-5, "high": 1e-2, "log": True,
                                                  "step": None, "choices": []}
    assert out["cells"] == [] and list(out["base_configs"]) == ["synthetic"]


def test_plan_survives_pickle(two_arms):
    plan = expand(two_arms, "quick")
    assert pickle.loads(pickle.dumps(plan)) == plan
