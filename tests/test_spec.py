"""search_spaces.spec: loading sweep specs (the good paths; errors are in test_spec_errors.py)."""

from __future__ import annotations

import hashlib
import pickle
import textwrap

import pytest

from search_spaces import Arm, SearchParam, SpecError, SweepSpec, TableLayout, list_sweeps, load, load_text
from search_spaces.spec import EPOCH_METRICS, SUMMARY_METRICS, trained_hash


def write(tmp_path, text: str, name: str = "spec.yaml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def test_load_shipped_name_returns_spec_from_package_file():
    spec = load("mad_vs_dropout")
    assert isinstance(spec, SweepSpec)
    assert spec.name == "mad_vs_dropout" and spec.kind == "table" and spec.profile == "quick"
    assert spec.source.endswith("search_spaces/mad_vs_dropout.yaml")


def test_load_spec_hash_is_sha256_of_file_text_12_chars():
    spec = load("components")
    assert spec.spec_hash == hashlib.sha256(spec.text.encode()).hexdigest()[:12]


def test_load_path_accepts_user_file_whose_name_differs_from_file_name(tmp_path):
    path = write(tmp_path, """
        name: my_sweep
        arms:
          - {label: A, set: {model.drop_rate: 0.2}}
          - {label: B, set: {model.drop_rate: 0.4}}
    """, "other.yaml")
    spec = load(path)
    assert spec.name == "my_sweep" and spec.source == str(path)
    assert spec.arms == (Arm("A", {"model.drop_rate": 0.2}), Arm("B", {"model.drop_rate": 0.4}))


def test_load_defaults_for_optional_keys(tmp_path):
    spec = load(write(tmp_path, """
        name: s
        arms: [{label: A}]
    """))
    assert (spec.title, spec.description, spec.caption) == ("s", "s", "")
    assert (spec.kind, spec.profile, spec.seeds, spec.metric, spec.mode) == ("table", "quick", (0,),
                                                                              "sel_test_acc", "max")
    assert spec.table == TableLayout("arm", "data", None, ("sel_test_acc",), None)
    assert spec.search is None and dict(spec.base) == {}


def test_load_explicit_arms_keep_their_order_and_overrides(tmp_path):
    spec = load(write(tmp_path, """
        name: s
        arms:
          - {label: Z, set: {model.drop_variant: none}}
          - {label: A, set: {model.drop_variant: mad, model.drop_rate: 0.6}}
    """))
    assert spec.labels == ("Z", "A")
    assert dict(spec.arms[1].overrides) == {"model.drop_variant": "mad", "model.drop_rate": 0.6}
    assert spec.varied_keys == ("model.drop_variant", "model.drop_rate")


def test_grid_expands_cartesian_product_in_declaration_order_with_label_template(tmp_path):
    spec = load(write(tmp_path, """
        name: s
        grid:
          model.num_lanets: [1, 2]
          model.drop_rate: [0.2, 0.6]
        label: "B={model.num_lanets}, p1={model.drop_rate}"
    """))
    assert spec.labels == ("B=1, p1=0.2", "B=1, p1=0.6", "B=2, p1=0.2", "B=2, p1=0.6")
    assert dict(spec.arms[2].overrides) == {"model.num_lanets": 2, "model.drop_rate": 0.2}
    assert dict(spec.grid) == {"model.num_lanets": (1, 2), "model.drop_rate": (0.2, 0.6)}


def test_grid_without_label_names_arms_by_last_key_part(tmp_path):
    spec = load(write(tmp_path, """
        name: s
        grid: {model.depth: [1, 2]}
    """))
    assert spec.labels == ("depth=1", "depth=2")


def test_grid_label_template_accepts_short_field_names_and_format_specs(tmp_path):
    spec = load(write(tmp_path, """
        name: s
        grid: {model.drop_rate: [0, 0.25]}
        label: "p1={drop_rate:.2f}"
    """))
    assert spec.labels == ("p1=0.00", "p1=0.25")


def test_grid_over_a_list_value_labels_it_as_the_spec_writes_it_and_keeps_its_invocation():
    # a grid over optim.milestones labelled its rows the Python way, "milestones=(3,)"; the label is part of an
    # invocation's identity, so the invocations recorded under that label stay the ones this spec continues
    grid = ("name: t\nbase: {optim.epochs: 8}\ngrid: {optim.milestones: [[3], [3, 6]]}\n"
            "table: {baseline: 'milestones=(3,)', paper: {'milestones=(3, 6)': {rafdb: 90.0}}}\n")
    spec = load_text(grid)
    assert spec.labels == ("milestones=[3]", "milestones=[3, 6]")
    assert [a.recorded_as for a in spec.arms] == ["milestones=(3,)", "milestones=(3, 6)"]
    assert spec.table.baseline == "milestones=[3]" and list(spec.table.paper) == ["milestones=[3, 6]"]
    # as earlier versions keyed it: the arms the grid made, under the labels it gave them then
    before = ("name: t\nbase: {optim.epochs: 8}\narms:\n  - {label: 'milestones=(3,)', set: {optim.milestones: [3]}}\n"
              "  - {label: 'milestones=(3, 6)', set: {optim.milestones: [3, 6]}}\n")
    assert spec.identity_hash == load_text(before).identity_hash
    assert load_text(grid.replace("grid:", "label: 'M={optim.milestones}'\ngrid:").replace(
        "'milestones=(3,)'", "'M=[3]'").replace("'milestones=(3, 6)'", "'M=[3, 6]'")).labels == ("M=[3]", "M=[3, 6]")


def test_grid_over_booleans_null_and_small_floats_labels_them_as_yaml_writes_them_and_keeps_its_invocation():
    # a grid over model.local_branch: [true, false] labelled its rows "local_branch=True", null "None" and 1e-5
    # "1e-05": Python's way, not the spec's. The label is part of an invocation's identity: the old one is kept
    grid = ("name: t\nbase: {optim.epochs: 8}\n"
            "grid: {model.local_branch: [true, false], optim.grad_clip: [null, 1e-5, 0.001]}\n"
            "table: {baseline: 'local_branch=True, grad_clip=None'}\n")
    spec = load_text(grid)
    assert spec.labels == ("local_branch=true, grad_clip=null", "local_branch=true, grad_clip=1e-5",
                           "local_branch=true, grad_clip=0.001", "local_branch=false, grad_clip=null",
                           "local_branch=false, grad_clip=1e-5", "local_branch=false, grad_clip=0.001")
    assert [a.recorded_as for a in spec.arms] == [
        "local_branch=True, grad_clip=None", "local_branch=True, grad_clip=1e-05", "local_branch=True, grad_clip=0.001",
        "local_branch=False, grad_clip=None", "local_branch=False, grad_clip=1e-05",
        "local_branch=False, grad_clip=0.001"]
    assert spec.table.baseline == "local_branch=true, grad_clip=null"
    # as earlier versions keyed it: the arms the grid made, under the labels it gave them then
    before = "name: t\nbase: {optim.epochs: 8}\narms:\n" + "".join(
        f"  - {{label: '{arm.recorded_as or arm.label}', set: {{model.local_branch: "
        f"{str(arm.overrides['model.local_branch']).lower()}, optim.grad_clip: "
        f"{'null' if arm.overrides['optim.grad_clip'] is None else arm.overrides['optim.grad_clip']}}}}}\n"
        for arm in spec.arms)
    assert load_text(before).labels[1] == "local_branch=True, grad_clip=1e-05"
    assert spec.identity_hash == load_text(before).identity_hash
    assert trained_hash(spec, arms_in_order=False) == trained_hash(load_text(before), arms_in_order=False)
    # an explicit conversion or a format spec keeps Python's form; floats written plainly stay as they are
    assert load_text(grid.replace("grid:", "label: '{model.local_branch!s} {optim.grad_clip!r}'\ngrid:").replace(
        "local_branch=True, grad_clip=None", "True None")).labels[:2] == ("True None", "True 1e-05")
    rates = load_text("name: t\ngrid: {optim.lr: [1.0e-5, 1.5e-7, 0.0001, 2.0e+20]}\nlabel: 'lr={optim.lr}'\n")
    assert rates.labels == ("lr=1e-5", "lr=1.5e-7", "lr=0.0001", "lr=2e20")
    assert [a.recorded_as for a in rates.arms] == ["lr=1e-05", "lr=1.5e-07", None, "lr=2e+20"]
    assert load_text("name: t\ngrid: {optim.lr: [1.0e-5, 0.001]}\nlabel: 'lr={optim.lr:g}'\n").labels == (
        "lr=1e-05", "lr=0.001")


def test_grid_values_are_normalised_to_the_field_type(tmp_path):
    spec = load(write(tmp_path, """
        name: s
        grid: {model.drop_rate: [0, 1]}
        label: "p1={model.drop_rate}"
    """))
    assert spec.labels == ("p1=0.0", "p1=1.0")
    assert isinstance(spec.arms[0].overrides["model.drop_rate"], float)


def test_config_values_accept_yaml_1_1_scientific_notation_text(tmp_path):
    spec = load(write(tmp_path, """
        name: s
        base: {optim.lr: 1e-4}
        arms: [{label: A}]
    """))
    assert spec.base["optim.lr"] == pytest.approx(1e-4)


def test_config_mapping_accepts_nested_sections(tmp_path):
    spec = load(write(tmp_path, """
        name: s
        base:
          model: {depth: 2, num_lanets: 4}
          optim.epochs: 3
        arms: [{label: A}]
    """))
    assert dict(spec.base) == {"model.depth": 2, "model.num_lanets": 4, "optim.epochs": 3}


def test_description_and_caption_folded_text_is_one_line(tmp_path):
    spec = load(write(tmp_path, """
        name: s
        description: >
          one line
        caption: >
          several
          lines here
        arms: [{label: A}]
    """))
    assert spec.description == "one line" and spec.caption == "several lines here"


def test_table_layout_reads_baseline_metrics_and_paper_row(tmp_path):
    spec = load(write(tmp_path, """
        name: s
        arms: [{label: A}, {label: B, set: {model.depth: 3}}]
        table:
          baseline: A
          metrics: [sel_test_acc, best_test_acc]
          paper: {B: {rafdb: 90.91}}
    """))
    assert spec.table.baseline == "A"
    assert spec.table.metrics == ("sel_test_acc", "best_test_acc")
    assert spec.table.paper == {"B": {"rafdb": 90.91}}
    assert spec.table.paper_metric is None, "shown under the first metric unless said otherwise"
    best_epoch = load(write(tmp_path, """
        name: s
        arms: [{label: A}, {label: B, set: {model.depth: 3}}]
        table: {metrics: [sel_test_acc, best_test_acc], paper: {B: {rafdb: 90.91}}, paper_metric: best_test_acc}
    """))
    assert best_epoch.table.paper_metric == "best_test_acc"


def test_search_spec_reads_space_and_defaults_metric_to_val_acc(tmp_path):
    spec = load(write(tmp_path, """
        name: s
        kind: search
        search:
          num_samples: 4
          space:
            optim.lr: {type: float, low: 1.0e-4, high: 1.0e-2, log: true}
            model.depth: {type: int, low: 1, high: 4}
            model.num_lanets: [1, 2, 4]
    """))
    assert spec.metric == "val_acc" and spec.arms == () and spec.seeds == (0,)
    assert spec.search.space["optim.lr"] == SearchParam("float", 1e-4, 1e-2, True, None, ())
    assert spec.search.space["model.depth"] == SearchParam("int", 1, 4)
    assert spec.search.space["model.num_lanets"] == SearchParam("categorical", choices=(1, 2, 4))
    assert (spec.search.num_samples, spec.search.sampler, spec.search.pruner) == (4, "tpe", {"type": "median"})
    assert spec.varied_keys == ("optim.lr", "model.depth", "model.num_lanets")
    assert spec.table.metrics == ("best_val_acc", "sel_test_acc")
    assert spec.mode == "max"


@pytest.mark.parametrize("sampler, startup", [("gp", "  n_startup_trials: 4\n"), ("gp", ""), ("qmc", "")])
def test_a_search_takes_optunas_gp_and_qmc_samplers(sampler, startup):
    # researchers with an ablation's budget (12-48 trials) asked for GPSampler, and for QMCSampler's space-filling
    # draws: only tpe and random were accepted
    text = ("name: s\nkind: search\nsearch:\n  num_samples: 12\n  space: {model.depth: [1, 2]}\n"
            f"  sampler: {sampler}\n{startup}")
    search = load_text(text).search
    assert (search.sampler, search.n_startup_trials) == (sampler, 4 if startup else 10)


def test_a_sampler_accepted_since_keeps_the_key_of_every_search_recorded_with_another():
    # sampler is keyed: a search's key reads its sampler's name whatever its value, so a name added to the choices
    # changes no recorded key, and a search asking for another sampler is an invocation of its own
    text = ("name: s\nkind: search\nseeds: [0]\nsearch:\n  num_samples: 4\n"
            "  space: {optim.lr: {type: float, low: 1.0e-4, high: 1.0e-2, log: true}}\n")
    tpe = load_text(text)
    assert load_text(text + "  sampler: tpe\n").identity_hash == tpe.identity_hash
    keys = {sampler: load_text(text + f"  sampler: {sampler}\n").identity_hash for sampler in ("random", "gp", "qmc")}
    assert len({tpe.identity_hash, *keys.values()}) == 4


def test_a_pruner_argument_written_1e_3_is_the_number_it_is_as_a_bound_is():
    # PyYAML reads 1e-1 as text: `lower: 1e-1` was refused ("expected float, got str") beside `low: 1e-5`, taken
    from sweeps.pruning import make_pruner

    text = ("name: s\nkind: search\nsearch:\n  num_samples: 4\n  pruner: PRUNER\n"
            "  space: {optim.lr: {type: float, low: 1e-5, high: 1e-2, log: true}}\n")
    for pruner, args in (("{type: threshold, lower: 1e-1}", {"lower": 0.1}),
                         ("{type: percentile, percentile: 2.5e1}", {"percentile": 25}),
                         ("{type: successive_halving, min_resource: 1e0}", {"min_resource": 1}),
                         # a nested pruner's were still text, and refused
                         ("{type: patient, patience: 1, wrapped: {type: percentile, percentile: 2.5e1}}",
                          {"patience": 1, "wrapped": {"type": "percentile", "percentile": 25}})):
        spec = load_text(text.replace("PRUNER", pruner))
        assert {k: v for k, v in spec.search.pruner.items() if k != "type"} == args
        make_pruner(spec.search.pruner)
    quoted = load_text(text.replace("PRUNER", '{type: median, n_warmup_steps: "1"}'))
    assert quoted.search.pruner["n_warmup_steps"] == "1", "quoted is text, as written (make_pruner refuses it)"


def test_labels_that_differ_only_in_spaces_are_refused_but_a_recorded_spec_with_them_still_loads():
    # a table prints "Spatial  Dropout" as "Spatial Dropout": two rows that read the same; its runs were recorded
    text = "name: s\narms:\n  - {label: Spatial Dropout}\n  - {label: Spatial  Dropout, set: {model.depth: 3}}\n"
    with pytest.raises(SpecError, match="differs from 'Spatial Dropout' only in its spaces"):
        load_text(text)
    assert load_text(text, recorded=True).labels == ("Spatial Dropout", "Spatial  Dropout")


def test_a_spec_recorded_by_an_earlier_invocation_loads_under_the_metric_rules_it_ran_with():
    # `sweeps table` re-reads the spec.yaml an invocation recorded: one recorded before a rule was added must load
    table = "name: s\nmetric: sel_epoch\narms: [{label: A, set: {model.depth: 1}}]\n"
    search = ("name: s\nkind: search\nmetric: val_loss\nmode: max\n"
              "search: {space: {optim.lr: {type: float, low: 0.1, high: 0.2}}}\n")
    decoded = "name: s\nkind: search\nsearch: {space: {model.image_size: [32, 48]}}\n"   # DECODE_KEYS
    inside = "name: s\nkind: search\nsearch: {space: {model.embed_dim: {type: int, low: 32, high: 64}}}\n"
    for text in (table, search, decoded, inside):
        with pytest.raises(SpecError):
            load_text(text)
        assert load_text(text, recorded=True).name == "s"


def test_a_search_on_a_loss_minimises_it_unless_told_otherwise(tmp_path):
    spec = load(write(tmp_path, """
        name: s
        kind: search
        metric: val_loss
        search:
          space:
            optim.lr: {type: float, low: 1.0e-4, high: 1.0e-2, log: true}
    """))
    assert (spec.metric, spec.mode) == ("val_loss", "min")


def test_spec_is_hashable_and_survives_pickle():
    spec = load("tune")
    assert pickle.loads(pickle.dumps(spec)) == spec
    assert hash(load("num_lanets")) == hash(load("num_lanets"))


def test_spec_arm_lookup_by_label_lists_labels_on_a_miss():
    spec = load("num_lanets")
    assert spec.arm("B=4").overrides == {"model.num_lanets": 4}
    with pytest.raises(SpecError, match=r"unknown arm 'B=3'\..*Valid: B=1, B=2, B=4, B=6, B=8"):
        spec.arm("B=3")


def test_load_text_parses_a_spec_from_a_string():
    spec = load_text("name: s\narms: [{label: A}]\n", "inline")
    assert spec.source == "inline" and spec.labels == ("A",)


def test_list_sweeps_names_every_shipped_spec_sorted_with_its_description():
    sweeps = list_sweeps()
    names = [name for name, _ in sweeps]
    assert names == sorted(names)
    assert {"components", "mad_vs_dropout", "num_lanets", "mad_rate", "msad_rate", "depth", "msad_mode",
            "tune"} <= set(names)
    assert all(description and "\n" not in description for _, description in sweeps)


def test_metric_constants_agree_with_sweeps_schema():
    from sweeps import schema

    assert SUMMARY_METRICS == schema.SUMMARY_METRICS
    assert EPOCH_METRICS == schema.EPOCH_METRICS


def test_table_metrics_are_those_sweeps_table_can_show():
    from search_spaces.spec import TABLE_METRICS
    from sweeps.tables import TABLE_METRICS as SHOWN

    assert TABLE_METRICS == SHOWN


def test_the_best_epoch_metrics_a_table_shows_beside_its_first_are_those_sweeps_table_reads_from_histories():
    from search_spaces.spec import EPOCH_BEST_METRICS
    from sweeps.tables import EPOCH_BEST_METRICS as SHOWN

    assert EPOCH_BEST_METRICS == SHOWN


def test_a_tables_lowest_validation_loss_is_a_column_after_an_accuracy_never_its_first_nor_its_metric():
    from search_spaces.spec import load_text

    spec = load_text("name: t\narms:\n  - {label: A, set: {model.depth: 1}}\n"
                     "table: {metrics: [sel_test_acc, best_val_loss]}\n")
    assert spec.table.metrics == ("sel_test_acc", "best_val_loss")
    with pytest.raises(SpecError, match=r"table\.metrics\[0\].*best_val_loss is a loss: a table's first metric is "
                                        r"an accuracy.*\[sel_test_acc, best_val_loss\]"):
        load_text("name: t\narms:\n  - {label: A, set: {model.depth: 1}}\ntable: {metrics: [best_val_loss]}\n")
    with pytest.raises(SpecError, match=r"metric"):   # no trial reports it to Tune
        load_text("name: t\nmetric: best_val_loss\narms:\n  - {label: A, set: {model.depth: 1}}\n")


def test_what_a_spec_trains_is_its_identity_and_how_its_table_reads_is_not():
    # an invocation is keyed by identity_hash: a reworded caption or another baseline continues it
    text = ("name: t\ntitle: T\ncaption: A.\nbase: {model.num_lanets: 2}\narms:\n  - {label: A, set: {model.depth: 1}}\n"
            "  - {label: B, set: {model.depth: 2}}\nseeds: [0]\nmetric: sel_test_acc\ntable: {baseline: A}\n")
    spec = load_text(text)
    for same in (text.replace("caption: A.", "caption: Reworded."), text.replace("title: T", "title: U"),
                 text.replace("baseline: A", "baseline: B, metrics: [sel_test_acc, best_test_acc]"),
                 text.replace("seeds: [0]", "seeds: [0, 1]"), "# a comment\n" + text):
        assert load_text(same).identity_hash == spec.identity_hash, same
    assert load_text(text.replace("caption: A.", "caption: B.")).content_hash != spec.content_hash
    for other in (text.replace("label: A", "label: C").replace("baseline: A", "baseline: C"),
                  text.replace("num_lanets: 2", "num_lanets: 4"), text.replace("metric: sel_test_acc", "metric: best_test_acc")):
        assert load_text(other).identity_hash != spec.identity_hash, other


def test_a_top_level_x_key_holds_anchors_for_the_arms_and_is_otherwise_ignored():
    # a top-level `common: &c {...}` to reuse with `<<: *c` was an unknown key: YAML anchors had no place
    anchored = load_text("name: t\nx-common: &common {optim.lr: 1.0e-3, model.depth: 2}\narms:\n"
                         "  - {label: A, set: {<<: *common, model.drop_rate: 0.1}}\n"
                         "  - {label: B, set: {<<: *common, model.drop_rate: 0.2}}\n")
    written_out = load_text("name: t\narms:\n"
                            "  - {label: A, set: {optim.lr: 1.0e-3, model.depth: 2, model.drop_rate: 0.1}}\n"
                            "  - {label: B, set: {optim.lr: 1.0e-3, model.depth: 2, model.drop_rate: 0.2}}\n")
    assert anchored.arms == written_out.arms
    for key in ("identity_hash", "typed_identity_hash", "written_identity_hash", "content_hash"):
        assert getattr(anchored, key) == getattr(written_out, key), key


def test_a_tables_arms_or_seeds_in_another_order_train_the_same_cells():
    # a cell is its config (cell_id) and its runs are named by its arm's label, so the order trains nothing:
    # the seeds are no part of a table's key, and its arms' order is none of what `sweeps run` continues by
    from search_spaces import expand
    from search_spaces.spec import trained_hash

    arms = ("  - {label: A, set: {model.depth: 1}}\n", "  - {label: B, set: {model.depth: 2}}\n")
    text = "name: t\nseeds: [0, 1]\narms:\n" + arms[0] + arms[1]
    spec = load_text(text)
    for other in (text.replace(arms[0] + arms[1], arms[1] + arms[0]), text.replace("[0, 1]", "[1, 0]")):
        again = load_text(other)
        assert trained_hash(again, arms_in_order=False) == trained_hash(spec, arms_in_order=False), other
        assert ({(c.arm, c.seed, c.cell_id) for c in expand(again, "smoke").cells}
                == {(c.arm, c.seed, c.cell_id) for c in expand(spec, "smoke").cells})
    assert load_text(text.replace("[0, 1]", "[1, 0]")).identity_hash == spec.identity_hash
    swapped = load_text(text.replace(arms[0] + arms[1], arms[0].replace("1", "2") + arms[1].replace("2", "1")))
    assert trained_hash(swapped, arms_in_order=False) != trained_hash(spec, arms_in_order=False), \
        "labels that swapped their arms name other cells"


def test_a_value_written_another_way_is_the_same_identity():
    # the identity hashed the YAML as written: rewriting 1e-3 as 1.0e-3 (as tune.yaml's comment advises), a key
    # nested, or a default written out started a new invocation that trained every cell again
    text = ("name: t\nbase: {model.num_lanets: 2}\narms:\n  - {label: A, set: {optim.lr: 1.0e-3, model.drop_rate: 1.0}}\n"
            "  - {label: B, set: {optim.lr: 2.0e-3, model.drop_rate: 0.5}}\n")
    spec = load_text(text)
    for same in (text.replace("1.0e-3", "1e-3").replace("2.0e-3", "0.002"), text.replace("drop_rate: 1.0", "drop_rate: 1"),
                 text.replace("base: {model.num_lanets: 2}", "base: {model: {num_lanets: 2}}"),
                 text + "kind: table\nprofile: quick\nmetric: sel_test_acc\nmode: max\n",
                 text.replace("arms:", "seeds: [0]\narms:")):
        assert load_text(same).identity_hash == spec.identity_hash, same
    assert load_text(text.replace("1.0e-3", "3e-3")).identity_hash != spec.identity_hash
    search = ("name: s\nkind: search\nseeds: [0]\nsearch:\n  num_samples: 4\n"
              "  space: {optim.lr: {type: float, low: 1.0e-4, high: 1.0e-2, log: true}}\n")
    for same in (search.replace("1.0e-4", "1e-4"), search.replace("num_samples: 4", "num_samples: 4\n  sampler: tpe\n"
                                                                  "  pruner: {type: median}")):
        assert load_text(same).identity_hash == load_text(search).identity_hash, same


def test_a_searchs_values_that_read_the_same_are_the_same_identity():
    # a pruner's arguments are hashed as read, untyped: percentile: 25 and 25.0 (and 2.5e1, read as 25) started
    # two invocations of one search; the space's bounds and choices, typed by the key they vary, and the
    # sampler's arguments, a default written out or not, were one already
    text = ("name: s\nkind: search\nseeds: [0]\nsearch:\n  num_samples: 4\n  pruner: {type: patient, patience: 1, "
            "min_delta: 0.0, wrapped: {type: percentile, percentile: 25.0}}\n  space:\n"
            "    optim.lr: {type: float, low: 1.0e-4, high: 1.0e-2, log: true}\n"
            "    model.drop_rate: {type: float, low: 0.0, high: 1.0, step: 0.25}\n"
            "    model.depth: {type: int, low: 1, high: 4}\n    model.msad_rate: [0.0, 0.5]\n")
    spec = load_text(text)
    for same in (text.replace("percentile: 25.0", "percentile: 25"),
                 text.replace("percentile: 25.0", "percentile: 2.5e1"),
                 text.replace("min_delta: 0.0", "min_delta: 0"), text.replace("min_delta: 0.0", "min_delta: 0e0"),
                 text.replace("low: 1.0e-4", "low: 1e-4").replace("high: 1.0e-2", "high: 0.01"),
                 text.replace("low: 0.0, high: 1.0, step: 0.25", "low: 0, high: 1, step: 2.5e-1"),
                 text.replace("low: 1, high: 4", "low: 1.0, high: 4e0"), text.replace("[0.0, 0.5]", "[0, 5e-1]"),
                 text.replace("num_samples: 4", "num_samples: 4\n  sampler: tpe\n  n_startup_trials: 10")):
        assert load_text(same).identity_hash == spec.identity_hash, same
    for other in (text.replace("percentile: 25.0", "percentile: 25.5"),
                  text.replace("min_delta: 0.0", "min_delta: 0.1"),
                  text.replace("num_samples: 4", "num_samples: 4\n  n_startup_trials: 5")):
        assert load_text(other).identity_hash != spec.identity_hash, other
    # recorded under the key that told 25 from 25.0, which `sweeps run` still finds an invocation by
    assert spec.typed_identity_hash != spec.identity_hash
    assert load_text(text.replace("percentile: 25.0", "percentile: 25")).typed_identity_hash != spec.typed_identity_hash


def test_a_field_added_to_a_search_record_at_its_default_keeps_every_recorded_searchs_key():
    # trained_hash read every field of SearchParam: a field added later with a default (a prior, a
    # distribution) changed the key of every search recorded before it, and each was trained again
    import dataclasses

    from search_spaces import SearchConfig
    from search_spaces.spec import trained_hash

    spec = load("tune")
    Param = dataclasses.make_dataclass("SearchParam", [("prior", str, dataclasses.field(default="uniform"))],
                                       bases=(SearchParam,), frozen=True)
    Search = dataclasses.make_dataclass("SearchConfig", [("sampler_seed", int | None, dataclasses.field(default=None))],
                                        bases=(SearchConfig,), frozen=True)

    def with_fields(prior: str, sampler_seed: int | None) -> SweepSpec:
        space = {key: Param(**dataclasses.asdict(param), prior=prior) for key, param in spec.search.space.items()}
        search = Search(**{f.name: getattr(spec.search, f.name) for f in dataclasses.fields(SearchConfig)},
                        sampler_seed=sampler_seed)
        return dataclasses.replace(spec, search=dataclasses.replace(search, space=space))

    assert trained_hash(with_fields("uniform", None)) == trained_hash(spec) == spec.identity_hash
    assert trained_hash(with_fields("normal", None)) != spec.identity_hash, "another value trains otherwise"
    assert trained_hash(with_fields("uniform", 7)) != spec.identity_hash, "a field of the search itself too"


def test_a_searchs_num_samples_is_not_its_identity_and_its_space_and_seed_are():
    # more samples extend a search (its study goes on), as more seeds extend a table
    text = ("name: s\nkind: search\nseeds: [0]\nsearch:\n  num_samples: 4\n"
            "  space: {optim.lr: {type: float, low: 1.0e-4, high: 1.0e-2, log: true}}\n")
    spec = load_text(text)
    assert load_text(text.replace("num_samples: 4", "num_samples: 8")).identity_hash == spec.identity_hash
    for other in (text.replace("seeds: [0]", "seeds: [1]"), text.replace("high: 1.0e-2", "high: 1.0e-1")):
        assert load_text(other).identity_hash != spec.identity_hash, other


def test_space_size_counts_the_configurations_a_space_holds_or_none_where_a_float_is_unbounded():
    from search_spaces.search import space_size

    assert space_size({"a": SearchParam("categorical", choices=(1, 2, 4)), "b": SearchParam("int", 1, 8, step=3),
                       "c": SearchParam("float", 0.0, 0.3, step=0.1)}) == 3 * 3 * 4   # b: 1, 4, 7; c: 0 .. 0.3
    assert space_size({"a": SearchParam("int", 1, 16, log=True)}) == 16
    assert space_size({"a": SearchParam("categorical", choices=(1, 2)), "b": SearchParam("float", 1e-4, 1e-2)}) is None
    assert space_size(load("tune").search.space) is None


def test_the_spec_modules_docstring_names_every_key_a_spec_may_hold():
    # the README sends a spec's writer there for its keys: search.sampler, n_startup_trials and pruner, a parameter's
    # keys and table.rows/columns were not named
    import re

    import search_spaces.spec as spec_module
    from search_spaces.search import PARAM_KEYS, PARAM_TYPES, SAMPLERS, SEARCH_KEYS

    words = set(re.findall(r"[a-z_]+", spec_module.__doc__.split("`load(name_or_path)`")[0]))
    from sweeps.pruning import PRUNERS   # its types too: it named median alone, as if the only one

    keys = (*spec_module.TOP_KEYS, *spec_module.ARM_KEYS, *spec_module.TABLE_KEYS, *SEARCH_KEYS, *PARAM_KEYS,
            *PARAM_TYPES, *SAMPLERS, *PRUNERS.names())
    assert [k for k in keys if k not in words] == []
