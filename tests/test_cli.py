"""The `sweeps` CLI, in-process with click's CliRunner: listing and showing sweeps, refusing bad input
with click's error kinds (BadParameter for one value and UsageError for a spec or a combination: exit
2; ClickException at run time: exit 1) before Ray starts, and one slow end to end run -> table ->
status -> plot -> rerun on a tiny spec with a real local Ray and MLflow store."""

from __future__ import annotations

import json
import os
import re
import shlex
import signal
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

import sweeps.runner
import sweeps.stops
from search_spaces import list_profiles, load
from search_spaces.spec import shipped_names
from sweeps.cli import cli

TINY = """\
name: tiny_cli
title: Tiny
description: two arms
caption: A test.
kind: table
profile: smoke
arms:
  - {label: "No dropping", set: {model.drop_variant: none}}
  - {label: MAD, set: {model.drop_variant: mad}}
seeds: [0]
table: {baseline: "No dropping"}
"""

COMMANDS = ("run", "resume", "status", "list", "show", "table", "plot", "best", "cache")


def invoke(*args: str):
    return CliRunner().invoke(cli, [str(a) for a in args])


@pytest.fixture
def no_ray(monkeypatch):
    """sweeps.runner.connect_ray raises AssertionError; the list records every call."""
    calls = []

    def refuse(address=None):
        calls.append(address)
        raise AssertionError("connect_ray was called: Ray would start")

    monkeypatch.setattr(sweeps.runner, "connect_ray", refuse)
    return calls


@pytest.fixture
def here(tmp_path, monkeypatch):
    """An empty working folder, no tracking URI from the environment."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return tmp_path


# --------------------------------------------------------------------------- help, list, show

@pytest.mark.parametrize("command", ("",) + COMMANDS)
def test_help_exits_zero_for_the_group_and_every_command(command):
    result = invoke(*([command] if command else []), "--help")
    assert result.exit_code == 0, result.output
    assert "Usage: " in result.output


@pytest.mark.parametrize("command", ("run", "resume"))
def test_help_of_every_resource_option_says_the_profile_gives_its_default(command):
    # the paper profile asks 1 GPU per trial; a help without a default read as 0 (or as no limit)
    helps = {p.name: p.help for p in cli.commands[command].params}
    for option in ("cpus_per_trial", "gpus_per_trial", "max_concurrent"):
        assert "default: the profile's" in helps[option], (option, helps[option])


def _option(command: str, name: str):
    return next(p for p in cli.commands[command].params if p.name == name)


def test_table_help_offers_every_format_of_the_registry_and_names_its_suffixes():
    # --format's choices are typed out in the CLI (importing the registry at start-up costs every command)
    from sweeps.table_formats import TABLE_FORMATS

    fmt = _option("table", "fmt")
    assert set(fmt.type.choices) == set(TABLE_FORMATS.names())
    assert all(TABLE_FORMATS.get(n).suffix in fmt.help for n in TABLE_FORMATS.names()), fmt.help


def test_the_defaults_help_and_readme_show_are_the_ones_the_library_takes():
    import inspect

    from sweeps.best import best_spec
    from sweeps.runner import RunOptions
    from sweeps.table_formats import render

    failures = RunOptions.__dataclass_fields__["max_failures"].default
    for command in ("run", "resume"):
        assert _option(command, "max_failures").default == failures and _option(command, "max_failures").show_default
    best = inspect.signature(best_spec).parameters
    assert _option("best", "top").default == best["top"].default
    assert _option("best", "seeds").default == best["seeds"].default
    assert _option("table", "decimals").default == inspect.signature(render).parameters["decimals"].default
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    assert f"(`--max-failures`, default {failures})" in readme
    assert f"`--top` ({best['top'].default})" in readme and f"`--seeds` ({best['seeds'].default})" in readme


@pytest.mark.parametrize("command", ("run", "resume"))   # show's: "As for `sweeps run`."
def test_data_help_names_every_data_set_read_from_a_folder(command):
    from transfer_core.config import DATASETS

    text = _option(command, "data").help
    assert all(name in text for name in DATASETS if name != "synthetic"), text


def test_metric_help_names_the_default_metric_of_every_shipped_spec():
    # the default is the spec's first table.metrics, which is not sel_test_acc for a search (tune: best_val_acc)
    text = _option("table", "metric").help
    for name in shipped_names():
        first = load(name).table.metrics[0]
        assert first in text and (first == "sel_test_acc" or name in text), (name, first, text)


def test_seeds_help_says_a_search_takes_one_seed_as_show_refuses_more(here):
    for command in ("run", "resume", "show"):
        assert "a search: 1" in _option(command, "seeds").help
    refused = invoke("show", "tune", "--seeds", "2")
    assert refused.exit_code == 2, refused.output
    assert "on one seed: give --seeds 1, or leave --seeds out" in refused.output, refused.output   # as typed


def test_gpus_help_says_which_counts_a_trial_may_take(here, no_ray):
    assert "a whole number, or a fraction up to 1" in _option("run", "gpus_per_trial").help
    here.joinpath("tiny.yaml").write_text(TINY)
    refused = invoke("run", "tiny.yaml", "--gpus-per-trial", "1.5", "--tracking-uri", f"sqlite:///{here}/m.db")
    assert refused.exit_code == 2 and "a fraction in [0, 1] or a whole number" in refused.output, refused.output


def test_set_help_says_an_override_that_makes_two_arms_alike_is_refused(here):
    assert "two arms alike is refused" in _option("run", "set_values").help
    refused = invoke("show", "components", "--set", "model.drop_variant=none")
    assert refused.exit_code == 2 and "give the same configuration" in refused.output, refused.output


def test_cache_lists_its_entries_and_removes_those_unused_for_so_many_days(tmp_path):
    from transfer_core.config import DataConfig
    from transfer_core.data import load_splits
    from transfer_core.data.cache import META, cached_data

    for size in (8, 10):
        load_splits(DataConfig(dataset="synthetic", synthetic_per_class=4, cache_dir=str(tmp_path), val_fraction=0.0),
                    size)
    stale = next(e for e in cached_data(tmp_path) if e.image_size == 8)
    os.utime(stale.folder / META, (time.time() - 10 * 86400,) * 2)
    listed = invoke("cache", "--cache-dir", tmp_path)
    assert listed.exit_code == 0 and f"{tmp_path}: 2 entries" in listed.output, listed.output
    assert re.search(r"synthetic-8px-\w+: synthetic, 8 px, [\d.]+ KiB, last used", listed.output)
    assert "removed" not in listed.output and len(cached_data(tmp_path)) == 2, "listing removes nothing"
    pruned = invoke("cache", "--cache-dir", tmp_path, "--unused-for", "7")
    assert pruned.exit_code == 0 and "  removed synthetic-8px-" in pruned.output and "removed 1, " in pruned.output
    assert [e.image_size for e in cached_data(tmp_path)] == [10]
    assert invoke("cache", "--cache-dir", tmp_path, "--clear").exit_code == 0 and cached_data(tmp_path) == []
    assert "no decoded data" in invoke("cache", "--cache-dir", tmp_path).output
    both = invoke("cache", "--cache-dir", tmp_path, "--clear", "--unused-for", "1")
    assert both.exit_code == 2 and "give --clear or --unused-for, not both" in both.output


def test_cache_unused_for_that_finds_no_entry_says_it_removed_none(tmp_path):
    """`sweeps cache --unused-for 30` where every entry was used lately printed the very listing `sweeps cache`
    prints: nothing told the researcher the command had looked and removed none."""
    from transfer_core.config import DataConfig
    from transfer_core.data import load_splits

    load_splits(DataConfig(dataset="synthetic", synthetic_per_class=4, cache_dir=str(tmp_path), val_fraction=0.0),
                8)
    result = invoke("cache", "--cache-dir", tmp_path, "--unused-for", "30")
    assert result.exit_code == 0, result.output
    assert "none unused for 30 days: removed 0" in result.output
    assert "  removed " not in result.output
    assert "none unused" not in invoke("cache", "--cache-dir", tmp_path).output, "a plain listing removes nothing"


def test_cache_says_which_entries_it_could_not_remove_and_does_not_call_them_removed(tmp_path, monkeypatch):
    # an entry gone meanwhile (a second `sweeps cache --clear`) was a traceback after "removed ..."
    import transfer_core.data.cache as cache_mod
    from transfer_core.config import DataConfig
    from transfer_core.data import load_splits

    load_splits(DataConfig(dataset="synthetic", synthetic_per_class=4, cache_dir=str(tmp_path), val_fraction=0.0),
                8)

    def gone(entry):
        raise FileNotFoundError(2, "No such file or directory")

    monkeypatch.setattr(cache_mod, "remove_cached", gone)
    result = invoke("cache", "--cache-dir", tmp_path, "--clear")
    assert result.exit_code == 1 and "  removed" not in result.output and "removed 0, 0 B freed" in result.output
    assert "could not remove" in result.output and "No such file or directory" in result.output


def test_list_names_every_shipped_sweep_and_every_profile():
    result = invoke("list")
    assert result.exit_code == 0, result.output
    listed = re.findall(r"^  (\S+) ", result.output, flags=re.M)
    assert listed == shipped_names() + [name for name, _ in list_profiles()]
    assert {"mad_vs_dropout", "components", "tune"} <= set(listed)
    assert {"smoke", "quick", "paper"} <= set(listed)


def test_show_prints_every_cell_as_arm_times_seed_with_run_names():
    result = invoke("show", "mad_vs_dropout")
    assert result.exit_code == 0, result.output
    labels = load("mad_vs_dropout").labels
    assert len(labels) == 5
    assert "15 cells x" in result.output
    names = re.findall(r"^    [0-9a-f]{12}  (\S.*)$", result.output, flags=re.M)
    assert names == [f"mad_vs_dropout/{label}/seed{seed}" for label in labels for seed in range(3)]
    assert "mad_vs_dropout/MAD/seed0" in names


def test_show_json_with_one_seed_is_valid_json_with_one_cell_per_arm():
    result = invoke("show", "mad_vs_dropout", "--seeds", "1", "--json")
    assert result.exit_code == 0, result.output
    plan = json.loads(result.output)
    assert len(plan["cells"]) == 5
    assert {cell["seed"] for cell in plan["cells"]} == {0}
    assert plan["seeds"] == [0]


def test_show_with_the_paper_profile_uses_its_epochs():
    result = invoke("show", "mad_vs_dropout", "--profile", "paper")
    assert result.exit_code == 0, result.output
    assert "profile paper" in result.output
    assert "15 cells x 40 epochs = 600 epochs" in result.output


# --------------------------------------------------------------------------- bad input: exit 2

def test_show_of_a_search_prints_each_parameters_range_the_sampler_and_the_pruners_arguments():
    # it listed the searched keys alone: ranges, sampler and pruner settings only with --json
    result = invoke("show", "tune")
    assert result.exit_code == 0, result.output
    assert "16 Optuna trials, sampler tpe (the first 5 at random), at most 192 epochs, over:" in result.output
    assert "    optim.lr: float 1e-05 .. 0.01, log\n" in result.output
    assert "    model.num_lanets: one of 1, 2, 4, 6, 8\n" in result.output
    assert "    model.depth: int 1 .. 8\n" in result.output
    assert "  pruner successive_halving (min_resource 1, reduction_factor 3)" in result.output


@pytest.mark.parametrize("sampler, drawn", [("gp", "sampler gp (a Gaussian process; the first 5 at random)"),
                                             ("qmc", "sampler qmc (a scrambled Sobol sequence; the first at random)")])
def test_show_of_a_search_says_how_its_gp_or_qmc_sampler_draws(here, sampler, drawn):
    spec = load("tune").text.replace("name: tune", "name: mine").replace("sampler: tpe", f"sampler: {sampler}")
    if sampler == "qmc":   # it has no random startup trials: the spec refuses the key
        spec = spec.replace("  n_startup_trials: 5\n", "")
    (here / "mine.yaml").write_text(spec)
    result = invoke("show", str(here / "mine.yaml"))
    assert result.exit_code == 0, result.output
    assert f"16 Optuna trials, {drawn}, at most 192 epochs, over:" in result.output


def test_show_and_run_warn_of_a_search_pruner_that_can_stop_no_trial_at_the_profiles_epochs(here, no_ray, new_store):
    # smoke: 2 epochs, so a median pruner waiting 2 warm-up epochs runs every trial to its end
    spec = load("tune").text.replace("pruner: {type: successive_halving, min_resource: 1, reduction_factor: 3}",
                                     "pruner: {type: median, n_warmup_steps: 2}").replace("name: tune", "name: mine")
    (here / "mine.yaml").write_text(spec)
    warning = ("warning: the search's pruner 'median' can stop no trial here: n_warmup_steps=2 lets it stop a "
               "trial from epoch 2 on, and a trial of 2 epochs is done after epoch 2: give n_warmup_steps <= 1. "
               "Every trial runs all its epochs, as with `pruner: {type: none}`")
    assert warning in invoke("show", str(here / "mine.yaml"), "--profile", "smoke").output
    assert warning not in invoke("show", str(here / "mine.yaml"), "--profile", "quick").output
    new_store(here / "mlflow.db")   # the run's store (./mlflow.db), made before it: MLflow's ~5 s of creating it
    assert warning in invoke("run", str(here / "mine.yaml"), "--profile", "smoke").output
    assert no_ray, "a warning, not a refusal: the run went on to start Ray"


def test_show_and_run_warn_of_a_search_space_holding_fewer_configurations_than_its_samples(here, no_ray, new_store):
    # 16 trials over `optim.lr: [1.0e-3, 1.0e-4]` trained each value 8 times on the one seed, unsaid
    # and num_samples lowered to the space's size is no cure, as it said: Optuna draws with replacement (6 TPE trials
    # over these 6 configurations trained 3 to 5 of them)
    (here / "mine.yaml").write_text("name: mine\nkind: search\nsearch:\n  num_samples: 16\n  space:\n"
                                    "    optim.lr: [1.0e-3, 1.0e-4]\n"
                                    "    model.depth: {type: int, low: 1, high: 3}\n")
    warning = ("warning: the search's space holds 6 configurations, fewer than its num_samples (16): Optuna draws "
               "some again, each a trial of its own on the same seed; its samplers draw with replacement, so even "
               "num_samples: 6 would train some twice and leave others out. To train each once, compare them as a "
               "table's arms (a grid, over several seeds)")
    assert warning in " ".join(invoke("show", "mine.yaml").output.split())
    new_store(here / "mlflow.db")   # the run's store (./mlflow.db), made before it: MLflow's ~5 s of creating it
    assert warning in " ".join(invoke("run", "mine.yaml").output.split())
    assert no_ray, "a warning, not a refusal: the run went on to start Ray"
    (here / "mine.yaml").write_text("name: mine\nkind: search\nsearch:\n  num_samples: 6\n  space:\n"
                                    "    optim.lr: [1.0e-3, 1.0e-4]\n"
                                    "    model.depth: {type: int, low: 1, high: 3}\n")
    assert "warning: the search's space holds" not in invoke("show", "mine.yaml").output


def test_a_spec_path_with_a_trailing_slash_is_refused_naming_the_file(here):
    # `sweeps show tiny_cli.yaml/` was read as the file, as if the slash were not there
    (here / "tiny_cli.yaml").write_text(TINY)
    result = invoke("show", "tiny_cli.yaml/")
    assert result.exit_code == 2, result.output
    assert "tiny_cli.yaml/ names a folder, but tiny_cli.yaml is a file: give the spec file without the trailing " \
           "slash" in result.output, result.output


def test_cache_dir_that_is_a_file_is_refused_as_the_other_options_are(tmp_path):
    # click's own "Directory '...' is a file." read unlike every other refusal of the CLI
    (tmp_path / "f").write_text("")
    result = invoke("cache", "--cache-dir", tmp_path / "f")
    assert result.exit_code == 2, result.output
    assert f"--cache-dir {tmp_path / 'f'} is a file: give the cache's folder" in result.output, result.output
    assert "Directory" not in result.output


def test_best_force_without_an_output_file_warns_that_it_does_nothing(here):
    # `sweeps best X --force` (printing the spec) was silently ignored
    warning = "warning: --force applies only to -o FILE (it replaces an existing one)"
    assert warning in invoke("best", "nosuch", "--force", "--tracking-uri", f"sqlite:///{here / 'm.db'}").output
    assert warning in invoke("best", "nosuch", "--force", "-o", "-", "--tracking-uri",
                             f"sqlite:///{here / 'm.db'}").output
    assert warning not in invoke("best", "nosuch", "--force", "-o", "x.yaml", "--tracking-uri",
                                 f"sqlite:///{here / 'm.db'}").output


def test_show_unknown_sweep_lists_the_shipped_names():
    result = invoke("show", "nosuch")
    assert result.exit_code == 2
    assert "Error: unknown sweep 'nosuch'. Valid: " + ", ".join(shipped_names()) in result.output


def test_show_unknown_data_set_is_a_bad_data_parameter_listing_the_valid_sets():
    result = invoke("show", "mad_vs_dropout", "--data", "nosuch=/tmp")
    assert result.exit_code == 2
    assert ("Invalid value for --data: --data 'nosuch=/tmp': unknown data set 'nosuch'. "
            "Valid: synthetic, rafdb, ferplus, affectnet, fer2013, imagefolder") in result.output


def test_show_missing_data_folder_is_a_bad_data_parameter_naming_the_path(tmp_path):
    missing = tmp_path / "does" / "not" / "exist"
    result = invoke("show", "mad_vs_dropout", "--data", f"rafdb={missing}")
    assert result.exit_code == 2
    assert f"Invalid value for --data: --data 'rafdb={missing}': no such directory: {missing}" in result.output


def test_a_data_layout_is_checked_as_the_cells_read_it_with_the_data_options_set(tmp_path, here, no_ray):
    # the check before Ray read the folder with the default options: --set data.ferplus_rule=argmax, which
    # keeps the tied votes the majority rule drops, was refused for a test split the majority rule empties
    from test_data_fer import ROWS, write_ferplus_csv

    tied = [0, 0, 0, 5, 5, 0, 0, 0, 0, 0]
    root = write_ferplus_csv(tmp_path / "fer", [*(r for r in ROWS if r[0] != "PrivateTest"),
                                                ("PrivateTest", "fer0000030.png", tied)])
    for command in ("show", "run"):
        refused = invoke(command, "msad_mode", "--data", f"ferplus={root}")
        assert refused.exit_code == 2 and "the test split is empty" in refused.output, refused.output
    assert invoke("show", "msad_mode", "--data", f"ferplus={root}", "--set", "data.ferplus_rule=argmax").exit_code == 0
    ran = invoke("run", "msad_mode", "--data", f"ferplus={root}", "--set", "data.ferplus_rule=argmax")
    assert no_ray == [None], f"everything before Ray passed: {ran.output}"


def test_show_set_without_equals_is_a_bad_set_parameter():
    result = invoke("show", "mad_vs_dropout", "--set", "optim.epochs")
    assert result.exit_code == 2
    assert "Invalid value for --set: 'optim.epochs' is not KEY=VALUE (e.g. optim.epochs=3)" in result.output


def test_show_unknown_set_key_suggests_a_close_one():
    result = invoke("show", "mad_vs_dropout", "--set", "model.nope=1")
    assert result.exit_code == 2
    assert re.search(r"Error: --set model\.nope: unknown key 'model\.nope'\. Did you mean 'model\.\w+'\? "
                     r"Valid keys: model\.stem,", result.output), result.output


def test_show_unknown_set_key_lists_only_keys_that_set_may_write():
    result = invoke("show", "mad_vs_dropout", "--set", "optim.learning_rate=0.1")
    assert result.exit_code == 2
    valid = re.search(r"Valid keys: (.*)$", result.output, flags=re.M).group(1).split(", ")
    assert "optim.lr" in valid
    assert not {"data.dataset", "data.root", "seed"} & set(valid)   # reserved: --set model.x refuses them


@pytest.mark.parametrize("text", [".001", "0.001", "1e-3", "+1e-3"])
def test_show_set_of_a_number_json_does_not_read_takes_it_as_the_number(text):
    """`--set optim.lr=.001` was refused with "'.001' is invalid: expected a number" (a YAML spec takes it)."""
    result = invoke("show", "mad_vs_dropout", "--seeds", "1", "--json", "--set", f"optim.lr={text}")
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["overrides"] == {"optim.lr": 0.001}


@pytest.mark.parametrize("text, expected", [("data.cache_dir=2024", "2024"), ("data.cache_dir=1e3", "1e3"),
                                            ('data.cache_dir="2024"', "2024"), ("data.cache_dir=null", None)])
def test_show_set_of_a_string_key_takes_an_unquoted_value_as_typed(text, expected):
    """`--set data.cache_dir=2024` was refused, "2024 is invalid: expected a string", and a shell's quotes do not
    make it one: a string key's value is its text, only JSON's quoted string and null read otherwise."""
    result = invoke("show", "mad_vs_dropout", "--seeds", "1", "--json", "--set", text)
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["overrides"] == {"data.cache_dir": expected}


def test_show_set_of_a_string_key_to_a_boolean_word_names_the_keys_choices():
    """`--set amp=false` said to quote the word, as YAML needs; on a command line `amp=off` is what was meant."""
    result = invoke("show", "mad_vs_dropout", "--seeds", "1", "--set", "amp=false")
    assert result.exit_code == 2, result.output
    assert "Error: --set amp: amp='false' is invalid: expected one of auto, bf16, off" in result.output


@pytest.mark.parametrize("text", ["optim.lr=Infinity", "optim.weight_decay=Infinity", "model.mlp_ratio=Infinity"])
def test_show_set_of_an_infinite_number_is_a_bad_set_naming_it(text):
    """JSON reads Infinity, and lr=inf passed `> 0`: every cell trained on NaN losses to a table of chance."""
    result = invoke("show", "mad_vs_dropout", "--seeds", "1", "--set", text)
    assert result.exit_code == 2, result.output
    assert f"Error: --set {text.split('=')[0]}: {text.split('=')[0]}=inf is invalid: expected a finite number" \
        in result.output, result.output


@pytest.mark.parametrize("command", [("show", "mad_vs_dropout"), ("run", "mad_vs_dropout", "--storage", "rr")])
def test_a_key_given_twice_to_set_is_refused_naming_both_values(command, here, no_ray):
    """The last one won without a word, while a spec refuses a key written twice."""
    result = invoke(*command, "--set", "optim.lr=0.1", "--set", "optim.lr=0.01")
    assert result.exit_code == 2, result.output
    assert "--set: optim.lr is set twice (0.1, then 0.01): give each key once" in result.output
    assert no_ray == []


def test_show_set_of_a_key_the_arms_set_warns_that_it_replaces_theirs():
    result = invoke("show", "mad_vs_dropout", "--set", "model.drop_rate=0.3", "--set", "optim.epochs=2")
    assert result.exit_code == 0, result.output
    assert ("warning: --set model.drop_rate=0.3 replaces what arm(s) No dropping, Dropout, DropBlock, "
            "Spatial Dropout, MAD set") in result.output
    assert "optim.epochs=2 replaces" not in result.output


def test_show_json_warns_on_stderr_and_keeps_stdout_the_json():
    # `show --json` returned before its warnings: a --set replacing what the arms set went unsaid
    result = invoke("show", "mad_vs_dropout", "--seeds", "1", "--json", "--set", "model.drop_rate=0.3")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["overrides"] == {"model.drop_rate": 0.3}, "stdout is the JSON alone"
    assert "warning: --set model.drop_rate=0.3 replaces what arm(s) No dropping" in result.stderr


def test_show_unknown_profile_lists_the_profiles():
    result = invoke("show", "mad_vs_dropout", "--profile", "nosuch")
    assert result.exit_code == 2
    assert "Error: unknown profile 'nosuch'. Valid: smoke, quick, paper" in result.output


@pytest.mark.parametrize("seeds", ["0", "-1"])
def test_show_seeds_below_one_is_a_bad_seeds_parameter_naming_the_value(seeds):
    result = invoke("show", "mad_vs_dropout", "--seeds", seeds)
    assert result.exit_code == 2, result.output
    assert re.search(rf"Invalid value for '?--seeds'?: .*{re.escape(seeds)}\b", result.output), result.output


def test_show_search_spec_with_an_unknown_pruner_is_refused(tmp_path):
    spec = tmp_path / "search.yaml"
    spec.write_text("name: s\nkind: search\nprofile: smoke\nsearch:\n"
                    "  space: {optim.lr: {type: float, low: 1.0e-4, high: 1.0e-2}}\n  pruner: {type: medain}\n")
    result = invoke("show", spec)
    assert result.exit_code == 2, result.output
    assert "unknown pruner 'medain'. Did you mean 'median'?" in result.output


@pytest.mark.parametrize("command", ["show", "run"])
def test_a_search_given_two_data_sets_is_refused_by_show_as_by_run(here, no_ray, command):
    """`sweeps show tune --data A --data B` printed a plan that `sweeps run` then refused."""
    from PIL import Image

    for split in ("train", "test"):
        for label in ("a", "b"):
            (here / "faces" / split / label).mkdir(parents=True)
            for i in range(4):
                Image.new("RGB", (16, 16), (60 * i, 0, 0)).save(here / "faces" / split / label / f"{i}.png")
    result = invoke(command, "tune", "--data", "synthetic", "--data", f"imagefolder={here / 'faces'}",
                    *(["--storage", here / "rr"] if command == "run" else []))
    assert result.exit_code == 2, result.output
    assert "sweep 'tune' is a search: give at most one --data (got synthetic, imagefolder)" in result.output
    assert no_ray == []


def test_run_seeds_zero_is_a_bad_seeds_parameter_before_ray_starts(here, no_ray):
    result = invoke("run", "mad_vs_dropout", "--seeds", "0")
    assert result.exit_code == 2, result.output
    assert re.search(r"Invalid value for '?--seeds'?: .*\b0\b", result.output), result.output
    assert no_ray == []


@pytest.mark.parametrize("command", ["run", "resume", "show", "best"])
def test_more_seeds_than_a_sweep_takes_are_refused_naming_the_range_before_anything_is_made(here, no_ray, command):
    """`--seeds 100000000` had no bound: every arm x seed of its plan was made (5 arms: 500,000,000 cells, ~0.07 ms
    and ~0.5 KB each) before a word was said, for hours, then out of memory."""
    from search_spaces.yaml_doc import MAX_SEEDS

    result = invoke(command, "mad_vs_dropout" if command != "best" else "tune", "--seeds", MAX_SEEDS + 1)
    assert result.exit_code == 2, result.output
    assert (f"Invalid value for '--seeds': --seeds {MAX_SEEDS + 1} is more than a sweep takes: give 1 to "
            f"{MAX_SEEDS} seeds per arm (every arm x data set x seed is a cell that trains; the shipped tables "
            "take 3)") in " ".join(result.output.split()), result.output
    assert no_ray == [] and list(here.iterdir()) == []


def test_the_library_refuses_more_seeds_than_a_sweep_takes_before_its_plan_is_made(monkeypatch):
    from search_spaces.yaml_doc import MAX_SEEDS
    from sweeps.errors import SweepError
    from sweeps.runner import RunOptions, prepare

    monkeypatch.setattr(sweeps.runner, "expand", lambda *a, **k: pytest.fail("the plan was made"))
    with pytest.raises(SweepError, match=f"--seeds {MAX_SEEDS + 1} is more than a sweep takes") as refused:
        prepare("mad_vs_dropout", RunOptions(seeds=MAX_SEEDS + 1))
    assert refused.value.option == "--seeds"


def test_show_takes_as_many_seeds_as_a_sweep_takes(here):
    from search_spaces.yaml_doc import MAX_SEEDS

    (here / "tiny_cli.yaml").write_text(TINY)
    result = invoke("show", "tiny_cli.yaml", "--seeds", MAX_SEEDS)
    assert result.exit_code == 0 and f"{2 * MAX_SEEDS} cells" in result.output, result.output


def test_run_zero_cpus_per_trial_is_a_bad_parameter_before_ray_starts(here, no_ray):
    result = invoke("run", "mad_vs_dropout", "--cpus-per-trial", "0")
    assert result.exit_code == 2, result.output
    assert re.search(r"Invalid value for '?--cpus-per-trial'?: .*\b0(\.0)?\b", result.output), result.output
    assert no_ray == []


# --------------------------------------------------------------------------- run-time errors: exit 1

def test_run_unreachable_tracking_server_fails_naming_it_before_ray_starts(here, no_ray):
    result = invoke("run", "mad_vs_dropout", "--tracking-uri", "http://127.0.0.1:9", "--storage", here / "rr")
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit)          # a ClickException, not a crash
    assert "Error: MLflow tracking server http://127.0.0.1:9 is unreachable" in result.output
    assert "Usage:" not in result.output
    assert no_ray == []


def test_a_spec_file_named_like_a_shipped_sweep_but_different_is_warned_of(here):
    # its runs would land in the shipped sweep's experiment, and status/table would show either
    from search_spaces import load

    shipped = load("mad_vs_dropout").text
    (here / "copy.yaml").write_text(shipped)
    assert "Warning:" not in invoke("show", str(here / "copy.yaml")).output, "the same spec: nothing to warn of"
    (here / "mine.yaml").write_text(shipped.replace("seeds: [0, 1, 2]", "seeds: [0]"))
    result = invoke("show", str(here / "mine.yaml"))
    assert result.exit_code == 0, result.output
    assert (f"Warning: {here / 'mine.yaml'} is named 'mad_vs_dropout' like the shipped sweep but differs"
            in result.output)


def test_a_spec_file_named_like_another_spec_file_run_before_but_different_is_warned_of_at_run(here, store,
                                                                                               monkeypatch):
    # two researchers' files both `name: tiny_cli`: their runs went into one MLflow experiment unwarned, and
    # `sweeps table tiny_cli.yaml` showed whichever of the two was run last
    from mlflow import MlflowClient
    from search_spaces.spec import text_hash
    from sweeps import schema as S

    def ctrl_c(address=None):
        raise KeyboardInterrupt

    monkeypatch.setattr(sweeps.runner, "connect_ray", ctrl_c)
    monkeypatch.setenv("TRANSFER_CACHE", str(here / "cache"))
    client = MlflowClient(store)
    experiment = client.create_experiment("tiny_cli", artifact_location=str(here / "artifacts"))

    def ran_before(path, text):
        parent = client.create_run(experiment, run_name="tiny_cli@earlier", tags={
            S.TAG_ROLE: S.ROLE_PARENT, S.TAG_SWEEP: "tiny_cli", S.TAG_STATUS: S.STATUS_COMPLETED,
            S.TAG_SPEC_HASH: text_hash(text), S.TAG_COMMAND: json.dumps({"name": str(path)})})
        client.log_text(parent.info.run_id, text, S.ARTIFACT_SPEC)
        return parent.info.run_id

    (here / "tiny_cli.yaml").write_text(TINY)
    ran_before(here / "moved" / "tiny_cli.yaml", "# the same spec, run from another folder\n" + TINY)
    result = invoke("run", "tiny_cli.yaml", "--storage", here / "rr")
    assert result.exit_code == 130, result.output
    assert "like the spec file" not in result.output, "the same spec (a copy, a file moved): nothing to warn of"
    theirs = here / "theirs" / "tiny_cli.yaml"
    run_id = ran_before(theirs, TINY.replace("caption: A test.", "caption: Theirs."))
    result = invoke("run", "tiny_cli.yaml", "--storage", here / "rr")
    assert result.exit_code == 130, result.output
    assert (f"Warning: tiny_cli.yaml is named 'tiny_cli' like the spec file {theirs}, run before (invocation "
            f"{run_id[:8]}, tiny_cli@earlier), but differs from it: their runs go to the same MLflow experiment, and "
            "`sweeps status tiny_cli` and `sweeps table tiny_cli` (or of either file) show whichever was run last "
            "(rename one, its name:, to keep them apart)") in " ".join(result.output.split())


def test_show_of_a_spec_file_warns_of_another_spec_file_of_its_name_run_before_as_run_does(here, store, tmp_path):
    # `sweeps show mine.yaml` said nothing of the other file named alike whose runs `sweeps run mine.yaml` would join
    from mlflow import MlflowClient
    from search_spaces.spec import text_hash
    from sweeps import schema as S

    client = MlflowClient(store)   # the default store: sqlite:///mlflow.db here
    experiment = client.create_experiment("tiny_cli", artifact_location=str(here / "artifacts"))
    theirs, text = here / "theirs" / "tiny_cli.yaml", TINY.replace("caption: A test.", "caption: Theirs.")
    parent = client.create_run(experiment, run_name="tiny_cli@earlier", tags={
        S.TAG_ROLE: S.ROLE_PARENT, S.TAG_SWEEP: "tiny_cli", S.TAG_STATUS: S.STATUS_COMPLETED,
        S.TAG_SPEC_HASH: text_hash(text), S.TAG_COMMAND: json.dumps({"name": str(theirs)})})
    client.log_text(parent.info.run_id, text, S.ARTIFACT_SPEC)
    (here / "tiny_cli.yaml").write_text(TINY)
    warning = (f"Warning: tiny_cli.yaml is named 'tiny_cli' like the spec file {theirs}, run before (invocation "
               f"{parent.info.run_id[:8]}, tiny_cli@earlier), but differs from it")
    for args in ((), ("--tracking-uri", store)):
        result = invoke("show", "tiny_cli.yaml", *args)
        assert result.exit_code == 0, result.output
        assert warning in " ".join(result.output.split()), args
    theirs.parent.mkdir()
    theirs.write_text(text)
    assert "like the spec file" not in invoke("show", str(theirs)).output, "its own runs: nothing to warn of"
    # no store here: none is made to ask (show runs nothing)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "tiny_cli.yaml").write_text(TINY)
    result = invoke("show", str(elsewhere / "tiny_cli.yaml"), "--tracking-uri", f"sqlite:///{elsewhere / 'none.db'}")
    assert result.exit_code == 0 and "like the spec file" not in result.output, result.output
    assert not (elsewhere / "none.db").exists()


def test_set_null_to_a_key_of_a_few_words_is_refused_naming_its_choices_not_yaml(here):
    # `--set data.augment=null` was told what YAML reads as null and to quote the word: a --set is no YAML
    result = invoke("show", "components", "--set", "data.augment=null")
    assert result.exit_code == 2
    said = " ".join(result.output.split())
    assert "data.augment='null' is invalid: expected one of released, apvit, light, none" in said
    assert "YAML" not in said and "quote" not in said


def test_show_of_a_spec_file_makes_no_store_of_an_empty_database_file(here):
    # an empty mlflow.db (`touch`ed, or left by a store never made) holds no other file's runs: show made MLflow's
    # ~30 tables in it (a store made by a command that runs nothing)
    (here / "tiny_cli.yaml").write_text(TINY)
    (here / "mlflow.db").touch()
    result = invoke("show", "tiny_cli.yaml")
    assert result.exit_code == 0, result.output
    assert (here / "mlflow.db").stat().st_size == 0


def test_run_stopped_by_ctrl_c_outside_training_says_how_to_continue(here, monkeypatch, new_store):
    def ctrl_c(address=None):
        raise KeyboardInterrupt

    monkeypatch.setattr(sweeps.runner, "connect_ray", ctrl_c)
    monkeypatch.setenv("TRANSFER_CACHE", str(here / "cache"))
    new_store(here / "mlflow.db")   # the run's store (./mlflow.db), made before it: MLflow's ~5 s of creating it
    (here / "tiny_cli.yaml").write_text(TINY)
    result = invoke("run", "tiny_cli.yaml", "--storage", here / "rr")
    assert result.exit_code == 130, result.output
    assert ("sweep tiny_cli stopped (Ctrl-C, outside training or a second stop signal); "
            f"`sweeps run {here / 'tiny_cli.yaml'} --storage {here / 'rr'} --tracking-uri sqlite:///{here / 'mlflow.db'}` "
            "continues it") in result.output
    assert "Aborted!" not in result.output


def test_run_stopped_by_sigterm_outside_training_exits_143_naming_it(here, monkeypatch, new_store):
    # Ray's driver handler exited 15 (sys.exit(signum)) while a sweep set up or drew its report
    def sigterm(prepared, resume_only=False, on_cluster_lost=None):
        raise sweeps.stops.StopSignal(signal.SIGTERM)

    monkeypatch.setattr(sweeps.runner, "run_sweep", sigterm)
    monkeypatch.setenv("TRANSFER_CACHE", str(here / "cache"))
    new_store(here / "mlflow.db")   # the run's store (./mlflow.db), made before it: MLflow's ~5 s of creating it
    (here / "tiny_cli.yaml").write_text(TINY)
    result = invoke("run", "tiny_cli.yaml", "--storage", here / "rr")
    assert result.exit_code == 143, result.output
    assert "sweep tiny_cli stopped (SIGTERM, outside training or a second stop signal); `sweeps run" in result.output


@pytest.fixture
def run_ending_in(here, monkeypatch, new_store):
    """run_ending_in(status, counts, ...): `sweeps run` in `here` (its ./mlflow.db an empty store) of the TINY spec
    (or `spec`) with `options`, its run_sweep replaced by one ending in `status` (SweepOutcome's fields)."""
    from sweeps.runner import SweepOutcome

    new_store(here / "mlflow.db")
    monkeypatch.setenv("TRANSFER_CACHE", str(here / "cache"))

    def run(status: str, counts: dict, elapsed_s: float = 9.0, spec: str = TINY, options: tuple = (), **outcome):
        monkeypatch.setattr(sweeps.runner, "run_sweep", lambda prepared, resume_only=False, on_cluster_lost=None:
                            SweepOutcome("0123456789abcdef", "1", status, counts, elapsed_s, **outcome))
        (here / "tiny_cli.yaml").write_text(spec)
        return invoke("run", "tiny_cli.yaml", "--storage", here / "rr", *options)

    return run


def test_the_next_command_names_the_store_as_the_continue_command_does(run_ending_in, here, monkeypatch):
    # "Next: ... --tracking-uri sqlite:///mlflow.db", as typed, read another store from another folder, where
    # "Continue with:" named it by its absolute path
    def store_named(line: str) -> str | None:
        words = shlex.split(line.split(": ", 1)[1])
        return words[words.index("--tracking-uri") + 1] if "--tracking-uri" in words else None

    absolute = f"sqlite:///{here.resolve() / 'mlflow.db'}"
    for status, prefix in (("completed", "Next: "), ("interrupted", "Continue with: ")):
        result = run_ending_in(status, {"completed": 1}, options=("--tracking-uri",
                                                                                        "sqlite:///mlflow.db"))
        line = next(line for line in result.stdout.splitlines() if line.startswith(prefix))
        assert store_named(line) == absolute, line
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:///mlflow.db")   # the shell that runs them names it too
    for status, prefix in (("completed", "Next: "), ("interrupted", "Continue with: ")):
        result = run_ending_in(status, {"completed": 1})
        line = next(line for line in result.stdout.splitlines() if line.startswith(prefix))
        assert store_named(line) is None, line


def test_a_completed_search_names_sweeps_best_as_its_next_step_and_a_table_does_not(run_ending_in):
    # the README's step after a search (`sweeps best tune -o tune_best.yaml`) went unsaid: only `sweeps table` was
    search = ("name: tiny_cli\nkind: search\nprofile: smoke\nsearch:\n  space: {optim.lr: [0.001, 0.01]}\n"
              "  num_samples: 2\n")
    result = run_ending_in("completed", {"completed": 1, "pruned": 1}, spec=search)
    assert ("Its best trials over seeds, as a table spec to run: sweeps best tiny_cli --run 01234567 -o "
            "tiny_cli_best.yaml --tracking-uri") in result.stdout, result.stdout
    result = run_ending_in("completed", {"completed": 0, "pruned": 2}, spec=search)
    assert "sweeps best" not in result.output, "no trial to rank"
    assert "sweeps best" not in run_ending_in("completed", {"completed": 1}).output


def test_a_search_whose_every_trial_was_pruned_says_it_found_no_configuration(run_ending_in):
    # it ended "completed (3 pruned)", exit 0, and a table of nothing in bold without a word
    search = ("name: tiny_cli\nkind: search\nprofile: smoke\nsearch:\n  space: {optim.lr: [0.001, 0.01]}\n"
              "  num_samples: 3\n  pruner: {type: threshold, lower: 1.01}\n")
    result = run_ending_in("completed", {"completed": 0, "pruned": 3}, spec=search)
    assert result.exit_code == 0, result.output
    assert ("No trial of the search completed (3 pruned): its table has no best configuration. Give its pruner "
            "(threshold) a lower bar or more warm-up steps") in result.output
    assert "No trial" not in run_ending_in("completed", {"completed": 1, "pruned": 2},
                                            spec=search).output


def test_a_run_that_trained_nothing_says_every_cell_was_already_done(run_ending_in):
    # a finished invocation run again read "completed in 10 s (2 completed; 2 already done before)", as if 2
    # cells had trained now
    result = run_ending_in("completed", {"completed": 2, "pruned": 0}, elapsed_s=10.0,
                            skipped_cells=2)
    assert result.exit_code == 0, result.output
    assert ("sweep tiny_cli completed in 10 s: nothing to train, all 2 cells were already done (2 completed; 2 "
            "already done before)") in result.output, result.output
    some_ran = run_ending_in("completed", {"completed": 2, "pruned": 0}, elapsed_s=10.0,
                              skipped_cells=1).output
    assert "sweep tiny_cli completed in 10 s (2 completed; 1 already done before)" in some_ran, some_ran


def test_an_interrupted_runs_last_line_calls_its_stopped_cells_interrupted_as_status_does(run_ending_in):
    """Ctrl-C while trials train: nothing is running any more, and `sweeps status` says "interrupted"."""
    result = run_ending_in("interrupted",
                            {"completed": 2, "pruned": 0, "failed": 0, "running": 2}, elapsed_s=54.0)
    assert result.exit_code == 1, result.output
    assert "sweep tiny_cli interrupted in 54 s (2 completed, 2 interrupted; 0 already done before)" in result.output
    assert "running" not in result.output


@pytest.mark.parametrize("stop_signal, exit_code", [(None, 1), (signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_run_stopped_by_a_signal_exits_as_the_shell_reports_that_signal(run_ending_in, here, stop_signal, exit_code):
    """A job script must tell a sweep it stopped (resume it) from one left unfinished by failures."""
    result = run_ending_in("interrupted",
                            {"completed": 1, "pruned": 0, "failed": 0, "running": 1}, stop_signal=stop_signal)
    assert result.exit_code == exit_code, result.output
    assert f"Continue with: sweeps resume {here / 'tiny_cli.yaml'}" in result.output


def test_a_completed_run_says_where_it_wrote_its_tables_and_figures(run_ending_in, here):
    # every completed sweep writes all its tables and figures to <storage>/<sweep>-<run>-report/; nothing said so
    report = here / "rr" / "tiny_cli-01234567-report"
    result = run_ending_in("completed",
                            {"completed": 2, "pruned": 0, "failed": 0, "running": 0}, report_dir=report)
    assert result.exit_code == 0, result.output
    assert f"Tables (LaTeX, Markdown, CSV, HTML, Parquet) and figures: {report}" in result.output


def test_status_with_an_unsupported_store_says_what_would_be_right(here):
    result = invoke("status", "--tracking-uri", "mlruns")
    assert result.exit_code == 1 and "Traceback" not in result.output, "exit 1, as table, plot and run"
    assert ("Error: tracking URI 'mlruns' is not supported: use sqlite:///PATH/mlflow.db "
            "or http://HOST:PORT") in result.output


@pytest.mark.parametrize("uri", ["sqlite://relative.db", "sqlite://", "file://{here}/mlruns"])
def test_a_tracking_uri_that_names_no_database_file_is_refused_naming_it_before_ray_starts(here, no_ray, monkeypatch,
                                                                                            uri):
    """sqlite://x.db (two slashes) and file: ended in a traceback; sqlite:// is an in-memory store of which
    every process has its own, so a whole `sweeps run` trained and recorded nothing."""
    uri = uri.format(here=here)
    monkeypatch.setenv("TRANSFER_CACHE", str(here / "cache"))
    (here / "tiny_cli.yaml").write_text(TINY)
    for args in (["status"], ["table", "tiny_cli"], ["run", "tiny_cli.yaml", "--storage", here / "rr"]):
        result = invoke(*args, "--tracking-uri", uri)
        assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.output
        assert f"tracking URI {uri!r}" in result.output and "sqlite:///" in result.output, result.output
    assert no_ray == []
    assert not (here / "mlruns").exists()


def test_an_empty_tracking_uri_is_refused_not_taken_for_the_default_store(here, no_ray, monkeypatch):
    """`--tracking-uri "$MLFLOW_URI"` with the variable unset fell back to sqlite:///mlflow.db here."""
    monkeypatch.setenv("TRANSFER_CACHE", str(here / "cache"))
    for args in (["status"], ["table", "mad_vs_dropout"], ["run", "mad_vs_dropout", "--storage", here / "rr"]):
        result = invoke(*args, "--tracking-uri", "")
        assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.output
        assert "--tracking-uri is empty: give sqlite:///PATH/mlflow.db or http://HOST:PORT" in result.output
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "")   # `export MLFLOW_TRACKING_URI=$UNSET`
    result = invoke("status")
    assert result.exit_code == 1 and "MLFLOW_TRACKING_URI is set but empty" in result.output, result.output
    assert no_ray == []
    assert not (here / "mlflow.db").exists()


RUN_EMPTY = ("--run is empty: give a parent run id or a unique prefix of one (`sweeps status tiny_cli` names the "
             "invocations), or leave --run out for the one run last")
NAME_EMPTY = ("NAME is empty: give the sweep's name, or its spec file as `sweeps run` took it (`sweeps status` names the "
              "sweeps recorded)")

SPEC_NAME_EMPTY = ("NAME is empty: give a shipped sweep's name (components, depth, drop_count, mad_rate, mad_vs_dropout, "
                   "msad_mode, msad_rate, num_lanets, tune; `sweeps list`) or the path to a .yaml spec file")


EMPTY_OPTIONS = [
    # `--run "$RUN"`, RUN unset: the invocation run last was shown (plotted, ranked) as if it were the one named
    (("status", "tiny_cli", "--run", ""), RUN_EMPTY),
    (("plot", "tiny_cli", "--run", ""), RUN_EMPTY),
    (("best", "tiny_cli", "--run", " "), RUN_EMPTY),
    # `sweeps status "$SWEEP"` showed every sweep; the others said to start a sweep named '' with `sweeps run ''`
    (("status", ""), NAME_EMPTY + ", or leave NAME out for every sweep"),
    (("table", " "), NAME_EMPTY), (("plot", ""), NAME_EMPTY), (("best", ""), NAME_EMPTY),
    # `sweeps run "$SWEEP"`, SWEEP unset: "unknown sweep ''", as if a sweep could be named so
    (("run", ""), SPEC_NAME_EMPTY), (("resume", " "), SPEC_NAME_EMPTY), (("show", ""), SPEC_NAME_EMPTY),
    # -o "$OUT", OUT unset: the figures went to figures/NAME, the spec to stdout
    (("plot", "tiny_cli", "-o", ""),
     "-o is empty: give a folder for the figures (e.g. -o figures/tiny_cli), or leave -o out for figures/tiny_cli"),
    (("best", "tiny_cli", "-o", ""),
     "-o is empty: give a file name (e.g. -o tiny_cli_best.yaml), or leave -o out to print the spec"),
    (("table", "tiny_cli", "--metric", ""), "--metric is empty: give a metric, e.g. sel_test_acc or best_test_acc"),
    # `--explain "$ROW"`, ROW unset: refused only after the runs were read, as "unknown row ''"
    (("table", "tiny_cli", "--explain", ""), "--explain is empty: give a row's label as the table prints it "
                                             "(`sweeps table tiny_cli` shows the rows), or leave --explain out for "
                                             "the whole table"),
    (("table", "tiny_cli", "--explain", " "), "--explain is empty"),
    # the spec's own profile, a local Ray instead of the cluster, ./ray_results: each ran without a word
    (("run", "tiny_cli.yaml", "--profile", ""),
     "--profile is empty: give a profile (smoke, quick, paper), or leave --profile out for the spec's own"),
    (("show", "tiny_cli.yaml", "--profile", " "), "--profile is empty: give a profile (smoke, quick, paper)"),
    (("run", "tiny_cli.yaml", "--address", ""), "--address is empty: give a Ray cluster's address (HOST:6379, or "
                                                "auto), or leave --address out for RAY_ADDRESS, else a local Ray"),
    (("resume", "tiny_cli.yaml", "--storage", ""),
     "--storage is empty: give a folder for Tune's results and checkpoints (on a cluster, one every node mounts), "
     "or leave --storage out for ./ray_results"),
    # listed, and with --clear emptied, the default cache
    (("cache", "--clear", "--cache-dir", ""), "--cache-dir is empty: give the cache's folder, or leave --cache-dir "
                                              "out for $TRANSFER_CACHE, else ~/.cache/transfer-sweeps"),
]


@pytest.mark.parametrize("args, message", EMPTY_OPTIONS, ids=[" ".join(a or "''" for a in args) for args, _ in EMPTY_OPTIONS])
def test_an_option_given_empty_is_refused_before_anything_is_read_not_taken_as_left_out(here, no_ray, monkeypatch,
                                                                                        args, message):
    cache = here / "cache"
    monkeypatch.setenv("TRANSFER_CACHE", str(cache))
    (cache / "synthetic-32px-0123").mkdir(parents=True)
    (cache / "synthetic-32px-0123" / "meta.json").write_text("{}")
    (here / "tiny_cli.yaml").write_text(TINY)
    result = invoke(*args)
    assert result.exit_code == 2 and "Traceback" not in result.output, result.output
    assert message in " ".join(result.output.split())
    assert no_ray == [] and sorted(p.name for p in here.iterdir()) == ["cache", "tiny_cli.yaml"], "nothing made"
    assert (cache / "synthetic-32px-0123" / "meta.json").exists()


def test_plot_output_that_is_a_file_dash_or_under_a_file_is_refused_before_any_run_is_read(here):
    # a file got click's bare "Directory 'x' is a file."; a path under one failed once the runs were read; -o - made
    # a folder named -, as `sweeps table -o -` (stdout) does not
    (here / "notes").write_text("mine")

    def refused(*args):
        result = invoke("plot", "tiny_cli", *args)
        assert result.exit_code == 2 and "Traceback" not in result.output, result.output
        return " ".join(result.output.split())

    assert "-o notes is a file: give a folder for the figures (e.g. -o figures/tiny_cli)" in refused("-o", "notes")
    assert ("-o notes/figs: notes is a file, not a folder, so nothing can be written under it; give a folder beside "
            "it, e.g. -o figs") in refused("-o", "notes/figs")
    assert "-o - : figures are files, not printed: give a folder for them (e.g. -o figures/tiny_cli)" in refused(
        "-o", "-")
    assert sorted(p.name for p in here.iterdir()) == ["notes"] and (here / "notes").read_text() == "mine"


def test_set_without_a_value_is_refused_not_taken_as_an_empty_string(here):
    # `--set data.cache_dir=$DIR`, DIR unset: a string key took '', which is the default cache
    result = invoke("show", "mad_vs_dropout", "--set", "data.cache_dir=")
    assert result.exit_code == 2, result.output
    assert ("Invalid value for --set: 'data.cache_dir=' gives data.cache_dir no value: give one "
            "(data.cache_dir=VALUE), or leave this --set out for the spec's") in " ".join(result.output.split())


def test_a_sqlite_tracking_uri_naming_a_folder_is_refused_at_once_naming_the_file_to_give(here, no_ray):
    """The folder instead of the database file in it: ~100 s of SQLAlchemy's retries, then its traceback."""
    (here / "results").mkdir()
    for args in (["status"], ["run", "mad_vs_dropout", "--storage", here / "rr"]):
        result = invoke(*args, "--tracking-uri", "sqlite:///results")
        assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.output
        assert (f"tracking URI 'sqlite:///{here.resolve() / 'results'}' names a folder, not a database file: "
                f"give the file in it, e.g. sqlite:///{here.resolve() / 'results'}/mlflow.db") in result.output
    assert no_ray == []


def test_a_sqlite_tracking_uri_naming_a_file_that_is_no_database_is_refused_naming_it(here, no_ray):
    """`--tracking-uri sqlite:///table2.tex` ended in SQLAlchemy's traceback ('file is not a database')."""
    (here / "table2.tex").write_text("\\begin{table}\n")
    for args in (["status"], ["table", "mad_vs_dropout"], ["run", "mad_vs_dropout", "--storage", here / "rr"]):
        result = invoke(*args, "--tracking-uri", "sqlite:///table2.tex")
        assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.output
        assert (f"tracking URI 'sqlite:///{here.resolve() / 'table2.tex'}' names a file that is not an SQLite "
                "database") in result.output, result.output
    assert (here / "table2.tex").read_text() == "\\begin{table}\n"
    assert no_ray == []


def test_a_sqlite_tracking_uri_naming_another_applications_database_is_refused_and_left_as_it_was(here, no_ray):
    """`--tracking-uri sqlite:///optuna.db` (an Optuna storage's URL has the same form): `sweeps status` added
    MLflow's tables to that database, and `sweeps run` recorded the sweep into it."""
    import optuna

    optuna.create_study(storage=f"sqlite:///{here / 'optuna.db'}", study_name="mine")   # it has alembic_version too
    before = (here / "optuna.db").read_bytes()
    for args in (["status"], ["table", "mad_vs_dropout"], ["run", "mad_vs_dropout", "--storage", here / "rr"]):
        result = invoke(*args, "--tracking-uri", "sqlite:///optuna.db")
        assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.output
        assert (f"tracking URI 'sqlite:///{here.resolve() / 'optuna.db'}' names an SQLite database that is not an "
                "MLflow store (it holds tables alembic_version, studies,") in result.output, result.output
    assert (here / "optuna.db").read_bytes() == before
    assert no_ray == []


@pytest.mark.parametrize("command", ["status", "table", "plot"])
def test_reading_commands_say_at_once_that_the_server_is_unreachable(here, command):
    # MLflow's own retries took minutes before anything was said, and then not this
    args = [command] + ([] if command == "status" else ["mad_vs_dropout"])
    result = invoke(*args, "--tracking-uri", "http://127.0.0.1:9")
    assert result.exit_code == 1, result.output
    assert "Error: MLflow tracking server http://127.0.0.1:9 is unreachable" in result.output


@pytest.mark.parametrize("command", ["status", "table", "plot"])
def test_an_unreachable_server_named_by_the_environment_is_said_to_come_from_it(here, monkeypatch, command):
    # a stale MLFLOW_TRACKING_URI showed as a URL the researcher never typed, with "pass --tracking-uri" alone
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")
    args = [command] + ([] if command == "status" else ["mad_vs_dropout"])
    result = invoke(*args)
    assert result.exit_code == 1, result.output
    assert ("Error: MLflow tracking server http://127.0.0.1:9 (from the environment variable MLFLOW_TRACKING_URI) "
            "is unreachable (no answer to /health): start it, or pass the --tracking-uri of the store the sweep "
            "recorded into (or unset MLFLOW_TRACKING_URI, or set it to that store)") in result.output, result.output
    given = invoke(*args, "--tracking-uri", "http://127.0.0.1:9")   # typed: nothing to explain
    assert "MLFLOW_TRACKING_URI" not in given.output, given.output


def test_a_missing_store_named_by_the_environment_is_said_to_come_from_it(here, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{here / 'old' / 'mlflow.db'}")
    result = invoke("status")
    assert result.exit_code == 1
    assert (f"Error: no MLflow store at sqlite:///{here / 'old' / 'mlflow.db'} (from the environment variable "
            "MLFLOW_TRACKING_URI): run a sweep here first, or pass --tracking-uri (or unset MLFLOW_TRACKING_URI, or "
            "set it to that store)") in result.output, result.output


def test_status_in_an_empty_folder_says_there_is_no_store(here):
    result = invoke("status")
    assert result.exit_code == 1
    assert (f"Error: no MLflow store at sqlite:///{here.resolve() / 'mlflow.db'}: run a sweep here first, "
            "or pass --tracking-uri") in result.output
    assert not (here / "mlflow.db").exists()


def test_status_shows_the_latest_invocation_and_names_the_earlier_ones_with_their_options(here, store):
    # a sweep run again with other --set has two invocations: status showed the newest alone, whichever the
    # user had just continued, and wrote its data sets without a space
    import time

    from mlflow.tracking import MlflowClient

    from sweeps import schema, tracking

    client = MlflowClient(store)
    experiment = client.create_experiment("tiny_cli", artifact_location=str(here / "artifacts"))
    earlier = tracking.start_parent(client, experiment, "tiny_cli", {
        schema.TAG_PROFILE: "smoke", schema.TAG_DATA: "synthetic", schema.TAG_OVERRIDES: '{"optim.epochs": 2}'})
    tracking.finish_parent(client, earlier, schema.STATUS_COMPLETED)
    time.sleep(0.01)
    latest = tracking.start_parent(client, experiment, "tiny_cli", {
        schema.TAG_PROFILE: "quick", schema.TAG_DATA: "synthetic,imagefolder", schema.TAG_OVERRIDES: "{}"})
    tracking.finish_parent(client, latest, schema.STATUS_INTERRUPTED)
    result = invoke("status", "tiny_cli", "--tracking-uri", store)
    assert result.exit_code == 0, result.output
    assert f"tiny_cli: interrupted (profile quick, data synthetic, imagefolder, run {latest})" in result.output
    assert (f"  other invocations: run {earlier[:8]} (completed): profile smoke, data synthetic, "
            "--set optim.epochs=2") in result.output


def test_status_tells_apart_invocations_of_the_same_names_by_their_data_folders(here, store):
    # RAF-DB from its official layout and from Kaggle's class folders: both read "profile smoke, data rafdb"
    from mlflow.tracking import MlflowClient

    from sweeps import schema, tracking

    client = MlflowClient(store)
    experiment = client.create_experiment("tiny_cli", artifact_location=str(here / "artifacts"))
    runs = []
    for root in ("/data/faces/rafdb/basic", "/data/kaggle/rafdb/DATASET", "/data/copy/rafdb/basic"):
        run = tracking.start_parent(client, experiment, "tiny_cli", {
            schema.TAG_PROFILE: "smoke", schema.TAG_DATA: "rafdb", schema.TAG_OVERRIDES: "{}"})
        client.log_param(run, "data_roots", f"rafdb={root}")
        tracking.finish_parent(client, run, schema.STATUS_COMPLETED)
        runs.append(run)
        time.sleep(0.01)
    output = invoke("status", "tiny_cli", "--tracking-uri", store).output
    assert (f"run {runs[1][:8]} (completed): profile smoke, data rafdb (rafdb=.../DATASET)" in output
            and f"run {runs[0][:8]} (completed): profile smoke, data rafdb (rafdb=.../faces/rafdb/basic)" in output), output
    # the one shown, as the others name it: its header read "(profile smoke, data rafdb, run ...)", as any of them
    assert output.startswith(f"tiny_cli: completed (profile smoke, data rafdb (rafdb=.../copy/rafdb/basic), "
                             f"run {runs[2]})"), output


def test_status_names_the_set_of_the_invocation_it_shows_as_of_the_others(here, store):
    # two invocations that differ in --set alone: the one shown read "(profile smoke, data synthetic, run ...)",
    # which said nothing of which of the two it was
    from mlflow.tracking import MlflowClient

    from sweeps import schema, tracking

    client = MlflowClient(store)
    experiment = client.create_experiment("tiny_cli", artifact_location=str(here / "artifacts"))
    earlier, latest = (tracking.start_parent(client, experiment, "tiny_cli", {
        schema.TAG_PROFILE: "smoke", schema.TAG_DATA: "synthetic", schema.TAG_OVERRIDES: overrides})
        for overrides in ('{"optim.epochs": 2}', '{"optim.epochs": 3}'))
    tracking.set_tags(client, latest, {schema.TAG_HEARTBEAT: f"{time.time() + 2:.0f}"})
    for parent in (earlier, latest):
        tracking.finish_parent(client, parent, schema.STATUS_COMPLETED)
    output = invoke("status", "tiny_cli", "--tracking-uri", store).output
    assert output.startswith(f"tiny_cli: completed (profile smoke, data synthetic, --set optim.epochs=3, "
                             f"run {latest})"), output
    assert f"  other invocations: run {earlier[:8]} (completed): profile smoke, data synthetic, " \
           "--set optim.epochs=2" in output, output


def test_an_invocation_continued_after_a_newer_one_started_is_the_one_status_and_table_show(here, store):
    # `sweeps run X --set optim.epochs=3` (a quick try, interrupted), then `sweeps resume X` of the paper's
    # invocation: table, plot, status and best showed the quick try, the invocation started last
    from mlflow.tracking import MlflowClient

    from sweeps import schema, tracking
    from sweeps.tables import load_sweep_runs

    client = MlflowClient(store)
    experiment = client.create_experiment("tiny_cli", artifact_location=str(here / "artifacts"))
    now = time.time()
    paper, quick = (tracking.start_parent(client, experiment, "tiny_cli", {
        schema.TAG_PROFILE: profile, schema.TAG_DATA: "synthetic", schema.TAG_OVERRIDES: "{}",
        schema.TAG_HEARTBEAT: f"{beat:.0f}"}) for profile, beat in (("paper", now - 3600), ("quick", now - 1800)))
    tracking.finish_parent(client, quick, schema.STATUS_INTERRUPTED)
    assert load_sweep_runs("tiny_cli", tracking_uri=store).parent.run_id == quick, "started last, run last"
    # continued (its driver's heartbeat); a second on, as the parents' start times are now
    tracking.set_tags(client, paper, {schema.TAG_HEARTBEAT: f"{time.time() + 2:.0f}"})
    assert load_sweep_runs("tiny_cli", tracking_uri=store).parent.run_id == paper
    output = invoke("status", "tiny_cli", "--tracking-uri", store).output
    assert output.startswith(f"tiny_cli: running (profile paper, data synthetic, run {paper})"), output
    assert f"  other invocations: run {quick[:8]} (interrupted): profile quick" in output, output


def test_status_run_shows_the_invocation_it_names_resolved_as_table_run_resolves_it(here, store):
    # `sweeps status NAME` showed the one run last alone: an earlier invocation `sweeps table --run` reads had
    # no way to its counts, failed cells or the command that continues it
    from mlflow.tracking import MlflowClient

    from sweeps import schema, tracking

    client = MlflowClient(store)
    experiment = client.create_experiment("tiny_cli", artifact_location=str(here / "artifacts"))
    by_first: dict[str, list[str]] = {}
    while not any(len(ids) > 1 for ids in by_first.values()):   # 17 at most: two share a first hex digit
        parent = tracking.start_parent(client, experiment, "tiny_cli", {
            schema.TAG_PROFILE: "smoke", schema.TAG_DATA: "synthetic",
            schema.TAG_OVERRIDES: json.dumps({"optim.epochs": len(by_first) + 1})})
        tracking.finish_parent(client, parent, schema.STATUS_INTERRUPTED)
        by_first.setdefault(parent[0], []).append(parent)
    latest = tracking.parents(client, experiment, max_results=1)[0].info.run_id
    earlier = next(p for ids in by_first.values() for p in ids if p != latest)
    shown = invoke("status", "tiny_cli", "--run", earlier[:8], "--tracking-uri", store)
    assert shown.exit_code == 0, shown.output
    assert shown.output.startswith("tiny_cli: interrupted (profile smoke, data synthetic, --set optim.epochs=")
    assert f"run {earlier})" in shown.output.splitlines()[0], shown.output
    assert f"run {latest[:8]} (interrupted)" in shown.output, "the one run last is among the others"
    (shared, _), = [(first, ids) for first, ids in by_first.items() if len(ids) > 1]
    # several invocations, none: the error `sweeps table --run` gives
    for prefix, error in ((shared, f"Error: run '{shared}' matches 2 invocations of sweep 'tiny_cli' (give more of "
                                   "its id): "),
                          ("ffff", "Error: run 'ffff' is not an invocation of sweep 'tiny_cli'; invocations, the one "
                                   "run last first: ")):
        result = invoke("status", "tiny_cli", "--run", prefix, "--tracking-uri", store)
        table = invoke("table", "tiny_cli", "--run", prefix, "--tracking-uri", store)
        assert result.exit_code == table.exit_code == 1 and result.output == table.output, result.output
        assert result.output.startswith(error), result.output
    unnamed = invoke("status", "--run", earlier[:8], "--tracking-uri", store)
    assert unnamed.exit_code == 2 and "--run picks an invocation of one sweep: give the sweep's NAME" in unnamed.output


def test_status_names_the_failed_cells_and_the_error_each_ended_in(here, store):
    from mlflow.tracking import MlflowClient

    from sweeps import schema, tracking

    client = MlflowClient(store)
    experiment = client.create_experiment("tiny_cli", artifact_location=str(here / "artifacts"))
    parent = tracking.start_parent(client, experiment, "tiny_cli", {schema.TAG_PROFILE: "smoke"})
    tracking.finish_parent(client, parent, schema.STATUS_FAILED)
    errors = {"MAD": "CheckpointError: IR-50 checkpoint '/x.pth' could not be read: " + "y" * 300,
              "No dropping": None, "A": "StorageError: not on this node", "B": "E: b", "C": "E: c"}
    for arm, error in errors.items():
        run = client.create_run(experiment, run_name=f"tiny_cli/{arm}/seed0", tags={
            schema.TAG_PARENT: parent, schema.TAG_CELL_ID: arm, schema.TAG_STATUS: schema.STATUS_FAILED,
            **({schema.TAG_ERROR: error} if error else {})})
        client.set_terminated(run.info.run_id, "FAILED")
    result = invoke("status", "tiny_cli", "--tracking-uri", store)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[1] == "  0 completed, 0 interrupted, 0 pruned, 5 failed"
    assert lines[2:] == [
        "  failed: tiny_cli/A/seed0: StorageError: not on this node",
        "  failed: tiny_cli/B/seed0: E: b",
        "  failed: tiny_cli/C/seed0: E: c",
        "  and 2 more failed (tag sweeps.error of their MLflow runs)"]
    for arm in "ABC":
        client.delete_run(client.search_runs([experiment], f"tags.`{schema.TAG_CELL_ID}` = '{arm}'")[0].info.run_id)
    lines = invoke("status", "tiny_cli", "--tracking-uri", store).output.splitlines()
    assert lines[2] == f"  failed: tiny_cli/MAD/seed0: {errors['MAD'][:197]}..."
    assert lines[3] == ("  failed: tiny_cli/No dropping/seed0: no error recorded (see the trial's error.txt in "
                        "Tune's storage)")


def test_status_says_which_packages_an_invocations_cells_trained_under_several_versions_of(here, store):
    # sweeps.versions named the first run's versions alone, sweeps.package_version the latest run's: a table
    # continued under another torch did not say its cells trained under two
    from mlflow.tracking import MlflowClient

    from sweeps import schema, tracking

    client = MlflowClient(store)
    experiment = client.create_experiment("tiny_cli", artifact_location=str(here / "artifacts"))
    versions = json.dumps({"python": "3.12.1", "torch": "2.14.1 then 2.15.0", "ray": "2.60.0"})
    parent = tracking.start_parent(client, experiment, "tiny_cli", {schema.TAG_PROFILE: "smoke",
                                                                    schema.TAG_VERSIONS: versions})
    tracking.finish_parent(client, parent, schema.STATUS_COMPLETED)
    result = invoke("status", "tiny_cli", "--tracking-uri", store)
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[2] == "  its cells trained under several versions: torch 2.14.1 then 2.15.0"
    client.set_tag(parent, schema.TAG_VERSIONS, json.dumps({"torch": "2.14.1"}))
    assert "several versions" not in invoke("status", "tiny_cli", "--tracking-uri", store).output
    client.set_tag(parent, schema.TAG_GIT_COMMIT, "0123abc then fe11ed0-dirty")   # and under another commit
    assert invoke("status", "tiny_cli", "--tracking-uri", store).output.splitlines()[2] == \
        "  its cells trained under several versions: git commit 0123abc then fe11ed0-dirty"


def test_status_of_a_sweep_whose_run_stopped_before_starting_one_says_so(here, store):
    # `sweeps run` makes the experiment before it checks the cluster's resources: status printed nothing
    from mlflow.tracking import MlflowClient

    MlflowClient(store).create_experiment("tiny_cli", artifact_location=str(here / "artifacts"))
    named = invoke("status", "tiny_cli", "--tracking-uri", store)
    assert named.exit_code == 1
    assert (f"Error: no run of sweep 'tiny_cli' in {store} yet: the last `sweeps run tiny_cli` stopped before it "
            "started one") in named.output
    every = invoke("status", "--tracking-uri", store)
    assert every.exit_code == 1 and f"Error: no sweep has a run in {store} yet" in every.output


def test_status_of_a_sweep_without_a_run_on_a_server_does_not_say_the_last_run_stopped(here, store, monkeypatch):
    # a server's sweep is run from other hosts and by other users too, whose runs starting (the experiment made,
    # the parent run not yet) no lock file here tells of: status said the last `sweeps run` had stopped before it
    # started one, of a run starting elsewhere that moment
    from mlflow.tracking import MlflowClient

    from sweeps import tracking

    server = "http://127.0.0.1:9/"   # no server: its store is the sqlite one, read through a client of it
    monkeypatch.setattr(tracking, "reachable", lambda uri, timeout=2.0: True)
    monkeypatch.setattr(tracking, "client_for", lambda uri: MlflowClient(store))
    MlflowClient(store).create_experiment("tiny_cli", artifact_location=str(here / "artifacts"))
    named = invoke("status", "tiny_cli", "--tracking-uri", server)
    assert named.exit_code == 1, named.output   # nothing to show: a script waiting for the run goes on waiting
    assert "stopped before it started one" not in named.output
    assert (f"Error: no run of sweep 'tiny_cli' in {server} yet (no parent run): no `sweeps run tiny_cli` of this "
            "user's on this host is starting it; one on another host, or another user's, may be (its run is made "
            "once its data are decoded and Ray has started), or the last one stopped before it made one"
            ) in named.output


def test_status_of_a_sweep_whose_run_is_starting_says_so_not_that_it_stopped(here, store):
    # `sweeps run` makes the experiment at once but its parent run only once its data are decoded and Ray has
    # started (tens of seconds): status said meanwhile that the run had stopped before it started one (exit 1)
    from mlflow.tracking import MlflowClient

    from sweeps import tracking
    from sweeps.runner import RunOptions, invocation_claimed, prepare

    MlflowClient(store).create_experiment("tiny_cli", artifact_location=str(here / "artifacts"))
    (here / "tiny_cli.yaml").write_text(TINY)
    prepared = prepare("tiny_cli.yaml", RunOptions(tracking_uri=store, storage=str(here / "rr")))
    assert prepared.tracking_uri == tracking.resolve_tracking_uri(store)
    with invocation_claimed(prepared):   # as a `sweeps run tiny_cli.yaml` holds it from its start
        for args in (("tiny_cli",), (), ("tiny_cli", "--run", "0123abcd")):   # an id of none there yet, too
            result = invoke("status", *args, "--tracking-uri", store)
            assert result.exit_code == 0, result.output
            assert result.output.startswith(f"tiny_cli: starting (`sweeps run` process {os.getpid()} on this host: "
                                            "its MLflow run, with its cells, is made once its data are decoded")
        for command in ("table", "plot"):   # which have nothing to show yet: an error, saying why
            result = invoke(command, "tiny_cli", "--tracking-uri", store)
            assert result.exit_code == 1, result.output
            assert (f"has no recorded invocation (no parent run) in {prepared.tracking_uri} yet: `sweeps run` process "
                    f"{os.getpid()} on this host is starting it") in result.output
    assert invoke("status", "tiny_cli", "--tracking-uri", store).exit_code == 1   # stopped before it made one


def test_status_does_not_take_a_process_that_got_a_killed_runs_pid_for_that_run_starting(here, store):
    # a driver killed outright leaves its lock file; once the system gives its pid to another process (any: a
    # shell, a browser), status said the sweep was starting for as long as that process lived
    from sweeps import tracking
    from sweeps.host_locks import lock_folder

    (here / "tiny_cli.yaml").write_text(TINY)
    killed = lock_folder() / "invocation-0123456789abcdef.lock"
    pid, uri, name = os.getpid(), tracking.resolve_tracking_uri(store), "tiny_cli"
    start = tracking._process_start(pid)   # as the sweeps.driver tag records a driver's start
    killed.write_text(f"{pid}\n{uri}\n{name}\n{int(start) - 1 if start.isdigit() else 'ps:earlier'}\n")
    try:   # this pid, as the killed run's, but this process started otherwise than it
        result = invoke("status", "--tracking-uri", store)
        assert result.exit_code == 1 and "no sweep has a run" in result.output, result.output
        killed.write_text(f"{pid}\n{uri}\n{name}\n")   # written by an earlier version, without the start
        assert invoke("status", "--tracking-uri", store).output.startswith("tiny_cli: starting")
    finally:
        killed.unlink()


def test_status_finds_a_run_starting_into_the_same_store_named_otherwise(here, store):
    # the lock file names the store as the run was given it: an absolute path through a link (or with a //) is
    # kept as given, so a status given the store as a relative path found nothing starting
    from sweeps.runner import RunOptions, invocation_claimed, prepare

    (here / "tiny_cli.yaml").write_text(TINY)
    (here / "via").symlink_to(here)
    prepared = prepare("tiny_cli.yaml", RunOptions(tracking_uri=f"sqlite:///{here}/via/mlflow.db",
                                                   storage=str(here / "rr")))
    with invocation_claimed(prepared):
        for given in (store, "sqlite:///mlflow.db"):
            result = invoke("status", "--tracking-uri", given)
            assert result.exit_code == 0 and result.output.startswith("tiny_cli: starting"), result.output


def test_status_of_a_sweep_whose_run_is_starting_before_its_experiment_is_made_says_so(here, store):
    # the run makes its experiment as it begins, a request away from a server: "no sweep has a run in ... yet" (exit 1)
    from sweeps.runner import RunOptions, invocation_claimed, prepare

    (here / "tiny_cli.yaml").write_text(TINY)
    prepared = prepare("tiny_cli.yaml", RunOptions(tracking_uri=store, storage=str(here / "rr")))
    with invocation_claimed(prepared):
        for args in (("tiny_cli",), ()):
            result = invoke("status", *args, "--tracking-uri", store)
            assert result.exit_code == 0, result.output
            assert result.output == (f"tiny_cli: starting (`sweeps run` process {os.getpid()} on this host: its "
                                     "MLflow run, with its cells, is made once its data are decoded and Ray has "
                                     "started)\n")
        for command in ("table", "plot"):   # not told to start it (a second run of it, refused)
            result = invoke(command, "tiny_cli", "--tracking-uri", store)
            assert result.exit_code == 1 and "start it with" not in result.output, result.output
            assert f"`sweeps run` process {os.getpid()} on this host is starting it" in result.output
    assert invoke("status", "--tracking-uri", store).exit_code == 1


def test_status_of_a_sweep_with_an_invocation_recorded_says_when_a_run_of_it_is_starting(here, store):
    # while a new invocation decoded its data and started Ray, status showed the earlier one as if nothing ran
    from mlflow.tracking import MlflowClient

    from sweeps import schema, tracking
    from sweeps.runner import RunOptions, invocation_claimed, prepare

    client = MlflowClient(store)
    experiment = client.create_experiment("tiny_cli", artifact_location=str(here / "artifacts"))
    earlier = tracking.start_parent(client, experiment, "tiny_cli", {schema.TAG_PROFILE: "smoke"})
    tracking.finish_parent(client, earlier, schema.STATUS_COMPLETED)
    (here / "tiny_cli.yaml").write_text(TINY)
    prepared = prepare("tiny_cli.yaml", RunOptions(tracking_uri=store, storage=str(here / "rr"), fresh=True))
    starting = (f"  a `sweeps run` of it is starting (process {os.getpid()} on this host): its invocation is shown "
                "once its data are decoded and Ray has started")
    with invocation_claimed(prepared):
        lines = invoke("status", "tiny_cli", "--tracking-uri", store).output.splitlines()
        assert lines[0].startswith("tiny_cli: completed (profile smoke") and lines[2] == starting
        # once it has made its parent run, that one is shown, running, and nothing is said to be starting
        tracking.start_parent(client, experiment, "tiny_cli", {schema.TAG_PROFILE: "smoke",
                                                               schema.TAG_DRIVER: tracking.driver_identity()})
        lines = invoke("status", "tiny_cli", "--tracking-uri", store).output.splitlines()
        assert lines[0].startswith("tiny_cli: running (profile smoke") and starting not in lines


GONE_DRIVER = '{"host": "%s", "pid": 999999999, "start": null}'   # a pid no process has


SILENT_REMOTE_DRIVER = '{"host": "head-node", "pid": 4242, "start": null}'   # its heartbeat 20 min old


@pytest.mark.parametrize("parent_status, driver, shown, line", [
    ("running", None, "running", "1 completed, 1 running, 0 pruned, 0 failed"),
    ("interrupted", None, "interrupted", "1 completed, 1 interrupted, 0 pruned, 0 failed"),   # nobody trains it
    ("running", GONE_DRIVER, "interrupted (stopped without notice: its driver process on this host is gone)",
     "1 completed, 1 interrupted, 0 pruned, 0 failed"),                                    # e.g. a SIGKILL
    ("running", SILENT_REMOTE_DRIVER, "interrupted (stopped without notice, it seems: its driver, process 4242 on "
     "head-node (last sign of life 20 min ago), has gone silent)", "1 completed, 1 interrupted, 0 pruned, 0 failed"),
])
def test_status_calls_a_cell_its_stopped_invocation_left_running_interrupted(here, store, parent_status, driver,
                                                                             shown, line):
    import socket
    import time

    from mlflow.tracking import MlflowClient

    from sweeps import schema

    client = MlflowClient(store)
    experiment = client.create_experiment("tiny_cli", artifact_location=str(here / "artifacts"))
    tags = {schema.TAG_ROLE: schema.ROLE_PARENT, schema.TAG_STATUS: parent_status}
    if driver:
        tags[schema.TAG_DRIVER] = driver.replace("%s", socket.gethostname())
        tags[schema.TAG_HEARTBEAT] = f"{time.time() - 1200:.0f}"
    parent = client.create_run(experiment, tags=tags).info.run_id
    for cell, status in (("a", "completed"), ("b", "running")):
        client.create_run(experiment, tags={schema.TAG_PARENT: parent, schema.TAG_ROLE: schema.ROLE_CELL,
                                            schema.TAG_CELL_ID: cell, schema.TAG_STATUS: status})
    result = invoke("status", "tiny_cli", "--tracking-uri", store)
    assert result.exit_code == 0, result.output
    assert f"tiny_cli: {shown} (profile" in result.output and f"  {line}\n" in result.output, result.output


def test_status_ends_in_mlflow_the_runs_a_driver_killed_without_a_word_left_running(here, store):
    # the MLflow UI showed the parent and its cells running for ever after a SIGKILL, while status said interrupted
    import socket

    from mlflow.tracking import MlflowClient

    from sweeps import schema

    client = MlflowClient(store)
    experiment = client.create_experiment("tiny_cli", artifact_location=str(here / "artifacts"))
    parent = client.create_run(experiment, tags={
        schema.TAG_ROLE: schema.ROLE_PARENT, schema.TAG_STATUS: "running",
        schema.TAG_DRIVER: GONE_DRIVER.replace("%s", socket.gethostname())}).info.run_id
    cell = client.create_run(experiment, tags={schema.TAG_PARENT: parent, schema.TAG_ROLE: schema.ROLE_CELL,
                                               schema.TAG_CELL_ID: "b", schema.TAG_STATUS: "running"}).info.run_id
    result = invoke("status", "tiny_cli", "--tracking-uri", store)
    assert result.exit_code == 0, result.output
    assert "tiny_cli: interrupted (stopped without notice: its driver process on this host is gone)" in result.output
    assert client.get_run(parent).info.status == client.get_run(cell).info.status == "KILLED"
    assert "  0 completed, 1 interrupted, 0 pruned, 0 failed" in invoke("status", "tiny_cli", "--tracking-uri",
                                                                         store).output, "read as before"


def test_status_of_a_store_it_cannot_write_shows_the_progress_and_leaves_the_runs_as_they_are(here, store,
                                                                                            monkeypatch):
    # a copy on a read-only disk: status is a reader first
    import socket

    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    from sweeps import schema, tracking

    client = MlflowClient(store)
    experiment = client.create_experiment("tiny_cli", artifact_location=str(here / "artifacts"))
    parent = client.create_run(experiment, tags={
        schema.TAG_ROLE: schema.ROLE_PARENT, schema.TAG_STATUS: "running",
        schema.TAG_DRIVER: GONE_DRIVER.replace("%s", socket.gethostname())}).info.run_id

    def read_only(*args, **kwargs):
        raise MlflowException("(sqlite3.OperationalError) attempt to write a readonly database")

    monkeypatch.setattr(tracking, "end_child_run", read_only)
    result = invoke("status", "tiny_cli", "--tracking-uri", store)
    assert result.exit_code == 0, result.output
    assert "tiny_cli: interrupted (stopped without notice" in result.output
    assert client.get_run(parent).info.status == "RUNNING"


@pytest.mark.parametrize("plan, planned", [({"cells": [{"cell_id": "a"}, {"cell_id": "b"}]}, (2, {"a", "b"})),
                                            ({"cells": [], "search": {"num_samples": 16}}, (16, None)),
                                            ({"cells": []}, (None, None))])
def test_status_counts_a_searchs_trials_against_its_planned_number_as_a_tables_cells(tmp_path, plan, planned):
    # a search's plan has no cells: its status said "3 completed, 2 running, ..." of an unknown number of trials
    from sweeps.cli import _planned_cells

    class Client:
        def download_artifacts(self, run_id, path, dst):
            (Path(dst) / path).write_text(json.dumps(plan))
            return str(Path(dst) / path)

    assert _planned_cells(Client(), "r", {}) == planned


def test_status_of_a_copy_of_a_servers_database_counts_against_the_planned_number_its_tag_keeps():
    # plan.json is an artifact, served by the server alone: a copy of its database said no "of N planned"
    from sweeps import schema
    from sweeps.cli import _planned_cells

    class DatabaseCopy:
        def download_artifacts(self, run_id, path, dst):
            raise OSError("mlflow-artifacts:/ needs a server")

    assert _planned_cells(DatabaseCopy(), "r", {schema.TAG_PLANNED: "15"}) == (15, None)
    assert _planned_cells(DatabaseCopy(), "r", {}) == (None, None), "recorded before the tag: unknown"


def _status_of_recorded(store, artifacts: str, parent_tags: dict, plan: dict | None, cells: dict,
                        status: str = "completed") -> str:
    """`sweeps status` of an invocation recorded by hand (completed, or `status`): its parent's tags and plan.json
    (None: none, as a copy of a server's database reads it), and its cells' runs, cell id -> {tag: value}."""
    from mlflow.tracking import MlflowClient

    from sweeps import schema, tracking

    client = MlflowClient(store)
    known = client.get_experiment_by_name("tiny_cli")   # a second invocation: the latest is the one shown
    experiment = known.experiment_id if known else client.create_experiment("tiny_cli", artifact_location=artifacts)
    parent = tracking.start_parent(client, experiment, "tiny_cli", {schema.TAG_PROFILE: "smoke", **parent_tags})
    if plan is not None:
        tracking.log_json_artifact(client, parent, schema.ARTIFACT_PLAN, plan)
    tracking.finish_parent(client, parent, status)
    for cell, tags in cells.items():
        client.create_run(experiment, tags={schema.TAG_PARENT: parent, schema.TAG_ROLE: schema.ROLE_CELL,
                                            schema.TAG_CELL_ID: cell, **tags})
    result = invoke("status", "tiny_cli", "--tracking-uri", store)
    assert result.exit_code == 0, result.output
    return result.output


def test_status_of_a_database_copy_counts_the_seeds_of_its_latest_run_against_the_tags_planned_number(here, store):
    # without plan.json a table continued with fewer --seeds read "4 completed of 2 planned"
    from sweeps import schema

    output = _status_of_recorded(
        store, "mlflow-artifacts:/1",   # not served
        {schema.TAG_KIND: "table", schema.TAG_SEEDS: "[0]", schema.TAG_PLANNED: "2"}, None,
        {cell: {schema.TAG_SEED: cell[1], schema.TAG_STATUS: "completed"} for cell in ("a0", "b0", "a1", "b1")})
    assert "  2 completed, 0 running, 0 pruned, 0 failed of 2 planned (2 runs of cells its latest run left out" \
        in output, output


def test_status_of_a_search_asked_for_fewer_samples_than_ran_says_so_not_5_of_3_planned(here, store):
    from sweeps import schema

    output = _status_of_recorded(store, str(here / "artifacts"), {schema.TAG_KIND: "search"},
                                 {"cells": [], "search": {"num_samples": 3}},
                                 {f"t{trial}": {schema.TAG_STATUS: status}
                                  for trial, status in enumerate(["completed"] * 4 + ["pruned"])})
    assert "  4 completed, 0 running, 1 pruned, 0 failed (num_samples lowered to 3 after they ran)\n" in output, output


def test_status_of_a_completed_search_counts_the_trials_it_ended_without_as_interrupted(here, store):
    # a search whose num_samples was lowered to the trials ended tags those it had begun interrupted as it completes
    from sweeps import schema

    output = _status_of_recorded(store, str(here / "artifacts"), {schema.TAG_KIND: "search"},
                                 {"cells": [], "search": {"num_samples": 2}},
                                 {f"t{trial}": {schema.TAG_STATUS: status}
                                  for trial, status in enumerate(["completed", "pruned", "interrupted"])})
    assert "  1 completed, 0 running, 1 interrupted, 1 pruned, 0 failed of 2 planned\n" in output, output


def test_status_counts_only_the_cells_its_latest_run_planned_and_says_how_many_it_left_out(here, store):
    # continued with fewer --seeds: "4 completed of 2 planned"
    from sweeps import schema

    output = _status_of_recorded(store, str(here / "artifacts"), {},
                                 {"cells": [{"cell_id": "a0"}, {"cell_id": "b0"}]},
                                 {cell: {schema.TAG_STATUS: "completed"} for cell in ("a0", "b0", "a1", "b1")})
    assert ("  2 completed, 0 running, 0 pruned, 0 failed of 2 planned (2 runs of cells its latest run left out, "
            "as seeds dropped with fewer --seeds, not counted)") in output


def test_status_of_an_unfinished_invocation_prints_the_command_that_continues_it_as_it_was_run(here, store):
    # a driver killed with its terminal (ssh dropped) never printed "Continue with:"; status named the profile,
    # data and --set, and the resources the run was given were lost
    from sweeps import schema
    from sweeps.cli import _run_options, resume
    from sweeps.invocations import command_tag
    from sweeps.runner import RunOptions, prepare

    from PIL import Image

    (here / "tiny_cli.yaml").write_text(TINY)
    for split, label in ((s, c) for s in ("train", "test") for c in ("a", "b")):
        (here / "faces" / split / label).mkdir(parents=True)
        Image.new("RGB", (8, 8), (10, 20, 30)).save(here / "faces" / split / label / "0.png")
    options = RunOptions(seeds=2, data=("synthetic", f"imagefolder={here / 'faces'}"), overrides={
        "optim.epochs": 3, "optim.lr": 1e-4, "optim.milestones": [2, 3], "model.stem": "small"},
        address="127.0.0.1:6379",
        max_concurrent=3, gpus_per_trial=0.25, storage=str(here / "rr"), max_failures=0, accept_changed_data=True)
    recorded = command_tag(prepare("tiny_cli.yaml", options), data_changed=True)   # a change accepted
    lines = {}
    for status in ("completed", "failed", "interrupted"):
        output = _status_of_recorded(store, str(here / "artifacts"), {schema.TAG_KIND: "table", **recorded},
                                     {"cells": []}, {}, status=status)
        lines[status] = [line for line in output.splitlines() if line.startswith("  continue with: ")]
    assert lines["completed"] == [] and len(lines["failed"]) == 1 and lines["interrupted"] == lines["failed"]
    words = shlex.split(lines["interrupted"][0][len("  continue with: "):])
    # folders absolute: the line works from any folder (a spec file's too)
    assert words[:3] == ["sweeps", "resume", str(here / "tiny_cli.yaml")] and words[words.index("--tracking-uri") + 1] == store, words
    # the words are the options the run had: `sweeps resume` parses them back into the same RunOptions
    given = resume.make_context("resume", words[2:]).params
    assert _run_options(**given) == RunOptions(**{**options.__dict__, "tracking_uri": store}), given


@pytest.mark.parametrize("value", ["mad", "a b", "3", "true", "null", "[1]", "NaN", "None", 3, 1e-4, True, None,
                                   [1, 2], ["a", "b"]])
def test_a_set_value_printed_in_a_command_reads_back_as_the_same_value(value):
    # a string that reads as JSON ('"3"') came back as the number 3: another invocation, found by nothing
    from sweeps.invocations import set_text
    from transfer_core.config import parse_value

    assert parse_value(set_text(value)) == value and type(parse_value(set_text(value))) is type(value)


def test_a_command_names_the_spec_file_and_the_store_so_that_it_works_from_any_folder(here, monkeypatch):
    from sweeps.invocations import options_record
    from sweeps.runner import RunOptions
    from sweeps.tracking import resolve_tracking_uri, tracking_uri_to_repeat

    (here / "specs").mkdir()
    (here / "specs" / "mine").write_text(TINY)   # `sweeps run specs/mine`: a file, as a '/' says
    assert options_record("specs/mine", RunOptions(), ())["name"] == str(here / "specs" / "mine")
    assert options_record("mad_vs_dropout", RunOptions(), ())["name"] == "mad_vs_dropout"
    # the default store is ./mlflow.db: repeated, absolute; one MLFLOW_TRACKING_URI names is the shell's too
    default = resolve_tracking_uri(None)
    assert tracking_uri_to_repeat(None, default) == f"sqlite:///{here / 'mlflow.db'}"
    assert tracking_uri_to_repeat("sqlite:///x.db", resolve_tracking_uri("sqlite:///x.db")) == f"sqlite:///{here / 'x.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5000")
    assert tracking_uri_to_repeat(None, resolve_tracking_uri(None)) is None
    # --accept-changed-data is passed on only where a change was accepted
    assert "accept_changed_data" not in options_record("x", RunOptions(accept_changed_data=True), (), data_changed=False)


def test_status_of_an_invocation_recorded_without_its_command_prints_none(here, store):
    from sweeps import schema

    output = _status_of_recorded(store, str(here / "artifacts"), {schema.TAG_KIND: "table"}, {"cells": []}, {},
                                 status="interrupted")
    assert "interrupted" in output and "continue with" not in output, output


def test_table_and_status_of_a_spec_file_not_here_say_so_not_start_it(here, store):
    # from another folder: "no sweep 'my.yaml' recorded (start it with `sweeps run my.yaml`)", a file not there
    for command in ("table", "status", "plot"):
        result = invoke(command, "my.yaml", "--tracking-uri", store)
        assert result.exit_code == 1
        assert f"no spec file my.yaml in {here}: give its path as `sweeps run` took it, or the sweep's name" \
            in result.output, result.output


def test_reading_commands_of_a_spec_file_never_run_say_to_start_it_with_that_file(here, store):
    # they said `sweeps run my_search`: a spec file's name is no shipped sweep, and that command is refused
    (here / "mine.yaml").write_text(load("tune").text.replace("name: tune", "name: my_search"))
    for command in ("status", "table", "plot", "best"):
        result = invoke(command, "mine.yaml", "--tracking-uri", store)
        assert result.exit_code == 1, result.output
        assert (f"Error: no sweep 'my_search' recorded in {store} (start it with `sweeps run mine.yaml "
                f"--tracking-uri {store}`)" in result.output), (command, result.output)


def test_table_from_a_copy_of_a_servers_database_says_its_artifacts_need_that_server(here, store):
    # docs/cluster.md's offline tables: "has no spec.yaml artifact; it was not recorded by `sweeps run`"
    from mlflow.tracking import MlflowClient

    from sweeps import schema, tracking

    client = MlflowClient(store)
    experiment = client.create_experiment("tiny_cli", artifact_location="mlflow-artifacts:/1")
    parent = tracking.start_parent(client, experiment, "tiny_cli", {schema.TAG_PROFILE: "smoke"})
    client.create_run(experiment, tags={schema.TAG_PARENT: parent, schema.TAG_ROLE: schema.ROLE_CELL,
                                        schema.TAG_CELL_ID: "c", schema.TAG_STATUS: "completed", schema.TAG_ARM: "A",
                                        schema.TAG_DATA: "synthetic", schema.TAG_SEED: "0"})
    result = invoke("table", "tiny_cli", "--tracking-uri", store)
    assert result.exit_code == 1
    assert (f"(mlflow-artifacts:/1/{parent}/artifacts) are served by the MLflow server that recorded them, and "
            f"{store} is a database, not that server") in result.output, result.output


def test_table_of_a_store_whose_artifacts_folder_is_not_here_names_that_folder_not_an_unrecorded_spec(here, store):
    # a sqlite store moved or copied from another machine (its runs keep the absolute path of the mlartifacts/ beside
    # it), or a server started with --no-serve-artifacts read from another machine: the spec.yaml is there, elsewhere
    from mlflow.tracking import MlflowClient

    from sweeps import schema, tracking

    gone = here / "recorded-elsewhere" / "mlartifacts" / "tiny_cli"
    client = MlflowClient(store)
    experiment = client.create_experiment("tiny_cli", artifact_location=gone.as_uri())
    parent = tracking.start_parent(client, experiment, "tiny_cli", {schema.TAG_PROFILE: "smoke"})
    client.create_run(experiment, tags={schema.TAG_PARENT: parent, schema.TAG_ROLE: schema.ROLE_CELL,
                                        schema.TAG_CELL_ID: "c", schema.TAG_STATUS: "completed", schema.TAG_ARM: "A",
                                        schema.TAG_DATA: "synthetic", schema.TAG_SEED: "0"})
    for command in ("table", "plot"):
        result = invoke(command, "tiny_cli", "--tracking-uri", store)
        assert result.exit_code == 1, result.output
        assert str(gone) in result.output and "not on this machine" in result.output, result.output
        assert "not recorded by `sweeps run`" not in result.output, result.output


def test_folder_not_here_is_a_missing_local_artifact_folder_only():
    from sweeps.report import folder_not_here

    assert folder_not_here("/nonexistent/art/1") == Path("/nonexistent/art/1")   # --no-serve-artifacts' bare path
    assert folder_not_here("file:///nonexistent/art/1") == Path("/nonexistent/art/1")
    assert folder_not_here(Path.cwd().as_uri()) is None and folder_not_here(str(Path.cwd())) is None
    for served in ("mlflow-artifacts:/1", "s3://bucket/art/1", "gs://bucket/1", ""):
        assert folder_not_here(served) is None


def test_table_from_a_copy_of_a_database_without_its_artifacts_folder_names_it_and_where_to_copy_it(here, store):
    # "has no spec.yaml artifact; it was not recorded by `sweeps run`": the store rsynced without mlartifacts/
    from mlflow.tracking import MlflowClient

    from sweeps import schema, tracking

    elsewhere = (here / "cluster" / "mlartifacts" / "tiny_cli").as_uri()
    client = MlflowClient(store)
    experiment = client.create_experiment("tiny_cli", artifact_location=elsewhere)
    parent = tracking.start_parent(client, experiment, "tiny_cli", {schema.TAG_PROFILE: "smoke"})
    result = invoke("table", "tiny_cli", "--tracking-uri", store)
    assert result.exit_code == 1
    assert (f"Error: the artifacts of run {parent} (its spec, plan, models and report) are recorded in "
            f"{here / 'cluster' / 'mlartifacts' / 'tiny_cli' / parent / 'artifacts'}, which is not on this machine "
            f"(deleted, moved, or on a disk not mounted here). If the store was moved or copied, copy its artifacts "
            f"folder {here / 'cluster' / 'mlartifacts'} to {here / 'mlartifacts'}") in result.output, result.output


def test_table_of_an_unrecorded_sweep_says_which_sweeps_are_recorded(here, new_store):
    uri = new_store(here / "mlflow.db")            # an empty store
    result = invoke("table", "depth", "--tracking-uri", uri)   # a shipped sweep not run yet
    assert result.exit_code == 1
    assert (f"Error: no sweep 'depth' recorded in {uri} (start it with `sweeps run depth --tracking-uri {uri}`); "
            "recorded: none" in result.output)


SHIPPED = "components, depth, drop_count, mad_rate, mad_vs_dropout, msad_mode, msad_rate, num_lanets, tune"


@pytest.mark.parametrize("command", ["status", "table", "plot", "best"])
def test_reading_commands_of_a_name_that_is_no_sweep_say_so_with_the_known_names_not_to_run_it(here, new_store,
                                                                                               command):
    # "no sweep 'nosuch' recorded (start it with `sweeps run nosuch`)", which `sweeps run` refuses as an unknown sweep
    from mlflow.tracking import MlflowClient

    uri = new_store(here / "mlflow.db")
    MlflowClient(uri).create_experiment("my_search")   # a spec file's sweep, recorded
    result = invoke(command, "nosuch", "--tracking-uri", uri)
    assert result.exit_code == 1 and "sweeps run" not in result.output, result.output
    assert (f"Error: no sweep 'nosuch' recorded in {uri}, and 'nosuch' is no sweep: neither a shipped sweep nor a spec "
            f"file. Shipped: {SHIPPED} (or give a spec file's path, *.yaml); recorded: my_search"
            in " ".join(result.output.split())), result.output
    close = invoke(command, "my_serch", "--tracking-uri", uri)   # the closest name, recorded or shipped
    assert "no sweep: neither a shipped sweep nor a spec file. Did you mean 'my_search'? Shipped: " in \
        " ".join(close.output.split()), close.output


@pytest.mark.parametrize("command", ["status", "table", "plot", "best"])
def test_reading_a_spec_files_sweep_from_a_store_that_did_not_record_it_points_at_the_store(here, new_store, command):
    # `sweeps table my_search`, recorded from my_search.yaml into another store (--tracking-uri forgotten): it was
    # called no sweep, neither shipped nor a file, and nothing said where such a name is found
    from mlflow.tracking import MlflowClient

    recorded = here / "elsewhere"
    MlflowClient(new_store(recorded / "mlflow.db")).create_experiment("my_search")
    uri = new_store(here / "mlflow.db")
    MlflowClient(uri).create_experiment("depth")
    result = invoke(command, "my_search", "--tracking-uri", uri)
    assert result.exit_code == 1 and "sweeps run" not in result.output, result.output
    assert ("recorded: depth. A sweep started from a spec file is read by its spec's name in the store that recorded "
            "it: is it another store (--tracking-uri, or MLFLOW_TRACKING_URI)?") in " ".join(result.output.split()), \
        result.output
    found = invoke(command if command != "best" else "status", "my_search", "--tracking-uri",
                   f"sqlite:///{recorded / 'mlflow.db'}")
    assert "is no sweep" not in found.output, found.output


def test_the_command_that_starts_an_unrecorded_sweep_records_into_the_store_that_was_read(here, new_store, monkeypatch):
    # `sweeps run NAME` alone records into ./mlflow.db, where the reading command will not look
    other = here / "elsewhere"
    uri = new_store(other / "mlflow.db")
    for command in ("status", "table", "plot", "best"):   # a shipped sweep not run yet (tune: `best` of a search)
        sweep = "tune" if command == "best" else "mad_rate"
        result = invoke(command, sweep, "--tracking-uri", "sqlite:///elsewhere/mlflow.db")
        assert result.exit_code == 1, result.output
        assert f"(start it with `sweeps run {sweep} --tracking-uri {uri}`)" in result.output, (command, result.output)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)   # the shell that runs the command names the store too
    for command in ("status", "table"):
        result = invoke(command, "mad_rate")
        assert result.exit_code == 1, result.output
        assert "(start it with `sweeps run mad_rate`)" in result.output, (command, result.output)


def test_reading_commands_of_a_spec_file_with_a_mistyped_suffix_say_so_not_to_run_it_as_typed(here, new_store):
    # "no sweep 'mine.ymal' recorded (start it with `sweeps run mine.ymal`)", which `sweeps run` refuses as no sweep
    from mlflow.tracking import MlflowClient

    uri = new_store(here / "mlflow.db")
    MlflowClient(uri).create_experiment("tiny_cli")
    (here / "mine.ymal").write_text(TINY)
    (here / "tiny.yaml").write_text(TINY)
    for command in ("status", "table", "plot", "best"):
        result = invoke(command, "mine.ymal", "--tracking-uri", uri)
        assert result.exit_code == 1 and "sweeps run mine.ymal" not in result.output, result.output
        assert (f"Error: no sweep 'mine.ymal' recorded in {uri}. mine.ymal is a file here, but a spec file is named "
                "*.yaml or *.yml (lower case), which tells it from a sweep's name: rename it mine.yaml. Recorded: "
                "tiny_cli") in " ".join(result.output.split()), (command, result.output)
    result = invoke("table", "tiny", "--tracking-uri", uri)
    assert (f"no sweep 'tiny' recorded in {uri}. Did you mean 'tiny_cli'? Is it the spec file tiny.yaml? Recorded: "
            "tiny_cli") in " ".join(result.output.split()), result.output


def test_status_and_table_of_a_mistyped_sweep_name_suggest_the_recorded_one(here, new_store):
    from mlflow.tracking import MlflowClient

    uri = new_store(here / "mlflow.db")
    MlflowClient(uri).create_experiment("depth")
    for command in ("status", "table"):
        result = invoke(command, "deph", "--tracking-uri", uri)
        assert result.exit_code == 1, result.output
        # `sweeps run deph`, which it said to start it with, is refused as an unknown sweep
        assert (f"Error: no sweep 'deph' recorded in {uri}, and 'deph' is no sweep: neither a shipped sweep nor a spec "
                f"file. Did you mean 'depth'? Shipped: {SHIPPED} (or give a spec file's path, *.yaml); recorded: depth"
                in " ".join(result.output.split())), (command, result.output)


def test_table_without_a_store_names_it_and_creates_none(here):
    uri = f"sqlite:///{here / 'sub' / 'mlflow.db'}"
    result = invoke("table", "nosuch", "--tracking-uri", uri)
    assert result.exit_code == 1
    assert f"Error: no MLflow store at {uri}" in result.output
    assert not (here / "sub").exists()


# --------------------------------------------------------------------------- end to end (slow)

@pytest.fixture(scope="module")
def tiny_run(ray_local, tmp_path_factory):
    """`sweeps run` of a 2-arm x 1-seed smoke spec in a fresh working folder; yields (folder, uri, result)."""
    folder = tmp_path_factory.mktemp("cli_e2e")
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(folder)
        mp.setenv("TRANSFER_CACHE", str(folder / "cache"))
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        (folder / "tiny_cli.yaml").write_text(TINY)
        uri = f"sqlite:///{folder / 'mlflow.db'}"
        result = invoke("run", "tiny_cli.yaml", "--storage", folder / "ray_results", "--tracking-uri", uri)
        yield folder, uri, result


def _experiments(folder: Path) -> list[str]:
    return sorted(p.name for p in (folder / "ray_results").iterdir() if p.is_dir() and p.name.startswith("tiny_cli-"))


def test_tunes_hints_for_its_own_python_api_are_not_shown_to_the_cli_user():
    import logging

    from sweeps.cli import _setup_logging

    shown: list[str] = []

    class Shown(logging.Handler):
        def emit(self, record):
            shown.append(record.getMessage())

    _setup_logging(False)
    loggers = [logging.getLogger(n) for n in ("ray.tune.tune", "ray.tune.analysis.experiment_analysis")]
    for logger in loggers:
        logger.addHandler(Shown())
    try:
        loggers[0].warning('Experiment has been interrupted.\nResume experiment with: Tuner.restore(path="x")')
        loggers[1].warning("Failed to fetch metrics for 2 trial(s):\n- train_cell_00000: FileNotFoundError()")
        loggers[0].warning("Stop signal received (e.g. via SIGINT/Ctrl+C), ending Ray Tune run.")
    finally:
        for logger in loggers:
            logger.handlers = [h for h in logger.handlers if not isinstance(h, Shown)]
    assert shown == ["Stop signal received (e.g. via SIGINT/Ctrl+C), ending Ray Tune run."]


def test_python_dash_m_sweeps_is_the_sweeps_command():
    import subprocess

    result = subprocess.run([sys.executable, "-m", "sweeps", "--help"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "Usage: python -m sweeps" in result.stdout and "run" in result.stdout


@pytest.mark.slow
def test_e2e_run_completes(tiny_run):
    _, uri, result = tiny_run
    assert result.exit_code == 0, result.output
    assert "sweep tiny_cli completed" in result.output
    assert "(2 completed; 0 already done before)" in result.output
    # the next command finds this invocation: its parent run, in the store it was recorded in
    next_line = next(line for line in result.stdout.splitlines() if line.startswith("Next: "))
    parent = re.search(r"MLflow parent run (\w+)\.", result.stdout).group(1)
    args = shlex.split(next_line[len("Next: sweeps "):])
    assert args[:3] == ["table", "tiny_cli", "--run"] and parent.startswith(args[3]) and args[-2:] == [
        "--tracking-uri", uri]
    table = invoke(*args)
    assert table.exit_code == 0 and "\\toprule" in table.output and "MAD" in table.output, table.output
    # stdout is the outcome; Tune's experiment box and results path go to stderr with the progress
    assert "Configuration for experiment" in result.stderr and "Configuration for experiment" not in result.stdout


def test_the_command_that_continues_an_invocation_repeats_what_identifies_and_locates_it():
    # `sweeps resume tune` alone would find nothing of `sweeps run tune --profile paper --data rafdb=...`
    kw = {"profile": "paper", "data": ("rafdb=/data/RAF DB/basic",), "set_values": ("optim.epochs=3",),
          "seeds": None, "address": "auto", "max_concurrent": None, "cpus_per_trial": None, "gpus_per_trial": 0.5,
          "tracking_uri": "http://127.0.0.1:5000", "storage": "/shared/ray_results", "max_failures": 2,
          "accept_changed_data": False, "fresh": True}
    from search_spaces.data_option import DataChoice
    from sweeps.cli import _run_options
    from sweeps.invocations import command_words, options_record

    record = options_record("tune", _run_options(**kw), (DataChoice("rafdb", "rafdb", "/data/RAF DB/basic"),))
    assert shlex.join(command_words("resume", record, kw["tracking_uri"])) == (
        "sweeps resume tune --profile paper --address auto --gpus-per-trial 0.5 --storage /shared/ray_results "
        "--tracking-uri http://127.0.0.1:5000 --data 'rafdb=/data/RAF DB/basic' --set optim.epochs=3")


@pytest.mark.slow
def test_e2e_run_says_and_records_what_each_data_set_decoded_to(tiny_run):
    from mlflow.tracking import MlflowClient

    from sweeps import schema, tracking

    _, uri, result = tiny_run
    line = re.search(r"^\[data\] synthetic: (\d+) train / (\d+) val / (\d+) test images, 7 classes; "
                     r"validation: carved from train", result.stderr, flags=re.M)
    assert line, result.stderr
    client = MlflowClient(uri)
    parent = tracking.parents(client, client.get_experiment_by_name("tiny_cli").experiment_id, 1)[0]
    record = json.loads(Path(client.download_artifacts(parent.info.run_id, schema.ARTIFACT_DATA)).read_text())
    assert [record["synthetic"]["images"][s] for s in ("train", "val", "test")] == [int(n) for n in line.groups()]
    assert len(record["synthetic"]["class_counts"]["train"]) == 7 and record["synthetic"]["skipped"] == 0


@pytest.mark.slow
def test_e2e_table_markdown_shows_both_arms_and_says_synthetic(tiny_run):
    _, uri, _ = tiny_run
    result = invoke("table", "tiny_cli", "--format", "markdown", "--tracking-uri", uri)
    assert result.exit_code == 0, result.output
    assert re.search(r"^\| No dropping \|", result.output, flags=re.M)
    assert re.search(r"^\| MAD \|", result.output, flags=re.M)
    caption = next(line for line in result.output.splitlines() if line.startswith("**Table.**"))
    assert "SYNTHETIC" in caption
    wide = invoke("table", "tiny_cli", "--format", "markdown", "--wide", "--tracking-uri", uri)
    assert wide.exit_code == 0 and wide.stdout == result.stdout
    assert "Warning: --wide shapes a LaTeX table only; the markdown one is as without" in wide.stderr


@pytest.mark.slow
def test_e2e_table_latex_to_a_file(tiny_run):
    folder, uri, _ = tiny_run
    out = folder / "table.tex"
    result = invoke("table", "tiny_cli", "--format", "latex", "-o", out, "--tracking-uri", uri)
    assert result.exit_code == 0, result.output
    text = out.read_text()
    assert "\\toprule" in text and "No dropping" in text and "MAD" in text
    nested = folder / "paper" / "tables" / "t.tex"   # folders a fresh paper checkout does not have yet
    result = invoke("table", "tiny_cli", "--format", "latex", "-o", nested, "--tracking-uri", uri)
    assert result.exit_code == 0 and nested.read_text() == text, result.output
    result = invoke("table", "tiny_cli", "--format", "latex", "--wide", "--fit", "--tracking-uri", uri)
    assert result.exit_code == 0, result.output
    assert result.output.startswith("\\begin{table*}") and "\\resizebox{" in result.output


@pytest.mark.slow
def test_e2e_table_metric_mca_is_the_mean_class_accuracy_of_the_specs_selection_rule(tiny_run):
    _, uri, _ = tiny_run
    result = invoke("table", "tiny_cli", "--format", "markdown", "--metric", "mca", "--tracking-uri", uri)
    assert result.exit_code == 0, result.output
    assert "test mean class accuracy at the epoch selected on the validation split" in result.output


@pytest.mark.parametrize("stdout", [(), ("-o", "-")])
def test_table_parquet_needs_an_output_file_before_any_run_is_read(here, stdout):
    # refused only once the runs were read: a store that is not there was said instead. `-o -` is stdout: it was
    # told "give -o FILE" without a word of why - is not taken
    result = invoke("table", "tiny_cli", "--format", "parquet", *stdout, "--tracking-uri", f"sqlite:///{here}/none.db")
    assert result.exit_code == 2
    assert ("Error: --format parquet is binary: give -o FILE; a parquet table needs a file (stdout, -o - or no -o, "
            "takes the text formats only)") in " ".join(result.output.split())
    assert not (here / "none.db").exists()


@pytest.mark.slow
def test_e2e_table_parquet_has_one_row_per_cell(tiny_run):
    import pandas as pd

    folder, uri, _ = tiny_run
    out = folder / "x.parquet"
    result = invoke("table", "tiny_cli", "-o", out, "--format", "parquet", "--tracking-uri", uri)
    assert result.exit_code == 0, result.output
    frame = pd.read_parquet(out)
    assert len(frame) == 2
    assert sorted(frame["row"]) == ["MAD", "No dropping"]


@pytest.mark.slow
@pytest.mark.parametrize("args, message", [
    (("-o", "out/x.parquet"), "name the file *.txt or *.md, or give it no suffix, not *.parquet"),
    (("-o", "x.tex"), "name the file *.txt or *.md, or give it no suffix, not *.tex"),
    (("--format", "csv"), "drop --format csv"),
    # not a table's, but no text file's either: written once, then refused as "no table or text file" the next time
    # and the message names every file it does write: a .md and one without a suffix too, not only *.txt
    (("-o", "out/e.log"), "name the file *.txt or *.md, or give it no suffix, not *.log")])
def test_table_explain_refuses_a_format_or_a_file_suffix_it_would_not_write(here, args, message):
    # it wrote plain text into out/x.parquet and said "wrote out/x.parquet"
    result = invoke("table", "tiny_cli", "--explain", "MAD", *args)
    assert result.exit_code == 2 and f"--explain writes a plain-text record, not a table: {message}" in result.output
    assert not (here / "out").exists()


@pytest.mark.parametrize("name", ["mlflow.db", "mine.yaml", "train.py"])
def test_table_never_writes_over_an_existing_file_that_is_no_table(here, name):
    # an unknown suffix is written as markdown: `-o mlflow.db` replaced the MLflow store with the table
    target = here / name
    target.write_bytes(b"SQLite format 3\x00recorded runs")
    for extra in ((), ("--explain", "MAD"), ("--format", "csv")):
        result = invoke("table", "tiny_cli", "-o", name, *extra)
        assert result.exit_code == 2, result.output
        assert f"-o {name} exists and is no table or text file" in result.output, result.output
    assert target.read_bytes() == b"SQLite format 3\x00recorded runs"


def test_table_never_writes_over_a_database_whatever_its_name(here):
    # a file without a suffix may be a table written there before; an MLflow store named `mlflow` is not
    (here / "mlflow").write_bytes(b"SQLite format 3\x00recorded runs")
    result = invoke("table", "tiny_cli", "-o", "mlflow")
    assert result.exit_code == 2 and "-o mlflow is an SQLite database (an MLflow store?)" in result.output
    assert (here / "mlflow").read_bytes() == b"SQLite format 3\x00recorded runs"


def test_e2e_table_explain_prints_the_run_ids_of_the_row(tiny_run):
    from mlflow.tracking import MlflowClient

    _, uri, _ = tiny_run
    result = invoke("table", "tiny_cli", "--explain", "MAD", "--tracking-uri", uri)
    assert result.exit_code == 0, result.output
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("tiny_cli")
    [mad] = client.search_runs([experiment.experiment_id], filter_string="attributes.run_name = 'tiny_cli/MAD/seed0'")
    assert f"run {mad.info.run_id}" in result.output
    assert "Row 'MAD' of sweep tiny_cli" in result.output
    accuracy = f"{100 * mad.data.metrics['sel_test_acc']:.1f}"
    one_decimal = invoke("table", "tiny_cli", "--explain", "MAD", "--decimals", "1", "--tracking-uri", uri).output
    assert f"seed 0: {accuracy}  run" in one_decimal, "--decimals holds for --explain too"


@pytest.mark.slow
def test_e2e_status_counts_the_completed_cells(tiny_run):
    from mlflow.tracking import MlflowClient

    from sweeps import schema

    folder, uri, _ = tiny_run
    result = invoke("status", "tiny_cli", "--tracking-uri", uri)
    assert result.exit_code == 0, result.output
    assert "tiny_cli: completed" in result.output
    assert "2 completed, 0 running, 0 pruned, 0 failed of 2 planned" in result.output
    parent = MlflowClient(uri).search_runs([MlflowClient(uri).get_experiment_by_name("tiny_cli").experiment_id],
                                           filter_string=f"tags.{schema.TAG_ROLE} = '{schema.ROLE_PARENT}'")[0]
    assert parent.data.tags[schema.TAG_PLANNED] == "2", "what a copy of the database counts by"
    # the spec file `sweeps run` was given names the same sweep
    assert invoke("status", folder / "tiny_cli.yaml", "--tracking-uri", uri).output == result.output


@pytest.mark.slow
def test_e2e_plot_writes_png_figures(tiny_run):
    folder, uri, _ = tiny_run
    out = folder / "figures"
    result = invoke("plot", "tiny_cli", "-o", out, "--no-attention", "--tracking-uri", uri)
    assert result.exit_code == 0, result.output
    pngs = sorted(out.glob("*.png"))
    assert pngs, result.output
    assert all(str(p) in result.output for p in pngs)


@pytest.mark.slow
def test_e2e_rerun_skips_the_done_cells_and_starts_no_trial(tiny_run):
    folder, uri, _ = tiny_run
    before = _experiments(folder)
    result = invoke("run", "tiny_cli.yaml", "--storage", folder / "ray_results", "--tracking-uri", uri)
    assert result.exit_code == 0, result.output
    assert "(2 completed; 2 already done before)" in result.output
    assert _experiments(folder) == before              # no new Tune experiment: no trial ran


@pytest.mark.parametrize("one, other", [("optim.epochs=3", "optim.epochs=3.0"),
                                        ("model.drop_rate=1", "model.drop_rate=1.0"),
                                        ("optim.lr=.001", "optim.lr=1e-3")])
def test_a_set_written_another_way_is_the_same_invocation(here, one, other):
    """The invocation key was of the --set as parsed, not as typed into the config: `resume --set
    optim.epochs=3.0` of a `run --set optim.epochs=3` found nothing to resume (and `run` trained anew)."""
    from sweeps.cli import _parse_sets
    from sweeps.runner import RunOptions, prepare

    (here / "tiny_cli.yaml").write_text(TINY)
    keys = [prepare("tiny_cli.yaml", RunOptions(overrides=_parse_sets((text,)), storage=str(here / "rr"))).invocation_key
            for text in (one, other)]
    assert keys[0] == keys[1]


def test_e2e_rerun_with_other_placement_sets_continues_the_same_invocation(tiny_run):
    """Placement keys are no part of a cell's identity (README: compile "resumes with it on or off"), but
    were of the invocation's: `resume` found nothing to resume, and `run` trained every cell again."""
    folder, uri, first = tiny_run
    parent = re.search(r"MLflow parent run (\w+)", first.output).group(1)
    before = _experiments(folder)
    result = invoke("run", "tiny_cli.yaml", "--storage", folder / "ray_results", "--tracking-uri", uri,
                    "--set", "num_threads=1", "--set", "data.num_workers=0")
    assert result.exit_code == 0, result.output
    assert f"(2 completed; 2 already done before). MLflow parent run {parent}." in result.output
    assert _experiments(folder) == before              # no new Tune experiment: no trial ran


def test_the_console_script_releases_ray_and_freezes_the_gc_however_the_command_ends(monkeypatch):
    # so that the shell prompt returns at once: no 0.5 s of Ray's exit hook, no final GC over a sweep's objects
    import gc
    import sys

    import ray

    from sweeps import cli as cli_module

    calls = []
    monkeypatch.setattr(ray, "is_initialized", lambda: True)
    monkeypatch.setattr(ray, "shutdown", lambda: calls.append("ray.shutdown"))
    monkeypatch.setattr(gc, "freeze", lambda: calls.append("gc.freeze"))
    for argv, code in ((["sweeps", "list"], 0), (["sweeps", "show", "no_such_sweep"], 2)):
        monkeypatch.setattr(sys, "argv", argv)
        calls.clear()
        with pytest.raises(SystemExit) as exit_:
            cli_module.main()
        assert (exit_.value.code, calls) == (code, ["ray.shutdown", "gc.freeze"])


def test_the_console_script_lets_a_report_warm_up_still_drawing_finish_before_it_exits(monkeypatch):
    # a sweep stopped by SIGTERM in its tail exited -6 (SIGABRT, a native stack printed), not 143: the
    # interpreter ended under the warm-up thread inside matplotlib's C++ text layout
    import gc
    import sys
    import threading

    import ray

    from sweeps import cli as cli_module

    calls = []
    monkeypatch.setattr(ray, "is_initialized", lambda: True)
    monkeypatch.setattr(ray, "shutdown", lambda: calls.append("ray.shutdown"))
    monkeypatch.setattr(gc, "freeze", lambda: calls.append("gc.freeze"))
    drawing = threading.Thread(target=lambda: (time.sleep(0.3), calls.append("warm-up done")), daemon=True)
    drawing.start()
    monkeypatch.setattr(sweeps.runner, "_REPORT_WARM_UP", [drawing])
    monkeypatch.setattr(sys, "argv", ["sweeps", "list"])
    with pytest.raises(SystemExit):
        cli_module.main()
    assert calls == ["warm-up done", "ray.shutdown", "gc.freeze"]
    # a stuck one is left behind after the wait
    stuck, calls[:] = threading.Event(), []
    monkeypatch.setattr(sweeps.runner, "_REPORT_WARM_UP", [threading.Thread(target=stuck.wait, daemon=True)])
    sweeps.runner._REPORT_WARM_UP[0].start()
    monkeypatch.setattr(sweeps.runner, "EXIT_WARM_UP_WAIT_S", 0.05)
    with pytest.raises(SystemExit):
        cli_module.main()
    stuck.set()
    assert calls == ["ray.shutdown", "gc.freeze"]


def test_the_console_script_sets_a_sweep_up_without_gc_collections_and_freezes_what_it_made_first(
        monkeypatch, tmp_path):
    # each full collection walked every object Ray Tune's and MLflow's imports had made: six of them cost the
    # driver ~0.55 s before the first trial; frozen, the report's collections walk only what came after
    import gc

    import ray

    from sweeps import cli as cli_module
    from sweeps.runner import SweepError

    calls = []
    for name in ("disable", "enable", "freeze"):
        monkeypatch.setattr(gc, name, lambda name=name: calls.append(f"gc.{name}"))
    prepare = sweeps.runner.prepare
    monkeypatch.setattr(sweeps.runner, "prepare", lambda *a, **kw: (calls.append("prepare"), prepare(*a, **kw))[1])

    def run_sweep(*args, **kwargs):
        calls.append("run_sweep")
        raise SweepError("stopped here by the test")

    monkeypatch.setattr(sweeps.runner, "run_sweep", run_sweep)
    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    args = ["run", "mad_vs_dropout", "--tracking-uri", f"sqlite:///{tmp_path / 'mlflow.db'}",
            "--storage", str(tmp_path / "ray_results")]
    monkeypatch.setattr(sys, "argv", ["sweeps", *args])
    with pytest.raises(SystemExit) as exit_:
        cli_module.main()
    assert exit_.value.code == 1
    assert calls == ["gc.disable", "prepare", "gc.freeze", "gc.enable", "run_sweep", "gc.freeze"]   # the last: exit
    # a library call (CliRunner, a notebook; also after main() returned) keeps its GC as it is
    calls.clear()
    assert CliRunner().invoke(cli, args).exit_code == 1
    assert calls == ["prepare", "run_sweep"]


def test_the_console_scripts_quick_exit_never_changes_the_exit_status(monkeypatch):
    import gc
    import sys

    import ray

    from sweeps import cli as cli_module

    def cluster_gone():
        raise ConnectionError("the GCS at 10.0.0.1:6379 is gone")

    frozen = []
    monkeypatch.setattr(ray, "is_initialized", lambda: True)
    monkeypatch.setattr(ray, "shutdown", cluster_gone)
    monkeypatch.setattr(gc, "freeze", lambda: frozen.append(True))
    monkeypatch.setattr(sys, "argv", ["sweeps", "show", "no_such_sweep"])
    with pytest.raises(SystemExit) as exit_:
        cli_module.main()
    assert exit_.value.code == 2 and frozen == [True], "the failed release neither masks the status nor stops the rest"
    monkeypatch.setattr(ray, "is_initialized", lambda: False)     # a command that never started Ray
    monkeypatch.setattr(ray, "shutdown", lambda: pytest.fail("shut down a Ray that was never started"))
    monkeypatch.setattr(sys, "argv", ["sweeps", "list"])
    with pytest.raises(SystemExit) as exit_:
        cli_module.main()
    assert exit_.value.code == 0


@pytest.mark.parametrize("days", ["nan", "inf"])
def test_cache_unused_for_a_number_of_days_that_is_none_is_refused(tmp_path, days):
    """`--unused-for nan` passed click's FloatRange, removed nothing and said nothing of why."""
    result = invoke("cache", "--cache-dir", tmp_path, "--unused-for", days)
    assert result.exit_code == 2, result.output
    assert f"Invalid value for --unused-for: {float(days)} is not a number of days" in result.output


def test_cache_neither_lists_nor_clears_a_folder_that_only_holds_a_meta_json_of_its_own(tmp_path):
    # `sweeps cache --cache-dir` given another folder (a project, a data set) with --clear deleted every
    # subfolder holding any JSON object named meta.json, and a meta.json holding a list was a traceback
    from transfer_core.config import DataConfig
    from transfer_core.data import load_splits
    from transfer_core.data.cache import cached_data

    load_splits(DataConfig(dataset="synthetic", synthetic_per_class=4, cache_dir=str(tmp_path), val_fraction=0.0),
                8)
    project, other = tmp_path / "my_experiment", tmp_path / "other"
    project.mkdir()
    other.mkdir()
    (project / "meta.json").write_text('{"author": "me"}')
    (project / "train.py").write_text("print(1)\n")
    (other / "meta.json").write_text("[1, 2]")
    listed = invoke("cache", "--cache-dir", tmp_path)
    assert listed.exit_code == 0 and f"{tmp_path}: 1 entry" in listed.output, listed.output
    assert "my_experiment" not in listed.output and "other" not in listed.output
    cleared = invoke("cache", "--cache-dir", tmp_path, "--clear")
    assert cleared.exit_code == 0 and "removed 1, " in cleared.output, cleared.output
    assert (project / "train.py").is_file() and (other / "meta.json").is_file(), "not the cache's to remove"
    assert cached_data(tmp_path) == []


def test_run_help_says_plainly_what_fresh_does():
    # it read "Start a new invocation even if an earlier one is unfinished (the earlier one's MLflow marks kept in
    # --storage are made first)": what a new invocation costs, and that a completed one is trained again, unsaid
    text = " ".join(invoke("run", "--help").output.split())
    assert ("--fresh Start a new invocation: a new MLflow parent run in which every cell trains again, even where one "
            "with this spec, --profile, --data and --set is recorded (unfinished, completed, or being run now)") in text
