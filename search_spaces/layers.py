"""Config layers: dotted TrialConfig overrides read from YAML or an option, each key checked and typed.

A layer is one mapping of dotted keys (`model.num_lanets: 2`) with the place each key was written, so
that a `ConfigError` raised when the layer is applied over a TrialConfig becomes a `SpecError` at
that key. Specs (base, arms, grid), profiles (overrides) and `--set` all build their layers here,
which is why this is a module of its own rather than part of spec.py.

    layer = config_layer(doc, ("base",), {"model.drop_variant": "mad"})
    config = apply(TrialConfig(), layer)
"""

from __future__ import annotations

import math
import re
import typing
from dataclasses import dataclass, field
from typing import Any, Mapping

from transfer_core.config import (ConfigError, DataConfig, ModelConfig, OptimConfig, TrialConfig, config_keys,
                                  from_flat, not_a_word_text, parse_value, unknown_key_message)

from search_spaces.yaml_doc import (FrozenMap, SpecError, _Doc, _freeze, _type_name,
                                    expect_mapping, format_path)

__all__ = ["Layer", "config_layer", "apply", "check_config_key", "normalise_value", "field_type",
           "ANNOTATIONS", "VALID_KEYS", "RESERVED_KEYS", "SECTIONS"]

# Keys a spec, a profile or --set may not write: every cell sets them itself (never silently dropped).
RESERVED_KEYS = {
    "data.dataset": "the data set of a cell comes from --data NAME=PATH (one table column per data set)",
    "data.root": "the data folder of a cell comes from --data NAME=PATH",
    "seed": "the seed of a cell comes from the spec's `seeds` list (or --seeds)",
}
SECTIONS = ("model", "data", "optim")
_ERROR_KEY_RE = re.compile(r"^([A-Za-z_][\w.]*)(?:\[\d+\])?(?:=| is )")
# a number as text: what YAML 1.2 reads as a float and PyYAML as a string (1e-4), and what JSON does not read
# (.001, 5., +0.1: --set optim.lr=.001 was "'.001' is invalid: expected a number")
_NUMBER_TEXT_RE = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$")


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


def typed_value(key: str, text: str) -> Any:
    """A config key's value from its text, as typed on the command line (--set) or recorded as an MLflow
    param: JSON where it reads as JSON (`parse_value`), but a string key's value is its text, so that
    `data.cache_dir=2024` is the folder "2024" and `amp=false` stays the text its check names amp's choices
    against (read as JSON, they were a number and a boolean). `null`/`None` stay None, a JSON-quoted string
    ("off") its content; a key that is no config key (a recorded `arm`) is read as JSON."""
    value = parse_value(text)
    if key in ANNOTATIONS and field_type(key) is str and value is not None and not isinstance(value, str):
        return text.strip()
    return value


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
        raise doc.error(path, f"{key}={value!r} is a boolean: " + (
            not_a_word_text(key, value) or "YAML reads off/on/yes/no/true/false as booleans; quote the word "
                                           "(e.g. \"off\") to give a string"))
    if kind is float:
        if isinstance(value, str) and _NUMBER_TEXT_RE.match(value.strip()):
            return float(value)
        if isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, float) and math.isinf(value):   # JSON's Infinity, YAML's .inf: lr=inf passed as > 0
            raise doc.error(path, f"{key}={value!r} is invalid: expected a finite number")
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
