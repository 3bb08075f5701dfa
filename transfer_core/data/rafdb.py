"""RAF-DB (basic, single-label): reference/datasets.md §1.

Layout: `<root>/EmoLabel/list_patition_label.txt` (upstream spelling; `list_partition_label.txt`
accepted too) with lines `train_00001.jpg 5`, images `<root>/Image/aligned/train_00001_aligned.jpg`;
the split comes from the name prefix. Also accepted: the TransFER/APViT lists
`EmoLabel/train.txt` + `EmoLabel/test.txt` whose names already end in `_aligned.jpg`, and copies whose
aligned images kept the partition file's names (`Image/aligned/train_00001.jpg`).
File labels 1..7 become 0..6 (0 Surprise ... 6 Neutral); APViT's mmcls remapping is not copied.
There is no official validation split: val is carved from train.
`data.rafdb_images: aligned_224` reads `Image/aligned_224/` instead (APViT's MTCNN realignment, same
file names), which reported accuracies differ by; the fingerprint and data.json record the set read.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from transfer_core.config import DataConfig
from transfer_core.data.base import (DATASETS, DataError, Layout, Source, SplitPlan, read_text, require_root,
                                     scan_logger)

log = scan_logger(__name__)

CLASS_NAMES = ("Surprise", "Fear", "Disgust", "Happiness", "Sadness", "Anger", "Neutral")
PARTITION_FILES = ("EmoLabel/list_patition_label.txt", "EmoLabel/list_partition_label.txt")
LIST_FILES = ("EmoLabel/train.txt", "EmoLabel/test.txt")
IMAGE_DIR = "Image/aligned"   # of data.rafdb_images = aligned; each set is Image/<its name>


def aligned_name(name: str) -> str:
    """`train_00001.jpg` -> `train_00001_aligned.jpg`; names already aligned are kept."""
    stem = name.rsplit(".", 1)[0] if "." in name else name
    if stem.endswith("_aligned"):
        return name
    return stem + "_aligned.jpg"


def parse_label_lines(path: Path, root: Path,
                      split_from_prefix: str | None) -> list[tuple[str, str, int, int, str]]:
    """(split, image name, label 0..6, line number, file) of every non-blank line of a RAF-DB list.

    `split_from_prefix` None: the split is the name's prefix (partition file); else that split.
    """
    rel = path.relative_to(root).as_posix()
    entries = []
    for lineno, line in enumerate(read_text(path).splitlines(), start=1):
        if not line.strip():
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
    return entries


def _names_unsuffixed(image_dir: Path, names: list[str]) -> bool:
    """Whether the aligned images lie under the partition file's own names (train_00001.jpg): no listed image
    has its `_aligned` file and some has its listed one. The official names are looked for first, so an
    official folder is answered at its first image."""
    if any((image_dir / aligned_name(name)).is_file() for name in names):
        return False
    return any((image_dir / name).is_file() for name in names)


def _class_tree_note(root: Path) -> str:
    """Where `root` or a folder in it is RAF-DB as an image-folder tree, train/1..7/ and test/1..7/ named by the
    file labels (the copy Kaggle spreads, with train_labels.csv beside it), how to read it: it has no label
    file to give here."""
    from transfer_core.data.imagefolder import class_folders

    labels = [str(k) for k in range(1, len(CLASS_NAMES) + 1)]
    try:
        inside = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))[:100]
    except OSError:
        return ""
    for folder in (root, *inside):
        try:
            if (folder / "test").is_dir() and class_folders(folder / "train") == labels:
                return (f". {folder} holds RAF-DB as class folders train/1..7/ and test/1..7/ (named by the file "
                        f"labels, 1 Surprise ... 7 Neutral): read it with --data imagefolder={folder} (the same "
                        f"labels; its classes are named 1..7)")
        except OSError:
            continue
    return ""


def _holds_labels(folder: Path) -> bool:
    return any((folder / p).is_file() for p in PARTITION_FILES) or all((folder / p).is_file() for p in LIST_FILES)


@DATASETS.register("rafdb")
class RafDbSource(Source):
    name = "rafdb"
    version = 1

    def class_names(self, cfg: DataConfig) -> tuple[str, ...]:
        return CLASS_NAMES

    def is_root(self, folder: Path) -> bool:
        return _holds_labels(folder)

    def scan(self, cfg: DataConfig) -> Layout:
        root = require_root(cfg)
        partition = next((root / p for p in PARTITION_FILES if (root / p).is_file()), None)
        lists = [root / p for p in LIST_FILES]
        if partition is not None:
            label_files = [partition]
            entries = parse_label_lines(partition, root, None)
            variant = "partition file"
        elif all(p.is_file() for p in lists):
            label_files = lists
            entries = parse_label_lines(lists[0], root, "train") + parse_label_lines(lists[1], root, "test")
            variant = "train.txt/test.txt lists"
        else:
            raise DataError(f"RAF-DB label file not found under {root}: expected {PARTITION_FILES[0]} "
                            f"(or {LIST_FILES[0]} and {LIST_FILES[1]}) in the 'basic' folder" + _class_tree_note(root))
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
                files = " / ".join(str(p) for p in label_files)
                raise DataError(f"{files}: no {split} images listed: expected {split} entries "
                                f"(names starting with '{split}')")
        plans = {split: SplitPlan(labels=np.asarray(labels, dtype=np.int64), origins=origins, paths=paths)
                 for split, (paths, labels, origins) in per_split.items()}
        # the official set keeps the fingerprint it had before the choice existed: its invocations continue
        return Layout(dataset=self.name, root=root, class_names=CLASS_NAMES, splits=plans, label_files=label_files,
                      params={} if cfg.rafdb_images == "aligned" else {"images": cfg.rafdb_images},
                      info={"layout": variant, "image_dir": images,
                            **({"image_names": "as listed, without the _aligned suffix"} if unsuffixed else {})})
