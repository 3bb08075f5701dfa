"""A sweep on a real two-node Ray cluster on this machine: trials spread over both nodes, and a
worker node that dies mid-sweep costs only the epochs after its trials' last checkpoints.

The cluster (`ray.cluster_utils.Cluster`: a head and one worker, 1 CPU each, on this machine's
address) runs in a controller subprocess, and the sweep's driver is the `sweeps` CLI with --address
in another: the session's in-process Ray (`ray_local`) may be running, and a driver cannot belong
to two clusters. Every process a test starts carries a marker in its environment; teardown kills
exactly those (never `ray stop`, which would take other Ray instances down with it).
"""

from __future__ import annotations

import json
import os
import re
import select
import shlex
import signal
import socket
import subprocess
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace

import pytest
from mlflow.tracking import MlflowClient

from processes import Processes, finish, reported_epochs, wait_for
from sweeps import schema
from sweeps.cluster import GCS_RECONNECT_ENV

pytestmark = [pytest.mark.slow, pytest.mark.skipif(not Path("/proc/self/environ").exists(),
                                                   reason="finds the processes it started in /proc")]

EPOCHS = 30  # smoke epochs take ~0.2 s: a window of several seconds to kill a node in

SPEC = f"""
name: spread
title: Spread
description: two cells, one per node
caption: A test table.
kind: table
profile: smoke
arms:
  - {{label: A, set: {{model.drop_variant: none}}}}
  - {{label: B, set: {{model.drop_variant: mad}}}}
seeds: [0]
table: {{baseline: A}}
"""

# Runs in its own process: a head and one worker node, 1 CPU each; node loss seen within ~2 s.
CLUSTER_SCRIPT = r"""
import json, sys
from ray.cluster_utils import Cluster

fast = {"health_check_period_ms": 500, "health_check_timeout_ms": 1000, "health_check_failure_threshold": 3}
cluster = Cluster(initialize_head=True,
                  head_node_args={"num_cpus": 1, "include_dashboard": False, "_system_config": fast})
worker = cluster.add_node(num_cpus=1)
cluster.wait_for_nodes()
print(json.dumps({"address": cluster.address, "head": cluster.head_node.node_id,
                  "worker": worker.node_id}), flush=True)
try:
    for line in sys.stdin:
        if line.strip() == "kill-worker":
            cluster.remove_node(worker, allow_graceful=False)
            print(json.dumps({"killed": worker.node_id}), flush=True)
        elif line.strip() == "kill-head":
            head = cluster.head_node.node_id
            cluster.remove_node(cluster.head_node, allow_graceful=False)
            print(json.dumps({"killed": head}), flush=True)
        elif line.strip() == "shutdown":
            break
finally:
    cluster.shutdown()
"""


# --------------------------------------------------------------------------- processes

class LocalCluster:
    """The controller subprocess: address and node ids, and the worker node to kill."""

    def __init__(self, processes: Processes) -> None:
        self.proc = processes.start([sys.executable, "-c", CLUSTER_SCRIPT], "cluster",
                                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.processes = processes
        info = self._read(timeout=90)
        self.address, self.head, self.worker = info["address"], info["head"], info["worker"]

    def _read(self, timeout: float) -> dict:
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        line = self.proc.stdout.readline() if ready else ""
        assert line, f"the cluster controller did not answer:\n{self.processes.log('cluster')}"
        return json.loads(line)

    def kill_worker(self) -> None:
        self.proc.stdin.write("kill-worker\n")
        self.proc.stdin.flush()
        assert self._read(timeout=60)["killed"] == self.worker

    def kill_head(self) -> None:
        """The head node's processes (GCS, raylet, its trials) killed at once, as when its machine goes."""
        self.proc.stdin.write("kill-head\n")
        self.proc.stdin.flush()
        assert self._read(timeout=60)["killed"] == self.head

    def shutdown(self) -> None:
        if self.proc.poll() is None:
            self.proc.stdin.write("shutdown\n")
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                pass


@pytest.fixture
def processes(tmp_path, tmp_path_factory):
    procs = Processes(tmp_path, tmp_path_factory.getbasetemp() / "cache")
    yield procs
    procs.cleanup()


@pytest.fixture
def cluster(processes):
    """A cluster of the test's own, to kill nodes of."""
    local = LocalCluster(processes)
    yield local
    local.shutdown()


@pytest.fixture(scope="module")
def intact_cluster(tmp_path_factory):
    """One cluster for the tests that only run on it, none of which harms it: starting one takes 10-20 s."""
    procs = Processes(tmp_path_factory.mktemp("intact-cluster"), tmp_path_factory.getbasetemp() / "cache")
    local = LocalCluster(procs)
    yield local
    local.shutdown()
    procs.cleanup()


# --------------------------------------------------------------------------- MLflow

def _children(uri: str, sweep: str) -> list:
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name(sweep)
    if experiment is None:
        return []
    return client.search_runs([experiment.experiment_id],
                              filter_string=f"tags.`{schema.TAG_ROLE}` = '{schema.ROLE_CELL}'")


def _steps(uri: str, run_id: str, key: str = "test_acc") -> list[int]:
    return sorted(m.step for m in MlflowClient(uri).get_metric_history(run_id, key))


def _sweep_args(spec: Path, uri: str, storage: Path, *extra: str) -> list[str]:
    return [str(spec), "--tracking-uri", uri, "--storage", str(storage), "--cpus-per-trial", "1", *extra]


@pytest.fixture
def spec_file(tmp_path):
    path = tmp_path / "spread.yaml"
    path.write_text(textwrap.dedent(SPEC))
    return path


# --------------------------------------------------------------------------- tests

def test_sweep_with_address_spreads_trials_over_both_nodes(intact_cluster, processes, spec_file, store, tmp_path):
    cluster, uri = intact_cluster, store
    driver = processes.sweeps("run", *_sweep_args(spec_file, uri, tmp_path / "results",
                                                  "--address", cluster.address), name="driver")
    finish(driver, processes, "driver")
    children = _children(uri, "spread")
    assert sorted(r.data.tags[schema.TAG_STATUS] for r in children) == ["completed", "completed"]
    assert {r.data.tags[schema.TAG_NODE_ID] for r in children} == {cluster.head, cluster.worker}


def test_worker_node_killed_mid_sweep_its_trial_resumes_on_the_head(cluster, processes, spec_file, store,
                                                                    tmp_path):
    uri = store
    storage = tmp_path / "results"
    driver = processes.sweeps("run", *_sweep_args(spec_file, uri, storage, "--address", cluster.address,
                                                  "--set", f"optim.epochs={EPOCHS}", "--max-failures", "2"),
                              name="driver")

    def worker_cell_checkpointed():
        for run in _children(uri, "spread"):
            if (run.data.tags.get(schema.TAG_NODE_ID) == cluster.worker
                    and 3 <= run.data.metrics.get("epochs_done", 0) < EPOCHS):  # epochs 1-2 checkpointed
                return run
        return None

    victim = wait_for(worker_cell_checkpointed, driver, "a trial on the worker node to checkpoint an epoch",
                       processes, "driver")
    cluster.kill_worker()
    finish(driver, processes, "driver")

    children = _children(uri, "spread")
    assert len(children) == 2, "one MLflow child run per cell, no duplicates"
    assert all(r.data.tags[schema.TAG_STATUS] == "completed" for r in children)
    resumed = next(r for r in children if r.info.run_id == victim.info.run_id)
    assert resumed.data.tags[schema.TAG_NODE_ID] == cluster.head, "the retry ran on the remaining node"
    assert _steps(uri, resumed.info.run_id) == list(range(1, EPOCHS + 1))
    reported = reported_epochs(storage, resumed.data.tags[schema.TAG_CELL_ID])
    assert reported.count(1) == 1 and reported[-1] == EPOCHS, f"resumed from its checkpoint: {reported}"


def test_a_sweep_whose_head_node_is_killed_says_how_to_continue_before_ray_ends_its_driver(
        cluster, processes, spec_file, store, tmp_path):
    # Ray's core worker ended the driver a minute after the GCS went away ("Failed to connect to GCS within 60
    # seconds ... The program will terminate", exit 1) while Tune's loop waited on it: no "Continue with:", and
    # the invocation left running. Ray is told to give up after 15 s here, so the watch acts after 10
    processes.env[GCS_RECONNECT_ENV] = "15"
    storage = tmp_path / "results"
    driver = processes.sweeps("run", *_sweep_args(spec_file, store, storage, "--address", cluster.address,
                                                  "--set", "optim.epochs=200"), name="driver")

    def training():
        return any(run.data.metrics.get("epochs_done", 0) >= 1 for run in _children(store, "spread"))

    wait_for(training, driver, "a trial to train an epoch", processes, "driver")
    cluster.kill_head()
    try:
        driver.wait(timeout=40)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"the driver outlived its cluster:\n{processes.log('driver')}")
    log = processes.log("driver", tail=20000)
    assert driver.returncode == 1, log
    assert "Failed to connect to GCS" not in log, "ended by the sweep, before Ray ended it"
    assert re.search(r"sweep spread stopped: the Ray cluster's GCS at \S+ has not answered for \d+ s", log), log
    words = shlex.split(re.search(r"^Continue with: (.*)$", log, flags=re.M).group(1))
    assert words[:3] == ["sweeps", "resume", str(spec_file)] and cluster.address in words and str(storage) in words
    # printed before the first trial, for a driver that dies with the head's machine
    assert re.search(rf"^Should this driver be cut off .*`sweeps run {re.escape(str(spec_file))} --address ", log,
                     flags=re.M), log
    client = MlflowClient(store)
    parent, = client.search_runs([client.get_experiment_by_name("spread").experiment_id],
                                 filter_string=f"tags.`{schema.TAG_ROLE}` = '{schema.ROLE_PARENT}'")
    assert parent.data.tags[schema.TAG_STATUS] == schema.STATUS_INTERRUPTED


def test_the_cluster_watch_tells_once_of_a_gcs_silent_for_its_time_and_never_of_one_that_answers(monkeypatch):
    import time

    import ray

    from sweeps.cluster import watching_the_cluster

    with socket.socket() as gone:   # a port nobody listens on
        gone.bind(("127.0.0.1", 0))
        silent = gone.getsockname()[1]
    with socket.socket() as head:
        head.bind(("127.0.0.1", 0))
        head.listen()
        for port, told in ((silent, 1), (head.getsockname()[1], 0)):
            monkeypatch.setattr(ray, "get_runtime_context", lambda: SimpleNamespace(gcs_address=f"127.0.0.1:{port}"))
            calls = []
            with watching_the_cluster(lambda address, silent_s: calls.append((address, silent_s)),
                                      lost_after_s=0.5, poll_s=0.1):
                time.sleep(1.5)
            assert len(calls) == told and all(a == f"127.0.0.1:{port}" and s >= 0.5 for a, s in calls), calls


def test_the_time_ray_gives_a_lost_gcs_is_its_default_unless_its_variable_says_otherwise(monkeypatch):
    from sweeps.cluster import gcs_reconnect_timeout_s

    monkeypatch.delenv(GCS_RECONNECT_ENV, raising=False)
    assert gcs_reconnect_timeout_s() == 60, "Ray 2.60's default"
    monkeypatch.setenv(GCS_RECONNECT_ENV, "15")
    assert gcs_reconnect_timeout_s() == 15


def test_a_sweep_starting_its_local_ray_beside_another_ray_on_this_machine_warns_that_they_share_its_cores(
        tmp_path, caplog):
    # `sweeps run X` and `sweeps run Y` in two terminals: each starts a local Ray that counts every core as its own
    import logging
    import shutil

    from sweeps.cluster import warn_of_other_rays_here

    gcs = tmp_path / "gcs_server"   # a process named as a Ray's GCS server is
    shutil.copy(shutil.which("sleep"), gcs)
    other = subprocess.Popen([str(gcs), "60"])
    try:
        with caplog.at_level(logging.WARNING, logger="sweeps.cluster"):
            warn_of_other_rays_here()
        assert re.search(rf"other Ray instances? already runs? on this machine \(GCS pid [\d, ]*\b{other.pid}\b.*\): "
                         rf"this sweep starts a local Ray of its own, which counts all \d+ CPUs \(and every GPU\) "
                         rf"as its own, so the trials of (both|all \d+) share the cores .* start one Ray \(`ray start --head`\) "
                         rf"and give each sweep --address auto", caplog.text), caplog.text
    finally:
        other.kill()
        other.wait()


def test_address_auto_where_no_ray_was_started_with_ray_start_warns_that_it_joins_another_process_ray(
        tmp_path, caplog, monkeypatch):
    # Ray's "auto" joins any Ray running here where `ray start` started none: another `sweeps run`'s local Ray (a
    # notebook's), which goes down when that process ends, and this sweep with it; nothing was said
    import logging
    import shutil

    import ray
    import ray._private.utils

    from sweeps import cluster

    gcs = tmp_path / "gcs_server"   # a process named as a Ray's GCS server is
    shutil.copy(shutil.which("sleep"), gcs)
    other = subprocess.Popen([str(gcs), "60"])
    joined = []
    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", lambda address=None, **kw: joined.append(address))
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    try:
        for started, address, warned in [(None, "auto", True), ("10.0.0.10:6379", "auto", False),
                                         (None, "10.0.0.10:6379", False)]:
            monkeypatch.setattr(ray._private.utils, "read_ray_address", lambda temp_dir=None: started)
            caplog.clear()
            with caplog.at_level(logging.WARNING, logger="sweeps.cluster"):
                cluster.connect_ray(address)
            assert joined[-1] == address
            said = re.search(rf"--address auto: no Ray was started with `ray start` on this machine, so Ray joins one "
                             rf"that another process started for itself \(GCS pid [\d, ]*\b{other.pid}\b.*\)\. It "
                             rf"goes down when that process ends, and this sweep with it .*`ray start --head`",
                             caplog.text)
            assert bool(said) == warned, (started, address, caplog.text)
    finally:
        other.kill()
        other.wait()


def test_the_warning_of_other_rays_here_counts_them_all_not_both(monkeypatch, caplog):
    # five other Rays (five helpers' sweeps) were warned of as "the trials of both share the cores"
    import logging

    import sweeps.cluster
    from sweeps.cluster import warn_of_other_rays_here

    for others, said in (([101], "the trials of both share"), ([101, 102, 103], "the trials of all 4 share")):
        monkeypatch.setattr(sweeps.cluster, "other_rays_here", lambda: others)
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="sweeps.cluster"):
            warn_of_other_rays_here()
        assert said in caplog.text, caplog.text


def test_address_auto_says_nothing_of_a_ray_that_ray_start_left_running_without_its_address_file(
        tmp_path, caplog, monkeypatch):
    # `ray start` exits and leaves its Ray to init (pid 1); where its address file is not where Ray looks (`ray start
    # --temp-dir`, or cleaned from /tmp) Ray's "auto" joins it, and it stays up: it was warned of as a Ray that goes
    # down with the process that started it
    import logging
    import shutil

    import psutil
    import ray
    import ray._private.utils

    from sweeps import cluster

    gcs = tmp_path / "gcs_server"
    shutil.copy(shutil.which("sleep"), gcs)
    pid_file = tmp_path / "pid"
    subprocess.run(["sh", "-c", f"{gcs} 60 & echo $! > {pid_file}"], check=True)   # its parent exits: orphaned
    orphan = int(pid_file.read_text())
    try:
        if psutil.Process(orphan).ppid() != 1:   # a subreaper (systemd --user, a container's init) adopted it:
            real_parent = cluster._parent        # it stands for init here, as it would for a `ray start`'s Ray
            monkeypatch.setattr(cluster, "_parent", lambda pid: 1 if pid == orphan else real_parent(pid))
        monkeypatch.setattr(ray, "is_initialized", lambda: False)
        monkeypatch.setattr(ray, "init", lambda address=None, **kw: None)
        monkeypatch.delenv("RAY_ADDRESS", raising=False)
        monkeypatch.setattr(ray._private.utils, "read_ray_address", lambda temp_dir=None: None)
        with caplog.at_level(logging.WARNING, logger="sweeps.cluster"):
            cluster.connect_ray("auto")
        assert not re.search(rf"GCS pid [\d, ]*\b{orphan}\b", caplog.text), caplog.text
    finally:
        os.kill(orphan, signal.SIGKILL)


def test_sweep_with_address_where_nothing_listens_fails_at_once_naming_it(processes, spec_file, store, tmp_path):
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    driver = processes.sweeps("run", *_sweep_args(spec_file, store, tmp_path / "results",
                                                  "--address", f"127.0.0.1:{port}"), name="driver")
    try:
        driver.wait(timeout=60)   # Ray alone retries a silent address for ~13 minutes
    except subprocess.TimeoutExpired:
        raise AssertionError(f"the driver still waits for 127.0.0.1:{port}:\n{processes.log('driver')}")
    assert driver.returncode == 1
    assert f"--address 127.0.0.1:{port}: nothing answers there" in processes.log("driver")
    assert not (tmp_path / "results").exists() or not any((tmp_path / "results").iterdir())


def test_sweep_with_address_where_another_server_answers_fails_at_once_naming_it(processes, spec_file, store,
                                                                                  tmp_path):
    # the dashboard's 8265 (which `ray job submit --address` takes) or an MLflow server's port: the port
    # answered, so the driver went on and Ray retried it for ~13 minutes, printing only "Failed to connect to GCS"
    import http.server
    import threading

    server = http.server.HTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    try:
        driver = processes.sweeps("run", *_sweep_args(spec_file, store, tmp_path / "results",
                                                      "--address", f"127.0.0.1:{port}"), name="driver")
        try:
            driver.wait(timeout=60)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"the driver still waits for 127.0.0.1:{port}:\n{processes.log('driver')}")
    finally:
        server.shutdown()
        server.server_close()
    assert driver.returncode == 1, processes.log("driver")
    assert f"--address 127.0.0.1:{port}: something answers there, but not a Ray cluster" in processes.log("driver")
    assert not (tmp_path / "results").exists() or not any((tmp_path / "results").iterdir())


# Runs as a driver of the cluster: asks check_nodes_see_files about a database the worker node lacks.
PROBE_SCRIPT = r"""
import json, sys
import ray
from sweeps.cluster import check_nodes_see_files
from sweeps.errors import SweepError

ray.init(address=sys.argv[1], log_to_driver=False)
try:
    check_nodes_see_files(__import__("pathlib").Path(sys.argv[2]), sys.argv[3], 1, 0)
    print(json.dumps({"error": None}))
except SweepError as exc:
    print(json.dumps({"error": str(exc), "option": exc.option}))
"""


def test_sweep_with_address_refuses_before_any_trial_a_sqlite_database_another_node_does_not_see(
        intact_cluster, processes, tmp_path):
    # on this machine every node sees every file; a database that exists nowhere stands for one that only
    # the driver's host has (the driver's own node is not asked)
    absent = tmp_path / "only-on-the-driver" / "mlflow.db"
    (tmp_path / "results").mkdir()
    proc = processes.start([sys.executable, "-c", PROBE_SCRIPT, intact_cluster.address, str(tmp_path / "results"),
                            f"sqlite:///{absent}"], "probe", stdout=subprocess.PIPE, text=True)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 0, processes.log("probe")
    answer = json.loads(out.strip().splitlines()[-1])
    assert answer["option"] == "--tracking-uri"
    assert f"do not see the MLflow database {absent}, a file on this machine" in answer["error"]
    assert "--tracking-uri http://HOST:5000" in answer["error"]
    assert list((tmp_path / "results").iterdir()) == [], "the driver's marker is deleted"


def test_trial_on_a_node_without_the_sqlite_database_fails_before_training_and_creates_none(tmp_path, monkeypatch):
    from sweeps import trainable
    from sweeps.tracking import TrackingError
    from transfer_core.config import TrialConfig, to_flat

    class Context:
        def get_trial_id(self):
            return "t1"

    monkeypatch.setattr(trainable.tune, "get_context", lambda: Context())
    database = tmp_path / "mlflow.db"   # the driver's path; this "node" has the folder but not the file
    config = {"context": {"sweep": "spread", "kind": "table", "profile": "smoke",
                          "tracking_uri": f"sqlite:///{database}", "experiment_id": "1", "parent_run_id": "p",
                          "storage": str(tmp_path), "invocation": "spread-p-"},
              "cell": {"config": to_flat(TrialConfig()), "cell_id": "c", "arm": "A", "data": "synthetic",
                       "run_name": "spread/A", "data_key": "k"}}
    with pytest.raises(TrackingError, match=rf"the MLflow database {database} is not on this node .*"
                                            r"pass --tracking-uri http://HOST:5000"):
        trainable.train_cell(config, {"k": SimpleNamespace(fingerprint="f", dataset="synthetic")})
    assert not database.exists()


def test_trial_on_a_node_without_the_storage_folder_fails_before_training_naming_it(tmp_path, monkeypatch):
    # a node an autoscaler starts after the driver asked every node: Tune's marker in the experiment folder,
    # written by the driver, is missing there (Tune failed the trial only at its first checkpoint, an epoch on)
    from ray.train._internal.storage import _VALIDATE_STORAGE_MARKER_FILENAME

    from sweeps import trainable
    from transfer_core.config import TrialConfig, to_flat

    experiment = tmp_path / "results" / "spread-p-1"
    storage = SimpleNamespace(storage_filesystem=SimpleNamespace(type_name="local"),
                              experiment_fs_path=str(experiment))
    monkeypatch.setattr(trainable.tune, "get_context",
                        lambda: SimpleNamespace(get_trial_id=lambda: "t1", get_storage=lambda: storage))
    database = tmp_path / "mlflow.db"
    database.touch()   # the driver's database is here: only the storage is not
    config = {"context": {"sweep": "spread", "kind": "table", "profile": "smoke",
                          "tracking_uri": f"sqlite:///{database}", "experiment_id": "1", "parent_run_id": "p",
                          "storage": str(tmp_path / "results"), "invocation": "spread-p-"},
              "cell": {"config": to_flat(TrialConfig()), "cell_id": "c", "arm": "A", "data": "synthetic",
                       "run_name": "spread/A", "data_key": "k"}}
    with pytest.raises(trainable.StorageError, match=rf"the sweep's --storage {tmp_path / 'results'} is not on "
                                                     rf"this node .*experiment folder {experiment} is missing here"):
        trainable.train_cell(config, {"k": SimpleNamespace(fingerprint="f", dataset="synthetic")})
    assert database.stat().st_size == 0, "no MLflow call was made"
    experiment.mkdir(parents=True)
    (experiment / _VALIDATE_STORAGE_MARKER_FILENAME).touch()
    trainable.check_storage_here(str(tmp_path / "results"))   # a node that sees it: no error
