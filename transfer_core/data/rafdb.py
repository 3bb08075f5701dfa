"""RAF-DB (basic, single-label): reference/datasets.md §1.

Layout: `<root>/EmoLabel/list_patition_label.txt` (upstream spelling; `list_partition_label.txt`
accepted too) with lines `train_00001.jpg 5`, images `<root>/Image/aligned/train_00001_aligned.jpg`;
the split comes from the name prefix. Also accepted: the TransFER/APViT lists
`EmoLabel/train.txt` + `EmoLabel/test.txt` whose names already end in `_aligned.jpg` (a list holding images of the
other split by RAF-DB's names, a custom split, is read as listed with a warning; the two lists swapped are an
error), and copies whose aligned images kept the partition file's names (`Image/aligned/train_00001.jpg`).
File labels 1..7 become 0..6 (0 Surprise ... 6 Neutral); APViT's mmcls remapping is not copied.
There is no official validation split: val is carved from train. Split or class sizes other than the official
partition's (datasets.md §1: a label file cut short or relabelled) are warned of, in either layout.
`data.rafdb_images: aligned_224` reads `Image/aligned_224/` instead (APViT's MTCNN realignment, same
file names), which reported accuracies differ by; the fingerprint and data.json record the set read.

Also read: RAF-DB as the class-folder copy Kaggle spreads (`raf-db-dataset/DATASET/`), given as the folder
that holds `train/1..7/` and `test/1..7/` (folder names are the file labels, so folder k is label k - 1:
the same class order, names and label map). Its images carry the official aligned names
(`train/5/train_00001_aligned.jpg`), which each split is checked against: an image of the other official
split is an error (a re-split tree is not RAF-DB's partition: read it with --data imagefolder=), one image
in two class folders too; names that are not RAF-DB's are warned of. Items are ordered by image number, as the
partition file lists them, so validation is carved from train exactly as for the official layout. Split
sizes other than the official 12,271 / 3,068 are warned of. Kaggle's label files (`train_labels.csv`,
`test_labels.csv`, header `image,label`, file labels 1..7), found in that folder or the one above it (Kaggle's
`raf-db-dataset/` beside `DATASET/`), are not read but checked against the class folders: an image one labels
otherwise than its folder is an error naming the file, line, image and both labels, and images listed but not in
the folders (or the reverse) are warned of, and so is a file of another header or not readable (not checked). A tree without test/ whose one validation-named
folder (valid/, val/) holds the test images (POSTER_V2's) reads it as the test split. A folder holding both
layouts is read as the official one, with a warning. The layout read is data.json's `layout`, and the tree
its own fingerprint (its class folders are in the hashed paths; the official layout's is unchanged).
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

import numpy as np
from PIL import Image

from transfer_core.config import DataConfig
from transfer_core.data.base import (DATASETS, BlankLines, DataError, Layout, Source, SplitPlan, counted,
                                     csv_rows, images_not_listed, read_text, relative, require_root, say_not_listed, scan_logger)

log = scan_logger(__name__)

CLASS_NAMES = ("Surprise", "Fear", "Disgust", "Happiness", "Sadness", "Anger", "Neutral")
PARTITION_FILES = ("EmoLabel/list_patition_label.txt", "EmoLabel/list_partition_label.txt")
LIST_FILES = ("EmoLabel/train.txt", "EmoLabel/test.txt")
IMAGE_DIR = "Image/aligned"   # of data.rafdb_images = aligned; each set is Image/<its name>

# the class-folder copy (Kaggle's): class folders named by the file labels, images by the official aligned names
FILE_LABELS = tuple(str(k) for k in range(1, len(CLASS_NAMES) + 1))
RAF_NAME = re.compile(r"(train|test)_(\d+)(_aligned)?")          # an image's stem: split, number
TREE_VAL_DIRS = ("valid", "val", "validation")                     # without test/: the test split (POSTER_V2)
# reference/datasets.md §1: images per file label 1..7 in the official partition (12,271 / 3,068)
OFFICIAL_COUNTS = {"train": (1290, 281, 717, 4772, 1982, 705, 2524), "test": (329, 74, 160, 1185, 478, 162, 680)}
# Kaggle's copy ships label files beside DATASET/ (header image,label; file labels 1..7), which its class folders are
# checked against where they are there (in the folder given or the one above it): they are not read otherwise
KAGGLE_CSVS = {"train": "train_labels.csv", "test": "test_labels.csv"}
KAGGLE_CSV_HEADER = ("image", "label")
COUNT_SLACK = 0.01            # a split this much off the official size is warned of (a few files: logged only)
ALIGNED_SIZE = (100, 100)     # the official aligned images' size


def aligned_name(name: str) -> str:
    """`train_00001.jpg` -> `train_00001_aligned.jpg`; names already aligned are kept."""
    stem = name.rsplit(".", 1)[0] if "." in name else name
    if stem.endswith("_aligned"):
        return name
    return stem + "_aligned.jpg"


def parse_label_lines(path: Path, root: Path,
                      split_from_prefix: str | None) -> list[tuple[str, str, int, int, str]]:
    """(split, image name, label 0..6, line number, file) of every non-blank line of a RAF-DB list.

    `split_from_prefix` None: the split is the name's prefix (partition file); else that split. Whitespace-only lines
    are skipped, and warned of once where any lies between entries (a line deleted by hand?), as FERPlus's CSVs are.
    """
    rel = path.relative_to(root).as_posix()
    entries = []
    blank = BlankLines(path)
    for lineno, line in enumerate(read_text(path).splitlines(), start=1):
        if blank.skip([line], lineno):
            continue
        fields = line.split()
        if len(fields) != 2:
            raise DataError(f"{path} line {lineno}: {line.strip()!r} is malformed: expected "
                            "'<image name> <label>' (two fields separated by a space)")
        name, text = fields
        try:
            label = int(text)
        except ValueError:
            label = -1
        if not 1 <= label <= 7:
            raise DataError(f"{path} line {lineno}: label {text!r} is unknown: expected an integer 1..7 "
                            "(1 Surprise, 2 Fear, 3 Disgust, 4 Happiness, 5 Sadness, 6 Anger, 7 Neutral)")
        if split_from_prefix is None:
            if name.startswith("train"):
                split = "train"
            elif name.startswith("test"):
                split = "test"
            else:
                raise DataError(f"{path} line {lineno}: image name {name!r} has no split prefix: expected "
                                "a name starting with 'train' or 'test' (e.g. train_00001.jpg)")
        else:
            split = split_from_prefix
        entries.append((split, name, label - 1, lineno, rel))
    blank.say(log)
    return entries


def _of_the_other_split(entries: list[tuple[str, str, int, int, str]]) -> list[tuple[int, str]]:
    """(line, name) of a list's entries whose RAF-DB name puts them in the other split than the list's."""
    out = []
    for split, name, _, lineno, _ in entries:
        match = RAF_NAME.fullmatch(name.rsplit(".", 1)[0])
        if match is not None and match.group(1) != split:
            out.append((lineno, name))
    return out


def _check_list_splits(lists: list[Path], root: Path, per_list: list[list[tuple[str, str, int, int, str]]]) -> dict:
    """The TransFER/APViT lists against RAF-DB's names: both holding only the other split's images (swapped: the
    model would train on the 3,068 test images and be tested on the 12,271 training ones) is a DataError naming
    the first; a list holding some (a custom split: a fold of the training images held out as test.txt, test
    images moved into train.txt) is read as listed, with a warning that it is not RAF-DB's partition, and counted
    (returned: split -> images of the other split). An image in both lists is refused by the caller (listed twice)."""
    others = [_of_the_other_split(entries) for entries in per_list]
    found = {}
    for path, entries, other in zip(lists, per_list, others):
        if not other:
            continue
        split = entries[0][0]
        lineno, name = other[0]
        where = (f"{path} line {lineno}: {name} is an image of RAF-DB's {'test' if split == 'train' else 'training'} "
                 f"split (its name says so), listed in {path.name} ({counted(len(other), 'such image')} of its "
                 f"{len(entries)})")
        if all(o and len(o) == len(e) for o, e in zip(others, per_list)):
            raise DataError(f"{where}: expected only {split}_* images in {relative(path, root)}, RAF-DB's official "
                            f"{split} split (are {LIST_FILES[0]} and {LIST_FILES[1]} swapped?)")
        log.warning("RAF-DB %s: read as listed, a split other than RAF-DB's official partition (its numbers do not "
                    "compare with those reported on RAF-DB)", where)
        found[split] = len(other)
    return found


def _names_unsuffixed(image_dir: Path, names: list[str]) -> bool:
    """Whether the aligned images lie under the partition file's own names (train_00001.jpg): no listed image
    has its `_aligned` file and some has its listed one. The official names are looked for first, so an
    official folder is answered at its first image."""
    if any((image_dir / aligned_name(name)).is_file() for name in names):
        return False
    return any((image_dir / name).is_file() for name in names)


def _holds_labels(folder: Path) -> bool:
    return any((folder / p).is_file() for p in PARTITION_FILES) or all((folder / p).is_file() for p in LIST_FILES)


# --------------------------------------------------------------------------- the class-folder copy

def _tree_test_dir(root: Path) -> Path | None:
    """test/, or without it the one validation-named folder (POSTER_V2's valid/ is RAF-DB's test split)."""
    if (root / "test").is_dir():
        return root / "test"
    vals = [root / name for name in TREE_VAL_DIRS if (root / name).is_dir()]
    if len(vals) > 1:
        raise DataError(f"RAF-DB class folders {root} have no test/ but {len(vals)} validation-named folders "
                        f"({', '.join(f'{v.name}/' for v in vals)}): expected test/1..7/ (RAF-DB's test split; "
                        "validation is carved from train/)")
    return vals[0] if vals else None


def _is_class_tree(folder: Path) -> bool:
    """Whether `folder` holds RAF-DB as class folders train/1..7/ beside test/ (or valid/), checked cheaply."""
    from transfer_core.data.imagefolder import class_folders

    try:
        return (folder / "train").is_dir() and tuple(class_folders(folder / "train")) == FILE_LABELS and (
            (folder / "test").is_dir() or any((folder / name).is_dir() for name in TREE_VAL_DIRS))
    except OSError:
        return False


RELABELLED = {"folders": "are images in other class folders than RAF-DB's partition file labels them?",
              "label file": "are images relabelled there (edited, or another version than RAF-DB's partition file)?"}


def _count_note(split: str, counts: list[int], read_from: str = "folders") -> tuple[str, bool] | None:
    """What a split's sizes say against the official partition's (reference/datasets.md §1), and whether it
    is worth a warning: a split more than COUNT_SLACK off in size (a subset, a re-split or another copy), or of
    the official size with other class sizes (images labelled otherwise than RAF-DB labels them: `read_from`, a
    tree's class folders or a label file, says how, RELABELLED)."""
    official = OFFICIAL_COUNTS[split]
    if tuple(counts) == official:
        return None
    total, expected = sum(counts), sum(official)
    classes = ", ".join(f"{CLASS_NAMES[k]} {n} (official {official[k]})" for k, n in enumerate(counts)
                        if n != official[k])
    if abs(total - expected) > COUNT_SLACK * expected:
        return (f"{total} {split} images where RAF-DB's official partition has {expected:,} ({classes}): a subset "
                "or another copy, whose numbers do not compare with those reported on RAF-DB", True)
    if total == expected:
        return (f"the official {expected:,} {split} images, but classes of other sizes ({classes}): "
                f"{RELABELLED[read_from]}", True)
    return f"{total} {split} images where RAF-DB's official partition has {expected:,} ({classes})", False


def _tree_image_size(path: Path) -> tuple[int, int] | None:
    try:
        with Image.open(path) as im:
            return im.size
    except Exception:  # noqa: BLE001  (an unreadable image is reported by decoding, naming it)
        return None


def _image_key(name: str) -> str:
    """An image's identity across a tree and a label file: RAF-DB's split and number (train_00001_aligned.jpg and
    train_00001.jpg are one image), else its file name."""
    file_name = name.replace("\\", "/").rsplit("/", 1)[-1]
    match = RAF_NAME.fullmatch(file_name.rsplit(".", 1)[0])
    return f"{match.group(1)}_{int(match.group(2))}" if match else file_name


def _few(names: list[str]) -> str:
    return ", ".join(names[:3]) + (", ..." if len(names) > 3 else "")


def _check_kaggle_csv(root: Path, split: str, folder: Path, plan: SplitPlan) -> None:
    """Kaggle's label file of `split` (train_labels.csv, test_labels.csv: in `root` or beside it), where there is one,
    against the class folders read: an image it labels otherwise than its folder is a DataError naming the file, the
    line, the image and both labels (one image, two labels: which is RAF-DB's is not told); images one lists and
    the other does not are warned of (a subset or another copy, as split sizes are). It is not read otherwise."""
    name = KAGGLE_CSVS[split]
    path = next((p for p in (root / name, root.parent / name) if p.is_file()), None)
    if path is None:
        return
    held = {_image_key(p.name): (label, p) for p, label in zip(plan.paths or (), plan.labels.tolist())}
    try:   # read only to check the folders: one that cannot be read is warned of, as one of another form
        with csv_rows(path) as reader:
            rows = list(reader)
    except (DataError, OSError, csv.Error) as exc:
        log.warning("RAF-DB class folders %s: %s cannot be read as Kaggle's label file (%s); the class folders are "
                    "not checked against it", root, path, exc)
        return
    header = tuple(c.strip().lower() for c in rows[0][:2]) if rows else ()
    if header != KAGGLE_CSV_HEADER:
        log.warning("RAF-DB class folders %s: %s begins %r: expected Kaggle's header '%s'; the class folders are not "
                    "checked against it", root, path, ",".join(rows[0]) if rows else "", ",".join(KAGGLE_CSV_HEADER))
        return
    listed: dict[str, str] = {}
    disagree: list[tuple[int, str, int, Path, int]] = []   # line, image, its label there, its file, its folder's label
    malformed: list[int] = []
    for lineno, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        image = row[0].strip()
        try:
            label = int(row[1])
        except (IndexError, ValueError):
            label = 0
        if not image or not 1 <= label <= len(CLASS_NAMES):
            malformed.append(lineno)
            continue
        key = _image_key(image)
        listed.setdefault(key, image)
        if key in held and held[key][0] != label - 1:
            disagree.append((lineno, image, label, held[key][1], held[key][0] + 1))
    if disagree:
        lineno, image, label, file, found = disagree[0]
        raise DataError(f"{path} line {lineno}: {image} is labelled {label} ({CLASS_NAMES[label - 1]}), but RAF-DB "
                        f"class folders {root} hold it in {relative(file.parent, root)}/ ({found}, "
                        f"{CLASS_NAMES[found - 1]}): expected each image in the class folder of its label "
                        f"({counted(len(disagree), 'image')} of {name} in another class folder than it labels). The "
                        f"class folders are what is read: if they were relabelled on purpose, move {name} out of "
                        f"{path.parent} (it is read only to check them)")
    if malformed:
        log.warning("RAF-DB class folders %s: %s has %s that %s not 'image,label' with a label 1..7 (first: line %d): "
                    "%s not checked", root, path, counted(len(malformed), "row"),
                    "is" if len(malformed) == 1 else "are", malformed[0], "it is" if len(malformed) == 1 else "they are")
    absent = [listed[k] for k in listed if k not in held]
    unlisted = [relative(held[k][1], root) for k in held if k not in listed]
    if absent or unlisted:
        parts = ([f"{path} lists {counted(len(absent), f'{split} image')} that {folder.name}/ does not hold "
                  f"({_few(absent)})"] if absent else []) + (
                 [f"{folder.name}/ holds {counted(len(unlisted), 'image')} that {name} does not list "
                  f"({_few(unlisted)})"] if unlisted else [])
        log.warning("RAF-DB class folders %s: %s: the class folders are read (a subset of Kaggle's copy, or images "
                    "added to it?)", root, "; ".join(parts))


def scan_class_tree(root: Path, cfg: DataConfig, dataset: str) -> Layout:
    """RAF-DB as class folders train/1..7/ and test/1..7/ (Kaggle's copy): the module docstring says how it is
    read. Raises DataError naming the folder and what was expected."""
    from transfer_core.data.imagefolder import class_folders, images_of_class_folder, kinds_described

    if cfg.rafdb_images != "aligned":
        raise DataError(f"data.rafdb_images={cfg.rafdb_images!r} chooses the official layout's Image/"
                        f"{cfg.rafdb_images}/, but {root} holds RAF-DB as class folders train/1..7/ and test/1..7/, "
                        "whose images are read as they are: leave data.rafdb_images at 'aligned', or give the "
                        "folder of the official layout that holds Image/aligned_224/")
    test_dir = _tree_test_dir(root)
    if test_dir is None:
        raise DataError(f"RAF-DB class folder {root / 'test'} does not exist: expected {root}/test/1..7/ (RAF-DB's "
                        f"test images, test_0001_aligned.jpg ...) beside {root}/train/1..7/")
    folders = {"train": root / "train", "test": test_dir}
    plans: dict[str, SplitPlan] = {}
    info: dict = {"layout": f"class folders train/1..7/ and {test_dir.name}/1..7/", "image_dir":
                  f"train/, {test_dir.name}/"}
    left_out: dict[str, dict] = {}
    unnamed: list[Path] = []
    for split, folder in folders.items():
        found = tuple(class_folders(folder))
        if found != FILE_LABELS:
            raise DataError(f"RAF-DB class folders of {folder} are {', '.join(found) or 'none'}: expected exactly "
                            f"{', '.join(FILE_LABELS)}, named by RAF-DB's file labels (1 Surprise, 2 Fear, 3 Disgust, "
                            f"4 Happiness, 5 Sadness, 6 Anger, 7 Neutral) as Kaggle's copy names them; a tree with "
                            f"other class folders is read with --data imagefolder={root} (its classes named by its "
                            "folders)")
        items: list[tuple[tuple, Path, int]] = []
        seen: dict[str, Path] = {}
        other_split: list[Path] = []
        others_here = {}
        for label, name in enumerate(FILE_LABELS):
            files, others = images_of_class_folder(folder / name)
            if others:
                others_here.update({k: others_here.get(k, 0) + v for k, v in others.items()})
            for path in files:
                match = RAF_NAME.fullmatch(path.stem)
                if match is None:
                    unnamed.append(path)
                    items.append(((1, 0, relative(path, root)), path, label))
                    continue
                if match.group(1) != split:
                    other_split.append(path)
                    continue
                key = f"{match.group(1)}_{int(match.group(2))}"
                if key in seen:
                    raise DataError(f"RAF-DB class folders {root}: {relative(path, root)} and "
                                    f"{relative(seen[key], root)} are the same RAF-DB image ({split} image "
                                    f"{int(match.group(2))}): expected each image once, in the class folder of its "
                                    "label")
                seen[key] = path
                items.append(((0, int(match.group(2)), path.name), path, label))
        if other_split:
            other = "test" if split == "train" else "training"
            raise DataError(f"RAF-DB class folder {folder} holds {counted(len(other_split), 'image')} of RAF-DB's "
                            f"{other} split (first: {relative(other_split[0], root)}): expected only {split}_* images "
                            f"in {folder.name}/, RAF-DB's official {split} split. A tree split otherwise is not "
                            f"RAF-DB's partition: read it with --data imagefolder={root} (its numbers do not compare "
                            "with those reported on RAF-DB)")
        loose = images_of_class_folder(folder)[0]
        if loose:
            log.warning("RAF-DB class folders %s: %s outside the class folders 1..7 (%s) and not read", folder,
                        counted(len(loose), "image"), ", ".join(p.name for p in loose[:3]))
            others_here["outside class folders"] = len(loose)
        if others_here:
            if set(others_here) - {"outside class folders"}:
                log.warning("RAF-DB class folders %s: %s left out (an image is a file of its class folder)", folder,
                            kinds_described({k: v for k, v in others_here.items() if k != "outside class folders"}))
            left_out[split] = others_here
        if not items:
            raise DataError(f"RAF-DB class folder {folder} holds no images: expected RAF-DB's {split} images in its "
                            "class folders 1..7")
        items.sort(key=lambda item: item[0])   # the partition file's order: validation is carved as from it
        labels = np.asarray([label for _, _, label in items], dtype=np.int64)
        plans[split] = SplitPlan(labels=labels, paths=[path for _, path, _ in items],
                                 origins=[f"class folder {folder.name}/{FILE_LABELS[label]}" for _, _, label in items])
        _check_kaggle_csv(root, split, folder, plans[split])
        note = _count_note(split, np.bincount(labels, minlength=len(CLASS_NAMES)).astype(int).tolist())
        if note is not None:
            text, warn = note
            (log.warning if warn else log.info)("RAF-DB class folders %s: %s", root, text)
            info.setdefault("differs_from_official", {})[split] = text
    if unnamed:
        log.warning("RAF-DB class folders %s: %s not named as RAF-DB's images are (train_00001_aligned.jpg, "
                    "test_0001_aligned.jpg; first: %s): %s split cannot be checked against RAF-DB's partition", root,
                    counted(len(unnamed), "image is", "images are"), relative(unnamed[0], root),
                    "its" if len(unnamed) == 1 else "their")
        info["not_named_as_rafdb"] = len(unnamed)
    unread = sorted(p.name for p in root.iterdir() if p.is_dir() and p not in folders.values()
                    and not p.name.startswith((".", "__")))
    if unread:
        log.warning("RAF-DB class folders %s: %s not read: the splits read are train/ and %s/ (RAF-DB has no "
                    "official validation split: validation is carved from train/, by data.val_fraction)", root,
                    ", ".join(f"{name}/" for name in unread), test_dir.name)
        info["folders_not_read"] = unread
    if test_dir.name != "test":
        log.info("RAF-DB class folders %s have no test/: %s/ is the test split (as POSTER_V2 names it)", root,
                 test_dir.name)
        info["test_source"] = f"the {test_dir.name}/ folder (no test/)"
    if left_out:
        info["left_out"] = left_out
    size = _tree_image_size(plans["train"].paths[0])
    if size is not None and size != ALIGNED_SIZE:
        log.warning("RAF-DB class folders %s: %s is %dx%d, not the %dx%d of RAF-DB's aligned images: a resized or "
                    "realigned copy (reported accuracies differ by the image set)", root,
                    relative(plans["train"].paths[0], root), *size, *ALIGNED_SIZE)
        info["image_size_found"] = f"{size[0]}x{size[1]}"
    return Layout(dataset=dataset, root=root, class_names=CLASS_NAMES, splits=plans,
                  params={"layout": "class folders"}, info=info)


@DATASETS.register("rafdb")
class RafDbSource(Source):
    name = "rafdb"
    version = 1

    def class_names(self, cfg: DataConfig) -> tuple[str, ...]:
        return CLASS_NAMES

    def is_root(self, folder: Path) -> bool:
        return _holds_labels(folder) or _is_class_tree(folder)

    def scan(self, cfg: DataConfig) -> Layout:
        root = require_root(cfg)
        if not _holds_labels(root) and (root / "train").is_dir():
            return scan_class_tree(root, cfg, self.name)
        layout = self._scan_official(root, cfg)
        if _is_class_tree(root):
            log.warning("RAF-DB: %s holds both the official layout (%s) and class folders train/1..7/ (Kaggle's "
                        "copy): reading the official layout; the class folders are not read (give them a folder of "
                        "their own to read them)", root, relative(layout.label_files[0], root))
            layout.info["not_read"] = "class folders train/1..7/ (the official layout is read)"
        return layout

    def _scan_official(self, root: Path, cfg: DataConfig) -> Layout:
        partition = next((root / p for p in PARTITION_FILES if (root / p).is_file()), None)
        lists = [root / p for p in LIST_FILES]
        other_split: dict[str, int] = {}
        if partition is not None:
            label_files = [partition]
            entries = parse_label_lines(partition, root, None)
            variant = "partition file"
        elif all(p.is_file() for p in lists):
            label_files = lists
            per_list = [parse_label_lines(lists[0], root, "train"), parse_label_lines(lists[1], root, "test")]
            other_split = _check_list_splits(lists, root, per_list)
            entries = per_list[0] + per_list[1]
            variant = "train.txt/test.txt lists"
        else:
            raise DataError(f"RAF-DB label file not found under {root}: expected {PARTITION_FILES[0]} "
                            f"(or {LIST_FILES[0]} and {LIST_FILES[1]}) in the 'basic' folder, or RAF-DB as class "
                            "folders train/1..7/ and test/1..7/ (Kaggle's copy: the folder that holds them)")
        images = f"Image/{cfg.rafdb_images}"
        image_dir = root / images
        if not image_dir.is_dir():
            others = [d.name for d in sorted((root / "Image").glob("aligned*")) if d.is_dir()]
            archive = image_dir.with_name(image_dir.name + ".zip")
            raise DataError(f"RAF-DB image folder {image_dir} does not exist: expected the aligned images "
                            f"as {images}/train_00001_aligned.jpg ..."
                            + (f" ({root / 'Image'} holds {', '.join(others)}: choose it with --set "
                               f"data.rafdb_images={others[0]})" if others else
                               f" ({archive} is there: unzip it into {root / 'Image'})" if archive.is_file() else
                               f" ({root / 'Image' / 'original'} holds the uncropped originals, which are not read)"
                               if (root / "Image" / "original").is_dir() else ""))
        # copies whose aligned images kept the original names (train_00001.jpg): read them as listed
        unsuffixed = partition is not None and _names_unsuffixed(image_dir, [name for _, name, *_ in entries])
        if unsuffixed:
            log.info("RAF-DB: %s holds the aligned images under the names the label file lists (no _aligned "
                     "suffix); reading those", image_dir)
        seen: dict[str, str] = {}
        per_split: dict[str, tuple[list, list, list]] = {"train": ([], [], []), "test": ([], [], [])}
        for split, name, label, lineno, rel in entries:
            where = f"{rel} line {lineno}"
            if name in seen:
                raise DataError(f"{root / rel} line {lineno}: image {name!r} is listed twice (first at "
                                f"{seen[name]}): expected each image once")
            seen[name] = where
            paths, labels, origins = per_split[split]
            paths.append(image_dir / (name if unsuffixed else aligned_name(name)))
            labels.append(label)
            origins.append(where)
        for split, (paths, _, _) in per_split.items():
            if not paths:
                files = " and ".join(str(p) for p in label_files)   # read together: "A / B" read as one path
                raise DataError(f"{files}: no {split} images listed: expected {split} entries "
                                f"(names starting with '{split}')")
        plans = {split: SplitPlan(labels=np.asarray(labels, dtype=np.int64), origins=origins, paths=paths)
                 for split, (paths, labels, origins) in per_split.items()}
        differs = {}
        for split, plan in plans.items():   # a label file cut short, or relabelled: as the class folders' sizes
            note = _count_note(split, np.bincount(plan.labels, minlength=len(CLASS_NAMES)).astype(int).tolist(),
                               "label file")
            if note is not None:
                text, warn = note
                (log.warning if warn else log.info)("RAF-DB %s: %s",
                                                    " and ".join(relative(p, root) for p in label_files), text)
                differs[split] = text
        unlisted: dict = {}   # images of the image folder no label file lists: not read, warned of once
        listed = {relative(path, image_dir) for paths, _, _ in per_split.values() for path in paths}
        say_not_listed("RAF-DB", root, [image_dir / n for n in images_not_listed(image_dir, listed)], unlisted, log,
                       " or ".join(relative(p, root) for p in label_files))   # listed in neither: "A / B" read as a path
        # the official set keeps the fingerprint it had before the choice existed: its invocations continue
        return Layout(dataset=self.name, root=root, class_names=CLASS_NAMES, splits=plans, label_files=label_files,
                      params={} if cfg.rafdb_images == "aligned" else {"images": cfg.rafdb_images},
                      info={"layout": variant, "image_dir": images,
                            **({"image_names": "as listed, without the _aligned suffix"} if unsuffixed else {}),
                            **({"differs_from_official": differs} if differs else {}),
                            **({"other_split_listed": other_split} if other_split else {}), **unlisted})
