"""A sweep end to end with a real local Ray and a real MLflow store (smoke profile, synthetic faces)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from mlflow.tracking import MlflowClient

from sweeps import invocations, marks, runner, schema, stops, tracking, tune_state
from sweeps.runner import RunOptions, SweepError, prepare, run_sweep

pytestmark = pytest.mark.slow

TABLE_SPEC = """
name: tiny
title: Tiny ablation
description: two arms, for the end-to-end test
caption: A test table.
kind: table
profile: smoke
arms:
  - {label: "No dropping", set: {model.drop_variant: none}}
  - {label: MAD, set: {model.drop_variant: mad}}
seeds: [0]
table: {baseline: "No dropping"}
"""

SEARCH_SPEC = """
name: tiny_search
title: Tiny search
description: every trial is pruned after its first epoch
caption: A test search.
kind: search
profile: smoke
metric: val_acc
mode: max
search:
  space: {optim.lr: {type: float, low: 1.0e-4, high: 1.0e-2, log: true}}
  num_samples: 2
  n_startup_trials: 1
  pruner: {type: threshold, lower: 1.01, n_warmup_steps: 0}
"""


@pytest.fixture
def spec_file(tmp_path):
    def write(text: str, name: str) -> str:
        path = tmp_path / f"{name}.yaml"
        path.write_text(textwrap.dedent(text))
        return str(path)

    return write


@pytest.fixture(autouse=True)
def _cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("TRANSFER_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))


def _options(tmp_path, tracking_uri, **kw):
    return RunOptions(tracking_uri=tracking_uri, storage=str(tmp_path / "ray_results"), cpus_per_trial=1,
                      max_failures=0, **kw)


def _children(tracking_uri, outcome):
    client = MlflowClient(tracking_uri)
    return client, client.search_runs([outcome.experiment_id],
                                      filter_string=f"tags.`{schema.TAG_PARENT}` = '{outcome.parent_run_id}'")


def _parent_tags(tracking_uri, outcome) -> dict:
    return MlflowClient(tracking_uri).get_run(outcome.parent_run_id).data.tags


def _reloaded_test_acc(client, run_id: str, artifact_dir: str, tmp_path) -> float:
    """Test accuracy of a logged model, loaded as a user would: its state_dict.pt and config.json."""
    import torch

    from transfer_core.config import from_flat
    from transfer_core.data import build_eval_loader, load_splits
    from transfer_core.engine import evaluate
    from transfer_core.models import trained_model

    folder = Path(client.download_artifacts(run_id, artifact_dir, str(tmp_path / run_id / artifact_dir)))
    config = from_flat(json.loads((folder / "config.json").read_text()))
    model = trained_model(config.model, torch.load(folder / "state_dict.pt", weights_only=True))
    splits = load_splits(config.data, config.model.image_size)
    loader = build_eval_loader(splits.test, config.data, config.model.image_size, 128, False)
    return evaluate(model, loader, len(splits.class_names), torch.device("cpu"))["acc"]


def stop_at_the_first_result(monkeypatch) -> None:
    """The sweep is stopped (SIGTERM, as `kill` or Ctrl-C stops it) at its first trial result: set on
    `monkeypatch` or one of its contexts, so that a later run in the test is not stopped."""
    on_trial_result = runner.SweepCallback.on_trial_result

    def stopped_at_the_first_result(self, iteration, trials, trial, result, **info):
        on_trial_result(self, iteration, trials, trial, result, **info)
        if not stops.STOP_SIGNALS:
            os.kill(os.getpid(), signal.SIGTERM)

    monkeypatch.setattr(runner.SweepCallback, "on_trial_result", stopped_at_the_first_result)


PREPARE_ONLY = """
import json, sys
from sweeps.runner import RunOptions, prepare
prepare(sys.argv[1], RunOptions(tracking_uri=sys.argv[2], storage=sys.argv[3]))
print(json.dumps(sorted(m for m in ("torch", "scipy.stats", "scipy.special") if m in sys.modules)))
"""


def test_prepare_imports_neither_torch_nor_scipy_where_no_cell_names_a_checkpoint(tmp_path, spec_file):
    # the driver's CPU before the first trial (bench/RESULTS.md §1): torch ~1.5 s, scipy.special ~0.25 s (scipy.stats
    # ~0.6 s), for reading no checkpoint and for the label check's import of the table writers
    out = subprocess.run([sys.executable, "-c", PREPARE_ONLY, spec_file(TABLE_SPEC, "tiny"),
                          f"sqlite:///{tmp_path / 'mlflow.db'}", str(tmp_path / "ray_results")],
                         capture_output=True, text=True, check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []


def test_table_sweep_records_parent_children_metrics_and_models(
        ray_local, tmp_path, tracking_uri, spec_file, monkeypatch):
    monkeypatch.delenv(runner.NO_TUNE_LOGGERS, raising=False)   # Tune's loggers as in the CLI
    options = _options(tmp_path, tracking_uri, overrides={"optim.weight_decay": 0.0002})
    before = time.time()
    path = spec_file(TABLE_SPEC, "tiny")
    outcome = run_sweep(prepare(path, options))
    assert outcome.status == "completed" and outcome.stop_signal is None
    assert 0 < outcome.elapsed_s <= time.time() - before, "the CLI prints it: `completed in N s`"
    # the table says what --set changed in every cell, over the spec
    assert ("ran with optim.weight\\_decay = 0.0002, set on the command line"   # Markdown-escaped
            in (outcome.report_dir / "tables" / "tiny.md").read_text())
    # Tune's own files per trial, but no TensorBoard writer: its import cost the driver ~3.5 s
    trials = [d for d in Path(outcome.tune_path).iterdir() if d.is_dir()]
    assert len(trials) == 2 and all((d / "result.json").stat().st_size and (d / "progress.csv").is_file()
                                    for d in trials)
    # each named by its cell, then its Tune trial id (not train_cell_<id>_..._cell=config_model_stem_...)
    assert sorted(d.name.rsplit("_", 2)[0] for d in trials) == ["MAD_synthetic_seed0", "No_dropping_synthetic_seed0"]
    assert not list(Path(outcome.tune_path).rglob("events.out.tfevents*"))
    assert runner.NO_TUNE_LOGGERS not in os.environ, "the switch is set only for Tune's fit"
    client, children = _children(tracking_uri, outcome)
    assert sorted(r.info.run_name for r in children) == ["tiny/MAD/seed0", "tiny/No dropping/seed0"]
    for run in children:
        assert run.data.tags[schema.TAG_STATUS] == "completed" and run.info.status == "FINISHED"
        assert {"sel_test_acc", "best_test_acc", "test_acc", "train_loss"} <= set(run.data.metrics)
        assert run.data.params["model.stem"] == "small"
        assert len(client.get_metric_history(run.info.run_id, "test_acc")) == 2
        artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
        assert {"history.json", "confusion_matrix.json", "model"} <= artifacts
        # the weights the table's number is of: model_selected/, or model/ alone (no second copy) when the
        # epoch chosen on validation is the last
        chosen_is_last = run.data.metrics["sel_epoch"] == run.data.metrics["epochs_done"] == 2
        shown = schema.ARTIFACT_MODEL_DIR if chosen_is_last else schema.ARTIFACT_SELECTED_MODEL_DIR
        model_files = {"model/state_dict.pt", "model/config.json"}
        assert {a.path for a in client.list_artifacts(run.info.run_id, "model")} == (
            model_files | {"model/attention.npz"} if chosen_is_last else model_files)
        assert {a.path for a in client.list_artifacts(run.info.run_id, "model_selected")} == (
            set() if chosen_is_last else
            {"model_selected/state_dict.pt", "model_selected/config.json", "model_selected/attention.npz"})
        # Fig. 3's data, computed in the trial from the logged weights: one face per class, a map over each
        with np.load(client.download_artifacts(run.info.run_id, f"{shown}/attention.npz", str(tmp_path))) as record:
            faces, maps, picks = record["faces"], record["maps"], record["picks"]
        assert faces.dtype == np.uint8 and faces.shape[0] == len(picks) == 7 and maps.shape == faces.shape[:3]
        assert 0.0 <= maps.min() and maps.max() <= 1.0
        # the model the table's number is of: reloaded, it scores the run's sel_test_acc on the test split
        assert _reloaded_test_acc(client, run.info.run_id, shown, tmp_path) == \
            pytest.approx(run.data.metrics["sel_test_acc"], abs=1e-12)
        assert _reloaded_test_acc(client, run.info.run_id, schema.ARTIFACT_MODEL_DIR, tmp_path) == \
            pytest.approx(run.data.metrics["final_test_acc"], abs=1e-12)
    parent = client.get_run(outcome.parent_run_id)
    assert parent.data.tags[schema.TAG_STATUS] == "completed"
    assert parent.data.tags[schema.TAG_SYNTHETIC] == "true"
    assert parent.data.tags[schema.TAG_PROFILE] == "smoke"
    assert 0 <= time.time() - float(parent.data.tags[schema.TAG_HEARTBEAT]) < 600, "readers elsewhere tell it alive"
    assert json.loads(parent.data.tags[schema.TAG_OVERRIDES]) == {"optim.weight_decay": 0.0002}
    # what tells invocations apart in MLflow's runs table, where parents showed nothing but their names
    assert parent.data.params == {"sweep": "tiny", "kind": "table", "profile": "smoke", "data": "synthetic",
                                  "set": "optim.weight_decay=0.0002"}
    assert parent.data.metrics == {"cells": 2, "cells_completed": 2, "cells_pruned": 0, "cells_failed": 0}
    assert parent.data.tags["mlflow.note.content"].startswith("Tiny ablation")
    # what the run was given beyond the spec: `sweeps status` prints the command that continues it from this
    assert json.loads(parent.data.tags[schema.TAG_COMMAND]) == {
        "name": str(path), "cpus_per_trial": 1, "storage": str(tmp_path / "ray_results"), "max_failures": 0,
        "set": {"optim.weight_decay": 0.0002}}


def test_a_trial_worker_imports_torch_and_the_store_without_gc_collections_once_then_freezes_them(monkeypatch):
    # each full collection walked every object the imports had made so far: ~0.55 s of a worker's start
    import gc

    import ray

    from sweeps import trainable

    calls = []
    for name in ("disable", "enable", "freeze"):
        monkeypatch.setattr(gc, name, lambda name=name: calls.append(f"gc.{name}"))
    monkeypatch.setattr(trainable, "_IMPORTED_WITHOUT_COLLECTIONS", [])
    monkeypatch.setattr(ray, "is_initialized", lambda: True)
    actor = SimpleNamespace(get_actor_id=lambda: None)   # the driver, a test or a notebook: no actor
    monkeypatch.setattr(ray, "get_runtime_context", lambda: actor)
    with trainable._first_imports_without_collections("sqlite:///mlflow.db"):
        calls.append("imports")
    assert calls == ["imports"]
    actor.get_actor_id = lambda: "a trial's actor"
    for _ in range(2):   # a reused actor's later trials import nothing more
        with trainable._first_imports_without_collections("sqlite:///mlflow.db"):
            calls.append("imports")
    assert calls == ["imports", "gc.disable", "imports", "gc.freeze", "gc.enable", "imports"]
    assert "mlflow.store.tracking.sqlalchemy_store" in sys.modules


def test_a_trial_worker_imports_the_trainable_module_without_gc_collections_then_freezes_it(ray_local):
    # a worker imports sweeps.trainable (Ray Tune and MLflow with it) as it loads the trial actor's class: each
    # full collection walked every object the imports had made so far, ~0.25 s of every worker's start
    @ray_local.remote(num_cpus=0)
    class Worker:
        def import_trainable(self):
            import gc

            assert "sweeps.trainable" not in sys.modules, "a fresh worker process"
            full, frozen = [], gc.get_freeze_count()
            gc.callbacks.append(lambda phase, info: full.append(info) if info["generation"] == 2 else None)
            import sweeps.trainable  # noqa: F401

            return len(full), gc.get_freeze_count() > frozen, gc.isenabled()

    worker = Worker.remote()
    try:
        assert ray_local.get(worker.import_trainable.remote()) == (0, True, True)
    finally:
        ray_local.kill(worker)
    import gc

    assert gc.isenabled() and "sweeps.trainable" in sys.modules   # the driver's, imported above: its GC as it was


def test_a_trial_worker_imports_what_its_first_optimizer_imports_without_gc_collections(ray_local):
    # torch.optim imports torch._dynamo (~870 modules, ~0.8 s of CPU) when a process builds its first optimizer:
    # a trial worker's first trial imports it with the collector off, and freezes it with the rest
    @ray_local.remote(num_cpus=0)
    class Worker:
        def first_trial_then_an_optimizer(self):
            import gc

            from sweeps import trainable

            assert "torch._dynamo" not in sys.modules, "a fresh worker process"
            full = []
            gc.callbacks.append(lambda phase, info: full.append(info) if info["generation"] == 2 else None)
            with trainable._first_imports_without_collections("sqlite:///mlflow.db"):
                import torch
            imported_before = set(sys.modules)
            torch.optim.SGD(torch.nn.Linear(2, 2).parameters(), lr=0.1, momentum=0.9)
            return "torch._dynamo" in imported_before, sorted(set(sys.modules) - imported_before), len(full)

    worker = Worker.remote()
    try:
        assert ray_local.get(worker.first_trial_then_an_optimizer.remote()) == (True, [], 0)
    finally:
        ray_local.kill(worker)


def test_one_worker_process_trains_cells_in_turn_exactly_as_a_fresh_process_would(
        ray_local, tmp_path, tracking_uri, spec_file):
    """Tune reuses the trial actor (no new process and imports per cell); the reused process must
    leak nothing from one cell into the next: seed 1's curve equals `fit` run on its own."""
    import dataclasses

    from transfer_core.engine import fit

    prepared = prepare(spec_file(TABLE_SPEC.replace("seeds: [0]", "seeds: [0, 1]"), "tiny"),
                       _options(tmp_path, tracking_uri, max_concurrent=1))
    outcome = run_sweep(prepared)
    assert outcome.status == "completed"
    client, children = _children(tracking_uri, outcome)
    assert len(children) == 4
    assert len({r.data.tags[schema.TAG_WORKER] for r in children}) == 1, "one actor ran every cell"
    last = next(c for c in prepared.plan.cells if c.arm == "MAD" and c.config.seed == 1)
    run = next(r for r in children if r.info.run_name == "tiny/MAD/seed1")
    recorded = [m.value for m in sorted(client.get_metric_history(run.info.run_id, "train_loss"),
                                        key=lambda m: m.step)]
    alone = fit(dataclasses.replace(last.config, num_threads=1)).records
    assert recorded == pytest.approx([r["train_loss"] for r in alone], rel=1e-9, abs=0)


def test_table_sweep_run_again_reruns_no_completed_cell(ray_local, tmp_path, tracking_uri, spec_file):
    path = spec_file(TABLE_SPEC, "tiny")
    first = run_sweep(prepare(path, _options(tmp_path, tracking_uri)))
    ended = time.time()
    again = run_sweep(prepare(path, _options(tmp_path, tracking_uri)))
    assert again.parent_run_id == first.parent_run_id and again.skipped_cells == 2
    _, children = _children(tracking_uri, again)
    assert len(children) == 2
    # run again, it is the invocation run last, which `sweeps table` shows by default (tracking.ran_last_first)
    assert float(_parent_tags(tracking_uri, again)[schema.TAG_HEARTBEAT]) >= math.floor(ended)


def test_table_sweep_more_seeds_runs_only_the_new_cells(ray_local, tmp_path, tracking_uri, spec_file, caplog):
    path = spec_file(TABLE_SPEC, "tiny")
    first = run_sweep(prepare(path, _options(tmp_path, tracking_uri)))
    client, before = _children(tracking_uri, first)
    ended = {r.info.run_id: r.info.end_time for r in before}
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="sweeps"):
        more = run_sweep(prepare(path, _options(tmp_path, tracking_uri, seeds=2)))
    assert "restoring the Tune experiment" not in caplog.text, "the finished experiment holds nothing to continue"
    progress = [r.progress for r in caplog.records if r.name == "sweeps.progress"]
    assert (progress[0]["done"], progress[0]["total"]) == (2, 4), "counted from the cells done before"
    assert (progress[-1]["done"], progress[-1]["total"]) == (4, 4)
    client, after = _children(tracking_uri, more)
    assert more.parent_run_id == first.parent_run_id and len(after) == 4
    assert all(client.get_run(run_id).info.end_time == end for run_id, end in ended.items())
    # continued into the same parent: its params stand (MLflow refuses to change one), its counts are this run's
    parent = client.get_run(first.parent_run_id).data
    assert parent.params["sweep"] == "tiny" and parent.params["set"] == "none"
    assert (parent.metrics["cells"], parent.metrics["cells_completed"]) == (4, 4)
    # back to one seed: its 2 cells are done; it reports them, not the 4 runs of the invocation
    fewer = run_sweep(prepare(path, _options(tmp_path, tracking_uri)))
    assert fewer.parent_run_id == first.parent_run_id and fewer.counts["completed"] == 2 == fewer.skipped_cells
    assert client.get_run(first.parent_run_id).data.metrics["cells"] == 2, "the cells this run planned"
    # and its table is of that seed, as the command that said "completed" asked (it stayed over both)
    from sweeps.tables import load_sweep_runs

    def table_seeds():
        runs = load_sweep_runs("tiny", tracking_uri=tracking_uri, parent_run_id=first.parent_run_id)
        return sorted(set(runs.children["seed"].astype(int)))

    from sweeps.cli import _planned_cells

    assert table_seeds() == [0]
    assert _planned_cells(client, first.parent_run_id)[0] == 2, "sweeps status counts what the table shows"
    both = run_sweep(prepare(path, _options(tmp_path, tracking_uri, seeds=2)))
    assert both.counts["completed"] == 4 == both.skipped_cells and table_seeds() == [0, 1]
    assert _planned_cells(client, first.parent_run_id)[0] == 4


def _parent_status(tracking_uri, name):
    client = MlflowClient(tracking_uri)
    parent, = client.search_runs([client.get_experiment_by_name(name).experiment_id],
                                 filter_string=f"tags.`{schema.TAG_ROLE}` = '{schema.ROLE_PARENT}'")
    return parent.data.tags[schema.TAG_STATUS], parent.info.status


def test_ctrl_c_before_the_first_fit_leaves_the_invocation_interrupted_not_running(
        ray_local, tmp_path, tracking_uri, spec_file, monkeypatch):
    def ctrl_c(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(runner.tracking, "log_json_artifact", ctrl_c)   # the plan, logged before any fit
    with pytest.raises(KeyboardInterrupt):
        run_sweep(prepare(spec_file(TABLE_SPEC, "tiny"), _options(tmp_path, tracking_uri)))
    assert _parent_status(tracking_uri, "tiny") == (schema.STATUS_INTERRUPTED, "KILLED")


def _cut_short_at_its_report(path, options, monkeypatch) -> None:
    """Run the sweep to its end, Ctrl-C while its report is drawn: the parent must be left interrupted."""
    def ctrl_c(*args, **kwargs):
        raise KeyboardInterrupt

    with monkeypatch.context() as patched:
        patched.setattr(runner, "_publish", ctrl_c)
        with pytest.raises(KeyboardInterrupt):
            run_sweep(prepare(path, options))
    name = Path(path).stem
    assert _parent_status(options.tracking_uri, name) == (schema.STATUS_INTERRUPTED, "KILLED")


def test_ctrl_c_while_the_report_is_drawn_is_made_good_by_the_next_run(
        ray_local, tmp_path, tracking_uri, spec_file, monkeypatch):
    path = spec_file(TABLE_SPEC, "tiny")
    _cut_short_at_its_report(path, _options(tmp_path, tracking_uri), monkeypatch)
    again = run_sweep(prepare(path, _options(tmp_path, tracking_uri)))
    assert again.status == "completed" and again.skipped_cells == 2, "no cell trained again"
    assert _parent_status(tracking_uri, "tiny") == (schema.STATUS_COMPLETED, "FINISHED")
    artifacts = [a.path for a in MlflowClient(tracking_uri).list_artifacts(again.parent_run_id, "tables")]
    assert any(a.endswith(".tex") for a in artifacts), f"the report was drawn: {artifacts}"


def test_a_cell_whose_trial_fails_before_its_first_epoch_is_marked_failed(ray_local, tmp_path, tracking_uri,
                                                                          spec_file, monkeypatch):
    # its trial never reported its run id: the driver finds the run by the trial id it is tagged with
    broken = tmp_path / "not_weights.pth"
    broken.write_bytes(b"not a checkpoint")
    # prepare reads the checkpoints before Ray starts (runner.check_files): skipped in the driver, the file
    # fails in the trial, as one changed on a worker's disk after the start would
    monkeypatch.setattr("transfer_core.models.check_pretrained", lambda config: None)
    text = TABLE_SPEC.replace('  - {label: MAD, set: {model.drop_variant: mad}}',
                              f'  - {{label: Broken, set: {{model.stem: ir50, model.stem_checkpoint: "{broken}"}}}}')
    outcome = run_sweep(prepare(spec_file(text, "tiny"), _options(tmp_path, tracking_uri)))
    assert outcome.status == "failed" and outcome.counts["failed"] == 1 and outcome.counts["running"] == 0
    _, children = _children(tracking_uri, outcome)
    failed, = [r for r in children if r.data.tags[schema.TAG_ARM] == "Broken"]
    assert (failed.data.tags[schema.TAG_STATUS], failed.info.status) == ("failed", "FAILED")
    assert failed.data.tags[schema.TAG_ERROR].startswith(   # why, in the MLflow UI
        f"CheckpointError: IR-50 checkpoint '{broken}' could not be read: ")
    # run again: Tune's restore retries the failed trial (--max-failures 0: once); no new experiment trains
    # the cell a second time after it failed again there
    errors, on_trial_error = [], runner.SweepCallback.on_trial_error

    def counted(self, iteration, trials, trial, **info):
        errors.append(trial.trial_id)
        return on_trial_error(self, iteration, trials, trial, **info)

    monkeypatch.setattr(runner.SweepCallback, "on_trial_error", counted)
    experiments = sorted(p.name for p in (tmp_path / "ray_results").iterdir() if p.name.startswith("tiny-"))
    again = run_sweep(prepare(spec_file(text, "tiny"), _options(tmp_path, tracking_uri)))
    assert again.status == "failed" and again.parent_run_id == outcome.parent_run_id
    assert len(errors) == 1, f"the failed cell was tried {len(errors)} times in one run"
    assert sorted(p.name for p in (tmp_path / "ray_results").iterdir() if p.name.startswith("tiny-")) == experiments
    # a second seed: its cells go to a new experiment, where Broken/seed1 fails too
    two_seeds = _options(tmp_path, tracking_uri, seeds=2)
    run_sweep(prepare(spec_file(text, "tiny"), two_seeds))
    # the next run restores that newer experiment (seed 1 retried there); Broken/seed0 failed in the first one,
    # which is not restored any more: it is tried in a new experiment, not left failed for good
    errors.clear()
    again = run_sweep(prepare(spec_file(text, "tiny"), two_seeds))
    assert again.status == "failed" and len(errors) == 2, errors


def test_a_search_cut_short_while_drawing_its_report_gets_it_from_the_next_run_without_tune(
        ray_local, tmp_path, tracking_uri, spec_file, monkeypatch):
    path = spec_file(SEARCH_SPEC, "tiny_search")
    _cut_short_at_its_report(path, _options(tmp_path, tracking_uri), monkeypatch)
    monkeypatch.setattr(runner, "connect_ray", lambda address=None: pytest.fail("nothing left to train"))
    again = run_sweep(prepare(path, _options(tmp_path, tracking_uri)))
    assert again.status == "completed" and again.counts["pruned"] == 2
    assert _parent_status(tracking_uri, "tiny_search") == (schema.STATUS_COMPLETED, "FINISHED")
    assert MlflowClient(tracking_uri).list_artifacts(again.parent_run_id, "tables"), "the report was drawn"


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_sweep_stopped_before_its_first_trial_starts_is_interrupted_not_failed(
        ray_local, tmp_path, tracking_uri, spec_file, monkeypatch, signum):
    # Ctrl-C (or timeout's signal) just as Tune sets up: nothing failed, `sweeps resume` continues it
    setup = runner.SweepCallback.setup

    def stopped_at_once(self, *args, **kwargs):
        setup(self, *args, **kwargs)
        os.kill(os.getpid(), signum)

    monkeypatch.setattr(runner.SweepCallback, "setup", stopped_at_once)
    outcome = run_sweep(prepare(spec_file(TABLE_SPEC, "tiny"), _options(tmp_path, tracking_uri)))
    assert outcome.status == "interrupted" and outcome.counts["failed"] == 0, outcome
    assert outcome.stop_signal == signum, "the CLI exits 128 + it: 130 for Ctrl-C, 143 for SIGTERM"
    assert _parent_status(tracking_uri, "tiny")[0] == schema.STATUS_INTERRUPTED


def test_a_sigterm_while_the_report_is_drawn_stops_it_as_interrupted_and_leaves_the_handler_as_it_was(
        ray_local, tmp_path, tracking_uri, spec_file, monkeypatch):
    # Ray's driver handler (set by ray.init) exited 15 outside a fit: no word on resuming, not 143
    before = signal.getsignal(signal.SIGTERM)
    monkeypatch.setattr(runner, "_publish", lambda *args: os.kill(os.getpid(), signal.SIGTERM))
    with pytest.raises(stops.StopSignal) as stopped:
        run_sweep(prepare(spec_file(TABLE_SPEC, "tiny"), _options(tmp_path, tracking_uri)))
    assert stopped.value.signum == signal.SIGTERM
    assert _parent_status(tracking_uri, "tiny")[0] == schema.STATUS_INTERRUPTED, "`sweeps run` draws it next time"
    assert signal.getsignal(signal.SIGTERM) is before


@pytest.mark.parametrize("signum, raised", [(signal.SIGINT, KeyboardInterrupt), (signal.SIGTERM, stops.StopSignal)])
def test_a_stop_signal_while_ray_starts_is_held_until_ray_has_started(monkeypatch, signum, raised):
    # Ctrl-C inside ray.init left a half-made core worker that crashed the driver at exit (exit 139, a core
    # dump, nothing marked); Ray's SIGTERM handler (sys.exit) did the same
    import ray
    import ray._private.utils as ray_utils

    steps, handlers_before = [], {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}

    def init(**kwargs):
        ray_utils.set_sigterm_handler(lambda signum, frame: sys.exit(signum))   # as ray.init does first
        os.kill(os.getpid(), signum)
        for _ in range(20):   # Python runs its handlers between these steps
            time.sleep(0.005)
        steps.append("ray started")

    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", init)
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    with pytest.raises(raised) as stopped:
        runner.connect_ray("ray://head:10001")
    assert steps == ["ray started"], "raised only once ray.init had returned"
    assert getattr(stopped.value, "signum", signal.SIGINT) == signum
    assert {s: signal.getsignal(s) for s in handlers_before} == handlers_before, "the handlers of before, not Ray's"


def test_a_local_ray_starts_no_idle_task_workers_a_sweep_never_uses_unless_the_user_sets_rays_variable(monkeypatch):
    # Ray prestarts one task worker per CPU for the first driver; trials are actors, each in a process of its
    # own, so they idled through the sweep (~0.45 s of CPU each to start, ~0.35 s a minute each after)
    import ray

    calls = []
    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", lambda **kwargs: calls.append(kwargs))
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    monkeypatch.delenv("RAY_prestart_worker_first_driver", raising=False)
    runner.connect_ray(None)
    monkeypatch.setenv("RAY_prestart_worker_first_driver", "1")   # the user's: Ray reads it, nothing overrides it
    runner.connect_ray(None)
    runner.connect_ray("10.0.0.10:6379")                            # a cluster's Ray is never configured
    assert [c.get("_system_config") for c in calls] == [{"prestart_worker_first_driver": False}, {}, None]


def test_a_sigterm_while_ray_starts_leaves_no_abort_alarm_of_rays_crash_handler_pending(monkeypatch):
    # ray.init installs Ray's C++ crash handler (absl's failure signal handler), which sees a SIGTERM first: it
    # passes it on to ours and arms alarm(3), whose SIGALRM aborts the process. `sweeps run` stopped so went on
    # to mark and exit, and died of SIGABRT within those 3 s: exit 134, not 143 (reproduced with `kill -TERM`
    # up to ~1.5 s after "Started a local Ray instance")
    import ray

    def init(**kwargs):
        signal.alarm(1)   # what absl's handler does on the SIGTERM, before it calls ours
        os.kill(os.getpid(), signal.SIGTERM)
        for _ in range(20):   # Python runs its handlers between these steps
            time.sleep(0.005)

    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", init)
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    aborts = []
    alarm_before = signal.signal(signal.SIGALRM, lambda signum, frame: aborts.append(signum))
    try:
        with pytest.raises(stops.StopSignal):
            runner.connect_ray("ray://head:10001")
        time.sleep(1.3)
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, alarm_before)
    assert aborts == [], "the crash handler's alarm went off after the stop it took for a crash"


@pytest.mark.parametrize("repeated_stop_s, stops_at_once", [(60.0, False), (0.001, True)])
def test_a_second_stop_signal_while_ray_starts_stops_at_once_unless_it_is_the_first_sent_again(
        monkeypatch, repeated_stop_s, stops_at_once):
    # `timeout` signals the driver, then its group: one stop, delivered twice at once, must still be held
    import ray

    steps = []

    def hanging_init(**kwargs):
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.02)
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.05)
        steps.append("ray started")

    monkeypatch.setattr(stops, "REPEATED_STOP_S", repeated_stop_s)   # the signals come 0.02 s apart
    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", hanging_init)
    before = signal.getsignal(signal.SIGTERM)
    with pytest.raises(stops.StopSignal):
        runner.connect_ray("ray://head:10001")
    assert steps == ([] if stops_at_once else ["ray started"]) and signal.getsignal(signal.SIGTERM) is before


def test_a_resumed_sweep_stopped_again_stops_and_starts_no_new_experiment(
        ray_local, tmp_path, tracking_uri, spec_file, monkeypatch):
    # the restored experiment's ResultGrid called every trial terminated after a stop, so the run went on
    # to train the unfinished cells in a new experiment and ended "completed": Ctrl-C did not stop a resume
    stop_at_the_first_result(monkeypatch)
    path = spec_file(TABLE_SPEC.replace("seeds: [0]", "seeds: [0, 1]"), "tiny")
    options = _options(tmp_path, tracking_uri, max_concurrent=1, overrides={"optim.epochs": 3})
    first = run_sweep(prepare(path, options))
    assert first.status == "interrupted"
    experiments = sorted(p.name for p in (tmp_path / "ray_results").iterdir() if p.name.startswith("tiny-"))
    again = run_sweep(prepare(path, options))
    assert again.status == "interrupted" and again.parent_run_id == first.parent_run_id
    assert first.stop_signal == again.stop_signal == signal.SIGTERM, "a stopped restore is a stop too"
    assert sorted(p.name for p in (tmp_path / "ray_results").iterdir() if p.name.startswith("tiny-")) == experiments


def test_a_sweep_stopped_while_mlflow_is_away_stops_at_once_and_says_how_to_continue(
        ray_local, tmp_path, tracking_uri, spec_file, monkeypatch):
    # after fit it read the cells' statuses with MLflow's retries (~4 min), raised MlflowException, then
    # tried to mark the parent with retries again: Ctrl-C took 8 minutes and ended in a traceback, exit 1
    from sweeps import tracking

    away = []
    on_trial_result = runner.SweepCallback.on_trial_result

    def server_gone_then_stopped(self, iteration, trials, trial, result, **info):
        on_trial_result(self, iteration, trials, trial, result, **info)
        if not stops.STOP_SIGNALS:
            away.append(True)
            os.kill(os.getpid(), signal.SIGTERM)

    monkeypatch.setattr(runner.SweepCallback, "on_trial_result", server_gone_then_stopped)
    monkeypatch.setattr(tracking, "reachable", lambda uri, timeout=2.0: not away)
    monkeypatch.setattr(runner, "INTERRUPTED_MARK_WAIT_S", 0.2)
    monkeypatch.setattr(tracking, "finish_parent", lambda *a: pytest.fail("no MLflow call while it is away"))
    options = _options(tmp_path, tracking_uri, max_concurrent=1, overrides={"optim.epochs": 3})
    before = time.monotonic()
    outcome = run_sweep(prepare(spec_file(TABLE_SPEC, "tiny"), options))
    assert outcome.status == "interrupted" and outcome.stop_signal == signal.SIGTERM, "exit 143, 'Continue with'"
    assert time.monotonic() - before < 60


def test_a_sweep_whose_trials_end_while_mlflow_is_away_says_the_command_that_continues_it_not_a_traceback(
        ray_local, tmp_path, tracking_uri, spec_file, monkeypatch):
    # it printed `sweeps run NAME` "with the same options": copied, that ran another invocation in ./mlflow.db
    # (no --tracking-uri, --set or --storage), training every cell again
    from sweeps import tracking

    away = []
    on_experiment_end = runner.SweepCallback.on_experiment_end

    def server_gone_at_the_end(self, trials, **info):
        on_experiment_end(self, trials, **info)
        away.append(True)

    monkeypatch.setattr(runner.SweepCallback, "on_experiment_end", server_gone_at_the_end)
    monkeypatch.setattr(tracking, "reachable", lambda uri, timeout=2.0: not away)
    monkeypatch.setenv(tracking.WAIT_ENV, "0.5")
    path = spec_file(TABLE_SPEC, "tiny")
    options = _options(tmp_path, tracking_uri, overrides={"optim.epochs": 1})
    with pytest.raises(tracking.TrackingError, match=r"unreachable for 0.5 s .* when the sweep's trials had ended: "
                                                     r"their runs hold what the server took\. `sweeps run ") as raised:
        run_sweep(prepare(path, options))
    command = re.search(r"`(sweeps run [^`]*)` once it answers", str(raised.value)).group(1)
    assert shlex.split(command) == ["sweeps", "run", path, "--cpus-per-trial", "1",
                                    "--storage", str(tmp_path / "ray_results"),
                                    "--max-failures", "0", "--tracking-uri", tracking_uri,
                                    "--set", "optim.epochs=1"]


def test_an_interrupted_sweep_resumed_with_fewer_seeds_trains_only_the_cells_it_plans(
        ray_local, tmp_path, tracking_uri, spec_file, monkeypatch, caplog):
    # the restored Tune experiment trained every cell it held, the seeds left out too ("4/2 done")
    path = spec_file(TABLE_SPEC.replace("seeds: [0]", "seeds: [0, 1]"), "tiny")
    options = _options(tmp_path, tracking_uri, max_concurrent=1, overrides={"optim.epochs": 2})
    with monkeypatch.context() as m:
        stop_at_the_first_result(m)
        first = run_sweep(prepare(path, options))
    assert first.status == "interrupted"
    caplog.clear()   # the first run's progress (of 4 cells), where an earlier test left INFO on
    with caplog.at_level(logging.INFO, logger="sweeps"):
        again = run_sweep(prepare(path, dataclasses.replace(options, seeds=1)))
    assert "restoring the Tune experiment" in caplog.text
    assert again.status == "completed" and again.parent_run_id == first.parent_run_id
    assert json.loads(_parent_tags(tracking_uri, again)[schema.TAG_COMMAND])["seeds"] == 1, "the latest run's options"
    assert again.counts["completed"] == 2, again.counts
    progress = [r.progress for r in caplog.records if r.name == "sweeps.progress"]
    assert all(p["done"] <= p["total"] == 2 for p in progress), progress
    _, children = _children(tracking_uri, again)
    assert sorted((r.data.tags[schema.TAG_SEED], r.data.tags[schema.TAG_STATUS]) for r in children) == [
        ("0", "completed"), ("0", "completed")], "no seed-1 cell was trained"


def test_arms_that_decode_the_data_differently_each_train_on_their_own(ray_local, tmp_path, tracking_uri,
                                                                       spec_file):
    # each cell reads the data its own config decodes (here: another validation carve), not the base's
    text = TABLE_SPEC.replace('{model.drop_variant: none}', '{model.drop_variant: none, data.val_fraction: 0.2}')
    text = text.replace('{model.drop_variant: mad}', '{model.drop_variant: mad, data.val_fraction: 0.4}')
    outcome = run_sweep(prepare(spec_file(text, "tiny"), _options(tmp_path, tracking_uri)))
    assert outcome.status == "completed"
    client = MlflowClient(tracking_uri)
    record = json.loads(Path(client.download_artifacts(outcome.parent_run_id, schema.ARTIFACT_DATA)).read_text())
    vals = sorted(entry["images"]["val"] for entry in record.values())
    assert len(vals) == 2 and vals[0] < vals[1], record


def test_continuing_on_a_data_set_changed_since_its_runs_trained_is_refused_unless_accepted(
        ray_local, tmp_path, tracking_uri, spec_file, caplog, monkeypatch):
    from test_data_imagefolder import make_tree

    root = make_tree(tmp_path / "faces", per_class=10)
    path = spec_file(TABLE_SPEC, "tiny")
    options = _options(tmp_path, tracking_uri, data=(f"imagefolder={root}",))
    first = run_sweep(prepare(path, options))
    assert first.status == "completed"
    first_fingerprints = _parent_tags(tracking_uri, first)[schema.TAG_DATA_FINGERPRINT]
    (root / "train" / "happy" / "0.JPG").rename(root / "train" / "angry" / "moved.JPG")   # one image relabelled
    # the same command again: nothing left to train, nothing mixed; told its table is of the earlier data
    with monkeypatch.context() as m, caplog.at_level("WARNING", logger="sweeps.runner"):
        m.setattr(runner, "connect_ray", lambda address=None: pytest.fail("nothing left to train"))
        rerun = run_sweep(prepare(path, options))
    assert rerun.status == "completed" and rerun.parent_run_id == first.parent_run_id
    assert ("differs from the one run" in caplog.text and "its table is of the data as it was: "
            f"`sweeps run {path} --fresh " in caplog.text and f"--data imagefolder={root}" in caplog.text)
    # and what differs, from the invocation's data.json: not only two fingerprints
    assert "now; what differs: as many images, in other classes (angry 20 -> 21, happy 20 -> 19): images " \
           "relabelled, or one removed from a class and another added to another)" in caplog.text
    more = dataclasses.replace(options, seeds=2)
    with pytest.raises(SweepError, match=r"the data set 'imagefolder' at .*faces differs from the one run \w+ of "
                                         r"invocation .* trained on .*what differs: as many images, in other classes"):
        run_sweep(prepare(path, more))
    _, children = _children(tracking_uri, first)
    assert len(children) == 2, "refused before any trial"
    accepted = run_sweep(prepare(path, dataclasses.replace(more, accept_changed_data=True)))
    assert accepted.status == "completed" and accepted.parent_run_id == first.parent_run_id
    # its table says the column mixes both versions: the parent keeps the change it went on after
    from sweeps.report import recorded_spec, sweep_table
    from sweeps.tables import load_sweep_runs

    runs = load_sweep_runs("tiny", tracking_uri=tracking_uri, parent_run_id=first.parent_run_id)
    before = json.loads(first_fingerprints)["imagefolder"]
    assert list(runs.parent.json_tag(schema.TAG_DATA_CHANGED, {})) == ["imagefolder"]
    assert sweep_table(runs, recorded_spec(runs)).mixed_data["imagefolder"][0] == before
    # the command `sweeps status` prints passes it on (its runs of the earlier data remain); a run given it with
    # nothing changed does not
    assert runs.parent.json_tag(schema.TAG_COMMAND, {}).get("accept_changed_data") is True
    # the change was warned of once, when accepted: the finished invocation run again, with or without the option,
    # says it not again (it did at each run: "its table is of the data as it was", of a table that mixes both)
    for again in (more, dataclasses.replace(more, accept_changed_data=True)):
        caplog.clear()
        with monkeypatch.context() as m, caplog.at_level("WARNING", logger="sweeps"):
            m.setattr(runner, "connect_ray", lambda address=None: pytest.fail("nothing left to train"))
            rerun = run_sweep(prepare(path, again))
        assert rerun.status == "completed" and rerun.parent_run_id == first.parent_run_id
        assert "differs from the one run" not in caplog.text, caplog.text


def test_a_change_after_one_accepted_is_told_what_differs_from_the_data_the_runs_trained_on(
        ray_local, tmp_path, tracking_uri, spec_file, caplog):
    # the continuation that accepted a change wrote the new data into data.json: a later change of the data was
    # refused (or warned of) with two fingerprints and no "what differs" for the runs that trained on the first version
    from test_data_imagefolder import make_tree

    root = make_tree(tmp_path / "faces", per_class=10)
    path = spec_file(TABLE_SPEC, "tiny")
    options = _options(tmp_path, tracking_uri, data=(f"imagefolder={root}",))
    first = run_sweep(prepare(path, options))
    assert first.status == "completed"
    (root / "train" / "happy" / "0.JPG").rename(root / "train" / "angry" / "moved.JPG")   # one image relabelled
    accepted = run_sweep(prepare(path, dataclasses.replace(options, seeds=2, accept_changed_data=True)))
    assert accepted.status == "completed" and accepted.parent_run_id == first.parent_run_id
    (root / "train" / "neutral" / "0.JPG").unlink()   # the third version: one image fewer
    # the seed-0 runs (this plan's) trained on the first version: 10 images a class in train, 10 in test
    told = r"what differs: 60 images then, 59 now\)"
    with caplog.at_level("WARNING", logger="sweeps"):   # finished: its table is of the data as it was
        assert run_sweep(prepare(path, options)).status == "completed"
    assert re.search(r"differs from the one run \w+ of invocation .*" + told, caplog.text), \
        [r.getMessage() for r in caplog.records if "differs" in r.getMessage()]
    client, children = _children(tracking_uri, first)
    client.delete_run(next(c for c in children if c.data.tags[schema.TAG_SEED] == "0").info.run_id)   # to train
    with pytest.raises(SweepError, match=r"the data set 'imagefolder' at .*faces differs from the one run \w+ of "
                                         r"invocation .*" + told):
        run_sweep(prepare(path, options))
    with pytest.raises(SweepError, match=told):   # and the seed-1 runs', which trained on the second
        run_sweep(prepare(path, dataclasses.replace(options, seeds=2)))


def test_the_cells_of_an_invocation_recorded_before_the_arm_param_get_it_when_it_is_run_again(
        ray_local, tmp_path, tracking_uri, spec_file, monkeypatch):
    # a continuation of an older invocation made its new cells' runs with the `arm` param and left the older ones
    # without it, finished ones too (never opened again): the MLflow UI's charts of params showed some cells only
    import sqlite3

    path = spec_file(TABLE_SPEC, "tiny")
    options = _options(tmp_path, tracking_uri)
    first = run_sweep(prepare(path, options))
    assert first.status == "completed"

    def as_an_earlier_version_recorded_them() -> None:
        with sqlite3.connect(tracking_uri.removeprefix("sqlite:///")) as db:
            db.execute("DELETE FROM params WHERE key = ?", (schema.PARAM_ARM,))

    as_an_earlier_version_recorded_them()
    with monkeypatch.context() as m:   # run again, finished: nothing to train
        m.setattr(runner, "connect_ray", lambda address=None: pytest.fail("nothing left to train"))
        assert run_sweep(prepare(path, options)).status == "completed"
    _, children = _children(tracking_uri, first)
    assert sorted(c.data.params.get(schema.PARAM_ARM) for c in children) == ["MAD", "No dropping"]
    as_an_earlier_version_recorded_them()
    more = run_sweep(prepare(path, dataclasses.replace(options, seeds=2)))   # continued: two more cells
    assert more.status == "completed" and more.parent_run_id == first.parent_run_id
    _, children = _children(tracking_uri, first)
    assert sorted(c.data.params.get(schema.PARAM_ARM) for c in children) == ["MAD", "MAD", "No dropping",
                                                                              "No dropping"]


def test_an_arm_at_another_image_size_on_a_changed_data_set_is_told_what_differs_too(
        ray_local, tmp_path, tracking_uri, spec_file):
    # data.json records such an arm's data as "<name>#<key>": its refusal gave two fingerprints and no "what differs"
    from test_data_imagefolder import make_tree

    root = make_tree(tmp_path / "faces", per_class=10)
    path = spec_file(TABLE_SPEC.replace("{model.drop_variant: mad}", "{model.drop_variant: mad, model.image_size: 48}"),
                     "tiny")
    options = _options(tmp_path, tracking_uri, data=(f"imagefolder={root}",))
    first = run_sweep(prepare(path, options))
    assert first.status == "completed"
    client, children = _children(tracking_uri, first)
    record = json.loads(Path(client.download_artifacts(first.parent_run_id, schema.ARTIFACT_DATA)).read_text())
    assert len(record) == 2 and any("#" in name for name in record), record
    plain = next(c for c in children if c.data.tags[schema.TAG_DATA_FINGERPRINT] == record["imagefolder"]["fingerprint"])
    client.delete_run(plain.info.run_id)   # left to train: the arm at 48 px is the one run it is checked against
    (root / "train" / "happy" / "0.JPG").rename(root / "train" / "angry" / "moved.JPG")   # one image relabelled
    with pytest.raises(SweepError, match=r"the data set 'imagefolder' at .*faces differs from the one run \w+ of "
                                         r"invocation .*what differs: as many images, in other classes \(angry 20 -> "
                                         r"21, happy 20 -> 19\)"):
        run_sweep(prepare(path, options))


def test_an_invocation_recorded_before_tiff_decoding_was_fingerprinted_continues_on_its_integer_tiffs(
        ray_local, tmp_path, tracking_uri, spec_file):
    # its runs' fingerprint lacks tiff_decoding: read as changed data, every cell was refused (or, --fresh, retrained)
    # although 8- and 16-bit TIFFs decode as they did then
    import numpy as np
    from PIL import Image
    from test_data_imagefolder import _fingerprint_before_tiff_decoding, make_tree

    from transfer_core.config import DataConfig

    root = make_tree(tmp_path / "faces", per_class=10)
    for i, path in enumerate(sorted(root.glob("*/happy/*"))):
        path.unlink()
        Image.fromarray(np.full((20, 20), 30000 + 100 * i, dtype=np.uint16)).save(path.with_suffix(".tif"))
    path = spec_file(TABLE_SPEC, "tiny")
    options = _options(tmp_path, tracking_uri, data=(f"imagefolder={root}",))
    first = run_sweep(prepare(path, options))
    assert first.status == "completed"
    client, children = _children(tracking_uri, first)
    cfg = DataConfig(dataset="imagefolder", root=str(root), cache_dir=str(tmp_path / "cache"))
    recorded = _fingerprint_before_tiff_decoding(cfg, 32)   # the smoke profile's image size
    assert children[0].data.tags[schema.TAG_DATA_FINGERPRINT] != recorded
    for child in children:   # as a version before it recorded them
        client.set_tag(child.info.run_id, schema.TAG_DATA_FINGERPRINT, recorded)
    more = run_sweep(prepare(path, dataclasses.replace(options, seeds=2)))
    assert more.status == "completed" and more.parent_run_id == first.parent_run_id
    assert more.skipped_cells == 2, "the cells recorded then are not trained again"
    from sweeps.report import recorded_spec, sweep_table
    from sweeps.tables import load_sweep_runs

    runs = load_sweep_runs("tiny", tracking_uri=tracking_uri, parent_run_id=first.parent_run_id)
    assert sweep_table(runs, recorded_spec(runs)).mixed_data == {} and not runs.parent.tags.get(schema.TAG_DATA_CHANGED)


def test_a_search_whose_sampler_draws_one_config_twice_trains_both_trials_and_finishes(
        ray_local, tmp_path, tracking_uri, spec_file):
    # a space of one point: every trial the same config; keyed by config alone, the second trial took over
    # the first one's run and the search counted one trial of two, ending failed on every run
    text = SEARCH_SPEC.replace("{optim.lr: {type: float, low: 1.0e-4, high: 1.0e-2, log: true}}",
                               "{model.num_lanets: {type: categorical, choices: [1]}}")
    text = text.replace("{type: threshold, lower: 1.01, n_warmup_steps: 0}", "{type: none}")
    path = spec_file(text, "tiny_search")
    options = _options(tmp_path, tracking_uri, max_concurrent=1, overrides={"optim.epochs": 1})
    outcome = run_sweep(prepare(path, options))
    assert outcome.status == "completed" and outcome.counts["completed"] == 2, outcome.counts
    _, children = _children(tracking_uri, outcome)
    assert len(children) == 2 and len({r.data.tags[schema.TAG_CELL_ID] for r in children}) == 2
    again = run_sweep(prepare(path, options))
    assert again.status == "completed" and again.parent_run_id == outcome.parent_run_id
    # `sweeps best` of it: the one configuration both trials trained (once, as the second repeats the
    # first), with the search's --set, is what the spec it writes trains
    from search_spaces.plan import expand
    from search_spaces.spec import load_text
    from sweeps.best import best_spec
    from sweeps.report import recorded_spec
    from sweeps.tables import load_sweep_runs
    from transfer_core.config import config_hash, from_flat, parse_value

    runs = load_sweep_runs("tiny_search", tracking_uri=tracking_uri)
    written = best_spec(runs, recorded_spec(runs), top=2, seeds=1)
    assert written.arms == ("Base", "Search #1") and "repeats the configuration of a trial ranked above it" in written.notes[0]
    cell = next(c for c in expand(load_text(written.text, source="best"), "smoke").cells if c.arm == "Search #1")
    trained = {k: parse_value(v) for k, v in children[0].data.params.items() if k != schema.PARAM_ARM}
    assert config_hash(cell.config) == config_hash(from_flat(trained))   # all but placement (num_threads)


def test_a_finished_search_asked_for_more_samples_goes_on_in_its_invocation_with_its_study(
        ray_local, tmp_path, tracking_uri, spec_file):
    # num_samples raised in the spec started a new invocation: every trial trained again, the study empty
    text = SEARCH_SPEC.replace("{type: threshold, lower: 1.01, n_warmup_steps: 0}", "{type: none}")
    options = _options(tmp_path, tracking_uri, max_concurrent=1, overrides={"optim.epochs": 1})
    first = run_sweep(prepare(spec_file(text, "tiny_search"), options))
    assert first.status == "completed" and first.counts["completed"] == 2
    _, before = _children(tracking_uri, first)
    more = prepare(spec_file(text.replace("num_samples: 2", "num_samples: 3"), "tiny_search"), options)
    again = run_sweep(more)
    assert again.parent_run_id == first.parent_run_id and again.status == "completed", again
    _, after = _children(tracking_uri, again)
    assert len(after) == 3 and {r.info.run_id for r in before} < {r.info.run_id for r in after}, \
        "the two trials it had are kept, not trained again; one more is drawn"
    assert all(r.data.tags[schema.TAG_STATUS] == "completed" for r in after)
    # one Optuna study holds the three: the third trial was drawn knowing the first two
    import cloudpickle

    state = sorted(Path(again.tune_path).glob("searcher-state-*.pkl"))[-1]
    study = cloudpickle.loads(state.read_bytes())["_ot_study"]
    assert [(t.number, t.state.name) for t in study.trials] == [(0, "COMPLETE"), (1, "COMPLETE"), (2, "COMPLETE")]
    assert run_sweep(more).parent_run_id == first.parent_run_id, "asked again: nothing left to do"


def test_a_search_begun_with_tunes_trial_names_names_the_trials_it_draws_when_continued_by_their_cell(
        ray_local, tmp_path, tracking_uri, spec_file, monkeypatch):
    # Tune makes a restored search's new trials from the experiment spec its generator pickled when the search
    # began: one begun before trials were named by their cell (e8f893f) named them train_cell_<id>_..._cell=...
    text = SEARCH_SPEC.replace("{type: threshold, lower: 1.01, n_warmup_steps: 0}", "{type: none}")
    options = _options(tmp_path, tracking_uri, max_concurrent=1, overrides={"optim.epochs": 1})
    with monkeypatch.context() as m:
        m.setattr(runner, "TRIAL_NAMING", {})   # as a version before e8f893f began it
        first = run_sweep(prepare(spec_file(text, "tiny_search"), options))
    assert first.status == "completed"
    begun = sorted(d.name for d in Path(first.tune_path).iterdir() if d.is_dir())
    assert len(begun) == 2 and all(name.startswith("train_cell_") for name in begun), begun
    again = run_sweep(prepare(spec_file(text.replace("num_samples: 2", "num_samples: 3"), "tiny_search"), options))
    assert again.status == "completed" and again.tune_path == first.tune_path
    folders = sorted(d.name for d in Path(again.tune_path).iterdir() if d.is_dir())
    drawn, = set(folders) - set(begun)
    assert re.fullmatch(r"trial_synthetic_seed0_[0-9a-f]{8}", drawn), folders
    assert list((Path(again.tune_path) / drawn).glob("checkpoint_*/state.pt")), "its checkpoints are kept there"
    _, children = _children(tracking_uri, again)
    assert sorted(r.data.tags[schema.TAG_STATUS] for r in children) == ["completed"] * 3


def test_a_table_begun_with_tunes_trial_names_names_the_cells_it_makes_when_continued_by_their_cell(
        ray_local, tmp_path, tracking_uri, spec_file, monkeypatch):
    # Tune makes a restored table's trials not yet made (past --max-concurrent) from the specs its generator
    # pickled when the table began: one begun before trials were named by their cell (e8f893f) named them so
    path = spec_file(TABLE_SPEC.replace("seeds: [0]", "seeds: [0, 1]"), "tiny")
    options = _options(tmp_path, tracking_uri, max_concurrent=1)
    with monkeypatch.context() as m:
        m.setattr(runner, "TRIAL_NAMING", {})   # as a version before e8f893f began it
        stop_at_the_first_result(m)
        first = run_sweep(prepare(path, options))
    assert first.status == "interrupted"
    begun = sorted(d.name for d in Path(first.tune_path).iterdir() if d.is_dir())
    assert len(begun) == 1 and begun[0].startswith("train_cell_"), begun
    again = run_sweep(prepare(path, options))
    assert again.status == "completed" and again.tune_path == first.tune_path, "restored, not begun anew"
    made = sorted(d.name.rsplit("_", 2)[0] for d in Path(again.tune_path).iterdir()
                  if d.is_dir() and d.name not in begun)
    arms = [f"{arm}_synthetic_seed{seed}" for arm in ("MAD", "No_dropping") for seed in (0, 1)]
    assert len(made) == 3 and set(made) < set(arms), made
    assert (Path(again.tune_path) / begun[0]).is_dir(), "the trial made before keeps its folder"


@pytest.mark.parametrize("sampler", ["gp", "qmc"])
def test_a_search_with_optunas_gp_or_qmc_sampler_records_its_trials_and_goes_on_with_its_study_when_continued(
        ray_local, tmp_path, tracking_uri, spec_file, sampler):
    # spec samplers beside tpe and random: GPSampler (fitted in the driver once a trial has ended, pruned ones
    # too) and QMCSampler, each seeded by the spec, through the pruner bridge, and restored from Tune's searcher
    # state when the search is asked for more samples
    import cloudpickle

    text = SEARCH_SPEC.replace("  n_startup_trials: 1\n", "  n_startup_trials: 1\n" if sampler == "gp" else "")
    text = text.replace("  num_samples: 2\n", f"  num_samples: 2\n  sampler: {sampler}\n")
    text = text.replace("{optim.lr: {type: float, low: 1.0e-4, high: 1.0e-2, log: true}}",
                        "{optim.lr: {type: float, low: 1.0e-4, high: 1.0e-2, log: true}, "
                        "model.num_lanets: [1, 2], model.depth: {type: int, low: 1, high: 2}}")
    options = _options(tmp_path, tracking_uri, max_concurrent=1, overrides={"optim.epochs": 2})
    first = run_sweep(prepare(spec_file(text, "tiny_search"), options))   # every trial pruned after its 1st epoch
    assert first.status == "completed" and first.counts["pruned"] == 2, first.counts
    again = run_sweep(prepare(spec_file(text.replace("num_samples: 2", "num_samples: 3"), "tiny_search"), options))
    assert again.parent_run_id == first.parent_run_id and again.counts["pruned"] == 3, again.counts
    _, children = _children(tracking_uri, again)
    assert sorted(r.data.tags[schema.TAG_STATUS] for r in children) == ["pruned"] * 3
    state = sorted(Path(again.tune_path).glob("searcher-state-*.pkl"))[-1]
    saved = cloudpickle.loads(state.read_bytes())
    study = saved["_ot_study"]
    import optuna

    assert isinstance(study.sampler, {"gp": optuna.samplers.GPSampler, "qmc": optuna.samplers.QMCSampler}[sampler])
    assert [t.state.name for t in study.trials] == ["PRUNED"] * 3
    if sampler == "gp":   # past its one random trial, a GP fitted to the pruned trials drew (kept in a system attr)
        assert all(any(k.startswith("gp:relative_params") for k in t.system_attrs) for t in study.trials[1:])
    drawn = [{k.rsplit("/", 1)[-1]: v for k, v in t.params.items()} for t in study.trials]   # Tune's search/optim.lr
    assert len({json.dumps(p, sort_keys=True) for p in drawn}) == 3, drawn
    trained = sorted((float(r.data.params["optim.lr"]), int(r.data.params["model.depth"])) for r in children)
    assert trained == sorted((p["optim.lr"], p["model.depth"]) for p in drawn), "each run trained its trial's draw"


def test_a_search_asked_for_fewer_samples_when_continued_starts_no_queued_trial_past_them(
        ray_local, tmp_path, tracking_uri, spec_file, monkeypatch, caplog):
    # Tune restores every unfinished trial: those drawn and queued when the search stopped ran too, past the
    # num_samples its spec now asks
    import cloudpickle

    text = SEARCH_SPEC.replace("{type: threshold, lower: 1.01, n_warmup_steps: 0}", "{type: none}")
    options = dataclasses.replace(_options(tmp_path, tracking_uri, max_concurrent=3, overrides={"optim.epochs": 1}),
                                  cpus_per_trial=2)   # one trial at a time on 2 CPUs: two drawn trials queue
    with monkeypatch.context() as m:
        stop_at_the_first_result(m)
        first = run_sweep(prepare(spec_file(text.replace("num_samples: 2", "num_samples: 4"), "tiny_search"),
                                  options))
    assert first.status == "interrupted" and len(tune_state.unfinished_trials(Path(first.tune_path))) >= 2
    with caplog.at_level(logging.INFO, logger="sweeps"):
        again = run_sweep(prepare(spec_file(text, "tiny_search"), options))
    assert again.parent_run_id == first.parent_run_id and again.status == "completed", again
    _, children = _children(tracking_uri, again)
    assert again.counts["completed"] == len(children) == 2, again
    assert re.search(r"the search tiny_search asks for 2 trials now \(num_samples\): [01] have ended and [01] had "
                     r"begun, which go on; 1 drawn but not begun is not run", caplog.text), caplog.text
    state = sorted(Path(again.tune_path).glob("searcher-state-*.pkl"))[-1]
    study = cloudpickle.loads(state.read_bytes())["_ot_study"]
    assert sorted(t.state.name for t in study.trials) == ["COMPLETE", "COMPLETE", "FAIL"], "the one left out: failed"


def test_a_search_whose_storage_folder_moved_goes_on_from_its_new_place_given_as_storage(
        ray_local, tmp_path, tracking_uri, spec_file, caplog):
    # the project copied to another disk (or rsynced from the cluster's head): its parent recorded the Tune
    # experiment's old folder, so the search "cannot be continued" and only --fresh was offered; restored from
    # the new folder, the trials the search drew from there on looked for the old one and failed every retry
    text = SEARCH_SPEC.replace("{type: threshold, lower: 1.01, n_warmup_steps: 0}", "{type: none}")
    options = _options(tmp_path, tracking_uri, max_concurrent=1, overrides={"optim.epochs": 1})
    first = run_sweep(prepare(spec_file(text, "tiny_search"), options))
    assert first.status == "completed" and first.counts["completed"] == 2
    moved = tmp_path / "elsewhere" / "ray_results"
    moved.parent.mkdir()
    (tmp_path / "ray_results").rename(moved)
    more = prepare(spec_file(text.replace("num_samples: 2", "num_samples: 3"), "tiny_search"),
                   dataclasses.replace(options, storage=str(moved)))
    with caplog.at_level(logging.INFO, logger="sweeps"):
        again = run_sweep(more)
    assert again.parent_run_id == first.parent_run_id and again.status == "completed", again
    assert again.counts["completed"] == 3 and again.skipped_cells == 2, "the two trials it had are kept"
    assert Path(again.tune_path) == moved / Path(first.tune_path).name
    assert _parent_tags(tracking_uri, again)[tracking.TAG_TUNE_PATH] == again.tune_path, "status reads it there"
    assert not (tmp_path / "ray_results").exists(), "nothing written to the old place"
    assert f"Tune experiment {first.tune_path} is continued from {again.tune_path}" in caplog.text
    import cloudpickle

    state = sorted(Path(again.tune_path).glob("searcher-state-*.pkl"))[-1]
    study = cloudpickle.loads(state.read_bytes())["_ot_study"]
    assert [t.state.name for t in study.trials] == ["COMPLETE"] * 3, "one study: the third drawn knowing the two"


def test_a_table_moved_with_its_store_while_interrupted_continues_every_cell_at_its_new_place(
        ray_local, tmp_path, tracking_uri, spec_file, monkeypatch, caplog):
    # the project folder (mlflow.db, mlartifacts/, ray_results/) moved to another disk: Tune's restored variant
    # generator made the cells it had not yet queued (all but --max-concurrent's, or past the 200 it queues at
    # once) with the storage of the run that began it, so they checkpointed into the old folder, made anew there;
    # and MLflow's absolute artifact locations sent models and report there too, where the table then found none
    path = spec_file(TABLE_SPEC.replace("seeds: [0]", "seeds: [0, 1]"), "tiny")
    options = _options(tmp_path, tracking_uri, max_concurrent=1, overrides={"optim.epochs": 1})
    with monkeypatch.context() as m:
        stop_at_the_first_result(m)
        first = run_sweep(prepare(path, options))
    assert first.status == "interrupted"
    moved = tmp_path / "elsewhere"
    moved.mkdir()
    for name in ("mlflow.db", "mlartifacts", "ray_results"):
        (tmp_path / name).rename(moved / name)
    with caplog.at_level(logging.INFO, logger="sweeps"):
        again = run_sweep(prepare(path, dataclasses.replace(options, tracking_uri=f"sqlite:///{moved / 'mlflow.db'}",
                                                            storage=str(moved / "ray_results"))))
    assert again.status == "completed" and again.parent_run_id == first.parent_run_id, again
    assert again.counts["completed"] == 4 and again.report_dir is not None, again
    assert "restoring the Tune experiment" in caplog.text
    assert sorted(p.name for p in tmp_path.iterdir()) == ["elsewhere", "tiny.yaml"], "nothing written to the old place"
    assert again.tune_path == str(moved / "ray_results" / Path(first.tune_path).name), "no second experiment"
    assert len([p for p in Path(again.tune_path).iterdir() if p.is_dir()]) == 4
    assert "Trial task failed" not in caplog.text and not list(moved.glob("ray_results/**/error.txt"))


def test_a_search_whose_storage_folder_is_neither_where_recorded_nor_in_storage_names_both_and_what_to_do(
        ray_local, tmp_path, tracking_uri, spec_file, monkeypatch):
    options = _options(tmp_path, tracking_uri, overrides={"optim.epochs": 2})
    outcome = run_sweep(prepare(spec_file(SEARCH_SPEC, "tiny_search"), options))
    _search_left_unfinished(tracking_uri, outcome)
    (tmp_path / "ray_results").rename(tmp_path / "moved")
    monkeypatch.setattr(runner, "decode_data", lambda configs: pytest.fail("data decoded before the check"))
    other = tmp_path / "other"
    name = Path(outcome.tune_path).name
    with pytest.raises(SweepError, match=rf"(?s)Tune experiment {re.escape(outcome.tune_path)}.* nor is a folder "
                                         rf"{name} in this run's --storage {re.escape(str(other))}\. If the storage "
                                         rf"folder was moved or copied, give its new place as --storage \(the folder "
                                         rf"that holds {name}\).*--fresh"):
        run_sweep(prepare(spec_file(SEARCH_SPEC, "tiny_search"), dataclasses.replace(options, storage=str(other))))


def test_continuing_an_invocation_whose_artifacts_are_not_here_is_an_error_before_anything_runs(
        tmp_path, tracking_uri, spec_file, monkeypatch):
    # a store copied without its mlartifacts/: the continued sweep wrote its models and report into the old
    # folder, made anew there (or failed there), and its report could not be drawn
    prepared = prepare(spec_file(TABLE_SPEC, "tiny"), _options(tmp_path, tracking_uri))
    client = MlflowClient(tracking_uri)
    gone = (tmp_path / "cluster" / "mlartifacts" / "tiny").as_uri()
    parent = tracking.start_parent(client, client.create_experiment("tiny", artifact_location=gone), "tiny",
                                   {tracking.TAG_INVOCATION: prepared.invocation_key})
    monkeypatch.setattr(runner, "decode_data", lambda configs: pytest.fail("data decoded before the check"))
    with pytest.raises(SweepError, match=rf"^sweep 'tiny' cannot be continued: the artifacts of run {parent} .* "
                                         rf"recorded in {re.escape(str(tmp_path / 'cluster'))}.* Else start it anew "
                                         rf"with `sweeps run .*tiny.yaml --fresh .*` \(a new MLflow parent run\)$"):
        run_sweep(prepared)
    assert not (tmp_path / "cluster").exists()


def test_search_sweep_pruned_trials_are_pruned_in_mlflow(ray_local, tmp_path, tracking_uri, spec_file):
    options = _options(tmp_path, tracking_uri, overrides={"optim.epochs": 4})
    outcome = run_sweep(prepare(spec_file(SEARCH_SPEC, "tiny_search"), options))
    _, children = _children(tracking_uri, outcome)
    assert len(children) == 2
    for run in children:
        assert run.data.tags[schema.TAG_STATUS] == "pruned"
        assert run.data.tags[schema.TAG_PRUNED_STEP] == "0"
    assert outcome.status == "completed" and outcome.counts["pruned"] == 2


def test_search_whose_pruned_marks_mlflow_refused_is_completed_by_the_next_run(
        ray_local, tmp_path, tracking_uri, spec_file, monkeypatch):
    # MLflow away when the trials were pruned, and past the experiment's end: the runs stay "running"
    # and the search unfinished until the next `sweeps run` makes the marks the driver kept on disk
    monkeypatch.setenv("SWEEPS_TRACKING_WAIT_S", "0")
    options = _options(tmp_path, tracking_uri, overrides={"optim.epochs": 2})
    real_mark_cell = runner.tracking.mark_cell

    def server_away(*args, **kwargs):
        raise runner.tracking.TrackingError("MLflow tracking server is unreachable")

    monkeypatch.setattr(runner.tracking, "mark_cell", server_away)
    first = run_sweep(prepare(spec_file(SEARCH_SPEC, "tiny_search"), options))
    assert first.status == "interrupted" and first.counts["running"] == 2
    kept = marks.marks_file_of(tmp_path / "ray_results", "tiny_search", first.parent_run_id)
    assert len(json.loads(kept.read_text())) == 2

    monkeypatch.setattr(runner.tracking, "mark_cell", real_mark_cell)
    restore = runner.tune.Tuner.restore
    restored_with_the_file: list[bool] = []

    def restore_after_the_marks(*args, **kwargs):   # a failed mark made later could hit a restarted trial's run
        restored_with_the_file.append(kept.exists())
        return restore(*args, **kwargs)

    monkeypatch.setattr(runner.tune.Tuner, "restore", restore_after_the_marks)
    # run from another folder with the default --storage: the marks are found beside the Tune experiment
    elsewhere = _options(tmp_path / "elsewhere", tracking_uri, overrides={"optim.epochs": 2})
    again = run_sweep(prepare(spec_file(SEARCH_SPEC, "tiny_search"), elsewhere))
    assert again.parent_run_id == first.parent_run_id and not kept.exists()
    assert restored_with_the_file == [], "every trial had ended once marked: nothing for Tune to restore"
    assert again.status == "completed" and again.counts["pruned"] == 2
    _, children = _children(tracking_uri, again)
    assert len(children) == 2, "no trial was run again"
    assert {r.data.tags[schema.TAG_STATUS] for r in children} == {"pruned"}


def test_search_whose_saved_tune_state_is_cut_short_is_an_error_naming_it_and_fresh(
        ray_local, tmp_path, tracking_uri, spec_file, monkeypatch, caplog):
    # a search's history lives only in Tune's state: continuing without it would silently start over
    options = _options(tmp_path, tracking_uri, overrides={"optim.epochs": 2})
    outcome = run_sweep(prepare(spec_file(SEARCH_SPEC, "tiny_search"), options))
    state = sorted(Path(outcome.tune_path).glob("experiment_state-*.json"))[-1]
    state.write_bytes(state.read_bytes()[: state.stat().st_size // 2])
    # a mark its driver kept (MLflow away at its end) is still made: `--fresh` would leave the run running;
    # the other trial was cut short (its run left running), so the search has something left to continue
    client, (pruned, cut_short) = _children(tracking_uri, outcome)
    for run in (pruned, cut_short):
        client.set_tag(run.info.run_id, schema.TAG_STATUS, schema.STATUS_RUNNING)
    kept = marks.marks_file_of(tmp_path / "ray_results", "tiny_search", outcome.parent_run_id)
    kept.write_text(json.dumps([[pruned.info.run_id, "ended", 0]]))
    monkeypatch.setattr(runner, "decode_data", lambda configs: pytest.fail("data decoded before the check"))
    path = spec_file(SEARCH_SPEC, "tiny_search")   # the way out names the file: tiny_search is no shipped sweep
    with pytest.raises(SweepError, match=rf"(?s)search 'tiny_search' .* cannot be continued.*{state.name}.*"
                                         rf"sweeps run {re.escape(str(path))} --fresh"):
        run_sweep(prepare(path, options))
    assert client.get_run(pruned.info.run_id).data.tags[schema.TAG_STATUS] == "pruned" and not kept.exists()
    # `--fresh`, the way out, leaves the invocation behind: its kept marks are made before the new one starts
    client.set_tag(pruned.info.run_id, schema.TAG_STATUS, schema.STATUS_RUNNING)
    kept.write_text(json.dumps([[pruned.info.run_id, "ended", 0]]))

    class NewInvocationStarted(Exception):
        pass

    def started(configs):
        raise NewInvocationStarted

    monkeypatch.setattr(runner, "decode_data", started)
    with pytest.raises(NewInvocationStarted):
        run_sweep(prepare(spec_file(SEARCH_SPEC, "tiny_search"), dataclasses.replace(options, fresh=True)))
    assert client.get_run(pruned.info.run_id).data.tags[schema.TAG_STATUS] == "pruned" and not kept.exists()
    # ... and a kept file it cannot read does not stop the user's way out: a warning, the file left
    kept.write_text('[["run-a", "ended"')
    with caplog.at_level(logging.WARNING, logger="sweeps.runner"), pytest.raises(NewInvocationStarted):
        run_sweep(prepare(spec_file(SEARCH_SPEC, "tiny_search"), dataclasses.replace(options, fresh=True)))
    assert f"{kept} (the marks an earlier run" in caplog.text and "--fresh goes on" in caplog.text and kept.exists()


def _search_left_unfinished(tracking_uri, outcome):
    """Its trials' runs marked running again: a search cut short, with something left to continue."""
    client, children = _children(tracking_uri, outcome)
    for run in children:
        client.set_tag(run.info.run_id, schema.TAG_STATUS, schema.STATUS_RUNNING)
    return client


@pytest.mark.parametrize("gone", ["folder", "state"])
def test_search_whose_tune_experiment_is_gone_is_an_error_not_a_second_study_under_the_same_run(
        ray_local, tmp_path, tracking_uri, spec_file, monkeypatch, gone):
    # restored from nothing, a new Optuna study ran num_samples more trials under the same invocation
    options = _options(tmp_path, tracking_uri, overrides={"optim.epochs": 2})
    outcome = run_sweep(prepare(spec_file(SEARCH_SPEC, "tiny_search"), options))
    _search_left_unfinished(tracking_uri, outcome)
    shutil.rmtree(outcome.tune_path)   # `rm -rf ray_results`, or a resume on another machine
    if gone == "state":   # the folder left, Tune's state not in it (emptied; a driver killed before its first save)
        Path(outcome.tune_path).mkdir()
    monkeypatch.setattr(runner, "decode_data", lambda configs: pytest.fail("data decoded before the check"))
    with pytest.raises(SweepError, match=rf"(?s)search 'tiny_search' .* cannot be continued.*"
                                         rf"{re.escape(outcome.tune_path)}.*2 recorded trials.*--fresh"):
        run_sweep(prepare(spec_file(SEARCH_SPEC, "tiny_search"), options))


def test_search_that_cannot_be_continued_names_a_fresh_start_of_the_same_invocation_with_its_options(
        ray_local, tmp_path, tracking_uri, spec_file):
    # `sweeps run FILE --fresh` alone, copied, trained the spec's profile without the --set, into ./mlflow.db
    from sweeps.cli import _run_options, run as run_command

    path = spec_file(SEARCH_SPEC, "tiny_search")
    options = _options(tmp_path, tracking_uri, profile="smoke", overrides={"optim.epochs": 2})
    outcome = run_sweep(prepare(path, options))
    _search_left_unfinished(tracking_uri, outcome)
    shutil.rmtree(outcome.tune_path)
    with pytest.raises(SweepError, match="Start the search over with") as caught:
        run_sweep(prepare(path, options))
    words = shlex.split(re.search(r"Start the search over with `([^`]*)`", str(caught.value)).group(1))
    assert words[:4] == ["sweeps", "run", path, "--fresh"]
    params = run_command.make_context("run", words[2:]).params
    assert params.pop("name") == path
    given = _run_options(**params)
    assert given.fresh and (given.tracking_uri, given.storage) == (tracking_uri, options.storage)
    assert prepare(path, given).invocation_key == prepare(path, options).invocation_key


def test_a_table_continued_under_other_package_versions_and_commit_records_them_beside_those_it_began_with(
        ray_local, tmp_path, tracking_uri, spec_file, monkeypatch):
    # sweeps.versions kept the versions the invocation began with, sweeps.package_version the latest run's alone:
    # cells trained under another torch by a continuation were recorded as trained under the first; and
    # sweeps.git_commit kept the first run's commit after sweeps.versions said "a then b"
    path = spec_file(TABLE_SPEC, "tiny")
    first = run_sweep(prepare(path, _options(tmp_path, tracking_uri)))
    began = json.loads(_parent_tags(tracking_uri, first)[schema.TAG_VERSIONS])
    commit = _parent_tags(tracking_uri, first)[schema.TAG_GIT_COMMIT]
    assert tracking.versions_changed(_parent_tags(tracking_uri, first)) == {}
    now = tracking.package_versions()
    monkeypatch.setattr(tracking, "package_versions", lambda: {**now, "torch": "9.9.9"})
    monkeypatch.setattr(tracking, "git_commit", lambda: "c0ffee1")
    again = run_sweep(prepare(path, _options(tmp_path, tracking_uri, seeds=2)))   # trains the seed-1 cells
    assert again.parent_run_id == first.parent_run_id and again.status == "completed"
    versions = json.loads(_parent_tags(tracking_uri, again)[schema.TAG_VERSIONS])
    assert versions == {**began, "torch": f"{began['torch']} then 9.9.9"}
    assert _parent_tags(tracking_uri, again)[schema.TAG_GIT_COMMIT] == f"{commit} then c0ffee1"
    monkeypatch.setattr(tracking, "package_versions", lambda: {**now, "torch": "10.0.0"})
    monkeypatch.setattr(tracking, "git_commit", lambda: "d00d")
    run_sweep(prepare(path, _options(tmp_path, tracking_uri, seeds=2)))   # found finished: trains nothing
    assert json.loads(_parent_tags(tracking_uri, again)[schema.TAG_VERSIONS]) == versions
    assert _parent_tags(tracking_uri, again)[schema.TAG_GIT_COMMIT] == f"{commit} then c0ffee1"


def test_a_finished_table_cut_short_at_its_end_and_drawn_again_with_fewer_seeds_names_those_seeds(
        ray_local, tmp_path, tracking_uri, spec_file):
    # nothing left to train: the report was drawn under the seeds tag of the earlier run
    path = spec_file(TABLE_SPEC.replace("seeds: [0]", "seeds: [0, 1]"), "tiny")
    first = run_sweep(prepare(path, _options(tmp_path, tracking_uri)))
    client = MlflowClient(tracking_uri)
    client.set_tag(first.parent_run_id, schema.TAG_STATUS, schema.STATUS_INTERRUPTED)   # cut short drawing it
    again = run_sweep(prepare(path, dataclasses.replace(_options(tmp_path, tracking_uri), seeds=1)))
    assert again.parent_run_id == first.parent_run_id and again.status == "completed"
    assert json.loads(client.get_run(first.parent_run_id).data.tags[schema.TAG_SEEDS]) == [0]


def test_search_begun_in_another_direction_than_its_spec_now_means_is_an_error(
        ray_local, tmp_path, tracking_uri, spec_file, monkeypatch):
    # a loss's mode defaulted to max before: the restored study would go on searching for the highest loss
    spec = SEARCH_SPEC.replace("metric: val_acc\nmode: max", "metric: val_loss")
    options = _options(tmp_path, tracking_uri, overrides={"optim.epochs": 2})
    outcome = run_sweep(prepare(spec_file(spec, "tiny_search"), options))
    client = _search_left_unfinished(tracking_uri, outcome)
    plan = tracking.read_json_artifact(client, outcome.parent_run_id, schema.ARTIFACT_PLAN)
    assert (plan["metric"], plan["mode"]) == ("val_loss", "min")
    tracking.log_json_artifact(client, outcome.parent_run_id, schema.ARTIFACT_PLAN, {**plan, "mode": "max"})
    monkeypatch.setattr(runner, "decode_data", lambda configs: pytest.fail("data decoded before the check"))
    with pytest.raises(SweepError, match=r"(?s)cannot be continued: it began with metric val_loss and mode max.*"
                                         r"now means metric val_loss and mode min.*--fresh"):
        run_sweep(prepare(spec_file(spec, "tiny_search"), options))


class _OwnCallback(runner.tune.Callback):
    """The only callback an experiment begun by an older version pickled: it left the loggers to Tune."""


def test_an_experiment_begun_with_tunes_default_loggers_still_writes_its_trial_files_when_continued(
        ray_local, tmp_path, monkeypatch):
    # Tune restores the callbacks pickled when the experiment began; with Tune's defaults now off at
    # `fit`, a continued trial of such an experiment would write no result.json
    monkeypatch.delenv(runner.NO_TUNE_LOGGERS, raising=False)
    failed_once = tmp_path / "failed-once"

    def trainable(config):
        if not failed_once.exists():
            failed_once.touch()
            raise RuntimeError("the driver's first try ends here")
        runner.tune.report({"val_acc": 0.5})

    run_config = runner.tune.RunConfig(name="begun-earlier", storage_path=str(tmp_path),
                                       callbacks=[_OwnCallback()])
    runner.tune.Tuner(trainable, run_config=run_config).fit()
    tuner = runner.restore_tuner(str(tmp_path / "begun-earlier"), trainable)
    with runner._without_tensorboard_logger():
        grid = tuner.fit()
    assert not grid.errors
    trial, = [d for d in (tmp_path / "begun-earlier").iterdir() if d.is_dir()]
    assert json.loads((trial / "result.json").read_text().splitlines()[-1])["val_acc"] == 0.5
    assert (trial / "progress.csv").read_text().count("val_acc") == 1


def test_a_restored_experiments_sweep_callback_marks_in_the_store_this_run_reaches(monkeypatch):
    # it was pickled with the URI of the run that began the experiment: a server that moved since
    callback = runner.SweepCallback("http://old-head:5000", 2, "val_acc", "max")
    run_config = SimpleNamespace(callbacks=[callback])
    restored = SimpleNamespace(_local_tuner=SimpleNamespace(get_run_config=lambda: run_config))
    monkeypatch.setattr(runner.tune.Tuner, "restore", lambda *args, **kwargs: restored)
    assert runner.restore_tuner("unused", None, tracking_uri="http://new-head:5000") is restored
    assert callback.tracking_uri == "http://new-head:5000"
    assert callback in run_config.callbacks


def test_a_restored_experiments_sweep_callback_keeps_its_marks_in_this_runs_storage(monkeypatch, tmp_path):
    # it was pickled with the marks file of the storage the experiment began in: moved since, the queue of
    # marks went to the old folder (made anew there), where no later run of the moved storage looked
    callback = runner.SweepCallback("sqlite:///m.db", 2, "val_acc", "max", marks_file=str(tmp_path / "a" / "m.json"))
    run_config = SimpleNamespace(callbacks=[callback])
    restored = SimpleNamespace(_local_tuner=SimpleNamespace(get_run_config=lambda: run_config))
    monkeypatch.setattr(runner.tune.Tuner, "restore", lambda *args, **kwargs: restored)
    runner.restore_tuner("unused", None, marks_file=str(tmp_path / "b" / "m.json"))
    assert callback.marks_file == str(tmp_path / "b" / "m.json")


def test_a_restored_experiments_sweep_callback_looks_for_a_full_disk_in_this_runs_storage(monkeypatch, tmp_path):
    # a callback pickled before it knew the storage (or with the folder the experiment began in, moved since) would
    # not call a trial's ENOSPC in this run's --storage the storage's, and the sweep went on retrying onto it
    callback = runner.SweepCallback("sqlite:///m.db", 2, "val_acc", "max")
    del callback.storage   # as an older version pickled it
    run_config = SimpleNamespace(callbacks=[callback])
    restored = SimpleNamespace(_local_tuner=SimpleNamespace(get_run_config=lambda: run_config))
    monkeypatch.setattr(runner.tune.Tuner, "restore", lambda *args, **kwargs: restored)
    runner.restore_tuner("unused", None, storage=str(tmp_path / "moved"))
    assert callback.storage == str(tmp_path / "moved")


def test_a_continuations_max_failures_reaches_the_trials_its_restored_experiment_holds(monkeypatch):
    # `sweeps resume --max-failures 0` was recorded as given, while each restored trial kept the 2 retries it
    # was created with (and a search drew new ones from its restored spec with 2 too)
    callback = runner.SweepCallback("sqlite:///m.db", 2, "val_acc", "max")
    run_config = SimpleNamespace(callbacks=[callback])
    restored = SimpleNamespace(_local_tuner=SimpleNamespace(get_run_config=lambda: run_config))
    monkeypatch.setattr(runner.tune.Tuner, "restore", lambda *args, **kwargs: restored)
    monkeypatch.setattr(runner.SweepCallback, "_warm_up_in_the_tail", lambda self, trials, ended=None: None)
    runner.restore_tuner("unused", None, max_failures=0)
    trial = SimpleNamespace(max_failures=2)
    callback.on_trial_start(1, [trial], trial)
    assert trial.max_failures == 0
    fresh = runner.SweepCallback("sqlite:///m.db", 2, "val_acc", "max")   # a run that began the experiment
    fresh.on_trial_start(1, [trial := SimpleNamespace(max_failures=2)], trial)
    assert trial.max_failures == 2, "its FailureConfig decided"


def test_cells_training_the_papers_network_on_real_data_from_random_weights_are_warned_of(caplog):
    # the paper profile on RAF-DB without the release's pretrained weights: a table far below the paper's,
    # which nothing said why
    from transfer_core.config import DataConfig, ModelConfig, TrialConfig

    def plan(dataset="rafdb", **model):
        data = DataConfig(dataset=dataset, root=None if dataset == "synthetic" else "/data/RAF-DB/basic")
        return SimpleNamespace(configs=[TrialConfig(model=ModelConfig(**model), data=data)])

    with caplog.at_level(logging.WARNING, logger="sweeps.runner"):
        runner.warn_of_random_initialisation(plan(stem_checkpoint="ir50.pth"))
    assert ("cells train on a real data set with the 768-d encoder from random weights" in caplog.text
            and caplog.text.rstrip().endswith("give the files with --set model.encoder_checkpoint=PATH"))
    for quiet in (plan(dataset="synthetic"), plan(stem_checkpoint="ir50.pth", encoder_checkpoint="vit.pth"),
                  plan(stem="small", encoder=False)):
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="sweeps.runner"):
            runner.warn_of_random_initialisation(quiet)
        assert caplog.text == ""


def test_a_cell_whose_training_diverges_completes_at_that_epoch_without_a_score(ray_local, tmp_path, tracking_uri,
                                                                               spec_file):
    # it trained on NaN weights to its last epoch, scoring class 0's share of the test set as its accuracy
    from sweeps.trainable import EPOCH_SCORES

    overrides = {"optim.optimizer": "sgd", "optim.lr": 1e30, "optim.epochs": 3}
    outcome = run_sweep(prepare(spec_file(TABLE_SPEC, "tiny"), _options(tmp_path, tracking_uri, overrides=overrides)))
    assert outcome.status == "completed" and outcome.counts["completed"] == 2, outcome.counts
    client, children = _children(tracking_uri, outcome)
    for run in children:
        assert run.data.tags[schema.TAG_STATUS] == schema.STATUS_COMPLETED
        assert run.data.metrics["epochs_done"] == 1 and math.isnan(run.data.metrics["sel_test_acc"])
        # its curves in MLflow (and the figures) show no score for it, not the share of class 0
        assert all(math.isnan(run.data.metrics[key]) for key in EPOCH_SCORES), run.data.metrics
        assert [a.path for a in client.list_artifacts(run.info.run_id, "model")], "its weights are logged"
        history = json.loads(Path(client.download_artifacts(run.info.run_id, schema.ARTIFACT_HISTORY,
                                                            str(tmp_path))).read_text())
        assert history["diverged_epoch"] == 1 and history["stopped_early"]


def test_a_search_trial_whose_training_diverges_gives_optuna_no_score_and_is_ranked_below_every_value(
        ray_local, tmp_path, tracking_uri, spec_file):
    # its diverged epoch's val_acc, the share of class 0 (NaN weights predict it for every image), reached
    # Tune and Optuna as the trial's result: COMPLETE with a value like a real one, which TPE learnt from
    from sweeps.best import best_spec
    from sweeps.pruning import NAN_VALUE_ATTR
    from sweeps.report import recorded_spec
    from sweeps.tables import TableError, load_sweep_runs

    text = SEARCH_SPEC.replace("{optim.lr: {type: float, low: 1.0e-4, high: 1.0e-2, log: true}}",
                               "{optim.lr: {type: float, low: 1.0e+29, high: 1.0e+30, log: true}}")
    text = text.replace("{type: threshold, lower: 1.01, n_warmup_steps: 0}", "{type: none}")
    options = _options(tmp_path, tracking_uri, max_concurrent=1,
                       overrides={"optim.optimizer": "sgd", "optim.epochs": 2})
    outcome = run_sweep(prepare(spec_file(text, "tiny_search"), options))
    assert outcome.status == "completed" and outcome.counts["completed"] == 2, outcome.counts
    import cloudpickle

    state = sorted(Path(outcome.tune_path).glob("searcher-state-*.pkl"))[-1]
    study = cloudpickle.loads(state.read_bytes())["_ot_study"]
    assert [(t.state.name, t.value, t.user_attrs.get(NAN_VALUE_ATTR)) for t in study.trials] == [("PRUNED", None, 1)] * 2
    assert all(math.isnan(t.intermediate_values[1]) for t in study.trials)
    with pytest.raises(TableError, match=r"val_loss was NaN at every epoch of 2 of them, as when training diverges"):
        runs = load_sweep_runs("tiny_search", tracking_uri=tracking_uri)
        best_spec(runs, recorded_spec(runs))


def test_resume_without_an_earlier_invocation_is_an_error(ray_local, tmp_path, tracking_uri, spec_file):
    prepared = prepare(spec_file(TABLE_SPEC, "tiny"), _options(tmp_path, tracking_uri))
    with pytest.raises(SweepError, match=r"nothing to resume: no earlier invocation of 'tiny'"):
        run_sweep(prepared, resume_only=True)


def test_resume_with_other_options_than_an_unfinished_invocation_names_that_one_and_its_options(
        tmp_path, tracking_uri, spec_file):
    # `resume NAME` without the run's --set said only "start it with sweeps run", which trains anew
    from sweeps import tracking

    client = MlflowClient(tracking_uri)
    experiment_id = tracking.ensure_experiment(client, "tiny", tracking_uri)
    stopped = tracking.start_parent(client, experiment_id, "tiny", {
        schema.TAG_PROFILE: "smoke", schema.TAG_DATA: "synthetic", schema.TAG_OVERRIDES: '{"optim.epochs": 3}'})
    tracking.finish_parent(client, stopped, schema.STATUS_INTERRUPTED)
    finished = tracking.start_parent(client, experiment_id, "tiny", {schema.TAG_PROFILE: "smoke"})
    tracking.finish_parent(client, finished, schema.STATUS_COMPLETED)
    prepared = prepare(spec_file(TABLE_SPEC, "tiny"), _options(tmp_path, tracking_uri))
    with pytest.raises(SweepError, match=rf"nothing to resume: .*Unfinished invocations of 'tiny' recorded \(resume "
                                         rf"one with its --profile, its --set and its --data, roots included, and the "
                                         rf"spec as it was\): run {stopped[:8]} \(interrupted\): profile smoke, data "
                                         rf"synthetic, --set optim.epochs=3$"):
        run_sweep(prepared, resume_only=True)


def test_resume_that_finds_a_completed_invocation_names_no_unfinished_one_of_the_same_options(
        tmp_path, tracking_uri, spec_file):
    # one a `--fresh` run left behind was named as one to resume "with its --profile, its --set and its
    # --data": the very options given, which find the newer, completed invocation again
    from sweeps import tracking

    prepared = prepare(spec_file(TABLE_SPEC, "tiny"), _options(tmp_path, tracking_uri))
    client = MlflowClient(tracking_uri)
    experiment_id = tracking.ensure_experiment(client, "tiny", tracking_uri)
    tags = {tracking.TAG_INVOCATION: prepared.invocation_key, schema.TAG_SEEDS: "[0]", schema.TAG_PROFILE: "smoke",
            schema.TAG_OVERRIDES: runner._overrides_tag(prepared), schema.TAG_SPEC_HASH: prepared.spec.spec_hash}
    left_behind = tracking.start_parent(client, experiment_id, "tiny", tags)
    tracking.finish_parent(client, left_behind, schema.STATUS_INTERRUPTED)
    done = tracking.start_parent(client, experiment_id, "tiny", tags)   # `sweeps run tiny --fresh`
    for cell in prepared.plan.cells:
        client.create_run(experiment_id, tags={schema.TAG_PARENT: done, schema.TAG_ROLE: schema.ROLE_CELL,
                                               schema.TAG_CELL_ID: cell.cell_id, schema.TAG_STATUS: "completed"})
    tracking.finish_parent(client, done, schema.STATUS_COMPLETED)
    with pytest.raises(SweepError, match=rf"nothing to resume: invocation {done[:8]} of 'tiny' .* already completed") \
            as caught:
        run_sweep(prepared, resume_only=True)
    assert left_behind[:8] not in str(caught.value) and "Unfinished" not in str(caught.value), str(caught.value)


def test_resume_that_finds_a_completed_invocation_says_so_and_names_the_unfinished_ones(
        tmp_path, tracking_uri, spec_file):
    # `sweeps resume NAME` with the interrupted run's --set forgotten matched an older, completed invocation
    # and reported "completed in 1 s", exit 0, the interrupted one untouched
    from sweeps import tracking

    prepared = prepare(spec_file(TABLE_SPEC, "tiny"), _options(tmp_path, tracking_uri))
    client = MlflowClient(tracking_uri)
    experiment_id = tracking.ensure_experiment(client, "tiny", tracking_uri)
    stopped = tracking.start_parent(client, experiment_id, "tiny", {
        schema.TAG_PROFILE: "smoke", schema.TAG_DATA: "synthetic", schema.TAG_OVERRIDES: '{"optim.epochs": 3}'})
    tracking.finish_parent(client, stopped, schema.STATUS_INTERRUPTED)
    done = tracking.start_parent(client, experiment_id, "tiny", {
        tracking.TAG_INVOCATION: prepared.invocation_key, schema.TAG_SEEDS: "[0]", schema.TAG_PROFILE: "smoke",
        schema.TAG_OVERRIDES: runner._overrides_tag(prepared), schema.TAG_SPEC_HASH: prepared.spec.spec_hash})
    for cell in prepared.plan.cells:
        client.create_run(experiment_id, tags={schema.TAG_PARENT: done, schema.TAG_ROLE: schema.ROLE_CELL,
                                               schema.TAG_CELL_ID: cell.cell_id, schema.TAG_STATUS: "completed"})
    tracking.finish_parent(client, done, schema.STATUS_COMPLETED)
    with pytest.raises(SweepError, match=rf"nothing to resume: invocation {done[:8]} of 'tiny' with this profile, "
                                         rf"data and overrides is already completed .*Unfinished invocations .*"
                                         rf"run {stopped[:8]} \(interrupted\)"):
        run_sweep(prepared, resume_only=True)
    more = prepare(spec_file(TABLE_SPEC, "tiny"), _options(tmp_path, tracking_uri, seeds=2))
    assert not invocations.finished_as_planned(client, experiment_id, client.get_run(done), more.plan), \
        "resume --seeds 2 has cells to train"
    placed = prepare(spec_file(TABLE_SPEC, "tiny"), _options(tmp_path, tracking_uri, overrides={"num_threads": 1}))
    assert not invocations.finished_as_planned(client, experiment_id, client.get_run(done), placed.plan), \
        "as `run` does, it records the placement --set and draws the report again"


def _recorded_invocation(tracking_uri, prepared, key: str, spec_text: str, status: str = "completed") -> str:
    """A parent run as `sweeps run` records one, its cells completed, under invocation key `key`."""
    from sweeps import tracking

    client = MlflowClient(tracking_uri)
    experiment_id = tracking.ensure_experiment(client, "tiny", tracking_uri)
    parent = tracking.start_parent(client, experiment_id, "tiny", {
        tracking.TAG_INVOCATION: key, schema.TAG_SEEDS: "[0]", schema.TAG_PROFILE: "smoke",
        schema.TAG_DATA: "synthetic", schema.TAG_OVERRIDES: runner._overrides_tag(prepared),
        schema.TAG_SPEC_HASH: hashlib.sha256(spec_text.encode()).hexdigest()[:12]})
    tracking.log_text_artifact(client, parent, schema.ARTIFACT_SPEC, spec_text)
    for cell in prepared.plan.cells:
        client.create_run(experiment_id, tags={schema.TAG_PARENT: parent, schema.TAG_ROLE: schema.ROLE_CELL,
                                               schema.TAG_CELL_ID: cell.cell_id, schema.TAG_STATUS: "completed"})
    tracking.finish_parent(client, parent, status)
    return parent


def test_a_new_invocation_on_the_data_moved_to_another_folder_is_warned_of_naming_the_way_to_continue(
        tmp_path, tracking_uri, spec_file, monkeypatch, caplog):
    # the folders are part of an invocation: a researcher who moved the data to another disk retrained every cell,
    # with not a word of the invocation that had trained them
    from test_data_imagefolder import make_tree

    path = spec_file(TABLE_SPEC, "tiny")
    old = make_tree(tmp_path / "old, faces")   # a comma in the folder: data_roots joins folders with commas
    first = prepare(path, _options(tmp_path, tracking_uri, data=(f"imagefolder={old}",)))
    parent = _recorded_invocation(tracking_uri, first, first.invocation_key, first.spec.text)
    client = MlflowClient(tracking_uri)
    client.set_tag(parent, schema.TAG_DATA, "imagefolder")
    for key, value in runner.parent_params(first).items():
        client.log_param(parent, key, value)
    new = old.rename(tmp_path / "disk2")

    class Stop(Exception):
        pass

    monkeypatch.setattr(runner, "decode_data", lambda configs: (_ for _ in ()).throw(Stop()))
    with caplog.at_level(logging.WARNING, logger="sweeps.invocations"), pytest.raises(Stop):
        run_sweep(prepare(path, _options(tmp_path, tracking_uri, data=(f"imagefolder={new}",))))
    assert (f"sweep tiny: a new invocation starts, and every cell trains again: invocation {parent[:8]} (completed) "
            f"ran this spec, profile and --set on imagefolder at {old} (now given {new}). If the data only moved, "
            f"continue that one: give the folder it ran on (a link there to the new one will do: "
            f"`ln -s {new} '{old}'`)") in caplog.text
    old.symlink_to(new)   # as it says: that invocation is the one continued
    assert prepare(path, _options(tmp_path, tracking_uri, data=(f"imagefolder={old}",))).invocation_key == \
        first.invocation_key
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="sweeps.invocations"), pytest.raises(Stop):   # other --set: no word
        run_sweep(prepare(path, _options(tmp_path, tracking_uri, data=(f"imagefolder={new}",),
                                         overrides={"optim.epochs": 1})))
    assert "a new invocation starts" not in caplog.text


def test_a_new_invocation_both_of_an_edited_spec_and_on_moved_data_says_once_that_it_starts_and_names_each_once(
        tmp_path, tracking_uri, spec_file, monkeypatch, caplog):
    # an invocation of the spec before its edit on this folder, and one of this spec on the folder the data left: two
    # warnings each opened "a new invocation starts, and every cell trains again", and the invocations were listed
    # from MLflow once for each
    from test_data_imagefolder import make_tree

    from sweeps import tracking

    old = make_tree(tmp_path / "old")
    new = tmp_path / "new"
    client = MlflowClient(tracking_uri)
    edited = TABLE_SPEC.replace("  - {label: MAD, set: {model.drop_variant: mad}}",
                                "  - {label: MAD, set: {model.drop_variant: mad}}\n"
                                "  - {label: Dropout, set: {model.drop_variant: dropout}}")
    parents = {}
    for name, text, folder in (("moved", edited, old), ("edited", TABLE_SPEC, new)):
        if folder == new:
            old.rename(new)
        first = prepare(spec_file(text, "tiny"), _options(tmp_path, tracking_uri, data=(f"imagefolder={folder}",)))
        parents[name] = _recorded_invocation(tracking_uri, first, first.invocation_key, first.spec.text)
        client.set_tag(parents[name], schema.TAG_DATA, "imagefolder")
        for key, value in runner.parent_params(first).items():
            client.log_param(parents[name], key, value)

    class Stop(Exception):
        pass

    listed = []
    monkeypatch.setattr(tracking, "parents", lambda *a, _parents=tracking.parents, **k: listed.append(1) or
                        _parents(*a, **k))
    monkeypatch.setattr(runner, "decode_data", lambda configs: (_ for _ in ()).throw(Stop()))
    with caplog.at_level(logging.WARNING, logger="sweeps.invocations"), pytest.raises(Stop):
        run_sweep(prepare(spec_file(edited, "tiny"), _options(tmp_path, tracking_uri, data=(f"imagefolder={new}",))))
    said = [r.getMessage() for r in caplog.records if r.name == "sweeps.invocations"]
    assert len(said) == 2 and sum("a new invocation starts" in m for m in said) == 1, said
    assert said[0].startswith(f"sweep tiny: a new invocation starts, and every cell trains again: the spec differs "
                              f"from the one invocation {parents['edited'][:8]} (completed)")
    assert said[1] == (f"sweep tiny: nor does it continue invocation {parents['moved'][:8]} (completed), which ran "
                       f"this spec, profile and --set on imagefolder at {old} (now given {new}). If the data only "
                       f"moved, continue that one: give the folder it ran on (a link there to the new one will do: "
                       f"`ln -s {new} {old}`)")
    assert listed == [1], "the invocations are listed once"


def test_a_new_invocation_on_data_given_as_another_folder_while_the_one_it_ran_on_is_still_there_names_that_folder(
        tmp_path, tracking_uri, spec_file, monkeypatch, caplog):
    # `ln -s NEW OLD` with OLD still a folder (the data copied, not moved), or a link to one (the same folder given
    # by another path), makes a link inside it (OLD/NEW's name, in the data set's folder) and continues nothing
    import shutil

    from test_data_imagefolder import make_tree

    path = spec_file(TABLE_SPEC, "tiny")
    old = make_tree(tmp_path / "old")
    (tmp_path / "mount").symlink_to(tmp_path)
    by_link = tmp_path / "mount" / "old"
    client = MlflowClient(tracking_uri)

    class Stop(Exception):
        pass

    monkeypatch.setattr(runner, "decode_data", lambda configs: (_ for _ in ()).throw(Stop()))
    for given_then, now, said in ((old, shutil.copytree(old, tmp_path / "copy"), ""),
                                  (by_link, old, " (the folder given now, by another path)")):
        first = prepare(path, _options(tmp_path, tracking_uri, data=(f"imagefolder={given_then}",)))
        parent = _recorded_invocation(tracking_uri, first, first.invocation_key, first.spec.text)
        client.set_tag(parent, schema.TAG_DATA, "imagefolder")
        for key, value in runner.parent_params(first).items():
            client.log_param(parent, key, value)
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="sweeps.invocations"), pytest.raises(Stop):
            run_sweep(prepare(path, _options(tmp_path, tracking_uri, data=(f"imagefolder={now}",))))
        assert (f"invocation {parent[:8]} (completed) ran this spec, profile and --set on imagefolder at {given_then} "
                f"(now given {now}). To continue that one, give the folder it ran on, still there: "
                f"`--data imagefolder={given_then}`{said}") in caplog.text
        assert "ln -s" not in caplog.text
        client.set_terminated(parent)
        client.delete_run(parent)


def test_resume_on_data_given_as_another_folder_names_the_invocation_on_the_earlier_one_not_a_new_invocation(
        tmp_path, tracking_uri, spec_file, caplog):
    # `sweeps resume` starts no invocation: "a new invocation starts, and every cell trains again", then "nothing to
    # resume", contradicted itself
    from test_data_imagefolder import make_tree

    path = spec_file(TABLE_SPEC, "tiny")
    old = make_tree(tmp_path / "old")
    first = prepare(path, _options(tmp_path, tracking_uri, data=(f"imagefolder={old}",)))
    parent = _recorded_invocation(tracking_uri, first, first.invocation_key, first.spec.text, status="interrupted")
    client = MlflowClient(tracking_uri)
    client.set_tag(parent, schema.TAG_DATA, "imagefolder")
    for key, value in runner.parent_params(first).items():
        client.log_param(parent, key, value)
    new = old.rename(tmp_path / "disk2")
    with caplog.at_level(logging.WARNING, logger="sweeps.invocations"), \
            pytest.raises(SweepError, match="nothing to resume"):
        run_sweep(prepare(path, _options(tmp_path, tracking_uri, data=(f"imagefolder={new}",))), resume_only=True)
    assert (f"sweep tiny: no invocation ran on the folders given: invocation {parent[:8]} (interrupted) ran this "
            f"spec, profile and --set on imagefolder at {old} (now given {new}). If the data only moved, continue "
            f"that one: give the folder it ran on (a link there to the new one will do: `ln -s {new} {old}`)") \
        in caplog.text
    assert "a new invocation starts" not in caplog.text


def test_a_spec_given_a_comment_continues_its_invocation_also_one_recorded_under_its_texts_hash(
        tmp_path, tracking_uri, spec_file, monkeypatch):
    from sweeps import tracking

    # any edit of the file, a comment too, started a new invocation that trained every cell again
    plain = prepare(spec_file(TABLE_SPEC, "tiny"), _options(tmp_path, tracking_uri))
    commented = prepare(spec_file("# my notes\n" + TABLE_SPEC.replace("kind: table", "kind:   table  # a table"),
                                  "tiny"), _options(tmp_path, tracking_uri))
    assert commented.invocation_key == plain.invocation_key
    search = prepare(spec_file(SEARCH_SPEC, "tiny_search"), _options(tmp_path, tracking_uri))
    reseeded = prepare(spec_file(SEARCH_SPEC + "seeds: [1]\n", "tiny_search"),
                       _options(tmp_path, tracking_uri))
    assert reseeded.plan.seeds == (1,) and reseeded.invocation_key != search.invocation_key, \
        "a search's seed seeds its sampler and every trial: another search"
    more_seeds = prepare(spec_file(TABLE_SPEC.replace("seeds: [0]", "seeds: [0, 1]"), "tiny"),
                         _options(tmp_path, tracking_uri))
    assert more_seeds.invocation_key == plain.invocation_key, "seeds extend an invocation, as --seeds does"
    # an invocation an earlier version recorded under the hash of its text is found and continued
    legacy = plain.keys_of(plain.spec.spec_hash)[0]
    assert legacy in plain.keys_recorded and legacy != plain.invocation_key
    parent = _recorded_invocation(tracking_uri, plain, legacy, plain.spec.text)
    monkeypatch.setattr(runner, "connect_ray", lambda address=None: pytest.fail("nothing left to train"))
    again = run_sweep(plain)
    assert again.parent_run_id == parent and again.status == "completed" and again.skipped_cells == 2
    client = MlflowClient(tracking_uri)
    tags = client.get_run(parent).data.tags
    assert tags[tracking.TAG_INVOCATION] == plain.invocation_key, "found by the new key from now on"
    # the comment says nothing its tables read: not recorded, no report drawn, no copy kept
    monkeypatch.setattr(runner, "_publish", lambda *args, **kw: pytest.fail("the same spec: nothing to draw"))
    assert run_sweep(commented).parent_run_id == parent
    assert tracking.read_text_artifact(client, parent, schema.ARTIFACT_SPEC) == plain.spec.text
    assert not client.list_artifacts(parent, schema.ARTIFACT_SPEC_HISTORY)


def test_a_spec_edited_in_how_its_table_reads_continues_its_invocation_whose_table_then_reads_so(
        tmp_path, tracking_uri, spec_file, monkeypatch):
    from sweeps import tracking
    from sweeps.report import recorded_spec
    from sweeps.tables import load_sweep_runs

    # a reworded caption, title or baseline started a new invocation that trained every cell again, and the
    # finished one's table could not be given them
    plain = prepare(spec_file(TABLE_SPEC, "tiny"), _options(tmp_path, tracking_uri))
    reworded_text = (TABLE_SPEC.replace("caption: A test table.", "caption: A reworded caption.")
                     .replace("title: Tiny ablation", "title: Tiny, retitled")
                     .replace('table: {baseline: "No dropping"}', "table: {baseline: MAD, metrics: [sel_test_acc, best_test_acc]}"))
    reworded = prepare(spec_file(reworded_text, "tiny"), _options(tmp_path, tracking_uri))
    assert reworded.invocation_key == plain.invocation_key
    relabelled = prepare(spec_file(TABLE_SPEC.replace("label: MAD", "label: Ours"), "tiny"),
                         _options(tmp_path, tracking_uri))
    assert relabelled.invocation_key != plain.invocation_key, "its runs are recorded under the arms' labels"
    # one recorded by an earlier version, keyed by the whole spec: found by its spec.yaml
    old_key = plain.keys_of(plain.spec.content_hash)[0]
    assert old_key != plain.invocation_key
    parent = _recorded_invocation(tracking_uri, plain, old_key, plain.spec.text)
    client = MlflowClient(tracking_uri)
    monkeypatch.setattr(runner, "connect_ray", lambda address=None: pytest.fail("nothing left to train"))
    published, drawn = [], [None]   # None: drawing the report failed (logged), as _publish says
    monkeypatch.setattr(runner, "_publish", lambda *args, **kw: published.append(args) or drawn[0])
    with pytest.raises(SweepError, match="nothing to resume"):
        run_sweep(reworded, resume_only=True)   # a completed invocation is completed, whatever its text
    run_sweep(reworded)
    assert published and client.get_run(parent).data.tags[schema.TAG_SPEC_HASH] == plain.spec.spec_hash, \
        "a report not drawn with the new spec is drawn by the next run"
    published.clear()
    drawn[0] = tmp_path / "report"
    again = run_sweep(reworded)
    assert again.parent_run_id == parent and again.status == "completed" and again.skipped_cells == 2
    assert published, "its report is drawn again, with the new caption"
    assert again.report_dir == tmp_path / "report", "sweeps run prints where the report drawn again is"
    tags = client.get_run(parent).data.tags
    assert (tags[tracking.TAG_INVOCATION], tags[schema.TAG_SPEC_HASH]) == (plain.invocation_key, reworded.spec.spec_hash)
    recorded = recorded_spec(load_sweep_runs("tiny", tracking_uri=tracking_uri))
    assert (recorded.caption, recorded.title, recorded.table.baseline) == ("A reworded caption.", "Tiny, retitled", "MAD")
    # nothing recorded is lost: the text it replaced is kept
    kept = tracking.read_text_artifact(client, parent, f"spec_history/{plain.spec.spec_hash}.yaml")
    assert kept == plain.spec.text
    history = client.list_artifacts(parent, "spec_history")
    assert len(history) == 1, "the second try kept no copy of the new text as the old one"
    # run again as it is: nothing to record nor draw
    published.clear()
    assert run_sweep(reworded).parent_run_id == parent and not published
    with pytest.raises(SweepError, match="nothing to resume"):
        run_sweep(reworded, resume_only=True)


def test_a_spec_text_saying_the_same_is_recorded_only_where_the_report_is_not_yet_drawn_with_it(
        tmp_path, tracking_uri, spec_file):
    from sweeps import tracking

    def spec_of(text):
        return prepare(spec_file(text, "tiny"), _options(tmp_path, tracking_uri)).spec

    plain = spec_of(TABLE_SPEC)
    parent = _recorded_invocation(tracking_uri, prepare(spec_file(TABLE_SPEC, "tiny"), _options(tmp_path, tracking_uri)),
                                  "k", plain.text)
    client = MlflowClient(tracking_uri)

    def record(spec):
        return invocations.record_spec(client, client.get_run(parent), spec, tag=False)

    reworded_text = TABLE_SPEC.replace("caption: A test table.", "caption: Reworded.")
    assert record(spec_of(reworded_text)), "drawing it then failed, or was stopped: the tag still names plain"
    # given a comment before the next run, it is still to be drawn: a comment must not hide the new caption
    commented = spec_of("# a note\n" + reworded_text)
    assert record(commented)
    assert tracking.read_text_artifact(client, parent, schema.ARTIFACT_SPEC) == commented.text
    history = [Path(f.path).name for f in client.list_artifacts(parent, schema.ARTIFACT_SPEC_HISTORY)]
    assert history == [f"{plain.spec_hash}.yaml"], "the undrawn text said the same: no copy; plain's kept as it was"
    assert tracking.read_text_artifact(client, parent, f"spec_history/{plain.spec_hash}.yaml") == plain.text
    invocations.set_spec_hash(client, parent, commented)   # drawn
    assert not record(spec_of("# another note\n" + reworded_text)), "drawn with it: nothing to record"
    # the order of keys is read (the paper's rows are shown in it): not the same
    papers = ('table: {baseline: "No dropping", paper: {MAD: {synthetic: 50}, "No dropping": {synthetic: 40}}}',
              'table: {baseline: "No dropping", paper: {"No dropping": {synthetic: 40}, MAD: {synthetic: 50}}}')
    first = spec_of(reworded_text.replace('table: {baseline: "No dropping"}', papers[0]))
    assert record(first)
    invocations.set_spec_hash(client, parent, first)
    assert record(spec_of(reworded_text.replace('table: {baseline: "No dropping"}', papers[1])))


def test_an_edited_spec_finds_its_invocation_past_a_newer_one_of_a_spec_that_trains_otherwise(
        tmp_path, tracking_uri, spec_file, monkeypatch):
    # the newest invocation with this profile, data and --set whose spec trains otherwise (a relabelled arm)
    # hid an older one recorded under the whole spec, which a reworded caption should continue
    plain = prepare(spec_file(TABLE_SPEC, "tiny"), _options(tmp_path, tracking_uri))
    older = _recorded_invocation(tracking_uri, plain, plain.keys_of(plain.spec.content_hash)[0], plain.spec.text)
    relabelled = prepare(spec_file(TABLE_SPEC.replace("label: MAD", "label: Ours"), "tiny"), _options(tmp_path, tracking_uri))
    _recorded_invocation(tracking_uri, relabelled, relabelled.keys_of(relabelled.spec.content_hash)[0],
                         relabelled.spec.text)
    monkeypatch.setattr(runner, "connect_ray", lambda address=None: pytest.fail("nothing left to train"))
    monkeypatch.setattr(runner, "_publish", lambda *args, **kw: tmp_path)
    reworded = prepare(spec_file(TABLE_SPEC.replace("caption: A test table.", "caption: Reworded."), "tiny"),
                       _options(tmp_path, tracking_uri))
    assert run_sweep(reworded).parent_run_id == older


def test_an_edited_spec_finds_its_invocation_past_more_than_twenty_newer_ones_of_its_profile_and_data(
        tmp_path, tracking_uri, spec_file, monkeypatch):
    # the fallback read the 20 invocations run last: a table's arms reordered after a study of 20 --set values
    # started a new invocation that trained every cell again
    plain = prepare(spec_file(TABLE_SPEC, "tiny"), _options(tmp_path, tracking_uri))
    older = _recorded_invocation(tracking_uri, plain, plain.invocation_key, plain.spec.text)
    for i in range(21):
        studied = prepare(spec_file(TABLE_SPEC, "tiny"),
                          _options(tmp_path, tracking_uri, overrides={"optim.weight_decay": (i + 1) / 1000}))
        _recorded_invocation(tracking_uri, studied, studied.invocation_key, studied.spec.text)
    monkeypatch.setattr(runner, "connect_ray", lambda address=None: pytest.fail("nothing left to train"))
    monkeypatch.setattr(runner, "_publish", lambda *args, **kw: tmp_path)
    arms = ('  - {label: "No dropping", set: {model.drop_variant: none}}\n',
            "  - {label: MAD, set: {model.drop_variant: mad}}\n")
    reordered = prepare(spec_file(TABLE_SPEC.replace(arms[0] + arms[1], arms[1] + arms[0]), "tiny"),
                        _options(tmp_path, tracking_uri))
    assert reordered.invocation_key != plain.invocation_key
    again = run_sweep(reordered)
    assert again.parent_run_id == older and again.skipped_cells == 2


def test_a_spec_with_a_value_written_another_way_continues_its_invocation_also_one_recorded_as_written(
        tmp_path, tracking_uri, spec_file, monkeypatch):
    # a value written another way (a key nested, 1e-3 as 1.0e-3) is what the spec trains all the same: it started a
    # new invocation that trained every cell again
    plain = prepare(spec_file(TABLE_SPEC, "tiny"), _options(tmp_path, tracking_uri))
    nested = TABLE_SPEC.replace("set: {model.drop_variant: mad}", "set: {model: {drop_variant: mad}}")
    rewritten = prepare(spec_file(nested, "tiny"), _options(tmp_path, tracking_uri))
    assert rewritten.invocation_key == plain.invocation_key
    # one an earlier version recorded under the spec as written is found, by its key or by its spec.yaml
    written = plain.keys_of(plain.spec.written_identity_hash)[0]
    assert written in plain.keys_recorded and written != plain.invocation_key
    parent = _recorded_invocation(tracking_uri, plain, written, plain.spec.text)
    monkeypatch.setattr(runner, "connect_ray", lambda address=None: pytest.fail("nothing left to train"))
    monkeypatch.setattr(runner, "_publish", lambda *args, **kw: tmp_path)
    again = run_sweep(rewritten)
    assert again.parent_run_id == parent and again.status == "completed" and again.skipped_cells == 2
    assert MlflowClient(tracking_uri).get_run(parent).data.tags[tracking.TAG_INVOCATION] == plain.invocation_key


def test_a_spec_with_its_arms_reordered_continues_its_invocation_and_its_table_takes_the_new_order(
        tmp_path, tracking_uri, spec_file, monkeypatch):
    from search_spaces.spec import load_text

    # the key reads the arms in order: a researcher who reordered a table's rows started a new invocation that
    # trained every cell again, though each cell (its config, its run named by its label) is the one trained
    arms = ('  - {label: "No dropping", set: {model.drop_variant: none}}\n',
            "  - {label: MAD, set: {model.drop_variant: mad}}\n")
    assert arms[0] + arms[1] in TABLE_SPEC
    plain = prepare(spec_file(TABLE_SPEC, "tiny"), _options(tmp_path, tracking_uri))
    parent = _recorded_invocation(tracking_uri, plain, plain.invocation_key, plain.spec.text)
    monkeypatch.setattr(runner, "connect_ray", lambda address=None: pytest.fail("nothing left to train"))
    monkeypatch.setattr(runner, "_publish", lambda *args, **kw: tmp_path)
    client = MlflowClient(tracking_uri)
    reordered = prepare(spec_file(TABLE_SPEC.replace(arms[0] + arms[1], arms[1] + arms[0]), "tiny"),
                        _options(tmp_path, tracking_uri))
    for spec, labels in ((reordered, ("MAD", "No dropping")), (plain, ("No dropping", "MAD"))):   # and back
        again = run_sweep(spec)
        assert again.parent_run_id == parent and again.status == "completed" and again.skipped_cells == 2
        recorded = tracking.read_text_artifact(client, parent, schema.ARTIFACT_SPEC)
        assert recorded == spec.spec.text and load_text(recorded, recorded=True).labels == labels, \
            "its table's rows (sweeps.report.recorded_spec) in the spec's order"
        assert client.get_run(parent).data.tags[tracking.TAG_INVOCATION] == spec.invocation_key
    # arms that swapped their labels train other cells under each: another invocation
    swapped = prepare(spec_file(TABLE_SPEC.replace(arms[0] + arms[1], arms[0].replace("none", "mad")
                                                   + arms[1].replace("mad", "none")), "tiny"),
                      _options(tmp_path, tracking_uri))
    assert swapped.spec.labels == plain.spec.labels and not invocations.trains_the_same(plain.spec, swapped.spec)


def test_a_search_whose_pruner_argument_reads_the_same_continues_one_recorded_under_the_key_that_told_them_apart(
        tmp_path, tracking_uri, spec_file, monkeypatch):
    # the key read a pruner's 2 and 2.0 as two values: a search so rewritten started anew and trained every sample
    # again. One recorded under that key is found by the same spec (its key) and by the spec rewritten (its spec.yaml)
    search = SEARCH_SPEC.replace("name: tiny_search", "name: tiny").replace("lower: 1.01", "lower: 2.0")
    typed = prepare(spec_file(search, "tiny"), _options(tmp_path, tracking_uri))
    old_key = typed.keys_of(typed.spec.typed_identity_hash)[0]
    assert old_key in typed.keys_recorded and old_key != typed.invocation_key
    parent = _recorded_invocation(tracking_uri, typed, old_key, typed.spec.text)
    client = MlflowClient(tracking_uri)
    for trial in range(2):   # its num_samples ended
        client.create_run(client.get_run(parent).info.experiment_id, tags={
            schema.TAG_PARENT: parent, schema.TAG_ROLE: schema.ROLE_CELL, schema.TAG_CELL_ID: f"trial{trial}",
            schema.TAG_STATUS: schema.STATUS_PRUNED})
    monkeypatch.setattr(runner, "connect_ray", lambda address=None: pytest.fail("nothing left to train"))
    monkeypatch.setattr(runner, "_publish", lambda *args, **kw: tmp_path)
    rewritten = prepare(spec_file(search.replace("lower: 2.0", "lower: 2"), "tiny"), _options(tmp_path, tracking_uri))
    assert rewritten.invocation_key == typed.invocation_key
    again = run_sweep(rewritten)
    assert again.parent_run_id == parent and again.status == "completed"
    assert client.get_run(parent).data.tags[tracking.TAG_INVOCATION] == typed.invocation_key


def test_a_search_asked_for_no_more_trials_than_ended_marks_the_trials_it_had_begun_interrupted_saying_why(
        tmp_path, tracking_uri, spec_file, monkeypatch):
    # it counted as finished and nothing ran, but the trial it had begun kept its run "running" under the completed
    # parent: `sweeps status`, the table and the MLflow UI showed it running for ever
    from sweeps.tables import load_sweep_runs

    search = SEARCH_SPEC.replace("name: tiny_search", "name: tiny")
    prepared = prepare(spec_file(search, "tiny"), _options(tmp_path, tracking_uri))
    parent = _recorded_invocation(tracking_uri, prepared, prepared.invocation_key, prepared.spec.text,
                                  status=schema.STATUS_INTERRUPTED)
    client = MlflowClient(tracking_uri)
    experiment_id = client.get_run(parent).info.experiment_id
    runs = {}
    for trial, status in enumerate([schema.STATUS_COMPLETED, schema.STATUS_PRUNED, schema.STATUS_RUNNING]):
        runs[status] = client.create_run(experiment_id, tags={
            schema.TAG_PARENT: parent, schema.TAG_ROLE: schema.ROLE_CELL, schema.TAG_CELL_ID: f"trial{trial}",
            schema.TAG_TRIAL_ID: f"t{trial}", schema.TAG_STATUS: status}).info.run_id
        if status != schema.STATUS_RUNNING:
            client.set_terminated(runs[status], "FINISHED")
    monkeypatch.setattr(runner, "connect_ray", lambda address=None: pytest.fail("nothing left to train"))
    monkeypatch.setattr(runner, "_publish", lambda *args, **kw: tmp_path)
    assert prepared.spec.search.num_samples == 2
    again = run_sweep(prepared)
    assert again.parent_run_id == parent and again.status == schema.STATUS_COMPLETED
    begun = client.get_run(runs[schema.STATUS_RUNNING])
    assert (begun.data.tags[schema.TAG_STATUS], begun.info.status) == (schema.STATUS_INTERRUPTED, "KILLED")
    assert begun.data.tags[schema.TAG_INTERRUPTED_WHY] == (
        "the search asks for 2 trials now (num_samples) and 2 have ended, so it finished without continuing this "
        "trial, begun before; a run with num_samples raised continues it")
    ended = client.get_run(runs[schema.STATUS_PRUNED])
    assert (ended.data.tags[schema.TAG_STATUS], ended.info.status) == (schema.STATUS_PRUNED, "FINISHED")
    children = load_sweep_runs("tiny", tracking_uri=tracking_uri).children.set_index("run_id")
    assert children.loc[runs[schema.STATUS_RUNNING], "status"] == schema.STATUS_INTERRUPTED
    # continued later (num_samples raised), its trial's run is running again, the reason gone
    run = tracking.CellRun.open(tracking_uri, experiment_id, parent, tracking.CellIdentity(
        "tiny", "trial t2", "synthetic", 0, "trial2", "tiny/trial-t2"), "t2", {}, {})
    assert run.run_id == runs[schema.STATUS_RUNNING]
    tags = client.get_run(run.run_id).data.tags
    assert tags[schema.TAG_STATUS] == schema.STATUS_RUNNING and schema.TAG_INTERRUPTED_WHY not in tags


def test_a_tables_seeds_reordered_read_as_its_finished_invocation_and_its_report_is_not_drawn_again(
        tmp_path, tracking_uri, spec_file, monkeypatch):
    # `seeds: [1, 0]` after `[0, 1]` trained nothing, but the report was drawn again (the seeds tag and the spec
    # text read in order), and `sweeps resume` found the finished invocation not finished as planned
    two = TABLE_SPEC.replace("seeds: [0]", "seeds: [0, 1]")
    plain = prepare(spec_file(two, "tiny"), _options(tmp_path, tracking_uri))
    parent = _recorded_invocation(tracking_uri, plain, plain.invocation_key, plain.spec.text)
    client = MlflowClient(tracking_uri)
    client.set_tag(parent, schema.TAG_SEEDS, "[0, 1]")   # drawn over its seeds
    monkeypatch.setattr(runner, "connect_ray", lambda address=None: pytest.fail("nothing left to train"))
    monkeypatch.setattr(runner, "_publish", lambda *args, **kw: pytest.fail("drawn over the same seeds already"))
    reordered = prepare(spec_file(two.replace("seeds: [0, 1]", "seeds: [1, 0]"), "tiny"),
                        _options(tmp_path, tracking_uri))
    assert reordered.plan.seeds == (1, 0) and reordered.invocation_key == plain.invocation_key
    experiment_id = client.get_run(parent).info.experiment_id
    assert invocations.finished_as_planned(client, experiment_id, client.get_run(parent), reordered.plan)
    with pytest.raises(SweepError, match=rf"nothing to resume: invocation {parent[:8]} of 'tiny' .* already completed"):
        run_sweep(reordered, resume_only=True)
    again = run_sweep(reordered)
    assert again.parent_run_id == parent and again.status == "completed" and again.skipped_cells == 4
    assert tracking.read_text_artifact(client, parent, schema.ARTIFACT_SPEC) == plain.spec.text, "nothing recorded"
    # fewer seeds are another plan: drawn again over them
    one = prepare(spec_file(two.replace("seeds: [0, 1]", "seeds: [1]"), "tiny"), _options(tmp_path, tracking_uri))
    assert not invocations.finished_as_planned(client, experiment_id, client.get_run(parent), one.plan)


def test_a_search_whose_pruner_writes_a_default_out_or_leaves_it_out_continues_its_invocation(
        tmp_path, tracking_uri, spec_file, monkeypatch):
    # the key reads the pruner as written (search_spaces knows no Optuna defaults): a search continued with
    # `n_warmup_steps: 0`, ThresholdPruner's default, left out (or a default written out) started anew and trained
    # every sample again. Its key stays as recorded; its spec.yaml finds it
    search = SEARCH_SPEC.replace("name: tiny_search", "name: tiny")
    assert "pruner: {type: threshold, lower: 1.01, n_warmup_steps: 0}" in search
    written = prepare(spec_file(search, "tiny"), _options(tmp_path, tracking_uri))
    parent = _recorded_invocation(tracking_uri, written, written.invocation_key, written.spec.text)
    client = MlflowClient(tracking_uri)
    for trial in range(2):   # its num_samples ended
        client.create_run(client.get_run(parent).info.experiment_id, tags={
            schema.TAG_PARENT: parent, schema.TAG_ROLE: schema.ROLE_CELL, schema.TAG_CELL_ID: f"trial{trial}",
            schema.TAG_STATUS: schema.STATUS_PRUNED})
    monkeypatch.setattr(runner, "connect_ray", lambda address=None: pytest.fail("nothing left to train"))
    monkeypatch.setattr(runner, "_publish", lambda *args, **kw: tmp_path)
    left_out = prepare(spec_file(search.replace(", n_warmup_steps: 0", ""), "tiny"), _options(tmp_path, tracking_uri))
    more = prepare(spec_file(search.replace("n_warmup_steps: 0", "n_warmup_steps: 0, interval_steps: 1"), "tiny"),
                   _options(tmp_path, tracking_uri))
    assert len({written.invocation_key, left_out.invocation_key, more.invocation_key}) == 3, "keys as recorded"
    for prepared in (left_out, more, written):   # and back
        again = run_sweep(prepared)
        assert again.parent_run_id == parent and again.status == "completed"
        assert client.get_run(parent).data.tags[tracking.TAG_INVOCATION] == prepared.invocation_key
    other = prepare(spec_file(search.replace("n_warmup_steps: 0", "n_warmup_steps: 1"), "tiny"),
                    _options(tmp_path, tracking_uri))
    assert not invocations.trains_the_same(written.spec, other.spec), "another warm-up prunes otherwise"


def test_a_restored_searchs_sample_count_follows_its_spec_up_and_down():
    # Tune restores the count a search began with: asked for fewer, an interrupted search went on to it
    from ray.tune.search import Searcher

    class Drawing(Searcher):
        def suggest(self, trial_id):
            return {}

    for asked, finished in ((2, True), (7, False)):
        search = tune_state.ExtendedSearch(Drawing(), asked)
        search.set_state({"counter": 3, "total_samples": 5, "finished": False, "experiment": None})
        assert (search.total_samples, search.is_finished()) == (asked, finished)


def test_a_searchs_queued_trials_past_its_num_samples_are_left_out_of_its_tune_state(tmp_path):
    from ray.tune.trainable.metadata import _TrainingRunMetadata

    run_state = _TrainingRunMetadata().get_json_state()   # no checkpoint
    trials = [[json.dumps({"trial_id": f"t{i}", "status": status}), run_state]
              for i, status in enumerate(["TERMINATED", "RUNNING", "PENDING", "PENDING", "PENDING"])]
    path = tmp_path / "experiment_state-2026.json"
    path.write_text(json.dumps({"trial_data": trials, "runner_data": {"kept": 1}}))
    # room for 3 more: t1 (it opened its MLflow run) goes on, and two of the queued ones
    assert tune_state.drop_queued_trials(tmp_path, 3, {"t1"}) == (["t4"], ["t1"], ["t0", "t1", "t2", "t3"])
    state = json.loads(path.read_text())
    assert [json.loads(t)["trial_id"] for t, _ in state["trial_data"]] == ["t0", "t1", "t2", "t3"]
    assert state["runner_data"] == {"kept": 1} and [p.name for p in tmp_path.iterdir()] == [path.name]
    # room for none: the trial begun still goes on (its epochs are trained), no queued one starts
    assert tune_state.drop_queued_trials(tmp_path, 0, {"t1"}) == (["t2", "t3"], ["t1"], ["t0", "t1"])
    assert tune_state.drop_queued_trials(tmp_path, 5, {"t1"}) == ([], ["t1"], ["t0", "t1"]), "room: nothing changes"
    path.write_text("{")   # cut short: Tune's restore judges it, and no trial is forgotten
    assert tune_state.drop_queued_trials(tmp_path, 0, {"t1"}) == ([], [], None)


def test_a_restored_search_forgets_the_trials_its_tune_state_no_longer_holds(tmp_path):
    # a queued trial left out (drop_queued_trials) held its limiter's place for good, and counted as drawn: a
    # search raised again later drew one trial fewer than it asked
    from ray.tune.search import ConcurrencyLimiter, SearchGenerator, Searcher

    class Drawing(Searcher):
        def suggest(self, trial_id):
            return {}

        def on_trial_complete(self, trial_id, result=None, error=False):
            told.append((trial_id, error))

        def save(self, checkpoint_path):
            Path(checkpoint_path).write_bytes(b"")

        def restore(self, checkpoint_path):
            pass

    told = []
    began = SearchGenerator(ConcurrencyLimiter(Drawing(), max_concurrent=2))
    began.set_state({"counter": 2, "total_samples": 4, "finished": False, "experiment": None})
    for trial_id in ("t1", "t2"):
        began.searcher.suggest(trial_id)
    began.save_to_dir(str(tmp_path), "s")
    config = SimpleNamespace(search_alg=Drawing(), max_concurrent_trials=2, num_samples=4)
    tune_state.extend_search(config, 4, 2, trial_ids=["t1"])
    config.search_alg.restore_from_dir(str(tmp_path))
    assert config.search_alg.searcher.live_trials == {"t1"} and told == [("t2", True)]
    assert config.search_alg._counter == 1, "one trial drawn: three more to draw"


def test_a_restored_searchs_concurrency_limit_is_the_one_its_continuation_asks(tmp_path):
    # Tune's saved limiter state set it back to the first run's: `resume --max-concurrent 1` (trials out of
    # memory side by side) drew its new trials two at a time while its parent run recorded 1
    from ray.tune.search import ConcurrencyLimiter, SearchGenerator, Searcher

    class Drawing(Searcher):
        def suggest(self, trial_id):
            return {}

        def save(self, checkpoint_path):
            Path(checkpoint_path).write_bytes(b"")

        def restore(self, checkpoint_path):
            pass

    SearchGenerator(ConcurrencyLimiter(Drawing(), max_concurrent=2)).save_to_dir(str(tmp_path), "s")
    for asked, limit in ((1, 1), (3, 3), (tune_state.AS_BEGUN, 2)):
        config = SimpleNamespace(search_alg=Drawing(), max_concurrent_trials=2, num_samples=5)
        tune_state.extend_search(config, 5, asked)
        config.search_alg.restore_from_dir(str(tmp_path))
        assert config.search_alg.searcher.max_concurrent == limit
    config = SimpleNamespace(search_alg=Drawing(), max_concurrent_trials=2, num_samples=5)
    tune_state.extend_search(config, 5, None)   # no limit asked: none
    config.search_alg.restore_from_dir(str(tmp_path))
    assert not isinstance(config.search_alg.searcher, ConcurrencyLimiter)


def test_a_table_continued_with_a_lower_max_concurrent_keeps_to_it_and_resumes_its_begun_cells_from_checkpoints(
        ray_local, tmp_path, tracking_uri, spec_file, monkeypatch, caplog):
    # Tune restores every trial its experiment had begun and starts them together as resources allow: a table
    # continued with `--max-concurrent 1` (two trials out of memory side by side) ran two at once, only warned of
    from processes import attempt_starts

    monkeypatch.delenv(runner.NO_TUNE_LOGGERS, raising=False)   # result.json: where each attempt began
    path = spec_file(TABLE_SPEC.replace("seeds: [0]", "seeds: [0, 1]"), "tiny")
    options = _options(tmp_path, tracking_uri, max_concurrent=2, overrides={"optim.epochs": 2})
    with monkeypatch.context() as m:
        stop_at_the_first_result(m)
        first = run_sweep(prepare(path, options))
    assert first.status == "interrupted" and len(tune_state.unfinished_trials(Path(first.tune_path))) == 2
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="sweeps"):
        again = run_sweep(prepare(path, dataclasses.replace(options, max_concurrent=1)))
    assert again.status == "completed" and again.parent_run_id == first.parent_run_id and again.counts["completed"] == 4
    assert (f"--max-concurrent 1 is fewer than the 2 trials Tune experiment {first.tune_path} had begun, which its "
            "restore would start together: its unfinished cells continue in a new Tune experiment, 1 at once, each "
            "from its newest checkpoint in --storage, in the same MLflow run") in caplog.text
    assert again.tune_path != first.tune_path
    progress = [r.progress for r in caplog.records if r.name == "sweeps.progress"]
    assert progress and all(p["running"] <= 1 for p in progress), progress
    _, children = _children(tracking_uri, again)
    starts = sorted(attempt_starts(tmp_path / "ray_results", r.data.tags[schema.TAG_CELL_ID]) for r in children)
    assert [1, 2] in starts, f"the cell that had checkpointed its first epoch resumed after it: {starts}"
    # its cells completed in the new experiment: the old one's checkpoints of them (520 MB each at paper scale)
    # are gone, and so are the old experiment's checkpoints, as every cell completed
    assert not list(Path(first.tune_path).glob("*/checkpoint_*/state.pt"))
    assert "left of it (" in caplog.text


def test_a_completed_cells_checkpoints_left_by_earlier_tune_experiments_of_its_invocation_alone_are_deleted(
        tmp_path, store):
    # a table continued in a new Tune experiment (its state unreadable, a lower --max-concurrent) left the old one's
    # checkpoints on disk for good: ~520 MB per interrupted cell at paper scale
    from sweeps.trainable import CELL_FILE, CHECKPOINT_FILE

    client = MlflowClient(store)
    experiment_id = tracking.ensure_experiment(client, "tiny", store)
    parent = tracking.start_parent(client, experiment_id, "tiny", {})
    run_id = client.create_run(experiment_id, tags={schema.TAG_PARENT: parent,
                                                    schema.TAG_STATUS: schema.STATUS_RUNNING}).info.run_id
    storage, prefix = tmp_path / "ray_results", schema.invocation_prefix("tiny", parent)

    def checkpoint(experiment: str, trial: str, name: str, cell: str, parent_run_id: str | None = parent) -> Path:
        folder = storage / experiment / trial / name
        folder.mkdir(parents=True)
        (folder / CHECKPOINT_FILE).write_bytes(b"x" * 1000)
        label = {"cell_id": cell, "epoch": 1, **({"parent_run_id": parent_run_id} if parent_run_id else {})}
        (folder / CELL_FILE).write_text(json.dumps(label))
        return folder

    old = [checkpoint(f"{prefix}100", "train_cell_a_00000_0", "checkpoint_000001", "A"),
           checkpoint(f"{prefix}100", "train_cell_a_00000_0", "checkpoint_000000.superseded-5", "A", None)]
    kept = [checkpoint(f"{prefix}100", "train_cell_b_00001_1", "checkpoint_000001", "B"),   # another cell
            checkpoint(f"{prefix}200", "train_cell_a_00000_0", "checkpoint_000002", "A"),   # its own experiment's
            checkpoint("tiny-ffffffff-100", "train_cell_a_00000_0", "checkpoint_000001", "A", "other"),
            checkpoint(f"{prefix}300", "train_cell_a_00000_0", "checkpoint_000001", "A", "other")]
    trial = SimpleNamespace(config={"context": {"kind": "table", "invocation": prefix, "parent_run_id": parent},
                                    "cell": {"cell_id": "A"}},
                            path=str(storage / f"{prefix}200" / "train_cell_a_00000_0"), trial_id="a")
    callback = runner.SweepCallback(store, 2, "sel_test_acc", "max")
    callback._drop_earlier_experiments_checkpoints(trial, run_id)
    assert all(f.exists() for f in old + kept), "its run has not completed: it may resume from them"
    client.set_tag(run_id, schema.TAG_STATUS, schema.STATUS_COMPLETED)
    callback._drop_earlier_experiments_checkpoints(trial, run_id)
    assert [f.exists() for f in old + kept] == [False] * len(old) + [True] * len(kept)
    assert (storage / f"{prefix}100" / "train_cell_a_00000_0").is_dir(), "its trial's other files stay"


def test_an_invocation_that_completes_deletes_what_its_other_tune_experiments_left_of_its_completed_cells(
        tmp_path, store, caplog):
    # cells that completed before checkpoints were deleted as each cell completes (or completed in the experiment
    # a table left for a new one) kept those checkpoints for good: ~520 MB per interrupted cell at paper scale
    from sweeps.trainable import CELL_FILE, CHECKPOINT_FILE

    client = MlflowClient(store)
    experiment_id = tracking.ensure_experiment(client, "tiny", store)
    parent = tracking.start_parent(client, experiment_id, "tiny", {})

    def cell_run(cell: str, status: str, finished: bool) -> None:
        run_id = client.create_run(experiment_id, tags={schema.TAG_PARENT: parent, schema.TAG_CELL_ID: cell,
                                                        schema.TAG_STATUS: status}).info.run_id
        if finished:
            client.set_terminated(run_id, "FINISHED")

    cell_run("A", schema.STATUS_COMPLETED, True)
    cell_run("B", schema.STATUS_COMPLETED, False)   # died between tagging it completed and ending it: not yet
    cell_run("C", schema.STATUS_INTERRUPTED, False)   # unfinished: it resumes from its checkpoints
    storage, prefix = tmp_path / "ray_results", schema.invocation_prefix("tiny", parent)

    def checkpoint(experiment: str, trial: str, name: str, cell: str, parent_run_id: str | None = parent) -> Path:
        folder = storage / experiment / trial / name
        folder.mkdir(parents=True)
        (folder / CHECKPOINT_FILE).write_bytes(b"x" * 2**19)
        label = {"cell_id": cell, "epoch": 1, **({"parent_run_id": parent_run_id} if parent_run_id else {})}
        (folder / CELL_FILE).write_text(json.dumps(label))
        return folder

    # a label written before cell.json named its parent run is known by the invocation's prefix (its parent run's)
    old = [checkpoint(f"{prefix}100", "A_synthetic_seed0_a_00000", "checkpoint_000001", "A", None),
           checkpoint(f"{prefix}150", "A_synthetic_seed0_b_00000", "checkpoint_000002", "A")]
    kept = [checkpoint(f"{prefix}100", "B_synthetic_seed0_a_00001", "checkpoint_000001", "B"),
            checkpoint(f"{prefix}100", "C_synthetic_seed0_a_00002", "checkpoint_000001", "C", None),
            checkpoint(f"{prefix}200", "A_synthetic_seed0_c_00000", "checkpoint_000003", "A"),   # the current one
            checkpoint(f"{prefix}300", "A_synthetic_seed0_d_00000", "checkpoint_000001", "A", "other"),
            checkpoint("tiny-ffffffff-100", "A_synthetic_seed0_e_00000", "checkpoint_000001", "A", None),
            checkpoint(f"{prefix}100-copy", "A_synthetic_seed0_a_00000", "checkpoint_000001", "A", None)]
    search = SimpleNamespace(kind="search", name="tiny")
    assert runner._drop_completed_cells_checkpoints(client, experiment_id, parent, search,
                                                    str(storage / f"{prefix}200")) == 0
    assert all(f.exists() for f in old + kept), "a search's trials are never continued in another experiment"
    table = SimpleNamespace(kind="table", name="tiny")
    with caplog.at_level(logging.INFO, logger="sweeps"):
        freed = runner._drop_completed_cells_checkpoints(client, experiment_id, parent, table,
                                                         str(storage / f"{prefix}200"))
    assert [f.exists() for f in old + kept] == [False] * len(old) + [True] * len(kept)
    assert freed >= 2**20 and (storage / f"{prefix}100" / "A_synthetic_seed0_a_00000").is_dir()
    said = [r.getMessage() for r in caplog.records if "of its completed cells" in r.getMessage()]
    assert said == [f"invocation {parent} completed: 2 checkpoints of its completed cells that its earlier Tune "
                    f"experiments {prefix}100, {prefix}150 left (1.0 MB) are deleted"], said


def test_a_finished_table_run_again_deletes_what_its_earlier_tune_experiments_left_of_its_cells(
        ray_local, tmp_path, tracking_uri, spec_file, caplog):
    # a table that completed before checkpoints were deleted as each cell completes kept, in the experiment it
    # left for a new one, the checkpoints its cells resumed from; they go as it completes, or is found completed
    path = spec_file(TABLE_SPEC, "tiny")
    options = _options(tmp_path, tracking_uri)
    first = run_sweep(prepare(path, options))
    assert first.status == "completed"
    prefix = schema.invocation_prefix("tiny", first.parent_run_id)

    def left_by_an_earlier_experiment(name: str, of: str) -> list[Path]:
        # as one recorded before cell.json named its parent run left them: a copy of the trials' folders of `of`
        left = []
        for trial in Path(of).iterdir():
            if trial.is_dir():
                shutil.copytree(trial, tmp_path / "ray_results" / name / trial.name)
        for label in (tmp_path / "ray_results" / name).glob("*/checkpoint_*/cell.json"):
            label.write_text(json.dumps({k: v for k, v in json.loads(label.read_text()).items()
                                         if k != "parent_run_id"}))
            left.append(label.parent)
        assert len(left) == 2
        return left

    left = left_by_an_earlier_experiment(f"{prefix}100", first.tune_path)
    with caplog.at_level(logging.INFO, logger="sweeps"):   # more seeds: trained in a new experiment, then completed
        again = run_sweep(prepare(path, dataclasses.replace(options, seeds=2)))
    assert again.status == "completed" and again.parent_run_id == first.parent_run_id
    assert again.tune_path != first.tune_path and not any(f.exists() for f in left)
    assert not list(Path(first.tune_path).glob("*/checkpoint_*")), "the experiment it left is never restored"
    assert len(list(Path(again.tune_path).glob("*/checkpoint_*"))) == 2, "the current one's are Tune's"
    assert "of its completed cells that its earlier Tune experiments" in caplog.text
    left = left_by_an_earlier_experiment(f"{prefix}150", again.tune_path)
    finished = run_sweep(prepare(path, dataclasses.replace(options, seeds=2)))   # found finished: nothing trained
    assert finished.skipped_cells == 4 and not any(f.exists() for f in left)
    assert len(list(Path(again.tune_path).glob("*/checkpoint_*"))) == 2


def test_a_lower_max_concurrent_that_a_restore_cannot_keep_to_says_what_does(tmp_path, caplog):
    experiment = tmp_path / "elsewhere" / "tiny-1"
    experiment.mkdir(parents=True)
    trials = [[json.dumps({"trial_id": f"t{i}", "status": status}), "{}"]
              for i, status in enumerate(["TERMINATED", "RUNNING", "PENDING", "ERROR"])]
    (experiment / "experiment_state-2026.json").write_text(json.dumps({"trial_data": trials}))
    assert tune_state.unfinished_trials(experiment) == ["t1", "t2", "t3"]
    with caplog.at_level(logging.WARNING, logger="sweeps.runner"):
        assert not runner._restores_too_many_at_once("table", experiment, 3, tmp_path / "ray_results")
        assert not runner._restores_too_many_at_once("table", experiment, None, tmp_path / "ray_results")
    assert not caplog.text, "as many at once as it had begun, or no limit: restored as it is"
    with caplog.at_level(logging.WARNING, logger="sweeps.runner"):
        # its checkpoints are not in this run's --storage, where a new experiment's cells would look for them
        assert not runner._restores_too_many_at_once("table", experiment, 1, tmp_path / "ray_results")
        assert runner._restores_too_many_at_once("table", experiment, 1, tmp_path / "elsewhere")
    assert (f"--max-concurrent 1 is fewer than the 3 trials Tune experiment {experiment} had begun: Tune restores "
            "them together, as resources allow (--cpus-per-trial and --gpus-per-trial do apply to them: trials that "
            f"reserve more run fewer at once); --storage {experiment.parent} (where its checkpoints are) keeps to it "
            "from the start") in caplog.text
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="sweeps.runner"):   # a search's study lives in its Tune state
        assert not runner._restores_too_many_at_once("search", experiment, 1, tmp_path / "elsewhere")
    assert "restores them together" in caplog.text and "its new trials keep to it" in caplog.text


def test_a_restored_tables_trials_yet_to_be_made_take_this_runs_limit_and_the_experiments_folder_now(tmp_path):
    # Tune's saved generator made them with the storage the experiment began in (moved since: each failed, "not
    # on this node") and the limit it began with (the continuation's --max-concurrent was only warned of)
    from ray.tune.experiment import Experiment
    from ray.tune.search import BasicVariantGenerator

    def trainable(config):
        pass

    began = BasicVariantGenerator(max_concurrent=1)
    began.add_configurations(Experiment("e", trainable, config={"x": runner.tune.grid_search([1, 2, 3, 4])},
                                        storage_path=str(tmp_path / "old")))
    first = began.next_trial()
    assert first.storage.experiment_fs_path == str(tmp_path / "old" / "e") and began.next_trial() is None
    began.save_to_dir(str(tmp_path), "s")
    for asked, at_once in ((2, 2), (None, 1), (0, 3)):   # None: as it began; 0: no limit
        restored = tune_state.RestoredVariants(asked, str(tmp_path / "new" / "e"))
        restored.restore_from_dir(str(tmp_path))
        restored.on_trial_complete(first.trial_id)
        made = [t for t in (restored.next_trial() for _ in range(4)) if t is not None]
        assert len(made) == at_once, asked
        assert {t.storage.experiment_fs_path for t in made} == {str(tmp_path / "new" / "e")}


def test_a_restored_table_is_given_a_generator_of_this_runs_limit_and_folder(monkeypatch):
    tune_config = SimpleNamespace(max_concurrent_trials=3, search_alg=None)
    restored = SimpleNamespace(_local_tuner=SimpleNamespace(get_run_config=lambda: SimpleNamespace(callbacks=[]),
                                                            _tune_config=tune_config))
    monkeypatch.setattr(runner.tune.Tuner, "restore", lambda *args, **kwargs: restored)
    for asked, limit in ((1, 1), (None, 0), (tune_state.AS_BEGUN, None)):
        runner.restore_tuner("/storage/tiny-1", None, max_concurrent=asked)
        generator = tune_config.search_alg
        assert isinstance(generator, tune_state.RestoredVariants) and tune_config.max_concurrent_trials is None
        assert (generator.max_concurrent_asked, generator.experiment_path) == (limit, "/storage/tiny-1")


def test_a_new_invocation_of_an_edited_spec_is_warned_of_naming_the_earlier_one_and_what_changed(
        tmp_path, tracking_uri, spec_file, monkeypatch, caplog):
    first = prepare(spec_file(TABLE_SPEC, "tiny"), _options(tmp_path, tracking_uri))
    parent = _recorded_invocation(tracking_uri, first, first.invocation_key, first.spec.text, status="interrupted")
    edited = TABLE_SPEC.replace("caption: A test table.", "caption: A reworded caption.").replace(
        "  - {label: MAD, set: {model.drop_variant: mad}}",
        "  - {label: MAD, set: {model.drop_variant: mad}}\n  - {label: Dropout, set: {model.drop_variant: dropout}}")

    class Stop(Exception):
        pass

    monkeypatch.setattr(runner, "decode_data", lambda configs: (_ for _ in ()).throw(Stop()))
    with caplog.at_level(logging.WARNING, logger="sweeps.runner"), pytest.raises(Stop):
        run_sweep(prepare(spec_file(edited, "tiny"), _options(tmp_path, tracking_uri)))
    assert (f"sweep tiny: a new invocation starts, and every cell trains again: the spec differs from the one "
            f"invocation {parent[:8]} (interrupted) ran with this profile, data and --set (changed: arms, caption)"
            in caplog.text)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="sweeps.runner"), pytest.raises(Stop):
        run_sweep(prepare(spec_file(edited, "tiny"), _options(tmp_path, tracking_uri, overrides={"optim.epochs": 1})))
    assert "a new invocation starts" not in caplog.text, "other --set: another invocation, as meant"


def test_resume_of_an_edited_spec_says_no_invocation_ran_it_not_that_a_new_one_starts(
        tmp_path, tracking_uri, spec_file, caplog):
    # `sweeps resume` starts no invocation: "a new invocation starts, and every cell trains again", then "nothing to
    # resume", contradicted itself
    first = prepare(spec_file(TABLE_SPEC, "tiny"), _options(tmp_path, tracking_uri))
    parent = _recorded_invocation(tracking_uri, first, first.invocation_key, first.spec.text, status="interrupted")
    edited = TABLE_SPEC.replace(
        "  - {label: MAD, set: {model.drop_variant: mad}}",
        "  - {label: MAD, set: {model.drop_variant: mad}}\n  - {label: Dropout, set: {model.drop_variant: dropout}}")
    with caplog.at_level(logging.WARNING, logger="sweeps.runner"), \
            pytest.raises(SweepError, match="nothing to resume"):
        run_sweep(prepare(spec_file(edited, "tiny"), _options(tmp_path, tracking_uri)), resume_only=True)
    assert (f"sweep tiny: no invocation ran this spec as it is: the spec differs from the one invocation "
            f"{parent[:8]} (interrupted) ran with this profile, data and --set (changed: arms)" in caplog.text)
    assert "a new invocation starts" not in caplog.text


def test_a_trial_this_machine_cannot_hold_is_refused_before_ray_starts_and_before_decoding(
        tmp_path, tracking_uri, spec_file, monkeypatch):
    # `--profile paper` on a laptop: decoding a cold real data set takes a minute, and starting Ray 5 s
    import ray

    monkeypatch.setattr(ray, "is_initialized", lambda: False)   # as in `sweeps run`: no Ray yet
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    monkeypatch.setattr(runner, "decode_data", lambda configs: pytest.fail("the data were decoded first"))
    monkeypatch.setattr(runner, "connect_ray", lambda address: pytest.fail("Ray was started first"))
    prepared = prepare(spec_file(TABLE_SPEC, "tiny"), RunOptions(
        tracking_uri=tracking_uri, storage=str(tmp_path / "r"), cpus_per_trial=4096))
    with pytest.raises(SweepError, match=r"a trial asks for 4096 CPU and 0 GPU, but this machine offers \d+ CPU "
                                         r"and \d+ GPU: lower --cpus-per-trial / --gpus-per-trial or pass --address"):
        run_sweep(prepared)


def test_a_refused_run_leaves_no_storage_folder_behind(tmp_path, spec_file, monkeypatch):
    # `sweeps run X --profile paper --storage runs/paper` on a laptop: refused, and it left an empty runs/paper,
    # as if something had begun. A new mlflow.db stays: another sweep begun beside it may be writing its first run
    import ray

    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    kept = tmp_path / "kept"
    kept.mkdir()
    (tmp_path / "ml").mkdir()
    prepared = prepare(spec_file(TABLE_SPEC, "tiny"), RunOptions(
        tracking_uri=f"sqlite:///{tmp_path / 'ml' / 'mlflow.db'}", storage=str(kept / "runs" / "paper"),
        cpus_per_trial=4096))
    assert (kept / "runs" / "paper").is_dir()   # made by prepare, to know it writable
    with pytest.raises(SweepError, match="a trial asks for 4096 CPU"):
        run_sweep(prepared)
    left = sorted(p.name for p in tmp_path.rglob("*") if p.suffix not in (".yaml", ".db"))   # the spec file stays
    assert left == ["kept", "ml"], "the folders there before are kept; the folders made are gone"


def test_a_run_stopped_by_ctrl_c_before_it_wrote_anything_leaves_no_storage_folder_behind(tmp_path, spec_file,
                                                                                           monkeypatch):
    # Ctrl-C while a cold data set is decoded (a minute): the refusals' clean-up covered only Exception, and the
    # empty --storage folder stayed as if something had begun. One that anything was written into stays
    import ray

    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    written = {}

    def stopped_while_decoding(configs):
        for path, text in written.items():
            path.write_text(text)
        raise KeyboardInterrupt

    monkeypatch.setattr(runner, "decode_data", stopped_while_decoding)
    (tmp_path / "ml").mkdir()
    options = dict(tracking_uri=f"sqlite:///{tmp_path / 'ml' / 'mlflow.db'}", cpus_per_trial=1)
    prepared = prepare(spec_file(TABLE_SPEC, "tiny"), RunOptions(storage=str(tmp_path / "runs" / "a"), **options))
    with pytest.raises(KeyboardInterrupt):
        run_sweep(prepared)
    assert not (tmp_path / "runs").exists(), "the empty folders it made are gone"
    prepared = prepare(spec_file(TABLE_SPEC, "tiny"), RunOptions(storage=str(tmp_path / "runs" / "b"), **options))
    written[tmp_path / "runs" / "b" / "marks.json"] = "[]"
    with pytest.raises(KeyboardInterrupt):
        run_sweep(prepared)
    assert (tmp_path / "runs" / "b" / "marks.json").read_text() == "[]", "a folder holding anything stays"


def test_trial_larger_than_any_node_is_refused_before_submission(ray_local, tmp_path, tracking_uri, spec_file):
    prepared = prepare(spec_file(TABLE_SPEC, "tiny"), RunOptions(
        tracking_uri=tracking_uri, storage=str(tmp_path / "r"), cpus_per_trial=64))
    with pytest.raises(SweepError, match=r"a trial asks for 64 CPU and 0 GPU, but the largest node offers 2 CPU"):
        run_sweep(prepared)


def test_data_moved_behind_the_same_link_is_the_same_invocation_and_trains_no_cell_again(
        ray_local, tmp_path, tracking_uri, spec_file, monkeypatch):
    # /data/faces -> /disk1/faces, moved to /disk2/faces and the link pointed there: the same data by the same name
    from test_data_imagefolder import make_tree

    make_tree(tmp_path / "disk1" / "faces", per_class=10)
    link = tmp_path / "faces"
    link.symlink_to(tmp_path / "disk1" / "faces")
    path = spec_file(TABLE_SPEC, "tiny")
    options = _options(tmp_path, tracking_uri, data=(f"imagefolder={link}",))
    first = run_sweep(prepare(path, options))
    assert first.status == "completed"
    (tmp_path / "disk2").mkdir()
    (tmp_path / "disk1" / "faces").rename(tmp_path / "disk2" / "faces")   # as `mv` keeps its files' times
    link.unlink()
    link.symlink_to(tmp_path / "disk2" / "faces")
    with monkeypatch.context() as m:
        m.setattr(runner, "connect_ray", lambda address=None: pytest.fail("nothing left to train"))
        again = run_sweep(prepare(path, options))
    assert again.parent_run_id == first.parent_run_id and again.skipped_cells == 2
    assert _parent_tags(tracking_uri, again)[schema.TAG_COMMAND].count(f"imagefolder={link}") == 1, "as given"


def test_an_invocation_recorded_by_its_data_folders_resolved_path_is_continued_through_a_link(
        ray_local, tmp_path, tracking_uri, spec_file, monkeypatch):
    # versions before knew data by the folder a link resolves to: an invocation they recorded through a link is
    # keyed (and its cells) by the target, which is what giving the target itself records now
    from test_data_imagefolder import make_tree

    target = make_tree(tmp_path / "disk1" / "faces", per_class=10)
    link = tmp_path / "faces"
    link.symlink_to(target)
    path = spec_file(TABLE_SPEC, "tiny")
    first = run_sweep(prepare(path, _options(tmp_path, tracking_uri, data=(f"imagefolder={target}",))))
    assert first.status == "completed"
    with monkeypatch.context() as m:
        m.setattr(runner, "connect_ray", lambda address=None: pytest.fail("nothing left to train"))
        again = run_sweep(prepare(path, _options(tmp_path, tracking_uri, data=(f"imagefolder={link}",))))
    assert again.parent_run_id == first.parent_run_id and again.skipped_cells == 2
    _, children = _children(tracking_uri, again)
    assert len(children) == 2


def test_an_invocation_recorded_with_a_relative_data_folder_through_two_links_is_continued(
        tmp_path, tracking_uri, spec_file, monkeypatch):
    # `cd ~/project` (a link to /disk1/project), then `--data imagefolder=faces` (a link to /disk2/faces): versions
    # from ed57113 to eca91f3 made it absolute from os.getcwd(), /disk1/project/faces (the second link kept); this
    # one from $PWD, ~/project/faces, and looked for it there and resolved (/disk2/faces) alone: a new invocation
    # started and trained every cell again
    from test_data_imagefolder import make_tree

    make_tree(tmp_path / "disk2" / "faces", per_class=10)
    (tmp_path / "disk1" / "project").mkdir(parents=True)
    (tmp_path / "disk1" / "project" / "faces").symlink_to(tmp_path / "disk2" / "faces")
    (tmp_path / "project").symlink_to(tmp_path / "disk1" / "project")
    monkeypatch.chdir(tmp_path / "project")
    monkeypatch.setenv("PWD", str(tmp_path / "project"))
    path = spec_file(TABLE_SPEC, "tiny")
    then = prepare(path, _options(tmp_path, tracking_uri,
                                  data=(f"imagefolder={tmp_path / 'disk1' / 'project' / 'faces'}",)))
    parent = _recorded_invocation(tracking_uri, then, then.invocation_key, then.spec.text)
    MlflowClient(tracking_uri).set_tag(parent, schema.TAG_DATA, "imagefolder")
    monkeypatch.setattr(runner, "connect_ray", lambda address=None: pytest.fail("nothing left to train"))
    monkeypatch.setattr(runner, "_publish", lambda *args, **kw: tmp_path)
    now = prepare(path, _options(tmp_path, tracking_uri, data=("imagefolder=faces",)))
    assert now.data[0].root == str(tmp_path / "project" / "faces"), "known by the path as the shell names it"
    again = run_sweep(now)
    assert again.parent_run_id == parent and again.status == "completed" and again.skipped_cells == 2


def test_an_invocation_recorded_by_its_data_folders_resolved_path_is_continued_through_a_link_after_its_arms_moved(
        tmp_path, tracking_uri, spec_file, monkeypatch):
    # an invocation a version before recorded through a link (keyed by the folder it resolves to) whose spec was
    # since edited in what does not change what it trains (its arms reordered) is found by its spec.yaml: it was
    # looked for under the link's own path alone, so a new invocation started and trained every cell again
    from test_data_imagefolder import make_tree

    target = make_tree(tmp_path / "disk1" / "faces", per_class=10)
    link = tmp_path / "faces"
    link.symlink_to(target)
    arms = ('  - {label: "No dropping", set: {model.drop_variant: none}}\n',
            "  - {label: MAD, set: {model.drop_variant: mad}}\n")
    old = prepare(spec_file(TABLE_SPEC, "tiny"), _options(tmp_path, tracking_uri, data=(f"imagefolder={target}",)))
    parent = _recorded_invocation(tracking_uri, old, old.invocation_key, old.spec.text)
    client = MlflowClient(tracking_uri)
    client.set_tag(parent, schema.TAG_DATA, "imagefolder")
    monkeypatch.setattr(runner, "connect_ray", lambda address=None: pytest.fail("nothing left to train"))
    monkeypatch.setattr(runner, "_publish", lambda *args, **kw: tmp_path)
    reordered = prepare(spec_file(TABLE_SPEC.replace(arms[0] + arms[1], arms[1] + arms[0]), "tiny"),
                        _options(tmp_path, tracking_uri, data=(f"imagefolder={link}",)))
    assert old.invocation_key not in reordered.keys_recorded, "the arms' order is in the key"
    again = run_sweep(reordered)
    assert again.parent_run_id == parent and again.status == "completed" and again.skipped_cells == 2
    assert {c.cell_id for c in old.plan.cells} == {
        r.data.tags[schema.TAG_CELL_ID] for r in client.search_runs(
            [client.get_run(parent).info.experiment_id], f"tags.`{schema.TAG_PARENT}` = '{parent}'")}, \
        "no cell trained anew"
