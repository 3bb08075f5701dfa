"""Faults: a killed driver, an MLflow server that goes away, unwritable storage or a full disk, a
corrupt or stale checkpoint. A sweep survives each with every cell recorded once and every epoch
logged once; what it cannot survive is a clear error before anything runs.

The trainable-level rules run `train_cell` in this process with a stand-in for `ray.tune` (a trial
that dies is a report that raises). The end-to-end ones run `sweeps run` as a subprocess with its
own local Ray (the session's in-process Ray may be running), and kill exactly the processes they
started, found by a marker in their environment; the resume after a killed driver runs in this
process on the session's Ray. The node-loss fault is in test_multinode.py.
"""

from __future__ import annotations

import dataclasses
import errno
import json
import logging
import math
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time
import urllib.request
import uuid
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from ray import tune

from processes import (Processes, attempt_starts, checkpointed_epochs, finish, reported_epochs,
                       search_state_readable, synced_checkpoints_exist, trials_with_synced_checkpoint,
                       wait_for)
from sweeps import marks, runner, schema, stops, tracking, trainable
from sweeps.runner import RunOptions, SweepError, prepare, run_sweep
from sweeps.schema import invocation_prefix
from sweeps.sweep_data import data_key, decode_data
from sweeps.tune_state import unreadable_tune_state
from transfer_core import engine
from transfer_core.config import config_hash, to_flat

SPEC = """
name: faults
title: Faults
description: a short cell and a long one
caption: A test table.
kind: table
profile: smoke
arms:
  - {label: short, set: {optim.epochs: 2}}
  - {label: long, set: {optim.epochs: 30}}
seeds: [0]
table: {baseline: short}
"""
LONG = 30  # smoke epochs take ~0.2 s: a window of several seconds to act in
needs_proc = pytest.mark.skipif(not Path("/proc/self/environ").exists(),
                                reason="finds the processes it started in /proc")
EVEN_SPEC = (SPEC.replace("{label: short, set: {optim.epochs: 2}}", "{label: A, set: {model.drop_variant: none}}")
             .replace("{label: long, set: {optim.epochs: 30}}", "{label: B, set: {model.drop_variant: mad}}")
             .replace("baseline: short", "baseline: A"))  # epochs from --set


@pytest.fixture(autouse=True)
def _cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("TRANSFER_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))


@pytest.fixture
def spec_file(tmp_path):
    path = tmp_path / "faults.yaml"
    path.write_text(textwrap.dedent(SPEC))
    return path


@pytest.fixture
def even_spec_file(tmp_path):
    """Two cells that differ in their dropping variant; the epochs come from --set."""
    path = tmp_path / "faults.yaml"
    path.write_text(textwrap.dedent(EVEN_SPEC))
    return path


def _children(uri: str, sweep: str = "faults") -> dict[str, object]:
    """run name -> child run, of the sweep's cells."""
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name(sweep)
    if experiment is None:
        return {}
    runs = client.search_runs([experiment.experiment_id],
                              filter_string=f"tags.`{schema.TAG_ROLE}` = '{schema.ROLE_CELL}'")
    return {r.info.run_name: r for r in runs}


def _history(uri: str, run_id: str, key: str = "test_acc") -> list:
    return sorted(MlflowClient(uri).get_metric_history(run_id, key), key=lambda m: m.step)


def _steps(uri: str, run_id: str) -> list[int]:
    return [m.step for m in _history(uri, run_id)]


# --------------------------------------------------------------------------- refused up front, disk full

def test_prepare_unreachable_tracking_server_is_an_error_before_any_trial(spec_file, tmp_path):
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(tracking.TrackingError,
                       match=rf"MLflow tracking server http://127.0.0.1:{port} is unreachable"):
        prepare(str(spec_file), RunOptions(tracking_uri=f"http://127.0.0.1:{port}",
                                           storage=str(tmp_path / "results")))


def test_prepare_storage_under_a_regular_file_is_a_sweep_error(spec_file, store, tmp_path):
    (tmp_path / "file").write_text("not a folder")
    storage = tmp_path / "file" / "results"
    with pytest.raises(SweepError, match=rf"--storage {storage} is not writable"):
        prepare(str(spec_file), RunOptions(tracking_uri=store, storage=str(storage)))


def test_prepare_storage_given_as_a_uri_is_a_sweep_error_not_a_local_folder(spec_file, store, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SweepError, match=r"--storage s3://bucket/ray_results is a URI, which this tool does not "
                                         r"support.*every node mounts \(NFS/EFS, e\.g\. /mnt/shared/ray_results\)"):
        prepare(str(spec_file), RunOptions(tracking_uri=store, storage="s3://bucket/ray_results"))
    assert not (tmp_path / "s3:").exists()


def test_save_state_disk_full_keeps_the_previous_checkpoint_whole(tmp_path, monkeypatch):
    path = tmp_path / "state.pt"
    engine.save_state({"format": engine.STATE_FORMAT, "epoch": 1}, path)

    def full_disk(obj, fh, *args, **kwargs):
        fh.write(b"PK\x03\x04 half a checkpoint")
        raise OSError(errno.ENOSPC, "No space left on device")

    with monkeypatch.context() as patched, pytest.raises(OSError, match="No space left on device"):
        patched.setattr(torch, "save", full_disk)
        engine.save_state({"format": engine.STATE_FORMAT, "epoch": 2}, path)
    assert engine.load_state(path)["epoch"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["state.pt"], "no partial temp file is left behind"


# --------------------------------------------------------------------------- train_cell, no Ray

class TrialDied(Exception):
    """A trial killed right after it reported (and checkpointed) an epoch."""


class FakeTune:
    """`ray.tune` as train_cell sees it: reports are recorded and their checkpoints kept."""

    Checkpoint = tune.Checkpoint

    def __init__(self, folder: Path, checkpoint=None, die_after_epoch: int | None = None,
                 trial_folder: Path | None = None) -> None:
        """trial_folder: persist checkpoints as Tune does in storage (checkpoint_NNNNNN folders, only the
        newest kept); else each one is kept in `folder`."""
        self.folder = folder
        self.checkpoint = checkpoint
        self.die_after_epoch = die_after_epoch
        self.trial_folder = trial_folder
        self.reports: list[dict] = []
        self.checkpoints: dict[int, tune.Checkpoint] = {}

    def get_context(self):
        return SimpleNamespace(get_trial_id=lambda: "trial0")

    def get_checkpoint(self):
        return self.checkpoint

    def report(self, metrics, checkpoint=None):
        self.reports.append(dict(metrics))
        if checkpoint is not None and self.trial_folder is not None:
            kept = self.trial_folder / f"checkpoint_{int(metrics['epoch']) - 1:06d}"
            shutil.copytree(checkpoint.path, kept)
            for older in self.trial_folder.glob("checkpoint_*"):
                if older != kept:
                    shutil.rmtree(older)
            self.checkpoints[int(metrics["epoch"])] = tune.Checkpoint.from_directory(str(kept))
        elif checkpoint is not None:
            kept = self.folder / f"checkpoint_{uuid.uuid4().hex[:8]}"
            shutil.copytree(checkpoint.path, kept)
            self.checkpoints[int(metrics["epoch"])] = tune.Checkpoint.from_directory(str(kept))
        if metrics.get("epoch") == self.die_after_epoch:
            raise TrialDied(f"killed after the checkpoint of epoch {self.die_after_epoch}")

    @property
    def epochs(self) -> list[int]:
        return [int(r["epoch"]) for r in self.reports if "epoch" in r]


@pytest.fixture
def cell_trial(even_spec_file, store, tmp_path, monkeypatch):
    """attempt(checkpoint, die_after_epoch) runs one attempt of a 4-epoch cell in this process and
    returns its FakeTune."""
    uri = store
    prepared = prepare(str(even_spec_file), RunOptions(tracking_uri=uri, storage=str(tmp_path / "results"),
                                                       cpus_per_trial=1, overrides={"optim.epochs": 4}))
    cell = prepared.plan.cells[0]
    datasets = decode_data([cell.config])
    client = tracking.client_for(uri)
    experiment_id = tracking.ensure_experiment(client, "faults", uri)
    parent = tracking.start_parent(client, experiment_id, "faults", {})
    config = {"context": {"sweep": "faults", "kind": "table", "profile": "smoke", "tracking_uri": uri,
                          "experiment_id": experiment_id, "parent_run_id": parent,
                          "storage": str(prepared.storage_path), "invocation": invocation_prefix("faults", parent)},
              "cell": {"config": {**to_flat(cell.config), "num_threads": 1}, "cell_id": cell.cell_id,
                       "arm": cell.arm, "data": cell.data, "run_name": cell.run_name,
                       "data_key": data_key(cell.config)}}
    (tmp_path / "kept").mkdir()

    def attempt(checkpoint=None, die_after_epoch=None, experiment: str | None = None, storage: Path | None = None):
        """experiment: persist the checkpoints in storage, in a trial folder of this Tune experiment of
        the invocation (a folder name starting with the invocation's prefix); storage: the --storage the
        driver gives the trainable (`tune.with_parameters`), over the context's."""
        trial_folder = None
        if experiment is not None:
            trial_folder = prepared.storage_path / experiment / f"train_cell_{uuid.uuid4().hex[:5]}_00000_0"
        fake = FakeTune(tmp_path / "kept", checkpoint, die_after_epoch, trial_folder)
        attempt.fakes.append(fake)
        monkeypatch.setattr(trainable, "tune", fake)
        try:
            trainable.train_cell(config, datasets, **({"storage": str(storage)} if storage is not None else {}))
        except TrialDied:
            pass
        return fake

    attempt.uri, attempt.fakes, attempt.config, attempt.datasets = uri, [], config, datasets
    attempt.prefix, attempt.storage = invocation_prefix("faults", parent), prepared.storage_path
    return attempt


@pytest.mark.parametrize("resumed", [True, False])
def test_a_cell_resumed_on_changed_data_keeps_the_fingerprint_its_earlier_epochs_trained_on(cell_trial, resumed):
    # `sweeps resume --accept-changed-data`: the run's tag became the new data's, and its table mixed both unsaid;
    # a cell that starts over (no checkpoint) trains on the new data alone
    first = cell_trial(die_after_epoch=2)
    (key, splits), = cell_trial.datasets.items()
    cell_trial.datasets[key] = dataclasses.replace(splits, fingerprint="f" * 64)
    cell_trial(checkpoint=first.checkpoints[2] if resumed else None)
    run = _only_run(cell_trial.uri)
    assert run.data.tags[schema.TAG_STATUS] == "completed"
    assert run.data.tags[schema.TAG_DATA_FINGERPRINT] == "f" * 64
    assert run.data.tags.get(schema.TAG_DATA_FINGERPRINT_EARLIER) == (splits.fingerprint if resumed else None)


def test_a_cell_resumed_on_data_an_earlier_version_fingerprinted_otherwise_keeps_no_earlier_fingerprint(cell_trial):
    # the fingerprint an earlier version gave the same data (integer TIFFs before tiff_decoding was fingerprinted)
    # is no earlier version of the data: its table is not marked MIXED DATA
    first = cell_trial(die_after_epoch=2)
    (key, splits), = cell_trial.datasets.items()
    cell_trial.datasets[key] = dataclasses.replace(splits, fingerprint="f" * 64, fingerprints_alike=(splits.fingerprint,))
    cell_trial(checkpoint=first.checkpoints[2])
    run = _only_run(cell_trial.uri)
    assert run.data.tags[schema.TAG_STATUS] == "completed" and run.data.tags[schema.TAG_DATA_FINGERPRINT] == "f" * 64
    assert schema.TAG_DATA_FINGERPRINT_EARLIER not in run.data.tags


def test_a_trial_restored_with_a_data_key_an_earlier_version_computed_finds_its_data(cell_trial):
    # Tune's saved state keeps each trial's config; the driver's decoded data are keyed as this version keys them
    cell_trial.config["cell"]["data_key"] = "0123456789ab"
    cell_trial()
    assert _only_run(cell_trial.uri).data.tags[schema.TAG_STATUS] == "completed"


def _errored(config: dict, error: str, trial_id: str = "trial0") -> SimpleNamespace:
    """A Tune trial that ended in `error` before its first report, as the driver's callback sees it."""
    return SimpleNamespace(trial_id=trial_id, status="ERROR", last_result={}, config=config,
                           get_error=lambda: "Failure # 1 (occurred at 2026-12-06_09-27-44)\nTraceback (most "
                                             "recent call last):\n  File \"/x/trainable.py\", line 9, in train_cell\n"
                                             f"    check_storage_here(context['storage'])\n{error}\n")


def test_a_trial_that_failed_before_opening_its_run_gets_one_from_the_driver_which_its_retry_continues(
        cell_trial, monkeypatch):
    # a node that does not see --storage (or the store) fails before CellRun.open: sweeps status counted
    # nothing, and the MLflow UI showed neither the cell nor why
    def not_here(option):
        raise trainable.StorageError(f"the sweep's --storage {option} is not on this node")

    monkeypatch.setattr(trainable, "check_storage_here", not_here)
    with pytest.raises(trainable.StorageError):
        cell_trial()
    assert _children(cell_trial.uri) == {}, "no run opened"
    callback = runner.SweepCallback(cell_trial.uri, total=1, metric="sel_test_acc", mode="max")
    error = "StorageError: the sweep's --storage /x is not on this node"
    callback.on_trial_error(1, [], _errored(cell_trial.config, f"sweeps.trainable.{error}"))
    run = _only_run(cell_trial.uri)
    cell = cell_trial.config["cell"]
    assert run.info.run_name == cell["run_name"] and run.info.status == "FAILED"
    assert {k: run.data.tags.get(k) for k in (schema.TAG_STATUS, schema.TAG_CELL_ID, schema.TAG_ARM,
                                              schema.TAG_TRIAL_ID, schema.TAG_ERROR)} == {
        schema.TAG_STATUS: "failed", schema.TAG_CELL_ID: cell["cell_id"], schema.TAG_ARM: cell["arm"],
        schema.TAG_TRIAL_ID: "trial0", schema.TAG_ERROR: error}
    assert run.data.params["optim.epochs"] == "4" and run.data.metrics == {}
    parent = cell_trial.config["context"]["parent_run_id"]
    assert tracking.cell_statuses(MlflowClient(cell_trial.uri), run.info.experiment_id, parent) == {
        cell["cell_id"]: "failed"}, "sweeps status counts it"
    # the mark made again (a kept file replayed after a driver died mid-way) makes no second run
    assert marks.make_mark(MlflowClient(cell_trial.uri), marks.trial_reference(_errored(cell_trial.config, error)),
                            "failed", 0, marks.failure_details(_errored(cell_trial.config, error))) == "failed"
    assert _only_run(cell_trial.uri).info.run_id == run.info.run_id
    # Tune retries the trial on a node that sees the storage: it continues that run, and the error is gone
    monkeypatch.setattr(trainable, "check_storage_here", lambda option: None)
    cell_trial()
    again = _only_run(cell_trial.uri)
    assert again.info.run_id == run.info.run_id and again.data.tags[schema.TAG_STATUS] == "completed"
    assert schema.TAG_ERROR not in again.data.tags


def test_a_retry_that_fails_before_opening_marks_the_run_its_cell_has_not_a_second_one(cell_trial, monkeypatch):
    # a cell cut short in an earlier Tune experiment (another trial id): a second run left the first
    # running for good, and the cell's status read as that first run's
    cell_trial(die_after_epoch=2)
    first = _only_run(cell_trial.uri)
    monkeypatch.setattr(trainable, "check_storage_here", lambda option: (_ for _ in ()).throw(
        trainable.StorageError("not on this node")))
    callback = runner.SweepCallback(cell_trial.uri, total=1, metric="sel_test_acc", mode="max")
    callback.on_trial_error(1, [], _errored(cell_trial.config, "StorageError: not on this node", trial_id="trial9"))
    run = _only_run(cell_trial.uri)
    assert run.info.run_id == first.info.run_id and run.data.tags[schema.TAG_STATUS] == "failed"
    assert run.data.tags[schema.TAG_ERROR] == "StorageError: not on this node"


def test_the_status_of_a_cell_with_two_runs_is_its_latest_runs(store):
    # the one find_cell_run finds and a retry continues; the oldest one's status was read
    client = MlflowClient(store)
    experiment = client.create_experiment("two")
    for status in ("running", "completed"):
        client.create_run(experiment, tags={schema.TAG_PARENT: "p", schema.TAG_CELL_ID: "c", schema.TAG_STATUS: status})
        time.sleep(0.01)
    assert tracking.cell_statuses(client, experiment, "p") == {"c": "completed"}


def test_a_failed_trials_run_is_tagged_with_the_exception_it_ended_in(cell_trial):
    first = cell_trial(die_after_epoch=2)
    assert first.reports, "it opened its run and reported"
    callback = runner.SweepCallback(cell_trial.uri, total=1, metric="sel_test_acc", mode="max")
    trial = _errored(cell_trial.config, "torch.OutOfMemoryError: CUDA out of memory.\nTried to allocate 2 GiB")
    trial.last_result = {"mlflow_run_id": _only_run(cell_trial.uri).info.run_id}
    callback.on_trial_error(1, [], trial)
    run = _only_run(cell_trial.uri)
    assert run.data.tags[schema.TAG_STATUS] == "failed"
    assert run.data.tags[schema.TAG_ERROR] == "OutOfMemoryError: CUDA out of memory. Tried to allocate 2 GiB"


def _only_run(uri: str):
    runs = list(_children(uri).values())
    assert len(runs) == 1, f"one MLflow run per cell, got {len(runs)}"
    return runs[0]


def test_train_cell_epochs_still_buffered_when_the_trial_died_are_logged_from_its_checkpoint(cell_trial,
                                                                                            monkeypatch):
    real_log = tracking.CellRun.log_epoch

    def server_gone_after_epoch_1(self, record, summary, timestamp_ms=None):
        if record["epoch"] > 1:
            raise MlflowException("API request to http://127.0.0.1:5000 failed: Connection refused")
        real_log(self, record, summary, timestamp_ms)

    monkeypatch.setattr(tracking.CellRun, "log_epoch", server_gone_after_epoch_1)
    first = cell_trial(die_after_epoch=3)
    assert _steps(cell_trial.uri, _only_run(cell_trial.uri).info.run_id) == [1]
    monkeypatch.setattr(tracking.CellRun, "log_epoch", real_log)
    again = cell_trial(checkpoint=first.checkpoints[3])
    run = _only_run(cell_trial.uri)
    assert again.epochs == [4], "resumed after the checkpointed epoch"
    assert _steps(cell_trial.uri, run.info.run_id) == [1, 2, 3, 4]
    assert run.data.tags[schema.TAG_STATUS] == "completed"


def test_a_search_trial_resumed_on_a_run_an_earlier_version_opened_continues_that_run(cell_trial, monkeypatch):
    # runs of search trials were keyed by their config alone before; a resumed trial must find its run by
    # its trial id, not open a second one and leave the first running for good. Its checkpoints were
    # labelled by that config alone too, as were those of any other trial of the config: none is salvaged
    from sweeps.trainable import trial_config

    def searched(*args, **kwargs):
        raise AssertionError("searched storage with a label other trials may share")

    monkeypatch.setattr(trainable, "salvaged_state", searched)

    config = cell_trial.config
    config["context"]["kind"] = "search"
    trial = trial_config(config)
    context = config["context"]
    identity = tracking.CellIdentity(sweep="faults", arm="trial trial0", data="synthetic", seed=trial.seed,
                                     cell_id=config_hash(trial), run_name="faults/trial-trial0")
    earlier = tracking.CellRun.open(cell_trial.uri, context["experiment_id"], context["parent_run_id"], identity,
                                    "trial0", {}, {})
    cell_trial()
    runs = tracking.child_runs(tracking.client_for(cell_trial.uri), context["experiment_id"], context["parent_run_id"])
    assert [(r.info.run_id, r.data.tags[schema.TAG_STATUS]) for r in runs] == [(earlier.run_id, "completed")]


def test_train_cell_retry_from_an_older_checkpoint_logs_each_epoch_once(cell_trial):
    first = cell_trial(die_after_epoch=3)
    again = cell_trial(checkpoint=first.checkpoints[1])
    run = _only_run(cell_trial.uri)
    assert again.epochs == [2, 3, 4]
    assert _steps(cell_trial.uri, run.info.run_id) == [1, 2, 3, 4]
    assert run.data.metrics["epochs_done"] == 4


def test_train_cell_logs_the_summaries_of_its_last_epoch_once(cell_trial):
    # every run's summaries (sel_test_acc, best_val_acc, epochs_done, ...) were logged twice at its last step, ~0.1 s
    # apart: MLflow's metric history listed the last epoch twice
    cell_trial()
    run = _only_run(cell_trial.uri)
    client = tracking.client_for(cell_trial.uri)
    for metric in ("sel_test_acc", "best_val_acc", tracking.EPOCH_MARKER):
        assert [m.step for m in client.get_metric_history(run.info.run_id, metric)] == [1, 2, 3, 4], metric
    assert run.data.tags[schema.TAG_STATUS] == "completed"


def test_a_trial_resumed_after_its_last_epoch_logs_the_summaries_of_its_own_history_again(cell_trial):
    first = cell_trial(die_after_epoch=4)   # its last epoch logged and checkpointed; died before completing
    client = tracking.client_for(cell_trial.uri)
    run_id = _only_run(cell_trial.uri).info.run_id
    assert [m.step for m in client.get_metric_history(run_id, "sel_test_acc")] == [1, 2, 3, 4]
    cell_trial(checkpoint=first.checkpoints[4])   # its last epoch is in the run already: not logged again
    assert [m.step for m in client.get_metric_history(run_id, "sel_test_acc")] == [1, 2, 3, 4, 4], \
        "the latest value in MLflow is this attempt's"
    assert _only_run(cell_trial.uri).data.tags[schema.TAG_STATUS] == "completed"


def test_checkpoint_pace_checkpoints_a_small_state_every_epoch_however_slow():
    pace = trainable.CheckpointPace()
    assert pace.due(1, 40, now=0.0), "the first epoch measures the cost"
    pace.taken(0.0, 5.0, state_bytes=trainable.SMALL_STATE_BYTES - 1)   # slow (a loaded machine), but small
    assert all(pace.due(epoch, 40, now=5.1) for epoch in range(2, 41))


def test_checkpoint_pace_checkpoints_a_large_state_once_per_interval_and_always_at_the_last_epoch():
    pace = trainable.CheckpointPace()
    pace.taken(10.0, 11.5, state_bytes=520 * 2**20)          # the paper model's state: 1.5 s
    interval = 1.5 / trainable.CHECKPOINT_SHARE
    assert not pace.due(2, 40, now=11.5 + interval - 1)
    assert pace.due(3, 40, now=11.5 + interval)
    assert pace.due(40, 40, now=12.0), "the last epoch always: the trial's end logs its weights"


def test_train_cell_with_a_large_state_reports_every_epoch_and_checkpoints_the_first_and_last(cell_trial,
                                                                                             monkeypatch):
    monkeypatch.setattr(trainable, "SMALL_STATE_BYTES", 0)      # every state counts as large
    monkeypatch.setattr(trainable, "CHECKPOINT_SHARE", 1e-9)    # and the interval never ends
    fake = cell_trial()
    assert fake.epochs == [1, 2, 3, 4]
    assert sorted(fake.checkpoints) == [1, 4]
    run = _only_run(cell_trial.uri)
    assert _steps(cell_trial.uri, run.info.run_id) == [1, 2, 3, 4]
    assert run.data.tags[schema.TAG_STATUS] == "completed"
    logged = {a.path for a in tracking.client_for(cell_trial.uri).list_artifacts(run.info.run_id, schema.ARTIFACT_MODEL_DIR)}
    assert schema.ARTIFACT_MODEL_STATE in logged
    weights = torch.load(tracking.client_for(cell_trial.uri).download_artifacts(
        run.info.run_id, schema.ARTIFACT_MODEL_STATE, str(cell_trial.storage)), weights_only=True)
    final = engine.load_state(Path(fake.checkpoints[4].path) / trainable.CHECKPOINT_FILE)["model"]
    assert weights.keys() == final.keys() and all(torch.equal(weights[k], final[k]) for k in final), \
        "the logged weights are the last epoch's"


def test_train_cell_killed_between_paced_checkpoints_retrains_from_the_last_one_and_logs_each_epoch_once(
        cell_trial, monkeypatch):
    monkeypatch.setattr(trainable, "SMALL_STATE_BYTES", 0)
    monkeypatch.setattr(trainable, "CHECKPOINT_SHARE", 1e-9)
    first = cell_trial(die_after_epoch=3)
    assert sorted(first.checkpoints) == [1]
    again = cell_trial(checkpoint=first.checkpoints[1])
    assert again.epochs == [2, 3, 4]
    run = _only_run(cell_trial.uri)
    assert _steps(cell_trial.uri, run.info.run_id) == [1, 2, 3, 4]
    assert run.data.tags[schema.TAG_STATUS] == "completed"


def _logged_weights(uri: str, run_id: str, path: str, folder: Path) -> dict:
    return torch.load(tracking.client_for(uri).download_artifacts(run_id, path, str(folder)), weights_only=True)


def _checkpointed_model(checkpoint) -> dict:
    return engine.load_state(Path(checkpoint.path) / trainable.CHECKPOINT_FILE)["model"]


def _same_weights(a, b) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_train_cell_logs_the_weights_of_the_epoch_chosen_on_validation_beside_the_last_epochs(
        cell_trial, validation_scores, tmp_path):
    validation_scores([0.5, 0.9, 0.6, 0.7])
    fake = cell_trial()
    run = _only_run(cell_trial.uri)
    assert run.data.metrics["sel_epoch"] == 2
    selected = _logged_weights(cell_trial.uri, run.info.run_id, schema.ARTIFACT_SELECTED_MODEL_STATE, tmp_path / "s")
    last = _logged_weights(cell_trial.uri, run.info.run_id, schema.ARTIFACT_MODEL_STATE, tmp_path / "l")
    assert _same_weights(selected, _checkpointed_model(fake.checkpoints[2])), "model_selected/: epoch 2's weights"
    assert _same_weights(last, _checkpointed_model(fake.checkpoints[4])), "model/: the last epoch's"
    listed = {a.path for a in tracking.client_for(cell_trial.uri).list_artifacts(
        run.info.run_id, schema.ARTIFACT_SELECTED_MODEL_DIR)}
    assert listed == {schema.ARTIFACT_SELECTED_MODEL_STATE, f"{schema.ARTIFACT_SELECTED_MODEL_DIR}/config.json",
                      schema.ARTIFACT_SELECTED_MODEL_ATTENTION}, "Fig. 3's record: of the weights the table is of"


def test_train_cell_whose_chosen_epoch_is_the_last_logs_its_weights_once_under_model(
        cell_trial, validation_scores, tmp_path):
    validation_scores([0.5, 0.6, 0.7, 0.9])
    fake = cell_trial()
    run = _only_run(cell_trial.uri)
    assert run.data.metrics["sel_epoch"] == 4
    client = tracking.client_for(cell_trial.uri)
    assert not client.list_artifacts(run.info.run_id, schema.ARTIFACT_SELECTED_MODEL_DIR), "no second copy"
    assert {schema.ARTIFACT_MODEL_STATE, schema.ARTIFACT_MODEL_ATTENTION} <= {
        a.path for a in client.list_artifacts(run.info.run_id, schema.ARTIFACT_MODEL_DIR)}, \
        "Fig. 3's record beside the weights the table is of"
    last = _logged_weights(cell_trial.uri, run.info.run_id, schema.ARTIFACT_MODEL_STATE, tmp_path)
    assert _same_weights(last, _checkpointed_model(fake.checkpoints[4]))


def test_train_cell_with_large_states_checkpointed_only_at_the_ends_still_logs_the_chosen_epochs_weights(
        cell_trial, monkeypatch, validation_scores, tmp_path):
    monkeypatch.setattr(trainable, "SMALL_STATE_BYTES", 0)      # checkpoints at epochs 1 and 4 only
    monkeypatch.setattr(trainable, "CHECKPOINT_SHARE", 1e-9)
    validation_scores([0.5, 0.9, 0.6, 0.7])
    fake = cell_trial()
    assert sorted(fake.checkpoints) == [1, 4], "epoch 2 was chosen, but not checkpointed"
    state = engine.load_state(Path(fake.checkpoints[4].path) / trainable.CHECKPOINT_FILE)
    assert state["selected_epoch"] == 2
    run = _only_run(cell_trial.uri)
    selected = _logged_weights(cell_trial.uri, run.info.run_id, schema.ARTIFACT_SELECTED_MODEL_STATE, tmp_path)
    assert _same_weights(selected, state["selected_model"])
    assert not _same_weights(selected, state["model"])


def test_train_cell_retrained_after_its_last_epoch_was_logged_records_the_summary_of_what_it_logs(
        cell_trial, monkeypatch, validation_scores, tmp_path):
    # the last epoch reached MLflow, its checkpoint did not: the retry re-trains epochs 2-4, which are not
    # logged again; on a GPU they differ, and the table's sel_* must be the history's, whose weights are logged
    monkeypatch.setattr(trainable, "SMALL_STATE_BYTES", 0)      # checkpoints at epochs 1 and 4 only
    monkeypatch.setattr(trainable, "CHECKPOINT_SHARE", 1e-9)
    validation_scores([0.5, 0.9, 0.6, 0.7])
    first = cell_trial(die_after_epoch=4)
    validation_scores([0.6, 0.97, 0.7])     # the retry's epochs 2-4, not bit-identical (a GPU)
    cell_trial(checkpoint=first.checkpoints[1])
    run = _only_run(cell_trial.uri)
    history = json.loads(Path(tracking.client_for(cell_trial.uri).download_artifacts(
        run.info.run_id, schema.ARTIFACT_HISTORY, str(tmp_path))).read_text())
    assert history["summary"]["sel_epoch"] == 3
    assert run.data.metrics["sel_epoch"] == 3
    assert run.data.metrics["sel_test_acc"] == history["summary"]["sel_test_acc"]


def test_train_cell_resumed_from_a_checkpoint_without_the_chosen_weights_logs_the_last_and_says_so(
        cell_trial, validation_scores, caplog):
    validation_scores([0.5, 0.9, 0.6, 0.7])
    first = cell_trial(die_after_epoch=3)
    path = Path(first.checkpoints[3].path) / trainable.CHECKPOINT_FILE
    old = {k: v for k, v in engine.load_state(path).items() if k not in ("selected_model", "selected_epoch")}
    engine.save_state(old, path)   # as a version before checkpoints kept them saved it
    validation_scores([0.7])
    with caplog.at_level(logging.WARNING, logger="sweeps.trainable"):
        cell_trial(checkpoint=first.checkpoints[3])
    run = _only_run(cell_trial.uri)
    assert run.data.tags[schema.TAG_STATUS] == "completed"
    assert "the weights of epoch 2, chosen on validation, were not kept" in caplog.text
    client = tracking.client_for(cell_trial.uri)
    assert not client.list_artifacts(run.info.run_id, schema.ARTIFACT_SELECTED_MODEL_DIR)
    assert {schema.ARTIFACT_MODEL_STATE, schema.ARTIFACT_MODEL_ATTENTION} <= {
        a.path for a in client.list_artifacts(run.info.run_id, "model")}, "Fig. 3's record beside the weights it has"


def test_train_cell_truncated_checkpoint_is_not_loaded_the_cell_starts_over(cell_trial, caplog):
    first = cell_trial(die_after_epoch=2)
    state = Path(first.checkpoints[2].path) / trainable.CHECKPOINT_FILE
    state.write_bytes(state.read_bytes()[: state.stat().st_size // 2])
    with pytest.raises(engine.StateError, match=rf"checkpoint {state} cannot be read"):
        engine.load_state(state)
    again = cell_trial(checkpoint=first.checkpoints[2])
    assert again.epochs == [1, 2, 3, 4], "started over from epoch 1"
    assert "starts over from epoch 1" in caplog.text and str(state) in caplog.text
    run = _only_run(cell_trial.uri)
    assert _steps(cell_trial.uri, run.info.run_id) == [1, 2, 3, 4]
    assert run.data.tags[schema.TAG_STATUS] == "completed"


@pytest.mark.parametrize("handed", ["the stand-in", "the path that is gone"])
def test_train_cell_whose_checkpoint_tune_lost_resumes_from_the_newest_one_left_in_storage(cell_trial, caplog,
                                                                                           handed):
    # Tune deleted checkpoint 2 (num_to_keep=1) before it synced the state naming checkpoint 3, and the
    # driver was killed in between: the restored trial is handed the empty stand-in the resume put there
    # (tune_state.newest_checkpoints_where_tune_looks), or, were it missing, a checkpoint that is gone
    experiment = f"{cell_trial.prefix}1795000000"
    first = cell_trial(die_after_epoch=3, experiment=experiment)
    gone = Path(first.checkpoints[3].path).with_name("checkpoint_000001")
    assert not gone.exists()
    if handed == "the stand-in":
        gone.mkdir()
        (gone / trainable.STAND_IN_NOTE).write_text("a stand-in")
    with caplog.at_level(logging.INFO, logger="sweeps.trainable"):
        again = cell_trial(checkpoint=tune.Checkpoint.from_directory(str(gone)), experiment=experiment)
    assert again.epochs == [4], "resumed after epoch 3, not from epoch 1"
    assert "resuming after epoch 3" in caplog.text and "starts over" not in caplog.text
    assert ("was lost before the resume" in caplog.text) == (handed == "the stand-in")
    run = _only_run(cell_trial.uri)
    assert _steps(cell_trial.uri, run.info.run_id) == [1, 2, 3, 4]
    assert run.data.tags[schema.TAG_STATUS] == "completed"


def test_a_search_trial_whose_checkpoint_tune_lost_resumes_from_its_own_newest_one_at_its_own_epoch_count(
        cell_trial):
    cell_trial.config["context"]["kind"] = "search"
    experiment = f"{cell_trial.prefix}1795000000"
    first = cell_trial(die_after_epoch=3, experiment=experiment)
    gone = Path(first.checkpoints[3].path).with_name("checkpoint_000001")
    again = cell_trial(checkpoint=tune.Checkpoint.from_directory(str(gone)), experiment=experiment)
    assert again.epochs == [4], "resumed after epoch 3, not from epoch 1"
    assert [r[schema.STEP_KEY] for r in again.reports] == [4], "the pruner's step: the epochs it has trained"
    assert _steps(cell_trial.uri, _only_run(cell_trial.uri).info.run_id) == [1, 2, 3, 4]


def test_a_search_trial_never_salvages_the_checkpoint_of_another_trial_that_drew_the_same_config(
        cell_trial, monkeypatch):
    cell_trial.config["context"]["kind"] = "search"
    experiment = f"{cell_trial.prefix}1795000000"
    cell_trial(die_after_epoch=3, experiment=experiment)
    monkeypatch.setattr(FakeTune, "get_context", lambda self: SimpleNamespace(get_trial_id=lambda: "trial1"))
    other = cell_trial(experiment=experiment)
    assert other.epochs == [1, 2, 3, 4]


def test_train_cell_started_anew_after_a_failed_restore_resumes_from_its_earlier_experiments_checkpoint(
        cell_trial):
    # a truncated search state made Tuner.restore start the trials over, or run_sweep started a new
    # Tune experiment for the cell: no checkpoint from Tune, the cell's is in another experiment folder
    cell_trial(die_after_epoch=2, experiment=f"{cell_trial.prefix}1795000000")
    again = cell_trial(experiment=f"{cell_trial.prefix}1795000999")
    assert again.epochs == [3, 4]
    assert _steps(cell_trial.uri, _only_run(cell_trial.uri).info.run_id) == [1, 2, 3, 4]


def test_a_restored_trial_whose_storage_folder_moved_salvages_its_checkpoint_from_the_storage_given_now(cell_trial):
    # a restored trial keeps the context of the run that began it: its storage, moved since (another disk,
    # rsync from the cluster's head), held none of its checkpoints, and the cell trained again from epoch 1
    cell_trial(die_after_epoch=2, experiment=f"{cell_trial.prefix}1795000000")
    moved = cell_trial.storage.parent / "moved"
    cell_trial.storage.rename(moved)
    again = cell_trial(storage=moved)
    assert again.epochs == [3, 4]
    assert _steps(cell_trial.uri, _only_run(cell_trial.uri).info.run_id) == [1, 2, 3, 4]


def test_a_cell_never_started_does_not_search_storage_for_checkpoints(cell_trial, monkeypatch):
    # its checkpoints could only follow its MLflow run: a search of hundreds of trials on a shared file
    # system would otherwise read every trial folder's cell.json at each trial's start
    def searched(*args, **kwargs):
        raise AssertionError("searched storage for a cell that has no run yet")

    monkeypatch.setattr(trainable, "salvaged_state", searched)
    assert cell_trial().epochs == [1, 2, 3, 4]


def test_train_cell_never_salvages_another_cells_or_another_invocations_checkpoint(cell_trial):
    other_cell = cell_trial(die_after_epoch=3, experiment=f"{cell_trial.prefix}1795000000")
    label = Path(other_cell.checkpoints[3].path) / trainable.CELL_FILE
    label.write_text(json.dumps({**json.loads(label.read_text()), "cell_id": "0123456789ab"}))
    cell_trial(die_after_epoch=3, experiment="faults-ffffffff-1795000000")   # another invocation's
    again = cell_trial()
    assert again.epochs == [1, 2, 3, 4]


def test_train_cell_skips_an_unreadable_checkpoint_in_storage_for_the_next_newest(cell_trial, caplog):
    cell_trial(die_after_epoch=2, experiment=f"{cell_trial.prefix}1795000000")
    newer = cell_trial(die_after_epoch=3, experiment=f"{cell_trial.prefix}1795000500")
    state = Path(newer.checkpoints[3].path) / trainable.CHECKPOINT_FILE
    state.write_bytes(state.read_bytes()[: state.stat().st_size // 2])
    again = cell_trial()
    assert again.epochs == [3, 4], "resumed from the readable checkpoint of epoch 2"
    assert "skipping a checkpoint left in storage" in caplog.text and str(state) in caplog.text


def test_train_cell_never_salvages_a_checkpoint_saved_for_another_config(cell_trial, caplog):
    # e.g. left by an older version whose config had another key: the cell id matches, the training does not
    first = cell_trial(die_after_epoch=2, experiment=f"{cell_trial.prefix}1795000000")
    path = Path(first.checkpoints[2].path) / trainable.CHECKPOINT_FILE
    state = engine.load_state(path)
    state["config"] = {**state["config"], "optim.lr": state["config"]["optim.lr"] * 10}
    engine.save_state(state, path)
    again = cell_trial()
    assert again.epochs == [1, 2, 3, 4]
    assert "saved for another config; differing keys: optim.lr" in caplog.text


def test_train_cell_does_not_salvage_the_unreadable_checkpoint_tune_handed_it_but_an_older_one(cell_trial, caplog):
    cell_trial(die_after_epoch=2, experiment=f"{cell_trial.prefix}1795000000")
    newer = cell_trial(die_after_epoch=3, experiment=f"{cell_trial.prefix}1795000500")
    state = Path(newer.checkpoints[3].path) / trainable.CHECKPOINT_FILE
    state.write_bytes(state.read_bytes()[: state.stat().st_size // 2])
    again = cell_trial(checkpoint=newer.checkpoints[3])
    assert again.epochs == [3, 4], "resumed from the readable checkpoint of epoch 2"
    assert caplog.text.count(str(state)) == 1, "the unreadable checkpoint is tried once, not again as salvage"


def test_train_cell_resumed_after_its_last_epoch_reports_its_final_metrics_once(cell_trial):
    # died between the last epoch's checkpoint and completing the run: nothing to train, one result for Tune
    first = cell_trial(die_after_epoch=4)
    again = cell_trial(checkpoint=first.checkpoints[4])
    assert again.epochs == [4] and len(again.reports) == 1 and not again.checkpoints
    assert again.reports[0]["test_acc"] == first.reports[-1]["test_acc"]
    run = _only_run(cell_trial.uri)
    assert run.data.tags[schema.TAG_STATUS] == "completed"
    assert _steps(cell_trial.uri, run.info.run_id) == [1, 2, 3, 4]


def test_train_cell_disk_full_at_a_checkpoint_fails_the_trial_and_the_retry_resumes(cell_trial, monkeypatch):
    real_save = engine.save_state   # train_cell imports it when it runs (torch stays out of the driver)

    def full_at_epoch_3(state, path, **kwargs):
        if state["epoch"] == 3:
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return real_save(state, path, **kwargs)

    monkeypatch.setattr(engine, "save_state", full_at_epoch_3)
    with pytest.raises(OSError, match="No space left on device"):  # the trial fails; Tune retries it
        cell_trial()
    monkeypatch.setattr(engine, "save_state", real_save)
    first = cell_trial.fakes[-1]
    assert sorted(first.checkpoints) == [1, 2]
    again = cell_trial(checkpoint=first.checkpoints[2])
    assert again.epochs == [3, 4]
    run = _only_run(cell_trial.uri)
    assert _steps(cell_trial.uri, run.info.run_id) == [1, 2, 3, 4]
    assert run.data.tags[schema.TAG_STATUS] == "completed"


def fail_checkpoint_of_epoch_2(monkeypatch, error: OSError) -> None:
    """FakeTune's report raises `error` where Tune would copy epoch 2's checkpoint into --storage (a full disk)."""
    real_report = FakeTune.report

    def failing(self, metrics, checkpoint=None):
        if checkpoint is not None and metrics["epoch"] == 2:
            raise error
        return real_report(self, metrics, checkpoint)

    monkeypatch.setattr(FakeTune, "report", failing)


def test_train_cell_storage_full_as_tune_copies_a_checkpoint_fails_naming_the_storage(cell_trial, monkeypatch):
    # Ray's copy into storage (pyarrow) says only "Error writing bytes to file. Detail: [errno 28] No space left on
    # device", which `sweeps status` showed as the cell's error, naming no disk
    fail_checkpoint_of_epoch_2(monkeypatch, OSError(
        errno.ENOSPC, "Error writing bytes to file. Detail: [errno 28] No space left on device"))
    with pytest.raises(OSError, match=rf"No space left on device: the checkpoint of epoch 2 \(\d+\.\d MB\) could "
                                      rf"not be written to --storage {cell_trial.storage}; free space there, then "
                                      r"`sweeps resume` continues the sweep") as raised:
        cell_trial()
    assert raised.value.errno == errno.ENOSPC   # an OSError still: Tune retries the trial from its last checkpoint
    assert sorted(cell_trial.fakes[-1].checkpoints) == [1]


def test_a_trial_failed_for_a_full_sqlite_store_names_the_database_and_its_disk(cell_trial, monkeypatch):
    # its error (which `sweeps status` shows, and the driver stops the sweep by) was MLflow's own: "TrackingError:
    # cannot log epoch 5 to MLflow run ...: (raised as a result of Query-invoked autoflush; ...)", naming no disk
    def store_full(self, *args, **kwargs):
        try:
            raise MlflowException("(sqlite3.OperationalError) database or disk is full\n[SQL: INSERT INTO tags]")
        except MlflowException as exc:
            raise tracking.TrackingError(f"cannot log to MLflow run {self.run_id}: (raised as a result of "
                                         "Query-invoked autoflush; consider ...)") from exc

    monkeypatch.setattr(tracking.CellRun, "complete", store_full)
    database = tracking.sqlite_path(cell_trial.uri)
    with pytest.raises(tracking.TrackingError, match=rf"^the MLflow store {database} (is|was) full( when "
                                                     r"written to)? \(its disk: \d+\.\d MB free( now)?; MLflow: "
                                                     r"\(sqlite3\.OperationalError\) database or disk is "
                                                     r"full \[SQL: INSERT INTO tags\]\); free space there, then "
                                                     r"`sweeps resume` continues the sweep") as raised:
        cell_trial()
    full = runner.full_disk_of_trial(_error_file(f"sweeps.tracking.TrackingError: {raised.value}"),
                                     cell_trial.storage, cell_trial.uri)
    assert isinstance(full, runner.StoreFull), "the driver stops the sweep for it"


def test_the_driver_quotes_the_file_a_trial_could_not_write_in_the_stores_folder(tmp_path):
    # a trial's own sentence names the database before MLflow's words: the driver quoted "MLflow: [Errno 28] No space
    # left on device: '.../mlflow.db'", an error no one raised, for a model's file mlartifacts/ had no room for
    storage, store, database = tmp_path / "ray_results", f"sqlite:///{tmp_path / 'mlflow.db'}", tmp_path / "mlflow.db"
    written = tmp_path / "mlartifacts" / "a.npz"
    trials = (f"sweeps.tracking.TrackingError: the MLflow store {database} is full (its disk: 0.0 MB free; MLflow: "
              f"[Errno 28] No space left on device: '/tmp/tmpb8c9np5o/attention.npz' -> '{written}'); free space "
              "there, then `sweeps resume` continues the sweep (completed cells are kept)")
    full = runner.full_disk_of_trial(_error_file(trials), storage, store)
    assert isinstance(full, runner.StoreFull)
    assert f"No space left on device: '{written}'" in str(full) and f"'{database}'" not in str(full), str(full)


def test_rays_sync_failing_on_a_full_storage_is_said_once_in_a_fit(tmp_path):
    # Ray's syncer printed this WARNING, its traceback with it, every ~10 s until the sweep ended
    said: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: said.append(record.getMessage())
    syncer, state = (logging.getLogger(name) for name in runner.SYNC_LOGGERS)
    full = ("Last sync command failed with the following error:\nTraceback (most recent call last):\n  File "
            '"pyarrow/_fs.pyx", line 1649\nOSError: [Errno 28] Error writing bytes to file. Detail: [errno 28] No '
            "space left on device")
    for logger in (syncer, state):
        logger.addHandler(handler)
    try:
        with runner._fitting(tmp_path):
            for _ in range(3):
                syncer.warning(full)
            try:
                raise OSError(errno.ENOSPC, "Error writing bytes to file. Detail: [errno 28] No space left on device")
            except OSError:
                state.error("Saving experiment state to storage failed with exception: ", exc_info=True)
            syncer.warning("Last sync command failed with the following error:\nTimeoutError: a slow disk")
        syncer.warning(full)   # after the fit: Ray's own again
    finally:
        for logger in (syncer, state):
            logger.removeHandler(handler)
    assert said == [full, "Last sync command failed with the following error:\nTimeoutError: a slow disk", full]


def test_a_tune_fit_failing_with_storage_full_is_a_sweep_error_naming_it_and_how_to_continue(tmp_path, monkeypatch):
    # measured: a sweep whose --storage filled up ended, after every trial, in Tune's ResultGrid reading a trial's
    # error.pkl cut short: "_pickle.UnpicklingError: pickle data was truncated", a traceback naming no disk
    import pickle

    usage = shutil.disk_usage(tmp_path)
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage._replace(free=4096))
    with pytest.raises(SweepError, match=rf"^--storage {tmp_path} is full \(0\.0 MB free\); Tune failed "
                                         r"\(UnpicklingError: pickle data was truncated\)\. Free space there, then "
                                         r"`sweeps resume faults --storage x` continues the sweep"):
        with runner._fitting(tmp_path, "sweeps resume faults --storage x"):
            raise pickle.UnpicklingError("pickle data was truncated")


def test_a_full_disk_elsewhere_than_storage_is_not_called_storage_full(tmp_path):
    # Ray's session folder (/tmp/ray) or another disk filling up: an ENOSPC naming a file outside --storage, which
    # has room, was reported as "--storage ... is full (70000.0 MB free)", sending the researcher to the wrong disk
    elsewhere = OSError(errno.ENOSPC, "No space left on device", "/elsewhere/ray/session_1/logs/worker.out")
    with pytest.raises(OSError, match=r"No space left on device: '/elsewhere/ray/"), runner._fitting(tmp_path):
        raise elsewhere
    inside = OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "exp" / "trial" / "error.pkl"))
    with pytest.raises(SweepError, match=rf"^--storage {tmp_path} (is|was) full"), runner._fitting(tmp_path):
        raise inside


def _error_file(message: str, failure: int = 1) -> str:
    """A trial's error file as Tune writes it, its traceback ending in `message`."""
    return (f"Failure # {failure} (occurred at 2026-12-08_01-55-01)\nray::ImplicitFunc.train() (pid=1, ip=192.0.2.2)\n"
            '  File "/x/trainable.py", line 451, in on_epoch\n    tune.report(metrics, checkpoint=checkpoint)\n'
            f"{message}\n")


def test_a_trial_failed_for_a_full_storage_or_store_is_told_apart_from_any_other_failure(tmp_path):
    storage, store = tmp_path / "ray_results", f"sqlite:///{tmp_path / 'mlflow.db'}"   # the default layout
    storage.mkdir()
    checkpoint = (f"OSError: [Errno 28] No space left on device: the checkpoint of epoch 7 (0.4 MB) could not be "
                  f"written to --storage {storage}; free space there, then `sweeps resume` continues the sweep")
    full = runner.full_disk_of_trial(_error_file("ValueError: a bug", 1) + _error_file(checkpoint, 2), storage, store)
    assert isinstance(full, runner.StorageFull), "the storage's, though it lies in the database's folder"
    assert re.fullmatch(rf"--storage {storage} (is full \(\d+\.\d MB free\)|was full when written to "
                        r"\(\d+\.\d MB free now\))", str(full))
    sqlite_full = "sqlalchemy.exc.OperationalError: (sqlite3.OperationalError) database or disk is full"
    full = runner.full_disk_of_trial(_error_file(f"mlflow.exceptions.MlflowException: {sqlite_full}"), storage, store)
    assert isinstance(full, runner.StoreFull)
    assert re.fullmatch(rf"the MLflow store {tmp_path / 'mlflow.db'} (is|was) full( when written to)? \(its disk: "
                        r"\d+\.\d MB free( now)?; MLflow: "
                        r"\(sqlite3\.OperationalError\) database or disk is full\)", str(full))
    artifacts = f"OSError: [Errno 28] No space left on device: '{tmp_path / 'mlartifacts' / '1' / 'model.pt'}'"
    assert isinstance(runner.full_disk_of_trial(_error_file(artifacts), storage, store), runner.StoreFull)
    error = runner.halted_error(full, "sweeps resume x")
    assert isinstance(error, runner.StoreFull) and "`sweeps resume x` continues the sweep" in str(error)
    # not the sweep's disks: a node's /tmp (another node may have room), a server's store, any other error
    for message, uri in ((checkpoint.replace(str(storage), "/elsewhere/ray_results"), store),
                         ("OSError: [Errno 28] No space left on device: '/tmp/ray/session_1/x'", store),
                         (f"MlflowException: {sqlite_full}", "http://127.0.0.1:5000"),
                         (checkpoint.replace("OSError: [Errno 28] No space left on device", "ValueError: a bug")
                          .replace("free space", "room"), store)):
        assert runner.full_disk_of_trial(_error_file(message), storage, uri) is None, message


def _trainable_full_at_epoch_2(tmp_path, storage, epochs: int, on_start=lambda: None, at_epoch_2=lambda: None):
    """A Tune trainable of `epochs` epochs, each reported with a checkpoint, continuing from its last one, whose
    epoch 2 fails on a full --storage (as the trainable's own error says it) until tmp_path/freed exists; then
    `at_epoch_2` runs (a fault of the trial's own). `on_start` runs as each attempt starts."""
    def trainable(config):
        on_start()
        start = 0
        if (checkpoint := tune.get_checkpoint()) is not None:
            start = json.loads((Path(checkpoint.path) / "epoch.json").read_text())["epoch"]
        for epoch in range(start + 1, epochs + 1):
            if epoch == 2 and not (tmp_path / "freed").exists():
                raise OSError(errno.ENOSPC, f"No space left on device: the checkpoint of epoch {epoch} (0.4 MB) could "
                                            f"not be written to --storage {storage}; free space there")
            if epoch == 2:
                at_epoch_2()
            folder = tmp_path / f"state-{epoch}"
            folder.mkdir(exist_ok=True)
            (folder / "epoch.json").write_text(json.dumps({"epoch": epoch}))
            tune.report({"val_acc": epoch / 10, "epoch": epoch}, checkpoint=tune.Checkpoint.from_directory(folder))

    return trainable


def _full_run_config(storage, max_failures: int):
    """The RunConfig of a one-trial fit into `storage` with the driver's SweepCallback, which stops a full disk's."""
    callback = runner.SweepCallback("sqlite:///unused.db", total=1, metric="val_acc", mode="max",
                                    storage=str(storage))
    return tune.RunConfig(name="full", storage_path=str(storage), callbacks=[callback],
                          failure_config=tune.FailureConfig(max_failures=max_failures))


@pytest.mark.slow
def test_a_trial_failed_for_a_full_storage_stops_the_sweep_at_once_and_a_resume_continues_it(ray_local, tmp_path):
    # each retry (--max-failures, 2 by default) re-trained an epoch or more, then failed on the same full disk; the
    # other trials went on to fail on it too. Tune cannot be told not to retry one error: the driver stops the fit

    attempts, storage = tmp_path / "attempts", tmp_path / "results"
    storage.mkdir()

    def attempt():
        with attempts.open("a") as log_file:
            log_file.write("attempt\n")

    trainable = _trainable_full_at_epoch_2(tmp_path, storage, epochs=3, on_start=attempt)
    run_config = _full_run_config(storage, max_failures=2)
    with runner._fitting(storage, "sweeps resume x"):
        grid = tune.Tuner(trainable, param_space={}, run_config=run_config).fit()
        interrupted, signal_received, halt = stops.was_interrupted(grid), stops.stop_received(), stops.halted()
    assert attempts.read_text().count("attempt") == 1, "not retried onto the full disk"
    assert interrupted and signal_received is None, "stopped as Ctrl-C stops, yet no signal to exit by"
    assert isinstance(halt, runner.StorageFull) and re.match(rf"--storage {storage} (is|was) full", str(halt))
    assert "`sweeps resume x` continues the sweep" in str(runner.halted_error(halt, "sweeps resume x"))
    (tmp_path / "freed").touch()
    with runner._fitting(storage, "sweeps resume x"):
        grid = runner.restore_tuner(str(storage / "full"), trainable, storage=str(storage)).fit()
    assert not grid.errors and grid[0].metrics["epoch"] == 3
    assert attempts.read_text().count("attempt") == 2, "continued from its checkpoint of epoch 1"


def test_a_full_disk_the_sweep_stopped_for_spends_none_of_the_trials_retries(ray_local, tmp_path):
    # Tune counted the failure in the state it saved: a resumed trial had a retry fewer for an error of its own
    # (--max-failures 1: none at all), as many fewer as the disk had filled up
    storage, bug = tmp_path / "results", tmp_path / "bug"
    storage.mkdir()

    def a_bug_once():
        if not bug.exists():
            bug.touch()
            raise ValueError("a bug, once")

    trainable = _trainable_full_at_epoch_2(tmp_path, storage, epochs=2, at_epoch_2=a_bug_once)
    run_config = _full_run_config(storage, max_failures=1)
    with runner._fitting(storage, "sweeps resume x"):
        tune.Tuner(trainable, param_space={}, run_config=run_config).fit()
        assert isinstance(stops.halted(), runner.StorageFull)
    (tmp_path / "freed").touch()
    with runner._fitting(storage, "sweeps resume x"):
        grid = runner.restore_tuner(str(storage / "full"), trainable, storage=str(storage), max_failures=1).fit()
    assert bug.exists() and not grid.errors and grid[0].metrics["epoch"] == 2, "retried once for its own error"


def test_a_fit_halted_for_a_full_disk_reads_as_interrupted_though_every_trial_it_made_had_ended(tmp_path):
    # a halt at a trial's last failure (on_trial_error) left every trial Tune had made ended (a grid's cells not
    # generated yet are no trials; a restored ResultGrid calls the others terminated): the driver read the fit as
    # not interrupted and started the cells left in a new Tune experiment onto the full disk, retagging the parent's
    # experiment over the one that holds the unfinished cells
    class Grid(list):
        num_terminated, num_errors = 1, 1

    ended = Grid([object(), object()])
    with runner._fitting(tmp_path):
        tunes = signal.getsignal(signal.SIGUSR1)
        signal.signal(signal.SIGUSR1, lambda signum, frame: None)   # as a fit installs Tune's stop
        try:
            stops.record_stops_of_this_fit()
            assert not stops.was_interrupted(ended)
            assert stops.halt_fit(runner.StorageFull(f"--storage {tmp_path} is full (0.1 MB free)"))
            assert stops.was_interrupted(ended) and stops.stop_received() is None
        finally:
            signal.signal(signal.SIGUSR1, tunes)
    with runner._fitting(tmp_path):
        assert not stops.was_interrupted(ended), "the next fit's own"


def test_a_tune_fit_failing_with_room_in_storage_raises_its_own_error_unless_it_is_a_full_disks(tmp_path):
    with pytest.raises(ValueError, match="a bug"), runner._fitting(tmp_path):
        raise ValueError("a bug")
    with pytest.raises(SweepError, match=rf"^--storage {tmp_path} (is full \(\d+\.\d MB free\)|was full when "
                                         r"written to \(\d+\.\d MB free now\)); Tune failed "
                                         r"\(OSError: \[Errno 28\] No space left on device\)"):
        with runner._fitting(tmp_path):   # another disk of the same folder's (a mount below it), or freed since
            raise OSError(errno.ENOSPC, "No space left on device")


def test_storage_is_called_full_below_64_mb_free_as_a_sweep_ends_failed(tmp_path, monkeypatch):
    usage = shutil.disk_usage(tmp_path)
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage._replace(free=runner.STORAGE_FULL_BYTES - 1))
    assert runner.storage_full(tmp_path) == f"--storage {tmp_path} is full (64.0 MB free)"
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage._replace(free=runner.STORAGE_FULL_BYTES))
    assert runner.storage_full(tmp_path) is None


def test_a_store_away_as_the_trials_end_is_named_as_a_locked_database_or_an_unreachable_server(tmp_path):
    # a sqlite store locked by another process was told of as a server: "what the server took ... once it answers"
    database = tmp_path / "mlflow.db"
    text = runner.away_as_trials_ended(f"sqlite:///{database}", 600, "sweeps run x")
    assert text.startswith(f"the MLflow database {database} has been locked by another process for 600 s")
    assert "their runs hold what the database took. `sweeps run x` once it is let go: it records" in text
    text = runner.away_as_trials_ended("http://127.0.0.1:9", 600, "sweeps run x")
    assert text.startswith("MLflow tracking server http://127.0.0.1:9 has been unreachable for 600 s")
    assert "their runs hold what the server took. `sweeps run x` once it answers: it records" in text


def test_storage_is_said_to_have_failed_trials_only_where_a_sweep_ends_with_failures(tmp_path, monkeypatch):
    # a sweep stopped by Ctrl-C with nothing failed was told "trials that could not write their checkpoints there
    # failed" whenever --storage had under 64 MB free
    usage = shutil.disk_usage(tmp_path)
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage._replace(free=runner.STORAGE_FULL_BYTES - 1))
    full = f"--storage {tmp_path} is full (64.0 MB free)"
    assert runner.failed_for_full_storage("interrupted", {"completed": 1, "running": 1}, 0, tmp_path) is None
    assert runner.failed_for_full_storage("interrupted", {"failed": 1}, 0, tmp_path) == full
    assert runner.failed_for_full_storage("failed", {"completed": 2}, 1, tmp_path) == full   # an errored trial
    assert runner.failed_for_full_storage("completed", {"failed": 1}, 1, tmp_path) is None
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage)
    assert runner.failed_for_full_storage("failed", {"failed": 1}, 1, tmp_path) is None or usage.free < (64 << 20)


def test_a_sweep_whose_sqlite_store_fills_up_ends_in_an_error_naming_it_and_how_to_continue(spec_file, store, tmp_path,
                                                                                          monkeypatch):
    # measured: a store on a disk that filled up mid-sweep ended, after every trial, in MLflow's traceback of
    # "(sqlite3.OperationalError) database or disk is full" as the parent run was marked, naming no file
    prepared = prepare(str(spec_file), RunOptions(tracking_uri=store, storage=str(tmp_path / "results")))

    def store_full(*args):
        raise MlflowException("(sqlite3.OperationalError) database or disk is full\n[SQL: UPDATE tags SET value=?]")

    monkeypatch.setattr(runner, "_run_sweep", store_full)
    database = tracking.sqlite_path(store)
    with pytest.raises(tracking.TrackingError, match=rf"^the MLflow store {database} (is|was) full( when "
                                                     r"written to)? \(its disk: \d+\.\d MB free( now)?; MLflow: "
                                                     r"\(sqlite3\.OperationalError\) database or disk is "
                                                     r"full \[SQL: UPDATE tags SET value=\?\]\)\. Free space there.*"
                                                     rf"then `sweeps resume {spec_file} --storage .*` continues"):
        run_sweep(prepared)


def test_an_error_raised_from_none_over_a_full_disk_in_the_stores_folder_is_not_the_stores(tmp_path):
    # run from the home folder, ./mlflow.db lies above the decoded-data cache (~/.cache/transfer-sweeps): the cache's
    # "no room for the decoded data ... --set data.cache_dir=PATH", raised from None over fallocate's ENOSPC, was
    # re-worded as "the MLflow store ~/mlflow.db is full ... move the database"
    from transfer_core.data.cache import no_room

    uri, cache = f"sqlite:///{tmp_path / 'mlflow.db'}", tmp_path / ".cache" / "transfer-sweeps" / "abc"
    cache.mkdir(parents=True)
    try:
        try:
            raise OSError(errno.ENOSPC, "No space left on device", str(cache / "train.npy"))
        except OSError as err:
            raise no_room(cache, 2**30, f"train images; {err.strerror}") from None
    except Exception as exc:   # noqa: BLE001
        raised = exc
    assert tracking.full_store(uri, raised) is None
    assert tracking.full_store(uri, OSError(errno.ENOSPC, "No space left on device", str(cache / "train.npy")))


def test_a_full_storage_beside_the_store_is_named_as_the_storage_not_the_store(spec_file, store, tmp_path,
                                                                                monkeypatch):
    # the default layout (./mlflow.db, ./ray_results): the fit's "--storage ... is full" error, raised from an
    # ENOSPC naming a file in ray_results/, was re-worded as "the MLflow store ./mlflow.db is full (...; MLflow:
    # --storage ... is full ...)", advising to move the database, which frees nothing in --storage
    assert store == f"sqlite:///{tmp_path / 'mlflow.db'}"
    prepared = prepare(str(spec_file), RunOptions(tracking_uri=store, storage=str(tmp_path / "ray_results")))

    def storage_fills(*args):
        with runner._fitting(prepared.storage_path, "sweeps resume x"):
            raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "ray_results" / "t" / "error.pkl"))

    monkeypatch.setattr(runner, "_run_sweep", storage_fills)
    with pytest.raises(SweepError, match=rf"^--storage {tmp_path / 'ray_results'} (is|was) full"):
        run_sweep(prepared)


def test_a_full_disk_elsewhere_is_not_called_the_stores():
    uri = "sqlite:////data/mlflow.db"
    assert tracking.full_store(uri, OSError(errno.ENOSPC, "No space left on device", "/scratch/x")) is None
    assert tracking.full_store(uri, MlflowException("database is locked")) is None
    assert tracking.full_store("http://127.0.0.1:5000", MlflowException("database or disk is full")) is None
    assert tracking.full_store(uri, OSError(errno.ENOSPC, "No space left on device", "/tmp/a", None,
                                            "/data/mlartifacts/x/model.pt")).startswith("the MLflow store /data/")


ACTOR_DIED = """Failure # 1 (occurred at 2026-12-07_22-52-32)
The actor died unexpectedly before finishing this task.
\tclass_name: ImplicitFunc
\tactor_id: 4a8a92ef7adc8a59a829d81c01000000
\tpid: 28497
\tnamespace: b0517424-2b7e-458e-ab9e-b63ed31d7934
\tip: 192.0.2.2
The actor is dead because its worker process has died. Worker exit type: SYSTEM_ERROR Worker exit detail: Worker \
unexpectedly exits with a connection error code 2. End of file. Some common causes include: (1) the process was killed \
by the OOM killer due to high memory usage, (2) ray stop --force was called, or (3) the worker crashed unexpectedly \
due to SIGSEGV or another unexpected error.
"""   # the error file of a trial whose worker was sent SIGKILL mid-epoch (as the kernel's OOM killer does), verbatim


def test_a_trial_that_raised_an_error_quoting_a_dead_actor_is_recorded_by_its_own_error():
    # the killed-worker text was chosen wherever Ray's phrase stood in the traceback: a trial that raised a normal
    # error whose message (or a source line shown) quoted it was recorded as killed, its own error dropped
    raised = ("Failure # 2 (occurred at 2026-12-07_22-52-32)\nray::ImplicitFunc.train() (pid=1, ip=192.0.2.2)\n"
              '  File "/x/trainable.py", line 9, in train_cell\n    raise RuntimeError(text)\n'
              "RuntimeError: the data loader's worker stopped: The actor died unexpectedly before finishing this "
              "task. (a message it quoted)\n")
    assert marks.error_message(raised).startswith("RuntimeError: the data loader's worker stopped")


def test_a_trial_whose_worker_was_killed_is_recorded_as_killed_first_not_by_its_actor_ids():
    # `sweeps status` shows an error's first 200 characters: they were "Failure # 1 (occurred at ...) The actor died
    # unexpectedly before finishing this task. class_name: ImplicitFunc actor_id: 4a8a... pid: 28497 namespace: ..."
    error = marks.error_message(ACTOR_DIED)
    assert error.startswith("ActorDiedError: the trial's worker process (pid 28497 on 192.0.2.2) died without raising "
                            "an error: killed (the out-of-memory killer, kill -9) or crashed; its cell continues from "
                            "its last checkpoint")
    assert error.endswith("Ray: SYSTEM_ERROR, Worker unexpectedly exits with a connection error code 2. End of file.")


def test_train_cell_of_a_completed_cell_reports_it_and_trains_nothing(cell_trial):
    first = cell_trial()
    done = _only_run(cell_trial.uri)
    again = cell_trial(checkpoint=first.checkpoints[2])  # Tune restored it as RUNNING after a driver kill
    assert again.epochs == [] and len(again.reports) == 1
    assert again.reports[0]["sel_test_acc"] == done.data.metrics["sel_test_acc"]
    assert again.reports[0][schema.FINAL_STEP_KEY] == 0, "a search's pruner must not stop a finished trial here"
    assert first.reports[-1][schema.FINAL_STEP_KEY] == 4 and first.reports[0][schema.FINAL_STEP_KEY] == 4
    after = _only_run(cell_trial.uri)
    assert after.info.end_time == done.info.end_time
    assert _steps(cell_trial.uri, after.info.run_id) == [1, 2, 3, 4]


def test_a_diverged_epoch_reaches_tune_without_scores_also_when_its_completed_cell_is_restored(cell_trial):
    # NaN weights predict class 0 for every image: that class's share of a split reached Tune as the epoch's
    # accuracies, and a search's Optuna took the trial's val_acc as its value (COMPLETE) and learnt from it
    cell_trial.config["cell"]["config"].update({"optim.optimizer": "sgd", "optim.lr": 1e30})
    first = cell_trial()
    (report,) = first.reports
    assert (report["epoch"], report[schema.FINAL_STEP_KEY]) == (1, 1) and math.isnan(report["val_loss"])
    assert all(math.isnan(report[key]) for key in trainable.EPOCH_SCORES), report
    again = cell_trial(checkpoint=first.checkpoints[1])  # Tune restored it as RUNNING after a driver kill
    assert again.epochs == [] and all(math.isnan(again.reports[0][key]) for key in trainable.EPOCH_SCORES)


def test_a_cell_whose_train_loss_goes_nan_records_the_epoch_it_diverged_at_and_scores_it_not(cell_trial, monkeypatch):
    # evaluation losses finite: its epoch was scored, and the table and curves read it as trained to the end
    from transfer_core import engine

    real, epochs = engine.train_one_epoch, []

    def nan_loss_in_the_second(*args, **kwargs):
        epochs.append(1)
        out = real(*args, **kwargs)
        return {**out, "train_loss": float("inf")} if len(epochs) == 2 else out

    monkeypatch.setattr(engine, "train_one_epoch", nan_loss_in_the_second)
    first = cell_trial()
    report = first.reports[-1]
    assert (report["epoch"], report[schema.FINAL_STEP_KEY], report[schema.DIVERGED_EPOCH_KEY]) == (2, 2, 2)
    assert all(math.isnan(report[key]) for key in trainable.EPOCH_SCORES), report
    run = _only_run(cell_trial.uri)
    assert run.data.tags[schema.TAG_STATUS] == schema.STATUS_COMPLETED
    assert run.data.metrics[schema.DIVERGED_EPOCH_KEY] == 2 and run.data.metrics["epochs_done"] == 2
    assert math.isnan(run.data.metrics["final_test_acc"]) and run.data.metrics["sel_epoch"] == 1
    again = cell_trial(checkpoint=first.checkpoints[2])   # restored after a driver kill: reported as recorded
    assert again.epochs == [] and again.reports[0][schema.DIVERGED_EPOCH_KEY] == 2


# --------------------------------------------------------------------------- EpochLog (buffer policy)

def _cell_run(uri: str) -> tracking.CellRun:
    client = tracking.client_for(uri)
    experiment_id = tracking.ensure_experiment(client, "demo", uri)
    parent = tracking.start_parent(client, experiment_id, "demo", {})
    cell = tracking.CellIdentity("demo", "A", "synthetic", 0, "c1", "demo/A/seed0")
    return tracking.CellRun.open(uri, experiment_id, parent, cell, "t1", {}, {})


def _epoch(n: int) -> tuple[dict, dict]:
    return {"epoch": n, "test_acc": n / 10}, {"epochs_done": n, "sel_test_acc": n / 10}


def test_epoch_log_keeps_epochs_while_the_store_fails_and_logs_them_in_order_after(store, monkeypatch):
    uri = store
    run = _cell_run(uri)
    epochs = tracking.EpochLog(run, uri)
    real = run.log_epoch

    def down(*args, **kwargs):
        raise MlflowException("API request to http://127.0.0.1:5000 failed with exception Connection refused")

    monkeypatch.setattr(run, "log_epoch", down)
    for n in (1, 2, 3):
        epochs.add(*_epoch(n), timestamp_ms=1000 * n)
        assert epochs.flush() is False
    assert _steps(uri, run.run_id) == []
    monkeypatch.setattr(run, "log_epoch", real)
    epochs.add(*_epoch(4))
    assert epochs.flush() is True and epochs.pending == []
    history = _history(uri, run.run_id)
    assert [m.step for m in history] == [1, 2, 3, 4]
    assert [m.timestamp for m in history[:3]] == [1000, 2000, 3000], "stamped when measured"


def test_epoch_log_logs_a_re_trained_epoch_again_only_where_it_was_measured_otherwise(store):
    # a GPU's re-training (or a data set changed under --accept-changed-data) measures the epochs after the
    # checkpoint otherwise: the curves kept the killed attempt's values while sel_epoch and model_selected/
    # came from the re-training
    uri = store
    run = _cell_run(uri)
    first = tracking.EpochLog(run, uri)
    for n, acc in ((1, 0.30), (2, 0.90), (3, 0.40)):
        first.add({"epoch": n, "val_acc": acc, "test_acc": acc, "epoch_time_s": n}, {"epochs_done": n}, 1000 * n)
    assert first.flush()
    resumed = tracking.EpochLog(run, uri)   # from epoch 1's checkpoint; epoch 1's timing differs, not its scores
    for n, acc in ((1, 0.30), (2, 0.55), (3, 0.80), (4, 0.60)):
        resumed.add({"epoch": n, "val_acc": acc, "test_acc": acc, "epoch_time_s": 9 * n}, {"epochs_done": n},
                    10_000 + 1000 * n)
    assert resumed.flush()
    assert _steps(uri, run.run_id) == [1, 2, 2, 3, 3, 4], "epoch 1, measured as before, is not logged twice"
    latest = tracking.latest_per_step(MlflowClient(uri).get_metric_history(run.run_id, "val_acc"))
    assert latest == [(1, 0.30), (2, 0.55), (3, 0.80), (4, 0.60)]


def test_epoch_log_call_cut_off_by_the_server_going_away_is_not_retried_the_epoch_stays_queued(
        store, monkeypatch):
    # the server answered /health, then died before the epoch's call: MLflow's own retries would hold the
    # trial for minutes; one attempt leaves the epoch to the next epoch's flush
    uri = store
    run = _cell_run(uri)
    epochs = tracking.EpochLog(run, uri)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    run.client = MlflowClient(f"http://127.0.0.1:{port}")
    monkeypatch.setattr(tracking, "reachable", lambda uri: True)
    monkeypatch.setenv(tracking.RETRIES_ENV, "7")
    retries_during_call = []
    real_log = tracking.CellRun.log_epoch

    def spy(self, *args, **kwargs):
        retries_during_call.append(os.environ.get(tracking.RETRIES_ENV))
        return real_log(self, *args, **kwargs)

    monkeypatch.setattr(tracking.CellRun, "log_epoch", spy)
    epochs.add(*_epoch(1))
    assert epochs.flush() is False and len(epochs.pending) == 1
    assert retries_during_call == ["0"] and os.environ[tracking.RETRIES_ENV] == "7", "the user's setting is back"


def test_epoch_log_final_flush_waits_then_names_the_unreachable_server(store):
    uri = store
    epochs = tracking.EpochLog(_cell_run(uri), uri)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    epochs.uri = f"http://127.0.0.1:{port}"
    epochs.add(*_epoch(1))
    assert epochs.flush() is False
    with pytest.raises(tracking.TrackingError,
                       match=rf"MLflow tracking server http://127.0.0.1:{port} has been unreachable for 0.5 s .*; "
                             r"the trial fails, and is retried from its checkpoint if --max-failures"):
        epochs.flush(wait_s=0.5)
    assert len(epochs.pending) == 1


# --------------------------------------------------------------------------- trial folders

def test_a_trials_folder_names_its_cell_by_arm_data_and_seed_and_is_unique_by_its_trial_id():
    # Tune's default, train_cell_<id>_1_cell=config_model_stem_small_..., told no cell's folder from another's
    import pickle

    from ray.tune.experiment import Trial

    from sweeps.tune_state import trial_dirname

    def trial(arm, data, seed, trial_id="3fa2b_00001"):
        config = {"context": {"kind": "table"}, "cell": {"arm": arm, "data": data, "config": {"seed": seed}}}
        return Trial("__fake", config=config, trial_id=trial_id, stub=True, trial_dirname_creator=trial_dirname,
                     trial_name_creator=trial_dirname)

    assert trial("MAD", "rafdb", 1)._generate_dirname() == "MAD_rafdb_seed1_3fa2b_00001"
    assert str(trial("MAD", "rafdb", 1)) == "MAD_rafdb_seed1_3fa2b_00001", "Tune's messages name it so too"
    assert trial("+ MAD (p=0.6)", "synthetic", 0).custom_dirname == "+_MAD_p=0.6_synthetic_seed0_3fa2b_00001"
    assert trial("Épaisseur/∆ 10⁻³", "synthetic", 0).custom_dirname == "Epaisseur_10_3_synthetic_seed0_3fa2b_00001"
    assert len(trial("x" * 300, "synthetic", 0).custom_dirname) == len("x" * 40 + "_synthetic_seed0_3fa2b_00001")
    assert trial("", "synthetic", 0, "9c1d0_00004").custom_dirname == "trial_synthetic_seed0_9c1d0_00004", \
        "a search's trial, whose arm is its trial id"
    assert trial("MAD", "rafdb", 1, "3fa2b_00002").custom_dirname != trial("MAD", "rafdb", 1).custom_dirname
    # Tune keeps it in the experiment's saved state, which a continuation loads: by reference, not by value
    assert pickle.loads(pickle.dumps(trial_dirname)) is trial_dirname
    assert trial_dirname(SimpleNamespace(trial_id="3fa2b_00001", config=None)) == "trial_3fa2b_00001"


# --------------------------------------------------------------------------- a resume whose Tune state is cut short

def _sweep_then_b_marked_unfinished(spec_file: Path, store: str, tmp_path: Path, max_failures: int):
    """A 3-epoch sweep of both cells run to the end, then cell B's MLflow run marked running again, as if
    the driver had died while it trained: (options, the first outcome, B's run as it was)."""
    options = RunOptions(tracking_uri=store, storage=str(tmp_path / "results"), cpus_per_trial=1,
                         max_failures=max_failures, overrides={"optim.epochs": 3})
    first = run_sweep(prepare(str(spec_file), options))
    unfinished = _children(store)["faults/B/seed0"]
    tracking.set_tags(MlflowClient(store), unfinished.info.run_id, {schema.TAG_STATUS: schema.STATUS_RUNNING})
    return options, first, unfinished


@pytest.mark.slow
def test_resume_with_tunes_saved_state_cut_short_runs_the_unfinished_cell_from_its_checkpoint(
        ray_local, even_spec_file, store, tmp_path, caplog):
    # a driver killed while Tune copied its search state into storage (not atomic) leaves it truncated: a
    # restore from it would restart the experiment with an empty config, whose trial fails every retry
    options, first, unfinished = _sweep_then_b_marked_unfinished(even_spec_file, store, tmp_path, max_failures=0)
    experiment = Path(first.tune_path)
    assert unreadable_tune_state(experiment) is None, "a whole state reads as whole"
    state = next(experiment.glob("basic-variant-state-*.json"))
    state.write_bytes(state.read_bytes()[: state.stat().st_size // 2])
    assert "basic-variant-state" in unreadable_tune_state(experiment)

    with caplog.at_level(logging.INFO, logger="sweeps"):
        again = run_sweep(prepare(str(even_spec_file), options))
    assert again.status == "completed" and again.parent_run_id == first.parent_run_id
    assert f"the saved state of Tune experiment {experiment} cannot be read" in caplog.text
    assert again.tune_path != first.tune_path
    assert "Trial task failed" not in caplog.text and not list(Path(options.storage).glob("**/error.*"))
    assert not list(Path(again.tune_path).glob("*/checkpoint_*")), "no epoch trained again: resumed after epoch 3"
    run = _children(store)["faults/B/seed0"]
    assert run.info.run_id == unfinished.info.run_id and run.data.tags[schema.TAG_STATUS] == "completed"
    assert _steps(store, run.info.run_id) == [1, 2, 3]
    # completed in the new experiment, B's checkpoints in the old one are dead weight (520 MB each at paper scale),
    # deleted as B completes; A's, completed there, as the invocation completes: the old one is never restored again
    assert f"cell {unfinished.data.tags[schema.TAG_CELL_ID]} completed in Tune experiment" in caplog.text
    assert f"invocation {first.parent_run_id} completed: 1 checkpoint of its completed cells" in caplog.text
    assert not list(experiment.glob("*/checkpoint_*")), "neither B's nor A's are left in the old experiment"


@pytest.mark.slow
def test_an_experiment_begun_with_tunes_own_trial_folder_names_is_restored_and_its_trials_keep_their_folders(
        ray_local, even_spec_file, store, tmp_path, monkeypatch, caplog):
    # versions before named trial folders train_cell_<id>_..._cell=config_...: a continuation restores such an
    # experiment, puts a trial's newest checkpoint where Tune's state looks in its folder of that name, and
    # trains nothing again
    named_so = runner.TRIAL_NAMING
    monkeypatch.setattr(runner, "TRIAL_NAMING", {})
    options, first, unfinished = _sweep_then_b_marked_unfinished(even_spec_file, store, tmp_path, max_failures=1)
    monkeypatch.setattr(runner, "TRIAL_NAMING", named_so)
    experiment = Path(first.tune_path)
    folders = sorted(folder.name for folder in experiment.iterdir() if folder.is_dir())
    assert len(folders) == 2 and all(name.startswith("train_cell_") for name in folders), folders
    state_file = next(experiment.glob("experiment_state-*.json"))
    state = json.loads(state_file.read_text())
    for entry in state["trial_data"]:
        meta = json.loads(entry[0])
        folder = experiment / meta["relative_logdir"]
        if json.loads((folder / "checkpoint_000002" / trainable.CELL_FILE).read_text())["cell_id"] == \
                unfinished.data.tags[schema.TAG_CELL_ID]:
            entry[0] = json.dumps({**meta, "status": "PAUSED"})   # the driver died while it ran
            named = folder / "checkpoint_000002"
            named.rename(named.with_name("checkpoint_000003"))   # and Tune's state names one that is gone
    state_file.write_text(json.dumps(state))

    caplog.set_level(logging.INFO, logger="sweeps.tune_state")
    again = run_sweep(prepare(str(even_spec_file), options))
    assert again.status == "completed" and again.tune_path == first.tune_path, "restored, not begun anew"
    assert "checkpoint_000003 (after epoch 3) takes its place" in caplog.text
    assert sorted(folder.name for folder in experiment.iterdir() if folder.is_dir()) == folders
    assert not list(Path(options.storage).glob("**/error.*"))
    run = _children(store)["faults/B/seed0"]
    assert run.info.run_id == unfinished.info.run_id and run.data.tags[schema.TAG_STATUS] == "completed"
    assert _steps(store, run.info.run_id) == [1, 2, 3], "each epoch logged once: none trained again"


@pytest.mark.slow
@pytest.mark.parametrize("left", ["gone, a newer one in its folder", "older than one in its folder",
                                  "gone, none in its folder"])
def test_resume_puts_the_trials_newest_checkpoint_where_tunes_state_looks(
        ray_local, even_spec_file, store, tmp_path, caplog, left):
    # Tune deletes a trial's older checkpoint (num_to_keep=1) before it saves the state naming the newer one,
    # and a stopped trial's worker may write a checkpoint after the state was saved: the state a resume
    # finds can name a checkpoint that is gone (Tune's restore then fails the trial on every retry: "does
    # not exist on storage anymore") or one older than the trial's newest
    options, first, unfinished = _sweep_then_b_marked_unfinished(even_spec_file, store, tmp_path, max_failures=1)
    experiment = Path(first.tune_path)
    state_file = next(experiment.glob("experiment_state-*.json"))
    state = json.loads(state_file.read_text())
    folders = {}
    for entry in state["trial_data"]:
        meta = json.loads(entry[0])
        cell = json.loads(next(experiment.glob(f"*{meta['trial_id']}*/checkpoint_000002/{trainable.CELL_FILE}"))
                          .read_text())["cell_id"]
        folders[cell] = next(experiment.glob(f"*{meta['trial_id']}*"))
        if cell == unfinished.data.tags[schema.TAG_CELL_ID]:
            entry[0] = json.dumps({**meta, "status": "PAUSED"})   # the driver died while it ran
    state_file.write_text(json.dumps(state))
    named = folders[unfinished.data.tags[schema.TAG_CELL_ID]] / "checkpoint_000002"   # after epoch 3, the last
    if left == "gone, a newer one in its folder":
        named.rename(named.with_name("checkpoint_000003"))
    elif left == "older than one in its folder":
        shutil.copytree(named, named.with_name("checkpoint_000003"))
        label = named / trainable.CELL_FILE   # the one the state names says it is of epoch 2
        label.write_text(json.dumps({**json.loads(label.read_text()), "epoch": 2}))
    else:
        shutil.rmtree(named)
    finished = folders[_children(store)["faults/A/seed0"].data.tags[schema.TAG_CELL_ID]] / "checkpoint_000002"
    shutil.rmtree(finished)   # a finished trial is not restored: its checkpoint is left as it is

    caplog.set_level(logging.INFO, logger="sweeps.runner")
    caplog.set_level(logging.INFO, logger="sweeps.tune_state")
    again = run_sweep(prepare(str(even_spec_file), options))
    assert again.status == "completed" and again.tune_path == first.tune_path
    assert "Trial task failed" not in caplog.text and not list(Path(options.storage).glob("**/error.*"))
    assert not finished.exists()
    run = _children(store)["faults/B/seed0"]
    assert run.info.run_id == unfinished.info.run_id and run.data.tags[schema.TAG_STATUS] == "completed"
    assert _steps(store, run.info.run_id) == [1, 2, 3], "each epoch logged once"
    kept = sorted(c.name.split("-")[0] for c in named.parent.glob("checkpoint_*"))
    if left == "gone, none in its folder":
        assert "none is left in its folder" in caplog.text
        assert kept == ["checkpoint_000005"], "started over: 3 epochs, and Tune let the stand-in go with the rest"
    else:
        assert "checkpoint_000003 (after epoch 3) takes its place" in caplog.text
        level, = {r.levelname for r in caplog.records if "takes its place" in r.getMessage()}
        assert level == ("INFO" if left == "older than one in its folder" else "WARNING"), \
            "an older named checkpoint is what an ordinary Ctrl-C leaves: no warning; a gone one is"
        assert json.loads((named / trainable.CELL_FILE).read_text())["epoch"] == 3
        assert kept == ["checkpoint_000002"], "no epoch trained again; an older one set aside is gone with the trial"
        assert ("superseded checkpoint" in caplog.text) == (left == "older than one in its folder"), \
            "kept beside the newest while the trial ran, deleted once it ended"


SEARCH_SPEC = (SPEC.split("arms:")[0].replace("kind: table", "kind: search")   # one searched trial
               + "metric: val_acc\nmode: max\nsearch: {space: {optim.lr: {type: float, low: 1.0e-4, high: 1.0e-2, "
                 "log: true}}, num_samples: 1, n_startup_trials: 1, pruner: {type: none}}\n")


@pytest.mark.slow
def test_search_resumed_after_its_trials_checkpoint_was_lost_continues_from_its_newest_one_left(
        ray_local, store, tmp_path, monkeypatch, caplog):
    # the search is stopped mid-trial; then the checkpoint Tune's state names is gone (deleted for a newer
    # one the state does not name yet): the restored trial must not fail, nor start over from epoch 1
    monkeypatch.delenv("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", raising=False)   # result.json: where attempts began
    on_trial_result = runner.SweepCallback.on_trial_result

    def stopped_after_epoch_2(self, iteration, trials, trial, result, **info):
        on_trial_result(self, iteration, trials, trial, result, **info)
        if result.get("epoch") == 2 and not stops.STOP_SIGNALS:
            os.kill(os.getpid(), signal.SIGTERM)

    monkeypatch.setattr(runner.SweepCallback, "on_trial_result", stopped_after_epoch_2)
    spec = tmp_path / "faults.yaml"
    spec.write_text(textwrap.dedent(SEARCH_SPEC))
    options = RunOptions(tracking_uri=store, storage=str(tmp_path / "results"), cpus_per_trial=1, max_failures=0,
                         overrides={"optim.epochs": 4})
    first = run_sweep(prepare(str(spec), options))
    assert first.status == "interrupted"
    monkeypatch.setattr(runner.SweepCallback, "on_trial_result", on_trial_result)
    trial_folder, = (folder for folder in Path(first.tune_path).iterdir() if folder.is_dir())
    _, run_state = json.loads(next(Path(first.tune_path).glob("experiment_state-*.json")).read_text())["trial_data"][0]
    named = trial_folder / re.findall(r"checkpoint_\d{6}", run_state)[-1]
    newest = max(trial_folder.glob("checkpoint_*"))
    if newest == named:   # the worker wrote no checkpoint after the state was saved: as if it had, at the next index
        newest = named.rename(named.with_name(f"checkpoint_{int(named.name[-6:]) + 1:06d}"))
    else:
        shutil.rmtree(named)
    saved_epoch = json.loads((newest / trainable.CELL_FILE).read_text())["epoch"]

    caplog.set_level(logging.INFO, logger="sweeps.tune_state")   # an older named checkpoint left is said at info
    again = run_sweep(prepare(str(spec), options))
    assert again.status == "completed" and again.parent_run_id == first.parent_run_id
    assert "takes its place" in caplog.text and "Trial task failed" not in caplog.text
    run, = _children(store).values()
    assert run.data.tags[schema.TAG_STATUS] == "completed" and _steps(store, run.info.run_id) == [1, 2, 3, 4]
    starts = attempt_starts(Path(options.storage), run.data.tags[schema.TAG_CELL_ID])
    assert starts == [1, saved_epoch + 1], "the resumed attempt began after the checkpoint left in storage"


# --------------------------------------------------------------------------- end to end (subprocesses)

@pytest.fixture
def processes(tmp_path, tmp_path_factory):
    procs = Processes(tmp_path, tmp_path_factory.getbasetemp() / "cache")
    yield procs
    procs.cleanup()


def _sweep_args(spec: Path, uri: str, storage: Path, *extra: str) -> list[str]:
    return [str(spec), "--tracking-uri", uri, "--storage", str(storage), "--cpus-per-trial", "1",
            "--max-failures", "2", *extra]


@pytest.mark.slow
@needs_proc
def test_driver_killed_mid_sweep_resume_finishes_without_rerunning_cells(ray_local, processes, spec_file, store,
                                                                         tmp_path, monkeypatch, caplog):
    storage = tmp_path / "results"
    # Tune saves its experiment state (which checkpoint each trial has) every few seconds by default; a
    # driver killed between two saves restores the long cell without its checkpoint. Save on every step, and
    # kill the driver only once the state synced to storage records both cells' checkpoints.
    processes.env["TUNE_GLOBAL_CHECKPOINT_S"] = "0"
    driver = processes.sweeps("run", *_sweep_args(spec_file, store, storage), name="run")

    def short_done_long_checkpointed():
        runs = _children(store)
        short, long = runs.get("faults/short/seed0"), runs.get("faults/long/seed0")
        return (short is not None and long is not None
                and short.data.tags.get(schema.TAG_STATUS) == "completed" and short.info.end_time
                and 3 <= long.data.metrics.get("epochs_done", 0) < LONG
                and trials_with_synced_checkpoint(storage) == 2) and runs

    # freeze the driver at a moment its synced state is whole and names checkpoints that exist: Tune copies
    # the state non-atomically, and deletes a trial's older checkpoint before it syncs the state naming the newer
    while True:
        wait_for(short_done_long_checkpointed, driver, "one cell completed and one checkpointed", processes, "run")
        os.kill(driver.pid, signal.SIGSTOP)
        before = short_done_long_checkpointed()
        if before and search_state_readable(storage) and synced_checkpoints_exist(storage):
            break
        os.kill(driver.pid, signal.SIGCONT)
        time.sleep(0.1)
    os.kill(driver.pid, signal.SIGKILL)
    driver.wait(timeout=10)
    # its local Ray and trials go with it, as when its machine goes: Ray's own teardown of a killed driver's
    # cluster (fate sharing) took 0-30 s and is not what this test is about
    processes.kill_marked()
    assert not processes.wait_gone(10)

    # `sweeps resume`, in this process and its Ray; Tune's result.json logger on, as in the CLI
    monkeypatch.delenv("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", raising=False)
    options = RunOptions(tracking_uri=store, storage=str(storage), cpus_per_trial=1, max_failures=2)
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="sweeps.progress"):
        outcome = run_sweep(prepare(str(spec_file), options), resume_only=True)
    assert outcome.status == "completed" and outcome.skipped_cells == 1
    first_progress = next(r.progress for r in caplog.records if r.name == "sweeps.progress")
    assert (first_progress["done"], first_progress["total"]) == (1, 2), "the restored run counts the done cell"

    after = _children(store)
    assert sorted(after) == ["faults/long/seed0", "faults/short/seed0"], "one child run per cell"
    assert all(r.data.tags[schema.TAG_STATUS] == "completed" for r in after.values())
    short, long = after["faults/short/seed0"], after["faults/long/seed0"]
    assert short.info.run_id == before["faults/short/seed0"].info.run_id
    assert short.info.end_time == before["faults/short/seed0"].info.end_time, "the finished cell was not rerun"
    assert long.info.run_id == before["faults/long/seed0"].info.run_id, "the interrupted cell continued its run"
    assert _steps(store, long.info.run_id) == list(range(1, LONG + 1))
    reported = reported_epochs(storage, long.data.tags[schema.TAG_CELL_ID])
    starts = attempt_starts(storage, long.data.tags[schema.TAG_CELL_ID])
    assert reported[-1] == LONG and len(reported) == len(set(reported)), f"no epoch reported twice: {reported}"
    assert starts and starts[-1] > 1, f"the last attempt resumed from a checkpoint, not epoch 1: {starts}"


@pytest.mark.slow
@needs_proc
@pytest.mark.parametrize("sent_to", ["the driver", "its process group"])
def test_driver_sent_sigterm_stops_as_on_ctrl_c_and_says_how_to_continue(processes, spec_file, store, tmp_path,
                                                                         sent_to):
    # a job scheduler's stop (or `timeout`) must not leave the invocation "running" without a word on resuming.
    # `timeout` signals its whole process group: the local Ray the driver started must not die under it
    storage = tmp_path / "results"
    args = [sys.executable, "-m", "sweeps.cli", "-v", "run", *_sweep_args(spec_file, store, storage)]
    driver = processes.start(["timeout", "-s", "TERM", "900", *args] if sent_to != "the driver" else args, "run")

    def long_cell_training():
        long = _children(store).get("faults/long/seed0")
        return long is not None and long.data.metrics.get("epochs_done", 0) >= 1

    wait_for(long_cell_training, driver, "the long cell's first epoch", processes, "run")
    if sent_to == "the driver":
        driver.send_signal(signal.SIGTERM)
    else:
        os.killpg(driver.pid, signal.SIGTERM)   # `timeout` leads the group the driver runs in
    assert driver.wait(timeout=120) == 128 + signal.SIGTERM, processes.log("run")   # 143, as a shell reports it
    log = processes.log("run")
    assert "sweep faults interrupted" in log and "Continue with: sweeps resume" in log, log
    assert "Tuner.restore(" not in log, "Tune's hint is for its Python API, not for the CLI's user"
    assert "Failed to fetch metrics" not in log, "Tune's warning of trials that never wrote its files"
    client = MlflowClient(store)
    parent, = client.search_runs([client.get_experiment_by_name("faults").experiment_id],
                                 filter_string=f"tags.`{schema.TAG_ROLE}` = '{schema.ROLE_PARENT}'")
    assert parent.data.tags[schema.TAG_STATUS] == schema.STATUS_INTERRUPTED
    assert _children(store)["faults/long/seed0"].data.metrics["epochs_done"] < LONG, "stopped, not finished"


def test_a_sigterm_before_tune_installs_its_stop_reaches_that_fit_and_a_second_one_stops_at_once(monkeypatch):
    # Tune installs its stop per `fit` and never puts it back: the next fit must not reach the earlier one's
    from ray.tune.tune import _setup_signal_catching   # what Tune's fit runs before its loop

    from sweeps.runner import SweepCallback
    from sweeps.stops import sigterm_stops_like_ctrl_c

    monkeypatch.setattr(stops, "REPEATED_STOP_S", 0.0)   # the second signal below is a deliberate second stop

    before = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1)}
    with sigterm_stops_like_ctrl_c():
        first_fit = _setup_signal_catching()              # a fit that ends normally
    with sigterm_stops_like_ctrl_c():
        os.kill(os.getpid(), signal.SIGTERM)              # arrives while the next fit sets up
        second_fit = _setup_signal_catching()
        assert not second_fit.is_set()
        SweepCallback("sqlite:///unused.db", total=1, metric="val_acc", mode="max").setup()
        assert second_fit.is_set() and not first_fit.is_set(), "handed to this fit's Tune, once it listens"
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGTERM)          # a second signal: as a second Ctrl-C
            time.sleep(1)
    assert {s: signal.getsignal(s) for s in before} == before, "every handler put back"


def test_a_sigterm_delivered_again_at_once_is_the_same_stop_not_a_second_one():
    # `timeout` signals its child and then its process group; a group kill reaches the driver again through
    # `timeout`: those copies must not turn a graceful stop into an abrupt one (exit 130, CI on 16f0fc8)
    from ray.tune.tune import _setup_signal_catching

    from sweeps.runner import SweepCallback
    from sweeps.stops import sigterm_stops_like_ctrl_c

    with sigterm_stops_like_ctrl_c():
        fit = _setup_signal_catching()
        SweepCallback("sqlite:///unused.db", total=1, metric="val_acc", mode="max").setup()
        for _ in range(3):
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.05)                              # each one handled before the next arrives
        assert fit.is_set(), "the stop reached Tune"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "/health", timeout=1) as response:
            return response.status == 200
    except OSError:
        return False


def _start_server(processes: Processes, db: Path, port: int, name: str) -> subprocess.Popen:
    # no job runner (MLflow's GenAI jobs, none of sweeps'): its huey consumer starting beside the server's worker
    # put the first /health ~5 s later on two cores (~10 s against ~6 s)
    server = processes.start([sys.executable, "-m", "mlflow", "server", "--backend-store-uri", f"sqlite:///{db}",
                              "--host", "127.0.0.1", "--port", str(port), "--workers", "1"], name,
                             env={**processes.env, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"})
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90  # the first /health answers after ~5-10 s
    while not _healthy(url):
        assert server.poll() is None, f"mlflow server exited:\n{processes.log(name)}"
        assert time.monotonic() < deadline, f"mlflow server not healthy after 90 s:\n{processes.log(name)}"
        time.sleep(0.3)
    return server


@pytest.mark.slow
@needs_proc
def test_tracking_server_down_mid_sweep_trials_buffer_and_every_epoch_is_logged_once(processes, even_spec_file,
                                                                                     empty_db, tmp_path):
    port, db = _free_port(), tmp_path / "server.db"
    shutil.copy(empty_db, db)
    uri = f"http://127.0.0.1:{port}"
    server = _start_server(processes, db, port, "server")
    storage = tmp_path / "results"
    driver = processes.sweeps("run", *_sweep_args(even_spec_file, uri, storage, "--set", f"optim.epochs={LONG}"),
                              name="run")

    def both_logging():
        runs = _children(uri)
        return len(runs) == 2 and all(1 <= r.data.metrics.get("epochs_done", 0) < LONG
                                      for r in runs.values()) and runs

    wait_for(both_logging, driver, "both cells to log epochs", processes, "run")
    os.killpg(server.pid, signal.SIGKILL)  # gone at once: a graceful stop can outlast the cells' last epochs
    server.wait(timeout=30)
    down_ms = int(time.time() * 1000)
    checkpointed = checkpointed_epochs(storage)
    wait_for(lambda: checkpointed_epochs(storage) >= checkpointed + 3,
             driver, "3 more epochs trained while the server is down", processes, "run")
    _start_server(processes, db, port, "server-again")
    up_ms = int(time.time() * 1000)
    finish(driver, processes, "run")

    runs = _children(uri)
    assert len(runs) == 2 and all(r.data.tags[schema.TAG_STATUS] == "completed" for r in runs.values())
    measured_while_down = []
    for run in runs.values():
        history = _history(uri, run.info.run_id)
        assert [m.step for m in history] == list(range(1, LONG + 1)), "every epoch logged once"
        measured_while_down += [m.step for m in history if down_ms < m.timestamp < up_ms]
        reported = reported_epochs(storage, run.data.tags[schema.TAG_CELL_ID])
        assert reported == list(range(1, LONG + 1)), "no trial failed or restarted: the epochs were buffered"
    assert len(measured_while_down) >= 3, f"training went on while the server was down: {measured_while_down}"


@pytest.mark.slow
@needs_proc
def test_a_sweep_resumed_through_its_server_at_another_address_records_there(processes, even_spec_file, empty_db,
                                                                             tmp_path):
    # a restored trial kept the tracking URI of the run that began it (its config, in Tune's state): after the
    # server moved (a cluster brought up again), every resumed trial waited for the old address, then failed
    db, storage = tmp_path / "server.db", tmp_path / "results"
    shutil.copy(empty_db, db)
    first_port = _free_port()
    first_uri = f"http://127.0.0.1:{first_port}"
    server = _start_server(processes, db, first_port, "server")
    epochs = ("--set", f"optim.epochs={LONG}")
    driver = processes.sweeps("run", *_sweep_args(even_spec_file, first_uri, storage, *epochs), name="run")
    wait_for(lambda: len(runs := _children(first_uri)) == 2 and all(
        r.data.metrics.get("epochs_done", 0) >= 1 for r in runs.values()), driver, "both cells' first epoch",
        processes, "run")
    driver.send_signal(signal.SIGTERM)
    assert driver.wait(timeout=120) == 128 + signal.SIGTERM, processes.log("run")
    stopped = {name: r.data.metrics["epochs_done"] for name, r in _children(first_uri).items()}
    assert all(done < LONG for done in stopped.values()), f"stopped while training: {stopped}"
    os.killpg(server.pid, signal.SIGKILL)
    server.wait(timeout=30)

    moved_port = _free_port()
    moved_uri = f"http://127.0.0.1:{moved_port}"
    _start_server(processes, db, moved_port, "moved")
    resumed = processes.sweeps("resume", *_sweep_args(even_spec_file, moved_uri, storage, *epochs), name="resume")
    finish(resumed, processes, "resume")
    assert "restoring the Tune experiment" in processes.log("resume", tail=100_000), "its trials were restored"
    runs = _children(moved_uri)
    assert len(runs) == 2 and all(r.data.tags[schema.TAG_STATUS] == "completed" for r in runs.values())
    for run in runs.values():
        assert _steps(moved_uri, run.info.run_id) == list(range(1, LONG + 1)), "every epoch logged once"


def test_a_quota_used_up_is_a_full_disk_told_as_a_quota(tmp_path, cell_trial, monkeypatch):
    # EDQUOT ("Disk quota exceeded", a home folder's quota) was no full disk: the trial was retried onto the same
    # disk, and the sweep ended in the retries' errors rather than one naming the storage and how to go on
    storage, store = tmp_path / "ray_results", f"sqlite:///{tmp_path / 'mlflow.db'}"
    storage.mkdir()
    over = OSError(errno.EDQUOT, "Disk quota exceeded", str(storage / "exp" / "trial" / "error.pkl"))
    assert runner.storage_full(storage, over) == f"--storage {storage} is over its quota"
    with pytest.raises(SweepError, match=rf"^--storage {storage} is over its quota; Tune failed .*\. Free space "
                                         r"there \(or have its quota raised\), then `sweeps resume"):
        with runner._fitting(storage):
            raise over
    checkpoint = (f"OSError: [Errno 122] Disk quota exceeded: the checkpoint of epoch 7 (0.4 MB) could not be "
                  f"written to --storage {storage}; free space there, then `sweeps resume` continues the sweep")
    full = runner.full_disk_of_trial(_error_file(checkpoint), storage, store)
    assert isinstance(full, runner.StorageFull) and str(full) == f"--storage {storage} is over its quota"
    assert "Free space there (or have its quota raised), then `sweeps resume x`" in str(
        runner.halted_error(full, "sweeps resume x"))
    artifacts = f"OSError: [Errno 122] Disk quota exceeded: '{tmp_path / 'mlartifacts' / '1' / 'model.pt'}'"
    full = runner.full_disk_of_trial(_error_file(artifacts), storage, store)
    assert isinstance(full, runner.StoreFull), "the store's mlartifacts/"
    assert str(full).startswith(f"the MLflow store {tmp_path / 'mlflow.db'} is over its quota (MLflow: [Errno 122]")
    assert "have its quota raised" in str(runner.halted_error(full, "sweeps resume x"))
    # the trial's own error names the place, and stays an EDQUOT (Tune retries it, the driver stops the sweep)
    fail_checkpoint_of_epoch_2(monkeypatch, OSError(errno.EDQUOT, "Disk quota exceeded"))
    with pytest.raises(OSError, match=rf"^\[Errno 122\] Disk quota exceeded: the checkpoint of epoch 2 .* could not be "
                                      rf"written to --storage {cell_trial.storage}; free space there \(or have its "
                                      r"quota raised\), then `sweeps resume`") as raised:
        cell_trial()
    assert raised.value.errno == errno.EDQUOT
    assert isinstance(runner.full_disk_of_trial(_error_file(f"OSError: {raised.value}"), cell_trial.storage,
                                                cell_trial.uri), runner.StorageFull)


def test_a_full_disk_freed_since_or_out_of_inodes_is_not_said_to_be_full_of_bytes(tmp_path, monkeypatch):
    # "--storage ... is full (66953.2 MB free)": the disk freed since the trial failed, or out of inodes, not bytes
    usage, stats = shutil.disk_usage(tmp_path), os.statvfs(tmp_path)
    enospc = OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "exp" / "trial" / "error.pkl"))
    inodes = {"left": 1000}

    class Stats:   # os.statvfs's, its inodes as the test says
        def __getattr__(self, name):
            return {"f_files": 10**6, "f_favail": inodes["left"]}.get(name, getattr(stats, name))

    monkeypatch.setattr(os, "statvfs", lambda path: Stats())
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage._replace(free=66953.2 * 2**20))
    assert runner.storage_full(tmp_path, enospc) == (f"--storage {tmp_path} was full when written to "
                                                     "(66953.2 MB free now)")
    assert runner.storage_full(tmp_path) is None, "room, and no error saying otherwise"
    inodes["left"] = 0
    said = f"--storage {tmp_path} ran out of inodes (files), not bytes (66953.2 MB free)"
    assert runner.storage_full(tmp_path, enospc) == said
    assert runner.storage_full(tmp_path) == said, "no file can be written there as a sweep ends failed"
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage._replace(free=4096))
    inodes["left"] = 1000
    assert runner.storage_full(tmp_path, enospc) == f"--storage {tmp_path} is full (0.0 MB free)"


def test_a_sweep_stopped_for_a_full_disk_while_mlflow_is_away_still_ends_in_the_full_disks_error(tmp_path, caplog):
    # the driver's halt for a full --storage, with the MLflow server unreachable as the fit returned, ended the sweep
    # "interrupted" with a warning of the server alone: the full disk was never said, and a resume filled it again
    halt = runner.StorageFull(f"--storage {tmp_path} is full (0.1 MB free)")
    with caplog.at_level(logging.WARNING, logger=runner.log.name), pytest.raises(
            runner.StorageFull, match=rf"^--storage {tmp_path} is full \(0\.1 MB free\): a trial could not write its "
                                      r"checkpoint there.*`sweeps resume x` continues the sweep"):
        runner.stopped_while_away("http://127.0.0.1:9", "abc", halt, "sweeps resume x")
    assert "invocation abc stopped for a full disk but neither its counts nor its status could be recorded" in (
        caplog.text)
    store = runner.StoreFull("the MLflow store /d/mlflow.db is full (its disk: 0.0 MB free; MLflow: x)")
    with pytest.raises(runner.StoreFull, match="`sweeps resume x` continues the sweep"):
        runner.stopped_while_away("http://127.0.0.1:9", "abc", store, "sweeps resume x")
    runner.stopped_while_away("http://127.0.0.1:9", "abc", None, "sweeps resume x")   # Ctrl-C: the outcome says it


def test_a_first_ctrl_c_after_a_halt_for_a_full_disk_is_a_first_ctrl_c_still(tmp_path):
    # Tune's stop, which halt_fit calls, puts back the SIGINT handler of before the fit (as after a first Ctrl-C):
    # the researcher's first Ctrl-C as Tune saved its state raised a KeyboardInterrupt at once, the sweep exited
    # 130 marked interrupted, and the full disk was said only in the warning before it
    def as_tunes_stop(before):
        def stop(signum, frame):   # Tune's signal_interrupt_tune_run, for SIGINT and SIGUSR1 alike
            stopped.append(signum)
            signal.signal(signal.SIGINT, before)
        return stop

    stopped, halt = [], runner.StorageFull(f"--storage {tmp_path} is full (0.1 MB free)")
    with runner._fitting(tmp_path):
        before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGUSR1)}
        tunes = as_tunes_stop(before[signal.SIGINT])
        signal.signal(signal.SIGINT, tunes)   # as a fit installs Tune's stop
        signal.signal(signal.SIGUSR1, tunes)
        try:
            stops.record_stops_of_this_fit()
            assert stops.halt_fit(halt) and stopped == [signal.SIGUSR1]
            signal.raise_signal(signal.SIGINT)   # no KeyboardInterrupt: Tune is stopping already
            assert stopped == [signal.SIGUSR1, signal.SIGINT] and stops.halted() is halt
            with pytest.raises(KeyboardInterrupt):   # a second Ctrl-C stops at once, as ever
                signal.raise_signal(signal.SIGINT)
        finally:
            for signum, handler in before.items():
                signal.signal(signum, handler)


def test_run_sweep_halted_for_a_full_disk_while_mlflow_is_away_ends_in_the_full_disks_error(
        spec_file, store, tmp_path, monkeypatch, ray_local):
    # the path through run_sweep itself: the fit halted for a full --storage, the server away as it returned
    prepared = prepare(str(spec_file), RunOptions(tracking_uri=store, storage=str(tmp_path / "ray_results")))
    halt = runner.StorageFull(f"--storage {prepared.storage_path} is full (0.1 MB free)")

    class HaltedTuner:   # a fit that the driver halts for the full disk, as SweepCallback would
        def __init__(self, *args, **kwargs):
            pass

        def fit(self):
            signal.signal(signal.SIGUSR1, lambda signum, frame: None)   # Tune's stop (the fit puts it back)
            stops.record_stops_of_this_fit()
            assert stops.halt_fit(halt)
            return SimpleNamespace(num_errors=0, num_terminated=0, __len__=lambda: 1)

    monkeypatch.setattr(runner.tune, "Tuner", HaltedTuner)
    monkeypatch.setattr(tracking, "reachable", lambda uri: False)
    with pytest.raises(runner.StorageFull, match=rf"^--storage {prepared.storage_path} is full \(0\.1 MB free\): a "
                                                 r"trial could not write its checkpoint there"):
        run_sweep(prepared)


def test_a_full_store_freed_since_or_out_of_inodes_is_not_said_to_be_full_of_bytes(tmp_path, monkeypatch):
    # "the MLflow store X is full (its disk: 66953.2 MB free ...)": freed since it failed, or out of inodes, as
    # --storage says it (`tracking.how_full`, shared); and the driver knows a trial's sentence saying so
    uri, database = f"sqlite:///{tmp_path / 'mlflow.db'}", tmp_path / "mlflow.db"
    usage, stats = shutil.disk_usage(tmp_path), os.statvfs(tmp_path)
    inodes = {"left": 1000}

    class Stats:   # os.statvfs's, its inodes as the test says
        def __getattr__(self, name):
            return {"f_files": 10**6, "f_favail": inodes["left"]}.get(name, getattr(stats, name))

    monkeypatch.setattr(os, "statvfs", lambda path: Stats())
    monkeypatch.setattr(shutil, "disk_usage", lambda path: usage._replace(free=66953.2 * 2**20))
    sqlite_full = RuntimeError("(sqlite3.OperationalError) database or disk is full")
    freed = tracking.full_store(uri, sqlite_full)
    assert freed == (f"the MLflow store {database} was full when written to (its disk: 66953.2 MB free now; MLflow: "
                     "(sqlite3.OperationalError) database or disk is full)")
    inodes["left"] = 0
    out = tracking.full_store(uri, sqlite_full)
    assert out == (f"the MLflow store {database} ran out of inodes (files), not bytes (its disk: 66953.2 MB free; "
                   "MLflow: (sqlite3.OperationalError) database or disk is full)")
    assert runner.storage_full(tmp_path) == (f"--storage {tmp_path} ran out of inodes (files), not bytes "
                                             "(66953.2 MB free)")
    inodes["left"] = 1000
    for said in (freed, out):   # a trial's error saying so: the store's full disk, the sweep stopped for it
        trial = f"sweeps.tracking.TrackingError: {said}; free space there, then `sweeps resume` continues the sweep"
        assert isinstance(runner.full_disk_of_trial(_error_file(trial), tmp_path / "ray_results", uri),
                          runner.StoreFull)


def test_a_quota_used_up_on_macos_is_a_full_disk_told_as_a_quota(tmp_path):
    # macOS's strerror(EDQUOT) is "Disc quota exceeded" (its number 69, Linux's ENOSR): a trial's error in those
    # words, from the trainable's own `os.strerror`, was no full disk and the sweep retried it onto the same disk
    storage, store = tmp_path / "ray_results", f"sqlite:///{tmp_path / 'mlflow.db'}"
    storage.mkdir()
    checkpoint = (f"OSError: [Errno 69] Disc quota exceeded: the checkpoint of epoch 7 (0.4 MB) could not be "
                  f"written to --storage {storage}; free space there (or have its quota raised), then `sweeps resume`")
    full = runner.full_disk_of_trial(_error_file(checkpoint), storage, store)
    assert isinstance(full, runner.StorageFull) and str(full) == f"--storage {storage} is over its quota"
    enosr = f"OSError: [Errno 69] Out of streams resources: '{storage / 'x'}'"   # Linux's 69: no full disk
    assert runner.full_disk_of_trial(_error_file(enosr), storage, store) is None
