"""How hard is the synthetic face set, and what does the `quick` profile reach on it?

    .venv/bin/python bench/synthetic_baselines.py [--seeds 0 1] [--profile quick] [--set key=value ...]

Generates the synthetic set at the profile's size (timed), fits a logistic regression on raw pixels
(the "is it learnable, is it trivial" probe), then runs one trial per seed of two arms of the
`components` sweep, exactly as `sweeps run components` builds them: the Baseline (stem CNN + global
average pooling) and the full model (+ MSAD: LANets with MAD, encoder with MSAD). Each trial runs
in this process on one CPU thread, one after the other, as a sweep's trial does on one core.
Prints a markdown report: the machine, its load before and after, and the table. Results recorded
in bench/RESULTS_synthetic.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time

import numpy as np
import torch
import torch.nn.functional as F

from search_spaces import expand, load, load_profile
from transfer_core.config import DataConfig, parse_value
from transfer_core.data import load_splits
from transfer_core.data.synthetic import GENERATOR_VERSION, generate, n_test_per_class
from transfer_core.engine import fit

ARMS = {"Baseline": "Baseline (stem + GAP)", "+ MSAD": "Full model (LANets + MAD, encoder + MSAD)"}


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            cpu = next(line.split(":", 1)[1].strip() for line in fh if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return (f"{cpu}, {os.cpu_count()} logical CPUs; Python {platform.python_version()}, "
            f"torch {torch.__version__}, {platform.system()} {platform.release()}")


def load_text() -> str:
    one, five, _ = os.getloadavg()
    return f"{one:.2f} (1 min) / {five:.2f} (5 min)"


def logistic_probe(data: DataConfig, image_size: int, steps: int = 300) -> tuple[float, float, float]:
    """Multinomial logistic regression on standardised raw pixels (full-batch Adam, no augmentation),
    trained on train + val, scored on test. Returns (train_acc, test_acc, seconds)."""
    start = time.perf_counter()
    splits = load_splits(data, image_size)
    x = np.concatenate([splits.train.images, splits.val.images]).reshape(-1, image_size * image_size * 3) / 255.0
    y = torch.from_numpy(np.concatenate([splits.train.labels, splits.val.labels]))
    xt = splits.test.images.reshape(len(splits.test), -1) / 255.0
    mean, std = x.mean(0), x.std(0) + 1e-3
    X = torch.from_numpy(((x - mean) / std).astype(np.float32))
    Xt = torch.from_numpy(((xt - mean) / std).astype(np.float32))
    torch.manual_seed(0)
    W = torch.zeros(X.shape[1], splits.num_classes, requires_grad=True)
    b = torch.zeros(splits.num_classes, requires_grad=True)
    opt = torch.optim.Adam([W, b], lr=1e-3)
    for _ in range(steps):
        loss = F.cross_entropy(X @ W + b, y) + 1e-4 * W.pow(2).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        train = float(((X @ W + b).argmax(1) == y).float().mean())
        test = float(((Xt @ W + b).argmax(1).numpy() == splits.test.labels).mean())
    return train, test, time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--profile", default="quick")
    parser.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                        help="override a config key for every trial (as `sweeps run --set`)")
    parser.add_argument("--arms", nargs="+", default=list(ARMS), choices=list(ARMS))
    args = parser.parse_args(argv)

    torch.set_num_threads(1)
    os.environ.setdefault("TRANSFER_CACHE", tempfile.mkdtemp(prefix="synthetic-bench-"))
    overrides = {k: parse_value(v) for k, v in (s.split("=", 1) for s in args.sets)}
    overrides["num_threads"] = 1
    overrides["device"] = "cpu"
    plan = expand(load("components"), load_profile(args.profile), seeds=args.seeds, overrides=overrides)
    cells = [c for c in plan.cells if c.arm in args.arms]
    first = cells[0].config
    size, per_class = first.model.image_size, first.data.synthetic_per_class

    print(f"# Synthetic set v{GENERATOR_VERSION}: baselines with the `{args.profile}` profile\n")
    print(f"- machine: {machine()}")
    print(f"- load average at start: {load_text()}")
    print(f"- set: {per_class} train images per class ({7 * per_class} in all, "
          f"{first.data.val_fraction:.0%} carved for validation), test {n_test_per_class(per_class)} per class; "
          f"{size} px; chance 14.3 %")
    if overrides.keys() - {"num_threads", "device"}:
        print(f"- overrides: {', '.join(f'{k}={v}' for k, v in overrides.items())}")
    sys.stdout.flush()

    start = time.perf_counter()
    generate(first.data.synthetic_seed, per_class, "train")
    generate(first.data.synthetic_seed, per_class, "test")
    print(f"- generating the set at native size: {time.perf_counter() - start:.1f} s\n")

    rows = []
    train_acc, test_acc, seconds = logistic_probe(first.data, size)
    rows.append(("Logistic regression on raw pixels", "-", f"{test_acc:.1%}", "-", f"{train_acc:.1%}",
                 f"{seconds:.0f}", load_text()))
    for cell in cells:
        start = time.perf_counter()
        history = fit(cell.config)
        seconds = time.perf_counter() - start
        s, last = history.summary(), history.records[-1]
        rows.append((ARMS[cell.arm], str(cell.seed), f"{s['sel_test_acc']:.1%}", f"{s['best_test_acc']:.1%}",
                     f"{last['train_acc']:.1%}", f"{seconds:.0f}", load_text()))
        curve = " ".join(f"{r['test_acc']:.2f}" for r in history.records)
        print(f"<!-- {cell.arm} seed {cell.seed}: test acc by epoch {curve} -->")
        sys.stdout.flush()

    cfg = first
    print(f"\nProfile `{args.profile}`: {cfg.model.stem} stem width {cfg.model.stem_width}, "
          f"embed {cfg.model.embed_dim} x depth {cfg.model.depth} x {cfg.model.num_heads} heads, "
          f"{cfg.optim.optimizer} lr {cfg.optim.lr:g} {cfg.optim.schedule}, batch {cfg.optim.batch_size}, "
          f"{cfg.optim.epochs} epochs, augment {cfg.data.augment}; one trial at a time, 1 thread.\n")
    print("| model | seed | sel_test_acc | best_test_acc | final train acc | wall s | load avg after |")
    print("|---|---|---|---|---|---|---|")
    for row in rows:
        print("| " + " | ".join(row) + " |")
    print(f"\n- load average at end: {load_text()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
