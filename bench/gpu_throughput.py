"""Benchmark 6 (GPU): the paper profile at 112 px: training images/s and model FLOP utilisation with bf16
autocast, channels_last and torch.compile on and off; the engine's real data path; trials packed per GPU.

Needs torch (and torchvision, numpy, pillow, pyyaml) only: no ray, optuna or mlflow, so it runs on a lent
GPU machine with the project installed `--no-deps`. `bench/gpu.sh` is the one call that runs it there.

Parts, each written to the JSON as soon as it is done (a run stopped at its limit keeps what it had):
1. the device; forward MACs per image counted by torch.utils.flop_counter (the issue's figure, 15.28 GMACs
   per 112-px image forward, is what MFU uses: training = 3 x forward = 91.7 GFLOP per image); a bf16
   8192^3 matrix product as the achievable peak, beside the data-sheet peak;
2. the model's training step (SGD as in the paper profile, batch 64, tensors already on the GPU) in
   variants: fp32; bf16 autocast; + channels_last; + torch.compile (with and without channels_last);
   images/s and MFU against both peaks;
3. the engine as a paper trial runs it: `transfer_core.engine.train_one_epoch` with the real loader
   (synthetic faces at 112 px, the `released` augmentation, the profile's 3 loader workers), the
   engine's CUDA defaults (bf16 autocast, channels_last, no compile) - is the data path the limit?;
4. (--packing) trials packed per GPU: 1, 2 and 4 processes training at once on the one GPU (what Ray's
   gpus_per_trial 1, 0.5 and 0.25 do: they share the device, nothing partitions it) -> aggregate images/s.

    python bench/gpu_throughput.py --out-dir $OUT --packing      # on the GPU machine (~5-8 min)
    python bench/gpu_throughput.py --cpu-smoke --packing         # here: tiny sizes on the CPU (~1 min)
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import multiprocessing as mp
import os
import sys
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import common  # noqa: E402

GMACS_FORWARD = 15.28                    # per 112-px image, the figure for the paper model
TRAIN_FLOPS_PER_IMAGE = 3 * 2 * GMACS_FORWARD * 1e9
# dense bf16 tensor-core peaks from the data sheets, TFLOP/s (no sparsity)
SPEC_PEAK_TFLOPS = {"H200": 989.4, "H100 80GB HBM3": 989.4, "H100 SXM": 989.4, "H100 NVL": 835.0,
                    "H100 PCIe": 756.0, "H100": 989.4, "A100": 312.0, "L40S": 362.0, "L4": 121.0}
VARIANTS = [  # name, amp, channels_last, compile
    ("fp32", "off", False, False),
    ("bf16", "bf16", False, False),
    ("bf16 + channels_last (the engine's CUDA default)", "bf16", True, False),
    ("bf16 + channels_last + compile", "bf16", True, True),
    ("bf16 + compile", "bf16", False, True),
]


def spec_peak(name: str) -> float | None:
    for key in sorted(SPEC_PEAK_TFLOPS, key=len, reverse=True):
        if key in name:
            return SPEC_PEAK_TFLOPS[key]
    return None


def configs(smoke: bool):
    from search_spaces import load_profile

    paper = load_profile("paper").config()
    if not smoke:   # enough images that an epoch of the engine part lasts a few seconds on an H100
        return dataclasses.replace(paper, data=dataclasses.replace(paper.data, synthetic_per_class=600))
    small = load_profile("smoke").config()
    return dataclasses.replace(paper, model=small.model,
                               data=dataclasses.replace(paper.data, synthetic_per_class=8, num_workers=1),
                               optim=dataclasses.replace(paper.optim, batch_size=8))


def sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize()


def device_info(device) -> dict:
    import torch

    info = {"device": str(device), "torch": torch.__version__}
    if device.type == "cuda":
        p = torch.cuda.get_device_properties(device)
        info.update(name=p.name, memory_gib=round(p.total_memory / 2**30, 1), sms=p.multi_processor_count,
                    capability=f"{p.major}.{p.minor}", cuda=torch.version.cuda)
    else:
        info.update(name=f"CPU ({common._cpu_model()}, {os.cpu_count()} cores)")
    return info


def count_macs(model_cfg, device) -> float:
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from transfer_core.models import build_model

    model = build_model(model_cfg).to(device).eval()
    x = torch.randn(1, 3, model_cfg.image_size, model_cfg.image_size, device=device)
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(x)
    return counter.get_total_flops() / 2 / 1e9


def matmul_tflops(device, n: int = 8192, reps: int = 10) -> float | None:
    import torch

    if device.type != "cuda":
        return None
    a = torch.randn(n, n, device=device, dtype=torch.bfloat16)
    b = torch.randn(n, n, device=device, dtype=torch.bfloat16)
    for _ in range(3):
        a @ b
    sync(device)
    t0 = time.perf_counter()
    for _ in range(reps):
        a @ b
    sync(device)
    return 2 * n**3 * reps / (time.perf_counter() - t0) / 1e12


def train_step_rate(cfg, device, amp: str, channels_last: bool, compile_: bool, seconds: float,
                    warmup: int = 5, barrier=None) -> dict:
    """images/s of the training step on tensors already on the device (engine.train_one_epoch's body)."""
    import torch
    import torch.nn.functional as F

    from transfer_core.engine import _autocast, build_optimizer, seed_everything
    from transfer_core.models import build_model

    seed_everything(0)
    model = build_model(cfg.model).to(device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = build_optimizer(model, cfg.optim)
    step_model = torch.compile(model) if compile_ else model
    b, s = cfg.optim.batch_size, cfg.model.image_size
    x = torch.randn(b, 3, s, s, device=device)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, cfg.model.num_classes, (b,), device=device)

    def step():
        with _autocast(device, amp):
            logits = step_model(x)
        loss = F.cross_entropy(logits.float(), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    t0 = time.perf_counter()
    for _ in range(warmup):
        step()
    sync(device)
    warmup_s = time.perf_counter() - t0
    if barrier is not None:
        barrier.wait()
    steps, t0 = 0, time.perf_counter()
    while True:
        step()
        steps += 1
        if steps % 5 == 0:
            sync(device)
            if time.perf_counter() - t0 >= seconds:
                break
    sync(device)
    elapsed = time.perf_counter() - t0
    out = {"images_per_s": steps * b / elapsed, "steps": steps, "seconds": elapsed, "warmup_s": warmup_s,
           "batch": b, "t_start": t0, "t_end": t0 + elapsed}
    if device.type == "cuda":
        out["max_memory_gib"] = round(torch.cuda.max_memory_allocated(device) / 2**30, 2)
    return out


def engine_rate(cfg, device, epochs: int = 2) -> dict:
    """engine.train_one_epoch with the real loader, as a paper trial runs it (CUDA: bf16, channels_last)."""
    import torch

    from transfer_core.data import build_train_loader, load_splits
    from transfer_core.engine import build_optimizer, seed_everything, train_one_epoch
    from transfer_core.models import build_model

    seed_everything(0)
    t0 = time.perf_counter()
    data = load_splits(cfg.data, cfg.model.image_size)
    decode_s = time.perf_counter() - t0
    amp = "bf16" if device.type == "cuda" else "off"
    channels_last = device.type == "cuda" and cfg.channels_last
    model = build_model(cfg.model).to(device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = build_optimizer(model, cfg.optim)
    out = {"decode_s": decode_s, "train_images": len(data.train), "augment": cfg.data.augment,
           "num_workers": cfg.data.num_workers, "epochs": []}
    for augment in (cfg.data.augment, "light"):
        data_cfg = dataclasses.replace(cfg.data, augment=augment)
        loader = build_train_loader(data.train, data_cfg, cfg.model.image_size, cfg.optim.batch_size)
        rates = [train_one_epoch(model, loader, optimizer, cfg.optim, device, amp, channels_last)
                 ["train_images_per_s"] for _ in range(epochs)]
        out[f"images_per_s_{augment}"] = rates[-1]
        out["epochs"].append({augment: rates})
        # the loader alone, same workers
        t0 = time.perf_counter()
        n = sum(len(yb) for _, yb in loader)
        out[f"loader_only_images_per_s_{augment}"] = n / (time.perf_counter() - t0)
    return out


def _pack_worker(cfg, device_name, seconds, barrier, queue) -> None:
    import torch

    try:
        torch.set_num_threads(1)
        device = torch.device(device_name)
        queue.put(train_step_rate(cfg, device, "bf16" if device.type == "cuda" else "off",
                                  device.type == "cuda", False, seconds, barrier=barrier))
    except BaseException as exc:  # OOM and friends: recorded, not fatal
        try:
            barrier.abort()
        except Exception:
            pass
        queue.put({"error": f"{type(exc).__name__}: {str(exc)[:300]}"})


def packing(cfg, device, n: int, seconds: float) -> dict:
    """n processes training at once on the one device; aggregate = all images / the common window."""
    ctx = mp.get_context("spawn")
    barrier, queue = ctx.Barrier(n), ctx.Queue()
    procs = [ctx.Process(target=_pack_worker, args=(cfg, str(device), seconds, barrier, queue)) for _ in range(n)]
    for p in procs:
        p.start()
    results = [queue.get(timeout=600) for _ in procs]
    for p in procs:
        p.join(timeout=60)
    errors = [r["error"] for r in results if "error" in r]
    if errors:
        return {"processes": n, "error": errors[0]}
    start = max(r["t_start"] for r in results)    # perf_counter is system-wide (CLOCK_MONOTONIC) on Linux
    end = min(r["t_end"] for r in results)
    per = [r["images_per_s"] for r in results]
    return {"processes": n, "gpu_per_trial": 1 / n, "aggregate_images_per_s": sum(per), "per_process": per,
            "overlap_s": end - start, "max_memory_gib": [r.get("max_memory_gib") for r in results]}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cpu-smoke", action="store_true", help="tiny model and sizes on the CPU (a test here)")
    parser.add_argument("--out-dir", type=Path, default=None,
                        help="where gpu.json goes (default: bench/results; with --cpu-smoke a temp folder)")
    parser.add_argument("--seconds", type=float, default=10.0, help="timed seconds per variant")
    parser.add_argument("--packing", action="store_true", help="also 1, 2 and 4 trials packed on the GPU")
    parser.add_argument("--no-compile", action="store_true", help="skip the torch.compile variants")
    parser.add_argument("--budget-s", type=float, default=480.0,
                        help="stop starting new parts after this many seconds (the device call's limit is 600)")
    parser.add_argument("--peak-tflops", type=float, default=None, help="data-sheet bf16 peak, if not known here")
    args = parser.parse_args(argv)
    t_begin = time.time()
    import torch

    smoke = args.cpu_smoke
    if not smoke and not torch.cuda.is_available():
        print("no CUDA device: run with --cpu-smoke for the CPU check", file=sys.stderr)
        return 2
    device = torch.device("cpu" if smoke else "cuda")
    seconds = 1.0 if smoke else args.seconds
    if smoke:
        torch.set_num_threads(2)
    out_dir = args.out_dir or (Path("/tmp/transfer-bench-smoke") if smoke else common.RESULTS_DIR)
    out_path = Path(out_dir) / "gpu.json"
    import tempfile

    os.environ.setdefault("TRANSFER_CACHE", tempfile.mkdtemp(prefix="transfer-gpu-cache-"))
    cfg = configs(smoke)
    machine = common.machine()
    info = device_info(device)
    machine["device"] = info["name"]
    peak = args.peak_tflops or (spec_peak(info["name"]) if device.type == "cuda" else None)
    payload: dict = {"params": {"cpu_smoke": smoke, "image_size": cfg.model.image_size,
                                "batch_size": cfg.optim.batch_size, "seconds_per_variant": seconds,
                                "model": dataclasses.asdict(cfg.model), "optimizer": cfg.optim.optimizer,
                                "gmacs_forward_issue": GMACS_FORWARD},
                     "device": info, "spec_peak_tflops": peak, "variants": {}, "skipped": []}

    def save() -> None:
        common.write_result("gpu", payload, machine, out_dir, smoke=smoke, render=smoke)

    def left() -> float:
        return args.budget_s - (time.time() - t_begin)

    try:
        payload["gmacs_forward_counted"] = count_macs(cfg.model, device)
        payload["matmul_bf16_tflops"] = matmul_tflops(device)
        print(f"{info}; counted {payload['gmacs_forward_counted']:.4g} GMACs/image forward; "
              f"matmul {payload['matmul_bf16_tflops']}", flush=True)
        save()
        for name, amp, cl, comp in VARIANTS:
            if comp and (args.no_compile or (smoke and cl is False)):
                payload["skipped"].append(f"{name}: {'--no-compile' if args.no_compile else 'one compile variant in the smoke'}")
                continue
            need = seconds + (150 if comp and not smoke else 20)
            if left() < need:
                payload["skipped"].append(f"{name}: out of time")
                continue
            try:
                r = train_step_rate(cfg, device, amp, cl, comp, seconds)
            except Exception as exc:  # e.g. compile without a compiler on the CPU smoke machine
                r = {"error": f"{type(exc).__name__}: {str(exc)[:300]}"}
            if "images_per_s" in r:
                r["mfu_spec"] = (r["images_per_s"] * TRAIN_FLOPS_PER_IMAGE / (peak * 1e12)) if peak else None
                mm = payload.get("matmul_bf16_tflops")
                r["mfu_matmul"] = r["images_per_s"] * TRAIN_FLOPS_PER_IMAGE / (mm * 1e12) if mm else None
            payload["variants"][name] = r
            print(f"{name}: {r}", flush=True)
            save()
        if left() > 60 or smoke:
            try:
                payload["engine"] = engine_rate(cfg, device)
            except Exception as exc:
                payload["engine"] = {"error": f"{type(exc).__name__}: {str(exc)[:300]}",
                                     "trace": traceback.format_exc()[-1500:]}
            print(f"engine: {payload['engine']}", flush=True)
            save()
        else:
            payload["skipped"].append("engine: out of time")
        if args.packing:
            payload["packing"] = []
            for n in (1, 2) if smoke else (1, 2, 4):
                if left() < seconds + 45 and not smoke:
                    payload["skipped"].append(f"packing {n}: out of time")
                    continue
                r = packing(cfg, device, n, seconds)
                payload["packing"].append(r)
                print(f"packing {n}: {r}", flush=True)
                save()
    finally:
        payload["total_s"] = time.time() - t_begin
        save()
    print(f"wrote {out_path}")
    return 0


# --------------------------------------------------------------------------- RESULTS.md

NOT_MEASURED = (
    "**Not measured yet.** This task was not lent a GPU machine (the device tool's `status` said: not drawn; "
    "about 10 % of this project's tasks get one), so there are no GPU numbers. The script is ready: "
    "`bench/gpu.sh` runs `bench/gpu_throughput.py` in one call (the paper profile at 112 px: images/s and MFU "
    "with bf16 autocast, channels_last and torch.compile on and off, the engine's real data path, and 1, 2, "
    "4 trials packed per GPU) and needs only the preinstalled torch there; "
    "`python bench/gpu_throughput.py --cpu-smoke --packing` runs the same code on tiny sizes on a CPU. "
    "See README.md for the one device call and how to record its output here.")


def summary(r: dict) -> list[list[str]]:
    v = r.get("variants", {})
    best = max((x for x in v.values() if "images_per_s" in x), key=lambda x: x["images_per_s"], default=None)
    if best is None:
        return []
    name = next(k for k, x in v.items() if x is best)
    mfu = best.get("mfu_spec")
    return [["6", f"paper model training images/s on {r['device']['name']} (best: {name})",
             f"{best['images_per_s']:.0f} images/s, MFU {'-' if mfu is None else f'{100 * mfu:.0f} %'}",
             "none set", "n/a"]]


def render(r: dict) -> list[tuple[int, str]]:
    p = r["params"]
    smoke = p.get("cpu_smoke")
    head = (f"*Measured {r['date']}{' (CPU SMOKE: tiny model on the CPU, not a measurement)' if smoke else ''}. "
            f"Device: **{r['device']['name']}** ({r['device'].get('memory_gib', '?')} GiB, torch "
            f"{r['device']['torch']}, CUDA {r['device'].get('cuda', '-')}). Host: {common.machine_line(r['machine'])}.*")
    peak = r.get("spec_peak_tflops")
    mm = r.get("matmul_bf16_tflops")
    text = [head, "",
            f"Model: the paper profile's TransFER at {p['image_size']} px ({p['model']['stem']} stem, D="
            f"{p['model']['embed_dim']}, depth {p['model']['depth']}), {p['optimizer']}, batch {p['batch_size']}, "
            f"{p['seconds_per_variant']:.0f} s timed per variant after warm-up. MFU = images/s x 3 x 2 x "
            f"{GMACS_FORWARD} GMACs / peak; peaks: data sheet {peak or '?'} TFLOP/s, measured bf16 8192^3 "
            f"matmul {'-' if mm is None else f'{mm:.0f}'} TFLOP/s. torch's flop counter finds "
            f"{r.get('gmacs_forward_counted', float('nan')):.4g} GMACs per image forward.", ""]
    rows = []
    for name, x in r.get("variants", {}).items():
        if "error" in x:
            rows.append([name, "error", x["error"][:80], "", "", ""])
            continue
        rows.append([name, f"{x['images_per_s']:.0f}",
                     "-" if x.get("mfu_spec") is None else f"{100 * x['mfu_spec']:.1f} %",
                     "-" if x.get("mfu_matmul") is None else f"{100 * x['mfu_matmul']:.1f} %",
                     f"{x['warmup_s']:.1f}", x.get("max_memory_gib", "-")])
    text += [common.md_table(["variant", "images/s", "MFU (data sheet)", "MFU (measured matmul)",
                              "warm-up incl. compile (s)", "peak memory (GiB)"], rows)]
    e = r.get("engine")
    if e and "error" not in e:
        text += ["", f"The engine as a paper trial runs it (`train_one_epoch`, real loader, {e['num_workers']} workers, "
                 f"the engine's device defaults (CUDA: bf16 + channels_last), {e['train_images']} synthetic images, "
                 f"the second of 2 epochs): `{e['augment']}` augmentation "
                 f"{e['images_per_s_' + e['augment']]:.0f} images/s (its loader alone "
                 f"{e['loader_only_images_per_s_' + e['augment']]:.0f}); `light` augmentation "
                 f"{e['images_per_s_light']:.0f} images/s (loader alone {e['loader_only_images_per_s_light']:.0f})."]
    elif e:
        text += ["", f"Engine part failed: {e['error']}"]
    if r.get("packing"):
        rows = [[x["processes"], f"{x.get('gpu_per_trial', 1 / x['processes']):g}",
                 x.get("error") or f"{x['aggregate_images_per_s']:.0f}",
                 "" if "error" in x else ", ".join(f"{v:.0f}" for v in x["per_process"])] for x in r["packing"]]
        text += ["", "Trials packed per GPU (separate processes training at once on the one device, bf16 + "
                 "channels_last, no compile; Ray's fractional `gpus_per_trial` only co-locates them):", "",
                 common.md_table(["trials", "GPU per trial", "aggregate images/s", "per trial"], rows)]
    if r.get("skipped"):
        text += ["", "Skipped: " + "; ".join(r["skipped"]) + "."]
    return [(6, "\n".join(text))]


if __name__ == "__main__":
    sys.exit(main())
