"""The synthetic face set: deterministic, balanced, sized by its config, cached like any data set."""

from __future__ import annotations

import numpy as np
import pytest

from transfer_core.config import DataConfig
from transfer_core.data import class_names_of, load_splits, num_classes_of
from transfer_core.data.synthetic import CLASS_NAMES, NATIVE_SIZE, OCCLUSION_RATE, generate


def _cfg(tmp_path, **kw) -> DataConfig:
    kw.setdefault("synthetic_per_class", 8)
    return DataConfig(dataset="synthetic", cache_dir=str(tmp_path / "cache"), **kw)


def test_synthetic_same_seed_gives_identical_arrays():
    a_img, a_lab = generate(3, 6, "train")
    b_img, b_lab = generate(3, 6, "train")
    np.testing.assert_array_equal(a_img, b_img)
    np.testing.assert_array_equal(a_lab, b_lab)


def test_synthetic_other_seed_gives_different_arrays():
    a_img, _ = generate(0, 6, "train")
    b_img, _ = generate(1, 6, "train")
    assert not np.array_equal(a_img, b_img)


def test_synthetic_train_and_test_are_different_draws():
    train, _ = generate(0, 8, "train")
    test, _ = generate(0, 8, "test")
    assert not any(np.array_equal(train[i], test[j]) for i in range(4) for j in range(4))


def test_synthetic_native_arrays_are_uint8_rgb_and_not_flat():
    images, labels = generate(0, 5, "train")
    assert images.dtype == np.uint8 and images.shape == (35, NATIVE_SIZE, NATIVE_SIZE, 3)
    assert labels.dtype == np.int64
    assert images.reshape(35, -1).std(axis=1).min() > 10       # every image has structure


def test_synthetic_classes_are_balanced_and_test_is_a_quarter(tmp_path):
    splits = load_splits(_cfg(tmp_path, synthetic_per_class=16, val_fraction=0.0), 24)
    assert np.bincount(splits.train.labels).tolist() == [16] * 7
    assert np.bincount(splits.test.labels).tolist() == [4] * 7
    assert splits.train.images.shape == (7 * 16, 24, 24, 3)


def test_synthetic_test_split_has_at_least_four_per_class(tmp_path):
    splits = load_splits(_cfg(tmp_path, synthetic_per_class=4, val_fraction=0.0), 16)
    assert np.bincount(splits.test.labels).tolist() == [4] * 7


def test_synthetic_class_names_follow_rafdb_order(tmp_path):
    cfg = _cfg(tmp_path)
    assert class_names_of(cfg) == CLASS_NAMES == ("Surprise", "Fear", "Disgust", "Happiness", "Sadness",
                                                  "Anger", "Neutral")
    assert num_classes_of(cfg) == 7


def test_synthetic_info_marks_it_synthetic(tmp_path):
    splits = load_splits(_cfg(tmp_path), 16)
    assert splits.info["synthetic"] is True and splits.dataset == "synthetic"
    assert splits.info["skipped"] == 0


def test_synthetic_seed_changes_the_fingerprint(tmp_path):
    a = load_splits(_cfg(tmp_path, synthetic_seed=0), 16)
    b = load_splits(_cfg(tmp_path, synthetic_seed=1), 16)
    assert a.fingerprint != b.fingerprint
    assert not np.array_equal(a.train.images, b.train.images)


def test_synthetic_occludes_about_a_third_of_images():
    from transfer_core.data.synthetic import _draw_params

    rng = np.random.default_rng(0)
    params = _draw_params(rng, np.repeat(np.arange(7), 300))
    assert params["occluded"].mean() == pytest.approx(OCCLUSION_RATE, abs=0.04)
    assert set(np.unique(params["occ_kind"][params["occluded"]])) == {0, 1, 2}


def test_synthetic_classes_differ_on_average():
    images, labels = generate(0, 30, "train")
    means = np.stack([images[labels == c].astype(np.float32).mean(0) for c in range(7)])  # (7, H, W, 3)
    gaps = [np.abs(means[i] - means[j]).mean() for i in range(7) for j in range(i + 1, 7)]
    assert min(gaps) > 0.5                                     # no two classes are the same picture
