"""AffectNet, both circulating releases: reference/datasets.md §3.

(a) The original "Manually_Annotated" release:
    `<root>/Manually_Annotated_file_lists/training.csv` and `validation.csv` (or those two files in
    `<root>` itself), columns `subDirectory_filePath,face_x,face_y,face_width,face_height,
    facial_landmarks,expression,valence,arousal`. The header is sniffed: present iff the first
    field is `subDirectory_filePath`, or `#subDirectory_filePath` as many copies write it (copies with
    and without a header circulate). Paths are relative to
    `Manually_Annotated_Images/`, looked for in `<root>/Manually_Annotated/`, `<root>/`, or
    `<root>/Manually_Annotated_compressed/`. The images are not face crops: each is cropped to its
    face box, as Face2Exp's `AfData` does.
(b) The newer npy release: `<root>/train_set/` and `<root>/val_set/` (or `valid_set/`), each with
    `images/<N>.jpg` (already face crops) and `annotations/<N>_exp.npy`, read with
    `int(np.load(f))` because the array may hold a string.

Codes: 0 Neutral, 1 Happy, 2 Sad, 3 Surprise, 4 Fear, 5 Disgust, 6 Anger, 7 Contempt; 8 None,
9 Uncertain and 10 No-Face are always dropped, and 7 too for cfg.affectnet_classes == 7.
Protocol: the validation list / val_set is the test split (there is no official test set); val is
carved from train. Unreadable, non-image or missing files are skipped, logged and counted
(info["skipped"]) — known to exist in this data set only; a malformed list line is a DataError. An image
the lists name twice, or in both, is read as listed and warned of (info "listed_twice", "in_train_and_test"); images
in the image folders that no list (no _exp.npy) names are not read, and warned of once (info "not_listed"). A list
naming a 32-bit float or integer TIFF (whose decoding changed: base.to_rgb) gives the layout the tiff_decoding param
(a decode cached before may hold it black); a TIFF under a .jpg name is not looked for (its header would have to be
read for every image), nor are the npy release's images, all named .jpg.
"""

from __future__ import annotations

import hashlib
import io
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from transfer_core.config import DataConfig
from transfer_core.data.base import (DATASETS, BlankLines, DataError, Layout, Source, SplitPlan, counted, csv_rows,
                                     first_existing, images_not_listed, listed_depth, require_root, say_not_listed,
                                     scan_logger)
from transfer_core.data.imagefolder import TIFF_DECODING, TIFF_EXTENSIONS

log = scan_logger(__name__)

ALL_CLASS_NAMES = ("Neutral", "Happy", "Sad", "Surprise", "Fear", "Disgust", "Anger", "Contempt")
CODE_NAMES = ALL_CLASS_NAMES + ("None", "Uncertain", "No-Face")
HEADER_COLUMNS = ("subDirectory_filePath", "face_x", "face_y", "face_width", "face_height",
                  "facial_landmarks", "expression")
HEADER_FIRST = "subDirectory_filePath"
LIST_NAMES = {"train": "training.csv", "test": "validation.csv"}
IMAGE_DIRS = ("Manually_Annotated/Manually_Annotated_Images", "Manually_Annotated_Images",
              "Manually_Annotated_compressed/Manually_Annotated_Images", "Manually_Annotated_compressed",
              "Manually_Annotated")
NPY_SPLITS = {"train": ("train_set",), "test": ("val_set", "valid_set")}
# what the test split is, as data.json and the console's [data] line say it (reference/datasets.md §3: the protocol)
TEST_SOURCE = "AffectNet's validation set ({list_file}; it has no public test set, so papers test on it)"


def _wide_tiff(path: Path) -> bool:
    """Whether a TIFF opens as 32-bit float or integer (PIL mode "F" or "I"), reading its header only: how such an image
    is decoded changed (base.to_rgb: a float one in 0..1 was cached black, one beyond 16 bits clipped), so a copy
    holding one gets a fingerprint of its own. One that does not open: no (decoding it skips it, as before)."""
    try:
        with Image.open(path) as im:
            return im.mode in ("F", "I")
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        return False


def _code_counts(codes: list[int]) -> dict[str, int]:
    counts = np.bincount(np.asarray(codes, dtype=np.int64), minlength=len(CODE_NAMES)) if codes else \
        np.zeros(len(CODE_NAMES), np.int64)
    return {CODE_NAMES[c]: int(n) for c, n in enumerate(counts) if n}


def parse_code(text: str, where: str) -> int:
    try:
        code = int(text.strip())
    except ValueError:
        code = -1
    if not 0 <= code <= 10:
        raise DataError(f"{where}: expression {text!r} is unknown: expected an integer code 0..10 "
                        f"({', '.join(f'{i} {n}' for i, n in enumerate(CODE_NAMES))})")
    return code


def read_file_list(path: Path, root: Path, image_dir: Path, num_classes: int,
                   listed: set[str] | None = None) -> tuple[SplitPlan, dict]:
    """One Manually_Annotated file list: kept items with face boxes, and counts of dropped codes; every path it
    lists (codes dropped too), relative to image_dir, added to `listed`."""
    rel = path.relative_to(root).as_posix()
    labels, paths, boxes, origins, dropped = [], [], [], [], []
    blank = BlankLines(path)   # as FERPlus's CSVs: skipped, one between rows warned of (was: silent, or an error)
    with csv_rows(path) as reader:
        header = False
        for row in reader:
            lineno = reader.line_num
            if blank.skip(row, lineno):
                continue
            # a header: its first name as shipped, or any other of its names (the first one renamed). Copies in the
            # wild begin it '#subDirectory_filePath' (a comment mark: pandas readers then index that name)
            if lineno == 1 and (row[0].strip().lstrip("#").strip() == HEADER_FIRST
                                or any(f.strip() in HEADER_COLUMNS for f in row)):
                names = [f.strip() for f in row]
                names[0] = names[0].lstrip("#").strip()
                if names[:len(HEADER_COLUMNS)] != list(HEADER_COLUMNS):
                    missing = [c for c in HEADER_COLUMNS if c not in names]
                    problem = f"lacks column(s) {', '.join(missing)}" if missing else "has its columns out of order"
                    raise DataError(f"{path} line 1: header {problem}: expected "
                                    f"{','.join(HEADER_COLUMNS)}[,valence,arousal]")
                header = True
                blank.header_row()
                continue
            where = f"{path} line {lineno}"
            if len(row) < 7 or not row[0].strip():
                raise DataError(f"{where}: {counted(len(row), 'field')}: expected subDirectory_filePath,face_x,face_y,"
                                "face_width,face_height,facial_landmarks,expression[,valence,arousal]")
            try:
                x, y, w, h = (int(float(v)) for v in row[1:5])
            except (ValueError, OverflowError):          # OverflowError: "inf" (or 1e999), as a float
                w = h = -1
            if w <= 0 or h <= 0:
                raise DataError(f"{where}: face box {','.join(row[1:5])!r} is malformed: expected face_x, "
                                "face_y, face_width, face_height as numbers with width and height > 0")
            code = parse_code(row[6], where)
            if listed is not None:
                listed.add(Path(row[0].strip()).as_posix())
            if code >= num_classes:
                dropped.append(code)
                continue
            labels.append(code)
            paths.append(image_dir / row[0].strip())
            boxes.append((x, y, w, h))
            origins.append(f"{rel} line {lineno}")
    blank.say(log)
    plan = SplitPlan(labels=np.asarray(labels, dtype=np.int64), origins=origins, paths=paths, boxes=boxes)
    return plan, {"header": header, "dropped_codes": _code_counts(dropped)}


def read_exp(raw: bytes, where: str) -> int:
    """An `_exp.npy` holding a number or a string, as an integer code."""
    try:
        value = np.load(io.BytesIO(raw), allow_pickle=False)
        if value.size != 1:
            raise ValueError(f"{value.size} values")
        item = value.reshape(-1)[0].item()
        if isinstance(item, bytes):
            item = item.decode()
        number = float(item)                        # "3", b"3", 3, 3.0 -> 3.0
        if not number.is_integer():
            raise ValueError(f"{item!r} is not an integer")
    except (ValueError, TypeError, OSError, EOFError) as err:
        raise DataError(f"{where}: cannot read an expression code ({err}): expected a .npy holding one "
                        "integer (or its string) 0..10") from None
    return parse_code(str(int(number)), where)


def _natural(path: Path) -> tuple:
    stem = path.name[:-len("_exp.npy")]
    return (0, int(stem), "") if stem.isdigit() else (1, 0, stem)


def read_npy_split(folder: Path, root: Path, num_classes: int, digest: Any,
                   listed: set[str] | None = None) -> tuple[SplitPlan, dict]:
    """One train_set/val_set folder: kept items, counts of dropped codes; hashes every _exp.npy. The image name of
    every annotation (codes dropped too) is added to `listed`."""
    images, annotations = folder / "images", folder / "annotations"
    for sub in (images, annotations):
        if not sub.is_dir():
            raise DataError(f"AffectNet folder {sub} does not exist: expected {folder.name}/images/<N>.jpg "
                            f"and {folder.name}/annotations/<N>_exp.npy")
    files = sorted(annotations.glob("*_exp.npy"), key=_natural)
    if not files:
        raise DataError(f"{annotations} holds no *_exp.npy files: expected annotations/<N>_exp.npy per image")
    labels, paths, origins, dropped = [], [], [], []
    for path in files:
        raw = path.read_bytes()
        rel = path.relative_to(root).as_posix()
        digest.update(f"{rel}\0".encode() + raw)
        code = read_exp(raw, str(path))
        if listed is not None:
            listed.add(path.name[:-len("_exp.npy")] + ".jpg")
        if code >= num_classes:
            dropped.append(code)
            continue
        labels.append(code)
        paths.append(images / (path.name[:-len("_exp.npy")] + ".jpg"))
        origins.append(rel)
    plan = SplitPlan(labels=np.asarray(labels, dtype=np.int64), origins=origins, paths=paths)
    return plan, {"dropped_codes": _code_counts(dropped)}


def _say_listed_twice(plans: dict[str, SplitPlan], info: dict) -> None:
    """Warn of images the file lists name more than once (each read as often as listed: weighted double, or, with
    two expressions, one face with two labels) and of test images (validation.csv) that training.csv lists too
    (trained on and tested on); counted in info. Read as listed: the lists are what AffectNet's numbers are
    reported on, and no copy of them is known to hold either."""
    first: dict[str, tuple[str, int]] = {}
    twice: dict[str, list[tuple[int, int]]] = {}      # split -> (index, index of its first listing)
    across: list[tuple[int, int]] = []                 # (test index, train index)
    for split in ("train", "test"):
        plan = plans[split]
        for i, path in enumerate(plan.paths or ()):
            key = str(path)
            seen = first.setdefault(key, (split, i))
            if seen == (split, i):
                continue
            if seen[0] == split:
                twice.setdefault(split, []).append((i, seen[1]))
            else:
                across.append((i, seen[1]))
    for split, pairs in twice.items():
        plan = plans[split]
        i, j = pairs[0]
        relabelled = sum(plan.labels[a] != plan.labels[b] for a, b in pairs)
        file, _, line = plan.origins[i].rpartition(" line ")
        log.warning("AffectNet: %s lists %s more than once (first: %s, at line %s and line %s)%s: each is read as "
                    "often as listed", file, counted(len(pairs), "image"), plan.paths[i].name,
                    plan.origins[j].rpartition(" line ")[2], line,
                    f", {relabelled} of them with another expression" if relabelled else "")
        info.setdefault("listed_twice", {})[split] = len(pairs)
    if across:
        i, j = across[0]
        log.warning("AffectNet: %s of the test split (validation.csv) %s listed in training.csv too (first: %s, at %s "
                    "and %s): trained on and tested on", counted(len(across), "image"),
                    "is" if len(across) == 1 else "are", plans["test"].paths[i].name, plans["train"].origins[j],
                    plans["test"].origins[i])
        info["in_train_and_test"] = len(across)


@DATASETS.register("affectnet")
class AffectNetSource(Source):
    name = "affectnet"
    version = 1
    skip_bad_images = True

    def class_names(self, cfg: DataConfig) -> tuple[str, ...]:
        return ALL_CLASS_NAMES[:cfg.affectnet_classes]

    def is_root(self, folder: Path) -> bool:
        return ((folder / "Manually_Annotated_file_lists" / LIST_NAMES["train"]).is_file()
                or (folder / NPY_SPLITS["train"][0] / "annotations").is_dir())

    def scan(self, cfg: DataConfig) -> Layout:
        root = require_root(cfg)
        lists_dir = first_existing([root / "Manually_Annotated_file_lists" / LIST_NAMES["train"],
                                    root / LIST_NAMES["train"]])
        if lists_dir is not None:
            return self._scan_lists(cfg, root, lists_dir.parent)
        if (root / NPY_SPLITS["train"][0]).is_dir():
            return self._scan_npy(cfg, root)
        raise DataError(f"AffectNet not found under {root}: expected Manually_Annotated_file_lists/training.csv "
                        "and validation.csv with Manually_Annotated_Images/, or train_set/ and val_set/ with "
                        "images/ and annotations/")

    def _scan_lists(self, cfg: DataConfig, root: Path, lists: Path) -> Layout:
        image_dir = first_existing([root / d for d in IMAGE_DIRS])
        if image_dir is None or not image_dir.is_dir():
            raise DataError(f"AffectNet image folder not found under {root}: expected one of "
                            f"{', '.join(IMAGE_DIRS)}")
        plans, info, label_files = {}, {"layout": "Manually_Annotated file lists", "image_dir":
                                        image_dir.relative_to(root).as_posix()}, []
        listed: set[str] = set()
        for split, name in LIST_NAMES.items():
            path = lists / name
            if not path.is_file():
                raise DataError(f"AffectNet file list {path} does not exist: expected {LIST_NAMES['train']} "
                                f"and {LIST_NAMES['test']} in {lists}")
            plans[split], details = read_file_list(path, root, image_dir, cfg.affectnet_classes, listed)
            info[f"{split}_list"] = {"file": name, **details}
            label_files.append(path)
        _say_listed_twice(plans, info)
        say_not_listed("AffectNet", root, [image_dir / rel for rel in images_not_listed(image_dir, listed,
                                                                                          listed_depth(listed))],
                       info, log, f"{LIST_NAMES['train']} or {LIST_NAMES['test']}")
        info["test_source"] = TEST_SOURCE.format(list_file=LIST_NAMES["test"])
        # AffectNet is web JPEGs (a few listed under other extensions): only a listed TIFF whose decoding changed
        # (32-bit float or integer) gives the copy the image folders' tiff_decoding param; every other copy keeps its
        # fingerprint, its cached decode and its recorded runs. Headers of the TIFF-named files alone are read
        wide = any(_wide_tiff(path) for plan in plans.values() for path in plan.paths or ()
                   if path.suffix.lower() in TIFF_EXTENSIONS)
        return Layout(dataset=self.name, root=root, class_names=self.class_names(cfg), splits=plans,
                      label_files=label_files, info=info,
                      params={"classes": cfg.affectnet_classes, **({"tiff_decoding": TIFF_DECODING} if wide else {})})

    def _scan_npy(self, cfg: DataConfig, root: Path) -> Layout:
        digest = hashlib.sha256()
        plans, info = {}, {"layout": "train_set/val_set npy annotations"}
        unlisted: list[Path] = []
        for split, names in NPY_SPLITS.items():
            folder = first_existing([root / n for n in names])
            if folder is None:
                raise DataError(f"AffectNet folder {root / names[0]} does not exist: expected "
                                f"{' or '.join(names)} beside {NPY_SPLITS['train'][0]}")
            annotated: set[str] = set()
            plans[split], info[f"{split}_set"] = read_npy_split(folder, root, cfg.affectnet_classes, digest, annotated)
            unlisted += [folder / "images" / n for n in images_not_listed(folder / "images", annotated)]
            if split == "test":
                info["test_source"] = TEST_SOURCE.format(list_file=f"{folder.name}/")
        say_not_listed("AffectNet", root, unlisted, info, log, "annotations/<N>_exp.npy")
        return Layout(dataset=self.name, root=root, class_names=self.class_names(cfg), splits=plans,
                      params={"classes": cfg.affectnet_classes}, info=info, label_digest=digest.hexdigest())
