"""The Ray a sweep runs on: a local instance sized to the machine, or a cluster (`--address`,
RAY_ADDRESS), connected to once per driver. Checked before the data are decoded and trials start: that
the address answers, that some node can hold a trial's CPUs and GPUs, and that every node sees the
storage and the MLflow database the trials write to.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from pathlib import Path

from sweeps import tracking
from sweeps.errors import SweepError
from sweeps.stops import stops_held_while_ray_starts

log = logging.getLogger(__name__)


def worker_env() -> dict[str, str]:
    """The driver's settings the trials read (tracking.WAIT_ENV), for the workers' runtime env: on a
    cluster the workers' processes do not inherit the driver's environment."""
    return {k: os.environ[k] for k in (tracking.WAIT_ENV,) if k in os.environ}


def check_address(address: str | None, timeout: float = 5.0) -> None:
    """A cluster address of the form [ray://]HOST:PORT must answer now, before the data are decoded. Ray
    itself retries a silent address for about 13 minutes (20 attempts of ~40 s) and prints only its C++
    warnings meanwhile (observed: still waiting when killed after 10 minutes), and so it does an address where
    another server answers (the dashboard's port, an MLflow server's): the answer must be gRPC's. "auto",
    "local" and no address are left to Ray, which answers those at once."""
    option, usage = ("--address", "--address") if address else ("RAY_ADDRESS", None)   # usage: the option at fault
    address = address or os.environ.get("RAY_ADDRESS")
    if not address or address in ("auto", "local"):
        return
    host, sep, port = address.split("://", 1)[-1].rstrip("/").rpartition(":")
    if not sep or not port.isdigit() or not host:
        raise SweepError(f"{option} {address!r} is not HOST:PORT (e.g. 10.0.0.10:6379, the head's GCS port) "
                         "or 'auto'", usage)
    import socket

    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout) as connection:
            # a cluster with TLS (RAY_USE_TLS) answers the cleartext preface with TLS's alert: not probed
            speaks_grpc = _tls_on() or _answers_http2(connection)
    except OSError as exc:
        raise SweepError(f"{option} {address}: nothing answers there ({exc.strerror or exc}). Start the cluster "
                         "(`ray up cluster.yaml`, or `ray start --head` on its head) or give its head's address "
                         "(HOST:6379 by default; 'auto' on a node of the cluster)", usage) from exc
    if not speaks_grpc:   # Ray retried it for ~13 minutes too, printing only "Failed to connect to GCS"
        raise SweepError(f"{option} {address}: something answers there, but not a Ray cluster (its GCS speaks gRPC; "
                         "this is another server, as the dashboard on 8265 or an MLflow server). Give the head's GCS "
                         "address (HOST:6379 by default, as `ray start --head` prints it; 'auto' on a node of the "
                         "cluster)", usage)


# HTTP/2's client connection preface and an empty SETTINGS frame (RFC 9113 §3.4): a gRPC server (a Ray GCS, or
# the Ray client server behind ray://) answers with its own SETTINGS frame (type 4), an HTTP/1 server otherwise
_HTTP2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"


def _tls_on() -> bool:
    return os.environ.get("RAY_USE_TLS", "0").strip().lower() in ("1", "true")


def _answers_http2(connection) -> bool:
    """Whether the server on `connection` answers HTTP/2's preface with a SETTINGS frame, as gRPC servers do. One
    that closes or resets the connection, or stays silent until its timeout, is none; other OSErrors are raised."""
    connection.sendall(_HTTP2_PREFACE)
    head = b""
    try:
        while len(head) < 9:   # a frame header: length (3 bytes), type, flags, stream id (4)
            chunk = connection.recv(9 - len(head))
            if not chunk:
                break
            head += chunk
    except TimeoutError:
        return False
    except ConnectionResetError:   # an HTTP/1 server closing on the preface
        return False
    return len(head) == 9 and head[3] == 0x04


def connect_ray(address: str | None) -> None:
    """A running Ray (tests, notebooks) is reused; else the given cluster; else a local instance."""
    import ray

    if ray.is_initialized():
        return
    address = address or os.environ.get("RAY_ADDRESS")
    env = worker_env()
    runtime_env = {"env_vars": env} if env else None
    with stops_held_while_ray_starts():
        if address:
            warn_of_joining_a_passing_ray(address)
            ray.init(address=address, log_to_driver=False, runtime_env=runtime_env)
        else:
            warn_of_other_rays_here()
            with _children_in_a_process_group_of_their_own():
                ray.init(address="local", include_dashboard=False, log_to_driver=False, runtime_env=runtime_env,
                         _system_config=local_system_config())


# Ray's setting, honoured where the user set it (Ray reads RAY_<name> from the environment)
PRESTART_KEY = "prestart_worker_first_driver"


def local_system_config() -> dict:
    """Ray's settings for the local instance a sweep starts. Ray starts one idle task worker per CPU for the first
    driver that connects ("ray::IDLE"), ready for tasks; a sweep runs none (its trials are actors, and Ray gives
    each actor a process of its own), so they sat idle the whole sweep: ~0.45 s of CPU each to start, then
    ~0.35 s a minute each, taken from the trials on a small machine (bench/RESULTS.md §1). They are not
    prestarted; RAY_prestart_worker_first_driver=1 brings them back. Never applied to a cluster's Ray."""
    return {} if f"RAY_{PRESTART_KEY}" in os.environ else {PRESTART_KEY: False}


def other_rays_here() -> list[int]:
    """The pids of the Ray instances running on this machine now (their GCS servers), any user's."""
    import ray  # noqa: F401  (puts the psutil Ray ships in its thirdparty_files on the path)

    try:
        import psutil
    except ImportError:
        return []
    try:
        return sorted(p.pid for p in psutil.process_iter(["name"]) if p.info.get("name") == "gcs_server")
    except Exception as exc:  # noqa: BLE001  (a warning's look-up never stops a sweep)
        log.debug("could not look for other Ray instances here (%s)", exc)
        return []


def warn_of_other_rays_here() -> None:
    """Before a sweep starts its local Ray: warn where another Ray already runs on this machine (another `sweeps
    run` in a second terminal, a notebook's). Each local Ray counts every CPU and GPU as its own, so the trials of
    both run at once on the same cores, each slower than the sweep's budget says, and on a GPU share its memory.
    Not refused: two short sweeps on a roomy machine are fine."""
    pids = other_rays_here()
    if not pids:
        return
    cpus = os.cpu_count() or 0
    log.warning("%d other Ray instance%s already run%s on this machine (GCS pid %s): this sweep starts a local Ray "
                "of its own, which counts all %d CPUs (and every GPU) as its own, so the trials of %s share the "
                "cores (each slower) and a GPU's memory. To share the machine, start one Ray (`ray start --head`) "
                "and give each sweep --address auto, or keep each to a part with --max-concurrent",
                len(pids), "" if len(pids) == 1 else "s", "s" if len(pids) == 1 else "",
                ", ".join(map(str, pids)), cpus, "both" if len(pids) == 1 else f"all {len(pids) + 1}")


def warn_of_joining_a_passing_ray(address: str) -> None:
    """`--address auto` where no Ray was started with `ray start` on this machine (Ray records the address of the
    last in its temp folder): Ray 2.60 then joins any Ray that runs here (its legacy "auto"), one that another
    process started for itself (a `sweeps run` without --address, a notebook's `ray.init()`), perhaps another
    user's. That Ray goes down when its process ends, and this sweep with it (Ray kills a driver whose cluster is
    gone, after ~60 s; `sweeps resume` continues it). Warned, not refused: joining it while it runs is what was
    asked, and works. Nothing is said where RAY_ADDRESS names a cluster (Ray goes by it) or no Ray runs here (Ray
    says so itself)."""
    if address.strip() != "auto" or os.environ.get("RAY_ADDRESS", "").strip() not in ("", "auto"):
        return
    try:   # private API: the file `ray start` writes (/tmp/ray/ray_current_cluster)
        from ray._private.utils import read_ray_address

        if read_ray_address():
            return
    except Exception as exc:  # noqa: BLE001  (a warning's look-up never stops a sweep)
        log.debug("could not read the address of the Ray `ray start` started here (%s)", exc)
        return
    # a Ray `ray start` started outlives the command, its GCS left to init (pid 1): one of those is no passing Ray,
    # its address file elsewhere (`ray start --temp-dir`) or cleaned from /tmp
    pids = [pid for pid in other_rays_here() if _parent(pid) != 1]
    if not pids:
        return
    owners = sorted({owner for owner in map(_owner, pids) if owner and owner != _owner(os.getpid())})
    log.warning("--address auto: no Ray was started with `ray start` on this machine, so Ray joins one that another "
                "process started for itself (GCS pid %s%s: a `sweeps run` without --address, a notebook's "
                "ray.init()). It goes down when that process ends, and this sweep with it (`sweeps resume` continues "
                "it). For a Ray that stays up, run `ray start --head` and give --address auto again; for a Ray of this "
                "sweep's own, leave --address out", ", ".join(map(str, pids)),
                f", user {', '.join(owners)}'s" if owners else "")


def _parent(pid: int) -> int | None:
    """The pid of a process's parent, or None where it cannot be told."""
    try:
        import psutil

        return psutil.Process(pid).ppid()
    except Exception:  # noqa: BLE001
        return None


def _owner(pid: int) -> str | None:
    """The user name a process runs as, or None where it cannot be told."""
    try:
        import psutil

        return psutil.Process(pid).username()
    except Exception:  # noqa: BLE001
        return None


@contextlib.contextmanager
def _children_in_a_process_group_of_their_own():
    """The processes started inside (a local Ray's GCS and raylet, and the workers they start) go into a
    process group of their own, the driver back into its own. A signal sent to the driver's whole group
    (`timeout`'s SIGTERM, a CI runner's or a wrapper script's) otherwise kills the local Ray under the
    driver, which can then neither save Tune's state nor mark the invocation interrupted: it waits a minute
    for a GCS that is gone, and dies. Ctrl-C and `timeout` still reach the driver; Ray's processes still end
    with it (ray.shutdown, and they die with their parent). A driver that leads its group (a shell's job)
    or its session cannot move out of it: nothing changes then."""
    if not hasattr(os, "setpgid") or os.getpgrp() == os.getpid():
        yield
        return
    group = os.getpgrp()
    try:
        os.setpgid(0, 0)
    except OSError:
        yield
        return
    try:
        yield
    finally:
        try:
            os.setpgid(0, group)
        except OSError as exc:   # the group is gone (its leader and every member exited): stay where we are
            log.warning("could not return to process group %d after starting Ray: %s", group, exc)


GCS_RECONNECT_ENV = "RAY_gcs_rpc_server_reconnect_timeout_s"
GCS_RECONNECT_DEFAULT_S = 60.0   # Ray 2.60's gcs_rpc_server_reconnect_timeout_s


def gcs_reconnect_timeout_s() -> float:
    """How long Ray's core worker waits for a GCS it lost before it ends the driver's process ("Failed to
    connect to GCS within 60 seconds ... The program will terminate", exit status 1, no Python handler run)."""
    try:
        value = float(os.environ.get(GCS_RECONNECT_ENV, GCS_RECONNECT_DEFAULT_S))
    except ValueError:
        return GCS_RECONNECT_DEFAULT_S
    return value if value > 0 else GCS_RECONNECT_DEFAULT_S


@contextlib.contextmanager
def watching_the_cluster(on_lost, lost_after_s: float | None = None, poll_s: float = 2.0):
    """While the block runs, a thread calls `on_lost(gcs_address, seconds_silent)` once the connected Ray's GCS
    has refused or ignored every connection for `lost_after_s` (default: two thirds of
    `gcs_reconnect_timeout_s`, leaving Ray's last third for on_lost to act in). A cluster whose head is gone
    ends the driver from inside Ray's C++ core worker, without a word of the sweep's; meanwhile Tune's loop
    sits in a call to the GCS (freeing a dead trial's placement group), so only another thread can act. A GCS
    that answers again within the time (restarted, fault-tolerant) starts the count over."""
    import ray
    import socket
    import threading

    try:
        address = ray.get_runtime_context().gcs_address
        host, _, port = address.rpartition(":")
        target = (host.strip("[]"), int(port))
    except Exception as exc:  # noqa: BLE001  (no Ray connected, a Ray Client driver: nothing to watch)
        log.debug("the cluster is not watched: %s", exc)
        yield
        return
    lost_after_s = gcs_reconnect_timeout_s() * 2 / 3 if lost_after_s is None else lost_after_s
    stop = threading.Event()

    def watch() -> None:
        silent_since = None
        while not stop.wait(poll_s):
            try:
                with socket.create_connection(target, timeout=poll_s):
                    silent_since = None
                    continue
            except OSError:
                silent_since = silent_since or time.monotonic()
            if time.monotonic() - silent_since >= lost_after_s and not stop.is_set():
                on_lost(address, time.monotonic() - silent_since)
                return

    thread = threading.Thread(target=watch, name="sweeps-cluster-watch", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()


def _node_shapes() -> list[dict[str, float]]:
    """Resources of each alive node, plus each node type an autoscaler may still start that it publishes in the
    GCS (a cluster launched with `ray up` and min_workers 0 has no GPU node until a trial asks for one). Ray
    2.60's own autoscaler (`ray up`) publishes none: see _launcher_node_types."""
    import ray

    shapes = [dict(n["Resources"]) for n in ray.nodes() if n.get("Alive")]
    try:  # private API: the autoscaler's node groups, published in the GCS by some autoscalers (KubeRay's)
        from ray._private.state import state

        config = state.get_cluster_config()
        for group in (config.node_group_configs if config else ()):
            if group.max_count != 0:
                shapes.append({k: float(v) for k, v in group.resources.items()})
    except Exception as exc:  # older/newer Ray: fall back to the nodes that exist
        log.debug("no autoscaler node groups (%s)", exc)
    return shapes


def _autoscaler_config_reader():
    """A function that, run on the head, returns the worker node types of the config file the autoscaler of the
    running cluster reads: the autoscaler (Ray's monitor.py, started by `ray start --head`) is the process on
    that machine whose --logs-dir lies in the cluster's session folder, and `ray up` starts it with
    --autoscaling-config=~/ray_bootstrap_config.yaml (`~` its own HOME). No such file is looked for elsewhere:
    a ~/ray_bootstrap_config.yaml left by another cluster (an earlier `ray up`, or one whose node types have
    changed since) is not this cluster's unless its autoscaler reads it. Made here, so Ray ships it by value:
    the head need not hold this module (or this version of it)."""

    def read(session: str, proc: str = "/proc") -> dict:
        """{"config": the path or None, "types": [resources, ...] of the worker types that may start, "why":
        what was found}; "types" is None where this machine runs no autoscaler of the session."""
        import os
        import pwd

        import yaml

        try:
            pids = [p for p in os.listdir(proc) if p.isdigit()]
        except OSError as exc:
            return {"config": None, "types": None, "why": f"cannot list processes in {proc} ({exc})"}
        for pid in pids:
            try:
                with open(os.path.join(proc, pid, "cmdline"), "rb") as f:
                    argv = f.read().decode(errors="replace").split("\0")
            except OSError:
                continue
            flags = dict(a[2:].split("=", 1) for a in argv if a.startswith("--") and "=" in a)
            if (not any(a.endswith(("/autoscaler/_private/monitor.py", "/autoscaler/v2/monitor.py")) for a in argv)
                    or session not in flags.get("logs-dir", "").split(os.sep)):
                continue
            path = flags.get("autoscaling-config")
            if not path:
                return {"config": None, "types": [], "why": f"the cluster's autoscaler (pid {pid} on the head) reads "
                                                            "no config file (--autoscaling-config): it starts no nodes"}
            if path.startswith("~"):   # the autoscaler's own HOME, else its user's
                try:
                    with open(os.path.join(proc, pid, "environ"), "rb") as f:
                        home = dict(e.split("=", 1) for e in f.read().decode(errors="replace").split("\0")
                                    if "=" in e).get("HOME")
                except OSError:   # another user's process
                    home = None
                try:
                    home = home or pwd.getpwuid(os.stat(os.path.join(proc, pid)).st_uid).pw_dir
                except (OSError, KeyError):
                    home = os.path.expanduser("~")
                path = home + path[1:]
            if not os.path.isabs(path):   # `ray start --autoscaling-config=FILE` typed in a folder: the autoscaler's
                try:
                    path = os.path.join(os.readlink(os.path.join(proc, pid, "cwd")), path)
                except OSError:   # another user's process: where this task runs, as before
                    pass
            try:
                with open(path) as f:
                    config = yaml.safe_load(f)   # JSON, which YAML reads too
                limit = config.get("max_workers", 0)
                types = config.get("available_node_types") or {}
                return {"config": path, "why": f"the cluster's autoscaler (pid {pid} on the head) may start the "
                                               f"node types of {path}",
                        "types": [{k: float(v) for k, v in (node.get("resources") or {}).items()}
                                  for name, node in types.items() if name != config.get("head_node_type")
                                  and limit > 0 and node.get("max_workers", limit) > 0]}
            except Exception as exc:  # noqa: BLE001  (an unreadable file: only the running nodes are counted)
                return {"config": path, "types": [], "why": f"the node types of {path}, the config file of the "
                                                            f"cluster's autoscaler, cannot be read ({exc})"}
        return {"config": None, "types": None, "why": f"no process of the cluster's autoscaler (Ray's monitor.py "
                                                      f"of {session}) runs on the head"}

    return read


# Where a machine's processes are listed (Linux); elsewhere nothing is found and only running nodes count
PROC = "/proc"
# The head not answering this long, the driver says what it waits for (at most _launcher_node_types' timeout)
ANNOUNCE_AFTER_S = 5.0


def _head_and_session() -> tuple[str | None, str, str]:
    """(the head's node id, or None where it cannot be told; this driver's node id; the cluster's session name)."""
    import ray

    worker = ray._private.worker.global_worker   # private: GcsNodeInfo.is_head_node, the session's name
    heads = [i.hex() for i, n in worker.gcs_client.get_all_node_info().items() if n.is_head_node]
    return (heads[0] if heads else None), ray.get_runtime_context().get_node_id(), worker.node.session_name


def _launcher_node_types(timeout: float = 60.0) -> tuple[list[dict[str, float]], str]:
    """The node types the autoscaler of the connected cluster may start, read on its head (here, or by a task
    there that reserves nothing), and what was found; none where it reads no config file (a cluster started by
    hand) or cannot be asked, so only the running nodes count."""
    import ray

    read = _autoscaler_config_reader()
    try:
        head, here, session = _head_and_session()
        if head is None or head == here:
            answer = read(session, PROC)
        else:
            from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

            probe = ray.remote(num_cpus=0, max_retries=0)(read).options(
                scheduling_strategy=NodeAffinitySchedulingStrategy(head, soft=False))
            asked = probe.remote(session, PROC)
            said = min(ANNOUNCE_AFTER_S, timeout)
            ready, _ = ray.wait([asked], timeout=said)
            if not ready:   # a worker starting on a busy head, a runtime_env set up there: not a silent minute
                log.info("asking the cluster's head which node types its autoscaler may start (up to %.0f s more)",
                         timeout - said)
                ready, _ = ray.wait([asked], timeout=timeout - said)
            if not ready:
                ray.cancel(asked)   # not left waiting on the head for ever
                raise TimeoutError(f"the head did not answer within {timeout:g} s")
            answer = ray.get(asked)
    except Exception as exc:  # noqa: BLE001  (private APIs moved, a head that does not answer)
        why = f"could not ask the cluster's head which node types its autoscaler may start ({exc})"
        log.warning("%s: only the running nodes count", why)
        return [], why
    log.debug("node types: %s", answer["why"])
    return answer["types"] or [], answer["why"]


def check_resources(cpus: float, gpus: float, address: str | None = None) -> None:
    """A trial that no node can ever hold is an error now, not a silent PENDING (stack.md §5). On a cluster
    (`address`, or RAY_ADDRESS), the node types its autoscaler may start count too, where no running node holds
    a trial: only then is the head asked (a scan of its processes, up to a minute's wait for a task there)."""
    shapes, remedy = _node_shapes(), "add nodes"
    if (address or os.environ.get("RAY_ADDRESS")) and not _one_holds(shapes, cpus, gpus):
        types, why = _launcher_node_types()
        shapes, remedy = shapes + types, f"{remedy} ({why})"
    _refuse_unless_one_holds(shapes, cpus, gpus, "the largest node offers", remedy)


def check_local_resources(address: str | None, cpus: float, gpus: float) -> None:
    """The same check for the local Ray a sweep would start, made before Ray starts and before the data
    are decoded (a cold real data set takes a minute): `--profile paper` on a laptop without a GPU is
    refused at once. The machine's shape is what Ray itself would detect (its CPU count, and its GPU
    detection, which honours CUDA_VISIBLE_DEVICES); torch stays out of the driver. Nothing is checked
    here for a cluster, or a Ray already running: check_resources does that once connected."""
    import ray

    if address or os.environ.get("RAY_ADDRESS") or ray.is_initialized():
        return
    try:
        from ray._private.accelerators import get_accelerator_manager_for_resource
        from ray._private.utils import get_num_cpus

        shape = {"CPU": float(get_num_cpus()),
                 "GPU": float(get_accelerator_manager_for_resource("GPU").get_current_node_num_accelerators())}
    except Exception as exc:  # noqa: BLE001  (Ray's private helpers moved: check_resources still checks)
        log.debug("no local resource check before Ray starts (%s)", exc)
        return
    _refuse_unless_one_holds([shape], cpus, gpus, "this machine offers",
                             "pass --address (or set RAY_ADDRESS) to run on a cluster")


def _one_holds(shapes: list[dict], cpus: float, gpus: float) -> bool:
    return any(n.get("CPU", 0) >= cpus and n.get("GPU", 0) >= gpus for n in shapes)


def _refuse_unless_one_holds(shapes: list[dict], cpus: float, gpus: float, offers: str, remedy: str) -> None:
    if _one_holds(shapes, cpus, gpus):
        return
    biggest = max(shapes, key=lambda n: (n.get("GPU", 0), n.get("CPU", 0)), default={})
    raise SweepError(f"a trial asks for {cpus:g} CPU and {gpus:g} GPU, but {offers} "
                     f"{biggest.get('CPU', 0):g} CPU and {biggest.get('GPU', 0):g} GPU: lower "
                     f"--cpus-per-trial / --gpus-per-trial or {remedy}")


def check_nodes_see_files(storage: Path, tracking_uri: str, cpus: float, gpus: float, timeout: float = 120.0) -> None:
    """Every other node that could run a trial must see the driver's --storage folder (Tune copies each
    checkpoint there from the trial's node) and, for a sqlite store, the MLflow database (the trial opens it
    there). A node with a disk of its own does not: its trials fail at their first checkpoint (Tune's "A local
    path on the head node is not accessible by worker nodes"), after an epoch of work each, or, with sqlite,
    create an empty mlflow.db of their own and fail with "No Experiment with id=1 exists"; where no other
    node can run them, every trial fails so. Asked of each such node now, by a task that reserves nothing,
    so the sweep stops before any trial. Nodes an autoscaler starts later are not asked: sweeps.trainable
    checks the database and the storage folder where a trial starts."""
    import uuid

    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    here = ray.get_runtime_context().get_node_id()
    nodes = [n for n in ray.nodes() if n.get("Alive") and n["NodeID"] != here
             and n["Resources"].get("CPU", 0) >= cpus and n["Resources"].get("GPU", 0) >= gpus]
    if not nodes:
        return
    marker = storage / f".seen-by-every-node-{uuid.uuid4().hex}"
    marker.write_text("a sweep's driver checks that every node sees its --storage; deleted at once\n")
    paths = {"--storage": (str(marker), str(storage))}
    database = tracking.sqlite_path(tracking_uri)
    if database is not None:
        paths["--tracking-uri"] = (str(database), tracking_uri)

    def seen(paths: dict) -> dict:   # defined here, so Ray ships it by value: no import of this module there
        import os

        return {option: os.path.exists(path) for option, (path, _) in paths.items()}

    probe = ray.remote(num_cpus=0)(seen)
    try:
        refs = {n["NodeManagerAddress"]: probe.options(scheduling_strategy=NodeAffinitySchedulingStrategy(
            n["NodeID"], soft=False)).remote(paths) for n in nodes}
        try:
            answers = dict(zip(refs, ray.get(list(refs.values()), timeout=timeout)))
        except ray.exceptions.GetTimeoutError:
            log.warning("not every node answered within %g s whether it sees %s; going on unchecked", timeout,
                        ", ".join(p for _, p in paths.values()))
            return
    finally:
        marker.unlink(missing_ok=True)
    unseen = {option: sorted(ip for ip, answer in answers.items() if not answer[option]) for option in paths}
    if unseen.get("--tracking-uri"):
        raise SweepError(f"--tracking-uri {tracking_uri}: the node(s) {', '.join(unseen['--tracking-uri'])} that "
                         f"would run trials do not see the MLflow database {paths['--tracking-uri'][0]}, a file on "
                         "this machine: run an MLflow server every node reaches and pass --tracking-uri "
                         "http://HOST:5000 (cluster.yaml starts one on the head: MLFLOW_TRACKING_URI there)",
                         "--tracking-uri")
    if unseen["--storage"]:
        raise SweepError(f"--storage {storage}: the node(s) {', '.join(unseen['--storage'])} that would run "
                         "trials do not see this folder, and Tune copies each trial's checkpoints into it from "
                         "the trial's node: give a folder on storage every node mounts at the same path (NFS/EFS, "
                         "e.g. /mnt/shared/ray_results)", "--storage")
