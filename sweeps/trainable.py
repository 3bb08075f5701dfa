"""The Tune function trainable: one sweep cell -> `transfer_core.engine.fit`.

Every epoch it logs to the cell's MLflow child run and reports to Tune, with a full checkpoint while
the state is small (`CheckpointPace`: a large one at most once per 20 times what it cost, and always at
an attempt's first and last epoch); on a retry (FailureConfig) or a restored sweep it resumes from
Tune's latest checkpoint and continues the same child run. The decoded data set arrives through
`tune.with_parameters`, i.e. from Ray's object store, put there once per sweep rather than once per
trial. Tune reuses the trial actor (`reuse_actors=True` in sweeps.runner): one worker process trains
cell after cell, so only its first cell pays for the process and the imports; `fit` sets the threads
and reseeds every RNG per cell, so a reused process trains a cell exactly as a fresh one would.

Faults (tests/test_faults.py, tests/test_multinode.py):
- A cell whose child run is already completed is never trained again: a trial that Tune restores
  in the RUNNING state after the driver was killed reports the run's metrics and returns.
- Each epoch reaches MLflow once (`tracking.EpochLog`): epochs re-trained after a resume are not
  logged twice, unless the re-training measured them otherwise (then the later values supersede); while the tracking server is unreachable the epochs are buffered (policy in
  `sweeps.tracking`), and those still buffered when a trial died are logged from its checkpoint's
  history when it resumes (epochs after its last checkpoint are trained again, and logged then).
- A checkpoint that cannot be read (truncated, corrupt: `load_state` raises StateError) is never
  used.
- A cell that Tune hands no usable checkpoint (a corrupt one; none, or the stand-in for one Tune had
  deleted with no newer one in the trial's folder to take its place: a driver killed while Tune
  rewrote its state; sweeps.tune_state.newest_checkpoints_where_tune_looks) resumes from the newest
  readable checkpoint of that cell still in the invocation's storage (`salvaged_state`), found by the
  cell.json beside each state.pt; only when there is none does it start over from epoch 1, in the
  same child run, with a warning. A search trial's cell is its Tune trial, and its pruner counts the
  epochs it has trained, whichever checkpoint it resumed from (`sweeps.schema.step_of`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import json
import logging
import math
import os
import socket
import tempfile
import time
from pathlib import Path
from typing import Any, Collection, Mapping


@contextlib.contextmanager
def _naming_a_full_disk(what: str, where: str):
    """A full disk while writing `what` to `where` fails the trial (Tune retries it from its last checkpoint) with
    an error that names the place: Ray's copy into storage says only "Error writing bytes to file ... No space
    left on device", which `sweeps status` showed as the cell's error without saying which disk. A quota used up
    (EDQUOT, "Disk quota exceeded") is told the same way, keeping its errno."""
    try:
        yield
    except OSError as exc:
        if exc.errno not in FULL_DISK_ERRNOS:
            raise
        quota = " (or have its quota raised)" if exc.errno == errno.EDQUOT else ""
        raise OSError(exc.errno, f"{os.strerror(exc.errno)}: {what} could not be written to {where}; free space "
                      f"there{quota}, then `sweeps resume` continues the sweep (completed cells are kept)") from exc


@contextlib.contextmanager
def _naming_a_full_store(uri: str, storage: str | None):
    """A trial that fails because the sqlite store's disk is full (`tracking.full_store`: sqlite's "database or disk
    is full", an ENOSPC in its mlartifacts/) fails with an error naming the database and its disk's free space, as
    the driver's does: MLflow's own names neither, and it is what `sweeps status` shows of the cell (its failed mark
    is made once the store has room). Nothing more is written to the full store for it. An ENOSPC in --storage
    stays the storage's, where that lies in the database's folder (./ray_results beside ./mlflow.db)."""
    try:
        yield
    except Exception as exc:
        full = full_store(uri, exc)
        if full is None or (storage and _enospc_in(exc, storage)):
            raise
        raise TrackingError(f"{full}; free space there, then `sweeps resume` continues the sweep (completed cells "
                            "are kept)") from exc


def _enospc_in(exc: BaseException, folder: str) -> bool:
    """Whether `exc`, or what it was raised from, is an ENOSPC (or EDQUOT) naming a file in `folder`."""
    cause, seen, inside = exc, set(), os.path.realpath(folder) + os.sep
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        if isinstance(cause, OSError) and cause.errno in FULL_DISK_ERRNOS and any(
                os.path.realpath(str(name)).startswith(inside) for name in (cause.filename, cause.filename2) if name):
            return True
        cause = cause.__cause__ or cause.__context__
    return False


@contextlib.contextmanager
def _imports_without_collections():
    """In a trial's worker process (a Ray actor), the block's imports run with Python's cyclic garbage collector
    off; then what the process holds is frozen (gc.freeze: out of the collector's sight for good; modules live as
    long as the process) and the collector turned back on. With it on, each full collection walked every object
    the imports had made so far, again and again. Yields whether it did so: outside a Ray actor (the driver, a
    test, a notebook) nothing changes."""
    import gc

    import ray

    if not gc.isenabled() or not ray.is_initialized() or ray.get_runtime_context().get_actor_id() is None:
        yield False
        return
    gc.disable()
    try:
        yield True
    finally:
        gc.freeze()
        gc.enable()


# A worker imports this module while it loads the trial actor's class, MLflow with it: ~0.25 s of collections
# (of ~1.1 s) each worker paid at its start, before its first trial (bench/RESULTS.md §1)
with _imports_without_collections():
    from ray import tune

    from sweeps import schema
    from sweeps.tracking import (CellIdentity, CellRun, EpochLog, TrackingError, client_for, find_cell_run,
                                 find_trial_run, FULL_DISK_ERRNOS, full_store, set_tags, sqlite_path,
                                 wait_for_tracking, wait_s_from_env)
    from transfer_core.config import config_hash, decode_key, from_flat, to_flat
    from transfer_core.metrics import confusion_report

log = logging.getLogger(__name__)

_IMPORTED_WITHOUT_COLLECTIONS: list[bool] = []   # [True] once a trial worker process did (at its first trial)


@contextlib.contextmanager
def _first_imports_without_collections(tracking_uri: str):
    """In a trial's worker process (a Ray actor), the first trial imports torch, a sqlite store's module and what
    the first `fit` imports on first use without collections (`_imports_without_collections`): ~0.55 s of the ~2 s
    the first two cost each worker at its start (bench/RESULTS.md §1), and the training's later full collections
    walk only what came after. Outside a Ray actor (a test, a notebook calling train_cell) nothing changes."""
    if _IMPORTED_WITHOUT_COLLECTIONS:
        yield
        return
    with _imports_without_collections() as in_a_trial_actor:
        if in_a_trial_actor:
            _IMPORTED_WITHOUT_COLLECTIONS.append(True)
        yield
        if in_a_trial_actor:
            # fit's own lazy imports, and torch._dynamo, which torch.optim imports when the first optimizer is built
            # (torch._disable_dynamo; ~0.8 s of CPU, ~870 modules: sympy, triton, torch._inductor): imported with
            # the collector on, ~0.1-0.25 s more, and each later full collection walked them (~0.05 s)
            import torch._dynamo  # noqa: F401

            import transfer_core.data  # noqa: F401
            import transfer_core.models  # noqa: F401
        if in_a_trial_actor and sqlite_path(tracking_uri) is not None:   # the trial opens it next
            import mlflow.store.tracking.sqlalchemy_store  # noqa: F401


CHECKPOINT_FILE = "state.pt"
CELL_FILE = "cell.json"   # beside state.pt: which cell and epoch, read without loading the state
STAND_IN_NOTE = "LOST_CHECKPOINT.txt"   # in the empty folder put where a checkpoint Tune names was lost
                                       # (sweeps.tune_state.newest_checkpoints_where_tune_looks)
SMALL_STATE_BYTES = 64 * 2**20   # a smaller state is checkpointed every epoch (the quick model's: 1.6 MB)
CHECKPOINT_SHARE = 0.05          # a larger one: at most this share of the trial's time goes to checkpoints


@dataclasses.dataclass
class CheckpointPace:
    """When a trial checkpoints: every epoch while its state file is small (SMALL_STATE_BYTES: every CPU
    profile's model, so their fault behaviour is as before and deterministic); a large one at most once
    per `cost_s / CHECKPOINT_SHARE` since the last, where cost_s is what the last checkpoint cost the
    trial (the state's copy, its file, and `tune.report`, which copies it into storage and waits for the
    driver to register it: slow storage spaces checkpoints out by itself); and always at an attempt's
    first epoch (which measures both) and last (which the trial's end relies on).

    The paper model's state with SGD's momentum is 520 MB (770 MB while it also keeps the weights of an
    earlier epoch chosen on validation): on an H200 machine a 520 MB checkpoint after every epoch cost
    1.6 s, about 11 % of a RAF-DB epoch (bench/RESULTS.md 6). A killed trial re-trains the
    epochs since its last checkpoint, and epochs it re-trains are not logged twice (EpochLog). No
    scheduler of ours pauses trials (a paused function trial would resume from its last checkpoint)."""

    cost_s: float | None = None           # what the last checkpoint cost the trial
    done_at: float = float("-inf")        # when it ended (time.monotonic)
    state_bytes: int = 0                  # the size of its state file

    def due(self, epoch: int, last_epoch: int, now: float) -> bool:
        if epoch >= last_epoch or self.cost_s is None or self.state_bytes < SMALL_STATE_BYTES:
            return True
        return now - self.done_at >= self.cost_s / CHECKPOINT_SHARE

    def taken(self, started: float, ended: float, state_bytes: int) -> None:
        self.cost_s, self.done_at, self.state_bytes = ended - started, ended, state_bytes


def trial_config(config: Mapping[str, Any]):
    """The TrialConfig of a Tune trial: the cell's flat config, plus the searcher's suggestions."""
    flat = dict(config["cell"]["config"])
    flat.update(config.get("search", {}))
    return from_flat(flat)


def cell_identity(config: Mapping[str, Any], trial_id: str):
    """(TrialConfig, CellIdentity) of a Tune trial: its table cell's, or for a search trial one of its own,
    with its Tune trial id (kept by Tuner.restore): a sampler may draw one config twice, and the two trials
    must not share a run, nor count as one in the search's progress. The driver names the run of a trial
    that failed before opening it the same way (sweeps.marks.failure_details)."""
    context, cell = config["context"], config["cell"]
    trial = trial_config(config)
    if context["kind"] == "search":
        cell = {**cell, "cell_id": f"{config_hash(trial)}-{trial_id}", "arm": f"trial {trial_id}",
                "run_name": f"{context['sweep']}/trial-{trial_id}"}
    return trial, CellIdentity(sweep=context["sweep"], arm=cell["arm"], data=cell["data"], seed=trial.seed,
                               cell_id=cell["cell_id"], run_name=cell["run_name"])


def _node_id() -> str:
    try:
        import ray

        return ray.get_runtime_context().get_node_id()
    except Exception:  # outside a Ray worker (unit tests calling the function directly)
        return "local"


def resume_state(checkpoint, run_name: str) -> dict | None:
    """The state in Tune's checkpoint, or None: no checkpoint, or one that cannot be read (logged; a
    corrupt file is never loaded). On None train_cell looks for one left in storage (`salvaged_state`)
    before it starts the cell over."""
    if checkpoint is None:
        return None
    from transfer_core.engine import StateError, load_state

    try:
        with checkpoint.as_directory() as folder:
            if (Path(folder) / STAND_IN_NOTE).is_file():
                log.info("cell %s: Tune's checkpoint of this trial was lost before the resume (an empty stand-in)",
                         run_name)
                return None
            state = load_state(Path(folder) / CHECKPOINT_FILE)
    except (StateError, OSError) as exc:
        log.warning("cell %s: Tune's checkpoint of this trial is unusable: %s", run_name, exc)
        return None
    log.info("cell %s resumes after epoch %d", run_name, state["epoch"])
    return state


def checkpoint_label(folder: Path) -> dict | None:
    """What the cell.json beside a checkpoint's state.pt says (cell_id, epoch: an int; parent_run_id, where
    written since it was), read without loading the state; None where there is no state.pt or the label cannot be
    read."""
    try:
        if (folder / CHECKPOINT_FILE).is_file():
            label = json.loads((folder / CELL_FILE).read_text(encoding="utf-8"))
            return {**label, "epoch": int(label["epoch"])}
    except (OSError, ValueError, KeyError, TypeError):
        pass
    return None


def salvaged_state(context: Mapping[str, Any], cell: Mapping[str, Any], trial, run_name: str,
                   skip: str | os.PathLike | None = None) -> dict | None:
    """The newest readable checkpoint of this cell left in the invocation's Tune storage, for
    when Tune hands the trial none, one that is unreadable, or the empty stand-in for one that is gone
    (`sweeps.tune_state.newest_checkpoints_where_tune_looks`). A driver killed inside two windows of Tune's
    bookkeeping loses the trial's checkpoint from Tune's view while the file stays on disk: Tune copies
    its search state to storage non-atomically (a truncated copy makes `Tuner.restore` start the trials
    over), and with num_to_keep=1 it deletes the older checkpoint before it syncs the state naming the
    newer one. Without this the interrupted cell would train again from epoch 1 (hours at paper scale).

    Searched: `<storage>/<invocation prefix>*/<trial folder>/checkpoint_*/state.pt` whose cell.json
    names this cell_id (every Tune experiment of this invocation: the first, a restarted one, the one
    run_sweep starts for cells a failed restore left over), latest epoch first (then newest file); a
    file that does not load or was saved for another config is skipped, and so is `skip` (the folder
    of the checkpoint Tune handed over, already found unreadable). A search trial's cell_id holds its
    Tune trial id (kept by Tuner.restore), so it finds only its own attempts' checkpoints, never those
    of another trial that drew the same config; its pruner counts the epochs it has trained
    (`sweeps.schema.step_of`), not Tune's iterations."""
    storage, prefix = context.get("storage"), context.get("invocation")
    if not storage or not prefix:
        return None
    import glob

    from transfer_core.engine import StateError, check_state_config, load_state

    skipped = Path(skip).resolve() if skip else None
    candidates = []
    for folder in Path(storage).glob(f"{glob.escape(prefix)}*/*/checkpoint_*/"):
        found = checkpoint_label(folder)
        try:
            if found is not None and found.get("cell_id") == cell["cell_id"] and folder.resolve() != skipped:
                path = folder / CHECKPOINT_FILE
                candidates.append((found["epoch"], path.stat().st_mtime, path))
        except OSError:   # gone meanwhile
            continue
    for _, _, path in sorted(candidates, key=lambda c: c[:2], reverse=True):
        try:
            state = load_state(path)
            check_state_config(state, trial)
        except (StateError, OSError) as exc:
            log.warning("cell %s: skipping a checkpoint left in storage: %s", run_name, exc)
            continue
        log.warning("cell %s: Tune handed this trial no usable checkpoint; resuming after epoch %d from %s, "
                    "left in storage by an earlier attempt of this invocation", run_name, state["epoch"], path)
        return state
    return None


# An epoch's scores of its own weights; a search may optimise any of them but the test ones
EPOCH_SCORES = ("train_acc", "val_acc", "val_mca", "test_acc", "test_mca")


def without_unsound_scores(metrics: Mapping[str, Any]) -> dict:
    """`metrics` (an epoch's record, or a run's latest metrics) as Tune is told them: where the epoch's losses
    are not finite (a training that diverged: not `engine.sound`), its own scores are NaN. Its network predicts
    class 0 for every image, and scored that class's share of a split, a number that reads as a result: as
    val_acc it reached Optuna as the trial's value (COMPLETE), and TPE learnt from it. A NaN tells the search
    there is none (`sweeps.pruning` tells Optuna PRUNED, ranked below every trial with a value), and Tune's
    best-result picks pass it over. The summaries stand: they are of the sound epochs (History.summary)."""
    from transfer_core.engine import sound

    out = dict(metrics)
    if not sound(out):
        out.update({key: math.nan for key in EPOCH_SCORES if key in out})
    return out


def _report_completed(client, run, identity: CellIdentity) -> None:
    """A restored trial of a cell that completed before the driver died: report, do not retrain."""
    if run.info.status != "FINISHED":  # died between tagging it completed and ending it
        client.set_terminated(run.info.run_id, "FINISHED")
    metrics = without_unsound_scores(run.data.metrics)   # runs logged before NaN was: their diverged epoch's as measured
    metrics.update(mlflow_run_id=run.info.run_id, cell_id=identity.cell_id)
    metrics[schema.FINAL_STEP_KEY] = 0   # done: the pruner's scheduler must not stop it at this report
    log.info("cell %s is already completed in MLflow run %s: not trained again", identity.run_name,
             run.info.run_id)
    tune.report(metrics)


def _earlier_fingerprints(existing, fingerprint: str, alike: tuple[str, ...] = ()) -> dict[str, str]:
    """The tag that keeps the data fingerprints a resumed run's earlier epochs trained on, where the data
    changed since (a sweep continued with --accept-changed-data): its table mixes both, and says so. `alike`:
    fingerprints an earlier version of the tool gave the same data (DataSplits.fingerprints_alike), no change."""
    if existing is None:
        return {}
    tags = existing.data.tags
    earlier = [f for f in tags.get(schema.TAG_DATA_FINGERPRINT_EARLIER, "").split(",") if f]
    before = tags.get(schema.TAG_DATA_FINGERPRINT, "")
    if before and before != fingerprint and before not in earlier and before not in alike:
        earlier.append(before)
    return {schema.TAG_DATA_FINGERPRINT_EARLIER: ",".join(earlier)} if earlier else {}


class StorageError(RuntimeError):
    """The sweep's --storage folder is not on the node a trial runs on."""


def check_storage_here(storage_option: str) -> None:
    """StorageError unless this node sees the Tune experiment folder in --storage, by the marker file
    Tune's driver writes there. A node with a disk of its own (one an autoscaler started after the driver
    asked every node, sweeps.cluster.check_nodes_see_files) fails at the trial's first checkpoint otherwise,
    after an epoch of work, with Tune's advice for its Python API."""
    try:   # Ray 2.60's; were it gone in another Ray, this safeguard must not fail every trial
        from ray.train._internal.storage import _VALIDATE_STORAGE_MARKER_FILENAME
    except ImportError:
        return
    get_storage = getattr(tune.get_context(), "get_storage", None)   # Tune's DeveloperAPI; none outside Tune
    storage = get_storage() if get_storage is not None else None
    if storage is None or storage.storage_filesystem.type_name != "local":
        return
    if not (Path(storage.experiment_fs_path) / _VALIDATE_STORAGE_MARKER_FILENAME).exists():
        raise StorageError(f"the sweep's --storage {storage_option} is not on this node ({socket.gethostname()}, "
                           f"{_node_id()}): its Tune experiment folder {storage.experiment_fs_path} is missing "
                           "here, and Tune copies each checkpoint into it from the trial's node. Mount one shared "
                           "folder at the same path on every node (NFS/EFS, e.g. /mnt/shared/ray_results) and "
                           "give it as --storage")


def train_cell(config: dict, datasets: Mapping[str, Any], tracking_uri: str | None = None,
               cells_planned: Collection[str] | None = None, storage: str | None = None) -> None:
    """Tune entry point. config: {"context": {...}, "cell": {...}, "search": {dotted key: value}}.
    tracking_uri: the store as this run of the sweep reaches it (`tune.with_parameters`, given afresh to a
    restored experiment), over the context's, which a restored trial keeps from the run that began it (the
    server moved, a path spelt another way); the context's where not given. cells_planned: a table's cell
    ids this run plans (given afresh too); a restored trial of another cell (a seed the run leaves out,
    `--seeds` fewer than before) ends at once, untrained, and its run stays as it was. storage: this run's
    --storage (given afresh too), over the context's, where a restored trial looks for its cell's checkpoints
    (`salvaged_state`): the storage folder may have moved since the experiment began.
    A full sqlite store fails the trial naming it (`_naming_a_full_store`)."""
    with _naming_a_full_store(tracking_uri or config["context"]["tracking_uri"], storage or
                              config["context"].get("storage")):
        _train_cell(config, datasets, tracking_uri, cells_planned, storage)


def _train_cell(config: dict, datasets: Mapping[str, Any], tracking_uri: str | None,
                cells_planned: Collection[str] | None, storage: str | None) -> None:
    context, cell = config["context"], config["cell"]
    if storage is not None:
        context = {**context, "storage": storage}
    if cells_planned is not None and context["kind"] == "table" and cell["cell_id"] not in cells_planned:
        log.info("cell %s is not in this run's plan (fewer --seeds than before): not trained", cell["run_name"])
        # Tune requires its metric in a trial's results: none has a value (the driver's callback ignores it)
        tune.report({**dict.fromkeys(schema.SUMMARY_METRICS, math.nan), schema.FINAL_STEP_KEY: 0})
        return
    with _first_imports_without_collections(tracking_uri or context["tracking_uri"]):
        from transfer_core.engine import (History, ends_training, fit, save_state,  # torch: in the trial only
                                          selected_model_state)

    trial_id = tune.get_context().get_trial_id() or "local"
    trial, identity = cell_identity(config, trial_id)
    cell = {**cell, "cell_id": identity.cell_id}   # a search trial's own, which its checkpoints are labelled with
    splits = datasets.get(cell["data_key"])
    if splits is None:   # restored from Tune state an earlier version wrote, whose keys were computed otherwise
        splits = datasets[decode_key(trial)]
    uri, wait_s = tracking_uri or context["tracking_uri"], wait_s_from_env()
    database = sqlite_path(uri)
    if database is not None and not database.exists():
        # the driver created it before any trial: this node has a disk of its own (opening it would create an
        # empty database here, and fail with "No Experiment with id=...")
        raise TrackingError(f"the MLflow database {database} is not on this node "
                            f"({socket.gethostname()}, {_node_id()}): a sqlite store is a file on the driver's "
                            "machine. On a cluster, pass --tracking-uri http://HOST:5000, an MLflow server every "
                            "node reaches")
    check_storage_here(context["storage"])
    wait_for_tracking(uri, wait_s, in_trial=True)
    client = client_for(uri)
    existing = find_cell_run(client, context["experiment_id"], context["parent_run_id"], identity.cell_id)
    if existing is None and context["kind"] == "search":   # opened by an earlier version, keyed by its config alone
        earlier = find_trial_run(client, context["experiment_id"], context["parent_run_id"], trial_id)
        if earlier is not None and earlier.data.tags.get(schema.TAG_CELL_ID) == config_hash(trial):
            existing, identity = earlier, dataclasses.replace(identity, cell_id=config_hash(trial))
    if existing is not None and existing.data.tags.get(schema.TAG_STATUS) == schema.STATUS_COMPLETED:
        _report_completed(client, existing, identity)
        return
    run = CellRun.open(uri, context["experiment_id"], context["parent_run_id"],
                       identity, trial_id, to_flat(trial),
                       {schema.TAG_NODE_ID: _node_id(), schema.TAG_WORKER: f"{socket.gethostname()}:{os.getpid()}",
                        schema.TAG_PROFILE: context["profile"],
                        schema.TAG_DATA_FINGERPRINT: splits.fingerprint,
                        schema.TAG_SYNTHETIC: str(splits.dataset == "synthetic").lower()})
    epochs = EpochLog(run, uri)

    checkpoint = tune.get_checkpoint()
    state = resume_state(checkpoint, identity.run_name)
    # a cell never started has left no checkpoint to look for; a search trial on a run an earlier version
    # opened has checkpoints labelled by its config alone, which another trial of that config shares
    if state is None and existing is not None and identity.cell_id == cell["cell_id"]:
        state = salvaged_state(context, cell, trial, identity.run_name, skip=getattr(checkpoint, "path", None))
    if state is None and checkpoint is not None:
        log.warning("cell %s starts over from epoch 1 (same MLflow run; epochs it already holds are not "
                    "logged again)", identity.run_name)
    if state is not None:   # its weights trained on the data of before: kept in mind where that changed since
        earlier = _earlier_fingerprints(existing, splits.fingerprint, getattr(splits, "fingerprints_alike", ()))
        if earlier:
            set_tags(client, run.run_id, earlier)
    records: list[dict] = list(state["history"]["records"]) if state else []
    for i, record in enumerate(records):  # epochs the run misses (buffered when the trial died)
        epochs.add(without_unsound_scores(record), History(records=records[:i + 1]).summary())
    epochs.flush()
    last_state: dict[str, Any] = {}
    pace = CheckpointPace()

    def epoch_metrics(record: dict, summary: dict) -> dict:
        metrics = without_unsound_scores({k: v for k, v in record.items() if k != "test_confusion"})
        metrics.update(summary)
        metrics.update(mlflow_run_id=run.run_id, cell_id=identity.cell_id)
        # the pruner's scheduler never stops a trial at its last step: its last epoch, or one that diverged
        metrics[schema.FINAL_STEP_KEY] = record["epoch"] if ends_training(record, trial.optim.epochs) \
            else trial.optim.epochs
        return metrics

    def on_epoch(record: dict, snapshot) -> bool:
        measured_ms = int(time.time() * 1000)
        records.append(record)
        summary = History(records=records).summary()
        metrics = epoch_metrics(record, summary)
        # MLflow before the report: a trial that the scheduler stops at this report (a pruned search
        # trial) does not run past it. A retry re-trains from an older checkpoint; EpochLog skips
        # the epochs the run already holds as measured. A diverged epoch's accuracies are logged as NaN,
        # as Tune is told them: its curves in MLflow and the figures dropped to class 0's share.
        epochs.add(without_unsound_scores(record), summary, measured_ms)
        epochs.flush()
        last = ends_training(record, trial.optim.epochs)   # fit trains no epoch after it
        if not pace.due(record["epoch"], record["epoch"] if last else trial.optim.epochs, time.monotonic()):
            tune.report(metrics)
            return False
        started = time.monotonic()
        with tempfile.TemporaryDirectory() as folder:
            saved = snapshot()
            # not fsynced: Tune copies the folder into storage at once, and that copy is the checkpoint
            state_bytes = save_state(saved, Path(folder) / CHECKPOINT_FILE, sync=False).stat().st_size
            if last:   # the weights to log: no second copy of the state
                last_state["model"], last_state["selected"] = saved["model"], selected_model_state(saved)
            (Path(folder) / CELL_FILE).write_text(json.dumps({"cell_id": identity.cell_id, "epoch": record["epoch"],
                                                              "parent_run_id": context["parent_run_id"]}))
            with _naming_a_full_disk(f"the checkpoint of epoch {record['epoch']} ({state_bytes / 2**20:.1f} MB)",
                                     f"--storage {context['storage']}"):
                tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(folder))   # copies it to storage
        pace.taken(started, time.monotonic(), state_bytes)
        return False

    history = fit(trial, on_epoch=on_epoch, resume_from=state, data=splits)
    epochs.flush(wait_s=wait_s)
    # the summaries of the last epoch, which a resumed trial may not have logged again (its epoch was logged by an
    # earlier attempt, with that attempt's history); logged by this one, they are in MLflow once already
    if history.records and int(history.records[-1]["epoch"]) not in epochs.logged_here:
        run.log_summary(history.summary(), int(history.records[-1]["epoch"]))
    selected = history.selected_record() if history.records else None
    confusion = {}
    if selected is not None:
        import numpy as np

        confusion = confusion_report(np.asarray(selected["test_confusion"]), history.class_names)
        confusion["epoch"] = selected["epoch"]
    # every attempt that trains an epoch checkpoints its last one (CheckpointPace), which keeps its weights;
    # resumed after its last epoch (died before completing): the weights are the checkpoint's
    trained_last = "model" in last_state
    if not trained_last and state is not None:
        last_state.update(model=state["model"], selected=selected_model_state(state))
    model_state, selected_state = last_state.get("model"), last_state.get("selected")
    if model_state is not None and selected_state is None:
        log.warning("cell %s: the weights of epoch %d, chosen on validation, were not kept (it resumed from a "
                    "checkpoint saved before checkpoints kept them): only the last epoch's model is logged",
                    identity.run_name, selected["epoch"])
    shown = selected_state if selected_state is not None else model_state   # Fig. 3: the model the table is of
    attention = _attention_record(trial, shown, splits, identity.run_name) if shown is not None else None
    run.complete(history.to_dict(), confusion, model_state, to_flat(trial), attention, selected_state)
    if not trained_last and history.records:   # resumed after its last epoch: Tune needs one result
        tune.report(epoch_metrics(history.records[-1], history.summary()))


def _attention_record(trial, model_state: Mapping[str, Any], splits, run_name: str) -> dict | None:
    """Fig. 3's data from the weights about to be logged, computed here where they are at hand, so that
    the sweep's report draws it without downloading every model or importing torch. A failure costs
    only this shortcut (the figure is then drawn from the logged model), never the trial."""
    from transfer_core.attention import attention_record
    from transfer_core.models import trained_model

    try:
        return attention_record(trained_model(trial.model, model_state), trial, splits)
    except Exception as exc:  # noqa: BLE001  (an optional by-product; the trial's results stand)
        log.warning("cell %s: no attention record (%s); its figure will be drawn from the logged model",
                    run_name, exc)
        return None
