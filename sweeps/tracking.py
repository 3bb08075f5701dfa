"""MLflow: one experiment per sweep, a parent run per invocation, a child run per cell (schema.py).

The driver initialises the store once (stack.md §3.2: concurrent first use of a fresh sqlite DB
races on schema migration) and creates the parent run before any trial starts. Trials log to their
own child run with batched metrics (the driver-side MLflowLoggerCallback is ~15x slower, §3.1); a
retried trial finds its child run again by (parent, cell) and continues it, so there are no
duplicates. The driver marks pruned and failed trials, which cannot mark themselves.

Each epoch reaches its child run once (`EpochLog`): a retried or restored trial re-trains the epochs
after its checkpoint, and those already logged are not logged again unless the re-training measured
them otherwise (a GPU's nondeterministic kernels, a data set changed under --accept-changed-data):
then they are logged again, later, and readers keep each step's latest value (`latest_per_step`), as
the curves must agree with the summaries and weights that come from the re-training. Epochs missing
from the run (still buffered when the trial died) are logged from the checkpoint's history when it
resumes.

When the tracking store is unreachable (a sqlite store: write-locked by another process, `available`):
- at start: `check_tracking` (called by `prepare`) raises TrackingError naming the URI, before Ray
  starts or any trial runs;
- during a sweep (policy: buffer): a trial keeps training; the epochs it cannot log stay in the
  trial (and in its checkpoints, which hold the whole history) and are logged, in order and once,
  as soon as the server answers again. A trial that starts or finishes while the server is away
  waits for it up to SWEEPS_TRACKING_WAIT_S seconds (default 600), then fails and is retried from
  its checkpoint (--max-failures), continuing the same child run. A cell is marked completed only
  after all its epochs are logged. An epoch's log is one attempt (`single_attempt`): a call cut off
  by the server going away leaves the epoch queued for the next epoch's try, instead of pausing the
  trial for the ~4 min of back-off that MLflow's client allows every call by default.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import logging
import math
import os
import platform
import shutil
import socket
import subprocess
import tempfile
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, Collection, Iterator, Mapping

from mlflow.entities import Metric, Param, RunStatus, RunTag
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from sqlalchemy.exc import SQLAlchemyError

from sweeps import schema
from sweeps.envvars import temporarily_set
from sweeps.host_locks import host_lock

log = logging.getLogger(__name__)

DEFAULT_DB = "mlflow.db"
# how long a trial waits for an unreachable tracking server when it starts or finishes; read from
# the environment of the trial's Ray worker: `sweeps run` passes the driver's value to the workers
# (runtime_env), else the node's own environment counts
WAIT_ENV = "SWEEPS_TRACKING_WAIT_S"
DEFAULT_WAIT_S = 600.0
LOCK_WAIT_S = 20.0   # a sqlite store write-locked by another process this long is refused (MLflow waits as long)
# logged with every epoch (a summary metric), so its history says which epochs a run holds
EPOCH_MARKER = "epochs_done"
# what an epoch measured of the model (not its learning rate or timings): a re-trained epoch is logged
# again where one of these differs from the logged value
SCORE_METRICS = tuple(m for m in schema.EPOCH_METRICS if m.endswith(("_loss", "_acc", "_mca")))
VERSIONED_PACKAGES = ("transfer-sweeps", "torch", "torchvision", "ray", "optuna", "mlflow", "numpy")


def json_tag(tags: Mapping[str, str], key: str, default: Any) -> Any:
    """A run's tag holding JSON (sweeps.seeds, sweeps.overrides), or `default` where it is missing or not JSON."""
    text = tags.get(key)
    if not text:
        return default
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        log.warning("run tag %s=%r is not JSON", key, text)
        return default


def latest_per_step(points) -> list[tuple[int, float]]:
    """(step, value) of an MLflow metric history in step order, each step's latest-stamped value: an epoch
    logged again after a re-training measured it otherwise (EpochLog) supersedes the earlier value."""
    latest: dict[int, float] = {}
    for point in sorted(points, key=lambda p: (p.step, p.timestamp)):
        latest[int(point.step)] = float(point.value)
    return sorted(latest.items())


class TrackingError(RuntimeError):
    """The tracking store cannot be used; the message says which and what to do."""


# --------------------------------------------------------------------------- store

def sqlite_path(uri: str) -> Path | None:
    """The database file of a `sqlite:///PATH` store; None for a server."""
    return Path(uri[len("sqlite:///"):]) if uri.startswith("sqlite:///") else None


# a full disk's errors: no space left (ENOSPC), or the user's quota on it used up (EDQUOT: a home folder's)
FULL_DISK_ERRNOS = (errno.ENOSPC, errno.EDQUOT)


FULL_BELOW_BYTES = 64 * 2**20   # less free than this on a disk a write failed on, or as a sweep ends failed: full


def how_full(folder: str | os.PathLike, failed: bool = True) -> tuple[str, str | None] | None:
    """How `folder`'s disk is full, as said of it (its free space read now, not as it failed): ("is full", "N MB
    free") below FULL_BELOW_BYTES; ("ran out of inodes (files), not bytes", "N MB free") where no inode is left
    (`out_of_inodes`: freeing bytes frees nothing); ("was full when written to", "N MB free now") where a write
    failed on it (`failed`) and it has room now (freed since: a trial's files dropped as it failed, the user);
    ("is full", None) where its free space cannot be read. None where nothing says it is full (`failed` False,
    room, inodes left), and where its free space cannot be read and no write failed."""
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        free = None
    inodes = out_of_inodes(folder)
    if not failed and not inodes and (free is None or free >= FULL_BELOW_BYTES):
        return None
    if free is None:
        return "is full", None
    if inodes:
        return "ran out of inodes (files), not bytes", f"{free / 2**20:.1f} MB free"
    if free >= FULL_BELOW_BYTES:
        return "was full when written to", f"{free / 2**20:.1f} MB free now"
    return "is full", f"{free / 2**20:.1f} MB free"


def out_of_inodes(folder: str | os.PathLike) -> bool:
    """Whether `folder`'s filesystem has no inode left for a new file (os.statvfs: f_favail 0), bytes free or not.
    False where it cannot tell: one that counts no inodes (f_files 0: btrfs, tmpfs without a limit, some network
    filesystems)."""
    try:
        stats = os.statvfs(folder)
    except (OSError, AttributeError):
        return False
    return stats.f_files > 0 and stats.f_favail == 0


def full_store(uri: str, exc: BaseException) -> str | None:
    """Where `exc` (or what it was raised from) is a full disk's under a sqlite store (sqlite's "database or disk is
    full", or ENOSPC writing a file in the database's folder: its mlartifacts/), a sentence naming the database and
    how its disk is full (`how_full`: full, out of inodes, or freed since; an EDQUOT there: the store "is over its
    quota"), quoting the error that said so (not a wrapper's words around it); else None. MLflow's own error names
    neither: "(sqlite3.OperationalError) database or disk is full" and a traceback, after every trial had ended,
    when the store filled up during a sweep."""
    database = sqlite_path(uri)
    if database is None:
        return None
    folder = str(database.parent)
    found, cause, seen = None, exc, set()
    while cause is not None and id(cause) not in seen:   # the deepest that says so: MLflow's, not a wrapper quoting it
        seen.add(id(cause))
        if "database or disk is full" in str(cause) or (
                isinstance(cause, OSError) and cause.errno in FULL_DISK_ERRNOS
                and any(str(name).startswith(folder + os.sep) for name in (cause.filename, cause.filename2) if name)):
            found = cause
        # not through `raise ... from None`: an error that says it was not caused by it (the decoded-data
        # cache's "no room ... in the cache folder", a folder in the database's: ~/.cache beside ~/mlflow.db)
        cause = cause.__cause__ or (None if cause.__suppress_context__ else cause.__context__)
    if found is None:
        return None
    cause = found
    if isinstance(cause, OSError) and cause.errno == errno.EDQUOT:   # the disk's free bytes are not what ran out
        return (f"the MLflow store {database} is over its quota (MLflow: "
                f"{' '.join(str(cause).split()[:12])[:200]})")
    said, free = how_full(folder)
    return (f"the MLflow store {database} {said} (its disk: {free or 'its free space unknown'}; MLflow: "
            f"{' '.join(str(cause).split()[:12])[:200]})")   # MLflow's own words, not a wrapper's


def resolve_tracking_uri(option: str | None = None, cwd: str | os.PathLike | None = None) -> str:
    """--tracking-uri, else MLFLOW_TRACKING_URI, else MLflow's default sqlite DB in the working
    directory; relative sqlite paths become absolute, since trials run in their own directories. A sqlite
    store moved or copied with its artifacts has their recorded locations re-pointed (`follow_moved_store`)."""
    if option is not None and not option.strip():   # `--tracking-uri "$UNSET_VAR"`: not the default store silently
        raise TrackingError("--tracking-uri is empty: give sqlite:///PATH/mlflow.db or http://HOST:PORT of an "
                            "MLflow server, or leave the option out for MLFLOW_TRACKING_URI, else sqlite:///mlflow.db "
                            "here")
    from_env = os.environ.get("MLFLOW_TRACKING_URI")
    if option is None and from_env is not None and not from_env.strip():
        raise TrackingError("MLFLOW_TRACKING_URI is set but empty: set it to sqlite:///PATH/mlflow.db or "
                            "http://HOST:PORT, or unset it for sqlite:///mlflow.db here")
    uri = option or from_env or f"sqlite:///{DEFAULT_DB}"
    if uri.startswith("sqlite:") and not uri.startswith("sqlite:///"):
        # sqlite://x.db is no file (SQLAlchemy's traceback), and sqlite:// an in-memory database of which every
        # trial has its own: a whole sweep trained and failed to record
        raise TrackingError(f"tracking URI {uri!r} names no database file: write three slashes and a path, "
                            "sqlite:///mlflow.db (relative to here) or sqlite:////abs/path/mlflow.db")
    if uri.startswith("file:"):
        raise TrackingError(f"tracking URI {uri!r} is MLflow's file store, retired in MLflow 3: use "
                            "sqlite:///PATH/mlflow.db or http://HOST:PORT of an MLflow server")
    if uri.startswith("sqlite:///") and not uri.startswith("sqlite:////"):
        path = Path(cwd or os.getcwd()) / uri[len("sqlite:///"):]
        uri = f"sqlite:///{path.resolve()}"
    elif "://" not in uri:
        raise TrackingError(f"tracking URI {uri!r} is not supported: use sqlite:///PATH/mlflow.db "
                            "or http://HOST:PORT of an MLflow server (the file store is retired in MLflow 3)")
    database = sqlite_path(uri)
    if database is not None and database.is_dir():   # else ~100 s of SQLAlchemy's retries, then a traceback
        raise TrackingError(f"tracking URI {uri!r} names a folder, not a database file: give the file in it, "
                            f"e.g. {uri.rstrip('/')}/mlflow.db")
    if database is not None and not _sqlite_or_empty(database):   # else a traceback
        raise TrackingError(f"tracking URI {uri!r} names a file that is not an SQLite database: give the MLflow "
                            "database file (e.g. sqlite:///mlflow.db), or a path where none exists yet to create one")
    foreign = _tables_of_another_kind(database) if database is not None else []
    if foreign:   # MLflow would add its ~30 tables to it, on `sweeps status` too
        raise TrackingError(f"tracking URI {uri!r} names an SQLite database that is not an MLflow store (it holds "
                            f"table{'s' if len(foreign) > 1 else ''} {', '.join(foreign[:5])}"
                            f"{', ...' if len(foreign) > 5 else ''}; an Optuna storage, say): give the MLflow "
                            "database file (e.g. sqlite:///mlflow.db), or a path where none exists yet to create one")
    follow_moved_store(uri)
    return uri


def _tables_of_another_kind(path: Path) -> list[str]:
    """The tables of an SQLite database that holds tables but neither of MLflow's first two (`experiments`,
    `runs`: its schema's first step makes them, so a store half made has them); [] for an MLflow store, an empty
    database or no file. Not `alembic_version`: an Optuna storage has one too."""
    import sqlite3

    if not path.is_file() or path.stat().st_size == 0:
        return []
    try:
        with contextlib.closing(sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)) as db:
            tables = sorted(row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'"))
    except sqlite3.Error:   # locked, unreadable: MLflow's own error says why
        return []
    return [] if not tables or {"experiments", "runs"} & set(tables) else tables


def _sqlite_or_empty(path: Path) -> bool:
    """A missing or empty file (SQLite makes the database), or one that starts with SQLite's header."""
    try:
        with path.open("rb") as handle:
            head = handle.read(16)
    except OSError:   # missing: SQLite makes it; unreadable: SQLite's own error says why
        return True
    return head in (b"", SQLITE_HEADER)


SQLITE_HEADER = b"SQLite format 3\x00"


def is_sqlite_database(path: Path) -> bool:
    """Whether `path` is a file holding an SQLite database (an MLflow store, whatever its name)."""
    return path.is_file() and path.stat().st_size > 0 and _sqlite_or_empty(path)


def uri_from_env(option: str | None) -> bool:
    """Whether the store came from MLFLOW_TRACKING_URI (no --tracking-uri given), as resolve_tracking_uri reads it."""
    return option is None and bool(os.environ.get("MLFLOW_TRACKING_URI"))


def named_by(option: str | None) -> str:
    """Where the store a message names came from, when not from --tracking-uri: a stale MLFLOW_TRACKING_URI
    shows as a store the researcher never typed, and "pass --tracking-uri" alone does not say why it is there."""
    return " (from the environment variable MLFLOW_TRACKING_URI)" if uri_from_env(option) else ""


def check_tracking(uri: str, timeout: float = 5.0, option: str | None = None) -> None:
    """Fail before any compute when the store cannot be reached or written. `option`: the --tracking-uri
    given (None: none was), for the message to say where `uri` came from."""
    instead = " (or unset MLFLOW_TRACKING_URI, or set it to another store)" if uri_from_env(option) else ""
    if uri.startswith(("http://", "https://")):
        try:
            with urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=timeout) as response:
                if response.status != 200:
                    raise TrackingError(f"MLflow server {uri}{named_by(option)} answered /health with "
                                        f"{response.status}")
        except (urllib.error.URLError, OSError) as exc:
            raise TrackingError(f"MLflow tracking server {uri}{named_by(option)} is unreachable ({exc}); start it "
                                f"(mlflow server --host 127.0.0.1 ...) or pass another --tracking-uri{instead}") from exc
    elif (database := sqlite_path(uri)) is not None:
        folder = database.parent
        if not folder.is_dir() or not os.access(folder, os.W_OK):
            raise TrackingError(f"cannot write the MLflow database in {folder}{named_by(option)}: the folder is "
                                "missing or not writable; pass --tracking-uri sqlite:////writable/path/mlflow.db"
                                f"{instead}")
        # the database itself (made read-only), and its artifacts beside it (a read-only mount there): else the
        # first write fails with a traceback after the data are decoded and Ray has started
        for path, what in ((database, "the MLflow database"), (folder / "mlartifacts", "its artifact folder")):
            if path.exists() and not os.access(path, os.W_OK):
                raise TrackingError(f"cannot write {what} {path}{named_by(option)}: it is read-only; make it "
                                    "writable (check its permissions and mount) or pass --tracking-uri "
                                    f"sqlite:////writable/path/mlflow.db{instead}")
            if path.name == "mlartifacts" and path.exists() and not path.is_dir():
                raise TrackingError(f"cannot write {what} {path}{named_by(option)}: it is a file, where MLflow "
                                    "keeps the runs' artifacts in a folder of that name beside the database; move "
                                    f"it away or pass --tracking-uri sqlite:////other/path/mlflow.db{instead}")
        if database.is_file():
            check_not_locked(database, option)


def check_not_locked(database: Path, option: str | None = None, wait_s: float | None = None) -> None:
    """TrackingError where another process holds a write lock on the sqlite store `database` for `wait_s` (default
    LOCK_WAIT_S) seconds: an `sqlite3` shell or a script with a transaction left open. Else MLflow's first write
    waited its 20 s and ended the run in a traceback of "database is locked"; a lock taken meanwhile by a sweep
    writing to the same store lasts milliseconds, and is waited out. Other errors are left to MLflow's own."""
    wait_s = LOCK_WAIT_S if wait_s is None else wait_s
    if sqlite_locked(database, wait_s):
        raise TrackingError(f"the MLflow database {database}{named_by(option)} is locked: another process has held a "
                            f"write transaction on it for {wait_s:g} s (an sqlite3 shell or a script with a "
                            f"transaction open?). Find it (fuser {database}) and end its transaction, then run this "
                            "again")


def sqlite_locked(database: Path, wait_s: float) -> bool:
    """Whether another process holds a write lock on the sqlite database for `wait_s` seconds: its write lock is
    taken as a write would take it, and let go at once (nothing is written). Any other error (not a database, a
    read-only file): False, left to MLflow's own error."""
    import sqlite3

    try:
        with contextlib.closing(sqlite3.connect(database, timeout=wait_s, isolation_level=None)) as db:
            db.execute("BEGIN IMMEDIATE")
            db.execute("ROLLBACK")
    except sqlite3.Error as exc:
        return "locked" in str(exc)
    return False


def reachable(uri: str, timeout: float = 2.0) -> bool:
    """Does the tracking server answer /health now? A sqlite store is a local file: always True."""
    if not uri.startswith(("http://", "https://")):
        return True
    try:
        with urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=timeout) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def available(uri: str, timeout: float = 2.0) -> bool:
    """Can a trial or the driver write to the store now? A server: it answers /health (`reachable`). A sqlite
    store: no other process has held it write-locked for `timeout` s (an sqlite3 shell with a transaction open);
    MLflow's own calls wait 20 s on such a lock and then fail, which failed a trial as it opened or completed its
    run, costing it a retry, and held every epoch's log 20 s."""
    if not reachable(uri):
        return False
    database = sqlite_path(uri)
    return database is None or not (database.is_file() and sqlite_locked(database, timeout))


def away_text(uri: str, for_s: float | None = None) -> str:
    """What `available` found: the server unreachable, or the sqlite database locked; with `for_s`, for how long it
    has been so and how to wait longer."""
    database = sqlite_path(uri)
    locked = database is not None and reachable(uri)
    if for_s is None:
        return (f"the MLflow database {database} is locked by another process" if locked
                else f"MLflow tracking server {uri} is unreachable")
    return ((f"the MLflow database {database} has been locked by another process" if locked
             else f"MLflow tracking server {uri} has been unreachable")
            + f" for {for_s:g} s (set {WAIT_ENV} to wait longer)")


def wait_s_from_env() -> float:
    """SWEEPS_TRACKING_WAIT_S, else the default; read in the trial (the env of its Ray worker)."""
    text = os.environ.get(WAIT_ENV, "")
    try:
        return float(text) if text else DEFAULT_WAIT_S
    except ValueError:
        log.warning("%s=%r is not a number of seconds; using %g", WAIT_ENV, text, DEFAULT_WAIT_S)
        return DEFAULT_WAIT_S


def wait_for_tracking(uri: str, wait_s: float, poll_s: float = 1.0, in_trial: bool = False) -> None:
    """Return once the tracking server answers; TrackingError naming it after `wait_s` seconds. `in_trial`: a
    trial waits, and the error says what follows: it fails, and is retried only while --max-failures allows
    (which a trial does not know: it may be its last try, or --max-failures 0). The driver's wait (the marks
    of ended trials) fails no trial: its caller says what follows."""
    deadline = time.monotonic() + wait_s
    warned = False
    while not available(uri):
        if time.monotonic() >= deadline:
            raise TrackingError(away_text(uri, for_s=wait_s)
                                + ("; the trial fails, and is retried from its checkpoint if --max-failures "
                                   "leaves it another try" if in_trial else ""))
        if not warned:
            log.warning("%s; waiting up to %g s", away_text(uri), wait_s)
            warned = True
        time.sleep(poll_s)


def artifact_root(uri: str) -> str | None:
    """Beside a sqlite DB, `mlartifacts/`; a server decides for itself (None)."""
    database = sqlite_path(uri)
    return None if database is None else (database.parent / "mlartifacts").as_uri()


def follow_moved_store(uri: str) -> list[str]:
    """Re-point the artifact locations of a sqlite store moved or copied together with its `mlartifacts/` (the
    project folder rsynced to another disk or machine): MLflow records each experiment's artifact location,
    and each run's, as an absolute file URI (no relative form exists: mlflow/mlflow#3144), so a moved store
    read none of its artifacts (`sweeps table` said its runs held no spec.yaml) and a continued sweep wrote
    its models and report to the old folder, made anew there (or failed where it could not be). An experiment
    of this tool's layout (`<folder>/mlartifacts/<name>`, `artifact_root`) recorded in another folder than the
    database's is re-pointed, with its runs and logged models, where this database's `mlartifacts/` holds its
    folder; one whose artifacts are not beside the database (the database copied alone) is left as it is.
    Returns the experiments re-pointed (their names); a server, or a store that cannot be written, is left."""
    import sqlite3
    from urllib.parse import unquote, urlparse

    database = sqlite_path(uri)
    if database is None or not is_sqlite_database(database):
        return []
    here = database.resolve().parent / "mlartifacts"
    moved: list[str] = []
    repointed: list[str] = []   # run ids
    try:
        with contextlib.closing(sqlite3.connect(str(database), timeout=30)) as db, db:
            tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
            if "experiments" not in tables or "runs" not in tables:
                return []
            for experiment_id, name, location in db.execute(
                    "SELECT experiment_id, name, artifact_location FROM experiments").fetchall():
                if not location or not location.startswith("file://"):
                    continue
                recorded = Path(unquote(urlparse(location).path))
                if recorded.parent.name != "mlartifacts" or recorded.parent == here:
                    continue
                now = here / recorded.name
                if not now.is_dir() or (recorded.exists() and recorded.resolve() == now.resolve()):
                    continue
                new = now.as_uri()
                repointed += [row[0] for row in db.execute("SELECT run_uuid FROM runs WHERE experiment_id = ?",
                                                          (experiment_id,))]
                db.execute("UPDATE experiments SET artifact_location = ? WHERE experiment_id = ?", (new, experiment_id))
                for table, column in (("runs", "artifact_uri"), ("logged_models", "artifact_location")):
                    if table in tables:
                        db.execute(f"UPDATE {table} SET {column} = ? || substr({column}, ?) "
                                   f"WHERE experiment_id = ? AND substr({column}, 1, ?) = ?",
                                   (new, len(location) + 1, experiment_id, len(location) + 1, location + "/"))
                log.warning("MLflow experiment %r was recorded with its artifacts in %s; this store %s was moved or "
                            "copied with them: its artifact locations now point at %s", name, recorded, database, now)
                moved.append(name)
    except sqlite3.Error as exc:   # read-only, locked past the timeout: its artifacts are read where recorded
        log.warning("MLflow store %s: the artifact locations of a moved store could not be re-pointed (%s)",
                    database, exc)
        return []
    try:   # MLflow keeps each run's artifact repository, at its old location, for the life of the process
        from mlflow.tracking._tracking_service import utils as service_utils
        for run_id in repointed:
            service_utils._artifact_repos_cache.pop(run_id, None)
    except (ImportError, AttributeError):   # private to MLflow: a command opens the store before it logs anyway
        pass
    return moved


def artifacts_not_here(run, uri: str) -> str | None:
    """Why a run's artifacts cannot be read on this machine, with what to do, where its artifact folder is a
    local one that is gone (a sqlite store moved or copied without its `mlartifacts/`, or an artifact folder
    moved away); None where they can be read, or are elsewhere (a server's, a remote URI)."""
    from urllib.parse import unquote, urlparse

    location = run.info.artifact_uri or ""
    if not location.startswith("file://"):
        return None
    folder = Path(unquote(urlparse(location).path))
    if folder.exists():
        return None
    database = sqlite_path(uri)
    root = folder.parents[2] if len(folder.parents) > 2 and folder.parents[2].name == "mlartifacts" else None
    beside = (f" If the store was moved or copied, copy its artifacts folder {root} to "
              f"{database.resolve().parent / 'mlartifacts'}, beside the database, and run the command again (their "
              f"recorded locations are then re-pointed there)" if root is not None and database is not None else "")
    return (f"the artifacts of run {run.info.run_id} (its spec, plan, models and report) are recorded in {folder}, "
            f"which is not on this machine (deleted, moved, or on a disk not mounted here).{beside}")


def client_for(uri: str) -> MlflowClient:
    """A client of the store at `uri`. A sqlite store is opened under a lock this host's processes share
    (`store_opening_lock`): opening one creates its tables and migrates them, and MLflow does that unguarded,
    so two `sweeps run` (or a run and a `sweeps status`) opening a new mlflow.db at once broke each other
    (alembic 'Online migration expected to match one row', 'duplicate column name', and a left-over
    `_alembic_tmp_*` table that refused every later open of that store)."""
    database = sqlite_path(uri)
    if database is None:
        return MlflowClient(tracking_uri=uri)
    with store_opening_lock(database):
        return MlflowClient(tracking_uri=uri)


@contextlib.contextmanager
def store_opening_lock(database: Path) -> Iterator[None]:
    """An exclusive lock, among this host's processes, on opening the sqlite store `database` (sqlite's own locks
    do not cover MLflow's table creation and migration, which run as several transactions): a file in the
    temporary folder itself, named by a hash of the database's real path, so none is left beside the user's
    mlflow.db. Shared by every user's sweeps, so not in this user's `host_locks.lock_folder`: it is opened
    read-only, which is all flock needs, so another user's sweep opening the same store shares the file its
    creator owns. Its holder removes it as it lets go (`host_locks.host_lock`). Where it cannot be taken (a
    read-only temporary folder), the store is opened without it."""
    key = hashlib.sha256(str(Path(database).expanduser().resolve()).encode()).hexdigest()[:16]
    with host_lock(Path(tempfile.gettempdir()) / f"sweeps-mlflow-open-{key}.lock", f"opening {database}"):
        yield


def ensure_experiment(client: MlflowClient, name: str, uri: str) -> str:
    """The sweep's experiment id, created (with an artifact location beside the DB) if absent."""
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        if experiment.lifecycle_stage == "deleted":
            raise TrackingError(f"MLflow experiment {name!r} is deleted; restore it (mlflow experiments "
                                "restore) or delete it for good (mlflow gc) before running this sweep")
        experiment_id = experiment.experiment_id
    else:
        root = artifact_root(uri)
        location = f"{root}/{name}" if root else None
        experiment_id = client.create_experiment(name, artifact_location=location)
        experiment = client.get_experiment(experiment_id) if root is None else None
    if experiment is not None and sqlite_path(uri) is None:
        warn_of_artifacts_on_each_disk(uri, experiment.artifact_location or "", name)
    return experiment_id


def warn_of_artifacts_on_each_disk(uri: str, location: str, name: str | None = None) -> None:
    """Warn where a tracking server gives a sweep's experiment a path on a disk as its artifact location: MLflow's
    clients then write artifacts straight to that path on their own machine, so each trial's models on its node,
    and a reader elsewhere finds none. Not refused: a folder every machine mounts at that path (NFS) is a sound
    setup. Two causes: the server was started with --no-serve-artifacts and --default-artifact-root PATH (its
    locations end in the experiment's id), or the experiment `name` was created by a `sweeps run` straight into
    the sqlite database the server now serves (`artifact_root`'s `mlartifacts/<name>` beside it), which it keeps
    whatever the server's options: restarting the server with --artifacts-destination changes only experiments
    created through it."""
    from urllib.parse import unquote, urlparse

    parsed = urlparse(location)
    scheme = parsed.scheme
    if location and (not scheme or scheme == "file" or len(scheme) == 1):   # a one-letter scheme: a Windows drive
        path = Path(unquote(parsed.path) if scheme == "file" else location)
        if name is not None and path.name == name and path.parent.name == "mlartifacts":
            why = ("its experiment was created by a `sweeps run` straight into the sqlite database this server "
                   "serves, and keeps that artifact location whatever the server's options): every machine that "
                   "runs trials or reads the sweep must mount that folder at that path (a server started with "
                   "--artifacts-destination FOLDER stores and serves the artifacts of experiments created through it, "
                   "not of this one)")
        else:
            why = ("the server was started with --no-serve-artifacts): every machine that runs trials or reads the "
                   "sweep must mount that folder at that path, or restart the server with --artifacts-destination "
                   "FOLDER to have it store and serve them")
        log.warning("MLflow server %s has this sweep's artifacts (models, figures, its spec.yaml) written to %s by "
                    "each process that logs them, on its own machine's disk (%s (docs/cluster.md)", uri, location, why)


# --------------------------------------------------------------------------- provenance

def git_commit(path: str | os.PathLike | None = None) -> str:
    """The commit of the source tree (with "-dirty" if modified), or "unknown" outside git."""
    here = Path(path or Path(__file__).resolve().parent)
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True,
                                timeout=5, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here,
                               capture_output=True, text=True, timeout=5).stdout.strip()
        return commit + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def package_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in VERSIONED_PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


VERSIONS_THEN = " then "   # sweeps.versions, sweeps.git_commit: between the versions a continued invocation ran under
VERSIONS_KEPT = 5           # of them at most: the first, "…" and the latest (switched between two machines for good)


def ran_then(ran: str, now: str) -> str:
    """`ran` (a version, or those an invocation ran under in turn, "a then b") with `now` after VERSIONS_THEN where
    it is not the last: "a then b then a"; at most VERSIONS_KEPT of them, the first, "…" and the latest (the tag
    stays within MLflow's 8000 characters)."""
    if ran.rsplit(VERSIONS_THEN, 1)[-1] == now:
        return ran
    each = ran.split(VERSIONS_THEN) + [now]
    if len(each) > VERSIONS_KEPT:
        each = [each[0], "…", *each[-(VERSIONS_KEPT - 2):]]
    return VERSIONS_THEN.join(each)


def versions_continued(recorded: str | None, now: Mapping[str, str]) -> str | None:
    """An invocation's sweeps.versions (json: package -> version, as the run that began it recorded them) with
    `now`'s (`package_versions()`: a continuation's) where a package's differs from the last one recorded there,
    appended after VERSIONS_THEN (`"torch": "2.14.1 then 2.15.0"`, `ran_then`), so that the tag (the MLflow UI,
    the table's provenance, `sweeps status`) says when its cells trained under several; a package it lacks,
    recorded as `unrecorded then <version>`. Still a mapping of package to text, as every reader takes it. None
    where nothing changes, or where the tag is missing or not such a mapping (left as it is)."""
    try:
        versions = json.loads(recorded) if recorded else None
    except json.JSONDecodeError:
        return None
    if not isinstance(versions, dict) or not all(isinstance(v, str) for v in versions.values()):
        return None
    merged = dict(versions)
    for package, version in now.items():
        merged[package] = ran_then(merged[package], version) if package in merged else \
            f"unrecorded{VERSIONS_THEN}{version}"
    return None if merged == versions else json.dumps(merged, sort_keys=True)


def commit_continued(recorded: str | None, now: str) -> str | None:
    """An invocation's sweeps.git_commit (`git_commit()` of the run that began it) with a continuation's commit `now`
    after it where that is not the last recorded (`ran_then`: "<a> then <b>", as sweeps.versions says of its
    packages), so that the tag says which code its cells trained under, not the first run's alone; a tag missing,
    `unrecorded then <b>`. None where nothing changes."""
    merged = ran_then(recorded, now) if recorded else f"unrecorded{VERSIONS_THEN}{now}"
    return None if merged == recorded else merged


def versions_changed(tags: Mapping[str, str]) -> dict[str, str]:
    """What an invocation's cells trained under several versions of (`versions_continued`, `commit_continued`),
    each with them in the order they ran: "git commit" (first, where sweeps.git_commit names several) and each
    package -> "a then b"; {} where none (or no such tag)."""
    commits = tags.get(schema.TAG_GIT_COMMIT, "")
    changed = {"git commit": commits} if VERSIONS_THEN in commits else {}
    versions = json_tag(tags, schema.TAG_VERSIONS, {})
    if isinstance(versions, dict):
        changed.update((k, v) for k, v in sorted(versions.items()) if isinstance(v, str) and VERSIONS_THEN in v)
    return changed


def invocation_key(spec_hash: str, profile: str, data: Mapping[str, str | None],
                   overrides: Mapping[str, Any]) -> str:
    """What makes two invocations the same sweep (seeds excluded: more seeds extend a sweep)."""
    payload = json.dumps({"spec": spec_hash, "profile": profile, "data": dict(data),
                          "overrides": dict(overrides)}, sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


# --------------------------------------------------------------------------- parent runs

TAG_INVOCATION = "sweeps.invocation"
TAG_TUNE_PATH = "sweeps.tune_path"


def driver_identity() -> str:
    """This process as the driver of an invocation (the parent's sweeps.driver tag): host, pid and, where /proc or
    `ps` tells it, the process's start time, so that a pid the system reused is not taken for it, and the process table
    it is listed in (`_process_table`: the kernel's boot and the pid namespace), so that a process of
    the same host name that this process table does not list (another container of a `--net=host` Docker node, as
    Ray's cluster launcher starts them; another machine of the same name) is not taken for gone."""
    return json.dumps({"host": socket.gethostname(), "pid": os.getpid(), "start": _process_start(os.getpid()),
                       **_process_table()})


def _process_table() -> dict[str, str]:
    """Which process table this process is listed in, where /proc says: {"boot": the kernel's boot id (another
    machine, or this one restarted), "pidns": its pid namespace (another container of the same kernel), "machine":
    /etc/machine-id (the same machine restarted, where it has one)}."""
    table = {}
    for key, read in (("boot", lambda: Path(f"{PROC}/sys/kernel/random/boot_id").read_text().strip()),
                      ("pidns", lambda: os.readlink(f"{PROC}/self/ns/pid")),
                      ("machine", lambda: Path(MACHINE_ID).read_text().strip())):
        try:
            table[key] = read()
        except OSError:
            pass
    return {key: value for key, value in table.items() if value}


# Where Linux lists its processes; a system without it (macOS, the BSDs) is asked with `ps`
PROC = "/proc"
# What names this machine across its restarts (systemd's; absent on some systems)
MACHINE_ID = "/etc/machine-id"


def _process_start(pid: int) -> str | None:
    """Field 22 of /proc/<pid>/stat (start time in clock ticks since boot); where there is no /proc (macOS), the
    start `ps` gives, in UTC to the second ("ps:Mon Dec  7 23:31:29 2026"): without it a pid the system reused (a
    laptop restarted after its driver died with it) is taken for the driver, alive, and `sweeps resume` refused to
    continue the invocation. None where unreadable."""
    try:
        return Path(f"{PROC}/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        if os.path.isdir(f"{PROC}/self"):   # Linux: a process gone, or one hidden from this one
            return None
    try:   # LC_ALL and TZ: the same text from every shell and time zone (a laptop that travels)
        started = subprocess.run(["ps", "-o", "lstart=", "-p", str(int(pid))], capture_output=True, text=True,
                                 timeout=10, env={**os.environ, "LC_ALL": "C", "TZ": "UTC"})
    except (OSError, subprocess.SubprocessError, ValueError):
        return None
    text = " ".join(started.stdout.split())
    return f"ps:{text}" if started.returncode == 0 and text else None


HEARTBEAT_S = 60.0            # how often a driver tags its parent run with a sign of life
HEARTBEAT_STALE_S = 600.0     # silent this long, another host's driver is taken for gone


def _driver_of(tags: Mapping[str, str]) -> tuple[str, int, str | None] | None:
    """(host, pid, process start) of the sweeps.driver tag; None where it is missing or malformed."""
    try:
        driver = json.loads(tags.get(schema.TAG_DRIVER) or "")
        return str(driver["host"]), int(driver["pid"]), driver.get("start")
    except (ValueError, TypeError, KeyError):
        return None


def driver_pid_here(tags: Mapping[str, str]) -> int | None:
    """The pid of the invocation's recorded driver where it ran in this process table (`driver_is_here`), else None."""
    driver = _driver_of(tags)
    return driver[1] if driver is not None and driver_is_here(tags) else None


def _table_of(tags: Mapping[str, str]) -> str | None:
    """Where the invocation's recorded driver ran: None (another host name, or none recorded), "this" (this process
    table, as far as both record it: `_process_table`), "restarted" (this machine, since restarted: no process of it
    is left) or "another" (this host name, another table: another container of a `--net=host` Docker node, as Ray's
    cluster launcher starts them, or another machine of the same name)."""
    driver = _driver_of(tags)
    if driver is None or driver[0] != socket.gethostname():
        return None
    recorded, here = json.loads(tags[schema.TAG_DRIVER]), _process_table()
    if all(recorded.get(key) in (None, value) for key, value in here.items()):
        return "this"
    if here.get("machine") and recorded.get("machine") == here["machine"] and recorded.get("boot") != here.get("boot"):
        return "restarted"
    return "another"


def driver_is_here(tags: Mapping[str, str]) -> bool:
    """Whether the invocation's recorded driver ran on this host, in the process table this process looks at (or this
    machine's before it restarted): its host name, and its boot, pid namespace and machine id where both record them
    (`_table_of`). A driver in another container of a `--net=host` Docker node has this host's name, but its pid is
    not in this table: found here, a live driver read as gone, and its runs were ended KILLED while it trained them;
    its heartbeat tells instead."""
    return _table_of(tags) in ("this", "restarted")


def driver_state(tags: Mapping[str, str], now: float | None = None) -> str:
    """Of an invocation tagged running: "alive" (its driver runs on this host, or another host's driver gave
    a sign of life within HEARTBEAT_STALE_S), "gone" (it ran on this host and has exited: killed, or the
    machine restarted, without marking the invocation; or another host's has been silent longer), or
    "unknown" (not recorded)."""
    driver = _driver_of(tags)
    if driver is None:
        return "unknown"
    _, pid, start = driver
    table = _table_of(tags)
    if table == "restarted":   # none of its processes outlived the restart
        return "gone"
    if table != "this":   # no process table to look at: its heartbeat, where it has one
        age = heartbeat_age(tags, now)
        return "unknown" if age is None else "gone" if age > HEARTBEAT_STALE_S else "alive"
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return "gone"
    except OSError:   # another user's process: alive
        pass
    now = _process_start(pid)
    return "gone" if start is not None and now is not None and now != start else "alive"


def heartbeat_tags(now: float | None = None) -> dict[str, str]:
    """A sign of life of the driver, as its parent run's tags: sweeps.heartbeat in unix seconds, which readers go by
    (`heartbeat_age`, `last_ran`), and sweeps.heartbeat_utc, the same time for a person looking at the run in the
    MLflow UI."""
    now = time.time() if now is None else now
    return {schema.TAG_HEARTBEAT: f"{now:.0f}",
            schema.TAG_HEARTBEAT_UTC: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(round(now)))}


def heartbeat_age(tags: Mapping[str, str], now: float | None = None) -> float | None:
    """Seconds since the driver's last sign of life (None: none recorded)."""
    try:
        beat = float(tags[schema.TAG_HEARTBEAT])
    except (KeyError, ValueError, TypeError):
        return None
    return max(0.0, (time.time() if now is None else now) - beat)


def driver_description(tags: Mapping[str, str], now: float | None = None) -> str:
    """Where an invocation's driver runs, and how it was last seen, in words: "process 123 on this host",
    "process 123 on node-2 (last sign of life 40 s ago)"."""
    driver = _driver_of(tags)
    if driver is None:
        return "an unrecorded driver"
    if driver_is_here(tags):
        return f"process {driver[1]} on this host"
    age = heartbeat_age(tags, now)
    where = f"process {driver[1]} on {driver[0]}"
    return where if age is None else where + (
        f" (last sign of life {f'{age:.0f} s' if age < 120 else f'{age / 60:.0f} min'} ago)")


@contextlib.contextmanager
def heartbeat(tracking_uri: str, run_id: str, every_s: float = HEARTBEAT_S) -> Iterator[None]:
    """Tag the parent run with the time every `every_s` while the block runs, so that readers on other hosts
    can tell a driver that died without a word (no process table of its host to look at) from a live one.
    A failed write is logged and retried at the next beat: a sign of life must never stop a sweep. A server that
    does not answer /health is not written to: MLflow's 7 retries with back-off (up to ~4 min) of a beat that the
    next one retries anyway each put a urllib3 "Retrying ... log-batch" warning on the driver's console."""
    import threading

    stop = threading.Event()
    client = client_for(tracking_uri)

    def beat() -> None:
        while True:
            try:
                if not reachable(tracking_uri):
                    raise TrackingError(f"MLflow tracking server {tracking_uri} is unreachable")
                set_tags(client, run_id, heartbeat_tags())
            except Exception as exc:  # the store away for a while: the next beat tries again
                log.debug("heartbeat of run %s not written: %s", run_id, exc)
            if stop.wait(every_s):
                return

    thread = threading.Thread(target=beat, name="sweeps-heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=1.0)   # a beat stuck on a server away must not hold up a Ctrl-C


def parent_status(tags: Mapping[str, str]) -> str:
    """An invocation's status as readers show it: tagged running, but its driver has gone without a word
    (SIGKILL, an out-of-memory kill, a reboot; on another host: silent past HEARTBEAT_STALE_S), it is
    interrupted."""
    status = tags.get(schema.TAG_STATUS, schema.STATUS_RUNNING)
    if status == schema.STATUS_RUNNING and driver_state(tags) == "gone":
        return schema.STATUS_INTERRUPTED
    return status


def find_parent(client: MlflowClient, experiment_id: str, key: str):
    """The parent run of this invocation key run last (`ran_last_first`: where `--fresh` started a second one,
    the one `sweeps status` shows and says how to continue), or None."""
    runs = ran_last_first(client.search_runs([experiment_id],
                                             filter_string=f"tags.`{schema.TAG_ROLE}` = '{schema.ROLE_PARENT}' and "
                                                           f"tags.`{TAG_INVOCATION}` = '{key}'",
                                             order_by=["attributes.start_time DESC"], max_results=1000))
    return runs[0] if runs else None


def invocation_options(parent, among: Collection = ()) -> str:
    """An invocation by what tells it from the sweep's others: run 1234abcd (interrupted): profile quick,
    data synthetic, --set optim.epochs=3. Where one of `among` (the invocations listed with it) reads the same so,
    its data folders are named too, shortened to the last parts of their paths that tell them apart: two runs of
    RAF-DB, from its official layout and from Kaggle's class folders, both read "profile smoke, data rafdb"."""
    return f"run {parent.info.run_id[:8]} ({parent_status(parent.data.tags)}): {_options_text(parent)}" \
           f"{data_folders_apart(parent, among)}"


def data_folders_apart(parent, among: Collection = ()) -> str:
    """" (rafdb=.../DATASET)": the parent's data folders, shortened as `invocation_options` names them, where one
    of `among` reads as it does by profile, data and --set alone; "" where none does."""
    options = _options_text(parent)
    alike = [p for p in among if p.info.run_id != parent.info.run_id and _options_text(p) == options]
    return f" ({_roots_apart(parent, alike)})" if alike else ""


def _options_text(parent) -> str:
    tags = parent.data.tags
    return f"profile {tags.get(schema.TAG_PROFILE, '?')}, data {data_names(tags)}{set_options(tags)}"


def data_roots_of(parent) -> str:
    """A parent run's data_roots param as recorded ("name=folder,...", as given; "" where none or not read)."""
    return parent.data.params.get("data_roots", "") if getattr(parent.data, "params", None) else ""


def _roots_apart(parent, alike: list) -> str:
    """The parent's data folders (name=folder) with each folder cut to its last parts, as few as tell it from the
    alike invocations' (all of it where none do)."""
    def cut(roots: str, parts: int | None) -> str:
        if not roots:
            return "data folders not recorded"
        shown = []
        for entry in roots.split(","):
            name, _, folder = entry.partition("=")
            pieces = Path(folder).parts
            short = folder if parts is None or len(pieces) <= parts + 1 else ".../" + "/".join(pieces[-parts:])
            shown.append(f"{name}={short}")
        return ", ".join(shown)

    mine = data_roots_of(parent)
    for parts in (1, 2, 3, None):
        text = cut(mine, parts)
        if all(cut(data_roots_of(other), parts) != text for other in alike):
            return text
    return cut(mine, None)


def set_options(tags: Mapping[str, str]) -> str:
    """A parent run's --set as a reader writes them after its profile and data: ", --set optim.epochs=3"."""
    import shlex

    try:
        overrides = json.loads(tags.get(schema.TAG_OVERRIDES) or "{}")
    except ValueError:
        overrides = {}
    return "".join(f", --set {shlex.quote(f'{key}={value}')}" for key, value in overrides.items())


def data_names(tags: Mapping[str, str]) -> str:
    """A parent run's data sets as a reader writes them: "synthetic, imagefolder"."""
    return ", ".join(tags.get(schema.TAG_DATA, "?").split(","))


def tracking_uri_to_repeat(option: str | None, resolved: str) -> str | None:
    """The --tracking-uri a printed command repeats: the store it was read from (`resolved`, a sqlite path made
    absolute: the command works from any folder), unless MLFLOW_TRACKING_URI named it, which the shell that runs
    the command names too."""
    return None if uri_from_env(option) else resolved


def parents(client: MlflowClient, experiment_id: str, max_results: int | None, unfinished: bool = False) -> list:
    """A sweep's parent runs (invocations), the one run last first (`ran_last_first`), at most `max_results` (None:
    every one); `unfinished`: only those not tagged completed (interrupted, failed, or running)."""
    only = f" and tags.`{schema.TAG_STATUS}` != '{schema.STATUS_COMPLETED}'" if unfinished else ""
    # every one: an invocation started long ago may be the one run last
    found = search_all(client, [experiment_id], f"tags.`{schema.TAG_ROLE}` = '{schema.ROLE_PARENT}'{only}",
                       order_by=["attributes.start_time DESC"])
    return ran_last_first(found)[:max_results]


def search_all(client: MlflowClient, experiment_ids: list[str], filter_string: str, order_by=None) -> list:
    """Every run the filter matches, page after page (MLflow returns at most 1,000 at a time)."""
    runs, token = [], None
    while True:
        page = client.search_runs(experiment_ids, filter_string=filter_string, max_results=1000,
                                  order_by=order_by, page_token=token)
        runs.extend(page)
        token = page.token
        if not token:
            return runs


def last_ran(run) -> float:
    """When an invocation last ran, in seconds since the epoch: its driver's last heartbeat (set when a run
    starts or continues it, renewed while it runs), else its start."""
    started = (run.info.start_time or 0) / 1000
    try:
        return max(started, float(run.data.tags.get(schema.TAG_HEARTBEAT) or 0))
    except ValueError:
        return started


def ran_last_first(runs: list) -> list:
    """Invocations, the one run last first: what `sweeps table`, `plot`, `status` and `best` show by default.
    An older invocation continued after a newer one was started is the one a researcher just ran; ordered by
    their start alone, the newer one's table was shown."""
    return sorted(runs, key=last_ran, reverse=True)


def start_parent(client: MlflowClient, experiment_id: str, sweep: str, tags: Mapping[str, str]) -> str:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    all_tags = {schema.TAG_ROLE: schema.ROLE_PARENT, schema.TAG_SWEEP: sweep,
                schema.TAG_STATUS: schema.STATUS_RUNNING, schema.TAG_DRIVER: driver_identity(),
                **heartbeat_tags(), **tags}
    run = client.create_run(experiment_id, run_name=f"{sweep}@{stamp}", tags=all_tags)
    return run.info.run_id


def set_tags(client: MlflowClient, run_id: str, tags: Mapping[str, Any]) -> None:
    client.log_batch(run_id, tags=[RunTag(k, str(v)) for k, v in tags.items()])


URL_PRINTING_ENV = "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT"
_ENDING_QUIETLY = threading.Lock()


def end_child_run(client: MlflowClient, run_id: str, status: str, end_time: int | None = None) -> None:
    """The driver ends a cell's run (pruned, failed, interrupted) without MLflow's "🏃 View run ... at: URL" and
    "🧪 View experiment at: URL" lines, which a tracking server's client prints to stdout at each run it ends (one
    more get_run each): a search printed two per pruned trial among its progress lines. The parent's, at the
    end, is printed: the link to the invocation in the MLflow UI. One thread at a time (`_ENDING_QUIETLY`): two
    at once (the cluster-lost watcher beside the main thread) each put back what the other had set, and left the
    links off for the rest of the process. `end_time` (ms since the epoch): when it ended, if not now."""
    with _ENDING_QUIETLY, temporarily_set(URL_PRINTING_ENV, "true"):
        client.set_terminated(run_id, status, end_time=end_time)


def _terminal_status(status: str) -> str:
    """The MLflow status an invocation's parent run ends with, by its sweeps.status: FINISHED, FAILED, else KILLED."""
    terminal = {schema.STATUS_COMPLETED: RunStatus.FINISHED, schema.STATUS_FAILED: RunStatus.FAILED}
    return RunStatus.to_string(terminal.get(status, RunStatus.KILLED))


def finish_parent(client: MlflowClient, run_id: str, status: str) -> None:
    """The invocation's end: its status tag and MLflow status (FINISHED, FAILED, else KILLED). Ended otherwise
    than completed, its child runs MLflow still calls RUNNING are ended KILLED (`end_children_left_running`)."""
    client.set_tag(run_id, schema.TAG_STATUS, status)
    client.set_terminated(run_id, _terminal_status(status))
    if status != schema.STATUS_COMPLETED:
        try:
            end_children_left_running(client, run_id)
        except Exception as exc:   # the parent's end is recorded; its children's is for the UI alone
            log.warning("child runs of invocation %s left RUNNING in MLflow (readers call them interrupted): %s",
                        run_id, exc)


def end_children_left_running(client: MlflowClient, parent_run_id: str) -> int:
    """An invocation stopped (Ctrl-C, SIGTERM, the cluster lost, failed): its child runs whose trials it stopped
    mid-training are ended KILLED in MLflow, so that the MLflow UI does not show them running for ever under a
    parent that ended. Their `sweeps.status` tag stays `running`: readers call such a child interrupted
    (`tables._child_status`), and `CellRun.open` sets it RUNNING again when a resume continues its cell.
    One already tagged completed (its trial ended between `CellRun.complete`'s tag and its end, or is ending it
    now) is ended FINISHED, as that end would: KILLED, a table's resume (which does not train it again) left it
    so for good, and its Tune checkpoints were never dropped (`runner._drop_completed_cells_checkpoints`).
    Returns how many."""
    experiment_id = client.get_run(parent_run_id).info.experiment_id
    runs = [run for run in search_all(client, [experiment_id], f"tags.`{schema.TAG_PARENT}` = '{parent_run_id}'")
            if run.info.status in ("RUNNING", "SCHEDULED")]
    for run in runs:
        completed = run.data.tags.get(schema.TAG_STATUS) == schema.STATUS_COMPLETED
        end_child_run(client, run.info.run_id,
                      RunStatus.to_string(RunStatus.FINISHED if completed else RunStatus.KILLED))
    return len(runs)


def end_runs_of_gone_drivers(client: MlflowClient, experiment_id: str, now: float | None = None) -> int:
    """The runs of a sweep (experiment) that MLflow still calls RUNNING although their invocation's driver is gone
    without a word (`driver_state` "gone": SIGKILL, an out-of-memory kill, a machine that lost power, on this host
    its process gone or its pid reused; on another, silent past HEARTBEAT_STALE_S) are ended as `finish_parent` ends
    an interrupted invocation's: the parent KILLED (FINISHED or FAILED where tagged completed or failed: killed
    between its tag and its end), its children KILLED (FINISHED where tagged completed, `end_children_left_running`),
    each when the invocation was last seen alive (`_last_sign_of_life`), so that the MLflow UI shows them neither
    running for ever nor running until someone looked. Their sweeps.status tags stay as they are:
    a parent tagged running with its driver gone reads as interrupted (`parent_status`), and so does a child tagged
    running under it; a continuation reopens both (`CellRun.open`). A run whose driver may be alive (its process on
    this host, a fresh heartbeat from another) or is not recorded (`driver_state` "unknown") is left alone, and the
    parent is read again just before it is ended, so that one a continuation has taken over since is too. Called
    by `sweeps run` and `sweeps resume` before they look for their invocation, and by `sweeps status`; one query
    for the RUNNING runs of the experiment (of a parent none is RUNNING: none more). Returns how many runs it ended."""
    running = search_all(client, [experiment_id],   # this tool's runs: a store may hold others' runs
                         f"attributes.status = 'RUNNING' and tags.`{schema.TAG_ROLE}` != ''")
    by_id = {run.info.run_id: run for run in running}
    children: dict[str, list] = {}   # parent run id -> its RUNNING child runs
    for run in running:
        tags = run.data.tags
        if tags.get(schema.TAG_ROLE) == schema.ROLE_PARENT:
            children.setdefault(run.info.run_id, [])
        elif tags.get(schema.TAG_PARENT):
            children.setdefault(tags[schema.TAG_PARENT], []).append(run)
    ended = 0
    for parent_id, left in children.items():
        seen = by_id.get(parent_id)
        if seen is not None and driver_state(seen.data.tags, now) != "gone":
            continue
        try:   # as it is now: a continuation may have taken it over since the search
            parent = client.get_run(parent_id)
        except MlflowException as exc:   # deleted for good: no driver to tell by
            log.debug("parent run %s of running runs not read (%s)", parent_id, exc)
            continue
        tags = parent.data.tags
        if tags.get(schema.TAG_ROLE) != schema.ROLE_PARENT or driver_state(tags, now) != "gone":
            continue
        last_seen = _last_sign_of_life(client, parent)   # a search, and a query per cell: a while on a server
        if client.get_run(parent_id).data.tags.get(schema.TAG_DRIVER) != tags.get(schema.TAG_DRIVER):
            continue   # a continuation took it over meanwhile: its cells are its own now
        if parent.info.status in ("RUNNING", "SCHEDULED"):
            end_child_run(client, parent_id, _terminal_status(tags.get(schema.TAG_STATUS, schema.STATUS_RUNNING)),
                          end_time=max(last_seen, parent.info.start_time or 0))
        for run in left:
            completed = run.data.tags.get(schema.TAG_STATUS) == schema.STATUS_COMPLETED
            end_child_run(client, run.info.run_id,
                          RunStatus.to_string(RunStatus.FINISHED if completed else RunStatus.KILLED),
                          end_time=max(last_seen, run.info.start_time or 0))
        here = len(left) + (parent.info.status in ("RUNNING", "SCHEDULED"))
        ended += here
        log.info("invocation %s: its driver, %s, is gone: %d of its runs that MLflow still called RUNNING ended",
                 parent_id, driver_description(tags, now), here)
    return ended


def _last_sign_of_life(client: MlflowClient, parent) -> int:
    """When an invocation whose driver is gone was last seen alive, in ms since the epoch: the latest of its
    driver's heartbeat (renewed every HEARTBEAT_S, so up to a minute early) and its start, and of each of its child
    runs' start, end and, of one MLflow calls RUNNING, last epoch logged."""
    latest = int(last_ran(parent) * 1000)
    for run in child_runs(client, parent.info.experiment_id, parent.info.run_id):
        latest = max(latest, run.info.start_time or 0, run.info.end_time or 0)
        if run.info.status in ("RUNNING", "SCHEDULED"):
            latest = max([latest, *(m.timestamp for m in client.get_metric_history(run.info.run_id, EPOCH_MARKER))])
    return latest


def end_runs_of_gone_drivers_if_possible(client: MlflowClient, experiment_id: str, reader: bool = False) -> int:
    """`end_runs_of_gone_drivers`, never failing its caller: a store that cannot be written (read-only, locked, a
    server away) leaves the runs as they are, which readers call interrupted anyway; logged, at debug level for a
    `reader` (`sweeps status`: every look at a read-only copy would warn)."""
    try:
        return end_runs_of_gone_drivers(client, experiment_id)
    except _LOG_ERRORS as exc:
        log.log(logging.DEBUG if reader else logging.WARNING, "runs of invocations whose driver is gone are left "
                "RUNNING in MLflow (readers call them interrupted): %s", exc)
        return 0


def child_runs(client: MlflowClient, experiment_id: str, parent_run_id: str) -> list:
    """The child runs of one invocation, the latest started first."""
    return client.search_runs([experiment_id],
                              filter_string=f"tags.`{schema.TAG_PARENT}` = '{parent_run_id}'",
                              order_by=["attributes.start_time DESC"], max_results=50000)


def latest_per_cell(runs: list) -> dict[str, Any]:
    """cell_id -> the latest started of `runs` (child_runs' order) of each cell: the one `find_cell_run`
    finds, which a retry continues (the oldest won before, so a cell with two runs read as the first's)."""
    latest: dict[str, Any] = {}
    for run in runs:
        latest.setdefault(run.data.tags.get(schema.TAG_CELL_ID, ""), run)
    return latest


def cell_statuses(client: MlflowClient, experiment_id: str, parent_run_id: str) -> dict[str, str]:
    """cell_id -> status of the child runs of one invocation (the latest run of each cell)."""
    return {cell: r.data.tags.get(schema.TAG_STATUS, "")
            for cell, r in latest_per_cell(child_runs(client, experiment_id, parent_run_id)).items()}


def log_json_artifact(client: MlflowClient, run_id: str, name: str, payload: Any,
                      artifact_path: str | None = None) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / name
        path.write_text(json.dumps(payload, indent=2, default=str))
        client.log_artifact(run_id, str(path), artifact_path)


def read_text_artifact(client: MlflowClient, run_id: str, name: str) -> str | None:
    """A text artifact of a run, or None where it is missing or unreadable."""
    try:
        with tempfile.TemporaryDirectory() as tmp:
            return Path(client.download_artifacts(run_id, name, tmp)).read_text()
    except Exception:   # MLflow's errors for a missing artifact differ by store
        return None


def read_run_text_artifact(client: MlflowClient, run, name: str) -> str | None:
    """A text artifact of `run` (as search_runs returns it), or None where it is missing or unreadable: read from the
    run's artifact location, without asking the store for the run again, as `read_text_artifact` does through
    MlflowClient.download_artifacts (two queries and a logged-model lookup: ~50 ms a file on a local sqlite store,
    ~1 ms so). Where that location cannot be read so, as `read_text_artifact`."""
    import mlflow

    location = run.info.artifact_uri
    if location:
        try:
            with tempfile.TemporaryDirectory() as tmp:
                return Path(mlflow.artifacts.download_artifacts(
                    artifact_uri=f"{location.rstrip('/')}/{name}", dst_path=tmp,
                    tracking_uri=client.tracking_uri)).read_text()
        except Exception:   # MLflow's errors for a missing artifact differ by store
            pass
    return read_text_artifact(client, run.info.run_id, name)


def read_json_artifact(client: MlflowClient, run_id: str, name: str) -> Any | None:
    """A JSON artifact of a run (as log_json_artifact wrote it), or None where it is missing or unreadable
    (an invocation that died before writing its plan)."""
    text = read_text_artifact(client, run_id, name)
    try:
        return None if text is None else json.loads(text)
    except ValueError:   # a cut-short file
        return None


def log_text_artifact(client: MlflowClient, run_id: str, name: str, text: str) -> None:
    """A text artifact of a run at `name` (in a folder where it has one: spec_history/x.yaml)."""
    folder, _, file_name = name.rpartition("/")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / file_name
        path.write_text(text)
        client.log_artifact(run_id, str(path), folder or None)


# --------------------------------------------------------------------------- child runs

@dataclass(frozen=True)
class CellIdentity:
    """What the trainable knows about its cell; travels in the trial's config."""

    sweep: str
    arm: str
    data: str
    seed: int
    cell_id: str
    run_name: str


def _summary_metrics(summary: Mapping[str, float], timestamp_ms: int, step: int) -> list[Metric]:
    return [Metric(k, float(v), timestamp_ms, step) for k, v in summary.items()
            if k in schema.SUMMARY_METRICS or k == schema.DIVERGED_EPOCH_KEY]


class CellRun:
    """The MLflow child run of one cell, found again on retry (same parent, same cell)."""

    def __init__(self, client: MlflowClient, run_id: str) -> None:
        self.client = client
        self.run_id = run_id

    @classmethod
    def open(cls, uri: str, experiment_id: str, parent_run_id: str, cell: CellIdentity,
             trial_id: str, params: Mapping[str, Any], extra_tags: Mapping[str, str]) -> "CellRun":
        client = client_for(uri)
        existing = find_cell_run(client, experiment_id, parent_run_id, cell.cell_id)
        tags = {schema.TAG_STATUS: schema.STATUS_RUNNING, schema.TAG_TRIAL_ID: trial_id, **extra_tags}
        if existing is not None:
            run = cls(client, existing.info.run_id)
            client.update_run(run.run_id, status=RunStatus.to_string(RunStatus.RUNNING))
            set_tags(client, run.run_id, tags)
            for stale in (schema.TAG_ERROR, schema.TAG_INTERRUPTED_WHY):   # an earlier attempt's end: not this one's
                if stale in existing.data.tags:
                    client.delete_tag(run.run_id, stale)
            log.info("continuing MLflow run %s of cell %s", run.run_id, cell.run_name)
            return run
        return cls.create(client, experiment_id, parent_run_id, cell, params, tags)

    @classmethod
    def create(cls, client: MlflowClient, experiment_id: str, parent_run_id: str, cell: CellIdentity,
               params: Mapping[str, Any], tags: Mapping[str, str]) -> "CellRun":
        """A new child run of the cell, tagged with its identity and `tags`, its params logged. Its user is its
        parent's (who ran the sweep, not the account its trial's node runs as): without it the MLflow UI's User
        column read `unknown` for every cell, and a filter on `attributes.user_id` found none. Its arm is a param
        too (schema.PARAM_ARM): the UI's parallel coordinates chart takes params and metrics, not tags."""
        from mlflow.utils.mlflow_tags import MLFLOW_USER

        try:
            user = client.get_run(parent_run_id).data.tags.get(MLFLOW_USER)
        except MlflowException as exc:   # a parent deleted for good meanwhile: the cell's run is made, user unknown
            log.debug("user of parent run %s not read (%s)", parent_run_id, exc)
            user = None
        all_tags = {schema.TAG_PARENT: parent_run_id, schema.TAG_ROLE: schema.ROLE_CELL,
                    schema.TAG_SWEEP: cell.sweep, schema.TAG_ARM: cell.arm, schema.TAG_DATA: cell.data,
                    schema.TAG_SEED: str(cell.seed), schema.TAG_CELL_ID: cell.cell_id,
                    **({MLFLOW_USER: user} if user else {}), **tags}
        run = cls(client, client.create_run(experiment_id, run_name=cell.run_name, tags=all_tags).info.run_id)
        run.log_params({**params, schema.PARAM_ARM: cell.arm})   # once: a continuation logs no param again
        return run

    def log_params(self, params: Mapping[str, Any]) -> None:
        items = [Param(k, json.dumps(v) if isinstance(v, list) else str(v)) for k, v in params.items()]
        for start in range(0, len(items), 100):  # log_batch takes at most 100 params
            self.client.log_batch(self.run_id, params=items[start:start + 100])

    def log_epoch(self, record: Mapping[str, Any], summary: Mapping[str, float],
                  timestamp_ms: int | None = None) -> None:
        """One batched call per epoch: the epoch's metrics at step=epoch plus the running summaries.
        timestamp_ms: when the epoch was measured (default: now)."""
        now = int(time.time() * 1000) if timestamp_ms is None else int(timestamp_ms)
        step = int(record["epoch"])
        metrics = [Metric(k, float(record[k]), now, step) for k in schema.EPOCH_METRICS if k in record]
        self.client.log_batch(self.run_id, metrics=metrics + _summary_metrics(summary, now, step))

    def log_summary(self, summary: Mapping[str, float], step: int) -> None:
        """The running summaries again at `step` (a later timestamp: MLflow's latest value)."""
        self.client.log_batch(self.run_id, metrics=_summary_metrics(summary, int(time.time() * 1000), step))

    def logged_epochs(self) -> set[int]:
        """The epochs (steps) already in the run; every epoch logs `epochs_done` with the rest."""
        return {int(m.step) for m in self.client.get_metric_history(self.run_id, EPOCH_MARKER)}

    def logged_scores(self) -> dict[int, dict[str, float]]:
        """epoch -> the latest logged value of each of its SCORE_METRICS."""
        scores: dict[int, dict[str, float]] = {}
        for metric in SCORE_METRICS:
            for step, value in latest_per_step(self.client.get_metric_history(self.run_id, metric)):
                scores.setdefault(step, {})[metric] = value
        return scores

    def complete(self, history_payload: Mapping, confusion_payload: Mapping, model_state: Mapping | None,
                 config_flat: Mapping[str, Any], attention: Mapping[str, Any] | None = None,
                 selected_state: Mapping | None = None) -> None:
        """Artifacts of a finished cell, then FINISHED with status completed.

        model_state: the last epoch's weights (model/); selected_state: those of the epoch chosen on
        validation, which score sel_test_acc (model_selected/). When that epoch is the last (`selected_state`
        is `model_state`), model/ holds them and no second copy is logged (249 MB at paper scale).
        attention: transfer_core.attention.attention_record of `selected_state` where given, else of
        `model_state`, logged beside those weights."""
        log_json_artifact(self.client, self.run_id, schema.ARTIFACT_HISTORY, history_payload)
        log_json_artifact(self.client, self.run_id, schema.ARTIFACT_CONFUSION, confusion_payload)
        if selected_state is model_state:
            selected_state = None
        if model_state is not None:
            self._log_model(schema.ARTIFACT_MODEL_DIR, model_state, config_flat,
                            attention if selected_state is None else None)
        if selected_state is not None:
            self._log_model(schema.ARTIFACT_SELECTED_MODEL_DIR, selected_state, config_flat, attention)
        self.client.set_tag(self.run_id, schema.TAG_STATUS, schema.STATUS_COMPLETED)
        self.client.set_terminated(self.run_id, RunStatus.to_string(RunStatus.FINISHED))

    def _log_model(self, artifact_dir: str, weights: Mapping, config_flat: Mapping[str, Any],
                   attention: Mapping[str, Any] | None = None) -> None:
        """state_dict.pt and config.json (a flat TrialConfig): what transfer_core.models.trained_model loads."""
        import torch

        from transfer_core.attention import save_record

        with tempfile.TemporaryDirectory() as tmp:
            torch.save(dict(weights), Path(tmp) / schema.MODEL_STATE_FILE)
            (Path(tmp) / schema.MODEL_CONFIG_FILE).write_text(json.dumps(dict(config_flat), indent=2))
            if attention is not None:
                save_record(attention, Path(tmp) / schema.MODEL_ATTENTION_FILE)
            self.client.log_artifacts(self.run_id, tmp, artifact_dir)


def backfill_arm_params(client: MlflowClient, children) -> int:
    """Cell runs made before they got their arm as a param (schema.PARAM_ARM, for the MLflow UI's charts of params)
    get it, as they would have been made: their own `sweeps.arm` tag, the label they were made under (a spec that
    renamed the arm since does not rename it: a param cannot change, and runs made since log it so too). Only a run
    that has no such param and has the tag; called by a run of the invocation (a continuation, a resume, a rerun of
    it finished) with its child runs (`child_runs`). Returns how many; never fails its caller (the tag is there).
    One attempt per run, and none after a failure that is not that run's own (a store away, or a server whose
    database fails while its /health answers): with MLflow's retries (~4 min a call) hundreds of runs held the
    sweep's start for hours; the next run of the invocation logs those left."""
    done = 0
    todo = [run for run in children
            if run.data.tags.get(schema.TAG_ARM) is not None and schema.PARAM_ARM not in run.data.params]
    with single_attempt():
        for i, run in enumerate(todo):
            try:
                client.log_batch(run.info.run_id, params=[Param(schema.PARAM_ARM, run.data.tags[schema.TAG_ARM])])
            except _LOG_ERRORS as exc:
                if getattr(exc, "error_code", None) == "INVALID_PARAMETER_VALUE":   # set meanwhile, to another value
                    log.debug("arm param of run %s not logged: %s", run.info.run_id, exc)
                    continue
                log.info("arm param of %d cell run(s) not logged (%s): their sweeps.arm tag stays the record, and "
                         "the next run of the invocation logs it", len(todo) - i, exc)
                break
            done += 1
    return done


def record_unopened_failure(client: MlflowClient, experiment_id: str, parent_run_id: str, cell: CellIdentity,
                            trial_id: str, params: Mapping[str, Any], error: str | None) -> str:
    """Driver side: the run of a trial that failed before it opened one (its node cannot reach the store or
    --storage, its data are not there), tagged as `CellRun.open` tags a cell's and failed at once, so that
    status, tables and the MLflow UI count it and say why. A retry of the trial continues this run (it
    finds it by its cell id). Returns the run id."""
    run = CellRun.create(client, experiment_id, parent_run_id, cell, params,
                         {schema.TAG_STATUS: schema.STATUS_RUNNING, schema.TAG_TRIAL_ID: trial_id})
    mark_cell(client, run.run_id, schema.STATUS_FAILED, error=error)
    return run.run_id


def _latest_child(client: MlflowClient, experiment_id: str, parent_run_id: str, tag: str, value: str):
    runs = client.search_runs([experiment_id],
                              filter_string=f"tags.`{schema.TAG_PARENT}` = '{parent_run_id}' and "
                                            f"tags.`{tag}` = '{value}'",
                              order_by=["attributes.start_time DESC"], max_results=1)
    return runs[0] if runs else None


def find_cell_run(client: MlflowClient, experiment_id: str, parent_run_id: str, cell_id: str):
    """The (latest) child run of one cell of one invocation, or None."""
    return _latest_child(client, experiment_id, parent_run_id, schema.TAG_CELL_ID, cell_id)


def find_trial_run(client: MlflowClient, experiment_id: str, parent_run_id: str, trial_id: str):
    """The child run a Tune trial of one invocation opened (`CellRun.open` tags it), or None."""
    return _latest_child(client, experiment_id, parent_run_id, schema.TAG_TRIAL_ID, trial_id)


# what a failed log call raises: MLflow's errors (REST errors after its retries), a sqlite store's
# errors (locked, disk full) and the OS errors below them
_LOG_ERRORS = (MlflowException, SQLAlchemyError, OSError)


RETRIES_ENV = "MLFLOW_HTTP_REQUEST_MAX_RETRIES"   # read by MLflow's REST client at each call


@contextlib.contextmanager
def single_attempt(enabled: bool = True) -> Iterator[None]:
    """MLflow calls inside make one attempt: no retries with back-off (7, up to ~4 min, by default).
    For an epoch's log, whose failure only keeps it queued for the next epoch's try. The setting is the
    process's environment, restored on exit; a trial's process makes no other MLflow call meanwhile (in
    the driver, a heartbeat made meanwhile gets one attempt too: its next beat is the retry).
    enabled=False: MLflow's own retries (a caller that waits for the server anyway)."""
    if not enabled:
        yield
        return
    with temporarily_set(RETRIES_ENV, "0"):
        yield


def _same_value(a: float, b: float) -> bool:
    return a == b or (math.isnan(a) and math.isnan(b))


class EpochLog:
    """The epochs of one cell on their way to its MLflow run, each logged once, in order (again where
    re-trained and measured otherwise).

    `add` queues an epoch unless the run already holds it as measured (a resumed trial re-trains the
    epochs after its checkpoint, and a retry may come from an older checkpoint than the run has seen);
    one whose scores differ from the logged ones is logged again (see the module's docstring).
    `flush()` logs what is queued when the store answers and otherwise keeps it for the next epoch
    (the buffer policy of this module's docstring); `flush(wait_s=...)`, at the end of a cell, waits
    for the store and raises TrackingError when it does not come back.
    """

    def __init__(self, run: CellRun, uri: str) -> None:
        self.run = run
        self.uri = uri
        self.logged = run.logged_epochs()
        self.scores = run.logged_scores() if self.logged else {}   # a resumed trial's: what it may re-train
        self.pending: list[tuple[Mapping[str, Any], Mapping[str, float], int | None]] = []
        self.logged_here: set[int] = set()   # the epochs this attempt logged, with the summaries of its history
        self._warned = False

    def add(self, record: Mapping[str, Any], summary: Mapping[str, float],
            timestamp_ms: int | None = None) -> None:
        epoch = int(record["epoch"])
        if any(int(r["epoch"]) == epoch for r, _, _ in self.pending):
            return
        if epoch in self.logged and not self._measured_otherwise(epoch, record):
            return
        self.pending.append((record, summary, timestamp_ms))

    def _measured_otherwise(self, epoch: int, record: Mapping[str, Any]) -> bool:
        logged = self.scores.get(epoch, {})
        return any(m in record and m in logged and not _same_value(float(record[m]), logged[m])
                   for m in SCORE_METRICS)

    def flush(self, wait_s: float | None = None) -> bool:
        """Log the queued epochs; True when none is left. Without wait_s an unreachable store or a
        failed call keeps them queued (False); with wait_s it waits, then raises TrackingError."""
        if not self.pending:
            return True
        if wait_s is not None:
            wait_for_tracking(self.uri, wait_s, in_trial=True)
        elif not available(self.uri):
            self._warn(away_text(self.uri))
            return False
        while self.pending:
            record, summary, stamp = self.pending[0]
            try:
                with single_attempt(enabled=wait_s is None):
                    self.run.log_epoch(record, summary, stamp)
            except _LOG_ERRORS as exc:
                if wait_s is not None:
                    raise TrackingError(f"cannot log epoch {record['epoch']} to MLflow run "
                                        f"{self.run.run_id} at {self.uri}: {exc}") from exc
                self._warn(f"logging to {self.uri} failed ({type(exc).__name__}: {exc})")
                return False
            self.logged.add(int(record["epoch"]))
            self.logged_here.add(int(record["epoch"]))
            self.scores[int(record["epoch"])] = {m: float(record[m]) for m in SCORE_METRICS if m in record}
            self.pending.pop(0)
        if self._warned:
            log.warning("MLflow run %s: the buffered epochs are logged", self.run.run_id)
            self._warned = False
        return True

    def _warn(self, why: str) -> None:
        if not self._warned:
            log.warning("%s: MLflow run %s keeps training; its epochs are buffered and logged when "
                        "the store answers again", why, self.run.run_id)
            self._warned = True


def interrupt_unfinished_children(client: MlflowClient, experiment_id: str, parent_run_id: str, why: str) -> int:
    """Driver side, as an invocation completes: every child run still tagged running (a trial begun before and
    not continued, as a search's past a num_samples lowered below the trials ended, or a seed a continuation
    with fewer --seeds leaves out) is tagged interrupted, `why` in TAG_INTERRUPTED_WHY, and ended KILLED: no
    trial of the invocation trains any more, and under a completed parent `sweeps status`, the table and the
    MLflow UI called it running for ever. A later run that continues its cell tags it running again
    (`CellRun.open`). Returns how many."""
    runs = search_all(client, [experiment_id], f"tags.`{schema.TAG_PARENT}` = '{parent_run_id}' and "
                                               f"tags.`{schema.TAG_STATUS}` = '{schema.STATUS_RUNNING}'")
    for run in runs:
        set_tags(client, run.info.run_id, {schema.TAG_STATUS: schema.STATUS_INTERRUPTED,
                                           schema.TAG_INTERRUPTED_WHY: why[:schema.ERROR_TAG_CHARS]})
        if run.info.status in ("RUNNING", "SCHEDULED"):
            end_child_run(client, run.info.run_id, RunStatus.to_string(RunStatus.KILLED))
    if runs:
        log.warning("%d run%s of invocation %s begun and not finished %s marked interrupted: %s", len(runs),
                    "s" if len(runs) > 1 else "", parent_run_id, "are" if len(runs) > 1 else "is", why)
    return len(runs)


def mark_cell(client: MlflowClient, run_id: str, status: str, pruned_step: int | None = None,
              error: str | None = None) -> None:
    """Driver side: pruned (FINISHED, tagged) or failed (FAILED; `error`: what its trial raised)."""
    tags = {schema.TAG_STATUS: status}
    if pruned_step is not None:
        tags[schema.TAG_PRUNED_STEP] = str(pruned_step)
    if error:
        tags[schema.TAG_ERROR] = error[:schema.ERROR_TAG_CHARS]
    set_tags(client, run_id, tags)
    terminal = RunStatus.FAILED if status == schema.STATUS_FAILED else RunStatus.FINISHED
    end_child_run(client, run_id, RunStatus.to_string(terminal))
