"""Benchmark 4: the data path: decoded-cache loads and augmentation against what the model consumes;
the first epoch with and without the decode-once cache.

- Cache load: `load_splits` of the quick profile's synthetic set with the cache warm (memory-mapped
  arrays, the training split gathered after carving validation; every array touched), as images/s,
  beside the cold build (generate, write the entry) - and the same for an image-folder copy of the
  set written as JPEG files (100 x 100, like RAF-DB's aligned faces), where the cold path decodes files.
- Augmentation: the training loader alone (sampling, gathering, transform) for each recipe at the
  quick profile's size, 1 torch thread, batch 64; plus the paper's `released` recipe at 112 px.
- The model's consumption rate: a bare training step (forward/backward/step on ready tensors) of the
  quick model, 1 thread, batch 64. Ratio: loader images/s / model images/s (the data path's share
  of a step with num_workers 0 is 1 / (1 + ratio)).
- First epoch: a fresh process calls `fit` for one epoch with an empty cache folder (cold) and again
  with the entry present (warm); time from `fit` being called to epoch 1's end, and the process's
  wall time.

    python bench/data_path.py            # ~3 minutes on 2 cores
    python bench/data_path.py --smoke    # ~30 s
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

RECIPES = ("none", "light", "apvit", "released")

FIRST_EPOCH = r"""
import json, sys, time
t_process = float(sys.argv[2])
from transfer_core.config import from_flat
from transfer_core.engine import fit
import transfer_core.data, transfer_core.models  # fit imports these lazily: keep imports out of the timing
flat = json.loads(sys.argv[1])
config = from_flat(flat)
marks = {}
t0 = time.perf_counter(); w0 = time.time()
def on_epoch(record, state):
    marks["first_epoch_s"] = time.perf_counter() - t0
    marks["epoch_time_s"] = record["epoch_time_s"]
    return True
fit(config, on_epoch=on_epoch)
marks["import_s"] = w0 - t_process
marks["process_s"] = time.time() - t_process
print("RESULT " + json.dumps(marks))
"""


def touch(splits) -> int:
    """Read every byte of every split (memory-mapped arrays are lazy); returns the image count."""
    n = 0
    for split in (splits.train, splits.val, splits.test):
        int(split.images.sum(dtype="uint64"))
        n += len(split)
    return n


def cache_loads(data_cfg, image_size: int, root: Path, repeats: int) -> dict:
    """Cold (build) and warm (load) `load_splits` times in this process, each into a fresh cache folder."""
    from transfer_core.data import load_splits

    cold, warm, n = [], [], 0
    for i in range(repeats):
        cfg = dataclasses.replace(data_cfg, cache_dir=str(root / f"cache-{i}"))
        t0 = time.perf_counter()
        n = touch(load_splits(cfg, image_size))
        cold.append(time.perf_counter() - t0)
        for _ in range(2):
            t0 = time.perf_counter()
            touch(load_splits(cfg, image_size))
            warm.append(time.perf_counter() - t0)
    return {"images": n, "cold_s": cold, "warm_s": warm,
            "cold_images_per_s": n / common.median(cold), "warm_images_per_s": n / common.median(warm)}


def write_image_folder(root: Path, per_class: int, size: int = 100) -> Path:
    """The synthetic faces as an image-folder tree of JPEG files (train/ and test/, one folder per class)."""
    from PIL import Image

    from transfer_core.config import DataConfig
    from transfer_core.data import load_splits

    splits = load_splits(DataConfig(synthetic_per_class=per_class, val_fraction=0.0,
                                    cache_dir=str(root / "gen-cache")), size)
    folder = root / "faces-jpeg"
    for name, split in (("train", splits.train), ("test", splits.test)):
        for i, (image, label) in enumerate(zip(split.images, split.labels)):
            d = folder / name / f"{label}_{splits.class_names[label]}"
            d.mkdir(parents=True, exist_ok=True)
            Image.fromarray(image).save(d / f"{i:05d}.jpg", quality=92)
    return folder


def loader_rates(config, data, epochs: int = 3) -> float:
    """Median images/s of the training loader alone, 1 thread unless the config says otherwise."""
    return common.median(common.loader_rates(config, data, epochs, threads=config.num_threads or 1))


def first_epoch(config, cache_dir: Path) -> dict:
    from transfer_core.config import to_flat

    flat = to_flat(dataclasses.replace(config, optim=dataclasses.replace(config.optim, epochs=1),
                                       data=dataclasses.replace(config.data, cache_dir=str(cache_dir))))
    t = time.time()
    out = subprocess.run([sys.executable, "-c", FIRST_EPOCH, json.dumps(flat), repr(t)], capture_output=True,
                         text=True, cwd=common.REPO, env={**os.environ, "PYTHONPATH": str(common.REPO)})
    line = [x for x in out.stdout.splitlines() if x.startswith("RESULT ")]
    if out.returncode != 0 or not line:
        raise RuntimeError(f"first-epoch subprocess failed ({out.returncode}): {out.stderr[-2000:]}")
    return json.loads(line[-1][len("RESULT "):])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    common.standard_args(parser, "data_path")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    tmp = common.bench_env(cache=False)
    machine = common.machine()
    sys.path.insert(0, str(common.REPO))

    import torch  # noqa: F401

    from search_spaces import load_profile
    from transfer_core.data import load_splits

    import throughput

    # one torch thread, as the runner gives a quick-profile trial (cpus_per_trial 1)
    config = dataclasses.replace(load_profile("smoke" if args.smoke else "quick").config(), num_threads=1)
    if args.smoke:
        config = dataclasses.replace(config, data=dataclasses.replace(config.data, synthetic_per_class=8))
    size, per_class = config.model.image_size, config.data.synthetic_per_class
    repeats = 1 if args.smoke else 3

    # cache loads: synthetic and JPEG image folder
    synthetic = cache_loads(config.data, size, tmp / "synthetic", repeats)
    print(f"synthetic cache: {synthetic['cold_images_per_s']:.0f} cold, {synthetic['warm_images_per_s']:.0f} warm images/s")
    jpeg_root = write_image_folder(tmp / "jpeg", per_class)
    jpeg_cfg = dataclasses.replace(config.data, dataset="imagefolder", root=str(jpeg_root))
    jpeg = cache_loads(jpeg_cfg, size, tmp / "jpeg", repeats)
    print(f"jpeg cache: {jpeg['cold_images_per_s']:.0f} cold, {jpeg['warm_images_per_s']:.0f} warm images/s")

    # augmentation at the quick size, and the model's consumption
    data = load_splits(dataclasses.replace(config.data, cache_dir=str(tmp / "synthetic" / "cache-0")), size)
    aug = {}
    for recipe in RECIPES:
        cfg = dataclasses.replace(config, data=dataclasses.replace(config.data, augment=recipe))
        aug[recipe] = loader_rates(cfg, data, 2 if args.smoke else 3)
        print(f"loader {recipe} @ {size} px: {aug[recipe]:.0f} images/s")
    paper_size = 112
    data112 = load_splits(dataclasses.replace(config.data, synthetic_per_class=min(per_class, 50),
                                              cache_dir=str(tmp / "c112")), paper_size)
    cfg112 = dataclasses.replace(config, model=dataclasses.replace(config.model, image_size=paper_size),
                                 data=dataclasses.replace(config.data, augment="released"))
    aug112 = loader_rates(cfg112, data112, 2 if args.smoke else 3)
    print(f"loader released @ 112 px: {aug112:.0f} images/s")
    model_rate = common.median(throughput.bare_loop(config, len(data.train), 2 if args.smoke else 3)[1:])
    print(f"model step: {model_rate:.0f} images/s")

    # first epoch, fresh processes: cold (empty cache folder) then warm, alternating
    first = {"synthetic": {"cold": [], "warm": []}, "jpeg": {"cold": [], "warm": []}}
    for name, data_cfg in (("synthetic", config.data), ("jpeg", jpeg_cfg)):
        cfg = dataclasses.replace(config, data=data_cfg)
        for i in range(1 if args.smoke else 2):
            folder = tmp / "first" / f"{name}-{i}"
            first[name]["cold"].append(first_epoch(cfg, folder))
            first[name]["warm"].append(first_epoch(cfg, folder))
        print(f"first epoch {name}: {first[name]}")

    def med(name, kind, key):
        return common.median(x[key] for x in first[name][kind])

    derived = {
        "aug_over_model": {k: v / model_rate for k, v in aug.items()},
        "data_share_of_step": {k: 1.0 / (1.0 + v / model_rate) for k, v in aug.items()},
        "first_epoch_s": {n: {k: med(n, k, "first_epoch_s") for k in ("cold", "warm")} for n in first},
        "process_s": {n: {k: med(n, k, "process_s") for k in ("cold", "warm")} for n in first},
        "epoch_time_s": {n: {k: med(n, k, "epoch_time_s") for k in ("cold", "warm")} for n in first},
    }
    payload = {"params": {"profile": "smoke" if args.smoke else "quick", "image_size": size,
                          "synthetic_per_class": per_class, "batch_size": config.optim.batch_size,
                          "threads": config.num_threads, "augment": config.data.augment,
                          "jpeg_size": 100, "repeats": repeats},
               "cache": {"synthetic": synthetic, "jpeg": jpeg},
               "loader_images_per_s": aug, "loader_released_112_images_per_s": aug112,
               "model_images_per_s": model_rate, "first_epoch": first, "derived": derived}
    path = common.write_result("data_path", payload, machine, common.out_dir_for(args), smoke=args.smoke)
    print(f"wrote {path}")
    common.cleanup(tmp)
    return 0


def summary(r: dict) -> list[list[str]]:
    d, p = r["derived"], r["params"]
    aug = p["augment"]
    fe = d["first_epoch_s"]
    return [["4", f"loader (`{aug}` augmentation) / model step, images/s",
             f"{d['aug_over_model'][aug]:.1f}x", "none set", "n/a"],
            ["4", "first epoch, cold cache / warm cache (synthetic; JPEG folder)",
             f"{fe['synthetic']['cold']:.1f} / {fe['synthetic']['warm']:.1f} s; "
             f"{fe['jpeg']['cold']:.1f} / {fe['jpeg']['warm']:.1f} s", "none set", "n/a"]]


def render(r: dict) -> list[tuple[int, str]]:
    p, d = r["params"], r["derived"]
    head = (f"*Measured {r['date']}{' (SMOKE: tiny sizes, not a measurement)' if r.get('smoke') else ''}. "
            f"Machine: {common.machine_line(r['machine'])}.*")
    c = r["cache"]
    rows = []
    for name, label in (("synthetic", "synthetic faces (generated)"), ("jpeg", "image folder, JPEG 100 px")):
        x = c[name]
        rows.append([label, x["images"], f"{common.median(x['cold_s']):.2f}", f"{x['cold_images_per_s']:.0f}",
                     f"{common.median(x['warm_s']):.3f}", f"{x['warm_images_per_s']:.0f}",
                     f"{x['warm_images_per_s'] / r['model_images_per_s']:.0f}x"])
    model = r["model_images_per_s"]
    aug_rows = [[k, f"{v:.0f}", f"{v / model:.1f}x", f"{100 * d['data_share_of_step'][k]:.0f} %"]
                for k, v in r["loader_images_per_s"].items()]
    fe, ps, et = d["first_epoch_s"], d["process_s"], d["epoch_time_s"]
    fe_rows = [[n, f"{fe[n]['cold']:.2f}", f"{fe[n]['warm']:.2f}", f"{fe[n]['cold'] / fe[n]['warm']:.2f}x",
                f"{et[n]['cold']:.2f} / {et[n]['warm']:.2f}", f"{ps[n]['cold']:.1f} / {ps[n]['warm']:.1f}"]
               for n in fe]
    text = [head, "",
            f"The `{p['profile']}` profile: {p['synthetic_per_class']} synthetic images per class at "
            f"{p['image_size']} px, batch {p['batch_size']}, {p['threads']} torch thread, num_workers 0. No goal "
            "was set for this section; the ratios below are what matters.", "",
            f"**Decoded-cache loads** (`load_splits`, every array read; cold = an empty cache folder: "
            f"generate or decode, then write the entry; medians of {p['repeats']}):", "",
            common.md_table(["data set", "images", "cold (s)", "cold images/s", "warm (s)", "warm images/s",
                             "warm / model step"], rows), "",
            f"**Augmentation vs consumption**: the training loader alone (sampling, gathering, transform) "
            f"against the quick model's bare training step, **{model:.0f} images/s**:", "",
            common.md_table(["recipe", "loader images/s", "loader / model", "data share of a step"], aug_rows), "",
            f"The paper's `released` recipe (per-sample torchvision v2: RandomResizedCrop, flip, RandAugment, "
            f"RandomErasing) at 112 px: {r['loader_released_112_images_per_s']:.0f} images/s on one core "
            "(compare section 6's GPU consumption; the paper profile uses 3 loader workers).", "",
            "**First epoch** with an empty cache folder (cold) and with the entry present (warm), each in a fresh "
            "process (seconds from `fit` being called to the end of epoch 1; epoch 1's own time; the whole "
            "process, imports included):", "",
            common.md_table(["data set", "cold (s)", "warm (s)", "cold / warm", "epoch 1 itself, cold / warm (s)",
                             "process, cold / warm (s)"], fe_rows)]
    return [(4, "\n".join(text))]


if __name__ == "__main__":
    sys.exit(main())
