"""cluster.yaml: valid for Ray's cluster launcher, checked offline the way `ray up` checks it, and safe by
construction (trials on GPU workers, token auth on, servers off public interfaces). No cloud SDK, no network.

`ray up` calls prepare_config (merge the provider's defaults.yaml, fold setup_commands into the head's and the
workers' lists) and then validate_config (ray-schema.json plus node-type checks) before it touches a cloud;
stack.md §4.2. Commands are checked as the launcher runs them: after prepare_config.
"""

import copy
import json
import re
import shlex
import shutil
import subprocess
import time
from pathlib import Path

import click
import jsonschema
import pytest
import yaml
from ray.autoscaler._private.util import prepare_config, validate_config

from sweeps.errors import SweepError

ROOT = Path(__file__).resolve().parents[1]
CLUSTER_YAML = ROOT / "cluster.yaml"
COMMAND_LISTS = ("initialization_commands", "setup_commands", "head_setup_commands", "worker_setup_commands",
                 "head_start_ray_commands", "worker_start_ray_commands")


@pytest.fixture(scope="module")
def raw() -> dict:
    return yaml.safe_load(CLUSTER_YAML.read_text())


@pytest.fixture
def spec(raw) -> dict:
    """A private copy to break."""
    return copy.deepcopy(raw)


@pytest.fixture(scope="module")
def prepared(raw) -> dict:
    return prepare_config(copy.deepcopy(raw))


def _all_commands(config: dict) -> list[str]:
    commands = [c for key in COMMAND_LISTS for c in config.get(key, [])]
    for node_type in config.get("available_node_types", {}).values():
        commands += [c for key in COMMAND_LISTS for c in node_type.get(key, [])]
    return commands


def _env_script(config: dict) -> str:
    """The command that writes ~/.transfer-sweeps/env.sh on the head (the workers run the same one)."""
    [command] = [c for c in config["head_start_ray_commands"] if "> ~/.transfer-sweeps/env.sh" in c]
    return command


def _mlflow_server(prepared: dict) -> str:
    [command] = [c for c in prepared["head_start_ray_commands"] if "mlflow server" in c]
    return command


def _head_type(config: dict) -> dict:
    return config["available_node_types"][config["head_node_type"]]


def _worker_types(config: dict) -> dict:
    return {k: v for k, v in config["available_node_types"].items() if k != config["head_node_type"]}


# --------------------------------------------------------------------------- validity

def test_cluster_yaml_validates_like_ray_up(prepared):
    validate_config(copy.deepcopy(prepared))


def test_cluster_yaml_is_aws_named_transfer_sweeps(raw):
    assert raw["cluster_name"] == "transfer-sweeps"
    assert raw["provider"]["type"] == "aws" and raw["provider"]["region"] == "us-west-2"


def test_cluster_yaml_unknown_top_level_key_fails_validation(spec):
    spec["bogus_key"] = 1
    with pytest.raises(jsonschema.ValidationError,
                       match=r"Additional properties are not allowed \('bogus_key' was unexpected\)"):
        validate_config(prepare_config(spec))


def test_cluster_yaml_head_node_type_that_is_not_a_node_type_fails_validation(spec):
    spec["head_node_type"] = "ray.head.typo"
    with pytest.raises(ValueError, match=r"`head_node_type` must be one of `available_node_types`\."):
        validate_config(prepare_config(spec))


def test_cluster_yaml_commands_are_valid_bash(prepared):
    for command in _all_commands(prepared):
        check = subprocess.run(["bash", "-n", "-c", command], capture_output=True, text=True, timeout=30)
        # an unterminated here-document is only a warning to bash -n: any output is a failure
        assert check.returncode == 0 and not check.stderr, f"{command!r}: {check.stderr}"


def _options(command) -> set[str]:
    return {o for p in command.params for o in p.opts + p.secondary_opts}


def test_cluster_yaml_commands_use_only_options_the_installed_ray_and_mlflow_have(prepared):
    # a flag Ray or MLflow renamed or dropped fails `ray up` only on the cloud, after minutes of set-up
    from mlflow.cli import server
    from ray.scripts.scripts import start, stop

    known = {"ray start": _options(start), "ray stop": _options(stop), "mlflow server": _options(server)}
    used = {program: set() for program in known}
    for command in _all_commands(prepared):
        for program, args in re.findall(r"\b(ray start|ray stop|mlflow server)\b([^;&|>'\n]*)", command):
            used[program] |= set(re.findall(r"(?<![\w-])(--?[a-zA-Z][\w-]*)", args))
    assert used["ray start"] and used["ray stop"] == set() and used["mlflow server"]
    for program, options in used.items():
        assert options <= known[program], f"{program}: no option {sorted(options - known[program])}"


# --------------------------------------------------------------------------- nodes and resources

def test_cluster_yaml_head_node_has_no_cpus_so_trials_land_on_workers(raw):
    assert _head_type(raw)["resources"] == {"CPU": 0}


def test_cluster_yaml_every_resource_value_is_an_integer(raw):
    for name, node_type in raw["available_node_types"].items():
        for key, value in node_type["resources"].items():
            assert type(value) is int, f"{name}.resources.{key}={value!r} is not an integer"


def test_cluster_yaml_gpu_workers_autoscale_from_zero(raw):
    [worker] = _worker_types(raw).values()
    assert worker["min_workers"] == 0 and 1 <= worker["max_workers"] <= raw["max_workers"]
    assert raw["idle_timeout_minutes"] > 0


def test_cluster_yaml_one_worker_holds_a_paper_profile_trial(raw):
    paper = yaml.safe_load((ROOT / "search_spaces" / "profiles.yaml").read_text())["paper"]
    [worker] = _worker_types(raw).values()
    assert worker["resources"]["CPU"] >= paper["cpus_per_trial"]
    assert worker["resources"]["GPU"] >= paper["gpus_per_trial"] >= 1


# --------------------------------------------------------------------------- software

def test_ray_up_leaves_a_local_runs_outputs_behind(raw):
    """`ray up` copies the repository to every node, leaving out what .gitignore names (rsync_filter): the
    stores and outputs a run here leaves in the working tree (sweeps plot's figures/ by default) stay here."""
    assert raw["rsync_filter"] == [".gitignore"]
    outputs = ["mlflow.db", "mlruns/0/meta.yaml", "mlartifacts/1/a.pt", "ray_results/mad_vs_dropout/x.json",
               "figures/mad_vs_dropout/bars.png", ".cache/transfer-sweeps/synthetic.npz",
               # docs/cluster.md §7 brings a cluster's store home into the repository root (GBs of models)
               "cluster-mlflow.db", "cluster-mlartifacts/1/abc/artifacts/model/data/model.pth"]
    shown = subprocess.run(["git", "check-ignore", "--no-index", "--verbose", "--non-matching", *outputs], cwd=ROOT,
                           capture_output=True, text=True, check=False).stdout.splitlines()
    copied = [line.split("\t")[-1] for line in shown if line.startswith("::")]
    assert copied == [], f"copied to every node by ray up: {copied}; add them to .gitignore"


def test_cluster_yaml_worker_setup_installs_the_package_with_constraints(raw, prepared):
    assert raw["file_mounts"]["~/transfer-sweeps"] == "."
    installs = [c for c in prepared["worker_setup_commands"] if re.search(r"pip install .*-c constraints\.txt -e \.", c)]
    assert installs and "cd ~/transfer-sweeps" in installs[0]


def test_cluster_yaml_head_installs_ray_default_at_the_pinned_version(prepared):
    pin = re.search(r"^ray==(\S+)$", (ROOT / "constraints.txt").read_text(), re.M).group(1)
    assert any(f'"ray[default,tune]=={pin}"' in c for c in prepared["head_setup_commands"])


def test_cluster_yaml_head_installs_boto3_for_the_autoscaler(raw):
    assert any("boto3" in c for c in raw["head_setup_commands"])


# --------------------------------------------------------------------------- security

def test_cluster_yaml_never_disables_token_auth():
    assert not re.search(r"RAY_AUTH_MODE\W*disabled", CLUSTER_YAML.read_text(), re.I)


def test_cluster_yaml_exports_token_auth_on_every_node(raw, prepared):
    env = _env_script(raw)
    assert "export RAY_AUTH_MODE=token" in env
    # first on every start, so a reused (stopped) worker that skips its setup commands is current too
    assert prepared["head_start_ray_commands"][0] == env and prepared["worker_start_ray_commands"][0] == env
    ray_commands = [c for c in prepared["head_start_ray_commands"] + prepared["worker_start_ray_commands"]
                    if re.search(r"\bray (start|stop)\b", c)]
    assert ray_commands and all(c.startswith(". ~/.transfer-sweeps/env.sh;") for c in ray_commands)


def test_cluster_yaml_distributes_the_token_with_file_mounts(raw):
    assert raw["file_mounts"]["~/.ray/auth_token"] == "~/.ray/auth_token"
    assert "chmod 600 ~/.ray/auth_token" in _env_script(raw)


def test_cluster_yaml_mlflow_server_is_not_bound_to_all_interfaces(prepared):
    host = re.search(r"--host\s+(\S+)", _mlflow_server(prepared)).group(1).strip("\"'")
    assert host not in {"0.0.0.0", "::", "[::]"}
    assert not any("0.0.0.0" in c for c in _all_commands(prepared))


def test_cluster_yaml_mlflow_is_reachable_where_drivers_and_trials_look_for_it(raw, prepared):
    env = _env_script(raw)
    assert "export TRANSFER_SWEEPS_HEAD_IP=$HEAD_IP" in env
    assert "export MLFLOW_TRACKING_URI=http://$HEAD_IP:5000" in env
    assert '--host "$TRANSFER_SWEEPS_HEAD_IP" --port 5000' in _mlflow_server(prepared)


def test_cluster_docs_reach_mlflow_from_your_machine_only_through_the_ssh_tunnel():
    # `ray attach -p 5000` forwards to the head's localhost, where the server (on the head's private IP) does
    # not listen: a --tracking-uri http://localhost:5000 told to follow it found nothing there
    paragraphs = (ROOT / "docs" / "cluster.md").read_text().split("\n\n")
    readers = [p for p in paragraphs if "--tracking-uri http://localhost:5000" in p]
    assert readers
    for paragraph in readers:
        assert not re.search(r"ray attach cluster\.yaml -p 5000`\s+in one terminal", paragraph), paragraph
        assert "ssh" in paragraph.lower() or "§5" in paragraph, paragraph


def test_cluster_yaml_mlflow_database_is_on_local_disk_and_artifacts_on_shared_storage(prepared):
    server = _mlflow_server(prepared)
    store = re.search(r"--backend-store-uri\s+\"?(\S+?)\"?\s", server).group(1)
    assert store.startswith("sqlite:///$HOME/") and "/mnt/" not in store
    assert "--artifacts-destination /mnt/shared/mlartifacts" in server


def test_cluster_yaml_dashboard_listens_on_loopback_and_usage_stats_are_off(prepared):
    [head_start] = [c for c in prepared["head_start_ray_commands"] if "ray start" in c]
    assert "--dashboard-host=127.0.0.1" in head_start and "--disable-usage-stats" in head_start
    assert "--autoscaling-config=~/ray_bootstrap_config.yaml" in head_start
    [worker_start] = [c for c in prepared["worker_start_ray_commands"] if "ray start" in c]
    assert "--address=$RAY_HEAD_IP:6379" in worker_start and "--disable-usage-stats" in worker_start


def test_cluster_yaml_environment_turns_telemetry_off(raw):
    env = _env_script(raw)
    assert "export MLFLOW_DISABLE_TELEMETRY=true" in env and "export RAY_USAGE_STATS_ENABLED=0" in env


def test_cluster_yaml_shared_storage_holds_tune_results_data_and_artifacts(raw):
    [mount] = [c for c in raw["setup_commands"] if "/etc/fstab" in c]  # runs on head and workers
    assert " /mnt/shared nfs4 " in mount
    for folder in ("/mnt/shared/data", "/mnt/shared/ray_results", "/mnt/shared/mlartifacts"):
        assert folder in mount


# --------------------------------------------------------------------------- the variants its comments describe

def test_cluster_yaml_on_prem_variant_from_its_comments_validates(spec):
    spec["provider"] = {"type": "local", "head_ip": "10.0.0.10", "worker_ips": ["10.0.0.11", "10.0.0.12"]}
    spec["auth"] = {"ssh_user": "researcher", "ssh_private_key": "~/.ssh/id_ed25519"}
    del spec["available_node_types"], spec["head_node_type"]
    validate_config(prepare_config(spec))


def test_cluster_yaml_on_prem_refuses_node_types(spec):
    spec["provider"] = {"type": "local", "head_ip": "10.0.0.10", "worker_ips": ["10.0.0.11"]}
    with pytest.raises(click.ClickException, match="not supported for on-premise clusters"):
        prepare_config(spec)


def test_cluster_yaml_gcp_variant_from_its_comments_validates(spec):
    spec["provider"] = {"type": "gcp", "region": "us-west1", "availability_zone": "us-west1-b",
                        "project_id": "my-project"}
    disks = [{"boot": True, "autoDelete": True, "type": "PERSISTENT",
              "initializeParams": {"diskSizeGb": 200, "sourceImage": "projects/p/global/images/family/f"}}]
    _head_type(spec)["node_config"] = {"machineType": "n2-standard-8", "disks": disks}
    for worker in _worker_types(spec).values():
        worker["node_config"] = {"machineType": "g2-standard-4", "disks": disks,
                                 "scheduling": [{"onHostMaintenance": "TERMINATE"}]}
    validate_config(prepare_config(spec))


# --------------------------------------------------------------------------- a sweep on its head

SESSION = "session_2026-12-07_10-00-00_000000_4242"


def _process(proc: Path, pid: int, argv: list[str], env: dict[str, str]) -> None:
    """A process as /proc lists it: its NUL-separated command line and environment."""
    (proc / str(pid)).mkdir(parents=True)
    (proc / str(pid) / "cmdline").write_bytes("\0".join(argv).encode() + b"\0")
    (proc / str(pid) / "environ").write_bytes("".join(f"{k}={v}\0" for k, v in env.items()).encode())


def _autoscaler(proc: Path, home: Path, *, session: str = SESSION, config: str | None = "~/ray_bootstrap_config.yaml",
                pid: int = 4711) -> None:
    """Ray's autoscaler as `ray start --head` starts it (services.start_monitor): --autoscaling-config as `ray up`'s
    head_start_ray_commands give it, unexpanded (the monitor expands `~` with its own HOME), or none at all."""
    argv = ["/home/ubuntu/venv/bin/python", "-u", "/home/ubuntu/venv/lib/python3.11/site-packages/ray/autoscaler/"
            "_private/monitor.py", f"--logs-dir=/tmp/ray/{session}/logs", "--gcs-address=10.0.0.10:6379",
            *([f"--autoscaling-config={config}"] if config else []), "--monitor-ip=10.0.0.10"]
    _process(proc, pid, argv, {"HOME": str(home), "PATH": "/usr/bin"})


@pytest.fixture
def head_without_workers(monkeypatch, tmp_path):
    """This machine as the head of a fresh `ray up` cluster: the CPU-less head is its only node, Ray's autoscaler
    publishes no node types in the GCS (Ray 2.60 calls report_cluster_config nowhere), and its HOME (here: the
    folder returned) holds the config `ray up` leaves on the head for it (JSON, after prepare_config), which it
    reads: its process names it with --autoscaling-config. The driver runs there, as the same user."""
    import ray
    from ray._private.state import state

    import sweeps.cluster

    head = {"Alive": True, "Resources": {"memory": 2e10, "object_store_memory": 9e9}}
    monkeypatch.setattr(ray, "nodes", lambda: [head])
    monkeypatch.setattr(state, "get_cluster_config", lambda: None)
    monkeypatch.setattr(sweeps.cluster, "PROC", str(tmp_path / "proc"))
    monkeypatch.setattr(sweeps.cluster, "_head_and_session", lambda: ("head", "head", SESSION))
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    (tmp_path / "proc" / "self").mkdir(parents=True)
    _process(tmp_path / "proc", 1, ["/sbin/init"], {})
    _autoscaler(tmp_path / "proc", tmp_path)
    return tmp_path


def _paper_trial() -> tuple[float, float]:
    paper = yaml.safe_load((ROOT / "search_spaces" / "profiles.yaml").read_text())["paper"]
    return paper["cpus_per_trial"], paper["gpus_per_trial"]


def test_sweep_on_the_head_of_a_fresh_cluster_counts_the_gpu_workers_the_autoscaler_may_start(head_without_workers,
                                                                                            raw):
    # docs/cluster.md §4: `sweeps run ... --profile paper --address auto` on the head, before any worker exists
    from sweeps.cluster import check_resources

    (head_without_workers / "ray_bootstrap_config.yaml").write_text(json.dumps(prepare_config(copy.deepcopy(raw))))
    check_resources(*_paper_trial(), address="auto")


def test_sweep_on_the_head_refuses_a_trial_larger_than_every_node_type(head_without_workers, raw):
    from sweeps.cluster import check_resources

    (head_without_workers / "ray_bootstrap_config.yaml").write_text(json.dumps(prepare_config(copy.deepcopy(raw))))
    with pytest.raises(SweepError, match=r"a trial asks for 4 CPU and 2 GPU, but the largest node offers 4 CPU and "
                                         r"1 GPU"):
        check_resources(4, 2, address="auto")


def test_without_the_launchers_config_only_running_nodes_count(head_without_workers, raw):
    # the file the autoscaler reads is missing, or the Ray is a local one
    from sweeps.cluster import check_resources

    with pytest.raises(SweepError, match=r"a trial asks for 4 CPU and 1 GPU, but the largest node offers 0 CPU and "
                                         r"0 GPU"):
        check_resources(*_paper_trial(), address="auto")
    (head_without_workers / "ray_bootstrap_config.yaml").write_text(json.dumps(prepare_config(copy.deepcopy(raw))))
    with pytest.raises(SweepError, match=r"but the largest node offers 0 CPU and 0 GPU"):
        check_resources(*_paper_trial(), address=None)   # no cluster: the file is not this Ray's



def _bootstrap(home: Path, raw: dict, name: str = "ray_bootstrap_config.yaml", **worker_resources) -> None:
    """The config `ray up` writes for the autoscaler, into `home`; its worker types' resources replaced if given."""
    config = copy.deepcopy(raw)
    for worker in _worker_types(config).values():
        worker["resources"] = worker_resources or worker["resources"]
    (home / name).write_text(json.dumps(prepare_config(config)))


def test_a_stale_launcher_config_that_the_clusters_autoscaler_does_not_read_is_not_counted(head_without_workers, raw):
    """A ~/ray_bootstrap_config.yaml left by an earlier `ray up` (or by a cluster whose worker types changed since)
    counted worker types that no autoscaler starts: an impossible trial waited for ever instead of being refused.
    Only the file the connected cluster's autoscaler reads (its --autoscaling-config) counts."""
    from sweeps.cluster import check_resources

    proc = head_without_workers / "proc"
    _bootstrap(head_without_workers, raw)
    shutil.rmtree(proc / "4711")
    _autoscaler(proc, head_without_workers, config=None)   # this cluster: `ray start --head` by hand
    _autoscaler(proc, head_without_workers, session="session_2026-01-01_00-00-00_000000_1", pid=99)  # another Ray
    with pytest.raises(SweepError, match=r"a trial asks for 4 CPU and 1 GPU, but the largest node offers 0 CPU and "
                                         r"0 GPU: .* add nodes \(the cluster's autoscaler \(pid 4711 on the head\) "
                                         r"reads no config file \(--autoscaling-config\): it starts no nodes\)"):
        check_resources(*_paper_trial(), address="auto")
    shutil.rmtree(proc / "4711")   # no autoscaler of this cluster (it died): only the other Ray's, which is not asked
    with pytest.raises(SweepError, match=r"0 GPU: .* \(no process of the cluster's autoscaler \(Ray's monitor.py of "
                                         rf"{SESSION}\) runs on the head\)"):
        check_resources(*_paper_trial(), address="auto")


def test_the_node_types_counted_are_those_of_the_file_the_autoscaler_reads(head_without_workers, raw):
    from sweeps.cluster import check_resources

    proc = head_without_workers / "proc"
    _bootstrap(head_without_workers, raw)                                                    # stale: 4 CPU, 1 GPU
    _bootstrap(head_without_workers, raw, "cluster-b.json", CPU=8, GPU=2)
    shutil.rmtree(proc / "4711")
    _autoscaler(proc, head_without_workers, config=str(head_without_workers / "cluster-b.json"))
    check_resources(8, 2, address="auto")
    with pytest.raises(SweepError, match=r"a trial asks for 4 CPU and 3 GPU, but the largest node offers 8 CPU and "
                                         r"2 GPU: .*may start the node types of .*cluster-b.json\)"):
        check_resources(4, 3, address="auto")


def test_a_config_file_the_autoscaler_was_given_relative_to_its_folder_is_read_there(head_without_workers, raw):
    # `ray start --head --autoscaling-config=cluster-b.json` typed in a folder: the autoscaler opens it from its own
    # working folder; read from the task's, it was not found and a trial a worker type holds was refused
    from sweeps.cluster import check_resources

    proc = head_without_workers / "proc"
    (head_without_workers / "cluster-folder").mkdir()
    _bootstrap(head_without_workers / "cluster-folder", raw, "cluster-b.json", CPU=8, GPU=2)
    shutil.rmtree(proc / "4711")
    _autoscaler(proc, head_without_workers, config="cluster-b.json")
    (proc / "4711" / "cwd").symlink_to(head_without_workers / "cluster-folder")
    check_resources(8, 2, address="auto")


def test_a_driver_not_on_the_head_has_the_head_read_the_autoscalers_node_types(head_without_workers, raw, ray_local,
                                                                            monkeypatch):
    """docs/cluster.md §4: a driver on another node of the cluster (so with no ~/ray_bootstrap_config.yaml of its own)
    asks the head, by a task there that reserves nothing, instead of needing request_resources first. Here the
    one node of the tests' local Ray stands for the head, which reads the fixture's processes."""
    import ray

    import sweeps.cluster
    from sweeps.cluster import check_resources

    head = ray.get_runtime_context().get_node_id()
    monkeypatch.setattr(sweeps.cluster, "_head_and_session", lambda: (head, "a node elsewhere", SESSION))
    monkeypatch.setenv("HOME", str(head_without_workers / "proc"))   # the driver's machine: no launcher config
    _bootstrap(head_without_workers, raw)
    check_resources(*_paper_trial(), address="auto")
    with pytest.raises(SweepError, match=r"a trial asks for 4 CPU and 2 GPU, but the largest node offers 4 CPU and "
                                         r"1 GPU"):
        check_resources(4, 2, address="auto")


def test_a_head_that_cannot_be_asked_leaves_the_running_nodes_and_says_why(head_without_workers, raw, monkeypatch,
                                                                           caplog):
    import sweeps.cluster
    from sweeps.cluster import check_resources

    def unreachable():
        raise TimeoutError("the head did not answer")

    monkeypatch.setattr(sweeps.cluster, "_head_and_session", unreachable)
    _bootstrap(head_without_workers, raw)
    with pytest.raises(SweepError, match=r"0 GPU: .* add nodes \(could not ask the cluster's head which node types "
                                         r"its autoscaler may start \(the head did not answer\)\)"):
        check_resources(*_paper_trial(), address="auto")
    assert "only the running nodes count" in caplog.text   # docs/cluster.md §4 names this warning

def test_a_cluster_whose_running_nodes_hold_the_trial_asks_its_head_nothing(head_without_workers, monkeypatch,
                                                                             caplog):
    """The head is asked only where no running node holds a trial: the tests' and the bench's `--address` to a local
    Ray started by hand, and every sweep on a cluster whose GPU workers are up, scanned the head's processes and
    could wait a minute for a task there (or warn that it could not ask), before a sweep that needed none of it."""
    import ray

    import sweeps.cluster
    from sweeps.cluster import check_resources

    def asked():
        raise AssertionError("the head was asked")

    monkeypatch.setattr(sweeps.cluster, "_launcher_node_types", asked)
    monkeypatch.setattr(ray, "nodes", lambda: [{"Alive": True, "Resources": {"CPU": 8.0, "GPU": 1.0}}])
    check_resources(*_paper_trial(), address="auto")
    assert "only the running nodes count" not in caplog.text


def test_a_head_slow_to_answer_is_said_to_be_asked_and_given_up_on(head_without_workers, ray_local, monkeypatch,
                                                                   caplog):
    """A task on the head that does not start (its worker slow to start on a busy head, a runtime_env set up there)
    held the sweep up to a minute before its first trial without a word; it is now said after a few seconds, and
    cancelled once given up on."""
    import logging

    import ray

    import sweeps.cluster

    def slow_reader():
        def read(session, proc="/proc"):
            import time

            time.sleep(60)

        return read

    head = ray.get_runtime_context().get_node_id()
    monkeypatch.setattr(sweeps.cluster, "_head_and_session", lambda: (head, "a node elsewhere", SESSION))
    monkeypatch.setattr(sweeps.cluster, "_autoscaler_config_reader", slow_reader)
    monkeypatch.setattr(sweeps.cluster, "ANNOUNCE_AFTER_S", 0.5, raising=False)
    caplog.set_level(logging.INFO, logger="sweeps")
    started = time.monotonic()
    types, why = sweeps.cluster._launcher_node_types(timeout=3)
    assert types == [] and "the head did not answer within 3 s" in why
    assert time.monotonic() - started < 10
    assert "asking the cluster's head which node types its autoscaler may start (up to 2 s more)" in caplog.text


# --------------------------------------------------------------------------- commands run as the launcher runs them

def test_ray_on_a_worker_starts_with_the_clusters_environment_and_no_inherited_thread_limit(prepared, tmp_path):
    """Each worker start command run the way Ray's launcher runs it (command_runner._with_interactive: ~/.bashrc,
    then `export OMP_NUM_THREADS=1 PYTHONWARNINGS=ignore`, RAY_HEAD_IP prepended), with a stand-in `ray` that
    records what `ray start` sees. The raylet passes its environment to every trial: an OMP_NUM_THREADS=1 kept
    from the launcher held each trial's torch to one thread whatever its CPUs (unset, Ray sets it per trial)."""
    from ray.autoscaler._private.command_runner import _with_interactive
    from ray.autoscaler._private.util import with_head_node_ip

    home = tmp_path / "home"
    (home / ".ray").mkdir(parents=True)
    (home / ".ray" / "auth_token").write_text("x" * 32)
    (home / "venv" / "bin").mkdir(parents=True)
    fake_ray = home / "venv" / "bin" / "ray"
    fake_ray.write_text('#!/bin/bash\n[ "$1" = start ] && env > "$HOME/ray_start.env"\nexit 0\n')
    fake_ray.chmod(0o755)
    env = {"HOME": str(home), "PATH": "/usr/bin:/bin"}
    for command in with_head_node_ip(prepared["worker_start_ray_commands"], "10.0.0.10"):
        if "curl" in command:   # the MLflow /health check: no server here
            continue
        [wrapped] = shlex.split(_with_interactive(command)[-1])
        done = subprocess.run(["bash", "--noprofile", "--norc", "-c", wrapped], env=env, capture_output=True,
                              text=True, timeout=60)
        assert done.returncode == 0, f"{command!r}: {done.stderr}"
    seen = dict(line.split("=", 1) for line in (home / "ray_start.env").read_text().splitlines() if "=" in line)
    assert "OMP_NUM_THREADS" not in seen
    assert seen["RAY_AUTH_MODE"] == "token" and seen["MLFLOW_TRACKING_URI"] == "http://10.0.0.10:5000"
    assert seen["PATH"].startswith(f"{home}/venv/bin:")
