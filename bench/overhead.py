"""Benchmarks 1 and 5: what `sweeps run` costs beyond the training it runs, and how that cost grows.

1. Orchestration overhead. A fixed set of short quick-profile cells (a table spec: 2 arms x k seeds,
   `optim.epochs` shortened) is run by `sweeps run` (the library calls the CLI makes: `prepare` +
   `run_sweep`, with Ray already started) and, side by side in the same process, by a plain Python
   loop that calls `transfer_core.engine.fit` on the very same TrialConfigs (same threads: 1 per
   trial). Overhead = (sweep wall - loop wall) / sweep wall, Ray's one-off start excluded (timed
   apart). Concurrency 1 (the sweep one trial at a time) is compared with the sequential loop; the
   default concurrency 2 with a plain pool of 2 spawned processes calling `fit`. Runs are
   interleaved A B B A, medians reported. Goal: <= 5 % of the sweep's wall time.
   A timeline callback added to the Tune run (in this driver process only: the library is not
   changed) splits the sweep's extra time into: set-up before the first trial, per-trial start
   (worker, imports, MLflow child run, model), per-epoch (MLflow log_epoch, checkpoint, tune.report),
   per-trial end (artifacts), and the report published at the end (tables, figures).
5. How cost grows: sweep wall time against the number of cells (2, 4, 8 at concurrency 2) and
   against concurrency 1 -> 2 (speed-up, beside the plain loop's own speed-up on this machine).

    python bench/overhead.py            # ~8 minutes on 2 cores
    python bench/overhead.py --smoke    # ~1 minute: smoke profile, tiny data, one repetition
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
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
WHAT_IF = {"reuse_actors": False}  # a what-if arm: TuneConfig(reuse_actors=True), set only in this driver

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
        if WHAT_IF["reuse_actors"]:
            tune_config.reuse_actors = True
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
                    keep_events: bool = False) -> dict:
    from sweeps.runner import run_sweep

    EVENTS.clear()
    t0 = time.time()
    prepared = prepared_sweep(spec, tmp, seeds, overrides, concurrency, tag)
    t1 = time.time()
    outcome = run_sweep(prepared)
    t2 = time.time()
    if outcome.status != "completed":
        raise RuntimeError(f"benchmark sweep {tag} ended {outcome.status}: {outcome.counts}")
    out = {"wall_s": t2 - t0, "prepare_s": t1 - t0, "run_sweep_s": t2 - t1, "cells": len(prepared.plan.cells),
           "concurrency": concurrency, "timeline": analyse_timeline(list(EVENTS), t1, t2, concurrency)}
    if keep_events:
        out["events"] = [(kind, t - t1, trial_id, payload) for kind, t, trial_id, payload in EVENTS]
    return out


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
    t0 = time.time()
    with ProcessPoolExecutor(workers, mp_context=get_context("spawn")) as pool:
        epoch_times = [t for times in pool.map(_pool_fit, configs) for t in times]
    return {"wall_s": time.time() - t0, "cells": len(configs), "concurrency": workers,
            "epoch_time_s_sum": sum(epoch_times), "epochs": len(epoch_times)}


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
    for tr in trials.values():
        results = tr["results"]
        if "start" not in tr or not results:
            continue
        t_first, first = results[0]
        first_epoch_ovh.append(t_first - tr["start"] - float(first.get("epoch_time_s") or 0.0))
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
        "trial_start_s": common.median(first_epoch_ovh),  # per trial: worker, imports, MLflow child, model
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


FRESH_PROCESS = r"""
import json, sys, time
marks, t = {}, time.perf_counter()
import sweeps.trainable                                      # what Ray imports to run train_cell
marks["import_trainable_s"] = time.perf_counter() - t; t = time.perf_counter()
import transfer_core.data, transfer_core.models              # fit()'s lazy imports (torchvision, ...)
marks["fit_lazy_imports_s"] = time.perf_counter() - t; t = time.perf_counter()
from sweeps import tracking
client = tracking.client_for(sys.argv[1])
client.search_experiments(max_results=1)                     # first use of the store in this process
marks["mlflow_store_first_use_s"] = time.perf_counter() - t
print("RESULT " + json.dumps(marks))
"""


def fresh_process_costs(tmp: Path, repeats: int = 2) -> dict:
    """What a brand-new worker process pays before a trial can train, step by step (min of `repeats`):
    importing sweeps.trainable (torch, ray.tune, mlflow), fit's lazy imports, MLflow's store on first use."""
    import json
    import subprocess

    from sweeps import tracking

    uri = common.sqlite_uri(tmp, "fresh.db")
    tracking.ensure_experiment(tracking.client_for(uri), "bench_fresh", uri)    # the schema exists already
    runs = []
    for _ in range(repeats):
        out = subprocess.run([sys.executable, "-c", FRESH_PROCESS, uri], capture_output=True, text=True,
                             cwd=common.REPO)
        line = [x for x in out.stdout.splitlines() if x.startswith("RESULT ")]
        if line:
            runs.append(json.loads(line[-1][len("RESULT "):]))
    return {k: min(r[k] for r in runs) for k in runs[0]} if runs else {}


# --------------------------------------------------------------------------- the benchmark

def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    common.standard_args(parser, "overhead")
    parser.add_argument("--epochs", type=int, default=3, help="epochs per cell (short cells)")
    parser.add_argument("--seeds", type=int, default=2, help="seeds per arm: cells = 2 x seeds (default 4 cells)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    tmp = common.bench_env()
    machine = common.machine()
    install_timeline()

    profile = "smoke" if args.smoke else "quick"
    epochs = 2 if args.smoke else args.epochs
    seeds = 1 if args.smoke else args.seeds
    overrides = {"optim.epochs": epochs}
    if args.smoke:
        overrides["data.synthetic_per_class"] = 8
    spec = spec_file(tmp, profile)
    reps = 1 if args.smoke else 2
    log = print

    ray_start_s = common.start_ray(2)
    log(f"ray.init {ray_start_s:.1f} s")
    configs = trial_configs(prepared_sweep(spec, tmp, seeds, overrides, 1, "plan"))
    from search_spaces import load_profile
    from transfer_core.data import load_splits

    profile_epochs = load_profile(profile).config().optim.epochs
    cache_s, _ = common.timed(lambda: load_splits(configs[0].data, configs[0].model.image_size))  # warm the cache

    # one-off costs, measured and set aside: the first sweep in a fresh Ray (MLflow schema, first
    # workers) and the first fit in this process
    warm = {"first_sweep_s": run_sweep_timed(spec, tmp, 1, {**overrides, "optim.epochs": 1}, 2, "warm")["wall_s"],
            "first_loop_s": loop_fit(configs[:1])["wall_s"], "decode_s": cache_s}
    log(f"warm-up {warm}")

    runs: dict[str, list[dict]] = {"loop_c1": [], "sweep_c1": [], "pool_c2": [], "sweep_c2": []}
    # A B B A at concurrency 1, then at 2
    for c, plain, plain_fn in ((1, "loop_c1", loop_fit), (2, "pool_c2", pool_fit)):
        order = ["plain", "sweep", "sweep", "plain"] if reps == 2 else ["plain", "sweep"]
        for which in order:
            if which == "plain":
                r = plain_fn(configs)
                runs[plain].append(r)
            else:
                r = run_sweep_timed(spec, tmp, seeds, overrides, c, f"c{c}-{len(runs[f'sweep_c{c}'])}")
                runs[f"sweep_c{c}"].append(r)
            log(f"{which} c={c}: {r['wall_s']:.1f} s")

    # what if: the same sweep at concurrency 1 with Tune reusing the trial actors (one worker process
    # for all trials instead of one per trial); informational, one run
    WHAT_IF["reuse_actors"] = True
    try:
        for c in (1, 2):
            key = f"sweep_c{c}_reuse_actors"
            try:
                runs[key] = [run_sweep_timed(spec, tmp, seeds, overrides, c, f"reuse{c}")]
                log(f"sweep c={c} reuse_actors: {runs[key][0]['wall_s']:.1f} s")
            except Exception as exc:  # a what-if must not cost the benchmark
                runs[key] = []
                log(f"reuse_actors what-if failed: {type(exc).__name__}: {exc}")
    finally:
        WHAT_IF["reuse_actors"] = False

    # 5: cells 2 / 4 / 8 at concurrency 2 (4 is the runs above)
    scaling = {}
    cell_counts = (2,) if args.smoke else (1, 4)    # seeds per arm -> 2, 8 cells
    for s in cell_counts:
        r = run_sweep_timed(spec, tmp, s, overrides, 2, f"scale{s}")
        scaling[str(r["cells"])] = r["wall_s"]
        log(f"scaling {r['cells']} cells: {r['wall_s']:.1f} s")
    scaling[str(len(configs))] = common.median(r["wall_s"] for r in runs["sweep_c2"])

    components = component_costs(configs[0], tmp)
    components.update(fresh_process_costs(tmp))
    log(f"components {components}")

    payload = {
        "params": {"profile": profile, "epochs_per_cell": epochs, "cells": len(configs), "arms": 2,
                   "seeds": seeds, "repetitions": reps, "overrides": overrides,
                   "profile_epochs": profile_epochs, "threads_per_trial": configs[0].num_threads,
                   "data": {"synthetic_per_class": configs[0].data.synthetic_per_class,
                            "image_size": configs[0].model.image_size}},
        "ray_start_s": ray_start_s, "warm_up": warm, "runs": runs, "scaling_c2": scaling,
        "components": components,
    }
    payload["derived"] = derive(payload)
    path = common.write_result("overhead", payload, machine, common.out_dir_for(args), smoke=args.smoke)
    log(f"wrote {path}")
    import ray

    ray.shutdown()
    common.cleanup(tmp)
    return 0


def derive(p: dict) -> dict:
    runs = p["runs"]
    med = {k: common.median(r["wall_s"] for r in v) for k, v in runs.items() if v}
    out = {"median_wall_s": med}
    for c, plain in ((1, "loop_c1"), (2, "pool_c2")):
        key = f"sweep_c{c}_reuse_actors"
        if med.get(key) and med.get(plain):
            out[f"overhead_c{c}_reuse_actors"] = (med[key] - med[plain]) / med[key]
    for c, plain in ((1, "loop_c1"), (2, "pool_c2")):
        sweep = med.get(f"sweep_c{c}")
        base = med.get(plain)
        if sweep and base:
            out[f"overhead_c{c}"] = (sweep - base) / sweep
    if med.get("sweep_c1") and med.get("sweep_c2"):
        out["speedup_sweep"] = med["sweep_c1"] / med["sweep_c2"]
    if med.get("loop_c1") and med.get("pool_c2"):
        out["speedup_plain"] = med["loop_c1"] / med["pool_c2"]
    # the c=1 timeline, medians over repetitions
    tl = [r["timeline"] for r in runs.get("sweep_c1", []) if r.get("timeline")]
    if tl:
        keys = ("setup_s", "setup_before_tuner_s", "teardown_s", "publish_s", "trial_start_s", "actor_start_s",
                "in_trial_setup_s", "per_epoch_s", "trial_end_s", "between_trials_s")
        t = {k: common.median(x[k] for x in tl if x.get(k) is not None) for k in keys}
        t["prepare_s"] = common.median(r["prepare_s"] for r in runs["sweep_c1"])
        out["timeline_c1"] = t
        n, e = p["params"]["cells"], p["params"]["epochs_per_cell"]
        parts = {"prepare (validation, MLflow store check)": t["prepare_s"],
                 "set-up before the first trial": t["setup_s"],
                 "trial start-up x cells": n * t["trial_start_s"],
                 "per-epoch reporting x epochs": n * e * t["per_epoch_s"],
                 "trial end x cells": n * t["trial_end_s"],
                 "between trials x (cells - 1)": (n - 1) * (t["between_trials_s"] or 0.0),
                 "report published at the end": t["teardown_s"] or 0.0}
        out["breakdown_c1_s"] = parts
        # training inside the sweep vs the loop: same epochs, summed epoch_time_s
        in_sweep = common.median(r["timeline"]["epoch_time_s_sum"] for r in runs["sweep_c1"])
        in_loop = common.median(r["epoch_time_s_sum"] for r in runs["loop_c1"])
        out["training_s"] = {"sweep": in_sweep, "loop": in_loop}
        parts["training slower inside the trials"] = in_sweep - in_loop
        # projection to full quick-profile cells (profile epochs), same per-trial/per-epoch costs
        per_epoch_train = in_loop / (n * e)
        E = p["params"]["profile_epochs"]
        fixed = t["prepare_s"] + t["setup_s"] + (t["teardown_s"] or 0.0)
        per_cell = t["trial_start_s"] + t["trial_end_s"] + (t["between_trials_s"] or 0.0) + E * t["per_epoch_s"]
        for cells in (n, 15):
            ovh = fixed + cells * per_cell
            out.setdefault("projected", {})[f"{cells}_cells_{E}_epochs"] = ovh / (ovh + cells * E * per_epoch_train)
    sc = p["scaling_c2"]
    xs = sorted(int(k) for k in sc)
    if len(xs) >= 2:
        xm = sum(xs) / len(xs)
        ym = sum(sc[str(x)] for x in xs) / len(xs)
        b = sum((x - xm) * (sc[str(x)] - ym) for x in xs) / sum((x - xm) ** 2 for x in xs)
        out["scaling_fit"] = {"intercept_s": ym - b * xm, "per_cell_s": b}
    return out


# --------------------------------------------------------------------------- RESULTS.md

def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f} %"


def summary(r: dict) -> list[list[str]]:
    d = r["derived"]
    rows = []
    if "overhead_c1" in d:
        rows.append(["1", "orchestration overhead, concurrency 1 (sweep vs sequential `fit` loop)",
                     _pct(d["overhead_c1"]), "<= 5 %", common.verdict(d["overhead_c1"] <= GOAL)])
    if "overhead_c2" in d:
        rows.append(["1", "orchestration overhead, concurrency 2 (sweep vs 2-process `fit` pool)",
                     _pct(d["overhead_c2"]), "<= 5 %", common.verdict(d["overhead_c2"] <= GOAL)])
    if "speedup_sweep" in d:
        rows.append(["5", "sweep speed-up, concurrency 1 -> 2",
                     f"{d['speedup_sweep']:.2f}x (plain: {d.get('speedup_plain', float('nan')):.2f}x)",
                     "none set", "n/a"])
    if "scaling_fit" in d:
        rows.append(["5", "sweep wall time per added cell (concurrency 2)",
                     f"{d['scaling_fit']['per_cell_s']:.1f} s + {d['scaling_fit']['intercept_s']:.1f} s fixed",
                     "none set", "n/a"])
    return rows


def render(r: dict) -> list[tuple[int, str]]:
    p, d = r["params"], r["derived"]
    med = d["median_wall_s"]
    machine = common.machine_line(r["machine"])
    head = (f"*Measured {r['date']}{' (SMOKE: tiny sizes, not a measurement)' if r.get('smoke') else ''}. "
            f"Machine: {machine}.*")
    what = (f"{p['cells']} cells ({p['arms']} arms x {p['seeds']} seeds) of the `{p['profile']}` profile, "
            f"{p['epochs_per_cell']} epochs each (the profile has {p['profile_epochs']}), "
            f"{p['data']['synthetic_per_class']} synthetic images per class at {p['data']['image_size']} px, "
            f"{p['threads_per_trial']} torch thread per trial. `sweeps run` = `prepare` + `run_sweep` "
            "(MLflow sqlite store, Tune storage, checkpoints: everything the CLI does) with Ray already "
            f"started; plain = `transfer_core.engine.fit` on the same TrialConfigs. Ray's one-off start "
            f"(`ray.init`) took {r['ray_start_s']:.1f} s and is excluded; the first sweep in the fresh Ray "
            f"(1 epoch, 2 cells, warming MLflow's store and Ray's workers) took "
            f"{r['warm_up']['first_sweep_s']:.1f} s and is excluded too. {p['repetitions']} repetitions "
            "interleaved (plain, sweep, sweep, plain), medians.")
    rows = [["1 (one trial at a time)", f"{med.get('loop_c1', float('nan')):.1f}",
             f"{med.get('sweep_c1', float('nan')):.1f}", _pct(d.get("overhead_c1")),
             common.verdict(d.get("overhead_c1") is not None and d["overhead_c1"] <= GOAL)],
            ["2 (the default here)", f"{med.get('pool_c2', float('nan')):.1f}",
             f"{med.get('sweep_c2', float('nan')):.1f}", _pct(d.get("overhead_c2")),
             common.verdict(d.get("overhead_c2") is not None and d["overhead_c2"] <= GOAL)]]
    s1 = [head, "", what, "",
          common.md_table(["concurrency", "plain wall (s)", "sweep wall (s)",
                           "overhead = (sweep - plain) / sweep", "goal <= 5 %"], rows)]
    if "breakdown_c1_s" in d:
        total = med["sweep_c1"] - med["loop_c1"]
        bd = [[k, f"{v:.1f}", _pct(v / med["sweep_c1"])] for k, v in d["breakdown_c1_s"].items()]
        t = d["timeline_c1"]
        c = r["components"]
        s1 += ["", f"Where the extra {total:.1f} s go at concurrency 1 (Tune timeline of the sweep's trials; "
               "the parts are measured independently, so they need not add up exactly to the total):", "",
               common.md_table(["part", "seconds", "share of sweep wall"], bd), "",
               f"Per unit: set-up {t['setup_s']:.2f} s (of which before the Tuner is built "
               f"{t.get('setup_before_tuner_s', float('nan')):.2f} s); per trial start-up {t['trial_start_s']:.2f} s "
               f"(Tune's trial start to the trainable's first clock {t.get('actor_start_s', float('nan')):.2f} s, "
               f"inside the trainable before epoch 1 {t.get('in_trial_setup_s', float('nan')):.2f} s); "
               f"per epoch {t['per_epoch_s']:.2f} s; per trial end {t['trial_end_s']:.2f} s; "
               f"between trials {t['between_trials_s'] or 0:.2f} s; after the last trial {t['teardown_s'] or 0:.2f} s "
               f"(of which `sweeps.report.publish`, tables and figures, {t.get('publish_s', float('nan')):.2f} s). "
               f"Measured alone in the driver: `transfer_core.engine.save_state` of this model's full state "
               f"({c['state_bytes'] / 1e6:.1f} MB, with fsync) {1000 * c['save_state_s']:.0f} ms, "
               f"`sweeps.tracking.CellRun.log_epoch` {1000 * c['log_epoch_s']:.0f} ms, `CellRun.open` "
               f"{1000 * c['cellrun_open_s']:.0f} ms. In a brand-new Python process (what each trial's Ray worker "
               f"is, `reuse_actors` being off): importing `sweeps.trainable` "
               f"{c.get('import_trainable_s', float('nan')):.2f} s, `fit`'s lazy imports of `transfer_core.data` "
               f"and `.models` {c.get('fit_lazy_imports_s', float('nan')):.2f} s, MLflow's sqlite store on first "
               f"use {c.get('mlflow_store_first_use_s', float('nan')):.2f} s."]
        whatif = [f"concurrency {c}: {med[f'sweep_c{c}_reuse_actors']:.1f} s, overhead "
                  f"{_pct(d[f'overhead_c{c}_reuse_actors'])}" for c in (1, 2)
                  if d.get(f"overhead_c{c}_reuse_actors") is not None]
        if whatif:
            s1 += ["", "What if Tune reused the trial actors (`TuneConfig(reuse_actors=True)`, set from this driver, "
                   "the library unchanged; one run each): " + "; ".join(whatif) + "."]
        if d.get("projected"):
            proj = "; ".join(f"{k.replace('_', ' ')}: {_pct(v)}" for k, v in d["projected"].items())
            s1 += ["", f"Projected with the same per-trial and per-epoch costs to full-length cells at "
                   f"concurrency 1: {proj}."]
    s5 = [head, ""]
    sc = r["scaling_c2"]
    rows5 = [[k, f"{v:.1f}"] for k, v in sorted(sc.items(), key=lambda kv: int(kv[0]))]
    s5 += [f"Sweep wall time (`prepare` + `run_sweep`) against the number of cells, concurrency 2, "
           f"{p['epochs_per_cell']} epochs per cell:", "", common.md_table(["cells", "sweep wall (s)"], rows5)]
    if "scaling_fit" in d:
        f = d["scaling_fit"]
        s5 += ["", f"Least-squares line: {f['intercept_s']:.1f} s fixed + {f['per_cell_s']:.1f} s per cell."]
    if "speedup_sweep" in d:
        s5 += ["", f"Concurrency 1 -> 2 ({p['cells']} cells): sweep {med['sweep_c1']:.1f} s -> "
               f"{med['sweep_c2']:.1f} s, speed-up **{d['speedup_sweep']:.2f}x**; the plain `fit` calls on "
               f"the same machine: {med['loop_c1']:.1f} s -> {med['pool_c2']:.1f} s, "
               f"{d.get('speedup_plain', float('nan')):.2f}x (2 cores: 2x is the ceiling). No goal was set "
               "for these."]
    return [(1, "\n".join(s1)), (5, "\n".join(s5))]


if __name__ == "__main__":
    sys.exit(main())
