"""Files sweeps writes for people to read (figures, tables) replaced whole, never read half written.

`sweeps plot X` twice at once, or `sweeps plot` while a sweep draws its report into the same folder, wrote the
same files in place: a reader (a LaTeX build, an image viewer, the other writer's MLflow upload) could read one
half written. Each is written as a hidden file beside it, which then replaces it in one step (os.replace): a
reader opens the earlier file or the new one, whole. Two writers at once: the last to finish is what stays.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path
from typing import BinaryIO, Iterator


@contextlib.contextmanager
def replacing(path: str | os.PathLike) -> Iterator[BinaryIO]:
    """A binary file to write `path` anew in: it replaces `path` as the block ends, and is removed where the block
    raises (`path` is then as it was). Made with the permissions a file written in place gets (0666 less the
    umask), in the same folder (os.replace does not cross file systems); `.<name>.<pid>-<random>.part`, which a
    writer killed outright leaves behind. A link (`-o paper/tables/t.tex` linked into a paper's repository) is
    kept: the file it leads to is replaced."""
    path = Path(os.path.realpath(path)) if os.path.islink(path) else Path(path)
    temporary = path.parent / f".{path.name}.{os.getpid()}-{secrets.token_hex(3)}.part"
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as file:
            yield file
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


def write_whole(path: str | os.PathLike, content: str | bytes) -> None:
    """Write `content` (text as UTF-8) to `path` by `replacing` it: never read half written."""
    with replacing(path) as file:
        file.write(content.encode("utf-8") if isinstance(content, str) else content)
