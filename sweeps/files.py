"""Files sweeps writes for people to read (figures, tables) replaced whole, never read half written.

`sweeps plot X` twice at once, or `sweeps plot` while a sweep draws its report into the same folder, wrote the
same files in place: a reader (a LaTeX build, an image viewer, the other writer's MLflow upload) could read one
half written. Each is written as a hidden file beside it, which then replaces it in one step (os.replace): a
reader opens the earlier file or the new one, whole. Two writers at once: the last to finish is what stays.

The file replaced keeps what a person set on it: its permission bits (a table made group-readable stays so),
the file a symbolic link leads to (the link stays); the other names of a file with hard links keep the earlier
content, with a warning (see `replacing`). A writer killed outright (SIGKILL, a power cut) leaves its hidden file
behind; the next write of the same file removes those whose writer is provably gone (`_remove_left_behind`).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import secrets
import socket
import stat
import time
from pathlib import Path
from typing import BinaryIO, Iterator

log = logging.getLogger(__name__)

LEFT_BEHIND_AFTER_S = 24 * 3600   # a hidden file of a writer not provably gone is removed once this old


@contextlib.contextmanager
def replacing(path: str | os.PathLike) -> Iterator[BinaryIO]:
    """A binary file to write `path` anew in: it replaces `path` as the block ends, and is removed where the block
    raises (`path` is then as it was). In the same folder (os.replace does not cross file systems), as
    `.<name>.<host>-<pid>-<random>.part` (`<host>`: a hash of this host's name and boot), which a writer killed
    outright leaves behind and a later write of `path` removes (`_remove_left_behind`).

    Made with the permissions a file written in place gets (0666 less the umask) where `path` is new, else with
    `path`'s own permission bits (best effort: a mount that refuses chmod gets the default ones). A link (`-o
    paper/tables/t.tex` linked into a paper's repository) is kept: the file it leads to is replaced. A file with
    other names (hard links) is replaced too, with a warning that those names keep the earlier content: never
    written through, as a write in place did, since the other name is as often a snapshot (`cp -al`, rsnapshot) or
    a data tool's cache object (DVC) that must not change as one a paper reads; a symbolic link follows."""
    path = Path(os.path.realpath(path)) if os.path.islink(path) else Path(path)
    try:
        found = os.stat(path)
    except OSError:
        found = None
    regular = found is not None and stat.S_ISREG(found.st_mode)
    temporary = path.parent / f".{path.name}.{_host()}-{os.getpid()}-{secrets.token_hex(3)}.part"
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        if regular and hasattr(os, "fchmod"):   # os.fchmod: not on Windows before Python 3.13
            with contextlib.suppress(OSError):   # a mount that refuses chmod (FUSE, SMB): the default bits
                os.fchmod(fd, stat.S_IMODE(found.st_mode) & 0o777)   # 0640 stays 0640; no setuid/setgid carried
        with os.fdopen(fd, "wb") as file:
            yield file
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    if regular and found.st_nlink > 1:
        log.warning("%s had %d other name(s) (hard links), which keep the earlier content: it was replaced, not "
                    "written through (a snapshot or a cache holding that name must not change). Link it with a "
                    "symbolic link (ln -s) for a name that follows each new version", path, found.st_nlink - 1)
    _remove_left_behind(path)


def _host() -> str:
    """This host, and this boot of it, in 8 hex digits: a pid in a hidden file's name is this host's process, or
    was, only where they match (a folder shared with other machines; pids start anew at a reboot)."""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        boot = ""
    return hashlib.sha256(f"{socket.gethostname()}\0{boot}".encode()).hexdigest()[:8]


def _remove_left_behind(path: Path) -> None:
    """Remove the hidden files that writers of `path` killed outright left beside it: one of this host's and boot's
    whose process no longer runs, untouched for a minute; any other (another machine's, an earlier boot's, an
    earlier version's `.<name>.part` and `.<name>.<pid>-<random>.part`) untouched for `LEFT_BEHIND_AFTER_S`.
    A writer running now, here or on a machine sharing the folder, never loses its file: its process runs, or
    it was touched recently (a figure or table is written in seconds). The minute covers a writer in another pid
    namespace of this host (a container sharing its name), whose pid reads as no process here. Never raises."""
    own = re.compile(rf"\.{re.escape(path.name)}\.([0-9a-f]{{8}})-(\d+)-[0-9a-f]{{6}}\.part")
    earlier = re.compile(rf"\.{re.escape(path.name)}(?:\.\d+-[0-9a-f]{{6}})?\.part")
    host, now = _host(), time.time()
    try:
        names = [entry.name for entry in os.scandir(path.parent) if entry.name.startswith(f".{path.name}.")]
    except OSError:
        return
    for name in names:
        mine, theirs = own.fullmatch(name), earlier.fullmatch(name)
        if not (mine or theirs):
            continue
        left = path.parent / name
        try:
            age = now - os.lstat(left).st_mtime
            gone = (mine is not None and mine.group(1) == host and age > 60 and not _runs(int(mine.group(2))))
            if gone or age > LEFT_BEHIND_AFTER_S:
                os.unlink(left)
                log.debug("removed %s, left by a writer of %s killed outright", left, path.name)
        except OSError:
            continue


def _runs(pid: int) -> bool:
    """Whether a process `pid` runs on this host (one of another user's too)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:   # EPERM: another user's
        return True
    return True


def write_whole(path: str | os.PathLike, content: str | bytes) -> None:
    """Write `content` (text as UTF-8) to `path` by `replacing` it: never read half written."""
    with replacing(path) as file:
        file.write(content.encode("utf-8") if isinstance(content, str) else content)
