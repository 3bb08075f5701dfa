"""Benchmarks 1 (the fixed set, then the shipped mad_vs_dropout sweep), 2, 4 and 5 one after the other (each in
its own process), then RESULTS.md again.

Benchmark 3 (pruning, ~15 minutes per seed) runs on its own: `python bench/pruning.py`; benchmark 6 on a GPU
machine: `bash bench/gpu.sh`. RESULTS.md is rebuilt from every bench/results/*.json, so the sections of
benchmarks not rerun keep their last recorded numbers (with their own dates).

    python bench/run_all.py                 # ~85 minutes on 2 cores
    python bench/run_all.py --smoke         # each script with --smoke (results in a temp folder)
    python bench/run_all.py --render-only   # RESULTS.md from the recorded JSON, nothing measured
    python bench/run_all.py --wait-quiet    # first wait (up to 60 min) for load average < 1.5 and no pytest
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402

# result name -> the script and its arguments
SCRIPTS = {"overhead": ["overhead.py"], "overhead_shipped": ["overhead.py", "--shipped", "mad_vs_dropout"],
           "throughput": ["throughput.py"], "data_path": ["data_path.py"]}


def busy() -> str | None:
    """Why the machine is not quiet enough to measure on, or None."""
    load = os.getloadavg()[0]
    if load >= 1.5:
        return f"load average {load:.2f} >= 1.5"
    if subprocess.run(["pgrep", "-f", "pytest"], capture_output=True).stdout.strip():
        return "a pytest process is running"
    return None


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--render-only", action="store_true")
    parser.add_argument("--only", choices=list(SCRIPTS), action="append", help="run only these (repeatable)")
    parser.add_argument("--wait-quiet", action="store_true")
    args = parser.parse_args(argv)
    if args.render_only:
        print(common.render_results())
        return 0
    if args.wait_quiet:
        deadline = time.time() + 3600
        while (reason := busy()) and time.time() < deadline:
            print(f"waiting: {reason}", flush=True)
            time.sleep(60)
    elif not args.smoke and (reason := busy()):
        print(f"warning: measuring on a busy machine ({reason}); the numbers will say so", flush=True)
    failed = []
    for name in args.only or SCRIPTS:
        script, *script_args = SCRIPTS[name]
        cmd = [sys.executable, str(common.BENCH_DIR / script), *script_args] + (["--smoke"] if args.smoke else [])
        print(f"== {' '.join(cmd)}", flush=True)
        t0 = time.time()
        rc = subprocess.run(cmd, cwd=common.REPO).returncode
        print(f"== {name}: exit {rc} after {time.time() - t0:.0f} s", flush=True)
        if rc:
            failed.append(name)
    out = common.out_dir_for(argparse.Namespace(smoke=args.smoke, out_dir=None))
    md = common.render_results(out, out / "RESULTS.md" if args.smoke else common.RESULTS_MD)
    print(f"wrote {md}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
