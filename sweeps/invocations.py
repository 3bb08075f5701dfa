"""An invocation's record beyond its runs: the spec text its tables read (and the texts it replaced), its
plan, the options its latest run was given (the command that continues it), and whether a run of a plan
finds anything left to do under it.

A continuation may come with a spec edited in how its table reads (`identity_hash` leaves that out of an
invocation's identity): `earlier_of_an_edited_spec` finds the invocation, `record_spec` records the new
text, and the report is drawn again with it.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import os
import shlex
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from search_spaces import Plan, SweepSpec
from search_spaces.yaml_doc import FrozenMap
from search_spaces.spec import (SpecError, content_hash, identity_hash, load_text, names_a_file, text_hash,
                               trained_hash)
from sweeps import schema, tracking
from transfer_core.config import parse_value

if TYPE_CHECKING:
    from search_spaces.data_option import DataChoice
    from sweeps.runner import PreparedSweep, RunOptions

log = logging.getLogger(__name__)


def drawn_with(plan: Plan) -> dict[str, str]:
    """The parent's tags a run of `plan` records, and its report is drawn by: the seeds (a table's runs of
    other seeds are left out of it) and every --set."""
    return {schema.TAG_SEEDS: json.dumps(list(plan.seeds)),
            schema.TAG_OVERRIDES: json.dumps(dict(plan.overrides), sort_keys=True, default=str)}


def drawn_alike(tags: Mapping[str, str], plan: Plan) -> bool:
    """Whether a report drawn by a parent's `tags` is drawn over what a run of `plan` draws it over: the same --set
    and the same seeds, in any order (a table reads them as a set, sorted: `seeds: [1, 0]` after `[0, 1]` drew
    the same report again, and `sweeps resume` found the invocation not finished as planned)."""
    now = drawn_with(plan)
    seeds = tracking.json_tag(tags, schema.TAG_SEEDS, None)
    return (tags.get(schema.TAG_OVERRIDES) == now[schema.TAG_OVERRIDES] and isinstance(seeds, list)
            and sorted(map(json.dumps, seeds)) == sorted(map(json.dumps, plan.seeds)))


RESOURCE_OPTIONS = (("address", "--address"), ("max_concurrent", "--max-concurrent"),
                    ("cpus_per_trial", "--cpus-per-trial"), ("gpus_per_trial", "--gpus-per-trial"),
                    ("storage", "--storage"), ("max_failures", "--max-failures"))
DEFAULT_MAX_FAILURES = 2   # `sweeps run --max-failures`'s default: not repeated


def options_record(name: str, options: RunOptions, data: Sequence[DataChoice], storage: str | None = None,
                   data_changed: bool = True) -> dict:
    """What a run of sweep `name` was given beyond the spec, as its parent records it (TAG_COMMAND): the
    --profile, --seeds and resources given, the data sets and --set. Folders are absolute, so that a command
    printed from it works from any folder: `data` parsed (roots resolved), `storage` the folder the run used
    (--storage, else ./ray_results resolved), a spec file's path resolved. `sweeps status` prints from it the
    command that continues the invocation, and `sweeps best` runs a search's best trials with its resources.
    --accept-changed-data only where `data_changed` (a change was accepted: every continuation needs it again),
    else a later change would be taken without being asked. --fresh and --tracking-uri are left out: a
    continuation never starts anew, and a reader knows the store it reads."""
    if names_a_file(name) and Path(name).expanduser().is_file():   # as `sweeps run` reads it
        name = str(Path(name).expanduser().resolve())
    record = {"name": name, "profile": options.profile, "seeds": options.seeds,
              **{key: getattr(options, key) for key, _ in RESOURCE_OPTIONS},
              "data": ([] if [d.name for d in data] == ["synthetic"] else   # the default: no --data
                       [d.name if d.root is None else f"{d.name}={d.root}" for d in data]),
              "set": dict(options.overrides), "accept_changed_data": options.accept_changed_data and data_changed}
    if storage is not None:
        record["storage"] = storage
    if record["max_failures"] == DEFAULT_MAX_FAILURES:
        record["max_failures"] = None
    return {key: value for key, value in record.items()
            if value is not None and value is not False and value != [] and value != {}}


def prepared_record(prepared: PreparedSweep, data_changed: bool = True) -> dict:
    return options_record(prepared.source or prepared.spec.name, prepared.options, prepared.data,
                          str(prepared.storage_path), data_changed)


def command_tag(prepared: PreparedSweep, data_changed: bool) -> dict[str, str]:
    """`data_changed`: the invocation's runs trained on data that has changed since (accepted)."""
    return {schema.TAG_COMMAND: json.dumps(prepared_record(prepared, data_changed), sort_keys=True, default=str)}


def recorded_options(tags: Mapping[str, str]) -> dict | None:
    """A parent's options record (TAG_COMMAND), None where a version before it recorded the invocation."""
    record = tracking.json_tag(tags, schema.TAG_COMMAND, None)
    return record if isinstance(record, dict) and record.get("name") else None


def command_words(verb: str, record: Mapping, tracking_uri: str | None = None) -> list[str]:
    """`sweeps VERB NAME --option ...` from an options record (options_record), with --tracking-uri where
    given: the words a shell takes (shlex.join them to print)."""
    words = ["sweeps", verb, str(record.get("name", "?"))]
    for key, option in (("profile", "--profile"), ("seeds", "--seeds"), *RESOURCE_OPTIONS):
        if record.get(key) is not None:
            words += [option, str(record[key])]
    if tracking_uri:
        words += ["--tracking-uri", tracking_uri]
    for value in record.get("data") or ():
        words += ["--data", str(value)]
    for key, value in (record.get("set") or {}).items():
        words += ["--set", f"{key}={set_text(value)}"]
    if record.get("accept_changed_data"):
        words.append("--accept-changed-data")
    return words


def command_again(verb: str, prepared: PreparedSweep, fresh: bool = False) -> str:
    """The command line that runs this invocation again (`sweeps VERB NAME ...`): its identity is the spec with
    --profile, --data and --set, found in the same --tracking-uri; its resources as given. `fresh`: --fresh
    after the name, a new invocation of the same (without the rest, it would train another profile, data or
    --set, and record into another store)."""
    words = command_words(verb, prepared_record(prepared),
                          tracking.tracking_uri_to_repeat(prepared.options.tracking_uri, prepared.tracking_uri))
    return shlex.join(words[:3] + ["--fresh"] * fresh + words[3:])


def set_text(value) -> str:
    """A --set value as typed, which `parse_value` reads back to the same value: a string as it is, unless it
    would read as another value ("3", "true", "[1]": then quoted, as JSON), anything else as JSON (a list of
    strings, true, null)."""
    return value if isinstance(value, str) and parse_value(value) == value else json.dumps(value)


def earlier_of_an_edited_spec(client, experiment_id: str, prepared: PreparedSweep, resuming: bool = False,
                              parents: list | None = None, named: list[str] | None = None):
    """The earlier invocation this one is, where its spec was since edited in how its table reads alone (a
    reworded caption, another baseline: PRESENTATION_KEYS), a search's num_samples or how a value is written
    (1e-3, 1.0e-3), recorded by a version that keyed invocations by the whole spec or by the spec as written,
    or in the order of its arms, which the key reads, or a search's pruner with a default written out or left out,
    which the key reads as written (`trains_the_same`). An earlier invocation with
    this profile, data (roots included) and --set whose spec was edited in what it trains (an arm added) is
    warned of: a new invocation starts and every cell trains again, and a researcher who meant to continue can
    put the spec back instead. An earlier invocation is such when its key is what this run's would be with its
    spec.yaml instead, its data as given or, as versions before keyed them, with their links resolved. Every
    invocation with this profile and data is read, the one run last first (the 20 run last were: one run before a
    study of 20 --set values was not found, and its cells trained again), each spec.yaml read from its artifact
    location (`tracking.read_run_text_artifact`, ~1 ms on a local store, not ~50) and each text parsed once: a
    spec text loads in ~5-10 ms, so 200 versions of a spec take 1-2 s.
    `parents`: the sweep's parent runs, as `tracking.parents` lists them (None: listed here); `named`: the run id of
    the invocation warned of is added to it (`warn_of_data_moved`, next, names each invocation once).
    Returns (the earlier invocation or None, the data its key holds: `prepared.data`, or one of
    `prepared.earlier_data`, with which it is then continued, its cells keyed so; None with no invocation)."""
    import yaml

    # the data as given, and as versions before knew them (`earlier_data`: folders resolved, or from os.getcwd())
    datas = (prepared.data, *prepared.earlier_data)

    @functools.cache
    def keys_with(hashes: tuple[str, ...], data) -> frozenset[str]:
        return frozenset(k for h in hashes for k in prepared.keys_of(h, data))

    def keyed_by(key, hashes: tuple[str, ...]):
        """The data `key` is an invocation key of, with a spec of one of `hashes`; None: neither."""
        return next((d for d in datas if key in keys_with(hashes, d)), None)

    now = yaml.safe_load(prepared.spec.text) if prepared.spec.text else None

    # a text recorded by several invocations (their --set differ) is read once
    @functools.cache
    def document_of(text: str) -> tuple[Any, tuple[str, ...]] | None:
        """The document, and its hashes as written."""
        try:
            before = yaml.safe_load(text)
        except yaml.YAMLError:
            return None
        return before, (identity_hash(before), content_hash(before), text_hash(text))

    @functools.cache
    def spec_of(text: str) -> SweepSpec | None:
        return recorded_spec_of(text)

    nearest = None
    for earlier in tracking.parents(client, experiment_id, max_results=None) if parents is None else parents:
        tags = earlier.data.tags
        if (tags.get(schema.TAG_PROFILE) != prepared.profile.name   # cheap tests first: no download
                or tags.get(schema.TAG_DATA) != ",".join(d.name for d in prepared.data)):
            continue
        text = tracking.read_run_text_artifact(client, earlier, schema.ARTIFACT_SPEC)
        read = document_of(text) if text is not None else None
        if read is None:
            continue
        before, hashes = read
        tag = tags.get(tracking.TAG_INVOCATION)
        data = keyed_by(tag, hashes)   # keyed by its spec as written?
        if data is None:               # else as this version reads it
            recorded = spec_of(text)
            data = None if recorded is None else keyed_by(tag, (recorded.identity_hash, recorded.typed_identity_hash))
            if data is None:
                continue
        ignored = {"seeds"} if prepared.spec.kind == "table" else set()
        changed = (sorted(k for k in set(before) | set(now) if before.get(k) != now.get(k) and k not in ignored)
                   if isinstance(before, dict) and isinstance(now, dict) else [])
        if isinstance(before, dict) and (identity_hash(before) == prepared.spec.written_identity_hash
                                         or trains_the_same(spec_of(text), prepared.spec)):
            log.info("sweep %s: continuing invocation %s; its spec is recorded anew (changed: %s)",
                     prepared.spec.name, earlier.info.run_id[:8], ", ".join(changed) or "its text")
            return earlier, data
        if nearest is None:   # the newest such: named if no older one is this invocation
            nearest = (earlier, changed)
    if nearest is not None:
        earlier, changed = nearest
        # `sweeps resume` (`resuming`) starts no invocation: it finds nothing to resume, the line after this one
        log.warning("sweep %s: %s: the spec differs from the one invocation %s (%s) ran with this profile, data and "
                    "--set%s. To continue that one, run it with its spec as it was (its spec.yaml in MLflow)",
                    prepared.spec.name, "no invocation ran this spec as it is" if resuming
                    else "a new invocation starts, and every cell trains again", earlier.info.run_id[:8],
                    tracking.parent_status(earlier.data.tags), f" (changed: {', '.join(changed)})" if changed else "")
        if named is not None:
            named.append(earlier.info.run_id)
    return None, None


def _roots_recorded(text: str, names: Sequence[str]) -> dict[str, str]:
    """A parent's data_roots param ("name=folder,name=folder", as given) by data name; a folder may hold commas."""
    import re

    if not text or not names:
        return {}
    alternatives = "|".join(re.escape(n) for n in names)
    parts = re.split(rf",(?=(?:{alternatives})=)", text)
    return dict(part.split("=", 1) for part in parts if "=" in part)


def warn_of_data_moved(client, experiment_id: str, prepared: PreparedSweep, resuming: bool = False,
                       parents: list | None = None, named: list[str] | None = None) -> None:
    """A new invocation of a sweep that an earlier one ran with this spec, profile and --set on the same data sets
    given as other folders (the data moved or copied to another disk, mounted elsewhere) is warned of, naming it and
    both folders: the folders are part of what an invocation is, so every cell trains again, which a researcher who
    moved the data meant not (one who copied it anew, on purpose, to retrain may). A link at the earlier folder to
    the new one continues it (the fingerprint of the data reads no folder name); an earlier folder still there (the
    data copied, or the same folder given by another path) is named to give again instead: `ln -s NEW OLD` with
    OLD a folder makes a link inside it. `resuming` (`sweeps resume`, which then finds nothing to resume): no new
    invocation starts, and the warning says what it found instead. `parents`: as `earlier_of_an_edited_spec`'s;
    `named`: the invocations it warned of (an edited spec's), not named again, and the new invocation it said starts
    is not said again."""
    if not any(d.root for d in prepared.data):
        return
    names = [d.name for d in prepared.data]
    for earlier in tracking.parents(client, experiment_id, max_results=None) if parents is None else parents:
        tags = earlier.data.tags
        if (tags.get(schema.TAG_PROFILE) != prepared.profile.name or tags.get(schema.TAG_DATA) != ",".join(names)
                or earlier.info.run_id in (named or ())):
            continue
        roots = _roots_recorded(tracking.data_roots_of(earlier), names)
        moved = [(d.name, roots[d.name], d.root) for d in prepared.data if d.root and roots.get(d.name, d.root) != d.root]
        if not moved:
            continue
        data = tuple(dataclasses.replace(d, root=roots.get(d.name, d.root)) for d in prepared.data)
        if tags.get(tracking.TAG_INVOCATION) not in prepared._keys_with(data):
            continue
        # a folder it ran on that is still there is given again: `ln -s NEW OLD` would make a link inside it
        there = [(name, then, now) for name, then, now in moved if os.path.lexists(then)]
        gone = [m for m in moved if m not in there]
        links = "; ".join(f"`ln -s {shlex.quote(now)} {shlex.quote(then)}`" for _, then, now in gone)
        if there:
            advice = ("To continue that one, give the folder%s it ran on, still there: %s" % (
                "s" if len(there) > 1 else "",
                "; ".join(f"`--data {shlex.quote(f'{name}={then}')}`"
                          + (" (the folder given now, by another path)" if _same_folder(then, now) else "")
                          for name, then, now in there))
                      + (f", and a link at the one{'s' if len(gone) > 1 else ''} gone to the new: {links}"
                         if gone else ""))
        else:
            advice = ("If the data only moved, continue that one: give the folder%s it ran on (a link there to the "
                      "new one will do: %s)" % ("s" if len(moved) > 1 else "", links))
        on = ", ".join(f"{name} at {then} (now given {now})" for name, then, now in moved)
        if named and not resuming:   # "a new invocation starts" was said, of the edited spec's invocation
            log.warning("sweep %s: nor does it continue invocation %s (%s), which ran this spec, profile and --set on "
                        "%s. %s", prepared.spec.name, earlier.info.run_id[:8], tracking.parent_status(tags), on, advice)
            return
        log.warning("sweep %s: %s: invocation %s (%s) ran this spec, profile and --set on %s. %s", prepared.spec.name,
                    "no invocation ran on the folders given" if resuming
                    else "a new invocation starts, and every cell trains again", earlier.info.run_id[:8],
                    tracking.parent_status(tags), on, advice)
        return


def _same_folder(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def recorded_spec_of(text: str) -> SweepSpec | None:
    """A recorded spec text, read as this version reads it (its `identity_hash`: what it trains); None where it
    no longer loads (its hashes as written still find the invocation it recorded)."""
    try:
        return load_text(text, "spec.yaml", recorded=True)
    except SpecError:
        return None


def trains_the_same(recorded: SweepSpec | None, spec: SweepSpec) -> bool:
    """Whether an invocation's recorded spec trains what `spec` does, read as this version reads both, its arms in
    any order: a cell is its config, its runs are named by its arm's label, and the report is drawn with the spec
    recorded anew, its rows in the new order. Reordered arms started a new invocation that trained every cell
    again (the key reads them in order: the invocations recorded so far are keyed so). A search's pruner is read
    with its defaults written out (`{type: median}` is `{type: median, n_startup_trials: 5}`): the key reads it as
    written, since search_spaces knows no pruner's defaults (it imports no Optuna), and a search continued with a
    default written out or left out started anew and trained every sample again."""
    return recorded is not None and (trained_hash(_pruner_filled(recorded), arms_in_order=False)
                                     == trained_hash(_pruner_filled(spec), arms_in_order=False))


def _pruner_filled(spec: SweepSpec) -> SweepSpec:
    """`spec` with its search's pruner given every argument, at its default where not written
    (pruning.with_defaults)."""
    if spec.search is None:
        return spec
    from sweeps.pruning import with_defaults   # Optuna and Ray Tune: imported by the runs that train, only

    return dataclasses.replace(spec, search=dataclasses.replace(spec.search,
                                                                pruner=FrozenMap(with_defaults(spec.search.pruner))))


def record_spec(client, parent, spec, tag: bool = True) -> bool:
    """Record `spec` as the invocation's spec.yaml, which its tables and figures read, where it says other
    than the recorded one (another seed, a reworded caption): True where it does. The text it replaces is
    kept as spec_history/<its hash>.yaml. A text that says the same in other words (a comment, spacing) as
    the one the report is drawn with is not recorded: every such edit drew the report again and kept one
    more copy. tag=False leaves the tag to be set once the report is drawn with it (`set_spec_hash`): a run
    stopped before draws it next time."""
    recorded = parent.data.tags.get(schema.TAG_SPEC_HASH)
    if recorded == spec.spec_hash:
        return False
    run_id = parent.info.run_id
    before = tracking.read_text_artifact(client, run_id, schema.ARTIFACT_SPEC)
    before_hash = text_hash(before) if before is not None else None
    same = before is not None and before != spec.text and says_the_same(before, spec.text)
    if same and recorded == before_hash:   # the report is drawn with it: nothing its tables read changed
        return False
    if before != spec.text:   # equal: recorded by a run stopped before its report was drawn
        if before is not None and not same:   # one that says the same, never drawn, is not worth a copy
            # named by its own hash: the tag may name an earlier text, recorded by a run stopped before drawing
            tracking.log_text_artifact(client, run_id, f"{schema.ARTIFACT_SPEC_HISTORY}/{before_hash}.yaml", before)
        tracking.log_text_artifact(client, run_id, schema.ARTIFACT_SPEC, spec.text)
    if tag:
        set_spec_hash(client, run_id, spec)
    return True


def log_plan(client, run_id: str, plan: Plan) -> None:
    """The plan of the invocation's latest run, which `sweeps status` counts by: as plan.json, and its size as a
    tag, which a copy of the server's database holds without the artifacts."""
    tracking.log_json_artifact(client, run_id, schema.ARTIFACT_PLAN, plan.to_dict())
    planned = len(plan.cells) or (plan.spec.search.num_samples if plan.spec.search else 0)
    tracking.set_tags(client, run_id, {schema.TAG_PLANNED: str(planned)})


def says_the_same(text: str, other: str) -> bool:
    """Whether two spec texts hold the same document, its keys in the same order (they differ in comments,
    spacing or quoting): the order of keys is read (a table's first paper row, a search's space in its notes).
    A table's seeds in any order (`as_drawn`)."""
    import yaml

    try:
        return (json.dumps(as_drawn(yaml.safe_load(text)), default=str, ensure_ascii=False)
                == json.dumps(as_drawn(yaml.safe_load(other)), default=str, ensure_ascii=False))
    except yaml.YAMLError:   # a recorded text that no longer parses: recorded anew
        return False


def as_drawn(document):
    """A parsed spec document as its report reads it: a table's seeds sorted (the report is drawn over its parent's
    seeds tag, as a set: `drawn_alike`), its keys in their order."""
    if (not isinstance(document, dict) or document.get("kind", "table") != "table"
            or not isinstance(document.get("seeds"), list)):
        return document
    try:
        return {**document, "seeds": sorted(document["seeds"])}
    except TypeError:   # not a list of numbers: as it is (such a spec no longer loads)
        return document


def set_spec_hash(client, run_id: str, spec) -> None:
    tracking.set_tags(client, run_id, {schema.TAG_SPEC_HASH: spec.spec_hash})


def finished_as_planned(client, experiment_id: str, parent, plan: Plan) -> bool:
    """Whether a run of this plan would find nothing to train nor draw anew under `parent`: its table cells
    completed (a search's trials ended) and its report drawn over the same seeds."""
    statuses = tracking.cell_statuses(client, experiment_id, parent.info.run_id)
    if plan.spec.kind == "table":
        if not all(statuses.get(c.cell_id) == schema.STATUS_COMPLETED for c in plan.cells):
            return False
    elif ended_trials(statuses) < plan.spec.search.num_samples:
        return False
    return drawn_alike(parent.data.tags, plan)


def ended_trials(statuses: Mapping[str, str]) -> int:
    """A search's trials that ran their course: completed or pruned."""
    return sum(s in (schema.STATUS_COMPLETED, schema.STATUS_PRUNED) for s in statuses.values())


def planned_statuses(statuses: Mapping[str, str], plan: Plan, spec: SweepSpec) -> dict[str, str]:
    """The statuses of this run's cells: a table continued with fewer --seeds than an earlier run of its
    invocation keeps the other seeds' runs, which this run's counts must not report as its own."""
    if spec.kind != "table":
        return dict(statuses)
    return {c.cell_id: statuses[c.cell_id] for c in plan.cells if c.cell_id in statuses}
