"""Files sweeps writes for people to read (figures, tables) replaced whole, never read half written.

`sweeps plot X` twice at once, or `sweeps plot` while a sweep draws its report into the same folder, wrote the
same files in place: a reader (a LaTeX build, an image viewer, the other writer's MLflow upload) could read one
half written. Each is written as a hidden file beside it, which then replaces it in one step (os.replace): a
reader opens the earlier file or the new one, whole. Two writers at once: the last to finish is what stays.

The file replaced keeps what a person set on it: its permission bits (a table made group-readable stays so),
the file a symbolic link leads to (the link stays), and the other names of a file with hard links (written
through, see `replacing`). A writer killed outright (SIGKILL, a power cut) leaves its hidden file behind; the
next write of the same file removes those whose writer is provably gone (`_remove_left_behind`).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import secrets
import shutil
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
    `path`'s own permission bits. A link (`-o paper/tables/t.tex` linked into a paper's repository) is kept: the
    file it leads to is replaced. A file with other names (hard links: `ln figures/X/bars.pdf paper/`) is
    written through: once written whole beside it, the content is copied into that very file, so that every
    name reads the new one, as when written in place (a reader at that moment may read it half written; a
    replace would leave the other names the earlier content, silently). Where that file cannot be written (no
    write permission on it), it is replaced, with a warning that its other names keep the earlier content; a
    write through that fails part way (a full disk) leaves it half written, as a write in place did."""
    path = Path(os.path.realpath(path)) if os.path.islink(path) else Path(path)
    try:
        found = os.stat(path)
    except OSError:
        found = None
    temporary = path.parent / f".{path.name}.{_host()}-{os.getpid()}-{secrets.token_hex(3)}.part"
    fd = os.open(temporary, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        linked = found is not None and stat.S_ISREG(found.st_mode) and found.st_nlink > 1
        if found is not None and stat.S_ISREG(found.st_mode):
            os.fchmod(fd, stat.S_IMODE(found.st_mode))   # as the file replaced: 0640 stays 0640
        with os.fdopen(fd, "w+b") as file:
            yield file
            through = linked and _written_through(file, path, found)
        if through:
            os.unlink(temporary)
        else:
            os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    _remove_left_behind(path)


def _written_through(file: BinaryIO, path: Path, found: os.stat_result) -> bool:
    """Copy what `file` holds into the file `path` names, which has other names (hard links), in place; False,
    with a warning, where it cannot be opened to write (the caller replaces it, and its other names keep the
    earlier content) or it is no longer the file `found` (replaced meanwhile: a replace then loses nothing)."""
    try:
        target = os.open(path, os.O_WRONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError as exc:
        log.warning("%s has %d other name(s) (hard links), which keep the earlier content: it cannot be written "
                    "through (%s), so it is replaced", path, found.st_nlink - 1, exc.strerror or exc)
        return False
    with os.fdopen(target, "wb") as into:
        held = os.fstat(into.fileno())
        if (held.st_dev, held.st_ino) != (found.st_dev, found.st_ino):
            return False
        file.flush()
        file.seek(0)
        shutil.copyfileobj(file, into)   # over the earlier content, then cut to length: never an empty file meanwhile
        into.truncate()
    return True


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
