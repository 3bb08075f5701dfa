"""FERPlus: FER2013 pixels with the FER+ crowd votes, reference/datasets.md §2.

Two layouts (the PNG one is preferred when both are present, as the official trainer reads it):

(a) `fer2013.csv` + `fer2013new.csv` (in `<root>/` or `<root>/fer2013/`), joined BY ROW INDEX
    (never by `Image name`: names are not row indices and 4 are duplicated). Rows whose
    `Image name` is empty are dropped, as `generate_training_data.py` does; the first (2016) version
    of fer2013new.csv has no such column, so those rows cannot be told: it is read, with a warning.
(b) `<root>/FER2013Train/`, `FER2013Valid/`, `FER2013Test/` (or under `<root>/data/`), each with
    PNGs and a header-less `label.csv`: `name,"(x, y, w, h)",<10 votes>` (the box column is
    optional, older copies lack it). A name listed twice (a label.csv written from fer2013new.csv
    keeps its 4 duplicated names) is one PNG: read once, by its last line, with a warning.
In (a), the Usage columns must agree row by row, which a file reordered within a split passes: a split whose
FER2013 labels (fer2013.csv's emotion) get FER+ votes at their rows no more often than chance has them is warned of
as out of order (row_agreement). Whitespace-only lines of either file are skipped: the join is by data row.

Votes are 10 columns: 8 emotions in FER+ order, then unknown and NF. Rules (cfg.ferplus_rule):
- "majority" (official, `src/ferplus.py::_process_data`): zero every column with a single vote,
  keep the argmax iff max > 0.5 * sum of the remaining votes (unknown and NF included); an image
  whose result is unknown or NF (index >= 8) is dropped.
- "argmax": argmax over the 8 emotion columns, first index wins ties; rows with no emotion votes
  are dropped.
Splits: Training = train, PublicTest (FER2013Valid) = val, PrivateTest (FER2013Test) = test.
Split sizes other than the official files give by the rule (OFFICIAL_SIZES) are warned of.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from transfer_core.config import DataConfig
from transfer_core.data.base import (DATASETS, BlankLines, DataError, Layout, Source, SplitPlan, counted, csv_rows,
                                     first_existing, images_not_listed, require_root, say_not_listed, scan_logger)
from transfer_core.data.fer2013 import USAGE_SPLITS, challenge_csv_note, decode_csv_rows, find_fer_csv, read_fer_rows

log = scan_logger(__name__)

CLASS_NAMES = ("neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt")
VOTE_COLUMNS = CLASS_NAMES + ("unknown", "NF")
PNG_FOLDERS = {"train": "FER2013Train", "val": "FER2013Valid", "test": "FER2013Test"}
NEW_CSV = "fer2013new.csv"


# reference/datasets.md §2: the images each source and rule keep, train / val (PublicTest) / test (PrivateTest),
# counted from the public files (label.csv with argmax is not counted there)
OFFICIAL_SIZES = {("png folders + label.csv", "majority"): (25045, 3191, 3137),
                  ("fer2013.csv + fer2013new.csv", "majority"): (25060, 3199, 3153),
                  ("fer2013.csv + fer2013new.csv", "argmax"): (28559, 3579, 3573)}


def _sizes_note(layout: str, rule: str, plans: dict[str, SplitPlan], warn: bool = True) -> dict[str, str]:
    """Warn of split sizes other than the official files give with this rule (a file cut short, edited, or of
    another version: numbers that do not compare with those reported on FERPlus); what differs, by split. Not
    `warn`: the caller says it, with its cause."""
    official = OFFICIAL_SIZES.get((layout, rule))
    if official is None:
        return {}
    found = tuple(len(plans[split]) for split in ("train", "val", "test"))
    if found == official:
        return {}
    text = (f"{' / '.join(f'{n:,}' for n in found)} train / val / test images where the official files read by the "
            f"{rule} rule give {' / '.join(f'{n:,}' for n in official)} (reference/datasets.md)")
    if warn:
        log.warning("FERPlus (%s): %s: a file cut short, edited or of another version? Its numbers do not compare "
                    "with those reported on FERPlus", layout, text)
    return {"sizes": text}


# FER2013's emotion codes (0 Angry .. 6 Neutral) as FER+ vote columns: its label of an image, which FER+ relabelled
FER2013_AS_VOTE = (4, 5, 6, 1, 3, 2, 0)
# the row-order check: a split of at least this many rows whose FER2013 labels agree with the votes at their rows no
# more than this far above chance (Cohen's kappa, 0 for unrelated rows) is warned of as rows out of order
ROW_ORDER_MIN_ROWS = 100
ROW_ORDER_MIN_KAPPA = 0.3


def row_agreement(emotion: np.ndarray, votes: np.ndarray) -> tuple[float, float, int]:
    """How far fer2013.csv's labels (FER2013 codes, -1 where unknown) agree with the FER+ votes of the same rows:
    (observed, chance, rows): the share of rows whose FER2013 emotion has at least one FER+ vote, and that share for
    a row's label and another row's votes (what a file shuffled against the other gives). FER+ relabelled FER2013,
    but its taggers mostly gave the old label a vote; rows out of order agree only by chance."""
    known = emotion >= 0
    if not known.any():
        return 0.0, 0.0, 0
    voted = votes[known][:, list(FER2013_AS_VOTE)] > 0                 # (rows, 7): FER2013 class c got a vote
    codes = emotion[known]
    observed = float(voted[np.arange(len(codes)), codes].mean())
    chance = float(np.bincount(codes, minlength=7) @ voted.mean(axis=0)) / len(codes)
    return observed, chance, int(known.sum())


def _check_row_order(fer_csv: Path, new_csv: Path, emotion: np.ndarray, votes: np.ndarray,
                     split_of: np.ndarray) -> dict[str, str]:
    """Warn of a split whose fer2013.csv labels agree with fer2013new.csv's votes at the same rows no more than
    chance has them agree: the files are joined by row index, and the Usage check passes a file reordered (sorted,
    shuffled) within a split, which pairs each image with another's votes. What was found, by split."""
    doubts = {}
    for split, usage in ((s, u) for u, s in USAGE_SPLITS.items()):
        rows = split_of == split
        observed, chance, n = row_agreement(emotion[rows], votes[rows])
        if n < ROW_ORDER_MIN_ROWS or chance >= 1 or (observed - chance) / (1 - chance) >= ROW_ORDER_MIN_KAPPA:
            continue
        doubts[split] = (f"{100 * observed:.0f} % of its {n:,} {usage} rows have a FER+ vote for their FER2013 "
                         f"emotion, near what unrelated rows give ({100 * chance:.0f} %)")
        log.warning("FERPlus: %s and %s look out of order: %s; the official files agree far more (FER+'s taggers "
                    "mostly voted for an image's FER2013 label). The files are joined by row index, so a file sorted "
                    "or shuffled within a split gives each image another's votes (its label): use both as "
                    "downloaded, in their one row order", fer_csv, new_csv, doubts[split])
    return doubts


def vote_labels(votes: np.ndarray, rule: str) -> np.ndarray:
    """Labels 0..7 from votes (N, 10) by `rule`; -1 where the image is dropped."""
    votes = np.asarray(votes, dtype=np.float64)
    if rule == "majority":
        v = np.where(votes < 1.0 + np.finfo(float).eps, 0.0, votes)   # single votes are outliers
        top = v.max(axis=1)
        idx = v.argmax(axis=1)
        keep = (top > 0.5 * v.sum(axis=1)) & (idx < len(CLASS_NAMES))
    elif rule == "argmax":
        emotions = votes[:, :len(CLASS_NAMES)]
        idx = emotions.argmax(axis=1)                                    # first index wins ties
        keep = emotions.sum(axis=1) > 0
    else:
        raise ValueError(f"ferplus rule {rule!r}: expected 'majority' or 'argmax'")
    return np.where(keep, idx, -1).astype(np.int64)


def _parse_votes(fields: list[str], where: str) -> list[int]:
    try:
        votes = [int(x) for x in fields]
    except ValueError:
        votes = [-1]
    if len(votes) != 10 or min(votes) < 0:
        raise DataError(f"{where}: votes {','.join(fields)!r} are malformed: expected 10 non-negative integers "
                        f"({', '.join(VOTE_COLUMNS)})")
    return votes


def read_label_csv(path: Path) -> tuple[list[str], np.ndarray, list[int]]:
    """A header-less FER+ label.csv: image names, votes (N, 10), line numbers."""
    names, votes, lines = [], [], []
    blank = BlankLines(path)
    with csv_rows(path) as reader:
        for row in reader:
            lineno = reader.line_num
            if blank.skip(row, lineno):
                continue
            where = f"{path} line {lineno}"
            if len(row) not in (11, 12) or not row[0].strip():
                raise DataError(f"{where}: {','.join(row)!r} is malformed: expected "
                                "'<name>.png,\"(x, y, w, h)\",<10 votes>' (no header)")
            names.append(row[0].strip())
            votes.append(_parse_votes(row[-10:], where))
            lines.append(lineno)
    blank.say(log)
    return names, np.asarray(votes, dtype=np.int64).reshape(-1, 10), lines


def read_new_csv(path: Path) -> tuple[list[str], list[str] | None, np.ndarray, list[int]]:
    """fer2013new.csv: per row Usage, Image name (None for the 2016 version without it), votes, line."""
    usage, names, votes, lines = [], [], [], []
    blank = BlankLines(path)
    with csv_rows(path) as reader:
        try:
            head = [c.strip() for c in next(reader)]
        except StopIteration:
            raise DataError(f"{path} is empty: expected the FER+ header 'Usage,Image name,neutral,...,NF'") from None
        missing = [c for c in ("Usage",) + VOTE_COLUMNS if c not in head]
        if missing:
            raise DataError(f"{path} line 1: header lacks column(s) {', '.join(missing)}: expected "
                            f"'Usage,Image name,{','.join(VOTE_COLUMNS)}'")
        has_name = "Image name" in head
        u_col, n_col = head.index("Usage"), head.index("Image name") if has_name else -1
        v_cols = [head.index(c) for c in VOTE_COLUMNS]
        for row in reader:
            lineno = reader.line_num
            if blank.skip(row, lineno):
                continue
            where = f"{path} line {lineno}"
            if len(row) != len(head):
                raise DataError(f"{where}: {counted(len(row), 'field')}: expected {len(head)} ({','.join(head)})")
            usage.append(row[u_col].strip())
            if has_name:
                names.append(row[n_col].strip())
            votes.append(_parse_votes([row[c] for c in v_cols], where))
            lines.append(lineno)
    blank.say(log)
    return usage, (names if has_name else None), np.asarray(votes, dtype=np.int64).reshape(-1, 10), lines


def _holds_png(folder: Path) -> bool:
    """Whether the folder has at least one .png (stops at the first; the train folder holds ~28,000)."""
    with os.scandir(folder) as entries:
        return any(e.name.lower().endswith(".png") for e in entries)


@DATASETS.register("ferplus")
class FerPlusSource(Source):
    name = "ferplus"
    version = 1

    def class_names(self, cfg: DataConfig) -> tuple[str, ...]:
        return CLASS_NAMES

    def is_root(self, folder: Path) -> bool:
        # where scan looks: the CSV pair (fer2013new.csv in it, fer2013/ or FERPlus/), or the PNG folders
        return (find_fer_csv(folder) is not None
                and first_existing([folder / NEW_CSV, folder / "fer2013" / NEW_CSV, folder / "FERPlus" / NEW_CSV])
                is not None
                or any((f / PNG_FOLDERS["train"] / "label.csv").is_file() for f in (folder, folder / "data")))

    def scan(self, cfg: DataConfig) -> Layout:
        root = require_root(cfg)
        base = first_existing([root / PNG_FOLDERS["train"] / "label.csv", root / "data" / PNG_FOLDERS["train"]
                               / "label.csv"])
        fer_csv = find_fer_csv(root)
        new_csv = first_existing([root / NEW_CSV, root / "fer2013" / NEW_CSV, root / "FERPlus" / NEW_CSV])
        if base is not None and (_holds_png(base.parent) or fer_csv is None or new_csv is None):
            if not _holds_png(base.parent):   # a clone of microsoft/FERPlus: its label.csv files, no images
                raise DataError(f"FERPlus under {root}: {base.parent} holds label.csv but no PNG image (the "
                                f"microsoft/FERPlus repository ships only the label files): generate the images "
                                f"with its src/generate_training_data.py, or put fer2013.csv beside "
                                f"{NEW_CSV} in {root} to read the pixels from the CSV")
            return self._scan_png(cfg, root, base.parent.parent)
        if fer_csv is None or new_csv is None:
            found = (f". Found {fer_csv}, the FER2013 pixels, but not {NEW_CSV}, the FER+ votes (microsoft/FERPlus on "
                     f"GitHub): put it beside it" if fer_csv is not None else
                     f". Found {new_csv}, the FER+ votes, but not the FER2013 pixels they are joined to: put "
                     f"fer2013.csv (or Kaggle's icml_face_data.csv) beside it" if new_csv is not None else "")
            raise DataError(f"FERPlus not found under {root}: expected {root / 'fer2013.csv'} with "
                            f"{root / NEW_CSV} (joined by row), or the PNG folders "
                            f"{root / 'FER2013Train'}/label.csv, FER2013Valid/, FER2013Test/" + found
                            + (challenge_csv_note(root) if fer_csv is None else ""))
        return self._scan_csv(cfg, root, fer_csv, new_csv)

    def _scan_png(self, cfg: DataConfig, root: Path, base: Path) -> Layout:
        plans, label_files, dropped, listed_twice, unlisted = {}, [], {}, {}, []
        for split, folder in PNG_FOLDERS.items():
            label_csv = base / folder / "label.csv"
            if not label_csv.is_file():
                raise DataError(f"FERPlus label file {label_csv} does not exist: expected label.csv in each of "
                                f"{', '.join(PNG_FOLDERS.values())}")
            names, votes, lines = read_label_csv(label_csv)
            rel = label_csv.relative_to(root).as_posix()
            last = {name: i for i, name in enumerate(names)}
            once = np.asarray([last[name] == i for i, name in enumerate(names)], dtype=bool)
            if not once.all():
                twice = {names[i] for i in np.flatnonzero(~once)}
                first = names[int(np.flatnonzero(~once)[0])]
                at = [lines[i] for i, name in enumerate(names) if name == first]
                log.warning("FERPlus: %s lists %s more than once (first: %s, at lines %s): one PNG each, read once, "
                            "with the votes of its last line (generate_training_data.py writes an image per row, "
                            "the last row's staying); the official label.csv lists each image once", label_csv,
                            counted(len(twice), "image"), first, ", ".join(map(str, at)))
                listed_twice[split] = int((~once).sum())
            labels = np.where(once, vote_labels(votes, cfg.ferplus_rule), -1)
            keep = labels >= 0
            plans[split] = SplitPlan(labels=labels[keep], paths=[base / folder / n for n, k in zip(names, keep) if k],
                                     origins=[f"{rel} line {n}" for n, k in zip(lines, keep) if k])
            label_files.append(label_csv)
            dropped[split] = int((~keep & once).sum())
            unlisted += [base / folder / n for n in images_not_listed(base / folder, set(names))]
        not_listed: dict = {}
        say_not_listed("FERPlus", root, unlisted, not_listed, log, "label.csv of its folder")
        differs = _sizes_note("png folders + label.csv", cfg.ferplus_rule, plans)
        return Layout(dataset=self.name, root=root, class_names=CLASS_NAMES, splits=plans, label_files=label_files,
                      # a name listed twice read once: a fingerprint of its own (a decode cached before read it twice)
                      params={"rule": cfg.ferplus_rule, **({"listed_twice": "read once"} if listed_twice else {})},
                      info={"layout": "png folders + label.csv", "rule": cfg.ferplus_rule,
                            "dropped_by_rule": dropped, **({"listed_twice": listed_twice} if listed_twice else {}),
                            **({"differs_from_official": differs} if differs else {}), **not_listed},
                      val_source="official PublicTest (FER2013Valid)")

    def _scan_csv(self, cfg: DataConfig, root: Path, fer_csv: Path, new_csv: Path) -> Layout:
        rows = read_fer_rows(fer_csv, parse_emotion=False)
        usage, names, votes, lines = read_new_csv(new_csv)
        if len(usage) != len(rows.usage):
            raise DataError(f"{new_csv} has {counted(len(usage), 'data row')} but {fer_csv} has {len(rows.usage)}: "
                            "expected the same rows in the same order (the files are joined by row index)")
        for i, (u_new, u_fer) in enumerate(zip(usage, rows.usage)):
            if u_new != u_fer:
                raise DataError(f"{new_csv} line {lines[i]}: Usage {u_new!r} differs from {u_fer!r} at "
                                f"{fer_csv} line {rows.lines[i]}: expected row-aligned files (same order)")
        split_of = np.asarray([USAGE_SPLITS[u] for u in usage])
        out_of_order = _check_row_order(fer_csv, new_csv, rows.emotion, votes, split_of)
        labels = vote_labels(votes, cfg.ferplus_rule)
        named = np.ones(len(labels), dtype=bool) if names is None else np.asarray([bool(n) for n in names])
        plans, dropped_rule, dropped_name = {}, {}, {}
        for split in ("train", "val", "test"):
            in_split = split_of == split
            idx = np.flatnonzero(in_split & named & (labels >= 0))
            dropped_name[split] = int((in_split & ~named).sum())
            dropped_rule[split] = int((in_split & named & (labels < 0)).sum())
            plans[split] = SplitPlan(labels=labels[idx], rows=idx,
                                     origins=[f"{new_csv.name} line {lines[i]}" for i in idx])
        differs = _sizes_note("fer2013.csv + fer2013new.csv", cfg.ferplus_rule, plans, warn=names is not None)
        if names is None:   # one cause, one warning: the sizes it gives are said with it
            log.warning("FERPlus: %s has no 'Image name' column (the first, 2016 version of fer2013new.csv): the rows "
                        "the official generate_training_data.py drops for an empty name (173 in the current version: "
                        "148 Training, 10 PublicTest, 15 PrivateTest) cannot be told, and are read where their votes "
                        "give a label, so the split sizes differ from the official ones%s and results do not "
                        "compare with those reported on FERPlus. Download the current fer2013new.csv from "
                        "microsoft/FERPlus (its votes are the same)", new_csv,
                        f" ({differs['sizes']})" if differs else "")
        return Layout(dataset=self.name, root=root, class_names=CLASS_NAMES, splits=plans,
                      label_files=[fer_csv, new_csv], params={"rule": cfg.ferplus_rule},
                      info={"layout": "fer2013.csv + fer2013new.csv", "rule": cfg.ferplus_rule,
                            "dropped_by_rule": dropped_rule, "dropped_empty_name": dropped_name,
                            **({"image_names": "none (the 2016 fer2013new.csv): rows of empty name not dropped"}
                               if names is None else {}),
                            **({"differs_from_official": differs} if differs else {}),
                            **({"rows_out_of_order": out_of_order} if out_of_order else {})},
                      val_source="official PublicTest")

    def decode(self, layout: Layout, image_size: int, outs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        if layout.splits["train"].rows is not None:
            return decode_csv_rows(layout.label_files[0], layout.splits, image_size, outs)
        return super().decode(layout, image_size, outs)
