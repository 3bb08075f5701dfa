"""FERPlus (both layouts, both vote rules) and FER2013 (both CSV variants) on miniature copies."""

from __future__ import annotations

import csv
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from transfer_core.config import DataConfig
from transfer_core.data import DataError, check_layout, load_splits
from transfer_core.data.ferplus import vote_labels

NEW_HEADER = ["Usage", "Image name", "neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear",
              "contempt", "unknown", "NF"]
# (Usage, Image name, votes): names deliberately not the row index, one duplicated, one empty
ROWS = [
    ("Training", "fer0000005.png", [0, 10, 0, 0, 0, 0, 0, 0, 0, 0]),   # 0 clear happiness
    ("Training", "fer0000003.png", [5, 0, 0, 1, 0, 0, 4, 0, 0, 0]),    # 1 single-vote outlier decides: neutral
    ("Training", "fer0000003.png", [0, 0, 0, 5, 5, 0, 0, 0, 0, 0]),    # 2 tie (sadness/anger); duplicate name
    ("Training", "fer0000001.png", [0, 0, 0, 0, 0, 0, 0, 0, 8, 2]),    # 3 unknown majority, no emotion votes
    ("Training", "fer0000002.png", [2, 0, 0, 0, 0, 0, 0, 0, 0, 8]),    # 4 NF majority
    ("Training", "", [0, 0, 10, 0, 0, 0, 0, 0, 0, 0]),                 # 5 empty name: dropped
    ("Training", "fer0000000.png", [0, 0, 0, 0, 0, 0, 0, 7, 3, 0]),    # 6 contempt
    ("PublicTest", "fer0000010.png", [0, 0, 9, 0, 0, 0, 0, 0, 1, 0]),  # 7 surprise
    ("PrivateTest", "fer0000020.png", [0, 0, 0, 0, 8, 2, 0, 0, 0, 0]), # 8 anger
    ("PrivateTest", "fer0000021.png", [0, 0, 0, 0, 0, 0, 10, 0, 0, 0]),  # 9 fear
]
GRAY = [10 * (i + 1) for i in range(len(ROWS))]                        # row i is a flat image of GRAY[i]


def _pixels(value: int) -> str:
    return " ".join([str(value)] * 2304)


def write_fer2013(path: Path, rows=ROWS, emotions=None, icml: bool = False) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    emotions = emotions or [i % 7 for i in range(len(rows))]
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["emotion", " Usage", " pixels"] if icml else ["emotion", "pixels", "Usage"])
        for i, (usage, _, _) in enumerate(rows):
            w.writerow([emotions[i], usage, _pixels(GRAY[i])] if icml else [emotions[i], _pixels(GRAY[i]), usage])
    return path


def write_ferplus_csv(root: Path, rows=ROWS) -> Path:
    write_fer2013(root / "fer2013.csv", rows)
    with open(root / "fer2013new.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(NEW_HEADER)
        for usage, name, votes in rows:
            w.writerow([usage, name, *votes])
    return root


def write_ferplus_png(root: Path, rows=ROWS, box: bool = True) -> Path:
    folders = {"Training": "FER2013Train", "PublicTest": "FER2013Valid", "PrivateTest": "FER2013Test"}
    lines: dict[str, list] = {f: [] for f in folders.values()}
    for i, (usage, name, votes) in enumerate(rows):
        if not name:
            continue                                                # generate_training_data.py skips these
        folder = root / folders[usage]
        folder.mkdir(parents=True, exist_ok=True)
        name = f"img{i:02d}.png"                                    # unique on disk
        Image.fromarray(np.full((48, 48), GRAY[i], np.uint8), mode="L").save(folder / name)
        lines[folders[usage]].append([name, "(0, 0, 48, 48)", *votes] if box else [name, *votes])
    for folder, rows_ in lines.items():
        with open(root / folder / "label.csv", "w", newline="") as f:
            csv.writer(f).writerows(rows_)
    return root


def _cfg(tmp_path, dataset: str, root: Path, **kw) -> DataConfig:
    return DataConfig(dataset=dataset, root=str(root), cache_dir=str(tmp_path / "cache"), **kw)


def _grays(split) -> list[int]:
    assert (split.images == split.images[..., :1]).all()            # grayscale repeated to 3 channels
    return [int(round(img.mean())) for img in split.images]


# --------------------------------------------------------------------------- the vote rules

def test_vote_labels_official_majority_outcomes():
    votes = np.array([v for _, _, v in ROWS])
    assert vote_labels(votes, "majority").tolist() == [1, 0, -1, -1, -1, 2, 7, 2, 4, 6]  # row 5: name rule


def test_vote_labels_argmax_first_index_wins_ties_and_needs_an_emotion_vote():
    votes = np.array([v for _, _, v in ROWS])
    assert vote_labels(votes, "argmax").tolist() == [1, 0, 3, -1, 0, 2, 7, 2, 4, 6]


def test_vote_labels_majority_counts_unknown_and_nf_in_the_sum():
    assert vote_labels(np.array([[5, 0, 0, 0, 0, 0, 0, 0, 3, 2]]), "majority").tolist() == [-1]  # 5 !> 0.5*10
    assert vote_labels(np.array([[6, 0, 0, 0, 0, 0, 0, 0, 2, 2]]), "majority").tolist() == [0]


# --------------------------------------------------------------------------- FERPlus csv layout

def test_ferplus_csv_joins_by_row_and_applies_the_majority_rule(tmp_path):
    splits = load_splits(_cfg(tmp_path, "ferplus", write_ferplus_csv(tmp_path / "fer")), 16)
    assert splits.train.labels.tolist() == [1, 0, 7]
    assert _grays(splits.train) == [GRAY[0], GRAY[1], GRAY[6]]         # rows 0, 1, 6: joined by index
    assert splits.val.labels.tolist() == [2] and _grays(splits.val) == [GRAY[7]]
    assert splits.test.labels.tolist() == [4, 6] and _grays(splits.test) == [GRAY[8], GRAY[9]]
    assert splits.class_names == ("neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear",
                                  "contempt")
    assert splits.info["val_source"] == "official PublicTest"
    assert splits.info["dropped_empty_name"]["train"] == 1 and splits.info["dropped_by_rule"]["train"] == 3


def test_ferplus_csv_argmax_rule(tmp_path):
    splits = load_splits(_cfg(tmp_path, "ferplus", write_ferplus_csv(tmp_path / "fer"), ferplus_rule="argmax"), 8)
    assert splits.train.labels.tolist() == [1, 0, 3, 0, 7]            # the empty-name row stays dropped
    assert _grays(splits.train) == [GRAY[0], GRAY[1], GRAY[2], GRAY[4], GRAY[6]]


def test_ferplus_rule_changes_the_fingerprint(tmp_path):
    root = write_ferplus_csv(tmp_path / "fer")
    a = load_splits(_cfg(tmp_path, "ferplus", root), 8)
    b = load_splits(_cfg(tmp_path, "ferplus", root, ferplus_rule="argmax"), 8)
    assert a.fingerprint != b.fingerprint


def test_ferplus_read_from_csv_pixel_rows_says_exif_orientation_applied_is_not_read(tmp_path, caplog):
    # pixel rows carry no EXIF: the key changes nothing there, not even the fingerprint (no decode cached anew)
    root = write_ferplus_csv(tmp_path / "fer")
    with caplog.at_level("WARNING", logger="transfer_core.data.splits"):
        applied = load_splits(_cfg(tmp_path, "ferplus", root, exif_orientation="applied"), 8)
    assert "ferplus at " in caplog.text and ("data.exif_orientation=applied is not read: its images are pixel rows of "
                                             "fer2013.csv, which carry no EXIF orientation") in caplog.text
    assert applied.fingerprint == load_splits(_cfg(tmp_path, "ferplus", root), 8).fingerprint


def test_ferplus_ignores_val_fraction_and_keeps_train_whole(tmp_path):
    splits = load_splits(_cfg(tmp_path, "ferplus", write_ferplus_csv(tmp_path / "fer"), val_fraction=0.5), 8)
    assert len(splits.train) == 3 and len(splits.val) == 1


def test_ferplus_row_count_mismatch_is_an_error(tmp_path):
    root = write_ferplus_csv(tmp_path / "fer")
    write_fer2013(root / "fer2013.csv", ROWS[:-1])
    with pytest.raises(DataError, match=r"fer2013new.csv has 10 data rows but .*fer2013.csv has 9: expected the "
                                        r"same rows in the same order"):
        check_layout(_cfg(tmp_path, "ferplus", root))


def test_ferplus_usage_mismatch_names_both_lines(tmp_path):
    root = write_ferplus_csv(tmp_path / "fer")
    rows = list(ROWS)
    rows[7] = ("Training", *rows[7][1:])
    write_fer2013(root / "fer2013.csv", rows)
    with pytest.raises(DataError, match=r"fer2013new.csv line 9: Usage 'PublicTest' differs from 'Training' at "
                                        r".*fer2013.csv line 9"):
        check_layout(_cfg(tmp_path, "ferplus", root))


def test_ferplus_malformed_votes_name_file_and_line(tmp_path):
    root = write_ferplus_csv(tmp_path / "fer")
    text = (root / "fer2013new.csv").read_text().splitlines()
    text[3] = text[3].replace(",0,", ",x,", 1)
    (root / "fer2013new.csv").write_text("\n".join(text) + "\n")
    with pytest.raises(DataError, match=r"fer2013new.csv line 4: votes .* are malformed: expected 10 non-negative"):
        check_layout(_cfg(tmp_path, "ferplus", root))


def test_a_row_of_one_field_is_counted_in_the_singular(tmp_path):
    # a votes row saved with semicolons reads as one field: "1 fields" read as a slip
    root = write_ferplus_csv(tmp_path / "fer")
    text = (root / "fer2013new.csv").read_text().splitlines()
    text[3] = text[3].replace(",", ";")
    (root / "fer2013new.csv").write_text("\n".join(text) + "\n")
    with pytest.raises(DataError, match=r"fer2013new.csv line 4: 1 field: expected 12 "):
        check_layout(_cfg(tmp_path, "ferplus", root))


def test_ferplus_missing_files_are_named(tmp_path):
    (tmp_path / "fer").mkdir()
    with pytest.raises(DataError, match=r"FERPlus not found .*fer2013.csv.*fer2013new.csv.*FER2013Train"):
        check_layout(_cfg(tmp_path, "ferplus", tmp_path / "fer"))


def test_ferplus_with_one_of_its_two_csv_files_names_the_one_found_and_the_one_missing(tmp_path):
    # the Kaggle FER2013 download alone is taken for FERPlus often; the message listed both files as missing
    pixels_only = tmp_path / "kaggle"
    write_fer2013(pixels_only / "icml_face_data.csv", icml=True)
    with pytest.raises(DataError, match=r"FERPlus not found .*\. Found \S*kaggle/icml_face_data.csv, the FER2013 "
                                        r"pixels, but not fer2013new.csv, the FER\+ votes \(microsoft/FERPlus"):
        check_layout(_cfg(tmp_path, "ferplus", pixels_only))
    votes_only = write_ferplus_csv(tmp_path / "fer")
    (votes_only / "fer2013.csv").unlink()
    with pytest.raises(DataError, match=r"\. Found \S*fer/fer2013new.csv, the FER\+ votes, but not the FER2013 "
                                        r"pixels they are joined to: put fer2013.csv \(or Kaggle's icml_face_data.csv\)"):
        check_layout(_cfg(tmp_path, "ferplus", votes_only))


def test_ferplus_bad_pixels_name_the_line(tmp_path):
    root = write_ferplus_csv(tmp_path / "fer")
    lines = (root / "fer2013.csv").read_text().splitlines()
    lines[2] = lines[2].replace(" 20", "", 5)
    (root / "fer2013.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"fer2013.csv line 3: pixels has 2299 values: expected 2304"):
        check_layout(_cfg(tmp_path, "ferplus", root))


def test_fer2013_pixels_missing_a_value_behind_a_double_space_are_named_by_the_check_not_first_by_the_decode(tmp_path):
    # 2,303 values with 2,303 spaces (one doubled) passed check_layout (and `sweeps run`'s checks), counted by their
    # spaces, and failed only when decoded
    path = write_fer2013(tmp_path / "fer" / "fer2013.csv")
    lines = path.read_text().splitlines()
    lines[2] = lines[2].replace(" 20 20", "  20", 1)
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"fer2013.csv line 3: pixels has 2303 values: expected 2304"):
        check_layout(_cfg(tmp_path, "fer2013", tmp_path / "fer"))


# --------------------------------------------------------------------------- FERPlus PNG layout

@pytest.mark.parametrize("box", [True, False])
def test_ferplus_png_folders_with_label_csv(tmp_path, box):
    splits = load_splits(_cfg(tmp_path, "ferplus", write_ferplus_png(tmp_path / "fer", box=box)), 16)
    assert splits.train.labels.tolist() == [1, 0, 7] and _grays(splits.train) == [GRAY[0], GRAY[1], GRAY[6]]
    assert splits.val.labels.tolist() == [2] and splits.test.labels.tolist() == [4, 6]
    assert splits.info["layout"] == "png folders + label.csv"


def test_ferplus_png_missing_label_csv_is_named(tmp_path):
    root = write_ferplus_png(tmp_path / "fer")
    (root / "FER2013Test" / "label.csv").unlink()
    with pytest.raises(DataError, match=r"FER2013Test/label.csv does not exist"):
        check_layout(_cfg(tmp_path, "ferplus", root))


def test_ferplus_png_malformed_row_names_file_and_line(tmp_path):
    root = write_ferplus_png(tmp_path / "fer")
    with open(root / "FER2013Valid" / "label.csv", "a") as f:
        f.write("img99.png,1,2,3\n")
    with pytest.raises(DataError, match=r"FER2013Valid/label.csv line 2: .* is malformed"):
        check_layout(_cfg(tmp_path, "ferplus", root))


def test_ferplus_png_missing_image_is_named(tmp_path):
    root = write_ferplus_png(tmp_path / "fer")
    (root / "FER2013Train" / "img06.png").unlink()
    with pytest.raises(DataError, match=r"img06.png \(listed in FER2013Train/label.csv line 6\) does not exist"):
        check_layout(_cfg(tmp_path, "ferplus", root))


def _clone_of_the_ferplus_repository(root: Path) -> Path:
    """microsoft/FERPlus as cloned: data/FER2013*/label.csv without a single PNG, fer2013new.csv at the top."""
    png = write_ferplus_png(root / "png")
    for folder in ("FER2013Train", "FER2013Valid", "FER2013Test"):
        (root / "data" / folder).mkdir(parents=True, exist_ok=True)
        (png / folder / "label.csv").replace(root / "data" / folder / "label.csv")
    shutil.rmtree(root / "png")
    return root


def test_ferplus_in_a_clone_of_its_repository_reads_the_csvs_beside_its_label_files(tmp_path):
    # the repository ships data/FER2013*/label.csv; taking them for the PNG layout refused a valid CSV layout
    root = write_ferplus_csv(_clone_of_the_ferplus_repository(tmp_path / "FERPlus"))
    splits = load_splits(_cfg(tmp_path, "ferplus", root), 16)
    assert splits.info["layout"] != "png folders + label.csv"
    assert splits.train.labels.tolist() == [1, 0, 7] and splits.test.labels.tolist() == [4, 6]


def test_ferplus_label_files_without_images_or_csvs_say_both_ways_out(tmp_path):
    root = _clone_of_the_ferplus_repository(tmp_path / "FERPlus")
    with pytest.raises(DataError, match=r"data/FER2013Train holds label.csv but no PNG image .*generate_training_data"
                                        r"\.py, or put fer2013\.csv beside fer2013new\.csv"):
        check_layout(_cfg(tmp_path, "ferplus", root))


# --------------------------------------------------------------------------- FER2013

@pytest.mark.parametrize("icml", [False, True])
def test_fer2013_splits_by_usage_with_its_own_labels(tmp_path, icml):
    name = "icml_face_data.csv" if icml else "fer2013.csv"
    emotions = [3, 0, 6, 1, 2, 5, 4, 0, 1, 2]
    write_fer2013(tmp_path / "fer" / name, emotions=emotions, icml=icml)
    splits = load_splits(_cfg(tmp_path, "fer2013", tmp_path / "fer"), 12)
    assert splits.train.labels.tolist() == emotions[:7] and _grays(splits.train) == GRAY[:7]
    assert splits.val.labels.tolist() == [0] and splits.test.labels.tolist() == [1, 2]
    assert splits.class_names == ("Angry", "Disgust", "Fear", "Happy", "Sad", "Surprise", "Neutral")
    assert splits.info["val_source"] == "official PublicTest"


def test_fer2013_without_publictest_rows_carves_validation_from_train_and_says_why(tmp_path):
    # an empty official split was taken as the validation set ("official PublicTest", 0 images): a search
    # on val_acc was refused, with advice (a larger val_fraction) that changed nothing
    rows = ([r for r in ROWS if r[0] == "Training"] * 2)[:9] + [r for r in ROWS if r[0] == "PrivateTest"][:1]
    write_fer2013(tmp_path / "fer" / "fer2013.csv", rows, emotions=[0] * 9 + [1])
    splits = load_splits(_cfg(tmp_path, "fer2013", tmp_path / "fer", val_fraction=0.25), 8)
    assert (len(splits.train), len(splits.val), len(splits.test)) == (7, 2, 1)
    assert splits.info["val_source"] == ("carved from train (stratified, fraction 0.25, seed 0); its own validation "
                                         "split (official PublicTest) has no image")


def test_fer2013_csv_in_a_fer2013_subfolder_is_found(tmp_path):
    write_fer2013(tmp_path / "data" / "fer2013" / "fer2013.csv")
    assert len(load_splits(_cfg(tmp_path, "fer2013", tmp_path / "data"), 8).test) == 2


def test_fer2013_unknown_emotion_names_line(tmp_path):
    write_fer2013(tmp_path / "fer" / "fer2013.csv", emotions=[0, 1, 2, 7, 0, 0, 0, 0, 0, 0])
    with pytest.raises(DataError, match=r"fer2013.csv line 5: emotion '7' is unknown: expected an integer 0..6"):
        check_layout(_cfg(tmp_path, "fer2013", tmp_path / "fer"))


def test_fer2013_unknown_usage_names_line(tmp_path):
    rows = list(ROWS)
    rows[2] = ("Validation", *rows[2][1:])
    write_fer2013(tmp_path / "fer" / "fer2013.csv", rows)
    with pytest.raises(DataError, match=r"line 4: Usage 'Validation' is unknown: expected one of Training, "
                                        r"PublicTest, PrivateTest"):
        check_layout(_cfg(tmp_path, "fer2013", tmp_path / "fer"))


def test_fer2013_header_without_pixels_is_an_error(tmp_path):
    (tmp_path / "fer").mkdir()
    (tmp_path / "fer" / "fer2013.csv").write_text("emotion,Usage\n0,Training\n")
    with pytest.raises(DataError, match=r"line 1: header lacks column\(s\) pixels \('emotion,Usage'\)"):
        check_layout(_cfg(tmp_path, "fer2013", tmp_path / "fer"))


def test_fer2013_without_a_header_says_so_without_printing_a_rows_pixels(tmp_path):
    # the message held the whole first row: 2304 pixel values, 8,000 characters on one line
    path = write_fer2013(tmp_path / "fer" / "fer2013.csv")
    path.write_text(path.read_text().split("\n", 1)[1])
    with pytest.raises(DataError, match=r"line 1: is a data row, not a header \('0,10 10 10 10 10 10 10\.\.\.,Training'\)"
                                        r": expected a header with emotion, pixels, Usage as its first line") as e:
        check_layout(_cfg(tmp_path, "fer2013", tmp_path / "fer"))
    assert len(str(e.value)) < 300


def test_fer2013_pixel_out_of_range_is_a_decode_error(tmp_path):
    path = write_fer2013(tmp_path / "fer" / "fer2013.csv")
    text = path.read_text().replace(" 30 30", " 30 300", 1)
    path.write_text(text)
    with pytest.raises(DataError, match=r"fer2013.csv line 4: pixels are not 2304 integers in 0..255"):
        load_splits(_cfg(tmp_path, "fer2013", tmp_path / "fer"), 8)


@pytest.mark.parametrize("encoding", ["utf-16", "latin-1"])   # Excel's "Unicode text"; an accent appended
def test_csvs_not_saved_as_utf8_are_named(tmp_path, encoding):
    fer = write_fer2013(tmp_path / "fer" / "fer2013.csv")
    fer.write_bytes((fer.read_text() + "\u00e9").encode(encoding))
    with pytest.raises(DataError, match=r"fer2013.csv: not UTF-8 text .*: expected a CSV file saved as UTF-8"):
        check_layout(_cfg(tmp_path, "fer2013", tmp_path / "fer"))
    root = write_ferplus_png(tmp_path / "plus")
    label = root / "FER2013Train" / "label.csv"
    label.write_bytes((label.read_text() + "\u00e9").encode(encoding))
    with pytest.raises(DataError, match=r"FER2013Train/label.csv: not UTF-8 text"):
        check_layout(_cfg(tmp_path, "ferplus", root))


def test_fer2013_missing_csv_is_named(tmp_path):
    (tmp_path / "fer").mkdir()
    with pytest.raises(DataError, match=r"FER2013 CSV not found .*fer2013.csv \(or icml_face_data.csv"):
        check_layout(_cfg(tmp_path, "fer2013", tmp_path / "fer"))


@pytest.mark.parametrize("dataset", ["fer2013", "ferplus"])
def test_the_kaggle_challenges_train_and_test_csv_alone_say_why_they_cannot_serve_and_what_can(tmp_path, dataset):
    # torchvision 0.12-0.18 read these two: train.csv holds the Training rows only, test.csv no labels
    root = tmp_path / "fer"
    (root / "fer2013").mkdir(parents=True)
    (root / "fer2013" / "train.csv").write_text(f"emotion,pixels\n0,{_pixels(1)}\n")
    (root / "fer2013" / "test.csv").write_text(f"pixels\n{_pixels(2)}\n")
    with pytest.raises(DataError, match=r"not found .*Found .*fer2013/train.csv, .*fer2013/test.csv: .*Training rows "
                                        r".*test.csv no labels.*Download icml_face_data.csv"):
        check_layout(_cfg(tmp_path, dataset, root))


def write_ferplus_2016_csv(root):
    """The FERPlus CSV layout with the first, 2016 fer2013new.csv: no 'Image name' column."""
    root = write_ferplus_csv(root)
    with open(root / "fer2013new.csv", newline="") as f:
        rows = list(csv.reader(f))
    with open(root / "fer2013new.csv", "w", newline="") as f:
        csv.writer(f).writerows([row[:1] + row[2:] for row in rows])
    return root


def test_ferplus_2016_csv_without_image_names_is_read_and_warned_of_as_keeping_the_rows_of_empty_name(tmp_path,
                                                                                                     caplog):
    # the first fer2013new.csv had no 'Image name' column: the rows the official scripts drop for an empty name
    # cannot be told, and were read as any other without a word (split sizes not the official ones)
    root = write_ferplus_2016_csv(tmp_path / "fer")
    with caplog.at_level("WARNING", logger="transfer_core.data.ferplus"):
        splits = load_splits(_cfg(tmp_path, "ferplus", root), 8)
    assert splits.train.labels.tolist() == [1, 0, 2, 7]              # row 5 (empty name in the current file) read
    assert "has no 'Image name' column (the first, 2016 version of fer2013new.csv): the rows the official " \
           "generate_training_data.py drops for an empty name" in caplog.text
    assert splits.info["image_names"].startswith("none (the 2016 fer2013new.csv)")
    caplog.clear()
    with caplog.at_level("WARNING", logger="transfer_core.data.ferplus"):
        load_splits(_cfg(tmp_path, "ferplus", write_ferplus_csv(tmp_path / "current")), 8)
    assert "Image name" not in caplog.text


def test_ferplus_png_label_csv_listing_an_image_twice_reads_it_once_by_its_last_line_and_says_so(tmp_path, caplog):
    # a label.csv written from fer2013new.csv keeps its duplicated names (fer0006953, ...): one PNG, the last row's
    # (generate_training_data.py overwrites it), was read twice, once with the other row's votes as its label
    root = write_ferplus_png(tmp_path / "fer")
    label_csv = root / "FER2013Train" / "label.csv"
    first = label_csv.read_text().splitlines()[0]                    # img00.png: happiness (1)
    label_csv.write_text(label_csv.read_text() + first.replace(",0,10,0,", ",10,0,0,") + "\n")   # again: neutral
    with caplog.at_level("WARNING", logger="transfer_core.data.ferplus"):
        splits = load_splits(_cfg(tmp_path, "ferplus", root), 8)
    assert splits.train.labels.tolist() == [0, 7, 0] and _grays(splits.train) == [GRAY[1], GRAY[6], GRAY[0]]
    assert "FER2013Train/label.csv lists 1 image more than once (first: img00.png, at lines 1, 7): one PNG each, " \
           "read once, with the votes of its last line" in caplog.text
    assert splits.info["listed_twice"] == {"train": 1} and splits.info["dropped_by_rule"]["train"] == 3
    # a decode cached while such a file was read twice is not served: the fingerprint differs from the one it had
    from transfer_core.data.base import get_source

    cfg = _cfg(tmp_path, "ferplus", root)
    assert get_source(cfg).scan(cfg).params == {"rule": "majority", "listed_twice": "read once"}
    plain = _cfg(tmp_path, "ferplus", write_ferplus_png(tmp_path / "plain"))
    assert get_source(plain).scan(plain).params == {"rule": "majority"}, "a label.csv without: as before"


def test_ferplus_split_sizes_other_than_the_official_files_give_are_warned_of(tmp_path, caplog):
    # a label file cut short, edited or of another version was read without a word (reference/datasets.md §2)
    with caplog.at_level("WARNING", logger="transfer_core.data.ferplus"):
        splits = load_splits(_cfg(tmp_path, "ferplus", write_ferplus_png(tmp_path / "fer")), 8)
    assert ("FERPlus (png folders + label.csv): 3 / 1 / 2 train / val / test images where the official files read by "
            "the majority rule give 25,045 / 3,191 / 3,137 (reference/datasets.md)") in caplog.text
    assert splits.info["differs_from_official"]["sizes"].startswith("3 / 1 / 2 train / val / test images")


def test_ferplus_official_split_sizes_are_not_warned_of():
    from transfer_core.data.base import SplitPlan
    from transfer_core.data.ferplus import OFFICIAL_SIZES, _sizes_note

    def plans(sizes):
        return {split: SplitPlan(labels=np.zeros(n, np.int64), origins=[]) for split, n in zip(("train", "val", "test"),
                                                                                              sizes)}

    for (layout, rule), sizes in OFFICIAL_SIZES.items():
        assert _sizes_note(layout, rule, plans(sizes)) == {}
    assert _sizes_note("png folders + label.csv", "argmax", plans((1, 1, 1))) == {}, "not counted: nothing to say"
    assert "25,060 / 3,199 / 3,153" in _sizes_note("fer2013.csv + fer2013new.csv", "majority",
                                                   plans((25060, 3199, 3152)))["sizes"]


# --------------------------------------------------------------------------- whitespace-only lines

def _insert_lines(path: Path, at: int, lines: list[str], end: list[str] = ()) -> None:
    """Put `lines` before physical line `at` (1-based) and `end` after the last line of a CSV file."""
    text = path.read_text().splitlines()
    path.write_text("\n".join(text[:at - 1] + lines + text[at - 1:] + list(end)) + "\n")


def test_fer2013_whitespace_only_lines_are_skipped_counted_and_one_between_rows_warned_of_once(tmp_path, caplog):
    # blank lines at the end of a CSV edited by hand were "1 field: expected 3", an error
    emotions = [3, 0, 6, 1, 2, 5, 4, 0, 1, 2]
    path = write_fer2013(tmp_path / "fer" / "fer2013.csv", emotions=emotions)
    _insert_lines(path, 4, ["   ", "\t"], end=["  ", ""])
    with caplog.at_level("WARNING", logger="transfer_core.data.fer2013"):
        splits = load_splits(_cfg(tmp_path, "fer2013", tmp_path / "fer"), 8)
    assert splits.train.labels.tolist() == emotions[:7] and _grays(splits.train) == GRAY[:7]   # rows, not lines
    assert _grays(splits.test) == GRAY[8:]
    assert splits.info["blank_lines"] == 4
    said = [r.getMessage() for r in caplog.records if "whitespace-only" in r.getMessage()]
    assert said == [f"{path}: 2 whitespace-only lines between data rows (first: line 4) are skipped (and 2 at the "
                    "end): the data rows are read as if they were not there"]


def test_fer2013_whitespace_only_lines_at_the_end_alone_are_not_warned_of(tmp_path, caplog):
    path = write_fer2013(tmp_path / "fer" / "fer2013.csv")
    _insert_lines(path, 12, [], end=["   ", "   "])
    with caplog.at_level("WARNING", logger="transfer_core.data.fer2013"):
        splits = load_splits(_cfg(tmp_path, "fer2013", tmp_path / "fer"), 8)
    assert len(splits.train) + len(splits.val) + len(splits.test) == 10 and splits.info["blank_lines"] == 2
    assert "whitespace-only" not in caplog.text


def test_fer2013_row_of_text_among_blank_lines_is_still_an_error_naming_the_line(tmp_path):
    path = write_fer2013(tmp_path / "fer" / "fer2013.csv")
    _insert_lines(path, 4, ["  ", " stray text "])
    with pytest.raises(DataError, match=r"fer2013.csv line 5: 1 field: expected 3 \(emotion,pixels,Usage\)"):
        check_layout(_cfg(tmp_path, "fer2013", tmp_path / "fer"))


def test_ferplus_whitespace_only_lines_in_either_csv_keep_the_row_join(tmp_path):
    # a blank line in fer2013.csv alone: the files are joined by data row, not by line, so votes stay with pixels
    root = write_ferplus_csv(tmp_path / "fer")
    _insert_lines(root / "fer2013.csv", 3, [" "], end=[" "])
    _insert_lines(root / "fer2013new.csv", 9, ["\t"])
    splits = load_splits(_cfg(tmp_path, "ferplus", root), 16)
    assert splits.train.labels.tolist() == [1, 0, 7] and _grays(splits.train) == [GRAY[0], GRAY[1], GRAY[6]]
    assert _grays(splits.test) == [GRAY[8], GRAY[9]] and splits.test.labels.tolist() == [4, 6]


# --------------------------------------------------------------------------- row order

def _write_rows(path: Path, header: list[str], rows: list[list]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        csv.writer(f).writerows([header, *rows])


def _agreeing_ferplus(root: Path, order=None) -> list[tuple]:
    """A FERPlus pair of 230 Training, 10 PublicTest and 10 PrivateTest rows whose FER+ votes give each image its
    FER2013 label (7 votes) and neutral 3: rows (usage, emotion, gray, votes). fer2013.csv is written in `order`
    (indices; within a split), fer2013new.csv as the rows are."""
    from transfer_core.data.ferplus import FER2013_AS_VOTE

    rows = []
    for i in range(250):
        usage = "Training" if i < 230 else "PublicTest" if i < 240 else "PrivateTest"
        emotion = (i * 3) % 7
        votes = [0] * 10
        votes[FER2013_AS_VOTE[emotion]] += 7
        votes[0] += 3
        rows.append((usage, emotion, i, votes))
    order = range(len(rows)) if order is None else order
    _write_rows(root / "fer2013.csv", ["emotion", "pixels", "Usage"],
                [[rows[i][1], _pixels(rows[i][2]), rows[i][0]] for i in order])
    _write_rows(root / "fer2013new.csv", NEW_HEADER,
                [[u, f"fer{i:07d}.png", *v] for i, (u, _, _, v) in enumerate(rows)])
    return rows


def test_ferplus_fer2013_csv_sorted_within_a_split_is_warned_of_as_out_of_order_with_fer2013new(tmp_path, caplog):
    # joined by row index, a fer2013.csv sorted by emotion within Training passed the Usage check: every image
    # silently got another image's votes as its label
    rows = _agreeing_ferplus(tmp_path / "ok")
    with caplog.at_level("WARNING", logger="transfer_core.data.ferplus"):
        ok = load_splits(_cfg(tmp_path, "ferplus", tmp_path / "ok"), 8)
    assert "out of order" not in caplog.text and "rows_out_of_order" not in ok.info
    order = sorted(range(230), key=lambda i: rows[i][1]) + list(range(230, 250))
    _agreeing_ferplus(tmp_path / "sorted", order)
    with caplog.at_level("WARNING", logger="transfer_core.data.ferplus"):
        splits = load_splits(_cfg(tmp_path, "ferplus", tmp_path / "sorted"), 8)
    assert re.search(r"FERPlus: .*sorted/fer2013.csv and .*sorted/fer2013new.csv look out of order: \d+ % of its 230 "
                     r"Training rows have a FER\+ vote for their FER2013 emotion, near what unrelated rows give "
                     r"\(\d+ %\);"
                     r".*joined by row index, so a file sorted or shuffled within a split gives each image another's "
                     r"votes", caplog.text), caplog.text
    assert list(splits.info["rows_out_of_order"]) == ["train"]
    assert splits.fingerprint != ok.fingerprint        # the cache holds no decode of the other order to serve


def test_ferplus_both_csvs_reordered_alike_are_read_without_a_warning_and_keep_their_labels(tmp_path, caplog):
    from transfer_core.data.ferplus import FER2013_AS_VOTE

    order = list(reversed(range(230))) + list(range(230, 250))
    rows = _agreeing_ferplus(tmp_path / "fer", order=order)
    # fer2013new.csv in the same (reversed) order: still one row order
    _write_rows(tmp_path / "fer" / "fer2013new.csv", NEW_HEADER,
                [[rows[i][0], f"fer{i:07d}.png", *rows[i][3]] for i in order])
    with caplog.at_level("WARNING", logger="transfer_core.data.ferplus"):
        splits = load_splits(_cfg(tmp_path, "ferplus", tmp_path / "fer"), 8)
    assert "out of order" not in caplog.text
    by_gray = {gray: FER2013_AS_VOTE[emotion] for usage, emotion, gray, _ in rows}
    assert all(by_gray[g] == label for g, label in zip(_grays(splits.train), splits.train.labels.tolist()))


def test_fer2013_reordered_within_a_split_reads_the_same_images_and_labels_under_another_fingerprint(tmp_path):
    # FER2013 alone takes each label from its image's own row: nothing but the order of the items depends on the
    # row order, and the fingerprint (the CSV's bytes) tells the two files apart: no cached decode of one serves
    # the other
    emotions = [3, 0, 6, 1, 2, 5, 4, 0, 1, 2]
    items = [[emotions[i], _pixels(GRAY[i]), usage] for i, (usage, _, _) in enumerate(ROWS)]
    _write_rows(tmp_path / "a" / "fer2013.csv", ["emotion", "pixels", "Usage"], items)
    _write_rows(tmp_path / "b" / "fer2013.csv", ["emotion", "pixels", "Usage"],
                items[6::-1] + items[7:8] + items[9:7:-1])              # Training and PrivateTest rows reversed
    a = load_splits(_cfg(tmp_path, "fer2013", tmp_path / "a"), 8)
    b = load_splits(_cfg(tmp_path, "fer2013", tmp_path / "b"), 8)
    for split in ("train", "val", "test"):
        pairs = [sorted(zip(_grays(getattr(s, split)), getattr(s, split).labels.tolist())) for s in (a, b)]
        assert pairs[0] == pairs[1], split
    assert sorted(zip(_grays(a.train), a.train.labels.tolist())) == sorted(zip(GRAY[:7], emotions[:7]))
    assert _grays(b.train) == GRAY[6::-1]
    assert a.fingerprint != b.fingerprint


def test_ferplus_2016_csv_is_one_warning_that_gives_the_split_sizes_and_the_way_out(tmp_path, caplog):
    # the missing 'Image name' column and the split sizes it causes were two warnings for one cause
    root = write_ferplus_2016_csv(tmp_path / "fer")
    with caplog.at_level("WARNING", logger="transfer_core.data.ferplus"):
        splits = load_splits(_cfg(tmp_path, "ferplus", root), 8)
    said = [r.getMessage() for r in caplog.records if r.name == "transfer_core.data.ferplus"]
    assert len(said) == 1, said
    assert re.search(r"has no 'Image name' column \(the first, 2016 version of fer2013new.csv\).*so the split sizes "
                     r"differ from the official ones \(4 / 1 / 2 train / val / test images where the official files "
                     r"read by the majority rule give 25,060 / 3,199 / 3,153 \(reference/datasets.md\)\) and results "
                     r"do not compare with those reported on FERPlus. Download the current fer2013new.csv",
                     said[0]), said[0]
    assert splits.info["differs_from_official"]["sizes"].startswith("4 / 1 / 2 train / val / test images")


def test_ferplus_png_images_no_label_csv_lists_are_warned_of_once(tmp_path, caplog):
    root = write_ferplus_png(tmp_path / "fer")
    for folder, name in (("FER2013Train", "new1.png"), ("FER2013Test", "new2.png")):
        Image.fromarray(np.zeros((48, 48), np.uint8), mode="L").save(root / folder / name)
    with caplog.at_level("WARNING", logger="transfer_core.data.ferplus"):
        splits = load_splits(_cfg(tmp_path, "ferplus", root), 8)
    said = [r.getMessage() for r in caplog.records if "listed in no label file" in r.getMessage()]
    assert said == ["FERPlus: 2 image files in its image folders are listed in no label file (label.csv of its "
                    "folder) and are not read (FER2013Train/new1.png, FER2013Test/new2.png): a label file older than "
                    "the images? Regenerate it to read them (a list of a subset, on purpose: nothing to do)"]
    assert splits.info["not_listed"] == 2
    caplog.clear()
    with caplog.at_level("WARNING", logger="transfer_core.data.ferplus"):   # rows dropped by the rule are listed
        load_splits(_cfg(tmp_path, "ferplus", write_ferplus_png(tmp_path / "plain")), 8)
    assert "listed in no label file" not in caplog.text
