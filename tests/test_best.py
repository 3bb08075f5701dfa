"""`sweeps best`: a search's best trials as a table spec that trains them over seeds.

A search ranks its trials on one seed. The spec it writes must train exactly the configurations those
trials trained (same profile, base, --set and sampled values), each over several seeds, against the
search's base configuration, and `sweeps run` must accept it as written.
"""

from __future__ import annotations

import dataclasses
import json
import shlex
from pathlib import Path

import pandas as pd
import pytest
import yaml
from click.testing import CliRunner
from mlflow.entities import Metric, Param

from search_spaces import load
from search_spaces.plan import expand
from search_spaces.spec import load_text
from sweeps import schema as S
from sweeps import tables as T
from sweeps.best import best_spec, ranked_trials
from sweeps.cli import cli
from test_tables import create_store, frame
from transfer_core.config import from_flat, parse_value, to_flat

TUNE = load("tune")
# what each trial of the fixture search drew: lr, weight decay, B, p1, p2, depth
DRAWS = {
    "trial a": (3.1622776601683794e-4, 0.01, 4, 0.5, 0.2, 3),
    "trial b": (1e-3, 0.001, 2, 0.6, 0.3, 6),
    "trial c": (2e-5, 1e-6, 1, 0.0, 0.0, 1),
    "trial d": (1e-4, 0.05, 8, 0.9, 0.7, 2),
}
SPACE = tuple(TUNE.search.space)   # optim.lr, optim.weight_decay, model.num_lanets, drop_rate, msad_rate, depth


def trial_config(arm: str, overrides=None):
    """The config trial `arm` trained: the search's base config (profile, base, --set) with its draws."""
    base, = expand(TUNE, TUNE.profile, overrides=overrides).base_configs.values()
    return from_flat({**to_flat(base), **dict(zip(SPACE, DRAWS[arm]))})


def search_runs(results: dict, overrides=None, parent_tags=None) -> T.SweepRuns:
    """A search invocation without MLflow: arm -> best_val_acc fraction, or a status string."""
    children = frame({(arm, "synthetic"): {0: value} for arm, value in results.items()})
    children["best_val_acc"] = [v if not isinstance(v, str) else float("nan") for v in results.values()]
    for key in to_flat(trial_config("trial a")):
        children[f"params.{key}"] = [str(to_flat(trial_config(arm, overrides))[key]) for arm in results]
    tags = {S.TAG_KIND: "search", S.TAG_DATA: "synthetic", S.TAG_PROFILE: TUNE.profile, S.TAG_SEEDS: "[0]",
            S.TAG_OVERRIDES: json.dumps(overrides or {}), **(parent_tags or {})}
    parent = T.ParentRun("p0123", "tune@test", S.STATUS_COMPLETED, 0, tags)
    return T.SweepRuns("tune", "sqlite://", "0", parent, children)


def arms_of(text: str) -> dict:
    return {arm["label"]: arm["set"] for arm in yaml.safe_load(text)["arms"]}


def test_trials_rank_best_on_validation_first_and_only_completed_ones_count():
    runs = search_runs({"trial a": 0.80, "trial b": 0.90, "trial c": "pruned", "trial d": "failed"})
    ranked = ranked_trials(runs, TUNE)
    assert [t.arm for t in ranked] == ["trial b", "trial a"]
    assert ranked[0].values == dict(zip(SPACE, DRAWS["trial b"]))


def test_the_spec_trains_the_best_trials_and_the_base_over_seeds_and_loads_as_written():
    runs = search_runs({"trial a": 0.80, "trial b": 0.90, "trial c": 0.70, "trial d": 0.60})
    written = best_spec(runs, TUNE, top=2, seeds=3)
    spec = load_text(written.text, source="best.yaml")
    assert (spec.kind, spec.name, spec.profile, spec.seeds) == ("table", "tune_best", "quick", (0, 1, 2))
    assert spec.labels == ("Base", "Search #1", "Search #2") and spec.table.baseline == "Base"
    assert spec.metric == "sel_test_acc" and spec.table.metrics == ("sel_test_acc", "best_val_acc")
    assert arms_of(written.text) == {"Base": {}, "Search #1": dict(zip(SPACE, DRAWS["trial b"])),
                                     "Search #2": dict(zip(SPACE, DRAWS["trial a"]))}
    # the exact sampled value, not the 3 digits a table shows
    assert "optim.lr: 0.00031622776601683794" in written.text
    assert "Search #1: trial b, best_val_acc 90.00 %" in written.text   # the header says where each came from
    assert "lr 0.000316" in spec.caption


def test_each_arm_trains_the_config_its_trial_trained_with_the_searchs_set_and_seeds_0_to_n():
    # --set optim.epochs=2 was a condition of the search: the arms train 2 epochs too. num_threads is
    # placement: it goes to the command line, not into the spec (nor into a cell's identity)
    overrides = {"optim.epochs": 2, "num_threads": 1}
    runs = search_runs({"trial a": 0.80, "trial b": 0.90}, overrides=overrides)
    written = best_spec(runs, TUNE, top=2, seeds=2, file_name="tune_best.yaml")
    assert "num_threads" not in yaml.safe_load(written.text).get("base", {})
    assert written.run_command == "sweeps run tune_best.yaml --set num_threads=1"
    plan = expand(load_text(written.text, source="best.yaml"), "quick")
    by_arm = {(c.arm, c.seed): c.config for c in plan.cells}
    for label, arm in (("Search #1", "trial b"), ("Search #2", "trial a")):
        for seed in (0, 1):
            trained = dataclasses.replace(trial_config(arm, {"optim.epochs": 2}), seed=seed)
            assert to_flat(by_arm[label, seed]) == {**to_flat(trained), "num_threads": to_flat(by_arm[label, seed])["num_threads"]}
    base, = expand(TUNE, "quick", overrides={"optim.epochs": 2}).base_configs.values()
    assert to_flat(by_arm["Base", 1]) == to_flat(dataclasses.replace(base, seed=1))


def test_a_trial_that_repeats_a_better_ones_config_or_the_bases_is_skipped_for_the_next():
    runs = search_runs({"trial a": 0.90, "trial b": 0.85, "trial c": 0.80, "trial d": 0.70})
    same_as_a = runs.children["arm"] == "trial b"
    for key in SPACE:
        runs.children.loc[same_as_a, f"params.{key}"] = runs.children.loc[runs.children["arm"] == "trial a",
                                                                           f"params.{key}"].iloc[0]
    written = best_spec(runs, TUNE, top=2)
    assert arms_of(written.text)["Search #2"] == dict(zip(SPACE, DRAWS["trial c"]))
    assert any("trial b" in n and "repeats" in n for n in written.notes)


def test_a_trial_that_repeats_the_base_is_skipped_and_none_left_is_an_error_that_says_why():
    runs = search_runs({"trial a": 0.90})
    base, = expand(TUNE, "quick").base_configs.values()
    for key in SPACE:
        runs.children[f"params.{key}"] = str(to_flat(base)[key])
    with pytest.raises(T.TableError, match=r"none of its 1 completed trials makes an arm: trial a .*repeats the "
                                           r"configuration of the base.*--no-base"):
        best_spec(runs, TUNE)
    assert arms_of(best_spec(runs, TUNE, with_base=False).text) == {"Search #1": {k: parse_value(str(to_flat(base)[k]))
                                                                                  for k in SPACE}}


def test_fewer_trials_than_asked_for_writes_those_there_are_and_says_so():
    written = best_spec(search_runs({"trial a": 0.8, "trial b": "pruned"}), TUNE, top=3)
    assert written.arms == ("Base", "Search #1")
    assert written.notes == ("1 trial of the 3 asked for (1 completed with a best validation accuracy)",)


def test_a_search_without_a_completed_trial_or_a_table_sweep_is_an_error_naming_what_there_is():
    with pytest.raises(T.TableError, match=r"no completed trial .*: 1 pruned, 1 running"):
        best_spec(search_runs({"trial a": "pruned", "trial b": "running"}), TUNE)
    with pytest.raises(T.TableError, match=r"table sweep, not a search: .*`sweeps show my/t.yaml`"):
        best_spec(search_runs({"trial a": 0.8}), load("mad_vs_dropout"), as_typed="my/t.yaml")
    with pytest.raises(T.TableError, match="is a table sweep, not a search"):
        best_spec(search_runs({"trial a": 0.8}), load("mad_vs_dropout"))


def test_a_spec_files_sweep_named_by_its_recorded_name_is_shown_by_its_file(tmp_path, monkeypatch):
    # `sweeps best mine` (the name `sweeps table mine` reads) said to see `sweeps show mine`: "unknown sweep 'mine'"
    monkeypatch.chdir(tmp_path)
    runs = dataclasses.replace(search_runs({"trial a": 0.8}), sweep="mine")
    with pytest.raises(T.TableError, match=r"table sweep, not a search: its arms are already a table spec "
                                           r"\(`sweeps show FILE\.yaml`, FILE\.yaml the spec file `sweeps run` was "
                                           r"given \(its name: mine\)\)$"):
        best_spec(runs, load("mad_vs_dropout"), as_typed="mine")
    (tmp_path / "mine.yaml").write_text("name: mine\n")
    with pytest.raises(T.TableError, match=r"its arms are already a table spec \(`sweeps show mine\.yaml`\)$"):
        best_spec(runs, load("mad_vs_dropout"), as_typed="mine")


# --------------------------------------------------------------------------- the command, on a real store

def record_search(client, exp_id: str, results: dict, data=({"name": "synthetic", "dataset": "synthetic",
                                                              "root": None},)) -> str:
    parent = client.create_run(exp_id, run_name="tune@test", tags={
        S.TAG_ROLE: S.ROLE_PARENT, S.TAG_SWEEP: "tune", S.TAG_KIND: "search", S.TAG_PROFILE: "quick",
        S.TAG_DATA: ",".join(d["name"] for d in data), S.TAG_SEEDS: "[0]", S.TAG_STATUS: S.STATUS_COMPLETED,
        S.TAG_OVERRIDES: "{}"})
    pid = parent.info.run_id
    client.log_text(pid, TUNE.text, S.ARTIFACT_SPEC)
    client.log_text(pid, json.dumps({"data": list(data)}), S.ARTIFACT_PLAN)
    for arm, acc in results.items():
        run = client.create_run(exp_id, run_name=f"tune/{arm}", tags={
            S.TAG_PARENT: pid, S.TAG_ROLE: S.ROLE_CELL, S.TAG_SWEEP: "tune", S.TAG_ARM: arm,
            S.TAG_DATA: data[0]["name"], S.TAG_SEED: "0", S.TAG_STATUS: S.STATUS_COMPLETED})
        client.log_batch(run.info.run_id, metrics=[Metric("best_val_acc", acc, 0, 1)],
                         params=[Param(k, str(v)) for k, v in to_flat(trial_config(arm)).items()])
    return pid


@pytest.fixture
def search_store(store, tmp_path, monkeypatch):
    """An empty store (conftest's `store`: the test's sqlite:///.../mlflow.db), with an experiment for tune."""
    monkeypatch.chdir(tmp_path)
    return create_store(store, tmp_path / "artifacts", sweep="tune")


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def test_sweeps_best_writes_a_spec_that_sweeps_show_accepts_and_keeps_an_existing_file(search_store, store):
    client, exp_id = search_store
    record_search(client, exp_id, {"trial a": 0.80, "trial b": 0.90},
                  data=({"name": "rafdb", "dataset": "rafdb", "root": "/data/RAF-DB/basic"},))
    result = invoke("best", "tune", "--top", 1, "-o", "tune_best.yaml", "--tracking-uri", store)
    assert result.exit_code == 0, result.output
    # how to run it: the search's data as it was given
    assert "run it: sweeps run tune_best.yaml --data rafdb=/data/RAF-DB/basic" in result.output
    assert arms_of(Path("tune_best.yaml").read_text()) == {"Base": {}, "Search #1": dict(zip(SPACE, DRAWS["trial b"]))}
    shown = invoke("show", "tune_best.yaml", "--json")
    assert shown.exit_code == 0, shown.output
    assert json.loads(shown.output)["totals"]["cells"] == 2 * 3
    # a spec the user may have edited is never overwritten unasked
    Path("tune_best.yaml").write_text("# my edits\n")
    again = invoke("best", "tune", "-o", "tune_best.yaml", "--tracking-uri", store)
    assert again.exit_code == 1 and "tune_best.yaml exists" in again.output and "--force" in again.output
    assert Path("tune_best.yaml").read_text() == "# my edits\n"
    assert invoke("best", "tune", "-o", "tune_best.yaml", "--force", "--tracking-uri", store).exit_code == 0
    assert "Search #1" in Path("tune_best.yaml").read_text()


def test_the_header_gives_the_command_that_wrote_the_spec_as_it_runs_again(search_store, store):
    # `sweeps best mysearch.yaml` (a spec file named tune) wrote "Written by `sweeps best tune`": not what was typed,
    # and no command at all where the name is no shipped sweep's (`sweeps best mysearch` finds nothing either)
    client, exp_id = search_store
    pid = record_search(client, exp_id, {"trial a": 0.80, "trial b": 0.90})
    Path("mysearch.yaml").write_text(TUNE.text)
    printed = invoke("best", "mysearch.yaml", "--top", 1, "--seeds", 2, "--tracking-uri", store)
    assert printed.exit_code == 0, printed.output
    header = " ".join(line[2:].strip() for line in printed.output.splitlines() if line.startswith("# "))
    written_by = header.split("Written by `", 1)[1].split("`", 1)[0]
    # the invocation it read, by its id: without it the command reads the one run last, which a later run of the
    # search changes (`sweeps best tune` run after another search wrote another spec)
    assert written_by == f"sweeps best mysearch.yaml --run {pid} --top 1 --seeds 2 --tracking-uri {store}"
    again = invoke(*shlex.split(written_by)[1:])   # without `sweeps`
    assert again.exit_code == 0 and again.output == printed.output
    record_search(client, exp_id, {"trial c": 0.70})   # the search run again: its latest invocation is another
    assert "trial c" in invoke("best", "mysearch.yaml", "--top", 1, "--seeds", 2, "--tracking-uri", store).output
    later = invoke(*shlex.split(written_by)[1:])
    assert later.exit_code == 0 and later.output == printed.output, "the header's command still gives this spec"


def test_the_headers_command_gives_another_spec_once_its_invocation_is_continued_as_the_readme_says(
        search_store, store):
    # the README said the header's command (--run ID) "writes the same spec after the search is run again": so it
    # does after a new invocation (above), but continuing the invocation it read (sweeps resume, more num_samples)
    # adds trials to it, and a better one among them changes the spec
    client, exp_id = search_store
    pid = record_search(client, exp_id, {"trial a": 0.80, "trial b": 0.90})
    printed = invoke("best", "tune", "--top", 1, "--tracking-uri", store)
    assert printed.exit_code == 0, printed.output
    written_by = " ".join(line[2:].strip() for line in printed.output.splitlines()
                          if line.startswith("# ")).split("Written by `", 1)[1].split("`", 1)[0]
    run = client.create_run(exp_id, run_name="tune/trial d", tags={   # the same invocation, continued
        S.TAG_PARENT: pid, S.TAG_ROLE: S.ROLE_CELL, S.TAG_SWEEP: "tune", S.TAG_ARM: "trial d",
        S.TAG_DATA: "synthetic", S.TAG_SEED: "0", S.TAG_STATUS: S.STATUS_COMPLETED})
    client.log_batch(run.info.run_id, metrics=[Metric("best_val_acc", 0.95, 0, 1)],
                     params=[Param(k, str(v)) for k, v in to_flat(trial_config("trial d")).items()])
    later = invoke(*shlex.split(written_by)[1:])
    assert later.exit_code == 0 and "trial d" in later.output and later.output != printed.output
    readme = " ".join((Path(__file__).resolve().parents[1] / "README.md").read_text().split())
    assert ("so it writes the same spec after the search is run again as a new invocation (`--fresh`, or another "
            "`--profile`, `--data` or `--set`)") in readme
    assert ("continuing the invocation it read (`sweeps resume`, or a run with more `num_samples`) adds trials to "
            "it, which may change the spec") in readme


def test_sweeps_best_prints_to_stdout_and_refuses_a_file_that_is_not_a_spec(search_store, store):
    client, exp_id = search_store
    record_search(client, exp_id, {"trial a": 0.80})
    printed = invoke("best", "tune", "--seeds", 2, "--no-base", "--tracking-uri", store)
    assert printed.exit_code == 0, printed.output
    assert yaml.safe_load(printed.output)["seeds"] == [0, 1] and "Base" not in arms_of(printed.output)
    for name in ("best.txt", "best.YAML"):   # `sweeps run best.YAML` would look for a sweep of that name
        wrong = invoke("best", "tune", "-o", name, "--tracking-uri", store)
        assert wrong.exit_code == 2 and "*.yaml" in wrong.output and not Path(name).exists()


def test_sweeps_best_output_a_folder_under_a_file_or_empty_is_refused_before_a_run_is_read_and_dash_is_stdout(
        search_store, store, tmp_path):
    # as `sweeps table -o`: a folder got click's bare "is a directory" (`-o specs/`: "a spec file is named *.yaml"), a
    # path under a file failed once the spec was made ("[Errno 17] File exists"), -o '' printed the spec, and -o -
    # was refused as no *.yaml
    client, exp_id = search_store
    record_search(client, exp_id, {"trial a": 0.80})
    (tmp_path / "notes").write_text("mine")

    def refused(*args):
        result = invoke("best", "tune", *args, "--tracking-uri", store)
        assert result.exit_code == 2 and "Traceback" not in result.output, result.output
        return " ".join(result.output.split())

    assert f"-o {tmp_path} is a folder: name a file in it, e.g. -o {tmp_path / 'tune_best.yaml'}" in refused(
        "-o", tmp_path)
    assert "-o specs/ is a folder: name a file in it, e.g. -o specs/tune_best.yaml" in refused("-o", "specs/")
    assert ("-o notes/b.yaml: notes is a file, not a folder, so nothing can be written under it; name a file in a "
            "folder, e.g. -o b.yaml") in refused("-o", "notes/b.yaml")
    assert "-o is empty: give a file name (e.g. -o tune_best.yaml), or leave -o out to print the spec" in refused(
        "-o", "")
    assert (tmp_path / "notes").read_text() == "mine" and not (tmp_path / "specs").exists()
    printed = invoke("best", "tune", "-o", "-", "--tracking-uri", store)
    assert printed.exit_code == 0, printed.output
    assert yaml.safe_load(printed.output)["name"] == "tune_best" and not (tmp_path / "-").exists()


def test_one_trial_on_one_seed_is_worded_in_the_singular():
    # "the 1 best trials", "The 1 best of 1 completed trials", "trains each over seeds 0 and reports"
    written = best_spec(search_runs({"trial a": 0.80}), TUNE, top=1, seeds=1)
    document = yaml.safe_load(written.text)
    assert document["description"] == "the best trial of search tune and its base over 1 seed"
    assert document["caption"].startswith("The best of 1 completed trial of the search ")
    assert ", on seed 0; test accuracy" in document["caption"]
    header = written.text.replace("\n#   ", " ")   # its lines unwrapped
    assert "this table trains each on seed 0 and reports the test accuracy" in header
    several = yaml.safe_load(best_spec(search_runs({"trial a": 0.8, "trial b": 0.9}), TUNE, top=2, seeds=2).text)
    assert several["description"] == "the 2 best trials of search tune and its base over 2 seeds"
    assert several["caption"].startswith("The 2 best of 2 completed trials of the search ")


def test_a_printed_spec_says_to_save_it_before_running_it():
    # printed, it named `sweeps run tune_best.yaml`, a file nobody had written
    written = best_spec(search_runs({"trial a": 0.80}), TUNE)
    assert "# Save this spec as FILE.yaml, then run it: sweeps run FILE.yaml\n" in written.text
    assert written.run_command == "sweeps run FILE.yaml"
    assert "# Run it: sweeps run b.yaml\n" in best_spec(search_runs({"trial a": 0.80}), TUNE, file_name="b.yaml").text


def test_sweeps_best_on_stdout_names_no_file_it_did_not_write(search_store, store):
    client, exp_id = search_store
    record_search(client, exp_id, {"trial a": 0.80})
    printed = invoke("best", "tune", "--tracking-uri", store)
    assert printed.exit_code == 0, printed.output
    assert "tune_best.yaml" not in printed.output
    assert f"# Save this spec as FILE.yaml, then run it: sweeps run FILE.yaml --tracking-uri {store}" in printed.output


def test_a_key_the_profile_has_changed_since_the_search_is_pinned_to_what_the_trials_trained_with():
    # only the searched keys were copied: the confirmation trained today's profile value, not the search's
    runs = search_runs({"trial a": 0.80, "trial b": 0.90})
    runs.children["params.model.embed_dim"] = "48"   # as if the profile said 48 when the search ran
    written = best_spec(runs, TUNE, top=2)
    assert yaml.safe_load(written.text)["base"]["model.embed_dim"] == 48
    assert any("pinned in base" in n and "model.embed_dim=48" in n for n in written.notes)
    cells = {c.arm: c.config for c in expand(load_text(written.text, source="best.yaml"), "quick").cells}
    assert cells["Search #1"].model.embed_dim == cells["Base"].model.embed_dim == 48


def test_the_header_says_how_the_search_ran_and_the_command_runs_as_one_line():
    runs = search_runs({"trial a": 0.80}, parent_tags={S.TAG_SEEDS: "[5]"})   # --seeds or a spec seed of 5
    written = best_spec(runs, TUNE, file_name="b.yaml", tracking_uri="http://127.0.0.1:5000")
    assert "by best_val_acc (best validation accuracy) on seed 5;" in written.text
    assert "# Run it: sweeps run b.yaml --tracking-uri http://127.0.0.1:5000\n" in written.text


def test_the_command_runs_the_best_trials_with_the_resources_the_search_ran_with():
    # `sweeps run tune --gpus-per-trial 0.25 --max-concurrent 4 --storage /shared/rr` on a cluster: the printed
    # command ran the best trials a whole GPU each, one at a time, into ./ray_results
    recorded = {"name": "tune", "profile": "quick", "seeds": 1, "address": "auto", "max_concurrent": 4,
                "gpus_per_trial": 0.25, "cpus_per_trial": 2.0, "storage": "/shared/rr", "max_failures": 0,
                "set": {"optim.epochs": 4}, "accept_changed_data": True}
    runs = search_runs({"trial a": 0.80}, overrides={"num_threads": 2},
                       parent_tags={S.TAG_COMMAND: json.dumps(recorded)})
    written = best_spec(runs, TUNE, file_name="b.yaml")
    # not --seeds, --profile nor the search's --set: the spec holds its seeds, profile and conditions
    assert written.run_command == ("sweeps run b.yaml --set num_threads=2 --address auto --max-concurrent 4 "
                                   "--cpus-per-trial 2.0 --gpus-per-trial 0.25 --storage /shared/rr --max-failures 0")
    assert f"# Run it: {written.run_command}\n" in written.text
    # an unfinished search: how to continue it, exactly as it ran
    runs.children["best_val_acc"], runs.children["status"] = float("nan"), S.STATUS_RUNNING
    runs.parent = dataclasses.replace(runs.parent, status=S.STATUS_INTERRUPTED)
    with pytest.raises(T.TableError, match=r"Let it finish: `sweeps resume tune --profile quick --seeds 1 --address "
                                           r"auto --max-concurrent 4 --cpus-per-trial 2.0 --gpus-per-trial 0.25 "
                                           r"--storage /shared/rr --max-failures 0 --set optim.epochs=4 "
                                           r"--accept-changed-data`"):
        best_spec(runs, TUNE)


def test_a_search_that_minimised_validation_loss_gives_its_lowest_loss_trials_as_its_table_ranks_them():
    # they were ranked by best_val_acc, another order than the search's own
    runs = search_runs({"trial a": 0.80, "trial b": 0.90, "trial c": 0.70})
    runs.children["best_val_loss"] = [0.5, 0.9, 0.7]   # as ranked_children reads each run's history
    loss = dataclasses.replace(TUNE, metric="val_loss", mode="min")
    assert [t.arm for t in ranked_trials(runs, loss)] == ["trial a", "trial c", "trial b"]
    written = best_spec(runs, loss, top=2)
    assert arms_of(written.text)["Search #1"] == dict(zip(SPACE, DRAWS["trial a"]))
    assert "by best_val_loss (lowest validation loss) on seed 0;" in written.text
    assert "Search #1: trial a, best_val_loss 0.5" in written.text
    assert "ranked on one seed by the lowest validation loss" in yaml.safe_load(written.text)["caption"]
    # its table, and its figures, show what chose the trials: the lowest validation loss, not best_val_acc
    from sweeps.report import curve_metrics

    best = load_text(written.text, source="best.yaml")
    assert best.table.metrics == ("sel_test_acc", "best_val_loss")
    assert curve_metrics(best) == curve_metrics(loss) == ("val_acc", "test_acc", "val_loss")
    assert curve_metrics(TUNE) == ("val_acc", "test_acc")


def test_trials_tied_on_the_ranking_are_taken_in_the_order_of_their_trial_ids_and_the_tie_is_said():
    # the search's table lists (and bolds) tied trials in that order; the spec says which tie, and one left out
    runs = search_runs({"trial c": 0.90, "trial a": 0.85, "trial b": 0.90, "trial d": 0.85})
    assert [t.arm for t in ranked_trials(runs, TUNE)] == ["trial b", "trial c", "trial a", "trial d"]
    written = best_spec(runs, TUNE, top=3)
    assert written.arms == ("Base", "Search #1", "Search #2", "Search #3")
    assert arms_of(written.text)["Search #3"] == dict(zip(SPACE, DRAWS["trial a"]))
    ties = [n for n in written.notes if "tie" in n]
    assert ties == ["trial b and trial c tie on best_val_acc (90.00 %): taken in the order of their trial ids, as "
                    "the search's table lists them",
                    "trial a and trial d tie on best_val_acc (85.00 %): taken in the order of their trial ids, as "
                    "the search's table lists them; trial d is left out"]
    assert "# trial a and trial d tie on best_val_acc" in written.text   # the spec's header keeps it
    assert not [n for n in best_spec(runs, TUNE, top=1).notes if "trial a" in n], "a tie below the cut is none"


def test_a_search_whose_completed_trials_all_diverged_says_so_not_that_they_lacked_a_validation_split():
    # lr drawn too high: val_loss NaN at every epoch; the error blamed data.val_fraction 0
    runs = search_runs({"trial a": 0.1, "trial b": 0.1})
    runs._histories["val_loss"] = pd.DataFrame({
        "run_id": ["r0", "r0", "r1"], "arm": ["trial a", "trial a", "trial b"], "data": "synthetic", "seed": 0,
        "status": S.STATUS_COMPLETED, "step": [1, 2, 1], "value": [float("nan")] * 3})
    loss = dataclasses.replace(TUNE, metric="val_loss", mode="min")
    with pytest.raises(T.TableError, match=r"None of its 2 completed trials recorded val_loss as a number: val_loss "
                                           r"was NaN at every epoch of 2 of them, as when training diverges") as caught:
        best_spec(runs, loss)
    assert "validation split" not in str(caught.value)
    runs.children["best_val_acc"] = float("nan")   # a val_acc search: its summaries NaN, as without validation
    with pytest.raises(T.TableError, match=r"recorded val_acc as a number: val_loss was NaN at every epoch of 2 of "
                                           r"them, as when training diverges"):
        best_spec(runs, TUNE)


def test_a_stopped_search_whose_completed_trials_all_diverged_says_so_beside_how_to_continue_it():
    # a search that failed (a trial's error) was only told "Let it finish", though "2 completed" trials
    # could not be ranked since they diverged: resumed, the space would draw such trials again
    runs = search_runs({"trial a": 0.1, "trial b": 0.1, "trial c": "failed"})
    runs.parent = dataclasses.replace(runs.parent, status=S.STATUS_FAILED)
    runs.children["best_val_acc"] = float("nan")
    runs._histories["val_loss"] = pd.DataFrame({
        "run_id": ["r0", "r1"], "arm": ["trial a", "trial b"], "data": "synthetic", "seed": 0,
        "status": S.STATUS_COMPLETED, "step": [1, 1], "value": [float("nan")] * 2})
    with pytest.raises(T.TableError, match=r"to rank: 2 completed, 1 failed\. None of its 2 completed trials recorded "
                                           r"val_acc as a number: val_loss was NaN at every epoch of 2 of them, as when "
                                           r"training diverges .*\. Let it finish: `sweeps resume my/s.yaml`"):
        best_spec(runs, TUNE, as_typed="my/s.yaml")


def test_a_search_without_a_completed_trial_says_how_to_continue_it_or_why_none_completed():
    unfinished = search_runs({"trial a": "running"}, overrides={"optim.epochs": 4})
    unfinished.parent = dataclasses.replace(unfinished.parent, status=S.STATUS_INTERRUPTED)
    with pytest.raises(T.TableError, match=r"Let it finish: `sweeps resume my/s.yaml` with the options it ran with "
                                           r"\(profile quick, its --data, --set optim.epochs=4\)"):
        best_spec(unfinished, TUNE, as_typed="my/s.yaml")
    with pytest.raises(T.TableError, match=r"Every trial ended without completing: a pruner that stops every trial"):
        best_spec(search_runs({"trial a": "pruned", "trial b": "pruned"}), TUNE)
    # completed, but without a validation split: not the pruner's doing
    without_validation = search_runs({"trial a": 0.8, "trial b": "pruned"})
    without_validation.children["best_val_acc"] = float("nan")
    with pytest.raises(T.TableError, match=r"to rank: 1 completed, 1 pruned\. None of its 1 completed trials recorded "
                                           r"val_acc \(they trained without a validation split") as caught:
        best_spec(without_validation, TUNE)
    assert "pruner" not in str(caught.value)


def test_a_string_key_recorded_as_digits_is_read_back_as_its_text_not_a_number():
    # the search ran with --set model.encoder_checkpoint=2024 (a checkpoint file named 2024): MLflow recorded the
    # param as the text "2024", which read as JSON was the number 2024, so every arm seemed to train otherwise
    overrides = {"model.encoder_checkpoint": "2024"}
    runs = search_runs({"trial a": 0.80, "trial b": 0.90}, overrides=overrides)
    assert ranked_trials(runs, TUNE)[0].params["model.encoder_checkpoint"] == "2024"
    written = best_spec(runs, TUNE, top=2, seeds=2)
    assert yaml.safe_load(written.text)["base"]["model.encoder_checkpoint"] == "2024"


def test_a_search_on_ferplus_by_argmax_gives_a_spec_that_trains_by_argmax():
    # `sweeps run tune --data ferplus=/d --set data.ferplus_rule=argmax`: the spec's cells were checked against the
    # trials on the synthetic faces, which read no vote rule, and the check refused the rule the trials trained with
    runs = search_runs({"trial a": 0.80, "trial b": 0.90})
    runs.children["params.data.ferplus_rule"] = "argmax"
    runs.parent.tags.update({S.TAG_DATA: "ferplus", S.TAG_OVERRIDES: json.dumps({"data.ferplus_rule": "argmax"})})
    written = best_spec(runs, TUNE, top=2)
    assert yaml.safe_load(written.text)["base"]["data.ferplus_rule"] == "argmax"
    assert "--data ferplus=PATH" in written.run_command
