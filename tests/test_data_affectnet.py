"""AffectNet, both releases, on miniature copies (reference/datasets.md §3, §7)."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from transfer_core.config import DataConfig
from transfer_core.data import DataError, check_layout, load_splits

HEADER = ["subDirectory_filePath", "face_x", "face_y", "face_width", "face_height", "facial_landmarks",
          "expression", "valence", "arousal"]
BOX = (10, 20, 30, 25)                                       # x, y, w, h of the face in every image
BACKGROUND = (128, 128, 128)


def colour(code: int) -> tuple[int, int, int]:
    return (20 * code + 5, 250 - 20 * code, (97 * code) % 256)


def _image(path: Path, code: int, fmt: str = "PNG") -> None:
    """A 64x64 picture, grey outside the face box and the code's colour inside it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    img = Image.new("RGB", (64, 64), BACKGROUND)
    x, y, w, h = BOX
    img.paste(colour(code), (x, y, x + w, y + h))
    img.save(path, format=fmt)                               # PNG content under a .jpg name, as in the wild


def make_lists(root: Path, train_codes, test_codes, train_header=False, test_header=True, corrupt=()) -> Path:
    images = root / "Manually_Annotated" / "Manually_Annotated_Images"
    lists = root / "Manually_Annotated_file_lists"
    lists.mkdir(parents=True)
    landmarks = ";".join(["1.5"] * 136)
    for name, codes, header in (("training.csv", train_codes, train_header),
                                ("validation.csv", test_codes, test_header)):
        with open(lists / name, "w", newline="") as f:
            w = csv.writer(f)
            if header:
                w.writerow(HEADER)
            for i, code in enumerate(codes):
                rel = f"{100 + i}/{name[:5]}{i:03d}abc.jpg"
                if (name, i) in corrupt:
                    (images / rel).parent.mkdir(parents=True, exist_ok=True)
                    (images / rel).write_bytes(b"<html>not an image</html>")
                else:
                    _image(images / rel, code, "PNG" if i % 2 else "JPEG")
                w.writerow([rel, *BOX, landmarks, code, "0.1", "-2"])
    return root


def make_npy(root: Path, train_codes, val_codes, val_dir: str = "val_set", as_string=True) -> Path:
    for folder, codes in (("train_set", train_codes), (val_dir, val_codes)):
        (root / folder / "images").mkdir(parents=True)
        (root / folder / "annotations").mkdir(parents=True)
        for i, code in enumerate(codes):
            img = Image.new("RGB", (30, 30), colour(code))
            img.save(root / folder / "images" / f"{i}.jpg", quality=95)
            value = np.array(str(code)) if as_string else np.array(code)
            np.save(root / folder / "annotations" / f"{i}_exp.npy", value)
            np.save(root / folder / "annotations" / f"{i}_val.npy", np.array("0.5"))
    return root


def _cfg(tmp_path, root: Path, **kw) -> DataConfig:
    kw.setdefault("val_fraction", 0.0)
    return DataConfig(dataset="affectnet", root=str(root), cache_dir=str(tmp_path / "cache"), **kw)


def _mean_colours(images: np.ndarray) -> list[tuple[int, ...]]:
    return [tuple(int(round(c)) for c in img.reshape(-1, 3).mean(0)) for img in images]


def _close(a, b, tol=6) -> bool:
    return all(abs(x - y) <= tol for x, y in zip(a, b))


# --------------------------------------------------------------------------- (a) file lists

def test_affectnet_lists_crop_to_the_face_box(tmp_path):
    root = make_lists(tmp_path / "an", [0, 1, 6], [3, 4])
    splits = load_splits(_cfg(tmp_path, root), 16)
    assert splits.train.labels.tolist() == [0, 1, 6]
    for img, code in zip(splits.train.images, splits.train.labels):
        inside = img[4:-4, 4:-4].reshape(-1, 3).mean(0)                 # no grey background left: cropped
        assert _close(inside, colour(int(code))), (inside, colour(int(code)))
        assert not _close(img.reshape(-1, 3).mean(0), BACKGROUND, tol=20)


def test_affectnet_lists_sniff_the_header(tmp_path):
    root = make_lists(tmp_path / "an", [0, 1], [2, 3, 4], train_header=False, test_header=True)
    splits = load_splits(_cfg(tmp_path, root), 8)
    assert splits.train.labels.tolist() == [0, 1] and splits.test.labels.tolist() == [2, 3, 4]
    assert splits.info["train_list"]["header"] is False and splits.info["test_list"]["header"] is True


def test_affectnet_header_with_its_first_column_renamed_is_named_as_a_header(tmp_path):
    # read as a data row, it was reported as a malformed face box
    root = make_lists(tmp_path / "an", [0, 1], [2], test_header=True)
    lists = root / "Manually_Annotated_file_lists" / "validation.csv"
    lists.write_text(lists.read_text().replace("subDirectory_filePath", "subDirectory_FilePath", 1))
    with pytest.raises(DataError, match=r"validation\.csv line 1: header lacks column\(s\) subDirectory_filePath"):
        check_layout(_cfg(tmp_path, root))


def test_affectnet_lists_with_header_on_training_too(tmp_path):
    root = make_lists(tmp_path / "an", [5, 6], [0], train_header=True, test_header=False)
    assert load_splits(_cfg(tmp_path, root), 8).train.labels.tolist() == [5, 6]


@pytest.mark.parametrize("classes,expected", [(7, [0, 6]), (8, [0, 6, 7])])
def test_affectnet_lists_drop_codes_8_to_10_and_7_for_seven_classes(tmp_path, classes, expected):
    root = make_lists(tmp_path / "an", [0, 8, 6, 9, 7, 10], [1, 8, 2])
    splits = load_splits(_cfg(tmp_path, root, affectnet_classes=classes), 8)
    assert splits.train.labels.tolist() == expected and splits.test.labels.tolist() == [1, 2]
    assert len(splits.class_names) == classes
    dropped = splits.info["train_list"]["dropped_codes"]
    assert dropped == ({"Contempt": 1, "None": 1, "Uncertain": 1, "No-Face": 1} if classes == 7
                       else {"None": 1, "Uncertain": 1, "No-Face": 1})


def test_affectnet_corrupt_image_is_skipped_and_counted(tmp_path, caplog):
    # AffectNet holds a handful of unreadable files among its ~290,000 (datasets.md): up to 1 % of a split
    root = make_lists(tmp_path / "an", [0, 1, 2, 3] + [5] * 99, [4], corrupt={("training.csv", 2)})
    with caplog.at_level("WARNING"):
        splits = load_splits(_cfg(tmp_path, root), 8)
    assert splits.train.labels.tolist() == [0, 1, 3] + [5] * 99
    assert splits.info["skipped"] == 1 and splits.info["skipped_files"][0].endswith("102/train002abc.jpg")
    assert "skipping unreadable image" in caplog.text
    again = load_splits(_cfg(tmp_path, root), 8)                        # from the cache: same count
    assert again.info["cache_hit"] and again.info["skipped"] == 1


def test_affectnet_many_unreadable_images_are_an_error_as_many_missing_ones_are(tmp_path):
    # half the test images HTML error pages (or LFS pointers, or empty files): skipped without a cap, the test
    # split shrank to the other half (classes gone) with a warning, where as many missing files are refused
    root = make_lists(tmp_path / "an", [0, 1, 2, 3], [4, 5, 6, 0],
                      corrupt={("validation.csv", 1), ("validation.csv", 3)})
    with pytest.raises(DataError, match=r"^2 of the 4 listed test images \(50\.0 %\) cannot be decoded \(first: .*"
                                        r"valid001abc\.jpg, listed in Manually_Annotated_file_lists/validation\.csv "
                                        r"line 3\): a few unreadable files \(up to 1 % of a split\) are skipped"):
        load_splits(_cfg(tmp_path, root), 8)


def test_affectnet_missing_image_is_skipped_and_counted(tmp_path, caplog):
    # AffectNet lacks a handful of its ~290,000 images
    root = make_lists(tmp_path / "an", [0, 1, 2] * 34, [4])
    (root / "Manually_Annotated" / "Manually_Annotated_Images" / "101" / "train001abc.jpg").unlink()
    with caplog.at_level("WARNING"):
        splits = load_splits(_cfg(tmp_path, root), 8)
    assert len(splits.train) == 101 and splits.train.labels.tolist()[:2] == [0, 2] and splits.info["skipped"] == 1
    assert "1 of 103 listed images (1.0 %) is missing and is skipped" in caplog.text, "a partial download shows its share"


def test_affectnet_missing_and_unreadable_images_count_together_against_the_cap(tmp_path):
    # 1 missing and 1 unreadable of 102 listed: each alone is within 1 %, together 2 % of the split is gone
    root = make_lists(tmp_path / "an", [0, 1, 2] * 34, [4], corrupt={("training.csv", 2)})
    (root / "Manually_Annotated" / "Manually_Annotated_Images" / "101" / "train001abc.jpg").unlink()
    with pytest.raises(DataError, match=r"^1 of the 102 listed train images cannot be decoded and 1 does not exist "
                                        r"\(2\.0 % skipped\) \(first: .*102/train002abc\.jpg, listed in .*training\.csv "
                                        r"line 3\): a few unreadable files \(up to 1 % of a split, missing ones "
                                        r"included\) are skipped"):
        load_splits(_cfg(tmp_path, root), 8)


def test_affectnet_face_box_wholly_outside_its_image_is_skipped_as_unreadable_not_trained_as_black(tmp_path, caplog):
    # PIL's crop pads outside the image with black: a box past the image's edge was a black face, labelled
    root = make_lists(tmp_path / "an", [0, 1, 2] * 34, [4])
    training = root / "Manually_Annotated_file_lists" / "training.csv"
    lines = training.read_text().splitlines()
    fields = lines[2].split(",")
    fields[1:3] = ["500", "0"]   # x 500 in a 64x64 image
    lines[2] = ",".join(fields)
    training.write_text("\n".join(lines) + "\n")
    with caplog.at_level("WARNING"):
        splits = load_splits(_cfg(tmp_path, root), 8)
    assert len(splits.train) == 101 and splits.info["skipped"] == 1
    assert "face box (x 500, y 0, width" in caplog.text and "lies wholly outside the" in caplog.text


def test_affectnet_images_under_another_extension_are_named_as_such(tmp_path):
    # the reader that skips missing images said "one folder deeper or shallower?" for images in the right folder
    root = make_lists(tmp_path / "an", [0, 1, 2, 3], [4])
    for image in (root / "Manually_Annotated" / "Manually_Annotated_Images").glob("*/*.jpg"):
        image.rename(image.with_suffix(".png"))
    (root / "Manually_Annotated" / "Manually_Annotated_Images" / "100" / "train000abc.txt").write_text("notes")
    with pytest.raises(DataError, match=r"listed in .*\) does not exist, the only listed test image, "
                                        r"but valid000abc.png does: expected the images under the names the label file "
                                        r"gives \(rename or convert them to .jpg\)"):
        check_layout(_cfg(tmp_path, root))


def test_affectnet_with_more_than_a_few_images_missing_is_an_error_naming_the_first(tmp_path):
    # a half-extracted archive trained with a warning, its test set no longer the one numbers are compared on
    root = make_lists(tmp_path / "an", [0, 1, 2, 3], [4])
    for name in ("train001abc.jpg", "train003abc.jpg"):
        next((root / "Manually_Annotated" / "Manually_Annotated_Images").glob(f"*/{name}")).unlink()
    with pytest.raises(DataError, match=r"2 of the 4 listed train images \(50.0 %\) do not exist \(first: "
                                        r".*101/train001abc.jpg, listed in .*training.csv.*\): a few missing files "
                                        r"\(up to 1 % of a split\) are skipped"):
        check_layout(_cfg(tmp_path, root))


def test_affectnet_images_folder_at_top_level_is_found(tmp_path):
    root = make_lists(tmp_path / "an", [0, 1], [2])
    (root / "Manually_Annotated" / "Manually_Annotated_Images").rename(root / "Manually_Annotated_Images")
    assert load_splits(_cfg(tmp_path, root), 8).info["image_dir"] == "Manually_Annotated_Images"


def test_affectnet_unknown_code_names_file_and_line(tmp_path):
    root = make_lists(tmp_path / "an", [0, 11], [2], train_header=True)
    with pytest.raises(DataError, match=r"training.csv line 3: expression '11' is unknown: expected an integer "
                                        r"code 0..10"):
        check_layout(_cfg(tmp_path, root))


def test_affectnet_short_line_names_file_and_line(tmp_path):
    root = make_lists(tmp_path / "an", [0], [2])
    with open(root / "Manually_Annotated_file_lists" / "validation.csv", "a") as f:
        f.write("1/x.jpg,1,2\n")
    with pytest.raises(DataError, match=r"validation.csv line 3: 3 fields: expected subDirectory_filePath"):
        check_layout(_cfg(tmp_path, root))


def test_affectnet_bad_face_box_names_file_and_line(tmp_path):
    root = make_lists(tmp_path / "an", [0], [2], test_header=False)
    path = root / "Manually_Annotated_file_lists" / "validation.csv"
    path.write_text(path.read_text().replace(",30,25,", ",0,25,"))
    with pytest.raises(DataError, match=r"validation.csv line 1: face box .* is malformed"):
        check_layout(_cfg(tmp_path, root))


@pytest.mark.parametrize("width", ["inf", "-inf", "1e999"])
def test_affectnet_infinite_face_box_names_file_and_line(tmp_path, width):
    # int(float("inf")) raises OverflowError, which was not caught: a traceback, not the file and line
    root = make_lists(tmp_path / "an", [0], [2], test_header=False)
    path = root / "Manually_Annotated_file_lists" / "validation.csv"
    path.write_text(path.read_text().replace(",30,25,", f",{width},25,"))
    with pytest.raises(DataError, match=r"validation.csv line 1: face box .* is malformed"):
        check_layout(_cfg(tmp_path, root))


def test_affectnet_missing_validation_list_is_named(tmp_path):
    root = make_lists(tmp_path / "an", [0], [2])
    (root / "Manually_Annotated_file_lists" / "validation.csv").unlink()
    with pytest.raises(DataError, match=r"validation.csv does not exist"):
        check_layout(_cfg(tmp_path, root))


def test_affectnet_unrecognised_folder_is_named(tmp_path):
    (tmp_path / "an").mkdir()
    with pytest.raises(DataError, match=r"AffectNet not found .*Manually_Annotated_file_lists/training.csv"):
        check_layout(_cfg(tmp_path, tmp_path / "an"))


# --------------------------------------------------------------------------- (b) npy release

@pytest.mark.parametrize("as_string", [True, False])
def test_affectnet_npy_reads_string_or_number_codes(tmp_path, as_string):
    root = make_npy(tmp_path / "an", [3, 0, 7, 5, 9], [1, 2], as_string=as_string)
    splits = load_splits(_cfg(tmp_path, root), 8)
    assert splits.train.labels.tolist() == [3, 0, 5]                   # 7 and 9 dropped (7 classes)
    assert splits.test.labels.tolist() == [1, 2]
    for img, code in zip(splits.train.images, splits.train.labels):
        assert _close(img.reshape(-1, 3).mean(0), colour(int(code)))


def test_affectnet_npy_eight_classes_keep_contempt(tmp_path):
    root = make_npy(tmp_path / "an", [3, 7], [7], val_dir="valid_set")
    splits = load_splits(_cfg(tmp_path, root, affectnet_classes=8), 8)
    assert splits.train.labels.tolist() == [3, 7] and splits.test.labels.tolist() == [7]


def test_affectnet_npy_corrupt_image_is_skipped(tmp_path):
    root = make_npy(tmp_path / "an", [0, 1, 2] + [4] * 98, [3])
    (root / "train_set" / "images" / "1.jpg").write_bytes(b"\x00" * 50)
    splits = load_splits(_cfg(tmp_path, root), 8)
    assert splits.train.labels.tolist() == [0, 2] + [4] * 98 and splits.info["skipped"] == 1


def test_affectnet_npy_bad_annotation_names_the_file(tmp_path):
    root = make_npy(tmp_path / "an", [0, 1], [3])
    np.save(root / "train_set" / "annotations" / "1_exp.npy", np.array("happy"))
    with pytest.raises(DataError, match=r"1_exp.npy: cannot read an expression code"):
        check_layout(_cfg(tmp_path, root))


def test_affectnet_npy_missing_val_set_is_named(tmp_path):
    root = make_npy(tmp_path / "an", [0, 1], [3])
    (root / "val_set").rename(root / "other")
    with pytest.raises(DataError, match=r"val_set does not exist: expected val_set or valid_set"):
        check_layout(_cfg(tmp_path, root))


def test_affectnet_npy_changed_annotation_changes_the_fingerprint(tmp_path):
    root = make_npy(tmp_path / "an", [0, 1], [3])
    a = load_splits(_cfg(tmp_path, root), 8)
    np.save(root / "train_set" / "annotations" / "1_exp.npy", np.array("2"))
    b = load_splits(_cfg(tmp_path, root), 8)
    assert a.fingerprint != b.fingerprint and b.train.labels.tolist() == [0, 2]


def test_affectnet_uses_the_balanced_sampler_by_default(tmp_path):
    from transfer_core.data.loaders import sampler_kind

    assert sampler_kind(_cfg(tmp_path, tmp_path)) == "balanced"


def test_affectnet_every_image_missing_names_one_and_the_folder(tmp_path):
    root = make_lists(tmp_path / "an", [0, 1, 2], [0, 1])
    images = root / "Manually_Annotated" / "Manually_Annotated_Images"
    (images.parent / "extra").mkdir()
    images.rename(images.parent / "extra" / "Manually_Annotated_Images")   # one folder deeper than expected
    (images.parent / "Manually_Annotated_Images").mkdir()
    with pytest.raises(DataError, match=r"Manually_Annotated_Images/100/valid000abc.jpg \(listed in "
                                        r"Manually_Annotated_file_lists/validation.csv line 2\) does not exist, "
                                        r"nor does any of the 2 listed test images"):
        check_layout(_cfg(tmp_path, root))


def test_a_face_box_is_cropped_from_the_stored_pixels_before_an_exif_orientation_is_applied(tmp_path):
    # AffectNet's boxes are in stored pixels (Face2Exp crops them so): with data.exif_orientation=applied the crop is
    # turned as a viewer shows it, not taken from the turned image (where this box would run off its edge, black)
    from test_data_imagefolder import phone_photo
    from transfer_core.data.base import decode_image

    phone_photo(tmp_path / "phone.jpg")                                  # stored red left, blue right; shown turned
    box = (0, 0, 20, 5)                                                  # the stored image's top half
    as_stored = decode_image(tmp_path / "phone.jpg", 8, box)
    assert as_stored[4, 0, 0] > 200 and as_stored[4, 7, 2] > 200         # red left, blue right
    turned = decode_image(tmp_path / "phone.jpg", 8, box, exif_applied=True)
    assert turned[0, 4, 0] > 200 and turned[7, 4, 2] > 200               # red on top, blue below; no black
    assert turned.reshape(-1, 3).max(axis=1).min() > 150


def test_affectnet_header_begun_with_a_comment_mark_is_read_as_the_header(tmp_path):
    # '#subDirectory_filePath,face_x,...' as copies in the wild write it (pandas readers index
    # df['#subDirectory_filePath']): it was refused as a header lacking subDirectory_filePath
    root = make_lists(tmp_path / "an", [0, 1], [2, 3], train_header=True, test_header=True)
    for name in ("training.csv", "validation.csv"):
        path = root / "Manually_Annotated_file_lists" / name
        path.write_text("#" + path.read_text())
    splits = load_splits(_cfg(tmp_path, root), 8)
    assert splits.train.labels.tolist() == [0, 1] and splits.test.labels.tolist() == [2, 3]
    assert splits.info["train_list"]["header"] is True and splits.info["test_list"]["header"] is True


def test_affectnet_image_listed_twice_or_in_both_lists_is_read_as_listed_and_warned_of(tmp_path, caplog):
    # read without a word: a training image listed again (with another expression: one face, two labels), and a
    # test image training.csv lists too (trained on and tested on)
    root = make_lists(tmp_path / "an", [0, 1, 2], [3, 4], test_header=True)
    lists = root / "Manually_Annotated_file_lists"
    train_rows = (lists / "training.csv").read_text().splitlines()
    again = train_rows[1].split(",")
    again[6] = "5"
    test_row = (lists / "validation.csv").read_text().splitlines()[1]
    (lists / "training.csv").write_text("\n".join(train_rows + [",".join(again), test_row]) + "\n")
    with caplog.at_level("WARNING", logger="transfer_core.data.affectnet"):
        splits = load_splits(_cfg(tmp_path, root), 8)
    assert splits.train.labels.tolist() == [0, 1, 2, 5, 3] and splits.test.labels.tolist() == [3, 4]
    assert ("AffectNet: Manually_Annotated_file_lists/training.csv lists 1 image more than once (first: "
            "train001abc.jpg, at line 2 and line 4), 1 of them with another expression: each is read as often as "
            "listed") in caplog.text
    assert ("AffectNet: 1 image of the test split (validation.csv) is listed in training.csv too (first: "
            "valid000abc.jpg, at Manually_Annotated_file_lists/training.csv line 5 and "
            "Manually_Annotated_file_lists/validation.csv line 2): trained on and tested on") in caplog.text
    assert splits.info["listed_twice"] == {"train": 1} and splits.info["in_train_and_test"] == 1
    caplog.clear()
    with caplog.at_level("WARNING", logger="transfer_core.data.affectnet"):
        plain = load_splits(_cfg(tmp_path, make_lists(tmp_path / "plain", [0, 1], [2])), 8)
    assert "listed" not in caplog.text and "listed_twice" not in plain.info


@pytest.mark.parametrize("layout", ["lists", "npy"])
def test_affectnet_says_its_test_split_is_the_official_validation_set(tmp_path, layout):
    # the protocol (no public test set): the [data] line and data.json said only 'validation: carved from train'
    root = (make_lists(tmp_path / "an", [0, 1], [2]) if layout == "lists" else
            make_npy(tmp_path / "an", [0, 1], [2], val_dir="valid_set"))
    splits = load_splits(_cfg(tmp_path, root), 8)
    where = "validation.csv" if layout == "lists" else "valid_set/"
    assert splits.info["test_source"] == (f"AffectNet's validation set ({where}; it has no public test set, so papers "
                                          "test on it)")


def test_affectnet_images_no_file_list_names_are_warned_of_once_with_their_count_and_a_few_names(tmp_path, caplog):
    # a training.csv not regenerated after images were added: the new images were left out without a word
    root = make_lists(tmp_path / "an", [0, 1, 8], [2, 3])        # code 8 is listed (dropped), not unlisted
    images = root / "Manually_Annotated" / "Manually_Annotated_Images"
    for rel in ("100/extra1.jpg", "100/extra2.png", "555/extra3.jpg", "555/extra4.jpg"):
        _image(images / rel, 1)
    (images / "100" / "notes.txt").write_text("not an image")
    with caplog.at_level("WARNING", logger="transfer_core.data.affectnet"):
        splits = load_splits(_cfg(tmp_path, root), 16)
    said = [r.getMessage() for r in caplog.records if "listed in no label file" in r.getMessage()]
    assert said == ["AffectNet: 4 image files in its image folders are listed in no label file (training.csv or "
                    "validation.csv) and are not read (Manually_Annotated/Manually_Annotated_Images/100/extra1.jpg, "
                    "Manually_Annotated/Manually_Annotated_Images/100/extra2.png, "
                    "Manually_Annotated/Manually_Annotated_Images/555/extra3.jpg, ...): a label file older than the "
                    "images? Regenerate it to read them (a list of a subset, on purpose: nothing to do)"]
    assert splits.info["not_listed"] == 4 and len(splits.train) == 2


def test_affectnet_npy_images_without_an_annotation_are_warned_of(tmp_path, caplog):
    root = make_npy(tmp_path / "an", [0, 1, 2], [3, 4])
    Image.new("RGB", (30, 30), colour(1)).save(root / "val_set" / "images" / "99.jpg")
    with caplog.at_level("WARNING", logger="transfer_core.data.affectnet"):
        splits = load_splits(_cfg(tmp_path, root), 16)
    assert ("AffectNet: 1 image file in its image folders is listed in no label file (annotations/<N>_exp.npy) and "
            "is not read (val_set/images/99.jpg): a label file older than the images? Regenerate it to read it (a list of a subset, on purpose: nothing to do)") \
        in caplog.text
    assert splits.info["not_listed_files"] == ["val_set/images/99.jpg"]


def test_affectnet_whose_lists_name_every_image_says_nothing_of_unlisted_ones(tmp_path, caplog):
    with caplog.at_level("WARNING", logger="transfer_core.data.affectnet"):
        splits = load_splits(_cfg(tmp_path, make_lists(tmp_path / "an", [0, 1, 9], [2, 3])), 16)
    assert "listed in no label file" not in caplog.text and "not_listed" not in splits.info


def _list_a_tiff(root: Path, array: np.ndarray) -> None:
    """Make the first image of training.csv a TIFF of `array` (64x64), listed under its .tif name."""
    lists = root / "Manually_Annotated_file_lists" / "training.csv"
    images = root / "Manually_Annotated" / "Manually_Annotated_Images"
    (images / "100" / "train000abc.jpg").unlink()
    Image.fromarray(array).save(images / "100" / "train000abc.tif")
    lists.write_text(lists.read_text().replace("100/train000abc.jpg", "100/train000abc.tif"))


def test_affectnet_listing_a_float_tiff_gets_the_tiff_decoding_fingerprint_and_reads_it_not_black(tmp_path):
    # a float TIFF in 0..1 was decoded black before TIFF decoding changed (ec50420): a decode cached then must not
    # be served, so such a copy gets a fingerprint of its own, as image folders of TIFFs do
    from transfer_core.data.base import get_source

    root = make_lists(tmp_path / "float", [0, 1], [2, 3])
    _list_a_tiff(root, np.full((64, 64), 0.5, dtype=np.float32))
    cfg = _cfg(tmp_path, root, affectnet_classes=8)
    assert get_source(cfg).scan(cfg).params == {"classes": 8, "tiff_decoding": 2}
    splits = load_splits(cfg, 16)
    assert abs(float(splits.train.images[0].mean()) - 128) <= 1
    # an 8-bit TIFF (web images under other extensions) decodes as it did: the fingerprint it had
    plain = make_lists(tmp_path / "plain", [0, 1], [2, 3])
    _list_a_tiff(plain, np.full((64, 64, 3), 90, dtype=np.uint8))
    cfg = _cfg(tmp_path, plain, affectnet_classes=8)
    assert get_source(cfg).scan(cfg).params == {"classes": 8}


# --------------------------------------------------------------------------- whitespace-only lines

def test_affectnet_whitespace_only_list_lines_are_skipped_and_one_between_rows_warned_of_once_as_ferplus_does(
        tmp_path, caplog):
    # an empty line was skipped without a word, a line of spaces was "1 field: expected ...", an error; FERPlus's
    # CSVs skip both and warn of those between data rows
    root = make_lists(tmp_path / "an", [0, 1, 6], [3, 4], test_header=True)
    path = root / "Manually_Annotated_file_lists" / "validation.csv"
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines[:2] + ["", "   "] + lines[2:] + ["  "]) + "\n")
    with caplog.at_level("WARNING", logger="transfer_core.data.affectnet"):
        splits = load_splits(_cfg(tmp_path, root), 16)
    assert splits.train.labels.tolist() == [0, 1, 6] and splits.test.labels.tolist() == [3, 4]
    said = [r.getMessage() for r in caplog.records if "whitespace-only" in r.getMessage()]
    assert said == [f"{path}: 2 whitespace-only lines between data rows (first: line 3) are skipped (and 1 at the "
                    "end): the data rows are read as if they were not there"]



def test_affectnet_blank_lines_after_the_header_lie_before_the_first_data_row(tmp_path, caplog):
    # the header is no data row: a blank line after it was said to lie "between data rows"
    root = make_lists(tmp_path / "an", [0, 1, 6], [3, 4], test_header=True)
    path = root / "Manually_Annotated_file_lists" / "validation.csv"
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines[:1] + [""] + lines[1:]) + "\n")
    with caplog.at_level("WARNING", logger="transfer_core.data.affectnet"):
        splits = load_splits(_cfg(tmp_path, root), 16)
    assert splits.test.labels.tolist() == [3, 4]
    said = [r.getMessage() for r in caplog.records if "whitespace-only" in r.getMessage()]
    assert said == [f"{path}: 1 whitespace-only line before the first data row (first: line 2) is skipped: the data "
                    "rows are read as if it were not there"]
