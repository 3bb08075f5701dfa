"""Benchmark 6 (GPU): the paper profile at 112 px: training images/s and model FLOP utilisation with bf16
autocast, channels_last and torch.compile on and off; the engine's real data path; trials packed per GPU.

Needs torch (and torchvision, numpy, pillow, pyyaml) only: no ray, optuna or mlflow, so it runs on a lent
GPU machine with the project installed `--no-deps`. `bench/gpu.sh` is the one call that runs it there.

Always first: the device; forward MACs per image counted by torch.utils.flop_counter (the issue's figure,
15.28 GMACs per 112-px image forward, is what MFU uses: training = 3 x forward = 91.7 GFLOP per image); a
bf16 8192^3 matrix product as the achievable peak, beside the data-sheet peak. Then the parts (--parts),
each written to the JSON as soon as it is done (a run stopped at its limit keeps what it had):
- steps: the model's training step (SGD as in the paper profile, batch 64, tensors already on the GPU) in
  eager variants (fp32; bf16; channels_last; cudnn.benchmark; fused SGD; batch 256): images/s and MFU;
- engine: `transfer_core.engine.train_one_epoch` with the real loader (synthetic faces at 112 px, the
  `released` augmentation, the profile's 3 loader workers), the engine's loop before and after
  2026-11-27, and the loader alone - is the data path the limit?;
- packing (with --packing): 1, 2 and 4 processes training at once on the one GPU (what Ray's
  gpus_per_trial 1, 0.5 and 0.25 do: they share the device, nothing partitions it) -> aggregate images/s;
- compile: the torch.compile variants, last (default, without channels_last, reduce-overhead);
- fit (only when named): `engine.fit` end to end, each arm in a fresh process.
--merge adds the parts run now to an earlier gpu.json of the same card.

    python bench/gpu_throughput.py --out-dir $OUT --packing      # on the GPU machine (~5-6 min)
    python bench/gpu_throughput.py --cpu-smoke --packing         # here: tiny sizes on the CPU (~2 min)
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

GMACS_FORWARD = 15.28                    # per 112-px image, the issue's figure for the paper model
TRAIN_FLOPS_PER_IMAGE = 3 * 2 * GMACS_FORWARD * 1e9
# dense bf16 tensor-core peaks from the data sheets, TFLOP/s (no sparsity)
SPEC_PEAK_TFLOPS = {"H200": 989.4, "H100 80GB HBM3": 989.4, "H100 SXM": 989.4, "H100 NVL": 835.0,
                    "H100 PCIe": 756.0, "H100": 989.4, "A100": 312.0, "L40S": 362.0, "L4": 121.0}
# The training step's variants, in the order they run (a run cut short keeps the first ones). "before" is
# the engine's CUDA set-up until 2026-11-27 (bf16 autocast + channels_last); the later rows add what the
# engine does not (cudnn.benchmark: it costs a trial's first epoch ~20 s, see the fit part) and what a trial
# can ask for (TrialConfig.compile); a fused optimizer step measured no gain.
BASE = {"amp": "bf16", "channels_last": True, "compile": False, "benchmark": False, "fused": False, "batch": None}
VARIANTS = [
    ("fp32", dict(BASE, amp="off", channels_last=False)),
    ("bf16", dict(BASE, channels_last=False)),
    ("bf16 + channels_last (the engine's CUDA default)", dict(BASE)),
    ("bf16 + channels_last + cudnn.benchmark", dict(BASE, benchmark=True)),
    ("bf16 + channels_last + cudnn.benchmark + fused SGD", dict(BASE, benchmark=True, fused=True)),
    ("bf16 + cudnn.benchmark + fused SGD (no channels_last)", dict(BASE, channels_last=False, benchmark=True,
                                                                  fused=True)),
    ("bf16 + channels_last + cudnn.benchmark + fused SGD, batch 256 (not the recipe: headroom)",
     dict(BASE, benchmark=True, fused=True, batch=256)),
    ("bf16 + channels_last + cudnn.benchmark + fused SGD + compile", dict(BASE, benchmark=True, fused=True,
                                                                          compile=True)),
    ("bf16 + cudnn.benchmark + fused SGD + compile (no channels_last)",
     dict(BASE, channels_last=False, benchmark=True, fused=True, compile=True)),
    ("bf16 + cudnn.benchmark + fused SGD + compile reduce-overhead (CUDA graphs; no channels_last)",
     dict(BASE, channels_last=False, benchmark=True, fused=True, compile="reduce-overhead")),
]
PARTS = ("steps", "engine", "packing", "compile", "fit")
PACKED = dict(BASE)     # what each packed trial runs: the engine's CUDA default


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


def count_macs(model_cfg, device=None) -> float:
    """GMACs of one forward, counted on the meta device (shapes only) with the math attention kernel: the same on
    any machine. Counted on the CPU with its fused attention kernel, torch's counter (no formula for it) left out
    the attention matmuls: 14.80 G where the model costs 15.28 G. `device` is kept for the callers; not used."""
    import torch
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode

    from transfer_core.models import build_model

    with torch.device("meta"):
        model = build_model(model_cfg).eval()
        x = torch.empty(1, 3, model_cfg.image_size, model_cfg.image_size)
    with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter, torch.no_grad():
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


def train_step_rate(cfg, device, v: dict, seconds: float, warmup: int = 5, barrier=None) -> dict:
    """images/s of the training step on tensors already on the device (engine.train_one_epoch's body)."""
    import torch
    import torch.nn.functional as F

    from transfer_core.engine import _autocast, build_optimizer, seed_everything
    from transfer_core.models import build_model

    on_gpu = device.type == "cuda"
    amp, channels_last = v["amp"], v["channels_last"]
    torch.backends.cudnn.benchmark = v["benchmark"]
    seed_everything(0)
    model = build_model(cfg.model).to(device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = build_optimizer(model, cfg.optim, fused=v["fused"] and on_gpu)
    mode = v["compile"] if isinstance(v["compile"], str) else None
    step_model = torch.compile(model, mode=mode) if v["compile"] else model
    b, s = v["batch"] or cfg.optim.batch_size, cfg.model.image_size
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
    if on_gpu:
        out["max_memory_gib"] = round(torch.cuda.max_memory_allocated(device) / 2**30, 2)
        torch.cuda.reset_peak_memory_stats(device)
    return out


def _train_one_epoch_before(model, loader, optimizer, device, amp, channels_last) -> float:
    """engine.train_one_epoch as it was until 2026-11-27 (loss and hits read back at every step): the
    baseline for the engine part. Returns images/s."""
    import torch
    import torch.nn.functional as F

    from transfer_core.engine import _autocast

    model.train()
    loss_sum, correct, n = 0.0, 0, 0
    start = time.perf_counter()
    for x, y in loader:
        x = x.to(device, non_blocking=True)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        y = y.to(device, non_blocking=True)
        with _autocast(device, amp):
            logits = model(x)
        loss = F.cross_entropy(logits.float(), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        loss_sum += float(loss.detach()) * y.numel()
        correct += int((logits.argmax(dim=1) == y).sum())
        n += y.numel()
    return n / (time.perf_counter() - start)


def engine_rate(cfg, device, epochs: int = 2) -> dict:
    """A paper trial's epoch with the real loader (synthetic faces, the profile's workers): the engine as it
    was until 2026-11-27 ("before": loss and hits read back every step, pageable batches) against the engine
    now ("after": one read per epoch, pinned batches). Also the loader alone, at the profile's workers and at
    8: is the data path the limit?"""
    import torch

    from transfer_core.data import build_train_loader, load_splits
    from transfer_core.engine import build_optimizer, seed_everything, train_one_epoch
    from transfer_core.models import build_model

    on_gpu = device.type == "cuda"
    t0 = time.perf_counter()
    data = load_splits(cfg.data, cfg.model.image_size)
    decode_s = time.perf_counter() - t0
    amp = "bf16" if on_gpu else "off"
    channels_last = on_gpu and cfg.channels_last
    torch.backends.cudnn.benchmark = False
    out = {"decode_s": decode_s, "train_images": len(data.train), "augment": cfg.data.augment,
           "num_workers": cfg.data.num_workers, "epochs": {}, "images_per_s": {}, "loader_only": {},
           "after_means": "one read per epoch, pinned batches"}
    for augment in (cfg.data.augment, "light"):
        data_cfg = dataclasses.replace(cfg.data, augment=augment)
        for arm in ("before", "after"):
            after = arm == "after"
            seed_everything(0)
            model = build_model(cfg.model).to(device)
            if channels_last:
                model = model.to(memory_format=torch.channels_last)
            optimizer = build_optimizer(model, cfg.optim)
            loader = build_train_loader(data.train, data_cfg, cfg.model.image_size, cfg.optim.batch_size,
                                        pin_memory=after and on_gpu)
            if after:
                rates = [train_one_epoch(model, loader, optimizer, cfg.optim, device, amp, channels_last)
                         ["train_images_per_s"] for _ in range(epochs)]
            else:
                rates = [_train_one_epoch_before(model, loader, optimizer, device, amp, channels_last)
                         for _ in range(epochs)]
            out["epochs"][f"{augment}, {arm}"] = rates
            out["images_per_s"][f"{augment}, {arm}"] = rates[-1]
            print(f"  engine {augment}, {arm}: {rates}", flush=True)
            del model, optimizer
        for workers in ((cfg.data.num_workers, 8) if augment == cfg.data.augment else (cfg.data.num_workers,)):
            loader = build_train_loader(data.train, dataclasses.replace(data_cfg, num_workers=workers),
                                        cfg.model.image_size, cfg.optim.batch_size)
            t0 = time.perf_counter()
            n = sum(len(yb) for _, yb in loader)
            out["loader_only"][f"{augment}, {workers} workers"] = n / (time.perf_counter() - t0)
    return out


FIT_ARMS = (  # name, TrialConfig changes, torch.backends.cudnn.benchmark
    ("engine default (eager)", {}, False),
    ("compile reduce-overhead (CUDA graphs), channels_last off", {"compile": "reduce-overhead",
                                                                  "channels_last": False}, False),
    ("eager + cudnn.benchmark", {}, True),
)


def _fit_child(cfg, changes: dict, benchmark: bool, queue) -> None:
    try:
        t0 = time.perf_counter()
        import transfer_core.engine as engine

        import torch

        torch.backends.cudnn.benchmark = benchmark
        history = engine.fit(dataclasses.replace(cfg, **changes))
        keys = ("epoch", "epoch_time_s", "train_images_per_s", "train_loss", "val_acc", "test_acc")
        queue.put({"seconds_in_process": time.perf_counter() - t0,
                   "epochs": [{k: r.get(k) for k in keys} for r in history.records]})
    except BaseException as exc:
        queue.put({"error": f"{type(exc).__name__}: {str(exc)[:300]}", "trace": traceback.format_exc()[-1500:]})


def fit_rate(cfg, device, epochs: int, left) -> dict:
    """engine.fit end to end, as a trial calls it (training, validation and test every epoch), each arm in
    a fresh process so that the first epoch pays what a trial's first epoch pays."""
    from transfer_core.data import load_splits

    load_splits(cfg.data, cfg.model.image_size)          # into the cache: the children only read it
    cfg = dataclasses.replace(cfg, device=device.type, optim=dataclasses.replace(cfg.optim, epochs=epochs))
    ctx = mp.get_context("spawn")
    out = {}
    for name, changes, benchmark in FIT_ARMS:
        if device.type != "cuda" and changes.get("compile") == "reduce-overhead":
            changes = dict(changes, compile="default")   # CUDA graphs are CUDA only (the CPU smoke)
        if left() < (150 if changes.get("compile") else 45):
            out[name] = {"error": "out of time"}
            continue
        queue = ctx.Queue()
        proc = ctx.Process(target=_fit_child, args=(cfg, changes, benchmark, queue))
        t0 = time.perf_counter()
        proc.start()
        try:
            r = queue.get(timeout=max(30.0, left() + 30))
        except Exception:                   # queue.Empty: the child died (OOM, a crash) or ran out of time
            proc.terminate()
            r = {"error": f"no result (exit code {proc.exitcode})"}
        proc.join(timeout=60)
        r["wall_s"] = time.perf_counter() - t0
        if "error" in r:
            out[name] = r
            continue
        out[name] = r
        print(f"  fit {name}: {r}", flush=True)
    return out


def _pack_worker(cfg, device_name, seconds, barrier, queue) -> None:
    import torch

    try:
        torch.set_num_threads(1)
        device = torch.device(device_name)
        on_gpu = device.type == "cuda"
        v = dict(PACKED, amp="bf16" if on_gpu else "off", channels_last=on_gpu)
        queue.put(train_step_rate(cfg, device, v, seconds, barrier=barrier))
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
    results = []
    try:
        for _ in procs:
            results.append(queue.get(timeout=seconds + 180))   # imports, CUDA start, warm-up, the timed part
    except Exception:                                              # queue.Empty: a worker died without a word
        results.append({"error": f"no result (exit codes {[p.exitcode for p in procs]})"})
        for p in procs:
            p.terminate()
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
    parser.add_argument("--seconds", type=float, default=6.0, help="timed seconds per variant")
    parser.add_argument("--packing", action="store_true", help="also 1, 2 and 4 trials packed on the GPU")
    parser.add_argument("--parts", default=None,
                        help=f"comma-separated parts to run, of {','.join(PARTS)} (default: all but fit; "
                             "packing only with --packing)")
    parser.add_argument("--merge", type=Path, default=None,
                        help="start from this earlier gpu.json and add or replace the parts run now")
    parser.add_argument("--no-compile", action="store_true", help="skip the torch.compile variants")
    parser.add_argument("--budget-s", type=float, default=420.0,
                        help="stop starting new parts after this many seconds (the device call's limit is 600)")
    parser.add_argument("--peak-tflops", type=float, default=None, help="data-sheet bf16 peak, if not known here")
    args = parser.parse_args(argv)
    if args.parts is None:
        parts = {"steps", "engine", "compile"} | ({"packing"} if args.packing else set())
    else:
        parts = {p.strip() for p in args.parts.split(",") if p.strip()}
        unknown = parts - set(PARTS)
        if unknown:
            parser.error(f"--parts: unknown {', '.join(sorted(unknown))}; expected some of {','.join(PARTS)}")
    earlier = None
    if args.merge is not None:
        try:
            earlier = json.loads(args.merge.read_text())
        except (OSError, ValueError) as exc:
            parser.error(f"--merge {args.merge}: cannot read an earlier gpu.json ({exc})")
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
    if earlier is not None:
        if earlier.get("device", {}).get("name") != info["name"] or earlier.get("params", {}).get("cpu_smoke") != smoke:
            print(f"--merge {args.merge}: measured on {earlier.get('device', {}).get('name')!r}, not on "
                  f"{info['name']!r}: ratios across cards mean nothing; run without --merge", file=sys.stderr)
            return 2
        for key in ("variants", "engine", "packing", "fit", "fit_in_process", "gmacs_forward_counted",
                    "matmul_bf16_tflops"):
            if key in earlier:
                payload[key] = earlier[key]
        payload["earlier_runs"] = earlier.get("earlier_runs", []) + [
            {"date": earlier.get("date"), "machine": earlier.get("machine"), "total_s": earlier.get("total_s"),
             "skipped": earlier.get("skipped", [])}]
    payload["parts_run_last"] = sorted(parts)

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
        def run_variant(name: str, v: dict) -> None:
            if earlier is not None and "error" not in payload["variants"].get(name, {"error": ""}):
                return                              # a merged run measures only what the earlier one lacks
            comp = v["compile"]
            if smoke:
                v = dict(v, batch=v["batch"] and 16)
            if comp and (args.no_compile or (smoke and v["channels_last"] is False)):
                payload["skipped"].append(f"{name}: {'--no-compile' if args.no_compile else 'one compile variant in the smoke'}")
                return
            need = seconds + (150 if comp and not smoke else 20)
            if left() < need:
                payload["skipped"].append(f"{name}: out of time")
                return
            try:
                r = train_step_rate(cfg, device, v, seconds)
            except Exception as exc:  # e.g. compile without a compiler on the CPU smoke machine
                r = {"error": f"{type(exc).__name__}: {str(exc)[:300]}"}
            if "images_per_s" in r:
                r["settings"] = v
                r["mfu_spec"] = (r["images_per_s"] * TRAIN_FLOPS_PER_IMAGE / (peak * 1e12)) if peak else None
                mm = payload.get("matmul_bf16_tflops")
                r["mfu_matmul"] = r["images_per_s"] * TRAIN_FLOPS_PER_IMAGE / (mm * 1e12) if mm else None
            payload["variants"][name] = r
            print(f"{name}: {r}", flush=True)
            save()

        # eager variants, then the engine and packing, then compile last: compiling can take minutes and
        # must not crowd out the rest of a run cut at its budget
        if "steps" in parts:
            for name, v in VARIANTS:
                if not v["compile"]:
                    run_variant(name, v)
        if "engine" in parts:
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
        if "fit" in parts:
            try:
                payload["fit"] = fit_rate(cfg, device, 2 if smoke else 3, left)
            except Exception as exc:
                payload["fit"] = {"error": f"{type(exc).__name__}: {str(exc)[:300]}",
                                  "trace": traceback.format_exc()[-1500:]}
            print(f"fit: {payload['fit']}", flush=True)
            save()
        if "packing" in parts:
            payload["packing"] = []
            for n in (1, 2) if smoke else (1, 2, 4):
                if left() < seconds + 45 and not smoke:
                    payload["skipped"].append(f"packing {n}: out of time")
                    continue
                r = packing(cfg, device, n, seconds)
                payload["packing"].append(r)
                payload["packing_settings"] = PACKED
                print(f"packing {n}: {r}", flush=True)
                save()
        if "compile" in parts:
            for name, v in VARIANTS:
                if v["compile"]:
                    run_variant(name, v)
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
    recipe = [x for x in v.values() if "images_per_s" in x and not (x.get("settings") or {}).get("batch")]
    best = max(recipe, key=lambda x: x["images_per_s"], default=None)   # at the recipe's batch size
    if best is None:
        return []
    name = next(k for k, x in v.items() if x is best)
    mfu = best.get("mfu_spec")
    return [["6", f"paper model training images/s on {r['device']['name']} (best: {name})",
             f"{best['images_per_s']:.0f} images/s, MFU {'-' if mfu is None else f'{100 * mfu:.0f} %'}",
             "none set", "n/a"]]


def findings(r: dict) -> list[str]:
    """What the numbers say, computed from them (a part missing from the JSON leaves its line out)."""
    v, f, out = r.get("variants", {}), r.get("fit") or {}, []

    def times(arm, first=1):
        return ", ".join(f"{e['epoch_time_s']:.1f}" for e in arm["epochs"][first:])

    eager = max((x["images_per_s"] for x in v.values() if "images_per_s" in x and not x["settings"]["compile"]
                 and not x["settings"]["batch"]), default=None)
    graphs = max((x["images_per_s"] for x in v.values() if "images_per_s" in x
                  and x["settings"]["compile"] == "reduce-overhead"), default=None)
    big = max((x["images_per_s"] for x in v.values() if "images_per_s" in x and x["settings"]["batch"]),
              default=None)
    if eager and graphs:
        out.append(f"- **The step is bound by launching kernels, not by the GPU's arithmetic.** At the recipe's "
                   f"batch of 64, the best eager step runs {eager:.0f} images/s; CUDA graphs "
                   f"(`torch.compile(mode=\"reduce-overhead\")`) run {graphs:.0f}, {graphs / eager:.2f}x"
                   + (f", and a batch of 256 eager {big:.0f}" if big else "") + ". Packed trials "
                   "barely add up (the table above): processes time-share the GPU, each still launch-bound.")
    fits = {k: x for k, x in f.items() if isinstance(x, dict) and "epochs" in x}
    plain = next((x for k, x in fits.items() if k.startswith("engine default")), None)
    bench = next((x for k, x in fits.items() if "cudnn.benchmark" in k and "compile" not in k), None)
    comp = next((x for k, x in fits.items() if "compile" in k), None)
    if plain and bench:
        out.append(f"- **cudnn.benchmark does not pay for a trial.** In a fresh process the first epoch took "
                   f"{bench['epochs'][0]['epoch_time_s']:.1f} s with it and {plain['epochs'][0]['epoch_time_s']:.1f} s "
                   f"without (every new shape is timed: train, the short last batch, evaluation), and the later "
                   f"epochs were no faster ({times(bench)} s against {times(plain)} s). The engine "
                   "leaves it off.")
    n = (r.get("engine") or {}).get("train_images")

    def break_even(base) -> str:
        saved = sum(p["epoch_time_s"] - c["epoch_time_s"] for p, c in zip(base["epochs"][1:], comp["epochs"][1:]))
        saved /= max(1, len(comp["epochs"]) - 1)
        cost = comp["epochs"][0]["epoch_time_s"] - base["epochs"][0]["epoch_time_s"]
        text = f"{cost:.0f} s more once and {saved:.2f} s less per epoch than eager {times(base)} s"
        if n and saved > 0:
            text += f", break-even after ~{cost / saved * n / 12271:.0f} epochs of RAF-DB's 12,271 images"
        return text

    if comp and (plain or bench):
        comp_name = next(k for k in fits if "compile" in k)
        against = [(f"against eager with cudnn.benchmark (as the compiled arm{' had' if 'cudnn' in comp_name else ''})",
                    bench), ("against the engine's eager default", plain)]
        line = (f"- **`compile: reduce-overhead` pays off only for long trials.** `fit` with it: first epoch "
                f"{comp['epochs'][0]['epoch_time_s']:.0f} s (compiling), then {times(comp)} s per epoch of "
                f"{n or '?'} images; " + "; ".join(f"{what}: {break_even(arm)}" for what, arm in against if arm)
                + ". The compiled step alone ran 2x; the trial less, since the loader and the eager evaluation "
                f"do not speed up. Same training, not bit-identical: epoch-1 train loss "
                f"{comp['epochs'][0]['train_loss']:.5f} compiled, "
                f"{(plain or bench)['epochs'][0]['train_loss']:.5f} eager")
        out.append(line + ". Off by default.")
    e = r.get("engine") or {}
    lo = e.get("loader_only", {})
    if lo and graphs:
        first = next(iter(lo.items()))
        out.append(f"- **With CUDA graphs the loader becomes the limit:** {first[0]}: {first[1]:.0f} images/s "
                   f"alone, below the compiled step's {graphs:.0f}; 8 workers reach "
                   f"{next((x for k, x in lo.items() if k.endswith(' 8 workers')), float('nan')):.0f}. On a GPU "
                   "node with spare cores, raise `cpus_per_trial` and `data.num_workers` with it.")
    if "before" in " ".join(e.get("images_per_s", {})):
        pairs = [(k.split(", ")[0], e["images_per_s"][k], e["images_per_s"].get(k.replace("before", "after")))
                 for k in e["images_per_s"] if k.endswith(", before")]
        out.append(f"- **The engine's loop, before -> after ({e.get('after_means', '')}):** " + "; ".join(
            f"{aug} {b:.0f} -> {a:.0f} images/s ({100 * (a / b - 1):+.0f} %)" for aug, b, a in pairs if a) + ".")
    return ["", "Findings:", ""] + out if out else []


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
    if e and "error" not in e and "images_per_s" in e and isinstance(e["images_per_s"], dict):
        rows = [[k.split(", ")[0], k.split(", ", 1)[1], f"{v:.0f}",
                 ", ".join(f"{x:.0f}" for x in e["epochs"].get(k, []))] for k, v in e["images_per_s"].items()]
        loaders = "; ".join(f"{k}: {v:.0f} images/s" for k, v in e.get("loader_only", {}).items())
        text += ["", f"The engine as a paper trial runs it (`train_one_epoch`, the real loader with "
                 f"{e['num_workers']} workers, bf16 + channels_last, {e['train_images']} synthetic images, "
                 f"images/s of the last of {len(next(iter(e['epochs'].values()), []))} epochs). *before*: the "
                 "engine until 2026-11-27 (loss and hits read back every step, pageable batches); *after*: "
                 f"{e.get('after_means', 'one read per epoch, pinned batches')}.", "",
                 common.md_table(["augmentation", "engine", "images/s", "per epoch"], rows), "",
                 f"The loader alone: {loaders}."]
    elif e and "error" in e:
        text += ["", f"Engine part failed: {e['error']}"]
    f = r.get("fit")
    if f and "error" not in f:
        rows = []
        for name, x in f.items():
            if "error" in x:
                rows.append([name, "error: " + x["error"][:60], "", "", ""])
                continue
            ep = x["epochs"]
            rows.append([name, f"{x['wall_s']:.1f}", ", ".join(f"{e['epoch_time_s']:.1f}" for e in ep),
                         f"{ep[-1]['train_images_per_s']:.0f}", f"{100 * ep[-1]['test_acc']:.1f}"])
        text += ["", "`engine.fit` end to end, as a trial calls it: each arm in a fresh process (imports and "
                 "the first epoch's one-off costs included), the paper profile on the synthetic set, every epoch "
                 "training then evaluating validation and test:", "",
                 common.md_table(["fit", "process wall (s)", "epoch times (s)", "last epoch train images/s",
                                  "last test acc %"], rows)]
    elif f and "error" in f:
        text += ["", f"`fit` part failed: {f['error']}"]
    g = r.get("fit_in_process")
    if g:
        text += ["", "An earlier `fit` of 3 epochs in the benchmark's own process (after the matmul, before any "
                 f"training there; {g.get('settings', 'the engine default')}): epoch times " +
                 ", ".join(f"{e['epoch_time_s']:.1f}" for e in g["epochs"]) + " s, train images/s " +
                 ", ".join(f"{e['train_images_per_s']:.0f}" for e in g["epochs"]) + "."]
    if r.get("packing"):
        rows = [[x["processes"], f"{x.get('gpu_per_trial', 1 / x['processes']):g}",
                 x.get("error") or f"{x['aggregate_images_per_s']:.0f}",
                 "" if "error" in x else ", ".join(f"{v:.0f}" for v in x["per_process"])] for x in r["packing"]]
        ps = r.get("packing_settings") or PACKED
        what = " + ".join(["bf16" if ps["amp"] == "bf16" else "fp32"] + [k.replace("fused", "fused SGD").replace(
            "benchmark", "cudnn.benchmark") for k in ("channels_last", "benchmark", "fused") if ps.get(k)])
        text += ["", f"Trials packed per GPU (separate processes training at once on the one device, {what}, no "
                 "compile; Ray's fractional `gpus_per_trial` only co-locates them):", "",
                 common.md_table(["trials", "GPU per trial", "aggregate images/s", "per trial"], rows)]
    text += findings(r)
    if r.get("earlier_runs"):
        text += ["", "Merged from several device calls on the same kind of card (`--merge`); parts not rerun "
                 "come from the earlier calls (" + ", ".join(e["date"] for e in r["earlier_runs"])
                 + f"); the last call, described above, measured: {', '.join(r.get('parts_run_last', []))}. "
                 "(The git revision in a device call's description is that of the session's first checkout; "
                 "the code measured is the working tree sent with the call.)"]
    if r.get("skipped"):
        text += ["", "Skipped: " + "; ".join(r["skipped"]) + "."]
    return [(6, "\n".join(text))]


if __name__ == "__main__":
    sys.exit(main())
