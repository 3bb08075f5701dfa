"""What a sweep leaves in MLflow: the names every writer (tracking) and reader (tables, figures,
status) agree on. One experiment per sweep; one parent run per invocation; one child run per cell.

Parent run (run name "<sweep>@<UTC time>"):
  tags   sweeps.role=parent, sweeps.sweep, sweeps.kind (table|search), sweeps.spec_hash,
         sweeps.profile, sweeps.data (comma-separated data names), sweeps.data_fingerprint
         (json: data name -> fingerprint), sweeps.synthetic ("true"/"false"), sweeps.seeds (json list),
         sweeps.git_commit (the commit of the code its cells trained under, "-dirty" appended where that had
         uncommitted changes, "unknown" outside a git checkout; where a continuation trained under another, the
         commits in the order they ran, "<a> then <b>", at most 5 of them, the first, "…" and the latest:
         tracking.commit_continued; shown as it is by the tables' provenance and `sweeps status`),
         sweeps.versions (json: package -> version; where a continuation ran under another, the versions in
         the order they ran, "2.14.1 then 2.15.0", as many at most: tracking.versions_continued), sweeps.status
         (running|completed|interrupted|failed), sweeps.overrides (json: the --set key -> value),
         sweeps.driver (json: host, pid, start time of the process running it, and the boot,
         pid namespace and machine id its process table is of), sweeps.heartbeat (unix seconds
         of its driver's last sign of life, renewed every minute while it runs) and sweeps.heartbeat_utc (the same
         time as a person reads it, 2026-12-07T22:31:30Z), sweeps.data_changed
         (json: data name -> every fingerprint its runs trained on, where --accept-changed-data went on),
         sweeps.package_version (transfer-sweeps' version of the run that ran it last; sweeps.versions names
         each); MLflow's own, for its UI: mlflow.user and
         mlflow.note.content (the spec's title, description and caption) set when it is created, never replaced
         (a note edited in the UI stays), mlflow.source.name ("sweeps <the spec as named>"), mlflow.source.type
         (LOCAL) and mlflow.source.git.commit (the latest run's, where known, without -dirty) by each run of it
  params PARENT_PARAMS, what never changes for an invocation (MLflow refuses to change a logged param): sweep,
         kind, profile, data (comma-separated names), data_roots (name=folder as given, where one was), set (the
         --set every cell computed with, placement keys left out, "k=v k=v" sorted; "none"); logged when it is
         created, and by a continuation where missing (a parent an earlier version created)
  metrics PARENT_METRICS at step 0, by each run of it (its latest counts): cells (planned; a search's samples),
         cells_completed, cells_pruned, cells_failed
  artifacts spec.yaml (as the latest run gave it), spec_history/<spec_hash>.yaml (the texts it replaced:
         a continuation's spec may differ in comments, seeds and how its table reads), plan.json,
         data.json (what each data set decoded to, as its latest run decoded it), data_earlier.json (the entries
         of data.json a continuation replaced, by key, oldest first: data its runs trained on before a change
         --accept-changed-data went on after; what differs is said against them), tables/*, figures/*
Child run (run name "<sweep>/<arm>/seed<k>", "/<data>" appended when the sweep has several data sets):
  tags   mlflow.parentRunId, sweeps.role=cell, sweeps.sweep, sweeps.arm (the row label),
         sweeps.data (the data name: the column), sweeps.seed, sweeps.cell_id (config hash),
         sweeps.trial_id (Tune's), sweeps.status (running|completed|pruned|failed|interrupted: begun, and
         its invocation completed without it, as a search whose num_samples was lowered below the trials ended;
         sweeps.interrupted_why says why; a later run that continues it tags it running again),
         sweeps.pruned_step (0-based epoch index, pruned runs only), sweeps.data_fingerprint (of the data
         it trained on last), sweeps.data_fingerprint_earlier (comma-separated: those its earlier epochs
         trained on, where a run continued with --accept-changed-data after the data changed),
         sweeps.error (failed runs: the exception the trial ended in; a trial that failed before it
         opened its run, as one whose node cannot reach the store or --storage, gets a run of its own from
         the driver, tagged failed with this and its params, and no metric),
         sweeps.node_id (Ray node that ran it), sweeps.worker (<host>:<pid> of the Ray worker process;
         Tune reuses a trial's actor, so one process trains several cells in turn), sweeps.synthetic
  params the flattened TrialConfig ("model.num_lanets", ...), strings as MLflow stores them, and PARAM_ARM (the
         row label, as sweeps.arm, logged when the run is made: for the MLflow UI's parallel coordinates, scatter
         and contour charts, which take params and metrics, not tags; no config key, readers leave it out; a run
         made before it was a param gets it from its sweeps.arm tag when its invocation is run again)
  metrics per epoch at step=epoch (1-based): EPOCH_METRICS
          summaries, updated every epoch: SUMMARY_METRICS
          DIVERGED_EPOCH_KEY (only where training diverged: the epoch whose losses were not finite, where it
          stopped; logged at that step with the summaries)
  artifacts history.json, confusion_matrix.json (selected epoch: raw and row-normalised, class
         names), model/state_dict.pt + model/config.json (flat TrialConfig) for completed cells: the
         weights after the last epoch (they score final_test_acc); model_selected/state_dict.pt +
         config.json: the weights of epoch sel_epoch, chosen on validation, which score the sel_*
         metrics (absent when sel_epoch is the last epoch, as model/ holds those weights; absent too
         for a cell of an earlier version, or one resumed from a checkpoint saved before checkpoints
         kept them), and model_selected/attention.npz (transfer_core.attention.attention_record of
         those weights: the attention grid's faces and fused LANet maps; model/attention.npz where
         there is no model_selected/)
Accuracies are fractions in [0, 1]; tables show percent.
"""

from __future__ import annotations

import math
import sys
from typing import Any, Mapping

TAG_ROLE = "sweeps.role"
TAG_SWEEP = "sweeps.sweep"
TAG_KIND = "sweeps.kind"
TAG_SPEC_HASH = "sweeps.spec_hash"
TAG_PROFILE = "sweeps.profile"
TAG_DATA = "sweeps.data"
TAG_DATA_FINGERPRINT = "sweeps.data_fingerprint"
TAG_DATA_FINGERPRINT_EARLIER = "sweeps.data_fingerprint_earlier"
TAG_DATA_CHANGED = "sweeps.data_changed"   # parent: json, data name -> fingerprints, where a run went on
                                            # after its data changed (--accept-changed-data)
TAG_SYNTHETIC = "sweeps.synthetic"
TAG_SEEDS = "sweeps.seeds"
TAG_GIT_COMMIT = "sweeps.git_commit"
TAG_VERSIONS = "sweeps.versions"
TAG_STATUS = "sweeps.status"
TAG_OVERRIDES = "sweeps.overrides"
TAG_PLANNED = "sweeps.planned"   # parent: its latest run's cells (a search's num_samples), as plan.json: read
                                 # where the artifact is not (a copy of a server's database)
TAG_COMMAND = "sweeps.command"   # parent: json, what its latest run was given beyond the spec (the command that
                                 # continues it: sweeps.invocations.command_words; a search's resources: best)
TAG_DRIVER = "sweeps.driver"   # parent: json {host, pid, start, boot, pidns, machine}: the process running it (or last)
TAG_HEARTBEAT = "sweeps.heartbeat"   # parent: unix time (the driver's clock) of its driver's last sign of life
TAG_HEARTBEAT_UTC = "sweeps.heartbeat_utc"   # parent: the same time for a person (2026-12-07T22:31:30Z); read by none
TAG_PACKAGE_VERSION = "sweeps.package_version"   # parent: transfer-sweeps' version of the run that ran it last
PARENT_PARAMS = ("sweep", "kind", "profile", "data", "data_roots", "set")
PARENT_METRICS = ("cells", "cells_completed", "cells_pruned", "cells_failed")
TAG_ARM = "sweeps.arm"
PARAM_ARM = "arm"   # a child run's param: its sweeps.arm, for the MLflow UI's charts of params (no config key)
TAG_SEED = "sweeps.seed"
TAG_CELL_ID = "sweeps.cell_id"
TAG_TRIAL_ID = "sweeps.trial_id"
TAG_PRUNED_STEP = "sweeps.pruned_step"
TAG_NODE_ID = "sweeps.node_id"
TAG_WORKER = "sweeps.worker"
TAG_ERROR = "sweeps.error"   # a failed cell's: the exception its trial ended in (marks.error_message)
TAG_INTERRUPTED_WHY = "sweeps.interrupted_why"   # a cell tagged interrupted: why its invocation ended without it
ERROR_TAG_CHARS = 1000
TAG_PARENT = "mlflow.parentRunId"

ROLE_PARENT = "parent"
ROLE_CELL = "cell"

STATUS_RUNNING = "running"
STATUS_COMPLETED = "completed"
STATUS_PRUNED = "pruned"
STATUS_FAILED = "failed"
STATUS_INTERRUPTED = "interrupted"   # a reader's word for a child left running by a parent that stopped; a
                                     # child's tag where its invocation completed without it (TAG_INTERRUPTED_WHY)


def seen_under(child_status: str, parent_status: str | None) -> str:
    """A child's status as readers show it: one still tagged running under a parent that stopped
    (interrupted, or failed) is interrupted, since nobody trains it any more."""
    if child_status == STATUS_RUNNING and parent_status in (STATUS_INTERRUPTED, STATUS_FAILED):
        return STATUS_INTERRUPTED
    return child_status

# Per-epoch metrics (step = epoch, 1-based). val_* are absent when the validation split is empty.
EPOCH_METRICS = ("train_loss", "train_acc", "val_loss", "val_acc", "val_mca", "test_loss", "test_acc",
                 "test_mca", "lr", "epoch_time_s", "train_images_per_s")
# Summaries. sel_*: test at the epoch chosen on validation (the honest number, the tables' default);
# best_test_*: the best test epoch, as much of the FER literature reports (labelled as such).
SUMMARY_METRICS = ("best_val_acc", "sel_epoch", "sel_test_acc", "sel_test_mca", "best_test_acc",
                   "best_test_mca", "best_test_epoch", "final_test_acc", "epochs_done")
# the epoch a cell's training diverged at (a loss not finite: engine.History.summary), logged with the summaries
# where it did; runs recorded before it was are told by a score or training loss recorded NaN (sweeps.tables)
DIVERGED_EPOCH_KEY = "diverged_epoch"

ARTIFACT_HISTORY = "history.json"
ARTIFACT_CONFUSION = "confusion_matrix.json"
MODEL_STATE_FILE, MODEL_CONFIG_FILE, MODEL_ATTENTION_FILE = "state_dict.pt", "config.json", "attention.npz"
ARTIFACT_MODEL_DIR = "model"                     # the last epoch's weights
ARTIFACT_MODEL_STATE = f"{ARTIFACT_MODEL_DIR}/{MODEL_STATE_FILE}"
ARTIFACT_MODEL_CONFIG = f"{ARTIFACT_MODEL_DIR}/{MODEL_CONFIG_FILE}"
ARTIFACT_MODEL_ATTENTION = f"{ARTIFACT_MODEL_DIR}/{MODEL_ATTENTION_FILE}"   # where no model_selected/ was logged
ARTIFACT_SELECTED_MODEL_DIR = "model_selected"   # the weights of epoch sel_epoch, which score sel_test_acc
ARTIFACT_SELECTED_MODEL_STATE = f"{ARTIFACT_SELECTED_MODEL_DIR}/{MODEL_STATE_FILE}"
ARTIFACT_SELECTED_MODEL_ATTENTION = f"{ARTIFACT_SELECTED_MODEL_DIR}/{MODEL_ATTENTION_FILE}"
ARTIFACT_SPEC = "spec.yaml"
ARTIFACT_SPEC_HISTORY = "spec_history"   # parent: the spec.yaml texts a continuation replaced, by their spec_hash
ARTIFACT_PLAN = "plan.json"   # parent: the invocation's plan (search_spaces.Plan.to_dict), rewritten by each continuation
ARTIFACT_DATA = "data.json"   # parent: per data name, its split and class sizes, validation source, skipped images
ARTIFACT_DATA_EARLIER = "data_earlier.json"   # parent: data.json's entries a continuation replaced (other data)


# a Tune result's planned last step (epochs): a trial that reported it has trained all its epochs, and the
# pruner's scheduler never stops it there (that saves nothing, and its final result would be set aside)
FINAL_STEP_KEY = "epochs_planned"
# a Tune result's step for the pruner: the epochs its trial has trained. Tune's training_iteration counts the
# same only while every attempt resumes where Tune's state says: a trial that starts over (its checkpoint
# unreadable or lost) or resumes from a newer checkpoint Tune never recorded counts its own epochs
STEP_KEY = "epochs_done"


def step_of(result: Mapping[str, Any]) -> int | None:
    """A Tune result's step: the epochs its trial has trained (STEP_KEY), else Tune's `training_iteration`
    (the same count while no attempt started over); None without either. Tune restores its iteration count
    with a trial's checkpoint, so a trial handed an unusable checkpoint that starts over from epoch 1 would
    otherwise be judged at its old count with its first epoch's value."""
    for key in (STEP_KEY, "training_iteration"):
        value = result.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            return int(value)
    return None


def recorded_finite(value: float) -> bool:
    """Whether a metric value read back from MLflow was finite when logged: an SQL store (sqlite, a server's
    database) records +-inf as +-the largest float (mlflow.store.tracking.sqlalchemy_store's
    sanitize_metric_value), which reads back as a number."""
    return math.isfinite(value) and abs(value) < sys.float_info.max


def metric_text(metric: str, value: float | None) -> str:
    """A metric's value as progress lines and messages show it: an accuracy in percent, as tables and figures
    do, anything else (a loss) as it is; "-" for none yet."""
    if value is None:
        return "-"
    return f"{value * 100:.2f} %" if metric.endswith(("_acc", "_mca")) else f"{value:.4f}"


def invocation_prefix(sweep: str, parent_id: str) -> str:
    """What the names of an invocation's folders in storage start with (its Tune experiments, its report)."""
    return f"{sweep}-{parent_id[:8]}-"
