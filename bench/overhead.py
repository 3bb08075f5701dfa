"""Benchmarks 1 and 5: what `sweeps run` costs beyond the training it runs, and how that cost grows.

1. Orchestration overhead. A fixed set of quick-profile cells (a table spec: 2 arms x k seeds, at the
   profile's own 12 epochs, and again shortened to 3) is run by `sweeps run` (the CLI itself, in a
   fresh Python process, as typed at a shell; see timed_cli) and by plain Python calling
   `transfer_core.engine.fit` on the very same TrialConfigs (same threads: 1 per trial): at
   concurrency 1 a freshly spawned process running the cells in turn (a researcher's own script,
   imports included, as each sweep's trial worker pays them), at concurrency 2 two such processes;
   and, as a strict extra, a loop in this already warm process. Overhead = (sweep wall - plain wall)
   / sweep wall, Ray's one-off start excluded (timed apart: the benchmark starts Ray once, each CLI
   process connects to it with --address, and that connection is set aside too). Full-length runs
   are interleaved A B B A A B (--reps), medians reported. Goal: <= 5 % of the sweep's wall time.
   At concurrency 2 one more pair runs cells of twice the profile's epochs; the extra wall time at the
   three cell lengths is fitted as fixed per sweep + per epoch, which says from what sweep size on the
   goal holds (the fixed part, the CLI's and the trial workers' start and imports and the report,
   does not shrink with the sweep; its share does).
   A timeline callback added to the Tune run (inside the CLI's process only, by CLI_PROCESS: the
   library is not changed) and time stamps around `prepare`, `connect_ray` and `run_sweep` split the
   sweep's extra time into: the CLI's start, before Ray, set-up before the first trial, the first trial's
   start (worker process, imports, MLflow's first use), later trials' start (Tune reuses the
   actor), per-epoch (MLflow log_epoch, checkpoint, tune.report), per-trial end (artifacts), and the
   report published at the end (tables, figures), the CLI's exit.
   --shipped NAME measures instead a shipped sweep as a researcher types it (`sweeps run
   mad_vs_dropout`: its own seeds, profile, epochs and concurrency, nothing overridden) against the
   same TrialConfigs in as many fresh plain processes as the sweep runs trials at once; written to
   results/overhead_shipped.json, beside the fixed set's results.
5. How cost grows: sweep wall time against the number of short cells (2, 4, 8 at concurrency 2) and
   against concurrency 1 -> 2 (speed-up, beside the plain processes' own speed-up on this machine).

    python bench/overhead.py            # ~40 minutes on 2 cores
    python bench/overhead.py --shipped mad_vs_dropout   # ~35 minutes: 15 cells x 12 epochs, 3 repetitions
    python bench/overhead.py --smoke    # ~2 minutes: smoke profile, tiny data, one repetition
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import math
import os
import sys
import textwrap
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

GOAL = 0.05
EVENTS: list[tuple] = []          # (kind, wall time, trial id, payload): the Tune timeline of the current sweep

SPEC = """
name: bench_overhead
title: Orchestration overhead benchmark
description: two arms x k seeds of short quick-profile cells
caption: Benchmark cells (bench/overhead.py).
kind: table
profile: {profile}
metric: sel_test_acc
mode: max
base:
  model.local_branch: true
  model.encoder: true
arms:
  - {{label: No dropping, set: {{model.drop_variant: none}}}}
  - {{label: MAD, set: {{model.drop_variant: mad}}}}
seeds: [0]
table: {{baseline: No dropping}}
"""


# --------------------------------------------------------------------------- the two ways to run the cells

def timeline_callback():
    from ray import tune

    class Timeline(tune.Callback):
        """Wall-clock events of the trials, recorded in the driver (module-level list: never pickled)."""

        def on_trial_start(self, iteration, trials, trial, **info):
            EVENTS.append(("start", time.time(), trial.trial_id, None))

        def on_trial_result(self, iteration, trials, trial, result, **info):
            EVENTS.append(("result", time.time(), trial.trial_id,
                           {"epoch": result.get("epoch"), "epoch_time_s": result.get("epoch_time_s"),
                            "time_this_iter_s": result.get("time_this_iter_s"),
                            "train_images_per_s": result.get("train_images_per_s")}))

        def on_trial_complete(self, iteration, trials, trial, **info):
            EVENTS.append(("complete", time.time(), trial.trial_id, None))

        def on_trial_error(self, iteration, trials, trial, **info):
            EVENTS.append(("error", time.time(), trial.trial_id, None))

    return Timeline()


def install_timeline() -> None:
    """Add the timeline callback to every Tune run that `run_sweep` builds (driver-side wrapper)."""
    from sweeps import runner

    if getattr(runner._tune_configs, "_bench_wrapped", False):
        return
    original = runner._tune_configs

    def wrapped(prepared, callback, name):
        EVENTS.append(("tune_configs", time.time(), None, None))   # run_sweep is about to build the Tuner
        tune_config, run_config = original(prepared, callback, name)
        run_config.callbacks.append(timeline_callback())
        return tune_config, run_config

    wrapped._bench_wrapped = True
    runner._tune_configs = wrapped
    original_publish = runner._publish

    def publish(*a, **kw):
        t0 = time.time()
        try:
            return original_publish(*a, **kw)
        finally:
            EVENTS.append(("publish", t0, None, time.time() - t0))

    runner._publish = publish


def spec_file(folder: Path, profile: str) -> str:
    path = folder / "bench_overhead.yaml"
    path.write_text(textwrap.dedent(SPEC.format(profile=profile)))
    return str(path)


def prepared_sweep(spec: str, tmp: Path, seeds: int, overrides: dict, concurrency: int, tag: str):
    from sweeps.runner import RunOptions, prepare

    options = RunOptions(seeds=seeds, overrides=overrides, max_concurrent=concurrency, cpus_per_trial=1,
                         tracking_uri=common.sqlite_uri(tmp), storage=str(tmp / "ray_results" / tag),
                         max_failures=0, fresh=True)
    return prepare(spec, options)


def trial_configs(prepared) -> list:
    """The TrialConfigs the sweep's trials run (runner.run_sweep sets num_threads the same way)."""
    threads = max(1, int(prepared.cpus_per_trial))
    return [dataclasses.replace(c.config, num_threads=c.config.num_threads or threads)
            for c in prepared.plan.cells]


def run_sweep_timed(spec: str, tmp: Path, seeds: int, overrides: dict, concurrency: int, tag: str,
                    keep_events: bool = False, expect: list | None = None) -> dict:
    """`sweeps run SPEC` of the fixed set, as a researcher types it, with these options (see timed_cli)."""
    argv = [spec, "--seeds", str(seeds), *cli_sets(overrides), "--max-concurrent", str(concurrency),
            "--cpus-per-trial", "1", "--max-failures", "0"]
    return timed_cli(argv, tmp, concurrency, tag, cells=2 * seeds, keep_events=keep_events, expect=expect)


def cli_sets(overrides: dict) -> list[str]:
    return [arg for k, v in overrides.items() for arg in ("--set", f"{k}={v}")]


# The sweep arm: the `sweeps` CLI in a brand-new Python process, as typed at a shell, with the
# timeline callback added and the library calls it makes stamped (nothing else changed).
CLI_PROCESS = r"""
import json, os, sys, time
marks = {"python_start": time.time()}
cpu = {}   # this process's CPU seconds (user + system, every thread) at the same stamps
sys.path.insert(0, sys.argv[1])
import overhead
from sweeps import cli
from transfer_core.config import config_hash

def stamped(name, fn, keep=None):
    def call(*a, **kw):
        marks[name + "_start"], cpu[name + "_start"] = time.time(), sum(os.times()[:2])
        try:
            out = fn(*a, **kw)
            if keep is not None:
                keep.append(out)
            return out
        finally:
            marks[name + "_end"], cpu[name + "_end"] = time.time(), sum(os.times()[:2])
    return call

prepared = []
set_up = cli._set_up_without_collections

def set_up_then_stamp():
    # the library is imported where `sweeps run` imports it (_execute, after its collector is turned off), not
    # before main(): imported earlier, with the collector on, its collections were counted in the CLI's start
    collecting_later = set_up()
    from sweeps import runner
    overhead.install_timeline()
    runner.prepare = stamped("prepare", runner.prepare, keep=prepared)
    for name in ("run_sweep", "connect_ray"):
        setattr(runner, name, stamped(name, getattr(runner, name)))
    return collecting_later

cli._set_up_without_collections = set_up_then_stamp
record, sys.argv = sys.argv[2], ["sweeps", *sys.argv[3:]]
try:
    cli.main()
finally:
    marks["main_end"], cpu["main_end"] = time.time(), sum(os.times()[:2])
    cells = sorted(config_hash(c) for c in overhead.trial_configs(prepared[0])) if prepared else []
    with open(record, "w") as fh:
        json.dump({"marks": marks, "cpu": cpu, "events": overhead.EVENTS, "trial_configs": cells}, fh)
"""


def ray_address() -> str:
    """The GCS address of the Ray this benchmark started (common.start_ray), for `--address`."""
    import ray

    return ray.get_runtime_context().gcs_address


def timed_cli(argv: list[str], tmp: Path, concurrency: int, tag: str, cells: int, keep_events: bool = False,
              expect: list | None = None, repo: Path | None = None, local_ray: bool = False) -> dict:
    """`sweeps run ARGV` in a fresh process, timed from its start to its exit, with the Tune timeline of
    its trials. The bench's own MLflow store and Tune storage, a fresh invocation, and the Ray this
    benchmark started (`--address`): connecting to it is Ray's start for that process, timed and set
    aside (`ray_connect_s`) as the goal sets Ray's one-off start aside; everything else counts (Python's
    start, the CLI's imports, prepare, the trials, the report, Ray's disconnect, the interpreter's exit).
    expect: the TrialConfigs the plain arm runs; the CLI's must be the very same (else RuntimeError).
    repo: the checkout whose `sweeps` runs (default this one; bench/fixed_cost.py compares two); local_ray: no
    --address, the CLI starts a local Ray of its own as a researcher's does (its start is set aside the same
    way, as `connect_ray`'s time)."""
    import json
    import subprocess

    from transfer_core.config import config_hash

    record = tmp / f"cli-{tag}.json"
    argv = ["run", *argv, "--tracking-uri", common.sqlite_uri(tmp), "--storage", str(tmp / "ray_results" / tag),
            "--fresh", *(() if local_ray else ("--address", ray_address()))]
    repo = Path(repo or common.REPO)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(repo), *filter(None, [os.environ.get("PYTHONPATH")])])}
    EVENTS.clear()
    sampler = RayCpu(local_ray=local_ray)
    t0 = time.time()
    with sampler:
        proc = subprocess.run([sys.executable, "-c", CLI_PROCESS, str(repo / "bench"), str(record), *argv],
                              cwd=repo, env=env, capture_output=True, text=True)
    t1 = time.time()
    if proc.returncode != 0 or not record.exists():
        raise RuntimeError(f"benchmark sweep {tag} (sweeps {' '.join(argv)}) exited {proc.returncode}:\n"
                           f"{proc.stderr[-3000:]}")
    rec = json.loads(record.read_text())
    if expect is not None and rec["trial_configs"] != sorted(config_hash(c) for c in expect):
        raise RuntimeError(f"benchmark sweep {tag}: `sweeps {' '.join(argv)}` ran other TrialConfigs than the "
                           "plain arm's: the comparison would not be like for like")
    m, events = rec["marks"], [tuple(e) for e in rec["events"]]
    connect = m["connect_ray_end"] - m["connect_ray_start"]
    out = {"wall_s": t1 - t0 - connect, "process_wall_s": t1 - t0, "ray_connect_s": connect,
           "startup_s": m["prepare_start"] - t0,                       # Python, the CLI's imports, option parsing
           "prepare_s": m["prepare_end"] - m["prepare_start"],
           "run_sweep_s": m["run_sweep_end"] - m["run_sweep_start"] - connect,
           "before_ray_s": m["connect_ray_start"] - m["prepare_end"],    # MLflow experiment, data decoded
           "marks": {k: v - t0 for k, v in sorted(m.items(), key=lambda kv: kv[1])},   # seconds from the start
           "exit_s": t1 - m["run_sweep_end"],                         # last lines, Ray disconnect, interpreter exit
           "cells": cells, "concurrency": concurrency,
           "timeline": analyse_timeline(events, m["connect_ray_end"], m["run_sweep_end"], concurrency)}
    if sampler.available and "cpu" in rec:
        out["cpu"] = {"driver_s": rec["cpu"]["main_end"], "window_s": t1 - t0,
                      "driver_trials_s": rec["cpu"]["run_sweep_end"] - rec["cpu"]["run_sweep_start"],
                      "run_sweep_wall_s": m["run_sweep_end"] - m["run_sweep_start"], **sampler.seconds}
    if keep_events:
        out["events"] = [(kind, t - m["connect_ray_end"], trial_id, payload) for kind, t, trial_id, payload in events]
    return out


class RayCpu:
    """CPU seconds (user + system) of the Ray processes on this machine while the block runs, by kind:
    Ray's daemons (raylet, GCS, log monitor, dashboard, agents: started once by this benchmark) and the
    sweep's worker processes (its trial actors). Read from /proc every 0.5 s; a worker that exits between
    two reads loses at most its last 0.5 s. A process's command line is read once (a read of every
    process's costs ~5 ms of CPU, 1 % of a core at this rate: it would be taken from the trials); a read
    of the known ones costs ~0.5 ms. Only this benchmark's own processes count (those descended from it: its
    Ray's daemons and workers, the CLI's own local Ray with `local_ray`), not another Ray on a shared machine.
    Not on Linux: nothing (available False)."""

    def __init__(self, interval_s: float = 0.5, local_ray: bool = False) -> None:
        self.available = Path("/proc/self/stat").exists()
        self.local_ray = local_ray   # the daemons start inside the block too (the CLI's own Ray)
        self.interval_s = interval_s
        self.seconds = {"ray_daemons_s": 0.0, "workers_s": 0.0}
        self._kinds: dict[int, str | None] = {}
        self._first: dict[int, float] = {}
        self._last: dict[int, tuple[str, float]] = {}
        self._ours: dict[int, bool] = {os.getpid(): True, 1: False, 0: False}
        self._stop = None

    def _descends_from_us(self, pid: int) -> bool:
        chain = []
        while pid not in self._ours:
            chain.append(pid)
            try:
                pid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                pid = 0
        for p in chain:
            self._ours[p] = self._ours[pid]
        return self._ours[pid]

    @staticmethod
    def _kind(cmdline: str, at_start: bool) -> tuple[str | None, bool]:
        """(kind, settled). The daemons run before the block starts; a Ray process that appears later is
        a worker, whose command line reads as its parent's or as default_worker.py until it renames
        itself after what it runs (ray::IDLE, ray::ImplicitFunc): only then is it settled."""
        if cmdline.startswith("ray::") and not cmdline.startswith(("ray::DashboardAgent", "ray::RuntimeEnvAgent")):
            return "workers_s", True
        if "default_worker.py" in cmdline:   # a worker that has not renamed itself yet
            return "workers_s", False
        if "/ray/" in cmdline or cmdline.startswith("ray::"):
            return ("ray_daemons_s", True) if at_start else ("workers_s", False)
        return None, True

    def _read(self) -> None:
        tick = os.sysconf("SC_CLK_TCK")
        for entry in os.listdir("/proc"):
            if not entry.isdigit() or int(entry) == os.getpid():
                continue
            pid = int(entry)
            try:
                if pid not in self._kinds and not self._descends_from_us(pid):
                    self._kinds[pid] = None
                    continue
                if pid in self._kinds:
                    kind = self._kinds[pid]
                else:
                    cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
                    kind, settled = self._kind(cmdline.decode(errors="replace"),
                                               at_start=self._stop is None or self.local_ray)
                    if settled:
                        self._kinds[pid] = kind
                if kind is None:
                    continue
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            seconds = (int(fields[11]) + int(fields[12])) / tick
            self._first.setdefault(pid, seconds if self._stop is None else 0.0)
            self._last[pid] = (kind, seconds)

    def __enter__(self) -> "RayCpu":
        import threading

        if not self.available:
            return self
        self._read()          # the daemons' CPU so far: what they spent before this block is not counted
        self._stop = threading.Event()

        def poll() -> None:
            while not self._stop.wait(self.interval_s):
                self._read()

        self._thread = threading.Thread(target=poll, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        if not self.available:
            return
        self._stop.set()
        self._thread.join()
        self._read()
        for pid, (kind, seconds) in self._last.items():
            self.seconds[kind] += seconds - self._first.get(pid, 0.0)


def loop_fit(configs: list) -> dict:
    """The plain loop: decode (cache hit) once, then fit each config in turn, in this process."""
    from transfer_core.data import load_splits
    from transfer_core.engine import fit

    t0 = time.time()
    data = load_splits(configs[0].data, configs[0].model.image_size)
    epoch_times = []
    for config in configs:
        history = fit(config, data=data)
        epoch_times += [r["epoch_time_s"] for r in history.records]
    return {"wall_s": time.time() - t0, "cells": len(configs), "concurrency": 1,
            "epoch_time_s_sum": sum(epoch_times), "epochs": len(epoch_times)}


_WORKER_DATA: dict = {}


def _pool_fit(config) -> list[float]:
    from transfer_core.data import load_splits
    from transfer_core.engine import fit

    key = (config.data, config.model.image_size)
    if key not in _WORKER_DATA:
        _WORKER_DATA[key] = load_splits(config.data, config.model.image_size)
    return [r["epoch_time_s"] for r in fit(config, data=_WORKER_DATA[key]).records]


def pool_fit(configs: list, workers: int = 2) -> dict:
    """Plain Python at concurrency 2: a pool of spawned processes, each calling fit (same threads)."""
    import resource

    def children_cpu() -> float:   # the pool's processes, once they have exited and been waited for
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        return usage.ru_utime + usage.ru_stime

    t0, cpu0 = time.time(), children_cpu()
    with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
        epoch_times = [t for times in pool.map(_pool_fit, configs) for t in times]
    return {"wall_s": time.time() - t0, "cells": len(configs), "concurrency": workers,
            "epoch_time_s_sum": sum(epoch_times), "epochs": len(epoch_times), "cpu_s": children_cpu() - cpu0}


# --------------------------------------------------------------------------- where the sweep's time goes

def analyse_timeline(events: list[tuple], t_run: float, t_end: float, concurrency: int) -> dict:
    """Split the run_sweep wall time by the Tune events of its trials.

    Per trial: start -> first result = trial start-up + epoch 1; consecutive results = one epoch + the
    per-epoch reporting; last result -> complete = the end of the trial (artifacts). Overheads are these
    intervals minus the epoch times the trial itself measured (fit's epoch_time_s)."""
    trials: dict[str, dict] = {}
    marks = {kind: (t, payload) for kind, t, _, payload in events if kind in ("tune_configs", "publish")}
    for kind, t, trial_id, payload in events:
        if kind in marks:
            continue
        tr = trials.setdefault(trial_id, {"results": []})
        if kind == "start":
            tr.setdefault("start", t)
        elif kind == "result":
            tr["results"].append((t, payload or {}))
        else:
            tr["end"] = t
    if not trials:
        return {}
    starts = [tr["start"] for tr in trials.values() if "start" in tr]
    ends = [tr["end"] for tr in trials.values() if "end" in tr]
    first_epoch_ovh, epoch_ovh, end_ovh, epoch_times, actor_start, in_trial_setup = [], [], [], [], [], []
    first_slots = []   # the first trial of each concurrent slot starts a worker process; later ones reuse it
    for i, tr in enumerate(sorted(trials.values(), key=lambda tr: tr.get("start", float("inf")))):
        results = tr["results"]
        if "start" not in tr or not results:
            continue
        t_first, first = results[0]
        (first_slots if i < concurrency else first_epoch_ovh).append(
            t_first - tr["start"] - float(first.get("epoch_time_s") or 0.0))
        if first.get("time_this_iter_s") is not None:   # the trainable's own clock, from its actor's start
            actor_start.append(t_first - tr["start"] - float(first["time_this_iter_s"]))
            in_trial_setup.append(float(first["time_this_iter_s"]) - float(first.get("epoch_time_s") or 0.0))
        epoch_times += [float(p.get("epoch_time_s") or 0.0) for _, p in results]
        for (t_a, _), (t_b, p_b) in zip(results, results[1:]):
            epoch_ovh.append(t_b - t_a - float(p_b.get("epoch_time_s") or 0.0))
        if "end" in tr:
            end_ovh.append(tr["end"] - results[-1][0])
    gaps = []   # at concurrency 1: from one trial's end to the next trial's start
    if concurrency == 1:
        ordered = sorted(trials.values(), key=lambda tr: tr.get("start", 0))
        gaps = [b["start"] - a["end"] for a, b in zip(ordered, ordered[1:]) if "end" in a and "start" in b]
    return {
        "setup_s": min(starts) - t_run,                  # decode, MLflow parent, Tuner, object store
        # of which before the Tuner is built: MLflow parent run and artifacts, decode, Ray checks
        "setup_before_tuner_s": marks["tune_configs"][0] - t_run if "tune_configs" in marks else None,
        "publish_s": marks["publish"][1] if "publish" in marks else None,   # of teardown: tables + figures
        "teardown_s": t_end - max(ends) if ends else None,   # report published (tables, figures), parent closed
        "first_trial_setup_s": common.median(first_slots) if first_slots else None,  # worker's first trial
        "trial_start_s": common.median(first_epoch_ovh) if first_epoch_ovh else None,  # later trials
        "actor_start_s": common.median(actor_start),      # of which: Tune's trial start -> the trainable runs
        "in_trial_setup_s": common.median(in_trial_setup),  # of which: inside the trainable before epoch 1 ends
        "per_epoch_s": common.median(epoch_ovh),          # per epoch: log_epoch, checkpoint, tune.report
        "trial_end_s": common.median(end_ovh),            # per trial: artifacts, model state, run closed
        "between_trials_s": common.median(gaps) if gaps else None,
        "epoch_time_s_sum": sum(epoch_times),
        "epochs": len(epoch_times),
        "trials": len(trials),
    }


def component_costs(config, tmp: Path, repeats: int = 10) -> dict:
    """The per-epoch reporting work of sweeps/trainable.py:on_epoch, timed alone in this process:
    transfer_core.engine.save_state (torch.save + fsync of the full state) and
    sweeps.tracking.CellRun.log_epoch (one MLflow log_batch to the sqlite store)."""
    import tempfile

    import torch

    from sweeps import tracking
    from sweeps.tracking import CellIdentity, CellRun
    from transfer_core.config import to_flat
    from transfer_core.engine import History, build_optimizer, build_scheduler, make_state, save_state
    from transfer_core.models import build_model

    model = build_model(config.model)
    optimizer = build_optimizer(model, config.optim)
    x = torch.randn(4, 3, config.model.image_size, config.model.image_size)
    model(x).sum().backward()
    optimizer.step()                                   # so the optimizer state exists, as after an epoch
    scheduler = build_scheduler(optimizer, config.optim)
    record = {"epoch": 1, "lr": 1e-3, "train_loss": 1.0, "train_acc": 0.5, "val_loss": 1.0, "val_acc": 0.5,
              "val_mca": 0.5, "test_loss": 1.0, "test_acc": 0.5, "test_mca": 0.5, "epoch_time_s": 1.0,
              "train_images_per_s": 100.0, "test_confusion": [[0] * 7] * 7}
    history = History(records=[record])
    state_times, sizes = [], []
    with tempfile.TemporaryDirectory(dir=tmp) as folder:
        for i in range(repeats):
            t0 = time.perf_counter()
            path = save_state(make_state(config, model, optimizer, scheduler, history), Path(folder) / f"s{i}.pt")
            state_times.append(time.perf_counter() - t0)
            sizes.append(path.stat().st_size)
    uri = common.sqlite_uri(tmp, "components.db")
    client = tracking.client_for(uri)
    experiment = tracking.ensure_experiment(client, "bench_components", uri)
    parent = tracking.start_parent(client, experiment, "bench_components", {})
    t0 = time.perf_counter()
    run = CellRun.open(uri, experiment, parent, CellIdentity("bench_components", "arm", "synthetic", 0, "cell",
                                                              "bench/arm/seed0"), "t0", to_flat(config), {})
    open_s = time.perf_counter() - t0
    log_times = []
    for epoch in range(1, repeats + 1):
        rec = {**record, "epoch": epoch}
        t0 = time.perf_counter()
        run.log_epoch(rec, History(records=[rec]).summary())
        log_times.append(time.perf_counter() - t0)
    return {"save_state_s": common.median(state_times), "state_bytes": sizes[0],
            "log_epoch_s": common.median(log_times), "cellrun_open_s": open_s}


def _fresh_worker_steps(uri: str) -> dict:
    """In a brand-new Ray actor process: what a trial worker does before its first trial trains, step by step
    (run there by fresh_process_costs)."""
    import time

    from ray.tune.trainable import function_trainable  # noqa: F401  (loading Tune's trial actor imports it first)

    marks, t = {}, time.perf_counter()
    import sweeps.trainable                                  # what loading the trial actor's class imports
    marks["import_trainable_s"] = time.perf_counter() - t
    t = time.perf_counter()
    with sweeps.trainable._first_imports_without_collections(uri):   # as train_cell's first trial imports them
        import transfer_core.data  # noqa: F401
        import transfer_core.engine  # noqa: F401
        import transfer_core.models  # noqa: F401
    marks["fit_lazy_imports_s"] = time.perf_counter() - t
    t = time.perf_counter()
    from sweeps import tracking

    tracking.client_for(uri).search_experiments(max_results=1)   # first use of the store in this process
    marks["mlflow_store_first_use_s"] = time.perf_counter() - t
    return marks


def fresh_process_costs(tmp: Path, repeats: int = 2) -> dict:
    """What a brand-new trial worker process pays before a trial can train, step by step (min of `repeats`), each
    in a fresh Ray actor of the benchmark's Ray as a trial's is (Tune's trainable class imported first):
    importing sweeps.trainable (Ray Tune, MLflow), train_cell's and fit's lazy imports (torch, torchvision) and
    the store's module, MLflow's store on first use."""
    import ray

    from sweeps import tracking

    uri = common.sqlite_uri(tmp, "fresh.db")
    tracking.ensure_experiment(tracking.client_for(uri), "bench_fresh", uri)    # the schema exists already

    @ray.remote(num_cpus=1)
    class FreshWorker:
        def steps(self, uri: str) -> dict:
            return _fresh_worker_steps(uri)

    runs = []
    for _ in range(repeats):
        actor = FreshWorker.options(runtime_env={"env_vars": {"PYTHONPATH": os.pathsep.join(
            [str(common.REPO), str(common.BENCH_DIR)])}}).remote()
        try:
            runs.append(ray.get(actor.steps.remote(uri)))
        except ray.exceptions.RayError as exc:
            print(f"fresh worker costs not measured: {exc}")
        finally:
            ray.kill(actor)
    return {**{k: min(r[k] for r in runs) for k in runs[0]}, "worker_steps": "actor"} if runs else {}


# --------------------------------------------------------------------------- the benchmark

def _plain(kind: str, configs: list) -> dict:
    """script: a fresh process running the cells one after the other (what `python my_loop.py` costs,
    imports included); pool: 2 fresh processes; loop: this warm process (no imports, kernels warm)."""
    if kind == "loop":
        return loop_fit(configs)
    return pool_fit(configs, workers=1 if kind == "script" else 2)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    common.standard_args(parser, "overhead")
    parser.add_argument("--epochs", type=int, default=None, help="epochs per cell (default: the profile's)")
    parser.add_argument("--short-epochs", type=int, default=3, help="epochs per cell of the short-cell runs")
    parser.add_argument("--seeds", type=int, default=2, help="seeds per arm: cells = 2 x seeds (default 4 cells)")
    parser.add_argument("--reps", type=int, default=3,
                        help="repetitions of each full-length comparison, interleaved A B B A A B ... (default 3)")
    parser.add_argument("--long-epochs", type=int, default=None,
                        help="epochs per cell of the long-cell pair at concurrency 2 (default: twice the profile's)")
    parser.add_argument("--shipped", metavar="SWEEP", default=None,
                        help="measure only this shipped table sweep as typed (e.g. mad_vs_dropout: its seeds, "
                             "profile and concurrency) against plain processes; writes results/overhead_shipped.json")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    if args.shipped:
        check_shipped(args.shipped)
    tmp = common.bench_env()
    machine = common.machine()
    install_timeline()
    if args.shipped:
        return shipped_main(args, tmp, machine)
    from search_spaces import load_profile
    from transfer_core.data import load_splits

    profile = "smoke" if args.smoke else "quick"
    profile_epochs = load_profile(profile).config().optim.epochs
    epochs = 2 if args.smoke else (args.epochs or profile_epochs)
    short = 1 if args.smoke else args.short_epochs
    long_ = 3 if args.smoke else (args.long_epochs or 2 * profile_epochs)
    seeds = 1 if args.smoke else args.seeds
    extra = {"data.synthetic_per_class": 8} if args.smoke else {}
    overrides = {"optim.epochs": epochs, **extra}
    short_overrides = {"optim.epochs": short, **extra}
    long_overrides = {"optim.epochs": long_, **extra}
    spec = spec_file(tmp, profile)
    log = print

    ray_start_s = common.start_ray(2)
    log(f"ray.init {ray_start_s:.1f} s")
    configs = trial_configs(prepared_sweep(spec, tmp, seeds, overrides, 1, "plan"))
    short_configs = trial_configs(prepared_sweep(spec, tmp, seeds, short_overrides, 1, "plan-short"))
    long_configs = trial_configs(prepared_sweep(spec, tmp, seeds, long_overrides, 1, "plan-long"))
    cache_s, _ = common.timed(lambda: load_splits(configs[0].data, configs[0].model.image_size))  # warm the cache

    # one-off costs, measured and set aside: the first sweep in a fresh Ray (MLflow schema) and the
    # first fit in this process
    warm = {"first_sweep_s": run_sweep_timed(spec, tmp, 1, {**overrides, "optim.epochs": 1}, 2, "warm")["wall_s"],
            "first_loop_s": loop_fit(configs[:1])["wall_s"], "decode_s": cache_s}
    log(f"warm-up {warm}")

    runs: dict[str, list[dict]] = {}

    def plain(key: str, kind: str, cfgs: list) -> None:
        runs.setdefault(key, []).append(_plain(kind, cfgs))
        log(f"{key}: {runs[key][-1]['wall_s']:.1f} s")

    def sweep(key: str, c: int, over: dict, cfgs: list) -> None:
        r = run_sweep_timed(spec, tmp, seeds, over, c, f"{key}-{len(runs.get(key, []))}", expect=cfgs)
        runs.setdefault(key, []).append(r)
        log(f"{key}: {r['wall_s']:.1f} s")

    # full-length cells: A B B A A B ... at concurrency 1 (a fresh script process), then at 2 (2
    # processes); the warm in-process loop once (the strict baseline)
    reps = 1 if args.smoke else max(1, args.reps)
    for c, key, kind in ((1, "script_c1", "script"), (2, "pool_c2", "pool")):
        for which in interleaved(reps):
            plain(key, kind, configs) if which == "plain" else sweep(f"sweep_c{c}", c, overrides, configs)
    plain("loop_c1", "loop", configs)
    # short cells: one of each
    for key, kind in (("short_script_c1", "script"), ("short_loop_c1", "loop"), ("short_pool_c2", "pool")):
        plain(key, kind, short_configs)
    for c in (1, 2):
        sweep(f"short_sweep_c{c}", c, short_overrides, short_configs)
    # long cells at concurrency 2, one pair: how the fixed cost amortises as the sweep grows
    plain("long_pool_c2", "pool", long_configs)
    sweep("long_sweep_c2", 2, long_overrides, long_configs)

    # 5: cells 2 / 4 / 8 at concurrency 2, short cells (4 is the run above)
    scaling = {}
    for s in ((2,) if args.smoke else (1, 4)):    # seeds per arm -> 2, 8 cells
        r = run_sweep_timed(spec, tmp, s, short_overrides, 2, f"scale{s}")
        scaling[str(r["cells"])] = r["wall_s"]
        log(f"scaling {r['cells']} cells: {r['wall_s']:.1f} s")
    scaling[str(len(configs))] = common.median(r["wall_s"] for r in runs["short_sweep_c2"])

    components = component_costs(configs[0], tmp)
    components.update(fresh_process_costs(tmp))
    log(f"components {components}")

    payload = {
        "params": {"sweep_arm": "cli_process", "profile": profile, "epochs_per_cell": epochs,
                   "short_epochs_per_cell": short,
                   "cells": len(configs), "arms": 2, "seeds": seeds, "repetitions": reps, "overrides": overrides,
                   "long_epochs_per_cell": long_,
                   "profile_epochs": profile_epochs, "threads_per_trial": configs[0].num_threads,
                   "data": {"synthetic_per_class": configs[0].data.synthetic_per_class,
                            "image_size": configs[0].model.image_size}},
        "ray_start_s": ray_start_s, "warm_up": warm, "runs": runs, "scaling_c2": scaling,
        "components": components,
    }
    payload["derived"] = derive(payload)
    return finish("overhead", payload, machine, args, tmp)


def finish(name: str, payload: dict, machine: dict, args, tmp: Path) -> int:
    """results/<name>.json and RESULTS.md, then Ray down and the temporary folder gone."""
    import ray

    print(f"wrote {common.write_result(name, payload, machine, common.out_dir_for(args), smoke=args.smoke)}")
    ray.shutdown()
    common.cleanup(tmp)
    return 0


# --------------------------------------------------------------------------- 1, a shipped sweep as typed

def check_shipped(name: str) -> None:
    """A table sweep that ships with search_spaces, or a clear error before Ray starts."""
    from search_spaces import list_sweeps, load

    names = [n for n, _ in list_sweeps()]
    if name not in names:
        raise SystemExit(f"--shipped {name!r}: not a shipped sweep; expected one of {', '.join(names)}")
    if load(name).kind != "table":
        raise SystemExit(f"--shipped {name!r} is a {load(name).kind} sweep: its trials are sampled, so the plain "
                         "arm would have nothing fixed to run; give a table sweep (e.g. mad_vs_dropout)")


def shipped_options(tmp: Path, tag: str, smoke: bool, overrides: dict, seeds: int | None = None):
    """What `sweeps run NAME` uses, but for the bench's own MLflow store and Tune storage (and, fresh,
    so that a repetition reruns the cells instead of finding them recorded)."""
    from sweeps.runner import RunOptions

    return RunOptions(profile="smoke" if smoke else None, seeds=seeds, overrides=overrides,
                      tracking_uri=common.sqlite_uri(tmp), storage=str(tmp / "ray_results" / tag), fresh=True)


def shipped_main(args, tmp: Path, machine: dict) -> int:
    """`sweeps run NAME` as shipped (its seeds, epochs and concurrency) against the same TrialConfigs in
    as many fresh plain processes as the sweep runs trials at once, interleaved A B B A ..."""
    import ray

    from sweeps.runner import prepare
    from transfer_core.data import load_splits

    log = print
    overrides = {"data.synthetic_per_class": 8} if args.smoke else {}
    ray_start_s = common.start_ray(2)
    plan = prepare(args.shipped, shipped_options(tmp, "plan", args.smoke, overrides))
    configs = trial_configs(plan)
    concurrency = plan.max_concurrent or int(ray.cluster_resources().get("CPU", 1) // plan.cpus_per_trial)
    cache_s, _ = common.timed(lambda: load_splits(configs[0].data, configs[0].model.image_size))
    def shipped_argv(over: dict, seeds: int | None = None) -> list[str]:
        return [args.shipped, *(["--profile", "smoke"] if args.smoke else []), *cli_sets(over),
                *(["--seeds", str(seeds)] if seeds else [])]

    cells = len(configs)
    # the first sweep in a fresh Ray (MLflow's schema, first workers) is a one-off: timed and set aside
    warm = {"first_sweep_s": timed_cli(shipped_argv({**overrides, "optim.epochs": 1}, seeds=1), tmp, concurrency,
                                       "warm", cells=len({c.arm for c in plan.plan.cells}))["wall_s"],
            "decode_s": cache_s}
    log(f"warm-up {warm}")
    runs: dict[str, list[dict]] = {"plain": [], "sweep": []}
    for which in interleaved(1 if args.smoke else max(1, args.reps)):
        if which == "plain":
            runs["plain"].append(pool_fit(configs, workers=concurrency))
        else:
            runs["sweep"].append(timed_cli(shipped_argv(overrides), tmp, concurrency, f"sweep-{len(runs['sweep'])}",
                                           cells=cells, expect=configs))
        log(f"{which}: {runs[which][-1]['wall_s']:.1f} s")
    c0 = configs[0]
    payload = {
        "part": "shipped",
        "params": {"sweep_arm": "cli_process", "sweep": args.shipped, "profile": plan.profile.name,
                   "cells": len(configs),
                   "arms": len({c.arm for c in plan.plan.cells}), "seeds": len({c.seed for c in plan.plan.cells}),
                   "epochs_per_cell": c0.optim.epochs, "concurrency": concurrency,
                   "repetitions": len(runs["sweep"]), "threads_per_trial": c0.num_threads,
                   "overrides": overrides,
                   "data": {"synthetic_per_class": c0.data.synthetic_per_class, "image_size": c0.model.image_size}},
        "ray_start_s": ray_start_s, "warm_up": warm, "runs": runs,
        "fixed_set_fit": fixed_set_fit(common.out_dir_for(args)),
    }
    payload["derived"] = derive_shipped(payload)
    return finish("overhead_shipped", payload, machine, args, tmp)


def fixed_set_fit(results_dir: Path) -> dict | None:
    """The fixed set's size fit (results/overhead.json), to check its prediction on the shipped sweep."""
    recorded = common.load_results(results_dir).get("overhead")
    if recorded is None:
        return None
    fit_ = recorded.get("derived", {}).get("size_fit_c2")
    return fit_ and {"date": recorded.get("date"), "fixed_s": fit_["fixed_s"],
                     "per_epoch_slot_s": fit_["per_epoch_slot_s"]}


def derive_shipped(p: dict) -> dict:
    med = medians(p["runs"])
    trial_epochs = p["params"]["cells"] * p["params"]["epochs_per_cell"]
    # the i-th plain and the i-th sweep ran side by side in one repetition (see `interleaved`)
    pairs = zip(p["runs"]["plain"], p["runs"]["sweep"])
    out = {"median_wall_s": med, "overhead": (med["sweep"] - med["plain"]) / med["sweep"],
           "overhead_per_repetition": [(s["wall_s"] - q["wall_s"]) / s["wall_s"] for q, s in pairs],
           "trial_epochs": trial_epochs}
    fit_ = p.get("fixed_set_fit")
    if fit_:  # the fit's extra time at this size, over the plain wall measured here
        extra = fit_["fixed_s"] + fit_["per_epoch_slot_s"] * trial_epochs / p["params"]["concurrency"]
        out["predicted_overhead"] = extra / (med["plain"] + extra)
    return out


def _shipped_label(p: dict) -> str:
    return (f"the shipped `{p['sweep']}` sweep as typed ({p['cells']} cells x {p['epochs_per_cell']} epochs, "
            f"concurrency {p['concurrency']})")


def _per_repetition(d: dict) -> str:
    """Each repetition's own overhead: how far the run-to-run noise of training moves the median."""
    each = d.get("overhead_per_repetition") or []
    return f" (per repetition: {', '.join(_pct(o) for o in each)})" if len(each) > 1 else ""


def summary_shipped(r: dict) -> list[list[str]]:
    o = r["derived"]["overhead"]
    return [["1", f"orchestration overhead, {_shipped_label(r['params'])}", _pct(o) + _per_repetition(r["derived"]),
             "<= 5 %", common.verdict(o <= GOAL)]]


def render_shipped(r: dict) -> list[tuple[int, str]]:
    p, d = r["params"], r["derived"]
    med = d["median_wall_s"]

    head = _head(r)
    what = (f"**A shipped sweep as a researcher types it:** `sweeps run {p['sweep']}` ({p['arms']} arms x "
            f"{p['seeds']} seeds = {p['cells']} cells of the `{p['profile']}` profile, {p['epochs_per_cell']} "
            f"epochs each, {d['trial_epochs']} trial-epochs; {p['concurrency']} trials at once, the profile's "
            "default on this machine; nothing overridden but the MLflow store and Tune storage, both in a "
            f"temporary folder; {_sweep_arm(r)}) against the very same TrialConfigs in "
            f"{p['concurrency']} fresh plain Python processes taking the cells in turn. Ray's one-off start "
            f"({r['ray_start_s']:.1f} s) and the first sweep in the fresh Ray ({r['warm_up']['first_sweep_s']:.1f} s, "
            f"1 epoch) are excluded; {p['repetitions']} repetition{'s' if p['repetitions'] != 1 else ''} "
            "interleaved (plain, sweep, sweep, plain, ...), medians, each run's wall in brackets.")
    table = common.md_table(["sweep", "plain wall (s)", "sweep wall (s)", "overhead = (sweep - plain) / sweep",
                             "goal <= 5 %"],
                            [[f"`{p['sweep']}`", _walls(r, med, "plain"), _walls(r, med, "sweep"), _pct(d["overhead"]) + _per_repetition(d),
                              common.verdict(d["overhead"] <= GOAL)]])
    lines = [head, "", what, "", table]
    sweeps_ = r["runs"]["sweep"]
    if sweeps_ and all(x.get("startup_s") is not None for x in sweeps_):
        def part(k: str) -> float:
            return common.median(x[k] for x in sweeps_)

        lines += ["", "Of the sweep's wall time (medians): the CLI's start (Python, its imports) "
                  f"{part('startup_s'):.1f} s; "
                  + (f"before Ray (MLflow experiment, the data decoded from the cache) {part('before_ray_s'):.1f} s; "
                     if all(x.get("before_ray_s") is not None for x in sweeps_) else "")
                  + "from Ray connected to the first trial's start (MLflow parent run, Tuner, worker processes) "
                  f"{common.median(x['timeline']['setup_s'] for x in sweeps_):.1f} s; the report (tables and figures) "
                  f"{common.median(x['timeline']['publish_s'] for x in sweeps_):.1f} s; the CLI's end (Ray "
                  f"disconnected, the interpreter's exit) {part('exit_s'):.1f} s. The trials' own epochs summed to "
                  f"{common.median(x['timeline']['epoch_time_s_sum'] for x in sweeps_):.0f} s against the plain "
                  f"processes' {common.median(x['epoch_time_s_sum'] for x in r['runs']['plain']):.0f} s (each "
                  "run's: " + ", ".join(f"{x['timeline']['epoch_time_s_sum']:.0f}" for x in sweeps_) + " against "
                  + ", ".join(f"{x['epoch_time_s_sum']:.0f}" for x in r["runs"]["plain"]) + "): the training "
                  "itself varies by a few percent from run to run on this machine."]
    if sweeps_ and all("cpu" in x for x in sweeps_) and all("cpu_s" in x for x in r["runs"]["plain"]):
        def cpu(k: str) -> float:
            return common.median(x["cpu"][k] for x in sweeps_)

        def share(seconds: float, wall: float) -> str:
            return f"{100 * seconds / wall:.1f} % of a core"

        wall, trials_wall = cpu("window_s"), cpu("run_sweep_wall_s")
        lines += ["", "CPU time while the sweep ran (medians; user + system, read from /proc): the sweep's "
                  f"worker processes {cpu('workers_s'):.0f} s against the plain processes' "
                  f"{common.median(x['cpu_s'] for x in r['runs']['plain']):.0f} s; outside the trials, the "
                  f"driver (the CLI's process) {cpu('driver_s'):.1f} s in all, of which "
                  f"{cpu('driver_trials_s'):.1f} s in `run_sweep` ({share(cpu('driver_trials_s'), trials_wall)} "
                  f"over its {trials_wall:.0f} s: Tune's loop, the MLflow parent run, the report), and Ray's "
                  f"daemons (raylet, GCS, log monitor, dashboard, agents) {cpu('ray_daemons_s'):.1f} s "
                  f"({share(cpu('ray_daemons_s'), wall)}). On {p['concurrency']} trials at once on this "
                  "machine's cores, what the driver and the daemons use is taken from the trials."]
    if "predicted_overhead" in d:
        f_ = r["fixed_set_fit"]
        lines += ["", f"The fixed set's size fit above ({f_['fixed_s']:.1f} s per sweep + "
                  f"{f_['per_epoch_slot_s']:.3f} s per epoch of a slot, measured {f_['date']}) predicted "
                  f"{_pct(d['predicted_overhead'])} for this sweep's "
                  f"{d['trial_epochs']} trial-epochs over the plain wall measured here."]
    return [(1, "\n".join(lines))]


def interleaved(reps: int) -> list[str]:
    """plain, sweep, sweep, plain, plain, sweep, ...: neither arm always runs first or on a warmer machine."""
    pairs = [["plain", "sweep"], ["sweep", "plain"]]
    return [which for i in range(reps) for which in pairs[i % 2]]


# (row key, sweep runs, plain runs, what the plain arm is)
COMPARISONS = (
    ("c1", "sweep_c1", "script_c1", "1 (one trial at a time)", "a fresh process running the cells in turn"),
    ("c2", "sweep_c2", "pool_c2", "2 (the default here)", "2 fresh processes sharing the cells"),
    ("c1_strict", "sweep_c1", "loop_c1", "1, strict", "this warm process (imported, kernels warm)"),
    ("short_c1", "short_sweep_c1", "short_script_c1", "1, short cells", "a fresh process"),
    ("short_c2", "short_sweep_c2", "short_pool_c2", "2, short cells", "2 fresh processes"),
    ("short_c1_strict", "short_sweep_c1", "short_loop_c1", "1, short cells, strict", "this warm process"),
    ("long_c2", "long_sweep_c2", "long_pool_c2", "2, long cells", "2 fresh processes"),
)

# the concurrency-2 comparisons at three cell lengths, for the size fit: (sweep runs, plain runs, epochs key)
C2_SIZES = (("short_sweep_c2", "short_pool_c2", "short_epochs_per_cell"), ("sweep_c2", "pool_c2", "epochs_per_cell"),
            ("long_sweep_c2", "long_pool_c2", "long_epochs_per_cell"))


def _line(points: list[tuple[float, float]]) -> tuple[float, float]:
    """Least-squares intercept and slope of y on x."""
    xm = sum(x for x, _ in points) / len(points)
    ym = sum(y for _, y in points) / len(points)
    slope = sum((x - xm) * (y - ym) for x, y in points) / sum((x - xm) ** 2 for x, _ in points)
    return ym - slope * xm, slope


def size_fit(p: dict, med: dict) -> dict | None:
    """At concurrency 2: the sweep's extra wall time as fixed + per epoch of one slot, fitted over the
    three cell lengths, and the smallest sweep (trial-epochs) whose overhead the fit puts within the goal.

    With n epochs per slot, plain wall = P0 + p n and extra = F + e n, so the overhead
    (F + e n) / (P0 + F + (p + e) n) falls to GOAL at n* = (F - GOAL (P0 + F)) / (GOAL (p + e) - e)."""
    cells = p["params"]["cells"]
    pts = [(cells * p["params"][ek] / 2, med[sw], med[pl]) for sw, pl, ek in C2_SIZES
           if p["params"].get(ek) and med.get(sw) and med.get(pl)]
    if len({n for n, _, _ in pts}) < 2:
        return None
    fixed, per_epoch = _line([(n, sw - pl) for n, sw, pl in pts])
    plain0, plain_per_epoch = _line([(n, pl) for n, _, pl in pts])
    denom = GOAL * (plain_per_epoch + per_epoch) - per_epoch
    n_star = (fixed - GOAL * (plain0 + fixed)) / denom if denom > 0 else None
    return {"points": [{"epochs_per_slot": n, "sweep_s": sw, "plain_s": pl} for n, sw, pl in pts],
            "fixed_s": fixed, "per_epoch_slot_s": per_epoch, "plain_fixed_s": plain0,
            "plain_per_epoch_slot_s": plain_per_epoch,
            "asymptotic_overhead": per_epoch / (plain_per_epoch + per_epoch),
            "goal_from_trial_epochs": None if n_star is None else max(0.0, 2 * n_star)}


def derive(p: dict) -> dict:
    runs = p["runs"]
    med = medians(runs)
    out = {"median_wall_s": med, "overhead": {}}
    for key, sweep, plain, _, _ in COMPARISONS:
        if med.get(sweep) and med.get(plain):
            out["overhead"][key] = (med[sweep] - med[plain]) / med[sweep]
    if med.get("sweep_c1") and med.get("sweep_c2"):
        out["speedup_sweep"] = med["sweep_c1"] / med["sweep_c2"]
    if med.get("script_c1") and med.get("pool_c2"):
        out["speedup_plain"] = med["script_c1"] / med["pool_c2"]
    # the c=1 timeline of the full-length cells, medians over repetitions
    tl = [r["timeline"] for r in runs.get("sweep_c1", []) if r.get("timeline")]
    if tl:
        keys = ("setup_s", "setup_before_tuner_s", "teardown_s", "publish_s", "trial_start_s", "actor_start_s",
                "in_trial_setup_s", "first_trial_setup_s", "per_epoch_s", "trial_end_s", "between_trials_s")
        t = {k: common.median(x[k] for x in tl if x.get(k) is not None) if any(x.get(k) is not None for x in tl)
             else None for k in keys}
        for k in ("prepare_s", "startup_s", "before_ray_s", "exit_s", "ray_connect_s"):  # but prepare: the CLI process
            have = [r[k] for r in runs["sweep_c1"] if r.get(k) is not None]
            t[k] = common.median(have) if have else None
        out["timeline_c1"] = t
        n, e = p["params"]["cells"], p["params"]["epochs_per_cell"]
        later = t["trial_start_s"] or 0.0
        parts = {} if t["startup_s"] is None else {
            "the CLI's start: Python, its imports (MLflow, Ray Tune), option parsing": t["startup_s"]}
        parts |= {"prepare (validation, MLflow store check)": t["prepare_s"]}
        if t["before_ray_s"] is not None:
            parts["before Ray: MLflow experiment, the data decoded (a cache hit)"] = t["before_ray_s"]
        parts |= {"set-up before the first trial starts (Tuner, trial actor process, imports)": t["setup_s"],
                  "first trial: in-trial start-up (MLflow first use, first torch steps)":
                      (t["first_trial_setup_s"] or later),
                  "later trials: start-up x (cells - 1)": (n - 1) * later,
                  "per-epoch reporting x epochs": n * e * t["per_epoch_s"],
                  "trial end x cells": n * t["trial_end_s"],
                  "between trials x (cells - 1)": (n - 1) * (t["between_trials_s"] or 0.0),
                  "after the last trial (report published, parent closed)": t["teardown_s"] or 0.0}
        if t["exit_s"] is not None:
            parts["the CLI's end: its last lines, Ray disconnected, the interpreter's exit"] = t["exit_s"]
        in_sweep = common.median(r["timeline"]["epoch_time_s_sum"] for r in runs["sweep_c1"])
        in_loop = common.median(r["epoch_time_s_sum"] for r in runs["script_c1"])
        out["training_s"] = {"sweep": in_sweep, "script": in_loop}
        parts["training slower inside the trials (sum of epoch times)"] = in_sweep - in_loop
        out["breakdown_c1_s"] = parts
    fit_c2 = size_fit(p, med)
    if fit_c2:
        out["size_fit_c2"] = fit_c2
    sc = p["scaling_c2"]
    if len(sc) >= 2:
        intercept, slope = _line([(int(k), v) for k, v in sc.items()])
        out["scaling_fit"] = {"intercept_s": intercept, "per_cell_s": slope}
    return out


# --------------------------------------------------------------------------- RESULTS.md

def medians(runs: dict[str, list[dict]]) -> dict[str, float]:
    """Median wall time of each kind of run."""
    return {k: common.median(r["wall_s"] for r in v) for k, v in runs.items() if v}


def _walls(r: dict, med: dict, key: str) -> str:
    """The median wall time of `key`'s runs, each run's in brackets when there are several."""
    each = [x["wall_s"] for x in r["runs"][key]]
    return f"{med[key]:.1f}" + (f" ({', '.join(f'{w:.1f}' for w in each)})" if len(each) > 1 else "")


def _sweep_arm(r: dict) -> str:
    """How the sweep arm was run: the CLI in its own process (since 2026-11-28), or, in results recorded
    before, the library calls in this benchmark's already warm process (driver imports not counted)."""
    runs = [x for key, v in r["runs"].items() if "sweep" in key for x in v]
    if runs and all("process_wall_s" in x for x in runs):
        connect = common.median(x["ray_connect_s"] for x in runs)
        return ("the `sweeps` CLI as typed, each run in a brand-new Python process timed from its start to its "
                "exit (its imports, the report, Ray's disconnect and the interpreter's exit all count), "
                f"connected with `--address` to the Ray this benchmark started (the connection, {connect:.2f} s, "
                "is set aside with Ray's start)")
    return ("the library calls the CLI makes (`prepare` + `run_sweep`) in this benchmark's own process, "
            "already imported: the CLI process's own imports and exit are NOT counted (recorded before the "
            "sweep arm ran the CLI in a fresh process)")


def _head(r: dict) -> str:
    return (f"*Measured {r['date']}{' (SMOKE: tiny sizes, not a measurement)' if r.get('smoke') else ''}. "
            f"Machine: {common.machine_line(r['machine'])}.*")


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f} %"


def summary(r: dict) -> list[list[str]]:
    if r.get("part") == "shipped":
        return summary_shipped(r)
    d = r["derived"]
    o = d.get("overhead", {})
    p = r["params"]
    rows = []
    for key, label in (("c1", "concurrency 1 (sweep vs a plain script running the cells in turn)"),
                       ("c2", "concurrency 2 (sweep vs 2 plain processes)")):
        if key in o:
            rows.append(["1", f"orchestration overhead, {p['epochs_per_cell']}-epoch quick cells, {label}",
                         _pct(o[key]), "<= 5 %", common.verdict(o[key] <= GOAL)])
    strict = [f"{_pct(o[k])} ({lab})" for k, lab in (("c1_strict", f"{p['epochs_per_cell']}-epoch cells"),
                                                      ("short_c1_strict", f"{p['short_epochs_per_cell']}-epoch"))
              if k in o]
    if strict:
        rows.append(["1", "overhead at concurrency 1 against an already warm in-process loop (strict)",
                     "; ".join(strict), "<= 5 %", common.verdict(all(o[k] <= GOAL for k in ("c1_strict",
                                                                                           "short_c1_strict")
                                                                        if k in o))])
    if "size_fit_c2" in d:
        sf = d["size_fit_c2"]
        n_goal = sf["goal_from_trial_epochs"]
        rows.append(["1", f"overhead at concurrency 2 by sweep size (fit over {len(sf['points'])} cell lengths): "
                     "per sweep + per epoch; size from which it is <= 5 %",
                     f"{sf['fixed_s']:.1f} s + {sf['per_epoch_slot_s']:.3f} s/epoch; "
                     + (f"from ~{n_goal:.0f} trial-epochs" if n_goal is not None else "never"),
                     "none set", "n/a"])
    if "speedup_sweep" in d:
        rows.append(["5", "sweep speed-up, concurrency 1 -> 2",
                     f"{d['speedup_sweep']:.2f}x (plain: {d.get('speedup_plain', float('nan')):.2f}x)",
                     "none set", "n/a"])
    if "scaling_fit" in d:
        rows.append(["5", f"sweep wall time per added {p['short_epochs_per_cell']}-epoch cell (concurrency 2)",
                     f"{d['scaling_fit']['per_cell_s']:.1f} s + {d['scaling_fit']['intercept_s']:.1f} s fixed",
                     "none set", "n/a"])
    return rows


def render(r: dict) -> list[tuple[int, str]]:
    if r.get("part") == "shipped":
        return render_shipped(r)
    p, d = r["params"], r["derived"]
    med, o = d["median_wall_s"], d.get("overhead", {})
    head = _head(r)
    what = (f"{p['cells']} cells ({p['arms']} arms x {p['seeds']} seeds) of the `{p['profile']}` profile as "
            f"shipped ({p['epochs_per_cell']} epochs each), and the same cells shortened to "
            f"{p['short_epochs_per_cell']} epochs; {p['data']['synthetic_per_class']} synthetic images per class "
            f"at {p['data']['image_size']} px, {p['threads_per_trial']} torch thread per trial. `sweeps run` is "
            f"{_sweep_arm(r)}: MLflow sqlite store, Tune storage, a checkpoint every epoch, tables and "
            "figures at the end. The plain arm is "
            "`transfer_core.engine.fit` on the very same TrialConfigs, in a freshly spawned Python process (what "
            "`python my_loop.py` costs: it imports torch too, as each sweep's trial worker does), or 2 of them at "
            "concurrency 2; the *strict* rows compare with a loop in the benchmark's own process, imported "
            f"and warm, which no real run has. Ray's one-off start (`ray.init`) took {r['ray_start_s']:.1f} s "
            "and is excluded; the first sweep in the fresh Ray (1 epoch, 2 cells, creating MLflow's schema) took "
            f"{r['warm_up']['first_sweep_s']:.1f} s and is excluded too. Full-length cells: {p['repetitions']} "
            f"repetition{'s' if p['repetitions'] != 1 else ''} interleaved (plain, sweep, sweep, plain, plain, "
            "sweep, ...), medians, each run's wall in brackets; the rest one run each"
            + (f", the long cells ({p['long_epochs_per_cell']} epochs) at concurrency 2 only."
               if p.get("long_epochs_per_cell") else "."))
    rows = []
    for key, sweep, plain, label, plain_what in COMPARISONS:
        if key in o:
            if key == "long_c2":
                label = f"2, long cells ({p['long_epochs_per_cell']} epochs)"
            rows.append([label, plain_what, _walls(r, med, plain), _walls(r, med, sweep), _pct(o[key]),
                         common.verdict(o[key] <= GOAL)])
    s1 = [head, "", what, "",
          common.md_table(["concurrency", "plain arm", "plain wall (s)", "sweep wall (s)",
                           "overhead = (sweep - plain) / sweep", "goal <= 5 %"], rows)]
    if "size_fit_c2" in d:
        sf = d["size_fit_c2"]
        n_goal = sf["goal_from_trial_epochs"]
        s1 += ["", "How the overhead at concurrency 2 shrinks as the sweep grows: the sweep's extra wall time "
               f"over the {len(sf['points'])} cell lengths above, fitted as fixed + per epoch of one slot "
               f"(least squares): **{sf['fixed_s']:.1f} s per sweep + {sf['per_epoch_slot_s']:.3f} s per "
               f"epoch** (the plain processes: {sf['plain_fixed_s']:.1f} s + {sf['plain_per_epoch_slot_s']:.2f} s "
               f"per epoch). The per-epoch part alone is {_pct(sf['asymptotic_overhead'])} of the wall time, "
               "the floor for a long sweep; "
               + (f"the goal of <= 5 % holds from about **{n_goal:.0f} trial-epochs** on (e.g. "
                  f"{math.ceil(n_goal / p['epochs_per_cell'])} cells of {p['epochs_per_cell']} epochs; "
                  f"this benchmark's set is {p['cells'] * p['epochs_per_cell']})."
                  if n_goal is not None else "by this fit the goal is not reached at any size.")]
    if "breakdown_c1_s" in d:
        total = med["sweep_c1"] - med["script_c1"]
        bd = [[k, f"{v:.1f}", _pct(v / med["sweep_c1"])] for k, v in d["breakdown_c1_s"].items()]
        t = d["timeline_c1"]
        c = r["components"]

        def f(x):
            return "-" if x is None else f"{x:.2f}"

        # since the sweep arm is the CLI in its own process, train_cell imports torch when it runs
        lazy = ("`transfer_core.engine`, `.data`, `.models`: torch" if p.get("sweep_arm") == "cli_process"
                else "`transfer_core.data`, `.models`")
        fresh = "brand-new Python process (a trial worker's first trial)"
        if c.get("worker_steps") == "actor":   # measured in a Ray actor, as train_cell's first trial does them
            lazy += ", and the sqlite store's module, without GC collections"
            fresh = "brand-new trial worker process (a Ray actor, Tune's trainable class imported)"

        s1 += ["", f"Where the sweep's time beyond training goes at concurrency 1, full-length cells ({total:.1f} s "
               "more than the plain script, which pays its own imports too; Tune timeline of the sweep's "
               "trials, parts measured independently):", "",
               common.md_table(["part", "seconds", "share of sweep wall"], bd), "",
               f"Per unit: set-up {f(t['setup_s'])} s (of which before the Tuner is built "
               f"{f(t.get('setup_before_tuner_s'))} s); first trial's start-up inside the trainable "
               f"{f(t.get('first_trial_setup_s'))} s, later trials' {f(t.get('trial_start_s'))} s; "
               f"per epoch {f(t['per_epoch_s'])} s; per trial end {f(t['trial_end_s'])} s; between trials "
               f"{f(t['between_trials_s'])} s; after the last trial {f(t['teardown_s'])} s (of which "
               f"`sweeps.report.publish`, tables and figures, {f(t.get('publish_s'))} s). Tune reuses each trial "
               "actor (`TuneConfig(reuse_actors=True)` in `sweeps.runner`), so only the first trial of each "
               "concurrent slot starts a worker process. Measured alone: `transfer_core.engine.save_state` of "
               f"this model's full state ({c['state_bytes'] / 1e6:.1f} MB, with fsync) "
               f"{1000 * c['save_state_s']:.0f} ms, `sweeps.tracking.CellRun.log_epoch` "
               f"{1000 * c['log_epoch_s']:.0f} ms, `CellRun.open` {1000 * c['cellrun_open_s']:.0f} ms; in a "
               f"{fresh}: importing `sweeps.trainable` "
               f"{f(c.get('import_trainable_s'))} s, the lazy imports of `train_cell` and `fit` "
               f"({lazy}) {f(c.get('fit_lazy_imports_s'))} s, MLflow's sqlite store on first use "
               f"{f(c.get('mlflow_store_first_use_s'))} s."]
    s5 = [head, ""]
    sc = r["scaling_c2"]
    rows5 = [[k, f"{v:.1f}"] for k, v in sorted(sc.items(), key=lambda kv: int(kv[0]))]
    s5 += [f"Sweep wall time (`prepare` + `run_sweep`) against the number of cells, concurrency 2, "
           f"{p['short_epochs_per_cell']} epochs per cell:", "", common.md_table(["cells", "sweep wall (s)"], rows5)]
    if "scaling_fit" in d:
        fit_ = d["scaling_fit"]
        s5 += ["", f"Least-squares line: {fit_['intercept_s']:.1f} s fixed + {fit_['per_cell_s']:.1f} s per cell."]
    if "speedup_sweep" in d:
        s5 += ["", f"Concurrency 1 -> 2 ({p['cells']} cells of {p['epochs_per_cell']} epochs): sweep "
               f"{med['sweep_c1']:.1f} s -> {med['sweep_c2']:.1f} s, speed-up **{d['speedup_sweep']:.2f}x**; "
               f"the plain processes on the same machine: {med['script_c1']:.1f} s -> {med['pool_c2']:.1f} s, "
               f"{d.get('speedup_plain', float('nan')):.2f}x (2 cores: 2x is the ceiling). No goal was set "
               "for these."]
    return [(1, "\n".join(s1)), (5, "\n".join(s5))]


if __name__ == "__main__":
    sys.exit(main())
