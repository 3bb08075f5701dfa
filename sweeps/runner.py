"""SweepSpec + profile + data -> a Tune run, tracked in MLflow (DESIGN.md "The way a sweep flows").

`prepare` validates everything (spec, profile, data folders, pruner, tracking store, storage path)
without starting Ray; `run_sweep` then decodes the data once, connects to Ray (local by default,
the cluster when an address is given), checks that a trial can be placed at all, and runs the
cells. A cell's identity is its config hash: an interrupted or repeated invocation resumes under the
same MLflow parent run, restores the Tune experiment (trials continue from their checkpoints) and
never reruns a completed cell.

What it builds on, a concept per module: `sweeps.cluster` (the Ray it runs on, and what is checked of
it), `sweeps.sweep_data` (the data decoded, recorded and checked), `sweeps.invocations` (an invocation's
spec text, plan, and whether anything is left to do), `sweeps.tune_state` (Tune's saved experiment as a
continuation finds it), `sweeps.marks` (the statuses the driver sets on trials' runs) and `sweeps.stops`
(Ctrl-C and SIGTERM).
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import json
import logging
import math
import os
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Collection, Mapping

from ray import tune

from search_spaces import DataChoice, Plan, Profile, SpecError, SweepSpec, expand, load, load_profile, parse_data_options
from search_spaces.data_option import check_data_layouts, physical_cwd_choice, resolved_choice
from search_spaces.search import drawn_configs
from search_spaces.yaml_doc import MAX_SEEDS, too_many_seeds
from sweeps import host_locks, schema, tracking
from sweeps.cluster import (check_address, check_local_resources, check_nodes_see_files, check_resources, connect_ray,
                            watching_the_cluster)
from sweeps.envvars import temporarily_set
from sweeps.errors import SweepError
from sweeps.invocations import (command_again, command_tag, drawn_alike, drawn_with, earlier_of_an_edited_spec,
                                ended_trials, finished_as_planned, log_plan, planned_statuses, record_spec,
                                set_spec_hash, set_text, warn_of_data_moved)
from sweeps.marks import (error_message, error_text, failure_details, keep_marks, kept_marks_files, last_failure,
                          make_mark, marks_file_of, replay_marks, trial_reference)
from sweeps.stops import (HALTS, STOP_SIGNALS, STOPS, halt_fit, halted, hand_stop_to_tune, record_stops_of_this_fit,
                          restores_sigterm_handler, sigterm_stops_at_once, sigterm_stops_like_ctrl_c, stop_received,
                          was_interrupted)
from sweeps.sweep_data import (check_data_of_cells, check_data_unchanged, data_key, data_record, decode_data,
                               describe_data_change, earlier_entries, log_data, merged_changes,
                               recorded_entry)
# ExtendedSearch: also named here, where Tune states pickled before sweeps.tune_state existed look for it
# TRIAL_NAMING: trial folders (and names in Tune's messages) by arm, data and seed, not Tune's `train_cell_<id>_...`
from sweeps.tune_state import (AS_BEGUN, TRIAL_NAMING, ExtendedSearch, RestoredVariants,  # noqa: F401
                               check_search_restorable,
                               drop_checkpoints_left_by_earlier_experiments, drop_checkpoints_of_completed_cells,
                               drop_queued_trials,
                               drop_superseded_checkpoints, experiment_here, extend_search,
                               newest_checkpoints_where_tune_looks, trial_dirname, unfinished_trials,
                               unreadable_tune_state)
from transfer_core.config import PLACEMENT_KEYS, TrialConfig, to_flat

log = logging.getLogger(__name__)
progress_log = logging.getLogger("sweeps.progress")


@dataclass(frozen=True)
class RunOptions:
    """What `sweeps run` accepts beyond the sweep's name; None means the profile's or Ray's default."""

    profile: str | None = None
    data: tuple[str, ...] = ()
    seeds: int | None = None
    overrides: Mapping[str, Any] = field(default_factory=dict)
    address: str | None = None
    max_concurrent: int | None = None
    cpus_per_trial: float | None = None
    gpus_per_trial: float | None = None
    tracking_uri: str | None = None
    storage: str | None = None
    max_failures: int = 2
    fresh: bool = False
    accept_changed_data: bool = False   # continue although a data set's fingerprint changed (a warning then)


@dataclass(frozen=True)
class PreparedSweep:
    spec: SweepSpec
    profile: Profile
    data: tuple[DataChoice, ...]
    plan: Plan
    cpus_per_trial: float
    gpus_per_trial: float
    max_concurrent: int | None
    tracking_uri: str
    storage_path: Path
    options: RunOptions
    source: str = ""                    # the NAME argument as given: a shipped name or a spec file's path
    storage_made: Path | None = None    # the topmost folder of storage_path that prepare made (None: it was there)

    @property
    def as_typed(self) -> str:
        """The sweep as a command names it: a spec file's path, since its spec's name is no shipped sweep."""
        import shlex

        return shlex.quote(self.source or self.spec.name)

    @property
    def invocation_key(self) -> str:
        """Of what the spec trains (`SweepSpec.identity_hash`: not its caption nor its table's layout) and the
        --set as typed values (optim.epochs=3 and =3.0 are one invocation), placement keys (threads, loader
        workers, cache folder, compile) left out, as from a cell's identity: a sweep continued on another
        machine, or with compile on or off, is the same invocation."""
        return self.keys_of(self.spec.identity_hash)[0]

    @property
    def keys_recorded(self) -> tuple[str, ...]:
        """The invocation key, then those recorded before: of what the spec trains with a pruner's 25 and 25.0 two
        values, as written (a value written another way made another invocation), of the spec's whole content (a
        reworded caption did), of its text (a comment did), and of the --set as given (placement keys included);
        then each of those with the data as earlier versions knew them (`earlier_data`)."""
        return tuple(dict.fromkeys(self._keys_with(self.data)
                                   + tuple(k for data in self.earlier_data for k in self._keys_with(data))))

    @property
    def earlier_data(self) -> tuple[tuple[DataChoice, ...], ...]:
        """The data as versions before knew them, where they differ from `data` (an invocation found by the keys of
        one is continued `with_data` it, its cells keyed so): each folder's symbolic links resolved
        (`resolved_choice`, before ed57113), and a relative folder made absolute from os.getcwd(), its own links
        kept (`physical_cwd_choice`, from ed57113 to eca91f3: it differs where both the working folder and the path
        typed go through a link); () where no folder goes through a link."""
        forms = (self.resolved_data, tuple(physical_cwd_choice(d) for d in self.data))
        return tuple(data for data in dict.fromkeys(forms) if data != self.data)

    def data_keyed(self, key: str | None) -> tuple[DataChoice, ...] | None:
        """The data (`data`, or one of `earlier_data`) whose keys (`keys_recorded`) hold `key`; None: neither."""
        return next((data for data in (self.data, *self.earlier_data) if key in self._keys_with(data)), None)

    @property
    def resolved_data(self) -> tuple[DataChoice, ...]:
        return tuple(resolved_choice(d) for d in self.data)

    def with_data(self, data: tuple[DataChoice, ...]) -> "PreparedSweep":
        """This sweep with `data` (the same folders as an earlier version knew them: `earlier_data`), its plan
        expanded anew over them: the cells, and their identities, of an invocation recorded by that version."""
        if data == self.data:
            return self
        seeds = tuple(range(self.options.seeds)) if self.options.seeds else None
        return dataclasses.replace(self, data=data, plan=expand(self.spec, self.profile, data, seeds,
                                                                self.options.overrides))

    def _keys_with(self, data: tuple[DataChoice, ...]) -> tuple[str, ...]:
        spec = self.spec
        return tuple(key for spec_hash in (spec.identity_hash, spec.typed_identity_hash, spec.written_identity_hash,
                                           spec.content_hash, spec.spec_hash)
                     for key in self.keys_of(spec_hash, data))

    def keys_of(self, spec_hash: str, data: tuple[DataChoice, ...] | None = None) -> tuple[str, str]:
        """The keys this invocation has or had with a spec of hash `spec_hash` (and data `data`, else its own): of
        the --set as typed values, placement keys left out (today's), and of the --set as given (recorded before)."""
        placed = {k: v for k, v in self.plan.overrides.items() if k not in PLACEMENT_KEYS}
        roots = {d.name: d.root for d in (self.data if data is None else data)}
        return (tracking.invocation_key(spec_hash, self.profile.name, roots, placed),
                tracking.invocation_key(spec_hash, self.profile.name, roots, self.options.overrides))


@dataclass
class SweepOutcome:
    parent_run_id: str
    experiment_id: str
    status: str
    counts: dict[str, int]
    elapsed_s: float
    tune_path: str | None = None
    skipped_cells: int = 0
    report_dir: Path | None = None
    stop_signal: int | None = None   # the signal that stopped a `fit` of it (SIGINT: Ctrl-C; SIGTERM), else None
                                     # (one that stopped it outside a fit raises StopSignal instead)


# --------------------------------------------------------------------------- prepare (no Ray)

def check_pruner(spec: SweepSpec) -> None:
    """A search spec's pruner is built once here, so a bad type or argument fails before anything runs."""
    if spec.kind != "search":
        return
    from sweeps.pruning import make_pruner

    try:
        make_pruner(spec.search.pruner)
    except ValueError as exc:
        raise spec.error_at(("search", "pruner"), str(exc)) from exc


def warn_of_latex_unsettable(spec: SweepSpec) -> None:
    """Warn, before Ray starts, of a title, caption or arm label holding a character pdflatex does not set by
    itself (an emoji, a CJK or Cyrillic letter): the report writes the LaTeX table after the last trial, with
    it as typed, and a paper built with pdflatex and no font for it stops there. Not refused: only the
    paper's author knows its engine and fonts, and the other formats show it as it is."""
    from sweeps.table_formats import latex_refusal, latex_unsettable

    texts = [(("title",), "title", spec.title), (("caption",), "caption", spec.caption)]
    for i, arm in enumerate(spec.arms):
        # a grid's label: at the grid value that brings the character, else at the label template
        where = ("arms", i, "label") if not spec.grid else next(
            (("grid", k) for k, v in arm.overrides.items() if latex_unsettable(str(v))), ("label",))
        texts.append((where, "label", arm.label))
    for path, what, text in texts:
        ch = latex_unsettable(text)
        if ch is not None:
            log.warning("%s. The sweep's LaTeX table will show it as typed: relabel the %s where your paper is "
                        "built with pdflatex and no font for it", spec.error_at(path, latex_refusal(text, ch)), what)


def check_devices(plan: Plan, gpus: float) -> None:
    """A cell that asks for CUDA without a GPU (or a GPU it will not use) is a contradiction."""
    devices = {c.device for c in plan.configs}
    if "cuda" in devices and gpus == 0:
        raise SpecError("device=cuda but --gpus-per-trial is 0: give the trials a GPU (e.g. --gpus-per-trial 1) "
                        "or use device=auto")
    if gpus > 0 and devices == {"cpu"}:
        raise SpecError(f"--gpus-per-trial {gpus:g} reserves a GPU that device=cpu will not use: use "
                        "--set device=auto (or cuda), or --gpus-per-trial 0")


def check_files(plan: Plan) -> None:
    """Files a trial would open (the IR-50 and ViT checkpoints) must exist and fit now, not fail inside every
    trial: each distinct network's checkpoints are read once and matched against it (a key, a shape). A search's
    networks are its bases with each value its space draws for a key that shapes them (PRETRAINED_FIT_KEYS; one
    at a time: a checkpoint fits each of those keys' values whatever the others', e.g. model.depth up to its
    blocks), as check_space_shapes checks its stems. Where no config names a checkpoint there is nothing to read,
    and torch (~1.5 s of the driver's CPU before the first trial: the trials import it, the driver need not) is
    not imported (the configs drawn above for a search vary only keys that shape a network, never a path)."""
    if all(getattr(c.model, key) is None for c in plan.configs for key in ("stem_checkpoint", "encoder_checkpoint")):
        return
    from transfer_core.models import CheckpointError, check_pretrained
    from transfer_core.models.checkpoint import IR50_FILE, VIT_FILE
    from transfer_core.models.transfer import PRETRAINED_FIT_KEYS

    hints = {"stem_checkpoint": f"the face.evoLVe IR-50 checkpoint ({IR50_FILE})",
             "encoder_checkpoint": f"timm's legacy ViT-S checkpoint ({VIT_FILE})"}
    networks: list[tuple[TrialConfig, tuple | None]] = [(c, None) for c in plan.configs]   # (config, drawn)
    if plan.spec.search is not None:
        networks += [(config, point) for base in plan.base_configs.values() for key in PRETRAINED_FIT_KEYS
                     for drawn, config in drawn_configs(plan.spec.search.space, base, (key,))
                     for point in drawn.items()]
    checked = set()
    for config, point in networks:
        model = config.model
        for key, hint in hints.items():
            path = getattr(model, key)
            if path is not None and not Path(path).expanduser().is_file():   # a folder "did not exist"
                raise SpecError(f"model.{key}={path!r} "
                                + ("is a folder" if Path(path).expanduser().is_dir() else "does not exist")
                                + f": give the path of {hint}")
        if model in checked:
            continue
        checked.add(model)
        try:
            check_pretrained(model)
        except CheckpointError as err:   # "model.<key>: <the file> does not fit ..."
            if point is None:
                raise SpecError(str(err)) from None
            key, (where, value) = point
            raise plan.spec.error_at(where, f"a sample can draw {key}={value!r}, and then {err}: remove that "
                                            "choice, or narrow the range to the values the checkpoint fits") from None


def warn_of_random_initialisation(plan: Plan) -> None:
    """A warning where cells train the paper's network on a real data set from random weights: the release
    starts from face.evoLVe's MS1M IR-50 and likely timm's ImageNet ViT-S (reference/transfer.md §6, §10.1),
    and its numbers are out of reach without them, which a table alone would not say."""
    missing = sorted({key for c in plan.configs if c.data.dataset != "synthetic" for key, unset in (
        ("model.stem_checkpoint", c.model.stem == "ir50" and c.model.stem_checkpoint is None),
        ("model.encoder_checkpoint", c.model.encoder and c.model.embed_dim == 768
         and c.model.encoder_checkpoint is None)) if unset})
    if missing:
        log.warning("cells train on a real data set with %s from random weights: the release starts from "
                    "pretrained ones (the IR-50 stem from face.evoLVe's MS1M, the encoder likely from timm's legacy "
                    "ImageNet ViT-S) and its numbers are far out of reach without them; give the files with %s",
                    " and ".join({"model.stem_checkpoint": "the IR-50 stem",
                                  "model.encoder_checkpoint": "the 768-d encoder"}[k] for k in missing),
                    " ".join(f"--set {k}=PATH" for k in missing))


def prepare(name_or_path: str, options: RunOptions = RunOptions()) -> PreparedSweep:
    """Load and validate the whole sweep; every error surfaces here, before anything runs."""
    spec = load(name_or_path)
    profile = load_profile(options.profile or spec.profile)
    data = parse_data_options(options.data, check=False)   # layouts: as the cells read them, below
    if options.seeds is not None and options.seeds < 1:
        raise SweepError(f"--seeds {options.seeds} is invalid: expected an integer >= 1", "--seeds")
    if options.seeds is not None and options.seeds > MAX_SEEDS:   # before its seeds (and cells) are made
        raise SweepError(too_many_seeds(options.seeds), "--seeds")
    if options.max_failures < 0:
        raise SweepError(f"--max-failures {options.max_failures} is invalid: expected an integer >= 0",
                         "--max-failures")
    seeds = tuple(range(options.seeds)) if options.seeds else None
    plan = expand(spec, profile, data, seeds, options.overrides)
    check_data_layouts(c.data for c in plan.configs)
    check_pruner(spec)
    warn_of_latex_unsettable(spec)
    cpus = options.cpus_per_trial if options.cpus_per_trial is not None else profile.cpus_per_trial
    gpus = options.gpus_per_trial if options.gpus_per_trial is not None else profile.gpus_per_trial
    if not cpus > 0:
        raise SweepError(f"--cpus-per-trial {cpus:g} is invalid: expected a number > 0", "--cpus-per-trial")
    if not math.isfinite(cpus):   # inf: refused only by the resource check, once the MLflow store was made
        raise SweepError(f"--cpus-per-trial {cpus:g} is invalid: expected a finite number > 0 (e.g. 2)",
                         "--cpus-per-trial")
    # nan passed every comparison: '1 CPU + nan GPU per trial', then refused as more GPUs than the machine has
    if not math.isfinite(gpus) or gpus < 0 or (gpus > 1 and not float(gpus).is_integer()):
        raise SweepError(f"--gpus-per-trial {gpus:g} is invalid: expected a fraction in [0, 1] or a whole number",
                         "--gpus-per-trial")
    check_devices(plan, gpus)
    check_files(plan)
    warn_of_random_initialisation(plan)
    max_concurrent = options.max_concurrent if options.max_concurrent is not None else profile.max_concurrent
    if max_concurrent is not None and max_concurrent < 1:
        raise SweepError(f"--max-concurrent {max_concurrent} is invalid: expected an integer >= 1",
                         "--max-concurrent")
    uri = tracking.resolve_tracking_uri(options.tracking_uri)
    tracking.check_tracking(uri, option=options.tracking_uri)
    if options.storage and "://" in options.storage:
        raise SweepError(f"--storage {options.storage} is a URI, which this tool does not support: it reads Tune's "
                         "storage as a folder (resume, checkpoints, reports), and Path() would make it a local folder "
                         f"named {options.storage.split('://')[0]}: here. Give a folder, on a cluster one that every "
                         "node mounts (NFS/EFS, e.g. /mnt/shared/ray_results)", "--storage")
    storage = Path(options.storage or "ray_results").expanduser().resolve()
    if storage.exists() and not storage.is_dir():   # it said "is not writable (File exists)"
        raise SweepError(f"--storage {storage} is a file: give a folder for Tune's results and checkpoints (shared "
                         "storage on a cluster)", "--storage")
    storage_made = next((p for p in reversed((storage, *storage.parents)) if not p.exists()), None)
    try:
        storage.mkdir(parents=True, exist_ok=True)
        probe = storage / f".write-test-{os.getpid()}"
        probe.write_text("ok")
        probe.unlink()
    except OSError as exc:
        raise SweepError(f"--storage {storage} is not writable ({exc.strerror or exc}): "
                         "give a folder this user can write (shared storage on a cluster)", "--storage") from exc
    return PreparedSweep(spec, profile, data, plan, float(cpus), float(gpus), max_concurrent, uri, storage,
                         options, str(name_or_path), storage_made)


# --------------------------------------------------------------------------- Tune callbacks

def _status_of(trial) -> str:
    return str(getattr(trial, "status", ""))


class SweepCallback(tune.Callback):
    """Marks pruned and failed cells in MLflow and logs progress (the CLI renders it).

    A trial that ended without error but did not mark its own run completed was stopped by the
    scheduler: for search sweeps that is the Optuna pruner (table sweeps have no scheduler that stops).
    Holds only picklable state: Tune pickles callbacks with the experiment for `Tuner.restore`.

    The marks are queued and made with one attempt each (`tracking.single_attempt`): with MLflow's
    default retries an unreachable server would hold Tune's whole loop for ~4 min per ended trial.
    While the server is away the queue is retried every MARK_RETRY_S and the trial counts as done;
    at the experiment's end the driver waits for the server as long as a trial would
    (SWEEPS_TRACKING_WAIT_S; INTERRUPTED_MARK_WAIT_S after a Ctrl-C) with MLflow's retries, and names
    what it could not mark. The queue is also kept in `marks_file` while it is not empty, so a mark that
    no attempt made (the server away past the end, or the driver killed) is made by the next `sweeps run`
    of the invocation (`replay_marks`): a pruned run left running would keep a search unfinished.
    """

    def __init__(self, tracking_uri: str, total: int, metric: str, mode: str,
                 expected_trials: int | None = None, marks_file: str | None = None,
                 storage: str | None = None) -> None:
        """expected_trials: how many trials this Tune experiment runs in all (for the report's warm-up);
        marks_file: where the queue of marks is kept while it is not empty (`marks_file_of`); storage: the
        sweep's --storage, which a trial may fail for want of room in (`stop_if_a_disk_is_full`)."""
        self.tracking_uri = tracking_uri
        self.marks_file = marks_file
        self.storage = storage
        self.max_failures: int | None = None   # set by restore_tuner: a continuation's --max-failures
        self.total = total
        self.metric = metric
        self.mode = mode
        self.expected_trials = total if expected_trials is None else expected_trials
        self.counts = {"done": 0, "pruned": 0, "failed": 0}
        self.best: float | None = None      # of the completed trials' final values (Tune's last result of each)
        self.best_running: float | None = None   # of any epoch reported so far, of trials still running too
        self.started = time.time()
        self._last_log = 0.0
        self._peak_running = 0
        self._unmarked: list[tuple] = []   # (run_id, "ended" | "failed", step[, failure_details])
        self._marks_tried = 0.0
        self._marks_warned = False
        self._counted_runs: frozenset[str] = frozenset()   # completed before this run of the invocation
        self.cells_planned: frozenset[str] | None = None   # set for a restored experiment (restore_tuner)

    def continue_after(self, standing: "Standing") -> None:
        """Count from what earlier runs of the invocation left in MLflow, so that a continued sweep's
        progress reads "12/15 done" and keeps the best so far, not "0/15"."""
        self.counts = {"done": standing.done, "pruned": standing.pruned, "failed": 0}
        self.best = standing.best
        self.total = standing.total   # a restored callback holds the total of its experiment's start
        self._counted_runs = standing.completed_runs

    def setup(self, **info) -> None:
        """Called once Tune has installed its signal handlers: a SIGTERM that came before is handed over."""
        self.started = time.time()
        record_stops_of_this_fit()
        if STOP_SIGNALS and threading.current_thread() is threading.main_thread():
            hand_stop_to_tune(None)
        if any(self.counts.values()):   # a continued sweep: where it stands before its first epoch
            self._report([], force=True)

    def on_trial_start(self, iteration, trials, trial, **info) -> None:
        retries = getattr(self, "max_failures", None)   # getattr: a callback pickled by an older version
        if retries is not None:   # a continuation's --max-failures (restore_tuner): the trials restored, and
            trial.max_failures = retries   # those a search draws from its restored spec, keep the first run's
        self._warm_up_in_the_tail(trials)

    def _planned(self, trial) -> bool:
        """Whether this run plans the trial's cell (a restored experiment may hold others: `restore_tuner`)."""
        planned = getattr(self, "cells_planned", None)   # getattr: a callback pickled by an older version
        cell = (getattr(trial, "config", None) or {}).get("cell")
        return planned is None or not isinstance(cell, dict) or cell.get("cell_id") in planned

    def on_trial_result(self, iteration, trials, trial, result, **info) -> None:
        if not self._planned(trial):
            return
        # getattr: a callback pickled by an older version (Tuner.restore) lacks the attribute
        self.best_running = self._better(getattr(self, "best_running", None), result.get(self.metric))
        self._report(trials)
        self._warm_up_in_the_tail(trials)

    def _better(self, best: float | None, value) -> float | None:
        if isinstance(value, (int, float)) and not math.isnan(value):
            if best is None or (value > best if self.mode == "max" else value < best):
                return float(value)
        return best

    def on_step_begin(self, iteration, trials, **info) -> None:
        self._settle_marks()

    def on_trial_complete(self, iteration, trials, trial, **info) -> None:
        if not self._planned(trial):   # ended untrained by train_cell
            return
        result = trial.last_result or {}
        run_id = result.get("mlflow_run_id")
        # a run completed before the driver stopped may come back from Tune's state: counted already
        # (getattr: a callback pickled by an older version lacks the attribute)
        if run_id not in getattr(self, "_counted_runs", ()):
            self.counts["done"] += 1   # moved to pruned once MLflow shows the run did not complete itself
        # "best" is of the trials that completed: before any had, the progress line named a running epoch's value
        # as if it were a result (a table's sel_test_acc at a cell's first epoch). A trial the scheduler stopped
        # before its last epoch (pruned) is not ranked, as the search's table and Optuna's best trial leave it out
        step, planned = schema.step_of(result), result.get(schema.FINAL_STEP_KEY)
        if not (step is not None and isinstance(planned, (int, float)) and step < planned):
            self.best = self._better(self.best, result.get(self.metric))
        if run_id:   # pruned at: the 0-based index of the last epoch it trained (schema: sweeps.pruned_step)
            self._queue_mark(run_id, "ended", max(schema.step_of(result) or 1, 1) - 1)
        self._report(trials, force=True, ended=trial)
        self._warm_up_in_the_tail(trials, ended=trial)
        drop_superseded_checkpoints(trial)
        self._drop_earlier_experiments_checkpoints(trial, run_id)

    def _drop_earlier_experiments_checkpoints(self, trial, run_id: str | None) -> None:
        """A table cell whose run completed: the checkpoints earlier Tune experiments of its invocation left of it
        are deleted (`drop_checkpoints_left_by_earlier_experiments`), once MLflow says its run completed (asked
        once, without retries: unanswered, they are left)."""
        config = getattr(trial, "config", None) or {}
        context, cell = config.get("context") or {}, config.get("cell") or {}
        if context.get("kind") != "table" or not run_id or not cell.get("cell_id") or not context.get("invocation"):
            return
        try:
            with tracking.single_attempt():
                run = tracking.client_for(self.tracking_uri).get_run(run_id)
            if run.data.tags.get(schema.TAG_STATUS) != schema.STATUS_COMPLETED:
                return
            drop_checkpoints_left_by_earlier_experiments(Path(trial.path).parent, context["invocation"],
                                                         context.get("parent_run_id"), cell["cell_id"])
        except Exception as exc:   # the store away, storage Tune reaches by URI: left as they are
            log.debug("checkpoints of earlier experiments of cell %s left as they are: %s", cell.get("cell_id"), exc)

    def on_trial_recover(self, iteration, trials, trial, **info) -> None:
        """A trial failed and Tune has queued it to try again (--max-failures): not where it failed for a full disk."""
        self.stop_if_a_disk_is_full(trial)

    def stop_if_a_disk_is_full(self, trial) -> None:
        """A trial that failed because --storage or the sqlite store is full (`full_disk_of_trial`) stops the sweep
        as Ctrl-C does (`stops.halt_fit`): each retry of it, and every other trial at its next checkpoint or log,
        would train again only to fail on the same disk (with the default --max-failures 2, three times an epoch or
        more per trial). The trials stay unfinished in Tune's state, and the driver raises the error naming the
        disk, its free space and `sweeps resume` once the fit has returned."""
        if halted() is not None:
            return
        try:
            full = full_disk_of_trial(error_text(trial), getattr(self, "storage", None) or
                                      ((getattr(trial, "config", None) or {}).get("context") or {}).get("storage"),
                                      self.tracking_uri)
        except Exception as exc:  # noqa: BLE001  (no error file to read: Tune goes on as it would)
            log.debug("no error text of trial %s: %s", getattr(trial, "trial_id", "?"), exc)
            return
        if full is not None and halt_fit(full):
            log.warning("trial %s failed: %s; stopping the sweep rather than train its retries, and the other "
                        "trials, onto the same full disk", getattr(trial, "trial_id", "?"), full)
            # no failure of the trial's own, as Tune counts no preempted worker's: Tune had counted it against
            # --max-failures in the state it saves, so each disk that filled up left a resumed trial a retry fewer
            metadata = getattr(trial, "run_metadata", None)
            if getattr(metadata, "num_failures", 0) > 0:
                metadata.num_failures -= 1
                if callable(invalidate := getattr(metadata, "invalidate_cache", None)):
                    invalidate()

    def on_trial_error(self, iteration, trials, trial, **info) -> None:
        # a trial that failed before its first epoch's report never told its run id: found by its trial id,
        # or made by the mark (`details`) where the trial failed before opening one
        if not self._planned(trial):
            return
        self.stop_if_a_disk_is_full(trial)   # no retries left, but the other trials would fail on it too
        run_id = (trial.last_result or {}).get("mlflow_run_id") or trial_reference(trial)
        self.counts["failed"] += 1
        if run_id:
            self._queue_mark(run_id, "failed", 0, failure_details(trial))
        self._report(trials, force=True, ended=trial)
        self._warm_up_in_the_tail(trials, ended=trial)

    def on_experiment_end(self, trials, **info) -> None:
        wait_s = tracking.wait_s_from_env()
        if STOPS or any(_status_of(t) not in ("TERMINATED", "ERROR") for t in trials):   # interrupted (Ctrl-C):
            wait_s = min(wait_s, INTERRUPTED_MARK_WAIT_S)                                 # the user waits
        self._settle_marks(wait_s=wait_s)

    def _queue_mark(self, run_id: str, outcome: str, step: int, details: Mapping | None = None) -> None:
        if not hasattr(self, "_unmarked"):   # a callback pickled by an older version (Tuner.restore)
            self._unmarked, self._marks_tried, self._marks_warned = [], 0.0, False
        self._unmarked.append((run_id, outcome, step) + ((dict(details),) if details else ()))
        keep_marks(getattr(self, "marks_file", None), self._unmarked)   # before the attempt: a kill may follow
        self._settle_marks(now=True)

    def _settle_marks(self, now: bool = False, wait_s: float | None = None) -> None:
        """Make the queued marks: at once (`now`), at the experiment's end (`wait_s`: wait for the server,
        MLflow's retries), else at most every MARK_RETRY_S, one attempt each."""
        pending = getattr(self, "_unmarked", None)
        if not pending or (not now and wait_s is None and time.time() - self._marks_tried < MARK_RETRY_S):
            return
        self._marks_tried = time.time()
        try:   # an MLflow outage must not kill the driver (and every trial)
            if wait_s is not None:
                tracking.wait_for_tracking(self.tracking_uri, wait_s)
            elif not tracking.available(self.tracking_uri):   # 2 s at most; a hung host would hold the loop
                raise tracking.TrackingError(tracking.away_text(self.tracking_uri))
            client = tracking.client_for(self.tracking_uri)
            with tracking.single_attempt(enabled=wait_s is None):
                while pending:
                    if make_mark(client, *pending[0]) == schema.STATUS_PRUNED:
                        self.counts["done"] -= 1
                        self.counts["pruned"] += 1
                    pending.pop(0)
        except Exception as exc:  # noqa: BLE001
            if wait_s is not None:
                kept = getattr(self, "marks_file", None)
                log.warning("could not mark %d ended trial run(s) in MLflow (%s): %s; %s", len(pending), exc,
                            ", ".join(mark[0] for mark in pending),
                            f"kept in {kept}, the next `sweeps run` of this sweep makes them" if kept else
                            "they keep the status their trials left (a pruned run shows as running)")
            elif not self._marks_warned:
                log.warning("could not mark an ended trial's run in MLflow (%s); retrying every %.0f s",
                            exc, MARK_RETRY_S)
                self._marks_warned = True
            return
        finally:
            keep_marks(getattr(self, "marks_file", None), pending)
        if self._marks_warned:
            log.warning("the ended trials' runs are marked in MLflow")
            self._marks_warned = False

    def _warm_up_in_the_tail(self, trials, ended=None) -> None:
        """In the sweep's tail (every trial started, and a slot left idle for good: fewer trials running
        than at the busiest, or just one) ready the report in the background, where it costs no trial
        anything; the report would otherwise pay it after the last trial (bench/RESULTS.md §1)."""
        if _REPORT_WARM_UP:
            return
        statuses = [_status_of(t) for t in trials if t is not ended]
        running = statuses.count("RUNNING")
        # getattr: a callback pickled by an older version (Tuner.restore) lacks these attributes
        peak = self._peak_running = max(getattr(self, "_peak_running", 0), running + (ended is not None))
        if (len(trials) >= getattr(self, "expected_trials", self.total) and "PENDING" not in statuses
                and (running <= 1 or running < peak)):
            warm_up_report()

    def _report(self, trials, force: bool = False, ended=None) -> None:
        """`ended`: the trial whose end is being reported; Tune calls back before it leaves RUNNING."""
        now = time.time()
        if not force and now - self._last_log < 5:
            return
        self._last_log = now
        running = sum(1 for t in trials if t is not ended and _status_of(t) == "RUNNING" and self._planned(t))
        # a pruned or failed trial has ended as much as a completed one: "2/4 done, 2 pruned" at a search's end
        # read as 2 trials still to run
        ended_now = sum(self.counts.values())
        best_running = getattr(self, "best_running", None)
        if self.best is not None:   # of the trials that completed
            best = f"best {self.metric} = {schema.metric_text(self.metric, self.best)}"
        elif best_running is not None:
            best = (f"no {self.metric} of a completed trial yet (best epoch so far: "
                    f"{schema.metric_text(self.metric, best_running)}, of a running trial)")
        else:
            best = f"no {self.metric} yet"
        progress_log.info(
            "%d/%d ended (%d completed, %d pruned, %d failed), %d running, %.0f s, %s",
            ended_now, self.total, self.counts["done"], self.counts["pruned"], self.counts["failed"], running,
            now - self.started, best,
            extra={"progress": {**self.counts, "ended": ended_now, "running": running, "total": self.total,
                                "elapsed_s": now - self.started, "best": self.best,
                                "best_running": best_running}})


def record_earlier_data(client, parent_id: str, earlier: Any, replaced: Any, record: Mapping[str, Any]) -> bool:
    """Before a continuation writes its data.json (`record`) over the one an earlier run of the invocation wrote
    (`replaced`, as read): the entries it replaces are added to data_earlier.json (`earlier`, as read;
    `earlier_entries`). A read that gave None where the file is there and could not be downloaded (the store's
    artifacts away, a read refused) leaves both files as they are: written from None, data_earlier.json lost the
    entries it held, and data.json its own. Returns whether data.json may be written anew; a file that was read but
    cut short is written anew (what it held is lost already)."""
    missing = [name for name, value in ((schema.ARTIFACT_DATA_EARLIER, earlier), (schema.ARTIFACT_DATA, replaced))
               if value is None]
    if missing:
        try:
            listed = {a.path for a in client.list_artifacts(parent_id)}
        except Exception as exc:  # noqa: BLE001  (MLflow's errors differ by store)
            listed, why = set(missing), f"its artifacts could not be listed: {exc}"
        else:
            why = "the store's artifacts did not answer"
        unread = [name for name in missing
                  if name in listed and tracking.read_text_artifact(client, parent_id, name) is None]
        if unread:
            log.warning("%s of invocation %s could not be read (%s): left as %s; the data this run reads is not "
                        "recorded there", " and ".join(unread), parent_id, why,
                        "it is" if len(unread) == 1 else "they are")
            return False
    entries = earlier_entries(earlier, replaced, record)
    if entries is not None:
        tracking.log_json_artifact(client, parent_id, schema.ARTIFACT_DATA_EARLIER, entries)
    return True


@dataclass(frozen=True)
class Standing:
    """Where an invocation stands in MLflow when a run continues it (SweepCallback.continue_after)."""

    completed_runs: frozenset[str]      # MLflow run ids of the completed cells (trials)
    pruned: int
    best: float | None                  # the best of the completed runs' latest values of the sweep's metric
    total: int                          # the invocation's cells (a search: its samples) now

    @property
    def done(self) -> int:
        return len(self.completed_runs)


def standing_of(client, experiment_id: str, parent_id: str, metric: str, mode: str, total: int,
                cells: frozenset[str] | None = None) -> Standing:
    """Read from the invocation's child runs in MLflow (what a driver that stopped left there); `cells`: a
    table's planned cells, whose runs alone count (a continuation with fewer --seeds keeps the others')."""
    runs = tracking.child_runs(client, experiment_id, parent_id)
    if cells is not None:
        runs = [r for r in runs if r.data.tags.get(schema.TAG_CELL_ID) in cells]
    completed = frozenset(r.info.run_id for r in runs
                          if r.data.tags.get(schema.TAG_STATUS) == schema.STATUS_COMPLETED)
    pruned = sum(r.data.tags.get(schema.TAG_STATUS) == schema.STATUS_PRUNED for r in runs)
    # a run left running, pruned or failed has no final value the search's table ranks
    values = [r.data.metrics[metric] for r in runs if r.info.run_id in completed
              and isinstance(r.data.metrics.get(metric), float) and not math.isnan(r.data.metrics[metric])]
    best = (max if mode == "max" else min)(values) if values else None
    return Standing(completed, pruned, best, total)


MARK_RETRY_S = 10.0   # while MLflow is away, how often the driver retries its queued marks
INTERRUPTED_MARK_WAIT_S = 10.0   # how long an interrupted sweep waits for MLflow to take its last marks

_REPORT_WARM_UP: list[threading.Thread] = []   # at most one per process
REPORT_WARM_UP_WAIT_S = 120.0   # imports + one figure take ~1 s; far beyond, something is stuck
EXIT_WARM_UP_WAIT_S = 30.0      # the console script's exit waits this long for it (settle_report_warm_up)


def settle_report_warm_up(timeout_s: float) -> None:
    """Wait, up to `timeout_s`, for the report's warm-up to finish. A process whose interpreter finalizes while
    the warm-up thread is inside matplotlib's C++ text layout aborts (SIGABRT, a native stack printed): a sweep
    stopped by SIGTERM in its tail exited -6 instead of 143. A stuck warm-up is left behind after the wait."""
    deadline = time.monotonic() + timeout_s
    for thread in _REPORT_WARM_UP:
        thread.join(timeout=max(0.0, deadline - time.monotonic()))


def warm_up_report() -> None:
    """Import the report's modules (matplotlib, the table writers, scipy.special: ~1 s) and ready matplotlib's back
    ends in a background thread, once per process. _publish waits for it; a failure only loses the head start."""
    if _REPORT_WARM_UP:
        return

    def work() -> None:
        try:
            from sweeps import report  # noqa: F401
            from sweeps.figures import warm_up
            from sweeps.stats import scipy_special

            scipy_special()   # a table's paired tests
            warm_up()
        except Exception as exc:  # noqa: BLE001  (the report imports and draws again, and says what fails)
            log.debug("report warm-up failed: %s", exc)

    thread = threading.Thread(target=work, name="sweeps-report-warm-up", daemon=True)
    try:
        thread.start()
    except RuntimeError as exc:   # no thread to spare: the report imports when it is drawn
        log.debug("report warm-up not started: %s", exc)
        return
    _REPORT_WARM_UP.append(thread)


# --------------------------------------------------------------------------- run

def _cell_payload(cell, key: str) -> dict:
    return {"config": to_flat(cell.config), "cell_id": cell.cell_id, "arm": cell.arm, "data": cell.data,
            "run_name": cell.run_name, "data_key": key}


def _parent_tags(prepared: PreparedSweep, datasets: Mapping[str, Any], keys: Mapping[str, str]) -> dict:
    fingerprints = {name: datasets[key].fingerprint for name, key in keys.items()}
    synthetic = all(datasets[key].dataset == "synthetic" for key in keys.values())
    return {
        schema.TAG_KIND: prepared.spec.kind,
        schema.TAG_SPEC_HASH: prepared.spec.spec_hash,
        schema.TAG_PROFILE: prepared.profile.name,
        schema.TAG_DATA: ",".join(d.name for d in prepared.data),
        schema.TAG_DATA_FINGERPRINT: json.dumps(fingerprints, sort_keys=True),
        schema.TAG_SYNTHETIC: str(synthetic).lower(),
        schema.TAG_SEEDS: json.dumps(list(prepared.plan.seeds)),
        schema.TAG_OVERRIDES: _overrides_tag(prepared),
        schema.TAG_GIT_COMMIT: tracking.git_commit(),
        schema.TAG_VERSIONS: json.dumps(tracking.package_versions(), sort_keys=True),
        tracking.TAG_INVOCATION: prepared.invocation_key,
        **command_tag(prepared, data_changed=False),   # a continuation says otherwise where it accepted a change
    }


def _overrides_tag(prepared: PreparedSweep) -> str:
    """The --set of the invocation (part of its identity, so the same on every run of it)."""
    return drawn_with(prepared.plan)[schema.TAG_OVERRIDES]


def parent_params(prepared: PreparedSweep) -> dict[str, str]:
    """What tells an invocation from the sweep's others and never changes while it is continued, as MLflow params
    of its parent run (schema.PARENT_PARAMS: columns of the MLflow UI's runs table, where the parents showed
    nothing but their time-stamped names): the sweep, its kind, profile, data sets (and the folders they were
    given as) and the --set that every cell computed with (placement keys left out: a continuation may change
    them). MLflow refuses to change a logged param: what a continuation may change is a tag
    (`parent_run_tags`) or a metric (`log_cell_counts`)."""
    sets = {k: v for k, v in prepared.plan.overrides.items() if k not in PLACEMENT_KEYS}
    params = {"sweep": prepared.spec.name, "kind": prepared.spec.kind, "profile": prepared.profile.name,
              "data": ",".join(d.name for d in prepared.data),
              "set": " ".join(f"{k}={set_text(v)}" for k, v in sorted(sets.items())) or "none"}
    roots = [f"{d.name}={d.root}" for d in prepared.data if d.root]
    if roots:
        params["data_roots"] = ",".join(roots)
    return params


def parent_run_tags(prepared: PreparedSweep, commit: str) -> dict[str, str]:
    """MLflow's own tags of a parent run that a continuation updates (the UI shows them: Source, its git commit)
    and the package version of the run that ran it last (schema.TAG_PACKAGE_VERSION; sweeps.versions keeps those
    it began with, and those a continuation trained under where they differ: tracking.versions_continued).
    `commit`: tracking.git_commit()'s, unknown outside a git checkout (then no commit tag)."""
    from mlflow.utils import mlflow_tags

    tags = {mlflow_tags.MLFLOW_SOURCE_NAME: f"sweeps {prepared.source or prepared.spec.name}",
            mlflow_tags.MLFLOW_SOURCE_TYPE: "LOCAL",
            schema.TAG_PACKAGE_VERSION: tracking.package_versions().get("transfer-sweeps", "not installed")}
    if commit and commit != "unknown":
        tags[mlflow_tags.MLFLOW_GIT_COMMIT] = commit.removesuffix("-dirty")
    return tags


def parent_first_tags(prepared: PreparedSweep) -> dict[str, str]:
    """MLflow's tags of a parent run set when it is created (or, on a parent an earlier version created, where
    missing), never replaced: its user (MLflow's run `user_id` is set from it at creation), and its description
    (the UI's note, which a user may edit there: a continuation keeps their words)."""
    import getpass

    from mlflow.utils import mlflow_tags

    spec = prepared.spec
    note = "\n\n".join(dict.fromkeys(t for t in (spec.title, spec.description, spec.caption) if t))
    tags = {mlflow_tags.MLFLOW_RUN_NOTE: note}
    try:
        tags[mlflow_tags.MLFLOW_USER] = getpass.getuser()
    except (KeyError, OSError):   # no name for this uid (a container's)
        pass
    return tags


def record_parent_facts(client, parent_id: str, prepared: PreparedSweep, commit: str,
                        logged_params: Mapping[str, str] | None = None,
                        logged_tags: Mapping[str, str] | None = None) -> None:
    """Params, and MLflow's own tags, of an invocation's parent run, by each run of it: the params and first tags
    it lacks (`logged_params`, `logged_tags`: the run's as read; a parent an earlier version created has none), a
    logged param never again (its value cannot change for an invocation; MLflow would refuse another), and
    `parent_run_tags` anew. A store that refuses them stops no sweep: they only describe it."""
    from mlflow.entities import Param

    params = [Param(k, v) for k, v in parent_params(prepared).items() if k not in (logged_params or {})]
    first = {k: v for k, v in parent_first_tags(prepared).items() if k not in (logged_tags or {})}
    try:
        if params:
            client.log_batch(parent_id, params=params)
        tracking.set_tags(client, parent_id, {**first, **parent_run_tags(prepared, commit)})
    except Exception as exc:  # noqa: BLE001  (MLflow's, the database's, the network's: none may stop the sweep)
        log.warning("the params and tags that describe invocation %s in MLflow's runs table were not logged: "
                    "%s: %s", parent_id, type(exc).__name__, exc)


def log_cell_counts(client, parent_id: str, planned: int, counts: Mapping[str, int]) -> None:
    """The invocation's cells, planned and so far completed, pruned and failed, as metrics of its parent run
    (schema.PARENT_METRICS; a search's cells are its trials): the latest run's, which the runs table shows."""
    from mlflow.entities import Metric

    now = int(time.time() * 1000)
    values = {"cells": planned, **{f"cells_{s}": counts.get(s, 0) for s in
                                   (schema.STATUS_COMPLETED, schema.STATUS_PRUNED, schema.STATUS_FAILED)}}
    try:
        client.log_batch(parent_id, metrics=[Metric(k, float(v), now, 0) for k, v in values.items()])
    except Exception as exc:  # noqa: BLE001  (as record_parent_facts)
        log.warning("the cell counts of invocation %s were not logged to its parent run: %s: %s", parent_id,
                    type(exc).__name__, exc)


def _tune_configs(prepared: PreparedSweep, callback: SweepCallback, name: str):
    spec = prepared.spec
    tune_kwargs: dict[str, Any] = {"metric": spec.metric, "mode": spec.mode}
    if spec.kind == "search":
        from sweeps.pruning import make_optuna_search

        searcher, scheduler = make_optuna_search(
            space=None, metric=None, mode=None, pruner_spec=spec.search.pruner,
            sampler=spec.search.sampler, seed=prepared.plan.seeds[0],   # the search's one seed
            n_startup_trials=spec.search.n_startup_trials)
        tune_kwargs.update(search_alg=searcher, scheduler=scheduler, num_samples=spec.search.num_samples)
    if prepared.max_concurrent is not None:
        tune_kwargs["max_concurrent_trials"] = prepared.max_concurrent
    run_config = tune.RunConfig(
        name=name, storage_path=str(prepared.storage_path), verbose=0, callbacks=[callback, *_tune_loggers()],
        failure_config=tune.FailureConfig(max_failures=prepared.options.max_failures),
        checkpoint_config=tune.CheckpointConfig(num_to_keep=1))
    # reuse_actors: one worker process runs trial after trial, so a trial pays neither a new process
    # nor the imports of torch, Tune and MLflow (~5 s each; bench/RESULTS.md §1). `fit` sets threads
    # and seeds per trial, and a failed trial's actor is never reused (Tune replaces it).
    return tune.TuneConfig(reuse_actors=True, **TRIAL_NAMING, **tune_kwargs), run_config


NO_TUNE_LOGGERS = "TUNE_DISABLE_AUTO_CALLBACK_LOGGERS"


def _tune_loggers() -> list:
    """Tune's per-trial result.json and progress.csv, named here so that Tune's default set, which also
    brings a TensorBoard writer, can be turned off (`_without_tensorboard_logger`): importing tensorboardX
    costs the driver ~3.5 s before the first trial starts, and every curve is in MLflow. None when the
    user turned Tune's loggers off (TUNE_DISABLE_AUTO_CALLBACK_LOGGERS=1)."""
    if os.environ.get(NO_TUNE_LOGGERS, "0") == "1":
        return []
    from ray.tune.logger import CSVLoggerCallback, JsonLoggerCallback

    return [CSVLoggerCallback(), JsonLoggerCallback()]


def _without_tensorboard_logger():
    """Tune adds its default loggers (CSV, JSON, TensorBoard) at `fit` unless this variable is 1; the run's
    own callbacks carry the first two (`_tune_loggers`, kept in tuner.pkl for a restore). Set only for the
    `fit` (the variable is put back on exit), so whether the user turned them off is read afresh."""
    return temporarily_set(NO_TUNE_LOGGERS, "1")


STORAGE_FULL_BYTES = tracking.FULL_BELOW_BYTES   # less free in --storage than this, as a `fit` fails: full


@contextlib.contextmanager
def _fitting(storage: Path | None = None, again: str = "sweeps resume NAME"):
    """What each Tune `fit` of a sweep runs inside: no TensorBoard logger, SIGTERM stopping it as Ctrl-C does.
    A `fit` that fails while `storage` is full (`storage_full`) is a SweepError that says so and how to continue
    (`again`): Tune's own files there were cut short, and it failed reading them back (an "UnpicklingError: pickle
    data was truncated" traceback, naming no disk, after every trial had ended)."""
    HALTS.clear()   # an earlier fit's (sigterm_stops_like_ctrl_c clears them too, in the main thread alone)
    try:
        with _without_tensorboard_logger(), sigterm_stops_like_ctrl_c(), _full_disk_said_once():
            yield   # read was_interrupted inside: the stops this fit recorded are dropped at its end
    except Exception as exc:
        if isinstance(halt := halted(), StorageFull):   # the driver stopped the fit for it: said as such
            raise halted_error(halt, again) from exc
        full = storage_full(storage, exc) if storage is not None else None
        if full is None:
            raise
        raise StorageFull(f"{full}; Tune failed ({type(exc).__name__}: {exc}). {free_space_there(full)}, then "
                          f"`{again}` continues the sweep: completed cells are kept, unfinished ones continue from "
                          "their last checkpoint") from exc


# Ray's loggers that say, with a traceback, each time Tune's copy of its files into --storage fails: every ~10 s
# (syncer.py's "Last sync command failed"), and at the fit's end (experiment_state.py's "Saving experiment state")
SYNC_LOGGERS = ("ray.train._internal.syncer", "ray.tune.execution.experiment_state")


class _SaidOnce(logging.Filter):
    """Lets through the first record of a full disk (FULL_DISK in its message or traceback) and drops the rest."""

    def __init__(self) -> None:
        super().__init__()
        self.said = False

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        if record.exc_info and record.exc_info[1] is not None:
            text += f" {record.exc_info[1]}"
        if not FULL_DISK.search(text):
            return True
        if self.said:
            return False
        self.said = True
        return True


@contextlib.contextmanager
def _full_disk_said_once():
    """While --storage is full, Ray's syncer printed a WARNING with a traceback every ~10 s until the sweep ended (and
    its experiment state an ERROR at the end): within a fit of ours, Ray's sync loggers (SYNC_LOGGERS) say it once.
    Other records of theirs pass, and nothing changes outside the fit."""
    said = _SaidOnce()
    loggers = [logging.getLogger(name) for name in SYNC_LOGGERS]
    for logger in loggers:
        logger.addFilter(said)
    try:
        yield
    finally:
        for logger in loggers:
            logger.removeFilter(said)


class StorageFull(SweepError):
    """A Tune `fit` that failed while --storage was full (`_fitting`): said so already, not re-worded as a full
    MLflow store where the storage lies in the database's folder (./ray_results beside ./mlflow.db)."""


def storage_full(storage: Path, exc: BaseException | None = None) -> str | None:
    """"--storage PATH is full (N MB free)" where it has less than STORAGE_FULL_BYTES free, or `exc` (or what it was
    raised from) is a full disk's (ENOSPC); "--storage PATH is over its quota" where that is an EDQUOT (a home
    folder's quota used up, the disk's free bytes beside the point); "... ran out of inodes (files), not bytes"
    where its filesystem has no inode left; "... was full when written to (N MB free now)"
    where a full disk's error came with STORAGE_FULL_BYTES or more free as this is said (freed since); else None.
    None too where its free space cannot be read and no error says it is full."""
    import errno

    cause, seen = exc, set()
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        if isinstance(cause, OSError) and cause.errno in tracking.FULL_DISK_ERRNOS:
            break
        cause = cause.__cause__ or cause.__context__
    # a full disk that names its file outside --storage (Ray's session folder in /tmp, another mount): not storage's
    if cause is not None and cause.filename and not _under(str(cause.filename), storage):
        cause = None
    if cause is not None and cause.errno == errno.EDQUOT:
        return f"--storage {storage} is over its quota"
    full = tracking.how_full(storage, failed=cause is not None)
    if full is None:
        return None
    said, free = full
    return f"--storage {storage} {said}" + (f" ({free})" if free is not None else "")


# a quota used up (EDQUOT): Linux's words, macOS's ("Disc quota exceeded"), and this host's number (another's
# may mean another error here: macOS's 69 is Linux's ENOSR)
OVER_QUOTA = rf"Dis[ck] quota exceeded|\[errno {errno.EDQUOT}\]"
FULL_DISK = re.compile(r"No space left on device|\[errno 28\]|" + OVER_QUOTA + r"|database or disk is "
                       r"full|the MLflow store \S.* \(its disk: |is over its quota \(MLflow",
                       re.IGNORECASE)


def full_disk_of_trial(text: str, storage: str | os.PathLike | None, tracking_uri: str) -> Exception | None:
    """Where a trial's error file (`text`) ends in a full disk of the sweep's own, what the driver stops the sweep
    for (`SweepCallback.stop_if_a_disk_is_full`): a StorageFull naming --storage and its free space (an ENOSPC that
    names a path in it, as the trainable's own for a checkpoint Tune could not copy does), or an error
    `tracking.full_store` names the sqlite store by (sqlite's "database or disk is full"; an ENOSPC naming a path in
    the database's folder, its mlartifacts/): a StoreFull. None for any other error, and for a full disk elsewhere (a node's
    /tmp, which another node may have room in). --storage is looked at first: ./ray_results lies in ./mlflow.db's
    folder in the default layout."""
    import errno

    message = error_message(last_failure(text))
    if not FULL_DISK.search(message):
        return None
    paths = [p.rstrip(".,;:)]'\"") for p in re.findall(r"/[^\s'\"`]+", message)]
    number = errno.EDQUOT if re.search(OVER_QUOTA, message, re.IGNORECASE) else errno.ENOSPC
    if storage is not None:
        for path in paths:
            if _under(path, Path(storage)):
                return StorageFull(storage_full(Path(storage), OSError(number, message, path)))
    sqlite = (re.search(r"(?:\(sqlite3\.OperationalError\) )?database or disk is full", message, re.IGNORECASE)
              or re.search(r"database or disk is full", last_failure(text)))   # in the traceback of a wrapper
    # the last path first: the file written ("'src' -> 'dst'" of a copy), after the database a trial's own sentence
    # names ahead of MLflow's words (`trainable._naming_a_full_store`)
    causes = [RuntimeError(sqlite.group(0))] if sqlite else [OSError(number, os.strerror(number), p)
                                                            for p in reversed(paths)]
    full = next(filter(None, (tracking.full_store(tracking_uri, cause) for cause in causes)), None)
    return StoreFull(full) if full is not None else None


class StoreFull(tracking.TrackingError):
    """The sqlite store's disk found full (`full_disk_of_trial`, `store_full_error`): said so already, not re-worded
    by run_sweep."""


def store_full_error(full: str, again: str) -> StoreFull:
    """A full sqlite store (`full`: `tracking.full_store`'s sentence) as the error a sweep ends in, with how to go
    on (`again`: the command that continues it)."""
    quota = "have its quota raised, or " if "over its quota" in full else ""
    return StoreFull(f"{full}. Free space there (or {quota}move the database with its mlartifacts/ folder to a disk with "
                     f"room and pass that --tracking-uri), then `{again}` continues the sweep: what was recorded is "
                     "kept, completed cells are not trained again")


def halted_error(halt: Exception, again: str) -> Exception:
    """The error a sweep the driver stopped for a full disk (`stops.halt_fit`) ends in, saying how to continue
    (`again`)."""
    if isinstance(halt, StoreFull):
        return store_full_error(str(halt), again)
    return StorageFull(f"{halt}: a trial could not write its checkpoint there, and the sweep stopped rather than "
                       f"retry it onto the same disk. {free_space_there(str(halt))}, then `{again}` continues the "
                       "sweep: completed cells are kept, unfinished ones continue from their last checkpoint")


def free_space_there(full: str) -> str:
    """What to do about a full --storage (`storage_full`'s text): free space there, or have its quota raised."""
    return "Free space there" + (" (or have its quota raised)" if "over its quota" in full else "")


def _under(name: str, folder: Path) -> bool:
    """Whether the path `name` lies in `folder` (both resolved: a storage given through a link)."""
    try:
        return Path(os.path.realpath(name)).is_relative_to(Path(os.path.realpath(folder)))
    except (OSError, ValueError):
        return False


def restore_tuner(tune_path: str, trainable, standing: Standing | None = None,
                  tracking_uri: str | None = None, cells_planned: frozenset[str] | None = None,
                  num_samples: int | None = None, max_concurrent=AS_BEGUN,
                  max_failures: int | None = None, marks_file: str | None = None,
                  trial_ids: Collection[str] | None = None, storage: str | None = None) -> tune.Tuner:
    """Tune's experiment at `tune_path`, to be continued, with Tune's loggers as `_tune_loggers` says now.
    Tune restores the callbacks pickled in tuner.pkl when the experiment began: one begun by a version
    that left the loggers to Tune's defaults has none of ours, and with the defaults off
    (`_without_tensorboard_logger`) its trials would write no result.json or progress.csv from here on;
    one begun while the user had turned them off would write them despite a change of mind. `standing`:
    where the invocation stands, for the restored SweepCallback's counts; `tracking_uri`: the store as this
    run reaches it, for the restored SweepCallback's marks (it kept the URI of the run that began it);
    `cells_planned`: a table's cells this run plans, which alone its progress counts (the experiment may
    hold trials of seeds a continuation with fewer --seeds leaves out: `train_cell` skips them);
    `num_samples`: a search's samples as its spec asks now, more than it began with to extend it;
    `max_concurrent`: the most trials at once this run asks (None: no limit). A search's limiter takes it, and
    a table's trial generator (`RestoredVariants`); neither holds the trials the experiment had begun, which
    Tune restores together (run_sweep weighs that: `_restores_too_many_at_once`);
    `max_failures`: the retries of a failed trial this run asks, which the restored trials' own (set when the
    experiment began) give way to as each starts; `marks_file`: where this run keeps its marks (`marks_file_of`
    in its --storage), over the restored SweepCallback's (in the storage the experiment began in, which may
    have moved); `trial_ids`: a search's trials its Tune state holds (`drop_queued_trials`); `storage`: this run's
    --storage, over the restored SweepCallback's, where it looks for a full disk (`full_disk_of_trial`)."""
    from ray.tune.logger import CSVLoggerCallback, JsonLoggerCallback

    tuner = tune.Tuner.restore(tune_path, trainable, resume_unfinished=True, resume_errored=True)
    internal = getattr(tuner, "_local_tuner", None)   # Tune's own object; None only under Ray Client
    if internal is not None:
        run_config = internal.get_run_config()
        kept = [c for c in run_config.callbacks or []
                if not isinstance(c, (CSVLoggerCallback, JsonLoggerCallback))]
        run_config.callbacks = kept + _tune_loggers()
        for callback in (c for c in kept if isinstance(c, SweepCallback)):
            if standing is not None:
                callback.continue_after(standing)
            if tracking_uri is not None:
                callback.tracking_uri = tracking_uri
            callback.cells_planned = cells_planned
            callback.max_failures = max_failures
            if marks_file is not None:
                callback.marks_file = marks_file
            if storage is not None:
                callback.storage = storage
        if num_samples is not None:
            extend_search(internal._tune_config, num_samples, max_concurrent, experiment_path=tune_path,
                          trial_ids=trial_ids)
        elif (tune_config := getattr(internal, "_tune_config", None)) is not None:
            # a table: the cells it makes from here on, with this run's limit, in the experiment's folder now
            tune_config.search_alg = RestoredVariants(None if max_concurrent is AS_BEGUN else (max_concurrent or 0),
                                                      tune_path)
            tune_config.max_concurrent_trials = None   # in the generator: tune.run warns of it beside one
    return tuner


def _restores_too_many_at_once(kind: str, experiment: Path, max_concurrent: int | None, storage: Path) -> bool:
    """Whether a table's unfinished cells continue in a new Tune experiment rather than in the restored one
    (True), so as to keep to this run's --max-concurrent: Tune restores every trial the experiment had begun
    and starts them together as resources allow, whatever the limit (it holds only the trials made from then
    on), so a continuation asking fewer at once (trials out of memory side by side) ran as many as before. Each
    of its cells resumes from its newest checkpoint in --storage (`sweeps.trainable.salvaged_state`) in the same
    MLflow run, so where the experiment is in another folder than this run's --storage, or is a search (whose
    Optuna study lives in its state), it is restored as it is and this is warned of."""
    begun = len(unfinished_trials(experiment))
    if max_concurrent is None or begun <= max_concurrent:
        return False
    if kind == "table" and experiment.parent == storage:
        log.warning("--max-concurrent %d is fewer than the %d trials Tune experiment %s had begun, which its restore "
                    "would start together: its unfinished cells continue in a new Tune experiment, %d at once, each "
                    "from its newest checkpoint in --storage, in the same MLflow run", max_concurrent, begun,
                    experiment, max_concurrent)
        return True
    where = (f"--storage {experiment.parent} (where its checkpoints are) keeps to it from the start"
             if kind == "table" else "its new trials keep to it")
    log.warning("--max-concurrent %d is fewer than the %d trials Tune experiment %s had begun: Tune restores them "
                "together, as resources allow (--cpus-per-trial and --gpus-per-trial do apply to them: trials that "
                "reserve more run fewer at once); %s", max_concurrent, begun, experiment, where)
    return False


def _queued_trials_past_num_samples(client, experiment_id: str, parent_id: str, spec: SweepSpec,
                                    experiment: Path) -> list[str] | None:
    """Before a search's Tune experiment is restored: leave out the trials it had drawn but not begun for which
    its num_samples, lowered since, has no room (`drop_queued_trials`), saying so; the trials its state holds
    then (None: its state cannot be read here, and Tune's restore judges it). A researcher who lowers num_samples
    asks for no trial beyond it: the trials ended are kept, those begun finish (even past it: their epochs are
    trained), and no other starts."""
    children = tracking.child_runs(client, experiment_id, parent_id)
    ended = ended_trials(tracking.cell_statuses(client, experiment_id, parent_id))
    begun = {r.data.tags.get(schema.TAG_TRIAL_ID) for r in children} - {None}
    dropped, started, held = drop_queued_trials(experiment, spec.search.num_samples - ended, begun)
    if dropped:
        beyond = ended + len(started) - spec.search.num_samples
        log.warning("the search %s asks for %d trials now (num_samples): %d have ended and %d had begun, which go "
                    "on%s; %d drawn but not begun %s not run", spec.name, spec.search.num_samples, ended, len(started),
                    f" (so it ends with {beyond} more than num_samples)" if beyond > 0 else "", len(dropped),
                    "is" if len(dropped) == 1 else "are")
    return held


def _search_space(prepared: PreparedSweep) -> dict:
    space = {}
    for key, param in prepared.spec.search.space.items():
        if param.type == "categorical":
            space[key] = tune.choice(list(param.choices))
        elif param.type == "int" and param.step and param.step != 1:   # Optuna: IntDistribution(step=...)
            space[key] = tune.qrandint(int(param.low), int(param.high), int(param.step))   # high inclusive
        elif param.type == "int":
            space[key] = (tune.lograndint if param.log else tune.randint)(int(param.low), int(param.high) + 1)
        elif param.log:
            space[key] = tune.loguniform(param.low, param.high)
        elif param.step:
            space[key] = tune.quniform(param.low, param.high, param.step)
        else:
            space[key] = tune.uniform(param.low, param.high)
    return space


@contextlib.contextmanager
def invocation_claimed(prepared: PreparedSweep):
    """Hold this invocation for this process while it runs: an exclusive lock, among this host's processes, on a
    file in this user's folder of host locks (`host_locks.lock_folder`) named by a hash of the store (its URI
    however spelled: `host_locks.store_key`, so that `sqlite:///mlflow.db` and the same database by its absolute
    path, or through a linked folder, exclude each other), the sweep and the invocation key (the pid of its holder written in it; removed as it lets go). The same command
    run again meanwhile, in another terminal, is refused at once: the MLflow parent run that the driver check
    reads is made only after the data are decoded and Ray has started (tens of seconds), and a second driver
    starting within that window made a second parent run training the very same cells, or, continuing an
    interrupted invocation, trained its cells a second time into the same MLflow runs. The lock goes with the
    process (Ctrl-C, SIGKILL); Ray's processes do not inherit it. A `--fresh` run is an invocation of its own
    and claims one by its pid, which no other run is refused by (invocation-fresh-*.lock: a file that one killed
    outright left, no other run would take again, the next `--fresh` run removes); drivers on other hosts, and
    other users', go by the heartbeat. The lock file names the sweep and the store (`host_locks.invocation_note`), so that `sweeps
    status` tells a run starting, before its parent run is made, from one that stopped before it made one."""
    import hashlib

    claimed = (prepared.invocation_key,) if not prepared.options.fresh else ("--fresh", str(os.getpid()))
    key = hashlib.sha256("\0".join((host_locks.store_key(prepared.tracking_uri), prepared.spec.name, *claimed))
                         .encode()).hexdigest()[:16]
    what = f"invocation {prepared.invocation_key} of {prepared.spec.name}"
    try:
        folder = host_locks.lock_folder()
    except OSError as exc:   # a read-only temporary folder, one another user made: the driver check alone
        log.debug("lock on %s not taken (%s)", what, exc)
        yield
        return
    if prepared.options.fresh:   # named by a pid, a file a killed --fresh run left is no other run's to remove
        host_locks.remove_left(folder, "invocation-fresh-*.lock")
    with contextlib.ExitStack() as held_here:
        try:
            held_here.enter_context(host_locks.host_lock(
                folder / f"invocation-{'fresh-' if prepared.options.fresh else ''}{key}.lock", what, wait=False,
                note=host_locks.invocation_note(prepared.tracking_uri, prepared.spec.name)))
        except host_locks.LockHeld as held:
            raise SweepError(f"this invocation of {prepared.spec.name!r} (its profile, data and overrides) is being "
                             f"run now by process {held.note or '?'} on this host, which started it; wait for it to "
                             f"end or stop it (Ctrl-C there) first, or start another invocation with --fresh") from None
        yield


@restores_sigterm_handler
def run_sweep(prepared: PreparedSweep, resume_only: bool = False, on_cluster_lost=None) -> SweepOutcome:
    """Run (or continue) the sweep to the end; returns what happened, counted from MLflow. `on_cluster_lost(
    why)`: called from another thread once Ray's cluster stops answering, after the invocation is marked
    interrupted (`_interrupted_if_cluster_lost`); Ray ends the process soon after, whatever it does. The
    same invocation run meanwhile by another process on this host is refused at once (`invocation_claimed`)."""
    try:
        with invocation_claimed(prepared):
            try:
                return _run_sweep(prepared, resume_only, on_cluster_lost)
            except Exception as exc:   # a store that filled up: named, and how to go on, for MLflow's traceback
                full = (None if isinstance(exc, (StorageFull, StoreFull)) else
                        tracking.full_store(prepared.tracking_uri, exc))
                if full is None:
                    raise
                raise store_full_error(full, command_again("resume", prepared)) from exc
    except BaseException:   # a refusal, and a Ctrl-C (KeyboardInterrupt) or SIGTERM (SystemExit) too
        _remove_storage_a_refused_run_made(prepared)
        raise


def _remove_storage_a_refused_run_made(prepared: PreparedSweep) -> None:
    """A run refused before it began (`--profile paper` on a machine without a GPU, a --data changed since), or
    stopped before it wrote anything there (Ctrl-C while its data are decoded), left the empty --storage folders
    prepare made to know them writable: those still empty are removed, so that it leaves no folder as if something
    had begun. Only empty folders are removed (rmdir): one that anything was written into, Tune's results or the
    marks a search keeps, stays, and so does a folder there before. A new mlflow.db is kept, empty or not: another
    sweep started beside this one may be writing its first run into it."""
    if prepared.storage_made is None:
        return
    folder = prepared.storage_path
    while True:
        try:
            folder.rmdir()   # only an empty folder
        except OSError:
            break
        if folder == prepared.storage_made:
            break
        folder = folder.parent


def _run_sweep(prepared: PreparedSweep, resume_only: bool, on_cluster_lost) -> SweepOutcome:
    started = time.time()
    spec, plan = prepared.spec, prepared.plan
    client = tracking.client_for(prepared.tracking_uri)
    experiment_id = tracking.ensure_experiment(client, spec.name, prepared.tracking_uri)
    # a driver killed without a word (SIGKILL, out of memory) left its runs RUNNING in MLflow: ended KILLED
    tracking.end_runs_of_gone_drivers_if_possible(client, experiment_id)
    latest = next(filter(None, (tracking.find_parent(client, experiment_id, key) for key in prepared.keys_recorded)),
                  None)
    keyed_with = None   # found by its spec.yaml: the data its key holds (as given, or as a version before knew them)
    if latest is None and not prepared.options.fresh:
        # the invocations listed once for both, and each named once: one warning says a new invocation starts
        earlier, named = tracking.parents(client, experiment_id, max_results=None), []
        latest, keyed_with = earlier_of_an_edited_spec(client, experiment_id, prepared, resuming=resume_only,
                                                       parents=earlier, named=named)
        if latest is None:
            warn_of_data_moved(client, experiment_id, prepared, resuming=resume_only, parents=earlier, named=named)
    parent = None if prepared.options.fresh else latest
    if parent is not None and keyed_with is None:
        keyed_with = prepared.data_keyed(parent.data.tags.get(tracking.TAG_INVOCATION))
    if parent is not None and keyed_with is not None and keyed_with != prepared.data:
        # recorded by a version that knew the data by another path to its folder: continued as it was, its cells
        # keyed so
        log.info("invocation %s of %s knows its data by %s: continued so", parent.info.run_id, spec.name,
                 ", ".join(f"{d.name}={d.root}" for d in keyed_with if d.root))
        prepared = prepared.with_data(keyed_with)
        plan = prepared.plan
    if (parent is not None and parent.data.tags.get(schema.TAG_STATUS) == schema.STATUS_RUNNING
            and tracking.driver_state(parent.data.tags) == "alive"):   # so the tag parses, with a pid
        tags = parent.data.tags
        if json.loads(tags[schema.TAG_DRIVER]) != json.loads(tracking.driver_identity()):
            raise SweepError(
                f"invocation {parent.info.run_id} of {spec.name!r} is being run now by "
                f"{tracking.driver_description(tags)}; wait for it to end or stop it (Ctrl-C there) first, or "
                f"start another invocation with --fresh"
                + ("" if tracking.driver_is_here(tags) else f". If that driver is gone, it counts as stopped "
                   f"{tracking.HEARTBEAT_STALE_S / 60:.0f} min after its last sign of life"))
    completed = parent is not None and parent.data.tags.get(schema.TAG_STATUS) == schema.STATUS_COMPLETED
    if resume_only and (parent is None or (completed and finished_as_planned(client, experiment_id, parent, plan))):
        # a completed one too: `resume` with the options forgotten found an older, finished invocation. An
        # unfinished one of these very options is left out: a `--fresh` run left it behind, and these options
        # find the one run last, so that naming it as one to resume with them sent the user round in a circle
        unfinished = [p for p in tracking.parents(client, experiment_id, max_results=1000, unfinished=True)
                      if p.data.tags.get(tracking.TAG_INVOCATION) not in prepared.keys_recorded][:3]
        unfinished = [tracking.invocation_options(p, among=unfinished) for p in unfinished]
        raise SweepError((f"nothing to resume: invocation {parent.info.run_id[:8]} of {spec.name!r} with this "
                          "profile, data and overrides is already completed (`sweeps table` shows it)"
                          if parent is not None else
                          f"nothing to resume: no earlier invocation of {spec.name!r} with this profile, "
                          "data and overrides is recorded; start it with `sweeps run`")
                         + (f". Unfinished invocations of {spec.name!r} recorded (resume one with its --profile, "
                            f"its --set and its --data, roots included, and the spec as it was): "
                            f"{'; '.join(unfinished)}" if unfinished else ""))
    gone = tracking.artifacts_not_here(parent, prepared.tracking_uri) if parent is not None else None
    if gone is not None:   # its models and report would go to the old folder, made anew there, or fail there
        raise SweepError(f"sweep {spec.name!r} cannot be continued: {gone} Else start it anew with "
                         f"`{command_again('run', prepared, fresh=True)}` (a new MLflow parent run)")
    if latest is not None:   # first: a search that cannot be continued, or one `--fresh` leaves, gets its marks
        for kept in kept_marks_files(latest, prepared.storage_path, spec.name):
            try:
                replay_marks(client, kept)
            except SweepError as exc:
                if parent is not None:
                    raise
                log.warning("--fresh goes on without the marks of the invocation it leaves: %s", exc)
    configs = [c.config for c in plan.cells] or list(plan.base_configs.values())
    cell_keys = {cell.cell_id: data_key(cell.config) for cell in plan.cells}   # arms may decode differently
    data_keys: dict[str, list[str]] = {}   # data name -> its keys; a search's trials read the base config's
    for cell in plan.cells:
        data_keys.setdefault(cell.data, [])
        if cell_keys[cell.cell_id] not in data_keys[cell.data]:
            data_keys[cell.data].append(cell_keys[cell.cell_id])
    if not plan.cells:
        data_keys = {name: [data_key(config)] for name, config in plan.base_configs.items()}
    first_keys = {name: keys[0] for name, keys in data_keys.items()}
    fingerprints: dict[str, str] = {}

    def fingerprint_now(child) -> str | None:
        """The fingerprint of the data a child's cell reads now (computed once per data key, without decoding)."""
        from transfer_core.data import fingerprint_of

        tags = child.data.tags
        key = (cell_keys.get(tags.get(schema.TAG_CELL_ID, "")) if spec.kind == "table"
               else first_keys.get(tags.get(schema.TAG_DATA, "")))
        if key and key not in fingerprints:
            config = next(c for c in configs if data_key(c) == key)
            fingerprints[key] = fingerprint_of(config.data, config.model.image_size, checked=True)   # by prepare
        return fingerprints.get(key) if key else None

    alike: dict[str, tuple[str, ...]] = {}   # data key -> fingerprints earlier versions gave the same data

    def alike_now(child) -> tuple[str, ...]:
        """The fingerprints earlier versions gave the data a child's cell reads now, where they decoded it alike
        (asked only of a child whose fingerprint differs from fingerprint_now's)."""
        from transfer_core.data import fingerprints_alike

        tags = child.data.tags
        key = (cell_keys.get(tags.get(schema.TAG_CELL_ID, "")) if spec.kind == "table"
               else first_keys.get(tags.get(schema.TAG_DATA, "")))
        if key and key not in alike:
            config = next(c for c in configs if data_key(c) == key)
            alike[key] = fingerprints_alike(config.data, config.model.image_size, checked=True)
        return alike.get(key, ()) if key else ()

    said_changed: dict[tuple, str] = {}   # (data key, a run's fingerprint) -> what differs from the data it trained on
    recorded: dict[str, Any] = {}   # the parent's data.json and data_earlier.json, each read once

    def recorded_data(name: str = schema.ARTIFACT_DATA) -> Any:
        """The parent's data.json as its latest run recorded it (or data_earlier.json), read once."""
        if name not in recorded:
            recorded[name] = tracking.read_json_artifact(client, parent.info.run_id, name)
        return recorded[name]

    def what_changed(child) -> str:
        """What differs in the data a child's cell reads now from what the invocation's data.json recorded (asked
        only of a child whose fingerprint differs)."""
        from transfer_core.data import listed_facts

        tags = child.data.tags
        key = (cell_keys.get(tags.get(schema.TAG_CELL_ID, "")) if spec.kind == "table"
               else first_keys.get(tags.get(schema.TAG_DATA, "")))
        if not key:
            return ""
        # the entry of the child's arm: "<name>", or "<name>#<key>" of an arm at another image size; where a
        # continuation since (with --accept-changed-data) recorded other data there, the entry it replaced
        name, fingerprint = tags.get(schema.TAG_DATA, ""), tags.get(schema.TAG_DATA_FINGERPRINT)
        then = recorded_entry(recorded_data(), name, fingerprint)
        if then is None:
            then = recorded_entry(recorded_data(schema.ARTIFACT_DATA_EARLIER), name, fingerprint)
        if then is None:
            return ""   # recorded by no run of the invocation (edited, or a version before data.json)
        if (key, fingerprint) not in said_changed:   # tried once: failed, it is not said (asked of each run)
            config = next(c for c in configs if data_key(c) == key)
            said_changed[key, fingerprint] = ""
            said_changed[key, fingerprint] = describe_data_change(then, listed_facts(config.data, checked=True))
        return said_changed[key, fingerprint]

    if parent is not None:   # nothing left to train (a run cut short while drawing its report, or a rerun)
        statuses = tracking.cell_statuses(client, experiment_id, parent.info.run_id)
        if spec.kind == "table":
            finished = all(statuses.get(c.cell_id) == schema.STATUS_COMPLETED for c in plan.cells)
        else:
            finished = ended_trials(statuses) >= spec.search.num_samples
        if finished:
            log.info("sweep %s: every cell is already finished in run %s", spec.name, parent.info.run_id)
            # the invocation run last, which `sweeps table`, `plot` and `status` show by default; by this driver,
            # which a heartbeat alone would have made the one (gone) it names look alive
            tracking.set_tags(client, parent.info.run_id, {schema.TAG_DRIVER: tracking.driver_identity(),
                                                           **tracking.heartbeat_tags()})
            children = tracking.child_runs(client, experiment_id, parent.info.run_id)
            check_data_unchanged(prepared, parent, children, fingerprint_now, finished=True, alike_now=alike_now,
                                 what_changed=what_changed)
            tracking.backfill_arm_params(client, children)   # cells made before it was a param
            record_parent_facts(client, parent.info.run_id, prepared, tracking.git_commit(), parent.data.params,
                                parent.data.tags)
            if parent.data.tags.get(tracking.TAG_INVOCATION) != prepared.invocation_key:   # found by an older key
                tracking.set_tags(client, parent.info.run_id, {tracking.TAG_INVOCATION: prepared.invocation_key})
            # cut short at its end, or asked for with other --seeds (or placement --set): as a continuation
            # that trains records them (its plan too, which `sweeps status` counts by), the report is drawn
            # (again) over this run's seeds (the same seeds in another order draw the same report: drawn_alike)
            _interrupt_left_over(client, experiment_id, parent.info.run_id, spec, statuses)
            _drop_completed_cells_checkpoints(client, experiment_id, parent.info.run_id, spec,
                                              experiment_here(parent.data.tags.get(tracking.TAG_TUNE_PATH),
                                                              prepared.storage_path))
            respecified = record_spec(client, parent, spec, tag=False)
            drawn = None
            if (parent.data.tags.get(schema.TAG_STATUS) != schema.STATUS_COMPLETED or respecified
                    or not drawn_alike(parent.data.tags, plan)):
                tracking.set_tags(client, parent.info.run_id, drawn_with(plan))
                log_plan(client, parent.info.run_id, plan)
                drawn = _publish(spec.name, prepared.tracking_uri, parent.info.run_id, prepared.storage_path)
                if respecified and drawn is not None:
                    set_spec_hash(client, parent.info.run_id, spec)
                tracking.finish_parent(client, parent.info.run_id, schema.STATUS_COMPLETED)
            counts = {s: list(planned_statuses(statuses, plan, spec).values()).count(s)
                      for s in (schema.STATUS_COMPLETED, schema.STATUS_PRUNED)}
            log_cell_counts(client, parent.info.run_id, len(plan.cells) if spec.kind == "table"
                            else spec.search.num_samples, _counted(statuses, plan, spec))
            return SweepOutcome(parent.info.run_id, experiment_id, schema.STATUS_COMPLETED, counts,
                                time.time() - started, skipped_cells=len(plan.cells) or sum(counts.values()),
                                report_dir=drawn)
    if parent is not None and spec.kind == "search":
        check_search_restorable(spec, parent, command_again("run", prepared, fresh=True), client,
                                trials_recorded=len(statuses), storage=prepared.storage_path)
    data_changed: dict[str, list[str]] = {}   # accepted with --accept-changed-data: recorded on the parent
    if parent is not None:   # before decoding: a changed data set would be decoded (and cached) for nothing
        children = tracking.child_runs(client, experiment_id, parent.info.run_id)
        data_changed = check_data_unchanged(prepared, parent, children, fingerprint_now, alike_now=alike_now,
                                            what_changed=what_changed)
        tracking.backfill_arm_params(client, children)   # cells made before it was a param

    check_local_resources(prepared.options.address, prepared.cpus_per_trial, prepared.gpus_per_trial)
    import ray

    if not ray.is_initialized():
        check_address(prepared.options.address)
    datasets = decode_data(configs)
    for key, fps in alike.items():   # a run resumed on one of them trained on this data: no earlier version of it
        if fps and key in datasets:
            datasets[key] = dataclasses.replace(datasets[key], fingerprints_alike=fps)
    data = data_record(prepared, datasets, data_keys)
    log_data(data)
    check_data_of_cells(prepared, datasets, data_keys)

    connect_ray(prepared.options.address)
    sigterm_stops_at_once()
    check_resources(prepared.cpus_per_trial, prepared.gpus_per_trial, prepared.options.address)
    check_nodes_see_files(prepared.storage_path, prepared.tracking_uri, prepared.cpus_per_trial,
                          prepared.gpus_per_trial)

    parent_tags = _parent_tags(prepared, datasets, first_keys)
    first_tags = parent_first_tags(prepared)   # at creation: MLflow sets the run's user from its mlflow.user
    parent_id = (tracking.start_parent(client, experiment_id, spec.name, {**parent_tags, **first_tags})
                 if parent is None else parent.info.run_id)
    # Ctrl-C, SIGTERM or an error outside a fit; the cluster lost
    with _interrupted_if_cut_short(client, parent_id, prepared.tracking_uri), \
            tracking.heartbeat(prepared.tracking_uri, parent_id), \
            _interrupted_if_cluster_lost(prepared.tracking_uri, parent_id, on_cluster_lost):
        if parent is None:
            tracking.log_text_artifact(client, parent_id, schema.ARTIFACT_SPEC, spec.text)
            record_parent_facts(client, parent_id, prepared, parent_tags[schema.TAG_GIT_COMMIT], logged_tags=first_tags)
            log.info("sweep %s: new invocation, MLflow parent run %s", spec.name, parent_id)
        else:
            tracking.set_tags(client, parent_id, {schema.TAG_STATUS: schema.STATUS_RUNNING,
                                                  schema.TAG_DRIVER: tracking.driver_identity(),
                                                  **tracking.heartbeat_tags(),   # with it
                                                  schema.TAG_SEEDS: json.dumps(list(plan.seeds)),
                                                  schema.TAG_OVERRIDES: _overrides_tag(prepared),
                                                  tracking.TAG_INVOCATION: prepared.invocation_key,
                                                  schema.TAG_DATA_FINGERPRINT: parent_tags[schema.TAG_DATA_FINGERPRINT],
                                                  schema.TAG_SYNTHETIC: parent_tags[schema.TAG_SYNTHETIC],
                                                  **command_tag(prepared, data_changed=bool(
                                                      data_changed or parent.data.tags.get(schema.TAG_DATA_CHANGED)))})
            versions = tracking.versions_continued(parent.data.tags.get(schema.TAG_VERSIONS),
                                                   tracking.package_versions())
            if versions is not None:   # its cells train under several: the tag says so, not only the first's
                tracking.set_tags(client, parent_id, {schema.TAG_VERSIONS: versions})
                log.info("invocation %s continues under other package versions than it ran under: %s", parent_id,
                         ", ".join(f"{k} {v}" for k, v in tracking.versions_changed({schema.TAG_VERSIONS: versions})
                                   .items()))
            commits = tracking.commit_continued(parent.data.tags.get(schema.TAG_GIT_COMMIT),
                                                parent_tags[schema.TAG_GIT_COMMIT])
            if commits is not None:   # and under another commit: the tag names each, not the first run's alone
                tracking.set_tags(client, parent_id, {schema.TAG_GIT_COMMIT: commits})
                log.info("invocation %s continues under another git commit than it ran under: %s", parent_id, commits)
            if data_changed:
                tracking.set_tags(client, parent_id, {schema.TAG_DATA_CHANGED: json.dumps(
                    merged_changes(parent.data.tags.get(schema.TAG_DATA_CHANGED), data_changed), sort_keys=True)})
            client.update_run(parent_id, status="RUNNING")
            record_spec(client, parent, spec)
            record_parent_facts(client, parent_id, prepared, parent_tags[schema.TAG_GIT_COMMIT], parent.data.params,
                                parent.data.tags)
            log.info("sweep %s: continuing invocation %s", spec.name, parent_id)
        marks_file = marks_file_of(prepared.storage_path, spec.name, parent_id)
        log_plan(client, parent_id, plan)
        # the entries of data its runs trained on, which data.json no longer holds, into data_earlier.json
        if parent is None or record_earlier_data(client, parent_id, recorded_data(schema.ARTIFACT_DATA_EARLIER),
                                                 recorded_data(), data):
            tracking.log_json_artifact(client, parent_id, schema.ARTIFACT_DATA, data)

        statuses = tracking.cell_statuses(client, experiment_id, parent_id)
        done_before = (sum(1 for c in plan.cells if statuses.get(c.cell_id) == schema.STATUS_COMPLETED)
                       if spec.kind == "table" else   # a search's trials are not planned: those that ended
                       ended_trials(statuses))
        total = len(plan.cells) if spec.kind == "table" else spec.search.num_samples
        log_cell_counts(client, parent_id, total, _counted(statuses, plan, spec))

        from sweeps.trainable import train_cell

        resources = {"cpu": prepared.cpus_per_trial, "gpu": prepared.gpus_per_trial}
        planned = frozenset(c.cell_id for c in plan.cells) if spec.kind == "table" else None
        trainable = tune.with_resources(tune.with_parameters(train_cell, datasets=datasets,
                                                             tracking_uri=prepared.tracking_uri,
                                                             cells_planned=planned,
                                                             storage=str(prepared.storage_path)), resources)
        # storage + invocation: where a trial looks for its cell's checkpoint when Tune hands it none
        # (sweeps.trainable.salvaged_state)
        context = {"sweep": spec.name, "kind": spec.kind, "profile": prepared.profile.name,
                   "tracking_uri": prepared.tracking_uri, "experiment_id": experiment_id,
                   "parent_run_id": parent_id, "storage": str(prepared.storage_path),
                   "invocation": schema.invocation_prefix(spec.name, parent_id)}
        threads = max(1, int(prepared.cpus_per_trial))
        interrupted, errored_there, errors = False, set(), 0   # cells whose trials errored in a restored experiment
        stop_signal, halt = None, None   # halt: a full disk the driver stopped a fit for (`stops.halt_fit`)
        recorded_path = client.get_run(parent_id).data.tags.get(tracking.TAG_TUNE_PATH)
        tune_path = experiment_here(recorded_path, prepared.storage_path)
        if tune_path != recorded_path:   # the storage moved or copied: `sweeps status`, the next run read it here
            log.info("Tune experiment %s is continued from %s, in this run's --storage", recorded_path, tune_path)
            tracking.set_tags(client, parent_id, {tracking.TAG_TUNE_PATH: tune_path})

        # 1. an interrupted Tune experiment of this invocation: restore it (trials resume from checkpoints)
        remaining = [c for c in plan.cells if statuses.get(c.cell_id) != schema.STATUS_COMPLETED]
        # a table's earlier experiment holds unfinished work only if a remaining cell was started (has a run):
        # cells added since (more seeds) go to a new experiment without restoring a finished one
        was_begun = spec.kind == "search" or any(statuses.get(c.cell_id) for c in remaining)
        restorable = bool(tune_path) and was_begun and tune.Tuner.can_restore(tune_path)
        if restorable and (remaining or spec.kind == "search"):
            unreadable = unreadable_tune_state(Path(tune_path))
            if unreadable is not None:
                restorable = False
                log.warning("the saved state of Tune experiment %s cannot be read (%s), as when a driver is killed "
                            "while Tune writes it; its unfinished cells continue in a new Tune experiment, each "
                            "from its newest checkpoint left in storage", tune_path, unreadable)
        if restorable and (remaining or spec.kind == "search") and _restores_too_many_at_once(
                spec.kind, Path(tune_path), prepared.max_concurrent, prepared.storage_path):
            restorable = False
        if restorable and (remaining or spec.kind == "search"):
            log.info("restoring the Tune experiment %s", tune_path)
            newest_checkpoints_where_tune_looks(Path(tune_path))
            trial_ids = (_queued_trials_past_num_samples(client, experiment_id, parent_id, spec, Path(tune_path))
                         if spec.kind == "search" else None)
            tuner = restore_tuner(tune_path, trainable,
                                  standing_of(client, experiment_id, parent_id, spec.metric, spec.mode, total, planned),
                                  prepared.tracking_uri, planned,
                                  num_samples=spec.search.num_samples if spec.search is not None else None,
                                  max_concurrent=prepared.max_concurrent,
                                  max_failures=prepared.options.max_failures, marks_file=str(marks_file),
                                  trial_ids=trial_ids, storage=str(prepared.storage_path))
            with _fitting(prepared.storage_path, command_again("resume", prepared)):
                grid = tuner.fit()
                interrupted, errors = was_interrupted(grid), grid.num_errors
                stop_signal, halt = stop_received(), halted()
            errored_there = _errored_cells(grid)
        # 2. cells never started (or a first run): a new Tune experiment over just those. A cell whose trial
        # failed again in the restored experiment had its retries there (resume_errored, --max-failures): not
        # again; one that failed in an earlier experiment, not the restored one, is tried here
        statuses = tracking.cell_statuses(client, experiment_id, parent_id)
        remaining = [c for c in plan.cells if statuses.get(c.cell_id) != schema.STATUS_COMPLETED
                     and c.cell_id not in errored_there]
        fresh_search = spec.kind == "search" and not restorable
        if not interrupted and (remaining if spec.kind == "table" else fresh_search):
            name = f"{schema.invocation_prefix(spec.name, parent_id)}{int(time.time())}"
            tune_path = str(prepared.storage_path / name)
            tracking.set_tags(client, parent_id, {tracking.TAG_TUNE_PATH: tune_path})
            callback = SweepCallback(prepared.tracking_uri, total, spec.metric, spec.mode,
                                     expected_trials=len(remaining) if spec.kind == "table" else total,
                                     marks_file=str(marks_file), storage=str(prepared.storage_path))
            if parent is not None:
                callback.continue_after(standing_of(client, experiment_id, parent_id, spec.metric, spec.mode, total,
                                                    planned))
            tune_config, run_config = _tune_configs(prepared, callback, name)
            if spec.kind == "table":
                cells = [dataclasses.replace(c, config=dataclasses.replace(
                    c.config, num_threads=c.config.num_threads or threads)) for c in remaining]
                param_space = {"context": context, "cell": tune.grid_search(
                    [_cell_payload(c, cell_keys[c.cell_id]) for c in cells])}
            else:
                (data_name, base), = plan.base_configs.items()
                base = dataclasses.replace(base, num_threads=base.num_threads or threads)
                param_space = {"context": context, "search": _search_space(prepared),
                               "cell": {"config": to_flat(base), "cell_id": "", "arm": "", "data": data_name,
                                        "run_name": "", "data_key": first_keys[data_name]}}
            with _fitting(prepared.storage_path, command_again("resume", prepared)):
                grid = tune.Tuner(trainable, param_space=param_space, tune_config=tune_config,
                                  run_config=run_config).fit()
                interrupted, errors = was_interrupted(grid), errors + grid.num_errors
                stop_signal, halt = stop_signal or stop_received(), halt or halted()

        if (interrupted or stop_signal) and not tracking.reachable(prepared.tracking_uri):
            # stopped while MLflow is away: the user waits, and MLflow's retries held the exit ~8 min
            stopped_while_away(prepared.tracking_uri, parent_id, halt, command_again("resume", prepared))
            return SweepOutcome(parent_id, experiment_id, schema.STATUS_INTERRUPTED, {}, time.time() - started,
                                tune_path, skipped_cells=done_before, stop_signal=stop_signal)
        # ended while MLflow is away: wait for it as a trial would, else say so (no traceback after ~4 min)
        wait_s = tracking.wait_s_from_env()
        try:
            tracking.wait_for_tracking(prepared.tracking_uri, wait_s)
        except tracking.TrackingError:
            # the whole command: `sweeps run NAME` alone is another invocation, in ./mlflow.db, that trains anew
            again = command_again("run", prepared)
            raise tracking.TrackingError(away_as_trials_ended(prepared.tracking_uri, wait_s, again)) from None
        statuses = tracking.cell_statuses(client, experiment_id, parent_id)
        counts = _counted(statuses, plan, spec)
        log_cell_counts(client, parent_id, total, counts)
        if spec.kind == "table":
            complete = all(statuses.get(c.cell_id) == schema.STATUS_COMPLETED for c in plan.cells)
        else:
            complete = counts[schema.STATUS_COMPLETED] + counts[schema.STATUS_PRUNED] >= total
        status = final_status(complete, interrupted, counts, errors)
        if (full := failed_for_full_storage(status, counts, errors, prepared.storage_path)) is not None:
            log.warning("%s: trials that could not write their checkpoints there failed; free space there, then `%s` "
                        "continues the sweep", full, command_again("resume", prepared))
        report_dir = None
        if status == schema.STATUS_COMPLETED:
            _interrupt_left_over(client, experiment_id, parent_id, spec, statuses)
            _drop_completed_cells_checkpoints(client, experiment_id, parent_id, spec, tune_path)
            report_dir = _publish(spec.name, prepared.tracking_uri, parent_id, prepared.storage_path)
        tracking.finish_parent(client, parent_id, status)
        if halt is not None and status != schema.STATUS_COMPLETED:
            raise halted_error(halt, command_again("resume", prepared))
        return SweepOutcome(parent_id, experiment_id, status, counts, time.time() - started, tune_path,
                            skipped_cells=done_before, report_dir=report_dir,
                            stop_signal=stop_signal if status == schema.STATUS_INTERRUPTED else None)


def stopped_while_away(tracking_uri: str, parent_id: str, halt: Exception | None, again: str) -> None:
    """An invocation stopped (Ctrl-C, SIGTERM, the driver's own halt for a full disk) while the MLflow server is
    unreachable: says that neither its counts nor its status could be recorded, and `again` (the command that
    continues it) once the server answers. A halt raises its error (`halted_error`) as with the server reachable:
    the sweep ended as 'interrupted' without a word of the full disk, and a resume only filled it again."""
    why = "for a full disk " if halt is not None else ""
    log.warning("MLflow tracking server %s is unreachable: invocation %s stopped %sbut neither its counts nor its "
                "status could be recorded (sweeps status calls it interrupted once this driver has exited); `%s` "
                "continues it once the server answers", tracking_uri, parent_id, why, again)
    if halt is not None:
        raise halted_error(halt, again)


def _interrupt_left_over(client, experiment_id: str, parent_id: str, spec: SweepSpec,
                         statuses: Mapping[str, str]) -> int:
    """As an invocation completes, its child runs still tagged running are tagged interrupted, saying why
    (`tracking.interrupt_unfinished_children`): trials a search had begun when its num_samples was lowered to
    the trials ended or fewer (the search counts as finished, and nothing runs), cells of seeds a table's
    continuation with fewer --seeds leaves out. Under a completed parent they read as running for ever."""
    if spec.kind == "search":
        why = (f"the search asks for {spec.search.num_samples} trials now (num_samples) and {ended_trials(statuses)} "
               "have ended, so it finished without continuing this trial, begun before; a run with num_samples "
               "raised continues it")
    else:
        why = ("the invocation completed without this run (its seed left out by a run with fewer --seeds, or its "
               "cell trained in a later run); a run with its seed again continues its cell")
    return tracking.interrupt_unfinished_children(client, experiment_id, parent_id, why)


def _drop_completed_cells_checkpoints(client, experiment_id: str, parent_id: str, spec: SweepSpec,
                                      tune_path: str | None) -> int:
    """As a table's invocation completes, or a run finds it completed: the checkpoints its Tune experiments other
    than `tune_path` (the one its parent names, left alone) left of its cells whose MLflow run completed (tagged
    completed and FINISHED) are deleted (`tune_state.drop_checkpoints_of_completed_cells`); returns the bytes
    freed. Cells that completed before such checkpoints were deleted as each cell completes kept them for good.
    Without a Tune path, or where the store or the folder fails, they are left as they are."""
    if spec.kind != "table" or not tune_path:
        return 0
    try:
        runs = tracking.latest_per_cell(tracking.child_runs(client, experiment_id, parent_id))
        completed = {cell for cell, run in runs.items() if cell and run.info.status == "FINISHED"
                     and run.data.tags.get(schema.TAG_STATUS) == schema.STATUS_COMPLETED}
        if not completed:
            return 0
        prefix = schema.invocation_prefix(spec.name, parent_id)
        return drop_checkpoints_of_completed_cells(Path(tune_path).parent, prefix, parent_id, Path(tune_path),
                                                   completed)
    except Exception as exc:   # never fail a completed invocation over its leftovers
        log.warning("checkpoints that earlier Tune experiments of invocation %s left of its completed cells are left "
                    "as they are: %s", parent_id, exc)
        return 0


@contextlib.contextmanager
def _interrupted_if_cut_short(client, parent_id: str, tracking_uri: str | None = None):
    """Whatever stops an invocation outside Tune's `fit` (Ctrl-C while it sets up or draws its report,
    Ray's SIGTERM handler, an error of the driver) leaves its parent run `interrupted`, as a stopped `fit`
    does, not `running` for good: `sweeps status` then says it stopped and `sweeps resume` continues it.
    One attempt, and none where the server does not answer: MLflow's retries held the exit ~4 min, and
    readers call an invocation whose driver is gone interrupted anyway."""
    try:
        yield
    except BaseException:
        try:
            if tracking_uri is not None and not tracking.reachable(tracking_uri):
                raise tracking.TrackingError(f"MLflow tracking server {tracking_uri} is unreachable")
            with tracking.single_attempt():
                tracking.finish_parent(client, parent_id, schema.STATUS_INTERRUPTED)
        except Exception as exc:   # MLflow gone as well: the original error is the one to see
            log.warning("could not mark the MLflow parent run %s interrupted: %s", parent_id, exc)
        raise


@contextlib.contextmanager
def _interrupted_if_cluster_lost(tracking_uri: str, parent_id: str, on_lost):
    """A cluster lost while the block runs (its head node killed) leaves the invocation `interrupted`, and
    `on_lost` is told why: Ray's core worker ends the driver a minute later from C++ (no Python handler,
    no `finally`, no message of the sweep's), while Tune's loop waits on the lost GCS. One attempt at the
    mark, and none where the store does not answer (a reader calls the dead driver's invocation interrupted
    anyway). Without `on_lost` (a library call) nothing is watched."""
    if on_lost is None:
        yield
        return

    def lost(address: str, silent_s: float) -> None:
        why = f"the Ray cluster's GCS at {address} has not answered for {silent_s:.0f} s"
        log.warning("%s: invocation %s is stopped before Ray ends this driver", why, parent_id)
        try:
            if not tracking.reachable(tracking_uri):
                raise tracking.TrackingError(f"MLflow tracking server {tracking_uri} is unreachable")
            with tracking.single_attempt():
                tracking.finish_parent(tracking.client_for(tracking_uri), parent_id, schema.STATUS_INTERRUPTED)
        except Exception as exc:  # noqa: BLE001  (the message below is what matters now)
            log.warning("could not mark the MLflow parent run %s interrupted: %s", parent_id, exc)
        on_lost(why)

    with watching_the_cluster(lost):
        yield


def _publish(sweep: str, tracking_uri: str, parent_id: str, storage: Path) -> Path | None:
    """The report of a completed invocation (its parent is marked completed once it is drawn): tables (all
    formats, Parquet included) and figures into storage and the parent run. A reporting problem is logged,
    never allowed to turn a completed sweep into a failed one."""
    for thread in _REPORT_WARM_UP:   # matplotlib is not thread-safe: no figure while it warms up
        thread.join(timeout=REPORT_WARM_UP_WAIT_S)
        if thread.is_alive():
            log.warning("the report's warm-up has not finished after %.0f s; drawing the report anyway",
                        REPORT_WARM_UP_WAIT_S)
    from sweeps.report import publish

    out = storage / f"{schema.invocation_prefix(sweep, parent_id)}report"
    try:
        publish(sweep, tracking_uri, parent_id, out, status=schema.STATUS_COMPLETED)   # marked so after it
    except Exception as exc:   # a table, a figure, the disk, MLflow taking the artifacts, matplotlib itself
        log.warning("the sweep completed but its tables/figures could not be written (%s: %s); `sweeps table %s` "
                    "and `sweeps plot %s` draw them from the recorded runs", type(exc).__name__, exc, sweep, sweep)
        return None
    return out


def _counted(statuses: Mapping[str, str], plan: Plan, spec: SweepSpec) -> dict[str, int]:
    """This run's cells by status (`planned_statuses`): completed, pruned, failed, running."""
    planned = list(planned_statuses(statuses, plan, spec).values())
    return {s: planned.count(s) for s in
            (schema.STATUS_COMPLETED, schema.STATUS_PRUNED, schema.STATUS_FAILED, schema.STATUS_RUNNING)}


def away_as_trials_ended(tracking_uri: str, wait_s: float, again: str) -> str:
    """What a sweep says where its store was still away `wait_s` s after the trials ended: a server unreachable, or
    a sqlite database another process holds locked (it answers, but no write gets through), and how to go on."""
    locked = tracking.sqlite_path(tracking_uri) is not None and tracking.reachable(tracking_uri)
    store, back = ("database", "once it is let go") if locked else ("server", "once it answers")
    return (f"{tracking.away_text(tracking_uri, for_s=wait_s)} when the sweep's trials had ended: their runs hold "
            f"what the {store} took. `{again}` {back}: it records the end and draws the report (finished cells are "
            "not trained again)")


def failed_for_full_storage(status: str, counts: Mapping[str, int], errors: int, storage: Path | None) -> str | None:
    """`storage_full`'s text where an invocation ended unfinished with failed cells or errored trials while --storage
    is nearly full: those most likely failed for want of room. A sweep stopped by Ctrl-C with nothing failed is not
    said to have failed for it, whatever room is left."""
    if status == schema.STATUS_COMPLETED or storage is None or not (counts.get(schema.STATUS_FAILED) or errors):
        return None
    return storage_full(storage)


def final_status(complete: bool, interrupted: bool, counts: Mapping[str, int], errors: int) -> str:
    """An invocation's status after its fits: completed; interrupted if cut short, if a cell is still
    running, or if nothing failed (stopped before any trial ran); failed if a cell failed, or a trial
    errored (one that failed before it opened its MLflow run has no failed run to count)."""
    if complete:
        return schema.STATUS_COMPLETED
    if interrupted or counts.get(schema.STATUS_RUNNING) or not (counts.get(schema.STATUS_FAILED) or errors):
        return schema.STATUS_INTERRUPTED
    return schema.STATUS_FAILED


def _errored_cells(grid) -> set[str]:
    """The cell ids of a table experiment's trials that ended in an error."""
    return {r.config["cell"]["cell_id"] for r in grid
            if r.error is not None and isinstance((r.config or {}).get("cell"), dict)}


