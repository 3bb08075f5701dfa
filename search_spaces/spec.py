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
    metric: sel_test_acc                  # table: a summary metric; search: what Tune/Optuna see
    mode: max
    table: {baseline: "B=2", metrics: [sel_test_acc, best_test_acc]}
    search: {space: {optim.lr: {type: float, low: 1.0e-5, high: 1.0e-2, log: true}}, num_samples: 16}

`load(name_or_path)` reads it with `yaml.safe_load` (nothing is evaluated) and checks everything:
unknown keys anywhere (listing the valid ones), types, and every config value by building the
TrialConfigs of the spec's default profile, so that `transfer_core.config` range checks speak. Every
error is a `SpecError` naming the file, the line, the key path (`arms[2].set.model.drop_rate`), the
value and what would be right. A YAML key written twice is an error, never silently dropped.

The helpers for config layers (`_config_layer`, `_apply`) are shared with profiles.py and plan.py.
"""

from __future__ import annotations

import difflib
import hashlib
import itertools
import os
import re
import string
import typing
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping, Sequence

import yaml

from transfer_core.config import (DATASETS, ConfigError, DataConfig, ModelConfig, OptimConfig, TrialConfig,
                                  config_hash, config_keys, from_flat, unknown_key_message)

__all__ = ["SpecError", "SweepSpec", "Arm", "TableLayout", "SearchParam", "SearchConfig", "FrozenMap",
           "load", "list_sweeps", "SUMMARY_METRICS", "EPOCH_METRICS"]

# Copied from sweeps/schema.py (search_spaces must not import sweeps); tests check they agree.
SUMMARY_METRICS = ("best_val_acc", "sel_epoch", "sel_test_acc", "sel_test_mca", "best_test_acc",
                   "best_test_mca", "best_test_epoch", "final_test_acc", "epochs_done")
EPOCH_METRICS = ("train_loss", "train_acc", "val_loss", "val_acc", "val_mca", "test_loss", "test_acc",
                 "test_mca", "lr", "epoch_time_s", "train_images_per_s")

KINDS = ("table", "search")
MODES = ("max", "min")
TOP_KEYS = ("name", "title", "description", "caption", "kind", "profile", "base", "arms", "grid", "label",
            "seeds", "metric", "mode", "table", "search")
ARM_KEYS = ("label", "set")
TABLE_KEYS = ("rows", "columns", "baseline", "metrics", "paper")
TABLE_ROWS = ("arm",)
TABLE_COLUMNS = ("data",)
SEARCH_KEYS = ("space", "num_samples", "sampler", "n_startup_trials", "pruner")
SAMPLERS = ("tpe", "random")
PARAM_TYPES = ("float", "int", "categorical")
PARAM_KEYS = ("type", "low", "high", "log", "step", "choices")
DEFAULT_METRIC = {"table": "sel_test_acc", "search": "val_acc"}

# Keys a spec, a profile or --set may not write: every cell sets them itself (never silently dropped).
RESERVED_KEYS = {
    "data.dataset": "the data set of a cell comes from --data NAME=PATH (one table column per data set)",
    "data.root": "the data folder of a cell comes from --data NAME=PATH",
    "seed": "the seed of a cell comes from the spec's `seeds` list (or --seeds)",
}
SECTIONS = ("model", "data", "optim")
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_SCI_FLOAT_RE = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+$")  # YAML 1.2 floats PyYAML reads as text
_ERROR_KEY_RE = re.compile(r"^([A-Za-z_][\w.]*)(?:\[\d+\])?(?:=| is )")


class SpecError(ValueError):
    """A sweep spec, profile or option is invalid; the message names file, key path, value and fix."""

    def __init__(self, message: str, *, source: str | None = None, key_path: str | None = None,
                 line: int | None = None) -> None:
        super().__init__(message)
        self.source, self.key_path, self.line = source, key_path, line


# --------------------------------------------------------------------------- immutable mappings

class FrozenMap(Mapping):
    """A read-only, hashable, picklable dict (the Mapping fields of the frozen dataclasses)."""

    __slots__ = ("_data",)

    def __init__(self, data: Mapping | Iterable = ()) -> None:
        self._data = {k: _freeze(v) for k, v in dict(data).items()}

    def __getitem__(self, key: Any) -> Any:
        return self._data[key]

    def __iter__(self) -> Iterator:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __hash__(self) -> int:
        return hash(frozenset(self._data.items()))

    def __repr__(self) -> str:
        return repr(self._data)

    def __reduce__(self):
        return (FrozenMap, (self._data,))


def _freeze(value: Any) -> Any:
    if isinstance(value, Mapping):
        return value if isinstance(value, FrozenMap) else FrozenMap(value)
    if isinstance(value, (list, tuple)):
        return tuple(_freeze(v) for v in value)
    return value


def thaw(value: Any) -> Any:
    """FrozenMap/tuple -> dict/list, for JSON."""
    if isinstance(value, Mapping):
        return {k: thaw(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [thaw(v) for v in value]
    return value


# --------------------------------------------------------------------------- YAML documents and errors

def format_path(path: Sequence) -> str:
    """('arms', 2, 'set', 'model.drop_rate') -> 'arms[2].set.model.drop_rate'."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


class _Doc:
    """Where values came from: a YAML file (errors carry its line numbers) or an option (`--set`)."""

    def __init__(self, source: str, text: str | None = None) -> None:
        self.source, self.text = source, text
        self._lines: dict[tuple, int] | None = None

    def line(self, path: Sequence) -> int | None:
        if self.text is None:
            return None
        if self._lines is None:
            self._lines = _line_map(self.text)[0]
        key = tuple(path)
        while key:
            if key in self._lines:
                return self._lines[key]
            key = key[:-1]
        return None

    def error(self, path: Sequence, message: str, line: int | None = None) -> SpecError:
        line = line or self.line(path)
        key_path = format_path(path)
        if self.text is None:  # a command-line option: "--set model.depth: ..."
            where = f"{self.source} {key_path}".strip()
        else:
            where = f"{self.source}{f' line {line}' if line else ''}" + (f": {key_path}" if key_path else "")
        return SpecError(f"{where}: {message}", source=self.source, key_path=key_path, line=line)


def _line_map(text: str) -> tuple[dict[tuple, int], list[tuple[tuple, str, int, int]]]:
    """Path -> 1-based line, and the keys written twice in one mapping (path, key, first, second)."""
    lines: dict[tuple, int] = {}
    duplicates: list[tuple[tuple, str, int, int]] = []
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return lines, duplicates
    seen_nodes: set[int] = set()

    def walk(node: yaml.Node, path: tuple) -> None:
        if id(node) in seen_nodes:  # aliases: each node once
            return
        seen_nodes.add(id(node))
        if isinstance(node, yaml.MappingNode):
            first: dict[str, int] = {}
            for key_node, value_node in node.value:
                if not isinstance(key_node, yaml.ScalarNode) or key_node.value == "<<":
                    continue
                key, line = key_node.value, key_node.start_mark.line + 1
                if key in first:
                    duplicates.append((path, key, first[key], line))
                first.setdefault(key, line)
                lines.setdefault(path + (key,), line)
                walk(value_node, path + (key,))
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                lines.setdefault(path + (i,), item.start_mark.line + 1)
                walk(item, path + (i,))

    if root is not None:
        walk(root, ())
    return lines, duplicates


def parse_yaml(text: str, source: str, what: str = "a mapping") -> tuple[_Doc, Any]:
    """safe_load `text`; syntax errors name file and line; duplicate keys and empty files are errors."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = " ".join(p for p in (getattr(exc, "context", None), getattr(exc, "problem", None)) if p)
        context = getattr(exc, "context_mark", None)
        if context is not None and mark is not None and context.line != mark.line:
            problem += f" (the construct opened on line {context.line + 1})"
        raise SpecError(f"{source}{where}: YAML syntax error: {problem or exc}",
                        source=source, line=mark.line + 1 if mark is not None else None) from None
    doc = _Doc(source, text)
    doc._lines, duplicates = _line_map(text)
    if duplicates:
        path, key, first, second = duplicates[0]
        raise doc.error(path + (key,), f"key {key!r} is written twice (lines {first} and {second}); "
                                       "YAML would keep only the last: remove one", line=second)
    if data is None:
        raise SpecError(f"{source}: the file is empty: expected {what}", source=source)
    return doc, data


def read_yaml(path: Path | str, what: str = "a mapping") -> tuple[_Doc, Any]:
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError(f"{source}: no such file", source=source) from None
    except IsADirectoryError:
        raise SpecError(f"{source}: is a directory, not a YAML file", source=source) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(f"{source}: cannot read the file: {exc}", source=source) from None
    return parse_yaml(text, source, what)


# --------------------------------------------------------------------------- small typed readers

def _type_name(value: Any) -> str:
    return {dict: "a mapping", list: "a list", str: "a string", bool: "a boolean", type(None): "null",
            int: "an integer", float: "a number"}.get(type(value), type(value).__name__)


def check_keys(doc: _Doc, path: tuple, mapping: Mapping, valid: Sequence[str]) -> None:
    for key in mapping:
        if not isinstance(key, str):
            raise doc.error(path, f"key {key!r} is {_type_name(key)}: keys are strings. Valid keys: "
                                  f"{', '.join(valid)}")
        if key not in valid:
            raise doc.error(path + (key,), unknown_key_message(key, valid))


def expect_mapping(doc: _Doc, path: tuple, value: Any, example: str) -> Mapping:
    if not isinstance(value, Mapping):
        raise doc.error(path, f"{value!r} is {_type_name(value)}: expected a mapping, e.g. {example}")
    return value


def expect_str(doc: _Doc, path: tuple, value: Any, one_line: bool = False) -> str:
    if not isinstance(value, str):
        raise doc.error(path, f"{value!r} is {_type_name(value)}: expected a string (quote it in YAML)")
    value = value.strip()
    if one_line and "\n" in value:
        raise doc.error(path, f"{value[:40]!r}... has several lines: expected one line")
    return value


def expect_choice(doc: _Doc, path: tuple, value: Any, choices: Sequence[str]) -> str:
    if value not in choices or not isinstance(value, str):
        close = difflib.get_close_matches(str(value), choices, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise doc.error(path, f"{value!r} is invalid.{hint} Expected one of: {', '.join(choices)}")
    return value


def expect_int(doc: _Doc, path: tuple, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise doc.error(path, f"{value!r} is invalid: expected an integer >= {minimum}")
    return value


def expect_number(doc: _Doc, path: tuple, value: Any) -> float:
    if isinstance(value, str) and _SCI_FLOAT_RE.match(value.strip()):
        return float(value)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise doc.error(path, f"{value!r} is {_type_name(value)}: expected a number")
    return value


def expect_name(doc: _Doc, path: tuple, value: Any) -> str:
    value = expect_str(doc, path, value)
    if not _NAME_RE.match(value):
        raise doc.error(path, f"{value!r} is invalid: expected letters, digits, '_', '-' or '.', "
                              "starting with a letter or digit")
    return value


def parse_seeds(doc: _Doc, path: tuple, value: Any) -> tuple[int, ...]:
    """A non-empty list of distinct integers >= 0."""
    if isinstance(value, int) and not isinstance(value, bool):
        raise doc.error(path, f"{value!r} is a single integer: expected a list, e.g. "
                              f"{list(range(max(value, 1)))} for {max(value, 1)} seeds or [{value}] for seed {value}")
    if not isinstance(value, (list, tuple)) or not value:
        raise doc.error(path, f"{value!r} is invalid: expected a non-empty list of integers >= 0, e.g. [0, 1, 2]")
    for i, seed in enumerate(value):
        expect_int(doc, path + (i,), seed, 0)
    if len(set(value)) != len(value):
        raise doc.error(path, f"{list(value)} repeats a seed: expected distinct seeds")
    return tuple(value)


# --------------------------------------------------------------------------- config layers

def _annotations() -> dict[str, Any]:
    hints: dict[str, Any] = {}
    for prefix, cls in (("", TrialConfig), ("model.", ModelConfig), ("data.", DataConfig),
                        ("optim.", OptimConfig)):
        for name, hint in typing.get_type_hints(cls).items():
            hints[prefix + name] = hint
    return {key: hints[key] for key in config_keys()}


ANNOTATIONS = _annotations()
VALID_KEYS = tuple(ANNOTATIONS)


def field_type(key: str) -> Any:
    """The Python type a key's value must have: float | None -> float; tuple[int, ...] -> tuple."""
    annotation = ANNOTATIONS[key]
    if typing.get_origin(annotation) is tuple:
        return tuple
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    return args[0] if args else annotation


def check_config_key(doc: _Doc, path: tuple, key: Any) -> str:
    if not isinstance(key, str):
        raise doc.error(path, f"key {key!r} is {_type_name(key)}: expected a dotted config key such as "
                              "model.num_lanets")
    if key not in ANNOTATIONS:
        raise doc.error(path, unknown_key_message(key, [k for k in VALID_KEYS if k not in RESERVED_KEYS]))
    if key in RESERVED_KEYS:
        raise doc.error(path, f"{key} cannot be set here: {RESERVED_KEYS[key]}")
    return key


def normalise_value(doc: _Doc, path: tuple, key: str, value: Any) -> Any:
    """Numbers to the field's type (2 -> 2.0 for floats, 2.0 -> 2 for ints), '1e-4' to a float,
    lists to tuples; YAML's off/on/yes/no booleans given to a string field are an error with a hint."""
    kind = field_type(key)
    if kind is str and isinstance(value, bool):
        raise doc.error(path, f"{key}={value!r} is a boolean: YAML reads off/on/yes/no/true/false as "
                              f"booleans; quote the word (e.g. \"off\") to give a string")
    if kind is float:
        if isinstance(value, str) and _SCI_FLOAT_RE.match(value.strip()):
            return float(value)
        if isinstance(value, int) and not isinstance(value, bool):
            return float(value)
    if kind is int and isinstance(value, float) and value.is_integer():
        return int(value)
    return _freeze(value)


@dataclass(frozen=True)
class Layer:
    """One set of dotted overrides and where each key was written (for error messages)."""

    values: Mapping[str, Any]
    doc: _Doc = field(compare=False, repr=False)
    path: tuple = field(default=(), compare=False, repr=False)       # the layer's own path
    paths: Mapping[str, tuple] = field(default_factory=dict, compare=False, repr=False)  # key -> path

    def key_path(self, key: str | None) -> tuple:
        return self.paths.get(key, self.path + (key,)) if key in self.values else self.path

    def error(self, key: str | None, message: str) -> SpecError:
        return self.doc.error(self.key_path(key), message)


def config_layer(doc: _Doc, path: tuple, value: Any) -> Layer:
    """A mapping of dotted config keys (nested `model: {depth: 2}` is accepted too), checked key by key."""
    if value is None:
        return Layer(FrozenMap(), doc, path)
    expect_mapping(doc, path, value, "{model.num_lanets: 2}")
    values: dict[str, Any] = {}
    paths: dict[str, tuple] = {}

    def add(key: str, item: Any, key_path: tuple) -> None:
        check_config_key(doc, key_path, key)
        if key in values:
            raise doc.error(key_path, f"{key} is given twice (also at {format_path(paths[key])})")
        values[key] = normalise_value(doc, key_path, key, item)
        paths[key] = key_path

    for key, item in value.items():
        if key in SECTIONS and isinstance(item, Mapping):
            for sub, sub_item in item.items():
                add(f"{key}.{sub}", sub_item, path + (key, sub))
        else:
            add(key, item, path + (key,))
    return Layer(FrozenMap(values), doc, path, FrozenMap(paths))


def apply(config: TrialConfig, layer: Layer) -> TrialConfig:
    """`layer` over `config`; a ConfigError becomes a SpecError at the key it names."""
    if not layer.values:
        return config
    try:
        return from_flat(layer.values, base=config)
    except ConfigError as exc:
        match = _ERROR_KEY_RE.match(str(exc))
        raise layer.error(match.group(1) if match else None, str(exc)) from None


# --------------------------------------------------------------------------- the spec

@dataclass(frozen=True)
class Arm:
    """One table row: a label and the dotted overrides that make it."""

    label: str
    overrides: Mapping[str, Any] = field(default_factory=FrozenMap)


@dataclass(frozen=True)
class TableLayout:
    """How the sweep's paper table is laid out."""

    rows: str = "arm"
    columns: str = "data"
    baseline: str | None = None                 # an arm label: deltas are taken against it
    metrics: tuple[str, ...] = ("sel_test_acc",)
    paper: Mapping[str, Mapping[str, float]] | None = None   # arm label -> column -> percent


@dataclass(frozen=True)
class SearchParam:
    """One dimension of a search space (Optuna's suggest_float / suggest_int / suggest_categorical)."""

    type: str                                   # float | int | categorical
    low: float | int | None = None
    high: float | int | None = None
    log: bool = False
    step: float | int | None = None
    choices: tuple = ()


@dataclass(frozen=True)
class SearchConfig:
    space: Mapping[str, SearchParam]
    num_samples: int = 16
    sampler: str = "tpe"
    n_startup_trials: int = 10
    pruner: Mapping[str, Any] = field(default_factory=lambda: FrozenMap({"type": "median"}))


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


def _unknown(kind: str, name: str, valid: Sequence[str]) -> str:
    close = difflib.get_close_matches(str(name), list(valid), n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    return f"unknown {kind} {name!r}.{hint} Valid: {', '.join(valid) or '(none)'}"


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


def _render(doc: _Doc, template: str, fields: list, values: Mapping[str, Any]) -> str:
    parts = []
    for literal, key, spec, conversion in fields:
        parts.append(literal)
        if key is None:
            continue
        value = values[key]
        value = repr(value) if conversion == "r" else str(value) if conversion == "s" else value
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
        arms.append(Arm(label, FrozenMap(values)))
        layers.append(Layer(FrozenMap(values), doc, path, FrozenMap({k: path + (k,) for k in keys})))
    return arms, layers, FrozenMap(grid)


# --------------------------------------------------------------------------- table and search

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


def _parse_table(doc: _Doc, value: Any, labels: Sequence[str], metric: str, kind: str) -> TableLayout:
    path = ("table",)
    value = {} if value is None else expect_mapping(doc, path, value, "{baseline: MAD}")
    check_keys(doc, path, value, TABLE_KEYS)
    rows = expect_choice(doc, path + ("rows",), value.get("rows", "arm"), TABLE_ROWS)
    columns = expect_choice(doc, path + ("columns",), value.get("columns", "data"), TABLE_COLUMNS)
    baseline = value.get("baseline")
    if baseline is not None:
        if kind == "search":
            raise doc.error(path + ("baseline",), "a search sweep has no arms, so no baseline row")
        baseline = expect_str(doc, path + ("baseline",), baseline)
        if baseline not in labels:
            raise doc.error(path + ("baseline",), _unknown("arm label", baseline, labels))
    default = (metric,) if metric in SUMMARY_METRICS else ("best_val_acc", "sel_test_acc")
    metrics = (_parse_metric_list(doc, path + ("metrics",), value["metrics"], SUMMARY_METRICS)
               if "metrics" in value else default)
    paper = value.get("paper")
    if paper is not None:
        expect_mapping(doc, path + ("paper",), paper, "{MAD: {rafdb: 90.91}}")
        rows_out = {}
        for label, row in paper.items():
            p = path + ("paper", label)
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
    return TableLayout(rows, columns, baseline, metrics, paper)


def _parse_param(doc: _Doc, path: tuple, key: str, value: Any) -> SearchParam:
    if isinstance(value, list):  # shorthand: a list is a categorical
        value = {"type": "categorical", "choices": value}
    expect_mapping(doc, path, value, "{type: float, low: 0.0, high: 1.0}")
    check_keys(doc, path, value, PARAM_KEYS)
    if "type" not in value:
        raise doc.error(path, f"missing key 'type': expected one of {', '.join(PARAM_TYPES)}")
    kind = expect_choice(doc, path + ("type",), value["type"], PARAM_TYPES)
    target = field_type(key)
    allowed = {float: ("float", "categorical"), int: ("int", "categorical")}.get(target, ("categorical",))
    if kind not in allowed:
        raise doc.error(path + ("type",), f"{kind!r} does not fit {key}, which is "
                                          f"{_type_name(target())}: use type {' or '.join(allowed)}")
    if kind == "categorical":
        for extra in ("low", "high", "log", "step"):
            if extra in value:
                raise doc.error(path + (extra,), f"{extra} is only for types float and int; a categorical "
                                                 "takes choices")
        choices = value.get("choices")
        if not isinstance(choices, list) or not choices:
            raise doc.error(path + ("choices",), f"{choices!r} is invalid: expected a non-empty list of "
                                                 "choices, e.g. [1, 2, 4]")
        typed = tuple(normalise_value(doc, path + ("choices", i), key, c) for i, c in enumerate(choices))
        for i, c in enumerate(typed):
            if c is not None and not isinstance(c, (bool, int, float, str)):
                raise doc.error(path + ("choices", i), f"{c!r} is invalid: a choice must be a number, "
                                                       "string, boolean or null")
        if len(set(map(repr, typed))) != len(typed):
            raise doc.error(path + ("choices",), f"{choices} repeats a choice")
        return SearchParam("categorical", choices=typed)
    if "choices" in value:
        raise doc.error(path + ("choices",), "choices is only for type categorical")
    bounds = {}
    for bound in ("low", "high"):
        if bound not in value:
            raise doc.error(path, f"missing key {bound!r}: type {kind} needs low and high")
        number = expect_number(doc, path + (bound,), value[bound])
        if kind == "int" and not (isinstance(number, int) or float(number).is_integer()):
            raise doc.error(path + (bound,), f"{number!r} is invalid: type int needs integer bounds")
        bounds[bound] = int(number) if kind == "int" else float(number)
    low, high = bounds["low"], bounds["high"]
    if not low < high:
        raise doc.error(path + ("high",), f"low={low!r}, high={high!r} is invalid: expected low < high")
    log = value.get("log", False)
    if not isinstance(log, bool):
        raise doc.error(path + ("log",), f"{log!r} is invalid: expected true or false")
    if log and not low > 0:
        raise doc.error(path + ("low",), f"low={low!r} is invalid with log: true: expected low > 0")
    step = value.get("step")
    if step is not None:
        step = expect_number(doc, path + ("step",), step)
        if kind == "int" and not float(step).is_integer():
            raise doc.error(path + ("step",), f"{step!r} is invalid: type int needs an integer step")
        step = int(step) if kind == "int" else float(step)
        if not step > 0:
            raise doc.error(path + ("step",), f"{step!r} is invalid: expected a number > 0")
        if log and (kind == "float" or step != 1):
            raise doc.error(path + ("step",), f"step {step!r} and log: true cannot be combined (Optuna "
                                              "forbids it)")
    return SearchParam(kind, low, high, log, step)


def check_space(space: Mapping[str, SearchParam], config: TrialConfig, doc: _Doc) -> None:
    """Build a TrialConfig at every bound and choice over `config`, so config validation speaks."""
    for key, param in space.items():
        path = ("search", "space", key)
        points = (("choices", i, c) for i, c in enumerate(param.choices)) if param.type == "categorical" \
            else (("low", None, param.low), ("high", None, param.high))
        for name, index, point in points:
            p = path + ((name, index) if index is not None else (name,))
            apply(config, Layer(FrozenMap({key: point}), doc, p, FrozenMap({key: p})))


def _parse_search(doc: _Doc, value: Any, base: Mapping[str, Any]) -> SearchConfig:
    path = ("search",)
    expect_mapping(doc, path, value, "{space: {...}, num_samples: 16}")
    check_keys(doc, path, value, SEARCH_KEYS)
    space_in = value.get("space")
    expect_mapping(doc, path + ("space",), space_in, "{optim.lr: {type: float, low: 1.0e-5, high: 1.0e-2, log: true}}")
    if not space_in:
        raise doc.error(path + ("space",), "is empty: expected at least one parameter")
    space = {}
    for key, param in space_in.items():
        check_config_key(doc, path + ("space", key), key)
        if key in base:
            raise doc.error(path + ("space", key), f"{key} is both searched and fixed in base: remove one")
        space[key] = _parse_param(doc, path + ("space", key), key, param)
    num_samples = expect_int(doc, path + ("num_samples",), value.get("num_samples", 16), 1)
    sampler = expect_choice(doc, path + ("sampler",), value.get("sampler", "tpe"), SAMPLERS)
    startup = expect_int(doc, path + ("n_startup_trials",), value.get("n_startup_trials", 10), 0)
    pruner = value.get("pruner", {"type": "median"})
    expect_mapping(doc, path + ("pruner",), pruner, "{type: median, n_startup_trials: 3, n_warmup_steps: 2}")
    if not isinstance(pruner.get("type"), str):
        raise doc.error(path + ("pruner",), f"{pruner!r} has no string 'type': expected e.g. "
                                            "{type: median, n_startup_trials: 3, n_warmup_steps: 2}")
    for k in pruner:
        if not isinstance(k, str):
            raise doc.error(path + ("pruner",), f"key {k!r} is {_type_name(k)}: keys are strings")
    return SearchConfig(FrozenMap(space), num_samples, sampler, startup, FrozenMap(pruner))


# --------------------------------------------------------------------------- load

def _parse_spec(doc: _Doc, data: Any, expected_name: str | None) -> SweepSpec:
    from search_spaces.profiles import list_profiles, load_profile

    expect_mapping(doc, (), data, "name: my_sweep")
    check_keys(doc, (), data, TOP_KEYS)
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
    valid_metrics = SUMMARY_METRICS if kind == "table" else EPOCH_METRICS + SUMMARY_METRICS
    metric = data.get("metric", DEFAULT_METRIC[kind])
    if metric not in valid_metrics:
        raise doc.error(("metric",), _unknown(f"{kind} metric", metric, valid_metrics))
    mode = expect_choice(doc, ("mode",), data.get("mode", "max"), MODES)

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
        for i, label in enumerate(labels):
            if label in labels[:i]:
                where = ("arms", i, "label") if "arms" in data else ("label",)
                raise doc.error(where, f"label {label!r} is used by two arms: labels must be unique")
    else:
        for key in ("arms", "grid", "label"):
            if key in data:
                raise doc.error((key,), f"{key} is only for kind: table; a search varies search.space")
        if "search" not in data:
            raise doc.error((), "missing key 'search': kind: search needs search.space and num_samples")
        search = _parse_search(doc, data["search"], base.values)
        if len(seeds) != 1:
            raise doc.error(("seeds",), f"{list(seeds)} is invalid: a search trains each sample once: "
                                        "give one seed")
    table = _parse_table(doc, data.get("table"), [a.label for a in arms], metric, kind)

    # every config value, checked by building the configs of the default profile
    profile = load_profile(profile_name)
    config = apply(apply(TrialConfig(), profile.layer()), base)
    if search is not None:
        check_space(search.space, config, doc)
    seen: dict[str, str] = {}
    for arm, layer in zip(arms, layers):
        cell_id = config_hash(apply(config, layer))
        if cell_id in seen:
            raise doc.error(layer.path, f"arms {seen[cell_id]!r} and {arm.label!r} give the same "
                                        f"configuration on profile {profile_name!r}: make them differ")
        seen[cell_id] = arm.label

    text = doc.text or ""
    return SweepSpec(name=name, title=title, description=description, caption=caption, kind=kind,
                     profile=profile_name, base=base.values, arms=tuple(arms), seeds=seeds, metric=metric,
                     mode=mode, table=table, search=search, source=doc.source,
                     spec_hash=hashlib.sha256(text.encode()).hexdigest()[:12], text=text, grid=grid)


def _package_files() -> dict[str, Any]:
    root = resources.files("search_spaces")
    return {entry.name[:-5]: entry for entry in root.iterdir()
            if entry.name.endswith(".yaml") and entry.name != "profiles.yaml"}


def shipped_names() -> list[str]:
    return sorted(_package_files())


def load_text(text: str, source: str = "<string>", expected_name: str | None = None) -> SweepSpec:
    """Parse and validate a spec given as text (`source` names it in errors)."""
    doc, data = parse_yaml(text, source, "a sweep spec: a mapping with at least name and arms or grid")
    return _parse_spec(doc, data, expected_name)


def load(name_or_path: str | os.PathLike) -> SweepSpec:
    """A shipped sweep by name, or a spec file by path (anything ending .yaml/.yml or holding a '/')."""
    text = os.fspath(name_or_path)
    files = _package_files()
    if isinstance(name_or_path, os.PathLike) or text.endswith((".yaml", ".yml")) or "/" in text \
            or os.sep in text:
        path = Path(text).expanduser()
        doc, data = read_yaml(path, "a sweep spec: a mapping with at least name and arms or grid")
        return _parse_spec(doc, data, None)
    if text not in files:
        raise SpecError(_unknown("sweep", text, sorted(files)) + " (or give the path to a .yaml spec file)")
    entry = files[text]
    return load_text(entry.read_text(encoding="utf-8"), str(entry), expected_name=text)


def list_sweeps() -> list[tuple[str, str]]:
    """(name, one-line description) of every shipped sweep, sorted by name."""
    return [(name, load(name).description) for name in shipped_names()]
