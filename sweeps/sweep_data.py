"""The data a sweep trains on, as its driver sees it: decoded once per decode key before Ray starts,
recorded (the parent run's data.json, a line each on the console), and checked, before any trial runs,
for what would make its table wrong: no training, test or validation image, a class missing from a split,
data that differ from what the runs of the invocation being continued trained on.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any, Mapping

import numpy as np

from sweeps import schema
from sweeps.errors import SweepError
from sweeps.invocations import command_again
from transfer_core.config import TrialConfig, decode_key

if TYPE_CHECKING:
    from sweeps.runner import PreparedSweep

log = logging.getLogger(__name__)
data_log = logging.getLogger("sweeps.data")   # what each data set decoded to (the CLI always shows it)


def data_key(config: TrialConfig) -> str:
    """Cells that read the same decoded data share one decoding and one object-store entry: those alike in
    `transfer_core.config.DECODE_KEYS` (arms that differ in data.augment or data.sampler included; they
    decoded one copy each before, ~11 GB apiece for AffectNet at 112 px)."""
    return decode_key(config)


def decode_data(configs: list[TrialConfig]) -> dict[str, Any]:
    """The decoded data of a prepared sweep's configs, by data key. `prepare` checked their layouts and showed
    what the folders' scans warn of (left-out files, ...): the scans that decode them say it not again."""
    from transfer_core.data import load_splits

    datasets: dict[str, Any] = {}
    for config in configs:
        key = data_key(config)
        if key not in datasets:
            datasets[key] = load_splits(config.data, config.model.image_size, checked=True)
    return datasets


def data_record(prepared: PreparedSweep, datasets: Mapping[str, Any], keys: Mapping[str, list[str]]) -> dict:
    """What each data set of the sweep decoded to (the parent run's data.json, and a line each on the
    console): split and class sizes, where validation came from, images the readers skipped. `keys`:
    data name -> the keys of its decoded data (arms that decode it differently, e.g. at another image
    size, add keys: those entries are named "<name>#<key>")."""
    record = {}
    for choice in prepared.data:
        for i, key in enumerate(keys.get(choice.name, ())):
            splits = datasets[key]
            info = splits.info or {}
            record[choice.name if i == 0 else f"{choice.name}#{key}"] = {
                "dataset": splits.dataset, "root": choice.root, "fingerprint": splits.fingerprint,
                "images": {"train": len(splits.train), "val": len(splits.val), "test": len(splits.test)},
                "classes": list(splits.class_names), "class_counts": info.get("class_counts"),
                "val_source": info.get("val_source"), "test_source": info.get("test_source"),
                "skipped": info.get("skipped", 0),   # missing or unreadable
                "skipped_files": list(info.get("skipped_files") or []),
                # what its reader found: the layout read (FERPlus: PNG folders or CSV), rows its rules dropped
                # (FERPlus votes, AffectNet codes), files an image folder left out, ...
                "reader": {k: v for k, v in info.items() if k not in _DATA_RECORDED}}
    return record


# data.json's entries above, and what differs between runs on the same data (the cache's folder, a hit)
_DATA_RECORDED = {"class_counts", "val_source", "test_source", "skipped", "skipped_files", "counts", "synthetic",
                  "image_size", "cache_dir", "cache_hit", "decode_seconds"}


def log_data(record: Mapping[str, dict]) -> None:
    for name, r in record.items():
        images = r["images"]
        data_log.info("%s%s: %d train / %d val / %d test images, %d classes; validation: %s%s%s", name,
                      f" ({r['root']})" if r["root"] else "", images["train"], images["val"], images["test"],
                      len(r["classes"]), r["val_source"] or "?",
                      f"; test: {r['test_source']}" if r.get("test_source") else "",
                      f"; {r['skipped']} listed image{'s' if r['skipped'] != 1 else ''} missing or unreadable, skipped"
                      if r["skipped"] else "")


def check_data_of_cells(prepared: PreparedSweep, datasets: Mapping[str, Any], keys: Mapping[str, list[str]]) -> None:
    """SweepError, before Ray starts, for a data set that decoded to no training image (every file
    unreadable or missing: readers skip some by design), or to no validation image when the sweep's
    metric is measured on validation (a search's); a warning for a table's, whose cells then select
    their last epoch, not the best-validation one."""
    metric = prepared.spec.metric
    for choice in prepared.data:
        where = f"data set {choice.name!r}" + (f" at {choice.root}" if choice.root else "")
        for key in keys.get(choice.name, ()):
            splits = datasets[key]
            if not len(splits.train):
                raise SweepError(f"{where} has no usable training image (every listed image is missing or "
                                 f"unreadable: see the warnings above); check the download", option="--data")
            if not len(splits.test):   # evaluated, it would read as 0 % accuracy in every table
                raise SweepError(f"{where} has no usable test image (every listed test image is missing or "
                                 f"unreadable: see the warnings above), and every number of a table is measured "
                                 f"on it; check the download", option="--data")
            _warn_of_absent_classes(where, splits)
            if len(splits.val):
                continue
            if metric.startswith(("val_", "best_val")):
                raise SweepError(f"{where} has no validation image, and the sweep's metric {metric!r} is measured "
                                 f"on it: give it validation images (a larger --set data.val_fraction, or the "
                                 f"data set's official validation split)", option="--data")
            log.warning("%s has no validation image: its cells report the test accuracy of their last epoch as "
                        "sel_test_acc, not of an epoch chosen on validation", where)


def _warn_of_absent_classes(where: str, splits) -> None:
    """A class without an image in val or test leaves mean class accuracy there averaged over the others:
    the number reads like the paper's over every class and is not."""
    for name in ("val", "test"):
        labels = np.asarray(getattr(splits, name).labels)
        absent = [c for k, c in enumerate(splits.class_names) if len(labels) and not (labels == k).any()]
        if absent:
            left = len(splits.class_names) - len(absent)
            log.warning("%s: its %s split has no image of %s %s: mean class accuracy there averages over %s", where,
                        name, "class" if len(absent) == 1 else "classes", ", ".join(absent),
                        "the one other class" if left == 1 else f"the other {left} classes")


def merged_changes(recorded: str | None, accepted: Mapping[str, list[str]]) -> dict[str, list[str]]:
    """The parent's record of accepted data changes (data name -> every fingerprint its runs trained on,
    in order), with this run's added."""
    try:
        merged = {k: list(v) for k, v in json.loads(recorded or "{}").items()}
    except (ValueError, AttributeError):
        merged = {}
    for name, fingerprints in accepted.items():
        merged[name] = list(dict.fromkeys([*merged.get(name, ()), *fingerprints]))
    return merged


def _names(classes: list[str]) -> str:
    return ", ".join(classes) if len(classes) <= 12 else ", ".join(classes[:12]) + ", ..."


def recorded_entry(recorded: Any, name: str, fingerprint: str | None) -> Mapping[str, Any] | None:
    """The entry of an invocation's data.json (`recorded`: data_record's) of data set `name` that recorded the data of
    fingerprint `fingerprint`: `name`'s own, or that of arms that decode it otherwise (`name#<key>`: another image
    size, another validation carve); None where none did (data.json recorded since of other data, or edited)."""
    if not isinstance(recorded, Mapping) or not fingerprint:
        return None
    return next((entry for key, value in recorded.items()
                 if key == name or (isinstance(key, str) and key.startswith(name + "#"))
                 for entry in (value if isinstance(value, list) else [value])   # data_earlier.json's: a list
                 if isinstance(entry, Mapping) and entry.get("fingerprint") == fingerprint), None)


def earlier_entries(earlier: Any, replaced: Any, record: Mapping[str, Mapping]) -> dict[str, list] | None:
    """The parent's data_earlier.json once a continuation's data.json (`record`) replaces `replaced` (the one an
    earlier run of the invocation wrote): `earlier` (that file so far: data.json's key -> its entries of earlier
    data, oldest first) with each entry of `replaced` whose data `record` no longer holds (data changed since, and
    accepted; another version of the tool's fingerprint) added, so that a later change is still told what differs
    from the data the invocation's runs trained on; None where nothing is added."""
    kept = {k: list(v) for k, v in earlier.items() if isinstance(v, list)} if isinstance(earlier, Mapping) else {}
    added = False
    for key, entry in (replaced.items() if isinstance(replaced, Mapping) else ()):
        fingerprint = entry.get("fingerprint") if isinstance(entry, Mapping) else None
        now = record.get(key)
        if (not fingerprint or (isinstance(now, Mapping) and now.get("fingerprint") == fingerprint)
                or any(isinstance(e, Mapping) and e.get("fingerprint") == fingerprint for e in kept.get(key, ()))):
            continue
        kept.setdefault(key, []).append(dict(entry))
        added = True
    return kept if added else None


def describe_data_change(then: Mapping[str, Any] | None, now: Mapping[str, Any]) -> str:
    """What differs between a data set as a run's data.json recorded it (`then`: its entry) and as its label files
    list it now (`now`: transfer_core.data.listed_facts), for the message of a changed fingerprint: other classes or
    another class order, another number of images, images relabelled; "" where nothing was recorded."""
    if not then or not isinstance(then.get("images"), Mapping):
        return ""
    said = []
    classes_then, classes_now = list(then.get("classes") or []), list(now["classes"])
    if classes_then != classes_now and sorted(classes_then) == sorted(classes_now):
        why = ""
        if (all(c.isascii() and c.isdigit() for c in classes_now) and classes_then == sorted(classes_then)
                and classes_now == sorted(classes_now, key=lambda c: (int(c), c))):
            why = (": this version of the tool gives class folders named by whole numbers the label of their number "
                   "(folder 10 is class 10), earlier versions read them in name order (0, 1, 10, 2, ...); the images "
                   "are the same")
        said.append(f"its classes are labelled in another order (label 0, 1, ... then: {_names(classes_then)}; now: "
                    f"{_names(classes_now)}){why}")
    elif classes_then != classes_now:
        said.append(f"other classes (then: {_names(classes_then)}; now: {_names(classes_now)})")
    images_then = sum(int(n) for n in then["images"].values()) + int(then.get("skipped") or 0)
    if images_then != now["images"]:
        said.append(f"{images_then:,} images then, {now['images']:,} now")
    elif classes_then == classes_now and not then.get("skipped") and isinstance(then.get("class_counts"), Mapping):
        per_class = [sum(int(counts[k]) for counts in then["class_counts"].values() if len(counts) > k)
                     for k in range(len(classes_now))]
        moved = [f"{c} {a} -> {b}" for c, a, b in zip(classes_now, per_class, now["class_counts"]) if a != b]
        if moved:
            said.append(f"as many images, in other classes ({', '.join(moved)}): images relabelled, or one removed "
                        "from a class and another added to another")
    if not said:
        said.append("the same classes and as many images: a label file or an image edited, replaced or touched "
                    "(or the files copied anew)")
    return "; ".join(said)


def check_data_unchanged(prepared: PreparedSweep, parent, children, fingerprint_now, *,
                         finished: bool = False, alike_now=None, what_changed=None) -> dict[str, list[str]]:
    """SweepError when a data set differs from the one runs of the invocation being continued trained on
    (a file added, changed or relabelled): its table would mix two versions of the data. `children`: the
    invocation's child runs, each tagged with the fingerprint of the data it trained on;
    `fingerprint_now(child)`: that of the data its cell reads now (None: not in this run's plan). With
    `accept_changed_data`, a warning instead, and the changes accepted are returned (data name -> the
    fingerprints then and now), for the parent run's record; `finished` (nothing left to train, nothing
    gets mixed): a warning that the table is of the earlier data. `alike_now(child)`: the fingerprints earlier
    versions of the tool gave the data its cell reads now, where they decoded it as this one does
    (transfer_core.data.fingerprints_alike; asked only where a run's differs): a run recorded with one of them
    trained on the same data. `what_changed(child)`: what differs in the data its cell reads now from the data
    the invocation recorded (describe_data_change; asked only where a run's fingerprint differs), said in the
    message. A change the invocation went on after before (with `accept_changed_data`: the parent's
    sweeps.data_changed holds both fingerprints) was warned of then, and its table says it mixes both: it is
    neither warned of nor refused again, for a continuation or a rerun of the finished invocation."""
    roots = {d.name: d.root for d in prepared.data}
    accepted: dict[str, list[str]] = {}
    parent_tags = getattr(getattr(parent, "data", None), "tags", None) or {}
    accepted_before = merged_changes(parent_tags.get(schema.TAG_DATA_CHANGED), {})
    for child in children:
        before, now = child.data.tags.get(schema.TAG_DATA_FINGERPRINT), fingerprint_now(child)
        if not before or not now or before == now or (alike_now is not None and before in alike_now(child)):
            continue
        name = child.data.tags.get(schema.TAG_DATA, "?")
        if before in accepted_before.get(name, ()) and now in accepted_before.get(name, ()):
            continue
        where = f"{name!r}" + (f" at {roots[name]}" if roots.get(name) else "")
        try:   # a clause of the message, never the reason it is not given (a folder unreadable since, data.json edited)
            what = what_changed(child) if what_changed is not None else ""
        except Exception as exc:   # noqa: BLE001
            log.debug("what differs in %s is not said: %r", where, exc)
            what = ""
        change = (f"the data set {where} differs from the one run {child.info.run_id} of invocation "
                  f"{parent.info.run_id} of {prepared.spec.name!r} trained on (fingerprint {before[:12]} then, "
                  f"{now[:12]} now{'; what differs: ' + what if what else ''})")
        if finished:
            log.warning("%s; every cell of the invocation is finished, so its table is of the data as it was: "
                        "`%s` trains a new invocation on the data as it is now", change,
                        command_again("run", prepared, fresh=True))
            return {}
        if prepared.options.accept_changed_data:
            if name not in accepted:
                log.warning("%s; going on as --accept-changed-data asks: the table mixes results of both, and its "
                            "caption says so", change)
            accepted[name] = list(dict.fromkeys([*accepted.get(name, ()), before, now]))
            continue
        raise SweepError(
            f"{change}: continuing would put results of two versions of the data into one table. The fingerprint "
            f"covers the label files and each image's size and modification time (a re-extracted or re-copied "
            f"archive changes it too), and how this version of the tool reads them. Start a new invocation on "
            f"the data as it is now with `{command_again('run', prepared, fresh=True)}` (the earlier runs stay "
            f"recorded), or, if the data are the same, continue with --accept-changed-data", option="--data")
    return accepted
