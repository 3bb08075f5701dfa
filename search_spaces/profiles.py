"""Compute profiles: how big and where a sweep's cells are trained (profiles.yaml, shipped).

A profile is a named set of TrialConfig overrides plus the resources Ray gives each trial:

    quick:                       # the default: synthetic faces, a small stem, CPU, minutes per sweep
      description: one line
      cpus_per_trial: 1
      gpus_per_trial: 0
      max_concurrent: null       # null: as many trials at once as the resources allow
      overrides: {model.stem: small, model.image_size: 32, optim.epochs: 12, ...}   # profiles.yaml has them all

In a cell's config the profile is the lowest layer over the TrialConfig defaults (see plan.expand).
A profile never sets data.dataset, data.root or seed: the cell does.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, Mapping

from transfer_core.config import TrialConfig

from search_spaces.layers import Layer, apply, config_layer
from search_spaces.yaml_doc import (FrozenMap, SpecError, _Doc, _unknown, check_keys, expect_mapping, expect_name,
                                    expect_number, expect_str, parse_yaml)

__all__ = ["Profile", "load_profile", "list_profiles", "PROFILE_KEYS"]

PROFILE_KEYS = ("description", "overrides", "cpus_per_trial", "gpus_per_trial", "max_concurrent")


@dataclass(frozen=True)
class Profile:
    """A named compute profile: config overrides and per-trial resources."""

    name: str
    description: str
    overrides: Mapping[str, Any] = field(default_factory=FrozenMap)
    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0
    max_concurrent: int | None = None
    source: str = field(default="", compare=False, repr=False)   # the profiles file, for errors

    def layer(self) -> Layer:
        """The overrides as a config layer whose errors point into the profiles file."""
        text = None
        if self.source:
            try:
                text = open(self.source, encoding="utf-8").read()
            except OSError:
                text = None
        doc = _Doc(self.source or f"profile {self.name!r}", text)
        return Layer(FrozenMap(self.overrides), doc, (self.name, "overrides") if text else ())

    def config(self) -> TrialConfig:
        """TrialConfig defaults with this profile's overrides."""
        return apply(TrialConfig(), self.layer())


def _parse_profile(doc: _Doc, name: Any, value: Any) -> Profile:
    path = (name,)
    name = expect_name(doc, path, name)
    expect_mapping(doc, path, value, "{description: ..., overrides: {device: cpu}}")
    check_keys(doc, path, value, PROFILE_KEYS)
    if "description" not in value:
        raise doc.error(path, "missing key 'description': one line for `sweeps list`")
    description = expect_str(doc, path + ("description",), value["description"], one_line=True)
    layer = config_layer(doc, path + ("overrides",), value.get("overrides"))
    cpus = expect_number(doc, path + ("cpus_per_trial",), value.get("cpus_per_trial", 1))
    if not cpus > 0:
        raise doc.error(path + ("cpus_per_trial",), f"{cpus!r} is invalid: expected a number > 0")
    gpus = expect_number(doc, path + ("gpus_per_trial",), value.get("gpus_per_trial", 0))
    if not gpus >= 0:
        raise doc.error(path + ("gpus_per_trial",), f"{gpus!r} is invalid: expected a number >= 0")
    most = value.get("max_concurrent")
    if most is not None and (isinstance(most, bool) or not isinstance(most, int) or most < 1):
        raise doc.error(path + ("max_concurrent",), f"{most!r} is invalid: expected null or an integer >= 1")
    config = apply(TrialConfig(), layer)  # every value checked by the config dataclasses
    if config.device == "cuda" and gpus == 0:
        raise doc.error(path + ("gpus_per_trial",), "0 with device: cuda: a trial would see no GPU; "
                                                    "give gpus_per_trial > 0")
    if config.device == "cpu" and gpus > 0:
        raise doc.error(path + ("gpus_per_trial",), f"{gpus!r} with device: cpu reserves GPUs the trial "
                                                    "never uses: give 0")
    return Profile(name, description, layer.values, float(cpus), float(gpus), most, doc.source)


def _profiles_file():
    return resources.files("search_spaces").joinpath("profiles.yaml")


@functools.lru_cache(maxsize=None)
def _shipped() -> dict[str, Profile]:
    entry = _profiles_file()
    doc, data = parse_yaml(entry.read_text(encoding="utf-8"), str(entry), "a mapping of profile names")
    expect_mapping(doc, (), data, "quick: {description: ..., overrides: {...}}")
    return {p.name: p for p in (_parse_profile(doc, name, value) for name, value in data.items())}


def load_profile(name: str | Profile) -> Profile:
    """A shipped profile by name (a Profile is returned as is); an unknown name lists the shipped ones."""
    if isinstance(name, Profile):
        return name
    profiles = _shipped()
    if not isinstance(name, str) or name not in profiles:
        raise SpecError(_unknown("profile", name, list(profiles)))
    return profiles[name]


def list_profiles() -> list[tuple[str, str]]:
    """(name, description) of every shipped profile, in file order (smallest first)."""
    return [(p.name, p.description) for p in _shipped().values()]
