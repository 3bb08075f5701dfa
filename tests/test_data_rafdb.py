"""RAF-DB on a miniature copy of its official layout (reference/datasets.md §1, §7)."""

from __future__ import annotations

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


@pytest.mark.parametrize("given", ["kaggle", "kaggle/DATASET"])
def test_rafdb_as_class_folders_1_to_7_is_named_with_how_to_read_it(tmp_path, given):
    # the copy Kaggle spreads: DATASET/train/<file label>/train_00001_aligned.jpg, no EmoLabel/
    tree = tmp_path / "kaggle" / "DATASET"
    for split, (name, label) in (("train", ENTRIES[0]), ("test", ENTRIES[4])):
        for k in range(1, 8):
            (tree / split / str(k)).mkdir(parents=True)
        Image.new("RGB", (100, 100), COLOURS[label]).save(tree / split / str(label) / name)
    with pytest.raises(DataError, match=r"label file not found .*'basic' folder. \S*kaggle/DATASET holds RAF-DB "
                                        r"as class folders train/1..7/ and test/1..7/ .*: read it with --data "
                                        r"imagefolder=\S*kaggle/DATASET \(the same labels"):
        check_layout(_cfg(tmp_path, tmp_path / given))
    from transfer_core.data import class_names_of

    assert class_names_of(DataConfig(dataset="imagefolder", root=str(tree))) == tuple("1234567")   # label - 1
