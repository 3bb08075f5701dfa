"""Benchmark 6, the tool itself on a GPU: `sweeps run` as a user types it (the CLI in a fresh process, a
local Ray, MLflow in sqlite, the paper profile at 112 px on the synthetic faces), with 1, 0.5 and 0.25 GPU
per trial -> the sweep's wall time, the training span's aggregate images/s, GPU utilisation and memory;
then `sweeps table` on each result. bench/gpu_throughput.py measures the model and the engine without
Ray; this measures what Ray's fractional GPUs give a real sweep, and checks the whole stack on CUDA.

Needs the whole stack (ray, optuna, mlflow). On a lent GPU machine they are carried
(`bash bench/pack_stack.sh` here, then `bash bench/gpu_sweeps.sh` there; bench/README.md).

The sweep: one spec of 4 equal-cost cells (MAD's p1 in 0.2 .. 0.8, seed 0), the paper profile,
`data.synthetic_per_class=600` (3,780 training images), `optim.epochs=3`; each GPU share a fresh sweep with
its own MLflow store and Tune storage, trials at once = 1 / share, the profile's 4 CPUs per trial.
The data set's decode cache is warmed first, so no arm pays for generating the synthetic faces.

    python bench/gpu_sweeps.py --out-dir $OUT            # on the GPU machine (~4 min)
    python bench/gpu_sweeps.py --cpu-smoke               # here: the smoke profile on the CPU (~1 min)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import common  # noqa: E402

SPEC = """\
name: gpu_packing
title: "GPU packing benchmark"
description: "4 equal-cost cells of the full model (bench/gpu_sweeps.py)"
caption: "MAD's p1 on the paper profile, 3 epochs of the synthetic faces: a benchmark's cells, not a result."
kind: table
profile: {profile}
seeds: [0]
metric: sel_test_acc
mode: max
base:
  model.local_branch: true
  model.num_lanets: 2
  model.drop_variant: mad
  model.encoder: true
  model.msad_mode: head
  model.msad_rate: 0.3
grid:
  model.drop_rate: [0.2, 0.4, 0.6, 0.8]
label: "p1={{model.drop_rate}}"
"""
SHARES = (1.0, 0.25, 0.5)        # in this order: a run cut short keeps the two ends


def _sample_gpu(path: Path) -> subprocess.Popen | None:
    """nvidia-smi writing utilisation and memory every 0.5 s to `path` (None without nvidia-smi)."""
    try:
        return subprocess.Popen(["nvidia-smi", "--query-gpu=utilization.gpu,memory.used",
                                 "--format=csv,noheader,nounits", "-lms", "500"],
                                stdout=path.open("w"), stderr=subprocess.DEVNULL)
    except OSError:
        return None


def _gpu_samples(path: Path) -> dict:
    util, mem = [], []
    for line in path.read_text().splitlines() if path.is_file() else []:
        try:
            u, m = (float(x) for x in line.split(","))
        except ValueError:
            continue
        util.append(u)
        mem.append(m)
    if not util:
        return {}
    busy = [u for u in util if u > 0]
    return {"samples": len(util), "util_mean_pct": statistics.fmean(util),
            "util_mean_busy_pct": statistics.fmean(busy) if busy else 0.0,
            "memory_peak_gib": max(mem) / 1024}


def _read_sweep(uri: str) -> dict:
    """The cells' per-epoch timings and the data set's sizes, from the sweep's MLflow store."""
    from mlflow import MlflowClient

    client = MlflowClient(uri)
    exps = [e for e in client.search_experiments() if e.name != "Default"]
    out: dict = {"cells": [], "train_images": None, "parent_status": None}
    for exp in exps:
        for run in client.search_runs([exp.experiment_id], max_results=1000):
            tags = run.data.tags
            if tags.get("sweeps.role") == "parent":
                out["parent_status"] = tags.get("sweeps.status")
                with tempfile.TemporaryDirectory() as tmp:
                    try:
                        data = json.loads(Path(client.download_artifacts(run.info.run_id, "data.json", tmp))
                                          .read_text())
                        out["train_images"] = next(iter(data.values()))["images"]["train"]
                    except Exception as exc:  # noqa: BLE001 - the timings still stand
                        out["data_json_error"] = repr(exc)
                continue
            epochs = {}
            for key in ("train_images_per_s", "epoch_time_s", "test_acc"):
                for m in client.get_metric_history(run.info.run_id, key):
                    epochs.setdefault(m.step, {"epoch": m.step, "t_end": m.timestamp / 1000})[key] = m.value
            out["cells"].append({"arm": tags.get("sweeps.arm"), "status": tags.get("sweeps.status"),
                                 "worker": tags.get("sweeps.worker"),
                                 "epochs": [epochs[k] for k in sorted(epochs)]})
    return out


def _aggregate(sweep: dict) -> dict:
    """Images trained per second over the training span: from the first epoch's start (its end minus its
    time) to the last epoch's end, over every cell (evaluation and the gaps between trials included)."""
    n = sweep.get("train_images")
    starts, ends, images = [], [], 0
    for cell in sweep["cells"]:
        for e in cell["epochs"]:
            if "epoch_time_s" in e:
                starts.append(e["t_end"] - e["epoch_time_s"])
                ends.append(e["t_end"])
                images += n or 0
    span = max(ends) - min(starts) if ends else None
    last = [c["epochs"][-1].get("train_images_per_s") for c in sweep["cells"] if c["epochs"]]
    later = [e.get("train_images_per_s") for c in sweep["cells"] for e in c["epochs"][1:]
             if e.get("train_images_per_s")]
    # time between one epoch's end and the next one's start: its checkpoint, report and logging
    gaps: dict[int, list[float]] = {}
    for cell in sweep["cells"]:
        for prev, e in zip(cell["epochs"], cell["epochs"][1:]):
            if "epoch_time_s" in e:
                gaps.setdefault(prev["epoch"], []).append(e["t_end"] - e["epoch_time_s"] - prev["t_end"])
    return {"training_span_s": span, "epochs_trained": len(ends),
            "aggregate_images_per_s": images / span if span and n else None,
            "per_trial_last_epoch_images_per_s": [x for x in last if x],
            "per_trial_median_images_per_s": statistics.median(later) if later else None,
            "median_gap_after_epoch_s": {k: statistics.median(v) for k, v in sorted(gaps.items())}}


def run_arm(share: float, concurrent: int, spec: Path, work: Path, args, cpus: float | None,
            timeout_s: float) -> dict:
    folder = work / f"share-{share:g}-x{concurrent}"
    folder.mkdir(parents=True, exist_ok=True)
    uri = common.sqlite_uri(folder)
    cmd = [sys.executable, "-m", "sweeps", "run", str(spec), "--gpus-per-trial", f"{share:g}",
           "--max-concurrent", str(concurrent), "--set", f"optim.epochs={args.epochs}",
           "--set", f"data.synthetic_per_class={args.per_class}", "--tracking-uri", uri,
           "--storage", str(folder / "ray_results")]
    if cpus is not None:
        cmd += ["--cpus-per-trial", f"{cpus:g}"]
    sampler = _sample_gpu(folder / "gpu.csv") if not args.cpu_smoke else None
    t0 = time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=max(timeout_s, 1))
        rc, output = proc.returncode, proc.stdout + proc.stderr
    except subprocess.TimeoutExpired as exc:
        partial = exc.stdout or ""                    # bytes, even with text=True
        rc, output = "timeout", partial.decode(errors="replace") if isinstance(partial, bytes) else partial
    wall = time.perf_counter() - t0
    if sampler is not None:
        sampler.terminate()
        sampler.wait()
    result = {"gpu_per_trial": share, "concurrent": concurrent, "command": " ".join(cmd[1:]), "rc": rc,
              "wall_s": wall, "output_tail": output[-3000:], "gpu": _gpu_samples(folder / "gpu.csv")}
    try:
        sweep = _read_sweep(uri)
        result.update(sweep=sweep, **_aggregate(sweep))
    except Exception as exc:  # noqa: BLE001 - keep the arm's wall time and output
        result["read_error"] = repr(exc)
    table = subprocess.run([sys.executable, "-m", "sweeps", "table", str(spec), "--tracking-uri", uri,
                            "--format", "markdown"], capture_output=True, text=True, timeout=120)
    result["table_rc"], result["table"] = table.returncode, (table.stdout + table.stderr)[-2500:]
    print(f"share {share:g} x{concurrent}: rc {rc}, wall {wall:.1f} s, aggregate "
          f"{result.get('aggregate_images_per_s')} images/s, gpu {result['gpu']}, table rc {table.returncode}",
          flush=True)
    if rc != 0:
        print(output[-3000:], flush=True)
    return result


def load_cpus(profile: str) -> float:
    from search_spaces import load_profile

    return load_profile(profile).cpus_per_trial


def warm_cache(profile: str, per_class: int) -> float:
    """Decode (generate) the synthetic set once into TRANSFER_CACHE, as the sweeps will read it."""
    import dataclasses

    from search_spaces import load_profile
    from transfer_core.data import load_splits

    cfg = load_profile(profile).config()
    t0 = time.perf_counter()
    load_splits(dataclasses.replace(cfg.data, synthetic_per_class=per_class), cfg.model.image_size)
    return time.perf_counter() - t0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cpu-smoke", action="store_true",
                        help="the smoke profile on the CPU, GPU shares as CPU shares (checks the script here)")
    parser.add_argument("--out-dir", type=Path, default=None,
                        help="where gpu_sweeps.json goes (default: bench/results; with --cpu-smoke a temp folder)")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--per-class", type=int, default=600, help="data.synthetic_per_class")
    parser.add_argument("--before", type=Path, default=None,
                        help="an earlier gpu_sweeps.json (other code, same card) to show beside this one")
    parser.add_argument("--budget-s", type=float, default=330.0,
                        help="start no arm after this many seconds, and cut the one running at it")
    args = parser.parse_args(argv)
    t_begin = time.time()
    for key, value in common.ENV.items():
        os.environ.setdefault(key, value)
    os.environ.pop("RAY_ADDRESS", None)
    work = Path(tempfile.mkdtemp(prefix="transfer-gpu-sweeps-"))
    os.environ["TRANSFER_CACHE"] = str(work / "cache")
    profile = "smoke" if args.cpu_smoke else "paper"
    if args.cpu_smoke:
        args.epochs, args.per_class = min(args.epochs, 2), min(args.per_class, 16)
    import torch

    if not args.cpu_smoke and not torch.cuda.is_available():
        print("no CUDA device: run with --cpu-smoke for the CPU check", file=sys.stderr)
        return 2
    out_dir = args.out_dir or (Path(tempfile.gettempdir()) / "transfer-bench-smoke" if args.cpu_smoke
                               else common.RESULTS_DIR)
    machine = common.machine()
    if not args.cpu_smoke:
        machine["device"] = torch.cuda.get_device_name(0)
    spec = work / "gpu_packing.yaml"
    spec.write_text(SPEC.format(profile=profile))
    payload: dict = {"params": {"cpu_smoke": args.cpu_smoke, "profile": profile, "epochs": args.epochs,
                                "synthetic_per_class": args.per_class, "cells": 4,
                                "cpus_per_trial": 1 if args.cpu_smoke else load_cpus(profile), "spec": SPEC.format(profile=profile)},
                     "arms": [], "skipped": []}
    if args.before is not None:
        earlier = json.loads(args.before.read_text())
        payload["before"] = {"date": earlier.get("date"), "machine": earlier.get("machine"),
                             "arms": [{**{k: a.get(k) for k in ("gpu_per_trial", "concurrent", "rc", "wall_s",
                                                                "training_span_s", "aggregate_images_per_s")},
                                       **(_aggregate(a["sweep"]) if a.get("sweep") else {})}
                                      for a in earlier.get("arms", [])]}
    payload["cache_warm_s"] = warm_cache(profile, args.per_class)

    def save() -> None:
        payload["total_s"] = time.time() - t_begin
        common.write_result("gpu_sweeps", payload, machine, out_dir, smoke=args.cpu_smoke, render=args.cpu_smoke)

    save()
    # on the CPU a share of one GPU becomes a share of the 2 cores' trials: 1 trial of 1 CPU, then 2 of 1
    plan = [(0.0, 1, 1.0), (0.0, 2, 1.0)] if args.cpu_smoke else [(s, round(1 / s), None) for s in SHARES]
    for share, concurrent, cpus in plan:
        left = args.budget_s - (time.time() - t_begin)
        if left < 20:
            payload["skipped"].append(f"{share:g} GPU per trial: out of budget ({left:.0f} s left)")
            continue
        payload["arms"].append(run_arm(share, concurrent, spec, work, args, cpus, left))
        save()
    common.cleanup(work)
    print(f"done in {time.time() - t_begin:.0f} s", flush=True)
    return 0 if all(a["rc"] == 0 for a in payload["arms"]) else 1


# --------------------------------------------------------------------------- RESULTS.md

def _f(x, digits: int = 0) -> str:
    return "-" if x is None else f"{x:,.{digits}f}"


def summary(r: dict) -> list[list[str]]:
    arms = {a["gpu_per_trial"]: a for a in r.get("arms", []) if a.get("rc") == 0 and a.get("aggregate_images_per_s")}
    one = arms.get(1.0)
    if r.get("params", {}).get("cpu_smoke") or not one:
        return []
    best = max(arms.values(), key=lambda a: a["aggregate_images_per_s"])
    return [["6", f"`sweeps run` on the GPU: aggregate images/s at {best['gpu_per_trial']:g} GPU per trial "
                  "against 1", f"{best['aggregate_images_per_s'] / one['aggregate_images_per_s']:.2f}x", "none set",
             "n/a"]]


def _gap(a: dict, epoch: int) -> float | None:
    gaps = a.get("median_gap_after_epoch_s") or {}
    return gaps.get(str(epoch), gaps.get(epoch))


def render(r: dict) -> list[tuple[int, str]]:
    m = r.get("machine", {})
    p = r.get("params", {})
    text = ["### `sweeps run` on the GPU, through Ray: 1, 0.5 and 0.25 GPU per trial", "",
            f"*Measured {r.get('date', '?')}. Device: **{m.get('device', 'CPU (smoke)')}**. Host: "
            f"{common.machine_line(m)}.*", "",
            f"`python -m sweeps run` (a fresh process each, a local Ray, MLflow in sqlite) of {p.get('cells')} "
            f"equal-cost cells of the full model (MAD's p1 in 0.2 .. 0.8), the `{p.get('profile')}` profile "
            f"({p.get('cpus_per_trial'):g} CPUs per trial), {p.get('epochs')} epochs of the synthetic faces "
            f"(`data.synthetic_per_class={p.get('synthetic_per_class')}`), decode cache warm; each epoch "
            "trains, then evaluates validation and test; each trial logs its model at the end. *Aggregate*: "
            "images trained per second from the first epoch's start to the last epoch's end over all cells. "
            "*Gap after epoch k*: from epoch k's end to epoch k+1's start (the checkpoint, Tune's report, "
            "MLflow), median over the cells. GPU utilisation and memory: nvidia-smi every 0.5 s during the "
            "sweep.", ""]
    rows = []
    for a in r.get("arms", []):
        g = a.get("gpu", {})
        rows.append([f"{a['gpu_per_trial']:g}", a["concurrent"], a["rc"], _f(a.get("wall_s"), 1),
                     _f(a.get("training_span_s"), 1), _f(a.get("aggregate_images_per_s")),
                     _f(a.get("per_trial_median_images_per_s")), _f(_gap(a, 1), 2), _f(_gap(a, 2), 2),
                     _f(g.get("util_mean_pct")), _f(g.get("memory_peak_gib"), 1),
                     "ok" if a.get("table_rc") == 0 else f"rc {a.get('table_rc')}"])
    text.append(common.md_table(["GPU per trial", "trials at once", "sweeps run rc", "wall (s)",
                                 "training span (s)", "aggregate images/s", "per trial images/s (median, "
                                 "epochs 2+)", "gap after epoch 1 (s)", "gap after epoch 2 (s)",
                                 "GPU util mean %", "GPU memory peak GiB", "sweeps table"], rows))
    for s in r.get("skipped", []):
        text.append(f"\nSkipped: {s}.")
    arms = {a["gpu_per_trial"]: a for a in r.get("arms", []) if a.get("aggregate_images_per_s")}
    if 1.0 in arms and len(arms) > 1:
        base = arms[1.0]["aggregate_images_per_s"]
        ratios = ", ".join(f"{g:g} GPU per trial {a['aggregate_images_per_s'] / base:.2f}x"
                           for g, a in sorted(arms.items()) if g != 1.0)
        text += ["", f"Aggregate against 1 GPU per trial: {ratios}."]
    before = r.get("before")
    if before:
        rows = [[f"{b['gpu_per_trial']:g}", b["rc"], _f(b.get("wall_s"), 1), _f(b.get("aggregate_images_per_s")),
                 _f(b.get("per_trial_median_images_per_s")), _f(_gap(b, 1), 2), _f(_gap(b, 2), 2)]
                for b in before.get("arms", [])]
        text += ["", f"*Before* ({before.get('date', '?')}, an earlier device call, another machine of the same "
                     "kind; `results/gpu_sweeps_before_pacing.json`): every epoch checkpointed, the file fsynced "
                     "before Tune copied it, the state copied twice at a trial's end. A run cut at its budget "
                     "says `timeout`.", "",
                 common.md_table(["GPU per trial", "sweeps run rc", "wall (s)", "aggregate images/s",
                                  "per trial images/s (median, epochs 2+)", "gap after epoch 1 (s)",
                                  "gap after epoch 2 (s)"], rows)]
        text += ["", *findings(r)]
    return [(6, "\n".join(text))]


def findings(r: dict) -> list[str]:
    """What the before/after pair says, from the JSON (only where both have the arm)."""
    now = {a["gpu_per_trial"]: a for a in r.get("arms", []) if a.get("rc") == 0}
    then = {b["gpu_per_trial"]: b for b in r.get("before", {}).get("arms", [])}
    out = []
    if 1.0 in now and 1.0 in then and None not in (_gap(then[1.0], 1), _gap(now[1.0], 1), _gap(now[1.0], 2)):
        a, b = now[1.0], then[1.0]
        out.append(f"- **A checkpoint of the paper model's state** (520 MB with SGD's momentum) cost the trial "
                   f"{_gap(b, 1):.2f} s after every epoch before; now {_gap(a, 1):.2f} s when one is taken (not "
                   f"fsynced: Tune copies it into storage at once) and {_gap(a, 2):.2f} s after an epoch without "
                   "one (`sweeps.trainable.CheckpointPace`: a state over 64 MB at most once per 20 times what its "
                   "last checkpoint cost, and at the first and last epoch; here epochs 1 and 3 of 3. Measured "
                   "with the rule's first form, a state whose saving took over 0.1 s at most once per 40 times "
                   "that, which checkpointed the same epochs here).")
        out.append(f"- At 1 GPU per trial the sweep took {b['wall_s']:.0f} s before and {a['wall_s']:.0f} s now, "
                   f"but the trials' own training rate also differed between the two machines "
                   f"({_f(b.get('per_trial_median_images_per_s'))} and {_f(a.get('per_trial_median_images_per_s'))} "
                   "images/s), so only the gaps are the change's own measure, not the wall times.")
    if 1.0 in now and 0.25 in now:
        a, q = now[1.0], now[0.25]
        out.append(f"- **Packing pays for a whole sweep**: 4 trials at 0.25 GPU each trained "
                   f"{q['aggregate_images_per_s'] / a['aggregate_images_per_s']:.2f}x the images per second of one "
                   f"trial per GPU, where plain training processes added up to only 1.1x (the packing table above): "
                   f"one trial's start, evaluation, checkpoints and logging overlap another's training (mean GPU "
                   f"utilisation while in use {q.get('gpu', {}).get('util_mean_busy_pct', 0):.0f} %, against "
                   f"{a.get('gpu', {}).get('util_mean_busy_pct', 0):.0f} %). Each trial then trains at about a "
                   "quarter of the rate, so a single cell takes longer.")
    return out


if __name__ == "__main__":
    sys.exit(main())
