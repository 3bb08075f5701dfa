"""Any data set as an image-folder tree (POSTER_V2 style, DAN's converted AffectNet, own data).

    <root>/train/<class>/*.{jpg,jpeg,jfif,png,bmp,gif,webp,tif,tiff,ppm,pgm}
    <root>/test/<class>/...
    <root>/val/<class>/...            optional; when present it is the validation split (also named
                                      valid/, validation/ or dev/)

Without test/, a tree of train/ and one validation-named folder is read as POSTER_V2's RAF-DB
(train/ + valid/) and DAN's converted AffectNet (train/ + val/) mean it: that folder is the test split
(those repositories evaluate on it), and validation is carved from train (data.val_fraction); a dev/ folder
is never taken for the test split (a tree of train/ and dev/ lacks its test/). Any other folder beside the
split folders (training/, eval/, unlabeled/, ...) is not read, and warned of, naming the names that are.

Split folders are read by these lower-case names; one in other letter case (Train/, Val/, and Dev/ where dev/
would be read) is an error naming the rename. Class names are the folder names of train/ (index = position),
ordered by number where every one is a whole number (0, 1, 2, ..., 10: folders named by codes 0..N keep them) and by
name otherwise. test/ (and val/) must hold the same class folders, and every class of train/ at least
one image. Hidden entries and archivers' folders (`__MACOSX`: names starting with "__") are ignored;
anything else a class folder holds that is not read (other files, folders inside it, broken links) is
warned of, by kind, and recorded in the layout's info ("left_out"). A file reached twice through symbolic
links is an error when from two splits or class folders (a test image trained on, an image with two labels),
and warned of and counted ("read_twice") when from one class folder (read twice).

Images are read as 8-bit RGB: grayscale repeated, 16-bit grayscale (PNG, TIFF, PGM) scaled to 8 bits, a 32-bit
float TIFF with values in 0..1 scaled to 0..255 and one in 0..255 rounded; a float TIFF with other values
(negative, beyond 255, NaN) is an error naming it. Pixels are read as stored; `data.exif_orientation: applied` turns
an image carrying an EXIF orientation as a viewer shows it (base.decode_image).
"""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import numpy as np
from PIL import Image

from transfer_core.config import DataConfig
from transfer_core.data.base import (DATASETS, IMAGE_EXTENSIONS, DataError, Layout, Source, SplitPlan, counted,
                                     relative, require_root, scan_logger)

log = scan_logger(__name__)

VAL_DIRS = ("val", "valid", "validation")   # the names the validation folder goes by; without test/, the test split
DEV_DIR = "dev"                             # the validation split where none of VAL_DIRS is (never the test split)

# How float and 32-bit integer TIFFs are decoded (base.to_rgb), part of the fingerprint of a tree that holds TIFF
# images alone: 2, a float one in 0..1 is scaled to 0..255 (PIL truncated it to black) and one no 8-bit reading
# fits is refused (was clipped). A tree without TIFFs keeps its fingerprint (its recorded runs, its cached decode);
# one with TIFFs is decoded again, as its cached decode of such images may be black. Runs recorded before the param
# was (their fingerprint without it) trained on the same data where no TIFF is a float one: integer TIFFs (8 and
# 16 bits; a 32-bit one beyond 16 bits, clipped before, is refused when decoded) decode as they did
# (ImageFolderSource.earlier_params), so continuing them is not taken for changed data.
TIFF_EXTENSIONS = (".tif", ".tiff")
TIFF_DECODING = 2


def _float_image(path: Path) -> bool:
    """Whether the image file opens as 32-bit float (PIL mode "F"), reading its header only. One that does not open
    is no float image: decoding it fails now as before, and that error names it."""
    try:
        with Image.open(path) as im:
            return im.mode == "F"
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        return False


def images_of_class_folder(folder: Path) -> tuple[list[Path], Counter[str]]:
    """The image files of a class folder, sorted, and what else it holds, by kind: an extension's files
    (".txt"; "" for none), "folder" (its images are not read) and "broken link"."""
    images, others = [], Counter()
    for p in folder.iterdir():
        if p.name.startswith("."):
            continue
        if p.is_dir():
            others["folder"] += 1
        elif not p.exists():
            others["broken link"] += 1
        elif p.suffix.lower() in IMAGE_EXTENSIONS:
            images.append(p)
        else:
            others[p.suffix.lower()] += 1
    return sorted(images), others


def _files_read_twice(root: Path, plans: dict[str, SplitPlan], names: tuple[str, ...]) -> list[Path]:
    """The images that are, through a symbolic link (of the file or of its class folder), a file listed before
    in the same class folder of the same split: read twice, weighted double (a class oversampled so, on
    purpose or not). One reached from another split or class folder is a DataError naming both: a test image
    trained on, or one image with two labels."""
    real_folders: dict[Path, str] = {}
    seen: dict[str, tuple[str, int, Path]] = {}
    twice = []
    for split, plan in plans.items():
        for path, label in zip(plan.paths, plan.labels.tolist()):
            if path.parent not in real_folders:
                real_folders[path.parent] = os.path.realpath(path.parent)
            real = os.path.realpath(path) if os.path.islink(path) else os.path.join(real_folders[path.parent],
                                                                                     path.name)
            first_split, first_label, first = seen.setdefault(real, (split, label, path))
            if first is path:
                continue
            if (first_split, first_label) == (split, label):
                twice.append(path)
                continue
            why = (f"one image would be in the {first_split} and the {split} split" if first_split != split else
                   f"one image would have two labels, {names[first_label]} and {names[label]}")
            raise DataError(f"image folder {root}: {relative(path, root)} and {relative(first, root)} are the same "
                            f"file ({real}, reached through a symbolic link): {why}; expected each image in one "
                            "split and one class folder")
    return twice


def kinds_described(counts: Counter) -> str:
    def one(kind: str, n: int) -> str:
        s = "" if n == 1 else "s"
        return (f"{n} {kind} file{s}" if kind.startswith(".") else f"{n} file{s} without an extension" if not kind
                else f"{n} {kind}{s}")

    return ", ".join(one(kind, n) for kind, n in sorted(counts.items()))


def _holding(others: Counter) -> str:
    return f" (it holds {kinds_described(others)}: none is read)" if others else ""


def _numbered(names: list[str]) -> bool:
    return bool(names) and all(n.isascii() and n.isdigit() for n in names)


def class_order(names: list[str]) -> list[str]:
    """Class folder names in class-index order: by number where every name is a whole number (0, 1, 2, ..., 10, as
    DAN's AffectNet trees and codes name them: label index = the folder's number where they run from 0), else by
    name. String order read 0..10 as 0, 1, 10, 2, ...: class 2 was folder 10 in tables and confusion matrices."""
    if _numbered(names):
        return sorted(names, key=lambda n: (int(n), n))
    return sorted(names)


def numbered_order_differs(names: tuple[str, ...]) -> bool:
    """Whether these class names are ordered by number, and that order is not the one by name (0..10; not 0..9): such
    a tree's label indices are not those its fingerprint had before numbers were ordered so (CLASS_ORDER_PARAM)."""
    return _numbered(list(names)) and list(names) != sorted(names)


# Layout.params' key where the class order by number is not the one by name: the label indices differ from those a
# decode cached before (string order) holds, so that decode is not served, and runs recorded on it read as other data
CLASS_ORDER_PARAM = "class_order"


def class_folders(split_dir: Path) -> list[str]:
    return class_order([p.name for p in split_dir.iterdir() if p.is_dir() and not p.name.startswith((".", "__"))])


def split_dirs(root: Path) -> dict[str, Path]:
    """train, test and the validation folder if there is one, by split name; without test/, the one
    validation-named folder is the test split (POSTER_V2's and DAN's trees). dev/ is the validation folder where
    no validation-named one is (beside one, it is not read), and never the test split."""
    vals = [root / name for name in VAL_DIRS if (root / name).is_dir()]
    if len(vals) > 1:
        names = ", ".join(f"{v.name}/" for v in vals)
        raise DataError(f"image folder {root} has {len(vals)} validation folders ({names}): expected at most one "
                        f"of {', '.join(f'{name}/' for name in VAL_DIRS)}")
    if not (root / "test").is_dir() and vals:
        return {"train": root / "train", "test": vals[0]}
    if not vals and (root / DEV_DIR).is_dir():
        vals = [root / DEV_DIR]
    return {"train": root / "train", **({"val": vals[0]} if vals else {}), "test": root / "test"}


def _check_split_case(root: Path) -> None:
    """A split folder named in other letter case (Train/, Test/, Val/; Dev/ where dev/ would be read, no validation
    folder beside it) is a DataError naming it: read by the lower-case name only (a case-sensitive file system's), it
    was reported missing (train/, test/) or, for a validation folder, left out (validation carved from train
    instead). Dev/ beside a validation folder is warned of as dev/ is there (not read either way)."""
    names = ("train", "test", *VAL_DIRS)
    try:
        folders = [p.name for p in root.iterdir() if p.is_dir()]
    except OSError:
        return
    dev_read = not any(name.lower() in VAL_DIRS for name in folders)
    read = (*names, DEV_DIR) if dev_read else names
    miscased = sorted(name for name in folders if name not in read and name.lower() in read
                      and not (root / name.lower()).is_dir())
    if miscased:
        renames = ", ".join(f"{n}/ to {n.lower()}/" for n in miscased)
        dev = (f", or {DEV_DIR}/ where none of those is" if any(n.lower() == DEV_DIR for n in miscased) else "")
        raise DataError(f"image folder {root} holds {', '.join(f'{n}/' for n in miscased)}: split folders are "
                        f"read by their lower-case names ({', '.join(f'{n}/' for n in names)}{dev}); rename {renames}")


def _folders_not_read(root: Path, folders: dict[str, Path]) -> list[str]:
    """The folders beside the split folders that no split reads (training/, eval/, unlabeled/): hidden entries and
    archivers' folders (`__MACOSX`) aside, each may be a split under a name this reader does not know."""
    read = {path.name for path in folders.values()}
    try:
        return sorted(p.name for p in root.iterdir()
                      if p.is_dir() and p.name not in read and not p.name.startswith((".", "__")))
    except OSError:
        return []


def _class_names(root: Path) -> tuple[str, ...]:
    _check_split_case(root)
    train = root / "train"
    if not train.is_dir():
        raise DataError(f"image folder {train} does not exist: expected {root}/train/<class>/<image> "
                        f"and {root}/test/<class>/<image>")
    names = class_folders(train)
    if len(names) < 2:
        raise DataError(f"image folder {train} has {counted(len(names), 'class folder')}: expected at least 2 "
                        "(one sub-folder per class)")
    return tuple(names)


@DATASETS.register("imagefolder")
class ImageFolderSource(Source):
    name = "imagefolder"
    version = 2                         # 2: 16-bit grayscale scaled to 8 bits (was clipped to white)

    def class_names(self, cfg: DataConfig) -> tuple[str, ...]:
        return _class_names(require_root(cfg))

    def earlier_params(self, layout: Layout) -> list[dict]:
        """Before TIFF decoding was fingerprinted (tiff_decoding), a tree of TIFFs was fingerprinted without it:
        where none of its TIFFs is a float one (whose decoding changed), its runs trained on what it decodes to
        now. Reads the TIFFs' headers: asked only of a fingerprint that differs from a run's."""
        if "tiff_decoding" not in layout.params:
            return []
        tiffs = (path for plan in layout.splits.values() for path in plan.paths or ()
                 if path.suffix.lower() in TIFF_EXTENSIONS)
        if any(_float_image(path) for path in tiffs):
            return []
        return [{k: v for k, v in layout.params.items() if k != "tiff_decoding"}]

    def is_root(self, folder: Path) -> bool:
        return (folder / "train").is_dir() and any((folder / name).is_dir() for name in ("test", *VAL_DIRS))

    def scan(self, cfg: DataConfig) -> Layout:
        root = require_root(cfg)
        names = _class_names(root)
        folders = split_dirs(root)
        if not folders["test"].is_dir():
            dev = (f" (its {DEV_DIR}/ is read as the validation split, not the test split)"
                   if "val" in folders else "")
            raise DataError(f"image folder {root / 'test'} does not exist{dev}: expected {root}/test/<class>/<image> "
                            f"with the class folders of train/ ({', '.join(names)}), or, as POSTER_V2 and DAN "
                            f"lay them out, a valid/ or val/ folder that is the test split")
        unread = _folders_not_read(root, folders)
        if unread:
            log.warning("image folder %s: %s not read: the split folders are read by their names, train/, test/ and "
                        "one validation folder (%s, or %s/ where none of those is); rename a folder meant as a "
                        "split", root, ", ".join(f"{name}/" for name in unread),
                        ", ".join(f"{name}/" for name in VAL_DIRS), DEV_DIR)
        if folders["test"].name != "test":
            log.info("image folder %s has no test/: %s/ is its test split (as POSTER_V2 and DAN use it), and "
                     "validation is carved from train/", root, folders["test"].name)
        plans, ignored = {}, {}
        for split, split_dir in folders.items():
            found = tuple(class_folders(split_dir))
            if found != names:
                extra = sorted(set(found) - set(names))
                lacking = sorted(set(names) - set(found))
                raise DataError(f"image folder {split_dir} has class folders that differ from train/: "
                                f"extra {extra}, missing {lacking}: expected exactly {', '.join(names)}")
            paths, labels = [], []
            left_out: Counter[str] = Counter()   # what a class folder holds that is not read, by kind
            for label, name in enumerate(names):
                files, others = images_of_class_folder(split_dir / name)
                left_out.update(others)
                if not files and split == "train":
                    raise DataError(f"image folder {split_dir / name} holds no images{_holding(others)}: every "
                                    f"class folder of train/ is a class the model learns; remove it (and its "
                                    f"namesakes in the other splits) or put its images in it")
                if not files:
                    log.warning("image folder %s holds no images%s", split_dir / name, _holding(others))
                paths.extend(files)
                labels.extend([label] * len(files))
            loose = images_of_class_folder(split_dir)[0]   # image files beside the class folders: they have no class
            if loose:
                one = len(loose) == 1
                log.warning("image folder %s: %s %s in it, outside every class folder (%s%s), and %s left out: an "
                            "image of class C is read from %s/C/", split_dir, counted(len(loose), "image file"),
                            "lies" if one else "lie", ", ".join(p.name for p in loose[:3]),
                            ", ..." if len(loose) > 3 else "", "is" if one else "are", split_dir.name)
            if left_out:
                log.warning("image folder %s: %s left out: an image is a file of its class folder (not of a "
                            "folder inside it) with one of the extensions %s", split_dir,
                            kinds_described(left_out), ", ".join(IMAGE_EXTENSIONS))
            if left_out or loose:
                ignored[split] = {**dict(left_out), **({"outside class folders": len(loose)} if loose else {})}
            if not paths:
                raise DataError(f"image folder {split_dir} holds no images: expected files with one of "
                                f"the extensions {', '.join(IMAGE_EXTENSIONS)} in its class folders")
            plans[split] = SplitPlan(labels=np.asarray(labels, dtype=np.int64), paths=paths,
                                     origins=[f"class folder {split_dir.name}/{names[k]}" for k in labels])
        twice = _files_read_twice(root, plans, names)
        if twice:
            log.warning("image folder %s: %s, through a symbolic link, a file %s class folder holds already, and %s "
                        "read twice (first: %s)", root, "1 image is" if len(twice) == 1 else f"{len(twice)} images are",
                        "its" if len(twice) == 1 else "their", "is" if len(twice) == 1 else "are",
                        relative(twice[0], root))
        tiffs = any(path.suffix.lower() in TIFF_EXTENSIONS for plan in plans.values() for path in plan.paths)
        return Layout(dataset=self.name, root=root, class_names=names, splits=plans,
                      params={**({"tiff_decoding": TIFF_DECODING} if tiffs else {}),
                              **({CLASS_ORDER_PARAM: "numeric"} if numbered_order_differs(names) else {})},
                      info={"layout": "image folders" if folders["test"].name == "test"
                            else f"image folders, {folders['test'].name}/ as the test split",
                            **({"left_out": ignored} if ignored else {}),
                            **({"read_twice": len(twice)} if twice else {}),
                            **({"folders_not_read": unread} if unread else {}),
                            **({} if folders["test"].name == "test"
                               else {"test_source": f"the {folders['test'].name}/ folder (no test/)"})},
                      val_source=f"{folders['val'].name}/ folder" if "val" in plans else None)
