"""The `search:` section of a spec: a search space for Optuna, read, typed and checked.

    search: {space: {optim.lr: {type: float, low: 1.0e-5, high: 1.0e-2, log: true}}, num_samples: 16}

Each parameter is one of Optuna's suggest_float / suggest_int / suggest_categorical, and must fit the
type of the config key it varies; `check_space` builds a TrialConfig at every bound and choice so
that the config's own range checks speak at load time. Kept apart from spec.py, which reads the rest
of a spec, so that each module holds one concept; spec.py re-exports SearchParam and SearchConfig.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from transfer_core.config import (DECODE_KEYS, DROP_COUNT_KEYS, ConfigError, TrialConfig, check_drop_counts,
                                  check_stem_stride, from_flat)

from search_spaces.layers import Layer, apply, check_config_key, field_type, normalise_value
from search_spaces.yaml_doc import (FrozenMap, _Doc, _type_name, check_keys, expect_choice, expect_int, expect_mapping,
                                    expect_number, sci_float)

__all__ = ["SearchParam", "SearchConfig", "check_space", "check_space_shapes", "drawn_configs", "keyed_fields",
           "SEARCH_KEYS", "SAMPLERS", "PARAM_TYPES", "PARAM_KEYS"]

SEARCH_KEYS = ("space", "num_samples", "sampler", "n_startup_trials", "pruner")
# Optuna's TPESampler, RandomSampler, GPSampler and QMCSampler (sweeps.pruning.SAMPLERS builds them, and says why
# grid and cmaes are not among them). A sampler's name is keyed (KEYED_SEARCH_FIELDS): names added here leave the key
# of every search recorded with another unchanged.
SAMPLERS = ("tpe", "random", "gp", "qmc")
PARAM_TYPES = ("float", "int", "categorical")
PARAM_KEYS = ("type", "low", "high", "log", "step", "choices")


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


# The fields of the search records that an invocation's key (spec.trained_hash) has read since it first read
# them, each whatever its value. A field added since is read only where it is not at its default, as a config key
# in transfer_core.config.ADDED_KEYS: at its default a search trains what one recorded before the field existed
# trained, and keeps its key (else every recorded search was trained again after an upgrade). num_samples is
# never read: more samples extend a search, as more seeds a table.
KEYED_PARAM_FIELDS = ("type", "low", "high", "log", "step", "choices")
KEYED_SEARCH_FIELDS = ("space", "sampler", "n_startup_trials", "pruner")
UNKEYED_SEARCH_FIELDS = ("num_samples",)


def keyed_fields(record: Any, keyed: Sequence[str], unkeyed: Sequence[str] = ()) -> dict[str, Any]:
    """The fields of a search record (SearchParam, SearchConfig) that an invocation's key reads: those in `keyed`
    always, any other (one added since) where it differs from its default, none in `unkeyed`."""
    out = {}
    for f in dataclasses.fields(record):
        value = getattr(record, f.name)
        default = (f.default if f.default is not dataclasses.MISSING
                   else f.default_factory() if f.default_factory is not dataclasses.MISSING else dataclasses.MISSING)
        if f.name not in unkeyed and (f.name in keyed or default is dataclasses.MISSING or value != default):
            out[f.name] = value
    return out


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
        if not math.isfinite(number):   # tune.loguniform raises at run time; a uniform one would draw inf
            raise doc.error(path + (bound,), f"{number!r} is invalid: expected a finite number")
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
        steps = (high - low) / step
        if abs(steps - round(steps)) > 1e-9 * max(1.0, steps):   # Optuna would lower high without a word
            raise doc.error(path + ("step",), f"{step!r} is invalid: high - low = {high - low!r} is not a "
                                              f"multiple of it, so high={high!r} could never be drawn")
        if kind == "float":   # tune.quniform raises for bounds off its grid (ray/tune/search/sample.py, quantized)
            for bound, value, nearest in (("low", low, math.floor), ("high", high, math.ceil)):
                if not math.isclose(value / step, round(value / step)):
                    raise doc.error(path + (bound,), f"{bound}={value!r} is invalid with step {step!r}: Ray Tune's "
                                                     "quantized float (tune.quniform) needs low and high to be "
                                                     f"multiples of the step, e.g. {bound}: "
                                                     f"{round(nearest(value / step) * step, 12)!r}")
    return SearchParam(kind, low, high, log, step)


# the most configs check_space builds for one parameter's values, for the value pairs of two parameters,
# and in all (~0.3 ms each): beyond, an int's run (RUN_OF_VALUES) stands for its range, and pairs of more
# values still go unchecked
MAX_CHECKED_VALUES = 512
MAX_CHECKED_PAIRS = 1024
MAX_CHECKED_CONFIGS = 2000
# an int's run: its first RUN_OF_VALUES values and its high bound. A config's rules on an int are bounds (a value
# >= 1, fewer drop counts than heads), which fail at a bound if anywhere, or remainders (model.embed_dim a multiple
# of model.num_heads, model.dropblock_size odd), which fail at the first value or the next if anywhere (nowhere
# where the step is a multiple of the divisor), and any of a divisor up to RUN_OF_VALUES within the run.
# model.embed_dim from 64 to 1024 had its bounds alone checked, and a sample drew 65 with 8 heads
RUN_OF_VALUES = 8


def check_space(space: Mapping[str, SearchParam], config: TrialConfig, doc: _Doc, every_value: bool = True) -> None:
    """Build a TrialConfig from the values a sample can draw over `config`, so config validation speaks
    before any trial runs: each categorical's choices, each int's values (its run where there are more than
    MAX_CHECKED_VALUES), each float's bounds, and the pairs of values of two categoricals or ints (an int's run
    where one of the two is run so, or their pairs are more than MAX_CHECKED_PAIRS), within MAX_CHECKED_CONFIGS
    in all (model.embed_dim from 32 to 64 with 4 heads: 50 is no multiple of 4, and
    every trial drawing it failed, each retried). every_value=False: the bounds and choices alone, as specs
    recorded before this check ran were checked (their tables stay readable)."""
    def check(values: Mapping[str, tuple[tuple, Any]]) -> None:
        (key, (path, _)), *_ = values.items()
        if len(values) == 1 and path != ("search", "space", key):   # a bound or a choice: the key's own message
            apply(config, Layer(FrozenMap({key: values[key][1]}), doc, path, FrozenMap({key: path})))
            return
        try:
            from_flat({k: v for k, (_, v) in values.items()}, base=config)
        except ConfigError as exc:
            drawn_text = " with ".join(f"{k}={v!r}" for k, (_, v) in values.items())
            raise doc.error(path, f"a sample can draw {drawn_text}, and then {exc}: every value a space can "
                                  "draw must make a valid config (narrow the range, or list the values that "
                                  "do as a categorical)") from None

    budget, drawn = MAX_CHECKED_CONFIGS if every_value else 0, {}
    for key, param in space.items():
        drawn[key] = _drawn(("search", "space", key), param, budget)
        budget -= len(drawn[key])
        for point in drawn[key]:
            check({key: point})
    few = [key for key, param in space.items() if param.type in ("categorical", "int")]
    long = {key for key in few if space[key].type == "int" and len(drawn[key]) < _int_count(space[key])}
    pairs = []
    for i, a in enumerate(few):
        for b in few[i + 1:]:
            values = (drawn[a], drawn[b])
            if {a, b} & long or len(values[0]) * len(values[1]) > MAX_CHECKED_PAIRS:   # an int's run stands for it
                values = tuple(_drawn(("search", "space", k), space[k], RUN_OF_VALUES + 1)
                               if space[k].type == "int" else drawn[k] for k in (a, b))
            if len(values[0]) * len(values[1]) <= MAX_CHECKED_PAIRS:
                pairs.append(((a, b), values))
    for (a, b), (xs, ys) in sorted(pairs, key=lambda pair: len(pair[1][0]) * len(pair[1][1])):   # the most checked
        budget -= len(xs) * len(ys)
        if budget < 0:
            return
        for x in xs:
            for y in ys:
                check({a: x, b: y})


def check_space_shapes(space: Mapping[str, SearchParam], config: TrialConfig, doc: _Doc) -> None:
    """Each stem a space can draw must fit the image size of the config it is drawn over (`config`: the
    search's base on the profile, with its --set and data), and each B, head count, variant or MSAD mode it can
    draw must take the drop counts (check_drop_counts), as a table's cells are checked (plan._check_shapes):
    `check_space` builds configs, which check neither, so a stem whose stride does not divide model.image_size
    failed building the model in every trial drawing it."""
    param = space.get("model.stem")
    for path, stem in _drawn(("search", "space", "model.stem"), param, 0) if param is not None else ():
        try:
            check_stem_stride(dataclasses.replace(config.model, stem=stem))
        except ConfigError as exc:
            raise doc.error(path, f"a sample can draw model.stem={stem!r}, and then {exc} (model.image_size="
                                  f"{config.model.image_size} comes from the profile, the spec's base or --set): "
                                  "remove that choice, or set model.image_size to a multiple of every "
                                  "searched stem's stride") from None
    for drawn, drawn_config in drawn_configs(space, config, DROP_COUNT_KEYS):
        if not drawn:   # the base alone: plan._check_shapes checked it
            continue
        try:
            check_drop_counts(drawn_config.model)
        except ConfigError as exc:
            (path, _), *_ = drawn.values()
            drawn_text = " with ".join(f"{k}={v!r}" for k, (_, v) in drawn.items())
            raise doc.error(path, f"a sample can draw {drawn_text}, and then {exc}: remove that choice, or narrow "
                                  "the range to the values that take the drop counts") from None


def drawn_configs(space: Mapping[str, SearchParam], config: TrialConfig,
                  keys: Sequence[str]) -> list[tuple[dict[str, tuple[tuple, Any]], TrialConfig]]:
    """The configs a search's samples stand for in a check of what depends on `keys`: over `config`, each
    combination of the bounds and choices the space draws for those of `keys` it searches (`config` alone where it
    searches none), with {key: (where it is written, value)}. A combination that makes no valid config is left out
    (check_space's to refuse)."""
    combos: list[dict[str, tuple[tuple, Any]]] = [{}]
    for key in (k for k in keys if k in space):
        combos = [{**c, key: point} for c in combos for point in _drawn(("search", "space", key), space[key], 0)]
    drawn = []
    for combo in combos:
        try:
            drawn.append((combo, from_flat({k: v for k, (_, v) in combo.items()}, base=config)))
        except ConfigError:
            continue
    return drawn


def space_size(space: Mapping[str, SearchParam]) -> int | None:
    """How many configurations a space holds: the product of its parameters' counts (a choice list's length, an
    int range's values, a stepped float's steps); None where a float without a step makes it unbounded."""
    size = 1
    for param in space.values():
        if param.type == "categorical":
            size *= len(param.choices)
        elif param.type == "int":
            size *= _int_count(param)
        elif param.step is not None:   # Optuna's grid: low, low + step, ... up to high
            size *= math.floor((float(param.high) - float(param.low)) / float(param.step) + 1e-9) + 1
        else:
            return None
    return size


def _int_count(param: SearchParam) -> int:
    return (int(param.high) - int(param.low)) // int(param.step or 1) + 1


def _drawn(path: tuple, param: SearchParam, budget: int) -> list[tuple[tuple, Any]]:
    """(where it is written, value) of the values a parameter draws that check_space builds a config from:
    an int's every value where they are few enough (and the budget allows), else its first RUN_OF_VALUES values
    and its high bound (where the budget allows), else its bounds."""
    if param.type == "categorical":
        return [(path + ("choices", i), c) for i, c in enumerate(param.choices)]
    if param.type == "int" and min(_int_count(param), RUN_OF_VALUES + 1) <= budget:
        step = int(param.step or 1)
        values = (list(range(int(param.low), int(param.high) + 1, step))
                  if _int_count(param) <= min(MAX_CHECKED_VALUES, budget) else   # else a run
                  list(range(int(param.low), int(param.low) + RUN_OF_VALUES * step, step)) + [int(param.high)])
        return [(path + ("low",) if v == param.low else path + ("high",) if v == param.high else path, v)
                for v in values]
    return [(path + ("low",), param.low), (path + ("high",), param.high)]


def _parse_search(doc: _Doc, value: Any, base: Mapping[str, Any], recorded: bool = False) -> SearchConfig:
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
        if key in DECODE_KEYS and not recorded:   # every sample would train on the base's data
            raise doc.error(path + ("space", key), f"{key} decides the decoded data, which a sweep decodes once "
                                                  "before its trials start: a search cannot vary it. Compare its "
                                                  "values as a table's arms, or fix it with base or --set")
        if key == "model.num_classes" and not recorded:   # every sample but the data set's own count failed
            raise doc.error(path + ("space", key), "model.num_classes is the number of classes of the data set "
                                                  "(--data sets it; the synthetic faces have 7): a search cannot "
                                                  "vary it. Remove it from search.space")
        if key in base:
            raise doc.error(path + ("space", key), f"{key} is both searched and fixed in base: remove one")
        space[key] = _parse_param(doc, path + ("space", key), key, param)
    num_samples = expect_int(doc, path + ("num_samples",), value.get("num_samples", 16), 1)
    sampler = expect_choice(doc, path + ("sampler",), value.get("sampler", "tpe"), SAMPLERS)
    startup = expect_int(doc, path + ("n_startup_trials",), value.get("n_startup_trials", 10), 0)
    if sampler == "random" and "n_startup_trials" in value:   # it would be ignored without a word
        raise doc.error(path + ("n_startup_trials",), "is for sampler tpe or gp (the random trials before TPE "
                                                      "or the Gaussian process starts); sampler random draws every "
                                                      "trial at random: remove it, or use sampler: tpe or gp")
    if sampler == "qmc" and "n_startup_trials" in value:   # QMCSampler has none: it would be ignored
        raise doc.error(path + ("n_startup_trials",), "is for sampler tpe or gp (the random trials before TPE "
                                                      "or the Gaussian process starts); sampler qmc draws every "
                                                      "trial from its quasi-random sequence but the first, which "
                                                      "it draws at random: remove it, or use sampler: tpe or gp")
    pruner = value.get("pruner", {"type": "median"})
    expect_mapping(doc, path + ("pruner",), pruner, "{type: median, n_startup_trials: 3, n_warmup_steps: 2}")
    if not isinstance(pruner.get("type"), str):
        raise doc.error(path + ("pruner",), f"{pruner!r} has no string 'type': expected e.g. "
                                            "{type: median, n_startup_trials: 3, n_warmup_steps: 2}")
    for k in pruner:
        if not isinstance(k, str):
            raise doc.error(path + ("pruner",), f"key {k!r} is {_type_name(k)}: keys are strings")
    return SearchConfig(FrozenMap(space), num_samples, sampler, startup,
                        FrozenMap({k: _number_of_text(v) for k, v in pruner.items()}))


def _number_of_text(value: Any) -> Any:
    """A pruner argument written as YAML 1.2 reads a number and PyYAML as text (`lower: 1e-3`, `percentile:
    2.5e1`) as that number, as the space's bounds are read (an integral one as an int: `min_resource: 1e0`);
    it was refused as a string, where `low: 1e-5` beside it was taken. Those of a nested pruner too (`patient`'s
    `wrapped: {type: percentile, percentile: 2.5e1}`), which were still refused."""
    if isinstance(value, Mapping):
        return {k: _number_of_text(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_number_of_text(v) for v in value]
    number = sci_float(value)
    if number is None:
        return value
    return int(number) if number.is_integer() else number
