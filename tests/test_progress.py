"""The progress line the CLI prints while a sweep runs: counts that add up at every moment; and the
report readied in the background once the sweep's tail leaves a slot idle."""

from __future__ import annotations

import json
import logging
import os
import pickle
import sys
import threading
from types import SimpleNamespace

import pytest
from mlflow.exceptions import MlflowException, RestException

from sweeps import figures, marks, runner, schema, tracking
from sweeps.runner import SweepCallback


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.progress: list[dict] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.progress.append(record.progress)


@pytest.fixture
def progress_records():
    logger = logging.getLogger("sweeps.progress")
    handler, level = _Records(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield handler.progress
    logger.removeHandler(handler)
    logger.setLevel(level)


def _trial(status: str = "RUNNING") -> SimpleNamespace:
    return SimpleNamespace(status=status, last_result={"val_acc": 0.5})  # no mlflow_run_id: MLflow untouched


def test_a_trial_being_reported_as_ended_is_no_longer_counted_running(progress_records):
    # Tune calls on_trial_complete while the trial's status still reads RUNNING
    trials = [_trial(), _trial()]
    callback = SweepCallback("sqlite:///unused.db", total=2, metric="val_acc", mode="max")
    callback.on_trial_complete(1, trials, trials[0])
    trials[0].status = "TERMINATED"
    callback.on_trial_complete(2, trials, trials[1])
    assert [(p["done"], p["running"]) for p in progress_records] == [(1, 1), (2, 0)]


def test_a_continued_sweep_counts_from_what_earlier_runs_completed_and_keeps_their_best(progress_records,
                                                                                         mlflow_store):
    callback = SweepCallback("http://127.0.0.1:5000", total=10, metric="sel_test_acc", mode="max")
    earlier = frozenset({f"run-{i}" for i in range(12)})
    callback.continue_after(runner.Standing(earlier, 0, 0.701, 15))   # 5 cells more since it began
    callback.setup()                                       # where it stands, before its first epoch
    first = progress_records[-1]
    assert (first["done"], first["total"], first["best"]) == (12, 15, 0.701)
    trial = SimpleNamespace(status="RUNNING", last_result={"mlflow_run_id": "run-12", "training_iteration": 2})
    callback.on_trial_result(1, [trial], trial, {"sel_test_acc": 0.65})
    mlflow_store.completed.add("run-12")
    callback.on_trial_complete(2, [trial], trial)
    assert (progress_records[-1]["done"], progress_records[-1]["best"]) == (13, 0.701)
    # a run completed before the driver stopped, which Tune's older state brings back: counted once
    again = SimpleNamespace(status="RUNNING", last_result={"mlflow_run_id": "run-3", "training_iteration": 12})
    mlflow_store.completed.add("run-3")
    callback.on_trial_complete(3, [again], again)
    assert progress_records[-1]["done"] == 13


def test_the_progress_line_shows_an_accuracy_in_percent_as_tables_do(caplog):
    callback = SweepCallback("sqlite:///unused.db", total=2, metric="sel_test_acc", mode="max")
    callback.best = 0.20761
    with caplog.at_level(logging.INFO, logger="sweeps.progress"):
        callback._report([], force=True)
    assert caplog.records[-1].getMessage().endswith("best sel_test_acc = 20.76 %")
    loss = SweepCallback("sqlite:///unused.db", total=2, metric="val_loss", mode="min")
    loss.best = 1.23456
    with caplog.at_level(logging.INFO, logger="sweeps.progress"):
        loss._report([], force=True)
    assert caplog.records[-1].getMessage().endswith("best val_loss = 1.2346")


def test_the_progress_line_names_a_best_only_once_a_trial_has_completed_and_before_says_it_is_a_running_epochs(
        caplog):
    # "0/4 ended (...), 2 running, 3 s, best sel_test_acc = 62.00 %": a cell's first epoch read as a result
    callback = SweepCallback("sqlite:///unused.db", total=4, metric="sel_test_acc", mode="max")
    trials = [_trial(), _trial()]
    with caplog.at_level(logging.INFO, logger="sweeps.progress"):
        callback._report(trials, force=True)
        assert caplog.records[-1].getMessage().endswith(", no sel_test_acc yet")
        callback.on_trial_result(1, trials, trials[0], {"sel_test_acc": 0.62})
        callback._report(trials, force=True)   # a result's line waits 5 s after the last one
        assert caplog.records[-1].getMessage().endswith(
            ", no sel_test_acc of a completed trial yet (best epoch so far: 62.00 %, of a running trial)")
        assert (caplog.records[-1].progress["best"], caplog.records[-1].progress["best_running"]) == (None, 0.62)
        # stopped by the scheduler at epoch 2 of 5 (pruned): not ranked, as the search's table leaves it out
        trials[1].last_result = {"sel_test_acc": 0.70, "training_iteration": 2, schema.FINAL_STEP_KEY: 5}
        callback.on_trial_complete(2, trials, trials[1])
        assert caplog.records[-1].progress["best"] is None
        trials[1].last_result = {"sel_test_acc": 0.55, "training_iteration": 5, schema.FINAL_STEP_KEY: 5}
        callback.on_trial_complete(3, trials, trials[1])   # its final value: lower than the other's running one
    assert caplog.records[-1].getMessage().endswith(", best sel_test_acc = 55.00 %")
    assert caplog.records[-1].progress["best"] == 0.55


def test_a_continuation_takes_its_best_from_the_completed_runs_alone(store):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(store)
    experiment = client.create_experiment("standing-ended")
    for cell, status, acc in (("a", "completed", 0.5), ("b", "pruned", 0.6), ("c", "running", 0.9),
                              ("d", "failed", 0.8)):
        run = client.create_run(experiment, tags={schema.TAG_PARENT: "p", schema.TAG_CELL_ID: cell,
                                                  schema.TAG_STATUS: status})
        client.log_metric(run.info.run_id, "val_acc", acc)
    assert runner.standing_of(client, experiment, "p", "val_acc", "max", 4).best == 0.5


def test_a_continuation_counts_and_ranks_only_the_runs_of_the_cells_it_plans(store):
    # with fewer --seeds its progress started at "2/2 done" from the seeds left out, their best too
    from mlflow.tracking import MlflowClient

    client = MlflowClient(store)
    experiment = client.create_experiment("standing")
    for cell, acc in (("a0", 0.5), ("a1", 0.9), ("b1", 0.8)):
        run = client.create_run(experiment, tags={schema.TAG_PARENT: "p", schema.TAG_CELL_ID: cell,
                                                  schema.TAG_STATUS: "completed"})
        client.log_metric(run.info.run_id, "sel_test_acc", acc)
    standing = runner.standing_of(client, experiment, "p", "sel_test_acc", "max", 2, frozenset({"a0", "b0"}))
    assert (standing.done, standing.best) == (1, 0.5)
    assert runner.standing_of(client, experiment, "p", "sel_test_acc", "max", 3).done == 3


def test_a_search_whose_trials_all_ended_reads_so_whether_they_completed_were_pruned_or_failed(mlflow_store,
                                                                                               caplog):
    # "2/4 done, 0 running, 2 pruned" at a search's end read as 2 trials still to run
    mlflow_store.completed.update({"run-a", "run-b"})
    trials = [_ended("run-a"), _ended("run-b"), _ended("run-c"), _ended("run-d")]
    callback = SweepCallback("http://127.0.0.1:5000", total=4, metric="val_acc", mode="max")
    with caplog.at_level(logging.INFO, logger="sweeps.progress"):
        for i, trial in enumerate(trials[:3]):
            callback.on_trial_complete(i, trials, trial)
            trial.status = "TERMINATED"
        callback.on_trial_error(3, trials, trials[3])
    lines = [r.getMessage() for r in caplog.records if r.name == "sweeps.progress"]
    assert lines[1].startswith("2/4 ended (2 completed, 0 pruned, 0 failed), 2 running, ")
    assert lines[-1].startswith("4/4 ended (2 completed, 1 pruned, 1 failed), 0 running, "), lines
    assert caplog.records[-1].progress["ended"] == 4


def test_a_failed_trial_is_counted_failed_and_not_running(progress_records):
    trials = [_trial(), _trial()]
    callback = SweepCallback("sqlite:///unused.db", total=2, metric="val_acc", mode="max")
    callback.on_trial_error(1, trials, trials[1])
    assert [(p["failed"], p["running"]) for p in progress_records] == [(1, 1)]


# --------------------------------------------------------------------------- the report's warm-up

@pytest.fixture
def warm_ups(monkeypatch):
    """The times the callback starts the report's warm-up (recorded, not run)."""
    calls: list[int] = []
    started: list = []
    monkeypatch.setattr(runner, "_REPORT_WARM_UP", started)
    monkeypatch.setattr(runner, "warm_up_report", lambda: (calls.append(1), started.append("thread")))
    return calls


def test_the_report_warms_up_once_a_slot_stays_idle_for_the_rest_of_the_sweep(warm_ups):
    trials = [_trial(), _trial(), _trial("PENDING")]   # 2 at once, a third waiting
    callback = SweepCallback("sqlite:///unused.db", total=3, metric="val_acc", mode="max")
    callback.on_trial_result(1, trials, trials[0], {"val_acc": 0.5})
    callback.on_trial_complete(2, trials, trials[0])    # its slot goes to the waiting trial
    trials[0].status, trials[2].status = "TERMINATED", "RUNNING"
    callback.on_trial_start(3, trials, trials[2])       # every trial started, but both slots busy
    assert warm_ups == []
    callback.on_trial_complete(4, trials, trials[1])    # a slot idle for good
    assert warm_ups == [1]


def test_one_trial_at_a_time_warms_up_when_the_last_trial_starts(warm_ups):
    trials = [_trial(), _trial("PENDING")]
    callback = SweepCallback("sqlite:///unused.db", total=2, metric="val_acc", mode="max")
    callback.on_trial_complete(1, trials, trials[0])
    assert warm_ups == []
    trials[0].status, trials[1].status = "TERMINATED", "RUNNING"
    callback.on_trial_start(2, trials, trials[1])
    assert warm_ups == [1]


def test_no_warm_up_while_trials_are_still_to_be_created(warm_ups):
    trials = [_trial(), _trial()]                       # Tune has not created the third trial yet
    callback = SweepCallback("sqlite:///unused.db", total=3, metric="val_acc", mode="max")
    callback.on_trial_complete(1, trials, trials[0])
    assert warm_ups == []


def test_a_callback_pickled_before_the_warm_up_existed_still_reports(warm_ups, progress_records):
    callback = SweepCallback("sqlite:///unused.db", total=1, metric="val_acc", mode="max")
    del callback.expected_trials, callback._peak_running         # as Tuner.restore unpickles an older one
    trials = [_trial()]
    callback.on_trial_result(1, trials, trials[0], {"val_acc": 0.5})
    callback.on_trial_complete(2, trials, trials[0])
    assert progress_records[-1]["done"] == 1 and warm_ups == [1]


def test_the_warm_up_imports_the_report_in_the_background_once(monkeypatch):
    monkeypatch.setattr(runner, "_REPORT_WARM_UP", [])
    runner.warm_up_report()
    runner.warm_up_report()
    assert len(runner._REPORT_WARM_UP) == 1
    runner._REPORT_WARM_UP[0].join(timeout=60)
    assert "sweeps.report" in sys.modules and not runner._REPORT_WARM_UP[0].is_alive()
    figures.warm_up()                                  # what the thread ran, here so a failure would show


def test_the_callback_survives_the_pickling_tune_saves_its_state_with(warm_ups, progress_records):
    callback = SweepCallback("sqlite:///unused.db", total=1, metric="val_acc", mode="max", expected_trials=1)
    restored = pickle.loads(pickle.dumps(callback))
    trials = [_trial()]
    restored.on_trial_complete(1, trials, trials[0])
    assert progress_records[-1]["done"] == 1 and warm_ups == [1]


def test_the_warm_up_runs_in_a_daemon_thread_that_never_holds_the_driver_at_exit(monkeypatch):
    ran_in: list[threading.Thread] = []
    monkeypatch.setattr(runner, "_REPORT_WARM_UP", [])
    monkeypatch.setattr(figures, "warm_up", lambda: ran_in.append(threading.current_thread()))
    runner.warm_up_report()
    runner._REPORT_WARM_UP[0].join(timeout=60)
    assert [(t.name, t.daemon) for t in ran_in] == [("sweeps-report-warm-up", True)]


def test_a_stuck_warm_up_delays_the_report_but_never_stops_it(monkeypatch, tmp_path, caplog):
    release = threading.Event()
    stuck = threading.Thread(target=release.wait, daemon=True)
    stuck.start()
    monkeypatch.setattr(runner, "_REPORT_WARM_UP", [stuck])
    monkeypatch.setattr(runner, "REPORT_WARM_UP_WAIT_S", 0.05)
    published: list = []
    from sweeps import report
    monkeypatch.setattr(report, "publish", lambda *args, **kw: published.append(args))
    with caplog.at_level(logging.WARNING, logger="sweeps.runner"):
        out = runner._publish("demo", "sqlite:///unused.db", "abc123", tmp_path)
    release.set()
    assert len(published) == 1 and out is not None
    assert "warm-up has not finished" in caplog.text


@pytest.mark.parametrize("error", [MlflowException("artifact upload failed: 503"), ValueError("bad figure size")])
def test_a_report_that_fails_in_any_way_never_turns_a_completed_sweep_into_a_failed_one(
        error, monkeypatch, tmp_path, caplog):
    # MLflow refusing the artifacts, matplotlib raising: the runs are recorded; the report can be drawn later
    from sweeps import report

    def failing(*args, **kw):
        raise error

    monkeypatch.setattr(runner, "_REPORT_WARM_UP", [])
    monkeypatch.setattr(report, "publish", failing)
    with caplog.at_level(logging.WARNING, logger="sweeps.runner"):
        assert runner._publish("demo", "sqlite:///unused.db", "abc123", tmp_path) is None
    assert f"could not be written ({type(error).__name__}: {error}); `sweeps table demo`" in caplog.text


# --------------------------------------------------------------------------- marking ended trials in MLflow

class _Store:
    """What the callback needs of MLflow: a run's status tag, marks recorded; `down` refuses every call."""

    def __init__(self) -> None:
        self.down = False
        self.marks: list[tuple] = []
        self.retries_seen: list = []
        self.completed: set[str] = set()     # runs their trials completed themselves
        self.deleted: set[str] = set()
        self.trial_runs: dict[tuple, str] = {}   # (experiment, parent run, trial id) -> the run it opened

    def get_run(self, run_id):
        self.retries_seen.append(os.environ.get(tracking.RETRIES_ENV))
        if self.down:
            raise MlflowException("API request to http://127.0.0.1:5000 failed: Connection refused")
        if run_id in self.deleted:
            raise RestException({"error_code": "RESOURCE_DOES_NOT_EXIST", "message": f"Run '{run_id}' not found"})
        return SimpleNamespace(data=SimpleNamespace(tags={schema.TAG_STATUS: "completed"} if run_id in self.completed
                                                    else {}))

    def mark(self, client, run_id, status, pruned_step=None, error=None):
        self.marks.append((run_id, status, pruned_step))

    def find_trial_run(self, client, experiment_id, parent_run_id, trial_id):
        if self.down:
            raise MlflowException("API request to http://127.0.0.1:5000 failed: Connection refused")
        run_id = self.trial_runs.get((experiment_id, parent_run_id, trial_id))
        return run_id and SimpleNamespace(info=SimpleNamespace(run_id=run_id))


@pytest.fixture
def mlflow_store(monkeypatch):
    store = _Store()
    monkeypatch.setattr(tracking, "client_for", lambda uri: store)
    monkeypatch.setattr(tracking, "mark_cell", store.mark)
    monkeypatch.setattr(tracking, "find_trial_run", store.find_trial_run)
    monkeypatch.setattr(tracking, "reachable", lambda uri: not store.down)
    return store


def _ended(run_id: str, iterations: int = 2) -> SimpleNamespace:
    return SimpleNamespace(status="RUNNING", last_result={"mlflow_run_id": run_id, "training_iteration": iterations})


def test_a_trial_stopped_before_its_run_completed_is_marked_pruned_at_its_last_step(mlflow_store, progress_records):
    trials = [_ended("run-a", iterations=3)]
    callback = SweepCallback("http://127.0.0.1:5000", total=1, metric="val_acc", mode="max")
    callback.on_trial_complete(1, trials, trials[0])
    assert mlflow_store.marks == [("run-a", "pruned", 2)]
    assert progress_records[-1]["pruned"] == 1 and progress_records[-1]["done"] == 0


def test_marks_wait_for_an_unreachable_server_without_holding_tunes_loop(mlflow_store, progress_records,
                                                                          monkeypatch, caplog):
    # tried only when /health answers, then one attempt (MLflow's default retries hold the caller ~4 min);
    # retried later, counted done meanwhile
    monkeypatch.setenv(tracking.RETRIES_ENV, "7")
    mlflow_store.down = True
    trials = [_ended("run-a"), _ended("run-b")]
    callback = SweepCallback("http://127.0.0.1:5000", total=2, metric="val_acc", mode="max")
    with caplog.at_level(logging.WARNING, logger="sweeps.runner"):
        callback.on_trial_complete(1, trials, trials[0])
        callback.on_trial_error(2, trials, trials[1])
        callback.on_step_begin(3, trials)                   # within MARK_RETRY_S: not tried again
        assert mlflow_store.retries_seen == [] and mlflow_store.marks == [], "not tried past a failed /health"
        assert (progress_records[-1]["done"], progress_records[-1]["failed"]) == (1, 1)
        assert caplog.text.count("could not mark") == 1
        mlflow_store.down = False
        monkeypatch.setattr(runner, "MARK_RETRY_S", 0.0)
        callback.on_step_begin(4, trials)
    assert mlflow_store.marks == [("run-a", "pruned", 1), ("run-b", "failed", None)]
    assert mlflow_store.retries_seen == ["0", "0"], "one attempt per mark, MLflow's retries off"
    assert callback.counts == {"done": 0, "pruned": 1, "failed": 1}
    assert "are marked in MLflow" in caplog.text and os.environ[tracking.RETRIES_ENV] == "7"


def test_a_trial_that_completed_its_run_stays_done_and_is_not_marked(mlflow_store, progress_records):
    mlflow_store.completed.add("run-a")
    trials = [_ended("run-a")]
    callback = SweepCallback("http://127.0.0.1:5000", total=1, metric="val_acc", mode="max")
    callback.on_trial_complete(1, trials, trials[0])
    assert mlflow_store.marks == [] and callback.counts == {"done": 1, "pruned": 0, "failed": 0}


def test_a_mark_the_server_refuses_is_dropped_and_never_holds_up_the_next(mlflow_store, caplog):
    mlflow_store.deleted.add("run-gone")
    trials = [_ended("run-gone"), _ended("run-b")]
    callback = SweepCallback("http://127.0.0.1:5000", total=2, metric="val_acc", mode="max")
    with caplog.at_level(logging.WARNING, logger="sweeps.runner"):
        callback.on_trial_complete(1, trials, trials[0])
        callback.on_trial_complete(2, trials, trials[1])
    assert mlflow_store.marks == [("run-b", "pruned", 1)] and callback._unmarked == []
    assert "could not mark run run-gone pruned" in caplog.text and "not found" in caplog.text


def test_a_mark_a_local_store_refuses_is_dropped_like_one_a_server_refuses(store, tmp_path, caplog):
    # a sqlite store raises a plain MlflowException for a deleted run: a kept mark of one must not stop
    # the next `sweeps run` with a traceback
    from mlflow.tracking import MlflowClient

    client = MlflowClient(store)
    experiment = client.create_experiment("tiny")
    gone, live = (client.create_run(experiment).info.run_id for _ in range(2))
    client.delete_run(gone)
    kept = tmp_path / "tiny-0123abcd-unmarked.json"
    kept.write_text(json.dumps([[gone, "ended", 1], [live, "failed", 2]]))
    with caplog.at_level(logging.WARNING, logger="sweeps.runner"):
        assert marks.replay_marks(client, kept) == 1
    assert f"could not mark run {gone} pruned" in caplog.text and not kept.exists()
    assert client.get_run(live).data.tags[schema.TAG_STATUS] == schema.STATUS_FAILED


def test_a_store_out_of_reach_is_not_taken_for_a_refusal():
    # MLflow's client raises a plain MlflowException (INTERNAL_ERROR) for a server it cannot reach:
    # that mark must stay queued and be retried, not dropped
    def unreachable(*args, **kwargs):
        raise MlflowException("API request to http://127.0.0.1:5000 failed: Connection refused")

    client = SimpleNamespace(get_run=unreachable)
    with pytest.raises(MlflowException, match="Connection refused"):
        marks.make_mark(client, "run-a", "ended", 1)


@pytest.mark.parametrize("code", ["INTERNAL_ERROR", "TEMPORARILY_UNAVAILABLE"])
def test_a_server_in_trouble_for_now_is_not_taken_for_a_refusal(code, tmp_path):
    # a 500 of a locked sqlite behind the server, a 503: the server answered, but a retry can succeed;
    # dropped, the pruned run stayed running and its search interrupted on every later run
    from mlflow.exceptions import RestException

    def in_trouble(*args, **kwargs):
        raise RestException({"error_code": code, "message": "database is locked"})

    client = SimpleNamespace(get_run=in_trouble)
    with pytest.raises(RestException):
        marks.make_mark(client, "run-a", "ended", 1)
    kept = tmp_path / "tiny-0123abcd-unmarked.json"
    kept.write_text(json.dumps([["run-a", "ended", 1]]))
    with pytest.raises(runner.SweepError, match=r"MLflow did not take the marks kept in .*unmarked\.json.*the file "
                                                r"is kept until then"):
        marks.replay_marks(client, kept)
    assert kept.exists()

    def refusing(*args, **kwargs):
        raise RestException({"error_code": "RESOURCE_DOES_NOT_EXIST", "message": "no run run-a"})

    assert marks.make_mark(SimpleNamespace(get_run=refusing), "run-a", "ended", 1) is None, "a refusal: dropped"


def test_the_experiment_end_waits_for_the_server_then_names_the_runs_it_could_not_mark(mlflow_store, monkeypatch,
                                                                                       caplog):
    mlflow_store.down = True
    waited: list[float] = []

    def still_down(uri, wait_s):
        waited.append(wait_s)
        raise tracking.TrackingError(f"MLflow tracking server {uri} has been unreachable for {wait_s} s")

    monkeypatch.setattr(tracking, "wait_for_tracking", still_down)
    monkeypatch.setenv(tracking.WAIT_ENV, "42")
    trials = [_ended("run-a")]
    callback = SweepCallback("http://127.0.0.1:5000", total=1, metric="val_acc", mode="max")
    callback.on_trial_complete(1, trials, trials[0])
    trials[0].status = "TERMINATED"
    with caplog.at_level(logging.WARNING, logger="sweeps.runner"):
        callback.on_experiment_end(trials)
    assert waited == [42.0] and "run-a" in caplog.text and "unreachable for 42" in caplog.text


def test_an_interrupted_sweep_waits_only_briefly_for_its_last_marks(mlflow_store, monkeypatch):
    mlflow_store.down = True
    waited: list[float] = []
    monkeypatch.setattr(tracking, "wait_for_tracking", lambda uri, wait_s: waited.append(wait_s))
    trials = [_ended("run-a"), _trial("PAUSED")]          # Ctrl-C: a trial left unfinished
    callback = SweepCallback("http://127.0.0.1:5000", total=2, metric="val_acc", mode="max")
    callback.on_trial_complete(1, trials, trials[0])
    trials[0].status = "TERMINATED"
    mlflow_store.down = False
    callback.on_experiment_end(trials)
    assert waited == [runner.INTERRUPTED_MARK_WAIT_S] and mlflow_store.marks == [("run-a", "pruned", 1)]


def test_a_callback_pickled_before_marks_were_queued_still_marks(mlflow_store):
    callback = SweepCallback("http://127.0.0.1:5000", total=1, metric="val_acc", mode="max")
    del callback._unmarked, callback._marks_tried, callback._marks_warned, callback.marks_file
    trials = [_ended("run-a")]
    callback.on_step_begin(1, trials)
    callback.on_trial_complete(2, trials, trials[0])
    assert mlflow_store.marks == [("run-a", "pruned", 1)]


def _failed_before_reporting(trial_id: str) -> SimpleNamespace:
    """A trial that errored before its first epoch's report: no run id in its (empty) last result."""
    return SimpleNamespace(status="ERROR", last_result={}, trial_id=trial_id,
                           config={"context": {"experiment_id": "7", "parent_run_id": "parent-1"}})


def test_a_trial_that_failed_before_reporting_gets_the_run_it_opened_marked_failed(mlflow_store, monkeypatch,
                                                                                    tmp_path):
    # found by the trial id its run is tagged with, also when MLflow answers only later (the kept file)
    mlflow_store.trial_runs[("7", "parent-1", "t_00001")] = "run-x"
    mlflow_store.down = True
    monkeypatch.setattr(tracking, "wait_for_tracking", lambda uri, wait_s: (_ for _ in ()).throw(
        tracking.TrackingError(f"MLflow tracking server {uri} has been unreachable for {wait_s} s")))
    kept = tmp_path / "unmarked.json"
    trials = [_failed_before_reporting("t_00001"), _failed_before_reporting("t_00002")]   # t_00002 opened none
    callback = SweepCallback("http://127.0.0.1:5000", total=2, metric="val_acc", mode="max", marks_file=str(kept))
    for trial in trials:
        callback.on_trial_error(1, trials, trial)
    callback.on_experiment_end(trials)
    assert callback.counts["failed"] == 2 and mlflow_store.marks == []
    mlflow_store.down = False
    assert marks.replay_marks(mlflow_store, kept) == 1
    assert mlflow_store.marks == [("run-x", "failed", None)]


def test_a_malformed_trial_reference_in_a_kept_file_is_dropped_with_a_warning(mlflow_store, tmp_path, caplog):
    kept = tmp_path / "unmarked.json"
    kept.write_text(json.dumps([["trial:7/only-two", "failed", 0], ["run-b", "failed", 0]]))
    with caplog.at_level(logging.WARNING, logger="sweeps.runner"):
        assert marks.replay_marks(mlflow_store, kept) == 1
    assert mlflow_store.marks == [("run-b", "failed", None)] and "not a trial reference" in caplog.text


def test_a_run_its_trial_completed_is_never_marked_failed(mlflow_store):
    # e.g. a trial that errors after its run completed: the run's result stands
    mlflow_store.completed.add("run-a")
    trials = [SimpleNamespace(status="ERROR", last_result={"mlflow_run_id": "run-a", "training_iteration": 3})]
    SweepCallback("http://127.0.0.1:5000", total=1, metric="val_acc", mode="max").on_trial_error(1, trials, trials[0])
    assert mlflow_store.marks == []


# --------------------------------------------------------------------------- marks kept on disk for the next run

def test_marks_no_attempt_could_make_are_kept_on_disk_and_made_by_the_next_run(mlflow_store, monkeypatch, tmp_path,
                                                                             caplog):
    # the server away past the experiment's end: a pruned run left running would keep a search unfinished
    kept = tmp_path / "tiny-0123abcd-unmarked.json"
    mlflow_store.down = True
    monkeypatch.setattr(tracking, "wait_for_tracking", lambda uri, wait_s: (_ for _ in ()).throw(
        tracking.TrackingError(f"MLflow tracking server {uri} has been unreachable for {wait_s} s")))
    trials = [_ended("run-a"), _ended("run-b")]
    callback = SweepCallback("http://127.0.0.1:5000", total=2, metric="val_acc", mode="max", marks_file=str(kept))
    callback.on_trial_complete(1, trials, trials[0])
    callback.on_trial_error(2, trials, trials[1])
    for trial in trials:
        trial.status = "TERMINATED"
    with caplog.at_level(logging.WARNING, logger="sweeps.runner"):
        callback.on_experiment_end(trials)
    assert mlflow_store.marks == [] and f"kept in {kept}" in caplog.text
    mlflow_store.down = False
    assert marks.replay_marks(mlflow_store, kept) == 2
    assert mlflow_store.marks == [("run-a", "pruned", 1), ("run-b", "failed", None)]
    assert not kept.exists() and marks.replay_marks(mlflow_store, kept) == 0


def test_a_failed_mark_with_its_error_not_made_by_the_end_is_kept_with_a_warning_not_a_crash(
        mlflow_store, monkeypatch, tmp_path, caplog):
    # the warning unpacked 3 fields of a mark that now carries its error too: Tune's cleanup raised ValueError
    kept = tmp_path / "unmarked.json"
    mlflow_store.down = True
    monkeypatch.setattr(tracking, "wait_for_tracking", lambda uri, wait_s: (_ for _ in ()).throw(
        tracking.TrackingError(f"MLflow tracking server {uri} has been unreachable for {wait_s} s")))
    trial = SimpleNamespace(trial_id="t0", status="ERROR", last_result={"mlflow_run_id": "run-a"}, config={},
                            get_error=lambda: 'Traceback (most recent call last):\n  File "x", line 1\n    f()\n'
                                              'ValueError: boom\n')
    callback = SweepCallback("http://127.0.0.1:5000", total=1, metric="val_acc", mode="max", marks_file=str(kept))
    callback.on_trial_error(1, [trial], trial)
    with caplog.at_level(logging.WARNING, logger="sweeps.runner"):
        callback.on_experiment_end([trial])
    assert f"run-a; kept in {kept}" in caplog.text
    assert json.loads(kept.read_text()) == [["run-a", "failed", 0, {"error": "ValueError: boom"}]]


def test_a_mark_is_on_disk_before_its_attempt_and_gone_once_made(mlflow_store, monkeypatch, tmp_path):
    # a driver killed mid-attempt leaves the mark to the next run; a made mark leaves no file
    kept = tmp_path / "unmarked.json"
    on_disk: list = []
    made = mlflow_store.mark
    monkeypatch.setattr(tracking, "mark_cell", lambda client, run_id, status, pruned_step=None: (
        on_disk.append(json.loads(kept.read_text())), made(client, run_id, status, pruned_step)))
    trials = [_ended("run-a")]
    callback = SweepCallback("http://127.0.0.1:5000", total=1, metric="val_acc", mode="max", marks_file=str(kept))
    callback.on_trial_complete(1, trials, trials[0])
    assert on_disk == [[["run-a", "ended", 1]]] and mlflow_store.marks == [("run-a", "pruned", 1)]
    assert not kept.exists() and not list(tmp_path.iterdir()), "no file, nor a partial one, is left"


def test_a_marks_file_that_cannot_be_kept_is_a_warning_and_the_marks_are_still_made(mlflow_store, tmp_path, caplog):
    (tmp_path / "a-file").write_text("")
    kept = tmp_path / "a-file" / "unmarked.json"          # its folder is a file: cannot be written
    trials = [_ended("run-a")]
    callback = SweepCallback("http://127.0.0.1:5000", total=1, metric="val_acc", mode="max", marks_file=str(kept))
    with caplog.at_level(logging.WARNING, logger="sweeps.runner"):
        callback.on_trial_complete(1, trials, trials[0])
    assert mlflow_store.marks == [("run-a", "pruned", 1)]
    assert f"could not keep the marks still to make in {kept}" in caplog.text


def test_a_marks_file_that_cannot_be_read_is_an_error_naming_it(mlflow_store, tmp_path):
    kept = tmp_path / "tiny-0123abcd-unmarked.json"
    kept.write_text('[["run-a", "ended"')
    with pytest.raises(runner.SweepError, match=rf"{kept} \(the marks an earlier run .* Delete it to go on"):
        marks.replay_marks(mlflow_store, kept)
    assert mlflow_store.marks == [] and kept.exists()


def test_a_kept_mark_made_on_a_later_try_leaves_no_file(mlflow_store, monkeypatch, tmp_path):
    kept = tmp_path / "unmarked.json"
    mlflow_store.down = True
    trials = [_ended("run-a")]
    callback = SweepCallback("http://127.0.0.1:5000", total=1, metric="val_acc", mode="max", marks_file=str(kept))
    callback.on_trial_complete(1, trials, trials[0])
    assert json.loads(kept.read_text()) == [["run-a", "ended", 1]]
    mlflow_store.down = False
    monkeypatch.setattr(runner, "MARK_RETRY_S", 0.0)
    callback.on_step_begin(2, trials)
    assert mlflow_store.marks == [("run-a", "pruned", 1)] and not list(tmp_path.iterdir())


def test_a_replayed_mark_of_a_run_its_trial_completed_sets_nothing(mlflow_store, tmp_path):
    kept = tmp_path / "unmarked.json"
    kept.write_text(json.dumps([["run-done", "ended", 11], ["run-a", "ended", 2]]))
    mlflow_store.completed.add("run-done")
    assert marks.replay_marks(mlflow_store, kept) == 1
    assert mlflow_store.marks == [("run-a", "pruned", 2)] and not kept.exists()


@pytest.mark.parametrize("complete, interrupted, counts, errors, status", [
    (True, False, {}, 0, "completed"),
    (False, True, {"failed": 1}, 1, "interrupted"),                     # cut short: resume continues it
    (False, False, {"running": 1}, 0, "interrupted"),
    (False, False, {}, 0, "interrupted"),                               # stopped before any trial ran
    (False, False, {"failed": 1}, 1, "failed"),
    (False, False, {}, 2, "failed"),     # trials that failed before they opened a run: no failed run to count
])
def test_an_invocations_status_after_its_fits(complete, interrupted, counts, errors, status):
    assert runner.final_status(complete, interrupted, counts, errors) == status
