"""The data layer's shared vocabulary: decoded splits, the source interface, decoding, fingerprints.

A data *source* (one per data set, registered in `DATASETS`) turns a `DataConfig` into a `Layout`
without decoding any image: it finds the label files, parses them fully and lists, per split, what
must be decoded and with which label. Everything that can be wrong with a data set's folder is found
there and raised as a `DataError` naming the file, the line and what would be right. Decoding then
fills preallocated uint8 arrays (`Source.decode`), and `fingerprint` identifies the result: the
data set, the loader version, the decode parameters, the label files' contents and the
(path, size, mtime) of every image, so that the decode-once cache (cache.py) can be trusted.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import glob
import hashlib
import json
import logging
import os
from concurrent.futures import ThreadPoolExecutor
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
from PIL import Image

from transfer_core.config import DataConfig
from transfer_core.registry import Registry


# A scan's notes (what a folder holds that is not read, files read twice or missing, how it is laid out) are
# logged as it runs. A caller that scanned the same data before and showed them scans again quietly (a sweep
# checks every layout before Ray starts, then decodes): said once a run, and still by a check or a decode alone.
# Context-local: decoding threads and other callers say theirs.
_QUIET_SCAN: ContextVar[bool] = ContextVar("quiet_scan", default=False)


class _ShownBefore(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not _QUIET_SCAN.get()


_SHOWN_BEFORE = _ShownBefore()


def scan_logger(name: str) -> logging.Logger:
    """The logger of a data module whose sources log while they scan: silent within `quiet_scan`."""
    logger = logging.getLogger(name)
    logger.addFilter(_SHOWN_BEFORE)   # once, however often the module is imported
    return logger


@contextlib.contextmanager
def quiet_scan(quiet: bool = True) -> Iterator[None]:
    token = _QUIET_SCAN.set(quiet)
    try:
        yield
    finally:
        _QUIET_SCAN.reset(token)


log = scan_logger(__name__)

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".jfif", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm")


class DataError(ValueError):
    """A data set's folder, label file or image is missing or wrong; the message says where and why."""


@dataclass(frozen=True)
class DecodedSplit:
    """One split, decoded: `images` uint8 (N, H, W, 3), `labels` int64 (N,)."""

    images: np.ndarray
    labels: np.ndarray

    def __post_init__(self) -> None:
        if self.images.dtype != np.uint8 or self.images.ndim != 4 or self.images.shape[-1] != 3:
            raise DataError(f"DecodedSplit.images must be uint8 (N, H, W, 3), got {self.images.dtype} "
                            f"{self.images.shape}")
        if self.labels.dtype != np.int64 or self.labels.ndim != 1:
            raise DataError(f"DecodedSplit.labels must be int64 (N,), got {self.labels.dtype} {self.labels.shape}")
        if len(self.images) != len(self.labels):
            raise DataError(f"DecodedSplit has {len(self.images)} images but {len(self.labels)} labels")

    def __len__(self) -> int:
        return len(self.labels)


@dataclass(frozen=True)
class DataSplits:
    """Train / val / test of one data set, plain numpy so that it travels cheaply (Ray object store)."""

    train: DecodedSplit
    val: DecodedSplit
    test: DecodedSplit
    class_names: tuple[str, ...]
    dataset: str
    fingerprint: str                    # hex: the source files + decode parameters (not the val carving)
    info: dict = field(default_factory=dict)  # counts, skipped files, val_source, synthetic, cache, ...
    # fingerprints an earlier version of this tool gave the same files that it decoded as this one does
    # (splits.fingerprints_alike; set by a sweep that continues runs recorded with them): the same data
    fingerprints_alike: tuple[str, ...] = ()

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


# --------------------------------------------------------------------------- layouts

@dataclass
class SplitPlan:
    """What one split holds before decoding: labels and where each image comes from.

    File sources fill `paths` (absolute) and optionally `boxes` (x, y, w, h crops); CSV pixel
    sources fill `rows` (their row indices in the CSV) instead. `origins[i]` says where item i was
    listed ("EmoLabel/x.txt line 12"), for error messages.
    """

    labels: np.ndarray
    origins: list[str]
    paths: list[Path] | None = None
    boxes: list[tuple[int, int, int, int]] | None = None
    rows: np.ndarray | None = None
    missing: int = 0    # listed images that do not exist, dropped by stat_images: counted against the cap with
                        # those that cannot be decoded, which together may be no more than a few of the split
    turned: list[Path] = field(default_factory=list)   # decoded images whose EXIF orientation was not applied

    def __len__(self) -> int:
        return len(self.labels)

    def select(self, keep: np.ndarray) -> "SplitPlan":
        """The items where `keep` (bool (N,)) is true."""
        idx = np.flatnonzero(keep)
        return SplitPlan(
            labels=self.labels[idx],
            origins=[self.origins[i] for i in idx],
            paths=None if self.paths is None else [self.paths[i] for i in idx],
            boxes=None if self.boxes is None else [self.boxes[i] for i in idx],
            rows=None if self.rows is None else self.rows[idx],
        )


@dataclass
class Layout:
    """A data set's folder, parsed: class names, per-split plans and what identifies the source."""

    dataset: str
    root: Path | None
    class_names: tuple[str, ...]
    splits: dict[str, SplitPlan]        # "train", "test" and, where the data set has one, "val"
    label_files: list[Path] = field(default_factory=list)  # hashed by content
    params: dict[str, Any] = field(default_factory=dict)   # decode parameters that change the output
    info: dict[str, Any] = field(default_factory=dict)     # counts of dropped rows, layout variant, ...
    val_source: str | None = None       # e.g. "official PublicTest"; None: carve val from train
    label_digest: str = ""              # extra label content digest a source computed while parsing


# Layout.params' key of data.exif_orientation where it is "applied" (only there: a layout read as stored keeps the
# fingerprint it had before the key was, and with it its recorded runs and its cached decode; one applied is decoded
# into a cache entry of its own). Set by splits._prepare for layouts of image files.
EXIF_PARAM = "exif_orientation"


class Source:
    """A data set loader. Subclasses are registered in `DATASETS` under their `name`."""

    name: str = ""
    version: int = 1                    # bump when decoding changes: it is part of the fingerprint
    skip_bad_images: bool = False       # AffectNet: skip (and count) unreadable or missing images

    def class_names(self, cfg: DataConfig) -> tuple[str, ...]:
        raise NotImplementedError

    def scan(self, cfg: DataConfig) -> Layout:
        """Every check that needs no image decoding; raises DataError."""
        raise NotImplementedError

    def earlier_params(self, layout: Layout) -> list[dict[str, Any]]:
        """The decode parameters (`Layout.params`) earlier versions fingerprinted `layout` with, where they decoded
        its files as this one does: runs recorded on those fingerprints trained on the same data (a parameter added
        to the fingerprint later must not make every recorded invocation read as changed data)."""
        return []

    def is_root(self, folder: Path) -> bool:
        """Whether `folder` holds this data set where `scan` looks (its label files, its split folders),
        checked cheaply: a root one level off is named in the error (splits._prepare)."""
        return False

    def decode(self, layout: Layout, image_size: int, outs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Decode every split into `outs[split]` (N, S, S, 3) uint8; return per split a bool mask of
        the items decoded (False: skipped, only where `skip_bad_images`)."""
        applied = layout.params.get(EXIF_PARAM) == "applied"
        return {split: decode_files(layout.splits[split], image_size, out, skip_bad=self.skip_bad_images, split=split,
                                    exif_applied=applied)
                for split, out in outs.items()}


DATASETS: Registry[type[Source]] = Registry("data set")


def get_source(cfg: DataConfig) -> Source:
    return DATASETS.get(cfg.dataset)()


# --------------------------------------------------------------------------- checks and helpers

def require_root(cfg: DataConfig) -> Path:
    """The data set's folder, which must exist."""
    if not cfg.root:
        raise DataError(f"data.root is required for data.dataset={cfg.dataset!r}")
    root = Path(cfg.root).expanduser()
    if not root.is_dir():
        raise DataError(f"data.root {str(root)!r} does not exist or is not a folder: expected the "
                        f"{cfg.dataset} folder in its official layout")
    return root


def first_existing(candidates: Sequence[Path]) -> Path | None:
    for path in candidates:
        if path.exists():
            return path
    return None


def counted(n: int, noun: str, plural: str | None = None) -> str:
    """A count with its noun as it reads at that count: '1 image', '2 images' ("1 images" read as a slip)."""
    return f"{n} {noun if n == 1 else plural or noun + 's'}"


def relative(path: Path, root: Path | None) -> str:
    """`path` relative to `root` where possible (short error messages, stable fingerprints)."""
    if root is not None:
        try:
            return path.relative_to(root).as_posix()
        except ValueError:
            pass
    return str(path)


@contextlib.contextmanager
def csv_rows(path: Path) -> Iterator:
    """A CSV file's rows (UTF-8, a BOM allowed); one saved in another encoding is a DataError naming it."""
    with open(path, newline="", encoding="utf-8-sig") as f:
        try:
            yield csv.reader(f)
        except UnicodeDecodeError as err:
            raise DataError(f"{path}: not UTF-8 text ({err}): expected a CSV file saved as UTF-8 "
                            "(as the data set ships it)") from None


class BlankLines:
    """The whitespace-only lines of a CSV file read row by row (blank lines at the end of a file edited by hand are
    common): `skip(row, line)` says whether a row is one (skipped: nothing to read in it), counting it; `say` warns
    once where any lies before the first data row or between data rows (a row deleted by hand? the rows around it
    are read as the data rows they are), each said as where it lies. A row with a comma in it is no blank line: it
    is read, and an error where malformed. A reader that finds a header among the rows says so (`header_row`):
    blank lines after it lie before the first data row."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.lines: list[int] = []       # every blank line
        self.leading: list[int] = []     # those before the first data row (after a header, if any)
        self.inside: list[int] = []      # those between data rows
        self._pending: list[int] = []
        self._rows = 0                   # data rows read so far

    def skip(self, row: list[str], lineno: int) -> bool:
        if not row or (len(row) == 1 and not row[0].strip()):
            self.lines.append(lineno)
            self._pending.append(lineno)
            return True
        (self.inside if self._rows else self.leading).extend(self._pending)
        self._pending.clear()
        self._rows += 1
        return False

    def header_row(self) -> None:
        """The row `skip` last let through is the file's header, no data row."""
        self._rows -= 1

    def say(self, logger: logging.Logger) -> None:
        said = len(self.leading) + len(self.inside)
        if not said:
            return
        where = []
        if self.leading:
            where.append(f"before the first data row (first: line {self.leading[0]})")
        if self.inside:
            where.append(f"between data rows (first: line {self.inside[0]})")
        if len(where) == 2:   # "1 whitespace-only line before the first data row (...) and 2 between data rows"
            text = (f"{counted(len(self.leading), 'whitespace-only line')} {where[0]} and {len(self.inside)} "
                    f"{where[1]}")
        else:
            text = f"{counted(said, 'whitespace-only line')} {where[0]}"
        trailing = len(self.lines) - said
        logger.warning("%s: %s %s skipped%s: the data rows are read as if %s not there", self.path, text,
                       "is" if said == 1 else "are", f" (and {trailing} at the end)" if trailing else "",
                       "it were" if said == 1 else "they were")


def read_text(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as err:
        raise DataError(f"{path}: not UTF-8 text ({err}): expected a text label file") from None


def class_counts(labels: np.ndarray, num_classes: int) -> list[int]:
    return np.bincount(labels, minlength=num_classes).astype(int).tolist()


def images_not_listed(folder: Path, listed: set[str], depth: int = 0) -> list[str]:
    """The image files in `folder` (and its sub-folders, `depth` levels down) that `listed` (paths relative to
    `folder`, posix) does not hold, relative to it, sorted. One os.scandir per folder, names only (no stat of a
    file): AffectNet's ~420,000 images are listed in about a second. A folder that cannot be read is passed over.
    A file listed in another case (`A.JPG` listed, `a.jpg` found) is listed where the listed name opens it: on a
    case-insensitive file system (macOS's, Windows') it is read under that name, and was warned of as unread."""
    found: list[str] = []
    folded: dict[str, str] | None = None
    stack = [(folder, "", depth)]
    while stack:
        where, prefix, deeper = stack.pop()
        try:
            entries = os.scandir(where)
        except OSError:
            continue
        with entries:
            for entry in entries:
                if entry.name.startswith("."):
                    continue
                rel = prefix + entry.name
                if deeper and entry.is_dir():
                    stack.append((Path(entry.path), rel + "/", deeper - 1))
                elif os.path.splitext(entry.name)[1].lower() in IMAGE_EXTENSIONS and rel not in listed:
                    if folded is None:
                        folded = {name.casefold(): name for name in listed}
                    spelled = folded.get(rel.casefold())
                    if spelled is None or not _same_file(folder / spelled, entry.path):
                        found.append(rel)
    return sorted(found)


def _same_file(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def listed_depth(listed: set[str]) -> int:
    """How many folders deep the listed paths go (0: file names only), to look for unlisted images as deep."""
    return max((rel.count("/") for rel in listed), default=0)


def say_not_listed(dataset: str, root: Path, unlisted: list[Path], info: dict[str, Any], logger: logging.Logger,
                   lists: str) -> None:
    """Warn once of the image files of a data set's image folders that no label file lists (not read: a label file
    older than the images, not regenerated?), with their count and a few names; counted in info["not_listed"]."""
    if not unlisted:
        return
    shown = ", ".join(relative(p, root) for p in unlisted[:3]) + (", ..." if len(unlisted) > 3 else "")
    one = len(unlisted) == 1
    logger.warning("%s: %s in its image folders %s listed in no label file (%s) and %s not read (%s): a label file "
                   "older than the images? Regenerate it to read %s (a list of a subset, on purpose: nothing to do)", dataset, counted(len(unlisted), "image file"),
                   "is" if one else "are", lists, "is" if one else "are", shown, "it" if one else "them")
    info["not_listed"] = len(unlisted)
    info["not_listed_files"] = [relative(p, root) for p in unlisted[:20]]


# --------------------------------------------------------------------------- decoding

_BAD_IMAGE_ERRORS = (OSError, ValueError, SyntaxError, Image.DecompressionBombError)


class PixelRangeError(ValueError):
    """An image whose pixel values no 8-bit reading fits (a float image outside 0..1 and 0..255, NaN, ...):
    the message says what it holds and what would be read."""


# a float image whose values all lie in 0..1 (give or take a rounding error) is read as 0..1 data
_FLOAT_UNIT_SLACK = 1e-3


def to_rgb(im: Image.Image) -> Image.Image:
    """`im` as 8-bit RGB. PIL's own convert("RGB") clips 16-bit grayscale (modes "I;16*", and "I" as
    16-bit PGM and older Pillow open 16-bit PNG) at 255, which turns every such image white: scale it to
    8 bits first (an "I" image whose values all fit 0..255 is taken as 8-bit data). It truncates 32-bit float
    grayscale (mode "F", float TIFFs) to whole numbers, which turns one in 0..1 black: a float image whose
    values all lie in 0..1 is scaled to 0..255, one in 0..255 rounded, and any other (negative values, beyond
    255, NaN or infinite; an "I" image beyond 0..65535) is a PixelRangeError saying what would be read."""
    if im.mode == "F":
        values = np.asarray(im, dtype=np.float64)
        if values.size and not np.isfinite(values).all():
            raise PixelRangeError("a 32-bit float image with NaN or infinite pixel values: expected finite values "
                                  "in 0..1 or 0..255 (save it as an 8-bit image)")
        lo, hi = (float(values.min()), float(values.max())) if values.size else (0.0, 0.0)
        if lo < -_FLOAT_UNIT_SLACK or hi > 255 + _FLOAT_UNIT_SLACK:
            raise PixelRangeError(f"a 32-bit float image with pixel values from {lo:g} to {hi:g}: expected values in "
                                  "0..1 (scaled to 0..255) or 0..255 (save it as an 8-bit image, or rescale it to "
                                  "one of those ranges)")
        scale = 255.0 if hi <= 1 + _FLOAT_UNIT_SLACK else 1.0
        im = Image.fromarray(np.clip(np.rint(values * scale), 0, 255).astype(np.uint8), mode="L")
    elif im.mode.startswith("I;16") or im.mode == "I":
        values = np.asarray(im).astype(np.float64)
        if im.mode == "I" and values.size and (values.min() < 0 or values.max() > 65535):
            raise PixelRangeError(f"a 32-bit integer image with pixel values from {values.min():g} to "
                                  f"{values.max():g}: expected values in 0..255 or 0..65535 (8 or 16 bits; save it "
                                  "as an 8-bit image)")
        full = 65535.0 if im.mode.startswith("I;16") or (values.size and values.max() > 255) else 255.0
        im = Image.fromarray(np.clip(np.rint(values * (255.0 / full)), 0, 255).astype(np.uint8), mode="L")
    return im.convert("RGB")


EXIF_ORIENTATION = 0x0112
# EXIF orientation -> the transposition that shows the stored pixels as a viewer does (PIL's ImageOps.exif_transpose)
_EXIF_TRANSPOSE = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180,
                   4: Image.Transpose.FLIP_TOP_BOTTOM, 5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_270,
                   7: Image.Transpose.TRANSVERSE, 8: Image.Transpose.ROTATE_90}


def exif_orientation(im: Image.Image) -> int:
    """`im`'s EXIF orientation, 1 ('as stored') where it has none or an unreadable one."""
    try:
        value = im.getexif().get(EXIF_ORIENTATION, 1)
        return value if isinstance(value, int) else 1
    except Exception:  # noqa: BLE001  (a damaged EXIF block says nothing of pixels that decode)
        return 1


def exif_turned(im: Image.Image) -> bool:
    """Whether `im` carries an EXIF orientation other than 'as stored' (1): a viewer shows it turned or mirrored."""
    return exif_orientation(im) in _EXIF_TRANSPOSE


def decode_image(path: Path, image_size: int, box: tuple[int, int, int, int] | None = None,
                 turned: list[Path] | None = None, exif_applied: bool = False) -> np.ndarray:
    """One image file as uint8 (S, S, 3): RGB (grayscale repeated), cropped to box (x, y, w, h), resized.

    Pixels are read as stored, an EXIF orientation not applied, as torchvision's ImageFolder and the FER
    repositories' loaders read them (Face2Exp crops AffectNet's face boxes from them so): an image that carries
    one is appended to `turned`, for the warning that names such images. `exif_applied` (data.exif_orientation:
    applied) turns and mirrors it as its EXIF orientation says, as a viewer shows it; a box is cropped from the
    stored pixels first (where Face2Exp crops it), and the crop turned."""
    with Image.open(path) as im:
        orientation = exif_orientation(im)
        if turned is not None and not exif_applied and orientation in _EXIF_TRANSPOSE:
            turned.append(path)
        im = to_rgb(im)
        if box is not None:
            x, y, w, h = box
            if x >= im.width or y >= im.height or x + w <= 0 or y + h <= 0:   # else a black crop, trained on
                raise ValueError(f"its face box (x {x}, y {y}, width {w}, height {h}) lies wholly outside the "
                                 f"{im.width}x{im.height} image")
            im = im.crop((x, y, x + w, y + h))
        if exif_applied and orientation in _EXIF_TRANSPOSE:
            im = im.transpose(_EXIF_TRANSPOSE[orientation])
        if im.size != (image_size, image_size):
            im = im.resize((image_size, image_size), Image.Resampling.BILINEAR)
        return np.asarray(im, dtype=np.uint8)


def decode_pil(image: Image.Image, image_size: int) -> np.ndarray:
    """A PIL image (any mode) as uint8 (S, S, 3), by the same path as `decode_image`."""
    image = to_rgb(image)
    if image.size != (image_size, image_size):
        image = image.resize((image_size, image_size), Image.Resampling.BILINEAR)
    return np.asarray(image, dtype=np.uint8)


_CHUNK = 256                            # images per decoding task


def _workers() -> int:
    return max(1, min(8, os.cpu_count() or 1))


def decode_files(plan: SplitPlan, image_size: int, out: np.ndarray, *, skip_bad: bool, split: str = "",
                 exif_applied: bool = False) -> np.ndarray:
    """Decode `plan.paths` into `out` with a thread pool (PIL releases the GIL while decoding); `exif_applied`: as
    decode_image's.

    An unreadable image is a DataError naming the file and where it was listed, unless `skip_bad`,
    in which case it is logged and its mask entry is False: up to MAX_MISSING_FRACTION of the split (a DataError
    beyond, as for missing images).
    """
    assert plan.paths is not None
    n = len(plan)
    ok = np.ones(n, dtype=bool)
    turned: list[Path] = []

    def one(i: int) -> None:
        box = plan.boxes[i] if plan.boxes is not None else None
        try:
            out[i] = decode_image(plan.paths[i], image_size, box, turned, exif_applied)
        except _BAD_IMAGE_ERRORS as err:
            if not skip_bad and isinstance(err, PixelRangeError):   # read, but its values say nothing of 8 bits
                raise DataError(f"image {plan.paths[i]} (listed in {plan.origins[i]}) is {err}") from None
            if not skip_bad:
                raise DataError(f"cannot decode image {plan.paths[i]} (listed in {plan.origins[i]}): "
                                f"{err}; expected a readable image file (JPEG/PNG)") from None
            log.warning("skipping unreadable image %s (listed in %s): %s", plan.paths[i], plan.origins[i], err)
            ok[i] = False

    def chunk(start: int) -> int:
        for i in range(start, min(start + _CHUNK, n)):
            one(i)
        return min(start + _CHUNK, n) - start

    starts = range(0, n, _CHUNK)
    if len(starts) <= 1:
        for start in starts:
            chunk(start)
    else:
        pool = ThreadPoolExecutor(max_workers=_workers())
        try:
            done, step = 0, max(n // 10, 1)
            for count in pool.map(chunk, starts):
                if (done + count) // step > done // step:
                    log.info("decoded %d / %d images", done + count, n)
                done += count
        finally:
            pool.shutdown(wait=True, cancel_futures=True)    # on a DataError, do not decode the rest
    ok = _few_unreadable(plan, ok, split)
    plan.turned = sorted(turned)
    return ok


def _few_unreadable(plan: SplitPlan, ok: np.ndarray, split: str) -> np.ndarray:
    """`ok`, where the images skipped as unreadable are, with those skipped as missing (stat_images, which
    refused more than a few alone), a few of the split's listed ones; else the DataError a split with as many
    missing images gets: more is a download gone wrong (error pages, LFS pointers, empty files), and a split
    that no longer compares."""
    bad = np.flatnonzero(~ok)
    listed = len(plan) + plan.missing
    if len(bad) + plan.missing > MAX_MISSING_FRACTION * listed:
        first = int(bad[0])
        which = f"{split} images" if split else "images"
        count = (f"{len(bad)} of the {listed} listed {which} cannot be decoded and {plan.missing} "
                 f"{'does' if plan.missing == 1 else 'do'} not exist "
                 f"({100 * (len(bad) + plan.missing) / listed:.1f} % skipped)" if plan.missing else
                 f"{len(bad)} of the {listed} listed {which} ({100 * len(bad) / listed:.1f} %) cannot be decoded")
        raise DataError(f"{count} (first: {plan.paths[first]}, listed in {plan.origins[first]}): a few "
                        f"unreadable files (up to {100 * MAX_MISSING_FRACTION:g} % of a split"
                        f"{', missing ones included' if plan.missing else ''}) are skipped, more would change the data "
                        "set its numbers are compared on. Are they whole image files (not empty, not HTML error pages "
                        "or Git LFS pointers)?")
    return ok


# --------------------------------------------------------------------------- fingerprints

# the most of a split's listed images `skip_missing` skips: AffectNet lacks a handful of its ~290,000
# (datasets.md); more is an archive not wholly extracted, and a test set that no longer compares
MAX_MISSING_FRACTION = 0.01


def _namesake(path: Path) -> Path | None:
    """An image beside a missing one with its name and another image extension (or its extension's case)."""
    try:
        return next((p for p in sorted(path.parent.glob(glob.escape(path.stem) + ".*"))
                     if p.name != path.name and p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file()), None)
    except OSError:
        return None


def _namesake_hint(path: Path) -> str:
    namesake = _namesake(path)
    return (f", but {namesake.name} does: expected the images under the names the label file gives (rename or "
            f"convert them to {path.suffix})") if namesake is not None else ""


def _do(n: int) -> str:
    return "does" if n == 1 else "do"


def _nor_any(n: int, what: str) -> str:
    """', nor does any of the 5 listed images' after one that does not exist; of one listed, it is the only one."""
    return f", the only listed {what}" if n == 1 else f", nor does any of the {n} listed {what}s"


def _them(n: int) -> str:
    return "it" if n == 1 else "them"


def _are_they(n: int) -> str:
    return "is it" if n == 1 else "are they"


def stat_images(layout: Layout, skip_missing: bool) -> str:
    """Digest of (relative path, size, mtime_ns) of every image of every split.

    A missing image is a DataError naming the first, where it was listed, and how many more are missing;
    with `skip_missing` it is logged, counted in layout.info["missing"] and removed from its split, up
    to MAX_MISSING_FRACTION of a split's listed images (a DataError beyond).
    """
    h = hashlib.sha256()
    missing: list[str] = []
    absent: list[tuple[Path, str]] = []   # without skip_missing: named in the error, with how many
    listed = 0
    for split in sorted(layout.splits):
        plan = layout.splits[split]
        if plan.paths is None:
            continue
        listed += len(plan)
        keep = np.ones(len(plan), dtype=bool)
        for i, path in enumerate(plan.paths):
            try:
                st = os.stat(path)
            except OSError:
                if not skip_missing:
                    absent.append((path, plan.origins[i]))
                    continue
                keep[i] = False
                missing.append(relative(path, layout.root))
                continue
            h.update(f"{split}\0{relative(path, layout.root)}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
        if len(plan) and not keep.any() and (hint := _namesake_hint(plan.paths[0])):
            raise DataError(f"image {plan.paths[0]} (listed in {plan.origins[0]}) does not exist"
                            f"{_nor_any(len(plan), f'{split} image')}{hint}")
        if len(plan) and not keep.any():     # skipping is for a few bad files, not a wrong folder
            raise DataError(f"image {plan.paths[0]} (listed in {plan.origins[0]}) does not exist"
                            f"{_nor_any(len(plan), f'{split} image')}: expected {_them(len(plan))} under {layout.root} "
                            f"(a few missing files are skipped, not a whole split); {_are_they(len(plan))} one folder "
                            "deeper or shallower than the label file says?")
        gone = int((~keep).sum())
        if gone > MAX_MISSING_FRACTION * len(plan):
            first = next(i for i in range(len(plan)) if not keep[i])
            hint = _namesake_hint(plan.paths[first])
            if hint:
                raise DataError(f"{gone} of the {len(plan)} listed {split} images {_do(gone)} not exist: the first, "
                                f"{plan.paths[first]} (listed in {plan.origins[first]}), does not{hint}")
            raise DataError(f"{gone} of the {len(plan)} listed {split} images ({100 * gone / len(plan):.1f} %) "
                            f"{_do(gone)} not exist (first: {plan.paths[first]}, listed in {plan.origins[first]}): "
                            f"a few missing files (up to {100 * MAX_MISSING_FRACTION:g} % of a split) are skipped, "
                            "more would change the data set its numbers are compared on. Is the archive wholly "
                            "extracted under the folder given?")
        if not keep.all():
            layout.splits[split] = dataclasses.replace(plan.select(keep), missing=plan.missing + gone)
    if absent:
        (path, origin), more = absent[0], len(absent) - 1
        hint = _namesake_hint(path)
        if hint:   # the right folder, another extension (.JPG, .png): no folder to move
            scope = f", nor {_do(more)} {more} more of the {listed} listed" if more else ""
            raise DataError(f"image {path} (listed in {origin}) does not exist{scope}{hint}")
        if len(absent) == listed:
            raise DataError(f"image {path} (listed in {origin}) does not exist{_nor_any(listed, 'image')}: "
                            f"expected {_them(listed)} under {layout.root}; {_are_they(listed)} one folder deeper or "
                            "shallower than the label file says?")
        scope = f", nor {_do(more)} {more} more of the {listed} listed" if more else ""
        raise DataError(f"image {path} (listed in {origin}) does not exist{scope}: expected every image named in "
                        "the label file to be present")
    if missing:
        are = "is" if len(missing) == 1 else "are"
        log.warning("%s: %d of %d listed images (%.1f %%) %s missing and %s skipped (first: %s)", layout.dataset,
                    len(missing), listed, 100 * len(missing) / listed, are, are, ", ".join(missing[:5]))
        layout.info["missing"] = len(missing)
        layout.info["missing_files"] = missing[:20]
    return h.hexdigest()


def fingerprint(layout: Layout, images_digest: str, image_size: int, version: int) -> str:
    """sha256 over data set, loader version, decode params, label file contents and image stats."""
    h = hashlib.sha256()
    header = {"dataset": layout.dataset, "loader_version": version, "image_size": image_size,
              "params": layout.params}
    h.update(json.dumps(header, sort_keys=True, default=str).encode())
    for path in layout.label_files:
        h.update(f"\0label:{relative(path, layout.root)}\0".encode())
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    h.update(f"\0labels:{layout.label_digest}\0images:{images_digest}".encode())
    return h.hexdigest()
