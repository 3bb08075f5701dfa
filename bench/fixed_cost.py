"""Benchmark 1's fixed cost, part by part: a few `sweeps run` of a small fixed set, each checkout in turn.

What a sweep costs beyond its training that does not grow with the sweep (bench/RESULTS.md §1: the CLI's start,
the set-up before the first trial, the first trial's start in a new worker process, the report after the last
trial, the CLI's exit), measured on short cells, where it is most of the wall time. Each run is the CLI in a
brand-new process (overhead.timed_cli, as §1 times it), with the Tune timeline of its trials and CPU seconds
read from /proc (the driver's; Ray's daemons and the trial workers', only this benchmark's own processes). Give
two checkouts to compare them (a change and the commit before it): their runs are interleaved A B B A A B ...,
each part's median per checkout is printed, and all runs go to the JSON given with --json. Not a §1 figure: no
plain arm, and nothing is written to results/ or RESULTS.md.

    python bench/fixed_cost.py --checkout /tmp/before --checkout . --reps 3          # ~4 min on 2 cores
    python bench/fixed_cost.py --local-ray --reps 3   # each CLI starts its own Ray, as a researcher's does
"""

from __future__ import annotations

import argparse
import json
import logging
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402
import overhead  # noqa: E402

# (label, where it is in a run's record): the parts, in the order a sweep goes through them
PARTS = (
    ("wall, Ray's start/connection set aside", ("wall_s",)),
    ("CLI start (Python, imports, options)", ("startup_s",)),
    ("prepare", ("prepare_s",)),
    ("before Ray (MLflow experiment, data)", ("before_ray_s",)),
    ("Ray connected -> first trial starts", ("timeline", "setup_s")),
    ("  of which before the Tuner is built", ("timeline", "setup_before_tuner_s")),
    ("first trial: Tune's start -> trainable runs", ("timeline", "actor_start_s")),
    ("first trial: in the trainable before epoch 1", ("timeline", "in_trial_setup_s")),
    ("first trial's start-up (start -> result - epoch)", ("timeline", "first_trial_setup_s")),
    ("later trials' start-up", ("timeline", "trial_start_s")),
    ("per epoch reporting", ("timeline", "per_epoch_s")),
    ("trial end", ("timeline", "trial_end_s")),
    ("after the last trial", ("timeline", "teardown_s")),
    ("  of which the report (publish)", ("timeline", "publish_s")),
    ("CLI exit", ("exit_s",)),
    ("  of which its last lines and quick exit (main)", ("derived", "main_tail_s")),
    ("  of which the interpreter's end", ("derived", "interpreter_end_s")),
    ("epoch times summed", ("timeline", "epoch_time_s_sum")),
    ("CPU: driver (whole process)", ("cpu", "driver_s")),
    ("CPU: driver in run_sweep", ("cpu", "driver_trials_s")),
    ("CPU: trial workers", ("cpu", "workers_s")),
    ("CPU: Ray's daemons", ("cpu", "ray_daemons_s")),
)


def value(run: dict, path: tuple[str, ...]) -> float | None:
    for key in path:
        run = run.get(key) if isinstance(run, dict) else None
    return run if isinstance(run, (int, float)) else None


def label_of(checkout: Path) -> str:
    try:
        commit = subprocess.run(["git", "-C", str(checkout), "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(checkout), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True).stdout.strip()
        return commit + ("+" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return checkout.name


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkout", type=Path, action="append", default=None,
                        help="a checkout whose `sweeps run` is timed (repeat for two; default: this one)")
    parser.add_argument("--reps", type=int, default=3, help="runs per checkout (default 3)")
    parser.add_argument("--epochs", type=int, default=1, help="epochs per cell (default 1)")
    parser.add_argument("--seeds", type=int, default=2, help="seeds per arm: cells = 2 x seeds (default 4 cells)")
    parser.add_argument("--concurrency", type=int, default=2, help="trials at once (default 2)")
    parser.add_argument("--local-ray", action="store_true",
                        help="no --address: each CLI starts a local Ray of its own (its start set aside)")
    parser.add_argument("--smoke", action="store_true", help="smoke profile, tiny data, one run per checkout")
    parser.add_argument("--json", type=Path, default=None, help="write every run's record here")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    checkouts = [c.resolve() for c in (args.checkout or [common.REPO])]
    labels = [label_of(c) for c in checkouts]
    labels = [f"{label} ({c})" if labels.count(label) > 1 else label for label, c in zip(labels, checkouts)]
    tmp = common.bench_env()
    from transfer_core.data import load_splits

    profile = "smoke" if args.smoke else "quick"
    overrides = {"optim.epochs": args.epochs, **({"data.synthetic_per_class": 8} if args.smoke else {})}
    spec = overhead.spec_file(tmp, profile)
    if not args.local_ray:
        print(f"ray.init {common.start_ray(2):.1f} s")
    configs = overhead.trial_configs(overhead.prepared_sweep(spec, tmp, args.seeds, overrides, 1, "plan"))
    load_splits(configs[0].data, configs[0].model.image_size)   # the decoded cache, as a second sweep finds it

    def run(checkout: Path, tag: str, seeds: int = args.seeds, over: dict = overrides) -> dict:
        argv = [spec, "--seeds", str(seeds), *overhead.cli_sets(over), "--max-concurrent", str(args.concurrency),
                "--cpus-per-trial", "1", "--max-failures", "0"]
        record = overhead.timed_cli(argv, tmp, args.concurrency, tag, cells=2 * seeds, repo=checkout,
                                    local_ray=args.local_ray, keep_events=True)
        marks = record["marks"]   # seconds from the process's start
        record["derived"] = {"main_tail_s": marks["main_end"] - marks["run_sweep_end"],
                             "interpreter_end_s": record["process_wall_s"] - marks["main_end"]}
        return record

    for checkout in checkouts:   # MLflow's schema, the first workers, pyc files: a one-off, set aside
        run(checkout, f"warm-{len(checkout.parts)}", seeds=1, over={**overrides, "optim.epochs": 1})
    runs: dict[str, list[dict]] = {label: [] for label in labels}
    reps = 1 if args.smoke else args.reps
    for i in range(reps):   # A B B A A B ...
        order = list(range(len(checkouts)))
        for k in (order if i % 2 == 0 else order[::-1]):
            record = run(checkouts[k], f"{k}-{i}")
            runs[labels[k]].append(record)
            print(f"{labels[k]}: {record['wall_s']:.1f} s", flush=True)

    width = max(len(label) for label, _ in PARTS)
    print(f"\nmedians over {reps} run(s), seconds ({len(configs)} cells x {args.epochs} epoch(s), concurrency "
          f"{args.concurrency}{', local Ray per CLI' if args.local_ray else ''}); each run in brackets")
    print(f"{'':{width}}  " + "  ".join(f"{label:>24}" for label in labels))
    for name, path in PARTS:
        cells = []
        for label in labels:
            values = [v for v in (value(r, path) for r in runs[label]) if v is not None]
            cells.append(f"{common.median(values):6.2f} ({', '.join(f'{v:.2f}' for v in values)})" if values else "-")
        print(f"{name:{width}}  " + "  ".join(f"{c:>24}" for c in cells))
    if args.json:
        args.json.write_text(json.dumps({"labels": labels, "checkouts": [str(c) for c in checkouts],
                                         "machine": common.machine(), "runs": runs}, indent=1, default=str))
    import ray

    ray.shutdown()
    common.cleanup(tmp)
    return 0


if __name__ == "__main__":
    sys.exit(main())
