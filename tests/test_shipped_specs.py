"""The shipped sweep specs: each loads, validates and expands on every shipped profile."""

from __future__ import annotations

import optuna
import pytest

from search_spaces import expand, list_profiles, list_sweeps, load
from search_spaces.spec import shipped_names

LABELS = {
    "components": ("Baseline", "+ Local CNNs", "+ MAD", "+ Transformer", "+ MSAD"),
    "mad_vs_dropout": ("No dropping", "Dropout", "DropBlock", "Spatial Dropout", "MAD"),
    "num_lanets": ("B=1", "B=2", "B=4", "B=6", "B=8"),
    "mad_rate": ("p1=0.0", "p1=0.2", "p1=0.4", "p1=0.6", "p1=0.8", "p1=1.0"),
    "msad_rate": ("p2=0.0", "p2=0.1", "p2=0.3", "p2=0.5", "p2=0.7"),
    "depth": ("depth=1", "depth=2", "depth=4", "depth=8"),
    "msad_mode": ("No MSAD", "MSAD heads (paper)", "MSAD tokens (released code)"),
    "drop_count": ("1 map, 1 head", "2 maps", "3 maps", "2 heads", "3 heads"),
}
BASELINES = {"components": "Baseline", "mad_vs_dropout": "No dropping", "num_lanets": "B=2",
             "mad_rate": "p1=0.6", "msad_rate": "p2=0.3", "depth": "depth=8", "msad_mode": "No MSAD",
             "drop_count": "1 map, 1 head"}
PROFILES = [name for name, _ in list_profiles()]


def test_shipped_sweeps_are_the_named_ablations_and_tune():
    assert shipped_names() == sorted([*LABELS, "tune"])


@pytest.mark.parametrize("name", sorted(LABELS))
@pytest.mark.parametrize("profile", PROFILES)
def test_shipped_table_sweep_expands_to_arms_times_three_seeds(name, profile):
    spec = load(name)
    plan = expand(spec, profile)
    assert spec.labels == LABELS[name]
    assert spec.seeds == (0, 1, 2)
    assert [c.arm for c in plan.cells] == [label for label in LABELS[name] for _ in range(3)]
    assert len({c.cell_id for c in plan.cells}) == len(plan.cells)


@pytest.mark.parametrize("profile", PROFILES)
def test_shipped_search_sweep_expands_to_one_base_config(profile):
    plan = expand(load("tune"), profile)
    assert plan.cells == () and list(plan.base_configs) == ["synthetic"]


@pytest.mark.parametrize("name", shipped_names())
def test_shipped_spec_has_title_description_caption_and_quick_profile(name):
    spec = load(name)
    assert spec.title and spec.description and len(spec.caption) > 40
    assert spec.profile == "quick" and spec.table.paper is None


@pytest.mark.parametrize("name", sorted(BASELINES))
def test_shipped_table_sweep_baseline_row(name):
    spec = load(name)
    assert spec.table.baseline == BASELINES[name]
    assert spec.metric == "sel_test_acc" and spec.table.metrics == ("sel_test_acc", "best_test_acc")


def test_components_rows_add_one_module_each():
    rows = {a.label: load("components").arm(a.label).overrides for a in load("components").arms}
    switches = [(r["model.local_branch"], r["model.drop_variant"], r["model.encoder"], r["model.msad_mode"])
                for r in rows.values()]
    assert switches == [(False, "none", False, "none"), (True, "none", False, "none"), (True, "mad", False, "none"),
                        (True, "mad", True, "none"), (True, "mad", True, "head")]


def test_mad_vs_dropout_uses_the_released_mad_rate():
    spec = load("mad_vs_dropout")
    assert spec.arm("MAD").overrides == {"model.drop_variant": "mad", "model.drop_rate": 0.6}
    assert [a.overrides["model.drop_variant"] for a in spec.arms] == [
        "none", "dropout", "dropblock", "spatial_dropout", "mad"]


def test_released_values_are_the_baselines_of_the_grids():
    assert load("num_lanets").arm("B=2").overrides == {"model.num_lanets": 2}
    assert load("mad_rate").arm("p1=0.6").overrides == {"model.drop_rate": 0.6}
    assert load("msad_rate").arm("p2=0.3").overrides == {"model.msad_rate": 0.3}
    assert load("depth").arm("depth=8").overrides == {"model.depth": 8}


def test_depth_sweep_keeps_heads_fixed():
    plan = expand(load("depth"), "paper")
    assert {c.config.model.num_heads for c in plan.cells} == {8}


def test_tune_searches_lr_weight_decay_b_p1_p2_and_depth_on_val_acc():
    spec = load("tune")
    assert set(spec.search.space) == {"optim.lr", "optim.weight_decay", "model.num_lanets", "model.drop_rate",
                                      "model.msad_rate", "model.depth"}
    assert spec.search.space["optim.lr"].log and spec.search.space["model.msad_rate"].high == 0.8
    assert (spec.metric, spec.mode) == ("val_acc", "max")


def test_tune_prunes_by_successive_halving_from_the_first_epoch():
    """The pruner bench/RESULTS.md §3 measured: ASHA-like rungs at the ends of epochs 1, 3 and 9 (a step is an
    epoch done), the top third goes on."""
    from sweeps.pruning import make_pruner

    spec = load("tune")
    assert dict(spec.search.pruner) == {"type": "successive_halving", "min_resource": 1, "reduction_factor": 3}
    assert isinstance(make_pruner(dict(spec.search.pruner)), optuna.pruners.SuccessiveHalvingPruner)


def test_list_sweeps_describes_every_shipped_spec():
    assert [name for name, _ in list_sweeps()] == shipped_names()


@pytest.mark.parametrize("profile", PROFILES)
def test_drop_count_cells_differ_only_in_how_many_maps_and_heads_are_dropped(profile):
    from transfer_core.config import to_flat

    plan = expand(load("drop_count"), profile)
    counts = {c.arm: (c.config.model.mad_drop_maps, c.config.model.msad_drop_heads) for c in plan.cells}
    assert counts == {"1 map, 1 head": (1, 1), "2 maps": (2, 1), "3 maps": (3, 1), "2 heads": (1, 2),
                      "3 heads": (1, 3)}
    assert {(c.config.model.num_lanets, c.config.model.drop_variant, c.config.model.msad_mode)
            for c in plan.cells} == {(4, "mad", "head")}
    counted = ("model.mad_drop_maps", "model.msad_drop_heads", "seed")
    rest = {tuple(sorted((k, str(v)) for k, v in to_flat(c.config).items() if k not in counted)) for c in plan.cells}
    assert len(rest) == 1


def test_recorded_cells_keep_their_identity_now_that_the_drop_counts_exist():
    # cell ids recorded before model.mad_drop_maps and model.msad_drop_heads existed: still those of the same cells
    heads = next(c for c in expand(load("msad_mode"), "quick").cells if c.arm == "MSAD heads (paper)" and c.seed == 0)
    released = next(c for c in expand(load("num_lanets"), "paper").cells if c.arm == "B=2" and c.seed == 0)
    assert (heads.cell_id, released.cell_id) == ("c9b2fc8c8ca3", "9416d45e6eef")


# Each shipped spec's `identity_hash` and its invocation key on the quick profile, synthetic data, no --set, as
# recorded by every `sweeps run` of it so far. A change to how they are computed (a refactor of trained_hash, a
# field added to a search record, another way of writing a key) must keep them, or every recorded invocation of
# the sweep is found no more and trains every cell again. An edit of a shipped spec in what it trains changes
# its key as meant: update its entry then.
RECORDED_KEYS = {
    "components": ("779133574043", "34c5c52076ae822c"),
    "depth": ("fe1a002bf2cc", "04269eddc41d7d12"),
    "drop_count": ("692a2c25c485", "82d6c4d50b06f6b6"),
    "mad_rate": ("02cd253cb785", "146dfdab4c96d1aa"),
    "mad_vs_dropout": ("e3d03e701cc1", "b7048ead39369873"),
    "msad_mode": ("976ccc90b789", "b5deffedd4fd8086"),
    "msad_rate": ("36ab03d163b7", "ce62e434331645e7"),
    "num_lanets": ("cf5398e9d9d7", "ea3e6bfdcfbe708a"),
    "tune": ("04dd7a603ae1", "290f39fe042691b7"),
}


@pytest.mark.parametrize("name", shipped_names())
def test_shipped_spec_keeps_the_invocation_key_its_runs_are_recorded_under(name):
    from sweeps import tracking

    spec = load(name)
    key = tracking.invocation_key(spec.identity_hash, "quick", {"synthetic": None}, {})
    assert (spec.identity_hash, key) == RECORDED_KEYS[name], \
        f"{name}: its recorded invocations would no longer be found (see RECORDED_KEYS)"
