"""RAF-DB on a miniature copy of its official layout (reference/datasets.md §1, §7)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from transfer_core.config import DataConfig
from transfer_core.data import DataError, check_layout, load_splits

# a distinct colour per file label 1..7, so that a decoded image shows which label file line it came from
COLOURS = {1: (250, 0, 0), 2: (0, 250, 0), 3: (0, 0, 250), 4: (250, 250, 0), 5: (0, 250, 250),
           6: (250, 0, 250), 7: (128, 128, 128)}
ENTRIES = [("train_00001.jpg", 5), ("train_00002.jpg", 1), ("train_00003.jpg", 7), ("train_00004.jpg", 4),
           ("test_0001.jpg", 2), ("test_0002.jpg", 6), ("test_0003.jpg", 3)]


def make_rafdb(root: Path, entries=ENTRIES, lists: bool = False) -> Path:
    (root / "EmoLabel").mkdir(parents=True)
    aligned = root / "Image" / "aligned"
    aligned.mkdir(parents=True)
    for name, label in entries:
        Image.new("RGB", (100, 100), COLOURS[label]).save(aligned / (name[:-4] + "_aligned.jpg"), quality=95)
    if lists:
        for split in ("train", "test"):
            lines = [f"{n[:-4]}_aligned.jpg {lab}" for n, lab in entries if n.startswith(split)]
            (root / "EmoLabel" / f"{split}.txt").write_text("\n".join(lines) + "\n")
    else:   # upstream: single spaces, LF, no newline after the last line
        (root / "EmoLabel" / "list_patition_label.txt").write_text("\n".join(f"{n} {lab}" for n, lab in entries))
    return root


def _cfg(tmp_path, root: Path, **kw) -> DataConfig:
    kw.setdefault("val_fraction", 0.0)
    return DataConfig(dataset="rafdb", root=str(root), cache_dir=str(tmp_path / "cache"), **kw)


def _colour_label(image: np.ndarray) -> int:
    """The file label whose colour the (JPEG-approximate) image shows."""
    mean = image.reshape(-1, 3).mean(0)
    return min(COLOURS, key=lambda k: np.abs(mean - np.array(COLOURS[k])).sum())


def test_rafdb_partition_file_maps_names_and_subtracts_one(tmp_path):
    splits = load_splits(_cfg(tmp_path, make_rafdb(tmp_path / "raf")), 16)
    assert splits.train.labels.tolist() == [4, 0, 6, 3]                 # file labels 5 1 7 4, minus one
    assert splits.test.labels.tolist() == [1, 5, 2]
    for split in (splits.train, splits.test):                             # train_00001.jpg -> ..._aligned.jpg
        assert [_colour_label(img) - 1 for img in split.images] == split.labels.tolist()
    assert splits.class_names == ("Surprise", "Fear", "Disgust", "Happiness", "Sadness", "Anger", "Neutral")
    assert splits.train.images.shape == (4, 16, 16, 3) and splits.train.images.dtype == np.uint8


def test_rafdb_accepts_the_transfer_train_and_test_lists(tmp_path):
    splits = load_splits(_cfg(tmp_path, make_rafdb(tmp_path / "raf", lists=True)), 16)
    assert splits.train.labels.tolist() == [4, 0, 6, 3] and splits.test.labels.tolist() == [1, 5, 2]
    assert [_colour_label(img) - 1 for img in splits.test.images] == [1, 5, 2]
    assert splits.info["layout"] == "train.txt/test.txt lists"


def test_rafdb_val_is_carved_from_train(tmp_path):
    entries = [(f"train_{i:05d}.jpg", 1 + i % 2) for i in range(1, 21)] + [("test_0001.jpg", 1)]
    splits = load_splits(_cfg(tmp_path, make_rafdb(tmp_path / "raf", entries), val_fraction=0.2), 8)
    assert np.bincount(splits.val.labels).tolist() == [2, 2] and len(splits.train) == 16


def test_rafdb_missing_root_is_named(tmp_path):
    with pytest.raises(DataError, match=r"data.root '.*nowhere' does not exist"):
        check_layout(_cfg(tmp_path, tmp_path / "nowhere"))


def test_rafdb_missing_label_file_names_the_expected_file(tmp_path):
    root = make_rafdb(tmp_path / "raf")
    (root / "EmoLabel" / "list_patition_label.txt").unlink()
    with pytest.raises(DataError, match=r"label file not found .*expected EmoLabel/list_patition_label.txt"):
        check_layout(_cfg(tmp_path, root))


def test_rafdb_missing_image_folder_is_named(tmp_path):
    root = make_rafdb(tmp_path / "raf")
    (root / "Image" / "aligned").rename(root / "Image" / "other")
    with pytest.raises(DataError, match=r"Image/aligned does not exist"):
        check_layout(_cfg(tmp_path, root))


def test_rafdb_malformed_line_names_file_and_line(tmp_path):
    root = make_rafdb(tmp_path / "raf")
    path = root / "EmoLabel" / "list_patition_label.txt"
    path.write_text("train_00001.jpg 5\ntrain_00002.jpg,1\n")
    with pytest.raises(DataError, match=r"list_patition_label.txt line 2: 'train_00002.jpg,1' is malformed: "
                                        r"expected '<image name> <label>'"):
        check_layout(_cfg(tmp_path, root))


@pytest.mark.parametrize("bad", ["0", "8", "x"])
def test_rafdb_unknown_label_names_line_and_valid_range(tmp_path, bad):
    root = make_rafdb(tmp_path / "raf")
    (root / "EmoLabel" / "list_patition_label.txt").write_text(f"train_00001.jpg 5\ntest_0001.jpg {bad}")
    with pytest.raises(DataError, match=rf"line 2: label '{bad}' is unknown: expected an integer 1..7"):
        check_layout(_cfg(tmp_path, root))


def test_rafdb_name_without_split_prefix_is_an_error(tmp_path):
    root = make_rafdb(tmp_path / "raf")
    (root / "EmoLabel" / "list_patition_label.txt").write_text("train_00001.jpg 5\nval_0001.jpg 1")
    with pytest.raises(DataError, match=r"line 2: image name 'val_0001.jpg' has no split prefix"):
        check_layout(_cfg(tmp_path, root))


def test_rafdb_missing_image_names_it_and_its_line(tmp_path):
    root = make_rafdb(tmp_path / "raf")
    (root / "Image" / "aligned" / "test_0002_aligned.jpg").unlink()
    with pytest.raises(DataError, match=r"test_0002_aligned.jpg \(listed in EmoLabel/list_patition_label.txt "
                                        r"line 6\) does not exist"):
        check_layout(_cfg(tmp_path, root))


@pytest.mark.parametrize("suffix", [".JPG", ".png"])
def test_rafdb_images_under_another_extension_are_named_as_such_not_as_a_wrong_folder(tmp_path, suffix):
    # the folder was right and the advice was to look one folder deeper or shallower
    root = make_rafdb(tmp_path / "raf")
    for image in (root / "Image" / "aligned").glob("*.jpg"):
        image.rename(image.with_suffix(suffix))
    with pytest.raises(DataError, match=rf"test_0001_aligned.jpg \(listed in .* line 5\) does not exist, nor do "
                                        rf"{len(ENTRIES) - 1} more of the {len(ENTRIES)} listed, but "
                                        rf"test_0001_aligned\{suffix} does: expected the images under the names the "
                                        r"label file gives \(rename or convert them to .jpg\)"):
        check_layout(_cfg(tmp_path, root))


def test_rafdb_images_one_folder_too_deep_say_that_none_of_them_exists(tmp_path):
    # e.g. an archive unpacked to Image/aligned/aligned/: one missing file named alone hides the cause
    root = make_rafdb(tmp_path / "raf")
    aligned = root / "Image" / "aligned"
    (aligned / "aligned").mkdir()
    for image in aligned.glob("*.jpg"):
        image.rename(aligned / "aligned" / image.name)
    with pytest.raises(DataError, match=rf"does not exist, nor does any of the {len(ENTRIES)} listed images: "
                                        r"expected them under .*raf; are they one folder deeper or shallower"):
        check_layout(_cfg(tmp_path, root))
    (aligned / "aligned" / "train_00001_aligned.jpg").rename(aligned / "train_00001_aligned.jpg")
    with pytest.raises(DataError, match=rf"does not exist, nor do {len(ENTRIES) - 2} more of the {len(ENTRIES)} "
                                        r"listed: expected every image"):
        check_layout(_cfg(tmp_path, root))


def test_rafdb_undecodable_image_is_an_error_naming_it(tmp_path):
    root = make_rafdb(tmp_path / "raf")
    (root / "Image" / "aligned" / "train_00003_aligned.jpg").write_bytes(b"\xff\xd8 truncated")
    check_layout(_cfg(tmp_path, root))                                   # needs decoding to notice
    with pytest.raises(DataError, match=r"cannot decode image .*train_00003_aligned.jpg \(listed in "
                                        r"EmoLabel/list_patition_label.txt line 3\)"):
        load_splits(_cfg(tmp_path, root), 8)


def test_rafdb_duplicate_entry_is_an_error(tmp_path):
    root = make_rafdb(tmp_path / "raf")
    (root / "EmoLabel" / "list_patition_label.txt").write_text("train_00001.jpg 5\ntrain_00001.jpg 4\n"
                                                               "test_0001.jpg 2")
    with pytest.raises(DataError, match=r"line 2: image 'train_00001.jpg' is listed twice"):
        check_layout(_cfg(tmp_path, root))


def test_rafdb_without_test_entries_is_an_error(tmp_path):
    root = make_rafdb(tmp_path / "raf")
    (root / "EmoLabel" / "list_patition_label.txt").write_text("train_00001.jpg 5")
    with pytest.raises(DataError, match=r"no test images listed"):
        check_layout(_cfg(tmp_path, root))


@pytest.mark.parametrize("given", ["RAF-DB", "RAF-DB/basic/EmoLabel", "RAF-DB/basic/Image/aligned"])
def test_rafdb_folder_one_level_off_names_the_basic_folder(tmp_path, given):
    make_rafdb(tmp_path / "RAF-DB" / "basic")
    with pytest.raises(DataError, match=r"label file not found .*; \S*RAF-DB/basic is laid out as rafdb is: give "
                                        r"that folder \(--data rafdb=\S*RAF-DB/basic\)"):
        check_layout(_cfg(tmp_path, tmp_path / given))


def _add_aligned_224(root: Path, label: int = 7) -> None:
    """APViT's realigned set beside the official one: same names, 224 x 224, here all of one colour."""
    folder = root / "Image" / "aligned_224"
    folder.mkdir()
    for name, _ in ENTRIES:
        Image.new("RGB", (224, 224), COLOURS[label]).save(folder / (name[:-4] + "_aligned.jpg"), quality=95)


def test_rafdb_reads_apvits_aligned_224_images_when_asked_and_records_which_set(tmp_path):
    from transfer_core.data import fingerprint_of

    root = make_rafdb(tmp_path / "raf")
    _add_aligned_224(root)
    official, realigned = _cfg(tmp_path, root), _cfg(tmp_path, root, rafdb_images="aligned_224")
    splits = load_splits(realigned, 16)
    assert {_colour_label(image) for image in splits.train.images} == {7}   # read from aligned_224/
    assert splits.info["image_dir"] == "Image/aligned_224"
    assert load_splits(official, 16).info["image_dir"] == "Image/aligned"
    assert fingerprint_of(realigned, 16) != fingerprint_of(official, 16)


def test_rafdb_official_images_keep_the_fingerprint_they_had_before_the_image_set_could_be_chosen(tmp_path):
    # an invocation on RAF-DB recorded before data.rafdb_images existed must not read as changed data
    from transfer_core.data.base import get_source

    config = _cfg(tmp_path, make_rafdb(tmp_path / "raf"))
    assert get_source(config).scan(config).params == {}, "the fingerprint hashes a layout's params"


def test_rafdb_without_the_image_set_asked_for_names_the_one_there(tmp_path):
    root = make_rafdb(tmp_path / "raf")
    (root / "Image" / "aligned").rename(root / "Image" / "aligned_224")
    with pytest.raises(DataError, match=r"Image/aligned does not exist: .*holds aligned_224: choose it with "
                                        r"--set data.rafdb_images=aligned_224"):
        check_layout(_cfg(tmp_path, root))


def test_rafdb_image_set_must_be_one_there_is():
    from transfer_core.config import ConfigError

    with pytest.raises(ConfigError, match=r"data.rafdb_images='original' is invalid: expected one of aligned, "
                                          r"aligned_224"):
        DataConfig(rafdb_images="original")


def test_rafdb_reads_aligned_images_kept_under_the_names_the_partition_file_lists(tmp_path):
    # copies circulate whose Image/aligned/ holds train_00001.jpg: every image was reported missing, with the
    # advice to look one folder deeper or shallower
    root = make_rafdb(tmp_path / "raf")
    for image in (root / "Image" / "aligned").glob("*_aligned.jpg"):
        image.rename(image.with_name(image.name.replace("_aligned", "")))
    splits = load_splits(_cfg(tmp_path, root), 16)
    assert splits.train.labels.tolist() == [4, 0, 6, 3] and splits.test.labels.tolist() == [1, 5, 2]
    assert [_colour_label(img) - 1 for img in splits.train.images] == splits.train.labels.tolist()
    assert splits.info["image_names"] == "as listed, without the _aligned suffix"
    assert "image_names" not in load_splits(_cfg(tmp_path, make_rafdb(tmp_path / "official")), 16).info


def test_rafdb_official_names_win_where_both_are_there(tmp_path):
    root = make_rafdb(tmp_path / "raf")
    Image.new("RGB", (100, 100), COLOURS[7]).save(root / "Image" / "aligned" / "train_00001.jpg")   # label 5's name
    splits = load_splits(_cfg(tmp_path, root), 16)
    assert _colour_label(splits.train.images[0]) == 5 and "image_names" not in splits.info


def test_rafdb_without_aligned_folder_says_what_image_holds(tmp_path):
    root = make_rafdb(tmp_path / "raf")
    aligned = root / "Image" / "aligned"
    for image in aligned.iterdir():
        image.unlink()
    aligned.rmdir()
    (root / "Image" / "original").mkdir()
    with pytest.raises(DataError, match=r"Image/aligned does not exist: .*Image/original holds the uncropped "
                                        r"originals, which are not read"):
        check_layout(_cfg(tmp_path, root))
    (root / "Image" / "aligned.zip").write_bytes(b"PK")           # as RAF-DB ships it
    with pytest.raises(DataError, match=r"Image/aligned does not exist: .*Image/aligned.zip is there: unzip it "
                                        r"into \S*raf/Image\)"):
        check_layout(_cfg(tmp_path, root))


# --------------------------------------------------------------------------- the class-folder copy (Kaggle's)

def make_kaggle_tree(tree: Path, entries=ENTRIES, test_dir: str = "test") -> Path:
    """Kaggle's copy: DATASET/train/<file label>/train_00001_aligned.jpg, DATASET/test/..., no EmoLabel/."""
    for split in ("train", test_dir):
        for k in range(1, 8):
            (tree / split / str(k)).mkdir(parents=True)
    for name, label in entries:
        split = "train" if name.startswith("train") else test_dir
        Image.new("RGB", (100, 100), COLOURS[label]).save(tree / split / str(label) / (name[:-4] + "_aligned.jpg"),
                                                          quality=95)
    return tree


def test_rafdb_reads_kaggles_class_folders_with_the_official_classes_splits_and_labels(tmp_path):
    official = load_splits(_cfg(tmp_path, make_rafdb(tmp_path / "raf")), 16)
    kaggle = load_splits(_cfg(tmp_path, make_kaggle_tree(tmp_path / "kaggle" / "DATASET")), 16)
    assert kaggle.class_names == official.class_names                  # folder k is file label k: label k - 1
    assert kaggle.train.labels.tolist() == official.train.labels.tolist() == [4, 0, 6, 3]   # in the file's order
    assert kaggle.test.labels.tolist() == official.test.labels.tolist() == [1, 5, 2]
    assert [_colour_label(img) - 1 for img in kaggle.train.images] == kaggle.train.labels.tolist()
    assert official.info["layout"] == "partition file"
    assert kaggle.info["layout"] == "class folders train/1..7/ and test/1..7/"   # data.json says which was read
    assert kaggle.fingerprint != official.fingerprint


def test_rafdb_class_folders_carve_the_validation_split_the_official_layout_carves(tmp_path):
    entries = [(f"train_{i:05d}.jpg", 1 + i % 3) for i in range(1, 31)] + [("test_0001.jpg", 1), ("test_0002.jpg", 4)]
    official = load_splits(_cfg(tmp_path, make_rafdb(tmp_path / "raf", entries), val_fraction=0.3), 8)
    kaggle = load_splits(_cfg(tmp_path, make_kaggle_tree(tmp_path / "DATASET", entries), val_fraction=0.3), 8)
    assert kaggle.val.labels.tolist() == official.val.labels.tolist() and len(kaggle.val) == 9
    np.testing.assert_array_equal(kaggle.val.images, official.val.images)      # the same images, not just labels
    np.testing.assert_array_equal(kaggle.train.images, official.train.images)
    assert kaggle.info["val_source"] == official.info["val_source"] == ("carved from train (stratified, fraction "
                                                                        "0.3, seed 0)")


def test_rafdb_class_folders_pass_the_data_option_check(tmp_path):
    from search_spaces.data_option import parse_data_options

    tree = make_kaggle_tree(tmp_path / "DATASET")
    (choice,) = parse_data_options([f"rafdb={tree}"])
    assert (choice.name, choice.dataset, choice.root) == ("rafdb", "rafdb", str(tree))


def test_rafdb_class_folders_fingerprint_tells_an_image_moved_to_another_class(tmp_path):
    from transfer_core.data import fingerprint_of

    tree = make_kaggle_tree(tmp_path / "DATASET")
    before = fingerprint_of(_cfg(tmp_path, tree), 16)
    image = tree / "train" / "5" / "train_00001_aligned.jpg"
    image.rename(tree / "train" / "4" / image.name)                      # relabelled: another data set
    assert fingerprint_of(_cfg(tmp_path, tree), 16) != before


@pytest.mark.parametrize("given", ["kaggle", "kaggle/DATASET/train"])
def test_rafdb_kaggle_download_given_one_level_off_names_the_folder_to_give(tmp_path, given):
    # raf-db-dataset/ holds DATASET/ (and train_labels.csv): the folder to give is DATASET/
    make_kaggle_tree(tmp_path / "kaggle" / "DATASET")
    (tmp_path / "kaggle" / "train_labels.csv").write_text("image,label\ntrain_00001_aligned.jpg,5\n")
    with pytest.raises(DataError, match=r"\S*kaggle/DATASET is laid out as rafdb is: give that folder "
                                        r"\(--data rafdb=\S*kaggle/DATASET\)"):
        check_layout(_cfg(tmp_path, tmp_path / given))


def write_kaggle_csvs(folder: Path, entries=ENTRIES) -> None:
    """Kaggle's train_labels.csv and test_labels.csv (header image,label; file labels 1..7), as beside DATASET/."""
    for split in ("train", "test"):
        rows = [f"{name[:-4]}_aligned.jpg,{label}" for name, label in entries if name.startswith(split)]
        (folder / f"{split}_labels.csv").write_text("image,label\n" + "\n".join(rows) + "\n")


@pytest.mark.parametrize("beside", [True, False])   # Kaggle's: beside DATASET/; a copy may hold them in it
def test_rafdb_class_folders_that_agree_with_kaggles_label_files_are_read(tmp_path, caplog, beside):
    tree = make_kaggle_tree(tmp_path / "kaggle" / "DATASET")
    write_kaggle_csvs(tree.parent if beside else tree)
    with caplog.at_level("WARNING", logger="transfer_core.data.rafdb"):
        splits = load_splits(_cfg(tmp_path, tree), 16)
    assert splits.train.labels.tolist() == [4, 0, 6, 3] and "labels.csv" not in caplog.text


def test_rafdb_class_folder_that_kaggles_label_file_labels_otherwise_is_an_error_naming_both(tmp_path):
    # one image moved to another class folder: the folder is read as its label, the label file says another
    tree = make_kaggle_tree(tmp_path / "kaggle" / "DATASET")
    write_kaggle_csvs(tree.parent)
    (tree / "train" / "5" / "train_00001_aligned.jpg").rename(tree / "train" / "3" / "train_00001_aligned.jpg")
    with pytest.raises(DataError, match=r"\S*kaggle/train_labels.csv line 2: train_00001_aligned.jpg is labelled 5 "
                                        r"\(Sadness\), but RAF-DB class folders \S*DATASET hold it in train/3/ \(3, "
                                        r"Disgust\): expected each image in the class folder of its label.*1 image"):
        check_layout(_cfg(tmp_path, tree))


def test_rafdb_class_folders_holding_other_images_than_kaggles_label_file_lists_are_warned_of(tmp_path, caplog):
    tree = make_kaggle_tree(tmp_path / "kaggle" / "DATASET")
    write_kaggle_csvs(tree.parent, ENTRIES + [("test_0009.jpg", 4)])        # listed, not in test/
    (tree / "train" / "4" / "train_00004_aligned.jpg").unlink()             # in train_labels.csv, gone
    with caplog.at_level("WARNING", logger="transfer_core.data.rafdb"):
        splits = load_splits(_cfg(tmp_path, tree), 16)
    assert len(splits.train) == 3 and len(splits.test) == 3
    assert ("train_labels.csv lists 1 train image that train/ does not hold (train_00004_aligned.jpg)"
            in caplog.text)
    assert "test_labels.csv lists 1 test image that test/ does not hold (test_0009_aligned.jpg)" in caplog.text
    caplog.clear()
    Image.new("RGB", (100, 100), COLOURS[2]).save(tree / "test" / "2" / "test_0004_aligned.jpg")   # not listed
    with caplog.at_level("WARNING", logger="transfer_core.data.rafdb"):
        check_layout(_cfg(tmp_path, tree))
    assert "test/ holds 1 image that test_labels.csv does not list (test/2/test_0004_aligned.jpg)" in caplog.text


def test_rafdb_kaggle_label_file_of_another_form_is_warned_of_and_not_checked(tmp_path, caplog):
    tree = make_kaggle_tree(tmp_path / "kaggle" / "DATASET")
    (tree.parent / "train_labels.csv").write_text("name;emotion\ntrain_00001_aligned.jpg;2\n")
    with caplog.at_level("WARNING", logger="transfer_core.data.rafdb"):
        check_layout(_cfg(tmp_path, tree))
    assert ("train_labels.csv begins 'name;emotion': expected Kaggle's header 'image,label'; the class folders are "
            "not checked against it") in caplog.text
    caplog.clear()
    (tree.parent / "train_labels.csv").write_text("image,label\ntrain_00001_aligned.jpg,Sadness\n"
                                                  "train_00002_aligned.jpg,1\n")
    with caplog.at_level("WARNING", logger="transfer_core.data.rafdb"):
        check_layout(_cfg(tmp_path, tree))
    assert ("train_labels.csv has 1 row that is not 'image,label' with a label 1..7 (first: line 2): it is not "
            "checked") in caplog.text


def test_rafdb_neither_layout_names_both(tmp_path):
    with pytest.raises(DataError, match=r"RAF-DB label file not found under \S+: expected "
                                        r"EmoLabel/list_patition_label.txt .* or RAF-DB as class folders "
                                        r"train/1..7/ and test/1..7/ \(Kaggle's copy"):
        check_layout(_cfg(tmp_path, tmp_path))


def test_rafdb_folder_with_both_layouts_reads_the_official_one_and_says_so(tmp_path, caplog):
    from transfer_core.data import fingerprint_of

    root = make_rafdb(tmp_path / "raf")
    alone = fingerprint_of(_cfg(tmp_path, root), 16)
    make_kaggle_tree(root, [(name, 7) for name, _ in ENTRIES])             # all Neutral: told apart when decoded
    with caplog.at_level("WARNING", logger="transfer_core.data.rafdb"):
        splits = load_splits(_cfg(tmp_path, root), 16)
    assert splits.info["layout"] == "partition file" and splits.train.labels.tolist() == [4, 0, 6, 3]
    assert [_colour_label(img) - 1 for img in splits.train.images] == [4, 0, 6, 3]
    assert "holds both the official layout (EmoLabel/list_patition_label.txt) and class folders train/1..7/" in (
        caplog.text) and "reading the official layout" in caplog.text
    assert splits.info["not_read"].startswith("class folders train/1..7/")
    assert splits.fingerprint == alone                                     # the official layout's, unchanged


def test_rafdb_class_folders_with_a_test_image_in_train_are_refused(tmp_path):
    tree = make_kaggle_tree(tmp_path / "DATASET")
    (tree / "test" / "2" / "test_0001_aligned.jpg").rename(tree / "train" / "2" / "test_0001_aligned.jpg")
    with pytest.raises(DataError, match=r"RAF-DB class folder \S*DATASET/train holds 1 image of RAF-DB's test split "
                                        r"\(first: train/2/test_0001_aligned.jpg\): expected only train_\* images "
                                        r"in train/.*--data imagefolder=\S*DATASET"):
        check_layout(_cfg(tmp_path, tree))


def test_rafdb_class_folders_with_one_image_in_two_class_folders_are_refused(tmp_path):
    tree = make_kaggle_tree(tmp_path / "DATASET")
    Image.new("RGB", (100, 100)).save(tree / "train" / "3" / "train_00001.jpg")   # train_00001 is in 5/ already
    with pytest.raises(DataError, match=r"train/5/train_00001_aligned.jpg and train/3/train_00001.jpg are the same "
                                        r"RAF-DB image \(train image 1\): expected each image once"):
        check_layout(_cfg(tmp_path, tree))


def test_rafdb_class_folders_named_otherwise_are_refused_naming_what_is_expected(tmp_path):
    tree = make_kaggle_tree(tmp_path / "DATASET")
    for k in range(1, 8):
        (tree / "test" / str(k)).rename(tree / "test" / str(k - 1))
    with pytest.raises(DataError, match=r"RAF-DB class folders of \S*DATASET/test are 0, 1, 2, 3, 4, 5, 6: expected "
                                        r"exactly 1, 2, 3, 4, 5, 6, 7, named by RAF-DB's file labels \(1 Surprise.*"
                                        r"--data imagefolder="):
        check_layout(_cfg(tmp_path, tree))


def test_rafdb_class_folders_without_test_name_the_folder_expected(tmp_path):
    tree = make_kaggle_tree(tmp_path / "DATASET")
    for image in (tree / "test").rglob("*.jpg"):
        image.unlink()
    for k in range(1, 8):
        (tree / "test" / str(k)).rmdir()
    (tree / "test").rmdir()
    with pytest.raises(DataError, match=r"RAF-DB class folder \S*DATASET/test does not exist: expected "
                                        r"\S*DATASET/test/1..7/"):
        check_layout(_cfg(tmp_path, tree))


def test_rafdb_class_folders_read_posters_valid_folder_as_the_test_split(tmp_path):
    splits = load_splits(_cfg(tmp_path, make_kaggle_tree(tmp_path / "DATASET", test_dir="valid")), 16)
    assert splits.test.labels.tolist() == [1, 5, 2]
    assert splits.info["test_source"] == "the valid/ folder (no test/)"
    assert splits.info["layout"] == "class folders train/1..7/ and valid/1..7/"


def test_rafdb_class_folders_leave_a_val_folder_unread_and_say_so(tmp_path, caplog):
    tree = make_kaggle_tree(tmp_path / "DATASET")
    (tree / "val" / "1").mkdir(parents=True)
    with caplog.at_level("WARNING", logger="transfer_core.data.rafdb"):
        splits = load_splits(_cfg(tmp_path, tree, val_fraction=0.0), 16)
    assert "val/ not read: the splits read are train/ and test/ (RAF-DB has no official validation split" in (
        caplog.text)
    assert splits.info["folders_not_read"] == ["val"] and len(splits.test) == 3


def test_rafdb_class_folders_split_sizes_other_than_the_official_are_warned_of(tmp_path, caplog):
    with caplog.at_level("WARNING", logger="transfer_core.data.rafdb"):
        splits = load_splits(_cfg(tmp_path, make_kaggle_tree(tmp_path / "DATASET")), 16)
    assert "4 train images where RAF-DB's official partition has 12,271" in caplog.text
    assert "3 test images where RAF-DB's official partition has 3,068" in caplog.text
    assert set(splits.info["differs_from_official"]) == {"train", "test"}


def test_rafdb_count_note_tells_a_subset_from_moved_images_and_the_official_split():
    from transfer_core.data.rafdb import OFFICIAL_COUNTS, _count_note

    assert _count_note("train", list(OFFICIAL_COUNTS["train"])) is None
    moved = [1289, 282, 717, 4772, 1982, 705, 2524]                       # one Surprise image filed under Fear
    text, warn = _count_note("train", moved)
    assert warn and "the official 12,271 train images, but classes of other sizes (Surprise 1289 (official " \
                    "1290), Fear 282 (official 281))" in text
    few_missing = [1290, 281, 717, 4770, 1982, 705, 2524]                 # within 1 %: noted, not warned of
    assert _count_note("train", few_missing)[1] is False
    half = [n // 2 for n in OFFICIAL_COUNTS["test"]]
    assert _count_note("test", half)[1] is True


def test_rafdb_class_folders_with_names_not_rafdbs_are_read_and_warned_of(tmp_path, caplog):
    tree = make_kaggle_tree(tmp_path / "DATASET")
    (tree / "train" / "4" / "train_00004_aligned.jpg").rename(tree / "train" / "4" / "face.jpg")
    with caplog.at_level("WARNING", logger="transfer_core.data.rafdb"):
        splits = load_splits(_cfg(tmp_path, tree), 16)
    assert "1 image is not named as RAF-DB's images are" in caplog.text and "first: train/4/face.jpg" in caplog.text
    assert splits.train.labels.tolist() == [4, 0, 6, 3] and splits.info["not_named_as_rafdb"] == 1


def test_rafdb_class_folders_cannot_choose_an_image_set(tmp_path):
    tree = make_kaggle_tree(tmp_path / "DATASET")
    with pytest.raises(DataError, match=r"data.rafdb_images='aligned_224' chooses the official layout's "
                                        r"Image/aligned_224/, but \S*DATASET holds RAF-DB as class folders"):
        check_layout(_cfg(tmp_path, tree, rafdb_images="aligned_224"))


def test_rafdb_class_folders_of_resized_images_are_warned_of(tmp_path, caplog):
    tree = make_kaggle_tree(tmp_path / "DATASET")
    Image.new("RGB", (48, 48), COLOURS[5]).save(tree / "train" / "5" / "train_00001_aligned.jpg")   # as all are
    with caplog.at_level("WARNING", logger="transfer_core.data.rafdb"):
        splits = load_splits(_cfg(tmp_path, tree), 16)
    assert "train/5/train_00001_aligned.jpg is 48x48, not the 100x100 of RAF-DB's aligned images" in caplog.text
    assert splits.info["image_size_found"] == "48x48"


def test_rafdb_kaggle_label_file_not_utf8_is_warned_of_and_not_checked(tmp_path, caplog):
    # it is read only to check the class folders: one saved in another encoding (or another data set's file of the
    # same name beside DATASET/) must not refuse the class folders, which are what is read
    tree = make_kaggle_tree(tmp_path / "kaggle" / "DATASET")
    (tree.parent / "train_labels.csv").write_bytes("image,label\ntrain_00001_é.jpg,5\n".encode("latin-1"))
    with caplog.at_level("WARNING", logger="transfer_core.data.rafdb"):
        splits = load_splits(_cfg(tmp_path, tree), 16)
    assert len(splits.train) == 4
    assert "train_labels.csv" in caplog.text and "not checked" in caplog.text


def test_rafdb_transfer_lists_swapped_are_an_error_not_a_model_trained_on_the_test_split(tmp_path):
    # train.txt holding test_*_aligned.jpg and test.txt train_*: read as given, the model trained on the 3,068
    # test images and was tested on the 12,271 training ones, without a word
    root = make_rafdb(tmp_path / "raf", lists=True)
    train, test = root / "EmoLabel" / "train.txt", root / "EmoLabel" / "test.txt"
    train_text, test_text = train.read_text(), test.read_text()
    train.write_text(test_text)
    test.write_text(train_text)
    with pytest.raises(DataError, match=r"EmoLabel/train\.txt line 1: test_0001_aligned\.jpg is an image of RAF-DB's "
                                        r"test split \(its name says so\), listed in train\.txt \(3 such images of "
                                        r"its 3\): expected only train_\* images in EmoLabel/train\.txt, RAF-DB's "
                                        r"official train split \(are EmoLabel/train\.txt and EmoLabel/test\.txt "
                                        r"swapped\?\)"):
        check_layout(_cfg(tmp_path, root))


def test_rafdb_transfer_list_holding_an_image_of_the_other_split_is_read_as_listed_and_warned_of(tmp_path, caplog):
    # a test image moved into train.txt (out of test.txt) is a split other than RAF-DB's: said, not refused
    root = make_rafdb(tmp_path / "raf", lists=True)
    train, test = root / "EmoLabel" / "train.txt", root / "EmoLabel" / "test.txt"
    first, *rest = test.read_text().splitlines()
    train.write_text(train.read_text() + first + "\n")
    test.write_text("\n".join(rest) + "\n")
    with caplog.at_level("WARNING", logger="transfer_core.data.rafdb"):
        splits = load_splits(_cfg(tmp_path, root), 8)
    assert re.search(r"RAF-DB \S*EmoLabel/train\.txt line 5: test_0001_aligned\.jpg is an image of RAF-DB's test split "
                     r"\(its name says so\), listed in train\.txt \(1 such image of its 5\): read as listed, a split "
                     r"other than RAF-DB's official partition", caplog.text)
    assert (len(splits.train), len(splits.test)) == (5, 2)
    assert splits.info["other_split_listed"] == {"train": 1}


def test_rafdb_custom_split_holding_out_training_images_as_test_txt_is_read_not_taken_for_swapped_lists(
        tmp_path, caplog):
    # a fold of RAF-DB's training images held out as test.txt (cross-validation): read as before, with a warning;
    # it was refused as if train.txt and test.txt were swapped, and the researcher's setup could not be read at all
    root = make_rafdb(tmp_path / "raf", lists=True)
    (root / "EmoLabel" / "train.txt").write_text("train_00001_aligned.jpg 5\ntrain_00002_aligned.jpg 1\n"
                                                 "train_00003_aligned.jpg 7\n")
    (root / "EmoLabel" / "test.txt").write_text("train_00004_aligned.jpg 4\n")
    with caplog.at_level("WARNING", logger="transfer_core.data.rafdb"):
        splits = load_splits(_cfg(tmp_path, root), 8)
    assert (len(splits.train), len(splits.test)) == (3, 1)
    assert "swapped" not in caplog.text
    assert "test.txt line 1: train_00004_aligned.jpg is an image of RAF-DB's training split" in caplog.text
    assert splits.info["other_split_listed"] == {"test": 1}


def test_rafdb_partition_file_of_other_split_or_class_sizes_than_the_official_is_warned_of(tmp_path, caplog):
    # a partition file cut short (or relabelled) was read without a word; the class folders' sizes were checked
    with caplog.at_level("WARNING", logger="transfer_core.data.rafdb"):
        splits = load_splits(_cfg(tmp_path, make_rafdb(tmp_path / "raf")), 8)
    assert ("RAF-DB EmoLabel/list_patition_label.txt: 4 train images where RAF-DB's official partition has 12,271 "
            "(Surprise 1 (official 1290)") in caplog.text
    assert "3 test images where RAF-DB's official partition has 3,068" in caplog.text
    assert splits.info["differs_from_official"]["train"].startswith("4 train images where")


def test_rafdb_partition_file_of_the_official_sizes_but_other_class_sizes_is_warned_of_as_relabelled(tmp_path, caplog):
    # the warning asked of the partition file itself whether images were "in other class folders than RAF-DB's
    # partition file labels them": the label file layout has no class folders
    from transfer_core.data.base import get_source
    from transfer_core.data.rafdb import OFFICIAL_COUNTS

    root = tmp_path / "raf"
    (root / "EmoLabel").mkdir(parents=True)
    (root / "Image" / "aligned").mkdir(parents=True)
    lines = []
    for split, counts in OFFICIAL_COUNTS.items():
        names = (f"{split}_{i:05d}.jpg" if split == "train" else f"{split}_{i:04d}.jpg" for i in range(1, 20000))
        lines += [f"{next(names)} {label}" for label, n in enumerate(counts, start=1) for _ in range(n)]
    lines[0] = lines[0].replace(" 1", " 7")   # a Surprise image relabelled Neutral
    (root / "EmoLabel" / "list_patition_label.txt").write_text("\n".join(lines))
    cfg = _cfg(tmp_path, root)
    with caplog.at_level("WARNING", logger="transfer_core.data.rafdb"):
        layout = get_source(cfg).scan(cfg)   # the images are not needed to count the label file's
    note = layout.info["differs_from_official"]["train"]
    assert note == ("the official 12,271 train images, but classes of other sizes (Surprise 1289 (official 1290), "
                    "Neutral 2525 (official 2524)): are images relabelled there (edited, or another version than "
                    "RAF-DB's partition file)?")
    assert note in caplog.text and "class folders" not in caplog.text
    assert "test" not in layout.info["differs_from_official"]


def test_rafdb_aligned_images_no_label_file_lists_are_warned_of_once(tmp_path, caplog):
    # a partition file not regenerated after images were added: those images were left out without a word
    root = make_rafdb(tmp_path / "raf")
    for n in range(3):
        Image.new("RGB", (100, 100), COLOURS[1]).save(root / "Image" / "aligned" / f"train_9999{n}_aligned.jpg")
    with caplog.at_level("WARNING", logger="transfer_core.data.rafdb"):
        splits = load_splits(_cfg(tmp_path, root), 16)
    said = [r.getMessage() for r in caplog.records if "listed in no label file" in r.getMessage()]
    assert said == ["RAF-DB: 3 image files in its image folders are listed in no label file "
                    "(EmoLabel/list_patition_label.txt) and are not read (Image/aligned/train_99990_aligned.jpg, "
                    "Image/aligned/train_99991_aligned.jpg, Image/aligned/train_99992_aligned.jpg): a label file older "
                    "than the images? Regenerate it to read them (a list of a subset, on purpose: nothing to do)"]
    assert splits.info["not_listed"] == 3


def test_rafdb_images_its_transfer_lists_leave_out_are_warned_of_as_listed_in_neither(tmp_path, caplog):
    # "listed in no label file (EmoLabel/train.txt / EmoLabel/test.txt)" read as one path
    root = make_rafdb(tmp_path / "raf", lists=True)
    (root / "EmoLabel" / "train.txt").write_text("".join((root / "EmoLabel" / "train.txt").read_text().splitlines(True)[1:]))
    with caplog.at_level("WARNING", logger="transfer_core.data.rafdb"):
        load_splits(_cfg(tmp_path, root), 16)
    assert ("RAF-DB: 1 image file in its image folders is listed in no label file (EmoLabel/train.txt or "
            "EmoLabel/test.txt) and is not read (Image/aligned/train_00001_aligned.jpg)") in caplog.text



def test_rafdb_transfer_lists_are_named_together_as_two_files_not_as_one_path(tmp_path, caplog):
    # "RAF-DB EmoLabel/train.txt / EmoLabel/test.txt: 4 train images where ..." read as one path, as 10132ac's did
    root = make_rafdb(tmp_path / "raf", lists=True)
    with caplog.at_level("WARNING", logger="transfer_core.data.rafdb"):
        load_splits(_cfg(tmp_path, root), 16)
    assert "RAF-DB EmoLabel/train.txt and EmoLabel/test.txt: 4 train images where" in caplog.text
    (root / "EmoLabel" / "test.txt").write_text("")
    with pytest.raises(DataError, match=r"EmoLabel/train.txt and \S*EmoLabel/test.txt: no test images listed"):
        load_splits(_cfg(tmp_path, root), 16)


@pytest.mark.parametrize("lists", [False, True])
def test_rafdb_whose_label_files_list_every_image_says_nothing_of_unlisted_ones(tmp_path, caplog, lists):
    with caplog.at_level("WARNING", logger="transfer_core.data.rafdb"):
        splits = load_splits(_cfg(tmp_path, make_rafdb(tmp_path / "raf", lists=lists)), 16)
    assert "listed in no label file" not in caplog.text and "not_listed" not in splits.info


# --------------------------------------------------------------------------- whitespace-only lines

@pytest.mark.parametrize("lists", [False, True])
def test_rafdb_whitespace_only_label_lines_between_entries_are_skipped_and_warned_of_once_as_ferplus_does(
        tmp_path, caplog, lists):
    # a line deleted by hand (its entry gone, a blank line left) was skipped without a word, where FERPlus's CSVs
    # warn of one between data rows (test_data_fer: its whitespace-only lines)
    root = make_rafdb(tmp_path / "raf", lists=lists)
    path = root / "EmoLabel" / ("train.txt" if lists else "list_patition_label.txt")
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines[:2] + ["   ", "\t"] + lines[2:] + ["", "  "]) + "\n")
    with caplog.at_level("WARNING", logger="transfer_core.data.rafdb"):
        splits = load_splits(_cfg(tmp_path, root), 16)
    assert splits.train.labels.tolist() == [4, 0, 6, 3] and splits.test.labels.tolist() == [1, 5, 2]   # read alike
    said = [r.getMessage() for r in caplog.records if "whitespace-only" in r.getMessage()]
    assert said == [f"{path}: 2 whitespace-only lines between data rows (first: line 3) are skipped (and 2 at the "
                    "end): the data rows are read as if they were not there"]


def test_rafdb_whitespace_only_lines_before_the_first_entry_are_said_to_lie_there_not_between_data_rows(
        tmp_path, caplog):
    # a blank line at the top of the label file was said to lie "between data rows"
    root = make_rafdb(tmp_path / "raf")
    path = root / "EmoLabel" / "list_patition_label.txt"
    lines = path.read_text().splitlines()
    path.write_text("\n".join([""] + lines) + "\n")
    with caplog.at_level("WARNING", logger="transfer_core.data.rafdb"):
        load_splits(_cfg(tmp_path, root), 16)
    said = [r.getMessage() for r in caplog.records if "whitespace-only" in r.getMessage()]
    assert said == [f"{path}: 1 whitespace-only line before the first data row (first: line 1) is skipped: the data "
                    "rows are read as if it were not there"]
    caplog.clear()
    path.write_text("\n".join(["  ", "\t"] + lines[:2] + [""] + lines[2:] + [" "]) + "\n")
    with caplog.at_level("WARNING", logger="transfer_core.data.rafdb"):
        load_splits(_cfg(tmp_path, root), 16)
    said = [r.getMessage() for r in caplog.records if "whitespace-only" in r.getMessage()]
    assert said == [f"{path}: 2 whitespace-only lines before the first data row (first: line 1) and 1 between data "
                    "rows (first: line 5) are skipped (and 1 at the end): the data rows are read as if they were not "
                    "there"]


def test_rafdb_whitespace_only_lines_at_the_end_of_a_label_file_alone_are_not_warned_of(tmp_path, caplog):
    root = make_rafdb(tmp_path / "raf")
    path = root / "EmoLabel" / "list_patition_label.txt"
    path.write_text(path.read_text() + "\n\n  \n")
    with caplog.at_level("WARNING", logger="transfer_core.data.rafdb"):
        splits = load_splits(_cfg(tmp_path, root), 16)
    assert len(splits.train) == 4 and len(splits.test) == 3
    assert "whitespace-only" not in caplog.text


def test_an_image_listed_in_another_case_is_listed_where_the_file_system_ignores_case(tmp_path, monkeypatch):
    # macOS's APFS ignores case: a label file naming train_00001.JPG reads train_00001.jpg, which was then
    # warned of as an image no label file lists
    import os

    from transfer_core.data import base

    folder = tmp_path / "aligned"
    folder.mkdir()
    for name in ("train_00001.jpg", "train_00002.jpg"):
        (folder / name).write_bytes(b"")
    listed = {"train_00001.JPG"}
    assert base.images_not_listed(folder, listed) == ["train_00001.jpg", "train_00002.jpg"]   # Linux: not read

    def case_blind_samefile(a, b):   # as on APFS: a name in another case opens the same file
        return os.path.normcase(str(a)).casefold() == os.path.normcase(str(b)).casefold()

    monkeypatch.setattr(base.os.path, "samefile", case_blind_samefile)
    assert base.images_not_listed(folder, listed) == ["train_00002.jpg"]
