"""The decode-once cache and the fingerprint that names it."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import transfer_core.data.base as base
from transfer_core.config import DataConfig
from transfer_core.data import load_splits
from transfer_core.data import cache as cache_mod


def _folder_tree(root: Path, per_class: int = 3) -> Path:
    for split in ("train", "test"):
        for c, colour in enumerate([(250, 10, 10), (10, 250, 10)]):
            d = root / split / f"class{c}"
            d.mkdir(parents=True, exist_ok=True)
            for i in range(per_class):
                Image.new("RGB", (12, 12), colour).save(d / f"{i}.png")
    return root


def _cfg(tmp_path, **kw) -> DataConfig:
    kw.setdefault("val_fraction", 0.0)
    return DataConfig(dataset="imagefolder", root=str(tmp_path / "data"), cache_dir=str(tmp_path / "cache"), **kw)


def _forbid_decoding(monkeypatch):
    def boom(*args, **kwargs):
        raise AssertionError("decoded an image on a cache hit")

    monkeypatch.setattr(base, "decode_image", boom)
    monkeypatch.setattr(base, "decode_files", boom)


def test_cache_second_load_decodes_nothing(tmp_path, monkeypatch):
    _folder_tree(tmp_path / "data")
    first = load_splits(_cfg(tmp_path), 8)
    assert first.info["cache_hit"] is False
    _forbid_decoding(monkeypatch)
    second = load_splits(_cfg(tmp_path), 8)
    assert second.info["cache_hit"] is True and second.fingerprint == first.fingerprint
    np.testing.assert_array_equal(second.train.images, first.train.images)
    np.testing.assert_array_equal(second.test.labels, first.test.labels)


def test_cache_synthetic_second_load_generates_nothing(tmp_path, monkeypatch):
    cfg = DataConfig(synthetic_per_class=4, cache_dir=str(tmp_path / "cache"))
    load_splits(cfg, 8)
    import transfer_core.data.synthetic as synthetic

    monkeypatch.setattr(synthetic, "generate", lambda *a, **k: (_ for _ in ()).throw(AssertionError("generated")))
    assert load_splits(cfg, 8).info["cache_hit"] is True


def test_cache_arrays_are_memory_mapped_on_a_hit(tmp_path):
    _folder_tree(tmp_path / "data")
    load_splits(_cfg(tmp_path), 8)
    splits = load_splits(_cfg(tmp_path), 8)
    assert isinstance(splits.test.images.base, np.memmap) or isinstance(splits.test.images, np.memmap)


def test_cache_val_settings_do_not_change_the_fingerprint(tmp_path, monkeypatch):
    _folder_tree(tmp_path / "data", per_class=4)
    a = load_splits(_cfg(tmp_path, val_fraction=0.0), 8)
    _forbid_decoding(monkeypatch)
    b = load_splits(_cfg(tmp_path, val_fraction=0.25, split_seed=3), 8)
    assert a.fingerprint == b.fingerprint and b.info["cache_hit"] and len(b.val) == 2


def test_fingerprint_changes_when_an_image_changes(tmp_path):
    root = _folder_tree(tmp_path / "data")
    a = load_splits(_cfg(tmp_path), 8)
    path = root / "train" / "class0" / "1.png"
    Image.new("RGB", (12, 12), (0, 0, 250)).save(path)
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    b = load_splits(_cfg(tmp_path), 8)
    assert a.fingerprint != b.fingerprint and b.info["cache_hit"] is False
    assert b.train.images[1, 0, 0].tolist()[2] > 200                      # the new blue image was decoded


def test_fingerprint_changes_when_an_image_is_added(tmp_path):
    root = _folder_tree(tmp_path / "data")
    a = load_splits(_cfg(tmp_path), 8)
    Image.new("RGB", (12, 12), (1, 2, 3)).save(root / "test" / "class1" / "new.png")
    b = load_splits(_cfg(tmp_path), 8)
    assert a.fingerprint != b.fingerprint and len(b.test) == len(a.test) + 1


def test_fingerprint_changes_when_a_label_file_changes(tmp_path):
    root = tmp_path / "raf"
    (root / "EmoLabel").mkdir(parents=True)
    (root / "Image" / "aligned").mkdir(parents=True)
    for name in ("train_00001", "train_00002", "test_0001"):
        Image.new("RGB", (10, 10), (9, 9, 9)).save(root / "Image" / "aligned" / f"{name}_aligned.jpg")
    labels = root / "EmoLabel" / "list_patition_label.txt"
    labels.write_text("train_00001.jpg 1\ntrain_00002.jpg 2\ntest_0001.jpg 3")
    cfg = DataConfig(dataset="rafdb", root=str(root), cache_dir=str(tmp_path / "cache"), val_fraction=0.0)
    a = load_splits(cfg, 8)
    labels.write_text("train_00001.jpg 1\ntrain_00002.jpg 4\ntest_0001.jpg 3")
    b = load_splits(cfg, 8)
    assert a.fingerprint != b.fingerprint
    assert a.train.labels.tolist() == [0, 1] and b.train.labels.tolist() == [0, 3]


def test_fingerprint_changes_with_the_image_size(tmp_path):
    _folder_tree(tmp_path / "data")
    assert load_splits(_cfg(tmp_path), 8).fingerprint != load_splits(_cfg(tmp_path), 9).fingerprint


def test_cache_root_defaults_to_env_then_home(tmp_path, monkeypatch):
    monkeypatch.setenv("TRANSFER_CACHE", str(tmp_path / "env"))
    assert cache_mod.cache_root(DataConfig()) == tmp_path / "env"
    assert cache_mod.cache_root(DataConfig(cache_dir=str(tmp_path / "own"))) == tmp_path / "own"
    monkeypatch.delenv("TRANSFER_CACHE")
    assert cache_mod.cache_root(DataConfig()) == Path("~/.cache/transfer-sweeps").expanduser()


def test_cache_crash_during_decoding_leaves_no_entry(tmp_path, monkeypatch):
    root = _folder_tree(tmp_path / "data")
    Image.new("RGB", (12, 12)).save(root / "test" / "class0" / "z.png")
    (root / "test" / "class0" / "z.png").write_bytes(b"not a png")           # decoding fails half-way
    with pytest.raises(base.DataError, match="cannot decode image"):
        load_splits(_cfg(tmp_path), 8)
    cache_dir = tmp_path / "cache"
    assert [p.name for p in cache_dir.iterdir()] == []                       # no entry, no temp folder


def test_cache_entry_without_meta_is_never_loaded(tmp_path):
    _folder_tree(tmp_path / "data")
    splits = load_splits(_cfg(tmp_path), 8)
    folder = Path(splits.info["cache_dir"])
    (folder / "meta.json").unlink()                                         # as if half written
    again = load_splits(_cfg(tmp_path), 8)
    assert again.info["cache_hit"] is False
    np.testing.assert_array_equal(again.train.images, splits.train.images)


def test_cache_entry_is_named_by_the_fingerprint(tmp_path):
    _folder_tree(tmp_path / "data")
    splits = load_splits(_cfg(tmp_path), 8)
    assert Path(splits.info["cache_dir"]).name == f"imagefolder-8px-{splits.fingerprint[:24]}"
    assert len(splits.fingerprint) == 64 and int(splits.fingerprint, 16) >= 0


def test_decoding_many_images_in_threads_keeps_their_order(tmp_path):
    root = tmp_path / "data"
    for split, n in (("train", 300), ("test", 2)):
        for c in range(2):
            d = root / split / f"c{c}"
            d.mkdir(parents=True)
            for i in range(n):
                Image.new("RGB", (4, 4), (i % 256, c * 200, 7)).save(d / f"{i:04d}.png")
    splits = load_splits(_cfg(tmp_path), 4)
    assert splits.train.images[:, 0, 0, 0].tolist() == [i % 256 for i in range(300)] * 2
    assert splits.train.labels.tolist() == [0] * 300 + [1] * 300


def test_cache_in_an_unwritable_place_names_the_fix(tmp_path):
    _folder_tree(tmp_path / "data")
    (tmp_path / "file").write_text("x")
    cfg = DataConfig(dataset="imagefolder", root=str(tmp_path / "data"), cache_dir=str(tmp_path / "file" / "c"))
    with pytest.raises(base.DataError, match=r"cannot write the decoded-data cache in .*file/c .*set "
                                             r"data.cache_dir or \$TRANSFER_CACHE"):
        load_splits(cfg, 8)


def test_cached_data_lists_each_entry_with_its_size_and_last_load_and_remove_cached_deletes_one(tmp_path):
    # each data version x image size adds an entry (AffectNet at 112 px: ~11 GB) and none went away
    _folder_tree(tmp_path / "data")
    load_splits(_cfg(tmp_path), 8)
    load_splits(_cfg(tmp_path), 10)
    old, new = sorted(cache_mod.cached_data(tmp_path / "cache"), key=lambda e: e.image_size)
    assert (old.dataset, old.image_size, old.root) == ("imagefolder", 8, str(tmp_path / "data"))
    assert old.size_bytes == sum(p.stat().st_size for p in old.folder.iterdir()) > 12 * 8 * 8 * 3
    os.utime(old.folder / cache_mod.META, (1, 1))
    load_splits(_cfg(tmp_path), 10)   # a load is a use
    assert [e.image_size for e in cache_mod.cached_data(tmp_path / "cache")] == [10, 8], "latest used first"
    cache_mod.remove_cached(old)
    assert [e.image_size for e in cache_mod.cached_data(tmp_path / "cache")] == [10]
    assert not list((tmp_path / "cache").glob(".tmp-*")) and cache_mod.cached_data(tmp_path / "nowhere") == []


def test_cache_on_a_disk_without_room_is_a_data_error_before_decoding(tmp_path, monkeypatch):
    # decoded into sparse memory-mapped files, a full disk killed the process with SIGBUS ("Bus error"), without
    # a word, and left its half-written temporary folder holding the space for a day
    _folder_tree(tmp_path / "data")
    real = cache_mod.shutil.disk_usage
    monkeypatch.setattr(cache_mod.shutil, "disk_usage", lambda p: real(p)._replace(free=100))
    with pytest.raises(base.DataError, match=r"no room for the decoded data in the cache folder .*cache: it needs "
                                             r"2\.2 KiB \(12 images of imagefolder at 8 px, uint8 RGB\), 100 B free "
                                             r"there: .*--set data\.cache_dir=PATH \(or \$TRANSFER_CACHE=PATH\)"):
        load_splits(_cfg(tmp_path), 8)
    assert not [p for p in (tmp_path / "cache").iterdir()], "no temporary folder is left behind"


@pytest.mark.skipif(not hasattr(os, "posix_fallocate"), reason="no posix_fallocate here")
def test_cache_disk_filling_while_decoding_is_a_data_error_not_a_bus_error(tmp_path, monkeypatch):
    # another process took the room between the check and the decoding: the files' blocks are reserved first
    _folder_tree(tmp_path / "data")

    def full(fd, offset, length):
        raise OSError(cache_mod.errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(cache_mod.os, "posix_fallocate", full)
    with pytest.raises(base.DataError, match=r"no room for the decoded data in the cache folder .*cache: it needs "
                                             r".* \(train: 6 images at 8 px; No space left on device\)"):
        load_splits(_cfg(tmp_path), 8)
    assert not [p for p in (tmp_path / "cache").iterdir()], "no temporary folder is left behind"


def test_a_cache_hit_on_an_entry_an_earlier_version_decoded_records_what_the_scan_says_now(tmp_path, monkeypatch):
    # the same files keep their fingerprint, so an entry decoded before a reader said more of them (RAF-DB's sizes
    # against the official partition, AffectNet's test_source) was served with the info of then: data.json lacked it
    import json

    from test_data_rafdb import make_rafdb

    root = make_rafdb(tmp_path / "data")
    cfg = DataConfig(dataset="rafdb", root=str(root), cache_dir=str(tmp_path / "cache"), val_fraction=0.0)
    first = load_splits(cfg, 8)
    meta = Path(first.info["cache_dir"]) / "meta.json"
    before = json.loads(meta.read_text())
    said = before["info"].pop("differs_from_official")
    meta.write_text(json.dumps(before))   # as a version before wrote it
    _forbid_decoding(monkeypatch)
    again = load_splits(cfg, 8)
    assert again.info["cache_hit"] and again.fingerprint == first.fingerprint
    assert again.info["differs_from_official"] == said
    assert {k: v for k, v in again.info.items() if k != "cache_hit"} == \
        {k: v for k, v in first.info.items() if k != "cache_hit"}
