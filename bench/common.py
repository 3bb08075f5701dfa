"""Shared by every benchmark: the machine's description, the environment, results JSON, RESULTS.md.

A benchmark script measures, then calls `write_result(name, payload)`, which stores
`bench/results/<name>.json` (with the machine described at the start and the load average at the
end) and regenerates `bench/RESULTS.md` from every JSON there. Each benchmark module has a
`render(result) -> [(section number, markdown)]`; RESULTS.md is those sections in order, so it can
be regenerated at any time without measuring (`python bench/run_all.py --render-only`).

Only the standard library is imported at module level: `gpu_throughput.py` uses this module on a
GPU machine where ray, optuna and mlflow may be absent.
"""

from __future__ import annotations

import datetime as _dt
import importlib
import importlib.metadata
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Iterable

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"
RESULTS_MD = BENCH_DIR / "RESULTS.md"

# section number -> (title, benchmark module that renders it, how to run it)
SECTIONS = {
    1: ("Orchestration overhead", "overhead", "python bench/overhead.py"),
    2: ("Training throughput inside a trial", "throughput", "python bench/throughput.py"),
    3: ("Pruning efficiency on the `tune` sweep", "pruning", "python bench/pruning.py"),
    4: ("The data path", "data_path", "python bench/data_path.py"),
    5: ("How cost grows", "overhead", "python bench/overhead.py"),
    6: ("GPU: paper profile at 112 px", "gpu", "bash bench/gpu.sh (on a lent GPU machine)"),
}
# results/<file>.json -> the module that renders it
RESULT_FILES = {"overhead": "overhead", "overhead_shipped": "overhead", "throughput": "throughput", "pruning": "pruning",
                "data_path": "data_path", "gpu": "gpu_throughput", "gpu_sweeps": "gpu_sweeps"}

ENV = {
    "RAY_AUTH_MODE": "disabled",
    "RAY_USAGE_STATS_ENABLED": "0",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    # what `sweeps` (sweeps/cli.py) sets for itself, so that the library behaves as under the CLI
    "TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S": "0",
    "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
}


# --------------------------------------------------------------------------- environment

def bench_env(cache: bool = True) -> Path:
    """Set the benchmark environment; returns a fresh temporary folder (MLflow, Tune, cache live there).

    cache: point TRANSFER_CACHE into that folder (False: leave it, for a benchmark about the cache
    that sets it itself)."""
    for key, value in ENV.items():
        os.environ.setdefault(key, value)
    os.environ.pop("RAY_ADDRESS", None)
    os.environ.pop("MLFLOW_TRACKING_URI", None)
    sys.path.insert(0, str(REPO)) if str(REPO) not in sys.path else None
    tmp = Path(tempfile.mkdtemp(prefix="transfer-bench-"))
    if cache:
        os.environ["TRANSFER_CACHE"] = str(tmp / "cache")
    return tmp


def start_ray(num_cpus: int = 2) -> float:
    """A local Ray as the brief says, with the settings `sweeps run` gives the local Ray it starts itself (no idle
    task workers: sweeps.cluster.local_system_config); returns the seconds `ray.init` took (Ray's one-off start)."""
    import ray

    from sweeps.cluster import local_system_config

    t0 = time.perf_counter()
    ray.init(address="local", num_cpus=num_cpus, include_dashboard=False, log_to_driver=False,
             configure_logging=False, _system_config=local_system_config())
    return time.perf_counter() - t0


def sqlite_uri(folder: Path, name: str = "mlflow.db") -> str:
    return f"sqlite:///{(Path(folder) / name).resolve()}"


def cleanup(folder: Path) -> None:
    shutil.rmtree(folder, ignore_errors=True)


# --------------------------------------------------------------------------- the machine

def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _ram_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    return None


def _hypervisor() -> str | None:
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, timeout=5).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    for line in out.splitlines():
        if line.startswith("Hypervisor vendor:"):
            return line.split(":", 1)[1].strip()
    return None


def versions(names: Iterable[str] = ("torch", "torchvision", "numpy", "ray", "optuna", "mlflow")) -> dict:
    out = {}
    for name in names:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    return out


def git_state() -> dict:
    def git(*args: str) -> str:
        try:
            return subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, text=True,
                                  timeout=10).stdout.rstrip()
        except (OSError, subprocess.SubprocessError):
            return ""
    dirty = [line[3:] for line in git("status", "--porcelain", "--untracked-files=no").splitlines()]
    return {"commit": git("rev-parse", "--short", "HEAD").strip() or None, "modified": dirty}


def loadavg() -> list[float]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return []


def machine() -> dict:
    """What the numbers were measured on (call at the start of a benchmark)."""
    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "ram_gib": _ram_gib(),
        "hypervisor": _hypervisor(),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "versions": versions(),
        "git": git_state(),
        "load_start": loadavg(),
        "started": now(),
    }


def now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


# --------------------------------------------------------------------------- timing helpers

def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    t0 = time.perf_counter()
    value = fn()
    return time.perf_counter() - t0, value


def median(values: Iterable[float]) -> float:
    values = list(values)
    return statistics.median(values) if values else float("nan")


def verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else ("**PASS**" if ok else "**MISS**")


# --------------------------------------------------------------------------- results

def write_result(name: str, payload: dict, machine_info: dict, out_dir: Path | None = None,
                 smoke: bool = False, render: bool = True) -> Path:
    """results/<name>.json (machine, load at the end, date) and, when `render`, RESULTS.md again."""
    out_dir = Path(out_dir) if out_dir else RESULTS_DIR
    out_dir.mkdir(parents=True, exist_ok=True)
    record = {"benchmark": name, "smoke": smoke, "date": now(),
              "machine": {**machine_info, "load_end": loadavg(), "finished": now()}, **payload}
    path = out_dir / f"{name}.json"
    path.write_text(json.dumps(record, indent=1, sort_keys=False, default=_jsonable) + "\n")
    if render:
        md = out_dir / "RESULTS.md" if out_dir != RESULTS_DIR else RESULTS_MD
        render_results(out_dir, md)
    return path


def _jsonable(value: Any) -> Any:
    try:
        import numpy as np

        if isinstance(value, np.generic):
            return value.item()
        if isinstance(value, np.ndarray):
            return value.tolist()
    except ImportError:
        pass
    if isinstance(value, Path):
        return str(value)
    return str(value)


def load_results(results_dir: Path = RESULTS_DIR) -> dict[str, dict]:
    out = {}
    for name in RESULT_FILES:
        path = Path(results_dir) / f"{name}.json"
        if path.is_file():
            out[name] = json.loads(path.read_text())
    return out


def machine_line(m: dict) -> str:
    v = m.get("versions", {})
    vers = ", ".join(f"{k} {v[k]}" for k in ("torch", "ray", "optuna", "mlflow") if v.get(k))
    git = m.get("git", {})
    commit = git.get("commit") or "?"
    if git.get("modified"):
        commit += f" + uncommitted changes in {', '.join(git['modified'])}"
    hyper = f", {m['hypervisor']} VM" if m.get("hypervisor") else ""
    device = f"; device: {m['device']}" if m.get("device") else ""
    return (f"{m.get('cpu', '?')} ({m.get('cores', '?')} cores{hyper}), {m.get('ram_gib', '?')} GiB RAM, "
            f"{m.get('os', '?')}, Python {m.get('python', '?')}; {vers}{device}; git {commit}; "
            f"load average (1/5/15 min) {_load(m.get('load_start'))} at the start, "
            f"{_load(m.get('load_end'))} at the end; {m.get('started', '?')} to {m.get('finished', '?')}")


def _load(values: list | None) -> str:
    return "/".join(f"{x:.2f}" for x in values) if values else "?"


def loader_rates(config, data, epochs: int = 3, threads: int | None = None) -> list[float]:
    """images/s of the training loader alone (sampling, gathering, augmentation; no model), per epoch."""
    import torch

    from transfer_core.data import build_train_loader

    torch.set_num_threads(threads or config.num_threads or torch.get_num_threads())
    loader = build_train_loader(data.train, config.data, config.model.image_size, config.optim.batch_size)
    rates = []
    for _ in range(epochs):
        t0 = time.perf_counter()
        n = sum(len(y) for _, y in loader)
        rates.append(n / (time.perf_counter() - t0))
    return rates


def md_table(header: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def render_results(results_dir: Path = RESULTS_DIR, out: Path = RESULTS_MD) -> Path:
    """RESULTS.md from every results JSON: a summary table, then sections 1-6 in order."""
    sys.path.insert(0, str(BENCH_DIR)) if str(BENCH_DIR) not in sys.path else None
    results = load_results(results_dir)
    sections: dict[int, list[str]] = {}
    summary: list[list[str]] = []
    for name, result in results.items():
        module = importlib.import_module(RESULT_FILES[name])
        try:  # a JSON recorded by an older version of its script must not stop another benchmark
            rendered = module.render(result)
            rows = module.summary(result) if hasattr(module, "summary") else []
        except Exception as exc:  # noqa: BLE001 - whatever it is, the measurement must survive
            print(f"warning: results/{name}.json could not be rendered by {RESULT_FILES[name]}.py (older format?) "
                  f"({type(exc).__name__}: {exc}); rerun it", file=sys.stderr)
            number = next((n for n, (_, mod, _) in SECTIONS.items() if mod in (name, RESULT_FILES[name])), 6)
            rendered = [(number, f"*results/{name}.json ({result.get('date', '?')}) was written by an older "
                                 f"version of `bench/{RESULT_FILES[name]}.py`: rerun it.*")]
            rows = []
        for number, text in rendered:
            sections.setdefault(number, []).append(text)
        summary += rows
    summary.sort(key=lambda row: row[0])
    lines = ["# Benchmarks: recorded results", "",
             "Regenerated by the scripts in `bench/` (`python bench/run_all.py`; `python bench/pruning.py`; "
             "`bash bench/gpu.sh` on a GPU machine) from `bench/results/*.json`: do not edit by hand. "
             "Every figure is a ratio of two things measured side by side in one run on the machine "
             "named in its section. How to run each: [README.md](README.md).", ""]
    synthetic = BENCH_DIR / "RESULTS_synthetic.md"
    if synthetic.is_file():
        lines += ["The synthetic data set and the quick profile are calibrated in "
                  "[RESULTS_synthetic.md](RESULTS_synthetic.md).", ""]
    if any(r.get("smoke") for r in results.values()):
        lines += ["**These are smoke-test numbers (tiny sizes): they say that the scripts run, not how fast "
                  "anything is.**", ""]
    lines += ["## Summary", "",
              md_table(["#", "figure", "measured", "goal", "verdict"], summary or [["-", "nothing measured yet",
                                                                                    "", "", ""]]), ""]
    for number, (title, _, how) in SECTIONS.items():
        lines += [f"## {number}. {title}", ""]
        if number in sections:
            lines += ["\n\n".join(sections[number]), ""]
        else:
            module = importlib.import_module(SECTIONS[number][1] if number != 6 else RESULT_FILES["gpu"])
            lines += [getattr(module, "NOT_MEASURED", None) or f"Not measured yet: run `{how}`.", ""]
    Path(out).write_text("\n".join(lines).rstrip() + "\n")
    return Path(out)


def standard_args(parser, name: str) -> None:
    """--smoke and --out-dir, shared by every script."""
    parser.add_argument("--smoke", action="store_true",
                        help="tiny sizes (seconds): checks that the script runs; results go to a temp folder")
    parser.add_argument("--out-dir", type=Path, default=None,
                        help=f"where {name}.json goes (default: bench/results, or a temp folder with --smoke)")


def out_dir_for(args) -> Path:
    if args.out_dir:
        return args.out_dir
    if args.smoke:
        return Path(tempfile.gettempdir()) / "transfer-bench-smoke"
    return RESULTS_DIR
