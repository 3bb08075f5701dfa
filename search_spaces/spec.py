"""Sweep specs: WHAT a named sweep varies, read from YAML and validated before anything runs.

A spec is a YAML file (the shipped ones live next to this module, one per named sweep):

    name: num_lanets                      # must match the file name for shipped specs
    title: "Number of LANets B"
    description: one line for `sweeps list`
    caption: the paper-table caption (may be long)
    kind: table                           # table (arms x data x seeds) | search (Optuna over a space)
    profile: quick                        # default compute profile (profiles.yaml)
    base: {model.drop_variant: mad}       # applied to every cell (dotted TrialConfig keys)
    grid: {model.num_lanets: [1, 2, 4]}   # or `arms: [{label: MAD, set: {...}}, ...]`
    label: "B={model.num_lanets}"         # grid label template (str.format fields = grid keys)
    seeds: [0, 1, 2]
    metric: sel_test_acc                  # table: a table metric; search: what Tune/Optuna see
    mode: max
    table: {baseline: "B=2", metrics: [sel_test_acc, best_test_acc]}   # rows: arm, columns: data (the only ones)
                                          # + paper: {"B=2": {rafdb: 90.91}}, paper_metric: best_test_acc;
                                          # after the first metric also best_val_mca, best_val_loss,
                                          # best_train_acc, best_train_loss (each run's best epoch of it);
                                          # default: [metric]; a search's: the best epoch of its metric and
                                          # sel_test_acc ([sel_test_acc, best_val_loss] for val_loss)
    search: {space: {optim.lr: {type: float, low: 1.0e-5, high: 1.0e-2, log: true}}, num_samples: 16}
                                          # a parameter: {type: float|int, low, high, log, step} or
                                          # {type: categorical, choices: [...]} (a bare list is one);
                                          # + sampler: tpe|random|gp|qmc, n_startup_trials: 10 (tpe, gp),
                                          # pruner: {type: median, ...its Optuna arguments}; types median
                                          # (default), percentile, successive_halving (tune.yaml), hyperband,
                                          # patient, wilcoxon, threshold, none
    x-common: &common {optim.lr: 1.0e-3}  # any key starting x-: a place for YAML anchors (`<<: *common` in
                                          # base or an arm's set), otherwise ignored

`load(name_or_path)` reads it with `yaml.safe_load` (nothing is evaluated) and checks everything:
unknown keys anywhere (listing the valid ones), types, and every config value by building the
TrialConfigs of the spec's default profile, so that `transfer_core.config` range checks speak. Every
error is a `SpecError` naming the file, the line, the key path (`arms[2].set.model.drop_rate`), the
value and what would be right. A YAML key written twice is an error, never silently dropped.

The generic helpers live beside this module and are shared with profiles.py and plan.py: yaml_doc.py
(YAML with line numbers, SpecError, the typed readers), layers.py (config layers: `config_layer`,
`apply`) and search.py (the `search:` section). The names other code imports from here are re-exported.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import itertools
import json
import math
import os
import re
import string
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Mapping, Sequence

from transfer_core.config import DATASETS, TrialConfig, config_hash

from search_spaces.layers import Layer, apply, check_config_key, config_layer, normalise_value
from search_spaces.search import (KEYED_PARAM_FIELDS, KEYED_SEARCH_FIELDS, UNKEYED_SEARCH_FIELDS, SearchConfig,
                                  SearchParam, _parse_search, check_space, keyed_fields)
from search_spaces.yaml_doc import (FrozenMap, SpecError, _Doc, _unknown, check_keys, expect_choice,
                                    expect_mapping, expect_name, expect_number, expect_str, parse_seeds,
                                    parse_yaml, read_yaml, thaw)

# SpecError, FrozenMap, thaw, SearchParam and SearchConfig are defined in yaml_doc.py and search.py and
# re-exported here, where other code has always imported them from.
__all__ = ["SpecError", "SweepSpec", "Arm", "TableLayout", "SearchParam", "SearchConfig", "FrozenMap",
           "load", "list_sweeps", "SUMMARY_METRICS", "EPOCH_METRICS", "thaw"]

# Copied from sweeps/schema.py (search_spaces must not import sweeps); tests check they agree.
SUMMARY_METRICS = ("best_val_acc", "sel_epoch", "sel_test_acc", "sel_test_mca", "best_test_acc",
                   "best_test_mca", "best_test_epoch", "final_test_acc", "epochs_done")
# The summaries a paper table can show (sweeps.tables.METRIC_LABELS): sel_epoch, best_test_epoch and
# epochs_done are epoch counts, not accuracies, and `sweeps table` refuses them; tests check they agree.
TABLE_METRICS = ("best_val_acc", "sel_test_acc", "sel_test_mca", "best_test_acc", "best_test_mca", "final_test_acc")
# Columns a table may show after its first metric, of no summary a run records: each run's best epoch of a per-epoch
# metric a search may optimise (sweeps.tables.EPOCH_BEST_METRICS; tests check they agree). No trial reports them,
# so they are no table spec's `metric`.
EPOCH_BEST_METRICS = ("best_val_mca", "best_val_loss", "best_train_acc", "best_train_loss")
EPOCH_METRICS = ("train_loss", "train_acc", "val_loss", "val_acc", "val_mca", "test_loss", "test_acc",
                 "test_mca", "lr", "epoch_time_s", "train_images_per_s")

KINDS = ("table", "search")
MODES = ("max", "min")
TOP_KEYS = ("name", "title", "description", "caption", "kind", "profile", "base", "arms", "grid", "label",
            "seeds", "metric", "mode", "table", "search")
# A top-level key that starts with x- (as in docker compose files) is a place for YAML anchors, reused with
# `<<: *name` in base or an arm's set, and is otherwise ignored: no part of what a spec trains nor of any hash
EXTENSION_PREFIX = "x-"
EXTENSION_HINT = (f" (or a key starting {EXTENSION_PREFIX}, e.g. x-common: &common {{optim.lr: 1.0e-3}}, a place "
                  "for YAML anchors to reuse with <<: *common, otherwise ignored)")
ARM_KEYS = ("label", "set")
TABLE_KEYS = ("rows", "columns", "baseline", "metrics", "paper", "paper_metric")
TABLE_ROWS = ("arm",)
TABLE_COLUMNS = ("data",)
DEFAULT_METRIC = {"table": "sel_test_acc", "search": "val_acc"}
# What says how a sweep's table reads, not what it trains: an edit of these continues an invocation (its
# table takes them). The metric stays out: Tune reports and a search optimises it; a grid's label names
# the rows its runs are recorded under.
PRESENTATION_KEYS = ("title", "description", "caption", "table")
# What a search may optimise and prune on: an accuracy or a loss (an epoch count, the learning rate or a
# timing is no objective), never one measured on the test set (DESIGN, Honest evaluation)
NOT_OBJECTIVES = {"sel_epoch": "an epoch number", "best_test_epoch": "an epoch number",
                  "epochs_done": "an epoch count", "lr": "the learning rate", "epoch_time_s": "a timing",
                  "train_images_per_s": "a throughput"}
SEARCH_METRICS = tuple(m for m in EPOCH_METRICS + SUMMARY_METRICS if "test" not in m and m not in NOT_OBJECTIVES)


def metric_mode(metric: str) -> str:
    """The direction a metric improves in: a loss down, an accuracy up."""
    return "min" if metric.endswith("_loss") else "max"


# --------------------------------------------------------------------------- the spec

@dataclass(frozen=True)
class Arm:
    """One table row: a label and the dotted overrides that make it."""

    label: str
    overrides: Mapping[str, Any] = field(default_factory=FrozenMap)
    # a grid's label as versions before wrote a list value, Python's way ("milestones=(3,)" for [3]), where that
    # differs: the label its invocations are recorded under (`trained_hash`, the arm tags of their runs)
    recorded_as: str | None = None


@dataclass(frozen=True)
class TableLayout:
    """How the sweep's paper table is laid out."""

    rows: str = "arm"
    columns: str = "data"
    baseline: str | None = None                 # an arm label: deltas are taken against it
    metrics: tuple[str, ...] = ("sel_test_acc",)
    paper: Mapping[str, Mapping[str, float]] | None = None   # arm label -> column -> percent
    # the metric the paper's figures were reported as, whose column they are shown under (default: the first
    # of metrics): most FER papers report the best test epoch (best_test_acc), not the honest sel_test_acc
    paper_metric: str | None = None


@dataclass(frozen=True)
class SweepSpec:
    name: str
    title: str
    description: str
    caption: str
    kind: str
    profile: str
    base: Mapping[str, Any]
    arms: tuple[Arm, ...]
    seeds: tuple[int, ...]
    metric: str
    mode: str
    table: TableLayout
    search: SearchConfig | None
    source: str
    spec_hash: str
    text: str = field(repr=False)
    grid: Mapping[str, tuple] = field(default_factory=FrozenMap)   # the grid the arms came from, if any
    # of what the YAML says, not how it is written (comments, spacing, key order, quoting), a table's seeds
    # left out (`content_hash`): an invocation's identity until its title, caption and table layout were
    # left out too, under which invocations of earlier versions are recorded
    content_hash: str = ""
    # of what the spec trains, as read (`trained_hash`): its values as typed, not as written (1e-3 or 1.0e-3,
    # model.depth or model: {depth}, a default left out or given), without a table's seeds or how its table
    # reads (PRESENTATION_KEYS): an invocation's identity, so that a spec given a comment, another seed, a
    # reworded caption or another baseline, or a value written another way, still continues its invocation
    identity_hash: str = ""
    # of what the spec trains, as written (`identity_hash` of its YAML document): an invocation's identity until
    # a value written another way was one too, under which invocations of earlier versions are recorded
    written_identity_hash: str = ""
    # of what the spec trains, as read, a search's pruner arguments 25 and 25.0 two values (`trained_hash` with
    # numbers_as_typed): an invocation's identity until they were one, under which invocations of earlier
    # versions are recorded; `identity_hash` but for a pruner argument written as an integral float
    typed_identity_hash: str = ""

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(arm.label for arm in self.arms)

    @property
    def varied_keys(self) -> tuple[str, ...]:
        """The dotted keys the arms (or the search space) vary, in first-seen order."""
        if self.search is not None:
            return tuple(self.search.space)
        return tuple(dict.fromkeys(k for arm in self.arms for k in arm.overrides))

    def arm(self, label: str) -> Arm:
        for arm in self.arms:
            if arm.label == label:
                return arm
        raise SpecError(_unknown("arm", label, self.labels))

    def error_at(self, path: Sequence, message: str) -> SpecError:
        """A SpecError pointing at `path` in this spec's file (for checks made by upper layers)."""
        return self._doc().error(tuple(path), message)

    # where the layers were written, for errors raised after loading (plan.expand)
    def _doc(self) -> _Doc:
        return _Doc(self.source, self.text or None)

    def base_layer(self) -> Layer:
        return Layer(self.base, self._doc(), ("base",))

    def arm_layer(self, index: int) -> Layer:
        arm = self.arms[index]
        if self.grid:
            return Layer(arm.overrides, self._doc(), ("grid",), FrozenMap({k: ("grid", k) for k in arm.overrides}))
        return Layer(arm.overrides, self._doc(), ("arms", index, "set"))


# --------------------------------------------------------------------------- arms

def _parse_label(doc: _Doc, path: tuple, value: Any) -> str:
    label = expect_str(doc, path, value)
    if not label or "/" in label or "\n" in label:
        raise doc.error(path, f"{label!r} is invalid: expected a non-empty one-line label without '/' "
                              "(labels are part of run names <sweep>/<arm>/seed<k>)")
    return label


def _parse_arms(doc: _Doc, value: Any) -> tuple[list[Arm], list[Layer]]:
    path = ("arms",)
    if not isinstance(value, list) or not value:
        raise doc.error(path, f"{value!r} is invalid: expected a non-empty list of arms, e.g. "
                              "[{label: MAD, set: {model.drop_variant: mad}}]")
    arms, layers = [], []
    for i, item in enumerate(value):
        expect_mapping(doc, path + (i,), item, "{label: MAD, set: {model.drop_variant: mad}}")
        check_keys(doc, path + (i,), item, ARM_KEYS)
        if "label" not in item:
            raise doc.error(path + (i,), "missing key 'label': every arm needs its table row label")
        label = _parse_label(doc, path + (i, "label"), item["label"])
        layer = config_layer(doc, path + (i, "set"), item.get("set"))
        arms.append(Arm(label, layer.values))
        layers.append(layer)
    return arms, layers


def _template_fields(doc: _Doc, template: str, keys: Sequence[str]) -> list[tuple[str, str | None, str, str | None]]:
    """Parse a label template; each field must be a grid key (or its last part), nothing else."""
    path = ("label",)
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise doc.error(path, f"{template!r} is not a valid template ({exc}); write fields as "
                              f"{{{keys[0]}}} and a literal brace as {{{{ or }}}}") from None
    short = {}
    for key in keys:
        short.setdefault(key.rsplit(".", 1)[-1], []).append(key)
    valid = ", ".join(f"{{{k}}}" for k in keys)
    out = []
    for literal, name, spec, conversion in parsed:
        if name is None:
            out.append((literal, None, "", None))
            continue
        if name in keys:
            key = name
        elif len(short.get(name, ())) == 1:
            key = short[name][0]
        else:
            raise doc.error(path, f"{template!r}: field {{{name}}} is not a grid key (no attribute or index "
                                  f"access, no positional fields). Valid fields: {valid}")
        if "{" in (spec or ""):
            raise doc.error(path, f"{template!r}: nested fields in a format spec are not allowed")
        if conversion not in (None, "s", "r"):
            raise doc.error(path, f"{template!r}: conversion !{conversion} is invalid: expected !s or !r")
        out.append((literal, key, spec or "", conversion))
    return out


_EXPONENT_RE = re.compile(r"e([+-])0*(\d)")


def _yaml_scalar(text: str) -> str:
    """A string as a YAML flow mapping's value that reads back as that string: as it is where it does (dropout),
    else double-quoted ("off", read unquoted as False; "3"; "/a: b"; "x, y")."""
    import yaml

    try:
        plain = text == text.strip() and yaml.safe_load(f"{{k: {text}}}") == {"k": text}
    except yaml.YAMLError:
        plain = False
    return text if plain else json.dumps(text)


def _yaml_flow(value: Any) -> Any:
    """A value as the spec writes it, YAML's way: a list [3, 6] (read as the tuple (3, 6)), true/false, null, a
    float in its shortest faithful form with a bare exponent (1e-5, not Python's 1e-05; 0.001 and 0.0 as they are);
    anything else (int, str) as it is."""
    if isinstance(value, tuple):
        return f"[{', '.join(str(_yaml_flow(v)) for v in value)}]"
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            return ".nan" if math.isnan(value) else ".inf" if value > 0 else "-.inf"
        return _EXPONENT_RE.sub(lambda m: f"e{'-' if m.group(1) == '-' else ''}{m.group(2)}", repr(value))
    return value


def _render(doc: _Doc, template: str, fields: list, values: Mapping[str, Any], as_python: bool = False) -> str:
    """The label of one grid point; `as_python`: a value as versions before wrote it, Python's way ("(3,)" for [3],
    True, None, 1e-05)."""
    parts = []
    for literal, key, spec, conversion in fields:
        parts.append(literal)
        if key is None:
            continue
        value = values[key]
        value = (repr(value) if conversion == "r" else str(value) if conversion == "s"
                 else value if as_python or spec else _yaml_flow(value))
        try:
            parts.append(format(value, spec))
        except (ValueError, TypeError) as exc:
            raise doc.error(("label",), f"{template!r}: format spec {spec!r} does not fit "
                                        f"{key}={value!r} ({exc})") from None
    return "".join(parts)


def _parse_grid(doc: _Doc, value: Any, template: Any) -> tuple[list[Arm], list[Layer], FrozenMap]:
    path = ("grid",)
    expect_mapping(doc, path, value, "{model.num_lanets: [1, 2, 4]}")
    if not value:
        raise doc.error(path, "is empty: expected at least one key with a list of values")
    grid: dict[str, tuple] = {}
    for key, values in value.items():
        check_config_key(doc, path + (key,), key)
        if not isinstance(values, list) or not values:
            raise doc.error(path + (key,), f"{values!r} is invalid: expected a non-empty list of values, "
                                           f"e.g. {key}: [1, 2, 4]")
        typed = tuple(normalise_value(doc, path + (key, i), key, v) for i, v in enumerate(values))
        if len(set(map(repr, typed))) != len(typed):
            raise doc.error(path + (key,), f"{list(values)} repeats a value: expected distinct values")
        grid[key] = typed
    keys = list(grid)
    if template is None:
        names = {k: k.rsplit(".", 1)[-1] for k in keys}
        if len(set(names.values())) < len(names):
            names = {k: k for k in keys}
        template = ", ".join(f"{names[k]}={{{k}}}" for k in keys)
    else:
        template = expect_str(doc, ("label",), template, one_line=True)
    fields = _template_fields(doc, template, keys)
    arms, layers = [], []
    for combo in itertools.product(*grid.values()):
        values = dict(zip(keys, combo))
        label = _parse_label(doc, ("label",), _render(doc, template, fields, values))
        before = _render(doc, template, fields, values, as_python=True)
        arms.append(Arm(label, FrozenMap(values), before if before != label else None))
        layers.append(Layer(FrozenMap(values), doc, path, FrozenMap({k: path + (k,) for k in keys})))
    return arms, layers, FrozenMap(grid)


# --------------------------------------------------------------------------- table

def _parse_metric_list(doc: _Doc, path: tuple, value: Any, valid: Sequence[str]) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value:
        raise doc.error(path, f"{value!r} is invalid: expected a non-empty list of metric names, e.g. "
                              "[sel_test_acc, best_test_acc]")
    for i, name in enumerate(value):
        if name not in valid:
            raise doc.error(path + (i,), _unknown("metric", name, valid))
    if len(set(value)) != len(value):
        raise doc.error(path, f"{value} repeats a metric")
    return tuple(value)


def _default_table_metrics(metric: str, kind: str) -> tuple[str, ...]:
    """A table's columns where its spec names none: a table's metric; a search's own, the best epoch of what it
    optimised (best_val_acc for val_acc, best_val_loss for val_loss: `sweeps.tables.SearchRanking.column`) with the
    test accuracy, a loss after it (a table's first metric is an accuracy: its bars and Δ are in percent). A
    search of a metric no table shows (a timing an earlier version allowed): best validation accuracy."""
    if metric in TABLE_METRICS:
        return (metric,)
    column = metric if metric.startswith("best_") else f"best_{metric}"
    if kind != "search" or column not in TABLE_METRICS + EPOCH_BEST_METRICS:
        return ("best_val_acc", "sel_test_acc")
    return ("sel_test_acc", column) if column.endswith("_loss") else (column, "sel_test_acc")


def _table_axis(doc: _Doc, path: tuple, value: Any, choices: tuple[str, ...], arms: Sequence[Arm], kind: str,
                grid: bool) -> str:
    """table.rows / table.columns: the one layout there is (rows: arm, columns: data). A config key, or a list of
    them (a two-key grid pivoted: `rows: model.depth, columns: model.drop_rate`), is refused saying so and how the
    table shows such points: a grid's, one row each, named by its label template; explicit arms' by their own
    labels (a label template is a grid's only); a search's trials by the values each drew."""
    if isinstance(value, str) and value in choices:
        return value
    if isinstance(value, (str, list)) and not (isinstance(value, str) and
                                                difflib.get_close_matches(value, choices, n=1)):
        if kind == "search":
            how = "a search gives one row per trial, named by the values it drew"
        elif grid:
            keys = sorted({k for a in arms for k in a.overrides})
            example = " ".join(f"{k.rsplit('.', 1)[-1]}={{{k}}}" for k in keys[:2]) or "depth={model.depth}"
            how = ("a grid over several keys gives one row per point, named by its label template, e.g. "
                   f"label: \"{example}\"")
        else:   # explicit arms: each is a row under its own label; a {key} template is no arm's label
            arm = next((a for a in arms if a.overrides), None)
            shown = dict(list(arm.overrides.items())[:2]) if arm else {"model.depth": 3}
            # as YAML reads it back: [3, 5] (not Python's (3, 5)), 1e-5; a string YAML reads otherwise quoted
            # ("off", which unquoted is False, refused for amp/compile; one with ': ' or ',' in a flow mapping)
            text = {k: v if isinstance(v, str) else str(_yaml_flow(v)) for k, v in shown.items()}
            # a label has no '/' (part of run names): a path's last part (encoder_checkpoint=vit.pth)
            label = " ".join(f"{k.rsplit('.', 1)[-1]}={v.rstrip('/').rsplit('/', 1)[-1]}" for k, v in text.items())
            sets = ", ".join(f"{k}: {_yaml_scalar(v) if isinstance(v, str) else text[k]}" for k, v in shown.items())
            how = (f"each arm is one row, named by its own label, e.g. {{label: {json.dumps(label)}, set: {{{sets}}}}} "
                   "(a label template is a grid's: grid: gives one row per point of several keys)")
        raise doc.error(path, f"{value!r} is invalid: a table's rows are its arms (a search's: its trials) and its "
                              "columns its data sets (rows: arm, columns: data, the only layout, which need not be "
                              f"given); {how}")
    return expect_choice(doc, path, value, choices)


def _parse_table(doc: _Doc, value: Any, arms: Sequence[Arm], metric: str, kind: str, grid: bool) -> TableLayout:
    path = ("table",)
    labels = [a.label for a in arms]
    # a grid label as versions before wrote it ("milestones=(3,)") still names its row: a spec's, and one recorded
    now = {a.recorded_as: a.label for a in arms if a.recorded_as is not None}
    value = {} if value is None else expect_mapping(doc, path, value, "{baseline: MAD}")
    check_keys(doc, path, value, TABLE_KEYS)
    rows, columns = (_table_axis(doc, path + (key,), value.get(key, given[0]), given, arms, kind, grid)
                     for key, given in (("rows", TABLE_ROWS), ("columns", TABLE_COLUMNS)))
    baseline = value.get("baseline")
    if baseline is not None:
        if kind == "search":
            raise doc.error(path + ("baseline",), "a search sweep has no arms, so no baseline row")
        baseline = expect_str(doc, path + ("baseline",), baseline)
        baseline = now.get(baseline, baseline)
        if baseline not in labels:
            raise doc.error(path + ("baseline",), _unknown("arm label", baseline, labels))
    default = _default_table_metrics(metric, kind)
    metrics = (_parse_metric_list(doc, path + ("metrics",), value["metrics"], TABLE_METRICS + EPOCH_BEST_METRICS)
               if "metrics" in value else default)
    if metrics[0].endswith("_loss"):
        raise doc.error(path + ("metrics", 0), f"{metrics[0]} is a loss: a table's first metric is an accuracy, in "
                                               "percent, which its bars, Δ and the paper's figures are of; put it "
                                               f"after one, e.g. [sel_test_acc, {metrics[0]}]")
    paper = value.get("paper")
    if paper is not None:
        expect_mapping(doc, path + ("paper",), paper, "{MAD: {rafdb: 90.91}}")
        rows_out = {}
        for label, row in paper.items():
            p = path + ("paper", label)
            label = expect_str(doc, p, label)   # a label "2" written 2 is an integer, and no label is one
            label = now.get(label, label)
            if label not in labels:
                raise doc.error(p, _unknown("arm label", label, labels))
            expect_mapping(doc, p, row, "{rafdb: 90.91}")
            rows_out[label] = {}
            for column, number in row.items():
                if column not in DATASETS:
                    raise doc.error(p + (column,), _unknown("data set column", column, DATASETS))
                number = expect_number(doc, p + (column,), number)
                if not 0 <= number <= 100:
                    raise doc.error(p + (column,), f"{number!r} is invalid: expected a percentage in [0, 100]")
                rows_out[label][column] = float(number)
        paper = FrozenMap(rows_out)
    paper_metric = value.get("paper_metric")
    if paper_metric is not None:
        p = path + ("paper_metric",)
        if paper is None:
            raise doc.error(p, "is given without paper figures: expected table.paper, e.g. "
                               "{paper: {MAD: {rafdb: 90.91}}, paper_metric: best_test_acc}, or no paper_metric")
        paper_metric = expect_str(doc, p, paper_metric)
        if paper_metric not in TABLE_METRICS:
            raise doc.error(p, _unknown("table metric", paper_metric, TABLE_METRICS))
        if paper_metric not in metrics:
            raise doc.error(p, f"{paper_metric} is not among the table's metrics ({', '.join(metrics)}), so the "
                               f"paper's figures would have no column: add it, e.g. table.metrics: "
                               f"[{', '.join(metrics + (paper_metric,))}]")
    return TableLayout(rows, columns, baseline, metrics, paper, paper_metric)


# --------------------------------------------------------------------------- load

def _parse_spec(doc: _Doc, data: Any, expected_name: str | None, recorded: bool = False) -> SweepSpec:
    from search_spaces.profiles import list_profiles, load_profile

    expect_mapping(doc, (), data, "name: my_sweep")
    data = without_extensions(data)
    check_keys(doc, (), data, TOP_KEYS, EXTENSION_HINT)
    if "name" not in data:
        raise doc.error((), "missing key 'name': every spec needs a name (the MLflow experiment name)")
    name = expect_name(doc, ("name",), data["name"])
    if expected_name is not None and name != expected_name:
        raise doc.error(("name",), f"{name!r} differs from the file name: a shipped spec must be named "
                                   f"{expected_name!r}")
    title = expect_str(doc, ("title",), data.get("title", name), one_line=True)
    description = expect_str(doc, ("description",), data.get("description", title), one_line=True)
    caption = " ".join(expect_str(doc, ("caption",), data.get("caption", "")).split())
    kind = expect_choice(doc, ("kind",), data.get("kind", "table"), KINDS)
    profile_name = expect_str(doc, ("profile",), data.get("profile", "quick"))
    profile_names = [n for n, _ in list_profiles()]
    if profile_name not in profile_names:
        raise doc.error(("profile",), _unknown("profile", profile_name, profile_names))
    base = config_layer(doc, ("base",), data.get("base"))
    seeds = parse_seeds(doc, ("seeds",), data.get("seeds", [0]))
    valid_metrics = TABLE_METRICS if kind == "table" else SEARCH_METRICS
    metric = data.get("metric", DEFAULT_METRIC[kind])
    if kind == "search" and "test" in str(metric) and metric in EPOCH_METRICS + SUMMARY_METRICS:
        raise doc.error(("metric",), f"{metric} is measured on the test set: a search chooses its configurations "
                                     "(and prunes) on validation, never on the test set. Expected one of: "
                                     f"{', '.join(SEARCH_METRICS)}")
    if recorded:   # the spec an earlier invocation ran with: its tables stay readable under today's rules
        valid_metrics = valid_metrics + tuple(NOT_OBJECTIVES) if kind == "search" else SUMMARY_METRICS
    elif metric in NOT_OBJECTIVES:
        raise doc.error(("metric",), f"{metric} is {NOT_OBJECTIVES[metric]}, not a score a {kind} can rank by: "
                                     f"expected one of {', '.join(valid_metrics)}")
    if metric not in valid_metrics:
        raise doc.error(("metric",), _unknown(f"{kind} metric", metric, valid_metrics))
    mode = expect_choice(doc, ("mode",), data.get("mode", metric_mode(metric)), MODES)
    if mode != metric_mode(metric) and not recorded:   # Optuna would search for the worst configuration
        raise doc.error(("mode",), f"{mode} for metric {metric}, which improves as it "
                                   f"{'falls' if metric_mode(metric) == 'min' else 'rises'}: expected "
                                   f"mode: {metric_mode(metric)} (or leave mode out)")

    arms: list[Arm] = []
    layers: list[Layer] = []
    grid: FrozenMap = FrozenMap()
    search = None
    if kind == "table":
        if "search" in data:
            raise doc.error(("search",), "search is only for kind: search; this spec has kind: table")
        if ("arms" in data) == ("grid" in data):
            raise doc.error((), "a table sweep needs exactly one of 'arms' (an explicit list) or 'grid' "
                                "(values to combine)" + (", not both" if "arms" in data else ""))
        if "arms" in data:
            if "label" in data:
                raise doc.error(("label",), "label is the grid's label template; explicit arms give a "
                                            "label each")
            arms, layers = _parse_arms(doc, data["arms"])
        else:
            arms, layers, grid = _parse_grid(doc, data["grid"], data.get("label"))
        labels = [a.label for a in arms]
        shown = [" ".join(label.split()) for label in labels]   # as a table prints it: its spaces run together
        for i, label in enumerate(labels):
            where = ("arms", i, "label") if "arms" in data else ("label",)
            if label in labels[:i]:
                raise doc.error(where, f"label {label!r} is used by two arms: labels must be unique")
            if shown[i] in shown[:i] and not recorded:   # a recorded spec's table stays readable
                raise doc.error(where, f"label {label!r} differs from {labels[shown.index(shown[i])]!r} only in its "
                                       "spaces, which a table prints as one: its two rows would read the same. "
                                       "Labels must be unique")
    else:
        for key in ("arms", "grid", "label"):
            if key in data:
                raise doc.error((key,), f"{key} is only for kind: table; a search varies search.space")
        if "search" not in data:
            raise doc.error((), "missing key 'search': kind: search needs search.space and num_samples")
        search = _parse_search(doc, data["search"], base.values, recorded)
        if len(seeds) != 1:
            raise doc.error(("seeds",), f"{list(seeds)} is invalid: a search trains each sample once: "
                                        "give one seed")
    table = _parse_table(doc, data.get("table"), arms, metric, kind, kind == "table" and "grid" in data)

    # every config value, checked by building the configs of the default profile
    profile = load_profile(profile_name)
    config = apply(apply(TrialConfig(), profile.layer()), base)
    if search is not None:
        check_space(search.space, config, doc, every_value=not recorded)
    seen: dict[str, str] = {}
    for arm, layer in zip(arms, layers):
        cell_id = config_hash(apply(config, layer))
        if cell_id in seen:
            raise doc.error(layer.path, f"arms {seen[cell_id]!r} and {arm.label!r} give the same "
                                        f"configuration on profile {profile_name!r}: make them differ")
        seen[cell_id] = arm.label

    text = doc.text or ""
    spec = SweepSpec(name=name, title=title, description=description, caption=caption, kind=kind,
                     profile=profile_name, base=base.values, arms=tuple(arms), seeds=seeds, metric=metric,
                     mode=mode, table=table, search=search, source=doc.source,
                     spec_hash=text_hash(text), text=text, grid=grid,
                     content_hash=content_hash(data), written_identity_hash=identity_hash(data))
    return dataclasses.replace(spec, identity_hash=trained_hash(spec),
                               typed_identity_hash=trained_hash(spec, numbers_as_typed=True))


def text_hash(text: str) -> str:
    """A spec text's short hash, its `spec_hash`: spec.yaml's history files and the spec-hash tag name texts by it."""
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def without_extensions(data: Any) -> Any:
    """A parsed spec document without its x- keys (EXTENSION_PREFIX): its anchors are read where they are used."""
    if not isinstance(data, Mapping):
        return data
    return {k: v for k, v in data.items() if not (isinstance(k, str) and k.startswith(EXTENSION_PREFIX))}


def content_hash(data: Any) -> str:
    """A short hash of a parsed spec document: equal for texts that say the same. A table's seeds are left
    out (more seeds extend an invocation, as --seeds does); a search's one seed is kept: it seeds the sampler
    and every trial, so another one is another search. Its x- keys are left out: where their anchors are used,
    their values are."""
    data = without_extensions(data)
    if isinstance(data, Mapping) and data.get("kind", "table") == "table":
        data = {k: v for k, v in data.items() if k != "seeds"}
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:12]


def identity_hash(data: Any) -> str:
    """A short hash of what a parsed spec document trains, as written: its content without PRESENTATION_KEYS,
    which say how its table reads, a table's seeds (as by `content_hash`) nor a search's num_samples: a search
    asked for more samples goes on, its study informed by the trials it ran. An invocation's identity until
    `trained_hash`, which reads the values as typed (`SweepSpec.written_identity_hash`)."""
    if isinstance(data, Mapping):
        data = {k: v for k, v in data.items() if k not in PRESENTATION_KEYS}
        if isinstance(data.get("search"), Mapping):   # more samples extend a search, as more seeds a table
            data["search"] = {k: v for k, v in data["search"].items() if k != "num_samples"}
    return content_hash(data)


def trained_hash(spec: SweepSpec, numbers_as_typed: bool = False, arms_in_order: bool = True) -> str:
    """A short hash of what a spec trains, from its values as read: equal for specs whose cells (a search's
    sampler and space) are the same however their values are written (`1e-3` and `1.0e-3`, `model.depth: 2`
    and `model: {depth: 2}`, a default written out or left out, a grid or the arms it makes, a pruner's
    `percentile: 25`, `25.0` and `2.5e1`). What `identity_hash` leaves out is left out: how its table reads, a
    table's seeds, a search's num_samples. A field added to a search record since is left out at its default
    (search.keyed_fields), so that the searches recorded before it keep their keys. numbers_as_typed: a pruner's
    25 and 25.0 two values, as invocations were keyed before (`SweepSpec.typed_identity_hash`). arms_in_order=False:
    the arms by label, as they are trained (a cell's identity is its config, its runs are named by its label, and
    its table's rows follow the spec it is drawn with): an invocation's key reads them in order, which every
    invocation recorded so far is keyed by, and `sweeps run` finds the one a spec with its arms reordered
    continues by its spec.yaml (invocations.trains_the_same)."""
    trains: dict[str, Any] = {"name": spec.name, "kind": spec.kind, "profile": spec.profile, "metric": spec.metric,
                              "mode": spec.mode, "base": thaw(spec.base),
                              # a grid's labels as recorded: a list value written [3] keeps its invocation
                              "arms": [[arm.recorded_as or arm.label, thaw(arm.overrides)] for arm in
                                       (spec.arms if arms_in_order
                                        else sorted(spec.arms, key=lambda arm: arm.recorded_as or arm.label))]}
    if spec.search is not None:   # its seed seeds the sampler; the order of its space, the sampler's draws
        search = keyed_fields(spec.search, KEYED_SEARCH_FIELDS, UNKEYED_SEARCH_FIELDS)   # a field added since: at
        search["space"] = [[key, keyed_fields(param, KEYED_PARAM_FIELDS)]              # its default, left out
                           for key, param in spec.search.space.items()]
        search = thaw(search)
        if not numbers_as_typed:   # the space's numbers are typed by the key they vary; a pruner's are as written
            search["pruner"] = _integral_as_int(search["pruner"])
        trains.update(seeds=list(spec.seeds), search=search)
    return content_hash(trains)


def _integral_as_int(value: Any) -> Any:
    """A pruner's arguments with each integral float as an int (25.0 as 25), in nested pruners too: an argument
    typed int refuses 25.0 (make_pruner), one typed float takes 25 as 25.0, so that the two read the same."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, Mapping):
        return {k: _integral_as_int(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_integral_as_int(v) for v in value]
    return value


def _package_files() -> dict[str, Any]:
    root = resources.files("search_spaces")
    return {entry.name[:-5]: entry for entry in root.iterdir()
            if entry.name.endswith(".yaml") and entry.name != "profiles.yaml"}


def shipped_names() -> list[str]:
    return sorted(_package_files())


def load_text(text: str, source: str = "<string>", expected_name: str | None = None,
              recorded: bool = False) -> SweepSpec:
    """Parse and validate a spec given as text (`source` names it in errors). recorded: the text an
    earlier invocation recorded, read for its tables: the metric rules added since (a table's metric one
    of its table metrics, a search's no epoch count or timing, mode as the metric improves) are not
    applied to it."""
    doc, data = parse_yaml(text, source, "a sweep spec: a mapping with at least name and arms or grid")
    return _parse_spec(doc, data, expected_name, recorded)


def names_a_file(text: str) -> bool:
    """Whether `load` reads `text` as a spec file's path (ending .yaml/.yml or holding a '/'), not a shipped name."""
    return text.endswith((".yaml", ".yml")) or "/" in text or os.sep in text


def misnamed_spec_file(text: str) -> str | None:
    """A sentence on what `text`, read as a sweep's name (not `names_a_file`), most likely is: a spec file whose suffix is
    mistyped or not lower case (`mine.ymal`, `mine.YAML`: said to be no shipped sweep, though the file is here), or
    one named without its suffix or with a typo in it (`mine`, `mine.ymal` where mine.yaml is). None: neither."""
    if not text.strip() or names_a_file(text) or text in _package_files():
        return None
    path = Path(text).expanduser()
    if path.is_file():
        return (f"{text} is a file here, but a spec file is named *.yaml or *.yml (lower case), which tells it from "
                f"a sweep's name: rename it {path.with_suffix('.yaml') if path.suffix else path.name + '.yaml'}.")
    stems = [path.with_suffix(s) for s in (".yaml", ".yml")] if path.suffix else []
    named = [p for p in (*stems, *(Path(f"{text}{s}") for s in (".yaml", ".yml"))) if p.is_file()]
    return f"Is it the spec file {named[0]}?" if named else None


def load(name_or_path: str | os.PathLike) -> SweepSpec:
    """A shipped sweep by name, or a spec file by path (anything ending .yaml/.yml or holding a '/')."""
    text = os.fspath(name_or_path)
    files = _package_files()
    if isinstance(name_or_path, os.PathLike) or names_a_file(text):
        path = Path(text).expanduser()
        if text.endswith(("/", os.sep)) and path.is_file():   # Path() drops the slash: read as the file, unsaid
            raise SpecError(f"{text} names a folder, but {path} is a file: give the spec file without the "
                            f"trailing slash ({path})")
        doc, data = read_yaml(path, "a sweep spec: a mapping with at least name and arms or grid")
        return _parse_spec(doc, data, None)
    if text not in files:
        hint = misnamed_spec_file(text)
        raise SpecError(_unknown("sweep", text, sorted(files)) + " (or give the path to a .yaml spec file)"
                        + (f". {hint}" if hint else ""))
    entry = files[text]
    return load_text(entry.read_text(encoding="utf-8"), str(entry), expected_name=text)


def list_sweeps() -> list[tuple[str, str]]:
    """(name, one-line description) of every shipped sweep, sorted by name."""
    return [(name, load(name).description) for name in shipped_names()]
