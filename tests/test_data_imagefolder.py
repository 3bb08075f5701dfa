"""Image-folder trees: train/<class>/, test/<class>/, optional val/<class>/."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from transfer_core.config import DataConfig
from transfer_core.data import (DataError, check_layout, class_names_of, fingerprint_of, load_splits,
                                num_classes_of)

COLOURS = {"angry": (240, 10, 10), "happy": (10, 240, 10), "neutral": (10, 10, 240)}


def make_tree(root: Path, splits=("train", "test"), per_class: int = 2, classes=COLOURS) -> Path:
    for split in splits:
        for name in classes:
            d = root / split / name
            d.mkdir(parents=True)
            for i in range(per_class):
                ext = ".png" if i % 2 else ".JPG"
                Image.new("RGB", (20, 14), COLOURS.get(name, (1, 2, 3))).save(d / f"{i}{ext}",
                                                                            format="PNG" if i % 2 else "JPEG")
    return root


def _cfg(tmp_path, root: Path, **kw) -> DataConfig:
    kw.setdefault("val_fraction", 0.0)
    return DataConfig(dataset="imagefolder", root=str(root), cache_dir=str(tmp_path / "cache"), **kw)


def test_imagefolder_class_names_are_sorted_folder_names(tmp_path):
    cfg = _cfg(tmp_path, make_tree(tmp_path / "d"))
    assert class_names_of(cfg) == ("angry", "happy", "neutral") and num_classes_of(cfg) == 3


def test_imagefolder_labels_follow_folders(tmp_path):
    splits = load_splits(_cfg(tmp_path, make_tree(tmp_path / "d")), 10)
    assert splits.train.labels.tolist() == [0, 0, 1, 1, 2, 2]
    for img, label in zip(splits.train.images, splits.train.labels):
        expected = COLOURS[splits.class_names[label]]
        assert np.abs(img.reshape(-1, 3).mean(0) - expected).max() < 8
    assert splits.train.images.shape == (6, 10, 10, 3)


def test_imagefolder_val_folder_is_the_validation_split(tmp_path):
    splits = load_splits(_cfg(tmp_path, make_tree(tmp_path / "d", ("train", "val", "test")), val_fraction=0.5), 8)
    assert len(splits.train) == 6 and len(splits.val) == 6 and splits.info["val_source"] == "val/ folder"


@pytest.mark.parametrize("name", ["valid", "validation"])   # POSTER_V2's trees have valid/
def test_imagefolder_valid_or_validation_folder_is_the_validation_split(tmp_path, name):
    splits = load_splits(_cfg(tmp_path, make_tree(tmp_path / "d", ("train", name, "test")), val_fraction=0.5), 8)
    assert len(splits.train) == 6 and len(splits.val) == 6 and splits.info["val_source"] == f"{name}/ folder"


def test_imagefolder_with_two_validation_folders_is_an_error_naming_them(tmp_path):
    root = make_tree(tmp_path / "d", ("train", "val", "valid", "test"))
    with pytest.raises(DataError, match=r"has 2 validation folders \(val/, valid/\): expected at most one of "
                                        r"val/, valid/, validation/"):
        check_layout(_cfg(tmp_path, root))


def test_imagefolder_ignores_an_archivers_folder_among_the_classes(tmp_path):
    root = make_tree(tmp_path / "d")
    (root / "train" / "__MACOSX").mkdir()
    (root / "train" / "__MACOSX" / "._0.png").write_bytes(b"resource fork")
    assert class_names_of(_cfg(tmp_path, root)) == ("angry", "happy", "neutral")
    assert len(load_splits(_cfg(tmp_path, root), 8).train) == 6


def test_imagefolder_empty_class_folder_in_train_is_an_error_naming_it(tmp_path):
    # it would become a class of the model's output that no image teaches
    root = make_tree(tmp_path / "d")
    for split in ("train", "test"):
        (root / split / "unsorted").mkdir()
    with pytest.raises(DataError, match=r"image folder .*/train/unsorted holds no images: every class folder of "
                                        r"train/ is a class the model learns"):
        check_layout(_cfg(tmp_path, root))


def test_imagefolder_without_val_folder_carves_val(tmp_path):
    splits = load_splits(_cfg(tmp_path, make_tree(tmp_path / "d", per_class=4), val_fraction=0.25), 8)
    assert np.bincount(splits.val.labels).tolist() == [1, 1, 1]


def test_imagefolder_ignores_hidden_and_non_image_files(tmp_path, caplog):
    root = make_tree(tmp_path / "d")
    (root / "train" / "happy" / "notes.txt").write_text("x")
    (root / "train" / "happy" / ".thumb.png").write_bytes(b"x")
    (root / "train" / ".cache").mkdir()
    with caplog.at_level("WARNING"):
        splits = load_splits(_cfg(tmp_path, root), 8)
    assert len(splits.train) == 6 and splits.info["left_out"] == {"train": {".txt": 1}}
    assert "train: 1 .txt file left out: an image is a file of its class folder" in caplog.text, "hidden: no word"


def test_imagefolder_names_the_images_lying_outside_every_class_folder(tmp_path, caplog):
    # train/x.jpg beside train/<class>/: not read, and neither warned of nor recorded (the files a class folder
    # leaves out are); a text file there is no image, and says nothing
    root = make_tree(tmp_path / "d")
    for name in ("b.jpg", "a.PNG"):
        Image.new("RGB", (20, 14)).save(root / "test" / name, format="PNG")
    (root / "test" / "README.txt").write_text("x")
    with caplog.at_level("WARNING"):
        splits = load_splits(_cfg(tmp_path, root), 8)
    assert len(splits.test) == 6
    assert ("test: 2 image files lie in it, outside every class folder (a.PNG, b.jpg), and are left out: an image "
            "of class C is read from test/C/") in caplog.text
    assert splits.info["left_out"] == {"test": {"outside class folders": 2}}
    (root / "test" / "b.jpg").unlink()
    caplog.clear()
    with caplog.at_level("WARNING"):
        load_splits(_cfg(tmp_path, root), 8)
    assert "test: 1 image file lies in it, outside every class folder (a.PNG), and is left out" in caplog.text


def test_imagefolder_reads_jfif_and_gif_and_names_what_it_leaves_out(tmp_path, caplog):
    # .jfif (a JPEG) and .gif files, images in a folder inside a class folder and broken links were left out
    # without a word, and a test class folder of .jfif files was said to hold no images
    root = make_tree(tmp_path / "d")
    happy, test_happy = root / "train" / "happy", root / "test" / "happy"
    Image.new("RGB", (20, 14), COLOURS["happy"]).save(happy / "web.jfif", format="JPEG")
    Image.new("P", (20, 14)).save(happy / "anim.gif", format="GIF")
    (happy / "more").mkdir()
    Image.new("RGB", (20, 14)).save(happy / "more" / "0.png")
    (happy / "gone.png").symlink_to(tmp_path / "nowhere.png")
    for p in test_happy.iterdir():
        p.unlink()
    Image.new("RGB", (20, 14), COLOURS["happy"]).save(test_happy / "0.jfif", format="JPEG")
    with caplog.at_level("WARNING"):
        splits = load_splits(_cfg(tmp_path, root), 8)
    assert np.bincount(splits.train.labels).tolist() == [2, 4, 2]
    assert np.bincount(splits.test.labels).tolist() == [2, 1, 2]
    assert "holds no images" not in caplog.text
    assert "train: 1 broken link, 1 folder left out" in caplog.text
    assert splits.info["left_out"] == {"train": {"broken link": 1, "folder": 1}}


def test_imagefolder_test_class_folder_without_images_says_what_it_holds(tmp_path, caplog):
    root = make_tree(tmp_path / "d")
    for p in (root / "test" / "happy").iterdir():
        p.unlink()
    (root / "test" / "happy" / "0.heic").write_bytes(b"x")
    with caplog.at_level("WARNING"):
        check_layout(_cfg(tmp_path, root))
    assert "test/happy holds no images (it holds 1 .heic file: none is read)" in caplog.text


def test_imagefolder_test_classes_must_match_train(tmp_path):
    root = make_tree(tmp_path / "d")
    (root / "test" / "neutral").rename(root / "test" / "calm")
    with pytest.raises(DataError, match=r"test has class folders that differ from train/: extra \['calm'\], "
                                        r"missing \['neutral'\]: expected exactly angry, happy, neutral"):
        check_layout(_cfg(tmp_path, root))


def test_imagefolder_missing_train_folder_is_named(tmp_path):
    (tmp_path / "d" / "test").mkdir(parents=True)
    with pytest.raises(DataError, match=r"d/train does not exist: expected .*/train/<class>/<image>"):
        check_layout(_cfg(tmp_path, tmp_path / "d"))


@pytest.mark.parametrize("given", ["kaggle", "kaggle/DATASET/train"])
def test_imagefolder_given_one_level_off_names_the_folder_that_holds_it_when_its_classes_are_read(tmp_path, given):
    # a Kaggle RAF-DB copy (DATASET/train/1..7/) given as its download folder: `sweeps show` and `run` read the
    # class count first (plan), whose error lacked the folder a scan's names
    make_tree(tmp_path / "kaggle" / "DATASET")
    for read in (class_names_of, num_classes_of, check_layout):
        with pytest.raises(DataError, match=rf"{given}/train does not exist: .*; \S*kaggle/DATASET is laid out as "
                                            r"imagefolder is: give that folder \(--data imagefolder=\S*kaggle/DATASET\)"):
            read(_cfg(tmp_path, tmp_path / given))


def test_imagefolder_split_folders_in_other_letter_case_are_named_with_the_rename(tmp_path):
    # Train/ and Test/ were reported missing without a word of the folders there
    root = make_tree(tmp_path / "d")
    for split in ("train", "test"):
        (root / split).rename(root / split.capitalize())
    for read in (class_names_of, check_layout):
        with pytest.raises(DataError, match=r"d holds Test/, Train/: split folders are read by their lower-case "
                                            r"names \(train/, test/, val/, valid/, validation/\); rename Test/ to "
                                            r"test/, Train/ to train/"):
            read(_cfg(tmp_path, root))


def test_imagefolder_validation_folder_in_other_letter_case_is_an_error_not_left_out(tmp_path):
    # Val/ beside train/ and test/ was left out without a word, and validation carved from train instead
    root = make_tree(tmp_path / "d", ("train", "Val", "test"))
    with pytest.raises(DataError, match=r"d holds Val/: .*; rename Val/ to val/"):
        check_layout(_cfg(tmp_path, root))


def test_imagefolder_dev_folder_in_other_letter_case_is_an_error_as_a_validation_folder_is(tmp_path):
    # Dev/ beside train/ and test/ was only warned of as a folder not read, and validation carved from train instead
    root = make_tree(tmp_path / "d", ("train", "Dev", "test"))
    with pytest.raises(DataError, match=r"d holds Dev/: split folders are read by their lower-case names \(train/, "
                                        r"test/, val/, valid/, validation/, or dev/ where none of those is\); rename "
                                        r"Dev/ to dev/"):
        check_layout(_cfg(tmp_path, root))


def test_imagefolder_dev_folder_in_other_letter_case_beside_a_validation_folder_is_warned_of_as_dev_is(tmp_path,
                                                                                                     caplog):
    # dev/ beside val/ is not read either: renaming it would change nothing, so it is not refused
    root = make_tree(tmp_path / "d", ("train", "val", "Dev", "test"))
    with caplog.at_level("WARNING", logger="transfer_core.data.imagefolder"):
        check_layout(_cfg(tmp_path, root))
    assert "Dev/ not read" in caplog.text


def test_imagefolder_missing_test_folder_is_named(tmp_path):
    root = make_tree(tmp_path / "d", ("train",))
    with pytest.raises(DataError, match=r"d/test does not exist"):
        check_layout(_cfg(tmp_path, root))


@pytest.mark.parametrize("name", ["valid", "val"])   # POSTER_V2's RAF-DB, DAN's converted AffectNet
def test_imagefolder_without_test_takes_its_one_validation_folder_for_the_test_split(tmp_path, name, caplog):
    # those repositories evaluate on that folder; validation is carved from train as for any data set
    root = make_tree(tmp_path / "d", ("train", name), per_class=10)
    with caplog.at_level("INFO", logger="transfer_core.data.imagefolder"):
        splits = load_splits(_cfg(tmp_path, root, val_fraction=0.2), 16)
    assert len(splits.test) == 30 and len(splits.train) + len(splits.val) == 30 and len(splits.val) > 0
    assert splits.info["layout"] == f"image folders, {name}/ as the test split"
    assert f"has no test/: {name}/ is its test split" in caplog.text
    assert splits.info["test_source"] == f"the {name}/ folder (no test/)", "what the [data] line and data.json say"


def test_imagefolder_needs_two_classes(tmp_path):
    root = make_tree(tmp_path / "d", classes={"angry": None})
    with pytest.raises(DataError, match=r"has 1 class folder: expected at least 2"):
        check_layout(_cfg(tmp_path, root))


def test_imagefolder_without_images_is_an_error(tmp_path):
    root = make_tree(tmp_path / "d", per_class=0)
    with pytest.raises(DataError, match=r"train/angry holds no images"):
        check_layout(_cfg(tmp_path, root))


def test_imagefolder_undecodable_image_names_it(tmp_path):
    root = make_tree(tmp_path / "d")
    (root / "test" / "happy" / "1.png").write_bytes(b"garbage")
    with pytest.raises(DataError, match=r"cannot decode image .*test/happy/1.png \(listed in class folder "
                                        r"test/happy\)"):
        load_splits(_cfg(tmp_path, root), 8)


def test_fingerprint_of_is_load_splits_fingerprint_without_decoding_and_follows_a_relabelled_image(tmp_path):
    root = make_tree(tmp_path / "d")
    cfg = _cfg(tmp_path, root)
    before = fingerprint_of(cfg, 8)
    assert not (tmp_path / "cache").exists(), "nothing decoded"
    assert before == load_splits(cfg, 8).fingerprint
    (root / "train" / "happy" / "0.JPG").rename(root / "train" / "angry" / "moved.JPG")   # relabelled
    assert fingerprint_of(cfg, 8) != before


@pytest.mark.parametrize("ext", ["png", "tif", "pgm"])
def test_imagefolder_16_bit_grayscale_is_scaled_not_clipped_to_white(tmp_path, ext):
    root = make_tree(tmp_path / "faces")
    gray16 = np.full((20, 20), 100 * 257, dtype=np.uint16)             # 100 on the 8-bit scale
    for split in ("train", "test"):
        folder = next(p for p in sorted((root / split).iterdir()) if p.is_dir())
        for f in folder.iterdir():
            f.unlink()
        Image.fromarray(gray16).save(folder / f"g16.{ext}")
    splits = load_splits(_cfg(tmp_path, root, val_fraction=0.0), 8)
    for split in (splits.train, splits.test):
        image = split.images[split.labels == 0][0]
        assert abs(float(image.mean()) - 100) <= 1, image.mean()          # not 255 (PIL's clipping)


def phone_photo(path: Path) -> None:
    """A JPEG stored sideways (left half red, right half blue) with EXIF orientation 6: a viewer shows it turned 90
    degrees clockwise, red on top."""
    stored = np.zeros((10, 20, 3), np.uint8)
    stored[:, :10] = (250, 0, 0)
    stored[:, 10:] = (0, 0, 250)
    image = Image.fromarray(stored)
    exif = image.getexif()
    exif[0x0112] = 6
    image.save(path, exif=exif, quality=100)


def _new_run(monkeypatch) -> None:
    """As in a process of its own (another `sweeps run`): nothing warned of yet."""
    from transfer_core.data import splits as splits_module

    monkeypatch.setattr(splits_module, "_EXIF_SAID", set())


def test_imagefolder_images_with_an_exif_orientation_are_decoded_as_stored_and_warned_of_once_a_run(tmp_path, caplog,
                                                                                                     monkeypatch):
    # a phone photo stored sideways with EXIF orientation 6 shows upright in every viewer; the model saw it
    # sideways without a word. Said once a run: it was said again at every cache hit (a notebook's every load, a
    # sweep's every image size), and recorded at each (data.json's reader)
    _new_run(monkeypatch)
    root = make_tree(tmp_path / "d")
    phone_photo(root / "train" / "happy" / "phone.jpg")
    warning = ("imagefolder: 1 train image carries an EXIF orientation (a viewer shows it turned or mirrored), "
               "which is not applied: it is decoded as stored")
    for hit, size, said in ((False, 8, 1), (True, 8, 0), (False, 16, 0), (True, 16, 0)):
        caplog.clear()
        with caplog.at_level("WARNING", logger="transfer_core.data.splits"):
            splits = load_splits(_cfg(tmp_path, root), size)
        assert splits.info["cache_hit"] is hit
        assert splits.info["exif_turned"] == {"train": 1}
        assert splits.info["exif_turned_files"] == ["train/happy/phone.jpg"]
        assert _said(caplog, warning) == said, (hit, size)
    _new_run(monkeypatch)                 # another run, on the cached decode: said there
    caplog.clear()
    with caplog.at_level("WARNING", logger="transfer_core.data.splits"):
        splits = load_splits(_cfg(tmp_path, root), 8)
    assert splits.info["cache_hit"] is True and _said(caplog, warning) == 1
    assert "first: train/happy/phone.jpg" in caplog.text
    phone = next(img for img in splits.train.images if min(img[..., 0].mean(), img[..., 2].mean()) > 60)   # red+blue
    assert phone[4, 0, 0] > 200 and phone[4, 7, 2] > 200, "as stored: red left, blue right"
    assert "exif_turned" not in load_splits(_cfg(tmp_path, make_tree(tmp_path / "plain")), 8).info
    # another image turned since: said again, in the same run
    phone_photo(root / "test" / "happy" / "phone2.jpg")
    caplog.clear()
    with caplog.at_level("WARNING", logger="transfer_core.data.splits"):
        splits = load_splits(_cfg(tmp_path, root), 8)
    assert splits.info["exif_turned"] == {"train": 1, "test": 1} and _said(caplog, "EXIF orientation") == 1


def test_imagefolder_exif_orientation_applied_turns_images_as_a_viewer_shows_them_in_a_cache_entry_of_its_own(
        tmp_path, caplog):
    # opt-in: the default reads pixels as stored (torchvision, the FER repositories); a decode cached as stored must
    # not be served to a config that applies the orientation, nor the reverse
    root = make_tree(tmp_path / "d")
    phone_photo(root / "train" / "happy" / "phone.jpg")

    def phone(splits):
        return next(img for img in splits.train.images if min(img[..., 0].mean(), img[..., 2].mean()) > 60)

    stored = load_splits(_cfg(tmp_path, root), 8)
    assert phone(stored)[4, 0, 0] > 200 and phone(stored)[4, 7, 2] > 200, "as stored: red left, blue right"
    caplog.clear()
    with caplog.at_level("WARNING", logger="transfer_core.data.splits"):
        applied = load_splits(_cfg(tmp_path, root, exif_orientation="applied"), 8)
    assert applied.info["cache_hit"] is False and applied.fingerprint != stored.fingerprint
    assert phone(applied)[0, 4, 0] > 200 and phone(applied)[7, 4, 2] > 200, "as shown: red on top, blue below"
    assert "exif_turned" not in applied.info and "EXIF orientation" not in caplog.text
    again = load_splits(_cfg(tmp_path, root), 8)
    assert again.info["cache_hit"] is True and again.fingerprint == stored.fingerprint
    np.testing.assert_array_equal(phone(again), phone(stored))
    assert load_splits(_cfg(tmp_path, root, exif_orientation="applied"), 8).info["cache_hit"] is True
    from transfer_core.data.base import get_source

    cfg = _cfg(tmp_path, root)
    assert get_source(cfg).scan(cfg).params == {}, "as stored, a folder keeps the fingerprint it had before the key"


def test_imagefolder_file_linked_into_another_split_or_class_is_an_error_naming_both(tmp_path):
    # splits built with symbolic links from a pool: a link in test/ to a training image was trained and tested on
    root = make_tree(tmp_path / "d")
    (root / "test" / "happy" / "x.JPG").symlink_to(root / "train" / "happy" / "0.JPG")
    with pytest.raises(DataError, match=r"d: test/happy/x.JPG and train/happy/0.JPG are the same file \(\S*, "
                                        r"reached through a symbolic link\): one image would be in the train and the "
                                        r"test split; expected each image in one split and one class folder"):
        check_layout(_cfg(tmp_path, root))
    (root / "test" / "happy" / "x.JPG").unlink()
    (root / "train" / "neutral" / "x.JPG").symlink_to(root / "train" / "happy" / "0.JPG")
    with pytest.raises(DataError, match=r"train/neutral/x.JPG and train/happy/0.JPG are the same file .*: one image "
                                        r"would have two labels, happy and neutral"):
        check_layout(_cfg(tmp_path, root))


def test_imagefolder_class_folder_linked_into_two_splits_is_an_error(tmp_path):
    root = make_tree(tmp_path / "d")
    shutil.rmtree(root / "test" / "angry")
    (root / "test" / "angry").symlink_to(root / "train" / "angry", target_is_directory=True)
    with pytest.raises(DataError, match=r"test/angry/0.JPG and train/angry/0.JPG are the same file"):
        check_layout(_cfg(tmp_path, root))


def test_imagefolder_file_linked_twice_into_its_class_folder_is_read_twice_and_said(tmp_path, caplog):
    # a minority class oversampled by links, on purpose or not
    root = make_tree(tmp_path / "d")
    (root / "train" / "angry" / "again.JPG").symlink_to(root / "train" / "angry" / "0.JPG")
    with caplog.at_level("WARNING", logger="transfer_core.data.imagefolder"):
        splits = load_splits(_cfg(tmp_path, root), 8)
    assert splits.train.labels.tolist() == [0, 0, 0, 1, 1, 2, 2] and splits.info["read_twice"] == 1
    assert "1 image is, through a symbolic link, a file its class folder holds already, and is read twice " \
           "(first: train/angry/again.JPG)" in caplog.text


def _spoiled_tree(root: Path) -> Path:
    """A tree with one of each thing an image folder warns of: a folder and a text file in a class folder, an
    image outside every class folder, a file linked twice into its class folder, an image turned by EXIF."""
    make_tree(root)
    (root / "train" / "angry" / "more").mkdir()
    (root / "train" / "angry" / "notes.txt").write_text("x")
    Image.new("RGB", (20, 14)).save(root / "test" / "loose.png")
    (root / "train" / "happy" / "again.JPG").symlink_to(root / "train" / "happy" / "0.JPG")
    image = Image.new("RGB", (20, 14), (200, 0, 0))
    exif = image.getexif()
    exif[0x0112] = 6
    image.save(root / "train" / "neutral" / "phone.jpg", exif=exif)
    return root


# what an image folder's scan warns of, and its decode (EXIF): each said once wherever it is said
FOLDER_WARNINGS = ("left out: an image is a file of its class folder", "outside every class folder",
                   "read twice", "EXIF orientation")


def _said(caplog, phrase: str) -> int:
    return sum(phrase in record.getMessage() for record in caplog.records)


def test_each_image_folder_warning_is_said_once_in_a_sweep_and_where_the_layout_is_checked_or_decoded_alone(
        tmp_path, caplog, store, monkeypatch):
    # `sweeps run` checked the layout before Ray started and scanned it again to decode: every warning twice
    from sweeps.runner import RunOptions, prepare
    from sweeps.sweep_data import decode_data

    _new_run(monkeypatch)
    root = _spoiled_tree(tmp_path / "d")
    spec = tmp_path / "spec.yaml"
    spec.write_text("name: s\nprofile: smoke\narms:\n  - {label: A, set: {model.drop_variant: none}}\n"
                    "  - {label: B, set: {model.drop_variant: mad}}\n")
    with caplog.at_level("INFO"):
        prepared = prepare(str(spec), RunOptions(data=(f"imagefolder={root}",), tracking_uri=store,
                                                 storage=str(tmp_path / "rr"),
                                                 overrides={"data.cache_dir": str(tmp_path / "cache")}))
        decode_data([cell.config for cell in prepared.plan.cells])
    assert {phrase: _said(caplog, phrase) for phrase in FOLDER_WARNINGS} == dict.fromkeys(FOLDER_WARNINGS, 1)
    # `sweeps show` checks the layout only; transfer_core alone decodes without a check
    caplog.clear()
    with caplog.at_level("INFO"):
        check_layout(_cfg(tmp_path, root))
    assert {phrase: _said(caplog, phrase) for phrase in FOLDER_WARNINGS[:3]} == dict.fromkeys(FOLDER_WARNINGS[:3], 1)
    for cache in ("cache", "fresh"):   # a cache hit, and a decode, each a run of its own
        _new_run(monkeypatch)
        caplog.clear()
        with caplog.at_level("INFO"):
            load_splits(DataConfig(dataset="imagefolder", root=str(root), cache_dir=str(tmp_path / cache)), 8)
        assert {phrase: _said(caplog, phrase) for phrase in FOLDER_WARNINGS} == dict.fromkeys(FOLDER_WARNINGS, 1)
    _new_run(monkeypatch)
    caplog.clear()
    with caplog.at_level("INFO"):
        fingerprint_of(_cfg(tmp_path, root), 8, checked=True)    # a resumed sweep's, after prepare's check
        load_splits(_cfg(tmp_path, root), 8, checked=True)
    assert {phrase: _said(caplog, phrase) for phrase in FOLDER_WARNINGS} == {**dict.fromkeys(FOLDER_WARNINGS, 0),
                                                                             "EXIF orientation": 1}


def _one_image_per_split(root: Path, array: np.ndarray, name: str) -> None:
    """Replace the images of the first class folder of train/ and test/ with `array` saved as `name`."""
    for split in ("train", "test"):
        folder = next(p for p in sorted((root / split).iterdir()) if p.is_dir())
        for f in folder.iterdir():
            f.unlink()
        Image.fromarray(array).save(folder / name)


@pytest.mark.parametrize("scale", [1.0, 255.0])
def test_imagefolder_float_tiff_in_0_to_1_or_0_to_255_is_read_on_the_8_bit_scale_not_black(tmp_path, scale):
    # a 32-bit float TIFF (PIL mode "F") of values in 0..1: PIL's convert truncates them to 0, a black image
    root = make_tree(tmp_path / "faces")
    _one_image_per_split(root, np.full((20, 20), 100 / 255 * scale, dtype=np.float32), "f32.tif")
    splits = load_splits(_cfg(tmp_path, root), 8)
    for split in (splits.train, splits.test):
        image = split.images[split.labels == 0][0]
        assert abs(float(image.mean()) - 100) <= 1, image.mean()


@pytest.mark.parametrize("values, said", [(np.full((20, 20), 300.0), "from 300 to 300"),
                                          (np.full((20, 20), -0.5), "from -0.5 to -0.5"),
                                          (np.full((20, 20), np.nan), "NaN or infinite")])
def test_imagefolder_float_tiff_no_8_bit_reading_fits_is_an_error_naming_it(tmp_path, values, said):
    root = make_tree(tmp_path / "faces")
    _one_image_per_split(root, values.astype(np.float32), "f32.tif")
    with pytest.raises(DataError, match=r"image .*train/angry/f32.tif \(listed in class folder train/angry\) is a "
                                        rf"32-bit float image with .*{said}.*expected .*0..1"):
        load_splits(_cfg(tmp_path, root), 8)


def test_imagefolder_fingerprint_tells_tiff_decoding_only_where_the_tree_holds_tiffs(tmp_path):
    # float TIFFs in 0..1 were cached black: a tree with TIFFs is decoded again; any other keeps its fingerprint,
    # and with it its cached decode and the runs recorded on it
    from transfer_core.data.base import get_source

    plain = _cfg(tmp_path, make_tree(tmp_path / "plain"))
    assert get_source(plain).scan(plain).params == {}
    tiff_root = make_tree(tmp_path / "tiff")
    _one_image_per_split(tiff_root, np.full((20, 20), 0.5, dtype=np.float32), "f32.TIFF")
    tiff = _cfg(tmp_path, tiff_root)
    assert get_source(tiff).scan(tiff).params == {"tiff_decoding": 2}


def _fingerprint_before_tiff_decoding(cfg, image_size: int) -> str:
    """The fingerprint a version before tiff_decoding was fingerprinted (ec50420) gave the tree: no params."""
    import dataclasses

    from transfer_core.data.base import fingerprint, get_source, stat_images

    source = get_source(cfg)
    layout = source.scan(cfg)
    return fingerprint(dataclasses.replace(layout, params={}), stat_images(layout, skip_missing=False), image_size,
                       source.version)


@pytest.mark.parametrize("array", [np.full((20, 20), 100, dtype=np.uint8), np.full((20, 20), 40000, dtype=np.uint16)])
def test_imagefolder_of_integer_tiffs_is_alike_the_fingerprint_recorded_before_tiff_decoding_was(tmp_path, array):
    # 8- and 16-bit TIFFs decode as they did: runs recorded then trained on these data, and are continued, not retrained
    from transfer_core.data import fingerprints_alike

    cfg = _cfg(tmp_path, make_tree(tmp_path / "faces"))
    _one_image_per_split(Path(cfg.root), array, "int.tif")
    recorded = _fingerprint_before_tiff_decoding(cfg, 8)
    assert fingerprint_of(cfg, 8) != recorded, "decoded again: the cache's decodes of float TIFFs may be black"
    assert fingerprints_alike(cfg, 8) == (recorded,)


def test_imagefolder_with_a_float_tiff_is_not_alike_the_fingerprint_recorded_before_tiff_decoding_was(tmp_path):
    # a float TIFF in 0..1 was decoded black then: runs recorded on it trained on other data
    from transfer_core.data import fingerprints_alike

    cfg = _cfg(tmp_path, make_tree(tmp_path / "faces"))
    _one_image_per_split(Path(cfg.root), np.full((20, 20), 0.4, dtype=np.float32), "f32.tif")
    Image.fromarray(np.full((20, 20), 100, dtype=np.uint8)).save(Path(cfg.root) / "train" / "happy" / "int.tif")
    assert fingerprints_alike(cfg, 8) == ()
    plain = _cfg(tmp_path, make_tree(tmp_path / "plain"))
    assert fingerprints_alike(plain, 8) == (), "without TIFFs the fingerprint never changed"


def test_imagefolder_32_bit_integer_tiff_beyond_16_bits_is_an_error_not_clipped_white(tmp_path):
    root = make_tree(tmp_path / "faces")
    _one_image_per_split(root, np.full((20, 20), 70000, dtype=np.int32), "i32.tif")
    with pytest.raises(DataError, match=r"train/angry/i32.tif .* is a 32-bit integer image with pixel values from "
                                        r"70000 to 70000: expected values in 0..255 or 0..65535"):
        load_splits(_cfg(tmp_path, root), 8)


def test_imagefolder_dev_folder_is_the_validation_split_where_no_val_folder_is(tmp_path):
    splits = load_splits(_cfg(tmp_path, make_tree(tmp_path / "d", ("train", "dev", "test")), val_fraction=0.5), 8)
    assert len(splits.train) == 6 and len(splits.val) == 6 and splits.info["val_source"] == "dev/ folder"


def test_imagefolder_dev_folder_beside_a_val_folder_is_not_read_and_is_warned_of(tmp_path, caplog):
    root = make_tree(tmp_path / "d", ("train", "val", "dev", "test"))
    with caplog.at_level("WARNING", logger="transfer_core.data.imagefolder"):
        splits = load_splits(_cfg(tmp_path, root), 8)
    assert splits.info["val_source"] == "val/ folder" and len(splits.val) == 6
    assert splits.info["folders_not_read"] == ["dev"]
    assert "dev/ not read: the split folders are read by their names, train/, test/ and one validation folder " \
           "(val/, valid/, validation/, or dev/ where none of those is)" in caplog.text


def test_imagefolder_dev_folder_is_never_the_test_split(tmp_path):
    # POSTER_V2's valid/ (DAN's val/) is, without test/, the split those repositories evaluate on; a dev set is not
    root = make_tree(tmp_path / "d", ("train", "dev"))
    with pytest.raises(DataError, match=r"d/test does not exist \(its dev/ is read as the validation split, not the "
                                        r"test split\)"):
        check_layout(_cfg(tmp_path, root))


def test_imagefolder_folder_beside_the_splits_under_another_name_is_warned_of_with_the_names_read(tmp_path, caplog):
    root = make_tree(tmp_path / "d", ("train", "test", "eval"))
    (root / "__MACOSX").mkdir()
    (root / ".thumbs").mkdir()
    with caplog.at_level("WARNING", logger="transfer_core.data.imagefolder"):
        splits = load_splits(_cfg(tmp_path, root), 8)
    assert splits.info["folders_not_read"] == ["eval"] and len(splits.val) == 0
    assert f"image folder {root}: eval/ not read: the split folders are read by their names" in caplog.text


def _numbered_tree(root: Path, codes) -> Path:
    """train/ and test/ with a class folder per code, each image a gray of 10 * (code + 1): its code seen in it."""
    for split in ("train", "test"):
        for code in codes:
            d = root / split / str(code)
            d.mkdir(parents=True)
            Image.new("RGB", (12, 12), (10 * (code + 1),) * 3).save(d / "a.png")
    return root


def test_imagefolder_class_folders_named_by_number_are_ordered_by_number_so_index_is_the_code(tmp_path):
    # folders 0..10 (AffectNet's 11 codes, as DAN names them) sorted as strings: 0, 1, 10, 2, ..., so class index 2
    # was folder 10, and tables and confusion matrices listed the classes in that order
    splits = load_splits(_cfg(tmp_path, _numbered_tree(tmp_path / "d", range(11))), 8)
    assert splits.class_names == tuple(str(code) for code in range(11))
    for split in (splits.train, splits.test):
        for image, label in zip(split.images, split.labels.tolist()):
            assert int(image.mean()) == 10 * (label + 1)       # label index = the folder's number


def test_imagefolder_order_by_number_changes_the_fingerprint_only_where_it_is_not_the_order_by_name(tmp_path):
    # a decode cached with string order holds other label indices: a tree whose order changed must not be served it;
    # one whose orders agree (0..9, names not numbers) keeps its fingerprint, cached decode and recorded runs
    from transfer_core.data.base import get_source

    def params(root):
        cfg = _cfg(tmp_path, root)
        return get_source(cfg).scan(cfg).params

    assert params(_numbered_tree(tmp_path / "eleven", range(11))) == {"class_order": "numeric"}
    assert params(_numbered_tree(tmp_path / "eight", range(8))) == {}
    assert params(make_tree(tmp_path / "names")) == {}
    mixed = make_tree(tmp_path / "mixed", classes=("10", "9", "x"))
    assert params(mixed) == {} and class_names_of(_cfg(tmp_path, mixed)) == ("10", "9", "x")
