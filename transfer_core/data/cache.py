"""The decode-once cache: decoded uint8 arrays on disk, in a folder named by the data's fingerprint.

    <cache root>/<dataset>-<image size>px-<fingerprint[:24]>/
        train_images.npy  train_labels.npy  test_images.npy  test_labels.npy  [val_*.npy]
        meta.json         (fingerprint, class names, counts, info; its modification time: the last load)

The cache root is cfg.cache_dir, else $TRANSFER_CACHE, else ~/.cache/transfer-sweeps. An entry is
decoded straight into memory-mapped .npy files inside a temporary sibling folder, which is renamed
into place (os.replace) only once complete, so a crash never leaves a half entry that a later run
would load; concurrent writers race harmlessly (the first rename wins). Later loads memory-map the
arrays (np.load(mmap_mode="r")) and decode nothing.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import shutil
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from transfer_core.config import DataConfig
from transfer_core.data.base import DataError

log = logging.getLogger(__name__)

ENV_VAR = "TRANSFER_CACHE"
DEFAULT_ROOT = "~/.cache/transfer-sweeps"
META = "meta.json"
STALE_TMP_SECONDS = 24 * 3600


def cache_root(cfg: DataConfig) -> Path:
    """cfg.cache_dir, else $TRANSFER_CACHE, else ~/.cache/transfer-sweeps."""
    return Path(cfg.cache_dir or os.environ.get(ENV_VAR) or DEFAULT_ROOT).expanduser()


def entry_dir(root: Path, dataset: str, image_size: int, fingerprint: str) -> Path:
    return root / f"{dataset}-{image_size}px-{fingerprint[:24]}"


@dataclass
class CacheEntry:
    folder: Path
    arrays: dict[str, tuple[np.ndarray, np.ndarray]]   # split -> (images (N,S,S,3) uint8 mmap, labels int64)
    meta: dict[str, Any]


def load(folder: Path, fingerprint: str) -> CacheEntry | None:
    """The entry in `folder` if it is complete and has this fingerprint, else None."""
    meta_path = folder / META
    if not meta_path.is_file():
        return None
    try:
        meta = json.loads(meta_path.read_text())
        if meta.get("fingerprint") != fingerprint:
            log.warning("cache entry %s has another fingerprint; ignoring it", folder)
            return None
        arrays = {}
        for split in meta["splits"]:
            images = np.load(folder / f"{split}_images.npy", mmap_mode="r")
            labels = np.load(folder / f"{split}_labels.npy")
            if len(images) != len(labels):
                raise ValueError(f"{split}: {len(images)} images, {len(labels)} labels")
            arrays[split] = (images, labels)
    except (OSError, ValueError, KeyError) as err:
        log.warning("cache entry %s is unreadable (%s); decoding again", folder, err)
        return None
    try:
        os.utime(meta_path)   # its last use, for `sweeps cache --unused-for`
    except OSError:           # a cache this user may read, not write
        pass
    return CacheEntry(folder=folder, arrays=arrays, meta=meta)


@dataclass(frozen=True)
class CachedData:
    """One entry of a cache, as `sweeps cache` lists it."""

    folder: Path
    dataset: str
    image_size: int | None
    root: str | None        # the folder it was decoded from (None: the synthetic set)
    created: str
    last_used: float        # seconds since the epoch: its last load (meta.json's modification time)
    size_bytes: int


def cached_data(root: Path) -> list[CachedData]:
    """Every complete entry under a cache root, the latest used first (not the temporary folder of a decode
    in progress); [] where the root does not exist."""
    entries = []
    for meta_path in sorted(Path(root).glob(f"*/{META}")):
        folder = meta_path.parent
        if folder.name.startswith("."):
            continue
        try:
            meta = json.loads(meta_path.read_text())
            # only what a decode wrote: `sweeps cache --cache-dir` pointed at another folder (a project, a data
            # set) must neither list nor `--clear` a folder that merely holds some meta.json of its own
            if not _is_entry(folder, meta):
                continue
            size = sum(p.stat().st_size for p in folder.iterdir() if p.is_file())
            entries.append(CachedData(folder, str(meta.get("dataset", "?")), meta.get("image_size"), meta.get("root"),
                                      str(meta.get("created", "")), meta_path.stat().st_mtime, size))
        except (OSError, ValueError):   # removed meanwhile, or not an entry
            continue
    return sorted(entries, key=lambda e: e.last_used, reverse=True)


def _is_entry(folder: Path, meta: Any) -> bool:
    """Whether `folder` with this parsed meta.json is a cache entry: named by `entry_dir` after its meta's
    data set, image size and fingerprint (an entry whose arrays were damaged since is still one, to remove)."""
    if not isinstance(meta, dict):
        return False
    dataset, size, fingerprint = (meta.get(k) for k in ("dataset", "image_size", "fingerprint"))
    return (isinstance(dataset, str) and isinstance(size, int) and isinstance(fingerprint, str)
            and len(fingerprint) >= 24 and entry_dir(folder.parent, dataset, size, fingerprint).name == folder.name)


def remove_cached(entry: CachedData) -> None:
    """Delete an entry: moved aside first, so a load never sees it half removed (a sweep that has it open
    keeps reading it: its arrays are memory-mapped); the next sweep that needs it decodes it again."""
    trash = entry.folder.parent / f".tmp-removed-{entry.folder.name}-{uuid.uuid4().hex[:8]}"
    os.replace(entry.folder, trash)
    shutil.rmtree(trash, ignore_errors=True)


def size_text(n: float) -> str:
    """A byte count as people read it: '512 B', '2.3 KiB', '11.0 GiB' (`sweeps cache` and the no-room error)."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024:
            return f"{n:.0f} B" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


def no_room(folder: Path, needed: int, detail: str) -> DataError:
    """The error for a cache folder without room for what is decoded into it."""
    try:
        free = f"{size_text(shutil.disk_usage(folder).free)} free"
    except OSError:
        free = "free space unknown"
    return DataError(f"no room for the decoded data in the cache folder {folder.parent}: it needs "
                     f"{size_text(needed)} ({detail}), {free} there: free space there, or decode elsewhere with "
                     f"--set data.cache_dir=PATH (or ${ENV_VAR}=PATH) on a disk with room")


def check_room(folder: Path, needed: int, detail: str) -> None:
    """DataError before decoding when the file system of `folder` has less than `needed` bytes free."""
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        return
    if needed > free:
        raise no_room(folder, needed, detail)


def _reserve(path: Path, nbytes: int, detail: str) -> None:
    """Give the (sparse) memory-mapped file at `path` its disk blocks now: written through the map on a full
    disk, a page the file system cannot store kills the process with SIGBUS, without a word; reserved, a
    full disk is an OSError here, which is a DataError naming the folder. A file system that cannot
    reserve (EOPNOTSUPP, EINVAL) is left as it was."""
    fallocate = getattr(os, "posix_fallocate", None)
    if fallocate is None:
        return
    fd = os.open(path, os.O_RDWR)
    try:
        fallocate(fd, 0, nbytes)
    except OSError as err:
        if err.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
            raise no_room(path.parent, nbytes, f"{detail}; {err.strerror}") from None
        if err.errno not in (errno.EOPNOTSUPP, errno.EINVAL):
            raise
    finally:
        os.close(fd)


def _open_memmap(path: Path, shape: tuple[int, ...], detail: str) -> np.ndarray:
    try:
        out = np.lib.format.open_memmap(path, mode="w+", dtype=np.uint8, shape=shape)
    except OSError as err:
        if err.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
            raise no_room(path.parent, int(np.prod(shape)), f"{detail}; {err.strerror}") from None
        raise
    _reserve(path, out.offset + out.nbytes, detail)
    return out


def allocate(folder: Path, split: str, n: int, image_size: int) -> np.ndarray:
    """A writable memory-mapped uint8 (n, S, S, 3) .npy for split's images inside `folder`, its disk space
    reserved (a DataError when the disk has not that much free)."""
    return _open_memmap(folder / f"{split}_images.npy", (n, image_size, image_size, 3),
                        f"{split}: {n} images at {image_size} px")


def compact(folder: Path, split: str, images: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """Rewrite split's images keeping only rows where `keep`; returns the new memmap."""
    path = folder / f"{split}_images.npy"
    tmp = folder / f"{split}_images.compact.npy"
    kept = np.flatnonzero(keep)
    out = _open_memmap(tmp, (len(kept), *images.shape[1:]), f"{split}: {len(kept)} images, compacted")
    for start in range(0, len(kept), 4096):
        out[start:start + 4096] = images[kept[start:start + 4096]]
    out.flush()
    del images
    os.replace(tmp, path)
    return out


def _fsync(path: Path) -> None:
    with open(path, "rb") as f:
        os.fsync(f.fileno())


def _clean_stale(root: Path) -> None:
    now = time.time()
    for tmp in root.glob(".tmp-*"):
        try:
            if now - tmp.stat().st_mtime > STALE_TMP_SECONDS:
                shutil.rmtree(tmp, ignore_errors=True)
        except OSError:
            pass


def build(folder: Path, fingerprint: str, fill: Callable[[Path], dict[str, Any]]) -> CacheEntry:
    """Create the entry atomically: `fill(tmp)` writes `<split>_images.npy` / `_labels.npy` into tmp
    and returns the meta dict (with "splits"); then tmp is renamed to `folder` and loaded."""
    root = folder.parent
    tmp = root / f".tmp-{folder.name}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        root.mkdir(parents=True, exist_ok=True)
        tmp.mkdir()
    except OSError as err:
        raise DataError(f"cannot write the decoded-data cache in {root} ({err}): expected a writable folder; "
                        f"set data.cache_dir or ${ENV_VAR}") from None
    _clean_stale(root)
    stale = folder.exists()
    try:
        meta = dict(fill(tmp))
        meta["fingerprint"] = fingerprint
        meta["created"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        (tmp / META).write_text(json.dumps(meta, indent=1, sort_keys=True, default=str))
        for path in tmp.iterdir():
            _fsync(path)
        if stale:                                    # an unreadable or foreign entry: move it aside
            trash = root / f".tmp-stale-{folder.name}-{uuid.uuid4().hex[:8]}"
            try:
                os.replace(folder, trash)
                shutil.rmtree(trash, ignore_errors=True)
            except OSError:
                pass
        try:
            os.replace(tmp, folder)
        except OSError:                              # another process finished first: keep theirs
            log.info("cache entry %s was written concurrently; using it", folder)
            shutil.rmtree(tmp, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    entry = load(folder, fingerprint)
    if entry is None:
        raise OSError(f"cache entry {folder} could not be read back after writing it")
    return entry
