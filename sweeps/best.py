"""A search's best trials as a table spec that trains them over seeds: `sweeps best NAME -o FILE`, then
`sweeps run FILE`.

A search ranks its trials on one seed (by the best epoch of the metric it optimised: `search_ranking`), and
the winner of one seed may have won
by luck. The spec written here holds the top trials' configurations as arms (the values they trained
with, read from their runs) and the search's own base configuration as the baseline, on the search's
profile, base and `--set`, over several seeds: its table's mean ± std and Δ say whether the search found
something better. The spec is validated by the loader `sweeps run` uses before it is written.
"""

from __future__ import annotations

import dataclasses
import datetime
import math
import shlex
import textwrap
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import yaml

from search_spaces import SweepSpec, expand, load_profile
from search_spaces.layers import typed_value
from search_spaces.spec import FrozenMap, load_text, names_a_file, shipped_names, thaw
from sweeps import schema
from sweeps.invocations import RESOURCE_OPTIONS, command_words, recorded_options, set_text
from sweeps.report import short_names, value_text
from sweeps.tables import SweepRuns, TableError, ranked_children, search_ranking
from sweeps.tracking import read_json_artifact
from transfer_core.config import DATASET_KEYS, PLACEMENT_KEYS, to_flat

BASE_LABEL = "Base"


@dataclass(frozen=True)
class RankedTrial:
    """A completed trial of a search, with the values of the searched keys it trained with."""

    arm: str                     # "trial <Tune id>", the search table's row
    data: str
    score: float                 # the ranking's value: best_val_acc, or the best epoch of the search's metric
    values: Mapping[str, Any] = field(default_factory=dict)
    params: Mapping[str, Any] = field(default_factory=dict)   # its whole recorded config (flat), typed


def ranked_trials(runs: SweepRuns, spec: SweepSpec) -> list[RankedTrial]:
    """The search's completed trials, best first as its table ranks them (`search_ranking`). A trial without
    a value of the ranking's metric cannot be ranked and is left out. (A search runs on one data set: `sweeps
    run` refuses several.)"""
    ranking = search_ranking(spec.metric)
    children = ranked_children(runs, ranking)
    done = children[(children["status"] == schema.STATUS_COMPLETED) & children[ranking.column].notna()]
    # a trial with two completed runs ranks by its better one, as the search's table does
    # (ties in the order of the trial ids, as there)
    ranked = done.sort_values([ranking.column, "arm"], ascending=[ranking.mode == "min", True],
                              kind="stable").drop_duplicates("arm")
    trials = []
    for run in ranked.to_dict("records"):
        # typed by key: a string key's recorded "2024" is that text, not the number
        params = {k[len("params."):]: typed_value(k[len("params."):], v) for k, v in run.items()
                  if k.startswith("params.") and isinstance(v, str)}
        values = {k: params[k] for k in spec.search.space if k in params}
        trials.append(RankedTrial(run["arm"], run["data"], float(run[ranking.column]), values, params))
    return trials


def _diverged_trials(runs: SweepRuns) -> int:
    """The completed trials whose validation loss was recorded but finite at no epoch (a training that
    diverged), which `ranked_trials` cannot rank, whatever the metric: a diverged epoch's val_acc is a number
    (one class's share), and its summaries are NaN as without a validation split. 0 without a store (or
    histories read from one)."""
    if runs.client is None and "val_loss" not in runs._histories:
        return 0
    history = runs.history("val_loss")
    history = history[history["status"] == schema.STATUS_COMPLETED]
    if history.empty:
        return 0
    return int(history.groupby("run_id")["value"].apply(lambda v: not any(math.isfinite(x) for x in v.astype(float))).sum())


def _base_values(spec: SweepSpec, profile: str, overrides: Mapping[str, Any]) -> dict[str, Any]:
    """The searched keys' values in the search's base configuration (its profile, base and --set)."""
    flat = to_flat(load_profile(profile).config())
    flat.update(thaw(spec.base))
    flat.update(overrides)
    return {k: flat.get(k) for k in spec.search.space}


@dataclass(frozen=True)
class BestSpec:
    """What `sweeps best` writes: the spec's text and what a reader of the command's output needs."""

    text: str
    name: str
    arms: tuple[str, ...]
    run_command: str             # `sweeps run FILE ...` with the search's data and placement --set
    notes: tuple[str, ...] = ()  # trials left out and why, for stderr


def _show_command(typed: str) -> str:
    """`sweeps show` of the sweep as the user named it: a spec file's path, or a shipped name. A spec file's sweep
    named by its recorded name (`sweeps best mine`, as `sweeps table mine` reads it) is no name `sweeps show`
    knows ("unknown sweep 'mine'"): its spec file is what it shows."""
    if names_a_file(typed) or typed in shipped_names():
        return f"`sweeps show {shlex.quote(typed)}`"
    here = next((f"{typed}{s}" for s in (".yaml", ".yml") if Path(f"{typed}{s}").is_file()), None)
    if here is not None:   # likely the file: its name is the sweep's, as the shipped specs are named
        return f"`sweeps show {shlex.quote(here)}`"
    return f"`sweeps show FILE.yaml`, FILE.yaml the spec file `sweeps run` was given (its name: {typed})"


DEFAULT_TOP = DEFAULT_SEEDS = 3   # `sweeps best --top` and `--seeds` unless given (its options' defaults)


def best_spec(runs: SweepRuns, spec: SweepSpec, *, top: int = DEFAULT_TOP, seeds: int = DEFAULT_SEEDS,
              with_base: bool = True, file_name: str | None = None, as_typed: str | None = None,
              tracking_uri: str | None = None) -> BestSpec:
    """The table spec that trains the `top` best trials of search invocation `runs` (and its base
    configuration, the baseline) over seeds 0..seeds-1. Trials that repeat a configuration ranked above
    them, or the base's, are skipped for the next one. `file_name`: the file the spec is written to, which
    the command runs (None: printed, not yet saved: the command runs FILE.yaml, the reader's to save it as);
    `as_typed`: the sweep as the user named it (a spec
    file's path), for the commands messages give; `tracking_uri`: a --tracking-uri the user gave, which the
    printed command repeats. A key outside the search space whose value the profile has changed since the
    search ran is pinned in the spec's base to the value the trials trained with, and said."""
    typed = shlex.quote(as_typed or runs.sweep)
    show = _show_command(as_typed or runs.sweep)
    ranking = search_ranking(spec.metric)
    if spec.kind != "search":
        raise TableError(f"sweep {runs.sweep!r} is a table sweep, not a search: its arms are already a table "
                         f"spec ({show})")
    trials = ranked_trials(runs, spec)
    if not trials:
        counts = runs.children["status"].value_counts().to_dict() if not runs.children.empty else {}
        seen = ", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "no trial recorded"
        unfinished = counts.get(schema.STATUS_RUNNING, 0) + counts.get(schema.STATUS_INTERRUPTED, 0)
        sets = "".join(f" --set {shlex.quote(f'{k}={v}')}"
                       for k, v in (runs.parent.json_tag(schema.TAG_OVERRIDES, {}) or {}).items())
        diverged = _diverged_trials(runs)
        without = (f"none of its {counts.get(schema.STATUS_COMPLETED)} completed trials recorded {ranking.metric}"
                   + (f" as a number: val_loss was NaN at every epoch of {diverged} of them, as when training "
                      "diverges (a learning rate too high): narrow the search space to values that train (an "
                      "edited space runs as a new invocation)" if diverged else
                      " (they trained without a validation split: data.val_fraction 0, or a data set without one)"
                      if ranking.on == "validation" else ""))
        recorded = recorded_options(runs.parent.tags)
        # its completed trials say why they rank not, whether or not more may come (a search stopped on failed
        # trials, whose completed ones all diverged, was only told to finish: its trials would diverge as well)
        why = without[0].upper() + without[1:] if counts.get(schema.STATUS_COMPLETED) else ""
        advice = (why + ". " * bool(why)
                  + (f"Let it finish: `{shlex.join(command_words('resume', recorded, tracking_uri))}`"
                     if recorded is not None else
                     f"Let it finish: `sweeps resume {typed}` with the options it ran with (profile "
                     f"{runs.parent.tags.get(schema.TAG_PROFILE, '?')}, its --data{sets and ','}{sets})")
                  if unfinished or runs.parent.status != schema.STATUS_COMPLETED else
                  why if why else
                  f"Every trial ended without completing: a pruner that stops every trial leaves none to rank "
                  f"({show} warns of one that never prunes, not of one that always does), and "
                  f"`sweeps status {typed}` names failed trials' errors")
        raise TableError(f"search {runs.sweep!r} (invocation {runs.parent.run_id}) has no completed trial with a "
                         f"{ranking.description} ({ranking.column}) to rank: {seen}. {advice}")
    profile = runs.parent.tags.get(schema.TAG_PROFILE) or spec.profile
    overrides = runs.parent.json_tag(schema.TAG_OVERRIDES, {}) or {}
    placement = {k: v for k, v in overrides.items() if k in PLACEMENT_KEYS}
    conditions = {k: v for k, v in overrides.items() if k not in PLACEMENT_KEYS}
    base_values = _base_values(spec, profile, conditions)

    chosen: list[RankedTrial] = []
    notes: list[str] = []
    skipped: list[RankedTrial] = []
    taken = [base_values] if with_base else []
    for trial in trials:
        if len(chosen) == top:
            break
        if set(trial.values) != set(spec.search.space):
            notes.append(f"{trial.arm}: its run lacks the values of "
                         f"{', '.join(sorted(set(spec.search.space) - set(trial.values)))}; left out")
            skipped.append(trial)
        elif trial.values in taken:
            notes.append(f"{trial.arm} ({schema.metric_text(ranking.column, trial.score)}) repeats the "
                         "configuration of "
                         f"{'the base' if with_base and trial.values == base_values else 'a trial ranked above it'}"
                         "; left out")
            skipped.append(trial)
        else:
            chosen.append(trial)
            taken.append(dict(trial.values))
    ties = _ties(trials, chosen, skipped, ranking.column)
    notes += ties
    if not chosen:
        raise TableError(f"search {runs.sweep!r}: none of its {len(trials)} completed trials makes an arm: "
                         + "; ".join(notes) + ("" if not with_base else " (--no-base drops the base)"))
    if len(chosen) < top:
        notes.append(f"{len(chosen)} trial{'s' if len(chosen) != 1 else ''} of the {top} asked for "
                     f"({len(trials)} completed with a {ranking.description})")

    names = short_names(spec.search.space)
    labels = [f"Search #{i}" for i in range(1, len(chosen) + 1)]
    arms = ([{"label": BASE_LABEL, "set": {}}] if with_base else []) + [
        {"label": label, "set": dict(t.values)} for label, t in zip(labels, chosen)]
    seed_list = list(range(seeds))
    base = {**thaw(spec.base), **conditions}
    described = "; ".join(f"{label}: " + ", ".join(f"{names[k]} {value_text(t.values[k])}" for k in spec.search.space)
                          for label, t in zip(labels, chosen))
    over = f"each over seeds {seed_list[0]}-{seed_list[-1]}" if seeds > 1 else "on seed 0"
    caption = (f"The {_best_of(len(chosen))} of {len(trials)} completed trial{'s' if len(trials) != 1 else ''} "
               f"of the search '{spec.title}' (ranked "
               f"on one seed by the {ranking.description})" + (" and its base configuration" if with_base else "")
               + f", {over}; test accuracy at the epoch chosen on validation")
    caption += f". {described}."
    document: dict[str, Any] = {
        "name": f"{spec.name}_best",
        "title": f"{spec.title}: the best trials over seeds",
        "description": f"the {_best_of(len(chosen))} trial{'s' if len(chosen) != 1 else ''} of search {spec.name}"
                       + (" and its base" if with_base else "") + f" over {seeds} seed{'s' if seeds != 1 else ''}",
        "caption": caption,
        "kind": "table",
        "profile": profile,
        "seeds": seed_list,
        "metric": "sel_test_acc",
        "mode": "max",
    }
    if base:
        document["base"] = base
    document["arms"] = arms
    # beside the honest test number, the best epoch of what the search optimised (best_val_loss: each seed's lowest
    # validation loss), which chose these trials on one seed
    document["table"] = {**({"baseline": BASE_LABEL} if with_base else {}),
                         "metrics": ["sel_test_acc", ranking.column]}
    pinned = _drifted(yaml.dump(document, Dumper=_SpecDumper, sort_keys=False), profile, chosen[0])
    if pinned:
        document["base"] = {**document.get("base", {}), **pinned}
        document = {k: document[k] for k in (*[k for k in document if k not in ("base", "arms", "table")],
                                               "base", "arms", "table")}
        notes.append(f"the profile {profile!r} has changed since the search: pinned in base to the values its "
                     f"trials trained with: {', '.join(f'{k}={v!r}' for k, v in pinned.items())}")

    data_options = _data_options(runs)
    command = shlex.join(["sweeps", "run", file_name or "FILE.yaml", *data_options,
                          *[w for k, v in placement.items() for w in ("--set", f"{k}={set_text(v)}")],
                          *(["--tracking-uri", tracking_uri] if tracking_uri else []), *_resource_options(runs)])
    parent = runs.parent
    # the command as it runs again: the sweep as the user named it (`mysearch.yaml`, whose name: may differ from
    # its stem, so that `sweeps best mysearch` finds nothing), the invocation it read (without --run, the one run
    # last: once the search is run again, another one) and the options that shaped this spec
    again = shlex.join(["sweeps", "best", as_typed or runs.sweep, "--run", parent.run_id,
                        *(["--top", str(top)] if top != DEFAULT_TOP else []),
                        *(["--seeds", str(seeds)] if seeds != DEFAULT_SEEDS else []),
                        *([] if with_base else ["--no-base"]),
                        *(["--tracking-uri", tracking_uri] if tracking_uri else [])])
    header = [
        f"Written by `{again}` on {datetime.date.today().isoformat()} from invocation "
        f"{parent.run_id} ({parent.run_name}, {parent.status}).",
        f"The search ranked its trials by {ranking.column} ({ranking.description}) on seed "
        f"{_search_seed(runs, spec)}; this table trains each "
        + (f"over seeds {', '.join(map(str, seed_list))}" if seeds > 1 else "on seed 0")
        + " and reports the test accuracy at the epoch chosen on validation.",
        *(f"{label}: {t.arm}, {ranking.column} {schema.metric_text(ranking.column, t.score)}"
          + (f" on {t.data}" if t.data else "")
          for label, t in zip(labels, chosen)),
        *ties,
        *([f"base: the search's base and its --set {', '.join(f'{k}={v}' for k, v in conditions.items())}"]
          if conditions else []),
        *([f"pinned in base to the values the trials trained with (the profile {profile!r} has changed since): "
           + ", ".join(f"{k}={v!r}" for k, v in pinned.items())] if pinned else []),
    ]
    body = yaml.dump(document, Dumper=_SpecDumper, sort_keys=False, allow_unicode=True, width=100)
    text = ("".join(f"# {part}\n" for line in header
                    for part in textwrap.wrap(line, 98, subsequent_indent="  ", break_on_hyphens=False,
                                              break_long_words=False))   # a path or URI whole
            # one line: copied whole; printed, the spec is in no file yet
            + (f"# Run it: {command}\n" if file_name else f"# Save this spec as FILE.yaml, then run it: {command}\n")
            + body)
    _check_trains_as_recorded(text, profile, chosen, runs.sweep)
    return BestSpec(text=text, name=document["name"], arms=tuple(a["label"] for a in arms),
                    run_command=command, notes=tuple(notes))


def _ties(trials: list[RankedTrial], chosen: list[RankedTrial], skipped: list[RankedTrial], column: str) -> list[str]:
    """What a reader must know of trials tied on the ranking where one of them is an arm: the ranking cannot
    tell them apart, so they are taken in the order of their trial ids (`ranked_trials`, as the search's table
    lists them, bold together), and a tied one after the cut (`--top`) is left out by that order alone. Trials
    left out for another reason (a repeated configuration) are no part of a tie."""
    notes = []
    arms = {t.arm for t in chosen}
    gone = {t.arm for t in skipped}
    for first in chosen:
        group = [t for t in trials if t.arm not in gone and math.isclose(t.score, first.score, rel_tol=1e-9,
                                                                           abs_tol=1e-12)]
        if len(group) < 2 or group[0] is not first:   # one note per tie, at its first trial
            continue
        names = [t.arm for t in group]
        cut = [t.arm for t in group if t.arm not in arms]
        notes.append(f"{', '.join(names[:-1])} and {names[-1]} tie on {column} "
                     f"({schema.metric_text(column, first.score)}): taken in the order of their trial ids, as the "
                     "search's table lists them"
                     + (f"; {', '.join(cut)} {'is' if len(cut) == 1 else 'are'} left out" if cut else ""))
    return notes


def _best_of(n: int) -> str:
    """'best' of one chosen trial, '3 best' of several: "the 1 best trials" read as a slip."""
    return "best" if n == 1 else f"{n} best"


# Keys a trial's recorded config may differ in from the spec's cells without training otherwise: the seed
# (the spec's own), where and how fast it ran, and what the --data given to `sweeps run` sets
_NOT_COMPARED = ("seed", *PLACEMENT_KEYS, "data.dataset", "data.root", "model.num_classes")


def _differences(text: str, profile: str, trial: RankedTrial, label: str) -> dict[str, Any]:
    """The recorded keys of `trial` whose value the cell of arm `label` of spec `text` does not have."""
    spec = load_text(text, source="best")
    # the cells are built on the synthetic faces, where a key only the search's own data set reads (its
    # data.ferplus_rule) is refused as never read: built without it, and compared as the spec writes it
    elsewhere = {k: v for k, v in spec.base.items() if DATASET_KEYS.get(k, "synthetic") != "synthetic"}
    spec = dataclasses.replace(spec, base=FrozenMap({k: v for k, v in spec.base.items() if k not in elsewhere}))
    cells = {c.arm: c.config for c in expand(spec, profile).cells}
    flat = {**to_flat(cells[label]), **elsewhere}
    return {k: v for k, v in trial.params.items() if k in flat and k not in _NOT_COMPARED and flat[k] != v}


def _drifted(text: str, profile: str, best: RankedTrial) -> dict[str, Any]:
    """Keys outside the search space whose values the spec's cells would no longer train with (the profile
    changed since the search ran), and the values the best trial trained with."""
    return _differences(text, profile, best, "Search #1")


def _check_trains_as_recorded(text: str, profile: str, chosen: list[RankedTrial], sweep: str) -> None:
    """TableError where an arm of the written spec would train otherwise than its trial did: what `sweeps run`
    reads, checked against what was recorded, before it is written."""
    for i, trial in enumerate(chosen, start=1):
        differs = _differences(text, profile, trial, f"Search #{i}")
        if differs:
            raise TableError(f"the spec `sweeps best {sweep}` would write trains Search #{i} ({trial.arm}) otherwise "
                             f"than it trained: {', '.join(f'{k}={v!r}' for k, v in differs.items())}; the "
                             "trials of this search differ outside its space (recorded by several versions?)")


class _SpecDumper(yaml.SafeDumper):
    """Block style, as the shipped specs are written, but a list of plain values on one line (seeds: [0, 1])."""


_SpecDumper.add_representer(list, lambda dumper, value: dumper.represent_sequence(
    "tag:yaml.org,2002:seq", value, flow_style=not any(isinstance(v, (dict, list)) for v in value)))


def _search_seed(runs: SweepRuns, spec: SweepSpec) -> int:
    """The seed the search's trials trained with: its invocation's (--seeds may have replaced the spec's)."""
    seeds = runs.parent.json_tag(schema.TAG_SEEDS, None)
    return seeds[0] if isinstance(seeds, list) and seeds else spec.seeds[0]


def _resource_options(runs: SweepRuns) -> list[str]:
    """The resources the search's latest run was given (--address, --max-concurrent, --cpus-per-trial,
    --gpus-per-trial, --storage, --max-failures), which its best trials train with as it did; none where an
    earlier version recorded the search."""
    recorded = recorded_options(runs.parent.tags) or {}
    return [w for key, option in RESOURCE_OPTIONS if recorded.get(key) is not None
            for w in (option, str(recorded[key]))]


def _data_options(runs: SweepRuns) -> list[str]:
    """The --data options the search ran with (plan.json), else its data names; none for the synthetic faces."""
    plan = read_json_artifact(runs.client, runs.parent.run_id, schema.ARTIFACT_PLAN) if runs.client else None
    if isinstance(plan, dict) and isinstance(plan.get("data"), list):
        choices = [d for d in plan["data"] if isinstance(d, dict)]
        if all(d.get("dataset") == "synthetic" for d in choices):
            return []
        return [w for d in choices for w in ("--data", d["name"] if not d.get("root") else f"{d['name']}={d['root']}")]
    names = [d for d in runs.parent.tags.get(schema.TAG_DATA, "").split(",") if d and d != "synthetic"]
    return [w for n in names for w in ("--data", f"{n}=PATH")]


__all__ = ["BestSpec", "RankedTrial", "best_spec", "ranked_trials"]
