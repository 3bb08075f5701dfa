"""A sweep's plan: spec + profile + data (+ seeds, + --set overrides) -> the cells to run.

Each cell's TrialConfig is built in layers, lowest first:

    TrialConfig defaults < profile.overrides < spec.base < arm.overrides < --set overrides
        < the cell's data (data.dataset, data.root; model.num_classes of a real set) and seed

A table sweep's cells are arms x data x seeds, in that order; a cell's identity (`cell_id`) is the hash
of its config, never a Tune trial id, so a resumed sweep recognises its finished cells. A search sweep
has no cells: `base_configs` holds, per data choice, the config its samples start from. Every error
is a SpecError that names where the offending value was written (file and key, or --set / --data).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

from transfer_core.config import (DATASET_KEYS, DROP_COUNT_KEYS, ConfigError, TrialConfig, check_drop_counts,
                                  check_stem_stride, config_hash, sampler_kind, to_flat)

from search_spaces.data_option import SYNTHETIC, DataChoice
from search_spaces.layers import Layer, apply, config_layer
from search_spaces.profiles import Profile, load_profile
from search_spaces.search import check_space, check_space_shapes, drawn_configs
from search_spaces.spec import SweepSpec
from search_spaces.yaml_doc import FrozenMap, SpecError, _Doc, parse_seeds, thaw

__all__ = ["Cell", "Plan", "expand"]


@dataclass(frozen=True)
class Cell:
    """One table cell's run: an arm on one data set with one seed."""

    sweep: str
    arm: str
    data: str
    seed: int
    config: TrialConfig
    cell_id: str
    run_name: str

    @property
    def epochs(self) -> int:
        return self.config.optim.epochs


@dataclass(frozen=True)
class Plan:
    spec: SweepSpec
    profile: Profile
    data: tuple[DataChoice, ...]
    seeds: tuple[int, ...]
    cells: tuple[Cell, ...]
    base_configs: Mapping[str, TrialConfig]          # data name -> profile < base < --set < data
    overrides: Mapping[str, Any] = field(default_factory=FrozenMap)   # the --set overrides

    @property
    def configs(self) -> tuple[TrialConfig, ...]:
        """Every config a trial starts from: each table cell's, each search's base (per data set)."""
        return (*(cell.config for cell in self.cells), *self.base_configs.values())

    def arms_overridden(self) -> dict[str, tuple[str, ...]]:
        """--set key -> the labels of the arms whose own `set:` it replaces (--set is the top layer): the
        rows then no longer differ as the spec's labels and caption say, which the CLI warns of."""
        return {key: labels for key in self.overrides
                if (labels := tuple(a.label for a in self.spec.arms if key in a.overrides))}

    @property
    def epochs_per_cell(self) -> int:
        """Epochs of one cell (of one search sample); the largest if arms differ."""
        configs = [c.config for c in self.cells] or list(self.base_configs.values())
        return max(c.optim.epochs for c in configs)

    @property
    def total_epochs(self) -> int:
        """The budget in epochs: every table cell, or num_samples per data choice for a search (an upper
        bound: pruned samples stop early)."""
        if self.spec.search is not None:
            searched = self.spec.search.space.get("optim.epochs")   # a sample trains at most the largest
            most = (None if searched is None else
                    int(max(searched.choices)) if searched.type == "categorical" else int(searched.high))
            return self.spec.search.num_samples * sum(most or c.optim.epochs for c in self.base_configs.values())
        return sum(c.epochs for c in self.cells)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able summary for plan.json and `sweeps show`; per-cell overrides are what differs from
        the profile's own config."""
        reference = to_flat(self.profile.config())

        def differing(config: TrialConfig) -> dict[str, Any]:
            return {k: v for k, v in to_flat(config).items() if reference.get(k) != v}

        spec = self.spec
        out: dict[str, Any] = {
            "name": spec.name, "title": spec.title, "kind": spec.kind, "spec_hash": spec.spec_hash,
            "source": spec.source, "profile": self.profile.name, "metric": spec.metric, "mode": spec.mode,
            "data": [{"name": d.name, "dataset": d.dataset, "root": d.root} for d in self.data],
            "seeds": list(self.seeds), "overrides": thaw(self.overrides),
            "cells": [{"arm": c.arm, "data": c.data, "seed": c.seed, "cell_id": c.cell_id,
                       "run_name": c.run_name, "epochs": c.epochs, "overrides": differing(c.config)}
                      for c in self.cells],
            "base_configs": {name: differing(config) for name, config in self.base_configs.items()},
            "search": None,
            "totals": {"cells": len(self.cells), "epochs_per_cell": self.epochs_per_cell,
                       "total_epochs": self.total_epochs},
        }
        if spec.search is not None:
            s = spec.search
            out["search"] = {
                "num_samples": s.num_samples, "sampler": s.sampler, "n_startup_trials": s.n_startup_trials,
                "pruner": thaw(s.pruner),
                "space": {k: {"type": p.type, "low": p.low, "high": p.high, "log": p.log, "step": p.step,
                              "choices": thaw(p.choices)} for k, p in s.space.items()}}
        return out


def _data_layer(choice: DataChoice, config: TrialConfig, explicit: list[Layer]) -> Layer:
    """data.dataset / data.root, and model.num_classes of the data set (an explicit different value
    in an earlier layer is an error, never silently replaced; the synthetic set's 7 too: a different one
    failed in every trial)."""
    from transfer_core.data import DataError, num_classes_of   # label files only: no torch, no image

    doc = _Doc("--data", None)
    values: dict[str, Any] = {"data.dataset": choice.dataset, "data.root": choice.root}
    data_config = dataclasses.replace(config.data, dataset=choice.dataset, root=choice.root)
    try:
        classes = num_classes_of(data_config)
    except DataError as exc:
        raise doc.error((choice.name,), str(exc)) from None
    for layer in reversed(explicit):  # the highest layer that sets it decides
        if "model.num_classes" in layer.values:
            if layer.values["model.num_classes"] != classes:
                raise layer.error("model.num_classes",
                                  f"model.num_classes={layer.values['model.num_classes']!r} conflicts with "
                                  f"--data {choice.name} ({classes} classes): the data set decides; remove it")
            break
    if not choice.synthetic:   # the synthetic set's is the default: its cells' configs stay as they were
        values["model.num_classes"] = classes
    return Layer(FrozenMap(values), doc, (choice.name,))


def _check_shapes(config: TrialConfig, layers: list[Layer], drop_counts: bool = True) -> None:
    """A cell's final model must fit its stem's stride and leave a map and a head standing (else every trial of
    it fails building the model); the error names the highest layer that set one of the keys at play.
    drop_counts=False: a search's base whose space draws one of DROP_COUNT_KEYS (check_space_shapes checks the
    draws; the base's own value of a searched key is never trained)."""
    checks = [(check_stem_stride, ("model.image_size", "model.stem"))]
    if drop_counts:
        checks.append((check_drop_counts, DROP_COUNT_KEYS))
    for check, keys in checks:
        try:
            check(config.model)
        except ConfigError as exc:
            for layer in reversed(layers):
                for key in keys:
                    if key in layer.values:
                        raise layer.error(key, str(exc)) from None
            raise SpecError(str(exc)) from None


# Keys a config leaves unread where its other keys say so, which a sweep-wide value may meet in some cells (--set
# model.encoder_checkpoint over Table 1's rows without an encoder, data.epoch_samples under data.sampler auto over a
# RAF-DB column beside an AffectNet one): set where no config of the sweep reads it, it would be dropped without a
# word. key -> (the keys that decide whether a config reads it, whether it does, why none does)
_READ_WHERE = {
    "model.encoder_checkpoint": (("model.encoder",), lambda c: c.model.encoder,
                                 "every cell has model.encoder=false, and only the encoder loads a ViT checkpoint: "
                                 "set model.encoder=true, or remove it"),
    "data.epoch_samples": (("data.sampler",), lambda c: sampler_kind(c.data) == "balanced",
                           "data.sampler auto samples balanced on AffectNet only, and no cell trains on it; only the "
                           "balanced sampler takes epoch_samples: set data.sampler=balanced, or remove it"),
}


def _check_read(trained: Callable[[tuple[str, ...]], list[TrialConfig]], layers: Sequence[Layer]) -> None:
    """A key of _READ_WHERE set where none of the configs the sweep trains reads it is an error at the highest layer
    that set it. `trained(keys)`: every cell's config, or a search's bases with what its space draws for `keys`."""
    for key, (deciding, reads, why) in _READ_WHERE.items():
        section, name = key.split(".")
        given = [c for c in trained((key, *deciding)) if getattr(getattr(c, section), name) is not None]
        if not given or any(reads(c) for c in given):
            continue
        message = f"{key}={getattr(getattr(given[0], section), name)!r} is never read: {why}"
        for layer in reversed(layers):
            if key in layer.values:
                raise layer.error(key, message)
        raise SpecError(message)


# A key that one data set alone reads (DATASET_KEYS) given by an arm or --set where no cell reads that set
# (--set data.ferplus_rule=argmax over the synthetic faces or RAF-DB) was dropped without a word, and arms that differ
# by it alone trained the same. A spec's base is not checked: it says how a set is read when --data gives it (a spec
# whose base reads FERPlus by argmax runs on RAF-DB too), as a profile's own values are its defaults for whichever
# set it runs on; a search cannot vary them (they decide the decoded data).
def _check_dataset_keys(data: Sequence[DataChoice], layers: Sequence[Layer]) -> None:
    """A key of DATASET_KEYS given where no cell reads its data set is an error at the highest layer that set it."""
    read = {choice.dataset for choice in data}
    for key, datasets in DATASET_KEYS.items():
        datasets = (datasets,) if isinstance(datasets, str) else datasets
        if read.intersection(datasets):
            continue
        for layer in reversed(layers):
            if key in layer.values:
                dataset = datasets[0]
                add = ("--data synthetic" if dataset == "synthetic" else f"--data {dataset}=PATH" if len(datasets) == 1
                       else f"--data NAME=PATH with NAME one of {', '.join(datasets)}")
                which = (f"{dataset} reads it" if len(datasets) == 1
                         else f"{', '.join(datasets[:-1])} and {datasets[-1]} read it")
                raise layer.error(key, f"{key}={layer.values[key]!r} is never read: only {which}, and "
                                       f"this sweep reads {', '.join(c.name for c in data)}: add {add}, or remove it")


def _check_data(data: Sequence[DataChoice]) -> tuple[DataChoice, ...]:
    data = tuple(data) or (SYNTHETIC,)
    names = set()
    for choice in data:
        if not isinstance(choice, DataChoice):
            raise SpecError(f"data: {choice!r} is not a DataChoice: use parse_data_options(['rafdb=/path'])")
        if choice.name in names:
            raise SpecError(f"data: {choice.name!r} is given twice: give each data set once")
        names.add(choice.name)
    return data


def expand(spec: SweepSpec, profile: Profile | str, data: Sequence[DataChoice] = (),
           seeds: Sequence[int] | None = None, overrides: Mapping[str, Any] | None = None) -> Plan:
    """The plan of `spec` on `profile`: table cells (arms x data x seeds) or a search's base configs."""
    profile = load_profile(profile)
    data = _check_data(data)
    seeds = spec.seeds if seeds is None else parse_seeds(_Doc("--seeds", None), (), list(seeds))
    if spec.search is not None and len(seeds) != 1:
        # as the CLI's --seeds N is typed (it said `--seeds [0, 1]` of `--seeds 2`)
        raise SpecError(f"--seeds {len(seeds)} (seeds {', '.join(map(str, seeds))}): sweep {spec.name!r} is a "
                        "search, which trains each sample once on one seed: give --seeds 1, or leave --seeds out")
    if spec.search is not None and len(data) > 1:   # `sweeps show` too, not only `sweeps run`, refuses it
        raise SpecError(f"sweep {spec.name!r} is a search: give at most one --data "
                        f"(got {', '.join(d.name for d in data)})")
    user = config_layer(_Doc("--set", None), (), dict(overrides or {}))
    if spec.search is not None:  # the sampler's value would silently replace it
        for key in user.values:
            if key in spec.search.space:
                raise user.error(key, f"sweep {spec.name!r} searches {key}: a fixed value would be replaced "
                                      "by every sample; remove it (or edit search.space)")
    clobbered = [k for k in user.values if k in spec.varied_keys]

    profile_layer, base_layer = profile.layer(), spec.base_layer()
    below_arms = apply(apply(TrialConfig(), profile_layer), base_layer)

    def data_configs(config: TrialConfig, explicit: list[Layer]) -> dict[str, TrialConfig]:
        return {d.name: apply(config, _data_layer(d, config, explicit)) for d in data}

    bases = data_configs(apply(below_arms, user), [profile_layer, base_layer, user])
    if spec.search is not None:   # a search's trials are its bases (a table's cells are checked below)
        for config in bases.values():
            _check_shapes(config, [profile_layer, base_layer, user],
                          drop_counts=not set(spec.search.space) & set(DROP_COUNT_KEYS))
            check_space(spec.search.space, config, spec._doc())
            check_space_shapes(spec.search.space, config, spec._doc())
    bases = {name: dataclasses.replace(c, seed=seeds[0]) for name, c in bases.items()}

    cells: list[Cell] = []
    seen: dict[str, Cell] = {}
    several = len(data) > 1
    arm_layers = [spec.arm_layer(index) for index in range(len(spec.arms))]
    for index, arm in enumerate(spec.arms):
        arm_layer = arm_layers[index]
        per_data = data_configs(apply(apply(below_arms, arm_layer), user),
                                [profile_layer, base_layer, arm_layer, user])
        for config in per_data.values():
            _check_shapes(config, [profile_layer, base_layer, arm_layer, user])
        for choice in data:
            for seed in seeds:
                config = dataclasses.replace(per_data[choice.name], seed=seed)
                cell_id = config_hash(config)
                run_name = f"{spec.name}/{arm.label}/seed{seed}" + (f"/{choice.name}" if several else "")
                cell = Cell(spec.name, arm.label, choice.name, seed, config, cell_id, run_name)
                if cell_id in seen:
                    hint = (f" (--set {', '.join(clobbered)} overrides what the arms vary)" if clobbered
                            else ": make them differ")
                    raise arm_layer.error(None, f"arms {seen[cell_id].arm!r} and {arm.label!r} give the same "
                                                f"configuration on profile {profile.name!r} (cell_id {cell_id})"
                                                + hint)
                seen[cell_id] = cell
                cells.append(cell)

    def trained(keys: tuple[str, ...]) -> list[TrialConfig]:
        if spec.search is None:
            return [c.config for c in cells]
        return [c for base in bases.values() for _, c in drawn_configs(spec.search.space, base, keys)]

    searched = [] if spec.search is None else [Layer(FrozenMap(spec.search.space), spec._doc(), ("search", "space"))]
    _check_read(trained, [profile_layer, base_layer, *arm_layers, user, *searched])
    _check_dataset_keys(data, [*arm_layers, user])
    return Plan(spec, profile, data, tuple(seeds), tuple(cells), FrozenMap(bases), user.values)
