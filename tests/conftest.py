"""Shared fixtures: one local Ray per test session (start-up costs ~4 s), quiet libraries."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.pop("RAY_ADDRESS", None)
os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")


@pytest.fixture(scope="session", autouse=True)
def own_temporary_folder(tmp_path_factory):
    """The session's own temporary folder (TMPDIR, inherited by the processes tests start, and tempfile's), so that
    what sweeps leaves in the temporary folder (its host locks: a file per store opened and per invocation run,
    one left by each holder killed outright) goes with pytest's folders rather than piling up in the machine's
    /tmp. Ray keeps the folder it would have used (RAY_TMPDIR): the paths of its sockets, in a session folder
    there, must stay within 107 characters, and a Ray started by one test is found there by the next."""
    import sys
    import tempfile

    before = {name: os.environ.get(name) for name in ("TMPDIR", "RAY_TMPDIR")}
    os.environ["RAY_TMPDIR"] = (before["RAY_TMPDIR"]   # where Ray looks (ray._common.utils): TMPDIR on Linux alone
                                or (before["TMPDIR"] if sys.platform.startswith("linux") else None) or "/tmp")
    os.environ["TMPDIR"] = str(tmp_path_factory.mktemp("tmp"))
    tempfile.tempdir = None   # gettempdir() reads TMPDIR again
    yield Path(os.environ["TMPDIR"])
    for name, value in before.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    tempfile.tempdir = None


@pytest.fixture(scope="session")
def ray_local():
    """A local Ray instance with 2 CPUs, shared by every test that asks for it."""
    import ray

    if not ray.is_initialized():
        ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False,
                 configure_logging=False)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="session")
def empty_db(tmp_path_factory) -> Path:
    """An initialised, empty MLflow sqlite database to copy: creating one costs ~5 s of migrations."""
    from mlflow.tracking import MlflowClient

    path = tmp_path_factory.mktemp("empty-store") / "mlflow.db"
    MlflowClient(f"sqlite:///{path}").search_experiments()
    return path


@pytest.fixture
def new_store(empty_db):
    """new_store(path): the sqlite URI of a new, empty MLflow store at PATH, a copy of `empty_db`: it saves the test
    MLflow's ~5 s of creating and migrating its tables. Opening a store that does not exist yet (under sweeps'
    lock, by several processes at once) is test_tracking's, on paths of its own."""
    def make(path: Path) -> str:
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(empty_db, path)
        return f"sqlite:///{path}"

    return make


@pytest.fixture
def tracking_uri(new_store, tmp_path):
    """A new, empty MLflow sqlite store in the test's own folder (absolute path)."""
    return new_store(tmp_path / "mlflow.db")


@pytest.fixture
def store(empty_db, tmp_path) -> str:
    """A sqlite store initialised before any process opens it: tests poll it while a driver writes,
    and two processes migrating a fresh database at once fail (stack.md §3.2)."""
    shutil.copy(empty_db, tmp_path / "mlflow.db")
    return f"sqlite:///{tmp_path / 'mlflow.db'}"


@pytest.fixture
def validation_scores(monkeypatch):
    """validation_scores([0.5, 0.9, ...]): from then on, each fit's epochs report these validation
    accuracies in turn (test is measured as is), so that a test chooses which epoch validation picks."""
    from transfer_core import engine

    real = engine.evaluate

    def script(val_accs):
        calls = []

        def scripted(model, loader, *args, **kwargs):
            result = real(model, loader, *args, **kwargs)
            calls.append(loader)
            if len(calls) % 2 == 1:   # each epoch evaluates validation, then test
                result["acc"] = val_accs[len(calls) // 2]
            return result

        monkeypatch.setattr(engine, "evaluate", scripted)

    return script
