"""Benchmark 2: training images/s inside a trial against a bare PyTorch loop of the same model and batch.

Three ways to train the quick profile's model (same TrialConfig, same batch size, 1 torch thread),
measured side by side in one process, interleaved, two repetitions:
- bare: `build_model` + `build_optimizer`, forward / cross-entropy / backward / step on tensors made
  in advance (no data pipeline, no evaluation), the same number of images per epoch in the same
  batches as the training split;
- fit: `transfer_core.engine.fit` in this process (its per-epoch `train_images_per_s`: the training
  loop with the data loader and light augmentation, evaluation excluded);
- trial: the same config as a one-cell `sweeps run` (Ray Tune worker, MLflow, checkpoints), its
  per-epoch `train_images_per_s` as reported to Tune.
Epoch 1 is warm-up; the median of the later epochs is used. Goal: trial / bare >= 0.95.
The loader alone (batches of the training split with augmentation, no model) is timed too, which
says how much of the gap the data path explains.

    python bench/throughput.py            # ~3 minutes on 2 cores
    python bench/throughput.py --smoke    # ~1 minute
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
import textwrap
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402
import overhead  # noqa: E402

GOAL = 0.95

SPEC = """
name: bench_throughput
title: Throughput benchmark
description: one quick-profile cell
caption: Benchmark cell (bench/throughput.py).
kind: table
profile: {profile}
metric: sel_test_acc
mode: max
arms:
  - {{label: Full model, set: {{model.drop_variant: mad}}}}
seeds: [0]
table: {{baseline: Full model}}
"""


def bare_loop(config, n_images: int, epochs: int) -> list[float]:
    """images/s per epoch of the model's training step alone, on tensors made in advance."""
    import torch
    import torch.nn.functional as F

    from transfer_core.engine import build_optimizer, seed_everything
    from transfer_core.models import build_model

    torch.set_num_threads(config.num_threads or torch.get_num_threads())
    seed_everything(config.seed)
    model = build_model(config.model)
    model.train()
    optimizer = build_optimizer(model, config.optim)
    s, bs = config.model.image_size, config.optim.batch_size
    sizes = [bs] * (n_images // bs) + ([n_images % bs] if n_images % bs else [])
    batches = [(torch.randn(b, 3, s, s), torch.randint(0, config.model.num_classes, (b,))) for b in sizes]
    rates = []
    for _ in range(epochs):
        t0 = time.perf_counter()
        for x, y in batches:
            logits = model(x)
            loss = F.cross_entropy(logits, y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        rates.append(n_images / (time.perf_counter() - t0))
    return rates


def fit_rates(config, data) -> tuple[list[float], float]:
    from transfer_core.engine import fit

    t0 = time.perf_counter()
    history = fit(config, data=data)
    return [r["train_images_per_s"] for r in history.records], time.perf_counter() - t0


def trial_rates(spec: str, tmp: Path, overrides: dict, tag: str) -> tuple[list[float], float, dict]:
    r = overhead.run_sweep_timed(spec, tmp, 1, overrides, 1, tag, keep_events=True)
    results = [p for kind, _, _, p in r["events"] if kind == "result"]
    starts = [t for kind, t, _, _ in r["events"] if kind == "start"]
    ends = [t for kind, t, _, _ in r["events"] if kind == "complete"]
    trial_wall = (ends[0] - starts[0]) if starts and ends else float("nan")
    return [p["train_images_per_s"] for p in results], trial_wall, r


def later(rates: list[float]) -> float:
    """Median of the epochs after the first (warm-up)."""
    return common.median(rates[1:] if len(rates) > 1 else rates)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    common.standard_args(parser, "throughput")
    parser.add_argument("--epochs", type=int, default=4)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    tmp = common.bench_env()
    machine = common.machine()
    overhead.install_timeline()

    profile = "smoke" if args.smoke else "quick"
    epochs = 2 if args.smoke else args.epochs
    overrides = {"optim.epochs": epochs}
    if args.smoke:
        overrides["data.synthetic_per_class"] = 8
    spec = tmp / "bench_throughput.yaml"
    spec.write_text(textwrap.dedent(SPEC.format(profile=profile)))
    spec = str(spec)

    ray_start_s = common.start_ray(2)
    prepared = overhead.prepared_sweep(spec, tmp, 1, overrides, 1, "plan")
    config, = overhead.trial_configs(prepared)
    from transfer_core.data import load_splits

    data = load_splits(config.data, config.model.image_size)
    n_train = len(data.train)
    overhead.run_sweep_timed(spec, tmp, 1, {**overrides, "optim.epochs": 1}, 1, "warm")   # one-off Ray/MLflow warm-up
    print(f"ray.init {ray_start_s:.1f} s; {n_train} training images per epoch")

    reps = 1 if args.smoke else 2
    out = {"bare": [], "fit": [], "trial": [], "loader": [], "trial_wall_s": [], "fit_wall_s": []}
    for rep in range(reps):
        out["bare"].append(bare_loop(config, n_train, epochs))
        rates, wall = fit_rates(config, data)
        out["fit"].append(rates)
        out["fit_wall_s"].append(wall)
        rates, wall, _ = trial_rates(spec, tmp, overrides, f"trial{rep}")
        out["trial"].append(rates)
        out["trial_wall_s"].append(wall)
        out["loader"].append(common.loader_rates(config, data))
        print(f"rep {rep}: bare {later(out['bare'][-1]):.0f}, fit {later(out['fit'][-1]):.0f}, "
              f"trial {later(out['trial'][-1]):.0f}, loader {later(out['loader'][-1]):.0f} images/s")

    med = {k: common.median(later(r) for r in out[k]) for k in ("bare", "fit", "trial", "loader")}
    derived = {"images_per_s": med, "trial_over_bare": med["trial"] / med["bare"],
               "fit_over_bare": med["fit"] / med["bare"], "trial_over_fit": med["trial"] / med["fit"],
               # if loading and the model step simply add up (num_workers 0: they run one after the other)
               "expected_fit_from_parts": 1.0 / (1.0 / med["bare"] + 1.0 / med["loader"]),
               "trial_effective_images_per_s": n_train * epochs / common.median(out["trial_wall_s"]),
               "fit_effective_images_per_s": n_train * epochs / common.median(out["fit_wall_s"])}
    payload = {"params": {"profile": profile, "epochs": epochs, "n_train": n_train,
                          "batch_size": config.optim.batch_size, "image_size": config.model.image_size,
                          "threads": config.num_threads, "augment": config.data.augment,
                          "repetitions": reps, "model": dataclasses.asdict(config.model)},
               "ray_start_s": ray_start_s, "runs": out, "derived": derived}
    path = common.write_result("throughput", payload, machine, common.out_dir_for(args), smoke=args.smoke)
    print(f"wrote {path}")
    import ray

    ray.shutdown()
    common.cleanup(tmp)
    return 0


def summary(r: dict) -> list[list[str]]:
    d = r["derived"]
    return [["2", "training images/s, trial / bare PyTorch loop", f"{d['trial_over_bare']:.2f}", ">= 0.95",
             common.verdict(d["trial_over_bare"] >= GOAL)]]


def render(r: dict) -> list[tuple[int, str]]:
    p, d = r["params"], r["derived"]
    m = d["images_per_s"]
    head = (f"*Measured {r['date']}{' (SMOKE: tiny sizes, not a measurement)' if r.get('smoke') else ''}. "
            f"Machine: {common.machine_line(r['machine'])}.*")
    what = (f"The `{p['profile']}` profile's full model ({p['image_size']} px, stem `{p['model']['stem']}` width "
            f"{p['model']['stem_width']}, D={p['model']['embed_dim']}, depth {p['model']['depth']}), batch "
            f"{p['batch_size']}, {p['threads']} torch thread, {p['n_train']} training images per epoch, "
            f"{p['epochs']} epochs (the first is warm-up; medians of the rest), {p['repetitions']} "
            "repetitions interleaved. *bare*: forward/backward/step on tensors made in advance; *fit*: "
            "`transfer_core.engine.fit` in-process (data loader + `" + p["augment"] + "` augmentation inside "
            "the timed training loop); *trial*: the same config as a one-cell `sweeps run`, its reported "
            "`train_images_per_s`; *loader*: the training loader alone.")
    rows = [["bare PyTorch loop", f"{m['bare']:.0f}", "1.00"],
            ["`fit` in-process", f"{m['fit']:.0f}", f"{d['fit_over_bare']:.2f}"],
            ["trial (`sweeps run`)", f"{m['trial']:.0f}", f"**{d['trial_over_bare']:.2f}**"],
            ["loader alone (no model)", f"{m['loader']:.0f}", f"{m['loader'] / m['bare']:.2f}"]]
    text = [head, "", what, "", common.md_table(["what", "training images/s", "/ bare"], rows), "",
            f"Trial / bare = **{d['trial_over_bare']:.2f}** against the goal >= {GOAL}: "
            f"{common.verdict(d['trial_over_bare'] >= GOAL)}. Trial / fit = {d['trial_over_fit']:.2f} (what Ray's "
            f"worker changes), fit / bare = {d['fit_over_bare']:.2f} (what the engine's loop adds). If data "
            f"loading and the model step simply add up (num_workers 0), fit would run at "
            f"{d['expected_fit_from_parts']:.0f} images/s (measured: {m['fit']:.0f}).",
            "",
            f"Counting everything a trial does per epoch (evaluation of val and test, reporting, checkpoints) "
            f"and its start: {d['trial_effective_images_per_s']:.0f} training images per second of trial wall "
            f"time, against {d['fit_effective_images_per_s']:.0f} for `fit` in-process (evaluation included)."]
    return [(2, "\n".join(text))]


if __name__ == "__main__":
    sys.exit(main())
