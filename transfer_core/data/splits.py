"""From a DataConfig to train / val / test arrays: check, fingerprint, decode once, carve val.

`check_layout(cfg)` runs every check that needs no image decoding (folder, label files parsed
fully, labels known, listed images present) and is what `load_splits` runs first, so both raise
the same DataError. `load_splits(cfg, image_size)` then decodes through the cache (cache.py) and
carves the validation split from train, stratified and deterministic in (val_fraction,
split_seed), after the cache, so changing them never invalidates it. Data sets with an official
validation split (FERPlus and FER2013: PublicTest; an image folder's val/) use it instead and
leave train whole, unless it holds no image; info["val_source"] says which.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from pathlib import Path

import numpy as np

from transfer_core.config import DataConfig
from transfer_core.data import cache
from transfer_core.data.base import (EXIF_PARAM, DataError, DataSplits, DecodedSplit, Layout, Source, class_counts,
                                     counted, fingerprint, get_source, quiet_scan, relative, stat_images)

log = logging.getLogger(__name__)

# The data whose images turned by EXIF this process has warned of, by data set, folder and the images: said once a
# run (a sweep decodes a folder once per image size; a notebook loads it again and again, a hit each time), again
# where other images are turned. data.json's reader records them at every load.
_EXIF_SAID: set[tuple] = set()


# --------------------------------------------------------------------------- without decoding

def _nearby_named(source: Source, cfg: DataConfig, exc: DataError) -> DataError:
    """`exc`, with the folder one level off cfg.root that holds the data set, where there is one."""
    near = _root_nearby(source, Path(cfg.root).expanduser()) if cfg.root else None
    if near is None:
        return exc
    return DataError(f"{exc}; {near} is laid out as {cfg.dataset} is: give that folder (--data {cfg.dataset}={near})")


def _prepare(cfg: DataConfig, checked: bool = False) -> tuple[Source, Layout, str]:
    """The source, scanned layout and image-stat digest of `cfg`; checked: its scan's warnings were shown by an
    earlier check of the same data (check_layout), and are not repeated."""
    source = get_source(cfg)
    with quiet_scan(checked):
        try:
            layout = source.scan(cfg)
        except DataError as exc:
            raise _nearby_named(source, cfg, exc) from None
        images_digest = stat_images(layout, skip_missing=source.skip_bad_images)
    if cfg.exif_orientation == "applied":
        if any(plan.paths is not None for plan in layout.splits.values()):
            layout.params = {**layout.params, EXIF_PARAM: "applied"}   # its own fingerprint: its own cache entry
        elif not checked:
            log.warning("%s at %s: data.exif_orientation=applied is not read: its images are pixel rows of %s, "
                        "which carry no EXIF orientation", cfg.dataset, cfg.root,
                        relative(layout.label_files[0], layout.root) if layout.label_files else "a CSV file")
    for split in ("train", "test"):
        if len(layout.splits[split]) == 0:
            raise DataError(f"{cfg.dataset} at {cfg.root}: the {split} split is empty after filtering: "
                            f"expected at least one labelled {split} image")
    return source, layout, images_digest


def _root_nearby(source: Source, root: Path) -> Path | None:
    """The folder one level off `root` (a folder inside it, its parent or the parent's parent) that holds
    the data set where its reader looks, when `root` does not: a path given one level too high or low."""
    if not root.is_dir() or source.is_root(root):
        return None
    try:
        inside = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))[:100]
    except OSError:
        inside = []
    return next((c for c in (*inside, root.parent, root.parent.parent) if c != root and source.is_root(c)), None)


def check_layout(cfg: DataConfig) -> None:
    """Raise DataError (naming file, line and what would be right) if the data set cannot load."""
    _prepare(cfg)


def fingerprint_of(cfg: DataConfig, image_size: int, *, checked: bool = False) -> str:
    """The fingerprint `load_splits` would give the data, without decoding an image (label files are
    parsed and images stat'ed): whether the data changed can be told before paying for a decode. checked:
    as load_splits'."""
    source, layout, images_digest = _prepare(cfg, checked)
    return fingerprint(layout, images_digest, image_size, source.version)


def fingerprints_alike(cfg: DataConfig, image_size: int, *, checked: bool = False) -> tuple[str, ...]:
    """The fingerprints earlier versions of this tool gave the data where they decoded them as this one does
    (`Source.earlier_params`: an image folder of integer TIFFs before their decoding was fingerprinted), without
    decoding an image: runs recorded on one of them trained on the data `fingerprint_of` names now. checked: as
    load_splits'."""
    source, layout, images_digest = _prepare(cfg, checked)
    return tuple(dict.fromkeys(fingerprint(dataclasses.replace(layout, params=params), images_digest, image_size,
                                           source.version) for params in source.earlier_params(layout)))


def listed_facts(cfg: DataConfig, *, checked: bool = False) -> dict:
    """What the data set's label files (or folders) list now, without decoding an image: its classes in label
    order, the images listed in all splits together and their count per class. Compared with a run's data.json
    (whose images add up to these with its skipped ones), it says what changed where a fingerprint differs.
    checked: as load_splits'."""
    _, layout, _ = _prepare(cfg, checked)
    counts = np.zeros(len(layout.class_names), dtype=np.int64)
    for plan in layout.splits.values():
        labels = np.asarray(plan.labels, dtype=np.int64)
        counts += np.bincount(labels[labels >= 0], minlength=len(counts))[:len(counts)]
    return {"classes": list(layout.class_names), "images": int(sum(len(p.labels) for p in layout.splits.values())),
            "class_counts": [int(c) for c in counts]}


def class_names_of(cfg: DataConfig) -> tuple[str, ...]:
    """The data set's class names in label order, without decoding images (an image folder's are its folders
    read: given one level off, the error names the folder that holds it, as a scan's does)."""
    source = get_source(cfg)
    try:
        return tuple(source.class_names(cfg))
    except DataError as exc:
        raise _nearby_named(source, cfg, exc) from None


def num_classes_of(cfg: DataConfig) -> int:
    return len(class_names_of(cfg))


# --------------------------------------------------------------------------- validation carving

def carve_validation(labels: np.ndarray, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Sorted (train, val) indices: per class round(fraction * n) items go to val (at most n - 1,
    so every class keeps a training example), chosen by a permutation seeded with `seed`."""
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"fraction={fraction!r}: expected a number in [0, 1)")
    labels = np.asarray(labels)
    if fraction == 0.0 or len(labels) == 0:
        return np.arange(len(labels)), np.empty(0, dtype=np.int64)
    rng = np.random.default_rng([seed, 0x5EED])
    val = []
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        k = min(int(round(fraction * len(members))), len(members) - 1)
        val.append(rng.permutation(members)[:k])
    val_idx = np.sort(np.concatenate(val)).astype(np.int64)
    train_mask = np.ones(len(labels), dtype=bool)
    train_mask[val_idx] = False
    return np.flatnonzero(train_mask), val_idx


# --------------------------------------------------------------------------- decoding

def _fill(source: Source, layout: Layout, image_size: int):
    def fill(tmp: Path) -> dict:
        started = time.perf_counter()
        per_image = image_size * image_size * 3
        total = sum(len(plan) for plan in layout.splits.values())
        # a split compacted after skipping unreadable images is written a second time, beside the first
        extra = max((len(plan) for plan in layout.splits.values()), default=0) if source.skip_bad_images else 0
        cache.check_room(tmp, (total + extra) * per_image,
                         f"{total} images of {layout.dataset} at {image_size} px, uint8 RGB")
        outs = {split: cache.allocate(tmp, split, len(plan), image_size) for split, plan in layout.splits.items()}
        log.info("decoding %s (%s) at %d px into %s", layout.dataset,
                 ", ".join(f"{s} {len(p)}" for s, p in layout.splits.items()), image_size, tmp)
        masks = source.decode(layout, image_size, outs)
        skipped: list[str] = list(layout.info.get("missing_files", []))
        n_skipped = int(layout.info.get("missing", 0))
        counts = {}
        for split, plan in layout.splits.items():
            keep = masks[split]
            images = outs[split]
            if not keep.all():
                bad = np.flatnonzero(~keep)
                n_skipped += len(bad)
                skipped += [relative(plan.paths[i], layout.root) for i in bad[:20]] if plan.paths else []
                images = cache.compact(tmp, split, images, keep)
            images.flush()
            labels = plan.labels[keep].astype(np.int64)
            np.save(tmp / f"{split}_labels.npy", labels)
            counts[split] = class_counts(labels, len(layout.class_names))
            del images
        outs.clear()
        if n_skipped:
            log.warning("%s: skipped %s", layout.dataset, counted(n_skipped, "unreadable or missing image"))
        info = _scan_facts(layout)
        turned = {split: len(plan.turned) for split, plan in layout.splits.items() if plan.turned}
        if turned:   # decoded as stored: warned of by load_splits once a run, in data.json's reader
            info["exif_turned"] = turned
            info["exif_turned_files"] = [relative(p, layout.root) for plan in layout.splits.values()
                                         for p in plan.turned][:20]
        info.update({"skipped": n_skipped, "skipped_files": skipped[:20],
                     "decode_seconds": round(time.perf_counter() - started, 2)})
        return {"dataset": layout.dataset, "image_size": image_size, "class_names": list(layout.class_names),
                "splits": sorted(layout.splits), "class_counts": counts, "val_source": layout.val_source,
                "root": str(layout.root) if layout.root else None, "info": info}
    return fill


def _scan_facts(layout: Layout) -> dict:
    """What a data set's scan says of it (its layout.info) for data.json's reader, less the images found missing,
    which decoding counts with the unreadable ones (skipped)."""
    return {k: v for k, v in layout.info.items() if k not in ("missing", "missing_files")}


def load_splits(cfg: DataConfig, image_size: int, *, checked: bool = False) -> DataSplits:
    """Decoded train / val / test at image_size x image_size (decoding only on a cache miss). checked: the caller
    ran check_layout on the same data and its warnings were shown (a sweep's, before Ray starts): the folder's scan
    does not say them again; what decoding finds (images turned by EXIF, unreadable ones) is said."""
    if image_size < 1:
        raise DataError(f"image_size={image_size!r} is invalid: expected an integer >= 1")
    source, layout, images_digest = _prepare(cfg, checked)
    fp = fingerprint(layout, images_digest, image_size, source.version)
    folder = cache.entry_dir(cache.cache_root(cfg), layout.dataset, image_size, fp)
    entry = cache.load(folder, fp)
    hit = entry is not None
    if entry is None:
        entry = cache.build(folder, fp, _fill(source, layout, image_size))
    else:
        log.info("%s: cache hit %s", layout.dataset, folder)

    def split_of(name: str, idx: np.ndarray | None = None) -> DecodedSplit:
        images, labels = entry.arrays[name]
        if idx is None:
            return DecodedSplit(np.asarray(images), np.asarray(labels, dtype=np.int64))
        return DecodedSplit(np.ascontiguousarray(images[idx]), np.asarray(labels[idx], dtype=np.int64))

    test = split_of("test")
    official = entry.meta.get("val_source") or "official"
    # an official split without an image (a FER2013 CSV without PublicTest rows) is as none: carved instead
    if "val" in entry.arrays and len(entry.arrays["val"][1]):
        train, val = split_of("train"), split_of("val")
        val_source = official
    else:
        train_labels = entry.arrays["train"][1]
        train_idx, val_idx = carve_validation(train_labels, cfg.val_fraction, cfg.split_seed)
        if len(val_idx):
            train, val = split_of("train", train_idx), split_of("train", val_idx)
            val_source = (f"carved from train (stratified, fraction {cfg.val_fraction}, seed {cfg.split_seed})"
                          + (f"; its own validation split ({official}) has no image" if "val" in entry.arrays
                             else ""))
        else:
            train = split_of("train")
            empty = DecodedSplit(np.empty((0, *train.images.shape[1:]), np.uint8), np.empty(0, np.int64))
            val = empty
            val_source = ("none (val_fraction 0)" if cfg.val_fraction == 0 else
                          f"none (val_fraction {cfg.val_fraction} rounds to 0 images per class)")
    n = len(entry.meta["class_names"])
    info = dict(entry.meta.get("info", {}))
    # an entry decoded by an earlier version (the same files: the same fingerprint) lacks what this scan says since
    # (test_source, differs_from_official, ...): from this scan, as a decode now would record it
    for key, value in json.loads(json.dumps(_scan_facts(layout), default=str)).items():
        info.setdefault(key, value)
    if info.get("exif_turned"):
        said = (layout.dataset, str(layout.root), tuple(sorted(info["exif_turned"].items())),
                tuple(info.get("exif_turned_files", [])))
        say = log.debug if said in _EXIF_SAID else log.warning
        _EXIF_SAID.add(said)
        one = sum(info["exif_turned"].values()) == 1
        them = "it" if one else "them"
        say("%s: %s %s an EXIF orientation (a viewer shows %s turned or mirrored), which is not applied: %s "
            "decoded as stored, as torchvision's ImageFolder reads them (first: %s). To train on %s as shown, "
            "save %s upright (e.g. mogrify -auto-orient) or set data.exif_orientation=applied", layout.dataset,
            " + ".join(f"{k} {split}" for split, k in info["exif_turned"].items()),
            "image carries" if one else "images carry", them, "it is" if one else "they are",
            ", ".join(info.get("exif_turned_files", [])[:3]), them, them)
    info.update({"synthetic": layout.dataset == "synthetic", "val_source": val_source,
                 "counts": {"train": len(train), "val": len(val), "test": len(test)},
                 "class_counts": {"train": class_counts(train.labels, n), "val": class_counts(val.labels, n),
                                  "test": class_counts(test.labels, n)},
                 "image_size": image_size, "cache_dir": str(entry.folder), "cache_hit": hit})
    info.setdefault("skipped", 0)
    return DataSplits(train=train, val=val, test=test, class_names=tuple(entry.meta["class_names"]),
                      dataset=layout.dataset, fingerprint=fp, info=info)
