"""FER2013 (the Kaggle ICML-2013 CSV): reference/datasets.md §2, and its pixel reader used by FERPlus.

`fer2013.csv` (header `emotion,pixels,Usage`) or Kaggle's `icml_face_data.csv` (header
`emotion, Usage, pixels`: the leading spaces are stripped), in `<root>/` or `<root>/fer2013/`.
Each row is a 48x48 grayscale image as 2,304 space-separated values, repeated to 3 channels.
Usage: Training = train, PublicTest = val (the official validation split), PrivateTest = test.
Classes (FER2013 order): 0 Angry, 1 Disgust, 2 Fear, 3 Happy, 4 Sad, 5 Surprise, 6 Neutral.
"""

from __future__ import annotations

import csv
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from transfer_core.config import DataConfig
from transfer_core.data.base import (DATASETS, BlankLines, DataError, Layout, Source, SplitPlan, counted, csv_rows,
                                     decode_pil, require_root, scan_logger)

log = scan_logger(__name__)

CLASS_NAMES = ("Angry", "Disgust", "Fear", "Happy", "Sad", "Surprise", "Neutral")
CSV_NAMES = ("fer2013.csv", "icml_face_data.csv")
USAGE_SPLITS = {"Training": "train", "PublicTest": "val", "PrivateTest": "test"}
SIDE = 48
PIXELS = SIDE * SIDE

csv.field_size_limit(min(sys.maxsize, 2**31 - 1))  # a pixels field is ~8 kB; be generous


def find_fer_csv(root: Path) -> Path | None:
    """fer2013.csv (preferred) or icml_face_data.csv, in root or root/fer2013."""
    for name in CSV_NAMES:
        for folder in (root, root / "fer2013"):
            if (folder / name).is_file():
                return folder / name
    return None


def challenge_csv_note(root: Path) -> str:
    """Where only the Kaggle challenge's train.csv/test.csv lie (torchvision 0.12-0.18 read those), why they
    cannot stand in for fer2013.csv: neither official validation nor test labels are in them."""
    found = [folder / name for folder in (root, root / "fer2013") for name in ("train.csv", "test.csv")
             if (folder / name).is_file()]
    if not found:
        return ""
    return (f". Found {', '.join(map(str, found))}: the Kaggle challenge's train.csv holds only the Training "
            "rows and its test.csv no labels, so the official validation (PublicTest) and test (PrivateTest) "
            "splits cannot be read from them. Download icml_face_data.csv from the same Kaggle page (all "
            f"35,887 rows with their Usage), or fer2013.csv, into {root}")


@dataclass
class FerRows:
    """fer2013.csv parsed without its pixels: per data row its Usage, emotion and line number."""

    path: Path
    usage: list[str]
    emotion: np.ndarray                 # int64 (rows,), -1 where not a code 0..6 (not checked: parse_emotion False)
    lines: np.ndarray                   # int64 (rows,) physical line numbers
    blank_lines: int = 0                # whitespace-only lines skipped


def _header(path: Path, row: list[str], required: tuple[str, ...]) -> dict[str, int]:
    names = [c.strip() for c in row]
    missing = [c for c in required if c not in names]
    if missing:
        shown = ",".join(f"{c[:20]}..." if len(c) > 20 else c for c in row)   # a pixel string: 2304 numbers
        no_header = "pixels" in required and any(len(c.split()) > 100 for c in row)
        raise DataError(f"{path} line 1: " + ("is a data row, not a header" if no_header else
                                              f"header lacks column(s) {', '.join(missing)}")
                        + f" ({shown!r}): expected a header with {', '.join(required)}"
                        + (" as its first line (add it; the Kaggle file has it)" if no_header else ""))
    return {name: names.index(name) for name in required}


def read_fer_rows(path: Path, parse_emotion: bool) -> FerRows:
    """Parse every row's Usage and emotion, and check its pixel count, without decoding pixels. An emotion other
    than 0..6 is a DataError with `parse_emotion`, else -1 (FERPlus reads its labels from the votes). Whitespace-only
    lines are skipped (BlankLines), as decode_csv_rows skips them: the data rows' indices are the same in both."""
    usage: list[str] = []
    emotions: list[int] = []
    lines: list[int] = []
    blank = BlankLines(path)
    with csv_rows(path) as reader:
        try:
            head = next(reader)
        except StopIteration:
            raise DataError(f"{path} is empty: expected a header 'emotion,pixels,Usage' and data rows") from None
        cols = _header(path, head, ("emotion", "pixels", "Usage"))
        for row in reader:
            lineno = reader.line_num
            if blank.skip(row, lineno):
                continue
            if len(row) != len(head):
                raise DataError(f"{path} line {lineno}: {counted(len(row), 'field')}: expected {len(head)} "
                                f"({','.join(c.strip() for c in head)})")
            use = row[cols["Usage"]].strip()
            if use not in USAGE_SPLITS:
                raise DataError(f"{path} line {lineno}: Usage {use!r} is unknown: expected one of "
                                f"{', '.join(USAGE_SPLITS)}")
            pixels = row[cols["pixels"]].strip()
            # 2,303 single spaces: 2,304 values (the fast path; a double space hides a value missing)
            single = pixels.count(" ") == PIXELS - 1 and "  " not in pixels
            if not single and len(pixels.split()) != PIXELS:
                raise DataError(f"{path} line {lineno}: pixels has {counted(len(pixels.split()), 'value')}: expected "
                                f"{PIXELS} (a {SIDE}x{SIDE} grayscale image)")
            text = row[cols["emotion"]].strip()
            if text not in ("0", "1", "2", "3", "4", "5", "6") and parse_emotion:
                raise DataError(f"{path} line {lineno}: emotion {text!r} is unknown: expected an integer "
                                "0..6 (0 Angry, 1 Disgust, 2 Fear, 3 Happy, 4 Sad, 5 Surprise, 6 Neutral)")
            emotions.append(int(text) if text in ("0", "1", "2", "3", "4", "5", "6") else -1)
            usage.append(use)
            lines.append(lineno)
    blank.say(log)
    return FerRows(path=path, usage=usage, emotion=np.asarray(emotions, dtype=np.int64),
                   lines=np.asarray(lines, dtype=np.int64), blank_lines=len(blank.lines))


def pixels_to_image(text: str, where: str) -> Image.Image:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", DeprecationWarning)  # trailing garbage: an error, not a warning
            values = np.fromstring(text, dtype=np.int64, sep=" ")
    except (ValueError, DeprecationWarning):
        values = np.empty(0, np.int64)
    if values.size != PIXELS or values.min() < 0 or values.max() > 255:
        raise DataError(f"{where}: pixels are not {PIXELS} integers in 0..255: expected a {SIDE}x{SIDE} "
                        "grayscale image")
    return Image.fromarray(values.astype(np.uint8).reshape(SIDE, SIDE), mode="L")


def decode_csv_rows(path: Path, plans: dict[str, SplitPlan], image_size: int,
                    outs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """One pass over the CSV: decode the data rows that `plans[split].rows` name into `outs[split]`."""
    target: dict[int, tuple[str, int]] = {}
    for split, out in outs.items():
        for i, row in enumerate(plans[split].rows):
            target[int(row)] = (split, i)
    blank = BlankLines(path)                        # skipped as read_fer_rows skips them, which numbered the rows
    with csv_rows(path) as reader:
        col = [c.strip() for c in next(reader)].index("pixels")
        index = 0
        for row in reader:
            if blank.skip(row, reader.line_num):
                continue
            hit = target.get(index)
            if hit is not None:
                split, i = hit
                image = pixels_to_image(row[col], f"{path} line {reader.line_num}")
                outs[split][i] = decode_pil(image, image_size)
            index += 1
    return {split: np.ones(len(out), dtype=bool) for split, out in outs.items()}


@DATASETS.register("fer2013")
class Fer2013Source(Source):
    name = "fer2013"
    version = 1

    def class_names(self, cfg: DataConfig) -> tuple[str, ...]:
        return CLASS_NAMES

    def is_root(self, folder: Path) -> bool:
        return find_fer_csv(folder) is not None

    def scan(self, cfg: DataConfig) -> Layout:
        root = require_root(cfg)
        path = find_fer_csv(root)
        if path is None:
            raise DataError(f"FER2013 CSV not found under {root}: expected {root / CSV_NAMES[0]} (or "
                            f"{CSV_NAMES[1]}, also accepted in {root / 'fer2013'})" + challenge_csv_note(root))
        rows = read_fer_rows(path, parse_emotion=True)
        usage = np.asarray([USAGE_SPLITS[u] for u in rows.usage])
        plans = {}
        for split in ("train", "val", "test"):
            idx = np.flatnonzero(usage == split)
            plans[split] = SplitPlan(labels=rows.emotion[idx], rows=idx,
                                     origins=[f"{path.name} line {n}" for n in rows.lines[idx]])
        return Layout(dataset=self.name, root=root, class_names=CLASS_NAMES, splits=plans, label_files=[path],
                      info={"layout": path.name, **({"blank_lines": rows.blank_lines} if rows.blank_lines else {})},
                      val_source="official PublicTest")

    def decode(self, layout: Layout, image_size: int, outs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return decode_csv_rows(layout.label_files[0], layout.splits, image_size, outs)
