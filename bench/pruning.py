"""Benchmark 3: pruning efficiency on the `tune` sweep: trial-epochs spent until a configuration within
0.5 points of the best unpruned result is found.

Three arms, each with the `tune` spec's search space and metric (val_acc, max), the same TPE sampler
(seed s, the spec's n_startup_trials) and 2 trials at a time. The unpruned arm runs N trials (its budget:
N x epochs trial-epochs); a pruned arm keeps sampling new trials with the epochs it saves (up to 4N)
until a full-length trial reaches the target or its trials have spent that same budget:
  (a) ours: `sweeps.pruning.make_optuna_search` -> PrunableOptunaSearch + OptunaPruningScheduler with
      the spec's pruner;
  (b) no pruning: Ray's plain OptunaSearch, FIFO scheduler (every trial runs every epoch);
  (c) ASHA: Ray's plain OptunaSearch + ray.tune.schedulers.ASHAScheduler (Ray's defaults:
      grace_period 1, reduction_factor 4; max_t = the epochs), by training_iteration.
over several sampler seeds. The config is the `tune` spec's own: the quick profile (300 synthetic
images per class, 12 epochs), with 30 % of the training split held out for validation so that 0.5
points is a few images, not one. The trainable is a thin wrapper of `transfer_core.engine.fit` that
reports each epoch to Tune (no MLflow, no checkpoints: they do not change the epochs counted).

Metric, per seed s: target = the best final val_acc among arm (b)'s trials. For each arm, the
trial-epochs spent (every epoch any trial reported, in wall-clock order) until the first trial that ran
all its epochs ends with val_acc >= target - 0.005. Headline ratio = that / the unpruned budget, i.e.
arm (b)'s whole run (trials x epochs), summed over seeds. Goal: arm (a) <= 40 %, and no more than
ASHA. Also shown: / arm (b)'s own spend until it reached its best (a stricter ratio: the unpruned arm
stopped at exactly the right moment).

    nohup python bench/pruning.py > /tmp/pruning.log 2>&1 &      # ~45 minutes on 2 cores (3 seeds)
    python bench/pruning.py --seeds 9 --resume                  # add seeds 3..8 to the recorded run
    python bench/pruning.py --arms none --resume                  # only the arms named (repeatable)
    python bench/pruning.py --smoke                               # ~2 minutes
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import math
import statistics
import sys
import time
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

GOAL = 0.40
TOLERANCE = 0.005          # 0.5 points of accuracy (accuracies are fractions)
ARMS = {"ours": "(a) the spec's Optuna pruner through our bridge",
        "none": "(b) no pruning (OptunaSearch, FIFO)",
        "asha": "(c) OptunaSearch + Ray's ASHAScheduler"}
EVENTS: list[tuple] = []
PRUNED_SAMPLES_FACTOR = 4   # a pruned arm may sample up to 4x the unpruned arm's trials, within its budget
BRIDGE_STEPS = "epochs done"  # what the bridge reports as Optuna's step (runs made with 0-based steps are redone)


def recorder():
    from ray import tune

    class Recorder(tune.Callback):
        def on_trial_result(self, iteration, trials, trial, result, **info):
            EVENTS.append(("result", time.time(), trial.trial_id, int(result["training_iteration"]),
                           float(result.get("val_acc", float("nan")))))

        def on_trial_complete(self, iteration, trials, trial, **info):
            EVENTS.append(("complete", time.time(), trial.trial_id, dict(trial.config.get("search", {})), None))

        def on_trial_error(self, iteration, trials, trial, **info):
            EVENTS.append(("error", time.time(), trial.trial_id, None, None))

    return Recorder()


def train_fn(config: dict, data) -> None:
    """fit() reporting every epoch's record to Tune (the tune sweep's metric is val_acc)."""
    from ray import tune

    from transfer_core.config import from_flat
    from transfer_core.engine import fit

    trial = from_flat(config["search"], base=from_flat(config["base"]))

    def on_epoch(record, state):
        tune.report({k: v for k, v in record.items() if k != "test_confusion"})
        return False

    fit(trial, on_epoch=on_epoch, data=data)


def search_setup(overrides: dict, smoke: bool):
    from search_spaces import expand, load, load_profile, parse_data_options
    from sweeps.runner import _search_space

    spec = load("tune")
    profile = load_profile("smoke" if smoke else spec.profile)
    plan = expand(spec, profile, parse_data_options(()), None, overrides)
    (_, base), = plan.base_configs.items()
    base = dataclasses.replace(base, num_threads=base.num_threads or 1)
    return spec, base, _search_space(SimpleNamespace(spec=spec))


def budget_stopper(budget: int, epochs: int, target: float | None):
    """Ends a pruned arm's search once a full-length trial reaches the target (within TOLERANCE) or the
    trials have reported `budget` epochs in all, whichever comes first: a pruned search goes on sampling
    new configurations with the epochs it saved, up to the unpruned arm's budget."""
    from ray import tune

    class BudgetStopper(tune.Stopper):
        def __init__(self) -> None:
            self.spent = 0
            self.found = False

        def __call__(self, trial_id, result) -> bool:
            self.spent += 1
            if (target is not None and int(result["training_iteration"]) >= epochs
                    and float(result.get("val_acc", -1.0)) >= target - TOLERANCE - 1e-12):
                self.found = True
            return False

        def stop_all(self) -> bool:
            return self.found or self.spent >= budget

    return BudgetStopper()


def run_arm(arm: str, seed: int, spec, base, space, data, num_samples: int, tmp: Path,
            target: float | None = None) -> dict:
    """One search. The unpruned arm runs `num_samples` full trials (its budget); a pruned arm samples
    up to PRUNED_SAMPLES_FACTOR times as many and stops at the target or at that budget."""
    import optuna
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler
    from ray.tune.search.optuna import OptunaSearch

    from search_spaces.spec import thaw
    from sweeps.pruning import make_optuna_search
    from transfer_core.config import to_flat

    epochs = base.optim.epochs
    n_startup = spec.search.n_startup_trials
    if arm == "ours":
        searcher, scheduler = make_optuna_search(pruner_spec=thaw(spec.search.pruner), sampler="tpe", seed=seed,
                                                 n_startup_trials=n_startup)
    else:
        searcher = OptunaSearch(sampler=optuna.samplers.TPESampler(seed=seed, n_startup_trials=n_startup))
        scheduler = (ASHAScheduler(time_attr="training_iteration", max_t=epochs, grace_period=1,
                                   reduction_factor=4) if arm == "asha" else None)
    trainable = tune.with_resources(tune.with_parameters(train_fn, data=data), {"cpu": 1})
    pruned_arm = arm != "none"
    tune_config = tune.TuneConfig(metric=spec.metric, mode=spec.mode, search_alg=searcher, scheduler=scheduler,
                                  num_samples=num_samples * (PRUNED_SAMPLES_FACTOR if pruned_arm else 1),
                                  max_concurrent_trials=2, reuse_actors=True)
    run_config = tune.RunConfig(name=f"{arm}-{seed}", storage_path=str(tmp / "tune"), verbose=0,
                                callbacks=[recorder()],
                                stop=budget_stopper(num_samples * epochs, epochs, target) if pruned_arm else None)
    EVENTS.clear()
    t0 = time.time()
    grid = tune.Tuner(trainable, param_space={"base": to_flat(base), "search": space}, tune_config=tune_config,
                      run_config=run_config).fit()
    wall = time.time() - t0
    trials: dict[str, dict] = {}
    for kind, t, trial_id, a, b in EVENTS:
        tr = trials.setdefault(trial_id, {"epochs": 0, "val_acc": [], "result_times": []})
        if kind == "result":
            tr["epochs"] = max(tr["epochs"], a)
            tr["val_acc"].append(b)
            tr["result_times"].append(t - t0)
        elif kind == "complete":
            tr["end"] = t - t0
            tr["params"] = a
        else:
            tr["error"] = True
    return {"arm": arm, "seed": seed, "wall_s": wall, "errors": grid.num_errors, "epochs_per_trial": epochs,
            "trials": trials, "budgeted": pruned_arm}


def unpruned_target(run: dict) -> float:
    """The best final val_acc among the unpruned arm's full-length trials: what "near-best" is measured from."""
    return max(tr["val_acc"][-1] for tr in run["trials"].values()
               if tr["epochs"] >= run["epochs_per_trial"] and tr["val_acc"])


def spend_until(run: dict, target: float, tolerance: float = TOLERANCE) -> tuple[int, bool, float | None]:
    """Trial-epochs reported (all trials, wall-clock order) until the first full-length trial whose final
    val_acc >= target - tolerance ends; (spend, found, that trial's val_acc)."""
    full = run["epochs_per_trial"]
    times = sorted(t for tr in run["trials"].values() for t in tr["result_times"])
    hits = sorted((tr["result_times"][-1], tr["val_acc"][-1]) for tr in run["trials"].values()
                  if tr["epochs"] >= full and tr["val_acc"] and tr["val_acc"][-1] >= target - tolerance - 1e-12)
    if not hits:
        return len(times), False, None
    t_hit, value = hits[0]
    return sum(1 for t in times if t <= t_hit), True, value


def analyse(runs: list[dict], num_samples: int, epochs: int) -> dict:
    """Per seed: the target, each arm's spend and ratios. An arm that never finds a near-best configuration
    counts its whole run as its spend (a lower bound: it would have needed more) and fails the seed."""
    seeds = sorted({r["seed"] for r in runs})
    by = {(r["arm"], r["seed"]): r for r in runs}
    per_seed, sums = {}, {arm: 0 for arm in ARMS}
    for seed in seeds:
        if not all((arm, seed) in by for arm in ARMS):
            continue
        target = unpruned_target(by[("none", seed)])
        row = {"target": target}
        for arm in ARMS:
            spend, found, value = spend_until(by[(arm, seed)], target)
            total = sum(tr["epochs"] for tr in by[(arm, seed)]["trials"].values())
            stopped = sum(1 for tr in by[(arm, seed)]["trials"].values() if tr["epochs"] < epochs)
            best = max((tr["val_acc"][-1] for tr in by[(arm, seed)]["trials"].values()
                        if tr["epochs"] >= epochs and tr["val_acc"]), default=None)
            row[arm] = {"spend": spend, "found": found, "value": value, "total_epochs": total,
                        "stopped_early": stopped, "best_full": best, "wall_s": by[(arm, seed)]["wall_s"]}
            sums[arm] += spend
        for arm in ARMS:
            row[arm]["ratio"] = row[arm]["spend"] / row["none"]["spend"]
            row[arm]["ratio_of_budget"] = row[arm]["spend"] / (num_samples * epochs)
        # ours no worse than ASHA in this seed (an arm that never found it counts as infinitely worse)
        row["ours_le_asha"] = row["ours"]["found"] and (not row["asha"]["found"]
                                                        or row["ours"]["spend"] <= row["asha"]["spend"])
        per_seed[str(seed)] = row
    out = {"per_seed": per_seed}
    if per_seed and sums["none"]:
        out["ratio_of_own_spend"] = {arm: sums[arm] / sums["none"] for arm in ARMS}
        out["ratio"] = {arm: sums[arm] / (len(per_seed) * num_samples * epochs) for arm in ARMS}
        out["mean_ratio"] = {arm: sum(r[arm]["ratio_of_budget"] for r in per_seed.values()) / len(per_seed)
                             for arm in ARMS}
        if len(per_seed) > 1:  # how far apart two arms must be before this many seeds tell them apart
            out["se_ratio"] = {arm: statistics.stdev(r[arm]["ratio_of_budget"] for r in per_seed.values())
                               / math.sqrt(len(per_seed)) for arm in ARMS}
        out["found_all"] = {arm: all(r[arm]["found"] for r in per_seed.values()) for arm in ARMS}
        out["total_epochs"] = {arm: sum(r[arm]["total_epochs"] for r in per_seed.values()) for arm in ARMS}
        out["ours_le_asha"] = out["found_all"]["ours"] and (
            not out["found_all"]["asha"] or out["ratio"]["ours"] <= out["ratio"]["asha"])
        out["pass"] = out["found_all"]["ours"] and out["ratio"]["ours"] <= GOAL and out["ours_le_asha"]
    return out


def archive_other_pruners(archive: list[dict], runs: list[dict], pruner: dict) -> tuple[list[dict], list[dict]]:
    """Split our arm's runs by pruner: (runs to keep, archive). Runs made with another pruner than the spec's
    go to the archive, grouped by pruner, so that changing the spec's pruner erases no measurement; runs of the
    spec's pruner found in the archive come back for the seeds `runs` lacks, so changing it back reruns nothing.
    Only budgeted runs with epochs-done steps are archived (older conventions are measured again)."""
    out = [dict(e, runs=list(e["runs"])) for e in archive]
    keep = []
    for run in runs:
        if run["arm"] != "ours" or run.get("pruner") == pruner:
            keep.append(run)
        elif run.get("budgeted") and run.get("steps") == BRIDGE_STEPS and run.get("pruner") is not None:
            entry = next((e for e in out if e["pruner"] == run["pruner"]), None)
            if entry is None:
                entry = {"pruner": run["pruner"], "archived": common.now(), "runs": []}
                out.append(entry)
            entry["runs"] = [x for x in entry["runs"] if x["seed"] != run["seed"]] + [run]
    have = {x["seed"] for x in keep if x["arm"] == "ours"}
    for entry in out:
        if entry["pruner"] == pruner:
            keep += [x for x in entry["runs"] if x["seed"] not in have]
    return keep, [e for e in out if e["pruner"] != pruner]


def other_pruner_rows(r: dict) -> list[list]:
    """Our arm with each other pruner measured and with the spec's, against the same unpruned targets and
    ASHA runs: spend, seeds missed, and how many full-length trials each 100 trial-epochs bought."""
    p, d = r["params"], r["derived"]
    entries = [(f"`{e['pruner']}`", e["runs"]) for e in r.get("other_pruners", [])]
    if not entries or not d.get("ratio"):
        return []
    entries.append((f"`{p['pruner']}` (the spec's)", [x for x in r["runs"] if x["arm"] == "ours"]))
    others = [x for x in r["runs"] if x["arm"] != "ours"]
    rows = []
    for label, ours_runs in entries:
        seeds = {x["seed"] for x in ours_runs}
        dd = analyse([x for x in others if x["seed"] in seeds] + ours_runs, p["num_samples"], p["epochs"])
        if not dd.get("ratio"):
            continue
        trials = [t for x in ours_runs if str(x["seed"]) in dd["per_seed"] for t in x["trials"].values()]
        spent = sum(t["epochs"] for t in trials)
        full = sum(1 for t in trials if t["epochs"] >= p["epochs"])
        missed = [seed for seed, x in dd["per_seed"].items() if not x["ours"]["found"]]

        rows.append([label, len(dd["per_seed"]), _agg(dd, "ours"), _agg(dd, "asha"), ", ".join(missed) or "none",
                     spent, f"{100 * full / spent:.1f}" if spent else "-"])
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    common.standard_args(parser, "pruning")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--num-samples", type=int, default=12)
    parser.add_argument("--epochs", type=int, default=None, help="epochs per trial (default: the profile's)")
    parser.add_argument("--per-class", type=int, default=None,
                        help="synthetic training images per class (default: the profile's)")
    parser.add_argument("--arms", choices=list(ARMS), action="append",
                        help="run only these arms (repeatable; default all)")
    parser.add_argument("--val-fraction", type=float, default=0.3)
    parser.add_argument("--resume", action="store_true",
                        help="keep the runs already in the output folder's pruning.json (same parameters) "
                             "and do only the missing ones")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    tmp = common.bench_env()
    machine = common.machine()
    if args.smoke:
        args.seeds, args.num_samples, args.epochs, args.per_class = 1, 5, 3, 8

    spec, base, space = search_setup({}, args.smoke)
    overrides = {"data.synthetic_per_class": args.per_class or base.data.synthetic_per_class,
                 "data.val_fraction": args.val_fraction, "optim.epochs": args.epochs or base.optim.epochs}
    args.epochs = overrides["optim.epochs"]
    spec, base, space = search_setup(overrides, args.smoke)
    from transfer_core.data import load_splits

    data = load_splits(base.data, base.model.image_size)
    ray_start_s = common.start_ray(2)
    params = {"profile": "smoke" if args.smoke else spec.profile, "overrides": overrides, "seeds": args.seeds,
              "num_samples": args.num_samples, "epochs": args.epochs, "concurrency": 2,
              "n_startup_trials": spec.search.n_startup_trials, "pruner": dict(spec.search.pruner),
              "asha": {"grace_period": 1, "reduction_factor": 4, "max_t": args.epochs},
              "space": sorted(space), "counts": {"train": len(data.train), "val": len(data.val),
                                                 "test": len(data.test)}}
    runs, others = [], []
    out_dir = common.out_dir_for(args)
    previous = out_dir / "pruning.json"
    if args.resume and previous.is_file():
        import json

        old = json.loads(previous.read_text())
        if old["params"]["overrides"] == overrides and old["params"]["num_samples"] == args.num_samples:
            # runs of our arm made with another pruner than the spec's now, and pruned-arm runs from before
            # they searched on up to the unpruned budget, are measured again
            runs, others = archive_other_pruners(old.get("other_pruners", []), old["runs"], params["pruner"])
            runs = [r for r in runs if r["arm"] == "none" or (r.get("budgeted") and (
                r["arm"] != "ours" or r.get("steps") == BRIDGE_STEPS))]
            machine = {**old["machine"], "resumed": common.now(), "git_resumed": machine.get("git")}
            print(f"resuming: {len(runs)} of {len(old['runs'])} runs kept", flush=True)
    done_before = {(r["arm"], r["seed"]) for r in runs}
    for seed in range(args.seeds):
        for arm in ("none", "ours", "asha"):
            if (arm, seed) in done_before or (args.arms and arm not in args.arms):
                continue
            unpruned = next((r for r in runs if (r["arm"], r["seed"]) == ("none", seed)), None)
            target = None if unpruned is None else unpruned_target(unpruned)
            run = run_arm(arm, seed, spec, base, space, data, args.num_samples, tmp, target)
            if arm == "ours":
                run["pruner"], run["steps"] = params["pruner"], BRIDGE_STEPS
            runs = [r for r in runs if (r["arm"], r["seed"]) != (arm, seed)]
            runs.append(run)
            done = sum(tr["epochs"] for tr in run["trials"].values())
            print(f"seed {seed} {arm}: {run['wall_s']:.0f} s, {done} trial-epochs, {run['errors']} errors",
                  flush=True)
            payload = {"params": params, "ray_start_s": ray_start_s, "runs": runs,
                       "derived": analyse(runs, args.num_samples, args.epochs), "other_pruners": others,
                       "complete": all((a, s) in {(r["arm"], r["seed"]) for r in runs}
                                       for a in ARMS for s in range(args.seeds))}
            common.write_result("pruning", payload, machine, out_dir, smoke=args.smoke)
    print(f"wrote {out_dir / 'pruning.json'}")
    import ray

    ray.shutdown()
    common.cleanup(tmp)
    return 0


def _pct(x: float) -> str:
    return f"{100 * x:.0f} %"


def _agg(d: dict, arm: str, key: str = "ratio") -> str:
    """An arm's spend ratio over all seeds, marked as a lower bound when some seed found no near-best."""
    return ("" if d["found_all"][arm] else ">= ") + _pct(d[key][arm])


# candidate pruners replayed on the unpruned arm's curves (how the spec's pruner was chosen)
REPLAY_CANDIDATES = (
    {"type": "median", "n_startup_trials": 3, "n_warmup_steps": 2},
    {"type": "median", "n_startup_trials": 2, "n_warmup_steps": 1},
    {"type": "successive_halving", "min_resource": 1, "reduction_factor": 4},
    {"type": "successive_halving", "min_resource": 1, "reduction_factor": 3},
    {"type": "successive_halving", "min_resource": 1, "reduction_factor": 2},
)
CHOSEN_ON_SEEDS = (0, 1, 2)   # the seeds whose replay chose the spec's pruner; later seeds are held out


def replay(run: dict, pruner_spec: dict) -> tuple[int, bool]:
    """The unpruned arm's recorded trials (same configurations, same report times) through a pruner:
    each report goes to an Optuna trial, a pruned trial's later epochs are not spent. (spend, found).
    Counterfactual: with pruning, TPE would have proposed other configurations after the first prunes."""
    import optuna

    from sweeps.pruning import make_pruner

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    full = run["epochs_per_trial"]
    trials = run["trials"]
    target = unpruned_target(run)
    study = optuna.create_study(direction="maximize", pruner=make_pruner(dict(pruner_spec)))
    events = sorted((t_rep, tid, i) for tid, tr in trials.items() for i, t_rep in enumerate(tr["result_times"]))
    live: dict = {}
    pruned: set = set()
    spend = 0
    for _, tid, i in events:
        if tid in pruned:
            continue
        trial = live.setdefault(tid, study.ask())
        value = trials[tid]["val_acc"][i]
        trial.report(value, i + 1)  # step = epochs done, as the bridge reports (sweeps/pruning.py)
        spend += 1
        if i + 1 == full:
            study.tell(trial, value)
            if value >= target - TOLERANCE - 1e-12:
                return spend, True
        elif trial.should_prune():
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
            pruned.add(tid)
    return spend, False


def replay_table(r: dict) -> str | None:
    runs = sorted((x for x in r["runs"] if x["arm"] == "none"), key=lambda x: x["seed"])
    if not runs:
        return None
    budget = r["params"]["num_samples"] * r["params"]["epochs"]
    rows = []
    for cand in REPLAY_CANDIDATES:
        results = [replay(run, cand) for run in runs]
        cells = [f"{spend}" + ("" if found else " (missed)") for spend, found in results]
        total = sum(spend for spend, _ in results) / (len(runs) * budget)
        chosen = " (the spec's)" if cand == r["params"]["pruner"] else ""
        rows.append([f"`{cand}`{chosen}", *cells, _pct(total), "yes" if all(f for _, f in results) else "**no**"])
    return common.md_table(["pruner", *[f"seed {x['seed']}" for x in runs], "/ unpruned budget",
                            "near-best found in every seed"], rows)


LOOSER_TOLERANCES = (0.005, 0.01, 0.015, 0.02)   # the goal's 0.5 points first


def tolerance_table(r: dict) -> str | None:
    """Each arm's spend, / the unpruned budget, with the near-best criterion loosened: 1, 1.5, 2 points and
    one standard error of val_acc at the target (binomial, on the validation split). Exact, not a replay:
    every arm ran until a full-length trial came within 0.5 points of the target (or to its budget), and
    such a trial is within any looser tolerance too, so the first one within it is already recorded."""
    p = r["params"]
    budget = p["num_samples"] * p["epochs"]
    by = {(x["arm"], x["seed"]): x for x in r["runs"]}
    seeds = sorted({seed for _, seed in by if all((arm, seed) in by for arm in ARMS)})
    n_val = (p.get("counts") or {}).get("val")
    if not seeds or not n_val:
        return None
    targets = {seed: unpruned_target(by[("none", seed)]) for seed in seeds}
    se = {seed: math.sqrt(t * (1 - t) / n_val) for seed, t in targets.items()}
    tolerances = [(f"{100 * t:.1f} points" + (" (the goal's)" if t == TOLERANCE else ""), {s: t for s in seeds})
                  for t in LOOSER_TOLERANCES]
    tolerances.append((f"1 standard error ({100 * min(se.values()):.1f}-{100 * max(se.values()):.1f} points)", se))
    rows, ratios = [], {}
    for arm in ARMS:
        cells = []
        for _, tol in tolerances:
            results = [spend_until(by[(arm, seed)], targets[seed], tol[seed]) for seed in seeds]
            missed = sum(1 for _, found, _ in results if not found)
            ratio = sum(spend for spend, _, _ in results) / (len(seeds) * budget)
            ratios.setdefault(arm, []).append(ratio)
            cells.append(("" if not missed else ">= ") + _pct(ratio)
                         + (f" ({missed} seed{'s' if missed > 1 else ''} not found)" if missed else ""))
        rows.append([arm, *cells])
    from transfer_core.data.synthetic import CLASS_NAMES

    classes = len(CLASS_NAMES)
    finals = [tr["val_acc"][-1] for seed in seeds for tr in by[("none", seed)]["trials"].values()
              if tr["epochs"] >= p["epochs"] and tr["val_acc"]]
    change = max(r[0] - r[-1] for arm, r in ratios.items() if arm != "none")
    return (common.md_table(["arm", *[label for label, _ in tolerances]], rows) + "\n\n"
            f"From the goal's 0.5 points to one standard error, a pruned arm's spend falls by at most "
            f"{100 * change:.0f} points of the budget. The unpruned arm's configurations end anywhere between "
            f"{100 * min(finals):.1f} % and {100 * max(finals):.1f} % val_acc (chance on the synthetic set's "
            f"{classes} classes is {100 / classes:.1f} %): the spend is the search's time to reach the good "
            "region of the space, not noise at the threshold.")


def summary(r: dict) -> list[list[str]]:
    d = r["derived"]
    if "ratio" not in d:
        return [["3", "pruning: epochs to a near-best config", "incomplete", "<= 40 % and <= ASHA", "n/a"]]
    return [["3", "pruning: trial-epochs until a config within 0.5 points of the unpruned best, / the unpruned "
             "budget", f"ours {'' if d['found_all']['ours'] else '>= '}{_pct(d['ratio']['ours'])}, "
             f"ASHA {'' if d['found_all']['asha'] else '>= '}{_pct(d['ratio']['asha'])} "
             f"(no pruning {_pct(d['ratio']['none'])})"
             + (f"; per seed +- {100 * d['se_ratio']['ours']:.0f} / {100 * d['se_ratio']['asha']:.0f} / "
                f"{100 * d['se_ratio']['none']:.0f} (SE over {len(d['per_seed'])} seeds)" if d.get("se_ratio") else ""),
             "<= 40 % and <= ASHA", common.verdict(d["pass"])]]


def render(r: dict) -> list[tuple[int, str]]:
    p, d = r["params"], r["derived"]
    head = (f"*Measured {r['date']}{' (SMOKE: tiny sizes, not a measurement)' if r.get('smoke') else ''}"
            f"{'' if r.get('complete') else ' - INCOMPLETE: the run was still going or was stopped'}. "
            f"Machine: {common.machine_line(r['machine'])}.*")
    if r["machine"].get("resumed"):
        head += (f" *Resumed with --resume (last at {r['machine']['resumed']}): the runs come from several "
                 "invocations; the commit above is the first one's" + (
                     f", the last one's {r['machine']['git_resumed'].get('commit', '?')}"
                     if isinstance(r["machine"].get("git_resumed"), dict) else "") +
                 ". Each invocation redoes our arm's runs made with another step convention; those made with "
                 "another pruner than the spec's are set aside (`other_pruners`, below), and come back without "
                 "a rerun if the spec returns to that pruner.*")
    o = p["overrides"]
    budget = p["num_samples"] * p["epochs"]
    what = (f"The `tune` sweep's space ({', '.join(f'`{k}`' for k in p['space'])}), metric `val_acc` (max), TPE "
            f"(n_startup_trials {p['n_startup_trials']}) seeded 0..{p['seeds'] - 1}, {p['concurrency']} trials at a "
            f"time; the unpruned arm runs {p['num_samples']} trials, a pruned arm samples new trials (up to "
            f"{PRUNED_SAMPLES_FACTOR * p['num_samples']}) until one reaches the target or its trials have spent the "
            f"unpruned budget; on the `{p['profile']}` profile: "
            f"{o['data.synthetic_per_class']} synthetic images per class, validation fraction "
            f"{o['data.val_fraction']} ({p['counts']['train']} train / {p['counts']['val']} val / "
            f"{p['counts']['test']} test), {p['epochs']} epochs. Arms: " + "; ".join(ARMS.values()) +
            f". Pruner (the spec's): `{p['pruner']}`; ASHA: `{p['asha']}`. Spend = trial-epochs reported by all "
            "trials, in wall-clock order, until the first full-length trial with final val_acc >= the unpruned "
            f"arm's best - 0.5 points ends. The unpruned budget = {p['num_samples']} trials x {p['epochs']} "
            f"epochs = {budget} trial-epochs per seed.")
    text = [head, "", what, ""]
    if d.get("per_seed"):
        rows = []
        for seed, row in d["per_seed"].items():
            for arm in ARMS:
                x = row[arm]
                lb = "" if x["found"] else ">= "
                rows.append([seed, f"{100 * row['target']:.1f}", arm,
                             f"{x['spend']}" if x["found"] else f">= {x['spend']} (not found)",
                             lb + _pct(x["ratio_of_budget"]), lb + _pct(x["ratio"]), x["total_epochs"],
                             x["stopped_early"], "-" if x["best_full"] is None else f"{100 * x['best_full']:.1f}",
                             f"{x['wall_s']:.0f}"])
        text += [common.md_table(["seed", "target val_acc (%)", "arm", "spend (trial-epochs)",
                                  "/ unpruned budget", "/ unpruned arm's own spend to its best", "trial-epochs run",
                                  "trials stopped early", "best full-length val_acc (%)", "wall (s)"], rows), ""]
    if "ratio" in d:
        missing = [arm for arm in ARMS if not d["found_all"][arm]]
        strict = d.get("ratio_of_own_spend")
        text += [f"Over all seeds (sum of spends / sum of the unpruned budgets): ours **{_agg(d, 'ours')}**, "
                 f"ASHA {_agg(d, 'asha')}, no pruning {_agg(d, 'none')}"
                 + (f" ({', '.join(missing)} did not find a near-best configuration in every seed: its whole run "
                    "is counted, a lower bound)" if missing else "")
                 + (f"; against the unpruned arm's own spend until it reached its best (as if it had stopped at "
                    f"exactly the right moment): ours {_agg(d, 'ours', 'ratio_of_own_spend')}, ASHA "
                    f"{_agg(d, 'asha', 'ratio_of_own_spend')}" if strict else "")
                 + f". Whole runs: {d['total_epochs']['ours']} / {d['total_epochs']['asha']} / "
                 f"{d['total_epochs']['none']} trial-epochs (ours / ASHA / none). Goal: <= 40 % of the unpruned "
                 "budget and no worse than ASHA, the near-best configuration found in every seed: "
                 f"{common.verdict(d['pass'])}."]
        if d.get("se_ratio"):
            n = len(d["per_seed"])
            text += ["", f"Per seed the spend varies widely: the per-seed spend / unpruned budget, mean +- standard "
                     f"error over {n} seeds: " + ", ".join(
                         f"{arm} {_pct(d['mean_ratio'][arm])} +- {100 * d['se_ratio'][arm]:.0f}" for arm in ARMS)
                     + " (a seed without a near-best counts its whole run). Two arms closer than about twice "
                     "their standard errors are not told apart by this many seeds."]
    stats = []
    for arm in ("ours", "asha"):
        arm_runs = [x for x in r["runs"] if x["arm"] == arm]
        stopped = sorted(t["epochs"] for x in arm_runs for t in x["trials"].values() if t["epochs"] < p["epochs"])
        if arm_runs and stopped:
            stats.append(f"{arm}: {sum(len(x['trials']) for x in arm_runs)} trials sampled over "
                         f"{len(arm_runs)} seeds, {len(stopped)} stopped early, after a median of "
                         f"{stopped[len(stopped) // 2]} epoch(s)")
    if stats:
        if {x.get("steps") for x in r["runs"] if x["arm"] == "ours"} == {BRIDGE_STEPS}:
            how = ("Our bridge reports Optuna's step as the number of epochs done, so successive halving's first "
                   "rung (min_resource 1) is the end of epoch 1, as ASHA's grace period 1 is.")
        else:
            how = ("Our bridge (then) reported epoch e at Optuna step e - 1, so successive halving's first rung "
                   "(min_resource 1) was the end of epoch 2, while ASHA's grace period 1 is the end of epoch 1: "
                   "every trial our arm stopped cost one epoch more.")
        text += ["", "Trials: " + "; ".join(stats) + ". " + how]
    other_rows = other_pruner_rows(r)
    if other_rows:
        text += ["", "Our arm with each pruner measured for the `tune` spec (the runs of a pruner other than the "
                 "spec's stay in pruning.json under `other_pruners`), against the same unpruned targets; a near-best "
                 "configuration is found only by a trial that runs all its epochs, so what a pruner buys is "
                 "full-length trials per trial-epoch spent:", "",
                 common.md_table(["our arm's pruner", "seeds", "spend / unpruned budget", "ASHA, same seeds",
                                  "seeds without a near-best", "trial-epochs run",
                                  "full-length trials per 100 trial-epochs"], other_rows)]
    loose = tolerance_table(r)
    if loose:
        text += ["", "The same runs against looser criteria (spend until the first full-length trial within the "
                 "tolerance of the unpruned best, all seeds, / the unpruned budget; exact, not a replay: every "
                 "arm ran until it was within 0.5 points, or to its budget, so the first trial within a looser "
                 f"tolerance is in the record). 0.5 points of the {p['counts']['val']} validation images is "
                 f"{p['counts']['val'] * TOLERANCE:.0f} images, well inside one binomial standard error of "
                 "val_acc:", "", loose]
    table = replay_table(r)
    if table:
        held_out = sorted({x["seed"] for x in r["runs"]} - set(CHOSEN_ON_SEEDS))
        text += ["", "Replay: the unpruned arm's recorded trials through candidate pruners (same 12 configurations "
                 "and report times, Optuna's step = epochs done as the bridge reports it; a pruned trial spends no "
                 "more epochs and no new trial is sampled, so a missed near-best cannot be made up; "
                 "counterfactual, since with pruning TPE would have proposed other configurations). Spend until "
                 "the near-best configuration, in trial-epochs. The spec's pruner was chosen with this replay on "
                 f"seeds {', '.join(map(str, CHOSEN_ON_SEEDS))}"
                 + (f"; seed(s) {', '.join(map(str, held_out))} measured after the choice" if held_out
                    else "") + ".", "", table]
    return [(3, "\n".join(text))]


if __name__ == "__main__":
    sys.exit(main())
