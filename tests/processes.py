"""Subprocess bookkeeping for the tests that start drivers, clusters and servers of their own."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path


class Processes:
    """Subprocesses in their own sessions with a marker in their environment; `cleanup` kills every
    process that carries it (Ray's raylets and workers inherit it), and nothing else."""

    def __init__(self, folder: Path, cache: Path) -> None:
        self.folder = folder
        self.mark = uuid.uuid4().hex
        # RAY_ADDRESS unset; Tune's result.json logger on (conftest turns it off in this process)
        env = {k: v for k, v in os.environ.items()
               if k not in ("RAY_ADDRESS", "TUNE_DISABLE_AUTO_CALLBACK_LOGGERS")}
        env.update(RAY_AUTH_MODE="disabled", RAY_USAGE_STATS_ENABLED="0", MLFLOW_DISABLE_TELEMETRY="true",
                   TRANSFER_CACHE=str(cache), PYTHONUNBUFFERED="1", SWEEPS_TEST_MARK=self.mark,
                   SWEEPS_TRACKING_WAIT_S="120")
        self.env = env
        self.started: list[subprocess.Popen] = []

    def start(self, args: list[str], name: str, **popen) -> subprocess.Popen:
        """Output to NAME.log in the test's folder (stdout too, unless popen redirects it)."""
        with open(self.folder / f"{name}.log", "w") as log:
            popen.setdefault("stdout", log)
            popen.setdefault("env", self.env)    # one given keeps SWEEPS_TEST_MARK: the clean-up finds it by that
            proc = subprocess.Popen(args, stderr=log, start_new_session=True, cwd=self.folder,
                                    **popen)
        self.started.append(proc)
        return proc

    def sweeps(self, *args: str, name: str) -> subprocess.Popen:
        return self.start([sys.executable, "-m", "sweeps.cli", "-v", *args], name)

    def log(self, name: str, tail: int = 4000) -> str:
        path = self.folder / f"{name}.log"
        return path.read_text(errors="replace")[-tail:] if path.exists() else ""

    def marked(self) -> list[int]:
        needle = f"SWEEPS_TEST_MARK={self.mark}".encode()
        pids = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit() and int(entry.name) != os.getpid():
                try:
                    if needle in (entry / "environ").read_bytes().split(b"\0"):
                        pids.append(int(entry.name))
                except OSError:  # gone meanwhile
                    pass
        return pids

    def wait_gone(self, timeout: float) -> list[int]:
        deadline = time.monotonic() + timeout
        while (left := self.marked()) and time.monotonic() < deadline:
            time.sleep(0.3)
        return left

    def kill_marked(self) -> None:
        for pid in self.marked():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    def cleanup(self) -> None:
        for proc in self.started:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait(timeout=10)
        if self.wait_gone(5):
            self.kill_marked()
        assert not self.wait_gone(10), "processes started by this test outlived it"


def _result_rows(storage: Path, cell_id: str) -> list[dict]:
    """A cell's Tune trial results as written to result.json, in order, over every attempt."""
    rows = []
    for path in sorted(storage.glob("*/*/result.json")):
        found = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        if found and found[0].get("cell_id") == cell_id:
            rows += found
    return rows


def reported_epochs(storage: Path, cell_id: str) -> list[int]:
    """The epochs a cell's Tune trial reported, in order, over every attempt (result.json rows)."""
    return [int(row["epoch"]) for row in _result_rows(storage, cell_id) if "epoch" in row]


def checkpointed_epochs(storage: Path) -> int:
    """Epochs checkpointed so far, over all trials: a trial's worker writes checkpoint_<index> straight into
    the storage folder as each epoch ends (every epoch: the tests' models have small states,
    trainable.SMALL_STATE_BYTES), so unlike result.json (synced from the driver) it does not lag."""
    total = 0
    for trial in (folder for folder in storage.glob("*/*") if folder.is_dir()):   # whatever names Tune gave them
        indices = [int(p.name.rsplit("_", 1)[1]) for p in trial.glob("checkpoint_*") if p.name[-1].isdigit()]
        total += max(indices) + 1 if indices else 0
    return total


def trials_with_synced_checkpoint(storage: Path) -> int:
    """Trials whose checkpoint the newest experiment state in `storage` records: what a resumed driver will
    restore from. The driver syncs that file some time after each checkpoint, so a driver killed in between
    restarts the trial from its previous synced checkpoint, or from scratch."""
    states = sorted(storage.glob("*/experiment_state-*.json"), key=lambda p: p.stat().st_mtime)
    if not states:
        return 0
    try:
        trials = json.loads(states[-1].read_text())["trial_data"]
    except (OSError, ValueError, KeyError):   # caught mid-write
        return 0
    return sum(1 for _, run_state in trials if re.search(r"checkpoint_\d{6}", run_state))


def synced_checkpoints_exist(storage: Path) -> bool:
    """Every checkpoint the newest experiment state in `storage` names is still there. Tune deletes a
    trial's older checkpoint (num_to_keep=1) before it syncs the state that names the newer one, so a
    driver killed in between leaves a state pointing at a deleted checkpoint, and the trial restarts."""
    states = sorted(storage.glob("*/experiment_state-*.json"), key=lambda p: p.stat().st_mtime)
    if not states:
        return False
    try:
        trials = json.loads(states[-1].read_text())["trial_data"]
        named = [(json.loads(meta)["trial_id"], name) for meta, run_state in trials
                 for name in re.findall(r"checkpoint_\d{6}", run_state)]
    except (OSError, ValueError, KeyError, TypeError):   # caught mid-write
        return False
    return all(any(states[-1].parent.glob(f"*{trial_id}*/{name}")) for trial_id, name in named)


def search_state_readable(storage: Path) -> bool:
    """Every search-algorithm state file Tune synced to `storage` reads back whole. Tune copies them there
    without an atomic rename, so a driver killed mid-copy leaves a truncated one, and a restore then
    starts the experiment over (no trial resumes from its checkpoint)."""
    import pickle   # cloudpickle writes plain pickles

    for path in storage.glob("*/basic-variant-state-*.json"):
        try:
            with open(path, "rb") as fh:
                pickle.load(fh)
        except (OSError, EOFError, ValueError, pickle.UnpicklingError):
            return False
    return True


def attempt_starts(storage: Path, cell_id: str) -> list[int]:
    """The epoch each attempt of a cell's Tune trial first reported (iterations_since_restore == 1). Unlike
    the rows themselves, which a driver killed before Tune synced its staging folder can lose, the resumed
    attempt's first row says where it started."""
    return [int(row["epoch"]) for row in _result_rows(storage, cell_id) if row.get("iterations_since_restore") == 1]


def wait_for(condition, proc: subprocess.Popen, what: str, processes: Processes, name: str,
             timeout: float = 150):
    """condition()'s first truthy value; fails early, with the driver's log, if the driver exits first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        assert proc.poll() is None, f"the driver exited ({proc.returncode}) before {what}:\n{processes.log(name)}"
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}:\n{processes.log(name)}")


def finish(proc: subprocess.Popen, processes: Processes, name: str, timeout: float = 180) -> None:
    """The process `name` ends, successfully, within `timeout`; else its log is the failure message."""
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        raise AssertionError(f"{name} did not finish in {timeout} s:\n{processes.log(name)}")
    assert proc.returncode == 0, f"{name} failed ({proc.returncode}):\n{processes.log(name)}"
