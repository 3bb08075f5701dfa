"""YAML documents with line numbers, and the small typed readers every YAML file here is checked with.

Sweep specs (spec.py), compute profiles (profiles.py) and the command-line options (plan.py) share
these helpers, so that every error is a `SpecError` of the same shape: file, line, key path, value and
what would be right. They know nothing about what a spec means; that is why they live apart from it.

    doc, data = parse_yaml(text, "my_sweep.yaml")   # safe_load; duplicate keys and empty files are errors
    seeds = parse_seeds(doc, ("seeds",), data.get("seeds", [0]))
    raise doc.error(("arms", 2, "label"), "...")    # -> "my_sweep.yaml line 9: arms[2].label: ..."
"""

from __future__ import annotations

import difflib
import re
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping, Sequence

import yaml

from transfer_core.config import MAX_SEED, unknown_key_message

__all__ = ["SpecError", "FrozenMap", "thaw", "format_path", "parse_yaml", "read_yaml", "check_keys",
           "expect_mapping", "expect_str", "expect_choice", "expect_int", "expect_number", "expect_name",
           "parse_seeds", "MAX_SEEDS", "too_many_seeds"]

# seeds per arm, in a spec or --seeds: every arm x data set x seed is a cell that trains (the paper's tables: 3).
# `--seeds 100000000` had no bound: its plan of 500,000,000 cells was built, ~0.07 ms and ~0.5 KB each, before
# anything said a word (hours, then out of memory)
MAX_SEEDS = 1000

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_SCI_FLOAT_RE = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+$")  # YAML 1.2 floats PyYAML reads as text


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
        if mark is not None and "'\\t'" in str(getattr(exc, "problem", "")):   # PyYAML names the tab, not the rule
            problem = _tab_problem(text, mark.line, mark.column)
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


def _tab_problem(text: str, line: int, column: int) -> str:
    """What a tab at (0-based) `line`, `column` that PyYAML refuses means: YAML indents and separates with spaces.
    PyYAML says "found character '\\t' that cannot start any token", which does not say what to do."""
    before = (text.splitlines()[line:line + 1] or [""])[0][:column]
    if not before.strip():
        return ("indented with a tab: YAML indents with spaces only; indent with spaces (two per level, as the "
                "shipped specs)")
    return ("a tab where YAML expects a space (after a colon or a '-', before a comment, in an unquoted value): "
            "write spaces, or quote a value that holds a tab")


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


def check_keys(doc: _Doc, path: tuple, mapping: Mapping, valid: Sequence[str], hint: str = "") -> None:
    """Every key of `mapping` a string among `valid`; `hint` ends an unknown key's message."""
    for key in mapping:
        if not isinstance(key, str):
            raise doc.error(path, f"key {key!r} is {_type_name(key)}: keys are strings. Valid keys: "
                                  f"{', '.join(valid)}{hint}")
        if key not in valid:
            raise doc.error(path + (key,), unknown_key_message(key, valid) + hint)


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


def sci_float(value: Any) -> float | None:
    """A float YAML 1.2 reads and PyYAML reads as text (`1e-3`, `2.5e1`: no dot before the exponent) as that
    float; None for any other value."""
    return float(value) if isinstance(value, str) and _SCI_FLOAT_RE.match(value.strip()) else None


def expect_number(doc: _Doc, path: tuple, value: Any) -> float:
    if (number := sci_float(value)) is not None:
        return number
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise doc.error(path, f"{value!r} is {_type_name(value)}: expected a number")
    return value


def expect_name(doc: _Doc, path: tuple, value: Any) -> str:
    value = expect_str(doc, path, value)
    if not _NAME_RE.match(value):
        raise doc.error(path, f"{value!r} is invalid: expected letters, digits, '_', '-' or '.', "
                              "starting with a letter or digit")
    return value


def too_many_seeds(count: int) -> str:
    """The refusal of `--seeds COUNT` over MAX_SEEDS, said before its seeds are made."""
    return (f"--seeds {count} is more than a sweep takes: give 1 to {MAX_SEEDS} seeds per arm (every arm x data set "
            "x seed is a cell that trains; the shipped tables take 3)")


def parse_seeds(doc: _Doc, path: tuple, value: Any) -> tuple[int, ...]:
    """A non-empty list of distinct integers >= 0."""
    if isinstance(value, int) and not isinstance(value, bool):
        # the example list is written short: `seeds: 100000000` built and printed all of its seeds (~6 GB)
        count = min(max(value, 1), MAX_SEEDS)
        example = str(list(range(count))) if count <= 10 else f"[0, 1, ..., {count - 1}]"
        bound = f" (a sweep takes at most {MAX_SEEDS} per arm)" if value > MAX_SEEDS else ""
        raise doc.error(path, f"{value!r} is a single integer: expected a list, e.g. "
                              f"{example} for {count} seeds{bound} or [{value}] for seed {value}")
    if not isinstance(value, (list, tuple)) or not value:
        raise doc.error(path, f"{value!r} is invalid: expected a non-empty list of integers >= 0, e.g. [0, 1, 2]")
    if len(value) > MAX_SEEDS:
        raise doc.error(path, f"{len(value)} seeds is more than a sweep takes: give 1 to {MAX_SEEDS} seeds per arm")
    for i, seed in enumerate(value):
        expect_int(doc, path + (i,), seed, 0)
        if seed > MAX_SEED:   # torch.manual_seed refused it inside every trial
            raise doc.error(path + (i,), f"{seed} is invalid: expected an integer from 0 to {MAX_SEED} (2**63 - 1)")
    if len(set(value)) != len(value):
        raise doc.error(path, f"{list(value)} repeats a seed: expected distinct seeds")
    return tuple(value)


def _unknown(kind: str, name: str, valid: Sequence[str]) -> str:
    close = difflib.get_close_matches(str(name), list(valid), n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    return f"unknown {kind} {name!r}.{hint} Valid: {', '.join(valid) or '(none)'}"
