"""Tune's saved experiment, as a continued sweep finds it: whether a search can go on from it, its
checkpoints put where Tune looks, a restored search's sample count set to what the spec asks now, and the
trials a restored search or table makes from then on given this run's limit and the experiment's folder now;
and the checkpoints a cell's earlier experiments left deleted once it has completed in a later one, or once
its table has completed.

Tune restores an experiment from files it writes without an atomic rename and from a state that can lag
behind its trials' folders; each function here says what it repairs or refuses, and why.
"""

from __future__ import annotations

import copy
import json
import logging
import re
import shutil
import time
from pathlib import Path
from typing import Collection

from ray import tune
from ray.tune.search import BasicVariantGenerator, ConcurrencyLimiter, SearchGenerator

from search_spaces import SweepSpec
from sweeps import schema, tracking
from sweeps.errors import SweepError

log = logging.getLogger(__name__)


def trial_dirname(trial) -> str:
    """A Tune trial's folder in its experiment, and its name in Tune's messages: the cell it trains, by arm, data
    set and seed, then its Tune trial id (unique in the experiment), e.g. `MAD_rafdb_seed1_3fa2b_00001`; a
    search's trial `trial_synthetic_seed0_b5b2c863` (its MLflow run: `<sweep>/trial-b5b2c863`). Tune's
    default, `train_cell_3fa2b_00001_1_cell=config_model_stem_small_model_stem_width_16_..._2026-12-07_10-59-12`,
    told no cell's folder from another's. Letters, digits and `.=+-` are kept, anything else is `_`; an arm's
    label is cut at 40 characters, a data set's name at 20.

    Tune pickles this function by reference into an experiment's saved state (tuner.pkl, and each trial's in
    experiment_state-*.json): a continuation imports it by this module and name, so neither may change.
    Experiments begun by versions before it keep their trials' folders (Tune restores each trial's own, and
    what finds a trial's folder or checkpoints goes by Tune's state or globs any name: `newest_checkpoints_where_
    tune_looks`, `sweeps.trainable.salvaged_state`); the trials a search or table restored from one makes from
    then on are named by this function too (`named_by_cell`: Tune would make them from the experiment spec its
    generator pickled when it began, which named none)."""
    trial_id = str(getattr(trial, "trial_id", "") or "")
    try:
        cell = trial.config.get("cell") or {}
        seed = (cell.get("config") or {}).get("seed")
        parts = [_filesystem_safe(cell.get("arm") or "trial", 40), _filesystem_safe(cell.get("data") or "", 20),
                 "" if seed is None else f"seed{_filesystem_safe(str(seed), 12)}", trial_id]
    except (AttributeError, TypeError):   # a trial of another shape: Tune's own trials always have a cell
        parts = ["trial", trial_id]
    return "_".join(p for p in parts if p)


def _filesystem_safe(text: str, most: int) -> str:
    """`text` as part of a folder name that any file system and rsync take: letters, digits, `.=+-` (an accented
    letter as its base letter); others `_`."""
    import unicodedata

    text = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
    return re.sub(r"[^A-Za-z0-9.=+-]+", "_", text).strip("_.")[:most].strip("_.")


# Tune's settings that name a trial and its folder by its cell (sweeps.runner's TuneConfig)
TRIAL_NAMING = {"trial_name_creator": trial_dirname, "trial_dirname_creator": trial_dirname}


def unnamed(spec) -> bool:
    """Whether the experiment spec a restored trial generator makes its trials from names them as Tune does: one
    pickled when an experiment began before trials were named by their cell (neither setting given)."""
    return (isinstance(spec, dict) and spec.get("trial_name_creator") is None
            and spec.get("trial_dirname_creator") is None)


def named_by_cell(spec, what: str) -> None:
    """Set a restored generator's experiment spec (in place) to name the trials it makes from here on by their cell
    (`trial_dirname`), where it names them as Tune does; a name someone else chose is left alone. Tune makes each
    new trial from that spec (`_create_trial_from_spec`), the one the generator pickled when the experiment began,
    not from the TuneConfig given to the restore; the trials made before keep their names and folders (Tune's
    state holds each trial's own)."""
    if unnamed(spec):
        spec.update(TRIAL_NAMING)
        log.info("the %s's trials drawn from here on are named by their cell (%s), those drawn before as Tune "
                 "named them when the experiment began", what, trial_dirname.__name__)


class ExtendedSearch(SearchGenerator):
    """Tune's wrapper of a searcher, whose sample count, restored from the experiment's state, is set to
    what the spec asks now: Tune keeps the count a search began with, so that a restored experiment whose
    trials all ended would end at once, and one asked for fewer would go on to the old count. The searcher
    (its Optuna study: every trial so far) is restored as Tune restores it; its ConcurrencyLimiter too, but
    with the limit it was given here (this run's --max-concurrent), which Tune's saved state would set back
    to the limit of the run that began the experiment. `experiment_path`: the experiment's folder now, where
    the trials it draws from here on keep their checkpoints (`moved_to`). `trial_ids`: the trials Tune's
    restored state holds (`drop_queued_trials` may have left some out): the count of trials drawn is theirs,
    and a trial the searcher still holds live that Tune does not is told Optuna as FAILed (`forget_trials`)."""

    def __init__(self, searcher, num_samples: int, experiment_path: str | None = None,
                 trial_ids: Collection[str] | None = None) -> None:
        super().__init__(searcher)
        self.num_samples_asked = num_samples
        self.max_concurrent_asked = searcher.max_concurrent if isinstance(searcher, ConcurrencyLimiter) else None
        self.experiment_path = experiment_path
        self.trial_ids = None if trial_ids is None else frozenset(trial_ids)

    def set_state(self, state: dict) -> None:
        super().set_state(state)   # restore_from_dir calls it last, after each wrapper's own set_state
        self.moved_to(getattr(self, "experiment_path", None))   # a generator pickled before it: as it was
        named_by_cell(getattr(self._experiment, "spec", None), "search")
        if getattr(self, "max_concurrent_asked", None) is not None and isinstance(self.searcher, ConcurrencyLimiter):
            self.searcher.max_concurrent = self.max_concurrent_asked
        if getattr(self, "trial_ids", None) is not None:
            self.forget_trials(self.trial_ids)
            self._counter = len(self.trial_ids)
        if self.num_samples_asked != self._total_samples:   # fewer: trials Tune restores go on, none is drawn
            log.info("the search goes on to %d samples (it was to run %d)", self.num_samples_asked,
                     self._total_samples)
            self._total_samples = self.num_samples_asked
            self._finished = self._finished and self._counter >= self._total_samples

    def forget_trials(self, trial_ids: Collection[str]) -> None:
        """Tell the searcher FAIL for each trial it holds live (its ConcurrencyLimiter's, or RUNNING in its
        Optuna study) that is none of `trial_ids`, those of Tune's restored state: a trial drawn but never begun
        that a search asked for fewer samples leaves out (`drop_queued_trials`), which would otherwise hold a
        place of the limiter for good (no trial drawn again) and stay RUNNING in the study."""
        chain = [self.searcher]
        while hasattr(chain[-1], "searcher"):
            chain.append(chain[-1].searcher)
        base, limiters = chain[-1], [s for s in chain if isinstance(s, ConcurrencyLimiter)]
        done = getattr(base, "_completed_trials", set())
        running = {t for t in getattr(base, "_ot_trials", {}) if t not in done}
        live = {t for limiter in limiters for t in limiter.live_trials}
        for trial_id in sorted((running | live) - set(trial_ids)):
            if trial_id in live:   # the limiter passes it on to the searcher and frees its place
                self.searcher.on_trial_complete(trial_id, None, error=True)
            if trial_id in running and trial_id not in done:
                base.on_trial_complete(trial_id, None, error=True)
            log.info("trial %s, drawn but not run, is told the search's Optuna study as failed", trial_id)

    def moved_to(self, experiment_path: str | None) -> None:
        """The storage of the trials drawn from here on, set to the experiment's folder now. Tune re-points a
        restored experiment's trials at the folder it is restored from (its storage moved or copied: another
        disk, rsync from the cluster's head), but the search's restored state keeps the storage of the run
        that began it, so each new trial looked for the old folder and failed on every retry ("--storage ...
        is not on this node", or wrote there where that folder was still mounted)."""
        spec = getattr(self._experiment, "spec", None)
        storage = spec.get("storage") if isinstance(spec, dict) else None
        moved = storage_moved_to(storage, experiment_path)
        if moved is not None:
            spec["storage"] = self._experiment.storage = moved
            log.info("the search's new trials keep their checkpoints in %s (it began in %s)", experiment_path,
                     storage.experiment_fs_path)


def storage_moved_to(storage, experiment_path: str | None):
    """A copy of a Tune StorageContext re-pointed at the experiment's folder now, as Tune re-points a restored
    trial's (TuneController._restore_trials); None where it is there already (or either is unknown)."""
    if not experiment_path or storage is None or Path(storage.experiment_fs_path) == Path(experiment_path):
        return None
    moved = copy.copy(storage)
    moved.storage_fs_path = Path(experiment_path).parent.as_posix()
    moved.experiment_dir_name = Path(experiment_path).name
    return moved


class RestoredVariants(BasicVariantGenerator):
    """Tune's generator of a table's trials, restored from the experiment's state with the limit this run asks
    and at the experiment's folder now. Tune makes a table's trials as it starts them (with a concurrency limit
    only up to it, else up to 200 queued at once), each with the storage its generator was given when the
    experiment began: restored from a folder moved or copied since, every trial it made from there on looked
    for the old folder and failed ("--storage ... is not on this node"), or wrote its checkpoints there where
    that folder was still mounted. Its restored state also set the limit back to the one the experiment began
    with. `max_concurrent`: the most trials at once this run asks (0: no limit; None: the one it began with);
    a lower one does not hold the trials the experiment had begun, which Tune restores together
    (`unfinished_trials`: run_sweep starts those cells in a new experiment instead). `experiment_path`: the
    experiment's folder now."""

    def __init__(self, max_concurrent: int | None, experiment_path: str | None) -> None:
        super().__init__(max_concurrent=max_concurrent or 0)
        self.max_concurrent_asked = max_concurrent
        self.experiment_path = experiment_path

    def set_state(self, state: dict) -> None:
        asked, path = self.max_concurrent_asked, self.experiment_path
        super().set_state(state)   # the whole __dict__: one saved by this class holds the values of its own run
        self.max_concurrent_asked, self.experiment_path = asked, path
        if asked is not None:
            self.max_concurrent = asked

        def moved(spec: dict) -> dict:
            storage = storage_moved_to(spec.get("storage"), path)
            spec = spec if storage is None else {**spec, "storage": storage}
            return {**spec, **TRIAL_NAMING} if unnamed(spec) else spec

        for iterator in self._iterators:
            before = iterator.unresolved_spec
            iterator.unresolved_spec = moved(before)
            variants = iterator.variants   # the cells it has not made yet, each with its own copy of the spec
            if variants is not None and not variants.lazy_eval:
                variants.iterable = [(resolved, moved(spec)) for resolved, spec in variants.iterable]
            if iterator.unresolved_spec.get("storage") is not before.get("storage"):
                log.info("the table's trials not yet made keep their checkpoints in %s (it began in %s)", path,
                         before["storage"].experiment_fs_path)
            if unnamed(before):
                log.info("the table's trials not yet made are named by their cell (%s), those made before as "
                         "Tune named them when the experiment began", trial_dirname.__name__)


AS_BEGUN = object()   # extend_search / restore_tuner: the concurrency limit the experiment began with


def extend_search(tune_config, num_samples: int, max_concurrent=AS_BEGUN, experiment_path: str | None = None,
                  trial_ids: Collection[str] | None = None) -> None:
    """Wrap a restored TuneConfig's searcher as `tune.run` would (a ConcurrencyLimiter for
    max_concurrent_trials, then a SearchGenerator), the generator an ExtendedSearch. `max_concurrent`: the
    most trials at once this run asks (None: no limit); left out, the limit the experiment began with.
    `experiment_path`: the folder the experiment is restored from, where its new trials go. `trial_ids`: the
    trials its restored state holds (ExtendedSearch)."""
    searcher = tune_config.search_alg
    if isinstance(searcher, SearchGenerator):   # one restored by this function before
        searcher = searcher.searcher
        if max_concurrent is AS_BEGUN:
            max_concurrent = None   # its limiter, if any, is kept as it is
        elif isinstance(searcher, ConcurrencyLimiter):
            searcher = searcher.searcher
    elif max_concurrent is AS_BEGUN:
        max_concurrent = tune_config.max_concurrent_trials
    if max_concurrent:
        searcher = ConcurrencyLimiter(searcher, max_concurrent=max_concurrent)
    tune_config.search_alg = ExtendedSearch(searcher, num_samples, experiment_path, trial_ids)
    tune_config.max_concurrent_trials = None   # in the limiter now: tune.run warns of it beside a generator
    tune_config.num_samples = max(tune_config.num_samples, num_samples)


def experiment_here(recorded: str | None, storage: Path) -> str | None:
    """The folder of an invocation's newest Tune experiment as this run finds it. Its parent records the folder
    where the experiment began (TAG_TUNE_PATH, absolute); a storage folder moved or copied since (the project
    to another disk, rsync from the cluster's head to a laptop) is given as --storage at its new place, which
    holds a folder of that name: that one, where this run's checkpoints and state then go (a copy left at the
    recorded place too, the one the user points at). Else the recorded folder: a run from another working
    folder with the default --storage finds the experiment where it is."""
    if not recorded:
        return recorded
    here = Path(storage) / Path(recorded).name
    if here != Path(recorded) and here.is_dir() and (not Path(recorded).is_dir() or tune.Tuner.can_restore(str(here))):
        return str(here)
    return recorded


def check_search_restorable(spec: SweepSpec, parent, fresh_command: str, client, trials_recorded: int,
                            storage: Path | None = None) -> None:
    """SweepError, before any data is decoded, when a search cannot go on as it began: the searcher's history
    and the pruner's view live only in its saved Tune state, so a search cannot be continued from its
    checkpoints as a table's cells can, and starting it over must be the user's choice. Refused: a state
    that cannot be read, one that is gone while trials are recorded (a new study would run num_samples more
    trials under the same invocation, without a word), and a direction the recorded plan does not share
    (the restored study keeps its own: a loss searched under mode max, the default before a loss's became
    min, would go on searching for the worst configuration). `fresh_command`: `sweeps run NAME --fresh` with
    this run's options (`invocations.command_again`), which the way out names. `storage`: this run's --storage,
    where a moved experiment is looked for (`experiment_here`)."""
    fresh = f"Start the search over with `{fresh_command}` (a new MLflow parent run; this one's trials stay recorded)"
    recorded = parent.data.tags.get(tracking.TAG_TUNE_PATH)
    tune_path = experiment_here(recorded, storage) if storage is not None else recorded
    if tune_path and not Path(tune_path).is_dir():
        if trials_recorded:
            elsewhere = (f", nor is a folder {Path(tune_path).name} in this run's --storage {storage}"
                         if storage is not None else "")
            raise SweepError(f"the search {spec.name!r} (MLflow run {parent.info.run_id}) cannot be continued: its "
                             f"Tune experiment {tune_path}, which holds the Optuna study of its {trials_recorded} "
                             f"recorded trials, is not on this machine (deleted, or on a disk not mounted "
                             f"here){elsewhere}. If the storage folder was moved or copied, give its new place as "
                             f"--storage (the folder that holds {Path(tune_path).name}); else run it where "
                             f"{Path(tune_path).parent} is, or: {fresh}")
        return
    if tune_path:
        unreadable = unreadable_tune_state(Path(tune_path))
        if unreadable is not None:
            raise SweepError(f"the search {spec.name!r} (MLflow run {parent.info.run_id}) cannot be continued: the "
                             f"saved state of its Tune experiment {tune_path} cannot be read ({unreadable}), as "
                             f"when a driver is killed while Tune writes it. {fresh}")
        if trials_recorded and not tune.Tuner.can_restore(tune_path):   # emptied, or killed before its first save
            raise SweepError(f"the search {spec.name!r} (MLflow run {parent.info.run_id}) cannot be continued: its "
                             f"Tune experiment {tune_path} holds no state to restore the Optuna study of its "
                             f"{trials_recorded} recorded trials from. {fresh}")
    plan = tracking.read_json_artifact(client, parent.info.run_id, schema.ARTIFACT_PLAN)
    began = (plan.get("metric"), plan.get("mode")) if isinstance(plan, dict) else (None, None)
    if trials_recorded and None not in began and began != (spec.metric, spec.mode):
        raise SweepError(f"the search {spec.name!r} (MLflow run {parent.info.run_id}) cannot be continued: it "
                         f"began with metric {began[0]} and mode {began[1]}, and its spec now means metric "
                         f"{spec.metric} and mode {spec.mode} (a loss's mode defaults to min: it was max before). "
                         f"Its Optuna study keeps the direction it began with. {fresh}")


def unreadable_tune_state(experiment: Path) -> str | None:
    """The first of a Tune experiment's saved state files that is not whole (its name and why), or None.
    Tune copies them into storage without an atomic rename; restoring from a truncated one makes Tune
    restart the experiment with an empty config, whose trial then fails every retry. Checked without
    loading anything, the newest file of each kind (what Tune restores from): the experiment state must
    parse as JSON, a search-algorithm state (a cloudpickle) must run to its STOP opcode."""
    import pickletools

    def newest(pattern: str) -> list[Path]:   # what Tune restores from (the names end in a timestamp)
        return sorted(experiment.glob(pattern))[-1:]

    for path in [*newest("experiment_state-*.json"), *newest("basic-variant-state-*.json"),
                 *newest("search_gen_state-*.json"), *newest("searcher-state-*.pkl"),
                 *newest("callback-states-*.pkl")]:
        try:
            if path.name.startswith("experiment_state-"):
                json.loads(path.read_bytes())
            else:
                with open(path, "rb") as fh:
                    for _ in pickletools.genops(fh):
                        pass
        except (OSError, ValueError) as exc:   # json.JSONDecodeError is a ValueError, as is a pickle cut short
            return f"{path.name}: {exc}"
    return None


def unfinished_trials(experiment: Path) -> list[str]:
    """The ids of the trials of a Tune experiment that its restore runs again (not TERMINATED: pending, running,
    paused, errored), as its newest saved state lists them; [] where it cannot be read (Tune's restore judges)."""
    states = sorted(experiment.glob("experiment_state-*.json"))[-1:]   # what Tune restores from
    try:
        trials = [json.loads(meta) for meta, _ in json.loads(states[0].read_bytes()).get("trial_data", [])]
    except (IndexError, OSError, ValueError, TypeError):
        return []
    return [t.get("trial_id") for t in trials if isinstance(t, dict) and t.get("status") != "TERMINATED"]


def drop_queued_trials(experiment: Path, room: int,
                       begun: Collection[str]) -> tuple[list[str], list[str], list[str] | None]:
    """Leave out of a search's saved Tune state the trials it had drawn but not begun (queued: no MLflow run,
    `begun`, and no checkpoint) that `room`, the trials its spec's num_samples leaves to run now (num_samples
    less those ended), has no place for once the unfinished trials that had begun take theirs (they go on: their
    epochs are trained). Tune restores every unfinished trial, so a search asked for fewer samples ran those
    queued when it stopped too, past the count it asked. Returns (the trials left out, the unfinished ones
    that had begun, the ids of every trial the state holds now; None where it cannot be read); the newest
    state file is rewritten (through a temporary file) only where one is left out. Its searcher forgets them
    (ExtendedSearch.forget_trials)."""
    states = sorted(experiment.glob("experiment_state-*.json"))[-1:]   # what Tune restores from
    if not states:
        return [], [], None
    try:   # Tune's own reader of its trial state (private: Ray is pinned, see constraints.txt)
        from ray.tune.trainable.metadata import _TrainingRunMetadata

        state = json.loads(states[0].read_bytes())
        trials = [json.loads(meta) for meta, _ in state["trial_data"]]
    except (ImportError, OSError, ValueError, KeyError, TypeError) as exc:   # Tune's restore judges the state
        log.debug("Tune experiment %s: its trials are restored as they are (%s)", experiment, exc)
        return [], [], None

    def checkpointed(run_state: str) -> bool:
        try:
            manager = _TrainingRunMetadata.from_json_state(run_state).checkpoint_manager
            return manager is not None and manager.latest_checkpoint_result is not None
        except Exception:   # unreadable: as if it had begun, so that it is never left out
            return True

    started, queued = [], []
    for trial, (_, run_state) in zip(trials, state["trial_data"]):
        if trial.get("status") != "TERMINATED":
            (started if trial.get("trial_id") in begun or checkpointed(run_state) else queued).append(
                trial.get("trial_id"))
    dropped = queued[max(0, room - len(started)):]
    if dropped:
        state["trial_data"] = [entry for trial, entry in zip(trials, state["trial_data"])
                               if trial.get("trial_id") not in dropped]
        written = states[0].with_name(f".{states[0].name}.tmp")
        written.write_text(json.dumps(state))
        written.replace(states[0])
    return dropped, started, [t.get("trial_id") for t in trials if t.get("trial_id") not in dropped]


def newest_checkpoints_where_tune_looks(experiment: Path) -> None:
    """Before `Tuner.restore`: for each unfinished trial of the experiment, put its newest checkpoint where
    Tune's saved state says its checkpoint is. Tune's state can lag behind the
    trial's folder: with num_to_keep=1 Tune deletes the older checkpoint before it saves the state naming
    the newer one, so a driver killed in between leaves a state naming a checkpoint that is gone, and
    Tune's restore fails the trial on every retry and every later resume ("Could not recover from
    checkpoint as it does not exist on storage anymore"); a stopped sweep can also leave a newer checkpoint
    its worker wrote after the state was saved, which Tune would pass over (an epoch or more trained again).

    The newest checkpoint in the trial's folder (by the epoch in its cell.json) is moved to the named path,
    so that Tune restores from it and writes the trial's next checkpoint to a free folder; an older one found
    there is kept beside it as `<name>.superseded-<time>` (salvage falls back to it if the newer one does not
    load; `drop_superseded_checkpoints` deletes it once the trial has ended). With no checkpoint left in the
    folder, an empty stand-in holding STAND_IN_NOTE goes there, and the trial resumes from its cell's newest
    checkpoint elsewhere in storage (`sweeps.trainable.salvaged_state`), or starts over. Paths are taken relative to `experiment` as it is now, as Tune does
    when storage has moved. Nothing else of Tune's state is changed."""
    from sweeps.trainable import STAND_IN_NOTE, checkpoint_label
    try:   # Tune's own reader of its trial state (private: Ray is pinned, see constraints.txt)
        from ray.tune.trainable.metadata import _TrainingRunMetadata
    except ImportError as exc:
        log.debug("Tune's trial state cannot be read here (%s): its checkpoints are left as they are", exc)
        return

    def epoch_of(folder: Path) -> int | None:
        label = checkpoint_label(folder)
        return None if label is None else label["epoch"]

    states = sorted(experiment.glob("experiment_state-*.json"))[-1:]   # what Tune restores from
    if not states:
        return
    for meta, run_state in json.loads(states[0].read_bytes()).get("trial_data", []):
        try:
            trial = json.loads(meta)
            if trial.get("status") == "TERMINATED":   # not run again (an errored one is: resume_errored)
                continue
            latest = _TrainingRunMetadata.from_json_state(run_state).checkpoint_manager.latest_checkpoint_result
            if latest is None or latest.checkpoint is None:
                continue
            folder = experiment / trial["relative_logdir"]
            named = folder / Path(latest.checkpoint.path).name
            named_epoch = epoch_of(named)
            newer = sorted(((epoch, path.stat().st_mtime, path) for path in folder.glob("checkpoint_*")
                            if path != named and "." not in path.name
                            and (epoch := epoch_of(path)) is not None
                            and (named_epoch is None or epoch > named_epoch)), key=lambda c: c[:2])
            if newer:
                epoch, _, path = newer[-1]
                # the named one still there, only older: an ordinary stop (Ctrl-C) after the worker wrote its next
                # checkpoint and before Tune's state named it; gone: a driver killed while Tune deleted it
                level = logging.INFO if named.exists() and not (named / STAND_IN_NOTE).is_file() else logging.WARNING
                if (named / STAND_IN_NOTE).is_file():   # put there by an earlier resume: holds nothing else
                    shutil.rmtree(named)
                elif named.exists():
                    named.rename(named.with_name(f"{named.name}.superseded-{int(time.time())}"))
                path.rename(named)
                log.log(level, "Tune experiment %s names checkpoint %s of trial %s (%s); the trial's newer "
                               "checkpoint %s (after epoch %d) takes its place, and the trial resumes from it",
                        experiment, named.name, trial.get("trial_id"),
                        "gone" if named_epoch is None else f"after epoch {named_epoch}", path.name, epoch)
            elif not named.exists():
                named.mkdir(parents=True)
                (named / STAND_IN_NOTE).write_text(
                    "A stand-in put here by sweeps: Tune's saved state names this checkpoint, which was gone when "
                    "the sweep resumed. The trial resumes from its cell's newest checkpoint left in storage, or "
                    "starts over.\n", encoding="utf-8")
                log.warning("Tune experiment %s names checkpoint %s of trial %s, which is gone, and none is left in "
                            "its folder: the trial resumes from its cell's newest checkpoint left elsewhere in "
                            "storage, or starts over", experiment, named, trial.get("trial_id"))
        except Exception as exc:   # a state Tune itself will judge; never fail the resume over this
            log.debug("checkpoints of a trial of %s left as they are: %s", experiment, exc)


def drop_superseded_checkpoints(trial) -> None:
    """Delete the checkpoints a resume set aside in a trial's folder (`<name>.superseded-<time>`, by
    `newest_checkpoints_where_tune_looks`) once the trial has ended without error: they were kept only as
    its resume's fallback, and Tune, which does not know them, never deletes them (520 MB each at paper
    scale). A trial that ended is never run again (a search's pruned one neither)."""
    try:
        folder = Path(trial.path)
        for old in sorted(folder.glob("checkpoint_*.superseded-*")):
            shutil.rmtree(old)
            log.info("trial %s ended: its superseded checkpoint %s is deleted", trial.trial_id, old)
    except Exception as exc:   # storage Tune reaches through its own file system (a URI), or a folder gone
        log.debug("superseded checkpoints of trial %s left as they are: %s", getattr(trial, "trial_id", "?"), exc)


def drop_checkpoints_left_by_earlier_experiments(experiment: Path, invocation: str, parent_run_id: str | None,
                                                 cell_id: str) -> int:
    """Delete the checkpoints of a table cell that earlier Tune experiments of its invocation left in storage,
    once the cell has completed in `experiment` (its trial's own, left alone: Tune keeps its checkpoints); returns
    the bytes freed. A table continues in a new Tune experiment where its state cannot be read, or a lower
    --max-concurrent asks fewer trials at once than it had begun (sweeps.runner): each unfinished cell resumes
    from its newest checkpoint in the old one (`sweeps.trainable.salvaged_state`), which is never restored again
    (the invocation's Tune path names the new one), so those checkpoints are dead weight once the cell completed
    (520 MB each at paper scale). Which folders: `_drop_checkpoints_of_cells`."""
    experiment = Path(experiment)
    freed, dropped = _drop_checkpoints_of_cells(experiment.parent, invocation, parent_run_id, {cell_id}, experiment)
    if dropped:
        log.info("cell %s completed in Tune experiment %s: the %d checkpoint%s earlier experiments of its invocation "
                 "left of it (%.1f MB) %s deleted: %s", cell_id, experiment.name, len(dropped),
                 "s" if len(dropped) > 1 else "", freed / 2**20, "are" if len(dropped) > 1 else "is",
                 ", ".join(dropped))
    return freed


def drop_checkpoints_of_completed_cells(storage: Path, invocation: str, parent_run_id: str, current: Path,
                                        cell_ids: Collection[str]) -> int:
    """Delete the checkpoints of an invocation's completed table cells (`cell_ids`: those whose MLflow run
    completed) that its Tune experiments other than `current` (the one its parent run names, left alone: Tune
    keeps its checkpoints) left in `storage`, as the invocation completes or a run finds it completed; returns the
    bytes freed, said in one line. Cells that completed in a new experiment before their earlier experiments'
    checkpoints were deleted as each completes (`drop_checkpoints_left_by_earlier_experiments`), and those of
    an experiment a table left (its state unreadable, a lower --max-concurrent) that had completed there, kept
    them for good: no experiment but `current` is ever restored again, and a completed cell is never trained
    again. Which folders: `_drop_checkpoints_of_cells`."""
    current = Path(current)
    freed, dropped = _drop_checkpoints_of_cells(Path(storage), invocation, parent_run_id, set(cell_ids), current)
    if dropped:
        experiments = sorted({Path(folder).parent.parent.name for folder in dropped})
        log.info("invocation %s completed: %d checkpoint%s of its completed cells that its earlier Tune "
                 "experiment%s %s left (%.1f MB) %s deleted", parent_run_id, len(dropped),
                 "s" if len(dropped) > 1 else "", "s" if len(experiments) > 1 else "", ", ".join(experiments),
                 freed / 2**20, "are" if len(dropped) > 1 else "is")
    return freed


def _drop_checkpoints_of_cells(storage: Path, invocation: str, parent_run_id: str | None, cell_ids: set[str],
                               current: Path) -> tuple[int, list[str]]:
    """Delete the `<storage>/<invocation><time>/<trial folder>/checkpoint_*` folders (storage as it is now; the
    experiment's name is the invocation prefix and digits, as the runner names it) whose cell.json names one of
    `cell_ids` (a search trial's holds its Tune trial id) and, where it names one, this parent run; never a folder
    of `current`, nor one reached through a link. Returns (bytes freed, the folders deleted).

    A label written before cell.json named its parent run is known by the invocation prefix alone, which holds the
    first 8 hex digits of the parent run's id (`schema.invocation_prefix`): another invocation's folders have
    another prefix but by a chance of 1 in 2**32, and its cell would then have to have the same config. A completed
    cell is never trained again."""
    import glob

    from sweeps.trainable import checkpoint_label

    own, freed, dropped = current.resolve(), 0, []
    for folder in sorted(storage.glob(f"{glob.escape(invocation)}*/*/checkpoint_*/")):
        try:
            if (not folder.parent.parent.name[len(invocation):].isdigit() or folder.is_symlink()
                    or own in folder.resolve().parents):
                continue
            label = checkpoint_label(folder)
            if (label is None or label.get("cell_id") not in cell_ids
                    or label.get("parent_run_id", parent_run_id) != parent_run_id):
                continue
            size = sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
            shutil.rmtree(folder)
        except OSError as exc:   # gone meanwhile, or not ours to delete: left as it is, and said
            log.warning("the checkpoint %s left by an earlier Tune experiment of a completed cell is left in place "
                        "(%s)", folder, exc)
            continue
        freed += size
        dropped.append(str(folder))
    return freed, dropped
