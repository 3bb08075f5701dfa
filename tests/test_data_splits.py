"""Validation carving, check_layout / load_splits agreement, and class counts without decoding."""

from __future__ import annotations

import numpy as np
import pytest

from transfer_core.config import DataConfig
from transfer_core.data import (DATASETS, DataError, carve_validation, check_layout, class_names_of, load_splits,
                                num_classes_of)
from transfer_core.registry import RegistryError


def test_carve_validation_is_stratified():
    labels = np.repeat(np.arange(4), [40, 20, 10, 30])
    train, val = carve_validation(labels, 0.1, 0)
    assert np.bincount(labels[val]).tolist() == [4, 2, 1, 3]
    assert np.bincount(labels[train]).tolist() == [36, 18, 9, 27]


def test_carve_validation_is_deterministic_and_seeded():
    labels = np.repeat(np.arange(3), 50)
    a = carve_validation(labels, 0.2, 7)
    b = carve_validation(labels, 0.2, 7)
    c = carve_validation(labels, 0.2, 8)
    assert np.array_equal(a[1], b[1]) and not np.array_equal(a[1], c[1])


def test_carve_validation_is_disjoint_and_covers_train():
    labels = np.random.default_rng(0).integers(0, 5, size=200)
    train, val = carve_validation(labels, 0.3, 1)
    assert len(np.intersect1d(train, val)) == 0
    assert np.array_equal(np.sort(np.concatenate([train, val])), np.arange(200))


def test_carve_validation_keeps_one_training_example_per_class():
    labels = np.array([0, 0, 1])
    train, val = carve_validation(labels, 0.9, 0)
    assert set(labels[train]) == {0, 1}


def test_carve_validation_fraction_zero_gives_empty_val():
    train, val = carve_validation(np.arange(10) % 2, 0.0, 0)
    assert len(val) == 0 and len(train) == 10


def test_load_splits_carves_val_from_train_and_leaves_test(tmp_path):
    cfg = DataConfig(synthetic_per_class=20, val_fraction=0.25, cache_dir=str(tmp_path))
    splits = load_splits(cfg, 12)
    whole = load_splits(DataConfig(synthetic_per_class=20, val_fraction=0.0, cache_dir=str(tmp_path)), 12)
    assert np.bincount(splits.val.labels).tolist() == [5] * 7
    assert len(splits.train) + len(splits.val) == len(whole.train) == 140
    assert np.array_equal(splits.test.images, whole.test.images)
    rows = {img.tobytes() for img in whole.train.images}
    assert all(img.tobytes() in rows for img in splits.val.images)
    train_rows = {img.tobytes() for img in splits.train.images}
    assert not any(img.tobytes() in train_rows for img in splits.val.images)
    assert splits.info["val_source"].startswith("carved from train")


def test_load_splits_val_fraction_zero_gives_an_empty_val_split(tmp_path):
    splits = load_splits(DataConfig(synthetic_per_class=4, val_fraction=0.0, cache_dir=str(tmp_path)), 8)
    assert len(splits.val) == 0 and splits.val.images.shape == (0, 8, 8, 3)
    assert splits.info["val_source"].startswith("none")


def test_load_splits_info_counts_every_split(tmp_path):
    splits = load_splits(DataConfig(synthetic_per_class=8, cache_dir=str(tmp_path)), 8)
    assert splits.info["counts"] == {"train": len(splits.train), "val": len(splits.val), "test": len(splits.test)}
    assert sum(splits.info["class_counts"]["val"]) == len(splits.val)


def test_check_layout_and_load_splits_raise_the_same_error(tmp_path):
    cfg = DataConfig(dataset="rafdb", root=str(tmp_path / "missing"), cache_dir=str(tmp_path / "c"))
    with pytest.raises(DataError, match="does not exist") as a:
        check_layout(cfg)
    with pytest.raises(DataError) as b:
        load_splits(cfg, 8)
    assert str(a.value) == str(b.value)


@pytest.mark.parametrize("dataset,expected", [("synthetic", 7), ("rafdb", 7), ("ferplus", 8), ("fer2013", 7)])
def test_num_classes_of_needs_no_files(dataset, expected):
    cfg = DataConfig(dataset=dataset, root=None if dataset == "synthetic" else "/nowhere")
    assert num_classes_of(cfg) == expected == len(class_names_of(cfg))


@pytest.mark.parametrize("classes", [7, 8])
def test_num_classes_of_affectnet_follows_its_config(classes):
    cfg = DataConfig(dataset="affectnet", root="/nowhere", affectnet_classes=classes)
    assert num_classes_of(cfg) == classes
    assert class_names_of(cfg)[:2] == ("Neutral", "Happy")


def test_datasets_registry_names_every_data_set():
    assert set(DATASETS.names()) == {"synthetic", "rafdb", "ferplus", "affectnet", "fer2013", "imagefolder"}
    with pytest.raises(RegistryError, match="Valid: "):
        DATASETS.get("raf")


def test_data_error_is_a_value_error():
    assert issubclass(DataError, ValueError)


def test_transfer_core_data_imports_no_orchestration_libraries():
    import ast
    from pathlib import Path

    import transfer_core.data

    for path in Path(transfer_core.data.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            for name in names:
                assert name.split(".")[0] not in ("ray", "optuna", "mlflow", "click"), f"{path.name} imports {name}"


def _affectnet(root):
    from test_data_affectnet import make_lists

    return make_lists(root, [0, 1], [2])


def _ferplus(root):
    from test_data_fer import write_ferplus_csv

    root.mkdir(parents=True)
    return write_ferplus_csv(root)


def _imagefolder(root):
    from test_data_imagefolder import make_tree

    return make_tree(root)


@pytest.mark.parametrize("dataset, make, given", [
    ("affectnet", _affectnet, "Manually_Annotated_file_lists"),   # the lists' folder, as a user may take it
    ("affectnet", _affectnet, ".."),
    ("ferplus", _ferplus, ".."),
    ("imagefolder", _imagefolder, "train"),
])
def test_a_data_folder_given_one_level_off_names_the_one_that_is_laid_out_right(tmp_path, dataset, make, given):
    # only RAF-DB named it: the others said "not found under ..." and no more
    root = make(tmp_path / "sets" / "mine")
    wrong = (root / given).resolve()
    with pytest.raises(DataError, match=rf"; {root} is laid out as {dataset} is: give that folder "
                                        rf"\(--data {dataset}={root}\)"):
        check_layout(DataConfig(dataset=dataset, root=str(wrong), cache_dir=str(tmp_path / "cache")))
