"""Locks among this host's processes (flock), on files in the temporary folder that their holders remove.

Two are taken: opening a sqlite MLflow store (`sweeps.tracking.store_opening_lock`, shared by every user's
sweeps) and running an invocation (`sweeps.runner.invocation_claimed`, in this user's `lock_folder`). Each lock
taken had left its file in the temporary folder for good (hundreds after a while); now its holder removes it as
it lets go (`host_lock`), and what a holder killed outright leaves is in one folder of this user's. Nothing here
imports more than the standard library: a process takes a lock before it loads MLflow or Ray.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from pathlib import Path
from typing import Iterator

log = logging.getLogger(__name__)

LOCK_FOLDER = "sweeps-locks-{uid}"   # in the temporary folder: this user's host locks (`lock_folder`)


class LockHeld(Exception):
    """`host_lock(wait=False)`: another process holds the lock; `note` is what its holder wrote in the file."""

    def __init__(self, path: Path, note: str):
        super().__init__(f"{path} is held by another process ({note or '?'})")
        self.note = note


def lock_folder() -> Path:
    """This user's folder of sweeps' host locks, `<temporary folder>/sweeps-locks-<uid>` (made 0700 where
    missing): one folder where each lock taken left a file in the temporary folder (hundreds after a while),
    and a name no other user can take first. OSError where it cannot be made or is not this user's alone (a
    link, another user's, writable by others): the lock is then not taken."""
    import stat

    folder = Path(tempfile.gettempdir()) / LOCK_FOLDER.format(uid=os.getuid())
    with contextlib.suppress(FileExistsError):
        folder.mkdir(mode=0o700)
    found = os.lstat(folder)
    if not stat.S_ISDIR(found.st_mode) or found.st_uid != os.getuid() or found.st_mode & 0o022:
        raise PermissionError(f"{folder} is not a folder of this user's alone")
    return folder


def _names(fd: int, path: Path) -> bool:
    """Whether `path` names the file open as `fd` (not removed, nor replaced by another, since it was opened)."""
    try:
        found, held = os.lstat(path), os.fstat(fd)
    except OSError:
        return False
    return (found.st_dev, found.st_ino) == (held.st_dev, held.st_ino)


@contextlib.contextmanager
def host_lock(path: Path, what: str, *, wait: bool = True, note: str | None = None) -> Iterator[bool]:
    """An exclusive flock, among this host's processes, on the file `path` (made where missing) while the block
    runs; yields True, or False where it cannot be taken (a read-only or foreign folder, a file system without
    locks: a debug line says why, and the block runs unguarded, as before such locks). `wait=False`: LockHeld
    at once where another process holds it. `note`: written in the file once it is held (the holder's pid, on its
    first line, which LockHeld's reader then names; lines after it say what it holds, for `live_notes`); without one the file is opened read-only, which lets another user's process
    share a file this one made. The lock goes with the process (Ctrl-C, SIGKILL); a child does not inherit it.

    Its holder removes the file as it lets go, so that none is left behind: a lock file is removed only while
    held, and only while its name still leads to the very file locked, and a process that gets the lock of a
    file removed meanwhile (it opened it before) lets it go and takes the one the name leads to now: a second
    holder of the same name never runs beside the first. Left only by a holder killed outright (taken and removed
    by the next), or made by another user (whose file this one cannot remove from a shared temporary folder)."""
    fd = _taken(path, what, wait, note is not None)
    if fd is None:
        yield False
        return
    try:
        if note is not None:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{note}\n".encode(), 0)
        yield True
    finally:
        try:
            if _names(fd, path):
                os.unlink(path)   # held, and the name's still: a process waiting on it finds it gone, takes the next
        except OSError:   # another user's file in a sticky temporary folder: left, for the next holder
            pass
        os.close(fd)   # lets go


def _taken(path: Path, what: str, wait: bool, writable: bool) -> int | None:
    """`host_lock`'s file, open and locked, and named by `path` as it is locked; None where no lock can be taken."""
    try:
        import fcntl
    except ImportError:   # not POSIX: unguarded, as MLflow and Tune themselves are
        return None
    flags = (os.O_RDWR if writable else os.O_RDONLY) | getattr(os, "O_NOFOLLOW", 0)
    while True:
        try:
            try:   # an existing file without O_CREAT: another user's, in a sticky folder, refuses O_CREAT
                fd = os.open(path, flags)   # (fs.protected_regular) even where it exists
            except FileNotFoundError:
                fd = os.open(path, flags | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:   # made meanwhile by another: open that one
            continue
        except OSError as exc:
            log.debug("lock on %s not taken: no lock file %s (%s)", what, path, exc)
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            if not _names(fd, path):   # its holder removed it as it let go: the name's file now
                os.close(fd)
                continue
            held_by = os.pread(fd, 64, 0).decode(errors="replace").split("\n")[0].strip()   # its note's first line
            os.close(fd)
            raise LockHeld(path, held_by) from None
        except OSError as exc:   # ENOLCK: a temporary folder on a file system without locks
            os.close(fd)
            log.debug("lock on %s not taken: %s cannot be locked (%s)", what, path, exc)
            return None
        if _names(fd, path):
            return fd
        os.close(fd)   # got the lock of a file its holder removed as it let go: the name's file now


def live_notes(folder: Path, pattern: str) -> list[list[str]]:
    """The notes, as lines, of the lock files matching `pattern` in `folder` whose first line is the pid of a process
    alive on this host: what the holders of such locks hold now. A holder removes its file as it lets go, so a file
    left is one of a holder killed outright, told by its pid gone (or, rarely, taken by another process since)."""
    notes = []
    for path in sorted(folder.glob(pattern)):
        try:
            lines = path.read_text(errors="replace").splitlines()
            pid = int(lines[0])
        except (OSError, ValueError, IndexError):   # let go meanwhile, or not yet written
            continue
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            continue
        except PermissionError:   # alive, another user's (not in this user's folder, but told apart all the same)
            pass
        notes.append(lines)
    return notes


def invocation_note(tracking_uri: str, name: str) -> str:
    """What `sweeps.runner.invocation_claimed` writes in its lock file: its pid, then the tracking URI and the
    sweep, by which `sweeps status` tells a run of that sweep that has not made its MLflow run yet (`runs_starting`),
    then the process's start (as the sweeps.driver tag records it: `_process_start`), by which a pid the system gave
    another process since its holder was killed outright is not taken for that holder."""
    return f"{os.getpid()}\n{tracking_uri}\n{name}\n{_process_start(os.getpid()) or ''}"


def _process_start(pid: int) -> str | None:
    """`sweeps.tracking._process_start`: loaded only as a note is written or read, which a `sweeps run` does with
    MLflow loaded (`host_lock` itself takes no more than the standard library)."""
    from sweeps.tracking import _process_start as start_of

    return start_of(pid)


def store_key(tracking_uri: str) -> str:
    """A resolved tracking URI as one store reads whichever way it is spelled: a sqlite database by its real path
    (a folder reached by a link, `..`, a doubled slash: `resolve_tracking_uri` makes only a relative path
    absolute), any other store (a server) but for a trailing slash. What an invocation's lock is named by
    (`sweeps.runner.invocation_claimed`), and what `sweeps status` tells a run starting into a store by
    (`_same_store`)."""
    if tracking_uri.startswith("sqlite:///"):
        return "sqlite:///" + os.path.realpath(tracking_uri[len("sqlite:///"):])
    return tracking_uri.rstrip("/")


def _same_store(noted: str, tracking_uri: str) -> bool:
    """Whether two resolved tracking URIs name one store (`store_key`)."""
    return noted == tracking_uri or store_key(noted) == store_key(tracking_uri)


def runs_starting(tracking_uri: str, name: str | None = None) -> list[int]:
    """The pids of this user's `sweeps run` processes on this host that hold an invocation of sweep `name` into
    `tracking_uri` (`sweeps.runner.invocation_claimed`, `invocation_note`): until its MLflow parent run is made,
    once its data are decoded and Ray has started (tens of seconds), the sweep's experiment alone tells of it."""
    return [pid for pid, sweep in sweeps_starting(tracking_uri) if name is None or sweep == name]


def sweeps_starting(tracking_uri: str) -> list[tuple[int, str]]:
    """(pid, sweep) of each invocation that this user's `sweeps run` processes on this host hold into
    `tracking_uri` (`runs_starting`). A note whose pid now names a process started otherwise than its holder (the
    holder killed outright, its file left, its pid given to another process since) is no one's: that process was
    shown as a run starting for as long as it lived. A note without the start (written by an earlier version) is
    taken by its pid alone."""
    try:
        notes = live_notes(lock_folder(), "invocation-*.lock")
    except OSError:
        return []
    return [(int(note[0]), note[2]) for note in notes
            if len(note) >= 3 and _same_store(note[1], tracking_uri) and _started_as_noted(note)]


def _started_as_noted(note: list[str]) -> bool:
    """Whether the live process of a note's pid started as its holder did (a note without the start: taken so)."""
    return len(note) < 4 or not note[3] or _process_start(int(note[0])) in (None, note[3])


def remove_left(folder: Path, pattern: str) -> None:
    """Remove the lock files matching `pattern` in `folder` that a holder killed outright left (SIGKILL, a SIGTERM
    before Ray's start, an out-of-memory kill), told by their pid gone or given to another process since. Only for
    locks no other process ever asks for (a `--fresh` run's, named by its pid), which nothing but a holder killed
    outright leaves, and which no one but the next holder of the same name would remove: each is taken (not
    waited for: one held is left) and let go, which removes it."""
    for path in folder.glob(pattern):
        try:
            note = path.read_text(errors="replace").splitlines()
            pid = int(note[0])
        except (OSError, ValueError, IndexError):   # let go meanwhile, or not yet written
            continue
        try:
            os.kill(pid, 0)
            if _started_as_noted(note):
                continue
        except ProcessLookupError:
            pass
        except PermissionError:
            continue
        with contextlib.suppress(LockHeld, OSError):
            with host_lock(path, "a lock left behind", wait=False):
                pass
