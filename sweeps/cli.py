"""`sweeps`: run the paper's ablations as named sweeps, follow them, and turn them into tables.

The only module that talks to the terminal. Errors by kind: BadParameter for one value,
UsageError for a spec or a combination, ClickException for what goes wrong at run time.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import math
import errno
import os
import shlex
import signal
import sys
import time
from pathlib import Path
from typing import Mapping

import click

from search_spaces import SpecError, list_profiles, list_sweeps
from search_spaces.yaml_doc import MAX_SEEDS, too_many_seeds
from transfer_core.config import DATASETS, ConfigError
from sweeps.files import write_whole

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
# a checkpoint every epoch (small states) is the design; Tune would warn about every snapshot it forces
os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")


class _EchoProgress(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        click.echo(f"[{record.name.split('.')[-1]}] {record.getMessage()}", err=True)


class _WithoutTunesOwnHints(logging.Filter):
    """Tune ends an interrupted run with "Resume experiment with: Tuner.restore(...)" (here it is
    `sweeps resume NAME`, which the CLI says itself), and warns of every trial that never started when
    it reads its per-trial files back for its result grid (the sweep's results are in MLflow)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return "Tuner.restore(" not in message and not message.startswith("Failed to fetch metrics for")


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    for name in ("ray.tune.tune", "ray.tune.analysis.experiment_analysis"):
        tune_logger = logging.getLogger(name)
        if not any(isinstance(f, _WithoutTunesOwnHints) for f in tune_logger.filters):
            tune_logger.addFilter(_WithoutTunesOwnHints())
    for name in ("sweeps.progress", "sweeps.data"):   # the progress line; what each data set decoded to
        progress = logging.getLogger(name)
        progress.setLevel(logging.INFO)
        progress.propagate = False
        if not progress.handlers:
            progress.addHandler(_EchoProgress())


def _parse_sets(values: tuple[str, ...]) -> dict:
    overrides, given = {}, {}
    for value in values:
        key, sep, text = value.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{value!r} is not KEY=VALUE (e.g. optim.epochs=3)", param_hint="--set")
        key = key.strip()
        if not text.strip():   # `--set data.cache_dir=$DIR`, DIR unset: a string key took '' (the default cache)
            raise click.BadParameter(f"{value!r} gives {key} no value: give one ({key}=VALUE), or leave this --set "
                                     "out for the spec's", param_hint="--set")
        if key in overrides:   # as a spec refuses a key twice: which one was meant is not for us to guess
            raise click.BadParameter(f"{key} is set twice ({given[key]}, then {text}): give each key once",
                                     param_hint="--set")
        overrides[key], given[key] = set_value(key, text), text
    return overrides


def set_value(key: str, text: str):
    """A --set value: a string key's unquoted value is its text as typed (`typed_value`), so that
    `data.cache_dir=2024` is the folder "2024" and `amp=false` is refused naming amp's choices (read as JSON,
    the errors said to quote them, which a shell's quotes do not do). `null`/`None` given a key that takes a string
    only (amp, data.augment: one of a few words) is its text too, refused naming the key's choices: as None the
    error told of what YAML reads as null and of quoting, which a --set is not and does not need."""
    from search_spaces.layers import ANNOTATIONS, typed_value

    value = typed_value(key, text)
    return text.strip() if value is None and ANNOTATIONS.get(key) is str else value


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("-v", "--verbose", is_flag=True, help="Log what the library does (INFO level).")
def cli(verbose: bool) -> None:
    """Reproduce, extend and publish TransFER's ablation tables: Ray Tune runs the cells, Optuna
    prunes search trials, MLflow records everything, `sweeps table` writes the paper's table."""
    _setup_logging(verbose)


def _seed_count(ctx, param, value: int | None) -> int | None:
    """--seeds over MAX_SEEDS, refused as it is read: `--seeds 100000000` built a plan of every arm x seed (hours,
    then out of memory) before a word was said."""
    if value is not None and value > MAX_SEEDS:
        raise click.BadParameter(too_many_seeds(value), ctx=ctx, param=param)
    return value


def _run_options(**kw):
    from sweeps.runner import RunOptions

    return RunOptions(profile=kw["profile"], data=tuple(kw["data"]), seeds=kw["seeds"],
                      overrides=_parse_sets(kw["set_values"]), address=kw["address"],
                      max_concurrent=kw["max_concurrent"], cpus_per_trial=kw["cpus_per_trial"],
                      gpus_per_trial=kw["gpus_per_trial"], tracking_uri=kw["tracking_uri"],
                      storage=kw["storage"], max_failures=kw["max_failures"], fresh=kw.get("fresh", False),
                      accept_changed_data=kw["accept_changed_data"])


_DATA_NAMES = ", ".join(d for d in DATASETS if d != "synthetic")   # --data NAME=PATH: the data sets read from a folder


def _run_option_decorators(func):
    options = [
        click.option("--profile", help="Compute profile (default: the spec's, usually 'quick'). See `sweeps list`."),
        click.option("--data", multiple=True, metavar="NAME=PATH",
                     help=f"Data set in its official layout, NAME one of {_DATA_NAMES}, e.g. "
                          "rafdb=/data/RAF-DB/basic (RAF-DB also as Kaggle's class folders: rafdb=.../DATASET, "
                          "holding train/1..7/ and test/1..7/). Repeat to make the data set a column of the table. "
                          "Default: the synthetic faces."),
        click.option("--seeds", type=click.IntRange(min=1), callback=_seed_count,
                     help=f"How many seeds per arm (1 to {MAX_SEEDS}; a search: 1): N runs seeds 0..N-1; "
                          "default: the spec's."),
        click.option("--set", "set_values", multiple=True, metavar="KEY=VALUE",
                     help="Override a config key for every cell, e.g. optim.epochs=3; it wins over the spec and its "
                          "arms (a warning names the arms it overrides; one that makes two arms alike is refused) "
                          "and the table's caption names it."),
        click.option("--address", help="Ray cluster address (default: RAY_ADDRESS, else a local Ray)."),
        click.option("--max-concurrent", type=click.IntRange(min=1),
                     help="At most this many trials at once (default: the profile's, else as many as the "
                          "resources hold)."),
        click.option("--cpus-per-trial", type=click.FloatRange(min=0, min_open=True), help="CPUs reserved per trial (default: the profile's)."),
        click.option("--gpus-per-trial", type=click.FloatRange(min=0),
                     help="GPUs per trial (default: the profile's): a whole number, or a fraction up to 1 that "
                          "shares a GPU (0.5, 0.25)."),
        click.option("--tracking-uri", help="MLflow store (default: MLFLOW_TRACKING_URI, else sqlite:///mlflow.db here)."),
        click.option("--storage", help="Tune results and checkpoints (default: ./ray_results; shared storage on a cluster)."),
        click.option("--max-failures", type=click.IntRange(min=0), default=2, show_default=True,
                     help="Retries of a failed trial, each from its last checkpoint."),
        click.option("--accept-changed-data", is_flag=True,
                     help="Continue an invocation although a data set's fingerprint differs from the one its runs "
                          "trained on (e.g. the same files copied anew); the table then mixes both, and its caption "
                          "says so."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _refuse_empty_run_options(profile: str | None, address: str | None = None, storage: str | None = None) -> None:
    """Of `sweeps run`, `resume` and `show`, before the spec is read: `--profile "$PROFILE"` with PROFILE unset ran
    the spec's own profile, `--address ""` a local Ray instead of the cluster, `--storage ""` ./ray_results."""
    _refuse_empty("--profile", profile, f"a profile ({', '.join(n for n, _ in list_profiles())})", "for the spec's own")
    _refuse_empty("--address", address, "a Ray cluster's address (HOST:6379, or auto)",
                  "for RAY_ADDRESS, else a local Ray")
    _refuse_empty("--storage", storage, "a folder for Tune's results and checkpoints (on a cluster, one every node "
                                        "mounts)", "for ./ray_results")


def _warn_of_arms_overridden(plan) -> None:
    for key, labels in plan.arms_overridden().items():
        click.echo(f"warning: --set {key}={plan.overrides[key]} replaces what arm(s) {', '.join(labels)} set: "
                   f"every cell runs with it, whatever the spec's rows and caption say they compare "
                   f"(the table's caption will name the --set)", err=True)


def _warn_of_a_pruner_that_never_prunes(plan) -> None:
    """A search whose pruner can stop no trial at the plan's epochs costs what an unpruned one does."""
    search = plan.spec.search
    if search is None or "optim.epochs" in search.space:   # epochs drawn per trial: some may be long enough
        return
    from sweeps.pruning import never_prunes

    why = never_prunes(search.pruner, plan.epochs_per_cell, search.num_samples)
    if why is not None:
        click.echo(f"warning: the search's pruner {search.pruner.get('type')!r} can stop no trial here: {why}. "
                   f"Every trial runs all its epochs, as with `pruner: {{type: none}}`", err=True)


def _warn_of_a_space_smaller_than_its_samples(plan) -> None:
    """A search asking for more trials than its space holds configurations trains some of them again: on its one
    seed, a repeat trains what an earlier trial trained (on CPU, the very same numbers). num_samples lowered to the
    space's size is no cure: Optuna's samplers draw with replacement (TPE, random: 6 trials over 6 configurations
    trained 4.3 of them on average over 10 sampler seeds, Optuna alone), so a table's grid is what trains each once."""
    from search_spaces.search import space_size

    search = plan.spec.search
    size = None if search is None else space_size(search.space)
    if size is not None and size < search.num_samples:
        click.echo(f"warning: the search's space holds {size} configuration{'s' * (size != 1)}, fewer than its "
                   f"num_samples ({search.num_samples}): Optuna draws some again, each a trial of its own on the "
                   f"same seed; its samplers draw with replacement, so even num_samples: {size} would train some "
                   f"twice and leave others out. To train each once, compare them as a table's arms (a grid, over "
                   f"several seeds)", err=True)


def _warn_of_a_shipped_name(given: str, spec) -> None:
    """A spec file named like a shipped sweep but not the same records into that sweep's MLflow experiment:
    `sweeps status/table NAME` then show whichever of the two was run last."""
    from search_spaces import load
    from search_spaces.spec import shipped_names

    if given == spec.name or spec.name not in shipped_names() or load(spec.name).text == spec.text:
        return
    click.echo(f"Warning: {given} is named {spec.name!r} like the shipped sweep but differs from it: its runs go to "
               f"the same MLflow experiment, and `sweeps status {spec.name}` and `sweeps table {spec.name}` show "
               f"whichever was run last (rename it to keep them apart)", err=True)


def _warn_of_another_spec_file(given: str, spec, tracking_uri: str) -> None:
    """A spec file named like another spec file run before (two researchers' `name: ablation`), but saying other
    than it, records into that one's MLflow experiment: `sweeps status/table NAME`, and `sweeps table FILE` of
    either file (it reads the file's name:), then show whichever was run last. Each parent run records the spec
    file it was run from (TAG_COMMAND's name, its path resolved) and the spec (spec.yaml); one that says the same
    (a copy, a file moved) is no other sweep. A shipped name's are `_warn_of_a_shipped_name`'s."""
    from mlflow.exceptions import MlflowException

    from search_spaces.spec import names_a_file
    from sweeps import schema, tracking
    from sweeps.invocations import recorded_options, recorded_spec_of

    ours = str(Path(given).expanduser().resolve()) if names_a_file(given) else given
    try:
        client = tracking.client_for(tracking_uri)
        experiment = client.get_experiment_by_name(spec.name)
        parents = [] if experiment is None else tracking.parents(client, experiment.experiment_id, max_results=None)
    except MlflowException:   # the store, checked reachable by prepare: its errors are the run's to say
        return
    latest: dict[str, object] = {}   # another spec file -> its invocation run last
    for parent in parents:
        record = recorded_options(parent.data.tags)
        other = record and record["name"]
        if other and other != ours and names_a_file(other) and other not in latest:
            latest[other] = parent
    for other, parent in latest.items():
        if parent.data.tags.get(schema.TAG_SPEC_HASH) == spec.spec_hash:
            continue
        recorded = recorded_spec_of(tracking.read_text_artifact(client, parent.info.run_id, schema.ARTIFACT_SPEC)
                                    or "")
        if recorded is not None and recorded.content_hash == spec.content_hash:
            continue
        # (a recorded text this version no longer loads: its text differs, as the spec-hash tag says)
        click.echo(f"Warning: {given} is named {spec.name!r} like the spec file {other}, run before (invocation "
                   f"{parent.info.run_id[:8]}, {parent.info.run_name}), but differs from it: their runs go to the same MLflow experiment, and `sweeps status {spec.name}` and "
                   f"`sweeps table {spec.name}` (or of either file) show whichever was run last (rename one, its "
                   "name:, to keep them apart)", err=True)


def _execute(name: str, resume_only: bool, **kw) -> None:
    collecting_later = _set_up_without_collections()
    from sweeps.invocations import command_again   # the command line that continues the invocation, never --fresh
    from sweeps.runner import SweepError, prepare, run_sweep
    from sweeps.tracking import TrackingError
    from search_spaces.data_option import DataOptionError
    from transfer_core.data import DataError

    _refuse_empty_spec_name(name)
    _refuse_empty_run_options(kw["profile"], kw["address"], kw["storage"])
    try:
        prepared = prepare(name, _run_options(**kw))
    except DataOptionError as exc:
        raise click.BadParameter(str(exc), param_hint="--data") from exc
    except (SpecError, ConfigError) as exc:
        raise click.UsageError(str(exc)) from exc
    except SweepError as exc:
        if exc.option:
            raise click.BadParameter(str(exc), param_hint=exc.option) from exc
        raise click.ClickException(str(exc)) from exc
    except TrackingError as exc:
        raise click.ClickException(str(exc)) from exc
    plan = prepared.plan
    _warn_of_arms_overridden(plan)
    _warn_of_a_pruner_that_never_prunes(plan)
    _warn_of_a_space_smaller_than_its_samples(plan)
    _warn_of_a_shipped_name(name, prepared.spec)
    _warn_of_another_spec_file(name, prepared.spec, prepared.tracking_uri)
    click.echo(f"sweep {prepared.spec.name}: {len(plan.cells) or prepared.spec.search.num_samples} "
               f"{'cells' if plan.cells else 'trials'}, profile {prepared.profile.name}, "
               f"data {', '.join(d.name for d in prepared.data)}, "
               f"{prepared.cpus_per_trial:g} CPU + {prepared.gpus_per_trial:g} GPU per trial; "
               f"MLflow {prepared.tracking_uri}", err=True)
    if prepared.options.address or os.environ.get("RAY_ADDRESS"):   # in scrollback, should the driver die with its head
        click.echo(f"Should this driver be cut off (its machine or terminal lost with the head node): "
                   f"`{command_again('run', prepared)}` continues the sweep (`sweeps status {shlex.quote(name)}` "
                   "prints it too)", err=True)
    if collecting_later:
        _collect_from_here(prepared.tracking_uri)
    stdout = sys.stdout   # where the outcome goes; Tune's prints are sent to stderr below
    try:
        with contextlib.redirect_stdout(sys.stderr):   # Tune's own prints go with the progress: stdout is the outcome
            outcome = run_sweep(prepared, resume_only=resume_only,
                                on_cluster_lost=lambda why: _end_as_the_cluster_is_lost(prepared, why, stdout))
    except (SweepError, TrackingError, DataError) as exc:   # DataError: an image found unreadable in decoding
        raise click.ClickException(str(exc)) from exc
    except KeyboardInterrupt as exc:   # a second stop, or one outside training: the invocation is marked interrupted
        signum = getattr(exc, "signum", signal.SIGINT)   # sweeps.stops.StopSignal's, else Ctrl-C
        how = "Ctrl-C" if signum == signal.SIGINT else signal.Signals(signum).name
        click.echo(f"sweep {prepared.spec.name} stopped ({how}, outside training or a second stop signal); "
                   f"`{command_again('run', prepared)}` continues it (or starts it, if it had not begun)", err=True)
        sys.exit(128 + signum)
    from sweeps.schema import seen_under

    # a cell still tagged running when the invocation stopped is interrupted, as `sweeps status` calls it
    counts = ", ".join(f"{v} {seen_under(k, outcome.status)}" for k, v in outcome.counts.items() if v)
    # a run again of a finished invocation read "completed in 10 s (2 completed; 2 already done before)", as if
    # 2 cells had trained now
    unit = "cells" if plan.cells else "trials"
    nothing_ran = (outcome.status == "completed" and outcome.skipped_cells > 0
                   and sum(outcome.counts.values()) <= outcome.skipped_cells)
    click.echo(f"sweep {prepared.spec.name} {outcome.status} in {outcome.elapsed_s:.0f} s"
               + (f": nothing to train, all {outcome.skipped_cells} {unit} were already done" if nothing_ran else "")
               + f" ({counts or 'no cells'}; {outcome.skipped_cells} already done before). "
               f"MLflow parent run {outcome.parent_run_id}.")
    spec = prepared.spec
    if outcome.status == "completed" and spec.kind == "search" and not outcome.counts.get("completed"):
        click.echo(f"No trial of the search completed ({counts or 'none ran'}): its table has no best configuration"
                   + (f". Give its pruner ({spec.search.pruner.get('type')}) a lower bar or more warm-up steps "
                      "(search.pruner), or pruner: {type: none}" if outcome.counts.get("pruned") else ""), err=True)
    if outcome.status == "completed":
        from sweeps.tracking import tracking_uri_to_repeat

        # the store as the continue commands name it: `--tracking-uri sqlite:///mlflow.db` as typed read another
        # store from another folder
        where = tracking_uri_to_repeat(kw.get("tracking_uri"), prepared.tracking_uri)
        if outcome.report_dir is not None:   # also logged to the parent run, under tables/ and figures/
            click.echo(f"Tables (LaTeX, Markdown, CSV, HTML, Parquet) and figures: {outcome.report_dir}")
        click.echo("Next: " + shlex.join(["sweeps", "table", prepared.spec.name, "--run", outcome.parent_run_id[:8],
                                          "--format", "latex", *(["--tracking-uri", where] if where else [])]))
        if spec.kind == "search" and outcome.counts.get("completed"):   # the README's next step of a search
            click.echo("Its best trials over seeds, as a table spec to run: " + shlex.join(
                ["sweeps", "best", prepared.spec.name, "--run", outcome.parent_run_id[:8], "-o",
                 f"{prepared.spec.name}_best.yaml", *(["--tracking-uri", where] if where else [])]))
    else:
        click.echo(f"Continue with: {command_again('resume', prepared)}")
        # a stop by signal exits as the shell reports one (130 Ctrl-C, 143 SIGTERM): a job script can tell a
        # sweep it stopped from one whose cells failed
        sys.exit(128 + outcome.stop_signal if outcome.stop_signal else 1)


CLUSTER_LOST_EXIT = 1   # as Ray's own end of a driver whose cluster is lost


def _end_as_the_cluster_is_lost(prepared, why: str, stdout) -> None:
    """Called from the runner's watch thread once the cluster stops answering: the usual stop message (its
    "Continue with:" on `stdout`, the outcome's stream), then the process ends before Ray's core worker ends
    it without one (the main thread waits on the lost GCS)."""
    from sweeps.invocations import command_again

    remote = prepared.options.address or os.environ.get("RAY_ADDRESS")
    click.echo(f"sweep {prepared.spec.name} stopped: {why}{' (its head node gone?)' if remote else ''}, and Ray "
               "ends a driver that has lost its cluster. Finished cells and the trials' checkpoints are kept"
               + ("; once the cluster is up again (`ray up`, or `ray start --head`):" if remote else ":"), err=True)
    click.echo(f"Continue with: {command_again('resume', prepared)}", file=stdout)
    for stream in (stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(CLUSTER_LOST_EXIT)


@cli.command()
@click.argument("name")
@_run_option_decorators
@click.option("--fresh", is_flag=True,
              help="Start a new invocation: a new MLflow parent run in which every cell trains again, even where "
                   "one with this spec, --profile, --data and --set is recorded (unfinished, completed, or being run "
                   "now). That one stays recorded; run statuses its driver kept in --storage, unwritten to MLflow, "
                   "are written to it first.")
def run(name: str, **kw) -> None:
    """Run sweep NAME (a shipped name or a spec file); an unfinished earlier run of it is continued.

    Exit status: 0 completed; 1 an error (e.g. a tracking store it cannot use), cells failed or left
    unfinished, or the Ray cluster lost; 2 a bad option or spec; 128 + the signal's number when a signal
    stopped it (130 Ctrl-C,
    143 SIGTERM; `sweeps resume NAME` continues it)."""
    _execute(name, resume_only=False, **kw)


@cli.command()
@click.argument("name")
@_run_option_decorators
def resume(name: str, **kw) -> None:
    """Continue an interrupted sweep NAME: finished cells are kept, the others resume from checkpoints.

    The invocation is found by the spec, --profile, --data and --set it was run with: give them as then
    (`sweeps status NAME` prints the command, with the resources it ran with). One that is already
    completed with these seeds is an error naming the unfinished invocations recorded.
    Exit status as `sweeps run`'s."""
    _execute(name, resume_only=True, **kw)


@cli.command("list")
def list_command() -> None:
    """The named sweeps and the compute profiles."""
    click.echo("Sweeps:")
    for name, description in list_sweeps():
        click.echo(f"  {name:<16} {description}")
    click.echo("Profiles:")
    for name, description in list_profiles():
        click.echo(f"  {name:<16} {description}")


@cli.command()
@click.argument("name")
@click.option("--profile", help="Compute profile (default: the spec's).")
@click.option("--data", multiple=True, metavar="NAME=PATH", help="As for `sweeps run`.")
@click.option("--seeds", type=click.IntRange(min=1), callback=_seed_count,
              help=f"How many seeds per arm (1 to {MAX_SEEDS}; a search: 1; seeds 0..N-1); default: the spec's.")
@click.option("--set", "set_values", multiple=True, metavar="KEY=VALUE", help="As for `sweeps run`.")
@click.option("--json", "as_json", is_flag=True,
              help="Print the plan as JSON (its warnings go to stderr, as without it).")
@click.option("--tracking-uri", help="MLflow store where a spec file's name is looked up, to warn of another spec "
                                     "file of that name run before, as `sweeps run` does (default: "
                                     "MLFLOW_TRACKING_URI, else sqlite:///mlflow.db here where it exists).")
def show(name: str, profile, data, seeds, set_values, as_json: bool, tracking_uri) -> None:
    """The expanded plan of sweep NAME: its cells (a search: its space), epochs per cell and the budget in
    epochs. Runs nothing."""
    from search_spaces import expand, load, load_profile, parse_data_options
    from search_spaces.data_option import DataOptionError, check_data_layouts
    from sweeps.runner import check_pruner

    _refuse_empty_spec_name(name)
    _refuse_empty_run_options(profile)
    try:
        spec = load(name)
        chosen = load_profile(profile or spec.profile)
        choices = parse_data_options(data, check=False)   # layouts: as the cells read them, below
        plan = expand(spec, chosen, choices, tuple(range(seeds)) if seeds else None, _parse_sets(set_values))
        check_data_layouts(c.data for c in plan.configs)
        check_pruner(spec)
    except DataOptionError as exc:
        raise click.BadParameter(str(exc), param_hint="--data") from exc
    except (SpecError, ConfigError) as exc:
        raise click.UsageError(str(exc)) from exc
    # warned with --json too (it printed none): each goes to stderr, so stdout stays the JSON a script reads
    _warn_of_arms_overridden(plan)
    _warn_of_a_pruner_that_never_prunes(plan)
    _warn_of_a_space_smaller_than_its_samples(plan)
    _warn_of_a_shipped_name(name, spec)
    _warn_of_another_spec_file_shown(name, spec, tracking_uri)
    if as_json:
        click.echo(json.dumps(plan.to_dict(), indent=2, default=str))
        return
    click.echo(f"{spec.name} ({spec.kind}): {spec.title}")
    click.echo(f"  {spec.description}")
    click.echo(f"  profile {chosen.name}, data {', '.join(d.name for d in choices)}, seeds {list(plan.seeds)}")
    click.echo(f"  metric {spec.metric} ({spec.mode})")
    if plan.cells:
        click.echo(f"  {len(plan.cells)} cells x {plan.epochs_per_cell} epochs = {plan.total_epochs} epochs:")
        for cell in plan.cells:
            click.echo(f"    {cell.cell_id}  {cell.run_name}")
    else:
        search = spec.search
        drawn = {"tpe": f" (the first {search.n_startup_trials} at random)",
                 "gp": f" (a Gaussian process; the first {search.n_startup_trials} at random)",
                 "qmc": " (a scrambled Sobol sequence; the first at random)"}.get(search.sampler, "")
        click.echo(f"  {search.num_samples} Optuna trials, sampler {search.sampler}{drawn}"
                   + f", at most {plan.total_epochs} epochs, over:")
        for key, param in search.space.items():
            click.echo(f"    {key}: {_param_text(param)}")
        args = ", ".join(f"{k} {v}" for k, v in search.pruner.items() if k != "type")
        click.echo(f"  pruner {search.pruner.get('type')}" + (f" ({args})" if args else ""))


def _warn_of_another_spec_file_shown(given: str, spec, option: str | None) -> None:
    """`sweeps show FILE`: `_warn_of_another_spec_file` as `sweeps run FILE` warns, where a store is there to ask:
    none is created (a sqlite file not there yet holds no other file's runs), and a server away is said, not
    waited for (show runs nothing, and a shipped sweep's name reads no store)."""
    from search_spaces.spec import names_a_file
    from sweeps import tracking

    if not names_a_file(given):
        return
    try:
        uri = tracking.resolve_tracking_uri(option)
    except tracking.TrackingError as exc:
        if option is not None:
            raise click.BadParameter(str(exc), param_hint="--tracking-uri") from exc
        return   # the default store unusable: `sweeps run` says so; show runs nothing
    database = tracking.sqlite_path(uri)
    if database is not None and not tracking.is_sqlite_database(database):   # none, or an empty file (`touch`ed):
        return                                                                 # MLflow would make its tables in it
    if not tracking.available(uri):
        click.echo(f"warning: {tracking.away_text(uri)}: whether another spec file named {spec.name!r} was run "
                   "before is not checked", err=True)
        return
    _warn_of_another_spec_file(given, spec, uri)


def _param_text(param) -> str:
    """A search parameter as `sweeps show` prints it: 'float 1e-05 .. 0.01, log', 'one of 4, 8'."""
    if param.type == "categorical":
        return "one of " + ", ".join(map(str, param.choices))
    return (f"{param.type} {param.low:g} .. {param.high:g}" + (", log" if param.log else "")
            + (f", step {param.step:g}" if param.step is not None else ""))


@cli.command()
@click.argument("name", required=False)
@click.option("--run", "run_id", help="Parent run id (or a unique prefix) of the invocation of NAME to show; default: "
                                      "the one run last.")
@click.option("--tracking-uri", help="MLflow store (default: MLFLOW_TRACKING_URI, else sqlite:///mlflow.db here).")
def status(name: str | None, run_id: str | None, tracking_uri: str | None) -> None:
    """Progress of the invocation of sweep NAME run last (or --run's; all sweeps without NAME), read from
    MLflow, and the command that continues it if it is unfinished; up to 5 others, the one run last first,
    are named by their profile, data and --set. Runs whose driver was killed without a word (SIGKILL, out of
    memory), which MLflow would show running for ever, are ended there as KILLED."""
    from sweeps import schema, tracking
    from sweeps.host_locks import sweeps_starting

    _refuse_empty_name(name, every=True)   # `sweeps status "$SWEEP"`, SWEEP unset: it showed every sweep
    if run_id is not None and not name:   # an id names an invocation of one sweep: which one is not guessed
        raise click.UsageError("--run picks an invocation of one sweep: give the sweep's NAME too "
                               "(`sweeps status NAME --run ID`)")
    _refuse_empty_run_id(run_id, name)
    try:   # as table and plot: exit 1; the message names the option or MLFLOW_TRACKING_URI, whichever is at fault
        uri = tracking.resolve_tracking_uri(tracking_uri)
    except tracking.TrackingError as exc:
        raise click.ClickException(str(exc)) from exc
    _require_store(uri, tracking_uri)
    client = tracking.client_for(uri)
    given, name = name, name and _recorded_name(name)
    experiments = ([client.get_experiment_by_name(name)] if name
                   else client.search_experiments())
    starting_here = sweeps_starting(uri)   # runs that have not made their experiment, or their parent run, yet
    if name and experiments[0] is None and not any(sweep == name for _, sweep in starting_here):
        from sweeps.tables import unrecorded_sweep

        raise click.ClickException(unrecorded_sweep(client, uri, name, given,
                                                     tracking.tracking_uri_to_repeat(tracking_uri, uri)))
    shown = 0
    experiments = [e for e in experiments if e is not None]
    for unmade in dict.fromkeys(sweep for _, sweep in starting_here
                                if (name is None or sweep == name) and sweep not in {e.name for e in experiments}):
        shown += 1   # a run that has not made its experiment yet (its first step, a request away from a server)
        click.echo(_starting_line(unmade, [pid for pid, sweep in starting_here if sweep == unmade]))
    for experiment in experiments:
        # runs a driver killed without a word left RUNNING in MLflow (the UI showed them running for ever): ended
        tracking.end_runs_of_gone_drivers_if_possible(client, experiment.experiment_id, reader=True)
        if run_id is not None:   # as `sweeps table --run` picks it, with its errors
            from sweeps.tables import TableError, invocation_named

            every = tracking.parents(client, experiment.experiment_id, max_results=sys.maxsize)
            try:   # none yet: as without --run, a run starting is said, else that there is none, below
                parent = invocation_named(every, run_id, name) if every else None
            except TableError as exc:
                raise click.ClickException(str(exc)) from exc
            others = [p for p in every if p is not parent][:6]
        else:
            parent, *others = tracking.parents(client, experiment.experiment_id, max_results=7) or [None]
        if parent is None:
            starting = [pid for pid, sweep in starting_here if sweep == experiment.name]
            if starting:   # its parent run is made once its data are decoded
                shown += 1
                click.echo(_starting_line(experiment.name, starting))
            continue
        shown += 1
        tags = parent.data.tags
        status = tracking.parent_status(tags)
        cells = tracking.latest_per_cell(   # as cell_statuses
            tracking.child_runs(client, experiment.experiment_id, parent.info.run_id))
        plan_total, plan_cells = _planned_cells(client, parent.info.run_id, tags)
        outside = 0
        if plan_cells is None and plan_total and tags.get(schema.TAG_KIND) != "search":
            # a database's copy (no plan.json): the cells of its latest run are those of its seeds
            seeds = tracking.json_tag(tags, schema.TAG_SEEDS, [])
            seeds = {str(s) for s in seeds} if isinstance(seeds, list) else set()
            if seeds:
                plan_cells = {cell_id for cell_id, r in cells.items() if r.data.tags.get(schema.TAG_SEED) in seeds}
        if plan_cells is not None:   # a table continued with fewer --seeds keeps the other seeds' runs
            outside = sum(cell_id not in plan_cells for cell_id in cells)
            cells = {cell_id: r for cell_id, r in cells.items() if cell_id in plan_cells}
        statuses = [schema.seen_under(r.data.tags.get(schema.TAG_STATUS, ""), status) for r in cells.values()]
        failed = [r for r in cells.values() if r.data.tags.get(schema.TAG_STATUS) == schema.STATUS_FAILED]
        unfinished = schema.seen_under(schema.STATUS_RUNNING, status)   # or interrupted
        counts = {s: statuses.count(s) for s in
                  (schema.STATUS_COMPLETED, unfinished, schema.STATUS_PRUNED, schema.STATUS_FAILED)}
        if unfinished != schema.STATUS_INTERRUPTED and schema.STATUS_INTERRUPTED in statuses:
            # tagged so as its invocation completed without them (a search's num_samples lowered): said where any
            counts = {**dict(list(counts.items())[:2]), schema.STATUS_INTERRUPTED: statuses.count(
                schema.STATUS_INTERRUPTED), **dict(list(counts.items())[2:])}
        if status != tags.get(schema.TAG_STATUS, schema.STATUS_RUNNING):
            status += (" (stopped without notice: its driver process on this host is gone)"
                       if tracking.driver_is_here(tags) else
                       f" (stopped without notice, it seems: its driver, {tracking.driver_description(tags)}, "
                       "has gone silent)")
        # where an invocation listed below reads alike but for its data folders, they tell this one apart too
        click.echo(f"{experiment.name}: {status} (profile {tags.get(schema.TAG_PROFILE, '?')}, "
                   f"data {tracking.data_names(tags)}{tracking.set_options(tags)}"
                   f"{tracking.data_folders_apart(parent, among=others[:5])}, run {parent.info.run_id})")
        # a search asked for fewer num_samples than had run keeps the trials it ran
        lowered = (plan_total and tags.get(schema.TAG_KIND) == "search"
                   and counts[schema.STATUS_COMPLETED] + counts[schema.STATUS_PRUNED] > plan_total)
        click.echo("  " + ", ".join(f"{v} {k}" for k, v in counts.items())
                   + (f" (num_samples lowered to {plan_total} after they ran)" if lowered else
                      f" of {plan_total} planned" if plan_total else "")
                   + (f" ({outside} run{'s' if outside > 1 else ''} of cells its latest run left out, as seeds "
                      "dropped with fewer --seeds, not counted)" if outside else ""))
        running_here = {tracking.driver_pid_here(p.data.tags) for p in (parent, *others)
                        if tracking.parent_status(p.data.tags) == schema.STATUS_RUNNING}
        starting = [pid for pid, sweep in starting_here if sweep == experiment.name and pid not in running_here]
        if starting:   # one that has not made (or taken up) its parent run yet: the one shown is an earlier one
            click.echo(f"  a `sweeps run` of it is starting (process {', '.join(map(str, starting))} on this host): "
                       "its invocation is shown once its data are decoded and Ray has started")
        changed = tracking.versions_changed(tags)   # a continuation ran under other versions than it began with
        if changed:
            click.echo("  its cells trained under several versions: "
                       + ", ".join(f"{package} {versions}" for package, versions in changed.items()))
        for run in sorted(failed, key=lambda r: r.info.run_name or "")[:FAILED_SHOWN]:   # why, without the UI
            error = run.data.tags.get(schema.TAG_ERROR) or "no error recorded (see the trial's error.txt in Tune's storage)"
            click.echo(f"  failed: {run.info.run_name}: "
                       + (error if len(error) <= FAILED_ERROR_CHARS else error[:FAILED_ERROR_CHARS - 3] + "..."))
        if len(failed) > FAILED_SHOWN:
            click.echo(f"  and {len(failed) - FAILED_SHOWN} more failed (tag {schema.TAG_ERROR} of their MLflow runs)")
        if tracking.parent_status(tags) not in (schema.STATUS_COMPLETED, schema.STATUS_RUNNING):
            # the line `sweeps run` printed when it stopped, which a closed terminal or a killed driver lost
            from sweeps.invocations import command_words, recorded_options

            record = recorded_options(tags)
            if record is not None:
                where = tracking.tracking_uri_to_repeat(tracking_uri, uri)
                click.echo(f"  continue with: {shlex.join(command_words('resume', record, where))}")
        if others:   # the one run last is shown, as `sweeps table` shows it (another: `sweeps table --run`)
            click.echo(f"  other invocations{' (the 5 run last)' if len(others) > 5 else ''}: "
                       + "; ".join(tracking.invocation_options(p, among=[parent, *others[:5]]) for p in others[:5]))
    if not shown:   # an experiment a `sweeps run` made before it stopped on an error (resources, data) has no run
        raise click.ClickException(_no_run_yet(uri, name, given) if name else f"no sweep has a run in {uri} yet")


def _no_run_yet(uri: str, name: str, given: str) -> str:
    """`sweeps status NAME` of a sweep with an experiment but no parent run, and no `sweeps run` of it starting
    here (`host_locks.sweeps_starting`: this user's, on this host). Into a sqlite store, the last `sweeps run`
    stopped before it made one; a server is written by other hosts and users too, whose runs starting (the
    experiment is made at once, the parent run tens of seconds later) no lock here tells of, so it is not said
    that one stopped. Still an error (exit 1), as `sweeps table` and `plot` are: there is no invocation to show,
    and a script that waits for one (`until sweeps status NAME; do sleep 30; done`) goes on waiting."""
    from sweeps import tracking

    if tracking.sqlite_path(uri) is not None:
        return f"no run of sweep {name!r} in {uri} yet: the last `sweeps run {given}` stopped before it started one"
    return (f"no run of sweep {name!r} in {uri} yet (no parent run): no `sweeps run {given}` of this user's on this "
            "host is starting it; one on another host, or another user's, may be (its run is made once its data "
            "are decoded and Ray has started), or the last one stopped before it made one")


def _starting_line(name: str, pids: list[int]) -> str:
    """`sweeps status` of a sweep whose run here has not made its MLflow run yet (`host_locks.sweeps_starting`)."""
    return (f"{name}: starting (`sweeps run` process {', '.join(map(str, pids))} on this host: its MLflow run, with "
            "its cells, is made once its data are decoded and Ray has started)")


FAILED_SHOWN, FAILED_ERROR_CHARS = 3, 200   # sweeps status: the failed runs named, and their errors' length


def _require_store(uri: str, option: str | None) -> None:
    """Reading commands never create an empty store where the user expected one, nor wait minutes on
    MLflow's retries for a server that does not answer. `option`: the --tracking-uri given (None: none was),
    for the message to say where `uri` came from."""
    from sweeps import tracking

    named = tracking.named_by(option)
    instead = " (or unset MLFLOW_TRACKING_URI, or set it to that store)" if tracking.uri_from_env(option) else ""
    database = tracking.sqlite_path(uri)
    if database is not None and not database.exists():
        raise click.ClickException(f"no MLflow store at {uri}{named}: run a sweep here first, or pass "
                                   f"--tracking-uri{instead}")
    if not tracking.reachable(uri):
        raise click.ClickException(f"MLflow tracking server {uri}{named} is unreachable (no answer to /health): "
                                   f"start it, or pass the --tracking-uri of the store the sweep recorded into"
                                   f"{instead}")


def _recorded_name(name: str) -> str:
    """The sweep's name as MLflow records it: NAME, or the `name:` of a spec file given as `sweeps run` took it."""
    if Path(name).suffix in (".yaml", ".yml") and not Path(name).is_file():
        raise click.ClickException(f"no spec file {name} in {Path.cwd()}: give its path as `sweeps run` took it, "
                                   "or the sweep's name (its spec's name:)")
    if Path(name).suffix in (".yaml", ".yml"):
        from search_spaces import load

        try:
            return load(name).name
        except SpecError as exc:
            raise click.UsageError(str(exc)) from exc
    return name


def _load_runs(name: str, run_id: str | None, tracking_uri: str | None):
    from sweeps import tracking
    from sweeps.report import recorded_spec, under_spec_labels
    from sweeps.tables import TableError, load_sweep_runs

    recorded = _recorded_name(name)
    try:
        uri = tracking.resolve_tracking_uri(tracking_uri)
        _require_store(uri, tracking_uri)
        runs = load_sweep_runs(recorded, tracking_uri=uri, parent_run_id=run_id, as_typed=name,
                               uri_to_repeat=tracking.tracking_uri_to_repeat(tracking_uri, uri))
        spec = recorded_spec(runs)
        return under_spec_labels(runs, spec), spec
    except (TableError, tracking.TrackingError, SpecError) as exc:   # SpecError: a recorded spec.yaml unreadable
        raise click.ClickException(str(exc)) from exc


def _formats_by_suffix() -> dict[str, str]:
    """A table file's suffix -> the format it holds (t.tex: latex), with the usual other spellings."""
    from sweeps.table_formats import TABLE_FORMATS

    by_suffix = {f.suffix: f.name for f in (TABLE_FORMATS.get(n) for n in TABLE_FORMATS.names())}
    by_suffix.update({".markdown": "markdown", ".htm": "html", ".latex": "latex"})
    return by_suffix


_TEXT_SUFFIXES = ("", ".txt")   # -o FILE without --format: Markdown, which is plain text
# the files --explain writes its plain-text record to (_TEXT_SUFFIXES, and Markdown's); {suffix}: the one given
_EXPLAIN_FILES = "name the file *.txt or *.md, or give it no suffix, not *{suffix}"


def _table_format(fmt: str | None, output: str | None) -> str:
    """--format, else the format -o FILE's suffix names (t.tex: latex), else markdown (stdout, a file without
    a suffix or a .txt). A --format that contradicts the suffix is an error: `-o table2.tex` must never hold
    Markdown, nor t.parquet text; so is another suffix without --format (`-o t.yaml` held Markdown, silently)."""
    from sweeps.table_formats import TABLE_FORMATS

    suffix = Path(output).suffix.lower() if output else ""
    by_suffix = _formats_by_suffix()
    named = by_suffix.get(suffix)
    if fmt is None:
        if named is None and suffix not in _TEXT_SUFFIXES:
            known = ", ".join(" or ".join(f"*{s}" for s, n in by_suffix.items() if n == name) + f" ({name})"
                              for name in TABLE_FORMATS.names())
            raise click.UsageError(f"-o {output}: its suffix {Path(output).suffix} names no table format; name the "
                                   f"file {known}, or give --format "
                                   f"({', '.join(TABLE_FORMATS.names())}) to write that format to it")
        return named or "markdown"
    if named is not None and named != fmt:
        raise click.UsageError(f"--format {fmt} does not fit -o {output} (a {named} file's suffix): "
                               f"drop --format, or name the file *{TABLE_FORMATS.get(fmt).suffix}")
    return fmt


def _refuse_to_replace_what_is_no_table(output: str | None) -> None:
    """`-o mlflow.db` replaced the whole MLflow store with a Markdown table (an unknown suffix is written as
    markdown then; now only with --format), and `-o specs/mine.yaml` a spec: an existing file that is no table
    is never written over."""
    if not output:
        return
    from sweeps.tracking import is_sqlite_database

    path = Path(output)
    # a table, a text file (--explain), or a file without a suffix (a table written there before, as markdown),
    # but never a database, whatever its name (an MLflow store named `mlflow`)
    if path.is_file() and path.suffix.lower() not in {*_formats_by_suffix(), "", ".txt"}:
        raise click.UsageError(f"-o {output} exists and is no table or text file (a {path.suffix} file): it is not "
                               "replaced. Name the table *.tex, *.md, *.csv, *.html or *.parquet")
    if is_sqlite_database(path):
        raise click.UsageError(f"-o {output} is an SQLite database (an MLflow store?): it is not replaced. Name the "
                               "table *.tex, *.md, *.csv, *.html or *.parquet")


def _refuse_empty(option: str, value: str | None, give: str, otherwise: str | None = None) -> None:
    """An option (or NAME) given empty or blank, as `--run "$RUN"` with RUN unset in a script, is refused: read as
    left out, it did what leaving it out does (the invocation run last, the spec's profile, a local Ray, the
    default cache), without a word. `otherwise`: what leaving it out does, where it may be left out."""
    if value is not None and not value.strip():
        raise click.UsageError(f"{option} is empty: give {give}"
                               + (f", or leave {option} out {otherwise}" if otherwise else ""))


def _refuse_empty_run_id(run_id: str | None, name: str) -> None:
    """--run of the reading commands (table, plot, best, status)."""
    if run_id is None:
        return
    _refuse_empty("--run", run_id, f"a parent run id or a unique prefix of one (`sweeps status {shlex.quote(name)}` "
                                   "names the invocations)", "for the one run last")


def _refuse_empty_name(name: str | None, every: bool = False) -> None:
    """NAME of the reading commands: empty, `sweeps status "$SWEEP"` showed every sweep, and the others said no
    sweep '' was recorded and to start it with `sweeps run ''`. `every`: leaving it out shows every sweep."""
    _refuse_empty("NAME", name, "the sweep's name, or its spec file as `sweeps run` took it (`sweeps status` names "
                                "the sweeps recorded)", "for every sweep" if every else None)


def _refuse_empty_spec_name(name: str) -> None:
    """NAME of `sweeps run`, `resume` and `show`, empty (`sweeps run "$SWEEP"`, SWEEP unset): it was looked up as a
    sweep named '' ("unknown sweep ''")."""
    from search_spaces.spec import shipped_names

    _refuse_empty("NAME", name, f"a shipped sweep's name ({', '.join(shipped_names())}; `sweeps list`) "
                                "or the path to a .yaml spec file")


def _stem(name: str) -> str:
    """NAME as a file's stem: a spec file's name without its folder and suffix."""
    return Path(name).stem if Path(name).suffix in (".yaml", ".yml") else name


def _refuse_a_path_under_a_file(option: str, output: str, remedy: str) -> None:
    """`output` under a file (it failed only once the work was done, "[Errno 17] File exists")."""
    path = Path(output)
    above = next((p for p in path.parents if p.exists()), None)
    if above is not None and not above.is_dir():
        raise click.UsageError(f"{option} {output}: {above} is a file, not a folder, so nothing can be written under it; "
                               f"{remedy}, e.g. {option} {shlex.quote(str(above.parent / path.name))}")


def _check_output_file(output: str | None, example: str, printed: str) -> None:
    """-o FILE that cannot be a file, refused before any run is read or anything written: a folder (as typed,
    `-o tables/`, it was written as a file named tables; an existing one got click's bare "is a directory"), a
    path under a file (it failed once the work was done), an empty name (an unset variable in a script: the
    output was printed). `example`: a file name that would do; `printed`: what leaving -o out prints."""
    if output is None:
        return
    _refuse_empty("-o", output, f"a file name (e.g. -o {example})", f"to print {printed}")
    path = Path(output)
    if path.is_dir() or output.endswith(("/", os.sep)):
        raise click.UsageError(f"-o {output} is a folder: name a file in it, e.g. -o "
                               f"{shlex.quote(str(path / example))}")
    _refuse_a_path_under_a_file("-o", output, "name a file in a folder")


def _check_output_folder(output: str | None, default: Path) -> None:
    """-o FOLDER (the figures') that cannot be one, refused before any run is read: an empty name (the figures
    went to `default`), `-` (no stdout for figures: a folder named - was made), a file (click's bare "is a
    file"), a path under a file."""
    if output is None:
        return
    _refuse_empty("-o", output, f"a folder for the figures (e.g. -o {default})", f"for {default}")
    if output == "-":
        raise click.UsageError(f"-o - : figures are files, not printed: give a folder for them (e.g. -o {default}), "
                               f"or leave -o out for {default}")
    if Path(output).exists() and not Path(output).is_dir():
        raise click.UsageError(f"-o {output} is a file: give a folder for the figures (e.g. -o {default})")
    _refuse_a_path_under_a_file("-o", output, "give a folder beside it")


def _check_table_output(output: str | None, name: str, fmt: str | None, explaining: bool) -> None:
    """`sweeps table -o FILE`: as `_check_output_file`, with an example named for the sweep and the format."""
    if output is None:
        return
    from sweeps.table_formats import TABLE_FORMATS

    suffix = (".txt" if explaining else TABLE_FORMATS.get(fmt).suffix if fmt is not None else
              Path(output).suffix if Path(output).suffix.lower() in _formats_by_suffix() else ".md")
    _check_output_file(output, _stem(name) + suffix, "the record" if explaining else "the table")


@cli.command()
@click.argument("name")
@click.option("--run", "run_id", help="Parent run id (or a unique prefix) of the invocation; default: the one run last.")
@click.option("--format", "fmt", type=click.Choice(["latex", "markdown", "csv", "parquet", "html"]),
              help="Output format (default: the one -o FILE's suffix names: .tex, .md, .csv, .html, .parquet; "
                   "markdown on stdout, or to a file without a suffix or a .txt; another suffix needs --format).")
@click.option("--metric", help="Main metric (default: the spec's first table.metrics: sel_test_acc, test at the "
                               "best-validation epoch, in the shipped ablations; best_val_acc in tune), e.g. "
                               "best_test_acc (the best test epoch, as commonly reported); acc or mca: the "
                               "accuracy or mean class accuracy under the spec's own selection rule. A "
                               "search's table may put a loss first (best_val_loss), bold its trial chosen on "
                               "validation; a table of arms takes an accuracy.")
@click.option("--decimals", type=click.IntRange(1, 2), default=2, show_default=True,
              help="Decimals of the percentages in the table.")
@click.option("-o", "--output", type=click.Path(writable=True),   # a folder: refused by _check_table_output
              help="Write to FILE instead of stdout (- : stdout; its folders are made; an existing table is "
                   "replaced; a file of another kind, as mlflow.db or a spec's .yaml, never).")
@click.option("--wide", is_flag=True,
              help="LaTeX: a table* spanning both columns of a two-column paper (a one-column table with several "
                   "data sets, or with Δ, is wider than a column).")
@click.option("--fit", is_flag=True,
              help="LaTeX: scale the table down to the text width where it is wider (several data sets with Δ "
                   "are wider even than a --wide page); needs \\usepackage{graphicx}.")
@click.option("--explain", "explain_row", metavar="ROW",
              help="The reproducibility record of one row instead, as plain text (to -o FILE if given: a .txt "
                   "or .md file, or one without a suffix; --format does not apply).")
@click.option("--tracking-uri", help="MLflow store (default: MLFLOW_TRACKING_URI, else sqlite:///mlflow.db here).")
def table(name: str, run_id, fmt: str, metric, decimals: int, output, wide: bool, fit: bool, explain_row,
          tracking_uri) -> None:
    """The paper table of sweep NAME from its recorded runs (also while it still runs)."""
    from sweeps.report import caption_facts, sweep_table
    from sweeps.table_formats import TABLE_FORMATS, explain, render
    from sweeps.tables import TableError

    if explain_row is not None:   # a record in plain text: no table format holds it
        suffix = Path(output).suffix.lower() if output else ""
        if fmt is not None or suffix in set(_formats_by_suffix()) - {".md", ".markdown"}:
            raise click.UsageError(
                "--explain writes a plain-text record, not a table: "
                + (f"drop --format {fmt}" if fmt is not None else _EXPLAIN_FILES.format(suffix=suffix)))
    _refuse_empty_name(name)
    _refuse_empty_run_id(run_id, name)   # `--run "$RUN"`, RUN unset: it showed the one run last
    _refuse_empty("--metric", metric, "a metric, e.g. sel_test_acc or best_test_acc (acc, mca: under the spec's "
                                      "selection rule)", "for the spec's first")
    # `--explain "$ROW"`, ROW unset: refused only once the runs were read, as an unknown row ''
    _refuse_empty("--explain", explain_row, f"a row's label as the table prints it (`sweeps table {shlex.quote(name)}` "
                                            "shows the rows)", "for the whole table")
    if output == "-":   # stdout, as `-` is to most commands (it wrote a file named -)
        output = None
    _check_table_output(output, name, fmt, explain_row is not None)
    _refuse_to_replace_what_is_no_table(output)   # first: `-o mlflow.db` is refused as what it is
    suffix = Path(output).suffix if output else ""
    if explain_row is not None and suffix.lower() not in {*_TEXT_SUFFIXES, ".md", ".markdown"}:
        # nor a file of another kind: `-o e.log` was written, then refused the next time as "no table or text file"
        raise click.UsageError("--explain writes a plain-text record, not a table: " + _EXPLAIN_FILES.format(suffix=suffix))
    fmt = "markdown" if explain_row is not None else _table_format(fmt, output)
    if TABLE_FORMATS.get(fmt).binary and not output:   # before the runs are read (no store: said instead)
        # `-o -` too: it said "give -o FILE" to one who had given -o, without saying why - was not taken
        raise click.UsageError(f"--format {fmt} is binary: give -o FILE; a {fmt} table needs a file (stdout, "
                               "-o - or no -o, takes the text formats only)")
    shaping = [flag for flag, on in (("--wide", wide), ("--fit", fit)) if on]
    if shaping and fmt != "latex":
        click.echo(f"Warning: {' and '.join(shaping)} shape{'s' if len(shaping) == 1 else ''} a LaTeX table only; "
                   f"the {fmt} one is as without", err=True)
    runs, spec = _load_runs(name, run_id, tracking_uri)
    try:
        result = sweep_table(runs, spec, metric)
        if explain_row is not None:   # plain text, to -o FILE too
            content = explain(result, explain_row, runs, decimals=decimals)
        else:
            facts = dataclasses.replace(caption_facts(runs, spec), wide=wide, fit=fit)
            content = render(result, fmt, caption_facts=facts, decimals=decimals)
    except TableError as exc:
        raise click.ClickException(str(exc)) from exc
    if output:
        path = Path(output)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)   # `-o paper/tables/t.tex` in a fresh checkout
            write_whole(path, content)   # replaced whole: a LaTeX build reading it never reads it half written
        except OSError as exc:
            raise click.ClickException(f"cannot write the table to {output}: {exc}") from exc
        click.echo(f"wrote {output}", err=True)
    else:
        click.echo(content)


def _in_folder(name, folder: Path) -> bool:
    """Whether the path `name` lies in `folder` (both resolved)."""
    try:
        return Path(os.path.realpath(name)).is_relative_to(Path(os.path.realpath(folder)))
    except (OSError, TypeError, ValueError):
        return False


@cli.command()
@click.argument("name")
@click.option("--run", "run_id", help="Parent run id (or a unique prefix); default: the invocation run last.")
@click.option("-o", "--output",   # a file, an empty name, -: refused by _check_output_folder
              help="Folder for the figures (default: figures/<the sweep's name>). Figures drawn there before for "
                   "another invocation, and not drawn over now, are removed; other files are left alone.")
@click.option("--no-attention", is_flag=True,
              help="Skip the attention-map grid (drawn from the maps each trial logged; runs logged without them "
                   "load every arm's model).")
@click.option("--no-log", is_flag=True, help="Do not log the figures to the parent MLflow run.")
@click.option("--tracking-uri", help="MLflow store (default: MLFLOW_TRACKING_URI, else sqlite:///mlflow.db here).")
def plot(name: str, run_id, output, no_attention: bool, no_log: bool, tracking_uri) -> None:
    """Figures of sweep NAME: learning curves (validation and test accuracy, and the metric a search optimised),
    ablation bars, attention maps (PNG and PDF)."""
    from sweeps import schema
    from sweeps.figures import log_figures, plot_sweep, replace_figures_of_another_invocation
    from sweeps.report import curve_metrics, sweep_table
    from sweeps.tables import TableError

    _refuse_empty_name(name)
    _refuse_empty_run_id(run_id, name)
    _check_output_folder(output, Path("figures") / _stem(name))
    runs, spec = _load_runs(name, run_id, tracking_uri)
    out = Path(output or Path("figures") / runs.sweep)
    made = [p for p in (out, *out.parents) if not p.exists()]   # taken away again if nothing is drawn
    out = _figure_folder(out)
    try:
        result = sweep_table(runs, spec)
        paths = plot_sweep(runs, out, table=result, attention=not no_attention,
                           rows=result.rows if spec.kind == "table" else None, curve_metrics=curve_metrics(spec))
    except TableError as exc:
        _remove_if_empty(made)
        raise click.ClickException(str(exc)) from exc
    except OSError as exc:   # a disk that fills up as they are drawn: each figure is replaced whole or left as it was
        # a run's file that could not be read (a model, a record): not `out`'s; a figure linked elsewhere (its file
        # is replaced where the link leads): that place named
        elsewhere = bool(exc.filename) and not _in_folder(exc.filename, out)
        if elsewhere and exc.errno not in (errno.ENOSPC, errno.EDQUOT, errno.EROFS):
            raise
        _remove_if_empty(made)
        where = f"{out} ({Path(exc.filename).parent})" if elsewhere else f"{out}"
        raise click.ClickException(f"cannot write the figures to {where}: {exc.strerror or exc}; none of them was "
                                   "written: the figures there are as they were") from exc
    if not paths:
        _remove_if_empty(made)
        raise click.ClickException(f"no figure could be drawn for {name}: no completed cell"
                                   + (" yet" if runs.parent.status == schema.STATUS_RUNNING else
                                      f" (the invocation is {runs.parent.status})"))
    for stale in replace_figures_of_another_invocation(out, runs.parent.run_id, paths):
        click.echo(f"removed {stale}: drawn for another invocation, and not drawn for this one", err=True)
    if not no_log:
        log_figures(runs, paths, "figures")
    for path in paths:
        click.echo(str(path))


@cli.command()
@click.argument("name")
@click.option("--run", "run_id", help="Parent run id (or a unique prefix) of the search's invocation; default: the one run last.")
@click.option("--top", type=click.IntRange(min=1), default=3, show_default=True,
              help="How many of the best trials (as the search's table ranks them) become arms; a trial that "
                   "repeats a better one's configuration, or the base's, is skipped for the next.")
@click.option("--seeds", type=click.IntRange(min=1), default=3, show_default=True, callback=_seed_count,
              help=f"Seeds 0..N-1 of every arm (1 to {MAX_SEEDS}).")
@click.option("--no-base", is_flag=True,
              help="Leave out the search's base configuration (the baseline row, with the Δ against it).")
@click.option("-o", "--output",   # a folder, a path under a file, an empty name: refused by _check_output_file
              help="Write the spec to FILE.yaml (default, or - : stdout); an existing file is kept unless --force.")
@click.option("--force", is_flag=True, help="Replace an existing -o FILE.")
@click.option("--tracking-uri", help="MLflow store (default: MLFLOW_TRACKING_URI, else sqlite:///mlflow.db here).")
def best(name: str, run_id, top: int, seeds: int, no_base: bool, output, force: bool, tracking_uri) -> None:
    """The best trials of search NAME as a table spec that trains them over seeds.

    A search ranks its trials on one seed; `sweeps run FILE` of this spec trains the best ones, with the
    values they trained with, and the search's base configuration as the baseline, on the search's profile,
    base and --set, over --seeds seeds: its table (mean ± std, Δ against the base) says which holds up."""
    from sweeps.best import best_spec
    from sweeps.tables import TableError
    from sweeps.tracking import tracking_uri_to_repeat

    _refuse_empty_name(name)
    _refuse_empty_run_id(run_id, name)
    if force and (output is None or output == "-"):   # warned, not refused: `best X --force > spec.yaml` printed it
        click.echo("warning: --force applies only to -o FILE (it replaces an existing one); the spec is printed, and "
                   "--force does nothing here", err=True)
    if output == "-":   # stdout, as to `sweeps table` (it was refused as no *.yaml)
        output = None
    _check_output_file(output, f"{_stem(name)}_best.yaml", "the spec")
    if output and Path(output).suffix not in (".yaml", ".yml"):   # as `sweeps run FILE` tells a file from a name
        raise click.UsageError(f"-o {output}: a spec file is named *.yaml (lower case), as `sweeps run FILE` reads it")
    if output and Path(output).exists() and not force:
        raise click.ClickException(f"{output} exists: choose another -o FILE, or replace it with --force")
    runs, spec = _load_runs(name, run_id, tracking_uri)
    try:
        written = best_spec(runs, spec, top=top, seeds=seeds, with_base=not no_base,
                            file_name=output, as_typed=name,
                            tracking_uri=tracking_uri_to_repeat(tracking_uri, runs.tracking_uri))
    except (TableError, SpecError) as exc:
        raise click.ClickException(str(exc)) from exc
    for note in written.notes:
        click.echo(f"Note: {note}", err=True)
    if runs.parent.status != "completed":
        click.echo(f"Note: the search is {runs.parent.status}: ranked over the trials completed so far", err=True)
    if not output:
        click.echo(written.text, nl=False)
        return
    path = Path(output)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_whole(path, written.text)
    except OSError as exc:
        raise click.ClickException(f"cannot write the spec to {output}: {exc}") from exc
    click.echo(f"wrote {output} ({written.name}: {', '.join(written.arms)} over {seeds} seed"
               f"{'s' if seeds != 1 else ''}); run it: {written.run_command}", err=True)


@cli.command()
@click.option("--unused-for", "unused_days", type=click.FloatRange(min=0),
              help="Remove the entries no sweep has loaded for this many days.")
@click.option("--clear", is_flag=True, help="Remove every entry.")
@click.option("--cache-dir",   # a file: refused below as the other options' (click's bare "Directory ... is a file.")
              help="The cache (default: $TRANSFER_CACHE, else ~/.cache/transfer-sweeps; a sweep's own: its "
                   "data.cache_dir).")
def cache(unused_days, clear: bool, cache_dir) -> None:
    """The decoded-data cache: its entries, their size and last use; removes those asked for.

    Each data set is decoded once per version of its files and image size: a changed data set, another
    --set model.image_size or another stem adds an entry (AffectNet at 112 px: ~11 GB), and none is removed
    by itself. A removed entry is decoded again when a sweep needs it; a sweep running meanwhile keeps
    reading the entries it has loaded. An entry's last use is its last load, or its creation for an entry
    no sweep has loaded since `sweeps cache` came."""
    from transfer_core.config import DataConfig
    from transfer_core.data.cache import cache_root, cached_data, remove_cached, size_text

    if clear and unused_days is not None:
        raise click.UsageError("give --clear or --unused-for, not both")
    # `--cache-dir "$DIR"`, DIR unset: it listed, and with --clear emptied, the default cache
    _refuse_empty("--cache-dir", cache_dir, "the cache's folder", "for $TRANSFER_CACHE, else ~/.cache/transfer-sweeps")
    if cache_dir and Path(cache_dir).expanduser().exists() and not Path(cache_dir).expanduser().is_dir():
        raise click.UsageError(f"--cache-dir {cache_dir} is a file: give the cache's folder (a sweep's own: its "
                               "data.cache_dir), or leave --cache-dir out for $TRANSFER_CACHE, else "
                               "~/.cache/transfer-sweeps")
    if unused_days is not None and not math.isfinite(unused_days):   # FloatRange lets nan through: none removed
        raise click.BadParameter(f"{unused_days} is not a number of days: give e.g. 30", param_hint="--unused-for")
    root = Path(cache_dir).expanduser() if cache_dir else cache_root(DataConfig())
    entries = cached_data(root)
    if not entries:
        click.echo(f"{root}: no decoded data" + ("" if root.is_dir() else " (no such folder)"))
        return
    now = time.time()
    doomed = (entries if clear else
              [e for e in entries if now - e.last_used > unused_days * 86400] if unused_days is not None else [])
    click.echo(f"{root}: {len(entries)} entr{'y' if len(entries) == 1 else 'ies'}, "
               f"{size_text(sum(e.size_bytes for e in entries))}")
    removed, failed = [], []
    for e in entries:
        if e in doomed:
            try:
                remove_cached(e)
                removed.append(e)
            except OSError as exc:   # gone meanwhile (another `sweeps cache`), or not ours to remove
                failed.append(f"{e.folder}: {exc.strerror or exc}")
        used = time.strftime("%Y-%m-%d %H:%M", time.localtime(e.last_used))
        click.echo(f"  {'removed ' if e in removed else ''}{e.folder.name}: {e.dataset}, {e.image_size} px, "
                   f"{size_text(e.size_bytes)}, last used {used}" + (f", from {e.root}" if e.root else ""))
    if doomed:
        click.echo(f"removed {len(removed)}, {size_text(sum(e.size_bytes for e in removed))} freed")
    elif unused_days is not None:   # else the very listing a plain `sweeps cache` prints: did it look at all?
        click.echo(f"none unused for {unused_days:g} day{'s' if unused_days != 1 else ''}: removed 0")
    if failed:
        raise click.ClickException("could not remove " + "; ".join(failed))


def _remove_if_empty(folders: list[Path]) -> None:
    """The folders this command made, deepest first, where they are still empty."""
    for folder in folders:
        try:
            folder.rmdir()
        except OSError:   # not empty (something else wrote there meanwhile), or gone
            return


def _figure_folder(out: Path) -> Path:
    """The figures' folder, made and found writable before anything is drawn: a folder under a file, or
    one without write permission, failed only at the first figure's save, with a traceback."""
    import tempfile

    try:
        out.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=out):
            pass
    except OSError as exc:
        raise click.ClickException(f"cannot write the figures to {out}: {exc.strerror or exc}; "
                                   "give -o a folder you can write to") from exc
    return out


def _planned_cells(client, run_id: str, tags: Mapping[str, str] | None = None) -> tuple[int | None, set[str] | None]:
    """(how many cells, or a search's trials, the invocation's latest run planned; a table's cell ids), each
    None where unknown. `tags`: the parent run's, whose planned count stands in for an unreadable plan.json."""
    from sweeps import schema, tracking

    plan = tracking.read_json_artifact(client, run_id, schema.ARTIFACT_PLAN)
    if not isinstance(plan, dict):   # an invocation that died before writing its plan; a database's copy
        planned = (tags or {}).get(schema.TAG_PLANNED, "")
        return (int(planned) if planned.isdigit() and int(planned) else None), None
    cells = [c.get("cell_id") for c in plan.get("cells", []) if isinstance(c, dict)]
    # a table's cells; a search's planned trials (its plan has no cells)
    total = len(cells) or (plan.get("search") or {}).get("num_samples") or None
    return total, (set(cells) if cells and all(cells) else None)


_CONSOLE_SCRIPT: list[bool] = []   # [True] in the console script's process (main): what it does to its process


def _set_up_without_collections() -> bool:
    """In the console script, turn Python's cyclic garbage collector off while `sweeps run` imports its libraries
    (Ray Tune, MLflow, pandas: ~500,000 objects) and prepares the sweep: each full collection walks every object
    the imports made so far, six of them ~0.55 s of the driver's CPU before the first trial (bench/RESULTS.md §1).
    `_collect_from_here` turns it back on. Never in a library call (tests and notebooks keep their GC)."""
    import gc

    if not _CONSOLE_SCRIPT or not gc.isenabled():
        return False
    gc.disable()
    return True


def _collect_from_here(tracking_uri: str) -> None:
    """The collector back on before the sweep runs, with what the set-up made frozen (gc.freeze: moved out of
    the collector's sight for good, as `_exit_quickly` does at the end): the modules and their objects live as
    long as the process, and a collection during the sweep, the report's included, walks only what came after.
    A sqlite store's module (~0.5 s of imports), which run_sweep opens first, is imported before."""
    import gc

    try:
        from sweeps.tracking import sqlite_path

        if sqlite_path(tracking_uri) is not None:
            import mlflow.store.tracking.sqlalchemy_store  # noqa: F401
    finally:
        gc.freeze()
        gc.enable()


def main() -> None:
    """The `sweeps` console script: the commands, then a quick exit (see _exit_quickly)."""
    _CONSOLE_SCRIPT[:] = [True]
    try:
        cli()
    finally:
        _CONSOLE_SCRIPT.clear()   # a process that called main() goes on as a library's (tests)
        _exit_quickly()


def _exit_quickly() -> None:
    """Let the process end in a fraction of a second instead of ~2-3 s after the last line is printed.

    Ray's own exit hook sleeps 0.5 s so that late worker logs and GCS error messages get printed (this
    CLI forwards neither: log_to_driver is off, and a sweep's errors are in its runs), so Ray is released
    here; and Python's final garbage collections walk the ~650,000 objects the imports and a sweep leave
    (~1.5 s on 2 cores), so they are frozen out of it (objects in reference cycles then die with the
    process, finalizers unrun: ours hold nothing unwritten, as our files are closed when written and
    MLflow's writes committed as they are made). First it lets a report warm-up still drawing finish
    (sweeps.runner.settle_report_warm_up): the interpreter's end under it aborts the process. Each step
    is best effort: a failure here (a pipe closed by `| head`, a cluster gone) must not replace the
    command's own exit status. Only the console script does this, never a library call (tests and
    notebooks keep their Ray and GC)."""
    import gc

    ray = sys.modules.get("ray")
    runner = sys.modules.get("sweeps.runner")   # imported: a command that ran a sweep, whose report may warm up
    for step in ((lambda: runner.settle_report_warm_up(runner.EXIT_WARM_UP_WAIT_S) if runner is not None else None),
                 (lambda: ray.shutdown() if ray is not None and ray.is_initialized() else None),
                 sys.stdout.flush, sys.stderr.flush, gc.freeze):
        try:
            step()
        except Exception:  # noqa: BLE001  (see above)
            pass


if __name__ == "__main__":
    main()
