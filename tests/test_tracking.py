"""MLflow tracking: the store is resolved and checked up front; a retried cell continues its own run."""

import logging
import os
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from sweeps import schema, tracking


def test_resolve_tracking_uri_makes_relative_sqlite_absolute(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert tracking.resolve_tracking_uri(None, cwd=tmp_path) == f"sqlite:///{tmp_path.resolve()}/mlflow.db"


def test_resolve_tracking_uri_prefers_option_over_environment(monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:1")
    assert tracking.resolve_tracking_uri("http://127.0.0.1:5000") == "http://127.0.0.1:5000"
    assert tracking.resolve_tracking_uri(None) == "http://127.0.0.1:1"


def test_resolve_tracking_uri_refuses_a_bare_folder():
    with pytest.raises(tracking.TrackingError, match=r"tracking URI 'mlruns' is not supported: use sqlite"):
        tracking.resolve_tracking_uri("mlruns")


def test_check_tracking_unreachable_server_is_a_clear_error():
    with pytest.raises(tracking.TrackingError, match=r"MLflow tracking server http://127.0.0.1:9 is unreachable"):
        tracking.check_tracking("http://127.0.0.1:9", timeout=2)


def test_a_trials_wait_for_an_unreachable_server_says_it_is_retried_only_if_max_failures_allows():
    # with --max-failures 0 (or on its last try) a trial is not retried, which "is retried" claimed
    with pytest.raises(tracking.TrackingError, match=r"unreachable for 0 s \(set SWEEPS_TRACKING_WAIT_S to wait "
                                                     r"longer\); the trial fails, and is retried from its checkpoint "
                                                     r"if --max-failures leaves it another try$"):
        tracking.wait_for_tracking("http://127.0.0.1:9", 0, in_trial=True)


def test_the_drivers_wait_for_an_unreachable_server_claims_no_trial_fails():
    # the driver waits to mark ended trials' runs: no trial fails or is retried for it
    with pytest.raises(tracking.TrackingError) as raised:
        tracking.wait_for_tracking("http://127.0.0.1:9", 0)
    assert str(raised.value) == ("MLflow tracking server http://127.0.0.1:9 has been unreachable for 0 s (set "
                                 "SWEEPS_TRACKING_WAIT_S to wait longer)")


def test_check_tracking_says_an_unreachable_server_came_from_the_environment(monkeypatch):
    # `sweeps run` without --tracking-uri: the URL is MLFLOW_TRACKING_URI's, perhaps a stale one
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")
    with pytest.raises(tracking.TrackingError, match=r"^MLflow tracking server http://127.0.0.1:9 \(from the "
                                                     r"environment variable MLFLOW_TRACKING_URI\) is unreachable .*"
                                                     r"or pass another --tracking-uri \(or unset MLFLOW_TRACKING_URI, "
                                                     r"or set it to another store\)$"):
        tracking.check_tracking("http://127.0.0.1:9", timeout=2, option=None)
    with pytest.raises(tracking.TrackingError) as given:   # --tracking-uri given: it is the one typed
        tracking.check_tracking("http://127.0.0.1:9", timeout=2, option="http://127.0.0.1:9")
    assert "MLFLOW_TRACKING_URI" not in str(given.value)


def test_check_tracking_unwritable_sqlite_folder_is_a_clear_error(tmp_path):
    with pytest.raises(tracking.TrackingError, match=r"cannot write the MLflow database in .*missing"):
        tracking.check_tracking(f"sqlite:///{tmp_path}/missing/mlflow.db")


def _read_only(monkeypatch, *paths):
    """`paths` read as read-only (a read-only mount, or chmod a-w for a user who is not root, as tests may run)."""
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda path, mode, **kw: (
        False if mode & os.W_OK and Path(path) in paths else real_access(path, mode, **kw)))


def test_check_tracking_read_only_sqlite_database_is_a_clear_error(tmp_path, monkeypatch):
    (tmp_path / "mlflow.db").write_bytes(b"")
    _read_only(monkeypatch, tmp_path / "mlflow.db")
    with pytest.raises(tracking.TrackingError, match=rf"cannot write the MLflow database {tmp_path}/mlflow.db: it "
                                                     r"is read-only; make it writable"):
        tracking.check_tracking(f"sqlite:///{tmp_path}/mlflow.db")


def test_check_tracking_read_only_artifact_folder_beside_the_database_is_a_clear_error(tmp_path, monkeypatch):
    (tmp_path / "mlartifacts").mkdir()   # not refused up front, it failed at the parent run's first artifact,
    _read_only(monkeypatch, tmp_path / "mlartifacts")   # with a traceback, after decoding and starting Ray
    with pytest.raises(tracking.TrackingError, match=rf"cannot write its artifact folder {tmp_path}/mlartifacts: "
                                                     r"it is read-only"):
        tracking.check_tracking(f"sqlite:///{tmp_path}/mlflow.db")


def test_check_tracking_a_file_where_the_artifact_folder_goes_is_a_clear_error(tmp_path):
    (tmp_path / "mlartifacts").write_text("not a folder")
    with pytest.raises(tracking.TrackingError, match=rf"cannot write its artifact folder {tmp_path}/mlartifacts: "
                                                     r"it is a file"):
        tracking.check_tracking(f"sqlite:///{tmp_path}/mlflow.db")


def test_ensure_experiment_puts_artifacts_beside_the_database(tracking_uri, tmp_path):
    client = tracking.client_for(tracking_uri)
    experiment_id = tracking.ensure_experiment(client, "demo", tracking_uri)
    assert tracking.ensure_experiment(client, "demo", tracking_uri) == experiment_id
    location = client.get_experiment(experiment_id).artifact_location
    assert location == (tmp_path / "mlartifacts" / "demo").as_uri()


def test_a_runs_text_artifact_is_read_from_its_location_without_asking_the_store_for_the_run(tracking_uri, monkeypatch):
    # `sweeps run`'s search for the invocation an edited spec continues reads every parent's spec.yaml: through
    # MlflowClient.download_artifacts(run_id), ~50 ms each on a local sqlite store, most of it queries
    client = tracking.client_for(tracking_uri)
    experiment_id = tracking.ensure_experiment(client, "demo", tracking_uri)
    parent = tracking.start_parent(client, experiment_id, "demo", {})
    tracking.log_text_artifact(client, parent, schema.ARTIFACT_SPEC, "name: demo\n")
    run = tracking.parents(client, experiment_id, max_results=None)[0]
    monkeypatch.setattr(client, "download_artifacts", lambda *args, **kw: pytest.fail("asked the store for the run"))
    assert tracking.read_run_text_artifact(client, run, schema.ARTIFACT_SPEC) == "name: demo\n"
    monkeypatch.undo()
    assert tracking.read_run_text_artifact(client, run, "missing.yaml") is None
    moved = SimpleNamespace(info=SimpleNamespace(run_id=run.info.run_id, artifact_uri="file:///nowhere"))
    assert tracking.read_run_text_artifact(client, moved, schema.ARTIFACT_SPEC) == "name: demo\n", \
        "a location it cannot read: through the store"


class _ServerClient:
    """What ensure_experiment asks of an MLflow server that picks the artifact location itself."""

    def __init__(self, location):
        self.experiment = SimpleNamespace(experiment_id="7", lifecycle_stage="active", artifact_location=location)
        self.created = False

    def get_experiment_by_name(self, name):
        return self.experiment if self.created else None

    def create_experiment(self, name, artifact_location=None):
        assert artifact_location is None   # a server's own choice
        self.created = True
        return "7"

    def get_experiment(self, experiment_id):
        return self.experiment


@pytest.mark.parametrize("location", ["/srv/mlartifacts/7", "file:///srv/mlartifacts/7"])
def test_ensure_experiment_warns_when_a_server_has_each_client_write_artifacts_to_its_own_disk(location, caplog):
    # `mlflow server --no-serve-artifacts --default-artifact-root /srv/mlartifacts`: a trial on another node writes
    # its models to that path on its own disk, and `sweeps table` elsewhere finds no spec.yaml
    client = _ServerClient(location)
    for _ in ("created", "found again"):
        caplog.clear()
        with caplog.at_level("WARNING", logger="sweeps.tracking"):
            assert tracking.ensure_experiment(client, "demo", "http://head:5000") == "7"
        assert (f"MLflow server http://head:5000 has this sweep's artifacts (models, figures, its spec.yaml) written "
                f"to {location} by each process that logs them, on its own machine's disk") in caplog.text
        assert "--artifacts-destination" in caplog.text


@pytest.mark.parametrize("location", ["/srv/proj/mlartifacts/demo", "file:///srv/proj/mlartifacts/demo"])
def test_a_server_serving_a_store_a_sweep_began_on_sqlite_is_warned_of_for_its_true_cause(location, caplog):
    # `sweeps run` on ./mlflow.db, then `mlflow server --backend-store-uri sqlite:///mlflow.db` (served artifacts) and
    # a run through it: the experiment keeps the location it was created with, beside the database; the warning
    # said the server was started with --no-serve-artifacts and that restarting it with --artifacts-destination
    # would help, and neither was true
    with caplog.at_level("WARNING", logger="sweeps.tracking"):
        tracking.ensure_experiment(_ServerClient(location), "demo", "http://127.0.0.1:5000")
    assert (f"MLflow server http://127.0.0.1:5000 has this sweep's artifacts (models, figures, its spec.yaml) written "
            f"to {location} by each process that logs them, on its own machine's disk (its experiment was created by "
            "a `sweeps run` straight into the sqlite database this server serves, and keeps that artifact location "
            "whatever the server's options): every machine that runs trials or reads the sweep must mount that "
            "folder at that path") in caplog.text
    assert "--no-serve-artifacts" not in caplog.text and "restart the server" not in caplog.text


@pytest.mark.parametrize("location", ["mlflow-artifacts:/7", "s3://bucket/mlartifacts/7"])
def test_ensure_experiment_of_a_server_that_serves_its_artifacts_warns_of_nothing(location, caplog):
    with caplog.at_level("WARNING", logger="sweeps.tracking"):
        tracking.ensure_experiment(_ServerClient(location), "demo", "http://head:5000")
    assert not [r for r in caplog.records if r.name == "sweeps.tracking" and r.levelname == "WARNING"]


def test_ensure_experiment_of_a_sqlite_store_warns_of_nothing(tracking_uri, caplog):
    # its artifacts beside the database are a path on a disk too, and a sqlite store is one machine's anyway
    client = tracking.client_for(tracking_uri)
    with caplog.at_level("WARNING", logger="sweeps.tracking"):
        tracking.ensure_experiment(client, "demo", tracking_uri)
        tracking.ensure_experiment(client, "demo", tracking_uri)
    assert not [r for r in caplog.records if r.name == "sweeps.tracking" and r.levelname == "WARNING"]


def test_cell_run_open_twice_continues_the_same_run(tracking_uri):
    client = tracking.client_for(tracking_uri)
    experiment_id = tracking.ensure_experiment(client, "demo", tracking_uri)
    parent = tracking.start_parent(client, experiment_id, "demo", {})
    cell = tracking.CellIdentity("demo", "MAD", "synthetic", 0, "abc123", "demo/MAD/seed0")
    first = tracking.CellRun.open(tracking_uri, experiment_id, parent, cell, "t1", {"seed": 0}, {})
    first.log_epoch({"epoch": 1, "test_acc": 0.5}, {"sel_test_acc": 0.5})
    again = tracking.CellRun.open(tracking_uri, experiment_id, parent, cell, "t1", {"seed": 0}, {})
    assert again.run_id == first.run_id
    assert len(tracking.child_runs(client, experiment_id, parent)) == 1
    run = client.get_run(first.run_id)
    assert run.data.tags[schema.TAG_ARM] == "MAD" and run.data.params["seed"] == "0"
    assert run.info.run_name == "demo/MAD/seed0"


@pytest.mark.parametrize("status", [schema.STATUS_INTERRUPTED, schema.STATUS_FAILED])
def test_a_parent_ended_unfinished_ends_the_child_runs_its_trials_left_running(tracking_uri, status):
    # Ctrl-C or SIGTERM: the parent ended KILLED, but the cells it stopped mid-training stayed RUNNING in MLflow,
    # and the MLflow UI showed them running for ever under a parent that had ended
    from sweeps.tables import _child_status

    client = tracking.client_for(tracking_uri)
    experiment_id = tracking.ensure_experiment(client, "demo", tracking_uri)
    parent = tracking.start_parent(client, experiment_id, "demo", {})
    stopped, done = (tracking.CellRun.open(tracking_uri, experiment_id, parent,
                                           tracking.CellIdentity("demo", arm, "synthetic", 0, arm, f"demo/{arm}/seed0"),
                                           "t1", {}, {}) for arm in ("A", "B"))
    done.complete({}, {}, None, {})
    other = tracking.start_parent(client, experiment_id, "demo", {})   # another invocation's, running now
    elsewhere = tracking.CellRun.open(tracking_uri, experiment_id, other,
                                      tracking.CellIdentity("demo", "A", "synthetic", 0, "A", "demo/A/seed0"),
                                      "t2", {}, {})
    tracking.finish_parent(client, parent, status)
    run = client.get_run(stopped.run_id)
    assert run.info.status == "KILLED" and run.info.end_time is not None
    assert run.data.tags[schema.TAG_STATUS] == schema.STATUS_RUNNING   # its cell is continued by a resume
    assert _child_status(run, status) == schema.STATUS_INTERRUPTED
    assert client.get_run(done.run_id).info.status == "FINISHED"
    assert client.get_run(elsewhere.run_id).info.status == "RUNNING"
    again = tracking.CellRun.open(tracking_uri, experiment_id, parent,
                                  tracking.CellIdentity("demo", "A", "synthetic", 0, "A", "demo/A/seed0"), "t1", {}, {})
    assert again.run_id == stopped.run_id and client.get_run(again.run_id).info.status == "RUNNING"


def test_a_parent_ended_unfinished_ends_a_child_tagged_completed_finished_not_killed(tracking_uri):
    # its trial ended between CellRun.complete's tag and its end (or was ending it as the driver searched): KILLED,
    # a table's resume, which does not train a completed cell again, left it so in MLflow for good
    client = tracking.client_for(tracking_uri)
    experiment_id = tracking.ensure_experiment(client, "demo", tracking_uri)
    parent = tracking.start_parent(client, experiment_id, "demo", {})
    cell = tracking.CellRun.open(tracking_uri, experiment_id, parent,
                                 tracking.CellIdentity("demo", "A", "synthetic", 0, "A", "demo/A/seed0"), "t1", {}, {})
    client.set_tag(cell.run_id, schema.TAG_STATUS, schema.STATUS_COMPLETED)   # CellRun.complete's tag, not its end
    tracking.finish_parent(client, parent, schema.STATUS_INTERRUPTED)
    run = client.get_run(cell.run_id)
    assert run.info.status == "FINISHED" and run.data.tags[schema.TAG_STATUS] == schema.STATUS_COMPLETED


def test_a_completed_parent_leaves_its_children_as_they_are(tracking_uri, monkeypatch):
    client = tracking.client_for(tracking_uri)
    experiment_id = tracking.ensure_experiment(client, "demo", tracking_uri)
    parent = tracking.start_parent(client, experiment_id, "demo", {})
    monkeypatch.setattr(tracking, "end_children_left_running", lambda *a: pytest.fail("not searched"))
    tracking.finish_parent(client, parent, schema.STATUS_COMPLETED)
    assert client.get_run(parent).info.status == "FINISHED"


def test_a_cells_run_records_its_arm_as_a_param_once_for_the_uis_charts_of_params(tracking_uri):
    # the arm was a tag alone, and the MLflow UI's parallel coordinates chart offers params and metrics: no axis of arms.
    # A param cannot change: a continuation, whose spec may have renamed the arm (a label is no part of a cell's
    # identity), logs it no second time
    client = tracking.client_for(tracking_uri)
    experiment_id = tracking.ensure_experiment(client, "demo", tracking_uri)
    parent = tracking.start_parent(client, experiment_id, "demo", {})
    cell = tracking.CellIdentity("demo", "MAD", "synthetic", 0, "abc123", "demo/MAD/seed0")
    first = tracking.CellRun.open(tracking_uri, experiment_id, parent, cell, "t1", {"seed": 0}, {})
    assert client.get_run(first.run_id).data.params == {"seed": "0", schema.PARAM_ARM: "MAD"}
    renamed = tracking.CellIdentity("demo", "MAD (p1 = 0.6)", "synthetic", 0, "abc123", "demo/MAD/seed0")
    again = tracking.CellRun.open(tracking_uri, experiment_id, parent, renamed, "t2", {"seed": 0}, {})
    assert again.run_id == first.run_id and client.get_run(first.run_id).data.params[schema.PARAM_ARM] == "MAD"


def test_cell_runs_made_before_the_arm_param_get_it_from_their_arm_tag_and_no_other_is_changed(tracking_uri):
    # runs an earlier version made have the sweeps.arm tag and no `arm` param: the MLflow UI's charts of params
    # (parallel coordinates, scatter) left them out. A param cannot change: one already logged stays as it is
    client = tracking.client_for(tracking_uri)
    experiment_id = tracking.ensure_experiment(client, "demo", tracking_uri)
    parent = tracking.start_parent(client, experiment_id, "demo", {})

    def older(arm: str | None, params: dict) -> str:
        tags = {schema.TAG_PARENT: parent, schema.TAG_ROLE: schema.ROLE_CELL, schema.TAG_SEED: "0",
                **({schema.TAG_ARM: arm} if arm is not None else {})}
        run_id = client.create_run(experiment_id, tags=tags).info.run_id
        for key, value in params.items():
            client.log_param(run_id, key, value)
        return run_id

    old, renamed, untagged = older("MAD", {"seed": "0"}), older("MAD (p1 = 0.6)", {"arm": "MAD"}), older(None, {})
    children = tracking.child_runs(client, experiment_id, parent)
    assert tracking.backfill_arm_params(client, children) == 1
    assert client.get_run(old).data.params == {"seed": "0", schema.PARAM_ARM: "MAD"}
    assert client.get_run(renamed).data.params == {schema.PARAM_ARM: "MAD"}, "as it was logged"
    assert client.get_run(untagged).data.params == {}
    # the same runs again (a param logged meanwhile by another process, read before): nothing fails, nothing changes
    assert tracking.backfill_arm_params(client, children) == 1
    assert tracking.backfill_arm_params(client, tracking.child_runs(client, experiment_id, parent)) == 0


def test_the_arm_param_backfill_stops_at_a_store_that_fails_and_asks_it_once_without_retries():
    # one log_batch per run, each with MLflow's retries (~4 min against a server whose database fails while its
    # /health answers): hundreds of older cell runs held the sweep's start for hours before anything trained
    from mlflow.exceptions import MlflowException
    from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE

    calls, retries = [], []

    class Failing:
        def log_batch(self, run_id, params):
            calls.append(run_id)
            retries.append(os.environ.get(tracking.RETRIES_ENV))
            if run_id == "r0":   # this run's own refusal (a param set meanwhile to another value): the rest go on
                raise MlflowException("Changing param values is not allowed", error_code=INVALID_PARAMETER_VALUE)
            raise MlflowException("API request to http://mlflow:5000 failed: 500")

    children = [SimpleNamespace(info=SimpleNamespace(run_id=f"r{i}"),
                                data=SimpleNamespace(tags={schema.TAG_ARM: "MAD"}, params={})) for i in range(300)]
    assert tracking.backfill_arm_params(Failing(), children) == 0
    assert calls == ["r0", "r1"], "asked again after the store failed"
    assert retries == ["0", "0"], "with MLflow's retries"


def test_a_reopened_run_ends_at_its_new_end_not_at_the_end_it_had_before(tracking_uri):
    # MLflow 3.17 keeps a reopened run's old end_time while it runs again (update_run passes it back; no public API
    # clears it: the stores take None as "keep"), so the UI shows the earlier session's duration meanwhile. When the run
    # ends again its end is now: set_terminated without an end_time, as every end of ours but a gone driver's is
    client = tracking.client_for(tracking_uri)
    experiment_id = tracking.ensure_experiment(client, "demo", tracking_uri)
    parent = tracking.start_parent(client, experiment_id, "demo", {})
    cell = tracking.CellIdentity("demo", "MAD", "synthetic", 0, "abc123", "demo/MAD/seed0")
    first = tracking.CellRun.open(tracking_uri, experiment_id, parent, cell, "t1", {}, {})
    for run_id in (first.run_id, parent):   # the earlier session: cut short, ended at once
        tracking.end_child_run(client, run_id, "KILLED", end_time=client.get_run(run_id).info.start_time + 1)
    old_end = {run_id: client.get_run(run_id).info.end_time for run_id in (first.run_id, parent)}
    reopened = int(time.time() * 1000)
    again = tracking.CellRun.open(tracking_uri, experiment_id, parent, cell, "t2", {}, {})   # a resume reopens both
    client.update_run(parent, status="RUNNING")
    assert again.run_id == first.run_id
    assert all(client.get_run(run_id).info.end_time == end for run_id, end in old_end.items()), \
        "MLflow keeps it meanwhile (where this fails, MLflow clears it now: the UI shows a running run's time right)"
    tracking.mark_cell(client, again.run_id, schema.STATUS_FAILED, error="boom")
    tracking.finish_parent(client, parent, schema.STATUS_FAILED)
    for run_id, end in old_end.items():
        info = client.get_run(run_id).info
        assert info.status == "FAILED" and info.end_time >= reopened > end, (run_id, info.end_time, reopened, end)


def test_a_cells_run_has_its_parents_user(tracking_uri):
    # the MLflow UI's User column read `unknown` for every cell run, and `attributes.user_id = 'alice'` found only
    # the parents: a cell's run is made by its trial (another account on a cluster's node), not by who ran the sweep
    client = tracking.client_for(tracking_uri)
    experiment_id = tracking.ensure_experiment(client, "demo", tracking_uri)
    parent = tracking.start_parent(client, experiment_id, "demo", {"mlflow.user": "alice"})
    opened = tracking.CellRun.open(tracking_uri, experiment_id, parent,
                                   tracking.CellIdentity("demo", "A", "synthetic", 0, "a", "demo/A/seed0"), "t1", {}, {})
    failed = tracking.record_unopened_failure(client, experiment_id, parent,
                                              tracking.CellIdentity("demo", "B", "synthetic", 0, "b", "demo/B/seed0"),
                                              "t2", {}, "E: x")
    for run_id in (opened.run_id, failed):
        run = client.get_run(run_id)
        assert run.info.user_id == "alice" and run.data.tags["mlflow.user"] == "alice"
    found = client.search_runs([experiment_id], "attributes.user_id = 'alice'")
    assert {r.info.run_id for r in found} == {parent, opened.run_id, failed}


def test_a_cells_run_is_made_where_its_parent_cannot_be_read(tracking_uri):
    # the parent's user is a courtesy to the UI: a parent deleted for good meanwhile (`mlflow gc`) must not stop the
    # cell's run from being made
    client = tracking.client_for(tracking_uri)
    experiment_id = tracking.ensure_experiment(client, "demo", tracking_uri)
    opened = tracking.CellRun.open(tracking_uri, experiment_id, "0" * 32,
                                   tracking.CellIdentity("demo", "A", "synthetic", 0, "a", "demo/A/seed0"), "t1", {}, {})
    assert client.get_run(opened.run_id).data.tags[schema.TAG_PARENT] == "0" * 32


def test_mark_cell_pruned_records_status_and_step(tracking_uri):
    client = tracking.client_for(tracking_uri)
    experiment_id = tracking.ensure_experiment(client, "demo", tracking_uri)
    parent = tracking.start_parent(client, experiment_id, "demo", {})
    cell = tracking.CellIdentity("demo", "t", "synthetic", 0, "c1", "demo/t")
    run = tracking.CellRun.open(tracking_uri, experiment_id, parent, cell, "t1", {}, {})
    tracking.mark_cell(client, run.run_id, schema.STATUS_PRUNED, pruned_step=2)
    tags = client.get_run(run.run_id).data.tags
    assert tags[schema.TAG_STATUS] == "pruned" and tags[schema.TAG_PRUNED_STEP] == "2"
    assert tracking.cell_statuses(client, experiment_id, parent) == {"c1": "pruned"}


def test_the_drivers_marks_of_cell_runs_on_a_server_print_no_mlflow_links(monkeypatch, capsys):
    # a tracking server's client prints "🏃 View run ... at: URL" and "🧪 View experiment at: URL" at each run it
    # ends: a search printed both for every pruned trial among its progress lines (and asked the server once more)
    from mlflow.store.tracking.rest_store import RestStore
    from mlflow.tracking import MlflowClient

    client = MlflowClient("http://127.0.0.1:9")
    store = client._tracking_client.store
    assert isinstance(store, RestStore)
    info = SimpleNamespace(run_id="r1", experiment_id="3", run_name="demo/trial-1")
    monkeypatch.setattr(store, "get_run", lambda run_id: SimpleNamespace(info=info, data=SimpleNamespace(tags={})))
    monkeypatch.setattr(store, "update_run_info", lambda *a, **k: None)
    monkeypatch.setattr(store, "log_batch", lambda *a, **k: None)
    monkeypatch.delenv("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", raising=False)
    tracking.mark_cell(client, "r1", schema.STATUS_PRUNED, pruned_step=0)
    tracking.mark_cell(client, "r1", schema.STATUS_FAILED, error="E: x")
    assert "View run" not in capsys.readouterr().out
    client.set_terminated("r1")   # the parent's end, as finish_parent makes it: its link is printed
    assert "🏃 View run demo/trial-1 at: http://127.0.0.1:9/#/experiments/3/runs/r1" in capsys.readouterr().out


def test_two_threads_ending_cell_runs_at_once_leave_the_users_link_setting_as_it_was(monkeypatch):
    # the cluster-lost watcher beside the main thread: the second to end put back the setting the first had made
    # after the first had put it back, and the links stayed off for the rest of the process (the parent's link at
    # the end was never printed)
    import os
    import threading

    first_inside, second_inside, first_done = threading.Event(), threading.Event(), threading.Event()

    ended = []

    class Client:
        def set_terminated(self, run_id, status, end_time=None):
            ended.append(run_id)
            if run_id == "first":
                first_inside.set()
                second_inside.wait(timeout=0.5)   # the second begins ending its run meanwhile, where it may
            else:
                second_inside.set()
                first_done.wait(timeout=5)        # and ends after the first

    def first():
        tracking.end_child_run(Client(), "first", "KILLED")
        first_done.set()

    monkeypatch.delenv(tracking.URL_PRINTING_ENV, raising=False)
    threads = [threading.Thread(target=first),
               threading.Thread(target=lambda: (first_inside.wait(timeout=5),
                                                tracking.end_child_run(Client(), "second", "KILLED")))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(ended) == ["first", "second"], "both runs ended (a fake that refused end_time ended neither)"
    assert tracking.URL_PRINTING_ENV not in os.environ


def test_invocation_key_ignores_seeds_but_not_overrides():
    a = tracking.invocation_key("h", "quick", {"synthetic": None}, {})
    b = tracking.invocation_key("h", "quick", {"synthetic": None}, {"optim.epochs": 2})
    assert a != b and a == tracking.invocation_key("h", "quick", {"synthetic": None}, {})


def _described_parent(new_store, tmp_path, overrides=None, data=()):
    """An invocation of mad_vs_dropout as prepared, and a parent run created for it as `sweeps run` creates one."""
    from sweeps.runner import RunOptions, parent_first_tags, prepare

    uri = new_store(tmp_path / "mlflow.db")
    prepared = prepare("mad_vs_dropout", RunOptions(tracking_uri=uri, storage=str(tmp_path / "rr"), data=data,
                                                    overrides=overrides or {}))
    client = tracking.client_for(uri)
    experiment_id = tracking.ensure_experiment(client, "mad_vs_dropout", uri)
    first = parent_first_tags(prepared)
    return prepared, client, tracking.start_parent(client, experiment_id, "mad_vs_dropout", first), first


def test_versions_continued_appends_each_package_version_that_differs_from_the_last_its_invocation_ran_under():
    # sweeps.versions kept the first run's alone: a table continued under another torch read as trained under one
    import json

    began = json.dumps({"python": "3.12.1", "torch": "2.14.1", "transfer-sweeps": "0.1.0"})
    assert tracking.versions_continued(began, {"python": "3.12.1", "torch": "2.14.1", "transfer-sweeps": "0.1.0"}) \
        is None, "nothing changed: the tag is left as it is"
    later = tracking.versions_continued(began, {"python": "3.12.1", "torch": "2.15.0", "transfer-sweeps": "0.1.0",
                                                "ray": "2.60.0"})
    assert json.loads(later) == {"python": "3.12.1", "torch": "2.14.1 then 2.15.0", "transfer-sweeps": "0.1.0",
                                 "ray": "unrecorded then 2.60.0"}
    assert tracking.versions_continued(later, {"torch": "2.15.0", "ray": "2.60.0"}) is None, "as the last recorded"
    again = tracking.versions_continued(later, {"torch": "2.14.1"})
    assert json.loads(again)["torch"] == "2.14.1 then 2.15.0 then 2.14.1"
    assert tracking.versions_changed({schema.TAG_VERSIONS: again}) == {"ray": "unrecorded then 2.60.0",
                                                                      "torch": "2.14.1 then 2.15.0 then 2.14.1"}
    assert tracking.versions_changed({schema.TAG_VERSIONS: began}) == {} == tracking.versions_changed({})
    for torch in ("2.15.0", "2.14.1", "2.15.0", "2.14.1", "2.15.0") * 40:   # two machines, taken in turn for good
        again = tracking.versions_continued(again, {"torch": torch}) or again
    assert json.loads(again)["torch"] == "2.14.1 then … then 2.15.0 then 2.14.1 then 2.15.0", \
        "the first and the latest: MLflow refuses a tag over 8000 characters, and the continuation with it"
    for unreadable in (None, "", "not json", "[1, 2]", '{"torch": 2}'):   # left as it is; read as no change
        assert tracking.versions_continued(unreadable, {"torch": "2.15.0"}) is None
        assert tracking.versions_changed({schema.TAG_VERSIONS: unreadable} if unreadable else {}) == {}


def test_commit_continued_appends_a_continuations_commit_as_versions_continued_does_a_package_version():
    # sweeps.git_commit kept the first run's commit while sweeps.versions already said "a then b"
    first, second = "0123abc" * 5 + "01234", "fe11ed0" * 5 + "fe11e-dirty"
    assert tracking.commit_continued(first, first) is None, "nothing changed: the tag is left as it is"
    later = tracking.commit_continued(first, second)
    assert later == f"{first} then {second}"
    assert tracking.commit_continued(later, second) is None, "as the last recorded"
    assert tracking.commit_continued(later, first) == f"{first} then {second} then {first}"
    assert tracking.commit_continued(None, first) == f"unrecorded then {first}"
    for commit in ("b", "c", "d", "e", "f", "g", "h") * 30:
        later = tracking.commit_continued(later, commit) or later
    assert later == f"{first} then … then f then g then h", "capped as sweeps.versions is"
    assert tracking.versions_changed({schema.TAG_GIT_COMMIT: "a then b",
                                      schema.TAG_VERSIONS: '{"torch": "2.14.1 then 2.15.0", "ray": "2.60.0"}'}) == \
        {"git commit": "a then b", "torch": "2.14.1 then 2.15.0"}
    assert list(tracking.versions_changed({schema.TAG_GIT_COMMIT: "a then b",
                                           schema.TAG_VERSIONS: '{"aaa": "1 then 2"}'})) == ["git commit", "aaa"]
    assert tracking.versions_changed({schema.TAG_GIT_COMMIT: "a"}) == {}


def test_a_parent_run_records_what_tells_its_invocation_apart_as_params_and_mlflows_own_tags(tmp_path, new_store):
    # in the MLflow UI's runs table the parents had no params, and two invocations looked alike but for their names
    import getpass

    from mlflow.utils import mlflow_tags

    from sweeps.runner import record_parent_facts

    from test_spec_data import image_folder

    folder = image_folder(tmp_path / "faces")
    prepared, client, parent, first = _described_parent(
        new_store, tmp_path, {"optim.epochs": 3, "num_threads": 1, "model.depth": 2}, data=(f"imagefolder={folder}",))
    record_parent_facts(client, parent, prepared, "0123abcd-dirty", logged_tags=first)
    run = client.get_run(parent)
    assert run.data.params == {"sweep": "mad_vs_dropout", "kind": "table", "profile": "quick", "data": "imagefolder",
                               "data_roots": f"imagefolder={folder}", "set": "model.depth=2 optim.epochs=3"}, \
        "num_threads is placement: a continuation may change it, and a param cannot change"
    assert set(run.data.params) <= set(schema.PARENT_PARAMS)
    tags = run.data.tags
    assert tags[mlflow_tags.MLFLOW_GIT_COMMIT] == "0123abcd"
    assert tags[mlflow_tags.MLFLOW_SOURCE_NAME] == "sweeps mad_vs_dropout"
    assert tags[mlflow_tags.MLFLOW_RUN_NOTE].startswith(prepared.spec.title)
    assert tags[schema.TAG_PACKAGE_VERSION] == tracking.package_versions()["transfer-sweeps"]
    assert run.info.user_id == tags[mlflow_tags.MLFLOW_USER] == getpass.getuser()
    plain, client, parent, first = _described_parent(new_store, tmp_path / "plain")
    record_parent_facts(client, parent, plain, "unknown", logged_tags=first)
    run = client.get_run(parent)
    assert run.data.params["set"] == "none" and "data_roots" not in run.data.params
    assert mlflow_tags.MLFLOW_GIT_COMMIT not in run.data.tags, "outside a git checkout: no commit to name"


def test_a_continuation_adds_the_params_a_parent_lacks_changes_none_and_keeps_a_note_edited_in_the_ui(tmp_path,
                                                                                                      new_store):
    # a resumed invocation logs into the same parent, and MLflow refuses to change a logged param's value
    from mlflow.entities import Param
    from mlflow.utils import mlflow_tags

    from sweeps.runner import record_parent_facts

    prepared, client, parent, first = _described_parent(new_store, tmp_path)
    client.log_batch(parent, params=[Param("profile", "quick"), Param("set", "as an earlier version wrote it")])
    client.set_tag(parent, mlflow_tags.MLFLOW_RUN_NOTE, "my own words, typed in the UI")
    client.set_tag(parent, mlflow_tags.MLFLOW_GIT_COMMIT, "0ld")
    run = client.get_run(parent)
    record_parent_facts(client, parent, prepared, "fe11ed", run.data.params, run.data.tags)
    run = client.get_run(parent)
    assert run.data.params["set"] == "as an earlier version wrote it" and run.data.params["sweep"] == "mad_vs_dropout"
    assert run.data.tags[mlflow_tags.MLFLOW_RUN_NOTE] == "my own words, typed in the UI"
    assert run.data.tags[mlflow_tags.MLFLOW_GIT_COMMIT] == "fe11ed", "the code that ran it last"
    record_parent_facts(client, parent, prepared, "fe11ed")   # told nothing was logged: refused, and warned of
    assert client.get_run(parent).data.params == run.data.params


def test_a_parents_cell_counts_are_metrics_its_latest_run_updates(tmp_path, new_store):
    from sweeps.runner import log_cell_counts

    _, client, parent, _ = _described_parent(new_store, tmp_path)
    log_cell_counts(client, parent, 4, {schema.STATUS_COMPLETED: 1, schema.STATUS_RUNNING: 3})
    log_cell_counts(client, parent, 6, {schema.STATUS_COMPLETED: 3, schema.STATUS_FAILED: 1})
    assert client.get_run(parent).data.metrics == {"cells": 6, "cells_completed": 3, "cells_pruned": 0,
                                                   "cells_failed": 1}
    assert set(client.get_run(parent).data.metrics) == set(schema.PARENT_METRICS)


def test_the_drivers_tracking_wait_reaches_the_workers_of_a_cluster(monkeypatch):
    """Workers of a cluster do not inherit the driver's environment: connect_ray passes the setting
    in the job's runtime env (and passes nothing when it is unset)."""
    import ray

    from sweeps import runner

    calls = []
    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", lambda **kw: calls.append(kw))
    monkeypatch.setenv(tracking.WAIT_ENV, "42")
    runner.connect_ray("ray://head:10001")
    assert calls[-1]["address"] == "ray://head:10001"
    assert calls[-1]["runtime_env"] == {"env_vars": {tracking.WAIT_ENV: "42"}}
    monkeypatch.delenv(tracking.WAIT_ENV)
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    runner.connect_ray(None)
    assert calls[-1]["address"] == "local" and calls[-1]["runtime_env"] is None


# --------------------------------------------------------------------------- who runs an invocation now

def _driver(**change) -> dict:
    import json

    return {schema.TAG_STATUS: schema.STATUS_RUNNING,
            schema.TAG_DRIVER: json.dumps({**json.loads(tracking.driver_identity()), **change})}


@pytest.fixture
def exited_pid():
    import subprocess
    import sys

    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_a_driver_is_alive_gone_or_unknown(exited_pid):
    assert tracking.driver_state(_driver()) == "alive"
    assert tracking.driver_state(_driver(pid=exited_pid)) == "gone"
    assert tracking.driver_state(_driver(start="1")) == "gone", "a reused pid is not the driver"
    assert tracking.driver_state(_driver(host="another-host")) == "unknown", "no heartbeat recorded"
    assert tracking.driver_state({schema.TAG_STATUS: schema.STATUS_RUNNING}) == "unknown", "recorded before"
    assert tracking.driver_state({schema.TAG_DRIVER: "not json"}) == "unknown"


def test_an_invocation_whose_driver_left_without_a_word_reads_as_interrupted(exited_pid):
    # a SIGKILL or an out-of-memory kill marks nothing: readers must not say "still running" for good
    assert tracking.parent_status(_driver(pid=exited_pid)) == schema.STATUS_INTERRUPTED
    assert tracking.parent_status(_driver()) == schema.STATUS_RUNNING
    assert tracking.parent_status({**_driver(pid=exited_pid), schema.TAG_STATUS: "completed"}) == "completed"


def test_another_hosts_driver_is_alive_while_its_heartbeat_is_fresh_and_gone_once_it_is_stale():
    # no process table of the other host to look at: a cluster's head node drives, a laptop reads
    beat = {**_driver(host="head-node", pid=4242), schema.TAG_HEARTBEAT: "1000000"}
    fresh, stale = 1000000 + 90, 1000000 + tracking.HEARTBEAT_STALE_S + 1
    assert tracking.driver_state(beat, now=fresh) == "alive"
    assert tracking.driver_state(beat, now=stale) == "gone"
    assert tracking.driver_description(beat, now=fresh) == "process 4242 on head-node (last sign of life 90 s ago)"
    assert tracking.driver_description(_driver(pid=4242)) == "process 4242 on this host"
    assert tracking.driver_state({**beat, schema.TAG_HEARTBEAT: "not a time"}, now=fresh) == "unknown"
    stale_beat = {**beat, schema.TAG_HEARTBEAT: f"{time.time() - tracking.HEARTBEAT_STALE_S - 60:.0f}"}
    assert tracking.parent_status(stale_beat) == schema.STATUS_INTERRUPTED


@pytest.mark.parametrize("elsewhere", [{"pidns": "pid:[4026532999]"},
                                       {"boot": "a-boot-of-another-machine", "machine": "another-machine"}])
def test_a_driver_of_this_hosts_name_outside_this_process_table_goes_by_its_heartbeat(tracking_uri, exited_pid,
                                                                                      elsewhere):
    # Ray's cluster launcher runs a Docker node's containers with --net=host: a driver in one of them has this host's
    # name, but its pid is not in this process table (nor in another machine's of the same name): read as gone, its
    # live runs were ended KILLED by a `sweeps status` typed outside its container
    client = tracking.client_for(tracking_uri)
    experiment_id = tracking.ensure_experiment(client, "demo", tracking_uri)
    beat = {**_driver(pid=exited_pid, **elsewhere), **tracking.heartbeat_tags()}
    assert not tracking.driver_is_here(beat) and tracking.driver_state(beat) == "alive"
    assert tracking.driver_state(beat, now=time.time() + tracking.HEARTBEAT_STALE_S + 60) == "gone"
    assert tracking.driver_is_here(_driver(pid=exited_pid)), "this process table's, as recorded"
    parent = _invocation(client, experiment_id, beat)
    cell = _cell(client, experiment_id, parent, "A")
    assert tracking.end_runs_of_gone_drivers(client, experiment_id) == 0
    assert client.get_run(parent).info.status == client.get_run(cell).info.status == "RUNNING"


def test_a_driver_of_this_machine_before_it_restarted_is_gone_at_once(exited_pid, tmp_path, monkeypatch):
    # power lost, the machine back in three minutes: no process of it outlived the restart, whatever its heartbeat
    # (a machine id of its own, so the test runs where the system has none)
    (tmp_path / "machine-id").write_text("0123456789abcdef0123456789abcdef\n")
    monkeypatch.setattr(tracking, "MACHINE_ID", str(tmp_path / "machine-id"))
    before = {**_driver(boot="the-boot-before"), **tracking.heartbeat_tags()}
    assert tracking.driver_is_here(before) and tracking.driver_state(before) == "gone"


def _invocation(client, experiment_id: str, driver: dict, **tags) -> str:
    """A parent run (tags as `_driver`'s and `tags`)."""
    return tracking.start_parent(client, experiment_id, "demo", {**driver, **tags})


def _cell(client, experiment_id: str, parent: str, arm: str, status: str = schema.STATUS_RUNNING) -> str:
    """A child run of `parent` MLflow calls RUNNING, tagged `status`."""
    return client.create_run(experiment_id, tags={schema.TAG_PARENT: parent, schema.TAG_ROLE: schema.ROLE_CELL,
                                                  schema.TAG_CELL_ID: arm, schema.TAG_STATUS: status}).info.run_id


def test_the_runs_a_driver_killed_without_a_word_left_running_are_ended_as_a_ctrl_c_ends_them(tracking_uri,
                                                                                                exited_pid):
    # a SIGKILL, an out-of-memory kill or a laptop powered off marks nothing: the parent and the cells it was training
    # stayed RUNNING in MLflow for good, and the UI showed them running, though every reader called them interrupted
    from sweeps.tables import _child_status

    client = tracking.client_for(tracking_uri)
    experiment_id = tracking.ensure_experiment(client, "demo", tracking_uri)
    parent = _invocation(client, experiment_id, _driver(pid=exited_pid))
    training, finishing = _cell(client, experiment_id, parent, "A"), _cell(client, experiment_id, parent, "B")
    client.set_tag(finishing, schema.TAG_STATUS, schema.STATUS_COMPLETED)   # killed between its tag and its end
    done = _cell(client, experiment_id, parent, "C", schema.STATUS_COMPLETED)
    client.set_terminated(done, "FINISHED", end_time=1234)
    assert tracking.end_runs_of_gone_drivers(client, experiment_id) == 3
    ended = client.get_run(parent)
    assert ended.info.status == "KILLED" and ended.info.end_time is not None
    assert ended.data.tags[schema.TAG_STATUS] == schema.STATUS_RUNNING, "tags stay as readers and resume read them"
    assert tracking.parent_status(ended.data.tags) == schema.STATUS_INTERRUPTED
    run = client.get_run(training)
    assert run.info.status == "KILLED" and run.data.tags[schema.TAG_STATUS] == schema.STATUS_RUNNING
    assert _child_status(run, tracking.parent_status(ended.data.tags)) == schema.STATUS_INTERRUPTED
    assert client.get_run(finishing).info.status == "FINISHED", "a completed cell is not killed: its resume skips it"
    assert client.get_run(done).info.end_time == 1234
    assert tracking.end_runs_of_gone_drivers(client, experiment_id) == 0, "once"
    again = tracking.CellRun.open(tracking_uri, experiment_id, parent,
                                  tracking.CellIdentity("demo", "A", "synthetic", 0, "A", "demo/A/seed0"), "t1", {}, {})
    assert again.run_id == training and client.get_run(training).info.status == "RUNNING", "a resume reopens it"


def test_the_runs_of_a_driver_killed_without_a_word_end_when_it_was_last_seen_alive(tracking_uri, exited_pid):
    # ended when someone next looked (`sweeps status` days later), the MLflow UI gave the run days of duration
    from mlflow.entities import Metric

    client = tracking.client_for(tracking_uri)
    experiment_id = tracking.ensure_experiment(client, "demo", tracking_uri)
    start = int(time.time() * 1000) - 600_000   # its driver killed ~7 min ago
    parent = client.create_run(experiment_id, start_time=start, tags={
        schema.TAG_ROLE: schema.ROLE_PARENT, **_driver(pid=exited_pid),
        schema.TAG_HEARTBEAT: f"{(start + 60_000) / 1000:.0f}"}).info.run_id
    cell = client.create_run(experiment_id, start_time=start + 30_000, tags={
        schema.TAG_PARENT: parent, schema.TAG_ROLE: schema.ROLE_CELL, schema.TAG_STATUS: "running"}).info.run_id
    client.log_batch(cell, metrics=[Metric(tracking.EPOCH_MARKER, 1, start + 90_000, 1),
                                    Metric(tracking.EPOCH_MARKER, 2, start + 150_000, 2)])   # after the last beat
    tracking.end_runs_of_gone_drivers(client, experiment_id)
    assert client.get_run(parent).info.end_time == start + 150_000
    assert client.get_run(cell).info.end_time == start + 150_000


def test_runs_whose_driver_may_be_alive_or_is_not_recorded_are_left_running(tracking_uri, exited_pid):
    # never a run a live driver trains: on this host its process is there; on another, its heartbeat is fresh
    client = tracking.client_for(tracking_uri)
    experiment_id = tracking.ensure_experiment(client, "demo", tracking_uri)
    alive = [_invocation(client, experiment_id, _driver()),
             _invocation(client, experiment_id, _driver(host="head-node", pid=exited_pid),
                         **{schema.TAG_HEARTBEAT: f"{time.time() - tracking.HEARTBEAT_STALE_S + 60:.0f}"}),
             _invocation(client, experiment_id, {schema.TAG_DRIVER: "not json"}),   # unknown: left as it is
             tracking.start_parent(client, experiment_id, "demo", {})]   # recorded before sweeps.driver: no pid
    client.delete_tag(alive[-1], schema.TAG_DRIVER)
    cells = [_cell(client, experiment_id, parent, "A") for parent in alive]
    silent = _invocation(client, experiment_id, _driver(host="head-node", pid=4242),
                         **{schema.TAG_HEARTBEAT: f"{time.time() - tracking.HEARTBEAT_STALE_S - 60:.0f}"})
    assert tracking.end_runs_of_gone_drivers(client, experiment_id) == 1
    assert all(client.get_run(run).info.status == "RUNNING" for run in alive + cells)
    assert client.get_run(silent).info.status == "KILLED", "another host's, silent past the staleness bound"


@pytest.mark.parametrize("taken_over_after", ["search_all", "_last_sign_of_life"])
def test_an_invocation_a_continuation_took_over_meanwhile_is_left_running(tracking_uri, exited_pid, monkeypatch,
                                                                          taken_over_after):
    # `sweeps status` found the killed driver's runs (search_all), or read when it was last seen alive (a search and
    # a query per cell it trained: seconds on a server), and meanwhile `sweeps resume` made the invocation its own:
    # its parent and reopened cells were ended KILLED
    client = tracking.client_for(tracking_uri)
    experiment_id = tracking.ensure_experiment(client, "demo", tracking_uri)
    parent = _invocation(client, experiment_id, _driver(pid=exited_pid))
    cell = _cell(client, experiment_id, parent, "A")
    read = getattr(tracking, taken_over_after)

    def then_taken_over(*args, **kwargs):
        found = read(*args, **kwargs)
        tracking.set_tags(client, parent, {schema.TAG_DRIVER: tracking.driver_identity()})
        return found

    monkeypatch.setattr(tracking, taken_over_after, then_taken_over)
    assert tracking.end_runs_of_gone_drivers(client, experiment_id) == 0
    assert client.get_run(parent).info.status == client.get_run(cell).info.status == "RUNNING"


def test_a_run_of_a_sweep_ends_the_runs_its_killed_drivers_left_running_before_anything_else(tmp_path, new_store,
                                                                                              exited_pid):
    # `sweeps run` and `sweeps resume` of any invocation of the sweep (here one refused: nothing to resume)
    from sweeps.runner import RunOptions, SweepError, prepare, run_sweep

    uri = new_store(tmp_path / "mlflow.db")
    prepared = prepare("mad_vs_dropout", RunOptions(tracking_uri=uri, storage=str(tmp_path / "rr")))
    client = tracking.client_for(uri)
    experiment_id = tracking.ensure_experiment(client, "mad_vs_dropout", uri)
    killed = _invocation(client, experiment_id, _driver(pid=exited_pid), **{tracking.TAG_INVOCATION: "another"})
    with pytest.raises(SweepError, match="nothing to resume"):
        run_sweep(prepared, resume_only=True)
    assert client.get_run(killed).info.status == "KILLED"


def test_a_driver_beats_while_it_runs_and_stops_when_it_leaves(tmp_path, new_store):
    from mlflow.tracking import MlflowClient

    uri = new_store(tmp_path / "mlflow.db")
    client = MlflowClient(uri)
    run = client.create_run(client.create_experiment("x", artifact_location=str(tmp_path / "a"))).info.run_id
    beats = []
    with tracking.heartbeat(uri, run, every_s=0.2):
        for _ in range(3):
            time.sleep(0.45)
            beats.append(client.get_run(run).data.tags.get(schema.TAG_HEARTBEAT))
    assert beats[0] is not None and abs(float(beats[0]) - time.time()) < 5, "the first beat at once"
    client.set_tag(run, schema.TAG_HEARTBEAT, "1")
    time.sleep(0.5)
    assert client.get_run(run).data.tags[schema.TAG_HEARTBEAT] == "1", "no beat once the block has left"


def test_a_driver_whose_tracking_server_is_away_skips_its_beats_without_mlflows_retry_warnings(caplog):
    # a lab's server stopped for a minute mid-sweep: the driver's console showed urllib3's "Retrying (Retry(total=6,
    # ...)) after connection broken ... /api/2.0/mlflow/runs/log-batch" again and again, the beat going through
    # MLflow's 7 retries with back-off (up to ~4 min), though the next beat is its retry
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]   # nothing listens on it
    caplog.set_level(logging.DEBUG)
    with tracking.heartbeat(f"http://127.0.0.1:{port}", "0" * 32, every_s=0.2):
        time.sleep(0.6)
    assert not [r for r in caplog.records if r.name.startswith("urllib3") and r.levelno >= logging.WARNING]
    assert any("heartbeat" in r.getMessage() and "not written" in r.getMessage() for r in caplog.records)


def test_a_heartbeat_is_unix_seconds_for_readers_and_a_utc_time_beside_it_for_a_person(tmp_path, new_store):
    # the MLflow UI showed `sweeps.heartbeat 1796682690`: whether the driver was seen a minute or a week ago took a
    # calculator
    from mlflow.tracking import MlflowClient

    assert tracking.heartbeat_tags(1796682690.4) == {schema.TAG_HEARTBEAT: "1796682690",
                                                     schema.TAG_HEARTBEAT_UTC: "2026-12-07T22:31:30Z"}
    uri = new_store(tmp_path / "mlflow.db")
    client = MlflowClient(uri)
    experiment = client.create_experiment("x", artifact_location=str(tmp_path / "a"))
    parent = tracking.start_parent(client, experiment, "x", {})
    with tracking.heartbeat(uri, parent, every_s=60):
        time.sleep(0.3)
    tags = client.get_run(parent).data.tags
    assert time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(float(tags[schema.TAG_HEARTBEAT]))) == \
        tags[schema.TAG_HEARTBEAT_UTC]


def test_an_invocation_another_live_process_runs_is_not_run_a_second_time(tmp_path, new_store):
    # two drivers on one invocation would train the same cells twice into the same runs
    import json
    import subprocess
    import sys

    from mlflow.tracking import MlflowClient

    from sweeps.runner import RunOptions, SweepError, prepare, run_sweep

    uri = new_store(tmp_path / "mlflow.db")
    prepared = prepare("mad_vs_dropout", RunOptions(tracking_uri=uri, storage=str(tmp_path / "rr")))
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        client = MlflowClient(uri)
        experiment = client.create_experiment("mad_vs_dropout", artifact_location=str(tmp_path / "artifacts"))
        driver = {"host": json.loads(tracking.driver_identity())["host"], "pid": other.pid,
                  "start": tracking._process_start(other.pid)}
        parent = client.create_run(experiment, tags={
            schema.TAG_ROLE: schema.ROLE_PARENT, schema.TAG_STATUS: schema.STATUS_RUNNING,
            tracking.TAG_INVOCATION: prepared.invocation_key, schema.TAG_DRIVER: json.dumps(driver)}).info.run_id
        with pytest.raises(SweepError, match=rf"invocation {parent} of 'mad_vs_dropout' is being run now by process "
                                             rf"{other.pid} on this host; wait for it to end or stop it"):
            run_sweep(prepared)
    finally:
        other.kill()
        other.wait()


def test_an_invocation_another_hosts_live_driver_runs_is_not_run_a_second_time(tmp_path, new_store):
    import json

    from mlflow.tracking import MlflowClient

    from sweeps.runner import RunOptions, SweepError, prepare, run_sweep

    uri = new_store(tmp_path / "mlflow.db")
    prepared = prepare("mad_vs_dropout", RunOptions(tracking_uri=uri, storage=str(tmp_path / "rr")))
    client = MlflowClient(uri)
    experiment = client.create_experiment("mad_vs_dropout", artifact_location=str(tmp_path / "artifacts"))
    parent = client.create_run(experiment, tags={
        schema.TAG_ROLE: schema.ROLE_PARENT, schema.TAG_STATUS: schema.STATUS_RUNNING,
        tracking.TAG_INVOCATION: prepared.invocation_key, schema.TAG_HEARTBEAT: f"{time.time() - 30:.0f}",
        schema.TAG_DRIVER: json.dumps({"host": "head-node", "pid": 4242, "start": "7"})}).info.run_id
    with pytest.raises(SweepError, match=rf"invocation {parent} of 'mad_vs_dropout' is being run now by process "
                                         rf"4242 on head-node \(last sign of life 3\d s ago\); wait for it.*--fresh\. "
                                         rf"If that driver is gone, it counts as stopped 10 min after its last sign"):
        run_sweep(prepared)


def _store_with_an_artifact(folder, empty_db):
    """A sqlite store in `folder` (this tool's layout: mlartifacts/ beside mlflow.db), its parent run holding
    spec.yaml."""
    import shutil

    folder.mkdir()
    shutil.copy(empty_db, folder / "mlflow.db")
    uri = tracking.resolve_tracking_uri(f"sqlite:///{folder / 'mlflow.db'}")
    client = tracking.client_for(uri)
    parent = tracking.start_parent(client, tracking.ensure_experiment(client, "demo", uri), "demo", {})
    tracking.log_text_artifact(client, parent, "spec.yaml", "name: demo\n")
    return parent


def test_a_store_moved_with_its_artifacts_reads_and_writes_them_at_its_new_place(tmp_path, empty_db):
    # MLflow records artifact locations as absolute file URIs: moved, `sweeps table` found no spec.yaml, and a
    # continued sweep wrote its models and report into the old folder, made anew there
    parent = _store_with_an_artifact(tmp_path / "old", empty_db)
    (tmp_path / "old").rename(tmp_path / "new")
    uri = tracking.resolve_tracking_uri(f"sqlite:///{tmp_path / 'new' / 'mlflow.db'}")
    client = tracking.client_for(uri)
    assert tracking.read_text_artifact(client, parent, "spec.yaml") == "name: demo\n"
    tracking.log_text_artifact(client, parent, "plan.json", "{}")
    assert (tmp_path / "new" / "mlartifacts" / "demo" / parent / "artifacts" / "plan.json").is_file()
    assert not (tmp_path / "old").exists(), "nothing written to the old place"
    experiment = client.get_experiment_by_name("demo")
    assert experiment.artifact_location == (tmp_path / "new" / "mlartifacts" / "demo").as_uri()
    assert tracking.artifacts_not_here(client.get_run(parent), uri) is None


def test_a_copied_store_writes_its_artifacts_into_the_copy_and_leaves_the_original_as_it_was(tmp_path, empty_db):
    import shutil

    parent = _store_with_an_artifact(tmp_path / "old", empty_db)
    shutil.copytree(tmp_path / "old", tmp_path / "copy")
    copy = tracking.resolve_tracking_uri(f"sqlite:///{tmp_path / 'copy' / 'mlflow.db'}")
    tracking.log_text_artifact(tracking.client_for(copy), parent, "plan.json", "{}")
    assert (tmp_path / "copy" / "mlartifacts" / "demo" / parent / "artifacts" / "plan.json").is_file()
    assert not (tmp_path / "old" / "mlartifacts" / "demo" / parent / "artifacts" / "plan.json").exists()
    original = tracking.client_for(tracking.resolve_tracking_uri(f"sqlite:///{tmp_path / 'old' / 'mlflow.db'}"))
    assert original.get_run(parent).info.artifact_uri.startswith((tmp_path / "old").as_uri())


def test_a_store_copied_without_its_artifacts_says_where_they_are_recorded_and_what_to_do(tmp_path, empty_db):
    # `sweeps table` said "has no spec.yaml artifact; it was not recorded by `sweeps run`"
    import shutil

    parent = _store_with_an_artifact(tmp_path / "old", empty_db)
    (tmp_path / "laptop").mkdir()
    shutil.copy(tmp_path / "old" / "mlflow.db", tmp_path / "laptop" / "mlflow.db")
    shutil.rmtree(tmp_path / "old")
    uri = tracking.resolve_tracking_uri(f"sqlite:///{tmp_path / 'laptop' / 'mlflow.db'}")
    run = tracking.client_for(uri).get_run(parent)
    assert tracking.artifacts_not_here(run, uri) == (
        f"the artifacts of run {parent} (its spec, plan, models and report) are recorded in "
        f"{tmp_path / 'old' / 'mlartifacts' / 'demo' / parent / 'artifacts'}, which is not on this machine (deleted, "
        f"moved, or on a disk not mounted here). If the store was moved or copied, copy its artifacts folder "
        f"{tmp_path / 'old' / 'mlartifacts'} to {tmp_path / 'laptop' / 'mlartifacts'}, beside the database, and run "
        f"the command again (their recorded locations are then re-pointed there)")


OPEN_WHEN_TOLD = """
import sys, time
from pathlib import Path
from sweeps import tracking
go = Path(sys.argv[2])
(go.parent / f"ready-{sys.argv[3]}").touch()
while not go.exists():
    time.sleep(0.005)
try:
    tracking.client_for(sys.argv[1]).search_experiments()
    print("opened")
except Exception as exc:
    print(f"failed: {type(exc).__name__}: {exc}"[:300])
"""


def test_processes_opening_a_new_sqlite_store_at_once_all_open_it_and_leave_it_readable(tmp_path):
    # two `sweeps run` (or a run and a `sweeps status`) on a fresh mlflow.db: MLflow creates and migrates its
    # tables unguarded, and opened at once they broke each other ('Online migration expected to match one row',
    # 'duplicate column name: step') and could leave a `_alembic_tmp_*` table that refused every later open
    import os
    import subprocess
    import sys

    uri, go = f"sqlite:///{tmp_path / 'mlflow.db'}", tmp_path / "go"
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"}
    procs = [subprocess.Popen([sys.executable, "-c", OPEN_WHEN_TOLD, uri, str(go), str(i)], env=env, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL) for i in range(3)]
    deadline = time.monotonic() + 120
    while len(list(tmp_path.glob("ready-*"))) < 3 and time.monotonic() < deadline:   # each has imported MLflow
        time.sleep(0.05)
    go.touch()
    outs = [p.communicate(timeout=120)[0].strip() for p in procs]
    assert outs == ["opened"] * 3
    assert tracking.client_for(uri).search_experiments() is not None


HOLD_THE_INVOCATION = """
import sys, time
from sweeps.runner import RunOptions, invocation_claimed, prepare
prepared = prepare("mad_vs_dropout", RunOptions(tracking_uri=sys.argv[1], storage=sys.argv[2]))
with invocation_claimed(prepared):
    print("holding", flush=True)
    time.sleep(120)
"""


def test_an_invocation_another_driver_here_has_begun_before_making_its_parent_run_is_not_run_a_second_time(tmp_path):
    # the same `sweeps run` in two terminals: the first makes its MLflow parent run only after decoding the data and
    # starting Ray, and a second started meanwhile found none and trained every cell again in a parent of its own
    import subprocess
    import sys

    from sweeps.runner import RunOptions, SweepError, prepare, run_sweep

    uri, storage = f"sqlite:///{tmp_path / 'mlflow.db'}", str(tmp_path / "rr")
    other = subprocess.Popen([sys.executable, "-c", HOLD_THE_INVOCATION, uri, storage], text=True,
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        assert other.stdout.readline().strip() == "holding"
        with pytest.raises(SweepError, match=rf"this invocation of 'mad_vs_dropout' \(its profile, data and "
                                             rf"overrides\) is being run now by process {other.pid} on this host, "
                                             rf"which started it; wait for it to end .* or start another invocation "
                                             rf"with --fresh"):
            run_sweep(prepare("mad_vs_dropout", RunOptions(tracking_uri=uri, storage=storage)))
        assert not (tmp_path / "mlflow.db").exists()   # refused before anything is recorded
    finally:
        other.kill()
        other.wait()


def test_an_invocation_holds_its_lock_in_this_users_lock_folder_and_removes_it_as_it_ends(tmp_path):
    # a file per invocation run had been left in /tmp for good (376 sweeps-invocation-*.lock after two CI runs)
    import os
    import signal
    import subprocess
    import sys

    from sweeps.host_locks import lock_folder
    from sweeps.runner import RunOptions, invocation_claimed, prepare

    uri, storage = f"sqlite:///{tmp_path / 'mlflow.db'}", str(tmp_path / "rr")
    before = set(lock_folder().iterdir())
    prepared = prepare("mad_vs_dropout", RunOptions(tracking_uri=uri, storage=storage))
    with invocation_claimed(prepared):
        [held] = set(lock_folder().iterdir()) - before
        # its pid, which a second run refused names, then what `sweeps status` tells a run starting by
        assert held.read_text().splitlines()[:3] == [str(os.getpid()), prepared.tracking_uri, "mad_vs_dropout"]
    assert set(lock_folder().iterdir()) == before
    other = subprocess.Popen([sys.executable, "-c", HOLD_THE_INVOCATION, uri, storage], text=True,
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    assert other.stdout.readline().strip() == "holding"
    other.send_signal(signal.SIGKILL)   # a driver killed outright leaves its file, in this user's folder
    other.wait()
    assert set(lock_folder().iterdir()) == before | {held}
    with invocation_claimed(prepared):   # not refused: the file is no one's now
        assert held.read_text().splitlines()[0] == str(os.getpid())
    assert set(lock_folder().iterdir()) == before


def test_a_fresh_run_removes_the_lock_files_fresh_runs_killed_outright_left(tmp_path):
    # a --fresh run's lock is named by its pid, so the file of one killed outright (SIGKILL, a SIGTERM before Ray
    # started) was never taken again, nor removed: one more file in the lock folder for each, for good
    import signal
    import subprocess
    import sys

    from sweeps.host_locks import lock_folder
    from sweeps.runner import RunOptions, invocation_claimed, prepare

    uri, storage = f"sqlite:///{tmp_path / 'mlflow.db'}", str(tmp_path / "rr")
    before = set(lock_folder().iterdir())
    fresh = HOLD_THE_INVOCATION.replace("storage=sys.argv[2]", "storage=sys.argv[2], fresh=True")
    killed, alive = (subprocess.Popen([sys.executable, "-c", fresh, uri, storage], text=True,
                                      stdout=subprocess.PIPE, stderr=subprocess.DEVNULL) for _ in range(2))
    try:
        for other in (killed, alive):
            assert other.stdout.readline().strip() == "holding"
        left = set(lock_folder().iterdir()) - before
        [alive_file] = [p for p in left if p.read_text().split()[0] == str(alive.pid)]
        assert len(left) == 2
        killed.send_signal(signal.SIGKILL)
        killed.wait()
        with invocation_claimed(prepare("mad_vs_dropout", RunOptions(tracking_uri=uri, storage=storage, fresh=True))):
            [held] = set(lock_folder().iterdir()) - before - left
            # the killed run's file is removed; the live one's is kept, still held
            assert set(lock_folder().iterdir()) - before - {held} == {alive_file}
        assert set(lock_folder().iterdir()) - before == {alive_file}
    finally:
        for other in (killed, alive):
            other.kill()
            other.wait()


def test_one_invocation_into_one_store_spelled_two_ways_is_refused_the_second_time(tmp_path, monkeypatch):
    # the lock was named by a hash of the tracking URI as given: the same database through a linked folder (or
    # with a `..`, a doubled slash) took a lock of its own, and both runs trained the same cells at once
    from sweeps.host_locks import store_key
    from sweeps.runner import RunOptions, SweepError, invocation_claimed, prepare

    monkeypatch.chdir(tmp_path)
    (tmp_path / "via").symlink_to(tmp_path)
    storage = str(tmp_path / "rr")
    first = prepare("mad_vs_dropout", RunOptions(tracking_uri="sqlite:///mlflow.db", storage=storage))
    with invocation_claimed(first):
        for spelled in (f"sqlite:///{tmp_path}/via/mlflow.db", f"sqlite:///{tmp_path}/rr/../mlflow.db",
                        f"sqlite:///{tmp_path}//mlflow.db"):
            with pytest.raises(SweepError, match="is being run now by process"):
                with invocation_claimed(prepare("mad_vs_dropout", RunOptions(tracking_uri=spelled, storage=storage))):
                    pass
    # a server's URI but for a trailing slash; another database, another server: other stores
    assert store_key("http://127.0.0.1:5000/") == store_key("http://127.0.0.1:5000")
    assert store_key(f"sqlite:///{tmp_path}/other.db") != store_key(f"sqlite:///{tmp_path}/mlflow.db")
    assert store_key("http://127.0.0.1:5001") != store_key("http://127.0.0.1:5000")


def test_an_invocation_whose_lock_cannot_be_taken_runs_without_it_as_before_and_says_so_in_a_debug_line(
        tmp_path, monkeypatch, caplog):
    import logging
    import os
    import tempfile

    from sweeps.runner import RunOptions, invocation_claimed, prepare

    prepared = prepare("mad_vs_dropout", RunOptions(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}",
                                                    storage=str(tmp_path / "rr")))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    (tmp_path / f"sweeps-locks-{os.getuid()}").mkdir(mode=0o777)
    (tmp_path / f"sweeps-locks-{os.getuid()}").chmod(0o777)   # another user could have made it, and its files
    with caplog.at_level(logging.DEBUG, logger="sweeps.runner"):
        with invocation_claimed(prepared):
            pass
    assert f"lock on invocation {prepared.invocation_key} of mad_vs_dropout not taken" in caplog.text
    assert "is not a folder of this user's alone" in caplog.text


def test_opening_a_sqlite_store_leaves_no_lock_file_in_the_temporary_folder(tmp_path, monkeypatch):
    # taken while MLflow opens (creates, migrates) the store, and its file removed once it is let go
    import fcntl
    import os
    import tempfile

    (tmp_path / "tmp").mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    held = []
    opening = tracking.MlflowClient

    def opened_under_the_lock(**kwargs):
        lock, = (tmp_path / "tmp").glob("sweeps-mlflow-open-*.lock")
        fd = os.open(lock, os.O_RDONLY)   # another process opening the store now: it waits
        try:
            with pytest.raises(BlockingIOError):
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        finally:
            os.close(fd)
        held.append(lock.name)
        return opening(**kwargs)

    monkeypatch.setattr(tracking, "MlflowClient", opened_under_the_lock)
    tracking.client_for(f"sqlite:///{tmp_path / 'mlflow.db'}").search_experiments()
    assert len(held) == 1, "the store was opened under the lock"
    assert list((tmp_path / "tmp").iterdir()) == []


def test_the_readmes_recipe_loads_a_cells_logged_model_and_predicts(tracking_uri, tmp_path, monkeypatch):
    # README, "Using only the model": a cell's model/ as CellRun.complete logs it, loaded as the README says
    import re
    from pathlib import Path

    import torch

    from search_spaces import load_profile
    from transfer_core import build_model, from_flat, to_flat

    cfg = from_flat(load_profile("smoke").overrides)
    model = build_model(cfg.model).eval()
    client = tracking.client_for(tracking_uri)
    experiment_id = tracking.ensure_experiment(client, "demo", tracking_uri)
    parent = tracking.start_parent(client, experiment_id, "demo", {})
    run = tracking.CellRun.open(tracking_uri, experiment_id, parent,
                                tracking.CellIdentity("demo", "A", "synthetic", 0, "a", "demo/A/seed0"), "t1", {}, {})
    # the last epoch's weights (model/) and the epoch chosen on validation's (model_selected/), which score
    # sel_test_acc: the recipe loaded model/ whatever the run held
    selected = build_model(cfg.model).eval()
    with torch.no_grad():   # other weights than the last epoch's
        for tensor in selected.parameters():
            tensor.add_(0.05)
    run.complete({}, {}, model.state_dict(), to_flat(cfg), selected_state=selected.state_dict())
    last_only = tracking.CellRun.open(tracking_uri, experiment_id, parent, tracking.CellIdentity(
        "demo", "B", "synthetic", 0, "b", "demo/B/seed0"), "t2", {}, {})
    last_only.complete({}, {}, model.state_dict(), to_flat(cfg))
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    [recipe] = re.findall(r"predicting a\nbatch of the synthetic test faces:\n\n```python\n(.*?)```", readme, re.S)
    monkeypatch.chdir(tmp_path)   # the recipe's sqlite:///mlflow.db is the store of this folder
    assert tracking_uri == f"sqlite:///{tmp_path / 'mlflow.db'}"
    for run_id, weights in ((run.run_id, selected), (last_only.run_id, model)):
        names = {"RUN_ID": run_id}
        exec(recipe, names)
        assert names["predicted"].shape == (len(names["labels"]),)
        with torch.no_grad():
            assert torch.equal(names["model"](names["x"]), weights(names["x"]))


def test_check_tracking_a_sqlite_store_another_process_holds_locked_is_a_clear_error(tmp_path, monkeypatch):
    # measured: `sweeps run` beside an sqlite3 shell holding `BEGIN EXCLUSIVE` ended ~40 s later, before any
    # trial, in MLflow's traceback of "(sqlite3.OperationalError) database is locked"
    import sqlite3

    database = tmp_path / "mlflow.db"
    holder = sqlite3.connect(database, isolation_level=None)
    holder.execute("CREATE TABLE t (x)")
    monkeypatch.setattr(tracking, "LOCK_WAIT_S", 0.2)
    tracking.check_tracking(f"sqlite:///{database}")   # a store nobody holds: passes
    holder.execute("BEGIN EXCLUSIVE")
    try:
        with pytest.raises(tracking.TrackingError, match=rf"^the MLflow database {database} is locked: another process "
                                                         r"has held a write transaction on it for 0\.2 s .*fuser"):
            tracking.check_tracking(f"sqlite:///{database}")
    finally:
        holder.execute("ROLLBACK")
        holder.close()


def test_check_tracking_leaves_a_file_that_is_no_database_to_mlflows_own_error(tmp_path):
    (tmp_path / "mlflow.db").write_text("not a database")
    tracking.check_tracking(f"sqlite:///{tmp_path}/mlflow.db")


def test_a_trial_waits_for_a_sqlite_store_another_process_holds_locked_and_names_it_when_it_gives_up(
        tmp_path, monkeypatch):
    # measured: a store held `BEGIN EXCLUSIVE` for 90 s mid-sweep failed the trials that opened or completed their
    # runs meanwhile ("database is locked" after MLflow's 20 s), each costing a retry, as an unreachable server does not
    import sqlite3
    import threading

    database = tmp_path / "mlflow.db"
    holder = sqlite3.connect(database, isolation_level=None, check_same_thread=False)
    holder.execute("CREATE TABLE t (x)")
    uri = f"sqlite:///{database}"
    assert tracking.available(uri, timeout=0.1)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        assert not tracking.available(uri, timeout=0.1)
        assert tracking.away_text(uri) == f"the MLflow database {database} is locked by another process"
        with pytest.raises(tracking.TrackingError, match=rf"^the MLflow database {database} has been locked by another "
                                                         r"process for 0\.3 s \(set SWEEPS_TRACKING_WAIT_S"):
            tracking.wait_for_tracking(uri, 0.3, poll_s=0.05, in_trial=True)
        threading.Timer(0.5, lambda: holder.execute("ROLLBACK")).start()
        started = time.monotonic()
        tracking.wait_for_tracking(uri, 30, poll_s=0.05)   # returns once the lock is let go
        assert time.monotonic() - started < 10
    finally:
        if holder.in_transaction:
            holder.execute("ROLLBACK")
        holder.close()


def test_a_pid_reused_on_a_system_without_proc_is_not_taken_for_the_driver(tmp_path, monkeypatch):
    # macOS has no /proc: its driver's start time comes from `ps`. Without one, a pid reused after the driver died
    # (the laptop restarted) read as the driver alive, and `sweeps resume` refused the invocation
    import json
    import subprocess
    import sys

    monkeypatch.setattr(tracking, "PROC", str(tmp_path / "no-proc"))
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        started = tracking._process_start(other.pid)
        assert started is not None and started.startswith("ps:")
        assert json.loads(tracking.driver_identity())["start"] == tracking._process_start(os.getpid())
        host = json.loads(tracking.driver_identity())["host"]
        alive = {schema.TAG_DRIVER: json.dumps({"host": host, "pid": other.pid, "start": started})}
        reused = {schema.TAG_DRIVER: json.dumps({"host": host, "pid": other.pid,
                                                 "start": "ps:Mon Jan  1 00:00:00 2024"})}
        assert tracking.driver_state(alive) == "alive"
        assert tracking.driver_state(reused) == "gone"
    finally:
        other.kill()
        other.wait()
    assert tracking._process_start(other.pid) is None
